// Event channels of one domain: the port table Xen keeps in its struct evtchn buckets (state,
// binding, the vCPU notified, FIFO priority), port allocation (get_free_port) and the VIRQ /
// PIRQ maps. No guest memory and no other domain: the operations that combine these live in
// evtchn/ops.ts; where the pending and mask bits live (the 2-level bitmaps in shared_info or
// the FIFO event words) is the Delivery's business (twolevel.ts, fifo.ts).
//
// Ports exist in buckets of EVTCHNS_PER_BUCKET, as in Xen: a port is "valid" (port_is_valid)
// once its bucket exists, whether or not it is bound, and a port past the last bucket is
// -EINVAL to every operation. Port 0 is reserved (it reads back as closed and is never
// allocated). A bucket is added only when every valid port is in use. The table grows its
// typed arrays with the buckets, up to the FIFO limit of 2^17 ports.

import { Errno } from '../errno.js';

/** Port states. FREE..IPI are also the EVTCHNSTAT_* values; RESERVED (port 0) reads as closed. */
export const enum State { FREE = 0, UNBOUND = 1, INTERDOMAIN = 2, PIRQ = 3, VIRQ = 4, IPI = 5, RESERVED = 6 }
export const NR_VIRQS = 24;
export const VIRQ_TIMER = 0, VIRQ_DEBUG = 1, VIRQ_XENOPROF = 7, VIRQ_XENPMU = 13;
/** The 2-level ABI's port limit on 64-bit: 64 * 64. */
export const EVTCHN_2L_NR_CHANNELS = 4096;
/** The FIFO ABI's port limit: 2^EVTCHN_FIFO_LINK_BITS. */
export const EVTCHN_FIFO_NR_CHANNELS = 1 << 17;
/** Ports per bucket of struct evtchn (PAGE_SIZE / 64-byte struct evtchn on x86_64). */
export const EVTCHNS_PER_BUCKET = 64;
export const EVTCHN_FIFO_PRIORITY_MAX = 0;
export const EVTCHN_FIFO_PRIORITY_DEFAULT = 7;
export const EVTCHN_FIFO_PRIORITY_MIN = 15;
/** Minimal PIRQ model: Xen's nr_static_irqs for one 24-pin IO-APIC, plus extra_domU_irqs (32)
 *  or the hardware domain's extra (256). */
export const NR_STATIC_IRQS = 24;
export const DOMU_NR_PIRQS = NR_STATIC_IRQS + 32;
export const DOM0_NR_PIRQS = NR_STATIC_IRQS + 256;

/** Per-vCPU VIRQs (xen.h marks them "V."); every other VIRQ is global ("G.", and on x86
 *  all VIRQ_ARCH_* too): bound on vCPU 0, movable with bind_vcpu. */
export function virqIsGlobal(virq: number): boolean {
  return !(virq === VIRQ_TIMER || virq === VIRQ_DEBUG || virq === VIRQ_XENOPROF || virq === VIRQ_XENPMU);
}

/**
 * How events reach the guest: the 2-level bitmaps or the FIFO queues, over guest memory.
 * `vcpu` arguments are the port's notify vCPU.
 */
export interface Delivery {
  readonly abi: '2l' | 'fifo';
  /** Ports this ABI can address (Xen's max_evtchns): 4096 or 2^17. */
  readonly maxPorts: number;
  /** Set the port pending; if it is unmasked (and, for FIFO, not linked) signal `vcpu`. */
  setPending(port: number, vcpu: number): void;
  clearPending(port: number): void;
  /** Clear the mask; if the port is pending, signal `vcpu` as for a new event. */
  unmask(port: number, vcpu: number): void;
  isPending(port: number): boolean;
  isMasked(port: number): boolean;
  /** The port is still on a FIFO queue, so it may not be allocated again (2-level: never). */
  isBusy(port: number): boolean;
}

/** Per-port fields, in the order snapshots list them. */
export const PORT_FIELDS = ['state', 'notifyVcpu', 'remoteDom', 'remotePort', 'irq', 'priority', 'lastVcpu', 'lastPriority', 'savedPending'] as const;
export type PortField = typeof PORT_FIELDS[number];

