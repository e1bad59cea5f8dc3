// Privileged instructions a 64-bit PV guest executes natively, which fault at CPL 3 and
// Xen emulates (pv/emul-priv-op.c on #GP(0), pv/emul-inv-op.c on #UD).
//
// On #GP(0) Xen decodes the instruction and emulates only this list (its validate hook);
// anything else, or an emulation that raises an exception, reaches the guest's trap table:
//   in out ins outs   kernel mode with virtual IOPL >= 1 (user mode: IOPL 3); the ports go to
//                     the CPU's port bus (unclaimed ports read as all ones, writes dropped)
//   cli sti           with that IOPL: skipped (not emulated: PV guests use the upcall mask)
//   clts, wbinvd      kernel mode (wbinvd does nothing; invd is not on the list: #GP)
//   mov to/from CR0 CR2 CR3 CR4, DR0-7; rdmsr wrmsr; xsetbv     kernel mode
//   rdtsc rdtscp      only fault with CR4.TSD: kernel mode reads the TSC, user mode #GP
//   cpuid             (does not fault here: the CPU model already answers with the policy)
// "Kernel mode" is Xen's fake ring 0 for the guest kernel (read_segment reports DPL 0).
// After an emulated instruction RIP moves past it, RF is cleared and a set TF raises #DB.
//
// MSRs (read / write):
//   FS_BASE, GS_BASE (the kernel's), KERNEL_GS_BASE (the user's): read; write if canonical
//   EFER: LME LMA SCE NXE; a write of another value is logged and ignored
//   PAT: 0x0000050100070406; APIC_BASE: 0xfee00000 | enabled | BSP on vCPU 0;
//   MISC_ENABLE (Intel): the host's with BTS/PEBS unavailable, xTPR disabled, no perf/monitor;
//     writes of another value to these three are logged and ignored
//   STAR LSTAR CSTAR SFMASK: writes ignored (Linux and NetBSD set them up by hypercalls)
//   TSC: read; TSC_AUX: read/write (with RDTSCP); 0x40000000: write installs the hypercall page
//   UCODE_REV: the host's microcode revision; Intel's "write 0 first" is accepted
//   PLATFORM_INFO, MISC_FEATURES_ENABLES (Intel): 0 (CPUID faulting is not offered)
//   anything else: #GP (Xen >= 4.15 without msr_relaxed)

import { decode } from '../../cpu/decoder.js';
import { CpuFault, Vec } from '../../cpu/fault.js';
import { FS, getFlags, setFlags } from '../../cpu/flags.js';
import type { Insn } from '../../cpu/insn.js';
import { rdmsr as cpuRdmsr } from '../../cpu/msr.js';
import { Cr4, Efer, F } from '../../cpu/state.js';
import { hypercallPage } from '../builder.js';
import { setKernelBaseptr } from '../hypercall/mmu.js';
import { Errno } from '../errno.js';
import type { Vcpu } from '../vcpu.js';
import { hasErrorCode, injectException, setGuestCr2 } from './bounce.js';
import { pvCpuid } from './cpuid.js';
import {
  addrOk, canonHi, canonLo, destroyLdt, fixupGuestCr4, guestCr0, gsBase, linearOfHalves, makeCr4, pvState, setFpuTs, setGsBase,
  updateCr3, XEN_CR0,
} from './mode.js';

const TWO32 = 4294967296;

export const enum Msr {
  TSC = 0x10, APIC_BASE = 0x1b, UCODE_REV = 0x8b, PLATFORM_INFO = 0xce, MISC_FEATURES_ENABLES = 0x140, MISC_ENABLE = 0x1a0, PAT = 0x277, EFER = 0xc0000080, STAR = 0xc0000081,
  LSTAR = 0xc0000082, CSTAR = 0xc0000083, SFMASK = 0xc0000084, FS_BASE = 0xc0000100, GS_BASE = 0xc0000101,
  KERNEL_GS_BASE = 0xc0000102, TSC_AUX = 0xc0000103, XEN_HYPERCALL_PAGE = 0x40000000,
}
/** The PAT Xen runs with and PV guests read: WB WT UC- UC WC WP UC UC. */
export const XEN_PAT_LO = 0x00070406, XEN_PAT_HI = 0x00000501;
const EFER_KNOWN = Efer.SCE | Efer.LME | Efer.LMA | Efer.NXE;
// MISC_ENABLE bits: perf monitoring available (7), BTS unavailable (11), PEBS unavailable
// (12), MONITOR/MWAIT enable (18), xTPR disable (23).
const MISC_PERF = 1 << 7, MISC_BTS_UNAVAIL = 1 << 11, MISC_PEBS_UNAVAIL = 1 << 12, MISC_MONITOR = 1 << 18, MISC_XTPR_DISABLE = 1 << 23;
const MISC_ENABLE_HOST = 0x1801; // the CPU model's power-on value
const CR0_TS = 8;
const DR6_DEFAULT = 0xffff0ff0 | 0, DR7_DEFAULT = 0x400;

