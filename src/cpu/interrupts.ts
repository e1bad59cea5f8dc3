// Delivery of exceptions and interrupts through the IDT, in long mode and protected mode,
// with the privilege-level stack switch (TSS) and IST.

import type { Cpu } from './cpu.js';
import { CpuFault, Vec } from './fault.js';
import { getFlags, setFlags } from './flags.js';
import { readDesc, setSegCache, updateMode, descAttr } from './segments.js';
import { F, Mode, Seg } from './state.js';

const TWO32 = 4294967296;

function trLinear(cpu: Cpu, off: number): number {
  const s = cpu.seg;
  if (off > s.limit[Seg.TR]) throw new CpuFault(Vec.TS, s.sel[Seg.TR] & 0xfffc);
  return (s.baseHi[Seg.TR] & 0xffff) * TWO32 + (s.baseLo[Seg.TR] >>> 0) + off;
}

/** Deliver vector through the IDT. soft: int n / int3 / into (gate DPL checked, no error code). */
export function deliverEvent(cpu: Cpu, vector: number, errorCode: number, hasErr: boolean, soft: boolean): void {
  if (cpu.mode === Mode.Real) { deliverReal(cpu, vector); return; }
  if (cpu.long) deliverLong(cpu, vector, errorCode, hasErr, soft);
  else deliverProt(cpu, vector, errorCode, hasErr, soft);
}

function idtFault(vector: number, soft: boolean): number {
  return vector * 8 + 2 + (soft ? 0 : 1);
}

function deliverLong(cpu: Cpu, vector: number, errorCode: number, hasErr: boolean, soft: boolean): void {
  const m = cpu.mem;
  if (vector * 16 + 15 > cpu.idtrLimit) throw new CpuFault(Vec.GP, idtFault(vector, soft));
  const ga = cpu.idtrBase + vector * 16;
  const w0 = m.rd32(ga), w1 = m.rd32(ga + 4), w2 = m.rd32(ga + 8);
  const type = (w1 >> 8) & 0x1f, dpl = (w1 >> 13) & 3, present = (w1 & 0x8000) !== 0;
  if (type !== 0xe && type !== 0xf) throw new CpuFault(Vec.GP, idtFault(vector, soft));
  if (soft && dpl < cpu.cpl) throw new CpuFault(Vec.GP, idtFault(vector, soft));
  if (!present) throw new CpuFault(Vec.NP, idtFault(vector, soft));
  const sel = w0 >>> 16;
  const offLo = (w0 & 0xffff) | (w1 & 0xffff0000), offHi = w2;
  const ist = m.rd8(ga + 4) & 7;
  if ((sel & 0xfffc) === 0) throw new CpuFault(Vec.GP, soft ? 0 : 1);
  const cs = readDesc(cpu, sel);
  const csAttr = descAttr(cs);
  const csDpl = (csAttr >> 5) & 3;
  if ((csAttr & 0x18) !== 0x18 || csDpl > cpu.cpl) throw new CpuFault(Vec.GP, (sel & 0xfffc) + (soft ? 0 : 1));
  if (!(csAttr & 0x80)) throw new CpuFault(Vec.NP, (sel & 0xfffc) + (soft ? 0 : 1));
  if (!(csAttr & 0x200) || (csAttr & 0x400)) throw new CpuFault(Vec.GP, (sel & 0xfffc) + (soft ? 0 : 1));
  const conforming = (csAttr & 4) !== 0;
  const newCpl = conforming ? cpu.cpl : csDpl;
  const r = cpu.r;
  const oldSs = cpu.seg.sel[Seg.SS], oldSpLo = r[8], oldSpHi = r[9];
  const oldCs = cpu.seg.sel[Seg.CS];
  const flags = getFlags(cpu.f);
  let spLo = r[8], spHi = r[9];
  if (ist !== 0 || newCpl !== cpu.cpl) {
    const a = ist !== 0 ? trLinear(cpu, 36 + (ist - 1) * 8) : trLinear(cpu, 4 + newCpl * 8);
    spLo = m.rd32(a); spHi = m.rd32(a + 4);
  }
  // Align to 16 and push the frame; compute all addresses before writing anything.
  spLo &= ~0xf;
  const n = hasErr ? 6 : 5;
  const sp = cpu.linear64(spLo, spHi, true);
  const top = sp - n * 8;
  m.probeWrite(top < 0 ? top + 281474976710656 : top, n * 8);
  const ripLo = cpu.ripHalves(), ripHi = cpu.t;
  const vals: [number, number][] = [[oldSs, 0], [oldSpLo, oldSpHi], [flags, 0], [oldCs, 0], [ripLo, ripHi]];
  if (hasErr) vals.push([errorCode, 0]);
  let a = sp;
  for (const [lo, hi] of vals) { a -= 8; if (a < 0) a += 281474976710656; m.wr64(a, lo, hi); }
  // Commit.
  let nlo = (spLo - n * 8);
  let nhi = spHi;
  if ((spLo >>> 0) < n * 8) nhi = (nhi - 1) | 0;
  nlo |= 0;
  r[8] = nlo; r[9] = nhi;
  if (newCpl !== cpu.cpl) {
    setSegCache(cpu, Seg.SS, newCpl, null);
    cpu.seg.attr[Seg.SS] = 0x93 | (newCpl << 5) | 0x400; // null SS usable in long mode
  }
  setSegCache(cpu, Seg.CS, (sel & 0xfffc) | newCpl, cs);
  cpu.cpl = newCpl;
  cpu.rip = (offHi & 0xffff) * TWO32 + (offLo >>> 0);
  let nf = flags & ~(F.TF | F.NT | F.RF | F.VM);
  if (type === 0xe) nf &= ~F.IF;
  setFlags(cpu.f, nf);
  updateMode(cpu);
  cpu.endBlock();
}

