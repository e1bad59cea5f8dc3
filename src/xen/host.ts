// The host loop: runs every runnable vCPU of every running domain in turn, in slices of
// virtual time, fires timers, and skips idle time when every vCPU is blocked. Time is
// virtual and the order is fixed, so a run is deterministic.

import { Stop } from '../cpu/cpu.js';
import type { Domain } from './domain.js';
import { RunstateState } from './layout.js';
import { setRunstate } from './runstate.js';
import { crashDomain, fireTimers, nextTimerNsOf, shutdownDomain } from './sched.js';
import type { Vcpu } from './vcpu.js';
import type { Xen } from './xen.js';

/** Instructions a vCPU runs before the next one gets its turn. */
export const SLICE_INSNS = 100_000;

export type HostStop =
  | { kind: 'done' }        // the `until` predicate became true (e.g. the domain shut down)
  | { kind: 'timeout' }     // virtual time reached the limit
  | { kind: 'limit' }       // the instruction limit
  | { kind: 'idle' };       // every vCPU blocked with no timer armed: nothing can ever happen

export interface HostLimits {
  maxInsns?: number;
  /** Virtual time limit, ns of Xen system time. */
  timeoutNs?: number;
  /** Stop when this returns true (checked between slices). */
  until?: () => boolean;
}

export function runnableVcpus(xen: Xen): Vcpu[] {
  const out: Vcpu[] = [];
  for (const d of xen.domains.values()) {
    if (d.state !== 'running') continue;
    for (const v of d.vcpus) if (v.online && !v.blocked) out.push(v);
  }
  return out;
}

function allVcpus(xen: Xen): Vcpu[] {
  const out: Vcpu[] = [];
  for (const d of xen.domains.values()) if (d.state === 'running') for (const v of d.vcpus) if (v.online) out.push(v);
  return out;
}

/** Run one vCPU for up to `insns` instructions; returns how many it retired. */
export function runSlice(xen: Xen, v: Vcpu, insns: number): number {
  const cpu = v.cpu;
  cpu.cycles = xen.cycles;
  cpu.stopRequest = false;
  setRunstate(v, RunstateState.RUNNING);
  const next = nextTimerNsOf(v);
  if (next !== Infinity) cpu.eventAt = Math.min(cpu.eventAt, next);
  const before = cpu.insns;
  const s = cpu.run(insns);
  xen.cycles = Math.max(xen.cycles, cpu.cycles);
  if (s === Stop.Fault) {
    const f = cpu.stopFault;
    crashDomain(v.domain, `unhandled ${f ? f.name : 'exception'} at rip 0x${cpu.rip.toString(16)}`);
  } else if (s === Stop.Halt) {
    cpu.halted = false;
    v.blocked = true;
  }
  if (!v.blocked && v.online) setRunstate(v, RunstateState.RUNNABLE);
  return cpu.insns - before;
}

export function runHost(xen: Xen, limits: HostLimits = {}): HostStop {
  const maxInsns = limits.maxInsns ?? Infinity;
  const timeout = limits.timeoutNs ?? Infinity;
  let retired = 0;
  for (;;) {
    if (limits.until?.()) return { kind: 'done' };
    if (retired >= maxInsns) return { kind: 'limit' };
    if (xen.now() >= timeout) return { kind: 'timeout' };
    const now = xen.now();
    for (const v of allVcpus(xen)) fireTimers(v, now);
    const run = runnableVcpus(xen);
    if (run.length === 0) {
      // Idle: jump to the next timer of any vCPU, or give up if none is armed.
      let next = Infinity;
      for (const v of allVcpus(xen)) next = Math.min(next, nextTimerNsOf(v));
      for (const d of xen.domains.values()) for (const w of d.watchdogs) if (w >= 0) next = Math.min(next, w);
      if (next === Infinity) {
        if (limits.until?.()) return { kind: 'done' };
        return { kind: 'idle' };
      }
      if (next > timeout) { xen.cycles = Math.max(xen.cycles, timeout); return { kind: 'timeout' }; }
      xen.cycles = Math.max(xen.cycles, next);
      checkWatchdogs(xen);
      continue;
    }
    for (const v of run) {
      if (!v.online || v.blocked || v.domain.state !== 'running') continue;
      const n = Math.min(SLICE_INSNS, maxInsns - retired);
      if (n <= 0) break;
      retired += runSlice(xen, v, n);
      if (xen.now() >= timeout) break;
    }
    checkWatchdogs(xen);
  }
}

function checkWatchdogs(xen: Xen): void {
  const now = xen.now();
  for (const d of xen.domains.values()) {
    if (d.state !== 'running') continue;
    for (let i = 0; i < d.watchdogs.length; i++) {
      if (d.watchdogs[i] >= 0 && now >= d.watchdogs[i]) {
        d.watchdogs[i] = -1;
        xen.printk(`d${d.id}: watchdog ${i + 1} expired`);
        crashDomainWatchdog(d);
      }
    }
  }
}

function crashDomainWatchdog(d: Domain): void { shutdownDomain(d, 4, 'watchdog'); }
