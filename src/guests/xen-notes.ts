// Xen ELF notes (public/elfnote.h) and the legacy `__xen_guest` section, decoded the way Xen's
// libelf (xen/common/libelf/libelf-dominfo.c) interprets them, and the layout a PV or PVH
// domain builder derives from them (elf_xen_addr_calc_check): virt_base, elf_paddr_offset,
// virt_kstart/virt_kend, virt_entry, virt_hypercall, p2m_base, and the BSD symbol table area.
//
// Lookup order, as libelf: "Xen" notes in PT_NOTE segments (skipping p_offset 0); if there are
// none, SHT_NOTE sections; if still none, the `__xen_guest` section (PV only).

import { KernelImageError, hex } from './image-error.js';
import {
  EM_386, EM_X86_64, machineName, noteAlign, parseNotes, PF_R, PF_W, PF_X, PT_LOAD, PT_NOTE, sectionByName,
  sectionData, segmentData, SHT_NOTE, SHT_STRTAB, SHT_SYMTAB, latin1, MAX_TOTAL_NOTES,
  type ElfFile, type ElfNote, type ElfSection,
} from './elf.js';

export const XEN_ELFNOTE = {
  INFO: 0,
  ENTRY: 1,
  HYPERCALL_PAGE: 2,
  VIRT_BASE: 3,
  PADDR_OFFSET: 4,
  XEN_VERSION: 5,
  GUEST_OS: 6,
  GUEST_VERSION: 7,
  LOADER: 8,
  PAE_MODE: 9,
  FEATURES: 10,
  BSD_SYMTAB: 11,
  HV_START_LOW: 12,
  L1_MFN_VALID: 13,
  SUSPEND_CANCEL: 14,
  INIT_P2M: 15,
  MOD_START_PFN: 16,
  SUPPORTED_FEATURES: 17,
  PHYS32_ENTRY: 18,
  /** Xen 4.19+ (not in Xen 4.17's elfnote.h): PVH relocation range, 1-3 u32 (align, min, max). */
  PHYS32_RELOC: 19,
  CRASH_INFO: 0x1000001,
  CRASH_REGS: 0x1000002,
  DUMPCORE_NONE: 0x2000000,
  DUMPCORE_HEADER: 0x2000001,
  DUMPCORE_XEN_VERSION: 0x2000002,
  DUMPCORE_FORMAT_VERSION: 0x2000003,
} as const;

const NOTE_NAMES: Record<number, string> = Object.fromEntries(Object.entries(XEN_ELFNOTE).map(([k, v]) => [v, k]));

export function xenNoteName(type: number): string {
  return NOTE_NAMES[type] ?? `unknown (${hex(type)})`;
}

/** How each guest note's descriptor is typed (libelf's note_desc table). */
const STRING_NOTES = new Set<number>([
  XEN_ELFNOTE.INFO, XEN_ELFNOTE.XEN_VERSION, XEN_ELFNOTE.GUEST_OS, XEN_ELFNOTE.GUEST_VERSION, XEN_ELFNOTE.LOADER,
  XEN_ELFNOTE.PAE_MODE, XEN_ELFNOTE.FEATURES, XEN_ELFNOTE.BSD_SYMTAB,
]);
const NUMERIC_NOTES = new Set<number>([
  XEN_ELFNOTE.ENTRY, XEN_ELFNOTE.HYPERCALL_PAGE, XEN_ELFNOTE.VIRT_BASE, XEN_ELFNOTE.PADDR_OFFSET,
  XEN_ELFNOTE.HV_START_LOW, XEN_ELFNOTE.SUSPEND_CANCEL, XEN_ELFNOTE.INIT_P2M, XEN_ELFNOTE.MOD_START_PFN,
  XEN_ELFNOTE.SUPPORTED_FEATURES, XEN_ELFNOTE.PHYS32_ENTRY,
]);

