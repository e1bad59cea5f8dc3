// The xl-style verbs that drive a running host, and `sim boot --foreground / --daemon`
// that starts one.
//
//   sim boot --foreground [--state-dir DIR] [--memory MB] [--clock realtime|virtual]
//       a host in this process: prints the hypervisor log, runs until ^C or SIGTERM.
//   sim boot --daemon [--state-dir DIR] [--memory MB] [--clock realtime|virtual]
//       the same, detached (a new session, output to <state-dir>/daemon.out); returns once
//       the host answers on its socket. Stop it with: kill $(cat <state-dir>/hostd.pid).
//   sim create CFG [-c] [-p]      create a domain in the host (-c: attach its console,
//                                 -p: leave it paused). Without a host, `create -c` runs the
//                                 guest standalone on this terminal (cli/run.ts).
//   sim list [DOMAIN...]          xl list's table; Domain-0 (the host itself) first
//   sim console DOMAIN            attach: output streams to stdout, stdin goes to the guest,
//                                 ^] (0x1d) detaches; raw mode on a TTY; with pipes, the end
//                                 of input does not detach (output streams on until the
//                                 domain is gone or ^] arrives)
//   sim shutdown [-w] DOMAIN      ask it to power off (-w: wait until it has); reboot likewise
//   sim destroy | pause | unpause DOMAIN
//   sim info                      xl info's keys
//   sim dmesg [-c]                the hypervisor's printk ring (-c: clear it after printing)
// DOMAIN is a name or a domain ID. The state directory: --state-dir, $XENSIM_STATE_DIR or
// ~/.xensim/host (xen/hostd/statedir.ts). With no host there, every verb prints
// NO_HOST_MESSAGE on one line and exits 1; a failed operation prints "sim: <why>" and exits 1.
// `sim console` and `sim create -c` exit with run.ts's EXIT_CODES for how the domain ended
// (0 when detached or destroyed).

import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { startHost, HostStartError, DEFAULT_HOST_MEMORY_MIB } from '../xen/hostd/host.js';
import type { DomainRow, HostInfo } from '../xen/hostd/protocol.js';
import type { Pace } from '../xen/hostd/runner.js';
import { socketAnswers } from '../xen/hostd/server.js';
import { ensureStateDir, readPid, socketPathProblem, statePaths } from '../xen/hostd/statedir.js';
import { UsageError } from './errors.js';
import { HostClient, HostReplyError, NO_HOST_MESSAGE, NoHostError } from './host-client.js';
import { createCommand, EXIT_CODES } from './run.js';

/** Where a verb reads and writes (process streams by default; tests pass their own). */
export interface VerbIO {
  stdout: { write(s: string | Uint8Array): unknown };
  stderr: { write(s: string | Uint8Array): unknown };
  stdin?: NodeJS.ReadableStream & { isTTY?: boolean; setRawMode?: (on: boolean) => unknown };
}

const processIO = (): VerbIO => ({ stdout: process.stdout, stderr: process.stderr, stdin: process.stdin });

export interface HostArgs { stateDir?: string }

/** Run fn against the host; the no-host message and reply errors become exit status 1. */
async function withHost(a: HostArgs, io: VerbIO, fn: (c: HostClient) => Promise<number>): Promise<number> {
  let c: HostClient;
  try { c = await HostClient.connect(a.stateDir); } catch (e) {
    if (e instanceof NoHostError) { io.stderr.write(NO_HOST_MESSAGE + '\n'); return 1; }
    if (e instanceof HostReplyError) { io.stderr.write(`sim: ${e.message}\n`); return 1; }
    throw e;
  }
  try { return await fn(c); } catch (e) {
    if (e instanceof HostReplyError) { io.stderr.write(`sim: ${e.message}\n`); return 1; }
    throw e;
  } finally { c.close(); }
}

// ---- list, info, dmesg -------------------------------------------------------------------

export const LIST_HEADER = 'Name                                        ID   Mem VCPUs\tState\tTime(s)';

