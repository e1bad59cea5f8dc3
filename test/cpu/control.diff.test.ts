// jcc, jmp, call, ret, loop*, jrcxz, push, pop, pushf, popf, enter, leave, lahf, sahf,
// clc/stc/cmc/cld/std, against the host CPU.
import fc from 'fast-check';
import { describe } from 'vitest';
import { CODE_BASE, STACK_BASE } from '../harness/case.js';
import { diffForms, type Form } from '../harness/diff.js';
import { dataArb, flagsArb, memOpArb, memOperand, mkCase, modrmReg, regsArb, rex, STACK_TOP, u64 } from '../harness/gen.js';

const reg = fc.integer({ min: 0, max: 15 }).filter((r) => r !== 4);
const le = (v: bigint | number, n: number) => Array.from({ length: n }, (_, i) => Number((BigInt(v) >> BigInt(8 * i)) & 0xffn));
const target = fc.integer({ min: 8, max: 100 });

/** Stack bytes holding random words, with the given 64-bit values at rsp. */
function stackWith(vals: bigint[], fill: Uint8Array): Uint8Array {
  const s = fill.slice(0, 0x1000);
  const dv = new DataView(s.buffer);
  vals.forEach((v, i) => dv.setBigUint64(0x800 + i * 8, v, true));
  return s;
}

