// x87 control instructions, environments and instruction sequences against the host CPU
// (forms in x87-forms-ctl.ts).
import { describe } from 'vitest';
import { diffForms } from '../harness/diff.js';
import { forms } from './x87-forms-ctl.js';

describe('x87 control against the host CPU', () => diffForms(forms));