// ---- instruction fetch ------------------------------------------------------------------

/** Read guest bytes as Xen's copy_from_user does (a ring-0 read); the index of the first
 *  byte that faulted, or -1 when all were read. */
function readGuestBytes(v: Vcpu, lin: number, out: Uint8Array): number {
  const mem = v.cpu.mem, was = mem.implicitSupervisor;
  mem.implicitSupervisor = true;
  try {
    for (let i = 0; i < out.length; i++) {
      try { out[i] = mem.rd8((lin + i) % 281474976710656); } catch (e) { if (e instanceof CpuFault) return i; throw e; }
    }
    return -1;
  } finally { mem.implicitSupervisor = was; }
}

/** Decode the instruction at RIP; a number is the linear address that could not be read. */
function fetchInsn(v: Vcpu): Insn | number {
  const cpu = v.cpu, start = cpu.rip;
  const bytes = new Uint8Array(15);
  const bad = readGuestBytes(v, start, bytes);
  const d = decode((i) => (bad >= 0 && i >= bad ? -1 : bytes[i]), cpu.mode);
  return typeof d === 'number' ? start + d : d;
}

/** pv_emul_instruction_done: continue at `next`, RF cleared; a single step traps. */
export function instructionDone(v: Vcpu, next: number): void {
  const cpu = v.cpu;
  cpu.rip = next % 281474976710656;
  const fl = getFlags(cpu.f);
  if (fl & F.RF) setFlags(cpu.f, fl & ~F.RF);
  if (fl & F.TF) {
    v.debugregs[6] = ((v.debugregs[6] | 0x4000 | DR6_DEFAULT) & ~0x1000) >>> 0; // DR_STEP
    injectException(v, Vec.DB);
  }
  cpu.endBlock();
}

/** Inject what an emulated step raised (a CpuFault from the CPU's own handlers). */
function injectFault(v: Vcpu, e: CpuFault): void {
  injectException(v, e.vector, hasErrorCode(e.vector) ? e.errorCode : 0, e.cr2);
}

// ---- privilege checks -------------------------------------------------------------------

/** iopl_ok: kernel mode counts as ring 1 (ring 0 with VMASST_TYPE_architectural_iopl). */
export function ioplOk(v: Vcpu): boolean {
  const cpl = v.kernelMode ? ((v.domain.vmAssist & (1 << 4)) ? 0 : 1) : 3;
  return cpl <= (v.iopl & 3);
}

// ---- debug registers (set_debugreg / get_debugreg and MOV DR) ----------------------------

/** set_debugreg: 0, or -ENODEV (#UD for MOV DR), -EINVAL / -EPERM (#GP). */
export function setDebugreg(v: Vcpu, reg: number, lo: number, hi: number): number {
  const ps = pvState(v);
  const de = (ps.cr4 & Cr4.DE) !== 0;
  switch (reg) {
    case 0: case 1: case 2: case 3: {
      const lin = linearOfHalves(lo, hi);
      if (lin < 0 || !addrOk(lin)) return -Errno.EPERM;
      v.debugregs[reg] = lin;
      return 0;
    }
    case 4: case 6:
      if (reg === 4 && de) return -Errno.ENODEV;
      if (hi !== 0) return -Errno.EINVAL;
      v.debugregs[6] = ((lo | DR6_DEFAULT) & ~0x1000) >>> 0;
      return 0;
    case 5: case 7: {
      if (reg === 5 && de) return -Errno.ENODEV;
      if (hi !== 0) return -Errno.EINVAL;
      let val = ((lo & ~0xd800) | DR7_DEFAULT) >>> 0; // bits 11 12 14 15 zero, bit 10 one
      if (val & 0x2000) return -Errno.EPERM; // GD
      let io = 0;
      if (val & 0xff) {
        for (let i = 16; i < 32; i += 4) {
          if (((val >>> i) & 3) === 2) { // an I/O breakpoint
            if (!de) return -Errno.EPERM;
            io |= val & (3 << ((i - 16) >> 1));
          }
        }
        val &= ~io;
      }
      ps.dr7Emul = io;
      v.debugregs[7] = val >>> 0;
      return 0;
    }
    default: return -Errno.ENODEV;
  }
}

