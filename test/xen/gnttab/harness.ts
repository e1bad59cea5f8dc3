// Test support for grant tables: hand-built PV domains (test/xen/mm/harness.ts: a Host, an
// address space per vCPU with buffer pages at BUF and an empty L1 at MAPVA), the guest's
// writes into its grant frames, and grant_table_op structures built in the caller's
// hypercall buffer.

import type { Domain } from '../../../src/xen/domain.js';
import { Gnttab } from './abi.js';
import '../../../src/xen/hypercall/gnttab.js';
import { grantTableOf, initGrantTable, type GnttabOptions } from '../../../src/xen/gnttab/ops.js';
import type { GrantTable } from '../../../src/xen/gnttab/model.js';
import type { Vcpu } from '../../../src/xen/vcpu.js';
import { BUF, Host, Space, hc, va } from '../mm/harness.js';

export { BUF, Host, Space, hc, va };
export * from './abi.js';

/** The empty L1 of a Space maps VA 0x200000..0x3fffff: grant mappings go there. */
export const MAPVA = 0x200000;
/** Offsets in the hypercall buffer (BUF + off): ops at OPS, frame lists at LIST. */
export const OPS = 0x0, LIST = 0x1000;

export interface Dom { d: Domain; v: Vcpu; s: Space; gt: GrantTable }

export function dom(h: Host, name: string, opts: { privileged?: boolean; bufPages?: number; gnttab?: GnttabOptions } = {}): Dom {
  const d = h.domain(name, { privileged: opts.privileged });
  const v = h.vcpu(d);
  const s = new Space(h, v, opts.bufPages ?? 8);
  const gt = initGrantTable(d, opts.gnttab ?? {});
  return { d, v, s, gt };
}

/** The guest writes a v1 entry (domid and frame, then flags). */
export function grantV1(g: Dom, ref: number, domid: number, frame: number, flags: number = Gnttab.GTF_permit_access): void {
  const gt = grantTableOf(g.d), pa = gt.entryPa(ref), dv = g.d.xen.phys.dv;
  dv.setUint16(pa + 2, domid, true);
  dv.setUint32(pa + 4, frame, true);
  dv.setUint16(pa, flags, true);
}

/** The guest writes a v2 entry: full page, sub-page or transitive (by flags' type). */
export function grantV2(g: Dom, ref: number, e: { domid: number; flags: number; frame?: number; off?: number; len?: number; transDom?: number; transRef?: number }): void {
  const gt = grantTableOf(g.d), pa = gt.entryPa(ref), dv = g.d.xen.phys.dv;
  dv.setUint16(pa + 2, e.domid, true);
  if ((e.flags & 3) === Gnttab.GTF_transitive) {
    dv.setUint16(pa + 4, e.transDom ?? 0, true);
    dv.setUint16(pa + 6, 0, true);
    dv.setUint32(pa + 8, e.transRef ?? 0, true);
    dv.setUint32(pa + 12, 0, true);
  } else {
    dv.setUint16(pa + 4, e.off ?? 0, true);
    dv.setUint16(pa + 6, e.len ?? 0, true);
    dv.setBigUint64(pa + 8, BigInt(e.frame ?? 0), true);
  }
  dv.setUint16(pa, e.flags, true);
}

/** The entry's flags (v1) and its status bits (v2: the status frame; v1: the flags). */
export function flagsOf(g: Dom, ref: number): number { const gt = grantTableOf(g.d); return gt.flags(ref); }
export function statusOf(g: Dom, ref: number): number { const gt = grantTableOf(g.d); return gt.statusFlags(ref); }

/**
 * The guest's revocation of an unused grant (xengnt.c / Linux gnttab_end_foreign_access_ref):
 * a compare-and-swap of the flags to 0, refused while GTF_reading or GTF_writing is set.
 */
export function revoke(g: Dom, ref: number): boolean {
  const gt = grantTableOf(g.d);
  if ((gt.statusFlags(ref) & (Gnttab.GTF_reading | Gnttab.GTF_writing)) !== 0) return false;
  g.d.xen.phys.dv.setUint16(gt.entryPa(ref), 0, true);
  return true;
}

// ---- grant_table_op through the hypercall ------------------------------------------------------

function put(g: Dom, off: number, fill: (dv: DataView) => void, size: number): void {
  const b = new Uint8Array(size);
  fill(new DataView(b.buffer));
  g.s.write(off, b);
}
function get(g: Dom, off: number, size: number): DataView { return new DataView(g.s.read(off, size).buffer); }

export interface MapArgs { hostAddr?: bigint; flags: number; ref: number; dom: number }
export interface MapOut { rc: number; status: number; handle: number; devBusAddr: bigint }

