// Test support for event channels: a host with domains built by hand (a shared_info frame,
// vCPUs whose vcpu_info sits in it, a small guest address space whose buffer carries the
// hypercall argument structs), the EVTCHNOP calls through the real hypercall entry, and the
// guest side of both ABIs as Linux does it (the 2-level scan of evtchn_2l.c and the FIFO
// queue consumer of event_fifo.c).

import { Errno } from '../../../src/xen/errno.js';
import type { Domain } from '../../../src/xen/domain.js';
import { initEvents, eventsOf, type DomainEvents } from '../../../src/xen/evtchn/events.js';
import { ControlBlock, EVTCHN_FIFO_LINK_MASK } from '../../../src/xen/evtchn/fifo.js';
import '../../../src/xen/hypercall/evtchn.js';
import '../../../src/xen/hypercall/sched.js';
import { SharedInfo, VcpuInfo } from '../../../src/xen/layout.js';
import type { Vcpu } from '../../../src/xen/vcpu.js';
import { BUF, hc, Host, Space, va } from '../mm/harness.js';

export { BUF, Host, va };
export const DOMID_SELF = 0x7ff0, DOMID_XEN = 0x7ff2;
export const E = {
  EPERM: -Errno.EPERM, ENOENT: -Errno.ENOENT, ESRCH: -Errno.ESRCH, EFAULT: -Errno.EFAULT, EBUSY: -Errno.EBUSY,
  EEXIST: -Errno.EEXIST, EINVAL: -Errno.EINVAL, ENOSPC: -Errno.ENOSPC, ENOSYS: -Errno.ENOSYS, EOPNOTSUPP: -Errno.EOPNOTSUPP,
} as const;
export const enum Op {
  bind_interdomain = 0, bind_virq = 1, bind_pirq = 2, close = 3, send = 4, status = 5, alloc_unbound = 6,
  bind_ipi = 7, bind_vcpu = 8, unmask = 9, reset = 10, init_control = 11, expand_array = 12, set_priority = 13,
}
const HC_EVTCHN = 32, HC_EVTCHN_COMPAT = 16, HC_SCHED = 29;
const FP = 1 << 31, FM = 1 << 30, FL = 1 << 29;

export interface Status { rc: number; status: number; vcpu: number; dom: number; port: number; irq: number }

/** A domain under test: its Xen object, vCPUs, the guest address space of vCPU 0 and what
 *  the event channel callbacks reported (kicks per vCPU, newly pending ports). */
export class Dom {
  readonly d: Domain;
  readonly vcpus: Vcpu[] = [];
  readonly space: Space;
  readonly si: number;
  readonly kicks: number[];
  readonly polled: number[] = [];
  /** Frames the guest owns for FIFO control blocks and event arrays. */
  readonly spare: number[];

  constructor(readonly h: Host, name: string, opts: { privileged?: boolean; vcpus?: number; spare?: number } = {}) {
    this.d = h.domain(name, { privileged: opts.privileged, maxPages: 4096 });
    const n = opts.vcpus ?? 1;
    for (let i = 0; i < n; i++) this.vcpus.push(h.vcpu(this.d));
    this.space = new Space(h, this.vcpus[0], 2);
    [this.si] = h.alloc(this.d);
    this.d.sharedInfoMfn = this.si;
    for (const v of this.vcpus) v.vcpuInfoPa = this.si * 4096 + SharedInfo.VCPU_INFO + v.id * VcpuInfo.SIZE;
    this.spare = h.alloc(this.d, opts.spare ?? 4);
    this.kicks = new Array(n).fill(0);
    initEvents(this.d, (i) => { this.kicks[i]++; }, (p) => { this.polled.push(p); });
  }

  get id(): number { return this.d.id; }
  get ev(): DomainEvents { return eventsOf(this.d)!; }
  get dv(): DataView { return this.h.phys.dv; }

  // ---- hypercalls ---------------------------------------------------------------------------

  /** event_channel_op(cmd, BUF) with `arg` as the struct; returns rc and the struct after. */
  call(cmd: number, arg: Uint8Array, compat = false): { rc: number; out: DataView } {
    if (compat) {
      const b = new Uint8Array(28);
      new DataView(b.buffer).setUint32(0, cmd, true);
      b.set(arg, 4);
      this.space.write(0, b);
      const rc = hc(this.vcpus[0], HC_EVTCHN_COMPAT, va(BUF));
      return { rc, out: new DataView(this.space.read(4, 24).buffer) };
    }
    const padded = new Uint8Array(24);
    padded.set(arg);
    this.space.write(0, padded);
    const rc = hc(this.vcpus[0], HC_EVTCHN, cmd, va(BUF));
    return { rc, out: new DataView(this.space.read(0, 24).buffer) };
  }

