// SSE/SSE2 data movement: movaps/movups/movapd/movupd/movdqa/movdqu, movss/movsd, the
// half-register moves (movlps/movhps/movlpd/movhpd/movhlps/movlhps), movd/movq, the mask
// extractions (movmskps/movmskpd/pmovmskb), non-temporal stores (movntps/movntpd/movntdq/
// movnti, maskmovdqu) and ldmxcsr/stmxcsr. MMX (no-prefix 0F 6E/6F/7E/7F/D7...) is not
// implemented: those encodings are #UD.

import { CpuFault, Vec } from '../fault.js';
import { byPrefix, def, Map as OpMap, type Handler } from '../insn.js';
import { Seg } from '../state.js';
import { grp15Mem } from './misc.js';
import { ea16, loadW, setX, sseAvail, wr128 } from './sse-common.js';

// ---- full 128-bit moves --------------------------------------------------------------

/** movaps/movups/movapd/movupd/movdqa/movdqu xmm, xmm/m128 */
function movVW(align: boolean): Handler {
  return (cpu, d) => {
    sseAvail(cpu);
    if (d.mod === 3) {
      const x = cpu.xmm, s = d.rm * 4, t = d.reg * 4;
      x[t] = x[s]; x[t + 1] = x[s + 1]; x[t + 2] = x[s + 2]; x[t + 3] = x[s + 3];
    } else setX(cpu, d.reg, loadW(cpu, d, align));
  };
}
/** The stores: xmm/m128, xmm */
function movWV(align: boolean): Handler {
  return (cpu, d) => {
    sseAvail(cpu);
    const x = cpu.xmm, s = d.reg * 4;
    if (d.mod === 3) {
      const t = d.rm * 4;
      x[t] = x[s]; x[t + 1] = x[s + 1]; x[t + 2] = x[s + 2]; x[t + 3] = x[s + 3];
    } else wr128(cpu, ea16(cpu, d, align), x, s);
  };
}
const movVWu = movVW(false), movVWa = movVW(true), movWVu = movWV(false), movWVa = movWV(true);

// ---- scalar moves ----------------------------------------------------------------------

/** movss xmm, xmm/m32: a register source merges; a memory source zeroes bits 32..127. */
const movss_Vss_Wss: Handler = (cpu, d) => {
  sseAvail(cpu);
  const x = cpu.xmm, t = d.reg * 4;
  if (d.mod === 3) x[t] = x[d.rm * 4];
  else { const v = cpu.mem.rd32(cpu.ea(d)); x[t] = v; x[t + 1] = 0; x[t + 2] = 0; x[t + 3] = 0; }
};
const movss_Wss_Vss: Handler = (cpu, d) => {
  sseAvail(cpu);
  const x = cpu.xmm, s = d.reg * 4;
  if (d.mod === 3) x[d.rm * 4] = x[s];
  else cpu.mem.wr32(cpu.ea(d), x[s]);
};
/** movsd xmm, xmm/m64 (and movq xmm, xmm/m64 zeroes the high half for both sources). */
const movsd_Vsd_Wsd: Handler = (cpu, d) => {
  sseAvail(cpu);
  const x = cpu.xmm, t = d.reg * 4;
  if (d.mod === 3) { const s = d.rm * 4; x[t] = x[s]; x[t + 1] = x[s + 1]; } else {
    const m = cpu.mem, lo = m.rd64(cpu.ea(d));
    x[t] = lo; x[t + 1] = m.hi; x[t + 2] = 0; x[t + 3] = 0;
  }
};
const movsd_Wsd_Vsd: Handler = (cpu, d) => {
  sseAvail(cpu);
  const x = cpu.xmm, s = d.reg * 4;
  if (d.mod === 3) { const t = d.rm * 4; x[t] = x[s]; x[t + 1] = x[s + 1]; } else cpu.mem.wr64(cpu.ea(d), x[s], x[s + 1]);
};
/** movq xmm, xmm/m64 (F3 0F 7E): the upper half is zeroed. */
const movq_Vq_Wq: Handler = (cpu, d) => {
  sseAvail(cpu);
  const x = cpu.xmm, t = d.reg * 4;
  let lo: number, hi: number;
  if (d.mod === 3) { const s = d.rm * 4; lo = x[s]; hi = x[s + 1]; } else { const m = cpu.mem; lo = m.rd64(cpu.ea(d)); hi = m.hi; }
  x[t] = lo; x[t + 1] = hi; x[t + 2] = 0; x[t + 3] = 0;
};
/** movq xmm/m64, xmm (66 0F D6): a register destination gets its upper half zeroed. */
const movq_Wq_Vq: Handler = (cpu, d) => {
  sseAvail(cpu);
  const x = cpu.xmm, s = d.reg * 4;
  if (d.mod === 3) { const t = d.rm * 4; const lo = x[s], hi = x[s + 1]; x[t] = lo; x[t + 1] = hi; x[t + 2] = 0; x[t + 3] = 0; } else cpu.mem.wr64(cpu.ea(d), x[s], x[s + 1]);
};

