// System instructions: far jmp/call/ret and iret, segment register moves, pushes, pops and
// far-pointer loads, the descriptor-table instructions (0F 00, 0F 01), control and debug
// registers, rdmsr/wrmsr, syscall/sysret, sysenter/sysexit, swapgs, invlpg/invpcid,
// xgetbv/xsetbv, clts, invd/wbinvd, vmcall/vmmcall (to cpu.hooks.hypercall).
// The protection logic lives in ../segments.ts and ../interrupts.ts, the MSRs in ../msr.ts.
//
// Not modelled: task switches, virtual-8086 mode, debug-register breakpoints and DR7.GD,
// monitor/mwait (#UD: CPUID does not offer them), mov to/from CR/DR with mod != 3 (hardware
// ignores mod; the decoder would read a SIB/displacement; assemblers never emit it).

import type { Cpu } from '../cpu.js';
import { SegAttr } from '../cpu.js';
import { Cpuid1Ecx, Cpuid1Edx, CpuidExt1Edx } from '../cpuid.js';
import { CpuFault, Vec, gp0, ud } from '../fault.js';
import { FS, getFlags, materialize, setFlags } from '../flags.js';
import { def, Imm, Map as OpMap, type Handler, type Insn } from '../insn.js';
import { iret } from '../interrupts.js';
import { Msr, rdmsr, wrmsr } from '../msr.js';
import {
  descAddr, descLimit, farReturn, farTransfer, fetchDesc, loadSeg, newDesc,
  setFlatSeg, setSegCache, sysRd32, sysWr32, updateMode, Acc, SysType,
} from '../segments.js';
import { Cr0, Cr4, Efer, F, Mode, Seg } from '../state.js';
import { checkCpl0, rdtscpHandler } from './misc.js';

const TWO32 = 4294967296;

function canonical(hi: number): boolean { return ((hi << 16) >> 16) === hi; }
function notReal(cpu: Cpu): void { if (cpu.mode === Mode.Real) ud(); }
/** UMIP: sgdt sidt sldt smsw str are #GP(0) above CPL 0. */
function umip(cpu: Cpu): void { if ((cpu.cr4 & Cr4.UMIP) && cpu.cpl > 0) gp0(); }

/** A 16-bit Ew source (selectors, msw). */
function readEw(cpu: Cpu, d: Insn): number {
  return d.mod === 3 ? cpu.r[d.rm * 2] & 0xffff : cpu.rd(cpu.ea(d), 2);
}
/** Store a selector-sized value to Ew: memory takes 16 bits, a register the operand size
 *  (zero-extended for 32 and 64, as current processors do). */
function writeEw(cpu: Cpu, d: Insn, v: number): void {
  if (d.mod === 3) cpu.setReg(d.rm, d.osz, v, 0);
  else cpu.wr(cpu.ea(d), 2, v, 0);
}
function setZF(cpu: Cpu, z: boolean): void {
  const f = cpu.f;
  materialize(f);
  f[FS.FLAGS] = z ? f[FS.FLAGS] | F.ZF : f[FS.FLAGS] & ~F.ZF;
}

// ---- far transfers --------------------------------------------------------------------

const jmpFarAp: Handler = (cpu, d) => farTransfer(cpu, d.imm2, d.imm, 0, d.osz, false);
const callFarAp: Handler = (cpu, d) => farTransfer(cpu, d.imm2, d.imm, 0, d.osz, true);

/** FF /3 and /5: m16:16, m16:32 or (REX.W, Intel) m16:64, offset first. */
function farIndirect(cpu: Cpu, d: Insn, call: boolean): void {
  const off = cpu.rd(cpu.ea(d), d.osz), offHi = d.osz === 8 ? cpu.t : 0;
  const sel = cpu.rd(cpu.ea(d, d.osz), 2);
  farTransfer(cpu, sel, off, offHi, d.osz, call);
}
export const callFarIndirect: Handler = (cpu, d) => farIndirect(cpu, d, true);
export const jmpFarIndirect: Handler = (cpu, d) => farIndirect(cpu, d, false);

const retf: Handler = (cpu, d) => farReturn(cpu, d.osz, 0);
const retfImm: Handler = (cpu, d) => farReturn(cpu, d.osz, d.imm & 0xffff);
const iretH: Handler = (cpu, d) => iret(cpu, d.osz);

// ---- segment registers ----------------------------------------------------------------

/** mov Sreg, Ew (8E): CS and the undefined 6, 7 are #UD. mov ss holds off interrupts for
 *  one instruction. */
const movSwEw: Handler = (cpu, d) => {
  const seg = d.reg & 7;
  loadSeg(cpu, seg, readEw(cpu, d));
  if (seg === Seg.SS) { cpu.inhibitIrq = true; cpu.endBlock(); }
};
/** mov Ew, Sreg (8C) */
const movEwSw: Handler = (cpu, d) => writeEw(cpu, d, cpu.seg.sel[d.reg & 7]);

