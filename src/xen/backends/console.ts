// The console ring backend of a PV domain (io/console.h xencons_interface): the guest
// writes to out[] and notifies; the backend drains it to a sink and notifies back. Input
// goes into in[]. This one runs inside the hypervisor (no backend domain needed).

import type { Domain } from '../domain.js';
import { bindToXen, raisePort } from '../evtchn/events.js';

/** struct xencons_interface offsets. */
export const enum ConsRing { IN = 0, IN_SIZE = 1024, OUT = 1024, OUT_SIZE = 2048, IN_CONS = 3072, IN_PROD = 3076, OUT_CONS = 3080, OUT_PROD = 3084 }

export class ConsoleBackend {
  private readonly pa: number;

  /** ringMfn: the console page; port: the guest's console event channel (its other end
   *  calls drain()); sink gets the guest's output bytes in order. */
  constructor(private readonly d: Domain, ringMfn: number, readonly port: number, private readonly sink: (bytes: Uint8Array) => void) {
    this.pa = ringMfn * 4096;
  }

  /** A backend on a new port bound to the hypervisor. */
  static create(d: Domain, ringMfn: number, sink: (bytes: Uint8Array) => void): ConsoleBackend {
    let b: ConsoleBackend | undefined;
    const port = bindToXen(d, () => b?.drain());
    b = new ConsoleBackend(d, ringMfn, port, sink);
    return b;
  }

  /** Copy out[out_cons..out_prod) to the sink. A producer index that runs more than a ring
   *  ahead is a guest bug: take the last ring's worth, as a real backend would see it. */
  drain(): void {
    const m = this.d.xen.machine;
    const prod = m.u32(this.pa + ConsRing.OUT_PROD);
    let cons = m.u32(this.pa + ConsRing.OUT_CONS);
    let n = (prod - cons) >>> 0;
    if (n === 0) return;
    if (n > ConsRing.OUT_SIZE) { cons = (prod - ConsRing.OUT_SIZE) >>> 0; n = ConsRing.OUT_SIZE; }
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = m.u8(this.pa + ConsRing.OUT + ((cons + i) & (ConsRing.OUT_SIZE - 1)));
    m.set32(this.pa + ConsRing.OUT_CONS, prod);
    this.sink(out);
    raisePort(this.d, this.port);
  }

  /** Queue input bytes for the guest; returns how many fit. */
  input(bytes: Uint8Array): number {
    const m = this.d.xen.machine;
    const cons = m.u32(this.pa + ConsRing.IN_CONS);
    let prod = m.u32(this.pa + ConsRing.IN_PROD);
    let k = 0;
    while (k < bytes.length && ((prod - cons) >>> 0) < ConsRing.IN_SIZE) {
      m.set8(this.pa + ConsRing.IN + (prod & (ConsRing.IN_SIZE - 1)), bytes[k++]);
      prod = (prod + 1) >>> 0;
    }
    m.set32(this.pa + ConsRing.IN_PROD, prod);
    if (k > 0) raisePort(this.d, this.port);
    return k;
  }
}
