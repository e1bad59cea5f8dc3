// Delivery of exceptions and interrupts through the IDT (long mode, protected mode, real
// mode) with the privilege-level stack switch through the TSS and the IST, and the return
// from them (IRET/IRETD/IRETQ), following the INT n and IRET pseudo-code of SDM vol. 2.
//
// Everything is checked and every stack address probed before the first register changes,
// so a fault during delivery (which becomes #DF, or a triple fault) finds the state of the
// interrupted instruction. EXT (bit 0 of an error code) is 1 for events from outside the
// instruction stream: exceptions and external interrupts, not int n / int3 / into.
//
// Not modelled: task gates and task switches (a task gate in the IDT, or IRET with NT set
// outside long mode, is #GP), virtual-8086 mode (IRET to VM=1 is #GP(0)), 16-bit TSSes,
// and the RF bit hardware sets in the image pushed for faults (the delivery code cannot
// tell a fault from an external interrupt on the same vector).

import type { Cpu } from './cpu.js';
import { CpuFault, Vec } from './fault.js';
import { getFlags, setFlags } from './flags.js';
import {
  accOf, checkReturnCS, checkStackSeg, commitSeg, csBase, descBase, descLimit, fetchDesc, markAccessed, newDesc,
  nullInaccessible, setNullSS, setSegCache, sysRd16, sysRd32, targetRip, tssLinear, updateMode, Acc, SysType,
} from './segments.js';
import { Efer, F, Mode, Seg } from './state.js';

const TWO32 = 4294967296;
const TWO48 = 281474976710656;

const csD = newDesc(), ssD = newDesc();

/** Deliver vector through the IDT. soft: int n / int3 / into (gate DPL checked, EXT = 0). */
export function deliverEvent(cpu: Cpu, vector: number, errorCode: number, hasErr: boolean, soft: boolean): void {
  const prev = cpu.mem.implicitSupervisor;
  try {
    if (cpu.mode === Mode.Real) deliverReal(cpu, vector);
    else if (cpu.efer & Efer.LMA) deliverLong(cpu, vector, errorCode, hasErr, soft);
    else deliverProt(cpu, vector, errorCode, hasErr, soft);
  } catch (e) {
    // A fault while delivering int n (bad gate, stack...) is a fault of the int instruction:
    // its frame must point at the instruction, not past it.
    if (soft) cpu.rip = cpu.ripStart;
    throw e;
  } finally {
    cpu.mem.implicitSupervisor = prev;
  }
}

/** The frame of an event delivered to an inner level from CPL 3 is written with supervisor
 *  rights (paged memory checks it so); delivery at the same level keeps the CPL's. */
function frameRights(cpu: Cpu, newCpl: number): void {
  if (cpu.cpl === 3 && newCpl < 3) cpu.mem.implicitSupervisor = true;
}

/** Error code naming an IDT entry: index, IDT bit, EXT. */
function idtErr(vector: number, ext: number): number { return vector * 8 + 2 + ext; }

/** The target code segment of a gate: checks common to both modes. Returns its address. */
function gateTarget(cpu: Cpu, sel: number, ext: number): number {
  if ((sel & 0xfffc) === 0) throw new CpuFault(Vec.GP, ext);
  const a = fetchDesc(cpu, sel, csD, Vec.GP, ext);
  const acc = accOf(csD);
  if ((acc & (Acc.S | Acc.CODE)) !== (Acc.S | Acc.CODE) || ((acc >> 5) & 3) > cpu.cpl) throw new CpuFault(Vec.GP, (sel & 0xfffc) | ext);
  if (!(acc & Acc.P)) throw new CpuFault(Vec.NP, (sel & 0xfffc) | ext);
  return a;
}

