// vitest globalSetup: build the native CPU runner before any test runs, and after the run
// print how many differential forms and cases were checked.
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { buildNativeRunner } from '../harness/native.js';
import { STATS_FILE } from '../harness/stats.js';

export default function setup(): () => void {
  buildNativeRunner();
  rmSync(STATS_FILE, { force: true });
  return () => {
    if (!existsSync(STATS_FILE)) return;
    const lines = readFileSync(STATS_FILE, 'utf8').trim().split('\n').filter(Boolean);
    const forms = new Set<string>();
    let cases = 0;
    for (const l of lines) { const o = JSON.parse(l) as { form: string; cases: number }; forms.add(o.form); cases += o.cases; }
    process.stdout.write(`\ndifferential CPU suite: ${forms.size} instruction forms, ${cases} cases compared with the host CPU\n`);
  };
}
