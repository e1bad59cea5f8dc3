// The FIFO ABI through the real hypercall entry: init_control / expand_array / set_priority
// and their errors, queueing (LINKED, PENDING, MASKED, the 17-bit LINK, READY and HEAD per
// priority), the switch-over from 2-level and back (reset), and a guest that consumes its
// queues as Linux's events_fifo.c does. Linux tries FIFO first and falls back to 2-level:
// both boots are emulated here.
import { describe, expect, it } from 'vitest';
import { bindToXen, eventsOf, sendVirq } from '../../../src/xen/evtchn/events.js';
import { destroyEvents } from '../../../src/xen/evtchn/ops.js';
import { pageInfo, PGT } from '../../../src/xen/mm/pagetype.js';
import { Dom, DOMID_SELF, E, FifoGuest, Host } from './harness.js';

const FP = 1 << 31, FM = 1 << 30, FL = 1 << 29;

function fifoWorld(vcpus = 2): { h: Host; a: Dom; b: Dom; g: FifoGuest } {
  const h = new Host(1024);
  const a = new Dom(h, 'a', { vcpus, spare: 6 });
  const b = new Dom(h, 'b', { spare: 2 });
  const g = new FifoGuest(a, a.spare.slice(0, vcpus), a.spare.slice(vcpus));
  return { h, a, b, g };
}

describe('init_control', () => {
  it('checks the vCPU, the offset and the frame, and answers link_bits', () => {
    const { h, a, b, g } = fifoWorld();
    const f = a.spare[0];
    expect(a.initControl(f, 0, 2).rc).toBe(E.ENOENT);
    expect(a.initControl(f, 0, 0xffffffff).rc).toBe(E.ENOENT);
    expect(a.initControl(f, 4096 - 72 + 8, 0).rc).toBe(E.EINVAL);
    expect(a.initControl(f, 12, 0).rc).toBe(E.EINVAL);
    expect(a.initControl(b.spare[0], 0, 0).rc).toBe(E.EINVAL); // not the caller's frame
    expect(a.initControl(a.space.l1, 0, 0).rc).toBe(E.EINVAL); // a page table
    expect(a.initControl(h.xen.frames.frames + 5, 0, 0).rc).toBe(E.EINVAL);
    expect(a.initControl(1n << 60n, 0, 0).rc).toBe(E.EINVAL);
    expect(a.ev.delivery.abi).toBe('2l');
    expect(a.initControl(f, 4096 - 72, 0)).toEqual({ rc: 0, linkBits: 17 });
    expect(a.ev.delivery.abi).toBe('fifo');
    expect(a.initControl(f, 0, 0).rc).toBe(E.EINVAL); // vCPU 0 has one already
    expect(a.initControl(a.space.l1, 0, 1).rc).toBe(E.EINVAL);
    expect(g.initVcpu(1)).toBe(0);
    // Xen holds a writable-type reference on each mapped frame.
    const pi = pageInfo(h.xen);
    expect(pi.type[f]).toBe(PGT.WRITABLE);
    expect(pi.typeCount[f]).toBe(1);
  });

  it('answers -ENOSYS when FIFO is not offered, leaving the domain on 2-level', () => {
    const { a } = fifoWorld();
    a.ev.fifoAllowed = false;
    expect(a.initControl(a.spare[0], 0, 0).rc).toBe(E.ENOSYS);
    expect(a.ev.delivery.abi).toBe('2l');
  });
});

