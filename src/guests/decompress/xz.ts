// The .xz container (https://tukaani.org/xz/xz-file-format.txt): stream header, blocks with
// their filter chains (LZMA2, optionally preceded by a branch/call/jump filter or delta), the
// index and the stream footer, with every CRC checked. Linux's CONFIG_KERNEL_XZ images use
// one block, CRC32, `--x86 --lzma2`.

import { createHash } from 'node:crypto';
import { KernelImageError, hex } from '../image-error.js';
import { decodeLzma2, lzma2DictSize } from './lzma.js';
import { crc32, crc64, need, OutBuf, u32le } from './util.js';

const MAGIC = [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00];
const CHECK_SIZE = [0, 4, 4, 4, 8, 8, 8, 16, 16, 16, 32, 32, 32, 64, 64, 64];

const FILTER_NAMES: Record<number, string> = {
  0x03: 'delta', 0x04: 'x86 BCJ', 0x05: 'PowerPC BCJ', 0x06: 'IA-64 BCJ', 0x07: 'ARM BCJ',
  0x08: 'ARM-Thumb BCJ', 0x09: 'SPARC BCJ', 0x0a: 'ARM64 BCJ', 0x0b: 'RISC-V BCJ', 0x21: 'LZMA2',
};

export function isXzStart(d: Uint8Array, pos: number): boolean {
  if (pos + 6 > d.length) return false;
  for (let i = 0; i < 6; i++) if (d[pos + i] !== MAGIC[i]) return false;
  return true;
}

function fail(msg: string): never {
  throw new KernelImageError('xz', msg);
}

/** Read a multibyte integer (at most 9 bytes, 63 bits) as a number (exact up to 2^53). */
function vli(d: Uint8Array, pos: number, end: number, what: string): [number, number] {
  let v = 0;
  let mul = 1;
  for (let i = 0; i < 9; i++) {
    if (pos + i >= end) {
      if (end >= d.length) need('xz', d, pos, i + 1, what);
      fail(`${what} at input offset ${hex(pos)} runs past the end of its header`);
    }
    const b = d[pos + i]!;
    v += (b & 0x7f) * mul;
    mul *= 128;
    if (!(b & 0x80)) {
      if (i > 0 && b === 0) fail(`${what} at input offset ${hex(pos)} is not minimally encoded`);
      if (v > Number.MAX_SAFE_INTEGER) fail(`${what} at input offset ${hex(pos)} is too large`);
      return [v, pos + i + 1];
    }
  }
  fail(`${what} at input offset ${hex(pos)} is longer than 9 bytes`);
}

interface Filter {
  id: number;
  props: Uint8Array;
}

/** Undo the x86 branch converter on data[start..end), for data starting at stream position `startPos`. */
export function x86BcjDecode(data: Uint8Array, start: number, end: number, startPos: number): void {
  const allowed = [true, true, true, false, true, false, false, false];
  const bitNum = [0, 1, 2, 2, 3, 3, 3, 3];
  const isMs = (b: number) => b === 0 || b === 0xff;
  if (end - start <= 4) return;
  const limit = end - 4;
  let prevMask = 0;
  let prevPos = start - 1;
  for (let i = start; i < limit; i++) {
    if ((data[i]! & 0xfe) !== 0xe8) continue;
    const gap = i - prevPos;
    if (gap > 3) {
      prevMask = 0;
    } else {
      prevMask = (prevMask << (gap - 1)) & 7;
      if (prevMask !== 0) {
        const b = data[i + 4 - bitNum[prevMask]!]!;
        if (!allowed[prevMask] || isMs(b)) {
          prevPos = i;
          prevMask = (prevMask << 1) | 1;
          continue;
        }
      }
    }
    prevPos = i;
    if (isMs(data[i + 4]!)) {
      let src = (data[i + 1]! | (data[i + 2]! << 8) | (data[i + 3]! << 16) | (data[i + 4]! << 24)) >>> 0;
      const here = (startPos + (i - start) + 5) >>> 0;
      let dest: number;
      for (;;) {
        dest = (src - here) >>> 0;
        if (prevMask === 0) break;
        const j = bitNum[prevMask]! * 8;
        const b = (dest >>> (24 - j)) & 0xff;
        if (!isMs(b)) break;
        src = (dest ^ (2 ** (32 - j) - 1)) >>> 0;
      }
      dest &= 0x01ffffff;
      if (dest & 0x01000000) dest |= 0xfe000000;
      data[i + 1] = dest & 0xff;
      data[i + 2] = (dest >>> 8) & 0xff;
      data[i + 3] = (dest >>> 16) & 0xff;
      data[i + 4] = (dest >>> 24) & 0xff;
      i += 4;
    } else {
      prevMask = (prevMask << 1) | 1;
    }
  }
}

