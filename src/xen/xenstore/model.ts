// The xenstore model: the tree of nodes, permissions, transactions, watches and quotas of
// xenstored, with no I/O. Transports (ring.ts, socket.ts) move bytes; protocol.ts decodes
// xs_wire messages and calls the operations here; snapshot.ts saves and restores this state.
//
// Semantics follow Xen's C xenstored (tools/xenstored) and docs/misc/xenstore.txt:
//  - A connection has a domid; domid 0 (dom0, and every Unix-socket client) is privileged and
//    bypasses permission checks and quotas.
//  - A node's permissions are a list: the first entry names the owner and gives the access
//    of every domain not listed; later entries give a listed domain its access (first match).
//    The owner, a privileged connection, and a connection whose SET_TARGET target owns the
//    node get everything. A listed entry also applies to a connection whose target it names.
//  - A failed access answers ENOENT only if the nearest existing ancestor would have allowed
//    that access; otherwise EACCES, so existence does not leak.
//  - WRITE and MKDIR create missing parents. New nodes copy their parent's permissions; an
//    unprivileged creator becomes the owner.
//  - RM removes a subtree; removing a missing node whose parent exists succeeds.
//  - Watches fire on the changed path and its ancestors' watches (a watch on /a fires for a
//    change at /a/b); RM fires, in addition, each watch placed exactly on a removed
//    descendant. A watcher sees the event only if it can read the node, its parent, or (for
//    SET_PERMS) the node under its old permissions. Registration fires once at once.
//  - Transactions: every node a transaction touches is copied into it on first access with
//    the global generation it had then (or "absent"); commit fails with EAGAIN if any of
//    them has changed since (generation-based, as xenstored). Watches caused inside a
//    transaction fire at commit.
//
// Decisions where this model differs from xenstored (documented, deliberate):
//  - Quotas are maxima: a domain may own at most `nodes` nodes, hold `watches` watches and
//    `transactions` open transactions (xenstored lets the count reach quota+1 for the last
//    two).
//  - On commit every change is applied before any watch fires (xenstored interleaves).
//  - A domain that goes away loses its ACL entries at once (they are marked ignored) instead
//    of lazily by generation; its owned nodes are deleted, as xenstored without
//    --keep-orphans.
//  - No write rate limiting, memory quota or duplicate-pending-event suppression.

export const XS_PERM_NONE = 0;
export const XS_PERM_READ = 1;
export const XS_PERM_WRITE = 2;
export const XS_PERM_OWNER = 4;

/** xs_wire.h message type of a watch event: the model queues these itself. */
export const XS_WATCH_EVENT = 15;

export const NO_GENERATION = -1;
export const DOMID_FIRST_RESERVED = 0x7ff0;
export const DOMID_SELF = 0x7ff0;

export const SPECIAL_INTRODUCE = '@introduceDomain';
export const SPECIAL_RELEASE = '@releaseDomain';

/** xs_wire.h xsd_errors, in wire order. */
export const XSD_ERRORS = ['EINVAL', 'EACCES', 'EEXIST', 'EISDIR', 'ENOENT', 'ENOMEM', 'ENOSPC', 'EIO',
  'ENOTEMPTY', 'ENOSYS', 'EROFS', 'EBUSY', 'EAGAIN', 'EISCONN', 'E2BIG', 'EPERM'] as const;
export type XsErrno = typeof XSD_ERRORS[number];

export class XsError extends Error {
  constructor(readonly errno: XsErrno, detail?: string) {
    super(detail ? `${errno}: ${detail}` : errno);
    this.name = 'XsError';
  }
}
const fail = (e: XsErrno): never => { throw new XsError(e); };

export interface PermEntry {
  readonly id: number;
  /** XS_PERM_READ | XS_PERM_WRITE bits. */
  readonly perm: number;
  /** Entry naming a domain that no longer (or never) existed: kept, but grants nothing. */
  readonly ignore?: boolean;
}

/** A node is immutable: every change makes a new one (transactions keep references). */
export interface XsNode {
  readonly data: Uint8Array;
  readonly perms: readonly PermEntry[];
  readonly children: readonly string[];
  readonly gen: number;
}

export interface Quotas {
  /** Nodes a domain may own. */
  nodes: number;
  /** Size of a node record: 16 + 8 per permission + data + each child name and its NUL. */
  entrySize: number;
  /** Watches per domain. */
  watches: number;
  /** Open transactions per domain. */
  transactions: number;
  /** Nodes one transaction may touch. */
  transactionNodes: number;
  /** Permission entries per node. */
  perms: number;
  /** Path length, not counting a leading /local/domain/<id>/. */
  pathMax: number;
}

export const DEFAULT_QUOTAS: Readonly<Quotas> = {
  nodes: 1000, entrySize: 2048, watches: 128, transactions: 10, transactionNodes: 1024, perms: 5, pathMax: 2048,
};
export const QUOTA_NAMES: readonly (keyof Quotas)[] = ['nodes', 'entrySize', 'watches', 'transactions', 'transactionNodes', 'perms', 'pathMax'];

/** A reply or event waiting for its transport, in wire terms. */
export interface OutMsg { type: number; reqId: number; txId: number; payload: Uint8Array }