/** x86emul_read_dr: [lo, hi], or null for #UD (-ENODEV from get_debugreg). */
export function getDebugreg(v: Vcpu, reg: number): [number, number] | null {
  const ps = pvState(v);
  const de = (ps.cr4 & Cr4.DE) !== 0;
  switch (reg) {
    case 0: case 1: case 2: case 3: { const lin = v.debugregs[reg]; return [canonLo(lin), canonHi(lin)]; }
    case 4: case 6:
      if (reg === 4 && de) return null;
      return [v.debugregs[6] | 0, 0];
    case 5: case 7:
      if (reg === 5 && de) return null;
      return [(v.debugregs[7] | ps.dr7Emul) | 0, 0];
    default: return null;
  }
}

/** Power-on DR6/DR7 (X86_DR6_DEFAULT, X86_DR7_DEFAULT) if never set. */
export function initDebugregs(v: Vcpu): void {
  if (v.debugregs[6] === 0) v.debugregs[6] = DR6_DEFAULT >>> 0;
  if (v.debugregs[7] === 0) v.debugregs[7] = DR7_DEFAULT;
}

// ---- MSRs -------------------------------------------------------------------------------

function knownVendor(v: Vcpu): boolean {
  const vendor = v.cpu.model.vendor;
  return vendor === 'GenuineIntel' || vendor === 'AuthenticAMD';
}

function miscEnable(v: Vcpu): number | null {
  if (v.cpu.model.vendor !== 'GenuineIntel') return null;
  const host = v.cpu.msrs.get(Msr.MISC_ENABLE)?.[0] ?? MISC_ENABLE_HOST;
  return ((host & ~(MISC_PERF | MISC_MONITOR)) | MISC_BTS_UNAVAIL | MISC_PEBS_UNAVAIL | MISC_XTPR_DISABLE) >>> 0;
}

/** read_msr: [lo, hi], or null for #GP. */
export function readMsr(v: Vcpu, index: number): [number, number] | null {
  const cpu = v.cpu, s = cpu.seg;
  switch (index >>> 0) {
    case Msr.FS_BASE: return [s.baseLo[4], s.baseHi[4]];
    case Msr.GS_BASE: return gsBase(v, true);
    case Msr.KERNEL_GS_BASE: return gsBase(v, false);
    case Msr.TSC: { const t = cpu.tsc(); const hi = Math.floor(t / TWO32); return [(t - hi * TWO32) | 0, hi | 0]; }
    case Msr.TSC_AUX: {
      if (!(cpu.model.ext1Edx & (1 << 27))) return null;
      return [cpu.msrs.get(Msr.TSC_AUX)?.[0] ?? 0, 0];
    }
    case Msr.EFER: return [cpu.efer & EFER_KNOWN, 0];
    case Msr.PAT: return [XEN_PAT_LO, XEN_PAT_HI];
    case Msr.UCODE_REV: { // the host's microcode revision (Intel and AMD)
      if (!knownVendor(v)) return null;
      const lo = cpuRdmsr(cpu, Msr.UCODE_REV);
      return [lo, cpu.t];
    }
    case Msr.PLATFORM_INFO: case Msr.MISC_FEATURES_ENABLES: // no CPUID faulting offered
      return v.cpu.model.vendor === 'GenuineIntel' ? [0, 0] : null;
    case Msr.APIC_BASE: return [(0xfee00800 | (v.id === 0 ? 0x100 : 0)) | 0, 0];
    case Msr.MISC_ENABLE: { const m = miscEnable(v); return m === null ? null : [m | 0, 0]; }
    default: return null;
  }
}

