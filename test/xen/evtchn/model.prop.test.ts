// Property: random sequences of EVTCHNOP calls (through the real hypercall entry) by three
// domains (a privileged dom0 with 2 vCPUs, domU A with 2 vCPUs and a port limit of 70, domU
// B with 1 vCPU and a limit of 20), guest actions (mask and ack bits, run the upcall
// handler: the 2-level scan, or one step of Linux's FIFO queue consumer), hypervisor actions
// (VIRQs, PIRQs, an in-hypervisor end) and pauses agree with a small reference model on
// every return code and every piece of state: port states and bindings, the 2-level pending
// and mask bitmaps, selectors and upcall flags, kicks and poll notifications, and under FIFO
// the event words' P/M/L bits, READY words and each queue's order (walked in guest memory
// from the guest's HEAD). After each step every domain's state goes through a snapshot round
// trip (saveEvents / restoreEvents, the restored state is used from then on), and a check
// that does not use the model confirms isolation: an operation by one domain changes another
// only through an interdomain channel (send raises the peer; close and bind_interdomain
// change the peer port), or because a privileged domain named it.
//
// The model is written from event_channel.h's documented semantics plus the Xen behaviour
// the header leaves open (error order, port allocation in 64-port buckets, the FIFO queue as
// a list per vCPU and priority with READY set when a queue goes from empty to non-empty).
// EVTCHN_STATS=1 prints how often each command and outcome occurred.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { bindToXen, eventsOf, raisePort, sendPirq, sendVirq, setMaxEvtchnPort } from '../../../src/xen/evtchn/events.js';
import { restoreEvents, saveEvents } from '../../../src/xen/evtchn/snapshot.js';
import { SharedInfo } from '../../../src/xen/layout.js';
import { Dom, DOMID_SELF, DOMID_XEN, E, FifoGuest, Host } from './harness.js';

const FREE = 0, UNBOUND = 1, INTER = 2, PIRQ = 3, VIRQ = 4, IPI = 5, RESERVED = 6;
const NOWHERE = 9;
const isGlobal = (virq: number) => ![0, 1, 7, 13].includes(virq);
const FP = 1 << 31, FM = 1 << 30, FL = 1 << 29, LINK = (1 << 17) - 1;

// ---- the reference model -------------------------------------------------------------------

interface MPort { st: number; vcpu: number; rdom: number; rport: number; irq: number; prio: number; saved: boolean }
const freePort = (): MPort => ({ st: FREE, vcpu: 0, rdom: -1, rport: -1, irq: -1, prio: 7, saved: false });

interface MFifo {
  cb: boolean[]; nArray: number; P: number[]; M: number[]; L: number[];
  queues: number[][][]; cbReady: number[]; local: number[];
}

class MDom {
  ports: MPort[] = [];
  paused = false;
  readonly xenEnds = new Set<number>();
  xenSends = 0;
  readonly pend = new Set<number>();
  readonly mask = new Set<number>();
  readonly sel: bigint[];
  readonly upcall: number[];
  readonly kicks: number[];
  polled: number[] = [];
  readonly virqs = new Map<string, number>();
  readonly pirqs = new Map<number, number>();
  fifo: MFifo | null = null;

  constructor(readonly id: number, readonly priv: boolean, readonly nrVcpus: number, readonly maxPort: number) {
    for (let i = 0; i < 64; i++) this.ports.push(freePort());
    this.ports[0].st = RESERVED;
    this.sel = new Array(nrVcpus).fill(0n);
    this.upcall = new Array(nrVcpus).fill(0);
    this.kicks = new Array(nrVcpus).fill(0);
  }
  get nrPirqs(): number { return this.priv ? 280 : 56; }
  valid(p: number): boolean { return p >= 0 && p < this.ports.length; }
  hasWord(p: number): boolean { return !!this.fifo && p < this.fifo.nArray * 1024; }
  busy(p: number): boolean { return this.hasWord(p) && this.fifo!.L[p] === 1; }

  alloc(): number {
    const limit = this.fifo ? 1 << 17 : 4096;
    for (let p = 0; p < this.ports.length; p++) {
      if (p > this.maxPort || p >= limit) return E.ENOSPC;
      if (this.ports[p].st === FREE && !this.busy(p)) return p;
    }
    const p = this.ports.length;
    if (p > this.maxPort || p >= limit) return E.ENOSPC;
    for (let i = 0; i < 64; i++) this.ports.push(freePort());
    return p;
  }
  bind(p: number, st: number, vcpu: number): MPort {
    const x = this.ports[p];
    Object.assign(x, { st, vcpu, rdom: -1, rport: -1, irq: -1, prio: 7 });
    return x;
  }

  markUpcall(v: number): void { if (this.upcall[v] === 0) { this.upcall[v] = 1; this.kicks[v]++; } }

  raise(p: number, v: number): void {
    const f = this.fifo;
    if (!f) {
      if (p >= 4096 || this.pend.has(p)) return;
      this.pend.add(p);
      if (!this.mask.has(p)) {
        const bit = 1n << BigInt(p >> 6);
        if (!(this.sel[v] & bit)) { this.sel[v] |= bit; this.markUpcall(v); }
      }
      this.polled.push(p);
      return;
    }
    if (!this.hasWord(p)) { this.ports[p].saved = true; return; }
    const was = f.P[p];
    f.P[p] = 1;
    if (!f.M[p] && !f.L[p] && f.cb[v]) {
      f.L[p] = 1;
      const q = f.queues[v][this.ports[p].prio];
      q.push(p);
      const bit = 1 << this.ports[p].prio;
      if (q.length === 1 && !(f.cbReady[v] & bit)) { f.cbReady[v] |= bit; this.markUpcall(v); }
    }
    if (!was) this.polled.push(p);
  }
  clearPending(p: number): void {
    if (!this.fifo) { this.pend.delete(p); return; }
    if (this.hasWord(p)) this.fifo.P[p] = 0;
  }
  unmask(p: number, v: number): void {
    const f = this.fifo;
    if (!f) {
      if (p >= 4096 || !this.mask.has(p)) return;
      this.mask.delete(p);
      if (this.pend.has(p)) {
        const bit = 1n << BigInt(p >> 6);
        if (!(this.sel[v] & bit)) { this.sel[v] |= bit; this.markUpcall(v); }
      }
      return;
    }
    if (!this.hasWord(p)) return;
    f.M[p] = 0;
    if (f.P[p]) this.raise(p, v);
  }
}

