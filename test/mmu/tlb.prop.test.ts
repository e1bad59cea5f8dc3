// TLB consistency, against the reference model in model.ts (a walker with no TLB):
//  - exact: with the flush the architecture requires after each page-table edit, every
//    access gives the model's result: the value or the fault (vector, error code, CR2), and
//    the same memory afterwards (A/D bits, data, nothing written by a faulting access);
//  - stale: with no flush, or only some, every access gives either the model's fresh result
//    or the result of a translation the SDM lets a TLB still hold: one that was valid (with
//    A set, and D set for a write) in some page-table state since the last invalidation that
//    covers it (INVLPG of its page or of its large page; a CR3 load unless it was global;
//    everything on a change of paging control bits). Faults are never cached.
// Page tables are wired at random among 8 table frames, in each paging mode.
import fc from 'fast-check';
import { describe, it } from 'vitest';
import { PagedMemory } from '../../src/mmu/paged.js';
import { PhysMem } from '../../src/mmu/physmem.js';
import {
  CR0_WP, CR4_PGE, CR4_PSE, CR4_SMAP, CR4_SMEP, EFER_NXE, hex, type Kind, nextPage, rd64, realAccess, refAccess, type RefCtx,
  refAllowed, refWalk, Regs,
} from './model.js';

type PMode = 'long' | 'pae' | 'legacy';
const RAM = 32 * 4096;
const TABLES = [1, 2, 3, 4, 5, 6, 7, 8];
const IDX8 = [0, 1, 2, 3, 511];
const IDX4 = [0, 1, 2, 1023];

type Op =
  | { t: 'edit'; frame: number; idx: number; value: bigint }
  | { t: 'access'; page: number; off: number; size: number; kind: Kind; cpl: number; implicit: boolean; ac: boolean; value: bigint }
  | { t: 'ctrl'; which: number }
  | { t: 'cr3' } | { t: 'invlpg'; page: number; off: number } | { t: 'all' };

/** Accesses go to a small pool of pages per scenario (so that edits hit cached pages). */
const POOL = 8;

/** A page whose table indexes are all among the slots the edits write. */
function pageArb(mode: PMode): fc.Arbitrary<number> {
  const pick = (a: number[]) => fc.constantFrom(...a);
  if (mode === 'long') {
    return fc.tuple(pick(IDX8), pick(IDX8), pick(IDX8), pick(IDX8))
      .map(([a, b, c, d]) => a * 2 ** 39 + b * 2 ** 30 + c * 2 ** 21 + d * 4096);
  }
  if (mode === 'pae') {
    return fc.tuple(fc.integer({ min: 0, max: 3 }), pick(IDX8), pick(IDX8)).map(([a, b, c]) => a * 2 ** 30 + b * 2 ** 21 + c * 4096);
  }
  return fc.tuple(pick(IDX4), pick(IDX4)).map(([a, b]) => a * 2 ** 22 + b * 4096);
}
const offArb = fc.oneof(fc.integer({ min: 0, max: 4095 }), fc.integer({ min: 4088, max: 4095 }));
const poolIdx = fc.integer({ min: 0, max: POOL - 1 });

function entryArb(mode: PMode): fc.Arbitrary<bigint> {
  const frame = fc.oneof(
    { weight: 6, arbitrary: fc.constantFrom(...TABLES) },
    { weight: 3, arbitrary: fc.integer({ min: 16, max: 31 }) },
    { weight: 1, arbitrary: fc.constantFrom(0, 0x200, 0x400, 0x40000) }, // large-page bases, one beyond RAM
  );
  const flags = fc.record({
    p: fc.double({ min: 0, max: 1, noNaN: true }).map((x) => x < 0.85),
    rw: fc.boolean(), us: fc.boolean(), a: fc.boolean(), d: fc.boolean(), g: fc.boolean(),
    ps: fc.double({ min: 0, max: 1, noNaN: true }).map((x) => x < 0.1),
    nx: fc.double({ min: 0, max: 1, noNaN: true }).map((x) => x < 0.2),
    rsvd: fc.double({ min: 0, max: 1, noNaN: true }).map((x) => x < 0.03),
  });
  return fc.tuple(frame, flags).map(([f, x]) => {
    let v = BigInt(f) << 12n;
    if (x.p) v |= 1n;
    if (x.rw) v |= 2n;
    if (x.us) v |= 4n;
    if (x.a) v |= 0x20n;
    if (x.d) v |= 0x40n;
    if (x.ps) v |= 0x80n;
    if (x.g) v |= 0x100n;
    if (mode !== 'legacy') {
      if (x.nx) v |= 1n << 63n;
      if (x.rsvd) v |= 1n << 45n;
    } else v &= 0xffffffffn;
    return v;
  });
}

