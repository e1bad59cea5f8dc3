// x87 plumbing shared by the x87-* families: the register stack and tags, the instruction
// prologue (#NM, pending #MF, FIP/FOP/FDP) and epilogue (status word, ES/B summary), stack
// faults, and memory operand loads.
//
// Exceptions: masked ones follow the host bit for bit. Unmasked ones set their flag and
// ES/B the way the host does (IE/ZE/DE leave the destination and the stack alone,
// OE/UE write the exponent-wrapped result to a register or store nothing to memory, PE
// writes the result); the #MF itself is raised by the next waiting x87 instruction when
// CR0.NE is set. With CR0.NE clear a real PC would signal FERR#/IRQ13; we raise nothing.

import type { Cpu } from '../cpu.js';
import { CpuFault, Vec } from '../fault.js';
import { Exc, fromF32, fromF64, fromInt, fx, indefinite, kind, K, mk, type F80 } from '../float80.js';
import type { Fpu } from '../fpu.js';
import type { Insn } from '../insn.js';
import { classifyTag } from '../fxsave.js';
import { Cr0, Mode, Seg } from '../state.js';

export const enum Sw { C0 = 0x100, C1 = 0x200, C2 = 0x400, C3 = 0x4000, ES = 0x80, B = 0x8000, SF = 0x40, CC = 0x4700, FLAGS = 0x7f }

const TWO32 = 4294967296;

/** Prologue of every x87 instruction. waiting: all but fnstcw/fnstsw/fnclex/fninit/
 *  fnstenv/fnsave check for a pending unmasked exception first. */
export function begin(cpu: Cpu, waiting: boolean): Fpu {
  const cr0 = cpu.cr0;
  if (cr0 & (Cr0.EM | Cr0.TS)) throw new CpuFault(Vec.NM);
  const f = cpu.fpu;
  if (waiting && (f.sw & Sw.ES) && (cr0 & Cr0.NE)) throw new CpuFault(Vec.MF);
  fx.cw = f.cw; fx.exc = 0; fx.up = false; fx.den = false;
  return f;
}

/** Record FIP/FCS/FOP (and FDP/FDS for a memory operand) for a non-control instruction. */
export function note(cpu: Cpu, d: Insn, lin = -1): void {
  const f = cpu.fpu;
  f.fop = ((d.op & 7) << 8) | (d.mod << 6) | ((d.reg & 7) << 3) | (d.rm & 7);
  const ip = cpu.ripStart;
  const hi = Math.floor(ip / TWO32);
  f.fipLo = (ip - hi * TWO32) | 0; f.fipHi = hi;
  f.fcs = cpu.seg.sel[Seg.CS];
  if (lin >= 0) {
    // FDP is the offset in the segment: the linear address less the base outside long mode.
    if (cpu.mode !== Mode.Long64) lin = (lin - (cpu.seg.baseLo[d.seg] >>> 0) + TWO32) % TWO32;
    const dh = Math.floor(lin / TWO32);
    f.fdpLo = (lin - dh * TWO32) | 0; f.fdpHi = dh;
    f.fds = cpu.seg.sel[d.seg];
  }
}

/** Epilogue: merge the accumulated exceptions, set C1 (unless undefined, keep it), and the
 *  ES/B summary of unmasked exceptions. */
export function end(f: Fpu, c1?: boolean): void {
  let sw = f.sw | (fx.exc & Sw.FLAGS);
  if (c1 !== undefined) sw = c1 ? sw | Sw.C1 : sw & ~Sw.C1;
  f.sw = summary(sw, f.cw);
}

export function summary(sw: number, cw: number): number {
  return (sw & ~cw & 0x3f) ? sw | Sw.ES | Sw.B : sw & ~(Sw.ES | Sw.B);
}

/** Set the condition codes C3 C2 C1 C0 (bits in their status word positions). */
export function setCC(f: Fpu, cc: number): void { f.sw = (f.sw & ~Sw.CC) | cc; }

/** True when an unmasked IE, ZE or DE was raised: the destination must not be written. */
export function blocked(): boolean { return (fx.exc & ~fx.cw & (Exc.IE | Exc.ZE | Exc.DE)) !== 0; }

// ---- register stack ------------------------------------------------------------------

export function phys(f: Fpu, i: number): number { return (f.top + i) & 7; }
export function isEmpty(f: Fpu, i: number): boolean { return ((f.tw >> (phys(f, i) * 2)) & 3) === 3; }

