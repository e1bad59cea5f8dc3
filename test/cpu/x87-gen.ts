// Generators for the x87 differential tests: 80-bit values weighted towards the edges
// (zeros, denormals, pseudo-denormals, unnormals, infinities, QNaN/SNaN, pseudo-NaNs, max
// and min, values that round at ties for 24/53/64 bits, big and small exponents), float32/
// float64/integer memory operands, and x87 states loaded through the FXSAVE image: ST
// values with their abridged tags, TOP, random precision and rounding control, masks and
// sticky flags.

import fc from 'fast-check';
import { DATA_BASE, type CpuCase } from '../harness/case.js';
import { defaultFxImage } from '../harness/native.js';
import { dataArb, flagsArb, memOperand, mkCase, regsArb, rex } from '../harness/gen.js';

export interface X80 { se: number; m: bigint }
const M64 = (1n << 64n) - 1n;
const J = 1n << 63n;

const bits64 = fc.bigInt({ min: 0n, max: M64 });

/** Significands with the integer bit set. */
const mantNormal: fc.Arbitrary<bigint> = fc.oneof(
  { weight: 3, arbitrary: bits64.map((m) => m | J) },
  {
    weight: 2, arbitrary: fc.constantFrom(
      J, M64, 0xc000000000000000n, J | 1n, 0x8000008000000000n, 0x8000000000000400n, 0x80000000000007ffn,
      0x8000007fffffffffn, 0xffffff8000000000n, 0xfffffffffffff800n, 0xaaaaaaaaaaaaaaaan, 0xd555555555555555n,
      0xffffff7fffffffffn, 0xfffffffffffffbffn, 0x8000018000000000n, 0x8000000000000c00n, 0xfffffffffffffffen),
  },
  // Exactly representable at 24 or 53 bits, and values right at/around the rounding point.
  {
    weight: 3, arbitrary: fc.tuple(fc.constantFrom(24, 53, 64), bits64, fc.constantFrom(0, 1, 2, 3, 4)).map(([p, r, k]) => {
      const keep = p === 64 ? M64 : (M64 << BigInt(64 - p)) & M64;
      const base = (r | J) & keep;
      if (p === 64) return base;
      const half = 1n << BigInt(63 - p);
      switch (k) {
        case 0: return base;
        case 1: return base | half;                        // exact tie
        case 2: return base | (half - 1n);                  // just below
        case 3: return base | half | 1n;                    // just above
        default: return base | (r & (half * 2n - 1n));      // random tail
      }
    }),
  },
);

const expNormal: fc.Arbitrary<number> = fc.oneof(
  { weight: 6, arbitrary: fc.integer({ min: 0x3fff - 40, max: 0x3fff + 70 }) },
  { weight: 2, arbitrary: fc.integer({ min: 1, max: 0x7ffe }) },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 70 }) },
  { weight: 1, arbitrary: fc.integer({ min: 0x7ffe - 70, max: 0x7ffe }) },
  {
    weight: 2, arbitrary: fc.constantFrom(
      0x3fff - 126, 0x3fff - 127, 0x3fff - 149, 0x3fff - 150, 0x3fff - 125, 0x3fff + 127, 0x3fff + 128,
      0x3fff - 1022, 0x3fff - 1023, 0x3fff - 1074, 0x3fff - 1075, 0x3fff + 1023, 0x3fff + 1024,
      0x3fff + 15, 0x3fff + 16, 0x3fff + 31, 0x3fff + 32, 0x3fff + 62, 0x3fff + 63, 0x3fff + 64, 0x3fff + 59, 0x3fff + 60,
      1, 2, 0x7ffe, 0x7ffd),
  },
);

const sign = fc.integer({ min: 0, max: 1 }).map((s) => s << 15);

export const normal80: fc.Arbitrary<X80> = fc.tuple(sign, expNormal, mantNormal).map(([s, e, m]) => ({ se: s | e, m }));

