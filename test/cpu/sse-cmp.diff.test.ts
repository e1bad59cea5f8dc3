// SSE/SSE2 comparisons against the host CPU: cmpps/cmppd/cmpss/cmpsd with every predicate
// (legacy SSE reads imm8[2:0]; other bits are ignored) and comiss/ucomiss/comisd/ucomisd,
// which set ZF PF CF and clear OF SF AF (all defined, all compared).
import fc from 'fast-check';
import { describe } from 'vitest';
import { diffForms, type Form } from '../harness/diff.js';
import { sseForms, v128f32, v128f64 } from './sse-gen.js';

const pred = fc.oneof({ weight: 4, arbitrary: fc.integer({ min: 0, max: 7 }) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 255 }) });
const forms: Form[] = [
  ...sseForms({ name: 'cmpps xmm, xmm/m128, imm8', op: [0xc2], vals: v128f32, mem: 16, imm: pred }),
  ...sseForms({ name: 'cmppd xmm, xmm/m128, imm8', pfx: [0x66], op: [0xc2], vals: v128f64, mem: 16, imm: pred }),
  ...sseForms({ name: 'cmpss xmm, xmm/m32, imm8', pfx: [0xf3], op: [0xc2], vals: v128f32, mem: 4, imm: pred }),
  ...sseForms({ name: 'cmpsd xmm, xmm/m64, imm8', pfx: [0xf2], op: [0xc2], vals: v128f64, mem: 8, imm: pred }),
  ...sseForms({ name: 'ucomiss xmm, xmm/m32', op: [0x2e], vals: v128f32, mem: 4 }),
  ...sseForms({ name: 'comiss xmm, xmm/m32', op: [0x2f], vals: v128f32, mem: 4 }),
  ...sseForms({ name: 'ucomisd xmm, xmm/m64', pfx: [0x66], op: [0x2e], vals: v128f64, mem: 8 }),
  ...sseForms({ name: 'comisd xmm, xmm/m64', pfx: [0x66], op: [0x2f], vals: v128f64, mem: 8 }),
];

describe('SSE comparisons against the host CPU', () => diffForms(forms));
