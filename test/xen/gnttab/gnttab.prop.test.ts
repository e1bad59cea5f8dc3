// Property: random sequences of grants, revocations, misbehaving entry rewrites, maps,
// unmaps (and unmap_and_replace), implicit unmaps through mmu_update, copies, writes through
// mappings, frames given back, table growth, version switches and swaps, by three PV domains
// with hand-built address spaces, agree with a reference model (refmodel.ts) on every
// status and return code and on the observable state after every step: the granters'
// entries and status words, pins, handles, the PTEs of host mappings, page reference and
// WRITABLE type counts, frame ownership and data. After every step the grant-table state
// also makes a msgpackr snapshot round trip and the run continues on the restored state.
//
// Checked without the model, on the implementation's own state (the invariants):
//   (a) a PTE in a mapper's L1 maps a frame of its own, or one the mapper holds a host
//       mapping of (its maptrack, the granter's active entry for it with that frame);
//   (b) a writable PTE comes from a writable mapping (never GNTMAP_readonly), with a write pin;
//   (c) every frame mapped through a grant (present PTE or device mapping) is still owned by
//       its granter and referenced at least once per mapping; a frame given back is not
//       freed while mapped.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { copyToGuest, copyFromGuest } from '../../../src/xen/guestmem.js';
import { HypercallError } from '../../../src/xen/errno.js';
import { mmuUpdate } from '../../../src/xen/hypercall/mmu.js';
import { PGT, removeGuestPage } from '../../../src/xen/mm/pagetype.js';
import { gnttabHost, gnttabReleaseDomain, gnttabState, grantTableOf, maptrackOf, restoreGnttabState } from '../../../src/xen/gnttab/ops.js';
import { decodeGnttabState, encodeGnttabState } from '../../../src/xen/gnttab/snapshot.js';
import { type CopyEnd, DOMID_SELF, RMapper, RefModel } from './refmodel.js';
import {
  type Dom, GNTST, Gnttab, Host, MAPVA, copyOps, dom, grantPteValue, map1, revoke, setVersion, setupTable, swapOps,
  unmap1, unmapReplace, va,
} from './harness.js';

const REFS = [1, 8, 9, 10, 600];
/** How often interesting outcomes happened, so a generator change that stops reaching them
 *  fails the test instead of passing vacuously. */
const seen = new Map<string, number>();
const saw = (k: string, cond = true) => { if (cond) seen.set(k, (seen.get(k) ?? 0) + 1); };
const NSLOTS = 4;
const { GNTMAP_host_map: HOST, GNTMAP_device_map: DEV, GNTMAP_readonly: MRO, GNTMAP_application_map: APP, GNTMAP_contains_pte: CPTE } = Gnttab;

// ---- the world -----------------------------------------------------------------------------------

interface World {
  h: Host; A: Dom; B: Dom; C: Dom; byId: Map<number, Dom>;
  pool: { A: number[]; C: number[] };
  /** Frames a granter's entries may name, by granter. */
  grantFrames: Map<number, number[]>;
  /** Frames tracked for data and counts. */
  tracked: number[];
  model: RefModel;
  /** Grant frames as setup_table first reported them. */
  seenFrames: Map<number, number[]>;
  /** The slot each host mapping was made at ("mapper:handle"), for unmaps. */
  origin: Map<string, number>;
}

