import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import {
  EM_386, EM_X86_64, parseElf, parseNotes, PT_LOAD, PT_NOTE, sectionByName, SHT_NOTE, SHT_SYMTAB,
} from '../../src/guests/elf.js';
import { buildElf64, expectImageError, fixture, KERNBASE, minimalPvKernel, safely, str } from './helpers.js';

describe('parseElf on the fixtures', () => {
  test('linux-like: ELF64 program headers, p_paddr vs p_vaddr, PT_NOTE', () => {
    const elf = parseElf(fixture('linux-like.elf'));
    expect(elf.header.class).toBe(64);
    expect(elf.header.machine).toBe(EM_X86_64);
    expect(elf.header.entry).toBe(0x1000000n);
    const loads = elf.programHeaders.filter((p) => p.type === PT_LOAD);
    expect(loads.map((p) => p.paddr)).toEqual([0x1000000n, 0x1200000n, 0x1201000n, 0x1202000n]);
    expect(loads[0]!.vaddr).toBe(0xffffffff81000000n);
    expect(loads[2]!.vaddr).toBe(0n); // the per-CPU segment, as in Linux
    expect(loads[3]!.filesz).toBe(0);
    expect(loads[3]!.memsz).toBe(0x4000n);
    expect(elf.programHeaders.some((p) => p.type === PT_NOTE)).toBe(true);
    expect(sectionByName(elf, '.notes')?.type).toBe(SHT_NOTE);
  });

  test('netbsd-like: sections with names and a symbol table', () => {
    const elf = parseElf(fixture('netbsd-like.elf'));
    expect(elf.sections.map((s) => s.name)).toEqual(expect.arrayContaining(['.text', '.note.Xen', '.data', '.bss', '.symtab', '.strtab', '.shstrtab']));
    expect(sectionByName(elf, '.symtab')!.type).toBe(SHT_SYMTAB);
    expect(elf.programHeaders.every((p) => p.paddr === p.vaddr)).toBe(true);
  });

  test('legacy32: ELF32 is parsed', () => {
    const elf = parseElf(fixture('legacy32.elf'));
    expect(elf.header.class).toBe(32);
    expect(elf.header.machine).toBe(EM_386);
    expect(elf.programHeaders[0]!.vaddr).toBe(0xc0100000n);
    expect(sectionByName(elf, '__xen_guest')).toBeDefined();
  });

  test('notes of the linux-like PT_NOTE segment', () => {
    const elf = parseElf(fixture('linux-like.elf'));
    const ph = elf.programHeaders.find((p) => p.type === PT_NOTE)!;
    const notes = parseNotes(elf, ph.offset, ph.offset + ph.filesz, 4, 'PT_NOTE');
    expect(notes.every((n) => n.name === 'Xen')).toBe(true);
    expect(notes.map((n) => n.type)).toContain(18);
  });
});

function patch(b: Uint8Array, f: (dv: DataView) => void): Uint8Array {
  const c = b.slice();
  f(new DataView(c.buffer));
  return c;
}

