// Page-table entry validation for 64-bit PV guests: what Xen's get_page_from_l{1,2,3,4}e,
// put_page_from_l*e, alloc/free_l*_table and mod_l*_entry do (xen/arch/x86/mm.c).
//
// The rules:
//  - L1 entries map data frames. The frame must belong to the page-table owner (or, for a
//    privileged caller naming a foreign domain, to that domain); a writable entry takes a
//    WRITABLE type reference, so it fails (-EBUSY) on a page table or descriptor page, and a
//    frame mapped writable cannot become a table. Frames beyond RAM (MMIO) only for a
//    privileged domain (else -EPERM), without reference counting. Cache-attribute bits
//    (PWT, PCD, PAT) need I/O privilege; _PAGE_GLOBAL is allowed.
//  - L2/L3/L4 entries reference tables one level down, which get that type by reference
//    (and are validated recursively if they had none). PSE, PWT, PCD and G are refused
//    (-EINVAL): PV guests have no superpages. A read-only entry may reference an already
//    validated table of its own level ("linear page table", e.g. NetBSD's recursive slot),
//    or its own table, with the linear_pt_count bookkeeping that prevents cycles.
//  - L4 slots 256..271 are Xen's: skipped by validation, written by Xen (m2p.ts: the M2P
//    and the per-domain area) when an L4 is validated, never writable by the guest (-EINVAL).
//  - Present entries are adjusted as Xen does for 64-bit PV: _PAGE_USER is forced on (the
//    guest kernel runs in ring 3); an L1 entry the guest gave without _PAGE_USER gets
//    _PAGE_GUEST_KERNEL (bit 52) instead and loses _PAGE_GLOBAL (it must not survive the
//    switch to the user page tables).
//  - Updating an entry takes the new entry's references before dropping the old one's. An
//    update that changes only A/D/U/G/NX/available bits of a present entry takes the fast
//    path (no reference changes).
//
// API:
//   getPageFromL1e / putPageFromL1e, getPageFromLNe / putPageFromLNe  (one entry)
//   modL1Entry(pi, l1mfn, idx, lo, hi, preserveAd, ptDom, pgOwner, cur)   mmu_update / uvm
//   modLNEntry(pi, mfn, idx, level, lo, hi, preserveAd, d)               L2..L4 updates
//   isXenL4Slot(i), m2pStrict(d), pteMfn(lo, hi)
// Importing this module registers the L1..L4 validators with pagetype.ts.

import type { Domain } from '../domain.js';
import { Errno } from '../errno.js';
import { XEN_L4_FIRST, XEN_L4_LAST } from '../layout.js';
import { DOMID_FREE, DOMID_IO, DOMID_XEN } from './frames.js';
import { initXenL4Slots } from './m2p.js';
import {
  PGT, PageInfo, PgFlag, getPageAndType, getPageType, putPage, putPageAndType, putPageType, readPteHi, readPteLo,
  registerTypeValidator, writePte,
} from './pagetype.js';

/** Entry bits (low word). */
export const enum Pte {
  P = 0x1, RW = 0x2, US = 0x4, PWT = 0x8, PCD = 0x10, A = 0x20, D = 0x40, PSE = 0x80, PAT = 0x80, G = 0x100,
  AVAIL = 0xe00,
}
/** _PAGE_GUEST_KERNEL: bit 52, i.e. bit 20 of the high word. NX: bit 63. */
export const PTE_HI_GUEST_KERNEL = 1 << 20;
export const PTE_HI_NX = 1 << 31;

/** Flags no guest may set in L2..L4 entries (and L1 without I/O privilege, except G): PWT,
 *  PCD, PSE/PAT, G. Bits 9..11 and 52..63 are the guest's. */
const BASE_DISALLOW = Pte.PWT | Pte.PCD | Pte.PSE | Pte.G;
const L1_DISALLOW = BASE_DISALLOW & ~Pte.G;
const CACHE_ATTRS = Pte.PWT | Pte.PCD | Pte.PAT;
/** Low-word bits whose change takes the slow path (everything but U, A, D, G, AVAIL). */
const SLOW_LO = ~(Pte.US | Pte.A | Pte.D | Pte.G | Pte.AVAIL);
/** The MFN Xen treats as "invalid" rather than "MMIO" in an L1 entry (PADDR_MASK >> 12). */
const MFN_ALL_ONES = 0xffffffffff;
/** Frames a privileged domain may map as MMIO: below MAXPHYADDR (40 bits). */
const MMIO_LIMIT = 2 ** 28;

