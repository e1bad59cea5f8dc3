// The 2-level event channel ABI (Xen's event_2l.c): pending and mask bitmaps in shared_info,
// the per-vCPU selector word and upcall flag in vcpu_info. Bit p of the bitmaps is bit
// (p & 7) of byte (p >> 3); selector bit w of evtchn_pending_sel covers bitmap word w
// (ports 64w..64w+63). Ports at or past 4096 have no bits (they exist only if the domain
// used FIFO and went back with EVTCHNOP_reset): they read as not pending and masked, and
// setting or unmasking them does nothing.

import { SharedInfo, VcpuInfo } from '../layout.js';
import type { Domain } from '../domain.js';
import { EVTCHN_2L_NR_CHANNELS, type Delivery } from './model.js';

/**
 * vcpu_mark_events_pending: set evtchn_upcall_pending (bit 0) in the vCPU's vcpu_info and, if
 * it was clear, kick the vCPU (`notify`). Shared by both ABIs.
 */
export function markEventsPending(d: Domain, vcpu: number, notify: (vcpu: number) => void): void {
  const v = d.vcpus[vcpu];
  if (!v || v.vcpuInfoPa < 0) return;
  const m = d.xen.machine, a = v.vcpuInfoPa + VcpuInfo.UPCALL_PENDING;
  const b = m.u8(a);
  if (b & 1) return;
  m.set8(a, b | 1);
  notify(vcpu);
}

export class TwoLevel implements Delivery {
  readonly abi = '2l';
  readonly maxPorts = EVTCHN_2L_NR_CHANNELS;

  constructor(private readonly d: Domain, private readonly notify: (vcpu: number) => void,
    private readonly onPending: (port: number) => void = () => {}) {}

  /** Machine address of shared_info, or -1 before the domain has one. */
  private get base(): number { return this.d.sharedInfoMfn < 0 ? -1 : this.d.sharedInfoMfn * 4096; }

  private addr(off: number, port: number): number {
    const b = this.base;
    return b < 0 || !(port >= 0 && port < EVTCHN_2L_NR_CHANNELS) ? -1 : b + off + (port >> 3);
  }
  private test(off: number, port: number): boolean {
    const a = this.addr(off, port);
    return a >= 0 && (this.d.xen.machine.u8(a) & (1 << (port & 7))) !== 0;
  }

  isPending(port: number): boolean { return this.test(SharedInfo.EVTCHN_PENDING, port); }
  isMasked(port: number): boolean {
    const a = this.addr(SharedInfo.EVTCHN_MASK, port);
    return a < 0 || (this.d.xen.machine.u8(a) & (1 << (port & 7))) !== 0;
  }
  isBusy(): boolean { return false; }

  clearPending(port: number): void {
    const a = this.addr(SharedInfo.EVTCHN_PENDING, port);
    if (a < 0) return;
    const m = this.d.xen.machine;
    m.set8(a, m.u8(a) & ~(1 << (port & 7)));
  }

  setPending(port: number, vcpu: number): void {
    const a = this.addr(SharedInfo.EVTCHN_PENDING, port);
    if (a < 0) return;
    const m = this.d.xen.machine, bit = 1 << (port & 7);
    const b = m.u8(a);
    if (b & bit) return;
    m.set8(a, b | bit);
    if (!this.isMasked(port)) this.markSelector(port, vcpu);
    this.onPending(port); // evtchn_check_pollers: SCHEDOP_poll waiters wake even for masked ports
  }

  unmask(port: number, vcpu: number): void {
    const a = this.addr(SharedInfo.EVTCHN_MASK, port);
    if (a < 0) return;
    const m = this.d.xen.machine, bit = 1 << (port & 7);
    const b = m.u8(a);
    if (!(b & bit)) return; // already unmasked: nothing to deliver (Xen tests-and-clears)
    m.set8(a, b & ~bit);
    if (this.isPending(port)) this.markSelector(port, vcpu);
  }

  /** Set the selector bit for the port's word; if it was clear, mark events pending. */
  private markSelector(port: number, vcpu: number): void {
    const v = this.d.vcpus[vcpu];
    if (!v || v.vcpuInfoPa < 0) return;
    const m = this.d.xen.machine;
    const word = port >> 6;
    const a = v.vcpuInfoPa + VcpuInfo.PENDING_SEL + (word >> 3);
    const bit = 1 << (word & 7);
    const b = m.u8(a);
    if (b & bit) return;
    m.set8(a, b | bit);
    markEventsPending(this.d, vcpu, this.notify);
  }
}
