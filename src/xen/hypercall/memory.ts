// memory_op (12) for PV domains, as xen/common/memory.c and xen/arch/x86/x86_64/mm.c
// implement it: reservations (increase/decrease_reservation, populate_physmap), the
// domain's and the machine's E820, the M2P's location, and the sizes guests ask for.
//
// A PV guest's "gmfn" is a machine frame number: frames come back as MFNs, populate_physmap
// sets M2P[mfn] = gpfn, decrease_reservation gives MFNs back (mm/pagetype.ts frees each once
// nothing references it any more). add_to_physmap and remove_from_physmap are for
// auto-translated guests only: -EACCES for PV, as in Xen.
//
// Reservation ops return the number of extents done (never an errno: a bad argument returns
// the start extent, which is 0 for a fresh call), like Xen.
//
// API for the domain builder:
//   setMemoryMap(d, entries)         the domain's E820 (XENMEM_memory_map); without one the
//                                    call answers -ENOSYS and guests invent their own
//   setRamMemoryMap(d, nrPages)      one RAM range of nrPages pages from 0
//   setMachineMemoryMap(xen, entries) the host E820 dom0 reads (default: one RAM range)

import type { Domain } from '../domain.js';
import { Errno, HypercallError } from '../errno.js';
import { copyFromGuest, copyToGuest, writeGuest32, writeGuest64 } from '../guestmem.js';
import { SharedInfo } from '../layout.js';
import { DOMID_SELF } from '../mm/frames.js';
import { initM2P, machphysMfnList, setM2P } from '../mm/m2p.js';
import { pageInfo, removeGuestPage } from '../mm/pagetype.js';
import type { Vcpu } from '../vcpu.js';
import type { Xen } from '../xen.js';
import { Hc, registerHypercall } from './table.js';

export const enum XenMem {
  increase_reservation = 0, decrease_reservation = 1, maximum_ram_page = 2, current_reservation = 3,
  maximum_reservation = 4, machphys_mfn_list = 5, populate_physmap = 6, add_to_physmap = 7, memory_map = 9,
  machine_memory_map = 10, exchange = 11, machphys_mapping = 12, set_memory_map = 13, maximum_gpfn = 14,
  remove_from_physmap = 15, add_to_physmap_batch = 23,
}
export const enum E820Type { RAM = 1, RESERVED = 2, ACPI = 3, NVS = 4, UNUSABLE = 5 }
export interface E820Entry { addr: number; size: number; type: number }

const MEMOP_EXTENT_SHIFT = 6;
const MEMOP_CMD_MASK = (1 << MEMOP_EXTENT_SHIFT) - 1;
const XENMEMF_populate_on_demand = 1 << 16;
const XENMAPSPACE_gmfn_range = 3, XENMAPSPACE_gmfn_foreign = 4;
const E820MAX = 1024;
const E820_ENTRY_SIZE = 20;
const TWO32 = 4294967296;
const MACH2PHYS_VIRT_START = 0xffff800000000000n, MACH2PHYS_VIRT_END = 0xffff804000000000n;
const TWO47 = 0x800000000000, XEN_VIRT_END_LIN = 0x880000000000;

// ---- E820 maps -----------------------------------------------------------------------------

const domainMaps = new WeakMap<Domain, E820Entry[]>();
const machineMaps = new WeakMap<Xen, E820Entry[]>();

export function setMemoryMap(d: Domain, entries: E820Entry[]): void { domainMaps.set(d, entries.map((e) => ({ ...e }))); }
export function setRamMemoryMap(d: Domain, nrPages: number): void { setMemoryMap(d, [{ addr: 0, size: nrPages * 4096, type: E820Type.RAM }]); }
export function memoryMapOf(d: Domain): E820Entry[] | undefined { return domainMaps.get(d); }
export function setMachineMemoryMap(xen: Xen, entries: E820Entry[]): void { machineMaps.set(xen, entries.map((e) => ({ ...e }))); }
export function machineMemoryMapOf(xen: Xen): E820Entry[] {
  return machineMaps.get(xen) ?? [{ addr: 0, size: xen.phys.size, type: E820Type.RAM }];
}