/** write_msr: true if done (or ignored), false for #GP. */
export function writeMsr(v: Vcpu, index: number, lo: number, hi: number): boolean {
  const cpu = v.cpu, s = cpu.seg, d = v.domain;
  const invalid = (cur: [number, number]): boolean => {
    if (cur[0] !== (lo | 0) || cur[1] !== (hi | 0)) {
      d.xen.printk(`d${d.id}v${v.id} Domain attempted WRMSR ${(index >>> 0).toString(16).padStart(8, '0')} from 0x${(cur[1] >>> 0).toString(16).padStart(8, '0')}${(cur[0] >>> 0).toString(16).padStart(8, '0')} to 0x${(hi >>> 0).toString(16).padStart(8, '0')}${(lo >>> 0).toString(16).padStart(8, '0')}`);
    }
    return true;
  };
  switch (index >>> 0) {
    case Msr.FS_BASE:
      if (linearOfHalves(lo, hi) < 0) return false;
      s.baseLo[4] = lo | 0; s.baseHi[4] = hi | 0;
      return true;
    case Msr.GS_BASE:
      if (linearOfHalves(lo, hi) < 0) return false;
      setGsBase(v, true, lo, hi);
      return true;
    case Msr.KERNEL_GS_BASE:
      if (linearOfHalves(lo, hi) < 0) return false;
      setGsBase(v, false, lo, hi);
      return true;
    case Msr.TSC_AUX:
      if (!(cpu.model.ext1Edx & (1 << 27)) || hi !== 0) return false;
      cpu.msrs.set(Msr.TSC_AUX, [lo | 0, 0]);
      return true;
    case Msr.EFER: return invalid([cpu.efer & EFER_KNOWN, 0]);
    case Msr.PAT: return invalid([XEN_PAT_LO, XEN_PAT_HI]);
    case Msr.APIC_BASE: return invalid(readMsr(v, Msr.APIC_BASE)!);
    case Msr.MISC_ENABLE: { const m = miscEnable(v); return m === null ? false : invalid([m | 0, 0]); }
    case Msr.STAR: case Msr.LSTAR: case Msr.CSTAR: case Msr.SFMASK: return true;
    case Msr.UCODE_REV: return cpu.model.vendor === 'GenuineIntel' && lo === 0 && hi === 0; // "write 0, cpuid, read"
    case Msr.MISC_FEATURES_ENABLES: return cpu.model.vendor === 'GenuineIntel' && lo === 0 && hi === 0;
    case Msr.XEN_HYPERCALL_PAGE: {
      // Bits 0-11: page index (only 0: one page); the rest the frame to fill (PV: an MFN).
      if ((lo & 0xfff) !== 0) return false;
      const mfn = (hi >>> 0) * 1048576 + (lo >>> 12);
      const f = d.xen.frames;
      if (mfn >= f.frames || f.owner[mfn] !== d.id) {
        d.xen.printk(`d${d.id}v${v.id} Bad GMFN ${mfn.toString(16)} for the hypercall page`);
        return false;
      }
      d.xen.machine.setBytes(mfn * 4096, hypercallPage());
      return true;
    }
    default: return false;
  }
}

// ---- control registers ------------------------------------------------------------------

/** read_cr: the value, or null if Xen does not emulate that register (#GP). */
function readCr(v: Vcpu, n: number): [number, number] | null {
  const ps = pvState(v);
  switch (n) {
    case 0: return [guestCr0(v) | 0, 0];
    case 2: return [ps.cr2Lo, ps.cr2Hi];
    case 3: { const pa = v.kernelCr3 * 4096; return [(pa % TWO32) | 0, Math.floor(pa / TWO32) | 0]; }
    case 4: return [ps.cr4 | 0, 0];
    default: return null;
  }
}