describe('expand_array and set_priority', () => {
  it('expands up to 128 pages', () => {
    const h = new Host(1024);
    const a = new Dom(h, 'a', { spare: 130 });
    expect(a.expandArray(a.spare[1])).toBe(E.EOPNOTSUPP);
    expect(a.initControl(a.spare[0], 0, 0).rc).toBe(0);
    expect(a.expandArray(a.space.l4)).toBe(E.EINVAL);
    expect(a.expandArray(h.xen.frames.frames)).toBe(E.EINVAL);
    for (let i = 1; i <= 128; i++) expect(a.expandArray(a.spare[i])).toBe(0);
    expect(a.expandArray(a.spare[129])).toBe(E.ENOSPC);
    expect(a.ev.fifo!.numEvtchns).toBe(1 << 17);
  });

  it('sets priorities 0..15 in FIFO only', () => {
    const { a, g } = fifoWorld();
    const p = a.bindIpi(0);
    expect(a.setPriority(p, 3)).toBe(E.ENOSYS);
    expect(a.setPriority(64, 3)).toBe(E.EINVAL);
    expect(g.initVcpu(0)).toBe(0);
    expect(a.setPriority(p, 16)).toBe(E.EINVAL);
    expect(a.setPriority(p, 0)).toBe(0);
    expect(a.setPriority(30, 15)).toBe(0); // any valid port, even free
    expect(a.setPriority(64, 3)).toBe(E.EINVAL);
    expect(a.ev.table.priority[p]).toBe(0);
    expect(a.close(p)).toBe(0);
    expect(a.bindIpi(0)).toBe(p);
    expect(a.ev.table.priority[p]).toBe(7); // a new binding has the default priority
  });
});

