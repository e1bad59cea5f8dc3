// String instructions: movs cmps stos lods scas (A4..A7, AA..AF) and ins/outs (6C..6F),
// with rep / repe / repne.
//
// Operands: the source is seg:rSI (DS, or the segment override; in long mode only FS and
// GS have a base), the destination ES:rDI (no override). The address size (67 prefix)
// picks rSI/rDI/rCX at 64, 32 or 16 bits; 32-bit updates zero-extend, 16-bit ones keep the
// upper bits. DF selects the direction.
//
// rep: with a count of 0 nothing happens. Each iteration is complete before the next
// begins (its element moved, rSI/rDI/rCX updated), so a fault mid-way leaves the registers
// at the completed iterations with RIP at the instruction: restartable, as on hardware.
// At most MAX_ITER iterations run per execution; if work remains, RIP is set back to the
// instruction so the next execution resumes it. Nothing architectural can tell the
// difference, and interrupts are taken between the pieces, as hardware takes them between
// iterations. ins/outs check I/O permission (IOPL, else the TSS bitmap) once per execution.

import type { Cpu } from '../cpu.js';
import { FS, K, setLazy } from '../flags.js';
import { def, Mp, P, type Handler, type Insn } from '../insn.js';
import { F, Mode, Seg } from '../state.js';
import { aluCompute, Alu } from './alu.js';
import { checkIoPermission } from './io.js';

const TWO32 = 4294967296;
/** Iterations per execution of a rep string instruction (bounds interrupt latency). */
export const MAX_ITER = 4096;

const SI = 6, DI = 7, CX = 1;

/** Linear address of seg:reg at the instruction's address size. In long mode a
 *  non-canonical address is #GP even with an SS override: this host raises #SS only for
 *  rsp/rbp-based addresses, and SS has no base there, so DS stands in for it. */
function addrOf(cpu: Cpu, seg: number, reg: number, asz: number): number {
  if (seg === Seg.SS && cpu.mode === Mode.Long64) seg = Seg.DS;
  return cpu.segAddr(seg, cpu.r[reg * 2], cpu.r[reg * 2 + 1], asz);
}

/** reg += delta at the address size. */
function advance(cpu: Cpu, reg: number, asz: number, delta: number): void {
  const r = cpu.r, i = reg * 2;
  if (asz === 8) {
    const s = (r[i] >>> 0) + delta;
    r[i] = s | 0;
    if (s >= TWO32) r[i + 1] = (r[i + 1] + 1) | 0;
    else if (s < 0) r[i + 1] = (r[i + 1] - 1) | 0;
  } else if (asz === 4) { r[i] = (r[i] + delta) | 0; r[i + 1] = 0; }
  else r[i] = (r[i] & ~0xffff) | ((r[i] + delta) & 0xffff);
}

function delta(cpu: Cpu, size: number): number {
  return (cpu.f[FS.FLAGS] & F.DF) !== 0 ? -size : size;
}

/** ZF of the last cmps/scas iteration (for repe/repne). */
let lastZero = false;

function compare(cpu: Cpu, size: number, a: number, ah: number, b: number, bh: number): void {
  const r = aluCompute(cpu, Alu.SUB, size, a, ah, b, bh), rh = size === 8 ? cpu.t : 0;
  setLazy(cpu.f, K.SUB, size, a, ah, b, bh, r, rh);
  lastZero = r === 0 && rh === 0;
}

/** One iteration of an instruction, registers updated (rCX excepted). */
type Step = (cpu: Cpu, d: Insn) => void;

const movsStep: Step = (cpu, d) => {
  const size = d.osz, asz = d.asz;
  const v = cpu.rd(addrOf(cpu, d.seg, SI, asz), size), vh = cpu.t;
  cpu.wr(addrOf(cpu, Seg.ES, DI, asz), size, v, vh);
  const dd = delta(cpu, size);
  advance(cpu, SI, asz, dd); advance(cpu, DI, asz, dd);
};
const cmpsStep: Step = (cpu, d) => {
  const size = d.osz, asz = d.asz;
  // Which operand is read first decides the #PF when both are bad. The host reads ES:rDI
  // first, except in repe cmpsb (its fast path, presumably), which reads seg:rSI first.
  let a: number, ah = 0, b: number, bh = 0;
  if (size === 1 && d.mp === Mp.F3) {
    a = cpu.rd(addrOf(cpu, d.seg, SI, asz), 1);
    b = cpu.rd(addrOf(cpu, Seg.ES, DI, asz), 1);
  } else {
    b = cpu.rd(addrOf(cpu, Seg.ES, DI, asz), size); if (size === 8) bh = cpu.t;
    a = cpu.rd(addrOf(cpu, d.seg, SI, asz), size); if (size === 8) ah = cpu.t;
  }
  const dd = delta(cpu, size);
  advance(cpu, SI, asz, dd); advance(cpu, DI, asz, dd);
  compare(cpu, size, a, ah, b, bh);
};
const stosStep: Step = (cpu, d) => {
  const size = d.osz, asz = d.asz;
  const v = cpu.getReg(0, size), vh = cpu.t;
  cpu.wr(addrOf(cpu, Seg.ES, DI, asz), size, v, vh);
  advance(cpu, DI, asz, delta(cpu, size));
};
const lodsStep: Step = (cpu, d) => {
  const size = d.osz, asz = d.asz;
  const v = cpu.rd(addrOf(cpu, d.seg, SI, asz), size), vh = cpu.t;
  cpu.setReg(0, size, v, vh);
  advance(cpu, SI, asz, delta(cpu, size));
};
const scasStep: Step = (cpu, d) => {
  const size = d.osz, asz = d.asz;
  const b = cpu.rd(addrOf(cpu, Seg.ES, DI, asz), size), bh = size === 8 ? cpu.t : 0;
  const a = cpu.getReg(0, size), ah = size === 8 ? cpu.t : 0;
  advance(cpu, DI, asz, delta(cpu, size));
  compare(cpu, size, a, ah, b, bh);
};

