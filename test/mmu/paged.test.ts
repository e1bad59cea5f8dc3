// PagedMemory: translation in each paging mode, A/D bits, every #PF cause with its error code
// and CR2, the TLB's flush rules, cross-page accesses, code-write reporting, and the PV/MMIO hooks.
import { describe, expect, it } from 'vitest';
import { CpuFault } from '../../src/cpu/fault.js';
import {
  CR0_PG, CR0_WP, CR4_PGE, CR4_PSE, CR4_SMAP, CR4_SMEP, EFER_NXE, machine, PTE_A, PTE_D, PTE_G, PTE_NX, PTE_P, PTE_PS,
  PTE_RW, PTE_US, wr64, rd64,
} from './model.js';

const PRW = PTE_P | PTE_RW, URW = PTE_P | PTE_RW | PTE_US;

/** The fault an action raises: [vector, error code, cr2], or null. */
function faultOf(f: () => unknown): [number, number, number] | null {
  try { f(); return null; } catch (e) {
    if (e instanceof CpuFault) return [e.vector, e.errorCode, e.cr2];
    throw e;
  }
}
const pf = (err: number, cr2: number): [number, number, number] => [14, err, cr2];

const HIGH = 0xffff_ffff_8000_0000n;        // canonical
const HIGH_LIN = Number(HIGH & 0xffff_ffff_ffffn); // what the CPU passes: 48-bit linear

describe('translation (4-level)', () => {
  it('maps 4 KiB pages, reads and writes through them, both halves of the address space', () => {
    const { mem, pt, phys } = machine();
    pt.newRoot();
    pt.map(0x400000n, 0x80000n, URW);
    pt.map(HIGH, 0x81000n, PRW);
    mem.wr32(0x400010, 0x12345678);
    expect(phys.dv.getUint32(0x80010, true)).toBe(0x12345678);
    expect(mem.rd32(0x400010) >>> 0).toBe(0x12345678);
    mem.wr64(HIGH_LIN + 8, 0x11223344, 0x55667788);
    expect(phys.dv.getBigUint64(0x81008, true)).toBe(0x5566778811223344n);
    expect(mem.rd64(HIGH_LIN + 8)).toBe(0x11223344);
    expect(mem.hi).toBe(0x55667788);
    expect(mem.rd16(HIGH_LIN + 9)).toBe(0x2233);
    expect(mem.rd8(HIGH_LIN + 11)).toBe(0x11);
    expect(mem.fetchPhys(HIGH_LIN + 0x123)).toBe(0x81123);
  });

  it('sets A on every level walked, and D on the leaf only for writes', () => {
    const { mem, pt } = machine();
    pt.newRoot();
    const pte = pt.map(0x400000n, 0x80000n, URW);
    const pde = pt.entry(0x400000n, 2), pdpte = pt.entry(0x400000n, 3), pml4e = pt.entry(0x400000n, 4);
    mem.rd8(0x400000);
    for (const e of [pml4e, pdpte, pde, pte]) expect(pt.get(e) & PTE_A).toBe(PTE_A);
    expect(pt.get(pte) & PTE_D).toBe(0n);
    for (const e of [pml4e, pdpte, pde]) expect(pt.get(e) & PTE_D).toBe(0n);
    // The read made no write entry: the first write must walk and set D.
    mem.wr8(0x400000, 1);
    expect(pt.get(pte) & PTE_D).toBe(PTE_D);
    for (const e of [pml4e, pdpte, pde]) expect(pt.get(e) & PTE_D).toBe(0n);
  });

  it('A/D updates touch only the low byte of the entry (a locked OR)', () => {
    const { mem, pt } = machine();
    pt.newRoot();
    const pte = pt.map(0x400000n, 0x80000n, URW | PTE_NX | (0x7fn << 52n));
    mem.wr8(0x400000, 1);
    expect(pt.get(pte)).toBe(0x80000n | URW | PTE_NX | (0x7fn << 52n) | PTE_A | PTE_D);
  });

  it('maps 2 MiB and 1 GiB pages, with A/D on the large leaf', () => {
    const { mem, pt, phys } = machine(4 << 20);
    pt.newRoot();
    const pde = pt.map(0x4000_0000n, 0x200000n, URW, '2M');
    const pdpte = pt.map(0x80_0000_0000n, 0n, URW, '1G');
    mem.wr32(0x4000_0000 + 0x12344, 0x5a5a5a5a);
    expect(phys.dv.getUint32(0x212344, true)).toBe(0x5a5a5a5a);
    expect(pt.get(pde) & (PTE_A | PTE_D)).toBe(PTE_A | PTE_D);
    expect(mem.rd32(0x80_0000_0000 + 0x212344)).toBe(0x5a5a5a5a);
    expect(pt.get(pdpte) & (PTE_A | PTE_D)).toBe(PTE_A);
    expect(mem.fetchPhys(0x80_0000_0000 + 0x3ffffe)).toBe(0x3ffffe);
  });

  it('paging off is the identity; beyond RAM reads all ones, or goes to MMIO', () => {
    const { mem, regs, phys } = machine(1 << 16);
    regs.cr0 &= ~CR0_PG;
    regs.efer &= ~0x400;
    mem.flush();
    mem.wr32(0x1234, 0xdeadbeef | 0);
    expect(phys.dv.getUint32(0x1234, true)).toBe(0xdeadbeef);
    expect(mem.rd32(0x20000)).toBe(-1);
    mem.wr32(0x20000, 5); // dropped
    const seen: string[] = [];
    mem.mmio = { read: (pa, s) => { seen.push(`r${s}@${pa.toString(16)}`); return 0x42; }, write: (pa, s, v) => { seen.push(`w${s}@${pa.toString(16)}=${v}`); } };
    expect(mem.rd8(0x20001)).toBe(0x42);
    mem.wr16(0x20002, 7);
    expect(seen).toEqual(['r1@20001', 'w2@20002=7']);
  });
});

