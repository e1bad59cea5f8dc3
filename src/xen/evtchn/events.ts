// Event channels of the host: each domain's port table and delivery (2-level until the guest
// switches to FIFO with EVTCHNOP_init_control, back to 2-level after EVTCHNOP_reset), and
// what other parts of the hypervisor call to raise an event (timers, consoles, backends).
//
// API for the rest of the hypervisor:
//   initEvents(d, notify, onPending?)   after the domain's vCPUs exist
//   eventsOf(d)                         { table, delivery, xenEnds, fifo, ... } or undefined
//   bindToXen(d, onSend) -> port        a port whose other end is in the hypervisor
//   attachXenEnd(d, port, onSend)       give such a port its callback again (after a restore)
//   raisePort(d, port)                  the in-hypervisor end sends
//   sendVirq(d, virq, vcpu?)            send_guest_{vcpu,global}_virq
//   sendPirq(d, pirq)                   send_guest_pirq (minimal PIRQ model)
//   setMaxEvtchnPort(d, n)              XEN_DOMCTL_set_max_evtchn (xl's max_event_channels)
// and in ops.ts: the EVTCHNOP_* operations, destroyEvents(d) (domain destruction: close every
// port, release the FIFO frames; call it before relinquishing the domain's memory); in
// snapshot.ts: saveEvents / restoreEvents.

import type { Domain } from '../domain.js';
import { DOMID_XEN } from '../mm/frames.js';
import { destroyFifo, Fifo, FifoState } from './fifo.js';
import { EvtchnTable, State, type Delivery } from './model.js';
import { TwoLevel } from './twolevel.js';

export class DomainEvents {
  table: EvtchnTable;
  /** The FIFO ABI's private state while the domain uses it, else null. */
  fifo: FifoState | null = null;
  /** The ABI in use. */
  delivery: Delivery;
  /** Ports whose other end is in the hypervisor: the callback run when the guest sends. A
   *  port restored from a snapshot has a no-op until attachXenEnd. */
  readonly xenEnds = new Map<number, () => void>();
  /** Whether EVTCHNOP_init_control is offered (false: -ENOSYS, guests stay on 2-level). */
  fifoAllowed = true;

  /** `notify(vcpu)`: evtchn_upcall_pending was newly set for vcpu (vcpu_kick).
   *  `onPending(port)`: a port became pending (evtchn_check_pollers, for SCHEDOP_poll). */
  constructor(readonly d: Domain, readonly notify: (vcpu: number) => void,
    readonly onPending: (port: number) => void = () => {}, table?: EvtchnTable) {
    this.table = table ?? new EvtchnTable(Math.max(1, d.vcpus.length), { privileged: d.privileged });
    this.delivery = new TwoLevel(d, notify, onPending);
  }

  /** Switch to FIFO with `state` (after init_control mapped the first control block). */
  useFifo(state: FifoState): Fifo {
    this.fifo = state;
    const f = new Fifo(this.d, this.table, state, this.notify, this.onPending);
    this.delivery = f;
    return f;
  }

  /** Back to 2-level (EVTCHNOP_reset, a failed init_control): FIFO frames are released. */
  use2l(): void {
    if (this.fifo) destroyFifo(this.d, this.fifo);
    this.fifo = null;
    this.delivery = new TwoLevel(this.d, this.notify, this.onPending);
  }

  /** get_free_port under the current ABI: a port, or -errno. */
  allocPort(): number {
    const dl = this.delivery;
    return this.table.allocPort(dl.maxPorts, (p) => dl.isBusy(p));
  }
}

const byDomain = new WeakMap<Domain, DomainEvents>();

/** Set up a domain's event channels (after its vCPUs exist). notify wakes a vCPU for an
 *  upcall; onPending(port) sees every newly pending port (SCHEDOP_poll waiters). */
export function initEvents(d: Domain, notify: (vcpu: number) => void, onPending?: (port: number) => void): DomainEvents {
  const e = new DomainEvents(d, notify, onPending);
  byDomain.set(d, e);
  return e;
}

/** Install a domain's event channel state (snapshot restore). */
export function setEvents(d: Domain, e: DomainEvents): void { byDomain.set(d, e); }

export function eventsOf(d: Domain): DomainEvents | undefined { return byDomain.get(d); }

/**
 * A port whose other end is in the hypervisor itself (an in-process backend with no
 * backend domain, e.g. the console of `sim run`): it is interdomain-bound to DOMID_XEN, and
 * `onSend` runs when the guest notifies it. Returns the guest's port.
 */
export function bindToXen(d: Domain, onSend: () => void): number {
  const e = byDomain.get(d);
  if (!e) throw new Error(`domain ${d.id} has no event channels yet`);
  const port = e.allocPort();
  if (port < 0) throw new Error(`domain ${d.id} has no free event channel`);
  e.table.setInterdomain(port, DOMID_XEN, 0);
  e.xenEnds.set(port, onSend);
  return port;
}

/** Give a restored in-hypervisor end its callback; false if the port is not one. */
export function attachXenEnd(d: Domain, port: number, onSend: () => void): boolean {
  const e = byDomain.get(d);
  if (!e || !e.xenEnds.has(port)) return false;
  e.xenEnds.set(port, onSend);
  return true;
}

/** The in-hypervisor end of a port, if it has one. */
export function xenEndOf(d: Domain, port: number): (() => void) | undefined {
  return byDomain.get(d)?.xenEnds.get(port);
}

/** Raise a VIRQ for a domain (per-vCPU VIRQs on `vcpu`); false if it is not bound. */
export function sendVirq(d: Domain, virq: number, vcpu = 0): boolean {
  const e = byDomain.get(d);
  if (!e) return false;
  const port = e.table.portOfVirq(virq, vcpu);
  if (port === 0) return false;
  e.delivery.setPending(port, e.table.notifyVcpu[port]);
  return true;
}

/** Raise the port bound to a PIRQ; false if none is. */
export function sendPirq(d: Domain, pirq: number): boolean {
  const e = byDomain.get(d);
  const port = e?.table.pirqPort.get(pirq);
  if (!e || port === undefined) return false;
  e.delivery.setPending(port, e.table.notifyVcpu[port]);
  return true;
}

/**
 * The in-hypervisor end of `port` sends (as a backend's EVTCHNOP_send would). Nothing
 * happens unless the port is still bound to the hypervisor: once the guest closed it (and
 * perhaps reused the number for something else) the notification is dropped, as Xen drops a
 * send on a port whose peer went away.
 */
export function raisePort(d: Domain, port: number): void {
  const e = byDomain.get(d);
  if (!e || !e.xenEnds.has(port)) return;
  const t = e.table;
  if (!t.valid(port) || t.state[port] !== State.INTERDOMAIN || t.remoteDom[port] !== DOMID_XEN) return;
  e.delivery.setPending(port, t.notifyVcpu[port]);
}

/** XEN_DOMCTL_set_max_evtchn: the highest port the domain may allocate. */
export function setMaxEvtchnPort(d: Domain, maxPort: number): void {
  const e = byDomain.get(d);
  if (e) e.table.maxEvtchnPort = maxPort;
}