function world(): World {
  const h = new Host(1024);
  const A = dom(h, 'A', { bufPages: 6 });
  const B = dom(h, 'B', { bufPages: 6 });
  const C = dom(h, 'C', { bufPages: 6 });
  const pool = { A: h.alloc(A.d, 2), C: h.alloc(C.d, 1) };
  const byId = new Map([A, B, C].map((g) => [g.d.id, g]));
  // Touch every buffer page so the walker has set the A and D bits of their PTEs: the L1
  // frames (copy sources in the test) then stay as they are.
  for (const g of [A, B, C]) g.s.buf.forEach((_, i) => g.s.write(i * 4096, g.s.read(i * 4096, 1)));
  const grantFrames = new Map<number, number[]>([
    [A.d.id, [A.s.buf[2], A.s.buf[3], pool.A[0], pool.A[1], A.s.l1, B.s.buf[2], 5000]],
    [C.d.id, [C.s.buf[2], C.s.buf[3], pool.C[0], C.s.l1, A.s.buf[2], 5000, C.s.buf[4]]],
    [B.d.id, [B.s.buf[2], B.s.buf[3], B.s.l1, A.s.buf[3], 5000, B.s.buf[4], B.s.buf[5]]],
  ]);
  const data = [A, B, C].flatMap((g) => g.s.buf.slice(2));
  const pts = [A.s.l1, B.s.l1, C.s.l1];
  const tracked = [...data, ...pool.A, ...pool.C, ...pts];
  const pi = h.pi;
  const count0 = new Map<number, number>(), type0 = new Map<number, number>();
  for (const m of tracked) {
    count0.set(m, pi.count[m]);
    type0.set(m, pi.type[m] === PGT.WRITABLE ? pi.typeCount[m] : 0);
  }
  const model = new RefModel([A.d.id, B.d.id, C.d.id], { count0, type0 }, grantPteValue);
  for (const g of [B, C]) model.mappers.set(g.d.id, new RMapper(g.d.id, NSLOTS));
  for (const g of [A, B, C]) {
    for (const m of g.s.buf.slice(2)) model.frames.set(m, { owner: g.d.id, kind: 'data', pending: false, freed: false });
    model.frames.set(g.s.l1, { owner: g.d.id, kind: 'pt', pending: false, freed: false });
  }
  for (const m of pool.A) model.frames.set(m, { owner: A.d.id, kind: 'pool', pending: false, freed: false });
  for (const m of pool.C) model.frames.set(m, { owner: C.d.id, kind: 'pool', pending: false, freed: false });
  // Distinct contents, the same in the machine and in the model.
  for (const m of tracked) {
    const b = new Uint8Array(4096);
    for (let i = 0; i < 4096; i++) b[i] = (m * 7 + i * 13) & 0xff;
    if (model.frames.get(m)!.kind !== 'pt') h.phys.u8.set(b, m * 4096);
    model.mem.set(m, model.frames.get(m)!.kind === 'pt' ? h.phys.u8.slice(m * 4096, m * 4096 + 4096) : b);
  }
  const seenFrames = new Map([A, B, C].map((g) => [g.d.id, [...grantTableOf(g.d).shared]]));
  return { h, A, B, C, byId, pool, grantFrames, tracked, model, seenFrames, origin: new Map() };
}

// ---- commands ------------------------------------------------------------------------------------

type Cmd =
  | { k: 'grant'; g: number; ref: number; to: number; frame: number; ro: boolean; kind: number; sub: number; tdom: number; tref: number }
  | { k: 'revoke'; g: number; ref: number }
  | { k: 'scribble'; g: number; ref: number; flags: number }
  | { k: 'map'; m: number; dom: number; ref: number; mode: number; ro: boolean; app: boolean; cpte: boolean; slot: number; smart: number; pick: number }
  | { k: 'unmap'; m: number; h: number; host: number; dev: number; smart: number }
  | { k: 'replace'; m: number; h: number; host: number; newSlot: number; smart: number }
  | { k: 'zap'; m: number; slot: number; smart: number }
  | { k: 'copy'; c: number; ops: { s: End; d: End; so: number; dOff: number; len: number }[] }
  | { k: 'poke'; m: number; slot: number; off: number; byte: number; smart: number }
  | { k: 'giveback'; p: number; smart: number }
  | { k: 'setup'; g: number; n: number }
  | { k: 'version'; g: number; v: number }
  | { k: 'swap'; g: number; a: number; b: number };
type End = { gref: true; dom: number; ref: number; smart: number; pick: number } | { gref: false; frame: number; self: boolean };

const granter = fc.integer({ min: 0, max: 2 }); // A, B, C (B's table is mostly empty)
const refIdx = fc.integer({ min: 0, max: REFS.length - 1 });
const mapper = fc.integer({ min: 1, max: 2 });  // B, C
const domIdx = fc.integer({ min: 0, max: 3 });  // A, B, C, 999
const OFFS = [0, 100, 4000, 4095], LENS = [0, 1, 50, 96, 200];
const end: fc.Arbitrary<End> = fc.oneof(
  fc.record({ gref: fc.constant(true as const), dom: domIdx, ref: refIdx, smart: fc.integer({ min: 0, max: 9 }), pick: fc.nat() }),
  fc.record({ gref: fc.constant(false as const), frame: fc.constantFrom(0, 0, 1, 1, 2, 3), self: fc.constantFrom(true, true, true, true, false) }),
);

