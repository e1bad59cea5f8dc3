// lzop files (what Linux's CONFIG_KERNEL_LZO payload is: `lzop -9`) with LZO1X blocks. The
// LZO1X bitstream is decoded as described in the Linux kernel's Documentation/staging/lzo.rst;
// block and header checksums (Adler-32 or CRC-32) are verified.

import { KernelImageError, hex } from '../image-error.js';
import { adler32, crc32, need, OutBuf, u32be } from './util.js';

const MAGIC = [0x89, 0x4c, 0x5a, 0x4f, 0x00, 0x0d, 0x0a, 0x1a, 0x0a];
const F_ADLER32_D = 0x1;
const F_ADLER32_C = 0x2;
const F_H_EXTRA_FIELD = 0x40;
const F_CRC32_D = 0x100;
const F_CRC32_C = 0x200;
const F_MULTIPART = 0x400;
const F_H_FILTER = 0x800;
const F_H_CRC32 = 0x1000;
/** lzop never writes blocks larger than this; Linux's unlzo accepts up to 8 MiB. */
const MAX_BLOCK = 8 << 20;

export function isLzopStart(d: Uint8Array, pos: number): boolean {
  if (pos + MAGIC.length > d.length) return false;
  for (let i = 0; i < MAGIC.length; i++) if (d[pos + i] !== MAGIC[i]) return false;
  return true;
}

function fail(msg: string): never {
  throw new KernelImageError('lzo', msg);
}

/**
 * Decompress one LZO1X block d[start..end) into `out`, producing exactly `dstLen` bytes.
 * Matches may not reach before the start of this block.
 */
export function lzo1xDecompress(d: Uint8Array, start: number, end: number, out: OutBuf, dstLen: number, where: string): void {
  out.ensure(dstLen);
  const buf = out.buf;
  const ob = out.pos;
  const oend = ob + dstLen;
  let op = ob;
  let ip = start;
  const bad = (what: string): never => fail(`${where}: corrupt LZO1X data: ${what} (input offset ${hex(ip)})`);
  const inByte = (): number => {
    if (ip >= end) bad('input ends before the end-of-stream marker');
    return d[ip++]!;
  };
  const literals = (n: number): void => {
    if (n > end - ip) bad(`${n} literals run past the end of the input`);
    if (n > oend - op) bad(`${n} literals overflow the block's ${dstLen} bytes`);
    buf.set(d.subarray(ip, ip + n), op);
    ip += n;
    op += n;
  };
  const extLen = (base: number): number => {
    // base + 255 per zero byte + the final non-zero byte.
    let n = base;
    for (;;) {
      const b = inByte();
      if (b !== 0) return n + b;
      n += 255;
      if (n > dstLen + 255) bad('length runs past the block size');
    }
  };
  const copy = (dist: number, len: number): void => {
    if (dist > op - ob) bad(`match distance ${dist} reaches before the start of the block`);
    if (len > oend - op) bad(`a match of ${len} bytes overflows the block's ${dstLen} bytes`);
    let src = op - dist;
    const stop = op + len;
    if (dist >= len) {
      buf.copyWithin(op, src, src + len);
      op = stop;
    } else {
      while (op < stop) buf[op++] = buf[src++]!;
    }
  };

  // state: how many literals the previous instruction copied (0..3, or 4 for "4 or more").
  let state = 0;
  if (ip < end && d[ip]! > 17) {
    const t = d[ip++]! - 17;
    literals(t);
    state = t < 4 ? t : 4;
  }
  for (;;) {
    const t = inByte();
    let s: number;
    if (t < 16) {
      if (state === 0) {
        const len = t === 0 ? extLen(15) + 3 : t + 3;
        literals(len);
        state = 4;
        continue;
      }
      const h = inByte();
      if (state === 4) copy((h << 2) + (t >>> 2) + 2049, 3);
      else copy((h << 2) + (t >>> 2) + 1, 2);
      s = t & 3;
    } else if (t < 32) {
      const len = (t & 7) === 0 ? extLen(7) + 2 : (t & 7) + 2;
      const lo = inByte();
      const hi = inByte();
      const le16 = lo | (hi << 8);
      const dist = 16384 + ((t & 8) << 11) + (le16 >>> 2);
      if (dist === 16384) break; // end of stream (encoders write 11 00 00)
      copy(dist, len);
      s = le16 & 3;
    } else if (t < 64) {
      const len = (t & 31) === 0 ? extLen(31) + 2 : (t & 31) + 2;
      const lo = inByte();
      const hi = inByte();
      const le16 = lo | (hi << 8);
      copy((le16 >>> 2) + 1, len);
      s = le16 & 3;
    } else {
      const h = inByte();
      const dist = (h << 3) + ((t >>> 2) & 7) + 1;
      const len = t < 128 ? 3 + ((t >>> 5) & 1) : 5 + ((t >>> 5) & 3);
      copy(dist, len);
      s = t & 3;
    }
    if (s) literals(s);
    state = s;
  }
  if (ip !== end) bad(`${end - ip} bytes left after the end-of-stream marker`);
  if (op !== oend) bad(`decoded ${op - ob} bytes but the block header says ${dstLen}`);
  out.pos = op;
}

