// x87 arithmetic against the host CPU: fadd fmul fsub fsubr fdiv fdivr in all forms, and
// fsqrt fchs fabs frndint fscale fprem fprem1 fxtract (forms in x87-forms-arith.ts).
import { describe } from 'vitest';
import { diffForms } from '../harness/diff.js';
import { forms } from './x87-forms-arith.js';

describe('x87 arithmetic against the host CPU', () => diffForms(forms));
