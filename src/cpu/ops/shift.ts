// Shifts and rotates: the C0/C1/D0..D3 group (rol ror rcl rcr shl shr sal sar) and the
// double shifts shld/shrd (0F A4/A5/AC/AD).
//
// The count is masked to 5 bits (6 for 64-bit operands); a masked count of 0 changes no
// flags and no memory (a memory operand is still read, so it can fault), but a 32-bit
// register operand is still written back, zeroing its upper half. rcl/rcr
// rotate through CF over width+1 bits, so 8- and 16-bit counts act modulo 9 and 17.
//
// Flags where the SDM says "undefined", as this AMD host (Zen 4) sets them, for every
// nonzero masked count (not only 1):
//   rol, rcl:  OF = MSB(result) ^ CF(after)       ror, rcr: OF = MSB(result) ^ MSB-1(result)
//   shl/sal:   OF = MSB(result) ^ CF(after)       shr, sar: OF = MSB(result) ^ MSB-1(result)
//              (count 1 gives the SDM's values; shr with count > 1 gives 0, sar always 0)
//   shifts and shld/shrd: AF = 1; ZF SF PF from the result. Rotates keep AF ZF SF PF.
//   8/16-bit shl/shr with counts beyond the width: the bits shifted in/out are zeros.
//   shld/shrd: OF as for shl / shr. 16-bit shld/shrd with counts 16..31 (result undefined):
//     shld gives rol16(src, count-16), CF = OF = (count == 16 ? bit 0 of dest : 0);
//     shrd gives ror16(src, count-16), CF = (count == 16 ? bit 15 of dest : 0),
//     OF = MSB(result) ^ MSB-1(result).
// Intel differs in several of these (OF for counts > 1, AF); the tests follow this host.

import type { Cpu } from '../cpu.js';
import { FS, getCF, materialize, setResult } from '../flags.js';
import { def, group, Imm, Map as OpMap, type Handler, type Insn } from '../insn.js';
import { F } from '../state.js';
import { sizeMask } from './alu.js';

export const enum Sh { ROL = 0, ROR = 1, RCL = 2, RCR = 3, SHL = 4, SHR = 5, SAL = 6, SAR = 7 }

// ---- 64-bit helpers on int32 halves (shift counts 0..127; the high half goes to xh) ----

let xh = 0;
function shl64(lo: number, hi: number, n: number): number {
  if (n === 0) { xh = hi; return lo; }
  if (n < 32) { xh = (hi << n) | (lo >>> (32 - n)); return lo << n; }
  xh = n < 64 ? lo << (n - 32) : 0;
  return 0;
}
function shr64(lo: number, hi: number, n: number): number {
  if (n === 0) { xh = hi; return lo; }
  if (n < 32) { xh = hi >>> n | 0; return (lo >>> n) | (hi << (32 - n)); }
  xh = 0;
  return n < 64 ? hi >>> (n - 32) | 0 : 0;
}
function sar64(lo: number, hi: number, n: number): number {
  if (n === 0) { xh = hi; return lo; }
  if (n < 32) { xh = hi >> n; return (lo >>> n) | (hi << (32 - n)); }
  xh = hi >> 31;
  return hi >> (n < 64 ? n - 32 : 31);
}
function bit64(lo: number, hi: number, n: number): number {
  return n < 32 ? (lo >>> n) & 1 : n < 64 ? (hi >>> (n - 32)) & 1 : 0;
}
/** 32-bit shifts where a count of 32 or more gives 0 (JS masks the count to 5 bits). */
function shl32(x: number, n: number): number { return n < 32 ? x << n : 0; }
function shr32(x: number, n: number): number { return n < 32 ? x >>> n : 0; }

/** Rotates change only CF and OF. */
function rotFlags(cpu: Cpu, cf: number, of: number): void {
  const f = cpu.f;
  materialize(f);
  f[FS.FLAGS] = (f[FS.FLAGS] & ~(F.CF | F.OF)) | cf | (of ? F.OF : 0);
}
/** Shifts: CF and OF as computed, AF = 1 (this host), ZF SF PF from the result. */
function shiftFlags(cpu: Cpu, size: number, r: number, rh: number, cf: number, of: number): void {
  setResult(cpu.f, size, r, rh, cf | (of ? F.OF : 0) | F.AF);
}

/** A masked count of 0 changes no flags, but a 32-bit register operand is still written,
 *  so its upper half is zeroed (as on the host). */
function zeroCount(cpu: Cpu, d: Insn, a: number): void {
  if (d.osz === 4 && d.mod === 3) cpu.setReg(d.rm, 4, a, 0);
}

