// x87 control: fldcw/fnstcw, fnstsw (m16 and AX), fnclex, fninit, fwait, fnstenv/fldenv,
// fnsave/frstor, fincstp/fdecstp, fnop.
//
// Environment layouts are the protected-mode ones (14 bytes with a 16-bit operand size, 28
// otherwise, REX.W ignored as on hardware); real-mode/VM86 layouts are not implemented.

import type { Cpu } from '../cpu.js';
import { CpuFault, Vec } from '../fault.js';
import type { Fpu } from '../fpu.js';
import type { Handler, Insn } from '../insn.js';
import { Cr0 } from '../state.js';
import { classifyTag } from '../fxsave.js';
import { begin, note, summary, Sw } from './x87-core.js';

/** The control word bits that exist; bit 6 reads as 1 (what the host keeps). */
export function normCw(cw: number): number { return (cw & 0x1f3f) | 0x40; }

/** The status word with TOP merged in. */
export function fullSw(f: Fpu): number { return (f.sw & ~0x3800) | ((f.top & 7) << 11); }

export const fnstcw: Handler = (cpu, d) => {
  const f = begin(cpu, false);
  cpu.mem.wr16(cpu.ea(d), f.cw);
};

export const fldcw: Handler = (cpu, d) => {
  const f = begin(cpu, true);
  const cw = cpu.mem.rd16(cpu.ea(d));
  f.cw = normCw(cw);
  f.sw = summary(f.sw, f.cw);
};

export const fnstsw_m16: Handler = (cpu, d) => {
  const f = begin(cpu, false);
  cpu.mem.wr16(cpu.ea(d), fullSw(f));
};

export const fnstsw_ax: Handler = (cpu) => {
  const f = begin(cpu, false);
  cpu.r[0] = (cpu.r[0] & ~0xffff) | fullSw(f);
};

export const fnclex: Handler = (cpu) => {
  const f = begin(cpu, false);
  f.sw &= Sw.CC | 0x3800;
};

export function finit(f: Fpu): void {
  f.cw = 0x037f; f.sw = 0; f.top = 0; f.tw = 0xffff;
  f.fop = 0; f.fipLo = f.fipHi = f.fcs = 0; f.fdpLo = f.fdpHi = f.fds = 0;
}
export const fninit: Handler = (cpu) => finit(begin(cpu, false));

/** fwait: #NM only when both CR0.MP and CR0.TS are set; then the pending #MF. */
export const fwait: Handler = (cpu) => {
  const cr0 = cpu.cr0;
  if ((cr0 & (Cr0.MP | Cr0.TS)) === (Cr0.MP | Cr0.TS)) throw new CpuFault(Vec.NM);
  if ((cpu.fpu.sw & Sw.ES) && (cr0 & Cr0.NE)) throw new CpuFault(Vec.MF);
};

/** fnop; and the 287 leftovers feni/fdisi/fsetpm, no-ops now that do not even wait. */
export const fnop: Handler = (cpu, d) => { begin(cpu, true); note(cpu, d); };
export const fnopControl: Handler = (cpu) => { begin(cpu, false); };

function step(cpu: Cpu, d: Insn, delta: number): void {
  const f = begin(cpu, true);
  note(cpu, d);
  f.top = (f.top + delta) & 7;
  f.sw &= ~Sw.C1;
}
export const fincstp: Handler = (cpu, d) => step(cpu, d, 1);
export const fdecstp: Handler = (cpu, d) => step(cpu, d, -1);

/** The full tag word as fnstenv stores it: each non-empty tag recomputed from the register. */
function fullTags(f: Fpu): number {
  let tw = 0;
  for (let p = 0; p < 8; p++) {
    const t = ((f.tw >> (p * 2)) & 3) === 3 ? 3 : classifyTag(f.signExp[p], f.mantLo[p], f.mantHi[p]);
    tw |= t << (p * 2);
  }
  return tw;
}

/** Write the environment at lin (probed by the caller); returns its size. */
function storeEnv(cpu: Cpu, d: Insn, lin: number): number {
  const f = cpu.fpu, m = cpu.mem;
  const tw = fullTags(f);
  if (d.osz === 2) {
    m.wr16(lin, f.cw); m.wr16(lin + 2, fullSw(f)); m.wr16(lin + 4, tw);
    m.wr16(lin + 6, f.fipLo & 0xffff); m.wr16(lin + 8, f.fcs);
    m.wr16(lin + 10, f.fdpLo & 0xffff); m.wr16(lin + 12, f.fds);
    return 14;
  }
  m.wr32(lin, f.cw | 0xffff0000); m.wr32(lin + 4, fullSw(f) | 0xffff0000); m.wr32(lin + 8, tw | 0xffff0000);
  m.wr32(lin + 12, f.fipLo); m.wr32(lin + 16, (f.fcs & 0xffff) | ((f.fop & 0x7ff) << 16));
  m.wr32(lin + 20, f.fdpLo); m.wr32(lin + 24, (f.fds & 0xffff) | 0xffff0000);
  return 28;
}

