// A domain: its memory (the frames it owns), vCPUs, the shared_info page, lifecycle state.

import type { Vcpu } from './vcpu.js';
import type { Xen } from './xen.js';

export const enum ShutdownReason { POWEROFF = 0, REBOOT = 1, SUSPEND = 2, CRASH = 3, WATCHDOG = 4, SOFT_RESET = 5 }
export const SHUTDOWN_NAMES = ['poweroff', 'reboot', 'suspend', 'crash', 'watchdog', 'soft_reset'];

export type DomainState = 'running' | 'paused' | 'shutdown' | 'dying';

export class Domain {
  readonly vcpus: Vcpu[] = [];
  state: DomainState = 'paused';
  /** SCHEDOP_shutdown reason and code (shutdown_code), once shut down. */
  shutdownReason = -1;
  shutdownCode = -1;
  /** Pages the domain may own at most, and owns now. */
  maxPages = 0;
  totPages = 0;
  /** The shared_info frame (a Xen-allocated frame the domain may map). */
  sharedInfoMfn = -1;
  /** VM assists enabled with vm_assist (bit per VMASST_TYPE_*). */
  vmAssist = 0;
  /** The 16-byte domain handle (xl's UUID). */
  handle = new Uint8Array(16);
  /** Privileged (dom0) or not. */
  privileged = false;
  /** Lines the guest wrote with console_io (the hypervisor console), for logs and tests. */
  consoleWrite: (bytes: Uint8Array) => void = () => {};
  /** Called once when the domain shuts down (the toolstack applies on_poweroff etc.). */
  onShutdown: ((reason: number) => void) | null = null;
  /** SCHEDOP_watchdog deadlines (ns; -1 for a free slot). */
  watchdogs: number[] = [];

  constructor(readonly xen: Xen, readonly id: number, public name: string) {}

  get isDead(): boolean { return this.state === 'shutdown' || this.state === 'dying'; }
}
