// Generators for the SSE/SSE2 differential tests: XMM lane values weighted towards the
// floating-point edges (zeros, denormals, min/max normals, infinities, quiet and signalling
// NaNs, values near 1 whose sums and products round at ties, huge and tiny magnitudes),
// integer lane edges, MXCSR settings (all rounding modes, DAZ, FTZ, masks, sticky flags), and
// a builder that turns one instruction encoding into register and memory forms.

import fc from 'fast-check';
import { DATA_BASE, DATA_SIZE } from '../harness/case.js';
import { defaultFxImage } from '../harness/native.js';
import { flagsArb, memOperand, mkCase, modrmReg, regsArb, u64 } from '../harness/gen.js';
import type { Form } from '../harness/diff.js';

const M32 = 0xffffffff;

const F32_EDGES = [
  0, 0x80000000, 1, 0x80000001, 2, 0x007fffff, 0x807fffff, 0x00400000, 0x00800000, 0x80800000, 0x00800001,
  0x00ffffff, 0x7f7fffff, 0xff7fffff, 0x7f7ffffe, 0x7f000000, 0x7e800000, 0x7f800000, 0xff800000,
  0x7fc00000, 0xffc00000, 0x7fc00001, 0x7fffffff, 0x7f800001, 0xff800001, 0x7fbfffff, 0xffa00000,
  0x3f800000, 0xbf800000, 0x3f800001, 0x3f7fffff, 0x3f000000, 0x3fc00000, 0xbfc00000, 0x40000000,
  0x40200000, 0x40400000, 0x33800000, 0x34000000, 0x33000000, 0x4b000000, 0x4b800000, 0x4b7fffff,
  0x4f000000, 0xcf000000, 0x4effffff, 0xceffffff, 0xcf000001, 0x5f000000, 0xdf000000, 0x5effffff,
  0x3effffff, 0x3f000001, 0xbf000000, 0x1f800000, 0x5f800000, 0x20000000, 0x60000000,
];

/** Build binary32 bits from sign, biased exponent and fraction. */
const f32Bits = (s: boolean, e: number, f: number) => ((s ? 0x80000000 : 0) | (e << 23) | (f & 0x7fffff)) >>> 0;

/** A binary32 value (as bits), edge-weighted. */
export const f32Arb: fc.Arbitrary<number> = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...F32_EDGES) },
  { weight: 2, arbitrary: fc.integer({ min: 0, max: M32 }) },
  { weight: 3, arbitrary: fc.tuple(fc.boolean(), fc.integer({ min: 100, max: 154 }), fc.integer({ min: 0, max: 0x7fffff })).map(([s, e, f]) => f32Bits(s, e, f)) },
  // Few significant bits: sums and products of these land on rounding ties.
  { weight: 2, arbitrary: fc.tuple(fc.boolean(), fc.integer({ min: 110, max: 144 }), fc.integer({ min: 0, max: 0x7fffff }), fc.integer({ min: 0, max: 22 }), fc.boolean())
    .map(([s, e, f, n, low]) => f32Bits(s, e, low ? f & ((1 << n) - 1) | 0x400000 : (f >> n) << n)) },
  { weight: 1, arbitrary: fc.tuple(fc.boolean(), fc.integer({ min: 0, max: 30 }), fc.integer({ min: 0, max: 0x7fffff })).map(([s, e, f]) => f32Bits(s, e, f)) },
  { weight: 1, arbitrary: fc.tuple(fc.boolean(), fc.integer({ min: 224, max: 254 }), fc.integer({ min: 0, max: 0x7fffff })).map(([s, e, f]) => f32Bits(s, e, f)) },
  // Integers and halves: conversions to integer round these at ties.
  { weight: 1, arbitrary: fc.tuple(fc.integer({ min: -3000, max: 3000 }), fc.constantFrom(0, 0.25, 0.5, 0.75)).map(([i, h]) => {
    const b = new Float32Array([i + h]); return new Uint32Array(b.buffer)[0];
  }) },
);

