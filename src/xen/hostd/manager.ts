// The domain lifecycle manager of a running host: what libxl and xl's per-domain monitor
// do. It owns the Xen model and the scheduler loop (runner.ts), creates domains from xl.cfg
// text, pauses, unpauses, shuts down and destroys them, applies on_poweroff / on_reboot /
// on_crash / on_watchdog when a domain shuts down, and keeps each domain's console
// (console.ts).
//
// Decisions:
//  - Domain IDs start at 1. ID 0 is Domain-0, which here is the host process itself (the
//    toolstack and backends run in it; there is no dom0 guest). `list` shows it first, as
//    xl does: Mem 0, its own process CPU time, always "r-----". It cannot be paused,
//    shut down or destroyed.
//  - Restart ("restart", "rename-restart", "coredump-restart", "soft-reset") is destroy plus
//    create from the same config text, re-reading the kernel and ramdisk files: a new domain
//    ID, the same name, the same console (log and attached clients). A domain that shuts
//    down for a restart within QUICK_RESTART_NS of virtual time of being created, MAX_QUICK
//    times in a row, is destroyed instead ("restarting too fast"), as xend refused to loop.
//  - "coredump-destroy" is destroy (no core dumps yet). "preserve" leaves the domain in
//    its shutdown state (listed with 's', and 'c' for a crash) until `destroy`.
//  - on_watchdog comes from the config's raw 'on_watchdog' key (default destroy); a suspend
//    (SHUTDOWN_suspend) is preserved, as a toolstack saving the domain would find it.
//  - shutdown/reboot requests go through the guest's PV control interface (xenstore
//    control/shutdown) when a ShutdownControl is installed and the guest supports it;
//    otherwise the host shuts the domain down itself, as SCHEDOP_remote_shutdown from the
//    toolstack would (the guest does not get to clean up). No xenstore is connected to
//    guests yet, so today it is always the second path.
//  - pause is a flag, not Xen's counter: pausing twice then unpausing once runs the domain.
//  - Time(s) of a guest is the virtual CPU time its vCPUs ran (cycles = ns at 1 GHz).

import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Logger } from 'pino';
import { KernelImageError } from '../../guests/image.js';
import { parseXlConfig, XlConfigError, type XlAction, type XlConfig } from '../../guests/xlcfg.js';
import { BuildError } from '../builder.js';
import type { Domain } from '../domain.js';
import { XEN_EXTRAVERSION, XEN_MAJOR, XEN_MINOR } from '../hypercall/misc.js';
import { pageInfo, relinquishDomainMemory } from '../mm/pagetype.js';
import { gnttabReleaseDomain } from '../gnttab/ops.js';
import { releasePerdomain } from '../pv/mode.js';
import { destroyEvents } from '../evtchn/ops.js';
import { Stop } from '../../cpu/cpu.js';
import { crashDomain, shutdownDomain, stopVcpu } from '../sched.js';
import { createPvDomain, type PvDomain } from '../toolstack.js';
import type { Xen } from '../xen.js';
import { DomainConsole } from './console.js';
import { HostError, REASON_NAMES, type DomainRow, type HostInfo } from './protocol.js';
import { HostRunner, type Pace } from './runner.js';
import { consoleLogPath, type StatePaths } from './statedir.js';

export const QUICK_RESTART_NS = 1e9;
export const MAX_QUICK = 10;

/** The guest's PV control interface (xenstore control/shutdown), when there is one. */
export interface ShutdownControl {
  /** Ask the guest; false if it has no PV control interface (the host then acts itself). */
  request(d: Domain, reason: 'poweroff' | 'reboot'): boolean;
}

export interface ManagerOptions {
  xen: Xen;
  paths: StatePaths;
  log: Logger;
  pace: Pace;
  clock?: () => number;
  control?: ShutdownControl;
  /** Bytes of host memory (for info). */
  memoryMiB: number;
  /** The host process's own CPU time, seconds (Domain-0's Time(s)); default 0. */
  hostCpuSeconds?: () => number;
}

