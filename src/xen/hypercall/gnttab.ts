// grant_table_op (20): HYPERVISOR_grant_table_op(cmd, uop, count), as do_grant_table_op in
// xen/common/grant_table.c: the guest structures are read and written here, the operations
// are gnttab/ops.ts.
//
// Return values, as Xen's:
//   -EINVAL  count negative as an int; argument bits (cmd >> 12) on anything but
//            cache_flush; count != 1 for setup_table, dump_table, query_size and
//            get_status_frames; set_version to anything but 1 or 2; cache_flush arguments
//   -EFAULT  an op array (or frame list) starting in Xen's range, or a struct that cannot be
//            read or written back; for array ops the ops before the fault are done
//   -ENOSYS  unknown command, and GNTTABOP_dump_table (Xen 4.17 has no such hypercall any
//            more; gnttab/ops.ts dumpTable prints a table to the Xen log, as Xen's 'g' key)
//   -ESRCH / -EPERM  get_version of an unknown / a foreign domain (unprivileged caller)
//   -EBUSY / -ERANGE / -ENOSYS  set_version while grants are in use / with reserved
//            entries v1 cannot hold / v2 beyond the domain's maximum version
//   -EOPNOTSUPP  transfer when turned off (gnttabHost(xen).transfer = false)
// and 0 otherwise, with the per-op result in each struct's status field (GNTST_*).
// Operations are never preempted: a batch runs to the end in one call.

import { Errno, HypercallError } from '../errno.js';
import { copyFromGuest, copyToGuest } from '../guestmem.js';
import {
  CopySession, type CopyOp, cacheFlush, getStatusFrames, getVersion, gnttabHost, grantTableOf, mapGrantRef,
  maptrackOf, querySize, setVersion, setupTable, swapGrantRef, transferPage, unmapGrantRef,
} from '../gnttab/ops.js';
import { Gnst, Gntmap } from '../gnttab/model.js';
import type { Vcpu } from '../vcpu.js';
import { Hc, registerHypercall } from './table.js';

export const enum GnttabOp {
  map_grant_ref = 0, unmap_grant_ref = 1, setup_table = 2, dump_table = 3, transfer = 4, copy = 5, query_size = 6,
  unmap_and_replace = 7, set_version = 8, get_status_frames = 9, get_version = 10, swap_grant_ref = 11, cache_flush = 12,
}
const GNTTABOP_ARG_SHIFT = 12;
const GNTTABOP_CMD_MASK = (1 << GNTTABOP_ARG_SHIFT) - 1;

/** Guest structure layouts (x86_64; asserted in test/xen/gnttab/layout.test.ts). */
export const enum GntLayout {
  MAP_HOST_ADDR = 0, MAP_FLAGS = 8, MAP_REF = 12, MAP_DOM = 16, MAP_STATUS = 18, MAP_HANDLE = 20, MAP_DEV_BUS_ADDR = 24, MAP_SIZE = 32,
  UNMAP_HOST_ADDR = 0, UNMAP_DEV_BUS_ADDR = 8, UNMAP_HANDLE = 16, UNMAP_STATUS = 20, UNMAP_SIZE = 24,
  SETUP_DOM = 0, SETUP_NR_FRAMES = 4, SETUP_STATUS = 8, SETUP_FRAME_LIST = 16, SETUP_SIZE = 24,
  DUMP_DOM = 0, DUMP_STATUS = 2, DUMP_SIZE = 4,
  TRANSFER_MFN = 0, TRANSFER_DOMID = 8, TRANSFER_REF = 12, TRANSFER_STATUS = 16, TRANSFER_SIZE = 24,
  COPY_SRC = 0, COPY_DEST = 16, COPY_PTR_DOMID = 8, COPY_PTR_OFFSET = 10, COPY_LEN = 32, COPY_FLAGS = 34, COPY_STATUS = 36, COPY_SIZE = 40,
  QUERY_DOM = 0, QUERY_NR_FRAMES = 4, QUERY_MAX_NR_FRAMES = 8, QUERY_STATUS = 12, QUERY_SIZE = 16,
  REPLACE_HOST_ADDR = 0, REPLACE_NEW_ADDR = 8, REPLACE_HANDLE = 16, REPLACE_STATUS = 20, REPLACE_SIZE = 24,
  SETVER_VERSION = 0, SETVER_SIZE = 4,
  STATUS_NR_FRAMES = 0, STATUS_DOM = 4, STATUS_STATUS = 6, STATUS_FRAME_LIST = 8, STATUS_SIZE = 16,
  GETVER_DOM = 0, GETVER_VERSION = 4, GETVER_SIZE = 8,
  SWAP_REF_A = 0, SWAP_REF_B = 4, SWAP_STATUS = 8, SWAP_SIZE = 12,
  FLUSH_A = 0, FLUSH_OFFSET = 8, FLUSH_LENGTH = 10, FLUSH_OP = 12, FLUSH_SIZE = 16,
}

