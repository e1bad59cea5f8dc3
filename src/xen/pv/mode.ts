// Guest kernel and guest user mode of a 64-bit PV vCPU, and its CPL-3 segment state.
//
// Both modes run at CPL 3 (CS 0xe033, SS 0xe02b). Switching mode (toggle_guest_mode) swaps
// the GS bases (Xen's swapgs: the kernel base is GS_BASE while in kernel mode, the user base
// is kept aside, and the other way round) and loads CR3 with the mode's L4: v.kernelCr3 or
// v.userCr3 (MFNs). Every CR3 load drops the whole TLB: the model has no PCID and runs the
// guest with CR4.PGE clear (as Xen does with XPTI).
//
// GS bases: the CPU's GS base (cpu.seg) holds the active mode's base; the Vcpu field of the
// *inactive* mode is authoritative (the active mode's field is refreshed on every switch and
// on the writes Xen does itself: wrmsr, set_segment_base). gsBase(v, kernel) reads either.
//
// Descriptor tables. The CPU reads descriptors through cpu.gdtrBase/LDTR with ordinary
// paged accesses, so the vCPU's GDT and LDT live where Xen puts them: in the per-domain area
// (L4 slot 260, 0xffff820000000000), 128 KiB per vCPU (GDT_VIRT_START(v), LDT_VIRT_START(v)
// 64 KiB above). Per domain one L3 and one L2 (Xen-owned frames), one L1 per 16 vCPUs:
//   GDT pages 0..13   the frames set_gdt installed (a Xen zero page where there are none)
//   GDT page 14       Xen's reserved GDT page: 0xe008 0xe010 0xe023 0xe02b 0xe033 0xe038
//   LDT pages 0..15   the guest's LDT pages, mapped when first touched (as Xen's shadow LDT)
// GDT and shadow-LDT frames hold a SEG_DESC type reference (mm/pagetype.ts) while mapped;
// this module registers the SEG_DESC validator (check_descriptor on all 512 entries).
// GDTR limit is 0xefff (pages 0..14). The L4 entry (perdomainL4e) must be in every guest
// L4: the mm module copies it with Xen's other slots; as a safety net ensurePerdomainSlot
// writes it into each L4 that CR3 is loaded with (the slot is Xen's: guests cannot use it).
//
// Deviations, until the CPU marks its descriptor-table reads as implicit supervisor
// accesses (cpu/memory.ts implicitSupervisor): the per-domain mappings are user-readable and
// read-only (Xen maps them supervisor read-write), and code/data descriptors get their
// accessed bit set when Xen validates them (check_descriptor), so the CPU never writes an
// accessed bit through the read-only mapping. A guest can read its own GDT/LDT at these
// addresses (on Xen: #PF), and the A bit of a descriptor in its GDT pages is set early.

import type { Cpu } from '../../cpu/cpu.js';
import { SegAttr } from '../../cpu/cpu.js';
import { CpuFault, Vec } from '../../cpu/fault.js';
import { setFlatSeg, updateMode } from '../../cpu/segments.js';
import { Cr4, Seg } from '../../cpu/state.js';
import type { Domain } from '../domain.js';
import { Errno } from '../errno.js';
import { FIRST_RESERVED_GDT_ENTRY, FLAT_KERNEL_CS64, FLAT_KERNEL_SS64, FLAT_USER_CS32 } from '../layout.js';
import { DOMID_XEN } from '../mm/frames.js';
import { PGT, getPageAndType, pageInfo, putPageAndType, registerTypeValidator } from '../mm/pagetype.js';
import type { Vcpu } from '../vcpu.js';
import type { Xen } from '../xen.js';

const TWO32 = 4294967296;
const TWO48 = 281474976710656;

// ---- per-vCPU PV state the Vcpu class does not hold ---------------------------------------

