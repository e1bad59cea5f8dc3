// The one error type of the kernel-image parsers (src/guests/: decompressors, ELF, Xen notes,
// bzImage). Every rejection of bad input is a KernelImageError whose message names what is
// wrong and where ("xz: block 1: LZMA2 chunk at input offset 0x1234 is corrupt"); anything
// else escaping these modules is a bug in them.

export type ImageErrorSource =
  | 'image' | 'elf' | 'xen-notes' | 'bzimage'
  | 'gzip' | 'bzip2' | 'xz' | 'lzma' | 'lzo' | 'lz4' | 'zstd';

export class KernelImageError extends Error {
  override readonly name = 'KernelImageError';
  constructor(readonly source: ImageErrorSource, message: string) {
    super(`${source}: ${message}`);
  }
}

/** `0x`-prefixed lower-case hex of a number or bigint. */
export function hex(v: number | bigint): string {
  return v < 0 ? `-0x${(-v).toString(16)}` : `0x${v.toString(16)}`;
}

/** The first `n` bytes of `b` from `at` as spaced hex, for "found ... instead" messages. */
export function hexBytes(b: Uint8Array, at = 0, n = 8): string {
  const parts: string[] = [];
  for (let i = at; i < Math.min(b.length, at + n); i++) parts.push(b[i]!.toString(16).padStart(2, '0'));
  return parts.length ? parts.join(' ') : '(none)';
}
