// The decoder against the host CPU: prefix runs (repeated, reordered, REX in the wrong
// place), segment overrides, the 15-byte limit, LOCK on instructions that don't allow it,
// opcodes invalid in 64-bit mode.
import fc from 'fast-check';
import { describe } from 'vitest';
import { diffForms, type Form } from '../harness/diff.js';
import { dataArb, flagsArb, memOpArb, memOperand, mkCase, regsArb } from '../harness/gen.js';

const LEGACY = [0x66, 0x67, 0x2e, 0x3e, 0x26, 0x36, 0xf2, 0xf3];
const REXES = Array.from({ length: 16 }, (_, i) => 0x40 + i);

const forms: Form[] = [
  {
    name: 'prefix runs before add r/m, r (incl. >15 bytes: #GP)',
    gen: fc.record({
      pre: fc.array(fc.constantFrom(...LEGACY, ...REXES), { minLength: 0, maxLength: 14 }),
      m: memOpArb(), regs: regsArb(), fl: flagsArb, data: dataArb, g: fc.integer({ min: 0, max: 7 }), op: fc.constantFrom(0x01, 0x03, 0x00, 0x02),
    }).map(({ pre, m, regs, fl, data, g, op }) => {
      // Keep the base register usable whatever REX.B and 67 do: every low-8 and high-8 pair of
      // the base points into data (67 truncates to 32 bits, which the data address fits).
      regs[m.base & 7] = m.addr; regs[(m.base & 7) + 8] = m.addr;
      if ((m.base & 7) === 4) { regs[4] = 0x300800n; }
      return mkCase([...pre, op, ...memOperand(g, m.base & 7, m.disp)], regs, fl, { data });
    }),
  },
  {
    name: 'lock on non-lockable and register forms (#UD)',
    gen: fc.record({
      op: fc.constantFrom([0x01, 0xc0], [0x89, 0x00], [0x8b, 0x00], [0x39, 0x00], [0x85, 0x00], [0x0f, 0xb6, 0x00], [0x90], [0xf7, 0x18], [0xff, 0x00], [0xff, 0x10]),
      regs: regsArb({ 0: 0x200010n }), fl: flagsArb,
    }).map(({ op, regs, fl }) => mkCase([0xf0, 0x48, ...op], regs, fl, { exits: [op.length + 2, 0x40] })),
  },
  {
    name: 'opcodes invalid in 64-bit mode (#UD)',
    gen: fc.record({ op: fc.constantFrom(0x06, 0x07, 0x0e, 0x16, 0x17, 0x1e, 0x1f, 0x27, 0x2f, 0x37, 0x3f, 0x60, 0x61, 0x82, 0x9a, 0xc4, 0xc5, 0xce, 0xd4, 0xd5, 0xd6, 0xea), regs: regsArb() })
      .map(({ op, regs }) => mkCase([op, 0xc0, 0, 0, 0, 0, 0], regs, 0n, { exits: [0x20] })),
  },
  {
    name: 'segment overrides fs/gs with zero bases, cs/ds/es/ss ignored',
    gen: fc.record({ seg: fc.constantFrom(0x26, 0x2e, 0x36, 0x3e, 0x64, 0x65), m: memOpArb(), regs: regsArb(), data: dataArb, g: fc.integer({ min: 0, max: 15 }) })
      .filter(({ g, m }) => g !== 4 && g !== m.base)
      .map(({ seg, m, regs, data, g }) => { regs[m.base] = m.addr; return mkCase([seg, 0x48 | (g >= 8 ? 4 : 0) | (m.base >= 8 ? 1 : 0), 0x8b, ...memOperand(g, m.base, m.disp)], regs, 0n, { data }); }),
  },
  {
    name: 'multi-byte nops and hint space (0F 1F, 0F 18..1F, 66 90, F3 90)',
    gen: fc.record({ op: fc.constantFrom([0x0f, 0x1f, 0x00], [0x0f, 0x1f, 0x40, 0x00], [0x0f, 0x1f, 0x44, 0x00, 0x00], [0x66, 0x0f, 0x1f, 0x84, 0, 0, 0, 0, 0], [0x66, 0x90], [0xf3, 0x90], [0x0f, 0x18, 0x08], [0x0f, 0x0d, 0x08], [0x0f, 0x19, 0xc0]), regs: regsArb(), fl: flagsArb })
      .map(({ op, regs, fl }) => mkCase(op, regs, fl)),
  },
];

describe('decoder against the host CPU', () => diffForms(forms));

// Self-modifying code: a store into the instruction stream ahead of RIP, in the same decoded
// block, must be seen by the next fetch (the host's code page is writable too).
describe('self-modifying code against the host CPU', () => diffForms([
  {
    name: 'store over the next instruction (same block)',
    gen: fc.record({ imm: fc.integer({ min: 0, max: 255 }), regs: regsArb() }).map(({ imm, regs }) =>
      // mov byte [rip+1], imm  ; 7 bytes; the next instruction is "mov al, 0" at +7: its imm byte is at +8
      mkCase([0xc6, 0x05, 0x01, 0x00, 0x00, 0x00, imm, 0xb0, 0x00, 0x90], regs, 0n)),
  },
  {
    name: 'rep stos over code that then runs',
    gen: fc.record({ regs: regsArb() }).map(({ regs }) => {
      // lea rdi,[rip+9]; mov ecx,4; mov al,0x90; rep stosb; then 4 bytes of ud2/ud2 overwritten with nops
      regs[0] = 0n;
      return mkCase([0x48, 0x8d, 0x3d, 0x09, 0x00, 0x00, 0x00, 0xb9, 0x04, 0x00, 0x00, 0x00, 0xb0, 0x90, 0xf3, 0xaa, 0x0f, 0x0b, 0x0f, 0x0b, 0x90], regs, 0n);
    }),
  },
]));
