// The xs_wire.h protocol: the message codec (struct xsd_sockmsg + payload) and the request
// dispatcher over the model. Both transports (the shared ring of a domain, the Unix socket)
// put incoming bytes in Connection.rx and call processInput(); replies and watch events
// wait in Connection.outq until the transport writes them.

import {
  type Connection, type Ctx, type OutMsg, type Quotas, type Xenstore, XsError, type XsErrno, XSD_ERRORS,
  DOMID_SELF, QUOTA_NAMES, domainPath, permToString,
} from './model.js';

/** enum xsd_sockmsg_type. */
export const enum XsType {
  CONTROL = 0, DIRECTORY = 1, READ = 2, GET_PERMS = 3, WATCH = 4, UNWATCH = 5, TRANSACTION_START = 6,
  TRANSACTION_END = 7, INTRODUCE = 8, RELEASE = 9, GET_DOMAIN_PATH = 10, WRITE = 11, MKDIR = 12, RM = 13,
  SET_PERMS = 14, WATCH_EVENT = 15, ERROR = 16, IS_DOMAIN_INTRODUCED = 17, RESUME = 18, SET_TARGET = 19,
  RESET_WATCHES = 21, DIRECTORY_PART = 22, TYPE_COUNT = 23, INVALID = 0xffff,
}

/** sizeof(struct xsd_sockmsg): type, req_id, tx_id, len (little-endian u32 each). */
export const XS_HEADER_SIZE = 16;
export const XENSTORE_PAYLOAD_MAX = 4096;
export const XENSTORE_ABS_PATH_MAX = 3072;
export const XENSTORE_REL_PATH_MAX = 2048;

export type XsMsg = OutMsg;

/** The peer broke the protocol (a payload longer than XENSTORE_PAYLOAD_MAX). */
export class XsProtocolError extends Error {
  constructor(msg: string) { super(msg); this.name = 'XsProtocolError'; }
}

export function encodeMsg(m: XsMsg): Uint8Array {
  const b = new Uint8Array(XS_HEADER_SIZE + m.payload.length);
  const v = new DataView(b.buffer);
  v.setUint32(0, m.type >>> 0, true);
  v.setUint32(4, m.reqId >>> 0, true);
  v.setUint32(8, m.txId >>> 0, true);
  v.setUint32(12, m.payload.length, true);
  b.set(m.payload, XS_HEADER_SIZE);
  return b;
}

export function decodeHeader(b: Uint8Array, off = 0): { type: number; reqId: number; txId: number; len: number } {
  const v = new DataView(b.buffer, b.byteOffset + off, XS_HEADER_SIZE);
  return { type: v.getUint32(0, true), reqId: v.getUint32(4, true), txId: v.getUint32(8, true), len: v.getUint32(12, true) };
}

/** Decode every whole message in a byte stream (tests, clients); the rest is left over. */
export function decodeStream(b: Uint8Array): { msgs: XsMsg[]; rest: Uint8Array } {
  const msgs: XsMsg[] = [];
  let off = 0;
  while (b.length - off >= XS_HEADER_SIZE) {
    const h = decodeHeader(b, off);
    if (b.length - off < XS_HEADER_SIZE + h.len) break;
    msgs.push({ type: h.type, reqId: h.reqId, txId: h.txId, payload: b.slice(off + XS_HEADER_SIZE, off + XS_HEADER_SIZE + h.len) });
    off += XS_HEADER_SIZE + h.len;
  }
  return { msgs, rest: b.slice(off) };
}

/** Bytes still missing before Connection.rx holds a whole message (0: it does). */
export function bytesWanted(c: Connection): number {
  if (c.rx.length < XS_HEADER_SIZE) return XS_HEADER_SIZE - c.rx.length;
  const len = decodeHeader(c.rx).len;
  if (len > XENSTORE_PAYLOAD_MAX) return 0;
  return Math.max(0, XS_HEADER_SIZE + len - c.rx.length);
}

