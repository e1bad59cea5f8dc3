// grant_table_op one case at a time: every sub-op, its status codes and errnos, the GTF_*
// protocol in the granter's entries, page references while mapped, PTEs of host mappings,
// copies across three domains, version 2, transfers, teardown and snapshots.
import { describe, expect, it } from 'vitest';
import { copyFromGuest, copyToGuest } from '../../../src/xen/guestmem.js';
import { HypercallError } from '../../../src/xen/errno.js';
import { mmuUpdate } from '../../../src/xen/hypercall/mmu.js';
import { PGT, PgFlag, removeGuestPage } from '../../../src/xen/mm/pagetype.js';
import {
  copyFromGrant, copyToGrant, dumpTable, gnttabHost, gnttabReleaseDomain, gnttabState, grantTableOf, mapGrantRef, maptrackOf,
  readGrantEntry, restoreGnttabState, seedGrantTable, unmapGrantRef,
} from '../../../src/xen/gnttab/ops.js';
import { GnttabSnapshotError, decodeGnttabState, encodeGnttabState, loadGnttab, saveGnttab } from '../../../src/xen/gnttab/snapshot.js';
import {
  BUF, DOMID_SELF, type Dom, ERR, GNTST, Gnttab, Host, MAPVA, OPS, cacheFlushOps, copy1, copyOps, dom, dumpTable as dumpTableOp,
  flagsOf, getStatusFrames, getVersion, grantPteValue, grantV1, grantV2, hc, map1, mapOps, querySize, revoke,
  setVersion, setupTable, statusOf, swapOps, transferOps, unmap1, unmapOps, unmapReplace, va,
} from './harness.js';

const { GTF_permit_access: PERMIT, GTF_readonly: RO, GTF_reading: READING, GTF_writing: WRITING } = Gnttab;
const { GNTMAP_host_map: HOST, GNTMAP_device_map: DEV, GNTMAP_readonly: MRO } = Gnttab;

interface World { h: Host; a: Dom; b: Dom; c: Dom }
function world(opts: { bPriv?: boolean } = {}): World {
  const h = new Host();
  const a = dom(h, 'A');
  const b = dom(h, 'B', { privileged: opts.bPriv });
  const c = dom(h, 'C');
  return { h, a, b, c };
}
const slotVa = (i: number) => va(MAPVA + i * 4096);
const pteAt = (w: World, g: Dom, i: number) => w.h.get(g.s.l1b, i);
const count = (w: World, m: number) => w.h.pi.count[m];
const wtype = (w: World, m: number) => (w.h.pi.type[m] === PGT.WRITABLE ? w.h.pi.typeCount[m] : 0);
function fill(w: World, mfn: number, byte: number): void { w.h.phys.u8.fill(byte, mfn * 4096, mfn * 4096 + 4096); }
function readVa(g: Dom, lin: number, n: number): Uint8Array { return copyFromGuest(g.v, lin, n); }
function writeFaults(g: Dom, lin: number): boolean {
  try { copyToGuest(g.v, lin, new Uint8Array([1])); return false; } catch (e) { if (e instanceof HypercallError) return true; throw e; }
}

describe('setup_table and query_size', () => {
  it('a domain starts with one frame of 512 v1 entries and may grow to its maximum of 32', () => {
    const { a } = world();
    expect(querySize(a, DOMID_SELF)).toEqual({ rc: 0, status: 0, nrFrames: 1, maxNrFrames: 32 });
    const one = setupTable(a, DOMID_SELF, 1);
    expect(one.status).toBe(0);
    const four = setupTable(a, DOMID_SELF, 4);
    expect(four.status).toBe(0);
    expect(four.frames[0]).toBe(one.frames[0]); // stable MFNs
    expect(new Set(four.frames).size).toBe(4);
    expect(querySize(a, a.d.id).nrFrames).toBe(4);
    expect(grantTableOf(a.d).nrEntries).toBe(2048);
    // Asking for fewer returns only those and does not shrink.
    expect(setupTable(a, DOMID_SELF, 2).frames).toEqual(four.frames.slice(0, 2));
    expect(setupTable(a, DOMID_SELF, 33).status).toBe(GNTST.general_error);
    expect(setupTable(a, DOMID_SELF, 32).status).toBe(0);
    expect(querySize(a, DOMID_SELF).nrFrames).toBe(32);
  });

  it('grant frames are the domain\'s, shared writable: it maps them RW, another domU cannot', () => {
    const w = world();
    const [f] = setupTable(w.a, DOMID_SELF, 1).frames;
    expect(w.h.xen.frames.owner[f]).toBe(w.a.d.id);
    const rw = (BigInt(f) << 12n) | 7n;
    expect(mmuUpdate(w.a.v, [[(BigInt(w.a.s.l1b) << 12n) | 8n, rw]]).rc).toBe(0);
    // The guest writes an entry through its mapping; Xen sees it.
    copyToGuest(w.a.v, MAPVA + 4096 + 8 * 9, new Uint8Array([1, 0, w.b.d.id, 0, 0x34, 0x12, 0, 0]));
    expect(readGrantEntry(w.h.xen, w.a.d.id, 9)).toMatchObject({ flags: PERMIT, domid: w.b.d.id, frame: 0x1234 });
    expect(mmuUpdate(w.b.v, [[(BigInt(w.b.s.l1b) << 12n), rw]]).rc).toBe(ERR.EBUSY);
  });

  it('status codes and errnos: bad domain, foreign domain, count, frame list', () => {
    const w = world({ bPriv: true });
    expect(setupTable(w.a, 999, 1).status).toBe(GNTST.bad_domain);
    expect(setupTable(w.a, w.c.d.id, 1).status).toBe(GNTST.permission_denied);
    expect(querySize(w.a, w.c.d.id).status).toBe(GNTST.permission_denied);
    expect(querySize(w.a, 999)).toMatchObject({ status: GNTST.bad_domain, nrFrames: 0xaaaa, maxNrFrames: 0xbbbb });
    expect(setupTable(w.b, w.c.d.id, 2).status).toBe(0); // privileged: any domain
    expect(querySize(w.b, w.c.d.id).nrFrames).toBe(2);
    expect(setupTable(w.a, DOMID_SELF, 1, va(0x800000000000)).rc).toBe(ERR.EFAULT); // list in Xen's range
    expect(setupTable(w.a, DOMID_SELF, 1, va(0x40000000))).toMatchObject({ rc: 0, status: GNTST.bad_virt_addr }); // unmapped
    expect(hc(w.a.v, 20, Gnttab.GNTTABOP_setup_table, va(BUF + OPS), 2)).toBe(ERR.EINVAL);
    expect(hc(w.a.v, 20, Gnttab.GNTTABOP_query_size, va(BUF + OPS), 0)).toBe(ERR.EINVAL);
    expect(hc(w.a.v, 20, Gnttab.GNTTABOP_query_size, va(0x40000000), 1)).toBe(ERR.EFAULT);
  });
});