describe('page faults: error code and CR2', () => {
  it('not present at each level: P=0, with W/U/I from the access', () => {
    const { mem, pt, regs } = machine();
    pt.newRoot();
    const pte = pt.map(0x400000n, 0x80000n, URW);
    pt.set(pte, 0n);
    expect(faultOf(() => mem.rd8(0x400123))).toEqual(pf(0, 0x400123));
    expect(faultOf(() => mem.wr8(0x400123, 0))).toEqual(pf(2, 0x400123));
    regs.cpl = 3;
    expect(faultOf(() => mem.wr8(0x400123, 0))).toEqual(pf(6, 0x400123));
    expect(faultOf(() => mem.fetchPhys(0x400123))).toEqual(pf(4 | 16, 0x400123));
    regs.cpl = 0;
    expect(faultOf(() => mem.rd8(0x7f00_0000_0000))).toEqual(pf(0, 0x7f00_0000_0000)); // no PML4E
    pt.set(pt.entry(0x400000n, 2), 0n);
    expect(faultOf(() => mem.rd8(0x400000))).toEqual(pf(0, 0x400000));
  });

  it('no I/D bit for fetches unless NXE or SMEP', () => {
    const { mem, pt, regs } = machine();
    pt.newRoot();
    regs.efer &= ~EFER_NXE; mem.flush();
    expect(faultOf(() => mem.fetchPhys(0x400000))).toEqual(pf(0, 0x400000));
    regs.cr4 |= CR4_SMEP; mem.flush();
    expect(faultOf(() => mem.fetchPhys(0x400000))).toEqual(pf(16, 0x400000));
  });

  it('reserved bits: P|RSVD', () => {
    const { mem, pt, regs } = machine(4 << 20);
    pt.newRoot();
    const pte = pt.map(0x400000n, 0x80000n, URW);
    const check = (v: bigint, at = pte, lin = 0x400008) => {
      const old = pt.get(at);
      pt.set(at, v); mem.flush();
      const f = faultOf(() => mem.wr8(lin, 0));
      pt.set(at, old); mem.flush();
      return f;
    };
    expect(check(0x80000n | URW | (1n << 45n))).toEqual(pf(1 | 2 | 8, 0x400008)); // above MAXPHYADDR
    expect(check(0x80000n | URW | (1n << 51n))).toEqual(pf(11, 0x400008));
    expect(check(0x80000n | URW | (0x7fn << 52n))).toBeNull(); // 58:52 are ignored
    regs.efer &= ~EFER_NXE;
    expect(check(0x80000n | URW | PTE_NX)).toEqual(pf(11, 0x400008)); // XD without NXE
    regs.efer |= EFER_NXE;
    expect(check(0x80000n | URW | PTE_NX)).toBeNull();
    // PS in a PML4E
    const pml4e = pt.entry(0x400000n, 4);
    expect(check(pt.get(pml4e) | PTE_PS, pml4e)).toEqual(pf(11, 0x400008));
    // a non-leaf entry's address above MAXPHYADDR
    const pde = pt.entry(0x400000n, 2);
    expect(check(pt.get(pde) | (1n << 40n), pde)).toEqual(pf(11, 0x400008));
    // 2 MiB page: bits 20:13 reserved (bit 12 is PAT)
    expect(check(0x200000n | URW | PTE_PS | (1n << 13n), pde)).toEqual(pf(11, 0x400008));
    expect(check(0x200000n | URW | PTE_PS | (1n << 12n), pde)).toBeNull();
    // 1 GiB page: bits 29:13 reserved
    const pdpte = pt.entry(0x400000n, 3);
    expect(check(URW | PTE_PS | (1n << 20n), pdpte)).toEqual(pf(11, 0x400008));
    expect(check(URW | PTE_PS, pdpte)).toEqual(pf(11, 0x400008)); // 1 GiB at 0: 0x400008 is past RAM
    expect(check(URW | PTE_PS, pdpte, 0x100008)).toBeNull();
    // a reserved bit below a not-present entry does not matter; a not-present entry's bits do not either
    expect(check(1n << 45n)).toEqual(pf(2, 0x400008));
  });

  it('1 GiB pages are reserved when the CPU lacks them', () => {
    const { mem, pt } = machine(1 << 20, { gbPages: false });
    pt.newRoot();
    pt.map(0x4000_0000n, 0n, URW, '1G');
    expect(faultOf(() => mem.rd8(0x4000_0000))).toEqual(pf(9, 0x4000_0000));
  });

  it('a leaf beyond RAM without MMIO: P|RSVD; with MMIO: dispatched by physical address', () => {
    const { mem, pt } = machine();
    pt.newRoot();
    pt.map(0x400000n, 0xfee00000n, PRW);
    expect(faultOf(() => mem.rd32(0x400020))).toEqual(pf(9, 0x400020));
    const log: string[] = [];
    mem.mmio = {
      read: (pa, s) => { log.push(`r${s}@${pa.toString(16)}`); return pa === 0xfee00024 ? 0xabcd : 0x1234; },
      write: (pa, s, v) => { log.push(`w${s}@${pa.toString(16)}=${(v >>> 0).toString(16)}`); },
    };
    expect(mem.rd32(0x400020)).toBe(0x1234);
    mem.wr64(0x400030, 0xaaaa, 0xbbbb);
    expect(mem.rd64(0x400020)).toBe(0x1234);
    expect(mem.hi).toBe(0xabcd);
    expect(log).toEqual(['r4@fee00020', 'w4@fee00030=aaaa', 'w4@fee00034=bbbb', 'r4@fee00020', 'r4@fee00024']);
    expect(faultOf(() => mem.fetchPhys(0x400000))).toEqual(pf(1 | 8 | 16, 0x400000));
  });

  it('user accesses: U/S and R/W combine over all levels', () => {
    const { mem, pt, regs } = machine();
    pt.newRoot();
    pt.map(0x400000n, 0x80000n, PRW);                       // supervisor page
    pt.map(0x600000n, 0x81000n, PTE_P | PTE_US);            // user read-only
    pt.map(0x8000_0000n, 0x82000n, URW, '4K', PTE_P | PTE_US); // read-only above the leaf
    regs.cpl = 3;
    expect(faultOf(() => mem.rd8(0x400000))).toEqual(pf(5, 0x400000));
    expect(faultOf(() => mem.fetchPhys(0x400000))).toEqual(pf(21, 0x400000));
    expect(mem.rd8(0x600000)).toBe(0);
    expect(faultOf(() => mem.wr8(0x600000, 1))).toEqual(pf(7, 0x600000));
    expect(faultOf(() => mem.wr8(0x8000_0000, 1))).toEqual(pf(7, 0x8000_0000));
    regs.cpl = 0;
    mem.wr8(0x400000, 1);
  });

  it('CR0.WP: supervisor writes to read-only pages fault only with WP=1', () => {
    const { mem, pt, regs, phys } = machine();
    pt.newRoot();
    const pte = pt.map(0x400000n, 0x80000n, PTE_P);
    const upte = pt.map(0x600000n, 0x81000n, PTE_P | PTE_US);
    expect(faultOf(() => mem.wr8(0x400001, 1))).toEqual(pf(3, 0x400001));
    expect(faultOf(() => mem.wr8(0x600001, 1))).toEqual(pf(3, 0x600001));
    regs.cr0 &= ~CR0_WP; mem.flush();
    mem.wr8(0x400001, 7);
    mem.wr8(0x600001, 8);
    expect(phys.u8[0x80001]).toBe(7);
    expect(phys.u8[0x81001]).toBe(8);
    expect(pt.get(pte) & PTE_D).toBe(PTE_D);
    expect(pt.get(upte) & PTE_D).toBe(PTE_D);
    // WP back on: the CPU's flush drops the supervisor write entries made under WP=0.
    regs.cr0 |= CR0_WP; mem.flush();
    expect(faultOf(() => mem.wr8(0x400001, 1))).toEqual(pf(3, 0x400001));
  });

  it('NX: fetches from XD pages fault (any level), reads do not', () => {
    const { mem, pt, regs } = machine();
    pt.newRoot();
    pt.map(0x400000n, 0x80000n, URW | PTE_NX);
    pt.map(0x8000_0000n, 0x81000n, URW, '4K', URW | PTE_NX);
    expect(mem.rd8(0x400000)).toBe(0);
    expect(faultOf(() => mem.fetchPhys(0x400000))).toEqual(pf(17, 0x400000));
    expect(faultOf(() => mem.fetchPhys(0x8000_0010))).toEqual(pf(17, 0x8000_0010));
    regs.cpl = 3;
    expect(faultOf(() => mem.fetchPhys(0x400000))).toEqual(pf(21, 0x400000));
  });

  it('SMEP: no supervisor fetch from user pages', () => {
    const { mem, pt, regs } = machine();
    pt.newRoot();
    pt.map(0x400000n, 0x80000n, URW);
    expect(mem.fetchPhys(0x400000)).toBe(0x80000);
    regs.cr4 |= CR4_SMEP; mem.flush();
    expect(faultOf(() => mem.fetchPhys(0x400000))).toEqual(pf(17, 0x400000));
    regs.cpl = 3;
    expect(mem.fetchPhys(0x400000)).toBe(0x80000);
  });

  it('SMAP: supervisor data accesses to user pages need an explicit access with AC=1', () => {
    const { mem, pt, regs, phys } = machine();
    pt.newRoot();
    pt.map(0x400000n, 0x80000n, URW);
    pt.map(HIGH, 0x81000n, PRW);
    phys.u8[0x80000] = 0x5a;
    expect(mem.rd8(0x400000)).toBe(0x5a);
    regs.cr4 |= CR4_SMAP; mem.flush();
    expect(faultOf(() => mem.rd8(0x400000))).toEqual(pf(1, 0x400000));
    expect(faultOf(() => mem.wr8(0x400000, 1))).toEqual(pf(3, 0x400000));
    regs.ac = true;
    expect(mem.rd8(0x400000)).toBe(0x5a);
    mem.wr8(0x400000, 0x77);
    expect(phys.u8[0x80000]).toBe(0x77);
    // implicit supervisor accesses ignore AC
    mem.implicitSupervisor = true;
    expect(faultOf(() => mem.rd8(0x400000))).toEqual(pf(1, 0x400000));
    // ... and are supervisor accesses at CPL 3 (U/S = 0 in the error code)
    regs.cpl = 3;
    expect(mem.rd8(HIGH_LIN)).toBe(0);
    expect(faultOf(() => mem.wr8(0x400000, 1))).toEqual(pf(3, 0x400000));
    mem.implicitSupervisor = false;
    expect(faultOf(() => mem.rd8(HIGH_LIN))).toEqual(pf(5, HIGH_LIN));
    expect(mem.rd8(0x400000)).toBe(0x77); // user access to a user page
    // SMAP off again: supervisor reads of user pages are fine with AC=0
    regs.cpl = 0; regs.ac = false; regs.cr4 &= ~CR4_SMAP; mem.flush();
    expect(mem.rd8(0x400000)).toBe(0x77);
  });
});

