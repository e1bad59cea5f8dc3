// x87 transcendentals in software: fsin fcos fsincos fptan fpatan f2xm1 fyl2x fyl2xp1.
//
// Results are computed in BigInt fixed point with 190+ bits and rounded once to 64 bits by
// RC (precision control does not apply), so they are correctly rounded except in cases
// closer to a rounding boundary than 2^-180. The host is close to that but not exactly
// (hardware transcendentals differ by vendor and generation): the tests compare these with
// a tolerance. Like the host, sin/cos/tan reduce their argument by a 66-bit pi, which is
// what makes fsin(pi) = -2^-64 on real hardware.

import {
  Exc, fx, indefinite, inf, isNaNK, K, kind, lsbExp, mk, roundExt, screen1, screen2, zero, bitLen, isqrt,
  type F80,
} from './float80.js';

const BIAS = 16383;
/** Default fixed-point fraction bits. */
const P0 = 200;

// ---- fixed-point kernels (value = X / 2^P) -------------------------------------------

/** Fixed-point product, truncated toward zero (so series of negative terms reach 0). */
const mulF = (a: bigint, b: bigint, P: bigint): bigint => (a * b) / (1n << P);

/** atan(x) for |x| <= 1: three argument halvings (x / (1 + sqrt(1 + x^2))), then the series. */
function atanF(x: bigint, P: bigint): bigint {
  const one = 1n << P;
  let h = 0n;
  for (; h < 3n; h++) x = (x << P) / (one + isqrt(((x * x) >> P) * one + one * one));
  const x2 = mulF(x, x, P);
  let term = x, sum = x;
  for (let k = 1n; term !== 0n; k++) {
    term = -mulF(term, x2, P);
    sum += term / (2n * k + 1n);
  }
  return sum << h;
}

/** 2 atanh(z) = ln((1+z)/(1-z)) for small |z|. */
function atanh2F(z: bigint, P: bigint): bigint {
  const z2 = mulF(z, z, P);
  let term = z, sum = z;
  for (let k = 1n; term !== 0n; k++) {
    term = mulF(term, z2, P);
    sum += term / (2n * k + 1n);
  }
  return sum * 2n;
}

/** sin and cos of |r| <= ~pi/4. */
function sinCosF(r: bigint, P: bigint): [bigint, bigint] {
  const r2 = mulF(r, r, P);
  let ts = r, s = r, tc = 1n << P, c = tc;
  for (let k = 1n; ts !== 0n || tc !== 0n; k++) {
    tc = -mulF(tc, r2, P) / ((2n * k - 1n) * (2n * k));
    ts = -mulF(ts, r2, P) / ((2n * k) * (2n * k + 1n));
    c += tc; s += ts;
  }
  return [s, c];
}

/** e^t - 1 for |t| < 1. */
function expm1F(t: bigint, P: bigint): bigint {
  let term = t, sum = t;
  for (let k = 2n; term !== 0n; k++) {
    term = mulF(term, t, P) / k;
    sum += term;
  }
  return sum;
}

// Constants with 320 fraction bits.
const PC = 320n;
const PI_FIX = ((): bigint => {
  const a = (inv: bigint): bigint => { // atan(1/inv)
    const x = (1n << PC) / inv, x2 = mulF(x, x, PC);
    let term = x, sum = x;
    for (let k = 1n; term !== 0n; k++) { term = -mulF(term, x2, PC); sum += term / (2n * k + 1n); }
    return sum;
  };
  return 16n * a(5n) - 4n * a(239n);
})();
const LN2_FIX = atanh2F((1n << PC) / 3n, PC);
/** pi to 66 bits (0xc90fdaa22168c234 and then the bits 11), as the hardware reduces by:
 *  pi ~ PI66 * 2^-64. */
const PI66 = 0x3243f6a8885a308d3n;

const fixConst = (c: bigint, P: bigint): bigint => (P <= PC ? c >> (PC - P) : c << (P - PC));

/** A fixed-point approximation (value F / 2^P, F may be negative) rounded to 80 bits as an
 *  inexact value; dir is the side the true value lies on (+1 above F, -1 below), which only
 *  matters when F itself is representable (tiny arguments: sin x just below x, ...). */
