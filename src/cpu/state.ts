// Register numbering and the layout of the per-vCPU state arrays. The interpreter and any
// emitted JavaScript index these arrays by the same constants.

/** General registers in encoding order. In the GPR array, register i has its low half at
 *  2*i and its high half at 2*i+1 (both int32). */
export const enum R {
  AX = 0, CX = 1, DX = 2, BX = 3, SP = 4, BP = 5, SI = 6, DI = 7,
  R8 = 8, R9 = 9, R10 = 10, R11 = 11, R12 = 12, R13 = 13, R14 = 14, R15 = 15,
}
/** Pseudo base register for RIP-relative addressing in a decoded instruction. */
export const RIP_BASE = 16;

/** 8-bit register codes in decoded instructions: 0..15 the low byte of a register,
 *  16..19 AH CH DH BH (bits 8..15 of registers 0..3). */
export const R8_HIGH = 16;

export const enum Seg { ES = 0, CS = 1, SS = 2, DS = 3, FS = 4, GS = 5, LDTR = 6, TR = 7 }

/** RFLAGS bits. */
export const enum F {
  CF = 0x1, PF = 0x4, AF = 0x10, ZF = 0x40, SF = 0x80, TF = 0x100, IF = 0x200, DF = 0x400,
  OF = 0x800, IOPL = 0x3000, NT = 0x4000, RF = 0x10000, VM = 0x20000, AC = 0x40000,
  VIF = 0x80000, VIP = 0x100000, ID = 0x200000,
  ARITH = 0x8d5, // CF PF AF ZF SF OF
}

/** Bits of RFLAGS software can ever see set (bit 1 always reads 1). */
export const FLAGS_FIXED1 = 0x2;
export const FLAGS_WRITABLE = 0x3f7fd5;

export const enum Cr0 { PE = 1, MP = 2, EM = 4, TS = 8, ET = 0x10, NE = 0x20, WP = 0x10000, AM = 0x40000, NW = 0x20000000, CD = 0x40000000, PG = 0x80000000 }
export const enum Cr4 { VME = 1, PVI = 2, TSD = 4, DE = 8, PSE = 0x10, PAE = 0x20, MCE = 0x40, PGE = 0x80, PCE = 0x100, OSFXSR = 0x200, OSXMMEXCPT = 0x400, UMIP = 0x800, FSGSBASE = 0x10000, PCIDE = 0x20000, OSXSAVE = 0x40000, SMEP = 0x100000, SMAP = 0x200000 }
export const enum Efer { SCE = 0x1, LME = 0x100, LMA = 0x400, NXE = 0x800 }

/** Code size of the current mode: selects the decode cache and operand/address defaults. */
export const enum Mode { Real = 0, Prot16 = 1, Prot32 = 2, Long64 = 3 }
