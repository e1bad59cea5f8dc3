// SSE/SSE2 floating-point arithmetic: add/sub/mul/div/min/max/sqrt in ps/pd/ss/sd forms,
// cmpps/cmppd/cmpss/cmpsd, comiss/ucomiss/comisd/ucomisd, the bitwise and/andn/or/xor
// ps/pd, and the approximations rcpps/rcpss/rsqrtps/rsqrtss. The IEEE work is in softfp.ts;
// here the lanes are gathered, run, checked for unmasked exceptions (fpCheck, before any
// register is written) and stored.

import { FS, getFlags, K } from '../flags.js';
import { byPrefix, def, Imm, Map as OpMap, type Handler, type Insn } from '../insn.js';
import {
  f32Arith, f32Cmp, f32Comi, f32MinMax, f32Sqrt, f64Arith, f64Cmp, f64Comi, f64MinMax, f64Sqrt, fe, fpBegin, Op,
} from '../softfp.js';
import { F } from '../state.js';
import { rcp32, rsqrt32 } from './sse-approx.js';
import { fpCheck, loadW, loadW64, loadW32, R, sseAvail } from './sse-common.js';

type F32Fn = (op: number, a: number, b: number) => number;
type F64Fn = (op: number, alo: number, ahi: number, blo: number, bhi: number) => number;

function ps(op: number, f: F32Fn): Handler {
  return (cpu, d) => {
    sseAvail(cpu);
    const b = loadW(cpu, d, true);
    const x = cpu.xmm, t = d.reg * 4, r = R.i32;
    fpBegin(cpu.mxcsr);
    for (let i = 0; i < 4; i++) r[i] = f(op, x[t + i], b[i]);
    fpCheck(cpu);
    x[t] = r[0]; x[t + 1] = r[1]; x[t + 2] = r[2]; x[t + 3] = r[3];
  };
}
function ss(op: number, f: F32Fn): Handler {
  return (cpu, d) => {
    sseAvail(cpu);
    const b = loadW32(cpu, d);
    const x = cpu.xmm, t = d.reg * 4;
    fpBegin(cpu.mxcsr);
    const r = f(op, x[t], b);
    fpCheck(cpu);
    x[t] = r;
  };
}
function pd(op: number, f: F64Fn): Handler {
  return (cpu, d) => {
    sseAvail(cpu);
    const b = loadW(cpu, d, true);
    const x = cpu.xmm, t = d.reg * 4, r = R.i32;
    fpBegin(cpu.mxcsr);
    r[0] = f(op, x[t], x[t + 1], b[0], b[1]); r[1] = fe.hi;
    r[2] = f(op, x[t + 2], x[t + 3], b[2], b[3]); r[3] = fe.hi;
    fpCheck(cpu);
    x[t] = r[0]; x[t + 1] = r[1]; x[t + 2] = r[2]; x[t + 3] = r[3];
  };
}
function sd(op: number, f: F64Fn): Handler {
  return (cpu, d) => {
    sseAvail(cpu);
    const b = loadW64(cpu, d);
    const x = cpu.xmm, t = d.reg * 4;
    fpBegin(cpu.mxcsr);
    const lo = f(op, x[t], x[t + 1], b[0], b[1]), hi = fe.hi;
    fpCheck(cpu);
    x[t] = lo; x[t + 1] = hi;
  };
}
/** The four forms of an arithmetic opcode, by mandatory prefix. */
function arith(op: number): (d: Insn) => Handler | undefined {
  const f32 = op >= Op.MIN ? f32MinMax : f32Arith;
  const f64 = op >= Op.MIN ? f64MinMax : f64Arith;
  return byPrefix(ps(op, f32), pd(op, f64), ss(op, f32), sd(op, f64));
}

// ---- square root ---------------------------------------------------------------------

