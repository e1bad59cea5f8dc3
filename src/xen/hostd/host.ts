// A running host: the Xen model and its scheduler (manager.ts, runner.ts), the control
// server on <state-dir>/hostd.sock (server.ts), the pid file and the structured log
// <state-dir>/hypervisor.log. `sim boot --foreground` runs one in the `sim` process;
// `sim boot --daemon` starts a detached `sim boot --foreground` (cli/verbs.ts). Tests start
// one in-process.
//
// hypervisor.log is pino JSON, one object a line: the toolstack's events (create, shutdown,
// restart, destroy, pause, ... with domid and name) and every Xen printk line
// ({"xen":"(XEN) ..."}); `sim dmesg` shows the printk ring itself (Xen.log).

import { rmSync, chmodSync } from 'node:fs';
import pino, { type Logger } from 'pino';
import { PhysMem } from '../../mmu/physmem.js';
import { Xen } from '../xen.js';
import { DomainManager, type ShutdownControl } from './manager.js';
import { hostXenstore, requestShutdown, watchesControlShutdown } from '../xenstore/attach.js';
import { XenstoreSocketServer } from '../xenstore/socket.js';
import type { Pace } from './runner.js';
import { ControlServer, socketAnswers } from './server.js';
import { claimPidFile, ensureStateDir, readPid, releasePidFile, socketPathProblem, statePaths, type StatePaths } from './statedir.js';

export interface StartHostOptions {
  stateDir?: string;
  /** Host (machine) memory in MiB; default 1024. */
  memoryMiB?: number;
  /** Default: realtime when a clock is given, else virtual. */
  pace?: Pace;
  /** Monotonic wall clock, ms since the Unix epoch (timestamps in the log, realtime pacing). */
  clock?: () => number;
  /** Every Xen printk line, besides the log (the foreground host prints them). */
  onPrintk?: (line: string) => void;
  /** The host process's CPU time in seconds (Domain-0's Time(s)). */
  hostCpuSeconds?: () => number;
  control?: ShutdownControl;
  version?: string;
  pid?: number;
}

export class HostStartError extends Error {}

export interface RunningHost {
  paths: StatePaths;
  manager: DomainManager;
  xen: Xen;
  log: Logger;
  /** Stop: close the socket, stop scheduling, end console streams, remove socket and pid file. */
  stop(why?: string): Promise<void>;
  /** Resolves once the host has stopped (by stop() or a client's stop request). */
  readonly stopped: Promise<void>;
}

export const DEFAULT_HOST_MEMORY_MIB = 1024;

export async function startHost(o: StartHostOptions = {}): Promise<RunningHost> {
  const paths = statePaths(o.stateDir);
  const memoryMiB = o.memoryMiB ?? DEFAULT_HOST_MEMORY_MIB;
  if (!Number.isInteger(memoryMiB) || memoryMiB < 64 || memoryMiB > 65536) throw new HostStartError(`--memory: ${memoryMiB} is not a size in MiB between 64 and 65536`);
  const bad = socketPathProblem(paths);
  if (bad) throw new HostStartError(bad);
  ensureStateDir(paths);
  if (await socketAnswers(paths.socket)) {
    throw new HostStartError(`a host is already running in ${paths.dir} (pid ${readPid(paths) ?? '?'})`);
  }
  const pid = o.pid ?? process.pid;
  const holder = claimPidFile(paths, pid);
  if (holder !== null) throw new HostStartError(`another host (pid ${holder}) holds ${paths.pidFile}`);

  const clock = o.clock;
  const log = pino({
    base: { pid },
    timestamp: clock ? () => `,"time":${Math.round(clock())}` : false,
  }, pino.destination({ dest: paths.hypervisorLog, sync: true, append: true, mkdir: true }));

  let manager: DomainManager;
  let server: ControlServer;
  let xsServer: XenstoreSocketServer | undefined;
  try {
    const xen = new Xen(new PhysMem(memoryMiB * 1048576));
    xen.onLog = (line) => {
      log.info({ xen: line, vt: xen.now() / 1e9 }, line);
      o.onPrintk?.(line);
    };
    // xl shutdown goes through xenstore's control/shutdown when the guest's PV drivers
    // watch it; otherwise the host shuts the domain down itself.
    const control: ShutdownControl = o.control ?? {
      request(d, reason) {
        if (!watchesControlShutdown(d)) return false;
        requestShutdown(d, reason);
        return true;
      },
    };
    manager = new DomainManager({
      xen, paths, log, pace: o.pace ?? (clock ? 'realtime' : 'virtual'), clock,
      memoryMiB, control, hostCpuSeconds: o.hostCpuSeconds,
    });
    xsServer = new XenstoreSocketServer(hostXenstore(xen));
    await xsServer.listen(paths.xenstoreSocket);
    chmodSync(paths.xenstoreSocket, 0o600);
    xen.printk(`xensim host: Xen ${manager.info().xen_version}, ${memoryMiB} MiB, pid ${pid}, state ${paths.dir}`);
    rmSync(paths.socket, { force: true });
    server = new ControlServer(manager, log, { pid, stateDir: paths.dir, version: o.version ?? '0' });
    await server.listen(paths.socket);
    chmodSync(paths.socket, 0o600);
  } catch (e) {
    releasePidFile(paths, pid);
    throw e;
  }
  log.info({ event: 'start', memoryMiB, stateDir: paths.dir }, 'host started');

  let resolveStopped!: () => void;
  const stopped = new Promise<void>((r) => { resolveStopped = r; });
  let stopping: Promise<void> | null = null;
  const stop = (why = 'stopped') => {
    if (stopping) return stopping;
    stopping = (async () => {
      manager.stop();
      await server.close();
      await xsServer?.close();
      rmSync(paths.xenstoreSocket, { force: true });
      rmSync(paths.socket, { force: true });
      releasePidFile(paths, pid);
      log.info({ event: 'stop', why }, 'host stopped');
      log.flush();
      resolveStopped();
    })();
    return stopping;
  };
  server.onStopRequest = () => { void stop('stop requested by a client'); };
  return { paths, manager, xen: manager.xen, log, stop, stopped };
}