function pushSeg(seg: number): Handler {
  // A 32/64-bit push stores the selector zero-extended.
  return (cpu, d) => cpu.push(d.osz, cpu.seg.sel[seg], 0);
}
function popSeg(seg: number): Handler {
  return (cpu, d) => {
    const v = cpu.peek(d.osz, 0) & 0xffff;
    if (seg !== Seg.SS) { loadSeg(cpu, seg, v); cpu.adjustSp(d.osz); return; }
    // The increment uses the old stack's size; a failed load leaves RSP as it was.
    const r = cpu.r, sl = r[8], sh = r[9];
    cpu.adjustSp(d.osz);
    try { loadSeg(cpu, Seg.SS, v); } catch (e) { r[8] = sl; r[9] = sh; throw e; }
    cpu.inhibitIrq = true;
    cpu.endBlock();
  };
}

/** lds les lss lfs lgs: Gv = offset, Sreg = selector from m16:16/32/64. */
function loadFar(seg: number): Handler {
  return (cpu, d) => {
    const off = cpu.rd(cpu.ea(d), d.osz), offHi = d.osz === 8 ? cpu.t : 0;
    const sel = cpu.rd(cpu.ea(d, d.osz), 2);
    loadSeg(cpu, seg, sel);
    cpu.setReg(d.reg, d.osz, off, offHi);
  };
}

// ---- 0F 00: sldt str lldt ltr verr verw ---------------------------------------------

const sldt: Handler = (cpu, d) => { notReal(cpu); umip(cpu); writeEw(cpu, d, cpu.seg.sel[Seg.LDTR]); };
const str: Handler = (cpu, d) => { notReal(cpu); umip(cpu); writeEw(cpu, d, cpu.seg.sel[Seg.TR]); };

const sysD = newDesc(), sysHi = newDesc();

/** The upper 8 bytes of a 16-byte GDT system descriptor (long mode). #GP(sel) past the
 *  limit or if its type field is not 0; the base must be canonical. Returns base 63:32. */
function upperHalf(cpu: Cpu, sel: number, addr: number): number {
  if ((sel & 0xfff8) + 15 > cpu.gdtrLimit) throw new CpuFault(Vec.GP, sel & 0xfffc);
  sysHi.lo = sysRd32(cpu, addr + 8); sysHi.hi = sysRd32(cpu, addr + 12);
  if ((sysHi.hi >>> 8) & 0x1f) throw new CpuFault(Vec.GP, sel & 0xfffc);
  if (!canonical(sysHi.lo)) throw new CpuFault(Vec.GP, sel & 0xfffc);
  return sysHi.lo;
}

const lldt: Handler = (cpu, d) => {
  notReal(cpu); checkCpl0(cpu);
  const sel = readEw(cpu, d);
  const s = cpu.seg;
  if ((sel & 0xfffc) === 0) { setSegCache(cpu, Seg.LDTR, sel, null); return; }
  if (sel & 4) throw new CpuFault(Vec.GP, sel & 0xfffc);
  const a = fetchDesc(cpu, sel, sysD);
  if (((sysD.hi >>> 8) & 0x1f) !== SysType.LDT) throw new CpuFault(Vec.GP, sel & 0xfffc);
  const hi = (cpu.efer & Efer.LMA) ? upperHalf(cpu, sel, a) : 0;
  if (!(sysD.hi & 0x8000)) throw new CpuFault(Vec.NP, sel & 0xfffc);
  setSegCache(cpu, Seg.LDTR, sel, sysD);
  s.baseHi[Seg.LDTR] = hi;
};

const ltr: Handler = (cpu, d) => {
  notReal(cpu); checkCpl0(cpu);
  const sel = readEw(cpu, d);
  if ((sel & 0xfffc) === 0) gp0();
  if (sel & 4) throw new CpuFault(Vec.GP, sel & 0xfffc);
  const a = fetchDesc(cpu, sel, sysD);
  const type = (sysD.hi >>> 8) & 0x1f;
  const long = (cpu.efer & Efer.LMA) !== 0;
  if (type !== SysType.TSS && (long || type !== SysType.TSS16)) throw new CpuFault(Vec.GP, sel & 0xfffc);
  const hi = long ? upperHalf(cpu, sel, a) : 0;
  if (!(sysD.hi & 0x8000)) throw new CpuFault(Vec.NP, sel & 0xfffc);
  sysD.hi |= 0x200; // busy
  sysWr32(cpu, a + 4, sysD.hi);
  setSegCache(cpu, Seg.TR, sel, sysD);
  cpu.seg.baseHi[Seg.TR] = hi;
};

/** The descriptor of sel as lar/lsl/verr/verw see it: false (ZF = 0) for a null selector
 *  or one outside its table; the descriptor is then in sysD. */
function peekDesc(cpu: Cpu, sel: number): boolean {
  if ((sel & 0xfffc) === 0) return false;
  let a: number;
  try { a = descAddr(cpu, sel); } catch { return false; }
  sysD.lo = sysRd32(cpu, a); sysD.hi = sysRd32(cpu, a + 4);
  return true;
}
/** Visible at CPL and RPL: conforming code always; everything else needs DPL >= both. */
function visible(cpu: Cpu, sel: number, acc: number): boolean {
  if ((acc & (Acc.S | Acc.CODE | Acc.CE)) === (Acc.S | Acc.CODE | Acc.CE)) return true;
  const dpl = (acc >> 5) & 3;
  return dpl >= cpu.cpl && dpl >= (sel & 3);
}
// System types lar/lsl accept, as bit masks over the type: legacy and long mode.
const LAR_LEGACY = (1 << 1) | (1 << 2) | (1 << 3) | (1 << 4) | (1 << 5) | (1 << 9) | (1 << 0xb) | (1 << 0xc);
const LAR_LONG = (1 << 2) | (1 << 9) | (1 << 0xb) | (1 << 0xc);
const LSL_LEGACY = (1 << 1) | (1 << 2) | (1 << 3) | (1 << 9) | (1 << 0xb);
const LSL_LONG = (1 << 2) | (1 << 9) | (1 << 0xb);