/** vm_assist bit for m2p_strict as src/xen/hypercall/misc.ts stores it. */
const VMASST_M2P_STRICT_BIT = 1 << 30;

export function isXenL4Slot(i: number): boolean { return i >= XEN_L4_FIRST && i <= XEN_L4_LAST; }
export function m2pStrict(d: Domain): boolean { return (d.vmAssist & VMASST_M2P_STRICT_BIT) !== 0; }
/** The frame an entry points at (address bits 12..51). */
export function pteMfn(lo: number, hi: number): number { return (hi & 0xfffff) * 1048576 + (lo >>> 12); }

function l1Disallow(d: Domain): number { return d.privileged ? L1_DISALLOW & ~CACHE_ATTRS : L1_DISALLOW; }
function domainOf(pi: PageInfo, id: number): Domain | null { return pi.xen.domains.get(id) ?? null; }
/** XSM_TARGET with the dummy policy: the domain itself or a privileged one. */
function privOver(src: Domain | null, targetId: number): boolean { return src !== null && (src.id === targetId || src.privileged); }
function iomemPermitted(d: Domain | null, mfn: number): boolean { return d !== null && d.privileged && mfn < MMIO_LIMIT; }

// ---- adjustment (adjust_guest_l*e) ---------------------------------------------------------

let adjLo = 0, adjHi = 0;
function adjustL1(lo: number, hi: number): void {
  if ((lo & Pte.P) !== 0) {
    if ((lo & Pte.US) === 0) { lo |= Pte.US; hi |= PTE_HI_GUEST_KERNEL; }
    if ((hi & PTE_HI_GUEST_KERNEL) !== 0) lo &= ~Pte.G;
  }
  adjLo = lo; adjHi = hi;
}
function adjustLN(lo: number, hi: number): void {
  adjLo = (lo & Pte.P) !== 0 ? lo | Pte.US : lo; adjHi = hi;
}

function store(pi: PageInfo, mfn: number, idx: number, lo: number, hi: number, oLo: number, preserveAd: boolean): void {
  if (preserveAd) lo |= oLo & (Pte.A | Pte.D);
  writePte(pi, mfn, idx, lo, hi);
}

// ---- L1 entries ----------------------------------------------------------------------------

/**
 * References for a present L1 entry (get_page_from_l1e): l1eOwner owns the table, pgOwner is
 * the domain whose frames it may map (l1eOwner.id unless a foreign domain was named; may be
 * DOMID_IO or DOMID_XEN), cur the calling domain. 0 or -errno.
 */
export function getPageFromL1e(pi: PageInfo, lo: number, hi: number, l1eOwner: Domain, pgOwner: number, cur: Domain): number {
  if ((lo & l1Disallow(l1eOwner)) !== 0) return -Errno.EINVAL;
  const mfn = pteMfn(lo, hi);
  const owner = mfn < pi.frames ? pi.xen.frames.owner[mfn] : DOMID_IO;
  if (owner === DOMID_IO) {
    // MMIO (beyond RAM, or frames Xen gave to DOMID_IO): I/O privilege, no reference counting.
    const privDom = pgOwner === DOMID_IO ? cur : domainOf(pi, pgOwner);
    if (!iomemPermitted(privDom, mfn)) return mfn === MFN_ALL_ONES ? -Errno.EINVAL : -Errno.EPERM;
    return 0;
  }
  const f = pi.flags[mfn];
  if (owner === DOMID_FREE || (f & PgFlag.PENDING_FREE) !== 0 || (owner === DOMID_XEN && (f & PgFlag.XEN_SHARED) === 0)) {
    return -Errno.EBUSY;
  }
  if (owner !== pgOwner) {
    // Only a privileged pgOwner may pass on the right to map a third domain's frames.
    if (pgOwner === l1eOwner.id || !privOver(domainOf(pi, pgOwner), owner)) return -Errno.EBUSY;
  }
  pi.count[mfn]++;
  if ((lo & Pte.RW) !== 0 && getPageType(pi, mfn, PGT.WRITABLE, l1eOwner) !== 0) {
    putPage(pi, mfn);
    return -Errno.EBUSY;
  }
  return 0;
}

