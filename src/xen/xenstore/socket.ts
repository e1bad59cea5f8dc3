// xenstored's Unix-socket transport for host-side clients (xenstore-ls, libxenstore, pyxs):
// the same xs_wire messages over a stream socket. Every socket client is privileged, as a
// dom0 tool talking to /var/run/xenstored/socket is.

import { existsSync, lstatSync, unlinkSync } from 'node:fs';
import net from 'node:net';
import type { Connection, Xenstore } from './model.js';
import { XsProtocolError, appendRx, encodeMsg, processInput } from './protocol.js';

export class XenstoreSocketServer {
  private readonly server: net.Server;
  private readonly clients = new Set<{ sock: net.Socket; conn: Connection }>();
  private path: string | null = null;

  constructor(readonly xs: Xenstore) {
    this.server = net.createServer((sock) => this.accept(sock));
  }

  /** Listen on a socket path (a stale socket file there is removed first). */
  listen(path: string): Promise<void> {
    if (existsSync(path) && lstatSync(path).isSocket()) unlinkSync(path);
    return new Promise((resolve, reject) => {
      const onErr = (e: Error): void => reject(e);
      this.server.once('error', onErr);
      this.server.listen(path, () => {
        this.server.off('error', onErr);
        this.path = path;
        resolve();
      });
    });
  }

  get connections(): number { return this.clients.size; }

  private accept(sock: net.Socket): void {
    const conn = this.xs.connect('socket', 0);
    const client = { sock, conn };
    this.clients.add(client);
    const flush = (): void => {
      if (sock.destroyed) return;
      while (conn.outq.length > 0) {
        const m = conn.outq.shift()!;
        const b = encodeMsg(m);
        sock.write(conn.outOff > 0 ? b.subarray(conn.outOff) : b);
        conn.outOff = 0;
      }
    };
    conn.onOutput = flush;
    sock.on('data', (chunk: Buffer) => {
      appendRx(conn, new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.length));
      try {
        processInput(this.xs, conn);
      } catch (e) {
        if (e instanceof XsProtocolError) { sock.destroy(); return; }
        throw e;
      }
    });
    const gone = (): void => {
      if (!this.clients.delete(client)) return;
      conn.onOutput = null;
      this.xs.disconnect(conn);
    };
    sock.on('close', gone);
    sock.on('error', () => sock.destroy());
  }

  /** Stop listening, drop every client and remove the socket file. */
  close(): Promise<void> {
    for (const c of this.clients) c.sock.destroy();
    return new Promise((resolve) => {
      this.server.close(() => {
        if (this.path && existsSync(this.path)) {
          try { unlinkSync(this.path); } catch { /* already gone */ }
        }
        resolve();
      });
    });
  }
}

/** Serve `xs` on a Unix socket path. */
export async function serveXenstoreSocket(xs: Xenstore, path: string): Promise<XenstoreSocketServer> {
  const s = new XenstoreSocketServer(xs);
  await s.listen(path);
  return s;
}
