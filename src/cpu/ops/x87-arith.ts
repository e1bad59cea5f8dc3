// x87 arithmetic: fadd/fmul/fsub/fsubr/fdiv/fdivr in every form (m32fp, m64fp, m16int,
// m32int, st(0) op st(i), st(i) op st(0), the popping forms), fsqrt, fchs, fabs, frndint,
// fscale, fprem, fprem1, fxtract. Opcode registration is in x87-table.ts.

import type { Cpu } from '../cpu.js';
import { add, div, fx, indefinite, mul, rem, remOut, rndint, scale, sqrt, xtract, mk, type F80 } from '../float80.js';
import type { Handler, Insn } from '../insn.js';
import {
  begin, blocked, canPush, end, getSt, isEmpty, loadMem, Mt, note, pop, setCC, setSt, Sw, underflow,
} from './x87-core.js';

/** The arithmetic of ModRM.reg /0 /1 /4 /5 /6 /7 with x = st(0) and y = the other operand.
 *  The st(i)-destination rows (DC, DE) use the same formulas: DC E0+i (reg 4, "fsubr
 *  st(i),st(0)" in the SDM) is st(i) = st(0) - st(i). */
function compute(op: number, x: F80, y: F80): F80 | null {
  switch (op) {
    case 0: return add(x, y, false);
    case 1: return mul(x, y);
    case 4: return add(x, y, true);
    case 5: return add(y, x, true);
    case 6: return div(x, y);
    default: return div(y, x);
  }
}

function arithMem(cpu: Cpu, d: Insn, t: Mt): void {
  const f = begin(cpu, true);
  const lin = cpu.ea(d);
  const y = loadMem(cpu, lin, t);
  note(cpu, d, lin);
  if (isEmpty(f, 0)) {
    if (underflow()) setSt(f, 0, indefinite());
    end(f, false);
    return;
  }
  const r = compute(d.reg & 7, getSt(f, 0), y);
  if (r !== null && !blocked()) setSt(f, 0, r);
  end(f, fx.up);
}

export const arith_m32fp: Handler = (cpu, d) => arithMem(cpu, d, Mt.F32);
export const arith_m64fp: Handler = (cpu, d) => arithMem(cpu, d, Mt.F64);
export const arith_m32int: Handler = (cpu, d) => arithMem(cpu, d, Mt.I32);
export const arith_m16int: Handler = (cpu, d) => arithMem(cpu, d, Mt.I16);

function arithReg(cpu: Cpu, d: Insn, toSti: boolean, popAfter: boolean): void {
  const f = begin(cpu, true);
  note(cpu, d);
  const i = d.rm & 7;
  const dst = toSti ? i : 0;
  if (isEmpty(f, 0) || isEmpty(f, i)) {
    if (underflow()) { setSt(f, dst, indefinite()); if (popAfter) pop(f); }
    end(f, false);
    return;
  }
  const r = compute(d.reg & 7, getSt(f, 0), getSt(f, i));
  if (r === null || blocked()) { end(f, false); return; }
  setSt(f, dst, r);
  if (popAfter) pop(f);
  end(f, fx.up);
}

/** D8 C0..FF: st(0) = st(0) op st(i). */
export const arith_st0_sti: Handler = (cpu, d) => arithReg(cpu, d, false, false);
/** DC C0..FF (except the fcom aliases): st(i) = st(0) op st(i) in the formula order above. */
export const arith_sti_st0: Handler = (cpu, d) => arithReg(cpu, d, true, false);
/** DE C0..FF: the same, then pop. */
export const arithp_sti_st0: Handler = (cpu, d) => arithReg(cpu, d, true, true);

/** One-operand operations on st(0) (also used by f2xm1 in x87-trans.ts). */
export function unary(cpu: Cpu, d: Insn, fn: (x: F80) => F80 | null): void {
  const f = begin(cpu, true);
  note(cpu, d);
  if (isEmpty(f, 0)) {
    if (underflow()) setSt(f, 0, indefinite());
    end(f, false);
    return;
  }
  const r = fn(getSt(f, 0));
  if (r !== null && !blocked()) setSt(f, 0, r);
  end(f, fx.up);
}

const chs = (x: F80): F80 => mk(x.s ^ 1, x.e, x.m);
const abs = (x: F80): F80 => mk(0, x.e, x.m);
export const fchs: Handler = (cpu, d) => unary(cpu, d, chs);
export const fabs: Handler = (cpu, d) => unary(cpu, d, abs);
export const fsqrt: Handler = (cpu, d) => unary(cpu, d, sqrt);
export const frndint: Handler = (cpu, d) => unary(cpu, d, rndint);

/** Two-operand operations on st(0) and st(1) with the result in st(0). */
function binary01(cpu: Cpu, d: Insn, fn: (x: F80, y: F80) => F80 | null): boolean {
  const f = begin(cpu, true);
  note(cpu, d);
  if (isEmpty(f, 0) || isEmpty(f, 1)) {
    if (underflow()) setSt(f, 0, indefinite());
    return false;
  }
  const r = fn(getSt(f, 0), getSt(f, 1));
  if (r === null || blocked()) return false;
  setSt(f, 0, r);
  return true;
}

export const fscale: Handler = (cpu, d) => {
  binary01(cpu, d, scale);
  end(cpu.fpu, fx.up);
};

function prem(cpu: Cpu, d: Insn, nearest: boolean): void {
  remOut.q = -1; remOut.partial = false;
  binary01(cpu, d, (x, y) => rem(x, y, nearest));
  const f = cpu.fpu;
  const q = remOut.q;
  // C2: incomplete reduction; otherwise C0 C3 C1 = Q2 Q1 Q0. NaN, invalid and stack-fault
  // results (q < 0) clear C2 and C1 only.
  if (q < 0) f.sw &= ~(Sw.C2 | Sw.C1);
  else setCC(f, (remOut.partial ? Sw.C2 : 0) | (q & 4 ? Sw.C0 : 0) | (q & 2 ? Sw.C3 : 0) | (q & 1 ? Sw.C1 : 0));
  end(f);
}
export const fprem: Handler = (cpu, d) => prem(cpu, d, false);
export const fprem1: Handler = (cpu, d) => prem(cpu, d, true);

/** fxtract: st(0) = exponent, then push the significand. */
export const fxtract: Handler = (cpu, d) => {
  const f = begin(cpu, true);
  note(cpu, d);
  if (isEmpty(f, 0)) {
    // The host pushes here without an overflow check.
    if (underflow()) { setSt(f, 0, indefinite()); pushRaw(cpu, indefinite()); }
    end(f, false);
    return;
  }
  if (!canPush(f)) {
    // Overflow: both st(0) and the new top become the indefinite (when IE is masked).
    if (fx.cw & 1) { setSt(f, 0, indefinite()); pushRaw(cpu, indefinite()); }
    end(f, true);
    return;
  }
  const r = xtract(getSt(f, 0));
  if (r === null || blocked()) { end(f, false); return; }
  setSt(f, 0, r[0]);
  pushRaw(cpu, r[1]);
  end(f, false);
};

function pushRaw(cpu: Cpu, x: F80): void {
  const f = cpu.fpu;
  f.top = (f.top - 1) & 7;
  setSt(f, 0, x);
}
