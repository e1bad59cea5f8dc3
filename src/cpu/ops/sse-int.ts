// SSE2 integer SIMD on XMM registers (66 0F xx): add/subtract (wrapping and saturating),
// multiplies (pmullw pmulhw pmulhuw pmuludq pmaddwd), averages, min/max, psadbw, compares,
// logic, and the shifts by register/memory count and by immediate (66 0F 71/72/73, with the
// byte shifts pslldq/psrldq). The no-prefix forms of these opcodes are MMX: #UD here.
//
// Each op reads the destination into A and the source into B (scratch values with every lane
// view), computes R and stores it, so a register may be both operands.

import { byPrefix, def, Imm, Map as OpMap, type Handler, type Insn } from '../insn.js';
import { A, B, loadV, loadW, R, setX, sseAvail } from './sse-common.js';

type Lanes = typeof A;

/** A two-operand op xmm, xmm/m128 (aligned) computing R from A and B. */
function op2(f: (a: Lanes, b: Lanes, r: Lanes) => void): (d: Insn) => Handler | undefined {
  const h: Handler = (cpu, d) => {
    sseAvail(cpu);
    loadW(cpu, d, true);
    loadV(cpu, d);
    f(A, B, R);
    setX(cpu, d.reg, R.i32);
  };
  return byPrefix(undefined, h);
}

const sat8 = (v: number) => (v > 127 ? 127 : v < -128 ? -128 : v);
const sat16 = (v: number) => (v > 32767 ? 32767 : v < -32768 ? -32768 : v);
const satU8 = (v: number) => (v > 255 ? 255 : v < 0 ? 0 : v);
const satU16 = (v: number) => (v > 65535 ? 65535 : v < 0 ? 0 : v);

// ---- add / subtract ----------------------------------------------------------------------

const paddb = op2((a, b, r) => { for (let i = 0; i < 16; i++) r.u8[i] = a.u8[i] + b.u8[i]; });
const paddw = op2((a, b, r) => { for (let i = 0; i < 8; i++) r.u16[i] = a.u16[i] + b.u16[i]; });
const paddd = op2((a, b, r) => { for (let i = 0; i < 4; i++) r.i32[i] = (a.i32[i] + b.i32[i]) | 0; });
const paddq = op2((a, b, r) => {
  for (let i = 0; i < 4; i += 2) {
    const lo = (a.i32[i] >>> 0) + (b.i32[i] >>> 0);
    r.i32[i] = lo | 0;
    r.i32[i + 1] = (a.i32[i + 1] + b.i32[i + 1] + (lo >= 4294967296 ? 1 : 0)) | 0;
  }
});
const psubb = op2((a, b, r) => { for (let i = 0; i < 16; i++) r.u8[i] = a.u8[i] - b.u8[i]; });
const psubw = op2((a, b, r) => { for (let i = 0; i < 8; i++) r.u16[i] = a.u16[i] - b.u16[i]; });
const psubd = op2((a, b, r) => { for (let i = 0; i < 4; i++) r.i32[i] = (a.i32[i] - b.i32[i]) | 0; });
const psubq = op2((a, b, r) => {
  for (let i = 0; i < 4; i += 2) {
    const lo = (a.i32[i] >>> 0) - (b.i32[i] >>> 0);
    r.i32[i] = lo | 0;
    r.i32[i + 1] = (a.i32[i + 1] - b.i32[i + 1] - (lo < 0 ? 1 : 0)) | 0;
  }
});
const paddsb = op2((a, b, r) => { for (let i = 0; i < 16; i++) r.i8[i] = sat8(a.i8[i] + b.i8[i]); });
const paddsw = op2((a, b, r) => { for (let i = 0; i < 8; i++) r.i16[i] = sat16(a.i16[i] + b.i16[i]); });
const psubsb = op2((a, b, r) => { for (let i = 0; i < 16; i++) r.i8[i] = sat8(a.i8[i] - b.i8[i]); });
const psubsw = op2((a, b, r) => { for (let i = 0; i < 8; i++) r.i16[i] = sat16(a.i16[i] - b.i16[i]); });
const paddusb = op2((a, b, r) => { for (let i = 0; i < 16; i++) r.u8[i] = satU8(a.u8[i] + b.u8[i]); });
const paddusw = op2((a, b, r) => { for (let i = 0; i < 8; i++) r.u16[i] = satU16(a.u16[i] + b.u16[i]); });
const psubusb = op2((a, b, r) => { for (let i = 0; i < 16; i++) r.u8[i] = satU8(a.u8[i] - b.u8[i]); });
const psubusw = op2((a, b, r) => { for (let i = 0; i < 8; i++) r.u16[i] = satU16(a.u16[i] - b.u16[i]); });

