// `sim run KERNEL [--memory MB] [--cmdline STR] [--ramdisk FILE] [--max-insns N] [--timeout S]`
// and `sim create -c FILE`: one PV domU whose console is this terminal. The guest's bytes go
// to stdout unchanged; the exit status says how the guest ended (EXIT_CODES).

import { readFileSync } from 'node:fs';
import path from 'node:path';
import { KernelImageError } from '../guests/image.js';
import { parseXlConfig, XlConfigError, type XlConfig } from '../guests/xlcfg.js';
import { PhysMem } from '../mmu/physmem.js';
import { BuildError } from '../xen/builder.js';
import { runHost } from '../xen/host.js';
import { createPvDomain } from '../xen/toolstack.js';
import { Xen } from '../xen/xen.js';
import { UsageError } from './errors.js';

/** Exit status of `sim run` / `sim create -c` by how the guest ended. */
export const EXIT_CODES = {
  poweroff: 0, usage: 2, crash: 3, reboot: 4, suspend: 5, watchdog: 6, soft_reset: 7,
  timeout: 124, limit: 125, idle: 126, internal: 70,
} as const;
const BY_REASON = [EXIT_CODES.poweroff, EXIT_CODES.reboot, EXIT_CODES.suspend, EXIT_CODES.crash, EXIT_CODES.watchdog, EXIT_CODES.soft_reset];
const REASON_NAMES = ['poweroff', 'reboot', 'suspend', 'crash', 'watchdog', 'soft_reset'];

export interface RunArgs {
  kernel: string;
  memory?: number;
  cmdline?: string;
  ramdisk?: string;
  maxInsns?: number;
  timeout?: number;
  vcpus?: number;
  name?: string;
  verbose?: boolean;
}

function readInput(what: string, file: string): Uint8Array {
  try { return readFileSync(file); } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UsageError(`cannot read ${what} ${file}: ${code === 'ENOENT' ? 'no such file' : code ?? (e as Error).message}`);
  }
}

