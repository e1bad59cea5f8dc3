// Bounce frames: how Xen hands an exception, an event upcall, a failed return or a guest
// system call to the handler the guest kernel registered (entry.S create_bounce_frame,
// pv_inject_event), and the way back to the guest (test_all_events, then SYSRET or IRETQ).
//
// The frame, on the guest kernel stack, from the new RSP upwards (x86_64 PV ABI):
//   RCX, R11, [DS, ES, FS, GS: failsafe only], [error code], RIP, CS, RFLAGS, RSP, SS
// with the saved evtchn_upcall_mask in CS bits 32..39, RFLAGS.IF = !saved mask (IOPL from
// the virtual IOPL under VMASST_TYPE_architectural_iopl, else 0), and CS with RPL 0 when the
// interrupted context was the guest kernel. From guest user mode Xen first switches to
// kernel mode (kernel L4, kernel GS base) and uses the stack_switch stack; in kernel mode
// the current RSP. Either is rounded down to 16 bytes, and a stack inside Xen's range
// crashes the domain, as does a fault writing the frame or a null handler.
//
// Xen returns to a bounced-to handler with SYSRET, so RCX and R11 then hold the handler's
// RIP and RFLAGS: the frame keeps the interrupted values. `PvState.sysret` records which
// return the current entry takes; exitToGuest does it.
//
// The hypervisor runs these between two guest instructions (the CPU's exception, syscall
// and event hooks, installed by entry.ts); the "regs" Xen works on are the CPU's registers.

import { CpuFault, VECTOR_NAMES, Vec } from '../../cpu/fault.js';
import { getFlags, setFlags } from '../../cpu/flags.js';
import {
  checkReturnCS, checkStackSeg, commitSeg, descLimit, markAccessed, newDesc, nullInaccessible, setFlatSeg, setSegCache, updateMode,
} from '../../cpu/segments.js';
import { F, Seg } from '../../cpu/state.js';
import { FLAT_KERNEL_CS64, FLAT_KERNEL_SS64, FLAT_USER_CS32, VcpuInfo } from '../layout.js';
import { crashDomain } from '../sched.js';
import { Callback, type Vcpu } from '../vcpu.js';
import {
  canonHi, canonLo, CS32_3, CS64_3, DS_3, linearOfHalves, pvState, setFlatKernelSegs, setSysretSegs, toggleGuestMode,
  withLdtFixups, wrap48,
} from './mode.js';

const TWO32 = 4294967296;

/** trap_bounce flags. */
export const enum Tbf { EXCEPTION = 1, ERRCODE = 2, INTERRUPT = 8, FAILSAFE = 16, /** the CPU's image of a fault: RF set */ RF = 32 }
export const CALLBACKF_MASK_EVENTS = 1;
/** trap_info flags bit 2 ("clear event enable"): the handler is entered with events masked. */
export const TI_IF = 4;
const VMASST_ARCHITECTURAL_IOPL = 4;
/** Exceptions delivered with an error code (X86_EXC_HAVE_EC). */
const HAVE_EC = (1 << 8) | (1 << 10) | (1 << 11) | (1 << 12) | (1 << 13) | (1 << 14) | (1 << 17) | (1 << 21);
export function hasErrorCode(vector: number): boolean { return vector < 32 && ((HAVE_EC >>> vector) & 1) === 1; }
/** #PF error code: user-mode access. */
const PFEC_USER = 4;
/** Hypervisor range [HYPERVISOR_VIRT_START, HYPERVISOR_VIRT_END + 64) as linear addresses. */
const HV_START = 0x800000000000, HV_END_GUARD = 0x880000000000 + 64;

// ---- vcpu_info ------------------------------------------------------------------------------

export function upcallMask(v: Vcpu): number {
  return v.vcpuInfoPa < 0 ? 1 : v.domain.xen.machine.u8(v.vcpuInfoPa + VcpuInfo.UPCALL_MASK);
}
export function setUpcallMask(v: Vcpu, mask: number): void {
  if (v.vcpuInfoPa >= 0) v.domain.xen.machine.set8(v.vcpuInfoPa + VcpuInfo.UPCALL_MASK, mask & 0xff);
}
/** evtchn_upcall_pending && !evtchn_upcall_mask. */
export function eventsNeedDelivery(v: Vcpu): boolean {
  const pa = v.vcpuInfoPa;
  if (pa < 0) return false;
  const m = v.domain.xen.machine;
  return m.u8(pa + VcpuInfo.UPCALL_PENDING) !== 0 && m.u8(pa + VcpuInfo.UPCALL_MASK) === 0;
}
/** The guest's CR2 (ctrlreg[2]) and vcpu_info.arch.cr2 (arch_set_cr2). */
export function setGuestCr2(v: Vcpu, lo: number, hi: number): void {
  const ps = pvState(v);
  ps.cr2Lo = lo | 0; ps.cr2Hi = hi | 0;
  if (v.vcpuInfoPa >= 0) {
    const m = v.domain.xen.machine;
    m.set32(v.vcpuInfoPa + VcpuInfo.ARCH_CR2, lo);
    m.set32(v.vcpuInfoPa + VcpuInfo.ARCH_CR2 + 4, hi);
  }
}