function deliverLong(cpu: Cpu, vector: number, errorCode: number, hasErr: boolean, soft: boolean): void {
  const m = cpu.mem;
  const ext = soft ? 0 : 1;
  if (vector * 16 + 15 > cpu.idtrLimit) throw new CpuFault(Vec.GP, idtErr(vector, ext));
  const ga = cpu.idtrBase + vector * 16;
  const w0 = sysRd32(cpu, ga), w1 = sysRd32(cpu, ga + 4), w2 = sysRd32(cpu, ga + 8);
  const type = (w1 >> 8) & 0x1f, dpl = (w1 >> 13) & 3;
  if (type !== SysType.INT && type !== SysType.TRAP) throw new CpuFault(Vec.GP, idtErr(vector, ext));
  if (soft && dpl < cpu.cpl) throw new CpuFault(Vec.GP, idtErr(vector, ext));
  if (!(w1 & 0x8000)) throw new CpuFault(Vec.NP, idtErr(vector, ext));
  const sel = w0 >>> 16;
  const offLo = (w0 & 0xffff) | (w1 & 0xffff0000), offHi = w2;
  const ist = w1 & 7;
  const csAddr = gateTarget(cpu, sel, ext);
  // The handler must be 64-bit code (L=1, D=0).
  if ((csD.hi & 0x600000) !== 0x200000) throw new CpuFault(Vec.GP, (sel & 0xfffc) | ext);
  if (((offHi << 16) >> 16) !== offHi) throw new CpuFault(Vec.GP, ext);
  const newCpl = (accOf(csD) & Acc.CE) ? cpu.cpl : (csD.hi >>> 13) & 3;
  const r = cpu.r;
  let spLo = r[8], spHi = r[9];
  if (ist !== 0 || newCpl !== cpu.cpl) {
    const a = ist !== 0 ? tssLinear(cpu, 36 + (ist - 1) * 8, 8, ext) : tssLinear(cpu, 4 + newCpl * 8, 8, ext);
    spLo = sysRd32(cpu, a); spHi = sysRd32(cpu, a + 4);
    if (((spHi << 16) >> 16) !== spHi) throw new CpuFault(Vec.SS, ext);
  }
  // In IA-32e mode the new RSP is aligned down to 16 bytes before the frame is pushed.
  spLo &= ~0xf;
  const n = hasErr ? 6 : 5;
  const sp = (spHi & 0xffff) * TWO32 + (spLo >>> 0);
  let a = sp - n * 8;
  if (a < 0) a += TWO48;
  frameRights(cpu, newCpl);
  m.probeWrite(a, n * 8);
  const flags = getFlags(cpu.f);
  const ripLo = cpu.ripHalves(), ripHi = cpu.t;
  // Frame, from the top: SS, RSP, RFLAGS, CS, RIP, error code.
  const top = a + n * 8;
  m.wr64(top - 8, cpu.seg.sel[Seg.SS], 0);
  m.wr64(top - 16, r[8], r[9]);
  m.wr64(top - 24, flags, 0);
  m.wr64(top - 32, cpu.seg.sel[Seg.CS], 0);
  m.wr64(top - 40, ripLo, ripHi);
  if (hasErr) m.wr64(top - 48, errorCode, 0);
  markAccessed(cpu, csAddr, csD);
  // Commit.
  r[8] = (spLo - n * 8) | 0;
  r[9] = (spLo >>> 0) < n * 8 ? (spHi - 1) | 0 : spHi;
  if (newCpl !== cpu.cpl) setNullSS(cpu, newCpl);
  setSegCache(cpu, Seg.CS, (sel & 0xfffc) | newCpl, csD);
  cpu.cpl = newCpl;
  cpu.rip = (offHi & 0xffff) * TWO32 + (offLo >>> 0);
  let nf = flags & ~(F.TF | F.NT | F.RF | F.VM);
  if (type === SysType.INT) nf &= ~F.IF;
  setFlags(cpu.f, nf);
  updateMode(cpu);
  cpu.endBlock();
}

