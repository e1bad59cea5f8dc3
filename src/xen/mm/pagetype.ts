// Page types and reference counts per machine frame: the state Xen keeps in each page_info
// (count_info and type_info), as typed arrays indexed by MFN. See xen/arch/x86/mm.c's header
// comment for the model this follows:
//
//   count[mfn]      general references: every pin, every vCPU base pointer, every present
//                   page-table entry (in a validated table) that points at the frame. A frame
//                   that a guest gave back (decrease_reservation) is freed when it reaches 0.
//   type[mfn]       what the frame is used as: PGT.NONE, L1..L4 page table, SEG_DESC (GDT/LDT
//                   page) or WRITABLE (mapped writable somewhere).
//   typeCount[mfn]  references to that use. The type can change only while it is 0, so a
//                   frame mapped writable cannot become a page table and the other way round.
//                   When a page-table type's count drops to 0 the table is "devalidated": the
//                   references its entries hold are dropped (recursively), and it becomes
//                   free to take any type again.
//   flags[mfn]      PgFlag bits: pinned, validated, given back (pending free), shared by Xen.
//   linear[mfn]     linear page-table bookkeeping (Xen's linear_pt_count): > 0 the table holds
//                   that many entries mapping another table of its own level, < 0 that many
//                   such entries map it. A table cannot be both, so no cycles form.
//
// Frames whose type is a page table or SEG_DESC (with a non-zero count) are flagged in
// xen.writeProtected, the map every vCPU's PagedMemory shares: a guest write to them goes to
// the WriteProtectHook (mm/ptwr.ts) whatever the guest's PTEs say. When a frame takes such a
// type, writable TLB entries for it are dropped on every vCPU (Xen flushes at type change);
// when a frame is freed, every TLB is flushed (Xen's tlbflush timestamp on reallocation).
//
// Validation of page-table types lives in mm/validate.ts, which registers itself here
// (registerTypeValidator); a descriptor-table module may register one for SEG_DESC.
//
// API (for hypercall families and the domain builder):
//   pageInfo(xen)                         the per-host state (created on first use)
//   getPage(pi, mfn, domid) / putPage     general references (false: not that domain's frame)
//   getPageType(pi, mfn, type, d) / putPageType      type references (0 or -errno)
//   getPageAndType(pi, mfn, type, d) / putPageAndType  both
//   ownedBy(pi, mfn, domid)               the frame is the domain's and not given back
//   removeGuestPage(pi, d, mfn)           decrease_reservation's guest_remove_page
//   shareXenPage(pi, mfn, d, writable)    share a Xen frame with a guest (shared_info) or, with
//                                         DOMID_XEN, make it mappable (read-only) by dom0
//   relinquishDomainMemory(pi, d)         domain teardown: drop pins and bases, free frames
//   writePte / readPteLo / readPteHi      entry access by machine frame (keeps the decode cache honest)

import { PagedMemory } from '../../mmu/paged.js';
import type { Domain } from '../domain.js';
import { Errno } from '../errno.js';
import type { Xen } from '../xen.js';
import { DOMID_XEN } from './frames.js';

/** Page types (Xen's PGT_*). Page-table levels are 1..4 so a level is its own type. */
export const enum PGT { NONE = 0, L1 = 1, L2 = 2, L3 = 3, L4 = 4, SEG_DESC = 5, WRITABLE = 7 }

export const enum PgFlag {
  /** MMUEXT_PIN_Lx_TABLE holds a type reference. */
  PINNED = 1,
  /** The current page-table (or descriptor) type's contents have been checked. */
  VALIDATED = 2,
  /** Given back by the guest (decrease_reservation) while still referenced: freed at count 0,
   *  and no new reference may be taken. */
  PENDING_FREE = 4,
  /** A DOMID_XEN frame that a privileged domain may map (read-only unless its type allows). */
  XEN_SHARED = 8,
  /** May be mapped writable in some TLB: dropWritable is needed before it becomes a table. */
  TLB_WRITABLE = 16,
}

/** Validation of a type: validate returns 0 or -errno (having released whatever it took);
 *  invalidate drops what a validated frame's contents hold. */
