// memory_op for PV domains: the E820 maps, sizes, the M2P location, reservations.
import { beforeEach, describe, expect, it } from 'vitest';
import { E820Type, XenMem, setMachineMemoryMap, setRamMemoryMap } from '../../../src/xen/hypercall/memory.js';
import { mmuUpdate, pinTable } from '../../../src/xen/hypercall/mmu.js';
import { Hc } from '../../../src/xen/hypercall/table.js';
import { machphysMfnList } from '../../../src/xen/mm/m2p.js';
import type { Domain } from '../../../src/xen/domain.js';
import type { Vcpu } from '../../../src/xen/vcpu.js';
import {
  BUF, DOMID_SELF, EACCES, EDOM, EFAULT, EINVAL, ENOSYS, EPERM, ESRCH, Host, PRW, Space, hc, ptr, pte, va,
} from './harness.js';

let h: Host, dom0: Domain, domU: Domain, v0: Vcpu, vu: Vcpu, s: Space, s0: Space;

beforeEach(() => {
  h = new Host();
  dom0 = h.domain('dom0', { privileged: true, maxPages: 1024 });
  domU = h.domain('domU', { maxPages: 40 });
  v0 = h.vcpu(dom0);
  vu = h.vcpu(domU);
  s = new Space(h, vu);
  s0 = new Space(h, v0);
});

const mem = (v: Vcpu, op: number, arg: number | bigint = 0) => hc(v, Hc.memory_op, op, arg);
const arg = (off: number) => va(BUF + off);

/** Write a xen_memory_reservation at BUF + off. */
function reservation(sp: Space, off: number, list: number, nr: number, order = 0, flags = 0, domid = DOMID_SELF): void {
  const b = new Uint8Array(32), dv = new DataView(b.buffer);
  dv.setBigUint64(0, list === 0 ? 0n : va(list), true);
  dv.setBigUint64(8, BigInt(nr), true);
  dv.setUint32(16, order, true);
  dv.setUint32(20, flags, true);
  dv.setUint16(24, domid, true);
  sp.write(off, b);
}

describe('E820 maps', () => {
  it('memory_map: -ENOSYS until the builder sets one, then the entries, clipped to the buffer', () => {
    s.put64(0, [4n, va(BUF + 0x100)]);
    expect(mem(vu, XenMem.memory_map, arg(0))).toBe(ENOSYS);
    setRamMemoryMap(domU, 40);
    expect(mem(vu, XenMem.memory_map, arg(0))).toBe(0);
    expect(s.get32(0)).toBe(1);
    expect(s.get64(0x100)).toBe(0n);
    expect(s.get64(0x108)).toBe(40n * 4096n);
    expect(s.get32(0x110)).toBe(E820Type.RAM);
    s.put64(0, [0n, va(BUF + 0x100)]);
    expect(mem(vu, XenMem.memory_map, arg(0))).toBe(0);
    expect(s.get32(0)).toBe(0);
    expect(mem(vu, XenMem.memory_map, 0xffff800000000000n)).toBe(EFAULT);
  });

  it('machine_memory_map: dom0 only, needs room for one more entry than it returns', () => {
    s.put64(0, [8n, va(BUF + 0x100)]);
    expect(mem(vu, XenMem.machine_memory_map, arg(0))).toBe(EPERM);
    setMachineMemoryMap(h.xen, [{ addr: 0, size: 0x9f000, type: 1 }, { addr: 0x100000, size: 0x700000, type: 1 }]);
    s0.put64(0, [2n, va(BUF + 0x100)]);
    expect(mem(v0, XenMem.machine_memory_map, arg(0))).toBe(EINVAL);
    s0.put64(0, [3n, va(BUF + 0x100)]);
    expect(mem(v0, XenMem.machine_memory_map, arg(0))).toBe(0);
    expect(s0.get32(0)).toBe(2);
    expect(s0.get64(0x100 + 20)).toBe(0x100000n);
  });

  it('set_memory_map: for itself or (dom0) another domain', () => {
    const e = new Uint8Array(20), dv = new DataView(e.buffer);
    dv.setBigUint64(8, 0x5000n, true); dv.setUint32(16, 1, true);
    s0.write(0x100, e);
    const fm = (domid: number, n: number) => { s0.put64(0, [BigInt(domid), BigInt(n), va(BUF + 0x100)]); return mem(v0, XenMem.set_memory_map, arg(0)); };
    expect(fm(domU.id, 1)).toBe(0);
    expect(fm(99, 1)).toBe(ESRCH);
    expect(fm(domU.id, 1025)).toBe(EINVAL);
    s.put64(0, [4n, va(BUF + 0x100)]);
    expect(mem(vu, XenMem.memory_map, arg(0))).toBe(0);
    expect(s.get64(0x108)).toBe(0x5000n);
    s.put64(0x200, [BigInt(dom0.id), 1n, va(BUF + 0x100)]);
    expect(mem(vu, XenMem.set_memory_map, arg(0x200))).toBe(EPERM);
  });
});