/** xl list's layout: "%-40s %5d %5lu %5d     %c%c%c%c%c%c  %8.1f". */
export function formatList(rows: DomainRow[]): string {
  const lines = [LIST_HEADER];
  for (const r of rows) {
    lines.push(`${r.name.padEnd(40)} ${String(r.domid).padStart(5)} ${String(r.memMiB).padStart(5)} ${String(r.vcpus).padStart(5)}     ${r.state}  ${r.timeS.toFixed(1).padStart(8)}`);
  }
  return lines.join('\n') + '\n';
}

export function listVerb(a: HostArgs & { domains?: string[] }, io: VerbIO = processIO()): Promise<number> {
  return withHost(a, io, async (c) => {
    let rows = await c.request<DomainRow[]>('list');
    const want = a.domains ?? [];
    if (want.length > 0) {
      const pick: DomainRow[] = [];
      for (const w of want) {
        const r = rows.find((x) => x.name === w || String(x.domid) === w);
        if (!r) { io.stderr.write(`sim: no domain '${w}' (see sim list)\n`); return 1; }
        pick.push(r);
      }
      rows = pick;
    }
    io.stdout.write(formatList(rows));
    return 0;
  });
}

/** xl info's layout: the key padded to 23 columns, then ": value". */
export function formatInfo(info: HostInfo): string {
  return Object.entries(info).map(([k, v]) => `${k.padEnd(23)}: ${v}`).join('\n') + '\n';
}

export function infoVerb(a: HostArgs, io: VerbIO = processIO()): Promise<number> {
  return withHost(a, io, async (c) => { io.stdout.write(formatInfo(await c.request<HostInfo>('info'))); return 0; });
}

export function dmesgVerb(a: HostArgs & { clear?: boolean }, io: VerbIO = processIO()): Promise<number> {
  return withHost(a, io, async (c) => {
    const r = await c.request<{ lines: string[] }>('dmesg', { clear: a.clear === true });
    if (r.lines.length) io.stdout.write(r.lines.join('\n') + '\n');
    return 0;
  });
}

// ---- pause, unpause, destroy, shutdown, reboot ---------------------------------------------

export function domainVerb(op: 'pause' | 'unpause' | 'destroy', a: HostArgs & { domain: string }, io: VerbIO = processIO()): Promise<number> {
  return withHost(a, io, async (c) => { await c.request(op, { domain: a.domain }); return 0; });
}

export function shutdownVerb(a: HostArgs & { domain: string; wait?: boolean; reboot?: boolean }, io: VerbIO = processIO()): Promise<number> {
  return withHost(a, io, async (c) => {
    const verb = a.reboot ? 'Rebooting' : 'Shutting down';
    const r = await c.request<{ domid: number; name: string; via: string; state: string }>('shutdown', { domain: a.domain, reason: a.reboot ? 'reboot' : 'poweroff', wait: a.wait === true });
    io.stderr.write(`${verb} domain ${r.domid}\n`);
    if (a.wait) io.stderr.write(`Domain ${r.domid} '${r.name}': ${r.state}\n`);
    return 0;
  });
}

// ---- console and create -------------------------------------------------------------------

const ESCAPE = 0x1d; // ^]

function exitFor(reason: string): number {
  if (reason === 'detached' || reason === 'destroyed') return 0;
  const k = reason as keyof typeof EXIT_CODES;
  if (k in EXIT_CODES) return EXIT_CODES[k];
  return 1;
}

/** Stream a console until the domain goes or ^] is typed. `start` sends the request that
 *  begins the attachment (create with console, or console). */
