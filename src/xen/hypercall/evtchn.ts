// event_channel_op (32): the 2-level ABI's operations on a domain's ports.
// FIFO (init_control, expand_array, set_priority) answers -ENOSYS, so guests use 2-level.

import { Errno } from '../errno.js';
import { eventsOf, xenEndOf } from '../evtchn/events.js';
import { State } from '../evtchn/model.js';
import { readGuest16, readGuest32, writeGuest16, writeGuest32 } from '../guestmem.js';
import { DOMID_SELF, DOMID_XEN } from '../mm/frames.js';
import type { Domain } from '../domain.js';
import type { Vcpu } from '../vcpu.js';
import { Hc, registerHypercall } from './table.js';

export const enum EvtchnOp {
  bind_interdomain = 0, bind_virq = 1, bind_pirq = 2, close = 3, send = 4, status = 5, alloc_unbound = 6,
  bind_ipi = 7, bind_vcpu = 8, unmask = 9, reset = 10, init_control = 11, expand_array = 12, set_priority = 13,
}

function domainOf(v: Vcpu, domid: number): Domain | undefined {
  if (domid === DOMID_SELF || domid === v.domain.id) return v.domain;
  if (!v.domain.privileged) return undefined;
  return v.domain.xen.domains.get(domid);
}

/** Close one port; an interdomain peer goes back to unbound, waiting for us again. */
export function closePort(d: Domain, port: number): number {
  const e = eventsOf(d);
  if (!e) return -Errno.EINVAL;
  const t = e.table;
  if (!t.valid(port)) return -Errno.EINVAL;
  const s = t.state[port];
  if (s === State.FREE) return -Errno.EINVAL;
  if (s === State.INTERDOMAIN && t.remoteDom[port] === DOMID_XEN) e.xenEnds.delete(port);
  else if (s === State.INTERDOMAIN) {
    const rd = d.xen.domains.get(t.remoteDom[port]);
    const re = rd && eventsOf(rd);
    const rp = t.remotePort[port];
    if (re && re.table.state[rp] === State.INTERDOMAIN && re.table.remotePort[rp] === port && re.table.remoteDom[rp] === d.id) {
      re.table.state[rp] = State.UNBOUND;
      re.table.remoteDom[rp] = d.id;
      re.table.remotePort[rp] = -1;
    }
  }
  t.free(port);
  e.delivery.clearPending(port);
  return 0;
}

