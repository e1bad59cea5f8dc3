// PV memory-management hypercalls: mmu_update (1), update_va_mapping (14),
// update_va_mapping_otherdomain (22) and mmuext_op (26), as xen/arch/x86/mm.c implements them
// for 64-bit PV guests. Validation and reference counting are in mm/validate.ts and
// mm/pagetype.ts.
//
// Each hypercall has a core that takes plain values (mmuUpdateOne, mmuextOne,
// updateVaMapping) and a wrapper that reads the guest's arrays, stops at the first failing
// element, and reports the number done through `pdone` (also when it stops early).
//
// Error numbers, as Xen returns them:
//   -EFAULT  bad guest array pointer or unreadable element
//   -ESRCH   foreign domain that does not exist (or the caller named itself)
//   -EPERM   a foreign domain the caller is not privileged over; NEW_BASEPTR etc. with a
//            foreign domain; MMIO without I/O privilege; otherdomain for an unprivileged caller
//   -EINVAL  entries with forbidden flags, L4 slots 256..271, frames not owned (mmu_update's
//            table, pins, L2..L4 entries), type conflicts of tables, double pin, unpin of an
//            unpinned frame, bad SET_LDT, update_va_mapping without an L1 for the address
//   -EBUSY   L1 entries mapping frames not owned, or writable mappings of tables/descriptors
//   -ENOSYS  unknown command; -EOPNOTSUPP MARK_SUPER/UNMARK_SUPER; -EACCES FLUSH_CACHE (domU)
//
// Builder helpers: pinTable(d, mfn, level), unpinTable(d, mfn), setKernelBaseptr(v, mfn),
// setUserBaseptr(v, mfn).

import { CpuFault } from '../../cpu/fault.js';
import { PagedMemory } from '../../mmu/paged.js';
import type { Domain } from '../domain.js';
import { Errno, HypercallError } from '../errno.js';
import { readGuest32, writeGuest32 } from '../guestmem.js';
import { DOMID_IO, DOMID_SELF, DOMID_XEN } from '../mm/frames.js';
import { fillRoMpt, setM2P, zapRoMpt } from '../mm/m2p.js';
import {
  PGT, PageInfo, PgFlag, baseRefsOf, getPage, getPageAndType, getPageType, pageInfo, putPage, putPageAndType,
  putPageType, touchFrame, writePte,
} from '../mm/pagetype.js';
import { Pte, m2pStrict, modL1Entry, modLNEntry, pteMfn } from '../mm/validate.js';
import { setLdt, updateCr3 } from '../pv/mode.js';
import type { Vcpu } from '../vcpu.js';
import { Hc, registerHypercall } from './table.js';

export const enum MmuCmd { NORMAL_PT_UPDATE = 0, MACHPHYS_UPDATE = 1, PT_UPDATE_PRESERVE_AD = 2, PT_UPDATE_NO_TRANSLATE = 3 }
export const enum MmuExt {
  PIN_L1_TABLE = 0, PIN_L2_TABLE = 1, PIN_L3_TABLE = 2, PIN_L4_TABLE = 3, UNPIN_TABLE = 4, NEW_BASEPTR = 5,
  TLB_FLUSH_LOCAL = 6, INVLPG_LOCAL = 7, TLB_FLUSH_MULTI = 8, INVLPG_MULTI = 9, TLB_FLUSH_ALL = 10, INVLPG_ALL = 11,
  FLUSH_CACHE = 12, SET_LDT = 13, NEW_USER_BASEPTR = 15, CLEAR_PAGE = 16, COPY_PAGE = 17, FLUSH_CACHE_GLOBAL = 18,
  MARK_SUPER = 19, UNMARK_SUPER = 20,
}
export const enum Uvmf { NONE = 0, TLB_FLUSH = 1, INVLPG = 2, FLUSHTYPE_MASK = 3, MULTI = 0, LOCAL = 0, ALL = 4 }

