// Multiply and divide: the F6/F7 group (test, not, neg, mul, imul, div, idiv) and the
// two- and three-operand imul (0F AF, 69, 6B).
//
// No BigInt: 64x64->128 products come from four 32x32 products, each built from 16-bit
// limbs so every partial sum stays exact in a double; 128/64 division uses doubles when both
// operands are below 2^52, 16-bit limbs for a 32-bit divisor, and shift-subtract otherwise.
//
// Flags, as this AMD host (Zen 4) sets them -- the SDM leaves most of them undefined:
//   mul/imul (all forms): CF = OF = "the high half is significant"; SF ZF AF PF unchanged.
//   div/idiv: CF OF unchanged; SF=0 ZF=0 PF=0 AF=1. (Intel differs: tests mask nothing.)
// #DE (divide by zero, quotient too large) is raised before any register or flag changes.

import type { Cpu } from '../cpu.js';
import { CpuFault, Vec } from '../fault.js';
import { FS, materialize } from '../flags.js';
import { def, Imm, Map as OpMap, type Handler, type Insn } from '../insn.js';
import { F } from '../state.js';
import { negE, notE, testEI } from './alu.js';

const TWO32 = 4294967296;

// ---- 128-bit arithmetic on uint32 words (plain numbers in [0, 2^32)) --------------------

/** Results of the wide multiply helpers, in a typed array rather than module variables
 *  (a module-level double is a boxed heap number: every write would allocate).
 *  W[0]: high word of the last mulu32; W[1..4]: the 128-bit product words, low to high. */
const W = new Float64Array(5);
/** Unsigned 32x32 -> 64: returns the low word; the high word is left in W[0]. Integer ops
 *  only (Math.imul and 16-bit limbs): no division or modulo on doubles in this hot path. */
function mulu32(a: number, b: number): number {
  const a0 = a & 0xffff, a1 = a >>> 16, b0 = b & 0xffff, b1 = b >>> 16;
  const p01 = a0 * b1, p10 = a1 * b0; // each < 2^32
  const mid = ((a0 * b0) >>> 16) + (p01 & 0xffff) + (p10 & 0xffff); // < 3 * 2^16
  W[0] = (a1 * b1 + (p01 >>> 16) + (p10 >>> 16) + (mid >>> 16)) >>> 0;
  return Math.imul(a, b) >>> 0;
}

const INV32 = 1 / TWO32;
/** Unsigned (ah:al) * (bh:bl) into W[1]..W[4]. */
function mulu64(al: number, ah: number, bl: number, bh: number): void {
  const ll = mulu32(al, bl), llh = W[0];
  const lh = mulu32(al, bh), lhh = W[0];
  const hl = mulu32(ah, bl), hlh = W[0];
  const hh = mulu32(ah, bh), hhh = W[0];
  W[1] = ll;
  const s1 = llh + lh + hl; // < 3 * 2^32: exact
  W[2] = s1 >>> 0;
  const s2 = lhh + hlh + hh + (s1 - W[2]) * INV32;
  W[3] = s2 >>> 0;
  W[4] = (hhh + (s2 - W[3]) * INV32) >>> 0;
}
/** Signed 64x64 -> 128 (operands as int32 halves) into W[1]..W[4]: the unsigned product with
 *  the high half corrected by each negative operand's other factor. */
function muls64(al: number, ah: number, bl: number, bh: number): void {
  mulu64(al >>> 0, ah >>> 0, bl >>> 0, bh >>> 0);
  if (ah < 0) subHigh(bl >>> 0, bh >>> 0);
  if (bh < 0) subHigh(al >>> 0, ah >>> 0);
}
function subHigh(l: number, h: number): void {
  let lo = W[3] - l, borrow = 0;
  if (lo < 0) { lo += TWO32; borrow = 1; }
  let hi = W[4] - h - borrow;
  if (hi < 0) hi += TWO32;
  W[3] = lo; W[4] = hi;
}

