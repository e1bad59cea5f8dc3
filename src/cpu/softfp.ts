// IEEE-754 binary32/binary64 arithmetic with the SSE (MXCSR) semantics, bit-exact: rounding
// modes, DAZ, FTZ, the six exception flags and the x86 NaN rules.
//
// How exactness is obtained without BigInt: every operation first computes, in ordinary
// double arithmetic, a value m (> 0, a normal double) and a direction dir such that the exact
// magnitude is m*2^k, or lies strictly between m*2^k and its 53-bit neighbour on the side dir.
// m is the exact result rounded to 53 bits; dir comes from an error-free transformation
// (TwoSum for sums, a Veltkamp-split TwoProduct for products, the exact remainder for
// quotients and square roots). roundPack then rounds (m, dir) to 24 or 53 bits, detects
// tininess after rounding (as x86 does), denormalises, flushes or overflows. Operands are
// pre-scaled (k) where the transformations would otherwise overflow or underflow.
//
// NaNs never pass through JS numbers (that would quiet signalling NaNs): they are handled on
// the raw bits. binary64 values travel as (lo, hi) int32 pairs; results return lo with hi in
// fe.hi. Flags accumulate in fe.fl for one instruction (fpBegin .. the caller's check).

/** MXCSR bits. */
export const enum Mx {
  IE = 0x1, DE = 0x2, ZE = 0x4, OE = 0x8, UE = 0x10, PE = 0x20, FLAGS = 0x3f,
  DAZ = 0x40, IM = 0x80, DM = 0x100, ZM = 0x200, OM = 0x400, UM = 0x800, PM = 0x1000, MASKS = 0x1f80,
  RC = 0x6000, FTZ = 0x8000,
  /** The pre-computation exceptions: when one is unmasked, only these flags are recorded. */
  PRE = 0x7,
}

/** Rounding control values. */
export const enum Rc { RN = 0, RD = 1, RU = 2, RZ = 3 }

/** Per-instruction floating-point environment: the MXCSR it runs under and the flags raised. */
export class FpEnv {
  mx = 0x1f80;
  rc = 0;
  daz = false;
  /** FTZ applies only while underflow is masked. */
  ftz = false;
  fl = 0;
  /** High half of a binary64 / 64-bit integer result. */
  hi = 0;
}
export const fe = new FpEnv();

export function fpBegin(mx: number): void {
  fe.mx = mx;
  fe.rc = (mx >> 13) & 3;
  fe.daz = (mx & Mx.DAZ) !== 0;
  fe.ftz = (mx & (Mx.FTZ | Mx.UM)) === (Mx.FTZ | Mx.UM);
  fe.fl = 0;
}

// ---- bit conversions -------------------------------------------------------------------

const F64 = new Float64Array(1);
const I64 = new Int32Array(F64.buffer);
const F32 = new Float32Array(1);
const I32 = new Int32Array(F32.buffer);

/** binary32 bits to a number (not for NaNs). */
export function f32v(bits: number): number { I32[0] = bits; return F32[0]; }
/** A number exactly representable in binary32 (or infinite) to its bits. */
export function f32b(v: number): number { F32[0] = v; return I32[0]; }
/** binary64 halves to a number (not for NaNs). */
export function f64v(lo: number, hi: number): number { I64[0] = lo; I64[1] = hi; return F64[0]; }
/** A number to binary64 bits: lo returned, hi in fe.hi. */
export function f64b(v: number): number { F64[0] = v; fe.hi = I64[1]; return I64[0]; }

/** 2^n for n in [-1074, 1023], at POW2[n + 1074]. */
const POW2 = new Float64Array(2098);
POW2[1074] = 1;
for (let n = 1; n <= 1023; n++) POW2[1074 + n] = POW2[1073 + n] * 2;
for (let n = 1; n <= 1074; n++) POW2[1074 - n] = POW2[1075 - n] / 2;

function pow2(n: number): number { return POW2[n + 1074]; }