const TWO32 = 4294967296;
const TWO47 = 0x800000000000;
/** HYPERVISOR_VIRT_END as a 48-bit linear address. */
const XEN_VIRT_END_LIN = 0x880000000000;
/** The high bit of a count: a continuation of a preempted call (MMU_UPDATE_PREEMPTED). */
const PREEMPTED = 0x80000000;
const MMU_UPDATE_SIZE = 16, MMUEXT_OP_SIZE = 24;

// ---- helpers -------------------------------------------------------------------------------

/** Xen's __addr_ok for a 48-bit linear address (-1: non-canonical): outside Xen's range. */
export function addrOk(lin: number): boolean { return lin !== -1 && !(lin >= TWO47 && lin < XEN_VIRT_END_LIN); }

/** A 64-bit value (halves) as a 48-bit linear address, or -1 if not canonical. */
export function linOf(lo: number, hi: number): number {
  if (((hi << 16) >> 16) !== hi) return -1;
  return (hi & 0xffff) * TWO32 + (lo >>> 0);
}

function u64(lo: number, hi: number): number { return (hi >>> 0) * TWO32 + (lo >>> 0); }

/** guest_handle_okay: the array starts in guest space and its size does not overflow. */
function arrayOk(ptr: number, count: number, size: number): boolean {
  return count < Math.floor(2 ** 64 / size) && addrOk(ptr);
}

/** get_pg_owner: the domid a foreign-domain argument names (DOMID_IO and DOMID_XEN allowed),
 *  or -1 (-ESRCH): unknown, or the caller's own id. */
export function pgOwnerOf(v: Vcpu, domid: number): number {
  const d = v.domain;
  if (domid === DOMID_SELF) return d.id;
  if (domid === d.id) return -1;
  if (domid === DOMID_IO || domid === DOMID_XEN) return domid;
  return d.xen.domains.has(domid) ? domid : -1;
}

/** XSM_TARGET under the dummy policy: itself, or a privileged caller. */
function privOver(d: Domain, target: number): boolean { return d.id === target || d.privileged; }

function flushVcpu(v: Vcpu): void {
  const m = v.cpu.mem;
  if (m instanceof PagedMemory) m.flushAll(); else m.flush();
}
function invlpgVcpu(v: Vcpu, lin: number): void {
  if (lin !== -1) v.cpu.mem.flush(lin);
}

/** vcpumask_to_pcpumask: read a guest bitmap of vCPUs (one 64-bit word per 64 vCPUs). */
function readVcpuMask(v: Vcpu, lin: number): Vcpu[] | null {
  const d = v.domain, out: Vcpu[] = [];
  const mem = v.cpu.mem;
  for (let offs = 0; offs * 64 < d.vcpus.length; offs++) {
    let lo: number, hi: number;
    if (!addrOk(lin)) return null; // copy_from_guest refuses Xen's range
    try { lo = mem.rd64(lin + offs * 8); hi = mem.hi; } catch (e) { if (e instanceof CpuFault) return null; throw e; }
    for (let b = 0; b < 64; b++) {
      const set = b < 32 ? (lo >>> b) & 1 : (hi >>> (b - 32)) & 1;
      if (set === 0) continue;
      const id = offs * 64 + b;
      if (id >= d.vcpus.length) return out;
      out.push(d.vcpus[id]);
    }
  }
  return out;
}

// ---- base pointers -------------------------------------------------------------------------

/** Reload CR3 with the current mode's base (pv/mode.ts: also ends the CPU's block and
 *  drops the TLB) and flush everything, global entries included, as Xen's write_ptbase. */
function writePtbase(v: Vcpu): void {
  updateCr3(v);
  flushVcpu(v);
}

/** new_guest_cr3: make mfn (validated as an L4 if it is not yet) the vCPU's kernel base. */
export function setKernelBaseptr(v: Vcpu, mfn: number): number {
  const d = v.domain, pi = pageInfo(d.xen);
  const b = baseRefsOf(v);
  if (mfn === v.kernelCr3 && b.kernel === mfn) { writePtbase(v); return 0; }
  const rc = getPageAndType(pi, mfn, PGT.L4, d);
  if (rc !== 0) return rc;
  if (!m2pStrict(d)) fillRoMpt(d.xen, mfn);
  const old = b.kernel;
  b.kernel = mfn;
  v.kernelCr3 = mfn;
  writePtbase(v);
  if (old >= 0) putPageAndType(pi, old);
  return 0;
}

