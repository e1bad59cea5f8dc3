// x87 comparison forms (run by x87-compare.diff.test.ts): fcom/fcomp m32 m64 st(i), fcompp,
// fucom/fucomp/fucompp, ficom/ficomp m16 m32, fcomi/fcomip/fucomi/fucomip (RFLAGS
// compared in full: ZF PF CF set, OF SF AF cleared), ftst, fxam, and the fcom aliases.
import fc from 'fast-check';
import type { Form } from '../harness/diff.js';
import { f32Bits, f64Bits, intArb, le, memCase, regCase, truncF32, truncF64, type X87State } from './x87-gen.js';

const f32Near = (s: X87State) => fc.oneof(f32Bits, fc.constant(s.st[0] ? truncF32(s.st[0]) : 0)).map((b) => le(BigInt(b), 4));
const f64Near = (s: X87State) => fc.oneof(f64Bits, fc.constant(s.st[0] ? truncF64(s.st[0]) : 0n)).map((b) => le(b, 8));
const i8 = fc.integer({ min: 0, max: 7 });
const all = { need: [0, 1, 2, 3, 4, 5, 6, 7], other: 0.9 };
const st0 = { need: [0] };

export const forms: Form[] = [];
for (const [name, r] of [['fcom', 2], ['fcomp', 3]] as [string, number][]) {
  forms.push({ name: `${name} m32fp`, gen: memCase({ op: [0xd8], reg: r, size: 4, bytes: f32Near, state: st0 }) });
  forms.push({ name: `${name} m64fp`, gen: memCase({ op: [0xdc], reg: r, size: 8, bytes: f64Near, state: st0 }) });
  forms.push({ name: `fi${name.slice(1)} m16int`, gen: memCase({ op: [0xde], reg: r, size: 2, bytes: () => intArb(16).map((v) => le(v, 2)), state: st0 }) });
  forms.push({ name: `fi${name.slice(1)} m32int`, gen: memCase({ op: [0xda], reg: r, size: 4, bytes: () => intArb(32).map((v) => le(v, 4)), state: st0 }) });
}
const regForms: [string, number, number][] = [
  ['fcom sti', 0xd8, 0xd0], ['fcomp sti', 0xd8, 0xd8], ['fucom sti', 0xdd, 0xe0], ['fucomp sti', 0xdd, 0xe8],
  ['fcomi st0, sti', 0xdb, 0xf0], ['fcomip st0, sti', 0xdf, 0xf0], ['fucomi st0, sti', 0xdb, 0xe8], ['fucomip st0, sti', 0xdf, 0xe8],
  ['fcom2 sti (DC D0+i)', 0xdc, 0xd0], ['fcomp3 sti (DC D8+i)', 0xdc, 0xd8], ['fcomp5 sti (DE D0+i)', 0xde, 0xd0],
];
for (const [name, op, m] of regForms) forms.push({ name, gen: regCase(i8.map((i) => [op, m | i]), all) });
forms.push({ name: 'fcompp', gen: regCase(fc.constant([0xde, 0xd9]), { need: [0, 1] }) });
forms.push({ name: 'fucompp', gen: regCase(fc.constant([0xda, 0xe9]), { need: [0, 1] }) });
forms.push({ name: 'ftst', gen: regCase(fc.constant([0xd9, 0xe4]), st0) });
forms.push({ name: 'fxam', gen: regCase(fc.constant([0xd9, 0xe5]), { need: [0], other: 0.5 }) });