export class EvtchnTable {
  /** State per port (State). */
  state: Uint8Array;
  /** vCPU notified for the port. */
  notifyVcpu: Uint16Array;
  /** UNBOUND: the domain allowed to bind; INTERDOMAIN: the remote domain (DOMID_XEN: an
   *  in-hypervisor end); -1 otherwise. */
  remoteDom: Int32Array;
  /** INTERDOMAIN: the remote port; -1 otherwise. */
  remotePort: Int32Array;
  /** VIRQ number (VIRQ state) or PIRQ (PIRQ state); -1 otherwise. */
  irq: Int32Array;
  /** FIFO priority (0 highest .. 15). */
  priority: Uint8Array;
  /** FIFO: the queue (vCPU, priority) the port was last linked on (Xen's fifo_lastq). */
  lastVcpu: Uint16Array;
  lastPriority: Uint8Array;
  /** FIFO: raised while its event word did not exist yet; raised again when the array page
   *  that holds it is added (Xen's evtchn->pending). */
  savedPending: Uint8Array;
  /** Per vCPU, VIRQ -> port (0 = unbound): index vcpu * NR_VIRQS + virq. Global VIRQs are
   *  recorded under vCPU 0 whichever vCPU they notify. */
  readonly virqPort: Int32Array;
  /** PIRQ -> port. */
  readonly pirqPort = new Map<number, number>();
  /** Ports with a bucket (Xen's valid_evtchns). */
  nrValid = EVTCHNS_PER_BUCKET;
  /** The toolstack's limit (XEN_DOMCTL_set_max_evtchn / xl's max_event_channels): the
   *  highest port number the domain may use. Default: no limit beyond the ABI's. */
  maxEvtchnPort = EVTCHN_FIFO_NR_CHANNELS - 1;
  /** PIRQs the domain may name (Xen's nr_pirqs). */
  nrPirqs: number;
  /** Whether the domain may bind PIRQs (irq_access_permitted): the hardware domain here. */
  pirqAccess: boolean;

  constructor(readonly nrVcpus: number, opts: { privileged?: boolean } = {}) {
    const n = EVTCHNS_PER_BUCKET;
    this.state = new Uint8Array(n);
    this.notifyVcpu = new Uint16Array(n);
    this.remoteDom = new Int32Array(n).fill(-1);
    this.remotePort = new Int32Array(n).fill(-1);
    this.irq = new Int32Array(n).fill(-1);
    this.priority = new Uint8Array(n).fill(EVTCHN_FIFO_PRIORITY_DEFAULT);
    this.lastVcpu = new Uint16Array(n);
    this.lastPriority = new Uint8Array(n);
    this.savedPending = new Uint8Array(n);
    this.state[0] = State.RESERVED;
    this.virqPort = new Int32Array(nrVcpus * NR_VIRQS);
    this.nrPirqs = opts.privileged ? DOM0_NR_PIRQS : DOMU_NR_PIRQS;
    this.pirqAccess = opts.privileged ?? false;
  }

  /** Xen's port_is_valid: the port's bucket exists (port 0 included). SCHEDOP_poll's check. */
  valid(port: number): boolean { return Number.isInteger(port) && port >= 0 && port < this.nrValid; }

  /** Ports in use (not FREE, not RESERVED). */
  get active(): number {
    let n = 0;
    for (let p = 1; p < this.nrValid; p++) if (this.state[p] !== State.FREE) n++;
    return n;
  }

  /**
   * Xen's get_free_port: the lowest free port that is not busy (still on a FIFO queue), or a
   * new bucket's first port; -ENOSPC past the toolstack's limit or the ABI's (`abiLimit`).
   */
  allocPort(abiLimit: number, isBusy: (port: number) => boolean): number {
    for (let p = 0; p < this.nrValid; p++) {
      if (p > this.maxEvtchnPort || p >= abiLimit) return -Errno.ENOSPC;
      if (this.state[p] === State.FREE && !isBusy(p)) return p;
    }
    const p = this.nrValid;
    if (p > this.maxEvtchnPort || p >= abiLimit) return -Errno.ENOSPC;
    this.setValid(p + EVTCHNS_PER_BUCKET);
    return p;
  }

