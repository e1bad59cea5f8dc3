// Event channels of the host: each domain's table and delivery, and what other parts of
// the hypervisor call to raise an event (timers, consoles, backends).

import type { Domain } from '../domain.js';
import { EvtchnTable, GLOBAL_VIRQS, State, type Delivery } from './model.js';
import { TwoLevel } from './twolevel.js';

interface DomainEvents { table: EvtchnTable; delivery: Delivery }
const byDomain = new WeakMap<Domain, DomainEvents>();

/** Set up a domain's event channels (after its vCPUs exist). notify wakes a vCPU for an
 *  upcall; onPending(port) sees every newly pending port (SCHEDOP_poll waiters). */
export function initEvents(d: Domain, notify: (vcpu: number) => void, onPending?: (port: number) => void): void {
  byDomain.set(d, { table: new EvtchnTable(Math.max(1, d.vcpus.length)), delivery: new TwoLevel(d, notify, onPending) });
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
