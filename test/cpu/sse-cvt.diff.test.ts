// SSE/SSE2 conversions against the host CPU: integer <-> single/double (32- and 64-bit
// general registers and memory), single <-> double, packed dword <-> single/double, with
// rounding modes, truncation, the integer indefinite on overflow and NaN, DAZ/FTZ and masks.
import fc from 'fast-check';
import { describe } from 'vitest';
import { diffForms, type Form } from '../harness/diff.js';
import { u64 } from '../harness/gen.js';
import { sseForms, v128f32, v128f64, v128int } from './sse-gen.js';

const P66 = [0x66], PF3 = [0xf3], PF2 = [0xf2];
/** Integers near the binary32/binary64 precision limits, where conversions round at ties. */
const intNearLimits: fc.Arbitrary<bigint> = fc.oneof(
  u64,
  fc.tuple(fc.integer({ min: 20, max: 63 }), fc.bigInt({ min: -64n, max: 64n }), fc.boolean())
    .map(([sh, k, neg]) => { const v = (1n << BigInt(sh)) + k * (1n << BigInt(Math.max(0, sh - 25))) / 2n; return BigInt.asUintN(64, neg ? -v : v); }),
  fc.tuple(fc.bigInt({ min: 0n, max: (1n << 30n) - 1n }), fc.integer({ min: 0, max: 40 }), fc.boolean())
    .map(([m, sh, neg]) => { const v = ((m << 1n) | 1n) << BigInt(sh); return BigInt.asUintN(64, neg ? -v : v); }),
);
const forms: Form[] = [
  ...sseForms({ name: 'cvtsi2ss xmm, r/m32', pfx: PF3, op: [0x2a], gprRm: true, mem: 4, gprVals: intNearLimits, vals: v128int }),
  ...sseForms({ name: 'cvtsi2ss xmm, r/m64', pfx: PF3, op: [0x2a], gprRm: true, w: true, mem: 8, gprVals: intNearLimits, vals: v128int }),
  ...sseForms({ name: 'cvtsi2sd xmm, r/m32', pfx: PF2, op: [0x2a], gprRm: true, mem: 4, gprVals: intNearLimits, vals: v128int }),
  ...sseForms({ name: 'cvtsi2sd xmm, r/m64', pfx: PF2, op: [0x2a], gprRm: true, w: true, mem: 8, gprVals: intNearLimits, vals: v128int }),
  ...sseForms({ name: 'cvttss2si r32, xmm/m32', pfx: PF3, op: [0x2c], gprReg: true, mem: 4, vals: v128f32 }),
  ...sseForms({ name: 'cvttss2si r64, xmm/m32', pfx: PF3, op: [0x2c], gprReg: true, w: true, mem: 4, vals: v128f32 }),
  ...sseForms({ name: 'cvtss2si r32, xmm/m32', pfx: PF3, op: [0x2d], gprReg: true, mem: 4, vals: v128f32 }),
  ...sseForms({ name: 'cvtss2si r64, xmm/m32', pfx: PF3, op: [0x2d], gprReg: true, w: true, mem: 4, vals: v128f32 }),
  ...sseForms({ name: 'cvttsd2si r32, xmm/m64', pfx: PF2, op: [0x2c], gprReg: true, mem: 8, vals: v128f64 }),
  ...sseForms({ name: 'cvttsd2si r64, xmm/m64', pfx: PF2, op: [0x2c], gprReg: true, w: true, mem: 8, vals: v128f64 }),
  ...sseForms({ name: 'cvtsd2si r32, xmm/m64', pfx: PF2, op: [0x2d], gprReg: true, mem: 8, vals: v128f64 }),
  ...sseForms({ name: 'cvtsd2si r64, xmm/m64', pfx: PF2, op: [0x2d], gprReg: true, w: true, mem: 8, vals: v128f64 }),
  ...sseForms({ name: 'cvtps2pd xmm, xmm/m64', op: [0x5a], mem: 8, vals: v128f32 }),
  ...sseForms({ name: 'cvtpd2ps xmm, xmm/m128', pfx: P66, op: [0x5a], mem: 16, vals: v128f64 }),
  ...sseForms({ name: 'cvtss2sd xmm, xmm/m32', pfx: PF3, op: [0x5a], mem: 4, vals: v128f32 }),
  ...sseForms({ name: 'cvtsd2ss xmm, xmm/m64', pfx: PF2, op: [0x5a], mem: 8, vals: v128f64 }),
  ...sseForms({ name: 'cvtdq2ps xmm, xmm/m128', op: [0x5b], mem: 16, vals: v128int }),
  ...sseForms({ name: 'cvtps2dq xmm, xmm/m128', pfx: P66, op: [0x5b], mem: 16, vals: v128f32 }),
  ...sseForms({ name: 'cvttps2dq xmm, xmm/m128', pfx: PF3, op: [0x5b], mem: 16, vals: v128f32 }),
  ...sseForms({ name: 'cvttpd2dq xmm, xmm/m128', pfx: P66, op: [0xe6], mem: 16, vals: v128f64 }),
  ...sseForms({ name: 'cvtdq2pd xmm, xmm/m64', pfx: PF3, op: [0xe6], mem: 8, vals: v128int }),
  ...sseForms({ name: 'cvtpd2dq xmm, xmm/m128', pfx: PF2, op: [0xe6], mem: 16, vals: v128f64 }),
];

describe('SSE conversions against the host CPU', () => diffForms(forms));
