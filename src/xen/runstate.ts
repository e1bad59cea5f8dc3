// vCPU runstate accounting (vcpu_runstate_info): which state a vCPU is in since when, the
// time spent in each, and the guest's registered copy, rewritten at every change as Xen's
// context switch does.

import { CpuFault } from '../cpu/fault.js';
import { HypercallError } from './errno.js';
import { writeGuest32, writeGuest64 } from './guestmem.js';
import { Runstate } from './layout.js';
import type { Vcpu } from './vcpu.js';

const TWO32 = 4294967296;

/** Write the runstate info (48 bytes) to a guest address (through v's page tables). */
export function writeRunstate(v: Vcpu, va: number): void {
  const now = v.domain.xen.now();
  const put64 = (a: number, n: number) => writeGuest64(v, a, (n % TWO32) | 0, Math.floor(n / TWO32) | 0);
  writeGuest32(v, va + Runstate.STATE, v.runstateState);
  writeGuest32(v, va + 4, 0);
  put64(va + Runstate.STATE_ENTRY_TIME, v.runstateEntryNs);
  for (let i = 0; i < 4; i++) put64(va + Runstate.TIME + i * 8, v.runstateTime[i] + (i === v.runstateState ? now - v.runstateEntryNs : 0));
}

/** Move a vCPU to another runstate, accounting the time in the old one, and update the
 *  guest's registered area (when it is mapped in the current address space). */
export function setRunstate(v: Vcpu, state: number): void {
  if (state === v.runstateState) return;
  const now = v.domain.xen.now();
  v.runstateTime[v.runstateState] += now - v.runstateEntryNs;
  v.runstateState = state;
  v.runstateEntryNs = now;
  if (v.runstateVa > 0) {
    try { writeRunstate(v, v.runstateVa); } catch (e) { if (!(e instanceof HypercallError) && !(e instanceof CpuFault)) throw e; }
  }
}
