// The guest-visible, read-only machine-to-physical table at 0xffff800000000000 (L4 slot 256)
// and Xen's reserved L4 slots 256..271 in every validated L4.
//
// Xen keeps M2P[mfn] = pfn for every machine frame (xen.frames.m2p); PV guests read it at
// MACH2PHYS_VIRT_START as an array of 64-bit entries (INVALID = ~0). Here it is held in
// Xen-owned frames (contiguous, so each 2 MiB chunk is one run of frames, as
// XENMEM_machphys_mfn_list reports them), mapped by Xen-owned L1/L2/L3 tables present+user,
// never writable, NX at the leaves. One L3 serves every L4. The data frames are shared with
// DOMID_XEN read-only (a privileged domain may map them with mmu_update's DOMID_XEN foreign
// domain, never writable); the tables are Xen's alone.
//
// Every L4 that is validated gets Xen's slots written (slot 256: the M2P; slot 260: the
// per-domain GDT/LDT area of pv/mode.ts; the rest empty: the hypervisor itself lives
// outside guest address spaces in this model). Like Xen, without
// VMASST m2p_strict the M2P slot starts blank and is filled when the L4 becomes a kernel
// base (NEW_BASEPTR); with m2p_strict it starts filled and is zapped when the L4 becomes a
// user base.
//
// API:
//   initM2P(xen)                    build the tables (idempotent; done on first use anyway)
//   setM2P(xen, mfn, pfn)           update M2P[mfn] (and the guest-visible copy)
//   initXenL4Slots(xen, l4mfn, roMpt = true)   write slots 256..271 of an L4
//   fillRoMpt(xen, l4mfn) / zapRoMpt(xen, l4mfn)
//   m2pL4Entry(xen)                 [lo, hi] of the slot-256 entry
//   machphysMfnList(xen)            the first MFN of each 2 MiB of the M2P
//   MACH2PHYS_START_LIN, MACH2PHYS_END_LIN   the range as 48-bit linear addresses

import type { Domain } from '../domain.js';
import { PERDOMAIN_L4_SLOT, perdomainL4e } from '../pv/mode.js';
import type { Xen } from '../xen.js';
import { DOMID_XEN, INVALID_P2M } from './frames.js';
import { pageInfo, shareXenPage, writePte } from './pagetype.js';

export const MACH2PHYS_START_LIN = 0x800000000000;      // 0xffff800000000000
export const MACH2PHYS_END_LIN = 0x804000000000;        // 0xffff804000000000
export const M2P_SLOT = 256;

const XEN_L4_FIRST = 256, XEN_L4_LAST = 271;
/** Present, user, accessed (so walks never write Xen's tables); never writable. */
const RO_USER = 0x25;
const NX_HI = 1 << 31 | 0;

export interface M2PTables {
  /** The MFN of each 4 KiB page of the table (entry mfn lives in data[mfn >> 9]). */
  readonly data: number[];
  readonly l1: number[];
  readonly l2: number[];
  readonly l3: number;
  readonly l4eLo: number;
  readonly l4eHi: number;
}

const tables = new WeakMap<Xen, M2PTables>();

function pteLo(mfn: number, flags: number): number { return ((mfn & 0xfffff) << 12) | flags; }
function pteHi(mfn: number): number { return Math.floor(mfn / 0x100000); }

function allocXen(xen: Xen): number {
  const m = xen.frames.alloc(DOMID_XEN);
  if (m < 0) throw new Error('out of memory building the M2P table');
  return m;
}

