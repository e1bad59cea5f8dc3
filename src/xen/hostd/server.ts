// The control server: the host end of protocol.ts on a Unix socket. Each connection reads
// requests, answers them from the DomainManager, and may carry one console attachment.

import net from 'node:net';
import type { Logger } from 'pino';
import type { DomainConsole } from './console.js';
import type { DomainManager } from './manager.js';
import { encodeLine, HostError, LineDecoder, PROTOCOL_VERSION, type Reply, type Request } from './protocol.js';

export interface ServerInfo { pid: number; stateDir: string; version: string }

export class ControlServer {
  private readonly server: net.Server;
  private readonly conns = new Set<net.Socket>();
  /** Called when a client asks the host to stop. */
  onStopRequest: (() => void) | null = null;

  constructor(private readonly mgr: DomainManager, private readonly log: Logger, private readonly about: ServerInfo) {
    this.server = net.createServer((s) => this.accept(s));
  }

  listen(socketPath: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const onErr = (e: Error) => reject(e);
      this.server.once('error', onErr);
      this.server.listen(socketPath, () => { this.server.off('error', onErr); resolve(); });
    });
  }

  close(): Promise<void> {
    for (const s of this.conns) s.destroy();
    this.conns.clear();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private accept(sock: net.Socket): void {
    this.conns.add(sock);
    const dec = new LineDecoder();
    let detach: (() => void) | null = null;
    let attachId = 0;
    let attached: DomainConsole | null = null;
    const send = (m: object) => { if (!sock.destroyed && sock.writable) sock.write(encodeLine(m)); };
    const endAttach = (reason: string) => {
      if (!detach) return;
      const name = attached?.name;
      detach(); detach = null; attached = null;
      send({ ev: 'end', id: attachId, reason, name });
    };
    const attach = (id: number, c: DomainConsole) => {
      attachId = id;
      attached = c;
      detach = c.attach({
        out: (bytes) => send({ ev: 'out', id, data: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('base64') }),
        end: (reason) => { detach = null; attached = null; send({ ev: 'end', id, reason, name: c.name }); },
      });
    };
    sock.on('data', (chunk: Buffer) => {
      let msgs: unknown[];
      try { msgs = dec.push(chunk); } catch (e) {
        send({ id: 0, ok: false, error: (e as Error).message, code: 'EPROTO' });
        sock.end();
        return;
      }
      for (const m of msgs) {
        const r = m as Request;
        const op: string = r.op;
        if (op === 'input') {
          if (attached && typeof r.data === 'string') this.mgr.consoleInput(attached, Buffer.from(r.data, 'base64'));
          continue;
        }
        if (op === 'detach') { endAttach('detached'); continue; }
        const after: (() => void)[] = [];
        void this.handle(r, (aid, c) => after.push(() => attach(aid, c)), !!detach).then((reply) => {
          send(reply);
          for (const f of after) f();
        });
      }
    });
    sock.on('error', () => { /* the client went away */ });
    sock.on('close', () => { this.conns.delete(sock); if (detach) { detach(); detach = null; } });
  }

  private async handle(r: Request, attach: (id: number, c: DomainConsole) => void, busy: boolean): Promise<Reply> {
    const id = typeof r.id === 'number' ? r.id : 0;
    const str = (k: string): string => {
      const v = r[k];
      if (typeof v !== 'string' || v === '') throw new HostError('EINVAL', `'${r.op}' needs a string '${k}'`);
      return v;
    };
    try {
      switch (r.op) {
        case 'ping': return ok(id, { pid: this.about.pid, protocol: PROTOCOL_VERSION, version: this.about.version, stateDir: this.about.stateDir });
        case 'info': return ok(id, this.mgr.info({ host_pid: this.about.pid, state_dir: this.about.stateDir }));
        case 'list': return ok(id, this.mgr.list());
        case 'create': {
          const wantConsole = r.console === true;
          if (wantConsole && busy) throw new HostError('EBUSY', 'this connection is already attached to a console');
          const row = this.mgr.create(str('config'), str('path'), r.paused === true);
          if (wantConsole) {
            const { console } = this.mgr.consoleOf(String(row.domid));
            attach(id, console); // after the reply is sent

          }
          return ok(id, row);
        }
        case 'console': {
          if (busy) throw new HostError('EBUSY', 'this connection is already attached to a console');
          const { rec, console } = this.mgr.consoleOf(str('domain'));
          attach(id, console); // after the reply is sent
          return ok(id, rec);
        }
        case 'shutdown': {
          const reason = r.reason === 'reboot' ? 'reboot' : 'poweroff';
          return ok(id, await this.mgr.shutdown(str('domain'), reason, r.wait === true));
        }
        case 'destroy': return ok(id, this.mgr.destroy(str('domain')));
        case 'pause': return ok(id, this.mgr.pause(str('domain')));
        case 'unpause': return ok(id, this.mgr.unpause(str('domain')));
        case 'dmesg': return ok(id, { lines: this.mgr.dmesg(r.clear === true) });
        case 'stop':
          this.log.info({ event: 'stop-request' }, 'asked to stop');
          setImmediate(() => this.onStopRequest?.());
          return ok(id, {});
        default:
          throw new HostError('EINVAL', `unknown operation '${String(r.op)}'`);
      }
    } catch (e) {
      if (e instanceof HostError) return { id, ok: false, error: e.message, code: e.code };
      this.log.error({ event: 'internal-error', op: r.op, error: (e as Error).stack ?? String(e) }, 'internal error');
      return { id, ok: false, error: `internal error: ${(e as Error).message}`, code: 'EIO' };
    }
  }
}

function ok(id: number, result: unknown): Reply { return { id, ok: true, result }; }

/** Whether a host answers on this socket path (connect succeeds). */
export function socketAnswers(socketPath: string, timeoutMs = 2000): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(socketPath);
    const t = setTimeout(() => { s.destroy(); resolve(false); }, timeoutMs);
    s.once('connect', () => { clearTimeout(t); s.destroy(); resolve(true); });
    s.once('error', () => { clearTimeout(t); resolve(false); });
  });
}