/** Xen's extra per-vCPU PV state (arch.pv.* that vcpu.ts has no field for). */
export class PvState {
  /** The current Xen entry returns with SYSRET (TRAP_syscall in entry_vector): RCX and
   *  R11 take RIP and RFLAGS, CS/SS the flat selectors. False: IRETQ of the saved frame. */
  sysret = false;
  /** A hypercall set RAX itself (a full 64-bit value); the dispatcher leaves it alone. */
  raxSet = false;
  /** The iret hypercall left CS/SS selectors that IRETQ must load (and may fail on). */
  pendingSegs = false;
  /** Guest control registers: CR2 (ctrlreg[2]) as 64-bit halves, and the guest's CR4. */
  cr2Lo = 0; cr2Hi = 0;
  cr4 = 0;
  /** DR7 I/O-breakpoint enables kept aside (dr7_emul). */
  dr7Emul = 0;
  /** Shadow LDT pages mapped (bit per page 0..15) and their frames (each holds a
   *  SEG_DESC type reference while mapped). */
  ldtMapped = 0;
  readonly ldtMfns = new Float64Array(16);
  /** attachPv ran. */
  attached = false;
}

const states = new WeakMap<Vcpu, PvState>();
export function pvState(v: Vcpu): PvState {
  let s = states.get(v);
  if (s === undefined) { s = new PvState(); states.set(v, s); }
  return s;
}

// ---- 64-bit helpers -------------------------------------------------------------------------

/** A 64-bit value given as halves as a 48-bit linear address, or -1 if not canonical. */
export function linearOfHalves(lo: number, hi: number): number {
  if (((hi << 16) >> 16) !== hi) return -1;
  return (hi & 0xffff) * TWO32 + (lo >>> 0);
}
/** The canonical 64-bit form of a 48-bit linear address: low half, high half. */
export function canonLo(lin: number): number { return (lin % TWO32) | 0; }
export function canonHi(lin: number): number {
  const h = Math.floor(lin / TWO32);
  return h >= 0x8000 ? (h | 0xffff0000) : h;
}
/** Wrap a linear address computation into [0, 2^48). */
export function wrap48(lin: number): number { return ((lin % TWO48) + TWO48) % TWO48; }

/** Xen's __addr_ok for a linear address: the lower half, or at/above HYPERVISOR_VIRT_END. */
export function addrOk(lin: number): boolean { return lin >= 0 && (lin < 0x800000000000 || lin >= 0x880000000000); }

// ---- CPL-3 flat segments ---------------------------------------------------------------------

/** Cached attributes of Xen's ring-3 descriptors (accessed bit set). */
export const CS64_3 = 0xfb | SegAttr.L | SegAttr.G;
export const CS32_3 = 0xfb | SegAttr.DB | SegAttr.G;
export const DS_3 = 0xf3 | SegAttr.DB | SegAttr.G;

/** CS = FLAT_KERNEL_CS (0xe033, 64-bit) and SS = FLAT_KERNEL_SS (0xe02b), CPL 3. */
export function setFlatKernelSegs(cpu: Cpu): void {
  setFlatSeg(cpu, Seg.CS, FLAT_KERNEL_CS64, CS64_3);
  setFlatSeg(cpu, Seg.SS, FLAT_KERNEL_SS64, DS_3);
  cpu.cpl = 3;
  updateMode(cpu);
  cpu.endBlock();
}
/** What SYSRET leaves with Xen's STAR: CS 0xe033 (or 0xe023 for SYSRETL), SS 0xe02b. */
export function setSysretSegs(cpu: Cpu, compat: boolean): void {
  if (compat) setFlatSeg(cpu, Seg.CS, FLAT_USER_CS32, CS32_3);
  else setFlatSeg(cpu, Seg.CS, FLAT_KERNEL_CS64, CS64_3);
  setFlatSeg(cpu, Seg.SS, FLAT_KERNEL_SS64, DS_3);
  cpu.cpl = 3;
  updateMode(cpu);
  cpu.endBlock();
}

// ---- control registers -------------------------------------------------------------------

