// event_channel_op (32) and its pre-3.0.2 form event_channel_op_compat (16): copy the
// argument struct in (all of it, before anything happens: -EFAULT), run the operation
// (evtchn/ops.ts), and copy the struct back for the operations with OUT fields, as
// do_event_channel_op does (a fault on the way back is -EFAULT after the operation took
// effect, as in Xen).

import { Errno } from '../errno.js';
import {
  evtchnAllocUnbound, evtchnBindInterdomain, evtchnBindIpi, evtchnBindPirq, evtchnBindVcpu, evtchnBindVirq, evtchnClose,
  evtchnExpandArray, evtchnInitControl, evtchnReset, evtchnSend, evtchnSetPriority, evtchnStatus, evtchnUnmask,
} from '../evtchn/ops.js';
import { eventsOf } from '../evtchn/events.js';
import { EVTCHN_FIFO_LINK_BITS } from '../evtchn/fifo.js';
import { copyFromGuest, copyToGuest } from '../guestmem.js';
import type { Domain } from '../domain.js';
import type { Vcpu } from '../vcpu.js';
import { Hc, registerHypercall } from './table.js';

export const enum EvtchnOp {
  bind_interdomain = 0, bind_virq = 1, bind_pirq = 2, close = 3, send = 4, status = 5, alloc_unbound = 6,
  bind_ipi = 7, bind_vcpu = 8, unmask = 9, reset = 10, init_control = 11, expand_array = 12, set_priority = 13,
  reset_cont = 14,
}

/** sizeof(struct evtchn_*) by command (x86_64). */
export const EVTCHN_ARG_SIZE = [12, 12, 12, 4, 4, 24, 8, 8, 8, 4, 2, 24, 8, 8, 2];
/** struct evtchn_op (the compat hypercall's argument): cmd, then the union at offset 4. */
export const EVTCHN_OP_COMPAT_SIZE = 28;

const TWO32 = 4294967296;

/** Close one port of d (kept for callers of the old name). */
export function closePort(d: Domain, port: number): number { return evtchnClose(d, port); }

/** One operation on the struct at guest address p. */
export function evtchnOp(v: Vcpu, cmd: number, p: number): number {
  const d = v.domain;
  if (!eventsOf(d)) return -Errno.ENOSYS;
  if (!(cmd >= 0 && cmd < EVTCHN_ARG_SIZE.length)) return -Errno.ENOSYS;
  const buf = copyFromGuest(v, p, EVTCHN_ARG_SIZE[cmd]);
  const dv = new DataView(buf.buffer);
  const u16 = (o: number) => dv.getUint16(o, true), u32 = (o: number) => dv.getUint32(o, true);
  /** Write OUT fields back (the whole struct, as __copy_to_guest does). */
  const out = (rc: number): number => { copyToGuest(v, p, buf); return rc; };
  /** An operation returning a port at offset `off`. */
  const portOut = (port: number, off: number): number => {
    if (port < 0) return port;
    dv.setUint32(off, port, true);
    return out(0);
  };
  switch (cmd) {
    case EvtchnOp.alloc_unbound: return portOut(evtchnAllocUnbound(d, u16(0), u16(2)), 4);
    case EvtchnOp.bind_interdomain: return portOut(evtchnBindInterdomain(d, u16(0), u32(4)), 8);
    case EvtchnOp.bind_virq: return portOut(evtchnBindVirq(d, u32(0), u32(4)), 8);
    case EvtchnOp.bind_pirq: return portOut(evtchnBindPirq(d, u32(0), u32(4)), 8);
    case EvtchnOp.bind_ipi: return portOut(evtchnBindIpi(d, u32(0)), 4);
    case EvtchnOp.close: return evtchnClose(d, u32(0));
    case EvtchnOp.send: return evtchnSend(d, u32(0));
    case EvtchnOp.status: {
      const s = evtchnStatus(d, u16(0), u32(4));
      if (typeof s === 'number') return s;
      dv.setUint32(8, s.status, true);
      dv.setUint32(12, s.vcpu, true);
      if (s.irq !== undefined) dv.setUint32(16, s.irq, true);
      else if (s.dom !== undefined) {
        dv.setUint16(16, s.dom, true);
        if (s.port !== undefined) dv.setUint32(20, s.port, true);
      }
      return out(0);
    }
    case EvtchnOp.bind_vcpu: return evtchnBindVcpu(d, u32(0), u32(4));
    case EvtchnOp.unmask: return evtchnUnmask(d, u32(0));
    case EvtchnOp.reset: case EvtchnOp.reset_cont: return evtchnReset(d, u16(0), cmd === EvtchnOp.reset_cont);
    case EvtchnOp.init_control: {
      const gfn = u32(4) * TWO32 + u32(0);
      const rc = evtchnInitControl(d, gfn, u32(8), u32(12));
      if (rc !== 0) return rc;
      buf[16] = EVTCHN_FIFO_LINK_BITS;
      return out(0);
    }
    case EvtchnOp.expand_array: return evtchnExpandArray(d, u32(4) * TWO32 + u32(0));
    case EvtchnOp.set_priority: return evtchnSetPriority(d, u32(0), u32(4));
    default: return -Errno.ENOSYS;
  }
}

/** event_channel_op_compat: struct evtchn_op { cmd; union u } for commands 0..9 only. */
function evtchnOpCompat(v: Vcpu, p: number): number {
  const buf = copyFromGuest(v, p, EVTCHN_OP_COMPAT_SIZE);
  const cmd = new DataView(buf.buffer).getUint32(0, true);
  if (cmd > EvtchnOp.unmask) return -Errno.ENOSYS;
  return evtchnOp(v, cmd, p + 4);
}

registerHypercall(Hc.event_channel_op, (v, a) => evtchnOp(v, a.u32(0), a.ptr(1)));
registerHypercall(Hc.event_channel_op_compat, (v, a) => evtchnOpCompat(v, a.ptr(0)));
