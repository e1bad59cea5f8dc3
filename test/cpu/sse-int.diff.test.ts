// SSE2 integer SIMD against the host CPU: every 66 0F arithmetic, multiply, average, min/max,
// psadbw, compare, logic and shift op with register and (aligned) memory sources, and the
// immediate shift groups 66 0F 71/72/73 with counts at and beyond the lane width.
import fc from 'fast-check';
import { describe } from 'vitest';
import { diffForms, type Form } from '../harness/diff.js';
import { mxcsrQuiet, sseForms, v128int } from './sse-gen.js';

const OPS: [string, number][] = [
  ['paddq', 0xd4], ['psubq', 0xfb], ['paddb', 0xfc], ['paddw', 0xfd], ['paddd', 0xfe], ['psubb', 0xf8], ['psubw', 0xf9], ['psubd', 0xfa],
  ['paddsb', 0xec], ['paddsw', 0xed], ['psubsb', 0xe8], ['psubsw', 0xe9], ['paddusb', 0xdc], ['paddusw', 0xdd], ['psubusb', 0xd8], ['psubusw', 0xd9],
  ['pmullw', 0xd5], ['pmulhw', 0xe5], ['pmulhuw', 0xe4], ['pmuludq', 0xf4], ['pmaddwd', 0xf5],
  ['pavgb', 0xe0], ['pavgw', 0xe3], ['pminub', 0xda], ['pmaxub', 0xde], ['pminsw', 0xea], ['pmaxsw', 0xee], ['psadbw', 0xf6],
  ['pcmpeqb', 0x74], ['pcmpeqw', 0x75], ['pcmpeqd', 0x76], ['pcmpgtb', 0x64], ['pcmpgtw', 0x65], ['pcmpgtd', 0x66],
  ['pand', 0xdb], ['pandn', 0xdf], ['por', 0xeb], ['pxor', 0xef],
];
const SHIFTS: [string, number][] = [
  ['psrlw', 0xd1], ['psrld', 0xd2], ['psrlq', 0xd3], ['psraw', 0xe1], ['psrad', 0xe2], ['psllw', 0xf1], ['pslld', 0xf2], ['psllq', 0xf3],
];
/** Shift counts: mostly small (around every lane width), sometimes huge (high dword set). */
const count = fc.oneof(
  fc.integer({ min: 0, max: 70 }).map((n) => BigInt(n)),
  fc.constantFrom(0x7fffffffn, 0x80000000n, 0xffffffffn, 0x100000000n, 0x100000001n, 0x8000000000000000n),
);
const v128count: fc.Arbitrary<Uint8Array> = fc.tuple(count, v128int).map(([c, v]) => {
  const out = v.slice();
  new DataView(out.buffer).setBigUint64(0, c, true);
  return out;
});
const vShift = fc.oneof(v128int, v128count);

const forms: Form[] = [];
for (const [name, op] of OPS) forms.push(...sseForms({ name: `${name} xmm, xmm/m128`, pfx: [0x66], op: [op], vals: v128int, mem: 16, mx: mxcsrQuiet }));
for (const [name, op] of SHIFTS) forms.push(...sseForms({ name: `${name} xmm, xmm/m128`, pfx: [0x66], op: [op], vals: vShift, mem: 16, mx: mxcsrQuiet }));
const imm = fc.oneof(fc.integer({ min: 0, max: 70 }), fc.integer({ min: 0, max: 255 }));
const GROUPS: [string, number, number][] = [
  ['psrlw', 0x71, 2], ['psraw', 0x71, 4], ['psllw', 0x71, 6],
  ['psrld', 0x72, 2], ['psrad', 0x72, 4], ['pslld', 0x72, 6],
  ['psrlq', 0x73, 2], ['psrldq', 0x73, 3], ['psllq', 0x73, 6], ['pslldq', 0x73, 7],
];
for (const [name, op, sub] of GROUPS) forms.push(...sseForms({ name: `${name} xmm, imm8`, pfx: [0x66], op: [op], grp: sub, vals: v128int, imm, mx: mxcsrQuiet }));

describe('SSE2 integer SIMD against the host CPU', () => diffForms(forms));