/** MMUEXT_NEW_USER_BASEPTR: the L4 used in guest-user mode (0: none). Takes effect at the
 *  next switch to user mode, as in Xen (CR3 is reloaded with the current mode's base). */
export function setUserBaseptr(v: Vcpu, mfn: number): number {
  const d = v.domain, pi = pageInfo(d.xen);
  const b = baseRefsOf(v);
  if (mfn === v.userCr3 && (mfn === 0 ? b.user < 0 : b.user === mfn)) return 0;
  if (mfn !== 0) {
    const rc = getPageAndType(pi, mfn, PGT.L4, d);
    if (rc !== 0) return rc;
    if (m2pStrict(d)) zapRoMpt(d.xen, mfn);
  }
  const old = b.user;
  b.user = mfn !== 0 ? mfn : -1;
  v.userCr3 = mfn;
  writePtbase(v);
  if (old >= 0) putPageAndType(pi, old);
  return 0;
}

// ---- pins ----------------------------------------------------------------------------------

function pin(pi: PageInfo, pgOwner: Domain | null, mfn: number, level: number): number {
  if (pgOwner === null || !getPage(pi, mfn, pgOwner.id)) return -Errno.EINVAL;
  const rc = getPageType(pi, mfn, level as PGT, pgOwner);
  if (rc !== 0) { putPage(pi, mfn); return rc; }
  if ((pi.flags[mfn] & PgFlag.PINNED) !== 0) { putPageAndType(pi, mfn); return -Errno.EINVAL; }
  pi.flags[mfn] |= PgFlag.PINNED;
  return 0;
}

function unpin(pi: PageInfo, pgOwner: Domain | null, mfn: number): number {
  if (pgOwner === null || !getPage(pi, mfn, pgOwner.id)) return -Errno.EINVAL;
  if ((pi.flags[mfn] & PgFlag.PINNED) === 0) { putPage(pi, mfn); return -Errno.EINVAL; }
  pi.flags[mfn] &= ~PgFlag.PINNED;
  putPageAndType(pi, mfn);
  putPage(pi, mfn);
  return 0;
}

/** Pin a table of d as Xen's MMUEXT_PIN_Lx_TABLE does (validating it): 0 or -errno. */
export function pinTable(d: Domain, mfn: number, level: 1 | 2 | 3 | 4): number { return pin(pageInfo(d.xen), d, mfn, level); }
export function unpinTable(d: Domain, mfn: number): number { return unpin(pageInfo(d.xen), d, mfn); }

// ---- mmu_update ----------------------------------------------------------------------------

/**
 * One mmu_update request. ptOwner: whose tables (the PFD half of foreigndom), pgOwner: whose
 * frames the entries may map (FD; a domid, DOMID_IO or DOMID_XEN).
 */