const F64_EDGES: bigint[] = [
  0n, 0x8000000000000000n, 1n, 0x8000000000000001n, 0x000fffffffffffffn, 0x800fffffffffffffn, 0x0008000000000000n,
  0x0010000000000000n, 0x8010000000000000n, 0x0010000000000001n, 0x7fefffffffffffffn, 0xffefffffffffffffn,
  0x7fe0000000000000n, 0x7fd0000000000000n, 0x7ff0000000000000n, 0xfff0000000000000n, 0x7ff8000000000000n,
  0xfff8000000000000n, 0x7ff8000000000001n, 0x7fffffffffffffffn, 0x7ff0000000000001n, 0xfff0000000000001n,
  0x7ff7ffffffffffffn, 0x7ff4000020000000n, 0x3ff0000000000000n, 0xbff0000000000000n, 0x3ff0000000000001n,
  0x3fefffffffffffffn, 0x3fe0000000000000n, 0x3ff8000000000000n, 0x4000000000000000n, 0x3ca0000000000000n,
  0x3cb0000000000000n, 0x4330000000000000n, 0x4340000000000000n, 0x43e0000000000000n, 0xc3e0000000000000n,
  0x43dfffffffffffffn, 0xc3e0000000000001n, 0x41e0000000000000n, 0xc1e0000000000000n, 0x41dfffffffc00000n,
  0x41dfffffffe00000n, 0xc1e0000000100000n, 0xc1e0000000200000n, 0x47efffffe0000000n, 0x47effffff0000000n,
  0x47efffffefffffffn, 0x47f0000000000000n, 0x3810000000000000n, 0x380fffffffffffffn, 0x380ffffff0000000n,
  0x36a0000000000000n, 0x3690000000000000n, 0x3690000000000001n, 0x3680000000000000n, 0xb6a0000000000000n,
  0x3e70000000000000n, 0x1ff0000000000000n, 0x5ff0000000000000n,
];

const f64Bits = (s: boolean, e: number, f: bigint) => ((s ? 1n << 63n : 0n) | (BigInt(e) << 52n) | (f & 0xfffffffffffffn));
const frac52 = fc.bigInt({ min: 0n, max: 0xfffffffffffffn });

/** A binary64 value (as bits), edge-weighted. */
export const f64Arb: fc.Arbitrary<bigint> = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...F64_EDGES) },
  { weight: 2, arbitrary: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }) },
  { weight: 3, arbitrary: fc.tuple(fc.boolean(), fc.integer({ min: 1023 - 60, max: 1023 + 60 }), frac52).map(([s, e, f]) => f64Bits(s, e, f)) },
  { weight: 2, arbitrary: fc.tuple(fc.boolean(), fc.integer({ min: 1023 - 40, max: 1023 + 40 }), frac52, fc.integer({ min: 0, max: 51 }), fc.boolean())
    .map(([s, e, f, n, low]) => f64Bits(s, e, low ? (f & ((1n << BigInt(n)) - 1n)) | (1n << 51n) : (f >> BigInt(n)) << BigInt(n))) },
  { weight: 1, arbitrary: fc.tuple(fc.boolean(), fc.integer({ min: 0, max: 60 }), frac52).map(([s, e, f]) => f64Bits(s, e, f)) },
  { weight: 1, arbitrary: fc.tuple(fc.boolean(), fc.integer({ min: 1990, max: 2046 }), frac52).map(([s, e, f]) => f64Bits(s, e, f)) },
  // Near binary32 values (cvtsd2ss ties) and near the binary32 range ends.
  { weight: 2, arbitrary: fc.tuple(fc.boolean(), fc.oneof(fc.integer({ min: 1023 - 160, max: 1023 + 130 }), fc.integer({ min: 1023 - 30, max: 1023 + 30 })), fc.bigInt({ min: 0n, max: 0x7fffffn }),
    fc.constantFrom(0n, 1n << 28n, (1n << 28n) | 1n, (1n << 28n) - 1n, 1n, 0x1fffffffn))
    .map(([s, e, hi, lo]) => f64Bits(s, e, (hi << 29n) | lo)) },
  { weight: 1, arbitrary: fc.tuple(fc.bigInt({ min: -(1n << 62n), max: 1n << 62n }), fc.integer({ min: 0, max: 60 }), fc.constantFrom(0, 0.25, 0.5, 0.75))
    .map(([i, sh, h]) => { const v = Number(i >> BigInt(sh)) + h; const b = new Float64Array([v]); return new BigUint64Array(b.buffer)[0]; }) },
);

