// A virtual CPU of a domain: the CPU model it runs on plus the PV state Xen keeps per vCPU
// (guest kernel/user mode, the two page-table bases, kernel stack, trap table, callbacks,
// segment bases, where vcpu_info lives, timers).

import type { Cpu } from '../cpu/cpu.js';
import type { Domain } from './domain.js';
import { HcArgs } from './hypercall/args.js';

export const enum Callback { EVENT = 0, FAILSAFE = 1, SYSCALL = 2, SYSCALL32 = 7, SYSENTER = 5, NMI = 4 }
export const NR_CALLBACKS = 8;

export class Vcpu {
  /** Scratch for hypercall arguments (no allocation per call). */
  readonly args = new HcArgs();

  // -- PV execution state ---------------------------------------------------------------
  /** Guest-kernel mode (true) or guest-user mode; both run at CPL 3. */
  kernelMode = true;
  /** Page-table bases as MFNs: the kernel L4 (CR3) and the user L4 (NEW_USER_BASEPTR; 0 = none). */
  kernelCr3 = 0;
  userCr3 = 0;
  /** stack_switch: the kernel stack used when an event or trap arrives in user mode. */
  kernelSs = 0;
  kernelSp = 0; // 48-bit linear
  /** GS bases of the two modes as 64-bit halves; the inactive one is swapped in on transitions. */
  gsBaseKernelLo = 0; gsBaseKernelHi = 0;
  gsBaseUserLo = 0; gsBaseUserHi = 0;
  /** Trap table (set_trap_table): handler address (48-bit linear, -1 none), flags, cs. */
  readonly trapAddr = new Float64Array(256).fill(-1);
  readonly trapFlags = new Uint8Array(256);
  readonly trapCs = new Uint16Array(256);
  /** Callbacks by CALLBACKTYPE: address (48-bit linear, -1 none) and CALLBACKF_* flags. */
  readonly callbackAddr = new Float64Array(8).fill(-1);
  readonly callbackFlags = new Uint8Array(8);
  /** Machine address of this vCPU's vcpu_info (defaults to its slot in shared_info; -1 none). */
  vcpuInfoPa = -1;
  /** VCPUOP_register_vcpu_info was done (it may be done once). */
  vcpuInfoRegistered = false;
  /** Has a register context (the boot vCPU, or VCPUOP_initialise). */
  initialised = false;
  /** Guest virtual address of the registered runstate area, or -1. */
  runstateVa = -1;
  /** Guest virtual address of the registered vcpu_time_info copy, or -1. */
  timeAreaVa = -1;
  /** Virtual I/O privilege level (physdev set_iopl): port I/O allowed when iopl >= 1 in kernel mode. */
  iopl = 0;
  /** PHYSDEVOP_set_iobitmap: guest address of the I/O bitmap and how many ports it covers. */
  ioBitmap = 0;
  ioBitmapPorts = 0;
  /** set_gdt: guest frames of the GDT and its entry count. */
  gdtFrames: number[] = [];
  gdtEnts = 0;
  /** MMUEXT_SET_LDT: linear base and entry count. */
  ldtBase = 0;
  ldtEnts = 0;
  /** fpu_taskswitch: the guest's view of CR0.TS. */
  fpuTs = false;
  /** Debug registers as the guest set them (set_debugreg). */
  readonly debugregs = new Float64Array(8);

  // -- scheduling and time ----------------------------------------------------------------
  /** Up (VCPUOP_up / the boot vCPU) or down. */
  online = false;
  /** Blocked in SCHEDOP_block/poll until an event or timeout. */
  blocked = false;
  /** SCHEDOP_poll: ports being polled (empty when not polling) and the timeout (ns, 0 none). */
  pollPorts: number[] = [];
  pollTimeoutNs = 0;
  /** Single-shot timer deadline in system-time ns (0 = none), and the periodic period (0 = none). */
  timerDeadlineNs = 0;
  periodicNs = 0;
  periodicNextNs = 0;
  /** Runstate accounting (ns). */
  readonly runstateTime = new Float64Array(4);
  runstateState = 3;
  runstateEntryNs = 0;

  constructor(readonly domain: Domain, readonly id: number, readonly cpu: Cpu) {}
}
