// Property: random sequences of pins, unpins, base-pointer changes, mmu_update batches,
// update_va_mapping and emulated page-table writes (ptwr), on a domU's frames and some
// frames it does not own, agree with a small reference model on every return code, and
// never leave (a) a writable mapping of a page table in any table the domain can use, or
// (b) a mapping of a frame the domain does not own.
//
// The model is written from Xen's documented semantics, not from the reference counts: it
// keeps the frames' contents, the pins and the two base pointers, and derives which frames
// are in use as what by walking the tables from those roots (a page table is in use iff it
// is reachable; a frame is "writable" iff an in-use L1 maps it RW). Validation of a new
// entry is a depth-first check over that typing, in Xen's order. After each step the
// implementation's types, reference counts (recomputed from the model's roots and entries),
// write-protect flags, page contents and M2P must equal the model's; and a "hardware view"
// walk of the implementation's own tables (following entries as the MMU would, linear maps
// included) checks (a) and (b) without the model.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { mmuUpdate, mmuextOp, MmuExt, updateVaMapping } from '../../../src/xen/hypercall/mmu.js';
import { initM2P, m2pL4Entry, machphysMfnList } from '../../../src/xen/mm/m2p.js';
import { PGT, PgFlag } from '../../../src/xen/mm/pagetype.js';
import { ptwrWrite } from '../../../src/xen/mm/ptwr.js';
import { PERDOMAIN_L4_SLOT, perdomainL4e } from '../../../src/xen/pv/mode.js';
import type { Domain } from '../../../src/xen/domain.js';
import type { Vcpu } from '../../../src/xen/vcpu.js';
import {
  A, D, EBUSY, EFAULT, EINVAL, ENOSYS, EPERM, G, GUEST_KERNEL, Host, NX, P, PCD, PSE, PWT, RW, US, ptr,
} from './harness.js';

const NPOOL = 10;
const W = PGT.WRITABLE;
const MFN_ALL_ONES = 0xffffffffffn;
const ADDR = 0x000ffffffffff000n;
/** Bits whose change takes the slow path (not U, A, D, G, AVAIL, 52..63). */
const SLOW = ADDR | P | RW | PWT | PCD | PSE;
const M64 = (1n << 64n) - 1n;
const isXenSlot = (i: number) => i >= 256 && i <= 271;
const mfnOf = (e: bigint) => Number((e & ADDR) >> 12n);

// ---- the world under test ------------------------------------------------------------------

interface World {
  h: Host; dom0: Domain; domU: Domain; v: Vcpu;
  pool: number[]; special: Record<string, number>; m2pE: bigint; perdomE: bigint; strict: boolean;
}

function world(strict: boolean): World {
  const h = new Host(1024);
  const dom0 = h.domain('dom0', { privileged: true });
  const domU = h.domain('domU');
  h.vcpu(dom0);
  const v = h.vcpu(domU);
  domU.vmAssist |= 1 << 2;            // writable_pagetables
  if (strict) domU.vmAssist |= 1 << 30; // m2p_strict
  const pool = h.alloc(domU, NPOOL);
  const [foreign] = h.alloc(dom0);
  initM2P(h.xen);
  const [lo, hi] = m2pL4Entry(h.xen);
  const special = {
    foreign, xen: machphysMfnList(h.xen)[0], free: h.xen.frames.frames - 1, mmio: h.xen.frames.frames + 3,
    allones: Number(MFN_ALL_ONES),
  };
  const [plo, phi] = perdomainL4e(domU);
  const big = (l: number, hh: number) => (BigInt(hh >>> 0) << 32n) | BigInt(l >>> 0);
  return { h, dom0, domU, v, pool, special, m2pE: big(lo, hi), perdomE: big(plo, phi), strict };
}

// ---- the model -----------------------------------------------------------------------------

interface Ov { types: Map<number, number>; validated: Set<number>; lin: Map<number, number> }

class Model {
  readonly mem = new Map<number, bigint[]>();
  readonly pins = new Map<number, number>();
  kbase = 0;
  ubase = 0;
  /** In-use frames: page-table level 1..4, or W. Derived (recompute). */
  types = new Map<number, number>();
  readonly m2p = new Map<number, number>();