interface Status { rc: number; status?: number; vcpu?: number; dom?: number; port?: number; irq?: number }

class Model {
  constructor(readonly doms: MDom[]) {}
  byId(id: number): MDom | undefined { return this.doms.find((d) => d.id === id); }
  lookup(a: MDom, domid: number): MDom | undefined { return domid === DOMID_SELF ? a : this.byId(domid); }

  allocUnbound(a: MDom, dom: number, remote: number): number {
    const t = this.lookup(a, dom);
    if (!t) return E.ESRCH;
    if (t !== a && !a.priv) return E.EPERM;
    const p = t.alloc();
    if (p < 0) return p;
    t.bind(p, UNBOUND, 0).rdom = remote === DOMID_SELF ? a.id : remote;
    return p;
  }
  bindInterdomain(a: MDom, rdom: number, rport: number): number {
    const r = this.lookup(a, rdom);
    if (!r) return E.ESRCH;
    const p = a.alloc();
    if (p < 0) return p;
    if (!r.valid(rport) || r.ports[rport].st !== UNBOUND || r.ports[rport].rdom !== a.id) return E.EINVAL;
    Object.assign(a.bind(p, INTER, 0), { rdom: r.id, rport });
    Object.assign(r.ports[rport], { st: INTER, rdom: a.id, rport: p });
    a.raise(p, 0);
    return p;
  }
  bindVirq(a: MDom, virq: number, vcpu: number): number {
    if (virq >= 24) return E.EINVAL;
    if (isGlobal(virq) && vcpu !== 0) return E.EINVAL;
    if (vcpu >= a.nrVcpus) return E.ENOENT;
    const key = `${vcpu}:${virq}`;
    if (a.virqs.has(key)) return E.EEXIST;
    const p = a.alloc();
    if (p < 0) return p;
    a.bind(p, VIRQ, vcpu).irq = virq;
    a.virqs.set(key, p);
    return p;
  }
  bindIpi(a: MDom, vcpu: number): number {
    if (vcpu >= a.nrVcpus) return E.ENOENT;
    const p = a.alloc();
    if (p < 0) return p;
    a.bind(p, IPI, vcpu);
    return p;
  }
  bindPirq(a: MDom, pirq: number): number {
    if (pirq >= a.nrPirqs) return E.EINVAL;
    if (!a.priv) return E.EPERM;
    if (a.pirqs.has(pirq)) return E.EEXIST;
    const p = a.alloc();
    if (p < 0) return p;
    a.bind(p, PIRQ, 0).irq = pirq;
    a.pirqs.set(pirq, p);
    return p;
  }
  close(a: MDom, p: number): number {
    if (!a.valid(p)) return E.EINVAL;
    const x = a.ports[p];
    switch (x.st) {
      case FREE: case RESERVED: return E.EINVAL;
      case INTER:
        if (x.rdom === DOMID_XEN) a.xenEnds.delete(p);
        else {
          const r = this.byId(x.rdom)!, y = r.ports[x.rport];
          if (y.st === INTER && y.rdom === a.id && y.rport === p) Object.assign(y, { st: UNBOUND, rport: -1 });
        }
        break;
      case VIRQ: a.virqs.delete(`${isGlobal(x.irq) ? 0 : x.vcpu}:${x.irq}`); break;
      case PIRQ: a.pirqs.delete(x.irq); break;
      default: break;
    }
    a.clearPending(p);
    Object.assign(x, { st: FREE, vcpu: 0, rdom: -1, rport: -1, irq: -1, saved: false });
    return 0;
  }
  send(a: MDom, p: number): number {
    if (!a.valid(p)) return E.EINVAL;
    const x = a.ports[p];
    switch (x.st) {
      case INTER:
        if (x.rdom === DOMID_XEN) { a.xenSends++; return 0; }
        { const r = this.byId(x.rdom)!; r.raise(x.rport, r.ports[x.rport].vcpu); }
        return 0;
      case IPI: a.raise(p, x.vcpu); return 0;
      case UNBOUND: return 0;
      default: return E.EINVAL;
    }
  }
  status(a: MDom, dom: number, p: number): Status {
    const t = this.lookup(a, dom);
    if (!t) return { rc: E.ESRCH };
    if (!t.valid(p)) return { rc: E.EINVAL };
    if (t !== a && !a.priv) return { rc: E.EPERM };
    const x = t.ports[p];
    const s: Status = { rc: 0, status: x.st === RESERVED ? 0 : x.st, vcpu: x.vcpu };
    if (x.st === UNBOUND) s.dom = x.rdom;
    else if (x.st === INTER) { s.dom = x.rdom; s.port = x.rport; }
    else if (x.st === VIRQ || x.st === PIRQ) s.irq = x.irq;
    return s;
  }
  bindVcpu(a: MDom, p: number, vcpu: number): number {
    if (vcpu >= a.nrVcpus) return E.ENOENT;
    if (!a.valid(p)) return E.EINVAL;
    const x = a.ports[p];
    if (x.st === VIRQ ? !isGlobal(x.irq) : ![UNBOUND, INTER, PIRQ].includes(x.st)) return E.EINVAL;
    x.vcpu = vcpu;
    return 0;
  }
  unmask(a: MDom, p: number): number {
    if (!a.valid(p)) return E.EINVAL;
    a.unmask(p, a.ports[p].vcpu);
    return 0;
  }
  reset(a: MDom, dom: number): number {
    const t = this.lookup(a, dom);
    if (!t) return E.ESRCH;
    if (t !== a && !a.priv) return E.EPERM;
    if (t !== a && !t.paused) return E.EINVAL;
    for (let p = 1; p < t.ports.length; p++) if (t.ports[p].st !== FREE) this.close(t, p);
    t.fifo = null;
    return 0;
  }
  initControl(a: MDom, vcpu: number, off: number, ownFrame: boolean): number {
    if (vcpu >= a.nrVcpus) return E.ENOENT;
    if (off > 4096 - 72 || off & 7) return E.EINVAL;
    if (!a.fifo) {
      if (!ownFrame) return E.EINVAL;
      const n = a.nrVcpus;
      a.fifo = {
        cb: new Array(n).fill(false), nArray: 0, P: [], M: [], L: [],
        queues: Array.from({ length: n }, () => Array.from({ length: 16 }, () => [])),
        cbReady: new Array(n).fill(0), local: new Array(n).fill(-1),
      };
      a.fifo.cb[vcpu] = true;
      for (let p = 1; p < Math.min(a.ports.length, 4096); p++) {
        if (a.pend.has(p)) a.ports[p].saved = true;
        a.ports[p].prio = 7;
      }
      return 0;
    }
    if (a.fifo.cb[vcpu] || !ownFrame) return E.EINVAL;
    a.fifo.cb[vcpu] = true;
    a.fifo.cbReady[vcpu] = 0;
    a.fifo.local[vcpu] = -1;
    return 0;
  }
  expandArray(a: MDom, freshFrame: boolean): number {
    const f = a.fifo;
    if (!f) return E.EOPNOTSUPP;
    if (!freshFrame) return E.EINVAL;
    const first = f.nArray * 1024;
    f.nArray++;
    for (let i = 0; i < 1024; i++) { f.P.push(0); f.M.push(1); f.L.push(0); }
    for (let p = first; p < Math.min(f.nArray * 1024, a.ports.length); p++) {
      if (a.ports[p].saved) { a.ports[p].saved = false; a.raise(p, a.ports[p].vcpu); }
    }
    return 0;
  }
  setPriority(a: MDom, p: number, prio: number): number {
    if (!a.valid(p)) return E.EINVAL;
    if (!a.fifo) return E.ENOSYS;
    if (prio > 15) return E.EINVAL;
    a.ports[p].prio = prio;
    return 0;
  }
  // Guest actions.
  guestMask(a: MDom, p: number, on: boolean): void {
    if (!a.fifo) { if (p < 4096) { if (on) a.mask.add(p); else a.mask.delete(p); } return; }
    if (a.hasWord(p)) a.fifo.M[p] = on ? 1 : 0;
  }
  guestAck(a: MDom, p: number): void {
    if (!a.fifo) { if (p < 4096) a.pend.delete(p); return; }
    if (a.hasWord(p)) a.fifo.P[p] = 0;
  }
  /** Linux's unmask: FIFO clear_masked_cond (else EVTCHNOP_unmask, returned as true);
   *  2-level's local path (clear the mask, resend by hand through the selector). */
  guestUnmask(a: MDom, p: number): boolean {
    const f = a.fifo;
    if (f) {
      if (!a.hasWord(p) || !f.M[p]) return false;
      if (f.P[p]) return true;
      f.M[p] = 0;
      return false;
    }
    if (p >= 4096) return false;
    a.mask.delete(p);
    const v = p < a.ports.length ? a.ports[p].vcpu : 0, bit = 1n << BigInt(p >> 6);
    if (a.pend.has(p) && !(a.sel[v] & bit)) { a.sel[v] |= bit; a.upcall[v] = 1; }
    return false;
  }
  handle2l(a: MDom, v: number): number[] {
    a.upcall[v] = 0;
    const sel = a.sel[v];
    a.sel[v] = 0n;
    const out: number[] = [];
    for (let w = 0; w < 64; w++) {
      if (!((sel >> BigInt(w)) & 1n)) continue;
      for (let b = 0; b < 64; b++) {
        const p = w * 64 + b;
        if (a.pend.has(p) && !a.mask.has(p) && p < a.ports.length && a.ports[p].vcpu === v) { a.pend.delete(p); out.push(p); }
      }
    }
    return out;
  }
  fifoStep(a: MDom, v: number): { port: number; handled: boolean } | null {
    const f = a.fifo!;
    if (f.local[v] < 0) { a.upcall[v] = 0; f.local[v] = f.cbReady[v]; f.cbReady[v] = 0; }
    if (f.local[v] === 0) { f.local[v] = -1; return null; }
    const q = 31 - Math.clz32(f.local[v] & -f.local[v]);
    const port = f.queues[v][q].shift();
    if (port === undefined) throw new Error(`model: READY bit ${q} of vCPU ${v} with an empty queue`);
    f.L[port] = 0;
    if (f.queues[v][q].length === 0) f.local[v] &= ~(1 << q);
    const handled = f.P[port] === 1 && f.M[port] === 0;
    if (handled) f.P[port] = 0;
    f.local[v] |= f.cbReady[v];
    f.cbReady[v] = 0;
    return { port, handled };
  }
  sendVirq(a: MDom, virq: number, vcpu: number): boolean {
    if (!isGlobal(virq) && vcpu >= a.nrVcpus) return false;
    const p = a.virqs.get(`${isGlobal(virq) ? 0 : vcpu}:${virq}`);
    if (p === undefined) return false;
    a.raise(p, a.ports[p].vcpu);
    return true;
  }
  sendPirq(a: MDom, pirq: number): boolean {
    const p = a.pirqs.get(pirq);
    if (p === undefined) return false;
    a.raise(p, a.ports[p].vcpu);
    return true;
  }
  xenRaise(a: MDom, p: number): void {
    if (a.xenEnds.has(p) && a.ports[p].st === INTER && a.ports[p].rdom === DOMID_XEN) a.raise(p, a.ports[p].vcpu);
  }
}

