// x87 arithmetic forms (run by x87-arith.diff.test.ts): fadd fmul fsub fsubr fdiv fdivr in
// all forms, and fsqrt fchs fabs frndint fscale fprem fprem1 fxtract. Compared: the whole
// FXSAVE image (minus FOP/FIP/FDP), registers, memory. RFLAGS are untouched by these.
import fc from 'fast-check';
import type { Form } from '../harness/diff.js';
import { f32Bits, f64Bits, intArb, le, memCase, regCase, truncF32, truncF64, type X87State } from './x87-gen.js';

const OPS: [string, number][] = [['fadd', 0], ['fmul', 1], ['fsub', 4], ['fsubr', 5], ['fdiv', 6], ['fdivr', 7]];

const f32Near = (s: X87State) => fc.oneof(
  { weight: 3, arbitrary: f32Bits },
  { weight: 2, arbitrary: fc.constant(s.st[0] ? truncF32(s.st[0]) : 0x3f800000) },
).map((b) => le(BigInt(b), 4));
const f64Near = (s: X87State) => fc.oneof(
  { weight: 3, arbitrary: f64Bits },
  { weight: 2, arbitrary: fc.constant(s.st[0] ? truncF64(s.st[0]) : 0x3ff0000000000000n) },
).map((b) => le(b, 8));

export const forms: Form[] = [];
for (const [name, r] of OPS) {
  forms.push({ name: `${name} m32fp`, gen: memCase({ op: [0xd8], reg: r, size: 4, bytes: f32Near, state: { need: [0] } }) });
  forms.push({ name: `${name} m64fp`, gen: memCase({ op: [0xdc], reg: r, size: 8, bytes: f64Near, state: { need: [0] } }) });
  forms.push({ name: `fi${name.slice(1)} m16int`, gen: memCase({ op: [0xde], reg: r, size: 2, bytes: () => intArb(16).map((v) => le(v, 2)), state: { need: [0] } }) });
  forms.push({ name: `fi${name.slice(1)} m32int`, gen: memCase({ op: [0xda], reg: r, size: 4, bytes: () => intArb(32).map((v) => le(v, 4)), state: { need: [0] } }) });
  const i = fc.integer({ min: 0, max: 7 });
  // The other registers often related to st(0): equal, negated, an ulp apart, exponents
  // apart by the amounts where alignment and rounding change.
  const rel = { need: [0, 1, 2, 3, 4, 5, 6, 7], other: 0.9, rel: true };
  forms.push({ name: `${name} st0, sti`, gen: regCase(i.map((k) => [0xd8, 0xc0 | (r << 3) | k]), rel) });
  forms.push({ name: `${name} sti, st0`, gen: regCase(i.map((k) => [0xdc, 0xc0 | (r << 3) | k]), rel) });
  forms.push({ name: `${name}p sti, st0`, gen: regCase(i.map((k) => [0xde, 0xc0 | (r << 3) | k]), rel) });
}

// Unary operations on st(0), and st(0)/st(1) pairs.
const pairState = { need: [0, 1], rel: true };
const unary: [string, number[]][] = [['fchs', [0xd9, 0xe0]], ['fabs', [0xd9, 0xe1]], ['fsqrt', [0xd9, 0xfa]], ['frndint', [0xd9, 0xfc]]];
for (const [name, code] of unary) forms.push({ name, gen: regCase(fc.constant(code), { need: [0] }) });
for (const [name, code] of [['fscale', [0xd9, 0xfd]], ['fprem', [0xd9, 0xf8]], ['fprem1', [0xd9, 0xf5]]] as [string, number[]][]) {
  forms.push({ name, gen: regCase(fc.constant(code), pairState) });
}
forms.push({ name: 'fxtract', gen: regCase(fc.constant([0xd9, 0xf4]), { need: [0] }) });