  constructor(readonly w: World) {
    for (const m of w.pool) { this.mem.set(m, new Array(512).fill(0n)); this.m2p.set(m, w.h.xen.frames.m2p[m]); }
  }

  owned(m: number): boolean { return this.mem.has(m); }
  e(m: number, i: number): bigint { return this.mem.get(m)![i]; }
  setE(m: number, i: number, v: bigint): void { this.mem.get(m)![i] = v & M64; }

  static adjL1(e: bigint): bigint {
    if ((e & P) === 0n) return e;
    if ((e & US) === 0n) e |= US | GUEST_KERNEL;
    if ((e & GUEST_KERNEL) !== 0n) e &= ~G;
    return e;
  }
  static adjLN(e: bigint): bigint { return (e & P) !== 0n ? e | US : e; }

  overlay(): Ov {
    const validated = new Set<number>();
    for (const [m, t] of this.types) if (t >= 1 && t <= 4) validated.add(m);
    return { types: new Map(this.types), validated, lin: this.linearCounts() };
  }

  /** Linear-entry bookkeeping as derived from the tables in use. */
  linearCounts(): Map<number, number> {
    const lin = new Map<number, number>();
    for (const [t, level] of this.types) {
      if (level < 2 || level > 4) continue;
      for (let i = 0; i < 512; i++) {
        if (level === 4 && isXenSlot(i)) continue;
        const e = this.e(t, i);
        if ((e & P) === 0n) continue;
        const u = mfnOf(e);
        if (u !== t && this.types.get(u) === level) { lin.set(t, (lin.get(t) ?? 0) + 1); lin.set(u, (lin.get(u) ?? 0) - 1); }
      }
    }
    return lin;
  }

  /** get_page_and_type of a table type, validating it if new. */
  getType(m: number, want: number, ov: Ov): number {
    if (!this.owned(m)) return EINVAL;
    const t = ov.types.get(m);
    if (t !== undefined) return t === want && ov.validated.has(m) ? 0 : EINVAL;
    ov.types.set(m, want);
    for (let i = 0; i < 512; i++) {
      if (want === 4 && isXenSlot(i)) continue;
      const e = this.e(m, i);
      if ((e & P) === 0n) continue;
      const rc = want === 1 ? this.l1Entry(e, ov) : this.lnEntry(m, want, e, ov);
      if (rc !== 0) { ov.types.delete(m); return rc; }
      this.setE(m, i, want === 1 ? Model.adjL1(e) : Model.adjLN(e));
    }
    if (want === 4) {
      for (let i = 256; i <= 271; i++) this.setE(m, i, 0n);
      if (this.w.strict) this.setE(m, 256, this.w.m2pE);
      this.setE(m, PERDOMAIN_L4_SLOT, this.w.perdomE);
    }
    ov.validated.add(m);
    return 0;
  }

  l1Entry(e: bigint, ov: Ov): number {
    if ((e & (PWT | PCD | PSE)) !== 0n) return EINVAL;
    const m = mfnOf(e);
    if (m >= this.w.h.xen.frames.frames) return BigInt(m) === MFN_ALL_ONES ? EINVAL : EPERM;
    if (!this.owned(m)) return EBUSY;
    if ((e & RW) !== 0n) {
      const t = ov.types.get(m);
      if (t === undefined) ov.types.set(m, W);
      else if (t !== W) return EBUSY;
    }
    return 0;
  }

  lnEntry(table: number, level: number, e: bigint, ov: Ov): number {
    if ((e & (PWT | PCD | PSE | G)) !== 0n) return EINVAL;
    const tgt = mfnOf(e);
    const rc = this.getType(tgt, level - 1, ov);
    if (rc === EINVAL && this.linearOk(table, tgt, level, e, ov)) return 0;
    return rc;
  }

  linearOk(table: number, tgt: number, level: number, e: bigint, ov: Ov): boolean {
    if ((e & RW) !== 0n) return false;
    if (tgt === table) return true;
    if (!this.owned(tgt) || ov.types.get(tgt) !== level || !ov.validated.has(tgt)) return false;
    if ((ov.lin.get(table) ?? 0) < 0 || (ov.lin.get(tgt) ?? 0) > 0) return false;
    ov.lin.set(table, (ov.lin.get(table) ?? 0) + 1);
    ov.lin.set(tgt, (ov.lin.get(tgt) ?? 0) - 1);
    return true;
  }

