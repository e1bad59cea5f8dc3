// Integer arithmetic and logic: add or adc sbb and sub xor cmp (00..3F, 80..83), test,
// inc, dec, neg, not. Results are computed first, written, and only then are the flags
// committed, so a faulting write leaves the flags untouched.

import type { Cpu } from '../cpu.js';
import { FS, K, getCF, setLazy, setLogic } from '../flags.js';
import { def, group, Imm, type Handler, type Insn } from '../insn.js';
import { F } from '../state.js';

export const enum Alu { ADD = 0, OR = 1, ADC = 2, SBB = 3, AND = 4, SUB = 5, XOR = 6, CMP = 7 }

const TWO32 = 4294967296;

export function sizeMask(size: number): number {
  return size === 1 ? 0xff : size === 2 ? 0xffff : -1;
}

/** Compute op on (a,ah) and (b,bh); returns the low half, high half in cpu.t. No flags. */
export function aluCompute(cpu: Cpu, op: number, size: number, a: number, ah: number, b: number, bh: number): number {
  let c = 0;
  switch (op) {
    case Alu.ADC: c = getCF(cpu.f); // fall through
    case Alu.ADD:
      if (size === 8) {
        const lo = (a >>> 0) + (b >>> 0) + c;
        cpu.t = (ah + bh + (lo >= TWO32 ? 1 : 0)) | 0;
        return lo | 0;
      }
      return (a + b + c) & sizeMask(size);
    case Alu.SBB: c = getCF(cpu.f); // fall through
    case Alu.SUB: case Alu.CMP:
      if (size === 8) {
        const lo = (a >>> 0) - (b >>> 0) - c;
        cpu.t = (ah - bh - (lo < 0 ? 1 : 0)) | 0;
        return lo | 0;
      }
      return (a - b - c) & sizeMask(size);
    case Alu.OR: cpu.t = ah | bh; return a | b;
    case Alu.AND: cpu.t = ah & bh; return a & b;
    default: cpu.t = ah ^ bh; return a ^ b;
  }
}

export function aluFlags(cpu: Cpu, op: number, size: number, a: number, ah: number, b: number, bh: number, r: number, rh: number): void {
  switch (op) {
    case Alu.ADD: case Alu.ADC: setLazy(cpu.f, K.ADD, size, a, ah, b, bh, r, rh); return;
    case Alu.SUB: case Alu.SBB: case Alu.CMP: setLazy(cpu.f, K.SUB, size, a, ah, b, bh, r, rh); return;
    default: setLogic(cpu.f, size, r, rh);
  }
}

/** E op= G (or G op= E when `toG`). */
function aluEG(op: number, toG: boolean): Handler {
  return (cpu: Cpu, d: Insn) => {
    const size = d.osz;
    const lin = d.mod === 3 ? 0 : cpu.ea(d);
    let a: number, ah = 0, b: number, bh = 0;
    if (toG) {
      a = cpu.getG(d, size); if (size === 8) ah = cpu.t;
      b = cpu.getE(d, size, lin); if (size === 8) bh = cpu.t;
    } else {
      a = cpu.getE(d, size, lin); if (size === 8) ah = cpu.t;
      b = cpu.getG(d, size); if (size === 8) bh = cpu.t;
    }
    const r = aluCompute(cpu, op, size, a, ah, b, bh);
    const rh = size === 8 ? cpu.t : 0;
    if (op !== Alu.CMP) {
      if (toG) cpu.setG(d, size, r, rh); else cpu.setE(d, size, lin, r, rh);
    }
    aluFlags(cpu, op, size, a, ah, b, bh, r, rh);
  };
}

/** E op= imm (80, 81, 83) and AL/eAX op= imm (04, 05, ...: rm is register 0). */
function aluEI(op: number): Handler {
  return (cpu: Cpu, d: Insn) => {
    const size = d.osz;
    const lin = d.mod === 3 ? 0 : cpu.ea(d);
    const a = cpu.getE(d, size, lin);
    const ah = size === 8 ? cpu.t : 0;
    const b = d.imm & sizeMask(size), bh = d.immHi;
    const r = aluCompute(cpu, op, size, a, ah, b, bh);
    const rh = size === 8 ? cpu.t : 0;
    if (op !== Alu.CMP) cpu.setE(d, size, lin, r, rh);
    aluFlags(cpu, op, size, a, ah, b, bh, r, rh);
  };
}

/** Accumulator forms (04, 05, 0C, ..., A8, A9): decode as E = register 0. */
export function accumulator(h: Handler): (d: Insn) => Handler {
  return (d) => { d.mod = 3; d.rm = 0; d.rm8 = 0; return h; };
}

