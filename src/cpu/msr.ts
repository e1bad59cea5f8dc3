// Model-specific registers: what RDMSR/WRMSR see. Each MSR the CPU model knows has a reader
// and a writer that rejects reserved bits, invalid memory types and non-canonical addresses
// with #GP(0), as hardware does; any other index is #GP(0) too. A machine or hypervisor
// adds its own MSRs per CPU with addMsr (x2APIC registers, Xen's hypercall-page MSR, ...).
//
// Values are 64-bit (lo, hi) int32 pairs; a reader returns lo and leaves hi in cpu.t.
// Most values live in cpu.msrs; those with a home elsewhere (EFER, the FS/GS bases, the TSC)
// are read and written there. The TSC is virtual: a write sets cpu.tscOffset against the
// retired cycles. TSC values are doubles, exact below 2^53 (about 35 days at 3 GHz).

import type { Cpu } from './cpu.js';
import { CpuidExt1Edx } from './cpuid.js';
import { CpuFault, Vec } from './fault.js';
import { Cr0, Efer, Seg } from './state.js';

const TWO32 = 4294967296;

export const enum Msr {
  PLATFORM_ID = 0x17, APIC_BASE = 0x1b, TSC = 0x10, BIOS_SIGN_ID = 0x8b, MTRRCAP = 0xfe,
  SYSENTER_CS = 0x174, SYSENTER_ESP = 0x175, SYSENTER_EIP = 0x176, MISC_ENABLE = 0x1a0,
  MTRR_PHYSBASE0 = 0x200, MTRR_FIX64K = 0x250, MTRR_FIX16K_80000 = 0x258, MTRR_FIX16K_A0000 = 0x259,
  MTRR_FIX4K_C0000 = 0x268, MTRR_FIX4K_F8000 = 0x26f, PAT = 0x277, MTRR_DEF_TYPE = 0x2ff,
  EFER = 0xc0000080, STAR = 0xc0000081, LSTAR = 0xc0000082, CSTAR = 0xc0000083, SFMASK = 0xc0000084,
  FS_BASE = 0xc0000100, GS_BASE = 0xc0000101, KERNEL_GS_BASE = 0xc0000102, TSC_AUX = 0xc0000103,
}

/** Power-on values of the MSRs kept in cpu.msrs (lo, hi). */
const RESET: ReadonlyMap<number, readonly [number, number]> = new Map<number, readonly [number, number]>([
  [Msr.APIC_BASE, [0xfee00900 | 0, 0]],         // base 0xfee00000, BSP, enabled
  [Msr.PAT, [0x00070406, 0x00070406]],          // WB WT UC- UC, twice
  [Msr.MISC_ENABLE, [0x1801, 0]],               // fast strings; BTS and PEBS unavailable
  [Msr.MTRR_DEF_TYPE, [0, 0]],
]);

/** Variable MTRR pairs advertised in MTRRcap, and its value: VCNT, FIX, WC. */
const MTRR_VCNT = 8;
const MTRRCAP = MTRR_VCNT | 0x100 | 0x400;
/** Physical address bits (CPUID 0x80000008 reports 40): bits at and above are reserved. */
const PHYS_HI_MASK = 0xff; // bits 32..39 of a physical address

/** A per-CPU MSR added by a device or the hypervisor. rd returns lo (hi in cpu.t); wr may
 *  throw #GP for a bad value. */
export interface MsrHandler {
  rd(cpu: Cpu): number;
  wr(cpu: Cpu, lo: number, hi: number): void;
}

const extra = new WeakMap<Cpu, Map<number, MsrHandler>>();

/** Add (or replace) an MSR of one CPU; it takes precedence over the built-in model. */
export function addMsr(cpu: Cpu, index: number, h: MsrHandler): void {
  let m = extra.get(cpu);
  if (!m) { m = new Map(); extra.set(cpu, m); }
  m.set(index >>> 0, h);
}

function gp(): never { throw new CpuFault(Vec.GP, 0); }
function canonical(hi: number): boolean { return ((hi << 16) >> 16) === hi; }
/** Memory types valid in the PAT and MTRRs: UC WC WT WP WB (and UC- for the PAT). */
function validType(t: number, pat: boolean): boolean {
  return t === 0 || t === 1 || t === 4 || t === 5 || t === 6 || (pat && t === 7);
}
function validTypes8(lo: number, hi: number, pat: boolean): boolean {
  for (let i = 0; i < 4; i++) {
    if (!validType((lo >>> (i * 8)) & 0xff, pat) || !validType((hi >>> (i * 8)) & 0xff, pat)) return false;
  }
  return true;
}

function stored(cpu: Cpu, index: number): number {
  const v = cpu.msrs.get(index) ?? RESET.get(index);
  cpu.t = v ? v[1] : 0;
  return v ? v[0] : 0;
}
function store(cpu: Cpu, index: number, lo: number, hi: number): void { cpu.msrs.set(index, [lo | 0, hi | 0]); }

function isFixedMtrr(i: number): boolean {
  return i === Msr.MTRR_FIX64K || i === Msr.MTRR_FIX16K_80000 || i === Msr.MTRR_FIX16K_A0000 ||
    (i >= Msr.MTRR_FIX4K_C0000 && i <= Msr.MTRR_FIX4K_F8000);
}
function isVarMtrr(i: number): boolean { return i >= Msr.MTRR_PHYSBASE0 && i < Msr.MTRR_PHYSBASE0 + 2 * MTRR_VCNT; }