// ---- the world under test --------------------------------------------------------------------

interface GuestFifo { g: FifoGuest; active: boolean }

class World {
  readonly h = new Host(1024);
  readonly doms: Dom[];
  readonly guests: GuestFifo[];
  readonly xenSends = [0, 0, 0];
  readonly model: Model;

  constructor() {
    this.doms = [
      new Dom(this.h, 'dom0', { privileged: true, vcpus: 2, spare: 4 }),
      new Dom(this.h, 'A', { vcpus: 2, spare: 4 }),
      new Dom(this.h, 'B', { vcpus: 1, spare: 3 }),
    ];
    setMaxEvtchnPort(this.doms[1].d, 70);
    setMaxEvtchnPort(this.doms[2].d, 20);
    const [d0, a, b] = this.doms;
    this.guests = this.doms.map((x) => ({ g: this.newGuest(x), active: false }));
    this.model = new Model([
      new MDom(d0.id, true, 2, (1 << 17) - 1), new MDom(a.id, false, 2, 70), new MDom(b.id, false, 1, 20),
    ]);
    // A's in-hypervisor end (a console, say) on port 1.
    expect(bindToXen(a.d, this.xenEnd(1))).toBe(1);
    const ma = this.model.doms[1];
    Object.assign(ma.bind(1, INTER, 0), { rdom: DOMID_XEN, rport: 0 });
    ma.xenEnds.add(1);
  }

