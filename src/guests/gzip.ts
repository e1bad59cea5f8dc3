// gzip (RFC 1952) members, inflated with node:zlib. We parse the member header and trailer
// ourselves so that concatenated members, trailing garbage and truncation are handled the
// way gzip(1) and the Xen/Linux loaders do, with messages that say which member and offset.

import * as zlib from 'node:zlib';
import { KernelImageError, hex } from './image-error.js';
import { crc32, need, OutBuf, u16le, u32le } from './decompress/util.js';

const FHCRC = 2;
const FEXTRA = 4;
const FNAME = 8;
const FCOMMENT = 16;

export function isGzipStart(d: Uint8Array, pos: number): boolean {
  return pos + 1 < d.length && d[pos] === 0x1f && d[pos + 1] === 0x8b;
}

export interface GzipMemberInfo {
  name?: string;
  comment?: string;
  mtime: number;
  os: number;
}

const nodeCrc32: ((d: Uint8Array) => number) | undefined =
  typeof (zlib as { crc32?: unknown }).crc32 === 'function'
    ? (d) => (zlib as unknown as { crc32(d: Uint8Array): number }).crc32(d) >>> 0
    : undefined;

function cstring(d: Uint8Array, pos: number, what: string): [string, number] {
  const end = d.indexOf(0, pos);
  if (end < 0) {
    throw new KernelImageError('gzip', `stream is truncated: the ${what} field at input offset ${hex(pos)} has no terminating NUL`);
  }
  return [new TextDecoder('latin1').decode(d.subarray(pos, end)), end + 1];
}

/**
 * Decode one gzip member starting at `pos` into `out`; returns the offset just past its
 * trailer. `member` (1-based) is only used in messages.
 */
export function decodeGzipMember(d: Uint8Array, pos: number, out: OutBuf, member = 1, info?: GzipMemberInfo[]): number {
  const where = `member ${member} (input offset ${hex(pos)})`;
  need('gzip', d, pos, 10, `the header of ${where}`);
  if (!isGzipStart(d, pos)) throw new KernelImageError('gzip', `${where}: bad magic`);
  const cm = d[pos + 2]!;
  const flg = d[pos + 3]!;
  if (cm !== 8) throw new KernelImageError('gzip', `${where}: compression method ${cm} is not deflate (8)`);
  if (flg & 0xe0) throw new KernelImageError('gzip', `${where}: reserved flag bits set (${hex(flg)})`);
  const mtime = u32le(d, pos + 4);
  const os = d[pos + 9]!;
  let p = pos + 10;
  if (flg & FEXTRA) {
    need('gzip', d, p, 2, `the FEXTRA length of ${where}`);
    const xlen = u16le(d, p);
    need('gzip', d, p + 2, xlen, `the FEXTRA field of ${where}`);
    p += 2 + xlen;
  }
  let name: string | undefined;
  let comment: string | undefined;
  if (flg & FNAME) [name, p] = cstring(d, p, `file name of ${where}`);
  if (flg & FCOMMENT) [comment, p] = cstring(d, p, `comment of ${where}`);
  if (flg & FHCRC) {
    need('gzip', d, p, 2, `the header CRC of ${where}`);
    const want = u16le(d, p);
    const got = crc32(d, pos, p) & 0xffff;
    if (want !== got) throw new KernelImageError('gzip', `${where}: header CRC16 ${hex(want)} does not match ${hex(got)}`);
    p += 2;
  }
  info?.push({ name, comment, mtime, os });

  const room = out.max - out.pos;
  let res: { buffer: Buffer; engine: zlib.Zlib & { bytesWritten?: number } };
  try {
    res = zlib.inflateRawSync(d.subarray(p), {
      info: true,
      maxOutputLength: Math.max(1, room),
    }) as unknown as { buffer: Buffer; engine: zlib.Zlib & { bytesWritten?: number } };
  } catch (e) {
    const err = e as { code?: string; message?: string };
    if (err.code === 'Z_BUF_ERROR' || /unexpected end/i.test(err.message ?? '')) {
      throw new KernelImageError('gzip', `stream is truncated: the deflate data of ${where} ends before its final block (input ends at ${hex(d.length)})`);
    }
    if (err.code === 'ERR_BUFFER_TOO_LARGE' || e instanceof RangeError) {
      throw new KernelImageError('gzip', `decompressed data exceeds the limit of ${out.max} bytes (${hex(out.max)}) in ${where}`);
    }
    throw new KernelImageError('gzip', `${where}: corrupt deflate data: ${err.message ?? String(e)}`);
  }
  const consumed = res.engine.bytesWritten ?? 0;
  const data = res.buffer;
  p += consumed;
  need('gzip', d, p, 8, `the CRC32/ISIZE trailer of ${where}`);
  const wantCrc = u32le(d, p);
  const wantSize = u32le(d, p + 4);
  const gotCrc = nodeCrc32 ? nodeCrc32(data) : crc32(data);
  if (gotCrc !== wantCrc) {
    throw new KernelImageError('gzip', `${where}: CRC32 of the data is ${hex(gotCrc)} but the trailer says ${hex(wantCrc)}`);
  }
  if ((data.length >>> 0) !== wantSize) {
    throw new KernelImageError('gzip', `${where}: inflated to ${data.length} bytes but the trailer ISIZE says ${wantSize}`);
  }
  out.append(data);
  return p + 8;
}