function e820Bytes(entries: E820Entry[], n: number): Uint8Array {
  const b = new Uint8Array(n * E820_ENTRY_SIZE), dv = new DataView(b.buffer);
  for (let i = 0; i < n; i++) {
    const e = entries[i], o = i * E820_ENTRY_SIZE;
    dv.setBigUint64(o, BigInt(e.addr), true);
    dv.setBigUint64(o + 8, BigInt(e.size), true);
    dv.setUint32(o + 16, e.type, true);
  }
  return b;
}

// ---- helpers -------------------------------------------------------------------------------

function addrOk(lin: number): boolean { return lin !== -1 && !(lin >= TWO47 && lin < XEN_VIRT_END_LIN); }

/** A guest structure, or null if it cannot be read. */
function readStruct(v: Vcpu, lin: number, len: number): DataView | null {
  if (!addrOk(lin)) return null; // copy_from_guest refuses Xen's range
  try { const b = copyFromGuest(v, lin, len); return new DataView(b.buffer); } catch (e) { if (e instanceof HypercallError) return null; throw e; }
}
function ok(f: () => void): boolean {
  try { f(); return true; } catch (e) { if (e instanceof HypercallError) return false; throw e; }
}
function u64(dv: DataView, off: number): number { return dv.getUint32(off + 4, true) * TWO32 + dv.getUint32(off, true); }
/** A guest handle (pointer) in a structure as a 48-bit linear address, -1 if non-canonical. */
function handle(dv: DataView, off: number): number {
  const lo = dv.getUint32(off, true), hi = dv.getInt32(off + 4, true);
  if (((hi << 16) >> 16) !== hi) return -1;
  return (hi & 0xffff) * TWO32 + lo;
}
function read64(v: Vcpu, lin: number): number | null {
  const dv = readStruct(v, lin, 8);
  return dv === null ? null : u64(dv, 0);
}
function write64(v: Vcpu, lin: number, x: number): boolean {
  return ok(() => writeGuest64(v, lin, x % TWO32 | 0, Math.floor(x / TWO32) | 0));
}

/** rcu_lock_domain_by_any_id. */
function anyDomain(v: Vcpu, domid: number): Domain | null {
  return domid === DOMID_SELF ? v.domain : v.domain.xen.domains.get(domid) ?? null;
}
function privOver(d: Domain, t: Domain): boolean { return d === t || d.privileged; }

/** Largest extent order a domain may ask for (Xen's defaults: 9 for a domU, 12 for dom0). */
function maxOrder(d: Domain): number { return d.privileged ? 12 : 9; }

/** Allocate 2^order frames for d, counted against its reservation; -1 if none. */
function allocExtent(d: Domain, order: number): number {
  const n = 2 ** order;
  if (d.isDead || d.totPages + n > d.maxPages) return -1;
  const ft = d.xen.frames;
  const mfn = n === 1 ? ft.alloc(d.id) : ft.allocContiguous(d.id, n);
  if (mfn < 0) return -1;
  d.totPages += n;
  return mfn;
}

// ---- reservations --------------------------------------------------------------------------

interface Reservation { list: number; nr: number; order: number; flags: number; d: Domain }

function reservation(v: Vcpu, arg: number, start: number): Reservation | null {
  const dv = readStruct(v, arg, 32);
  if (dv === null) return null;
  const nr = u64(dv, 8);
  if (nr > (0xffffffff >>> MEMOP_EXTENT_SHIFT) || start >= nr) return null;
  const d = anyDomain(v, dv.getUint16(24, true));
  if (d === null) return null;
  const flags = dv.getUint32(20, true);
  const bits = flags & 0xff;
  if (bits !== 0 && bits <= 12) return null; // XENMEMF_address_bits too small to mean anything
  if (!privOver(v.domain, d)) return null;
  return { list: handle(dv, 0), nr, order: dv.getUint32(16, true), flags, d };
}

function increaseReservation(v: Vcpu, r: Reservation, start: number): number {
  if (r.list !== 0 && !addrOk(r.list + start * 8)) return start;
  if (r.order > maxOrder(v.domain)) return start;
  let i = start;
  for (; i < r.nr; i++) {
    const mfn = allocExtent(r.d, r.order);
    if (mfn < 0) break;
    if (r.list !== 0 && !write64(v, r.list + i * 8, mfn)) break;
  }
  return i;
}