export function appendRx(c: Connection, bytes: Uint8Array): void {
  if (bytes.length === 0) return;
  const n = new Uint8Array(c.rx.length + bytes.length);
  n.set(c.rx, 0);
  n.set(bytes, c.rx.length);
  c.rx = n;
}

/** Take the first whole message out of Connection.rx, or null. Throws XsProtocolError for an
 *  over-long payload (the transport then stops talking to the peer). */
export function takeMessage(c: Connection): XsMsg | null {
  if (c.rx.length < XS_HEADER_SIZE) return null;
  const h = decodeHeader(c.rx);
  if (h.len > XENSTORE_PAYLOAD_MAX) throw new XsProtocolError(`payload of ${h.len} bytes`);
  if (c.rx.length < XS_HEADER_SIZE + h.len) return null;
  const payload = c.rx.slice(XS_HEADER_SIZE, XS_HEADER_SIZE + h.len);
  c.rx = c.rx.slice(XS_HEADER_SIZE + h.len);
  return { type: h.type, reqId: h.reqId, txId: h.txId, payload };
}

// ---------------------------------------------------------------- payload helpers

const latin1 = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.length).toString('latin1');
const bytes = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, 'latin1'));

/** The NUL-terminated strings of a payload (bytes after the last NUL are not a string). */
export function payloadStrings(p: Uint8Array): string[] {
  const out: string[] = [];
  let start = 0;
  for (let i = 0; i < p.length; i++) {
    if (p[i] === 0) { out.push(latin1(p.subarray(start, i))); start = i + 1; }
  }
  return out;
}

/** The single argument: the payload is one string and its NUL, nothing else. */
export function oneArg(p: Uint8Array): string | null {
  if (p.length === 0 || p.indexOf(0) !== p.length - 1) return null;
  return latin1(p.subarray(0, p.length - 1));
}

/** C atoi, then taken as unsigned (how xenstored reads domids and ports). */
export function atoiU(s: string): number {
  const m = /^[\t\n\v\f\r ]*([+-]?)(\d+)/.exec(s);
  if (!m) return 0;
  let v = Number(m[2].slice(0, 12));
  if (v > 0x7fffffff) v = 0x7fffffff;
  return (m[1] === '-' ? -v : v) >>> 0;
}

const OK = bytes('OK\0');
const str0 = (s: string): Uint8Array => bytes(`${s}\0`);

// ---------------------------------------------------------------- dispatch

const F_NOTID = 1; // the transaction id is ignored
const F_PRIV = 2;  // privileged connections only

interface Req { xs: Xenstore; conn: Connection; ctx: Ctx; msg: XsMsg; p: Uint8Array }
/** A handler answers with the reply payload, or the payload and what to do after the reply. */
type Handler = (r: Req) => Uint8Array | [Uint8Array, () => void];

const fail = (e: XsErrno): never => { throw new XsError(e); };

const CONTROL_HELP = 'check\nprint <string>\nquota [set <name> <value>|<domid>]\nhelp\n';
const QUOTA_WIRE_NAMES: Record<string, keyof Quotas> = {
  nodes: 'nodes', 'node-size': 'entrySize', watches: 'watches', transactions: 'transactions',
  'transaction-nodes': 'transactionNodes', 'node-permissions': 'perms', 'path-max': 'pathMax',
};

function control(r: Req): Uint8Array {
  const a = payloadStrings(r.p);
  if (a.length === 0) fail('EINVAL');
  switch (a[0]) {
    case 'check': case 'print': return OK;
    case 'help': return str0(CONTROL_HELP);
    case 'quota': {
      if (a.length === 1) {
        const names = Object.keys(QUOTA_WIRE_NAMES);
        return str0(names.map((n) => `${n.padEnd(17)}: ${r.xs.quotas[QUOTA_WIRE_NAMES[n]]}\n`).join(''));
      }
      if (a[1] === 'set') {
        const key = QUOTA_WIRE_NAMES[a[2] ?? ''];
        if (!key || a.length !== 4 || !/^\d{1,9}$/.test(a[3])) fail('EINVAL');
        r.xs.quotas[key] = Number(a[3]);
        return OK;
      }
      if (a.length !== 2 || !/^\d+$/.test(a[1])) fail('EINVAL');
      const domid = Number(a[1]);
      const d = r.xs.domains.get(domid);
      if (!d) fail('ENOENT');
      const c = d!.conn;
      return str0(`Domain ${domid}:\nnodes            : ${r.xs.owned.get(domid) ?? 0}\n` +
        `watches          : ${c ? c.watches.length : 0}\ntransactions     : ${c ? c.transactions.size : 0}\n`);
    }
    default: return fail('EINVAL');
  }
}