/** op E by count (raw, unmasked). */
function shiftE(cpu: Cpu, d: Insn, op: number, raw: number): void {
  const size = d.osz;
  const c = raw & (size === 8 ? 63 : 31);
  const lin = d.mod === 3 ? 0 : cpu.ea(d);
  const a = cpu.getE(d, size, lin);
  if (c === 0) { zeroCount(cpu, d, a); return; }
  if (size === 8) { shift64(cpu, d, lin, op, c, a, cpu.t); return; }
  const w = size * 8, m = sizeMask(size);
  let r: number, cf: number, of: number;
  switch (op) {
    case Sh.ROL: {
      const k = c % w;
      r = k === 0 ? a : ((a << k) | (a >>> (w - k))) & m;
      cf = r & 1; of = ((r >>> (w - 1)) & 1) ^ cf;
      cpu.setE(d, size, lin, r, 0); rotFlags(cpu, cf, of);
      return;
    }
    case Sh.ROR: {
      const k = c % w;
      r = k === 0 ? a : ((a >>> k) | (a << (w - k))) & m;
      cf = (r >>> (w - 1)) & 1; of = cf ^ ((r >>> (w - 2)) & 1);
      cpu.setE(d, size, lin, r, 0); rotFlags(cpu, cf, of);
      return;
    }
    case Sh.RCL: {
      const k = c % (w + 1), cin = getCF(cpu.f);
      if (k === 0) { r = a; cf = cin; } else {
        r = (shl32(a, k) | (cin << (k - 1)) | shr32(a >>> 0, w + 1 - k)) & m;
        cf = shr32(a >>> 0, w - k) & 1;
      }
      of = ((r >>> (w - 1)) & 1) ^ cf;
      cpu.setE(d, size, lin, r, 0); rotFlags(cpu, cf, of);
      return;
    }
    case Sh.RCR: {
      const k = c % (w + 1), cin = getCF(cpu.f);
      if (k === 0) { r = a; cf = cin; } else {
        r = (shr32(a >>> 0, k) | (cin << (w - k)) | shl32(a, w + 1 - k)) & m;
        cf = ((a >>> 0) >>> (k - 1)) & 1;
      }
      of = ((r >>> (w - 1)) ^ (r >>> (w - 2))) & 1;
      cpu.setE(d, size, lin, r, 0); rotFlags(cpu, cf, of);
      return;
    }
    case Sh.SHL: case Sh.SAL:
      r = shl32(a, c) & m;
      cf = c <= w ? ((a >>> (w - c)) & 1) : 0;
      of = ((r >>> (w - 1)) & 1) ^ cf;
      break;
    case Sh.SHR:
      r = (a >>> 0) >>> c;
      cf = ((a >>> 0) >>> (c - 1)) & 1;
      of = ((r >>> (w - 1)) ^ (r >>> (w - 2))) & 1;
      r |= 0;
      break;
    default: { // SAR
      const s = (a << (32 - w)) >> (32 - w);
      r = (s >> c) & m;
      cf = (s >> (c - 1)) & 1;
      of = 0;
    }
  }
  cpu.setE(d, size, lin, r, 0);
  shiftFlags(cpu, size, r, 0, cf, of);
}

function shift64(cpu: Cpu, d: Insn, lin: number, op: number, c: number, a: number, ah: number): void {
  let r: number, rh: number, cf: number;
  switch (op) {
    case Sh.ROL: {
      const l = shl64(a, ah, c), h = xh;
      r = l | shr64(a, ah, 64 - c); rh = h | xh;
      cf = r & 1;
      cpu.setE(d, 8, lin, r, rh); rotFlags(cpu, cf, (rh >>> 31) ^ cf);
      return;
    }
    case Sh.ROR: {
      const l = shr64(a, ah, c), h = xh;
      r = l | shl64(a, ah, 64 - c); rh = h | xh;
      cf = rh >>> 31;
      cpu.setE(d, 8, lin, r, rh); rotFlags(cpu, cf, cf ^ ((rh >>> 30) & 1));
      return;
    }
    case Sh.RCL: {
      const cin = getCF(cpu.f);
      const l = shl64(a, ah, c), h = xh;
      const l2 = shl64(cin, 0, c - 1), h2 = xh;
      r = l | l2 | shr64(a, ah, 65 - c); rh = h | h2 | xh;
      cf = bit64(a, ah, 64 - c);
      cpu.setE(d, 8, lin, r, rh); rotFlags(cpu, cf, (rh >>> 31) ^ cf);
      return;
    }
    case Sh.RCR: {
      const cin = getCF(cpu.f);
      const l = shr64(a, ah, c), h = xh;
      const l2 = shl64(cin, 0, 64 - c), h2 = xh;
      r = l | l2 | shl64(a, ah, 65 - c); rh = h | h2 | xh;
      cf = bit64(a, ah, c - 1);
      cpu.setE(d, 8, lin, r, rh); rotFlags(cpu, cf, ((rh >>> 31) ^ (rh >>> 30)) & 1);
      return;
    }
    case Sh.SHL: case Sh.SAL:
      r = shl64(a, ah, c); rh = xh;
      cf = bit64(a, ah, 64 - c);
      cpu.setE(d, 8, lin, r, rh); shiftFlags(cpu, 8, r, rh, cf, (rh >>> 31) ^ cf);
      return;
    case Sh.SHR:
      r = shr64(a, ah, c); rh = xh;
      cf = bit64(a, ah, c - 1);
      cpu.setE(d, 8, lin, r, rh); shiftFlags(cpu, 8, r, rh, cf, ((rh >>> 31) ^ (rh >>> 30)) & 1);
      return;
    default:
      r = sar64(a, ah, c); rh = xh;
      cf = bit64(a, ah, c - 1);
      cpu.setE(d, 8, lin, r, rh); shiftFlags(cpu, 8, r, rh, cf, 0);
  }
}

