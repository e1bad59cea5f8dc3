// Grant tables: the state Xen keeps per domain (xen/common/grant_table.c), with no page
// references, page tables or guest-memory marshalling of its own (those are ops.ts and
// hypercall/gnttab.ts).
//
//   GrantTable   one domain's own table, as the granter. The shared entries live in "grant
//                frames": Xen-allocated frames shared writable with the domain, which maps
//                them by the MFNs setup_table returns and writes entries into them directly.
//                Version 1 entries are {u16 flags, u16 domid, u32 frame} (512 per frame);
//                version 2 entries are 16 bytes (256 per frame: full_page, sub_page or
//                transitive) with the GTF_reading/GTF_writing bits in separate status frames
//                (u16 per entry, 2048 per frame). Beside them, Xen-private "active entries":
//                for each grant in use, the pin counts (host/device x read/write, 8 bits
//                each, as Xen's GNTPIN_*), which domain uses it and which frame it resolved
//                to when first pinned. While pinned, Xen works from the active entry, so a
//                granter that rewrites an entry in use changes nothing that matters; the
//                GTF_reading/GTF_writing bits stay set until the last pin of that kind goes.
//   Maptrack     one domain's active mappings of other domains' grants, as the grantee:
//                handle -> {GNTMAP_* flags still mapped, granting domid, ref}.
//
// Memory is reached through two small interfaces so the model stays pure: GrantMem (entry
// reads and writes by machine address) and GrantFrames (allocating, sharing and freeing the
// grant and status frames). ops.ts implements both over the host's machine memory and the
// mm module's page-type state.
//
// Snapshots: toJSON/fromJSON name every field; frame contents are RAM (saved with memory),
// the page references that grant mappings hold are the mm module's state.

import { Errno } from '../errno.js';

/** GTF_* (grant_table.h): entry type and flags. */
export const enum Gtf {
  invalid = 0, permit_access = 1, accept_transfer = 2, transitive = 3, type_mask = 3,
  readonly = 1 << 2, reading = 1 << 3, writing = 1 << 4, PWT = 1 << 5, PCD = 1 << 6, PAT = 1 << 7,
  sub_page = 1 << 8,
  transfer_committed = 1 << 2, transfer_completed = 1 << 3,
}

/** GNTMAP_* (grant_table.h). Bits 16..31 are guest-available PTE bits (only 3 are used). */
export const enum Gntmap { device_map = 1, host_map = 2, readonly = 4, application_map = 8, contains_pte = 16 }
export const GNTMAP_GUEST_AVAIL0 = 16;

/** GNTST_* (grant_table.h). */
export const enum Gnst {
  okay = 0, general_error = -1, bad_domain = -2, bad_gntref = -3, bad_handle = -4, bad_virt_addr = -5,
  bad_dev_addr = -6, no_device_space = -7, permission_denied = -8, bad_page = -9, bad_copy_arg = -10,
  address_too_big = -11, eagain = -12, no_space = -13,
}
export const GNTST_NAMES = [
  'okay', 'general_error', 'bad_domain', 'bad_gntref', 'bad_handle', 'bad_virt_addr', 'bad_dev_addr',
  'no_device_space', 'permission_denied', 'bad_page', 'bad_copy_arg', 'address_too_big', 'eagain', 'no_space',
];

/** Pin counts of an active entry (Xen's GNTPIN_*): four 8-bit counters in one number. A
 *  pin that would take a counter past 127 is refused (general_error). */
export const enum Pin {
  hstw = 0x1, hstr = 0x100, devw = 0x10000, devr = 0x1000000,
  hstw_mask = 0xff, hstr_mask = 0xff00, devw_mask = 0xff0000,
}
/** GNTPIN_devr_mask (kept out of the enum: it does not fit an int32 literal). */
export const PIN_DEVR_MASK = 0xff000000;
const PIN_WRITE_MASK = Pin.hstw_mask | Pin.devw_mask;

