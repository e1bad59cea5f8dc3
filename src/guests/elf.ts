// ELF32/ELF64 parsing for kernel images: the file header, program headers, section headers
// (with names) and notes. Everything read from the file is bounds-checked against the file:
// a truncated or corrupt image gets a KernelImageError that says which header or table is
// wrong, never an out-of-range read, a hang, or an allocation sized by a hostile field.
//
// Addresses and 64-bit fields are bigints; file offsets and sizes that have been checked to
// lie inside the file are numbers.

import { KernelImageError, hex, hexBytes } from './image-error.js';

export const ELFCLASS32 = 1;
export const ELFCLASS64 = 2;
export const ELFDATA2LSB = 1;
export const ELFDATA2MSB = 2;

export const ET_EXEC = 2;
export const ET_DYN = 3;

export const PT_NULL = 0;
export const PT_LOAD = 1;
export const PT_DYNAMIC = 2;
export const PT_INTERP = 3;
export const PT_NOTE = 4;
export const PT_PHDR = 6;
export const PT_GNU_STACK = 0x6474e551;

export const PF_X = 1;
export const PF_W = 2;
export const PF_R = 4;

export const SHT_NULL = 0;
export const SHT_PROGBITS = 1;
export const SHT_SYMTAB = 2;
export const SHT_STRTAB = 3;
export const SHT_NOTE = 7;
export const SHT_NOBITS = 8;

export const SHN_UNDEF = 0;
export const SHN_XINDEX = 0xffff;
export const PN_XNUM = 0xffff;

export const EM_386 = 3;
export const EM_ARM = 40;
export const EM_X86_64 = 62;
export const EM_AARCH64 = 183;

const MACHINES: Record<number, string> = {
  0: 'EM_NONE', 2: 'EM_SPARC', 3: 'EM_386', 8: 'EM_MIPS', 20: 'EM_PPC', 21: 'EM_PPC64', 22: 'EM_S390',
  40: 'EM_ARM', 43: 'EM_SPARCV9', 50: 'EM_IA_64', 62: 'EM_X86_64', 183: 'EM_AARCH64', 243: 'EM_RISCV',
  258: 'EM_LOONGARCH',
};

const PT_NAMES: Record<number, string> = {
  0: 'PT_NULL', 1: 'PT_LOAD', 2: 'PT_DYNAMIC', 3: 'PT_INTERP', 4: 'PT_NOTE', 5: 'PT_SHLIB', 6: 'PT_PHDR',
  7: 'PT_TLS', 0x6474e550: 'PT_GNU_EH_FRAME', 0x6474e551: 'PT_GNU_STACK', 0x6474e552: 'PT_GNU_RELRO',
  0x6474e553: 'PT_GNU_PROPERTY',
};

export function machineName(m: number): string {
  return MACHINES[m] ?? `machine ${m}`;
}

export function segmentTypeName(t: number): string {
  return PT_NAMES[t] ?? hex(t);
}

export interface ElfHeader {
  class: 32 | 64;
  littleEndian: boolean;
  osabi: number;
  type: number;
  machine: number;
  version: number;
  entry: bigint;
  phoff: bigint;
  shoff: bigint;
  flags: number;
  ehsize: number;
  phentsize: number;
  /** The real count (PN_XNUM resolved through section 0). */
  phnum: number;
  shentsize: number;
  /** The real count (0 with e_shoff set resolved through section 0). */
  shnum: number;
  /** The real index (SHN_XINDEX resolved through section 0). */
  shstrndx: number;
}

export interface ElfProgramHeader {
  index: number;
  type: number;
  flags: number;
  /** File offset; with `filesz`, checked to lie inside the file. */
  offset: number;
  vaddr: bigint;
  paddr: bigint;
  filesz: number;
  memsz: bigint;
  align: bigint;
}

export interface ElfSection {
  index: number;
  name: string;
  type: number;
  flags: bigint;
  addr: bigint;
  /** File offset; for sections other than SHT_NOBITS/SHT_NULL, checked with `size` to lie inside the file. */
  offset: number;
  size: bigint;
  link: number;
  info: number;
  addralign: bigint;
  entsize: bigint;
}

