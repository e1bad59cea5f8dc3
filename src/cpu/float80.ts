// 80-bit extended arithmetic in software, bit-exact with the x87 (checked against an AMD
// host: see test/cpu/x87*.diff.test.ts).
//
// Representation choice: significands are BigInt. x87 code is rare in kernels and compiled
// user code mostly uses SSE, so this is not a hot path; BigInt gives exact products,
// quotients and square roots of 64-bit significands with a few lines each, where 32-bit
// halves would need long hand-written multi-word routines. BigInt stays inside the x87 code:
// the register file (fpu.ts) keeps significands as int32 halves.
//
// Every operation computes the exact result (or a "jammed" one: a sticky 1 appended below
// the rounding point), then one rounding routine applies precision control, rounding
// control and the masked/unmasked overflow and underflow rules. Exceptions accumulate in
// `fx.exc`; `fx.up` records that the last rounding incremented the significand (C1).

export interface F80 { s: number; e: number; m: bigint }

/** Status word exception bits (also the control word mask bits). */
export const enum Exc { IE = 1, DE = 2, ZE = 4, OE = 8, UE = 0x10, PE = 0x20, SF = 0x40 }

export const enum K { Zero, Denormal, Normal, Inf, QNaN, SNaN, Invalid }

const J = 0x8000000000000000n;
const QBIT = 0x4000000000000000n;
const M64 = 0xffffffffffffffffn;
const BIAS = 16383;
/** Exponent wrap for unmasked overflow/underflow on register destinations. */
const WRAP = 24576;

/** Per-instruction context: the control word in force, accumulated exceptions, round-up,
 *  and den: a memory operand was a denormal (it widens to a normal 80-bit value, but the
 *  operation still raises DE for it). */
export const fx = { cw: 0x037f, exc: 0, up: false, den: false };

export function mk(s: number, e: number, m: bigint): F80 { return { s, e, m }; }
export const indefinite = (): F80 => mk(1, 0x7fff, 0xc000000000000000n);
export const zero = (s: number): F80 => mk(s, 0, 0n);
export const inf = (s: number): F80 => mk(s, 0x7fff, J);

export function kind(x: F80): K {
  if (x.e === 0x7fff) {
    if ((x.m & J) === 0n) return K.Invalid; // pseudo-infinity, pseudo-NaN
    if ((x.m & ~J) === 0n) return K.Inf;
    return (x.m & QBIT) ? K.QNaN : K.SNaN;
  }
  if (x.e === 0) return x.m === 0n ? K.Zero : K.Denormal; // pseudo-denormals included
  return (x.m & J) ? K.Normal : K.Invalid; // unnormal
}

export const isNaNK = (k: K) => k === K.QNaN || k === K.SNaN;

export function bitLen(m: bigint): number {
  let n = 0;
  while (m > M64) { m >>= 64n; n += 64; }
  const hi = Number(m >> 32n), lo = Number(m & 0xffffffffn);
  return n + (hi ? 64 - Math.clz32(hi) : 32 - Math.clz32(lo));
}

/** Exponent of the significand's last bit: a finite x is m * 2^lsbExp(x). */
export function lsbExp(x: F80): number { return (x.e === 0 ? 1 : x.e) - BIAS - 63; }

/** Precision (significand bits) selected by the control word's PC field. */
export function pcBits(cw: number): number {
  const pc = (cw >> 8) & 3;
  return pc === 0 ? 24 : pc === 2 ? 53 : 64; // 1 is reserved: the host rounds to 64 bits
}

/** Quiet a NaN (set the quiet bit). */
export function quiet(x: F80): F80 { return mk(x.s, x.e, x.m | QBIT); }

/** The NaN result of a two-operand operation: a QNaN beats an SNaN, then the larger
 *  significand, then the positive one. IE when either is an SNaN. */
