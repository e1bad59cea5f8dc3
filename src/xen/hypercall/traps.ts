// The trap, callback and CPU-context hypercalls of a 64-bit PV guest:
//   set_trap_table (0), set_gdt (2), stack_switch (3), set_callbacks (4), fpu_taskswitch (5),
//   set_debugreg (8), get_debugreg (9), update_descriptor (10), iret (23),
//   set_segment_base (25), callback_op (30)
// as Xen's pv/callback.c, pv/misc-hypercalls.c, pv/iret.c, pv/descriptor-tables.c and
// x86_64/mm.c (do_set_segment_base) behave for a 64-bit PV domain.
//
// set_gdt and update_descriptor take page references like Xen (mm/pagetype.ts: SEG_DESC for
// descriptor pages, validated by pv/mode.ts). Not modelled: hypercall preemption
// (set_trap_table runs to its terminator in one go).

import { CpuFault } from '../../cpu/fault.js';
import { setFlags } from '../../cpu/flags.js';
import { loadSeg, setSegCache } from '../../cpu/segments.js';
import { F, Seg } from '../../cpu/state.js';
import { Errno } from '../errno.js';
import { copyFromGuest } from '../guestmem.js';
import { PGT, getPage, getPageType, pageInfo, putPage, putPageType } from '../mm/pagetype.js';
import { FIRST_RESERVED_GDT_ENTRY, FLAT_KERNEL_CS64 } from '../layout.js';
import {
  bounceFailsafe, domainCrash, setHypercallResult64, setUpcallMask, TI_IF,
} from '../pv/bounce.js';
import { getDebugreg, setDebugreg } from '../pv/emulate.js';
import {
  checkDescriptor, installGdt, linearOfHalves, pvState, setFpuTs, setGsBase, toggleGuestMode, withLdtFixups, wrap48,
} from '../pv/mode.js';
import { Callback, type Vcpu } from '../vcpu.js';
import { Hc, registerHypercall } from './table.js';

const TWO32 = 4294967296;

export const enum SegBase { FS = 0, GS_USER = 1, GS_KERNEL = 2, GS_USER_SEL = 3 }
export const enum CallbackOp { register = 0, unregister = 1 }
/** iret flags: return as from SYSCALL (restore RAX RIP RFLAGS RSP only). */
export const VGCF_IN_SYSCALL = 256;
const NMI_VECTOR = 2;
const VMASST_ARCHITECTURAL_IOPL = 4;

// ---- set_trap_table -------------------------------------------------------------------------

/** Install trap_info entries {vector, flags, cs, address} up to one with address 0; a null
 *  table clears the whole virtual IDT. */
export function setTrapTable(v: Vcpu, p: number): number {
  if (p === 0) {
    v.trapAddr.fill(-1); v.trapFlags.fill(0); v.trapCs.fill(0);
    return 0;
  }
  for (;;) {
    const e = copyFromGuest(v, p, 16);
    const dv = new DataView(e.buffer);
    const lo = dv.getInt32(8, true), hi = dv.getInt32(12, true);
    if (lo === 0 && hi === 0) return 0;
    const lin = linearOfHalves(lo, hi);
    if (lin < 0) return -Errno.EINVAL;
    const vec = e[0];
    let cs = dv.getUint16(2, true);
    if ((cs & 3) < 3) cs = (cs & ~3) | 3; // fixup_guest_code_selector: RPL 3 for a 64-bit guest
    v.trapAddr[vec] = lin;
    v.trapFlags[vec] = e[1];
    v.trapCs[vec] = cs;
    p = wrap48(p + 16);
  }
}

// ---- callbacks ------------------------------------------------------------------------------