export function mmuUpdateOne(v: Vcpu, ptOwner: Domain, pgOwner: number, ptrLo: number, ptrHi: number, valLo: number, valHi: number): number {
  const d = v.domain, pi = pageInfo(d.xen);
  const cmd = ptrLo & 7;
  const mfn = (ptrHi >>> 0) * 1048576 + (ptrLo >>> 12);
  switch (cmd) {
    case MmuCmd.NORMAL_PT_UPDATE: case MmuCmd.PT_UPDATE_PRESERVE_AD: case MmuCmd.PT_UPDATE_NO_TRANSLATE: {
      if (pgOwner !== DOMID_IO && !privOver(d, pgOwner)) return -Errno.EPERM;
      if (!privOver(d, ptOwner.id)) return -Errno.EPERM;
      if (!getPage(pi, mfn, ptOwner.id)) return -Errno.EINVAL;
      const idx = (ptrLo & 0xff8) >>> 3;
      let rc = -Errno.EINVAL;
      if (pi.typeCount[mfn] > 0 && (pi.flags[mfn] & PgFlag.VALIDATED) !== 0) {
        const t = pi.type[mfn];
        if (t === PGT.L1) rc = modL1Entry(pi, mfn, idx, valLo, valHi, cmd === MmuCmd.PT_UPDATE_PRESERVE_AD, ptOwner, pgOwner, d);
        else if (t >= PGT.L2 && t <= PGT.L4) {
          if (pgOwner === ptOwner.id) rc = modLNEntry(pi, mfn, idx, t, valLo, valHi, cmd === MmuCmd.PT_UPDATE_PRESERVE_AD, ptOwner);
        } else if (t === PGT.WRITABLE) { writePte(pi, mfn, idx, valLo, valHi); rc = 0; }
      } else if (getPageType(pi, mfn, PGT.WRITABLE, ptOwner) === 0) {
        // Not in use as anything: an ordinary write.
        writePte(pi, mfn, idx, valLo, valHi);
        putPageType(pi, mfn);
        rc = 0;
      }
      putPage(pi, mfn);
      return rc;
    }
    case MmuCmd.MACHPHYS_UPDATE: {
      if (ptOwner !== d) return -Errno.EPERM;
      if (pgOwner !== DOMID_IO && !privOver(d, pgOwner)) return -Errno.EPERM;
      if (!getPage(pi, mfn, pgOwner)) return -Errno.EINVAL;
      setM2P(d.xen, mfn, u64(valLo, valHi));
      putPage(pi, mfn);
      return 0;
    }
    default: return -Errno.ENOSYS;
  }
}

export interface BatchResult { rc: number; done: number }

/**
 * The owners named by mmu_update's foreigndom: [ptOwner, pgOwner] or an error: rc with
 * `early` true when Xen returns before touching pdone.
 */
function mmuOwners(v: Vcpu, foreigndom: number): { pt: Domain; pg: number } | { rc: number; early: boolean } {
  const d = v.domain;
  let pt = d;
  const pfd = foreigndom >>> 16;
  if (pfd !== 0) {
    const o = d.xen.domains.get(pfd - 1);
    if (!o) return { rc: -Errno.ESRCH, early: true };
    if (o !== d && o.vcpus.length === 0) return { rc: -Errno.EINVAL, early: false };
    pt = o;
  }
  const pg = pgOwnerOf(v, foreigndom & 0xffff);
  if (pg < 0) return { rc: -Errno.ESRCH, early: false };
  return { pt, pg };
}

/** mmu_update over a list of [ptr, val] (tests, in-process callers). */
export function mmuUpdate(v: Vcpu, reqs: [bigint, bigint][], foreigndom = DOMID_SELF): BatchResult {
  const o = mmuOwners(v, foreigndom);
  if ('rc' in o) return { rc: o.rc, done: 0 };
  let i = 0, rc = 0;
  for (; i < reqs.length; i++) {
    const [p, val] = reqs[i];
    rc = mmuUpdateOne(v, o.pt, o.pg, lo32(p), hi32(p), lo32(val), hi32(val));
    if (rc !== 0) break;
  }
  return { rc, done: i };
}

function lo32(x: bigint): number { return Number(BigInt.asIntN(32, x)); }
function hi32(x: bigint): number { return Number(BigInt.asIntN(32, x >> 32n)); }

const req = new Int32Array(6);

/** Read `n` 32-bit words of a guest array element into req; false on a fault. */
function readWords(v: Vcpu, lin: number, n: number): boolean {
  const mem = v.cpu.mem;
  try {
    for (let k = 0; k < n; k += 2) { req[k] = mem.rd64(lin + k * 4); req[k + 1] = mem.hi; }
  } catch (e) {
    if (e instanceof CpuFault) return false;
    throw e;
  }
  return true;
}

function readDone(v: Vcpu, pdone: number): number {
  if (pdone === 0) return 0;
  try { return readGuest32(v, pdone) >>> 0; } catch (e) { if (e instanceof HypercallError) return 0; throw e; }
}
function writeDone(v: Vcpu, pdone: number, n: number): void {
  if (pdone === 0) return;
  try { writeGuest32(v, pdone, n | 0); } catch (e) { if (!(e instanceof HypercallError)) throw e; }
}