function larLslOk(cpu: Cpu, sel: number, lsl: boolean): boolean {
  if (!peekDesc(cpu, sel)) return false;
  const acc = (sysD.hi >>> 8) & 0xff;
  if (!(acc & Acc.S)) {
    const long = (cpu.efer & Efer.LMA) !== 0;
    const ok = lsl ? (long ? LSL_LONG : LSL_LEGACY) : (long ? LAR_LONG : LAR_LEGACY);
    if (!((ok >> (acc & 0xf)) & 1)) return false;
  }
  return visible(cpu, sel, acc);
}

/** lar Gv, Ew (0F 02): the access rights (bits 8..23 of the high word; 8..15 for 16-bit). */
const lar: Handler = (cpu, d) => {
  notReal(cpu);
  const sel = readEw(cpu, d);
  const ok = larLslOk(cpu, sel, false);
  if (ok) cpu.setReg(d.reg, d.osz, d.osz === 2 ? sysD.hi & 0xff00 : sysD.hi & 0x00ffff00, 0);
  setZF(cpu, ok);
};
/** lsl Gv, Ew (0F 03): the byte-granular limit. */
const lsl: Handler = (cpu, d) => {
  notReal(cpu);
  const sel = readEw(cpu, d);
  const ok = larLslOk(cpu, sel, true);
  if (ok) { const lim = descLimit(sysD); cpu.setReg(d.reg, d.osz, d.osz === 2 ? lim & 0xffff : lim | 0, 0); }
  setZF(cpu, ok);
};
function verify(write: boolean): Handler {
  return (cpu, d) => {
    notReal(cpu);
    const sel = readEw(cpu, d);
    let ok = peekDesc(cpu, sel);
    if (ok) {
      const acc = (sysD.hi >>> 8) & 0xff;
      if (!(acc & Acc.S)) ok = false;
      else if (write) ok = (acc & (Acc.CODE | Acc.RW)) === Acc.RW && visible(cpu, sel, acc);
      else ok = ((acc & Acc.CODE) === 0 || (acc & Acc.RW) !== 0) && visible(cpu, sel, acc);
    }
    setZF(cpu, ok);
  };
}
const grp6: (Handler | undefined)[] = [sldt, str, lldt, ltr, verify(false), verify(true), undefined, undefined];

// ---- 0F 01 ----------------------------------------------------------------------------

/** lgdt / lidt: limit, then a 24/32-bit base (64-bit in 64-bit mode, canonical). */
function loadDtr(idt: boolean): Handler {
  return (cpu, d) => {
    checkCpl0(cpu);
    const limit = cpu.rd(cpu.ea(d), 2);
    let base: number;
    if (cpu.mode === Mode.Long64) {
      const lo = cpu.rd(cpu.ea(d, 2), 4), hi = cpu.rd(cpu.ea(d, 6), 4);
      if (!canonical(hi)) gp0();
      base = (hi & 0xffff) * TWO32 + (lo >>> 0);
    } else {
      base = cpu.rd(cpu.ea(d, 2), 4) >>> 0;
      if (d.osz === 2) base &= 0xffffff;
    }
    if (idt) { cpu.idtrBase = base; cpu.idtrLimit = limit; } else { cpu.gdtrBase = base; cpu.gdtrLimit = limit; }
  };
}
/** sgdt / sidt: limit and base (32 bits outside 64-bit mode whatever the operand size). */
function storeDtr(idt: boolean): Handler {
  return (cpu, d) => {
    umip(cpu);
    const base = idt ? cpu.idtrBase : cpu.gdtrBase, limit = idt ? cpu.idtrLimit : cpu.gdtrLimit;
    const lin = cpu.ea(d);
    if (cpu.mode === Mode.Long64) {
      const lo = cpu.ripHalves(base), hi = cpu.t; // sign-extends bit 47: the canonical form
      cpu.mem.probeWrite(cpu.ea(d, 2), 8);
      cpu.wr(lin, 2, limit, 0);
      cpu.wr(cpu.ea(d, 2), 8, lo, hi);
    } else {
      cpu.mem.probeWrite(cpu.ea(d, 2), 4);
      cpu.wr(lin, 2, limit, 0);
      cpu.wr(cpu.ea(d, 2), 4, base | 0, 0);
    }
  };
}
/** smsw: the low 16 bits of CR0 to memory; a register gets CR0 at the operand size. */
const smsw: Handler = (cpu, d) => {
  umip(cpu);
  if (d.mod === 3) cpu.setReg(d.rm, d.osz, cpu.cr0 | 0, 0);
  else cpu.wr(cpu.ea(d), 2, cpu.cr0 & 0xffff, 0);
};
/** lmsw: PE MP EM TS from the source; PE can be set but not cleared. */
const lmsw: Handler = (cpu, d) => {
  checkCpl0(cpu);
  const v = readEw(cpu, d);
  const cr0 = ((cpu.cr0 & ~0xe) | (v & 0xf) | (cpu.cr0 & 1)) >>> 0;
  setCr0(cpu, cr0, 0);
};
const invlpg: Handler = (cpu, d) => {
  checkCpl0(cpu);
  let lin: number;
  try { lin = cpu.ea(d); } catch (e) { if (e instanceof CpuFault) return; throw e; } // non-canonical: a no-op
  cpu.mem.flush(lin);
};

