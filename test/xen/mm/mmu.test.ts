// The PV MMU hypercalls one case at a time: page types and counts, every error with its
// errno, the guest-visible M2P, TLB flushes, base pointers, and the writable-page-table assist.
import { beforeEach, describe, expect, it } from 'vitest';
import { CpuFault } from '../../../src/cpu/fault.js';
import { Hc } from '../../../src/xen/hypercall/table.js';
import {
  MmuExt, mmuUpdate, mmuextOp, pinTable, setKernelBaseptr, setUserBaseptr, unpinTable, updateVaMapping,
} from '../../../src/xen/hypercall/mmu.js';
import { MACH2PHYS_START_LIN, m2pL4Entry, machphysMfnList } from '../../../src/xen/mm/m2p.js';
import { PGT, PgFlag, relinquishDomainMemory, removeGuestPage, shareXenPage } from '../../../src/xen/mm/pagetype.js';
import { PERDOMAIN_L4_SLOT, perdomainL4e } from '../../../src/xen/pv/mode.js';
import { installPtwr } from '../../../src/xen/mm/ptwr.js';
import type { Domain } from '../../../src/xen/domain.js';
import type { Vcpu } from '../../../src/xen/vcpu.js';
import {
  A, BUF, D, DOMID_IO, DOMID_SELF, DOMID_XEN, EACCES, EBUSY, EFAULT, EINVAL, ENOSYS, EOPNOTSUPP, EPERM, ESRCH, G,
  GUEST_KERNEL, Host, NX, P, PCD, PRO, PRW, PSE, PWT, RW, Space, US, hc, ptr, pte, va,
} from './harness.js';

let h: Host, dom0: Domain, domU: Domain, v0: Vcpu, vu: Vcpu;

beforeEach(() => {
  h = new Host();
  dom0 = h.domain('dom0', { privileged: true });
  domU = h.domain('domU');
  v0 = h.vcpu(dom0);
  vu = h.vcpu(domU);
});

const pi = () => h.pi;
const typeOf = (m: number) => (pi().typeCount[m] > 0 ? pi().type[m] : PGT.NONE);
const upd = (v: Vcpu, reqs: [bigint, bigint][], fd = DOMID_SELF) => mmuUpdate(v, reqs, fd);
const ext = (v: Vcpu, cmd: number, arg1 = 0n, arg2 = 0n, fd = DOMID_SELF) => mmuextOp(v, [{ cmd, arg1, arg2 }], fd).rc;

