// x87 loads, stores and register moves against the host CPU (forms in x87-forms-ls.ts).
import { describe } from 'vitest';
import { diffForms } from '../harness/diff.js';
import { forms } from './x87-forms-ls.js';

describe('x87 loads and stores against the host CPU', () => diffForms(forms));