function evtchnOp(v: Vcpu, cmd: number, p: number): number {
  const d = v.domain;
  const e = eventsOf(d);
  if (!e) return -Errno.ENOSYS;
  const t = e.table;
  switch (cmd) {
    case EvtchnOp.bind_virq: {
      const virq = readGuest32(v, p), vcpu = readGuest32(v, p + 4);
      const port = t.bindVirq(virq >>> 0, vcpu >>> 0);
      if (port < 0) return port;
      writeGuest32(v, p + 8, port);
      return 0;
    }
    case EvtchnOp.bind_ipi: {
      const port = t.bindIpi(readGuest32(v, p) >>> 0);
      if (port < 0) return port;
      writeGuest32(v, p + 4, port);
      return 0;
    }
    case EvtchnOp.alloc_unbound: {
      const dom = readGuest16(v, p), remote = readGuest16(v, p + 2);
      const target = domainOf(v, dom);
      if (!target) return dom === d.id || dom === DOMID_SELF ? -Errno.ESRCH : (d.privileged ? -Errno.ESRCH : -Errno.EPERM);
      const te = eventsOf(target);
      if (!te) return -Errno.ESRCH;
      const rdom = remote === DOMID_SELF ? target.id : remote;
      const port = te.table.allocUnbound(rdom);
      if (port < 0) return port;
      writeGuest32(v, p + 4, port);
      return 0;
    }
    case EvtchnOp.bind_interdomain: {
      const rdomid = readGuest16(v, p), rport = readGuest32(v, p + 4) >>> 0;
      const rd = rdomid === DOMID_SELF ? d : d.xen.domains.get(rdomid);
      if (!rd) return -Errno.ESRCH;
      const re = eventsOf(rd);
      if (!re) return -Errno.ESRCH;
      if (!re.table.valid(rport)) return -Errno.EINVAL;
      if (re.table.state[rport] !== State.UNBOUND || re.table.remoteDom[rport] !== d.id) return -Errno.EINVAL;
      const lport = t.allocPort();
      if (lport < 0) return lport;
      t.state[lport] = State.INTERDOMAIN; t.remoteDom[lport] = rd.id; t.remotePort[lport] = rport; t.notifyVcpu[lport] = 0;
      re.table.state[rport] = State.INTERDOMAIN; re.table.remoteDom[rport] = d.id; re.table.remotePort[rport] = lport;
      writeGuest32(v, p + 8, lport);
      // Xen marks the new local port pending, so no event sent before binding is lost.
      e.delivery.setPending(lport, t.notifyVcpu[lport]);
      return 0;
    }
    case EvtchnOp.close: return closePort(d, readGuest32(v, p) >>> 0);
    case EvtchnOp.send: {
      const port = readGuest32(v, p) >>> 0;
      if (!t.valid(port)) return -Errno.EINVAL;
      switch (t.state[port]) {
        case State.INTERDOMAIN: {
          const xenEnd = t.remoteDom[port] === DOMID_XEN ? xenEndOf(d, port) : undefined;
          if (xenEnd) { xenEnd(); return 0; }
          const rd = d.xen.domains.get(t.remoteDom[port]);
          const re = rd && eventsOf(rd);
          if (re) { const rp = t.remotePort[port]; re.delivery.setPending(rp, re.table.notifyVcpu[rp]); }
          return 0;
        }
        case State.IPI: e.delivery.setPending(port, t.notifyVcpu[port]); return 0;
        case State.UNBOUND: return 0; // silently dropped
        default: return -Errno.EINVAL;
      }
    }
    case EvtchnOp.status: {
      const dom = readGuest16(v, p), port = readGuest32(v, p + 4) >>> 0;
      const target = domainOf(v, dom);
      if (!target) return -Errno.ESRCH;
      const te = eventsOf(target);
      if (!te || !te.table.valid(port)) return -Errno.EINVAL;
      const tt = te.table;
      const st = tt.state[port];
      writeGuest32(v, p + 8, st);
      writeGuest32(v, p + 12, tt.notifyVcpu[port]);
      if (st === State.UNBOUND) writeGuest16(v, p + 16, tt.remoteDom[port]);
      else if (st === State.INTERDOMAIN) { writeGuest16(v, p + 16, tt.remoteDom[port]); writeGuest32(v, p + 20, tt.remotePort[port]); }
      else if (st === State.VIRQ || st === State.PIRQ) writeGuest32(v, p + 16, tt.virq[port]);
      return 0;
    }
    case EvtchnOp.bind_vcpu: return t.bindVcpu(readGuest32(v, p) >>> 0, readGuest32(v, p + 4) >>> 0);
    case EvtchnOp.unmask: {
      const port = readGuest32(v, p) >>> 0;
      if (!t.valid(port)) return -Errno.EINVAL;
      e.delivery.unmask(port, t.notifyVcpu[port]);
      return 0;
    }
    case EvtchnOp.reset: {
      const target = domainOf(v, readGuest16(v, p));
      if (!target) return -Errno.ESRCH;
      const te = eventsOf(target);
      if (!te) return -Errno.ESRCH;
      for (let port = 1; port < te.table.maxPorts; port++) if (te.table.state[port] !== State.FREE) closePort(target, port);
      return 0;
    }
    case EvtchnOp.bind_pirq:
      return d.privileged ? -Errno.ENOSYS : -Errno.EPERM;
    case EvtchnOp.init_control: case EvtchnOp.expand_array: case EvtchnOp.set_priority:
      return -Errno.ENOSYS; // FIFO ABI not offered: guests fall back to 2-level
    default:
      return -Errno.ENOSYS;
  }
}

registerHypercall(Hc.event_channel_op, (v, a) => evtchnOp(v, a.u32(0), a.ptr(1)));