export const GNTTAB_NR_RESERVED_ENTRIES = 8;
export const GNTTAB_RESERVED_CONSOLE = 0;
export const GNTTAB_RESERVED_XENSTORE = 1;
export const V1_PER_FRAME = 512;
export const V2_PER_FRAME = 256;
export const STATUS_PER_FRAME = 2048;
/** struct grant_mapping is 8 bytes: 512 maptrack entries per frame. */
export const MAPTRACK_PER_FRAME = 512;
/** Xen allocates at least this many grant frames (INITIAL_NR_GRANT_FRAMES). */
export const INITIAL_NR_GRANT_FRAMES = 1;

const TWO32 = 4294967296;

/** Entry offsets within a v1 (8-byte) or v2 (16-byte) entry. */
export const enum GntEnt {
  FLAGS = 0, DOMID = 2,
  V1_FRAME = 4, V1_SIZE = 8,
  V2_FRAME = 8, V2_PAGE_OFF = 4, V2_LENGTH = 6, V2_TRANS_DOMID = 4, V2_TRANS_GREF = 8, V2_SIZE = 16,
}

/** Entry access by machine address (little-endian). Writes must keep decode caches honest. */
export interface GrantMem {
  u16(pa: number): number;
  u32(pa: number): number;
  /** 64-bit read (exact below 2^53; larger values come back inexact but >= 2^53). */
  u64(pa: number): number;
  set16(pa: number, v: number): void;
  set32(pa: number, v: number): void;
  set64(pa: number, v: number): void;
  /** Zero a whole frame. */
  zero(mfn: number): void;
}

/** The frames a table is made of. */
export interface GrantFrames {
  /** A new zeroed frame shared writable with domain `domid` (share_xen_page_with_guest), or -1. */
  alloc(domid: number): number;
  /** Whether something besides the sharing itself references the frame (a guest mapping). */
  inUse(mfn: number): boolean;
  /** Stop sharing the frame and free it. */
  free(mfn: number): void;
}

/** One grant in use (Xen's struct active_grant_entry). */
export interface ActiveEntry {
  /** GNTPIN_* counters. */
  pin: number;
  /** The domain using the grant (the only one that may pin it while pinned). */
  domid: number;
  /** The frame the grant resolved to when first pinned. */
  mfn: number;
  /** The part of the frame that may be accessed (sub-page and transitive grants). */
  start: number;
  length: number;
  /** Sub-page or transitive: copy only, never mapped. */
  subPage: boolean;
  /** For a transitive grant, the grant it stands for (else this table's domid and ref). */
  transDom: number;
  transRef: number;
}

export interface GrantTableState {
  domid: number; version: number; maxVersion: number; maxFrames: number; dying: boolean;
  shared: number[]; status: number[];
  active: { ref: number; pin: number; domid: number; mfn: number; start: number; length: number; subPage: boolean; transDom: number; transRef: number }[];
}

export class GrantTable {
  /** gt_version: 1 or 2 (Xen starts every domain at 1). */
  version: 1 | 2 = 1;
  /** Grant frames and (version 2) status frames, as MFNs. */
  shared: number[] = [];
  status: number[] = [];
  /** Active entries by ref; present only while pinned. */
  readonly active = new Map<number, ActiveEntry>();
  /** The domain is gone; the table stays while others still hold its grants. */
  dying = false;

  constructor(
    readonly domid: number,
    /** max_grant_frames. */
    public maxFrames: number,
    /** The highest version set_version accepts (Xen's gnttab max-ver, default 2). */
    public maxVersion: 1 | 2,
    readonly mem: GrantMem,
    readonly frames: GrantFrames,
  ) {}

  get nrFrames(): number { return this.shared.length; }
  get perFrame(): number { return this.version === 1 ? V1_PER_FRAME : V2_PER_FRAME; }
  /** nr_grant_entries. */
  get nrEntries(): number { return this.shared.length * this.perFrame; }
  /** Status frames a table of n grant frames needs in version 2. */
  static statusFramesFor(n: number): number { return Math.ceil((n * V2_PER_FRAME) / STATUS_PER_FRAME); }

  // ---- entry access ------------------------------------------------------------------

