// mov family, lea, movzx/movsx/movsxd, movbe, xchg, xadd, cmpxchg, cmpxchg8b/16b, cbw..cqo,
// bswap, cmovcc, setcc, xlat, moffs, against the host CPU.
import fc from 'fast-check';
import { describe } from 'vitest';
import { DATA_BASE } from '../harness/case.js';
import { diffForms, type Form } from '../harness/diff.js';
import { dataArb, flagsArb, memOpArb, memOperand, mkCase, modrmReg, regsArb, rex, u64 } from '../harness/gen.js';

const reg = fc.integer({ min: 0, max: 15 }).filter((r) => r !== 4);
const pfx = (size: number) => (size === 2 ? [0x66] : []);
const bits = (s: number) => s * 8;

function rr(name: string, size: number, opc: number[], o: { rexForce?: boolean; undef?: number; w?: boolean } = {}): Form {
  return {
    name, undef: o.undef,
    gen: fc.record({ g: reg, e: reg, regs: regsArb(), fl: flagsArb }).map(({ g, e, regs, fl }) =>
      mkCase([...pfx(size), ...rex(o.w ?? size === 8, g, 0, e, o.rexForce), ...opc, modrmReg(g, e)], regs, fl)),
  };
}
function rm(name: string, size: number, opc: number[], o: { rexForce?: boolean; undef?: number; w?: boolean; lock?: boolean } = {}): Form {
  return {
    name, undef: o.undef,
    gen: fc.record({ g: reg, m: memOpArb(), regs: regsArb(), fl: flagsArb, data: dataArb, lk: fc.boolean() })
      .filter(({ g, m }) => g !== m.base)
      .map(({ g, m, regs, fl, data, lk }) => {
        regs[m.base] = m.addr;
        return mkCase([...(o.lock && lk ? [0xf0] : []), ...pfx(size), ...rex(o.w ?? size === 8, g, 0, m.base, o.rexForce), ...opc, ...memOperand(g, m.base, m.disp)], regs, fl, { data });
      }),
  };
}