const TWO32 = 4294967296;
const TWO47 = 0x800000000000;
const XEN_VIRT_END_LIN = 0x880000000000;

// ---- guest memory --------------------------------------------------------------------------

/** __addr_ok: a guest address outside Xen's range. */
function addrOk(lin: number): boolean { return lin >= 0 && !(lin >= TWO47 && lin < XEN_VIRT_END_LIN); }
/** guest_handle_okay for an array of count elements of size bytes. */
function arrayOk(lin: number, count: number, size: number): boolean { return count < Math.floor(2 ** 64 / size) && addrOk(lin); }

function readStruct(v: Vcpu, lin: number, len: number): DataView | null {
  if (!addrOk(lin)) return null;
  try { const b = copyFromGuest(v, lin, len); return new DataView(b.buffer); } catch (e) { if (e instanceof HypercallError) return null; throw e; }
}
function writeBytes(v: Vcpu, lin: number, b: Uint8Array): boolean {
  if (!addrOk(lin)) return false;
  try { copyToGuest(v, lin, b); return true; } catch (e) { if (e instanceof HypercallError) return false; throw e; }
}
function writeStruct(v: Vcpu, lin: number, dv: DataView): boolean { return writeBytes(v, lin, new Uint8Array(dv.buffer, dv.byteOffset, dv.byteLength)); }
function writeI16(v: Vcpu, lin: number, x: number): boolean {
  const b = new Uint8Array(2);
  new DataView(b.buffer).setInt16(0, x, true);
  return writeBytes(v, lin, b);
}
function writeU32(v: Vcpu, lin: number, x: number): boolean {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, x >>> 0, true);
  return writeBytes(v, lin, b);
}
/** Write frame numbers as u64s; false at the first fault. */
function writeFrames(v: Vcpu, lin: number, frames: number[]): boolean {
  for (let i = 0; i < frames.length; i++) {
    const b = new Uint8Array(8), dv = new DataView(b.buffer);
    dv.setUint32(0, frames[i] % TWO32 >>> 0, true);
    dv.setUint32(4, Math.floor(frames[i] / TWO32) >>> 0, true);
    if (!writeBytes(v, lin + i * 8, b)) return false;
  }
  return true;
}

function u64(dv: DataView, off: number): number { return dv.getUint32(off + 4, true) * TWO32 + dv.getUint32(off, true); }
/** A 64-bit field as a 48-bit linear address (-1 if not canonical). */
function lin64(dv: DataView, off: number): number {
  const lo = dv.getUint32(off, true), hi = dv.getInt32(off + 4, true);
  if (((hi << 16) >> 16) !== hi) return -1;
  return (hi & 0xffff) * TWO32 + lo;
}
/** A host_addr field as ops.ts takes it: the PTE's machine address for contains_pte
 *  mappings, else the linear address. */
function hostAddrOf(dv: DataView, off: number, flags: number): number {
  return (flags & Gntmap.contains_pte) !== 0 ? u64(dv, off) : lin64(dv, off);
}

// ---- the sub-ops ---------------------------------------------------------------------------