/** The CR0 Xen runs with (PE MP ET NE WP AM PG); a PV guest reads it with its own TS. */
export const XEN_CR0 = 0x80050033;
const CR0_TS = 8;
/** CR4 bits a PV guest controls, and those it sees from Xen's CR4 but cannot change. */
const PV_CR4_GUEST_MASK = Cr4.TSD | Cr4.DE | Cr4.FSGSBASE | Cr4.OSXSAVE;
const PV_CR4_GUEST_VISIBLE = Cr4.PAE | Cr4.MCE | Cr4.OSFXSR | Cr4.OSXMMEXCPT;

/** Xen's own CR4 on this machine (mmu_cr4_features), from the CPU model. */
export function hostCr4(cpu: Cpu): number {
  const m = cpu.model;
  let v = Cr4.PAE | Cr4.OSFXSR | Cr4.OSXMMEXCPT;
  if (m.leaf1Edx & (1 << 7)) v |= Cr4.MCE;
  if (m.leaf1Edx & (1 << 2)) v |= Cr4.DE;
  if (m.leaf1Ecx & (1 << 26)) v |= Cr4.OSXSAVE;
  return v;
}

/** pv_fixup_guest_cr4: the guest's CR4 as it may hold it. */
export function fixupGuestCr4(v: Vcpu, val: number): number {
  const m = v.cpu.model;
  let drop = 0;
  if (!(m.leaf1Edx & (1 << 4))) drop |= Cr4.TSD;
  if (!(m.leaf1Edx & (1 << 2))) drop |= Cr4.DE;
  if (!(m.leaf7Ebx & 1)) drop |= Cr4.FSGSBASE;
  if (!(m.leaf1Ecx & (1 << 26))) drop |= Cr4.OSXSAVE;
  val &= ~drop;
  return ((val & PV_CR4_GUEST_MASK) | (hostCr4(v.cpu) & PV_CR4_GUEST_VISIBLE)) >>> 0;
}

/** pv_make_cr4: the real CR4 while the guest runs (no PGE, no PCID; TSD and FSGSBASE as the
 *  guest chose). */
export function makeCr4(v: Vcpu): number {
  const ps = pvState(v);
  const host = hostCr4(v.cpu) & ~(Cr4.PCIDE | Cr4.PGE | Cr4.TSD | Cr4.FSGSBASE);
  return (host | (ps.cr4 & (Cr4.TSD | Cr4.FSGSBASE))) >>> 0;
}

/** The guest's view of CR0: Xen's CR0 with the guest's TS (fpu_taskswitch). */
export function guestCr0(v: Vcpu): number { return (XEN_CR0 & ~CR0_TS) | (v.fpuTs ? CR0_TS : 0); }

/** fpu_taskswitch: the guest's CR0.TS, which the real CR0 follows (so FPU use raises #NM). */
export function setFpuTs(v: Vcpu, ts: boolean): void {
  v.fpuTs = ts;
  const cpu = v.cpu;
  cpu.cr0 = ts ? (cpu.cr0 | CR0_TS) >>> 0 : (cpu.cr0 & ~CR0_TS) >>> 0;
}

// ---- page-table base and mode switches --------------------------------------------------

/** Load CR3 with an L4 MFN and drop the TLB. */
export function loadCr3(v: Vcpu, mfn: number): void {
  const cpu = v.cpu;
  const pa = mfn * 4096;
  cpu.cr3Lo = (pa % TWO32) | 0;
  cpu.cr3Hi = Math.floor(pa / TWO32) | 0;
  ensurePerdomainSlot(v.domain, mfn);
  cpu.mem.flush();
  cpu.endBlock();
}

/** Load CR3 with the current mode's L4 (call after changing kernelCr3/userCr3:
 *  MMUEXT_NEW_BASEPTR / NEW_USER_BASEPTR). */
export function updateCr3(v: Vcpu): void {
  loadCr3(v, v.kernelMode ? v.kernelCr3 : v.userCr3);
}