  private portCall(cmd: number, arg: Uint8Array, off: number): number {
    const { rc, out } = this.call(cmd, arg);
    return rc < 0 ? rc : (expectZero(rc), out.getUint32(off, true));
  }

  allocUnbound(dom: number, remote: number): number { return this.portCall(Op.alloc_unbound, s16(dom, remote), 4); }
  bindInterdomain(rdom: number, rport: number): number { return this.portCall(Op.bind_interdomain, s16_32(rdom, rport), 8); }
  bindVirq(virq: number, vcpu: number): number { return this.portCall(Op.bind_virq, s32(virq, vcpu), 8); }
  bindPirq(pirq: number, flags = 0): number { return this.portCall(Op.bind_pirq, s32(pirq, flags), 8); }
  bindIpi(vcpu: number): number { return this.portCall(Op.bind_ipi, s32(vcpu), 4); }
  close(port: number): number { return this.call(Op.close, s32(port)).rc; }
  send(port: number): number { return this.call(Op.send, s32(port)).rc; }
  bindVcpu(port: number, vcpu: number): number { return this.call(Op.bind_vcpu, s32(port, vcpu)).rc; }
  unmask(port: number): number { return this.call(Op.unmask, s32(port)).rc; }
  reset(dom: number): number { return this.call(Op.reset, s16(dom)).rc; }
  setPriority(port: number, prio: number): number { return this.call(Op.set_priority, s32(port, prio)).rc; }
  expandArray(gfn: number | bigint): number { return this.call(Op.expand_array, s64(BigInt(gfn))).rc; }
  initControl(gfn: number | bigint, offset: number, vcpu: number): { rc: number; linkBits: number } {
    const b = new Uint8Array(24), dv = new DataView(b.buffer);
    dv.setBigUint64(0, BigInt(gfn), true);
    dv.setUint32(8, offset, true);
    dv.setUint32(12, vcpu, true);
    const { rc, out } = this.call(Op.init_control, b);
    return { rc, linkBits: out.getUint8(16) };
  }
  status(dom: number, port: number): Status {
    const b = new Uint8Array(24), dv = new DataView(b.buffer);
    dv.setUint16(0, dom, true);
    dv.setUint32(4, port, true);
    dv.setUint32(16, 0xdeadbeef, true);
    dv.setUint32(20, 0xdeadbeef, true);
    const { rc, out } = this.call(Op.status, b);
    return { rc, status: out.getUint32(8, true), vcpu: out.getUint32(12, true), dom: out.getUint16(16, true), port: out.getUint32(20, true), irq: out.getUint32(16, true) };
  }
  /** SCHEDOP_poll on ports (from vCPU `vcpu`, which must share vCPU 0's address space). */
  poll(ports: number[], timeout = 0n, vcpu = 0): number {
    const b = new Uint8Array(24 + ports.length * 4), dv = new DataView(b.buffer);
    dv.setBigUint64(0, va(BUF + 24), true);
    dv.setUint32(8, ports.length, true);
    dv.setBigUint64(16, timeout, true);
    ports.forEach((p, i) => dv.setUint32(24 + i * 4, p, true));
    this.space.write(0, b);
    return hc(this.vcpus[vcpu], HC_SCHED, 3, va(BUF));
  }

  // ---- shared_info / vcpu_info ----------------------------------------------------------------

