// Test support for the MMU: a register block that stands in for a Cpu, a page-table builder,
// and a reference model of translation written from the SDM (vol. 3A 4.3-4.8), with BigInt
// and no TLB, independent of src/mmu/paged.ts. It is the executable specification the
// property tests hold PagedMemory to.

import { CpuFault } from '../../src/cpu/fault.js';
import { PagedMemory, type PagingCpu } from '../../src/mmu/paged.js';
import { PhysMem } from '../../src/mmu/physmem.js';

export const CR0_PE = 1, CR0_WP = 0x10000, CR0_PG = 0x80000000 | 0;
export const CR4_PSE = 0x10, CR4_PAE = 0x20, CR4_PGE = 0x80, CR4_SMEP = 0x100000, CR4_SMAP = 0x200000;
export const EFER_LME = 0x100, EFER_LMA = 0x400, EFER_NXE = 0x800;
export const RFLAGS_AC = 0x40000;
export const PTE_P = 1n, PTE_RW = 2n, PTE_US = 4n, PTE_A = 0x20n, PTE_D = 0x40n, PTE_PS = 0x80n, PTE_G = 0x100n;
export const PTE_NX = 1n << 63n;

export type Kind = 'r' | 'w' | 'x';

/** The registers PagedMemory reads, as a plain object. */
export class Regs implements PagingCpu {
  cr0 = CR0_PE | CR0_PG | CR0_WP;
  cr3Lo = 0; cr3Hi = 0;
  cr4 = CR4_PAE | CR4_PGE;
  efer = EFER_LME | EFER_LMA | EFER_NXE;
  cpl = 0;
  readonly f = new Int32Array(9);
  /** PAE: the PDPTE registers as the model sees them (null: read the PDPT from memory). */
  pdpt: bigint[] | null = null;
  get cr3(): bigint { return (BigInt(this.cr3Hi >>> 0) << 32n) | BigInt(this.cr3Lo >>> 0); }
  set cr3(v: bigint) { this.cr3Lo = Number(v & 0xffffffffn) | 0; this.cr3Hi = Number(v >> 32n) | 0; }
  get ac(): boolean { return (this.f[0] & RFLAGS_AC) !== 0; }
  set ac(v: boolean) { this.f[0] = v ? this.f[0] | RFLAGS_AC : this.f[0] & ~RFLAGS_AC; }
  /** 4-level paging (the default). */
  long(): this { this.cr0 |= CR0_PG; this.cr4 |= CR4_PAE; this.efer |= EFER_LME | EFER_LMA; return this; }
  /** 32-bit PAE (3-level) paging. */
  pae(): this { this.cr0 |= CR0_PG; this.cr4 |= CR4_PAE; this.efer &= ~(EFER_LME | EFER_LMA); return this; }
  /** 2-level 32-bit paging. */
  legacy(): this { this.cr0 |= CR0_PG; this.cr4 &= ~CR4_PAE; this.efer &= ~(EFER_LME | EFER_LMA); return this; }
}

/** A fresh machine: memory, registers, and a PagedMemory attached to them. */
export function machine(bytes = 1 << 20, opts: ConstructorParameters<typeof PagedMemory>[2] = {}) {
  const phys = new PhysMem(bytes);
  const regs = new Regs();
  const mem = new PagedMemory(phys, regs, opts);
  return { phys, regs, mem, pt: new PageTables(phys, regs) };
}

export function rd64(u8: Uint8Array, pa: bigint): bigint {
  if (pa + 8n > BigInt(u8.length)) return 0xffffffffffffffffn;
  const dv = new DataView(u8.buffer, u8.byteOffset);
  return dv.getBigUint64(Number(pa), true);
}
export function rd32(u8: Uint8Array, pa: bigint): bigint {
  if (pa + 4n > BigInt(u8.length)) return 0xffffffffn;
  return BigInt(new DataView(u8.buffer, u8.byteOffset).getUint32(Number(pa), true));
}
export function wr64(u8: Uint8Array, pa: bigint, v: bigint): void {
  new DataView(u8.buffer, u8.byteOffset).setBigUint64(Number(pa), BigInt.asUintN(64, v), true);
}

/**
 * Builds 4-level (or PAE / 2-level) tables in PhysMem. Tables come from a bump allocator
 * starting at `next`; intermediate entries get `upper` flags (default P|RW|US).
 */
export class PageTables {
  next = 0x1000n;
  root = 0n;
  constructor(readonly phys: PhysMem, readonly regs: Regs) {}

