// Grant-table operations across domains, as xen/common/grant_table.c and
// xen/arch/x86/pv/grant_table.c do them for 64-bit PV domains: the per-domain state is
// model.ts; this module adds the page references that keep granted frames alive, the PTEs
// of host mappings, and data movement. hypercall/gnttab.ts marshals guest structures.
//
// References (the mm module's counts, mm/pagetype.ts):
//   - a host mapping (GNTMAP_host_map) holds what a present L1 entry holds: a general
//     reference on the granted frame and, if writable, a WRITABLE type reference. They are
//     the PTE's: if the mapping domain removes the PTE by other means (mmu_update, freeing
//     the table), putPageFromL1e drops them, the maptrack entry stays and unmap_grant_ref
//     later answers general_error, exactly as Xen behaves.
//   - a device mapping (GNTMAP_device_map; the in-process backends' way of holding a ring)
//     holds the same, released by unmap or when the mapping domain goes.
//   - a copy holds a general reference (and a WRITABLE type for the destination) for the
//     duration of the copy.
// So a granted frame stays owned and allocated while mapped: a granter that gives it back
// (decrease_reservation) only marks it, and it is freed when the last mapping goes; a
// frame mapped writable through a grant cannot become a page table.
//
// Status codes are Xen's (each function's comment names its codes). Notably, as in Xen: a write map or copy of a read-only grant, a grant naming another domain, an
// entry that is not permit_access, and a host address with no L1 table all give
// GNTST_general_error; GNTST_bad_page is a frame that is not the granter's; GNTST_no_space
// a full maptrack.
//
// The version followed is Xen 4.17's (the public headers in use): GNTST_no_space for a full
// maptrack, GNTST_bad_dev_addr for a device mapping unmapped with the wrong address, pin
// overflow checked only on the counters an operation increments, GNTST_bad_copy_arg only
// once both ends of a copy are claimed.
//
// Deliberate differences from Xen (all in corners no known guest reaches):
//   - within a copy batch Xen checks "frames only with DOMID_SELF" only when the op's
//     domains differ from the previous op's; here every op is checked, so no batch can
//     name another domain's frame;
//   - a copy end given by frame reuses the previous op's claim only if that was a frame
//     too (Xen compares the ref/frame union and can reuse a grant's claim);
//   - frames a granter gave back (decrease_reservation) cannot be newly pinned (bad_page):
//     the mm module refuses new references to them (Xen still allows get_page while
//     references remain);
//   - unmap_and_replace checks the grant PTE before moving new_addr's entry (Xen clears
//     new_addr first and loses it if the check then fails), and refuses new_addr == host_addr;
//   - copies and transitive acquisitions never see a concurrent change, so Xen's ERESTART
//     path (a transitive entry rewritten while in use) answers general_error;
//   - no IOMMU: GNTST_no_device_space never occurs; grants of MMIO frames are refused.
//
// API (for the hypercall layer, backends, the toolstack, tests):
//   gnttabHost(xen)                     the per-host registry (tables, maptracks, defaults)
//   initGrantTable(d, opts)             create/configure d's table (max frames, max version,
//                                       maptrack size); grantTableOf(d) creates it lazily
//   mapGrantRef(xen, ld, op, v)         GNTTABOP_map_grant_ref for grantee domid ld (v: the
//                                       calling vCPU, needed for host mappings)
//   unmapGrantRef(xen, ld, op, v)       GNTTABOP_unmap_grant_ref / unmap_and_replace
//   new CopySession(xen, ld)            GNTTABOP_copy, op by op (.one(op), then .finish())
//   copyFromGrant / copyToGrant         a backend's copy between a grant and a JS buffer
//   transferPage, swapGrantRef, setupTable, querySize, getStatusFrames, getVersion,
//   setVersion, cacheFlush              the other sub-ops
//   dumpTable(xen, domid)               a table to the Xen log (debugging)
//   seedGrantTable(d, entries)          the toolstack's reserved entries (console, xenstore)
//   gnttabReleaseDomain(xen, domid)     domain teardown: drop its mappings of others' grants
//                                       (call before relinquishDomainMemory) and retire its table
//   gnttabState / restoreGnttabState    snapshot state (snapshot.ts adds the envelope)

import { PagedMemory } from '../../mmu/paged.js';
import type { Domain } from '../domain.js';
import { Errno } from '../errno.js';
import { DOMID_FREE, DOMID_SELF } from '../mm/frames.js';
import {
  PGT, PageInfo, PgFlag, flushAllTlbs, getPage, getPageType, ownedBy, pageInfo, putPage, putPageType, readPteHi,
  readPteLo, shareXenPage, touchFrame, writePte,
} from '../mm/pagetype.js';
import { PTE_HI_NX, Pte, adjustedL1, putPageFromL1e, pteMfn } from '../mm/validate.js';
import type { Vcpu } from '../vcpu.js';
import type { Xen } from '../xen.js';
import {
  type ActiveEntry, GNTTAB_NR_RESERVED_ENTRIES, GNTST_NAMES, Gnst, Gntmap, GntEnt, type GrantFrames, type GrantMem,
  GrantTable, type GrantTableState, Gtf, MAPTRACK_PER_FRAME, Maptrack, type MaptrackState, Pin,
} from './model.js';

export const DEFAULT_MAX_GRANT_FRAMES = 32;
export const DEFAULT_MAX_MAPTRACK_FRAMES = 1024;
const TWO32 = 4294967296;
const TWO47 = 0x800000000000;
const XEN_VIRT_END_LIN = 0x880000000000;
const PAGE = 4096;

export interface GnttabOptions {
  /** max_grant_frames (xl.cfg max_grant_frames). */
  maxFrames?: number;
  /** max_maptrack_frames: the domain may hold 512 mappings per frame. */
  maxMaptrackFrames?: number;
  /** The highest grant-table version the domain may select (Xen's gnttab=max-ver, xl's
   *  max_grant_version): 2 as in Xen; 1 makes set_version(2) fail so guests use v1. */
  maxVersion?: 1 | 2;
}

// ---- the host registry ---------------------------------------------------------------------

export class GnttabHost {
  /** Every domain's table by domid, kept after the domain goes while others hold its grants. */
  readonly tables = new Map<number, GrantTable>();
  /** Every grantee's mappings by domid (in-process backends need no Domain object). */
  readonly maptracks = new Map<number, Maptrack>();
  readonly pi: PageInfo;
  readonly mem: GrantMem;
  readonly frames: GrantFrames;
  /** GNTTABOP_transfer allowed (Xen's gnttab=transfer, on for PV); off, the hypercall
   *  answers -EOPNOTSUPP. */
  transfer = true;
  /** Options for tables created without explicit ones. */
  readonly defaults: Required<GnttabOptions> = {
    maxFrames: DEFAULT_MAX_GRANT_FRAMES, maxMaptrackFrames: DEFAULT_MAX_MAPTRACK_FRAMES, maxVersion: 2,
  };

