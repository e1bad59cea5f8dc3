// The EVTCHNOP_* operations (Xen's event_channel.c and the FIFO entry points of
// event_fifo.c) on decoded arguments: what event_channel_op does once it has copied the
// argument struct in, returning a port / 0 or -errno. The hypercall (hypercall/evtchn.ts)
// does the copying; tests and in-hypervisor callers may call these directly.
//
// Checks come in Xen's order, so each bad argument gets Xen's error:
//   domain lookup (DOMID_SELF or any existing domain)    -ESRCH
//   XSM_TARGET (the caller itself, or a privileged one)   -EPERM
//   vCPU ids (domain_vcpu)                                -ENOENT
//   ports (port_is_valid: the port's bucket exists)       -EINVAL
//   port allocation (get_free_port)                       -ENOSPC (limit), -EINVAL (dying domain)
// One deliberate difference: alloc_unbound checks permission before allocating, where Xen
// allocates first (so an unprivileged caller naming another domain gets -EPERM even when that
// domain is full, and never makes it grow a bucket).
//
// A domain reaches another only through interdomain channels: bind_interdomain connects an
// unbound port offered to the caller, send raises the peer port, close puts the peer back to
// unbound. Only a privileged domain may allocate unbound ports in, reset, or read the status
// of another domain's ports.

import type { Domain } from '../domain.js';
import { Errno } from '../errno.js';
import { DOMID_SELF, DOMID_XEN } from '../mm/frames.js';
import { eventsOf, type DomainEvents } from './events.js';
import { ControlBlock, EVTCHN_FIFO_MAX_EVENT_ARRAY_PAGES, FifoState, mapGuestFrame, setupPorts, type Fifo } from './fifo.js';
import { EVTCHN_FIFO_PRIORITY_MIN, NR_VIRQS, State, virqIsGlobal } from './model.js';

/** EVTCHNOP_status's result: `dom`/`port` for unbound and interdomain, `irq` for VIRQ/PIRQ. */
export interface EvtchnStatus { status: number; vcpu: number; dom?: number; port?: number; irq?: number }

/** rcu_lock_domain_by_any_id: DOMID_SELF or an existing domain with event channels. */
function lookup(caller: Domain, domid: number): DomainEvents | undefined {
  const d = domid === DOMID_SELF ? caller : caller.xen.domains.get(domid);
  return d ? eventsOf(d) : undefined;
}

/** The dummy XSM policy's XSM_TARGET: a domain may act on itself; a privileged one on any. */
function xsmTarget(src: Domain, target: Domain): boolean { return src === target || src.privileged; }

function own(caller: Domain): DomainEvents {
  const e = eventsOf(caller);
  if (!e) throw new Error(`domain ${caller.id} has no event channels`);
  return e;
}

function alloc(e: DomainEvents): number {
  if (e.d.state === 'dying') return -Errno.EINVAL;
  return e.allocPort();
}

export function evtchnAllocUnbound(caller: Domain, dom: number, remoteDom: number): number {
  const e = lookup(caller, dom);
  if (!e) return -Errno.ESRCH;
  if (!xsmTarget(caller, e.d)) return -Errno.EPERM;
  const port = alloc(e);
  if (port < 0) return port;
  e.table.setUnbound(port, remoteDom === DOMID_SELF ? caller.id : remoteDom);
  return port;
}

export function evtchnBindInterdomain(caller: Domain, remoteDom: number, remotePort: number): number {
  const re = lookup(caller, remoteDom);
  if (!re) return -Errno.ESRCH;
  const le = own(caller);
  const lport = alloc(le);
  if (lport < 0) return lport;
  const rt = re.table;
  if (!rt.valid(remotePort) || rt.state[remotePort] !== State.UNBOUND || rt.remoteDom[remotePort] !== caller.id) return -Errno.EINVAL;
  le.table.setInterdomain(lport, re.d.id, remotePort);
  rt.connect(remotePort, caller.id, lport);
  // The peer may have sent before we bound: always set the new local port pending.
  le.delivery.setPending(lport, le.table.notifyVcpu[lport]);
  return lport;
}

export function evtchnBindVirq(caller: Domain, virq: number, vcpu: number): number {
  const e = own(caller), t = e.table;
  if (!(virq >= 0 && virq < NR_VIRQS)) return -Errno.EINVAL;
  if (virqIsGlobal(virq) && vcpu !== 0) return -Errno.EINVAL;
  if (!(vcpu >= 0 && vcpu < t.nrVcpus)) return -Errno.ENOENT;
  if (t.virqPort[vcpu * NR_VIRQS + virq] !== 0) return -Errno.EEXIST;
  const port = alloc(e);
  if (port < 0) return port;
  t.setVirq(port, virq, vcpu);
  return port;
}

