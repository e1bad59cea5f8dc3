// x87 loads and stores: fld/fst/fstp (m32, m64, m80, st(i)), fild/fist/fistp/fisttp
// (m16, m32, m64), fbld/fbstp, the constants, fxch, fcmovcc, ffree/ffreep.

import type { Cpu } from '../cpu.js';
import { cond } from '../flags.js';
import {
  Exc, FMT32, FMT64, fromInt, fx, indefinite, K, kind, mk, quiet, roundExt, toFloat, toIntRaw, type F80,
} from '../float80.js';
import type { Handler, Insn } from '../insn.js';
import {
  begin, end, getSt, isEmpty, loadMem, Mt, note, pop, push, readM80, setSt, underflow, writeM80,
  wr64Big, freeSt,
} from './x87-core.js';

// ---- loads ---------------------------------------------------------------------------

/** fld m32fp / m64fp: SNaN raises IE and loads quieted (nothing when IE is unmasked); a
 *  denormal raises DE but loads even when DE is unmasked (as the host does). */
function fldFloat(cpu: Cpu, d: Insn, t: Mt): void {
  const f = begin(cpu, true);
  const lin = cpu.ea(d);
  let x = loadMem(cpu, lin, t);
  note(cpu, d, lin);
  if (!isEmpty(f, 7)) { push(f, x); end(f, true); return; }
  if (fx.den) fx.exc |= Exc.DE;
  if (kind(x) === K.SNaN) {
    fx.exc |= Exc.IE;
    if (!(fx.cw & Exc.IE)) { end(f, false); return; }
    x = quiet(x);
  }
  push(f, x);
  end(f, false);
}
export const fld_m32fp: Handler = (cpu, d) => fldFloat(cpu, d, Mt.F32);
export const fld_m64fp: Handler = (cpu, d) => fldFloat(cpu, d, Mt.F64);

function fildInt(cpu: Cpu, d: Insn, t: Mt): void {
  const f = begin(cpu, true);
  const lin = cpu.ea(d);
  const x = loadMem(cpu, lin, t);
  note(cpu, d, lin);
  end(f, !push(f, x));
}
export const fild_m16int: Handler = (cpu, d) => fildInt(cpu, d, Mt.I16);
export const fild_m32int: Handler = (cpu, d) => fildInt(cpu, d, Mt.I32);
export const fild_m64int: Handler = (cpu, d) => {
  const f = begin(cpu, true);
  const lin = cpu.ea(d);
  const lo = cpu.mem.rd64(lin), hi = cpu.mem.hi;
  note(cpu, d, lin);
  end(f, !push(f, fromInt((BigInt(hi) << 32n) | BigInt(lo >>> 0))));
};

/** fld m80: a raw copy, no exceptions but the stack overflow. */
export const fld_m80fp: Handler = (cpu, d) => {
  const f = begin(cpu, true);
  const lin = cpu.ea(d);
  const x = readM80(cpu, lin);
  note(cpu, d, lin);
  end(f, !push(f, x));
};

/** fbld m80: 18 packed BCD digits and a sign bit. */
export const fbld: Handler = (cpu, d) => {
  const f = begin(cpu, true);
  const lin = cpu.ea(d);
  const raw = readM80(cpu, lin); // in address order, so a #PF reports the first bad byte
  // Byte 8 holds the two most significant digits, byte 0 the least; bit 79 the sign.
  let v = BigInt(((raw.e >> 4) & 15) * 10 + (raw.e & 15));
  for (let i = 15; i >= 0; i--) v = v * 10n + ((raw.m >> BigInt(i * 4)) & 15n);
  const neg = raw.s === 1;
  note(cpu, d, lin);
  const x = fromInt(v);
  end(f, !push(f, neg ? mk(1, x.e, x.m) : x));
};

export const fld_sti: Handler = (cpu, d) => {
  const f = begin(cpu, true);
  note(cpu, d);
  const i = d.rm & 7;
  if (isEmpty(f, i)) {
    // The underflow wins: the indefinite is pushed without an overflow check.
    if (underflow()) { f.top = (f.top - 1) & 7; setSt(f, 0, indefinite()); }
    end(f, false);
    return;
  }
  end(f, !push(f, getSt(f, i)));
};

// The constants, 128 bits (more than enough to round correctly): significand and exponent.
const CONSTS: [bigint, number][] = [
  [0x8000000000000000_0000000000000000n, 0],   // fld1
  [0xd49a784bcd1b8afe_492bf6ff4dafdb4cn, 1],   // fldl2t
  [0xb8aa3b295c17f0bb_be87fed0691d3e88n, 0],   // fldl2e
  [0xc90fdaa22168c234_c4c6628b80dc1cd1n, 1],   // fldpi
  [0x9a209a84fbcff798_8f8959ac0b7c9178n, -2],  // fldlg2
  [0xb17217f7d1cf79ab_c9e3b39803f2f6afn, -1],  // fldln2
];

