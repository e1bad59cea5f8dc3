// The writable-page-tables assist (VMASST_TYPE_writable_pagetables): a PV guest kernel that
// writes to one of its own validated L1 tables through a read-only mapping has the write
// emulated, as Xen's ptwr_emulated_update (xen/arch/x86/pv/ro-page-fault.c) does: the new
// entry is checked like an mmu_update (references taken, flags adjusted), stored, and the old
// entry's references dropped. Everything else that reaches a write-protected frame faults to
// the guest as the #PF the hardware would have raised: writes to L2..L4 tables (never
// emulated), to descriptor pages, from guest user mode, without the assist enabled, writes
// that are not naturally aligned or cross a page, and entries that fail validation.
//
// Page-table and descriptor frames are flagged in xen.writeProtected (mm/pagetype.ts); a
// vCPU's PagedMemory sends guest writes to them to its WriteProtectHook, whatever the PTE
// says (a read-only PTE does not fault first). Hardware's own descriptor writes (implicit
// supervisor accesses setting accessed/busy bits in GDT/LDT pages) are done as they are on
// real Xen, where those pages are mapped writable for the CPU.
//
// API for the PV trap code:
//   installPtwr(v)    set v.cpu.mem.onWriteProtected (a PagedMemory) to the hook: it either
//                     emulates the write or throws CpuFault(#PF, P|W|U, lin), which the
//                     trap code bounces to the guest like any #PF.
//   ptwrWrite(v, pa, lin, size, lo, hi, pa2)   the emulation alone: true if done, false if
//                     the write must fault (nothing changed).

import { CpuFault, Vec } from '../../cpu/fault.js';
import { PagedMemory, PfErr } from '../../mmu/paged.js';
import type { Vcpu } from '../vcpu.js';
import { PGT, PgFlag, ownedBy, pageInfo, readPteHi, readPteLo, touchFrame, writePte } from './pagetype.js';
import { Pte, adjustedL1, getPageFromL1e, putPageFromL1e } from './validate.js';

/** vm_assist bit for writable_pagetables (VMASST_TYPE_writable_pagetables = 2). */
const VMASST_WRITABLE_PAGETABLES = 1 << 2;

const scratch = new DataView(new ArrayBuffer(8));

/**
 * Emulate a guest write of `size` bytes (value lo, hi) at machine address pa, linear lin, to
 * a write-protected frame. pa2 !== -1: the write crosses into a second page (refused).
 */
export function ptwrWrite(v: Vcpu, pa: number, lin: number, size: number, lo: number, hi: number, pa2: number): boolean {
  void lin;
  if (pa2 !== -1) return false;
  const d = v.domain;
  if ((d.vmAssist & VMASST_WRITABLE_PAGETABLES) === 0 || !v.kernelMode) return false;
  const pi = pageInfo(d.xen);
  const mfn = Math.floor(pa / 4096);
  if (mfn >= pi.frames) return false;
  if (pi.type[mfn] !== PGT.L1 || pi.typeCount[mfn] === 0 || (pi.flags[mfn] & PgFlag.VALIDATED) === 0) return false;
  if (!ownedBy(pi, mfn, d.id)) return false;
  const off = pa - mfn * 4096;
  if ((size !== 1 && size !== 2 && size !== 4 && size !== 8) || (off & (size - 1)) !== 0) return false;
  const idx = off >>> 3;
  const oLo = readPteLo(pi, mfn, idx), oHi = readPteHi(pi, mfn, idx);
  let nLo = lo | 0, nHi = hi | 0;
  if (size !== 8) {
    // A sub-word write: merge into the full entry.
    scratch.setInt32(0, oLo, true); scratch.setInt32(4, oHi, true);
    const b = off & 7;
    if (size === 1) scratch.setUint8(b, lo & 0xff);
    else if (size === 2) scratch.setUint16(b, lo & 0xffff, true);
    else scratch.setInt32(b, lo, true);
    nLo = scratch.getInt32(0, true); nHi = scratch.getInt32(4, true);
  }
  if ((nLo & Pte.P) !== 0) {
    if (getPageFromL1e(pi, nLo, nHi, d, d.id, d) !== 0) return false;
    [nLo, nHi] = adjustedL1(nLo, nHi);
  }
  writePte(pi, mfn, idx, nLo, nHi);
  putPageFromL1e(pi, oLo, oHi);
  return true;
}

/** Install the emulation as the vCPU's WriteProtectHook. */
export function installPtwr(v: Vcpu): void {
  const mem = v.cpu.mem;
  if (!(mem instanceof PagedMemory)) throw new Error('ptwr needs a vCPU running on PagedMemory');
  const pi = pageInfo(v.domain.xen);
  mem.onWriteProtected = (pa, lin, size, lo, hi, pa2) => {
    if (ptwrWrite(v, pa, lin, size, lo, hi, pa2)) return;
    const mfn = Math.floor(pa / 4096);
    if (mem.implicitSupervisor && pa2 === -1 && mfn < pi.frames && pi.type[mfn] === PGT.SEG_DESC) {
      // The CPU setting a descriptor's accessed/busy bit.
      const dv = pi.dv;
      if (size === 1) dv.setUint8(pa, lo & 0xff);
      else if (size === 2) dv.setUint16(pa, lo & 0xffff, true);
      else if (size === 4) dv.setInt32(pa, lo, true);
      else { dv.setInt32(pa, lo, true); dv.setInt32(pa + 4, hi, true); }
      touchFrame(pi, mfn);
      return;
    }
    throw new CpuFault(Vec.PF, PfErr.P | PfErr.W | (mem.implicitSupervisor ? 0 : PfErr.U), lin);
  };
}
