// Decompression of kernel images and bzImage payloads: detection by magic, and the stream
// loop that handles concatenated streams and trailing data the way gzip(1)/xz(1) and the
// Linux/Xen loaders do. The formats are the ones a Linux bzImage may embed
// (CONFIG_KERNEL_{GZIP,BZIP2,LZMA,XZ,LZO,LZ4,ZSTD}) plus the gzip NetBSD ships its kernels in.
//
// Everything is implemented here in TypeScript except inflate, which is node:zlib.

import { KernelImageError, hex, hexBytes } from './image-error.js';
import { decodeGzipMember, isGzipStart } from './gzip.js';
import { decodeBzip2Stream, isBzip2Start } from './decompress/bzip2.js';
import { decodeLz4Frame, isLz4Start } from './decompress/lz4.js';
import { decodeLzmaAlone, isLzmaAloneStart } from './decompress/lzma.js';
import { decodeLzop, isLzopStart } from './decompress/lzo.js';
import { DEFAULT_MAX_OUTPUT, initialCapacity, OutBuf, type DecompressOptions } from './decompress/util.js';
import { decodeXzStream, isXzStart } from './decompress/xz.js';
import { decodeZstdFrame, isZstdStart } from './decompress/zstd.js';

export type { DecompressOptions } from './decompress/util.js';
export { DEFAULT_MAX_OUTPUT } from './decompress/util.js';

export type Compression = 'gzip' | 'bzip2' | 'xz' | 'lzma' | 'lzo' | 'lz4' | 'zstd';

export const COMPRESSIONS: readonly Compression[] = ['gzip', 'bzip2', 'xz', 'lzma', 'lzo', 'lz4', 'zstd'];

export interface Decompressed {
  data: Uint8Array;
  format: Compression;
  /** Number of concatenated streams/members/frames decoded. */
  streams: number;
  /** Input bytes used by the streams (and padding between them). */
  consumed: number;
  /** Bytes after the last stream that were ignored (e.g. a bzImage's appended size word). */
  trailing: number;
}

/** The compression whose magic starts `d` at `at`, if any. Checked most specific first. */
export function detectCompression(d: Uint8Array, at = 0): Compression | undefined {
  if (isGzipStart(d, at)) return 'gzip';
  if (isXzStart(d, at)) return 'xz';
  if (isBzip2Start(d, at)) return 'bzip2';
  if (isZstdStart(d, at)) return 'zstd';
  if (isLz4Start(d, at)) return 'lz4';
  if (isLzopStart(d, at)) return 'lzo';
  if (isLzmaAloneStart(d, at)) return 'lzma';
  return undefined;
}

type StreamDecoder = (d: Uint8Array, pos: number, out: OutBuf, n: number) => number;

const DECODERS: Record<Compression, { decode: StreamDecoder; next: (d: Uint8Array, pos: number) => number | undefined; ratio: number }> = {
  gzip: { decode: decodeGzipMember, next: (d, p) => (isGzipStart(d, p) ? p : undefined), ratio: 4 },
  bzip2: { decode: decodeBzip2Stream, next: (d, p) => (isBzip2Start(d, p) ? p : undefined), ratio: 5 },
  xz: {
    decode: decodeXzStream,
    // Stream padding: a multiple of four zero bytes, then possibly another stream.
    next: (d, p) => {
      let q = p;
      while (q < d.length && d[q] === 0) q++;
      return (q - p) % 4 === 0 && isXzStart(d, q) ? q : undefined;
    },
    ratio: 8,
  },
  lzma: { decode: (d, p, o) => decodeLzmaAlone(d, p, o), next: () => undefined, ratio: 8 },
  lzo: { decode: (d, p, o) => decodeLzop(d, p, o), next: (d, p) => (isLzopStart(d, p) ? p : undefined), ratio: 3 },
  lz4: { decode: decodeLz4Frame, next: (d, p) => (isLz4Start(d, p) ? p : undefined), ratio: 4 },
  zstd: { decode: decodeZstdFrame, next: (d, p) => (isZstdStart(d, p) ? p : undefined), ratio: 6 },
};

/**
 * Decompress `input` (detecting the format unless `format` is given). Concatenated streams of
 * the same format are joined; anything after the last one is ignored and counted in
 * `trailing`. Truncated or corrupt data throws a KernelImageError saying where.
 */
export function decompress(input: Uint8Array, opts: DecompressOptions & { format?: Compression } = {}): Decompressed {
  const format = opts.format ?? detectCompression(input);
  if (!format) {
    throw new KernelImageError('image', `unknown compression format (first bytes: ${hexBytes(input)})`);
  }
  const dec = DECODERS[format];
  const max = opts.maxOutput ?? DEFAULT_MAX_OUTPUT;
  const out = new OutBuf(format, max, initialCapacity(input.length, opts, dec.ratio));
  let pos = 0;
  let streams = 0;
  for (;;) {
    pos = dec.decode(input, pos, out, streams + 1);
    streams++;
    if (pos > input.length) throw new KernelImageError(format, `internal error: stream end ${hex(pos)} past input end`);
    const next = dec.next(input, pos);
    if (next === undefined) break;
    pos = next;
  }
  return { data: out.result(), format, streams, consumed: pos, trailing: input.length - pos };
}
