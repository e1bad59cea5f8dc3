// Segment descriptors: reading them from the GDT/LDT and loading them into segment registers.

import type { Cpu } from './cpu.js';
import { SegAttr } from './cpu.js';
import { CpuFault, Vec } from './fault.js';
import { Efer, Mode, Seg } from './state.js';

/** A raw 8-byte descriptor as two int32 words. */
export interface Desc { lo: number; hi: number }

/** Linear address of a selector's descriptor, or throws #GP(sel) if outside its table. */
export function descAddr(cpu: Cpu, sel: number, vec = Vec.GP): number {
  const idx = sel & 0xfff8;
  if (sel & 4) {
    const s = cpu.seg;
    if ((s.sel[Seg.LDTR] & 0xfffc) === 0 || idx + 7 > s.limit[Seg.LDTR]) throw new CpuFault(vec, sel & 0xfffc);
    return (s.baseHi[Seg.LDTR] & 0xffff) * 4294967296 + (s.baseLo[Seg.LDTR] >>> 0) + idx;
  }
  if (idx + 7 > cpu.gdtrLimit) throw new CpuFault(vec, sel & 0xfffc);
  return cpu.gdtrBase + idx;
}

export function readDesc(cpu: Cpu, sel: number, vec = Vec.GP): Desc {
  const a = descAddr(cpu, sel, vec);
  return { lo: cpu.mem.rd32(a), hi: cpu.mem.rd32(a + 4) };
}

export function descBase(d: Desc): number {
  return ((d.lo >>> 16) | ((d.hi & 0xff) << 16) | (d.hi & 0xff000000)) >>> 0;
}
export function descLimit(d: Desc): number {
  const raw = (d.lo & 0xffff) | (d.hi & 0xf0000);
  return (d.hi & 0x800000) ? ((raw * 4096) + 4095) >>> 0 : raw;
}
/** Access byte plus AVL/L/DB/G in SegState.attr layout. */
export function descAttr(d: Desc): number {
  return ((d.hi >>> 8) & 0xff) | (((d.hi >>> 20) & 0xf) << 8);
}

/** Load a descriptor into a segment register cache (no checks). */
export function setSegCache(cpu: Cpu, seg: number, sel: number, d: Desc | null): void {
  const s = cpu.seg;
  s.sel[seg] = sel & 0xffff;
  if (!d) { s.baseLo[seg] = 0; s.baseHi[seg] = 0; s.limit[seg] = 0; s.attr[seg] = 0; return; }
  s.baseLo[seg] = descBase(d) | 0;
  if (seg < Seg.FS || seg === Seg.CS) s.baseHi[seg] = 0;
  s.limit[seg] = descLimit(d);
  s.attr[seg] = descAttr(d);
}

/** Recompute the code mode from EFER.LMA, CR0.PE and CS attributes. */
export function updateMode(cpu: Cpu): void {
  const a = cpu.seg.attr[Seg.CS];
  let m: Mode;
  if (!(cpu.cr0 & 1)) m = Mode.Real;
  else if ((cpu.efer & Efer.LMA) && (a & SegAttr.L)) m = Mode.Long64;
  else m = (a & SegAttr.DB) ? Mode.Prot32 : Mode.Prot16;
  if (m !== cpu.mode) { cpu.mode = m; cpu.endBlock(); }
}

/** Set the accessed bit of a descriptor in memory if it is clear (as hardware does on load). */
export function markAccessed(cpu: Cpu, sel: number, d: Desc): void {
  if (d.hi & 0x100) return;
  d.hi |= 0x100;
  cpu.mem.wr32(descAddr(cpu, sel) + 4, d.hi);
}
