// mul imul div idiv (F6/F7 /4../7), the F6/F7 test/not/neg forms, imul Gv,Ev (0F AF) and
// imul Gv,Ev,Iz/Ib (69, 6B): every size, register and memory operands.
//
// Flags: the SDM leaves SF ZF AF PF undefined after mul/imul and all six after div/idiv.
// This AMD host is deterministic there (mul/imul keep SF ZF AF PF; div/idiv keep CF OF and
// give SF=ZF=PF=0, AF=1), the interpreter does the same, so nothing is masked.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DATA_BASE } from '../harness/case.js';
import { diffForms, type Form } from '../harness/diff.js';
import { dataArb, flagsArb, memOpArb, mkCase, memOperand, regsArb, rex, u64 } from '../harness/gen.js';
import { __test } from '../../src/cpu/ops/muldiv.js';

const M64 = (1n << 64n) - 1n;
const SIZES = [1, 2, 4, 8] as const;
const RAX = 0, RDX = 2;

function prefix(size: number): number[] { return size === 2 ? [0x66] : []; }
const reg = fc.integer({ min: 0, max: 15 }).filter((r) => r !== 4);
const mask = (size: number) => (1n << BigInt(size * 8)) - 1n;
const sext = (v: bigint, size: number) => BigInt.asIntN(size * 8, v & mask(size));

function putData(data: Uint8Array, off: number, v: bigint, size: number): void {
  for (let i = 0; i < size && off + i < data.length; i++) data[off + i] = Number((v >> BigInt(8 * i)) & 0xffn);
}

/** Divisor-centred values: zero and ±1 often, else the usual edges. */
const divisorArb: fc.Arbitrary<bigint> = fc.oneof(
  { weight: 1, arbitrary: fc.constantFrom(0n, 1n, M64, 2n, M64 - 1n) },
  { weight: 4, arbitrary: u64 },
);

/**
 * The rDX:rAX dividend against a divisor: a high part that is zero/sign-extension (the
 * common case), just below or at the overflow boundary, or random.
 */
function dividendHigh(kind: number, divisor: bigint, lowVal: bigint, size: number, rnd: bigint): bigint {
  const m = mask(size);
  const dv = divisor & m;
  switch (kind) {
    case 0: return 0n;
    case 1: return sext(lowVal, size) < 0n ? M64 : 0n; // sign extension of rAX
    case 2: return dv === 0n ? 0n : (dv - 1n) & m;      // largest unsigned high part that fits
    case 3: return dv & m;                              // overflows (unsigned)
    case 4: return (dv >> 1n) & m;                      // around the signed boundary
    case 5: return rnd;
    default: return sext(lowVal, size) < 0n ? M64 : 0n; // (weighted: the usual case)
  }
}

interface DivInputs { regs: bigint[]; fl: bigint; kind: number; div: bigint; rnd: bigint }
const divInputs: fc.Arbitrary<DivInputs> = fc.record({
  regs: regsArb(), fl: flagsArb, kind: fc.integer({ min: 0, max: 8 }), div: divisorArb, rnd: u64,
});

/** Place the dividend: for size 1 it is AX, else rDX:rAX. */
function setDividend(regs: bigint[], size: number, kind: number, divisor: bigint, rnd: bigint): void {
  const hi = dividendHigh(kind, divisor, regs[RAX], size, rnd);
  if (size === 1) regs[RAX] = (regs[RAX] & ~0xff00n) | ((hi & 0xffn) << 8n);
  else regs[RDX] = (regs[RDX] & ~mask(size)) | (hi & mask(size));
}

const GRP3 = ['test', 'test/1', 'not', 'neg', 'mul', 'imul', 'div', 'idiv'];

/** F6/F7 /sub with a register operand; 8-bit forms sometimes without REX (AH..BH). */
function grp3Reg(sub: number, size: number): Form {
  const isDiv = sub >= 6;
  return {
    name: `${GRP3[sub]} r${size * 8}`,
    gen: fc.record({ e0: fc.integer({ min: 0, max: 15 }), d: divInputs, noRex: fc.boolean(), imm: u64 }).map(({ e0, d, noRex, imm }) => {
      const regs = d.regs;
      const useRex = size === 1 ? !(noRex && e0 < 8) : true;
      // rm 4 is rsp, except as AH in an 8-bit form without REX.
      const e = e0 === 4 && useRex ? 3 : e0;
      if (isDiv) {
        regs[e] = (regs[e] & ~mask(size)) | (d.div & mask(size));
        setDividend(regs, size, d.kind, e === RAX || e === RDX ? regs[e] : d.div, d.rnd);
      }
      const pre = size === 1 && !useRex ? [] : rex(size === 8, 0, 0, e, size === 1);
      const immBytes = sub < 2 ? bytesOf(imm, Math.min(size, 4)) : [];
      return mkCase([...prefix(size), ...pre, size === 1 ? 0xf6 : 0xf7, 0xc0 | (sub << 3) | (e & 7), ...immBytes], regs, d.fl);
    }),
  };
}

