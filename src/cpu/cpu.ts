// One virtual CPU: its architectural state, operand access for the instruction handlers,
// and the run loop. Handlers live in ops/*, one file per instruction family.

import { CodeCache, type Block } from './codecache.js';
import { decode } from './decoder.js';
import { CpuFault, Vec } from './fault.js';
import { FS, getFlags, setFlags } from './flags.js';
import type { Insn } from './insn.js';
import type { CpuMemory } from './memory.js';
import { nullPorts, type PortBus } from './ports.js';
import { Efer, F, Mode, R8_HIGH, RIP_BASE, Seg } from './state.js';
import { Fpu } from './fpu.js';
import { CpuModel, defaultCpuModel } from './cpuid.js';
import { deliverEvent } from './interrupts.js';
import { compileBlock, jitConfig, retiredBefore } from './jit.js';

const TWO32 = 4294967296;
const TWO48 = 281474976710656;
const HALF48 = 140737488355328;
const MAX_BLOCK = 64;

export const enum Stop { Budget = 0, Halt = 1, Fault = 2, Request = 3 }

/** Segment register state: selector and the cached descriptor (base, limit, attributes). */
export class SegState {
  readonly sel = new Int32Array(8);
  readonly baseLo = new Int32Array(8);
  readonly baseHi = new Int32Array(8);
  readonly limit = new Uint32Array(8);
  /** Descriptor attributes: bits 0..7 the access byte (type, S, DPL, P), bit 8 AVL, 9 L, 10 D/B, 11 G. */
  readonly attr = new Int32Array(8);
}
export const enum SegAttr { P = 0x80, S = 0x10, AVL = 0x100, L = 0x200, DB = 0x400, G = 0x800 }

/** Hooks a hypervisor or machine installs on a CPU. */
export interface CpuHooks {
  /** Takes an exception or software interrupt instead of IDT delivery (PV); true if taken. */
  exception?(cpu: Cpu, vector: number, errorCode: number, hasError: boolean, soft: boolean): boolean;
  /** A privileged instruction a PV guest executed in ring 3 etc. (syscall in guest kernel = hypercall). */
  syscall?(cpu: Cpu): boolean;
  /** HLT executed; return true to keep running (an event arrived). */
  halt?(cpu: Cpu): boolean;
  /** VMCALL / VMMCALL (a PVH/HVM hypercall); true if handled, else the instruction is #UD. */
  hypercall?(cpu: Cpu): boolean;
  /** Called at a block boundary once cpu.cycles >= cpu.eventAt (timers, pending upcalls);
   *  it sets the next eventAt and may deliver an event (change RIP and state). */
  event?(cpu: Cpu): void;
}

export class Cpu {
  /** General registers: register i at [2i] (low) and [2i+1] (high). */
  readonly r = new Int32Array(32);
  /** Flag state (flags.ts FS slots). */
  readonly f = new Int32Array(FS.LEN);
  /** Instruction pointer: a linear-style unsigned number (48-bit canonical in long mode). */
  rip = 0;
  /** Address of the instruction being executed (for faults and rip-relative math). */
  ripStart = 0;
  /** High half scratch for 64-bit operand helpers. */
  t = 0;

  readonly seg = new SegState();
  mode: Mode = Mode.Long64;
  cpl = 0;
  cr0 = 0x80000011 | 0x20; // PG PE ET NE
  cr2 = 0;
  cr3Lo = 0; cr3Hi = 0;
  cr4 = 0x20; // PAE
  cr8 = 0;
  efer = Efer.LME | Efer.LMA | Efer.SCE | Efer.NXE;
  readonly dr = new Float64Array(8);
  gdtrBase = 0; gdtrLimit = 0;
  idtrBase = 0; idtrLimit = 0;
  /** MSRs that are not held in dedicated fields, as [lo, hi]. */
  readonly msrs = new Map<number, [number, number]>();

  readonly xmm = new Int32Array(64);
  readonly xmmF32 = new Float32Array(this.xmm.buffer);
  readonly xmmF64 = new Float64Array(this.xmm.buffer);
  mxcsr = 0x1f80;
  readonly fpu = new Fpu();
  xcr0Lo = 1; // x87 only until the guest sets SSE

