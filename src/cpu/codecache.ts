// Decoded code, cached per physical address and code mode, in blocks that end at a control
// transfer or a page boundary. A write to a physical page that holds decoded code drops
// every block on that page (the memory layer reports such writes through onCodeWrite).

import type { Insn } from './insn.js';
import type { BlockFn } from './jit.js';
import type { CpuMemory } from './memory.js';

export interface Block {
  insns: Insn[];
  valid: boolean;
  /** How many times it ran: hot blocks get compiled (jit.ts). */
  runs: number;
  /** The compiled form, once hot. */
  fn: BlockFn | undefined;
  /** Total cycle cost of the block's instructions. */
  cycles: number;
  /** The code mode it was decoded for. */
  mode: number;
  /** The last two successors seen (by RIP), valid while the memory epoch is linkEpoch. */
  link0: Block | undefined;
  link0Rip: number;
  link1: Block | undefined;
  link1Rip: number;
  linkEpoch: number;
}

const FAST = 4096;

export class CodeCache {
  private readonly maps: Map<number, Block>[] = [new Map(), new Map(), new Map(), new Map()];
  private readonly byPage = new Map<number, { mode: number; phys: number }[]>();
  /** A direct-mapped front for the maps: key (phys * 4 + mode) and block per slot. */
  private readonly fastKey = new Float64Array(FAST).fill(-1);
  private readonly fastBlock: (Block | undefined)[] = new Array(FAST).fill(undefined);
  /** CPUs running from this cache: told to leave their current block when code is dropped. */
  readonly users: { exitBlock: boolean }[] = [];

  constructor(private readonly mem: CpuMemory) {
    mem.onCodeWrite = (ppn) => this.dropPage(ppn);
  }

  get(mode: number, phys: number): Block | undefined {
    const key = phys * 4 + mode;
    const slot = (phys ^ (phys >>> 12)) & (FAST - 1);
    if (this.fastKey[slot] === key) return this.fastBlock[slot];
    const b = this.maps[mode].get(phys);
    if (b !== undefined) { this.fastKey[slot] = key; this.fastBlock[slot] = b; }
    return b;
  }

  put(mode: number, phys: number, lastPhys: number, b: Block): void {
    this.maps[mode].set(phys, b);
    const p0 = Math.floor(phys / 4096), p1 = Math.floor(lastPhys / 4096);
    this.track(p0, mode, phys);
    if (p1 !== p0) this.track(p1, mode, phys);
  }

  private track(ppn: number, mode: number, phys: number): void {
    let l = this.byPage.get(ppn);
    if (!l) { l = []; this.byPage.set(ppn, l); this.mem.markCode(ppn); }
    l.push({ mode, phys });
  }

  dropPage(ppn: number): void {
    const l = this.byPage.get(ppn);
    if (!l) return;
    this.byPage.delete(ppn);
    for (const { mode, phys } of l) {
      const b = this.maps[mode].get(phys);
      if (b) { b.valid = false; this.maps[mode].delete(phys); }
      const slot = (phys ^ (phys >>> 12)) & (FAST - 1);
      if (this.fastKey[slot] === phys * 4 + mode) { this.fastKey[slot] = -1; this.fastBlock[slot] = undefined; }
    }
    this.kick();
  }

  private kick(): void {
    for (const u of this.users) u.exitBlock = true;
  }

  clear(): void {
    for (const m of this.maps) { for (const b of m.values()) b.valid = false; m.clear(); }
    this.byPage.clear();
    this.fastKey.fill(-1);
    this.fastBlock.fill(undefined);
    this.kick();
  }
}
