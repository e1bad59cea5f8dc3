// Paged memory: the CpuMemory of guests that run with their own page tables (PV, PVH, HVM).
// A linear address goes through a software TLB; a miss walks the guest's tables (4-level
// long mode, 3-level PAE, 2-level 32-bit, or identity with paging off), checks the access
// rights as the SDM (vol. 3A ch. 4.6) states them, sets accessed/dirty bits as hardware
// does, and fills the TLB.
//
// TLB layout. Direct-mapped, `sets` slots per privilege (4096 by default): slot = vpn & mask
// for supervisor accesses, + sets for user accesses (CPL 3 and not implicitSupervisor).
// Per slot, three tags (Float64Array, the virtual page number or -1): one each for read,
// write and execute, and the frame number (Int32Array) they share. A tag is present only if
// that access, at that privilege, is allowed with no further side effect: a write tag only
// once the leaf's D bit is set, and never for frames that are write-protected for the PV
// model. The supervisor tags are strict about SMAP (as if RFLAGS.AC were 0): supervisor data
// accesses to user pages with SMAP on always take the slow path, which honours AC.
// So a hit is: tag load, compare, frame load (and, for writes, one byte of PhysMem.codeFrame).
//
//   hit:  rd32(lin) = tagR[s] === vpn  →  dv.getInt32(frame[s] * 4096 + (lin & 4095))
//
// Misses never see stale state: the walk reads the control registers and tables afresh.
// What a stale TLB entry can produce is exactly what the SDM allows a TLB to keep (a
// translation that was valid at some point since the last invalidation covering it); it
// never caches a fault or a not-present entry.
//
// What the CPU must call:
//   flush()        after every MOV to CR0, CR3 or CR4 and every WRMSR to EFER. It reloads the
//                  PAE PDPTEs and drops non-global entries; if a paging-relevant control
//                  bit changed (CR0.PG/WP, CR4.PSE/PAE/PGE/SMEP/SMAP/PCIDE, EFER.NXE/LMA) it
//                  drops everything, global entries included.
//   flush(lin)     INVLPG lin (drops that page, global or not, and every entry that came from
//                  the same large page).
//   flushAll()     drops everything (INVPCID all-context, or a hypervisor that changed
//                  mappings behind the guest's back).
//   implicitSupervisor = true around implicit supervisor-mode accesses (GDT/LDT/IDT/TSS
//                  reads and descriptor A-bit writes), so they are checked as supervisor
//                  accesses at any CPL and count as implicit for SMAP.
//   pdptesValid()  in PAE (non-long) mode, after a MOV to CR3 (or a CR0/CR4 change entering
//                  PAE paging): false means a PDPTE has reserved bits and the MOV must #GP.
// Every flush bumps `epoch` (CpuMemory: linked blocks are followed within one epoch).
//
// For the hypervisor and machines:
//   writeProtected / protect(ppn, on) / dropWritable(ppn) / onWriteProtected: PV frames the
//                  guest may not write whatever its PTEs say (page tables, descriptor pages);
//                  writes to them go to the hook (or #PF(P|W) without one).
//   mmio           physical addresses at or beyond the end of RAM.
//   xlate(lin, access, user)   a full translation as the CPU would do it (faults, A/D, fill).
//
// Deliberate choices: A/D bits are written only for accesses that pass every check (like
// QEMU; the SDM allows either); an access that crosses a page translates (and sets A/D for)
// the first page, then the second, and writes data only after both; paging-structure reads
// beyond RAM read all ones (so they fault with RSVD).

import { CpuFault, Vec } from '../cpu/fault.js';
import type { Cpu } from '../cpu/cpu.js';
import { Access, type CodeWriteHook, type CpuMemory } from '../cpu/memory.js';
import { Cr0, Cr4, Efer, F } from '../cpu/state.js';
import { PhysMem } from './physmem.js';

/** #PF error code bits. */
export const enum PfErr { P = 1, W = 2, U = 4, RSVD = 8, I = 16 }

/** The part of a Cpu the MMU reads: control registers, CPL and RFLAGS (f[0], for AC). */
export type PagingCpu = Pick<Cpu, 'cr0' | 'cr3Lo' | 'cr3Hi' | 'cr4' | 'efer' | 'cpl' | 'f'>;

/** Physical addresses at or above the end of RAM (after translation) go here. Devices see
 *  1-, 2- and 4-byte accesses; an 8-byte access is split into two 4-byte ones (low first). */