export interface ElfFile {
  bytes: Uint8Array;
  header: ElfHeader;
  programHeaders: ElfProgramHeader[];
  sections: ElfSection[];
}

export interface ElfNote {
  name: string;
  type: number;
  desc: Uint8Array;
  /** File offset of the note header. */
  offset: number;
  /** Where it was found, for messages: "PT_NOTE segment 4" or "section 3 (.notes)". */
  container: string;
  /** Bytes of `desc` plus its alignment padding (a string may end in the padding). */
  descPadded: Uint8Array;
}

function fail(msg: string): never {
  throw new KernelImageError('elf', msg);
}

export function isElf(b: Uint8Array): boolean {
  return b.length >= 4 && b[0] === 0x7f && b[1] === 0x45 && b[2] === 0x4c && b[3] === 0x46;
}

/** A reader of fixed-layout records in the file's class and byte order. */
class Reader {
  readonly dv: DataView;
  constructor(readonly b: Uint8Array, readonly le: boolean) {
    this.dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  }
  u8(o: number): number {
    return this.b[o]!;
  }
  u16(o: number): number {
    return this.dv.getUint16(o, this.le);
  }
  u32(o: number): number {
    return this.dv.getUint32(o, this.le);
  }
  u64(o: number): bigint {
    return this.dv.getBigUint64(o, this.le);
  }
}

/** Check that [off, off+size) lies inside a file of `fileSize` bytes; returns off as a number. */
function inFile(off: bigint, size: bigint, fileSize: number, what: string): number {
  if (off > BigInt(fileSize) || size > BigInt(fileSize) - off) {
    fail(`${what} (offset ${hex(off)}, ${hex(size)} bytes) extends past the end of the file (${hex(fileSize)} bytes)`);
  }
  return Number(off);
}

/** Name the first entry of a header table that does not fit in the file. */
function tableCheck(what: string, off: bigint, count: number, entsize: number, minSize: number, fileSize: number, countField: string): void {
  const end = off + BigInt(count - 1) * BigInt(entsize) + BigInt(minSize);
  if (end <= BigInt(fileSize)) return;
  let first = 0n;
  if (off + BigInt(minSize) <= BigInt(fileSize)) first = (BigInt(fileSize) - off - BigInt(minSize)) / BigInt(entsize) + 1n;
  fail(`${what} ${first} (at offset ${hex(off + first * BigInt(entsize))}) extends past the end of the file (${hex(fileSize)} bytes); ${countField} is ${count}`);
}

function readHeader(b: Uint8Array): [ElfHeader, Reader] {
  if (b.length < 16) {
    if (!isElf(b)) fail(`not an ELF file (magic ${hexBytes(b, 0, 4)}, expected 7f 45 4c 46)`);
    fail(`file is too short for an ELF header (${b.length} bytes)`);
  }
  if (!isElf(b)) fail(`not an ELF file (magic ${hexBytes(b, 0, 4)}, expected 7f 45 4c 46)`);
  const cls = b[4]!;
  const data = b[5]!;
  if (cls !== ELFCLASS32 && cls !== ELFCLASS64) fail(`invalid ELF class ${cls} (expected 1 for 32-bit or 2 for 64-bit)`);
  if (data !== ELFDATA2LSB && data !== ELFDATA2MSB) fail(`invalid ELF data encoding ${data} (expected 1 for little-endian or 2 for big-endian)`);
  if (b[6] !== 1) fail(`unsupported ELF identification version ${b[6]}`);
  const is64 = cls === ELFCLASS64;
  const ehsizeMin = is64 ? 64 : 52;
  if (b.length < ehsizeMin) fail(`file is too short for an ELF${is64 ? 64 : 32} header (${b.length} of ${ehsizeMin} bytes)`);
  const r = new Reader(b, data === ELFDATA2LSB);
  const h: ElfHeader = {
    class: is64 ? 64 : 32,
    littleEndian: r.le,
    osabi: b[7]!,
    type: r.u16(16),
    machine: r.u16(18),
    version: r.u32(20),
    entry: is64 ? r.u64(24) : BigInt(r.u32(24)),
    phoff: is64 ? r.u64(32) : BigInt(r.u32(28)),
    shoff: is64 ? r.u64(40) : BigInt(r.u32(32)),
    flags: r.u32(is64 ? 48 : 36),
    ehsize: r.u16(is64 ? 52 : 40),
    phentsize: r.u16(is64 ? 54 : 42),
    phnum: r.u16(is64 ? 56 : 44),
    shentsize: r.u16(is64 ? 58 : 46),
    shnum: r.u16(is64 ? 60 : 48),
    shstrndx: r.u16(is64 ? 62 : 50),
  };
  if (h.version !== 1) fail(`unsupported ELF version ${h.version} in e_version`);
  if (h.ehsize < ehsizeMin) fail(`e_ehsize ${h.ehsize} is smaller than the ELF${h.class} header (${ehsizeMin} bytes)`);
  return [h, r];
}