function directoryPart(r: Req): Uint8Array {
  const a = payloadStrings(r.p);
  if (a.length !== 2) fail('EINVAL');
  const { children, gen } = r.xs.directory(r.ctx, a[0]);
  const off = atoiU(a[1]) | 0;
  const all = bytes(children.map((c) => `${c}\0`).join(''));
  const genStr = bytes(`${gen < 0 ? 0 : gen}\0`);
  if (off < 0 || off >= all.length) return Uint8Array.from([...genStr, 0]);
  // As many whole names from `off` as fit; a final extra NUL marks the end of the list.
  const maxlen = XENSTORE_PAYLOAD_MAX - genStr.length - 1;
  let len = 0;
  for (;;) {
    const nul = all.indexOf(0, off + len);
    const l = (nul < 0 ? all.length : nul) - (off + len);
    if (len + l >= maxlen) break;
    len += l + 1;
    if (off + len >= all.length) break;
  }
  const end = off + len >= all.length;
  const out = new Uint8Array(genStr.length + len + (end ? 1 : 0));
  out.set(genStr, 0);
  out.set(all.subarray(off, off + len), genStr.length);
  return out;
}

const HANDLERS: (readonly [number, Handler] | undefined)[] = [];
function def(t: XsType, flags: number, h: Handler): void { HANDLERS[t] = [flags, h]; }

def(XsType.CONTROL, F_PRIV, control);
def(XsType.DIRECTORY, 0, (r) => bytes(r.xs.directory(r.ctx, oneArg(r.p)).children.map((c) => `${c}\0`).join('')));
def(XsType.READ, 0, (r) => r.xs.read(r.ctx, oneArg(r.p)));
def(XsType.GET_PERMS, 0, (r) => bytes(r.xs.getPerms(r.ctx, oneArg(r.p)).map((e) => `${permToString(e)}\0`).join('')));
def(XsType.WATCH, F_NOTID, (r) => {
  const a = payloadStrings(r.p);
  if (a.length !== 2) fail('EINVAL');
  const w = r.xs.watch(r.conn, a[0], a[1]);
  return [OK, () => r.xs.fireInitial(r.conn, w)];
});
def(XsType.UNWATCH, F_NOTID, (r) => {
  const a = payloadStrings(r.p);
  if (a.length !== 2) fail('EINVAL');
  r.xs.unwatch(r.conn, a[0], a[1]);
  return OK;
});
def(XsType.TRANSACTION_START, 0, (r) => str0(String(r.xs.transactionStart(r.ctx))));
def(XsType.TRANSACTION_END, 0, (r) => {
  const a = oneArg(r.p);
  if (a !== 'T' && a !== 'F') fail('EINVAL');
  r.xs.transactionEnd(r.ctx, a === 'T');
  return OK;
});
def(XsType.INTRODUCE, F_PRIV, (r) => {
  const a = payloadStrings(r.p);
  if (a.length < 3) fail('EINVAL');
  const port = atoiU(a[2]);
  if (port === 0) fail('EINVAL');
  r.xs.introduce(atoiU(a[0]), a[1], port);
  return OK;
});
def(XsType.RELEASE, F_PRIV, (r) => {
  const a = oneArg(r.p);
  if (a === null) fail('EINVAL');
  r.xs.release(atoiU(a!));
  return OK;
});
def(XsType.GET_DOMAIN_PATH, 0, (r) => {
  const a = oneArg(r.p);
  if (a === null) fail('EINVAL');
  return str0(domainPath(atoiU(a!)));
});
def(XsType.WRITE, 0, (r) => {
  const nul = r.p.indexOf(0);
  if (nul < 0) fail('EINVAL');
  r.xs.write(r.ctx, latin1(r.p.subarray(0, nul)), r.p.slice(nul + 1));
  return OK;
});
def(XsType.MKDIR, 0, (r) => { r.xs.mkdir(r.ctx, oneArg(r.p)); return OK; });
def(XsType.RM, 0, (r) => { r.xs.rm(r.ctx, oneArg(r.p)); return OK; });
def(XsType.SET_PERMS, 0, (r) => {
  const a = payloadStrings(r.p);
  if (a.length < 2) fail('EINVAL');
  r.xs.setPermsStrings(r.ctx, a[0], a.slice(1));
  return OK;
});
def(XsType.IS_DOMAIN_INTRODUCED, F_PRIV, (r) => {
  const a = oneArg(r.p);
  if (a === null) fail('EINVAL');
  const d = atoiU(a!);
  return str0(d === DOMID_SELF || r.xs.isIntroduced(d) ? 'T' : 'F');
});
def(XsType.RESUME, F_PRIV, (r) => {
  const a = oneArg(r.p);
  if (a === null) fail('EINVAL');
  r.xs.resume(atoiU(a!));
  return OK;
});
def(XsType.SET_TARGET, F_PRIV, (r) => {
  const a = payloadStrings(r.p);
  if (a.length < 2) fail('EINVAL');
  r.xs.setTarget(atoiU(a[0]), atoiU(a[1]));
  return OK;
});
def(XsType.RESET_WATCHES, 0, (r) => { r.xs.resetWatches(r.conn); return OK; });
def(XsType.DIRECTORY_PART, 0, directoryPart);