  /** The in-use typing: walk from the roots; a target is a linear map iff it was already a
   *  table of the referring level (hint). Throws if the tables are inconsistent. */
  recompute(hint: Map<number, number> = this.types): void {
    const types = new Map<number, number>();
    const setW = (m: number) => {
      const c = types.get(m);
      if (c !== undefined && c !== W) throw new Error(`model: frame ${m} is both a table and writable`);
      types.set(m, W);
    };
    const visit = (m: number, level: number): void => {
      if (!this.owned(m)) throw new Error(`model: table ${m} not owned`);
      const c = types.get(m);
      if (c !== undefined) { if (c !== level) throw new Error(`model: frame ${m} typed ${c} and ${level}`); return; }
      types.set(m, level);
      for (let i = 0; i < 512; i++) {
        if (level === 4 && isXenSlot(i)) continue;
        const e = this.e(m, i);
        if ((e & P) === 0n) continue;
        const tgt = mfnOf(e);
        if (level === 1) { if ((e & RW) !== 0n) setW(tgt); continue; }
        if (tgt === m) continue;
        visit(tgt, hint.get(tgt) === level ? level : level - 1);
      }
    };
    for (const [m, l] of this.pins) visit(m, l);
    if (this.kbase) visit(this.kbase, 4);
    if (this.ubase) visit(this.ubase, 4);
    this.types = types;
  }

  // -- operations --

  pin(m: number, level: number): number {
    const ov = this.overlay();
    const rc = this.getType(m, level, ov);
    if (rc !== 0) return rc;
    if (this.pins.has(m)) return EINVAL;
    this.pins.set(m, level);
    this.recompute(ov.types);
    return 0;
  }

  unpin(m: number): number {
    if (!this.owned(m) || !this.pins.has(m)) return EINVAL;
    this.pins.delete(m);
    this.recompute();
    return 0;
  }

  newBase(m: number): number {
    if (m === this.kbase) return 0;
    const ov = this.overlay();
    const rc = this.getType(m, 4, ov);
    if (rc !== 0) return rc;
    if (!this.w.strict) this.setE(m, 256, this.w.m2pE);
    this.kbase = m;
    this.recompute(ov.types);
    return 0;
  }

  newUserBase(m: number): number {
    if (m === this.ubase) return 0;
    const ov = this.overlay();
    if (m !== 0) {
      const rc = this.getType(m, 4, ov);
      if (rc !== 0) return rc;
      if (this.w.strict) this.setE(m, 256, 0n);
    }
    this.ubase = m;
    this.recompute(ov.types);
    return 0;
  }

  modL1(m: number, i: number, val: bigint, pad: boolean): number {
    const old = this.e(m, i);
    const keep = pad ? old & (A | D) : 0n;
    if ((val & P) !== 0n) {
      if ((val & (PWT | PCD | PSE)) !== 0n) return EINVAL;
      if ((old & P) !== 0n && ((old ^ val) & SLOW) === 0n) { this.setE(m, i, Model.adjL1(val) | keep); return 0; }
      const ov = this.overlay();
      const rc = this.l1Entry(val, ov);
      if (rc !== 0) return rc;
      this.setE(m, i, Model.adjL1(val) | keep);
    } else this.setE(m, i, val | keep);
    this.recompute();
    return 0;
  }

  modLN(m: number, i: number, level: number, val: bigint, pad: boolean): number {
    if (level === 4 && isXenSlot(i)) return EINVAL;
    const old = this.e(m, i);
    const keep = pad ? old & (A | D) : 0n;
    if ((val & P) !== 0n) {
      if ((val & (PWT | PCD | PSE | G)) !== 0n) return EINVAL;
      if ((old & P) !== 0n && ((old ^ val) & SLOW) === 0n) { this.setE(m, i, Model.adjLN(val) | keep); return 0; }
      const ov = this.overlay();
      const rc = this.lnEntry(m, level, val, ov);
      if (rc !== 0) return rc;
      this.setE(m, i, Model.adjLN(val) | keep);
      this.recompute(ov.types);
    } else { this.setE(m, i, val | keep); this.recompute(); }
    return 0;
  }

