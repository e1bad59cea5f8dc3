// Runs CpuCases on the real CPU through the native runner (test/native/cpurun.c).
//
// The runner reads fixed-size little-endian case records on stdin and writes one fixed-size
// outcome record per case on stdout; the layout is documented at the top of cpurun.c and
// mirrored by the IN_* / OUT_* offsets below.

import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  type CpuCase,
  type CpuOutcome,
  CODE_SIZE,
  DATA_SIZE,
  FXSAVE_SIZE,
  MAX_CODE,
  MAX_EXITS,
  STACK_SIZE,
} from './case.js';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const SOURCE = path.join(REPO_ROOT, 'test/native/cpurun.c');
const BINARY = path.join(REPO_ROOT, 'build/native/cpurun');

// ---- input record ----
const IN_CODE_LEN = 0; //   u32
const IN_N_EXITS = 4; //    u32
const IN_EXITS = 8; //      u32[4]
const IN_REGS = 24; //      u64[16]
const IN_RFLAGS = 152; //   u64
const IN_FX = 160; //       512 bytes
const IN_DATA = 672; //     8 KiB
const IN_STACK = 8864; //   4 KiB
const IN_CODE = 12960; //   256 bytes
export const IN_SIZE = 13216;

// ---- output record ----
const OUT_STATUS = 0; //    u32: 0 ok, 1 fault, 2 timeout, 3 syscall
const OUT_VECTOR = 4; //    u32
const OUT_ERROR = 8; //     u32
const OUT_ADDR = 16; //     u64
const OUT_RIP = 24; //      u64
const OUT_REGS = 32; //     u64[16]
const OUT_RFLAGS = 160; //  u64
const OUT_FX = 168; //      512 bytes
const OUT_DATA = 680; //    8 KiB
const OUT_STACK = 8872; //  4 KiB
export const OUT_SIZE = 12968;

/** Why the native run ended, beyond CpuOutcome.status. */
export type NativeStatus = 'ok' | 'fault' | 'timeout' | 'syscall';

/**
 * A CpuOutcome with the runner's own status. 'timeout' (the code didn't reach an exit within the
 * time limit) and 'syscall' (the code executed syscall / int 0x80, which the runner blocks) are
 * reported as status 'fault' with vector -1, so they never compare equal to a real exception.
 */
export interface NativeOutcome extends CpuOutcome {
  nativeStatus: NativeStatus;
}

export interface RunNativeOptions {
  /** Per-case time limit in the runner, in milliseconds (default 1000). */
  timeoutMs?: number;
  /** Cases per runner process (default 4096); larger arrays are split across processes. */
  batchSize?: number;
}

/** The FXSAVE image used when a case has no `fx`: FNINIT state, x87 CW 0x037F, MXCSR 0x1F80. */
export function defaultFxImage(): Uint8Array {
  const fx = new Uint8Array(FXSAVE_SIZE);
  const dv = new DataView(fx.buffer);
  dv.setUint16(0, 0x037f, true);
  dv.setUint32(24, 0x1f80, true);
  return fx;
}

export function nativeRunnerPath(): string {
  return BINARY;
}

/** Compiles cpurun.c into build/native/cpurun if the binary is missing or older than the source. */
export function buildNativeRunner(): string {
  const srcTime = statSync(SOURCE).mtimeMs;
  if (existsSync(BINARY) && statSync(BINARY).mtimeMs >= srcTime) return BINARY;
  mkdirSync(path.dirname(BINARY), { recursive: true });
  // Build to a temporary name and rename, so concurrent builders never see a partial binary.
  const tmp = `${BINARY}.tmp-${process.pid}`;
  try {
    execFileSync('gcc', ['-O2', '-Wall', '-o', tmp, SOURCE], { stdio: ['ignore', 'pipe', 'pipe'] });
    renameSync(tmp, BINARY);
  } catch (e) {
    rmSync(tmp, { force: true });
    const err = e as { stderr?: Buffer; message: string };
    throw new Error(`building the native runner failed: ${err.stderr?.toString() || err.message}`);
  }
  return BINARY;
}

let built = false;