export interface MmioHandler {
  read(pa: number, size: number): number;
  write(pa: number, size: number, v: number): void;
}

/**
 * A guest write to a frame flagged in `writeProtected`, in place of the write (the write
 * is not done and the D bit is not set; A bits are). pa: the physical address of the first
 * byte; pa2: for a write that crosses into a second page, the physical address of its first
 * byte there, else -1. lo/hi: the value (hi only for 8-byte writes).
 */
export type WriteProtectHook = (pa: number, lin: number, size: number, lo: number, hi: number, pa2: number) => void;

export interface PagedOptions {
  /** 1 GiB pages (CPUID.80000001H:EDX.Page1GB). Default true. */
  gbPages?: boolean;
  /** log2 of the TLB slots per privilege level. Default 12 (4096). */
  tlbBits?: number;
  /** Share a write-protect map between the vCPUs of a domain (one byte per frame). */
  writeProtected?: Uint8Array;
}

const TWO32 = 4294967296;
const TWO47 = 140737488355328;
const TWO48 = 281474976710656;
/** Entry bits: P, R/W, U/S, A, D, PS, G. */
const P = 1, RW = 2, US = 4, A = 0x20, D = 0x40, PS = 0x80, G = 0x100;

/** Walk results. */
const enum W { OK = 0, NP = 1, RSVD = 2 }

/** The control-register bits that change how addresses translate or what is allowed, packed. */
function pagingKey(c: PagingCpu): number {
  const cr0 = c.cr0, cr4 = c.cr4, efer = c.efer;
  return ((cr0 >>> 31) & 1) | ((cr0 >>> 15) & 2) |              // PG, WP
    ((cr4 & (Cr4.PSE | Cr4.PAE | Cr4.PGE)) >>> 2) |              // bits 2, 3, 5
    ((cr4 & (Cr4.SMEP | Cr4.SMAP)) >>> 14) |                     // bits 6, 7
    ((cr4 & Cr4.PCIDE) >>> 9) |                                  // bit 8
    ((efer & (Efer.LMA | Efer.NXE)) >>> 1);                      // bits 9, 10
}

export class PagedMemory implements CpuMemory {
  hi = 0;
  /** Bumped whenever translations may change (every flush and every TLB drop). */
  epoch = 0;
  onCodeWrite: CodeWriteHook | null = null;
  /** Set by the CPU around implicit supervisor-mode accesses (descriptor tables, TSS). */
  implicitSupervisor = false;
  /** Where accesses beyond RAM go. Without one: #PF with RSVD under paging; with paging off,
   *  reads return all ones and writes are dropped. */
  mmio: MmioHandler | null = null;
  /** PV: writes to frames flagged in writeProtected call this instead of writing. */
  onWriteProtected: WriteProtectHook | null = null;
  /** One byte per frame: 1 = the guest may not write it whatever its PTEs say. */
  readonly writeProtected: Uint8Array;

  readonly u8: Uint8Array;
  private readonly dv: DataView;
  private readonly size: number;
  private readonly code: Uint8Array;
  private cpu!: PagingCpu;
  private readonly gbPages: boolean;

  // TLB.
  private readonly sets: number;
  private readonly mask: number;
  private readonly tagR: Float64Array;
  private readonly tagW: Float64Array;
  private readonly tagX: Float64Array;
  private readonly frame: Int32Array;
  /** The vpn a slot was filled for (whatever its tags), its global bit, and for entries from
   *  a large page the log2 of the page size in 4 KiB pages (9, 10 or 18; else 0). */
  private readonly vpnOf: Float64Array;
  private readonly glob: Uint8Array;
  private readonly large: Uint8Array;
  private readonly used: Int32Array;
  private readonly inUse: Uint8Array;
  private usedN = 0;
  /** Large-page entries filled since everything was last dropped (INVLPG scans only if any). */
  private largeN = 0;
  private key = -1;

  // PAE PDPTE registers (lo, hi for each of 4).
  private readonly pdpte = new Int32Array(8);
  private pdpteLoaded = false;
  private pdpteOk = true;

  // The last walk: entries used (physical address, for A/D), combined rights, leaf state.
  private readonly wEa = new Float64Array(4);
  private readonly wLo = new Int32Array(4);
  private wN = 0;
  private wBase = 0;      // physical address of the 4 KiB page
  private wRW = 0; private wUS = 0; private wNX = 0; private wG = 0; private wLarge = 0;
  /** Set by xlate: the translated frame is write-protected and the write goes to the hook. */
  private hooked = false;