function decreaseReservation(v: Vcpu, r: Reservation, start: number): number {
  if (!addrOk(r.list + start * 8) || r.order > maxOrder(v.domain)) return start;
  const pi = pageInfo(v.domain.xen);
  let i = start;
  for (; i < r.nr; i++) {
    const gmfn = read64(v, r.list + i * 8);
    if (gmfn === null) break;
    let failed = false;
    for (let j = 0; j < 2 ** r.order; j++) {
      if (removeGuestPage(pi, r.d, gmfn + j) !== 0) { failed = true; break; }
    }
    if (failed) break;
  }
  return i;
}

function populatePhysmap(v: Vcpu, r: Reservation, start: number): number {
  if (!addrOk(r.list + start * 8)) return start;
  if ((r.flags & XENMEMF_populate_on_demand) !== 0) return start; // no PoD for PV
  if (r.order > maxOrder(v.domain)) return start;
  const xen = v.domain.xen;
  initM2P(xen);
  let i = start;
  for (; i < r.nr; i++) {
    const gpfn = read64(v, r.list + i * 8);
    if (gpfn === null) break;
    const mfn = allocExtent(r.d, r.order);
    if (mfn < 0) break;
    for (let j = 0; j < 2 ** r.order; j++) setM2P(xen, mfn + j, gpfn + j);
    if (!write64(v, r.list + i * 8, mfn)) break;
  }
  return i;
}

// ---- the rest ------------------------------------------------------------------------------

function memoryMap(v: Vcpu, arg: number): number {
  const dv = readStruct(v, arg, 16);
  if (dv === null) return -Errno.EFAULT;
  const map = memoryMapOf(v.domain);
  if (!map || map.length === 0) return -Errno.ENOSYS;
  const n = Math.min(dv.getUint32(0, true), map.length);
  const buf = handle(dv, 8);
  if (!ok(() => copyToGuest(v, buf, e820Bytes(map, n))) || !ok(() => writeGuest32(v, arg, n))) return -Errno.EFAULT;
  return 0;
}

function machineMemoryMap(v: Vcpu, arg: number): number {
  if (!v.domain.privileged) return -Errno.EPERM;
  const dv = readStruct(v, arg, 16);
  if (dv === null) return -Errno.EFAULT;
  const map = machineMemoryMapOf(v.domain.xen);
  if (dv.getUint32(0, true) < map.length + 1) return -Errno.EINVAL;
  const buf = handle(dv, 8);
  if (!addrOk(buf)) return -Errno.EFAULT;
  if (!ok(() => copyToGuest(v, buf, e820Bytes(map, map.length))) || !ok(() => writeGuest32(v, arg, map.length))) return -Errno.EFAULT;
  return 0;
}

function setMemoryMapOp(v: Vcpu, arg: number): number {
  const dv = readStruct(v, arg, 24);
  if (dv === null) return -Errno.EFAULT;
  const n = dv.getUint32(8, true);
  if (n > E820MAX) return -Errno.EINVAL;
  const d = anyDomain(v, dv.getUint16(0, true));
  if (d === null) return -Errno.ESRCH;
  if (!privOver(v.domain, d)) return -Errno.EPERM;
  const raw = readStruct(v, handle(dv, 16), n * E820_ENTRY_SIZE);
  if (raw === null) return -Errno.EFAULT;
  const entries: E820Entry[] = [];
  for (let i = 0; i < n; i++) {
    const o = i * E820_ENTRY_SIZE;
    entries.push({ addr: u64(raw, o), size: u64(raw, o + 8), type: raw.getUint32(o + 16, true) });
  }
  domainMaps.set(d, entries);
  return 0;
}

function machphysMfnListOp(v: Vcpu, arg: number): number {
  const dv = readStruct(v, arg, 24);
  if (dv === null) return -Errno.EFAULT;
  const max = dv.getUint32(0, true), list = handle(dv, 8);
  const mfns = machphysMfnList(v.domain.xen);
  let i = 0;
  for (; i !== max && i < mfns.length; i++) if (!write64(v, list + i * 8, mfns[i])) return -Errno.EFAULT;
  dv.setUint32(16, i, true);
  if (!ok(() => copyToGuest(v, arg, new Uint8Array(dv.buffer)))) return -Errno.EFAULT;
  return 0;
}

