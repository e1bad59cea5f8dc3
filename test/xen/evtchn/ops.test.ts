// EVTCHNOP_* through the real hypercall entry, 2-level ABI: each operation's results and
// error codes as Xen's event_channel.c gives them, the state of each port kind, the port
// limits, PIRQs, reset, SCHEDOP_poll, in-hypervisor ends and the compat hypercall.
import { describe, expect, it } from 'vitest';
import { attachXenEnd, bindToXen, raisePort, sendPirq, sendVirq, setMaxEvtchnPort } from '../../../src/xen/evtchn/events.js';
import { destroyEvents } from '../../../src/xen/evtchn/ops.js';
import { Dom, DOMID_SELF, DOMID_XEN, E, Host, Op, s32, s16 } from './harness.js';
import { hc } from '../mm/harness.js';

const ST = { closed: 0, unbound: 1, interdomain: 2, pirq: 3, virq: 4, ipi: 5 };

function world(): { h: Host; d0: Dom; a: Dom; b: Dom } {
  const h = new Host(640);
  const d0 = new Dom(h, 'dom0', { privileged: true, vcpus: 2 });
  const a = new Dom(h, 'a', { vcpus: 2 });
  const b = new Dom(h, 'b');
  return { h, d0, a, b };
}

describe('alloc_unbound and bind_interdomain', () => {
  it('allocates the lowest free port, offered to the named domain', () => {
    const { a, b } = world();
    expect(a.allocUnbound(DOMID_SELF, b.id)).toBe(1);
    expect(a.allocUnbound(a.id, DOMID_SELF)).toBe(2);
    expect(a.status(DOMID_SELF, 1)).toMatchObject({ rc: 0, status: ST.unbound, vcpu: 0, dom: b.id });
    // remote_dom DOMID_SELF means the caller.
    expect(a.status(DOMID_SELF, 2)).toMatchObject({ rc: 0, status: ST.unbound, dom: a.id });
    expect(a.close(1)).toBe(0);
    expect(a.allocUnbound(DOMID_SELF, 99)).toBe(1); // any remote domid is accepted
  });

  it('only a privileged domain allocates in another; unknown domains are -ESRCH', () => {
    const { d0, a, b } = world();
    expect(a.allocUnbound(b.id, a.id)).toBe(E.EPERM);
    expect(b.ev.table.state[1]).toBe(0);
    expect(a.allocUnbound(77, a.id)).toBe(E.ESRCH);
    expect(d0.allocUnbound(77, a.id)).toBe(E.ESRCH);
    // dom0 allocates in b; DOMID_SELF as remote is dom0 itself, not b.
    expect(d0.allocUnbound(b.id, DOMID_SELF)).toBe(1);
    expect(b.status(DOMID_SELF, 1)).toMatchObject({ status: ST.unbound, dom: d0.id });
  });

  it('binds to an unbound port offered to the caller and raises the new local port', () => {
    const { a, b } = world();
    const rp = a.allocUnbound(DOMID_SELF, b.id);
    expect(b.bindInterdomain(a.id, rp)).toBe(1);
    expect(b.status(DOMID_SELF, 1)).toMatchObject({ status: ST.interdomain, dom: a.id, port: rp, vcpu: 0 });
    expect(a.status(DOMID_SELF, rp)).toMatchObject({ status: ST.interdomain, dom: b.id, port: 1 });
    expect(b.pending2(1)).toBe(true);
    expect(b.sel(0)).toBe(1n);
    expect(b.upcall(0)).toBe(1);
    expect(b.kicks).toEqual([1]);
    expect(b.polled).toEqual([1]);
    // Already bound, not offered, not unbound, beyond the buckets, unknown domain.
    expect(b.bindInterdomain(a.id, rp)).toBe(E.EINVAL);
    expect(a.bindInterdomain(a.id, a.allocUnbound(DOMID_SELF, b.id))).toBe(E.EINVAL);
    expect(b.bindInterdomain(a.id, 0)).toBe(E.EINVAL);
    expect(b.bindInterdomain(a.id, 64)).toBe(E.EINVAL);
    expect(b.bindInterdomain(a.id, 0xffffffff)).toBe(E.EINVAL);
    expect(b.bindInterdomain(55, 1)).toBe(E.ESRCH);
  });

  it('supports loopback channels', () => {
    const { a } = world();
    const p = a.allocUnbound(DOMID_SELF, DOMID_SELF);
    const q = a.bindInterdomain(DOMID_SELF, p);
    expect(q).toBe(p + 1);
    a.setPending2(q, false);
    expect(a.send(q)).toBe(0);
    expect(a.pending2(p)).toBe(true);
    expect(a.send(p)).toBe(0);
    expect(a.pending2(q)).toBe(true);
  });
});

