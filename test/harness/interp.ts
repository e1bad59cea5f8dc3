// Runs CpuCases in the interpreter, on a machine laid out like the native runner's: only the
// code, data and stack regions are present; every other page faults.

import { Cpu, Stop } from '../../src/cpu/cpu.js';
import { fxrstorFrom, fxsaveTo } from '../../src/cpu/fxsave.js';
import '../../src/cpu/ops/index.js';
import { FlatMemory } from '../../src/mmu/flat.js';
import { jitConfig } from '../../src/cpu/jit.js';
import { PhysMem } from '../../src/mmu/physmem.js';
import {
  CODE_BASE, CODE_SIZE, DATA_BASE, DATA_SIZE, STACK_BASE, STACK_SIZE, FLAGS_MASK,
  type CpuCase, type CpuOutcome,
} from './case.js';
import { defaultFxImage } from './native.js';

const MEM = 4 * 1024 * 1024;
/** How many instructions a case may run before it counts as a timeout. */
const STEP_LIMIT = 1000;

export class InterpRunner {
  /** jit: run each case as whole blocks compiled on first use (jit.ts) instead of one
   *  instruction at a time, with a HLT planted at every exit. */
  constructor(readonly jit = false) {
    this.mem.present.fill(0);
    for (const [b, s] of [[CODE_BASE, CODE_SIZE], [DATA_BASE, DATA_SIZE], [STACK_BASE, STACK_SIZE]]) {
      for (let p = b; p < b + s; p += 4096) this.mem.present[p / 4096] = 1;
    }
  }

  readonly phys = new PhysMem(MEM);
  readonly mem = new FlatMemory(this.phys);
  readonly cpu = new Cpu(this.mem);


  run(c: CpuCase): CpuOutcome {
    const { cpu, phys } = this;
    const u8 = phys.u8;
    u8.fill(0, CODE_BASE, CODE_BASE + CODE_SIZE);
    u8.set(c.code, CODE_BASE);
    u8.fill(0, DATA_BASE, DATA_BASE + DATA_SIZE);
    if (c.data) u8.set(c.data, DATA_BASE);
    u8.fill(0, STACK_BASE, STACK_BASE + STACK_SIZE);
    if (c.stack) u8.set(c.stack, STACK_BASE);
    cpu.code.clear();
    cpu.setFlat64();
    cpu.fpu.reset();
    fxrstorFrom(cpu, c.fx ?? defaultFxImage());
    for (let i = 0; i < 16; i++) {
      cpu.r[i * 2] = Number(BigInt.asIntN(32, c.regs[i]));
      cpu.r[i * 2 + 1] = Number(BigInt.asIntN(32, c.regs[i] >> 32n));
    }
    cpu.rflags = Number(c.rflags & FLAGS_MASK) | 0x202;
    cpu.rip = CODE_BASE;
    cpu.halted = false;
    cpu.stopFault = null;
    const exits = new Set((c.exits ?? [c.code.length]).map((o) => CODE_BASE + o));
    let status: CpuOutcome['status'] = 'fault';
    let vector = -1, errorCode = 0, faultAddr = 0n;
    if (this.jit) {
      for (const e of exits) if (e >= CODE_BASE + c.code.length) u8[e] = 0xf4;
      const saved = jitConfig.threshold;
      jitConfig.threshold = 1;
      try {
        const s = cpu.run(STEP_LIMIT);
        if (s === Stop.Fault) {
          const f = cpu.stopFault!;
          vector = f.vector; errorCode = f.errorCode;
          if (f.vector === 14) faultAddr = BigInt.asUintN(64, BigInt.asIntN(48, BigInt(f.cr2)));
        } else if (s === Stop.Halt) {
          cpu.rip -= 1;
          if (exits.has(cpu.rip)) status = 'ok'; else vector = 13;
        }
      } finally { jitConfig.threshold = saved; }
    } else for (let step = 0; step < STEP_LIMIT; step++) {
      if (exits.has(cpu.rip)) { status = 'ok'; break; }
      const s = cpu.run(1);
      if (s === Stop.Fault) {
        const f = cpu.stopFault!;
        vector = f.vector; errorCode = f.errorCode;
        // cr2 is a 48-bit linear address; software (and the native side) sees it canonical.
        if (f.vector === 14) faultAddr = BigInt.asUintN(64, BigInt.asIntN(48, BigInt(f.cr2)));
        break;
      }
      if (s === Stop.Halt) { vector = 13; break; } // hlt at CPL 3 natively: #GP
    }
    const regs: bigint[] = [];
    for (let i = 0; i < 16; i++) regs.push((BigInt(cpu.r[i * 2 + 1] >>> 0) << 32n) | BigInt(cpu.r[i * 2] >>> 0));
    const fx = new Uint8Array(512);
    fxsaveTo(cpu, fx);
    return {
      status, vector, errorCode, faultAddr,
      rip: BigInt.asUintN(64, BigInt.asIntN(48, BigInt(cpu.rip))),
      regs, rflags: BigInt(cpu.rflags >>> 0), fx,
      data: u8.slice(DATA_BASE, DATA_BASE + DATA_SIZE),
      stack: u8.slice(STACK_BASE, STACK_BASE + STACK_SIZE),
    };
  }
}