/** toggle_guest_mode: swapgs, flip the mode, load the other L4. */
export function toggleGuestMode(v: Vcpu): void {
  const s = v.cpu.seg;
  if (v.kernelMode) {
    v.gsBaseKernelLo = s.baseLo[Seg.GS]; v.gsBaseKernelHi = s.baseHi[Seg.GS];
    s.baseLo[Seg.GS] = v.gsBaseUserLo; s.baseHi[Seg.GS] = v.gsBaseUserHi;
  } else {
    v.gsBaseUserLo = s.baseLo[Seg.GS]; v.gsBaseUserHi = s.baseHi[Seg.GS];
    s.baseLo[Seg.GS] = v.gsBaseKernelLo; s.baseHi[Seg.GS] = v.gsBaseKernelHi;
  }
  v.kernelMode = !v.kernelMode;
  updateCr3(v);
}

/** A GS base as [lo, hi]: the kernel's (kernel = true) or the user's, wherever it lives now. */
export function gsBase(v: Vcpu, kernel: boolean): [number, number] {
  const s = v.cpu.seg;
  if (kernel === v.kernelMode) return [s.baseLo[Seg.GS], s.baseHi[Seg.GS]];
  return kernel ? [v.gsBaseKernelLo, v.gsBaseKernelHi] : [v.gsBaseUserLo, v.gsBaseUserHi];
}
/** Set the kernel's or the user's GS base (the CPU's if that mode is active). */
export function setGsBase(v: Vcpu, kernel: boolean, lo: number, hi: number): void {
  const s = v.cpu.seg;
  if (kernel === v.kernelMode) { s.baseLo[Seg.GS] = lo | 0; s.baseHi[Seg.GS] = hi | 0; }
  if (kernel) { v.gsBaseKernelLo = lo | 0; v.gsBaseKernelHi = hi | 0; } else { v.gsBaseUserLo = lo | 0; v.gsBaseUserHi = hi | 0; }
}

// ---- the per-domain area: GDT and LDT mappings ---------------------------------------------

export const PERDOMAIN_L4_SLOT = 260;
/** 0xffff820000000000 as a 48-bit linear address. */
export const PERDOMAIN_VIRT_START = 0x820000000000;
const GDT_LDT_VCPU_BYTES = 0x20000;
const GDT_LDT_END = PERDOMAIN_VIRT_START + 0x40000000; // one L3 slot
export const FIRST_RESERVED_GDT_PAGE = 14;
/** GDTR limit: up to the end of Xen's reserved page (LAST_RESERVED_GDT_BYTE). */
export const GDT_LIMIT = FIRST_RESERVED_GDT_PAGE * 4096 + 4095;
/** Xen's selector for the LDT descriptor it loads (what sldt shows). */
const LDT_SELECTOR = 0xe050;

/** GDT_VIRT_START(v) and LDT_VIRT_START(v) (48-bit linear). */
export function gdtVirt(v: Vcpu): number { return PERDOMAIN_VIRT_START + v.id * GDT_LDT_VCPU_BYTES; }
export function ldtVirt(v: Vcpu): number { return gdtVirt(v) + 0x10000; }

// Entry bits: present, writable, user, accessed; NX in the high word.
const PTE_TABLE = 0x27, PTE_RO_LEAF = 0x25, PTE_NX_HI = 0x80000000 | 0;

/** Xen's reserved GDT page: index within the page -> descriptor [lo, hi] (A bits set). */
const RESERVED_GDT: [number, number, number][] = [
  [1, 0x0000ffff, 0x00af9b00], // 0xe008 ring 0 code, 64-bit
  [2, 0x0000ffff, 0x00cf9300], // 0xe010 ring 0 data
  [4, 0x0000ffff, 0x00cffb00], // 0xe023 ring 3 code, compatibility
  [5, 0x0000ffff, 0x00cff300], // 0xe02b ring 3 data
  [6, 0x0000ffff, 0x00affb00], // 0xe033 ring 3 code, 64-bit
  [7, 0x0000ffff, 0x00cf9b00], // 0xe038 ring 0 code, compatibility
  [31, 0x00000000, 0x00009100], // 0xe0f8 per-CPU entry (limit = CPU number: 0)
];