const swapgs: Handler = (cpu) => {
  checkCpl0(cpu);
  const s = cpu.seg;
  let k = cpu.msrs.get(Msr.KERNEL_GS_BASE);
  if (!k) { k = [0, 0]; cpu.msrs.set(Msr.KERNEL_GS_BASE, k); }
  const lo = k[0], hi = k[1];
  k[0] = s.baseLo[Seg.GS]; k[1] = s.baseHi[Seg.GS];
  s.baseLo[Seg.GS] = lo; s.baseHi[Seg.GS] = hi;
};
const rdtscp: Handler = (cpu, d) => {
  if (!(cpu.model.ext1Edx & CpuidExt1Edx.RDTSCP)) ud();
  rdtscpHandler(cpu, d);
};
/** xgetbv: XCR0 (the only XCR); #UD unless CR4.OSXSAVE. */
const xgetbv: Handler = (cpu) => {
  if (!(cpu.cr4 & Cr4.OSXSAVE)) ud();
  if (cpu.r[2] !== 0) gp0();
  const r = cpu.r;
  r[0] = cpu.xcr0Lo; r[1] = 0; r[4] = 0; r[5] = 0;
};
/** xsetbv: XCR0 may hold x87 (required) and SSE only: the state this CPU has. */
const xsetbv: Handler = (cpu) => {
  if (!(cpu.cr4 & Cr4.OSXSAVE)) ud();
  checkCpl0(cpu);
  const r = cpu.r;
  if (r[2] !== 0 || r[4] !== 0 || (r[0] & ~3) !== 0 || !(r[0] & 1)) gp0();
  cpu.xcr0Lo = r[0];
};
/** clac / stac: #UD without SMAP in CPUID. */
function acFlag(set: boolean): Handler {
  return (cpu) => {
    if (!(cpu.model.leaf7Ebx & (1 << 20))) ud();
    checkCpl0(cpu);
    const f = cpu.f;
    f[FS.FLAGS] = set ? f[FS.FLAGS] | F.AC : f[FS.FLAGS] & ~F.AC;
  };
}
const clac = acFlag(false), stac = acFlag(true);
/** vmcall / vmmcall: a hypercall if the machine takes it, else #UD (no VMX/SVM here). */
const vmcall: Handler = (cpu) => {
  if (cpu.hooks.hypercall && cpu.hooks.hypercall(cpu)) { cpu.endBlock(); return; }
  ud();
};

const grp7Mem: (Handler | undefined)[] = [storeDtr(false), storeDtr(true), loadDtr(false), loadDtr(true), smsw, undefined, lmsw, invlpg];
function grp7Reg(d: Insn): Handler | undefined {
  const rm = d.rm & 7;
  switch (d.reg & 7) {
    case 0: return rm === 1 ? vmcall : undefined;
    case 1: return rm === 2 ? clac : rm === 3 ? stac : undefined; // monitor/mwait: #UD
    case 2: return rm === 0 ? xgetbv : rm === 1 ? xsetbv : undefined;
    case 3: return rm === 1 ? vmcall : undefined; // vmmcall
    case 4: return smsw;
    case 6: return lmsw;
    case 7: return rm === 0 ? (d.mode === Mode.Long64 ? swapgs : undefined) : rm === 1 ? rdtscp : undefined;
    default: return undefined;
  }
}

// ---- control and debug registers ------------------------------------------------------

const CR0_VALID = 0xe005003f; // PE MP EM TS ET NE WP AM NW CD PG; other low bits are ignored
const PHYS_HI_MASK = 0xff;    // physical address bits 32..39

/** CR4 bits this CPU model supports; the rest are reserved (#GP). */
function cr4Valid(cpu: Cpu): number {
  const m = cpu.model;
  const e = m.leaf1Edx, c = m.leaf1Ecx, b7 = m.leaf7Ebx;
  let v = Cr4.PCE;
  if (e & 2) v |= Cr4.VME | Cr4.PVI;
  if (e & 4) v |= Cr4.DE;
  if (e & Cpuid1Edx.PSE) v |= Cr4.PSE;
  if (e & Cpuid1Edx.TSC) v |= Cr4.TSD;
  if (e & Cpuid1Edx.PAE) v |= Cr4.PAE;
  if (e & 0x80) v |= Cr4.MCE;
  if (e & Cpuid1Edx.PGE) v |= Cr4.PGE;
  if (e & Cpuid1Edx.FXSR) v |= Cr4.OSFXSR;
  if (e & Cpuid1Edx.SSE) v |= Cr4.OSXMMEXCPT;
  if (c & (1 << 17)) v |= Cr4.PCIDE;
  if (c & Cpuid1Ecx.XSAVE) v |= Cr4.OSXSAVE;
  if (b7 & 1) v |= Cr4.FSGSBASE;
  if (b7 & (1 << 7)) v |= Cr4.SMEP;
  if (b7 & (1 << 20)) v |= Cr4.SMAP;
  return v;
}

/** What a paging MMU may offer beyond CpuMemory (src/mmu/paged.ts). */
interface PagingExtras { pdptesValid?(): boolean; flushAll?(): void }