  constructor(readonly xen: Xen) {
    const pi = pageInfo(xen);
    this.pi = pi;
    const dv = xen.phys.dv, u8 = xen.phys.u8;
    const touch = (pa: number) => touchFrame(pi, Math.floor(pa / PAGE));
    this.mem = {
      u16: (pa) => dv.getUint16(pa, true),
      u32: (pa) => dv.getUint32(pa, true),
      u64: (pa) => dv.getUint32(pa + 4, true) * TWO32 + dv.getUint32(pa, true),
      set16: (pa, v) => { dv.setUint16(pa, v & 0xffff, true); touch(pa); },
      set32: (pa, v) => { dv.setUint32(pa, v >>> 0, true); touch(pa); },
      set64: (pa, v) => {
        dv.setUint32(pa, v % TWO32 >>> 0, true);
        dv.setUint32(pa + 4, Math.floor(v / TWO32) >>> 0, true);
        touch(pa);
      },
      zero: (mfn) => { u8.fill(0, mfn * PAGE, mfn * PAGE + PAGE); touchFrame(pi, mfn); },
    };
    this.frames = {
      alloc: (domid) => {
        const d = xen.domains.get(domid);
        if (!d) return -1;
        const m = xen.frames.alloc(domid);
        if (m < 0) return -1;
        shareXenPage(pi, m, d, true);
        return m;
      },
      inUse: (m) => pi.count[m] > 1 || pi.typeCount[m] > 1,
      free: (m) => freeFrame(pi, m),
    };
  }
}

/** Free a frame nothing references any more (a grant/status frame, a stolen page). */
function freeFrame(pi: PageInfo, m: number): void {
  pi.flags[m] = 0;
  pi.type[m] = PGT.NONE;
  pi.typeCount[m] = 0;
  pi.count[m] = 0;
  pi.linear[m] = 0;
  pi.xen.frames.release(m);
  flushAllTlbs(pi);
}

const hosts = new WeakMap<Xen, GnttabHost>();

export function gnttabHost(xen: Xen): GnttabHost {
  let h = hosts.get(xen);
  if (!h) { h = new GnttabHost(xen); hosts.set(xen, h); }
  return h;
}

/**
 * Create (with its first grant frame, as Xen does at domain creation) or reconfigure a
 * domain's grant table and maptrack. Options default to gnttabHost(xen).defaults.
 */
export function initGrantTable(d: Domain, opts: GnttabOptions = {}): GrantTable {
  const host = gnttabHost(d.xen);
  const maxFrames = opts.maxFrames ?? host.defaults.maxFrames;
  const maxVersion = opts.maxVersion ?? host.defaults.maxVersion;
  const mtFrames = opts.maxMaptrackFrames ?? host.defaults.maxMaptrackFrames;
  let gt = host.tables.get(d.id);
  if (!gt) {
    gt = new GrantTable(d.id, maxFrames, maxVersion, host.mem, host.frames);
    host.tables.set(d.id, gt);
    gt.grow(1); // out of memory: the table stays empty and setup_table tries again
  } else {
    gt.maxFrames = maxFrames;
    gt.maxVersion = maxVersion;
  }
  maptrackOf(d.xen, d.id).limit = mtFrames * MAPTRACK_PER_FRAME;
  return gt;
}

/** d's table (created with the defaults on first use). */
export function grantTableOf(d: Domain): GrantTable {
  return gnttabHost(d.xen).tables.get(d.id) ?? initGrantTable(d);
}

/** The table of domid: a live domain's, or a gone domain's still referenced; else null. */
export function tableById(xen: Xen, domid: number): GrantTable | null {
  const d = xen.domains.get(domid);
  if (d) return grantTableOf(d);
  return gnttabHost(xen).tables.get(domid) ?? null;
}

export function maptrackOf(xen: Xen, domid: number): Maptrack {
  const host = gnttabHost(xen);
  let m = host.maptracks.get(domid);
  if (!m) { m = new Maptrack(domid, host.defaults.maxMaptrackFrames * MAPTRACK_PER_FRAME); host.maptracks.set(domid, m); }
  return m;
}

/** rcu_lock_domain_by_any_id. */
function anyDomain(cur: Domain, domid: number): Domain | null {
  return domid === DOMID_SELF ? cur : cur.xen.domains.get(domid) ?? null;
}
/** XSM_TARGET with the dummy policy. */
function privOver(cur: Domain, d: Domain): boolean { return cur === d || cur.privileged; }

/** GNTPIN_incr2oflow_mask: the top bit of each counter an increment touches. */
function overflowMask(inc: number): number { return inc * 0x80; }

function retire(host: GnttabHost, gt: GrantTable): void {
  if (gt.dying && gt.active.size === 0) host.tables.delete(gt.domid);
}

// ---- frames and pages ----------------------------------------------------------------------

/** get_paged_frame for a PV granter: the frame must be rd's (and not given back); a general
 *  reference is taken. The MFN, or -1 (GNTST_bad_page). */
function getPagedFrame(pi: PageInfo, gfn: number, rd: number): number {
  if (!(Number.isInteger(gfn) && gfn >= 0 && gfn < pi.frames)) return -1;
  return getPage(pi, gfn, rd) ? gfn : -1;
}

/** page_get_owner_and_reference: a reference on a frame that is allocated or still
 *  referenced; its owner, or DOMID_FREE (no reference taken). */
function pageGetOwnerAndRef(pi: PageInfo, mfn: number): number {
  if (!(mfn >= 0 && mfn < pi.frames)) return DOMID_FREE;
  const owner = pi.xen.frames.owner[mfn];
  if (owner === DOMID_FREE) return DOMID_FREE;
  if ((pi.flags[mfn] & PgFlag.PENDING_FREE) !== 0 && pi.count[mfn] === 0) return DOMID_FREE;
  pi.count[mfn]++;
  return owner;
}

function flushDomain(d: Domain | undefined, lin = -1): void {
  if (!d) return;
  for (const w of d.vcpus) {
    const m = w.cpu.mem;
    if (lin >= 0) m.flush(lin);
    else if (m instanceof PagedMemory) m.flushAll();
    else m.flush();
  }
}

// ---- PV host mappings ----------------------------------------------------------------------

function addrOk(lin: number): boolean { return lin >= 0 && !(lin >= TWO47 && lin < XEN_VIRT_END_LIN); }