function doMap(v: Vcpu, uop: number, count: number): number {
  if (!arrayOk(uop, count, GntLayout.MAP_SIZE)) return -Errno.EFAULT;
  const xen = v.domain.xen, ld = v.domain.id;
  for (let i = 0; i < count; i++) {
    const p = uop + i * GntLayout.MAP_SIZE;
    const dv = readStruct(v, p, GntLayout.MAP_SIZE);
    if (!dv) return -Errno.EFAULT;
    const flags = dv.getUint32(GntLayout.MAP_FLAGS, true);
    const r = mapGrantRef(xen, ld, {
      hostAddr: hostAddrOf(dv, GntLayout.MAP_HOST_ADDR, flags), flags,
      ref: dv.getUint32(GntLayout.MAP_REF, true), dom: dv.getUint16(GntLayout.MAP_DOM, true),
    }, v);
    dv.setInt16(GntLayout.MAP_STATUS, r.status, true);
    if (r.status === Gnst.okay) {
      dv.setUint32(GntLayout.MAP_HANDLE, r.handle, true);
      dv.setUint32(GntLayout.MAP_DEV_BUS_ADDR, r.devBusAddr % TWO32 >>> 0, true);
      dv.setUint32(GntLayout.MAP_DEV_BUS_ADDR + 4, Math.floor(r.devBusAddr / TWO32), true);
    }
    if (!writeStruct(v, p, dv)) return -Errno.EFAULT;
  }
  return 0;
}

function doUnmap(v: Vcpu, uop: number, count: number, replace: boolean): number {
  const size = replace ? GntLayout.REPLACE_SIZE : GntLayout.UNMAP_SIZE;
  if (!arrayOk(uop, count, size)) return -Errno.EFAULT;
  const xen = v.domain.xen, ld = v.domain.id, mt = maptrackOf(xen, ld);
  for (let i = 0; i < count; i++) {
    const p = uop + i * size;
    const dv = readStruct(v, p, size);
    if (!dv) return -Errno.EFAULT;
    const handle = dv.getUint32(replace ? GntLayout.REPLACE_HANDLE : GntLayout.UNMAP_HANDLE, true);
    const mapFlags = mt.get(handle)?.flags ?? 0;
    const status = replace
      ? unmapGrantRef(xen, ld, {
        hostAddr: hostAddrOf(dv, GntLayout.REPLACE_HOST_ADDR, mapFlags), devBusAddr: 0, handle,
        newAddr: (mapFlags & Gntmap.contains_pte) !== 0 ? u64(dv, GntLayout.REPLACE_NEW_ADDR) : lin64(dv, GntLayout.REPLACE_NEW_ADDR),
      }, v)
      : unmapGrantRef(xen, ld, {
        hostAddr: hostAddrOf(dv, GntLayout.UNMAP_HOST_ADDR, mapFlags), devBusAddr: u64(dv, GntLayout.UNMAP_DEV_BUS_ADDR), handle,
      }, v);
    if (!writeI16(v, p + (replace ? GntLayout.REPLACE_STATUS : GntLayout.UNMAP_STATUS), status)) return -Errno.EFAULT;
  }
  return 0;
}

function doSetup(v: Vcpu, uop: number, count: number): number {
  if (count !== 1) return -Errno.EINVAL;
  const dv = readStruct(v, uop, GntLayout.SETUP_SIZE);
  if (!dv) return -Errno.EFAULT;
  const nr = dv.getUint32(GntLayout.SETUP_NR_FRAMES, true);
  const list = lin64(dv, GntLayout.SETUP_FRAME_LIST);
  if (!arrayOk(list, nr, 8)) return -Errno.EFAULT;
  const r = setupTable(v.domain, dv.getUint16(GntLayout.SETUP_DOM, true), nr);
  let status = r.status;
  if (status === Gnst.okay && !writeFrames(v, list, r.frames)) status = Gnst.bad_virt_addr;
  return writeI16(v, uop + GntLayout.SETUP_STATUS, status) ? 0 : -Errno.EFAULT;
}