// ---- crashing -------------------------------------------------------------------------------

function hex(lo: number, hi: number): string {
  return ((BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0)).toString(16).padStart(16, '0');
}

/** domain_crash() from hypervisor context on v: log where and the guest state, shut the
 *  domain down with SHUTDOWN_crash, and stop v's CPU. */
export function domainCrash(v: Vcpu, where: string): void {
  const d = v.domain, cpu = v.cpu, r = cpu.r;
  if (!d.isDead) {
    const x = d.xen;
    x.printk(`domain_crash called from ${where}`);
    x.printk(`Domain ${d.id} (vcpu#${v.id}) crashed on cpu#0:`);
    const ripLo = cpu.ripHalves(), ripHi = cpu.t;
    x.printk(`RIP:    ${cpu.seg.sel[Seg.CS].toString(16).padStart(4, '0')}:[<${hex(ripLo, ripHi)}>] ${v.kernelMode ? 'kernel' : 'user'} mode`);
    x.printk(`RFLAGS: ${hex(getFlags(cpu.f), 0)}   CR3: ${hex(cpu.cr3Lo, cpu.cr3Hi)}`);
    x.printk(`rax: ${hex(r[0], r[1])}   rcx: ${hex(r[2], r[3])}   rsp: ${hex(r[8], r[9])}`);
    crashDomain(d, where);
  }
  cpu.stopRequest = true;
  cpu.exitBlock = true;
}

// ---- the bounce frame -----------------------------------------------------------------------

/**
 * create_bounce_frame: push the frame for the current context on the guest kernel stack and
 * enter the handler at `eip` (48-bit linear; <= 0 means none registered) with CS/SS flat,
 * events masked if flags has INTERRUPT. Returns false if the domain crashed instead.
 */
export function createBounceFrame(v: Vcpu, eip: number, flags: number, errorCode = 0): boolean {
  const cpu = v.cpu, r = cpu.r, s = cpu.seg, d = v.domain, ps = pvState(v);
  // The interrupted context.
  let cs = s.sel[Seg.CS] & 0xffff;
  const ss = s.sel[Seg.SS] & 0xffff;
  const ripLo = cpu.ripHalves(), ripHi = cpu.t;
  const rspLo = r[8], rspHi = r[9];
  const rflags = getFlags(cpu.f);
  const words: number[] = [r[2], r[3], r[22], r[23]]; // rcx, r11
  let sp: number;
  if (!v.kernelMode) {
    toggleGuestMode(v);
    sp = v.kernelSp;
  } else {
    sp = linearOfHalves(rspLo, rspHi);
    cs &= ~3; // tell the guest it interrupted its kernel
  }
  if (sp < 0) { domainCrash(v, 'create_bounce_frame (non-canonical stack)'); return false; }
  sp -= sp % 16;
  if (sp > HV_START && sp < HV_END_GUARD) { domainCrash(v, 'create_bounce_frame_bad_sp'); return false; }

  const savedMask = upcallMask(v);
  if (flags & Tbf.INTERRUPT) setUpcallMask(v, savedMask | 1);
  let fl = (rflags & ~(F.IF | F.IOPL)) | (savedMask === 0 ? F.IF : 0) | (flags & Tbf.RF ? F.RF : 0);
  if (d.vmAssist & (1 << VMASST_ARCHITECTURAL_IOPL)) fl |= (v.iopl & 3) << 12;
  if (flags & Tbf.FAILSAFE) {
    words.push(s.sel[Seg.DS] & 0xffff, 0, s.sel[Seg.ES] & 0xffff, 0, s.sel[Seg.FS] & 0xffff, 0, s.sel[Seg.GS] & 0xffff, 0);
  }
  if (flags & Tbf.ERRCODE) words.push(errorCode | 0, 0);
  words.push(ripLo, ripHi, cs, savedMask & 0xff, fl, 0, rspLo, rspHi, ss, 0);
  const n = words.length / 2;
  const base = wrap48(sp - n * 8);

  const mem = cpu.mem, was = mem.implicitSupervisor;
  mem.implicitSupervisor = true; // Xen writes the frame from ring 0
  try {
    mem.probeWrite(base, n * 8);
    for (let i = 0; i < n; i++) mem.wr64(wrap48(base + i * 8), words[2 * i], words[2 * i + 1]);
  } catch (e) {
    if (!(e instanceof CpuFault)) throw e;
    mem.implicitSupervisor = was;
    domainCrash(v, `create_bounce_frame (${e.name} at ${e.cr2.toString(16)} writing the frame)`);
    return false;
  } finally {
    mem.implicitSupervisor = was;
  }

  // Enter the handler: TF VM RF NT AC cleared, flat kernel CS/SS, the new stack.
  setFlags(cpu.f, rflags & ~(F.AC | F.VM | F.RF | F.NT | F.TF));
  setFlatKernelSegs(cpu);
  r[8] = canonLo(base); r[9] = canonHi(base);
  ps.sysret = true;
  ps.pendingSegs = false;
  if (!(eip > 0)) { domainCrash(v, 'create_bounce_frame_bad_bounce_ip'); return false; }
  cpu.rip = eip;
  return true;
}