describe('queueing', () => {
  function ready(): { a: Dom; b: Dom; g: FifoGuest } {
    const w = fifoWorld();
    expect(w.g.initVcpu(0)).toBe(0);
    expect(w.g.initVcpu(1)).toBe(0);
    expect(w.g.setup(100)).toBe(0);
    return w;
  }

  it('links events in order, sets READY and the upcall once, and the guest consumes them', () => {
    const { a, g } = ready();
    const ports = [1, 2, 3, 4].map(() => a.bindIpi(0));
    for (const p of ports) expect(g.unmask(p)).toBe(0);
    expect(a.send(3)).toBe(0);
    expect(g.cbReady(0)).toBe(1 << 7);
    expect(g.cbHead(0, 7)).toBe(3);
    expect(a.upcall(0)).toBe(1);
    expect(a.kicks).toEqual([1, 0]);
    expect(g.word(3) >>> 0).toBe((FP | FL) >>> 0);
    expect(a.send(1)).toBe(0);
    expect(a.send(4)).toBe(0);
    expect(g.link(3)).toBe(1);
    expect(g.link(1)).toBe(4);
    expect(a.kicks).toEqual([1, 0]); // appended to a non-empty queue: no new READY, no kick
    expect(a.send(3)).toBe(0); // already pending and linked
    expect(g.link(4)).toBe(0);
    expect(g.drain(0)).toEqual([3, 1, 4]);
    expect(a.upcall(0)).toBe(0);
    for (const p of [3, 1, 4]) expect(g.word(p)).toBe(0);
    // A new event after the queue drained starts a new HEAD.
    expect(a.send(2)).toBe(0);
    expect(g.cbHead(0, 7)).toBe(2);
    expect(a.kicks).toEqual([2, 0]);
    expect(g.drain(0)).toEqual([2]);
  });

  it('serves higher priorities first and queues per vCPU', () => {
    const { a, g } = ready();
    const lo = a.bindIpi(0), hi = a.bindIpi(0), mid = a.bindIpi(0), other = a.bindIpi(1);
    for (const p of [lo, hi, mid, other]) g.unmask(p);
    expect(a.setPriority(hi, 0)).toBe(0);
    expect(a.setPriority(lo, 15)).toBe(0);
    for (const p of [lo, mid, hi, other]) expect(a.send(p)).toBe(0);
    expect(g.cbReady(0)).toBe((1 << 15) | (1 << 7) | 1);
    expect(g.cbReady(1)).toBe(1 << 7);
    expect(g.drain(0)).toEqual([hi, mid, lo]);
    expect(g.drain(1)).toEqual([other]);
  });

  it('does not link masked events; unmask relinks a pending one', () => {
    const { a, g } = ready();
    const p = a.bindIpi(0);
    expect(a.send(p)).toBe(0);
    expect(g.word(p) >>> 0).toBe((FP | FM) >>> 0);
    expect(a.upcall(0)).toBe(0);
    expect(a.polled).toEqual([p]);
    expect(g.unmask(p)).toBe(0); // pending: the guest must ask Xen
    expect(g.word(p) >>> 0).toBe((FP | FL) >>> 0);
    expect(a.upcall(0)).toBe(1);
    // A masked event still on a queue is consumed but not handled.
    g.mask(p);
    expect(g.drain(0)).toEqual([]);
    expect(g.word(p) >>> 0).toBe((FP | FM) >>> 0);
  });

  it('keeps a linked event on its queue across close, and does not reuse the port until consumed', () => {
    const { a, g } = ready();
    const p = a.bindIpi(0), q = a.bindIpi(0);
    g.unmask(p); g.unmask(q);
    expect(a.send(p)).toBe(0);
    expect(a.close(p)).toBe(0);
    expect(g.word(p) >>> 0).toBe(FL >>> 0); // pending cleared, still linked
    expect(a.bindIpi(0)).toBe(q + 1); // busy: skipped
    expect(g.drain(0)).toEqual([]);
    expect(a.bindIpi(0)).toBe(p);
  });

  it('links on the notify vCPU at the priority of the time, and invalidates a moved tail', () => {
    const { a, b, g } = ready();
    const x = a.allocUnbound(DOMID_SELF, b.id), y = a.allocUnbound(DOMID_SELF, b.id);
    const bx = b.bindInterdomain(a.id, x), by = b.bindInterdomain(a.id, y);
    g.unmask(x); g.unmask(y);
    expect(b.send(bx)).toBe(0);
    expect(g.drain(0)).toEqual([x]);
    // x was the tail of (vCPU 0, 7); it moves to vCPU 1 and is linked there.
    expect(a.bindVcpu(x, 1)).toBe(0);
    expect(b.send(bx)).toBe(0);
    expect(g.cbHead(1, 7)).toBe(x);
    // The old queue must not link y behind x (which now lives on vCPU 1's queue).
    expect(b.send(by)).toBe(0);
    expect(g.link(x)).toBe(0);
    expect(g.cbHead(0, 7)).toBe(y);
    expect(g.drain(0)).toEqual([y]);
    expect(g.drain(1)).toEqual([x]);
  });

  it('leaves an event unlinked when its vCPU has no control block', () => {
    const { a, g } = fifoWorld();
    expect(g.initVcpu(0)).toBe(0);
    expect(g.setup(10)).toBe(0);
    const p = a.bindIpi(1);
    g.unmask(p);
    expect(a.send(p)).toBe(0);
    expect(g.word(p) >>> 0).toBe(FP >>> 0);
    expect(g.initVcpu(1)).toBe(0);
    g.mask(p);
    expect(g.unmask(p)).toBe(0); // the guest unmasks once its control block exists
    expect(g.drain(1)).toEqual([p]);
  });

  it('remembers events beyond the array and raises them when the page arrives', () => {
    const h = new Host(1024);
    const a = new Dom(h, 'a', { spare: 4 });
    const g = new FifoGuest(a, [a.spare[0]], a.spare.slice(1));
    expect(g.initVcpu(0)).toBe(0);
    const p = a.bindIpi(0);
    expect(a.send(p)).toBe(0);
    expect(a.ev.table.savedPending[p]).toBe(1);
    expect(a.polled).toEqual([]);
    expect(g.setup(p)).toBe(0);
    expect(g.word(p) >>> 0).toBe((FP | FM) >>> 0);
    expect(a.polled).toEqual([p]);
    expect(g.unmask(p)).toBe(0);
    expect(g.drain(0)).toEqual([p]);
  });
});