export function putPageFromL1e(pi: PageInfo, lo: number, hi: number): void {
  if ((lo & Pte.P) === 0) return;
  const mfn = pteMfn(lo, hi);
  if (mfn >= pi.frames || pi.xen.frames.owner[mfn] === DOMID_IO) return;
  if ((lo & Pte.RW) !== 0) putPageType(pi, mfn);
  putPage(pi, mfn);
}

// ---- L2..L4 entries ------------------------------------------------------------------------

/**
 * A read-only entry of table tableMfn (of `level`) mapping a validated table of the same
 * level, or its own table (get_l*_linear_pagetable). Takes the references on success.
 */
function getLinear(pi: PageInfo, lo: number, mfn: number, tableMfn: number, level: number, d: Domain): boolean {
  if ((lo & Pte.RW) !== 0) return false;
  if (mfn === tableMfn) return true;
  if (!ownedFor(pi, mfn, d)) return false;
  if (pi.type[mfn] !== level || pi.typeCount[mfn] === 0 || (pi.flags[mfn] & PgFlag.VALIDATED) === 0) return false;
  // The table holding the entry must not itself be mapped linearly, and the mapped table
  // must not hold linear entries.
  if (pi.linear[tableMfn] < 0 || pi.linear[tableMfn] === 0x7fff || pi.linear[mfn] > 0 || pi.linear[mfn] === -0x8000) return false;
  pi.count[mfn]++;
  pi.typeCount[mfn]++;
  pi.linear[tableMfn]++;
  pi.linear[mfn]--;
  return true;
}

function ownedFor(pi: PageInfo, mfn: number, d: Domain): boolean {
  return mfn < pi.frames && pi.xen.frames.owner[mfn] === d.id && (pi.flags[mfn] & PgFlag.PENDING_FREE) === 0;
}

/** References for a present entry of an L2/L3/L4 table (get_page_from_l*e). */
export function getPageFromLNe(pi: PageInfo, lo: number, hi: number, tableMfn: number, level: number, d: Domain): number {
  if ((lo & BASE_DISALLOW) !== 0) return -Errno.EINVAL;
  const mfn = pteMfn(lo, hi);
  const rc = getPageAndType(pi, mfn, (level - 1) as PGT, d);
  if (rc === -Errno.EINVAL && getLinear(pi, lo, mfn, tableMfn, level, d)) return 0;
  return rc;
}

export function putPageFromLNe(pi: PageInfo, lo: number, hi: number, tableMfn: number, level: number): void {
  if ((lo & Pte.P) === 0) return;
  const mfn = pteMfn(lo, hi);
  if (mfn === tableMfn) return;
  if (pi.type[mfn] === level) { pi.linear[mfn]++; pi.linear[tableMfn]--; }
  putPageAndType(pi, mfn);
}

// ---- whole tables --------------------------------------------------------------------------

function putEntry(pi: PageInfo, mfn: number, level: number, i: number): void {
  const lo = readPteLo(pi, mfn, i);
  if ((lo & Pte.P) === 0) return;
  const hi = readPteHi(pi, mfn, i);
  if (level === 1) putPageFromL1e(pi, lo, hi);
  else putPageFromLNe(pi, lo, hi, mfn, level);
}

