// The raw machine: a flat binary in flat, identity-mapped 64-bit long mode at CPL 0 (all
// memory present and writable), as `sim raw` runs it. No IDT: the first exception stops it.

import { Cpu, Stop } from '../cpu/cpu.js';
import { VECTOR_NAMES } from '../cpu/fault.js';
import '../cpu/ops/index.js';
import { REG_NAMES_64 } from '../cpu/regnames.js';
import { FlatMemory } from '../mmu/flat.js';
import { PhysMem } from '../mmu/physmem.js';

export interface RawOptions {
  base: number;
  entry: number;
  memoryMiB?: number;
  /** Initial registers by name (rax..r15, rip, rflags) as bigint. */
  regs?: Record<string, bigint>;
  maxInsns?: number;
}

export interface RawResult {
  regs: Record<string, string>;
  exception?: string;
  errorCode?: number;
  vector?: number;
  insns: number;
  stop: 'halt' | 'exception' | 'limit';
  cycles: number;
}

export class RawMachine {
  readonly phys: PhysMem;
  readonly mem: FlatMemory;
  readonly cpu: Cpu;

  constructor(memoryMiB = 64) {
    this.phys = new PhysMem(memoryMiB * 1024 * 1024);
    this.mem = new FlatMemory(this.phys);
    this.cpu = new Cpu(this.mem);
    this.cpu.cr0 &= ~0; // paging "on" with an identity map
    this.cpu.rflags = 0x2;
  }

  load(image: Uint8Array, base: number): void {
    if (base < 0 || base + image.length > this.phys.size) {
      throw new Error(`image of ${image.length} bytes at 0x${base.toString(16)} does not fit in ${this.phys.size / 1048576} MiB of memory`);
    }
    this.phys.u8.set(image, base);
  }

  setReg(name: string, v: bigint): void {
    const cpu = this.cpu;
    const i = REG_NAMES_64.indexOf(name as (typeof REG_NAMES_64)[number]);
    const lo = Number(BigInt.asIntN(32, v)), hi = Number(BigInt.asIntN(32, v >> 32n));
    if (i >= 0) { cpu.r[i * 2] = lo; cpu.r[i * 2 + 1] = hi; return; }
    if (name === 'rip') { cpu.rip = Number(BigInt.asUintN(48, v)); return; }
    if (name === 'rflags') { cpu.rflags = Number(BigInt.asUintN(32, v)); return; }
    throw new Error(`unknown register '${name}'`);
  }

  getReg(name: string): bigint {
    const cpu = this.cpu;
    const i = REG_NAMES_64.indexOf(name as (typeof REG_NAMES_64)[number]);
    if (i >= 0) return (BigInt(cpu.r[i * 2 + 1] >>> 0) << 32n) | BigInt(cpu.r[i * 2] >>> 0);
    if (name === 'rip') return BigInt.asUintN(64, BigInt.asIntN(48, BigInt(cpu.rip)));
    if (name === 'rflags') return BigInt(cpu.rflags >>> 0);
    throw new Error(`unknown register '${name}'`);
  }

  run(maxInsns: number): RawResult {
    const cpu = this.cpu;
    let stop: RawResult['stop'] = 'limit';
    let left = maxInsns;
    while (left > 0) {
      const before = cpu.insns;
      const chunk = Math.min(left, 1 << 24);
      const s = cpu.run(chunk);
      left -= cpu.insns - before;
      if (s === Stop.Halt) { stop = 'halt'; break; }
      if (s === Stop.Fault) { stop = 'exception'; break; }
      if (s === Stop.Budget && cpu.insns - before < chunk) continue;
    }
    const regs: Record<string, string> = {};
    for (const n of [...REG_NAMES_64, 'rip', 'rflags']) regs[n] = '0x' + this.getReg(n).toString(16);
    const res: RawResult = { regs, insns: cpu.insns, stop, cycles: cpu.cycles };
    if (stop === 'exception' && cpu.stopFault) {
      const f = cpu.stopFault;
      res.exception = VECTOR_NAMES[f.vector] ?? `INT 0x${f.vector.toString(16)}`;
      res.vector = f.vector;
      res.errorCode = f.errorCode;
    }
    return res;
  }
}

export function runRaw(image: Uint8Array, o: RawOptions): RawResult {
  const m = new RawMachine(o.memoryMiB ?? 64);
  m.load(image, o.base);
  if (o.entry < 0 || o.entry >= m.phys.size) throw new Error(`entry 0x${o.entry.toString(16)} is outside memory`);
  m.cpu.rip = o.entry;
  for (const [k, v] of Object.entries(o.regs ?? {})) m.setReg(k, v);
  return m.run(o.maxInsns ?? Number.MAX_SAFE_INTEGER);
}