function roundFix(F: bigint, P: number, dir = 1): F80 {
  if (F === 0n) return zero(0);
  const s = F < 0n ? 1 : 0;
  const a = s ? -F : F;
  return roundExt(s, (a << 1n) + BigInt(s ? -dir : dir), -P - 1, 64);
}

/** The value of a finite x as fixed point with P fraction bits (truncated). */
function toFix(x: F80, P: number): bigint {
  const e = lsbExp(x) + P;
  const v = e >= 0 ? x.m << BigInt(e) : x.m >> BigInt(-e);
  return x.s ? -v : v;
}

/** Unbiased exponent of a finite nonzero x. */
const expOf = (x: F80): number => lsbExp(x) + bitLen(x.m) - 1;

// ---- sin cos tan -----------------------------------------------------------------------

export const trig = { outOfRange: false };

/**
 * sin and/or cos of x (which: 1 sin, 2 cos, 3 both, 4 tan). Returns null when nothing is
 * written (unmasked exception), with trig.outOfRange when |x| >= 2^63 (C2 = 1, x kept).
 */
export function sincos(x: F80, which: number): F80[] | null {
  fx.up = false;
  trig.outOfRange = false;
  const k0 = kind(x);
  if (k0 === K.Invalid || isNaNK(k0)) { const r = screen1(x) as F80; return [r, r]; }
  if (k0 === K.Inf) { fx.exc |= Exc.IE; return [indefinite(), indefinite()]; }
  if (k0 === K.Zero) return which === 2 ? [mk(0, BIAS, 1n << 63n)] : [x, mk(0, BIAS, 1n << 63n)];
  if (k0 === K.Normal && expOf(x) >= 63) { trig.outOfRange = true; return null; }
  if (k0 === K.Denormal) { fx.exc |= Exc.DE; if (!(fx.cw & Exc.DE)) return null; }
  // Reduce by the 66-bit pi/2: r = x - q * PI66 * 2^-65 (exact), |r| <= ~pi/4.
  const ex = lsbExp(x);
  const c = Math.min(ex, -65);
  const X = x.m << BigInt(ex - c), H = PI66 << BigInt(-65 - c);
  let q = (2n * X + H) / (2n * H); // round to nearest
  const R = X - q * H;
  if (x.s) q = -q;
  const Er = R === 0n ? 0 : c + bitLen(R < 0n ? -R : R) - 1;
  const P = Math.max(P0, -Er + 140);
  const Pb = BigInt(P);
  let r = P + c >= 0 ? R << BigInt(P + c) : R >> BigInt(-(P + c));
  if (x.s) r = -r;
  const [s, co] = sinCosF(r, Pb);
  const quad = Number(((q % 4n) + 4n) % 4n);
  const sinV = [s, co, -s, -co][quad], cosV = [co, -s, -co, s][quad];
  // For a tiny r the terms after the first vanish in fixed point: sin r lies just inside r,
  // cos r just below 1, tan r just outside r. Which side the true value lies on decides
  // directed rounding there.
  const tiny = Er < -70;
  const rs = x.s ? -1 : 1; // sign of r (x and r agree for tiny arguments)
  if (which === 4) {
    const t = (sinV << Pb) / cosV;
    return [roundFix(t, P, tiny ? rs : 1)];
  }
  const out: F80[] = [];
  let up = false;
  if (which & 1) { out.push(roundFix(sinV, P, tiny ? -rs : 1)); up = fx.up; }
  if (which & 2) { out.push(roundFix(cosV, P, tiny ? -1 : 1)); up = fx.up || (which === 3 && up); }
  fx.up = up;
  return out;
}

// ---- atan2 -----------------------------------------------------------------------------

