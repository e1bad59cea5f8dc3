// The PV execution model: what Xen does around a running 64-bit PV vCPU. attachPv puts the
// vCPU's CPU in the state Xen runs a PV guest in and installs the hooks through which the
// hypervisor sees the guest:
//
//   syscall    in guest kernel mode: a hypercall (RAX = number, RDI RSI RDX R10 R8 the
//              arguments, result in RAX; RCX/R11 = next RIP/RFLAGS as the instruction
//              leaves them); in guest user mode (or from compatibility mode): a guest system
//              call, bounced to the syscall callback
//   exception  every exception and software interrupt at CPL 3: privileged-instruction
//              emulation on #GP(0), the forced-emulation CPUID on #UD, shadow-LDT faults,
//              #NM with the virtual CR0.TS, `int n` checked against the trap table's DPL;
//              the rest is bounced to the guest's trap table (no handler: domain crash)
//   event      at a block boundary once cpu.eventAt is reached: fire due timers, deliver a
//              pending unmasked event upcall
//
// Every entry ends in exitToGuest (bounce.ts): deliver an unmasked pending event, then
// return by SYSRET or IRETQ. Whoever makes an event pending for a vCPU calls kickEvents(v)
// so its CPU checks at the next block boundary (and a blocked vCPU wakes).
//
// The CPU state of a PV vCPU (see mode.ts): CPL 3 in both guest modes, CS 0xe033, SS
// 0xe02b, DS ES FS GS null (FS/GS bases from set_segment_base), GDTR/LDTR in the per-domain
// area, no usable TSS (so in/out always fault and are checked against the virtual IOPL),
// no IDT, CR0 = Xen's (WP AM...) with the guest's TS, CR4 without PGE, EFER LME LMA SCE
// NXE, RFLAGS.IF always set and IOPL 0 (the guest's IF is the event mask).
//
// Use (domain builder): make the Cpu on a PagedMemory, set v.kernelCr3 (and anything else
// the vCPU starts with), call attachPv(v), then set RIP, RSP, RSI. The mm module copies
// perdomainL4e(d) into every L4 it validates (slot PERDOMAIN_L4_SLOT), calls updateCr3(v)
// after NEW_BASEPTR / NEW_USER_BASEPTR and setLdt for MMUEXT_SET_LDT; a MOV to CR3 goes to
// its setKernelBaseptr (new_guest_cr3).

import type { Cpu } from '../../cpu/cpu.js';
import { CpuFault, Vec } from '../../cpu/fault.js';
import { getFlags, setFlags } from '../../cpu/flags.js';
import { loadSeg, setSegCache } from '../../cpu/segments.js';
import { Efer, F, Mode, Seg } from '../../cpu/state.js';
import { Errno } from '../errno.js';
import { setKernelBaseptr, setUserBaseptr } from '../hypercall/mmu.js';
import '../hypercall/traps.js';
import { dispatchHypercall } from '../hypercall/table.js';
import { FLAT_KERNEL_CS64, FLAT_USER_CS32, FLAT_USER_CS64, FLAT_USER_DS64, GuestContext, UserRegs } from '../layout.js';
import { fireTimers, nextTimerNsOf, wakeVcpu } from '../sched.js';
import { Callback, type Vcpu } from '../vcpu.js';
import { TSC_HZ } from '../xen.js';
import {
  bounceFailsafe, bounceSyscall, CALLBACKF_MASK_EVENTS, domainCrash, exitToGuest, injectException, injectSoftInterrupt,
  loadReturnSegs,
} from './bounce.js';
import { applyPvCpuidPolicy } from './cpuid.js';
import { emulateForcedInvalidOp, emulatePrivOp, initDebugregs, setDebugreg } from './emulate.js';
import {
  addrOk, currentL4, destroyGdt, destroyLdt, ensurePerdomainSlot, fixupGuestCr4, inPerdomainArea, installGdt, ldtFault,
  linearOfHalves, loadDescriptorTables, makeCr4, mapGdt, pvState, setFlatKernelSegs, setFpuTs, updateCr3, withLdtFixups,
  XEN_CR0,
} from './mode.js';

