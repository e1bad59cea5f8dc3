// Instruction decoder: legacy prefixes, REX, opcode maps, ModRM/SIB, displacement and
// immediate, for 16-, 32- and 64-bit code. It produces an Insn whose handler comes from the
// opcode table (insn.ts); anything the table does not define decodes to a #UD handler, so
// the fault is raised only if the instruction is actually executed.

import { CpuFault, Vec } from './fault.js';
import { Imm, Insn, Mp, OPS, P, type Handler, type OpDef } from './insn.js';
import { Mode, RIP_BASE, R8_HIGH, Seg } from './state.js';
import { specialize } from './fast.js';

/** Whether the decoder picks specialized handlers (fast.ts); tests turn it off to check the
 *  generic handlers too. */
let useFast = true;
export function setSpecialization(on: boolean): void { useFast = on; }

export const udHandler: Handler = () => { throw new CpuFault(Vec.UD); };
/** An instruction longer than 15 bytes: #GP(0) when executed. */
const tooLongHandler: Handler = () => { throw new CpuFault(Vec.GP, 0); };

/** Reads instruction bytes; returns -1 past what may be fetched (unmapped or not executable). */
export type ByteSource = (offset: number) => number;

const MAX_LEN = 15;

/** Thrown inside decode when the bytes run out (a fetch fault); carries the byte offset. */
class FetchEnd { constructor(readonly offset: number) {} }

/**
 * Decode one instruction. `src(i)` gives the byte at offset i from the instruction start.
 * Returns the Insn, or the offset of the first unreadable byte (a number) if the
 * instruction runs into memory that cannot be fetched.
 */
export function decode(src: ByteSource, mode: Mode): Insn | number {
  try {
    return decodeInner(src, mode);
  } catch (e) {
    if (e instanceof FetchEnd) return e.offset;
    throw e;
  }
}

function decodeInner(src: ByteSource, mode: Mode): Insn {
  const d = new Insn(udHandler);
  let pos = 0;
  const byte = (): number => {
    if (pos >= MAX_LEN) throw new TooLong();
    const b = src(pos);
    if (b < 0) throw new FetchEnd(pos);
    pos++;
    return b;
  };
  try {
    return decodeBody(d, byte, mode, () => pos);
  } catch (e) {
    if (e instanceof TooLong) {
      d.h = tooLongHandler;
      d.len = MAX_LEN;
      return d;
    }
    throw e;
  }
}

class TooLong {}

function decodeBody(d: Insn, byte: () => number, mode: Mode, posNow: () => number): Insn {
  const long = mode === Mode.Long64;
  let b = byte();
  let pfx = 0;
  let lastRep = 0; // 0, P.REP or P.REPNE: the last of F2/F3
  let segOvr = -1;
  let rex = 0;
  // Legacy prefixes, in any order; a REX prefix counts only directly before the opcode.
  for (;;) {
    switch (b) {
      case 0xf0: pfx |= P.LOCK; break;
      case 0xf2: pfx |= P.REPNE; lastRep = P.REPNE; break;
      case 0xf3: pfx |= P.REP; lastRep = P.REP; break;
      case 0x66: pfx |= P.OPSIZE; break;
      case 0x67: pfx |= P.ADSIZE; break;
      case 0x26: segOvr = Seg.ES; break;
      case 0x2e: segOvr = Seg.CS; break;
      case 0x36: segOvr = Seg.SS; break;
      case 0x3e: segOvr = Seg.DS; break;
      case 0x64: segOvr = Seg.FS; break;
      case 0x65: segOvr = Seg.GS; break;
      default:
        if (long && (b & 0xf0) === 0x40) {
          rex = b;
          b = byte();
          if ((b & 0xf0) === 0x40 || isLegacyPrefix(b)) { rex = 0; continue; }
        }
        return decodeOpcode(d, byte, mode, b, pfx, lastRep, segOvr, rex, posNow);
    }
    rex = 0;
    b = byte();
  }
}

function isLegacyPrefix(b: number): boolean {
  return b === 0xf0 || b === 0xf2 || b === 0xf3 || b === 0x66 || b === 0x67 ||
    b === 0x26 || b === 0x2e || b === 0x36 || b === 0x3e || b === 0x64 || b === 0x65;
}

function decodeOpcode(d: Insn, byte: () => number, mode: Mode, b: number, pfx: number, lastRep: number,
  segOvr: number, rex: number, posNow: () => number): Insn {
  const long = mode === Mode.Long64;
  let map = 0;
  if (b === 0x0f) {
    b = byte();
    if (b === 0x38) { map = 2; b = byte(); } else if (b === 0x3a) { map = 3; b = byte(); } else map = 1;
  }
  const op = map * 256 + b;
  const def: OpDef | undefined = OPS[op];
  d.op = op;
  d.mode = mode;
  d.pfx = pfx | (rex ? P.REX : 0);
  d.rex = rex;
  d.mp = lastRep === P.REP ? Mp.F3 : lastRep === P.REPNE ? Mp.F2 : (pfx & P.OPSIZE) ? Mp.X66 : Mp.NONE;
  d.segOvr = segOvr;

  // Operand and address size.
  const rexW = (rex & 8) !== 0;
  const defBits16 = mode === Mode.Real || mode === Mode.Prot16;
  if (def?.byte) d.osz = 1;
  else if (long) {
    if (rexW) d.osz = 8;
    else if (def?.f64) d.osz = 8;
    else if (pfx & P.OPSIZE) d.osz = 2;
    else d.osz = def?.d64 ? 8 : 4;
  } else {
    d.osz = (defBits16 !== ((pfx & P.OPSIZE) !== 0)) ? 2 : 4;
  }
  if (long) d.asz = (pfx & P.ADSIZE) ? 4 : 8;
  else d.asz = (defBits16 !== ((pfx & P.ADSIZE) !== 0)) ? 2 : 4;

  if (!def || (def.noLong && long)) {
    // Still consume a ModRM for the VEX/EVEX-looking bytes? No: unknown opcodes are #UD
    // with the length of what was read, which only matters for the fault address (none).
    d.h = udHandler;
    d.len = posNow();
    return d;
  }

  if (def.modrm) decodeModrm(d, byte, long, rex);
  else {
    d.rm = (b & 7) | ((rex & 1) << 3);
    d.reg = d.rm;
    d.rm8 = d.reg8 = (!rex && d.rm >= 4 && d.rm < 8) ? d.rm - 4 + R8_HIGH : d.rm;
  }
  if (!def.modrm) d.seg = segOvr >= 0 ? segOvr : Seg.DS;

  const imm = def.immSel ? def.immSel(d) : (def.imm ?? Imm.None);
  if (imm !== Imm.None) readImm(d, byte, imm);
  d.len = posNow();
  d.cycles = def.cycles ?? 1;
  d.end = def.end === true;
  const h = def.sel ? def.sel(d) : def.h;
  d.h = h ?? udHandler;
  if (pfx & P.LOCK) {
    const ok = typeof def.lock === 'function' ? def.lock(d) : def.lock === true;
    if (!ok || d.mod === 3) d.h = udHandler;
  } else if (h !== undefined && useFast) {
    const f = specialize(d);
    if (f !== undefined) d.h = f;
  }
  return d;
}