export function nan2(a: F80, b: F80): F80 {
  const ka = kind(a), kb = kind(b);
  if (ka === K.SNaN || kb === K.SNaN) fx.exc |= Exc.IE;
  if (!isNaNK(kb)) return quiet(a);
  if (!isNaNK(ka)) return quiet(b);
  if (ka !== kb) return quiet(ka === K.QNaN ? a : b);
  const ma = a.m | QBIT, mb = b.m | QBIT;
  if (ma !== mb) return quiet(ma > mb ? a : b);
  return quiet(a.s === 0 ? a : b);
}

/** Operand screening shared by the arithmetic: invalid encodings and NaNs give their result
 *  (IE where due); denormals raise DE, and an unmasked DE stops the operation (returns null
 *  with fx.exc = DE: the caller writes nothing). Otherwise returns undefined: go on. */
export function screen2(a: F80, b: F80, den = true): F80 | null | undefined {
  const ka = kind(a), kb = kind(b);
  if (ka === K.Invalid || kb === K.Invalid) { fx.exc |= Exc.IE; return indefinite(); }
  if (isNaNK(ka) || isNaNK(kb)) return nan2(a, b);
  return den ? denormals(a, b) : undefined;
}

/** DE for denormal operands; null when DE is unmasked (the operation is not done). */
export function denormals(a: F80, b: F80): null | undefined {
  if (kind(a) === K.Denormal || kind(b) === K.Denormal || fx.den) {
    fx.exc |= Exc.DE;
    if (!(fx.cw & Exc.DE)) return null;
  }
  return undefined;
}

export function screen1(a: F80): F80 | null | undefined {
  const k = kind(a);
  if (k === K.Invalid) { fx.exc |= Exc.IE; return indefinite(); }
  if (k === K.SNaN) { fx.exc |= Exc.IE; return quiet(a); }
  if (k === K.QNaN) return a;
  if (k === K.Denormal || fx.den) {
    fx.exc |= Exc.DE;
    if (!(fx.cw & Exc.DE)) return null;
  }
  return undefined;
}

// ---- rounding ------------------------------------------------------------------------

let rq = 0n;   // rounded significand
let rL = 0;    // exponent of its last bit

/** Round m * 2^ex (m > 0) to a multiple of 2^L by the control word's RC; true if inexact.
 *  Leaves the result in rq * 2^rL and fx.up. */
function rnd(s: number, m: bigint, ex: number, L: number, rc: number): boolean {
  const sh = L - ex;
  rL = L;
  fx.up = false;
  if (sh <= 0) { rq = m << BigInt(-sh); return false; }
  let q: bigint, cmp: number; // cmp: remainder vs half an ulp (-1, 0, 1); remainder is nonzero
  if (sh > bitLen(m) + 1) { q = 0n; cmp = -1; }
  else {
    const bs = BigInt(sh);
    q = m >> bs;
    const rem = m - (q << bs);
    if (rem === 0n) { rq = q; return false; }
    const half = 1n << (bs - 1n);
    cmp = rem > half ? 1 : rem === half ? 0 : -1;
  }
  let inc: boolean;
  switch (rc) {
    case 0: inc = cmp > 0 || (cmp === 0 && (q & 1n) === 1n); break;
    case 1: inc = s === 1; break;
    case 2: inc = s === 0; break;
    default: inc = false;
  }
  rq = inc ? q + 1n : q;
  fx.up = inc;
  return true;
}

/** A binary floating-point format: precision and exponent range (unbiased). */
export interface Fmt { p: number; emin: number; emax: number }
export const FMT32: Fmt = { p: 24, emin: -126, emax: 127 };
export const FMT64: Fmt = { p: 53, emin: -1022, emax: 1023 };
const fmtExt = (p: number): Fmt => ({ p, emin: -16382, emax: 16383 });
export const FMT80 = fmtExt(64);
const FMT_PC = [fmtExt(24), fmtExt(64), fmtExt(53), FMT80];