function deliverProt(cpu: Cpu, vector: number, errorCode: number, hasErr: boolean, soft: boolean): void {
  const m = cpu.mem;
  const ext = soft ? 0 : 1;
  if (vector * 8 + 7 > cpu.idtrLimit) throw new CpuFault(Vec.GP, idtErr(vector, ext));
  const ga = cpu.idtrBase + vector * 8;
  const w0 = sysRd32(cpu, ga), w1 = sysRd32(cpu, ga + 4);
  const type = (w1 >> 8) & 0x1f, dpl = (w1 >> 13) & 3;
  // Task gates (5) are not modelled: they fault like a bad gate type.
  if (type !== SysType.INT && type !== SysType.TRAP && type !== SysType.INT16 && type !== SysType.TRAP16) {
    throw new CpuFault(Vec.GP, idtErr(vector, ext));
  }
  if (soft && dpl < cpu.cpl) throw new CpuFault(Vec.GP, idtErr(vector, ext));
  if (!(w1 & 0x8000)) throw new CpuFault(Vec.NP, idtErr(vector, ext));
  const gate32 = (type & 8) !== 0;
  const sel = w0 >>> 16;
  const off = gate32 ? ((w0 & 0xffff) | (w1 & 0xffff0000)) >>> 0 : w0 & 0xffff;
  const csAddr = gateTarget(cpu, sel, ext);
  if (off > descLimit(csD)) throw new CpuFault(Vec.GP, ext);
  const newCpl = (accOf(csD) & Acc.CE) ? cpu.cpl : (csD.hi >>> 13) & 3;
  const r = cpu.r, s = cpu.seg;
  const sz = gate32 ? 4 : 2;
  const inner = newCpl < cpu.cpl;
  // The stack the frame goes on: the inner one from the TSS, or the current one.
  let ssSel = s.sel[Seg.SS], ssAddr = -1, esp = r[8] >>> 0, ssBase = s.baseLo[Seg.SS] >>> 0;
  let big = (s.attr[Seg.SS] & 0x400) !== 0;
  if (inner) {
    const t = s.attr[Seg.TR] & 0xf;
    if (t !== SysType.TSS && t !== SysType.TSS_BUSY) throw new CpuFault(Vec.TS, (s.sel[Seg.TR] & 0xfffc) | ext);
    const ta = tssLinear(cpu, 4 + newCpl * 8, 6, ext);
    esp = sysRd32(cpu, ta) >>> 0;
    ssSel = sysRd16(cpu, ta + 4);
    ssAddr = checkStackSeg(cpu, ssSel, newCpl, ssD, false, Vec.TS, ext);
    ssBase = descBase(ssD);
    big = (ssD.hi & 0x400000) !== 0;
  }
  const flags = getFlags(cpu.f);
  const n = (inner ? 5 : 3) + (hasErr ? 1 : 0);
  // Probe every slot, then write (no register changes until all writes are done).
  frameRights(cpu, newCpl);
  const mask = big ? -1 : 0xffff;
  for (let i = 1; i <= n; i++) m.probeWrite(slot(ssBase, esp, i * sz, mask), sz);
  let k = 0;
  if (inner) { cpu.wr(slot(ssBase, esp, ++k * sz, mask), sz, s.sel[Seg.SS], 0); cpu.wr(slot(ssBase, esp, ++k * sz, mask), sz, r[8], 0); }
  cpu.wr(slot(ssBase, esp, ++k * sz, mask), sz, flags, 0);
  cpu.wr(slot(ssBase, esp, ++k * sz, mask), sz, s.sel[Seg.CS], 0);
  cpu.wr(slot(ssBase, esp, ++k * sz, mask), sz, cpu.rip, 0); // an offset below 4 GiB here
  if (hasErr) cpu.wr(slot(ssBase, esp, ++k * sz, mask), sz, errorCode, 0);
  const p = ((esp - k * sz) & mask) >>> 0;
  markAccessed(cpu, csAddr, csD);
  if (inner) commitSeg(cpu, Seg.SS, ssSel, ssAddr, ssD);
  r[8] = big ? p | 0 : (inner ? 0 : r[8] & ~0xffff) | p;
  setSegCache(cpu, Seg.CS, (sel & 0xfffc) | newCpl, csD);
  cpu.cpl = newCpl;
  cpu.rip = off;
  let nf = flags & ~(F.TF | F.NT | F.RF | F.VM);
  if ((type & 7) === 6) nf &= ~F.IF;
  setFlags(cpu.f, nf);
  updateMode(cpu);
  cpu.endBlock();
}

/** Linear address of the stack slot `down` bytes below esp (SP wraps at 64 KiB when mask is 0xffff). */
function slot(base: number, esp: number, down: number, mask: number): number {
  return (base + (((esp - down) & mask) >>> 0)) % TWO32;
}

function deliverReal(cpu: Cpu, vector: number): void {
  if (vector * 4 + 3 > cpu.idtrLimit) throw new CpuFault(Vec.GP, 0);
  const v = sysRd32(cpu, cpu.idtrBase + vector * 4);
  const flags = getFlags(cpu.f);
  const r = cpu.r, sp = r[8];
  try {
    cpu.push(2, flags, 0);
    cpu.push(2, cpu.seg.sel[Seg.CS], 0);
    cpu.push(2, cpu.rip, 0);
  } catch (e) { r[8] = sp; throw e; }
  const sel = v >>> 16;
  csBase(cpu, sel << 4);
  cpu.seg.sel[Seg.CS] = sel;
  cpu.rip = v & 0xffff;
  setFlags(cpu.f, flags & ~(F.IF | F.TF | F.AC));
  cpu.endBlock();
}