describe('TLB', () => {
  it('hits after the first walk: a PTE change is not seen until invlpg (then it is)', () => {
    const { mem, pt, phys } = machine();
    pt.newRoot();
    const pte = pt.map(0x400000n, 0x80000n, URW);
    pt.map(0x401000n, 0x81000n, URW);
    phys.u8[0x80000] = 1; phys.u8[0x81000] = 2; phys.u8[0x82000] = 3;
    expect(mem.rd8(0x400000)).toBe(1);
    expect(mem.rd8(0x401000)).toBe(2);
    pt.set(pte, 0x82000n | URW);
    expect(mem.rd8(0x400000)).toBe(1); // stale, as the SDM allows
    mem.flush(0x400abc);
    expect(mem.rd8(0x400000)).toBe(3);
    pt.set(pte, 0n);
    mem.flush(0x400000);
    expect(faultOf(() => mem.rd8(0x400000))).toEqual(pf(0, 0x400000));
    expect(mem.rd8(0x401000)).toBe(2);
  });

  it('a CR3 reload keeps global entries (with CR4.PGE); flushAll and PGE toggles drop them', () => {
    const { mem, pt, phys, regs } = machine();
    pt.newRoot();
    const g = pt.map(HIGH, 0x80000n, PRW | PTE_G);
    const n = pt.map(0x400000n, 0x81000n, PRW | PTE_G * 0n);
    phys.u8[0x80000] = 1; phys.u8[0x81000] = 2; phys.u8[0x82000] = 3;
    expect(mem.rd8(HIGH_LIN)).toBe(1);
    expect(mem.rd8(0x400000)).toBe(2);
    pt.set(g, 0x82000n | PRW | PTE_G);
    pt.set(n, 0x82000n | PRW);
    mem.flush(); // MOV to CR3
    expect(mem.rd8(HIGH_LIN)).toBe(1);
    expect(mem.rd8(0x400000)).toBe(3);
    mem.flushAll();
    expect(mem.rd8(HIGH_LIN)).toBe(3);
    pt.set(g, 0x80000n | PRW | PTE_G);
    mem.flush();
    expect(mem.rd8(HIGH_LIN)).toBe(3);
    regs.cr4 &= ~CR4_PGE; mem.flush(); // MOV to CR4 changing PGE flushes everything
    expect(mem.rd8(HIGH_LIN)).toBe(1);
    // without PGE, G is ignored: a CR3 reload drops it
    pt.set(g, 0x82000n | PRW | PTE_G);
    mem.flush();
    expect(mem.rd8(HIGH_LIN)).toBe(3);
  });

  it('invlpg drops global entries too', () => {
    const { mem, pt, phys } = machine();
    pt.newRoot();
    const g = pt.map(HIGH, 0x80000n, PRW | PTE_G);
    phys.u8[0x80000] = 1; phys.u8[0x82000] = 3;
    expect(mem.rd8(HIGH_LIN)).toBe(1);
    pt.set(g, 0x82000n | PRW | PTE_G);
    mem.flush(HIGH_LIN);
    expect(mem.rd8(HIGH_LIN)).toBe(3);
  });

  it('invlpg of one address in a large page drops all the TLB entries from that page', () => {
    const { mem, pt, phys } = machine(4 << 20);
    pt.newRoot();
    const pde = pt.map(0x4000_0000n, 0x200000n, URW, '2M');
    pt.map(0x4020_0000n, 0x200000n, URW, '2M'); // the next 2 MiB, same frames
    phys.u8[0x205000] = 5; phys.u8[0x105000] = 9;
    expect(mem.rd8(0x4000_5000)).toBe(5);
    expect(mem.rd8(0x4020_5000)).toBe(5);
    pt.set(pde, 0x000000n | URW | PTE_PS);
    mem.flush(0x4001_2345); // another 4 KiB of the same large page
    expect(mem.rd8(0x4000_5000)).toBe(0);
    expect(mem.rd8(0x4020_5000)).toBe(5); // a different large page: still cached (and still right)
    // and 4 KiB entries in the region are not large-page entries: they stay
    const pte = pt.map(0x600000n, 0x105000n, URW);
    expect(mem.rd8(0x600000)).toBe(9);
    pt.set(pte, 0x205000n | URW);
    mem.flush(0x601000);
    expect(mem.rd8(0x600000)).toBe(9);
  });

  it('no write entry before D is set: after a read, a write walks and sets D', () => {
    const { mem, pt } = machine();
    pt.newRoot();
    const pte = pt.map(0x400000n, 0x80000n, URW);
    for (let i = 0; i < 3; i++) mem.rd32(0x400000);
    expect(pt.get(pte) & PTE_D).toBe(0n);
    mem.wr32(0x400000, 1);
    expect(pt.get(pte) & PTE_D).toBe(PTE_D);
    // software clears D without a flush: the cached dirty translation may still be used
    pt.set(pte, pt.get(pte) & ~PTE_D);
    mem.wr32(0x400000, 2);
    expect(pt.get(pte) & PTE_D).toBe(0n);
    mem.flush(0x400000);
    mem.wr32(0x400000, 3);
    expect(pt.get(pte) & PTE_D).toBe(PTE_D);
  });

  it('a write through the TLB to a frame holding code reports it once and clears the mark', () => {
    const { mem, pt, phys } = machine();
    pt.newRoot();
    pt.map(0x400000n, 0x80000n, URW);
    pt.map(0x500000n, 0x80000n, URW); // an alias
    const hits: number[] = [];
    mem.onCodeWrite = (ppn) => hits.push(ppn);
    mem.wr8(0x400000, 1); // write entries exist now: the writes below hit the TLB
    mem.wr8(0x500000, 1);
    const writes: [string, () => void][] = [
      ['wr8', () => mem.wr8(0x400010, 2)], ['wr16', () => mem.wr16(0x500010, 2)],
      ['wr32', () => mem.wr32(0x400010, 2)], ['wr64', () => mem.wr64(0x500010, 2, 3)],
    ];
    for (const [name, w] of writes) {
      hits.length = 0;
      mem.markCode(0x80);
      w();
      expect([name, hits]).toEqual([name, [0x80]]);
      expect(phys.codeFrame[0x80]).toBe(0);
      w();
      expect([name, hits]).toEqual([name, [0x80]]);
    }
    expect(phys.u8[0x80010]).toBe(2);
    mem.markCode(0x80);
    hits.length = 0;
    expect(faultOf(() => mem.wr64(0x500ffc, 1, 2))).toEqual(pf(2, 0x501000)); // crosses into an unmapped page
    expect(hits).toEqual([]);
    expect(phys.codeFrame[0x80]).toBe(1);
  });

  it('epoch moves on every flush', () => {
    const { mem } = machine();
    const e0 = mem.epoch;
    mem.flush(); mem.flush(0x1000); mem.flushAll();
    expect(mem.epoch).toBeGreaterThanOrEqual(e0 + 3);
  });
});