  /** The entry readEntry() read. */
  private eLo = 0; private eHi = 0;

  private readonly scratch = new Uint8Array(8);
  private readonly sdv = new DataView(this.scratch.buffer);

  constructor(readonly phys: PhysMem, cpu?: PagingCpu, opts: PagedOptions = {}) {
    this.u8 = phys.u8; this.dv = phys.dv; this.size = phys.size; this.code = phys.codeFrame;
    if (cpu) this.cpu = cpu;
    this.gbPages = opts.gbPages ?? true;
    const bits = opts.tlbBits ?? 12;
    this.sets = 1 << bits; this.mask = this.sets - 1;
    const n = this.sets * 2;
    this.tagR = new Float64Array(n).fill(-1);
    this.tagW = new Float64Array(n).fill(-1);
    this.tagX = new Float64Array(n).fill(-1);
    this.frame = new Int32Array(n);
    this.vpnOf = new Float64Array(n).fill(-1);
    this.glob = new Uint8Array(n);
    this.large = new Uint8Array(n);
    this.used = new Int32Array(n);
    this.inUse = new Uint8Array(n);
    this.writeProtected = opts.writeProtected ?? new Uint8Array(phys.frames);
    if (this.writeProtected.length < phys.frames) throw new Error('writeProtected map smaller than memory');
  }

  /** Attach the CPU whose control registers drive translation (Cpu needs its memory first). */
  attach(cpu: PagingCpu): void { this.cpu = cpu; this.flushAll(); }

  // ---- hot paths -----------------------------------------------------------------------

  /** TLB slot offset for the current privilege: user accesses use the upper half. */
  private uoff(): number { return this.cpu.cpl === 3 && !this.implicitSupervisor ? this.sets : 0; }

  rd8(lin: number): number {
    const off = lin & 4095, vpn = (lin - off) / 4096;
    const s = (vpn & this.mask) + this.uoff();
    if (this.tagR[s] === vpn) return this.u8[this.frame[s] * 4096 + off];
    return this.slowRead(lin, 1);
  }
  rd16(lin: number): number {
    const off = lin & 4095, vpn = (lin - off) / 4096;
    const s = (vpn & this.mask) + this.uoff();
    if (this.tagR[s] === vpn && off <= 4094) return this.dv.getUint16(this.frame[s] * 4096 + off, true);
    return this.slowRead(lin, 2);
  }
  rd32(lin: number): number {
    const off = lin & 4095, vpn = (lin - off) / 4096;
    const s = (vpn & this.mask) + this.uoff();
    if (this.tagR[s] === vpn && off <= 4092) return this.dv.getInt32(this.frame[s] * 4096 + off, true);
    return this.slowRead(lin, 4);
  }
  rd64(lin: number): number {
    const off = lin & 4095, vpn = (lin - off) / 4096;
    const s = (vpn & this.mask) + this.uoff();
    if (this.tagR[s] === vpn && off <= 4088) {
      const pa = this.frame[s] * 4096 + off;
      this.hi = this.dv.getInt32(pa + 4, true);
      return this.dv.getInt32(pa, true);
    }
    return this.slowRead(lin, 8);
  }

  wr8(lin: number, v: number): void {
    const off = lin & 4095, vpn = (lin - off) / 4096;
    const s = (vpn & this.mask) + this.uoff();
    if (this.tagW[s] === vpn) {
      const f = this.frame[s];
      if (this.code[f] === 0) { this.u8[f * 4096 + off] = v; return; }
    }
    this.slowWrite(lin, 1, v, 0);
  }
  wr16(lin: number, v: number): void {
    const off = lin & 4095, vpn = (lin - off) / 4096;
    const s = (vpn & this.mask) + this.uoff();
    if (this.tagW[s] === vpn && off <= 4094) {
      const f = this.frame[s];
      if (this.code[f] === 0) { this.dv.setUint16(f * 4096 + off, v & 0xffff, true); return; }
    }
    this.slowWrite(lin, 2, v, 0);
  }
  wr32(lin: number, v: number): void {
    const off = lin & 4095, vpn = (lin - off) / 4096;
    const s = (vpn & this.mask) + this.uoff();
    if (this.tagW[s] === vpn && off <= 4092) {
      const f = this.frame[s];
      if (this.code[f] === 0) { this.dv.setInt32(f * 4096 + off, v, true); return; }
    }
    this.slowWrite(lin, 4, v, 0);
  }
  wr64(lin: number, lo: number, hi: number): void {
    const off = lin & 4095, vpn = (lin - off) / 4096;
    const s = (vpn & this.mask) + this.uoff();
    if (this.tagW[s] === vpn && off <= 4088) {
      const f = this.frame[s];
      if (this.code[f] === 0) {
        const pa = f * 4096 + off;
        this.dv.setInt32(pa, lo, true); this.dv.setInt32(pa + 4, hi, true);
        return;
      }
    }
    this.slowWrite(lin, 8, lo, hi);
  }