/** D9 E8..EE: the constant is rounded by RC to 64 bits; no PE is raised. */
function fldConst(cpu: Cpu, d: Insn, k: number): void {
  const f = begin(cpu, true);
  note(cpu, d);
  let x: F80;
  if (k === 6) x = mk(0, 0, 0n);
  else {
    const [m, e] = CONSTS[k];
    x = roundExt(0, m, e - 127, 64);
    fx.exc = 0;
  }
  end(f, !push(f, x));
}
export const fldConsts: Handler[] = [0, 1, 2, 3, 4, 5, 6].map((k) => ((cpu, d) => fldConst(cpu, d, k)) as Handler);

// ---- stores --------------------------------------------------------------------------

/** fst/fstp m32fp/m64fp. Unmasked IE/OE/UE/DE: nothing stored, no pop. */
function fstFloat(cpu: Cpu, d: Insn, size: 4 | 8, doPop: boolean): void {
  const f = begin(cpu, true);
  const lin = cpu.ea(d);
  cpu.mem.probeWrite(lin, size); // the host faults even when nothing would be stored
  let bits: bigint | null;
  let c1 = false;
  if (isEmpty(f, 0)) bits = underflow() ? (size === 4 ? 0xffc00000n : 0xfff8000000000000n) : null;
  else { bits = toFloat(getSt(f, 0), size === 4 ? FMT32 : FMT64); c1 = fx.up; }
  if (bits !== null) {
    if (size === 4) cpu.mem.wr32(lin, Number(bits) | 0);
    else wr64Big(cpu, lin, bits);
  }
  note(cpu, d, lin);
  if (bits !== null && doPop) pop(f);
  end(f, c1);
}
export const fst_m32fp: Handler = (cpu, d) => fstFloat(cpu, d, 4, false);
export const fstp_m32fp: Handler = (cpu, d) => fstFloat(cpu, d, 4, true);
export const fst_m64fp: Handler = (cpu, d) => fstFloat(cpu, d, 8, false);
export const fstp_m64fp: Handler = (cpu, d) => fstFloat(cpu, d, 8, true);

export const fstp_m80fp: Handler = (cpu, d) => {
  const f = begin(cpu, true);
  const lin = cpu.ea(d);
  cpu.mem.probeWrite(lin, 10);
  let x: F80 | null = null;
  if (isEmpty(f, 0)) { if (underflow()) x = indefinite(); } else x = getSt(f, 0);
  if (x !== null) writeM80(cpu, lin, x);
  note(cpu, d, lin);
  if (x !== null) pop(f);
  end(f, false);
};

/** fst/fstp st(i): a raw copy. */
function fstReg(cpu: Cpu, d: Insn, doPop: boolean): void {
  const f = begin(cpu, true);
  note(cpu, d);
  const i = d.rm & 7;
  if (isEmpty(f, 0)) {
    if (!underflow()) { end(f, false); return; }
    setSt(f, i, indefinite());
  } else setSt(f, i, getSt(f, 0));
  if (doPop) pop(f);
  end(f, false);
}
export const fst_sti: Handler = (cpu, d) => fstReg(cpu, d, false);
export const fstp_sti: Handler = (cpu, d) => fstReg(cpu, d, true);

/** D9 D8+i, "fstp1": like fstp st(i), except that an empty st(0) is no stack fault on the
 *  host: st(i) is left alone and the stack is popped. */
export const fstp1_sti: Handler = (cpu, d) => {
  const f = cpu.fpu;
  if (!isEmpty(f, 0)) { fstReg(cpu, d, true); return; }
  begin(cpu, true);
  note(cpu, d);
  pop(f);
  end(f, false);
};

const INT_RANGE: [bigint, bigint][] = [[-0x8000n, 0x7fffn], [-0x80000000n, 0x7fffffffn], [-0x8000000000000000n, 0x7fffffffffffffffn]];

/** fist/fistp/fisttp: size 2, 4 or 8. Out of range, NaN, infinity: IE and the integer
 *  indefinite (the most negative value) when masked. */