  private bit(off: number, port: number): boolean { return (this.h.phys.u8[this.si * 4096 + off + (port >> 3)] & (1 << (port & 7))) !== 0; }
  private setBit(off: number, port: number, on: boolean): void {
    const a = this.si * 4096 + off + (port >> 3), u = this.h.phys.u8;
    u[a] = on ? u[a] | (1 << (port & 7)) : u[a] & ~(1 << (port & 7));
  }
  pending2(port: number): boolean { return this.bit(SharedInfo.EVTCHN_PENDING, port); }
  masked2(port: number): boolean { return this.bit(SharedInfo.EVTCHN_MASK, port); }
  setMask2(port: number, on: boolean): void { this.setBit(SharedInfo.EVTCHN_MASK, port, on); }
  setPending2(port: number, on: boolean): void { this.setBit(SharedInfo.EVTCHN_PENDING, port, on); }
  maskAll2(): void { this.h.phys.u8.fill(0xff, this.si * 4096 + SharedInfo.EVTCHN_MASK, this.si * 4096 + SharedInfo.EVTCHN_MASK + 512); }
  vi(vcpu: number): number { return this.si * 4096 + vcpu * VcpuInfo.SIZE; }
  sel(vcpu: number): bigint { return this.dv.getBigUint64(this.vi(vcpu) + VcpuInfo.PENDING_SEL, true); }
  setSel(vcpu: number, v: bigint): void { this.dv.setBigUint64(this.vi(vcpu) + VcpuInfo.PENDING_SEL, v, true); }
  upcall(vcpu: number): number { return this.h.phys.u8[this.vi(vcpu) + VcpuInfo.UPCALL_PENDING]; }
  setUpcall(vcpu: number, v: number): void { this.h.phys.u8[this.vi(vcpu) + VcpuInfo.UPCALL_PENDING] = v; }

  /** Linux's 2-level upcall (evtchn_2l_handle_events, simplified to one pass): clear
   *  upcall_pending, take the selector, and for each pending unmasked port of the selected
   *  words that is bound to this vCPU (Linux's per-CPU cpu_evtchn_mask; `boundTo`, by
   *  default the binding Xen reports) ack it (clear pending). Returns the ports handled. */
  handle2l(vcpu: number, boundTo: (port: number) => number = (p) => this.ev.table.notifyVcpu[p]): number[] {
    this.setUpcall(vcpu, 0);
    const sel = this.sel(vcpu);
    this.setSel(vcpu, 0n);
    const out: number[] = [];
    for (let w = 0; w < 64; w++) {
      if (!((sel >> BigInt(w)) & 1n)) continue;
      for (let b = 0; b < 64; b++) {
        const p = w * 64 + b;
        if (this.pending2(p) && !this.masked2(p) && boundTo(p) === vcpu) { this.setPending2(p, false); out.push(p); }
      }
    }
    return out;
  }
}

function expectZero(rc: number): void { if (rc !== 0) throw new Error(`unexpected positive rc ${rc}`); }

export function s32(...v: number[]): Uint8Array {
  const b = new Uint8Array(v.length * 4), dv = new DataView(b.buffer);
  v.forEach((x, i) => dv.setUint32(i * 4, x >>> 0, true));
  return b;
}
export function s16(...v: number[]): Uint8Array {
  const b = new Uint8Array(Math.max(4, v.length * 2)), dv = new DataView(b.buffer);
  v.forEach((x, i) => dv.setUint16(i * 2, x, true));
  return b;
}
export function s16_32(a: number, b32: number): Uint8Array {
  const b = new Uint8Array(12), dv = new DataView(b.buffer);
  dv.setUint16(0, a, true);
  dv.setUint32(4, b32 >>> 0, true);
  return b;
}
export function s64(v: bigint): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt.asUintN(64, v), true);
  return b;
}

// ---- the FIFO guest (Linux's drivers/xen/events/events_fifo.c) ------------------------------

/**
 * The guest side of the FIFO ABI, over machine memory as the guest sees its own frames:
 * control blocks (cleared before init_control), event array pages (every word masked before
 * expand_array), the per-vCPU local HEADs, and the queue consumer, one event per step.
 */
export class FifoGuest {
  readonly cb: number[];
  readonly array: number[] = [];
  readonly head: number[][];
  /** Per vCPU: the handler's local READY copy while it runs, or -1 when not running. */
  readonly ready: number[];

  constructor(readonly dom: Dom, readonly cbFrames: number[], readonly arrayFrames: number[]) {
    const n = dom.vcpus.length;
    this.cb = new Array(n).fill(-1);
    this.head = Array.from({ length: n }, () => new Array(16).fill(0));
    this.ready = new Array(n).fill(-1);
  }

  private get dv(): DataView { return this.dom.dv; }

  /** evtchn_fifo_alloc_control_block / init_control_block for one vCPU. */
  initVcpu(vcpu: number, offset = 0, frame = this.cbFrames[vcpu]): number {
    this.dom.h.phys.u8.fill(0, frame * 4096 + offset, frame * 4096 + offset + ControlBlock.SIZE);
    this.head[vcpu].fill(0);
    this.ready[vcpu] = -1;
    const { rc, linkBits } = this.dom.initControl(frame, offset, vcpu);
    if (rc === 0) {
      if (linkBits !== 17) throw new Error(`link_bits ${linkBits}`);
      this.cb[vcpu] = frame * 4096 + offset;
    }
    return rc;
  }