/** RDMSR: the value of MSR index (lo; hi in cpu.t), or #GP(0) if there is no such MSR. */
export function rdmsr(cpu: Cpu, index: number): number {
  index >>>= 0;
  const h = extra.get(cpu)?.get(index);
  if (h) return h.rd(cpu);
  switch (index) {
    case Msr.TSC: {
      const t = cpu.tsc();
      const hi = Math.floor(t / TWO32);
      cpu.t = hi | 0;
      return (t - hi * TWO32) | 0;
    }
    case Msr.EFER: cpu.t = 0; return cpu.efer;
    case Msr.FS_BASE: case Msr.GS_BASE: {
      const s = index === Msr.FS_BASE ? Seg.FS : Seg.GS;
      cpu.t = cpu.seg.baseHi[s];
      return cpu.seg.baseLo[s];
    }
    case Msr.MTRRCAP: cpu.t = 0; return MTRRCAP;
    case Msr.PLATFORM_ID: case Msr.BIOS_SIGN_ID: cpu.t = 0; return 0; // as Xen shows them
    case Msr.APIC_BASE: case Msr.PAT: case Msr.MISC_ENABLE: case Msr.MTRR_DEF_TYPE:
    case Msr.STAR: case Msr.LSTAR: case Msr.CSTAR: case Msr.SFMASK: case Msr.KERNEL_GS_BASE: case Msr.TSC_AUX:
    case Msr.SYSENTER_CS: case Msr.SYSENTER_ESP: case Msr.SYSENTER_EIP:
      return stored(cpu, index);
    default:
      if (isVarMtrr(index) || isFixedMtrr(index)) return stored(cpu, index);
      return gp();
  }
}

/** WRMSR: set MSR index to (lo, hi); #GP(0) for an unknown MSR or a value it rejects. */
export function wrmsr(cpu: Cpu, index: number, lo: number, hi: number): void {
  index >>>= 0;
  lo |= 0; hi |= 0;
  const h = extra.get(cpu)?.get(index);
  if (h) { h.wr(cpu, lo, hi); return; }
  switch (index) {
    case Msr.TSC:
      cpu.tscOffset = (hi >>> 0) * TWO32 + (lo >>> 0) - cpu.cycles;
      return;
    case Msr.EFER: writeEfer(cpu, lo, hi); return;
    case Msr.FS_BASE: case Msr.GS_BASE: {
      if (!canonical(hi)) gp();
      const s = index === Msr.FS_BASE ? Seg.FS : Seg.GS;
      cpu.seg.baseLo[s] = lo; cpu.seg.baseHi[s] = hi;
      return;
    }
    case Msr.LSTAR: case Msr.CSTAR: case Msr.KERNEL_GS_BASE: case Msr.SYSENTER_ESP: case Msr.SYSENTER_EIP:
      if (!canonical(hi)) gp();
      store(cpu, index, lo, hi);
      return;
    case Msr.STAR: case Msr.SYSENTER_CS:
      store(cpu, index, lo, hi);
      return;
    case Msr.SFMASK: case Msr.TSC_AUX:
      if (hi !== 0) gp(); // bits 63:32 reserved
      store(cpu, index, lo, 0);
      return;
    case Msr.PAT:
      if (!validTypes8(lo, hi, true)) gp();
      store(cpu, index, lo, hi);
      cpu.mem.flush();
      return;
    case Msr.APIC_BASE:
      // Bits 0..7 and 9 reserved, 10 (x2APIC) reserved without x2APIC, base below 2^40.
      if ((lo & 0x6ff) !== 0 || (hi & ~PHYS_HI_MASK) !== 0) gp();
      store(cpu, index, lo, hi);
      return;
    case Msr.MISC_ENABLE: {
      // Writable: fast strings (0), TCC (3), EIST (16), MONITOR (18), limit CPUID (22),
      // xTPR disable (23), XD disable (34). Other bits must be written as read.
      const old = stored(cpu, index), oldHi = cpu.t;
      const wl = 0x00c50009, wh = 0x4;
      if (((lo ^ old) & ~wl) !== 0 || ((hi ^ oldHi) & ~wh) !== 0) gp();
      store(cpu, index, lo, hi);
      return;
    }
    case Msr.MTRR_DEF_TYPE:
      if (hi !== 0 || (lo & ~0xcff) !== 0 || !validType(lo & 0xff, false)) gp();
      store(cpu, index, lo, 0);
      return;
    case Msr.MTRRCAP: case Msr.PLATFORM_ID:
      return gp(); // read-only
    case Msr.BIOS_SIGN_ID:
      return; // writing 0 before CPUID asks for the microcode revision: accepted, ignored
    default:
      if (isFixedMtrr(index)) {
        if (!validTypes8(lo, hi, false)) gp();
        store(cpu, index, lo, hi);
        return;
      }
      if (isVarMtrr(index)) {
        if ((hi & ~PHYS_HI_MASK) !== 0) gp();
        if ((index & 1) === 0) { if ((lo & 0xf00) !== 0 || !validType(lo & 0xff, false)) gp(); }
        else if ((lo & 0x7ff) !== 0) gp();
        store(cpu, index, lo, hi);
        return;
      }
      gp();
  }
}

/** EFER: SCE and NXE only if CPUID has them, LME not while paging is on, LMA read-only. */
function writeEfer(cpu: Cpu, lo: number, hi: number): void {
  const m = cpu.model;
  let ok = Efer.LME | Efer.LMA;
  if (m.ext1Edx & CpuidExt1Edx.SYSCALL) ok |= Efer.SCE;
  if (m.ext1Edx & CpuidExt1Edx.NX) ok |= Efer.NXE;
  if (hi !== 0 || (lo & ~ok) !== 0) gp();
  if ((cpu.cr0 & Cr0.PG) && ((lo ^ cpu.efer) & Efer.LME)) gp();
  cpu.efer = (lo & ~Efer.LMA) | (cpu.efer & Efer.LMA);
  cpu.mem.flush(); // the MMU wants every EFER write (NXE changes the page-table format)
  cpu.endBlock();
}