export type ConnKind = 'ring' | 'socket' | 'host';

export interface WatchRec {
  /** Canonical (absolute or special) path. */
  readonly path: string;
  readonly token: string;
  /** Characters stripped from event paths (relative watches report relative paths). */
  readonly prefixLen: number;
}

/** A node a transaction has touched. */
export interface Accessed {
  /** The global node at first access (null: absent), whose generation is checked at commit. */
  readonly orig: XsNode | null;
  /** The transaction's view. */
  node: XsNode | null;
  modified: boolean;
  /** Watch to fire at commit: 0 none, 1 exact, 2 the node and its ancestors' watches. */
  fire: 0 | 1 | 2;
}

export interface Transaction {
  readonly id: number;
  readonly accessed: Map<string, Accessed>;
  /** A node was created in it (the node quota is checked again at commit). */
  created: boolean;
  /** An access could not be recorded (transaction-nodes quota): commit fails. */
  fail: boolean;
}

/** One client of xenstored: a domain's ring, a socket client, or the hypervisor itself. */
export class Connection {
  watches: WatchRec[] = [];
  readonly transactions = new Map<number, Transaction>();
  nextTxId = 1;
  /** SET_TARGET: this connection acts for that domain too. */
  target: number | null = null;
  /** Transport state, kept here so that snapshots hold it: input bytes of a partial
   *  message, queued output, and bytes of outq[0] already sent. */
  rx: Uint8Array = new Uint8Array(0);
  outq: OutMsg[] = [];
  outOff = 0;
  /** The transport stopped talking to it (protocol error). */
  ignored = false;
  closed = false;
  /** Set by the transport: output was queued. */
  onOutput: (() => void) | null = null;

  constructor(readonly id: number, readonly kind: ConnKind, readonly domid: number) {}

  get privileged(): boolean { return this.domid === 0; }
}

export interface DomainRec {
  readonly domid: number;
  /** The guest frame of the ring page as INTRODUCE gave it (decimal text: it may be 64-bit). */
  mfn: string;
  /** The guest's event channel port. */
  port: number;
  shutdown: boolean;
  conn: Connection | null;
}

/** Where an operation runs: a connection, and a transaction of it or none. */
export interface Ctx { readonly conn: Connection; readonly tx: Transaction | null }

export interface XenstoreHooks {
  /** A domain was introduced (or re-introduced, or restored from a snapshot): attach its ring
   *  transport to `conn`. Throw an XsError to refuse (e.g. the page cannot be mapped). */
  onIntroduce?(d: DomainRec, why: 'introduce' | 'reintroduce' | 'restore', xs: Xenstore): void;
  /** A domain was released: detach its transport. */
  onRelease?(domid: number, xs: Xenstore): void;
}

export interface XenstoreOptions {
  quotas?: Partial<Quotas>;
  /** Does the hypervisor know this domain? SET_PERMS with an unknown owner answers ENOENT and
   *  entries for unknown domains grant nothing. Default: every domid below DOMID_FIRST_RESERVED. */
  domainExists?: (domid: number) => boolean;
  hooks?: XenstoreHooks;
}

export type WatchCallback = (path: string, token: string) => void;

const VALID_CHARS = /^[A-Za-z0-9\-/_@]*$/;
const LOCAL_PREFIX = /^\/local\/domain\/\d{1,5}\//;
const EMPTY = new Uint8Array(0);
/** Messages a ring connection may have waiting before its watch events are dropped. */
export const MAX_QUEUED_EVENTS = 1024;

export function parentOf(path: string): string {
  const i = path.lastIndexOf('/');
  return i > 0 ? path.slice(0, i) : '/';
}
export function baseName(path: string): string { return path.slice(path.lastIndexOf('/') + 1); }
export function childPath(parent: string, name: string): string { return parent === '/' ? `/${name}` : `${parent}/${name}`; }
/** Is `child` the node `parent` or below it? Everything is below "/". */
export function isChild(child: string, parent: string): boolean {
  if (parent === '/') return true;
  return child === parent || (child.startsWith(parent) && child.charCodeAt(parent.length) === 0x2f);
}
export function domainPath(domid: number): string { return `/local/domain/${domid}`; }

export function permChar(perm: number): string { return 'nrwb'[perm & 3]; }
export function permToString(p: PermEntry): string { return `${permChar(p.perm)}${p.id}`; }
/** "r5" -> {id 5, READ}; null if malformed (the letter n/r/w/b, then a decimal domid). */
export function parsePerm(s: string): PermEntry | null {
  const m = /^([nrwb])(\d{1,5})$/.exec(s);
  if (!m) return null;
  const id = Number(m[2]);
  if (id > 0xffff) return null;
  return { id, perm: 'nrwb'.indexOf(m[1]) };
}

export function nodeSize(n: { data: Uint8Array; perms: readonly PermEntry[]; children: readonly string[] }): number {
  let s = 16 + 8 * n.perms.length + n.data.length;
  for (const c of n.children) s += c.length + 1;
  return s;
}