describe('map_grant_ref and unmap_grant_ref (host mappings)', () => {
  it('maps a RW grant writable: PTE, GTF_reading|GTF_writing, references; data is shared; unmap undoes it all', () => {
    const w = world();
    const g = w.a.s.buf[2];
    fill(w, g, 0xab);
    grantV1(w.a, 10, w.b.d.id, g);
    const c0 = count(w, g), t0 = wtype(w, g);
    const r = map1(w.b, { hostAddr: slotVa(3), flags: HOST, ref: 10, dom: w.a.d.id });
    expect(r).toMatchObject({ rc: 0, status: 0, handle: 0, devBusAddr: BigInt(g) << 12n });
    expect(pteAt(w, w.b, 3)).toBe(grantPteValue(g, HOST));
    expect(flagsOf(w.a, 10)).toBe(PERMIT | READING | WRITING);
    expect(count(w, g)).toBe(c0 + 1);
    expect(wtype(w, g)).toBe(t0 + 1);
    expect([...readVa(w.b, MAPVA + 3 * 4096, 4)]).toEqual([0xab, 0xab, 0xab, 0xab]);
    copyToGuest(w.b.v, MAPVA + 3 * 4096 + 100, new Uint8Array([1, 2, 3]));
    expect([...w.h.phys.u8.slice(g * 4096 + 100, g * 4096 + 103)]).toEqual([1, 2, 3]);
    // The granter cannot revoke while it is in use.
    expect(revoke(w.a, 10)).toBe(false);
    expect(unmap1(w.b, { hostAddr: slotVa(3), handle: r.handle })).toBe(0);
    expect(pteAt(w, w.b, 3)).toBe(0n);
    expect(flagsOf(w.a, 10)).toBe(PERMIT);
    expect([count(w, g), wtype(w, g)]).toEqual([c0, t0]);
    expect(() => readVa(w.b, MAPVA + 3 * 4096, 1)).toThrow(); // TLB flushed, PTE gone
    expect(revoke(w.a, 10)).toBe(true);
    expect(unmap1(w.b, { hostAddr: slotVa(3), handle: r.handle })).toBe(GNTST.bad_handle);
  });

  it('read-only: a RO map of a RW grant sets only GTF_reading, maps without RW, takes no type', () => {
    const w = world();
    const g = w.a.s.buf[1];
    grantV1(w.a, 8, w.b.d.id, g);
    const t0 = wtype(w, g);
    const r = map1(w.b, { hostAddr: slotVa(0), flags: HOST | MRO, ref: 8, dom: w.a.d.id });
    expect(r.status).toBe(0);
    expect(flagsOf(w.a, 8)).toBe(PERMIT | READING);
    expect(pteAt(w, w.b, 0)).toBe(grantPteValue(g, HOST | MRO));
    expect(wtype(w, g)).toBe(t0);
    expect(writeFaults(w.b, MAPVA)).toBe(true);
    // A second, writable, mapping of the same grant adds GTF_writing.
    const r2 = map1(w.b, { hostAddr: slotVa(1), flags: HOST, ref: 8, dom: w.a.d.id });
    expect(r2).toMatchObject({ status: 0, handle: 1 });
    expect(flagsOf(w.a, 8)).toBe(PERMIT | READING | WRITING);
    expect(unmap1(w.b, { hostAddr: slotVa(1), handle: 1 })).toBe(0);
    expect(flagsOf(w.a, 8)).toBe(PERMIT | READING); // still read-mapped
    expect(unmap1(w.b, { hostAddr: slotVa(0), handle: 0 })).toBe(0);
    expect(flagsOf(w.a, 8)).toBe(PERMIT);
  });

  it('a read-only grant cannot be mapped writable (Xen: general_error), only read-only', () => {
    const w = world();
    grantV1(w.a, 8, w.b.d.id, w.a.s.buf[0], PERMIT | RO);
    expect(map1(w.b, { hostAddr: slotVa(0), flags: HOST, ref: 8, dom: w.a.d.id }).status).toBe(GNTST.general_error);
    expect(map1(w.b, { flags: DEV, ref: 8, dom: w.a.d.id }).status).toBe(GNTST.general_error);
    expect(flagsOf(w.a, 8)).toBe(PERMIT | RO);
    expect(pteAt(w, w.b, 0)).toBe(0n);
    const r = map1(w.b, { hostAddr: slotVa(0), flags: HOST | MRO, ref: 8, dom: w.a.d.id });
    expect(r.status).toBe(0);
    // Even with a read pin held, a write pin is refused.
    expect(map1(w.b, { hostAddr: slotVa(1), flags: HOST, ref: 8, dom: w.a.d.id }).status).toBe(GNTST.general_error);
    expect(flagsOf(w.a, 8)).toBe(PERMIT | RO | READING);
  });

  it('status codes: flags, domain, ref, entry, frame, address', () => {
    const w = world();
    const A = w.a.d.id, B = w.b.d.id;
    grantV1(w.a, 8, B, w.a.s.buf[0]);
    grantV1(w.a, 9, w.c.d.id, w.a.s.buf[0]);                   // granted to C, not B
    grantV1(w.a, 11, B, w.a.s.buf[0], Gnttab.GTF_accept_transfer);
    grantV1(w.a, 12, B, w.b.s.buf[0]);                         // a frame A does not own
    grantV1(w.a, 13, B, 5000);                                 // beyond memory
    grantV1(w.a, 14, B, w.a.s.buf[0], PERMIT | Gnttab.GTF_sub_page);
    const at = (i: number) => slotVa(i);
    expect(map1(w.b, { hostAddr: at(0), flags: MRO, ref: 8, dom: A }).status).toBe(GNTST.bad_gntref);
    expect(map1(w.b, { hostAddr: at(0), flags: HOST, ref: 8, dom: 999 }).status).toBe(GNTST.bad_domain);
    expect(map1(w.b, { hostAddr: at(0), flags: HOST, ref: 8, dom: DOMID_SELF }).status).toBe(GNTST.bad_domain);
    expect(map1(w.b, { hostAddr: at(0), flags: HOST, ref: 512, dom: A }).status).toBe(GNTST.bad_gntref);
    expect(map1(w.b, { hostAddr: at(0), flags: HOST, ref: 0xffffffff, dom: A }).status).toBe(GNTST.bad_gntref);
    expect(map1(w.b, { hostAddr: at(0), flags: HOST, ref: 9, dom: A }).status).toBe(GNTST.general_error);
    expect(map1(w.b, { hostAddr: at(0), flags: HOST, ref: 10, dom: A }).status).toBe(GNTST.general_error); // invalid entry
    expect(map1(w.b, { hostAddr: at(0), flags: HOST, ref: 11, dom: A }).status).toBe(GNTST.general_error);
    expect(map1(w.b, { hostAddr: at(0), flags: HOST, ref: 12, dom: A }).status).toBe(GNTST.bad_page);
    expect(map1(w.b, { hostAddr: at(0), flags: HOST, ref: 13, dom: A }).status).toBe(GNTST.bad_page);
    expect(map1(w.b, { hostAddr: at(0), flags: HOST, ref: 14, dom: A }).status).toBe(GNTST.general_error);
    // No L1 for the address, non-canonical, Xen's range: general_error (as Xen's create_grant_pv_mapping).
    expect(map1(w.b, { hostAddr: va(0x40000000), flags: HOST, ref: 8, dom: A }).status).toBe(GNTST.general_error);
    expect(map1(w.b, { hostAddr: 0x0000900000000000n, flags: HOST, ref: 8, dom: A }).status).toBe(GNTST.general_error);
    expect(map1(w.b, { hostAddr: 0xffff800000000000n, flags: HOST, ref: 8, dom: A }).status).toBe(GNTST.general_error);
    // Nothing stayed pinned or flagged by the failures.
    for (const ref of [8, 9, 11, 12, 13, 14]) expect(flagsOf(w.a, ref) & (READING | WRITING)).toBe(0);
    expect(grantTableOf(w.a.d).active.size).toBe(0);
    expect(maptrackOf(w.h.xen, B).count).toBe(0);
  });

  it('a grant in use by one domain cannot be used by another', () => {
    const w = world();
    grantV1(w.a, 8, w.b.d.id, w.a.s.buf[0]);
    expect(map1(w.b, { hostAddr: slotVa(0), flags: HOST, ref: 8, dom: w.a.d.id }).status).toBe(0);
    // The granter re-targets the entry at C while B still has it mapped: C is refused.
    grantV1(w.a, 8, w.c.d.id, w.a.s.buf[0]);
    expect(map1(w.c, { hostAddr: slotVa(0), flags: HOST, ref: 8, dom: w.a.d.id }).status).toBe(GNTST.general_error);
    expect(copy1(w.c, { source: { ref: 8, domid: w.a.d.id, offset: 0 }, dest: { gmfn: w.c.s.buf[0], domid: DOMID_SELF, offset: 0 }, len: 8, flags: Gnttab.GNTCOPY_source_gref })).toBe(GNTST.general_error);
  });

  it('an entry rewritten while mapped changes nothing: Xen works from the active entry', () => {
    const w = world();
    const g = w.a.s.buf[0], other = w.a.s.buf[5];
    grantV1(w.a, 8, w.b.d.id, g);
    const r = map1(w.b, { hostAddr: slotVa(0), flags: HOST | MRO, ref: 8, dom: w.a.d.id });
    // A misbehaving granter points the entry elsewhere and drops every flag.
    w.h.phys.dv.setUint32(grantTableOf(w.a.d).entryPa(8) + 4, other, true);
    w.h.phys.dv.setUint16(grantTableOf(w.a.d).entryPa(8), 0, true);
    // A second mapping still gets the pinned frame (no entry checks while pinned).
    const r2 = map1(w.b, { flags: DEV | MRO, ref: 8, dom: w.a.d.id });
    expect(r2).toMatchObject({ status: 0, devBusAddr: BigInt(g) << 12n });
    expect(unmap1(w.b, { devBusAddr: BigInt(g) << 12n, handle: r2.handle })).toBe(0);
    expect(unmap1(w.b, { hostAddr: slotVa(0), handle: r.handle })).toBe(0);
    expect(flagsOf(w.a, 8)).toBe(0); // GTF_reading cleared again when the last pin went
  });

  it('keeps the granted frame referenced while mapped, even when the granter gives it back', () => {
    const w = world();
    // A frame of A that A does not map itself.
    const [g] = w.h.alloc(w.a.d);
    fill(w, g, 0x5a);
    grantV1(w.a, 8, w.b.d.id, g);
    expect(map1(w.b, { hostAddr: slotVa(0), flags: HOST, ref: 8, dom: w.a.d.id }).status).toBe(0);
    expect(removeGuestPage(w.h.pi, w.a.d, g)).toBe(0);
    expect(w.h.xen.frames.owner[g]).toBe(w.a.d.id); // not freed: still mapped
    expect(w.h.pi.flags[g] & PgFlag.PENDING_FREE).toBeTruthy();
    expect(readVa(w.b, MAPVA, 1)[0]).toBe(0x5a);
    // New pins of a given-back frame are refused (bad_page); the existing one is fine.
    grantV1(w.a, 9, w.b.d.id, g);
    expect(map1(w.b, { hostAddr: slotVa(1), flags: HOST, ref: 9, dom: w.a.d.id }).status).toBe(GNTST.bad_page);
    expect(unmap1(w.b, { hostAddr: slotVa(0), handle: 0 })).toBe(0);
    expect(w.h.xen.frames.owner[g]).toBe(-1); // freed with the last reference
  });

  it('a page table of the granter can be granted read-only but never mapped writable', () => {
    const w = world();
    const l1 = w.a.s.l1; // validated L1 of A
    grantV1(w.a, 8, w.b.d.id, l1);
    expect(map1(w.b, { hostAddr: slotVa(0), flags: HOST, ref: 8, dom: w.a.d.id }).status).toBe(GNTST.general_error);
    expect(flagsOf(w.a, 8)).toBe(PERMIT);
    expect(map1(w.b, { hostAddr: slotVa(0), flags: HOST | MRO, ref: 8, dom: w.a.d.id }).status).toBe(0);
    // And a frame mapped writable through a grant cannot become a page table.
    const [g] = w.h.alloc(w.a.d);
    grantV1(w.a, 9, w.b.d.id, g);
    expect(map1(w.b, { hostAddr: slotVa(1), flags: HOST, ref: 9, dom: w.a.d.id }).status).toBe(0);
    expect(mmuUpdate(w.a.v, [[(BigInt(w.a.s.l2) << 12n) | (5n * 8n), (BigInt(g) << 12n) | 7n]]).rc).toBe(ERR.EINVAL);
  });

  it('GNTMAP_contains_pte and GNTMAP_application_map; guest-available bits; misaligned PTE addresses', () => {
    const w = world();
    const g = w.a.s.buf[0];
    grantV1(w.a, 8, w.b.d.id, g);
    const pteMa = (i: number) => BigInt(w.b.s.l1b * 4096 + i * 8);
    const flags = HOST | Gnttab.GNTMAP_contains_pte | Gnttab.GNTMAP_application_map | (1 << 16);
    expect(map1(w.b, { hostAddr: pteMa(5) + 4n, flags, ref: 8, dom: w.a.d.id }).status).toBe(GNTST.general_error);
    expect(map1(w.b, { hostAddr: BigInt(w.b.s.buf[0] * 4096), flags, ref: 8, dom: w.a.d.id }).status).toBe(GNTST.general_error); // not an L1
    expect(map1(w.b, { hostAddr: BigInt(w.a.s.l1b * 4096), flags, ref: 8, dom: w.a.d.id }).status).toBe(GNTST.general_error); // not B's
    const r = map1(w.b, { hostAddr: pteMa(5), flags, ref: 8, dom: w.a.d.id });
    expect(r.status).toBe(0);
    const e = pteAt(w, w.b, 5);
    expect(e).toBe(grantPteValue(g, flags));
    expect(e & (1n << 52n)).toBe(0n); // a user mapping: no _PAGE_GUEST_KERNEL
    expect(e & 0x200n).toBe(0x200n);  // avail bit 0 (Linux's _PAGE_SPECIAL)
    expect(unmap1(w.b, { hostAddr: pteMa(4), handle: r.handle })).toBe(GNTST.general_error); // wrong PTE
    expect(unmap1(w.b, { hostAddr: pteMa(5), handle: r.handle })).toBe(0);
    expect(pteAt(w, w.b, 5)).toBe(0n);
  });

  it('device mappings: dev_bus_addr checks, partial unmaps of a host+device mapping', () => {
    const w = world();
    const g = w.a.s.buf[0], dba = BigInt(g) << 12n;
    grantV1(w.a, 8, w.b.d.id, g);
    const c0 = count(w, g), t0 = wtype(w, g);
    const r = map1(w.b, { hostAddr: slotVa(0), flags: HOST | DEV, ref: 8, dom: w.a.d.id });
    expect(r).toMatchObject({ status: 0, devBusAddr: dba });
    expect([count(w, g) - c0, wtype(w, g) - t0]).toEqual([2, 2]);
    expect(readGrantEntry(w.h.xen, w.a.d.id, 8)!.pin).toBe(0x10001);
    expect(unmap1(w.b, { devBusAddr: dba + 4096n, handle: r.handle })).toBe(GNTST.bad_dev_addr);
    expect(unmap1(w.b, { hostAddr: slotVa(0), devBusAddr: dba + 4096n, handle: r.handle })).toBe(GNTST.bad_dev_addr);
    expect(pteAt(w, w.b, 0)).toBe(grantPteValue(g, HOST)); // nothing done
    expect(unmap1(w.b, { devBusAddr: dba, handle: r.handle })).toBe(0); // device part only
    expect(readGrantEntry(w.h.xen, w.a.d.id, 8)!.pin).toBe(0x1);
    expect(pteAt(w, w.b, 0)).toBe(grantPteValue(g, HOST));
    expect(unmap1(w.b, { devBusAddr: dba, handle: r.handle })).toBe(0); // nothing left to do there: okay
    // A host-only mapping ignores dev_bus_addr (Xen checks it only for device mappings).
    expect(unmap1(w.b, { hostAddr: slotVa(0), devBusAddr: 0x1000n, handle: r.handle })).toBe(0);
    expect([count(w, g) - c0, wtype(w, g) - t0]).toEqual([0, 0]);
    expect(maptrackOf(w.h.xen, w.b.d.id).count).toBe(0);
    expect(unmap1(w.b, { hostAddr: slotVa(0), handle: r.handle })).toBe(GNTST.bad_handle);
    expect(unmap1(w.b, { hostAddr: slotVa(0), handle: 77 })).toBe(GNTST.bad_handle);
  });

  it('host mappings need an address space; an in-process backend maps devices only', () => {
    const w = world();
    grantV1(w.a, 8, 0x7fe0, w.a.s.buf[0]); // a backend identity with no Domain object
    expect(mapGrantRef(w.h.xen, 0x7fe0, { hostAddr: MAPVA, flags: HOST, ref: 8, dom: w.a.d.id }).status).toBe(GNTST.general_error);
    const r = mapGrantRef(w.h.xen, 0x7fe0, { hostAddr: 0, flags: DEV, ref: 8, dom: w.a.d.id });
    expect(r).toMatchObject({ status: 0, handle: 0, devBusAddr: w.a.s.buf[0] * 4096 });
    expect(flagsOf(w.a, 8)).toBe(PERMIT | READING | WRITING);
    expect(unmapGrantRef(w.h.xen, 0x7fe0, { hostAddr: 0, devBusAddr: r.devBusAddr, handle: r.handle })).toBe(0);
    expect(flagsOf(w.a, 8)).toBe(PERMIT);
  });

  it('an implicit unmap (the PTE overwritten by mmu_update) drops the PTE\'s references; unmap then fails', () => {
    const w = world();
    const g = w.a.s.buf[0];
    grantV1(w.a, 8, w.b.d.id, g);
    const c0 = count(w, g), t0 = wtype(w, g);
    const r = map1(w.b, { hostAddr: slotVa(2), flags: HOST, ref: 8, dom: w.a.d.id });
    expect(mmuUpdate(w.b.v, [[(BigInt(w.b.s.l1b) << 12n) | 16n, 0n]]).rc).toBe(0);
    expect([count(w, g), wtype(w, g)]).toEqual([c0, t0]);
    expect(unmap1(w.b, { hostAddr: slotVa(2), handle: r.handle })).toBe(GNTST.general_error);
    expect(readGrantEntry(w.h.xen, w.a.d.id, 8)!.pin).toBe(1); // as in Xen: in use until B goes
    // Mapping over a slot that holds a grant PTE drops that PTE's references too.
    const r2 = map1(w.b, { hostAddr: slotVa(2), flags: HOST | MRO, ref: 8, dom: w.a.d.id });
    const r3 = map1(w.b, { hostAddr: slotVa(2), flags: HOST | MRO, ref: 8, dom: w.a.d.id });
    expect([r2.status, r3.status]).toEqual([0, 0]);
    expect(count(w, g)).toBe(c0 + 1);
    gnttabReleaseDomain(w.h.xen, w.b.d.id);
    expect(grantTableOf(w.a.d).active.size).toBe(0);
    expect(flagsOf(w.a, 8)).toBe(PERMIT);
  });

  it('unmap_and_replace moves another PTE into the grant\'s place', () => {
    const w = world();
    const g = w.a.s.buf[0], mine = w.b.s.buf[3];
    grantV1(w.a, 8, w.b.d.id, g);
    const r = map1(w.b, { hostAddr: slotVa(0), flags: HOST, ref: 8, dom: w.a.d.id });
    expect(mmuUpdate(w.b.v, [[(BigInt(w.b.s.l1b) << 12n) | 8n, (BigInt(mine) << 12n) | 7n]]).rc).toBe(0);
    const c0 = count(w, mine);
    expect(unmapReplace(w.b, slotVa(0), slotVa(0), r.handle).status).toBe(GNTST.general_error);
    expect(unmapReplace(w.b, slotVa(0), slotVa(1), r.handle)).toEqual({ rc: 0, status: 0 });
    expect(pteAt(w, w.b, 1)).toBe(0n);
    expect(w.h.pi.count[mine]).toBe(c0);
    expect((pteAt(w, w.b, 0) >> 12n) & 0xffffffffn).toBe(BigInt(mine));
    expect(flagsOf(w.a, 8)).toBe(PERMIT);
  });

  it('batches: each op has its own status; handles are reused lowest first', () => {
    const w = world();
    const A = w.a.d.id, B = w.b.d.id;
    grantV1(w.a, 8, B, w.a.s.buf[0]);
    grantV1(w.a, 9, B, w.a.s.buf[1]);
    const out = mapOps(w.b, [
      { hostAddr: slotVa(0), flags: HOST, ref: 8, dom: A },
      { hostAddr: slotVa(1), flags: HOST, ref: 10, dom: A },
      { hostAddr: slotVa(2), flags: HOST, ref: 9, dom: A },
    ]);
    expect(out.map((o) => [o.rc, o.status])).toEqual([[0, 0], [0, GNTST.general_error], [0, 0]]);
    expect(out[1].handle).toBe(0xdeadbeef); // untouched on failure
    expect([out[0].handle, out[2].handle]).toEqual([0, 1]);
    expect(unmapOps(w.b, [{ hostAddr: slotVa(0), handle: 0 }, { hostAddr: slotVa(0), handle: 0 }]).status).toEqual([0, GNTST.bad_handle]);
    expect(map1(w.b, { hostAddr: slotVa(0), flags: HOST, ref: 8, dom: A }).handle).toBe(0);
  });

  it('pin counters refuse an overflow of the counter being incremented; a full maptrack gives no_space', () => {
    const w = world();
    const A = w.a.d.id;
    grantV1(w.a, 8, w.b.d.id, w.a.s.buf[0]);
    for (let i = 0; i < 128; i++) expect(map1(w.b, { flags: DEV | MRO, ref: 8, dom: A }).status).toBe(0);
    expect(map1(w.b, { flags: DEV | MRO, ref: 8, dom: A }).status).toBe(GNTST.general_error);
    expect(map1(w.b, { flags: DEV | HOST | MRO, hostAddr: slotVa(0), ref: 8, dom: A }).status).toBe(GNTST.general_error);
    expect(map1(w.b, { flags: DEV, ref: 8, dom: A }).status).toBe(0); // another counter
    expect(copy1(w.b, { source: { ref: 8, domid: A, offset: 0 }, dest: { gmfn: w.b.s.buf[1], domid: DOMID_SELF, offset: 0 }, len: 1, flags: 1 })).toBe(0);
    expect(readGrantEntry(w.h.xen, A, 8)!.pin).toBe(0x80010000);
    maptrackOf(w.h.xen, w.b.d.id).limit = 128;
    grantV1(w.a, 9, w.b.d.id, w.a.s.buf[1]);
    expect(map1(w.b, { flags: DEV, ref: 9, dom: A }).status).toBe(GNTST.no_space);
  });

  it('hypercall errnos: -ENOSYS, -EINVAL for a negative count or argument bits, -EFAULT', () => {
    const w = world();
    expect(hc(w.b.v, 20, 13, va(BUF), 1)).toBe(ERR.ENOSYS);
    expect(hc(w.b.v, 20, Gnttab.GNTTABOP_map_grant_ref, va(BUF), 0x80000000)).toBe(ERR.EINVAL);
    expect(hc(w.b.v, 20, Gnttab.GNTTABOP_map_grant_ref | (1 << 12), va(BUF), 1)).toBe(ERR.EINVAL);
    expect(hc(w.b.v, 20, Gnttab.GNTTABOP_map_grant_ref, va(0xffff800000001000), 1)).toBe(ERR.EFAULT);
    expect(hc(w.b.v, 20, Gnttab.GNTTABOP_map_grant_ref, va(0x40000000), 1)).toBe(ERR.EFAULT);
    expect(hc(w.b.v, 20, Gnttab.GNTTABOP_map_grant_ref, va(0x40000000), 0)).toBe(0);
    expect(hc(w.b.v, 20, Gnttab.GNTTABOP_unmap_grant_ref, va(0x40000000), 1)).toBe(ERR.EFAULT);
    expect(hc(w.b.v, 20, Gnttab.GNTTABOP_copy, va(0x40000000), 1)).toBe(ERR.EFAULT);
    // A batch whose second op is unreadable: the first is done, then -EFAULT.
    grantV1(w.a, 8, w.b.d.id, w.a.s.buf[0]);
    const lastOff = 8 * 4096 - 32;
    const b = new Uint8Array(32), dv = new DataView(b.buffer);
    dv.setUint32(8, DEV, true); dv.setUint32(12, 8, true); dv.setUint16(16, w.a.d.id, true);
    w.b.s.write(lastOff, b);
    expect(hc(w.b.v, 20, Gnttab.GNTTABOP_map_grant_ref, va(BUF + lastOff), 2)).toBe(ERR.EFAULT);
    expect(new DataView(w.b.s.read(lastOff + 18, 2).buffer).getInt16(0, true)).toBe(0);
    expect(flagsOf(w.a, 8)).toBe(PERMIT | READING | WRITING);
  });
});