/** Table frames by level, top first: the initial tables are a well-formed (random) tree. */
function layers(mode: PMode): number[][] {
  if (mode === 'long') return [[1], [2, 3], [4, 5], [6, 7, 8]];
  if (mode === 'pae') return [[1], [2, 3, 4], [5, 6, 7, 8]];
  return [[1], [2, 3, 4, 5, 6, 7, 8]];
}

/** A plausible entry for a slot of `frame`: a pointer to the next level (or a data frame,
 *  or now and then a large page at 0), with mostly-permissive random flags. */
function plausibleArb(mode: PMode, frame: number): fc.Arbitrary<bigint> {
  const ls = layers(mode);
  const level = ls.findIndex((l) => l.includes(frame));
  const leaf = level === ls.length - 1;
  const next = leaf ? fc.integer({ min: 16, max: 31 }) : fc.constantFrom(...ls[level + 1]);
  // large pages: 2 MiB (4 MiB) at the PD level, 1 GiB (4-level, PDPT) rarely: they map mostly beyond RAM
  const largeP = leaf || level === 0 ? 0 : mode !== 'long' ? 0.15 : level === 1 ? 0.02 : 0.08;
  const chance = (p: number) => fc.double({ min: 0, max: 1, noNaN: true }).map((x) => x < p);
  return fc.record({
    f: next, p: chance(0.95), rw: chance(0.8), us: chance(0.8), a: fc.boolean(), d: fc.boolean(), g: chance(0.4),
    nx: chance(0.1), large: chance(largeP),
  }).map((x) => {
    let v = x.large ? 0x80n : BigInt(x.f) << 12n;
    if (x.p) v |= 1n;
    if (x.rw) v |= 2n;
    if (x.us) v |= 4n;
    if (x.a) v |= 0x20n;
    if (x.d) v |= 0x40n;
    if (x.g) v |= 0x100n;
    if (x.nx && mode !== 'legacy') v |= 1n << 63n;
    return v;
  });
}

function opArb(mode: PMode): fc.Arbitrary<Op> {
  const idx = fc.constantFrom(...(mode === 'legacy' ? IDX4 : IDX8));
  const edit = fc.constantFrom(...TABLES).chain((frame) => fc.record({
    t: fc.constant('edit' as const), frame: fc.constant(frame), idx,
    value: fc.oneof({ weight: 3, arbitrary: plausibleArb(mode, frame) }, { weight: 1, arbitrary: entryArb(mode) }),
  }));
  const access = fc.record({
    t: fc.constant('access' as const), page: poolIdx, off: offArb, size: fc.constantFrom(1, 2, 4, 8),
    kind: fc.constantFrom<Kind>('r', 'r', 'w', 'w', 'x'), cpl: fc.constantFrom(0, 3),
    implicit: fc.double({ min: 0, max: 1, noNaN: true }).map((x) => x < 0.1), ac: fc.boolean(),
    value: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
  });
  return fc.oneof(
    { weight: 4, arbitrary: edit },
    { weight: 10, arbitrary: access },
    { weight: 1, arbitrary: fc.record({ t: fc.constant('ctrl' as const), which: fc.integer({ min: 0, max: 5 }) }) },
    { weight: 1, arbitrary: fc.constant<Op>({ t: 'cr3' }) },
    { weight: 2, arbitrary: fc.record({ t: fc.constant('invlpg' as const), page: poolIdx, off: offArb }) },
    { weight: 1, arbitrary: fc.constant<Op>({ t: 'all' }) },
  );
}