/** register_guest_callback. */
export function registerCallback(v: Vcpu, type: number, flags: number, lo: number, hi: number): number {
  const lin = linearOfHalves(lo, hi);
  if (lin < 0) return -Errno.EINVAL;
  switch (type) {
    case Callback.EVENT: case Callback.FAILSAFE: case Callback.SYSCALL: case Callback.SYSCALL32: case Callback.SYSENTER:
      v.callbackAddr[type] = lin;
      v.callbackFlags[type] = flags & 0xff;
      return 0;
    case Callback.NMI:
      // register_guest_nmi_callback: the NMI trap entry, entered with events masked.
      v.trapAddr[NMI_VECTOR] = lin;
      v.trapFlags[NMI_VECTOR] = TI_IF;
      v.trapCs[NMI_VECTOR] = FLAT_KERNEL_CS64;
      v.callbackAddr[type] = lin;
      return 0;
    default: return -Errno.ENOSYS;
  }
}

/** unregister_guest_callback: only the NMI callback can be removed. */
export function unregisterCallback(v: Vcpu, type: number): number {
  switch (type) {
    case Callback.EVENT: case Callback.FAILSAFE: case Callback.SYSCALL: case Callback.SYSCALL32: case Callback.SYSENTER:
      return -Errno.EINVAL;
    case Callback.NMI:
      v.trapAddr[NMI_VECTOR] = -1; v.trapFlags[NMI_VECTOR] = 0; v.trapCs[NMI_VECTOR] = 0;
      v.callbackAddr[type] = -1;
      return 0;
    default: return -Errno.ENOSYS;
  }
}

function callbackOp(v: Vcpu, cmd: number, p: number): number {
  switch (cmd) {
    case CallbackOp.register: {
      const b = copyFromGuest(v, p, 16);
      const dv = new DataView(b.buffer);
      return registerCallback(v, dv.getUint16(0, true), dv.getUint16(2, true), dv.getInt32(8, true), dv.getInt32(12, true));
    }
    case CallbackOp.unregister: {
      const b = copyFromGuest(v, p, 4);
      return unregisterCallback(v, b[0] | (b[1] << 8));
    }
    default: return -Errno.ENOSYS;
  }
}

// ---- small context hypercalls ---------------------------------------------------------------

/** stack_switch: the kernel stack events and traps from user mode arrive on. */
function stackSwitch(v: Vcpu, ss: number, spLo: number, spHi: number): number {
  v.kernelSs = (ss & 3) < 3 ? ((ss & ~3) | 3) >>> 0 : ss >>> 0;
  v.kernelSp = linearOfHalves(spLo, spHi); // -1: not canonical, a bounce there crashes the domain
  return 0;
}

/** do_set_segment_base. */
export function setSegmentBase(v: Vcpu, which: number, lo: number, hi: number): number {
  const s = v.cpu.seg;
  const canonical = linearOfHalves(lo, hi) >= 0;
  switch (which) {
    case SegBase.FS:
      if (!canonical) return -Errno.EINVAL;
      s.baseLo[Seg.FS] = lo | 0; s.baseHi[Seg.FS] = hi | 0;
      return 0;
    case SegBase.GS_USER:
      if (!canonical) return -Errno.EINVAL;
      setGsBase(v, false, lo, hi);
      return 0;
    case SegBase.GS_KERNEL: // the GS base in context: the kernel's, as hypercalls come from the kernel
      if (!canonical) return -Errno.EINVAL;
      setGsBase(v, v.kernelMode, lo, hi);
      return 0;
    case SegBase.GS_USER_SEL: loadUserGs(v, lo & 0xffff); return 0;
    default: return -Errno.EINVAL;
  }
}

/** SEGBASE_GS_USER_SEL: load %gs with a selector of the guest's GDT/LDT for user mode; the
 *  descriptor's base becomes the user GS base (a selector that faults loads as null). The
 *  kernel's GS base stays in context. */
