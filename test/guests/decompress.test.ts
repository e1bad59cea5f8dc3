import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { COMPRESSIONS, decompress, detectCompression } from '../../src/guests/decompress.js';
import { x86BcjDecode } from '../../src/guests/decompress/xz.js';
import { adler32, crc32, crc64, xxh32 } from '../../src/guests/decompress/util.js';
import { xxh64Low32 } from '../../src/guests/decompress/xxh64.js';
import { expectImageError, fixture, safely } from './helpers.js';

const sample = fixture('data/sample.bin');
const twice = new Uint8Array([...sample, ...sample]);

const CASES: Array<[string, string, number]> = [
  ['sample.gz', 'gzip', 1],
  ['sample-named.gz', 'gzip', 1],
  ['sample-2members.gz', 'gzip', 2],
  ['sample.bz2', 'bzip2', 1],
  ['sample-1.bz2', 'bzip2', 1],
  ['sample-2streams.bz2', 'bzip2', 2],
  ['sample-x86.xz', 'xz', 1],
  ['sample-crc64.xz', 'xz', 1],
  ['sample-delta-sha256.xz', 'xz', 1],
  ['sample-blocks.xz', 'xz', 1],
  ['sample-2streams.xz', 'xz', 2],
  ['sample.lzma', 'lzma', 1],
  ['sample.lzo', 'lzo', 1],
  ['sample-1.lzo', 'lzo', 1],
  ['sample-legacy.lz4', 'lz4', 1],
  ['sample-linked.lz4', 'lz4', 1],
  ['sample-checksums.lz4', 'lz4', 1],
  ['sample.zst', 'zstd', 1],
  ['sample-fast.zst', 'zstd', 1],
  ['sample-ultra.zst', 'zstd', 1],
  ['sample-2frames.zst', 'zstd', 2],
];

describe('decompressors reproduce the sample', () => {
  test.each(CASES)('%s (%s)', (file, format, streams) => {
    const input = fixture(`data/${file}`);
    expect(detectCompression(input)).toBe(format);
    const r = decompress(input);
    expect(r.format).toBe(format);
    expect(r.streams).toBe(streams);
    expect(r.trailing).toBe(0);
    expect(Buffer.from(r.data).equals(Buffer.from(streams === 2 ? twice : sample))).toBe(true);
  });

  test('every advertised compression has a fixture', () => {
    expect(new Set(CASES.map((c) => c[1]))).toEqual(new Set(COMPRESSIONS));
  });
});

describe('trailing data and truncation', () => {
  test.each(CASES.filter((c) => c[2] === 1))('%s: trailing garbage is ignored and counted', (file) => {
    const input = fixture(`data/${file}`);
    // A Linux bzImage payload ends with the uncompressed size as 4 bytes.
    const withSize = new Uint8Array([...input, 0x00, 0xc0, 0x00, 0x00]);
    const r = decompress(withSize);
    expect(Buffer.from(r.data).equals(Buffer.from(sample))).toBe(true);
    expect(r.trailing).toBe(4);
  });

  test.each(CASES)('%s: every truncation point gives a clear error', (file) => {
    const input = fixture(`data/${file}`);
    // A spread of cut points, including inside the header and just before the end.
    const cuts = new Set([1, 5, 9, 13, 20, 40, input.length >> 2, input.length >> 1, input.length - 9, input.length - 5, input.length - 1]);
    for (const cut of cuts) {
      if (cut <= 0 || cut >= input.length) continue;
      const short = input.subarray(0, cut);
      const r = safely(() => decompress(short, { format: detectCompression(input) }));
      if (r instanceof Error) {
        expect(r.message).toMatch(/truncated|corrupt|past the end|mismatch|does not match|ends|invalid|bad|too|empty|no /i);
      } else {
        // Only a cut in trailing padding or after a complete member may succeed, and then
        // never with more data than the original.
        expect(r.data.length).toBeLessThanOrEqual(streamsLength(file));
      }
    }
  });

  test('the truncation message names the problem', () => {
    const gz = fixture('data/sample.gz');
    expectImageError(() => decompress(gz.subarray(0, gz.length - 100)), /gzip: stream is truncated/);
    const xz = fixture('data/sample-x86.xz');
    expectImageError(() => decompress(xz.subarray(0, 5000)), /xz: stream is truncated/);
    const zst = fixture('data/sample.zst');
    expectImageError(() => decompress(zst.subarray(0, 3000)), /zstd: stream is truncated/);
    const lz4 = fixture('data/sample-legacy.lz4');
    expectImageError(() => decompress(lz4.subarray(0, 3000)), /lz4: stream is truncated/);
  });

  test('the output limit is enforced', () => {
    for (const [file] of CASES) {
      expectImageError(() => decompress(fixture(`data/${file}`), { maxOutput: 10000 }), /exceeds the limit|limit of 10000/);
    }
  });

  test('unknown formats are named by their first bytes', () => {
    expectImageError(() => decompress(new Uint8Array([1, 2, 3, 4, 5])), /unknown compression format \(first bytes: 01 02 03 04 05\)/);
  });
});

function streamsLength(file: string): number {
  return file.includes('2') && !file.includes('sample-1') ? twice.length : sample.length;
}

describe('corruption never escapes as anything but a KernelImageError', () => {
  const inputs = CASES.map(([f]) => fixture(`data/${f}`));
  test('random byte flips', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: inputs.length - 1 }),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 4 }),
        (which, flips) => {
          const b = inputs[which]!.slice();
          for (const [at, x] of flips) b[at % b.length] ^= x;
          safely(() => decompress(b, { maxOutput: 1 << 20 }));
        },
      ),
      { numRuns: 300 },
    );
  });

  test('random truncation plus flips', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: inputs.length - 1 }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.nat(),
        (which, frac, flip) => {
          const src = inputs[which]!;
          const b = src.slice(0, Math.floor(src.length * frac));
          if (b.length) b[flip % b.length] ^= 0x5a;
          safely(() => decompress(b, { maxOutput: 1 << 20 }));
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('checksums and filters', () => {
  const abc = new TextEncoder().encode('123456789');
  test('check values of the standard test vector', () => {
    expect(crc32(abc)).toBe(0xcbf43926);
    expect(crc64(abc)).toBe(0x995dc9bbdf1939fan);
    expect(adler32(abc)).toBe(0x091e01de);
    expect(xxh32(new Uint8Array(0))).toBe(0x02cc5d05);
  });

  test('XXH64 matches zstd over inputs of every tail length', () => {
    // zstd frames carry XXH64's low 32 bits; the fixtures decode only if they match, so the
    // 48 KiB sample covers the 32-byte stripes. Known short vectors cover the tails.
    expect(xxh64Low32(new Uint8Array(0), 0, 0)).toBe(0x51d8e999); // XXH64("") = ef46db3751d8e999
    expect(xxh64Low32(new TextEncoder().encode('a'), 0, 1)).toBe(0xa98c6e5b); // d24ec4f1a98c6e5b
    expect(xxh64Low32(new TextEncoder().encode('abc'), 0, 3)).toBe(0xad770999); // 44bc2cf5ad770999
  });

  test('x86 BCJ leaves data without E8/E9 alone and keeps short buffers intact', () => {
    const d = new Uint8Array([1, 2, 3, 4, 0xe8, 1, 0]);
    const copy = d.slice();
    x86BcjDecode(d, 0, 4, 0);
    expect(d).toEqual(copy);
  });
});
