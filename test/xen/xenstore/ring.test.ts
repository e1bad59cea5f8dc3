// The shared-ring transport, driven by a simulated guest on a 4 KiB page: requests split
// across the ring's wraparound (and the u32 index wrap), partial messages, many requests in
// flight against a full response ring, protocol faults, reconnection, and a snapshot taken
// between two halves of a request.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createXenstore, type DomainRec, type Xenstore } from '../../../src/xen/xenstore/model.js';
import { XsType, decodeStream, encodeMsg, request, type XsMsg } from '../../../src/xen/xenstore/protocol.js';
import {
  XENSTORE_CONNECTED, XENSTORE_RECONNECT, XENSTORE_RING_SIZE, XenstoreRing, XsRingError, XsRingOff, arrayRingPage,
} from '../../../src/xen/xenstore/ring.js';
import { restoreXenstore, saveXenstore } from '../../../src/xen/xenstore/snapshot.js';

/** The guest's side of the ring page (what Linux's xenbus_comms.c does). */
class Guest {
  readonly v: DataView;
  private got: Uint8Array = new Uint8Array(0);
  constructor(readonly page: Uint8Array) { this.v = new DataView(page.buffer, page.byteOffset, 4096); }
  u32(o: number): number { return this.v.getUint32(o, true); }
  set(o: number, x: number): void { this.v.setUint32(o, x >>> 0, true); }
  /** Put as many bytes as fit in req[]; returns how many. */
  send(b: Uint8Array): number {
    const cons = this.u32(XsRingOff.REQ_CONS);
    let prod = this.u32(XsRingOff.REQ_PROD);
    const n = Math.min(b.length, XENSTORE_RING_SIZE - ((prod - cons) >>> 0));
    for (let i = 0; i < n; i++) { this.page[XsRingOff.REQ + (prod & 1023)] = b[i]; prod = (prod + 1) >>> 0; }
    this.set(XsRingOff.REQ_PROD, prod);
    return n;
  }
  /** Take up to `max` bytes of rsp[]. */
  recv(max = Infinity): number {
    let cons = this.u32(XsRingOff.RSP_CONS);
    const prod = this.u32(XsRingOff.RSP_PROD);
    const n = Math.min(max, (prod - cons) >>> 0);
    const o = new Uint8Array(this.got.length + n);
    o.set(this.got);
    for (let i = 0; i < n; i++) { o[this.got.length + i] = this.page[XsRingOff.RSP + (cons & 1023)]; cons = (cons + 1) >>> 0; }
    this.got = o;
    this.set(XsRingOff.RSP_CONS, cons);
    return n;
  }
  /** Whole messages received so far (taken). */
  msgs(): XsMsg[] {
    const { msgs, rest } = decodeStream(this.got);
    this.got = rest;
    return msgs;
  }
  setAll(x: number): void { for (const o of [XsRingOff.REQ_CONS, XsRingOff.REQ_PROD, XsRingOff.RSP_CONS, XsRingOff.RSP_PROD]) this.set(o, x); }
}

const str = (m: XsMsg): string => Buffer.from(m.payload).toString('latin1');

function setup(opts: { maxOutstanding?: number } = {}): { xs: Xenstore; g: Guest; ring: () => XenstoreRing; kicks: { n: number } } {
  const page = new Uint8Array(4096);
  const kicks = { n: 0 };
  let ring: XenstoreRing | null = null;
  const xs = createXenstore({
    hooks: {
      onIntroduce: (d: DomainRec) => {
        ring = new XenstoreRing(xs, d.conn!, arrayRingPage(page), () => { kicks.n++; }, opts);
        ring.start(true);
      },
    },
  });
  xs.introduceDomain(1, 0x1234, 3);
  xs.dom0.mkdir('/local/domain/1');
  xs.dom0.setPerms('/local/domain/1', ['n1']);
  return { xs, g: new Guest(page), ring: () => ring!, kicks };
}