/** x * 2^k, exact whenever the result is representable (two steps when 2^k is not). */
function mulPow2(x: number, k: number): number {
  if (k >= -1022 && k <= 1023) return x * POW2[k + 1074];
  const h = k >> 1;
  return x * POW2[h + 1074] * POW2[k - h + 1074];
}

/** Unbiased exponent of a positive normal double. */
function expOf(x: number): number { F64[0] = x; return ((I64[1] >>> 20) & 0x7ff) - 1023; }
/** A positive normal double is a power of two. */
function isPow2(x: number): boolean { F64[0] = x; return (I64[1] & 0xfffff) === 0 && I64[0] === 0; }

const F32_MAX = 3.4028234663852886e38;
const F64_MAX = 1.7976931348623157e308;
export const F32_DEFAULT_NAN = 0xffc00000 | 0;
export const F64_DEFAULT_NAN_HI = 0xfff80000 | 0;
const TWO32 = 4294967296;
const SPLIT = 134217729; // 2^27 + 1 (Veltkamp)

// ---- error-free transformations -------------------------------------------------------

/** Error of the last twoProd: a*b = p + tpErr exactly (barring overflow/underflow). */
let tpErr = 0;
function twoProd(a: number, b: number): number {
  const p = a * b;
  const ca = SPLIT * a, ah = ca - (ca - a), al = a - ah;
  const cb = SPLIT * b, bh = cb - (cb - b), bl = b - bh;
  tpErr = ((ah * bh - p) + ah * bl + al * bh) + al * bl;
  return p;
}
/** Error of a sum s = fl(x + y): x + y = s + twoSumErr(x, y, s) exactly (no overflow). */
function twoSumErr(x: number, y: number, s: number): number {
  const bb = s - x;
  return (x - (s - bb)) + (y - bb);
}

// ---- rounding ---------------------------------------------------------------------------

/** Set by roundGrid: the value was not on the grid. */
let inexact = false;

/** Round the exact magnitude (m, dir) to a multiple of g (a power of two, g >= ulp53(m)). */
function roundGrid(m: number, dir: number, g: number, neg: boolean, rc: number): number {
  const q = m / g;
  let t = Math.floor(q);
  const f = q - t;
  // cls: 0 exact, 1 below the midpoint, 2 at it, 3 above it
  let cls: number;
  if (f === 0) {
    if (dir === 0) cls = 0;
    else if (dir > 0) cls = 1;
    else { t -= 1; cls = 3; }
  } else if (f < 0.5) cls = 1;
  else if (f > 0.5) cls = 3;
  else cls = dir === 0 ? 2 : dir > 0 ? 3 : 1;
  inexact = cls !== 0;
  if (cls !== 0) {
    let up: boolean;
    switch (rc) {
      case Rc.RN: up = cls === 3 || (cls === 2 && t % 2 === 1); break;
      case Rc.RD: up = neg; break;
      case Rc.RU: up = !neg; break;
      default: up = false;
    }
    if (up) t += 1;
  }
  return t * g;
}

/**
 * Round the exact value (-1)^neg * m*2^k (with m, dir as described at the top) to binary32
 * (single) or binary64 under fe's MXCSR; returns the result as a number, accumulating flags.
 * With an unmasked overflow or underflow the returned value is meaningless (nothing is written).
 */