/** map_guest_l1e: the L1 table mapping lin in the vCPU's current page tables, or -1. */
function guestL1(pi: PageInfo, v: Vcpu, lin: number): number {
  if (!addrOk(lin)) return -1;
  let t = v.kernelMode ? v.kernelCr3 : v.userCr3;
  if (t === 0) return -1;
  const vpn = Math.floor(lin / PAGE);
  for (let level = 4; level >= 2; level--) {
    if (t >= pi.frames) return -1;
    const idx = Math.floor(vpn / 2 ** (9 * (level - 1))) & 511;
    const lo = readPteLo(pi, t, idx);
    if ((lo & Pte.P) === 0 || (level < 4 && (lo & Pte.PSE) !== 0)) return -1;
    t = pteMfn(lo, readPteHi(pi, t, idx));
  }
  return t;
}

/** Where a host mapping's PTE lives: [l1 mfn, index], or null. addr is the 48-bit linear
 *  address, or with GNTMAP_contains_pte the PTE's machine address. */
function pteSlot(pi: PageInfo, v: Vcpu, addr: number, containsPte: boolean): [number, number] | null {
  if (containsPte) {
    if (!(addr >= 0) || addr % 8 !== 0) return null; // misaligned: would clobber adjacent PTEs
    return [Math.floor(addr / PAGE), (addr % PAGE) / 8];
  }
  const l1 = guestL1(pi, v, addr);
  return l1 < 0 ? null : [l1, Math.floor(addr / PAGE) & 511];
}

/** The L1 belongs to d and is a validated page table (get_page_from_mfn + page_lock). A
 *  general reference is taken on success (put it with putPage). */
function lockL1(pi: PageInfo, l1: number, d: Domain): boolean {
  if (!getPage(pi, l1, d.id)) return false;
  if (pi.type[l1] !== PGT.L1 || pi.typeCount[l1] === 0 || (pi.flags[l1] & PgFlag.VALIDATED) === 0) { putPage(pi, l1); return false; }
  return true;
}

/** grant_to_pte_flags + adjust_guest_l1e: the PTE of a host mapping of mfn. */
export function grantPte(mfn: number, flags: number): [number, number] {
  let lo = Pte.P | Pte.A | Pte.D;
  if ((flags & Gntmap.application_map) !== 0) lo |= Pte.US;
  if ((flags & Gntmap.readonly) === 0) lo |= Pte.RW;
  lo |= ((flags >>> 16) << 9) & Pte.AVAIL;
  lo |= (mfn & 0xfffff) << 12;
  const hi = Math.floor(mfn / 1048576) | PTE_HI_NX;
  return adjustedL1(lo, hi);
}

/** create_grant_pv_mapping. The caller holds the frame's references; the old entry's are
 *  dropped. okay or general_error. */
function createGrantPvMapping(pi: PageInfo, v: Vcpu, addr: number, mfn: number, flags: number): Gnst {
  const d = v.domain;
  const containsPte = (flags & Gntmap.contains_pte) !== 0;
  const slot = pteSlot(pi, v, addr, containsPte);
  if (!slot) return Gnst.general_error;
  const [l1, idx] = slot;
  if (!lockL1(pi, l1, d)) return Gnst.general_error;
  const oLo = readPteLo(pi, l1, idx), oHi = readPteHi(pi, l1, idx);
  const [lo, hi] = grantPte(mfn, flags);
  writePte(pi, l1, idx, lo, hi);
  putPage(pi, l1);
  putPageFromL1e(pi, oLo, oHi);
  if ((oLo & Pte.P) !== 0) flushDomain(d, containsPte ? -1 : addr);
  return Gnst.okay;
}

/** replace_grant_pv_mapping: the PTE at addr must map mfn with the mapping's P/RW; it is
 *  cleared (or, with newAddr, replaced by the entry at newAddr, which is cleared). The
 *  grant's references are not touched (unmap drops them). okay or general_error. */
function replaceGrantPvMapping(pi: PageInfo, v: Vcpu, addr: number, mfn: number, flags: number, newAddr: number): Gnst {
  const d = v.domain;
  const containsPte = (flags & Gntmap.contains_pte) !== 0;
  if (containsPte && newAddr !== 0) return Gnst.general_error;
  const slot = pteSlot(pi, v, addr, containsPte);
  if (!slot) return Gnst.general_error;
  const [l1, idx] = slot;
  if (!lockL1(pi, l1, d)) return Gnst.general_error;
  const oLo = readPteLo(pi, l1, idx), oHi = readPteHi(pi, l1, idx);
  const [eLo] = grantPte(mfn, flags);
  if (pteMfn(oLo, oHi) !== mfn || ((oLo ^ eLo) & (Pte.P | Pte.RW)) !== 0) { putPage(pi, l1); return Gnst.general_error; }
  let nLo = 0, nHi = 0;
  if (newAddr !== 0) {
    const ns = pteSlot(pi, v, newAddr, false);
    if (!ns || (ns[0] === l1 && ns[1] === idx) || !lockL1(pi, ns[0], d)) { putPage(pi, l1); return Gnst.general_error; }
    nLo = readPteLo(pi, ns[0], ns[1]); nHi = readPteHi(pi, ns[0], ns[1]);
    writePte(pi, ns[0], ns[1], 0, 0);
    putPage(pi, ns[0]);
  }
  writePte(pi, l1, idx, nLo, nHi);
  putPage(pi, l1);
  flushDomain(d);
  return Gnst.okay;
}

// ---- map / unmap ---------------------------------------------------------------------------

export interface MapOp {
  /** Where to map (GNTMAP_host_map): the 48-bit linear address (-1: not canonical) in the
   *  calling vCPU's current address space, or with GNTMAP_contains_pte the machine address
   *  of the L1 entry. Ignored for device-only mappings. */
  hostAddr: number;
  /** GNTMAP_* */
  flags: number;
  ref: number;
  /** The granting domain. */
  dom: number;
}
export interface MapResult {
  status: Gnst;
  /** The mapping's handle (valid when status is okay). */
  handle: number;
  /** The frame's machine address (valid when status is okay): how devices (and in-process
   *  backends) reach the granted page. */
  devBusAddr: number;
}

/**
 * GNTTABOP_map_grant_ref for the grantee ld. For GNTMAP_host_map, v is the calling vCPU
 * (its domain must be ld); backends with no address space use GNTMAP_device_map only.
 */
export function mapGrantRef(xen: Xen, ld: number, op: MapOp, v: Vcpu | null = null): MapResult {
  const st = mapCommon(xen, ld, op, v);
  return typeof st === 'number' ? { status: st, handle: -1, devBusAddr: 0 } : st;
}