/** Quotient and remainder words of the last udiv (uint32). */
let q0 = 0, q1 = 0, r0 = 0, r1 = 0;
/**
 * Unsigned (n3:n2:n1:n0) / (d1:d0), requiring (n3:n2) < (d1:d0) so the quotient fits in
 * 64 bits (the callers check that first: it is the #DE condition).
 */
function udiv(n3: number, n2: number, n1: number, n0: number, d1: number, d0: number): void {
  if (n3 === 0 && n2 === 0 && n1 < 0x100000 && d1 < 0x100000) {
    // Both below 2^52: the double quotient is within one of the truth and q*d is exact.
    const n = n1 * TWO32 + n0, dv = d1 * TWO32 + d0;
    let q = Math.floor(n / dv), r = n - q * dv;
    if (r < 0) { q--; r += dv; } else if (r >= dv) { q++; r -= dv; }
    q0 = q % TWO32; q1 = (q - q0) / TWO32;
    r0 = r % TWO32; r1 = (r - r0) / TWO32;
    return;
  }
  if (d1 === 0) {
    // A 32-bit divisor: long division by 16-bit limbs keeps each partial dividend < 2^48.
    let r = n2, q: number, cur: number;
    cur = r * 65536 + (n1 >>> 16); q = Math.floor(cur / d0); r = cur - q * d0; let qa = q * 65536;
    cur = r * 65536 + (n1 & 0xffff); q = Math.floor(cur / d0); r = cur - q * d0; q1 = qa + q;
    cur = r * 65536 + (n0 >>> 16); q = Math.floor(cur / d0); r = cur - q * d0; qa = q * 65536;
    cur = r * 65536 + (n0 & 0xffff); q = Math.floor(cur / d0); r = cur - q * d0; q0 = qa + q;
    r0 = r; r1 = 0;
    return;
  }
  // A divisor of 2^32 or more: restoring shift-subtract over the 64 quotient bits.
  let R1 = n3, R0 = n2, Q1 = n1, Q0 = n0;
  for (let i = 0; i < 64; i++) {
    const top = R1 >>> 31;
    R1 = ((R1 << 1) | (R0 >>> 31)) >>> 0;
    R0 = ((R0 << 1) | (Q1 >>> 31)) >>> 0;
    Q1 = ((Q1 << 1) | (Q0 >>> 31)) >>> 0;
    Q0 = (Q0 << 1) >>> 0;
    if (top !== 0 || R1 > d1 || (R1 === d1 && R0 >= d0)) {
      let lo = R0 - d0, b = 0;
      if (lo < 0) { lo += TWO32; b = 1; }
      R1 = (R1 - d1 - b) >>> 0; R0 = lo;
      Q0 = (Q0 | 1) >>> 0;
    }
  }
  q0 = Q0; q1 = Q1; r0 = R0; r1 = R1;
}

function de(): never { throw new CpuFault(Vec.DE); }

/** Set CF and OF together, keep the rest (mul/imul on this host). */
function setCfOf(cpu: Cpu, v: boolean): void {
  const f = cpu.f;
  materialize(f);
  f[FS.FLAGS] = (f[FS.FLAGS] & ~(F.CF | F.OF)) | (v ? F.CF | F.OF : 0);
}
/** div/idiv on this host: SF ZF PF cleared, AF set, CF OF kept. */
function divFlags(cpu: Cpu): void {
  const f = cpu.f;
  materialize(f);
  f[FS.FLAGS] = (f[FS.FLAGS] & ~(F.SF | F.ZF | F.PF)) | F.AF;
}

/** The E operand of F6/F7 (low half returned, high half in cpu.t for size 8). */
function srcE(cpu: Cpu, d: Insn, size: number): number {
  return d.mod === 3 ? cpu.getReg(size === 1 ? d.rm8 : d.rm, size) : cpu.rd(cpu.ea(d), size);
}

// ---- F6/F7 /4 mul, /5 imul: rDX:rAX = rAX * E ------------------------------------------