  mmuOne(m: number, i: number, cmd: number, val: bigint): number {
    if (cmd >= 4) return ENOSYS;
    if (!this.owned(m)) return EINVAL;
    if (cmd === 1) { this.m2p.set(m, val >= 0xffffffffn ? 0xffffffff : Number(val)); return 0; }
    const t = this.types.get(m);
    if (t === undefined || t === W) { this.setE(m, i, val); return 0; }
    return t === 1 ? this.modL1(m, i, val, cmd === 2) : this.modLN(m, i, t, val, cmd === 2);
  }

  uvm(lin: number, val: bigint, flags: bigint): number {
    let rc = EINVAL;
    const inXen = lin >= 0x800000000000 && lin < 0x880000000000;
    if (lin !== -1 && !inXen && this.kbase !== 0) {
      let t = this.kbase, ok = true;
      for (let level = 4; level >= 2 && ok; level--) {
        const e = this.e(t, Math.floor(lin / 2 ** (12 + 9 * (level - 1))) & 511);
        if ((e & P) === 0n || (level === 2 && (e & PSE) !== 0n)) ok = false;
        else t = mfnOf(e);
      }
      if (ok && this.owned(t) && this.types.get(t) === 1) rc = this.modL1(t, Math.floor(lin / 4096) & 511, val, false);
    }
    const type = flags & 3n, bmap = flags & ~3n;
    if ((type === 1n || type === 2n) && bmap !== 0n && bmap !== 4n && rc === 0) rc = EFAULT; // the bitmaps we use are unreadable
    return rc;
  }

  ptwr(m: number, off: number, size: number, val: bigint): boolean {
    if (!this.owned(m) || this.types.get(m) !== 1 || off % size !== 0) return false;
    const i = off >> 3, sh = BigInt((off & 7) * 8), mask = ((1n << BigInt(size * 8)) - 1n) << sh;
    const nv = size === 8 ? val & M64 : (this.e(m, i) & ~mask) | ((val << sh) & mask);
    if ((nv & P) !== 0n) {
      const ov = this.overlay();
      if (this.l1Entry(nv, ov) !== 0) return false;
      this.setE(m, i, Model.adjL1(nv));
    } else this.setE(m, i, nv);
    this.recompute();
    return true;
  }
}

// ---- checks against the implementation -----------------------------------------------------

function expectedCounts(md: Model): { tc: Map<number, number>; c: Map<number, number> } {
  const tc = new Map<number, number>(), c = new Map<number, number>();
  const inc = (mp: Map<number, number>, m: number) => mp.set(m, (mp.get(m) ?? 0) + 1);
  for (const m of md.pins.keys()) { inc(tc, m); inc(c, m); }
  for (const b of [md.kbase, md.ubase]) if (b) { inc(tc, b); inc(c, b); }
  for (const [t, level] of md.types) {
    if (level < 1 || level > 4) continue;
    for (let i = 0; i < 512; i++) {
      if (level === 4 && isXenSlot(i)) continue;
      const e = md.e(t, i);
      if ((e & P) === 0n) continue;
      const u = mfnOf(e);
      if (level === 1) { inc(c, u); if ((e & RW) !== 0n) inc(tc, u); }
      else if (u !== t) { inc(c, u); inc(tc, u); }
    }
  }
  return { tc, c };
}