/** What round() produced. */
export const enum RK { Finite, Inf, Max, NoStore }
let rk: RK = RK.Finite;

/**
 * Round the value (-1)^s * m * 2^ex (m > 0, possibly jammed) into format f with the control
 * word's RC and masks. wrap: a register destination, where unmasked overflow/underflow
 * deliver the significand with the exponent wrapped by 24576; for memory destinations they
 * store nothing (RK.NoStore). Result in rq * 2^rL (or rk Inf/Max).
 */
function round(s: number, m: bigint, ex: number, f: Fmt, wrap: boolean): void {
  const cw = fx.cw, rc = (cw >> 10) & 3;
  const E = ex + bitLen(m) - 1;
  let inexact = rnd(s, m, ex, E - f.p + 1, rc);
  if (bitLen(rq) > f.p) { rq >>= 1n; rL++; }
  const Er = rL + f.p - 1; // exponent after rounding with an unbounded exponent
  rk = RK.Finite;
  if (Er > f.emax) {
    fx.exc |= Exc.OE;
    if (cw & Exc.OE) {
      fx.exc |= Exc.PE;
      const toInf = rc === 0 || (rc === 1 && s === 1) || (rc === 2 && s === 0);
      rk = toInf ? RK.Inf : RK.Max;
      fx.up = toInf;
      return;
    }
    // Nothing is stored to memory (and no PE raised, C1 clear).
    if (!wrap) { rk = RK.NoStore; fx.up = false; return; }
    if (inexact) fx.exc |= Exc.PE;
    rL -= WRAP;
    // Still too large after wrapping (only fscale gets there): infinity, inexact.
    if (rL + f.p - 1 > f.emax) { rk = RK.Inf; fx.exc |= Exc.PE; fx.up = true; }
    return;
  }
  if (Er < f.emin) { // tiny, detected after rounding
    if (!(cw & Exc.UE)) {
      fx.exc |= Exc.UE;
      if (!wrap) { rk = RK.NoStore; fx.up = false; return; }
      if (inexact) fx.exc |= Exc.PE;
      rL += WRAP;
      // Still too small after wrapping (only fscale gets there): zero, inexact.
      if (rL + f.p - 1 < f.emin) { rq = 0n; fx.exc |= Exc.PE; fx.up = false; }
      return;
    }
    inexact = rnd(s, m, ex, Math.max(E - f.p + 1, f.emin - f.p + 1), rc);
    if (inexact) fx.exc |= Exc.UE | Exc.PE;
    return;
  }
  if (inexact) fx.exc |= Exc.PE;
}

/** Pack rq * 2^rL (or rk) as an 80-bit value with precision p. */
function packExt(s: number, p: number): F80 {
  if (rk === RK.Inf) return inf(s);
  if (rk === RK.Max) return mk(s, 0x7ffe, (M64 << BigInt(64 - p)) & M64);
  if (rq === 0n) return zero(s);
  const n = bitLen(rq);
  const E = rL + n - 1;
  if (E >= -16382) {
    // Wrapped results of extreme fscale/scaled ops may still be out of range: saturate.
    if (E + BIAS > 0x7ffe) return inf(s);
    return mk(s, E + BIAS, rq << BigInt(64 - n));
  }
  const sh = rL + 16382 + 63;
  if (sh < 0) return zero(s);
  return mk(s, 0, rq << BigInt(sh));
}

/** Round an exact value to an 80-bit register result under the control word (precision p). */
export function roundExt(s: number, m: bigint, ex: number, p: number): F80 {
  if (m === 0n) { fx.up = false; return zero(s); }
  round(s, m, ex, p === 64 ? FMT80 : p === 53 ? FMT_PC[2] : FMT_PC[0], true);
  return packExt(s, p);
}

/** Round with the precision from the control word (arithmetic results). */
export function roundPC(s: number, m: bigint, ex: number): F80 { return roundExt(s, m, ex, pcBits(fx.cw)); }

// ---- loads and stores of memory formats ----------------------------------------------

