// Snapshot round trips of a domain's event channel state (2-level and FIFO, mid-queue), and
// the envelope's checks.
import { Packr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { bindToXen, eventsOf, sendVirq } from '../../../src/xen/evtchn/events.js';
import { EvtchnSnapshotError, restoreEvents, saveEvents } from '../../../src/xen/evtchn/snapshot.js';
import { Dom, DOMID_SELF, FifoGuest, Host } from './harness.js';

function restoreInPlace(x: Dom, xenEnds = new Map<number, () => void>()): Uint8Array {
  const blob = saveEvents(x.ev);
  restoreEvents(x.d, blob, {
    notify: (i) => { x.kicks[i]++; }, onPending: (p) => { x.polled.push(p); }, xenEnd: (p) => xenEnds.get(p),
  });
  expect(Buffer.compare(saveEvents(x.ev), blob)).toBe(0);
  return blob;
}

describe('event channel snapshots', () => {
  it('round-trips a 2-level domain with every kind of port', () => {
    const h = new Host(768);
    const d0 = new Dom(h, 'dom0', { privileged: true });
    const a = new Dom(h, 'a', { vcpus: 2 });
    let sent = 0;
    const xp = bindToXen(a.d, () => { sent++; });
    const rp = a.allocUnbound(DOMID_SELF, d0.id);
    const lp = d0.bindInterdomain(a.id, rp);
    const t1 = a.bindVirq(0, 1), g = a.bindVirq(3, 0);
    expect(a.bindVcpu(g, 1)).toBe(0);
    a.bindIpi(1);
    const pq = d0.bindPirq(7);
    for (let i = 0; i < 70; i++) a.bindIpi(0); // a second bucket
    const before = a.ev.table.nrValid;
    restoreInPlace(a, new Map([[xp, () => { sent++; }]]));
    restoreInPlace(d0);
    expect(a.ev.table.nrValid).toBe(before);
    // The restored state works: VIRQ maps, interdomain peers, PIRQs, in-hypervisor ends.
    expect(a.bindVirq(0, 1)).toBe(-17);
    expect(a.bindVirq(3, 0)).toBe(-17);
    expect(sendVirq(a.d, 3)).toBe(true);
    expect(a.sel(1)).toBe(1n);
    expect(sendVirq(a.d, 0, 1)).toBe(true);
    expect(a.pending2(t1)).toBe(true);
    expect(d0.send(lp)).toBe(0);
    expect(a.pending2(rp)).toBe(true);
    expect(d0.bindPirq(7)).toBe(-17);
    expect(d0.close(pq)).toBe(0);
    expect(a.send(xp)).toBe(0);
    expect(sent).toBe(1);
  });

  it('round-trips a FIFO domain in the middle of consuming a queue', () => {
    const h = new Host(768);
    const a = new Dom(h, 'a', { vcpus: 2, spare: 4 });
    const g = new FifoGuest(a, a.spare.slice(0, 2), a.spare.slice(2));
    expect(g.initVcpu(0)).toBe(0);
    expect(g.setup(10)).toBe(0);
    const ports = [0, 1, 2, 3].map(() => a.bindIpi(0));
    for (const p of ports) g.unmask(p);
    expect(a.send(ports[0])).toBe(0);
    expect(a.send(ports[1])).toBe(0);
    expect(g.step(0)).toEqual({ port: ports[0], handled: true });
    restoreInPlace(a);
    expect(eventsOf(a.d)!.delivery.abi).toBe('fifo');
    expect(a.send(ports[2])).toBe(0);
    restoreInPlace(a);
    expect(g.drain(0)).toEqual([ports[1], ports[2]]);
    expect(a.send(ports[3])).toBe(0);
    expect(g.drain(0)).toEqual([ports[3]]);
  });

  it('refuses damaged or foreign blobs', () => {
    const h = new Host(512);
    const a = new Dom(h, 'a', { vcpus: 2 });
    const b = new Dom(h, 'b');
    a.bindIpi(1);
    const blob = saveEvents(a.ev);
    const opts = { notify: () => {} };
    const bad = Uint8Array.from(blob);
    bad[bad.length - 3] ^= 0x40;
    expect(() => restoreEvents(a.d, bad, opts)).toThrow(EvtchnSnapshotError);
    expect(() => restoreEvents(a.d, new Uint8Array([1, 2, 3]), opts)).toThrow(EvtchnSnapshotError);
    const packr = new Packr({ useRecords: false, mapsAsObjects: true });
    const env = packr.unpack(blob) as { version: number };
    expect(() => restoreEvents(a.d, packr.pack({ ...env, version: 99 }), opts)).toThrow(/version 99/);
    expect(() => restoreEvents(a.d, packr.pack({ ...env, magic: 'nope' }), opts)).toThrow(/magic/);
    expect(() => restoreEvents(b.d, blob, opts)).toThrow(/vCPUs/);
    expect(a.status(DOMID_SELF, 1)).toMatchObject({ rc: 0, status: 5, vcpu: 1 }); // untouched
  });
});