function mapCommon(xen: Xen, ld: number, op: MapOp, v: Vcpu | null): MapResult | Gnst {
  const host = gnttabHost(xen), pi = host.pi;
  const flags = op.flags >>> 0;
  if ((flags & (Gntmap.device_map | Gntmap.host_map)) === 0) return Gnst.bad_gntref;
  const rdom = xen.domains.get(op.dom);
  if (!rdom) return Gnst.bad_domain;
  const lt = maptrackOf(xen, ld);
  if (lt.count >= lt.limit) return Gnst.no_space;
  const rgt = grantTableOf(rdom);
  if (rgt.dying) return Gnst.bad_domain;
  const ref = op.ref >>> 0;
  if (ref >= rgt.nrEntries) return Gnst.bad_gntref;
  const ro = (flags & Gntmap.readonly) !== 0;
  const dev = (flags & Gntmap.device_map) !== 0, hst = (flags & Gntmap.host_map) !== 0;
  const inc = (dev ? (ro ? Pin.devr : Pin.devw) : 0) + (hst ? (ro ? Pin.hstr : Pin.hstw) : 0);
  let act = rgt.active.get(ref);
  if (act && (act.domid !== ld || (act.pin & overflowMask(inc)) !== 0 || act.subPage)) return Gnst.general_error;

  let refcnt = 0, typecnt = 0;
  if (!act || (!ro && (act.pin & (Pin.hstw_mask | Pin.devw_mask)) === 0)) {
    const rc = rgt.setStatus(ref, ro, true, ld);
    if (rc !== Gnst.okay) return rc;
    if (!act) {
      const mfn = getPagedFrame(pi, rgt.frame(ref), rdom.id);
      if (mfn < 0) { rgt.reduceStatusForPin(ref, ro); return Gnst.bad_page; }
      refcnt = 1;
      act = { pin: 0, domid: ld, mfn, start: 0, length: PAGE, subPage: false, transDom: rdom.id, transRef: ref };
      rgt.active.set(ref, act);
    }
  }
  act.pin += inc;
  const mfn = act.mfn;

  let rc: Gnst = Gnst.okay;
  let owner = rdom.id;
  if (refcnt === 0) {
    owner = pageGetOwnerAndRef(pi, mfn);
    if (owner !== DOMID_FREE) refcnt = 1;
  }
  if (owner !== rdom.id) rc = Gnst.general_error;
  else {
    if (dev && !ro) {
      if (getPageType(pi, mfn, PGT.WRITABLE, rdom) !== 0) rc = Gnst.general_error; else typecnt++;
    }
    if (rc === Gnst.okay && hst) {
      if (dev) {
        if (pageGetOwnerAndRef(pi, mfn) === DOMID_FREE) rc = Gnst.general_error; else refcnt++;
      }
      if (rc === Gnst.okay && !ro) {
        if (getPageType(pi, mfn, PGT.WRITABLE, rdom) !== 0) rc = Gnst.general_error; else typecnt++;
      }
      if (rc === Gnst.okay) {
        rc = v === null || v.domain.id !== ld ? Gnst.general_error : createGrantPvMapping(pi, v, op.hostAddr, mfn, flags);
      }
    }
  }
  if (rc !== Gnst.okay) {
    while (typecnt-- > 0) putPageType(pi, mfn);
    while (refcnt-- > 0) putPage(pi, mfn);
    rgt.addPin(ref, -inc);
    rgt.reduceStatusForPin(ref, ro);
    return rc;
  }
  const handle = lt.alloc({ flags, dom: rdom.id, ref });
  return { status: Gnst.okay, handle, devBusAddr: mfn * PAGE };
}

export interface UnmapOp {
  /** The host mapping's address as mapped (linear, or the PTE's machine address for
   *  contains_pte mappings); 0: leave the host mapping. */
  hostAddr: number;
  /** The mapping's dev_bus_addr; 0: leave the device mapping. */
  devBusAddr: number;
  handle: number;
  /** unmap_and_replace: the linear address whose PTE takes the grant PTE's place. */
  newAddr?: number;
}

/** GNTTABOP_unmap_grant_ref (and unmap_and_replace with op.newAddr) for grantee ld. */
export function unmapGrantRef(xen: Xen, ld: number, op: UnmapOp, v: Vcpu | null = null): Gnst {
  const host = gnttabHost(xen), pi = host.pi;
  const lt = maptrackOf(xen, ld);
  const handle = op.handle >>> 0;
  const map = lt.get(handle);
  if (!map) return Gnst.bad_handle;
  const rgt = tableById(xen, map.dom);
  if (!rgt) return Gnst.bad_domain;
  const ref = map.ref;
  const act = ref < rgt.nrEntries ? rgt.active.get(ref) : undefined;
  if (!act) return Gnst.bad_handle;
  const flags = map.flags;
  if (op.devBusAddr !== 0 && (flags & Gntmap.device_map) !== 0 && op.devBusAddr !== act.mfn * PAGE) return Gnst.bad_dev_addr;
  let done = 0;
  if (op.hostAddr !== 0 && (flags & Gntmap.host_map) !== 0) {
    const rc = v === null || v.domain.id !== ld ? Gnst.general_error : replaceGrantPvMapping(pi, v, op.hostAddr, act.mfn, flags, op.newAddr ?? 0);
    if (rc !== Gnst.okay) return rc;
    map.flags &= ~Gntmap.host_map;
    done |= Gntmap.host_map | (flags & Gntmap.readonly);
  }
  if (op.devBusAddr !== 0 && (flags & Gntmap.device_map) !== 0) {
    map.flags &= ~Gntmap.device_map;
    done |= Gntmap.device_map | (flags & Gntmap.readonly);
  }
  if ((map.flags & (Gntmap.device_map | Gntmap.host_map)) === 0) lt.free(handle);
  if (done === 0) return Gnst.okay;
  // unmap_common_complete
  const mfn = act.mfn, ro = (done & Gntmap.readonly) !== 0;
  if ((done & Gntmap.device_map) !== 0) {
    if (!ro) putPageType(pi, mfn);
    putPage(pi, mfn);
    rgt.addPin(ref, -(ro ? Pin.devr : Pin.devw));
  }
  if ((done & Gntmap.host_map) !== 0) {
    if (!ro) putPageType(pi, mfn);
    putPage(pi, mfn);
    rgt.addPin(ref, -(ro ? Pin.hstr : Pin.hstw));
  }
  rgt.reduceStatusForPin(ref, ro);
  retire(host, rgt);
  return Gnst.okay;
}

// ---- copies --------------------------------------------------------------------------------

interface Acquired { rc: Gnst; mfn: number; page: number; start: number; length: number }