describe('pinning and page types', () => {
  it('pins an empty L1, refuses a second pin, unpins, and the frame is free again', () => {
    const [m] = h.alloc(domU);
    expect(pinTable(domU, m, 1)).toBe(0);
    expect(typeOf(m)).toBe(PGT.L1);
    expect(pi().flags[m] & PgFlag.PINNED).toBeTruthy();
    expect(h.xen.writeProtected[m]).toBe(1);
    expect(ext(vu, MmuExt.PIN_L1_TABLE, BigInt(m))).toBe(EINVAL);
    expect(ext(vu, MmuExt.UNPIN_TABLE, BigInt(m))).toBe(0);
    expect(typeOf(m)).toBe(PGT.NONE);
    expect(pi().count[m]).toBe(0);
    expect(h.xen.writeProtected[m]).toBe(0);
    expect(ext(vu, MmuExt.UNPIN_TABLE, BigInt(m))).toBe(EINVAL);
  });

  it('refuses to pin or unpin frames the domain does not own', () => {
    const [m0] = h.alloc(dom0);
    expect(ext(vu, MmuExt.PIN_L1_TABLE, BigInt(m0))).toBe(EINVAL);
    expect(ext(vu, MmuExt.PIN_L4_TABLE, 1n << 40n)).toBe(EINVAL);
    expect(ext(vu, MmuExt.UNPIN_TABLE, BigInt(m0))).toBe(EINVAL);
  });

  it('refuses a second type while one is held (-EINVAL), and allows it once released', () => {
    const [m] = h.alloc(domU);
    expect(pinTable(domU, m, 1)).toBe(0);
    expect(ext(vu, MmuExt.PIN_L2_TABLE, BigInt(m))).toBe(EINVAL);
    expect(unpinTable(domU, m)).toBe(0);
    expect(pinTable(domU, m, 2)).toBe(0);
    expect(typeOf(m)).toBe(PGT.L2);
  });

  it('validates an L4 recursively and unpinning releases the whole tree', () => {
    const [l4, l3, l2, l1, data] = h.alloc(domU, 5);
    h.set(l4, 1, pte(l3, PRW));
    h.set(l3, 2, pte(l2, PRW));
    h.set(l2, 3, pte(l1, PRW));
    h.set(l1, 4, pte(data, PRW));
    expect(pinTable(domU, l4, 4)).toBe(0);
    expect([l4, l3, l2, l1, data].map(typeOf)).toEqual([PGT.L4, PGT.L3, PGT.L2, PGT.L1, PGT.WRITABLE]);
    expect(pi().count[data]).toBe(1);
    expect(unpinTable(domU, l4)).toBe(0);
    expect([l4, l3, l2, l1, data].map(typeOf)).toEqual([0, 0, 0, 0, 0]);
    expect([l4, l3, l2, l1, data].map((m) => pi().count[m])).toEqual([0, 0, 0, 0, 0]);
  });

  it('refuses to pin a frame mapped writable: -EINVAL from the type conflict', () => {
    const [l1, data] = h.alloc(domU, 2);
    h.set(l1, 0, pte(data, PRW));
    expect(pinTable(domU, l1, 1)).toBe(0);
    expect(typeOf(data)).toBe(PGT.WRITABLE);
    expect(ext(vu, MmuExt.PIN_L1_TABLE, BigInt(data))).toBe(EINVAL);
  });

  it('refuses a table that maps a table of the same tree writable: -EBUSY from the L1 entry', () => {
    const [l2, l1] = h.alloc(domU, 2);
    h.set(l2, 0, pte(l1, PRW));
    h.set(l1, 0, pte(l2, PRW)); // the L2 itself, writable
    expect(pinTable(domU, l2, 2)).toBe(EBUSY);
    expect(typeOf(l2)).toBe(PGT.NONE);
    expect(typeOf(l1)).toBe(PGT.NONE);
    h.set(l1, 0, pte(l2, PRO)); // read-only is fine
    expect(pinTable(domU, l2, 2)).toBe(0);
  });

  it('L1 entries: foreign frames -EBUSY, free frames -EBUSY, MMIO -EPERM (dom0 may), the all-ones MFN -EINVAL', () => {
    const [fr] = h.alloc(dom0);
    const cases: [bigint, number][] = [
      [pte(fr, PRO), EBUSY],
      [pte(h.xen.frames.frames - 1, PRO), EBUSY], // never allocated
      [pte(h.xen.frames.frames + 5, PRW), EPERM],
      [pte(0xffffffffff, PRO), EINVAL],
    ];
    for (const [e, rc] of cases) {
      const [l1] = h.alloc(domU);
      h.set(l1, 7, e);
      expect(pinTable(domU, l1, 1), e.toString(16)).toBe(rc);
    }
    const [l1] = h.alloc(dom0);
    h.set(l1, 0, pte(h.xen.frames.frames + 5, PRW | PCD | PWT));
    expect(pinTable(dom0, l1, 1)).toBe(0);
    expect(unpinTable(dom0, l1)).toBe(0);
  });

  it('flags: cache attributes need I/O privilege, PSE/G refused above L1, G allowed in L1', () => {
    const [data] = h.alloc(domU);
    const l1Case = (flags: bigint) => { const [l1] = h.alloc(domU); h.set(l1, 0, pte(data, flags)); return pinTable(domU, l1, 1); };
    expect(l1Case(PRW | PCD)).toBe(EINVAL);
    expect(l1Case(PRW | PWT)).toBe(EINVAL);
    expect(l1Case(PRW | PSE)).toBe(EINVAL); // PAT
    expect(l1Case(PRW | G | NX | (0x7ffn << 52n) | 0xe00n)).toBe(0);
    for (const bad of [PSE, G, PCD, PWT]) {
      const [l2, l1] = h.alloc(domU, 2);
      h.set(l2, 0, pte(l1, PRW | bad));
      expect(pinTable(domU, l2, 2)).toBe(EINVAL);
    }
  });

  it('adjusts entries as Xen does: USER forced, guest-kernel pages marked and never global', () => {
    const [l1, a, b] = h.alloc(domU, 3);
    h.set(l1, 0, pte(a, P | RW | G));       // kernel page (no U): gets U + bit 52, loses G
    h.set(l1, 1, pte(b, P | US | G | A));   // user page: unchanged
    expect(pinTable(domU, l1, 1)).toBe(0);
    expect(h.get(l1, 0)).toBe(pte(a, P | RW | US) | GUEST_KERNEL);
    expect(h.get(l1, 1)).toBe(pte(b, P | US | G | A));
    const [l2, l1b] = h.alloc(domU, 2);
    h.set(l2, 0, pte(l1b, P | RW));
    expect(pinTable(domU, l2, 2)).toBe(0);
    expect(h.get(l2, 0)).toBe(pte(l1b, P | RW | US));
  });

  it('writes Xen slots into a validated L4 and skips what the guest had there', () => {
    const [l4] = h.alloc(domU);
    const [fr] = h.alloc(dom0);
    h.set(l4, 256, pte(fr, PRW)); // garbage in Xen's slots: not validated, overwritten
    h.set(l4, 270, pte(fr, PRW));
    expect(pinTable(domU, l4, 4)).toBe(0);
    expect(h.get(l4, 256)).toBe(0n); // no m2p_strict: blank until used as a kernel base
    expect(h.get(l4, 270)).toBe(0n);
    expect(setKernelBaseptr(vu, l4)).toBe(0);
    const [lo, hi] = m2pL4Entry(h.xen);
    expect(h.get(l4, 256)).toBe((BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0));
  });

  it('copies the per-domain GDT/LDT slot into every validated L4', () => {
    const [l4] = h.alloc(domU);
    expect(pinTable(domU, l4, 4)).toBe(0);
    const [lo, hi] = perdomainL4e(domU);
    expect(h.get(l4, PERDOMAIN_L4_SLOT)).toBe((BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0));
    expect(upd(vu, [[ptr(l4, PERDOMAIN_L4_SLOT), 0n]]).rc).toBe(EINVAL);
  });

  it('a shared Xen page (shared_info): mappable writable, never a table, not given back', () => {
    const s = new Space(h, vu);
    const [si] = h.alloc(domU);
    shareXenPage(pi(), si, domU, true);
    expect(upd(vu, [[ptr(s.l1b, 0), pte(si, PRW)]]).rc).toBe(0);
    expect(upd(vu, [[ptr(s.l1b, 0), 0n]]).rc).toBe(0);
    expect(pinTable(domU, si, 1)).toBe(EINVAL);
    expect(removeGuestPage(pi(), domU, si)).toBe(-6);
    relinquishDomainMemory(pi(), domU);
    expect(h.xen.frames.owner[si]).toBe(-1);
  });

  it('linear page tables: read-only self maps and maps of validated tables; no chains, no RW', () => {
    const [a, b, c] = h.alloc(domU, 3);
    h.set(a, 509, pte(a, PRO));
    expect(pinTable(domU, a, 4)).toBe(0);
    expect(pi().count[a]).toBe(1); // the self map takes nothing
    h.set(b, 10, pte(a, PRO));     // b maps the validated a
    expect(pinTable(domU, b, 4)).toBe(0);
    expect(pi().typeCount[a]).toBe(2);
    expect(pi().linear[a]).toBe(-1);
    expect(pi().linear[b]).toBe(1);
    h.set(c, 11, pte(b, PRO));     // b holds linear entries: may not be mapped linearly
    expect(pinTable(domU, c, 4)).toBe(EINVAL);
    const [d4] = h.alloc(domU);
    h.set(d4, 12, pte(a, PRW));    // writable linear map
    expect(pinTable(domU, d4, 4)).toBe(EINVAL);
    expect(unpinTable(domU, a)).toBe(0);
    expect(typeOf(a)).toBe(PGT.L4); // kept by b's entry
    expect(unpinTable(domU, b)).toBe(0);
    expect([a, b].map(typeOf)).toEqual([0, 0]);
    expect([pi().linear[a], pi().linear[b]]).toEqual([0, 0]);
  });
});