describe('send, unmask and delivery', () => {
  it('sets pending, the selector and upcall_pending once, and honours the mask', () => {
    const { a, b } = world();
    const rp = a.allocUnbound(DOMID_SELF, b.id);
    const lp = b.bindInterdomain(a.id, rp);
    expect(a.kicks).toEqual([0, 0]);
    a.setMask2(rp, true);
    expect(b.send(lp)).toBe(0);
    expect(a.pending2(rp)).toBe(true);
    expect(a.sel(0)).toBe(0n);
    expect(a.upcall(0)).toBe(0);
    expect(a.polled).toEqual([rp]); // pollers wake even for a masked port
    expect(a.unmask(rp)).toBe(0);
    expect(a.masked2(rp)).toBe(false);
    expect(a.sel(0)).toBe(1n);
    expect(a.upcall(0)).toBe(1);
    expect(a.kicks).toEqual([1, 0]);
    // Already pending: nothing more.
    expect(b.send(lp)).toBe(0);
    expect(a.kicks).toEqual([1, 0]);
    expect(a.handle2l(0)).toEqual([rp]);
    // Unmasking an unmasked port delivers nothing even if pending.
    a.setPending2(rp, true);
    expect(a.unmask(rp)).toBe(0);
    expect(a.upcall(0)).toBe(0);
  });

  it('delivers to the bound vCPU and uses one selector bit per 64 ports', () => {
    const { a } = world();
    for (let i = 1; i < 70; i++) expect(a.bindIpi(i === 66 ? 1 : 0)).toBe(i);
    expect(a.send(66)).toBe(0);
    expect(a.sel(1)).toBe(2n);
    expect(a.sel(0)).toBe(0n);
    expect(a.kicks).toEqual([0, 1]);
    expect(a.send(3)).toBe(0);
    expect(a.sel(0)).toBe(1n);
    expect(a.handle2l(1)).toEqual([66]);
  });

  it('answers -EINVAL for ports that cannot send', () => {
    const { d0, a } = world();
    const virq = a.bindVirq(1, 0);
    expect(a.send(virq)).toBe(E.EINVAL);
    expect(a.send(0)).toBe(E.EINVAL);
    expect(a.send(5)).toBe(E.EINVAL); // free
    expect(a.send(64)).toBe(E.EINVAL); // no bucket
    expect(a.send(0x80000000)).toBe(E.EINVAL);
    const pirq = d0.bindPirq(3);
    expect(d0.send(pirq)).toBe(E.EINVAL);
    const ub = a.allocUnbound(DOMID_SELF, 0);
    expect(a.send(ub)).toBe(0); // silently dropped
    expect(a.pending2(ub)).toBe(false);
  });

  it('unmask works on any valid port and is -EINVAL past the buckets', () => {
    const { a } = world();
    a.setMask2(7, true);
    expect(a.unmask(7)).toBe(0);
    expect(a.masked2(7)).toBe(false);
    a.setMask2(0, true);
    expect(a.unmask(0)).toBe(0);
    expect(a.unmask(64)).toBe(E.EINVAL);
  });
});