export function getSt(f: Fpu, i: number): F80 {
  const p = (f.top + i) & 7;
  const se = f.signExp[p];
  return mk(se >> 15, se & 0x7fff, (BigInt(f.mantHi[p] >>> 0) << 32n) | BigInt(f.mantLo[p] >>> 0));
}

export function setPhys(f: Fpu, p: number, x: F80): void {
  const se = (x.s << 15) | x.e;
  const lo = Number(x.m & 0xffffffffn) | 0, hi = Number(x.m >> 32n) | 0;
  f.signExp[p] = se; f.mantLo[p] = lo; f.mantHi[p] = hi;
  f.tw = (f.tw & ~(3 << (p * 2))) | (classifyTag(se, lo, hi) << (p * 2));
}

export function setSt(f: Fpu, i: number, x: F80): void { setPhys(f, (f.top + i) & 7, x); }

export function freeSt(f: Fpu, i: number): void { f.tw |= 3 << (phys(f, i) * 2); }

export function pop(f: Fpu): void {
  f.tw |= 3 << (f.top * 2);
  f.top = (f.top + 1) & 7;
}

/** Push x. A full slot is a stack overflow: IE SF C1=1, and the indefinite is pushed when
 *  IE is masked (nothing when unmasked). Returns false on overflow. */
export function push(f: Fpu, x: F80): boolean {
  const p = (f.top - 1) & 7;
  if (((f.tw >> (p * 2)) & 3) !== 3) {
    fx.exc |= Exc.IE | Exc.SF;
    if (fx.cw & Exc.IE) { f.top = p; setPhys(f, p, indefinite()); }
    return false;
  }
  f.top = p;
  setPhys(f, p, x);
  return true;
}

/** Is there room to push? Otherwise records the overflow (IE SF). */
export function canPush(f: Fpu): boolean {
  if (((f.tw >> (((f.top - 1) & 7) * 2)) & 3) === 3) return true;
  fx.exc |= Exc.IE | Exc.SF;
  return false;
}

/** A stack underflow (reading an empty register): IE SF; true when IE is masked, so the
 *  instruction goes on with the indefinite. */
export function underflow(): boolean {
  fx.exc |= Exc.IE | Exc.SF;
  return (fx.cw & Exc.IE) !== 0;
}

// ---- memory operands -----------------------------------------------------------------

/** Memory operand types of the D8-DF arithmetic rows: m32fp, m32int, m64fp, m16int. */
export const enum Mt { F32 = 0, I32 = 1, F64 = 2, I16 = 3 }

/** Read a memory operand and widen it to 80 bits (exact). A denormal float sets fx.den. */
export function loadMem(cpu: Cpu, lin: number, t: Mt): F80 {
  const m = cpu.mem;
  switch (t) {
    case Mt.F32: {
      const b = m.rd32(lin);
      if ((b & 0x7f800000) === 0 && (b & 0x7fffff) !== 0) fx.den = true;
      return fromF32(b);
    }
    case Mt.F64: {
      const lo = m.rd64(lin), hi = m.hi;
      if ((hi & 0x7ff00000) === 0 && ((hi & 0xfffff) | lo) !== 0) fx.den = true;
      return fromF64((BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0));
    }
    case Mt.I32: return fromInt(BigInt(m.rd32(lin) | 0));
    default: return fromInt(BigInt((m.rd16(lin) << 16) >> 16));
  }
}

export function readM80(cpu: Cpu, lin: number): F80 {
  const m = cpu.mem;
  const lo = m.rd64(lin), hi = m.hi;
  const se = m.rd16(lin + 8);
  return mk(se >> 15, se & 0x7fff, (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0));
}

export function writeM80(cpu: Cpu, lin: number, x: F80): void {
  const m = cpu.mem;
  m.probeWrite(lin, 10);
  m.wr64(lin, Number(x.m & 0xffffffffn) | 0, Number(x.m >> 32n) | 0);
  m.wr16(lin + 8, (x.s << 15) | x.e);
}

export function wr64Big(cpu: Cpu, lin: number, v: bigint): void {
  cpu.mem.wr64(lin, Number(v & 0xffffffffn) | 0, Number((v >> 32n) & 0xffffffffn) | 0);
}

export { kind, K };
