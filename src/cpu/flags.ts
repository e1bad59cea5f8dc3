// Lazy arithmetic flags. An arithmetic instruction records its kind, size, operands and
// result; CF PF AF ZF SF OF are computed only when something reads them. The carry, borrow
// and overflow come from the sign bits alone ((a&b)|((a|b)&~r) and friends), so a 64-bit
// operation needs only its high halves for them and never a 64-bit number.

import { F } from './state.js';

/** Slots of the flag state array (Cpu.f). */
export const enum FS {
  FLAGS = 0,  // concrete RFLAGS; its arithmetic bits are stale while KIND != NONE
  KIND = 1,
  SIZE = 2,   // operand size in bytes
  A = 3, AH = 4, // first operand (low, high)
  B = 5, BH = 6, // second operand
  RES = 7, RESH = 8,
  LEN = 9,
}

export const enum K {
  NONE = 0,  // all flags concrete in FLAGS
  ADD = 1,   // add, adc
  SUB = 2,   // sub, sbb, cmp, neg
  INC = 3,   // like ADD, CF concrete
  DEC = 4,   // like SUB, CF concrete
  LOGIC = 5, // CF OF AF cleared; ZF SF PF from the result
  RES = 6,   // ZF SF PF from the result; CF OF AF concrete (shifts, bit counts, ...)
}

const PARITY = new Uint8Array(256);
for (let i = 0; i < 256; i++) {
  let p = 1;
  for (let b = i; b; b >>= 1) p ^= b & 1;
  PARITY[i] = p ? F.PF : 0;
}

/** Sign bit of the top 32-bit word for a size (the word is the high half for 64-bit). */
function topBit(size: number): number {
  return size === 1 ? 0x80 : size === 2 ? 0x8000 : (0x80000000 | 0);
}

export function setLazy(f: Int32Array, kind: number, size: number, a: number, ah: number, b: number, bh: number, r: number, rh: number): void {
  f[FS.KIND] = kind; f[FS.SIZE] = size;
  f[FS.A] = a; f[FS.AH] = ah; f[FS.B] = b; f[FS.BH] = bh; f[FS.RES] = r; f[FS.RESH] = rh;
}

/** Result-only flags (ZF SF PF from r), with CF/OF/AF as given (concrete). */
export function setResult(f: Int32Array, size: number, r: number, rh: number, cfOfAf: number): void {
  f[FS.FLAGS] = (f[FS.FLAGS] & ~F.ARITH) | cfOfAf;
  f[FS.KIND] = K.RES; f[FS.SIZE] = size; f[FS.RES] = r; f[FS.RESH] = rh;
}

export function setLogic(f: Int32Array, size: number, r: number, rh: number): void {
  f[FS.KIND] = K.LOGIC; f[FS.SIZE] = size; f[FS.RES] = r; f[FS.RESH] = rh;
}

export function getCF(f: Int32Array): number {
  const k = f[FS.KIND];
  switch (k) {
    case K.ADD: case K.SUB: {
      const s = f[FS.SIZE];
      const a = s === 8 ? f[FS.AH] : f[FS.A], b = s === 8 ? f[FS.BH] : f[FS.B], r = s === 8 ? f[FS.RESH] : f[FS.RES];
      const v = k === K.ADD ? (a & b) | ((a | b) & ~r) : (~a & b) | (~(a ^ b) & r);
      return (v & topBit(s)) !== 0 ? 1 : 0;
    }
    case K.LOGIC: return 0;
    default: return f[FS.FLAGS] & F.CF;
  }
}

export function getOF(f: Int32Array): number {
  const k = f[FS.KIND];
  switch (k) {
    case K.ADD: case K.INC: case K.SUB: case K.DEC: {
      const s = f[FS.SIZE];
      const a = s === 8 ? f[FS.AH] : f[FS.A], b = s === 8 ? f[FS.BH] : f[FS.B], r = s === 8 ? f[FS.RESH] : f[FS.RES];
      const v = (k === K.ADD || k === K.INC) ? (a ^ r) & (b ^ r) : (a ^ b) & (a ^ r);
      return (v & topBit(s)) !== 0 ? 1 : 0;
    }
    case K.LOGIC: return 0;
    default: return (f[FS.FLAGS] & F.OF) !== 0 ? 1 : 0;
  }
}

export function getZF(f: Int32Array): number {
  const k = f[FS.KIND];
  if (k === K.NONE) return (f[FS.FLAGS] & F.ZF) !== 0 ? 1 : 0;
  return (f[FS.RES] | (f[FS.SIZE] === 8 ? f[FS.RESH] : 0)) === 0 ? 1 : 0;
}

export function getSF(f: Int32Array): number {
  const k = f[FS.KIND];
  if (k === K.NONE) return (f[FS.FLAGS] & F.SF) !== 0 ? 1 : 0;
  const s = f[FS.SIZE];
  return ((s === 8 ? f[FS.RESH] : f[FS.RES]) & topBit(s)) !== 0 ? 1 : 0;
}

export function getPF(f: Int32Array): number {
  if (f[FS.KIND] === K.NONE) return (f[FS.FLAGS] & F.PF) !== 0 ? 1 : 0;
  return PARITY[f[FS.RES] & 0xff] !== 0 ? 1 : 0;
}

export function getAF(f: Int32Array): number {
  switch (f[FS.KIND]) {
    case K.ADD: case K.SUB: case K.INC: case K.DEC:
      return ((f[FS.A] ^ f[FS.B] ^ f[FS.RES]) & 0x10) !== 0 ? 1 : 0;
    case K.LOGIC: return 0;
    default: return (f[FS.FLAGS] & F.AF) !== 0 ? 1 : 0;
  }
}

/** The full RFLAGS value with the lazy bits computed. */
export function getFlags(f: Int32Array): number {
  const k = f[FS.KIND];
  let v = f[FS.FLAGS];
  if (k === K.NONE) return v;
  v &= ~F.ARITH;
  if (getCF(f)) v |= F.CF;
  if (getPF(f)) v |= F.PF;
  if (getAF(f)) v |= F.AF;
  if (getZF(f)) v |= F.ZF;
  if (getSF(f)) v |= F.SF;
  if (getOF(f)) v |= F.OF;
  return v;
}

/** Make all flags concrete (before code that edits FLAGS bits directly). */
export function materialize(f: Int32Array): void {
  if (f[FS.KIND] !== K.NONE) {
    f[FS.FLAGS] = getFlags(f);
    f[FS.KIND] = K.NONE;
  }
}

/** Set RFLAGS wholesale (bit 1 forced). */
export function setFlags(f: Int32Array, v: number): void {
  f[FS.FLAGS] = (v | 2);
  f[FS.KIND] = K.NONE;
}

/** Evaluate condition code cc (0..15) as in Jcc/SETcc/CMOVcc. */
export function cond(f: Int32Array, cc: number): boolean {
  let r: number;
  switch (cc >> 1) {
    case 0: r = getOF(f); break;
    case 1: r = getCF(f); break;
    case 2: r = getZF(f); break;
    case 3: r = getCF(f) | getZF(f); break;
    case 4: r = getSF(f); break;
    case 5: r = getPF(f); break;
    case 6: r = getSF(f) ^ getOF(f); break;
    default: r = getZF(f) | (getSF(f) ^ getOF(f)); break;
  }
  return (r !== 0) !== ((cc & 1) !== 0);
}