/** PAE paging outside long mode loads the four PDPTEs on CR3 writes and on entering it: a
 *  PDPTE with reserved bits makes the MOV #GP(0) (after the caller restores the old state). */
function pdptesBad(cpu: Cpu): boolean {
  if (!(cpu.cr0 & Cr0.PG) || !(cpu.cr4 & Cr4.PAE) || (cpu.efer & Efer.LMA)) return false;
  const m = cpu.mem as unknown as PagingExtras;
  return m.pdptesValid !== undefined && !m.pdptesValid();
}

/** Write CR0 with the checks and the long-mode transitions (LMA follows PG when LME is set). */
export function setCr0(cpu: Cpu, lo: number, hi: number): void {
  if (hi !== 0) gp0();
  const v = ((lo & CR0_VALID) | Cr0.ET) >>> 0;
  const old = cpu.cr0 >>> 0;
  if ((v & Cr0.PG) && !(v & Cr0.PE)) gp0();
  if ((v & Cr0.NW) && !(v & Cr0.CD)) gp0();
  const oldEfer = cpu.efer;
  let efer = oldEfer;
  if ((v & Cr0.PG) && !(old & Cr0.PG) && (efer & Efer.LME)) {
    // Activating IA-32e mode: PAE required, and not from a 64-bit code segment.
    if (!(cpu.cr4 & Cr4.PAE) || (cpu.seg.attr[Seg.CS] & SegAttr.L)) gp0();
    efer |= Efer.LMA;
  } else if (!(v & Cr0.PG) && (old & Cr0.PG) && (efer & Efer.LMA)) {
    if (cpu.mode === Mode.Long64 || (cpu.cr4 & Cr4.PCIDE)) gp0();
    efer &= ~Efer.LMA;
  }
  cpu.cr0 = v;
  cpu.efer = efer;
  cpu.mem.flush();
  if ((v & Cr0.PG) && !(old & Cr0.PG) && pdptesBad(cpu)) {
    cpu.cr0 = old; cpu.efer = oldEfer; cpu.mem.flush();
    gp0();
  }
  if (!(v & Cr0.PE)) cpu.cpl = 0;
  updateMode(cpu);
  cpu.endBlock();
}

function setCr3(cpu: Cpu, lo: number, hi: number): void {
  const oldLo = cpu.cr3Lo, oldHi = cpu.cr3Hi;
  if (cpu.efer & Efer.LMA) {
    if (cpu.cr4 & Cr4.PCIDE) hi &= 0x7fffffff; // bit 63: keep this PCID's TLB entries (not stored)
    if (hi & ~PHYS_HI_MASK) gp0();
    cpu.cr3Lo = lo; cpu.cr3Hi = hi;
  } else { cpu.cr3Lo = lo; cpu.cr3Hi = 0; }
  cpu.mem.flush();
  if (pdptesBad(cpu)) { cpu.cr3Lo = oldLo; cpu.cr3Hi = oldHi; cpu.mem.flush(); gp0(); }
  cpu.endBlock();
}

function setCr4(cpu: Cpu, lo: number, hi: number): void {
  if (hi !== 0 || (lo & ~cr4Valid(cpu))) gp0();
  const old = cpu.cr4;
  if ((cpu.efer & Efer.LMA) && !(lo & Cr4.PAE)) gp0();
  if ((lo & Cr4.PCIDE) && !(old & Cr4.PCIDE) && (!(cpu.efer & Efer.LMA) || (cpu.cr3Lo & 0xfff))) gp0();
  cpu.cr4 = lo;
  cpu.mem.flush();
  if ((lo & Cr4.PAE) && !(old & Cr4.PAE) && pdptesBad(cpu)) { cpu.cr4 = old; cpu.mem.flush(); gp0(); }
  cpu.endBlock();
}

/** The CR a mov names: 0 2 3 4 8, else #UD. */
function crIndex(d: Insn): number {
  const n = d.reg;
  if (n !== 0 && n !== 2 && n !== 3 && n !== 4 && n !== 8) ud();
  return n;
}

/** mov Rd, Cd (0F 20): 64-bit in 64-bit mode, else 32-bit, whatever the prefixes. */
const movRdCd: Handler = (cpu, d) => {
  const n = crIndex(d);
  checkCpl0(cpu);
  const long = cpu.mode === Mode.Long64;
  let lo: number, hi = 0;
  switch (n) {
    case 0: lo = cpu.cr0 | 0; break;
    case 2: lo = cpu.ripHalves(cpu.cr2); hi = cpu.t; break;
    case 3: lo = cpu.cr3Lo; hi = cpu.cr3Hi; break;
    case 4: lo = cpu.cr4; break;
    default: lo = cpu.cr8; break;
  }
  if (long) cpu.setReg(d.rm, 8, lo, hi); else cpu.setReg(d.rm, 4, lo, 0);
};
const movCdRd: Handler = (cpu, d) => {
  const n = crIndex(d);
  checkCpl0(cpu);
  const long = cpu.mode === Mode.Long64;
  const lo = cpu.r[d.rm * 2], hi = long ? cpu.r[d.rm * 2 + 1] : 0;
  switch (n) {
    case 0: setCr0(cpu, lo, hi); break;
    case 2: cpu.cr2 = long ? (hi & 0xffff) * TWO32 + (lo >>> 0) : lo >>> 0; break;
    case 3: setCr3(cpu, lo, hi); break;
    case 4: setCr4(cpu, lo, hi); break;
    default:
      if (hi !== 0 || (lo & ~0xf)) gp0();
      cpu.cr8 = lo;
      cpu.endBlock(); // a lower TPR may unmask a pending interrupt
  }
};