  /** Virtual time: retired cycles (drive the TSC). */
  cycles = 0;
  insns = 0;
  halted = false;
  /** Set by anything that must end the current block (mode change, sti, pending work). */
  exitBlock = false;
  /** Leave run() at the next block boundary. */
  stopRequest = false;
  /** The exception that stopped a run with no way to deliver it. */
  stopFault: CpuFault | null = null;
  /** Cycle count at which the run loop calls hooks.event (Infinity: never). Setting it to 0
   *  and exitBlock to true makes the check happen at the next block boundary. */
  eventAt = Infinity;
  /** Interrupt shadow after sti / mov ss. */
  inhibitIrq = false;

  readonly model: CpuModel;
  readonly code: CodeCache;
  hooks: CpuHooks = {};
  ports: PortBus = nullPorts;

  constructor(readonly mem: CpuMemory, opts: { code?: CodeCache; model?: CpuModel } = {}) {
    this.code = opts.code ?? new CodeCache(mem);
    this.model = opts.model ?? defaultCpuModel();
    this.code.users.push(this);
    setFlags(this.f, 2);
    this.setFlat64();
  }

  /** Flat 64-bit long mode at CPL 0 (the raw machine's state). */
  setFlat64(): void {
    const s = this.seg;
    for (let i = 0; i < 6; i++) { s.sel[i] = 0; s.baseLo[i] = 0; s.baseHi[i] = 0; s.limit[i] = 0xffffffff; s.attr[i] = 0x93 | SegAttr.G | SegAttr.DB; }
    s.sel[Seg.CS] = 0x08; s.attr[Seg.CS] = 0x9b | SegAttr.L | SegAttr.G;
    s.sel[Seg.SS] = 0x10;
    s.attr[Seg.TR] = 0x8b; s.limit[Seg.TR] = 0x67;
    this.mode = Mode.Long64;
    this.cpl = 0;
    this.cr4 |= 0x600; // OSFXSR | OSXMMEXCPT: SSE enabled with #XM delivery, as an OS sets up
  }

  // ---- flags ---------------------------------------------------------------------------

  get rflags(): number { return getFlags(this.f); }
  set rflags(v: number) { setFlags(this.f, v); }

  // ---- registers -----------------------------------------------------------------------

  /** Register value at an operand size: 1/2 zero-extended, 4 int32, 8 the low half (high in t). */
  getReg(i: number, size: number): number {
    const r = this.r;
    switch (size) {
      case 1: return i >= R8_HIGH ? (r[(i - R8_HIGH) * 2] >> 8) & 0xff : r[i * 2] & 0xff;
      case 2: return r[i * 2] & 0xffff;
      case 4: return r[i * 2];
      default: this.t = r[i * 2 + 1]; return r[i * 2];
    }
  }

  /** Write a register at an operand size; 32-bit writes zero the high half as on hardware. */
  setReg(i: number, size: number, v: number, hi: number): void {
    const r = this.r;
    switch (size) {
      case 1:
        if (i >= R8_HIGH) { const j = (i - R8_HIGH) * 2; r[j] = (r[j] & ~0xff00) | ((v & 0xff) << 8); }
        else r[i * 2] = (r[i * 2] & ~0xff) | (v & 0xff);
        return;
      case 2: r[i * 2] = (r[i * 2] & ~0xffff) | (v & 0xffff); return;
      case 4: r[i * 2] = v; r[i * 2 + 1] = 0; return;
      default: r[i * 2] = v; r[i * 2 + 1] = hi; return;
    }
  }

  /** The ModRM reg operand (8-bit codes for byte size). */
  getG(d: Insn, size: number): number { return this.getReg(size === 1 ? d.reg8 : d.reg, size); }
  setG(d: Insn, size: number, v: number, hi: number): void { this.setReg(size === 1 ? d.reg8 : d.reg, size, v, hi); }

