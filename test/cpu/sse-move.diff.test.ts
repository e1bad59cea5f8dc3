// SSE/SSE2 data movement against the host CPU: every move form with register and memory
// operands (aligned forms fault on misalignment with #GP(0), page-crossing operands #PF),
// movd/movq with general registers, mask extraction, non-temporal stores, maskmovdqu,
// ldmxcsr/stmxcsr.
import fc from 'fast-check';
import { describe } from 'vitest';
import { DATA_BASE, DATA_SIZE } from '../harness/case.js';
import { diffForms, type Form } from '../harness/diff.js';
import { flagsArb, memOperand, mkCase, modrmReg, regsArb } from '../harness/gen.js';
import { fxImage, memOffArb, mxcsrQuiet, sseForms, v128any } from './sse-gen.js';

const P66 = [0x66], PF3 = [0xf3], PF2 = [0xf2];
const mx = mxcsrQuiet;
const forms: Form[] = [
  ...sseForms({ name: 'movups xmm, xmm/m128', op: [0x10], mem: 16, mx }),
  ...sseForms({ name: 'movupd xmm, xmm/m128', pfx: P66, op: [0x10], mem: 16, mx }),
  ...sseForms({ name: 'movss xmm, xmm/m32', pfx: PF3, op: [0x10], mem: 4, mx }),
  ...sseForms({ name: 'movsd xmm, xmm/m64', pfx: PF2, op: [0x10], mem: 8, mx }),
  ...sseForms({ name: 'movups xmm/m128, xmm', op: [0x11], mem: 16, mx }),
  ...sseForms({ name: 'movupd xmm/m128, xmm', pfx: P66, op: [0x11], mem: 16, mx }),
  ...sseForms({ name: 'movss xmm/m32, xmm', pfx: PF3, op: [0x11], mem: 4, mx }),
  ...sseForms({ name: 'movsd xmm/m64, xmm', pfx: PF2, op: [0x11], mem: 8, mx }),
  ...sseForms({ name: 'movhlps xmm, xmm / movlps xmm, m64', op: [0x12], mem: 8, mx }),
  ...sseForms({ name: 'movlpd xmm, m64', pfx: P66, op: [0x12], mem: 8, reg: false, mx }),
  ...sseForms({ name: 'movlps m64, xmm', op: [0x13], mem: 8, reg: false, mx }),
  ...sseForms({ name: 'movlpd m64, xmm', pfx: P66, op: [0x13], mem: 8, reg: false, mx }),
  ...sseForms({ name: 'movlhps xmm, xmm / movhps xmm, m64', op: [0x16], mem: 8, mx }),
  ...sseForms({ name: 'movhpd xmm, m64', pfx: P66, op: [0x16], mem: 8, reg: false, mx }),
  ...sseForms({ name: 'movhps m64, xmm', op: [0x17], mem: 8, reg: false, mx }),
  ...sseForms({ name: 'movhpd m64, xmm', pfx: P66, op: [0x17], mem: 8, reg: false, mx }),
  ...sseForms({ name: 'movaps xmm, xmm/m128', op: [0x28], mem: 16, mx }),
  ...sseForms({ name: 'movapd xmm, xmm/m128', pfx: P66, op: [0x28], mem: 16, mx }),
  ...sseForms({ name: 'movaps xmm/m128, xmm', op: [0x29], mem: 16, mx }),
  ...sseForms({ name: 'movapd xmm/m128, xmm', pfx: P66, op: [0x29], mem: 16, mx }),
  ...sseForms({ name: 'movntps m128, xmm', op: [0x2b], mem: 16, reg: false, mx }),
  ...sseForms({ name: 'movntpd m128, xmm', pfx: P66, op: [0x2b], mem: 16, reg: false, mx }),
  ...sseForms({ name: 'movmskps r32, xmm', op: [0x50], gprReg: true, mx }),
  ...sseForms({ name: 'movmskpd r32, xmm', pfx: P66, op: [0x50], gprReg: true, mx }),
  ...sseForms({ name: 'movmskps r64, xmm', op: [0x50], gprReg: true, w: true, mx }),
  ...sseForms({ name: 'movd xmm, r/m32', pfx: P66, op: [0x6e], gprRm: true, mem: 4, mx }),
  ...sseForms({ name: 'movq xmm, r/m64', pfx: P66, op: [0x6e], gprRm: true, w: true, mem: 8, mx }),
  ...sseForms({ name: 'movdqa xmm, xmm/m128', pfx: P66, op: [0x6f], mem: 16, mx }),
  ...sseForms({ name: 'movdqu xmm, xmm/m128', pfx: PF3, op: [0x6f], mem: 16, mx }),
  ...sseForms({ name: 'movd r/m32, xmm', pfx: P66, op: [0x7e], gprRm: true, mem: 4, mx }),
  ...sseForms({ name: 'movq r/m64, xmm', pfx: P66, op: [0x7e], gprRm: true, w: true, mem: 8, mx }),
  ...sseForms({ name: 'movq xmm, xmm/m64 (F3 0F 7E)', pfx: PF3, op: [0x7e], mem: 8, mx }),
  ...sseForms({ name: 'movdqa xmm/m128, xmm', pfx: P66, op: [0x7f], mem: 16, mx }),
  ...sseForms({ name: 'movdqu xmm/m128, xmm', pfx: PF3, op: [0x7f], mem: 16, mx }),
  ...sseForms({ name: 'movnti m32, r32', op: [0xc3], gprReg: true, mem: 4, reg: false, mx }),
  ...sseForms({ name: 'movnti m64, r64', op: [0xc3], gprReg: true, w: true, mem: 8, reg: false, mx }),
  ...sseForms({ name: 'movq xmm/m64, xmm (66 0F D6)', pfx: P66, op: [0xd6], mem: 8, mx }),
  ...sseForms({ name: 'pmovmskb r32, xmm', pfx: P66, op: [0xd7], gprReg: true, mx }),
  ...sseForms({ name: 'movntdq m128, xmm', pfx: P66, op: [0xe7], mem: 16, reg: false, mx }),
  // The last of F2/F3 selects; 66 before them is ignored.
  ...sseForms({ name: 'movss with a redundant 66', pfx: [0x66, 0xf3], op: [0x10], mem: 4, mx }),
  ...sseForms({ name: 'movsd after F3 F2', pfx: [0xf3, 0xf2], op: [0x11], mem: 8, mx }),
  // Encodings whose register or memory form does not exist: #UD on both sides.
  ...sseForms({ name: 'movlpd with a register operand (#UD)', pfx: P66, op: [0x12], mx }),
  ...sseForms({ name: 'movlps m64 store with a register operand (#UD)', op: [0x13], mx }),
  ...sseForms({ name: 'movntps with a register operand (#UD)', op: [0x2b], mx }),
  ...sseForms({ name: 'movnti with a register operand (#UD)', op: [0xc3], gprReg: true, gprRm: true, mx }),
  ...sseForms({ name: 'movmskpd with a memory operand (#UD)', pfx: P66, op: [0x50], gprReg: true, mem: 16, reg: false, mx }),
  ...sseForms({ name: 'pmovmskb with a memory operand (#UD)', pfx: P66, op: [0xd7], gprReg: true, mem: 16, reg: false, mx }),
  ...sseForms({ name: 'psrlw imm8 with a memory operand (#UD)', pfx: P66, op: [0x71], grp: 2, mem: 16, reg: false, mx }),
  ...sseForms({ name: '66 0F 73 /1 (#UD)', pfx: P66, op: [0x73], grp: 1, mx }),
  // LOCK is #UD on every SSE instruction, register or memory operand.
  ...sseForms({ name: 'lock movaps', op: [0x29], mem: 16, mx, lock: true }),
  ...sseForms({ name: 'lock addps', op: [0x58], mem: 16, mx, lock: true }),
  ...sseForms({ name: 'lock paddd', pfx: P66, op: [0xfe], mem: 16, mx, lock: true }),
];