/** ins/outs move 1, 2 or 4 bytes (REX.W does not make them 64-bit). */
function ioSize(d: Insn): number { return d.osz === 8 ? 4 : d.osz; }

const insStep: Step = (cpu, d) => {
  const size = ioSize(d), asz = d.asz;
  const lin = addrOf(cpu, Seg.ES, DI, asz);
  // Check the destination before the port read: a device read can have side effects.
  cpu.mem.probeWrite(lin, size);
  const v = cpu.ports.portIn(cpu.r[4] & 0xffff, size); // DX
  cpu.wr(lin, size, v, 0);
  advance(cpu, DI, asz, delta(cpu, size));
};
const outsStep: Step = (cpu, d) => {
  const size = ioSize(d), asz = d.asz;
  const v = cpu.rd(addrOf(cpu, d.seg, SI, asz), size);
  cpu.ports.portOut(cpu.r[4] & 0xffff, size, v); // DX
  advance(cpu, SI, asz, delta(cpu, size));
};

/** rCX at the address size is nonzero. */
function countNonZero(cpu: Cpu, asz: number): boolean {
  const r = cpu.r;
  return asz === 8 ? (r[2] | r[3]) !== 0 : asz === 4 ? r[2] !== 0 : (r[2] & 0xffff) !== 0;
}
/** min(rCX, MAX_ITER) at the address size. */
function boundedCount(cpu: Cpu, asz: number): number {
  const r = cpu.r;
  if (asz === 8 && r[3] !== 0) return MAX_ITER;
  const c = asz === 2 ? r[2] & 0xffff : r[2] >>> 0;
  return c < MAX_ITER ? c : MAX_ITER;
}

/**
 * The instruction with its rep prefixes. `cond`: cmps/scas, where F3 is repe (stop when
 * ZF = 0) and F2 repne (stop when ZF = 1); for the others either prefix is rep.
 */
function strHandler(step: Step, cond: boolean, io: boolean): Handler {
  return (cpu, d) => {
    // The port is fixed for the whole instruction: check it once, before any iteration.
    if (io) checkIoPermission(cpu, cpu.r[4] & 0xffff, ioSize(d));
    if ((d.pfx & (P.REP | P.REPNE)) === 0) { step(cpu, d); return; }
    const asz = d.asz;
    const n = boundedCount(cpu, asz);
    const repne = d.mp === Mp.F2;
    let i = 0;
    while (i < n) {
      step(cpu, d);
      advance(cpu, CX, asz, -1);
      i++;
      if (cond && lastZero === repne) break;
    }
    cpu.cycles += i; // virtual time grows with the work (a fault skips this: no matter)
    if (i === MAX_ITER && countNonZero(cpu, asz) && !(cond && lastZero === repne)) {
      // Resume on the next execution (see the header).
      cpu.rip = cpu.ripStart;
      cpu.endBlock();
    }
  };
}

def(0, 0xa4, { byte: true, h: strHandler(movsStep, false, false) });
def(0, 0xa5, { h: strHandler(movsStep, false, false) });
def(0, 0xa6, { byte: true, h: strHandler(cmpsStep, true, false) });
def(0, 0xa7, { h: strHandler(cmpsStep, true, false) });
def(0, 0xaa, { byte: true, h: strHandler(stosStep, false, false) });
def(0, 0xab, { h: strHandler(stosStep, false, false) });
def(0, 0xac, { byte: true, h: strHandler(lodsStep, false, false) });
def(0, 0xad, { h: strHandler(lodsStep, false, false) });
def(0, 0xae, { byte: true, h: strHandler(scasStep, true, false) });
def(0, 0xaf, { h: strHandler(scasStep, true, false) });
// As in/out (io.ts): a port access can raise an interrupt line, so end the block.
def(0, 0x6c, { byte: true, h: strHandler(insStep, false, true), end: true, cycles: 30 });
def(0, 0x6d, { h: strHandler(insStep, false, true), end: true, cycles: 30 });
def(0, 0x6e, { byte: true, h: strHandler(outsStep, false, true), end: true, cycles: 30 });
def(0, 0x6f, { h: strHandler(outsStep, false, true), end: true, cycles: 30 });