const forms: Form[] = [];
for (let cc = 0; cc < 16; cc++) {
  forms.push({
    name: `j${cc.toString(16)} rel8`,
    gen: fc.record({ regs: regsArb(), fl: flagsArb, t: target }).map(({ regs, fl, t }) => mkCase([0x70 + cc, t - 2], regs, fl, { exits: [2, t] })),
  });
  forms.push({
    name: `j${cc.toString(16)} rel32`,
    gen: fc.record({ regs: regsArb(), fl: flagsArb, t: target }).map(({ regs, fl, t }) => mkCase([0x0f, 0x80 + cc, ...le(t - 6, 4)], regs, fl, { exits: [6, t] })),
  });
}
forms.push({ name: 'jmp rel8', gen: fc.record({ regs: regsArb(), t: target }).map(({ regs, t }) => mkCase([0xeb, t - 2], regs, 0n, { exits: [t] })) });
forms.push({
  name: 'jmp rel32 (also to non-canonical: #GP)',
  gen: fc.record({ regs: regsArb(), t: target }).map(({ regs, t }) => mkCase([0xe9, ...le(t - 5, 4)], regs, 0n, { exits: [t] })),
});
forms.push({ name: 'call rel32', gen: fc.record({ regs: regsArb(), t: target }).map(({ regs, t }) => mkCase([0xe8, ...le(t - 5, 4)], regs, 0n, { exits: [t] })) });
forms.push({
  name: 'jmp r64 / call r64',
  gen: fc.record({ regs: regsArb(), t: target, e: reg, call: fc.boolean(), bad: fc.boolean() }).map(({ regs, t, e, call, bad }) => {
    regs[e] = bad ? 0x0000800000000000n : BigInt(CODE_BASE + t);
    return mkCase([...rex(false, 0, 0, e), 0xff, modrmReg(call ? 2 : 4, e)], regs, 0n, { exits: [t] });
  }),
});
forms.push({
  name: 'jmp m64 / call m64',
  gen: fc.record({ regs: regsArb(), t: target, m: memOpArb(), call: fc.boolean(), data: dataArb }).map(({ regs, t, m, call, data }) => {
    regs[m.base] = m.addr;
    const ea = Number(m.addr) + m.disp - 0x200000;
    if (ea + 8 <= data.length) new DataView(data.buffer).setBigUint64(ea, BigInt(CODE_BASE + t), true);
    return mkCase([...rex(false, 0, 0, m.base), 0xff, ...memOperand(call ? 2 : 4, m.base, m.disp)], regs, 0n, { exits: [t], data });
  }),
});
for (const imm of [false, true]) {
  forms.push({
    name: imm ? 'ret imm16' : 'ret',
    gen: fc.record({ regs: regsArb(), t: target, n: fc.integer({ min: 0, max: 0x700 }), st: dataArb }).map(({ regs, t, n, st }) =>
      mkCase(imm ? [0xc2, ...le(n, 2)] : [0xc3], regs, 0n, { exits: [t], stack: stackWith([BigInt(CODE_BASE + t)], st) })),
  });
}
for (const [name, op] of [['loopne', 0xe0], ['loope', 0xe1], ['loop', 0xe2], ['jrcxz', 0xe3]] as const) {
  for (const a32 of [false, true]) {
    forms.push({
      name: `${name}${a32 ? ' (67: ecx)' : ''}`,
      gen: fc.record({ regs: regsArb({ 1: fc.constantFrom(0n, 1n, 2n, 0x100000000n, 0x100000001n, 0xffffffffffffffffn) }), fl: flagsArb, t: target })
        .map(({ regs, fl, t }) => mkCase([...(a32 ? [0x67] : []), op, t - (a32 ? 3 : 2)], regs, fl, { exits: [a32 ? 3 : 2, t] })),
    });
  }
}
for (const s of [2, 8]) {
  const p = s === 2 ? [0x66] : [];
  forms.push({ name: `push r${s * 8}`, gen: fc.record({ regs: regsArb(), e: fc.integer({ min: 0, max: 15 }) }).map(({ regs, e }) => mkCase([...p, ...rex(false, 0, 0, e), 0x50 + (e & 7)], regs, 0n)) });
  forms.push({
    name: `pop r${s * 8}`,
    gen: fc.record({ regs: regsArb(), e: fc.integer({ min: 0, max: 15 }), st: dataArb }).map(({ regs, e, st }) => mkCase([...p, ...rex(false, 0, 0, e), 0x58 + (e & 7)], regs, 0n, { stack: st.slice(0, 0x1000) })),
  });
  forms.push({ name: `push imm32 (${s * 8})`, gen: fc.record({ regs: regsArb(), v: u64 }).map(({ regs, v }) => mkCase([...p, 0x68, ...le(v, s === 2 ? 2 : 4)], regs, 0n)) });
  forms.push({ name: `push imm8 (${s * 8})`, gen: fc.record({ regs: regsArb(), v: u64 }).map(({ regs, v }) => mkCase([...p, 0x6a, ...le(v, 1)], regs, 0n)) });
  forms.push({
    name: `push m${s * 8} / pop m${s * 8}`,
    gen: fc.record({ regs: regsArb(), m: memOpArb(), pop: fc.boolean(), st: dataArb, data: dataArb }).map(({ regs, m, pop, st, data }) => {
      regs[m.base] = m.addr;
      return mkCase([...p, ...rex(false, 0, 0, m.base), pop ? 0x8f : 0xff, ...memOperand(pop ? 0 : 6, m.base, m.disp)], regs, 0n, { stack: st.slice(0, 0x1000), data });
    }),
  });
  forms.push({ name: `pushf (${s * 8})`, gen: fc.record({ regs: regsArb(), fl: flagsArb }).map(({ regs, fl }) => mkCase([...p, 0x9c], regs, fl)) });
  forms.push({
    name: `popf (${s * 8})`,
    gen: fc.record({ regs: regsArb(), fl: flagsArb, v: u64, st: dataArb }).map(({ regs, fl, v, st }) =>
      mkCase([...p, 0x9d], regs, fl, { stack: stackWith([v & 0xcd5n], st) })),
  });
}
forms.push({ name: 'push rsp / pop rsp', gen: fc.record({ regs: regsArb(), pop: fc.boolean(), st: dataArb }).map(({ regs, pop, st }) => mkCase([pop ? 0x5c : 0x54], regs, 0n, { stack: stackWith([STACK_TOP - 64n], st) })) });
forms.push({
  name: 'enter imm16, imm8 / leave',
  gen: fc.record({ regs: regsArb({ 5: fc.integer({ min: 0x100, max: 0xf00 }).map((v) => BigInt(STACK_BASE + v)) }), n: fc.integer({ min: 0, max: 0x200 }), lvl: fc.integer({ min: 0, max: 5 }), leave: fc.boolean(), st: dataArb, s: fc.constantFrom(2, 8) })
    .map(({ regs, n, lvl, leave, st, s }) =>
      mkCase(leave ? [...(s === 2 ? [0x66] : []), 0xc9] : [...(s === 2 ? [0x66] : []), 0xc8, ...le(n, 2), lvl], regs, 0n, { stack: st.slice(0, 0x1000) })),
});
for (const [name, op] of [['lahf', 0x9f], ['sahf', 0x9e], ['clc', 0xf8], ['stc', 0xf9], ['cmc', 0xf5], ['cld', 0xfc], ['std', 0xfd]] as const) {
  forms.push({ name, gen: fc.record({ regs: regsArb(), fl: flagsArb }).map(({ regs, fl }) => mkCase([op], regs, fl)) });
}
forms.push({
  name: 'flags after add feeding jcc/setcc/cmov chains',
  gen: fc.record({ regs: regsArb(), fl: flagsArb, g: reg, e: reg, cc: fc.integer({ min: 0, max: 15 }), op: fc.integer({ min: 0, max: 7 }) })
    .map(({ regs, fl, g, e, cc, op }) => mkCase([...rex(true, g, 0, e), op * 8 + 1, modrmReg(g, e), 0x0f, 0x90 + cc, 0xc0, 0x9f], regs, fl)),
});

describe('control transfer and stack against the host CPU', () => diffForms(forms));