/**
 * acquire_grant_for_copy: pin (rgt, gref) for ldom for a read (readonly) or a write. On
 * success the result holds a general reference on `page` (the caller drops it), the frame
 * to copy from/to (`mfn`: the active entry's) and the accessible range.
 */
function acquireForCopy(host: GnttabHost, rgt: GrantTable, gref: number, ldom: number, readonly: boolean, allowTransitive: boolean): Acquired {
  const pi = host.pi;
  const res: Acquired = { rc: Gnst.okay, mfn: -1, page: -1, start: 0, length: 0 };
  const fail = (rc: Gnst): Acquired => { res.rc = rc; return res; };
  if (rgt.dying) return fail(Gnst.bad_domain);
  if (!(gref >= 0 && gref < rgt.nrEntries)) return fail(Gnst.bad_gntref);
  let act = rgt.active.get(gref);
  const oldPin = act?.pin ?? 0;
  const inc = readonly ? Pin.hstr : Pin.hstw;
  if (act && (act.domid !== ldom || (oldPin & overflowMask(inc)) !== 0)) return fail(Gnst.general_error);
  const needStatus = oldPin === 0 || (!readonly && (oldPin & (Pin.hstw_mask | Pin.devw_mask)) === 0);
  const v2 = rgt.version === 2;
  const flags = rgt.flags(gref);

  if (v2 && (flags & Gtf.type_mask) === Gtf.transitive) {
    if (needStatus) {
      const rc = rgt.setStatus(gref, readonly, false, ldom);
      if (rc !== Gnst.okay) return fail(rc);
    }
    const clearFail = (rc: Gnst): Acquired => { rgt.reduceStatusForPin(gref, readonly); return fail(rc); };
    if (!allowTransitive) return clearFail(Gnst.general_error);
    const transDom = rgt.transDomid(gref), transRef = rgt.transGref(gref);
    if (transDom === rgt.domid) return clearFail(Gnst.general_error);
    const td = host.xen.domains.get(transDom);
    if (!td) return clearFail(Gnst.general_error);
    const r = acquireForCopy(host, grantTableOf(td), transRef, rgt.domid, readonly, false);
    if (r.rc !== Gnst.okay) return clearFail(r.rc);
    if (act && (act.mfn !== r.mfn || act.start !== r.start || act.length !== r.length || act.transDom !== transDom ||
        act.transRef !== transRef || !act.subPage)) {
      // Xen: ERESTART (the entry changed under an active use); nothing can race here, so
      // only a rewritten in-use entry gets here.
      releaseForCopy(host, grantTableOf(td), transRef, readonly);
      putPage(pi, r.page);
      return clearFail(Gnst.general_error);
    }
    if (!act) {
      act = { pin: 0, domid: ldom, mfn: r.mfn, start: r.start, length: r.length, subPage: true, transDom, transRef };
      rgt.active.set(gref, act);
    }
    res.page = r.page;
  } else if (needStatus) {
    const rc = rgt.setStatus(gref, readonly, false, ldom);
    if (rc !== Gnst.okay) return fail(rc);
    const sub = v2 && (flags & Gtf.sub_page) !== 0;
    const page = getPagedFrame(pi, rgt.frame(gref), rgt.domid);
    if (page < 0) { rgt.reduceStatusForPin(gref, readonly); return fail(Gnst.bad_page); }
    res.page = page;
    if (!act) {
      act = {
        pin: 0, domid: ldom, mfn: page, start: sub ? rgt.subPageOff(gref) : 0, length: sub ? rgt.subPageLen(gref) : PAGE,
        subPage: sub, transDom: rgt.domid, transRef: gref,
      };
      rgt.active.set(gref, act);
    }
  } else {
    const a = act!;
    const owner = pageGetOwnerAndRef(pi, a.mfn);
    if (owner !== rgt.domid) {
      if (owner !== DOMID_FREE) putPage(pi, a.mfn);
      return fail(Gnst.bad_domain);
    }
    res.page = a.mfn;
  }
  act!.pin += inc;
  res.mfn = act!.mfn;
  res.start = act!.start;
  res.length = act!.length;
  return res;
}

/** release_grant_for_copy (the page reference is the caller's to drop). */
function releaseForCopy(host: GnttabHost, rgt: GrantTable, gref: number, readonly: boolean): void {
  const act = rgt.active.get(gref);
  if (!act) throw new Error(`gnttab: release of an unpinned grant d${rgt.domid} ref ${gref}`);
  const trans = act.transDom !== rgt.domid ? [act.transDom, act.transRef] : null;
  rgt.addPin(gref, -(readonly ? Pin.hstr : Pin.hstw));
  rgt.reduceStatusForPin(gref, readonly);
  retire(host, rgt);
  if (trans) {
    const td = tableById(host.xen, trans[0]);
    if (td) releaseForCopy(host, td, trans[1], readonly);
  }
}

export const enum Gntcopy { source_gref = 1, dest_gref = 2 }

export interface CopyPtr {
  /** The grant ref (with the matching GNTCOPY_*_gref flag; the low 32 bits of the union) or
   *  the frame (gmfn, an MFN for PV; only with domid DOMID_SELF). */
  ref: number;
  gmfn: number;
  domid: number;
  offset: number;
}
export interface CopyOp { source: CopyPtr; dest: CopyPtr; len: number; flags: number }

class CopyBuf {
  /** The domid the op named (DOMID_SELF as given) and the domain it resolved to. */
  domidRaw = -1;
  dom: Domain | null = null;
  valid = false;
  haveGrant = false;
  haveType = false;
  readOnly = true;
  table: GrantTable | null = null;
  ref = 0;
  gmfn = -1;
  mfn = -1;
  page = -1;
  start = 0;
  len = 0;
}

/**
 * GNTTABOP_copy for grantee ld: one session per batch (as Xen, the source and destination
 * stay claimed between consecutive ops that name the same ones). Call one(op) per op, then
 * finish().
 */
export class CopySession {
  private readonly host: GnttabHost;
  private readonly src = new CopyBuf();
  private readonly dst = new CopyBuf();

  constructor(readonly xen: Xen, readonly ld: number) { this.host = gnttabHost(xen); }

  one(op: CopyOp): Gnst {
    const rc = this.copyOne(op);
    if (rc !== Gnst.okay) { this.release(this.src); this.release(this.dst); }
    return rc;
  }

  finish(): void {
    this.release(this.src);
    this.release(this.dst);
    this.unlock();
  }