/** pv_inject_hw_exception / pv_inject_page_fault: bounce an exception to the trap table.
 *  errorCode is used for vectors that have one; for #PF, cr2 is the fault's linear address
 *  (its user bit is set from the guest mode, not from the CPL). */
export function injectException(v: Vcpu, vector: number, errorCode = 0, cr2 = 0): boolean {
  let ec = hasErrorCode(vector) ? errorCode >>> 0 : -1;
  if (vector === Vec.PF) {
    setGuestCr2(v, canonLo(cr2), canonHi(cr2));
    ec = (ec & ~PFEC_USER) | (v.kernelMode ? 0 : PFEC_USER);
  }
  // A fault (not a trap): the RFLAGS image the CPU saved has RF set, and Xen copies it into
  // the guest's frame (create_bounce_frame replaces only IF).
  return bounceTrap(v, vector, ec, vector !== Vec.BP && vector !== Vec.OF && vector !== Vec.DB);
}

/** pv_inject_sw_interrupt: int n / int3 through the trap table, no error code. viaGp: Xen
 *  saw it as the #GP a DPL-0 gate raises, so the frame's RFLAGS image has RF set. */
export function injectSoftInterrupt(v: Vcpu, vector: number, viaGp = false): boolean { return bounceTrap(v, vector, -1, viaGp); }

function bounceTrap(v: Vcpu, vector: number, ec: number, fault = false): boolean {
  let flags = Tbf.EXCEPTION | (fault ? Tbf.RF : 0);
  if (ec >= 0) flags |= Tbf.ERRCODE;
  if (v.trapFlags[vector] & TI_IF) flags |= Tbf.INTERRUPT;
  const eip = v.trapAddr[vector];
  if (!(eip > 0)) {
    const name = VECTOR_NAMES[vector] ?? '???';
    v.domain.xen.printk(`d${v.domain.id}v${v.id} Unhandled: vec ${vector}, ${name}[${(ec >= 0 ? ec : 0).toString(16).padStart(4, '0')}]`);
  }
  return createBounceFrame(v, eip, flags, ec >= 0 ? ec : 0);
}

/** A guest system call (syscall in guest user mode, or from compatibility mode): bounce to
 *  the syscall (syscall32) callback; with none registered, #UD at the syscall instruction. */
export function bounceSyscall(v: Vcpu, compat: boolean): boolean {
  const cpu = v.cpu;
  const cb = compat ? Callback.SYSCALL32 : Callback.SYSCALL;
  let eip = v.callbackAddr[cb];
  let flags = v.callbackFlags[cb] & CALLBACKF_MASK_EVENTS ? Tbf.INTERRUPT : 0;
  if (!(eip > 0)) {
    cpu.rip = wrap48(cpu.rip - 2);
    eip = v.trapAddr[Vec.UD];
    flags = Tbf.EXCEPTION | (v.trapFlags[Vec.UD] & TI_IF ? Tbf.INTERRUPT : 0);
  }
  const ok = createBounceFrame(v, eip, flags);
  if (ok) setFlags(cpu.f, getFlags(cpu.f) & ~F.DF);
  return ok;
}

/** The failsafe callback: a return to the guest could not load its segments. */
export function bounceFailsafe(v: Vcpu): boolean {
  let flags = Tbf.FAILSAFE;
  if (v.callbackFlags[Callback.FAILSAFE] & CALLBACKF_MASK_EVENTS) flags |= Tbf.INTERRUPT;
  return createBounceFrame(v, v.callbackAddr[Callback.FAILSAFE], flags);
}

