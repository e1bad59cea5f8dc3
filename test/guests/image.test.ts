import { existsSync, readdirSync, readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { loadKernelImage } from '../../src/guests/image.js';
import { expectImageError, fixture, KERNBASE, safely } from './helpers.js';

describe('loadKernelImage detects the format', () => {
  test('plain ELF (Linux-style): PV and PVH layouts', () => {
    const k = loadKernelImage(fixture('linux-like.elf'));
    expect(k.format).toBe('elf');
    expect(k.compression).toBe('none');
    expect(k.pv!.virtKstart).toBe(0xffffffff81000000n);
    expect(k.pvh!.virtEntry).toBe(BigInt(k.xen.phys32Entry!));
    expect(k.pvError).toBeUndefined();
  });

  test('gzipped NetBSD-style ELF: gz -> ELF -> notes', () => {
    const k = loadKernelImage(fixture('netbsd-like.elf.gz'));
    expect(k.format).toBe('elf');
    expect(k.compression).toBe('gzip');
    expect(k.xen.guestOs).toBe('NetBSD');
    expect(k.xen.source).toBe('SHT_NOTE');
    expect(k.pv!.virtEntry).toBe(KERNBASE + 0x200000n);
    expect(k.pv!.virtHypercall).toBe(KERNBASE + 0x201000n);
    expect(k.pv!.bsdSymtab).toBeDefined();
    expect(k.pvh).toBeUndefined();
  });

  test.each(['gzip', 'bzip2', 'lzma', 'xz', 'lzo', 'lz4', 'zstd', 'none'])('bzImage with a %s payload', (kind) => {
    const k = loadKernelImage(fixture(`bzImage-${kind}`));
    expect(k.format).toBe('bzimage');
    expect(k.bzImage!.compression).toBe(kind);
    expect(k.xen.guestOs).toBe('linux');
    expect(k.pv!.virtEntry).toBe(k.xen.entry);
  });

  test('mode pv refuses a 32-bit kernel; mode any reports it', () => {
    expectImageError(() => loadKernelImage(fixture('legacy32.elf'), { mode: 'pv' }),
      /ELF class 1 \(32-bit\) kernel for machine EM_386 is not supported for 64-bit PV/);
    expectImageError(() => loadKernelImage(fixture('legacy32.elf')), /EM_386 is not supported for 64-bit PV/);
  });

  test('mode pvh without a PVH entry', () => {
    expectImageError(() => loadKernelImage(fixture('netbsd-like.elf'), { mode: 'pvh' }), /no PHYS32_ENTRY note/);
  });

  test('not a kernel', () => {
    expectImageError(() => loadKernelImage(new TextEncoder().encode('#!/bin/sh\necho hello\n')),
      /not a kernel image: expected an ELF file \(7f 45 4c 46\), a Linux bzImage \("HdrS" at offset 0x202\) or a gzip\/bzip2\/xz\/lzma\/lzo\/lz4\/zstd compressed image; the file starts 23 21 2f 62/);
    expectImageError(() => loadKernelImage(new Uint8Array(0)), /not a kernel image/);
  });

  test('a compressed file that holds no kernel', () => {
    expectImageError(() => loadKernelImage(fixture('data/sample.gz')), /the gzip-compressed file does not contain an ELF kernel or a bzImage/);
  });

  test('a huge decompression is stopped by the limit', () => {
    expectImageError(() => loadKernelImage(fixture('bzImage-xz'), { maxDecompressedSize: 4096 }), /exceeds the limit of 4096 bytes/);
  });
});

describe('corrupted kernel images of every kind fail cleanly', () => {
  const names = ['linux-like.elf', 'netbsd-like.elf', 'netbsd-like.elf.gz', 'legacy64.elf', 'bzImage-xz', 'bzImage-zstd', 'bzImage-lz4'];
  const images = names.map(fixture);
  test('random flips and truncations', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: images.length - 1 }),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), { minLength: 0, maxLength: 5 }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        (which, flips, frac) => {
          const src = images[which]!;
          const b = src.slice(0, frac > 0.5 ? src.length : Math.floor(src.length * frac * 2));
          for (const [at, x] of flips) if (b.length) b[at % b.length] ^= x;
          safely(() => loadKernelImage(b, { maxDecompressedSize: 1 << 20 }));
        },
      ),
      { numRuns: 500 },
    );
  });
});

// The real Debian kernel, when the machine has it (CI installs linux-image-amd64).
const debian = existsSync('/boot') ? readdirSync('/boot').filter((f) => /^vmlinuz-.*-amd64$/.test(f)).sort() : [];
describe('Debian linux-image-amd64', () => {
  if (debian.length === 0) {
    test.skip('no /boot/vmlinuz-*-amd64 on this machine (apt-get install linux-image-amd64 to run this test)', () => {});
    return;
  }
  test.each(debian)('%s: bzImage -> xz (x86 BCJ + LZMA2) -> ELF -> Xen notes', (name) => {
    const bytes = new Uint8Array(readFileSync(`/boot/${name}`));
    const k = loadKernelImage(bytes);
    expect(k.format).toBe('bzimage');
    expect(k.bzImage!.compression).toBe('xz');
    expect(k.bzImage!.uncompressedSize).toBe(k.elf.bytes.length);
    expect(k.bzImage!.kernelVersion).toMatch(/^\d+\.\d+\.\d+-\d+-amd64 /);
    expect(k.xen.guestOs).toBe('linux');
    expect(k.xen.xenVersion).toBe('xen-3.0');
    expect(k.xen.loader).toBe('generic');
    expect(k.xen.virtBase).toBe(KERNBASE);
    expect(k.xen.paddrOffset).toBe(0n);
    expect(k.xen.featuresString).toBe('!writable_page_tables|pae_pgdir_above_4gb');
    expect(k.xen.features.required).toBe(1);
    expect(k.xen.initP2m).toBe(0x8000000000n);
    expect(k.xen.hypercallPage).toBeUndefined();
    const pv = k.pv!;
    expect(pv.pstart).toBe(0x1000000n);
    expect(pv.virtKstart).toBe(0xffffffff81000000n);
    expect(pv.virtEntry).toBe(k.xen.entry);
    // Segments are placed by p_paddr: the per-CPU segment (p_vaddr 0) lands above the kernel base.
    const percpu = pv.segments.find((s) => s.elfVaddr === 0n);
    expect(percpu?.vaddr).toBe(percpu!.paddr + KERNBASE);
    expect(k.pvh!.virtEntry).toBe(BigInt(k.xen.phys32Entry!));
  });
});
