import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { extractBzImage, isBzImage, parseBzImageHeader } from '../../src/guests/bzimage.js';
import { expectImageError, fixture, safely } from './helpers.js';

const vmlinux = fixture('linux-like.elf');
const KINDS = ['gzip', 'bzip2', 'lzma', 'xz', 'lzo', 'lz4', 'zstd', 'none'] as const;

describe('bzImage payloads in every format Linux can build', () => {
  test.each(KINDS)('%s', (kind) => {
    const img = fixture(`bzImage-${kind}`);
    expect(isBzImage(img)).toBe(true);
    const { info, elf, warnings } = extractBzImage(img);
    expect(info.compression).toBe(kind);
    expect(info.protocol).toBe('2.15');
    expect(info.setupSects).toBe(3);
    expect(info.protectedModeOffset).toBe(0x800);
    expect(info.payloadFileOffset).toBe(0x800 + 0x2cc);
    expect(info.kernelVersion).toBe(`6.1.0-xensim-test (${kind} payload)`);
    expect(info.uncompressedSize).toBe(vmlinux.length);
    expect(info.relocatable).toBe(true);
    expect(info.prefAddress).toBe(0x1000000n);
    expect(warnings).toEqual([]);
    expect(Buffer.from(elf.subarray(0, vmlinux.length)).equals(Buffer.from(vmlinux))).toBe(true);
  });
});

function patched(kind: string, f: (dv: DataView, b: Uint8Array) => void): Uint8Array {
  const b = fixture(`bzImage-${kind}`).slice();
  f(new DataView(b.buffer), b);
  return b;
}

describe('bad bzImages', () => {
  test('boot protocol older than 2.08', () => {
    expectImageError(() => parseBzImageHeader(patched('xz', (d) => d.setUint16(0x206, 0x0204, true))),
      /boot protocol 2\.04 is too old: a PV loader needs 2\.08 or later/);
  });
  test('payload past the end of the file', () => {
    expectImageError(() => parseBzImageHeader(patched('xz', (d) => d.setUint32(0x24c, 0x100000, true))),
      /payload \(file offset 0xacc = \(setup_sects 3 \+ 1\) \* 512 \+ payload_offset 0x2cc, length 0x100000\) extends past the end of the file/);
    expectImageError(() => parseBzImageHeader(patched('xz', (d) => d.setUint32(0x248, 0xfffffff0, true))), /extends past the end of the file/);
  });
  test('payload in an unknown format', () => {
    expectImageError(() => parseBzImageHeader(patched('xz', (d) => d.setUint32(0x248, 0x10, true))),
      /payload at file offset 0x810 is in an unknown format \(first bytes cc cc cc/);
  });
  test('a truncated file', () => {
    const img = fixture('bzImage-xz');
    expectImageError(() => extractBzImage(img.subarray(0, 0x240)), /truncated inside the setup header/);
    expectImageError(() => extractBzImage(img.subarray(0, img.length - 100)), /extends past the end of the file/);
  });
  test('a size word smaller than the data', () => {
    const b = patched('lz4', (d, u) => {
      const end = 0x800 + 0x2cc + d.getUint32(0x24c, true);
      d.setUint32(end - 4, 100, true);
      void u;
    });
    expectImageError(() => extractBzImage(b), /payload decompressed to \d+ bytes, more than the 100 its size word says/);
  });
  test('a corrupt xz payload names the xz problem', () => {
    const b = patched('xz', (_d, u) => { u[0x800 + 0x2cc + 200] ^= 0xff; });
    expectImageError(() => extractBzImage(b), /^xz: /);
  });
});

describe('corrupted bzImages fail cleanly', () => {
  const images = KINDS.map((k) => fixture(`bzImage-${k}`));
  test('byte flips anywhere, and truncations', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: images.length - 1 }),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), { minLength: 0, maxLength: 4 }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        (which, flips, frac) => {
          const src = images[which]!;
          const b = src.slice(0, frac > 0.7 ? src.length : Math.floor(src.length * frac));
          for (const [at, x] of flips) if (b.length) b[at % b.length] ^= x;
          safely(() => extractBzImage(b, { maxOutput: 1 << 20 }));
        },
      ),
      { numRuns: 400 },
    );
  });
});