function doMmuUpdate(v: Vcpu, ureqs: number, count: number, pdone: number, foreigndom: number): number {
  let done = 0;
  if ((count & PREEMPTED) !== 0) { count = (count & ~PREEMPTED) >>> 0; done = readDone(v, pdone); }
  if (!arrayOk(ureqs, count, MMU_UPDATE_SIZE)) return -Errno.EFAULT;
  const o = mmuOwners(v, foreigndom);
  let rc = 0, i = 0;
  if ('rc' in o) {
    if (o.early) return o.rc;
    rc = o.rc;
  } else {
    for (; i < count; i++) {
      if (!readWords(v, ureqs + i * MMU_UPDATE_SIZE, 4)) { rc = -Errno.EFAULT; break; }
      rc = mmuUpdateOne(v, o.pt, o.pg, req[0], req[1], req[2], req[3]);
      if (rc !== 0) break;
    }
  }
  writeDone(v, pdone, done + i);
  return rc;
}

// ---- mmuext_op -----------------------------------------------------------------------------

/** One mmuext_op. pgOwner: the foreign domain argument resolved (a domid, DOMID_IO/XEN). */
export function mmuextOne(v: Vcpu, pgOwner: number, cmd: number, a1Lo: number, a1Hi: number, a2Lo: number, a2Hi: number): number {
  const d = v.domain, pi = pageInfo(d.xen);
  const self = pgOwner === d.id;
  const mfn = u64(a1Lo, a1Hi);
  switch (cmd) {
    case MmuExt.PIN_L1_TABLE: case MmuExt.PIN_L2_TABLE: case MmuExt.PIN_L3_TABLE: case MmuExt.PIN_L4_TABLE:
      return pin(pi, d.xen.domains.get(pgOwner) ?? null, mfn, cmd + 1);
    case MmuExt.UNPIN_TABLE:
      return unpin(pi, d.xen.domains.get(pgOwner) ?? null, mfn);
    case MmuExt.NEW_BASEPTR:
      return self ? setKernelBaseptr(v, mfn) : -Errno.EPERM;
    case MmuExt.NEW_USER_BASEPTR:
      return self ? setUserBaseptr(v, mfn) : -Errno.EPERM;
    case MmuExt.TLB_FLUSH_LOCAL:
      if (!self) return -Errno.EPERM;
      flushVcpu(v);
      return 0;
    case MmuExt.INVLPG_LOCAL:
      if (!self) return -Errno.EPERM;
      invlpgVcpu(v, linOf(a1Lo, a1Hi));
      return 0;
    case MmuExt.TLB_FLUSH_MULTI: case MmuExt.INVLPG_MULTI: {
      if (!self) return -Errno.EPERM;
      const mask = readVcpuMask(v, linOf(a2Lo, a2Hi));
      if (mask === null) return -Errno.EINVAL;
      const lin = linOf(a1Lo, a1Hi);
      for (const w of mask) {
        if (cmd === MmuExt.TLB_FLUSH_MULTI) flushVcpu(w);
        else if (addrOk(lin)) invlpgVcpu(w, lin);
      }
      return 0;
    }
    case MmuExt.TLB_FLUSH_ALL:
      if (!self) return -Errno.EPERM;
      for (const w of d.vcpus) flushVcpu(w);
      return 0;
    case MmuExt.INVLPG_ALL: {
      if (!self) return -Errno.EPERM;
      const lin = linOf(a1Lo, a1Hi);
      if (addrOk(lin)) for (const w of d.vcpus) invlpgVcpu(w, lin);
      return 0;
    }
    case MmuExt.FLUSH_CACHE:
      if (!self) return -Errno.EPERM;
      return d.privileged ? 0 : -Errno.EACCES;
    case MmuExt.FLUSH_CACHE_GLOBAL:
      if (!self) return -Errno.EPERM;
      return d.privileged ? 0 : -Errno.EINVAL;
    case MmuExt.SET_LDT:
      if (!self) return -Errno.EPERM;
      return setLdt(v, linOf(a1Lo, a1Hi), a2Lo >>> 0); // pv/mode.ts: checks, shadow LDT, LDTR
    case MmuExt.CLEAR_PAGE: {
      if (!getPage(pi, mfn, pgOwner)) return -Errno.EINVAL;
      if (getPageType(pi, mfn, PGT.WRITABLE, d) !== 0) { putPage(pi, mfn); return -Errno.EINVAL; }
      pi.xen.phys.u8.fill(0, mfn * 4096, mfn * 4096 + 4096);
      touchFrame(pi, mfn);
      putPageAndType(pi, mfn);
      return 0;
    }
    case MmuExt.COPY_PAGE: {
      const src = u64(a2Lo, a2Hi);
      if (!getPage(pi, src, pgOwner)) return -Errno.EINVAL;
      if (!getPage(pi, mfn, pgOwner)) { putPage(pi, src); return -Errno.EINVAL; }
      if (getPageType(pi, mfn, PGT.WRITABLE, d) !== 0) { putPage(pi, mfn); putPage(pi, src); return -Errno.EINVAL; }
      const u8 = pi.xen.phys.u8;
      u8.copyWithin(mfn * 4096, src * 4096, src * 4096 + 4096);
      touchFrame(pi, mfn);
      putPageAndType(pi, mfn);
      putPage(pi, src);
      return 0;
    }
    case MmuExt.MARK_SUPER: case MmuExt.UNMARK_SUPER:
      return -Errno.EOPNOTSUPP;
    default:
      return -Errno.ENOSYS;
  }
}