function roundPack(neg: boolean, m: number, dir: number, k: number, single: boolean): number {
  const rc = fe.rc;
  // The common case: m is already the binary64 result (k = 0 means m is a normal double).
  if (k === 0 && rc === Rc.RN && !single) {
    if (dir !== 0) fe.fl |= Mx.PE;
    return neg ? -m : m;
  }
  const p = single ? 24 : 53, emin = single ? -126 : -1022, emax = single ? 127 : 1023;
  const em = expOf(m);
  // Just below a power of two the grid is twice as fine.
  const e = dir < 0 && isPow2(m) ? em - 1 : em;
  const r = roundGrid(m, dir, pow2(e - p + 1), neg, rc);
  const inx = inexact;
  const er = expOf(r) + k;
  if (er > emax) {
    // Unmasked: no result; PE still tells whether the unbounded-exponent result was inexact.
    if (!(fe.mx & Mx.OM)) { fe.fl |= inx ? Mx.OE | Mx.PE : Mx.OE; return 0; }
    fe.fl |= Mx.OE | Mx.PE;
    const inf = rc === Rc.RN || (rc === Rc.RU && !neg) || (rc === Rc.RD && neg);
    const v = inf ? Infinity : single ? F32_MAX : F64_MAX;
    return neg ? -v : v;
  }
  if (er < emin) {
    // Tiny after rounding with an unbounded exponent (x86 detects tininess after rounding).
    if (!(fe.mx & Mx.UM)) { fe.fl |= inx ? Mx.UE | Mx.PE : Mx.UE; return 0; }
    if (fe.ftz) { fe.fl |= Mx.UE | Mx.PE; return neg ? -0 : 0; }
    const ge = emin - p + 1 - k; // the denormal grid, in m's scale
    let v: number;
    if (ge - em > 1) {
      // Below half the smallest denormal: zero or the smallest denormal.
      const up = rc === Rc.RU ? !neg : rc === Rc.RD ? neg : false;
      v = up ? pow2(emin - p + 1) : 0;
      fe.fl |= Mx.UE | Mx.PE;
    } else {
      v = mulPow2(roundGrid(m, dir, pow2(ge), neg, rc), k);
      if (inexact) fe.fl |= Mx.UE | Mx.PE;
    }
    return neg ? -v : v;
  }
  if (inx) fe.fl |= Mx.PE;
  const v = k === 0 ? r : mulPow2(r, k);
  return neg ? -v : v;
}

/** Round a double-double s + err (s = fl(s + err)) to the format. */
function roundSum(s: number, err: number, k: number, single: boolean): number {
  const neg = s < 0;
  const dir = err === 0 ? 0 : (err > 0) !== neg ? 1 : -1;
  return roundPack(neg, neg ? -s : s, dir, k, single);
}

/** The signed zero an exact-zero sum gets: -0 only when rounding down. */
function zeroSum(): number { return fe.rc === Rc.RD ? -0 : 0; }

// ---- binary32 -----------------------------------------------------------------------------

export const enum Op { ADD = 0, SUB = 1, MUL = 2, DIV = 3, MIN = 4, MAX = 5 }

function f32IsNaN(a: number): boolean { return (a & 0x7fffffff) > 0x7f800000; }
function f32IsSNaN(a: number): boolean { return (a & 0x7fffffff) > 0x7f800000 && (a & 0x400000) === 0; }
function f32IsDen(a: number): boolean { return (a & 0x7f800000) === 0 && (a & 0x7fffff) !== 0; }

/** The NaN result of a binary op with a NaN operand: the first NaN, quieted; IE for an SNaN. */
function f32NaN2(a: number, b: number): number {
  if (f32IsSNaN(a) || f32IsSNaN(b)) fe.fl |= Mx.IE;
  return (f32IsNaN(a) ? a : b) | 0x400000;
}

/** DAZ: a denormal becomes a zero of its sign. */
function f32Daz(a: number): number { return fe.daz && f32IsDen(a) ? a & 0x80000000 : a; }

