// Event channels of one domain: port allocation, binding state and the rules of each
// EVTCHNOP, with no memory or scheduling of its own. Where the pending and mask bits live
// (the 2-level bitmaps in shared_info, or FIFO queues) is the Delivery's business.

import { Errno } from '../errno.js';

export const enum State { FREE = 0, UNBOUND = 1, INTERDOMAIN = 2, PIRQ = 3, VIRQ = 4, IPI = 5 }
export const NR_VIRQS = 24;
/** Global VIRQs (bound on one vCPU, may move with bind_vcpu); the rest are per-vCPU. */
export const GLOBAL_VIRQS = new Set([2, 3, 4, 6, 8, 9, 10, 11, 12]);
/** The 2-level ABI's port limit on 64-bit: 64 * 64. */
export const EVTCHN_2L_NR_CHANNELS = 4096;

/** How events reach the guest: implemented over guest memory by the hypervisor. */
export interface Delivery {
  /** Set the port pending and, if it is unmasked and newly pending, notify `vcpu`. */
  setPending(port: number, vcpu: number): void;
  clearPending(port: number): void;
  /** Clear the mask; if the port is pending, notify `vcpu` as for a new event. */
  unmask(port: number, vcpu: number): void;
  isPending(port: number): boolean;
  isMasked(port: number): boolean;
}

export class EvtchnTable {
  readonly state = new Uint8Array(EVTCHN_2L_NR_CHANNELS);
  /** vCPU notified for the port. */
  readonly notifyVcpu = new Uint16Array(EVTCHN_2L_NR_CHANNELS);
  /** UNBOUND: the domain allowed to bind; INTERDOMAIN: the remote domain. */
  readonly remoteDom = new Int32Array(EVTCHN_2L_NR_CHANNELS).fill(-1);
  readonly remotePort = new Int32Array(EVTCHN_2L_NR_CHANNELS).fill(-1);
  /** VIRQ number (VIRQ state) or PIRQ. */
  readonly virq = new Int32Array(EVTCHN_2L_NR_CHANNELS).fill(-1);
  /** Per vCPU, VIRQ -> port (0 = unbound): index vcpu * NR_VIRQS + virq. */
  readonly virqPort: Int32Array;

  constructor(readonly nrVcpus: number, public maxPorts = EVTCHN_2L_NR_CHANNELS) {
    this.virqPort = new Int32Array(nrVcpus * NR_VIRQS);
  }

  /** The lowest free port above 0 (port 0 is never used), or -ENOSPC. */
  allocPort(): number {
    for (let p = 1; p < this.maxPorts; p++) if (this.state[p] === State.FREE) return p;
    return -Errno.ENOSPC;
  }

  valid(port: number): boolean { return port > 0 && port < this.maxPorts && Number.isInteger(port); }

  bindVirq(virq: number, vcpu: number): number {
    if (!(virq >= 0 && virq < NR_VIRQS)) return -Errno.EINVAL;
    if (GLOBAL_VIRQS.has(virq) && vcpu !== 0) return -Errno.EINVAL;
    if (!(vcpu >= 0 && vcpu < this.nrVcpus)) return -Errno.ENOENT;
    if (this.virqPort[vcpu * NR_VIRQS + virq] !== 0) return -Errno.EEXIST;
    const port = this.allocPort();
    if (port < 0) return port;
    this.state[port] = State.VIRQ;
    this.notifyVcpu[port] = vcpu;
    this.virq[port] = virq;
    this.virqPort[vcpu * NR_VIRQS + virq] = port;
    return port;
  }

  bindIpi(vcpu: number): number {
    if (!(vcpu >= 0 && vcpu < this.nrVcpus)) return -Errno.ENOENT;
    const port = this.allocPort();
    if (port < 0) return port;
    this.state[port] = State.IPI;
    this.notifyVcpu[port] = vcpu;
    return port;
  }

  allocUnbound(remoteDom: number): number {
    const port = this.allocPort();
    if (port < 0) return port;
    this.state[port] = State.UNBOUND;
    this.remoteDom[port] = remoteDom;
    this.notifyVcpu[port] = 0;
    return port;
  }

  /** The port bound to VIRQ virq on vcpu, or 0. */
  portOfVirq(virq: number, vcpu: number): number {
    if (virq < 0 || virq >= NR_VIRQS || vcpu < 0 || vcpu >= this.nrVcpus) return 0;
    return this.virqPort[vcpu * NR_VIRQS + virq];
  }

  /** Free a port's binding (the caller tears down an interdomain peer). */
  free(port: number): void {
    const s = this.state[port];
    if (s === State.VIRQ) {
      const v = GLOBAL_VIRQS.has(this.virq[port]) ? 0 : this.notifyVcpu[port];
      this.virqPort[v * NR_VIRQS + this.virq[port]] = 0;
    }
    this.state[port] = State.FREE;
    this.remoteDom[port] = -1;
    this.remotePort[port] = -1;
    this.virq[port] = -1;
    this.notifyVcpu[port] = 0;
  }

  bindVcpu(port: number, vcpu: number): number {
    if (!this.valid(port) || this.state[port] === State.FREE) return -Errno.EINVAL;
    if (!(vcpu >= 0 && vcpu < this.nrVcpus)) return -Errno.ENOENT;
    const s = this.state[port];
    if (s === State.VIRQ) {
      if (!GLOBAL_VIRQS.has(this.virq[port])) return -Errno.EINVAL;
    } else if (s !== State.UNBOUND && s !== State.INTERDOMAIN && s !== State.PIRQ) return -Errno.EINVAL;
    // A global VIRQ stays recorded under vCPU 0 (as Xen keeps it); only the target moves.
    this.notifyVcpu[port] = vcpu;
    return 0;
  }
}