/** Widen a float32 (bits) or float64 (bits as bigint) to 80 bits. SNaNs stay signalling
 *  (the operation that uses them raises IE); DE for denormals is raised by the caller. */
export function fromF32(b: number): F80 {
  const s = b >>> 31, e = (b >>> 23) & 0xff, f = BigInt(b & 0x7fffff);
  if (e === 0xff) return mk(s, 0x7fff, J | (f << 40n));
  if (e === 0) {
    if (f === 0n) return zero(s);
    const n = bitLen(f);
    return mk(s, n - 150 + BIAS, f << BigInt(64 - n));
  }
  return mk(s, e - 127 + BIAS, J | (f << 40n));
}

export function fromF64(b: bigint): F80 {
  const s = Number(b >> 63n), e = Number((b >> 52n) & 0x7ffn), f = b & 0xfffffffffffffn;
  if (e === 0x7ff) return mk(s, 0x7fff, J | (f << 11n));
  if (e === 0) {
    if (f === 0n) return zero(s);
    const n = bitLen(f);
    return mk(s, n - 1075 + BIAS, f << BigInt(64 - n));
  }
  return mk(s, e - 1023 + BIAS, J | (f << 11n));
}

/** An exact integer as 80 bits. */
export function fromInt(v: bigint): F80 {
  if (v === 0n) return zero(0);
  const s = v < 0n ? 1 : 0;
  const a = s ? -v : v;
  const n = bitLen(a);
  return mk(s, n - 1 + BIAS, a << BigInt(64 - n));
}

/**
 * Narrow to float32/float64 bits (as bigint) with RC (PC does not apply). Returns null when
 * nothing is stored (unmasked IE, OE or UE). Raises IE for SNaN and unsupported
 * encodings, DE for denormal sources.
 */
export function toFloat(x: F80, f: Fmt): bigint | null {
  const fb = f.p - 1;                         // fraction bits
  const eb = f === FMT32 ? 8 : 11;            // exponent bits
  const emask = (1n << BigInt(eb)) - 1n;
  const sgn = BigInt(x.s) << BigInt(fb + eb);
  const k = kind(x);
  const indef = (1n << BigInt(fb + eb + 1)) - (1n << BigInt(fb - 1)); // sign, exponent and quiet bit
  fx.up = false;
  switch (k) {
    case K.Invalid: fx.exc |= Exc.IE; return fx.cw & Exc.IE ? indef : null;
    case K.SNaN: case K.QNaN:
      if (k === K.SNaN) { fx.exc |= Exc.IE; if (!(fx.cw & Exc.IE)) return null; }
      return sgn | (emask << BigInt(fb)) | (((x.m | QBIT) >> BigInt(64 - f.p)) & ((1n << BigInt(fb)) - 1n));
    case K.Inf: return sgn | (emask << BigInt(fb));
    case K.Zero: return sgn;
    default: break; // denormal sources raise no DE on the host
  }
  round(x.s, x.m, lsbExp(x), f, false);
  if (rk === RK.NoStore) return null;
  if (rk === RK.Inf) return sgn | (emask << BigInt(fb));
  if (rk === RK.Max) return sgn | ((emask - 1n) << BigInt(fb)) | ((1n << BigInt(fb)) - 1n);
  if (rq === 0n) return sgn;
  const n = bitLen(rq);
  const E = rL + n - 1;
  if (E >= f.emin) return sgn | (BigInt(E + f.emax) << BigInt(fb)) | ((rq << BigInt(f.p - n)) & ((1n << BigInt(fb)) - 1n));
  return sgn | (rq << BigInt(rL - (f.emin - fb)));
}

/** Round to an integer by RC (or truncating); returns null on NaN, infinity, unsupported or
 *  out of [lo, hi] (IE raised by the caller), else the integer with PE/up set. */
