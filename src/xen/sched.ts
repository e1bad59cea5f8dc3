// Scheduling: which vCPUs run, waking them when events arrive, their timers, and domain
// shutdown. The host loop that runs vCPUs in turn is runHost (host.ts).

import { RunstateState, VcpuInfo } from './layout.js';
import { setRunstate } from './runstate.js';
import { sendVirq } from './evtchn/events.js';
import { SHUTDOWN_NAMES, type Domain } from './domain.js';
import type { Vcpu } from './vcpu.js';

export const VIRQ_TIMER = 0;

/** An event became pending for v: unblock it and make its CPU check for delivery at the
 *  next block boundary. */
export function wakeVcpu(v: Vcpu): void {
  if (v.blocked) { v.blocked = false; v.pollPorts = []; v.pollTimeoutNs = 0; setRunstate(v, RunstateState.RUNNABLE); }
  v.cpu.eventAt = 0;
  v.cpu.exitBlock = true;
}

/** Leave the CPU's run loop at the next instruction boundary (block, shutdown, yield). */
export function stopVcpu(v: Vcpu): void {
  v.cpu.stopRequest = true;
  v.cpu.exitBlock = true;
}

/** Fire any timer of v whose deadline has passed (VIRQ_TIMER); returns true if one fired. */
export function fireTimers(v: Vcpu, nowNs: number): boolean {
  let fired = false;
  if (v.timerDeadlineNs > 0 && nowNs >= v.timerDeadlineNs) { v.timerDeadlineNs = 0; fired = true; }
  if (v.periodicNs > 0 && nowNs >= v.periodicNextNs) {
    while (v.periodicNextNs <= nowNs) v.periodicNextNs += v.periodicNs;
    fired = true;
  }
  if (fired) sendVirq(v.domain, VIRQ_TIMER, v.id);
  if (v.pollTimeoutNs > 0 && nowNs >= v.pollTimeoutNs) { v.pollTimeoutNs = 0; if (v.blocked && v.pollPorts.length) { v.blocked = false; v.pollPorts = []; setRunstate(v, RunstateState.RUNNABLE); } }
  return fired;
}

/** The earliest timer deadline (ns) of v, or Infinity. */
export function nextTimerNsOf(v: Vcpu): number {
  let t = Infinity;
  if (v.timerDeadlineNs > 0) t = v.timerDeadlineNs;
  if (v.periodicNs > 0 && v.periodicNextNs < t) t = v.periodicNextNs;
  if (v.pollTimeoutNs > 0 && v.pollTimeoutNs < t) t = v.pollTimeoutNs;
  return t;
}

/** Whether v has an event waiting for delivery (upcall pending in its vcpu_info). */
export function upcallPending(v: Vcpu): boolean {
  if (v.vcpuInfoPa < 0) return false;
  return v.domain.xen.machine.u8(v.vcpuInfoPa + VcpuInfo.UPCALL_PENDING) !== 0;
}

/** Shut a domain down (SCHEDOP_shutdown, a crash, the toolstack): every vCPU stops. */
export function shutdownDomain(d: Domain, reason: number, why?: string): void {
  if (d.isDead) return;
  if (d.shutdownCode >= 0) reason = d.shutdownCode; // SCHEDOP_shutdown_code wins
  d.state = 'shutdown';
  d.shutdownReason = reason;
  d.xen.printk(`d${d.id}: shutdown: ${SHUTDOWN_NAMES[reason] ?? `reason ${reason}`}${why ? ` (${why})` : ''}`);
  for (const v of d.vcpus) stopVcpu(v);
  d.onShutdown?.(reason);
}

/** domain_crash(): the guest did something Xen cannot let it continue from. */
export function crashDomain(d: Domain, why: string): void {
  shutdownDomain(d, 3, why);
}

/** The vCPU stops running until an event wakes it (SCHEDOP_block, poll). */
export function markBlocked(v: Vcpu): void {
  v.blocked = true;
  setRunstate(v, RunstateState.BLOCKED);
  stopVcpu(v);
}
