// add or adc sbb and sub xor cmp test inc dec neg not, every size, register and memory forms.
import fc from 'fast-check';
import { describe } from 'vitest';
import { diffForms, type Form } from '../harness/diff.js';
import { dataArb, flagsArb, memOpArb, mkCase, modrmReg, memOperand, regsArb, rex, u64 } from '../harness/gen.js';

const SIZES = [1, 2, 4, 8] as const;
const ALU = ['add', 'or', 'adc', 'sbb', 'and', 'sub', 'xor', 'cmp'];
const LOGIC_UNDEF = 0x10; // AF is undefined after and/or/xor/test

function prefix(size: number): number[] { return size === 2 ? [0x66] : []; }
const reg = fc.integer({ min: 0, max: 15 }).filter((r) => r !== 4);

function regReg(name: string, size: number, op: (s: number) => number[], undef = 0): Form {
  return {
    name: `${name} r${size * 8}, r${size * 8}`, undef,
    gen: fc.record({ g: reg, e: reg, regs: regsArb(), fl: flagsArb }).map(({ g, e, regs, fl }) =>
      mkCase([...prefix(size), ...rex(size === 8, g, 0, e, size === 1), ...op(size), modrmReg(g, e)], regs, fl)),
  };
}
function memReg(name: string, size: number, op: (s: number) => number[], undef = 0): Form {
  return {
    name: `${name} m${size * 8}, r${size * 8}`, undef,
    gen: fc.record({ g: reg, m: memOpArb(), regs: regsArb(), fl: flagsArb, data: dataArb, lock: fc.boolean() })
      .filter(({ g, m }) => g !== m.base)
      .map(({ g, m, regs, fl, data, lock }) => {
        regs[m.base] = m.addr;
        const lk = lock && name !== 'cmp' && name !== 'test' ? [0xf0] : [];
        return mkCase([...lk, ...prefix(size), ...rex(size === 8, g, 0, m.base, size === 1), ...op(size), ...memOperand(g, m.base, m.disp)], regs, fl, { data });
      }),
  };
}
function regImm(name: string, size: number, sub: number, imm8: boolean, undef = 0): Form {
  return {
    name: `${name} r${size * 8}, imm${imm8 ? 8 : Math.min(size, 4) * 8}`, undef,
    gen: fc.record({ e: reg, regs: regsArb(), fl: flagsArb, imm: u64 }).map(({ e, regs, fl, imm }) => {
      const n = imm8 ? 1 : Math.min(size, 4);
      const bytes = Array.from({ length: n }, (_, i) => Number((imm >> BigInt(8 * i)) & 0xffn));
      const opc = size === 1 ? 0x80 : imm8 ? 0x83 : 0x81;
      return mkCase([...prefix(size), ...rex(size === 8, 0, 0, e, size === 1), opc, 0xc0 | (sub << 3) | (e & 7), ...bytes], regs, fl);
    }),
  };
}

const forms: Form[] = [];
ALU.forEach((name, i) => {
  const undef = i === 1 || i === 4 || i === 6 ? LOGIC_UNDEF : 0;
  for (const size of SIZES) {
    forms.push(regReg(name, size, (s) => [i * 8 + (s === 1 ? 0 : 1)], undef));
    forms.push(memReg(name, size, (s) => [i * 8 + (s === 1 ? 0 : 1)], undef));
    forms.push(regImm(name, size, i, size !== 1 ? false : true, undef));
    if (size !== 1) forms.push(regImm(name, size, i, true, undef));
  }
});
for (const size of SIZES) {
  forms.push(regReg('test', size, (s) => [s === 1 ? 0x84 : 0x85], LOGIC_UNDEF));
  forms.push(regReg('mov', size, (s) => [s === 1 ? 0x88 : 0x89]));
  forms.push(memReg('mov', size, (s) => [s === 1 ? 0x88 : 0x89]));
  for (const [name, sub] of [['inc', 0], ['dec', 1], ['not', 2], ['neg', 3]] as const) {
    const opc = sub < 2 ? (size === 1 ? 0xfe : 0xff) : (size === 1 ? 0xf6 : 0xf7);
    const s2 = sub < 2 ? sub : sub; // /0 inc /1 dec on FE/FF; /2 not /3 neg on F6/F7
    forms.push({
      name: `${name} r${size * 8}`,
      gen: fc.record({ e: reg, regs: regsArb(), fl: flagsArb }).map(({ e, regs, fl }) =>
        mkCase([...prefix(size), ...rex(size === 8, 0, 0, e, size === 1), opc, 0xc0 | (s2 << 3) | (e & 7)], regs, fl)),
    });
  }
}

describe('integer ALU against the host CPU', () => diffForms(forms));