// ---- multiplies ----------------------------------------------------------------------------

const pmullw = op2((a, b, r) => { for (let i = 0; i < 8; i++) r.i16[i] = Math.imul(a.i16[i], b.i16[i]); });
const pmulhw = op2((a, b, r) => { for (let i = 0; i < 8; i++) r.i16[i] = (a.i16[i] * b.i16[i]) >> 16; });
const pmulhuw = op2((a, b, r) => { for (let i = 0; i < 8; i++) r.u16[i] = (a.u16[i] * b.u16[i]) >>> 16; });
/** pmuludq: the even unsigned dwords multiplied to full 64-bit products (in 16-bit pieces). */
const pmuludq = op2((a, b, r) => {
  for (let i = 0; i < 4; i += 2) {
    const x = a.u32[i], y = b.u32[i];
    const xl = x & 0xffff, xh = x >>> 16, yl = y & 0xffff, yh = y >>> 16;
    const ll = xl * yl, lh = xl * yh, hl = xh * yl;
    const mid = (ll >>> 16) + (lh & 0xffff) + (hl & 0xffff);
    r.i32[i] = (mid << 16) | (ll & 0xffff);
    r.i32[i + 1] = (xh * yh + (lh >>> 16) + (hl >>> 16) + Math.floor(mid / 65536)) | 0;
  }
});
const pmaddwd = op2((a, b, r) => {
  for (let i = 0; i < 4; i++) r.i32[i] = (a.i16[2 * i] * b.i16[2 * i] + a.i16[2 * i + 1] * b.i16[2 * i + 1]) | 0;
});

// ---- averages, min/max, sum of absolute differences -------------------------------------

const pavgb = op2((a, b, r) => { for (let i = 0; i < 16; i++) r.u8[i] = (a.u8[i] + b.u8[i] + 1) >> 1; });
const pavgw = op2((a, b, r) => { for (let i = 0; i < 8; i++) r.u16[i] = (a.u16[i] + b.u16[i] + 1) >> 1; });
const pminub = op2((a, b, r) => { for (let i = 0; i < 16; i++) r.u8[i] = Math.min(a.u8[i], b.u8[i]); });
const pmaxub = op2((a, b, r) => { for (let i = 0; i < 16; i++) r.u8[i] = Math.max(a.u8[i], b.u8[i]); });
const pminsw = op2((a, b, r) => { for (let i = 0; i < 8; i++) r.i16[i] = Math.min(a.i16[i], b.i16[i]); });
const pmaxsw = op2((a, b, r) => { for (let i = 0; i < 8; i++) r.i16[i] = Math.max(a.i16[i], b.i16[i]); });
/** psadbw: per 8-byte half, the sum of |a - b| in the low word of its quadword. */
const psadbw = op2((a, b, r) => {
  for (let h = 0; h < 2; h++) {
    let s = 0;
    for (let i = h * 8; i < h * 8 + 8; i++) s += Math.abs(a.u8[i] - b.u8[i]);
    r.i32[h * 2] = s; r.i32[h * 2 + 1] = 0;
  }
});

// ---- compares and logic ------------------------------------------------------------------