interface XenPv { gdtMfn: number; zeroMfn: number }
interface DomPv { l3: number; l2: number; l1: Map<number, number> }
const xenPv = new WeakMap<Xen, XenPv>();
const domPv = new WeakMap<Domain, DomPv>();

function allocXenFrame(xen: Xen): number {
  const mfn = xen.frames.alloc(DOMID_XEN);
  if (mfn < 0) throw new Error('out of machine memory for Xen\'s own tables');
  return mfn;
}
function setPte(xen: Xen, tableMfn: number, index: number, lo: number, hi: number): void {
  const pa = tableMfn * 4096 + index * 8;
  xen.machine.set32(pa, lo);
  xen.machine.set32(pa + 4, hi);
}
function pteTo(mfn: number, flags: number, hiFlags = 0): [number, number] {
  const pa = mfn * 4096;
  return [((pa % TWO32) | flags) | 0, (Math.floor(pa / TWO32) | hiFlags) | 0];
}

function xenPvOf(xen: Xen): XenPv {
  let x = xenPv.get(xen);
  if (x === undefined) {
    const gdtMfn = allocXenFrame(xen), zeroMfn = allocXenFrame(xen);
    for (const [i, lo, hi] of RESERVED_GDT) { xen.machine.set32(gdtMfn * 4096 + i * 8, lo); xen.machine.set32(gdtMfn * 4096 + i * 8 + 4, hi); }
    x = { gdtMfn, zeroMfn };
    xenPv.set(xen, x);
  }
  return x;
}
function domPvOf(d: Domain): DomPv {
  let p = domPv.get(d);
  if (p === undefined) {
    const xen = d.xen;
    const l3 = allocXenFrame(xen), l2 = allocXenFrame(xen);
    const [lo, hi] = pteTo(l2, PTE_TABLE);
    setPte(xen, l3, 0, lo, hi);
    p = { l3, l2, l1: new Map() };
    domPv.set(d, p);
  }
  return p;
}
/** Free the per-domain area's tables of a dead domain (domain teardown). */
export function releasePerdomain(d: Domain): void {
  const p = domPv.get(d);
  if (!p) return;
  const f = d.xen.frames;
  f.release(p.l3); f.release(p.l2);
  for (const l1 of p.l1.values()) f.release(l1);
  domPv.delete(d);
}

/** The L1 frame holding vCPU v's GDT/LDT entries, and the index of its first entry. */
function vcpuL1(v: Vcpu): [number, number] {
  const d = v.domain, p = domPvOf(d);
  const group = Math.floor(v.id / 16);
  let l1 = p.l1.get(group);
  if (l1 === undefined) {
    l1 = allocXenFrame(d.xen);
    p.l1.set(group, l1);
    const [lo, hi] = pteTo(l1, PTE_TABLE);
    setPte(d.xen, p.l2, group, lo, hi);
  }
  return [l1, (v.id % 16) * 32];
}

/** The L4 entry (slot PERDOMAIN_L4_SLOT) every L4 of d must hold, as [lo, hi]. */
export function perdomainL4e(d: Domain): [number, number] {
  return pteTo(domPvOf(d).l3, PTE_TABLE);
}

/** Write the per-domain slot into an L4 of d if it is not there (see the header); true if
 *  it had to. */
export function ensurePerdomainSlot(d: Domain, l4Mfn: number): boolean {
  const xen = d.xen;
  if (l4Mfn < 0 || l4Mfn >= xen.frames.frames || xen.frames.owner[l4Mfn] !== d.id) return false;
  const [lo, hi] = perdomainL4e(d);
  const pa = l4Mfn * 4096 + PERDOMAIN_L4_SLOT * 8;
  if ((xen.machine.u32(pa) | 0) === lo && (xen.machine.u32(pa + 4) | 0) === hi) return false;
  setPte(xen, l4Mfn, PERDOMAIN_L4_SLOT, lo, hi);
  return true;
}