describe('VIRQs, IPIs and bind_vcpu', () => {
  it('classifies VIRQs as per-vCPU or global', () => {
    const { a } = world();
    expect(a.bindVirq(24, 0)).toBe(E.EINVAL);
    expect(a.bindVirq(0xffffffff, 0)).toBe(E.EINVAL);
    expect(a.bindVirq(2, 1)).toBe(E.EINVAL); // global on vCPU 1
    expect(a.bindVirq(16, 1)).toBe(E.EINVAL); // VIRQ_ARCH_* are global on x86
    expect(a.bindVirq(0, 2)).toBe(E.ENOENT);
    expect(a.bindVirq(2, 5)).toBe(E.EINVAL); // the global check comes first
    const t0 = a.bindVirq(0, 0), t1 = a.bindVirq(0, 1);
    expect([t0, t1]).toEqual([1, 2]);
    expect(a.bindVirq(0, 1)).toBe(E.EEXIST);
    for (const v of [1, 7, 13]) expect(a.bindVirq(v, 1)).toBeGreaterThan(0);
    const g = a.bindVirq(2, 0);
    expect(a.bindVirq(2, 0)).toBe(E.EEXIST);
    expect(a.status(DOMID_SELF, t1)).toMatchObject({ status: ST.virq, vcpu: 1, irq: 0 });
    expect(sendVirq(a.d, 0, 1)).toBe(true);
    expect(a.sel(1)).toBe(1n);
    expect(a.kicks).toEqual([0, 1]);
    // A global VIRQ moves with bind_vcpu, and stays bound once.
    expect(a.bindVcpu(g, 1)).toBe(0);
    expect(a.bindVirq(2, 0)).toBe(E.EEXIST);
    expect(sendVirq(a.d, 2)).toBe(true);
    expect(a.status(DOMID_SELF, g)).toMatchObject({ status: ST.virq, vcpu: 1, irq: 2 });
    expect(a.close(g)).toBe(0);
    expect(a.bindVirq(2, 0)).toBe(g);
    expect(sendVirq(a.d, 3)).toBe(false);
  });

  it('applies bind_vcpu rules per state, checking the vCPU first', () => {
    const { d0, a } = world();
    const ipi = a.bindIpi(1);
    expect(a.bindIpi(2)).toBe(E.ENOENT);
    expect(a.bindVcpu(ipi, 0)).toBe(E.EINVAL);
    const timer = a.bindVirq(0, 0);
    expect(a.bindVcpu(timer, 1)).toBe(E.EINVAL);
    const ub = a.allocUnbound(DOMID_SELF, 0);
    expect(a.bindVcpu(ub, 1)).toBe(0);
    expect(a.status(DOMID_SELF, ub).vcpu).toBe(1);
    expect(a.bindVcpu(99, 2)).toBe(E.ENOENT);
    expect(a.bindVcpu(99, 1)).toBe(E.EINVAL);
    expect(a.bindVcpu(0, 1)).toBe(E.EINVAL);
    expect(a.bindVcpu(30, 1)).toBe(E.EINVAL); // free
    const pirq = d0.bindPirq(9);
    expect(d0.bindVcpu(pirq, 1)).toBe(0);
    expect(sendPirq(d0.d, 9)).toBe(true);
    expect(d0.sel(1)).toBe(1n);
    // The binding of a reused port starts on vCPU 0.
    expect(a.close(ub)).toBe(0);
    expect(a.status(DOMID_SELF, ub)).toMatchObject({ status: ST.closed, vcpu: 0 });
    expect(a.allocUnbound(DOMID_SELF, 0)).toBe(ub);
    expect(a.status(DOMID_SELF, ub).vcpu).toBe(0);
  });
});

describe('close and status of each state', () => {
  it('closes every kind of port and reports each state', () => {
    const { d0, a, b } = world();
    const ub = a.allocUnbound(DOMID_SELF, b.id);
    const rp = a.allocUnbound(DOMID_SELF, b.id);
    const lp = b.bindInterdomain(a.id, rp);
    const vq = a.bindVirq(1, 1);
    const ipi = a.bindIpi(1);
    const pq = d0.bindPirq(5);
    expect(d0.status(a.id, ub)).toMatchObject({ rc: 0, status: ST.unbound, dom: b.id });
    expect(d0.status(b.id, lp)).toMatchObject({ rc: 0, status: ST.interdomain, dom: a.id, port: rp });
    expect(a.status(DOMID_SELF, vq)).toMatchObject({ status: ST.virq, vcpu: 1, irq: 1 });
    expect(a.status(DOMID_SELF, ipi)).toMatchObject({ status: ST.ipi, vcpu: 1, irq: 0xdeadbeef });
    expect(d0.status(DOMID_SELF, pq)).toMatchObject({ status: ST.pirq, vcpu: 0, irq: 5 });
    expect(a.status(DOMID_SELF, 0)).toMatchObject({ rc: 0, status: ST.closed });
    expect(a.status(DOMID_SELF, 40)).toMatchObject({ rc: 0, status: ST.closed });
    expect(a.status(DOMID_SELF, 64)).toMatchObject({ rc: E.EINVAL });
    expect(a.status(b.id, lp)).toMatchObject({ rc: E.EPERM });
    expect(a.status(b.id, 64)).toMatchObject({ rc: E.EINVAL }); // the port check comes first
    expect(a.status(66, 1)).toMatchObject({ rc: E.ESRCH });

    // The peer of a closed interdomain port goes back to unbound, offered to us again.
    a.setMask2(rp, true);
    expect(a.close(rp)).toBe(0);
    expect(b.status(DOMID_SELF, lp)).toMatchObject({ status: ST.unbound, dom: a.id });
    expect(a.masked2(rp)).toBe(true); // the mask is the guest's
    expect(a.bindInterdomain(b.id, lp)).toBe(rp);
    expect(b.status(DOMID_SELF, lp)).toMatchObject({ status: ST.interdomain, port: rp });
    b.setPending2(lp, true);
    expect(b.close(lp)).toBe(0);
    expect(b.pending2(lp)).toBe(false);
    for (const p of [ub, vq, ipi]) expect(a.close(p)).toBe(0);
    expect(a.bindVirq(1, 1)).toBe(ub); // VIRQ free again, lowest port reused
    expect(d0.close(pq)).toBe(0);
    expect(d0.bindPirq(5)).toBe(pq);
    for (const p of [0, 30, 64]) expect(a.close(p)).toBe(E.EINVAL);
    expect(a.close(ipi)).toBe(E.EINVAL);
  });
});

