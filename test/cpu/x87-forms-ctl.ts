// x87 control forms (run by x87-control.diff.test.ts): fldcw/fnstcw, fnstsw m16/ax, fnclex,
// fninit, fwait (with pending exceptions: #MF), fnop, fincstp/fdecstp, feni/fdisi/fsetpm,
// fnstenv/fldenv and fnsave/frstor in the 32- and 16-bit layouts, and random sequences of
// x87 instructions ending in fnstenv, which expose FOP/FIP/FDP.
//
// FCS and FDS are zeroed in memory after fnstenv/fnsave by the test code itself: natively
// CS is the user selector 0x33 while the interpreter runs with its own flat selectors.
import fc from 'fast-check';
import type { Form } from '../harness/diff.js';
import { DATA_BASE } from '../harness/case.js';
import { dataArb, flagsArb, memOperand, mkCase, regsArb, rex } from '../harness/gen.js';
import { ext80, f32Bits, fxImage, intArb, le, memCase, regCase, stateArb, type X80 } from './x87-gen.js';

const any = { need: [], other: 0.6 };
const i8 = fc.integer({ min: 0, max: 7 });

/** mov word [base+disp], 0 */
const zero16 = (base: number, disp: number): number[] => [0x66, ...rex(false, 0, 0, base), 0xc7, ...memOperand(0, base, disp), 0, 0];
/** Code that zeroes FCS and FDS of an environment at [base+disp] (osz 2: 16-bit layout). */
const maskSel = (o16: boolean) => (base: number, disp: number): number[] =>
  o16 ? [...zero16(base, disp + 8), ...zero16(base, disp + 12)] : [...zero16(base, disp + 16), ...zero16(base, disp + 24)];

/** A random environment image (mostly plausible control words). */
const envBytes = (o16: boolean, regs: boolean) => fc.tuple(
  fc.oneof(fc.integer({ min: 0, max: 0xffff }), fc.constantFrom(0x37f, 0x27f, 0x7f, 0xf7f, 0x37e, 0x360)),
  fc.integer({ min: 0, max: 0xffff }), fc.oneof(fc.integer({ min: 0, max: 0xffff }), fc.constantFrom(0xffff, 0, 0x5555, 0xfffc)),
  fc.uint8Array({ minLength: 28, maxLength: 28 }), fc.array(ext80, { minLength: 8, maxLength: 8 }),
).map(([cw, sw, tw, rnd, st]) => {
  const n = (o16 ? 14 : 28) + (regs ? 80 : 0);
  const b = new Uint8Array(n);
  b.set(rnd.subarray(0, o16 ? 14 : 28));
  const w = (o: number, v: number) => { b[o] = v & 0xff; b[o + 1] = (v >> 8) & 0xff; };
  const k = o16 ? 2 : 4;
  w(0, cw); w(k, sw); w(2 * k, tw);
  if (regs) st.forEach((x: X80, i) => { const o = (o16 ? 14 : 28) + i * 10; b.set(le(x.m, 8), o); w(o + 8, x.se); });
  return b;
});

export const forms: Form[] = [
  { name: 'fnstcw m16', gen: memCase({ op: [0xd9], reg: 7, size: 2, state: any }) },
  { name: 'fldcw m16', gen: memCase({ op: [0xd9], reg: 5, size: 2, bytes: () => fc.integer({ min: 0, max: 0xffff }).map((v) => le(BigInt(v), 2)), state: any }) },
  { name: 'fnstsw m16', gen: memCase({ op: [0xdd], reg: 7, size: 2, state: any }) },
  { name: 'fnstsw ax', gen: regCase(fc.constant([0xdf, 0xe0]), any) },
  { name: 'fnclex', gen: regCase(fc.constant([0xdb, 0xe2]), any) },
  { name: 'fninit', gen: regCase(fc.constant([0xdb, 0xe3]), any) },
  { name: 'fwait', gen: regCase(fc.constant([0x9b]), any) },
  { name: 'fnop', gen: regCase(fc.constant([0xd9, 0xd0]), any) },
  { name: 'fincstp', gen: regCase(fc.constant([0xd9, 0xf7]), any) },
  { name: 'fdecstp', gen: regCase(fc.constant([0xd9, 0xf6]), any) },
  { name: 'feni/fdisi/fsetpm (DB E0/E1/E4)', gen: regCase(fc.constantFrom([0xdb, 0xe0], [0xdb, 0xe1], [0xdb, 0xe4]), any) },
];

