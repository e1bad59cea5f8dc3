// Instructions that exist only outside 64-bit mode (#UD there, their opcodes reused):
// pusha/popa (60, 61), bound (62), arpl (63; movsxd in 64-bit mode), the BCD adjustments
// daa das aaa aas aam aad (27 2F 37 3F D4 D5) and salc (D6).

import { CpuFault, Vec, ud } from '../fault.js';
import { F, Mode } from '../state.js';
import { FS, getFlags, materialize, setFlags } from '../flags.js';
import { def, Imm, type Handler } from '../insn.js';
import { movsxdHandler } from './mov.js';

/** pusha: AX CX DX BX, the original SP, BP SI DI. */
const pusha: Handler = (cpu, d) => {
  const r = cpu.r, sz = d.osz, sp = r[8], sph = r[9];
  try {
    for (let i = 0; i < 8; i++) cpu.push(sz, i === 4 ? sp : r[i * 2], 0);
  } catch (e) { r[8] = sp; r[9] = sph; throw e; }
};
/** popa: DI SI BP, skip SP, BX DX CX AX. All eight are read before any register changes. */
const popa: Handler = (cpu, d) => {
  const sz = d.osz;
  const v7 = cpu.peek(sz, 0), v6 = cpu.peek(sz, sz), v5 = cpu.peek(sz, 2 * sz);
  const v3 = cpu.peek(sz, 4 * sz), v2 = cpu.peek(sz, 5 * sz), v1 = cpu.peek(sz, 6 * sz), v0 = cpu.peek(sz, 7 * sz);
  cpu.setReg(7, sz, v7, 0); cpu.setReg(6, sz, v6, 0); cpu.setReg(5, sz, v5, 0);
  cpu.setReg(3, sz, v3, 0); cpu.setReg(2, sz, v2, 0); cpu.setReg(1, sz, v1, 0); cpu.setReg(0, sz, v0, 0);
  cpu.adjustSp(8 * sz);
};

function sx(v: number, sz: number): number { return sz === 2 ? (v << 16) >> 16 : v | 0; }
/** bound Gv, Ma: #BR unless lower <= index <= upper (signed). */
const bound: Handler = (cpu, d) => {
  const sz = d.osz;
  const idx = sx(cpu.getReg(d.reg, sz), sz);
  const lo = sx(cpu.rd(cpu.ea(d), sz), sz), hi = sx(cpu.rd(cpu.ea(d, sz), sz), sz);
  if (idx < lo || idx > hi) throw new CpuFault(Vec.BR);
};

/** arpl Ew, Gw: raise the RPL of the destination selector to the source's; ZF = adjusted. */
const arpl: Handler = (cpu, d) => {
  if (cpu.mode === Mode.Real) ud();
  const lin = d.mod === 3 ? 0 : cpu.ea(d);
  const dst = cpu.getE(d, 2, lin), src = cpu.getG(d, 2);
  const f = cpu.f;
  if ((dst & 3) < (src & 3)) {
    cpu.setE(d, 2, lin, (dst & ~3) | (src & 3), 0);
    materialize(f);
    f[FS.FLAGS] |= F.ZF;
  } else {
    materialize(f);
    f[FS.FLAGS] &= ~F.ZF;
  }
};

const PARITY = new Uint8Array(256);
for (let i = 0; i < 256; i++) { let p = 1; for (let b = i; b; b >>= 1) p ^= b & 1; PARITY[i] = p; }

/** Flags with SF ZF PF from an 8-bit result, and the given CF AF OF (other arithmetic bits
 *  cleared), keeping the non-arithmetic bits. */
function setBcdFlags(f: Int32Array, old: number, al: number, cfAfOf: number): void {
  let v = (old & ~F.ARITH) | cfAfOf;
  if (al & 0x80) v |= F.SF;
  if (al === 0) v |= F.ZF;
  if (PARITY[al]) v |= F.PF;
  setFlags(f, v);
}

/** daa / das (SDM pseudo-code). OF is undefined: this gives the OF of the last add/sub,
 *  as the AMD host does for daa. */