/** mmuext_op's checks before the loop: the resolved pgOwner, or an -errno (< 0 and tagged). */
function mmuextOwner(v: Vcpu, foreigndom: number): { pg: number } | { rc: number } {
  const pg = pgOwnerOf(v, foreigndom & 0xffff);
  if (pg < 0) return { rc: -Errno.ESRCH };
  if (!privOver(v.domain, pg)) return { rc: -Errno.EPERM };
  return { pg };
}

/** mmuext_op over a list of ops (tests, in-process callers). arg1/arg2 as 64-bit values. */
export function mmuextOp(v: Vcpu, ops: { cmd: number; arg1?: bigint; arg2?: bigint }[], foreigndom = DOMID_SELF): BatchResult {
  const o = mmuextOwner(v, foreigndom);
  if ('rc' in o) return { rc: o.rc, done: 0 };
  let i = 0, rc = 0;
  for (; i < ops.length; i++) {
    const { cmd, arg1 = 0n, arg2 = 0n } = ops[i];
    rc = mmuextOne(v, o.pg, cmd, lo32(arg1), hi32(arg1), lo32(arg2), hi32(arg2));
    if (rc !== 0) break;
  }
  return { rc, done: i };
}

function doMmuextOp(v: Vcpu, uops: number, count: number, pdone: number, foreigndom: number): number {
  if (count === PREEMPTED && uops === 0) return foreigndom | 0;
  let done = 0;
  if ((count & PREEMPTED) !== 0) { count = (count & ~PREEMPTED) >>> 0; done = readDone(v, pdone); }
  if (!arrayOk(uops, count, MMUEXT_OP_SIZE)) return -Errno.EFAULT;
  const o = mmuextOwner(v, foreigndom);
  if ('rc' in o) return o.rc;
  let rc = 0, i = 0;
  for (; i < count; i++) {
    if (!readWords(v, uops + i * MMUEXT_OP_SIZE, 6)) { rc = -Errno.EFAULT; break; }
    rc = mmuextOne(v, o.pg, req[0], req[2], req[3], req[4], req[5]);
    if (rc !== 0) break;
  }
  writeDone(v, pdone, done + i);
  return rc;
}

// ---- update_va_mapping ---------------------------------------------------------------------

