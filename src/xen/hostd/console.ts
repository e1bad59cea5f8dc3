// A domain's console as the host's console daemon keeps it (what xenconsoled does): every
// byte the guest writes is appended to <state-dir>/console/<name>.log and sent to each
// attached client; while nobody is attached, the latest output (up to REPLAY_MAX bytes)
// waits and is sent to the next client that attaches. Input from clients is queued and fed
// into the guest's ring as it makes room. One DomainConsole lives as long as the domain's
// name: a restarted domain keeps its console (log, clients, queued input).

import { closeSync, openSync, writeSync } from 'node:fs';
import type { ConsoleBackend } from '../backends/console.js';

/** Output kept for the next client while none is attached. */
export const REPLAY_MAX = 64 * 1024;
/** Input queued for the guest beyond what its ring holds. */
export const INPUT_MAX = 64 * 1024;

export interface ConsoleListener {
  out(bytes: Uint8Array): void;
  end(reason: string): void;
}

export class DomainConsole {
  private fd: number | null;
  private chunks: Uint8Array[] = [];
  private replay: Uint8Array[] = [];
  private replayBytes = 0;
  private readonly listeners = new Set<ConsoleListener>();
  private inputQueue: Uint8Array[] = [];
  private inputBytes = 0;
  /** The ring backend of the current incarnation (null while none runs). */
  backend: ConsoleBackend | null = null;
  /** Total bytes the guest wrote (all incarnations). */
  written = 0;

  constructor(readonly name: string, readonly logPath: string) {
    this.fd = openSync(logPath, 'a', 0o600);
  }

  /** The guest's output, from inside the CPU loop: kept until flush(). */
  write(bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    this.chunks.push(bytes.slice());
    this.written += bytes.length;
  }

  /** Write what the guest produced since the last flush to the log and the clients. */
  flush(): void {
    if (this.chunks.length === 0) return;
    const data = this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks);
    this.chunks = [];
    if (this.fd !== null) {
      let off = 0;
      while (off < data.length) off += writeSync(this.fd, data, off, data.length - off);
    }
    if (this.listeners.size > 0) {
      for (const l of this.listeners) l.out(data);
      return;
    }
    this.replay.push(data);
    this.replayBytes += data.length;
    while (this.replayBytes > REPLAY_MAX && this.replay.length > 0) {
      const first = this.replay[0];
      const over = this.replayBytes - REPLAY_MAX;
      if (first.length <= over) { this.replay.shift(); this.replayBytes -= first.length; }
      else { this.replay[0] = first.subarray(over); this.replayBytes -= over; }
    }
  }

  /** Attach a client: it gets the waiting output first. Returns the detach function. */
  attach(l: ConsoleListener): () => void {
    this.flush();
    if (this.replay.length > 0) {
      const data = Buffer.concat(this.replay);
      this.replay = []; this.replayBytes = 0;
      l.out(data);
    }
    this.listeners.add(l);
    return () => { this.listeners.delete(l); };
  }

  get attached(): number { return this.listeners.size; }

  /** Queue bytes for the guest; returns false if the queue is full (the bytes are dropped). */
  input(bytes: Uint8Array): boolean {
    if (this.inputBytes + bytes.length > INPUT_MAX) return false;
    this.inputQueue.push(bytes.slice());
    this.inputBytes += bytes.length;
    this.pump();
    return true;
  }

  /** Move queued input into the guest's ring as far as it has room. True if any moved. */
  pump(): boolean {
    const b = this.backend;
    if (b === null) return false;
    let moved = false;
    while (this.inputQueue.length > 0) {
      const head = this.inputQueue[0];
      const n = b.input(head);
      if (n > 0) moved = true;
      this.inputBytes -= n;
      if (n === head.length) this.inputQueue.shift();
      else { this.inputQueue[0] = head.subarray(n); break; }
    }
    return moved;
  }

  get queuedInput(): number { return this.inputBytes; }

  /** Tell every client the stream is over and forget them. */
  end(reason: string): void {
    this.flush();
    for (const l of [...this.listeners]) l.end(reason);
    this.listeners.clear();
  }

  close(reason: string): void {
    this.end(reason);
    this.backend = null;
    this.inputQueue = []; this.inputBytes = 0;
    if (this.fd !== null) { closeSync(this.fd); this.fd = null; }
  }
}
