// Segment descriptors: reading them from the GDT/LDT, the protection checks of every segment
// register load (SDM vol. 3 ch. 5, and the MOV/POP/LDS/JMP/CALL/RET pseudo-code of vol. 2),
// and the far transfers that change CS (jmp, call with call gates, ret to an outer level).
//
// Every check runs before any state changes, so a fault leaves the machine as it was (the
// descriptor's accessed bit aside, which hardware also sets early). Descriptors are read
// into caller-owned scratch objects: no allocation on the common paths.
//
// Not modelled: task switches (jmp/call to a TSS or task gate raise #GP(sel)), virtual-8086
// mode, 16-bit TSS stack switches, and segment limit checks on ordinary data accesses
// (cpu.ea adds the base but does not check the limit, nor that the segment is usable).

import type { Cpu } from './cpu.js';
import { SegAttr } from './cpu.js';
import { CpuFault, Vec } from './fault.js';
import { Efer, Mode, Seg } from './state.js';

const TWO32 = 4294967296;

/** A raw 8-byte descriptor as two int32 words. */
export interface Desc { lo: number; hi: number }

export function newDesc(): Desc { return { lo: 0, hi: 0 }; }

/** Descriptor access byte fields (bits 8..15 of the high word). */
export const enum Acc { A = 0x1, RW = 0x2, CE = 0x4, CODE = 0x8, S = 0x10, DPL = 0x60, P = 0x80 }

/** System descriptor types (S = 0). */
export const enum SysType {
  TSS16 = 1, LDT = 2, TSS16_BUSY = 3, CALL16 = 4, TASK = 5, INT16 = 6, TRAP16 = 7,
  TSS = 9, TSS_BUSY = 0xb, CALL = 0xc, INT = 0xe, TRAP = 0xf,
}

/** Linear address of a selector's descriptor, or throws vec(sel) if it is outside its table. */
export function descAddr(cpu: Cpu, sel: number, vec: number = Vec.GP, ext = 0): number {
  const idx = sel & 0xfff8;
  const s = cpu.seg;
  if (sel & 4) {
    if ((s.attr[Seg.LDTR] & SegAttr.P) === 0 || idx + 7 > s.limit[Seg.LDTR]) throw new CpuFault(vec, (sel & 0xfffc) | ext);
    return linBase(cpu, Seg.LDTR) + idx;
  }
  if (idx + 7 > cpu.gdtrLimit) throw new CpuFault(vec, (sel & 0xfffc) | ext);
  return cpu.gdtrBase + idx;
}

/** The base of a segment register as a linear address (48-bit in long mode). */
export function linBase(cpu: Cpu, seg: number): number {
  const s = cpu.seg;
  if (!(cpu.efer & Efer.LMA)) return s.baseLo[seg] >>> 0;
  return (s.baseHi[seg] & 0xffff) * TWO32 + (s.baseLo[seg] >>> 0);
}

// GDT, LDT, IDT and TSS accesses are implicit supervisor accesses: a paged memory checks
// them as such at any CPL (memory.ts). These wrap one access each, restoring the flag so
// they nest inside a caller that set it.
export function sysRd32(cpu: Cpu, a: number): number {
  const m = cpu.mem, prev = m.implicitSupervisor;
  m.implicitSupervisor = true;
  try { return m.rd32(a); } finally { m.implicitSupervisor = prev; }
}
export function sysRd16(cpu: Cpu, a: number): number {
  const m = cpu.mem, prev = m.implicitSupervisor;
  m.implicitSupervisor = true;
  try { return m.rd16(a); } finally { m.implicitSupervisor = prev; }
}
export function sysWr32(cpu: Cpu, a: number, v: number): void {
  const m = cpu.mem, prev = m.implicitSupervisor;
  m.implicitSupervisor = true;
  try { m.wr32(a, v); } finally { m.implicitSupervisor = prev; }
}

