// sched_op (29) and its compat form (6), set_timer_op (15), multicall (13).

import { Errno } from '../errno.js';
import { eventsOf } from '../evtchn/events.js';
import { copyFromGuest, readGuest32, readGuestPtr, readGuestU64, writeGuest64 } from '../guestmem.js';
import { Multicall, VcpuInfo } from '../layout.js';
import { markBlocked, shutdownDomain, stopVcpu, upcallPending, wakeVcpu } from '../sched.js';
import type { Vcpu } from '../vcpu.js';
import { Hc, dispatchHypercall, registerHypercall } from './table.js';

export const enum SchedOp { yield = 0, block = 1, shutdown = 2, poll = 3, remote_shutdown = 4, shutdown_code = 5, watchdog = 6, pin_override = 7 }
const MAX_POLL_PORTS = 128;

/** SCHEDOP_block: events are enabled (the upcall mask cleared) and the vCPU sleeps unless
 *  an event is already pending. */
export function blockVcpu(v: Vcpu): void {
  if (v.vcpuInfoPa >= 0) v.domain.xen.machine.set8(v.vcpuInfoPa + VcpuInfo.UPCALL_MASK, 0);
  if (upcallPending(v)) { wakeVcpu(v); return; }
  markBlocked(v);
}

function poll(v: Vcpu, p: number): number {
  const portsVa = readGuestPtr(v, p), nr = readGuest32(v, p + 8) >>> 0, timeout = readGuestU64(v, p + 16);
  if (nr > MAX_POLL_PORTS) return -Errno.EINVAL;
  const e = eventsOf(v.domain);
  if (!e) return -Errno.EINVAL;
  const ports: number[] = [];
  const raw = copyFromGuest(v, portsVa, nr * 4);
  const dv = new DataView(raw.buffer);
  for (let i = 0; i < nr; i++) {
    const port = dv.getUint32(i * 4, true);
    if (!e.table.valid(port)) return -Errno.EINVAL;
    if (e.delivery.isPending(port)) return 0;
    ports.push(port);
  }
  if (nr === 0 && timeout === 0) return 0;
  const now = v.domain.xen.now();
  if (timeout !== 0 && timeout <= now) return 0;
  v.pollPorts = ports;
  v.pollTimeoutNs = timeout;
  markBlocked(v);
  return 0;
}

function schedOp(v: Vcpu, cmd: number, p: number): number {
  const d = v.domain;
  switch (cmd) {
    case SchedOp.yield: stopVcpu(v); return 0;
    case SchedOp.block: blockVcpu(v); return 0;
    case SchedOp.shutdown: {
      // Xen takes any reason as a u8.
      shutdownDomain(d, readGuest32(v, p) & 0xff);
      return 0;
    }
    case SchedOp.shutdown_code: {
      // Recorded once; a later shutdown uses it in preference to its own reason.
      const reason = readGuest32(v, p) & 0xff;
      if (d.shutdownCode < 0) d.shutdownCode = reason;
      return 0;
    }
    case SchedOp.poll: return poll(v, p);
    case SchedOp.remote_shutdown: {
      if (!d.privileged) return -Errno.EPERM;
      const id = readGuest32(v, p) >>> 0, reason = readGuest32(v, p + 4) >>> 0;
      const t = d.xen.domains.get(id);
      if (!t) return -Errno.ESRCH;
      shutdownDomain(t, reason & 0xff);
      return 0;
    }
    case SchedOp.watchdog: {
      // {id, timeout}: id 0 with a timeout creates one (returns its id); a timeout of 0 destroys.
      const id = readGuest32(v, p) >>> 0, timeout = readGuest32(v, p + 4) >>> 0;
      const now = d.xen.now();
      if (id === 0) {
        const slot = d.watchdogs.findIndex((w) => w < 0);
        const i = slot >= 0 ? slot : d.watchdogs.length;
        if (i >= 2) return -Errno.ENOSPC;
        d.watchdogs[i] = timeout === 0 ? -1 : now + timeout * 1e9;
        return i + 1;
      }
      if (id > d.watchdogs.length || d.watchdogs[id - 1] === undefined || d.watchdogs[id - 1] < 0) return -Errno.EINVAL;
      d.watchdogs[id - 1] = timeout === 0 ? -1 : now + timeout * 1e9;
      return 0;
    }
    case SchedOp.pin_override: return d.privileged ? -Errno.EOPNOTSUPP : -Errno.EPERM;
    default: return -Errno.ENOSYS;
  }
}

/** The pre-3.0.2 form: the argument is the value itself (shutdown reason), not a pointer. */
function schedOpCompat(v: Vcpu, cmd: number, arg: number): number {
  switch (cmd) {
    case SchedOp.yield: case SchedOp.block: return schedOp(v, cmd, 0);
    case SchedOp.shutdown:
      shutdownDomain(v.domain, arg & 0xff);
      return 0;
    default: return -Errno.ENOSYS;
  }
}

function setTimerOp(v: Vcpu, timeoutNs: number): number {
  if (timeoutNs === 0) { v.timerDeadlineNs = 0; return 0; }
  v.timerDeadlineNs = timeoutNs;
  v.cpu.eventAt = 0; // re-arm: the host loop recomputes the next deadline
  return 0;
}

/** multicall: run each entry in turn, writing its result; stops early if the vCPU stops. */
function multicall(v: Vcpu, list: number, nr: number): number {
  if (nr < 0 || nr > 0x10000) return -Errno.EINVAL;
  const a = v.args;
  const saveLo = a.lo.slice(), saveHi = a.hi.slice();
  for (let i = 0; i < nr; i++) {
    const e = list + i * Multicall.SIZE;
    const raw = copyFromGuest(v, e, Multicall.SIZE);
    const dv = new DataView(raw.buffer);
    const op = dv.getUint32(0, true) + dv.getUint32(4, true) * 4294967296;
    for (let k = 0; k < 5; k++) a.set(k, dv.getInt32(16 + k * 8, true), dv.getInt32(20 + k * 8, true));
    let r: number;
    if (op === Hc.multicall || op === Hc.iret || op > 63) r = -Errno.ENOSYS;
    else r = dispatchHypercall(v, op, a);
    writeGuest64(v, e + Multicall.RESULT, r | 0, r < 0 ? -1 : Math.floor(r / 4294967296));
    if (v.domain.isDead || v.blocked) break;
  }
  a.lo.set(saveLo); a.hi.set(saveHi);
  return 0;
}

registerHypercall(Hc.sched_op, (v, a) => schedOp(v, a.u32(0), a.ptr(1)));
registerHypercall(Hc.sched_op_compat, (v, a) => schedOpCompat(v, a.u32(0), a.u32(1)));
registerHypercall(Hc.set_timer_op, (v, a) => setTimerOp(v, a.u64(0)));
registerHypercall(Hc.multicall, (v, a) => multicall(v, a.ptr(0), a.u32(1)));