function deliverProt(cpu: Cpu, vector: number, errorCode: number, hasErr: boolean, soft: boolean): void {
  const m = cpu.mem;
  if (vector * 8 + 7 > cpu.idtrLimit) throw new CpuFault(Vec.GP, idtFault(vector, soft));
  const ga = cpu.idtrBase + vector * 8;
  const w0 = m.rd32(ga), w1 = m.rd32(ga + 4);
  const type = (w1 >> 8) & 0x1f, dpl = (w1 >> 13) & 3, present = (w1 & 0x8000) !== 0;
  if (type !== 0xe && type !== 0xf && type !== 0x6 && type !== 0x7) throw new CpuFault(Vec.GP, idtFault(vector, soft));
  if (soft && dpl < cpu.cpl) throw new CpuFault(Vec.GP, idtFault(vector, soft));
  if (!present) throw new CpuFault(Vec.NP, idtFault(vector, soft));
  const gate32 = (type & 8) !== 0;
  const sel = w0 >>> 16;
  const off = ((w0 & 0xffff) | (w1 & 0xffff0000)) >>> 0;
  const cs = readDesc(cpu, sel);
  const csAttr = descAttr(cs);
  const csDpl = (csAttr >> 5) & 3;
  if ((csAttr & 0x18) !== 0x18 || csDpl > cpu.cpl) throw new CpuFault(Vec.GP, (sel & 0xfffc) + (soft ? 0 : 1));
  const newCpl = (csAttr & 4) ? cpu.cpl : csDpl;
  const flags = getFlags(cpu.f);
  const r = cpu.r;
  const sz = gate32 ? 4 : 2;
  const frame: number[] = [];
  let ssSel = cpu.seg.sel[Seg.SS];
  let esp = r[8] >>> 0;
  if (newCpl !== cpu.cpl) {
    const ts = cpu.seg;
    const tssBase = ts.baseLo[Seg.TR] >>> 0;
    ssSel = m.rd16(tssBase + 8 + newCpl * 8);
    esp = m.rd32(tssBase + 4 + newCpl * 8) >>> 0;
    frame.push(cpu.seg.sel[Seg.SS], r[8]);
    const ssD = readDesc(cpu, ssSel, Vec.TS);
    setSegCache(cpu, Seg.SS, ssSel, ssD);
  }
  frame.push(flags, cpu.seg.sel[Seg.CS], cpu.rip);
  if (hasErr) frame.push(errorCode);
  const ssBase = cpu.seg.baseLo[Seg.SS] >>> 0;
  const big = (cpu.seg.attr[Seg.SS] & 0x400) !== 0;
  for (const v of frame) {
    esp = big ? (esp - sz) >>> 0 : (esp - sz) & 0xffff;
    cpu.wr((ssBase + esp) % TWO32, sz, v, 0);
  }
  r[8] = big ? esp | 0 : (r[8] & ~0xffff) | esp;
  r[9] = 0;
  setSegCache(cpu, Seg.CS, (sel & 0xfffc) | newCpl, cs);
  cpu.cpl = newCpl;
  cpu.rip = gate32 ? off : off & 0xffff;
  let nf = flags & ~(F.TF | F.NT | F.RF | F.VM);
  if ((type & 7) === 6) nf &= ~F.IF;
  setFlags(cpu.f, nf);
  updateMode(cpu);
  cpu.endBlock();
}

function deliverReal(cpu: Cpu, vector: number): void {
  const m = cpu.mem;
  if (vector * 4 + 3 > cpu.idtrLimit) throw new CpuFault(Vec.GP, 0);
  const v = m.rd32(cpu.idtrBase + vector * 4);
  const flags = getFlags(cpu.f);
  cpu.push(2, flags, 0);
  cpu.push(2, cpu.seg.sel[Seg.CS], 0);
  cpu.push(2, cpu.rip, 0);
  const sel = v >>> 16;
  cpu.seg.sel[Seg.CS] = sel; cpu.seg.baseLo[Seg.CS] = sel << 4;
  cpu.rip = v & 0xffff;
  setFlags(cpu.f, flags & ~(F.IF | F.TF | F.AC));
  cpu.endBlock();
}