export function f32Arith(op: number, a: number, b: number): number {
  if (f32IsNaN(a) || f32IsNaN(b)) return f32NaN2(a, b);
  a = f32Daz(a); b = f32Daz(b);
  if (op === Op.SUB) b ^= 0x80000000;
  const ax = a & 0x7fffffff, bx = b & 0x7fffffff;
  const den = f32IsDen(a) || f32IsDen(b);
  const sx = (a ^ b) & 0x80000000;
  switch (op) {
    case Op.ADD: case Op.SUB: {
      if (ax === 0x7f800000 || bx === 0x7f800000) {
        if (ax === bx && sx) { fe.fl |= Mx.IE; return F32_DEFAULT_NAN; }
        if (den) fe.fl |= Mx.DE;
        return ax === 0x7f800000 ? a : b;
      }
      if (den) fe.fl |= Mx.DE;
      const x = f32v(a), y = f32v(b);
      const s = x + y;
      if (s === 0) return (ax | bx) === 0 && !sx ? a : f32b(zeroSum());
      return f32b(roundSum(s, twoSumErr(x, y, s), 0, true));
    }
    case Op.MUL: {
      if (ax === 0x7f800000 || bx === 0x7f800000) {
        if (ax === 0 || bx === 0) { fe.fl |= Mx.IE; return F32_DEFAULT_NAN; }
        if (den) fe.fl |= Mx.DE;
        return sx | 0x7f800000;
      }
      if (den) fe.fl |= Mx.DE;
      if (ax === 0 || bx === 0) return sx;
      const pr = f32v(a) * f32v(b); // exact: 48 bits
      return f32b(roundPack(pr < 0, Math.abs(pr), 0, 0, true));
    }
    default: { // DIV
      if (ax === 0x7f800000) {
        if (bx === 0x7f800000) { fe.fl |= Mx.IE; return F32_DEFAULT_NAN; }
        if (den) fe.fl |= Mx.DE;
        return sx | 0x7f800000;
      }
      if (bx === 0x7f800000) { if (den) fe.fl |= Mx.DE; return sx; }
      if (bx === 0) {
        if (ax === 0) { fe.fl |= Mx.IE; return F32_DEFAULT_NAN; }
        fe.fl |= Mx.ZE;
        return sx | 0x7f800000;
      }
      if (den) fe.fl |= Mx.DE;
      if (ax === 0) return sx;
      const x = Math.abs(f32v(a)), y = Math.abs(f32v(b));
      return f32b(divCore(x, y, sx !== 0, 0, true));
    }
  }
}

/** Quotient of positive x/y (normal-range doubles), rounded. */
function divCore(x: number, y: number, neg: boolean, k: number, single: boolean): number {
  const q = x / y;
  const pq = twoProd(q, y);
  const rem = (x - pq) - tpErr;
  return roundPack(neg, q, rem === 0 ? 0 : rem > 0 ? 1 : -1, k, single);
}

/** Square root of positive x (normal-range double), rounded. */
function sqrtCore(x: number, k: number, single: boolean): number {
  const s = Math.sqrt(x);
  const ps = twoProd(s, s);
  const rem = (x - ps) - tpErr;
  return roundPack(false, s, rem === 0 ? 0 : rem > 0 ? 1 : -1, k, single);
}

export function f32Sqrt(a: number): number {
  if (f32IsNaN(a)) { if (f32IsSNaN(a)) fe.fl |= Mx.IE; return a | 0x400000; }
  a = f32Daz(a);
  const ax = a & 0x7fffffff;
  if (a < 0 && ax !== 0) { fe.fl |= Mx.IE; return F32_DEFAULT_NAN; }
  if (ax === 0x7f800000) return a;
  if (f32IsDen(a)) fe.fl |= Mx.DE;
  if (ax === 0) return a;
  return f32b(sqrtCore(f32v(a), 0, true));
}

/** minss/maxss: any NaN (even quiet) is invalid and gives the second operand as is; so do
 *  equal values (two zeros of any sign). DAZ applies first: a denormal comes back as zero. */
export function f32MinMax(op: number, a: number, b: number): number {
  a = f32Daz(a); b = f32Daz(b);
  if (f32IsNaN(a) || f32IsNaN(b)) { fe.fl |= Mx.IE; return b; }
  if (f32IsDen(a) || f32IsDen(b)) fe.fl |= Mx.DE;
  const x = f32v(a), y = f32v(b);
  return (op === Op.MIN ? x < y : x > y) ? a : b;
}

/** cmpps predicate 0..7 (EQ LT LE UNORD NEQ NLT NLE ORD): true/false. LT LE NLT NLE signal
 *  on quiet NaNs too. */
