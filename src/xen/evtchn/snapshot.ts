// Snapshot and restore of one domain's event channel state with msgpackr: an envelope with a
// magic, a format version and a CRC-32 of the body; the body names its fields.
//
// Saved: the port table (every per-port field up to the last bucket, as little-endian typed
// array bytes), the limits, the ABI in use and the FIFO ABI's private state (control-block
// places, queue tails, event array frames), and which ports have an in-hypervisor end.
// Derived again on restore: the VIRQ and PIRQ maps (from the ports' states).
// Not saved: guest memory (shared_info bitmaps, vcpu_info, FIFO event words and control
// blocks are RAM, saved with it), the page references Xen holds on FIFO frames (part of the
// frame table's state), and TypeScript callbacks: notify/onPending are given to restore, and
// an in-hypervisor end gets its onSend from `xenEnd` or later from attachXenEnd.

import { Packr } from 'msgpackr';
import type { Domain } from '../domain.js';
import { crc32 } from '../xenstore/snapshot.js';
import { DomainEvents, setEvents } from './events.js';
import { EVENT_WORDS_PER_PAGE, EVTCHN_FIFO_MAX_EVENT_ARRAY_PAGES, EVTCHN_FIFO_MAX_QUEUES, FifoState } from './fifo.js';
import {
  EVTCHN_FIFO_NR_CHANNELS, EVTCHNS_PER_BUCKET, EvtchnTable, NR_VIRQS, PORT_FIELDS, State, virqIsGlobal, type PortField,
} from './model.js';

export const EVTCHN_SNAPSHOT_MAGIC = 'xensim-evtchn';
export const EVTCHN_SNAPSHOT_VERSION = 1;

export class EvtchnSnapshotError extends Error {
  constructor(msg: string) { super(msg); this.name = 'EvtchnSnapshotError'; }
}

interface SFifoVcpu { cbMfn: number; cbOffset: number; tail: number[] }
interface SState {
  domid: number; nrVcpus: number; nrValid: number; maxEvtchnPort: number; nrPirqs: number; pirqAccess: boolean;
  fifoAllowed: boolean; abi: '2l' | 'fifo';
  ports: Record<PortField, Uint8Array>;
  xenEnds: number[];
  fifo: { arrayMfns: number[]; vcpus: SFifoVcpu[] } | null;
}

const packr = new Packr({ useRecords: false, mapsAsObjects: true });

type PortArray = EvtchnTable[PortField];

function bytesOf(a: PortArray, n: number): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, n * a.BYTES_PER_ELEMENT).slice();
}

/** One domain's event channel state as a self-checking msgpack blob. */
export function saveEvents(e: DomainEvents): Uint8Array {
  const t = e.table, n = t.nrValid;
  const ports = {} as Record<PortField, Uint8Array>;
  for (const f of PORT_FIELDS) ports[f] = bytesOf(t[f], n);
  const state: SState = {
    domid: e.d.id, nrVcpus: t.nrVcpus, nrValid: n, maxEvtchnPort: t.maxEvtchnPort, nrPirqs: t.nrPirqs,
    pirqAccess: t.pirqAccess, fifoAllowed: e.fifoAllowed, abi: e.delivery.abi, ports,
    xenEnds: [...e.xenEnds.keys()].sort((a, b) => a - b),
    fifo: e.fifo && {
      arrayMfns: [...e.fifo.arrayMfns],
      vcpus: e.fifo.vcpus.map((v) => ({ cbMfn: v.cbMfn, cbOffset: v.cbOffset, tail: [...v.tail] })),
    },
  };
  const body = packr.pack(state);
  return packr.pack({ magic: EVTCHN_SNAPSHOT_MAGIC, version: EVTCHN_SNAPSHOT_VERSION, crc: crc32(body), body });
}

export interface RestoreOptions {
  notify: (vcpu: number) => void;
  onPending?: (port: number) => void;
  /** The callback of an in-hypervisor end (default: none until attachXenEnd). */
  xenEnd?: (port: number) => (() => void) | undefined;
}

function check(ok: boolean, what: string): void { if (!ok) throw new EvtchnSnapshotError(`event channel snapshot: ${what}`); }

