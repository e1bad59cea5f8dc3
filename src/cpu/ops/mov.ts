// Data movement: mov (all forms), lea, movzx/movsx/movsxd, movbe, xchg, xadd, cmpxchg,
// cmpxchg8b/16b, cbw..cqo, bswap, cmovcc, setcc, xlat.

import type { Cpu } from '../cpu.js';
import { CpuFault, Vec, ud } from '../fault.js';
import { cond, setLazy, K, FS, materialize } from '../flags.js';
import { def, defRange, group, Imm, Map as OpMap, type Handler, type Insn } from '../insn.js';
import { F, Mode } from '../state.js';
import { aluCompute, Alu, sizeMask } from './alu.js';

const movEG: Handler = (cpu, d) => {
  const size = d.osz;
  const v = cpu.getG(d, size);
  if (d.mod === 3) cpu.setReg(size === 1 ? d.rm8 : d.rm, size, v, cpu.t);
  else { const hi = cpu.t; cpu.wr(cpu.ea(d), size, v, hi); }
};
const movGE: Handler = (cpu, d) => {
  const size = d.osz;
  const v = d.mod === 3 ? cpu.getReg(size === 1 ? d.rm8 : d.rm, size) : cpu.rd(cpu.ea(d), size);
  cpu.setG(d, size, v, cpu.t);
};
const movEI: Handler = (cpu, d) => {
  const size = d.osz;
  const lin = d.mod === 3 ? 0 : cpu.ea(d);
  cpu.setE(d, size, lin, d.imm, d.immHi);
};
/** B0..BF: mov r, imm (rm holds the register). */
const movRI: Handler = (cpu, d) => { cpu.setReg(d.osz === 1 ? d.rm8 : d.rm, d.osz, d.imm, d.immHi); };

const lea: Handler = (cpu, d) => {
  if (d.mod === 3) ud();
  const v = leaOffset(cpu, d);
  cpu.setReg(d.reg, d.osz, v, cpu.t);
};

/** The effective address of a memory operand as an offset (no segment base), truncated to
 *  the operand size; low half returned, high half in cpu.t. */
export function leaOffset(cpu: Cpu, d: Insn): number {
  const r = cpu.r;
  let lo = d.disp, hi = d.disp >> 31;
  const b = d.base;
  if (b >= 0) {
    if (b === 16) { lo = cpu.ripHalves(); hi = cpu.t; const s = (lo >>> 0) + d.disp; hi = (hi + Math.floor(s / 4294967296)) | 0; lo = s | 0; }
    else { const s = (lo >>> 0) + (r[b * 2] >>> 0); hi = (hi + r[b * 2 + 1] + (s >= 4294967296 ? 1 : 0)) | 0; lo = s | 0; }
  }
  if (d.index >= 0) {
    const x = d.index, sc = d.scale;
    const xl = r[x * 2], xh = r[x * 2 + 1];
    const sl = sc === 0 ? xl : xl << sc;
    const sh = sc === 0 ? xh : (xh << sc) | (xl >>> (32 - sc));
    const s = (lo >>> 0) + (sl >>> 0);
    hi = (hi + sh + (s >= 4294967296 ? 1 : 0)) | 0; lo = s | 0;
  }
  if (d.asz === 4) hi = 0;
  else if (d.asz === 2) { lo &= 0xffff; hi = 0; }
  cpu.t = hi;
  return lo;
}

/** movzx/movsx Gv, Eb/Ew */
function movx(srcSize: number, signed: boolean): Handler {
  return (cpu, d) => {
    let v = d.mod === 3 ? cpu.getReg(srcSize === 1 ? d.rm8 : d.rm, srcSize) : cpu.rd(cpu.ea(d), srcSize);
    if (signed) v = srcSize === 1 ? (v << 24) >> 24 : (v << 16) >> 16;
    cpu.setReg(d.reg, d.osz, v & sizeMask(d.osz), v >> 31);
  };
}
/** movsxd Gv, Ed (63 in 64-bit mode) */
const movsxd: Handler = (cpu, d) => {
  const v = d.mod === 3 ? cpu.getReg(d.rm, 4) : cpu.rd(cpu.ea(d), 4);
  if (d.osz === 8) cpu.setReg(d.reg, 8, v, v >> 31);
  else cpu.setReg(d.reg, d.osz, v, 0);
};