const mulE: Handler = (cpu, d) => {
  const size = d.osz, r = cpu.r;
  const b = srcE(cpu, d, size), bh = cpu.t;
  switch (size) {
    case 1: { const p = (r[0] & 0xff) * b; r[0] = (r[0] & ~0xffff) | p; setCfOf(cpu, p > 0xff); return; }
    case 2: {
      const p = (r[0] & 0xffff) * b; // < 2^32: exact
      r[0] = (r[0] & ~0xffff) | (p & 0xffff);
      r[4] = (r[4] & ~0xffff) | (p >>> 16);
      setCfOf(cpu, p > 0xffff);
      return;
    }
    case 4: {
      const lo = mulu32(r[0] >>> 0, b >>> 0), hi = W[0];
      r[0] = lo | 0; r[1] = 0; r[4] = hi | 0; r[5] = 0;
      setCfOf(cpu, hi !== 0);
      return;
    }
    default:
      mulu64(r[0] >>> 0, r[1] >>> 0, b >>> 0, bh >>> 0);
      r[0] = W[1] | 0; r[1] = W[2] | 0; r[4] = W[3] | 0; r[5] = W[4] | 0;
      setCfOf(cpu, (W[3] | W[4]) !== 0);
  }
};

const imul1E: Handler = (cpu, d) => {
  const size = d.osz, r = cpu.r;
  const b = srcE(cpu, d, size), bh = cpu.t;
  switch (size) {
    case 1: {
      const p = ((r[0] << 24) >> 24) * ((b << 24) >> 24);
      r[0] = (r[0] & ~0xffff) | (p & 0xffff);
      setCfOf(cpu, p !== (p << 24) >> 24);
      return;
    }
    case 2: {
      const p = ((r[0] << 16) >> 16) * ((b << 16) >> 16);
      r[0] = (r[0] & ~0xffff) | (p & 0xffff);
      r[4] = (r[4] & ~0xffff) | ((p >> 16) & 0xffff);
      setCfOf(cpu, p !== (p << 16) >> 16);
      return;
    }
    case 4: {
      const lo = imul32(r[0], b), hi = W[0];
      r[0] = lo; r[1] = 0; r[4] = hi; r[5] = 0;
      setCfOf(cpu, hi !== lo >> 31);
      return;
    }
    default:
      muls64(r[0], r[1], b, bh);
      r[0] = W[1] | 0; r[1] = W[2] | 0; r[4] = W[3] | 0; r[5] = W[4] | 0;
      setCfOf(cpu, (W[3] | 0) !== (W[2] | 0) >> 31 || (W[4] | 0) !== (W[2] | 0) >> 31);
  }
};

/** Signed 32x32 -> 64 (int32 in, int32 out): low returned, high in W[0]. */
function imul32(a: number, b: number): number {
  const lo = mulu32(a >>> 0, b >>> 0);
  let hi = W[0];
  if (a < 0) hi -= b >>> 0;
  if (b < 0) hi -= a >>> 0;
  W[0] = hi | 0;
  return lo | 0;
}

// ---- F6/F7 /6 div, /7 idiv: rAX = rDX:rAX / E, rDX = remainder -------------------------

const divE: Handler = (cpu, d) => {
  const size = d.osz, r = cpu.r;
  const b = srcE(cpu, d, size), bh = cpu.t;
  switch (size) {
    case 1: {
      if (b === 0) de();
      const n = r[0] & 0xffff, q = Math.floor(n / b);
      if (q > 0xff) de();
      r[0] = (r[0] & ~0xffff) | ((n - q * b) << 8) | q;
      break;
    }
    case 2: {
      if (b === 0) de();
      const n = (r[4] & 0xffff) * 65536 + (r[0] & 0xffff), q = Math.floor(n / b);
      if (q > 0xffff) de();
      r[0] = (r[0] & ~0xffff) | q;
      r[4] = (r[4] & ~0xffff) | (n - q * b);
      break;
    }
    case 4: {
      const dv = b >>> 0;
      if (dv === 0 || (r[4] >>> 0) >= dv) de();
      udiv(0, 0, r[4] >>> 0, r[0] >>> 0, 0, dv);
      r[0] = q0 | 0; r[1] = 0; r[4] = r0 | 0; r[5] = 0;
      break;
    }
    default: {
      const dl = b >>> 0, dh = bh >>> 0, nh = r[5] >>> 0, nl = r[4] >>> 0;
      if ((dl | dh) === 0 || nh > dh || (nh === dh && nl >= dl)) de();
      udiv(nh, nl, r[1] >>> 0, r[0] >>> 0, dh, dl);
      r[0] = q0 | 0; r[1] = q1 | 0; r[4] = r0 | 0; r[5] = r1 | 0;
    }
  }
  divFlags(cpu);
};

