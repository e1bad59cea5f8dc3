// A small executable model of grant tables for the property test, written from
// grant_table.h's documented semantics (with Xen's status codes for the cases the header
// leaves to the implementation). It keeps what a guest and a backend can observe: each
// granter's entries (raw bytes, so v2's overlapping union members behave as in memory) and
// status words, the pins Xen holds per entry, each grantee's handles, the PTEs of host
// mappings, which frames are owned / given back / freed, and the contents of data frames.
// Page reference counts are not kept: they are derived (base + grant PTEs present + device
// mappings) and compared with the implementation's.

import { ERR, GNTST, Gnttab } from './abi.js';

const { GTF_permit_access: PERMIT, GTF_readonly: RO_F, GTF_reading: READING, GTF_writing: WRITING, GTF_sub_page: SUB } = Gnttab;
const { GNTMAP_device_map: DEV, GNTMAP_host_map: HOST, GNTMAP_readonly: MRO, GNTMAP_contains_pte: CPTE } = Gnttab;
export const DOMID_SELF = 0x7ff0;

export interface FrameInfo { owner: number; kind: 'data' | 'pt' | 'pool'; pending: boolean; freed: boolean }

export interface RAct {
  hstw: number; hstr: number; devw: number; devr: number;
  domid: number; mfn: number; start: number; length: number; sub: boolean; transDom: number; transRef: number;
}
const pins = (a: RAct) => a.hstw + a.hstr + a.devw + a.devr;
const wpins = (a: RAct) => a.hstw + a.devw;

export class RTable {
  version: 1 | 2 = 1;
  nrFrames = 1;
  statusFrames = 0;
  readonly maxFrames = 32;
  /** Raw entry bytes by ref (8 bytes in v1, 16 in v2); absent = zero. */
  entries = new Map<number, Uint8Array>();
  /** v2 status words. */
  status = new Map<number, number>();
  readonly active = new Map<number, RAct>();
  constructor(readonly domid: number) {}

  get esize(): number { return this.version === 1 ? 8 : 16; }
  get nrEntries(): number { return this.nrFrames * (this.version === 1 ? 512 : 256); }
  raw(ref: number): Uint8Array {
    let e = this.entries.get(ref);
    if (!e) { e = new Uint8Array(this.esize); this.entries.set(ref, e); }
    return e;
  }
  dv(ref: number): DataView { const r = this.raw(ref); return new DataView(r.buffer, r.byteOffset, r.byteLength); }
  flags(ref: number): number { return this.dv(ref).getUint16(0, true); }
  setFlags(ref: number, f: number): void { this.dv(ref).setUint16(0, f, true); }
  edomid(ref: number): number { return this.dv(ref).getUint16(2, true); }
  frame(ref: number): number {
    const dv = this.dv(ref);
    return this.version === 1 ? dv.getUint32(4, true) : Number(dv.getBigUint64(8, true));
  }
  subOff(ref: number): number { return this.dv(ref).getUint16(4, true); }
  subLen(ref: number): number { return this.dv(ref).getUint16(6, true); }
  transDom(ref: number): number { return this.dv(ref).getUint16(4, true); }
  transRef(ref: number): number { return this.dv(ref).getUint32(8, true); }
  statusBits(ref: number): number { return this.version === 1 ? this.flags(ref) & (READING | WRITING) : this.status.get(ref) ?? 0; }
  orStatus(ref: number, bits: number): void {
    if (this.version === 1) this.setFlags(ref, this.flags(ref) | bits);
    else this.status.set(ref, (this.status.get(ref) ?? 0) | bits);
  }
  clearStatus(ref: number, bits: number): void {
    if (this.version === 1) this.setFlags(ref, this.flags(ref) & ~bits);
    else this.status.set(ref, (this.status.get(ref) ?? 0) & ~bits);
  }
}

export interface RMap { flags: number; dom: number; ref: number }

export class RMapper {
  readonly maptrack = new Map<number, RMap>();
  /** Expected PTE per slot of the mapping L1. */
  readonly slots: bigint[];
  constructor(readonly domid: number, nslots: number) { this.slots = new Array(nslots).fill(0n); }
  handle(): number { let h = 0; while (this.maptrack.has(h)) h++; return h; }
}

/** A host address as the model sees it: a slot of the mapper's L1 (by VA or PTE address), or an unusable one. */
export type Addr = { slot: number } | { bad: true };

export interface MemoryView {
  /** Base reference counts and WRITABLE type counts (the frame's own mappings). */
  count0: Map<number, number>;
  type0: Map<number, number>;
}

