// SSE/SSE2 floating-point arithmetic against the host CPU, bit for bit including MXCSR:
// add/sub/mul/div/min/max/sqrt in ps/pd/ss/sd forms, and/andn/or/xor, rcp/rsqrt (these
// reproduce the host's approximation tables), under random rounding modes, DAZ, FTZ and
// exception masks (unmasked exceptions raise #XM with the flags recorded and no result).
import { describe } from 'vitest';
import { diffForms, type Form } from '../harness/diff.js';
import { edgePair, mxcsrQuiet, sseForms, v128any, v128f32, v128f64 } from './sse-gen.js';

const forms: Form[] = [];
const ARITH: [string, number][] = [['add', 0x58], ['mul', 0x59], ['sub', 0x5c], ['min', 0x5d], ['div', 0x5e], ['max', 0x5f], ['sqrt', 0x51]];
for (const [name, op] of ARITH) {
  forms.push(
    ...sseForms({ name: `${name}ps xmm, xmm/m128`, op: [op], vals: v128f32, mem: 16 }),
    ...sseForms({ name: `${name}pd xmm, xmm/m128`, pfx: [0x66], op: [op], vals: v128f64, mem: 16 }),
    ...sseForms({ name: `${name}ss xmm, xmm/m32`, pfx: [0xf3], op: [op], vals: v128f32, mem: 4 }),
    ...sseForms({ name: `${name}sd xmm, xmm/m64`, pfx: [0xf2], op: [op], vals: v128f64, mem: 8 }),
  );
}
// Operands whose results land at the underflow and overflow thresholds, in every rounding mode.
for (const [name, op] of [['add', 0x58], ['mul', 0x59], ['div', 0x5e]] as const) {
  forms.push(
    ...sseForms({ name: `${name}ss near the range limits`, pfx: [0xf3], op: [op], pair: edgePair(name, false), mem: 4 }),
    ...sseForms({ name: `${name}sd near the range limits`, pfx: [0xf2], op: [op], pair: edgePair(name, true), mem: 8 }),
  );
}
for (const [name, op] of [['rsqrt', 0x52], ['rcp', 0x53]] as const) {
  forms.push(
    ...sseForms({ name: `${name}ps xmm, xmm/m128`, op: [op], vals: v128f32, mem: 16 }),
    ...sseForms({ name: `${name}ss xmm, xmm/m32`, pfx: [0xf3], op: [op], vals: v128f32, mem: 4 }),
  );
}
for (const [name, op] of [['and', 0x54], ['andn', 0x55], ['or', 0x56], ['xor', 0x57]] as const) {
  forms.push(
    ...sseForms({ name: `${name}ps xmm, xmm/m128`, op: [op], vals: v128any, mem: 16, mx: mxcsrQuiet }),
    ...sseForms({ name: `${name}pd xmm, xmm/m128`, pfx: [0x66], op: [op], vals: v128any, mem: 16, mx: mxcsrQuiet }),
  );
}

describe('SSE floating-point arithmetic against the host CPU', () => diffForms(forms));
