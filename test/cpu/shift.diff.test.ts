// rol ror rcl rcr shl shr sal(/6) sar by 1, CL and imm8 (D0..D3, C0, C1), and shld/shrd
// by imm8 and CL (0F A4/A5/AC/AD): every size, register and memory operands, counts at and
// beyond the width (masking, rcl/rcr modulo 9/17, 16-bit shld/shrd past 16).
//
// Flags: the SDM leaves OF undefined for counts above 1, AF undefined for shifts, and the
// result and flags of 16-bit shld/shrd with counts above 16. This AMD host is deterministic
// in all of them (src/cpu/ops/shift.ts lists what it does) and the interpreter matches it,
// so nothing is masked.
import fc from 'fast-check';
import { describe } from 'vitest';
import { DATA_BASE } from '../harness/case.js';
import { diffForms, type Form } from '../harness/diff.js';
import { dataArb, flagsArb, memOpArb, mkCase, memOperand, regsArb, rex, shiftCount, u64 } from '../harness/gen.js';

const SIZES = [1, 2, 4, 8] as const;
const NAMES = ['rol', 'ror', 'rcl', 'rcr', 'shl', 'shr', 'sal', 'sar'];
const RCX = 1;
type CountKind = '1' | 'cl' | 'imm8';

function prefix(size: number): number[] { return size === 2 ? [0x66] : []; }
const reg = fc.integer({ min: 0, max: 15 }).filter((r) => r !== 4);

/** A count that is often at the interesting points for this width. */
const countArb = fc.oneof(shiftCount, fc.constantFrom(1n, 1n, 2n, 31n, 32n, 63n, 64n, 0x20n, 0x3fn, 0xe0n, 0xffn));

function putData(data: Uint8Array, off: number, v: bigint, size: number): void {
  for (let i = 0; i < size && off + i < data.length; i++) data[off + i] = Number((v >> BigInt(8 * i)) & 0xffn);
}

/** CL holds the count; the rest of rcx is random (only CL counts). */
function withCount(regs: bigint[], count: bigint, hi: bigint): void {
  regs[RCX] = (hi & ~0xffn) | (count & 0xffn);
}

function shiftForm(sub: number, size: number, kind: CountKind, mem: boolean): Form {
  const base = size === 1 ? 0 : 1;
  const opc = kind === '1' ? 0xd0 + base : kind === 'cl' ? 0xd2 + base : 0xc0 + base;
  const src = kind === '1' ? '1' : kind === 'cl' ? 'cl' : 'imm8';
  return {
    name: `${NAMES[sub]} ${mem ? 'm' : 'r'}${size * 8}, ${src}`,
    gen: fc.record({ e0: fc.integer({ min: 0, max: 15 }), m: memOpArb([RCX]), regs: regsArb(), fl: flagsArb, n: countArb, rh: u64, v: u64, data: dataArb })
      .map(({ e0, m, regs, fl, n, rh, v, data }) => {
        withCount(regs, n, rh);
        const imm = kind === 'imm8' ? [Number(n & 0xffn)] : [];
        if (!mem) {
          // Register form: for 8 bits sometimes without REX (AH..BH for rm 4..7).
          const useRex = size !== 1 || e0 >= 8 || (Number(rh & 1n) === 0);
          const e = e0 === 4 && useRex ? 3 : e0; // rm 4 is rsp unless it means AH
          const pre = useRex ? rex(size === 8, 0, 0, e, size === 1) : [];
          return mkCase([...prefix(size), ...pre, opc, 0xc0 | (sub << 3) | (e & 7), ...imm], regs, fl);
        }
        regs[m.base] = m.addr;
        putData(data, Number(m.addr + BigInt(m.disp)) - DATA_BASE, v, size);
        const lk = (rh & 0xfn) === 0n ? [0xf0] : []; // lock: #UD, now and then
        return mkCase([...lk, ...prefix(size), ...rex(size === 8, 0, 0, m.base), opc, ...memOperand(sub, m.base, m.disp), ...imm], regs, fl, { data });
      }),
  };
}

/** shld/shrd E, G, imm8|cl. */
function doubleForm(left: boolean, size: number, kind: 'cl' | 'imm8', mem: boolean): Form {
  const opc = (left ? 0xa4 : 0xac) + (kind === 'cl' ? 1 : 0);
  return {
    name: `${left ? 'shld' : 'shrd'} ${mem ? 'm' : 'r'}${size * 8}, r${size * 8}, ${kind}`,
    gen: fc.record({ e: reg, g: reg, m: memOpArb([RCX]), regs: regsArb(), fl: flagsArb, n: countArb, rh: u64, v: u64, data: dataArb })
      .map(({ e, g, m, regs, fl, n, rh, v, data }) => {
        withCount(regs, n, rh);
        const imm = kind === 'imm8' ? [Number(n & 0xffn)] : [];
        if (!mem) return mkCase([...prefix(size), ...rex(size === 8, g, 0, e), 0x0f, opc, 0xc0 | ((g & 7) << 3) | (e & 7), ...imm], regs, fl);
        regs[m.base] = m.addr;
        putData(data, Number(m.addr + BigInt(m.disp)) - DATA_BASE, v, size);
        const lk = (rh & 0xfn) === 0n ? [0xf0] : []; // lock: #UD, now and then
        return mkCase([...lk, ...prefix(size), ...rex(size === 8, g, 0, m.base), 0x0f, opc, ...memOperand(g, m.base, m.disp), ...imm], regs, fl, { data });
      }),
  };
}

const forms: Form[] = [];
for (const size of SIZES) {
  for (let sub = 0; sub < 8; sub++) {
    for (const kind of ['1', 'cl', 'imm8'] as const) {
      forms.push(shiftForm(sub, size, kind, false));
      forms.push(shiftForm(sub, size, kind, true));
    }
  }
  if (size === 1) continue;
  for (const left of [true, false]) {
    for (const kind of ['cl', 'imm8'] as const) {
      forms.push(doubleForm(left, size, kind, false));
      forms.push(doubleForm(left, size, kind, true));
    }
  }
}

describe('shifts and rotates against the host CPU', () => diffForms(forms));