function bswap32(v: number): number {
  return ((v & 0xff) << 24) | ((v & 0xff00) << 8) | ((v >>> 8) & 0xff00) | (v >>> 24);
}

/** movbe Gv, Mv (0F 38 F0) and Mv, Gv (F1). */
const movbeLoad: Handler = (cpu, d) => {
  const size = d.osz;
  const v = cpu.rd(cpu.ea(d), size);
  if (size === 2) cpu.setReg(d.reg, 2, ((v & 0xff) << 8) | ((v >> 8) & 0xff), 0);
  else if (size === 4) cpu.setReg(d.reg, 4, bswap32(v), 0);
  else cpu.setReg(d.reg, 8, bswap32(cpu.t), bswap32(v));
};
const movbeStore: Handler = (cpu, d) => {
  const size = d.osz;
  const v = cpu.getReg(d.reg, size);
  const lin = cpu.ea(d);
  if (size === 2) cpu.wr(lin, 2, ((v & 0xff) << 8) | ((v >> 8) & 0xff), 0);
  else if (size === 4) cpu.wr(lin, 4, bswap32(v), 0);
  else cpu.wr(lin, 8, bswap32(cpu.t), bswap32(v));
};

/** bswap r32/r64 (0F C8+r); the 16-bit form is undefined: it gives 0 on current CPUs. */
const bswap: Handler = (cpu, d) => {
  const r = cpu.r, i = d.rm * 2;
  if (d.osz === 8) { const lo = r[i]; r[i] = bswap32(r[i + 1]); r[i + 1] = bswap32(lo); }
  else if (d.osz === 4) { r[i] = bswap32(r[i]); r[i + 1] = 0; }
  else r[i] = r[i] & ~0xffff;
};

/** xchg E, G (86, 87; always locked with memory) and 90+r (xchg eAX, r). */
const xchgEG: Handler = (cpu, d) => {
  const size = d.osz;
  const g = cpu.getG(d, size), gh = cpu.t;
  if (d.mod === 3) {
    const e = cpu.getReg(size === 1 ? d.rm8 : d.rm, size), eh = cpu.t;
    cpu.setReg(size === 1 ? d.rm8 : d.rm, size, g, gh);
    cpu.setG(d, size, e, eh);
  } else {
    const lin = cpu.ea(d);
    const e = cpu.rd(lin, size), eh = cpu.t;
    cpu.wr(lin, size, g, gh);
    cpu.setG(d, size, e, eh);
  }
};
const xchgAcc: Handler = (cpu, d) => {
  const size = d.osz, i = d.rm;
  const a = cpu.getReg(0, size), ah = cpu.t;
  const b = cpu.getReg(i, size), bh = cpu.t;
  cpu.setReg(0, size, b, bh);
  cpu.setReg(i, size, a, ah);
};
/** 90: nop, pause (F3 90), or xchg r8, rax with REX.B. */
const nop90: Handler = (cpu, d) => { if (d.rm !== 0) xchgAcc(cpu, d); else if (d.osz === 4 && cpu.mode === Mode.Long64) { /* xchg eax,eax is nop, no zero-extension */ } };

/** xadd E, G */
const xadd: Handler = (cpu, d) => {
  const size = d.osz;
  const lin = d.mod === 3 ? 0 : cpu.ea(d);
  const e = cpu.getE(d, size, lin), eh = size === 8 ? cpu.t : 0;
  const g = cpu.getG(d, size), gh = size === 8 ? cpu.t : 0;
  const r = aluCompute(cpu, Alu.ADD, size, e, eh, g, gh), rh = size === 8 ? cpu.t : 0;
  // Register form: the source takes the old destination first, so xadd r, r leaves the sum.
  // Memory form: the write goes first, so a faulting store changes no register.
  if (d.mod === 3) { cpu.setG(d, size, e, eh); cpu.setE(d, size, lin, r, rh); }
  else { cpu.setE(d, size, lin, r, rh); cpu.setG(d, size, e, eh); }
  setLazy(cpu.f, K.ADD, size, e, eh, g, gh, r, rh);
};