/** XENFEAT_* bit numbers (public/features.h). */
export const XENFEAT = {
  writable_page_tables: 0,
  writable_descriptor_tables: 1,
  auto_translated_physmap: 2,
  supervisor_mode_kernel: 3,
  pae_pgdir_above_4gb: 4,
  mmu_pt_update_preserve_ad: 5,
  highmem_assist: 6,
  gnttab_map_avail_bits: 7,
  hvm_callback_vector: 8,
  hvm_safe_pvclock: 9,
  hvm_pirqs: 10,
  dom0: 11,
  grant_map_identity: 12,
  memory_op_vnode_supported: 13,
  ARM_SMCCC_supported: 14,
  linux_rsdp_unrestricted: 15,
  not_direct_mapped: 16,
  direct_mapped: 17,
} as const;
export type XenFeatureName = keyof typeof XENFEAT;

/** The feature names libelf's FEATURES parser knows (elf_xen_feature_names); others are ignored, or fatal if required. */
export const LIBELF_FEATURE_NAMES: readonly XenFeatureName[] = [
  'writable_page_tables', 'writable_descriptor_tables', 'auto_translated_physmap', 'supervisor_mode_kernel',
  'pae_pgdir_above_4gb', 'hvm_callback_vector', 'dom0',
];

/** Names of the bits set in a XENFEAT bitmap. */
export function featureNames(bitmap: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < 32; i++) {
    if (!((bitmap >>> i) & 1)) continue;
    const n = Object.entries(XENFEAT).find(([, v]) => v === i)?.[0];
    out.push(n ?? `bit${i}`);
  }
  return out;
}

export interface FeatureEntry {
  name: string;
  required: boolean;
  /** True if libelf knows the name (and so sets a bit for it). */
  known: boolean;
}

export interface FeatureSet {
  /** Bitmap of XENFEAT_* the kernel supports (required ones included). */
  supported: number;
  /** Bitmap of XENFEAT_* the kernel requires ('!' prefix). */
  required: number;
  entries: FeatureEntry[];
}

/**
 * Parse a FEATURES string ("a|!b|c") into bitmaps with libelf's semantics: a leading '!' marks
 * a feature as required (and supported); unknown optional names are ignored; an unknown
 * required name is an error.
 */
export function parseFeatures(s: string, into: FeatureSet = { supported: 0, required: 0, entries: [] }): FeatureSet {
  for (const raw of s.split('|')) {
    if (raw === '') continue;
    const required = raw.startsWith('!');
    const name = required ? raw.slice(1) : raw;
    const known = (LIBELF_FEATURE_NAMES as readonly string[]).includes(name);
    into.entries.push({ name, required, known });
    if (known) {
      const bit = 1 << XENFEAT[name as XenFeatureName];
      into.supported |= bit;
      if (required) into.required |= bit;
    } else if (required) {
      throw new KernelImageError('xen-notes', `FEATURES requires "${name}", a feature Xen does not know`);
    }
  }
  into.supported >>>= 0;
  into.required >>>= 0;
  return into;
}

export type PaeMode = 'no' | 'yes' | 'extended-cr3' | 'bimodal';

export interface XenNoteRecord {
  type: number;
  name: string;
  value: string | bigint | Uint8Array;
  /** "PT_NOTE segment 4" or "section 5 (.notes)". */
  container: string;
  offset: number;
}

/** Everything a kernel declares to Xen, typed. Unset fields are undefined (libelf's UNSET_ADDR). */
export interface XenGuestInfo {
  /** Where the information came from. */
  source: 'PT_NOTE' | 'SHT_NOTE' | '__xen_guest' | 'none';
  /** Every recognised Xen note, in file order (a later one overrides an earlier one). */
  notes: XenNoteRecord[];
  /** The legacy `__xen_guest` string, if that was the source. */
  guestInfoString?: string;