/** Whether a linear address is in the per-domain GDT/LDT area. */
export function inPerdomainArea(lin: number): boolean { return lin >= PERDOMAIN_VIRT_START && lin < GDT_LDT_END; }

/** The MFN of the L4 CR3 holds. */
export function currentL4(v: Vcpu): number { return Math.floor(((v.cpu.cr3Hi >>> 0) * TWO32 + (v.cpu.cr3Lo >>> 0)) / 4096); }

/** SEG_DESC type validation (alloc_segdesc_page): every descriptor of the page passes
 *  checkDescriptor, whose fix-ups are written back. */
registerTypeValidator(PGT.SEG_DESC, {
  validate: (pi, mfn) => (validateDescPage(pi.xen, mfn) ? 0 : -Errno.EINVAL),
  invalidate: () => {},
});

/** pv_set_gdt: take SEG_DESC references on the new frames (all or none), drop those of the
 *  old GDT, and map the new one. 0 or -EINVAL. */
export function installGdt(v: Vcpu, frames: readonly number[], entries: number): number {
  const d = v.domain, pi = pageInfo(d.xen);
  for (let i = 0; i < frames.length; i++) {
    if (getPageAndType(pi, frames[i], PGT.SEG_DESC, d) !== 0) {
      while (i-- > 0) putPageAndType(pi, frames[i]);
      return -Errno.EINVAL;
    }
  }
  destroyGdt(v);
  v.gdtFrames = frames.slice();
  v.gdtEnts = entries;
  mapGdt(v, frames);
  return 0;
}

/** pv_destroy_gdt: drop the GDT frames' references and map the zero page instead. */
export function destroyGdt(v: Vcpu): void {
  const pi = pageInfo(v.domain.xen);
  for (const mfn of v.gdtFrames) putPageAndType(pi, mfn);
  v.gdtFrames = [];
  v.gdtEnts = 0;
  mapGdt(v, []);
}

/** Map v's GDT pages: frames[i] for page i (zero page beyond), Xen's page at 14. */
export function mapGdt(v: Vcpu, frames: readonly number[]): void {
  const xen = v.domain.xen, x = xenPvOf(xen);
  const [l1, base] = vcpuL1(v);
  for (let i = 0; i < FIRST_RESERVED_GDT_PAGE; i++) {
    const [lo, hi] = pteTo(i < frames.length ? frames[i] : x.zeroMfn, PTE_RO_LEAF, PTE_NX_HI);
    setPte(xen, l1, base + i, lo, hi);
  }
  const [lo, hi] = pteTo(x.gdtMfn, PTE_RO_LEAF, PTE_NX_HI);
  setPte(xen, l1, base + FIRST_RESERVED_GDT_PAGE, lo, hi);
  setPte(xen, l1, base + 15, 0, 0);
  v.cpu.mem.flush();
}

/** Point the CPU at v's GDT (GDTR) and LDT (LDTR) in the per-domain area. */
export function loadDescriptorTables(v: Vcpu): void {
  const cpu = v.cpu;
  cpu.gdtrBase = gdtVirt(v);
  cpu.gdtrLimit = GDT_LIMIT;
  loadLdt(v);
}

/** Validate and fix up one descriptor as Xen's check_descriptor does for a 64-bit PV
 *  domain: DPL raised to 3, only code/data, type-0 (the upper half of a gate) and call
 *  gates to the guest's or Xen's flat code selectors allowed. Returns the descriptor to
 *  store as [lo, hi], or null if it is refused. (Sets the accessed bit of code/data: see the
 *  header.) */
