// One differential CPU test case, and its outcome, shared by the native runner
// (test/native/cpurun.c, the real CPU) and the interpreter runner (test/harness/interp.ts).
//
// Memory layout, identical on both sides (user mode natively, the raw machine in xensim):
//   CODE_BASE  0x100000  4 KiB   the instruction bytes at offset 0; each exit offset ends the run
//   DATA_BASE  0x200000  8 KiB   two pages, so page-crossing accesses can be tested
//   STACK_BASE 0x300000  4 KiB   rsp is usually set inside it by the generator
// Every other address is unmapped: an access there is a #PF on both sides.

export const CODE_BASE = 0x100000;
export const CODE_SIZE = 0x1000;
export const DATA_BASE = 0x200000;
export const DATA_SIZE = 0x2000;
export const STACK_BASE = 0x300000;
export const STACK_SIZE = 0x1000;
export const MAX_CODE = 256;
export const MAX_EXITS = 4;
export const FXSAVE_SIZE = 512;

/** Register order is the encoding order: rax rcx rdx rbx rsp rbp rsi rdi r8..r15. */
export const REG_NAMES = [
  'rax', 'rcx', 'rdx', 'rbx', 'rsp', 'rbp', 'rsi', 'rdi',
  'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15',
] as const;

/** The arithmetic flags and DF: the only RFLAGS bits a test sets or compares. */
export const FLAGS_MASK = 0xcd5n; // CF PF AF ZF SF DF OF

export interface CpuCase {
  code: Uint8Array;            // at most MAX_CODE bytes, at CODE_BASE
  exits?: number[];            // code offsets where the run ends; default [code.length]
  regs: bigint[];              // 16 values, unsigned 64-bit
  rflags: bigint;              // only FLAGS_MASK bits are used
  fx?: Uint8Array;             // FXSAVE image loaded with FXRSTOR before the run (x87, MXCSR, XMM)
  data?: Uint8Array;           // initial DATA_SIZE bytes (zeros if absent)
  stack?: Uint8Array;          // initial STACK_SIZE bytes (zeros if absent)
}

export interface CpuOutcome {
  /** 'ok': reached an exit; 'fault': an exception stopped the run. */
  status: 'ok' | 'fault';
  vector: number;              // exception vector when status is 'fault' (e.g. 0 #DE, 6 #UD, 13 #GP, 14 #PF)
  errorCode: number;           // the pushed error code, where the exception has one (0 otherwise)
  faultAddr: bigint;           // CR2 for #PF
  rip: bigint;                 // exit address, or the faulting instruction's address
  regs: bigint[];
  rflags: bigint;
  fx: Uint8Array;              // FXSAVE image after the run
  data: Uint8Array;
  stack: Uint8Array;
}