// maskmovdqu xmm, xmm: stores to [rdi] (ds, or a segment override; a 67 prefix makes it edi).
const xreg = fc.integer({ min: 0, max: 15 });
for (const zeroMask of [false, true]) forms.push({
  name: `maskmovdqu xmm, xmm${zeroMask ? ' (mask all clear)' : ''}`,
  gen: fc.record({ g: xreg, e: xreg, x: fc.array(v128any, { minLength: 16, maxLength: 16 }), off: memOffArb(16), regs: regsArb(), fl: flagsArb, mx, fill: fc.integer({ min: 0, max: 255 }) })
    .map(({ g, e, x, off, regs, fl, mx: m, fill }) => {
      regs[7] = BigInt(DATA_BASE + off);
      if (zeroMask) x[e] = x[e].map((b) => b & 0x7f);
      const rexv = 0x40 | ((g & 8) ? 4 : 0) | ((e & 8) ? 1 : 0);
      const code = [0x66, ...(rexv !== 0x40 ? [rexv] : []), 0x0f, 0xf7, modrmReg(g, e)];
      return mkCase(code, regs, fl, { fx: fxImage(x, m), data: new Uint8Array(DATA_SIZE).fill(fill) });
    }),
});

// ldmxcsr / stmxcsr m32 (0F AE /2, /3). Reserved bits give #GP(0); values with only bit 17
// reserved are left out (this AMD host accepts it as its misaligned-SSE mode bit).
const mxVal = fc.oneof(
  { weight: 6, arbitrary: fc.integer({ min: 0, max: 0xffff }) },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 0xffffffff }).filter((v) => (v & 0xfffd0000) !== 0) },
  { weight: 1, arbitrary: fc.constantFrom(0x10000, 0x80000000, 0x40000, 0xffff0000) },
);
for (const [name, sub] of [['ldmxcsr m32', 2], ['stmxcsr m32', 3]] as const) {
  forms.push({
    name,
    gen: fc.record({ b: fc.integer({ min: 0, max: 15 }).filter((r) => r !== 4), off: memOffArb(4), disp: fc.integer({ min: -128, max: 127 }), v: mxVal, regs: regsArb(), fl: flagsArb, mx })
      .map(({ b, off, disp, v, regs, fl, mx: m }) => {
        regs[b] = BigInt(DATA_BASE + off - disp);
        const data = new Uint8Array(DATA_SIZE);
        const dv = new DataView(data.buffer);
        if (off + 4 <= DATA_SIZE) dv.setUint32(off, v, true);
        const code = [...(b & 8 ? [0x41] : []), 0x0f, 0xae, ...memOperand(sub, b, disp)];
        return mkCase(code, regs, fl, { fx: fxImage([], m), data });
      }),
  });
}

describe('SSE moves against the host CPU', () => diffForms(forms));