const sqrtps: Handler = (cpu, d) => {
  sseAvail(cpu);
  const b = loadW(cpu, d, true);
  const x = cpu.xmm, t = d.reg * 4, r = R.i32;
  fpBegin(cpu.mxcsr);
  for (let i = 0; i < 4; i++) r[i] = f32Sqrt(b[i]);
  fpCheck(cpu);
  x[t] = r[0]; x[t + 1] = r[1]; x[t + 2] = r[2]; x[t + 3] = r[3];
};
const sqrtss: Handler = (cpu, d) => {
  sseAvail(cpu);
  const b = loadW32(cpu, d);
  fpBegin(cpu.mxcsr);
  const r = f32Sqrt(b);
  fpCheck(cpu);
  cpu.xmm[d.reg * 4] = r;
};
const sqrtpd: Handler = (cpu, d) => {
  sseAvail(cpu);
  const b = loadW(cpu, d, true);
  const x = cpu.xmm, t = d.reg * 4, r = R.i32;
  fpBegin(cpu.mxcsr);
  r[0] = f64Sqrt(b[0], b[1]); r[1] = fe.hi;
  r[2] = f64Sqrt(b[2], b[3]); r[3] = fe.hi;
  fpCheck(cpu);
  x[t] = r[0]; x[t + 1] = r[1]; x[t + 2] = r[2]; x[t + 3] = r[3];
};
const sqrtsd: Handler = (cpu, d) => {
  sseAvail(cpu);
  const b = loadW64(cpu, d);
  fpBegin(cpu.mxcsr);
  const lo = f64Sqrt(b[0], b[1]), hi = fe.hi;
  fpCheck(cpu);
  cpu.xmm[d.reg * 4] = lo; cpu.xmm[d.reg * 4 + 1] = hi;
};

// ---- approximations (no MXCSR flags, no exceptions) ------------------------------------

function approxPs(f: (a: number) => number): Handler {
  return (cpu, d) => {
    sseAvail(cpu);
    const b = loadW(cpu, d, true);
    const x = cpu.xmm, t = d.reg * 4;
    for (let i = 0; i < 4; i++) x[t + i] = f(b[i]);
  };
}
function approxSs(f: (a: number) => number): Handler {
  return (cpu, d) => {
    sseAvail(cpu);
    cpu.xmm[d.reg * 4] = f(loadW32(cpu, d));
  };
}

// ---- bitwise ---------------------------------------------------------------------------

const enum Bw { AND = 0, ANDN = 1, OR = 2, XOR = 3 }
/** andps/andpd, andnps/andnpd, orps/orpd, xorps/xorpd (the same bits for both types). */
function bitwise(k: number): Handler {
  return (cpu, d) => {
    sseAvail(cpu);
    const b = loadW(cpu, d, true);
    const x = cpu.xmm, t = d.reg * 4;
    for (let i = 0; i < 4; i++) {
      const a = x[t + i];
      x[t + i] = k === Bw.AND ? a & b[i] : k === Bw.ANDN ? ~a & b[i] : k === Bw.OR ? a | b[i] : a ^ b[i];
    }
  };
}
function bitwiseSel(k: number): (d: Insn) => Handler | undefined {
  const h = bitwise(k);
  return byPrefix(h, h);
}

// ---- compares --------------------------------------------------------------------------