const CTRL: [keyof Regs & ('cr0' | 'cr4' | 'efer'), number][] = [
  ['cr0', CR0_WP], ['cr4', CR4_PGE], ['cr4', CR4_SMEP], ['cr4', CR4_SMAP], ['efer', EFER_NXE], ['cr4', CR4_PSE],
];

interface Snap { mem: Uint8Array; pdpt: bigint[] | null; globalOnly: boolean; inval: number[] }

class World {
  readonly phys = new PhysMem(RAM);
  readonly regs = new Regs();
  readonly mem: PagedMemory;
  /** The model's memory, kept equal to the real one after every op. */
  readonly ref = new Uint8Array(RAM);
  hist: Snap[] = [];
  readonly esize: number;
  steps: string[] = [];

  constructor(readonly mode: PMode, ctrlBits: number, readonly pool: number[]) {
    const r = this.regs;
    if (mode === 'long') r.long(); else if (mode === 'pae') r.pae(); else r.legacy();
    r.cr0 &= ~CR0_WP; r.cr4 &= ~CR4_PGE;
    // each control bit from ctrlBits, but NXE is on unless its bit is set (the usual case)
    r.efer |= EFER_NXE;
    for (let i = 0; i < CTRL.length; i++) if (ctrlBits & (1 << i)) r[CTRL[i][0]] ^= CTRL[i][1];
    r.cr3 = 0x1000n;
    this.esize = mode === 'legacy' ? 4 : 8;
    this.mem = new PagedMemory(this.phys, r);
    this.loadPdpt();
    this.reset();
  }

  /** What the CPU's flush() does to PAE PDPTE registers; the model mirrors them. */
  loadPdpt(): void {
    if (this.mode !== 'pae') return;
    const base = this.regs.cr3 & 0xffffffe0n;
    this.regs.pdpt = [0, 1, 2, 3].map((i) => rd64(this.ref, base + BigInt(i) * 8n));
  }

  snap(): Snap { return { mem: this.ref.slice(), pdpt: this.regs.pdpt, globalOnly: false, inval: [] }; }
  reset(): void { this.hist = [this.snap()]; }
  changed(): void { this.hist.push(this.snap()); }

  edit(frame: number, idx: number, value: bigint): void {
    // PAE PDPTEs reserve R/W, U/S, A, D, PS, G and XD: keep most of them usable.
    if (this.mode === 'pae' && frame === 1 && idx < 4) value &= ~(0x1e6n | (1n << 63n));
    const a = frame * 4096 + idx * this.esize;
    for (const u8 of [this.phys.u8, this.ref]) {
      const dv = new DataView(u8.buffer);
      if (this.esize === 8) dv.setBigUint64(a, value, true); else dv.setUint32(a, Number(value), true);
    }
    this.changed();
  }

  /** Whether a frame may be a paging structure: the root, or the target of anything that
   *  looks like a present entry anywhere in memory (a superset, which is all it needs). */
  mayBeTable(frame: number): boolean {
    if (frame === 1) return true;
    const dv = new DataView(this.ref.buffer);
    const step = this.esize;
    for (let a = 0; a < RAM; a += step) {
      const lo = dv.getUint32(a, true);
      if ((lo & 1) !== 0 && lo >>> 12 === frame) return true;
    }
    return false;
  }

  /** What the architecture requires after an edit whose reach is unknown. */
  requiredFlush(): void {
    if ((this.regs.cr4 & CR4_PGE) !== 0) this.all(); else this.cr3();
  }

  cr3(): void {
    this.mem.flush(); this.loadPdpt();
    for (const s of this.hist) s.globalOnly = true;
    this.changed();
  }
  all(): void { this.mem.flushAll(); this.mem.flush(); this.loadPdpt(); this.reset(); }
  ctrl(which: number): void {
    const [reg, b] = CTRL[which];
    if (this.mode === 'legacy' && reg === 'efer') return; // NXE: no effect in 2-level paging, skip
    this.regs[reg] ^= b;
    this.mem.flush(); this.loadPdpt();
    this.reset();
  }
  invlpg(lin: number): void {
    this.mem.flush(lin);
    for (const s of this.hist) s.inval.push(lin);
    this.changed(); // translations made from here on are new
  }

