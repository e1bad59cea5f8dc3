// Test helpers: drive a connection with wire messages and read back what it was sent.

import type { Connection, Xenstore } from '../../../src/xen/xenstore/model.js';
import { XsType, handleMessage, request } from '../../../src/xen/xenstore/protocol.js';

export type Item = { reply: string; type: number; reqId: number; txId: number } | { err: string; reqId: number; txId: number } | { event: [string, string] };

export const latin1 = (b: Uint8Array): string => Buffer.from(b).toString('latin1');

/** Take (and clear) everything queued for a connection, decoded. */
export function drain(c: Connection): Item[] {
  const out: Item[] = [];
  for (const m of c.outq) {
    const s = latin1(m.payload);
    if (m.type === XsType.WATCH_EVENT) {
      const [path, token] = s.split('\0');
      out.push({ event: [path, token] });
    } else if (m.type === XsType.ERROR) out.push({ err: s.replace(/\0$/, ''), reqId: m.reqId, txId: m.txId });
    else out.push({ reply: s, type: m.type, reqId: m.reqId, txId: m.txId });
  }
  c.outq = [];
  c.outOff = 0;
  return out;
}

let nextReq = 1;

/** Send one request on a connection; returns its reply (the value, or "E..." for an error)
 *  and leaves watch events queued (see drain). */
export function call(xs: Xenstore, c: Connection, type: XsType, tx: number, ...args: string[]): string {
  const reqId = nextReq++;
  const before = c.outq.length;
  handleMessage(xs, c, request(type, reqId, tx, ...args.map((a) => a)));
  const mine = c.outq.slice(before).find((m) => m.type !== XsType.WATCH_EVENT);
  if (!mine) throw new Error('no reply');
  if (mine.reqId !== reqId || mine.txId !== tx) throw new Error('request/transaction id not echoed');
  const s = latin1(mine.payload);
  return mine.type === XsType.ERROR ? s.replace(/\0$/, '') : s;
}

/** Events queued for a connection (and drop everything queued). */
export function events(c: Connection): [string, string][] {
  return drain(c).flatMap((i) => ('event' in i ? [i.event] : []));
}
