// The frame table: who owns each machine frame, and the machine-to-physical (M2P) table.
// Page types and reference counts (the PV page-table validation) live in mm/pagetype.ts.

import type { PhysMem } from '../../mmu/physmem.js';

/** Owner ids beyond real domains. */
export const DOMID_FREE = -1;
export const DOMID_XEN = 0x7ff2;
export const DOMID_IO = 0x7ff1;
export const DOMID_SELF = 0x7ff0;
/** M2P entry for frames that have no guest physical address. */
export const INVALID_P2M = 0xffffffff;

export class FrameTable {
  readonly frames: number;
  /** Owner domid per MFN (DOMID_FREE when unallocated). */
  readonly owner: Int32Array;
  /** M2P: the guest pfn each MFN holds (INVALID_P2M if none); mirrored into guest-visible
   *  M2P frames by whoever maps them (mm/m2p.ts). */
  readonly m2p: Uint32Array;
  private nextFree = 0;
  private freeCount: number;
  /** Called when a frame that held decoded code is zeroed for reuse (drop that code). */
  onCodeFrameReused: ((mfn: number) => void) | null = null;
  /** Called after an M2P entry changes (the guest-visible copy is updated there). */
  onM2pChange: ((mfn: number, pfn: number) => void) | null = null;

  constructor(readonly phys: PhysMem) {
    this.frames = phys.frames;
    this.owner = new Int32Array(this.frames).fill(DOMID_FREE);
    this.m2p = new Uint32Array(this.frames).fill(INVALID_P2M);
    this.freeCount = this.frames;
  }

  get free(): number { return this.freeCount; }

  /** Allocate one frame for `owner`, zeroed; -1 when memory is exhausted. */
  alloc(owner: number): number {
    const n = this.frames;
    for (let i = 0; i < n; i++) {
      const mfn = (this.nextFree + i) % n;
      if (this.owner[mfn] === DOMID_FREE) {
        this.owner[mfn] = owner;
        this.nextFree = (mfn + 1) % n;
        this.freeCount--;
        this.zero(mfn, 1);
        return mfn;
      }
    }
    return -1;
  }

  /** Allocate n contiguous frames (e.g. for Xen's own tables); -1 if no run is free. */
  allocContiguous(owner: number, n: number): number {
    let run = 0;
    for (let mfn = 0; mfn < this.frames; mfn++) {
      run = this.owner[mfn] === DOMID_FREE ? run + 1 : 0;
      if (run === n) {
        const first = mfn - n + 1;
        for (let i = first; i <= mfn; i++) this.owner[i] = owner;
        this.freeCount -= n;
        this.zero(first, n);
        return first;
      }
    }
    return -1;
  }

  /** Zero n frames for a new owner; decoded code from their old contents must go. */
  private zero(first: number, n: number): void {
    this.phys.u8.fill(0, first * 4096, (first + n) * 4096);
    const code = this.phys.codeFrame;
    for (let m = first; m < first + n; m++) {
      if (code[m] === 1) { code[m] = 0; this.onCodeFrameReused?.(m); }
    }
  }

  release(mfn: number): void {
    if (this.owner[mfn] === DOMID_FREE) return;
    this.owner[mfn] = DOMID_FREE;
    this.freeCount++;
    this.setM2p(mfn, INVALID_P2M);
  }

  setM2p(mfn: number, pfn: number): void {
    this.m2p[mfn] = pfn >>> 0;
    this.onM2pChange?.(mfn, pfn >>> 0);
  }
}