  entry?: bigint;
  /** Virtual address of the hypercall page (the legacy page number is already converted). */
  hypercallPage?: bigint;
  virtBase?: bigint;
  paddrOffset?: bigint;
  xenVersion?: string;
  guestOs?: string;
  guestVersion?: string;
  loader?: string;
  paeModeString?: string;
  pae: PaeMode;
  featuresString?: string;
  features: FeatureSet;
  /** Raw SUPPORTED_FEATURES bitmap (already ORed into `features.supported`). */
  supportedFeatures?: number;
  bsdSymtab: boolean;
  hvStartLow?: bigint;
  /** L1_MFN_VALID mask/value pairs. */
  l1MfnValid?: Array<{ mask: bigint; value: bigint }>;
  suspendCancel?: bigint;
  initP2m?: bigint;
  /** MOD_START_PFN: the kernel accepts an initrd passed by PFN, outside the initial mapping. */
  unmappedInitrd: boolean;
  modStartPfn?: bigint;
  /** PVH 32-bit entry point (physical). */
  phys32Entry?: number;
  phys32Reloc?: { align?: number; min?: number; max?: number };
  info: string[];
  warnings: string[];
}

function emptyInfo(): XenGuestInfo {
  return {
    source: 'none', notes: [], pae: 'no', features: { supported: 0, required: 0, entries: [] }, bsdSymtab: false,
    unmappedInitrd: false, info: [], warnings: [],
  };
}

function noteString(n: ElfNote, info: XenGuestInfo): string {
  const z = n.descPadded.indexOf(0);
  if (z >= 0) return latin1(n.descPadded.subarray(0, z));
  info.warnings.push(`${n.container}: ${xenNoteName(n.type)} string at offset ${hex(n.offset)} is not NUL-terminated`);
  return latin1(n.desc);
}

function leOrBe(elf: ElfFile, d: Uint8Array, at: number, size: number): bigint {
  let v = 0n;
  for (let i = 0; i < size; i++) {
    const b = d[elf.header.littleEndian ? at + size - 1 - i : at + i]!;
    v = (v << 8n) | BigInt(b);
  }
  return v;
}

/** libelf's elf_note_numeric: 1, 2, 4 or 8 bytes; any other size reads as 0. */
function noteNumeric(elf: ElfFile, n: ElfNote, info: XenGuestInfo): bigint {
  const s = n.desc.length;
  if (s === 1 || s === 2 || s === 4 || s === 8) return leOrBe(elf, n.desc, 0, s);
  info.warnings.push(`${n.container}: ${xenNoteName(n.type)} at offset ${hex(n.offset)} has a ${s}-byte descriptor; read as 0 (as Xen does)`);
  return 0n;
}

/** libelf's elf_note_numeric_array: element `idx` of `unit`-byte values, 0 if absent. */
function noteArray(elf: ElfFile, n: ElfNote, unit: number, idx: number): bigint {
  const s = n.desc.length;
  if (s % unit || idx >= s / unit) return 0n;
  return leOrBe(elf, n.desc, idx * unit, unit);
}

