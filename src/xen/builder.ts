// The PV domain builder (what libxenguest's xc_dom_* does for a 64-bit PV guest): allocate
// the domain's memory, lay it out from VIRT_BASE as
//   kernel | ramdisk | p2m list | start_info | xenstore | console | page tables | boot stack
// padded to a 4 MiB boundary with at least 512 KiB to spare, build the bootstrap page
// tables mapping all of it (page-table pages read-only, everything else read-write+user),
// fill start_info and shared_info, write the hypercall page, and set up the boot vCPU.

import type { XenLayout } from '../guests/xen-notes.js';
import { MAX_GUEST_CMDLINE, SharedInfo, StartInfo, VcpuInfo, XEN_LEGACY_MAX_VCPUS } from './layout.js';
import type { Domain } from './domain.js';

const PAGE = 4096n;
const MB4 = 4n << 20n;
const roundUp = (v: bigint, a: bigint) => ((v + a - 1n) / a) * a;

export interface BuildOptions {
  layout: XenLayout;
  memoryMiB: number;
  cmdline?: string;
  ramdisk?: Uint8Array;
  /** Event channel ports (in the guest) for xenstore and the console, made by the caller. */
  storeEvtchn?: number;
  consoleEvtchn?: number;
  /** SIF_* flags for start_info (privileged / initdomain for dom0). */
  sifFlags?: number;
}

/** Where things went: virtual addresses (bigint) and machine frames. */
export interface BuiltDomain {
  nrPages: number;
  /** pfn -> mfn. */
  p2m: Int32Array;
  virtBase: bigint;
  virtEnd: bigint;
  startInfoVa: bigint;
  startInfoMfn: number;
  storeMfn: number;
  consoleMfn: number;
  p2mVa: bigint;
  l4Va: bigint;
  l4Mfn: number;
  /** Machine frames holding the bootstrap page tables (L4 first), with their levels. */
  pageTables: { mfn: number; level: number }[];
  stackTopVa: bigint;
  entryVa: bigint;
  ramdiskVa?: bigint;
  hypercallPageVa?: bigint;
}

export class BuildError extends Error {}

/** How many page-table pages map [start, end) with 4 KiB pages in 4-level paging. */
function tablesNeeded(start: bigint, end: bigint): { l3: number; l2: number; l1: number } {
  const span = (shift: bigint) => Number(((end - 1n) >> shift) - (start >> shift) + 1n);
  return { l3: span(39n), l2: span(30n), l1: span(21n) };
}

/**
 * Build a PV domain's memory image. The domain's frames are allocated from the host frame
 * table; the caller then sets up the vCPU (setupBootVcpu) and validates/pins the L4.
 */
