// SSE/SSE2 conversions: cvtsi2ss/cvtsi2sd (32- and 64-bit sources), cvt(t)ss2si and
// cvt(t)sd2si (32- and 64-bit results), cvtss2sd/cvtsd2ss, cvtps2pd/cvtpd2ps,
// cvtdq2ps/cvt(t)ps2dq, cvtdq2pd/cvt(t)pd2dq. The MMX-register forms (cvtpi2ps, cvtps2pi,
// cvttps2pi, cvtpi2pd, cvtpd2pi, cvttpd2pi) are #UD: MMX is not implemented.
// DAZ applies to the conversions to integer too: a denormal converts to 0 without PE.

import { byPrefix, def, Map as OpMap, type Handler } from '../insn.js';
import { f32ToF64, f32ToInt, f64b, f64ToF32, f64ToInt, fe, fpBegin, i32ToF32, i64ToFloat } from '../softfp.js';
import { fpCheck, loadW, loadW32, loadW64, R, sseAvail } from './sse-common.js';

/** The Ey source of cvtsi2ss/sd: r/m32, or r/m64 with REX.W; low half returned, high in fe.hi. */
function srcEy(cpu: Parameters<Handler>[0], d: Parameters<Handler>[1], w: boolean): number {
  if (d.mod === 3) { fe.hi = w ? cpu.r[d.rm * 2 + 1] : 0; return cpu.r[d.rm * 2]; }
  const lin = cpu.ea(d);
  if (w) { const lo = cpu.mem.rd64(lin); fe.hi = cpu.mem.hi; return lo; }
  fe.hi = 0;
  return cpu.mem.rd32(lin);
}

/** cvtsi2ss xmm, r/m32|r/m64 */
const cvtsi2ss: Handler = (cpu, d) => {
  sseAvail(cpu);
  const w = (d.rex & 8) !== 0;
  const lo = srcEy(cpu, d, w), hi = fe.hi;
  fpBegin(cpu.mxcsr);
  const r = w ? i64ToFloat(lo, hi, true) : i32ToF32(lo);
  fpCheck(cpu);
  cpu.xmm[d.reg * 4] = r;
};
/** cvtsi2sd xmm, r/m32|r/m64 (exact from 32 bits). */
const cvtsi2sd: Handler = (cpu, d) => {
  sseAvail(cpu);
  const w = (d.rex & 8) !== 0;
  const lo = srcEy(cpu, d, w), hi = fe.hi;
  fpBegin(cpu.mxcsr);
  const r = w ? i64ToFloat(lo, hi, false) : f64b(lo);
  const rh = fe.hi;
  fpCheck(cpu);
  cpu.xmm[d.reg * 4] = r; cpu.xmm[d.reg * 4 + 1] = rh;
};

/** cvt(t)ss2si r32|r64, xmm/m32 */
function cvtss2si(trunc: boolean): Handler {
  return (cpu, d) => {
    sseAvail(cpu);
    const a = loadW32(cpu, d);
    const w = (d.rex & 8) !== 0;
    fpBegin(cpu.mxcsr);
    const lo = f32ToInt(a, w, trunc), hi = fe.hi;
    fpCheck(cpu);
    cpu.r[d.reg * 2] = lo; cpu.r[d.reg * 2 + 1] = hi;
  };
}
/** cvt(t)sd2si r32|r64, xmm/m64 */
function cvtsd2si(trunc: boolean): Handler {
  return (cpu, d) => {
    sseAvail(cpu);
    const b = loadW64(cpu, d);
    const w = (d.rex & 8) !== 0;
    fpBegin(cpu.mxcsr);
    const lo = f64ToInt(b[0], b[1], w, trunc), hi = fe.hi;
    fpCheck(cpu);
    cpu.r[d.reg * 2] = lo; cpu.r[d.reg * 2 + 1] = hi;
  };
}