  /** The ModRM r/m operand; lin is the effective address from ea() when mod != 3. */
  getE(d: Insn, size: number, lin: number): number {
    if (d.mod === 3) return this.getReg(size === 1 ? d.rm8 : d.rm, size);
    return this.rd(lin, size);
  }
  setE(d: Insn, size: number, lin: number, v: number, hi: number): void {
    if (d.mod === 3) this.setReg(size === 1 ? d.rm8 : d.rm, size, v, hi);
    else this.wr(lin, size, v, hi);
  }

  // ---- memory --------------------------------------------------------------------------

  rd(lin: number, size: number): number {
    const m = this.mem;
    switch (size) {
      case 1: return m.rd8(lin);
      case 2: return m.rd16(lin);
      case 4: return m.rd32(lin);
      default: { const lo = m.rd64(lin); this.t = m.hi; return lo; }
    }
  }
  wr(lin: number, size: number, v: number, hi: number): void {
    const m = this.mem;
    switch (size) {
      case 1: m.wr8(lin, v); return;
      case 2: m.wr16(lin, v); return;
      case 4: m.wr32(lin, v); return;
      default: m.wr64(lin, v, hi); return;
    }
  }

  /** Linear address of a memory operand at `off` bytes past the effective address. */
  ea(d: Insn, off = 0): number {
    const r = this.r;
    let lo = d.disp + off;
    let hi = lo < 0 ? -1 : 0;
    if (lo < 0) lo += TWO32;
    const b = d.base;
    if (b >= 0) {
      if (b === RIP_BASE) {
        const rip = this.rip;
        const rh = Math.floor(rip / TWO32);
        lo += rip - rh * TWO32;
        hi += rh >= 0x8000 ? rh - 0x10000 : rh;
      } else { lo += r[b * 2] >>> 0; hi += r[b * 2 + 1]; }
    }
    const x = d.index;
    if (x >= 0) {
      const s = d.scale;
      lo += (r[x * 2] >>> 0) * (1 << s);
      hi += s === 0 ? r[x * 2 + 1] : (r[x * 2 + 1] << s);
    }
    if (d.asz !== 8) {
      const a = lo % TWO32;
      const v = d.asz === 4 ? a : a & 0xffff;
      if (this.mode !== Mode.Long64) return ((this.seg.baseLo[d.seg] >>> 0) + v) % TWO32;
      lo = v; hi = 0;
    } else {
      const c = Math.floor(lo / TWO32);
      lo -= c * TWO32;
      hi = (hi + c) | 0;
    }
    if (d.seg >= Seg.FS) {
      const s = d.seg;
      lo += this.seg.baseLo[s] >>> 0;
      const c2 = lo >= TWO32 ? 1 : 0;
      lo -= c2 * TWO32;
      hi = (hi + this.seg.baseHi[s] + c2) | 0;
    }
    // A non-canonical address is #SS when it is formed from rsp or rbp (whatever the
    // segment prefix says), else #GP, as the hardware reports it.
    if (((hi << 16) >> 16) !== hi) throw new CpuFault(d.base === 4 || d.base === 5 ? Vec.SS : Vec.GP, 0);
    return (hi & 0xffff) * TWO32 + lo;
  }

  /** Linear address of an offset in a segment (string instructions, moffs, xlat). In long
   *  mode only FS and GS have a base; elsewhere the base is added and the sum wraps at 4 GiB. */
  segAddr(seg: number, lo: number, hi: number, asz: number): number {
    if (this.mode !== Mode.Long64) {
      const off = asz === 2 ? lo & 0xffff : lo >>> 0;
      return ((this.seg.baseLo[seg] >>> 0) + off) % TWO32;
    }
    if (asz === 4) { hi = 0; lo = lo >>> 0; } else lo = lo >>> 0;
    if (seg >= Seg.FS) {
      lo += this.seg.baseLo[seg] >>> 0;
      const c = lo >= TWO32 ? 1 : 0;
      lo -= c * TWO32;
      hi = (hi + this.seg.baseHi[seg] + c) | 0;
    }
    if (((hi << 16) >> 16) !== hi) throw new CpuFault(seg === Seg.SS ? Vec.SS : Vec.GP, 0);
    return (hi & 0xffff) * TWO32 + lo;
  }