/** Read an environment into the state (all memory already read: no faults after this). */
function loadEnv(f: Fpu, env: number[], osz: number): void {
  let cw: number, sw: number, tw: number;
  if (osz === 2) {
    cw = env[0]; sw = env[1]; tw = env[2];
    f.fipLo = env[3]; f.fcs = env[4]; f.fdpLo = env[5]; f.fds = env[6]; f.fop = 0;
  } else {
    cw = env[0] & 0xffff; sw = env[1] & 0xffff; tw = env[2] & 0xffff;
    f.fipLo = env[3]; f.fcs = env[4] & 0xffff; f.fop = (env[4] >>> 16) & 0x7ff;
    f.fdpLo = env[5]; f.fds = env[6] & 0xffff;
  }
  f.fipHi = 0; f.fdpHi = 0;
  f.cw = normCw(cw);
  f.top = (sw >> 11) & 7;
  f.sw = summary(sw & ~0x3800, f.cw);
  // Only empty/non-empty is taken from the image; the rest follows the register contents.
  let t = 0;
  for (let p = 0; p < 8; p++) {
    t |= (((tw >> (p * 2)) & 3) === 3 ? 3 : classifyTag(f.signExp[p], f.mantLo[p], f.mantHi[p])) << (p * 2);
  }
  f.tw = t;
}

/** The order the host touches a multi-field image in, which decides the #PF address: the
 *  first field (w bytes), then the last byte, then the rest. */
export function probeImage(cpu: Cpu, lin: number, size: number, w: number, write: boolean): void {
  const m = cpu.mem;
  if (write) { m.probeWrite(lin, w); m.probeWrite(lin + size - 1, 1); m.probeWrite(lin, size); }
  else { for (let i = 0; i < w; i++) m.rd8(lin + i); m.rd8(lin + size - 1); }
}

function readEnv(cpu: Cpu, lin: number, osz: number): number[] {
  const m = cpu.mem;
  const env: number[] = [];
  for (let i = 0; i < 7; i++) env.push(osz === 2 ? m.rd16(lin + i * 2) : m.rd32(lin + i * 4));
  return env;
}

export const fnstenv: Handler = (cpu, d) => {
  const f = begin(cpu, false);
  const lin = cpu.ea(d);
  probeImage(cpu, lin, d.osz === 2 ? 14 : 28, d.osz === 2 ? 2 : 4, true);
  storeEnv(cpu, d, lin);
  f.cw |= 0x3f; // all exceptions masked afterwards
  f.sw = summary(f.sw, f.cw);
};

export const fldenv: Handler = (cpu, d) => {
  const f = begin(cpu, true);
  const lin = cpu.ea(d);
  probeImage(cpu, lin, d.osz === 2 ? 14 : 28, d.osz === 2 ? 2 : 4, false);
  loadEnv(f, readEnv(cpu, lin, d.osz), d.osz);
};

export const fnsave: Handler = (cpu, d) => {
  const f = begin(cpu, false);
  const lin = cpu.ea(d);
  const envSize = d.osz === 2 ? 14 : 28;
  probeImage(cpu, lin, envSize + 80, d.osz === 2 ? 2 : 4, true);
  storeEnv(cpu, d, lin);
  const m = cpu.mem;
  for (let i = 0; i < 8; i++) {
    const p = (f.top + i) & 7, o = lin + envSize + i * 10;
    m.wr32(o, f.mantLo[p]); m.wr32(o + 4, f.mantHi[p]); m.wr16(o + 8, f.signExp[p]);
  }
  finit(f);
};

export const frstor: Handler = (cpu, d) => {
  const f = begin(cpu, true);
  const lin = cpu.ea(d);
  const m = cpu.mem;
  const envSize = d.osz === 2 ? 14 : 28;
  probeImage(cpu, lin, envSize + 80, d.osz === 2 ? 2 : 4, false);
  const env = readEnv(cpu, lin, d.osz);
  const regs: number[] = [];
  for (let i = 0; i < 8; i++) {
    const o = lin + envSize + i * 10;
    regs.push(m.rd32(o), m.rd32(o + 4), m.rd16(o + 8));
  }
  const top = ((d.osz === 2 ? env[1] : env[1] & 0xffff) >> 11) & 7;
  for (let i = 0; i < 8; i++) {
    const p = (top + i) & 7;
    f.mantLo[p] = regs[i * 3]; f.mantHi[p] = regs[i * 3 + 1]; f.signExp[p] = regs[i * 3 + 2];
  }
  loadEnv(f, env, d.osz);
};