for (const o16 of [false, true]) {
  const p = o16 ? [0x66] : [];
  const sz = o16 ? 14 : 28;
  const tag = o16 ? ' (16-bit)' : '';
  forms.push({ name: `fnstenv${tag}`, gen: memCase({ op: [...p, 0xd9], reg: 6, size: sz, state: any, tail: maskSel(o16) }) });
  forms.push({ name: `fldenv${tag}`, gen: memCase({ op: [...p, 0xd9], reg: 4, size: sz, bytes: () => envBytes(o16, false), state: any }) });
  forms.push({ name: `fnsave${tag}`, gen: memCase({ op: [...p, 0xdd], reg: 6, size: sz + 80, state: any, tail: maskSel(o16) }) });
  forms.push({ name: `frstor${tag}`, gen: memCase({ op: [...p, 0xdd], reg: 4, size: sz + 80, bytes: () => envBytes(o16, true), state: any }) });
}

// ---- sequences -----------------------------------------------------------------------

/** Instructions for sequences, as functions of a base register (rbx) and a free data offset. */
type Piece = (off: number) => number[];
const m = (op: number, reg: number): Piece => (off) => [op, ...memOperand(reg, 3, off)];
const r2 = (a: number, b: number): Piece => () => [a, b];
const PIECES: Piece[] = [
  m(0xd9, 0), m(0xdd, 0), m(0xdb, 5), m(0xdf, 5), m(0xdb, 0), m(0xde, 0), m(0xd8, 0), m(0xdc, 1), m(0xd8, 6), m(0xdc, 7),
  m(0xd9, 3), m(0xdd, 2), m(0xdb, 3), m(0xdf, 7), m(0xdd, 1), m(0xd8, 2), m(0xdc, 3),
  r2(0xd8, 0xc1), r2(0xdc, 0xc9), r2(0xde, 0xe9), r2(0xde, 0xf9), r2(0xd9, 0xc9), r2(0xd9, 0xe0), r2(0xd9, 0xe1),
  r2(0xd9, 0xfa), r2(0xd9, 0xfc), r2(0xd9, 0xe8), r2(0xd9, 0xee), r2(0xd9, 0xeb), r2(0xdd, 0xd9), r2(0xdd, 0xc1),
  r2(0xdb, 0xf1), r2(0xdf, 0xe9), r2(0xde, 0xd9), r2(0xd9, 0xe5), r2(0xd9, 0xf8), r2(0xd9, 0xfd), r2(0xd9, 0xf7),
  r2(0xdb, 0xe2), r2(0xd9, 0xd0), () => [0x9b], () => [0x48, 0xdd, 0xd8], () => [0x66, 0xd8, 0xc2],
  m(0xd9, 5), m(0xd9, 7), m(0xdd, 7), () => [0xdf, 0xe0],
];

forms.push({
  name: 'x87 sequences + fnstenv (FOP/FIP/FDP)',
  gen: fc.record({
    seq: fc.array(fc.tuple(fc.integer({ min: 0, max: PIECES.length - 1 }), fc.integer({ min: 0, max: 0xf0 })), { minLength: 1, maxLength: 4 }),
    regs: regsArb({ 3: BigInt(DATA_BASE) }), fl: flagsArb, data: dataArb, st: stateArb({ need: [0, 1], other: 0.5 }),
    vals: fc.array(fc.oneof(f32Bits.map((v) => le(BigInt(v), 4)), intArb(32).map((v) => le(v, 4))), { minLength: 64, maxLength: 64 }),
  }).map(({ seq, regs, fl, data, st, vals }) => {
    vals.forEach((v, i) => data.set(v, i * 4));
    const code: number[] = [];
    for (const [k, off] of seq) code.push(...PIECES[k](off));
    code.push(0xd9, ...memOperand(6, 3, 0x400), ...maskSel(false)(3, 0x400));
    return mkCase(code, regs, fl, { data, fx: fxImage(st) });
  }),
});

void i8;
