// Bit instructions: bt/bts/btr/btc (0F A3/AB/B3/BB, group 0F BA /4../7), bsf/bsr
// (0F BC/BD), tzcnt/lzcnt (F3 0F BC/BD) and popcnt (F3 0F B8).
//
// bt* with a memory operand and a register bit offset address the bit string: the offset is
// signed, and the access is the operand-sized word at EA + (offset >> log2(width)) * size,
// computed in address-size arithmetic. An immediate offset is taken modulo the width.
//
// Flags, as this AMD host (Zen 4) sets them where the SDM says "undefined":
//   bt*:          CF = the bit; OF SF ZF AF PF unchanged.
//   bsf/bsr:      ZF = (source == 0); PF = parity of the result index (source 0: PF = 1);
//                 CF OF SF AF = 0. A zero source leaves the destination unchanged, its upper
//                 half included at 32 bits (no zero-extension) -- as on Intel.
//   tzcnt/lzcnt:  CF = (source == 0), ZF = (result == 0); SF PF AF = 0; OF unchanged.
//   popcnt:       ZF = (source == 0); CF OF SF AF PF = 0 (as specified).

import type { Cpu } from '../cpu.js';
import { FS, materialize } from '../flags.js';
import { def, group, Imm, Map as OpMap, Mp, type Handler, type Insn } from '../insn.js';
import { F } from '../state.js';
import { leaOffset } from './mov.js';

const TWO32 = 4294967296;

export const enum Bt { BT = 0, BTS = 1, BTR = 2, BTC = 3 }

function setCF(cpu: Cpu, cf: number): void {
  const f = cpu.f;
  materialize(f);
  f[FS.FLAGS] = (f[FS.FLAGS] & ~F.CF) | cf;
}
/** Replace all six arithmetic flags (bsf/bsr/popcnt) or all but OF (tzcnt/lzcnt). */
function setArith(cpu: Cpu, v: number, keepOF: boolean): void {
  const f = cpu.f;
  materialize(f);
  const keep = keepOF ? f[FS.FLAGS] & F.OF : 0;
  f[FS.FLAGS] = (f[FS.FLAGS] & ~F.ARITH) | v | keep;
}

function parity(v: number): number {
  v &= 0xff; v ^= v >> 4; v ^= v >> 2; v ^= v >> 1;
  return (v & 1) === 0 ? F.PF : 0;
}

/** Apply op to bit `bit` of the value (lo, hi); returns the new low half, new high in btHi. */
let btHi = 0;
function btApply(op: number, lo: number, hi: number, bit: number): number {
  btHi = hi;
  if (op === Bt.BT) return lo;
  if (bit >= 32) {
    const m = 1 << (bit - 32);
    btHi = op === Bt.BTS ? hi | m : op === Bt.BTR ? hi & ~m : hi ^ m;
    return lo;
  }
  const m = 1 << bit;
  return op === Bt.BTS ? lo | m : op === Bt.BTR ? lo & ~m : lo ^ m;
}

/** The bit-string address: EA + byte displacement (dl, dh: signed 64-bit), in address size. */
function bitStringAddr(cpu: Cpu, d: Insn, dl: number, dh: number): number {
  const lo = leaOffset(cpu, d), hi = cpu.t;
  const s = (lo >>> 0) + (dl >>> 0);
  let l = s % TWO32;
  let h = (hi + dh + (s >= TWO32 ? 1 : 0)) | 0;
  if (d.asz === 4) h = 0;
  else if (d.asz === 2) { l &= 0xffff; h = 0; }
  return cpu.segAddr(d.seg, l | 0, h, d.asz);
}

/** bt* E, bit: `bit` already reduced to the operand width; lin the operand's address. */
function btAt(cpu: Cpu, d: Insn, op: number, lin: number, bit: number): void {
  const size = d.osz;
  const v = cpu.getE(d, size, lin), vh = size === 8 ? cpu.t : 0;
  const cf = bit >= 32 ? (vh >>> (bit - 32)) & 1 : (v >>> bit) & 1;
  if (op !== Bt.BT) {
    const r = btApply(op, v, vh, bit);
    cpu.setE(d, size, lin, r, btHi);
  }
  setCF(cpu, cf);
}

/** bt* Ev, Gv: a register bit offset; with memory it can reach beyond the operand. */
function btEG(op: number): Handler {
  return (cpu, d) => {
    const size = d.osz;
    const g = cpu.getReg(d.reg, size), gh = cpu.t;
    if (d.mod === 3) { btAt(cpu, d, op, 0, g & (size * 8 - 1)); return; }
    let dl: number, dh: number;
    if (size === 2) { const o = (g << 16) >> 16; dl = (o >> 4) * 2; dh = dl >> 31; }
    else if (size === 4) { dl = (g >> 5) * 4; dh = dl >> 31; }
    else {
      // (offset >> 6) * 8 == (offset >> 3) with the low three bits cleared, all signed 64-bit.
      dl = ((g >>> 3) | (gh << 29)) & ~7; dh = gh >> 3;
    }
    btAt(cpu, d, op, bitStringAddr(cpu, d, dl, dh), g & (size * 8 - 1));
  };
}