/** Read the descriptor for sel into out; vec(sel|ext) if outside the table. Returns its address. */
export function fetchDesc(cpu: Cpu, sel: number, out: Desc, vec: number = Vec.GP, ext = 0): number {
  const a = descAddr(cpu, sel, vec, ext);
  out.lo = sysRd32(cpu, a);
  out.hi = sysRd32(cpu, a + 4);
  return a;
}

/** Allocating form for cold paths and tests. */
export function readDesc(cpu: Cpu, sel: number, vec: number = Vec.GP): Desc {
  const d = newDesc();
  fetchDesc(cpu, sel, d, vec);
  return d;
}

export function descBase(d: Desc): number {
  return ((d.lo >>> 16) | ((d.hi & 0xff) << 16) | (d.hi & 0xff000000)) >>> 0;
}
export function descLimit(d: Desc): number {
  const raw = (d.lo & 0xffff) | (d.hi & 0xf0000);
  return (d.hi & 0x800000) ? ((raw * 4096) + 4095) >>> 0 : raw;
}
/** Access byte plus AVL/L/DB/G in SegState.attr layout. */
export function descAttr(d: Desc): number {
  return ((d.hi >>> 8) & 0xff) | (((d.hi >>> 20) & 0xf) << 8);
}
export function accOf(d: Desc): number { return (d.hi >>> 8) & 0xff; }
export function dplOf(d: Desc): number { return (d.hi >>> 13) & 3; }

/** Load a descriptor into a segment register cache (no checks). A descriptor load always
 *  gives a 32-bit base: in 64-bit mode MOV to FS/GS drops the upper half of the old base.
 *  A null selector leaves an unusable register with base 0 (Intel; AMD keeps the base). */
export function setSegCache(cpu: Cpu, seg: number, sel: number, d: Desc | null): void {
  const s = cpu.seg;
  const base = d ? descBase(d) | 0 : 0;
  if (seg === Seg.CS) csBase(cpu, base);
  s.sel[seg] = sel & 0xffff;
  s.baseHi[seg] = 0;
  if (!d) { s.baseLo[seg] = 0; s.limit[seg] = 0; s.attr[seg] = 0; return; }
  s.baseLo[seg] = base;
  s.limit[seg] = descLimit(d);
  s.attr[seg] = descAttr(d);
}

/** Set the CS base. Decoded blocks are linked by RIP within a memory epoch, so a new CS
 *  base (RIP now names other linear addresses) must start a new epoch. */
export function csBase(cpu: Cpu, base: number): void {
  if (cpu.seg.baseLo[Seg.CS] !== (base | 0) || cpu.seg.baseHi[Seg.CS] !== 0) {
    cpu.seg.baseLo[Seg.CS] = base; cpu.seg.baseHi[Seg.CS] = 0;
    cpu.mem.epoch++;
  }
}

/** A flat 4 GiB segment with the given attributes (syscall/sysret/sysenter loads). */
export function setFlatSeg(cpu: Cpu, seg: number, sel: number, attr: number): void {
  const s = cpu.seg;
  if (seg === Seg.CS) csBase(cpu, 0);
  s.sel[seg] = sel & 0xffff; s.baseLo[seg] = 0; s.baseHi[seg] = 0; s.limit[seg] = 0xffffffff; s.attr[seg] = attr;
}

/** Null SS in 64-bit mode (interrupts, call gates, far returns at CPL < 3): the selector is
 *  the RPL alone; the attributes keep DPL = CPL so stack code sees a usable 64-bit stack. */
export function setNullSS(cpu: Cpu, cpl: number): void {
  setFlatSeg(cpu, Seg.SS, cpl, 0x93 | (cpl << 5) | SegAttr.DB | SegAttr.G);
}

/** Recompute the code mode from CR0.PE, EFER.LMA and the CS attributes. */
export function updateMode(cpu: Cpu): void {
  const a = cpu.seg.attr[Seg.CS];
  let m: Mode;
  if (!(cpu.cr0 & 1)) m = Mode.Real;
  else if ((cpu.efer & Efer.LMA) && (a & SegAttr.L)) m = Mode.Long64;
  else m = (a & SegAttr.DB) ? Mode.Prot32 : Mode.Prot16;
  if (m !== cpu.mode) { cpu.mode = m; cpu.endBlock(); }
}

