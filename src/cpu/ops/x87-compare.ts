// x87 comparisons: fcom/fcomp/fcompp, fucom/fucomp/fucompp, ficom/ficomp, fcomi/fcomip/
// fucomi/fucomip, ftst, fxam.

import type { Cpu } from '../cpu.js';
import { FS, getFlags, materialize } from '../flags.js';
import { compare, Exc, fx, K, kind, zero, type F80 } from '../float80.js';
import type { Handler, Insn } from '../insn.js';
import { begin, end, getSt, isEmpty, loadMem, Mt, note, pop, setCC, Sw, underflow } from './x87-core.js';

/** Condition codes for -1 (less), 0 (equal), 1 (greater), 2 (unordered). */
const CC = [Sw.C0, Sw.C3, 0, Sw.C3 | Sw.C2 | Sw.C0];
const ccOf = (r: number): number => CC[r + 1];

/** The result of comparing st(0) with y (null: y is an empty register), or unordered after
 *  a stack underflow. */
function cmp(cpu: Cpu, y: F80 | null, quietNaN: boolean): number {
  const f = cpu.fpu;
  if (isEmpty(f, 0) || y === null) { underflow(); return 2; }
  return compare(getSt(f, 0), y, quietNaN);
}

/** The condition codes are set even when IE is unmasked (unordered); the pops are not done
 *  then. */
function finishCom(cpu: Cpu, r: number, pops: number): void {
  const f = cpu.fpu;
  setCC(f, ccOf(r));
  if (ieUnmasked()) pops = 0;
  for (let k = 0; k < pops; k++) pop(f);
  end(f, false);
}

/** An unmasked IE or DE was raised: the popping forms do not pop. */
const ieUnmasked = (): boolean => (fx.exc & ~fx.cw & (Exc.IE | Exc.DE)) !== 0;

function comMem(cpu: Cpu, d: Insn, t: Mt): void {
  begin(cpu, true);
  const lin = cpu.ea(d);
  const y = loadMem(cpu, lin, t);
  note(cpu, d, lin);
  finishCom(cpu, cmp(cpu, y, false), (d.reg & 7) === 3 ? 1 : 0);
}
/** D8 /2 /3, DC /2 /3, DA /2 /3, DE /2 /3: fcom(p) m32fp/m64fp, ficom(p) m32int/m16int. */
export const fcom_m32fp: Handler = (cpu, d) => comMem(cpu, d, Mt.F32);
export const fcom_m64fp: Handler = (cpu, d) => comMem(cpu, d, Mt.F64);
export const ficom_m32int: Handler = (cpu, d) => comMem(cpu, d, Mt.I32);
export const ficom_m16int: Handler = (cpu, d) => comMem(cpu, d, Mt.I16);

function comReg(cpu: Cpu, d: Insn, quietNaN: boolean, pops: number): void {
  const f = begin(cpu, true);
  note(cpu, d);
  const i = d.rm & 7;
  finishCom(cpu, cmp(cpu, isEmpty(f, i) ? null : getSt(f, i), quietNaN), pops);
}
export const fcom_sti: Handler = (cpu, d) => comReg(cpu, d, false, 0);
export const fcomp_sti: Handler = (cpu, d) => comReg(cpu, d, false, 1);
export const fcompp: Handler = (cpu, d) => comReg(cpu, d, false, 2);
export const fucom_sti: Handler = (cpu, d) => comReg(cpu, d, true, 0);
export const fucomp_sti: Handler = (cpu, d) => comReg(cpu, d, true, 1);
export const fucompp: Handler = (cpu, d) => comReg(cpu, d, true, 2);

export const ftst: Handler = (cpu, d) => {
  begin(cpu, true);
  note(cpu, d);
  finishCom(cpu, cmp(cpu, zero(0), false), 0);
};

/** fcomi family: ZF PF CF from the comparison, OF SF AF cleared; C1 is left alone. */
function comi(cpu: Cpu, d: Insn, quietNaN: boolean, doPop: boolean): void {
  const f = begin(cpu, true);
  note(cpu, d);
  const i = d.rm & 7;
  const r = cmp(cpu, isEmpty(f, i) ? null : getSt(f, i), quietNaN);
  const bits = r === 2 ? 0x45 : r === 0 ? 0x40 : r < 0 ? 0x01 : 0;
  const fl = cpu.f;
  materialize(fl);
  fl[FS.FLAGS] = (getFlags(fl) & ~0x8d5) | bits;
  if (doPop && !ieUnmasked()) pop(f);
  // C1 is kept, except that a stack fault clears it.
  end(f, fx.exc & Exc.SF ? false : undefined);
}
export const fcomi: Handler = (cpu, d) => comi(cpu, d, false, false);
export const fcomip: Handler = (cpu, d) => comi(cpu, d, false, true);
export const fucomi: Handler = (cpu, d) => comi(cpu, d, true, false);
export const fucomip: Handler = (cpu, d) => comi(cpu, d, true, true);

/** fxam: the class of st(0) in C3 C2 C0, its sign in C1; no exceptions. */
export const fxam: Handler = (cpu, d) => {
  const f = begin(cpu, true);
  note(cpu, d);
  const x = getSt(f, 0);
  let c: number;
  if (isEmpty(f, 0)) c = Sw.C3 | Sw.C0;
  else {
    switch (kind(x)) {
      case K.Invalid: c = 0; break;
      case K.QNaN: case K.SNaN: c = Sw.C0; break;
      case K.Normal: c = Sw.C2; break;
      case K.Inf: c = Sw.C2 | Sw.C0; break;
      case K.Zero: c = Sw.C3; break;
      default: c = Sw.C3 | Sw.C2; break;
    }
  }
  setCC(f, c | (x.s ? Sw.C1 : 0));
  end(f);
};

