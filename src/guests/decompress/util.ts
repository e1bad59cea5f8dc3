// Helpers shared by the decompressors: a growable output buffer with a hard size cap, and
// the checksums the formats use (CRC-32, CRC-32/BZIP2, CRC-64/XZ, Adler-32, XXH32).

import { KernelImageError, hex, type ImageErrorSource } from '../image-error.js';

/** Default cap on a decompressed image: the Debian kernel is 63 MiB; Xen caps at 1 GiB. */
export const DEFAULT_MAX_OUTPUT = 1024 * 1024 * 1024;

export interface DecompressOptions {
  /** Refuse to produce more than this many bytes (default 1 GiB). */
  maxOutput?: number;
  /**
   * Expected output size (e.g. the size word a Linux bzImage appends to its payload). Only
   * used to size the first allocation, never trusted beyond a multiple of the input size.
   */
  sizeHint?: number;
}

/**
 * The output of a decompressor. Decoders write directly into `buf` (after `ensure`), and
 * LZ-style decoders copy matches out of it: the whole output is the history window.
 */
export class OutBuf {
  buf: Uint8Array;
  pos = 0;

  constructor(
    readonly source: ImageErrorSource,
    readonly max: number,
    initial: number,
  ) {
    this.buf = new Uint8Array(Math.max(0, Math.min(initial, max)));
  }

  /** Make room for `n` more bytes. */
  ensure(n: number): void {
    const need = this.pos + n;
    if (need <= this.buf.length) return;
    if (need > this.max) {
      throw new KernelImageError(
        this.source,
        `decompressed data exceeds the limit of ${this.max} bytes (${hex(this.max)})`,
      );
    }
    let len = Math.max(this.buf.length * 2, 65536);
    while (len < need) len *= 2;
    const nb = new Uint8Array(Math.min(len, this.max));
    nb.set(this.buf.subarray(0, this.pos));
    this.buf = nb;
  }

  push(b: number): void {
    if (this.pos >= this.buf.length) this.ensure(1);
    this.buf[this.pos++] = b;
  }

  append(src: Uint8Array): void {
    this.ensure(src.length);
    this.buf.set(src, this.pos);
    this.pos += src.length;
  }

  /** The bytes written, trimmed (copied if the buffer is much larger than the data). */
  result(): Uint8Array {
    if (this.buf.length - this.pos > 1 << 20) return this.buf.slice(0, this.pos);
    return this.buf.subarray(0, this.pos);
  }
}

/** A sensible first allocation from a size hint and the input length (never a hostile size). */
export function initialCapacity(inputLength: number, opts: DecompressOptions, typicalRatio = 4): number {
  const max = opts.maxOutput ?? DEFAULT_MAX_OUTPUT;
  const plausible = inputLength * 32 + (1 << 20);
  if (opts.sizeHint !== undefined && opts.sizeHint > 0 && opts.sizeHint <= plausible) {
    return Math.min(max, opts.sizeHint);
  }
  return Math.min(max, inputLength * typicalRatio + 4096);
}

// ---- checksums ----

const CRC32_TABLE = (() => {
  const t = new Int32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c;
  }
  return t;
})();