  /** Grow to `n` valid ports (a multiple of the bucket size), keeping every port's state. */
  setValid(n: number): void {
    if (n <= this.nrValid) return;
    if (n > this.state.length) {
      let cap = this.state.length;
      while (cap < n) cap *= 2;
      const grow = <T extends Uint8Array | Uint16Array | Int32Array>(a: T, fill: number): T => {
        const b = new (a.constructor as new (n: number) => T)(cap);
        if (fill !== 0) b.fill(fill);
        b.set(a);
        return b;
      };
      this.state = grow(this.state, 0);
      this.notifyVcpu = grow(this.notifyVcpu, 0);
      this.remoteDom = grow(this.remoteDom, -1);
      this.remotePort = grow(this.remotePort, -1);
      this.irq = grow(this.irq, -1);
      this.priority = grow(this.priority, EVTCHN_FIFO_PRIORITY_DEFAULT);
      this.lastVcpu = grow(this.lastVcpu, 0);
      this.lastPriority = grow(this.lastPriority, 0);
      this.savedPending = grow(this.savedPending, 0);
    }
    this.nrValid = n;
  }

  /** A new binding's common part (Xen's evtchn_port_init: FIFO default priority). */
  private bind(port: number, state: State, vcpu: number): void {
    this.state[port] = state;
    this.notifyVcpu[port] = vcpu;
    this.priority[port] = EVTCHN_FIFO_PRIORITY_DEFAULT;
  }

  setUnbound(port: number, remoteDom: number): void {
    this.bind(port, State.UNBOUND, 0);
    this.remoteDom[port] = remoteDom;
    this.remotePort[port] = -1;
  }

  /** A fresh local interdomain port (bind_interdomain's local end). */
  setInterdomain(port: number, remoteDom: number, remotePort: number): void {
    this.bind(port, State.INTERDOMAIN, 0);
    this.remoteDom[port] = remoteDom;
    this.remotePort[port] = remotePort;
  }

  /** An unbound port becomes connected (bind_interdomain's remote end): its vCPU and
   *  priority stay. */
  connect(port: number, remoteDom: number, remotePort: number): void {
    this.state[port] = State.INTERDOMAIN;
    this.remoteDom[port] = remoteDom;
    this.remotePort[port] = remotePort;
  }

  /** A connected port whose peer closed goes back to waiting for that peer. */
  disconnect(port: number): void {
    this.state[port] = State.UNBOUND;
    this.remotePort[port] = -1;
  }

  setVirq(port: number, virq: number, vcpu: number): void {
    this.bind(port, State.VIRQ, vcpu);
    this.irq[port] = virq;
    this.virqPort[(virqIsGlobal(virq) ? 0 : vcpu) * NR_VIRQS + virq] = port;
  }

  setIpi(port: number, vcpu: number): void { this.bind(port, State.IPI, vcpu); }

  setPirq(port: number, pirq: number): void {
    this.bind(port, State.PIRQ, 0);
    this.irq[port] = pirq;
    this.pirqPort.set(pirq, port);
  }

  /** The port bound to VIRQ virq on vcpu (vCPU 0 for a global VIRQ), or 0. */
  portOfVirq(virq: number, vcpu: number): number {
    if (!(virq >= 0 && virq < NR_VIRQS)) return 0;
    const v = virqIsGlobal(virq) ? 0 : vcpu;
    if (!(v >= 0 && v < this.nrVcpus)) return 0;
    return this.virqPort[v * NR_VIRQS + virq];
  }

  /** Xen's evtchn_free, less the pending bit (the caller clears it through the Delivery):
   *  the port is FREE with its binding reset to vCPU 0. */
  free(port: number): void {
    const s = this.state[port];
    if (s === State.VIRQ) {
      const virq = this.irq[port];
      const v = virqIsGlobal(virq) ? 0 : this.notifyVcpu[port];
      this.virqPort[v * NR_VIRQS + virq] = 0;
    } else if (s === State.PIRQ) this.pirqPort.delete(this.irq[port]);
    this.state[port] = State.FREE;
    this.remoteDom[port] = -1;
    this.remotePort[port] = -1;
    this.irq[port] = -1;
    this.notifyVcpu[port] = 0;
    this.savedPending[port] = 0;
  }

  /** EVTCHNOP_status's status value. */
  statusOf(port: number): number {
    const s = this.state[port];
    return s === State.RESERVED ? 0 : s;
  }
}