export class RefModel {
  readonly tables = new Map<number, RTable>();
  readonly mappers = new Map<number, RMapper>();
  readonly frames = new Map<number, FrameInfo>();
  readonly mem = new Map<number, Uint8Array>();

  constructor(readonly domains: number[], readonly base: MemoryView, readonly grantPte: (mfn: number, flags: number) => bigint) {
    for (const d of domains) this.tables.set(d, new RTable(d));
  }

  // ---- derived state --------------------------------------------------------------------------

  /** Grant PTEs present in mapper slots that map mfn (and how many of them are writable). */
  ptes(mfn: number): { n: number; rw: number } {
    let n = 0, rw = 0;
    for (const m of this.mappers.values()) for (const e of m.slots) {
      if ((e & 1n) === 0n || Number((e >> 12n) & 0xffffffffffn) !== mfn) continue;
      n++;
      if ((e & 2n) !== 0n) rw++;
    }
    return { n, rw };
  }
  devMaps(mfn: number): { n: number; rw: number } {
    let n = 0, rw = 0;
    for (const m of this.mappers.values()) for (const e of m.maptrack.values()) {
      if ((e.flags & DEV) === 0) continue;
      const a = this.tables.get(e.dom)!.active.get(e.ref)!;
      if (a.mfn !== mfn) continue;
      n++;
      if ((e.flags & MRO) === 0) rw++;
    }
    return { n, rw };
  }
  count(mfn: number): number { return (this.base.count0.get(mfn) ?? 0) + this.ptes(mfn).n + this.devMaps(mfn).n; }
  wtype(mfn: number): number { return (this.base.type0.get(mfn) ?? 0) + this.ptes(mfn).rw + this.devMaps(mfn).rw; }

  /** get_page: the frame is the domain's and not given back. */
  ownedFresh(mfn: number, domid: number): boolean {
    const f = this.frames.get(mfn);
    return !!f && f.owner === domid && !f.pending && !f.freed;
  }
  /** page_get_owner_and_reference: the owner of a frame that is allocated or referenced. */
  ownerIfLive(mfn: number): number | null {
    const f = this.frames.get(mfn);
    if (!f || f.freed) return null;
    if (f.pending && this.count(mfn) === 0) return null;
    return f.owner;
  }
  /** A WRITABLE type can be taken (not a page table). */
  writable(mfn: number): boolean { return this.frames.get(mfn)?.kind !== 'pt'; }

  /** Frames given back are freed once nothing references them. */
  settle(): void {
    for (const [m, f] of this.frames) if (f.pending && !f.freed && this.count(m) === 0) f.freed = true;
  }

  // ---- the pin protocol -----------------------------------------------------------------------

  private setStatus(t: RTable, ref: number, ro: boolean, mapflag: boolean, ldom: number): number {
    const flags = t.flags(ref);
    const type = flags & (mapflag ? 3 | SUB : 3);
    const typeOk = type === PERMIT || (t.version === 2 && !mapflag && type === Gnttab.GTF_transitive);
    const pinned = t.active.has(ref);
    if (!pinned && (!typeOk || t.edomid(ref) !== ldom)) return GNTST.general_error;
    if (!ro && (flags & RO_F) !== 0) return GNTST.general_error;
    t.orStatus(ref, ro ? READING : READING | WRITING);
    return GNTST.okay;
  }
  private reduce(t: RTable, ref: number, ro: boolean): void {
    const a = t.active.get(ref);
    let clear = a ? 0 : READING;
    if (!ro && (!a || wpins(a) === 0)) clear |= WRITING;
    if (clear) t.clearStatus(ref, clear);
  }
  private dropIfIdle(t: RTable, ref: number): void { const a = t.active.get(ref); if (a && pins(a) === 0) t.active.delete(ref); }

  // ---- map / unmap ----------------------------------------------------------------------------

