// The hypercall table: one handler per number; families register themselves at load time
// (src/xen/hypercall/<family>.ts). Unknown numbers answer -ENOSYS, as Xen does.

import { Errno, HypercallError } from '../errno.js';
import type { Vcpu } from '../vcpu.js';
import type { HcArgs } from './args.js';

/** A hypercall: returns the value for rax (negative errno on failure). */
export type Hypercall = (v: Vcpu, a: HcArgs) => number;

export const enum Hc {
  set_trap_table = 0, mmu_update = 1, set_gdt = 2, stack_switch = 3, set_callbacks = 4, fpu_taskswitch = 5,
  sched_op_compat = 6, platform_op = 7, set_debugreg = 8, get_debugreg = 9, update_descriptor = 10,
  memory_op = 12, multicall = 13, update_va_mapping = 14, set_timer_op = 15, event_channel_op_compat = 16,
  xen_version = 17, console_io = 18, physdev_op_compat = 19, grant_table_op = 20, vm_assist = 21,
  update_va_mapping_otherdomain = 22, iret = 23, vcpu_op = 24, set_segment_base = 25, mmuext_op = 26,
  xsm_op = 27, nmi_op = 28, sched_op = 29, callback_op = 30, xenoprof_op = 31, event_channel_op = 32,
  physdev_op = 33, hvm_op = 34, sysctl = 35, domctl = 36, kexec_op = 37, tmem_op = 38, argo_op = 39,
  xenpmu_op = 40, dm_op = 41, hypfs_op = 42,
}
export const NR_HYPERCALLS = 64;

export const HYPERCALLS: (Hypercall | undefined)[] = new Array(NR_HYPERCALLS).fill(undefined);

export function registerHypercall(nr: number, fn: Hypercall): void {
  if (HYPERCALLS[nr]) throw new Error(`hypercall ${nr} registered twice`);
  HYPERCALLS[nr] = fn;
}

/** Run hypercall nr; a HypercallError thrown inside becomes its -errno. */
export function dispatchHypercall(v: Vcpu, nr: number, a: HcArgs): number {
  const fn = nr >= 0 && nr < NR_HYPERCALLS ? HYPERCALLS[nr] : undefined;
  if (!fn) return -Errno.ENOSYS;
  try {
    return fn(v, a);
  } catch (e) {
    if (e instanceof HypercallError) return -e.errno;
    throw e;
  }
}