/** Set the accessed bit of a descriptor in memory if it is clear (as hardware does on load). */
export function markAccessed(cpu: Cpu, addr: number, d: Desc): void {
  if (d.hi & 0x100) return;
  d.hi |= 0x100;
  sysWr32(cpu, addr + 4, d.hi);
}

function gp(sel: number, ext = 0): never { throw new CpuFault(Vec.GP, (sel & 0xfffc) | ext); }

// ---- data and stack segment loads ------------------------------------------------------

const scratch = newDesc();

/**
 * Check sel for DS/ES/FS/GS (mov, pop, lds...). Returns the descriptor address with the
 * descriptor in out, or -1 for a null selector (legal: the register becomes unusable).
 */
export function checkDataSeg(cpu: Cpu, sel: number, out: Desc): number {
  if ((sel & 0xfffc) === 0) return -1;
  const a = fetchDesc(cpu, sel, out);
  const acc = accOf(out);
  // Data, or readable code.
  if (!(acc & Acc.S) || (acc & (Acc.CODE | Acc.RW)) === Acc.CODE) gp(sel);
  // Data and non-conforming code: DPL >= CPL and DPL >= RPL.
  if ((acc & (Acc.CODE | Acc.CE)) !== (Acc.CODE | Acc.CE)) {
    const dpl = (acc >> 5) & 3;
    if (dpl < cpu.cpl || dpl < (sel & 3)) gp(sel);
  }
  if (!(acc & Acc.P)) throw new CpuFault(Vec.NP, sel & 0xfffc);
  return a;
}

/**
 * Check sel for SS at privilege cpl. Returns the descriptor address, or -1 for a null
 * selector allowed in 64-bit mode (cpl < 3, RPL = cpl). `vec` is the fault for a bad
 * selector: #GP for mov/pop/lss/ret/iret, #TS for a stack switch through the TSS.
 */
export function checkStackSeg(cpu: Cpu, sel: number, cpl: number, out: Desc, long64: boolean, vec: number = Vec.GP, ext = 0): number {
  if ((sel & 0xfffc) === 0) {
    if (long64 && cpl < 3 && (sel & 3) === cpl) return -1;
    throw new CpuFault(vec, ext);
  }
  if ((sel & 3) !== cpl) throw new CpuFault(vec, (sel & 0xfffc) | ext);
  const a = fetchDesc(cpu, sel, out, vec, ext);
  const acc = accOf(out);
  if ((acc & (Acc.S | Acc.CODE | Acc.RW)) !== (Acc.S | Acc.RW) || ((acc >> 5) & 3) !== cpl) throw new CpuFault(vec, (sel & 0xfffc) | ext);
  if (!(acc & Acc.P)) throw new CpuFault(Vec.SS, (sel & 0xfffc) | ext);
  return a;
}

/** Commit a checked load: the cache, and the accessed bit for a real descriptor. */
export function commitSeg(cpu: Cpu, seg: number, sel: number, addr: number, d: Desc): void {
  if (addr < 0) {
    if (seg === Seg.SS) { setNullSS(cpu, sel & 3); cpu.seg.sel[Seg.SS] = sel & 3; } else setSegCache(cpu, seg, sel, null);
    return;
  }
  markAccessed(cpu, addr, d);
  setSegCache(cpu, seg, sel, d);
}

/** The real-mode (and virtual-8086) load: base = sel * 16, limit and attributes kept. */
function loadReal(cpu: Cpu, seg: number, sel: number): void {
  const s = cpu.seg;
  if (seg === Seg.CS) csBase(cpu, (sel & 0xffff) << 4);
  s.sel[seg] = sel & 0xffff; s.baseLo[seg] = (sel & 0xffff) << 4; s.baseHi[seg] = 0;
  if (seg === Seg.CS || s.attr[seg] === 0) { s.attr[seg] = 0x93; s.limit[seg] = 0xffff; }
}