function doTransfer(v: Vcpu, uop: number, count: number): number {
  if (!arrayOk(uop, count, GntLayout.TRANSFER_SIZE)) return -Errno.EFAULT;
  if (!gnttabHost(v.domain.xen).transfer) return -Errno.EOPNOTSUPP;
  for (let i = 0; i < count; i++) {
    const p = uop + i * GntLayout.TRANSFER_SIZE;
    const dv = readStruct(v, p, GntLayout.TRANSFER_SIZE);
    if (!dv) return -Errno.EFAULT;
    const status = transferPage(v.domain.xen, v.domain, u64(dv, GntLayout.TRANSFER_MFN),
      dv.getUint16(GntLayout.TRANSFER_DOMID, true), dv.getUint32(GntLayout.TRANSFER_REF, true));
    if (!writeI16(v, p + GntLayout.TRANSFER_STATUS, status)) return -Errno.EFAULT;
  }
  return 0;
}

function copyPtr(dv: DataView, off: number): CopyOp['source'] {
  return {
    ref: dv.getUint32(off, true), gmfn: u64(dv, off),
    domid: dv.getUint16(off + GntLayout.COPY_PTR_DOMID, true), offset: dv.getUint16(off + GntLayout.COPY_PTR_OFFSET, true),
  };
}

function doCopy(v: Vcpu, uop: number, count: number): number {
  if (!arrayOk(uop, count, GntLayout.COPY_SIZE)) return -Errno.EFAULT;
  const s = new CopySession(v.domain.xen, v.domain.id);
  try {
    for (let i = 0; i < count; i++) {
      const p = uop + i * GntLayout.COPY_SIZE;
      const dv = readStruct(v, p, GntLayout.COPY_SIZE);
      if (!dv) return -Errno.EFAULT;
      const status = s.one({
        source: copyPtr(dv, GntLayout.COPY_SRC), dest: copyPtr(dv, GntLayout.COPY_DEST),
        len: dv.getUint16(GntLayout.COPY_LEN, true), flags: dv.getUint16(GntLayout.COPY_FLAGS, true),
      });
      if (!writeI16(v, p + GntLayout.COPY_STATUS, status)) return -Errno.EFAULT;
    }
    return 0;
  } finally {
    s.finish();
  }
}

function doQuerySize(v: Vcpu, uop: number, count: number): number {
  if (count !== 1) return -Errno.EINVAL;
  const dv = readStruct(v, uop, GntLayout.QUERY_SIZE);
  if (!dv) return -Errno.EFAULT;
  const r = querySize(v.domain, dv.getUint16(GntLayout.QUERY_DOM, true));
  if (r.status === Gnst.okay) {
    dv.setUint32(GntLayout.QUERY_NR_FRAMES, r.nrFrames, true);
    dv.setUint32(GntLayout.QUERY_MAX_NR_FRAMES, r.maxNrFrames, true);
  }
  dv.setInt16(GntLayout.QUERY_STATUS, r.status, true);
  return writeStruct(v, uop, dv) ? 0 : -Errno.EFAULT;
}

function doSetVersion(v: Vcpu, uop: number): number {
  const dv = readStruct(v, uop, GntLayout.SETVER_SIZE);
  if (!dv) return -Errno.EFAULT;
  const r = setVersion(v.domain, dv.getUint32(GntLayout.SETVER_VERSION, true));
  return writeU32(v, uop + GntLayout.SETVER_VERSION, r.version) ? r.rc : -Errno.EFAULT;
}

function doGetStatusFrames(v: Vcpu, uop: number, count: number): number {
  if (count !== 1) return -Errno.EINVAL;
  const dv = readStruct(v, uop, GntLayout.STATUS_SIZE);
  if (!dv) return -Errno.EFAULT;
  const nr = dv.getUint32(GntLayout.STATUS_NR_FRAMES, true);
  const list = lin64(dv, GntLayout.STATUS_FRAME_LIST);
  if (!arrayOk(list, nr, 8)) return -Errno.EFAULT;
  const r = getStatusFrames(v.domain, dv.getUint16(GntLayout.STATUS_DOM, true), nr);
  let status = r.status;
  if (status === Gnst.okay && !writeFrames(v, list, r.frames)) status = Gnst.bad_virt_addr;
  return writeI16(v, uop + GntLayout.STATUS_STATUS, status) ? 0 : -Errno.EFAULT;
}