/** Access a connection has to a node with these permissions (READ | WRITE | OWNER bits). */
export function permFor(conn: { domid: number; target: number | null }, perms: readonly PermEntry[]): number {
  const owner = perms[0].id;
  if (conn.domid === 0 || owner === conn.domid || (conn.target !== null && owner === conn.target)) {
    return XS_PERM_READ | XS_PERM_WRITE | XS_PERM_OWNER;
  }
  for (let i = 1; i < perms.length; i++) {
    const p = perms[i];
    if (!p.ignore && (p.id === conn.domid || (conn.target !== null && p.id === conn.target))) return p.perm & 3;
  }
  return perms[0].perm & 3;
}

function mkNode(data: Uint8Array, perms: readonly PermEntry[], children: readonly string[], gen: number): XsNode {
  return { data, perms, children, gen };
}

export class Xenstore {
  /** Every node by canonical path, the special @ nodes included. */
  readonly nodes = new Map<string, XsNode>();
  /** The global generation counter (every write takes the next value). */
  generation = 0;
  readonly quotas: Quotas;
  readonly domains = new Map<number, DomainRec>();
  /** Connections in creation order (the order watches fire in). */
  readonly conns = new Map<number, Connection>();
  nextConnId = 1;
  /** Nodes owned per domid. */
  readonly owned = new Map<number, number>();
  hooks: XenstoreHooks;
  /** Exceptions other than XsError met while answering requests (bugs; answered EIO). */
  readonly internalErrors: unknown[] = [];
  readonly domainExists: (domid: number) => boolean;

  /** The hypervisor's own privileged connection, for the TypeScript API. */
  readonly host: Connection;
  private readonly hostCallbacks = new Map<string, WatchCallback>();
  private hostQueue: { path: string; token: string }[] = [];
  private depth = 0;
  private flushing = false;

  constructor(opts: XenstoreOptions = {}, empty = false) {
    this.quotas = { ...DEFAULT_QUOTAS, ...opts.quotas };
    this.hooks = opts.hooks ?? {};
    this.domainExists = opts.domainExists ?? ((d) => d >= 0 && d < DOMID_FIRST_RESERVED);
    this.host = this.connect('host', 0);
    if (!empty) {
      const perms: PermEntry[] = [{ id: 0, perm: XS_PERM_NONE }];
      this.setGlobal('/', mkNode(EMPTY, perms, ['tool'], ++this.generation));
      this.setGlobal('/tool', mkNode(EMPTY, perms, ['xenstored'], ++this.generation));
      this.setGlobal('/tool/xenstored', mkNode(EMPTY, perms, [], ++this.generation));
      this.setGlobal(SPECIAL_RELEASE, mkNode(EMPTY, perms, [], ++this.generation));
      this.setGlobal(SPECIAL_INTRODUCE, mkNode(EMPTY, perms, [], ++this.generation));
      // dom0 is the master domain: introduced from the start, its ring attached later.
      this.domains.set(0, { domid: 0, mfn: '0', port: 0, shutdown: false, conn: null });
    }
  }

  // ---------------------------------------------------------------- connections

  connect(kind: ConnKind, domid: number): Connection {
    const c = new Connection(this.nextConnId++, kind, domid);
    this.conns.set(c.id, c);
    return c;
  }

  /** The connection went away: its watches and transactions with it. */
  disconnect(c: Connection): void {
    c.watches = [];
    c.transactions.clear();
    c.outq = [];
    c.outOff = 0;
    c.rx = new Uint8Array(0);
    c.closed = true;
    this.conns.delete(c.id);
  }

  /** The transport gave up on the connection (protocol error): keep it, drop its state. */
  ignore(c: Connection): void {
    c.ignored = true;
    c.watches = [];
    c.transactions.clear();
    c.outq = [];
    c.outOff = 0;
    c.rx = new Uint8Array(0);
  }

  /** Queue a reply or event for the connection's transport. */
  queue(c: Connection, m: OutMsg): void {
    if (c.closed || c.ignored) return;
    if (c.kind === 'host') return;
    c.outq.push(m);
    c.onOutput?.();
  }

  private sendEvent(c: Connection, path: string, token: string): void {
    if (c.kind === 'host') { this.hostQueue.push({ path, token }); return; }
    // A guest that never reads its ring must not grow our memory without bound: past this
    // many queued messages its events are dropped (xenstored drops them at its memory quota).
    if (c.kind === 'ring' && c.outq.length >= MAX_QUEUED_EVENTS) return;
    this.queue(c, { type: XS_WATCH_EVENT, reqId: 0, txId: 0, payload: Uint8Array.from(Buffer.from(`${path}\0${token}\0`, 'latin1')) });
  }

  /** Run an operation; at the outermost level, then deliver the hypervisor's own watch events
   *  (so that a callback never runs in the middle of an operation). */
  op<T>(fn: () => T): T {
    this.depth++;
    try {
      return fn();
    } finally {
      this.depth--;
      if (this.depth === 0) this.flushHost();
    }
  }

  private flushHost(): void {
    if (this.flushing) return;
    this.flushing = true;
    try {
      while (this.hostQueue.length > 0) {
        const e = this.hostQueue.shift()!;
        try {
          this.hostCallbacks.get(e.token)?.(e.path, e.token);
        } catch (err) {
          // A backend's bug must not stop a guest's request: keep it for tests and logs.
          this.internalErrors.push(err);
        }
      }
    } finally {
      this.flushing = false;
    }
  }