  /** Machine address of entry ref (ref < nrEntries). */
  entryPa(ref: number): number {
    const per = this.perFrame;
    return this.shared[Math.floor(ref / per)] * 4096 + (ref % per) * (this.version === 1 ? GntEnt.V1_SIZE : GntEnt.V2_SIZE);
  }
  /** Machine address of the u16 holding ref's GTF_reading/GTF_writing bits. */
  statusPa(ref: number): number {
    if (this.version === 1) return this.entryPa(ref);
    return this.status[Math.floor(ref / STATUS_PER_FRAME)] * 4096 + (ref % STATUS_PER_FRAME) * 2;
  }
  flags(ref: number): number { return this.mem.u16(this.entryPa(ref) + GntEnt.FLAGS); }
  entryDomid(ref: number): number { return this.mem.u16(this.entryPa(ref) + GntEnt.DOMID); }
  /** The frame field: v1 u32, v2 full_page/sub_page u64. */
  frame(ref: number): number {
    const pa = this.entryPa(ref);
    return this.version === 1 ? this.mem.u32(pa + GntEnt.V1_FRAME) : this.mem.u64(pa + GntEnt.V2_FRAME);
  }
  setFrame(ref: number, mfn: number): void {
    const pa = this.entryPa(ref);
    if (this.version === 1) this.mem.set32(pa + GntEnt.V1_FRAME, mfn);
    else this.mem.set64(pa + GntEnt.V2_FRAME, mfn);
  }
  subPageOff(ref: number): number { return this.mem.u16(this.entryPa(ref) + GntEnt.V2_PAGE_OFF); }
  subPageLen(ref: number): number { return this.mem.u16(this.entryPa(ref) + GntEnt.V2_LENGTH); }
  transDomid(ref: number): number { return this.mem.u16(this.entryPa(ref) + GntEnt.V2_TRANS_DOMID); }
  transGref(ref: number): number { return this.mem.u32(this.entryPa(ref) + GntEnt.V2_TRANS_GREF); }
  statusFlags(ref: number): number { return this.mem.u16(this.statusPa(ref)); }
  setFlags(ref: number, f: number): void { this.mem.set16(this.entryPa(ref) + GntEnt.FLAGS, f); }
  private orStatus(ref: number, bits: number): void {
    if (this.dying) return; // the frames may be freed already
    const pa = this.statusPa(ref);
    this.mem.set16(pa, this.mem.u16(pa) | bits);
  }
  /** gnttab_clear_flags. */
  clearStatus(ref: number, bits: number): void {
    if (this.dying) return;
    const pa = this.statusPa(ref);
    this.mem.set16(pa, this.mem.u16(pa) & ~bits);
  }

  pinOf(ref: number): number { return this.active.get(ref)?.pin ?? 0; }

  // ---- the pin protocol --------------------------------------------------------------

  /**
   * _set_status: before a new pin (or the first write pin), check the entry and set
   * GTF_reading (and GTF_writing). If the entry is not pinned yet it must be of type
   * permit_access (not sub-page if mapping; copies also accept transitive in v2) and name
   * ldomid; a write pin needs the grant not to be read-only. GNTST_okay or general_error.
   */
  setStatus(ref: number, readonly: boolean, mapflag: boolean, ldomid: number): Gnst {
    const flags = this.flags(ref), domid = this.entryDomid(ref);
    const mask = mapflag ? Gtf.type_mask | Gtf.sub_page : Gtf.type_mask;
    const type = flags & mask;
    const pinned = this.pinOf(ref) !== 0;
    const typeOk = type === Gtf.permit_access || (this.version === 2 && !mapflag && type === Gtf.transitive);
    if (!pinned && (!typeOk || domid !== ldomid)) return Gnst.general_error;
    if (!readonly && (flags & Gtf.readonly) !== 0) return Gnst.general_error;
    this.orStatus(ref, readonly ? Gtf.reading : Gtf.reading | Gtf.writing);
    return Gnst.okay;
  }

  /** reduce_status_for_pin: after pins went away, clear GTF_reading once nothing is pinned
   *  and GTF_writing once no write pin is left (for a write-side release). */
  reduceStatusForPin(ref: number, readonly: boolean): void {
    const pin = this.pinOf(ref);
    let clear = pin !== 0 ? 0 : Gtf.reading;
    if (!readonly && (pin & PIN_WRITE_MASK) === 0) clear |= Gtf.writing;
    if (clear !== 0) this.clearStatus(ref, clear);
  }