function errorMsg(m: XsMsg, e: XsErrno): XsMsg {
  return { type: XsType.ERROR, reqId: m.reqId, txId: m.txId, payload: str0(e) };
}

/** Answer one request: the reply (or XS_ERROR) goes to the connection's output queue,
 *  with any watch events it caused in xenstored's order. */
export function handleMessage(xs: Xenstore, conn: Connection, msg: XsMsg): void {
  xs.op(() => {
    const h = HANDLERS[msg.type];
    let after: (() => void) | null = null;
    let reply: XsMsg;
    try {
      if (!h) fail('ENOSYS');
      const [flags, fn] = h!;
      if (flags & F_PRIV && !conn.privileged) fail('EACCES');
      const ctx = flags & F_NOTID ? { conn, tx: null } : xs.ctx(conn, msg.txId);
      const out = fn({ xs, conn, ctx, msg, p: msg.payload });
      let payload: Uint8Array;
      if (Array.isArray(out)) [payload, after] = out; else payload = out;
      reply = payload.length > XENSTORE_PAYLOAD_MAX ? errorMsg(msg, 'E2BIG') : { type: msg.type, reqId: msg.reqId, txId: msg.txId, payload };
    } catch (e) {
      if (!(e instanceof XsError)) {
        xs.internalErrors.push(e);
        reply = errorMsg(msg, 'EIO');
      } else {
        reply = errorMsg(msg, XSD_ERRORS.includes(e.errno) ? e.errno : 'EINVAL');
      }
      after = null;
    }
    xs.queue(conn, reply);
    if (after) after();
  });
}

/** Handle every whole message in Connection.rx; with `maxOut`, stop while the connection has
 *  that many messages waiting to be sent (back-pressure). Throws XsProtocolError. */
export function processInput(xs: Xenstore, conn: Connection, maxOut = Infinity): void {
  while (!conn.closed && !conn.ignored && conn.outq.length < maxOut) {
    const m = takeMessage(conn);
    if (!m) return;
    handleMessage(xs, conn, m);
  }
}

/** A client-side helper: a request message. */
export function request(type: XsType, reqId: number, txId: number, ...args: (string | Uint8Array)[]): XsMsg {
  const parts = args.map((a) => (typeof a === 'string' ? bytes(a) : a));
  const payload = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) { payload.set(p, o); o += p.length; }
  return { type, reqId, txId, payload };
}