  /** The context for a request on `c` with transaction id `txId` (0: none). */
  ctx(c: Connection, txId: number): Ctx {
    if (txId === 0) return { conn: c, tx: null };
    const tx = c.transactions.get(txId);
    if (!tx) fail('ENOENT');
    return { conn: c, tx: tx! };
  }

  // ---------------------------------------------------------------- paths and nodes

  implicitPath(c: Connection): string { return domainPath(c.domid); }

  private unpriv(c: Connection): boolean { return c.domid !== 0; }

  /** A request's path made absolute and checked; EINVAL if it is not a valid node name. */
  canonicalize(c: Connection, raw: string | null, allowSpecial: boolean): string {
    if (raw === null || !VALID_CHARS.test(raw) || (raw[0] === '@' && !allowSpecial)) fail('EINVAL');
    const name = raw![0] !== '/' && raw![0] !== '@' ? `${this.implicitPath(c)}/${raw}` : raw!;
    const m = LOCAL_PREFIX.exec(name);
    const localOff = m ? m[0].length : 0;
    if ((name.endsWith('/') && name !== '/') || name.includes('//')) fail('EINVAL');
    if (this.unpriv(c) && name.length - localOff > this.quotas.pathMax) fail('EINVAL');
    return name;
  }

  private ownedBy(domid: number): number { return this.owned.get(domid) ?? 0; }

  private count(domid: number, d: number): void {
    const v = this.ownedBy(domid) + d;
    if (v === 0) this.owned.delete(domid); else this.owned.set(domid, v);
  }

  private setGlobal(path: string, node: XsNode | null): void {
    const old = this.nodes.get(path);
    if (old) this.count(old.perms[0].id, -1);
    if (node) { this.nodes.set(path, node); this.count(node.perms[0].id, 1); } else this.nodes.delete(path);
  }

  /** A node as the context sees it; in a transaction the first access records it. */
  private lookup(ctx: Ctx, path: string): XsNode | null {
    const tx = ctx.tx;
    if (!tx) return this.nodes.get(path) ?? null;
    const a = tx.accessed.get(path);
    if (a) return a.node;
    if (this.unpriv(ctx.conn) && tx.accessed.size >= this.quotas.transactionNodes) {
      tx.fail = true;
      fail('ENOSPC');
    }
    const g = this.nodes.get(path) ?? null;
    tx.accessed.set(path, { orig: g, node: g, modified: false, fire: 0 });
    return g;
  }

  /** Write (or delete, with null) a node the context has looked up. */
  private store(ctx: Ctx, path: string, node: XsNode | null): void {
    if (!ctx.tx) { this.setGlobal(path, node); return; }
    const a = ctx.tx.accessed.get(path);
    if (!a) throw new Error(`xenstore: store of unaccessed ${path}`);
    a.node = node;
    a.modified = true;
  }

  private withData(n: XsNode, data: Uint8Array): XsNode { return mkNode(data, n.perms, n.children, ++this.generation); }
  private withChildren(n: XsNode, children: readonly string[]): XsNode { return mkNode(n.data, n.perms, children, ++this.generation); }
  private withPerms(n: XsNode, perms: readonly PermEntry[]): XsNode { return mkNode(n.data, perms, n.children, ++this.generation); }

  private checkSize(ctx: Ctx, n: { data: Uint8Array; perms: readonly PermEntry[]; children: readonly string[] }): void {
    if (this.unpriv(ctx.conn) && nodeSize(n) > this.quotas.entrySize) fail('ENOSPC');
  }

  /** Nodes owned by `domid` as the context sees them (a transaction's creations included). */
  private ownedInCtx(ctx: Ctx, domid: number): number {
    let n = this.ownedBy(domid);
    if (ctx.tx) {
      for (const a of ctx.tx.accessed.values()) {
        if (!a.modified) continue;
        if (a.orig && a.orig.perms[0].id === domid) n--;
        if (a.node && a.node.perms[0].id === domid) n++;
      }
    }
    return n;
  }

  /**
   * Look a node up and check the access (xenstored's get_node): returns the node, or null
   * and the errno to answer: ENOENT only if the nearest existing ancestor allows `perm`.
   */
  private getNode(ctx: Ctx, name: string, perm: number): { node: XsNode | null; err: XsErrno | null } {
    const node = this.lookup(ctx, name);
    if (node && (permFor(ctx.conn, node.perms) & perm) === perm) return { node, err: null };
    const err: XsErrno = node ? 'EACCES' : 'ENOENT';
    // Ask the parents.
    let p = name;
    let found: XsNode | null = null;
    do {
      p = parentOf(p);
      found = this.lookup(ctx, p);
    } while (!found && p !== '/');
    const parentPerm = found ? permFor(ctx.conn, found.perms) : XS_PERM_NONE;
    return { node: null, err: parentPerm & perm ? err : 'EACCES' };
  }

  private mustGet(ctx: Ctx, name: string, perm: number): XsNode {
    const r = this.getNode(ctx, name, perm);
    if (!r.node) fail(r.err!);
    return r.node!;
  }

  // ---------------------------------------------------------------- watches firing

