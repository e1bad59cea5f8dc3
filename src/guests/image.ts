// The kernel-image entry point for the domain builder: detect the format (ELF, Linux bzImage,
// or either of them compressed, as NetBSD's netbsd-XEN3_DOMU.gz is), parse the ELF and its
// Xen notes, and compute the PV and/or PVH layout.
//
//   const k = loadKernelImage(readFileSync('netbsd-XEN3_DOMU.gz'));
//   k.pv!.virtEntry, k.pv!.segments, k.xen.features, ...
//
// Bad input always throws KernelImageError with a message that names what is wrong.

import { extractBzImage, isBzImage, type BzImageInfo } from './bzimage.js';
import { COMPRESSIONS, DEFAULT_MAX_OUTPUT, decompress, detectCompression, type Compression } from './decompress.js';
import { isElf, parseElf, type ElfFile } from './elf.js';
import { KernelImageError, hexBytes } from './image-error.js';
import { computeXenLayout, parseXenNotes, type XenGuestInfo, type XenLayout } from './xen-notes.js';

export { KernelImageError } from './image-error.js';

export interface KernelImage {
  /** What the (decompressed) file is. */
  format: 'elf' | 'bzimage';
  /** Compression of the file as a whole (e.g. 'gzip' for netbsd-XEN3_DOMU.gz). */
  compression: Compression | 'none';
  /** For a bzImage: its header, including the payload's compression. */
  bzImage?: BzImageInfo;
  elf: ElfFile;
  xen: XenGuestInfo;
  /** The 64-bit PV layout, when the image can be booted PV. */
  pv?: XenLayout;
  /** The PVH layout, when the image has a PHYS32_ENTRY. */
  pvh?: XenLayout;
  /** Why `pv` / `pvh` is missing. */
  pvError?: string;
  pvhError?: string;
  warnings: string[];
}

export interface LoadKernelOptions {
  /**
   * 'pv' or 'pvh': that layout is required (its failure is thrown). 'any' (default): compute
   * both where possible; throw only if neither works.
   */
  mode?: 'pv' | 'pvh' | 'any';
  /** Cap on decompressed sizes (default 1 GiB). */
  maxDecompressedSize?: number;
  /** Cap on the loadable span of the ELF (default 1 GiB). */
  maxSpan?: bigint;
}

/** Unwrap compression and bzImage layers down to the kernel ELF bytes. */
export function unwrapKernel(bytes: Uint8Array, opts: LoadKernelOptions = {}): {
  elfBytes: Uint8Array; format: 'elf' | 'bzimage'; compression: Compression | 'none'; bzImage?: BzImageInfo; warnings: string[];
} {
  const maxOutput = opts.maxDecompressedSize ?? DEFAULT_MAX_OUTPUT;
  const warnings: string[] = [];
  let data = bytes;
  let compression: Compression | 'none' = 'none';
  if (!isElf(data) && !isBzImage(data)) {
    const c = detectCompression(data);
    if (!c) {
      throw new KernelImageError('image',
        `not a kernel image: expected an ELF file (7f 45 4c 46), a Linux bzImage ("HdrS" at offset 0x202) ` +
        `or a ${COMPRESSIONS.join('/')} compressed image; the file starts ${hexBytes(data, 0, 8)} (${data.length} bytes)`);
    }
    const r = decompress(data, { format: c, maxOutput });
    if (r.trailing > 0) warnings.push(`${r.trailing} bytes of trailing data after the ${c} stream ignored`);
    data = r.data;
    compression = c;
    if (!isElf(data) && !isBzImage(data)) {
      throw new KernelImageError('image', `the ${c}-compressed file does not contain an ELF kernel or a bzImage (it starts ${hexBytes(data, 0, 8)})`);
    }
  }
  if (isElf(data)) return { elfBytes: data, format: 'elf', compression, warnings };
  const bz = extractBzImage(data, { maxOutput });
  warnings.push(...bz.warnings);
  return { elfBytes: bz.elf, format: 'bzimage', compression, bzImage: bz.info, warnings };
}

export function loadKernelImage(bytes: Uint8Array, opts: LoadKernelOptions = {}): KernelImage {
  const mode = opts.mode ?? 'any';
  const u = unwrapKernel(bytes, opts);
  const elf = parseElf(u.elfBytes);
  const xen = parseXenNotes(elf, { legacy: mode !== 'pvh' });
  const img: KernelImage = {
    format: u.format, compression: u.compression, bzImage: u.bzImage, elf, xen, warnings: u.warnings,
  };
  const attempt = (m: 'pv' | 'pvh'): [XenLayout | undefined, KernelImageError | undefined] => {
    try {
      return [computeXenLayout(elf, xen, m, { maxSpan: opts.maxSpan }), undefined];
    } catch (e) {
      if (e instanceof KernelImageError) return [undefined, e];
      throw e;
    }
  };
  let pvErr: KernelImageError | undefined;
  let pvhErr: KernelImageError | undefined;
  if (mode !== 'pvh') [img.pv, pvErr] = attempt('pv');
  if (mode !== 'pv' && (mode === 'pvh' || xen.phys32Entry !== undefined)) [img.pvh, pvhErr] = attempt('pvh');
  img.pvError = pvErr?.message;
  img.pvhError = pvhErr?.message;
  if (mode === 'pv' && pvErr) throw pvErr;
  if (mode === 'pvh' && pvhErr) throw pvhErr;
  if (mode === 'any' && !img.pv && !img.pvh) throw pvErr ?? pvhErr!;
  img.warnings = [...new Set([...img.warnings, ...xen.warnings])];
  return img;
}