function loadUserGs(v: Vcpu, raw: number): void {
  const cpu = v.cpu, s = cpu.seg;
  const kLo = s.baseLo[Seg.GS], kHi = s.baseHi[Seg.GS];
  const sel = raw > 3 ? raw | 3 : raw;
  const mem = cpu.mem, was = mem.implicitSupervisor;
  mem.implicitSupervisor = true;
  try {
    withLdtFixups(v, () => loadSeg(cpu, Seg.GS, sel));
  } catch (e) {
    if (!(e instanceof CpuFault)) throw e;
    setSegCache(cpu, Seg.GS, 0, null);
  } finally {
    mem.implicitSupervisor = was;
  }
  v.gsBaseUserLo = s.baseLo[Seg.GS]; v.gsBaseUserHi = s.baseHi[Seg.GS];
  if (v.kernelMode) { s.baseLo[Seg.GS] = kLo; s.baseHi[Seg.GS] = kHi; }
}

// ---- descriptor tables ----------------------------------------------------------------------

/** set_gdt: frames (MFNs) for the first `entries` GDT entries (up to Xen's reserved ones). */
export function setGdt(v: Vcpu, p: number, entries: number): number {
  if (entries > FIRST_RESERVED_GDT_ENTRY) return -Errno.EINVAL;
  const nr = (entries + 511) >>> 9;
  const raw = copyFromGuest(v, p, nr * 8);
  const dv = new DataView(raw.buffer);
  const f = v.domain.xen.frames;
  const frames: number[] = [];
  for (let i = 0; i < nr; i++) {
    const mfn = dv.getUint32(i * 8 + 4, true) * TWO32 + dv.getUint32(i * 8, true);
    if (mfn >= f.frames) return -Errno.EINVAL;
    frames.push(mfn);
  }
  return installGdt(v, frames, entries);
}

/** update_descriptor: write one validated descriptor at a machine address of the domain. */
export function updateDescriptor(v: Vcpu, pa: number, lo: number, hi: number): number {
  if (pa % 8 !== 0) return -Errno.EINVAL;
  const fixed = checkDescriptor(lo | 0, hi | 0);
  if (fixed === null) return -Errno.EINVAL;
  const xen = v.domain.xen, d = v.domain, pi = pageInfo(xen);
  const mfn = Math.floor(pa / 4096);
  if (mfn >= xen.frames.frames || !getPage(pi, mfn, d.id)) return -Errno.EINVAL;
  // A descriptor page stays one; any other frame must be able to be writable (not a table).
  const type = pi.typeCount[mfn] > 0 && pi.type[mfn] === PGT.SEG_DESC ? PGT.SEG_DESC : PGT.WRITABLE;
  if (getPageType(pi, mfn, type, d) !== 0) { putPage(pi, mfn); return -Errno.EINVAL; }
  xen.machine.set32(pa, fixed[0]);
  xen.machine.set32(pa + 4, fixed[1]);
  putPageType(pi, mfn);
  putPage(pi, mfn);
  return 0;
}

// ---- iret -----------------------------------------------------------------------------------

/**
 * do_iret: return from the guest kernel through the frame on its stack
 * {rax, r11, rcx, flags, rip, cs, rflags, rsp, ss}. To user mode if CS has RPL 3 (the user
 * L4 and GS base); RPL 3 forced on CS and SS; the virtual event mask = !RFLAGS.IF; the real
 * IF stays set and IOPL is virtual. Without VGCF_in_syscall the return is an IRETQ of the
 * frame (R11 and RCX restored; a CS or SS that does not load goes to the failsafe
 * callback); with it a SYSRET (RCX and R11 become RIP and RFLAGS, CS/SS flat). RAX is the
 * frame's. A frame that cannot be read, or user mode without user page tables, crashes
 * the domain. A non-canonical RIP is sent to the failsafe callback at once (Xen's IRETQ
 * would fault the same way; the frame then shows RIP with its top bits dropped).
 */