  private copyOne(op: CopyOp): Gnst {
    const { source: s, dest: d, len } = op;
    const sGref = (op.flags & Gntcopy.source_gref) !== 0, dGref = (op.flags & Gntcopy.dest_gref) !== 0;
    const src = this.src, dst = this.dst;
    if (!src.dom || s.domid !== src.domidRaw || !dst.dom || d.domid !== dst.domidRaw) {
      this.release(src);
      this.release(dst);
      this.unlock();
      let rc = this.lock(s.domid, sGref, src);
      if (rc === Gnst.okay) rc = this.lock(d.domid, dGref, dst);
      if (rc !== Gnst.okay) { this.unlock(); return rc; }
    } else if ((!sGref && s.domid !== DOMID_SELF) || (!dGref && d.domid !== DOMID_SELF)) {
      // Xen checks this only when it locks the domains, so an op reusing the previous op's
      // lock could name another domain's frame; refused here on every op.
      return Gnst.permission_denied;
    }
    if (!this.bufValid(s, src, sGref)) {
      this.release(src);
      const rc = this.claim(s, src, sGref, true);
      if (rc !== Gnst.okay) return rc;
    }
    if (!this.bufValid(d, dst, dGref)) {
      this.release(dst);
      const rc = this.claim(d, dst, dGref, false);
      if (rc !== Gnst.okay) return rc;
    }
    if (s.offset + len > PAGE || d.offset + len > PAGE) return Gnst.bad_copy_arg;
    if (s.offset < src.start || s.offset + len > src.start + src.len) return Gnst.general_error;
    if (d.offset < dst.start || d.offset + len > dst.start + dst.len) return Gnst.general_error;
    const u8 = this.xen.phys.u8, from = src.mfn * PAGE + s.offset;
    u8.copyWithin(dst.mfn * PAGE + d.offset, from, from + len);
    touchFrame(this.host.pi, dst.mfn);
    return Gnst.okay;
  }

  private lock(domid: number, isGref: boolean, buf: CopyBuf): Gnst {
    if (domid !== DOMID_SELF && !isGref) return Gnst.permission_denied; // only DOMID_SELF by frame
    const d = this.xen.domains.get(domid === DOMID_SELF ? this.ld : domid);
    if (!d) return Gnst.bad_domain;
    buf.dom = d;
    buf.domidRaw = domid;
    return Gnst.okay;
  }

  private unlock(): void {
    for (const b of [this.src, this.dst]) { b.dom = null; b.domidRaw = -1; }
  }

  private bufValid(p: CopyPtr, b: CopyBuf, hasGref: boolean): boolean {
    if (!b.valid) return false;
    return hasGref ? b.haveGrant && (p.ref >>> 0) === b.ref : !b.haveGrant && p.gmfn === b.gmfn;
  }

  private claim(p: CopyPtr, b: CopyBuf, isGref: boolean, readOnly: boolean): Gnst {
    const pi = this.host.pi, dom = b.dom!;
    b.readOnly = readOnly;
    if (isGref) {
      const rgt = grantTableOf(dom);
      const r = acquireForCopy(this.host, rgt, p.ref >>> 0, this.ld, readOnly, true);
      if (r.rc !== Gnst.okay) return r.rc;
      b.table = rgt;
      b.ref = p.ref >>> 0;
      b.haveGrant = true;
      b.mfn = r.mfn;
      b.page = r.page;
      b.start = r.start;
      b.len = r.length;
    } else {
      const page = getPagedFrame(pi, p.gmfn, dom.id);
      if (page < 0) return Gnst.bad_page;
      b.page = page;
      b.mfn = page;
      b.gmfn = p.gmfn;
      b.start = 0;
      b.len = PAGE;
    }
    if (!readOnly) {
      if (getPageType(pi, b.page, PGT.WRITABLE, dom) !== 0) return Gnst.general_error;
      b.haveType = true;
    }
    b.valid = true;
    return Gnst.okay;
  }

  private release(b: CopyBuf): void {
    const pi = this.host.pi;
    b.valid = false;
    if (b.haveGrant) { releaseForCopy(this.host, b.table!, b.ref, b.readOnly); b.haveGrant = false; b.table = null; }
    if (b.haveType) { putPageType(pi, b.page); b.haveType = false; }
    if (b.page >= 0) { putPage(pi, b.page); b.page = -1; }
    b.gmfn = -1;
  }
}

/** GNTTABOP_copy over a list of ops (tests, in-process callers): the status of each. */
export function grantCopy(xen: Xen, ld: number, ops: CopyOp[]): Gnst[] {
  const s = new CopySession(xen, ld);
  try { return ops.map((op) => s.one(op)); } finally { s.finish(); }
}

/** A backend (grantee ld) reads len bytes at offset of grant (rdom, ref), as a GNTTABOP_copy
 *  from the grant would (same checks and status codes). */
export function copyFromGrant(xen: Xen, ld: number, rdom: number, ref: number, offset: number, len: number): { status: Gnst; data: Uint8Array | null } {
  let data: Uint8Array | null = null;
  const status = withGrant(xen, ld, rdom, ref, offset, len, true, (pa) => { data = xen.phys.u8.slice(pa, pa + len); });
  return { status, data };
}

/** A backend (grantee ld) writes data at offset of grant (rdom, ref). */
export function copyToGrant(xen: Xen, ld: number, rdom: number, ref: number, offset: number, data: Uint8Array): Gnst {
  return withGrant(xen, ld, rdom, ref, offset, data.length, false, (pa) => {
    xen.phys.u8.set(data, pa);
    touchFrame(gnttabHost(xen).pi, Math.floor(pa / PAGE));
  });
}

function withGrant(xen: Xen, ld: number, rdom: number, ref: number, offset: number, len: number, readonly: boolean, fn: (pa: number) => void): Gnst {
  const host = gnttabHost(xen), pi = host.pi;
  if (!(offset >= 0 && len >= 0) || offset + len > PAGE) return Gnst.bad_copy_arg;
  const d = xen.domains.get(rdom);
  if (!d) return Gnst.bad_domain;
  const rgt = grantTableOf(d);
  const r = acquireForCopy(host, rgt, ref >>> 0, ld, readonly, true);
  if (r.rc !== Gnst.okay) return r.rc;
  let rc: Gnst = Gnst.okay, typed = false;
  if (!readonly) { if (getPageType(pi, r.page, PGT.WRITABLE, d) !== 0) rc = Gnst.general_error; else typed = true; }
  if (rc === Gnst.okay && (offset < r.start || offset + len > r.start + r.length)) rc = Gnst.general_error;
  if (rc === Gnst.okay) fn(r.mfn * PAGE + offset);
  releaseForCopy(host, rgt, ref >>> 0, readonly);
  if (typed) putPageType(pi, r.page);
  putPage(pi, r.page);
  return rc;
}

