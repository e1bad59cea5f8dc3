// Shared pieces of the SSE/SSE2 families: the availability checks every XMM instruction
// makes, operand loads and stores (with the 16-byte alignment rule of legacy SSE), scratch
// lanes, and the end-of-instruction MXCSR exception check.

import type { Cpu } from '../cpu.js';
import { CpuFault, Vec } from '../fault.js';
import type { Insn } from '../insn.js';
import { fe, Mx } from '../softfp.js';
import { Cr0, Cr4 } from '../state.js';

/** #UD without OSFXSR or with CR0.EM; #NM with CR0.TS (lazy FPU switching). */
export function sseAvail(cpu: Cpu): void {
  if ((cpu.cr0 & Cr0.EM) !== 0 || (cpu.cr4 & Cr4.OSFXSR) === 0) throw new CpuFault(Vec.UD);
  if ((cpu.cr0 & Cr0.TS) !== 0) throw new CpuFault(Vec.NM);
}

/** Scratch 128-bit values, each with every lane view. A: destination, B: source, R: result. */
function lanes() {
  const i32 = new Int32Array(4);
  const b = i32.buffer;
  return { i32, u8: new Uint8Array(b), i8: new Int8Array(b), u16: new Uint16Array(b), i16: new Int16Array(b), u32: new Uint32Array(b) };
}
export const A = lanes();
export const B = lanes();
export const R = lanes();

/** Effective address of a 16-byte memory operand; #GP(0) if `align` and not 16-byte aligned. */
export function ea16(cpu: Cpu, d: Insn, align: boolean): number {
  const lin = cpu.ea(d);
  if (align && (lin & 15) !== 0) throw new CpuFault(Vec.GP, 0);
  return lin;
}

/** Read 16 bytes at lin into dst. */
export function rd128(cpu: Cpu, lin: number, dst: Int32Array): void {
  const m = cpu.mem;
  const lo = m.rd64(lin), hi = m.hi;
  const lo2 = m.rd64(lin + 8), hi2 = m.hi;
  dst[0] = lo; dst[1] = hi; dst[2] = lo2; dst[3] = hi2;
}

/** Write src[o..o+3] to 16 bytes at lin; nothing is written if any byte would fault. */
export function wr128(cpu: Cpu, lin: number, src: Int32Array, o: number): void {
  const m = cpu.mem;
  m.probeWrite(lin, 16);
  m.wr64(lin, src[o], src[o + 1]);
  m.wr64(lin + 8, src[o + 2], src[o + 3]);
}

/** The W operand (xmm/m128) into B.i32; align: the form requires 16-byte alignment. */
export function loadW(cpu: Cpu, d: Insn, align: boolean): Int32Array {
  const b = B.i32;
  if (d.mod === 3) {
    const x = cpu.xmm, o = d.rm * 4;
    b[0] = x[o]; b[1] = x[o + 1]; b[2] = x[o + 2]; b[3] = x[o + 3];
  } else rd128(cpu, ea16(cpu, d, align), b);
  return b;
}

/** The W operand's low 64 bits (xmm or m64) into B.i32[0..1]. */
export function loadW64(cpu: Cpu, d: Insn): Int32Array {
  const b = B.i32;
  if (d.mod === 3) { const o = d.rm * 4; b[0] = cpu.xmm[o]; b[1] = cpu.xmm[o + 1]; } else {
    const m = cpu.mem;
    b[0] = m.rd64(cpu.ea(d)); b[1] = m.hi;
  }
  return b;
}

/** The W operand's low 32 bits (xmm or m32). */
export function loadW32(cpu: Cpu, d: Insn): number {
  return d.mod === 3 ? cpu.xmm[d.rm * 4] : cpu.mem.rd32(cpu.ea(d));
}

/** The V (ModRM.reg) register into A.i32. */
export function loadV(cpu: Cpu, d: Insn): Int32Array {
  const a = A.i32, x = cpu.xmm, o = d.reg * 4;
  a[0] = x[o]; a[1] = x[o + 1]; a[2] = x[o + 2]; a[3] = x[o + 3];
  return a;
}

/** Write 4 lanes to xmm register r. */
export function setX(cpu: Cpu, r: number, v: Int32Array): void {
  const x = cpu.xmm, o = r * 4;
  x[o] = v[0]; x[o + 1] = v[1]; x[o + 2] = v[2]; x[o + 3] = v[3];
}

/**
 * After the lanes of a floating-point instruction ran: record fe.fl in MXCSR and raise #XM
 * (#UD without CR4.OSXMMEXCPT) if any raised exception is unmasked. Callers write their
 * destination only after this returns. An unmasked pre-computation exception (IE DE ZE)
 * records only the pre-computation flags, as the computation never happened.
 */
export function fpCheck(cpu: Cpu): void {
  const fl = fe.fl;
  if (fl === 0) return;
  const mx = cpu.mxcsr;
  const unmasked = fl & ~(mx >> 7) & Mx.FLAGS;
  if (unmasked !== 0) {
    cpu.mxcsr = mx | ((unmasked & Mx.PRE) !== 0 ? fl & Mx.PRE : fl);
    throw new CpuFault((cpu.cr4 & Cr4.OSXMMEXCPT) !== 0 ? Vec.XM : Vec.UD);
  }
  cpu.mxcsr = mx | fl;
}