/** mov/pop/lds... into ES SS DS FS GS: all protection checks, then the load. */
export function loadSeg(cpu: Cpu, seg: number, sel: number): void {
  sel &= 0xffff;
  if (cpu.mode === Mode.Real) { loadReal(cpu, seg, sel); return; }
  const d = scratch;
  if (seg === Seg.SS) {
    const a = checkStackSeg(cpu, sel, cpu.cpl, d, cpu.mode === Mode.Long64);
    commitSeg(cpu, Seg.SS, sel, a, d);
    return;
  }
  const a = checkDataSeg(cpu, sel, d);
  commitSeg(cpu, seg, sel, a, d);
}

/** After a return to an outer privilege level: ES DS FS GS that the new CPL may not use
 *  (data or non-conforming code with DPL < CPL) become null. In 64-bit mode the FS/GS base
 *  (the MSR value) is left alone. */
const DATA_SEGS = [Seg.ES, Seg.DS, Seg.FS, Seg.GS];
export function nullInaccessible(cpu: Cpu): void {
  const s = cpu.seg;
  for (const seg of DATA_SEGS) {
    const a = s.attr[seg];
    if ((s.sel[seg] & 0xfffc) === 0 && (a & SegAttr.P) === 0) continue;
    const conformingCode = (a & (Acc.CODE | Acc.CE)) === (Acc.CODE | Acc.CE);
    if (!conformingCode && ((a >> 5) & 3) < cpu.cpl) {
      s.sel[seg] = 0; s.attr[seg] = 0;
      if (seg < Seg.FS || !(cpu.efer & Efer.LMA)) { s.baseLo[seg] = 0; s.baseHi[seg] = 0; s.limit[seg] = 0; }
    }
  }
}

// ---- code segments and far transfers ----------------------------------------------------

const csD = newDesc(), ssD = newDesc(), gateD = newDesc(), gateHi = newDesc();

/** A code descriptor's L/D combination valid under LMA (L=1 with D=1 is reserved). */
function checkLD(cpu: Cpu, d: Desc, sel: number): void {
  if ((cpu.efer & Efer.LMA) && (d.hi & 0x200000) && (d.hi & 0x400000)) gp(sel);
}

/** True if the code descriptor gives 64-bit code under the current EFER. */
function is64(cpu: Cpu, d: Desc): boolean {
  return (cpu.efer & Efer.LMA) !== 0 && (d.hi & 0x200000) !== 0;
}

/** Check a target offset against the new code segment (limit, or canonical for 64-bit);
 *  returns the new RIP. A 64-bit offset into a 32-bit segment must fit its limit. */
export function targetRip(cpu: Cpu, d: Desc, lo: number, hi: number, size: number): number {
  if (is64(cpu, d)) {
    if (size !== 8) return size === 2 ? lo & 0xffff : lo >>> 0;
    if (((hi << 16) >> 16) !== hi) throw new CpuFault(Vec.GP, 0);
    return (hi & 0xffff) * TWO32 + (lo >>> 0);
  }
  const off = size === 2 ? lo & 0xffff : lo >>> 0;
  if (off > descLimit(d) || (size === 8 && hi !== 0)) throw new CpuFault(Vec.GP, 0);
  return off;
}

/** Load CS (already checked), the new CPL and RIP; the mode follows. */
function commitCS(cpu: Cpu, sel: number, addr: number, d: Desc, cpl: number, rip: number): void {
  markAccessed(cpu, addr, d);
  setSegCache(cpu, Seg.CS, (sel & 0xfffc) | cpl, d);
  cpu.cpl = cpl;
  cpu.rip = rip;
  updateMode(cpu);
  cpu.endBlock();
}

