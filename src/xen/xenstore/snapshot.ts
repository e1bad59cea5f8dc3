// Snapshot and restore of the xenstore model with msgpackr: an envelope with a magic, a
// format version and a CRC-32 of the body; the body names its fields.
//
// Saved: every node, the generation counter, quotas, introduced domains, and each domain's
// ring connection with its watches, open transactions and transport buffers (a partial
// request, unsent output). Not saved: Unix-socket clients (their sockets do not survive a
// restore) and the hypervisor's own subscriptions (TypeScript callbacks: backends subscribe
// again after a restore, and get the registration event as usual).

import { Packr } from 'msgpackr';
import {
  Connection, type ConnKind, type DomainRec, type OutMsg, type PermEntry, type Quotas, type Transaction,
  type WatchRec, Xenstore, type XenstoreOptions, type XsNode, DEFAULT_QUOTAS,
} from './model.js';

export const XS_SNAPSHOT_MAGIC = 'xensim-xenstore';
export const XS_SNAPSHOT_VERSION = 1;

export class SnapshotError extends Error {
  constructor(msg: string) { super(msg); this.name = 'SnapshotError'; }
}

interface SNode { data: Uint8Array; perms: { id: number; perm: number; ignore?: boolean }[]; children: string[]; gen: number }
interface SAccessed { path: string; orig: SNode | null; node: SNode | null; modified: boolean; fire: 0 | 1 | 2 }
interface STx { id: number; created: boolean; fail: boolean; accessed: SAccessed[] }
interface SConn {
  id: number; kind: ConnKind; domid: number; target: number | null; nextTxId: number;
  watches: { path: string; token: string; prefixLen: number }[]; transactions: STx[];
  rx: Uint8Array; outq: OutMsg[]; outOff: number; ignored: boolean;
}
interface SDomain { domid: number; mfn: string; port: number; shutdown: boolean; conn: number | null }
interface SState {
  generation: number; nextConnId: number; quotas: Quotas;
  nodes: { path: string; node: SNode }[]; domains: SDomain[]; conns: SConn[];
}

const packr = new Packr({ useRecords: false, mapsAsObjects: true });

