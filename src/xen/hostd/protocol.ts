// The control protocol between the `sim` verbs and a running host (hostd), over the Unix
// socket <state-dir>/hostd.sock.
//
// Framing: newline-delimited JSON. Every message is one JSON object encoded as UTF-8 on one
// line, ended by "\n" (JSON.stringify never emits a raw newline). A line longer than
// MAX_LINE bytes is a protocol error and closes the connection. Binary data (console bytes)
// travels as base64 strings. Chosen over length-prefixed msgpack because the traffic is
// small, and `socat - UNIX-CONNECT:hostd.sock` is then a usable debugging client.
//
// Requests (client -> host) carry an id chosen by the client, echoed in the reply:
//   {"id":1,"op":"ping"}                               -> {pid, protocol, version, stateDir}
//   {"id":2,"op":"info"}                               -> HostInfo
//   {"id":3,"op":"list"}                               -> DomainRow[] (Domain-0 first)
//   {"id":4,"op":"create","config":TEXT,"path":ABS,"paused":false,"console":false}
//                                                      -> DomainRow of the new domain
//   {"id":5,"op":"console","domain":"web"}             -> {domid, name}; then streaming
//   {"id":6,"op":"shutdown","domain":"web","reason":"poweroff","wait":true}
//                                                      -> {domid, name, via, state}
//   {"id":7,"op":"destroy","domain":"3"}               -> {domid, name}
//   {"id":8,"op":"pause","domain":"web"}  / "unpause" -> {domid, name}
//   {"id":9,"op":"dmesg","clear":false}                -> {lines: string[]}
//   {"id":10,"op":"stop"}                              -> {} and the host stops
// Replies (host -> client):
//   {"id":N,"ok":true,"result":...}
//   {"id":N,"ok":false,"error":"one line for a human","code":"ENOENT"}
// A reply may come late (shutdown with wait: when the domain is gone); replies to different
// requests on one connection may come in any order.
//
// Console streaming. After the ok reply to "create" with console:true or to "console", the
// host sends the domain's output as events, starting with what it buffered while nobody was
// attached (as xenconsoled does):
//   {"ev":"out","id":N,"data":BASE64}
//   {"ev":"end","id":N,"name":NAME,"reason":"poweroff"|"reboot"|"crash"|...|"destroyed"|"host-stopped"}
// and the client may send, on the same connection:
//   {"op":"input","data":BASE64}     bytes for the guest's console ring (what does not fit in
//                                    the ring waits in the host, in order)
//   {"op":"detach"}                  stop streaming; the host answers {"ev":"end","reason":"detached"}
// An attach follows the domain by name: a restart (on_reboot="restart") keeps the stream;
// it ends when the domain is destroyed or shut down for good (preserved).
//
// DOMAIN arguments are a domain name or a decimal domain id.

/** Bumped when a message changes incompatibly. */
export const PROTOCOL_VERSION = 1;

/** Longest accepted line (bytes, without the newline). */
export const MAX_LINE = 16 * 1024 * 1024;

export type Op = 'ping' | 'info' | 'list' | 'create' | 'console' | 'shutdown' | 'destroy' | 'pause' | 'unpause' | 'dmesg' | 'stop';

export interface Request {
  id: number;
  op: Op;
  [k: string]: unknown;
}

export interface OkReply { id: number; ok: true; result: unknown }
export interface ErrReply { id: number; ok: false; error: string; code: ErrorCode }
export type Reply = OkReply | ErrReply;

export type ErrorCode = 'ENOENT' | 'EINVAL' | 'EEXIST' | 'EBUSY' | 'ENOMEM' | 'EPROTO' | 'EIO';

export interface ConsoleOut { ev: 'out'; id: number; data: string }
export interface ConsoleEnd { ev: 'end'; id: number; reason: string; name?: string }
export type Event = ConsoleOut | ConsoleEnd;

/** One row of `sim list`, as xl list's dominfo. */
export interface DomainRow {
  name: string;
  domid: number;
  /** Current memory, MiB (tot_pages). */
  memMiB: number;
  /** Online vCPUs. */
  vcpus: number;
  /** The six flag letters of xl list: r b p s <reason letter> d. */
  state: string;
  /** CPU time used, seconds (virtual time for guests). */
  timeS: number;
  /** Shutdown reason name once shut down (poweroff, crash, ...). */
  shutdown?: string;
}

/** What `sim info` prints (xl info's keys, plus xensim's own). */
export type HostInfo = Record<string, string | number>;

/** An error with a protocol code, thrown by the host's operations and sent as ErrReply. */
export class HostError extends Error {
  constructor(readonly code: ErrorCode, message: string) { super(message); }
}

/** Encode one message as a line. */
export function encodeLine(msg: object): string { return JSON.stringify(msg) + '\n'; }

/** Splits a byte stream into lines and parses each as JSON. */
export class LineDecoder {
  private parts: Buffer[] = [];
  private size = 0;

  /** Feed bytes; returns the complete messages. Throws on an over-long or malformed line. */
  push(chunk: Buffer): unknown[] {
    const out: unknown[] = [];
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(0x0a, start);
      if (nl < 0) break;
      const piece = chunk.subarray(start, nl);
      const line = this.parts.length ? Buffer.concat([...this.parts, piece]) : piece;
      this.parts = []; this.size = 0;
      start = nl + 1;
      if (line.length > MAX_LINE) throw new Error(`a message is longer than ${MAX_LINE} bytes`);
      const text = line.toString('utf8').trim();
      if (text === '') continue;
      let v: unknown;
      try { v = JSON.parse(text); } catch { throw new Error(`a message is not JSON: ${text.slice(0, 80)}`); }
      if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('a message is not a JSON object');
      out.push(v);
    }
    if (start < chunk.length) {
      const rest = chunk.subarray(start);
      this.size += rest.length;
      if (this.size > MAX_LINE) throw new Error(`a message is longer than ${MAX_LINE} bytes`);
      this.parts.push(Buffer.from(rest));
    }
    return out;
  }
}

/** SHUTDOWN_* reason names, by number (public/sched.h). */
export const REASON_NAMES = ['poweroff', 'reboot', 'suspend', 'crash', 'watchdog', 'soft_reset'] as const;
