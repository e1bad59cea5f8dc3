// Flat memory: linear address = physical address, with a per-page present map (absent pages
// raise #PF like an unmapped page). The raw machine and the CPU tests use it; paged guests
// use the page-table walker and TLB in mmu.ts.

import { CpuFault, Vec } from '../cpu/fault.js';
import type { CodeWriteHook, CpuMemory } from '../cpu/memory.js';
import { PhysMem } from './physmem.js';

/** #PF error code bits. */
export const enum PfErr { P = 1, W = 2, U = 4, RSVD = 8, I = 16 }

export class FlatMemory implements CpuMemory {
  hi = 0;
  epoch = 0;
  onCodeWrite: CodeWriteHook | null = null;
  readonly u8: Uint8Array;
  private readonly dv: DataView;
  private readonly size: number;
  /** 1 for pages that are present; by default every page of RAM. */
  readonly present: Uint8Array;
  private readonly code: Uint8Array;

  constructor(readonly phys: PhysMem) {
    this.u8 = phys.u8; this.dv = phys.dv; this.size = phys.size;
    this.present = new Uint8Array(phys.frames).fill(1);
    this.code = phys.codeFrame;
  }

  private check(lin: number, len: number, w: boolean): void {
    const end = lin + len - 1;
    if (end < this.size && this.present[Math.floor(lin / 4096)] === 1 && this.present[Math.floor(end / 4096)] === 1) return;
    const bad = this.present[Math.floor(lin / 4096)] === 1 && lin < this.size ? (Math.floor(lin / 4096) + 1) * 4096 : lin;
    throw new CpuFault(Vec.PF, w ? PfErr.W : 0, bad);
  }

  private wrote(lin: number, len: number): void {
    const p0 = Math.floor(lin / 4096), p1 = Math.floor((lin + len - 1) / 4096);
    const c = this.code;
    if (c[p0] === 1) { c[p0] = 0; this.onCodeWrite?.(p0); }
    if (p1 !== p0 && c[p1] === 1) { c[p1] = 0; this.onCodeWrite?.(p1); }
  }

  rd8(lin: number): number { this.check(lin, 1, false); return this.u8[lin]; }
  rd16(lin: number): number { this.check(lin, 2, false); return this.dv.getUint16(lin, true); }
  rd32(lin: number): number { this.check(lin, 4, false); return this.dv.getInt32(lin, true); }
  rd64(lin: number): number {
    this.check(lin, 8, false);
    this.hi = this.dv.getInt32(lin + 4, true);
    return this.dv.getInt32(lin, true);
  }
  wr8(lin: number, v: number): void { this.check(lin, 1, true); this.u8[lin] = v; if (this.code[lin >>> 12] === 1) this.wrote(lin, 1); }
  wr16(lin: number, v: number): void { this.check(lin, 2, true); this.dv.setUint16(lin, v & 0xffff, true); this.wrote(lin, 2); }
  wr32(lin: number, v: number): void { this.check(lin, 4, true); this.dv.setInt32(lin, v, true); this.wrote(lin, 4); }
  wr64(lin: number, lo: number, hi: number): void {
    this.check(lin, 8, true);
    this.dv.setInt32(lin, lo, true); this.dv.setInt32(lin + 4, hi, true);
    this.wrote(lin, 8);
  }
  probeWrite(lin: number, len: number): void { this.check(lin, len, true); }
  fetchPhys(lin: number): number {
    if (lin >= this.size || this.present[Math.floor(lin / 4096)] !== 1) throw new CpuFault(Vec.PF, PfErr.I, lin);
    return lin;
  }
  physByte(phys: number): number { return this.u8[phys]; }
  flush(): void { this.epoch++; }
  markCode(ppn: number): void { this.code[ppn] = 1; }
}