  map(mid: number, op: { flags: number; ref: number; dom: number; addr: Addr }): { status: number; handle?: number; dba?: bigint } {
    const m = this.mappers.get(mid)!;
    const { flags } = op;
    const ro = (flags & MRO) !== 0, dev = (flags & DEV) !== 0, host = (flags & HOST) !== 0;
    if (!dev && !host) return { status: GNTST.bad_gntref };
    const t = this.tables.get(op.dom);
    if (!t) return { status: GNTST.bad_domain };
    if (op.ref >= t.nrEntries) return { status: GNTST.bad_gntref };
    let a = t.active.get(op.ref);
    // A counter this map would increment must stay below 128.
    const full = (c: number, used: boolean) => used && c >= 128;
    if (a && (a.domid !== mid || a.sub || full(a.devr, dev && ro) || full(a.devw, dev && !ro) || full(a.hstr, host && ro) || full(a.hstw, host && !ro))) {
      return { status: GNTST.general_error };
    }
    let fresh = false;
    if (!a || (!ro && wpins(a) === 0)) {
      const rc = this.setStatus(t, op.ref, ro, true, mid);
      if (rc) return { status: rc };
      if (!a) {
        const f = t.frame(op.ref);
        if (!this.ownedFresh(f, t.domid)) { this.reduce(t, op.ref, ro); return { status: GNTST.bad_page }; }
        a = { hstw: 0, hstr: 0, devw: 0, devr: 0, domid: mid, mfn: f, start: 0, length: 4096, sub: false, transDom: t.domid, transRef: op.ref };
        t.active.set(op.ref, a);
        fresh = true;
      }
    }
    const act = a;
    const add = (k: number) => {
      if (dev) { if (ro) act.devr += k; else act.devw += k; }
      if (host) { if (ro) act.hstr += k; else act.hstw += k; }
    };
    add(1);
    let ok = fresh || this.ownerIfLive(act.mfn) === t.domid;
    if (ok && !ro && !this.writable(act.mfn)) ok = false;
    if (ok && host && 'bad' in op.addr) ok = false;
    if (!ok) {
      add(-1);
      this.dropIfIdle(t, op.ref);
      this.reduce(t, op.ref, ro);
      return { status: GNTST.general_error };
    }
    const h = m.handle();
    m.maptrack.set(h, { flags, dom: t.domid, ref: op.ref });
    if (host && 'slot' in op.addr) m.slots[op.addr.slot] = this.grantPte(act.mfn, flags);
    return { status: GNTST.okay, handle: h, dba: BigInt(act.mfn) * 4096n };
  }

  unmap(mid: number, op: { handle: number; host: Addr | null; dba: bigint; newSlot?: number }): number {
    const m = this.mappers.get(mid)!;
    const e = m.maptrack.get(op.handle);
    if (!e) return GNTST.bad_handle;
    const t = this.tables.get(e.dom)!;
    const a = t.active.get(e.ref)!;
    if (op.dba !== 0n && (e.flags & DEV) !== 0 && op.dba !== BigInt(a.mfn) * 4096n) return GNTST.bad_dev_addr;
    const ro = (e.flags & MRO) !== 0;
    let done = 0;
    if (op.host !== null && (e.flags & HOST) !== 0) {
      const cpte = (e.flags & CPTE) !== 0;
      if (op.newSlot !== undefined && cpte) return GNTST.general_error;
      if ('bad' in op.host) return GNTST.general_error;
      const s = op.host.slot, cur = m.slots[s];
      const curMfn = Number((cur >> 12n) & 0xffffffffffn);
      if ((cur & 1n) === 0n || curMfn !== a.mfn || ((cur & 2n) !== 0n) === ro) return GNTST.general_error;
      if (op.newSlot !== undefined) {
        if (op.newSlot === s) return GNTST.general_error;
        m.slots[s] = m.slots[op.newSlot];
        m.slots[op.newSlot] = 0n;
      } else m.slots[s] = 0n;
      e.flags &= ~HOST;
      done |= HOST;
    }
    if (op.dba !== 0n && (e.flags & DEV) !== 0) { e.flags &= ~DEV; done |= DEV; }
    if ((e.flags & (HOST | DEV)) === 0) m.maptrack.delete(op.handle);
    if (!done) return GNTST.okay;
    if (done & DEV) { if (ro) a.devr--; else a.devw--; }
    if (done & HOST) { if (ro) a.hstr--; else a.hstw--; }
    this.dropIfIdle(t, e.ref);
    this.reduce(t, e.ref, ro);
    return GNTST.okay;
  }

  /** Teardown of a grantee: every mapping goes; host mappings' PTEs stay with its tables. */
  release(mid: number): void {
    const m = this.mappers.get(mid)!;
    for (const [h, e] of m.maptrack) {
      const t = this.tables.get(e.dom)!, a = t.active.get(e.ref)!;
      const ro = (e.flags & MRO) !== 0;
      if (e.flags & DEV) { if (ro) a.devr--; else a.devw--; }
      if (e.flags & HOST) { if (ro) a.hstr--; else a.hstw--; }
      this.dropIfIdle(t, e.ref);
      this.reduce(t, e.ref, ro);
      m.maptrack.delete(h);
    }
  }

