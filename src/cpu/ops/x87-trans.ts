// x87 transcendentals: fsin fcos fsincos fptan fpatan f2xm1 fyl2x fyl2xp1 (the arithmetic is
// in float80-trans.ts; not bit-exact with every host, see there).

import type { Cpu } from '../cpu.js';
import { fx, indefinite, mk, type F80 } from '../float80.js';
import { atan2, f2xm1 as f2xm1Op, sincos, trig, yl2x, yl2xp1 } from '../float80-trans.js';
import type { Handler, Insn } from '../insn.js';
import { begin, blocked, canPush, end, getSt, isEmpty, note, pop, setSt, Sw, underflow } from './x87-core.js';
import { unary } from './x87-arith.js';

const ONE: F80 = mk(0, 16383, 1n << 63n);

function pushRaw(cpu: Cpu, x: F80): void {
  const f = cpu.fpu;
  f.top = (f.top - 1) & 7;
  setSt(f, 0, x);
}

/** fsin (1), fcos (2), fsincos (3), fptan (4). C2 reports an argument out of range. */
function trigOp(cpu: Cpu, d: Insn, which: number): void {
  const f = begin(cpu, true);
  note(cpu, d);
  const pushes = which >= 3;
  f.sw &= ~Sw.C2;
  if (isEmpty(f, 0)) {
    if (underflow()) { setSt(f, 0, indefinite()); if (pushes) pushRaw(cpu, indefinite()); }
    end(f, false);
    return;
  }
  if (pushes && !canPush(f)) {
    if (fx.cw & 1) { setSt(f, 0, indefinite()); pushRaw(cpu, indefinite()); }
    end(f, true);
    return;
  }
  const r = sincos(getSt(f, 0), which);
  if (trig.outOfRange) { f.sw |= Sw.C2; end(f, false); return; }
  if (r === null || blocked()) { end(f, false); return; }
  const up = fx.up;
  setSt(f, 0, r[0]);
  if (which === 3) pushRaw(cpu, r[1]);
  else if (which === 4) pushRaw(cpu, r.length > 1 ? r[1] : ONE); // 1.0, or the NaN again
  end(f, up);
}
export const fsin: Handler = (cpu, d) => trigOp(cpu, d, 1);
export const fcos: Handler = (cpu, d) => trigOp(cpu, d, 2);
export const fsincos: Handler = (cpu, d) => trigOp(cpu, d, 3);
export const fptan: Handler = (cpu, d) => trigOp(cpu, d, 4);

/** st(1) = fn(st(0), st(1)), then pop: fpatan, fyl2x, fyl2xp1. */
function binaryPop(cpu: Cpu, d: Insn, fn: (x: F80, y: F80) => F80 | null): void {
  const f = begin(cpu, true);
  note(cpu, d);
  if (isEmpty(f, 0) || isEmpty(f, 1)) {
    if (underflow()) { setSt(f, 1, indefinite()); pop(f); }
    end(f, false);
    return;
  }
  const r = fn(getSt(f, 0), getSt(f, 1));
  if (r === null || blocked()) { end(f, false); return; }
  setSt(f, 1, r);
  pop(f);
  end(f, fx.up);
}
export const fpatan: Handler = (cpu, d) => binaryPop(cpu, d, (x, y) => atan2(y, x));
export const fyl2x: Handler = (cpu, d) => binaryPop(cpu, d, yl2x);
export const fyl2xp1: Handler = (cpu, d) => binaryPop(cpu, d, yl2xp1);

export const f2xm1: Handler = (cpu, d) => unary(cpu, d, f2xm1Op);