export function buildPvDomain(d: Domain, o: BuildOptions): BuiltDomain {
  const xen = d.xen;
  const L = o.layout;
  const nrPages = o.memoryMiB * 256;
  if (!Number.isInteger(nrPages) || nrPages < 256) throw new BuildError(`memory ${o.memoryMiB} MiB is too small for a PV guest (at least 1 MiB)`);
  const virtBase = L.virtBase;
  const kend = roundUp(L.virtKend, PAGE);

  // Virtual allocation after the kernel, in libxenguest's order.
  let va = kend;
  const take = (bytes: bigint): bigint => { const at = va; va = roundUp(va + bytes, PAGE); return at; };
  const ramdiskVa = o.ramdisk ? take(BigInt(o.ramdisk.length)) : undefined;
  const p2mVa = take(BigInt(nrPages) * 8n);
  const startInfoVa = take(PAGE);
  const storeVa = take(PAGE);
  const consoleVa = take(PAGE);
  // Page tables: their number depends on the end of the mapping, which depends on them.
  const ptVa = va;
  let nPt = 0;
  let virtEnd = 0n;
  for (let iter = 0; iter < 8; iter++) {
    const stackEnd = ptVa + BigInt(nPt) * PAGE + PAGE;
    let end = roundUp(stackEnd, MB4);
    if (end - stackEnd < 512n * 1024n) end += MB4;
    const t = tablesNeeded(virtBase, end);
    const need = 1 + t.l3 + t.l2 + t.l1;
    virtEnd = end;
    if (need === nPt) break;
    nPt = need;
  }
  va = ptVa + BigInt(nPt) * PAGE;
  const stackVa = take(PAGE);
  const mappedPages = Number((virtEnd - virtBase) / PAGE);
  if (mappedPages > nrPages) {
    throw new BuildError(`the kernel, its modules and boot structures need ${Math.ceil(mappedPages / 256)} MiB mapped; the guest has only ${o.memoryMiB} MiB`);
  }
  if (o.cmdline && new TextEncoder().encode(o.cmdline).length >= MAX_GUEST_CMDLINE) {
    throw new BuildError(`the command line is longer than ${MAX_GUEST_CMDLINE - 1} bytes`);
  }

  // Machine memory: one frame per guest page.
  if (xen.frames.free < nrPages + 8) throw new BuildError(`not enough host memory for ${o.memoryMiB} MiB (${xen.frames.free} frames free)`);
  const p2m = new Int32Array(nrPages);
  for (let pfn = 0; pfn < nrPages; pfn++) {
    const mfn = xen.frames.alloc(d.id);
    if (mfn < 0) throw new BuildError('host memory exhausted while building the domain');
    p2m[pfn] = mfn;
    xen.frames.setM2p(mfn, pfn);
  }
  d.maxPages = nrPages + 256; // xl: target + LIBXL_MAXMEM_CONSTANT (1 MiB)
  d.totPages = nrPages;

  const m = xen.machine;
  const pfnOf = (v: bigint) => Number((v - virtBase) / PAGE);
  const paOf = (v: bigint) => p2m[pfnOf(v)] * 4096 + Number(v & 0xfffn);
  const copyIn = (v: bigint, data: Uint8Array) => {
    let off = 0;
    while (off < data.length) {
      const at = v + BigInt(off);
      const n = Math.min(data.length - off, 4096 - Number(at & 0xfffn));
      m.setBytes(paOf(at), data.subarray(off, off + n));
      off += n;
    }
  };

  // Kernel segments (memory beyond the file data is already zero: frames are zeroed).
  for (const s of L.segments) {
    if (s.vaddr < virtBase || s.vaddr + s.memsz > virtEnd) throw new BuildError(`kernel segment ${s.index} at ${s.vaddr.toString(16)} is outside the mapping`);
    copyIn(s.vaddr, s.data);
  }
  if (o.ramdisk && ramdiskVa !== undefined) copyIn(ramdiskVa, o.ramdisk);

  // The p2m list (u64 per pfn).
  for (let pfn = 0; pfn < nrPages; pfn++) m.set64(paOf(p2mVa + BigInt(pfn) * 8n), p2m[pfn]);

  // Bootstrap page tables: L4, L3s, L2s, L1s in that order.
  const t = tablesNeeded(virtBase, virtEnd);
  const pageTables: { mfn: number; level: number }[] = [];
  let ptNext = ptVa;
  const newTable = (level: number): { va: bigint; mfn: number } => {
    const at = ptNext; ptNext += PAGE;
    const mfn = p2m[pfnOf(at)];
    pageTables.push({ mfn, level });
    return { va: at, mfn };
  };
  const l4 = newTable(4);
  const l3s = new Map<bigint, number>(), l2s = new Map<bigint, number>(), l1s = new Map<bigint, number>();
  for (let i = 0; i < t.l3; i++) l3s.set((virtBase >> 39n) + BigInt(i), newTable(3).mfn);
  for (let i = 0; i < t.l2; i++) l2s.set((virtBase >> 30n) + BigInt(i), newTable(2).mfn);
  for (let i = 0; i < t.l1; i++) l1s.set((virtBase >> 21n) + BigInt(i), newTable(1).mfn);
  const ptFirstPfn = pfnOf(ptVa), ptLastPfn = ptFirstPfn + nPt - 1;
  const TABLE = 0x67; // present, rw, user, accessed, dirty
  const idx = (v: bigint, shift: bigint) => Number((v >> shift) & 511n);
  for (let v = virtBase; v < virtEnd; v += PAGE) {
    const l3 = l3s.get(v >> 39n)!, l2 = l2s.get(v >> 30n)!, l1 = l1s.get(v >> 21n)!;
    m.set64(l4.mfn * 4096 + idx(v, 39n) * 8, l3 * 4096 + TABLE);
    m.set64(l3 * 4096 + idx(v, 30n) * 8, l2 * 4096 + TABLE);
    m.set64(l2 * 4096 + idx(v, 21n) * 8, l1 * 4096 + TABLE);
    const pfn = pfnOf(v);
    const ro = pfn >= ptFirstPfn && pfn <= ptLastPfn;
    m.set64(l1 * 4096 + idx(v, 12n) * 8, p2m[pfn] * 4096 + (ro ? TABLE & ~2 : TABLE));
  }

  // shared_info: a frame of the domain's own, outside its pseudo-physical map (as Xen's
  // xenheap page is); every vcpu_info starts with events masked.
  const si = xen.frames.alloc(d.id);
  if (si < 0) throw new BuildError('host memory exhausted (shared_info)');
  d.sharedInfoMfn = si;
  for (let i = 0; i < XEN_LEGACY_MAX_VCPUS; i++) m.set8(si * 4096 + SharedInfo.VCPU_INFO + i * VcpuInfo.SIZE + VcpuInfo.UPCALL_MASK, 1);
  m.set64(si * 4096 + SharedInfo.ARCH_MAX_PFN, nrPages);

  // start_info.
  const sip = paOf(startInfoVa);
  const magic = new TextEncoder().encode('xen-3.0-x86_64');
  m.setBytes(sip + StartInfo.MAGIC, magic);
  m.set64(sip + StartInfo.NR_PAGES, nrPages);
  m.set64(sip + StartInfo.SHARED_INFO, si * 4096);
  m.set32(sip + StartInfo.FLAGS, o.sifFlags ?? 0);
  const storeMfn = p2m[pfnOf(storeVa)], consoleMfn = p2m[pfnOf(consoleVa)];
  m.set64(sip + StartInfo.STORE_MFN, storeMfn);
  m.set32(sip + StartInfo.STORE_EVTCHN, o.storeEvtchn ?? 0);
  m.set64(sip + StartInfo.CONSOLE_MFN, consoleMfn);
  m.set32(sip + StartInfo.CONSOLE_EVTCHN, o.consoleEvtchn ?? 0);
  m.set64(sip + StartInfo.PT_BASE, l4.va);
  m.set64(sip + StartInfo.NR_PT_FRAMES, nPt);
  m.set64(sip + StartInfo.MFN_LIST, p2mVa);
  if (ramdiskVa !== undefined && o.ramdisk) {
    m.set64(sip + StartInfo.MOD_START, ramdiskVa);
    m.set64(sip + StartInfo.MOD_LEN, o.ramdisk.length);
  }
  if (o.cmdline) m.setBytes(sip + StartInfo.CMD_LINE, new TextEncoder().encode(o.cmdline));

  // The hypercall page: Xen's 64-bit stubs, 32 bytes per hypercall.
  if (L.virtHypercall !== undefined) copyIn(L.virtHypercall, hypercallPage());

  return {
    nrPages, p2m, virtBase, virtEnd, startInfoVa, startInfoMfn: p2m[pfnOf(startInfoVa)], storeMfn, consoleMfn,
    p2mVa, l4Va: l4.va, l4Mfn: l4.mfn, pageTables, stackTopVa: stackVa + PAGE, entryVa: L.virtEntry,
    ramdiskVa, hypercallPageVa: L.virtHypercall,
  };
}

/** The 64-bit hypercall page: `push %rcx; push %r11; mov $i,%eax; syscall; pop %r11;
 *  pop %rcx; ret` per entry, and for iret `push %rcx; push %r11; push %rax; mov $23,%eax;
 *  syscall` (it does not return). The rest is int3. */
export function hypercallPage(): Uint8Array {
  const p = new Uint8Array(4096).fill(0xcc);
  for (let i = 0; i < 128; i++) {
    const o = i * 32;
    if (i === 23) {
      p.set([0x51, 0x41, 0x53, 0x50, 0xb8, 23, 0, 0, 0, 0x0f, 0x05], o);
      continue;
    }
    p.set([0x51, 0x41, 0x53, 0xb8, i, 0, 0, 0, 0x0f, 0x05, 0x41, 0x5b, 0x59, 0xc3], o);
  }
  return p;
}