function checkAgainstModel(w: World, md: Model): void {
  const pi = w.h.pi;
  const { tc, c } = expectedCounts(md);
  for (const m of w.pool) {
    const implType = pi.typeCount[m] > 0 ? pi.type[m] : PGT.NONE;
    expect(implType, `type of ${m}`).toBe(md.types.get(m) ?? PGT.NONE);
    expect(pi.typeCount[m], `type count of ${m}`).toBe(tc.get(m) ?? 0);
    expect(pi.count[m], `count of ${m}`).toBe(c.get(m) ?? 0);
    const t = md.types.get(m);
    expect(w.h.xen.writeProtected[m], `write protection of ${m}`).toBe(t !== undefined && t >= 1 && t <= 4 ? 1 : 0);
    expect((pi.flags[m] & PgFlag.PINNED) !== 0).toBe(md.pins.has(m));
    const ent = md.mem.get(m)!;
    const got = new BigUint64Array(w.h.phys.u8.buffer, m * 4096, 512);
    for (let i = 0; i < 512; i++) if (got[i] !== ent[i]) expect(got[i], `entry ${i} of ${m}`).toBe(ent[i]);
    expect(w.h.xen.frames.m2p[m]).toBe(md.m2p.get(m));
    // the guest-visible copy
    const data = machphysMfnList(w.h.xen)[0];
    const seen = w.h.phys.dv.getBigUint64(data * 4096 + m * 8, true);
    expect(seen).toBe(md.m2p.get(m) === 0xffffffff ? M64 : BigInt(md.m2p.get(m)!));
  }
  expect(w.v.kernelCr3).toBe(md.kbase);
  expect(w.v.userCr3).toBe(md.ubase);
  for (const k of ['foreign', 'free'] as const) {
    expect(pi.count[w.special[k]]).toBe(0);
    expect(pi.typeCount[w.special[k]]).toBe(0);
  }
  expect([pi.count[w.special.xen], pi.typeCount[w.special.xen]]).toEqual([1, 1]);
}

/**
 * The security invariants, from the implementation's state alone: follow every present
 * entry of every pinned table and base pointer as the MMU would (a frame is read at whatever
 * level the walk reaches it, so linear maps are followed), and check that (b) every frame
 * reached is the domain's, and (a) a leaf reached writable (RW at every level) is not a page
 * table or descriptor page.
 */
function checkSecurity(w: World): void {
  const pi = w.h.pi, owner = w.h.xen.frames.owner, dv = w.h.phys.dv, dom = w.domU.id;
  const seen = new Set<number>();
  const isTableType = (m: number) => pi.typeCount[m] > 0 && pi.type[m] >= PGT.L1 && pi.type[m] <= PGT.SEG_DESC;
  // viaXen: reached through one of Xen's L4 slots (possible below the root only through a
  // linear map of an L4): those mappings are Xen's (the read-only M2P, the per-domain area)
  // and may reach Xen's frames, read-only; everything the guest wrote must reach its own.
  const visit = (m: number, level: number, rw: boolean, viaXen: boolean): void => {
    const key = ((m * 8 + level) * 2 + (rw ? 1 : 0)) * 2 + (viaXen ? 1 : 0);
    if (seen.has(key)) return;
    seen.add(key);
    const isL4 = !viaXen && owner[m] === dom && pi.typeCount[m] > 0 && pi.type[m] === PGT.L4;
    for (let i = 0; i < 512; i++) {
      const xenSlot = isL4 && isXenSlot(i);
      if (level === 4 && xenSlot) continue; // a root's Xen slots: checked below
      const lo = dv.getInt32(m * 4096 + i * 8, true);
      if ((lo & 1) === 0) continue;
      const e = dv.getBigUint64(m * 4096 + i * 8, true);
      const t = mfnOf(e), erw = rw && (e & RW) !== 0n, vx = viaXen || xenSlot;
      if (owner[t] !== dom && !(vx && owner[t] === 0x7ff2)) {
        throw new Error(`(b) frame ${t} of domain ${owner[t]} mapped by ${m}[${i}] at level ${level}`);
      }
      if (level === 1) {
        if (erw && (vx || isTableType(t))) throw new Error(`(a) frame ${t} (type ${pi.type[t]}) mapped writable by ${m}[${i}]`);
      } else {
        if ((e & PSE) !== 0n) throw new Error(`superpage in ${m}[${i}] at level ${level}`);
        visit(t, level - 1, erw, vx);
      }
    }
  };
  const roots: [number, number][] = [];
  for (let m = 0; m < pi.frames; m++) if ((pi.flags[m] & PgFlag.PINNED) !== 0) roots.push([m, pi.type[m]]);
  for (const b of [w.v.kernelCr3, w.v.userCr3]) if (b) roots.push([b, 4]);
  for (const [m, level] of roots) {
    visit(m, level, true, false);
    if (level === 4) {
      const s256 = dv.getBigUint64(m * 4096 + 256 * 8, true);
      if (s256 !== 0n && s256 !== w.m2pE) throw new Error(`L4 ${m} slot 256 is ${s256.toString(16)}`);
      for (let i = 257; i <= 271; i++) {
        const x = dv.getBigUint64(m * 4096 + i * 8, true);
        if (x !== (i === PERDOMAIN_L4_SLOT ? w.perdomE : 0n)) throw new Error(`L4 ${m} Xen slot ${i} is ${x.toString(16)}`);
      }
    }
  }
  // Write protection matches the types everywhere.
  for (let m = 0; m < pi.frames; m++) {
    if (w.h.xen.writeProtected[m] !== (isTableType(m) ? 1 : 0)) throw new Error(`write protection of ${m} is ${w.h.xen.writeProtected[m]}`);
  }
}