const grantCmd: fc.Arbitrary<Cmd> = fc.record({
  k: fc.constant('grant' as const), g: granter, ref: refIdx, to: fc.constantFrom(1, 1, 2, 2, 0, 3),
  frame: fc.constantFrom(0, 0, 1, 1, 2, 2, 3, 3, 4, 5, 6), ro: fc.boolean(), kind: fc.integer({ min: 0, max: 13 }),
  sub: fc.integer({ min: 0, max: 2 }), tdom: fc.integer({ min: 0, max: 2 }), tref: refIdx,
});

const cmd: fc.Arbitrary<Cmd> = fc.oneof(
  { weight: 6, arbitrary: grantCmd },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('revoke' as const), g: granter, ref: refIdx }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('scribble' as const), g: granter, ref: refIdx, flags: fc.constantFrom(0, 1, 5, 1 | 8 | 16, 2, 0x101) }) },
  { weight: 8, arbitrary: fc.record({ k: fc.constant('map' as const), m: mapper, dom: domIdx, ref: refIdx, mode: fc.integer({ min: 0, max: 5 }), ro: fc.boolean(), app: fc.boolean(), cpte: fc.boolean(), slot: fc.constantFrom(0, 1, 2, 3, 0, 1, 2, 3, NSLOTS), smart: fc.integer({ min: 0, max: 9 }), pick: fc.nat() }) },
  { weight: 5, arbitrary: fc.record({ k: fc.constant('unmap' as const), m: mapper, h: fc.nat(), host: fc.integer({ min: -3, max: NSLOTS + 4 }), dev: fc.constantFrom(0, 1, 1, 1, 2), smart: fc.integer({ min: 0, max: 9 }) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('replace' as const), m: mapper, h: fc.nat(), host: fc.integer({ min: -1, max: NSLOTS + 2 }), newSlot: fc.integer({ min: 0, max: NSLOTS - 1 }), smart: fc.integer({ min: 0, max: 9 }) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('zap' as const), m: mapper, slot: fc.integer({ min: 0, max: NSLOTS - 1 }), smart: fc.integer({ min: 0, max: 9 }) }) },
  { weight: 5, arbitrary: fc.record({ k: fc.constant('copy' as const), c: mapper, ops: fc.array(fc.record({ s: end, d: end, so: fc.constantFrom(...OFFS), dOff: fc.constantFrom(...OFFS), len: fc.constantFrom(...LENS) }), { minLength: 1, maxLength: 3 }) }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('poke' as const), m: mapper, slot: fc.integer({ min: 0, max: NSLOTS - 1 }), off: fc.integer({ min: 0, max: 4095 }), byte: fc.integer({ min: 0, max: 255 }), smart: fc.integer({ min: 0, max: 9 }) }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('giveback' as const), p: fc.integer({ min: 0, max: 2 }), smart: fc.integer({ min: 0, max: 9 }) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('setup' as const), g: granter, n: fc.constantFrom(1, 2, 3, 33) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('version' as const), g: granter, v: fc.constantFrom(1, 2, 2, 3) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('swap' as const), g: granter, a: refIdx, b: refIdx }) },
);

// ---- running a command on both -------------------------------------------------------------------

const ids = (w: World) => [w.A.d.id, w.B.d.id, w.C.d.id];
const domOf = (w: World, i: number) => (i < 3 ? ids(w)[i] : 999);

function slotAddr(w: World, g: Dom, slot: number, cpte: boolean): bigint {
  if (slot >= NSLOTS) return cpte ? BigInt(g.s.l1b * 4096 + 4) : va(0x40000000); // misaligned PTE / no L1
  return cpte ? BigInt(g.s.l1b * 4096 + slot * 8) : va(MAPVA + slot * 4096);
}

/** (granter, ref) of entries that name domid: permit_access ones (any type for copies). */
function grantedTo(w: World, domid: number, anyType = false): [number, number][] {
  const out: [number, number][] = [];
  for (const [gid, t] of w.model.tables) {
    for (const ref of REFS) {
      if (ref >= t.nrEntries || t.edomid(ref) !== domid) continue;
      const type = t.flags(ref) & 3;
      if (type === Gnttab.GTF_permit_access || (anyType && type === Gnttab.GTF_transitive)) out.push([gid, ref]);
    }
  }
  return out;
}