/** Every class of 80-bit encoding, normals most often. */
export const ext80: fc.Arbitrary<X80> = fc.oneof(
  { weight: 14, arbitrary: normal80 },
  { weight: 2, arbitrary: sign.map((s) => ({ se: s, m: 0n })) },
  { weight: 2, arbitrary: fc.tuple(sign, fc.oneof(bits64.map((m) => m >> 1n), fc.constantFrom(1n, J - 1n, 0x4000000000000000n, 0x100n))).map(([s, m]) => ({ se: s, m: m || 1n })) },
  { weight: 2, arbitrary: sign.map((s) => ({ se: s | 0x7fff, m: J })) },
  { weight: 1, arbitrary: fc.tuple(sign, bits64).map(([s, m]) => ({ se: s | 0x7fff, m: m | 0xc000000000000000n })) },
  { weight: 1, arbitrary: fc.tuple(sign, bits64).map(([s, m]) => ({ se: s | 0x7fff, m: J | ((m >> 2n) || 1n) })) },
  { weight: 1, arbitrary: fc.constant({ se: 0xffff, m: 0xc000000000000000n }) },
  { weight: 1, arbitrary: fc.tuple(sign, bits64).map(([s, m]) => ({ se: s, m: m | J })) },              // pseudo-denormal
  { weight: 1, arbitrary: fc.tuple(sign, expNormal, bits64).map(([s, e, m]) => ({ se: s | e, m: m >> 1n })) }, // unnormal
  { weight: 1, arbitrary: fc.tuple(sign, bits64).map(([s, m]) => ({ se: s | 0x7fff, m: m >> 1n })) },  // pseudo-inf/NaN
);

/** A second operand related to a first: same or nearby exponent, equal, negated, one ulp
 *  apart, or exponents apart by the amounts where alignment and rounding change. */
export function related(a: X80): fc.Arbitrary<X80> {
  const e = a.se & 0x7fff;
  const clampE = (x: number) => Math.max(1, Math.min(0x7ffe, x));
  return fc.oneof(
    { weight: 4, arbitrary: ext80 },
    { weight: 1, arbitrary: fc.constant(a) },
    { weight: 1, arbitrary: fc.constant({ se: a.se ^ 0x8000, m: a.m }) },
    { weight: 1, arbitrary: fc.tuple(fc.constantFrom(1n, -1n, 2n, -2n), sign).map(([k, s]) => ({ se: (a.se & 0x7fff) | s, m: ((a.m + k) & M64) | J })) },
    {
      weight: 3, arbitrary: fc.tuple(fc.constantFrom(0, 1, 2, 23, 24, 25, 31, 32, 52, 53, 54, 62, 63, 64, 65, 66, 100, 16000),
        fc.boolean(), sign, mantNormal).map(([dx, neg, s, m]) => ({ se: s | clampE(e === 0 || e === 0x7fff ? 0x3fff : neg ? e - dx : e + dx), m })),
    },
  );
}


// ---- memory formats ------------------------------------------------------------------

/** The 80-bit value truncated to float32 / float64 bits (a memory operand near st(0)). */
export function truncF32(x: X80): number {
  const s = (x.se >> 15) & 1, e = (x.se & 0x7fff) - 16383 + 127;
  if (e <= 0 || e >= 255) return s ? 0x80000000 : 0;
  return ((s << 31) | (e << 23) | Number((x.m >> 40n) & 0x7fffffn)) >>> 0;
}
export function truncF64(x: X80): bigint {
  const s = BigInt((x.se >> 15) & 1), e = (x.se & 0x7fff) - 16383 + 1023;
  if (e <= 0 || e >= 2047) return s << 63n;
  return (s << 63n) | (BigInt(e) << 52n) | ((x.m >> 11n) & 0xfffffffffffffn);
}

export const f32Bits: fc.Arbitrary<number> = fc.oneof(
  { weight: 3, arbitrary: fc.integer({ min: 0, max: 0xffffffff }) },
  { weight: 3, arbitrary: fc.tuple(fc.integer({ min: 0, max: 1 }), fc.integer({ min: 100, max: 160 }), fc.integer({ min: 0, max: 0x7fffff })).map(([s, e, f]) => ((s << 31) | (e << 23) | f) >>> 0) },
  {
    weight: 2, arbitrary: fc.tuple(fc.constantFrom(0, 1, 0x7fffff, 0x400000, 0x800000, 0x7f7fffff, 0x7f800000, 0x7fc00000,
      0x7f800001, 0x7fbfffff, 0x7fffffff, 0x3f800000, 0x00000100, 0x7f000000, 0x3fc00000, 0x4b000000), fc.boolean())
      .map(([v, n]) => (n ? v | 0x80000000 : v) >>> 0),
  },
);

