// Linux bzImage (x86 boot protocol, Documentation/arch/x86/boot.rst): the real-mode setup
// header, and the compressed vmlinux ELF a PV loader extracts from it the way Xen's
// bzimage_parse and libxenguest's bzimage loader do: payload at
// (setup_sects + 1) * 512 + payload_offset, payload_length bytes long (protocol 2.08+), the
// format found by magic, the uncompressed size in the payload's last four bytes.

import { COMPRESSIONS, decompress, detectCompression, type Compression } from './decompress.js';
import { isElf } from './elf.js';
import { KernelImageError, hex, hexBytes } from './image-error.js';
import { u16le, u32le, u64le } from './decompress/util.js';

export const BZIMAGE_HDRS_OFFSET = 0x202;
const HEADER_END = 0x250; // through payload_length

export interface BzImageInfo {
  /** Boot protocol version as "major.minor" (e.g. "2.15") and raw (0x020f). */
  protocol: string;
  protocolRaw: number;
  /** setup_sects as stored, and the value used (0 means 4). */
  setupSectsRaw: number;
  setupSects: number;
  /** Size of the 32-bit code in 16-byte paragraphs, and in bytes. */
  syssize: number;
  /** File offset of the protected-mode image: (setup_sects + 1) * 512. */
  protectedModeOffset: number;
  payloadOffset: number;
  payloadLength: number;
  /** File offset of the payload. */
  payloadFileOffset: number;
  /** The kernel version string, if the header points to one. */
  kernelVersion?: string;
  bootFlag: number;
  loadflags: number;
  xloadflags?: number;
  relocatable?: boolean;
  kernelAlignment?: number;
  cmdlineSize?: number;
  prefAddress?: bigint;
  initSize?: number;
  /** The payload's format: one of the compressions, or 'none' for a plain ELF. */
  compression: Compression | 'none';
  /** The size word at the end of the payload (the uncompressed vmlinux size). */
  uncompressedSize: number;
}

export function isBzImage(b: Uint8Array): boolean {
  return b.length >= BZIMAGE_HDRS_OFFSET + 4 &&
    b[0x202] === 0x48 && b[0x203] === 0x64 && b[0x204] === 0x72 && b[0x205] === 0x53;
}

function fail(msg: string): never {
  throw new KernelImageError('bzimage', msg);
}

/** Parse the setup header and locate the payload (no decompression). */
export function parseBzImageHeader(b: Uint8Array): BzImageInfo {
  if (!isBzImage(b)) fail(`no "HdrS" signature at offset ${hex(BZIMAGE_HDRS_OFFSET)} (found ${hexBytes(b, BZIMAGE_HDRS_OFFSET, 4)})`);
  if (b.length < 0x208) fail(`file is truncated inside the setup header (${b.length} bytes)`);
  const version = u16le(b, 0x206);
  const protocol = `${version >>> 8}.${(version & 0xff).toString().padStart(2, '0')}`;
  if (version < 0x0208) {
    fail(`boot protocol ${protocol} is too old: a PV loader needs 2.08 or later for payload_offset/payload_length`);
  }
  if (b.length < HEADER_END) fail(`file is truncated inside the setup header (${b.length} bytes, the 2.08 header ends at ${hex(HEADER_END)})`);
  const setupSectsRaw = b[0x1f1]!;
  const setupSects = setupSectsRaw === 0 ? 4 : setupSectsRaw;
  const pm = (setupSects + 1) * 512;
  const payloadOffset = u32le(b, 0x248);
  const payloadLength = u32le(b, 0x24c);
  const payloadFileOffset = pm + payloadOffset;
  if (payloadFileOffset > b.length || payloadLength > b.length - payloadFileOffset) {
    fail(`payload (file offset ${hex(payloadFileOffset)} = (setup_sects ${setupSects} + 1) * 512 + payload_offset ${hex(payloadOffset)}, ` +
      `length ${hex(payloadLength)}) extends past the end of the file (${hex(b.length)} bytes)`);
  }
  if (payloadLength < 8) fail(`payload_length ${payloadLength} is too small for a compressed kernel`);
  const payload = b.subarray(payloadFileOffset, payloadFileOffset + payloadLength);
  const compression = isElf(payload) ? 'none' : detectCompression(payload);
  if (!compression) {
    fail(`payload at file offset ${hex(payloadFileOffset)} is in an unknown format (first bytes ${hexBytes(payload)}; ` +
      `expected ELF or ${COMPRESSIONS.join(', ')})`);
  }
  let kernelVersion: string | undefined;
  const kv = u16le(b, 0x20e);
  if (kv !== 0 && kv + 0x200 < Math.min(pm, b.length)) {
    const start = kv + 0x200;
    let e = start;
    while (e < Math.min(pm, b.length, start + 256) && b[e] !== 0) e++;
    kernelVersion = new TextDecoder('latin1').decode(b.subarray(start, e));
  }
  const info: BzImageInfo = {
    protocol, protocolRaw: version, setupSectsRaw, setupSects, syssize: u32le(b, 0x1f4), protectedModeOffset: pm,
    payloadOffset, payloadLength, payloadFileOffset, kernelVersion, bootFlag: u16le(b, 0x1fe), loadflags: b[0x211]!,
    compression, uncompressedSize: u32le(payload, payload.length - 4),
  };
  if (version >= 0x0205) {
    info.kernelAlignment = u32le(b, 0x230);
    info.relocatable = b[0x234] !== 0;
  }
  if (version >= 0x0206) info.cmdlineSize = u32le(b, 0x238);
  if (version >= 0x020c) info.xloadflags = u16le(b, 0x236);
  if (version >= 0x020a && b.length >= 0x264) {
    info.prefAddress = u64le(b, 0x258);
    info.initSize = u32le(b, 0x260);
  }
  return info;
}

export interface BzImageExtract {
  info: BzImageInfo;
  /** The vmlinux ELF. */
  elf: Uint8Array;
  warnings: string[];
}

/** Extract the vmlinux ELF from a bzImage. */
export function extractBzImage(b: Uint8Array, opts: { maxOutput?: number } = {}): BzImageExtract {
  const info = parseBzImageHeader(b);
  const warnings: string[] = [];
  const payload = b.subarray(info.payloadFileOffset, info.payloadFileOffset + info.payloadLength);
  const pmEnd = info.protectedModeOffset + info.syssize * 16;
  if (pmEnd > b.length + 15) {
    warnings.push(`syssize ${hex(info.syssize)} paragraphs reaches ${hex(pmEnd)}, past the end of the file (${hex(b.length)})`);
  }
  if (info.compression === 'none') {
    return { info, elf: payload, warnings };
  }
  const r = decompress(payload, { format: info.compression, maxOutput: opts.maxOutput, sizeHint: info.uncompressedSize });
  if (r.data.length > info.uncompressedSize) {
    fail(`payload decompressed to ${r.data.length} bytes, more than the ${info.uncompressedSize} its size word says`);
  }
  if (r.data.length < info.uncompressedSize) {
    warnings.push(`payload decompressed to ${r.data.length} bytes, fewer than the ${info.uncompressedSize} its size word says`);
  }
  if (!isElf(r.data)) fail(`the decompressed ${info.compression} payload is not an ELF file (starts ${hexBytes(r.data)})`);
  return { info, elf: r.data, warnings };
}