const testEG: Handler = (cpu, d) => {
  const size = d.osz;
  const lin = d.mod === 3 ? 0 : cpu.ea(d);
  const a = cpu.getE(d, size, lin); const ah = size === 8 ? cpu.t : 0;
  const b = cpu.getG(d, size); const bh = size === 8 ? cpu.t : 0;
  setLogic(cpu.f, size, a & b, ah & bh);
};

export const testEI: Handler = (cpu, d) => {
  const size = d.osz;
  const lin = d.mod === 3 ? 0 : cpu.ea(d);
  const a = cpu.getE(d, size, lin); const ah = size === 8 ? cpu.t : 0;
  setLogic(cpu.f, size, a & d.imm & sizeMask(size), ah & d.immHi);
};


/** Keep CF concrete in FLAGS (inc/dec preserve it). */
function keepCF(f: Int32Array): void {
  const cf = getCF(f);
  f[FS.FLAGS] = (f[FS.FLAGS] & ~F.CF) | cf;
}

function incDec(cpu: Cpu, d: Insn, lin: number, dec: boolean): void {
  const size = d.osz;
  const a = cpu.getE(d, size, lin); const ah = size === 8 ? cpu.t : 0;
  const r = aluCompute(cpu, dec ? Alu.SUB : Alu.ADD, size, a, ah, 1, 0);
  const rh = size === 8 ? cpu.t : 0;
  cpu.setE(d, size, lin, r, rh);
  keepCF(cpu.f);
  setLazy(cpu.f, dec ? K.DEC : K.INC, size, a, ah, 1, 0, r, rh);
}

export const incE: Handler = (cpu, d) => incDec(cpu, d, d.mod === 3 ? 0 : cpu.ea(d), false);
export const decE: Handler = (cpu, d) => incDec(cpu, d, d.mod === 3 ? 0 : cpu.ea(d), true);

export const notE: Handler = (cpu, d) => {
  const size = d.osz;
  const lin = d.mod === 3 ? 0 : cpu.ea(d);
  const a = cpu.getE(d, size, lin);
  cpu.setE(d, size, lin, ~a & sizeMask(size), ~cpu.t);
};

export const negE: Handler = (cpu, d) => {
  const size = d.osz;
  const lin = d.mod === 3 ? 0 : cpu.ea(d);
  const b = cpu.getE(d, size, lin); const bh = size === 8 ? cpu.t : 0;
  const r = aluCompute(cpu, Alu.SUB, size, 0, 0, b, bh);
  const rh = size === 8 ? cpu.t : 0;
  cpu.setE(d, size, lin, r, rh);
  setLazy(cpu.f, K.SUB, size, 0, 0, b, bh, r, rh);
};

const lockable = (d: Insn) => (d.reg & 7) !== Alu.CMP;

for (let op = 0; op < 8; op++) {
  const base = op * 8;
  const lk = op !== Alu.CMP;
  def(0, base + 0, { modrm: true, byte: true, h: aluEG(op, false), lock: lk });
  def(0, base + 1, { modrm: true, h: aluEG(op, false), lock: lk });
  def(0, base + 2, { modrm: true, byte: true, h: aluEG(op, true) });
  def(0, base + 3, { modrm: true, h: aluEG(op, true) });
  def(0, base + 4, { byte: true, imm: Imm.Ib, sel: accumulator(aluEI(op)) });
  def(0, base + 5, { imm: Imm.Iz, sel: accumulator(aluEI(op)) });
}
const grp1 = group([0, 1, 2, 3, 4, 5, 6, 7].map(aluEI));
def(0, 0x80, { modrm: true, byte: true, imm: Imm.Ib, sel: grp1, lock: lockable });
def(0, 0x81, { modrm: true, imm: Imm.Iz, sel: grp1, lock: lockable });
def(0, 0x82, { modrm: true, byte: true, imm: Imm.Ib, sel: grp1, lock: lockable, noLong: true });
def(0, 0x83, { modrm: true, imm: Imm.Ib, sel: grp1, lock: lockable });
def(0, 0x84, { modrm: true, byte: true, h: testEG });
def(0, 0x85, { modrm: true, h: testEG });
def(0, 0xa8, { byte: true, imm: Imm.Ib, sel: accumulator(testEI) });
def(0, 0xa9, { imm: Imm.Iz, sel: accumulator(testEI) });

// inc/dec r16/r32 (40..4F) exist only outside 64-bit mode, where they are REX prefixes.
for (let i = 0; i < 8; i++) {
  def(0, 0x40 + i, { h: incE, noLong: true });
  def(0, 0x48 + i, { h: decE, noLong: true });
}
def(0, 0xfe, { modrm: true, byte: true, sel: group([incE, decE]), lock: true });
