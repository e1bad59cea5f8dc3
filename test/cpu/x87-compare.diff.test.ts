// x87 comparisons against the host CPU (forms in x87-forms-cmp.ts).
import { describe } from 'vitest';
import { diffForms } from '../harness/diff.js';
import { forms } from './x87-forms-cmp.js';

describe('x87 comparisons against the host CPU', () => diffForms(forms));