describe('mmu_update', () => {
  let s: Space;
  beforeEach(() => { s = new Space(h, vu); });

  it('updates L1 entries with reference counting, through the hypercall and its guest array', () => {
    const [data] = h.alloc(domU);
    s.put64(0, [ptr(s.l1b, 5), pte(data, PRW), ptr(s.l1b, 6), pte(data, PRO)]);
    s.put64(0x100, [0xdeadn]);
    expect(hc(vu, Hc.mmu_update, va(BUF), 2, va(BUF + 0x100), DOMID_SELF)).toBe(0);
    expect(s.get32(0x100)).toBe(2);
    expect(typeOf(data)).toBe(PGT.WRITABLE);
    expect(pi().count[data]).toBe(2);
    expect(upd(vu, [[ptr(s.l1b, 5), 0n]]).rc).toBe(0);
    expect(typeOf(data)).toBe(PGT.NONE);
    expect(pi().count[data]).toBe(1);
  });

  it('stops at the first failure and reports how many were done', () => {
    const [data] = h.alloc(domU);
    const [fr] = h.alloc(dom0);
    s.put64(0, [ptr(s.l1b, 5), pte(data, PRW), ptr(s.l1b, 6), pte(fr, PRO), ptr(s.l1b, 7), pte(data, PRO)]);
    expect(hc(vu, Hc.mmu_update, va(BUF), 3, va(BUF + 0x100), DOMID_SELF)).toBe(EBUSY);
    expect(s.get32(0x100)).toBe(1);
    expect(h.get(s.l1b, 7)).toBe(0n);
  });

  it('-EFAULT for an array in Xen space, and for an element it cannot read (pdone counts the rest)', () => {
    expect(hc(vu, Hc.mmu_update, 0xffff800000000000n, 1, 0, DOMID_SELF)).toBe(EFAULT);
    const end = BUF + s.buf.length * 4096;
    const [data] = h.alloc(domU);
    const at = end - 16 - BUF;
    s.put64(at, [ptr(s.l1b, 9), pte(data, PRO)]);
    expect(hc(vu, Hc.mmu_update, va(end - 16), 2, va(BUF), DOMID_SELF)).toBe(EFAULT);
    expect(s.get32(0)).toBe(1);
  });

  it('refuses the Xen L4 slots, bad flags, tables it does not own, and unknown commands', () => {
    const [fr] = h.alloc(dom0);
    expect(upd(vu, [[ptr(s.l4, 256), 0n]]).rc).toBe(EINVAL);
    expect(upd(vu, [[ptr(s.l4, 271), 0n]]).rc).toBe(EINVAL);
    expect(upd(vu, [[ptr(s.l2, 9), pte(s.l1b, PRW | PSE)]]).rc).toBe(EINVAL);
    expect(upd(vu, [[ptr(s.l1b, 9), pte(s.buf[0], PRW | PCD)]]).rc).toBe(EINVAL);
    expect(upd(vu, [[ptr(fr, 0), 0n]]).rc).toBe(EINVAL);
    for (const cmd of [4, 5, 6, 7]) expect(upd(vu, [[ptr(s.l1b, 0, cmd), 0n]]).rc).toBe(ENOSYS);
  });

  it('refuses writable mappings of page tables (-EBUSY) and allows read-only ones', () => {
    expect(upd(vu, [[ptr(s.l1b, 1), pte(s.l2, PRW)]]).rc).toBe(EBUSY);
    expect(upd(vu, [[ptr(s.l1b, 1), pte(s.l2, PRO)]]).rc).toBe(0);
  });

  it('refuses to use a writably mapped frame as a table (-EINVAL)', () => {
    // buf[0] is mapped writable by the address space: linking it as an L1 fails.
    expect(upd(vu, [[ptr(s.l2, 9), pte(s.buf[0], PRW)]]).rc).toBe(EINVAL);
  });

  it('writes frames that are not tables as ordinary memory', () => {
    const [m] = h.alloc(domU);
    expect(upd(vu, [[ptr(m, 3), 0x1234n]]).rc).toBe(0);
    expect(h.get(m, 3)).toBe(0x1234n);
    expect(upd(vu, [[ptr(s.buf[0], 4), 0x99n]]).rc).toBe(0); // mapped writable: still a plain write
    expect(h.get(s.buf[0], 4)).toBe(0x99n);
  });

  it('PRESERVE_AD keeps the accessed and dirty bits already in the entry', () => {
    const [data] = h.alloc(domU);
    h.set(s.l1b, 3, 0n);
    expect(upd(vu, [[ptr(s.l1b, 3), pte(data, PRW | A | D)]]).rc).toBe(0);
    expect(upd(vu, [[ptr(s.l1b, 3, 2), pte(data, PRO)]]).rc).toBe(0);
    expect(h.get(s.l1b, 3)).toBe(pte(data, PRO | A | D));
    expect(typeOf(data)).toBe(PGT.NONE);
  });

  it('relinks tables: the new table is validated before the old one is released', () => {
    const [l1x, data] = h.alloc(domU, 2);
    h.set(l1x, 0, pte(data, PRW));
    expect(upd(vu, [[ptr(s.l2, 1), pte(l1x, PRW)]]).rc).toBe(0);
    expect(typeOf(l1x)).toBe(PGT.L1);
    expect(typeOf(s.l1b)).toBe(PGT.NONE); // a read-only mapping (at TABLES) holds no type
    expect(typeOf(data)).toBe(PGT.WRITABLE);
    expect(upd(vu, [[ptr(s.l2, 1), 0n]]).rc).toBe(0);
    expect([l1x, data].map(typeOf)).toEqual([0, 0]);
  });

  it('MACHPHYS_UPDATE sets the M2P that guests read at 0xffff800000000000', () => {
    const [m] = h.alloc(domU);
    expect(upd(vu, [[ptr(m, 0, 1), 0x4242n]]).rc).toBe(0);
    expect(h.xen.frames.m2p[m]).toBe(0x4242);
    const mem = vu.cpu.mem;
    expect(mem.rd32(MACH2PHYS_START_LIN + m * 8)).toBe(0x4242);
    expect(mem.rd32(MACH2PHYS_START_LIN + m * 8 + 4)).toBe(0);
    expect(() => mem.wr32(MACH2PHYS_START_LIN + m * 8, 1)).toThrow(CpuFault);
    const [fr] = h.alloc(dom0);
    expect(upd(vu, [[ptr(fr, 0, 1), 1n]]).rc).toBe(EINVAL);
    expect(upd(vu, [[ptr(m, 0, 1), 1n]], ((dom0.id + 1) << 16) | DOMID_SELF).rc).toBe(EPERM); // someone else's tables
  });

  it('foreign domains: unknown -ESRCH, itself -ESRCH, others -EPERM for a domU', () => {
    const [data] = h.alloc(domU);
    const r = (fd: number) => upd(vu, [[ptr(s.l1b, 2), pte(data, PRO)]], fd).rc;
    expect(r(77)).toBe(ESRCH);
    expect(r(domU.id)).toBe(ESRCH);
    expect(r(dom0.id)).toBe(EPERM);
    expect(r(DOMID_XEN)).toBe(EPERM);
    expect(r(((77 + 1) << 16) | DOMID_SELF)).toBe(ESRCH);
    expect(r(((dom0.id + 1) << 16) | DOMID_SELF)).toBe(EPERM);
    expect(upd(vu, [], dom0.id).rc).toBe(0); // the check is per request
  });

  it('dom0 maps a domU frame with the domU as foreign domain; it then cannot become a table', () => {
    const s0 = new Space(h, v0);
    const [data] = h.alloc(domU);
    expect(upd(v0, [[ptr(s0.l1b, 0), pte(data, PRW)]]).rc).toBe(EBUSY); // without naming domU
    expect(upd(v0, [[ptr(s0.l1b, 0), pte(data, PRW)]], domU.id).rc).toBe(0);
    expect(typeOf(data)).toBe(PGT.WRITABLE);
    expect(pinTable(domU, data, 1)).toBe(EINVAL);
    expect(upd(v0, [[ptr(s0.l1b, 0), 0n]]).rc).toBe(0);
    expect(pinTable(domU, data, 1)).toBe(0);
    // ...but a domU table stays unwritable even for dom0.
    expect(upd(v0, [[ptr(s0.l1b, 1), pte(s.l1, PRW)]], domU.id).rc).toBe(EBUSY);
  });

  it('M2P frames: dom0 may map them read-only with DOMID_XEN, never writable; a domU not at all', () => {
    const s0 = new Space(h, v0);
    const m2p = machphysMfnList(h.xen)[0];
    expect(upd(v0, [[ptr(s0.l1b, 0), pte(m2p, PRO)]], DOMID_XEN).rc).toBe(0);
    expect(upd(v0, [[ptr(s0.l1b, 1), pte(m2p, PRW)]], DOMID_XEN).rc).toBe(EBUSY);
    expect(upd(vu, [[ptr(s.l1b, 0), pte(m2p, PRO)]]).rc).toBe(EBUSY);
  });
});