/** Far jmp or call to sel:offset (offset halves lo/hi at operand size osz). */
export function farTransfer(cpu: Cpu, sel: number, lo: number, hi: number, osz: number, call: boolean): void {
  sel &= 0xffff;
  if (cpu.mode === Mode.Real) {
    const rip = osz === 2 ? lo & 0xffff : lo >>> 0;
    if (call) pushFar(cpu, osz, cpu.seg.sel[Seg.CS], cpu.rip);
    loadReal(cpu, Seg.CS, sel);
    cpu.rip = rip;
    cpu.endBlock();
    return;
  }
  if ((sel & 0xfffc) === 0) throw new CpuFault(Vec.GP, 0);
  const d = csD;
  const addr = fetchDesc(cpu, sel, d);
  const acc = accOf(d);
  const cpl = cpu.cpl;
  if (acc & Acc.S) {
    if (!(acc & Acc.CODE)) gp(sel);
    const dpl = (acc >> 5) & 3;
    if (acc & Acc.CE) { if (dpl > cpl) gp(sel); }
    else if ((sel & 3) > cpl || dpl !== cpl) gp(sel);
    if (!(acc & Acc.P)) throw new CpuFault(Vec.NP, sel & 0xfffc);
    checkLD(cpu, d, sel);
    const rip = targetRip(cpu, d, lo, hi, osz);
    if (call) pushFar(cpu, osz, cpu.seg.sel[Seg.CS], cpu.rip);
    commitCS(cpu, sel, addr, d, cpl, rip);
    return;
  }
  const type = acc & 0xf;
  const long = (cpu.efer & Efer.LMA) !== 0;
  if (type === SysType.CALL || (type === SysType.CALL16 && !long)) {
    gateD.lo = d.lo; gateD.hi = d.hi; // csD is about to hold the target's descriptor
    viaCallGate(cpu, sel, gateD, call);
    return;
  }
  // Task switches (TSS, task gate) are not modelled; in long mode they are #GP anyway.
  gp(sel);
}

/** Push the return CS:IP of a far call at operand size osz; RSP restored on a fault. */
function pushFar(cpu: Cpu, osz: number, cs: number, rip: number): void {
  const r = cpu.r, sl = r[8], sh = r[9];
  try {
    cpu.push(osz, cs, 0);
    const lo = cpu.ripHalves(rip);
    cpu.push(osz, lo, cpu.t);
  } catch (e) { r[8] = sl; r[9] = sh; throw e; }
}

/** jmp/call through a call gate (legacy 8-byte gates, or 16-byte 64-bit gates in long mode). */
function viaCallGate(cpu: Cpu, gsel: number, g: Desc, call: boolean): void {
  const long = (cpu.efer & Efer.LMA) !== 0;
  const cpl = cpu.cpl;
  const gdpl = dplOf(g);
  if (gdpl < cpl || gdpl < (gsel & 3)) gp(gsel);
  if (!((g.hi >>> 8) & Acc.P)) throw new CpuFault(Vec.NP, gsel & 0xfffc);
  const gate32 = (g.hi & 0x800) !== 0;
  let offLo = (g.lo & 0xffff) | (g.hi & 0xffff0000), offHi = 0;
  if (!gate32) offLo &= 0xffff;
  if (long) {
    // The upper 8 bytes: offset 63:32, and a type field that must be 0.
    fetchDesc(cpu, (gsel & 0xfffc) + 8, gateHi);
    if ((gateHi.hi >>> 8) & 0x1f) gp(gsel);
    offHi = gateHi.lo;
  }
  const sel = g.lo >>> 16;
  if ((sel & 0xfffc) === 0) throw new CpuFault(Vec.GP, 0);
  const d = csD;
  const addr = fetchDesc(cpu, sel, d);
  const acc = accOf(d), dpl = (acc >> 5) & 3;
  if ((acc & (Acc.S | Acc.CODE)) !== (Acc.S | Acc.CODE) || dpl > cpl) gp(sel);
  if (!(acc & Acc.P)) throw new CpuFault(Vec.NP, sel & 0xfffc);
  if (long && (!(d.hi & 0x200000) || (d.hi & 0x400000))) gp(sel); // a 64-bit gate needs 64-bit code
  const conforming = (acc & Acc.CE) !== 0;
  if (!call && !conforming && dpl !== cpl) gp(sel);
  const rip = targetRip(cpu, d, offLo, offHi, long ? 8 : gate32 ? 4 : 2);
  const size = long ? 8 : gate32 ? 4 : 2;
  if (!call) { commitCS(cpu, sel, addr, d, conforming ? cpl : dpl, rip); return; }
  if (conforming || dpl === cpl) {
    pushFar(cpu, size, cpu.seg.sel[Seg.CS], cpu.rip);
    commitCS(cpu, sel, addr, d, cpl, rip);
    return;
  }
  callOuter(cpu, g, sel, addr, d, dpl, rip, size);
}