  fetchPhys(lin: number): number {
    const off = lin & 4095, vpn = (lin - off) / 4096;
    const s = (vpn & this.mask) + this.uoff();
    if (this.tagX[s] === vpn) return this.frame[s] * 4096 + off;
    const user = this.uoff() !== 0;
    const pa = this.xlate(lin, Access.Exec, user);
    if (pa >= this.size) throw new CpuFault(Vec.PF, PfErr.P | PfErr.RSVD | this.idBit() | (user ? PfErr.U : 0), lin);
    return pa;
  }
  physByte(phys: number): number { return this.u8[phys]; }

  probeWrite(lin: number, len: number): void {
    if (len <= 0) return;
    const user = this.uoff() !== 0;
    const off = lin & 4095;
    this.xlate(lin, Access.Write, user);
    // Each further page the range touches (len is at most a few pages: an interrupt frame, xsave).
    let page = lin - off;
    for (let left = len - (4096 - off); left > 0; left -= 4096) {
      page = this.nextPage(page);
      this.xlate(page, Access.Write, user);
    }
  }

  markCode(ppn: number): void { this.code[ppn] = 1; }

  // ---- slow paths ----------------------------------------------------------------------

  private slowRead(lin: number, size: number): number {
    const user = this.uoff() !== 0;
    const off = lin & 4095;
    const pa = this.xlate(lin, Access.Read, user);
    if (off + size <= 4096) {
      if (pa < this.size) {
        const dv = this.dv;
        switch (size) {
          case 1: return this.u8[pa];
          case 2: return dv.getUint16(pa, true);
          case 4: return dv.getInt32(pa, true);
          default: this.hi = dv.getInt32(pa + 4, true); return dv.getInt32(pa, true);
        }
      }
      return this.busRead(pa, size);
    }
    const pa2 = this.xlate(this.nextPage(lin - off), Access.Read, user);
    const n1 = 4096 - off;
    const sb = this.scratch;
    for (let i = 0; i < size; i++) sb[i] = i < n1 ? this.byteAt(pa + i) : this.byteAt(pa2 + i - n1);
    return this.fromScratch(size);
  }

  private fromScratch(size: number): number {
    const d = this.sdv;
    switch (size) {
      case 2: return d.getUint16(0, true);
      case 4: return d.getInt32(0, true);
      default: this.hi = d.getInt32(4, true); return d.getInt32(0, true);
    }
  }

  private slowWrite(lin: number, size: number, lo: number, hi: number): void {
    const user = this.uoff() !== 0;
    const off = lin & 4095;
    const pa = this.xlate(lin, Access.Write, user);
    const h1 = this.hooked;
    if (off + size <= 4096) {
      if (h1) { this.onWriteProtected!(pa, lin, size, lo, hi, -1); return; }
      if (pa < this.size) {
        const dv = this.dv;
        switch (size) {
          case 1: this.u8[pa] = lo; break;
          case 2: dv.setUint16(pa, lo & 0xffff, true); break;
          case 4: dv.setInt32(pa, lo, true); break;
          default: dv.setInt32(pa, lo, true); dv.setInt32(pa + 4, hi, true); break;
        }
        this.wroteFrame((pa - off) / 4096);
      } else this.busWrite(pa, size, lo, hi);
      return;
    }
    // Crossing into a second page: both translations (and their faults) before any byte.
    const pa2 = this.xlate(this.nextPage(lin - off), Access.Write, user);
    if (h1 || this.hooked) { this.onWriteProtected!(pa, lin, size, lo, hi, pa2); return; }
    const d = this.sdv;
    d.setInt32(0, lo, true); d.setInt32(4, hi, true);
    const n1 = 4096 - off, sb = this.scratch;
    for (let i = 0; i < size; i++) this.byteTo(i < n1 ? pa + i : pa2 + i - n1, sb[i]);
    if (pa < this.size) this.wroteFrame((pa - off) / 4096);
    if (pa2 < this.size) this.wroteFrame(pa2 / 4096);
  }