/** Negate the 128-bit words n0..n3 in place (two's complement). */
let n0 = 0, n1 = 0, n2 = 0, n3 = 0;
function neg128(): void {
  n0 = (~n0 >>> 0) + 1; let c = n0 === TWO32 ? 1 : 0; if (c) n0 = 0;
  n1 = (~n1 >>> 0) + c; c = n1 === TWO32 ? 1 : 0; if (c) n1 = 0;
  n2 = (~n2 >>> 0) + c; c = n2 === TWO32 ? 1 : 0; if (c) n2 = 0;
  n3 = ((~n3 >>> 0) + c) % TWO32;
}

const idivE: Handler = (cpu, d) => {
  const size = d.osz, r = cpu.r;
  const b = srcE(cpu, d, size), bh = cpu.t;
  switch (size) {
    case 1: {
      const dv = (b << 24) >> 24;
      if (dv === 0) de();
      const n = (r[0] << 16) >> 16, q = Math.trunc(n / dv);
      if (q > 127 || q < -128) de();
      r[0] = (r[0] & ~0xffff) | (((n - q * dv) & 0xff) << 8) | (q & 0xff);
      break;
    }
    case 2: {
      const dv = (b << 16) >> 16;
      if (dv === 0) de();
      const n = (r[4] << 16) | (r[0] & 0xffff), q = Math.trunc(n / dv);
      if (q > 32767 || q < -32768) de();
      r[0] = (r[0] & ~0xffff) | (q & 0xffff);
      r[4] = (r[4] & ~0xffff) | ((n - q * dv) & 0xffff);
      break;
    }
    case 4: {
      if (b === 0) de();
      // |edx:eax| / |divisor| unsigned, then the signs.
      const nNeg = r[4] < 0, dNeg = b < 0;
      n3 = 0; n2 = 0; n1 = r[4] >>> 0; n0 = r[0] >>> 0;
      if (nNeg) { n3 = n2 = 0xffffffff; neg128(); }
      const dv = dNeg ? (-b) >>> 0 : b >>> 0;
      if (n1 >= dv) de(); // quotient >= 2^32
      udiv(0, 0, n1, n0, 0, dv);
      const qNeg = nNeg !== dNeg;
      if (q0 > (qNeg ? 0x80000000 : 0x7fffffff)) de();
      r[0] = qNeg ? -q0 | 0 : q0 | 0; r[1] = 0;
      r[4] = nNeg ? -r0 | 0 : r0 | 0; r[5] = 0;
      break;
    }
    default: {
      if ((b | bh) === 0) de();
      const nNeg = r[5] < 0, dNeg = bh < 0;
      n3 = r[5] >>> 0; n2 = r[4] >>> 0; n1 = r[1] >>> 0; n0 = r[0] >>> 0;
      if (nNeg) neg128();
      let dl = b >>> 0, dh = bh >>> 0;
      if (dNeg) { dl = (~dl >>> 0) + 1; dh = (~dh >>> 0) + (dl === TWO32 ? 1 : 0); dl %= TWO32; dh %= TWO32; }
      if (n3 > dh || (n3 === dh && n2 >= dl)) de(); // quotient >= 2^64
      udiv(n3, n2, n1, n0, dh, dl);
      const qNeg = nNeg !== dNeg;
      // The quotient must fit in int64: at most 2^63 - 1, or 2^63 when negative.
      if (q1 > 0x80000000 || (q1 === 0x80000000 && (!qNeg || q0 !== 0))) de();
      let ql = q0, qh = q1, rl = r0, rh = r1;
      if (qNeg) { ql = (~ql >>> 0) + 1; qh = (~qh >>> 0) + (ql === TWO32 ? 1 : 0); }
      if (nNeg) { rl = (~rl >>> 0) + 1; rh = (~rh >>> 0) + (rl === TWO32 ? 1 : 0); }
      r[0] = ql | 0; r[1] = qh | 0; r[4] = rl | 0; r[5] = rh | 0;
    }
  }
  divFlags(cpu);
};