export function checkDescriptor(lo: number, hi: number): [number, number] | null {
  if (!(hi & 0x8000)) return [lo, hi]; // not present: always faults, so it is safe
  const dpl = (hi >>> 13) & 3;
  const b = (hi & ~0x6000) | ((dpl < 3 ? 3 : dpl) << 13);
  if (b & 0x1000) return [lo, (b | 0x100) | 0]; // code or data
  const type = (b >>> 8) & 0xf;
  if (type === 0) return [lo, hi]; // harmless: the second half of a call gate
  if (type !== 0xc) return null;
  const cs = lo >>> 16;
  const okCs = (cs >>> 3) < FIRST_RESERVED_GDT_ENTRY || (cs & ~3) === (FLAT_KERNEL_CS64 & ~3) ||
    (cs & ~3) === (FLAT_USER_CS32 & ~3) || (cs & 4) !== 0;
  if (!okCs) return null;
  // DPL 0 in the gate (it is emulated on #GP); the original DPL goes in the selector's RPL.
  const gateDpl = (b >>> 13) & 3;
  const nb = b & ~0x6000;
  const nlo = (lo & 0xffff) | ((((cs & ~3) | gateDpl) & 0xffff) << 16);
  if (nb & 0xff) return null;
  return [nlo | 0, nb | 0];
}

/** Validate a whole descriptor page in place (alloc_segdesc_page); false if any entry is bad. */
export function validateDescPage(xen: Xen, mfn: number): boolean {
  const m = xen.machine, base = mfn * 4096;
  const fixed: [number, number][] = [];
  for (let i = 0; i < 512; i++) {
    const r = checkDescriptor(m.u32(base + i * 8) | 0, m.u32(base + i * 8 + 4) | 0);
    if (r === null) return false;
    fixed.push(r);
  }
  for (let i = 0; i < 512; i++) {
    if ((m.u32(base + i * 8) | 0) !== fixed[i][0]) m.set32(base + i * 8, fixed[i][0]);
    if ((m.u32(base + i * 8 + 4) | 0) !== fixed[i][1]) m.set32(base + i * 8 + 4, fixed[i][1]);
  }
  return true;
}

/** Load LDTR from v.ldtBase/ldtEnts (load_LDT). */
export function loadLdt(v: Vcpu): void {
  const s = v.cpu.seg;
  if (v.ldtEnts === 0) {
    s.sel[Seg.LDTR] = 0; s.baseLo[Seg.LDTR] = 0; s.baseHi[Seg.LDTR] = 0; s.limit[Seg.LDTR] = 0; s.attr[Seg.LDTR] = 0;
    return;
  }
  const base = ldtVirt(v);
  s.sel[Seg.LDTR] = LDT_SELECTOR;
  s.baseLo[Seg.LDTR] = canonLo(base); s.baseHi[Seg.LDTR] = canonHi(base);
  s.limit[Seg.LDTR] = v.ldtEnts * 8 - 1;
  s.attr[Seg.LDTR] = 0x82; // present LDT
}

/** Unmap the shadow LDT pages (pv_destroy_ldt), dropping their references; true if any
 *  was mapped. */
export function destroyLdt(v: Vcpu): boolean {
  const ps = pvState(v);
  if (ps.ldtMapped === 0) return false;
  const [l1, base] = vcpuL1(v);
  const pi = pageInfo(v.domain.xen);
  for (let i = 0; i < 16; i++) {
    if (!(ps.ldtMapped & (1 << i))) continue;
    setPte(v.domain.xen, l1, base + 16 + i, 0, 0);
    putPageAndType(pi, ps.ldtMfns[i]);
  }
  ps.ldtMapped = 0;
  return true;
}

/** MMUEXT_SET_LDT (for the mm module): `linear` is the LDT's 48-bit linear address (-1 if
 *  not canonical), ents its entry count. Returns 0 or -EINVAL. */
export function setLdt(v: Vcpu, linear: number, ents: number): number {
  const ptr = ents ? linear : 0;
  if ((ptr & 0xfff) !== 0 || !addrOk(ptr) || ents > 8192 || ents < 0) {
    v.domain.xen.printk(`d${v.domain.id}v${v.id} Bad args to SET_LDT: ptr=${ptr.toString(16)}, ents=${ents.toString(16)}`);
    return -Errno.EINVAL;
  }
  if (v.ldtEnts !== ents || v.ldtBase !== ptr) {
    if (destroyLdt(v)) v.cpu.mem.flush();
    v.ldtBase = ptr;
    v.ldtEnts = ents;
    loadLdt(v);
  }
  return 0;
}