describe('mmuext_op', () => {
  let s: Space;
  beforeEach(() => { s = new Space(h, vu); });

  it('NEW_BASEPTR validates and switches CR3, holds a reference, and releases the old base', () => {
    const [l4] = h.alloc(domU);
    h.set(l4, 0, pte(s.l3, PRW));
    expect(ext(vu, MmuExt.NEW_BASEPTR, BigInt(l4))).toBe(0);
    expect(vu.kernelCr3).toBe(l4);
    expect(vu.cpu.cr3Lo >>> 12).toBe(l4);
    expect(typeOf(l4)).toBe(PGT.L4);
    expect(typeOf(s.l4)).toBe(PGT.NONE); // the old base is gone (never pinned)
    expect(pi().typeCount[s.l3]).toBe(1);
    expect(s.get64(0)).toBe(0n);         // the buffer still reads through the new base
  });

  it('NEW_BASEPTR errors: not an L4 (-EINVAL), not ours (-EINVAL), foreign domain (-EPERM)', () => {
    const [fr] = h.alloc(dom0);
    expect(ext(vu, MmuExt.NEW_BASEPTR, BigInt(s.l1))).toBe(EINVAL);
    expect(ext(vu, MmuExt.NEW_BASEPTR, BigInt(fr))).toBe(EINVAL);
    expect(ext(v0, MmuExt.NEW_BASEPTR, BigInt(s.l4), 0n, domU.id)).toBe(EPERM);
    expect(vu.kernelCr3).toBe(s.l4);
  });

  it('NEW_USER_BASEPTR takes and drops references; 0 clears it', () => {
    const [u] = h.alloc(domU);
    expect(ext(vu, MmuExt.NEW_USER_BASEPTR, BigInt(u))).toBe(0);
    expect(vu.userCr3).toBe(u);
    expect(typeOf(u)).toBe(PGT.L4);
    expect(ext(vu, MmuExt.NEW_USER_BASEPTR, 0n)).toBe(0);
    expect(typeOf(u)).toBe(PGT.NONE);
    expect(vu.userCr3).toBe(0);
  });

  it('m2p_strict: the M2P slot is filled in new L4s and zapped in user bases', () => {
    domU.vmAssist |= 1 << 30;
    const [u] = h.alloc(domU);
    expect(pinTable(domU, u, 4)).toBe(0);
    expect(h.get(u, 256)).not.toBe(0n);
    expect(setUserBaseptr(vu, u)).toBe(0);
    expect(h.get(u, 256)).toBe(0n);
  });

  it('TLB_FLUSH_LOCAL and INVLPG_LOCAL drop stale translations', () => {
    const [other] = h.alloc(domU);
    h.set(other, 0, 0x77n);
    expect(s.get64(0)).toBe(0n); // cached
    expect(upd(vu, [[ptr(s.l1, 1), pte(other, PRW)]]).rc).toBe(0);
    expect(s.get64(0)).toBe(0n); // stale until flushed, as on hardware
    expect(ext(vu, MmuExt.INVLPG_LOCAL, va(BUF))).toBe(0);
    expect(s.get64(0)).toBe(0x77n);
    expect(upd(vu, [[ptr(s.l1, 1), pte(s.buf[0], PRW)]]).rc).toBe(0);
    expect(ext(vu, MmuExt.TLB_FLUSH_LOCAL)).toBe(0);
    expect(s.get64(0)).toBe(0n);
  });

  it('MULTI flushes read a vCPU bitmap (-EINVAL if unreadable); ALL flushes every vCPU', () => {
    s.put64(0x200, [1n]);
    expect(ext(vu, MmuExt.TLB_FLUSH_MULTI, 0n, va(BUF + 0x200))).toBe(0);
    expect(ext(vu, MmuExt.INVLPG_MULTI, va(BUF), va(BUF + 0x200))).toBe(0);
    expect(ext(vu, MmuExt.TLB_FLUSH_MULTI, 0n, 0xffff800000000000n)).toBe(EINVAL);
    expect(ext(vu, MmuExt.TLB_FLUSH_MULTI, 0n, 0x200000n)).toBe(EINVAL);
    expect(ext(vu, MmuExt.TLB_FLUSH_ALL)).toBe(0);
    expect(ext(vu, MmuExt.INVLPG_ALL, va(BUF))).toBe(0);
    expect(ext(v0, MmuExt.TLB_FLUSH_ALL, 0n, 0n, domU.id)).toBe(EPERM);
  });

  it('FLUSH_CACHE: -EACCES for a domU, fine for dom0; FLUSH_CACHE_GLOBAL -EINVAL for a domU', () => {
    expect(ext(vu, MmuExt.FLUSH_CACHE)).toBe(EACCES);
    expect(ext(v0, MmuExt.FLUSH_CACHE)).toBe(0);
    expect(ext(vu, MmuExt.FLUSH_CACHE_GLOBAL)).toBe(EINVAL);
  });

  it('SET_LDT checks alignment, the address and the size', () => {
    expect(ext(vu, MmuExt.SET_LDT, 0x10000n, 16n)).toBe(0);
    expect(vu.ldtBase).toBe(0x10000);
    expect(vu.ldtEnts).toBe(16);
    expect(ext(vu, MmuExt.SET_LDT, 0x10008n, 16n)).toBe(EINVAL);
    expect(ext(vu, MmuExt.SET_LDT, 0xffff800000000000n, 16n)).toBe(EINVAL);
    expect(ext(vu, MmuExt.SET_LDT, 0x10000n, 8193n)).toBe(EINVAL);
    expect(ext(vu, MmuExt.SET_LDT, 0x10008n, 0n)).toBe(0); // no entries: the base is ignored
    expect(vu.ldtBase).toBe(0);
  });

  it('CLEAR_PAGE and COPY_PAGE need a writable type for the destination', () => {
    const [a, b] = h.alloc(domU, 2);
    h.set(a, 1, 0x55n);
    expect(ext(vu, MmuExt.COPY_PAGE, BigInt(b), BigInt(a))).toBe(0);
    expect(h.get(b, 1)).toBe(0x55n);
    expect(ext(vu, MmuExt.CLEAR_PAGE, BigInt(b))).toBe(0);
    expect(h.get(b, 1)).toBe(0n);
    expect(ext(vu, MmuExt.CLEAR_PAGE, BigInt(s.l1))).toBe(EINVAL);
    expect(ext(vu, MmuExt.COPY_PAGE, BigInt(s.l1), BigInt(a))).toBe(EINVAL);
    expect(ext(vu, MmuExt.COPY_PAGE, BigInt(b), BigInt(s.l1))).toBe(0); // reading a table is fine
    const [fr] = h.alloc(dom0);
    expect(ext(vu, MmuExt.CLEAR_PAGE, BigInt(fr))).toBe(EINVAL);
  });

  it('MARK_SUPER -EOPNOTSUPP, unknown commands -ENOSYS, foreign domains -ESRCH/-EPERM before any op', () => {
    expect(ext(vu, MmuExt.MARK_SUPER, 0n)).toBe(EOPNOTSUPP);
    expect(ext(vu, MmuExt.UNMARK_SUPER, 0n)).toBe(EOPNOTSUPP);
    expect(ext(vu, 14)).toBe(ENOSYS);
    expect(ext(vu, 99)).toBe(ENOSYS);
    expect(ext(vu, MmuExt.TLB_FLUSH_LOCAL, 0n, 0n, 55)).toBe(ESRCH);
    expect(ext(vu, MmuExt.TLB_FLUSH_LOCAL, 0n, 0n, dom0.id)).toBe(EPERM);
    expect(ext(vu, MmuExt.TLB_FLUSH_LOCAL, 0n, 0n, DOMID_IO)).toBe(EPERM);
  });

  it('the hypercall reads its ops from the guest and reports the count done', () => {
    const [a, b] = h.alloc(domU, 2);
    const ops = new Uint8Array(72), dv = new DataView(ops.buffer);
    dv.setUint32(0, MmuExt.PIN_L1_TABLE, true); dv.setBigUint64(8, BigInt(a), true);
    dv.setUint32(24, MmuExt.PIN_L1_TABLE, true); dv.setBigUint64(32, BigInt(b), true);
    dv.setUint32(48, MmuExt.PIN_L1_TABLE, true); dv.setBigUint64(56, BigInt(a), true); // again: fails
    s.write(0, ops);
    expect(hc(vu, Hc.mmuext_op, va(BUF), 3, va(BUF + 0x100), DOMID_SELF)).toBe(EINVAL);
    expect(s.get32(0x100)).toBe(2);
    expect([a, b].map(typeOf)).toEqual([PGT.L1, PGT.L1]);
  });
});