  newGuest(x: Dom): FifoGuest {
    const n = x.vcpus.length;
    return new FifoGuest(x, x.spare.slice(0, n), x.spare.slice(n));
  }
  xenEnd(i: number): () => void { return () => { this.xenSends[i]++; }; }

  /** A frame for init_control / expand_array by kind. */
  frame(i: number, kind: string, vcpu: number): number {
    const x = this.doms[i];
    switch (kind) {
      case 'own': return x.spare[Math.min(vcpu, x.vcpus.length - 1)];
      case 'foreign': return this.doms[(i + 1) % 3].spare[0];
      case 'pt': return x.space.l1;
      default: return this.h.xen.frames.frames + 7;
    }
  }

  /** Save and restore every domain's event channel state, continuing on the restored one. */
  roundTrip(): void {
    this.doms.forEach((x, i) => {
      const blob = saveEvents(x.ev);
      const ends = new Map([...x.ev.xenEnds.keys()].map((p) => [p, this.xenEnd(i)]));
      restoreEvents(x.d, blob, { notify: (v) => { x.kicks[v]++; }, onPending: (p) => { x.polled.push(p); }, xenEnd: (p) => ends.get(p) });
      expect(Buffer.compare(saveEvents(x.ev), blob)).toBe(0);
    });
  }
}

// ---- commands ----------------------------------------------------------------------------------

type PortSel = { n: number } | { bound: number } | { sendable: number };
type Cmd =
  | { k: 'alloc'; a: number; dom: number; rem: number }
  | { k: 'bindInter'; a: number; rdom: number; rport: PortSel | 'offered' }
  | { k: 'virq'; a: number; virq: number; vcpu: number }
  | { k: 'ipi'; a: number; vcpu: number }
  | { k: 'pirq'; a: number; pirq: number }
  | { k: 'close' | 'send' | 'unmask' | 'gAck'; a: number; port: PortSel }
  | { k: 'status'; a: number; dom: number; port: PortSel }
  | { k: 'bindVcpu'; a: number; port: PortSel; vcpu: number }
  | { k: 'prio'; a: number; port: PortSel; prio: number }
  | { k: 'gMask'; a: number; port: PortSel; on: boolean }
  | { k: 'reset'; a: number; dom: number }
  | { k: 'pause'; t: number; on: boolean }
  | { k: 'init'; a: number; vcpu: number; off: number; frame: string }
  | { k: 'expand'; a: number; frame: string }
  | { k: 'gHandle'; a: number; vcpu: number }
  | { k: 'gUnmask'; a: number; port: PortSel }
  | { k: 'linux'; a: number }
  | { k: 'hvVirq'; t: number; virq: number; vcpu: number }
  | { k: 'hvPirq'; pirq: number }
  | { k: 'xenRaise'; port: PortSel };

const actor = fc.integer({ min: 0, max: 2 });
/** Domain selector: 0..2 a domain, 3 DOMID_SELF, 4 a domain that does not exist. */
const domSel = fc.integer({ min: 0, max: 4 });
const portSel: fc.Arbitrary<PortSel> = fc.oneof(
  { weight: 6, arbitrary: fc.integer({ min: 0, max: 40 }).map((bound) => ({ bound })) },
  { weight: 4, arbitrary: fc.integer({ min: 0, max: 40 }).map((sendable) => ({ sendable })) },
  { weight: 4, arbitrary: fc.integer({ min: 0, max: 24 }).map((n) => ({ n })) },
  { weight: 1, arbitrary: fc.constantFrom(63, 64, 65, 70, 71, 127, 128, 1023, 1024, 4095, 4096, 131071, 0xffffffff).map((n) => ({ n })) },
);
const vcpuSel = fc.integer({ min: 0, max: 2 });