/** The L1 entry mapping `lin` in the guest's kernel page tables (guest_get_eff_kern_l1e),
 *  as [lo, hi], or null when a level is not present (or maps a large page). */
export function guestKernelL1e(v: Vcpu, lin: number): [number, number] | null {
  const m = v.domain.xen.machine;
  let table = v.kernelCr3 * 4096;
  for (let level = 4; level >= 1; level--) {
    const shift = 12 + 9 * (level - 1);
    const idx = Math.floor(lin / 2 ** shift) % 512;
    const pa = table + idx * 8;
    if (pa + 8 > v.domain.xen.phys.size) return null;
    const lo = m.u32(pa) | 0, hi = m.u32(pa + 4) | 0;
    if (!(lo & 1)) return null;
    if (level === 1) return [lo, hi];
    if (level <= 3 && (lo & 0x80)) return null;
    table = (hi & 0xfffff) * TWO32 + ((lo >>> 12) << 12 >>> 0);
  }
  return null;
}

/** Map the shadow LDT page holding byte `offset` of the LDT (pv_map_ldt_shadow_page). */
export function mapLdtShadowPage(v: Vcpu, offset: number): boolean {
  if (offset < 0 || (offset >>> 3) >= v.ldtEnts) return false;
  const lin = v.ldtBase + offset;
  const e = guestKernelL1e(v, lin);
  if (e === null) return false;
  const xen = v.domain.xen, ps = pvState(v);
  const mfn = (e[1] & 0xfffff) * 1048576 + (e[0] >>> 12);
  if (mfn >= xen.frames.frames) return false;
  const page = offset >>> 12;
  if (ps.ldtMapped & (1 << page)) return false; // mapped, yet it faulted: not an LDT matter
  if (getPageAndType(pageInfo(xen), mfn, PGT.SEG_DESC, v.domain) !== 0) return false;
  const [l1, base] = vcpuL1(v);
  const [lo, hi] = pteTo(mfn, PTE_RO_LEAF, PTE_NX_HI);
  setPte(xen, l1, base + 16 + page, lo, hi);
  ps.ldtMapped |= 1 << page;
  ps.ldtMfns[page] = mfn;
  v.cpu.mem.flush();
  return true;
}

/** A #PF at `lin` that a shadow LDT mapping fixes (the CPU reading an LDT descriptor):
 *  'fixed' (retry), 'gp' (the LDT address would be non-canonical: #GP with the selector),
 *  'pf' (pass the #PF on at ldtBase + offset), or null if lin is not in v's LDT area. */
export function ldtFault(v: Vcpu, lin: number): { kind: 'fixed' } | { kind: 'gp'; ec: number } | { kind: 'pf'; addr: number } | null {
  const base = ldtVirt(v);
  if (lin < base || lin >= base + 0x10000 || lin >= GDT_LDT_END) return null;
  const offset = lin - base;
  if (mapLdtShadowPage(v, offset)) return { kind: 'fixed' };
  // ldt_base + offset past the top of the lower half is non-canonical: #GP(offset | TI).
  const target = v.ldtBase + offset;
  if (v.ldtBase < 0x800000000000 && target >= 0x800000000000) return { kind: 'gp', ec: ((offset & ~3) & 0xffff) | 4 };
  return { kind: 'pf', addr: wrap48(target) };
}

/** Run fn, mapping shadow LDT pages it faults on (at most twice), as Xen's #PF handler does
 *  for descriptor loads. */
export function withLdtFixups<T>(v: Vcpu, fn: () => T): T {
  for (let tries = 0; ; tries++) {
    try {
      return fn();
    } catch (e) {
      if (tries >= 2 || !(e instanceof CpuFault) || e.vector !== Vec.PF) throw e;
      const f = ldtFault(v, e.cr2);
      if (f === null || f.kind !== 'fixed') throw e;
    }
  }
}