/** Mostly a slot holding a present PTE; else the one asked for. */
function presentSlot(w: World, mid: number, slot: number, smart: number): number {
  const live = w.model.mappers.get(mid)!.slots.flatMap((e, i) => ((e & 1n) !== 0n ? [i] : []));
  return smart < 8 && live.length > 0 ? live[slot % live.length] : slot;
}

/** Mostly a live handle of the mapper; sometimes any number. */
function pickHandle(w: World, mid: number, n: number, smart: number): number {
  const live = [...w.model.mappers.get(mid)!.maptrack.keys()];
  if (smart < 8 && live.length > 0) return live[n % live.length];
  return n % 6;
}

/** The model's handles map to the implementation's one for one (both allocate lowest first). */
function step(w: World, c: Cmd): void {
  const M = w.model;
  switch (c.k) {
    case 'grant': {
      const gid = ids(w)[c.g], g = w.byId.get(gid)!, t = M.tables.get(gid)!;
      const ref = REFS[c.ref];
      if (ref >= t.nrEntries) return;
      const frame = w.grantFrames.get(gid)![c.frame];
      const to = c.to < 3 ? ids(w)[c.to] : 77;
      // kinds: 6 sub-page, 7 transitive, 8 accept_transfer, 9 sub_page flag in v1 style, others full page
      let flags = Gnttab.GTF_permit_access | (c.ro ? Gnttab.GTF_readonly : 0);
      if (c.kind === 6 || c.kind === 9) flags |= Gnttab.GTF_sub_page;
      if (c.kind === 7) flags = Gnttab.GTF_transitive | (c.ro ? Gnttab.GTF_readonly : 0);
      if (c.kind === 8) flags = Gnttab.GTF_accept_transfer;
      const subs = [[100, 50], [0, 4096], [4000, 200]][c.sub];
      const gt = grantTableOf(g.d), pa = gt.entryPa(ref), dv = w.h.phys.dv;
      const mdv = t.dv(ref);
      // The guest writes domid and the body, then the flags (keeping GTF_reading/writing of
      // a v1 entry only if Xen set them: a well-behaved guest reuses an entry only when idle).
      dv.setUint16(pa + 2, to, true); mdv.setUint16(2, to, true);
      if (t.version === 1) {
        dv.setUint32(pa + 4, frame, true); mdv.setUint32(4, frame, true);
      } else if (c.kind === 7) {
        const td = ids(w)[c.tdom], tr = REFS[c.tref];
        dv.setUint16(pa + 4, td, true); dv.setUint16(pa + 6, 0, true); dv.setUint32(pa + 8, tr, true); dv.setUint32(pa + 12, 0, true);
        mdv.setUint16(4, td, true); mdv.setUint16(6, 0, true); mdv.setUint32(8, tr, true); mdv.setUint32(12, 0, true);
      } else {
        dv.setUint16(pa + 4, subs[0], true); dv.setUint16(pa + 6, subs[1], true); dv.setBigUint64(pa + 8, BigInt(frame), true);
        mdv.setUint16(4, subs[0], true); mdv.setUint16(6, subs[1], true); mdv.setBigUint64(8, BigInt(frame), true);
      }
      const keep = t.version === 1 ? t.flags(ref) & (Gnttab.GTF_reading | Gnttab.GTF_writing) : 0;
      dv.setUint16(pa, flags | keep, true); t.setFlags(ref, flags | keep);
      return;
    }
    case 'revoke': {
      const gid = ids(w)[c.g], t = M.tables.get(gid)!, ref = REFS[c.ref];
      if (ref >= t.nrEntries) return;
      const ok = M.revoke(gid, ref);
      saw('revocation refused (in use)', !ok);
      expect(revoke(w.byId.get(gid)!, ref)).toBe(ok);
      return;
    }
    case 'scribble': {
      const gid = ids(w)[c.g], t = M.tables.get(gid)!, ref = REFS[c.ref];
      if (ref >= t.nrEntries) return;
      w.h.phys.dv.setUint16(grantTableOf(w.byId.get(gid)!.d).entryPa(ref), c.flags, true);
      t.setFlags(ref, c.flags);
      return;
    }
    case 'map': {
      const mid = ids(w)[c.m], g = w.byId.get(mid)!;
      const host = c.mode >= 1 && c.mode !== 4, dev = c.mode >= 4;
      let dom = domOf(w, c.dom), ref = REFS[c.ref];
      const cands = grantedTo(w, mid);
      let ro = c.ro;
      if (c.smart < 9 && cands.length > 0) {
        [dom, ref] = cands[c.pick % cands.length];
        // Mostly ask for the access the grant gives.
        if (c.smart < 6) ro = (M.tables.get(dom)!.flags(ref) & Gnttab.GTF_readonly) !== 0 || c.ro;
      }
      const flags = (host ? HOST : 0) | (dev ? DEV : 0) | (ro ? MRO : 0) | (c.app ? APP : 0) | (c.cpte ? CPTE : 0) | (1 << 16);
      const r = map1(g, { hostAddr: host ? slotAddr(w, g, c.slot, c.cpte) : 0n, flags, ref, dom });
      const e = M.map(mid, { flags, ref, dom, addr: c.slot >= NSLOTS ? { bad: true } : { slot: c.slot } });
      expect(r.rc).toBe(0);
      expect(r.status).toBe(e.status);
      saw('host map', e.status === 0 && host);
      saw('device map', e.status === 0 && dev);
      saw('map refused', e.status !== 0);
      if (e.status === 0) {
        expect([r.handle, r.devBusAddr]).toEqual([e.handle, e.dba]);
        if (host) w.origin.set(`${mid}:${e.handle}`, c.slot);
      }
      return;
    }
    case 'unmap': {
      const mid = ids(w)[c.m], g = w.byId.get(mid)!, mt = M.mappers.get(mid)!;
      const handle = pickHandle(w, mid, c.h, c.smart);
      const me = mt.maptrack.get(handle);
      const cpte = me ? (me.flags & CPTE) !== 0 : false;
      // host: -3 none, -2 a bad address, 0..NSLOTS-1 a slot, beyond: where it was mapped
      const slot = c.host >= NSLOTS ? w.origin.get(`${mid}:${handle}`) ?? 0 : c.host;
      const hostAddr = slot === -3 ? 0n : slot < 0 ? slotAddr(w, g, NSLOTS, cpte) : slotAddr(w, g, slot, cpte);
      const a = me ? M.tables.get(me.dom)!.active.get(me.ref) : undefined;
      const dba = c.dev === 0 ? 0n : a ? BigInt(a.mfn) * 4096n + (c.dev === 2 ? 4096n : 0n) : 0x1000n * BigInt(c.dev);
      const st = unmap1(g, { hostAddr, devBusAddr: dba, handle });
      const e = M.unmap(mid, { handle, host: slot === -3 ? null : slot < 0 ? { bad: true } : { slot }, dba });
      saw('unmap', e === 0 && !!me);
      saw('unmap refused', e !== 0 && !!me);
      expect(st).toBe(e);
      return;
    }
    case 'replace': {
      const mid = ids(w)[c.m], g = w.byId.get(mid)!;
      const handle = pickHandle(w, mid, c.h, c.smart), me = M.mappers.get(mid)!.maptrack.get(handle);
      const cpte = me ? (me.flags & CPTE) !== 0 : false;
      const slot = c.host >= NSLOTS ? w.origin.get(`${mid}:${handle}`) ?? 0 : c.host;
      const host = slot === -1 ? slotAddr(w, g, NSLOTS, cpte) : slotAddr(w, g, slot, cpte);
      const r = unmapReplace(g, host, va(MAPVA + c.newSlot * 4096), handle);
      const e = M.unmap(mid, { handle, host: slot === -1 ? { bad: true } : { slot }, dba: 0n, newSlot: c.newSlot });
      saw('unmap_and_replace', e === 0);
      expect(r).toEqual({ rc: 0, status: e });
      return;
    }
    case 'zap': {
      const mid = ids(w)[c.m], g = w.byId.get(mid)!;
      c = { ...c, slot: presentSlot(w, mid, c.slot, c.smart) };
      saw('implicit unmap', (M.mappers.get(mid)!.slots[c.slot] & 1n) !== 0n);
      expect(mmuUpdate(g.v, [[(BigInt(g.s.l1b) << 12n) | BigInt(c.slot * 8), 0n]]).rc).toBe(0);
      g.v.cpu.mem.flush(MAPVA + c.slot * 4096); // the guest's invlpg after clearing a PTE
      M.mappers.get(mid)!.slots[c.slot] = 0n;
      M.settle();
      return;
    }
    case 'copy': {
      const cid = ids(w)[c.c], g = w.byId.get(cid)!;
      const own = [g.s.buf[2], g.s.buf[3], g.s.l1, w.A.s.buf[4]];
      const cands = grantedTo(w, cid, true);
      const toEnd = (e: End, off: number): CopyEnd => {
        if (!e.gref) return { gmfn: own[e.frame], domid: e.self ? DOMID_SELF : cid, offset: off };
        if (e.smart < 8 && cands.length > 0) { const [d, ref] = cands[e.pick % cands.length]; return { ref, domid: d, offset: off }; }
        return { ref: REFS[e.ref], domid: domOf(w, e.dom), offset: off };
      };
      const ops = c.ops.map((o) => ({ src: toEnd(o.s, o.so), dst: toEnd(o.d, o.dOff), len: o.len }));
      const r = copyOps(g, ops.map((o) => ({
        source: o.src, dest: o.dst, len: o.len,
        flags: (o.src.ref !== undefined ? Gnttab.GNTCOPY_source_gref : 0) | (o.dst.ref !== undefined ? Gnttab.GNTCOPY_dest_gref : 0),
      })));
      const want = ops.map((o) => M.copy(cid, o));
      want.forEach((x, i) => saw(ops[i].src.ref !== undefined || ops[i].dst.ref !== undefined ? 'copy through a grant' : 'copy', x === 0));
      expect(r).toEqual({ rc: 0, status: want });
      return;
    }
    case 'poke': {
      const mid = ids(w)[c.m], g = w.byId.get(mid)!;
      c = { ...c, slot: presentSlot(w, mid, c.slot, c.smart) };
      const e = M.mappers.get(mid)!.slots[c.slot];
      const lin = MAPVA + c.slot * 4096 + c.off;
      let faulted = false;
      try { copyToGuest(g.v, lin, new Uint8Array([c.byte])); } catch (x) { if (!(x instanceof HypercallError)) throw x; faulted = true; }
      const present = (e & 1n) !== 0n, rw = (e & 2n) !== 0n;
      saw('access through a mapping', present);
      expect(faulted).toBe(!(present && rw));
      if (present && rw) M.mem.get(Number((e >> 12n) & 0xffffffffffn))![c.off] = c.byte;
      if (present) {
        const mfn = Number((e >> 12n) & 0xffffffffffn);
        expect(copyFromGuest(g.v, lin, 1)[0]).toBe(M.mem.get(mfn)![c.off]);
      }
      return;
    }
    case 'giveback': {
      // Mostly a pool frame that is mapped through a grant right now.
      const pools: [Dom, number][] = [[w.A, w.pool.A[0]], [w.A, w.pool.A[1]], [w.C, w.pool.C[0]]];
      const busy = pools.filter(([, f]) => M.count(f) > 0 && !M.frames.get(f)!.pending);
      const [owner, f] = c.smart < 7 && busy.length > 0 ? busy[c.p % busy.length] : pools[c.p];
      const info = M.frames.get(f)!;
      saw('frame given back while mapped', !info.pending && M.count(f) > 0);
      const rc = removeGuestPage(w.h.pi, owner.d, f);
      expect(rc).toBe(info.pending ? -6 : 0);
      info.pending = true;
      M.settle();
      return;
    }
    case 'setup': {
      const gid = ids(w)[c.g], g = w.byId.get(gid)!;
      const r = setupTable(g, DOMID_SELF, c.n);
      const st = M.setup(gid, c.n);
      expect([r.rc, r.status]).toEqual([0, st]);
      if (st === 0) {
        const seen = w.seenFrames.get(gid)!;
        r.frames.forEach((f, i) => { if (i < seen.length) expect(f).toBe(seen[i]); else seen.push(f); });
      }
      return;
    }
    case 'version': {
      const gid = ids(w)[c.g];
      const before = M.tables.get(gid)!.version, want = M.setVersion(gid, c.v);
      saw('version switch', want.rc === 0 && want.version !== before);
      saw('version switch refused (busy)', want.rc === -16);
      expect(setVersion(w.byId.get(gid)!, c.v)).toEqual(want);
      return;
    }
    case 'swap': {
      const gid = ids(w)[c.g];
      expect(swapOps(w.byId.get(gid)!, [[REFS[c.a], REFS[c.b]]])).toEqual({ rc: 0, status: [M.swap(gid, REFS[c.a], REFS[c.b])] });
      return;
    }
  }
}