function applyNote(elf: ElfFile, n: ElfNote, info: XenGuestInfo): void {
  const t = n.type;
  let value: string | bigint | Uint8Array;
  if (STRING_NOTES.has(t)) value = noteString(n, info);
  else if (NUMERIC_NOTES.has(t)) value = noteNumeric(elf, n, info);
  else if (t === XEN_ELFNOTE.L1_MFN_VALID || t === XEN_ELFNOTE.PHYS32_RELOC) value = n.desc;
  else {
    info.warnings.push(`${n.container}: unknown Xen note type ${hex(t)} at offset ${hex(n.offset)} ignored`);
    return;
  }
  info.notes.push({ type: t, name: xenNoteName(t), value, container: n.container, offset: n.offset });
  const str = value as string;
  const num = value as bigint;
  switch (t) {
    case XEN_ELFNOTE.INFO: info.info.push(str); break;
    case XEN_ELFNOTE.LOADER: info.loader = str; break;
    case XEN_ELFNOTE.GUEST_OS: info.guestOs = str; break;
    case XEN_ELFNOTE.GUEST_VERSION: info.guestVersion = str; break;
    case XEN_ELFNOTE.XEN_VERSION: info.xenVersion = str; break;
    case XEN_ELFNOTE.PAE_MODE:
      info.paeModeString = str;
      if (str === 'yes') info.pae = 'extended-cr3';
      if (str.includes('bimodal')) info.pae = 'bimodal';
      break;
    case XEN_ELFNOTE.BSD_SYMTAB: if (str === 'yes') info.bsdSymtab = true; break;
    case XEN_ELFNOTE.VIRT_BASE: info.virtBase = num; break;
    case XEN_ELFNOTE.ENTRY: info.entry = num; break;
    case XEN_ELFNOTE.INIT_P2M: info.initP2m = num; break;
    case XEN_ELFNOTE.MOD_START_PFN: info.modStartPfn = num; info.unmappedInitrd = num !== 0n; break;
    case XEN_ELFNOTE.PADDR_OFFSET: info.paddrOffset = num; break;
    case XEN_ELFNOTE.HYPERCALL_PAGE: info.hypercallPage = num; break;
    case XEN_ELFNOTE.HV_START_LOW: info.hvStartLow = num; break;
    case XEN_ELFNOTE.SUSPEND_CANCEL: info.suspendCancel = num; break;
    case XEN_ELFNOTE.FEATURES: info.featuresString = str; parseFeatures(str, info.features); break;
    case XEN_ELFNOTE.SUPPORTED_FEATURES: {
      const bits = Number(noteArray(elf, n, 4, 0));
      info.supportedFeatures = bits;
      info.features.supported = (info.features.supported | bits) >>> 0;
      break;
    }
    case XEN_ELFNOTE.PHYS32_ENTRY: info.phys32Entry = Number(num & 0xffffffffn); break;
    case XEN_ELFNOTE.L1_MFN_VALID: {
      const unit = n.desc.length % 8 === 0 ? 8 : 4;
      const pairs: Array<{ mask: bigint; value: bigint }> = [];
      for (let i = 0; i + 1 < n.desc.length / unit && pairs.length < 16; i += 2) {
        pairs.push({ mask: noteArray(elf, n, unit, i), value: noteArray(elf, n, unit, i + 1) });
      }
      info.l1MfnValid = pairs;
      break;
    }
    case XEN_ELFNOTE.PHYS32_RELOC: {
      const s = n.desc.length;
      const r: { align?: number; min?: number; max?: number } = {};
      if (s >= 4) r.align = Number(leOrBe(elf, n.desc, 0, 4));
      if (s >= 8) r.min = Number(leOrBe(elf, n.desc, 4, 4));
      if (s >= 12) r.max = Number(leOrBe(elf, n.desc, 8, 4));
      info.phys32Reloc = r;
      break;
    }
  }
}

/** C strtoull(s, NULL, 0) as libelf uses it: base from the prefix, stop at the first bad digit. */
export function strtoull(s: string): bigint {
  let t = s.trimStart();
  let neg = false;
  if (t[0] === '+' || t[0] === '-') {
    neg = t[0] === '-';
    t = t.slice(1);
  }
  let base = 10;
  if (/^0[xX][0-9a-fA-F]/.test(t)) {
    base = 16;
    t = t.slice(2);
  } else if (t.startsWith('0')) {
    base = 8;
  }
  let v = 0n;
  for (const c of t) {
    const d = parseInt(c, 36);
    if (Number.isNaN(d) || d >= base) break;
    v = v * BigInt(base) + BigInt(d);
    if (v > 0xffffffffffffffffn) return 0xffffffffffffffffn; // ERANGE saturates
  }
  return BigInt.asUintN(64, neg ? -v : v);
}