/** CRC-32 (ISO-HDLC, as gzip, xz, lzop use), continuing from `crc` (0 to start). */
export function crc32(data: Uint8Array, start = 0, end = data.length, crc = 0): number {
  let c = ~crc;
  for (let i = start; i < end; i++) c = CRC32_TABLE[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

const CRC32_BE_TABLE = (() => {
  const t = new Int32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n << 24;
    for (let k = 0; k < 8; k++) c = c & 0x80000000 ? (c << 1) ^ 0x04c11db7 : c << 1;
    t[n] = c;
  }
  return t;
})();

/** CRC-32/BZIP2 (MSB-first), continuing from `crc` (0xffffffff to start; final xor by caller). */
export function crc32be(data: Uint8Array, start: number, end: number, crc: number): number {
  let c = crc | 0;
  for (let i = start; i < end; i++) c = (c << 8) ^ CRC32_BE_TABLE[((c >>> 24) ^ data[i]!) & 0xff]!;
  return c >>> 0;
}

// CRC-64/XZ (ECMA-182 reflected) with the table split in 32-bit halves.
const CRC64_LO = new Int32Array(256);
const CRC64_HI = new Int32Array(256);
(() => {
  const polyLo = 0xd7870f42 | 0;
  const polyHi = 0xc96c5795 | 0;
  for (let n = 0; n < 256; n++) {
    let lo = n;
    let hi = 0;
    for (let k = 0; k < 8; k++) {
      const bit = lo & 1;
      lo = (lo >>> 1) | (hi << 31);
      hi = hi >>> 1;
      if (bit) {
        lo ^= polyLo;
        hi ^= polyHi;
      }
    }
    CRC64_LO[n] = lo;
    CRC64_HI[n] = hi;
  }
})();

/** CRC-64/XZ of data[start..end) as a bigint. */
export function crc64(data: Uint8Array, start = 0, end = data.length): bigint {
  let lo = ~0;
  let hi = ~0;
  for (let i = start; i < end; i++) {
    const idx = (lo ^ data[i]!) & 0xff;
    lo = ((lo >>> 8) | (hi << 24)) ^ CRC64_LO[idx]!;
    hi = (hi >>> 8) ^ CRC64_HI[idx]!;
  }
  return (BigInt(~hi >>> 0) << 32n) | BigInt(~lo >>> 0);
}

/** Adler-32, continuing from `adler` (1 to start). */
export function adler32(data: Uint8Array, start = 0, end = data.length, adler = 1): number {
  let a = adler & 0xffff;
  let b = adler >>> 16;
  let i = start;
  while (i < end) {
    const stop = Math.min(end, i + 3800);
    for (; i < stop; i++) {
      a += data[i]!;
      b += a;
    }
    a %= 65521;
    b %= 65521;
  }
  return ((b << 16) | a) >>> 0;
}

const P32_1 = 0x9e3779b1;
const P32_2 = 0x85ebca77;
const P32_3 = 0xc2b2ae3d;
const P32_4 = 0x27d4eb2f;
const P32_5 = 0x165667b1;

function rotl32(x: number, r: number): number {
  return (x << r) | (x >>> (32 - r));
}

function rd32(d: Uint8Array, i: number): number {
  return d[i]! | (d[i + 1]! << 8) | (d[i + 2]! << 16) | (d[i + 3]! << 24);
}

/** XXH32 of data[start..end) with seed 0 (LZ4 frame checksums). */
export function xxh32(data: Uint8Array, start = 0, end = data.length, seed = 0): number {
  let i = start;
  const len = end - start;
  let h: number;
  if (len >= 16) {
    let v1 = (seed + P32_1 + P32_2) | 0;
    let v2 = (seed + P32_2) | 0;
    let v3 = seed | 0;
    let v4 = (seed - P32_1) | 0;
    const limit = end - 16;
    while (i <= limit) {
      v1 = Math.imul(rotl32((v1 + Math.imul(rd32(data, i), P32_2)) | 0, 13), P32_1);
      v2 = Math.imul(rotl32((v2 + Math.imul(rd32(data, i + 4), P32_2)) | 0, 13), P32_1);
      v3 = Math.imul(rotl32((v3 + Math.imul(rd32(data, i + 8), P32_2)) | 0, 13), P32_1);
      v4 = Math.imul(rotl32((v4 + Math.imul(rd32(data, i + 12), P32_2)) | 0, 13), P32_1);
      i += 16;
    }
    h = (rotl32(v1, 1) + rotl32(v2, 7) + rotl32(v3, 12) + rotl32(v4, 18)) | 0;
  } else {
    h = (seed + P32_5) | 0;
  }
  h = (h + len) | 0;
  while (i + 4 <= end) {
    h = Math.imul(rotl32((h + Math.imul(rd32(data, i), P32_3)) | 0, 17), P32_4);
    i += 4;
  }
  while (i < end) {
    h = Math.imul(rotl32((h + Math.imul(data[i]!, P32_5)) | 0, 11), P32_1);
    i++;
  }
  h ^= h >>> 15;
  h = Math.imul(h, P32_2);
  h ^= h >>> 13;
  h = Math.imul(h, P32_3);
  h ^= h >>> 16;
  return h >>> 0;
}

export function u16le(d: Uint8Array, i: number): number {
  return d[i]! | (d[i + 1]! << 8);
}
export function u32le(d: Uint8Array, i: number): number {
  return (d[i]! | (d[i + 1]! << 8) | (d[i + 2]! << 16) | (d[i + 3]! << 24)) >>> 0;
}
export function u32be(d: Uint8Array, i: number): number {
  return ((d[i]! << 24) | (d[i + 1]! << 16) | (d[i + 2]! << 8) | d[i + 3]!) >>> 0;
}
export function u64le(d: Uint8Array, i: number): bigint {
  return (BigInt(u32le(d, i + 4)) << 32n) | BigInt(u32le(d, i));
}

/** Throw a "truncated" error unless `n` bytes are available at `pos`. */
export function need(source: ImageErrorSource, d: Uint8Array, pos: number, n: number, what: string): void {
  if (pos + n > d.length) {
    throw new KernelImageError(
      source,
      `stream is truncated: ${what} at input offset ${hex(pos)} needs ${n} bytes but only ${Math.max(0, d.length - pos)} remain`,
    );
  }
}
