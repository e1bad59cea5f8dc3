// `sim xenstore-ls|read|write|rm`: a small xenstore client over the running host's xenstored
// Unix socket, speaking xs_wire as the xenstore-* tools of the Xen distribution do.

import net from 'node:net';
import { XS_HEADER_SIZE, XsType, decodeHeader, encodeMsg, request } from '../xen/xenstore/protocol.js';
import { UsageError } from './errors.js';
import { NO_HOST_MESSAGE } from './host-client.js';

/** No xenstored answers at the socket: no running host. */
export class NoXenstore extends Error {}

/** Run a xenstore verb for the CLI: its output, or the same one-line messages as the other
 *  host verbs (no host: exit 1; an error from xenstored: "sim: <path>: <EERR>", exit 1). */
export async function xenstoreVerb(f: () => Promise<string | void>): Promise<number> {
  try {
    const out = await f();
    if (out) process.stdout.write(out);
    return 0;
  } catch (e) {
    if (e instanceof NoXenstore) { process.stderr.write(NO_HOST_MESSAGE + '\n'); return 1; }
    if (e instanceof UsageError) { process.stderr.write(`sim: ${e.message}\n`); return 1; }
    throw e;
  }
}

export class XsClient {
  private buf = new Uint8Array(0);
  private waiting: ((m: { type: number; payload: Uint8Array }) => void)[] = [];
  private reqId = 1;
  private constructor(private readonly sock: net.Socket) {
    sock.on('data', (d: Buffer) => {
      const b = new Uint8Array(this.buf.length + d.length);
      b.set(this.buf); b.set(d, this.buf.length);
      this.buf = b;
      while (this.buf.length >= XS_HEADER_SIZE) {
        const h = decodeHeader(this.buf);
        if (this.buf.length < XS_HEADER_SIZE + h.len) break;
        const payload = this.buf.slice(XS_HEADER_SIZE, XS_HEADER_SIZE + h.len);
        this.buf = this.buf.slice(XS_HEADER_SIZE + h.len);
        if (h.type === XsType.WATCH_EVENT) continue;
        this.waiting.shift()?.({ type: h.type, payload });
      }
    });
  }

  static connect(path: string): Promise<XsClient> {
    return new Promise((resolve, reject) => {
      const s = net.createConnection(path);
      s.once('connect', () => resolve(new XsClient(s)));
      s.once('error', (e: NodeJS.ErrnoException) => reject(e));
    });
  }

  /** Send one request; resolves to its payload, or rejects with the xenstore error name. */
  call(type: XsType, ...args: (string | Uint8Array)[]): Promise<Uint8Array> {
    return new Promise((resolve, reject) => {
      this.waiting.push((m) => {
        if (m.type === XsType.ERROR) reject(new Error(new TextDecoder().decode(m.payload).replace(/\0+$/, '')));
        else resolve(m.payload);
      });
      this.sock.write(encodeMsg(request(type, this.reqId++, 0, ...args)));
    });
  }

  close(): void { this.sock.end(); }
}

const z = (s: string) => s + '\0';
const text = (b: Uint8Array) => new TextDecoder().decode(b);
function strings(b: Uint8Array): string[] { return text(b).split('\0').filter((s, i, a) => s !== '' || i < a.length - 1).filter(Boolean); }

async function withClient<T>(socket: string, f: (c: XsClient) => Promise<T>): Promise<T> {
  let c: XsClient;
  try { c = await XsClient.connect(socket); } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ECONNREFUSED') throw new NoXenstore();
    throw new UsageError(`cannot connect to xenstored at ${socket}: ${code ?? (e as Error).message}`);
  }
  try { return await f(c); } finally { c.close(); }
}

function fail(path: string, e: unknown): never {
  throw new UsageError(`${path}: ${(e as Error).message}`);
}

/** xenstore-ls: the tree under path, "name = \"value\"" indented by depth. */
export async function xenstoreLs(socket: string, path = '/'): Promise<string> {
  return withClient(socket, async (c) => {
    const lines: string[] = [];
    const walk = async (p: string, depth: number): Promise<void> => {
      let kids: string[];
      try { kids = strings(await c.call(XsType.DIRECTORY, z(p))); } catch (e) { if (depth === 0) fail(p, e); return; }
      for (const k of kids) {
        const child = p === '/' ? `/${k}` : `${p}/${k}`;
        let v = '';
        try { v = text(await c.call(XsType.READ, z(child))); } catch { /* unreadable */ }
        lines.push(`${' '.repeat(depth)}${k} = ${JSON.stringify(v)}`);
        await walk(child, depth + 1);
      }
    };
    await walk(path, 0);
    return lines.join('\n') + (lines.length ? '\n' : '');
  });
}

export async function xenstoreRead(socket: string, paths: string[]): Promise<string> {
  return withClient(socket, async (c) => {
    const out: string[] = [];
    for (const p of paths) {
      try { out.push(text(await c.call(XsType.READ, z(p)))); } catch (e) { fail(p, e); }
    }
    return out.join('\n') + '\n';
  });
}

export async function xenstoreWrite(socket: string, pairs: string[]): Promise<void> {
  if (pairs.length === 0 || pairs.length % 2) throw new UsageError('xenstore-write takes PATH VALUE pairs');
  await withClient(socket, async (c) => {
    for (let i = 0; i < pairs.length; i += 2) {
      try { await c.call(XsType.WRITE, z(pairs[i]), pairs[i + 1]); } catch (e) { fail(pairs[i], e); }
    }
  });
}

export async function xenstoreRm(socket: string, paths: string[]): Promise<void> {
  await withClient(socket, async (c) => {
    for (const p of paths) {
      try { await c.call(XsType.RM, z(p)); } catch (e) { fail(p, e); }
    }
  });
}