/** One run of a domain: a Domain and its domain ID. */
interface Incarnation {
  domain: Domain;
  pv: PvDomain;
  cpuNs: number;
  createdNs: number;
}

/** A domain as the toolstack knows it: stable across restarts. */
interface DomRec {
  name: string;
  cfg: XlConfig;
  cfgText: string;
  cfgPath: string;
  cur: Incarnation;
  console: DomainConsole;
  quickRestarts: number;
}

interface ShutdownWaiter { domid: number; resolve: (how: string) => void }

export class DomainManager {
  readonly xen: Xen;
  readonly runner: HostRunner;
  private readonly recs = new Map<number, DomRec>();
  private readonly pendingShutdowns: DomRec[] = [];
  private waiters: ShutdownWaiter[] = [];
  /** Old domain ID -> the ID of the domain that replaced it on restart (for shutdown -w). */
  private readonly restartedAs = new Map<number, number>();
  private readonly log: Logger;
  private stopped = false;

  constructor(private readonly o: ManagerOptions) {
    this.xen = o.xen;
    this.log = o.log;
    // Burn domain ID 0: it is Domain-0, the host itself (see the header).
    const dom0 = this.xen.newDomain('Domain-0');
    this.xen.domains.delete(dom0.id);
    this.runner = new HostRunner(this.xen, () => this.service(), { pace: o.pace, clock: o.clock, onError: (e) => this.internalError(e) });
  }

  // ---- lookup -----------------------------------------------------------------------------

  /** A domain by name or decimal ID; Domain-0 (the host) is refused with `what`. */
  find(spec: string, what: string): DomRec {
    if (spec === '0' || spec === 'Domain-0') throw new HostError('EINVAL', `cannot ${what} Domain-0: it is the host itself`);
    if (/^\d+$/.test(spec)) {
      const r = this.recs.get(Number(spec));
      if (r) return r;
    }
    for (const r of this.recs.values()) if (r.name === spec) return r;
    throw new HostError('ENOENT', `no domain '${spec}' (see sim list)`);
  }

  // ---- create -----------------------------------------------------------------------------

  /** `xl create`: a domain from the text of an xl.cfg file (relative paths from its directory). */
  create(cfgText: string, cfgPath: string, paused = false): DomainRow {
    let cfg: XlConfig;
    try { cfg = parseXlConfig(cfgText, cfgPath); } catch (e) {
      if (e instanceof XlConfigError) throw new HostError('EINVAL', e.message);
      throw e;
    }
    if (cfg.type !== 'pv') throw new HostError('EINVAL', `${cfgPath}: type '${cfg.type}' guests are not simulated yet (only pv)`);
    if (!cfg.kernel) throw new HostError('EINVAL', `${cfgPath}: 'kernel' is required for a PV guest`);
    if (cfg.name === 'Domain-0') throw new HostError('EEXIST', `${cfgPath}: the name Domain-0 is the host's`);
    for (const r of this.recs.values()) if (r.name === cfg.name) throw new HostError('EEXIST', `a domain named '${cfg.name}' already exists (ID ${r.cur.domain.id})`);
    const console = new DomainConsole(cfg.name, consoleLogPath(this.o.paths, cfg.name));
    let inc: Incarnation;
    try { inc = this.build(cfg, cfgPath, console); } catch (e) { console.close('failed'); throw e; }
    const rec: DomRec = { name: cfg.name, cfg, cfgText, cfgPath, cur: inc, console, quickRestarts: 0 };
    this.adopt(rec, inc, paused);
    const ignored = [...cfg.ignored, ...(cfg.disks.length ? ['disk'] : []), ...(cfg.vifs.length ? ['vif'] : [])];
    this.log.info({ event: 'create', domid: inc.domain.id, name: cfg.name, memoryMiB: cfg.memory, vcpus: cfg.vcpus, kernel: cfg.kernel, paused, ignored, config: cfgPath }, `created domain ${inc.domain.id} '${cfg.name}'`);
    return this.row(rec);
  }