/** 16 bytes from four binary32 lanes. */
export const v128f32: fc.Arbitrary<Uint8Array> = fc.tuple(f32Arb, f32Arb, f32Arb, f32Arb).map((l) => new Uint8Array(Uint32Array.from(l).buffer));
/** 16 bytes from two binary64 lanes. */
export const v128f64: fc.Arbitrary<Uint8Array> = fc.tuple(f64Arb, f64Arb).map((l) => new Uint8Array(BigUint64Array.from(l).buffer));

const byteEdge = fc.oneof(fc.constantFrom(0, 1, 2, 0x7e, 0x7f, 0x80, 0x81, 0xfe, 0xff), fc.integer({ min: 0, max: 255 }));
const wordEdge = fc.oneof(fc.constantFrom(0, 1, 0x7fff, 0x8000, 0x8001, 0xffff, 0xfffe, 0x00ff, 0xff00, 0x7f, 0x80, 0xff80), fc.integer({ min: 0, max: 0xffff }));
const dwordEdge = fc.oneof(fc.constantFrom(0, 1, 0x7fffffff, 0x80000000, 0xffffffff, 0x8000, 0x7fff, 0xffff8000, 0xffff), fc.integer({ min: 0, max: M32 }));
/** 16 bytes for integer SIMD: edge bytes, words, dwords or qwords. */
export const v128int: fc.Arbitrary<Uint8Array> = fc.oneof(
  fc.array(byteEdge, { minLength: 16, maxLength: 16 }).map((a) => Uint8Array.from(a)),
  fc.array(wordEdge, { minLength: 8, maxLength: 8 }).map((a) => new Uint8Array(Uint16Array.from(a).buffer)),
  fc.array(dwordEdge, { minLength: 4, maxLength: 4 }).map((a) => new Uint8Array(Uint32Array.from(a).buffer)),
  fc.tuple(u64, u64).map((a) => new Uint8Array(BigUint64Array.from(a).buffer)),
);
/** Any of the above. */
export const v128any: fc.Arbitrary<Uint8Array> = fc.oneof(v128f32, v128f64, v128int);

/** MXCSR: every rounding mode, DAZ and FTZ often, mostly masked, sometimes sticky flags set.
 *  Bit 17 (AMD's misaligned-SSE mode, in this host's MXCSR_MASK) is never set. */
export const mxcsrArb: fc.Arbitrary<number> = fc.record({
  rc: fc.integer({ min: 0, max: 3 }),
  daz: fc.boolean(),
  ftz: fc.boolean(),
  masks: fc.oneof({ weight: 5, arbitrary: fc.constant(0x3f) }, { weight: 2, arbitrary: fc.integer({ min: 0, max: 0x3f }) }, { weight: 1, arbitrary: fc.constantFrom(0x1f, 0x3e, 0x2f, 0x37, 0x3b, 0x3d) }),
  flags: fc.oneof({ weight: 3, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 0x3f }) }),
}).map(({ rc, daz, ftz, masks, flags }) => (rc << 13) | (daz ? 0x40 : 0) | (ftz ? 0x8000 : 0) | (masks << 7) | flags);

/** MXCSR for instructions that raise no SIMD exceptions (moves, integer ops). */
export const mxcsrQuiet: fc.Arbitrary<number> = fc.oneof(fc.constant(0x1f80), mxcsrArb);

/** An FXSAVE image with these XMM registers (16 bytes each) and MXCSR. */
export function fxImage(xmm: Uint8Array[], mxcsr: number): Uint8Array {
  const fx = defaultFxImage();
  new DataView(fx.buffer).setUint32(24, mxcsr >>> 0, true);
  xmm.forEach((v, i) => fx.set(v, 160 + 16 * i));
  return fx;
}

/** Where a memory operand of `size` bytes lies in the data region: mostly naturally aligned,
 *  sometimes anywhere (misaligned: #GP for the aligned forms), sometimes crossing into the
 *  unmapped page after the region (#PF). */