const forms: Form[] = [];
for (const s of [1, 2, 4, 8]) {
  const b = s === 1;
  forms.push(rm(`mov r${bits(s)}, m${bits(s)}`, s, [b ? 0x8a : 0x8b]));
  forms.push(rr(`mov r${bits(s)}, r${bits(s)} (8A/8B)`, s, [b ? 0x8a : 0x8b], { rexForce: false }));
  forms.push(rr(`xchg r${bits(s)}, r${bits(s)}`, s, [b ? 0x86 : 0x87]));
  forms.push(rm(`xchg m${bits(s)}, r${bits(s)}`, s, [b ? 0x86 : 0x87]));
  forms.push(rr(`xadd r${bits(s)}, r${bits(s)}`, s, [0x0f, b ? 0xc0 : 0xc1]));
  forms.push(rm(`xadd m${bits(s)}, r${bits(s)}`, s, [0x0f, b ? 0xc0 : 0xc1], { lock: true }));
  forms.push(rr(`cmpxchg r${bits(s)}, r${bits(s)}`, s, [0x0f, b ? 0xb0 : 0xb1]));
  forms.push(rm(`cmpxchg m${bits(s)}, r${bits(s)}`, s, [0x0f, b ? 0xb0 : 0xb1], { lock: true }));
  forms.push({
    name: `mov r${bits(s)}, imm`,
    gen: fc.record({ e: reg, regs: regsArb(), imm: u64 }).map(({ e, regs, imm }) => {
      const n = s === 8 ? 8 : s;
      const bytes = Array.from({ length: n }, (_, i) => Number((imm >> BigInt(8 * i)) & 0xffn));
      return mkCase([...pfx(s), ...rex(s === 8, 0, 0, e, b), (b ? 0xb0 : 0xb8) + (e & 7), ...bytes], regs, 0n);
    }),
  });
  forms.push({
    name: `mov m${bits(s)}, imm (C6/C7)`,
    gen: fc.record({ m: memOpArb(), regs: regsArb(), imm: u64, data: dataArb }).map(({ m, regs, imm, data }) => {
      regs[m.base] = m.addr;
      const n = Math.min(s, 4);
      const bytes = Array.from({ length: n }, (_, i) => Number((imm >> BigInt(8 * i)) & 0xffn));
      return mkCase([...pfx(s), ...rex(s === 8, 0, 0, m.base), b ? 0xc6 : 0xc7, ...memOperand(0, m.base, m.disp), ...bytes], regs, 0n, { data });
    }),
  });
}
for (const s of [2, 4, 8]) {
  forms.push(rr(`movzx r${bits(s)}, r8`, s, [0x0f, 0xb6], { rexForce: true }));
  forms.push(rr(`movzx r${bits(s)}, r8 (no rex: ah..bh)`, s === 8 ? 4 : s, [0x0f, 0xb6]));
  forms.push(rr(`movsx r${bits(s)}, r8`, s, [0x0f, 0xbe], { rexForce: true }));
  forms.push(rm(`movzx r${bits(s)}, m16`, s, [0x0f, 0xb7]));
  forms.push(rm(`movsx r${bits(s)}, m16`, s, [0x0f, 0xbf]));
  forms.push(rr(`movsx r${bits(s)}, r16`, s, [0x0f, 0xbf]));
  forms.push(rm(`movbe r${bits(s)}, m${bits(s)}`, s, [0x0f, 0x38, 0xf0]));
  forms.push(rm(`movbe m${bits(s)}, r${bits(s)}`, s, [0x0f, 0x38, 0xf1]));
  forms.push(rr(`lea r${bits(s)}, [r+r*s+d]`, s, [0x8d]));
  for (const cc of [0, 2, 4, 6, 8, 0xa, 0xc, 0xe, 0xf]) forms.push(rr(`cmov${cc.toString(16)} r${bits(s)}, r${bits(s)}`, s, [0x0f, 0x40 + cc]));
  forms.push(rm(`cmovz r${bits(s)}, m${bits(s)}`, s, [0x0f, 0x44]));
}
forms.push(rr('movsxd r64, r32', 8, [0x63]));
forms.push(rm('movsxd r64, m32', 8, [0x63]));
forms.push(rr('mov r8, r8 (no rex: ah..bh)', 1, [0x88]));
// lea with SIB index/scale and address-size override, which rr()'s ModRM can't express.
forms.push({
  name: 'lea with SIB, scale, disp, 67',
  gen: fc.record({ g: reg, b: fc.integer({ min: 0, max: 15 }), x: fc.integer({ min: 0, max: 15 }).filter((x) => x !== 4),
    sc: fc.integer({ min: 0, max: 3 }), disp: fc.integer({ min: -0x80000000, max: 0x7fffffff }), a32: fc.boolean(), s: fc.constantFrom(2, 4, 8),
    regs: regsArb() })
    .map(({ g, b, x, sc, disp, a32, s, regs }) => {
      const d = [disp & 0xff, (disp >> 8) & 0xff, (disp >> 16) & 0xff, (disp >>> 24) & 0xff];
      return mkCase([...(a32 ? [0x67] : []), ...pfx(s), ...rex(s === 8, g, x, b), 0x8d, 0x84 | ((g & 7) << 3), (sc << 6) | ((x & 7) << 3) | (b & 7), ...d], regs, 0n);
    }),
});
forms.push({
  name: 'lea rip-relative',
  gen: fc.record({ g: reg, disp: fc.integer({ min: -0x80000000, max: 0x7fffffff }), regs: regsArb() }).map(({ g, disp, regs }) =>
    mkCase([...rex(true, g, 0, 0), 0x8d, 0x05 | ((g & 7) << 3), disp & 0xff, (disp >> 8) & 0xff, (disp >> 16) & 0xff, (disp >>> 24) & 0xff], regs, 0n)),
});
for (const cc of Array.from({ length: 16 }, (_, i) => i)) {
  forms.push(rr(`set${cc.toString(16)} r8`, 1, [0x0f, 0x90 + cc], { rexForce: true }));
}
forms.push(rm('setnz m8', 1, [0x0f, 0x95]));
for (const s of [4, 8]) {
  forms.push({
    name: `bswap r${bits(s)}`,
    gen: fc.record({ e: reg, regs: regsArb() }).map(({ e, regs }) => mkCase([...rex(s === 8, 0, 0, e), 0x0f, 0xc8 + (e & 7)], regs, 0n)),
  });
}
for (const [name, op, s] of [['cbw', 0x98, 2], ['cwde', 0x98, 4], ['cdqe', 0x98, 8], ['cwd', 0x99, 2], ['cdq', 0x99, 4], ['cqo', 0x99, 8]] as const) {
  forms.push({ name, gen: regsArb().map((regs) => mkCase([...pfx(s), ...rex(s === 8, 0, 0, 0), op], regs, 0n)) });
}
for (const w of [false, true]) {
  forms.push({
    name: w ? 'cmpxchg16b m128' : 'cmpxchg8b m64',
    gen: fc.record({ m: memOpArb([0, 1, 2, 3]), regs: regsArb(), data: dataArb, eq: fc.boolean(), lk: fc.boolean(), fl: flagsArb })
      .map(({ m, regs, data, eq, lk, fl }) => {
        regs[m.base] = m.addr;
        const ea = Number(m.addr) + m.disp - DATA_BASE;
        if (eq && ea >= 0 && ea + 16 <= data.length) {
          const dv = new DataView(data.buffer);
          const n = w ? 8 : 4;
          const lo = w ? regs[0] : regs[0] & 0xffffffffn, hi = w ? regs[2] : regs[2] & 0xffffffffn;
          if (w) { dv.setBigUint64(ea, lo, true); dv.setBigUint64(ea + 8, hi, true); }
          else { dv.setUint32(ea, Number(lo), true); dv.setUint32(ea + n, Number(hi), true); }
        }
        return mkCase([...(lk ? [0xf0] : []), ...rex(w, 1, 0, m.base), 0x0f, 0xc7, ...memOperand(1, m.base, m.disp)], regs, fl, { data });
      }),
  });
}
forms.push({
  name: 'xlat',
  gen: fc.record({ regs: regsArb(), data: dataArb, off: fc.integer({ min: 0, max: 0x1e00 }) }).map(({ regs, data, off }) => {
    regs[3] = BigInt(DATA_BASE + off);
    return mkCase([0xd7], regs, 0n, { data });
  }),
});
for (const s of [1, 2, 4, 8]) {
  forms.push({
    name: `mov acc${bits(s)}, moffs64 / moffs, acc`,
    gen: fc.record({ regs: regsArb(), data: dataArb, off: fc.integer({ min: 0, max: 0x1ff8 }), store: fc.boolean() }).map(({ regs, data, off, store }) => {
      const a = BigInt(DATA_BASE + off);
      const bytes = Array.from({ length: 8 }, (_, i) => Number((a >> BigInt(8 * i)) & 0xffn));
      return mkCase([...pfx(s), ...rex(s === 8, 0, 0, 0), (store ? 0xa2 : 0xa0) + (s === 1 ? 0 : 1), ...bytes], regs, 0n, { data });
    }),
  });
}

describe('data movement against the host CPU', () => diffForms(forms));
