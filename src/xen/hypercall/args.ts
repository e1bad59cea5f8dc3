// Hypercall arguments as the 64-bit registers carried them (rdi rsi rdx r10 r8), kept as
// 32-bit halves; helpers give the views a hypercall needs. One instance per vCPU, refilled
// on every call, so dispatch allocates nothing.

import type { Cpu } from '../../cpu/cpu.js';

const TWO32 = 4294967296;
/** Registers carrying arguments 1..5 in the 64-bit PV hypercall ABI: rdi rsi rdx r10 r8. */
const ARG_REGS = [7, 6, 2, 10, 8];

export class HcArgs {
  readonly lo = new Int32Array(6);
  readonly hi = new Int32Array(6);

  load(cpu: Cpu): void {
    const r = cpu.r;
    for (let i = 0; i < 5; i++) { const g = ARG_REGS[i]; this.lo[i] = r[g * 2]; this.hi[i] = r[g * 2 + 1]; }
  }

  /** Set from explicit 64-bit values (multicall entries, tests). */
  set(i: number, lo: number, hi: number): void { this.lo[i] = lo | 0; this.hi[i] = hi | 0; }

  /** Unsigned 32-bit view (commands, counts, ports). */
  u32(i: number): number { return this.lo[i] >>> 0; }
  /** Signed 32-bit view (int arguments such as domid_t in an int). */
  s32(i: number): number { return this.lo[i]; }
  /** Unsigned 64-bit value as a number (exact below 2^53). */
  u64(i: number): number { return (this.hi[i] >>> 0) * TWO32 + (this.lo[i] >>> 0); }
  /** Signed 64-bit value as a number (exact within ±2^53). */
  s64(i: number): number { return this.hi[i] * TWO32 + (this.lo[i] >>> 0); }
  big(i: number): bigint { return (BigInt(this.hi[i]) << 32n) | BigInt(this.lo[i] >>> 0); }
  /** A guest virtual address: the 48-bit linear form, or -1 if not canonical. */
  ptr(i: number): number {
    const hi = this.hi[i];
    if (((hi << 16) >> 16) !== hi) return -1;
    return (hi & 0xffff) * TWO32 + (this.lo[i] >>> 0);
  }
}

/** Convert a 64-bit guest virtual address given as a bigint to the 48-bit linear form (-1 if non-canonical). */
export function linearOf(v: bigint): number {
  const s = BigInt.asIntN(64, v);
  if (s < -(1n << 47n) || s >= (1n << 47n)) return -1;
  return Number(BigInt.asUintN(48, s));
}
/** The canonical 64-bit value of a 48-bit linear address. */
export function canonicalOf(lin: number): bigint {
  return BigInt.asUintN(64, BigInt.asIntN(48, BigInt(lin)));
}