// ---- half moves ----------------------------------------------------------------------

/** movlps/movlpd xmm, m64: bits 0..63 from memory. */
const movlps_Vq_Mq: Handler = (cpu, d) => {
  sseAvail(cpu);
  const m = cpu.mem, lo = m.rd64(cpu.ea(d)), t = d.reg * 4;
  cpu.xmm[t] = lo; cpu.xmm[t + 1] = m.hi;
};
/** movhps/movhpd xmm, m64: bits 64..127 from memory. */
const movhps_Vq_Mq: Handler = (cpu, d) => {
  sseAvail(cpu);
  const m = cpu.mem, lo = m.rd64(cpu.ea(d)), t = d.reg * 4;
  cpu.xmm[t + 2] = lo; cpu.xmm[t + 3] = m.hi;
};
/** movhlps xmm, xmm: low half := the source's high half. */
const movhlps_Vq_Uq: Handler = (cpu, d) => {
  sseAvail(cpu);
  const x = cpu.xmm, s = d.rm * 4, t = d.reg * 4;
  x[t] = x[s + 2]; x[t + 1] = x[s + 3];
};
/** movlhps xmm, xmm: high half := the source's low half. */
const movlhps_Vq_Uq: Handler = (cpu, d) => {
  sseAvail(cpu);
  const x = cpu.xmm, s = d.rm * 4, t = d.reg * 4;
  x[t + 2] = x[s]; x[t + 3] = x[s + 1];
};
const movlps_Mq_Vq: Handler = (cpu, d) => {
  sseAvail(cpu);
  const s = d.reg * 4;
  cpu.mem.wr64(cpu.ea(d), cpu.xmm[s], cpu.xmm[s + 1]);
};
const movhps_Mq_Vq: Handler = (cpu, d) => {
  sseAvail(cpu);
  const s = d.reg * 4;
  cpu.mem.wr64(cpu.ea(d), cpu.xmm[s + 2], cpu.xmm[s + 3]);
};

// ---- movd / movq with general registers ---------------------------------------------

