// Xen time for guests: system time (ns since the host started) from the virtual TSC, the
// vcpu_time_info a PV guest extrapolates from, the wallclock, and per-vCPU timers.
// The virtual TSC runs at 1 GHz (TSC_HZ), so tsc_to_system_mul/shift is an exact identity:
// ((tsc - tsc_timestamp) << 1) * 0x80000000 >> 32 == tsc - tsc_timestamp.

import { SharedInfo, TimeInfo, VcpuInfo, XEN_PVCLOCK_TSC_STABLE_BIT } from './layout.js';
import type { Vcpu } from './vcpu.js';
import type { Xen } from './xen.js';

export const TSC_TO_SYSTEM_MUL = 0x80000000;
export const TSC_SHIFT = 1;

/** Write vcpu_time_info (with the version protocol) into the vCPU's vcpu_info and, if the
 *  guest registered one, its time memory area. */
export function updateVcpuTime(xen: Xen, v: Vcpu): void {
  const m = xen.machine;
  if (v.vcpuInfoPa < 0) return;
  const pa = v.vcpuInfoPa + VcpuInfo.TIME;
  writeTimeInfo(xen, (off, kind, val) => {
    if (kind === 4) m.set32(pa + off, val as number);
    else if (kind === 1) m.set8(pa + off, val as number);
    else m.set64(pa + off, val);
  }, m.u32(pa + TimeInfo.VERSION), v);
}

type Put = (off: number, size: 1 | 4 | 8, v: number | bigint) => void;

function writeTimeInfo(xen: Xen, put: Put, oldVersion: number, v: Vcpu): void {
  const tsc = v.cpu.tsc();
  const ns = xen.nsOfTsc(tsc);
  put(TimeInfo.VERSION, 4, (oldVersion + 1) >>> 0 | 1);
  put(TimeInfo.TSC_TIMESTAMP, 8, tsc);
  put(TimeInfo.SYSTEM_TIME, 8, ns);
  put(TimeInfo.TSC_TO_SYSTEM_MUL, 4, TSC_TO_SYSTEM_MUL);
  put(TimeInfo.TSC_SHIFT, 1, TSC_SHIFT);
  put(TimeInfo.FLAGS, 1, XEN_PVCLOCK_TSC_STABLE_BIT);
  put(TimeInfo.VERSION, 4, ((oldVersion + 1) | 1) + 1 >>> 0);
}

/** The wallclock base in shared_info: the host's fixed boot epoch (deterministic runs). */
export function updateWallclock(xen: Xen, sharedInfoMfn: number): void {
  const m = xen.machine;
  const pa = sharedInfoMfn * 4096;
  const ver = m.u32(pa + SharedInfo.WC_VERSION);
  m.set32(pa + SharedInfo.WC_VERSION, (ver + 1) | 1);
  const sec = Math.floor(xen.bootEpochNs / 1e9), nsec = xen.bootEpochNs - sec * 1e9;
  m.set32(pa + SharedInfo.WC_SEC, sec % 4294967296);
  m.set32(pa + SharedInfo.WC_NSEC, nsec);
  m.set32(pa + SharedInfo.WC_SEC_HI, Math.floor(sec / 4294967296));
  m.set32(pa + SharedInfo.WC_VERSION, ((ver + 1) | 1) + 1);
}

