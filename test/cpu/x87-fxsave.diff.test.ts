// fxsave/fxrstor and xsave/xrstor/xsaveopt (x87 and SSE components) against the host CPU
// (forms in x87-forms-fx.ts). The xsave forms need CR4.OSXSAVE and XCR0 = 3 in the
// interpreter, so they run through a runner set up that way.
import fc from 'fast-check';
import { appendFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { compareOutcome, diffForms } from '../harness/diff.js';
import { InterpRunner } from '../harness/interp.js';
import { runNative } from '../harness/native.js';
import { STATS_FILE } from '../harness/stats.js';
import { forms, xforms } from './x87-forms-fx.js';

describe('fxsave/fxrstor against the host CPU', () => diffForms(forms));

describe('xsave/xrstor against the host CPU', () => {
  const interp = new InterpRunner();
  interp.cpu.cr4 |= 0x40000 | 0x200; // OSXSAVE, OSFXSR
  interp.cpu.xcr0Lo = 3;
  for (const form of xforms) {
    it(form.name, () => {
      const cases = fc.sample(form.gen, { numRuns: form.cases ?? 1000, seed: 42 });
      const native = runNative(cases);
      const failures: string[] = [];
      for (let i = 0; i < cases.length && failures.length < 5; i++) {
        const m = compareOutcome(form, cases[i], native[i], interp.run(cases[i]));
        if (m) failures.push(m);
      }
      mkdirSync(path.dirname(STATS_FILE), { recursive: true });
      appendFileSync(STATS_FILE, JSON.stringify({ form: form.name, cases: cases.length }) + '\n');
      expect(failures, failures.join('\n')).toEqual([]);
    });
  }
});