// ---- comparison and invariants -------------------------------------------------------------------

function compare(w: World, granters = ids(w)): void {
  const M = w.model, pi = w.h.pi, xen = w.h.xen;
  for (const [gid, t] of M.tables) {
    if (!granters.includes(gid)) continue;
    const gt = grantTableOf(w.byId.get(gid)!.d);
    expect({ d: gid, v: gt.version, n: gt.nrFrames, s: gt.status.length }).toEqual({ d: gid, v: t.version, n: t.nrFrames, s: t.statusFrames });
    expect(gt.shared).toEqual(w.seenFrames.get(gid)!.slice(0, gt.nrFrames));
    for (const ref of REFS) {
      if (ref >= t.nrEntries) continue;
      const pa = gt.entryPa(ref);
      expect({ d: gid, ref, e: [...xen.phys.u8.slice(pa, pa + t.esize)], s: gt.statusFlags(ref) & 0x18 })
        .toEqual({ d: gid, ref, e: [...t.raw(ref)], s: t.statusBits(ref) });
    }
    const act = [...gt.active].map(([ref, a]) => [ref, a.pin >>> 0, a.domid, a.mfn, a.start, a.length, a.subPage]).sort((x, y) => (x[0] as number) - (y[0] as number));
    const want = [...t.active].map(([ref, a]) => [ref, (a.hstw + a.hstr * 0x100 + a.devw * 0x10000 + a.devr * 0x1000000) >>> 0, a.domid, a.mfn, a.start, a.length, a.sub]).sort((x, y) => (x[0] as number) - (y[0] as number));
    expect({ d: gid, act }).toEqual({ d: gid, act: want });
  }
  for (const [mid, m] of M.mappers) {
    const g = w.byId.get(mid)!;
    expect(maptrackOf(xen, mid).list().map(([h, e]) => [h, e.flags, e.dom, e.ref])).toEqual([...m.maptrack].sort((a, b) => a[0] - b[0]).map(([h, e]) => [h, e.flags, e.dom, e.ref]));
    for (let s = 0; s < NSLOTS; s++) expect({ mid, s, pte: w.h.get(g.s.l1b, s) }).toEqual({ mid, s, pte: m.slots[s] });
  }
  for (const f of w.tracked) {
    const info = M.frames.get(f)!;
    const owner = xen.frames.owner[f];
    expect({ f, owner }).toEqual({ f, owner: info.freed ? -1 : info.owner });
    if (info.freed) continue;
    const wt = pi.type[f] === PGT.WRITABLE ? pi.typeCount[f] : 0;
    expect({ f, count: pi.count[f], wtype: wt }).toEqual({ f, count: M.count(f), wtype: M.wtype(f) });
    const got = xen.phys.u8.subarray(f * 4096, f * 4096 + 4096), want = M.mem.get(f)!;
    if (Buffer.compare(got, want) !== 0) expect({ f, data: [...got] }).toEqual({ f, data: [...want] });
  }
}

