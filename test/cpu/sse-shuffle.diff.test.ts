// SSE/SSE2 shuffles, interleaves, packs and word insert/extract against the host CPU.
import fc from 'fast-check';
import { describe } from 'vitest';
import { diffForms, type Form } from '../harness/diff.js';
import { mxcsrQuiet, sseForms, v128any, v128int } from './sse-gen.js';

const mx = mxcsrQuiet;
const imm = fc.integer({ min: 0, max: 255 });
const forms: Form[] = [];
const P66: [string, number][] = [
  ['punpcklbw', 0x60], ['punpcklwd', 0x61], ['punpckldq', 0x62], ['packsswb', 0x63], ['packuswb', 0x67],
  ['punpckhbw', 0x68], ['punpckhwd', 0x69], ['punpckhdq', 0x6a], ['packssdw', 0x6b], ['punpcklqdq', 0x6c], ['punpckhqdq', 0x6d],
  ['unpcklpd', 0x14], ['unpckhpd', 0x15],
];
for (const [name, op] of P66) forms.push(...sseForms({ name: `${name} xmm, xmm/m128`, pfx: [0x66], op: [op], vals: v128int, mem: 16, mx }));
forms.push(
  ...sseForms({ name: 'unpcklps xmm, xmm/m128', op: [0x14], vals: v128any, mem: 16, mx }),
  ...sseForms({ name: 'unpckhps xmm, xmm/m128', op: [0x15], vals: v128any, mem: 16, mx }),
  ...sseForms({ name: 'pshufd xmm, xmm/m128, imm8', pfx: [0x66], op: [0x70], vals: v128int, mem: 16, imm, mx }),
  ...sseForms({ name: 'pshufhw xmm, xmm/m128, imm8', pfx: [0xf3], op: [0x70], vals: v128int, mem: 16, imm, mx }),
  ...sseForms({ name: 'pshuflw xmm, xmm/m128, imm8', pfx: [0xf2], op: [0x70], vals: v128int, mem: 16, imm, mx }),
  ...sseForms({ name: 'shufps xmm, xmm/m128, imm8', op: [0xc6], vals: v128any, mem: 16, imm, mx }),
  ...sseForms({ name: 'shufpd xmm, xmm/m128, imm8', pfx: [0x66], op: [0xc6], vals: v128any, mem: 16, imm, mx }),
  ...sseForms({ name: 'pinsrw xmm, r32/m16, imm8', pfx: [0x66], op: [0xc4], gprRm: true, vals: v128int, mem: 2, imm, mx }),
  ...sseForms({ name: 'pextrw r32, xmm, imm8', pfx: [0x66], op: [0xc5], gprReg: true, vals: v128int, imm, mx }),
  ...sseForms({ name: 'pextrw r64, xmm, imm8', pfx: [0x66], op: [0xc5], gprReg: true, w: true, vals: v128int, imm, mx }),
);

describe('SSE shuffles and packs against the host CPU', () => diffForms(forms));
