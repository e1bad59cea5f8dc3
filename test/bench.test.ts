// The committed raw-machine guests (fixtures/raw/, rebuilt by fixtures/raw/build.sh): the demo
// that `sim boot --raw` runs, and the small variant of the CPU benchmark that `npm run bench` runs.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { OPS } from '../src/cpu/insn.js';
import { runRaw } from '../src/guests/raw.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/raw/', import.meta.url));
const BASE = 0x100000;

function image(name: string): Uint8Array {
  return readFileSync(FIXTURES + name);
}

/** The checksums build.sh recorded from native runs of the same C (fixtures/raw/bench/EXPECTED). */
function expected(name: string): bigint {
  const text = readFileSync(FIXTURES + 'bench/EXPECTED', 'utf8');
  for (const line of text.split('\n')) {
    const [file, value] = line.trim().split(/\s+/);
    if (file === name && value) return BigInt(value);
  }
  throw new Error(`fixtures/raw/bench/EXPECTED has no checksum for ${name}`);
}

describe('demo guest (fixtures/raw/demo.bin, run by `sim boot --raw`)', () => {
  it('halts with its known results in registers', () => {
    const r = runRaw(image('demo.bin'), { base: BASE, entry: BASE, maxInsns: 10_000_000 });
    expect(r.exception).toBeUndefined();
    expect(r.stop).toBe('halt');
    expect(r.regs).toMatchObject({
      rax: '0x' + (1229).toString(16),                  // primes below 10000
      rbx: '0x' + (7919).toString(16),                  // the 1000th prime
      rcx: '0x' + (5736396).toString(16),               // their sum
      rdx: '0x' + (2880067194370816120n).toString(16),  // fib(90)
      rsi: '0x' + (205).toString(16),                   // twin-prime pairs below 10000
      rdi: '0x' + (36).toString(16),                    // largest prime gap below 10000
      r8: '0x' + (5000050000).toString(16),             // 1 + 2 + ... + 100000
      r9: '0x21214d49534e4558',                         // "XENSIM!!" as a little-endian word
      rsp: '0x800000',
    });
    // The count is a property of the committed binary: rebuilding demo.bin may change it.
    expect(r.insns).toBe(552_859);
  });
});

// The benchmark needs instruction families beyond the first ones: shifts and rotates (C1, D1,
// D3), group 3 (F6/F7: test imm, not, neg, mul, div), imul (0F AF) and movsxd (63). Until all
// of them are in the opcode table, this test is SKIPPED; it enables itself once they land, and
// from then on bench-small.bin must halt with exactly the native checksum.
// TODO: drop the gate (BENCH_OPCODES_READY) once these families are committed.
const BENCH_OPCODES = [0x63, 0xc1, 0xd1, 0xd3, 0xf6, 0xf7, 0x100 + 0xaf];
const BENCH_OPCODES_READY = BENCH_OPCODES.every((k) => OPS[k] !== undefined);

describe('CPU benchmark guest (fixtures/raw/bench-small.bin)', () => {
  it.runIf(BENCH_OPCODES_READY)('halts with the checksum of the native build of the same C', () => {
    const r = runRaw(image('bench-small.bin'), { base: BASE, entry: BASE, maxInsns: 100_000_000 });
    expect({ stop: r.stop, exception: r.exception, rip: r.regs.rip }).toMatchObject({ stop: 'halt', exception: undefined });
    expect(r.regs.rax).toBe('0x' + expected('bench-small.bin').toString(16));
    expect(r.regs.rsp).toBe('0x800000');
  });
});
