// Shared helpers for the kernel-image tests: fixtures, a synthetic ELF writer, and the
// "throws a KernelImageError or succeeds" check used by the corruption properties.

import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';
import { KernelImageError } from '../../src/guests/image-error.js';

export const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '../../fixtures/images');

export function fixture(name: string): Uint8Array {
  return new Uint8Array(readFileSync(join(FIXTURES, name)));
}

/** Run `f`; it must return normally or throw a KernelImageError with a message. */
export function safely<T>(f: () => T): T | KernelImageError {
  try {
    return f();
  } catch (e) {
    if (!(e instanceof KernelImageError)) {
      throw new Error(`expected a KernelImageError, got ${(e as Error)?.name}: ${(e as Error)?.message}\n${(e as Error)?.stack}`);
    }
    expect(e.message.length).toBeGreaterThan(10);
    return e;
  }
}

export function expectImageError(f: () => unknown, pattern: RegExp): KernelImageError {
  let err: unknown;
  try {
    f();
  } catch (e) {
    err = e;
  }
  expect(err, `expected an error matching ${pattern}`).toBeInstanceOf(KernelImageError);
  expect((err as Error).message).toMatch(pattern);
  return err as KernelImageError;
}

export interface SynthSegment {
  type?: number;
  flags?: number;
  vaddr: bigint;
  paddr: bigint;
  data: Uint8Array;
  memsz?: bigint;
  align?: bigint;
}

export interface SynthNote {
  name?: string;
  type: number;
  desc: Uint8Array;
}

export function str(s: string, nul = true): Uint8Array {
  return new TextEncoder().encode(nul ? s + '\0' : s);
}

export function u32(v: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, v, true);
  return b;
}

export function u64(v: bigint): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, v, true);
  return b;
}

export function encodeNotes(notes: SynthNote[]): Uint8Array {
  const parts: number[] = [];
  const pad = () => { while (parts.length % 4) parts.push(0); };
  for (const n of notes) {
    const name = str(n.name ?? 'Xen');
    parts.push(...u32(name.length), ...u32(n.desc.length), ...u32(n.type));
    parts.push(...name);
    pad();
    parts.push(...n.desc);
    pad();
  }
  return new Uint8Array(parts);
}

/**
 * A little-endian ELF64 x86_64 executable: the given segments (data placed one after the
 * other), then an optional PT_NOTE segment holding `notes`, and a section table with
 * .shstrtab (and .note.Xen when `noteSection`).
 */