export function toIntRaw(x: F80, trunc: boolean, lo: bigint, hi: bigint): bigint | null {
  fx.up = false;
  const k = kind(x);
  if (k === K.Zero) return 0n;
  if (k !== K.Normal && k !== K.Denormal) return null;
  const exc = fx.exc;
  const v = roundToInt(x, trunc ? 3 : (fx.cw >> 10) & 3);
  if (v < lo || v > hi) { fx.up = false; fx.exc = exc; return null; }
  return v;
}

/** x rounded to an integer (by rc) as a BigInt; PE and fx.up on inexact. */
function roundToInt(x: F80, rc: number): bigint {
  const ex = lsbExp(x);
  if (ex >= 0) { fx.up = false; return (x.s ? -1n : 1n) * (x.m << BigInt(ex)); }
  const inexact = rnd(x.s, x.m, ex, 0, rc);
  if (inexact) fx.exc |= Exc.PE;
  return x.s ? -rq : rq;
}

// ---- arithmetic ----------------------------------------------------------------------

/** a + b (b's sign flipped when sub). null: an unmasked pre-computation exception. */
export function add(a: F80, b0: F80, sub: boolean): F80 | null {
  fx.up = false;
  const b = sub ? mk(b0.s ^ 1, b0.e, b0.m) : b0;
  const r = screen2(a, b0);
  if (r !== undefined) return r === null ? null : r;
  const ka = kind(a), kb = kind(b);
  if (ka === K.Inf || kb === K.Inf) {
    if (ka === K.Inf && kb === K.Inf && a.s !== b.s) { fx.exc |= Exc.IE; return indefinite(); }
    return ka === K.Inf ? a : inf(b.s);
  }
  if (ka === K.Zero && kb === K.Zero) return zero(a.s === b.s ? a.s : ((fx.cw >> 10) & 3) === 1 ? 1 : 0);
  let ea = lsbExp(a), eb = lsbExp(b);
  let ma = a.m, mb = b.m;
  // Align to the smaller exponent; a far-smaller operand only matters as a sticky bit.
  if (ma !== 0n && mb !== 0n) {
    if (ea - eb > 200) { mb = 1n; eb = ea - 200; }
    else if (eb - ea > 200) { ma = 1n; ea = eb - 200; }
  }
  const e = ma === 0n ? eb : mb === 0n ? ea : Math.min(ea, eb);
  let va = ma << BigInt(ea - e), vb = mb << BigInt(eb - e);
  if (a.s) va = -va;
  if (b.s) vb = -vb;
  const sum = va + vb;
  if (sum === 0n) return zero(((fx.cw >> 10) & 3) === 1 ? 1 : 0);
  return sum < 0n ? roundPC(1, -sum, e) : roundPC(0, sum, e);
}

export function mul(a: F80, b: F80): F80 | null {
  fx.up = false;
  const r = screen2(a, b);
  if (r !== undefined) return r;
  const ka = kind(a), kb = kind(b), s = a.s ^ b.s;
  if (ka === K.Inf || kb === K.Inf) {
    if (ka === K.Zero || kb === K.Zero) { fx.exc |= Exc.IE; return indefinite(); }
    return inf(s);
  }
  if (ka === K.Zero || kb === K.Zero) return zero(s);
  return roundPC(s, a.m * b.m, lsbExp(a) + lsbExp(b));
}

/** a / b. */
export function div(a: F80, b: F80): F80 | null {
  fx.up = false;
  const ka = kind(a), kb = kind(b), s = a.s ^ b.s;
  // A zero divisor is seen before a denormal dividend (the host raises ZE alone).
  if (kb === K.Zero && (ka === K.Normal || ka === K.Denormal)) { fx.exc |= Exc.ZE; return fx.cw & Exc.ZE ? inf(s) : null; }
  const r = screen2(a, b);
  if (r !== undefined) return r;
  if (ka === K.Inf) {
    if (kb === K.Inf) { fx.exc |= Exc.IE; return indefinite(); }
    return inf(s);
  }
  if (kb === K.Inf) return zero(s);
  if (ka === K.Zero) {
    if (kb === K.Zero) { fx.exc |= Exc.IE; return indefinite(); }
    return zero(s);
  }
  // 130 extra quotient bits, then the remainder jammed into the last bit.
  const q = (a.m << 130n) / b.m;
  const rem = (a.m << 130n) - q * b.m;
  return roundPC(s, (q << 1n) | (rem ? 1n : 0n), lsbExp(a) - lsbExp(b) - 131);
}

