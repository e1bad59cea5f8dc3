// Control transfer and the stack: jcc, jmp, call, ret, loop*, jrcxz, push, pop, pushf,
// popf, enter, leave, int3, int n, into, int1, and the FF group.

import type { Cpu } from '../cpu.js';
import { CpuFault, Vec } from '../fault.js';
import { cond, getFlags, setFlags, getZF } from '../flags.js';
import { def, defRange, group, Imm, Map as OpMap, type Handler, type Insn } from '../insn.js';
import { F, Mode, Seg } from '../state.js';
import { decE, incE } from './alu.js';
import { callFarIndirect, jmpFarIndirect } from './system.js';

/** Operand size of a near branch: 64 in long mode (Intel ignores 66), else the operand size. */
function bsz(cpu: Cpu, d: Insn): number { return cpu.mode === Mode.Long64 ? 8 : d.osz; }

function jcc(cc: number): Handler {
  return (cpu, d) => { if (cond(cpu.f, cc)) cpu.jumpRel(d.imm, bsz(cpu, d)); };
}
const jmpRel: Handler = (cpu, d) => cpu.jumpRel(d.imm, bsz(cpu, d));

const callRel: Handler = (cpu, d) => {
  const sz = bsz(cpu, d);
  const ret = cpu.ripHalves(), retHi = cpu.t;
  cpu.jumpRel(d.imm, sz);
  cpu.push(sz, ret, retHi);
};

/** Near indirect target from E (FF /2, /4): the operand size is 64 in long mode. */
function nearTarget(cpu: Cpu, d: Insn): number {
  const sz = bsz(cpu, d);
  return d.mod === 3 ? cpu.getReg(d.rm, sz) : cpu.rd(cpu.ea(d), sz);
}
const jmpE: Handler = (cpu, d) => { const lo = nearTarget(cpu, d); cpu.jumpTo(lo, cpu.t, bsz(cpu, d)); };
const callE: Handler = (cpu, d) => {
  const sz = bsz(cpu, d);
  const lo = nearTarget(cpu, d), hi = cpu.t;
  const ret = cpu.ripHalves(), retHi = cpu.t;
  cpu.jumpTo(lo, hi, sz);
  cpu.push(sz, ret, retHi);
};

function retNear(withImm: boolean): Handler {
  return (cpu, d) => {
    const sz = bsz(cpu, d);
    const lo = cpu.peek(sz, 0), hi = sz === 8 ? cpu.t : 0;
    cpu.jumpTo(lo, hi, sz);
    cpu.adjustSp(sz + (withImm ? d.imm : 0));
  };
}

/** loop/loope/loopne (E0..E2) and jrcxz (E3): the counter is rcx/ecx/cx by address size. */
function counter(cpu: Cpu, asz: number): boolean {
  const r = cpu.r;
  return asz === 8 ? (r[2] | r[3]) !== 0 : asz === 4 ? r[2] !== 0 : (r[2] & 0xffff) !== 0;
}
function decCounter(cpu: Cpu, asz: number): void {
  const r = cpu.r;
  if (asz === 8) { if (r[2] === 0) r[3] = (r[3] - 1) | 0; r[2] = (r[2] - 1) | 0; }
  else if (asz === 4) { r[2] = (r[2] - 1) | 0; r[3] = 0; }
  else r[2] = (r[2] & ~0xffff) | ((r[2] - 1) & 0xffff);
}
function loop(kind: number): Handler {
  return (cpu, d) => {
    const r = cpu.r;
    const saveLo = r[2], saveHi = r[3];
    decCounter(cpu, d.asz);
    let take = counter(cpu, d.asz);
    if (kind === 1) take = take && getZF(cpu.f) === 1;      // loope
    else if (kind === 0) take = take && getZF(cpu.f) === 0; // loopne
    if (take) {
      try { cpu.jumpRel(d.imm, bsz(cpu, d)); } catch (e) { r[2] = saveLo; r[3] = saveHi; throw e; }
    }
  };
}
const jrcxz: Handler = (cpu, d) => { if (!counter(cpu, d.asz)) cpu.jumpRel(d.imm, bsz(cpu, d)); };

// ---- push / pop -----------------------------------------------------------------------