// ---- operations and their generators -------------------------------------------------------

type Target = { pool: number } | { special: 'foreign' | 'xen' | 'free' | 'mmio' | 'allones' };
interface EntryGen { target: Target; p: boolean; rw: boolean; us: boolean; a: boolean; d: boolean; g: boolean; pse: boolean; pcd: boolean; pwt: boolean; nx: boolean; gk: boolean; avail: number }
type Op =
  | { k: 'pin'; f: number; level: number }
  | { k: 'unpin'; f: number }
  | { k: 'base'; f: number }
  | { k: 'ubase'; f: number | null }
  | { k: 'mmu'; reqs: { f: number | 'foreign'; idx: number; cmd: number; e: EntryGen; raw: bigint }[] }
  | { k: 'uvm'; idx: number[]; e: EntryGen; flags: bigint; odd: 'none' | 'xen' | 'noncanon' }
  | { k: 'ptwr'; f: number; idx: number; size: number; sub: number; e: EntryGen; half: boolean };

const pct = (n: number) => fc.integer({ min: 0, max: 99 }).map((x) => x < n);
const poolIdx = fc.oneof({ weight: 2, arbitrary: fc.integer({ min: 0, max: 3 }) }, { weight: 3, arbitrary: fc.integer({ min: 0, max: NPOOL - 1 }) });
const entryIdx = fc.constantFrom(0, 1, 2, 3, 509, 511, 256, 270);
const upperIdx = fc.oneof({ weight: 7, arbitrary: fc.constant(0) }, { weight: 3, arbitrary: fc.constantFrom(1, 2, 3, 509, 511) });
const vaIdx = fc.oneof({ weight: 4, arbitrary: fc.constantFrom(0, 1, 2, 3) }, { weight: 1, arbitrary: fc.constantFrom(509, 511) });
const targetArb: fc.Arbitrary<Target> = fc.oneof(
  { weight: 17, arbitrary: poolIdx.map((pool) => ({ pool })) },
  { weight: 3, arbitrary: fc.constantFrom('foreign', 'xen', 'free', 'mmio', 'allones').map((special) => ({ special }) as Target) },
);
const entryArb: fc.Arbitrary<EntryGen> = fc.record({
  target: targetArb, p: pct(92), rw: pct(50), us: pct(50), a: fc.boolean(), d: fc.boolean(), g: pct(8), pse: pct(4),
  pcd: pct(3), pwt: pct(3), nx: pct(30), gk: pct(8), avail: fc.integer({ min: 0, max: 7 }),
});

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ k: fc.constant('pin' as const), f: poolIdx, level: fc.integer({ min: 1, max: 4 }) }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('unpin' as const), f: poolIdx }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('base' as const), f: poolIdx }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('ubase' as const), f: fc.option(poolIdx, { nil: null }) }) },
  {
    weight: 8,
    arbitrary: fc.record({
      k: fc.constant('mmu' as const),
      reqs: fc.array(fc.record({
        f: fc.oneof({ weight: 19, arbitrary: poolIdx }, { weight: 1, arbitrary: fc.constant('foreign' as const) }),
        idx: entryIdx,
        cmd: fc.oneof({ weight: 16, arbitrary: fc.constant(0) }, { weight: 2, arbitrary: fc.constant(2) },
          { weight: 1, arbitrary: fc.constant(1) }, { weight: 1, arbitrary: fc.integer({ min: 3, max: 7 }) }),
        e: entryArb,
        raw: fc.bigInt({ min: 0n, max: M64 }),
      }), { minLength: 1, maxLength: 3 }),
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      k: fc.constant('uvm' as const),
      idx: fc.tuple(upperIdx, upperIdx, upperIdx, vaIdx),
      e: entryArb,
      flags: fc.constantFrom(0n, 1n, 2n, 3n, 5n, 6n, 0xffff800000000001n, 0xffff800000000002n),
      odd: fc.oneof({ weight: 18, arbitrary: fc.constant('none' as const) }, { weight: 1, arbitrary: fc.constant('xen' as const) }, { weight: 1, arbitrary: fc.constant('noncanon' as const) }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      k: fc.constant('ptwr' as const), f: poolIdx, idx: entryIdx, size: fc.constantFrom(8, 8, 4, 2, 1), sub: fc.integer({ min: 0, max: 7 }),
      e: entryArb, half: pct(10),
    }),
  },
);