/** A call gate to a more privileged level: switch to the inner stack from the TSS, push the
 *  old SS:SP, the parameters (legacy gates) and the return CS:IP. */
function callOuter(cpu: Cpu, g: Desc, sel: number, addr: number, d: Desc, ncpl: number, rip: number, size: number): void {
  const r = cpu.r, s = cpu.seg;
  const long = (cpu.efer & Efer.LMA) !== 0;
  const oldSs = s.sel[Seg.SS], oldSpLo = r[8], oldSpHi = r[9];
  const oldCs = s.sel[Seg.CS], retLo = cpu.ripHalves(), retHi = cpu.t;
  let nspLo: number, nspHi = 0, nss: number, ssAddr = -1;
  if (long) {
    const a = tssLinear(cpu, 4 + ncpl * 8, 8);
    nspLo = sysRd32(cpu, a); nspHi = sysRd32(cpu, a + 4);
    if (((nspHi << 16) >> 16) !== nspHi) throw new CpuFault(Vec.SS, 0);
    nss = ncpl;
  } else {
    checkTss32(cpu);
    const a = tssLinear(cpu, 4 + ncpl * 8, 6);
    nspLo = sysRd32(cpu, a); nss = sysRd16(cpu, a + 4);
    ssAddr = checkStackSeg(cpu, nss, ncpl, ssD, false, Vec.TS);
  }
  // Gather the frame (and legacy parameters from the old stack) before writing anything.
  const frame: number[] = [oldSs, 0, oldSpLo, oldSpHi];
  if (!long) {
    const n = g.hi & 0x1f;
    for (let i = n - 1; i >= 0; i--) frame.push(cpu.peek(size, i * size), 0);
  }
  frame.push(oldCs, 0, retLo, retHi);
  // Write the frame on the new stack. The writes belong to the new, inner level: from CPL 3
  // they are supervisor accesses. Registers change only once every write is done.
  const count = frame.length / 2;
  const m = cpu.mem, prev = m.implicitSupervisor;
  m.implicitSupervisor = prev || cpu.cpl === 3;
  let off = 0;
  const big = (ssD.hi & 0x400000) !== 0;
  try {
    if (long) {
      let sp = cpu.linear64(nspLo, nspHi, true);
      m.probeWrite(wrap48(sp - count * 8), count * 8);
      for (let i = 0; i < frame.length; i += 2) { sp = wrap48(sp - 8); m.wr64(sp, frame[i], frame[i + 1]); }
    } else {
      const base = descBase(ssD);
      off = big ? nspLo >>> 0 : nspLo & 0xffff;
      for (let i = 0; i < frame.length; i += 2) {
        off = big ? (off - size) >>> 0 : (off - size) & 0xffff;
        cpu.wr((base + off) % TWO32, size, frame[i], 0);
      }
    }
  } finally { m.implicitSupervisor = prev; }
  if (long) {
    setNullSS(cpu, ncpl);
    r[8] = (nspLo - count * 8) | 0;
    r[9] = (nspLo >>> 0) < count * 8 ? (nspHi - 1) | 0 : nspHi;
  } else {
    commitSeg(cpu, Seg.SS, nss, ssAddr, ssD);
    r[8] = big ? off | 0 : (nspLo & ~0xffff) | off;
    r[9] = 0;
  }
  commitCS(cpu, sel, addr, d, ncpl, rip);
}

