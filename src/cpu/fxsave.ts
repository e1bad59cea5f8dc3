// The 512-byte FXSAVE image: x87 environment and registers, MXCSR, XMM0..15. fxsave/fxrstor
// and the test harness both go through these two functions.

import type { Cpu } from './cpu.js';

/** MXCSR bits software may set (DAZ included). */
export const MXCSR_MASK = 0xffff;

/** Write the FXSAVE image of cpu into buf (512 bytes); rex64 picks the 64-bit FIP/FDP layout. */
export function fxsaveTo(cpu: Cpu, buf: Uint8Array, rex64 = true): void {
  const dv = new DataView(buf.buffer, buf.byteOffset, 512);
  const f = cpu.fpu;
  dv.setUint16(0, f.cw, true);
  dv.setUint16(2, (f.sw & ~0x3800) | ((f.top & 7) << 11), true);
  let abridged = 0;
  for (let i = 0; i < 8; i++) if (((f.tw >> (i * 2)) & 3) !== 3) abridged |= 1 << i;
  dv.setUint8(4, abridged);
  dv.setUint8(5, 0);
  dv.setUint16(6, f.fop & 0x7ff, true);
  if (rex64) {
    dv.setInt32(8, f.fipLo, true); dv.setInt32(12, f.fipHi, true);
    dv.setInt32(16, f.fdpLo, true); dv.setInt32(20, f.fdpHi, true);
  } else {
    dv.setInt32(8, f.fipLo, true); dv.setUint16(12, f.fcs, true); dv.setUint16(14, 0, true);
    dv.setInt32(16, f.fdpLo, true); dv.setUint16(20, f.fds, true); dv.setUint16(22, 0, true);
  }
  dv.setUint32(24, cpu.mxcsr >>> 0, true);
  dv.setUint32(28, MXCSR_MASK, true);
  for (let i = 0; i < 8; i++) {
    const p = (f.top + i) & 7;
    const o = 32 + i * 16;
    dv.setInt32(o, f.mantLo[p], true);
    dv.setInt32(o + 4, f.mantHi[p], true);
    dv.setUint16(o + 8, f.signExp[p], true);
    for (let k = 10; k < 16; k++) dv.setUint8(o + k, 0);
  }
  for (let i = 0; i < 64; i++) dv.setInt32(160 + i * 4, cpu.xmm[i], true);
  for (let o = 416; o < 512; o++) dv.setUint8(o, 0);
}

/** Load cpu state from an FXSAVE image. Returns false (nothing changed) if MXCSR has reserved
 *  bits set, which is #GP(0) for fxrstor. */
export function fxrstorFrom(cpu: Cpu, buf: Uint8Array, rex64 = true): boolean {
  const dv = new DataView(buf.buffer, buf.byteOffset, 512);
  const mx = dv.getUint32(24, true);
  if (mx & ~MXCSR_MASK) return false;
  const f = cpu.fpu;
  // Reserved control word bits are dropped (bit 6 reads as 1), and ES/B are recomputed from
  // the exception flags and masks, as the host's fxrstor does.
  f.cw = (dv.getUint16(0, true) & 0x1f3f) | 0x40;
  const sw = dv.getUint16(2, true);
  f.top = (sw >> 11) & 7;
  f.sw = (sw & 0x477f) | ((sw & ~f.cw & 0x3f) ? 0x8080 : 0);
  const abridged = dv.getUint8(4);
  f.fop = dv.getUint16(6, true) & 0x7ff;
  f.fipLo = dv.getInt32(8, true); f.fdpLo = dv.getInt32(16, true);
  if (rex64) { f.fipHi = dv.getInt32(12, true); f.fdpHi = dv.getInt32(20, true); f.fcs = 0; f.fds = 0; }
  else { f.fipHi = 0; f.fdpHi = 0; f.fcs = dv.getUint16(12, true); f.fds = dv.getUint16(20, true); }
  cpu.mxcsr = mx;
  for (let i = 0; i < 8; i++) {
    const p = (f.top + i) & 7;
    const o = 32 + i * 16;
    f.mantLo[p] = dv.getInt32(o, true);
    f.mantHi[p] = dv.getInt32(o + 4, true);
    f.signExp[p] = dv.getUint16(o + 8, true);
  }
  // Rebuild the full tag word from the abridged one and the register contents.
  let tw = 0;
  for (let p = 0; p < 8; p++) {
    let tag = 3;
    if (abridged & (1 << p)) tag = classifyTag(f.signExp[p], f.mantLo[p], f.mantHi[p]);
    tw |= tag << (p * 2);
  }
  f.tw = tw;
  for (let i = 0; i < 64; i++) cpu.xmm[i] = dv.getInt32(160 + i * 4, true);
  return true;
}

/** x87 tag of an 80-bit value: 0 valid, 1 zero, 2 special (NaN, infinity, denormal, unnormal). */
export function classifyTag(signExp: number, mantLo: number, mantHi: number): number {
  const exp = signExp & 0x7fff;
  if (exp === 0x7fff) return 2;
  if (exp === 0) return (mantLo | mantHi) === 0 ? 1 : 2;
  return (mantHi & 0x80000000) === 0 ? 2 : 0;
}
