// Architectural exceptions. A handler throws a CpuFault before it changes any state, so
// the run loop can rewind RIP to the faulting instruction and deliver the exception with
// precise state. Faults are rare, so allocating one per throw costs nothing that matters.

export const enum Vec {
  DE = 0, DB = 1, NMI = 2, BP = 3, OF = 4, BR = 5, UD = 6, NM = 7,
  DF = 8, TS = 10, NP = 11, SS = 12, GP = 13, PF = 14, MF = 16, AC = 17, MC = 18, XM = 19,
}

export const VECTOR_NAMES: Record<number, string> = {
  0: '#DE', 1: '#DB', 2: 'NMI', 3: '#BP', 4: '#OF', 5: '#BR', 6: '#UD', 7: '#NM', 8: '#DF',
  10: '#TS', 11: '#NP', 12: '#SS', 13: '#GP', 14: '#PF', 16: '#MF', 17: '#AC', 18: '#MC', 19: '#XM',
};

/** Vectors that push an error code when delivered. */
export function hasErrorCode(vector: number): boolean {
  return vector === 8 || (vector >= 10 && vector <= 14) || vector === 17;
}

export class CpuFault {
  /** errorCode is ignored for vectors that have none. cr2 is the faulting linear address of a #PF.
   *  soft: a software interrupt (int n, int3, into): a trap delivered with RIP after the
   *  instruction, the gate's DPL checked and no error code. */
  constructor(readonly vector: number, readonly errorCode = 0, readonly cr2 = 0, readonly soft = false) {}
  get name(): string { return VECTOR_NAMES[this.vector] ?? `vector ${this.vector}`; }
}

export function fault(vector: number, errorCode = 0): never {
  throw new CpuFault(vector, errorCode);
}
export function ud(): never { throw new CpuFault(Vec.UD); }
export function gp0(): never { throw new CpuFault(Vec.GP, 0); }