  private wroteFrame(ppn: number): void {
    if (this.code[ppn] === 1) { this.code[ppn] = 0; this.onCodeWrite?.(ppn); }
  }

  private byteAt(pa: number): number {
    return pa < this.size ? this.u8[pa] : this.busRead(pa, 1) & 0xff;
  }
  private byteTo(pa: number, v: number): void {
    if (pa < this.size) this.u8[pa] = v; else this.busWrite(pa, 1, v, 0);
  }

  /** Beyond RAM: the MMIO handler, or all ones (reads) and nothing (writes). */
  private busRead(pa: number, size: number): number {
    const m = this.mmio;
    if (size === 8) {
      if (!m) { this.hi = -1; return -1; }
      const lo = m.read(pa, 4) | 0;
      this.hi = m.read(pa + 4, 4) | 0;
      return lo;
    }
    if (!m) return size === 4 ? -1 : size === 2 ? 0xffff : 0xff;
    const v = m.read(pa, size);
    return size === 4 ? v | 0 : size === 2 ? v & 0xffff : v & 0xff;
  }
  private busWrite(pa: number, size: number, lo: number, hi: number): void {
    const m = this.mmio;
    if (!m) return;
    if (size === 8) { m.write(pa, 4, lo | 0); m.write(pa + 4, 4, hi | 0); return; }
    m.write(pa, size, size === 4 ? lo | 0 : size === 2 ? lo & 0xffff : lo & 0xff);
  }

  /** The linear address of the page after `page` (wraps at 2^48 / 2^32). Crossing from the
   *  lower canonical half into the non-canonical hole is #GP(0). */
  private nextPage(page: number): number {
    const n = page + 4096;
    if (this.isLong()) {
      if (n === TWO47) throw new CpuFault(Vec.GP, 0);
      return n === TWO48 ? 0 : n;
    }
    return n === TWO32 ? 0 : n;
  }

  private isLong(): boolean { return (this.cpu.efer & Efer.LMA) !== 0; }

  /** The I/D bit of the error code for instruction fetches: only with NX in use (PAE
   *  paging and EFER.NXE) or SMEP. */
  private idBit(): number {
    const c = this.cpu;
    return (c.cr4 & Cr4.SMEP) !== 0 || ((c.cr4 & Cr4.PAE) !== 0 && (c.efer & Efer.NXE) !== 0) ? PfErr.I : 0;
  }

  // ---- translation ---------------------------------------------------------------------

