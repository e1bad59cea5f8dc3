// System instructions: far transfers, segment loads, descriptor tables, control and debug
// registers, MSRs, syscall/sysret, swapgs, iret, port I/O, invlpg, xgetbv/xsetbv.
// (Being built: far indirect transfers raise #UD until then.)

import type { Handler } from '../insn.js';
import { ud } from '../fault.js';

export const callFarIndirect: Handler = () => ud();
export const jmpFarIndirect: Handler = () => ud();