// ---- IRET ---------------------------------------------------------------------------------

/** RFLAGS bits an IRET may load: the CPL before the return decides IOPL/IF/VIF/VIP. */
function iretMask(cpu: Cpu, flags: number, osz: number): number {
  let m = F.CF | F.PF | F.AF | F.ZF | F.SF | F.TF | F.DF | F.OF | F.NT | F.RF | F.AC | F.ID;
  const cpl = cpu.cpl;
  if (cpl === 0) m |= F.IOPL | F.VIF | F.VIP;
  if (cpl <= ((flags >> 12) & 3)) m |= F.IF;
  if (osz === 2) m &= 0xffff;
  return m;
}

/** IRET / IRETD / IRETQ (CF) at operand size osz. */
export function iret(cpu: Cpu, osz: number): void {
  const r = cpu.r;
  const flags = getFlags(cpu.f);
  if (cpu.mode === Mode.Real) {
    const ip = cpu.peek(osz, 0), cs = cpu.peek(osz, osz) & 0xffff, fl = cpu.peek(osz, 2 * osz);
    cpu.adjustSp(3 * osz);
    csBase(cpu, cs << 4);
    cpu.seg.sel[Seg.CS] = cs;
    cpu.rip = osz === 2 ? ip & 0xffff : ip >>> 0;
    const m = osz === 2 ? 0x7fd5 : 0x257fd5;
    setFlags(cpu.f, (flags & ~m) | (fl & m));
    cpu.endBlock();
    return;
  }
  const long = (cpu.efer & Efer.LMA) !== 0;
  // A nested-task return goes through the TSS back link: not modelled (and #GP in long mode).
  if (flags & F.NT) throw new CpuFault(Vec.GP, 0);
  const ipLo = cpu.peek(osz, 0), ipHi = osz === 8 ? cpu.t : 0;
  const cs = cpu.peek(osz, osz) & 0xffff;
  const fl = cpu.peek(osz, 2 * osz);
  if (!long && osz === 4 && (fl & F.VM) && cpu.cpl === 0) throw new CpuFault(Vec.GP, 0); // to virtual-8086 mode
  const csAddr = checkReturnCS(cpu, cs, csD);
  const rpl = cs & 3;
  const to64 = long && (csD.hi & 0x200000) !== 0;
  // The new RIP is checked (canonical, or the limit) before the stack segment.
  const rip = targetRip(cpu, csD, ipLo, ipHi, osz);
  // 64-bit mode always pops SS:RSP; elsewhere only when returning to an outer level.
  const popStack = cpu.mode === Mode.Long64 || rpl !== cpu.cpl;
  let spLo = 0, spHi = 0, ss = 0, ssAddr = -1;
  if (popStack) {
    spLo = cpu.peek(osz, 3 * osz); spHi = osz === 8 ? cpu.t : 0;
    ss = cpu.peek(osz, 4 * osz) & 0xffff;
    ssAddr = checkStackSeg(cpu, ss, rpl, ssD, to64);
  }
  const m = iretMask(cpu, flags, osz);
  const nf = (flags & ~m) | (fl & m);
  // Commit.
  markAccessed(cpu, csAddr, csD);
  if (popStack) {
    commitSeg(cpu, Seg.SS, ss, ssAddr, ssD);
    // RSP takes the popped value (zero-extended); returning to 32-bit code only ESP.
    if (osz === 2 && cpu.mode !== Mode.Long64) r[8] = (r[8] & ~0xffff) | (spLo & 0xffff);
    else { r[8] = osz === 2 ? spLo & 0xffff : spLo; r[9] = osz === 8 && to64 ? spHi : 0; }
  } else cpu.adjustSp(3 * osz);
  const outer = rpl > cpu.cpl;
  setSegCache(cpu, Seg.CS, cs, csD);
  cpu.cpl = rpl;
  cpu.rip = rip;
  setFlags(cpu.f, nf);
  if (outer) nullInaccessible(cpu);
  updateMode(cpu);
  cpu.endBlock();
}
