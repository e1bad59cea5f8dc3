// `sim raw FILE --base HEX --entry HEX [--memory MB] [--regs JSON] [--max-insns N]`

import { readFileSync } from 'node:fs';
import { runRaw } from '../guests/raw.js';
import { REG_NAMES_64 } from '../cpu/regnames.js';
import { UsageError } from './errors.js';

export function parseAddress(name: string, v: unknown): number {
  const s = String(v ?? '').trim();
  if (!/^(0x)?[0-9a-f]+$/i.test(s)) throw new UsageError(`--${name}: '${s}' is not a hexadecimal address`);
  const n = parseInt(s.replace(/^0x/i, ''), 16);
  if (!Number.isSafeInteger(n)) throw new UsageError(`--${name}: '${s}' is too large`);
  return n;
}

const REG_SET = new Set<string>([...REG_NAMES_64, 'rip', 'rflags']);

export function parseRegs(json: string | undefined): Record<string, bigint> {
  if (json === undefined) return {};
  let obj: unknown;
  try { obj = JSON.parse(json); } catch (e) { throw new UsageError(`--regs: not valid JSON (${(e as Error).message})`); }
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) throw new UsageError('--regs: expected a JSON object such as {"rax":"0x1"}');
  const out: Record<string, bigint> = {};
  for (const [k, v] of Object.entries(obj)) {
    const name = k.toLowerCase();
    if (!REG_SET.has(name)) throw new UsageError(`--regs: unknown register '${k}'`);
    let b: bigint;
    try {
      if (typeof v === 'number' && Number.isSafeInteger(v)) b = BigInt(v);
      else if (typeof v === 'string' && /^-?(0x[0-9a-f]+|[0-9]+)$/i.test(v.trim())) b = BigInt(v.trim().replace(/^-0x/i, '-0x'));
      else throw new Error();
    } catch { throw new UsageError(`--regs: value of '${k}' is not an integer: ${JSON.stringify(v)}`); }
    if (b < -(1n << 63n) || b >= (1n << 64n)) throw new UsageError(`--regs: value of '${k}' does not fit in 64 bits`);
    out[name] = BigInt.asUintN(64, b);
  }
  return out;
}

export interface RawArgs { file: string; base: unknown; entry: unknown; memory?: number; regs?: string; maxInsns?: number }

export function rawCommand(a: RawArgs): number {
  const base = parseAddress('base', a.base);
  const entry = parseAddress('entry', a.entry);
  const memoryMiB = a.memory ?? 64;
  if (!Number.isInteger(memoryMiB) || memoryMiB < 1 || memoryMiB > 16384) throw new UsageError(`--memory: ${a.memory} MB is not between 1 and 16384`);
  const regs = parseRegs(a.regs);
  let image: Uint8Array;
  try { image = readFileSync(a.file); } catch (e) { throw new UsageError(`cannot read ${a.file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`); }
  const size = memoryMiB * 1048576;
  if (base + image.length > size) throw new UsageError(`--base 0x${base.toString(16)}: the ${image.length}-byte image does not fit in ${memoryMiB} MiB of memory`);
  if (entry >= size) throw new UsageError(`--entry 0x${entry.toString(16)} is outside the ${memoryMiB} MiB of memory`);
  const max = a.maxInsns ?? Number.MAX_SAFE_INTEGER;
  if (!Number.isSafeInteger(max) || max < 0) throw new UsageError(`--max-insns: ${a.maxInsns} is not a non-negative integer`);
  const r = runRaw(image, { base, entry, memoryMiB, regs, maxInsns: max });
  const out: Record<string, string | number> = { ...r.regs };
  if (r.exception) {
    out.exception = r.exception;
    out.vector = r.vector ?? 0;
    out.error_code = '0x' + ((r.errorCode ?? 0) >>> 0).toString(16);
  }
  out.insns = r.insns;
  out.stop = r.stop;
  process.stdout.write(JSON.stringify(out) + '\n');
  return 0;
}