function invariants(w: World): void {
  const pi = w.h.pi, xen = w.h.xen;
  for (const g of [w.B, w.C]) {
    const mt = maptrackOf(xen, g.d.id).list();
    for (let s = 0; s < NSLOTS; s++) {
      const e = w.h.get(g.s.l1b, s);
      if ((e & 1n) === 0n) continue;
      const f = Number((e >> 12n) & 0xffffffffffn);
      if (xen.frames.owner[f] === g.d.id && !mt.some(([, m]) => grantTableOf(xen.domains.get(m.dom)!).active.get(m.ref)?.mfn === f)) continue;
      const holders = mt.filter(([, m]) => {
        if ((m.flags & HOST) === 0) return false;
        const a = grantTableOf(xen.domains.get(m.dom)!).active.get(m.ref);
        return !!a && a.mfn === f && a.domid === g.d.id;
      });
      expect(holders.length, `(a) PTE ${s} of d${g.d.id} maps frame ${f} it holds no grant mapping of`).toBeGreaterThan(0);
      if ((e & 2n) !== 0n) {
        const w2 = holders.filter(([, m]) => (m.flags & MRO) === 0 && (grantTableOf(xen.domains.get(m.dom)!).active.get(m.ref)!.pin & 0xff) > 0);
        expect(w2.length, `(b) writable PTE ${s} of d${g.d.id} without a writable mapping`).toBeGreaterThan(0);
      }
    }
  }
  // (c) Every frame mapped (by a present grant PTE or a device mapping) is still allocated
  // to its granter and referenced at least once per such mapping. (A pin alone guarantees
  // nothing: when a host mapping's PTE is destroyed other than by unmap, its references go
  // with it, as in Xen, and the pinned frame is no longer used.)
  const mapped = new Map<number, { n: number; owner: number }>();
  for (const g of [w.B, w.C]) {
    for (let s = 0; s < NSLOTS; s++) {
      const e = w.h.get(g.s.l1b, s);
      if ((e & 1n) === 0n) continue;
      const f = Number((e >> 12n) & 0xffffffffffn);
      const holder = maptrackOf(xen, g.d.id).list().find(([, m]) => grantTableOf(xen.domains.get(m.dom)!).active.get(m.ref)?.mfn === f);
      const owner = holder ? holder[1].dom : g.d.id;
      mapped.set(f, { n: (mapped.get(f)?.n ?? 0) + 1, owner });
    }
    for (const [, m] of maptrackOf(xen, g.d.id).list()) {
      if ((m.flags & DEV) === 0) continue;
      const f = grantTableOf(xen.domains.get(m.dom)!).active.get(m.ref)!.mfn;
      mapped.set(f, { n: (mapped.get(f)?.n ?? 0) + 1, owner: m.dom });
    }
  }
  for (const [f, { n, owner }] of mapped) {
    expect({ f, owner: xen.frames.owner[f] }, '(c) mapped frame no longer its granter\'s').toEqual({ f, owner });
    expect(pi.count[f], `(c) mapped frame ${f} referenced fewer times than mapped`).toBeGreaterThanOrEqual(n);
  }
}