describe('copy', () => {
  it('moves data between a grant and a local frame in both directions, leaving no flags behind', () => {
    const w = world();
    const A = w.a.d.id, B = w.b.d.id;
    const g = w.a.s.buf[0];
    w.h.phys.u8.set([1, 2, 3, 4, 5, 6], g * 4096 + 100);
    grantV1(w.a, 8, B, g);
    const local = w.b.s.buf[4];
    expect(copy1(w.b, { source: { ref: 8, domid: A, offset: 100 }, dest: { gmfn: local, domid: DOMID_SELF, offset: 10 }, len: 6, flags: Gnttab.GNTCOPY_source_gref })).toBe(0);
    expect([...w.h.phys.u8.slice(local * 4096 + 10, local * 4096 + 16)]).toEqual([1, 2, 3, 4, 5, 6]);
    w.h.phys.u8.set([9, 9], local * 4096);
    expect(copy1(w.b, { source: { gmfn: local, domid: DOMID_SELF, offset: 0 }, dest: { ref: 8, domid: A, offset: 4094 }, len: 2, flags: Gnttab.GNTCOPY_dest_gref })).toBe(0);
    expect([...w.h.phys.u8.slice(g * 4096 + 4094, g * 4096 + 4096)]).toEqual([9, 9]);
    expect(flagsOf(w.a, 8)).toBe(PERMIT);
    expect(grantTableOf(w.a.d).active.size).toBe(0);
  });

  it('a third party copies between two domains\' grants', () => {
    const w = world();
    const A = w.a.d.id, B = w.b.d.id, C = w.c.d.id;
    const ga = w.a.s.buf[0], gc = w.c.s.buf[0];
    w.h.phys.u8.set([7, 7, 7], ga * 4096);
    grantV1(w.a, 8, B, ga, PERMIT | RO);
    grantV1(w.c, 20, B, gc);
    expect(copy1(w.b, { source: { ref: 8, domid: A, offset: 0 }, dest: { ref: 20, domid: C, offset: 5 }, len: 3, flags: 3 })).toBe(0);
    expect([...w.h.phys.u8.slice(gc * 4096 + 5, gc * 4096 + 8)]).toEqual([7, 7, 7]);
    // A read-only grant cannot be a destination.
    expect(copy1(w.b, { source: { ref: 20, domid: C, offset: 0 }, dest: { ref: 8, domid: A, offset: 0 }, len: 3, flags: 3 })).toBe(GNTST.general_error);
    expect([flagsOf(w.a, 8), flagsOf(w.c, 20)]).toEqual([PERMIT | RO, PERMIT]);
  });

  it('status codes: bad_copy_arg, permission_denied, bad_domain, bad_gntref, bad_page, general_error', () => {
    const w = world();
    const A = w.a.d.id, B = w.b.d.id;
    grantV1(w.a, 8, B, w.a.s.buf[0]);
    grantV1(w.a, 9, w.c.d.id, w.a.s.buf[0]);
    grantV1(w.a, 10, B, w.a.s.l1);
    const local = { gmfn: w.b.s.buf[0], domid: DOMID_SELF, offset: 0 };
    const src = (ref: number, domid = A) => ({ ref, domid, offset: 0 });
    const S = Gnttab.GNTCOPY_source_gref, D = Gnttab.GNTCOPY_dest_gref;
    const st = copyOps(w.b, [
      { source: src(8), dest: { ...local, offset: 4000 }, len: 100, flags: S },              // crosses the page
      { source: { ...src(8), offset: 4095 }, dest: local, len: 2, flags: S },                 // crosses the page
      { source: src(8), dest: { gmfn: w.b.s.buf[0], domid: B, offset: 0 }, len: 1, flags: S }, // frame with a domid
      { source: { gmfn: w.a.s.buf[0], domid: A, offset: 0 }, dest: local, len: 1, flags: 0 },
      { source: src(8, 999), dest: local, len: 1, flags: S },
      { source: src(600), dest: local, len: 1, flags: S },
      { source: src(9), dest: local, len: 1, flags: S },                                       // granted to C
      { source: { gmfn: w.a.s.buf[0], domid: DOMID_SELF, offset: 0 }, dest: local, len: 1, flags: 0 }, // not B's frame
      { source: src(8), dest: { gmfn: w.b.s.l1, domid: DOMID_SELF, offset: 0 }, len: 1, flags: S },     // B's page table
      { source: local, dest: src(10), len: 1, flags: D },                                       // A's page table as dest
      { source: src(8), dest: local, len: 0, flags: S },
      { source: { ...src(9), offset: 4095 }, dest: local, len: 2, flags: S },                 // claims come first
    ]);
    expect(st.rc).toBe(0);
    expect(st.status).toEqual([
      GNTST.bad_copy_arg, GNTST.bad_copy_arg, GNTST.permission_denied, GNTST.permission_denied, GNTST.bad_domain,
      GNTST.bad_gntref, GNTST.general_error, GNTST.bad_page, GNTST.general_error, GNTST.general_error, GNTST.okay,
      GNTST.general_error,
    ]);
    // A batch cannot name another domain's frame by reusing the previous op's domains.
    w.h.phys.u8[w.a.s.buf[3] * 4096] = 0x11;
    expect(copyOps(w.b, [
      { source: src(8), dest: src(8), len: 1, flags: S | D },
      { source: src(8), dest: { gmfn: w.a.s.buf[3], domid: A, offset: 0 }, len: 1, flags: S },
    ]).status).toEqual([0, GNTST.permission_denied]);
    expect(w.h.phys.u8[w.a.s.buf[3] * 4096]).toBe(0x11);
    for (const r of [8, 9, 10]) expect(flagsOf(w.a, r) & (READING | WRITING)).toBe(0);
    expect(grantTableOf(w.a.d).active.size).toBe(0);
  });

  it('copies to and from a grant that is also mapped keep the mapping\'s flags', () => {
    const w = world();
    const A = w.a.d.id;
    grantV1(w.a, 8, w.b.d.id, w.a.s.buf[0]);
    map1(w.b, { hostAddr: slotVa(0), flags: HOST | MRO, ref: 8, dom: A });
    expect(copy1(w.b, { source: { gmfn: w.b.s.buf[0], domid: DOMID_SELF, offset: 0 }, dest: { ref: 8, domid: A, offset: 0 }, len: 4, flags: 2 })).toBe(0);
    expect(flagsOf(w.a, 8)).toBe(PERMIT | READING);
    expect(readGrantEntry(w.h.xen, A, 8)!.pin).toBe(0x100);
  });

  it('backend helpers copyFromGrant / copyToGrant', () => {
    const w = world();
    const g = w.a.s.buf[0];
    w.h.phys.u8.set([1, 2, 3], g * 4096 + 8);
    grantV1(w.a, 8, 0, g, PERMIT | RO);
    expect(copyFromGrant(w.h.xen, 0, w.a.d.id, 8, 8, 3)).toEqual({ status: 0, data: new Uint8Array([1, 2, 3]) });
    expect(copyToGrant(w.h.xen, 0, w.a.d.id, 8, 0, new Uint8Array([1]))).toBe(GNTST.general_error);
    expect(copyFromGrant(w.h.xen, 1, w.a.d.id, 8, 0, 1).status).toBe(GNTST.general_error);
    expect(copyFromGrant(w.h.xen, 0, w.a.d.id, 8, 4095, 2).status).toBe(GNTST.bad_copy_arg);
    grantV1(w.a, 9, 0, g);
    expect(copyToGrant(w.h.xen, 0, w.a.d.id, 9, 4000, new Uint8Array([5, 6]))).toBe(0);
    expect([...w.h.phys.u8.slice(g * 4096 + 4000, g * 4096 + 4002)]).toEqual([5, 6]);
    expect([flagsOf(w.a, 8), flagsOf(w.a, 9)]).toEqual([PERMIT | RO, PERMIT]);
  });
});