/** bt* Ev, Ib: the immediate is taken modulo the operand width. */
function btEI(op: number): Handler {
  return (cpu, d) => btAt(cpu, d, op, d.mod === 3 ? 0 : cpu.ea(d), d.imm & (d.osz * 8 - 1));
}

// ---- bsf bsr tzcnt lzcnt popcnt Gv, Ev -----------------------------------------------

function ctz32(x: number): number { return x === 0 ? 32 : 31 - Math.clz32(x & -x); }
function popcnt32(x: number): number {
  x = x - ((x >>> 1) & 0x55555555);
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  x = (x + (x >>> 4)) & 0x0f0f0f0f;
  return Math.imul(x, 0x01010101) >>> 24;
}

/** Source E at the operand size; high half in srcHi (0 below 64 bits). */
let srcHi = 0;
function srcE(cpu: Cpu, d: Insn): number {
  const size = d.osz;
  const v = d.mod === 3 ? cpu.getReg(d.rm, size) : cpu.rd(cpu.ea(d), size);
  srcHi = size === 8 ? cpu.t : 0;
  return v;
}

/** Index of the lowest set bit (v, vh nonzero). */
function lowBit(v: number, vh: number): number { return v !== 0 ? ctz32(v) : 32 + ctz32(vh); }
/** Index of the highest set bit (v, vh nonzero). */
function highBit(v: number, vh: number): number { return vh !== 0 ? 63 - Math.clz32(vh) : 31 - Math.clz32(v); }

function bsfBsr(high: boolean): Handler {
  return (cpu, d) => {
    const v = srcE(cpu, d), vh = srcHi;
    if ((v | vh) === 0) { setArith(cpu, F.ZF | F.PF, false); return; }
    const i = high ? highBit(v, vh) : lowBit(v, vh);
    cpu.setReg(d.reg, d.osz, i, 0);
    setArith(cpu, parity(i), false);
  };
}

const tzcnt: Handler = (cpu, d) => {
  const size = d.osz, w = size * 8;
  const v = srcE(cpu, d), vh = srcHi;
  const r = (v | vh) === 0 ? w : lowBit(v, vh);
  cpu.setReg(d.reg, size, r, 0);
  setArith(cpu, (r === w ? F.CF : 0) | (r === 0 ? F.ZF : 0), true);
};
const lzcnt: Handler = (cpu, d) => {
  const size = d.osz, w = size * 8;
  const v = srcE(cpu, d), vh = srcHi;
  const r = (v | vh) === 0 ? w : (size === 8 ? 63 : w - 1) - highBit(v, vh);
  cpu.setReg(d.reg, size, r, 0);
  setArith(cpu, (r === w ? F.CF : 0) | (r === 0 ? F.ZF : 0), true);
};
const popcnt: Handler = (cpu, d) => {
  const v = srcE(cpu, d), vh = srcHi;
  cpu.setReg(d.reg, d.osz, popcnt32(v) + popcnt32(vh), 0);
  setArith(cpu, (v | vh) === 0 ? F.ZF : 0, false);
};

// ---- registration --------------------------------------------------------------------

def(OpMap.X0F, 0xa3, { modrm: true, h: btEG(Bt.BT) });
def(OpMap.X0F, 0xab, { modrm: true, h: btEG(Bt.BTS), lock: true });
def(OpMap.X0F, 0xb3, { modrm: true, h: btEG(Bt.BTR), lock: true });
def(OpMap.X0F, 0xbb, { modrm: true, h: btEG(Bt.BTC), lock: true });
def(OpMap.X0F, 0xba, {
  modrm: true, imm: Imm.IbU,
  sel: group([undefined, undefined, undefined, undefined, btEI(Bt.BT), btEI(Bt.BTS), btEI(Bt.BTR), btEI(Bt.BTC)]),
  lock: (d) => (d.reg & 7) > 4,
});
const bsf = bsfBsr(false), bsr = bsfBsr(true);
def(OpMap.X0F, 0xbc, { modrm: true, sel: (d) => (d.mp === Mp.F3 ? tzcnt : bsf) });
def(OpMap.X0F, 0xbd, { modrm: true, sel: (d) => (d.mp === Mp.F3 ? lzcnt : bsr) });
def(OpMap.X0F, 0xb8, { modrm: true, sel: (d) => (d.mp === Mp.F3 ? popcnt : undefined) });