/** The L1 table that maps lin in the vCPU's current address space (map_guest_l1e), or -1. */
function guestL1(pi: PageInfo, v: Vcpu, lin: number): number {
  let t = v.kernelMode ? v.kernelCr3 : v.userCr3;
  if (t === 0) return -1;
  const vpn = Math.floor(lin / 4096);
  for (let level = 4; level >= 2; level--) {
    if (t >= pi.frames) return -1;
    const idx = Math.floor(vpn / 2 ** (9 * (level - 1))) & 511;
    const lo = pi.dv.getInt32(t * 4096 + idx * 8, true);
    if ((lo & Pte.P) === 0) return -1;
    if (level === 2 && (lo & Pte.PSE) !== 0) return -1;
    t = pteMfn(lo, pi.dv.getInt32(t * 4096 + idx * 8 + 4, true));
  }
  return t;
}

/**
 * update_va_mapping: the L1 entry for guest address `va` (48-bit linear, -1 non-canonical)
 * in the current page tables becomes val, mapping frames of pgOwner; then the TLB flush the
 * flags ask for (done even if the update failed, as Xen does). If the update failed its
 * error is returned; otherwise a bad vCPU bitmap gives -EFAULT.
 */
export function updateVaMapping(v: Vcpu, va: number, valLo: number, valHi: number, flagsLo: number, flagsHi: number, pgOwner = v.domain.id): number {
  const d = v.domain, pi = pageInfo(d.xen);
  let rc = -Errno.EINVAL;
  const gl1 = addrOk(va) ? guestL1(pi, v, va) : -1;
  if (gl1 >= 0 && getPage(pi, gl1, d.id)) {
    if (pi.type[gl1] === PGT.L1 && pi.typeCount[gl1] > 0 && (pi.flags[gl1] & PgFlag.VALIDATED) !== 0) {
      rc = modL1Entry(pi, gl1, Math.floor(va / 4096) & 511, valLo, valHi, false, d, pgOwner, d);
    }
    putPage(pi, gl1);
  }
  const type = flagsLo & Uvmf.FLUSHTYPE_MASK;
  if (type === Uvmf.TLB_FLUSH || type === Uvmf.INVLPG) {
    const bLo = flagsLo & ~Uvmf.FLUSHTYPE_MASK;
    let targets: Vcpu[] | null;
    if (flagsHi === 0 && bLo === Uvmf.LOCAL) targets = [v];
    else if (flagsHi === 0 && bLo === Uvmf.ALL) targets = d.vcpus;
    else targets = readVcpuMask(v, linOf(bLo, flagsHi));
    if (targets === null) { if (rc === 0) rc = -Errno.EFAULT; }
    else for (const w of targets) { if (type === Uvmf.TLB_FLUSH) flushVcpu(w); else invlpgVcpu(w, va); }
  }
  return rc;
}

/** update_va_mapping_otherdomain's owner check, then updateVaMapping. */
export function updateVaMappingOtherdomain(v: Vcpu, va: number, valLo: number, valHi: number, flagsLo: number, flagsHi: number, domid: number): number {
  const pg = pgOwnerOf(v, domid & 0xffff);
  if (pg < 0) return -Errno.ESRCH;
  if (!privOver(v.domain, pg)) return -Errno.EPERM;
  return updateVaMapping(v, va, valLo, valHi, flagsLo, flagsHi, pg);
}

registerHypercall(Hc.mmu_update, (v, a) => doMmuUpdate(v, a.ptr(0), a.u32(1), a.ptr(2), a.u32(3)));
registerHypercall(Hc.mmuext_op, (v, a) => doMmuextOp(v, a.ptr(0), a.u32(1), a.ptr(2), a.u32(3)));
registerHypercall(Hc.update_va_mapping, (v, a) => updateVaMapping(v, a.ptr(0), a.lo[1], a.hi[1], a.lo[2], a.hi[2]));
registerHypercall(Hc.update_va_mapping_otherdomain, (v, a) => updateVaMappingOtherdomain(v, a.ptr(0), a.lo[1], a.hi[1], a.lo[2], a.hi[2], a.u32(3)));