/** movd xmm, r/m32 and movq xmm, r/m64 (66 [REX.W] 0F 6E): zero-extended into the register. */
const movd_Vy_Ey: Handler = (cpu, d) => {
  sseAvail(cpu);
  const w = (d.rex & 8) !== 0;
  let lo: number, hi = 0;
  if (d.mod === 3) { lo = cpu.r[d.rm * 2]; if (w) hi = cpu.r[d.rm * 2 + 1]; } else if (w) { const m = cpu.mem; lo = m.rd64(cpu.ea(d)); hi = m.hi; } else lo = cpu.mem.rd32(cpu.ea(d));
  const x = cpu.xmm, t = d.reg * 4;
  x[t] = lo; x[t + 1] = hi; x[t + 2] = 0; x[t + 3] = 0;
};
/** movd r/m32, xmm and movq r/m64, xmm (66 [REX.W] 0F 7E). */
const movd_Ey_Vy: Handler = (cpu, d) => {
  sseAvail(cpu);
  const w = (d.rex & 8) !== 0;
  const s = d.reg * 4, lo = cpu.xmm[s], hi = w ? cpu.xmm[s + 1] : 0;
  if (d.mod === 3) { cpu.r[d.rm * 2] = lo; cpu.r[d.rm * 2 + 1] = hi; } else if (w) cpu.mem.wr64(cpu.ea(d), lo, hi);
  else cpu.mem.wr32(cpu.ea(d), lo);
};

// ---- masks -----------------------------------------------------------------------------

/** movmskps r32, xmm: the four sign bits. */
const movmskps_Gd_Ups: Handler = (cpu, d) => {
  sseAvail(cpu);
  const x = cpu.xmm, s = d.rm * 4;
  const v = (x[s] >>> 31) | ((x[s + 1] >>> 31) << 1) | ((x[s + 2] >>> 31) << 2) | ((x[s + 3] >>> 31) << 3);
  cpu.r[d.reg * 2] = v; cpu.r[d.reg * 2 + 1] = 0;
};
const movmskpd_Gd_Upd: Handler = (cpu, d) => {
  sseAvail(cpu);
  const x = cpu.xmm, s = d.rm * 4;
  cpu.r[d.reg * 2] = (x[s + 1] >>> 31) | ((x[s + 3] >>> 31) << 1); cpu.r[d.reg * 2 + 1] = 0;
};
/** pmovmskb r32, xmm: the sixteen byte sign bits. */
const pmovmskb_Gd_Udq: Handler = (cpu, d) => {
  sseAvail(cpu);
  const x = cpu.xmm, s = d.rm * 4;
  let v = 0;
  for (let i = 3; i >= 0; i--) {
    const w = x[s + i];
    v = (v << 4) | ((w >>> 31) << 3) | (((w >>> 23) & 1) << 2) | (((w >>> 15) & 1) << 1) | ((w >>> 7) & 1);
  }
  cpu.r[d.reg * 2] = v; cpu.r[d.reg * 2 + 1] = 0;
};

// ---- non-temporal stores ---------------------------------------------------------------

/** movnti m32/m64, r (0F C3): a general-register store, so no SSE availability checks. */
const movnti_My_Gy: Handler = (cpu, d) => {
  const w = (d.rex & 8) !== 0;
  const lin = cpu.ea(d);
  if (w) cpu.mem.wr64(lin, cpu.r[d.reg * 2], cpu.r[d.reg * 2 + 1]);
  else cpu.mem.wr32(lin, cpu.r[d.reg * 2]);
};

/** maskmovdqu xmm, xmm: the bytes of the first operand whose mask byte has its top bit set
 *  go to [seg:rDI] (DS unless overridden). The host faults on the whole 16 bytes whatever the
 *  mask (the SDM allows that), before writing any. */
const maskmovdqu_Vdq_Udq: Handler = (cpu, d) => {
  sseAvail(cpu);
  const seg = d.segOvr >= 0 ? d.segOvr : Seg.DS;
  const base = cpu.segAddr(seg, cpu.r[14], cpu.r[15], d.asz);
  const x = cpu.xmm, s = d.reg * 4, mk = d.rm * 4;
  const m = cpu.mem;
  m.probeWrite(base, 16);
  for (let i = 0; i < 16; i++) if ((x[mk + (i >> 2)] >> ((i & 3) * 8 + 7)) & 1) m.wr8(base + i, (x[s + (i >> 2)] >> ((i & 3) * 8)) & 0xff);
};

// ---- MXCSR -------------------------------------------------------------------------------

