// The shared-ring transport of xenstore for one domain: struct xenstore_domain_interface
// (io/xs_wire.h) in a guest page. The guest produces requests into req[] and advances
// req_prod; we consume them and advance req_cons. We produce replies and watch events into
// rsp[] and advance rsp_prod; the guest consumes them. Indices are free-running u32s, masked
// with XENSTORE_RING_SIZE - 1. The transport keeps no state of its own: a partial request
// is Connection.rx, unsent output is Connection.outq/outOff (so snapshots hold them).

import type { Connection, Xenstore } from './model.js';
import { XsProtocolError, bytesWanted, encodeMsg, handleMessage, takeMessage, type XsMsg } from './protocol.js';

export const XENSTORE_RING_SIZE = 1024;

/** struct xenstore_domain_interface offsets. */
export const enum XsRingOff {
  REQ = 0, RSP = 1024, REQ_CONS = 2048, REQ_PROD = 2052, RSP_CONS = 2056, RSP_PROD = 2060,
  SERVER_FEATURES = 2064, CONNECTION = 2068, ERROR = 2072, SIZE = 2076,
}

export const XENSTORE_SERVER_FEATURE_RECONNECTION = 1;
export const XENSTORE_SERVER_FEATURE_ERROR = 2;
export const XENSTORE_CONNECTED = 0;
export const XENSTORE_RECONNECT = 1;
export const enum XsRingError { NONE = 0, COMM = 1, RINGIDX = 2, PROTO = 3 }

/** The ring page as the transport sees it: bytes by offset within the page. */
export interface RingPage {
  read(off: number, len: number): Uint8Array;
  write(off: number, data: Uint8Array): void;
}

/** A RingPage over a Uint8Array (tests, or a host buffer). */
export function arrayRingPage(mem: Uint8Array, base = 0): RingPage {
  return {
    read: (off, len) => mem.slice(base + off, base + off + len),
    write: (off, data) => { mem.set(data, base + off); },
  };
}

export interface RingOptions {
  /** Stop taking requests while this many replies/events wait for ring space (xenstored's
   *  "outstanding requests" quota plays this role). */
  maxOutstanding?: number;
}

export class XenstoreRing {
  private inKick = false;
  private head: XsMsg | null = null;
  private headBytes: Uint8Array | null = null;
  private readonly maxOut: number;

  /**
   * conn: the domain's connection (DomainRec.conn); page: its ring page; notify: signal the
   * domain's xenstore event channel.
   */
  constructor(readonly xs: Xenstore, readonly conn: Connection, readonly page: RingPage, readonly notify: () => void,
    opts: RingOptions = {}) {
    this.maxOut = opts.maxOutstanding ?? 20;
    conn.onOutput = () => { if (!this.inKick) this.flush(); };
  }

  private u32(off: number): number {
    const b = this.page.read(off, 4);
    return (b[0] | (b[1] << 8) | (b[2] << 16) | (b[3] << 24)) >>> 0;
  }

  private set32(off: number, v: number): void {
    this.page.write(off, Uint8Array.of(v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff));
  }

  /** Start serving: on a new introduction the indices start at 0 (as xenstored's
   *  domain_conn_reset); after a snapshot restore they are left as the guest has them. */
  start(fresh: boolean): void {
    if (fresh) {
      for (const o of [XsRingOff.REQ_CONS, XsRingOff.REQ_PROD, XsRingOff.RSP_CONS, XsRingOff.RSP_PROD]) this.set32(o, 0);
      this.set32(XsRingOff.ERROR, XsRingError.NONE);
      if (this.u32(XsRingOff.CONNECTION) === XENSTORE_RECONNECT) this.set32(XsRingOff.CONNECTION, XENSTORE_CONNECTED);
    }
    this.set32(XsRingOff.SERVER_FEATURES, XENSTORE_SERVER_FEATURE_RECONNECTION | XENSTORE_SERVER_FEATURE_ERROR);
    this.kick();
  }

  /** Stop serving (the domain was released). */
  detach(): void { this.conn.onOutput = null; }