export function isqrt(n: bigint): bigint {
  if (n < 2n) return n;
  let x = 1n << BigInt((bitLen(n) >> 1) + 1);
  for (;;) {
    const y = (x + n / x) >> 1n;
    if (y >= x) return x;
    x = y;
  }
}

export function sqrt(a: F80): F80 | null {
  fx.up = false;
  const k = kind(a);
  if (k === K.Invalid || isNaNK(k)) return screen1(a) as F80;
  if (k === K.Zero) return a;
  if (a.s) { fx.exc |= Exc.IE; return indefinite(); }
  if (k === K.Inf) return a;
  if (k === K.Denormal) { fx.exc |= Exc.DE; if (!(fx.cw & Exc.DE)) return null; }
  let m = a.m, e = lsbExp(a);
  if (e & 1) { m <<= 1n; e -= 1; }
  m <<= 160n; // 80 more root bits than the 64 needed
  const r = isqrt(m);
  return roundPC(0, (r << 1n) | (r * r !== m ? 1n : 0n), (e - 160) / 2 - 1);
}

// ---- comparisons ---------------------------------------------------------------------

/** Compare: -1 less, 0 equal, 1 greater, 2 unordered. quietNaN: QNaNs do not raise IE (fucom). */
export function compare(a: F80, b: F80, quietNaN: boolean): number {
  const ka = kind(a), kb = kind(b);
  if (ka === K.Invalid || kb === K.Invalid || ka === K.SNaN || kb === K.SNaN) { fx.exc |= Exc.IE; return 2; }
  if (ka === K.QNaN || kb === K.QNaN) { if (!quietNaN) fx.exc |= Exc.IE; return 2; }
  if (ka === K.Denormal || kb === K.Denormal || fx.den) fx.exc |= Exc.DE;
  return cmpValues(a, b);
}

/** Order of two non-NaN values. */
export function cmpValues(a: F80, b: F80): number {
  const za = a.m === 0n && a.e === 0, zb = b.m === 0n && b.e === 0;
  if (za && zb) return 0;
  if (a.s !== b.s) return za ? (b.s ? 1 : -1) : a.s ? -1 : 1;
  const mag = cmpMag(a, b);
  return a.s ? -mag : mag;
}

function cmpMag(a: F80, b: F80): number {
  const ka = kind(a), kb = kind(b);
  if (ka === K.Inf || kb === K.Inf) return ka === kb ? 0 : ka === K.Inf ? 1 : -1;
  const ea = lsbExp(a), eb = lsbExp(b);
  const e = Math.min(ea, eb);
  const va = a.m << BigInt(ea - e), vb = b.m << BigInt(eb - e);
  return va > vb ? 1 : va < vb ? -1 : 0;
}

// ---- other operations ----------------------------------------------------------------

/** frndint: round to an integer by RC at full precision. */
export function rndint(a: F80): F80 | null {
  fx.up = false;
  const r = screen1(a);
  if (r !== undefined) return r;
  const k = kind(a);
  if (k === K.Zero || k === K.Inf) return a;
  if (lsbExp(a) >= 0) return a;
  const v = roundToInt(a, (fx.cw >> 10) & 3);
  const up = fx.up;
  if (v === 0n) { fx.up = up; return zero(a.s); }
  const res = fromInt(v);
  fx.up = up;
  return res;
}

