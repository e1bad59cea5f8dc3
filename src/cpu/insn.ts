// The decoded form of one instruction, and the opcode table that drives the decoder.
// A decoded instruction is created once when its page is first executed and cached with
// its block; executing it only reads these fields.

import type { Cpu } from './cpu.js';

export type Handler = (cpu: Cpu, d: Insn) => void;

/** Prefix bits in Insn.pfx. */
export const enum P { LOCK = 1, REP = 2 /* F3 */, REPNE = 4 /* F2 */, OPSIZE = 8 /* 66 */, ADSIZE = 16 /* 67 */, REX = 32 }

/** The SSE mandatory-prefix selector: the last of 66/F3/F2 that applies. */
export const enum Mp { NONE = 0, X66 = 1, F3 = 2, F2 = 3 }

/** Immediate operand kinds. */
export const enum Imm {
  None = 0,
  Ib,      // 8 bits, sign-extended (arithmetic, push, jcc rel8)
  IbU,     // 8 bits, zero-extended (ports, counts, int n, selectors in shuffles)
  Iw,      // 16 bits, zero-extended (ret n, enter)
  Iz,      // 16 or 32 bits by operand size, sign-extended to 64 when the operand is 64-bit
  Iv,      // 16, 32 or 64 bits by operand size (mov r, imm)
  IwIb,    // enter: 16 then 8
  Ap,      // far pointer: offset (16/32 by operand size) then selector
  Moffs,   // moffs: address-size offset (64-bit in long mode)
}

export class Insn {
  h: Handler;
  len = 0;
  /** Opcode: map * 256 + byte (map 0 one-byte, 1 0F, 2 0F38, 3 0F3A). */
  op = 0;
  pfx = 0;
  rex = 0;
  mp: Mp = Mp.NONE;
  osz = 4;       // operand size in bytes: 1, 2, 4, 8
  asz = 8;       // address size in bytes: 2, 4, 8
  mod = 3;       // ModRM mod (3 = register form)
  reg = 0;       // ModRM reg with REX.R (or the register of a +r opcode)
  rm = 0;        // ModRM rm with REX.B (register form)
  reg8 = 0;      // reg as an 8-bit register code (see R8_HIGH)
  rm8 = 0;       // rm as an 8-bit register code
  base = -1;     // memory base register, RIP_BASE, or -1
  index = -1;    // memory index register or -1
  scale = 0;     // index shift 0..3
  disp = 0;      // displacement, int32
  seg = 3;       // segment of the memory operand (Seg), after overrides
  segOvr = -1;   // explicit segment override, or -1
  imm = 0;       // immediate, low 32 bits as int32
  immHi = 0;     // immediate, high 32 bits
  imm2 = 0;      // second immediate (enter's level, a far pointer's selector)
  cycles = 1;
  /** The code mode it was decoded for (Mode). */
  mode = 3;
  /** Ends its decoded block (control transfers, mode changes). */
  end = false;
  constructor(h: Handler) { this.h = h; }
}

export interface OpDef {
  /** The handler, unless `sel` picks one per decoded instruction. */
  h?: Handler;
  /** Picks the handler at decode time from the decoded fields (groups, mandatory prefixes,
   *  register vs memory form); undefined means #UD. */
  sel?: (d: Insn) => Handler | undefined;
  modrm?: boolean;
  imm?: Imm;
  /** Immediate kind chosen from the decoded ModRM (F6/F7: only TEST has one). */
  immSel?: (d: Insn) => Imm;
  byte?: boolean;   // 8-bit operand size
  d64?: boolean;    // 64-bit default operand size in long mode (push, pop, ...)
  f64?: boolean;    // always 64-bit in long mode (near branches)
  noLong?: boolean; // invalid in 64-bit mode
  /** Ends the decoded block: control transfers and anything that changes how code decodes. */
  end?: boolean;
  cycles?: number;
  /** LOCK is allowed (with a memory operand); otherwise LOCK is #UD. */
  lock?: boolean | ((d: Insn) => boolean);
}

/** The opcode table: index map * 256 + opcode. Filled by src/cpu/ops/*. */
export const OPS: (OpDef | undefined)[] = new Array(4 * 256).fill(undefined);

export const enum Map { ONE = 0, X0F = 1, X0F38 = 2, X0F3A = 3 }

export function def(map: number, opcode: number, d: OpDef): void {
  const k = map * 256 + opcode;
  if (OPS[k]) throw new Error(`opcode ${map}:${opcode.toString(16)} defined twice`);
  OPS[k] = d;
}

/** Define the same entry for opcode..opcode+7 (the +r forms); the handler reads d.rm. */
export function defRange(map: number, first: number, count: number, d: OpDef): void {
  for (let i = 0; i < count; i++) def(map, first + i, d);
}

/** Pick a handler by ModRM.reg (a group); undefined entries are #UD. */
export function group(hs: (Handler | undefined)[]): (d: Insn) => Handler | undefined {
  return (d) => hs[d.reg & 7];
}

/** Pick a handler by mandatory prefix: none, 66, F3, F2. */
export function byPrefix(none?: Handler, x66?: Handler, f3?: Handler, f2?: Handler): (d: Insn) => Handler | undefined {
  const t = [none, x66, f3, f2];
  return (d) => t[d.mp];
}