/** DR4/DR5 alias DR6/DR7 unless CR4.DE; DR8..15 (REX.R) are #UD. */
function drIndex(cpu: Cpu, d: Insn): number {
  let n = d.reg;
  if (n > 7) ud();
  if (n === 4 || n === 5) { if (cpu.cr4 & Cr4.DE) ud(); n += 2; }
  return n;
}
// DR6 reads with bits 4..11 and 16..31 set; DR7 with bit 10 set and 11, 12, 14, 15 clear.
const DR6_FIXED = 0xffff0ff0 | 0, DR6_BITS = 0x0000e00f, DR7_FIXED = 0x400, DR7_BITS = 0xffff23ff | 0;

/** Debug registers hold doubles: exact for any canonical address (|v| < 2^53). */
const movRdDd: Handler = (cpu, d) => {
  const n = drIndex(cpu, d);
  checkCpl0(cpu);
  const v = cpu.dr[n];
  let lo: number, hi: number;
  if (n === 6) { lo = (v | 0) | DR6_FIXED; hi = 0; }
  else if (n === 7) { lo = (v | 0) | DR7_FIXED; hi = 0; }
  else { hi = Math.floor(v / TWO32); lo = (v - hi * TWO32) | 0; hi |= 0; }
  if (cpu.mode === Mode.Long64) cpu.setReg(d.rm, 8, lo, hi); else cpu.setReg(d.rm, 4, lo, 0);
};
const movDdRd: Handler = (cpu, d) => {
  const n = drIndex(cpu, d);
  checkCpl0(cpu);
  const long = cpu.mode === Mode.Long64;
  const lo = cpu.r[d.rm * 2], hi = long ? cpu.r[d.rm * 2 + 1] : 0;
  if (n >= 6) {
    if (hi !== 0) gp0();
    cpu.dr[n] = n === 6 ? lo & DR6_BITS : lo & DR7_BITS & ~DR7_FIXED;
    return;
  }
  cpu.dr[n] = hi * TWO32 + (lo >>> 0);
};

// ---- MSRs, fast system calls ----------------------------------------------------------

const rdmsrH: Handler = (cpu) => {
  checkCpl0(cpu);
  const r = cpu.r;
  const lo = rdmsr(cpu, r[2]);
  r[0] = lo; r[1] = 0; r[4] = cpu.t; r[5] = 0;
};
const wrmsrH: Handler = (cpu) => {
  checkCpl0(cpu);
  const r = cpu.r;
  wrmsr(cpu, r[2], r[0], r[4]);
};

function msrLo(cpu: Cpu, i: number): number { const v = cpu.msrs.get(i); cpu.t = v ? v[1] : 0; return v ? v[0] : 0; }

// Cached segment loads of the fast system calls (no descriptor is read).
const CS64_0 = 0x9b | SegAttr.L | SegAttr.G, CS32_0 = 0x9b | SegAttr.DB | SegAttr.G, SS_0 = 0x93 | SegAttr.DB | SegAttr.G;
const CS64_3 = 0xfb | SegAttr.L | SegAttr.G, CS32_3 = 0xfb | SegAttr.DB | SegAttr.G, SS_3 = 0xf3 | SegAttr.DB | SegAttr.G;

/** syscall: to CPL 0 at LSTAR (64-bit mode) or CSTAR (compatibility mode), RCX = next RIP,
 *  R11 = RFLAGS, RFLAGS &= ~SFMASK; outside long mode (AMD) to STAR[31:0], IF VM cleared.
 *  A hypervisor hook (PV: a hypercall or a guest system call) may take it first. */
const syscall: Handler = (cpu) => {
  if (cpu.hooks.syscall && cpu.hooks.syscall(cpu)) return;
  if (!(cpu.efer & Efer.SCE) || cpu.mode === Mode.Real) ud();
  const r = cpu.r;
  msrLo(cpu, Msr.STAR);
  const sel = cpu.t & 0xfffc;
  const flags = getFlags(cpu.f);
  if (cpu.efer & Efer.LMA) {
    const target = cpu.mode === Mode.Long64 ? Msr.LSTAR : Msr.CSTAR;
    const tlo = msrLo(cpu, target), thi = cpu.t;
    const mask = msrLo(cpu, Msr.SFMASK);
    r[2] = cpu.ripHalves(); r[3] = cpu.t;
    r[22] = flags; r[23] = 0;
    setFlatSeg(cpu, Seg.CS, sel, CS64_0);
    cpu.rip = (thi & 0xffff) * TWO32 + (tlo >>> 0);
    setFlags(cpu.f, flags & ~mask & ~F.RF);
  } else {
    const eip = msrLo(cpu, Msr.STAR);
    r[2] = cpu.rip | 0;
    setFlatSeg(cpu, Seg.CS, sel, CS32_0);
    cpu.rip = eip >>> 0;
    setFlags(cpu.f, flags & ~(F.VM | F.IF | F.RF));
  }
  setFlatSeg(cpu, Seg.SS, sel + 8, SS_0);
  cpu.cpl = 0;
  updateMode(cpu);
  cpu.endBlock();
};