function bytesOf(v: bigint, n: number): number[] {
  return Array.from({ length: n }, (_, i) => Number((v >> BigInt(8 * i)) & 0xffn));
}

/** F6/F7 /sub with a memory operand (not/neg sometimes locked). */
function grp3Mem(sub: number, size: number): Form {
  const isDiv = sub >= 6;
  return {
    name: `${GRP3[sub]} m${size * 8}`,
    gen: fc.record({ m: memOpArb([RAX, RDX]), d: divInputs, data: dataArb, lock: fc.boolean(), imm: u64 })
      .map(({ m, d, data, lock, imm }) => {
        const regs = d.regs;
        regs[m.base] = m.addr;
        const off = Number(m.addr + BigInt(m.disp)) - DATA_BASE;
        if (isDiv || sub >= 4) putData(data, off, d.div, size);
        if (isDiv) setDividend(regs, size, d.kind, d.div, d.rnd);
        // lock is valid only for not/neg; on the others it is #UD (rarely, to keep coverage).
        const lk = lock && (sub === 2 || sub === 3 || d.kind === 0) ? [0xf0] : [];
        const immBytes = sub < 2 ? bytesOf(imm, Math.min(size, 4)) : [];
        return mkCase([...lk, ...prefix(size), ...rex(size === 8, 0, 0, m.base), size === 1 ? 0xf6 : 0xf7,
          ...memOperand(sub, m.base, m.disp), ...immBytes], regs, d.fl, { data });
      }),
  };
}

/** imul Gv, Ev (0F AF) and imul Gv, Ev, imm (69 Iz, 6B Ib). */
function imulForm(size: number, kind: 'AF' | '69' | '6B', mem: boolean): Form {
  const opc = kind === 'AF' ? [0x0f, 0xaf] : kind === '69' ? [0x69] : [0x6b];
  const immLen = kind === 'AF' ? 0 : kind === '6B' ? 1 : Math.min(size, 4);
  const name = kind === 'AF' ? `imul r${size * 8}, ${mem ? 'm' : 'r'}${size * 8}`
    : `imul r${size * 8}, ${mem ? 'm' : 'r'}${size * 8}, imm${immLen * 8}`;
  return {
    name,
    gen: fc.record({ g: reg, e: reg, m: memOpArb(), regs: regsArb(), fl: flagsArb, data: dataArb, imm: u64, v: u64 })
      .map(({ g, e, m, regs, fl, data, imm, v }) => {
        const immBytes = bytesOf(imm, immLen);
        if (!mem) return mkCase([...prefix(size), ...rex(size === 8, g, 0, e), ...opc, 0xc0 | ((g & 7) << 3) | (e & 7), ...immBytes], regs, fl);
        regs[m.base] = m.addr;
        putData(data, Number(m.addr + BigInt(m.disp)) - DATA_BASE, v, size);
        return mkCase([...prefix(size), ...rex(size === 8, g, 0, m.base), ...opc, ...memOperand(g, m.base, m.disp), ...immBytes], regs, fl, { data });
      }),
  };
}

const forms: Form[] = [];
for (const size of SIZES) {
  for (let sub = 0; sub < 8; sub++) {
    forms.push(grp3Reg(sub, size));
    if (sub !== 1) forms.push(grp3Mem(sub, size));
  }
  if (size !== 1) {
    for (const mem of [false, true]) {
      forms.push(imulForm(size, 'AF', mem));
      forms.push(imulForm(size, '69', mem));
      forms.push(imulForm(size, '6B', mem));
    }
  }
}

describe('mul/div group against the host CPU', () => diffForms(forms));

describe('wide arithmetic helpers against BigInt', () => {
  const w32 = fc.oneof(fc.constantFrom(0, 1, 0xffffffff, 0x80000000, 0x7fffffff, 0x10000, 0xffff), fc.integer({ min: 0, max: 0xffffffff }));
  const join = (ws: number[]) => ws.reduceRight((a, w) => (a << 32n) | BigInt(w), 0n);
  it('mulu64', () => {
    fc.assert(fc.property(w32, w32, w32, w32, (al, ah, bl, bh) => {
      const p = join(__test.mulu64(al, ah, bl, bh));
      expect(p).toBe(join([al, ah]) * join([bl, bh]));
    }), { numRuns: 5000 });
  });
  it('udiv', () => {
    fc.assert(fc.property(w32, w32, w32, w32, w32, w32, (a3, a2, a1, a0, d1, d0) => {
      const dv = join([d0, d1]);
      fc.pre(dv !== 0n);
      const hi = join([a2, a3]) % dv; // the precondition: high half below the divisor
      const n = (hi << 64n) | join([a0, a1]);
      const lo = Number(hi & 0xffffffffn), h = Number(hi >> 32n);
      const [q0, q1, r0, r1] = __test.udiv(h, lo, a1, a0, d1, d0);
      expect(join([q0, q1])).toBe(n / dv);
      expect(join([r0, r1])).toBe(n % dv);
    }), { numRuns: 5000 });
  });
});