/** cvtss2sd xmm, xmm/m32 */
const cvtss2sd: Handler = (cpu, d) => {
  sseAvail(cpu);
  const a = loadW32(cpu, d);
  fpBegin(cpu.mxcsr);
  const lo = f32ToF64(a), hi = fe.hi;
  fpCheck(cpu);
  cpu.xmm[d.reg * 4] = lo; cpu.xmm[d.reg * 4 + 1] = hi;
};
/** cvtsd2ss xmm, xmm/m64 */
const cvtsd2ss: Handler = (cpu, d) => {
  sseAvail(cpu);
  const b = loadW64(cpu, d);
  fpBegin(cpu.mxcsr);
  const r = f64ToF32(b[0], b[1]);
  fpCheck(cpu);
  cpu.xmm[d.reg * 4] = r;
};
/** cvtps2pd xmm, xmm/m64 */
const cvtps2pd: Handler = (cpu, d) => {
  sseAvail(cpu);
  const b = loadW64(cpu, d), r = R.i32;
  fpBegin(cpu.mxcsr);
  r[0] = f32ToF64(b[0]); r[1] = fe.hi;
  r[2] = f32ToF64(b[1]); r[3] = fe.hi;
  fpCheck(cpu);
  const x = cpu.xmm, t = d.reg * 4;
  x[t] = r[0]; x[t + 1] = r[1]; x[t + 2] = r[2]; x[t + 3] = r[3];
};
/** cvtpd2ps xmm, xmm/m128: the upper half of the result is zero. */
const cvtpd2ps: Handler = (cpu, d) => {
  sseAvail(cpu);
  const b = loadW(cpu, d, true);
  fpBegin(cpu.mxcsr);
  const r0 = f64ToF32(b[0], b[1]), r1 = f64ToF32(b[2], b[3]);
  fpCheck(cpu);
  const x = cpu.xmm, t = d.reg * 4;
  x[t] = r0; x[t + 1] = r1; x[t + 2] = 0; x[t + 3] = 0;
};

/** cvtdq2ps xmm, xmm/m128 */
const cvtdq2ps: Handler = (cpu, d) => {
  sseAvail(cpu);
  const b = loadW(cpu, d, true), r = R.i32;
  fpBegin(cpu.mxcsr);
  for (let i = 0; i < 4; i++) r[i] = i32ToF32(b[i]);
  fpCheck(cpu);
  const x = cpu.xmm, t = d.reg * 4;
  x[t] = r[0]; x[t + 1] = r[1]; x[t + 2] = r[2]; x[t + 3] = r[3];
};
/** cvtps2dq / cvttps2dq xmm, xmm/m128 */
function cvtps2dq(trunc: boolean): Handler {
  return (cpu, d) => {
    sseAvail(cpu);
    const b = loadW(cpu, d, true), r = R.i32;
    fpBegin(cpu.mxcsr);
    for (let i = 0; i < 4; i++) r[i] = f32ToInt(b[i], false, trunc);
    fpCheck(cpu);
    const x = cpu.xmm, t = d.reg * 4;
    x[t] = r[0]; x[t + 1] = r[1]; x[t + 2] = r[2]; x[t + 3] = r[3];
  };
}
/** cvtdq2pd xmm, xmm/m64 (exact) */
const cvtdq2pd: Handler = (cpu, d) => {
  sseAvail(cpu);
  const b = loadW64(cpu, d), r = R.i32;
  r[0] = f64b(b[0]); r[1] = fe.hi;
  r[2] = f64b(b[1]); r[3] = fe.hi;
  const x = cpu.xmm, t = d.reg * 4;
  x[t] = r[0]; x[t + 1] = r[1]; x[t + 2] = r[2]; x[t + 3] = r[3];
};
/** cvtpd2dq / cvttpd2dq xmm, xmm/m128: the upper half of the result is zero. */
function cvtpd2dq(trunc: boolean): Handler {
  return (cpu, d) => {
    sseAvail(cpu);
    const b = loadW(cpu, d, true);
    fpBegin(cpu.mxcsr);
    const r0 = f64ToInt(b[0], b[1], false, trunc), r1 = f64ToInt(b[2], b[3], false, trunc);
    fpCheck(cpu);
    const x = cpu.xmm, t = d.reg * 4;
    x[t] = r0; x[t + 1] = r1; x[t + 2] = 0; x[t + 3] = 0;
  };
}

const X = OpMap.X0F;
def(X, 0x2a, { modrm: true, sel: byPrefix(undefined, undefined, cvtsi2ss, cvtsi2sd) });
def(X, 0x2c, { modrm: true, sel: byPrefix(undefined, undefined, cvtss2si(true), cvtsd2si(true)) });
def(X, 0x2d, { modrm: true, sel: byPrefix(undefined, undefined, cvtss2si(false), cvtsd2si(false)) });
def(X, 0x5a, { modrm: true, sel: byPrefix(cvtps2pd, cvtpd2ps, cvtss2sd, cvtsd2ss) });
def(X, 0x5b, { modrm: true, sel: byPrefix(cvtdq2ps, cvtps2dq(false), cvtps2dq(true)) });
def(X, 0xe6, { modrm: true, sel: byPrefix(undefined, cvtpd2dq(true), cvtdq2pd, cvtpd2dq(false)) });
