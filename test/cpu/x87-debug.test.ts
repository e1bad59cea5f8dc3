// TEMPORARY debugging aid (not part of the suite): X87_FORM=name X87_MOD=arith npx vitest run test/cpu/x87-debug.test.ts
import fc from 'fast-check';
import { it } from 'vitest';
import { compareOutcome, type Form } from '../harness/diff.js';
import { InterpRunner } from '../harness/interp.js';
import { runNative } from '../harness/native.js';

function fxs(fx: Uint8Array): string {
  const dv = new DataView(fx.buffer, fx.byteOffset);
  const sw = dv.getUint16(2, true), top = (sw >> 11) & 7, ab = fx[4];
  const st: string[] = [];
  for (let i = 0; i < 8; i++) {
    const m = dv.getBigUint64(32 + 16 * i, true), se = dv.getUint16(40 + 16 * i, true);
    st.push(((ab >> ((top + i) & 7)) & 1 ? '' : 'E:') + se.toString(16).padStart(4, '0') + ':' + m.toString(16).padStart(16, '0'));
  }
  return `cw=${dv.getUint16(0, true).toString(16)} sw=${sw.toString(16)} ab=${ab.toString(16)} mx=${dv.getUint32(24, true).toString(16)}\n      ${st.join(' ')}`;
}

it('debug', async () => {
  const mods: Record<string, () => Promise<{ forms: Form[] }>> = {
    arith: () => import('./x87-forms-arith.js'),
    ls: () => import('./x87-forms-ls.js'),
    cmp: () => import('./x87-forms-cmp.js'),
    ctl: () => import('./x87-forms-ctl.js'),
    fx: () => import('./x87-forms-fx.js'),
    xs: async () => ({ forms: (await import('./x87-forms-fx.js')).xforms }),
  };
  const forms: Form[] = (await mods[process.env.X87_MOD ?? 'arith']()).forms;
  const want = process.env.X87_FORM ?? '';
  for (const form of forms.filter((f) => f.name === want || (want.endsWith('*') && f.name.startsWith(want.slice(0, -1))))) {
    const cases = fc.sample(form.gen, { numRuns: Number(process.env.X87_N ?? 1000), seed: Number(process.env.X87_SEED ?? 42) });
    const nat = runNative(cases);
    const interp = new InterpRunner();
    if (process.env.X87_MOD === 'xs') { interp.cpu.cr4 |= 0x40200; interp.cpu.xcr0Lo = 3; }
    let shown = 0;
    for (let i = 0; i < cases.length && shown < Number(process.env.X87_MAX ?? 6); i++) {
      const s = interp.run(cases[i]);
      const m = compareOutcome(form, cases[i], nat[i], s);
      if (!m) continue;
      shown++;
      const c = cases[i];
      console.log(`${form.name}: code ${Array.from(c.code, (b) => b.toString(16).padStart(2, '0')).join(' ')}\n  in:  ${fxs(c.fx!)}\n  nat: ${nat[i].status}/${nat[i].vector} ${fxs(nat[i].fx)}\n  sim: ${s.status}/${s.vector} ${fxs(s.fx)}\n  regs: ${c.regs.map((r, k) => k + "=" + r.toString(16)).join(" ")}\n  ${m.split('\n').slice(1).join(' ')}`);
    }
  }
});