// ---- transfer ------------------------------------------------------------------------------

/**
 * GNTTABOP_transfer: d gives frame mfn to domain domid, which accepted a transfer in entry
 * ref (flags exactly GTF_accept_transfer, domid = d). The frame must be d's and unreferenced
 * (steal_page), else GNTST_bad_page and nothing changes; after that it is lost to d even if
 * the transfer then fails (bad_domain, or general_error for a dying receiver, one with no
 * headroom or no accepting entry). On success the receiver owns it, M2P[mfn] is the entry's
 * frame (the receiver's pfn), the entry's frame becomes mfn and GTF_transfer_completed is
 * set. GNTST_address_too_big never occurs (64-bit receivers take any frame).
 */
export function transferPage(xen: Xen, d: Domain, mfn: number, domid: number, ref: number): Gnst {
  const host = gnttabHost(xen), pi = host.pi;
  if (!(Number.isInteger(mfn) && mfn >= 0 && mfn < pi.frames)) return Gnst.bad_page;
  if ((pi.flags[mfn] & PgFlag.XEN_SHARED) !== 0) return Gnst.bad_page; // is_special_page
  if (!ownedBy(pi, mfn, d.id) || pi.count[mfn] !== 0) return Gnst.bad_page; // steal_page
  d.totPages--;
  flushDomain(d);
  const lose = (rc: Gnst): Gnst => { freeFrame(pi, mfn); return rc; };
  const e = xen.domains.get(domid);
  if (!e) return lose(Gnst.bad_domain);
  if (e.state === 'dying' || e.totPages >= e.maxPages) return lose(Gnst.general_error);
  const egt = grantTableOf(e);
  ref = ref >>> 0;
  if (egt.dying || ref >= egt.nrEntries || egt.flags(ref) !== Gtf.accept_transfer || egt.entryDomid(ref) !== d.id) {
    return lose(Gnst.general_error);
  }
  egt.setFlags(ref, Gtf.accept_transfer | Gtf.transfer_committed);
  e.totPages++;
  xen.frames.owner[mfn] = e.id;
  pi.flags[mfn] &= PgFlag.TLB_WRITABLE;
  xen.frames.setM2p(mfn, egt.frame(ref) % TWO32);
  egt.setFrame(ref, mfn);
  egt.setFlags(ref, egt.flags(ref) | Gtf.transfer_completed);
  return Gnst.okay;
}

// ---- the table's own operations ------------------------------------------------------------

/** GNTTABOP_swap_grant_ref on the caller's own table: okay, bad_gntref, or eagain (in use). */
export function swapGrantRef(gt: GrantTable, a: number, b: number): Gnst {
  a >>>= 0; b >>>= 0;
  if (a >= gt.nrEntries || b >= gt.nrEntries) return Gnst.bad_gntref;
  if (a === b) return Gnst.okay;
  if (gt.pinOf(a) !== 0 || gt.pinOf(b) !== 0) return Gnst.eagain;
  const words = gt.version === 1 ? 2 : 4;
  const pa = gt.entryPa(a), pb = gt.entryPa(b), m = gt.mem;
  for (let i = 0; i < words; i++) {
    const x = m.u32(pa + i * 4);
    m.set32(pa + i * 4, m.u32(pb + i * 4));
    m.set32(pb + i * 4, x);
  }
  if (gt.version === 2) {
    const sa = gt.statusPa(a), sb = gt.statusPa(b), x = m.u16(sa);
    m.set16(sa, m.u16(sb));
    m.set16(sb, x);
  }
  return Gnst.okay;
}

/** GNTTABOP_setup_table: grow dom's table to at least nrFrames and return the first
 *  nrFrames frame numbers (MFNs, stable for the table's life). */
export function setupTable(cur: Domain, dom: number, nrFrames: number): { status: Gnst; frames: number[] } {
  const d = anyDomain(cur, dom);
  if (!d) return { status: Gnst.bad_domain, frames: [] };
  if (!privOver(cur, d)) return { status: Gnst.permission_denied, frames: [] };
  const gt = grantTableOf(d);
  if (nrFrames > gt.maxFrames) return { status: Gnst.general_error, frames: [] };
  const grow = nrFrames > gt.nrFrames || (gt.version === 2 && GrantTable.statusFramesFor(nrFrames) > gt.status.length);
  if (grow && !gt.grow(nrFrames)) return { status: Gnst.general_error, frames: [] };
  return { status: Gnst.okay, frames: gt.shared.slice(0, nrFrames) };
}

/** GNTTABOP_query_size. */
export function querySize(cur: Domain, dom: number): { status: Gnst; nrFrames: number; maxNrFrames: number } {
  const d = anyDomain(cur, dom);
  if (!d) return { status: Gnst.bad_domain, nrFrames: 0, maxNrFrames: 0 };
  if (!privOver(cur, d)) return { status: Gnst.permission_denied, nrFrames: 0, maxNrFrames: 0 };
  const gt = grantTableOf(d);
  return { status: Gnst.okay, nrFrames: gt.nrFrames, maxNrFrames: gt.maxFrames };
}

/** GNTTABOP_get_status_frames: the first nrFrames status frames (general_error if the
 *  table has fewer, which a v1 table always has: none). */
export function getStatusFrames(cur: Domain, dom: number, nrFrames: number): { status: Gnst; frames: number[] } {
  const d = anyDomain(cur, dom);
  if (!d) return { status: Gnst.bad_domain, frames: [] };
  if (!privOver(cur, d)) return { status: Gnst.permission_denied, frames: [] };
  const gt = grantTableOf(d);
  if (nrFrames > gt.status.length) return { status: Gnst.general_error, frames: [] };
  return { status: Gnst.okay, frames: gt.status.slice(0, nrFrames) };
}

/** GNTTABOP_get_version: the version, or -ESRCH / -EPERM. */
export function getVersion(cur: Domain, dom: number): number {
  const d = anyDomain(cur, dom);
  if (!d) return -Errno.ESRCH;
  if (!privOver(cur, d)) return -Errno.EPERM;
  return grantTableOf(d).version;
}

/** A table's entries in use and its active entries to the Xen log (Xen's 'g' debug key;
 *  the old GNTTABOP_dump_table is gone from Xen 4.17). false: no such table. */