  alloc(): bigint { const a = this.next; this.next += 0x1000n; this.phys.u8.fill(0, Number(a), Number(a) + 4096); return a; }

  /** A new PML4 (or PDPT for PAE, PD for 2-level) loaded into CR3. */
  newRoot(): bigint {
    this.root = this.alloc();
    this.regs.cr3 = this.root;
    return this.root;
  }

  /** Address of the entry for lin at `level` (4 PML4E .. 1 PTE), creating tables above it. */
  entry(lin: bigint, level: number, upper = PTE_P | PTE_RW | PTE_US): bigint {
    let table = this.root;
    for (let l = 4; l > level; l--) {
      const ea = table + ((lin >> BigInt(12 + 9 * (l - 1))) & 511n) * 8n;
      let e = rd64(this.phys.u8, ea);
      if (!(e & PTE_P) || (e & PTE_PS)) { e = this.alloc() | upper; wr64(this.phys.u8, ea, e); }
      table = e & 0xffffffffff000n;
    }
    return table + ((lin >> BigInt(12 + 9 * (level - 1))) & 511n) * 8n;
  }

  /** Map lin to pa: size 4K, 2M or 1G; flags for the leaf (PS added for large pages). */
  map(lin: bigint, pa: bigint, flags: bigint, size: '4K' | '2M' | '1G' = '4K', upper?: bigint): bigint {
    const level = size === '4K' ? 1 : size === '2M' ? 2 : 3;
    const ea = this.entry(lin, level, upper);
    wr64(this.phys.u8, ea, pa | flags | (level > 1 ? PTE_PS : 0n));
    return ea;
  }

  get(ea: bigint): bigint { return rd64(this.phys.u8, ea); }
  set(ea: bigint, v: bigint): void { wr64(this.phys.u8, ea, v); }
}

// ---- the reference model --------------------------------------------------------------

export interface RefCtx { cpl: number; implicit: boolean; ac: boolean }
export type RefWalk =
  | { ok: true; base: bigint; pageShift: number; entries: bigint[]; leafLo: bigint[]; rw: boolean; us: boolean; nx: boolean; global: boolean }
  | { ok: false; rsvd: boolean };

function bit(v: bigint, n: number): boolean { return ((v >> BigInt(n)) & 1n) === 1n; }

/** Translate with no side effects, as the SDM's tables define each paging mode. */
export function refWalk(u8: Uint8Array, r: Regs, lin: bigint, gbPages = true): RefWalk {
  const nxe = (r.efer & EFER_NXE) !== 0, pge = (r.cr4 & CR4_PGE) !== 0;
  const entries: bigint[] = [], leafLo: bigint[] = [];
  let rw = true, us = true, nx = false;
  const use = (ea: bigint, e: bigint) => { entries.push(ea); leafLo.push(e & 0xffn); rw &&= bit(e, 1); us &&= bit(e, 2); };
  if ((r.cr4 & CR4_PAE) === 0) {
    // 2-level: PDE at CR3[31:12] + lin[31:22]*4.
    const pdea = (r.cr3 & 0xfffff000n) + ((lin >> 22n) & 0x3ffn) * 4n;
    const pde = rd32(u8, pdea);
    if (!bit(pde, 0)) return { ok: false, rsvd: false };
    use(pdea, pde);
    if (bit(pde, 7) && (r.cr4 & CR4_PSE) !== 0) {
      if (bit(pde, 21)) return { ok: false, rsvd: true }; // MAXPHYADDR 40: bits 20:13 are PA 39:32
      const base = (pde & 0xffc00000n) | (((pde >> 13n) & 0xffn) << 32n);
      return { ok: true, base, pageShift: 22, entries, leafLo, rw, us, nx, global: pge && bit(pde, 8) };
    }
    const ptea = (pde & 0xfffff000n) + ((lin >> 12n) & 0x3ffn) * 4n;
    const pte = rd32(u8, ptea);
    if (!bit(pte, 0)) return { ok: false, rsvd: false };
    use(ptea, pte);
    return { ok: true, base: pte & 0xfffff000n, pageShift: 12, entries, leafLo, rw, us, nx, global: pge && bit(pte, 8) };
  }
  const long = (r.efer & EFER_LMA) !== 0;
  let table: bigint;
  let level: number;
  if (long) { table = r.cr3 & 0xffffffffff000n; level = 4; } else {
    const i = (lin >> 30n) & 3n;
    const pdpte = r.pdpt ? r.pdpt[Number(i)] : rd64(u8, (r.cr3 & 0xffffffe0n) + i * 8n);
    if (!bit(pdpte, 0)) return { ok: false, rsvd: false };
    if ((pdpte & 0x1e6n) !== 0n || (pdpte >> 40n) !== 0n) return { ok: false, rsvd: true };
    table = pdpte & 0xffffffffff000n; level = 2;
  }
  for (;;) {
    const shift = BigInt(12 + 9 * (level - 1));
    const ea = table + ((lin >> shift) & 511n) * 8n;
    const e = rd64(u8, ea);
    if (!bit(e, 0)) return { ok: false, rsvd: false };
    const resHigh = long ? ((e >> 40n) & 0xfffn) : ((e >> 40n) & 0x7fffffn); // 4-level: 51:40; PAE: 62:40
    if (resHigh !== 0n) return { ok: false, rsvd: true };
    if (bit(e, 63)) { if (!nxe) return { ok: false, rsvd: true }; nx = true; }
    if (level === 4 && bit(e, 7)) return { ok: false, rsvd: true };
    use(ea, e);
    const ps = level === 1 || bit(e, 7);
    if (ps) {
      let base: bigint;
      if (level === 3) {
        if (!gbPages || (e & 0x3fffe000n) !== 0n) return { ok: false, rsvd: true };
        base = e & 0xffc0000000n;
      } else if (level === 2) {
        if ((e & 0x1fe000n) !== 0n) return { ok: false, rsvd: true };
        base = e & 0xffffe00000n;
      } else base = e & 0xffffffffff000n;
      return { ok: true, base, pageShift: Number(shift), entries, leafLo, rw, us, nx, global: pge && bit(e, 8) };
    }
    table = e & 0xffffffffff000n;
    level--;
  }
}