  // ---- copy -----------------------------------------------------------------------------------

  private acquire(t: RTable, ref: number, ldom: number, ro: boolean, allowTrans: boolean):
    { rc: number; mfn?: number; page?: number; start?: number; length?: number } {
    if (ref >= t.nrEntries) return { rc: GNTST.bad_gntref };
    let a = t.active.get(ref);
    if (a && a.domid !== ldom) return { rc: GNTST.general_error };
    const need = !a || (!ro && wpins(a) === 0);
    let page: number;
    if (t.version === 2 && (t.flags(ref) & 3) === Gnttab.GTF_transitive) {
      if (need) { const rc = this.setStatus(t, ref, ro, false, ldom); if (rc) return { rc }; }
      const fail = (rc: number) => { this.reduce(t, ref, ro); return { rc }; };
      if (!allowTrans) return fail(GNTST.general_error);
      const td = t.transDom(ref), tr = t.transRef(ref);
      const tt = this.tables.get(td);
      if (td === t.domid || !tt) return fail(GNTST.general_error);
      const r = this.acquire(tt, tr, t.domid, ro, false);
      if (r.rc) return fail(r.rc);
      if (a && (a.mfn !== r.mfn || a.start !== r.start || a.length !== r.length || a.transDom !== td || a.transRef !== tr || !a.sub)) {
        this.releaseCopy(tt, tr, ro);
        return fail(GNTST.general_error);
      }
      if (!a) {
        a = { hstw: 0, hstr: 0, devw: 0, devr: 0, domid: ldom, mfn: r.mfn!, start: r.start!, length: r.length!, sub: true, transDom: td, transRef: tr };
        t.active.set(ref, a);
      }
      page = r.page!;
    } else if (need) {
      const rc = this.setStatus(t, ref, ro, false, ldom);
      if (rc) return { rc };
      const f = t.frame(ref);
      if (!this.ownedFresh(f, t.domid)) { this.reduce(t, ref, ro); return { rc: GNTST.bad_page }; }
      page = f;
      if (!a) {
        const sub = t.version === 2 && (t.flags(ref) & SUB) !== 0;
        a = {
          hstw: 0, hstr: 0, devw: 0, devr: 0, domid: ldom, mfn: f, start: sub ? t.subOff(ref) : 0, length: sub ? t.subLen(ref) : 4096,
          sub, transDom: t.domid, transRef: ref,
        };
        t.active.set(ref, a);
      }
    } else {
      if (this.ownerIfLive(a!.mfn) !== t.domid) return { rc: GNTST.bad_domain };
      page = a!.mfn;
    }
    if (ro) a!.hstr++; else a!.hstw++;
    return { rc: GNTST.okay, mfn: a!.mfn, page, start: a!.start, length: a!.length };
  }

  private releaseCopy(t: RTable, ref: number, ro: boolean): void {
    const a = t.active.get(ref)!;
    if (ro) a.hstr--; else a.hstw--;
    this.dropIfIdle(t, ref);
    this.reduce(t, ref, ro);
    if (a.transDom !== t.domid) this.releaseCopy(this.tables.get(a.transDom)!, a.transRef, ro);
  }

  copy(caller: number, op: { src: CopyEnd; dst: CopyEnd; len: number }): number {
    const { src, dst, len } = op;
    const dom = (e: CopyEnd): number | { rc: number } => {
      if (e.domid !== DOMID_SELF && e.ref === undefined) return { rc: GNTST.permission_denied };
      const d = e.domid === DOMID_SELF ? caller : e.domid;
      return this.tables.has(d) ? d : { rc: GNTST.bad_domain };
    };
    const sd = dom(src);
    if (typeof sd !== 'number') return sd.rc;
    const dd = dom(dst);
    if (typeof dd !== 'number') return dd.rc;
    const held: (() => void)[] = [];
    const releaseAll = () => { for (const f of held.reverse()) f(); };
    const claim = (e: CopyEnd, d: number, ro: boolean): { rc: number; mfn?: number; start?: number; length?: number } => {
      let page: number, mfn: number, start = 0, length = 4096;
      if (e.ref !== undefined) {
        const t = this.tables.get(d)!;
        const r = this.acquire(t, e.ref, caller, ro, true);
        if (r.rc) return r;
        held.push(() => this.releaseCopy(t, e.ref!, ro));
        page = r.page!; mfn = r.mfn!; start = r.start!; length = r.length!;
      } else {
        if (!this.ownedFresh(e.gmfn!, d)) return { rc: GNTST.bad_page };
        page = mfn = e.gmfn!;
      }
      if (!ro && !this.writable(page)) return { rc: GNTST.general_error };
      return { rc: 0, mfn, start, length };
    };
    const s = claim(src, sd, true);
    if (s.rc) { releaseAll(); return s.rc; }
    const d = claim(dst, dd, false);
    if (d.rc) { releaseAll(); return d.rc; }
    let rc = 0;
    if (src.offset + len > 4096 || dst.offset + len > 4096) rc = GNTST.bad_copy_arg;
    else if (src.offset < s.start! || src.offset + len > s.start! + s.length!) rc = GNTST.general_error;
    else if (dst.offset < d.start! || dst.offset + len > d.start! + d.length!) rc = GNTST.general_error;
    else {
      const bytes = this.mem.get(s.mfn!)!.slice(src.offset, src.offset + len);
      this.mem.get(d.mfn!)!.set(bytes, dst.offset);
    }
    releaseAll();
    return rc;
  }