  /** A change at `name`: fire now, or (in a transaction) at commit. `node`/`parent` give the
   *  state to check read access against where it is not the global one (removed nodes). */
  private fire(ctx: Ctx, name: string, exact: boolean, node?: XsNode | null, parent?: XsNode | null,
    oldPerms?: readonly PermEntry[] | null): void {
    if (ctx.tx) {
      const a = ctx.tx.accessed.get(name)!;
      if (a.fire === 0) a.fire = exact ? 1 : 2;
      else if (!exact) a.fire = 2;
      return;
    }
    this.fireNow(name, exact, node, parent, oldPerms ?? null);
  }

  private fireNow(name: string, exact: boolean, node: XsNode | null | undefined, parent: XsNode | null | undefined,
    oldPerms: readonly PermEntry[] | null): void {
    for (const c of this.conns.values()) {
      if (c.watches.length === 0) continue;
      if (!this.watchPermitted(c, name, node, parent, oldPerms)) continue;
      for (const w of c.watches) {
        if (exact ? w.path === name : isChild(name, w.path)) this.sendEvent(c, name.slice(w.prefixLen), w.token);
      }
    }
  }

  private watchPermitted(c: Connection, name: string, node: XsNode | null | undefined, parent: XsNode | null | undefined,
    oldPerms: readonly PermEntry[] | null): boolean {
    if (oldPerms && permFor(c, oldPerms) & XS_PERM_READ) return true;
    const n = node === undefined ? this.nodes.get(name) ?? null : node;
    if (!n) return false;
    if (permFor(c, n.perms) & XS_PERM_READ) return true;
    const p = parent === undefined ? this.nodes.get(parentOf(name)) ?? null : parent;
    return p !== null && (permFor(c, p.perms) & XS_PERM_READ) !== 0;
  }

  private fireSpecial(name: string): void {
    const n = this.nodes.get(name);
    if (n) this.fireNow(name, true, n, undefined, null);
  }

  // ---------------------------------------------------------------- operations

  read(ctx: Ctx, path: string | null): Uint8Array {
    return this.mustGet(ctx, this.canonicalize(ctx.conn, path, false), XS_PERM_READ).data;
  }

  /** Children names and the node's generation (DIRECTORY, DIRECTORY_PART). */
  directory(ctx: Ctx, path: string | null): { children: readonly string[]; gen: number } {
    const n = this.mustGet(ctx, this.canonicalize(ctx.conn, path, false), XS_PERM_READ);
    return { children: n.children, gen: n.gen };
  }

  getPerms(ctx: Ctx, path: string | null): readonly PermEntry[] {
    return this.mustGet(ctx, this.canonicalize(ctx.conn, path, true), XS_PERM_READ).perms;
  }

  write(ctx: Ctx, path: string | null, data: Uint8Array): void {
    const name = this.canonicalize(ctx.conn, path, false);
    const r = this.getNode(ctx, name, XS_PERM_WRITE);
    if (r.node) {
      const n = this.withData(r.node, data);
      this.checkSize(ctx, n);
      this.store(ctx, name, n);
      this.fire(ctx, name, false);
      return;
    }
    if (r.err !== 'ENOENT') fail(r.err!);
    this.create(ctx, name, data);
    this.fire(ctx, name, false);
  }

  mkdir(ctx: Ctx, path: string | null): void {
    const name = this.canonicalize(ctx.conn, path, false);
    const r = this.getNode(ctx, name, XS_PERM_WRITE);
    if (r.node) return;
    if (r.err !== 'ENOENT') fail(r.err!);
    this.create(ctx, name, EMPTY);
    this.fire(ctx, name, false);
  }

  /** Make `name` and its missing parents (xenstored's construct_node + create_node). */
  private create(ctx: Ctx, name: string, data: Uint8Array): void {
    const names = [name];
    let parentName = parentOf(name);
    let parent = this.lookup(ctx, parentName);
    while (!parent) {
      if (parentName === '/') fail('ENOENT');
      names.push(parentName);
      parentName = parentOf(parentName);
      parent = this.lookup(ctx, parentName);
    }
    const unpriv = this.unpriv(ctx.conn);
    if (unpriv && this.ownedInCtx(ctx, ctx.conn.domid) + names.length > this.quotas.nodes) fail('ENOSPC');
    // Build top-down, checking every size before anything is stored.
    const planned: [string, XsNode][] = [];
    let up = this.withChildren(parent, [...parent.children, baseName(names[names.length - 1])]);
    this.checkSize(ctx, up);
    planned.push([parentName, up]);
    for (let i = names.length - 1; i >= 0; i--) {
      const perms = up.perms.map((p) => ({ ...p }));
      if (unpriv) perms[0] = { id: ctx.conn.domid, perm: perms[0].perm };
      const n = mkNode(i === 0 ? data : EMPTY, perms, i === 0 ? [] : [baseName(names[i - 1])], ++this.generation);
      this.checkSize(ctx, n);
      planned.push([names[i], n]);
      up = n;
    }
    for (const [p, n] of planned) this.store(ctx, p, n);
    if (ctx.tx) ctx.tx.created = true;
  }