export function memOffArb(size: number): fc.Arbitrary<number> {
  const al = Math.max(size, 1);
  return fc.oneof(
    { weight: 8, arbitrary: fc.integer({ min: 0, max: DATA_SIZE / al - 1 }).map((k) => k * al) },
    { weight: 1, arbitrary: fc.integer({ min: 0, max: DATA_SIZE - size }) },
    { weight: 1, arbitrary: fc.integer({ min: DATA_SIZE - size - 3, max: DATA_SIZE - 1 }) },
  );
}

export interface SseSpec {
  name: string;
  /** Mandatory prefix bytes (66, F2, F3) in front of any REX. */
  pfx?: number[];
  /** Opcode bytes after 0F (one, or 38/3A and one). */
  op: number[];
  /** Lane values for the XMM registers and the memory operand. */
  vals?: fc.Arbitrary<Uint8Array>;
  /** Memory operand size; omit for register-only forms. */
  mem?: number;
  /** Register form allowed (default true). */
  reg?: boolean;
  imm?: fc.Arbitrary<number>;
  /** REX.W set. */
  w?: boolean;
  /** ModRM.reg is a general register (destination of cvtss2si, movmskps...). */
  gprReg?: boolean;
  /** ModRM.rm is a general register in the register form (source of movd, cvtsi2ss...). */
  gprRm?: boolean;
  /** Fixed ModRM.reg (opcode groups). */
  grp?: number;
  /** Values for the general registers ModRM names. */
  gprVals?: fc.Arbitrary<bigint>;
  mx?: fc.Arbitrary<number>;
  /** Values for the two operands together (destination register, source register or memory),
   *  overriding `vals` for them: operand pairs whose result lands on a chosen edge. */
  pair?: fc.Arbitrary<[Uint8Array, Uint8Array]>;
  undef?: number;
  fxMask?: (offset: number) => boolean;
  cases?: number;
  /** Put a LOCK prefix in front (#UD on every SSE instruction). */
  lock?: boolean;
}

const xreg = fc.integer({ min: 0, max: 15 });
const gpr = fc.integer({ min: 0, max: 15 }).filter((r) => r !== 4);

function encode(s: SseSpec, reg: number, rmOrMem: number[], rexB: number, rexX: number, imm: number | undefined, lock: boolean): number[] {
  const rexv = 0x40 | (s.w ? 8 : 0) | ((reg & 8) ? 4 : 0) | (rexX ? 2 : 0) | (rexB ? 1 : 0);
  const immb = imm === undefined ? [] : [imm & 0xff];
  return [...(lock ? [0xf0] : []), ...(s.pfx ?? []), ...(rexv !== 0x40 ? [rexv] : []), 0x0f, ...s.op, ...rmOrMem, ...immb];
}

/** The register and memory forms of one SSE instruction encoding. */
export function sseForms(s: SseSpec): Form[] {
  const vals = s.vals ?? v128any;
  const mx = s.mx ?? mxcsrArb;
  const imm = s.imm ?? fc.constant(undefined);
  const pair = s.pair ?? fc.constant(undefined);
  const forms: Form[] = [];
  const regs16 = fc.array(vals, { minLength: 16, maxLength: 16 });
  const base = { undef: s.undef, fxMask: s.fxMask, cases: s.cases };
  const gprFix = (): Record<number, fc.Arbitrary<bigint>> => {
    const o: Record<number, fc.Arbitrary<bigint>> = {};
    if (s.gprVals) for (let i = 0; i < 16; i++) if (i !== 4) o[i] = s.gprVals;
    return o;
  };
  if (s.reg !== false) {
    forms.push({
      ...base,
      name: `${s.name} reg`,
      gen: fc.record({
        g: s.gprReg ? gpr : xreg, e: s.gprRm ? gpr : xreg, x: regs16, mx, im: imm, regs: regsArb(gprFix()), fl: flagsArb, p: pair,
      }).map(({ g, e, x, mx: m, im, regs, fl, p }) => {
        const r = s.grp ?? g;
        if (p) { x[e] = p[1]; x[r] = p[0]; }
        const code = encode(s, r, [modrmReg(r, e)], e & 8, 0, im, s.lock === true);
        return mkCase(code, regs, fl, { fx: fxImage(x, m) });
      }),
    });
  }
  if (s.mem !== undefined) {
    const size = s.mem;
    forms.push({
      ...base,
      name: `${s.name} mem`,
      gen: fc.record({
        g: s.gprReg ? gpr : xreg, b: gpr, off: memOffArb(size), disp: fc.integer({ min: -128, max: 127 }),
        x: regs16, m: vals, mx, im: imm, regs: regsArb(gprFix()), fl: flagsArb, fill: fc.integer({ min: 0, max: 255 }), p: pair,
      }).filter(({ g, b }) => !s.gprReg || g !== b).map(({ g, b, off, disp, x, m, mx: mxv, im, regs, fl, fill, p }) => {
        const r = s.grp ?? g;
        if (p) { x[r] = p[0]; m = p[1]; }
        const addr = DATA_BASE + off;
        regs[b] = BigInt(addr - disp);
        const data = new Uint8Array(DATA_SIZE).fill(fill);
        const n = Math.min(16, DATA_SIZE - off);
        data.set(m.subarray(0, n), off);
        const code = encode(s, r, memOperand(r, b, disp), b & 8, 0, im, s.lock === true);
        return mkCase(code, regs, fl, { fx: fxImage(x, mxv), data });
      }),
    });
  }
  return forms;
}