export { setHypercallResult64 } from './bounce.js';
export { destroyLdt, PERDOMAIN_L4_SLOT, perdomainL4e, setLdt, toggleGuestMode, updateCr3 } from './mode.js';

const TWO32 = 4294967296;
/** #PF error code bit: reserved bit set in a paging entry. */
const PFEC_RSVD = 8;

/** An event was made pending for v (or v must look at its vcpu_info again): unblock it and
 *  have its CPU check for delivery at the next block boundary. */
export function kickEvents(v: Vcpu): void { wakeVcpu(v); }

/** Put v's CPU in the PV execution state and install the hypervisor's hooks (once). */
export function attachPv(v: Vcpu): void {
  const cpu = v.cpu, s = cpu.seg, ps = pvState(v);
  if (ps.attached) return;
  ps.attached = true;
  applyPvCpuidPolicy(cpu.model, v.domain);

  cpu.efer = Efer.LME | Efer.LMA | Efer.SCE | (cpu.model.ext1Edx & (1 << 20) ? Efer.NXE : 0);
  cpu.cr0 = (XEN_CR0 | (v.fpuTs ? 8 : 0)) >>> 0;
  ps.cr4 = fixupGuestCr4(v, 0);
  cpu.cr4 = makeCr4(v);
  initDebugregs(v);

  for (const seg of [Seg.ES, Seg.DS, Seg.FS, Seg.GS]) { s.sel[seg] = 0; s.attr[seg] = 0; s.limit[seg] = 0; }
  s.baseLo[Seg.ES] = s.baseHi[Seg.ES] = s.baseLo[Seg.DS] = s.baseHi[Seg.DS] = 0;
  const [gLo, gHi] = v.kernelMode ? [v.gsBaseKernelLo, v.gsBaseKernelHi] : [v.gsBaseUserLo, v.gsBaseUserHi];
  s.baseLo[Seg.GS] = gLo; s.baseHi[Seg.GS] = gHi;
  s.sel[Seg.TR] = 0; s.attr[Seg.TR] = 0; s.limit[Seg.TR] = 0; s.baseLo[Seg.TR] = 0; s.baseHi[Seg.TR] = 0;
  cpu.idtrBase = 0; cpu.idtrLimit = 0;
  setFlatKernelSegs(cpu);
  mapGdt(v, v.gdtFrames);
  loadDescriptorTables(v);
  setFlags(cpu.f, (getFlags(cpu.f) & ~F.IOPL) | F.IF);
  updateCr3(v);

  cpu.hooks.syscall = () => onSyscall(v);
  cpu.hooks.exception = (_c, vector, err, _hasErr, soft) => onException(v, vector, err, soft);
  const prev = cpu.hooks.event;
  cpu.hooks.event = (c) => onEvent(v, c, prev);
  cpu.endBlock();
}

// ---- syscall: hypercalls and guest system calls -------------------------------------------

function onSyscall(v: Vcpu): boolean {
  const cpu = v.cpu, r = cpu.r, s = cpu.seg, ps = pvState(v);
  if (v.domain.isDead) { cpu.stopRequest = true; return true; }
  // What the instruction does before Xen runs: RCX = next RIP, R11 = RFLAGS.
  r[2] = cpu.ripHalves(); r[3] = cpu.t;
  r[22] = getFlags(cpu.f); r[23] = 0;
  ps.sysret = true;
  ps.raxSet = false;
  ps.pendingSegs = false;
  const compat = cpu.mode !== Mode.Long64;
  if (v.kernelMode && !compat) {
    s.sel[Seg.CS] = FLAT_KERNEL_CS64; // lstar_enter's frame
    v.args.load(cpu);
    const nr = r[1] === 0 ? r[0] >>> 0 : -1;
    const res = dispatchHypercall(v, nr, v.args);
    if (!ps.raxSet) {
      const hi = Math.floor(res / TWO32);
      r[0] = (res - hi * TWO32) | 0; r[1] = hi | 0;
    }
  } else {
    s.sel[Seg.CS] = compat ? FLAT_USER_CS32 : FLAT_USER_CS64;
    s.sel[Seg.SS] = FLAT_USER_DS64; // FLAT_USER_SS (0xe02b)
    bounceSyscall(v, compat);
  }
  exitToGuest(v);
  return true;
}

