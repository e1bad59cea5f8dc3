// fxsave/fxrstor (0F AE /0 /1) and xsave/xrstor/xsaveopt (0F AE /4 /5 /6) for the x87 and
// SSE components (XCR0 bits 0 and 1, the only ones the CPU model offers).

import type { Cpu } from '../cpu.js';
import { CpuFault, Vec } from '../fault.js';
import { fxrstorFrom, fxsaveTo } from '../fxsave.js';
import type { Handler, Insn } from '../insn.js';
import { Cr0, Cr4 } from '../state.js';
import { grp15Mem } from './misc.js';
import { finit, probeImage } from './x87-control.js';

const buf = new Uint8Array(512);
const dv = new DataView(buf.buffer);
/** Bytes fxsave writes and fxrstor reads: the legacy area up to XMM15. Bytes 416..511 are
 *  reserved or available to software and left alone. */
const LEGACY = 416;

function checkNm(cpu: Cpu): void {
  if (cpu.cr0 & (Cr0.EM | Cr0.TS)) throw new CpuFault(Vec.NM);
}

function alignedEa(cpu: Cpu, d: Insn, align: number): number {
  const lin = cpu.ea(d);
  if (lin % align) throw new CpuFault(Vec.GP, 0);
  return lin;
}

function readBuf(cpu: Cpu, lin: number, from: number, to: number): void {
  for (let o = from; o < to; o += 4) dv.setInt32(o, cpu.mem.rd32(lin + o), true);
}
function writeBuf(cpu: Cpu, lin: number, from: number, to: number): void {
  for (let o = from; o < to; o += 4) cpu.mem.wr32(lin + o, dv.getInt32(o, true));
}

/** fxsave m512: REX.W picks the 64-bit FIP/FDP layout. */
const fxsave: Handler = (cpu, d) => {
  checkNm(cpu);
  const lin = alignedEa(cpu, d, 16);
  probeImage(cpu, lin, 512, 16, true);
  fxsaveTo(cpu, buf, (d.rex & 8) !== 0);
  writeBuf(cpu, lin, 0, LEGACY);
};

/** fxrstor m512: #GP(0) for reserved MXCSR bits, before any state changes. */
const fxrstor: Handler = (cpu, d) => {
  checkNm(cpu);
  const lin = alignedEa(cpu, d, 16);
  probeImage(cpu, lin, 512, 16, false);
  readBuf(cpu, lin, 0, 512);
  if (!fxrstorFrom(cpu, buf, (d.rex & 8) !== 0)) throw new CpuFault(Vec.GP, 0);
};

// ---- xsave ---------------------------------------------------------------------------

function xsaveCheck(cpu: Cpu, d: Insn): number {
  if (!(cpu.cr4 & Cr4.OSXSAVE)) throw new CpuFault(Vec.UD);
  if (cpu.cr0 & Cr0.TS) throw new CpuFault(Vec.NM);
  return alignedEa(cpu, d, 64);
}

/** Requested-feature bitmap: XCR0 & EDX:EAX (only bits 0 and 1 exist here). */
const rfbm = (cpu: Cpu): number => cpu.xcr0Lo & cpu.r[0] & 3;

/** XINUSE as reported in XSTATE_BV, decided by value: a component is in use unless it holds
 *  its initial values (x87: the fninit control/status/tags with zero registers, the
 *  instruction and data pointers not considered; SSE: zero XMM registers, MXCSR not
 *  considered). This is what the host reports, except that it keeps XINUSE[0] set after a
 *  register was written and freed again (fldz; ffreep) until fnclex/fninit; reporting 0 for
 *  a state that is initial by value is architecturally equivalent. */
function inUse(cpu: Cpu): number {
  const f = cpu.fpu;
  let x87 = f.cw !== 0x037f || (f.sw & ~0x3800) !== 0 || f.top !== 0 || f.tw !== 0xffff;
  for (let p = 0; p < 8 && !x87; p++) x87 = (f.mantLo[p] | f.mantHi[p] | f.signExp[p]) !== 0;
  let sse = false;
  for (let i = 0; i < 64 && !sse; i++) sse = cpu.xmm[i] !== 0;
  return (x87 ? 1 : 0) | (sse ? 2 : 0);
}

/** xsave: the requested components, and their XSTATE_BV bits. opt (xsaveopt): components
 *  in their initial state are not written (no modified-since-xrstor tracking beyond that). */
function xsaveOp(cpu: Cpu, d: Insn, opt: boolean): void {
  const lin = xsaveCheck(cpu, d);
  const m = cpu.mem;
  probeImage(cpu, lin, 576, 64, true);
  const rf = rfbm(cpu);
  const use = inUse(cpu);
  const wr = opt ? rf & use : rf;
  fxsaveTo(cpu, buf, (d.rex & 8) !== 0);
  if (wr & 1) { writeBuf(cpu, lin, 0, 24); writeBuf(cpu, lin, 32, 160); }
  if (rf & 2) writeBuf(cpu, lin, 24, 32);
  if (wr & 2) writeBuf(cpu, lin, 160, LEGACY);
  m.wr8(lin + 512, (m.rd8(lin + 512) & ~rf) | (rf & use));
}
const xsave: Handler = (cpu, d) => xsaveOp(cpu, d, false);
const xsaveopt: Handler = (cpu, d) => xsaveOp(cpu, d, true);

/** xrstor: standard form only. #GP for XSTATE_BV bits outside XCR0 or a nonzero XCOMP_BV
 *  (or the 8 bytes after it, which is what the host checks). Components requested but
 *  clear in XSTATE_BV are initialised. */
const xrstor: Handler = (cpu, d) => {
  const lin = xsaveCheck(cpu, d);
  const m = cpu.mem;
  m.rd8(lin); // the host touches the start, then the header, then the rest
  const bvLo = m.rd32(lin + 512), bvHi = m.rd32(lin + 516);
  let hdr = 0;
  for (let o = 520; o < 536; o += 4) hdr |= m.rd32(lin + o);
  if (((bvLo & ~cpu.xcr0Lo) | bvHi) !== 0 || hdr !== 0) throw new CpuFault(Vec.GP, 0);
  const rf = rfbm(cpu);
  readBuf(cpu, lin, 0, LEGACY);
  const mx = dv.getUint32(24, true);
  if ((rf & 2) && (mx & 0xffff0000)) throw new CpuFault(Vec.GP, 0);
  // Start from the current state and overlay the requested components.
  const img = new Uint8Array(512);
  fxsaveTo(cpu, img, true);
  if (rf & 1) {
    if (bvLo & 1) { img.set(buf.subarray(0, 24), 0); img.set(buf.subarray(32, 160), 32); }
    else { img.fill(0, 0, 24); img.fill(0, 32, 160); img[0] = 0x7f; img[1] = 0x03; }
  }
  if (rf & 2) {
    img.set(buf.subarray(24, 28), 24);
    if (bvLo & 2) img.set(buf.subarray(160, LEGACY), 160);
    else img.fill(0, 160, LEGACY);
  }
  fxrstorFrom(cpu, img, (d.rex & 8) !== 0 || !(rf & 1) || !(bvLo & 1));
  if ((rf & 1) && !(bvLo & 1)) finit(cpu.fpu);
};

grp15Mem[0] = fxsave;
grp15Mem[1] = fxrstor;
grp15Mem[4] = xsave;
grp15Mem[5] = xrstor;
grp15Mem[6] = xsaveopt;