export function doIret(v: Vcpu): number {
  const cpu = v.cpu, r = cpu.r, s = cpu.seg, d = v.domain, ps = pvState(v);
  const w = new Int32Array(18);
  const sp = linearOfHalves(r[8], r[9]);
  let ok = sp >= 0;
  if (ok) {
    const mem = cpu.mem, was = mem.implicitSupervisor;
    mem.implicitSupervisor = true;
    try {
      for (let i = 0; i < 9; i++) { w[2 * i] = mem.rd64(wrap48(sp + 8 * i)); w[2 * i + 1] = mem.hi; }
    } catch (e) {
      if (!(e instanceof CpuFault)) throw e;
      ok = false;
    } finally {
      mem.implicitSupervisor = was;
    }
  }
  if (!ok) {
    d.xen.printk(`d${d.id}v${v.id} Fault while reading IRET context from guest stack`);
    domainCrash(v, 'do_iret');
    return 0;
  }
  const [raxLo, raxHi, r11Lo, r11Hi, rcxLo, rcxHi, flags, , ripLo, ripHi, cs, , rflags, , rspLo, rspHi, ss] = w;
  if ((cs & 3) === 3) {
    if (v.userCr3 === 0) {
      d.xen.printk(`d${d.id}v${v.id} Guest switching to user mode with no user page tables`);
      domainCrash(v, 'do_iret');
      return 0;
    }
    toggleGuestMode(v);
  }
  if (d.vmAssist & (1 << VMASST_ARCHITECTURAL_IOPL)) v.iopl = (rflags >>> 12) & 3;
  const rip = linearOfHalves(ripLo, ripHi);
  s.sel[Seg.CS] = (cs | 3) & 0xffff;
  s.sel[Seg.SS] = (ss | 3) & 0xffff;
  setFlags(cpu.f, ((rflags & ~(F.IOPL | F.VM)) | F.IF) >>> 0);
  r[8] = rspLo; r[9] = rspHi;
  if (!(flags & VGCF_IN_SYSCALL)) {
    ps.sysret = false;
    ps.pendingSegs = true;
    r[22] = r11Lo; r[23] = r11Hi;
    r[2] = rcxLo; r[3] = rcxHi;
  }
  setUpcallMask(v, (rflags & F.IF) ? 0 : 1);
  setHypercallResult64(v, raxLo, raxHi);
  cpu.rip = rip >= 0 ? rip : (ripHi & 0xffff) * TWO32 + (ripLo >>> 0);
  cpu.endBlock();
  if (rip < 0) {
    ps.sysret = false;
    ps.pendingSegs = false;
    bounceFailsafe(v);
  }
  return 0;
}

// ---- registration ---------------------------------------------------------------------------

registerHypercall(Hc.set_trap_table, (v, a) => setTrapTable(v, a.ptr(0)));
registerHypercall(Hc.set_gdt, (v, a) => setGdt(v, a.ptr(0), a.u32(1)));
registerHypercall(Hc.stack_switch, (v, a) => stackSwitch(v, a.lo[0], a.lo[1], a.hi[1]));
registerHypercall(Hc.set_callbacks, (v, a) => {
  // 64-bit form (event, failsafe, syscall), no flags; errors are ignored and 0 returned.
  registerCallback(v, Callback.EVENT, 0, a.lo[0], a.hi[0]);
  registerCallback(v, Callback.FAILSAFE, 0, a.lo[1], a.hi[1]);
  registerCallback(v, Callback.SYSCALL, 0, a.lo[2], a.hi[2]);
  return 0;
});
registerHypercall(Hc.fpu_taskswitch, (v, a) => { setFpuTs(v, a.s32(0) !== 0); return 0; });
registerHypercall(Hc.set_debugreg, (v, a) => setDebugreg(v, a.s32(0), a.lo[1], a.hi[1]));
registerHypercall(Hc.get_debugreg, (v, a) => {
  const val = getDebugreg(v, a.s32(0));
  if (val === null) return -Errno.ENODEV;
  setHypercallResult64(v, val[0], val[1]);
  return 0;
});
registerHypercall(Hc.update_descriptor, (v, a) => updateDescriptor(v, a.u64(0), a.lo[1], a.hi[1]));
registerHypercall(Hc.iret, (v) => doIret(v));
registerHypercall(Hc.set_segment_base, (v, a) => setSegmentBase(v, a.u32(0), a.lo[1], a.hi[1]));
registerHypercall(Hc.callback_op, (v, a) => callbackOp(v, a.s32(0), a.ptr(1)));