// ---- operand pairs whose results land near the range limits --------------------------------

/** Binary64 bits of a value m * 2^e with m in [1, 2) given by 52 fraction bits (e normal). */
function f64WithExp(neg: boolean, e: number, frac: bigint): bigint { return f64Bits(neg, e + 1023, frac); }
function f32WithExp(neg: boolean, e: number, frac: number): number { return f32Bits(neg, e + 127, frac); }

/** Sparse or full fractions, so results often sit on rounding ties. */
const frac52b = fc.oneof(frac52, frac52.map((f) => f & 0xffff000000000n), frac52.map((f) => f & 0xfc00000000000n), fc.constantFrom(0n, 0xfffffffffffffn, 0x8000000000000n, 1n));
const frac23b = fc.oneof(fc.integer({ min: 0, max: 0x7fffff }), fc.integer({ min: 0, max: 0x7fffff }).map((f) => f & 0x7ff000), fc.constantFrom(0, 0x7fffff, 0x400000, 1));

/** For op 'mul' / 'div' / 'add': operand pairs (lane 0; the other lanes random) whose result
 *  exponent lands in [target-2, target+2] for targets at underflow, deep underflow and overflow. */
export function edgePair(op: 'mul' | 'div' | 'add', double: boolean): fc.Arbitrary<[Uint8Array, Uint8Array]> {
  const emin = double ? -1022 : -126, emax = double ? 1023 : 127, p = double ? 53 : 24;
  const targets = [emin, emin - 1, emin - (p >> 1), emin - p, emin - p - 1, emax, emax + 1];
  const rest = double ? v128f64 : v128f32;
  return fc.record({
    t: fc.constantFrom(...targets), dt: fc.integer({ min: -2, max: 2 }), e1: fc.integer({ min: emin, max: emax }),
    s1: fc.boolean(), s2: fc.boolean(), f1: double ? frac52b : frac23b, f2: double ? frac52b : frac23b,
    shift: fc.integer({ min: 0, max: p + 2 }), r1: rest, r2: rest,
  }).map(({ t, dt, e1, s1, s2, f1, f2, shift, r1, r2 }) => {
    const target = t + dt;
    let ea = e1, eb: number;
    if (op === 'mul') eb = target - ea;
    else if (op === 'div') eb = ea - target;
    else { ea = Math.min(target, emax); eb = ea - shift; s2 = s1; } // sums that overflow or round near the top
    eb = Math.max(emin, Math.min(emax, eb));
    const a = r1.slice(), b = r2.slice();
    if (double) {
      new DataView(a.buffer).setBigUint64(0, f64WithExp(s1, ea, f1 as bigint), true);
      new DataView(b.buffer).setBigUint64(0, f64WithExp(s2, eb, f2 as bigint), true);
    } else {
      new DataView(a.buffer).setUint32(0, f32WithExp(s1, ea, f1 as number) >>> 0, true);
      new DataView(b.buffer).setUint32(0, f32WithExp(s2, eb, f2 as number) >>> 0, true);
    }
    return [a, b] as [Uint8Array, Uint8Array];
  });
}