/** Parse the legacy `__xen_guest` string ("GUEST_OS=linux,XEN_VER=xen-3.0,...") into `info`. */
export function parseGuestInfoString(s: string, info: XenGuestInfo): void {
  info.guestInfoString = s;
  for (const item of s.split(',')) {
    if (item === '') continue;
    const eq = item.indexOf('=');
    const name = eq < 0 ? item : item.slice(0, eq);
    const value = eq < 0 ? '' : item.slice(eq + 1);
    switch (name) {
      case 'LOADER': info.loader = value; break;
      case 'GUEST_OS': info.guestOs = value; break;
      case 'GUEST_VER': info.guestVersion = value; break;
      case 'XEN_VER': info.xenVersion = value; break;
      case 'PAE':
        info.paeModeString = value;
        if (value === 'yes[extended-cr3]') info.pae = 'extended-cr3';
        else if (value.startsWith('yes')) info.pae = 'yes';
        break;
      case 'BSD_SYMTAB': info.bsdSymtab = true; break;
      case 'VIRT_BASE': info.virtBase = strtoull(value); break;
      case 'VIRT_ENTRY': info.entry = strtoull(value); break;
      case 'ELF_PADDR_OFFSET': info.paddrOffset = strtoull(value); break;
      // The legacy value is a page number (relative to VIRT_BASE, added below).
      case 'HYPERCALL_PAGE': info.hypercallPage = BigInt.asUintN(64, strtoull(value) << 12n); break;
      case 'FEATURES': info.featuresString = value; parseFeatures(value, info.features); break;
      default: info.warnings.push(`__xen_guest: unknown key ${JSON.stringify(name)} ignored`);
    }
  }
  if (info.virtBase !== undefined && info.hypercallPage !== undefined) {
    info.hypercallPage = BigInt.asUintN(64, info.hypercallPage + info.virtBase);
  }
}

/**
 * Find and decode the Xen notes (or `__xen_guest` string) of an ELF kernel. With
 * `legacy: false` (PVH), the `__xen_guest` fallback is not used, as in libelf.
 */
export function parseXenNotes(elf: ElfFile, opts: { legacy?: boolean } = {}): XenGuestInfo {
  const info = emptyInfo();
  const budget = { left: MAX_TOTAL_NOTES };
  let count = 0;
  for (const ph of elf.programHeaders) {
    if (ph.type !== PT_NOTE || ph.offset === 0 || ph.filesz === 0) continue;
    const container = `PT_NOTE segment ${ph.index}`;
    for (const n of parseNotes(elf, ph.offset, ph.offset + ph.filesz, noteAlign(elf, ph.align), container, budget)) {
      if (n.name !== 'Xen') continue;
      applyNote(elf, n, info);
      count++;
    }
  }
  if (count > 0) info.source = 'PT_NOTE';
  if (count === 0) {
    for (const s of elf.sections) {
      if (s.index === 0 || s.type !== SHT_NOTE || s.size === 0n) continue;
      const container = `section ${s.index} (${s.name || 'unnamed'})`;
      const start = s.offset;
      for (const n of parseNotes(elf, start, start + Number(s.size), noteAlign(elf, s.addralign), container, budget)) {
        if (n.name !== 'Xen') continue;
        applyNote(elf, n, info);
        count++;
      }
    }
    if (count > 0) info.source = 'SHT_NOTE';
  }
  if (count === 0 && opts.legacy !== false) {
    const s = sectionByName(elf, '__xen_guest');
    if (s) {
      const d = sectionData(elf, s);
      const z = d.indexOf(0);
      parseGuestInfoString(latin1(z >= 0 ? d.subarray(0, z) : d), info);
      info.source = '__xen_guest';
    }
  }
  return info;
}

// ---------------------------------------------------------------------------------------
// Layout

export interface LoadSegment {
  /** Program header index. */
  index: number;
  paddr: bigint;
  /** Where the builder maps it: paddr + virtOffset (PV) or paddr (PVH). */
  vaddr: bigint;
  /** The ELF's own p_vaddr (not used for placement; e.g. Linux's per-CPU segment has 0). */
  elfVaddr: bigint;
  flags: number;
  data: Uint8Array;
  /** Bytes to reserve; those past data.length are zero. */
  memsz: bigint;
}