/** GNTTABOP_map_grant_ref with the ops in g's buffer. */
export function mapOps(g: Dom, ops: MapArgs[]): MapOut[] {
  ops.forEach((o, i) => put(g, OPS + i * 32, (dv) => {
    dv.setBigUint64(0, BigInt.asUintN(64, o.hostAddr ?? 0n), true);
    dv.setUint32(8, o.flags >>> 0, true);
    dv.setUint32(12, o.ref >>> 0, true);
    dv.setUint16(16, o.dom, true);
    dv.setInt16(18, 0x5555, true);
    dv.setUint32(20, 0xdeadbeef, true);
    dv.setBigUint64(24, 0x1111n, true);
  }, 32));
  const rc = hc(g.v, 20, Gnttab.GNTTABOP_map_grant_ref, va(BUF + OPS), ops.length);
  return ops.map((_, i) => {
    const dv = get(g, OPS + i * 32, 32);
    return { rc, status: dv.getInt16(18, true), handle: dv.getUint32(20, true), devBusAddr: dv.getBigUint64(24, true) };
  });
}
export function map1(g: Dom, o: MapArgs): MapOut { return mapOps(g, [o])[0]; }

export interface UnmapArgs { hostAddr?: bigint; devBusAddr?: bigint; handle: number }
export function unmapOps(g: Dom, ops: UnmapArgs[]): { rc: number; status: number[] } {
  ops.forEach((o, i) => put(g, OPS + i * 24, (dv) => {
    dv.setBigUint64(0, BigInt.asUintN(64, o.hostAddr ?? 0n), true);
    dv.setBigUint64(8, BigInt.asUintN(64, o.devBusAddr ?? 0n), true);
    dv.setUint32(16, o.handle >>> 0, true);
    dv.setInt16(20, 0x5555, true);
  }, 24));
  const rc = hc(g.v, 20, Gnttab.GNTTABOP_unmap_grant_ref, va(BUF + OPS), ops.length);
  return { rc, status: ops.map((_, i) => get(g, OPS + i * 24 + 20, 2).getInt16(0, true)) };
}
export function unmap1(g: Dom, o: UnmapArgs): number { return unmapOps(g, [o]).status[0]; }

export function unmapReplace(g: Dom, hostAddr: bigint, newAddr: bigint, handle: number): { rc: number; status: number } {
  put(g, OPS, (dv) => {
    dv.setBigUint64(0, BigInt.asUintN(64, hostAddr), true);
    dv.setBigUint64(8, BigInt.asUintN(64, newAddr), true);
    dv.setUint32(16, handle >>> 0, true);
  }, 24);
  const rc = hc(g.v, 20, Gnttab.GNTTABOP_unmap_and_replace, va(BUF + OPS), 1);
  return { rc, status: get(g, OPS + 20, 2).getInt16(0, true) };
}

export interface CopyEnd { ref?: number; gmfn?: number; domid: number; offset: number }
export interface CopyArgs { source: CopyEnd; dest: CopyEnd; len: number; flags: number }
export function copyOps(g: Dom, ops: CopyArgs[]): { rc: number; status: number[] } {
  ops.forEach((o, i) => put(g, OPS + i * 40, (dv) => {
    for (const [base, e] of [[0, o.source], [16, o.dest]] as const) {
      if (e.gmfn !== undefined) dv.setBigUint64(base, BigInt(e.gmfn), true);
      else dv.setUint32(base, (e.ref ?? 0) >>> 0, true);
      dv.setUint16(base + 8, e.domid, true);
      dv.setUint16(base + 10, e.offset, true);
    }
    dv.setUint16(32, o.len, true);
    dv.setUint16(34, o.flags, true);
    dv.setInt16(36, 0x5555, true);
  }, 40));
  const rc = hc(g.v, 20, Gnttab.GNTTABOP_copy, va(BUF + OPS), ops.length);
  return { rc, status: ops.map((_, i) => get(g, OPS + i * 40 + 36, 2).getInt16(0, true)) };
}
export function copy1(g: Dom, o: CopyArgs): number { return copyOps(g, [o]).status[0]; }

export function setupTable(g: Dom, dom: number, nr: number, list: bigint = va(BUF + LIST)): { rc: number; status: number; frames: number[] } {
  put(g, OPS, (dv) => {
    dv.setUint16(0, dom, true);
    dv.setUint32(4, nr, true);
    dv.setInt16(8, 0x5555, true);
    dv.setBigUint64(16, BigInt.asUintN(64, list), true);
  }, 24);
  const rc = hc(g.v, 20, Gnttab.GNTTABOP_setup_table, va(BUF + OPS), 1);
  const status = get(g, OPS + 8, 2).getInt16(0, true);
  const frames: number[] = [];
  if (rc === 0 && status === 0) for (let i = 0; i < nr; i++) frames.push(Number(g.s.get64(LIST + i * 8)));
  return { rc, status, frames };
}