export interface TypeValidator {
  validate(pi: PageInfo, mfn: number, d: Domain): number;
  invalidate(pi: PageInfo, mfn: number): void;
}
const validators: (TypeValidator | null)[] = [null, null, null, null, null, null, null, null];

export function registerTypeValidator(type: PGT, v: TypeValidator): void { validators[type] = v; }

/** A type whose frames the guest may not write directly. */
export function isProtectedType(t: number): boolean { return t >= PGT.L1 && t <= PGT.SEG_DESC; }

export class PageInfo {
  readonly frames: number;
  readonly type: Uint8Array;
  readonly typeCount: Int32Array;
  readonly count: Int32Array;
  readonly flags: Uint8Array;
  readonly linear: Int16Array;
  /** Shared with every vCPU's PagedMemory (xen.writeProtected). */
  readonly writeProtected: Uint8Array;
  readonly dv: DataView;

  constructor(readonly xen: Xen) {
    const n = xen.phys.frames;
    this.frames = n;
    this.type = new Uint8Array(n);
    this.typeCount = new Int32Array(n);
    this.count = new Int32Array(n);
    this.flags = new Uint8Array(n);
    this.linear = new Int16Array(n);
    this.writeProtected = xen.writeProtected;
    this.dv = xen.phys.dv;
  }
}

const infos = new WeakMap<Xen, PageInfo>();

export function pageInfo(xen: Xen): PageInfo {
  let pi = infos.get(xen);
  if (!pi) { pi = new PageInfo(xen); infos.set(xen, pi); }
  return pi;
}

// ---- entries by machine frame ---------------------------------------------------------

export function readPteLo(pi: PageInfo, mfn: number, idx: number): number { return pi.dv.getInt32(mfn * 4096 + idx * 8, true); }
export function readPteHi(pi: PageInfo, mfn: number, idx: number): number { return pi.dv.getInt32(mfn * 4096 + idx * 8 + 4, true); }

/** Write an entry (Xen's own write: no write protection applies). */
export function writePte(pi: PageInfo, mfn: number, idx: number, lo: number, hi: number): void {
  const pa = mfn * 4096 + idx * 8;
  pi.dv.setInt32(pa, lo, true);
  pi.dv.setInt32(pa + 4, hi, true);
  touchFrame(pi, mfn);
}

/** Xen wrote into a frame: drop decoded code from it. */
export function touchFrame(pi: PageInfo, mfn: number): void {
  const code = pi.xen.phys.codeFrame;
  if (code[mfn] === 0) return;
  code[mfn] = 0;
  if (pi.xen.code) { pi.xen.code.dropPage(mfn); return; }
  for (const d of pi.xen.domains.values()) for (const v of d.vcpus) v.cpu.mem.onCodeWrite?.(mfn);
}

// ---- ownership and general references --------------------------------------------------

/** The frame belongs to domid and has not been given back. */
export function ownedBy(pi: PageInfo, mfn: number, domid: number): boolean {
  return mfn >= 0 && mfn < pi.frames && pi.xen.frames.owner[mfn] === domid && (pi.flags[mfn] & PgFlag.PENDING_FREE) === 0;
}

/** Take a general reference on a frame of domid (Xen's get_page); false if it is not one. */
export function getPage(pi: PageInfo, mfn: number, domid: number): boolean {
  if (!ownedBy(pi, mfn, domid)) return false;
  if (domid === DOMID_XEN && (pi.flags[mfn] & PgFlag.XEN_SHARED) === 0) return false;
  pi.count[mfn]++;
  return true;
}

export function putPage(pi: PageInfo, mfn: number): void {
  const c = --pi.count[mfn];
  if (c < 0) throw new Error(`page reference count underflow on mfn ${mfn}`);
  if (c === 0 && (pi.flags[mfn] & PgFlag.PENDING_FREE) !== 0) freeFrame(pi, mfn);
}

// ---- type references -------------------------------------------------------------------

/**
 * Take a type reference (Xen's get_page_type). At count 0 the frame takes the new type (and
 * is validated if it is a page table); otherwise the type must match. Returns 0, or -EINVAL
 * for a type conflict, or the validation's error.
 */