describe('bad ELF files get errors that say what is wrong', () => {
  const good = minimalPvKernel();

  test('not ELF', () => {
    expectImageError(() => parseElf(new Uint8Array([0x4d, 0x5a, 0x90, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13])), /not an ELF file \(magic 4d 5a 90 00, expected 7f 45 4c 46\)/);
    expectImageError(() => parseElf(new Uint8Array(0)), /not an ELF file/);
  });

  test('truncated header', () => {
    expectImageError(() => parseElf(good.subarray(0, 10)), /too short for an ELF header/);
    expectImageError(() => parseElf(good.subarray(0, 40)), /too short for an ELF64 header \(40 of 64 bytes\)/);
  });

  test('bad class, encoding, version', () => {
    expectImageError(() => parseElf(patch(good, (d) => d.setUint8(4, 3))), /invalid ELF class 3/);
    expectImageError(() => parseElf(patch(good, (d) => d.setUint8(5, 7))), /invalid ELF data encoding 7/);
    expectImageError(() => parseElf(patch(good, (d) => d.setUint32(20, 2, true))), /unsupported ELF version 2/);
  });

  test('program header table past the end, hostile e_phnum and e_phoff', () => {
    expectImageError(() => parseElf(patch(good, (d) => d.setUint16(56, 0xfff0, true))), /program header \d+ \(at offset 0x[0-9a-f]+\) extends past the end of the file/);
    expectImageError(() => parseElf(patch(good, (d) => d.setBigUint64(32, 0xffffffffffff0000n, true))), /program header 0 .* extends past the end of the file/);
    expectImageError(() => parseElf(patch(good, (d) => d.setUint16(54, 8, true))), /e_phentsize 8 is smaller/);
  });

  test('segment data past the end, filesz > memsz, address wrap', () => {
    expectImageError(() => parseElf(patch(good, (d) => d.setBigUint64(64 + 32, 0x7fffffffffffffffn, true))),
      /program header 0 \(PT_LOAD\) data \(offset 0x[0-9a-f]+, 0x7fffffffffffffff bytes\) extends past the end of the file/);
    expectImageError(() => parseElf(patch(good, (d) => d.setBigUint64(64 + 8, 0x100000000n, true))), /program header 0 \(PT_LOAD\) data .* extends past the end/);
    expectImageError(() => parseElf(patch(good, (d) => d.setBigUint64(64 + 40, 0x10n, true))), /p_filesz 0x100 is larger than p_memsz 0x10/);
    expectImageError(() => parseElf(patch(good, (d) => d.setBigUint64(64 + 24, 0xfffffffffffff000n, true))), /wraps around the address space/);
    expectImageError(() => parseElf(patch(good, (d) => d.setBigUint64(64 + 56 + 8, 0xfffffffffn, true))), /program header 1 \(PT_NOTE\) data .* extends past the end/);
  });

  test('section headers: table past the end, bad e_shstrndx, bad names, data past the end', () => {
    const shoff = Number(new DataView(good.buffer).getBigUint64(40, true));
    expectImageError(() => parseElf(patch(good, (d) => d.setUint16(60, 500, true))), /section header \d+ \(at offset 0x[0-9a-f]+\) extends past the end of the file \(0x[0-9a-f]+ bytes\); e_shnum is 500/);
    expectImageError(() => parseElf(patch(good, (d) => d.setUint16(62, 77, true))), /e_shstrndx 77 is out of range \(2 sections\)/);
    expectImageError(() => parseElf(patch(good, (d) => d.setUint32(shoff + 64, 0x9999, true))), /section 1: name offset 0x9999 is outside the section name table/);
    expectImageError(() => parseElf(patch(good, (d) => d.setBigUint64(shoff + 64 + 32, 0x100000n, true))), /section 1 .* extends past the end of the file/);
    expectImageError(() => parseElf(patch(good, (d) => d.setUint16(58, 12, true))), /e_shentsize 12 is smaller/);
  });

  test('malformed notes', () => {
    const withNote = buildElf64({ segments: [{ vaddr: 0n, paddr: 0n, data: new Uint8Array(16) }], notes: [{ type: 6, desc: str('linux') }] });
    const elf = parseElf(withNote);
    const ph = elf.programHeaders.find((p) => p.type === PT_NOTE)!;
    // descsz pointing far past the segment
    const bad = patch(withNote, (d) => d.setUint32(ph.offset + 4, 0x7fffffff, true));
    const e2 = parseElf(bad);
    expectImageError(() => parseNotes(e2, ph.offset, ph.offset + ph.filesz, 4, 'PT_NOTE segment 1'),
      /PT_NOTE segment 1: note 0 at offset 0x[0-9a-f]+ \(type 6\): descriptor \(2147483647 bytes\) extends past the end of the segment/);
    const badName = patch(withNote, (d) => d.setUint32(ph.offset, 0xffffff00, true));
    expectImageError(() => parseNotes(parseElf(badName), ph.offset, ph.offset + ph.filesz, 4, 'PT_NOTE segment 1'), /name \(4294967040 bytes\) extends past the end/);
    // A trailing partial header that is not zero padding
    expectImageError(() => parseNotes(elf, ph.offset, ph.offset + 8, 4, 'x'), /note 0 at offset .* is truncated \(8 bytes left/);
  });

  test('PN_XNUM: the real program header count comes from section 0', () => {
    const b = patch(good, (d) => {
      const shoff = Number(d.getBigUint64(40, true));
      d.setUint32(shoff + 44, d.getUint16(56, true), true);
      d.setUint16(56, 0xffff, true);
    });
    expect(parseElf(b).programHeaders.length).toBe(parseElf(good).programHeaders.length);
  });
});

describe('corrupted ELF images fail cleanly', () => {
  const images = ['linux-like.elf', 'netbsd-like.elf', 'legacy64.elf', 'legacy32.elf'].map(fixture);
  test('byte flips in the headers and tables', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: images.length - 1 }),
        fc.array(fc.tuple(fc.nat({ max: 4095 }), fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 6 }),
        fc.boolean(),
        (which, flips, atEnd) => {
          const b = images[which]!.slice();
          // Flip in the first 4 KiB (headers) or near the end (section table, names).
          for (const [at, x] of flips) b[atEnd ? b.length - 1 - (at % b.length) : at % b.length] ^= x;
          safely(() => parseElf(b));
        },
      ),
      { numRuns: 500 },
    );
  });

  test('every truncation', () => {
    for (const img of images) {
      for (let n = 0; n < img.length; n += 37) safely(() => parseElf(img.subarray(0, n)));
    }
  });

  test('hostile 64-bit fields', () => {
    const good = minimalPvKernel();
    fc.assert(
      fc.property(fc.integer({ min: 0, max: good.length - 8 }), fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), (at, v) => {
        const b = good.slice();
        new DataView(b.buffer).setBigUint64(at & ~7, v, true);
        safely(() => parseElf(b));
      }),
      { numRuns: 500 },
    );
  });
  void KERNBASE;
});