function fistInt(cpu: Cpu, d: Insn, size: 2 | 4 | 8, doPop: boolean, trunc: boolean): void {
  const f = begin(cpu, true);
  const lin = cpu.ea(d);
  cpu.mem.probeWrite(lin, size);
  const [lo, hi] = INT_RANGE[size === 2 ? 0 : size === 4 ? 1 : 2];
  let v: bigint | null;
  let c1 = false;
  if (isEmpty(f, 0)) v = underflow() ? lo : null;
  else {
    v = toIntRaw(getSt(f, 0), trunc, lo, hi);
    c1 = fx.up;
    if (v === null) { fx.exc |= Exc.IE; c1 = false; if (fx.cw & Exc.IE) v = lo; }
  }
  if (v !== null) {
    const m = cpu.mem;
    if (size === 2) m.wr16(lin, Number(v & 0xffffn));
    else if (size === 4) m.wr32(lin, Number(v & 0xffffffffn) | 0);
    else wr64Big(cpu, lin, v);
  }
  note(cpu, d, lin);
  if (v !== null && doPop) pop(f);
  end(f, c1);
}
export const fist_m16int: Handler = (cpu, d) => fistInt(cpu, d, 2, false, false);
export const fist_m32int: Handler = (cpu, d) => fistInt(cpu, d, 4, false, false);
export const fistp_m16int: Handler = (cpu, d) => fistInt(cpu, d, 2, true, false);
export const fistp_m32int: Handler = (cpu, d) => fistInt(cpu, d, 4, true, false);
export const fistp_m64int: Handler = (cpu, d) => fistInt(cpu, d, 8, true, false);
export const fisttp_m16int: Handler = (cpu, d) => fistInt(cpu, d, 2, true, true);
export const fisttp_m32int: Handler = (cpu, d) => fistInt(cpu, d, 4, true, true);
export const fisttp_m64int: Handler = (cpu, d) => fistInt(cpu, d, 8, true, true);

const BCD_MAX = 999999999999999999n;

/** fbstp m80: st(0) rounded by RC to 18 BCD digits; out of range: IE, the BCD indefinite. */
export const fbstp: Handler = (cpu, d) => {
  const f = begin(cpu, true);
  const lin = cpu.ea(d);
  cpu.mem.probeWrite(lin, 10);
  let v: bigint | null = null;
  let neg = false, c1 = false, indef = false;
  if (isEmpty(f, 0)) indef = underflow();
  else {
    const x = getSt(f, 0);
    neg = x.s === 1;
    v = toIntRaw(x, false, -BCD_MAX, BCD_MAX);
    c1 = fx.up;
    if (v === null) { fx.exc |= Exc.IE; c1 = false; indef = (fx.cw & Exc.IE) !== 0; }
  }
  const m = cpu.mem;
  if (indef) {
    m.probeWrite(lin, 10);
    for (let i = 0; i < 7; i++) m.wr8(lin + i, 0);
    m.wr8(lin + 7, 0xc0); m.wr8(lin + 8, 0xff); m.wr8(lin + 9, 0xff);
  } else if (v !== null) {
    m.probeWrite(lin, 10);
    let a = v < 0n ? -v : v;
    for (let i = 0; i < 9; i++) {
      const two = Number(a % 100n);
      a /= 100n;
      m.wr8(lin + i, (((two / 10) | 0) << 4) | (two % 10));
    }
    m.wr8(lin + 9, neg ? 0x80 : 0);
  }
  note(cpu, d, lin);
  if (indef || v !== null) pop(f);
  end(f, c1);
};

// ---- register moves ------------------------------------------------------------------

/** fxch st(i): an empty side reads as the indefinite (IE SF) when IE is masked. */
export const fxch: Handler = (cpu, d) => {
  const f = begin(cpu, true);
  note(cpu, d);
  const i = d.rm & 7;
  const e0 = isEmpty(f, 0), ei = isEmpty(f, i);
  if ((e0 || ei) && !underflow()) { end(f, false); return; }
  const a = e0 ? indefinite() : getSt(f, 0);
  const b = ei ? indefinite() : getSt(f, i);
  setSt(f, 0, b);
  setSt(f, i, a);
  end(f, false);
};

/** fcmovcc st(0), st(i); cc is the Jcc condition number. An empty operand is a stack
 *  underflow whatever the condition: st(0) gets the indefinite. */
function fcmov(cpu: Cpu, d: Insn, cc: number): void {
  const f = begin(cpu, true);
  note(cpu, d);
  const i = d.rm & 7;
  if (isEmpty(f, 0) || isEmpty(f, i)) {
    if (underflow()) setSt(f, 0, indefinite());
    end(f, false);
    return;
  }
  if (cond(cpu.f, cc)) setSt(f, 0, getSt(f, i));
  end(f);
}
/** DA C0/C8/D0/D8: b e be u; DB C0/C8/D0/D8: nb ne nbe nu. */
export const fcmovs: Handler[] = [2, 4, 6, 10, 3, 5, 7, 11].map((cc) => ((cpu, d) => fcmov(cpu, d, cc)) as Handler);

export const ffree: Handler = (cpu, d) => {
  const f = begin(cpu, true);
  note(cpu, d);
  freeSt(f, d.rm & 7);
  end(f, false);
};

/** DF C0+i: ffreep (undocumented on Intel, present on the host): free st(i), then pop. */
export const ffreep: Handler = (cpu, d) => {
  const f = begin(cpu, true);
  note(cpu, d);
  freeSt(f, d.rm & 7);
  pop(f);
  end(f, false);
};

