// Helpers for the host tests: tiny synthetic PV kernels, xl.cfg files, captured verb I/O.

import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { buildElf64, str, u64, KERNBASE } from '../guests/helpers.js';
import type { VerbIO } from '../../src/cli/verbs.js';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const GUESTS = path.join(ROOT, 'fixtures/guests');

// Each kernel starts with (Intel syntax, assembled with GNU as):
//   mov rbx, rsi ; lea rdx, [rip+msg] ; mov esi, len ; xor edi, edi ; mov eax, 18 ; syscall
// i.e. console_io(CONSOLEIO_write, len, msg) through the syscall hypercall entry, then:
const CODE = {
  // 1: jmp 1b                                               "spinner up\n", runs forever
  spinner: '4889f3488d1510000000be0b00000031ffb8120000000f05ebfe7370696e6e65722075700a',
  // ud2 with no trap table: the domain crashes               "crasher up\n"
  crasher: '4889f3488d1510000000be0b00000031ffb8120000000f050f0b637261736865722075700a',
  // VCPUOP_stop_periodic_timer (the toolstack arms a 100 Hz one), then SCHEDOP_poll forever
  // on the xenstore port (start_info.store_evtchn), which nothing signals: every vCPU
  // blocked, no timer armed                                   "blocker up\n"
  blocker: '4889f3488d1555000000be0b00000031ffb8120000000f05b818000000bf0700000031f631d20f054883ec408b434089442420488d4424204889042448c74424080100000048c744241000000000b81d000000bf030000004889e60f05ebef626c6f636b65722075700a',
  // Find the console ring (start_info.console.domU.mfn -> M2P -> KERNBASE + pfn * 4096),
  // then spin reading in[] and echo each byte with console_io "echo up\n"
  echo: '4889f3488d1571000000be0800000031ffb8120000000f05488b434848b9000000000080ffff488b04c148c1e00c48c7c1000000804c8d24084883ec40418b8c24000c0000413b8c24040c000074ee89c825ff030000410fb60404ffc141898c24000c00008804244889e2be0100000031ffb8120000000f05ebc26563686f2075700a',
  // Loop: SCHEDOP_poll on the xenstore port with a timeout of rdtsc + 10 ms (the TSC counts
  // ns of system time), then print "." -- a 100 Hz ticker     "ticker up\n"
  ticker: '4889f3488d1566000000be0a00000031ffb8120000000f054883ec408b434089442420488d4424204889042448c7442408010000000f3148c1e2204809d04805809698004889442410b81d000000bf030000004889e60f05488d1510000000be0100000031ffb8120000000f05ebc62e7469636b65722075700a',
} as const;
export type Synth = keyof typeof CODE;

/** A PV ELF kernel at KERNBASE + 0x2000 running one of the programs above. */
export function synthKernel(kind: Synth): Uint8Array {
  const code = Buffer.from(CODE[kind], 'hex');
  const entry = KERNBASE + 0x2000n;
  return buildElf64({
    entry,
    segments: [{ vaddr: entry, paddr: 0x2000n, data: new Uint8Array(code), memsz: 0x2000n, flags: 7 }],
    notes: [
      { type: 6, desc: str('linux') },
      { type: 5, desc: str('xen-3.0') },
      { type: 3, desc: u64(KERNBASE) },
      { type: 4, desc: u64(0n) },
      { type: 1, desc: u64(entry) },
      { type: 8, desc: str('generic') },
    ],
  });
}

export function tempDir(prefix: string): string {
  // Short: the control socket's path must fit in sun_path.
  return mkdtempSync(path.join(tmpdir(), prefix));
}

/** Write an xl.cfg; `kernel` is a path or a synthetic kernel's kind (written beside it). */
export function writeCfg(dir: string, name: string, kernel: string, extra: Record<string, string | number> = {}): string {
  let k = kernel;
  if (kernel in CODE) {
    k = path.join(dir, `${kernel}.elf`);
    writeFileSync(k, synthKernel(kernel as Synth));
  }
  const lines = [`name = "${name}"`, `kernel = "${k}"`];
  for (const [key, v] of Object.entries({ memory: 8, ...extra })) lines.push(`${key} = ${typeof v === 'number' ? v : `"${v}"`}`);
  const file = path.join(dir, `${name}.cfg`);
  writeFileSync(file, lines.join('\n') + '\n');
  return file;
}

export interface Captured extends VerbIO {
  out(): string;
  err(): string;
  input: PassThrough;
}

/** Verb I/O into strings, with a pipe for stdin. */
export function capture(): Captured {
  const o: Buffer[] = [], e: Buffer[] = [];
  const input = new PassThrough();
  return {
    stdout: { write: (s: string | Uint8Array) => { o.push(Buffer.from(s)); return true; } },
    stderr: { write: (s: string | Uint8Array) => { e.push(Buffer.from(s)); return true; } },
    stdin: input,
    input,
    out: () => Buffer.concat(o).toString('utf8'),
    err: () => Buffer.concat(e).toString('utf8'),
  };
}

/** Poll until f() is truthy (the host runs on this event loop meanwhile). */
export async function until<T>(f: () => T | Promise<T>, what: string, ms = 60_000): Promise<T> {
  const t0 = Date.now();
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Parse `sim list` output into rows by name. */
export function parseList(out: string): Map<string, { id: number; mem: number; vcpus: number; state: string; time: number; line: string }> {
  const m = new Map<string, { id: number; mem: number; vcpus: number; state: string; time: number; line: string }>();
  for (const line of out.split('\n').slice(1)) {
    if (!line) continue;
    const f = /^(\S+)\s+(\d+)\s+(\d+)\s+(\d+)\s+([-rbpscdwS?]{6})\s+([\d.]+)$/.exec(line);
    if (!f) throw new Error(`not an xl list row: ${JSON.stringify(line)}`);
    m.set(f[1], { id: Number(f[2]), mem: Number(f[3]), vcpus: Number(f[4]), state: f[5], time: Number(f[6]), line });
  }
  return m;
}