const cmdArb: fc.Arbitrary<Cmd> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ k: fc.constant('alloc' as const), a: actor, dom: fc.constantFrom(3, 3, 0, 1, 2, 4), rem: fc.constantFrom(0, 1, 2, 0, 1, 2, 3, 4) }) },
  { weight: 5, arbitrary: fc.record({ k: fc.constant('bindInter' as const), a: actor, rdom: domSel, rport: fc.oneof({ weight: 3, arbitrary: fc.constant('offered' as const) }, { weight: 1, arbitrary: portSel }) }) },
  { weight: 3, arbitrary: fc.record({ k: fc.constant('virq' as const), a: actor, virq: fc.constantFrom(0, 1, 2, 3, 7, 13, 16, 24, 0xffffffff), vcpu: vcpuSel }) },
  { weight: 5, arbitrary: fc.record({ k: fc.constant('ipi' as const), a: actor, vcpu: vcpuSel }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('pirq' as const), a: actor, pirq: fc.constantFrom(0, 3, 55, 56, 279, 280, 0xffffffff) }) },
  { weight: 3, arbitrary: fc.record({ k: fc.constant('close' as const), a: actor, port: portSel }) },
  { weight: 3, arbitrary: fc.record({ k: fc.constant('unmask' as const), a: actor, port: portSel }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('gAck' as const), a: actor, port: portSel }) },
  { weight: 10, arbitrary: fc.record({ k: fc.constant('send' as const), a: actor, port: fc.oneof({ weight: 4, arbitrary: fc.nat(40).map((sendable) => ({ sendable })) }, { weight: 1, arbitrary: portSel }) }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('status' as const), a: actor, dom: domSel, port: portSel }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('bindVcpu' as const), a: actor, port: portSel, vcpu: vcpuSel }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('prio' as const), a: actor, port: portSel, prio: fc.constantFrom(0, 3, 7, 15, 16) }) },
  { weight: 3, arbitrary: fc.record({ k: fc.constant('gMask' as const), a: actor, port: portSel, on: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('reset' as const), a: actor, dom: fc.constantFrom(3, 3, 0, 1, 2, 4) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('pause' as const), t: actor, on: fc.boolean() }) },
  { weight: 4, arbitrary: fc.record({ k: fc.constant('init' as const), a: actor, vcpu: fc.constantFrom(0, 0, 1, 1, 2), off: fc.constantFrom(0, 0, 8, 4024, 4032, 4), frame: fc.constantFrom('own', 'own', 'own', 'foreign', 'pt', 'oob') }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('expand' as const), a: actor, frame: fc.constantFrom('next', 'next', 'next', 'foreign', 'pt', 'oob') }) },
  // vcpu -1: a vCPU that has an upcall pending or a handler running (where Linux's handler runs).
  { weight: 10, arbitrary: fc.record({ k: fc.constant('gHandle' as const), a: actor, vcpu: fc.constantFrom(-1, -1, -1, 0, 1, 2) }) },
  { weight: 4, arbitrary: fc.record({ k: fc.constant('gUnmask' as const), a: actor, port: portSel }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('linux' as const), a: actor }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('hvVirq' as const), t: actor, virq: fc.constantFrom(0, 1, 2, 3, 16), vcpu: vcpuSel }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('hvPirq' as const), pirq: fc.constantFrom(0, 3, 279) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('xenRaise' as const), port: portSel }) },
);

// ---- running a command on both sides ----------------------------------------------------------

function domidOf(w: World, sel: number): number {
  return sel === 3 ? DOMID_SELF : sel === 4 ? NOWHERE : w.doms[sel].id;
}

/** A port selector made concrete from the model (the guest's knowledge of its own ports). */
function portOf(m: MDom, s: PortSel): number {
  if ('n' in s) return s.n;
  const i = 'bound' in s ? s.bound : s.sendable;
  let ports: number[] = [];
  if ('sendable' in s) for (let p = 1; p < m.ports.length; p++) if (m.ports[p].st === IPI || m.ports[p].st === INTER) ports.push(p);
  if (!ports.length) for (let p = 1; p < m.ports.length; p++) if (m.ports[p].st !== FREE) ports.push(p);
  return ports.length ? ports[i % ports.length] : i;
}

/** What a command may change in domains other than the actor (isolation check). */
type Allow = { any: Set<number>; table: Map<number, Set<number>>; events: Set<number> };

/** Outcome counts per command (printed with EVTCHN_STATS=1), to see what the runs reach. */
const stats = new Map<string, number>();
function stat(key: string): void { stats.set(key, (stats.get(key) ?? 0) + 1); }