function decodeModrm(d: Insn, byte: () => number, long: boolean, rex: number): void {
  const m = byte();
  const mod = m >> 6;
  const reg = ((m >> 3) & 7) | ((rex & 4) << 1);
  d.mod = mod;
  d.reg = reg;
  d.reg8 = (!rex && reg >= 4 && reg < 8) ? reg - 4 + R8_HIGH : reg;
  const rm3 = m & 7;
  if (mod === 3) {
    d.rm = rm3 | ((rex & 1) << 3);
    d.rm8 = (!rex && d.rm >= 4 && d.rm < 8) ? d.rm - 4 + R8_HIGH : d.rm;
    return;
  }
  d.rm = rm3;
  if (d.asz === 2) {
    decodeModrm16(d, byte, mod, rm3);
  } else {
    if (rm3 === 4) {
      const sib = byte();
      const idx = ((sib >> 3) & 7) | ((rex & 2) << 2);
      d.index = idx === 4 ? -1 : idx;
      d.scale = sib >> 6;
      const base = sib & 7;
      if (base === 5 && mod === 0) {
        d.base = -1;
        d.disp = disp32(byte);
      } else d.base = base | ((rex & 1) << 3);
    } else if (rm3 === 5 && mod === 0) {
      d.base = long ? RIP_BASE : -1;
      d.disp = disp32(byte);
    } else d.base = rm3 | ((rex & 1) << 3);
    if (mod === 1) d.disp = (byte() << 24) >> 24;
    else if (mod === 2) d.disp = disp32(byte);
  }
  // Default segment: SS for rsp/rbp-based addresses, else DS.
  const b = d.base;
  d.seg = d.segOvr >= 0 ? d.segOvr : (b === 4 || b === 5) ? Seg.SS : Seg.DS;
}

// 16-bit addressing: base/index pairs encoded in rm. Stored as base/index with scale 0.
const RM16_BASE = [3, 3, 5, 5, 6, 7, 5, 3]; // bx bx bp bp si di bp bx
const RM16_INDEX = [6, 7, 6, 7, -1, -1, -1, -1]; // si di si di
function decodeModrm16(d: Insn, byte: () => number, mod: number, rm3: number): void {
  if (mod === 0 && rm3 === 6) {
    d.base = -1; d.index = -1;
    d.disp = byte() | (byte() << 8);
  } else {
    d.base = RM16_BASE[rm3];
    d.index = RM16_INDEX[rm3];
    if (mod === 1) d.disp = (byte() << 24) >> 24;
    else if (mod === 2) d.disp = ((byte() | (byte() << 8)) << 16) >> 16;
  }
  d.scale = 0;
  const bp = d.base === 5;
  d.seg = d.segOvr >= 0 ? d.segOvr : bp ? Seg.SS : Seg.DS;
}

function disp32(byte: () => number): number {
  return byte() | (byte() << 8) | (byte() << 16) | (byte() << 24);
}

function readImm(d: Insn, byte: () => number, kind: Imm): void {
  switch (kind) {
    case Imm.Ib: d.imm = (byte() << 24) >> 24; d.immHi = d.imm >> 31; break;
    case Imm.IbU: d.imm = byte(); break;
    case Imm.Iw: d.imm = byte() | (byte() << 8); break;
    case Imm.Iz:
      if (d.osz === 2) d.imm = byte() | (byte() << 8);
      else { d.imm = disp32(byte); d.immHi = d.imm >> 31; }
      break;
    case Imm.Iv:
      if (d.osz === 2) d.imm = byte() | (byte() << 8);
      else if (d.osz === 4) d.imm = disp32(byte);
      else { d.imm = disp32(byte); d.immHi = disp32(byte); }
      break;
    case Imm.IwIb: d.imm = byte() | (byte() << 8); d.imm2 = byte(); break;
    case Imm.Ap:
      d.imm = d.osz === 2 ? byte() | (byte() << 8) : disp32(byte);
      d.imm2 = byte() | (byte() << 8);
      break;
    case Imm.Moffs:
      if (d.asz === 2) d.imm = byte() | (byte() << 8);
      else if (d.asz === 4) d.imm = disp32(byte);
      else { d.imm = disp32(byte); d.immHi = disp32(byte); }
      break;
  }
}