export function buildElf64(opts: {
  entry?: bigint;
  machine?: number;
  segments: SynthSegment[];
  notes?: SynthNote[];
  noteSegment?: boolean;
  noteSection?: boolean;
  extraSections?: Array<{ name: string; type: number; data: Uint8Array }>;
}): Uint8Array {
  const notes = opts.notes ? encodeNotes(opts.notes) : undefined;
  const segs = [...opts.segments];
  const phCount = segs.length + (notes && opts.noteSegment !== false ? 1 : 0);
  let off = 64 + 56 * phCount;
  const blobs: Array<[number, Uint8Array]> = [];
  const segOffsets: number[] = [];
  for (const s of segs) {
    off = (off + 15) & ~15;
    segOffsets.push(off);
    blobs.push([off, s.data]);
    off += s.data.length;
  }
  let noteOff = 0;
  if (notes) {
    off = (off + 3) & ~3;
    noteOff = off;
    blobs.push([off, notes]);
    off += notes.length;
  }
  const secs: Array<{ name: string; type: number; off: number; size: number; align: number }> = [];
  if (notes && opts.noteSection) secs.push({ name: '.note.Xen', type: 7, off: noteOff, size: notes.length, align: 4 });
  for (const x of opts.extraSections ?? []) {
    blobs.push([off, x.data]);
    secs.push({ name: x.name, type: x.type, off, size: x.data.length, align: 1 });
    off += x.data.length;
  }
  const names = ['', ...secs.map((s) => s.name), '.shstrtab'];
  const nameOffs: number[] = [];
  let strtab: number[] = [];
  for (const n of names) {
    nameOffs.push(strtab.length);
    strtab = [...strtab, ...str(n)];
  }
  const shstrOff = off;
  blobs.push([off, new Uint8Array(strtab)]);
  off += strtab.length;
  off = (off + 7) & ~7;
  const shoff = off;
  const shnum = secs.length + 2;
  off += 64 * shnum;
  const b = new Uint8Array(off);
  const dv = new DataView(b.buffer);
  b.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0]);
  dv.setUint16(16, 2, true);
  dv.setUint16(18, opts.machine ?? 62, true);
  dv.setUint32(20, 1, true);
  dv.setBigUint64(24, opts.entry ?? 0n, true);
  dv.setBigUint64(32, 64n, true);
  dv.setBigUint64(40, BigInt(shoff), true);
  dv.setUint16(52, 64, true);
  dv.setUint16(54, 56, true);
  dv.setUint16(56, phCount, true);
  dv.setUint16(58, 64, true);
  dv.setUint16(60, shnum, true);
  dv.setUint16(62, shnum - 1, true);
  segs.forEach((s, i) => {
    const o = 64 + 56 * i;
    dv.setUint32(o, s.type ?? 1, true);
    dv.setUint32(o + 4, s.flags ?? 7, true);
    dv.setBigUint64(o + 8, BigInt(segOffsets[i]!), true);
    dv.setBigUint64(o + 16, s.vaddr, true);
    dv.setBigUint64(o + 24, s.paddr, true);
    dv.setBigUint64(o + 32, BigInt(s.data.length), true);
    dv.setBigUint64(o + 40, s.memsz ?? BigInt(s.data.length), true);
    dv.setBigUint64(o + 48, s.align ?? 0x1000n, true);
  });
  if (notes && opts.noteSegment !== false) {
    const o = 64 + 56 * segs.length;
    dv.setUint32(o, 4, true);
    dv.setUint32(o + 4, 4, true);
    dv.setBigUint64(o + 8, BigInt(noteOff), true);
    dv.setBigUint64(o + 32, BigInt(notes.length), true);
    dv.setBigUint64(o + 40, BigInt(notes.length), true);
    dv.setBigUint64(o + 48, 4n, true);
  }
  for (const [o, d] of blobs) b.set(d, o);
  const sh = (i: number, name: number, type: number, o: number, size: number, align: number) => {
    const p = shoff + 64 * i;
    dv.setUint32(p, name, true);
    dv.setUint32(p + 4, type, true);
    dv.setBigUint64(p + 24, BigInt(o), true);
    dv.setBigUint64(p + 32, BigInt(size), true);
    dv.setBigUint64(p + 48, BigInt(align), true);
  };
  secs.forEach((s, i) => sh(i + 1, nameOffs[i + 1]!, s.type, s.off, s.size, s.align));
  sh(shnum - 1, nameOffs[shnum - 1]!, 3, shstrOff, strtab.length, 1);
  return b;
}

export const KERNBASE = 0xffffffff80000000n;

/** A minimal valid 64-bit PV kernel described by notes (Linux style: PADDR_OFFSET 0). */
export function minimalPvKernel(extraNotes: SynthNote[] = [], overrides: Partial<Record<string, SynthNote | null>> = {}): Uint8Array {
  const base: Record<string, SynthNote> = {
    os: { type: 6, desc: str('linux') },
    ver: { type: 5, desc: str('xen-3.0') },
    vb: { type: 3, desc: u64(KERNBASE) },
    po: { type: 4, desc: u64(0n) },
    entry: { type: 1, desc: u64(KERNBASE + 0x1000000n) },
    loader: { type: 8, desc: str('generic') },
  };
  const notes: SynthNote[] = [];
  for (const [k, v] of Object.entries(base)) {
    const o = overrides[k];
    if (o === null) continue;
    notes.push(o ?? v);
  }
  notes.push(...extraNotes);
  return buildElf64({
    entry: 0x1000000n,
    segments: [
      { vaddr: KERNBASE + 0x1000000n, paddr: 0x1000000n, data: new Uint8Array(0x100).fill(0x90), memsz: 0x3000n, flags: 5 },
    ],
    notes,
  });
}