function machphysMapping(v: Vcpu, arg: number): number {
  const b = new Uint8Array(24), dv = new DataView(b.buffer);
  dv.setBigUint64(0, MACH2PHYS_VIRT_START, true);
  dv.setBigUint64(8, MACH2PHYS_VIRT_END, true);
  // max_mfn: the hardware domain sees the top of RAM; others the size of the M2P area.
  const max = v.domain.privileged ? BigInt(v.domain.xen.phys.frames - 1) : (MACH2PHYS_VIRT_END - MACH2PHYS_VIRT_START) / 8n - 1n;
  dv.setBigUint64(16, max, true);
  return ok(() => copyToGuest(v, arg, b)) ? 0 : -Errno.EFAULT;
}

function domainStat(v: Vcpu, op: number, arg: number): number {
  const dv = readStruct(v, arg, 2);
  if (dv === null) return -Errno.EFAULT;
  const d = anyDomain(v, dv.getUint16(0, true));
  if (d === null) return -Errno.ESRCH;
  if (!privOver(v.domain, d)) return -Errno.EPERM;
  if (op === XenMem.current_reservation) return d.totPages;
  if (op === XenMem.maximum_reservation) return d.maxPages;
  // maximum_gpfn: PV guests state nr_pfns in shared_info.arch.max_pfn.
  let maxPfn = 0;
  if (d.sharedInfoMfn >= 0) {
    const pdv = d.xen.phys.dv, pa = d.sharedInfoMfn * 4096 + SharedInfo.ARCH_MAX_PFN;
    maxPfn = pdv.getUint32(pa + 4, true) * TWO32 + pdv.getUint32(pa, true);
  }
  return (maxPfn || 1) - 1;
}

/** add_to_physmap / _batch and remove_from_physmap: auto-translated guests only. */
function physmapOp(v: Vcpu, op: number, start: number, arg: number): number {
  if (op === XenMem.remove_from_physmap) {
    if (start !== 0) return -Errno.EINVAL;
    const dv = readStruct(v, arg, 16);
    if (dv === null) return -Errno.EFAULT;
    return anyDomain(v, dv.getUint16(0, true)) === null ? -Errno.ESRCH : -Errno.EACCES;
  }
  if (start !== (start & 0xffff)) return -Errno.EDOM;
  const batch = op === XenMem.add_to_physmap_batch;
  const dv = readStruct(v, arg, batch ? 32 : 24);
  if (dv === null) return -Errno.EFAULT;
  const space = batch ? dv.getUint16(2, true) : dv.getUint32(4, true);
  if (!batch && space === XENMAPSPACE_gmfn_foreign) return -Errno.ENOSYS;
  if (batch && space === XENMAPSPACE_gmfn_range) return -Errno.EOPNOTSUPP;
  if (anyDomain(v, dv.getUint16(0, true)) === null) return -Errno.ESRCH;
  return -Errno.EACCES; // PV: not paging_mode_translate
}

/** memory_op(cmd, arg). cmd's bits 6 and up carry the start extent of a continuation. */
export function memoryOp(v: Vcpu, cmd: number, arg: number): number {
  const op = cmd % 64 & MEMOP_CMD_MASK;
  const start = Math.floor(cmd / 64);
  switch (op) {
    case XenMem.increase_reservation: case XenMem.decrease_reservation: case XenMem.populate_physmap: {
      const r = reservation(v, arg, start);
      if (r === null) return start;
      if (op === XenMem.increase_reservation) return increaseReservation(v, r, start);
      if (op === XenMem.decrease_reservation) return decreaseReservation(v, r, start);
      return populatePhysmap(v, r, start);
    }
    case XenMem.maximum_ram_page:
      if (start !== 0) return -Errno.EINVAL;
      return v.domain.xen.phys.frames;
    case XenMem.current_reservation: case XenMem.maximum_reservation: case XenMem.maximum_gpfn:
      if (start !== 0) return -Errno.EINVAL;
      return domainStat(v, op, arg);
    case XenMem.machphys_mfn_list: return machphysMfnListOp(v, arg);
    case XenMem.machphys_mapping: return machphysMapping(v, arg);
    case XenMem.memory_map: return memoryMap(v, arg);
    case XenMem.machine_memory_map: return machineMemoryMap(v, arg);
    case XenMem.set_memory_map: return setMemoryMapOp(v, arg);
    case XenMem.add_to_physmap: case XenMem.add_to_physmap_batch: case XenMem.remove_from_physmap:
      return physmapOp(v, op, start, arg);
    default: return -Errno.ENOSYS;
  }
}

registerHypercall(Hc.memory_op, (v, a) => memoryOp(v, a.u64(0), a.ptr(1)));