export function evtchnBindIpi(caller: Domain, vcpu: number): number {
  const e = own(caller);
  if (!(vcpu >= 0 && vcpu < e.table.nrVcpus)) return -Errno.ENOENT;
  const port = alloc(e);
  if (port < 0) return port;
  e.table.setIpi(port, vcpu);
  return port;
}

/**
 * bind_pirq, with a minimal PIRQ model: a domain may name PIRQs below its nr_pirqs, only the
 * hardware domain may bind them (no passthrough), a PIRQ binds to one port, notifies vCPU 0,
 * and raises only through sendPirq (no physical interrupt source; BIND_PIRQ__WILL_SHARE and
 * the IRQ's guest binding are not modelled).
 */
export function evtchnBindPirq(caller: Domain, pirq: number, _flags: number): number {
  const e = own(caller), t = e.table;
  if (!(pirq >= 0 && pirq < t.nrPirqs)) return -Errno.EINVAL;
  if (!t.pirqAccess) return -Errno.EPERM;
  if (t.pirqPort.has(pirq)) return -Errno.EEXIST;
  const port = alloc(e);
  if (port < 0) return port;
  t.setPirq(port, pirq);
  return port;
}

/** EVTCHNOP_close (and the close of each port by reset and domain destruction). An
 *  interdomain peer goes back to unbound, waiting for this domain again. */
export function evtchnClose(d: Domain, port: number): number {
  const e = eventsOf(d);
  if (!e) return -Errno.EINVAL;
  const t = e.table;
  if (!t.valid(port)) return -Errno.EINVAL;
  switch (t.state[port]) {
    case State.FREE: case State.RESERVED: return -Errno.EINVAL;
    case State.INTERDOMAIN: {
      const rdom = t.remoteDom[port], rport = t.remotePort[port];
      if (rdom === DOMID_XEN) { e.xenEnds.delete(port); break; }
      const rd = d.xen.domains.get(rdom);
      const re = rd && eventsOf(rd);
      if (re && re.table.valid(rport) && re.table.state[rport] === State.INTERDOMAIN &&
          re.table.remoteDom[rport] === d.id && re.table.remotePort[rport] === port) re.table.disconnect(rport);
      break;
    }
    default: break;
  }
  e.delivery.clearPending(port);
  t.free(port);
  return 0;
}

export function evtchnSend(caller: Domain, port: number): number {
  const e = own(caller), t = e.table;
  if (!t.valid(port)) return -Errno.EINVAL;
  switch (t.state[port]) {
    case State.INTERDOMAIN: {
      if (t.remoteDom[port] === DOMID_XEN) { e.xenEnds.get(port)?.(); return 0; }
      const rd = caller.xen.domains.get(t.remoteDom[port]);
      const re = rd && eventsOf(rd);
      if (re) { const rp = t.remotePort[port]; re.delivery.setPending(rp, re.table.notifyVcpu[rp]); }
      return 0;
    }
    case State.IPI: e.delivery.setPending(port, t.notifyVcpu[port]); return 0;
    case State.UNBOUND: return 0; // silently dropped
    default: return -Errno.EINVAL;
  }
}

export function evtchnStatus(caller: Domain, dom: number, port: number): EvtchnStatus | number {
  const e = lookup(caller, dom);
  if (!e) return -Errno.ESRCH;
  const t = e.table;
  if (!t.valid(port)) return -Errno.EINVAL;
  if (!xsmTarget(caller, e.d)) return -Errno.EPERM;
  const st = t.statusOf(port);
  const out: EvtchnStatus = { status: st, vcpu: t.notifyVcpu[port] };
  if (st === State.UNBOUND) out.dom = t.remoteDom[port];
  else if (st === State.INTERDOMAIN) { out.dom = t.remoteDom[port]; out.port = t.remotePort[port]; }
  else if (st === State.VIRQ || st === State.PIRQ) out.irq = t.irq[port];
  return out;
}