describe('switching ABIs', () => {
  it('keeps ports bound before init_control and carries their pending state', () => {
    const { a, b, g } = fifoWorld();
    const rp = a.allocUnbound(DOMID_SELF, b.id);
    const lp = b.bindInterdomain(a.id, rp);
    const ipi = a.bindIpi(1);
    a.maskAll2();
    expect(b.send(lp)).toBe(0);
    expect(a.pending2(rp)).toBe(true);
    expect(g.initVcpu(0)).toBe(0);
    expect(g.initVcpu(1)).toBe(0);
    expect(a.status(DOMID_SELF, rp)).toMatchObject({ rc: 0, status: 2, dom: b.id, port: lp });
    expect(a.status(DOMID_SELF, ipi)).toMatchObject({ rc: 0, status: 5, vcpu: 1 });
    expect(g.setup(ipi)).toBe(0);
    expect(g.pending(rp)).toBe(true);
    expect(g.pending(ipi)).toBe(false);
    expect(g.unmask(rp)).toBe(0);
    expect(g.unmask(ipi)).toBe(0);
    expect(a.send(ipi)).toBe(0);
    expect(g.drain(0)).toEqual([rp]);
    expect(g.drain(1)).toEqual([ipi]);
  });

  it('goes back to 2-level on reset, releasing the frames, and can switch again', () => {
    const { h, a, g } = fifoWorld();
    expect(g.initVcpu(0)).toBe(0);
    expect(g.setup(5)).toBe(0);
    const pi = pageInfo(h.xen);
    expect(pi.typeCount[g.cbFrames[0]]).toBe(1);
    expect(pi.typeCount[g.array[0]]).toBe(1);
    a.bindIpi(0);
    expect(a.reset(DOMID_SELF)).toBe(0);
    expect(a.ev.delivery.abi).toBe('2l');
    expect(a.ev.fifo).toBeNull();
    expect(pi.typeCount[g.cbFrames[0]]).toBe(0);
    expect(pi.typeCount[g.array[0]]).toBe(0);
    expect(pi.count[g.array[0]]).toBe(0);
    const p = a.bindIpi(0);
    expect(a.send(p)).toBe(0);
    expect(a.pending2(p)).toBe(true);
    const g2 = new FifoGuest(a, g.cbFrames, g.arrayFrames);
    expect(g2.initVcpu(0)).toBe(0);
    expect(g2.setup(5)).toBe(0);
    expect(g2.unmask(p)).toBe(0); // carried from 2-level again
    expect(g2.drain(0)).toEqual([p]);
  });
});

describe('FIFO and the rest of the hypervisor', () => {
  it('answers SCHEDOP_poll from the event words', () => {
    const { a, g } = fifoWorld();
    expect(g.initVcpu(0)).toBe(0);
    expect(g.setup(10)).toBe(0);
    const p = a.bindIpi(0), q = a.bindIpi(0);
    expect(a.send(p)).toBe(0); // masked: pending, not linked
    expect(a.poll([q, p])).toBe(0);
    expect(a.vcpus[0].blocked).toBe(false);
    expect(a.poll([q])).toBe(0);
    expect(a.vcpus[0].blocked).toBe(true);
    a.polled.length = 0;
    expect(a.send(q)).toBe(0);
    expect(a.polled).toEqual([q]);
  });

  it('releases the frames when the domain is destroyed, and peers go unbound', () => {
    const { h, a, b, g } = fifoWorld();
    expect(g.initVcpu(0)).toBe(0);
    expect(g.initVcpu(1)).toBe(0);
    expect(g.setup(5)).toBe(0);
    const rp = b.allocUnbound(DOMID_SELF, a.id);
    const lp = a.bindInterdomain(b.id, rp);
    expect(lp).toBeGreaterThan(0);
    destroyEvents(a.d);
    const pi = pageInfo(h.xen);
    for (const f of [...g.cbFrames, g.array[0]]) expect([pi.count[f], pi.typeCount[f]]).toEqual([0, 0]);
    expect(b.status(DOMID_SELF, rp)).toMatchObject({ rc: 0, status: 1, dom: a.id });
    expect(a.ev.delivery.abi).toBe('2l');
  });
});

// ---- a Linux-like boot on each ABI ---------------------------------------------------------

/**
 * What Linux 6.1 does with event channels while booting and running, on either ABI:
 * xen_init_IRQ tries EVTCHNOP_init_control (FIFO) and falls back to 2-level if it fails;
 * then VIRQ_TIMER and the IPIs per vCPU, VIRQ_DEBUG, and the console's interdomain port (an
 * in-hypervisor end here). Each port is set up (FIFO: expand_array) and unmasked; then
 * events arrive and the upcall handler consumes them.
 */
