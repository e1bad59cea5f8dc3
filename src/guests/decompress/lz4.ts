// LZ4: the legacy frame (`lz4 -l`, what Linux's CONFIG_KERNEL_LZ4 uses, magic 02 21 4c 18)
// and the standard frame format (magic 04 22 4d 18, with skippable frames), both decoded
// with one block decoder. Frame checksums (XXH32) are verified when present.

import { KernelImageError, hex } from '../image-error.js';
import { need, OutBuf, u32le, xxh32 } from './util.js';

const LEGACY_MAGIC = 0x184c2102;
const FRAME_MAGIC = 0x184d2204;
const LEGACY_BLOCK = 8 << 20;
const LEGACY_BOUND = LEGACY_BLOCK + ((LEGACY_BLOCK / 255) | 0) + 16;

function fail(msg: string): never {
  throw new KernelImageError('lz4', msg);
}

function isSkippable(m: number): boolean {
  return (m & 0xfffffff0) >>> 0 === 0x184d2a50;
}

export function isLz4Start(d: Uint8Array, pos: number): boolean {
  if (pos + 4 > d.length) return false;
  const m = u32le(d, pos);
  return m === LEGACY_MAGIC || m === FRAME_MAGIC || isSkippable(m);
}

/**
 * Decode one LZ4 block d[pos..end) into `out`, which must not grow past `maxOut` (absolute).
 * Matches may reach back to `historyStart` (absolute output offset).
 */
export function decodeLz4Block(d: Uint8Array, pos: number, end: number, out: OutBuf, maxOut: number, historyStart: number, where: string): void {
  out.ensure(maxOut - out.pos);
  const buf = out.buf;
  let op = out.pos;
  let ip = pos;
  const bad = (what: string): never => fail(`${where}: corrupt block: ${what} (input offset ${hex(ip)})`);
  for (;;) {
    if (ip >= end) bad('block ends without a final literal run');
    const token = d[ip++]!;
    let lit = token >>> 4;
    if (lit === 15) {
      let b: number;
      do {
        if (ip >= end) bad('literal length runs past the end of the block');
        b = d[ip++]!;
        lit += b;
      } while (b === 255);
    }
    if (lit > end - ip) bad(`${lit} literals run past the end of the block`);
    if (lit > maxOut - op) bad(`${lit} literals overflow the block size`);
    buf.set(d.subarray(ip, ip + lit), op);
    ip += lit;
    op += lit;
    if (ip === end) break;
    if (ip + 2 > end) bad('match offset runs past the end of the block');
    const off = d[ip]! | (d[ip + 1]! << 8);
    ip += 2;
    if (off === 0) bad('zero match offset');
    if (off > op - historyStart) bad(`match offset ${off} reaches before the start of the data`);
    let len = (token & 15) + 4;
    if ((token & 15) === 15) {
      let b: number;
      do {
        if (ip >= end) bad('match length runs past the end of the block');
        b = d[ip++]!;
        len += b;
      } while (b === 255);
    }
    if (len > maxOut - op) bad(`a match of ${len} bytes overflows the block size`);
    let src = op - off;
    const stop = op + len;
    if (off >= len) {
      buf.copyWithin(op, src, src + len);
      op = stop;
    } else {
      while (op < stop) buf[op++] = buf[src++]!;
    }
  }
  out.pos = op;
}

/** Decode one frame (legacy, standard, or skippable) at `pos`; returns the offset after it. */
export function decodeLz4Frame(d: Uint8Array, pos: number, out: OutBuf, frameNo = 1): number {
  const f = `frame ${frameNo}`;
  need('lz4', d, pos, 4, `the magic of ${f}`);
  const magic = u32le(d, pos);
  if (magic === LEGACY_MAGIC) return decodeLegacy(d, pos + 4, out, f);
  if (isSkippable(magic)) {
    need('lz4', d, pos + 4, 4, `the size of skippable ${f}`);
    const size = u32le(d, pos + 4);
    need('lz4', d, pos + 8, size, `skippable ${f}`);
    return pos + 8 + size;
  }
  if (magic !== FRAME_MAGIC) fail(`${f} at input offset ${hex(pos)}: bad magic ${hex(magic)}`);
  return decodeStandard(d, pos, out, f);
}