function roundTrip(w: World): void {
  const s = gnttabState(w.h.xen);
  const back = decodeGnttabState(encodeGnttabState(s));
  expect(back).toEqual(s);
  restoreGnttabState(w.h.xen, back);
}

// ---- the property --------------------------------------------------------------------------------

describe('grant tables against the reference model', () => {
  it('every status, code and observable state agrees; invariants hold; snapshots round-trip', () => {
    fc.assert(
      fc.property(fc.array(grantCmd, { minLength: 2, maxLength: 6 }), fc.array(cmd, { minLength: 10, maxLength: 60, size: 'max' }), (prelude, cmds) => {
        const w = world();
        for (const c of [...prelude, ...cmds]) {
          step(w, c);
          w.model.settle();
          compare(w);
          invariants(w);
          roundTrip(w);
        }
        // Teardown of both grantees: every pin goes; host mappings' references stay with
        // their PTEs until the page tables go.
        for (const m of [w.B, w.C]) { gnttabReleaseDomain(w.h.xen, m.d.id); w.model.release(m.d.id); }
        w.model.settle();
        compare(w, [w.A.d.id]);
        expect(grantTableOf(w.A.d).active.size).toBe(0);
        expect([...gnttabHost(w.h.xen).tables.keys()]).toEqual([w.A.d.id]); // the others retired
      }),
      { numRuns: 150 },
    );
    const floors: Record<string, number> = {
      'host map': 100, 'device map': 40, 'map refused': 100, unmap: 30, 'unmap refused': 10, unmap_and_replace: 2,
      'implicit unmap': 5, copy: 20, 'copy through a grant': 30, 'access through a mapping': 20,
      'frame given back while mapped': 5, 'version switch': 20, 'version switch refused (busy)': 2,
      'revocation refused (in use)': 5,
    };
    for (const [k, min] of Object.entries(floors)) expect({ k, n: seen.get(k) ?? 0 }).toEqual({ k, n: expect.toSatisfy((n: number) => n >= min) });
  });

  it('finds a bug planted in the model (the test can fail)', () => {
    // A model that believes read-only grants can be mapped writable must disagree.
    const w = world();
    const m = w.model as unknown as { setStatus: (...a: unknown[]) => number };
    const orig = m.setStatus.bind(w.model);
    m.setStatus = (t: unknown, ref: unknown, _ro: unknown, mapflag: unknown, ldom: unknown) => orig(t, ref, true, mapflag, ldom);
    step(w, { k: 'grant', g: 0, ref: 1, to: 1, frame: 0, ro: true, kind: 0, sub: 0, tdom: 0, tref: 0 });
    expect(() => step(w, { k: 'map', m: 1, dom: 0, ref: 1, mode: 1, ro: false, app: false, cpte: false, slot: 0, smart: 9, pick: 0 })).toThrow();
  });
});

void GNTST;