export function getPageType(pi: PageInfo, mfn: number, type: PGT, d: Domain): number {
  const tc = pi.typeCount[mfn];
  if (tc > 0) {
    if (pi.type[mfn] !== type) return -Errno.EINVAL;
    // Being validated further up the recursion: cannot happen for page tables (levels only
    // go down), and Xen would wait; refuse.
    if ((pi.flags[mfn] & PgFlag.VALIDATED) === 0) return -Errno.EINVAL;
    pi.typeCount[mfn] = tc + 1;
    return 0;
  }
  if (pi.type[mfn] !== type) { pi.type[mfn] = type; pi.flags[mfn] &= ~PgFlag.VALIDATED; }
  pi.typeCount[mfn] = 1;
  if (isProtectedType(type)) setProtected(pi, mfn, true);
  else if (type === PGT.WRITABLE) pi.flags[mfn] |= PgFlag.TLB_WRITABLE;
  if ((pi.flags[mfn] & PgFlag.VALIDATED) === 0) {
    const val = validators[type];
    if (val === null && type >= PGT.L1 && type <= PGT.L4) throw new Error('page-table validation not loaded (import mm/validate.js)');
    if (val !== null) {
      const rc = val.validate(pi, mfn, d);
      if (rc !== 0) {
        pi.typeCount[mfn] = 0;
        pi.type[mfn] = PGT.NONE;
        setProtected(pi, mfn, false);
        return rc;
      }
    }
    pi.flags[mfn] |= PgFlag.VALIDATED;
  }
  return 0;
}

/** Drop a type reference; the last one of a page-table type devalidates the table. */
export function putPageType(pi: PageInfo, mfn: number): void {
  const tc = --pi.typeCount[mfn];
  if (tc < 0) throw new Error(`type count underflow on mfn ${mfn}`);
  if (tc !== 0) return;
  const t = pi.type[mfn];
  if (!isProtectedType(t)) return;
  const wasValid = (pi.flags[mfn] & PgFlag.VALIDATED) !== 0;
  pi.flags[mfn] &= ~PgFlag.VALIDATED;
  if (wasValid) validators[t]?.invalidate(pi, mfn);
  setProtected(pi, mfn, false);
}

/** Xen's get_page_and_type_from_mfn: a general and a type reference on a frame of d. */
export function getPageAndType(pi: PageInfo, mfn: number, type: PGT, d: Domain): number {
  if (!getPage(pi, mfn, d.id)) return -Errno.EINVAL;
  const rc = getPageType(pi, mfn, type, d);
  if (rc !== 0) putPage(pi, mfn);
  return rc;
}

export function putPageAndType(pi: PageInfo, mfn: number): void {
  putPageType(pi, mfn);
  putPage(pi, mfn);
}

// ---- write protection and TLBs ---------------------------------------------------------

function eachMem(pi: PageInfo, fn: (m: PagedMemory) => void): void {
  for (const d of pi.xen.domains.values()) {
    for (const v of d.vcpus) { const m = v.cpu.mem; if (m instanceof PagedMemory) fn(m); }
  }
}

function setProtected(pi: PageInfo, mfn: number, on: boolean): void {
  const wp = pi.writeProtected;
  wp[mfn] = on ? 1 : 0;
  const dropTlb = on && (pi.flags[mfn] & PgFlag.TLB_WRITABLE) !== 0;
  if (dropTlb) pi.flags[mfn] &= ~PgFlag.TLB_WRITABLE;
  eachMem(pi, (m) => {
    if (m.writeProtected !== wp) m.protect(mfn, on);
    else if (dropTlb) m.dropWritable(mfn);
  });
}

/** Flush every TLB of every vCPU (global entries too). */
export function flushAllTlbs(pi: PageInfo): void { eachMem(pi, (m) => m.flushAll()); }

// ---- freeing -----------------------------------------------------------------------------

function freeFrame(pi: PageInfo, mfn: number): void {
  const owner = pi.xen.frames.owner[mfn];
  const d = pi.xen.domains.get(owner);
  pi.flags[mfn] = 0;
  pi.type[mfn] = PGT.NONE;
  pi.typeCount[mfn] = 0;
  pi.linear[mfn] = 0;
  setProtected(pi, mfn, false);
  pi.xen.frames.release(mfn);
  if (d) d.totPages--;
  // No TLB may keep a translation to a frame that can be handed to someone else.
  flushAllTlbs(pi);
}

