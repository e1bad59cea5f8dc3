// The host's state directory: where a running host keeps its control socket, pid file,
// logs and per-domain console logs, and how a client finds it.
//
//   <state-dir>/hostd.sock         control socket (protocol.ts), mode 0600
//   <state-dir>/xenstored.sock     xenstored's socket (xs_wire), mode 0600
//   <state-dir>/hostd.pid          pid of the host process (created exclusively: one host per dir)
//   <state-dir>/hypervisor.log     structured log (pino, one JSON object a line)
//   <state-dir>/daemon.out         stdout/stderr of a host started with --daemon
//   <state-dir>/console/<name>.log every byte each domain wrote to its console, appended
//
// Which directory: --state-dir, else $XENSIM_STATE_DIR, else ~/.xensim/host. The same rule
// for root: a host is a per-user process (like a user's QEMU), not a system service, so
// there is no /run/xensim default; root can pass --state-dir /run/xensim.

import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';

export interface StatePaths {
  dir: string;
  socket: string;
  /** xenstored's Unix socket (xs_wire, for xenstore-* tools and sim xenstore-*). */
  xenstoreSocket: string;
  pidFile: string;
  hypervisorLog: string;
  daemonOut: string;
  consoleDir: string;
}

/** The longest path a Unix socket address holds on Linux (sun_path is 108 bytes). */
const SUN_PATH_MAX = 107;

export function defaultStateDir(env: NodeJS.ProcessEnv = process.env): string {
  const e = env.XENSIM_STATE_DIR;
  if (e && e.trim() !== '') return path.resolve(e);
  return path.join(homedir(), '.xensim', 'host');
}

export function statePaths(dir?: string, env: NodeJS.ProcessEnv = process.env): StatePaths {
  const d = path.resolve(dir ?? defaultStateDir(env));
  return {
    dir: d,
    socket: path.join(d, 'hostd.sock'),
    xenstoreSocket: path.join(d, 'xenstored.sock'),
    pidFile: path.join(d, 'hostd.pid'),
    hypervisorLog: path.join(d, 'hypervisor.log'),
    daemonOut: path.join(d, 'daemon.out'),
    consoleDir: path.join(d, 'console'),
  };
}

/** Why a socket path cannot be used, or null. */
export function socketPathProblem(p: StatePaths): string | null {
  if (Buffer.byteLength(p.socket) > SUN_PATH_MAX) {
    return `the state directory ${p.dir} is too long for a Unix socket path (${Buffer.byteLength(p.socket)} > ${SUN_PATH_MAX} bytes); use a shorter --state-dir`;
  }
  return null;
}

/** Create the state directory (0700) and its console directory. */
export function ensureStateDir(p: StatePaths): void {
  mkdirSync(p.dir, { recursive: true, mode: 0o700 });
  mkdirSync(p.consoleDir, { recursive: true, mode: 0o700 });
}

/** The pid in the pid file, or null. */
export function readPid(p: StatePaths): number | null {
  try {
    const n = Number(readFileSync(p.pidFile, 'utf8').trim());
    return Number.isSafeInteger(n) && n > 0 ? n : null;
  } catch { return null; }
}

export function processAlive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch (e) { return (e as NodeJS.ErrnoException).code === 'EPERM'; }
}

/**
 * Take the pid file for `pid` (exclusive create). A pid file whose process is gone is stale
 * and replaced. Returns null on success, or the pid of the live host that holds it.
 */
export function claimPidFile(p: StatePaths, pid: number): number | null {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(p.pidFile, 'wx', 0o600);
      writeSync(fd, `${pid}\n`);
      closeSync(fd);
      return null;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const other = readPid(p);
      if (other !== null && other !== pid && processAlive(other)) return other;
      rmSync(p.pidFile, { force: true });
    }
  }
  return readPid(p) ?? -1;
}

/** Remove the pid file if it is ours. */
export function releasePidFile(p: StatePaths, pid: number): void {
  if (readPid(p) === pid) rmSync(p.pidFile, { force: true });
}

/** A console log's path for a domain name (names are [A-Za-z0-9_.-]+, checked by xlcfg). */
export function consoleLogPath(p: StatePaths, name: string): string {
  return path.join(p.consoleDir, `${name}.log`);
}

export function socketExists(p: StatePaths): boolean { return existsSync(p.socket); }