  rm(ctx: Ctx, path: string | null): void {
    const name = this.canonicalize(ctx.conn, path, false);
    const r = this.getNode(ctx, name, XS_PERM_WRITE);
    if (!r.node) {
      if (r.err === 'ENOENT' && this.lookup(ctx, parentOf(name))) return;
      fail(r.err!);
    }
    if (name === '/') fail('EINVAL');
    const parentName = parentOf(name);
    const parent = this.lookup(ctx, parentName);
    if (!parent) fail('EINVAL');
    // Walk the subtree (children before their parent, as xenstored's delnode_sub).
    const removed: { path: string; node: XsNode; parent: XsNode }[] = [];
    const walk = (p: string, n: XsNode, up: XsNode): void => {
      for (const c of n.children) {
        const cp = childPath(p, c);
        const cn = this.lookup(ctx, cp);
        if (cn) walk(cp, cn, n);
      }
      removed.push({ path: p, node: n, parent: up });
    };
    walk(name, r.node!, parent!);
    for (const x of removed) this.store(ctx, x.path, null);
    const base = baseName(name);
    this.store(ctx, parentName, this.withChildren(parent!, parent!.children.filter((c) => c !== base)));
    for (const x of removed) this.fire(ctx, x.path, x.path !== name, x.node, x.parent);
  }

  /** SET_PERMS with the permission strings of the request ("r5", ...). */
  setPermsStrings(ctx: Ctx, path: string | null, strs: readonly string[]): void {
    if (strs.length === 0) fail('EINVAL');
    if (this.unpriv(ctx.conn) && strs.length > this.quotas.perms) fail('ENOSPC');
    const perms: PermEntry[] = [];
    for (const s of strs) {
      const p = parsePerm(s);
      if (!p) fail('EINVAL');
      perms.push(p!);
    }
    this.setPerms(ctx, path, perms);
  }

  setPerms(ctx: Ctx, path: string | null, permsIn: readonly PermEntry[]): void {
    if (permsIn.length === 0) fail('EINVAL');
    if (this.unpriv(ctx.conn) && permsIn.length > this.quotas.perms) fail('ENOSPC');
    const perms = permsIn.map((p) => (this.domainExists(p.id) ? { id: p.id, perm: p.perm & 3 } : { id: p.id, perm: p.perm & 3, ignore: true }));
    if (perms[0].ignore) fail('ENOENT');
    const name = this.canonicalize(ctx.conn, path, true);
    const node = this.mustGet(ctx, name, XS_PERM_WRITE | XS_PERM_OWNER);
    if (this.unpriv(ctx.conn) && perms[0].id !== node.perms[0].id) fail('EPERM');
    const n = this.withPerms(node, perms);
    this.checkSize(ctx, n);
    this.store(ctx, name, n);
    this.fire(ctx, name, false, undefined, undefined, node.perms);
  }

  /** WATCH: returns the path of the event that registration fires (sent after the reply). */
  watch(c: Connection, path: string | null, token: string): WatchRec {
    const relative = path !== null && !path.startsWith('/') && !path.startsWith('@');
    const name = this.canonicalize(c, path, true);
    if (c.watches.some((w) => w.path === name && w.token === token)) fail('EEXIST');
    if (this.unpriv(c) && c.watches.length >= this.quotas.watches) fail('E2BIG');
    const w: WatchRec = { path: name, token, prefixLen: relative ? this.implicitPath(c).length + 1 : 0 };
    c.watches.push(w);
    return w;
  }

  /** The event a new watch fires once (xenstored: "simplifies clients and restart"). */
  fireInitial(c: Connection, w: WatchRec): void { this.sendEvent(c, w.path.slice(w.prefixLen), w.token); }

  unwatch(c: Connection, path: string | null, token: string): void {
    const name = this.canonicalize(c, path, true);
    const i = c.watches.findIndex((w) => w.path === name && w.token === token);
    if (i < 0) fail('ENOENT');
    c.watches.splice(i, 1);
  }

  resetWatches(c: Connection): void {
    c.watches = [];
    c.transactions.clear();
  }

  transactionStart(ctx: Ctx): number {
    if (ctx.tx) fail('EBUSY');
    const c = ctx.conn;
    if (this.unpriv(c) && c.transactions.size >= this.quotas.transactions) fail('ENOSPC');
    ++this.generation;
    let id = c.nextTxId;
    while (id === 0 || c.transactions.has(id)) id = (id + 1) >>> 0;
    c.nextTxId = (id + 1) >>> 0;
    c.transactions.set(id, { id, accessed: new Map(), created: false, fail: false });
    return id;
  }

  /** TRANSACTION_END: the transaction is over whatever the answer. */
  transactionEnd(ctx: Ctx, commit: boolean): void {
    const tx = ctx.tx;
    if (!tx) fail('ENOENT');
    ctx.conn.transactions.delete(tx!.id);
    if (!commit) return;
    if (tx!.fail) fail('ENOMEM');
    if (tx!.created && this.unpriv(ctx.conn) && this.ownedInCtx(ctx, ctx.conn.domid) > this.quotas.nodes) fail('ENOSPC');
    for (const [p, a] of tx!.accessed) {
      const g = this.nodes.get(p);
      if ((g ? g.gen : NO_GENERATION) !== (a.orig ? a.orig.gen : NO_GENERATION)) fail('EAGAIN');
    }
    for (const [p, a] of tx!.accessed) {
      if (!a.modified) continue;
      if (a.node) this.setGlobal(p, mkNode(a.node.data, a.node.perms, a.node.children, ++this.generation));
      else if (a.orig) this.setGlobal(p, null);
    }
    for (const [p, a] of tx!.accessed) {
      if (a.fire) this.fireNow(p, a.fire === 1, undefined, undefined, a.orig ? a.orig.perms : null);
    }
  }