  /**
   * Translate one linear address for an access at a privilege (user: a user-mode access),
   * with every check, A/D update and TLB fill; throws #PF. Returns the physical address,
   * which is at or beyond the end of RAM only when an MMIO handler takes it (or with paging
   * off). Sets `hooked` for a write to a write-protected frame that the hook takes.
   * Hypervisor code may call it to translate guest linear addresses (catch the CpuFault).
   */
  xlate(lin: number, kind: Access, user: boolean): number {
    const c = this.cpu;
    this.hooked = false;
    const key = pagingKey(c);
    if (key !== this.key) { this.key = key; this.dropAll(); }
    const off = lin & 4095, vpn = (lin - off) / 4096;
    if ((c.cr0 & Cr0.PG) === 0) {
      const pa = lin - off;
      if (pa < this.size) {
        const ppn = pa / 4096;
        this.install(vpn, ppn, 7, 7, 0, 0, this.writeProtected[ppn] === 0);
        if (kind === Access.Write && this.writeProtected[ppn] !== 0) this.protectedWrite(lin, user);
      }
      return lin;
    }
    const write = kind === Access.Write;
    const errBase = (write ? PfErr.W : 0) | (user ? PfErr.U : 0) | (kind === Access.Exec ? this.idBit() : 0);
    const st = this.walk(lin, vpn);
    if (st === W.NP) throw new CpuFault(Vec.PF, errBase, lin);
    if (st === W.RSVD) throw new CpuFault(Vec.PF, errBase | PfErr.P | PfErr.RSVD, lin);
    const base = this.wBase;
    const ram = base < this.size;
    const ppn = ram ? base / 4096 : -1;
    const prot = ram && this.writeProtected[ppn] !== 0;
    // Access rights (SDM 4.6).
    const us = this.wUS !== 0, rw = this.wRW !== 0, nx = this.wNX !== 0;
    const cr4 = c.cr4;
    let ok: boolean;
    if (user) {
      ok = us && (kind !== Access.Exec || !nx) && (!write || rw || prot);
    } else if (kind === Access.Exec) {
      ok = !nx && !(us && (cr4 & Cr4.SMEP) !== 0);
    } else {
      ok = !(us && (cr4 & Cr4.SMAP) !== 0 && (this.implicitSupervisor || c.cpl === 3 || (c.f[0] & F.AC) === 0));
      if (ok && write && !rw && !prot) ok = (c.cr0 & Cr0.WP) === 0;
    }
    if (!ok) throw new CpuFault(Vec.PF, errBase | PfErr.P, lin);
    if (!ram && this.mmio === null) throw new CpuFault(Vec.PF, errBase | PfErr.P | PfErr.RSVD, lin);
    if (write && prot) this.protectedWrite(lin, user);
    // Commit: A on every entry used, D on the leaf for a (real) write.
    const n = this.wN, ea = this.wEa, wl = this.wLo;
    for (let i = 0; i < n; i++) if ((wl[i] & A) === 0) this.setEntryBits(ea[i], A);
    let dirty = (wl[n - 1] & D) !== 0;
    if (write && !dirty && !prot) { this.setEntryBits(ea[n - 1], D); dirty = true; }
    if (ram) {
      const smap = (cr4 & Cr4.SMAP) !== 0 && us, smep = (cr4 & Cr4.SMEP) !== 0 && us;
      const wp = (c.cr0 & Cr0.WP) !== 0;
      const uPerm = (us ? 1 : 0) | (us && rw && dirty ? 2 : 0) | (us && !nx ? 4 : 0);
      const sPerm = (smap ? 0 : 1) | (!smap && (rw || !wp) && dirty ? 2 : 0) | (!nx && !smep ? 4 : 0);
      this.install(vpn, ppn, uPerm, sPerm, this.wG, this.wLarge, !prot);
    }
    return base + off;
  }

  private protectedWrite(lin: number, user: boolean): void {
    if (this.onWriteProtected === null) {
      throw new CpuFault(Vec.PF, PfErr.P | PfErr.W | (user ? PfErr.U : 0), lin);
    }
    this.hooked = true;
  }

  /** Set bits in the low byte of a paging-structure entry (A/D), as a locked OR would. */
  private setEntryBits(ea: number, bits: number): void {
    this.u8[ea] |= bits;
    this.wroteFrame(Math.floor(ea / 4096));
  }

  /** Read the entry at physical ea (8 or 4 bytes) into eLo/eHi; beyond RAM reads all ones. */
  private readEntry(ea: number, wide: boolean): void {
    if (ea + (wide ? 8 : 4) <= this.size) {
      this.eLo = this.dv.getInt32(ea, true);
      this.eHi = wide ? this.dv.getInt32(ea + 4, true) : 0;
    } else { this.eLo = -1; this.eHi = wide ? -1 : 0; }
  }