/** write_cr: true if done, false for #GP. */
function writeCr(v: Vcpu, n: number, lo: number, hi: number): boolean {
  const ps = pvState(v), d = v.domain;
  switch (n) {
    case 0:
      if (hi !== 0 || ((lo ^ XEN_CR0) & ~CR0_TS) !== 0) {
        d.xen.printk(`d${d.id}v${v.id} Attempt to change unmodifiable CR0 flags`);
        return false;
      }
      setFpuTs(v, (lo & CR0_TS) !== 0);
      return true;
    case 2: setGuestCr2(v, lo, hi); return true;
    case 3: {
      // xen_cr3_to_pfn: the frame is bits 12 and up; for PV the gfn is the MFN.
      const mfn = (hi >>> 0) * 1048576 + (lo >>> 12);
      const f = d.xen.frames;
      if (mfn >= f.frames || f.owner[mfn] !== d.id) return false;
      if (setKernelBaseptr(v, mfn) !== 0) return false; // new_guest_cr3 (the mm module)
      destroyLdt(v); // the shadow LDT came from the old page tables
      if (v.kernelMode) updateCr3(v);
      return true;
    }
    case 4: // bits above 31 are dropped by the fixup, as in Xen
      ps.cr4 = fixupGuestCr4(v, lo);
      v.cpu.cr4 = makeCr4(v);
      return true;
    default: return false;
  }
}

// ---- the emulator -----------------------------------------------------------------------

/** Port I/O under virtual IOPL: run the CPU's own in/out/ins/outs with real IOPL 3, so the
 *  rep and string semantics (and faults part-way) are the CPU's. */
function emulateIo(v: Vcpu, d: Insn, start: number): void {
  const cpu = v.cpu, f = cpu.f;
  const saved = f[FS.FLAGS] & F.IOPL;
  f[FS.FLAGS] |= F.IOPL;
  cpu.ripStart = start;
  cpu.rip = (start + d.len) % 281474976710656;
  try {
    d.h(cpu, d);
  } catch (e) {
    if (!(e instanceof CpuFault)) throw e;
    f[FS.FLAGS] = (f[FS.FLAGS] & ~F.IOPL) | saved;
    cpu.rip = start;
    injectFault(v, e);
    return;
  }
  f[FS.FLAGS] = (f[FS.FLAGS] & ~F.IOPL) | saved;
  if (cpu.rip !== start) instructionDone(v, cpu.rip); // a rep that is not finished resumes at start
  cpu.endBlock();
}

function gpr64(v: Vcpu, i: number): [number, number] { return [v.cpu.r[i * 2], v.cpu.r[i * 2 + 1]]; }
function setGpr64(v: Vcpu, i: number, lo: number, hi: number): void { v.cpu.r[i * 2] = lo | 0; v.cpu.r[i * 2 + 1] = hi | 0; }

/**
 * pv_emulate_privileged_op, for a #GP(0) at CPL 3. True when the guest may continue (the
 * instruction was emulated, skipped, or raised an exception that was bounced); false when
 * Xen does not emulate it and the #GP goes to the guest.
 */