let crcTable: Uint32Array | null = null;
export function crc32(b: Uint8Array): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let c = 0xffffffff;
  for (let i = 0; i < b.length; i++) c = crcTable[(c ^ b[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

const sNode = (n: XsNode): SNode => ({
  data: n.data, perms: n.perms.map((p) => (p.ignore ? { id: p.id, perm: p.perm, ignore: true } : { id: p.id, perm: p.perm })),
  children: [...n.children], gen: n.gen,
});

const rNode = (s: SNode): XsNode => ({
  data: new Uint8Array(s.data),
  perms: s.perms.map((p): PermEntry => (p.ignore ? { id: p.id, perm: p.perm, ignore: true } : { id: p.id, perm: p.perm })),
  children: [...s.children], gen: s.gen,
});

function sConn(c: Connection): SConn {
  return {
    id: c.id, kind: c.kind, domid: c.domid, target: c.target, nextTxId: c.nextTxId,
    watches: c.watches.map((w) => ({ path: w.path, token: w.token, prefixLen: w.prefixLen })),
    transactions: [...c.transactions.values()].map((t) => ({
      id: t.id, created: t.created, fail: t.fail,
      accessed: [...t.accessed].map(([path, a]) => ({
        path, orig: a.orig && sNode(a.orig), node: a.node && sNode(a.node), modified: a.modified, fire: a.fire,
      })),
    })),
    rx: c.rx, outq: c.outq.map((m) => ({ type: m.type, reqId: m.reqId, txId: m.txId, payload: m.payload })),
    outOff: c.outOff, ignored: c.ignored,
  };
}

/** The model's state as a self-checking msgpack blob. */
export function saveXenstore(xs: Xenstore): Uint8Array {
  const ringConns = [...xs.conns.values()].filter((c) => c.kind === 'ring');
  const state: SState = {
    generation: xs.generation, nextConnId: xs.nextConnId, quotas: { ...xs.quotas },
    nodes: [...xs.nodes].map(([path, n]) => ({ path, node: sNode(n) })),
    domains: [...xs.domains.values()].map((d) => ({
      domid: d.domid, mfn: d.mfn, port: d.port, shutdown: d.shutdown, conn: d.conn && d.conn.kind === 'ring' ? d.conn.id : null,
    })),
    conns: ringConns.map(sConn),
  };
  const body = packr.pack(state);
  return packr.pack({ magic: XS_SNAPSHOT_MAGIC, version: XS_SNAPSHOT_VERSION, crc: crc32(body), body });
}

/** A model from a snapshot. Options supply what a snapshot cannot hold (hooks, domainExists);
 *  hooks.onIntroduce is called with 'restore' for every domain with a ring connection, so
 *  that the host attaches its transport again. */
export function restoreXenstore(blob: Uint8Array, opts: XenstoreOptions = {}): Xenstore {
  let env: { magic?: unknown; version?: unknown; crc?: unknown; body?: unknown };
  try {
    env = packr.unpack(blob) as typeof env;
  } catch (e) {
    throw new SnapshotError(`not a xenstore snapshot (${(e as Error).message})`);
  }
  if (!env || env.magic !== XS_SNAPSHOT_MAGIC) throw new SnapshotError('not a xenstore snapshot (bad magic)');
  if (env.version !== XS_SNAPSHOT_VERSION) throw new SnapshotError(`xenstore snapshot version ${String(env.version)} is not supported`);
  if (!(env.body instanceof Uint8Array) || crc32(env.body) !== env.crc) throw new SnapshotError('xenstore snapshot checksum mismatch');
  const s = packr.unpack(env.body) as SState;

  const xs = new Xenstore({ ...opts, quotas: { ...DEFAULT_QUOTAS, ...s.quotas } }, true);
  xs.generation = s.generation;
  for (const { path, node } of s.nodes) {
    const n = rNode(node);
    xs.nodes.set(path, n);
    xs.owned.set(n.perms[0].id, (xs.owned.get(n.perms[0].id) ?? 0) + 1);
  }
  const byId = new Map<number, Connection>();
  for (const sc of s.conns) {
    const c = new Connection(sc.id, sc.kind, sc.domid);
    c.target = sc.target;
    c.nextTxId = sc.nextTxId;
    c.watches = sc.watches.map((w): WatchRec => ({ path: w.path, token: w.token, prefixLen: w.prefixLen }));
    for (const t of sc.transactions) {
      const tx: Transaction = { id: t.id, created: t.created, fail: t.fail, accessed: new Map() };
      for (const a of t.accessed) {
        tx.accessed.set(a.path, { orig: a.orig && rNode(a.orig), node: a.node && rNode(a.node), modified: a.modified, fire: a.fire });
      }
      c.transactions.set(t.id, tx);
    }
    c.rx = new Uint8Array(sc.rx);
    c.outq = sc.outq.map((m) => ({ type: m.type, reqId: m.reqId, txId: m.txId, payload: new Uint8Array(m.payload) }));
    c.outOff = sc.outOff;
    c.ignored = sc.ignored;
    xs.conns.set(c.id, c);
    byId.set(c.id, c);
  }
  xs.nextConnId = Math.max(s.nextConnId, xs.nextConnId);
  for (const d of s.domains) {
    const rec: DomainRec = { domid: d.domid, mfn: d.mfn, port: d.port, shutdown: d.shutdown, conn: d.conn === null ? null : byId.get(d.conn) ?? null };
    xs.domains.set(d.domid, rec);
  }
  for (const d of xs.domains.values()) if (d.conn) xs.hooks.onIntroduce?.(d, 'restore', xs);
  return xs;
}