export interface XenLayout {
  mode: 'pv' | 'pvh';
  virtBase: bigint;
  elfPaddrOffset: bigint;
  /** virtBase - elfPaddrOffset (mod 2^64). */
  virtOffset: bigint;
  /** Lowest p_paddr and highest p_paddr + p_memsz of the loadable segments. */
  pstart: bigint;
  pend: bigint;
  virtKstart: bigint;
  /** End of the image, including the BSD symbol table area when one is loaded. */
  virtKend: bigint;
  /** PV: the virtual entry (ENTRY note, else e_entry). PVH: the physical PHYS32_ENTRY. */
  virtEntry: bigint;
  virtHypercall?: bigint;
  p2mBase?: bigint;
  hvStartLow?: bigint;
  /** The BSD_SYMTAB area in pseudo-physical space, when the kernel asked for it and has a symbol table. */
  bsdSymtab?: { pstart: bigint; pend: bigint; symtab: ElfSection; strtab: ElfSection };
  segments: LoadSegment[];
}

export interface LayoutOptions {
  /** Refuse images whose loadable span (pend - pstart) is larger (default 1 GiB). */
  maxSpan?: bigint;
}

const U64 = (v: bigint) => BigInt.asUintN(64, v);

function layoutFail(msg: string): never {
  throw new KernelImageError('xen-notes', msg);
}

/** The class/machine check of a 64-bit PV kernel (libxenguest's guest type "xen-3.0-x86_64"). */
export function checkPv64(elf: ElfFile): void {
  const { class: cls, machine } = elf.header;
  if (cls === 64 && machine === EM_X86_64) return;
  const mname = machineName(machine);
  if (cls === 32) {
    layoutFail(`ELF class 1 (32-bit) kernel for machine ${mname} is not supported for 64-bit PV` +
      (machine === EM_386 ? ' (32-bit PV guests are not simulated)' : ''));
  }
  layoutFail(`ELF class 2 (64-bit) kernel for machine ${mname} is not an x86_64 kernel`);
}

/**
 * elf_xen_note_check + elf_xen_addr_calc_check: validate the notes for the requested mode and
 * compute the builder's layout. Throws KernelImageError with libelf's reasons.
 */