/** sysret: to CPL 3; REX.W returns to 64-bit code at STAR[63:48]+16, else to 32-bit code at
 *  STAR[63:48]. A non-canonical RCX is #GP(0) at CPL 0 (Intel). */
const sysret: Handler = (cpu, d) => {
  if (!(cpu.efer & Efer.SCE) || cpu.mode === Mode.Real) ud();
  checkCpl0(cpu);
  const r = cpu.r;
  msrLo(cpu, Msr.STAR);
  const sel = cpu.t >>> 16;
  if (cpu.efer & Efer.LMA) {
    if (d.osz === 8) {
      if (!canonical(r[3])) gp0();
      setFlatSeg(cpu, Seg.CS, (sel + 16) | 3, CS64_3);
      cpu.rip = (r[3] & 0xffff) * TWO32 + (r[2] >>> 0);
    } else {
      setFlatSeg(cpu, Seg.CS, sel | 3, CS32_3);
      cpu.rip = r[2] >>> 0;
    }
    setFlags(cpu.f, r[22] & 0x3c7fd7);
  } else {
    setFlatSeg(cpu, Seg.CS, sel | 3, CS32_3);
    cpu.rip = r[2] >>> 0;
    setFlags(cpu.f, getFlags(cpu.f) | F.IF);
  }
  setFlatSeg(cpu, Seg.SS, (sel + 8) | 3, SS_3);
  cpu.cpl = 3;
  updateMode(cpu);
  cpu.endBlock();
};

/** sysenter: to CPL 0 at SYSENTER_CS:EIP with SYSENTER_ESP (64-bit code under LMA, Intel). */
const sysenter: Handler = (cpu) => {
  if (cpu.mode === Mode.Real) gp0();
  const cs = msrLo(cpu, Msr.SYSENTER_CS) & 0xfffc;
  if (cs === 0) gp0();
  const r = cpu.r;
  const elo = msrLo(cpu, Msr.SYSENTER_EIP), ehi = cpu.t;
  const slo = msrLo(cpu, Msr.SYSENTER_ESP), shi = cpu.t;
  const long = (cpu.efer & Efer.LMA) !== 0;
  setFlags(cpu.f, getFlags(cpu.f) & ~(F.VM | F.IF | F.RF));
  setFlatSeg(cpu, Seg.CS, cs, long ? CS64_0 : CS32_0);
  setFlatSeg(cpu, Seg.SS, cs + 8, SS_0);
  cpu.rip = long ? (ehi & 0xffff) * TWO32 + (elo >>> 0) : elo >>> 0;
  r[8] = slo; r[9] = long ? shi : 0;
  cpu.cpl = 0;
  updateMode(cpu);
  cpu.endBlock();
};
/** sysexit: to CPL 3 at RDX with RSP = RCX; REX.W returns to 64-bit code (CS+32). */
const sysexit: Handler = (cpu, d) => {
  if (cpu.mode === Mode.Real) gp0();
  checkCpl0(cpu);
  const cs = msrLo(cpu, Msr.SYSENTER_CS) & 0xfffc;
  if (cs === 0) gp0();
  const r = cpu.r;
  if (d.osz === 8) {
    if (!canonical(r[5])) gp0();
    setFlatSeg(cpu, Seg.CS, (cs + 32) | 3, CS64_3);
    setFlatSeg(cpu, Seg.SS, (cs + 40) | 3, SS_3);
    cpu.rip = (r[5] & 0xffff) * TWO32 + (r[4] >>> 0);
  } else {
    setFlatSeg(cpu, Seg.CS, (cs + 16) | 3, CS32_3);
    setFlatSeg(cpu, Seg.SS, (cs + 24) | 3, SS_3);
    cpu.rip = r[4] >>> 0;
    r[3] = 0;
  }
  r[8] = r[2]; r[9] = r[3];
  cpu.cpl = 3;
  updateMode(cpu);
  cpu.endBlock();
};

// ---- cache and TLB control ------------------------------------------------------------

const clts: Handler = (cpu) => { checkCpl0(cpu); cpu.cr0 = (cpu.cr0 & ~Cr0.TS) >>> 0; };
const invd: Handler = (cpu) => { checkCpl0(cpu); }; // caches are not modelled
/** invpcid (66 0F 38 82): type in Gq/Gd, a 16-byte descriptor {PCID, linear address}. */
const invpcid: Handler = (cpu, d) => {
  if (!(cpu.model.leaf7Ebx & (1 << 10))) ud();
  checkCpl0(cpu);
  const r = cpu.r;
  const long = cpu.mode === Mode.Long64;
  const type = r[d.reg * 2], typeHi = long ? r[d.reg * 2 + 1] : 0;
  if (typeHi !== 0 || (type >>> 0) > 3) gp0();
  const lin = cpu.ea(d);
  const pcid = cpu.rd(lin, 4), pHi = cpu.rd(cpu.ea(d, 4), 4);
  const alo = cpu.rd(cpu.ea(d, 8), 4), ahi = cpu.rd(cpu.ea(d, 12), 4);
  if ((pcid & ~0xfff) !== 0 || pHi !== 0) gp0();
  if (type <= 1 && !(cpu.cr4 & Cr4.PCIDE) && (pcid & 0xfff) !== 0) gp0();
  if (type === 0) {
    if (!canonical(ahi)) gp0();
    cpu.mem.flush((ahi & 0xffff) * TWO32 + (alo >>> 0));
  } else if (type === 2) {
    // All contexts, global entries included.
    const m = cpu.mem as unknown as PagingExtras;
    if (m.flushAll) m.flushAll(); else cpu.mem.flush();
  } else cpu.mem.flush();
};