  /** Make a 64-bit linear (canonical check) from halves; #GP(0) (or #SS) if non-canonical. */
  linear64(lo: number, hi: number, ss = false): number {
    if (((hi << 16) >> 16) !== hi) throw new CpuFault(ss ? Vec.SS : Vec.GP, 0);
    return (hi & 0xffff) * TWO32 + (lo >>> 0);
  }

  // ---- stack ---------------------------------------------------------------------------

  /** Stack address size in bytes (8 in long mode, else SS.B). */
  stackSize(): number {
    return this.mode === Mode.Long64 ? 8 : (this.seg.attr[Seg.SS] & SegAttr.DB) ? 4 : 2;
  }

  private spLin(spLo: number, spHi: number, ssz: number): number {
    if (ssz === 8) return this.linear64(spLo, spHi, true);
    const off = ssz === 4 ? spLo >>> 0 : spLo & 0xffff;
    return ((this.seg.baseLo[Seg.SS] >>> 0) + off) % TWO32;
  }

  /** Push `size` bytes (hi used for 8); faults leave RSP unchanged. */
  push(size: number, v: number, hi: number): void {
    const r = this.r;
    const ssz = this.stackSize();
    let lo = r[8], h = r[9];
    if (ssz === 8) { const n = (lo >>> 0) - size; h = n < 0 ? (h - 1) | 0 : h; lo = n | 0; }
    else if (ssz === 4) { lo = (lo - size) | 0; }
    else lo = (lo & ~0xffff) | ((lo - size) & 0xffff);
    this.wr(this.spLin(lo, h, ssz), size, v, hi);
    r[8] = lo; r[9] = h;
  }

  /** Read the value `size` bytes at RSP+off without moving RSP. */
  peek(size: number, off: number): number {
    const r = this.r;
    const ssz = this.stackSize();
    let lo = r[8], h = r[9];
    if (ssz === 8) { const n = (lo >>> 0) + off; h = n >= TWO32 ? (h + 1) | 0 : h; lo = n | 0; }
    else if (ssz === 4) lo = (lo + off) | 0;
    else lo = (lo + off) & 0xffff;
    return this.rd(this.spLin(lo, h, ssz), size);
  }

  /** Move RSP by n bytes (positive pops). */
  adjustSp(n: number): void {
    const r = this.r;
    const ssz = this.stackSize();
    if (ssz === 8) {
      const v = (r[8] >>> 0) + n;
      const c = Math.floor(v / TWO32);
      r[8] = v | 0; r[9] = (r[9] + c) | 0;
    } else if (ssz === 4) r[8] = (r[8] + n) | 0;
    else r[8] = (r[8] & ~0xffff) | ((r[8] + n) & 0xffff);
  }

  /** Pop `size` bytes; returns low half (high in t). */
  pop(size: number): number {
    const v = this.peek(size, 0);
    const hi = this.t;
    this.adjustSp(size);
    this.t = hi;
    return v;
  }

  // ---- control transfer ----------------------------------------------------------------

  /** Jump to a target given as 64-bit halves (long mode) or a 32/16-bit offset; #GP if bad. */
  jumpTo(lo: number, hi: number, size: number): void {
    if (this.mode === Mode.Long64 && size === 8) {
      if (((hi << 16) >> 16) !== hi) throw new CpuFault(Vec.GP, 0);
      this.rip = (hi & 0xffff) * TWO32 + (lo >>> 0);
    } else {
      const off = size === 2 ? lo & 0xffff : lo >>> 0;
      if (this.mode !== Mode.Long64 && this.mode !== Mode.Real && off > this.seg.limit[Seg.CS]) throw new CpuFault(Vec.GP, 0);
      this.rip = off;
    }
  }

  /** RIP as 64-bit halves: low returned, high in t. */
  ripHalves(v = this.rip): number {
    const h = Math.floor(v / TWO32);
    this.t = h >= 0x8000 ? (h | 0xffff0000) : h;
    return (v - h * TWO32) | 0;
  }

