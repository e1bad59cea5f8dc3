// Test kit for system-level CPU tests: a bare machine (PhysMem + FlatMemory + Cpu) with
// helpers to lay out GDT/IDT/TSS in memory, encoders for descriptors, and a differential
// runner that executes cases at CPL 3 under a GDT like the host Linux kernel's, so user-mode
// segment behaviour (mov from/to segment registers, lar/lsl/verr/verw, far transfers, iretq,
// compatibility-mode code) can be compared with the real CPU.

import { appendFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { expect, it } from 'vitest';
import { Cpu, Stop } from '../../src/cpu/cpu.js';
import { fxrstorFrom, fxsaveTo } from '../../src/cpu/fxsave.js';
import '../../src/cpu/ops/index.js';
import { setSegCache, type Desc } from '../../src/cpu/segments.js';
import { Efer, Mode } from '../../src/cpu/state.js';
import type { CpuMemory } from '../../src/cpu/memory.js';
import { FlatMemory } from '../../src/mmu/flat.js';
import { PhysMem } from '../../src/mmu/physmem.js';
import {
  CODE_BASE, CODE_SIZE, DATA_BASE, DATA_SIZE, STACK_BASE, STACK_SIZE, FLAGS_MASK, type CpuCase, type CpuOutcome,
} from '../harness/case.js';
import { compareOutcome, type Form } from '../harness/diff.js';
import { defaultFxImage, runNative } from '../harness/native.js';
import { STATS_FILE } from '../harness/stats.js';

// ---- descriptor encoders ------------------------------------------------------------------

export interface SegOpts { s?: number; dpl?: number; p?: number; l?: number; db?: number; g?: number; avl?: number }

/** An 8-byte segment descriptor as [lo, hi] words. type: the 4-bit type field. */
export function segDesc(base: number, limit: number, type: number, o: SegOpts = {}): [number, number] {
  const { s = 1, dpl = 0, p = 1, l = 0, db = 0, g = 0, avl = 0 } = o;
  const lo = ((limit & 0xffff) | ((base & 0xffff) << 16)) | 0;
  const hi = (((base >>> 16) & 0xff) | (type << 8) | (s << 12) | (dpl << 13) | (p << 15) | (limit & 0xf0000) |
    (avl << 20) | (l << 21) | (db << 22) | (g << 23) | (base & 0xff000000)) | 0;
  return [lo, hi];
}
export const code64 = (dpl = 0, o: SegOpts = {}) => segDesc(0, 0xfffff, 0xb, { dpl, l: 1, g: 1, ...o });
export const code32 = (dpl = 0, base = 0, limit = 0xfffff, o: SegOpts = {}) => segDesc(base, limit, 0xb, { dpl, db: 1, g: limit === 0xfffff ? 1 : 0, ...o });
export const data32 = (dpl = 0, base = 0, limit = 0xfffff, o: SegOpts = {}) => segDesc(base, limit, 0x3, { dpl, db: 1, g: limit === 0xfffff ? 1 : 0, ...o });

/** A 16-byte long-mode gate (interrupt 0xE, trap 0xF, call 0xC) as four words. */
export function gate64(sel: number, off: bigint, type: number, o: { dpl?: number; ist?: number; p?: number } = {}): number[] {
  const { dpl = 0, ist = 0, p = 1 } = o;
  const lo = Number(off & 0xffffn), mid = Number((off >> 16n) & 0xffffn), hi = Number(BigInt.asIntN(32, off >> 32n));
  return [(lo | (sel << 16)) | 0, (ist | (type << 8) | (dpl << 13) | (p << 15) | (mid << 16)) | 0, hi, 0];
}
/** An 8-byte protected-mode gate (interrupt 0xE/6, trap 0xF/7, call 0xC/4). */
export function gate32(sel: number, off: number, type: number, o: { dpl?: number; p?: number; params?: number } = {}): number[] {
  const { dpl = 0, p = 1, params = 0 } = o;
  return [((off & 0xffff) | (sel << 16)) | 0, (params | (type << 8) | (dpl << 13) | (p << 15) | (off & 0xffff0000)) | 0];
}
/** A 16-byte long-mode system descriptor (TSS 9, LDT 2). */
export function sys64(base: bigint, limit: number, type: number, o: SegOpts = {}): number[] {
  const [lo, hi] = segDesc(Number(base & 0xffffffffn), limit, type, { s: 0, ...o });
  return [lo, hi, Number(BigInt.asIntN(32, base >> 32n)), 0];
}

// ---- a bare machine ---------------------------------------------------------------------

export const GDT = 0x1000, IDT = 0x2000, TSS = 0x3000, LDT = 0x6000;
/** Code areas and stacks of the long-mode machine (longMachine). */
export const CODE = 0x10000, UCODE = 0x20000, HANDLERS = 0x30000, USTACK = 0x70000, KSTACK = 0x80000, ISTACK = 0x90000;

export class Machine<M extends CpuMemory = FlatMemory> {
  readonly phys: PhysMem;
  readonly mem: M;
  readonly cpu: Cpu;
  readonly dv: DataView;
  /** Port writes seen, and the value port reads return. */
  readonly portLog: [number, number, number][] = [];

  /** mkMem: the memory (flat by default; e.g. a PagedMemory). */
  constructor(mib = 8, cpu?: (mem: M) => Cpu, mkMem?: (phys: PhysMem) => M) {
    this.phys = new PhysMem(mib * 1024 * 1024);
    this.mem = mkMem ? mkMem(this.phys) : new FlatMemory(this.phys) as unknown as M;
    this.cpu = cpu ? cpu(this.mem) : new Cpu(this.mem);
    this.dv = this.phys.dv;
    this.cpu.ports = {
      portIn: (port, size) => (0x1234567 ^ port) & (size === 4 ? -1 : (1 << (size * 8)) - 1),
      portOut: (port, size, v) => { this.portLog.push([port, size, v]); },
    };
    this.cpu.gdtrBase = GDT; this.cpu.gdtrLimit = 0xfff;
    this.cpu.idtrBase = IDT; this.cpu.idtrLimit = 0xfff;
  }

  w8(a: number, v: number): void { this.phys.u8[a] = v; }
  w16(a: number, v: number): void { this.dv.setUint16(a, v & 0xffff, true); }
  w32(a: number, v: number): void { this.dv.setInt32(a, v | 0, true); }
  w64(a: number, v: bigint): void { this.dv.setBigUint64(a, BigInt.asUintN(64, v), true); }
  r16(a: number): number { return this.dv.getUint16(a, true); }
  r32(a: number): number { return this.dv.getUint32(a, true); }
  r64(a: number): bigint { return this.dv.getBigUint64(a, true); }
  /** Write code or data straight into memory (dropping any decoded code). */
  bytes(a: number, b: number[]): void { this.phys.u8.set(b, a); this.cpu.code.clear(); }

  /** Where gdt() and setSeg() find the GDT (the CPU's GDTR is set separately). */
  gdtBase = GDT;
  /** GDT entry i (8 bytes, or 16 for a 4-word system descriptor). */
  gdt(i: number, words: number[]): void { words.forEach((w, k) => this.w32(this.gdtBase + i * 8 + k * 4, w)); }
  ldt(i: number, words: number[]): void { words.forEach((w, k) => this.w32(LDT + i * 8 + k * 4, w)); }
  /** IDT entry: 16 bytes in long mode, 8 in protected mode. */
  idt(v: number, words: number[]): void { words.forEach((w, k) => this.w32(IDT + v * words.length * 4 + k * 4, w)); }

  /** Load a segment register straight from a GDT entry (no checks). */
  setSeg(seg: number, sel: number): void {
    const a = this.gdtBase + (sel & 0xfff8);
    const d: Desc = { lo: this.dv.getInt32(a, true), hi: this.dv.getInt32(a + 4, true) };
    setSegCache(this.cpu, seg, sel, d);
  }

  reg(i: number): bigint { const r = this.cpu.r; return (BigInt(r[i * 2 + 1] >>> 0) << 32n) | BigInt(r[i * 2] >>> 0); }
  setReg(i: number, v: bigint): void {
    this.cpu.r[i * 2] = Number(BigInt.asIntN(32, v));
    this.cpu.r[i * 2 + 1] = Number(BigInt.asIntN(32, v >> 32n));
  }
  /** RIP as software sees it (canonical). */
  get rip(): bigint { return BigInt.asUintN(64, BigInt.asIntN(48, BigInt(this.cpu.rip))); }

  /** Run up to n instructions; returns the stop reason. */
  run(n = 1000): Stop { this.cpu.stopFault = null; this.cpu.halted = false; return this.cpu.run(n); }
  /** Run until RIP reaches addr (true), or the CPU stops (false). */
  runTo(addr: number, n = 1000): boolean {
    this.cpu.stopFault = null; this.cpu.halted = false;
    for (let i = 0; i < n; i++) {
      if (this.cpu.rip === addr) return true;
      if (this.cpu.run(1) !== Stop.Budget) return this.cpu.rip === addr;
    }
    return this.cpu.rip === addr;
  }
  /** The i-th qword above RSP. */
  stackQ(i: number): bigint { return this.r64((this.cpu.r[8] >>> 0) + i * 8); }
  /** Run; expect the CPU to stop on an undeliverable fault (IDT limit 0) and return it. */
  runToFault(n = 1000): { vector: number; errorCode: number } {
    this.cpu.idtrLimit = 0;
    const s = this.run(n);
    if (s !== Stop.Fault) throw new Error(`expected a fault, stopped with ${s} at rip ${this.cpu.rip.toString(16)}`);
    return { vector: this.cpu.stopFault!.vector, errorCode: this.cpu.stopFault!.errorCode };
  }
}

/** Selectors of longMachine's GDT. STAR[47:32] = KCS gives syscall CS 0x08 / SS 0x10;
 *  STAR[63:48] = 0x18 gives sysret CS 0x1b (32-bit) or 0x2b (64-bit) and SS 0x23. */
export const Sel = {
  KCS: 0x08, KSS: 0x10, UCS32: 0x1b, USS: 0x23, UCS: 0x2b, TSS: 0x30, KCS32: 0x40, LDT: 0x48, GATE: 0x58,
  KDS_NP: 0x68, KCS_NP: 0x70, URO: 0x78, KCONF: 0x80, UXO: 0x88, KDS16: 0x90, UGATE32: 0x98,
} as const;

/**
 * A machine in 64-bit long mode at CPL 0: the GDT above, a 64-bit TSS (RSP0 = KSTACK,
 * IST1 = ISTACK, an I/O bitmap denying every port), an IDT whose vector v is an interrupt
 * gate to HANDLERS + 16v (a hlt there), RSP = KSTACK - 0x100, RIP = CODE.
 */
export function longMachine<M extends CpuMemory = FlatMemory>(cpu?: (mem: M) => Cpu, mkMem?: (phys: PhysMem) => M): Machine<M> {
  const m = new Machine<M>(1, cpu, mkMem);
  const c = m.cpu;
  m.gdt(1, code64(0));
  m.gdt(2, data32(0));
  m.gdt(3, code32(3));
  m.gdt(4, data32(3));
  m.gdt(5, code64(3));
  m.gdt(6, sys64(BigInt(TSS), 0x68 + 0x2000, 0xb));
  m.gdt(8, code32(0));
  m.gdt(9, sys64(BigInt(LDT), 0xff, 2));
  m.gdt(11, gate64(Sel.KCS, BigInt(HANDLERS + 0x1000), 0xc, { dpl: 3 }));
  m.gdt(13, data32(0, 0, 0xfffff, { p: 0 }));
  m.gdt(14, code64(0, { p: 0 }));
  m.gdt(15, segDesc(0, 0xfffff, 0x1, { dpl: 3, db: 1, g: 1 }));
  m.gdt(16, segDesc(0, 0xfffff, 0xf, { l: 1, g: 1 }));
  m.gdt(17, segDesc(0, 0xfffff, 0x9, { dpl: 3, db: 1, g: 1 }));
  m.gdt(18, segDesc(0, 0xffff, 0x3, {}));
  m.w64(TSS + 4, BigInt(KSTACK));
  m.w64(TSS + 0x24, BigInt(ISTACK));
  m.w16(TSS + 0x66, 0x68);
  m.phys.u8.fill(0xff, TSS + 0x68, TSS + 0x68 + 0x2001);
  for (let v = 0; v < 256; v++) {
    m.idt(v, gate64(Sel.KCS, BigInt(HANDLERS + v * 16), 0xe));
    m.w8(HANDLERS + v * 16, 0xf4);
  }
  c.idtrBase = IDT; c.idtrLimit = 256 * 16 - 1;
  c.setFlat64();
  m.setSeg(1, Sel.KCS); m.setSeg(2, Sel.KSS);
  for (const s of [0, 3, 4, 5, 6]) setSegCache(c, s, 0, null);
  m.setSeg(7, Sel.TSS);
  c.rflags = 0x2;
  m.setReg(4, BigInt(KSTACK - 0x100));
  c.rip = CODE;
  return m;
}

/** The vector whose handler stub the CPU halted in (longMachine / protMachine layouts). */
export function vectorTaken(m: Machine<CpuMemory>): number {
  return (m.cpu.rip - 1 - HANDLERS) / 16;
}

// ---- the host's user-mode view, for differential tests ----------------------------------

/** The host Linux GDT as seen from user mode (lar/lsl measured on the host): kernel entries
 *  at DPL 0, USER32_CS 0x23, USER_DS 0x2b, USER_CS 0x33, the TSS at 0x40, CPUNODE at 0x78
 *  (its limit holds the CPU number: tests must not depend on it). Limit 0x7f. */
export function hostGdt(m: Machine): void {
  m.gdt(1, segDesc(0, 0xfffff, 0xb, { db: 1, g: 1 }));          // 0x08 KERNEL32_CS
  m.gdt(2, segDesc(0, 0xfffff, 0xb, { l: 1, g: 1 }));           // 0x10 KERNEL_CS
  m.gdt(3, segDesc(0, 0xfffff, 0x3, { db: 1, g: 1 }));          // 0x18 KERNEL_DS
  m.gdt(4, segDesc(0, 0xfffff, 0xb, { dpl: 3, db: 1, g: 1 }));  // 0x23 USER32_CS
  m.gdt(5, segDesc(0, 0xfffff, 0x3, { dpl: 3, db: 1, g: 1 }));  // 0x2b USER_DS
  m.gdt(6, segDesc(0, 0xfffff, 0xb, { dpl: 3, l: 1, g: 1 }));   // 0x33 USER_CS
  m.gdt(8, sys64(BigInt(USER_TSS), 0x206f, 0xb));               // 0x40 TSS (busy)
  m.gdt(15, segDesc(0, 1, 0x5, { dpl: 3, db: 1 }));             // 0x78 CPUNODE
}

// Above 64 KiB, where no 16-bit address reaches; unmapped on the native side.
const USER_GDT = 0x380000, USER_TSS = 0x381000;

/** Runs CpuCases at CPL 3 in 64-bit mode with CS 0x33, SS 0x2b and null DS ES FS GS, like a
 *  Linux process; code, data and stack at the harness addresses; GDT/TSS in pages the case
 *  cannot reach (unmapped on the native side). */
export class UserRunner {
  readonly m = new Machine(4);
  constructor() {
    const m = this.m, present = m.mem.present;
    present.fill(0);
    m.gdtBase = USER_GDT;
    for (const [b, s] of [[CODE_BASE, CODE_SIZE], [DATA_BASE, DATA_SIZE], [STACK_BASE, STACK_SIZE], [USER_GDT, 0x2000]]) {
      for (let p = b; p < b + s; p += 4096) present[p / 4096] = 1;
    }
  }

  run(c: CpuCase): CpuOutcome {
    const { m } = this, cpu = m.cpu, u8 = m.phys.u8;
    u8.fill(0, USER_GDT, USER_GDT + 0x2000);
    hostGdt(m);
    m.w16(USER_TSS + 0x66, 0xffff); // no I/O bitmap
    u8.fill(0, CODE_BASE, CODE_BASE + CODE_SIZE); u8.set(c.code, CODE_BASE);
    u8.fill(0, DATA_BASE, DATA_BASE + DATA_SIZE); if (c.data) u8.set(c.data, DATA_BASE);
    u8.fill(0, STACK_BASE, STACK_BASE + STACK_SIZE); if (c.stack) u8.set(c.stack, STACK_BASE);
    cpu.code.clear();
    cpu.setFlat64();
    cpu.efer = Efer.LME | Efer.LMA | Efer.SCE | Efer.NXE;
    cpu.gdtrBase = USER_GDT; cpu.gdtrLimit = 0x7f; cpu.idtrLimit = 0;
    m.setSeg(1, 0x33); m.setSeg(2, 0x2b);
    for (const s of [0, 3, 4, 5]) setSegCache(cpu, s, 0, null);
    m.setSeg(7, 0x40);
    cpu.seg.baseHi[7] = 0;
    setSegCache(cpu, 6, 0, null);
    cpu.cpl = 3;
    cpu.mode = Mode.Long64;
    cpu.fpu.reset();
    fxrstorFrom(cpu, c.fx ?? defaultFxImage());
    for (let i = 0; i < 16; i++) m.setReg(i, c.regs[i]);
    cpu.rflags = Number(c.rflags & FLAGS_MASK) | 0x202;
    cpu.rip = CODE_BASE;
    cpu.halted = false;
    cpu.stopFault = null;
    const exits = new Set((c.exits ?? [c.code.length]).map((o) => CODE_BASE + o));
    let status: CpuOutcome['status'] = 'fault';
    let vector = -1, errorCode = 0, faultAddr = 0n;
    for (let step = 0; step < 1000; step++) {
      // The native exit stubs are 64-bit code: an exit counts only in 64-bit mode.
      if (exits.has(cpu.rip) && cpu.mode === Mode.Long64) { status = 'ok'; break; }
      const s = cpu.run(1);
      if (s === Stop.Fault) {
        const f = cpu.stopFault!;
        vector = f.vector; errorCode = f.errorCode;
        if (f.vector === 14) faultAddr = BigInt.asUintN(64, BigInt.asIntN(48, BigInt(f.cr2)));
        break;
      }
      if (s === Stop.Halt) { vector = 13; break; }
    }
    const regs: bigint[] = [];
    for (let i = 0; i < 16; i++) regs.push(m.reg(i));
    const fx = new Uint8Array(512);
    fxsaveTo(cpu, fx);
    return {
      status, vector, errorCode, faultAddr, rip: m.rip, regs, rflags: BigInt(cpu.rflags >>> 0), fx,
      data: u8.slice(DATA_BASE, DATA_BASE + DATA_SIZE), stack: u8.slice(STACK_BASE, STACK_BASE + STACK_SIZE),
    };
  }
}

let runner: UserRunner | undefined;

/** diffForms for the CPL-3 runner. */
export function diffUserForms(forms: Form[]): void {
  for (const form of forms) {
    it(form.name, () => {
      const n = form.cases ?? 1000;
      const cases = fc.sample(form.gen, { numRuns: n, seed: 42 });
      const native = runNative(cases);
      runner ??= new UserRunner();
      const failures: string[] = [];
      for (let i = 0; i < cases.length && failures.length < 5; i++) {
        const msg = compareOutcome(form, cases[i], native[i], runner.run(cases[i]));
        if (msg) failures.push(msg);
      }
      mkdirSync(path.dirname(STATS_FILE), { recursive: true });
      appendFileSync(STATS_FILE, JSON.stringify({ form: form.name, cases: cases.length }) + '\n');
      expect(failures, failures.join('\n')).toEqual([]);
    });
  }
}

/** Little-endian bytes of v. */
export const le = (v: bigint | number, n: number): number[] =>
  Array.from({ length: n }, (_, i) => Number((BigInt(v) >> BigInt(8 * i)) & 0xffn));