// ---- exceptions -----------------------------------------------------------------------------

function onException(v: Vcpu, vector: number, err: number, soft: boolean): boolean {
  const cpu = v.cpu, ps = pvState(v);
  if (v.domain.isDead) { cpu.stopRequest = true; return true; }
  ps.sysret = false;
  ps.raxSet = false;
  ps.pendingSegs = false;
  try {
    handleTrap(v, vector, err, soft);
    exitToGuest(v);
  } catch (e) {
    if (!(e instanceof CpuFault)) throw e;
    domainCrash(v, `hypervisor fault ${e.name} handling vector ${vector}`);
  }
  return true;
}

function handleTrap(v: Vcpu, vector: number, err: number, soft: boolean): void {
  const cpu = v.cpu;
  if (soft) {
    // int3 and into reach Xen as #BP/#OF (its IDT gates for them have DPL 3); icebp as #DB.
    if (vector === Vec.BP || vector === Vec.OF) { injectSoftInterrupt(v, vector); return; }
    if (vector === Vec.DB && cpu.rip - cpu.ripStart === 1) { injectException(v, Vec.DB); return; }
    // int n hits a DPL-0 gate in Xen's IDT: #GP(n << 3 | IDT); allowed if the guest's
    // trap_info DPL admits the guest's ring (kernel mode counts as ring 1).
    if ((v.trapFlags[vector] & 3) >= (v.kernelMode ? 1 : 3)) { injectSoftInterrupt(v, vector, true); return; }
    cpu.rip = cpu.ripStart;
    injectException(v, Vec.GP, (vector << 3) | 2);
    return;
  }
  switch (vector) {
    case Vec.PF: {
      const lin = cpu.cr2;
      if (inPerdomainArea(lin) && !(err & PFEC_RSVD)) {
        // The CPU reading the GDT or LDT: map a shadow LDT page, or put the per-domain
        // slot into an L4 that lacks it; then retry the instruction.
        const f = ldtFault(v, lin);
        if (f !== null) {
          if (f.kind === 'fixed') return;
          if (f.kind === 'gp') { injectException(v, Vec.GP, f.ec); return; }
          injectException(v, Vec.PF, err, f.addr);
          return;
        }
        if (ensurePerdomainSlot(v.domain, currentL4(v))) { cpu.mem.flush(); return; }
      }
      injectException(v, Vec.PF, err, lin);
      return;
    }
    case Vec.GP:
      if (err === 0 && emulatePrivOp(v)) return;
      injectException(v, Vec.GP, err);
      return;
    case Vec.UD:
      if (emulateForcedInvalidOp(v)) return;
      injectException(v, Vec.UD);
      return;
    case Vec.NM:
      // The guest's CR0.TS was set: it gets #NM, and Xen clears its TS (PV ABI).
      injectException(v, Vec.NM);
      setFpuTs(v, false);
      return;
    default:
      injectException(v, vector, err);
  }
}

// ---- events and timers ----------------------------------------------------------------------

function onEvent(v: Vcpu, cpu: Cpu, prev: ((cpu: Cpu) => void) | undefined): void {
  cpu.eventAt = Infinity;
  if (prev) prev(cpu);
  const d = v.domain;
  if (d.isDead) { cpu.stopRequest = true; return; }
  const keep = cpu.eventAt;
  fireTimers(v, cpu.cycles * (1e9 / TSC_HZ));
  const ps = pvState(v);
  ps.sysret = false;
  ps.raxSet = false;
  ps.pendingSegs = false;
  exitToGuest(v);
  const next = nextTimerNsOf(v);
  cpu.eventAt = Math.min(keep, next === Infinity ? Infinity : next * (TSC_HZ / 1e9));
}

// ---- a whole register context (VCPUOP_initialise) ------------------------------------------