export function f32Cmp(pred: number, a: number, b: number): boolean {
  if (f32IsNaN(a) || f32IsNaN(b)) {
    if (f32IsSNaN(a) || f32IsSNaN(b) || (pred & 3) === 1 || (pred & 3) === 2) fe.fl |= Mx.IE;
    return pred >= 3 && pred <= 6;
  }
  a = f32Daz(a); b = f32Daz(b);
  if (f32IsDen(a) || f32IsDen(b)) fe.fl |= Mx.DE;
  return cmpPred(pred, f32v(a), f32v(b));
}

function cmpPred(pred: number, x: number, y: number): boolean {
  switch (pred) {
    case 0: return x === y;
    case 1: return x < y;
    case 2: return x <= y;
    case 3: return false;
    case 4: return x !== y;
    case 5: return !(x < y);
    case 6: return !(x <= y);
    default: return true;
  }
}

/** comiss/ucomiss: returns ZF|PF|CF as RFLAGS bits (0x45 unordered, 0x40 equal, 0x01 less). */
export function f32Comi(a: number, b: number, signalQuiet: boolean): number {
  if (f32IsNaN(a) || f32IsNaN(b)) {
    if (signalQuiet || f32IsSNaN(a) || f32IsSNaN(b)) fe.fl |= Mx.IE;
    return 0x45;
  }
  a = f32Daz(a); b = f32Daz(b);
  if (f32IsDen(a) || f32IsDen(b)) fe.fl |= Mx.DE;
  const x = f32v(a), y = f32v(b);
  return x === y ? 0x40 : x < y ? 0x01 : 0;
}

/** cvtss2sd: exact; SNaN quieted (IE), denormals DE (or zero under DAZ). lo returned, hi in fe.hi. */
export function f32ToF64(a: number): number {
  if (f32IsNaN(a)) {
    if (f32IsSNaN(a)) fe.fl |= Mx.IE;
    fe.hi = (a & 0x80000000) | 0x7ff80000 | ((a & 0x3fffff) >>> 3);
    return a << 29;
  }
  a = f32Daz(a);
  if (f32IsDen(a)) fe.fl |= Mx.DE;
  return f64b(f32v(a));
}

// ---- binary64 -----------------------------------------------------------------------------

function f64IsNaN(lo: number, hi: number): boolean { return (hi & 0x7ff00000) === 0x7ff00000 && ((hi & 0xfffff) | lo) !== 0; }
function f64IsSNaN(lo: number, hi: number): boolean { return f64IsNaN(lo, hi) && (hi & 0x80000) === 0; }
function f64IsDen(lo: number, hi: number): boolean { return (hi & 0x7ff00000) === 0 && ((hi & 0xfffff) | lo) !== 0; }
function f64IsZero(lo: number, hi: number): boolean { return ((hi & 0x7fffffff) | lo) === 0; }
function f64IsInf(lo: number, hi: number): boolean { return (hi & 0x7fffffff) === 0x7ff00000 && lo === 0; }

function f64NaN2(alo: number, ahi: number, blo: number, bhi: number): number {
  if (f64IsSNaN(alo, ahi) || f64IsSNaN(blo, bhi)) fe.fl |= Mx.IE;
  if (f64IsNaN(alo, ahi)) { fe.hi = ahi | 0x80000; return alo; }
  fe.hi = bhi | 0x80000;
  return blo;
}
function f64Default(): number { fe.fl |= Mx.IE; fe.hi = F64_DEFAULT_NAN_HI; return 0; }
function f64Bits(hi: number, lo: number): number { fe.hi = hi; return lo; }

/** Decompose a finite nonzero |binary64| as dm * 2^dk with dm in [1, 2). */
let dk = 0;
function decomp(lo: number, hi: number): number {
  const be = (hi >>> 20) & 0x7ff;
  const m = f64v(lo, (hi & 0xfffff) | 0x3ff00000);
  if (be !== 0) { dk = be - 1023; return m; }
  const t = m - 1; // 0.fraction, exactly
  const et = expOf(t);
  dk = -1022 + et;
  return t * pow2(-et);
}