const pcmpeqb = op2((a, b, r) => { for (let i = 0; i < 16; i++) r.u8[i] = a.u8[i] === b.u8[i] ? 0xff : 0; });
const pcmpeqw = op2((a, b, r) => { for (let i = 0; i < 8; i++) r.u16[i] = a.u16[i] === b.u16[i] ? 0xffff : 0; });
const pcmpeqd = op2((a, b, r) => { for (let i = 0; i < 4; i++) r.i32[i] = a.i32[i] === b.i32[i] ? -1 : 0; });
const pcmpgtb = op2((a, b, r) => { for (let i = 0; i < 16; i++) r.u8[i] = a.i8[i] > b.i8[i] ? 0xff : 0; });
const pcmpgtw = op2((a, b, r) => { for (let i = 0; i < 8; i++) r.u16[i] = a.i16[i] > b.i16[i] ? 0xffff : 0; });
const pcmpgtd = op2((a, b, r) => { for (let i = 0; i < 4; i++) r.i32[i] = a.i32[i] > b.i32[i] ? -1 : 0; });
const pand = op2((a, b, r) => { for (let i = 0; i < 4; i++) r.i32[i] = a.i32[i] & b.i32[i]; });
const pandn = op2((a, b, r) => { for (let i = 0; i < 4; i++) r.i32[i] = ~a.i32[i] & b.i32[i]; });
const por = op2((a, b, r) => { for (let i = 0; i < 4; i++) r.i32[i] = a.i32[i] | b.i32[i]; });
const pxor = op2((a, b, r) => { for (let i = 0; i < 4; i++) r.i32[i] = a.i32[i] ^ b.i32[i]; });

// ---- shifts ------------------------------------------------------------------------------

const enum Sh { SLL = 0, SRL = 1, SRA = 2 }

/** Shift the lanes of v (in place) by n (any non-negative count; >= width clears or fills). */
function shiftLanes(v: Lanes, width: number, kind: number, n: number): void {
  if (n >= width) {
    if (kind !== Sh.SRA) { v.i32.fill(0); return; }
    n = width - 1;
  }
  switch (width) {
    case 16:
      for (let i = 0; i < 8; i++) v.i16[i] = kind === Sh.SLL ? v.i16[i] << n : kind === Sh.SRL ? v.u16[i] >>> n : v.i16[i] >> n;
      return;
    case 32:
      for (let i = 0; i < 4; i++) v.i32[i] = kind === Sh.SLL ? v.i32[i] << n : kind === Sh.SRL ? v.i32[i] >>> n : v.i32[i] >> n;
      return;
    default: // 64, logical only
      if (n === 0) return;
      for (let i = 0; i < 4; i += 2) {
        const lo = v.i32[i], hi = v.i32[i + 1];
        if (kind === Sh.SLL) {
          if (n >= 32) { v.i32[i + 1] = lo << (n - 32); v.i32[i] = 0; } else { v.i32[i + 1] = (hi << n) | (lo >>> (32 - n)); v.i32[i] = lo << n; }
        } else if (n >= 32) { v.i32[i] = hi >>> (n - 32); v.i32[i + 1] = 0; } else { v.i32[i] = (lo >>> n) | (hi << (32 - n)); v.i32[i + 1] = hi >>> n; }
      }
  }
}

/** psllw/pslld/psllq/psrlw/psrld/psrlq/psraw/psrad xmm, xmm/m128: the count is the source's
 *  low quadword as an unsigned number. */
function shiftByXmm(width: number, kind: number): (d: Insn) => Handler | undefined {
  const h: Handler = (cpu, d) => {
    sseAvail(cpu);
    const b = loadW(cpu, d, true);
    const a = loadV(cpu, d);
    const n = b[1] !== 0 || b[0] < 0 ? 64 : b[0];
    shiftLanes(A, width, kind, n);
    setX(cpu, d.reg, a);
  };
  return byPrefix(undefined, h);
}