describe('version 2', () => {
  it('set_version/get_version: status frames appear, entries are 16 bytes, status bits live apart', () => {
    const w = world({ bPriv: true });
    expect(getVersion(w.a, DOMID_SELF)).toEqual({ rc: 0, version: 1 });
    expect(setVersion(w.a, 3)).toEqual({ rc: ERR.EINVAL, version: 1 });
    expect(getStatusFrames(w.a, DOMID_SELF, 1).status).toBe(GNTST.general_error);
    expect(getStatusFrames(w.a, DOMID_SELF, 0).status).toBe(0);
    expect(setVersion(w.a, 2)).toEqual({ rc: 0, version: 2 });
    expect(getVersion(w.a, w.a.d.id).version).toBe(2);
    expect(getVersion(w.b, w.a.d.id).version).toBe(2); // privileged
    expect(getVersion(w.c, w.a.d.id).rc).toBe(ERR.EPERM);
    expect(getVersion(w.a, 999).rc).toBe(ERR.ESRCH);
    expect(grantTableOf(w.a.d).nrEntries).toBe(256);
    const sf = getStatusFrames(w.a, DOMID_SELF, 1);
    expect(sf.status).toBe(0);
    expect(w.h.xen.frames.owner[sf.frames[0]]).toBe(w.a.d.id);
    expect(getStatusFrames(w.a, DOMID_SELF, 2).status).toBe(GNTST.general_error);
    // Growing to 9 frames needs a second status frame.
    expect(setupTable(w.a, DOMID_SELF, 9).status).toBe(0);
    expect(getStatusFrames(w.a, DOMID_SELF, 2).status).toBe(0);
    const g = w.a.s.buf[0];
    grantV2(w.a, 300, { domid: w.b.d.id, flags: PERMIT, frame: g });
    const r = map1(w.b, { hostAddr: slotVa(0), flags: HOST, ref: 300, dom: w.a.d.id });
    expect(r.status).toBe(0);
    expect(flagsOf(w.a, 300)).toBe(PERMIT);
    expect(statusOf(w.a, 300)).toBe(READING | WRITING);
    expect(unmap1(w.b, { hostAddr: slotVa(0), handle: r.handle })).toBe(0);
    expect(statusOf(w.a, 300)).toBe(0);
    expect(setVersion(w.a, 2)).toEqual({ rc: 0, version: 2 }); // same version: nothing to do
  });

  it('switching needs every grant from 8 up unpinned; reserved entries are carried over', () => {
    const w = world();
    const A = w.a.d.id, B = w.b.d.id;
    grantV1(w.a, 1, B, w.a.s.buf[1]); // the toolstack's xenstore entry
    grantV1(w.a, 8, B, w.a.s.buf[0]);
    const r1 = map1(w.b, { hostAddr: slotVa(1), flags: HOST, ref: 1, dom: A });
    const r8 = map1(w.b, { hostAddr: slotVa(0), flags: HOST, ref: 8, dom: A });
    expect(setVersion(w.a, 2)).toEqual({ rc: ERR.EBUSY, version: 1 });
    expect(unmap1(w.b, { hostAddr: slotVa(0), handle: r8.handle })).toBe(0);
    expect(setVersion(w.a, 2)).toEqual({ rc: 0, version: 2 });
    // Entry 1 kept (reading/writing now in the status frame), entry 8 cleared.
    expect(readGrantEntry(w.h.xen, A, 1)).toMatchObject({ flags: PERMIT, domid: B, frame: w.a.s.buf[1], status: READING | WRITING });
    expect(readGrantEntry(w.h.xen, A, 8)).toMatchObject({ flags: 0, frame: 0 });
    expect(unmap1(w.b, { hostAddr: slotVa(1), handle: r1.handle })).toBe(0);
    expect(readGrantEntry(w.h.xen, A, 1)!.status).toBe(0);
    // Back to v1: -ERANGE while a reserved entry is transitive, -EBUSY while a status frame is mapped.
    grantV2(w.a, 2, { domid: B, flags: Gnttab.GTF_transitive, transDom: w.c.d.id, transRef: 0 });
    expect(setVersion(w.a, 1)).toEqual({ rc: ERR.ERANGE, version: 2 });
    grantV2(w.a, 2, { domid: 0, flags: 0 });
    const [sf] = getStatusFrames(w.a, DOMID_SELF, 1).frames;
    expect(mmuUpdate(w.a.v, [[(BigInt(w.a.s.l1b) << 12n), (BigInt(sf) << 12n) | 5n]]).rc).toBe(0);
    expect(setVersion(w.a, 1)).toEqual({ rc: ERR.EBUSY, version: 2 });
    expect(mmuUpdate(w.a.v, [[(BigInt(w.a.s.l1b) << 12n), 0n]]).rc).toBe(0);
    expect(setVersion(w.a, 1)).toEqual({ rc: 0, version: 1 });
    expect(w.h.xen.frames.owner[sf]).toBe(-1);
    expect(readGrantEntry(w.h.xen, A, 1)).toMatchObject({ flags: PERMIT, domid: B, frame: w.a.s.buf[1] });
  });

  it('max version 1 refuses v2 with -ENOSYS, as before set_version existed (guests then use v1)', () => {
    const h = new Host();
    const a = dom(h, 'A', { gnttab: { maxVersion: 1 } });
    expect(setVersion(a, 2)).toEqual({ rc: ERR.ENOSYS, version: 1 });
    expect(setVersion(a, 1)).toEqual({ rc: 0, version: 1 });
  });

  it('sub-page grants: copy within the range only, never mapped', () => {
    const w = world();
    const A = w.a.d.id, B = w.b.d.id;
    setVersion(w.a, 2);
    const g = w.a.s.buf[0];
    grantV2(w.a, 8, { domid: B, flags: PERMIT | Gnttab.GTF_sub_page, frame: g, off: 100, len: 50 });
    const local = { gmfn: w.b.s.buf[0], domid: DOMID_SELF, offset: 0 };
    const S = Gnttab.GNTCOPY_source_gref;
    expect(copyOps(w.b, [
      { source: { ref: 8, domid: A, offset: 100 }, dest: local, len: 50, flags: S },
      { source: { ref: 8, domid: A, offset: 99 }, dest: local, len: 2, flags: S },
      { source: { ref: 8, domid: A, offset: 140 }, dest: local, len: 11, flags: S },
    ]).status).toEqual([0, GNTST.general_error, GNTST.general_error]);
    expect(map1(w.b, { hostAddr: slotVa(0), flags: HOST | MRO, ref: 8, dom: A }).status).toBe(GNTST.general_error);
    expect(statusOf(w.a, 8)).toBe(0);
  });

  it('transitive grants: B copies A\'s page through C\'s grant; never mapped; one level only', () => {
    const w = world();
    const A = w.a.d.id, B = w.b.d.id, C = w.c.d.id;
    const g = w.a.s.buf[0];
    w.h.phys.u8.set([4, 5, 6], g * 4096 + 10);
    grantV1(w.a, 8, C, g, PERMIT | RO);                          // A grants C
    setVersion(w.c, 2);
    grantV2(w.c, 9, { domid: B, flags: Gnttab.GTF_transitive, transDom: A, transRef: 8 }); // C passes it on to B
    const local = w.b.s.buf[0];
    expect(copy1(w.b, { source: { ref: 9, domid: C, offset: 10 }, dest: { gmfn: local, domid: DOMID_SELF, offset: 0 }, len: 3, flags: 1 })).toBe(0);
    expect([...w.h.phys.u8.slice(local * 4096, local * 4096 + 3)]).toEqual([4, 5, 6]);
    // Writing through it fails: A's grant is read-only.
    expect(copy1(w.b, { source: { gmfn: local, domid: DOMID_SELF, offset: 0 }, dest: { ref: 9, domid: C, offset: 0 }, len: 1, flags: 2 })).toBe(GNTST.general_error);
    expect(map1(w.b, { hostAddr: slotVa(0), flags: HOST | MRO, ref: 9, dom: C }).status).toBe(GNTST.general_error);
    // Two levels: C grants B transitively a transitive grant of A's (A v2 too) → refused.
    setVersion(w.a, 2);
    grantV2(w.a, 8, { domid: C, flags: Gnttab.GTF_transitive, transDom: B, transRef: 8 });
    expect(copy1(w.b, { source: { ref: 9, domid: C, offset: 10 }, dest: { gmfn: local, domid: DOMID_SELF, offset: 0 }, len: 1, flags: 1 })).toBe(GNTST.general_error);
    expect([statusOf(w.a, 8), statusOf(w.c, 9)]).toEqual([0, 0]);
    expect(grantTableOf(w.a.d).active.size + grantTableOf(w.c.d).active.size).toBe(0);
  });
});