/** fpatan: atan2(y, x), the angle of (x, y). */
export function atan2(y: F80, x: F80): F80 | null {
  fx.up = false;
  const r0 = screen2(y, x);
  if (r0 !== undefined) return r0;
  const ky = kind(y), kx = kind(x);
  const P = P0;
  const Pb = BigInt(P);
  const pi = fixConst(PI_FIX, Pb);
  const sgn = (v: bigint): bigint => (y.s ? -v : v);
  if (ky === K.Zero || kx === K.Inf || ky === K.Inf) {
    // The exact-angle cases: 0, pi, +-pi/2, +-pi/4, +-3pi/4.
    if (ky === K.Inf && kx === K.Inf) return roundFix(sgn(x.s ? (3n * pi) / 4n : pi / 4n), P);
    if (ky === K.Inf) return roundFix(sgn(pi / 2n), P);
    if (kx === K.Inf || ky === K.Zero) return x.s ? roundFix(sgn(pi), P) : zero(y.s);
  }
  if (kx === K.Zero) return roundFix(sgn(pi / 2n), P);
  // |y|/|x| as a fixed-point ratio <= 1, with enough bits for tiny quotients.
  const ey = expOf(y), exs = expOf(x);
  const small = ey <= exs;
  const d = Math.abs(ey - exs);
  const Pq = BigInt(P + d);
  const num = small ? y.m : x.m, den = small ? x.m : y.m;
  const sh = lsbExp(small ? y : x) - lsbExp(small ? x : y);
  const ratio = sh >= 0 ? ((num << BigInt(sh)) << Pq) / den : (num << Pq) / (den << BigInt(-sh));
  // atan(r) = r - r^3/3 + ...: for a tiny ratio the cubic term is far below the rounding.
  let a = d > 130 ? ratio : atanF(ratio, Pq);
  const half = fixConst(PI_FIX, Pq) / 2n;
  // atan of a tiny ratio lies just below the ratio.
  const dir = small && !x.s && d > 70 ? (y.s ? 1 : -1) : 1;
  if (!small) a = half - a;
  if (x.s) a = fixConst(PI_FIX, Pq) - a;
  return roundFix(sgn(a), P + d, dir);
}

// ---- logarithms and exponentials -------------------------------------------------------

/** log2 of the positive value m * 2^e as fixed point with P bits. */
function log2F(m0: bigint, e0: number, P: bigint): bigint {
  const n = bitLen(m0);
  const e = BigInt(e0 + n - 1);
  const m = (m0 << P) >> BigInt(n - 1); // in [1, 2): ln m = 2 atanh((m-1)/(m+1)), |z| <= 1/3
  const one = 1n << P;
  const ln = atanh2F(((m - one) << P) / (m + one), P);
  return (e << P) + (ln << P) / fixConst(LN2_FIX, P);
}

/** y * log2(x) with the product rounded once. */
function mulLog(y: F80, L: bigint, P: number): F80 {
  if (L === 0n) return zero(y.s);
  const s = (L < 0n ? 1 : 0) ^ y.s;
  const a = L < 0n ? -L : L;
  return roundExt(s, ((y.m * a) << 1n) | 1n, lsbExp(y) - P - 1, 64);
}