  /** Relative branch: rip += rel (int32), wrapped to the operand size. */
  jumpRel(rel: number, osz: number): void {
    let t = this.rip + rel;
    if (this.mode === Mode.Long64 && osz === 8) {
      // Signed view of the 48-bit form: the target is canonical iff it stays in [-2^47, 2^47).
      t = (this.rip >= HALF48 ? this.rip - TWO48 : this.rip) + rel;
      if (t < -HALF48 || t >= HALF48) throw new CpuFault(Vec.GP, 0);
      this.rip = t < 0 ? t + TWO48 : t;
    } else {
      t = osz === 2 ? t & 0xffff : ((t % TWO32) + TWO32) % TWO32;
      if (this.mode !== Mode.Real && this.mode !== Mode.Long64 && t > this.seg.limit[Seg.CS]) throw new CpuFault(Vec.GP, 0);
      this.rip = t;
    }
  }

  /** Linear address of RIP (CS base added outside long mode). */
  ripLinear(): number {
    if (this.mode === Mode.Long64) return this.rip;
    return ((this.seg.baseLo[Seg.CS] >>> 0) + this.rip) % TWO32;
  }

  // ---- run loop ------------------------------------------------------------------------

  private block(): Block {
    const lin = this.ripLinear();
    const phys = this.mem.fetchPhys(lin);
    const mode = this.mode;
    let b = this.code.get(mode, phys);
    if (b === undefined || !b.valid) b = this.buildBlock(lin, phys, mode);
    return b;
  }

  private buildBlock(lin: number, phys: number, mode: Mode): Block {
    const mem = this.mem;
    const insns: Insn[] = [];
    let off = 0;
    let lastPhys = phys;
    const pageLeft = 4096 - (phys & 0xfff);
    while (insns.length < MAX_BLOCK) {
      const base = off;
      const d = decode((i) => {
        const o = base + i;
        if (o < pageLeft) return mem.physByte(phys + o);
        try {
          const wrap = mode === Mode.Long64 ? TWO48 : TWO32;
          const p = mem.fetchPhys((lin + o) % wrap);
          lastPhys = Math.max(lastPhys, p);
          return mem.physByte(p);
        } catch (e) {
          if (e instanceof CpuFault && insns.length === 0) throw e;
          return -1;
        }
      }, mode);
      if (typeof d === 'number') break;
      insns.push(d);
      off += d.len;
      if (d.end || off >= pageLeft) break;
    }
    let cycles = 0;
    for (const d of insns) cycles += d.cycles;
    const b: Block = { insns, valid: true, runs: 0, fn: undefined, cycles, mode, link0: undefined, link0Rip: -1, link1: undefined, link1Rip: -1, linkEpoch: -1 };
    this.code.put(mode, phys, Math.max(lastPhys, phys + Math.min(off, pageLeft) - 1), b);
    return b;
  }

  /**
   * Run until `max` instructions retired, HLT with nothing to wake it, an exception that
   * cannot be delivered, or stopRequest. Returns why it stopped.
   */
  run(max: number): Stop {
    let left = max;
    let prev: Block | undefined;
    this.stopRequest = false;
    while (left > 0) {
      if (this.halted) {
        if (this.hooks.halt && this.hooks.halt(this)) { this.halted = false; continue; }
        return Stop.Halt;
      }
      if (this.stopRequest) return Stop.Request;
      if (this.cycles >= this.eventAt && this.hooks.event !== undefined) {
        this.hooks.event(this);
        if (this.halted || this.stopRequest) continue;
      }
      // Follow the previous block's link when it still applies (same RIP, mode and memory
      // mapping epoch): this skips the fetch translation and the cache lookup.
      let b: Block | undefined;
      const mode = this.mode;
      // Links are valid for one memory epoch at one CPL (the execute check depends on both).
      const linkKey = this.mem.epoch * 4 + this.cpl;
      if (prev !== undefined && prev.linkEpoch === linkKey) {
        const rip = this.rip;
        if (prev.link0Rip === rip) { b = prev.link0; if (b !== undefined && (!b.valid || b.mode !== mode)) b = undefined; }
        else if (prev.link1Rip === rip) { b = prev.link1; if (b !== undefined && (!b.valid || b.mode !== mode)) b = undefined; }
      }
      if (b === undefined) {
        try {
          this.ripStart = this.rip;
          b = this.block();
        } catch (e) {
          prev = undefined;
          if (!this.takeFault(e)) return Stop.Fault;
          continue;
        }
        if (prev !== undefined && prev.valid) {
          if (prev.linkEpoch !== linkKey) { prev.link0 = prev.link1 = undefined; prev.link0Rip = prev.link1Rip = -1; prev.linkEpoch = linkKey; }
          if (prev.link0 === undefined) { prev.link0 = b; prev.link0Rip = this.rip; }
          else { prev.link1 = b; prev.link1Rip = this.rip; }
        }
      }
      const insns = b.insns;
      if (++b.runs === jitConfig.threshold && jitConfig.enabled) b.fn = compileBlock(b);
      const n = insns.length < left ? insns.length : left;
      let i = 0;
      this.exitBlock = false;
      const r0 = this.rip;
      const fn = b.fn;
      try {
        if (fn !== undefined && n === insns.length) i = fn(this);
        else {
          for (; i < n; i++) {
            const d = insns[i];
            this.ripStart = this.rip;
            this.rip += d.len;
            d.h(this, d);
            if (this.exitBlock) { i++; break; }
          }
        }
      } catch (e) {
        if (!(e instanceof CpuFault)) throw e;
        if (fn !== undefined && n === insns.length) i = retiredBefore(b, r0, this.ripStart);
        if (e.soft) i++; // a software interrupt retires; its frame holds the next RIP
        else this.rip = this.ripStart;
        this.retire(b, i);
        left -= i;
        prev = undefined;
        if (!this.takeFault(e)) return Stop.Fault;
        continue;
      }
      this.retire(b, i);
      left -= i;
      prev = b;
    }
    return Stop.Budget;
  }