  /** Adjust an active entry's pin; the entry is dropped when the last pin goes. */
  addPin(ref: number, delta: number): void {
    const a = this.active.get(ref);
    if (!a) throw new Error(`gnttab: pin change on inactive ref ${ref} of d${this.domid}`);
    a.pin += delta;
    if (a.pin < 0) throw new Error(`gnttab: pin underflow on ref ${ref} of d${this.domid}`);
    if (a.pin === 0) this.active.delete(ref);
  }

  /** Some entry at or above `from` is pinned (set_version's test; reserved entries may be). */
  pinnedFrom(from: number): boolean {
    for (const [ref, a] of this.active) if (ref >= from && a.pin !== 0) return true;
    return false;
  }

  // ---- growth and versions -----------------------------------------------------------

  /** gnttab_grow_table to n frames (n <= maxFrames checked by the caller); false if memory ran out. */
  grow(n: number): boolean {
    if (n < INITIAL_NR_GRANT_FRAMES) n = INITIAL_NR_GRANT_FRAMES;
    const added: number[] = [];
    for (let i = this.shared.length; i < n; i++) {
      const m = this.frames.alloc(this.domid);
      if (m < 0) { for (const f of added) this.frames.free(f); return false; }
      added.push(m);
    }
    if (this.version === 2 && !this.populateStatus(Math.max(n, this.shared.length))) {
      for (const f of added) this.frames.free(f);
      return false;
    }
    this.shared.push(...added);
    return true;
  }

  private populateStatus(nrFrames: number): boolean {
    const want = GrantTable.statusFramesFor(nrFrames);
    const added: number[] = [];
    for (let i = this.status.length; i < want; i++) {
      const m = this.frames.alloc(this.domid);
      if (m < 0) { for (const f of added) this.frames.free(f); return false; }
      added.push(m);
    }
    this.status.push(...added);
    return true;
  }

  /**
   * gnttab_set_version for this (the calling) domain: 0 or -errno. The version in effect
   * afterwards is this.version. Switching needs every entry from 8 up unpinned (-EBUSY);
   * entries 0..7 (the toolstack's console and xenstore grants) are carried over, GTF_reading
   * and GTF_writing moving between the flags and the status frames; everything else is
   * cleared. Going back to v1 needs the status frames unmapped by the guest (-EBUSY) and
   * the reserved entries representable in v1 (-ERANGE). Version 2 beyond the domain's
   * maximum: -ENOSYS.
   */
  setVersion(v: number): number {
    if (v !== 1 && v !== 2) return -Errno.EINVAL;
    if (v === 2 && this.maxVersion === 1) return -Errno.ENOSYS; // as before set_version existed
    if (v === this.version) return 0;
    if (this.pinnedFrom(GNTTAB_NR_RESERVED_ENTRIES)) return -Errno.EBUSY;
    const nres = Math.min(GNTTAB_NR_RESERVED_ENTRIES, this.nrEntries);
    if (this.version === 1) {
      if (!this.populateStatus(this.shared.length)) return -Errno.ENOMEM;
    } else {
      for (let i = 0; i < nres; i++) {
        const type = this.flags(i) & Gtf.type_mask;
        if ((type === Gtf.permit_access && this.frame(i) >= TWO32) || type === Gtf.transitive) return -Errno.ERANGE;
      }
    }
    // The reserved entries in v1 form.
    const saved: { flags: number; domid: number; frame: number }[] = [];
    for (let i = 0; i < nres; i++) {
      if (this.version === 1) saved.push({ flags: this.flags(i), domid: this.entryDomid(i), frame: this.frame(i) });
      else {
        const flags = this.flags(i);
        if ((flags & Gtf.type_mask) === Gtf.permit_access) {
          saved.push({ flags: flags | this.statusFlags(i), domid: this.entryDomid(i), frame: this.frame(i) });
        } else saved.push({ flags: 0, domid: 0, frame: 0 });
      }
    }
    if (v === 1) {
      for (const m of this.status) if (this.frames.inUse(m)) return -Errno.EBUSY;
      for (const m of this.status) this.frames.free(m);
      this.status = [];
    }
    for (const m of this.shared) this.mem.zero(m);
    this.version = v;
    for (let i = 0; i < saved.length; i++) {
      const s = saved[i], pa = this.entryPa(i);
      if (v === 1) {
        this.mem.set16(pa + GntEnt.FLAGS, s.flags);
        this.mem.set16(pa + GntEnt.DOMID, s.domid);
        this.mem.set32(pa + GntEnt.V1_FRAME, s.frame);
      } else {
        this.mem.set16(this.statusPa(i), s.flags & (Gtf.reading | Gtf.writing));
        this.mem.set16(pa + GntEnt.FLAGS, s.flags & ~(Gtf.reading | Gtf.writing));
        this.mem.set16(pa + GntEnt.DOMID, s.domid);
        this.mem.set64(pa + GntEnt.V2_FRAME, s.frame);
      }
    }
    return 0;
  }