/** Parse and bounds-check an ELF file. */
export function parseElf(bytes: Uint8Array): ElfFile {
  const [h, r] = readHeader(bytes);
  const is64 = h.class === 64;
  const size = bytes.length;
  const shdrSize = is64 ? 64 : 40;
  const phdrSize = is64 ? 56 : 32;

  // Section 0 carries the extended counts when e_phnum/e_shnum/e_shstrndx overflow.
  const needSection0 = h.phnum === PN_XNUM || (h.shnum === 0 && h.shoff !== 0n) || h.shstrndx === SHN_XINDEX;
  if (h.shoff !== 0n && (h.shnum > 0 || needSection0)) {
    if (h.shentsize < shdrSize) fail(`e_shentsize ${h.shentsize} is smaller than an ELF${h.class} section header (${shdrSize} bytes)`);
    const s0 = inFile(h.shoff, BigInt(shdrSize), size, 'section header 0');
    if (h.shnum === 0) {
      const n = is64 ? r.u64(s0 + 32) : BigInt(r.u32(s0 + 20));
      if (n > BigInt(size / shdrSize)) fail(`section 0 gives a section count of ${n}, more than the file can hold`);
      h.shnum = Number(n);
    }
    if (h.phnum === PN_XNUM) h.phnum = r.u32(s0 + (is64 ? 44 : 28));
    if (h.shstrndx === SHN_XINDEX) h.shstrndx = r.u32(s0 + (is64 ? 40 : 24));
  } else if (needSection0 && h.phnum === PN_XNUM) {
    fail('e_phnum is PN_XNUM but there is no section header 0 to hold the real count');
  }

  // Program headers.
  const programHeaders: ElfProgramHeader[] = [];
  if (h.phnum > 0) {
    if (h.phentsize < phdrSize) fail(`e_phentsize ${h.phentsize} is smaller than an ELF${h.class} program header (${phdrSize} bytes)`);
    if (h.phoff === 0n) fail(`e_phoff is 0 but e_phnum is ${h.phnum}`);
    tableCheck('program header', h.phoff, h.phnum, h.phentsize, phdrSize, size, 'e_phnum');
    for (let i = 0; i < h.phnum; i++) {
      const at = h.phoff + BigInt(i) * BigInt(h.phentsize);
      if (at > BigInt(size) || BigInt(phdrSize) > BigInt(size) - at) {
        fail(`program header ${i} (at offset ${hex(at)}) extends past the end of the file (${hex(size)} bytes)` +
          (i === 0 ? '' : `; e_phnum is ${h.phnum}`));
      }
      const o = Number(at);
      const type = r.u32(o);
      const ph: ElfProgramHeader = is64
        ? {
          index: i, type, flags: r.u32(o + 4), offset: 0, vaddr: r.u64(o + 16), paddr: r.u64(o + 24),
          filesz: 0, memsz: r.u64(o + 40), align: r.u64(o + 48),
        }
        : {
          index: i, type, flags: r.u32(o + 24), offset: 0, vaddr: BigInt(r.u32(o + 8)), paddr: BigInt(r.u32(o + 12)),
          filesz: 0, memsz: BigInt(r.u32(o + 20)), align: BigInt(r.u32(o + 28)),
        };
      const off = is64 ? r.u64(o + 8) : BigInt(r.u32(o + 4));
      const filesz = is64 ? r.u64(o + 32) : BigInt(r.u32(o + 16));
      const what = `program header ${i} (${segmentTypeName(type)})`;
      if (filesz > 0n) {
        ph.offset = inFile(off, filesz, size, `${what} data`);
      } else {
        ph.offset = off <= BigInt(size) ? Number(off) : 0;
      }
      ph.filesz = Number(filesz);
      if (type === PT_LOAD) {
        if (filesz > ph.memsz) fail(`${what}: p_filesz ${hex(filesz)} is larger than p_memsz ${hex(ph.memsz)}`);
        const top = is64 ? 1n << 64n : 1n << 32n;
        if (ph.paddr + ph.memsz > top) fail(`${what}: p_paddr ${hex(ph.paddr)} + p_memsz ${hex(ph.memsz)} wraps around the address space`);
      }
      programHeaders.push(ph);
    }
  }

  // Section headers.
  const sections: ElfSection[] = [];
  if (h.shnum > 0) {
    if (h.shoff === 0n) fail(`e_shoff is 0 but e_shnum is ${h.shnum}`);
    if (h.shentsize < shdrSize) fail(`e_shentsize ${h.shentsize} is smaller than an ELF${h.class} section header (${shdrSize} bytes)`);
    tableCheck('section header', h.shoff, h.shnum, h.shentsize, shdrSize, size, 'e_shnum');
    const nameOffsets: number[] = [];
    for (let i = 0; i < h.shnum; i++) {
      const at = h.shoff + BigInt(i) * BigInt(h.shentsize);
      if (at > BigInt(size) || BigInt(shdrSize) > BigInt(size) - at) {
        fail(`section header ${i} (at offset ${hex(at)}) extends past the end of the file (${hex(size)} bytes); e_shnum is ${h.shnum}`);
      }
      const o = Number(at);
      nameOffsets.push(r.u32(o));
      const type = r.u32(o + 4);
      const s: ElfSection = is64
        ? {
          index: i, name: '', type, flags: r.u64(o + 8), addr: r.u64(o + 16), offset: 0, size: r.u64(o + 32),
          link: r.u32(o + 40), info: r.u32(o + 44), addralign: r.u64(o + 48), entsize: r.u64(o + 56),
        }
        : {
          index: i, name: '', type, flags: BigInt(r.u32(o + 8)), addr: BigInt(r.u32(o + 12)), offset: 0,
          size: BigInt(r.u32(o + 20)), link: r.u32(o + 24), info: r.u32(o + 28), addralign: BigInt(r.u32(o + 32)),
          entsize: BigInt(r.u32(o + 36)),
        };
      const off = is64 ? r.u64(o + 24) : BigInt(r.u32(o + 16));
      if (type !== SHT_NOBITS && type !== SHT_NULL && s.size > 0n) {
        s.offset = inFile(off, s.size, size, `section ${i}`);
      } else {
        s.offset = off <= BigInt(size) ? Number(off) : 0;
      }
      sections.push(s);
    }
    // Names.
    if (h.shstrndx !== SHN_UNDEF) {
      if (h.shstrndx >= h.shnum) fail(`e_shstrndx ${h.shstrndx} is out of range (${h.shnum} sections)`);
      const strtab = sections[h.shstrndx]!;
      if (strtab.type === SHT_NOBITS) fail(`the section name table (section ${h.shstrndx}) has no data in the file`);
      const base = strtab.offset;
      const len = Number(strtab.size);
      for (const s of sections) {
        const no = nameOffsets[s.index]!;
        if (no >= len) {
          if (s.index === 0 && no === 0) continue;
          fail(`section ${s.index}: name offset ${hex(no)} is outside the section name table (${hex(len)} bytes)`);
        }
        let e = base + no;
        while (e < base + len && bytes[e] !== 0) e++;
        s.name = latin1(bytes.subarray(base + no, e));
      }
    }
  }
  return { bytes, header: h, programHeaders, sections };
}