/** cmpxchg E, G: compare accumulator with E; equal: E = G, else accumulator = E. */
const cmpxchg: Handler = (cpu, d) => {
  const size = d.osz;
  const lin = d.mod === 3 ? 0 : cpu.ea(d);
  const e = cpu.getE(d, size, lin), eh = size === 8 ? cpu.t : 0;
  const a = cpu.getReg(0, size), ah = size === 8 ? cpu.t : 0;
  const r = aluCompute(cpu, Alu.CMP, size, a, ah, e, eh), rh = size === 8 ? cpu.t : 0;
  const eq = e === a && eh === ah;
  if (eq) {
    const g = cpu.getG(d, size), gh = cpu.t;
    cpu.setE(d, size, lin, g, gh);
  } else {
    // The destination is written back with its own value (a locked RMW always writes).
    if (d.mod !== 3) cpu.wr(lin, size, e, eh);
    cpu.setReg(0, size, e, eh);
  }
  setLazy(cpu.f, K.SUB, size, a, ah, e, eh, r, rh);
};

/** cmpxchg8b / cmpxchg16b (0F C7 /1) */
const cmpxchg8b16b: Handler = (cpu, d) => {
  const r = cpu.r, m = cpu.mem;
  const lin = cpu.ea(d);
  let eq: boolean;
  if (d.osz === 8) {
    if (lin % 16 !== 0) throw new CpuFault(Vec.GP, 0);
    m.probeWrite(lin, 16);
    const m0 = m.rd64(lin), m0h = m.hi;
    const m1 = m.rd64(lin + 8), m1h = m.hi;
    eq = m0 === r[0] && m0h === r[1] && m1 === r[4] && m1h === r[5];
    if (eq) { m.wr64(lin, r[6], r[7]); m.wr64(lin + 8, r[2], r[3]); }
    else { m.wr64(lin, m0, m0h); m.wr64(lin + 8, m1, m1h); r[0] = m0; r[1] = m0h; r[4] = m1; r[5] = m1h; }
  } else {
    m.probeWrite(lin, 8);
    const m0 = m.rd64(lin), m1 = m.hi;
    eq = m0 === r[0] && m1 === r[4];
    if (eq) m.wr64(lin, r[6], r[2]);
    else { m.wr64(lin, m0, m1); r[0] = m0; r[1] = 0; r[4] = m1; r[5] = 0; }
  }
  // Only ZF changes.
  const f = cpu.f;
  materialize(f);
  f[FS.FLAGS] = (f[FS.FLAGS] & ~F.ZF) | (eq ? F.ZF : 0);
};

/** cbw/cwde/cdqe (98) and cwd/cdq/cqo (99) */
const cbw: Handler = (cpu, d) => {
  const r = cpu.r;
  if (d.osz === 2) r[0] = (r[0] & ~0xffff) | (((r[0] << 24) >> 24) & 0xffff);
  else if (d.osz === 4) { r[0] = (r[0] << 16) >> 16; r[1] = 0; }
  else r[1] = r[0] >> 31;
};
const cwd: Handler = (cpu, d) => {
  const r = cpu.r;
  if (d.osz === 2) r[4] = (r[4] & ~0xffff) | (((r[0] << 16) >> 31) & 0xffff);
  else if (d.osz === 4) { r[4] = r[0] >> 31; r[5] = 0; }
  else { const s = r[1] >> 31; r[4] = s; r[5] = s; }
};

/** cmovcc Gv, Ev: the source is read (and may fault) even when the condition is false;
 *  a 32-bit cmov zero-extends the destination either way. */
function cmov(cc: number): Handler {
  return (cpu, d) => {
    const size = d.osz;
    const v = d.mod === 3 ? cpu.getReg(d.rm, size) : cpu.rd(cpu.ea(d), size);
    const hi = cpu.t;
    if (cond(cpu.f, cc)) cpu.setReg(d.reg, size, v, hi);
    else if (size === 4) cpu.r[d.reg * 2 + 1] = 0;
  };
}
function setcc(cc: number): Handler {
  return (cpu, d) => {
    const lin = d.mod === 3 ? 0 : cpu.ea(d);
    cpu.setE(d, 1, lin, cond(cpu.f, cc) ? 1 : 0, 0);
  };
}