function entryValue(w: World, g: EntryGen): bigint {
  const t = 'pool' in g.target ? w.pool[g.target.pool] : w.special[g.target.special];
  let e = BigInt(t) << 12n;
  if (g.p) e |= P;
  if (g.rw) e |= RW;
  if (g.us) e |= US;
  if (g.a) e |= A;
  if (g.d) e |= D;
  if (g.g) e |= G;
  if (g.pse) e |= PSE;
  if (g.pcd) e |= PCD;
  if (g.pwt) e |= PWT;
  if (g.nx) e |= NX;
  if (g.gk) e |= GUEST_KERNEL;
  return e | (BigInt(g.avail) << 9n);
}

const lo32 = (x: bigint) => Number(BigInt.asIntN(32, x));
const hi32 = (x: bigint) => Number(BigInt.asIntN(32, x >> 32n));

interface Stats { [k: string]: number }

function step(w: World, md: Model, op: Op, stats: Stats): void {
  const v = w.v;
  const tally = (k: string, rc: number | boolean) => { const key = `${k}:${rc}`; stats[key] = (stats[key] ?? 0) + 1; };
  switch (op.k) {
    case 'pin': {
      const m = w.pool[op.f];
      const got = mmuextOp(v, [{ cmd: MmuExt.PIN_L1_TABLE + op.level - 1, arg1: BigInt(m) }]).rc;
      tally('pin', got);
      expect(got, `pin L${op.level} ${m}`).toBe(md.pin(m, op.level));
      break;
    }
    case 'unpin': {
      const m = w.pool[op.f];
      const got = mmuextOp(v, [{ cmd: MmuExt.UNPIN_TABLE, arg1: BigInt(m) }]).rc;
      tally('unpin', got);
      expect(got, `unpin ${m}`).toBe(md.unpin(m));
      break;
    }
    case 'base': {
      const m = w.pool[op.f];
      const got = mmuextOp(v, [{ cmd: MmuExt.NEW_BASEPTR, arg1: BigInt(m) }]).rc;
      tally('base', got);
      expect(got, `new_baseptr ${m}`).toBe(md.newBase(m));
      break;
    }
    case 'ubase': {
      const m = op.f === null ? 0 : w.pool[op.f];
      const got = mmuextOp(v, [{ cmd: MmuExt.NEW_USER_BASEPTR, arg1: BigInt(m) }]).rc;
      tally('ubase', got);
      expect(got, `new_user_baseptr ${m}`).toBe(md.newUserBase(m));
      break;
    }
    case 'mmu': {
      const reqs: [bigint, bigint][] = op.reqs.map((r) => {
        const m = r.f === 'foreign' ? w.special.foreign : w.pool[r.f];
        return [ptr(m, r.idx, r.cmd), r.cmd === 1 ? r.raw % 0x100000000n : entryValue(w, r.e)];
      });
      const got = mmuUpdate(v, reqs);
      let rc = 0, done = 0;
      for (; done < reqs.length; done++) {
        const r = op.reqs[done];
        rc = md.mmuOne(mfnOf(reqs[done][0]), r.idx, r.cmd, reqs[done][1]);
        if (rc !== 0) break;
      }
      tally('mmu', got.rc);
      expect([got.rc, got.done], `mmu_update ${reqs.map(([p, x]) => `${p.toString(16)}=${x.toString(16)}`).join(' ')}`).toEqual([rc, done]);
      break;
    }
    case 'uvm': {
      const [a, b, c, d] = op.idx;
      let lin = a * 2 ** 39 + b * 2 ** 30 + c * 2 ** 21 + d * 2 ** 12;
      if (op.odd === 'xen') lin = 0x800000000000 + b * 2 ** 30;
      if (op.odd === 'noncanon') lin = -1;
      const val = entryValue(w, op.e);
      const got = updateVaMapping(v, lin, lo32(val), hi32(val), lo32(op.flags), hi32(op.flags));
      tally('uvm', got);
      expect(got, `update_va_mapping ${lin.toString(16)} ${val.toString(16)} ${op.flags}`).toBe(md.uvm(lin, val, op.flags));
      break;
    }
    case 'ptwr': {
      const m = w.pool[op.f];
      const inEntry = op.size === 8 ? 0 : (op.sub % (8 / op.size)) * op.size;
      const full = entryValue(w, op.e);
      const part = op.size === 8 ? full : (full >> BigInt(inEntry * 8)) & ((1n << BigInt(op.size * 8)) - 1n);
      const off = op.idx * 8 + inEntry + (op.half && op.size > 1 ? 1 : 0); // sometimes misaligned
      const got = ptwrWrite(v, m * 4096 + off, 0, op.size, lo32(part), hi32(part), -1);
      tally('ptwr', got);
      expect(got, `ptwr ${m}+${off} size ${op.size}`).toBe(md.ptwr(m, off, op.size, part));
      break;
    }
  }
}