export function latin1(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i < b.length; i += 4096) s += String.fromCharCode(...b.subarray(i, Math.min(b.length, i + 4096)));
  return s;
}

/** A section's bytes (empty for SHT_NOBITS). */
export function sectionData(elf: ElfFile, s: ElfSection): Uint8Array {
  if (s.type === SHT_NOBITS || s.type === SHT_NULL) return new Uint8Array(0);
  return elf.bytes.subarray(s.offset, s.offset + Number(s.size));
}

/** A segment's file bytes (p_filesz of them). */
export function segmentData(elf: ElfFile, ph: ElfProgramHeader): Uint8Array {
  return elf.bytes.subarray(ph.offset, ph.offset + ph.filesz);
}

export function sectionByName(elf: ElfFile, name: string): ElfSection | undefined {
  return elf.sections.find((s) => s.name === name);
}

/** Xen's limit on the notes it will walk in one image. */
export const MAX_TOTAL_NOTES = 65536;

/**
 * Parse the notes in `bytes[start..end)` (a PT_NOTE segment or SHT_NOTE section). `align` is 4,
 * or 8 for 64-bit notes in an 8-byte-aligned container. A trailing run of fewer than 12 zero
 * bytes (alignment padding) is ignored; anything else malformed is an error.
 */
export function parseNotes(elf: ElfFile, start: number, end: number, align: 4 | 8, container: string, budget = { left: MAX_TOTAL_NOTES }): ElfNote[] {
  const b = elf.bytes;
  const r = new Reader(b, elf.header.littleEndian);
  const notes: ElfNote[] = [];
  const round = (n: number) => (n + align - 1) & ~(align - 1);
  let p = start;
  let n = 0;
  while (p < end) {
    if (end - p < 12) {
      for (let i = p; i < end; i++) if (b[i] !== 0) fail(`${container}: note ${n} at offset ${hex(p)} is truncated (${end - p} bytes left, a note header is 12)`);
      break;
    }
    if (--budget.left < 0) fail(`too many ELF notes (more than ${MAX_TOTAL_NOTES})`);
    const namesz = r.u32(p);
    const descsz = r.u32(p + 4);
    const type = r.u32(p + 8);
    const nameAt = p + 12;
    if (namesz > end - nameAt) fail(`${container}: note ${n} at offset ${hex(p)}: name (${namesz} bytes) extends past the end of the ${container.startsWith('PT_NOTE') ? 'segment' : 'section'}`);
    const descAt = p + round(12 + namesz);
    if (descAt > end || descsz > end - descAt) {
      fail(`${container}: note ${n} at offset ${hex(p)} (type ${type}): descriptor (${descsz} bytes) extends past the end of the ${container.startsWith('PT_NOTE') ? 'segment' : 'section'}`);
    }
    let ne = nameAt + namesz;
    while (ne > nameAt && b[ne - 1] === 0) ne--;
    const next = descAt + round(descsz);
    notes.push({
      name: latin1(b.subarray(nameAt, ne)),
      type,
      desc: b.subarray(descAt, descAt + descsz),
      descPadded: b.subarray(descAt, Math.min(end, next)),
      offset: p,
      container,
    });
    n++;
    p = next;
  }
  return notes;
}

/** Note alignment of a container as Xen's libelf computes it: 8 only for ELF64 with 8-byte alignment. */
export function noteAlign(elf: ElfFile, containerAlign: bigint): 4 | 8 {
  return elf.header.class === 64 && containerAlign === 8n ? 8 : 4;
}
