// The differential driver: each form's generator makes cases, the real CPU (native runner)
// and the interpreter run them, and every outcome must agree bit for bit, except the flags
// the SDM leaves undefined for that form.

import fc from 'fast-check';
import { appendFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';
import { FLAGS_MASK, REG_NAMES, type CpuCase, type CpuOutcome } from './case.js';
import { InterpRunner } from './interp.js';
import { runNative } from './native.js';
import { STATS_FILE } from './stats.js';

export interface Form {
  name: string;
  gen: fc.Arbitrary<CpuCase>;
  /** RFLAGS bits the SDM leaves undefined for this form (not compared). */
  undef?: number;
  /** How many cases (default 1000). */
  cases?: number;
  /** Compare the FXSAVE image (x87/SSE state); default true. */
  fx?: boolean;
  /** Compare the x87 register area only in these ST slots' mantissas etc.: custom comparison. */
  fxMask?: (offset: number) => boolean;
}


/** FXSAVE bytes that hold no comparable state: FOP/FIP/FDP (AMD leaves them 0), MXCSR_MASK, padding. */
function fxComparable(o: number): boolean {
  if (o >= 6 && o < 24) return false;
  if (o >= 28 && o < 32) return false;
  if (o >= 32 && o < 160 && (o - 32) % 16 >= 10) return false;
  return o < 416;
}

const hex = (v: bigint) => '0x' + v.toString(16);

function describe(c: CpuCase): string {
  const code = Array.from(c.code, (b) => b.toString(16).padStart(2, '0')).join(' ');
  const regs = c.regs.map((v, i) => `${REG_NAMES[i]}=${hex(v)}`).join(' ');
  return `code [${code}] rflags=${hex(c.rflags)} ${regs}`;
}

export function compareOutcome(form: Form, c: CpuCase, n: CpuOutcome, s: CpuOutcome): string | null {
  const diffs: string[] = [];
  if (n.status !== s.status) diffs.push(`status native=${n.status}(${n.vector}) sim=${s.status}(${s.vector})`);
  else if (n.status === 'fault') {
    if (n.vector !== s.vector) diffs.push(`vector native=${n.vector} sim=${s.vector}`);
    else if (n.vector === 14) { if (n.faultAddr !== s.faultAddr) diffs.push(`cr2 native=${hex(n.faultAddr)} sim=${hex(s.faultAddr)}`); }
    else if (n.errorCode !== s.errorCode) diffs.push(`error code native=${n.errorCode} sim=${s.errorCode}`);
  }
  if (n.rip !== s.rip) diffs.push(`rip native=${hex(n.rip)} sim=${hex(s.rip)}`);
  for (let i = 0; i < 16; i++) if (n.regs[i] !== s.regs[i]) diffs.push(`${REG_NAMES[i]} native=${hex(n.regs[i])} sim=${hex(s.regs[i])}`);
  const fm = FLAGS_MASK & ~BigInt(form.undef ?? 0);
  if ((n.rflags & fm) !== (s.rflags & fm)) diffs.push(`rflags native=${hex(n.rflags & fm)} sim=${hex(s.rflags & fm)} (compared ${hex(fm)})`);
  for (const [name, a, b] of [['data', n.data, s.data], ['stack', n.stack, s.stack]] as const) {
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) { diffs.push(`${name}[0x${i.toString(16)}] native=${a[i]} sim=${b[i]}`); break; }
  }
  if (form.fx !== false) {
    const ok = form.fxMask ?? fxComparable;
    for (let i = 0; i < 512; i++) {
      if (ok(i) && n.fx[i] !== s.fx[i]) { diffs.push(`fx[${i}] native=0x${n.fx[i].toString(16)} sim=0x${s.fx[i].toString(16)}`); break; }
    }
  }
  return diffs.length ? `${form.name}: ${describe(c)}\n    ${diffs.join('\n    ')}` : null;
}

let interp: InterpRunner | undefined;
let jitRunner: InterpRunner | undefined;

/** Run a form's cases on both sides; returns the mismatches (at most `max`). */
export function runForm(form: Form, seed = 42, max = 5): { cases: number; failures: string[] } {
  const n = form.cases ?? 1000;
  const cases = fc.sample(form.gen, { numRuns: n, seed });
  const native = runNative(cases);
  interp ??= new InterpRunner();
  jitRunner ??= new InterpRunner(true);
  const failures: string[] = [];
  // Every case runs twice: one instruction at a time in the interpreter, and as whole
  // blocks through the block compiler.
  for (let i = 0; i < cases.length && failures.length < max; i++) {
    const s = interp.run(cases[i]);
    const m = compareOutcome(form, cases[i], native[i], s);
    if (m) failures.push(m);
    const j = jitRunner.run(cases[i]);
    const mj = compareOutcome(form, cases[i], native[i], j);
    if (mj) failures.push('[compiled blocks] ' + mj);
  }
  return { cases: cases.length, failures };
}

/** Register one vitest test per form. */
export function diffForms(forms: Form[]): void {
  for (const form of forms) {
    it(form.name, () => {
      const r = runForm(form);
      mkdirSync(path.dirname(STATS_FILE), { recursive: true });
      appendFileSync(STATS_FILE, JSON.stringify({ form: form.name, cases: r.cases }) + '\n');
      expect(r.failures, r.failures.join('\n')).toEqual([]);
    });
  }
}