function deltaDecode(data: Uint8Array, start: number, end: number, distance: number): void {
  for (let i = start + distance; i < end; i++) data[i] = (data[i]! + data[i - distance]!) & 0xff;
}

/**
 * Decode one xz stream at `pos` into `out`; returns the offset just past its footer (stream
 * padding, if any, is left to the caller).
 */
export function decodeXzStream(d: Uint8Array, pos: number, out: OutBuf, streamNo = 1): number {
  const s = `stream ${streamNo}`;
  need('xz', d, pos, 12, `the header of ${s}`);
  if (!isXzStart(d, pos)) fail(`${s} at input offset ${hex(pos)}: bad magic`);
  if (d[pos + 6] !== 0 || d[pos + 7]! > 0x0f) fail(`${s}: unsupported stream flags ${hex(d[pos + 6]!)} ${hex(d[pos + 7]!)}`);
  if (crc32(d, pos + 6, pos + 8) !== u32le(d, pos + 8)) fail(`${s}: stream header CRC32 mismatch`);
  const check = d[pos + 7]!;
  const checkSize = CHECK_SIZE[check]!;
  if (check !== 0 && check !== 1 && check !== 4 && check !== 10) {
    fail(`${s}: check type ${check} is not one of none, CRC32, CRC64, SHA-256`);
  }
  let p = pos + 12;
  const records: Array<[number, number]> = [];
  let blockNo = 0;
  for (;;) {
    need('xz', d, p, 1, `block header or index of ${s}`);
    if (d[p] === 0) break; // index indicator
    blockNo++;
    const where = `${s}, block ${blockNo}`;
    const hstart = p;
    const hsize = (d[p]! + 1) * 4;
    need('xz', d, p, hsize, `the header of ${where}`);
    const hend = p + hsize;
    if (crc32(d, p, hend - 4) !== u32le(d, hend - 4)) fail(`${where}: block header CRC32 mismatch (input offset ${hex(p)})`);
    const flags = d[p + 1]!;
    if (flags & 0x3c) fail(`${where}: reserved block flags set (${hex(flags)})`);
    const nfilters = (flags & 3) + 1;
    let q = p + 2;
    let csize = -1;
    let usize = -1;
    if (flags & 0x40) [csize, q] = vli(d, q, hend - 4, `${where}: compressed size`);
    if (flags & 0x80) [usize, q] = vli(d, q, hend - 4, `${where}: uncompressed size`);
    const filters: Filter[] = [];
    for (let i = 0; i < nfilters; i++) {
      let id: number;
      let psize: number;
      [id, q] = vli(d, q, hend - 4, `${where}: filter ID`);
      [psize, q] = vli(d, q, hend - 4, `${where}: filter properties size`);
      if (q + psize > hend - 4) fail(`${where}: filter properties run past the end of the block header`);
      filters.push({ id, props: d.subarray(q, q + psize) });
      q += psize;
    }
    for (; q < hend - 4; q++) if (d[q] !== 0) fail(`${where}: non-zero padding in the block header`);
    const last = filters[filters.length - 1]!;
    if (last.id !== 0x21) fail(`${where}: the last filter is ${FILTER_NAMES[last.id] ?? hex(last.id)}, not LZMA2`);
    if (last.props.length !== 1) fail(`${where}: LZMA2 filter has ${last.props.length} property bytes, not 1`);
    for (const f of filters.slice(0, -1)) {
      if (f.id === 0x21) fail(`${where}: LZMA2 may only be the last filter`);
      if (f.id === 0x04) {
        if (f.props.length !== 0 && f.props.length !== 4) fail(`${where}: x86 BCJ filter has ${f.props.length} property bytes`);
      } else if (f.id === 0x03) {
        if (f.props.length !== 1) fail(`${where}: delta filter has ${f.props.length} property bytes`);
      } else {
        fail(`${where}: filter ${FILTER_NAMES[f.id] ?? hex(f.id)} is not supported (supported: x86 BCJ, delta, LZMA2)`);
      }
    }
    const dictSize = lzma2DictSize(last.props[0]!);
    const ustart = out.pos;
    const dataEnd = csize >= 0 ? hend + csize : d.length;
    if (csize >= 0 && dataEnd > d.length) need('xz', d, hend, csize, `the compressed data of ${where}`);
    p = decodeLzma2(d, hend, dataEnd, out, dictSize, where);
    if (csize >= 0 && p !== dataEnd) fail(`${where}: compressed size is ${p - hend} bytes but the block header says ${csize}`);
    const ulen = out.pos - ustart;
    if (usize >= 0 && ulen !== usize) fail(`${where}: uncompressed size is ${ulen} bytes but the block header says ${usize}`);
    // Undo the filters in reverse order (all but LZMA2, which is already undone).
    for (let i = filters.length - 2; i >= 0; i--) {
      const f = filters[i]!;
      if (f.id === 0x04) x86BcjDecode(out.buf, ustart, out.pos, f.props.length === 4 ? u32le(f.props, 0) : 0);
      else deltaDecode(out.buf, ustart, out.pos, f.props[0]! + 1);
    }
    const unpadded = p - hstart;
    while ((p - hstart) & 3) {
      need('xz', d, p, 1, `block padding of ${where}`);
      if (d[p] !== 0) fail(`${where}: non-zero block padding at input offset ${hex(p)}`);
      p++;
    }
    need('xz', d, p, checkSize, `the check of ${where}`);
    if (check === 1) {
      const got = crc32(out.buf, ustart, out.pos);
      if (got !== u32le(d, p)) fail(`${where}: CRC32 of the data is ${hex(got)} but the block says ${hex(u32le(d, p))}`);
    } else if (check === 4) {
      const got = crc64(out.buf, ustart, out.pos);
      let want = 0n;
      for (let i = 7; i >= 0; i--) want = (want << 8n) | BigInt(d[p + i]!);
      if (got !== want) fail(`${where}: CRC64 of the data is ${hex(got)} but the block says ${hex(want)}`);
    } else if (check === 10) {
      const got = createHash('sha256').update(out.buf.subarray(ustart, out.pos)).digest();
      for (let i = 0; i < 32; i++) if (got[i] !== d[p + i]) fail(`${where}: SHA-256 of the data does not match`);
    }
    p += checkSize;
    records.push([unpadded + checkSize, ulen]);
  }
  // Index.
  const istart = p;
  p++;
  let count: number;
  [count, p] = vli(d, p, d.length, `${s}: index record count`);
  if (count !== records.length) fail(`${s}: index lists ${count} blocks but the stream has ${records.length}`);
  for (let i = 0; i < count; i++) {
    let up: number;
    let us: number;
    [up, p] = vli(d, p, d.length, `${s}: index record`);
    [us, p] = vli(d, p, d.length, `${s}: index record`);
    const [wantUp, wantUs] = records[i]!;
    if (up !== wantUp || us !== wantUs) fail(`${s}: index record ${i + 1} (${up}, ${us}) does not match block ${i + 1} (${wantUp}, ${wantUs})`);
  }
  while ((p - istart) & 3) {
    need('xz', d, p, 1, `index padding of ${s}`);
    if (d[p] !== 0) fail(`${s}: non-zero index padding`);
    p++;
  }
  need('xz', d, p, 4, `the index CRC32 of ${s}`);
  if (crc32(d, istart, p) !== u32le(d, p)) fail(`${s}: index CRC32 mismatch`);
  p += 4;
  // Footer.
  need('xz', d, p, 12, `the footer of ${s}`);
  if (d[p + 10] !== 0x59 || d[p + 11] !== 0x5a) fail(`${s}: bad stream footer magic at input offset ${hex(p + 10)}`);
  if (crc32(d, p + 4, p + 10) !== u32le(d, p)) fail(`${s}: stream footer CRC32 mismatch`);
  const backward = (u32le(d, p + 4) + 1) * 4;
  if (backward !== p - istart) fail(`${s}: footer says the index is ${backward} bytes but it is ${p - istart}`);
  if (d[p + 8] !== d[pos + 6] || d[p + 9] !== d[pos + 7]) fail(`${s}: stream footer flags differ from the header`);
  return p + 12;
}