// ---- shld / shrd Ev, Gv, Ib|CL -------------------------------------------------------

function doubleShift(cpu: Cpu, d: Insn, left: boolean, raw: number): void {
  const size = d.osz;
  const c = raw & (size === 8 ? 63 : 31);
  const lin = d.mod === 3 ? 0 : cpu.ea(d);
  const a = cpu.getE(d, size, lin), ah = size === 8 ? cpu.t : 0;
  if (c === 0) { zeroCount(cpu, d, a); return; }
  const b = cpu.getReg(d.reg, size), bh = size === 8 ? cpu.t : 0;
  let r: number, rh = 0, cf: number, of: number;
  if (size === 8) {
    if (left) {
      const l = shl64(a, ah, c), h = xh;
      r = l | shr64(b, bh, 64 - c); rh = h | xh;
      cf = bit64(a, ah, 64 - c); of = (rh >>> 31) ^ cf;
    } else {
      const l = shr64(a, ah, c), h = xh;
      r = l | shl64(b, bh, 64 - c); rh = h | xh;
      cf = bit64(a, ah, c - 1); of = ((rh >>> 31) ^ (rh >>> 30)) & 1;
    }
  } else if (size === 4) {
    if (left) { r = (a << c) | (b >>> (32 - c)); cf = (a >>> (32 - c)) & 1; of = (r >>> 31) ^ cf; }
    else { r = (a >>> c) | (b << (32 - c)); cf = (a >>> (c - 1)) & 1; of = ((r >>> 31) ^ (r >>> 30)) & 1; }
  } else if (c < 16) {
    if (left) { r = (((a << 16) | b) << c) >>> 16 & 0xffff; cf = (a >>> (16 - c)) & 1; of = (r >>> 15) ^ cf; }
    else { r = (((b << 16) | a) >>> c) & 0xffff; cf = (a >>> (c - 1)) & 1; of = ((r >>> 15) ^ (r >>> 14)) & 1; }
  } else {
    // Counts 16..31 at 16 bits: undefined in the SDM; this is what the host does (header).
    const k = c - 16, bb = (b << 16) | b;
    if (left) { r = (bb >>> (16 - k)) & 0xffff; cf = c === 16 ? a & 1 : 0; of = cf; }
    else { r = (bb >>> k) & 0xffff; cf = c === 16 ? a >>> 15 : 0; of = ((r >>> 15) ^ (r >>> 14)) & 1; }
  }
  cpu.setE(d, size, lin, r, rh);
  shiftFlags(cpu, size, r, rh, cf, of);
}

// ---- registration --------------------------------------------------------------------

const OPS = [0, 1, 2, 3, 4, 5, 6, 7];
const byOne = group(OPS.map((op): Handler => (cpu, d) => shiftE(cpu, d, op, 1)));
const byCl = group(OPS.map((op): Handler => (cpu, d) => shiftE(cpu, d, op, cpu.r[2])));
const byImm = group(OPS.map((op): Handler => (cpu, d) => shiftE(cpu, d, op, d.imm)));

def(0, 0xc0, { modrm: true, byte: true, imm: Imm.IbU, sel: byImm });
def(0, 0xc1, { modrm: true, imm: Imm.IbU, sel: byImm });
def(0, 0xd0, { modrm: true, byte: true, sel: byOne });
def(0, 0xd1, { modrm: true, sel: byOne });
def(0, 0xd2, { modrm: true, byte: true, sel: byCl });
def(0, 0xd3, { modrm: true, sel: byCl });

const shldI: Handler = (cpu, d) => doubleShift(cpu, d, true, d.imm);
const shldCl: Handler = (cpu, d) => doubleShift(cpu, d, true, cpu.r[2]);
const shrdI: Handler = (cpu, d) => doubleShift(cpu, d, false, d.imm);
const shrdCl: Handler = (cpu, d) => doubleShift(cpu, d, false, cpu.r[2]);
def(OpMap.X0F, 0xa4, { modrm: true, imm: Imm.IbU, h: shldI });
def(OpMap.X0F, 0xa5, { modrm: true, h: shldCl });
def(OpMap.X0F, 0xac, { modrm: true, imm: Imm.IbU, h: shrdI });
def(OpMap.X0F, 0xad, { modrm: true, h: shrdCl });