/** Whether the (successful) walk allows the access (SDM 4.6). */
export function refAllowed(w: Extract<RefWalk, { ok: true }>, r: Regs, kind: Kind, ctx: RefCtx): boolean {
  const user = ctx.cpl === 3 && !ctx.implicit;
  const wp = (r.cr0 & CR0_WP) !== 0, smep = (r.cr4 & CR4_SMEP) !== 0, smap = (r.cr4 & CR4_SMAP) !== 0;
  if (user) {
    if (!w.us) return false;
    if (kind === 'w') return w.rw;
    if (kind === 'x') return !w.nx;
    return true;
  }
  if (kind === 'x') return !w.nx && !(smep && w.us);
  // Supervisor data access: SMAP blocks user pages unless explicit (CPL < 3) with AC = 1.
  if (smap && w.us && !(!ctx.implicit && ctx.cpl < 3 && ctx.ac)) return false;
  if (kind === 'w' && wp) return w.rw;
  return true;
}

export interface RefFault { vector: number; err: number; cr2: number }

/** The #PF error code bits for an access. */
export function refErrBits(r: Regs, kind: Kind, ctx: RefCtx): number {
  const user = ctx.cpl === 3 && !ctx.implicit;
  const id = kind === 'x' && ((r.cr4 & CR4_SMEP) !== 0 || ((r.cr4 & CR4_PAE) !== 0 && (r.efer & EFER_NXE) !== 0));
  return (kind === 'w' ? 2 : 0) | (user ? 4 : 0) | (id ? 16 : 0);
}

/** A translation outcome with its side effects as byte writes (A/D bits). */
export type RefXlate = { fault: RefFault } | { pa: bigint; log: [number, number][]; walk: RefWalk | null };

/**
 * Translate one address like the hardware: walk, check, then A on every entry used and D on
 * the leaf for writes, returning the byte writes instead of doing them. Paging off: identity.
 * Beyond RAM (no MMIO in the model): #PF with P|RSVD.
 */
export function refXlate(u8: Uint8Array, r: Regs, lin: number, kind: Kind, ctx: RefCtx, gbPages = true): RefXlate {
  if ((r.cr0 & CR0_PG) === 0) return { pa: BigInt(lin), log: [], walk: null };
  const L = BigInt(lin);
  const w = refWalk(u8, r, L, gbPages);
  const eb = refErrBits(r, kind, ctx);
  if (!w.ok) return { fault: { vector: 14, err: eb | (w.rsvd ? 9 : 0), cr2: lin } };
  if (!refAllowed(w, r, kind, ctx)) return { fault: { vector: 14, err: eb | 1, cr2: lin } };
  const pa = w.base + (L & ((1n << BigInt(w.pageShift)) - 1n));
  if (pa >= BigInt(u8.length)) return { fault: { vector: 14, err: eb | 9, cr2: lin } };
  const log: [number, number][] = [];
  const bytes = new Map<number, number>();
  w.entries.forEach((ea, i) => {
    const a = Number(ea);
    let b = (bytes.get(a) ?? u8[a]) | 0x20;
    if (i === w.entries.length - 1 && kind === 'w') b |= 0x40;
    bytes.set(a, b);
  });
  for (const [a, b] of bytes) if (b !== u8[a]) log.push([a, b]);
  return { pa, log, walk: w };
}

