// The FIFO event channel ABI (Xen's event_fifo.c), over guest memory.
//
// The guest gives Xen, per vCPU, a control block (EVTCHNOP_init_control: a frame it owns and
// an offset) and, for the domain, event array pages (EVTCHNOP_expand_array), 1024 32-bit
// event words each:
//
//   event word   31 PENDING | 30 MASKED | 29 LINKED | 28 BUSY | 27..17 unused | 16..0 LINK
//   control      +0 READY (bit q: queue q has events) | +4 reserved | +8 HEAD[16] (u32 ports)
//
// Each vCPU has 16 queues, one per priority (0 highest). Xen links an event at the tail of the
// queue (notify vCPU, port priority) when it becomes pending while unmasked and unlinked: it
// writes the port into the old tail's LINK if that word is still LINKED, otherwise into
// HEAD; an event that went onto an empty queue sets the READY bit, and a READY bit newly set
// marks events pending in vcpu_info (the same upcall as 2-level). The guest consumes a queue
// from HEAD by clearing LINKED and following LINK (Linux's event_fifo.c). Xen keeps only the
// tails and, per port, the queue the port was last linked on (so that an event moving queues
// invalidates its old queue's tail).
//
// Frames are named by GFN; for a PV guest a GFN is an MFN, which must be the domain's and
// able to take a writable type: Xen keeps a general and a writable-type reference on each
// frame it maps (so it cannot become a page table) until the FIFO state is destroyed
// (EVTCHNOP_reset, domain destruction). Ports beyond the event array are remembered as
// pending (savedPending) and raised when their page arrives.
//
// FifoState is the Xen-private part (control-block places, tails, array frames): plain
// numbers, saved in snapshots; the per-port priority and last queue live in the EvtchnTable.

import type { Domain } from '../domain.js';
import { Errno } from '../errno.js';
import { getPageAndType, pageInfo, PGT, putPageAndType } from '../mm/pagetype.js';
import {
  EVTCHN_FIFO_NR_CHANNELS, EVTCHN_FIFO_PRIORITY_DEFAULT, EVTCHN_FIFO_PRIORITY_MIN, type Delivery, type EvtchnTable,
} from './model.js';
import { markEventsPending } from './twolevel.js';

export const EVTCHN_FIFO_PENDING = 31;
export const EVTCHN_FIFO_MASKED = 30;
export const EVTCHN_FIFO_LINKED = 29;
export const EVTCHN_FIFO_BUSY = 28;
export const EVTCHN_FIFO_LINK_BITS = 17;
export const EVTCHN_FIFO_LINK_MASK = (1 << EVTCHN_FIFO_LINK_BITS) - 1;
export const EVTCHN_FIFO_MAX_QUEUES = EVTCHN_FIFO_PRIORITY_MIN + 1;
export const EVENT_WORDS_PER_PAGE = 1024;
export const EVTCHN_FIFO_MAX_EVENT_ARRAY_PAGES = EVTCHN_FIFO_NR_CHANNELS / EVENT_WORDS_PER_PAGE;
/** struct evtchn_fifo_control_block: ready, _rsvd, head[16]. */
export const enum ControlBlock { READY = 0, HEAD = 8, SIZE = 72 }

const P = 1 << EVTCHN_FIFO_PENDING, M = 1 << EVTCHN_FIFO_MASKED, L = 1 << EVTCHN_FIFO_LINKED, B = 1 << EVTCHN_FIFO_BUSY;

export interface FifoVcpu {
  /** The control block's frame (-1: none yet) and byte offset in it. */
  cbMfn: number;
  cbOffset: number;
  /** Per priority, the port last linked at the queue's tail (0: empty). */
  readonly tail: Int32Array;
}

export class FifoState {
  readonly vcpus: FifoVcpu[] = [];
  /** Event array frames, in port order (EVENT_WORDS_PER_PAGE ports each). */
  readonly arrayMfns: number[] = [];
  constructor(nrVcpus: number) {
    for (let i = 0; i < nrVcpus; i++) this.vcpus.push({ cbMfn: -1, cbOffset: 0, tail: new Int32Array(EVTCHN_FIFO_MAX_QUEUES) });
  }
  /** Ports that have an event word. */
  get numEvtchns(): number { return this.arrayMfns.length * EVENT_WORDS_PER_PAGE; }
}

/** Map a guest frame for Xen's use (map_guest_page): the MFN, or -EINVAL. */
export function mapGuestFrame(d: Domain, gfn: number): number {
  if (!(Number.isSafeInteger(gfn) && gfn >= 0 && gfn < d.xen.frames.frames)) return -Errno.EINVAL;
  const rc = getPageAndType(pageInfo(d.xen), gfn, PGT.WRITABLE, d);
  return rc === 0 ? gfn : -Errno.EINVAL;
}

export function unmapGuestFrame(d: Domain, mfn: number): void { putPageAndType(pageInfo(d.xen), mfn); }

/** Drop every frame the FIFO state holds (evtchn_fifo_destroy). */
export function destroyFifo(d: Domain, f: FifoState): void {
  for (const v of f.vcpus) if (v.cbMfn >= 0) { unmapGuestFrame(d, v.cbMfn); v.cbMfn = -1; }
  for (const m of f.arrayMfns) unmapGuestFrame(d, m);
  f.arrayMfns.length = 0;
}