  /** The guest signalled its event channel: take what requests there are, answer them, and
   *  write what output fits. */
  kick(): void {
    const c = this.conn;
    if (c.closed || this.inKick) return;
    if (this.u32(XsRingOff.CONNECTION) === XENSTORE_RECONNECT) { this.reconnect(); return; }
    if (c.ignored) return;
    this.inKick = true;
    let signal = false;
    try {
      for (;;) {
        const w = this.writeOut();
        if (w < 0) return;
        signal ||= w > 0;
        if (c.closed || c.ignored || c.outq.length >= this.maxOut) break;
        let m: XsMsg | null;
        try {
          m = takeMessage(c);
        } catch (e) {
          if (e instanceof XsProtocolError) { this.fault(XsRingError.PROTO); return; }
          throw e;
        }
        if (m) { handleMessage(this.xs, c, m); continue; }
        const r = this.readIn(bytesWanted(c));
        if (r < 0) return;
        if (r === 0) break;
        signal = true;
      }
    } finally {
      this.inKick = false;
    }
    const w = this.writeOut();
    if (w < 0) return;
    if (signal || w > 0) this.notify();
  }

  /** Write queued output (called when another connection's change queued a watch event). */
  flush(): void {
    if (this.conn.closed || this.conn.ignored) return;
    const w = this.writeOut();
    if (w > 0) this.notify();
  }

  /** Read up to `want` request bytes into Connection.rx: the count, or -1 after a fault. */
  private readIn(want: number): number {
    if (want <= 0) return 0;
    const cons = this.u32(XsRingOff.REQ_CONS);
    const prod = this.u32(XsRingOff.REQ_PROD);
    const avail = (prod - cons) >>> 0;
    if (avail > XENSTORE_RING_SIZE) { this.fault(XsRingError.RINGIDX); return -1; }
    const n = Math.min(want, avail);
    if (n === 0) return 0;
    const out = new Uint8Array(this.conn.rx.length + n);
    out.set(this.conn.rx, 0);
    const at = cons & (XENSTORE_RING_SIZE - 1);
    const first = Math.min(n, XENSTORE_RING_SIZE - at);
    out.set(this.page.read(XsRingOff.REQ + at, first), this.conn.rx.length);
    if (n > first) out.set(this.page.read(XsRingOff.REQ, n - first), this.conn.rx.length + first);
    this.conn.rx = out;
    this.set32(XsRingOff.REQ_CONS, (cons + n) >>> 0);
    return n;
  }

  /** Write as much queued output as fits: bytes written, or -1 after a fault. */
  private writeOut(): number {
    const c = this.conn;
    let total = 0;
    while (c.outq.length > 0) {
      const cons = this.u32(XsRingOff.RSP_CONS);
      const prod = this.u32(XsRingOff.RSP_PROD);
      const used = (prod - cons) >>> 0;
      if (used > XENSTORE_RING_SIZE) { this.fault(XsRingError.RINGIDX); return -1; }
      const space = XENSTORE_RING_SIZE - used;
      if (space === 0) break;
      if (this.head !== c.outq[0]) { this.head = c.outq[0]; this.headBytes = encodeMsg(this.head); }
      const bytes = this.headBytes!;
      const n = Math.min(space, bytes.length - c.outOff);
      const at = prod & (XENSTORE_RING_SIZE - 1);
      const first = Math.min(n, XENSTORE_RING_SIZE - at);
      this.page.write(XsRingOff.RSP + at, bytes.subarray(c.outOff, c.outOff + first));
      if (n > first) this.page.write(XsRingOff.RSP, bytes.subarray(c.outOff + first, c.outOff + n));
      this.set32(XsRingOff.RSP_PROD, (prod + n) >>> 0);
      c.outOff += n;
      total += n;
      if (c.outOff === bytes.length) {
        c.outq.shift();
        c.outOff = 0;
        this.head = null;
        this.headBytes = null;
      }
    }
    return total;
  }

  /** The guest broke the protocol: say why in the error field and stop talking to it. */
  private fault(err: XsRingError): void {
    this.set32(XsRingOff.ERROR, err);
    this.xs.ignore(this.conn);
    this.head = null;
    this.headBytes = null;
  }

  /** The guest asked to reconnect (XENSTORE_RECONNECT): drop its watches, transactions and
   *  buffers, reset the indices, and say we are connected again. */
  private reconnect(): void {
    const c = this.conn;
    this.xs.ignore(c);
    c.ignored = false;
    this.head = null;
    this.headBytes = null;
    for (const o of [XsRingOff.REQ_CONS, XsRingOff.REQ_PROD, XsRingOff.RSP_CONS, XsRingOff.RSP_PROD]) this.set32(o, 0);
    this.set32(XsRingOff.ERROR, XsRingError.NONE);
    this.set32(XsRingOff.CONNECTION, XENSTORE_CONNECTED);
    this.notify();
  }
}