  /** Stale page bases the SDM allows for this page and access. */
  stale(page: number, kind: Kind, ctx: RefCtx): bigint[] {
    const out = new Set<bigint>();
    const P = BigInt(page);
    const regsPdpt = this.regs.pdpt;
    for (const s of this.hist) {
      this.regs.pdpt = s.pdpt;
      const w = refWalk(s.mem, this.regs, P);
      this.regs.pdpt = regsPdpt;
      if (!w.ok || !refAllowed(w, this.regs, kind, ctx)) continue;
      if (s.globalOnly && !w.global) continue;
      if (!w.leafLo.every((b) => (b & 0x20n) !== 0n)) continue;
      if (kind === 'w' && (w.leafLo[w.leafLo.length - 1] & 0x40n) === 0n) continue;
      const sh = w.pageShift;
      if (s.inval.some((a) => Math.floor(a / 4096) === page / 4096 || (sh > 12 && Math.floor(a / 2 ** sh) === Math.floor(page / 2 ** sh)))) continue;
      const base = w.base + (P & ((1n << BigInt(sh)) - 1n)) - (P & 0xfffn);
      if (base + 4096n > BigInt(RAM)) continue;
      out.add(base);
    }
    return [...out];
  }

  /** Do the access for real, and check it against the candidates; adopt the match. */
  access(op: Extract<Op, { t: 'access' }>, allowStale: boolean): void {
    const { size, kind, cpl, implicit, ac, value } = op;
    const lin = this.pool[op.page] + op.off;
    const r = this.regs;
    r.cpl = cpl; r.ac = ac; this.mem.implicitSupervisor = implicit;
    const sz = kind === 'x' ? 1 : size;
    const v = kind === 'w' ? value & ((1n << BigInt(8 * sz)) - 1n) : 0n;
    const real = realAccess(this.mem, lin, sz, kind, v);
    this.mem.implicitSupervisor = false;
    const ctx: RefCtx = { cpl, implicit, ac };
    // Candidate choices per page: fresh (null) or a permitted stale base.
    const pages = (lin % 4096) + sz > 4096 ? [lin - (lin % 4096), nextPage(r, lin)] : [lin - (lin % 4096)];
    const opts = pages.map((p) => [null, ...(allowStale ? this.stale(p, kind, ctx) : [])]);
    const combos: (bigint | null)[][] = opts.length === 1 ? opts[0].map((a) => [a]) : opts[0].flatMap((a) => opts[1].map((b) => [a, b]));
    const tried: string[] = [];
    for (const c of combos) {
      const out = refAccess(this.ref, r, lin, sz, kind, v, ctx, (i) => c[i]);
      const same = 'fault' in out
        ? 'fault' in real && real.fault.vector === out.fault.vector && real.fault.err === out.fault.err && real.fault.cr2 === out.fault.cr2
        : 'value' in real && real.value === out.value;
      tried.push(`${c.map((x) => (x === null ? 'fresh' : hex(x))).join('+')}: ${'fault' in out ? `#PF ${hex(out.fault.err)} @${hex(out.fault.cr2)}` : hex(out.value)}`);
      if (!same) continue;
      const undo = out.log.map(([a]) => [a, this.ref[a]] as const);
      for (const [a, b] of out.log) this.ref[a] = b;
      if (Buffer.compare(this.ref, this.phys.u8) === 0) {
        if (out.log.length > 0) {
          // The TLB may hold translations made between the A/D updates and the data write.
          if ('tlen' in out && out.tlen < out.log.length && out.tlen > 0) {
            const final = this.ref.slice();
            for (let i = undo.length - 1; i >= 0; i--) this.ref[undo[i][0]] = undo[i][1];
            for (let i = 0; i < out.tlen; i++) this.ref[out.log[i][0]] = out.log[i][1];
            this.changed();
            this.ref.set(final);
          }
          this.changed();
          // Data written into a paging structure through a mapping is an edit like any other.
          if (!allowStale && 'tlen' in out && out.tlen < out.log.length && out.log.slice(out.tlen).some(([a]) => this.mayBeTable(a >>> 12))) {
            this.requiredFlush();
          }
        }
        return;
      }
      for (let i = undo.length - 1; i >= 0; i--) this.ref[undo[i][0]] = undo[i][1];
      tried[tried.length - 1] += ' (memory differs)';
    }
    const got = 'fault' in real ? `#PF ${hex(real.fault.err)} @${hex(real.fault.cr2)} (vector ${real.fault.vector})` : hex(real.value);
    const hist = this.hist.map((h, i) => {
      const saved = r.pdpt; r.pdpt = h.pdpt;
      const w = refWalk(h.mem, r, BigInt(pages[0]));
      r.pdpt = saved;
      return `  #${i}${h.globalOnly ? ' G-only' : ''} inval[${h.inval.map(hex).join(',')}]: ` +
        (w.ok ? `${hex(w.base)}/${w.pageShift} rw${+w.rw} us${+w.us} nx${+w.nx} g${+w.global} low[${w.leafLo.map(hex).join(',')}]` : w.rsvd ? 'rsvd' : 'np');
    });
    throw new Error(`${kind}${sz} ${hex(lin)} cpl${cpl}${implicit ? ' implicit' : ''}${ac ? ' AC' : ''}: got ${got}; allowed:\n  ${tried.join('\n  ')}\n` +
      `history of ${hex(pages[0])}:\n${hist.join('\n')}\nsteps:\n${this.steps.slice(-40).join('\n')}`);
  }

  run(ops: Op[], allowStale: boolean): void {
    for (const op of ops) {
      const lin = 'page' in op ? { lin: hex(this.pool[op.page] + op.off) } : {};
      this.steps.push(JSON.stringify({ ...op, ...lin }, (_k, x) => (typeof x === 'bigint' ? hex(x) : x)));
      switch (op.t) {
        case 'edit':
          this.edit(op.frame, op.idx, op.value);
          if (!allowStale) this.requiredFlush();
          break;
        case 'access': this.access(op, allowStale); break;
        case 'ctrl': this.ctrl(op.which); break;
        case 'cr3': this.cr3(); break;
        case 'invlpg': this.invlpg(this.pool[op.page] + op.off); break;
        case 'all': this.all(); break;
      }
    }
  }
}

/** Random initial tables (a plausible tree over every slot of the 8 table frames), then the ops. */
function scenario(mode: PMode) {
  const idx = mode === 'legacy' ? IDX4 : IDX8;
  const slots = TABLES.flatMap((f) => idx.map((i) => [f, i] as const));
  return fc.record({
    // control bits (see World); NXE stays on in 4 scenarios out of 5
    ctrl: fc.tuple(fc.integer({ min: 0, max: 63 }), fc.integer({ min: 0, max: 4 })).map(([c, k]) => (k > 0 ? c & ~16 : c)),
    // half the pool: random pages; the other half: the page after each (for crossings)
    pool: fc.array(pageArb(mode), { minLength: POOL / 2, maxLength: POOL / 2 }),
    init: fc.tuple(...slots.map(([f]) => plausibleArb(mode, f))),
    ops: fc.array(opArb(mode), { minLength: 20, maxLength: 120 }),
  }).map(({ ctrl, pool, init, ops }) => ({ ctrl, pool: [...pool, ...pool.map((p) => (p + 4096) % (mode === 'long' ? 2 ** 48 : 2 ** 32))], init: init.map((v, i) => ({ frame: slots[i][0], idx: slots[i][1], value: v })), ops }));
}

function check(mode: PMode, allowStale: boolean, numRuns: number): void {
  fc.assert(fc.property(scenario(mode), ({ ctrl, pool, init, ops }) => {
    const w = new World(mode, ctrl, pool);
    for (const e of init) w.edit(e.frame, e.idx, e.value);
    w.all();
    w.run(ops, allowStale);
  }), { numRuns });
}

describe('TLB against the reference walker', () => {
  for (const mode of ['long', 'pae', 'legacy'] as PMode[]) {
    it(`${mode}: with the required flushes, every access matches the model exactly`, () => check(mode, false, 120));
    it(`${mode}: without flushes, stale results are only those the SDM permits`, () => check(mode, true, 120));
  }
});