const pushR: Handler = (cpu, d) => { const v = cpu.getReg(d.rm, d.osz); cpu.push(d.osz, v, cpu.t); };
const popR: Handler = (cpu, d) => {
  const v = cpu.peek(d.osz, 0), hi = cpu.t;
  cpu.adjustSp(d.osz);
  cpu.setReg(d.rm, d.osz, v, hi);
};
const pushI: Handler = (cpu, d) => cpu.push(d.osz, d.imm, d.immHi);
const pushE: Handler = (cpu, d) => {
  const v = d.mod === 3 ? cpu.getReg(d.rm, d.osz) : cpu.rd(cpu.ea(d), d.osz);
  cpu.push(d.osz, v, cpu.t);
};
/** pop E (8F /0): RSP is incremented before the destination address is computed. */
const popE: Handler = (cpu, d) => {
  const sz = d.osz;
  const v = cpu.peek(sz, 0), hi = cpu.t;
  if (d.mod === 3) { cpu.adjustSp(sz); cpu.setReg(d.rm, sz, v, hi); return; }
  const r = cpu.r;
  const sl = r[8], sh = r[9];
  cpu.adjustSp(sz);
  try { cpu.wr(cpu.ea(d), sz, v, hi); } catch (e) { r[8] = sl; r[9] = sh; throw e; }
};

// pushf / popf -----------------------------------------------------------------------

const pushf: Handler = (cpu, d) => {
  const fl = getFlags(cpu.f) & ~(F.VM | F.RF);
  cpu.push(d.osz, fl, 0);
};

/** The RFLAGS bits POPF may change at the current privilege. */
export function popfMask(cpu: Cpu, size: number): number {
  let m = F.CF | F.PF | F.AF | F.ZF | F.SF | F.TF | F.DF | F.OF | F.NT | F.AC | F.ID;
  const iopl = (cpu.f[0] >> 12) & 3;
  if (cpu.cpl === 0) m |= F.IOPL | F.IF;
  else if (cpu.cpl <= iopl) m |= F.IF;
  if (size === 2) m &= 0xffff;
  return m;
}
const popf: Handler = (cpu, d) => {
  const v = cpu.peek(d.osz, 0);
  cpu.adjustSp(d.osz);
  const old = getFlags(cpu.f);
  const m = popfMask(cpu, d.osz);
  setFlags(cpu.f, ((old & ~m) | (v & m)) & ~F.RF);
  cpu.endBlock(); // IF or TF may have changed
};

// enter / leave ------------------------------------------------------------------------

const enter: Handler = (cpu, d) => {
  const sz = d.osz;
  const size = d.imm & 0xffff, level = d.imm2 & 31;
  const r = cpu.r;
  const ssz = cpu.stackSize();
  const save = [r[8], r[9], r[10], r[11]];
  try {
    const bp = cpu.getReg(5, sz), bph = cpu.t;
    cpu.push(sz, bp, bph);
    const frameLo = r[8], frameHi = r[9];
    if (level > 0) {
      // Copy level-1 frame pointers from the old frame, then push the new frame pointer.
      let bpLo = save[2], bpHi = save[3];
      for (let i = 1; i < level; i++) {
        const s = (bpLo >>> 0) - sz;
        if (ssz === 8) { bpHi = s < 0 ? (bpHi - 1) | 0 : bpHi; bpLo = s | 0; }
        else if (ssz === 4) bpLo = s | 0;
        else bpLo = (bpLo & ~0xffff) | (s & 0xffff);
        const lin = ssz === 8 ? cpu.linear64(bpLo, bpHi, true) : ((cpu.seg.baseLo[Seg.SS] >>> 0) + (ssz === 4 ? bpLo >>> 0 : bpLo & 0xffff)) % 4294967296;
        const v = cpu.rd(lin, sz), vh = cpu.t;
        cpu.push(sz, v, vh);
      }
      cpu.push(sz, frameLo, frameHi);
    }
    // rbp = frame; rsp -= size
    if (sz === 8) { r[10] = frameLo; r[11] = frameHi; }
    else if (sz === 4) { r[10] = frameLo; if (cpu.mode === Mode.Long64) r[11] = 0; }
    else r[10] = (r[10] & ~0xffff) | (frameLo & 0xffff);
    cpu.adjustSp(-size);
    // Probe the new stack top as hardware does (a write check of the lowest byte).
    if (size > 0) cpu.peek(1, 0);
  } catch (e) {
    r[8] = save[0]; r[9] = save[1]; r[10] = save[2]; r[11] = save[3];
    throw e;
  }
};