function encodeCase(c: CpuCase, rec: Uint8Array, index: number): void {
  const dv = new DataView(rec.buffer, rec.byteOffset, rec.byteLength);
  const where = `case ${index}`;
  if (c.code.length > MAX_CODE) throw new Error(`${where}: code is ${c.code.length} bytes (max ${MAX_CODE})`);
  if (c.regs.length !== 16) throw new Error(`${where}: regs must have 16 values`);
  const exits = c.exits ?? [];
  if (exits.length > MAX_EXITS) throw new Error(`${where}: more than ${MAX_EXITS} exits`);
  dv.setUint32(IN_CODE_LEN, c.code.length, true);
  dv.setUint32(IN_N_EXITS, exits.length, true);
  exits.forEach((e, i) => {
    if (!Number.isInteger(e) || e < 0 || e >= CODE_SIZE) throw new Error(`${where}: bad exit offset ${e}`);
    dv.setUint32(IN_EXITS + 4 * i, e, true);
  });
  c.regs.forEach((r, i) => dv.setBigUint64(IN_REGS + 8 * i, BigInt.asUintN(64, r), true));
  dv.setBigUint64(IN_RFLAGS, BigInt.asUintN(64, c.rflags), true);
  const fx = c.fx ?? defaultFxImage();
  if (fx.length !== FXSAVE_SIZE) throw new Error(`${where}: fx must be ${FXSAVE_SIZE} bytes`);
  rec.set(fx, IN_FX);
  if (c.data) {
    if (c.data.length > DATA_SIZE) throw new Error(`${where}: data larger than ${DATA_SIZE}`);
    rec.set(c.data, IN_DATA);
  }
  if (c.stack) {
    if (c.stack.length > STACK_SIZE) throw new Error(`${where}: stack larger than ${STACK_SIZE}`);
    rec.set(c.stack, IN_STACK);
  }
  rec.set(c.code, IN_CODE);
}

function decodeOutcome(rec: Uint8Array): NativeOutcome {
  const dv = new DataView(rec.buffer, rec.byteOffset, rec.byteLength);
  const st = dv.getUint32(OUT_STATUS, true);
  const nativeStatus: NativeStatus = (['ok', 'fault', 'timeout', 'syscall'] as const)[st] ?? 'fault';
  const regs: bigint[] = [];
  for (let i = 0; i < 16; i++) regs.push(dv.getBigUint64(OUT_REGS + 8 * i, true));
  return {
    status: nativeStatus === 'ok' ? 'ok' : 'fault',
    nativeStatus,
    vector: nativeStatus === 'fault' ? dv.getUint32(OUT_VECTOR, true) : -1,
    errorCode: dv.getUint32(OUT_ERROR, true),
    faultAddr: dv.getBigUint64(OUT_ADDR, true),
    rip: dv.getBigUint64(OUT_RIP, true),
    regs,
    rflags: dv.getBigUint64(OUT_RFLAGS, true),
    // Copies into plain Uint8Arrays (not Buffers, which compare differently in tests).
    fx: new Uint8Array(rec.subarray(OUT_FX, OUT_FX + FXSAVE_SIZE)),
    data: new Uint8Array(rec.subarray(OUT_DATA, OUT_DATA + DATA_SIZE)),
    stack: new Uint8Array(rec.subarray(OUT_STACK, OUT_STACK + STACK_SIZE)),
  };
}

/**
 * Runs the cases, in order, on the real CPU. Synchronous: one runner process per batch of
 * `batchSize` cases (a single process for typical arrays).
 */
export function runNative(cases: CpuCase[], opts: RunNativeOptions = {}): NativeOutcome[] {
  if (!built) {
    buildNativeRunner();
    built = true;
  }
  const batch = Math.max(1, opts.batchSize ?? 4096);
  const outcomes: NativeOutcome[] = [];
  for (let start = 0; start < cases.length; start += batch) {
    const chunk = cases.slice(start, start + batch);
    outcomes.push(...runBatch(chunk, start, opts.timeoutMs ?? 1000));
  }
  return outcomes;
}

function runBatch(cases: CpuCase[], first: number, timeoutMs: number): NativeOutcome[] {
  const input = new Uint8Array(cases.length * IN_SIZE);
  cases.forEach((c, i) => encodeCase(c, input.subarray(i * IN_SIZE, (i + 1) * IN_SIZE), first + i));
  const res = spawnSync(BINARY, [String(timeoutMs)], {
    input,
    maxBuffer: cases.length * OUT_SIZE + (1 << 20),
    // A generous overall limit: every case could time out.
    timeout: Math.max(60_000, cases.length * (timeoutMs + 50) + 10_000),
  });
  if (res.error) throw new Error(`native runner: ${res.error.message}`);
  if (res.status !== 0) {
    throw new Error(
      `native runner exited with ${res.status ?? res.signal}: ${res.stderr?.toString().trim()}`,
    );
  }
  const out = res.stdout;
  if (out.length !== cases.length * OUT_SIZE) {
    throw new Error(`native runner: expected ${cases.length * OUT_SIZE} bytes, got ${out.length}`);
  }
  const outcomes: NativeOutcome[] = [];
  for (let i = 0; i < cases.length; i++) {
    outcomes.push(decodeOutcome(out.subarray(i * OUT_SIZE, (i + 1) * OUT_SIZE)));
  }
  return outcomes;
}