  /**
   * Walk the tables for lin without side effects. On OK: wBase, wRW, wUS, wNX, wG, wLarge
   * and the entries used (wEa, wLo, wN: these get A bits; the last is the leaf).
   */
  private walk(lin: number, vpn: number): W {
    const c = this.cpu;
    const nxe = (c.efer & Efer.NXE) !== 0;
    const pge = (c.cr4 & Cr4.PGE) !== 0;
    let rw = RW, us = US, nx = 0, n = 0;
    const ea = this.wEa, wl = this.wLo;
    this.wLarge = 0;
    if ((c.cr4 & Cr4.PAE) === 0) {
      // 2-level 32-bit paging: 4-byte entries, 4 MiB pages with CR4.PSE (PSE-36: bits 13..20
      // hold physical address bits 32..39; bit 21 is reserved).
      const l = lin >>> 0;
      let e = ((c.cr3Lo & ~0xfff) >>> 0) + (l >>> 22) * 4;
      this.readEntry(e, false);
      let lo = this.eLo;
      if ((lo & P) === 0) return W.NP;
      ea[n] = e; wl[n] = lo; n++;
      rw &= lo; us &= lo;
      if ((lo & PS) !== 0 && (c.cr4 & Cr4.PSE) !== 0) {
        if ((lo & 0x200000) !== 0) return W.RSVD;
        this.wBase = ((lo & 0xffc00000) >>> 0) + ((lo >>> 13) & 0xff) * TWO32 + ((l >>> 12) & 0x3ff) * 4096;
        this.wLarge = 10;
      } else {
        e = ((lo & ~0xfff) >>> 0) + ((l >>> 12) & 0x3ff) * 4;
        this.readEntry(e, false);
        lo = this.eLo;
        if ((lo & P) === 0) return W.NP;
        ea[n] = e; wl[n] = lo; n++;
        rw &= lo; us &= lo;
        this.wBase = (lo & ~0xfff) >>> 0;
      }
      this.wN = n; this.wRW = rw; this.wUS = us; this.wNX = 0;
      this.wG = pge && (lo & G) !== 0 ? 1 : 0;
      return W.OK;
    }
    let table: number;
    let level: number;
    if ((c.efer & Efer.LMA) !== 0) {
      table = (c.cr3Hi & 0xff) * TWO32 + ((c.cr3Lo & ~0xfff) >>> 0);
      level = 4;
    } else {
      // PAE: the PDPTE registers, loaded at the last CR3 write (flush()).
      if (!this.pdpteLoaded) this.loadPdptes();
      const i = (lin >>> 30) & 3;
      const lo = this.pdpte[i * 2], hi = this.pdpte[i * 2 + 1];
      if ((lo & P) === 0) return W.NP;
      if ((lo & 0x1e6) !== 0 || (hi & 0xffffff00) !== 0) return W.RSVD;
      table = (hi & 0xff) * TWO32 + ((lo & ~0xfff) >>> 0);
      level = 2;
    }
    const rsvdHi = level === 4 ? 0xfff00 : 0x7fffff00; // address bits 40..51 (PAE: ..62 too)
    let lo = 0, hi = 0;
    for (;;) {
      const shift = (level - 1) * 9;
      const idx = (shift === 0 ? vpn : Math.floor(vpn / 2 ** shift)) & 511;
      const e = table + idx * 8;
      this.readEntry(e, true);
      lo = this.eLo; hi = this.eHi;
      if ((lo & P) === 0) return W.NP;
      if ((hi & rsvdHi) !== 0) return W.RSVD;
      if (hi < 0) { if (!nxe) return W.RSVD; nx = 1; }
      ea[n] = e; wl[n] = lo; n++;
      rw &= lo; us &= lo;
      const hiBase = (hi & 0xff) * TWO32;
      if (level === 1) { this.wBase = hiBase + ((lo & ~0xfff) >>> 0); break; }
      if ((lo & PS) !== 0) {
        if (level === 4) return W.RSVD;
        if (level === 3) {
          if (!this.gbPages || (lo & 0x3fffe000) !== 0) return W.RSVD; // bits 13..29
          this.wBase = hiBase + ((lo & 0xc0000000) >>> 0) + (vpn % 262144) * 4096;
          this.wLarge = 18;
        } else {
          if ((lo & 0x1fe000) !== 0) return W.RSVD; // bits 13..20
          this.wBase = hiBase + ((lo & 0xffe00000) >>> 0) + (vpn & 511) * 4096;
          this.wLarge = 9;
        }
        break;
      }
      table = hiBase + ((lo & ~0xfff) >>> 0);
      level--;
    }
    this.wN = n; this.wRW = rw; this.wUS = us; this.wNX = nx;
    this.wG = pge && (lo & G) !== 0 ? 1 : 0;
    return W.OK;
  }

  private loadPdptes(): void {
    const c = this.cpu;
    const base = (c.cr3Lo & ~0x1f) >>> 0;
    let ok = true;
    for (let i = 0; i < 4; i++) {
      this.readEntry(base + i * 8, true);
      this.pdpte[i * 2] = this.eLo; this.pdpte[i * 2 + 1] = this.eHi;
      if ((this.eLo & P) !== 0 && ((this.eLo & 0x1e6) !== 0 || (this.eHi & 0xffffff00) !== 0)) ok = false;
    }
    this.pdpteLoaded = true;
    this.pdpteOk = ok;
  }

  /** PAE (non-long) paging: whether the PDPTEs loaded at the last flush() are free of
   *  reserved bits. A MOV to CR3/CR0/CR4 that loads bad PDPTEs must #GP(0) instead. */
  pdptesValid(): boolean {
    if (!this.pdpteLoaded) this.loadPdptes();
    return this.pdpteOk;
  }

  // ---- TLB management ------------------------------------------------------------------