  // ---- the granter's own operations -----------------------------------------------------------

  setup(g: number, n: number): number {
    const t = this.tables.get(g)!;
    if (n > t.maxFrames) return GNTST.general_error;
    t.nrFrames = Math.max(t.nrFrames, n);
    if (t.version === 2) t.statusFrames = Math.max(t.statusFrames, Math.ceil(t.nrFrames / 8));
    return GNTST.okay;
  }

  setVersion(g: number, v: number): { rc: number; version: number } {
    const t = this.tables.get(g)!;
    const out = (rc: number) => ({ rc, version: t.version });
    if (v !== 1 && v !== 2) return out(ERR.EINVAL);
    if (v === t.version) return out(0);
    for (const [ref, a] of t.active) if (ref >= 8 && pins(a) > 0) return out(ERR.EBUSY);
    const saved: Uint8Array[] = [];
    for (let i = 0; i < 8; i++) {
      const e = new Uint8Array(8), dv = new DataView(e.buffer);
      const type = t.flags(i) & 3;
      if (t.version === 1) e.set(t.raw(i).slice(0, 8));
      else if (type === Gnttab.GTF_transitive || (type === PERMIT && t.frame(i) >= 2 ** 32)) return out(ERR.ERANGE);
      else if (type === PERMIT) {
        dv.setUint16(0, t.flags(i) | (t.status.get(i) ?? 0), true);
        dv.setUint16(2, t.edomid(i), true);
        dv.setUint32(4, t.frame(i), true);
      }
      saved.push(e);
    }
    t.entries.clear();
    t.status.clear();
    t.version = v as 1 | 2;
    t.statusFrames = v === 2 ? Math.ceil(t.nrFrames / 8) : 0;
    for (let i = 0; i < 8; i++) {
      const s = new DataView(saved[i].buffer);
      if (v === 1) t.raw(i).set(saved[i]);
      else {
        const f = s.getUint16(0, true);
        if (f & (READING | WRITING)) t.status.set(i, f & (READING | WRITING));
        const dv = t.dv(i);
        dv.setUint16(0, f & ~(READING | WRITING), true);
        dv.setUint16(2, s.getUint16(2, true), true);
        dv.setBigUint64(8, BigInt(s.getUint32(4, true)), true);
      }
    }
    return out(0);
  }

  swap(g: number, a: number, b: number): number {
    const t = this.tables.get(g)!;
    if (a >= t.nrEntries || b >= t.nrEntries) return GNTST.bad_gntref;
    if (a === b) return GNTST.okay;
    if (t.active.has(a) || t.active.has(b)) return GNTST.eagain;
    const ea = t.raw(a).slice(), eb = t.raw(b).slice();
    t.raw(a).set(eb); t.raw(b).set(ea);
    const sa = t.status.get(a) ?? 0, sb = t.status.get(b) ?? 0;
    t.status.set(a, sb); t.status.set(b, sa);
    return GNTST.okay;
  }

  /** The guest's revocation: compare-and-swap of the flags to 0 unless in use. */
  revoke(g: number, ref: number): boolean {
    const t = this.tables.get(g)!;
    if (t.statusBits(ref) !== 0) return false;
    t.setFlags(ref, 0);
    return true;
  }
}

export interface CopyEnd { ref?: number; gmfn?: number; domid: number; offset: number }