function doGetVersion(v: Vcpu, uop: number): number {
  const dv = readStruct(v, uop, GntLayout.GETVER_SIZE);
  if (!dv) return -Errno.EFAULT;
  const version = getVersion(v.domain, dv.getUint16(GntLayout.GETVER_DOM, true));
  if (version < 0) return version;
  return writeU32(v, uop + GntLayout.GETVER_VERSION, version) ? 0 : -Errno.EFAULT;
}

function doSwap(v: Vcpu, uop: number, count: number): number {
  if (!arrayOk(uop, count, GntLayout.SWAP_SIZE)) return -Errno.EFAULT;
  const gt = grantTableOf(v.domain);
  for (let i = 0; i < count; i++) {
    const p = uop + i * GntLayout.SWAP_SIZE;
    const dv = readStruct(v, p, GntLayout.SWAP_SIZE);
    if (!dv) return -Errno.EFAULT;
    const status = swapGrantRef(gt, dv.getUint32(GntLayout.SWAP_REF_A, true), dv.getUint32(GntLayout.SWAP_REF_B, true));
    if (!writeI16(v, p + GntLayout.SWAP_STATUS, status)) return -Errno.EFAULT;
  }
  return 0;
}

function doCacheFlush(v: Vcpu, uop: number, count: number): number {
  if (!arrayOk(uop, count, GntLayout.FLUSH_SIZE)) return -Errno.EFAULT;
  for (let i = 0; i < count; i++) {
    const dv = readStruct(v, uop + i * GntLayout.FLUSH_SIZE, GntLayout.FLUSH_SIZE);
    if (!dv) return -Errno.EFAULT;
    const rc = cacheFlush(v.domain, u64(dv, GntLayout.FLUSH_A), dv.getUint16(GntLayout.FLUSH_OFFSET, true),
      dv.getUint16(GntLayout.FLUSH_LENGTH, true), dv.getUint32(GntLayout.FLUSH_OP, true));
    if (rc < 0) return rc;
  }
  return 0;
}

/** do_grant_table_op. cmd and count as the guest passed them (unsigned 32-bit); uop the
 *  48-bit linear address of the argument (-1: not canonical). */
export function grantTableOp(v: Vcpu, cmd: number, uop: number, count: number): number {
  if ((count | 0) < 0) return -Errno.EINVAL;
  const op = cmd & GNTTABOP_CMD_MASK;
  if (op !== GnttabOp.cache_flush && cmd >>> GNTTABOP_ARG_SHIFT !== 0) return -Errno.EINVAL;
  switch (op) {
    case GnttabOp.map_grant_ref: return doMap(v, uop, count);
    case GnttabOp.unmap_grant_ref: return doUnmap(v, uop, count, false);
    case GnttabOp.unmap_and_replace: return doUnmap(v, uop, count, true);
    case GnttabOp.setup_table: return doSetup(v, uop, count);
    case GnttabOp.transfer: return doTransfer(v, uop, count);
    case GnttabOp.copy: return doCopy(v, uop, count);
    case GnttabOp.query_size: return doQuerySize(v, uop, count);
    case GnttabOp.set_version: return doSetVersion(v, uop);
    case GnttabOp.get_status_frames: return doGetStatusFrames(v, uop, count);
    case GnttabOp.get_version: return doGetVersion(v, uop);
    case GnttabOp.swap_grant_ref: return doSwap(v, uop, count);
    case GnttabOp.cache_flush: return doCacheFlush(v, uop, count);
    default: return -Errno.ENOSYS;
  }
}

registerHypercall(Hc.grant_table_op, (v, a) => grantTableOp(v, a.u32(0), a.ptr(1), a.u32(2)));