function run(w: World, c: Cmd): Allow {
  const M = w.model;
  const fifoBefore = M.doms.map((d) => !!d.fifo);
  const allow: Allow = { any: new Set(), table: new Map(), events: new Set() };
  const peersOf = (a: number): void => {
    for (let j = 0; j < 3; j++) {
      const set = new Set<number>();
      M.doms[j].ports.forEach((x, p) => { if (x.st === INTER && x.rdom === M.doms[a].id) set.add(p); });
      allow.table.set(j, set);
    }
  };
  switch (c.k) {
    case 'alloc': {
      const x = w.doms[c.a], dom = domidOf(w, c.dom), rem = domidOf(w, c.rem);
      if (c.dom <= 2 && c.dom !== c.a) allow.any.add(c.dom);
      const rc = x.allocUnbound(dom, rem);
      expect(rc).toBe(M.allocUnbound(M.doms[c.a], dom, rem));
      stat(`alloc rc ${rc < 0 ? rc : 'ok'}`);
      break;
    }
    case 'bindInter': {
      const x = w.doms[c.a], ma = M.doms[c.a];
      let rdom = domidOf(w, c.rdom), r = M.lookup(ma, rdom);
      let rport: number;
      if (c.rport === 'offered') {
        // A port some domain offered to the actor (preferring the chosen domain).
        const offers = (d: MDom) => d.ports.findIndex((y) => y.st === UNBOUND && y.rdom === ma.id);
        const o = r && offers(r) >= 0 ? r : M.doms.find((d) => offers(d) >= 0);
        if (o && o !== r) { rdom = c.rdom === 3 && o === ma ? DOMID_SELF : o.id; r = o; }
        rport = o ? offers(o) : 0;
      } else rport = r ? portOf(r, c.rport) : portOf(ma, c.rport);
      if (r) allow.table.set(M.doms.indexOf(r), new Set([rport]));
      const rc = x.bindInterdomain(rdom, rport);
      expect(rc).toBe(M.bindInterdomain(ma, rdom, rport));
      stat(`bindInter rc ${rc < 0 ? rc : 'ok'}`);
      break;
    }
    case 'virq': expect(w.doms[c.a].bindVirq(c.virq, c.vcpu)).toBe(M.bindVirq(M.doms[c.a], c.virq >>> 0, c.vcpu)); break;
    case 'ipi': expect(w.doms[c.a].bindIpi(c.vcpu)).toBe(M.bindIpi(M.doms[c.a], c.vcpu)); break;
    case 'pirq': expect(w.doms[c.a].bindPirq(c.pirq)).toBe(M.bindPirq(M.doms[c.a], c.pirq >>> 0)); break;
    case 'close': {
      const ma = M.doms[c.a], p = portOf(ma, c.port);
      if (ma.valid(p) && ma.ports[p].st === INTER && ma.ports[p].rdom !== DOMID_XEN) {
        const r = M.byId(ma.ports[p].rdom)!;
        allow.table.set(M.doms.indexOf(r), new Set([ma.ports[p].rport]));
      }
      expect(w.doms[c.a].close(p)).toBe(M.close(ma, p));
      break;
    }
    case 'send': {
      const ma = M.doms[c.a], p = portOf(ma, c.port);
      if (ma.valid(p) && ma.ports[p].st === INTER && ma.ports[p].rdom !== DOMID_XEN) allow.events.add(M.doms.indexOf(M.byId(ma.ports[p].rdom)!));
      const kind = ma.valid(p) ? ma.ports[p].st : -1;
      const rc = w.doms[c.a].send(p);
      expect(rc).toBe(M.send(ma, p));
      stat(`send state ${kind} rc ${rc}`);
      break;
    }
    case 'unmask': {
      const ma = M.doms[c.a], p = portOf(ma, c.port);
      expect(w.doms[c.a].unmask(p)).toBe(M.unmask(ma, p));
      break;
    }
    case 'status': {
      const ma = M.doms[c.a], dom = domidOf(w, c.dom), t = M.lookup(ma, dom);
      const p = portOf(t ?? ma, c.port);
      const s = w.doms[c.a].status(dom, p), e = M.status(ma, dom, p);
      expect(s.rc).toBe(e.rc);
      if (e.rc === 0) {
        expect([s.status, s.vcpu]).toEqual([e.status, e.vcpu]);
        if (e.irq !== undefined) expect(s.irq).toBe(e.irq >>> 0);
        else if (e.port !== undefined) expect([s.dom, s.port]).toEqual([e.dom, e.port >>> 0]);
        else if (e.dom !== undefined) expect(s.dom).toBe(e.dom & 0xffff);
        else expect([s.irq]).toEqual([0xdeadbeef]);
      }
      break;
    }
    case 'bindVcpu': {
      const ma = M.doms[c.a], p = portOf(ma, c.port);
      expect(w.doms[c.a].bindVcpu(p, c.vcpu)).toBe(M.bindVcpu(ma, p, c.vcpu));
      break;
    }
    case 'prio': {
      const ma = M.doms[c.a], p = portOf(ma, c.port);
      expect(w.doms[c.a].setPriority(p, c.prio)).toBe(M.setPriority(ma, p, c.prio));
      break;
    }
    case 'reset': {
      const dom = domidOf(w, c.dom), t = M.lookup(M.doms[c.a], dom);
      if (t && t !== M.doms[c.a]) allow.any.add(M.doms.indexOf(t));
      if (t) {
        const ti = M.doms.indexOf(t);
        peersOf(ti);
        for (const [j, s] of allow.table) if (j !== ti && s.size === 0) allow.table.delete(j);
      }
      const rc = w.doms[c.a].reset(dom);
      expect(rc).toBe(M.reset(M.doms[c.a], dom));
      if (rc === 0) { const ti = M.doms.indexOf(t!); w.guests[ti] = { g: w.newGuest(w.doms[ti]), active: false }; }
      break;
    }
    case 'pause': {
      w.doms[c.t].d.state = c.on ? 'paused' : 'running';
      M.doms[c.t].paused = c.on;
      break;
    }
    case 'init': {
      const x = w.doms[c.a], gs = w.guests[c.a], ma = M.doms[c.a];
      const f = w.frame(c.a, c.frame, c.vcpu);
      const fresh = c.frame === 'own' && c.vcpu < x.vcpus.length && gs.g.cb[c.vcpu] < 0;
      if (fresh && c.off <= 4024) {
        // The guest clears the control block and its local HEADs first (Linux's init_control_block).
        x.h.phys.u8.fill(0, f * 4096 + c.off, f * 4096 + c.off + 72);
        gs.g.head[c.vcpu].fill(0);
        gs.g.ready[c.vcpu] = -1;
      }
      const { rc, linkBits } = x.initControl(f, c.off, c.vcpu);
      expect(rc).toBe(M.initControl(ma, c.vcpu, c.off, fresh));
      if (rc === 0) { expect(linkBits).toBe(17); gs.g.cb[c.vcpu] = f * 4096 + c.off; gs.active = true; }
      break;
    }
    case 'expand': {
      const x = w.doms[c.a], gs = w.guests[c.a], ma = M.doms[c.a];
      let kind = c.frame;
      if (kind === 'next' && gs.g.array.length >= gs.g.arrayFrames.length) kind = 'oob';
      const f = kind === 'next' ? gs.g.arrayFrames[gs.g.array.length] : w.frame(c.a, kind, 0);
      if (kind === 'next' && gs.active) for (let i = 0; i < 1024; i++) x.dv.setUint32(f * 4096 + i * 4, FM >>> 0, true);
      const rc = x.expandArray(f);
      expect(rc).toBe(M.expandArray(ma, kind === 'next'));
      if (rc === 0) gs.g.array.push(f);
      break;
    }
    case 'gMask': case 'gAck': {
      const x = w.doms[c.a], gs = w.guests[c.a], ma = M.doms[c.a], p = portOf(ma, c.port);
      if (gs.active) {
        if (gs.g.wordPa(p) >= 0) {
          const a = gs.g.wordPa(p), v = x.dv.getUint32(a, true);
          const bit = c.k === 'gMask' ? FM : FP, on = c.k === 'gMask' && c.on;
          x.dv.setUint32(a, (on ? v | bit : v & ~bit) >>> 0, true);
        }
      } else if (p < 4096) {
        if (c.k === 'gMask') x.setMask2(p, c.on); else x.setPending2(p, false);
      }
      if (c.k === 'gMask') M.guestMask(ma, p, c.on); else M.guestAck(ma, p);
      break;
    }
    case 'gHandle': {
      const x = w.doms[c.a], gs = w.guests[c.a], ma = M.doms[c.a];
      let v = c.vcpu;
      if (v < 0) v = Math.max(0, x.vcpus.findIndex((u) => x.upcall(u.id) !== 0 || gs.g.ready[u.id] >= 0));
      if (v >= x.vcpus.length) break;
      if (!gs.active) {
        const r = x.handle2l(v, (p) => (p < ma.ports.length ? ma.ports[p].vcpu : -1));
        expect(r).toEqual(M.handle2l(ma, v));
        stat(`2l handle ${r.length ? 'some' : 'none'}`);
      } else if (gs.g.cb[v] >= 0) {
        const r = gs.g.step(v);
        expect(r).toEqual(M.fifoStep(ma, v));
        stat(`fifo step ${r === null ? 'end' : r.handled ? 'handled' : 'skipped'}`);
      }
      break;
    }
    case 'gUnmask': {
      const x = w.doms[c.a], gs = w.guests[c.a], ma = M.doms[c.a], p = portOf(ma, c.port);
      if (gs.active) {
        const w0 = gs.g.word(p);
        const hyper = w0 !== -1 && (w0 & FM) !== 0 && (w0 & FP) !== 0;
        expect(hyper).toBe(M.guestUnmask(ma, p));
        if (hyper) expect(x.unmask(p)).toBe(M.unmask(ma, p));
        else if (w0 !== -1) x.dv.setUint32(gs.g.wordPa(p), (w0 & ~FM) >>> 0, true);
      } else if (p < 4096) {
        x.setMask2(p, false);
        const v = p < ma.ports.length ? ma.ports[p].vcpu : 0, bit = 1n << BigInt(p >> 6);
        if (x.pending2(p) && !(x.sel(v) & bit)) { x.setSel(v, x.sel(v) | bit); x.setUpcall(v, 1); }
        expect(M.guestUnmask(ma, p)).toBe(false);
      }
      break;
    }
    case 'linux': {
      // Linux's FIFO setup as one guest action: a control block per vCPU, the first array
      // page, and every bound port unmasked; each hypercall checked on its own.
      const x = w.doms[c.a], gs = w.guests[c.a];
      for (let v = 0; v < x.vcpus.length; v++) if (gs.g.cb[v] < 0) run(w, { k: 'init', a: c.a, vcpu: v, off: 0, frame: 'own' });
      if (gs.active && gs.g.array.length === 0) run(w, { k: 'expand', a: c.a, frame: 'next' });
      const ma = M.doms[c.a];
      for (let p = 1; p < ma.ports.length; p++) if (ma.ports[p].st !== FREE) run(w, { k: 'gUnmask', a: c.a, port: { n: p } });
      break;
    }
    case 'hvVirq': expect(sendVirq(w.doms[c.t].d, c.virq, c.vcpu)).toBe(M.sendVirq(M.doms[c.t], c.virq, c.vcpu)); break;
    case 'hvPirq': expect(sendPirq(w.doms[0].d, c.pirq)).toBe(M.sendPirq(M.doms[0], c.pirq)); break;
    case 'xenRaise': {
      const p = portOf(M.doms[1], c.port);
      raisePort(w.doms[1].d, p);
      M.xenRaise(M.doms[1], p);
      break;
    }
  }
  if (process.env.EVTCHN_STATS) {
    const ai = 'a' in c ? c.a : -1;
    stat(`${c.k}${ai >= 0 ? (fifoBefore[ai] ? '/fifo' : '/2l') : ''}`);
    for (const [i, x] of M.doms.entries()) {
      if (!fifoBefore[i] && x.fifo) stat('-> switched to FIFO');
      if (fifoBefore[i] && !x.fifo) stat('-> back to 2-level');
      if (x.fifo) for (const v of x.fifo.queues) for (const q of v) if (q.length > 1) stat('queue with 2+ events (per step)');
    }
  }
  return allow;
}