function wrap48(v: number): number { return v < 0 ? v + 281474976710656 : v; }

/** Linear address of [TSS + off] after checking off+len-1 against the TSS limit (#TS). */
export function tssLinear(cpu: Cpu, off: number, len: number, ext = 0): number {
  const s = cpu.seg;
  if (off + len - 1 > s.limit[Seg.TR]) throw new CpuFault(Vec.TS, (s.sel[Seg.TR] & 0xfffc) | ext);
  return linBase(cpu, Seg.TR) + off;
}

/** Legacy stack switches read a 32-bit TSS; 16-bit TSSes are not modelled. */
function checkTss32(cpu: Cpu): void {
  const t = cpu.seg.attr[Seg.TR] & 0xf;
  if (t !== SysType.TSS && t !== SysType.TSS_BUSY) throw new CpuFault(Vec.TS, cpu.seg.sel[Seg.TR] & 0xfffc);
}

/**
 * Check a return CS (far ret, iret) against the current CPL; returns the descriptor address
 * with the descriptor in out. The new CPL is the selector's RPL.
 */
export function checkReturnCS(cpu: Cpu, sel: number, out: Desc): number {
  if ((sel & 0xfffc) === 0) throw new CpuFault(Vec.GP, 0);
  const a = fetchDesc(cpu, sel, out);
  const acc = accOf(out), dpl = (acc >> 5) & 3, rpl = sel & 3;
  if ((acc & (Acc.S | Acc.CODE)) !== (Acc.S | Acc.CODE)) gp(sel);
  if (rpl < cpu.cpl) gp(sel);
  if (acc & Acc.CE) { if (dpl > rpl) gp(sel); } else if (dpl !== rpl) gp(sel);
  if (!(acc & Acc.P)) throw new CpuFault(Vec.NP, sel & 0xfffc);
  checkLD(cpu, out, sel);
  return a;
}

/** Far return (CB, CA iw): pop IP and CS, and SP and SS when returning to an outer level. */
export function farReturn(cpu: Cpu, osz: number, imm: number): void {
  const r = cpu.r;
  const ipLo = cpu.peek(osz, 0), ipHi = osz === 8 ? cpu.t : 0;
  const sel = cpu.peek(osz, osz) & 0xffff;
  if (cpu.mode === Mode.Real) {
    cpu.adjustSp(2 * osz + imm);
    loadReal(cpu, Seg.CS, sel);
    cpu.rip = osz === 2 ? ipLo & 0xffff : ipLo >>> 0;
    cpu.endBlock();
    return;
  }
  const d = csD;
  const addr = checkReturnCS(cpu, sel, d);
  const rpl = sel & 3;
  const rip = targetRip(cpu, d, ipLo, ipHi, osz);
  if (rpl === cpu.cpl) {
    cpu.adjustSp(2 * osz + imm);
    commitCS(cpu, sel, addr, d, rpl, rip);
    return;
  }
  // Outer level: the caller's SS:SP sit above the parameters.
  const spLo = cpu.peek(osz, 2 * osz + imm), spHi = osz === 8 ? cpu.t : 0;
  const ss = cpu.peek(osz, 3 * osz + imm) & 0xffff;
  const ssAddr = checkStackSeg(cpu, ss, rpl, ssD, is64(cpu, d));
  markAccessed(cpu, addr, d);
  commitSeg(cpu, Seg.SS, ss, ssAddr, ssD);
  // The new RSP, then release imm bytes of parameters on the caller's stack.
  if (osz === 8) { r[8] = spLo; r[9] = spHi; }
  else if (osz === 4) { r[8] = spLo; r[9] = 0; }
  else r[8] = (r[8] & ~0xffff) | (spLo & 0xffff);
  commitCS(cpu, sel, addr, d, rpl, rip);
  cpu.adjustSp(imm);
  nullInaccessible(cpu);
}