/** Run one PV guest to completion; resolves to the exit status. */
export async function runCommand(a: RunArgs): Promise<number> {
  const memory = a.memory ?? 128;
  if (!Number.isInteger(memory) || memory < 2 || memory > 16384) throw new UsageError(`--memory: ${a.memory} is not a size in MiB between 2 and 16384`);
  const maxInsns = a.maxInsns ?? Infinity;
  if (a.maxInsns !== undefined && (!Number.isSafeInteger(a.maxInsns) || a.maxInsns < 0)) throw new UsageError(`--max-insns: ${a.maxInsns} is not a non-negative integer`);
  const timeoutS = a.timeout ?? Infinity;
  if (a.timeout !== undefined && (!(a.timeout > 0) || !Number.isFinite(a.timeout))) throw new UsageError(`--timeout: ${a.timeout} is not a positive number of seconds`);
  const vcpus = a.vcpus ?? 1;
  if (!Number.isInteger(vcpus) || vcpus < 1 || vcpus > 32) throw new UsageError(`--vcpus: ${a.vcpus} is not between 1 and 32`);
  const kernel = readInput('kernel', a.kernel);
  const ramdisk = a.ramdisk !== undefined ? readInput('ramdisk', a.ramdisk) : undefined;

  // Host memory: the guest plus room for Xen's own frames (M2P, shared pages).
  const hostMiB = memory + 16 + Math.ceil(memory / 512);
  const xen = new Xen(new PhysMem(hostMiB * 1048576));
  if (a.verbose) xen.onLog = (l) => process.stderr.write(l + '\n');
  const out = (b: Uint8Array) => { process.stdout.write(b); };
  // Domain ID 0 is dom0's (xenstore trusts it): the guest gets ID 1, as under xl.
  xen.newDomain('Domain-0');
  let dom;
  try {
    dom = createPvDomain(xen, {
      name: a.name ?? path.basename(a.kernel), kernel, ramdisk, memoryMiB: memory, vcpus,
      cmdline: a.cmdline ?? '', console: out,
    });
  } catch (e) {
    if (e instanceof KernelImageError || e instanceof BuildError) throw new UsageError(`${a.kernel}: ${e.message}`);
    throw e;
  }
  const d = dom.domain;

  // Console input from stdin, delivered between chunks of guest execution.
  const onData = (chunk: Buffer) => { dom.console.input(chunk); };
  if (!process.stdin.isTTY) process.stdin.on('data', onData);
  const timeoutNs = timeoutS * 1e9;
  let retired = 0;
  const CHUNK = 20_000_000;
  let stop;
  for (;;) {
    const before = totalInsns(xen);
    stop = runHost(xen, {
      maxInsns: Math.min(CHUNK, maxInsns - retired), timeoutNs, until: () => d.isDead,
    });
    retired += totalInsns(xen) - before;
    if (stop.kind !== 'limit' || retired >= maxInsns) break;
    await new Promise((r) => setImmediate(r));
  }
  process.stdin.off('data', onData);
  if (a.verbose) process.stderr.write(`sim: ${retired} instructions, ${(xen.now() / 1e9).toFixed(3)} s of virtual time\n`);
  if (!process.stdin.isTTY) process.stdin.pause();

  if (d.isDead) {
    const r = d.shutdownReason;
    if (r !== 0) process.stderr.write(`sim: domain '${d.name}' shut down: ${REASON_NAMES[r] ?? r} after ${retired} instructions\n`);
    if (r === 3 && !a.verbose) for (const l of xen.log.slice(-5)) process.stderr.write(l + '\n');
    return BY_REASON[r] ?? EXIT_CODES.crash;
  }
  const why = stop.kind === 'timeout' ? `virtual time limit of ${timeoutS} s reached`
    : stop.kind === 'limit' ? `instruction limit of ${maxInsns} reached`
    : stop.kind === 'idle' ? 'every vCPU is blocked with no timer armed (the guest can never run again)'
    : 'stopped';
  process.stderr.write(`sim: ${why}\n`);
  return stop.kind === 'timeout' ? EXIT_CODES.timeout : stop.kind === 'limit' ? EXIT_CODES.limit : EXIT_CODES.idle;
}

function totalInsns(xen: Xen): number {
  let n = 0;
  for (const d of xen.domains.values()) for (const v of d.vcpus) n += v.cpu.insns;
  return n;
}

/** `sim create -c FILE`: the guest an xl.cfg file describes, on this terminal. */
export async function createCommand(file: string, attach: boolean, extra: { maxInsns?: number; timeout?: number; verbose?: boolean }): Promise<number> {
  let cfg: XlConfig;
  let text: string;
  try { text = readFileSync(file, 'utf8'); } catch (e) { throw new UsageError(`cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`); }
  try { cfg = parseXlConfig(text, file); } catch (e) { if (e instanceof XlConfigError) throw new UsageError(e.message); throw e; }
  if (!attach) throw new UsageError('without a running host (sim boot --daemon, coming with the platform), sim create needs -c to run the guest on this terminal');
  if (cfg.type !== 'pv') throw new UsageError(`${file}: type '${cfg.type}' guests are not simulated yet (only pv)`);
  if (!cfg.kernel) throw new UsageError(`${file}: 'kernel' is required for a PV guest`);
  const resolve = (p: string) => (path.isAbsolute(p) ? p : path.resolve(path.dirname(file), p));
  for (const k of cfg.ignored) process.stderr.write(`sim: ${file}: '${k}' is not used by xensim yet\n`);
  if (cfg.disks.length || cfg.vifs.length) process.stderr.write(`sim: ${file}: disks and network interfaces are not simulated yet; ignoring them\n`);
  return runCommand({
    kernel: resolve(cfg.kernel), ramdisk: cfg.ramdisk ? resolve(cfg.ramdisk) : undefined, memory: cfg.memory,
    cmdline: cfg.cmdline, vcpus: cfg.vcpus, name: cfg.name, ...extra,
  });
}