const P2_1022 = 4.49423283715579e307; // 2^1022
const P2_M1000 = 9.332636185032189e-302; // 2^-1000
const P2_M1022 = 2.2250738585072014e-308; // 2^-1022
const P2_64 = 18446744073709551616;

export function f64Arith(op: number, alo: number, ahi: number, blo: number, bhi: number): number {
  if (f64IsNaN(alo, ahi) || f64IsNaN(blo, bhi)) return f64NaN2(alo, ahi, blo, bhi);
  if (fe.daz) {
    if (f64IsDen(alo, ahi)) { alo = 0; ahi &= 0x80000000; }
    if (f64IsDen(blo, bhi)) { blo = 0; bhi &= 0x80000000; }
  }
  if (op === Op.SUB) bhi ^= 0x80000000;
  const den = f64IsDen(alo, ahi) || f64IsDen(blo, bhi);
  const aInf = f64IsInf(alo, ahi), bInf = f64IsInf(blo, bhi);
  const aZero = f64IsZero(alo, ahi), bZero = f64IsZero(blo, bhi);
  const sx = (ahi ^ bhi) & 0x80000000;
  switch (op) {
    case Op.ADD: case Op.SUB: {
      if (aInf || bInf) {
        if (aInf && bInf && sx) return f64Default();
        if (den) fe.fl |= Mx.DE;
        return aInf ? f64Bits(ahi, alo) : f64Bits(bhi, blo);
      }
      if (den) fe.fl |= Mx.DE;
      if (aZero && bZero) return sx ? f64b(zeroSum()) : f64Bits(ahi, alo);
      const x = f64v(alo, ahi), y = f64v(blo, bhi);
      return f64b(addCore(x, y));
    }
    case Op.MUL: {
      if (aInf || bInf) {
        if (aZero || bZero) return f64Default();
        if (den) fe.fl |= Mx.DE;
        return f64Bits(sx | 0x7ff00000, 0);
      }
      if (den) fe.fl |= Mx.DE;
      if (aZero || bZero) return f64Bits(sx, 0);
      const ea = (ahi >>> 20) & 0x7ff, eb = (bhi >>> 20) & 0x7ff;
      const ep = ea + eb - 2046;
      if (ea >= 24 && ea <= 2018 && eb >= 24 && eb <= 2018 && ep >= -960 && ep <= 960) {
        const x = Math.abs(f64v(alo, ahi)), y = Math.abs(f64v(blo, bhi));
        const pr = twoProd(x, y);
        return f64b(roundPack(sx !== 0, pr, tpErr === 0 ? 0 : tpErr > 0 ? 1 : -1, 0, false));
      }
      const xm = decomp(alo, ahi), xk = dk;
      const ym = decomp(blo, bhi), yk = dk;
      const pr = twoProd(xm, ym);
      return f64b(roundPack(sx !== 0, pr, tpErr === 0 ? 0 : tpErr > 0 ? 1 : -1, xk + yk, false));
    }
    default: { // DIV
      if (aInf) {
        if (bInf) return f64Default();
        if (den) fe.fl |= Mx.DE;
        return f64Bits(sx | 0x7ff00000, 0);
      }
      if (bInf) { if (den) fe.fl |= Mx.DE; return f64Bits(sx, 0); }
      if (bZero) {
        if (aZero) return f64Default();
        fe.fl |= Mx.ZE;
        return f64Bits(sx | 0x7ff00000, 0);
      }
      if (den) fe.fl |= Mx.DE;
      if (aZero) return f64Bits(sx, 0);
      const xm = decomp(alo, ahi), xk = dk;
      const ym = decomp(blo, bhi), yk = dk;
      return f64b(divCore(xm, ym, sx !== 0, xk - yk, false));
    }
  }
}

