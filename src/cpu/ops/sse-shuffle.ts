// SSE/SSE2 shuffles, interleaves and packs: unpcklps/unpckhps/unpcklpd/unpckhpd, shufps/
// shufpd, pshufd/pshufhw/pshuflw, punpckl/h bw wd dq qdq, packsswb/packssdw/packuswb, and the
// word insert/extract pinsrw/pextrw. No-prefix 0F 60..6B/70/C4/C5 are MMX: #UD here.

import { byPrefix, def, Imm, Map as OpMap, type Handler, type Insn } from '../insn.js';
import { A, B, loadV, loadW, R, setX, sseAvail } from './sse-common.js';

type Lanes = typeof A;

/** xmm, xmm/m128 (aligned) [, imm8]: R from A (destination), B (source) and the immediate. */
function shuf(f: (a: Lanes, b: Lanes, r: Lanes, imm: number) => void): Handler {
  return (cpu, d) => {
    sseAvail(cpu);
    loadW(cpu, d, true);
    loadV(cpu, d);
    f(A, B, R, d.imm);
    setX(cpu, d.reg, R.i32);
  };
}

// ---- interleaves -------------------------------------------------------------------------

const punpcklbw = shuf((a, b, r) => { for (let i = 0; i < 8; i++) { r.u8[2 * i] = a.u8[i]; r.u8[2 * i + 1] = b.u8[i]; } });
const punpckhbw = shuf((a, b, r) => { for (let i = 0; i < 8; i++) { r.u8[2 * i] = a.u8[i + 8]; r.u8[2 * i + 1] = b.u8[i + 8]; } });
const punpcklwd = shuf((a, b, r) => { for (let i = 0; i < 4; i++) { r.u16[2 * i] = a.u16[i]; r.u16[2 * i + 1] = b.u16[i]; } });
const punpckhwd = shuf((a, b, r) => { for (let i = 0; i < 4; i++) { r.u16[2 * i] = a.u16[i + 4]; r.u16[2 * i + 1] = b.u16[i + 4]; } });
/** punpckldq = unpcklps */
const punpckldq = shuf((a, b, r) => { r.i32[0] = a.i32[0]; r.i32[1] = b.i32[0]; r.i32[2] = a.i32[1]; r.i32[3] = b.i32[1]; });
/** punpckhdq = unpckhps */
const punpckhdq = shuf((a, b, r) => { r.i32[0] = a.i32[2]; r.i32[1] = b.i32[2]; r.i32[2] = a.i32[3]; r.i32[3] = b.i32[3]; });
/** punpcklqdq = unpcklpd */
const punpcklqdq = shuf((a, b, r) => { r.i32[0] = a.i32[0]; r.i32[1] = a.i32[1]; r.i32[2] = b.i32[0]; r.i32[3] = b.i32[1]; });
/** punpckhqdq = unpckhpd */
const punpckhqdq = shuf((a, b, r) => { r.i32[0] = a.i32[2]; r.i32[1] = a.i32[3]; r.i32[2] = b.i32[2]; r.i32[3] = b.i32[3]; });

// ---- packs -------------------------------------------------------------------------------

const packsswb = shuf((a, b, r) => {
  for (let i = 0; i < 8; i++) {
    const x = a.i16[i], y = b.i16[i];
    r.i8[i] = x > 127 ? 127 : x < -128 ? -128 : x;
    r.i8[i + 8] = y > 127 ? 127 : y < -128 ? -128 : y;
  }
});
const packuswb = shuf((a, b, r) => {
  for (let i = 0; i < 8; i++) {
    const x = a.i16[i], y = b.i16[i];
    r.u8[i] = x > 255 ? 255 : x < 0 ? 0 : x;
    r.u8[i + 8] = y > 255 ? 255 : y < 0 ? 0 : y;
  }
});
const packssdw = shuf((a, b, r) => {
  for (let i = 0; i < 4; i++) {
    const x = a.i32[i], y = b.i32[i];
    r.i16[i] = x > 32767 ? 32767 : x < -32768 ? -32768 : x;
    r.i16[i + 4] = y > 32767 ? 32767 : y < -32768 ? -32768 : y;
  }
});