/** cmpps/cmppd/cmpss/cmpsd xmm, xmm/m, imm8: legacy SSE uses predicates 0..7 (imm8[2:0]). */
const cmpps: Handler = (cpu, d) => {
  sseAvail(cpu);
  const b = loadW(cpu, d, true);
  const x = cpu.xmm, t = d.reg * 4, r = R.i32, p = d.imm & 7;
  fpBegin(cpu.mxcsr);
  for (let i = 0; i < 4; i++) r[i] = f32Cmp(p, x[t + i], b[i]) ? -1 : 0;
  fpCheck(cpu);
  x[t] = r[0]; x[t + 1] = r[1]; x[t + 2] = r[2]; x[t + 3] = r[3];
};
const cmppd: Handler = (cpu, d) => {
  sseAvail(cpu);
  const b = loadW(cpu, d, true);
  const x = cpu.xmm, t = d.reg * 4, p = d.imm & 7;
  fpBegin(cpu.mxcsr);
  const r0 = f64Cmp(p, x[t], x[t + 1], b[0], b[1]) ? -1 : 0;
  const r1 = f64Cmp(p, x[t + 2], x[t + 3], b[2], b[3]) ? -1 : 0;
  fpCheck(cpu);
  x[t] = r0; x[t + 1] = r0; x[t + 2] = r1; x[t + 3] = r1;
};
const cmpss: Handler = (cpu, d) => {
  sseAvail(cpu);
  const b = loadW32(cpu, d);
  const x = cpu.xmm, t = d.reg * 4;
  fpBegin(cpu.mxcsr);
  const r = f32Cmp(d.imm & 7, x[t], b) ? -1 : 0;
  fpCheck(cpu);
  x[t] = r;
};
const cmpsd: Handler = (cpu, d) => {
  sseAvail(cpu);
  const b = loadW64(cpu, d);
  const x = cpu.xmm, t = d.reg * 4;
  fpBegin(cpu.mxcsr);
  const r = f64Cmp(d.imm & 7, x[t], x[t + 1], b[0], b[1]) ? -1 : 0;
  fpCheck(cpu);
  x[t] = r; x[t + 1] = r;
};

/** Set ZF PF CF from a comparison, clear OF SF AF. */
function setComiFlags(f: Int32Array, zpc: number): void {
  f[FS.FLAGS] = (getFlags(f) & ~F.ARITH) | zpc;
  f[FS.KIND] = K.NONE;
}
function comiss(signalQuiet: boolean): Handler {
  return (cpu, d) => {
    sseAvail(cpu);
    const b = loadW32(cpu, d);
    fpBegin(cpu.mxcsr);
    const r = f32Comi(cpu.xmm[d.reg * 4], b, signalQuiet);
    fpCheck(cpu);
    setComiFlags(cpu.f, r);
  };
}
function comisd(signalQuiet: boolean): Handler {
  return (cpu, d) => {
    sseAvail(cpu);
    const b = loadW64(cpu, d);
    const x = cpu.xmm, t = d.reg * 4;
    fpBegin(cpu.mxcsr);
    const r = f64Comi(x[t], x[t + 1], b[0], b[1], signalQuiet);
    fpCheck(cpu);
    setComiFlags(cpu.f, r);
  };
}

// ---- registration ----------------------------------------------------------------------

const X = OpMap.X0F;
def(X, 0x58, { modrm: true, sel: arith(Op.ADD) });
def(X, 0x59, { modrm: true, sel: arith(Op.MUL) });
def(X, 0x5c, { modrm: true, sel: arith(Op.SUB) });
def(X, 0x5d, { modrm: true, sel: arith(Op.MIN) });
def(X, 0x5e, { modrm: true, sel: arith(Op.DIV) });
def(X, 0x5f, { modrm: true, sel: arith(Op.MAX) });
def(X, 0x51, { modrm: true, sel: byPrefix(sqrtps, sqrtpd, sqrtss, sqrtsd) });
def(X, 0x52, { modrm: true, sel: byPrefix(approxPs(rsqrt32), undefined, approxSs(rsqrt32)) });
def(X, 0x53, { modrm: true, sel: byPrefix(approxPs(rcp32), undefined, approxSs(rcp32)) });
def(X, 0x54, { modrm: true, sel: bitwiseSel(Bw.AND) });
def(X, 0x55, { modrm: true, sel: bitwiseSel(Bw.ANDN) });
def(X, 0x56, { modrm: true, sel: bitwiseSel(Bw.OR) });
def(X, 0x57, { modrm: true, sel: bitwiseSel(Bw.XOR) });
def(X, 0xc2, { modrm: true, imm: Imm.IbU, sel: byPrefix(cmpps, cmppd, cmpss, cmpsd) });
def(X, 0x2e, { modrm: true, sel: byPrefix(comiss(false), comisd(false)) });
def(X, 0x2f, { modrm: true, sel: byPrefix(comiss(true), comisd(true)) });