  /** evtchn_fifo_setup: add array pages (all words masked first) until `port` has a word. */
  setup(port: number): number {
    while (this.array.length * 1024 <= port) {
      const f = this.arrayFrames[this.array.length];
      for (let i = 0; i < 1024; i++) this.dv.setUint32(f * 4096 + i * 4, FM >>> 0, true);
      const rc = this.dom.expandArray(f);
      if (rc !== 0) return rc;
      this.array.push(f);
    }
    return 0;
  }

  wordPa(port: number): number { const f = this.array[port >> 10]; return f === undefined ? -1 : f * 4096 + (port & 1023) * 4; }
  word(port: number): number { const a = this.wordPa(port); return a < 0 ? -1 : this.dv.getUint32(a, true); }
  private setWord(port: number, w: number): void { this.dv.setUint32(this.wordPa(port), w >>> 0, true); }
  pending(port: number): boolean { const w = this.word(port); return w !== -1 && (w & FP) !== 0; }
  masked(port: number): boolean { const w = this.word(port); return w === -1 || (w & FM) !== 0; }
  linked(port: number): boolean { const w = this.word(port); return w !== -1 && (w & FL) !== 0; }
  link(port: number): number { return this.word(port) & EVTCHN_FIFO_LINK_MASK; }
  mask(port: number): void { if (this.wordPa(port) >= 0) this.setWord(port, this.word(port) | FM); }
  clearPending(port: number): void { if (this.wordPa(port) >= 0) this.setWord(port, this.word(port) & ~FP); }
  cbReady(vcpu: number): number { return this.dv.getUint32(this.cb[vcpu] + ControlBlock.READY, true); }
  cbHead(vcpu: number, q: number): number { return this.dv.getUint32(this.cb[vcpu] + ControlBlock.HEAD + q * 4, true); }

  /** evtchn_fifo_unmask: clear MASKED in place unless pending, else EVTCHNOP_unmask. */
  unmask(port: number): number {
    const w = this.word(port);
    if (w === -1) return this.dom.unmask(port);
    if (!(w & FM)) return 0;
    if (w & FP) return this.dom.unmask(port);
    this.setWord(port, w & ~FM);
    return 0;
  }

  /**
   * One step of __xen_evtchn_do_upcall with the FIFO handler: start (clear upcall_pending,
   * take READY), or consume one event from the highest-priority ready queue (clear LINKED,
   * follow LINK; a pending unmasked event is handled, i.e. acked by clearing PENDING). Returns
   * null when the handler has nothing left (it stops), else the event consumed and whether
   * it was handled.
   */
  step(vcpu: number): { port: number; handled: boolean } | null {
    const cb = this.cb[vcpu];
    if (cb < 0) return null;
    if (this.ready[vcpu] < 0) {
      this.dom.setUpcall(vcpu, 0);
      this.ready[vcpu] = this.xchgReady(vcpu);
    }
    let ready = this.ready[vcpu];
    if (ready === 0) { this.ready[vcpu] = -1; return null; }
    const q = 31 - Math.clz32(ready & -ready);
    let head = this.head[vcpu][q];
    if (head === 0) head = this.cbHead(vcpu, q);
    const port = head;
    // clear_linked: atomically clear LINKED and LINK, return the old LINK.
    const w = this.word(port);
    if (w === -1) throw new Error(`guest: queue ${q} of vCPU ${vcpu} names port ${port} beyond the array`);
    this.setWord(port, w & ~(FL | EVTCHN_FIFO_LINK_MASK));
    head = w & EVTCHN_FIFO_LINK_MASK;
    if (head === 0) ready &= ~(1 << q);
    const handled = (w & FP) !== 0 && (w & FM) === 0;
    if (handled) this.clearPending(port);
    this.head[vcpu][q] = head;
    this.ready[vcpu] = ready | this.xchgReady(vcpu);
    return { port, handled };
  }

  /** Run the handler to the end; the events handled, in order. */
  drain(vcpu: number): number[] {
    const out: number[] = [];
    for (let i = 0; i < 100000; i++) {
      const r = this.step(vcpu);
      if (r === null) return out;
      if (r.handled) out.push(r.port);
    }
    throw new Error('FIFO handler did not finish');
  }

  private xchgReady(vcpu: number): number {
    const a = this.cb[vcpu] + ControlBlock.READY;
    const r = this.dv.getUint32(a, true);
    this.dv.setUint32(a, 0, true);
    return r;
  }
}