/** ldmxcsr m32: #GP(0) if a reserved bit (16..31) is set. */
const ldmxcsr: Handler = (cpu, d) => {
  sseAvail(cpu);
  const v = cpu.mem.rd32(cpu.ea(d));
  if ((v & 0xffff0000) !== 0) throw new CpuFault(Vec.GP, 0);
  cpu.mxcsr = v;
};
const stmxcsr: Handler = (cpu, d) => {
  sseAvail(cpu);
  cpu.mem.wr32(cpu.ea(d), cpu.mxcsr);
};
grp15Mem[2] = ldmxcsr;
grp15Mem[3] = stmxcsr;

// ---- registration ----------------------------------------------------------------------

const X = OpMap.X0F;
const regOnly = (h: Handler) => (d: { mod: number }) => (d.mod === 3 ? h : undefined);
const memOnly = (h: Handler) => (d: { mod: number }) => (d.mod !== 3 ? h : undefined);
const pfx = byPrefix;

def(X, 0x10, { modrm: true, sel: pfx(movVWu, movVWu, movss_Vss_Wss, movsd_Vsd_Wsd) });
def(X, 0x11, { modrm: true, sel: pfx(movWVu, movWVu, movss_Wss_Vss, movsd_Wsd_Vsd) });
def(X, 0x12, { modrm: true, sel: (d) => (d.mp === 0 ? (d.mod === 3 ? movhlps_Vq_Uq : movlps_Vq_Mq) : d.mp === 1 && d.mod !== 3 ? movlps_Vq_Mq : undefined) });
def(X, 0x13, { modrm: true, sel: (d) => (d.mp <= 1 && d.mod !== 3 ? movlps_Mq_Vq : undefined) });
def(X, 0x16, { modrm: true, sel: (d) => (d.mp === 0 ? (d.mod === 3 ? movlhps_Vq_Uq : movhps_Vq_Mq) : d.mp === 1 && d.mod !== 3 ? movhps_Vq_Mq : undefined) });
def(X, 0x17, { modrm: true, sel: (d) => (d.mp <= 1 && d.mod !== 3 ? movhps_Mq_Vq : undefined) });
def(X, 0x28, { modrm: true, sel: pfx(movVWa, movVWa) });
def(X, 0x29, { modrm: true, sel: pfx(movWVa, movWVa) });
def(X, 0x2b, { modrm: true, sel: (d) => (d.mp <= 1 && d.mod !== 3 ? movWVa : undefined) });
def(X, 0x50, { modrm: true, sel: (d) => (d.mod !== 3 ? undefined : d.mp === 0 ? movmskps_Gd_Ups : d.mp === 1 ? movmskpd_Gd_Upd : undefined) });
def(X, 0x6e, { modrm: true, sel: pfx(undefined, movd_Vy_Ey) });
def(X, 0x6f, { modrm: true, sel: pfx(undefined, movVWa, movVWu) });
def(X, 0x7e, { modrm: true, sel: pfx(undefined, movd_Ey_Vy, movq_Vq_Wq) });
def(X, 0x7f, { modrm: true, sel: pfx(undefined, movWVa, movWVu) });
def(X, 0xc3, { modrm: true, sel: (d) => (d.mp === 0 && d.mod !== 3 ? movnti_My_Gy : undefined) });
def(X, 0xd6, { modrm: true, sel: pfx(undefined, movq_Wq_Vq) });
def(X, 0xd7, { modrm: true, sel: (d) => (d.mp === 1 ? regOnly(pmovmskb_Gd_Udq)(d) : undefined) });
def(X, 0xe7, { modrm: true, sel: (d) => (d.mp === 1 ? memOnly(movWVa)(d) : undefined) });
def(X, 0xf7, { modrm: true, sel: (d) => (d.mp === 1 ? regOnly(maskmovdqu_Vdq_Udq)(d) : undefined) });