// ---- imul Gv, Ev (0F AF); imul Gv, Ev, Iz (69) / Ib (6B) -------------------------------

/** G = a * b truncated to the operand size; CF = OF = the product did not fit. */
function imulTo(cpu: Cpu, d: Insn, a: number, ah: number, b: number, bh: number): void {
  switch (d.osz) {
    case 2: {
      const p = ((a << 16) >> 16) * ((b << 16) >> 16);
      cpu.setReg(d.reg, 2, p & 0xffff, 0);
      setCfOf(cpu, p !== (p << 16) >> 16);
      return;
    }
    case 4: {
      const lo = imul32(a, b);
      cpu.setReg(d.reg, 4, lo, 0);
      setCfOf(cpu, W[0] !== lo >> 31);
      return;
    }
    default: {
      muls64(a, ah, b, bh);
      const lo = W[1] | 0, hi = W[2] | 0, s = hi >> 31;
      cpu.setReg(d.reg, 8, lo, hi);
      setCfOf(cpu, (W[3] | 0) !== s || (W[4] | 0) !== s);
    }
  }
}

const imulGE: Handler = (cpu, d) => {
  const size = d.osz;
  const b = srcE(cpu, d, size), bh = cpu.t;
  const a = cpu.getReg(d.reg, size), ah = cpu.t;
  imulTo(cpu, d, a, ah, b, bh);
};
/** The immediate of 69/6B is already sign-extended to 32 bits (Iz at 16 bits is not). */
const imulGEI: Handler = (cpu, d) => {
  const size = d.osz;
  const a = srcE(cpu, d, size), ah = cpu.t;
  imulTo(cpu, d, a, ah, d.imm, d.immHi);
};

// ---- registration --------------------------------------------------------------------

const grp3: (Handler | undefined)[] = [testEI, testEI, notE, negE, mulE, imul1E, divE, idivE];
/** Rough relative costs, so virtual time grows with the work done. */
const GRP3_CYCLES = [1, 1, 1, 1, 3, 3, 20, 24];
function grp3Sel(d: Insn): Handler | undefined {
  const r = d.reg & 7;
  d.cycles = GRP3_CYCLES[r];
  return grp3[r];
}
const grp3Imm = (kind: Imm) => (d: Insn): Imm => ((d.reg & 7) < 2 ? kind : Imm.None);
const grp3Lock = (d: Insn): boolean => { const r = d.reg & 7; return r === 2 || r === 3; };

def(0, 0xf6, { modrm: true, byte: true, immSel: grp3Imm(Imm.Ib), sel: grp3Sel, lock: grp3Lock });
def(0, 0xf7, { modrm: true, immSel: grp3Imm(Imm.Iz), sel: grp3Sel, lock: grp3Lock });
def(OpMap.X0F, 0xaf, { modrm: true, h: imulGE, cycles: 3 });
def(0, 0x69, { modrm: true, imm: Imm.Iz, h: imulGEI, cycles: 3 });
def(0, 0x6b, { modrm: true, imm: Imm.Ib, h: imulGEI, cycles: 3 });

/** For unit tests of the wide arithmetic. */
export const __test = {
  mulu64(al: number, ah: number, bl: number, bh: number): number[] { mulu64(al, ah, bl, bh); return [W[1], W[2], W[3], W[4]]; },
  udiv(a3: number, a2: number, a1: number, a0: number, d1: number, d0: number): number[] { udiv(a3, a2, a1, a0, d1, d0); return [q0, q1, r0, r1]; },
};