  // ---------------------------------------------------------------- domains

  isIntroduced(domid: number): boolean { return domid === DOMID_SELF || this.domains.has(domid); }

  /** INTRODUCE: start talking to a domain over its ring page (mfn) and event channel (port). */
  introduce(domid: number, mfn: string, port: number): DomainRec {
    if (!Number.isInteger(domid) || domid < 0 || domid >= DOMID_FIRST_RESERVED) fail('EINVAL');
    if (!Number.isInteger(port) || port <= 0) fail('EINVAL');
    let d = this.domains.get(domid);
    if (d && d.conn) {
      // Re-introduction: rebind the event channel and start the connection afresh.
      d.port = port;
      d.mfn = mfn;
      this.resetConn(d.conn);
      this.hooks.onIntroduce?.(d, 'reintroduce', this);
      return d;
    }
    const fresh = !d;
    d = d ?? { domid, mfn, port, shutdown: false, conn: null };
    d.mfn = mfn;
    d.port = port;
    d.shutdown = false;
    d.conn = this.connect('ring', domid);
    this.domains.set(domid, d);
    try {
      this.hooks.onIntroduce?.(d, 'introduce', this);
    } catch (e) {
      this.disconnect(d.conn);
      d.conn = null;
      if (fresh) this.domains.delete(domid);
      throw e;
    }
    if (domid !== 0) this.fireSpecial(SPECIAL_INTRODUCE);
    return d;
  }

  private resetConn(c: Connection): void {
    c.watches = [];
    c.transactions.clear();
    c.outq = [];
    c.outOff = 0;
    c.rx = new Uint8Array(0);
    c.ignored = false;
  }

  private introducedNonDom0(domid: number): DomainRec {
    if (domid === 0) fail('EINVAL');
    const d = this.domains.get(domid);
    if (!d) fail('ENOENT');
    return d!;
  }

  /** RELEASE (or the domain died): drop its connection, delete the nodes it owns, forget its
   *  ACL entries, and fire @releaseDomain. */
  release(domid: number): void {
    const d = this.introducedNonDom0(domid);
    if (d.conn) {
      d.conn.watches = [];
      this.disconnect(d.conn);
      d.conn = null;
    }
    this.domains.delete(domid);
    this.hooks.onRelease?.(domid, this);
    for (const c of this.conns.values()) if (c.target === domid) c.target = null;
    const sys: Ctx = { conn: this.host, tx: null };
    const walk = (p: string): void => {
      const n = this.nodes.get(p);
      if (!n) return;
      if (n.perms[0].id === domid && p !== '/') { this.rm(sys, p); return; }
      for (const c of [...n.children]) walk(childPath(p, c));
    };
    walk('/');
    for (const [p, n] of this.nodes) {
      let perms = n.perms;
      if (perms[0].id === domid) perms = [{ id: 0, perm: perms[0].perm }, ...perms.slice(1)];
      if (perms.some((e, i) => i > 0 && e.id === domid && !e.ignore)) {
        perms = perms.map((e, i) => (i > 0 && e.id === domid ? { ...e, ignore: true } : e));
      }
      if (perms !== n.perms) this.setGlobal(p, mkNode(n.data, perms, n.children, n.gen));
    }
    this.fireSpecial(SPECIAL_RELEASE);
  }

  /** RESUME: clear the shutdown flag so that a later shutdown fires @releaseDomain again. */
  resume(domid: number): void { this.introducedNonDom0(domid).shutdown = false; }

  /** The domain shut down (VIRQ_DOM_EXC): fire @releaseDomain once. */
  domainShutdown(domid: number): void {
    const d = this.domains.get(domid);
    if (!d || d.shutdown) return;
    d.shutdown = true;
    this.fireSpecial(SPECIAL_RELEASE);
  }

  /** SET_TARGET: `domid` (a device model stub domain) may act for `target`. */
  setTarget(domid: number, target: number): void {
    const d = this.domains.get(domid);
    if (!d) fail('ENOENT');
    if (!this.domains.has(target)) fail('ENOENT');
    if (!d!.conn) fail('EINVAL');
    d!.conn!.target = target;
  }

  // ---------------------------------------------------------------- TypeScript API

  /** The hypervisor's own client (privileged, as dom0): read/write/mkdir/rm, watches with
   *  callbacks, transactions. */
  readonly dom0: Dom0Client = new Dom0Client(this);

  /** Deliver an event to a subscription of the hypervisor's own connection. */
  hostSubscribe(token: string, cb: WatchCallback | null): void {
    if (cb) this.hostCallbacks.set(token, cb); else this.hostCallbacks.delete(token);
  }