describe('cross-page accesses', () => {
  it('read and write across two pages mapped to distant frames', () => {
    const { mem, pt, phys } = machine();
    pt.newRoot();
    pt.map(0x400000n, 0x90000n, URW);
    pt.map(0x401000n, 0x80000n, URW);
    mem.wr64(0x400ffd, 0x44332211, 0x88776655);
    expect([...phys.u8.slice(0x90ffd, 0x91000)]).toEqual([0x11, 0x22, 0x33]);
    expect([...phys.u8.slice(0x80000, 0x80005)]).toEqual([0x44, 0x55, 0x66, 0x77, 0x88]);
    expect(mem.rd32(0x400ffe) >>> 0).toBe(0x55443322);
    expect(mem.rd16(0x400fff)).toBe(0x4433);
    expect(mem.rd64(0x400ffd)).toBe(0x44332211);
    expect(mem.hi).toBe(0x88776655 | 0);
  });

  it('the second page faulting: CR2 = its first byte, nothing written', () => {
    const { mem, pt, phys, regs } = machine();
    pt.newRoot();
    pt.map(0x400000n, 0x90000n, URW);
    pt.map(0x401000n, 0x80000n, PTE_P | PTE_US); // read-only
    expect(faultOf(() => mem.wr32(0x400ffe, -1))).toEqual(pf(3, 0x401000));
    expect(phys.u8[0x90ffe]).toBe(0);
    expect(faultOf(() => mem.rd64(0x401ffc))).toEqual(pf(0, 0x402000));
    regs.cpl = 3;
    expect(faultOf(() => mem.wr16(0x400fff, -1))).toEqual(pf(7, 0x401000));
    expect(faultOf(() => mem.probeWrite(0x400f00, 0x200))).toEqual(pf(7, 0x401000));
    expect(phys.u8[0x90fff]).toBe(0);
    // the first page faulting: CR2 = the address itself
    expect(faultOf(() => mem.rd32(0x3ffffe))).toEqual(pf(4, 0x3ffffe));
  });

  it('crossing from the lower canonical half into the hole is #GP(0)', () => {
    const { mem, pt } = machine();
    pt.newRoot();
    pt.map(0x7fff_ffff_f000n, 0x80000n, URW);
    expect(faultOf(() => mem.rd32(0x7fff_ffff_fffe))).toEqual([13, 0, 0]);
  });
});