export class Fifo implements Delivery {
  readonly abi = 'fifo';
  readonly maxPorts = EVTCHN_FIFO_NR_CHANNELS;

  constructor(private readonly d: Domain, readonly table: EvtchnTable, readonly state: FifoState,
    private readonly notify: (vcpu: number) => void, private readonly onPending: (port: number) => void = () => {}) {}

  /** Machine address of the port's event word, or -1 if the array does not reach it. */
  wordPa(port: number): number {
    const page = this.state.arrayMfns[port >>> 10];
    return port >= 0 && page !== undefined ? page * 4096 + (port & (EVENT_WORDS_PER_PAGE - 1)) * 4 : -1;
  }

  private word(port: number): number {
    const a = this.wordPa(port);
    return a < 0 ? -1 : this.d.xen.machine.u32(a);
  }

  isPending(port: number): boolean { const w = this.word(port); return w !== -1 && (w & P) !== 0; }
  isMasked(port: number): boolean { const w = this.word(port); return w === -1 || (w & M) !== 0; }
  isBusy(port: number): boolean { const w = this.word(port); return w !== -1 && (w & L) !== 0; }

  clearPending(port: number): void {
    // Only the P bit: a linked event stays on its queue; the guest skips it.
    const a = this.wordPa(port);
    if (a < 0) return;
    const m = this.d.xen.machine;
    m.set32(a, m.u32(a) & ~P);
  }

  unmask(port: number, vcpu: number): void {
    const a = this.wordPa(port);
    if (a < 0) return;
    const m = this.d.xen.machine;
    const w = m.u32(a) & ~M;
    m.set32(a, w);
    if (w & P) this.setPending(port, vcpu); // relink if pending
  }

  setPending(port: number, vcpu: number): void {
    const t = this.table, m = this.d.xen.machine;
    const a = this.wordPa(port);
    if (a < 0) { t.savedPending[port] = 1; return; }
    let w = m.u32(a);
    const wasPending = (w & P) !== 0;
    w = (w | P) >>> 0;
    m.set32(a, w);
    const qv = this.state.vcpus[vcpu];
    // Link it if it is unmasked and not linked, and the vCPU has a control block (a guest
    // must not unmask an event before its vCPU's control block exists: Xen drops the link).
    if (!(w & M) && !(w & L) && qv && qv.cbMfn >= 0) {
      m.set32(a, (w | L) >>> 0);
      const prio = t.priority[port];
      // If the event was the tail of the queue it was last on, that queue is empty now (the
      // guest consumed it): forget the tail, so a later event there starts a new head.
      const oldQ = this.state.vcpus[t.lastVcpu[port]];
      if (oldQ && oldQ.tail[t.lastPriority[port]] === port) oldQ.tail[t.lastPriority[port]] = 0;
      t.lastVcpu[port] = vcpu;
      t.lastPriority[port] = prio;
      let linked = false;
      const tail = qv.tail[prio];
      if (tail !== 0) {
        const ta = this.wordPa(tail);
        if (ta >= 0) {
          const tw = m.u32(ta);
          if (tw & L) { m.set32(ta, ((tw & ~(B | EVTCHN_FIFO_LINK_MASK)) | port) >>> 0); linked = true; }
        }
      }
      const cb = qv.cbMfn * 4096 + qv.cbOffset;
      if (!linked) m.set32(cb + ControlBlock.HEAD + prio * 4, port);
      qv.tail[prio] = port;
      if (!linked) {
        const ready = m.u32(cb + ControlBlock.READY);
        if (!(ready & (1 << prio))) {
          m.set32(cb + ControlBlock.READY, ready | (1 << prio));
          markEventsPending(this.d, vcpu, this.notify);
        }
      }
    }
    if (!wasPending) this.onPending(port); // evtchn_check_pollers
  }

  /**
   * EVTCHNOP_expand_array's add_page_to_event_array: append a mapped frame and raise the
   * events that became pending while their words were missing.
   */
  addPage(mfn: number): void {
    const t = this.table, first = this.state.numEvtchns;
    this.state.arrayMfns.push(mfn);
    const end = Math.min(this.state.numEvtchns, t.nrValid);
    for (let port = first; port < end; port++) {
      if (!t.savedPending[port]) continue;
      t.savedPending[port] = 0;
      this.setPending(port, t.notifyVcpu[port]);
    }
  }
}

/**
 * The switch from 2-level (setup_ports): every valid port gets the default priority, and a
 * port pending in the 2-level bitmap is remembered as pending (it is raised again when the
 * array page holding it is added). Mask bits are not carried over: they are whatever the
 * guest wrote into its event array pages (Linux masks every word before expand_array).
 */
export function setupPorts(t: EvtchnTable, old: Delivery): void {
  const end = Math.min(t.nrValid, old.maxPorts);
  for (let port = 1; port < end; port++) {
    if (old.isPending(port)) t.savedPending[port] = 1;
    t.priority[port] = EVTCHN_FIFO_PRIORITY_DEFAULT;
  }
}