/** fscale: a * 2^trunc(b). */
export function scale(a: F80, b: F80): F80 | null {
  fx.up = false;
  const r = screen2(a, b);
  if (r !== undefined) return r;
  const ka = kind(a), kb = kind(b);
  if (kb === K.Inf) {
    if (b.s === 0) { if (ka === K.Zero) { fx.exc |= Exc.IE; return indefinite(); } return inf(a.s); }
    if (ka === K.Inf) { fx.exc |= Exc.IE; return indefinite(); }
    return zero(a.s);
  }
  if (ka === K.Inf || ka === K.Zero) return a;
  // trunc(b), clamped far beyond any exponent that could still give a finite nonzero result.
  let n = 0;
  if (kb !== K.Zero) {
    const eb = lsbExp(b);
    const t = eb >= 0 ? 1n << 20n : b.m >> BigInt(-eb);
    n = Number(t > 100000n ? 100000n : t);
    if (b.s) n = -n;
  }
  return roundExt(a.s, a.m, lsbExp(a) + n, 64);
}

/** fprem/fprem1 result: the remainder, the low quotient bits and whether it is partial. */
export const remOut = { q: 0, partial: false };

/** Partial remainder of a / b: truncating quotient (fprem) or round-to-nearest (fprem1).
 *  When the exponents differ by 64 or more the host reduces by 2^(D-N), N = 32 + D mod 32. */
export function rem(a: F80, b: F80, nearest: boolean): F80 | null {
  fx.up = false;
  remOut.q = -1; remOut.partial = false;
  const r = screen2(a, b, false);
  if (r !== undefined) return r;
  const ka = kind(a), kb = kind(b);
  // Invalid operand pairs are seen before denormals.
  if (ka === K.Inf || kb === K.Zero) { fx.exc |= Exc.IE; return indefinite(); }
  if (denormals(a, b) === null) return null;
  remOut.q = 0;
  if (ka === K.Zero) return a;
  // st(0) comes back as it is, but normalised and checked for underflow like a result.
  if (kb === K.Inf) return roundExt(a.s, a.m, lsbExp(a), 64);
  const ea = lsbExp(a), eb = lsbExp(b);
  const Ea = ea + bitLen(a.m) - 1, Eb = eb + bitLen(b.m) - 1;
  const D = Ea - Eb;
  const e = Math.min(ea, eb);
  const A = a.m << BigInt(ea - e), B = b.m << BigInt(eb - e);
  if (D >= 64) {
    const sh = BigInt(D - 32 - (D & 31));
    const qq = A / (B << sh);
    const R = A - ((qq * B) << sh);
    remOut.partial = true;
    return R === 0n ? zero(a.s) : roundExt(a.s, R, e, 64);
  }
  let q = A / B;
  let R = A - q * B;
  let s = a.s;
  if (nearest) {
    const twice = R << 1n;
    if (twice > B || (twice === B && (q & 1n) === 1n)) { q += 1n; R = B - R; s ^= 1; }
  }
  remOut.q = Number(q & 7n);
  return R === 0n ? zero(a.s) : roundExt(s, R, e, 64);
}

/** fxtract: the exponent of a (as a value) and its significand scaled to [1, 2). */
export function xtract(a: F80): [F80, F80] | null {
  fx.up = false;
  const k = kind(a);
  if (k === K.Invalid || isNaNK(k)) { const n = screen1(a) as F80; return [n, n]; }
  if (k === K.Zero) {
    fx.exc |= Exc.ZE;
    if (!(fx.cw & Exc.ZE)) return null;
    return [inf(1), a];
  }
  if (k === K.Inf) return [inf(0), a];
  if (k === K.Denormal) { fx.exc |= Exc.DE; if (!(fx.cw & Exc.DE)) return null; }
  const n = bitLen(a.m);
  const E = lsbExp(a) + n - 1;
  return [fromInt(BigInt(E)), mk(a.s, BIAS, a.m << BigInt(64 - n))];
}