/** The next page's linear address (4-level: wraps at 2^48). */
export function nextPage(r: Regs, lin: number): number {
  const p = lin - (lin % 4096) + 4096;
  const wrap = (r.efer & EFER_LMA) !== 0 ? 2 ** 48 : 2 ** 32;
  return p % wrap;
}

/** Run one access on the real memory: the value read (as a bigint), or the fault. */
export function realAccess(mem: PagedMemory, lin: number, size: number, kind: Kind, value: bigint):
  { value: bigint } | { fault: RefFault } {
  try {
    if (kind === 'x') return { value: BigInt(mem.fetchPhys(lin)) };
    if (kind === 'r') {
      switch (size) {
        case 1: return { value: BigInt(mem.rd8(lin)) };
        case 2: return { value: BigInt(mem.rd16(lin)) };
        case 4: return { value: BigInt(mem.rd32(lin) >>> 0) };
        default: { const lo = mem.rd64(lin); return { value: (BigInt(mem.hi >>> 0) << 32n) | BigInt(lo >>> 0) }; }
      }
    }
    const lo = Number(value & 0xffffffffn) | 0, hi = Number((value >> 32n) & 0xffffffffn) | 0;
    switch (size) {
      case 1: mem.wr8(lin, lo & 0xff); break;
      case 2: mem.wr16(lin, lo & 0xffff); break;
      case 4: mem.wr32(lin, lo); break;
      default: mem.wr64(lin, lo, hi); break;
    }
    return { value: 0n };
  } catch (e) {
    if (!(e instanceof CpuFault)) throw e;
    return { fault: { vector: e.vector, err: e.errorCode, cr2: e.cr2 } };
  }
}

/**
 * A whole access in the model: translate the first page (committing its A/D bits), then
 * the second page if the access crosses into it, then move the data. `choose(i)` may supply
 * a stale translation (a physical page base) for page i instead of a fresh walk.
 */
export function refAccess(u8: Uint8Array, r: Regs, lin: number, size: number, kind: Kind, value: bigint, ctx: RefCtx,
  choose: (i: number) => bigint | null = () => null): { value: bigint; log: [number, number][]; pas: bigint[]; tlen: number } | { fault: RefFault; log: [number, number][] } {
  const log: [number, number][] = [];
  // Apply writes as we go, so the second walk sees the first one's A/D bits; undo at the end.
  const undo: [number, number][] = [];
  const put = (a: number, b: number) => { undo.push([a, u8[a]]); u8[a] = b; log.push([a, b]); };
  const off = lin % 4096;
  const pages = off + size > 4096 ? [lin, nextPage(r, lin)] : [lin];
  const pas: bigint[] = [];
  try {
    for (let i = 0; i < pages.length; i++) {
      const at = i === 0 ? lin : pages[i];
      const stale = choose(i);
      if (stale !== null) { pas.push(stale + BigInt(at % 4096)); continue; }
      const t = refXlate(u8, r, at, kind, ctx);
      if ('fault' in t) return { fault: t.fault, log };
      for (const [a, b] of t.log) put(a, b);
      pas.push(t.pa);
    }
    const tlen = log.length; // the translations' A/D writes come first, then the data
    const byteAddr = (i: number) => Number(i < 4096 - off ? pas[0] + BigInt(i) : pas[1] + BigInt(i - (4096 - off)));
    if (kind === 'x') return { value: pas[0], log, pas, tlen };
    if (kind === 'r') {
      let v = 0n;
      for (let i = size - 1; i >= 0; i--) v = (v << 8n) | BigInt(u8[byteAddr(i)]);
      return { value: v, log, pas, tlen };
    }
    for (let i = 0; i < size; i++) put(byteAddr(i), Number((value >> BigInt(8 * i)) & 0xffn));
    return { value: 0n, log, pas, tlen };
  } finally {
    for (let i = undo.length - 1; i >= 0; i--) u8[undo[i][0]] = undo[i][1];
  }
}

export function hex(n: number | bigint): string { return '0x' + n.toString(16); }