export function initM2P(xen: Xen): M2PTables {
  const have = tables.get(xen);
  if (have) return have;
  const pi = pageInfo(xen);
  const ft = xen.frames;
  const nData = Math.ceil(ft.frames / 512);
  const data: number[] = [];
  const first = ft.allocContiguous(DOMID_XEN, nData);
  if (first >= 0) for (let i = 0; i < nData; i++) data.push(first + i);
  else for (let i = 0; i < nData; i++) data.push(allocXen(xen));
  const l1: number[] = [];
  for (let i = 0; i < Math.ceil(nData / 512); i++) l1.push(allocXen(xen));
  const l2: number[] = [];
  for (let i = 0; i < Math.ceil(l1.length / 512); i++) l2.push(allocXen(xen));
  if (l2.length > 256) throw new Error('M2P larger than its 256 GiB window');
  const l3 = allocXen(xen);
  for (let k = 0; k < nData; k++) writePte(pi, l1[k >> 9], k & 511, pteLo(data[k], RO_USER), pteHi(data[k]) | NX_HI);
  for (let k = 0; k < l1.length; k++) writePte(pi, l2[k >> 9], k & 511, pteLo(l1[k], RO_USER), pteHi(l1[k]));
  for (let k = 0; k < l2.length; k++) writePte(pi, l3, k, pteLo(l2[k], RO_USER), pteHi(l2[k]));
  for (const m of data) shareXenPage(pi, m, null, false);
  const t: M2PTables = { data, l1, l2, l3, l4eLo: pteLo(l3, RO_USER), l4eHi: pteHi(l3) };
  tables.set(xen, t);
  // The current contents, then every change.
  const dv = xen.phys.dv, m2p = ft.m2p;
  const put = (mfn: number, pfn: number): void => {
    const pa = data[mfn >> 9] * 4096 + (mfn & 511) * 8;
    if (pfn === INVALID_P2M) { dv.setInt32(pa, -1, true); dv.setInt32(pa + 4, -1, true); }
    else { dv.setUint32(pa, pfn, true); dv.setInt32(pa + 4, 0, true); }
  };
  for (let mfn = 0; mfn < ft.frames; mfn++) put(mfn, m2p[mfn]);
  const prev = ft.onM2pChange;
  ft.onM2pChange = (mfn, pfn) => { prev?.(mfn, pfn); put(mfn, pfn); };
  return t;
}

/** M2P[mfn] = pfn (INVALID_P2M or values >= 2^32-1: no pfn), visible to guests at once. */
export function setM2P(xen: Xen, mfn: number, pfn: number): void {
  initM2P(xen);
  xen.frames.setM2p(mfn, pfn >= INVALID_P2M ? INVALID_P2M : pfn);
}

export function m2pL4Entry(xen: Xen): [number, number] {
  const t = initM2P(xen);
  return [t.l4eLo, t.l4eHi];
}

/** Write Xen's slots 256..271 of an L4 (init_xen_l4_slots): the M2P in 256 if roMpt, the
 *  per-domain GDT/LDT area (pv/mode.ts) in 260 for the L4's domain d (default: its owner). */
export function initXenL4Slots(xen: Xen, l4mfn: number, roMpt = true, d?: Domain): void {
  const t = initM2P(xen);
  const pi = pageInfo(xen);
  const dom = d ?? xen.domains.get(xen.frames.owner[l4mfn]);
  for (let i = XEN_L4_FIRST; i <= XEN_L4_LAST; i++) {
    if (i === M2P_SLOT && roMpt) writePte(pi, l4mfn, i, t.l4eLo, t.l4eHi);
    else if (i === PERDOMAIN_L4_SLOT && dom) { const [lo, hi] = perdomainL4e(dom); writePte(pi, l4mfn, i, lo, hi); }
    else writePte(pi, l4mfn, i, 0, 0);
  }
}

/** The L4 becomes a kernel base without m2p_strict: make sure the M2P is mapped. */
export function fillRoMpt(xen: Xen, l4mfn: number): void {
  const t = initM2P(xen);
  writePte(pageInfo(xen), l4mfn, M2P_SLOT, t.l4eLo, t.l4eHi);
}

/** The L4 becomes a user base with m2p_strict: hide the M2P. */
export function zapRoMpt(xen: Xen, l4mfn: number): void {
  writePte(pageInfo(xen), l4mfn, M2P_SLOT, 0, 0);
}

/** XENMEM_machphys_mfn_list: the MFN backing each 2 MiB of the M2P. */
export function machphysMfnList(xen: Xen): number[] {
  const t = initM2P(xen);
  const out: number[] = [];
  for (let k = 0; k < t.data.length; k += 512) out.push(t.data[k]);
  return out;
}
