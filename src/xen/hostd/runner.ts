// The host's scheduler on the Node event loop: runHost (xen/host.ts) in chunks, with the
// event loop free between them so control requests and console traffic are served.
//
// Pacing ("clock"):
//  - virtual: as `sim run` does. When every vCPU blocks, virtual time jumps straight to the
//    next timer; the host runs flat out while any timer is armed.
//  - realtime (the default of `sim boot --foreground/--daemon`): busy time passes at
//    simulation speed and idle time in real time. When every vCPU blocks, virtual time
//    still jumps to the next timer, but only once the wall clock reaches it: the host
//    sleeps in a setTimeout meanwhile. Virtual time never runs more than SLACK_NS ahead of
//    the wall clock; when it falls behind (a busy guest) by more than MAX_LAG_NS, the
//    anchor moves instead of letting guests see a burst of catch-up ticks.
// In both modes, when nothing can ever happen (no domain runnable, no timer armed), the
// host does nothing until kick() (a control request, console input, a new domain): an idle
// host never spins.
//
// The wall clock is injected (no clock is read in xen/): realtime pacing needs one.

import { runHost, runnableVcpus } from '../host.js';
import { nextTimerNsOf } from '../sched.js';
import type { Xen } from '../xen.js';

export type Pace = 'realtime' | 'virtual';

export interface RunnerOptions {
  pace: Pace;
  /** Monotonic wall clock in ms (e.g. performance.now). Required for realtime pacing. */
  clock?: () => number;
  /** Instructions per runHost call. */
  chunkInsns?: number;
  /** With a clock: keep running chunks for this many ms before yielding to the event loop. */
  budgetMs?: number;
  /** A bug in the model escaped runHost or the service hook: reported here; the loop backs
   *  off for ERROR_BACKOFF_MS and carries on (a host must outlive one bad domain). */
  onError?: (e: unknown) => void;
}

export const ERROR_BACKOFF_MS = 100;

/** How far virtual time may run ahead of the wall clock (realtime). */
export const SLACK_NS = 2_000_000;
/** How far it may fall behind before the anchor moves (realtime). */
export const MAX_LAG_NS = 100_000_000;

type ChunkResult = { kind: 'busy' } | { kind: 'wait'; ms: number } | { kind: 'idle' };

export class HostRunner {
  /** Event-loop turns that ran the scheduler, and runHost calls (for `sim info` and tests). */
  steps = 0;
  chunks = 0;
  /** Set (by a shutdown callback) to make runHost return at the next slice boundary. */
  interrupt = false;
  /** What the loop is doing now. */
  state: 'scheduled' | 'sleeping' | 'idle' | 'stopped' = 'idle';
  private wall0 = 0;
  private virt0 = 0;
  private immediate: NodeJS.Immediate | null = null;
  private timer: NodeJS.Timeout | null = null;
  private inStep = false;
  private rerun = false;
  private readonly chunkInsns: number;
  private readonly budgetMs: number;

  constructor(private readonly xen: Xen, private readonly service: () => void, private readonly o: RunnerOptions) {
    if (o.pace === 'realtime' && !o.clock) throw new Error('realtime pacing needs a wall clock');
    this.chunkInsns = o.chunkInsns ?? (o.clock ? 200_000 : 1_000_000);
    this.budgetMs = o.budgetMs ?? 25;
    if (o.clock) { this.wall0 = o.clock(); this.virt0 = xen.now(); }
  }

  /** Something changed (a domain was created or unpaused, an event or input arrived): run soon. */
  kick(): void {
    if (this.state === 'stopped') return;
    if (this.inStep) { this.rerun = true; return; }
    if (this.immediate) return;
    if (this.timer) { clearTimeout(this.timer); this.timer = null; }
    this.state = 'scheduled';
    this.immediate = setImmediate(() => this.step());
  }

  stop(): void {
    this.state = 'stopped';
    if (this.immediate) { clearImmediate(this.immediate); this.immediate = null; }
    if (this.timer) { clearTimeout(this.timer); this.timer = null; }
  }

  private isStopped(): boolean { return this.state === 'stopped'; }

  private step(): void {
    this.immediate = null;
    if (this.state === 'stopped') return;
    this.steps++;
    this.inStep = true;
    const clock = this.o.clock;
    const t0 = clock ? clock() : 0;
    let r: ChunkResult;
    try {
      for (;;) {
        this.rerun = false;
        r = this.chunk();
        this.service();
        if (this.isStopped()) return;
        if (this.rerun) continue;
        if (r.kind === 'busy' && clock && clock() - t0 < this.budgetMs) continue;
        break;
      }
    } catch (e) {
      this.o.onError?.(e);
      r = { kind: 'wait', ms: ERROR_BACKOFF_MS };
    } finally {
      this.inStep = false;
    }
    if (r.kind === 'busy') { this.kick(); return; }
    if (r.kind === 'wait') {
      this.state = 'sleeping';
      this.timer = setTimeout(() => { this.timer = null; this.kick(); }, Math.max(1, Math.ceil(r.ms)));
      return;
    }
    this.state = 'idle';
  }

  private chunk(): ChunkResult {
    const xen = this.xen;
    this.chunks++;
    let bound = Infinity;
    const clock = this.o.clock;
    if (this.o.pace === 'realtime' && clock) {
      const now = clock();
      if (this.virtAt(now) - xen.now() > MAX_LAG_NS) { this.wall0 = now; this.virt0 = xen.now(); }
      bound = this.virtAt(now) + SLACK_NS;
    }
    const s = runHost(xen, { maxInsns: this.chunkInsns, timeoutNs: bound, until: () => this.interrupt });
    this.interrupt = false;
    if (s.kind === 'limit' || s.kind === 'done') return { kind: 'busy' };
    if (s.kind === 'idle') return { kind: 'idle' };
    // timeout: virtual time reached the wall clock (realtime only).
    const now = clock!();
    let target: number;
    if (runnableVcpus(xen).length > 0) target = xen.now();
    else {
      target = nextDeadlineNs(xen);
      if (target === Infinity) return { kind: 'idle' };
    }
    const ms = this.wallOf(target) - now;
    return ms <= 0 ? { kind: 'busy' } : { kind: 'wait', ms };
  }

  private virtAt(wallMs: number): number { return this.virt0 + (wallMs - this.wall0) * 1e6; }
  private wallOf(virtNs: number): number { return this.wall0 + (virtNs - this.virt0) / 1e6 - SLACK_NS / 1e6; }
}

/** The earliest timer or watchdog deadline (ns) of any running domain, or Infinity. */
export function nextDeadlineNs(xen: Xen): number {
  let next = Infinity;
  for (const d of xen.domains.values()) {
    if (d.state !== 'running') continue;
    for (const v of d.vcpus) if (v.online) next = Math.min(next, nextTimerNsOf(v));
    for (const w of d.watchdogs) if (w >= 0) next = Math.min(next, w);
  }
  return next;
}