function decimalAdjust(sub: boolean): Handler {
  return (cpu) => {
    const r = cpu.r, f = cpu.f;
    const fl = getFlags(f);
    const oldAl = r[0] & 0xff, oldCf = (fl & F.CF) !== 0;
    let al = oldAl, cf = false, af = false, of = false;
    if ((al & 0xf) > 9 || (fl & F.AF)) {
      const t = sub ? al - 6 : al + 6;
      cf = oldCf || t < 0 || t > 0xff;
      of = sub ? ((al ^ 6) & (al ^ t) & 0x80) !== 0 : ((al ^ t) & (6 ^ t) & 0x80) !== 0;
      al = t & 0xff; af = true;
    }
    if (oldAl > 0x99 || oldCf) {
      const t = sub ? al - 0x60 : al + 0x60;
      of = sub ? ((al ^ 0x60) & (al ^ t) & 0x80) !== 0 : ((al ^ t) & (0x60 ^ t) & 0x80) !== 0;
      al = t & 0xff; cf = true;
    } else if (!sub) cf = false;
    r[0] = (r[0] & ~0xff) | al;
    setBcdFlags(f, fl, al, (cf ? F.CF : 0) | (af ? F.AF : 0) | (of ? F.OF : 0));
  };
}

/** aaa / aas: AX += 0x106 (aaa) or AX -= 6, AH -= 1 (aas) when an adjustment is due; AL keeps
 *  its low nibble. OF SF ZF PF are undefined: computed from AL as the host does. */
function asciiAdjust(sub: boolean): Handler {
  return (cpu) => {
    const r = cpu.r, f = cpu.f;
    const fl = getFlags(f);
    let ax = r[0] & 0xffff;
    const adj = (ax & 0xf) > 9 || (fl & F.AF) !== 0;
    if (adj) ax = sub ? ((ax - 6) & 0xffff) - 0x100 : ax + 0x106;
    ax = (ax & 0xff0f) & 0xffff;
    r[0] = (r[0] & ~0xffff) | ax;
    setBcdFlags(f, fl, ax & 0xff, adj ? F.CF | F.AF : 0);
  };
}

/** aam ib: AH = AL / ib, AL = AL % ib; #DE for 0. */
const aam: Handler = (cpu, d) => {
  const base = d.imm & 0xff;
  if (base === 0) throw new CpuFault(Vec.DE);
  const r = cpu.r, al = r[0] & 0xff;
  const q = Math.floor(al / base), m = al % base;
  r[0] = (r[0] & ~0xffff) | (q << 8) | m;
  setBcdFlags(cpu.f, getFlags(cpu.f), m, 0);
};
/** aad ib: AL = AL + AH * ib, AH = 0. CF AF OF undefined: those of the 8-bit add. */
const aad: Handler = (cpu, d) => {
  const r = cpu.r;
  const al = r[0] & 0xff, t = ((r[0] >> 8) & 0xff) * (d.imm & 0xff) & 0xff;
  const res = (al + t) & 0xff;
  const cf = al + t > 0xff, af = ((al ^ t ^ res) & 0x10) !== 0, of = ((al ^ res) & (t ^ res) & 0x80) !== 0;
  r[0] = (r[0] & ~0xffff) | res;
  setBcdFlags(cpu.f, getFlags(cpu.f), res, (cf ? F.CF : 0) | (af ? F.AF : 0) | (of ? F.OF : 0));
};
/** salc: AL = CF ? FF : 0, flags unchanged. */
const salc: Handler = (cpu) => {
  const r = cpu.r;
  r[0] = (r[0] & ~0xff) | ((getFlags(cpu.f) & F.CF) ? 0xff : 0);
};

def(0, 0x60, { noLong: true, h: pusha, cycles: 8 });
def(0, 0x61, { noLong: true, h: popa, cycles: 8 });
def(0, 0x62, { modrm: true, noLong: true, sel: (d) => (d.mod !== 3 ? bound : undefined), cycles: 4 });
def(0, 0x63, { modrm: true, sel: (d) => (d.mode === Mode.Long64 ? movsxdHandler : arpl) });
def(0, 0x27, { noLong: true, h: decimalAdjust(false), cycles: 2 });
def(0, 0x2f, { noLong: true, h: decimalAdjust(true), cycles: 2 });
def(0, 0x37, { noLong: true, h: asciiAdjust(false), cycles: 2 });
def(0, 0x3f, { noLong: true, h: asciiAdjust(true), cycles: 2 });
def(0, 0xd4, { noLong: true, imm: Imm.IbU, h: aam, cycles: 8 });
def(0, 0xd5, { noLong: true, imm: Imm.IbU, h: aad, cycles: 4 });
def(0, 0xd6, { noLong: true, h: salc });