describe('update_va_mapping', () => {
  let s: Space;
  beforeEach(() => { s = new Space(h, vu); });

  it('changes the L1 entry that maps an address in the current page tables, with UVMF_INVLPG', () => {
    const [m] = h.alloc(domU);
    h.set(m, 0, 0xabcn);
    expect(s.get64(0)).toBe(0n);
    expect(hc(vu, Hc.update_va_mapping, va(BUF), pte(m, PRW), 2 /* INVLPG|LOCAL */)).toBe(0);
    expect(s.get64(0)).toBe(0xabcn);
    expect(typeOf(s.buf[0])).toBe(PGT.NONE);
  });

  it('errors: no L1 for the address, Xen space, non-canonical, a page table writable', () => {
    expect(updateVaMapping(vu, 0x40000000, 0, 0, 0, 0)).toBe(EINVAL);       // L3 entry 1 empty
    expect(hc(vu, Hc.update_va_mapping, 0xffff800000001000n, 0n, 0)).toBe(EINVAL);
    expect(hc(vu, Hc.update_va_mapping, 0x0000900000000000n, 0n, 0)).toBe(EINVAL);
    expect(hc(vu, Hc.update_va_mapping, va(BUF), pte(s.l3, PRW), 0)).toBe(EBUSY);
    expect(hc(vu, Hc.update_va_mapping, va(BUF), pte(s.l3, PRO), 0)).toBe(0);
  });

  it('flush flags: TLB_FLUSH|ALL, and a bad MULTI bitmap gives -EFAULT after a good update', () => {
    const [m] = h.alloc(domU);
    expect(hc(vu, Hc.update_va_mapping, va(BUF), pte(m, PRW), 1 | 4)).toBe(0);
    expect(hc(vu, Hc.update_va_mapping, va(BUF), pte(m, PRW), 0xffff800000000001n)).toBe(EFAULT);
    s.put64(0x300, [1n]);
    expect(hc(vu, Hc.update_va_mapping, va(BUF + 0x1000), pte(s.buf[1], PRW), BigInt(BUF + 0x300) | 2n)).toBe(0);
    // the update's own error wins over the bitmap's
    expect(hc(vu, Hc.update_va_mapping, va(BUF), pte(s.l3, PRW), 0xffff800000000001n)).toBe(EBUSY);
  });

  it('otherdomain: -ESRCH for unknown or itself, -EPERM for a domU, dom0 maps a domU frame', () => {
    const [m] = h.alloc(domU);
    expect(hc(vu, Hc.update_va_mapping_otherdomain, va(BUF), pte(m, PRO), 0, 99)).toBe(ESRCH);
    expect(hc(vu, Hc.update_va_mapping_otherdomain, va(BUF), pte(m, PRO), 0, domU.id)).toBe(ESRCH);
    expect(hc(vu, Hc.update_va_mapping_otherdomain, va(BUF), pte(m, PRO), 0, dom0.id)).toBe(EPERM);
    expect(hc(vu, Hc.update_va_mapping_otherdomain, va(BUF), pte(m, PRO), 0, DOMID_SELF)).toBe(0);
    const s0 = new Space(h, v0);
    expect(hc(v0, Hc.update_va_mapping_otherdomain, va(BUF), pte(m, PRW), 2, domU.id)).toBe(0);
    expect(s0.get64(0)).toBe(0n);
    expect(typeOf(m)).toBe(PGT.WRITABLE);
  });
});