export const f64Bits: fc.Arbitrary<bigint> = fc.oneof(
  { weight: 3, arbitrary: bits64 },
  { weight: 3, arbitrary: fc.tuple(fc.integer({ min: 0, max: 1 }), fc.integer({ min: 980, max: 1080 }), fc.bigInt({ min: 0n, max: (1n << 52n) - 1n })).map(([s, e, f]) => (BigInt(s) << 63n) | (BigInt(e) << 52n) | f) },
  {
    weight: 2, arbitrary: fc.tuple(fc.constantFrom(0n, 1n, 0xfffffffffffffn, 0x8000000000000n, 0x10000000000000n, 0x7fefffffffffffffn,
      0x7ff0000000000000n, 0x7ff8000000000000n, 0x7ff0000000000001n, 0x7ff7ffffffffffffn, 0x3ff0000000000000n, 0x4330000000000000n,
      0x43e0000000000000n, 0x3ff8000000000000n), fc.boolean()).map(([v, n]) => (n ? v | J : v)),
  },
);

/** Integer operands with the edges of each width. */
export function intArb(bits: 16 | 32 | 64): fc.Arbitrary<bigint> {
  const top = 1n << BigInt(bits - 1);
  return fc.oneof(
    fc.constantFrom(0n, 1n, -1n, top - 1n, -top, -top + 1n, 2n, 10n, -10n),
    fc.bigInt({ min: -top, max: top - 1n }),
    fc.integer({ min: -1000, max: 1000 }).map(BigInt),
  );
}

// ---- x87 state -----------------------------------------------------------------------

export interface X87State {
  st: (X80 | null)[];   // st(0)..st(7), null: empty
  cw: number;
  sw: number;           // without TOP
  top: number;
}

export interface StateOpts {
  /** st indexes the instruction reads: non-empty 93% of the time. */
  need?: number[];
  /** Probability that another slot is in use (default 0.5). st(7) is kept free 85% of the
   *  time unless fullTop is set, so pushes overflow sometimes. */
  other?: number;
  /** Values for specific slots. */
  vals?: Record<number, fc.Arbitrary<X80>>;
  /** Make the other registers related to st(0) (see related()) half of the time, for the
   *  two-operand register forms. */
  rel?: boolean;
}

export const cwArb: fc.Arbitrary<number> = fc.tuple(
  fc.constantFrom(0, 1, 2, 3, 3, 3),            // PC: 24, reserved(64), 53, 64
  fc.integer({ min: 0, max: 3 }),               // RC
  fc.oneof({ weight: 13, arbitrary: fc.constant(0x3f) }, { weight: 7, arbitrary: fc.integer({ min: 0, max: 0x3f }) }),
  fc.oneof({ weight: 9, arbitrary: fc.constant(0x40) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 0xffff }).map((v) => v & 0xf0c0) }),
).map(([pc, rc, mask, extra]) => (pc << 8) | (rc << 10) | mask | extra);

function swArb(cw: number): fc.Arbitrary<number> {
  return fc.tuple(
    fc.integer({ min: 0, max: 0xffff }).map((v) => v & 0x4700),
    fc.oneof({ weight: 5, arbitrary: fc.constant(0) }, { weight: 4, arbitrary: fc.integer({ min: 0, max: 0x7f }) }),
    fc.integer({ min: 0, max: 19 }),
  ).map(([cc, flags, k]) => {
    // Mostly only masked sticky flags, so the instruction runs; 1 in 20 has a pending #MF.
    const f = k === 0 ? flags : flags & ((cw & 0x3f) | 0x40);
    const es = (f & ~cw & 0x3f) ? 0x8080 : 0;
    return cc | f | es;
  });
}

export function stateArb(o: StateOpts = {}): fc.Arbitrary<X87State> {
  if (o.rel) {
    return (o.vals?.[0] ?? ext80).chain((a) => {
      const vals: Record<number, fc.Arbitrary<X80>> = { 0: fc.constant(a) };
      for (let i = 1; i < 8; i++) vals[i] = fc.oneof(ext80, related(a));
      return stateArb({ ...o, rel: false, vals });
    });
  }
  const need = o.need ?? [];
  const other = o.other ?? 0.5;
  const slots: fc.Arbitrary<X80 | null>[] = [];
  for (let i = 0; i < 8; i++) {
    const v = o.vals?.[i] ?? ext80;
    const p = need.includes(i) ? 0.93 : i === 7 ? Math.min(other, 0.15) : other;
    slots.push(fc.tuple(fc.double({ min: 0, max: 1, noNaN: true }), v).map(([r, x]) => (r < p ? x : null)));
  }
  return fc.tuple(fc.tuple(...slots), cwArb, fc.integer({ min: 0, max: 7 }))
    .chain(([st, cw, top]) => swArb(cw).map((sw) => ({ st, cw, sw, top })));
}