function attachConsole(c: HostClient, io: VerbIO, name: () => string, start: () => Promise<unknown>): Promise<number> {
  return new Promise<number>((resolve) => {
    const stdin = io.stdin;
    let done = false;
    let raw = false;
    const onData = (chunk: Buffer | string) => {
      const b = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      const i = b.indexOf(ESCAPE);
      if (i < 0) { c.sendInput(b); return; }
      c.sendInput(b.subarray(0, i));
      c.detach();
      finish(0);
    };
    const finish = (code: number) => {
      if (done) return;
      done = true;
      if (stdin) {
        stdin.off('data', onData);
        if (raw) stdin.setRawMode?.(false);
        stdin.pause();
        // A pipe's handle would keep the process alive after the verb returns.
        (stdin as { unref?: () => void }).unref?.();
      }
      resolve(code);
    };
    c.onConsole({
      out: (bytes) => { io.stdout.write(bytes); },
      end: (reason, who) => {
        if (reason !== 'detached' && reason !== 'destroyed' && reason !== 'poweroff') io.stderr.write(`sim: domain '${who ?? name()}' ended: ${reason}\n`);
        finish(exitFor(reason));
      },
    });
    start().then(() => {
      if (done || !stdin) return;
      if (stdin.isTTY && stdin.setRawMode) { stdin.setRawMode(true); raw = true; }
      stdin.on('data', onData);
      stdin.resume();
    }, (e: unknown) => {
      if (e instanceof HostReplyError) io.stderr.write(`sim: ${e.message}\n`);
      else io.stderr.write(`sim: ${(e as Error).message}\n`);
      finish(1);
    });
  });
}

export function consoleVerb(a: HostArgs & { domain: string }, io: VerbIO = processIO()): Promise<number> {
  return withHost(a, io, (c) => {
    let name = a.domain;
    return attachConsole(c, io, () => name, async () => { name = (await c.request<{ name: string }>('console', { domain: a.domain })).name; });
  });
}

export interface CreateArgs extends HostArgs {
  config: string;
  console?: boolean;
  paused?: boolean;
  /** Standalone-only options (no host): passed to cli/run.ts. */
  maxInsns?: number;
  timeout?: number;
  verbose?: boolean;
}