/** Restore a domain's event channel state (its vCPUs must exist) and install it. */
export function restoreEvents(d: Domain, blob: Uint8Array, opts: RestoreOptions): DomainEvents {
  let env: { magic?: unknown; version?: unknown; crc?: unknown; body?: unknown };
  try {
    env = packr.unpack(blob) as typeof env;
  } catch (err) {
    throw new EvtchnSnapshotError(`not an event channel snapshot (${(err as Error).message})`);
  }
  check(!!env && env.magic === EVTCHN_SNAPSHOT_MAGIC, 'bad magic');
  check(env.version === EVTCHN_SNAPSHOT_VERSION, `version ${String(env.version)} is not supported`);
  check(env.body instanceof Uint8Array && crc32(env.body) === env.crc, 'checksum mismatch');
  const s = packr.unpack(env.body as Uint8Array) as SState;

  const nrVcpus = Math.max(1, d.vcpus.length);
  check(s.nrVcpus === nrVcpus, `${s.nrVcpus} vCPUs saved, the domain has ${nrVcpus}`);
  const n = s.nrValid;
  check(Number.isInteger(n) && n >= EVTCHNS_PER_BUCKET && n % EVTCHNS_PER_BUCKET === 0 && n <= EVTCHN_FIFO_NR_CHANNELS, 'bad port count');
  const t = new EvtchnTable(nrVcpus, { privileged: d.privileged });
  t.setValid(n);
  for (const f of PORT_FIELDS) {
    const a = t[f], b = s.ports[f];
    check(b instanceof Uint8Array && b.length === n * a.BYTES_PER_ELEMENT, `bad ${f} array`);
    new Uint8Array(a.buffer, a.byteOffset, b.length).set(b);
  }
  t.maxEvtchnPort = s.maxEvtchnPort;
  t.nrPirqs = s.nrPirqs;
  t.pirqAccess = s.pirqAccess;
  check(t.state[0] === State.RESERVED, 'port 0 is not reserved');
  for (let p = 1; p < n; p++) {
    const st = t.state[p];
    check(st <= State.IPI && t.notifyVcpu[p] < nrVcpus, `bad port ${p}`);
    if (st === State.VIRQ) {
      const virq = t.irq[p];
      check(virq >= 0 && virq < NR_VIRQS, `bad VIRQ on port ${p}`);
      t.virqPort[(virqIsGlobal(virq) ? 0 : t.notifyVcpu[p]) * NR_VIRQS + virq] = p;
    } else if (st === State.PIRQ) t.pirqPort.set(t.irq[p], p);
  }

  const e = new DomainEvents(d, opts.notify, opts.onPending, t);
  e.fifoAllowed = s.fifoAllowed;
  for (const p of s.xenEnds) {
    check(t.valid(p) && t.state[p] === State.INTERDOMAIN, `bad in-hypervisor end ${p}`);
    e.xenEnds.set(p, opts.xenEnd?.(p) ?? (() => {}));
  }
  if (s.abi === 'fifo') {
    check(!!s.fifo && s.fifo.vcpus.length === nrVcpus && s.fifo.arrayMfns.length <= EVTCHN_FIFO_MAX_EVENT_ARRAY_PAGES, 'bad FIFO state');
    const f = new FifoState(nrVcpus);
    f.arrayMfns.push(...s.fifo!.arrayMfns);
    s.fifo!.vcpus.forEach((sv, i) => {
      check(sv.tail.length === EVTCHN_FIFO_MAX_QUEUES, 'bad FIFO tails');
      f.vcpus[i].cbMfn = sv.cbMfn;
      f.vcpus[i].cbOffset = sv.cbOffset;
      f.vcpus[i].tail.set(sv.tail);
    });
    check(f.numEvtchns <= EVTCHN_FIFO_MAX_EVENT_ARRAY_PAGES * EVENT_WORDS_PER_PAGE, 'bad FIFO array');
    e.useFifo(f);
  } else check(s.abi === '2l' && s.fifo === null, 'bad ABI');
  setEvents(d, e);
  return e;
}