describe('sizes and the M2P', () => {
  it('maximum_ram_page, current/maximum_reservation, maximum_gpfn', () => {
    expect(mem(vu, XenMem.maximum_ram_page)).toBe(h.xen.frames.frames);
    expect(mem(vu, XenMem.maximum_ram_page | (1 << 6))).toBe(EINVAL);
    s.write(0, new Uint8Array([0xf0, 0x7f])); // DOMID_SELF
    expect(mem(vu, XenMem.current_reservation, arg(0))).toBe(domU.totPages);
    expect(mem(vu, XenMem.maximum_reservation, arg(0))).toBe(40);
    expect(mem(vu, XenMem.maximum_gpfn, arg(0))).toBe(0); // no shared_info: max_pfn 0
    s.write(0, new Uint8Array([dom0.id, 0]));
    expect(mem(vu, XenMem.current_reservation, arg(0))).toBe(EPERM);
    expect(mem(v0, XenMem.maximum_reservation, arg(0))).toBe(1024);
    s.write(0, new Uint8Array([55, 0]));
    expect(mem(vu, XenMem.maximum_reservation, arg(0))).toBe(ESRCH);
    expect(mem(vu, XenMem.current_reservation, 0xffff800000000000n)).toBe(EFAULT);
    expect(mem(vu, XenMem.current_reservation | (2 << 6), arg(0))).toBe(EINVAL);
  });

  it('maximum_gpfn follows shared_info.arch.max_pfn', () => {
    const [si] = h.alloc(domU);
    domU.sharedInfoMfn = si;
    h.phys.dv.setBigUint64(si * 4096 + 3088, 1234n, true);
    s.write(0, new Uint8Array([0xf0, 0x7f]));
    expect(mem(vu, XenMem.maximum_gpfn, arg(0))).toBe(1233);
  });

  it('machphys_mapping and machphys_mfn_list describe the read-only M2P', () => {
    expect(mem(vu, XenMem.machphys_mapping, arg(0))).toBe(0);
    expect(s.get64(0)).toBe(0xffff800000000000n);
    expect(s.get64(8)).toBe(0xffff804000000000n);
    // A domU sees max_mfn = MACH2PHYS_NR_ENTRIES - 1 (the M2P area's size), not the top of RAM.
    expect(s.get64(16)).toBe(0x7ffffffffn);
    s.put64(0x100, [4n, va(BUF + 0x200), 0n]);
    expect(mem(vu, XenMem.machphys_mfn_list, arg(0x100))).toBe(0);
    expect(s.get32(0x110)).toBe(1);
    expect(s.get64(0x200)).toBe(BigInt(machphysMfnList(h.xen)[0]));
  });

  it('add_to_physmap and remove_from_physmap are for auto-translated guests: -EACCES', () => {
    s.write(0, new Uint8Array([0xf0, 0x7f, 0, 0, 0, 0, 0, 0])); // domid SELF, size 0, space 0 (shared_info)
    expect(mem(vu, XenMem.add_to_physmap, arg(0))).toBe(EACCES);
    s.write(4, new Uint8Array([4, 0, 0, 0])); // XENMAPSPACE_gmfn_foreign
    expect(mem(vu, XenMem.add_to_physmap, arg(0))).toBe(ENOSYS);
    s.write(0, new Uint8Array([55, 0, 0, 0, 0, 0, 0, 0]));
    expect(mem(vu, XenMem.add_to_physmap, arg(0))).toBe(ESRCH);
    expect(mem(vu, XenMem.add_to_physmap | (0x10000 << 6), arg(0))).toBe(EDOM);
    s.write(0, new Uint8Array([0xf0, 0x7f]));
    expect(mem(vu, XenMem.remove_from_physmap, arg(0))).toBe(EACCES);
    expect(mem(vu, XenMem.add_to_physmap, 0xffff800000000000n)).toBe(EFAULT);
    expect(mem(vu, 63)).toBe(ENOSYS);
  });
});

