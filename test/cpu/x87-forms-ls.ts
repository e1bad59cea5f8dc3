// x87 load/store forms (run by x87-load-store.diff.test.ts): fld/fst/fstp m32 m64 m80 and
// st(i), fild/fist/fistp/fisttp m16 m32 m64, fbld/fbstp, the constants, fxch, fcmovcc,
// ffree/ffreep, and the undocumented aliases the host executes.
import fc from 'fast-check';
import type { Form } from '../harness/diff.js';
import { ext80, f32Bits, f64Bits, intArb, le, memCase, regCase, type X80 } from './x87-gen.js';

const x80Bytes = (x: X80): Uint8Array => {
  const b = new Uint8Array(10);
  b.set(le(x.m, 8));
  b[8] = x.se & 0xff; b[9] = x.se >> 8;
  return b;
};

/** Packed BCD: 18 digits, mostly valid, and the sign byte. */
const bcdArb: fc.Arbitrary<Uint8Array> = fc.tuple(
  fc.array(fc.integer({ min: 0, max: 99 }), { minLength: 9, maxLength: 9 }),
  fc.integer({ min: 0, max: 9 }), fc.boolean(),
).map(([digits, len, neg]) => {
  const b = new Uint8Array(10);
  digits.forEach((v, i) => { if (i <= len) b[i] = ((v / 10) << 4) | (v % 10); });
  b[9] = neg ? 0x80 : 0;
  return b;
});

const push = { need: [], other: 0.5 };
const st0 = { need: [0] };
const i8 = fc.integer({ min: 0, max: 7 });

export const forms: Form[] = [
  { name: 'fld m32fp', gen: memCase({ op: [0xd9], reg: 0, size: 4, bytes: () => f32Bits.map((v) => le(BigInt(v), 4)), state: push }) },
  { name: 'fld m64fp', gen: memCase({ op: [0xdd], reg: 0, size: 8, bytes: () => f64Bits.map((v) => le(v, 8)), state: push }) },
  { name: 'fld m80fp', gen: memCase({ op: [0xdb], reg: 5, size: 10, bytes: () => ext80.map(x80Bytes), state: push }) },
  { name: 'fild m16int', gen: memCase({ op: [0xdf], reg: 0, size: 2, bytes: () => intArb(16).map((v) => le(v, 2)), state: push }) },
  { name: 'fild m32int', gen: memCase({ op: [0xdb], reg: 0, size: 4, bytes: () => intArb(32).map((v) => le(v, 4)), state: push }) },
  { name: 'fild m64int', gen: memCase({ op: [0xdf], reg: 5, size: 8, bytes: () => intArb(64).map((v) => le(v, 8)), state: push }) },
  { name: 'fbld m80bcd', gen: memCase({ op: [0xdf], reg: 4, size: 10, bytes: () => bcdArb, state: push }) },
  { name: 'fld sti', gen: regCase(i8.map((i) => [0xd9, 0xc0 | i]), push) },

  { name: 'fst m32fp', gen: memCase({ op: [0xd9], reg: 2, size: 4, state: st0 }) },
  { name: 'fstp m32fp', gen: memCase({ op: [0xd9], reg: 3, size: 4, state: st0 }) },
  { name: 'fst m64fp', gen: memCase({ op: [0xdd], reg: 2, size: 8, state: st0 }) },
  { name: 'fstp m64fp', gen: memCase({ op: [0xdd], reg: 3, size: 8, state: st0 }) },
  { name: 'fstp m80fp', gen: memCase({ op: [0xdb], reg: 7, size: 10, state: st0 }) },
  { name: 'fst sti', gen: regCase(i8.map((i) => [0xdd, 0xd0 | i]), st0) },
  { name: 'fstp sti', gen: regCase(i8.map((i) => [0xdd, 0xd8 | i]), st0) },
  { name: 'fstp1 sti (D9 D8+i)', gen: regCase(i8.map((i) => [0xd9, 0xd8 | i]), st0) },
  { name: 'fstp8 sti (DF D0+i)', gen: regCase(i8.map((i) => [0xdf, 0xd0 | i]), st0) },
  { name: 'fstp9 sti (DF D8+i)', gen: regCase(i8.map((i) => [0xdf, 0xd8 | i]), st0) },

  { name: 'fist m16int', gen: memCase({ op: [0xdf], reg: 2, size: 2, state: st0 }) },
  { name: 'fist m32int', gen: memCase({ op: [0xdb], reg: 2, size: 4, state: st0 }) },
  { name: 'fistp m16int', gen: memCase({ op: [0xdf], reg: 3, size: 2, state: st0 }) },
  { name: 'fistp m32int', gen: memCase({ op: [0xdb], reg: 3, size: 4, state: st0 }) },
  { name: 'fistp m64int', gen: memCase({ op: [0xdf], reg: 7, size: 8, state: st0 }) },
  { name: 'fisttp m16int', gen: memCase({ op: [0xdf], reg: 1, size: 2, state: st0 }) },
  { name: 'fisttp m32int', gen: memCase({ op: [0xdb], reg: 1, size: 4, state: st0 }) },
  { name: 'fisttp m64int', gen: memCase({ op: [0xdd], reg: 1, size: 8, state: st0 }) },
  { name: 'fbstp m80bcd', gen: memCase({ op: [0xdf], reg: 6, size: 10, state: st0 }) },

  ...['fld1', 'fldl2t', 'fldl2e', 'fldpi', 'fldlg2', 'fldln2', 'fldz'].map((name, k): Form => ({
    name, gen: regCase(fc.constant([0xd9, 0xe8 + k]), push),
  })),
  { name: 'fxch sti', gen: regCase(i8.map((i) => [0xd9, 0xc8 | i]), { need: [0, 1, 2, 3, 4, 5, 6, 7], other: 0.9 }) },
  { name: 'fxch4 sti (DD C8+i)', gen: regCase(i8.map((i) => [0xdd, 0xc8 | i]), { need: [0, 1, 2, 3, 4, 5, 6, 7], other: 0.9 }) },
  { name: 'fxch7 sti (DF C8+i)', gen: regCase(i8.map((i) => [0xdf, 0xc8 | i]), { need: [0, 1, 2, 3, 4, 5, 6, 7], other: 0.9 }) },
  ...['fcmovb', 'fcmove', 'fcmovbe', 'fcmovu', 'fcmovnb', 'fcmovne', 'fcmovnbe', 'fcmovnu'].map((name, k): Form => ({
    name: `${name} st0, sti`,
    gen: regCase(i8.map((i) => [k < 4 ? 0xda : 0xdb, 0xc0 | ((k & 3) << 3) | i]), { need: [0, 1, 2, 3, 4, 5, 6, 7], other: 0.9 }),
  })),
  { name: 'ffree sti', gen: regCase(i8.map((i) => [0xdd, 0xc0 | i]), { need: [0, 1, 2, 3, 4, 5, 6, 7], other: 0.9 }) },
  { name: 'ffreep sti (DF C0+i)', gen: regCase(i8.map((i) => [0xdf, 0xc0 | i]), { need: [0, 1, 2, 3, 4, 5, 6, 7], other: 0.9 }) },
];