  /** Fill both privilege slots for vpn. perm bits: 1 read, 2 write, 4 execute. */
  private install(vpn: number, ppn: number, uPerm: number, sPerm: number, glob: number, large: number, writable: boolean): void {
    const s0 = vpn & this.mask;
    if (!writable) { uPerm &= ~2; sPerm &= ~2; }
    this.fill(s0, vpn, ppn, sPerm, glob, large);
    this.fill(s0 + this.sets, vpn, ppn, uPerm, glob, large);
  }

  private fill(s: number, vpn: number, ppn: number, perm: number, glob: number, large: number): void {
    this.tagR[s] = (perm & 1) !== 0 ? vpn : -1;
    this.tagW[s] = (perm & 2) !== 0 ? vpn : -1;
    this.tagX[s] = (perm & 4) !== 0 ? vpn : -1;
    this.frame[s] = ppn;
    this.vpnOf[s] = vpn;
    this.glob[s] = glob;
    this.large[s] = large;
    if (large !== 0) this.largeN++;
    if (this.inUse[s] === 0) { this.inUse[s] = 1; this.used[this.usedN++] = s; }
  }

  private clear(s: number): void {
    this.tagR[s] = -1; this.tagW[s] = -1; this.tagX[s] = -1; this.vpnOf[s] = -1;
  }

  /** Drop every entry, global ones included. */
  private dropAll(): void {
    this.epoch++;
    const u = this.used;
    for (let i = 0; i < this.usedN; i++) { const s = u[i]; this.clear(s); this.inUse[s] = 0; }
    this.usedN = 0;
    this.largeN = 0;
  }

  /**
   * Called by the CPU on paging state changes. flush(lin): INVLPG. flush(): a MOV to CR0,
   * CR3 or CR4 or an EFER write: reloads the PAE PDPTEs, drops non-global entries, and all
   * entries if a paging control bit changed.
   */
  flush(lin?: number): void {
    this.epoch++;
    if (lin !== undefined) { this.invlpg(lin); return; }
    if (this.cpu === undefined) return;
    const key = pagingKey(this.cpu);
    this.pdpteLoaded = false;
    const c = this.cpu;
    if ((c.cr0 & Cr0.PG) !== 0 && (c.cr4 & Cr4.PAE) !== 0 && (c.efer & Efer.LMA) === 0) this.loadPdptes();
    if (key !== this.key) { this.key = key; this.dropAll(); return; }
    const u = this.used;
    let k = 0;
    for (let i = 0; i < this.usedN; i++) {
      const s = u[i];
      if (this.glob[s] !== 0 && this.vpnOf[s] !== -1) u[k++] = s;
      else { this.clear(s); this.inUse[s] = 0; }
    }
    this.usedN = k;
  }

  /** Drop everything, global entries included (INVPCID all, a hypervisor's remap). */
  flushAll(): void {
    this.dropAll();
    this.pdpteLoaded = false;
    if (this.cpu !== undefined) this.key = pagingKey(this.cpu);
  }

  /** INVLPG: the page of lin in both privilege slots, and every entry from the same large page. */
  private invlpg(lin: number): void {
    const off = lin & 4095, vpn = (lin - off) / 4096;
    const s0 = vpn & this.mask;
    this.clear(s0); this.clear(s0 + this.sets);
    if (this.largeN === 0) return;
    const u = this.used;
    for (let i = 0; i < this.usedN; i++) {
      const s = u[i], sh = this.large[s];
      if (sh === 0 || this.vpnOf[s] === -1) continue;
      const m = 2 ** sh;
      if (Math.floor(this.vpnOf[s] / m) === Math.floor(vpn / m)) this.clear(s);
    }
  }

  /** Flag a frame write-protected (PV page tables) or not; drops write entries to it. */
  protect(ppn: number, on: boolean): void {
    this.writeProtected[ppn] = on ? 1 : 0;
    if (on) this.dropWritable(ppn);
  }

  /** Drop TLB write entries to a frame (call on each vCPU when a shared map is changed). */
  dropWritable(ppn: number): void {
    const u = this.used;
    for (let i = 0; i < this.usedN; i++) { const s = u[i]; if (this.frame[s] === ppn) this.tagW[s] = -1; }
  }

  /** Number of live TLB slots (for tests and statistics). */
  get tlbEntries(): number {
    let n = 0;
    for (let i = 0; i < this.usedN; i++) if (this.vpnOf[this.used[i]] !== -1) n++;
    return n;
  }
}
