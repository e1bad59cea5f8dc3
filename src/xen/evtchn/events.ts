// Event channels of the host: each domain's table and delivery, and what other parts of
// the hypervisor call to raise an event (timers, consoles, backends).

import type { Domain } from '../domain.js';
import { EvtchnTable, GLOBAL_VIRQS, State, type Delivery } from './model.js';
import { TwoLevel } from './twolevel.js';
import { DOMID_XEN } from '../mm/frames.js';

interface DomainEvents { table: EvtchnTable; delivery: Delivery; xenEnds: Map<number, () => void> }
const byDomain = new WeakMap<Domain, DomainEvents>();

/** Set up a domain's event channels (after its vCPUs exist). notify wakes a vCPU for an
 *  upcall; onPending(port) sees every newly pending port (SCHEDOP_poll waiters). */
export function initEvents(d: Domain, notify: (vcpu: number) => void, onPending?: (port: number) => void): void {
  byDomain.set(d, { table: new EvtchnTable(Math.max(1, d.vcpus.length)), delivery: new TwoLevel(d, notify, onPending), xenEnds: new Map() });
}

/**
 * A port whose other end is in the hypervisor itself (an in-process backend with no
 * backend domain, e.g. the console of `sim run`): it is interdomain-bound to DOMID_XEN, and
 * `onSend` runs when the guest notifies it. Returns the guest's port.
 */
export function bindToXen(d: Domain, onSend: () => void): number {
  const e = byDomain.get(d);
  if (!e) throw new Error(`domain ${d.id} has no event channels yet`);
  const port = e.table.allocPort();
  if (port < 0) throw new Error(`domain ${d.id} has no free event channel`);
  e.table.state[port] = State.INTERDOMAIN;
  e.table.remoteDom[port] = DOMID_XEN;
  e.table.remotePort[port] = 0;
  e.xenEnds.set(port, onSend);
  return port;
}

/** The in-hypervisor end of a port, if it has one. */
export function xenEndOf(d: Domain, port: number): (() => void) | undefined {
  return byDomain.get(d)?.xenEnds.get(port);
}

export function eventsOf(d: Domain): DomainEvents | undefined { return byDomain.get(d); }

/** Raise a VIRQ for a domain (per-vCPU VIRQs on `vcpu`); false if it is not bound. */
export function sendVirq(d: Domain, virq: number, vcpu = 0): boolean {
  const e = byDomain.get(d);
  if (!e) return false;
  const port = e.table.portOfVirq(virq, GLOBAL_VIRQS.has(virq) ? 0 : vcpu);
  if (port === 0) return false;
  e.delivery.setPending(port, e.table.notifyVcpu[port]);
  return true;
}

/** Make a local port pending (as a send from the other end would). */
export function raisePort(d: Domain, port: number): void {
  const e = byDomain.get(d);
  if (!e || !e.table.valid(port) || e.table.state[port] === State.FREE) return;
  e.delivery.setPending(port, e.table.notifyVcpu[port]);
}