/**
 * Xen's guest_remove_page for a PV domain (mfn = gmfn): unpin the frame, give it back, and
 * free it now or when its last reference goes. 0, -EINVAL (not RAM) or -ENXIO (not d's).
 */
export function removeGuestPage(pi: PageInfo, d: Domain, mfn: number): number {
  if (!(mfn >= 0 && mfn < pi.frames)) return -Errno.EINVAL;
  if (!getPage(pi, mfn, d.id)) return -Errno.ENXIO;
  if ((pi.flags[mfn] & PgFlag.XEN_SHARED) !== 0) { putPage(pi, mfn); return -Errno.ENXIO; }
  pi.flags[mfn] |= PgFlag.PENDING_FREE;
  if ((pi.flags[mfn] & PgFlag.PINNED) !== 0) {
    pi.flags[mfn] &= ~PgFlag.PINNED;
    putPageAndType(pi, mfn);
  }
  putPage(pi, mfn); // ours; frees the frame if it was the last
  return 0;
}

/**
 * Share a Xen-allocated frame: with a domain (owner becomes d, as share_xen_page_with_guest
 * does for shared_info; writable: it keeps a permanent WRITABLE type, else a permanent NONE
 * type so it can never be mapped writable or become a table), or with DOMID_XEN for
 * privileged read-only mappings (d = null).
 */
export function shareXenPage(pi: PageInfo, mfn: number, d: Domain | null, writable: boolean): void {
  if (d) pi.xen.frames.owner[mfn] = d.id;
  pi.flags[mfn] |= PgFlag.XEN_SHARED | PgFlag.VALIDATED;
  pi.type[mfn] = writable ? PGT.WRITABLE : PGT.NONE;
  pi.typeCount[mfn]++;
  pi.count[mfn]++;
}

/**
 * Domain teardown (Xen's domain_relinquish_resources for a PV domain): drop the vCPUs' base
 * pointers and every pin, then free every frame of d that nothing references any more; the
 * rest (mapped by another domain) is freed when that mapping goes.
 */
export function relinquishDomainMemory(pi: PageInfo, d: Domain): void {
  for (const v of d.vcpus) dropBaseRefs(pi, v);
  const owner = pi.xen.frames.owner;
  for (let mfn = 0; mfn < pi.frames; mfn++) {
    if (owner[mfn] !== d.id || (pi.flags[mfn] & PgFlag.PINNED) === 0) continue;
    pi.flags[mfn] &= ~PgFlag.PINNED;
    putPageAndType(pi, mfn);
  }
  for (let mfn = 0; mfn < pi.frames; mfn++) {
    if (owner[mfn] !== d.id || (pi.flags[mfn] & PgFlag.PENDING_FREE) !== 0) continue;
    if ((pi.flags[mfn] & PgFlag.XEN_SHARED) !== 0) {
      // shared_info and the like: drop the permanent references shareXenPage took.
      pi.flags[mfn] &= ~PgFlag.XEN_SHARED;
      pi.typeCount[mfn]--;
      pi.count[mfn]--;
    }
    pi.flags[mfn] |= PgFlag.PENDING_FREE;
    if (pi.count[mfn] === 0) freeFrame(pi, mfn);
  }
}

// ---- vCPU base pointers ----------------------------------------------------------------

/** The references this module holds for a vCPU's kernel and user L4 (-1: none). Kept apart
 *  from Vcpu.kernelCr3/userCr3 so that code which sets those directly cannot unbalance the
 *  counts. */
export interface BaseRefs { kernel: number; user: number }
const baseRefs = new WeakMap<object, BaseRefs>();

export function baseRefsOf(v: object): BaseRefs {
  let b = baseRefs.get(v);
  if (!b) { b = { kernel: -1, user: -1 }; baseRefs.set(v, b); }
  return b;
}

function dropBaseRefs(pi: PageInfo, v: object): void {
  const b = baseRefsOf(v);
  if (b.kernel >= 0) { putPageAndType(pi, b.kernel); b.kernel = -1; }
  if (b.user >= 0) { putPageAndType(pi, b.user); b.user = -1; }
}