  /** Count the first n instructions of a block as retired. */
  private retire(b: Block, n: number): void {
    this.insns += n;
    if (n === b.insns.length) this.cycles += b.cycles;
    else for (let i = 0; i < n; i++) this.cycles += b.insns[i].cycles;
  }

  /** Deliver a fault thrown by a handler; false when it stops the machine. */
  private takeFault(e: unknown): boolean {
    if (!(e instanceof CpuFault)) throw e;
    if (e.vector === Vec.PF) this.cr2 = e.cr2;
    return this.raise(e.vector, e.errorCode, e.soft, e);
  }

  /**
   * Deliver an exception or interrupt: to the hypervisor hook if one takes it, else through
   * the IDT. With no IDT loaded (limit 0, the raw machine) the CPU stops and records it.
   */
  raise(vector: number, errorCode: number, soft: boolean, f?: CpuFault): boolean {
    const hasErr = !soft && (vector === 8 || (vector >= 10 && vector <= 14) || vector === 17);
    if (this.hooks.exception && this.hooks.exception(this, vector, errorCode, hasErr, soft)) return true;
    if (this.idtrLimit === 0) {
      this.stopFault = f ?? new CpuFault(vector, errorCode);
      return false;
    }
    try {
      deliverEvent(this, vector, errorCode, hasErr, soft);
      return true;
    } catch (e2) {
      if (!(e2 instanceof CpuFault)) throw e2;
      if (vector === Vec.DF) { this.stopFault = new CpuFault(Vec.DF, 0); return false; } // triple fault
      const contributory = (v: number) => v === 0 || (v >= 10 && v <= 13);
      if ((contributory(vector) && contributory(e2.vector)) || (vector === Vec.PF && (contributory(e2.vector) || e2.vector === Vec.PF))) {
        return this.raise(Vec.DF, 0, false);
      }
      if (e2.vector === Vec.PF) this.cr2 = e2.cr2;
      return this.raise(e2.vector, e2.errorCode, false, e2);
    }
  }

  /** Make the next block boundary re-check state (after mode changes, sti, ...). */
  endBlock(): void { this.exitBlock = true; }

  /** The 64-bit TSC value (virtual: retired cycles). */
  tsc(): number { return this.cycles + this.tscOffset; }
  /** Added to the retired cycles to give the TSC (a WRMSR to the TSC sets it; see msr.ts). */
  tscOffset = 0;

  get long(): boolean { return (this.efer & Efer.LMA) !== 0; }
  get ifSet(): boolean { return (this.f[FS.FLAGS] & F.IF) !== 0; }
}