export function computeXenLayout(elf: ElfFile, info: XenGuestInfo, mode: 'pv' | 'pvh', opts: LayoutOptions = {}): XenLayout {
  const hvm = mode === 'pvh';
  if (hvm) {
    if (elf.header.machine !== EM_X86_64 && elf.header.machine !== EM_386) {
      layoutFail(`ELF${elf.header.class} kernel for machine ${machineName(elf.header.machine)} cannot be booted as PVH on x86`);
    }
  } else {
    checkPv64(elf);
  }
  if (info.source === 'none') {
    layoutFail(`not a Xen-ELF image: no Xen ELF notes${hvm ? '' : " or '__xen_guest' section"} found`);
  }
  // elf_xen_note_check.
  if (hvm) {
    if (info.phys32Entry === undefined) layoutFail('no PHYS32_ENTRY note: the kernel has no PVH entry point');
  } else {
    const okLoader = (info.loader ?? '').startsWith('generic');
    const okOs = (info.guestOs ?? '').startsWith('linux');
    if (!okLoader && !okOs) {
      layoutFail(`will only load images built for the generic loader or Linux images (not loader ${JSON.stringify(info.loader ?? '')} and guest OS ${JSON.stringify(info.guestOs ?? '')})`);
    }
    if (!(info.xenVersion ?? '').startsWith('xen-3.0')) {
      layoutFail(`will only load images built for Xen v3.0 (XEN_VERSION is ${JSON.stringify(info.xenVersion ?? '')})`);
    }
  }

  // elf_parse_binary: the physical extent of the loadable segments.
  const segs = elf.programHeaders.filter((p) => p.type === PT_LOAD && (p.flags & (PF_R | PF_W | PF_X)) !== 0);
  if (segs.length === 0) layoutFail('the ELF image has no loadable (PT_LOAD with R, W or X) segments');
  let pstart = segs[0]!.paddr;
  let pend = 0n;
  for (const p of segs) {
    if (p.paddr < pstart) pstart = p.paddr;
    if (p.paddr + p.memsz > pend) pend = p.paddr + p.memsz;
  }
  const maxSpan = opts.maxSpan ?? 1n << 30n;
  if (pend - pstart > maxSpan) {
    layoutFail(`the loadable segments span ${hex(pend - pstart)} bytes (paddr ${hex(pstart)}-${hex(pend)}), more than the limit of ${hex(maxSpan)}`);
  }

  // elf_xen_addr_calc_check.
  if (!hvm && info.paddrOffset !== undefined && info.virtBase === undefined) {
    layoutFail('ELF_PADDR_OFFSET set, VIRT_BASE unset');
  }
  const virtBase = hvm || info.virtBase === undefined ? 0n : info.virtBase;
  let elfPaddrOffset: bigint;
  if (info.paddrOffset === undefined || hvm) {
    // Legacy __xen_guest images default to VIRT_BASE (their p_paddr held virtual addresses).
    elfPaddrOffset = hvm || info.source !== '__xen_guest' ? 0n : virtBase;
  } else {
    elfPaddrOffset = info.paddrOffset;
  }
  const virtOffset = U64(virtBase - elfPaddrOffset);
  const virtKstart = U64(pstart + virtOffset);
  let virtKend = U64(pend + virtOffset);
  let virtEntry: bigint;
  if (hvm) virtEntry = BigInt(info.phys32Entry!);
  else virtEntry = info.entry ?? elf.header.entry;

  let bsdSymtab: XenLayout['bsdSymtab'];
  if (info.bsdSymtab) {
    const area = bsdSymtabArea(elf, pend);
    if (area) {
      bsdSymtab = area;
      virtKend = U64(area.pend + virtOffset);
    } else {
      info.warnings.push('BSD_SYMTAB requested but the image has no symbol table (SHT_SYMTAB linked to an SHT_STRTAB); none will be loaded');
    }
  }

  if (virtKstart > virtKend || virtEntry < virtKstart || virtEntry > virtKend || virtBase > virtKstart) {
    layoutFail(`ELF start or entries are out of bounds: virt_base ${hex(virtBase)}, kernel ${hex(virtKstart)}-${hex(virtKend)}, entry ${hex(virtEntry)}`);
  }
  if (!hvm && info.initP2m !== undefined && info.initP2m >= virtKstart && info.initP2m < virtKend) {
    layoutFail(`P->M table base ${hex(info.initP2m)} (INIT_P2M) is inside the kernel ${hex(virtKstart)}-${hex(virtKend)}`);
  }
  if (!hvm && info.hypercallPage !== undefined &&
    (info.hypercallPage < virtKstart || info.hypercallPage + 4096n > virtKend || (info.hypercallPage & 0xfffn) !== 0n)) {
    layoutFail(`hypercall page ${hex(info.hypercallPage)} is not a page-aligned page inside the kernel ${hex(virtKstart)}-${hex(virtKend)}`);
  }

  const segments: LoadSegment[] = segs.map((p) => ({
    index: p.index,
    paddr: p.paddr,
    vaddr: U64(p.paddr + virtOffset),
    elfVaddr: p.vaddr,
    flags: p.flags,
    data: segmentData(elf, p),
    memsz: p.memsz,
  }));
  return {
    mode, virtBase, elfPaddrOffset, virtOffset, pstart, pend, virtKstart, virtKend, virtEntry,
    virtHypercall: hvm ? undefined : info.hypercallPage,
    p2mBase: hvm ? undefined : info.initP2m,
    hvStartLow: info.hvStartLow,
    bsdSymtab, segments,
  };
}

// ---------------------------------------------------------------------------------------
// BSD symbol table (libelf's elf_parse_bsdsyms / elf_load_bsdsyms)

const ELF_BSDSYM_SECTIONS = 3;
/** sizeof(struct elf_sym_header): u32 size + the ehdr union (64) + 3 shdr unions (64 each), packed. */
const SYM_HEADER_SIZE = 4 + 64 + ELF_BSDSYM_SECTIONS * 64;

function symtabSections(elf: ElfFile): { symtab: ElfSection; strtab: ElfSection } | undefined {
  for (const s of elf.sections) {
    if (s.index === 0 || s.type !== SHT_SYMTAB) continue;
    if (s.link === 0 || s.link >= elf.sections.length) return undefined;
    const strtab = elf.sections[s.link]!;
    if (strtab.type !== SHT_STRTAB) return undefined;
    return { symtab: s, strtab };
  }
  return undefined;
}