/** fyl2x: y * log2(x). */
export function yl2x(x: F80, y: F80): F80 | null {
  fx.up = false;
  const kx = kind(x), ky = kind(y);
  if (kx === K.Invalid || ky === K.Invalid || isNaNK(kx) || isNaNK(ky)) return screen2(x, y) as F80;
  // Invalid and divide-by-zero cases come before denormal operands.
  if (x.s && kx !== K.Zero) { fx.exc |= Exc.IE; return indefinite(); }
  if (kx === K.Zero) {
    if (ky === K.Zero) { fx.exc |= Exc.IE; return indefinite(); }
    if (ky === K.Inf) return inf(y.s ^ 1);
    if (ky === K.Denormal) { fx.exc |= Exc.DE; if (!(fx.cw & Exc.DE)) return null; }
    fx.exc |= Exc.ZE;
    return fx.cw & Exc.ZE ? inf(y.s ^ 1) : null;
  }
  if (kx === K.Inf) {
    if (ky === K.Zero) { fx.exc |= Exc.IE; return indefinite(); }
    if (ky === K.Denormal) { fx.exc |= Exc.DE; if (!(fx.cw & Exc.DE)) return null; }
    return inf(y.s);
  }
  const isOne = x.m === 1n << 63n && x.e === BIAS;
  if (ky === K.Inf) {
    if (isOne) { fx.exc |= Exc.IE; return indefinite(); }
    if (kx === K.Denormal) { fx.exc |= Exc.DE; if (!(fx.cw & Exc.DE)) return null; }
    return inf(y.s ^ (expOf(x) < 0 ? 1 : 0));
  }
  if (kx === K.Denormal || ky === K.Denormal) { fx.exc |= Exc.DE; if (!(fx.cw & Exc.DE)) return null; }
  if (ky === K.Zero) return zero(y.s ^ (expOf(x) < 0 ? 1 : 0));
  const P = P0 + 64;
  const L = log2F(x.m, lsbExp(x), BigInt(P));
  // A power of two gives an exact logarithm: the exact product, but inexact like the host.
  if ((x.m & ((1n << 63n) - 1n)) === 0n && x.e !== 0) {
    const e = BigInt(expOf(x));
    if (e === 0n) return zero(y.s);
    const s = (e < 0n ? 1 : 0) ^ y.s;
    const r = roundExt(s, y.m * (e < 0n ? -e : e), lsbExp(y), 64);
    fx.exc |= Exc.PE;
    return r;
  }
  return mulLog(y, L, P);
}

/** fyl2xp1: y * log2(x + 1). */
export function yl2xp1(x: F80, y: F80): F80 | null {
  fx.up = false;
  const r0 = screen2(x, y);
  if (r0 !== undefined) return r0;
  const kx = kind(x), ky = kind(y);
  if (kx === K.Zero) {
    if (ky === K.Inf) { fx.exc |= Exc.IE; return indefinite(); }
    return zero(x.s ^ y.s);
  }
  if (kx === K.Inf) {
    if (x.s || ky === K.Zero) { fx.exc |= Exc.IE; return indefinite(); }
    return inf(y.s);
  }
  if (ky === K.Inf) return inf(y.s ^ x.s);
  if (ky === K.Zero) return zero(x.s ^ y.s);
  const ex = expOf(x);
  if (x.s && ex >= 0) { fx.exc |= Exc.IE; return indefinite(); } // x <= -1
  if (ex >= -2) {
    // Not small: log2 of the exact sum 1 + x.
    const lx = lsbExp(x);
    const c = Math.min(lx, 0);
    const sum = (1n << BigInt(-c)) + (x.s ? -1n : 1n) * (x.m << BigInt(lx - c));
    const P = P0 + 64;
    return mulLog(y, log2F(sum, c, BigInt(P)), P);
  }
  // Small: ln(1 + x) = 2 atanh(x / (2 + x)), with fixed point fine enough for tiny x.
  const P = P0 + Math.max(0, -ex) + 64;
  const Pb = BigInt(P);
  const X = toFix(x, P);
  const one = 1n << Pb;
  const ln = atanh2F((X << Pb) / (2n * one + X), Pb);
  return mulLog(y, (ln << Pb) / fixConst(LN2_FIX, Pb), P);
}

/** f2xm1: 2^x - 1 for |x| <= 1; larger arguments come back unchanged (inexact), as on the
 *  host (the SDM leaves them undefined). */
export function f2xm1(x: F80): F80 | null {
  fx.up = false;
  const r0 = screen1(x);
  if (r0 !== undefined) return r0;
  const k = kind(x);
  if (k === K.Zero) return x;
  if (k === K.Inf) return x.s ? mk(1, BIAS, 1n << 63n) : x;
  const ex = expOf(x);
  if (ex >= 0) {
    if (x.m === 1n << 63n && ex === 0) return x.s ? mk(1, BIAS - 1, 1n << 63n) : mk(0, BIAS, 1n << 63n); // -1/2, 1
    fx.exc |= Exc.PE;
    return x;
  }
  const P = P0 + Math.max(0, -ex);
  const Pb = BigInt(P);
  const t = mulF(toFix(x, P), fixConst(LN2_FIX, Pb), Pb);
  return roundFix(expm1F(t, Pb), P);
}

