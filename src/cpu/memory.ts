// What the CPU needs from memory. src/mmu implements it (flat, or paged with a TLB); the CPU
// only sees linear addresses. A linear address is an unsigned number below 2^48 in 64-bit
// mode (the canonical address with bits 48..63 dropped) or below 2^32 in legacy modes, so it
// fits a double exactly and hot paths need no BigInt.
// Reads of 8/16/32 bits return the value zero-extended (32-bit as int32); 64-bit reads return
// the low half and leave the high half in `hi`. Every access may throw a CpuFault (#PF, #GP).

export const enum Access { Read = 0, Write = 1, Exec = 2 }

export interface CpuMemory {
  hi: number;
  /** Bumped whenever linear-to-physical translations may have changed (a flush, CR3 load,
   *  paging mode change): blocks linked by RIP are only followed within one epoch. */
  epoch: number;
  /** Set (then cleared) by the CPU around implicit supervisor-mode accesses: GDT/LDT/IDT/TSS
   *  reads and descriptor A-bit writes. A paged memory checks them as supervisor accesses
   *  at any CPL (and SMAP treats them as implicit). Optional: flat memory ignores it. */
  implicitSupervisor?: boolean;
  rd8(lin: number): number;
  rd16(lin: number): number;
  rd32(lin: number): number;
  rd64(lin: number): number;
  wr8(lin: number, v: number): void;
  wr16(lin: number, v: number): void;
  wr32(lin: number, v: number): void;
  wr64(lin: number, lo: number, hi: number): void;
  /** Fault now if [lin, lin+len) cannot be written, so a later write in the same instruction cannot. */
  probeWrite(lin: number, len: number): void;
  /** Physical address of an instruction byte (checks execute permission); keys the decode cache. */
  fetchPhys(lin: number): number;
  /** One instruction byte by physical address (after fetchPhys). */
  physByte(phys: number): number;
  /** Called by the CPU when paging state changes (CR0/CR3/CR4 writes, invlpg, EFER). */
  flush(lin?: number): void;
  /** Decoded code lives on this physical page: report writes to it through onCodeWrite. */
  markCode(ppn: number): void;
  onCodeWrite: CodeWriteHook | null;
}

/** The CPU asks its owner to drop decoded code on a physical page (set by the CPU). */
export type CodeWriteHook = (ppn: number) => void;
