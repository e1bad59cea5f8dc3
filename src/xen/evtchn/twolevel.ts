// The 2-level event channel ABI: pending and mask bitmaps in shared_info, the per-vCPU
// selector word and upcall flag in vcpu_info. Bit p of the bitmaps is bit (p & 7) of byte
// (p >> 3); selector bit w of evtchn_pending_sel covers bitmap word w (ports 64w..64w+63).

import { SharedInfo, VcpuInfo } from '../layout.js';
import type { Domain } from '../domain.js';
import type { Delivery } from './model.js';

export class TwoLevel implements Delivery {
  constructor(private readonly d: Domain, private readonly notify: (vcpu: number) => void,
    private readonly onPending: (port: number) => void = () => {}) {}

  private get base(): number { return this.d.sharedInfoMfn * 4096; }

  private testAndSet(off: number, port: number): boolean {
    const m = this.d.xen.machine;
    const a = this.base + off + (port >> 3), bit = 1 << (port & 7);
    const b = m.u8(a);
    if (b & bit) return true;
    m.set8(a, b | bit);
    return false;
  }
  private test(off: number, port: number): boolean {
    return (this.d.xen.machine.u8(this.base + off + (port >> 3)) & (1 << (port & 7))) !== 0;
  }

  isPending(port: number): boolean { return this.test(SharedInfo.EVTCHN_PENDING, port); }
  isMasked(port: number): boolean { return this.test(SharedInfo.EVTCHN_MASK, port); }

  clearPending(port: number): void {
    const m = this.d.xen.machine;
    const a = this.base + SharedInfo.EVTCHN_PENDING + (port >> 3);
    m.set8(a, m.u8(a) & ~(1 << (port & 7)));
  }

  setPending(port: number, vcpu: number): void {
    if (this.testAndSet(SharedInfo.EVTCHN_PENDING, port)) return;
    this.onPending(port); // SCHEDOP_poll waiters wake even for masked ports
    if (this.isMasked(port)) return;
    this.markSelector(port, vcpu);
  }

  unmask(port: number, vcpu: number): void {
    const m = this.d.xen.machine;
    const a = this.base + SharedInfo.EVTCHN_MASK + (port >> 3), bit = 1 << (port & 7);
    const b = m.u8(a);
    if (!(b & bit)) return; // already unmasked: nothing to deliver (Xen tests-and-clears)
    m.set8(a, b & ~bit);
    if (this.isPending(port)) this.markSelector(port, vcpu);
  }

  /** Set the selector bit for the port's word, and the upcall flag if it was clear. */
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
    if (m.u8(v.vcpuInfoPa + VcpuInfo.UPCALL_PENDING) === 0) {
      m.set8(v.vcpuInfoPa + VcpuInfo.UPCALL_PENDING, 1);
      this.notify(vcpu);
    }
  }
}
