// The PV test guests (fixtures/guests/<name>/, XTF style): each <name>.elf boots with the
// built CLI, `sim run`, in a child process, as a user would run it, and reports through
// the console. Its expected.json beside the source says how it is run and how it ends:
//   { "exit": 0, "memory": 32, "cmdline": "...", "timeout": 30, "maxInsns": 50000000,
//     "args": [...], "lines": ["PASS name", ...] }
// The result is worst-wins: the exit status must be the expected one, every expected line
// must appear (in that order), and any line starting with "FAIL" fails the guest. A
// failure message carries the guest's whole output (console and the hypervisor's notes).
//
// XENSIM_CLI=/path/to/main.js runs another build of the CLI.

import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const GUESTS = path.join(ROOT, 'fixtures/guests');
const SIM = process.env.XENSIM_CLI ?? path.join(ROOT, 'dist/cli/main.js');
/** Wall-clock limit per guest; the guests' own limits (virtual time, instructions) come first. */
const WALL_MS = 120_000;

interface Expected {
  exit: number;
  memory?: number;
  cmdline?: string;
  timeout?: number;
  maxInsns?: number;
  args?: string[];
  lines?: string[];
}

interface Guest { name: string; dir: string; elf: string; expected: Expected }

function guests(): Guest[] {
  return readdirSync(GUESTS, { withFileTypes: true })
    .filter((e) => e.isDirectory() && e.name !== 'lib' && existsSync(path.join(GUESTS, e.name, 'expected.json')))
    .map((e) => {
      const dir = path.join(GUESTS, e.name);
      const expected = JSON.parse(readFileSync(path.join(dir, 'expected.json'), 'utf8')) as Expected;
      return { name: e.name, dir, elf: path.join(dir, `${e.name}.elf`), expected };
    })
    .sort((a, b) => a.name.localeCompare(b.name));
}

interface Run { code: number | null; signal: string | null; out: string; err: string }

function run(g: Guest): Promise<Run> {
  const x = g.expected;
  const args = [
    SIM, 'run', g.elf,
    '--memory', String(x.memory ?? 32),
    '--max-insns', String(x.maxInsns ?? 50_000_000),
    '--timeout', String(x.timeout ?? 30),
    ...(x.cmdline !== undefined ? ['--cmdline', x.cmdline] : []),
    ...(x.args ?? []),
  ];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '', err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => { out += d; });
    child.stderr.setEncoding('utf8').on('data', (d: string) => { err += d; });
    const timer = setTimeout(() => child.kill('SIGKILL'), WALL_MS);
    child.on('error', (e) => { clearTimeout(timer); reject(e); });
    child.on('close', (code, signal) => { clearTimeout(timer); resolve({ code, signal, out, err }); });
  });
}

/** Everything wrong with a run, worst first; empty when the guest passed. */
function verdict(g: Guest, r: Run): string[] {
  const problems: string[] = [];
  const lines = r.out.split(/\r?\n/);
  for (const l of lines) if (l.startsWith('FAIL')) problems.push(`guest reported: ${l}`);
  if (r.signal) problems.push(`killed by ${r.signal} after ${WALL_MS / 1000} s of wall-clock time`);
  else if (r.code !== g.expected.exit) problems.push(`exit status ${r.code}, expected ${g.expected.exit}`);
  let at = 0;
  for (const want of g.expected.lines ?? []) {
    const i = lines.findIndex((l, k) => k >= at && l === want);
    if (i < 0) {
      problems.push(lines.includes(want) ? `line out of order: ${want}` : `missing line: ${want}`);
    } else at = i + 1;
  }
  return problems;
}

const all = guests();

beforeAll(() => {
  // `npm test` builds dist/ first (the pretest script).
  if (!existsSync(SIM)) throw new Error(`${SIM} is missing: run npm run build`);
});

describe('PV test guests', () => {
  it('every guest folder has its source, built image and expectation', () => {
    const dirs = readdirSync(GUESTS, { withFileTypes: true }).filter((e) => e.isDirectory() && e.name !== 'lib');
    for (const d of dirs) {
      const dir = path.join(GUESTS, d.name);
      expect(existsSync(path.join(dir, 'main.c')), `${d.name}/main.c`).toBe(true);
      expect(existsSync(path.join(dir, `${d.name}.elf`)), `${d.name}/${d.name}.elf (run fixtures/guests/build.sh)`).toBe(true);
      expect(existsSync(path.join(dir, 'expected.json')), `${d.name}/expected.json`).toBe(true);
    }
    expect(all.length).toBeGreaterThan(10);
  });

  for (const g of all) {
    it(g.name, async () => {
      const r = await run(g);
      const problems = verdict(g, r);
      if (problems.length > 0) {
        throw new Error(
          `guest ${g.name} failed:\n  ${problems.join('\n  ')}\n` +
          `---- console (stdout) ----\n${r.out}\n---- sim (stderr) ----\n${r.err}`,
        );
      }
    }, WALL_MS + 10_000);
  }
});