// ---- the opcode table -------------------------------------------------------------------

const SREG_LOADABLE = (1 << Seg.ES) | (1 << Seg.SS) | (1 << Seg.DS) | (1 << Seg.FS) | (1 << Seg.GS);

def(0, 0x9a, { imm: Imm.Ap, noLong: true, h: callFarAp, end: true, cycles: 20 });
def(0, 0xea, { imm: Imm.Ap, noLong: true, h: jmpFarAp, end: true, cycles: 20 });
def(0, 0xcb, { h: retf, end: true, cycles: 20 });
def(0, 0xca, { imm: Imm.Iw, h: retfImm, end: true, cycles: 20 });
def(0, 0xcf, { h: iretH, end: true, cycles: 40 });
def(0, 0x8c, { modrm: true, sel: (d) => ((d.reg & 7) <= 5 ? movEwSw : undefined) });
def(0, 0x8e, { modrm: true, sel: (d) => ((SREG_LOADABLE >> (d.reg & 7)) & 1 ? movSwEw : undefined), cycles: 8 });
def(0, 0x06, { noLong: true, h: pushSeg(Seg.ES) });
def(0, 0x0e, { noLong: true, h: pushSeg(Seg.CS) });
def(0, 0x16, { noLong: true, h: pushSeg(Seg.SS) });
def(0, 0x1e, { noLong: true, h: pushSeg(Seg.DS) });
def(0, 0x07, { noLong: true, h: popSeg(Seg.ES), cycles: 8 });
def(0, 0x17, { noLong: true, h: popSeg(Seg.SS), end: true, cycles: 8 });
def(0, 0x1f, { noLong: true, h: popSeg(Seg.DS), cycles: 8 });
def(OpMap.X0F, 0xa0, { d64: true, h: pushSeg(Seg.FS) });
def(OpMap.X0F, 0xa8, { d64: true, h: pushSeg(Seg.GS) });
def(OpMap.X0F, 0xa1, { d64: true, h: popSeg(Seg.FS), cycles: 8 });
def(OpMap.X0F, 0xa9, { d64: true, h: popSeg(Seg.GS), cycles: 8 });
// C4/C5 are VEX prefixes in 64-bit mode (and with mod = 3 elsewhere): those stay #UD here.
def(0, 0xc4, { modrm: true, noLong: true, sel: (d) => (d.mod !== 3 ? loadFar(Seg.ES) : undefined), cycles: 8 });
def(0, 0xc5, { modrm: true, noLong: true, sel: (d) => (d.mod !== 3 ? loadFar(Seg.DS) : undefined), cycles: 8 });
def(OpMap.X0F, 0xb2, { modrm: true, sel: (d) => (d.mod !== 3 ? loadFar(Seg.SS) : undefined), cycles: 8 });
def(OpMap.X0F, 0xb4, { modrm: true, sel: (d) => (d.mod !== 3 ? loadFar(Seg.FS) : undefined), cycles: 8 });
def(OpMap.X0F, 0xb5, { modrm: true, sel: (d) => (d.mod !== 3 ? loadFar(Seg.GS) : undefined), cycles: 8 });

def(OpMap.X0F, 0x00, { modrm: true, sel: (d) => grp6[d.reg & 7], cycles: 10 });
def(OpMap.X0F, 0x01, { modrm: true, sel: (d) => (d.mod === 3 ? grp7Reg(d) : grp7Mem[d.reg & 7]), cycles: 10 });
def(OpMap.X0F, 0x02, { modrm: true, h: lar, cycles: 10 });
def(OpMap.X0F, 0x03, { modrm: true, h: lsl, cycles: 10 });
def(OpMap.X0F, 0x20, { modrm: true, h: movRdCd, cycles: 4 });
def(OpMap.X0F, 0x22, { modrm: true, h: movCdRd, end: true, cycles: 20 });
def(OpMap.X0F, 0x21, { modrm: true, h: movRdDd, cycles: 4 });
def(OpMap.X0F, 0x23, { modrm: true, h: movDdRd, cycles: 20 });
def(OpMap.X0F, 0x30, { h: wrmsrH, end: true, cycles: 40 });
def(OpMap.X0F, 0x32, { h: rdmsrH, cycles: 40 });
def(OpMap.X0F, 0x05, { h: syscall, end: true, cycles: 30 });
def(OpMap.X0F, 0x07, { h: sysret, end: true, cycles: 30 });
def(OpMap.X0F, 0x34, { h: sysenter, end: true, cycles: 30 });
def(OpMap.X0F, 0x35, { h: sysexit, end: true, cycles: 30 });
def(OpMap.X0F, 0x06, { h: clts, cycles: 10 });
def(OpMap.X0F, 0x08, { h: invd, cycles: 100 });
def(OpMap.X0F, 0x09, { h: invd, cycles: 100 });
def(OpMap.X0F38, 0x82, { modrm: true, end: true, sel: (d) => (d.mp === 1 && d.mod !== 3 ? invpcid : undefined), cycles: 20 });