// ---- shuffles ----------------------------------------------------------------------------

const pshufd = shuf((_a, b, r, imm) => { for (let i = 0; i < 4; i++) r.i32[i] = b.i32[(imm >> (2 * i)) & 3]; });
const pshufhw = shuf((_a, b, r, imm) => {
  r.i32[0] = b.i32[0]; r.i32[1] = b.i32[1];
  for (let i = 0; i < 4; i++) r.u16[4 + i] = b.u16[4 + ((imm >> (2 * i)) & 3)];
});
const pshuflw = shuf((_a, b, r, imm) => {
  for (let i = 0; i < 4; i++) r.u16[i] = b.u16[(imm >> (2 * i)) & 3];
  r.i32[2] = b.i32[2]; r.i32[3] = b.i32[3];
});
/** shufps: two lanes picked from the destination, two from the source. */
const shufps = shuf((a, b, r, imm) => {
  r.i32[0] = a.i32[imm & 3]; r.i32[1] = a.i32[(imm >> 2) & 3];
  r.i32[2] = b.i32[(imm >> 4) & 3]; r.i32[3] = b.i32[(imm >> 6) & 3];
});
const shufpd = shuf((a, b, r, imm) => {
  const i = (imm & 1) * 2, j = ((imm >> 1) & 1) * 2;
  r.i32[0] = a.i32[i]; r.i32[1] = a.i32[i + 1]; r.i32[2] = b.i32[j]; r.i32[3] = b.i32[j + 1];
});

// ---- word insert / extract ---------------------------------------------------------------

/** pinsrw xmm, r32/m16, imm8 */
const pinsrw: Handler = (cpu, d) => {
  sseAvail(cpu);
  const v = d.mod === 3 ? cpu.r[d.rm * 2] & 0xffff : cpu.mem.rd16(cpu.ea(d));
  loadV(cpu, d);
  A.u16[d.imm & 7] = v;
  setX(cpu, d.reg, A.i32);
};
/** pextrw r32, xmm, imm8 (zero-extended to the full register) */
const pextrw: Handler = (cpu, d) => {
  sseAvail(cpu);
  const w = cpu.xmm[d.rm * 4 + ((d.imm >> 1) & 3)];
  cpu.r[d.reg * 2] = (d.imm & 1) !== 0 ? w >>> 16 : w & 0xffff;
  cpu.r[d.reg * 2 + 1] = 0;
};

// ---- registration ----------------------------------------------------------------------

const X = OpMap.X0F;
const only66 = (h: Handler) => byPrefix(undefined, h);
const defs: [number, (d: Insn) => Handler | undefined, boolean?][] = [
  [0x60, only66(punpcklbw)], [0x61, only66(punpcklwd)], [0x62, only66(punpckldq)], [0x63, only66(packsswb)],
  [0x67, only66(packuswb)], [0x68, only66(punpckhbw)], [0x69, only66(punpckhwd)], [0x6a, only66(punpckhdq)],
  [0x6b, only66(packssdw)], [0x6c, only66(punpcklqdq)], [0x6d, only66(punpckhqdq)],
  [0x14, byPrefix(punpckldq, punpcklqdq)], [0x15, byPrefix(punpckhdq, punpckhqdq)],
  [0x70, byPrefix(undefined, pshufd, pshufhw, pshuflw), true],
  [0xc6, byPrefix(shufps, shufpd), true],
  [0xc4, only66(pinsrw), true],
  [0xc5, (d) => (d.mp === 1 && d.mod === 3 ? pextrw : undefined), true],
];
for (const [op, sel, ib] of defs) def(X, op, { modrm: true, sel, imm: ib ? Imm.IbU : Imm.None });