describe('PV write protection', () => {
  it('writes to a protected frame go to the hook (even through a read-only PTE), reads do not', () => {
    const { mem, pt, phys, regs } = machine();
    pt.newRoot();
    const pte = pt.map(0x400000n, 0x80000n, URW);
    pt.map(0x500000n, 0x80000n, PTE_P | PTE_US); // the guest's read-only view of its page table
    mem.wr8(0x400000, 1); // leaves a write entry that protect() must drop
    const calls: unknown[][] = [];
    mem.onWriteProtected = (...a) => { calls.push(a); };
    mem.protect(0x80, true);
    regs.cpl = 3;
    mem.wr64(0x400008, 0x1001, 0x2);
    mem.wr32(0x500010, 7);
    expect(calls).toEqual([[0x80008, 0x400008, 8, 0x1001, 0x2, -1], [0x80010, 0x500010, 4, 7, 0, -1]]);
    expect(phys.u8[0x80008]).toBe(0);
    expect(mem.rd8(0x400000)).toBe(1);
    // user/supervisor still applies
    pt.map(0x600000n, 0x80000n, PRW);
    expect(faultOf(() => mem.wr8(0x600000, 1))).toEqual(pf(7, 0x600000));
    // without a hook: a write-protection #PF
    mem.onWriteProtected = null;
    expect(faultOf(() => mem.wr8(0x400000, 1))).toEqual(pf(7, 0x400000));
    mem.protect(0x80, false);
    mem.wr8(0x400000, 9);
    expect(phys.u8[0x80000]).toBe(9);
    expect(pt.get(pte) & PTE_D).toBe(PTE_D);
  });
});