describe('reservations', () => {
  it('increase_reservation allocates up to the maximum and reports MFNs', () => {
    const room = domU.maxPages - domU.totPages;
    reservation(s, 0, BUF + 0x100, room + 3);
    expect(mem(vu, XenMem.increase_reservation, arg(0))).toBe(room);
    expect(domU.totPages).toBe(domU.maxPages);
    const m = Number(s.get64(0x100));
    expect(h.xen.frames.owner[m]).toBe(domU.id);
    reservation(s, 0, 0, 1, 10); // order 10 > a domU's 9
    expect(mem(vu, XenMem.increase_reservation, arg(0))).toBe(0);
    expect(mem(vu, XenMem.increase_reservation, 0xffff800000000000n)).toBe(0);
  });

  it('populate_physmap sets the M2P from the requested pfns', () => {
    s.put64(0x100, [700n, 701n]);
    reservation(s, 0, BUF + 0x100, 2);
    expect(mem(vu, XenMem.populate_physmap, arg(0))).toBe(2);
    const m = [Number(s.get64(0x100)), Number(s.get64(0x108))];
    expect([h.xen.frames.m2p[m[0]], h.xen.frames.m2p[m[1]]]).toEqual([700, 701]);
    reservation(s, 0, BUF + 0x100, 1, 0, 1 << 16); // populate-on-demand: not for PV
    expect(mem(vu, XenMem.populate_physmap, arg(0))).toBe(0);
  });

  it('decrease_reservation gives frames back, unpins them, and stops at one it does not own', () => {
    const [a, b] = h.alloc(domU, 2);
    expect(pinTable(domU, b, 1)).toBe(0);
    const [fr] = h.alloc(dom0);
    s.put64(0x100, [BigInt(a), BigInt(b), BigInt(fr), BigInt(s.buf[7])]);
    const tot = domU.totPages;
    reservation(s, 0, BUF + 0x100, 4);
    expect(mem(vu, XenMem.decrease_reservation, arg(0))).toBe(2);
    expect([h.xen.frames.owner[a], h.xen.frames.owner[b]]).toEqual([-1, -1]);
    expect(domU.totPages).toBe(tot - 2);
    // continue after the failing extent (start extent 3 in the command's high bits)
    expect(mem(vu, XenMem.decrease_reservation | (3 << 6), arg(0))).toBe(4);
    expect(h.xen.frames.owner[s.buf[7]]).toBe(domU.id); // still mapped: freed when unmapped
    expect(mmuUpdate(vu, [[ptr(s.l1, 8), 0n]]).rc).toBe(0);
    expect(h.xen.frames.owner[s.buf[7]]).toBe(-1);
    // a freed frame goes to the next allocation, with no stale references
    reservation(s, 0, BUF + 0x100, 1);
    expect(mem(vu, XenMem.increase_reservation, arg(0))).toBe(1);
    expect(mmuUpdate(vu, [[ptr(s.l1b, 0), pte(Number(s.get64(0x100)), PRW)]]).rc).toBe(0);
  });

  it('another domain: dom0 may, a domU may not (the start extent comes back)', () => {
    reservation(s0, 0, BUF + 0x100, 1, 0, 0, domU.id);
    const before = domU.totPages;
    expect(mem(v0, XenMem.increase_reservation, arg(0))).toBe(1);
    expect(domU.totPages).toBe(before + 1);
    reservation(s, 0, BUF + 0x100, 1, 0, 0, dom0.id);
    expect(mem(vu, XenMem.increase_reservation, arg(0))).toBe(0);
  });
});
