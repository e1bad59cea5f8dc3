// `sim boot` with no arguments: until the PV platform lands, it runs the built-in raw demo
// guest (fixtures/raw/demo.bin) and prints what it computed.

import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { runRaw } from '../guests/raw.js';
import { UsageError } from './errors.js';

export function bootCommand(): number {
  const path = fileURLToPath(new URL('../../fixtures/raw/demo.bin', import.meta.url));
  let image: Uint8Array;
  try { image = readFileSync(path); } catch { throw new UsageError(`the built-in guest ${path} is missing`); }
  const r = runRaw(image, { base: 0x100000, entry: 0x100000, maxInsns: 2_000_000_000 });
  process.stdout.write(`xensim: built-in raw guest ran ${r.insns} instructions and stopped (${r.stop})\n`);
  process.stdout.write(JSON.stringify(r.regs) + '\n');
  return r.stop === 'halt' ? 0 : 1;
}