const leave: Handler = (cpu, d) => {
  const r = cpu.r;
  const ssz = cpu.stackSize();
  const sl = r[8], sh = r[9];
  if (ssz === 8) { r[8] = r[10]; r[9] = r[11]; }
  else if (ssz === 4) r[8] = r[10];
  else r[8] = (r[8] & ~0xffff) | (r[10] & 0xffff);
  try {
    const v = cpu.peek(d.osz, 0), hi = cpu.t;
    cpu.adjustSp(d.osz);
    cpu.setReg(5, d.osz, v, hi);
  } catch (e) { r[8] = sl; r[9] = sh; throw e; }
};

// software interrupts ----------------------------------------------------------------

const int3: Handler = () => { throw new CpuFault(Vec.BP, 0, 0, true); };
const intN: Handler = (_cpu, d) => { throw new CpuFault(d.imm & 0xff, 0, 0, true); };
const into: Handler = (cpu) => { if (cond(cpu.f, 0)) throw new CpuFault(Vec.OF, 0, 0, true); };
/** int1 (icebp): a #DB trap that is not a software interrupt for gate checks. */
const int1: Handler = (cpu) => { void cpu; throw new CpuFault(Vec.DB, 0, 0, true); };

for (let cc = 0; cc < 16; cc++) {
  def(0, 0x70 + cc, { imm: Imm.Ib, f64: true, h: jcc(cc), end: true });
  def(OpMap.X0F, 0x80 + cc, { imm: Imm.Iz, f64: true, h: jcc(cc), end: true, cycles: 1 });
}
def(0, 0xeb, { imm: Imm.Ib, f64: true, h: jmpRel, end: true });
def(0, 0xe9, { imm: Imm.Iz, f64: true, h: jmpRel, end: true });
def(0, 0xe8, { imm: Imm.Iz, f64: true, h: callRel, end: true, cycles: 2 });
def(0, 0xc3, { f64: true, h: retNear(false), end: true, cycles: 2 });
def(0, 0xc2, { imm: Imm.Iw, f64: true, h: retNear(true), end: true, cycles: 2 });
def(0, 0xe0, { imm: Imm.Ib, f64: true, h: loop(0), end: true });
def(0, 0xe1, { imm: Imm.Ib, f64: true, h: loop(1), end: true });
def(0, 0xe2, { imm: Imm.Ib, f64: true, h: loop(2), end: true });
def(0, 0xe3, { imm: Imm.Ib, f64: true, h: jrcxz, end: true });
defRange(0, 0x50, 8, { d64: true, h: pushR });
defRange(0, 0x58, 8, { d64: true, h: popR });
def(0, 0x68, { d64: true, imm: Imm.Iz, h: pushI });
def(0, 0x6a, { d64: true, imm: Imm.Ib, h: pushI });
def(0, 0x8f, { modrm: true, d64: true, sel: group([popE]) });
def(0, 0x9c, { d64: true, h: pushf });
def(0, 0x9d, { d64: true, h: popf, end: true });
def(0, 0xc8, { d64: true, imm: Imm.IwIb, h: enter, cycles: 4 });
def(0, 0xc9, { d64: true, h: leave });
def(0, 0xcc, { h: int3, end: true });
def(0, 0xcd, { imm: Imm.IbU, h: intN, end: true });
def(0, 0xce, { h: into, noLong: true, end: true });
def(0, 0xf1, { h: int1, end: true });

// FF: inc, dec, call near, call far, jmp near, jmp far, push. Near forms are 64-bit in long
// mode; the far forms take their operand size from the prefixes (REX.W gives m16:64).
const ffGroup = group([incE, decE, callE, callFarIndirect, jmpE, jmpFarIndirect, pushE]);
def(0, 0xff, {
  modrm: true, lock: (d) => (d.reg & 7) < 2, end: true,
  sel: (d) => {
    const r = d.reg & 7;
    if ((r === 3 || r === 5) && d.mod === 3) return undefined;
    if (d.mode === Mode.Long64 && (r === 2 || r === 4 || r === 6) && d.osz === 4) d.osz = 8;
    return ffGroup(d);
  },
});