/** x + y for finite doubles, not both zero. */
function addCore(x: number, y: number): number {
  const ax = Math.abs(x), ay = Math.abs(y);
  if (ax < P2_1022 && ay < P2_1022) {
    const s = x + y;
    if (s === 0) return zeroSum();
    const err = twoSumErr(x, y, s);
    // Sums of doubles below 2^-1022 are exact: scale them into the normal range.
    if (Math.abs(s) < P2_M1022) return roundSum(s * P2_64, 0, -64, false);
    return roundSum(s, err, 0, false);
  }
  const big = ax >= ay ? x : y, small = ax >= ay ? y : x;
  if (Math.abs(small) < P2_M1000) {
    // Far below half an ulp of the big operand: only its sign matters.
    const neg = big < 0;
    return roundPack(neg, Math.abs(big), small === 0 ? 0 : (small < 0) === neg ? 1 : -1, 0, false);
  }
  const xs = x * 0.25, ys = y * 0.25;
  const s = xs + ys;
  if (s === 0) return zeroSum();
  return roundSum(s, twoSumErr(xs, ys, s), 2, false);
}

export function f64Sqrt(lo: number, hi: number): number {
  if (f64IsNaN(lo, hi)) { if (f64IsSNaN(lo, hi)) fe.fl |= Mx.IE; fe.hi = hi | 0x80000; return lo; }
  if (fe.daz && f64IsDen(lo, hi)) { lo = 0; hi &= 0x80000000; }
  if (f64IsZero(lo, hi)) return f64Bits(hi, lo);
  if (hi < 0) return f64Default();
  if (f64IsInf(lo, hi)) return f64Bits(hi, lo);
  if (f64IsDen(lo, hi)) fe.fl |= Mx.DE;
  let m = decomp(lo, hi), k = dk;
  if (k & 1) { m *= 2; k -= 1; }
  return f64b(sqrtCore(m, k / 2, false));
}

function f64Daz(lo: number, hi: number): boolean { return fe.daz && f64IsDen(lo, hi); }

export function f64MinMax(op: number, alo: number, ahi: number, blo: number, bhi: number): number {
  if (f64Daz(alo, ahi)) { alo = 0; ahi &= 0x80000000; }
  if (f64Daz(blo, bhi)) { blo = 0; bhi &= 0x80000000; }
  if (f64IsNaN(alo, ahi) || f64IsNaN(blo, bhi)) { fe.fl |= Mx.IE; return f64Bits(bhi, blo); }
  if (f64IsDen(alo, ahi) || f64IsDen(blo, bhi)) fe.fl |= Mx.DE;
  const x = f64v(alo, ahi), y = f64v(blo, bhi);
  return (op === Op.MIN ? x < y : x > y) ? f64Bits(ahi, alo) : f64Bits(bhi, blo);
}

export function f64Cmp(pred: number, alo: number, ahi: number, blo: number, bhi: number): boolean {
  if (f64IsNaN(alo, ahi) || f64IsNaN(blo, bhi)) {
    if (f64IsSNaN(alo, ahi) || f64IsSNaN(blo, bhi) || (pred & 3) === 1 || (pred & 3) === 2) fe.fl |= Mx.IE;
    return pred >= 3 && pred <= 6;
  }
  if (f64Daz(alo, ahi)) { alo = 0; ahi &= 0x80000000; }
  if (f64Daz(blo, bhi)) { blo = 0; bhi &= 0x80000000; }
  if (f64IsDen(alo, ahi) || f64IsDen(blo, bhi)) fe.fl |= Mx.DE;
  return cmpPred(pred, f64v(alo, ahi), f64v(blo, bhi));
}

export function f64Comi(alo: number, ahi: number, blo: number, bhi: number, signalQuiet: boolean): number {
  if (f64IsNaN(alo, ahi) || f64IsNaN(blo, bhi)) {
    if (signalQuiet || f64IsSNaN(alo, ahi) || f64IsSNaN(blo, bhi)) fe.fl |= Mx.IE;
    return 0x45;
  }
  if (f64Daz(alo, ahi)) { alo = 0; ahi &= 0x80000000; }
  if (f64Daz(blo, bhi)) { blo = 0; bhi &= 0x80000000; }
  if (f64IsDen(alo, ahi) || f64IsDen(blo, bhi)) fe.fl |= Mx.DE;
  const x = f64v(alo, ahi), y = f64v(blo, bhi);
  return x === y ? 0x40 : x < y ? 0x01 : 0;
}