/** The immediate shifts: 66 0F 71/72/73 /r ib on the ModRM.rm register. */
function shiftImm(width: number, kind: number): Handler {
  return (cpu, d) => {
    sseAvail(cpu);
    const x = cpu.xmm, o = d.rm * 4, a = A.i32;
    a[0] = x[o]; a[1] = x[o + 1]; a[2] = x[o + 2]; a[3] = x[o + 3];
    shiftLanes(A, width, kind, d.imm);
    setX(cpu, d.rm, a);
  };
}
/** pslldq/psrldq: whole-register byte shifts (counts above 15 clear it). */
function byteShift(left: boolean): Handler {
  return (cpu, d) => {
    sseAvail(cpu);
    const x = cpu.xmm, o = d.rm * 4, a = A.i32, n = d.imm;
    a[0] = x[o]; a[1] = x[o + 1]; a[2] = x[o + 2]; a[3] = x[o + 3];
    const s = A.u8, r = R.u8;
    for (let i = 0; i < 16; i++) {
      const j = left ? i - n : i + n;
      r[i] = j >= 0 && j < 16 ? s[j] : 0;
    }
    setX(cpu, d.rm, R.i32);
  };
}
function shiftGroup(hs: (Handler | undefined)[]): (d: Insn) => Handler | undefined {
  return (d) => (d.mp === 1 && d.mod === 3 ? hs[d.reg & 7] : undefined);
}

// ---- registration ----------------------------------------------------------------------

const X = OpMap.X0F;
const table: [number, (d: Insn) => Handler | undefined][] = [
  [0xd4, paddq], [0xfb, psubq], [0xfc, paddb], [0xfd, paddw], [0xfe, paddd], [0xf8, psubb], [0xf9, psubw], [0xfa, psubd],
  [0xec, paddsb], [0xed, paddsw], [0xe8, psubsb], [0xe9, psubsw], [0xdc, paddusb], [0xdd, paddusw], [0xd8, psubusb], [0xd9, psubusw],
  [0xd5, pmullw], [0xe5, pmulhw], [0xe4, pmulhuw], [0xf4, pmuludq], [0xf5, pmaddwd],
  [0xe0, pavgb], [0xe3, pavgw], [0xda, pminub], [0xde, pmaxub], [0xea, pminsw], [0xee, pmaxsw], [0xf6, psadbw],
  [0x74, pcmpeqb], [0x75, pcmpeqw], [0x76, pcmpeqd], [0x64, pcmpgtb], [0x65, pcmpgtw], [0x66, pcmpgtd],
  [0xdb, pand], [0xdf, pandn], [0xeb, por], [0xef, pxor],
  [0xd1, shiftByXmm(16, Sh.SRL)], [0xd2, shiftByXmm(32, Sh.SRL)], [0xd3, shiftByXmm(64, Sh.SRL)],
  [0xe1, shiftByXmm(16, Sh.SRA)], [0xe2, shiftByXmm(32, Sh.SRA)],
  [0xf1, shiftByXmm(16, Sh.SLL)], [0xf2, shiftByXmm(32, Sh.SLL)], [0xf3, shiftByXmm(64, Sh.SLL)],
];
for (const [op, sel] of table) def(X, op, { modrm: true, sel });
def(X, 0x71, { modrm: true, imm: Imm.IbU, sel: shiftGroup([undefined, undefined, shiftImm(16, Sh.SRL), undefined, shiftImm(16, Sh.SRA), undefined, shiftImm(16, Sh.SLL)]) });
def(X, 0x72, { modrm: true, imm: Imm.IbU, sel: shiftGroup([undefined, undefined, shiftImm(32, Sh.SRL), undefined, shiftImm(32, Sh.SRA), undefined, shiftImm(32, Sh.SLL)]) });
def(X, 0x73, { modrm: true, imm: Imm.IbU, sel: shiftGroup([undefined, undefined, shiftImm(64, Sh.SRL), byteShift(false), undefined, undefined, shiftImm(64, Sh.SLL), byteShift(true)]) });