describe('transfer, swap, dump, cache_flush', () => {
  it('transfer hands an unreferenced frame to a domain that accepted it', () => {
    const w = world();
    const A = w.a.d.id, B = w.b.d.id;
    const [f] = w.h.alloc(w.b.d);
    w.h.phys.u8[f * 4096] = 0x77;
    grantV1(w.a, 8, B, 0x42, Gnttab.GTF_accept_transfer); // A accepts into its pfn 0x42
    const totA = w.a.d.totPages, totB = w.b.d.totPages;
    expect(transferOps(w.b, [{ mfn: f, domid: A, ref: 8 }])).toEqual({ rc: 0, status: [0] });
    expect(w.h.xen.frames.owner[f]).toBe(A);
    expect(w.h.xen.frames.m2p[f]).toBe(0x42);
    expect(readGrantEntry(w.h.xen, A, 8)).toMatchObject({ flags: Gnttab.GTF_accept_transfer | Gnttab.GTF_transfer_committed | Gnttab.GTF_transfer_completed, frame: f });
    expect([w.a.d.totPages - totA, w.b.d.totPages - totB]).toEqual([1, -1]);
    expect(w.h.phys.u8[f * 4096]).toBe(0x77);
  });

  it('transfer failures: bad_page keeps the frame, later failures lose it', () => {
    const w = world();
    const A = w.a.d.id, B = w.b.d.id;
    const [f1, f2, f3] = w.h.alloc(w.b.d, 3);
    grantV1(w.a, 8, B, 0, Gnttab.GTF_accept_transfer);
    expect(transferOps(w.b, [
      { mfn: w.b.s.buf[0], domid: A, ref: 8 },   // mapped by B itself: referenced
      { mfn: w.a.s.buf[0], domid: A, ref: 8 },   // not B's
      { mfn: 1 << 30, domid: A, ref: 8 },        // no such frame
      { mfn: grantTableOf(w.b.d).shared[0], domid: A, ref: 8 }, // a Xen-shared frame
      { mfn: f1, domid: 999, ref: 8 },
      { mfn: f2, domid: A, ref: 9 },              // A did not accept in ref 9
      { mfn: f3, domid: A, ref: 8 },
    ]).status).toEqual([GNTST.bad_page, GNTST.bad_page, GNTST.bad_page, GNTST.bad_page, GNTST.bad_domain, GNTST.general_error, 0]);
    expect([f1, f2].map((f) => w.h.xen.frames.owner[f])).toEqual([-1, -1]);
    expect(w.h.xen.frames.owner[f3]).toBe(A);
    // The entry is used up: flags are no longer exactly GTF_accept_transfer.
    const [f4] = w.h.alloc(w.b.d);
    expect(transferOps(w.b, [{ mfn: f4, domid: A, ref: 8 }]).status).toEqual([GNTST.general_error]);
  });

  it('transfer can be turned off (-EOPNOTSUPP), as with Xen\'s gnttab=no-transfer', () => {
    const w = world();
    gnttabHost(w.h.xen).transfer = false;
    expect(transferOps(w.b, [{ mfn: w.b.s.buf[5], domid: w.a.d.id, ref: 8 }]).rc).toBe(ERR.EOPNOTSUPP);
  });

  it('swap_grant_ref swaps unused entries; eagain while one is in use', () => {
    const w = world();
    grantV1(w.a, 8, 1, 100);
    grantV1(w.a, 9, w.b.d.id, w.a.s.buf[0], PERMIT | RO);
    expect(swapOps(w.a, [[8, 9], [8, 8], [8, 600]]).status).toEqual([0, 0, GNTST.bad_gntref]);
    expect(readGrantEntry(w.h.xen, w.a.d.id, 8)).toMatchObject({ flags: PERMIT | RO, domid: w.b.d.id, frame: w.a.s.buf[0] });
    expect(readGrantEntry(w.h.xen, w.a.d.id, 9)).toMatchObject({ flags: PERMIT, domid: 1, frame: 100 });
    map1(w.b, { flags: DEV | MRO, ref: 8, dom: w.a.d.id });
    expect(swapOps(w.a, [[8, 9], [9, 8]]).status).toEqual([GNTST.eagain, GNTST.eagain]);
  });

  it('dump_table is gone from the hypercall (-ENOSYS) and is a debug dump; cache_flush checks its arguments and the grant', () => {
    const w = world({ bPriv: true });
    grantV1(w.a, 8, w.b.d.id, w.a.s.buf[0]);
    expect(dumpTableOp(w.a, DOMID_SELF).rc).toBe(ERR.ENOSYS);
    expect(dumpTable(w.h.xen, w.a.d.id)).toBe(true);
    expect(w.h.xen.log.some((l) => l.includes('[8] flags 1'))).toBe(true);
    expect(dumpTable(w.h.xen, 999)).toBe(false);
    const ga = BigInt(w.a.s.buf[0]) << 12n;
    const C = Gnttab.GNTTAB_CACHE_CLEAN;
    expect(cacheFlushOps(w.b, [{ addr: ga, offset: 0, length: 64, op: C }])).toBe(ERR.EINVAL); // not mapped by B
    map1(w.b, { flags: DEV, ref: 8, dom: w.a.d.id });
    expect(cacheFlushOps(w.b, [{ addr: ga, offset: 0, length: 64, op: C }, { addr: ga, offset: 0, length: 0, op: C }])).toBe(0);
    expect(cacheFlushOps(w.b, [{ addr: ga, offset: 4000, length: 200, op: C }])).toBe(ERR.EINVAL);
    expect(cacheFlushOps(w.b, [{ addr: ga, offset: 0, length: 1, op: 4 }])).toBe(ERR.EINVAL);
    expect(cacheFlushOps(w.b, [{ addr: BigInt(w.b.s.buf[0]) << 12n, offset: 0, length: 1, op: C }])).toBe(0); // its own
    expect(cacheFlushOps(w.b, [{ addr: ga, offset: 0, length: 64, op: C }], Gnttab.GNTTABOP_cache_flush | (5 << 12))).toBe(0);
  });
});

