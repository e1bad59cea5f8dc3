// vcpu_op (24): vCPU state queries, timers, and where vcpu_info / runstate / time live.
// (VCPUOP_initialise of secondary vCPUs comes with SMP guests.)

import { Errno } from '../errno.js';
import { copyFromGuest, readGuest32, readGuestPtr, readGuestU64 } from '../guestmem.js';
import { pvSetContext } from '../pv/entry.js';
import { GuestContext, VcpuInfo } from '../layout.js';
import { updateVcpuTime } from '../time.js';
import { wakeVcpu } from '../sched.js';
import { writeRunstate } from '../runstate.js';
import type { Vcpu } from '../vcpu.js';
import { Hc, registerHypercall } from './table.js';

export const enum VcpuOp {
  initialise = 0, up = 1, down = 2, is_up = 3, get_runstate_info = 4, register_runstate_memory_area = 5,
  set_periodic_timer = 6, stop_periodic_timer = 7, set_singleshot_timer = 8, stop_singleshot_timer = 9,
  register_vcpu_info = 10, send_nmi = 11, get_physid = 12, register_vcpu_time_memory_area = 13,
}
const VCPU_SSHOTTMR_future = 1;
const MILLISECS = 1_000_000;

export { writeRunstate, setRunstate } from '../runstate.js';

function vcpuOp(v: Vcpu, cmd: number, id: number, p: number): number {
  const d = v.domain;
  const t = d.vcpus[id];
  if (id >= d.vcpus.length || !t) return -Errno.ENOENT;
  switch (cmd) {
    case VcpuOp.is_up: return t.online ? 1 : 0;
    case VcpuOp.up:
      if (!t.initialised) return -Errno.EINVAL;
      if (!t.online) { t.online = true; wakeVcpu(t); }
      return 0;
    case VcpuOp.down:
      t.online = false;
      if (t === v) { v.cpu.stopRequest = true; v.cpu.exitBlock = true; }
      return 0;
    case VcpuOp.get_runstate_info: writeRunstate(t === v ? v : t, p); return 0;
    case VcpuOp.register_runstate_memory_area: {
      const va = readGuestPtr(v, p);
      t.runstateVa = va > 0 ? va : -1;
      if (va > 0) writeRunstate(v, va);
      return 0;
    }
    case VcpuOp.set_periodic_timer: {
      const period = readGuestU64(v, p);
      if (period < MILLISECS) return -Errno.EINVAL;
      t.periodicNs = period;
      t.periodicNextNs = d.xen.now() + period;
      t.cpu.eventAt = 0;
      return 0;
    }
    case VcpuOp.stop_periodic_timer: t.periodicNs = 0; return 0;
    case VcpuOp.set_singleshot_timer: {
      if (t !== v) return -Errno.EINVAL;
      const timeout = readGuestU64(v, p), flags = readGuest32(v, p + 8) >>> 0;
      if ((flags & VCPU_SSHOTTMR_future) && timeout < d.xen.now()) return -Errno.ETIME;
      v.timerDeadlineNs = Math.max(timeout, 1);
      v.cpu.eventAt = 0;
      return 0;
    }
    case VcpuOp.stop_singleshot_timer:
      if (t !== v) return -Errno.EINVAL;
      v.timerDeadlineNs = 0;
      return 0;
    case VcpuOp.register_vcpu_info: {
      const mfn = readGuestU64(v, p), offset = readGuest32(v, p + 8) >>> 0;
      if (t.vcpuInfoRegistered) return -Errno.EINVAL;
      if (offset > 4096 - VcpuInfo.SIZE) return -Errno.EINVAL;
      if (offset & 7) return -Errno.EINVAL;
      if (mfn >= d.xen.frames.frames || d.xen.frames.owner[mfn] !== d.id) return -Errno.EINVAL;
      const m = d.xen.machine;
      const pa = mfn * 4096 + offset;
      // Move the current contents, then mark every event word pending so the guest rescans.
      if (t.vcpuInfoPa >= 0) m.setBytes(pa, m.bytes(t.vcpuInfoPa, VcpuInfo.SIZE));
      t.vcpuInfoPa = pa;
      t.vcpuInfoRegistered = true;
      m.set64(pa + VcpuInfo.PENDING_SEL, 0xffffffffffffffffn);
      m.set8(pa + VcpuInfo.UPCALL_PENDING, 1);
      updateVcpuTime(d.xen, t);
      wakeVcpu(t);
      return 0;
    }
    case VcpuOp.register_vcpu_time_memory_area: {
      const va = readGuestPtr(v, p);
      t.timeAreaVa = va > 0 ? va : -1;
      return 0;
    }
    case VcpuOp.get_physid: return d.privileged ? -Errno.ENOSYS : -Errno.EINVAL;
    case VcpuOp.send_nmi: return -Errno.ENOSYS;
    case VcpuOp.initialise: {
      // Load a secondary vCPU's register context (vcpu_guest_context); it may be done once
      // while the vCPU is down. VCPUOP_up then starts it.
      if (t.initialised) return -Errno.EEXIST;
      const rc = pvSetContext(t, copyFromGuest(v, p, GuestContext.SIZE));
      if (rc !== 0) return rc;
      t.initialised = true;
      return 0;
    }
    default: return -Errno.ENOSYS;
  }
}

registerHypercall(Hc.vcpu_op, (v, a) => vcpuOp(v, a.u32(0), a.u32(1), a.ptr(2)));
