// Hypervisor access to guest memory: by guest virtual address through the vCPU's current
// page tables (copy_from_guest / copy_to_guest), where a fault becomes -EFAULT; and by
// machine address for pages Xen shares with the guest (shared_info, vcpu_info, start_info).

import { CpuFault } from '../cpu/fault.js';
import type { PhysMem } from '../mmu/physmem.js';
import { Errno, HypercallError } from './errno.js';
import type { Vcpu } from './vcpu.js';

const TWO32 = 4294967296;

function efault(e: unknown): never {
  if (e instanceof CpuFault) throw new HypercallError(Errno.EFAULT);
  throw e;
}

/** Read `len` bytes at guest virtual `lin` (48-bit linear; -1 = non-canonical). */
export function copyFromGuest(v: Vcpu, lin: number, len: number): Uint8Array {
  if (lin < 0 || len < 0) throw new HypercallError(Errno.EFAULT);
  const out = new Uint8Array(len);
  const m = v.cpu.mem;
  try { for (let i = 0; i < len; i++) out[i] = m.rd8(lin + i); } catch (e) { efault(e); }
  return out;
}

export function copyToGuest(v: Vcpu, lin: number, data: Uint8Array): void {
  if (lin < 0) throw new HypercallError(Errno.EFAULT);
  const m = v.cpu.mem;
  try {
    m.probeWrite(lin, data.length);
    for (let i = 0; i < data.length; i++) m.wr8(lin + i, data[i]);
  } catch (e) { efault(e); }
}

export function readGuest32(v: Vcpu, lin: number): number {
  if (lin < 0) throw new HypercallError(Errno.EFAULT);
  try { return v.cpu.mem.rd32(lin); } catch (e) { efault(e); }
}
export function readGuest16(v: Vcpu, lin: number): number {
  if (lin < 0) throw new HypercallError(Errno.EFAULT);
  try { return v.cpu.mem.rd16(lin); } catch (e) { efault(e); }
}
export function readGuest8(v: Vcpu, lin: number): number {
  if (lin < 0) throw new HypercallError(Errno.EFAULT);
  try { return v.cpu.mem.rd8(lin); } catch (e) { efault(e); }
}
/** 64-bit read as [lo, hi] int32 halves. */
export function readGuest64(v: Vcpu, lin: number): [number, number] {
  if (lin < 0) throw new HypercallError(Errno.EFAULT);
  try { const lo = v.cpu.mem.rd64(lin); return [lo, v.cpu.mem.hi]; } catch (e) { efault(e); }
}
/** 64-bit read as a number (exact below 2^53). */
export function readGuestU64(v: Vcpu, lin: number): number {
  const [lo, hi] = readGuest64(v, lin);
  return (hi >>> 0) * TWO32 + (lo >>> 0);
}
export function writeGuest32(v: Vcpu, lin: number, val: number): void {
  if (lin < 0) throw new HypercallError(Errno.EFAULT);
  try { v.cpu.mem.wr32(lin, val); } catch (e) { efault(e); }
}
export function writeGuest16(v: Vcpu, lin: number, val: number): void {
  if (lin < 0) throw new HypercallError(Errno.EFAULT);
  try { v.cpu.mem.wr16(lin, val); } catch (e) { efault(e); }
}
export function writeGuest8(v: Vcpu, lin: number, val: number): void {
  if (lin < 0) throw new HypercallError(Errno.EFAULT);
  try { v.cpu.mem.wr8(lin, val); } catch (e) { efault(e); }
}
export function writeGuest64(v: Vcpu, lin: number, lo: number, hi: number): void {
  if (lin < 0) throw new HypercallError(Errno.EFAULT);
  try { v.cpu.mem.wr64(lin, lo, hi); } catch (e) { efault(e); }
}

/** Machine-address access for Xen-shared pages. Writes keep the decode cache honest. */
export class MachineMem {
  private readonly dv: DataView;
  constructor(readonly phys: PhysMem, private readonly onCodeWrite: (ppn: number) => void = () => {}) {
    this.dv = phys.dv;
  }
  private touched(pa: number): void {
    const ppn = Math.floor(pa / 4096);
    if (this.phys.codeFrame[ppn] === 1) { this.phys.codeFrame[ppn] = 0; this.onCodeWrite(ppn); }
  }
  u8(pa: number): number { return this.phys.u8[pa]; }
  u16(pa: number): number { return this.dv.getUint16(pa, true); }
  u32(pa: number): number { return this.dv.getUint32(pa, true); }
  u64(pa: number): number { return this.dv.getUint32(pa + 4, true) * TWO32 + this.dv.getUint32(pa, true); }
  big64(pa: number): bigint { return this.dv.getBigUint64(pa, true); }
  set8(pa: number, v: number): void { this.phys.u8[pa] = v; this.touched(pa); }
  set16(pa: number, v: number): void { this.dv.setUint16(pa, v, true); this.touched(pa); }
  set32(pa: number, v: number): void { this.dv.setUint32(pa, v >>> 0, true); this.touched(pa); }
  /** 64-bit write of a number (exact below 2^53) or a bigint. */
  set64(pa: number, v: number | bigint): void {
    if (typeof v === 'bigint') this.dv.setBigUint64(pa, BigInt.asUintN(64, v), true);
    else { this.dv.setUint32(pa, v % TWO32 >>> 0, true); this.dv.setUint32(pa + 4, Math.floor(v / TWO32) >>> 0, true); }
    this.touched(pa);
  }
  bytes(pa: number, len: number): Uint8Array { return this.phys.u8.slice(pa, pa + len); }
  setBytes(pa: number, data: Uint8Array): void { this.phys.u8.set(data, pa); this.touched(pa); if (data.length > 1) this.touched(pa + data.length - 1); }
}

/** Read a 64-bit guest pointer: the 48-bit linear form, or -1 if it is not canonical. */
export function readGuestPtr(v: Vcpu, lin: number): number {
  const [lo, hi] = readGuest64(v, lin);
  if (((hi << 16) >> 16) !== hi) return -1;
  return (hi & 0xffff) * TWO32 + (lo >>> 0);
}