/** alloc_l*_table: check and reference every entry, adjusting them in place. */
function allocTable(pi: PageInfo, mfn: number, level: number, d: Domain): number {
  for (let i = 0; i < 512; i++) {
    if (level === 4 && isXenL4Slot(i)) continue;
    const lo = readPteLo(pi, mfn, i);
    if ((lo & Pte.P) === 0) continue;
    const hi = readPteHi(pi, mfn, i);
    const rc = level === 1 ? getPageFromL1e(pi, lo, hi, d, d.id, d) : getPageFromLNe(pi, lo, hi, mfn, level, d);
    if (rc !== 0) {
      while (i-- > 0) if (!(level === 4 && isXenL4Slot(i))) putEntry(pi, mfn, level, i);
      return rc;
    }
    if (level === 1) adjustL1(lo, hi); else adjustLN(lo, hi);
    if (adjLo !== lo || adjHi !== hi) writePte(pi, mfn, i, adjLo, adjHi);
  }
  if (level === 4) initXenL4Slots(pi.xen, mfn, m2pStrict(d), d);
  return 0;
}

function freeTable(pi: PageInfo, mfn: number, level: number): void {
  for (let i = 0; i < 512; i++) {
    if (level === 4 && isXenL4Slot(i)) continue;
    putEntry(pi, mfn, level, i);
  }
}

for (let level = 1; level <= 4; level++) {
  registerTypeValidator(level as PGT, {
    validate: (pi, mfn, d) => allocTable(pi, mfn, level, d),
    invalidate: (pi, mfn) => freeTable(pi, mfn, level),
  });
}

// ---- updates -------------------------------------------------------------------------------

/**
 * mod_l1_entry: entry idx of validated L1 table l1mfn (owned by ptDom) becomes (lo, hi).
 * pgOwner: whose frames the entry may map (see getPageFromL1e). 0 or -errno.
 */
export function modL1Entry(
  pi: PageInfo, l1mfn: number, idx: number, lo: number, hi: number, preserveAd: boolean,
  ptDom: Domain, pgOwner: number, cur: Domain,
): number {
  const oLo = readPteLo(pi, l1mfn, idx), oHi = readPteHi(pi, l1mfn, idx);
  if ((lo & Pte.P) !== 0) {
    if ((lo & l1Disallow(ptDom)) !== 0) return -Errno.EINVAL;
    if ((oLo & Pte.P) !== 0 && ((oLo ^ lo) & SLOW_LO) === 0 && ((oHi ^ hi) & 0xfffff) === 0) {
      adjustL1(lo, hi);
      store(pi, l1mfn, idx, adjLo, adjHi, oLo, preserveAd);
      return 0;
    }
    const rc = getPageFromL1e(pi, lo, hi, ptDom, pgOwner, cur);
    if (rc !== 0) return rc;
    adjustL1(lo, hi);
    store(pi, l1mfn, idx, adjLo, adjHi, oLo, preserveAd);
  } else {
    store(pi, l1mfn, idx, lo, hi, oLo, preserveAd);
  }
  putPageFromL1e(pi, oLo, oHi);
  return 0;
}

/** mod_l2/l3/l4_entry: entry idx of validated table mfn (of `level`, owned by d). */
export function modLNEntry(pi: PageInfo, mfn: number, idx: number, level: number, lo: number, hi: number, preserveAd: boolean, d: Domain): number {
  if (level === 4 && isXenL4Slot(idx)) return -Errno.EINVAL;
  const oLo = readPteLo(pi, mfn, idx), oHi = readPteHi(pi, mfn, idx);
  if ((lo & Pte.P) !== 0) {
    if ((lo & BASE_DISALLOW) !== 0) return -Errno.EINVAL;
    if ((oLo & Pte.P) !== 0 && ((oLo ^ lo) & SLOW_LO) === 0 && ((oHi ^ hi) & 0xfffff) === 0) {
      adjustLN(lo, hi);
      store(pi, mfn, idx, adjLo, adjHi, oLo, preserveAd);
      return 0;
    }
    const rc = getPageFromLNe(pi, lo, hi, mfn, level, d);
    if (rc !== 0) return rc;
    adjustLN(lo, hi);
    store(pi, mfn, idx, adjLo, adjHi, oLo, preserveAd);
  } else {
    store(pi, mfn, idx, lo, hi, oLo, preserveAd);
  }
  putPageFromLNe(pi, oLo, oHi, mfn, level);
  return 0;
}

/** The adjusted form of a present L1 entry as Xen would store it (for ptwr). */
export function adjustedL1(lo: number, hi: number): [number, number] { adjustL1(lo, hi); return [adjLo, adjHi]; }