describe('port limits', () => {
  it('grows in buckets of 64 ports, up to 4095 for 2-level', () => {
    const h = new Host(512);
    const a = new Dom(h, 'a');
    for (let i = 1; i < 64; i++) expect(a.bindIpi(0)).toBe(i);
    expect(a.ev.table.nrValid).toBe(64);
    expect(a.status(DOMID_SELF, 64).rc).toBe(E.EINVAL);
    expect(a.bindIpi(0)).toBe(64);
    expect(a.ev.table.nrValid).toBe(128);
    expect(a.status(DOMID_SELF, 100)).toMatchObject({ rc: 0, status: ST.closed });
    for (let i = 65; i < 4096; i++) expect(a.bindIpi(0)).toBe(i);
    expect(a.bindIpi(0)).toBe(E.ENOSPC);
    expect(a.allocUnbound(DOMID_SELF, 0)).toBe(E.ENOSPC);
    expect(a.bindVirq(0, 0)).toBe(E.ENOSPC);
    expect(a.ev.table.nrValid).toBe(4096);
    expect(a.send(4095)).toBe(0);
    expect(a.pending2(4095)).toBe(true);
    expect(a.sel(0)).toBe(1n << 63n);
    expect(a.close(1000)).toBe(0);
    expect(a.bindIpi(0)).toBe(1000);
  });

  it('honours the toolstack limit (max_evtchn_port)', () => {
    const h = new Host(512);
    const a = new Dom(h, 'a');
    setMaxEvtchnPort(a.d, 5);
    for (let i = 1; i <= 5; i++) expect(a.bindIpi(0)).toBe(i);
    expect(a.bindIpi(0)).toBe(E.ENOSPC);
  });

  it('refuses new ports in a dying domain', () => {
    const h = new Host(512);
    const a = new Dom(h, 'a');
    a.d.state = 'dying';
    expect(a.bindIpi(0)).toBe(E.EINVAL);
  });
});

describe('PIRQs (minimal model)', () => {
  it('lets only the hardware domain bind, once per PIRQ', () => {
    const { d0, a } = world();
    expect(a.bindPirq(3)).toBe(E.EPERM);
    expect(a.bindPirq(56)).toBe(E.EINVAL); // nr_pirqs of a domU: 24 + 32
    expect(d0.bindPirq(280)).toBe(E.EINVAL);
    expect(d0.bindPirq(0xffffffff)).toBe(E.EINVAL);
    const p = d0.bindPirq(279, 1);
    expect(p).toBe(1);
    expect(d0.bindPirq(279)).toBe(E.EEXIST);
    expect(sendPirq(d0.d, 279)).toBe(true);
    expect(d0.pending2(p)).toBe(true);
    expect(sendPirq(d0.d, 4)).toBe(false);
  });
});

describe('reset', () => {
  it('closes every port of the caller; peers go back to unbound', () => {
    const { a, b } = world();
    const rp = a.allocUnbound(DOMID_SELF, b.id);
    const lp = b.bindInterdomain(a.id, rp);
    a.bindIpi(1); a.bindVirq(0, 1);
    expect(a.reset(DOMID_SELF)).toBe(0);
    expect(a.ev.table.active).toBe(0);
    expect(b.status(DOMID_SELF, lp)).toMatchObject({ status: ST.unbound, dom: a.id });
    expect(a.bindVirq(0, 1)).toBe(1);
  });

  it('needs privilege, and a paused target, for another domain', () => {
    const { d0, a, b } = world();
    b.bindIpi(0);
    expect(a.reset(b.id)).toBe(E.EPERM);
    expect(a.reset(a.id)).toBe(0);
    expect(d0.reset(b.id)).toBe(E.EINVAL);
    expect(d0.reset(99)).toBe(E.ESRCH);
    b.d.state = 'paused';
    expect(d0.reset(b.id)).toBe(0);
    expect(b.ev.table.active).toBe(0);
    // reset_cont outside a reset: -EBUSY.
    expect(a.call(14, s16(DOMID_SELF)).rc).toBe(E.EBUSY);
  });
});

