// bt bts btr btc (register and imm8 bit offsets, register and memory operands, the memory
// bit string reaching beyond the operand in both directions, with and without 67 and
// lock), bsf bsr tzcnt lzcnt popcnt: every size.
//
// Flags: the SDM leaves OF SF AF PF undefined after bt*, all but ZF after bsf/bsr, and
// OF SF PF AF after tzcnt/lzcnt. This AMD host is deterministic in all of them
// (src/cpu/ops/bits.ts lists what it does) and the interpreter matches it: nothing masked.
import fc from 'fast-check';
import { describe } from 'vitest';
import { DATA_BASE, DATA_SIZE } from '../harness/case.js';
import { diffForms, type Form } from '../harness/diff.js';
import { dataArb, flagsArb, memOpArb, mkCase, memOperand, modrmReg, regsArb, rex, u64 } from '../harness/gen.js';

const M64 = (1n << 64n) - 1n;
const SIZES = [2, 4, 8] as const;
const BT = ['bt', 'bts', 'btr', 'btc'];
const BT_OP = [0xa3, 0xab, 0xb3, 0xbb];

function prefix(size: number): number[] { return size === 2 ? [0x66] : []; }
const reg = fc.integer({ min: 0, max: 15 }).filter((r) => r !== 4);

/** Sources for the bit scans: sparse and dense values as well as the usual edges. */
const scanArb: fc.Arbitrary<bigint> = fc.oneof(
  u64,
  fc.integer({ min: 0, max: 63 }).map((k) => 1n << BigInt(k)),
  fc.tuple(u64, fc.integer({ min: 0, max: 63 })).map(([v, k]) => v >> BigInt(k)),
  fc.tuple(u64, fc.integer({ min: 0, max: 63 })).map(([v, k]) => (v << BigInt(k)) & M64),
);

function putData(data: Uint8Array, off: number, v: bigint, size: number): void {
  for (let i = 0; i < size && off >= 0 && off + i < data.length; i++) data[off + i] = Number((v >> BigInt(8 * i)) & 0xffn);
}

/** bt* r, r (register bit offset taken modulo the width). */
function btRegReg(op: number, size: number): Form {
  return {
    name: `${BT[op]} r${size * 8}, r${size * 8}`,
    gen: fc.record({ g: reg, e: reg, regs: regsArb(), fl: flagsArb })
      .map(({ g, e, regs, fl }) => mkCase([...prefix(size), ...rex(size === 8, g, 0, e), 0x0f, BT_OP[op], modrmReg(g, e)], regs, fl)),
  };
}

/**
 * bt* m, r: the bit offset is signed and can address far from the operand. Most cases aim
 * at a byte inside the data region (the word may still cross its ends: #PF); some use a
 * random offset. With 67 the base register's upper half is garbage and the sum wraps at
 * 32 bits.
 */
function btMemReg(op: number, size: number): Form {
  return {
    name: `${BT[op]} m${size * 8}, r${size * 8}`,
    gen: fc.record({
      g: reg, m: memOpArb(), regs: regsArb(), fl: flagsArb, data: dataArb, lock: fc.boolean(), a32: fc.boolean(),
      target: fc.integer({ min: -16, max: DATA_SIZE + 16 }), bit: fc.integer({ min: 0, max: 7 }), far: fc.integer({ min: 0, max: 7 }), rnd: u64,
    }).filter(({ g, m }) => g !== m.base).map(({ g, m, regs, fl, data, lock, a32, target, bit, far, rnd }) => {
      const ea = m.addr + BigInt(m.disp);
      let off = (BigInt(DATA_BASE + target) - ea) * 8n + BigInt(bit);
      if (far === 0) off = rnd; // anything: usually far outside (#PF, or #GP when non-canonical)
      if (size === 2) off = BigInt.asIntN(16, off); // only the low 16 bits take part
      regs[g] = BigInt.asUintN(64, off) | (size === 2 ? regs[g] & ~0xffffn : size === 4 ? regs[g] & ~0xffffffffn : 0n);
      regs[m.base] = a32 ? (regs[m.base] & ~0xffffffffn) | m.addr : m.addr;
      // lock bt is #UD (bt does not write); lock bts/btr/btc are valid.
      const lk = lock ? [0xf0] : [];
      const as = a32 ? [0x67] : [];
      return mkCase([...lk, ...as, ...prefix(size), ...rex(size === 8, g, 0, m.base), 0x0f, BT_OP[op], ...memOperand(g, m.base, m.disp)], regs, fl, { data });
    }),
  };
}

/** bt* r/m, imm8 (0F BA /4../7): the immediate is taken modulo the width. */
function btImm(op: number, size: number, mem: boolean): Form {
  return {
    name: `${BT[op]} ${mem ? 'm' : 'r'}${size * 8}, imm8`,
    gen: fc.record({ e: reg, m: memOpArb(), regs: regsArb(), fl: flagsArb, data: dataArb, lock: fc.boolean(), imm: fc.integer({ min: 0, max: 255 }) })
      .map(({ e, m, regs, fl, data, lock, imm }) => {
        const sub = 4 + op;
        if (!mem) return mkCase([...prefix(size), ...rex(size === 8, 0, 0, e), 0x0f, 0xba, 0xc0 | (sub << 3) | (e & 7), imm], regs, fl);
        regs[m.base] = m.addr;
        const lk = lock ? [0xf0] : []; // #UD for bt
        return mkCase([...lk, ...prefix(size), ...rex(size === 8, 0, 0, m.base), 0x0f, 0xba, ...memOperand(sub, m.base, m.disp), imm], regs, fl, { data });
      }),
  };
}

/** bsf bsr tzcnt lzcnt popcnt r, r/m. */
function scanForm(name: string, opc: number[], size: number, mem: boolean): Form {
  const f3 = name === 'tzcnt' || name === 'lzcnt' || name === 'popcnt';
  const op = [0x0f, opc[0]];
  return {
    name: `${name} r${size * 8}, ${mem ? 'm' : 'r'}${size * 8}`,
    gen: fc.record({ g: reg, e: reg, m: memOpArb(), regs: regsArb(), fl: flagsArb, data: dataArb, v: scanArb })
      .map(({ g, e, m, regs, fl, data, v }) => {
        const pre = [...(f3 ? [0xf3] : []), ...prefix(size)];
        if (!mem) {
          regs[e] = v;
          return mkCase([...pre, ...rex(size === 8, g, 0, e), ...op, modrmReg(g, e)], regs, fl);
        }
        regs[m.base] = m.addr;
        putData(data, Number(m.addr + BigInt(m.disp)) - DATA_BASE, v, size);
        return mkCase([...pre, ...rex(size === 8, g, 0, m.base), ...op, ...memOperand(g, m.base, m.disp)], regs, fl, { data });
      }),
  };
}

const forms: Form[] = [];
for (const size of SIZES) {
  for (let op = 0; op < 4; op++) {
    forms.push(btRegReg(op, size));
    forms.push(btMemReg(op, size));
    forms.push(btImm(op, size, false));
    forms.push(btImm(op, size, true));
  }
  for (const [name, opc] of [['bsf', 0xbc], ['bsr', 0xbd], ['tzcnt', 0xbc], ['lzcnt', 0xbd], ['popcnt', 0xb8]] as const) {
    forms.push(scanForm(name, [opc], size, false));
    forms.push(scanForm(name, [opc], size, true));
  }
}

describe('bit instructions against the host CPU', () => diffForms(forms));