describe('xenstore ring transport', () => {
  it('advertises its features and starts from zeroed indices', () => {
    const { g } = setup();
    expect(g.u32(XsRingOff.SERVER_FEATURES)).toBe(3);
    expect(g.u32(XsRingOff.CONNECTION)).toBe(XENSTORE_CONNECTED);
    expect(g.u32(XsRingOff.REQ_PROD)).toBe(0);
  });

  it('reads a request that wraps the ring and the u32 indices, and writes the reply across the wrap', () => {
    const { xs, g, ring } = setup();
    g.setAll(0xffffff00); // offset 768 in the ring, 256 bytes before the u32 wrap
    const value = 'v'.repeat(600);
    const req = encodeMsg(request(XsType.WRITE, 77, 0, 'data/big\0', value));
    expect(g.send(req)).toBe(req.length);
    ring().kick();
    expect(xs.dom0.read('/local/domain/1/data/big')).toBe(value);
    g.recv();
    expect(g.msgs().map((m) => [m.type, m.reqId, str(m)])).toEqual([[XsType.WRITE, 77, 'OK\0']]);
    expect(g.u32(XsRingOff.REQ_CONS)).toBe((0xffffff00 + req.length) >>> 0);
    // The read back is larger than what is left before the wrap.
    g.send(encodeMsg(request(XsType.READ, 78, 0, 'data/big\0')));
    ring().kick();
    g.recv();
    expect(g.msgs().map((m) => [m.reqId, str(m)])).toEqual([[78, value]]);
  });

  it('waits for the rest of a partial message', () => {
    const { xs, g, ring, kicks } = setup();
    const req = encodeMsg(request(XsType.WRITE, 5, 0, 'p\0', 'q'));
    for (const cut of [3, 16, 17]) {
      g.send(req.subarray(0, cut));
      ring().kick();
      g.recv();
      expect(g.msgs()).toEqual([]);
      g.send(req.subarray(cut));
      ring().kick();
      g.recv();
      expect(g.msgs().map((m) => str(m))).toEqual(['OK\0']);
    }
    expect(xs.dom0.read('/local/domain/1/p')).toBe('q');
    expect(kicks.n).toBeGreaterThan(0);
  });

  it('serves many requests in flight while the guest consumes replies slowly (any schedule)', () => {
    fc.assert(fc.property(
      fc.array(fc.record({ send: fc.integer({ min: 0, max: 700 }), take: fc.integer({ min: 0, max: 500 }) }), { minLength: 1, maxLength: 60 }),
      fc.integer({ min: 1, max: 40 }), fc.nat(0xffffffff),
      (schedule, maxOut, start) => {
        const { xs, g, ring } = setup({ maxOutstanding: maxOut });
        g.setAll(start);
        xs.dom0.write('/local/domain/1/blob', 'b'.repeat(900));
        const N = 60;
        const stream: number[] = [];
        for (let i = 0; i < N; i++) {
          const m = i % 3 === 0 ? request(XsType.READ, 1000 + i, 0, 'blob\0')
            : i % 3 === 1 ? request(XsType.WRITE, 1000 + i, 0, `k${i}\0`, `val${i}`)
            : request(XsType.DIRECTORY, 1000 + i, 0, '\0');
          stream.push(...encodeMsg(m));
        }
        const all = Uint8Array.from(stream);
        let sent = 0;
        const got: XsMsg[] = [];
        let step = 0;
        for (let guard = 0; guard < 10_000 && got.length < N; guard++) {
          const s = schedule[step++ % schedule.length];
          sent += g.send(all.subarray(sent, Math.min(all.length, sent + Math.max(1, s.send))));
          ring().kick();
          if (g.recv(Math.max(1, s.take)) > 0) ring().kick(); // Linux notifies after consuming
          got.push(...g.msgs());
        }
        expect(got.map((m) => m.reqId)).toEqual(Array.from({ length: N }, (_, i) => 1000 + i));
        for (const m of got) {
          const i = m.reqId - 1000;
          if (i % 3 === 0) expect(str(m)).toBe('b'.repeat(900));
          if (i % 3 === 1) expect(str(m)).toBe('OK\0');
        }
        expect(xs.dom0.read('/local/domain/1/k58')).toBe('val58');
        expect(xs.internalErrors).toEqual([]);
      },
    ), { numRuns: 60, seed: 0x71e6 });
  });

  it('stops taking requests while replies back up', () => {
    const { xs, g, ring } = setup({ maxOutstanding: 3 });
    xs.dom0.write('/local/domain/1/blob', 'b'.repeat(900));
    const req = (i: number): Uint8Array => encodeMsg(request(XsType.READ, i, 0, 'blob\0'));
    for (let i = 0; i < 10; i++) g.send(req(i));
    // Nobody reads the replies: the first fills most of rsp[], two more wait, and the
    // fourth request is answered into the queue before the transport stops taking more.
    ring().kick();
    expect(g.u32(XsRingOff.REQ_CONS)).toBe(4 * req(0).length);
    expect(xs.domains.get(1)!.conn!.outq.length).toBe(3);
    for (let i = 0; i < 20; i++) { g.recv(); ring().kick(); }
    expect(g.msgs().map((m) => m.reqId)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it('delivers watch events caused by others, with a notification', () => {
    const { xs, g, ring, kicks } = setup();
    g.send(encodeMsg(request(XsType.WATCH, 1, 0, 'device\0', 'tok\0')));
    ring().kick();
    g.recv();
    expect(g.msgs().map((m) => [m.type, str(m)])).toEqual([[XsType.WATCH, 'OK\0'], [XsType.WATCH_EVENT, 'device\0tok\0']]);
    const before = kicks.n;
    xs.dom0.write('/local/domain/1/device/vif/0/state', '1');
    expect(kicks.n).toBe(before + 1);
    g.recv();
    expect(g.msgs().map((m) => [m.type, m.reqId, str(m)])).toEqual([[XsType.WATCH_EVENT, 0, 'device/vif/0/state\0tok\0']]);
  });

  it('gives up on a guest that breaks the protocol, saying why', () => {
    const a = setup();
    const bad = encodeMsg(request(XsType.READ, 1, 0, 'x\0'));
    new DataView(bad.buffer).setUint32(12, 5000, true);
    a.g.send(bad);
    a.ring().kick();
    expect(a.g.u32(XsRingOff.ERROR)).toBe(XsRingError.PROTO);
    a.g.send(encodeMsg(request(XsType.READ, 2, 0, 'x\0')));
    a.ring().kick();
    a.g.recv();
    expect(a.g.msgs()).toEqual([]);

    const b = setup();
    b.g.set(XsRingOff.REQ_PROD, 2000); // more than a ring's worth ahead
    b.ring().kick();
    expect(b.g.u32(XsRingOff.ERROR)).toBe(XsRingError.RINGIDX);
  });

  it('reconnects when the guest asks to (XENSTORE_RECONNECT)', () => {
    const { xs, g, ring } = setup();
    g.send(encodeMsg(request(XsType.WATCH, 1, 0, 'device\0', 'tok\0')));
    g.send(encodeMsg(request(XsType.TRANSACTION_START, 2, 0, '\0')));
    ring().kick();
    const conn = xs.domains.get(1)!.conn!;
    expect(conn.watches.length).toBe(1);
    expect(conn.transactions.size).toBe(1);
    g.set(XsRingOff.CONNECTION, XENSTORE_RECONNECT);
    ring().kick();
    expect(g.u32(XsRingOff.CONNECTION)).toBe(XENSTORE_CONNECTED);
    expect(g.u32(XsRingOff.RSP_PROD)).toBe(0);
    expect(conn.watches.length).toBe(0);
    expect(conn.transactions.size).toBe(0);
    g.send(encodeMsg(request(XsType.GET_DOMAIN_PATH, 3, 0, '1\0')));
    ring().kick();
    g.recv();
    expect(g.msgs().map((m) => str(m))).toEqual(['/local/domain/1\0']);
  });

  it('keeps a half-received request and unsent output across a snapshot', () => {
    const { xs, g, ring } = setup({ maxOutstanding: 50 });
    xs.dom0.write('/local/domain/1/blob', 'z'.repeat(1500));
    const r1 = encodeMsg(request(XsType.READ, 10, 0, 'blob\0'));
    const r2 = encodeMsg(request(XsType.WRITE, 11, 0, 'after\0', 'restore'));
    g.send(r1);
    g.send(r2.subarray(0, 20));
    ring().kick(); // the 1516-byte reply does not fit: part of it waits in outq
    expect(xs.domains.get(1)!.conn!.outq.length).toBe(1);
    const blob = saveXenstore(xs);
    let restored: XenstoreRing | null = null;
    const xs2 = restoreXenstore(blob, {
      hooks: { onIntroduce: (d, _why, x) => { restored = new XenstoreRing(x, d.conn!, arrayRingPage(g.page), () => {}); restored.start(false); } },
    });
    expect(restored).not.toBeNull();
    g.send(r2.subarray(20));
    for (let i = 0; i < 5; i++) { g.recv(); restored!.kick(); }
    expect(g.msgs().map((m) => [m.reqId, str(m)])).toEqual([[10, 'z'.repeat(1500)], [11, 'OK\0']]);
    expect(xs2.dom0.read('/local/domain/1/after')).toBe('restore');
  });
});