/** test_guest_events: deliver an event upcall if one is pending and events are unmasked
 *  (the event callback is always entered with events masked). */
export function deliverEvents(v: Vcpu): boolean {
  if (v.domain.isDead || !eventsNeedDelivery(v)) return false;
  return createBounceFrame(v, v.callbackAddr[Callback.EVENT], Tbf.INTERRUPT);
}

// ---- back to the guest ----------------------------------------------------------------------

const csD = newDesc(), ssD = newDesc();

/** IRETQ to the CS:RIP, SS:RSP the iret hypercall left: load CS and SS (the selectors in
 *  cpu.seg.sel) through the GDT/LDT with the checks a return to CPL 3 makes. False if that
 *  faults (the failsafe case). */
export function loadReturnSegs(v: Vcpu): boolean {
  const cpu = v.cpu, s = cpu.seg;
  const cs = s.sel[Seg.CS] & 0xffff, ss = s.sel[Seg.SS] & 0xffff;
  if (ss === FLAT_KERNEL_SS64 && (cs === FLAT_KERNEL_CS64 || cs === FLAT_USER_CS32)) {
    if (cs === FLAT_USER_CS32 && cpu.rip >= TWO32) return false;
    setFlatSeg(cpu, Seg.CS, cs, cs === FLAT_KERNEL_CS64 ? CS64_3 : CS32_3);
    setFlatSeg(cpu, Seg.SS, ss, DS_3);
  } else {
    const mem = cpu.mem, was = mem.implicitSupervisor;
    mem.implicitSupervisor = true;
    try {
      withLdtFixups(v, () => {
        const csAddr = checkReturnCS(cpu, cs, csD);
        const to64 = (csD.hi & 0x200000) !== 0;
        const ssAddr = checkStackSeg(cpu, ss, 3, ssD, to64);
        if (!to64) {
          if (cpu.rip >= TWO32 || cpu.rip > descLimit(csD)) throw new CpuFault(Vec.GP, 0);
        }
        markAccessed(cpu, csAddr, csD);
        commitSeg(cpu, Seg.SS, ss, ssAddr, ssD);
        setSegCache(cpu, Seg.CS, cs, csD);
      });
    } catch (e) {
      if (e instanceof CpuFault) return false;
      throw e;
    } finally {
      mem.implicitSupervisor = was;
    }
    nullInaccessible(cpu);
  }
  cpu.cpl = 3;
  updateMode(cpu);
  cpu.endBlock();
  return true;
}

/** restore_all_guest's SYSRET path: RCX = RIP, R11 = RFLAGS (IOPL and VM cleared, IF set),
 *  CS/SS flat (SYSRETL to 0xe023 when the frame's CS was FLAT_USER_CS32). */
function sysretToGuest(v: Vcpu): void {
  const cpu = v.cpu, r = cpu.r;
  const r11 = ((getFlags(cpu.f) & ~(F.IOPL | F.VM)) | F.IF) >>> 0;
  const compat = (cpu.seg.sel[Seg.CS] & 0xffff) === FLAT_USER_CS32;
  r[2] = cpu.ripHalves(); r[3] = cpu.t;
  r[22] = r11 | 0; r[23] = 0;
  if (compat) cpu.rip = cpu.rip % TWO32;
  setFlags(cpu.f, (r11 & 0x3c7fd7) | 2);
  setSysretSegs(cpu, compat);
}

/**
 * Leave the hypervisor for the guest (test_all_events + restore_all_guest): deliver a
 * pending unmasked event, then return by SYSRET or by IRETQ of the frame the iret hypercall
 * set up (whose segment loads may fail into the failsafe callback).
 */
export function exitToGuest(v: Vcpu): void {
  const d = v.domain, ps = pvState(v);
  if (!d.isDead) deliverEvents(v);
  if (!d.isDead && !ps.sysret && ps.pendingSegs) {
    ps.pendingSegs = false;
    if (!loadReturnSegs(v) && bounceFailsafe(v)) deliverEvents(v);
  }
  ps.pendingSegs = false;
  if (!d.isDead && ps.sysret) sysretToGuest(v);
  if (d.isDead) { v.cpu.stopRequest = true; v.cpu.exitBlock = true; }
}

/** Write a full 64-bit hypercall result into RAX (the dispatcher then leaves RAX alone). */
export function setHypercallResult64(v: Vcpu, lo: number, hi: number): void {
  v.cpu.r[0] = lo | 0; v.cpu.r[1] = hi | 0;
  pvState(v).raxSet = true;
}