describe('writable page tables (ptwr)', () => {
  let s: Space;
  beforeEach(() => { s = new Space(h, vu); installPtwr(vu); });
  const l1bVa = () => s.tableVa(4);
  const fault = (f: () => void) => { try { f(); return null; } catch (e) { if (e instanceof CpuFault) return [e.vector, e.errorCode, e.cr2]; throw e; } };

  it('without the assist, writes to a table through its read-only mapping fault (#PF P|W|U)', () => {
    expect(fault(() => vu.cpu.mem.wr64(l1bVa() + 8, 0, 0))).toEqual([14, 7, l1bVa() + 8]);
  });

  it('emulates validated L1 writes, adjusting the entry; refuses bad ones with #PF', () => {
    domU.vmAssist |= 1 << 2;
    const [m] = h.alloc(domU);
    const mem = vu.cpu.mem;
    const e = pte(m, P | RW);
    expect(fault(() => mem.wr64(l1bVa() + 16, Number(e & 0xffffffffn) | 0, 0))).toBeNull();
    expect(h.get(s.l1b, 2)).toBe(pte(m, P | RW | US) | GUEST_KERNEL);
    expect(typeOf(m)).toBe(PGT.WRITABLE);
    // the low half alone: a 4-byte write merged into the entry (clear RW)
    expect(fault(() => mem.wr32(l1bVa() + 16, Number(pte(m, P | US) & 0xffffffffn) | 0))).toBeNull();
    expect(h.get(s.l1b, 2)).toBe(pte(m, P | US) | GUEST_KERNEL);
    expect(typeOf(m)).toBe(PGT.NONE);
    // a writable mapping of a table, a misaligned write, a write to the L2: #PF
    expect(fault(() => mem.wr64(l1bVa() + 24, Number(pte(s.l2, PRW) & 0xffffffffn) | 0, 0))?.[0]).toBe(14);
    expect(fault(() => mem.wr32(l1bVa() + 26, 1))?.[0]).toBe(14);
    expect(fault(() => mem.wr64(s.tableVa(2) + 8 * 9, 0, 0))?.[0]).toBe(14);
    expect(h.get(s.l1b, 3)).toBe(0n);
    // guest user mode: #PF
    vu.kernelMode = false;
    expect(fault(() => mem.wr64(l1bVa() + 16, 0, 0))?.[0]).toBe(14);
  });
});