export function querySize(g: Dom, dom: number): { rc: number; status: number; nrFrames: number; maxNrFrames: number } {
  put(g, OPS, (dv) => { dv.setUint16(0, dom, true); dv.setUint32(4, 0xaaaa, true); dv.setUint32(8, 0xbbbb, true); dv.setInt16(12, 0x5555, true); }, 16);
  const rc = hc(g.v, 20, Gnttab.GNTTABOP_query_size, va(BUF + OPS), 1);
  const dv = get(g, OPS, 16);
  return { rc, status: dv.getInt16(12, true), nrFrames: dv.getUint32(4, true), maxNrFrames: dv.getUint32(8, true) };
}

export function setVersion(g: Dom, version: number): { rc: number; version: number } {
  put(g, OPS, (dv) => dv.setUint32(0, version, true), 4);
  const rc = hc(g.v, 20, Gnttab.GNTTABOP_set_version, va(BUF + OPS), 1);
  return { rc, version: g.s.get32(OPS) };
}

export function getVersion(g: Dom, dom: number): { rc: number; version: number } {
  put(g, OPS, (dv) => { dv.setUint16(0, dom, true); dv.setUint32(4, 0x77, true); }, 8);
  const rc = hc(g.v, 20, Gnttab.GNTTABOP_get_version, va(BUF + OPS), 1);
  return { rc, version: g.s.get32(OPS + 4) };
}

export function getStatusFrames(g: Dom, dom: number, nr: number): { rc: number; status: number; frames: number[] } {
  put(g, OPS, (dv) => {
    dv.setUint32(0, nr, true);
    dv.setUint16(4, dom, true);
    dv.setInt16(6, 0x5555, true);
    dv.setBigUint64(8, va(BUF + LIST), true);
  }, 16);
  const rc = hc(g.v, 20, Gnttab.GNTTABOP_get_status_frames, va(BUF + OPS), 1);
  const status = get(g, OPS + 6, 2).getInt16(0, true);
  const frames: number[] = [];
  if (rc === 0 && status === 0) for (let i = 0; i < nr; i++) frames.push(Number(g.s.get64(LIST + i * 8)));
  return { rc, status, frames };
}

export function transferOps(g: Dom, ops: { mfn: number; domid: number; ref: number }[]): { rc: number; status: number[] } {
  ops.forEach((o, i) => put(g, OPS + i * 24, (dv) => {
    dv.setBigUint64(0, BigInt(o.mfn), true);
    dv.setUint16(8, o.domid, true);
    dv.setUint32(12, o.ref, true);
    dv.setInt16(16, 0x5555, true);
  }, 24));
  const rc = hc(g.v, 20, Gnttab.GNTTABOP_transfer, va(BUF + OPS), ops.length);
  return { rc, status: ops.map((_, i) => get(g, OPS + i * 24 + 16, 2).getInt16(0, true)) };
}

export function swapOps(g: Dom, ops: [number, number][]): { rc: number; status: number[] } {
  ops.forEach(([a, b], i) => put(g, OPS + i * 12, (dv) => { dv.setUint32(0, a, true); dv.setUint32(4, b, true); dv.setInt16(8, 0x5555, true); }, 12));
  const rc = hc(g.v, 20, Gnttab.GNTTABOP_swap_grant_ref, va(BUF + OPS), ops.length);
  return { rc, status: ops.map((_, i) => get(g, OPS + i * 12 + 8, 2).getInt16(0, true)) };
}

export function dumpTable(g: Dom, dom: number): { rc: number; status: number } {
  put(g, OPS, (dv) => { dv.setUint16(0, dom, true); dv.setInt16(2, 0x5555, true); }, 4);
  const rc = hc(g.v, 20, Gnttab.GNTTABOP_dump_table, va(BUF + OPS), 1);
  return { rc, status: get(g, OPS + 2, 2).getInt16(0, true) };
}

export function cacheFlushOps(g: Dom, ops: { addr: bigint; offset: number; length: number; op: number }[], cmd: number = Gnttab.GNTTABOP_cache_flush): number {
  ops.forEach((o, i) => put(g, OPS + i * 16, (dv) => {
    dv.setBigUint64(0, o.addr, true);
    dv.setUint16(8, o.offset, true);
    dv.setUint16(10, o.length, true);
    dv.setUint32(12, o.op >>> 0, true);
  }, 16));
  return hc(g.v, 20, cmd, va(BUF + OPS), ops.length);
}

/** The PTE value of a host mapping as Xen writes it (with the mm module's PV adjustment). */
export function grantPteValue(mfn: number, flags: number): bigint {
  let e = (BigInt(mfn) << 12n) | 1n | 0x20n | 0x40n | (1n << 63n);
  if ((flags & Gnttab.GNTMAP_readonly) === 0) e |= 2n;
  if ((flags & Gnttab.GNTMAP_application_map) !== 0) e |= 4n;
  else e |= 4n | (1n << 52n);
  e |= BigInt(((flags >>> 16) & 7) << 9);
  return e;
}