  introduceDomain(domid: number, mfn: number | bigint | string, port: number): DomainRec {
    return this.op(() => this.introduce(domid, String(mfn), port));
  }
  releaseDomain(domid: number): void { this.op(() => this.release(domid)); }
  shutdownDomain(domid: number): void { this.op(() => this.domainShutdown(domid)); }

  /** The whole tree as plain data (tests, debugging): path -> value, perms, children. */
  dump(): Record<string, { data: string; perms: string[]; children: string[] }> {
    const out: Record<string, { data: string; perms: string[]; children: string[] }> = {};
    for (const p of [...this.nodes.keys()].sort()) {
      const n = this.nodes.get(p)!;
      out[p] = { data: Buffer.from(n.data).toString('latin1'), perms: n.perms.map((e) => permToString(e) + (e.ignore ? '!' : '')), children: [...n.children] };
    }
    return out;
  }
}

/** The hypervisor's xenstore client: every call runs as dom0 on the model's host connection,
 *  optionally inside a transaction (the id that begin() returned). Errors are XsErrors,
 *  except that reading or listing a missing node gives undefined. */
export class Dom0Client {
  private nextToken = 1;
  constructor(private readonly xs: Xenstore) {}

  private ctx(tx?: number): Ctx { return this.xs.ctx(this.xs.host, tx ?? 0); }

  /** The node's value as bytes, or undefined if there is none. */
  readBytes(path: string, tx?: number): Uint8Array | undefined {
    return this.xs.op(() => {
      const ctx = this.ctx(tx);
      try {
        return this.xs.read(ctx, path);
      } catch (e) {
        if (e instanceof XsError && e.errno === 'ENOENT') return undefined;
        throw e;
      }
    });
  }
  /** The node's value as text (bytes taken as latin1), or undefined if there is none. */
  read(path: string, tx?: number): string | undefined {
    const b = this.readBytes(path, tx);
    return b === undefined ? undefined : Buffer.from(b).toString('latin1');
  }
  write(path: string, value: string | Uint8Array, tx?: number): void {
    const data = typeof value === 'string' ? Uint8Array.from(Buffer.from(value, 'latin1')) : value;
    this.xs.op(() => this.xs.write(this.ctx(tx), path, data));
  }
  mkdir(path: string, tx?: number): void { this.xs.op(() => this.xs.mkdir(this.ctx(tx), path)); }
  rm(path: string, tx?: number): void { this.xs.op(() => this.xs.rm(this.ctx(tx), path)); }
  /** Children names, or undefined if there is no such node. */
  list(path: string, tx?: number): string[] | undefined {
    return this.xs.op(() => {
      const ctx = this.ctx(tx);
      try {
        return [...this.xs.directory(ctx, path).children];
      } catch (e) {
        if (e instanceof XsError && e.errno === 'ENOENT') return undefined;
        throw e;
      }
    });
  }
  /** Permissions as strings: ["n5", "r0"] (owner 5, others none, dom0 read). */
  getPerms(path: string, tx?: number): string[] { return this.xs.op(() => this.xs.getPerms(this.ctx(tx), path).map(permToString)); }
  setPerms(path: string, perms: readonly (string | PermEntry)[], tx?: number): void {
    this.xs.op(() => {
      const ps = perms.map((p) => (typeof p === 'string' ? parsePerm(p) ?? fail('EINVAL') : p));
      this.xs.setPerms(this.ctx(tx), path, ps);
    });
  }
  begin(): number { return this.xs.op(() => this.xs.transactionStart(this.ctx())); }
  /** Commit (true) or abort; throws XsError EAGAIN on a conflict. */
  end(tx: number, commit = true): void { this.xs.op(() => this.xs.transactionEnd(this.ctx(tx), commit)); }
  /** Run fn in a transaction, retrying on EAGAIN (at most `tries` times). */
  transaction<T>(fn: (tx: number) => T, tries = 16): T {
    for (let i = 0; ; i++) {
      const tx = this.begin();
      let v: T;
      try {
        v = fn(tx);
      } catch (e) {
        this.end(tx, false);
        throw e;
      }
      try {
        this.end(tx, true);
        return v;
      } catch (e) {
        if (!(e instanceof XsError && e.errno === 'EAGAIN') || i + 1 >= tries) throw e;
      }
    }
  }
  /** Watch a path (or @introduceDomain / @releaseDomain). The callback gets (path, token)
   *  for the registration event and every change after it, never in the middle of an
   *  operation. Returns the function that removes the watch. */
  watch(path: string, cb: WatchCallback, token = `dom0-${this.nextToken++}`): () => void {
    const xs = this.xs;
    return xs.op(() => {
      const w = xs.watch(xs.host, path, token);
      xs.hostSubscribe(token, cb);
      xs.fireInitial(xs.host, w);
      return () => xs.op(() => {
        const i = xs.host.watches.indexOf(w);
        if (i >= 0) xs.host.watches.splice(i, 1);
        if (!xs.host.watches.some((x) => x.token === token)) xs.hostSubscribe(token, null);
      });
    });
  }
}

/** A xenstored with the initial tree (/, /tool/xenstored, the special nodes) and dom0. */
export function createXenstore(opts: XenstoreOptions = {}): Xenstore {
  return new Xenstore(opts);
}