export async function createVerb(a: CreateArgs, io: VerbIO = processIO()): Promise<number> {
  const file = path.resolve(a.config);
  let text: string;
  try { text = readFileSync(file, 'utf8'); } catch (e) {
    throw new UsageError(`cannot read ${a.config}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  let c: HostClient;
  try { c = await HostClient.connect(a.stateDir); } catch (e) {
    if (e instanceof HostReplyError) { io.stderr.write(`sim: ${e.message}\n`); return 1; }
    if (!(e instanceof NoHostError)) throw e;
    // No host: `create -c` keeps running the guest on this terminal, as before hosts existed.
    if (a.console && !a.paused) return createCommand(a.config, true, { maxInsns: a.maxInsns, timeout: a.timeout, verbose: a.verbose });
    io.stderr.write(NO_HOST_MESSAGE + '\n');
    return 1;
  }
  try {
    if (a.maxInsns !== undefined || a.timeout !== undefined) throw new UsageError('--max-insns and --timeout only apply without a running host (sim create -c runs the guest standalone then)');
    io.stderr.write(`Parsing config from ${a.config}\n`);
    const args = { config: text, path: file, paused: a.paused === true };
    if (!a.console) {
      const row = await c.request<DomainRow>('create', args);
      io.stderr.write(`Created domain ${row.domid} '${row.name}'${a.paused ? ' (paused)' : ''}\n`);
      return 0;
    }
    let name = path.basename(a.config);
    return await attachConsole(c, io, () => name, async () => {
      name = (await c.request<DomainRow>('create', { ...args, console: true })).name;
    });
  } catch (e) {
    if (e instanceof HostReplyError) { io.stderr.write(`sim: ${e.message}\n`); return 1; }
    throw e;
  } finally { c.close(); }
}

// ---- the host -----------------------------------------------------------------------------

export interface BootHostArgs extends HostArgs {
  daemon?: boolean;
  foreground?: boolean;
  memory?: number;
  clock?: string;
  /** Set in the process `--daemon` starts. */
  detachedChild?: boolean;
  /** The script to run for --daemon (default: this process's, process.argv[1]). */
  simEntry?: string;
}

function pace(clock: string | undefined): Pace {
  if (clock === undefined || clock === 'realtime') return 'realtime';
  if (clock === 'virtual') return 'virtual';
  throw new UsageError(`--clock: '${clock}' is not realtime or virtual`);
}

function memoryOf(a: BootHostArgs): number {
  const m = a.memory ?? DEFAULT_HOST_MEMORY_MIB;
  if (!Number.isInteger(m) || m < 64 || m > 65536) throw new UsageError(`--memory: ${a.memory} is not a size in MiB between 64 and 65536`);
  return m;
}

function version(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? '0';
  } catch { return '0'; }
}

/** `sim boot --foreground`: a host in this process until ^C / SIGTERM. */
export async function bootForeground(a: BootHostArgs, io: VerbIO = processIO()): Promise<number> {
  const p = pace(a.clock);
  const memoryMiB = memoryOf(a);
  const wall = () => performance.timeOrigin + performance.now();
  let host;
  try {
    host = await startHost({
      stateDir: a.stateDir, memoryMiB, pace: p, clock: wall, version: version(),
      onPrintk: a.detachedChild ? undefined : (l) => { io.stdout.write(l + '\n'); },
      hostCpuSeconds: () => { const u = process.cpuUsage(); return (u.user + u.system) / 1e6; },
    });
  } catch (e) {
    if (e instanceof HostStartError) { io.stderr.write(`sim: ${e.message}\n`); return 1; }
    throw e;
  }
  const onSignal = (sig: NodeJS.Signals) => { void host.stop(`signal ${sig}`); };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const onHup = () => { /* a detached host outlives its terminal */ };
  if (a.detachedChild) process.on('SIGHUP', onHup);
  if (!a.detachedChild) io.stderr.write(`sim: host running (pid ${process.pid}), state dir ${host.paths.dir}; ^C stops it\n`);
  await host.stopped;
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  process.off('SIGHUP', onHup);
  return 0;
}

/** `sim boot --daemon`: start `sim boot --foreground` detached and wait until it answers. */
export async function bootDaemon(a: BootHostArgs, io: VerbIO = processIO()): Promise<number> {
  const paths = statePaths(a.stateDir);
  const bad = socketPathProblem(paths);
  if (bad) throw new UsageError(bad);
  pace(a.clock);
  const memoryMiB = memoryOf(a);
  if (await socketAnswers(paths.socket)) {
    io.stderr.write(`sim: a host is already running in ${paths.dir} (pid ${readPid(paths) ?? '?'})\n`);
    return 1;
  }
  ensureStateDir(paths);
  const entry = a.simEntry ?? process.argv[1];
  if (!entry) throw new UsageError('cannot tell which script to start as the daemon');
  const out = openSync(paths.daemonOut, 'a', 0o600);
  const args = [...process.execArgv, entry, 'boot', '--foreground', '--detached-child', '--state-dir', paths.dir,
    '--memory', String(memoryMiB), '--clock', a.clock ?? 'realtime'];
  const child = spawn(process.execPath, args, { detached: true, stdio: ['ignore', out, out], env: process.env });
  closeSync(out);
  let exited: number | null = null;
  child.once('exit', (code, sig) => { exited = code ?? (sig ? 128 : 1); });
  child.unref();
  for (let i = 0; i < 600; i++) {
    if (exited !== null) break;
    try {
      const c = await HostClient.connect(paths.dir);
      try {
        const r = await c.request<{ pid: number }>('ping');
        io.stdout.write(`xensim host started: pid ${r.pid}, state dir ${paths.dir}\n`);
        return 0;
      } finally { c.close(); }
    } catch (e) {
      if (e instanceof UsageError) throw e; // not yet answering: try again
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  let tail = '';
  try { tail = readFileSync(paths.daemonOut, 'utf8').trim().split('\n').slice(-5).join('\n'); } catch { /* none */ }
  io.stderr.write(`sim: the host did not start${exited !== null ? ` (exit status ${exited})` : ''}; see ${paths.daemonOut}\n${tail ? tail + '\n' : ''}`);
  if (exited === null) child.kill('SIGTERM');
  return 1;
}
