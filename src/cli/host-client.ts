// The client end of the host control protocol (src/xen/hostd/protocol.ts): connect to
// <state-dir>/hostd.sock, send requests, await their replies, and stream a console.

import net from 'node:net';
import { encodeLine, LineDecoder, type ConsoleEnd, type ConsoleOut, type Op, type Reply } from '../xen/hostd/protocol.js';
import { socketPathProblem, statePaths, type StatePaths } from '../xen/hostd/statedir.js';
import { UsageError } from './errors.js';

/** The one-line message every verb prints when no host answers. */
export const NO_HOST_MESSAGE = 'no running host (start one with: sim boot --daemon)';

export class NoHostError extends Error {
  constructor(readonly paths: StatePaths) { super(NO_HOST_MESSAGE); }
}

/** A reply with ok:false. */
export class HostReplyError extends Error {
  constructor(message: string, readonly code: string) { super(message); }
}

export interface ConsoleHandlers {
  out(bytes: Buffer): void;
  /** name: the domain's, when the host said. */
  end(reason: string, name?: string): void;
}

export class HostClient {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private closed = false;
  private closeError: Error | null = null;

  private constructor(private readonly sock: net.Socket, readonly paths: StatePaths) {
    const dec = new LineDecoder();
    sock.on('data', (chunk: Buffer) => {
      let msgs: unknown[];
      try { msgs = dec.push(chunk); } catch (e) { this.fail(e as Error); return; }
      for (const m of msgs) this.dispatch(m as Reply | ConsoleOut | ConsoleEnd);
    });
    sock.on('error', (e) => this.fail(e));
    sock.on('close', () => this.fail(new Error('the host closed the connection')));
  }

  /** Connect to the host of a state directory; NoHostError if none answers. */
  static connect(stateDir?: string): Promise<HostClient> {
    const paths = statePaths(stateDir);
    const bad = socketPathProblem(paths);
    if (bad) return Promise.reject(new UsageError(bad));
    return new Promise((resolve, reject) => {
      const sock = net.connect(paths.socket);
      sock.once('connect', () => { sock.removeAllListeners('error'); resolve(new HostClient(sock, paths)); });
      sock.once('error', (e: NodeJS.ErrnoException) => {
        if (e.code === 'ENOENT' || e.code === 'ECONNREFUSED' || e.code === 'ENOTSOCK' || e.code === 'ENOTDIR') reject(new NoHostError(paths));
        else reject(new HostReplyError(`cannot reach the host at ${paths.socket}: ${e.code ?? e.message}`, 'EIO'));
      });
    });
  }

  /** Send a request; resolves to its result, rejects with HostReplyError. */
  request<T = unknown>(op: Op, args: Record<string, unknown> = {}): Promise<T> {
    if (this.closed) return Promise.reject(this.closeError ?? new Error('the connection is closed'));
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.sock.write(encodeLine({ ...args, id, op }));
    });
  }

  private consoleHandlers: ConsoleHandlers | null = null;
  /** Where console events go (set before the create -c / console request). */
  onConsole(handlers: ConsoleHandlers): void { this.consoleHandlers = handlers; }

  sendInput(bytes: Uint8Array): void {
    if (!this.closed && bytes.length > 0) this.sock.write(encodeLine({ op: 'input', data: Buffer.from(bytes).toString('base64') }));
  }

  detach(): void { if (!this.closed) this.sock.write(encodeLine({ op: 'detach' })); }

  close(): void {
    this.closed = true;
    this.sock.destroy();
  }

  private dispatch(m: Reply | ConsoleOut | ConsoleEnd): void {
    if ('ev' in m) {
      const h = this.consoleHandlers;
      if (!h) return;
      if (m.ev === 'out') h.out(Buffer.from(m.data, 'base64'));
      else { this.consoleHandlers = null; h.end(m.reason, m.name); }
      return;
    }
    const p = this.pending.get(m.id);
    if (!p) return;
    this.pending.delete(m.id);
    if (m.ok) p.resolve(m.result);
    else p.reject(new HostReplyError(m.error, m.code));
  }

  private fail(e: Error): void {
    if (this.closed && this.pending.size === 0) return;
    this.closed = true;
    this.closeError = e;
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
    const h = this.consoleHandlers;
    this.consoleHandlers = null;
    h?.end('connection-closed');
  }
}