function decodeLegacy(d: Uint8Array, pos: number, out: OutBuf, f: string): number {
  let p = pos;
  let blocks = 0;
  for (;;) {
    const rem = d.length - p;
    if (rem < 4) return p; // end of input (a few stray bytes are trailing data)
    const size = u32le(d, p);
    // A new frame (of any LZ4 kind) ends this one.
    if (size === LEGACY_MAGIC || size === FRAME_MAGIC || isSkippable(size)) return p;
    if (size > LEGACY_BOUND || size + 4 > rem) {
      // Linux appends the uncompressed size to the payload: four bytes that are not a block.
      if (blocks > 0 && rem === 4) return p;
      if (size > LEGACY_BOUND) fail(`${f}: block ${blocks + 1} at input offset ${hex(p)} claims ${size} bytes, more than a legacy block can hold`);
      need('lz4', d, p + 4, size, `${f}: block ${blocks + 1}`);
    }
    if (size === 0) fail(`${f}: empty block at input offset ${hex(p)}`);
    const start = out.pos;
    decodeLz4Block(d, p + 4, p + 4 + size, out, start + LEGACY_BLOCK, start, `${f}, block ${blocks + 1}`);
    blocks++;
    p += 4 + size;
  }
}

function decodeStandard(d: Uint8Array, pos: number, out: OutBuf, f: string): number {
  need('lz4', d, pos, 7, `the header of ${f}`);
  const flg = d[pos + 4]!;
  const bd = d[pos + 5]!;
  if (flg >>> 6 !== 1) fail(`${f}: frame version ${flg >>> 6} is not 1`);
  if (flg & 2 || bd & 0x8f) fail(`${f}: reserved header bits set`);
  const independent = (flg & 0x20) !== 0;
  const blockChecksum = (flg & 0x10) !== 0;
  const hasSize = (flg & 0x08) !== 0;
  const contentChecksum = (flg & 0x04) !== 0;
  const hasDict = (flg & 0x01) !== 0;
  const maxBlock = [0, 0, 0, 0, 64 << 10, 256 << 10, 1 << 20, 4 << 20][(bd >>> 4) & 7]!;
  if (!maxBlock) fail(`${f}: invalid block maximum size code ${(bd >>> 4) & 7}`);
  let p = pos + 6;
  let contentSize: bigint | undefined;
  if (hasSize) {
    need('lz4', d, p, 8, `the content size of ${f}`);
    contentSize = (BigInt(u32le(d, p + 4)) << 32n) | BigInt(u32le(d, p));
    p += 8;
  }
  if (hasDict) fail(`${f}: uses a preset dictionary, which is not supported`);
  need('lz4', d, p, 1, `the header checksum of ${f}`);
  const hc = (xxh32(d, pos + 4, p) >>> 8) & 0xff;
  if (hc !== d[p]) fail(`${f}: header checksum ${hex(d[p]!)} does not match ${hex(hc)}`);
  p++;
  const start = out.pos;
  let blockNo = 0;
  for (;;) {
    need('lz4', d, p, 4, `a block size of ${f}`);
    const word = u32le(d, p);
    p += 4;
    if (word === 0) break;
    blockNo++;
    const raw = (word & 0x80000000) !== 0;
    const size = word & 0x7fffffff;
    if (size > maxBlock) fail(`${f}: block ${blockNo} is ${size} bytes, more than the frame's maximum ${maxBlock}`);
    need('lz4', d, p, size + (blockChecksum ? 4 : 0), `${f}, block ${blockNo}`);
    if (blockChecksum && xxh32(d, p, p + size) !== u32le(d, p + size)) fail(`${f}: block ${blockNo} checksum mismatch`);
    if (raw) out.append(d.subarray(p, p + size));
    else decodeLz4Block(d, p, p + size, out, out.pos + maxBlock, independent ? out.pos : start, `${f}, block ${blockNo}`);
    p += size + (blockChecksum ? 4 : 0);
  }
  if (contentSize !== undefined && BigInt(out.pos - start) !== contentSize) {
    fail(`${f}: decoded ${out.pos - start} bytes but the header says ${contentSize}`);
  }
  if (contentChecksum) {
    need('lz4', d, p, 4, `the content checksum of ${f}`);
    if (xxh32(out.buf, start, out.pos) !== u32le(d, p)) fail(`${f}: content checksum mismatch`);
    p += 4;
  }
  return p;
}