/** The actor of a command whose other-domain effects are limited to `allow`. */
function actorOf(c: Cmd): number { return 'a' in c ? c.a : 't' in c ? c.t : c.k === 'hvPirq' ? 0 : 1; }

// ---- comparison ----------------------------------------------------------------------------------

function compare(w: World): void {
  for (let i = 0; i < 3; i++) {
    const x = w.doms[i], m = w.model.doms[i], e = eventsOf(x.d)!, t = e.table;
    const where = `d${i}`;
    /** Compare cheaply; on a difference let expect() describe it. */
    const same = (got: unknown, want: unknown, what: string) => {
      if (JSON.stringify(got) !== JSON.stringify(want)) expect(got, `${where} ${what}`).toEqual(want);
    };
    same(t.nrValid, m.ports.length, 'port count');
    const ports: MPort[] = [];
    for (let p = 0; p < t.nrValid; p++) {
      ports.push({ st: t.state[p], vcpu: t.notifyVcpu[p], rdom: t.remoteDom[p], rport: t.remotePort[p], irq: t.irq[p], prio: t.priority[p], saved: t.savedPending[p] === 1 });
    }
    same(ports, m.ports, 'ports');
    same([...e.xenEnds.keys()].sort(), [...m.xenEnds].sort(), 'xen ends');
    same(w.xenSends[i], m.xenSends, 'xen sends');
    const virqs: [string, number][] = [];
    for (let v = 0; v < t.nrVcpus; v++) for (let q = 0; q < 24; q++) if (t.virqPort[v * 24 + q]) virqs.push([`${v}:${q}`, t.virqPort[v * 24 + q]]);
    same(virqs.sort(), [...m.virqs].sort(), 'VIRQ map');
    same([...t.pirqPort].sort(), [...m.pirqs].sort(), 'PIRQ map');
    // 2-level bits (Xen leaves them alone under FIFO, so they are checked always).
    const u8 = w.h.phys.u8, base = x.si * 4096;
    const pend: number[] = [], mask: number[] = [];
    for (let p = 0; p < 4096; p++) {
      if ((u8[base + SharedInfo.EVTCHN_PENDING + (p >> 3)] >> (p & 7)) & 1) pend.push(p);
      if ((u8[base + SharedInfo.EVTCHN_MASK + (p >> 3)] >> (p & 7)) & 1) mask.push(p);
    }
    same(pend, [...m.pend].sort((a, b) => a - b), '2-level pending');
    same(mask, [...m.mask].sort((a, b) => a - b), '2-level mask');
    const vis = x.vcpus.map((v) => [x.sel(v.id).toString(16), x.upcall(v.id)]);
    same(vis, m.sel.map((sv, v) => [sv.toString(16), m.upcall[v]]), 'selectors and upcall flags');
    same(x.kicks, m.kicks, 'kicks');
    same(x.polled, m.polled, 'poll notifications');
    x.polled.length = 0; m.polled = [];
    // FIFO.
    same(e.delivery.abi, m.fifo ? 'fifo' : '2l', 'ABI');
    const f = m.fifo, gs = w.guests[i];
    same(gs.active, !!f, 'guest FIFO');
    if (!f) continue;
    const fs = e.fifo!;
    same(fs.arrayMfns.length, f.nArray, 'array pages');
    const words: number[] = [], want: number[] = [];
    for (let p = 0; p < f.nArray * 1024; p++) {
      const word = gs.g.word(p);
      words.push(((word & FP) !== 0 ? 4 : 0) | ((word & FM) !== 0 ? 2 : 0) | ((word & FL) !== 0 ? 1 : 0));
      want.push(f.P[p] * 4 + f.M[p] * 2 + f.L[p]);
    }
    same(words, want, 'event words (P M L)');
    for (let v = 0; v < m.nrVcpus; v++) {
      same(fs.vcpus[v].cbMfn >= 0, f.cb[v], `control block ${v}`);
      same(gs.g.ready[v], f.local[v], `guest READY copy ${v}`);
      if (!f.cb[v]) continue;
      same(gs.g.cbReady(v), f.cbReady[v], `READY ${v}`);
      for (let q = 0; q < 16; q++) {
        const list = f.queues[v][q], tail = fs.vcpus[v].tail[q];
        if (list.length === 0) {
          // Xen must see this queue as empty: no tail, or a tail the guest unlinked.
          same(tail === 0 || !gs.g.linked(tail), true, `queue ${v}/${q} tail ${tail}`);
          continue;
        }
        const walked: number[] = [];
        let p = gs.g.head[v][q] || gs.g.cbHead(v, q);
        while (p !== 0 && walked.length <= list.length) { walked.push(p); p = gs.g.word(p) & LINK; }
        same(walked, list, `queue ${v}/${q}`);
        same(tail, list[list.length - 1], `queue ${v}/${q} tail`);
      }
    }
  }
}