/** vcpu_guest_context flags. */
export const enum Vgcf { IN_KERNEL = 4, FAILSAFE_DISABLES_EVENTS = 8, SYSCALL_DISABLES_EVENTS = 16 }
/** Offsets of the general registers in struct cpu_user_regs, by register number. */
const USER_GPR = [80, 88, 96, 40, 152, 32, 104, 112, 72, 64, 56, 48, 24, 16, 8, 0];
const enum UR { ES = 168, DS = 176, FS = 184, GS = 192 }

/**
 * arch_set_info_guest for a 64-bit PV vCPU: load a struct vcpu_guest_context (5168 bytes,
 * as VCPUOP_initialise passes it) into v. Checks what Xen checks (canonical addresses, a user
 * L4 when starting in user mode, the GDT frames, the L4s through the mm module) and returns
 * 0 or -EINVAL (or the mm module's error). The caller marks the vCPU initialised.
 * Not loaded: vm_assist (domain-wide here), the FPU context (VGCF_i387_valid).
 * A CS/SS that does not load enters the failsafe callback, as Xen's first return would; a
 * data selector that does not load becomes null.
 */
export function pvSetContext(v: Vcpu, ctx: Uint8Array): number {
  if (ctx.length < GuestContext.SIZE) return -Errno.EINVAL;
  const dv = new DataView(ctx.buffer, ctx.byteOffset, GuestContext.SIZE);
  const lo = (o: number) => dv.getInt32(o, true), hi = (o: number) => dv.getInt32(o + 4, true);
  const linAt = (o: number) => linearOfHalves(lo(o), hi(o));
  const u64 = (o: number) => dv.getUint32(o + 4, true) * TWO32 + dv.getUint32(o, true);
  const U = GuestContext.USER_REGS;
  const flags = dv.getUint32(GuestContext.FLAGS, true);

  for (const o of [U + UserRegs.RIP, U + UserRegs.RSP, GuestContext.KERNEL_SP, GuestContext.FS_BASE,
    GuestContext.GS_BASE_KERNEL, GuestContext.GS_BASE_USER, GuestContext.EVENT_CALLBACK_EIP,
    GuestContext.SYSCALL_CALLBACK_EIP, GuestContext.FAILSAFE_CALLBACK_EIP]) {
    if (linAt(o) < 0) return -Errno.EINVAL;
  }
  for (let i = 0; i < 256; i++) if (linAt(GuestContext.TRAP_CTXT + i * 16 + 8) < 0) return -Errno.EINVAL;
  const ldtBase = linAt(GuestContext.LDT_BASE), ldtEnts = u64(GuestContext.LDT_ENTS);
  if (ldtBase < 0 || !addrOk(ldtBase) || ldtEnts > 8192) return -Errno.EINVAL;
  const cr = (n: number) => GuestContext.CTRLREG + n * 8;
  const kernelL4 = Math.floor(u64(cr(3)) / 4096), userL4 = Math.floor(u64(cr(1)) / 4096);
  if (!(flags & Vgcf.IN_KERNEL) && userL4 === 0) return -Errno.EINVAL;

  const gdtEnts = u64(GuestContext.GDT_ENTS);
  if (gdtEnts > 8192) return -Errno.EINVAL;
  const frames: number[] = [];
  for (let i = 0; i < ((gdtEnts + 511) >>> 9); i++) frames.push(u64(GuestContext.GDT_FRAMES + i * 8));
  let rc = installGdt(v, frames, gdtEnts);
  if (rc !== 0) return rc;
  rc = setKernelBaseptr(v, kernelL4);
  if (rc === 0 && userL4 !== 0) rc = setUserBaseptr(v, userL4);
  if (rc !== 0) { destroyGdt(v); return rc; }

  // Hypervisor-side state.
  const fixRpl = (sel: number) => ((sel & 3) < 3 ? (sel & ~3) | 3 : sel) & 0xffff;
  for (let i = 0; i < 256; i++) {
    const o = GuestContext.TRAP_CTXT + i * 16;
    const a = linAt(o + 8);
    v.trapAddr[i] = a > 0 ? a : -1;
    v.trapFlags[i] = ctx[o + 1];
    v.trapCs[i] = fixRpl(dv.getUint16(o + 2, true));
  }
  destroyLdt(v);
  v.ldtBase = ldtEnts ? ldtBase : 0;
  v.ldtEnts = ldtEnts;
  v.kernelSs = fixRpl(dv.getUint16(GuestContext.KERNEL_SS, true));
  v.kernelSp = linAt(GuestContext.KERNEL_SP);
  v.callbackAddr[Callback.EVENT] = linAt(GuestContext.EVENT_CALLBACK_EIP);
  v.callbackAddr[Callback.FAILSAFE] = linAt(GuestContext.FAILSAFE_CALLBACK_EIP);
  v.callbackFlags[Callback.FAILSAFE] = flags & Vgcf.FAILSAFE_DISABLES_EVENTS ? CALLBACKF_MASK_EVENTS : 0;
  v.callbackAddr[Callback.SYSCALL] = linAt(GuestContext.SYSCALL_CALLBACK_EIP);
  v.callbackFlags[Callback.SYSCALL] = flags & Vgcf.SYSCALL_DISABLES_EVENTS ? CALLBACKF_MASK_EVENTS : 0;
  v.gsBaseKernelLo = lo(GuestContext.GS_BASE_KERNEL); v.gsBaseKernelHi = hi(GuestContext.GS_BASE_KERNEL);
  v.gsBaseUserLo = lo(GuestContext.GS_BASE_USER); v.gsBaseUserHi = hi(GuestContext.GS_BASE_USER);
  v.kernelMode = (flags & Vgcf.IN_KERNEL) !== 0;
  const rflags = dv.getUint32(U + UserRegs.RFLAGS, true);
  v.iopl = (rflags >>> 12) & 3;

  // The CPU.
  const ps = pvState(v);
  attachPv(v);
  const cpu = v.cpu, r = cpu.r, s = cpu.seg;
  setFpuTs(v, (dv.getUint32(cr(0), true) & 8) !== 0);
  ps.cr2Lo = lo(cr(2)); ps.cr2Hi = hi(cr(2));
  ps.cr4 = fixupGuestCr4(v, dv.getUint32(cr(4), true));
  cpu.cr4 = makeCr4(v);
  for (let i = 0; i < 8; i++) if (i < 4 || i >= 6) setDebugreg(v, i, lo(GuestContext.DEBUGREG + i * 8), hi(GuestContext.DEBUGREG + i * 8));
  for (let i = 0; i < 16; i++) { r[i * 2] = lo(U + USER_GPR[i]); r[i * 2 + 1] = hi(U + USER_GPR[i]); }
  cpu.rip = linAt(U + UserRegs.RIP);
  setFlags(cpu.f, ((rflags & ~(F.IOPL | F.VM)) | F.IF) >>> 0);
  updateCr3(v);
  loadDescriptorTables(v);
  const mem = cpu.mem, was = mem.implicitSupervisor;
  mem.implicitSupervisor = true;
  try {
    for (const [seg, off] of [[Seg.ES, UR.ES], [Seg.DS, UR.DS], [Seg.FS, UR.FS], [Seg.GS, UR.GS]] as const) {
      const sel = dv.getUint16(U + off, true);
      try { withLdtFixups(v, () => loadSeg(cpu, seg, sel > 3 ? sel | 3 : sel)); } catch (e) {
        if (!(e instanceof CpuFault)) throw e;
        setSegCache(cpu, seg, 0, null);
      }
    }
  } finally { mem.implicitSupervisor = was; }
  s.baseLo[Seg.FS] = lo(GuestContext.FS_BASE); s.baseHi[Seg.FS] = hi(GuestContext.FS_BASE);
  const [gLo, gHi] = v.kernelMode ? [v.gsBaseKernelLo, v.gsBaseKernelHi] : [v.gsBaseUserLo, v.gsBaseUserHi];
  s.baseLo[Seg.GS] = gLo; s.baseHi[Seg.GS] = gHi;
  s.sel[Seg.CS] = fixRpl(dv.getUint16(U + UserRegs.CS, true));
  s.sel[Seg.SS] = fixRpl(dv.getUint16(U + UserRegs.SS, true));
  ps.sysret = false;
  ps.pendingSegs = false;
  if (!loadReturnSegs(v)) bounceFailsafe(v);
  return 0;
}