/** Decode an lzop file at `pos`; returns the offset just past its end-of-data marker. */
export function decodeLzop(d: Uint8Array, pos: number, out: OutBuf): number {
  need('lzo', d, pos, 9 + 16, 'the lzop header');
  if (!isLzopStart(d, pos)) fail(`bad lzop magic at input offset ${hex(pos)}`);
  const hstart = pos + 9;
  let p = hstart;
  const be16 = (o: number) => (d[o]! << 8) | d[o + 1]!;
  const version = be16(p);
  p += 4; // version, library version
  if (version >= 0x0940) {
    const needed = be16(p);
    p += 2;
    if (needed > 0x1040) fail(`needs lzop version ${hex(needed)} to extract`);
  }
  need('lzo', d, p, 1, 'the lzop header');
  const method = d[p++]!;
  if (method < 1 || method > 3) fail(`compression method ${method} is not LZO1X`);
  if (version >= 0x0940) p++; // level
  need('lzo', d, p, 4, 'the lzop header flags');
  const flags = u32be(d, p);
  p += 4;
  if (flags & F_MULTIPART) fail('multi-part lzop files are not supported');
  if (flags & F_H_FILTER) p += 4;
  p += 8; // mode, mtime low
  if (version >= 0x0940) p += 4; // mtime high
  need('lzo', d, p, 1, 'the lzop file name length');
  const nameLen = d[p++]!;
  p += nameLen;
  need('lzo', d, p, 4, 'the lzop header checksum');
  const hsum = flags & F_H_CRC32 ? crc32(d, hstart, p) : adler32(d, hstart, p);
  if (hsum !== u32be(d, p)) fail(`header checksum ${hex(u32be(d, p))} does not match ${hex(hsum)}`);
  p += 4;
  if (flags & F_H_EXTRA_FIELD) {
    need('lzo', d, p, 4, 'the lzop extra field length');
    const len = u32be(d, p);
    need('lzo', d, p + 4, len + 4, 'the lzop extra field');
    p += 8 + len;
  }
  let blockNo = 0;
  for (;;) {
    need('lzo', d, p, 4, 'a block header');
    const dstLen = u32be(d, p);
    p += 4;
    if (dstLen === 0) return p;
    blockNo++;
    const where = `block ${blockNo}`;
    need('lzo', d, p, 4, `the header of ${where}`);
    const srcLen = u32be(d, p);
    p += 4;
    if (dstLen > MAX_BLOCK) fail(`${where} claims ${dstLen} bytes, more than the ${MAX_BLOCK}-byte block limit`);
    if (srcLen > dstLen) fail(`${where}: compressed size ${srcLen} is larger than its uncompressed size ${dstLen}`);
    let dsum: number | undefined;
    let csum: number | undefined;
    const sums = (flags & (F_ADLER32_D | F_CRC32_D)) !== 0 ? 1 : 0;
    need('lzo', d, p, 4 * sums, `the checksums of ${where}`);
    if (sums) { dsum = u32be(d, p); p += 4; }
    const csums = srcLen < dstLen && (flags & (F_ADLER32_C | F_CRC32_C)) !== 0 ? 1 : 0;
    need('lzo', d, p, 4 * csums, `the checksums of ${where}`);
    if (csums) { csum = u32be(d, p); p += 4; }
    need('lzo', d, p, srcLen, `the data of ${where}`);
    if (csum !== undefined) {
      const got = flags & F_ADLER32_C ? adler32(d, p, p + srcLen) : crc32(d, p, p + srcLen);
      if (got !== csum) fail(`${where}: compressed-data checksum mismatch`);
    }
    const ustart = out.pos;
    if (srcLen === dstLen) out.append(d.subarray(p, p + srcLen));
    else lzo1xDecompress(d, p, p + srcLen, out, dstLen, where);
    if (dsum !== undefined) {
      const got = flags & F_ADLER32_D ? adler32(out.buf, ustart, out.pos) : crc32(out.buf, ustart, out.pos);
      if (got !== dsum) fail(`${where}: checksum of the data is ${hex(got)} but the block says ${hex(dsum)}`);
    }
    p += srcLen;
  }
}