/** Everything of a domain another domain's operation could touch, for the isolation check. */
interface Print { table: string[]; events: string; mem: Buffer }
function print(w: World, i: number): Print {
  const x = w.doms[i], e = eventsOf(x.d)!, t = e.table;
  const table: string[] = [];
  for (let p = 0; p < t.nrValid; p++) table.push([t.state[p], t.notifyVcpu[p], t.remoteDom[p], t.remotePort[p], t.irq[p], t.priority[p]].join());
  table.push(`valid ${t.nrValid} ends ${[...e.xenEnds.keys()].join()} abi ${e.delivery.abi}`);
  const u8 = w.h.phys.u8;
  const mem = Buffer.concat([x.si, ...x.spare].map((f) => u8.subarray(f * 4096, f * 4096 + 4096)));
  const priv = e.fifo ? JSON.stringify({ tails: e.fifo.vcpus.map((v) => [...v.tail]), saved: [...t.savedPending.subarray(0, t.nrValid)] }) : '';
  return { table, mem, events: [priv, x.kicks.join(), x.polled.join(), w.xenSends[i]].join('|') };
}

function checkIsolation(w: World, c: Cmd, before: Print[], allow: Allow): void {
  const a = actorOf(c);
  for (let j = 0; j < 3; j++) {
    if (j === a || allow.any.has(j)) continue;
    const now = print(w, j), was = before[j];
    if (!allow.events.has(j)) {
      expect(now.events, `isolation: ${c.k} by d${a} changed d${j}'s events`).toBe(was.events);
      expect(now.mem.equals(was.mem), `isolation: ${c.k} by d${a} changed d${j}'s event memory`).toBe(true);
    }
    const ok = allow.table.get(j) ?? new Set<number>();
    expect(now.table.length, `isolation: ${c.k} by d${a} grew d${j}`).toBe(was.table.length);
    now.table.forEach((row, p) => {
      if (!ok.has(p)) expect(row, `isolation: ${c.k} by d${a} changed d${j} port ${p}`).toBe(was.table[p]);
    });
  }
}

// ---- the property --------------------------------------------------------------------------------

describe('event channels against a reference model', () => {
  it('agree on every result and state, stay isolated, and survive snapshots', () => {
    fc.assert(
      fc.property(fc.array(cmdArb, { minLength: 20, maxLength: 120, size: 'max' }), (cmds) => {
        const w = new World();
        compare(w);
        for (const c of cmds) {
          const before = [0, 1, 2].map((j) => print(w, j));
          const allow = run(w, c);
          checkIsolation(w, c, before, allow);
          compare(w);
          w.roundTrip();
        }
      }),
      { numRuns: 60 },
    );
    if (process.env.EVTCHN_STATS) console.log([...stats].sort().map(([k, n]) => `${k}: ${n}`).join('\n'));
  });
});