describe('teardown and reuse', () => {
  it('removeGuestPage frees unreferenced frames at once and referenced ones when released', () => {
    const s = new Space(h, vu);
    const [a, b] = h.alloc(domU, 2);
    const tot = domU.totPages;
    expect(removeGuestPage(pi(), domU, a)).toBe(0);
    expect(h.xen.frames.owner[a]).toBe(-1);
    expect(domU.totPages).toBe(tot - 1);
    expect(upd(vu, [[ptr(s.l1b, 0), pte(b, PRW)]]).rc).toBe(0);
    expect(removeGuestPage(pi(), domU, b)).toBe(0);
    expect(h.xen.frames.owner[b]).toBe(domU.id); // still mapped
    expect(upd(vu, [[ptr(s.l1b, 1), pte(b, PRO)]]).rc).toBe(EBUSY); // no new references
    expect(upd(vu, [[ptr(s.l1b, 0), 0n]]).rc).toBe(0);
    expect(h.xen.frames.owner[b]).toBe(-1);
    expect(removeGuestPage(pi(), domU, b)).toBe(-6);
  });

  it('relinquishDomainMemory frees every frame of a domain with pinned tables and bases', () => {
    const s = new Space(h, vu);
    const [l1] = h.alloc(domU);
    h.set(l1, 0, pte(s.buf[0], PRW));
    expect(pinTable(domU, l1, 1)).toBe(0);
    relinquishDomainMemory(pi(), domU);
    for (let m = 0; m < h.xen.frames.frames; m++) expect(h.xen.frames.owner[m]).not.toBe(domU.id);
    expect(domU.totPages).toBe(0);
    expect(pi().count.every((c, m) => h.xen.frames.owner[m] !== -1 || c === 0)).toBe(true);
  });
});