describe('toolstack and teardown', () => {
  it('seedGrantTable writes the reserved console and xenstore entries', () => {
    const w = world();
    seedGrantTable(w.a.d, [{ ref: 0, domid: 0, frame: 0x123 }, { ref: 1, domid: 0, frame: 0x456 }]);
    expect(readGrantEntry(w.h.xen, w.a.d.id, 0)).toMatchObject({ flags: PERMIT, domid: 0, frame: 0x123 });
    expect(readGrantEntry(w.h.xen, w.a.d.id, 1)).toMatchObject({ flags: PERMIT, domid: 0, frame: 0x456 });
    expect(() => seedGrantTable(w.a.d, [{ ref: 8, domid: 0, frame: 1 }])).toThrow();
  });

  it('a dying grantee\'s device mappings are released; a dying granter\'s table lives while its grants are held', () => {
    const w = world();
    const A = w.a.d.id, B = w.b.d.id;
    const g = w.a.s.buf[0];
    grantV1(w.a, 8, B, g);
    const c0 = count(w, g);
    const r = map1(w.b, { flags: DEV, ref: 8, dom: A });
    gnttabReleaseDomain(w.h.xen, A);
    expect(gnttabHost(w.h.xen).tables.has(A)).toBe(true);
    expect(map1(w.c, { flags: DEV, ref: 8, dom: A }).status).toBe(GNTST.bad_domain);
    expect(unmap1(w.b, { devBusAddr: BigInt(r.devBusAddr), handle: r.handle })).toBe(0);
    expect(gnttabHost(w.h.xen).tables.has(A)).toBe(false);
    expect(count(w, g)).toBe(c0);
    // Grantee teardown.
    grantV1(w.c, 8, B, w.c.s.buf[0]);
    map1(w.b, { flags: DEV, ref: 8, dom: w.c.d.id });
    gnttabReleaseDomain(w.h.xen, B);
    expect(grantTableOf(w.c.d).active.size).toBe(0);
    expect(flagsOf(w.c, 8)).toBe(PERMIT);
  });
});