  /** Build one incarnation; a failure leaves nothing behind. */
  private build(cfg: XlConfig, cfgPath: string, console: DomainConsole): Incarnation {
    const resolve = (p: string) => (path.isAbsolute(p) ? p : path.resolve(path.dirname(cfgPath), p));
    const read = (what: string, p: string): Uint8Array => {
      try { return readFileSync(resolve(p)); } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        throw new HostError('ENOENT', `cannot read ${what} ${resolve(p)}: ${code === 'ENOENT' ? 'no such file' : code ?? (e as Error).message}`);
      }
    };
    const kernel = read('kernel', cfg.kernel!);
    const ramdisk = cfg.ramdisk ? read('ramdisk', cfg.ramdisk) : undefined;
    const before = new Set(this.xen.domains.keys());
    const sink = (b: Uint8Array) => console.write(b);
    try {
      const pv = createPvDomain(this.xen, { name: cfg.name, kernel, ramdisk, memoryMiB: cfg.memory, vcpus: cfg.vcpus, cmdline: cfg.cmdline, console: sink });
      return { domain: pv.domain, pv, cpuNs: 0, createdNs: this.xen.now() };
    } catch (e) {
      for (const [id, d] of this.xen.domains) if (!before.has(id)) this.teardown(d);
      if (e instanceof KernelImageError) throw new HostError('EINVAL', `${resolve(cfg.kernel!)}: ${e.message}`);
      if (e instanceof BuildError) throw new HostError(/memory/.test(e.message) ? 'ENOMEM' : 'EINVAL', `${cfg.name}: ${e.message}`);
      throw e;
    }
  }

  /** Make an incarnation the record's current one and let it run. */
  private adopt(rec: DomRec, inc: Incarnation, paused: boolean): void {
    rec.cur = inc;
    const d = inc.domain;
    this.recs.set(d.id, rec);
    rec.console.backend = inc.pv.console;
    // Per-domain CPU time: the cycles each of its vCPUs runs (runHost calls cpu.run per slice).
    for (const v of d.vcpus) {
      const cpu = v.cpu;
      const run = cpu.run.bind(cpu);
      cpu.run = (max: number) => {
        const c0 = cpu.cycles;
        try { return run(max); } catch (e) {
          // A bug in the simulator while running this domain: it crashes, nothing else does.
          this.internalError(e, d);
          return Stop.Request;
        } finally { inc.cpuNs += Math.max(0, cpu.cycles - c0); }
      };
    }
    d.onShutdown = () => {
      this.pendingShutdowns.push(rec);
      this.runner.interrupt = true;
    };
    if (paused) d.state = 'paused';
    rec.console.pump();
    this.runner.kick();
  }

  /** An exception escaped the model: log it; crash the domain it happened in, if known. */
  private internalError(e: unknown, d?: Domain): void {
    const msg = e instanceof Error ? e.message : String(e);
    this.log.error({ event: 'internal-error', domid: d?.id, error: e instanceof Error ? e.stack : msg }, `internal error: ${msg}`);
    if (d && !d.isDead) {
      this.xen.printk(`d${d.id}: simulator internal error: ${msg}`);
      crashDomain(d, 'simulator internal error');
    }
  }

  // ---- teardown ---------------------------------------------------------------------------

  /** Free everything of one Domain (Xen's domain_kill + relinquish_resources). */
  private teardown(d: Domain): void {
    for (const v of d.vcpus) { stopVcpu(v); v.online = false; }
    d.state = 'dying';
    destroyEvents(d); // evtchn_destroy: peers go unbound, FIFO frames are released
    gnttabReleaseDomain(this.xen, d.id);
    relinquishDomainMemory(pageInfo(this.xen), d);
    releasePerdomain(d);
    this.xen.domains.delete(d.id);
    const code = this.xen.code;
    if (code) {
      for (const v of d.vcpus) { const i = code.users.indexOf(v.cpu); if (i >= 0) code.users.splice(i, 1); }
      // Its frames may be handed to another domain: no decoded block may survive them.
      code.clear();
    }
  }

  /** `xl destroy`, or the end of a domain whose action is destroy. */
  private destroyRec(rec: DomRec, why: string): void {
    const d = rec.cur.domain;
    const freedBefore = this.xen.frames.free;
    this.recs.delete(d.id);
    this.teardown(d);
    rec.console.close(why);
    this.log.info({ event: 'destroy', domid: d.id, name: rec.name, why, freedFrames: this.xen.frames.free - freedBefore }, `destroyed domain ${d.id} '${rec.name}' (${why})`);
    this.xen.printk(`d${d.id}: destroyed (${why})`);
    this.settleWaiters();
  }

  private restartRec(rec: DomRec, reason: string): void {
    const old = rec.cur.domain;
    const ranNs = this.xen.now() - rec.cur.createdNs;
    rec.quickRestarts = ranNs < QUICK_RESTART_NS ? rec.quickRestarts + 1 : 0;
    if (rec.quickRestarts > MAX_QUICK) {
      this.log.warn({ event: 'restart-refused', domid: old.id, name: rec.name, restarts: MAX_QUICK }, `domain '${rec.name}' is restarting too fast: destroying it`);
      this.xen.printk(`d${old.id}: '${rec.name}' restarted ${MAX_QUICK} times within ${QUICK_RESTART_NS / 1e9} s each: not restarting`);
      this.destroyRec(rec, 'restarting too fast');
      return;
    }
    this.recs.delete(old.id);
    this.teardown(old);
    let inc: Incarnation;
    try { inc = this.build(rec.cfg, rec.cfgPath, rec.console); } catch (e) {
      const msg = (e as Error).message;
      this.log.error({ event: 'restart-failed', domid: old.id, name: rec.name, error: msg }, `could not restart '${rec.name}': ${msg}`);
      this.xen.printk(`d${old.id}: restart of '${rec.name}' failed: ${msg}`);
      rec.console.close('restart failed');
      this.settleWaiters();
      return;
    }
    this.adopt(rec, inc, false);
    this.restartedAs.set(old.id, inc.domain.id);
    this.settleWaiters();
    this.log.info({ event: 'restart', olddomid: old.id, domid: inc.domain.id, name: rec.name, reason }, `restarted '${rec.name}' as domain ${inc.domain.id} (${reason})`);
  }

  // ---- shutdown handling -------------------------------------------------------------------

  /** After each chunk: apply the configured action of domains that shut down, flush consoles,
   *  feed queued console input. */
  service(): void {
    while (this.pendingShutdowns.length > 0) {
      const rec = this.pendingShutdowns.shift()!;
      if (!this.recs.has(rec.cur.domain.id) || rec.cur.domain.state !== 'shutdown') continue;
      this.applyShutdownAction(rec);
    }
    for (const rec of this.recs.values()) {
      rec.console.flush();
      if (rec.console.queuedInput > 0 && rec.console.pump()) this.runner.kick();
    }
  }

  private actionFor(rec: DomRec, reason: number): XlAction {
    switch (reason) {
      case 0: return rec.cfg.onPoweroff;
      case 1: return rec.cfg.onReboot;
      case 2: return 'preserve';
      case 3: return rec.cfg.onCrash;
      case 4: { const w = rec.cfg.raw.get('on_watchdog'); return typeof w === 'string' && isAction(w) ? w : 'destroy'; }
      case 5: { const w = rec.cfg.raw.get('on_soft_reset'); return typeof w === 'string' && isAction(w) ? w : 'soft-reset'; }
      default: return 'destroy';
    }
  }

  private applyShutdownAction(rec: DomRec): void {
    const d = rec.cur.domain;
    const reason = REASON_NAMES[d.shutdownReason] ?? `reason ${d.shutdownReason}`;
    const action = this.actionFor(rec, d.shutdownReason);
    this.log.info({ event: 'shutdown', domid: d.id, name: rec.name, reason, action }, `domain ${d.id} '${rec.name}' shut down (${reason}): ${action}`);
    switch (action) {
      case 'restart': case 'rename-restart': case 'coredump-restart': case 'soft-reset':
        this.restartRec(rec, reason);
        return;
      case 'preserve':
        rec.console.end(reason);
        this.settleWaiters();
        return;
      default:
        this.destroyRec(rec, reason);
    }
  }

  // ---- control operations ---------------------------------------------------------------

  pause(spec: string): { domid: number; name: string } {
    const rec = this.find(spec, 'pause');
    const d = rec.cur.domain;
    if (d.isDead) throw new HostError('EINVAL', `domain ${d.id} '${rec.name}' is shut down; it cannot be paused`);
    if (d.state !== 'paused') {
      d.state = 'paused';
      for (const v of d.vcpus) stopVcpu(v);
      this.log.info({ event: 'pause', domid: d.id, name: rec.name }, `paused domain ${d.id}`);
    }
    return { domid: d.id, name: rec.name };
  }

  unpause(spec: string): { domid: number; name: string } {
    const rec = this.find(spec, 'unpause');
    const d = rec.cur.domain;
    if (d.state !== 'paused') throw new HostError('EINVAL', `domain ${d.id} '${rec.name}' is not paused`);
    d.state = 'running';
    this.log.info({ event: 'unpause', domid: d.id, name: rec.name }, `unpaused domain ${d.id}`);
    this.runner.kick();
    return { domid: d.id, name: rec.name };
  }

  destroy(spec: string): { domid: number; name: string } {
    const rec = this.find(spec, 'destroy');
    const id = rec.cur.domain.id;
    this.destroyRec(rec, 'destroyed');
    return { domid: id, name: rec.name };
  }

  /** `xl shutdown` / `xl reboot`; with wait, resolves once that domain ID is gone or shut down
   *  for good. */
  async shutdown(spec: string, reason: 'poweroff' | 'reboot', wait: boolean): Promise<{ domid: number; name: string; via: string; state: string }> {
    const rec = this.find(spec, reason === 'reboot' ? 'reboot' : 'shut down');
    const d = rec.cur.domain;
    const id = d.id;
    if (d.isDead) throw new HostError('EINVAL', `domain ${id} '${rec.name}' is already shut down`);
    let via = 'xenstore';
    if (!this.o.control?.request(d, reason)) {
      via = 'hypervisor';
      if (d.state === 'paused') d.state = 'running'; // a paused domain still shuts down
      shutdownDomain(d, reason === 'reboot' ? 1 : 0, 'requested by the toolstack');
    }
    this.log.info({ event: 'shutdown-request', domid: id, name: rec.name, reason, via }, `asked domain ${id} to ${reason} (via ${via})`);
    this.service();
    this.runner.kick();
    if (!wait) return { domid: id, name: rec.name, via, state: this.stateOf(id) };
    const how = await new Promise<string>((resolve) => { this.waiters.push({ domid: id, resolve }); this.settleWaiters(); });
    return { domid: id, name: rec.name, via, state: how };
  }

  private stateOf(domid: number): string {
    const r = this.recs.get(domid);
    const next = this.restartedAs.get(domid);
    if (!r) return next !== undefined ? `restarted as domain ${next}` : 'destroyed';
    const d = r.cur.domain;
    return d.isDead ? `shutdown (${REASON_NAMES[d.shutdownReason] ?? d.shutdownReason})` : d.state;
  }

  private settleWaiters(): void {
    if (this.waiters.length === 0) return;
    const keep: ShutdownWaiter[] = [];
    for (const w of this.waiters) {
      const r = this.recs.get(w.domid);
      if (r && !r.cur.domain.isDead) keep.push(w);
      else w.resolve(this.stateOf(w.domid));
    }
    this.waiters = keep;
  }

  // ---- console -------------------------------------------------------------------------------

  consoleOf(spec: string): { rec: { name: string; domid: number }; console: DomainConsole } {
    const rec = this.find(spec, 'attach to the console of');
    return { rec: { name: rec.name, domid: rec.cur.domain.id }, console: rec.console };
  }

  /** Console input for a domain's console, then let it run. */
  consoleInput(console: DomainConsole, bytes: Uint8Array): boolean {
    const ok = console.input(bytes);
    this.runner.kick();
    return ok;
  }

  // ---- reports -------------------------------------------------------------------------------

  private row(rec: DomRec): DomainRow {
    const d = rec.cur.domain;
    let r = '-', b = '-', p = '-', s = '-', c = '-', x = '-';
    if (d.state === 'running') {
      for (const v of d.vcpus) {
        if (!v.online) continue;
        if (v.blocked) b = 'b'; else r = 'r';
      }
    } else if (d.state === 'paused') p = 'p';
    else if (d.state === 'shutdown') { s = 's'; c = '-rscwS'[d.shutdownReason] ?? '?'; }
    else if (d.state === 'dying') x = 'd';
    const row: DomainRow = {
      name: rec.name, domid: d.id, memMiB: Math.floor(d.totPages / 256),
      vcpus: d.vcpus.filter((v) => v.online).length, state: r + b + p + s + c + x,
      timeS: rec.cur.cpuNs / 1e9,
    };
    if (d.isDead) row.shutdown = REASON_NAMES[d.shutdownReason] ?? String(d.shutdownReason);
    return row;
  }

  list(): DomainRow[] {
    const dom0: DomainRow = { name: 'Domain-0', domid: 0, memMiB: 0, vcpus: 1, state: 'r-----', timeS: this.o.hostCpuSeconds?.() ?? 0 };
    const rows = [...this.recs.values()].map((r) => this.row(r)).sort((a, b) => a.domid - b.domid);
    return [dom0, ...rows];
  }

  info(extra: Record<string, string | number> = {}): HostInfo {
    const xen = this.xen;
    const free = xen.frames.free;
    return {
      host: os.hostname(),
      release: os.release(),
      version: os.version(),
      machine: 'x86_64',
      nr_cpus: 1,
      max_cpu_id: 0,
      nr_nodes: 1,
      cores_per_socket: 1,
      threads_per_core: 1,
      cpu_mhz: 1000,
      virt_caps: 'pv',
      total_memory: this.o.memoryMiB,
      free_memory: Math.floor(free / 256),
      free_cpus: 0,
      xen_major: XEN_MAJOR,
      xen_minor: XEN_MINOR,
      xen_extra: XEN_EXTRAVERSION,
      xen_version: `${XEN_MAJOR}.${XEN_MINOR}${XEN_EXTRAVERSION}`,
      xen_caps: 'xen-3.0-x86_64',
      xen_scheduler: 'xensim-rr',
      xen_pagesize: 4096,
      platform_params: 'virt_start=0xffff800000000000',
      xen_changeset: 'xensim',
      xen_commandline: xen.commandLine,
      cc_compiler: `node ${process.version}`,
      xend_config_format: 4,
      domains: this.recs.size,
      free_frames: free,
      virtual_time_s: Number((xen.now() / 1e9).toFixed(6)),
      clock: this.o.pace,
      scheduler_state: this.runner.state,
      ...extra,
    };
  }

  dmesg(clear: boolean): string[] {
    const lines = [...this.xen.log];
    if (clear) this.xen.log.length = 0;
    return lines;
  }

  /** Stop scheduling and close every console ("host-stopped"); domains are not torn down. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.runner.stop();
    for (const rec of this.recs.values()) rec.console.close('host-stopped');
    for (const w of this.waiters) w.resolve('host-stopped');
    this.waiters = [];
  }

  /** For tests: the current Domain of a record. */
  domainOf(spec: string): Domain { return this.find(spec, 'inspect').cur.domain; }
}

const ACTIONS = new Set(['destroy', 'restart', 'preserve', 'rename-restart', 'coredump-destroy', 'coredump-restart', 'soft-reset']);
function isAction(s: string): s is XlAction { return ACTIONS.has(s); }