export function evtchnBindVcpu(caller: Domain, port: number, vcpu: number): number {
  const e = own(caller), t = e.table;
  if (!(vcpu >= 0 && vcpu < t.nrVcpus)) return -Errno.ENOENT;
  if (!t.valid(port)) return -Errno.EINVAL;
  switch (t.state[port]) {
    case State.VIRQ:
      if (!virqIsGlobal(t.irq[port])) return -Errno.EINVAL;
      break;
    case State.UNBOUND: case State.INTERDOMAIN: case State.PIRQ: break;
    default: return -Errno.EINVAL;
  }
  // A global VIRQ stays recorded under vCPU 0 (as Xen keeps it); only the target moves.
  t.notifyVcpu[port] = vcpu;
  return 0;
}

export function evtchnUnmask(caller: Domain, port: number): number {
  const e = own(caller), t = e.table;
  if (!t.valid(port)) return -Errno.EINVAL;
  e.delivery.unmask(port, t.notifyVcpu[port]);
  return 0;
}

/**
 * EVTCHNOP_reset (and reset_cont, which a guest can only call when no reset is in progress:
 * -EBUSY). Another domain may be reset only by a privileged caller and only while it is
 * paused (Xen: controller_pause_count). Every port is closed; a FIFO domain goes back to
 * 2-level.
 */
export function evtchnReset(caller: Domain, dom: number, cont = false): number {
  const e = lookup(caller, dom);
  if (!e) return -Errno.ESRCH;
  if (!xsmTarget(caller, e.d)) return -Errno.EPERM;
  if (e.d !== caller && e.d.state !== 'paused') return -Errno.EINVAL;
  if (cont) return -Errno.EBUSY;
  for (let port = 1; port < e.table.nrValid; port++) if (e.table.state[port] !== State.FREE) evtchnClose(e.d, port);
  if (e.fifo) e.use2l();
  return 0;
}

/** Domain destruction (evtchn_destroy): every port closed, FIFO frames released. */
export function destroyEvents(d: Domain): void {
  const e = eventsOf(d);
  if (!e) return;
  for (let port = 1; port < e.table.nrValid; port++) if (e.table.state[port] !== State.FREE) evtchnClose(d, port);
  e.use2l();
}

/** EVTCHNOP_init_control: `gfn` is a frame of the caller (PV: an MFN). The first one switches
 *  the domain to FIFO. Returns 0 (link_bits is EVTCHN_FIFO_LINK_BITS) or -errno. */
export function evtchnInitControl(caller: Domain, gfn: number, offset: number, vcpu: number): number {
  const e = own(caller), t = e.table;
  if (!e.fifoAllowed) return -Errno.ENOSYS;
  if (!(vcpu >= 0 && vcpu < t.nrVcpus)) return -Errno.ENOENT;
  if (!(offset >= 0 && offset <= 4096 - ControlBlock.SIZE)) return -Errno.EINVAL;
  if (offset & 7) return -Errno.EINVAL;
  if (!e.fifo) {
    const mfn = mapGuestFrame(caller, gfn);
    if (mfn < 0) return mfn;
    const state = new FifoState(t.nrVcpus);
    state.vcpus[vcpu].cbMfn = mfn;
    state.vcpus[vcpu].cbOffset = offset;
    const old = e.delivery;
    e.useFifo(state);
    setupPorts(t, old);
    return 0;
  }
  const fv = e.fifo.vcpus[vcpu];
  if (fv.cbMfn >= 0) return -Errno.EINVAL;
  const mfn = mapGuestFrame(caller, gfn);
  if (mfn < 0) return mfn;
  fv.cbMfn = mfn;
  fv.cbOffset = offset;
  return 0;
}

export function evtchnExpandArray(caller: Domain, gfn: number): number {
  const e = own(caller);
  if (!e.fifo) return -Errno.EOPNOTSUPP;
  if (e.fifo.arrayMfns.length >= EVTCHN_FIFO_MAX_EVENT_ARRAY_PAGES) return -Errno.ENOSPC;
  const mfn = mapGuestFrame(caller, gfn);
  if (mfn < 0) return mfn;
  (e.delivery as Fifo).addPage(mfn);
  return 0;
}

export function evtchnSetPriority(caller: Domain, port: number, priority: number): number {
  const e = own(caller), t = e.table;
  if (!t.valid(port)) return -Errno.EINVAL;
  if (e.delivery.abi !== 'fifo') return -Errno.ENOSYS;
  if (!(priority >= 0 && priority <= EVTCHN_FIFO_PRIORITY_MIN)) return -Errno.EINVAL;
  // Future events go on the new queue; a linked event stays where it is.
  t.priority[port] = priority;
  return 0;
}