/** Every sequence starts from a live address space: pool[0] (L4) -> pool[1] (L3) -> pool[2]
 *  (L2) -> pool[3] (L1), which maps pool[4] writable, pool[5] and itself read-only; pool[0]
 *  is the kernel base. It is built with the same operations the random part uses. */
function prefix(): Op[] {
  const e = (pool: number, rw: boolean): EntryGen => ({
    target: { pool }, p: true, rw, us: true, a: false, d: false, g: false, pse: false, pcd: false, pwt: false, nx: false, gk: false, avail: 0,
  });
  const put = (f: number, idx: number, to: number, rw: boolean) => ({ f, idx, cmd: 0, e: e(to, rw), raw: 0n });
  return [
    { k: 'mmu', reqs: [put(0, 0, 1, true), put(1, 0, 2, true), put(2, 0, 3, true)] },
    { k: 'mmu', reqs: [put(3, 1, 4, true), put(3, 2, 5, false), put(3, 3, 3, false)] },
    { k: 'base', f: 0 },
  ];
}

function runSequence(strict: boolean, ops: Op[], stats: Stats): void {
  const w = world(strict);
  const md = new Model(w);
  for (const op of [...prefix(), ...ops]) {
    step(w, md, op, stats);
    checkAgainstModel(w, md);
    checkSecurity(w);
  }
}

describe('PV MMU state machine', () => {
  it('agrees with the reference model and keeps the invariants', () => {
    const stats: Stats = {};
    fc.assert(
      fc.property(fc.boolean(), fc.array(opArb, { minLength: 1, maxLength: 40, size: 'max' }), (strict, ops) => { runSequence(strict, ops, stats); }),
      { numRuns: Number(process.env.MM_RUNS ?? 200) },
    );
    if (process.env.MM_STATS) console.log(JSON.stringify(stats));
    // Each kind of outcome was reached (guards against a generator that never gets anywhere).
    for (const k of ['pin:0', `pin:${EINVAL}`, `pin:${EBUSY}`, 'unpin:0', 'base:0', 'mmu:0', `mmu:${EINVAL}`, `mmu:${EBUSY}`,
      `mmu:${EPERM}`, `mmu:${ENOSYS}`, 'uvm:0', `uvm:${EINVAL}`, 'ptwr:true', 'ptwr:false']) {
      expect(stats[k] ?? 0, `outcome ${k} never happened`).toBeGreaterThan(0);
    }
  });
});