export function emulatePrivOp(v: Vcpu): boolean {
  const cpu = v.cpu, r = cpu.r, ps = pvState(v);
  const start = cpu.rip;
  const d = fetchInsn(v);
  if (typeof d === 'number') { injectException(v, Vec.PF, 0, d); return true; }
  const next = start + d.len;
  const ring0 = v.kernelMode;
  switch (d.op) {
    case 0x6c: case 0x6d: case 0x6e: case 0x6f:
    case 0xe4: case 0xe5: case 0xe6: case 0xe7:
    case 0xec: case 0xed: case 0xee: case 0xef:
      if (!ioplOk(v)) return false;
      emulateIo(v, d, start);
      return true;
    case 0xfa: case 0xfb: // cli / sti
      if (!ioplOk(v)) return false;
      instructionDone(v, next);
      return true;
    case 0x106: // clts
      if (!ring0) return false;
      setFpuTs(v, false);
      instructionDone(v, next);
      return true;
    case 0x109: // wbinvd
      if (!ring0) return false;
      instructionDone(v, next);
      return true;
    case 0x120: case 0x122: { // mov r64, crN / mov crN, r64
      if (!ring0) return false;
      if (d.op === 0x120) {
        const val = readCr(v, d.reg);
        if (val === null) return false;
        setGpr64(v, d.rm, val[0], val[1]);
      } else {
        const [lo, hi] = gpr64(v, d.rm);
        if (!writeCr(v, d.reg, lo, hi)) return false;
      }
      instructionDone(v, next);
      return true;
    }
    case 0x121: case 0x123: { // mov r64, drN / mov drN, r64
      if (!ring0) return false;
      if (d.reg > 7) { injectException(v, Vec.UD); return true; }
      if (d.op === 0x121) {
        const val = getDebugreg(v, d.reg);
        if (val === null) { injectException(v, Vec.UD); return true; }
        setGpr64(v, d.rm, val[0], val[1]);
      } else {
        const [lo, hi] = gpr64(v, d.rm);
        const rc = setDebugreg(v, d.reg, lo, hi);
        if (rc === -Errno.ENODEV) { injectException(v, Vec.UD); return true; }
        if (rc !== 0) { injectException(v, Vec.GP, 0); return true; }
      }
      instructionDone(v, next);
      return true;
    }
    case 0x130: { // wrmsr
      if (!ring0) return false;
      if (!writeMsr(v, r[2], r[0], r[4])) return false;
      instructionDone(v, next);
      return true;
    }
    case 0x132: { // rdmsr
      if (!ring0) return false;
      const val = readMsr(v, r[2]);
      if (val === null) return false;
      r[0] = val[0]; r[1] = 0; r[4] = val[1]; r[5] = 0;
      instructionDone(v, next);
      return true;
    }
    case 0x131: // rdtsc (faults only with CR4.TSD)
      if ((ps.cr4 & Cr4.TSD) && !ring0) return false;
      tscTo(v, false);
      instructionDone(v, next);
      return true;
    case 0x1a2: // cpuid
      cpuidTo(v);
      instructionDone(v, next);
      return true;
    case 0x101: {
      if (d.mod !== 3 || (d.rm & 7) !== 1) return false;
      if ((d.reg & 7) === 7) { // rdtscp
        if (!(cpu.model.ext1Edx & (1 << 27))) { injectException(v, Vec.UD); return true; }
        if ((ps.cr4 & Cr4.TSD) && !ring0) return false;
        tscTo(v, true);
        instructionDone(v, next);
        return true;
      }
      if ((d.reg & 7) === 2) { // xsetbv
        if (!(ps.cr4 & Cr4.OSXSAVE)) { injectException(v, Vec.UD); return true; }
        if (!ring0 || r[2] !== 0 || r[4] !== 0 || (r[0] & ~3) !== 0 || !(r[0] & 1)) return false;
        cpu.xcr0Lo = r[0];
        instructionDone(v, next);
        return true;
      }
      return false;
    }
    default: return false;
  }
}

function tscTo(v: Vcpu, aux: boolean): void {
  const cpu = v.cpu, r = cpu.r;
  const t = cpu.tsc(), hi = Math.floor(t / TWO32);
  r[0] = (t - hi * TWO32) | 0; r[1] = 0; r[4] = hi | 0; r[5] = 0;
  if (aux) { r[2] = cpu.msrs.get(Msr.TSC_AUX)?.[0] ?? 0; r[3] = 0; }
}

function cpuidTo(v: Vcpu): void {
  const cpu = v.cpu, r = cpu.r, ps = pvState(v);
  const osxsave = (ps.cr4 & Cr4.OSXSAVE) !== 0 || (v.kernelMode && (cpu.cr4 & Cr4.OSXSAVE) !== 0);
  const q = pvCpuid(cpu.model, r[0], r[2], osxsave);
  r[0] = q[0]; r[1] = 0; r[6] = q[1]; r[7] = 0; r[2] = q[2]; r[3] = 0; r[4] = q[3]; r[5] = 0;
}

const XEN_SIG = [0x0f, 0x0b, 0x78, 0x65, 0x6e]; // ud2; .ascii "xen"

/** emulate_forced_invalid_op, for a #UD: `ud2; .ascii "xen"; cpuid` runs CPUID with the
 *  guest's policy and skips all 7 bytes. False if the bytes are not that sequence. */
export function emulateForcedInvalidOp(v: Vcpu): boolean {
  const cpu = v.cpu;
  const eip = cpu.rip;
  const sig = new Uint8Array(5);
  let bad = readGuestBytes(v, eip, sig);
  if (bad >= 0) { injectException(v, Vec.PF, 0, eip + bad); return true; }
  for (let i = 0; i < 5; i++) if (sig[i] !== XEN_SIG[i]) return false;
  const insn = new Uint8Array(2);
  bad = readGuestBytes(v, eip + 5, insn);
  if (bad >= 0) { injectException(v, Vec.PF, 0, eip + 5 + bad); return true; }
  if (insn[0] !== 0x0f || insn[1] !== 0xa2) return false;
  cpuidTo(v);
  instructionDone(v, eip + 7);
  return true;
}