function linuxBoot(fifo: boolean) {
  const h = new Host(1024);
  const a = new Dom(h, 'linux', { vcpus: 2, spare: 6 });
  let consoleKicks = 0;
  const consolePort = bindToXen(a.d, () => { consoleKicks++; });
  if (!fifo) a.ev.fifoAllowed = false;
  const g = new FifoGuest(a, a.spare.slice(0, 2), a.spare.slice(2));
  const usingFifo = g.initVcpu(0) === 0;
  if (!usingFifo) a.maskAll2(); // evtchn_2l: every port masked
  const setup = (p: number) => { if (usingFifo) expect(g.setup(p)).toBe(0); };
  const unmask = (p: number) => {
    if (usingFifo) { expect(g.unmask(p)).toBe(0); return; }
    // evtchn_2l_unmask on the local CPU: clear the mask and resend by hand if pending.
    a.setMask2(p, false);
    const v = eventsOf(a.d)!.table.notifyVcpu[p];
    if (a.pending2(p) && !((a.sel(v) >> BigInt(p >> 6)) & 1n)) { a.setSel(v, a.sel(v) | (1n << BigInt(p >> 6))); a.setUpcall(v, 1); }
  };
  const bind = (p: number) => { expect(p).toBeGreaterThan(0); setup(p); unmask(p); return p; };
  if (usingFifo) expect(g.initVcpu(1)).toBe(0);
  const timer = [bind(a.bindVirq(0, 0)), bind(a.bindVirq(0, 1))];
  const ipis = [0, 1].map((v) => [0, 1, 2, 3].map(() => bind(a.bindIpi(v))));
  const debug = bind(a.bindVirq(1, 0));
  bind(consolePort);
  const handle = (v: number) => (usingFifo ? g.drain(v) : a.handle2l(v));
  return { a, g, usingFifo, timer, ipis, debug, consolePort, handle, consoleKicks: () => consoleKicks };
}

describe.each([true, false])('a Linux-like guest (FIFO offered: %s)', (fifo) => {
  it('binds, receives and handles events', () => {
    const L = linuxBoot(fifo);
    const { a } = L;
    expect(L.usingFifo).toBe(fifo);
    expect(a.ev.delivery.abi).toBe(fifo ? 'fifo' : '2l');
    // The console port was bound to Xen before the switch: it is still connected.
    expect(a.status(DOMID_SELF, L.consolePort)).toMatchObject({ status: 2 });
    expect(a.send(L.consolePort)).toBe(0);
    expect(L.consoleKicks()).toBe(1);
    // Drain whatever binding raised (none expected), then run.
    L.handle(0); L.handle(1);
    const k0 = a.kicks[0];
    expect(sendVirq(a.d, 0, 1)).toBe(true);
    expect(sendVirq(a.d, 0, 0)).toBe(true);
    expect(a.send(L.ipis[1][0])).toBe(0); // reschedule IPI to vCPU 1
    expect(a.send(L.ipis[0][2])).toBe(0);
    expect(sendVirq(a.d, 1)).toBe(true);
    expect(a.kicks[0]).toBe(k0 + 1);
    expect(a.upcall(0)).toBe(1);
    expect(a.upcall(1)).toBe(1);
    expect(L.handle(0).sort((x, y) => x - y)).toEqual([L.timer[0], L.ipis[0][2], L.debug].sort((x, y) => x - y));
    expect(L.handle(1).sort((x, y) => x - y)).toEqual([L.timer[1], L.ipis[1][0]].sort((x, y) => x - y));
    // Masked (disabled irq): not delivered until unmasked.
    if (L.usingFifo) L.g.mask(L.debug); else a.setMask2(L.debug, true);
    expect(sendVirq(a.d, 1)).toBe(true);
    expect(L.handle(0)).toEqual([]);
    if (L.usingFifo) expect(L.g.unmask(L.debug)).toBe(0); else expect(a.unmask(L.debug)).toBe(0);
    expect(L.handle(0)).toEqual([L.debug]);
  });
});