describe('PAE (3-level) paging', () => {
  it('translates 4 KiB and 2 MiB pages through the PDPTE registers, with NX', () => {
    const { mem, pt, regs, phys } = machine(4 << 20);
    regs.pae();
    const pdpt = pt.alloc();
    regs.cr3 = pdpt + 0x20n; // 32-byte aligned inside the page
    const pd = pt.alloc(), ptab = pt.alloc();
    wr64(phys.u8, pdpt + 0x20n + 8n * 3n, pd | PTE_P);
    wr64(phys.u8, pd + 8n * 511n, ptab | URW);
    wr64(phys.u8, ptab + 8n * 510n, 0x80000n | URW | PTE_NX);
    wr64(phys.u8, pd + 0n, 0x200000n | URW | PTE_PS);
    mem.flush();
    expect(mem.pdptesValid()).toBe(true);
    const lin = 0xc0000000 + 511 * 0x200000 + 510 * 0x1000 + 0x10;
    mem.wr32(lin, 0x01020304);
    expect(phys.dv.getUint32(0x80010, true)).toBe(0x01020304);
    expect(faultOf(() => mem.fetchPhys(lin))).toEqual(pf(17, lin));
    expect(mem.rd8(0xc0012345)).toBe(phys.u8[0x212345]);
    expect(rd64(phys.u8, pd) & (PTE_A | PTE_D)).toBe(PTE_A);
    // PAE reserves bits 62:40 (4-level only 51:40)
    wr64(phys.u8, pd + 8n, 0x400000n | URW | PTE_PS | (1n << 55n));
    expect(faultOf(() => mem.rd8(0xc0200000))).toEqual(pf(9, 0xc0200000));
    // a not-present PDPTE, then a PDPTE with reserved bits
    expect(faultOf(() => mem.rd8(0x1000))).toEqual(pf(0, 0x1000));
    wr64(phys.u8, pdpt + 0x20n, pd | PTE_P | PTE_RW);
    mem.flush();
    expect(mem.pdptesValid()).toBe(false);
  });

  it('PDPTEs are loaded on flush (CR3 write), not on each walk', () => {
    const { mem, pt, regs, phys } = machine();
    regs.pae();
    const pdpt = pt.newRoot();
    const pd = pt.alloc(), pd2 = pt.alloc();
    wr64(phys.u8, pdpt, pd | PTE_P);
    wr64(phys.u8, pd, 0n | PRW | PTE_PS);
    wr64(phys.u8, pd2, 0n | PTE_P | PTE_PS);
    mem.flush();
    mem.wr8(0x10, 1);
    wr64(phys.u8, pdpt, pd2 | PTE_P);
    mem.flush(0x10); // invlpg: the PDPTE register still points at pd
    mem.wr8(0x10, 2);
    mem.flush(); // CR3 reload: now pd2, read-only
    expect(faultOf(() => mem.wr8(0x10, 3))).toEqual(pf(3, 0x10));
  });
});