function bsdSymtabArea(elf: ElfFile, pend: bigint): XenLayout['bsdSymtab'] | undefined {
  const t = symtabSections(elf);
  if (!t) return undefined;
  const a = BigInt(elf.header.class === 64 ? 8 : 4);
  const up = (v: bigint) => (v + a - 1n) & ~(a - 1n);
  const pstart = up(pend);
  let sz = up(BigInt(SYM_HEADER_SIZE));
  sz = up(sz + t.symtab.size);
  sz = up(sz + t.strtab.size);
  return { pstart, pend: pstart + sz, ...t };
}

/**
 * The bytes the builder places at `layout.bsdSymtab.pstart` when BSD_SYMTAB is honoured: a
 * u32 size, then a minimal ELF (header + null/symtab/strtab section headers) followed by the
 * symbol and string tables, offsets relative to that ELF header (what NetBSD's
 * xen_init_ksyms reads at `end`).
 */
export function buildBsdSymtab(elf: ElfFile, layout: XenLayout): Uint8Array {
  const area = layout.bsdSymtab;
  if (!area) throw new KernelImageError('xen-notes', 'no BSD symbol table area in this layout');
  const is64 = elf.header.class === 64;
  const le = elf.header.littleEndian;
  const a = is64 ? 8 : 4;
  const up = (v: number) => (v + a - 1) & ~(a - 1);
  const ehdrSize = is64 ? 64 : 52;
  const shdrSize = is64 ? 64 : 40;
  const out = new Uint8Array(Number(area.pend - area.pstart));
  const dv = new DataView(out.buffer);
  const ehdrAt = 4;
  // ELF header, copied and adjusted.
  out.set(elf.bytes.subarray(0, ehdrSize), ehdrAt);
  const w16 = (o: number, v: number) => dv.setUint16(o, v, le);
  const w32 = (o: number, v: number) => dv.setUint32(o, v, le);
  const wAddr = (o: number, v: number) => (is64 ? dv.setBigUint64(o, BigInt(v), le) : dv.setUint32(o, v, le));
  w32(ehdrAt + 20, 1); // e_version
  wAddr(ehdrAt + (is64 ? 32 : 28), 0); // e_phoff
  wAddr(ehdrAt + (is64 ? 40 : 32), 64); // e_shoff: offsetof(elf_header.section)
  w16(ehdrAt + (is64 ? 52 : 40), ehdrSize);
  w16(ehdrAt + (is64 ? 54 : 42), 0);
  w16(ehdrAt + (is64 ? 56 : 44), 0);
  w16(ehdrAt + (is64 ? 58 : 46), shdrSize);
  w16(ehdrAt + (is64 ? 60 : 48), ELF_BSDSYM_SECTIONS);
  w16(ehdrAt + (is64 ? 62 : 50), 0);
  const shAt = (i: number) => 4 + 64 + i * shdrSize;
  const symtabBase = up(SYM_HEADER_SIZE);
  const symSize = Number(area.symtab.size);
  const strtabBase = up(symtabBase + symSize);
  const strSize = Number(area.strtab.size);
  const shdrFile = (s: ElfSection) => Number(elf.header.shoff) + s.index * elf.header.shentsize;
  out.set(elf.bytes.subarray(shdrFile(area.symtab), shdrFile(area.symtab) + shdrSize), shAt(1));
  out.set(elf.bytes.subarray(shdrFile(area.strtab), shdrFile(area.strtab) + shdrSize), shAt(2));
  out.set(sectionData(elf, area.symtab), symtabBase);
  out.set(sectionData(elf, area.strtab), strtabBase);
  wAddr(shAt(1) + (is64 ? 24 : 16), symtabBase - ehdrAt); // sh_offset
  w32(shAt(1) + (is64 ? 40 : 24), 2); // sh_link
  wAddr(shAt(2) + (is64 ? 24 : 16), strtabBase - ehdrAt);
  w32(0, strtabBase + strSize - ehdrAt);
  return out;
}