/** xlat: al = [seg:rbx + al] */
const xlat: Handler = (cpu, d) => {
  const r = cpu.r;
  const s = (r[6] >>> 0) + (r[0] & 0xff);
  const lin = cpu.segAddr(d.seg, s | 0, (r[7] + (s >= 4294967296 ? 1 : 0)) | 0, d.asz);
  cpu.setReg(0, 1, cpu.mem.rd8(lin), 0);
};

/** mov AL/eAX <-> moffs (A0..A3) */
function moffs(load: boolean): Handler {
  return (cpu, d) => {
    const lin = cpu.segAddr(d.seg, d.imm, d.immHi, d.asz);
    if (load) { const v = cpu.rd(lin, d.osz); cpu.setReg(0, d.osz, v, cpu.t); }
    else { const v = cpu.getReg(0, d.osz); cpu.wr(lin, d.osz, v, cpu.t); }
  };
}

def(0, 0x88, { modrm: true, byte: true, h: movEG });
def(0, 0x89, { modrm: true, h: movEG });
def(0, 0x8a, { modrm: true, byte: true, h: movGE });
def(0, 0x8b, { modrm: true, h: movGE });
def(0, 0x8d, { modrm: true, h: lea });
def(0, 0xc6, { modrm: true, byte: true, imm: Imm.Ib, sel: group([movEI]) });
def(0, 0xc7, { modrm: true, imm: Imm.Iz, sel: group([movEI]) });
defRange(0, 0xb0, 8, { byte: true, imm: Imm.Ib, h: movRI });
defRange(0, 0xb8, 8, { imm: Imm.Iv, h: movRI });
def(0, 0xa0, { byte: true, imm: Imm.Moffs, h: moffs(true) });
def(0, 0xa1, { imm: Imm.Moffs, h: moffs(true) });
def(0, 0xa2, { byte: true, imm: Imm.Moffs, h: moffs(false) });
def(0, 0xa3, { imm: Imm.Moffs, h: moffs(false) });
def(OpMap.X0F, 0xb6, { modrm: true, h: movx(1, false) });
def(OpMap.X0F, 0xb7, { modrm: true, h: movx(2, false) });
def(OpMap.X0F, 0xbe, { modrm: true, h: movx(1, true) });
def(OpMap.X0F, 0xbf, { modrm: true, h: movx(2, true) });
// 63: movsxd in 64-bit mode; arpl in legacy modes (see system.ts).
export const movsxdHandler = movsxd;
def(OpMap.X0F38, 0xf0, { modrm: true, sel: (d) => (d.mod !== 3 && d.mp !== 3 /* F2 is crc32 */ ? movbeLoad : undefined) });
def(OpMap.X0F38, 0xf1, { modrm: true, sel: (d) => (d.mod !== 3 && d.mp !== 3 ? movbeStore : undefined) });
defRange(OpMap.X0F, 0xc8, 8, { h: bswap });
def(0, 0x86, { modrm: true, byte: true, h: xchgEG, lock: true });
def(0, 0x87, { modrm: true, h: xchgEG, lock: true });
def(0, 0x90, { h: nop90 });
defRange(0, 0x91, 7, { h: xchgAcc });
def(OpMap.X0F, 0xc0, { modrm: true, byte: true, h: xadd, lock: true });
def(OpMap.X0F, 0xc1, { modrm: true, h: xadd, lock: true });
def(OpMap.X0F, 0xb0, { modrm: true, byte: true, h: cmpxchg, lock: true });
def(OpMap.X0F, 0xb1, { modrm: true, h: cmpxchg, lock: true });
def(0, 0x98, { h: cbw });
def(0, 0x99, { h: cwd });
for (let cc = 0; cc < 16; cc++) {
  def(OpMap.X0F, 0x40 + cc, { modrm: true, h: cmov(cc) });
  def(OpMap.X0F, 0x90 + cc, { modrm: true, byte: true, h: setcc(cc) });
}
def(0, 0xd7, { h: xlat });
def(OpMap.X0F, 0xc7, { modrm: true, lock: (d) => (d.reg & 7) === 1, sel: (d) => (d.mod !== 3 && (d.reg & 7) === 1 ? cmpxchg8b16b : undefined) });