export function dumpTable(xen: Xen, domid: number): boolean {
  const gt = tableById(xen, domid);
  if (!gt || gt.dying) return false;
  xen.printk(`grant table for d${domid}: version ${gt.version}, ${gt.nrFrames}/${gt.maxFrames} frames, ${gt.active.size} active`);
  for (let ref = 0; ref < gt.nrEntries; ref++) {
    const flags = gt.flags(ref);
    const act = gt.active.get(ref);
    if (flags === 0 && !act) continue;
    const pin = act ? ` pin ${(act.pin >>> 0).toString(16).padStart(8, '0')} by d${act.domid} mfn ${act.mfn.toString(16)}` : '';
    xen.printk(`  [${ref}] flags ${flags.toString(16)} status ${gt.statusFlags(ref).toString(16)} dom ${gt.entryDomid(ref)} frame ${gt.frame(ref).toString(16)}${pin}`);
  }
  return true;
}

export const enum CacheOp { CLEAN = 1, INVAL = 2, SOURCE_GREF = 0x80000000 }

/**
 * GNTTABOP_cache_flush (one op): x86 caches are coherent, so this only checks, as Xen
 * does: 0, or -EINVAL (bad range or op, a frame that is neither the caller's nor mapped
 * by it through a grant), -EPERM (a frame with no owner).
 */
export function cacheFlush(cur: Domain, devBusAddr: number, offset: number, length: number, op: number): number {
  if (offset >= PAGE || length > PAGE || offset + length > PAGE || ((op >>> 0) & ~(CacheOp.CLEAN | CacheOp.INVAL)) !== 0) return -Errno.EINVAL;
  if (length === 0 || op === 0) return 0;
  const pi = pageInfo(cur.xen);
  const mfn = Math.floor(devBusAddr / PAGE);
  if (!(mfn >= 0 && mfn < pi.frames)) return -Errno.EINVAL;
  const owner = pi.xen.frames.owner[mfn];
  const od = cur.xen.domains.get(owner);
  if (owner === DOMID_FREE || !od) return -Errno.EPERM;
  if (od === cur) return 0;
  for (const a of grantTableOf(od).active.values()) if (a.pin !== 0 && a.domid === cur.id && a.mfn === mfn) return 0;
  return -Errno.EINVAL;
}

/** GNTTABOP_set_version for the caller: 0 or -errno, and the version now in effect. */
export function setVersion(d: Domain, version: number): { rc: number; version: number } {
  const gt = grantTableOf(d);
  const rc = gt.setVersion(version);
  return { rc, version: gt.version };
}

// ---- the toolstack -------------------------------------------------------------------------

/** xc_dom_gnttab_seed: write reserved entries (0: console, 1: xenstore) granting frames
 *  (MFNs for PV) to the backend domains, as the domain builder does before the guest runs. */
export function seedGrantTable(d: Domain, entries: { ref: number; domid: number; frame: number; readonly?: boolean }[]): void {
  const gt = grantTableOf(d);
  for (const e of entries) {
    if (e.ref >= GNTTAB_NR_RESERVED_ENTRIES || e.ref >= gt.nrEntries) throw new Error(`gnttab seed: ref ${e.ref} is not a reserved entry`);
    const pa = gt.entryPa(e.ref);
    gt.mem.set16(pa + GntEnt.DOMID, e.domid);
    gt.setFrame(e.ref, e.frame);
    gt.setFlags(e.ref, Gtf.permit_access | (e.readonly ? Gtf.readonly : 0));
  }
}

/**
 * Domain teardown (gnttab_release_mappings, then the table's retirement): every mapping the
 * domain holds of others' grants is dropped (device references released here; the host
 * mappings' references belong to its PTEs and go with its page tables), and its own table
 * stops being usable, kept only while other domains still hold its grants. Call before
 * relinquishDomainMemory, which frees the grant and status frames.
 */
export function gnttabReleaseDomain(xen: Xen, domid: number): void {
  const host = gnttabHost(xen), pi = host.pi;
  const lt = host.maptracks.get(domid);
  if (lt) {
    for (const [h, map] of lt.list()) {
      const rgt = tableById(xen, map.dom);
      const act = rgt?.active.get(map.ref);
      if (rgt && act) {
        const ro = (map.flags & Gntmap.readonly) !== 0;
        if ((map.flags & Gntmap.device_map) !== 0) {
          if (!ro) putPageType(pi, act.mfn);
          putPage(pi, act.mfn);
          rgt.addPin(map.ref, -(ro ? Pin.devr : Pin.devw));
        }
        if ((map.flags & Gntmap.host_map) !== 0) rgt.addPin(map.ref, -(ro ? Pin.hstr : Pin.hstw));
        rgt.reduceStatusForPin(map.ref, ro);
        retire(host, rgt);
      }
      lt.free(h);
    }
    host.maptracks.delete(domid);
  }
  const gt = host.tables.get(domid);
  if (gt) { gt.dying = true; retire(host, gt); }
}

// ---- inspection ----------------------------------------------------------------------------

export interface GrantEntryView { flags: number; domid: number; frame: number; status: number; pin: number; active: ActiveEntry | null }

/** The entry (rd, ref) as Xen sees it, or null if out of range. */
export function readGrantEntry(xen: Xen, domid: number, ref: number): GrantEntryView | null {
  const gt = tableById(xen, domid);
  if (!gt || gt.dying || !(ref >= 0 && ref < gt.nrEntries)) return null;
  const a = gt.active.get(ref) ?? null;
  return { flags: gt.flags(ref), domid: gt.entryDomid(ref), frame: gt.frame(ref), status: gt.statusFlags(ref), pin: a?.pin ?? 0, active: a ? { ...a } : null };
}

export function gnstName(st: number): string { return GNTST_NAMES[-st] ?? `GNTST(${st})`; }

// ---- snapshots -----------------------------------------------------------------------------

export interface GnttabState {
  defaults: Required<GnttabOptions>;
  transfer: boolean;
  tables: GrantTableState[];
  maptracks: MaptrackState[];
}

export function gnttabState(xen: Xen): GnttabState {
  const host = gnttabHost(xen);
  return {
    defaults: { ...host.defaults },
    transfer: host.transfer,
    tables: [...host.tables.values()].sort((a, b) => a.domid - b.domid).map((t) => t.toJSON()),
    maptracks: [...host.maptracks.values()].sort((a, b) => a.domid - b.domid).map((m) => m.toJSON()),
  };
}

/** Replace the host's grant-table state (frames and page references are restored with
 *  memory and the mm state). */
export function restoreGnttabState(xen: Xen, s: GnttabState): void {
  const host = gnttabHost(xen);
  Object.assign(host.defaults, s.defaults);
  host.transfer = s.transfer;
  host.tables.clear();
  host.maptracks.clear();
  for (const t of s.tables) host.tables.set(t.domid, GrantTable.fromJSON(t, host.mem, host.frames));
  for (const m of s.maptracks) host.maptracks.set(m.domid, Maptrack.fromJSON(m));
}