describe('snapshots', () => {
  it('round-trips tables, active entries and maptracks through msgpackr; rejects foreign or damaged bytes', () => {
    const w = world();
    setupTable(w.a, DOMID_SELF, 3);
    grantV1(w.a, 8, w.b.d.id, w.a.s.buf[0]);
    map1(w.b, { hostAddr: slotVa(0), flags: HOST | DEV, ref: 8, dom: w.a.d.id });
    setVersion(w.c, 2);
    const before = gnttabState(w.h.xen);
    const bytes = saveGnttab(w.h.xen);
    expect(decodeGnttabState(bytes)).toEqual(before);
    restoreGnttabState(w.h.xen, { defaults: before.defaults, transfer: true, tables: [], maptracks: [] });
    loadGnttab(w.h.xen, bytes);
    expect(gnttabState(w.h.xen)).toEqual(before);
    // The restored state works: unmap with the saved handle.
    expect(unmap1(w.b, { hostAddr: slotVa(0), devBusAddr: BigInt(w.a.s.buf[0]) << 12n, handle: 0 })).toBe(0);
    expect(flagsOf(w.a, 8)).toBe(PERMIT);
    const bad = bytes.slice();
    bad[bad.length - 3] ^= 0xff;
    expect(() => decodeGnttabState(bad)).toThrow(GnttabSnapshotError);
    expect(() => decodeGnttabState(encodeGnttabState(before).slice(0, 5))).toThrow(GnttabSnapshotError);
    expect(() => decodeGnttabState(new Uint8Array([0xc0]))).toThrow(GnttabSnapshotError);
  });
});