describe('2-level (32-bit) paging', () => {
  it('4 KiB pages and 4 MiB pages (PSE, PSE-36); PS ignored without CR4.PSE', () => {
    const { mem, pt, regs, phys } = machine(8 << 20);
    regs.legacy();
    const pd = pt.newRoot();
    const ptab = pt.alloc();
    const dv = phys.dv;
    dv.setUint32(Number(pd) + 4 * 1, Number(ptab) | 7, true);            // 0x400000: a page table
    dv.setUint32(Number(ptab) + 4 * 3, 0x80000 | 7, true);               // 0x403000 -> 0x80000
    dv.setUint32(Number(pd) + 4 * 2, 0x400000 | 0x87, true);             // 0x800000: 4 MiB page at 4 MiB
    dv.setUint32(Number(pd) + 4 * 3, 0x400000 | 0x87 | (1 << 13), true); // 0xc00000: 4 MiB at 4 GiB + 4 MiB
    dv.setUint32(Number(pd) + 4 * 4, 0x400000 | 0x87 | (1 << 21), true); // bit 21 reserved
    mem.flush();
    mem.wr32(0x403010, 0x11223344);
    expect(dv.getUint32(0x80010, true)).toBe(0x11223344);
    expect(dv.getUint32(Number(ptab) + 12, true)).toBe(0x80000 | 7 | 0x60);
    expect(dv.getUint32(Number(pd) + 4, true)).toBe(Number(ptab) | 7 | 0x20);
    regs.cr4 |= CR4_PSE; mem.flush();
    mem.wr8(0x812345, 0x99);
    expect(phys.u8[0x412345]).toBe(0x99);
    expect(dv.getUint32(Number(pd) + 8, true) & 0x60).toBe(0x60);
    expect(faultOf(() => mem.rd8(0xc00000))).toEqual(pf(9, 0xc00000)); // beyond RAM, no MMIO
    expect(faultOf(() => mem.rd8(0x1000000))).toEqual(pf(9, 0x1000000));
    expect(faultOf(() => mem.fetchPhys(0x1400000))).toEqual(pf(0, 0x1400000)); // no I/D bit: no NX here
    regs.cr4 &= ~CR4_PSE; mem.flush();
    // PS now ignored: the PDE at 0x800000 points at a page table at 0x400000
    phys.dv.setUint32(0x400000 + 4 * 5, 0x81000 | 3, true);
    phys.u8[0x81001] = 0x42;
    expect(mem.rd8(0x805001)).toBe(0x42);
  });

  it('NX is not available: bit 63 does not exist in 4-byte entries', () => {
    const { mem, pt, regs, phys } = machine();
    regs.legacy();
    const pd = pt.newRoot();
    phys.dv.setUint32(Number(pd), Number(pd) | 7, true); // self-map: the PD doubles as a page table
    mem.flush();
    expect(mem.fetchPhys(0x10)).toBe(Number(pd) + 0x10);
    regs.cr4 |= CR4_SMEP; mem.flush();
    expect(faultOf(() => mem.fetchPhys(0x10))).toEqual(pf(17, 0x10));
  });
});