/** cvtsd2ss: rounds; NaNs keep the top 22 payload bits, quieted. */
export function f64ToF32(lo: number, hi: number): number {
  if (f64IsNaN(lo, hi)) {
    if (f64IsSNaN(lo, hi)) fe.fl |= Mx.IE;
    return (hi & 0x80000000) | 0x7fc00000 | ((hi & 0x7ffff) << 3) | (lo >>> 29);
  }
  if (f64Daz(lo, hi)) { lo = 0; hi &= 0x80000000; }
  if (f64IsZero(lo, hi)) return hi & 0x80000000;
  if (f64IsInf(lo, hi)) return (hi & 0x80000000) | 0x7f800000;
  if (f64IsDen(lo, hi)) fe.fl |= Mx.DE;
  const m = decomp(lo, hi);
  return f32b(roundPack(hi < 0, m, 0, dk, true));
}

// ---- integer conversions ---------------------------------------------------------------

/** int32 to binary32 bits (rounded). */
export function i32ToF32(v: number): number {
  if (v === 0) return 0;
  return f32b(roundPack(v < 0, Math.abs(v), 0, 0, true));
}
/** int64 (lo, hi) to binary32 (single) bits or binary64 (lo returned, hi in fe.hi). */
export function i64ToFloat(lo: number, hi: number, single: boolean): number {
  const h = hi * TWO32, l = lo >>> 0;
  const s = h + l;
  if (s === 0) return single ? 0 : f64Bits(0, 0);
  const r = roundSum(s, twoSumErr(h, l, s), 0, single);
  return single ? f32b(r) : f64b(r);
}

/**
 * A finite or infinite number (no NaN) to a 32- or 64-bit integer, truncating or by MXCSR.RC;
 * out of range gives the integer indefinite (0x80000000...) with IE. lo returned, hi in fe.hi.
 */
export function toInt(v: number, is64: boolean, trunc: boolean): number {
  let r: number;
  if (trunc) r = Math.trunc(v);
  else switch (fe.rc) {
    case Rc.RN: {
      r = Math.floor(v);
      const f = v - r;
      if (f > 0.5 || (f === 0.5 && r % 2 !== 0)) r += 1;
      break;
    }
    case Rc.RD: r = Math.floor(v); break;
    case Rc.RU: r = Math.ceil(v); break;
    default: r = Math.trunc(v);
  }
  if (is64 ? !(r >= -9223372036854775808 && r < 9223372036854775808) : !(r >= -2147483648 && r <= 2147483647)) {
    fe.fl |= Mx.IE;
    fe.hi = is64 ? (0x80000000 | 0) : 0;
    return is64 ? 0 : 0x80000000 | 0;
  }
  if (r !== v) fe.fl |= Mx.PE;
  if (!is64) { fe.hi = 0; return r | 0; }
  const h = Math.floor(r / TWO32);
  fe.hi = h | 0;
  return (r - h * TWO32) | 0;
}

/** binary32 bits to an integer (NaN: invalid). DAZ applies: a denormal converts exactly to 0. */
export function f32ToInt(a: number, is64: boolean, trunc: boolean): number {
  if (f32IsNaN(a)) return toInt(NaN, is64, trunc);
  return toInt(f32v(f32Daz(a)), is64, trunc);
}
export function f64ToInt(lo: number, hi: number, is64: boolean, trunc: boolean): number {
  if (f64IsNaN(lo, hi)) return toInt(NaN, is64, trunc);
  if (f64Daz(lo, hi)) return toInt(0, is64, trunc);
  return toInt(f64v(lo, hi), is64, trunc);
}