describe('the hypercall entry', () => {
  it('copies arguments in and out, with -EFAULT and -ENOSYS', () => {
    const { a } = world();
    const v = a.vcpus[0];
    expect(hc(v, 32, Op.bind_ipi, 0x800000000000n)).toBe(E.EFAULT); // non-canonical
    expect(hc(v, 32, Op.bind_ipi, 0x5000000n)).toBe(E.EFAULT); // unmapped
    expect(a.ev.table.active).toBe(0);
    expect(a.call(15, s32(0)).rc).toBe(E.ENOSYS);
    expect(a.call(0xffffffff, s32(0)).rc).toBe(E.ENOSYS);
    // Status copies the whole struct back: the union's unused bytes are kept.
    const ipi = a.bindIpi(0);
    expect(a.status(DOMID_SELF, ipi)).toMatchObject({ status: ST.ipi, irq: 0xdeadbeef, port: 0xdeadbeef });
  });

  it('serves event_channel_op_compat for commands 0..9', () => {
    const { a } = world();
    const r = a.call(Op.bind_ipi, s32(1), true);
    expect(r.rc).toBe(0);
    expect(r.out.getUint32(4, true)).toBe(1);
    expect(a.call(Op.send, s32(1), true).rc).toBe(0);
    expect(a.sel(1)).toBe(1n);
    expect(a.call(Op.reset, s16(DOMID_SELF), true).rc).toBe(E.ENOSYS);
    expect(a.call(Op.init_control, new Uint8Array(24), true).rc).toBe(E.ENOSYS);
  });
});

describe('SCHEDOP_poll', () => {
  it('returns at once for a pending port, blocks otherwise, and -EINVAL past the buckets', () => {
    const { a } = world();
    const p = a.bindIpi(0);
    a.setMask2(p, true);
    expect(a.send(p)).toBe(0);
    expect(a.poll([p])).toBe(0);
    expect(a.vcpus[0].blocked).toBe(false);
    expect(a.poll([64])).toBe(E.EINVAL);
    const q = a.bindIpi(0);
    a.setMask2(q, true);
    a.polled.length = 0;
    expect(a.poll([q, 0])).toBe(0); // port 0 is valid (reserved, never pending)
    expect(a.vcpus[0].blocked).toBe(true);
    expect(a.vcpus[0].pollPorts).toEqual([q, 0]);
    expect(a.send(q)).toBe(0);
    expect(a.polled).toEqual([q]); // the toolstack's onPending wakes the poller
  });
});

describe('in-hypervisor ends', () => {
  it('calls the backend on send, raises the guest port, and forgets it when closed', () => {
    const { a } = world();
    let sent = 0;
    const p = bindToXen(a.d, () => { sent++; });
    expect(a.status(DOMID_SELF, p)).toMatchObject({ status: ST.interdomain, dom: DOMID_XEN, port: 0 });
    expect(a.send(p)).toBe(0);
    expect(sent).toBe(1);
    raisePort(a.d, p);
    expect(a.pending2(p)).toBe(true);
    expect(a.close(p)).toBe(0);
    expect(a.send(p)).toBe(E.EINVAL);
    // The number is reused for something else: the old backend's notifications are dropped.
    expect(a.bindIpi(1)).toBe(p);
    raisePort(a.d, p);
    expect(a.pending2(p)).toBe(false);
    expect(attachXenEnd(a.d, p, () => {})).toBe(false);
  });
});

describe('domain destruction', () => {
  it('closes every port, so peers are unbound', () => {
    const { a, b } = world();
    const rp = a.allocUnbound(DOMID_SELF, b.id);
    const lp = b.bindInterdomain(a.id, rp);
    destroyEvents(a.d);
    expect(b.status(DOMID_SELF, lp)).toMatchObject({ status: ST.unbound, dom: a.id });
    expect(a.ev.table.active).toBe(0);
  });
});