  // ---- snapshots ---------------------------------------------------------------------

  toJSON(): GrantTableState {
    const active = [...this.active].sort((a, b) => a[0] - b[0]).map(([ref, a]) => ({ ref, ...a }));
    return {
      domid: this.domid, version: this.version, maxVersion: this.maxVersion, maxFrames: this.maxFrames, dying: this.dying,
      shared: [...this.shared], status: [...this.status], active,
    };
  }

  static fromJSON(s: GrantTableState, mem: GrantMem, frames: GrantFrames): GrantTable {
    if (s.version !== 1 && s.version !== 2) throw new Error(`gnttab snapshot: bad version ${s.version}`);
    if (s.maxVersion !== 1 && s.maxVersion !== 2) throw new Error(`gnttab snapshot: bad max version ${s.maxVersion}`);
    const t = new GrantTable(s.domid, s.maxFrames, s.maxVersion, mem, frames);
    t.version = s.version;
    t.dying = s.dying;
    t.shared = [...s.shared];
    t.status = [...s.status];
    for (const a of s.active) {
      t.active.set(a.ref, {
        pin: a.pin, domid: a.domid, mfn: a.mfn, start: a.start, length: a.length, subPage: a.subPage,
        transDom: a.transDom, transRef: a.transRef,
      });
    }
    return t;
  }
}

/** One mapping a domain holds (Xen's struct grant_mapping). */
export interface MapEntry {
  /** GNTMAP_* still in effect: device_map and/or host_map, plus readonly etc. as requested. */
  flags: number;
  /** The granting domain and its ref. */
  dom: number;
  ref: number;
}

export interface MaptrackState { domid: number; limit: number; entries: [number, number, number, number][] }

/** A domain's active mappings of grants, by handle. */
export class Maptrack {
  private readonly entries: (MapEntry | null)[] = [];
  private used = 0;

  constructor(readonly domid: number, /** Handles at most (max_maptrack_frames * 512). */ public limit: number) {}

  get count(): number { return this.used; }

  /** The lowest free handle, or -1 when the domain has as many mappings as it may. */
  alloc(e: MapEntry): number {
    if (this.used >= this.limit) return -1;
    let h = this.entries.indexOf(null);
    if (h < 0) h = this.entries.length;
    this.entries[h] = { ...e };
    this.used++;
    return h;
  }

  get(h: number): MapEntry | null {
    if (!Number.isInteger(h) || h < 0 || h >= this.entries.length) return null;
    return this.entries[h];
  }

  free(h: number): void {
    if (this.entries[h] === null || this.entries[h] === undefined) return;
    this.entries[h] = null;
    this.used--;
    while (this.entries.length > 0 && this.entries[this.entries.length - 1] === null) this.entries.pop();
  }

  /** [handle, entry] for every mapping, in handle order. */
  list(): [number, MapEntry][] {
    const out: [number, MapEntry][] = [];
    this.entries.forEach((e, h) => { if (e) out.push([h, e]); });
    return out;
  }

  toJSON(): MaptrackState {
    return { domid: this.domid, limit: this.limit, entries: this.list().map(([h, e]) => [h, e.flags, e.dom, e.ref]) };
  }

  static fromJSON(s: MaptrackState): Maptrack {
    const m = new Maptrack(s.domid, s.limit);
    for (const [h, flags, dom, ref] of s.entries) {
      while (m.entries.length < h) m.entries.push(null);
      m.entries[h] = { flags, dom, ref };
      m.used++;
    }
    return m;
  }
}