/** The FXSAVE image holding the state (MXCSR default, XMM zero). */
export function fxImage(s: X87State): Uint8Array {
  const fx = defaultFxImage();
  const dv = new DataView(fx.buffer);
  dv.setUint16(0, s.cw, true);
  dv.setUint16(2, (s.sw & ~0x3800) | (s.top << 11), true);
  let ab = 0;
  for (let i = 0; i < 8; i++) {
    const v = s.st[i];
    const o = 32 + 16 * i;
    if (v) {
      ab |= 1 << ((s.top + i) & 7);
      dv.setBigUint64(o, v.m, true);
      dv.setUint16(o + 8, v.se, true);
    }
  }
  fx[4] = ab;
  return fx;
}

// ---- instruction cases ---------------------------------------------------------------

const baseReg = fc.constantFrom(0, 1, 2, 3, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);

/** Where a memory operand sits: mostly inside the data region, sometimes across its end
 *  (a #PF, which must leave the x87 state untouched). */
export function offArb(size: number): fc.Arbitrary<number> {
  return fc.oneof(
    { weight: 30, arbitrary: fc.integer({ min: 0, max: 0x2000 - size }) },
    { weight: 1, arbitrary: fc.integer({ min: 0x2000 - size + 1, max: 0x2000 - 1 }) },
  );
}

export interface MemCase {
  /** Instruction bytes before the ModRM (prefixes and opcode). */
  op: number[];
  /** ModRM.reg. */
  reg: number;
  size: number;
  /** The operand bytes (little-endian) for a state, or null to leave random data. */
  bytes?: (s: X87State) => fc.Arbitrary<Uint8Array | null>;
  state: StateOpts;
  /** Extra code after the instruction (e.g. fnstenv to observe FOP/FIP/FDP). */
  tail?: (base: number, disp: number) => number[];
  /** Allow a REX prefix (x87 ignores it); default true. */
  rex?: boolean;
}

/** A case with one x87 instruction on a memory operand [base + disp]. */
export function memCase(c: MemCase): fc.Arbitrary<CpuCase> {
  return stateArb(c.state).chain((st) => fc.record({
    base: baseReg, disp: fc.integer({ min: -128, max: 127 }), off: offArb(c.size), rexB: fc.boolean(),
    regs: regsArb(), fl: flagsArb, data: dataArb, bytes: c.bytes ? c.bytes(st) : fc.constant(null),
  }).map(({ base, disp, off, rexB, regs, fl, data, bytes }) => {
    regs[base] = BigInt(DATA_BASE + off - disp);
    if (bytes) for (let i = 0; i < bytes.length && off + i < 0x2000; i++) data[off + i] = bytes[i];
    // A REX prefix (W set at random) must not change anything for x87 memory forms.
    const rx = rex(c.rex !== false && rexB && (disp & 1) === 1, 0, 0, base, c.rex !== false && rexB);
    const code = [...c.op.slice(0, -1), ...rx, c.op[c.op.length - 1], ...memOperand(c.reg, base, disp)];
    if (c.tail) code.push(...c.tail(base, disp));
    return mkCase(code, regs, fl, { data, fx: fxImage(st) });
  }));
}

/** A case with one register-form instruction (bytes given), the state from opts. */
export function regCase(code: fc.Arbitrary<number[]>, state: StateOpts, tail?: number[]): fc.Arbitrary<CpuCase> {
  return fc.record({ code, regs: regsArb(), fl: flagsArb, st: stateArb(state) })
    .map(({ code, regs, fl, st }) => mkCase([...code, ...(tail ?? [])], regs, fl, { fx: fxImage(st) }));
}

export const le = (v: bigint, n: number): Uint8Array => {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = Number((v >> BigInt(8 * i)) & 0xffn);
  return b;
};

