// fxsave/fxrstor and xsave/xrstor/xsaveopt forms (run by x87-fxsave.diff.test.ts).
//
// The bytes the host fills differently by design are zeroed by the test code after a save:
// FOP/FIP/FCS/FDP/FDS (AMD stores them only with an exception pending; we always do) and
// MXCSR_MASK (the host has the AMD misalignment bit 17). xsave needs CR4.OSXSAVE and XCR0
// = x87|SSE in the interpreter: the test runs these forms with its own runner.
import fc from 'fast-check';
import type { Form } from '../harness/diff.js';
import { DATA_BASE } from '../harness/case.js';
import { dataArb, flagsArb, memOperand, mkCase, regsArb, rex } from '../harness/gen.js';
import { ext80, fxImage, le, stateArb } from './x87-gen.js';

/** mov qword [base+disp], 0 / mov dword / mov word. */
const zeroAt = (base: number, disp: number, size: 2 | 4 | 8): number[] =>
  [...(size === 2 ? [0x66] : []), ...rex(size === 8, 0, 0, base), 0xc7, ...memOperand(0, base, disp), 0, 0, ...(size === 2 ? [] : [0, 0])];
const maskSave = (base: number, disp: number): number[] => [
  ...zeroAt(base, disp + 6, 2), ...zeroAt(base, disp + 8, 8), ...zeroAt(base, disp + 16, 8), ...zeroAt(base, disp + 28, 4),
];

/** A random FXSAVE image: an x87 state, MXCSR (sometimes with reserved bits: #GP), XMM. */
const imageArb = fc.tuple(stateArb({ other: 0.6 }), fc.uint8Array({ minLength: 256, maxLength: 256 }),
  fc.oneof({ weight: 12, arbitrary: fc.integer({ min: 0, max: 0xffff }) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 0xffffffff }).map((v) => (v & ~0x20000) >>> 0) }),
  fc.uint8Array({ minLength: 18, maxLength: 18 }))
  .map(([st, xmm, mx, ptrs]) => {
    const img = fxImage(st);
    img.set(xmm, 160);
    img.set(le(BigInt(mx), 4), 24);
    img.set(ptrs.subarray(0, 2), 6); img.set(ptrs.subarray(2, 18), 8);
    return img;
  });

const base = fc.constantFrom(0, 1, 2, 3, 6, 7, 8, 9, 11, 12, 14, 15);

/** A save/restore at [base+disp], aligned to `align` most of the time. */
function fxForm(opts: { reg: number; w: boolean; align: number; restore: boolean; xsave?: boolean }): fc.Arbitrary<import('../harness/case.js').CpuCase> {
  return fc.record({
    b: opts.xsave ? base.filter((r) => r !== 0 && r !== 2) : base, disp: fc.integer({ min: -128, max: 127 }),
    slot: fc.oneof({ weight: 20, arbitrary: fc.integer({ min: 0, max: (0x2000 - 576) / opts.align }).map((k) => k * opts.align) },
      { weight: 1, arbitrary: fc.integer({ min: 0, max: 0x2000 - 1 }) }),
    regs: regsArb(), fl: flagsArb, data: dataArb, st: stateArb({ other: 0.6 }), img: imageArb,
    rfbm: fc.constantFrom(0, 1, 2, 3, 3, 3),
    // XSTATE_BV: x87/SSE bits, sometimes an MPX bit (not in XCR0 on either side: #GP). AVX
    // and AVX-512 bits are left out: the host's XCR0 has them, the model's does not.
    bv: fc.oneof({ weight: 12, arbitrary: fc.constantFrom(3, 1, 2, 0) }, { weight: 1, arbitrary: fc.constantFrom(8, 16, 11, 19) }),
    xmm: fc.oneof(fc.constant(null), fc.uint8Array({ minLength: 256, maxLength: 256 })),
    // Sometimes start from the initial x87 state, and run a few x87 instructions first. Not
    // ones that write a register and free it again (fldz; ffreep): the host then keeps
    // XINUSE[0] set until fnclex/fninit, where the model decides by value (see x87-fxsave.ts).
    init: fc.boolean(),
    pre: fc.array(fc.constantFrom([0xdb, 0xe3], [0xdb, 0xe2], [0xd9, 0xf7], [0xd9, 0xf6], [0x9b], [0xdd, 0xc0], [0xd9, 0xd0]), { maxLength: 3 }),
    hdr: fc.oneof({ weight: 12, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 55 }) }),
  }).map(({ b, disp, slot, regs, fl, data, st, img, rfbm, bv, hdr, xmm, init, pre }) => {
    regs[b] = BigInt(DATA_BASE + slot - disp);
    if (opts.xsave) { regs[0] = BigInt(rfbm); regs[2] = 0n; }
    if (opts.restore) {
      const n = Math.min(512, 0x2000 - slot);
      data.set(img.subarray(0, n), slot);
      if (opts.xsave && slot + 576 <= 0x2000) {
        data.fill(0, slot + 512, slot + 576);
        data[slot + 512] = bv;
        if (hdr) data[slot + 512 + 8 + hdr] = 1; // a nonzero reserved header byte: #GP
      }
    }
    const code = [...(opts.xsave ? pre.flat() : []), ...rex(opts.w, 0, 0, b), 0x0f, 0xae, ...memOperand(opts.reg, b, disp)];
    if (!opts.restore) code.push(...maskSave(b, disp));
    // XSTATE_BV for a component holding its initial values: the host usually reports 0
    // (as the model does) but now and then 1, apparently after the kernel restored the
    // task's state with XRSTORS on a context switch. Not compared in that case.
    const clear = (opts.xsave && !opts.restore ? (xmm ? 0 : 2) | (init ? 1 : 0) : 0);
    if (clear) code.push(...rex(false, 0, 0, b), 0x80, ...memOperand(4, b, disp + 512), ~clear & 0xff);
    const fx = opts.xsave && init ? fxImage({ st: [null, null, null, null, null, null, null, null], cw: 0x37f, sw: 0, top: 0 }) : fxImage(st);
    if (xmm) fx.set(xmm, 160);
    return mkCase(code, regs, fl, { data, fx });
  });
}

export const forms: Form[] = [
  { name: 'fxsave m512', gen: fxForm({ reg: 0, w: false, align: 16, restore: false }) },
  { name: 'fxsave64 m512', gen: fxForm({ reg: 0, w: true, align: 16, restore: false }) },
  { name: 'fxrstor m512', gen: fxForm({ reg: 1, w: false, align: 16, restore: true }) },
  { name: 'fxrstor64 m512', gen: fxForm({ reg: 1, w: true, align: 16, restore: true }) },
];

export const xforms: Form[] = [
  { name: 'xsave mem', gen: fxForm({ reg: 4, w: false, align: 64, restore: false, xsave: true }) },
  { name: 'xsave64 mem', gen: fxForm({ reg: 4, w: true, align: 64, restore: false, xsave: true }) },
  { name: 'xsaveopt64 mem', gen: fxForm({ reg: 6, w: true, align: 64, restore: false, xsave: true }) },
  { name: 'xrstor mem', gen: fxForm({ reg: 5, w: false, align: 64, restore: true, xsave: true }) },
  { name: 'xrstor64 mem', gen: fxForm({ reg: 5, w: true, align: 64, restore: true, xsave: true }) },
];

void ext80;
