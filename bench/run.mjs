// `npm run bench` (after `npm run build`): CPU figures of the simulator, one JSON line per
// figure on stdout ({"name","value","unit"}); progress and notes go to stderr.
//
//   cpu.bench.insns        instructions retired by fixtures/raw/bench.bin (to its hlt)
//   cpu.bench.seconds      wall time of the simulated run, best of BENCH_RUNS (default 3)
//   cpu.bench.mips         guest MIPS = insns / seconds / 1e6
//   cpu.native.seconds     the same C (fixtures/raw/bench/bench-native.c), built now with gcc, best of 3
//   cpu.slowdown           cpu.bench.seconds / cpu.native.seconds, measured in this run
//   cpu.bench.checksum_ok  1 if the guest's rax equals the native checksum (EXPECTED without gcc)
//   cpu.loop.mips          a tight `dec rcx; jnz` loop: the interpreter's dispatch overhead
//   cpu.loop.ns_per_insn   the same, as nanoseconds per guest instruction
//   cpu.bench.rss_mb       resident set size of this process after the runs
//
// The simulator runs in-process (dist/guests/raw.js's runRaw); the CLI path (`sim raw`) is
// checked once on bench-small.bin. Exits 1 if a checksum is wrong or the guest does not halt.
// Environment: BENCH_RUNS (simulated runs, default 3), BENCH_LOOP_ITERS (default 20000000).

import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const fixtures = join(root, 'fixtures', 'raw');
const BASE = 0x100000;
const RUNS = Math.max(1, Number(process.env.BENCH_RUNS ?? 3) | 0);
const LOOP_ITERS = Math.max(1, Number(process.env.BENCH_LOOP_ITERS ?? 20_000_000) | 0);

const log = (msg) => process.stderr.write(`bench: ${msg}\n`);
const figure = (name, value, unit) => process.stdout.write(JSON.stringify({ name, value, unit }) + '\n');
const round = (v, digits) => Number(v.toFixed(digits));

let failed = false;

const rawJs = join(root, 'dist', 'guests', 'raw.js');
if (!existsSync(rawJs)) {
  log(`${rawJs} is missing: run \`npm run build\` first`);
  process.exit(2);
}
const { runRaw } = await import(pathToFileURL(rawJs).href);

function readExpected() {
  const out = {};
  const text = readFileSync(join(fixtures, 'bench', 'EXPECTED'), 'utf8');
  for (const line of text.split('\n')) {
    const m = /^\s*(\S+\.bin)\s+(0x[0-9a-f]+)\s*$/i.exec(line);
    if (m) out[m[1]] = BigInt(m[2]);
  }
  return out;
}
const expected = readExpected();

// ---- native build and run ------------------------------------------------------------------

function hasGcc() {
  const r = spawnSync('gcc', ['--version'], { stdio: 'ignore' });
  return r.status === 0;
}

let native = null; // { seconds, checksum }
if (hasGcc()) {
  log('building the native benchmark (fixtures/raw/build.sh --native build/bench)');
  const b = spawnSync('bash', [join(fixtures, 'build.sh'), '--native', join(root, 'build', 'bench')], { encoding: 'utf8' });
  if (b.status !== 0) {
    log(`native build failed (status ${b.status}):\n${b.stderr}`);
    failed = true;
  } else {
    const exe = b.stdout.trim().split('\n').pop();
    log(`running ${exe} 3`);
    const r = spawnSync(exe, ['3'], { encoding: 'utf8' });
    if (r.status !== 0) {
      log(`native benchmark failed (status ${r.status}): ${r.stdout}${r.stderr}`);
      failed = true;
    } else {
      const o = JSON.parse(r.stdout.trim());
      native = { seconds: o.best_ns / 1e9, checksum: BigInt(o.checksum), all: o.ns.map((n) => n / 1e9) };
      log(`native: checksum 0x${native.checksum.toString(16)}, runs ${native.all.map((s) => s.toFixed(4)).join(' ')} s`);
      if (expected['bench.bin'] !== undefined && expected['bench.bin'] !== native.checksum) {
        log(`note: native checksum differs from fixtures/raw/bench/EXPECTED (0x${expected['bench.bin'].toString(16)}): bench.bin may be stale, rerun fixtures/raw/build.sh`);
      }
    }
  }
} else {
  log('gcc not found: skipping the native figures (cpu.native.seconds, cpu.slowdown); checking against fixtures/raw/bench/EXPECTED');
}

// ---- simulated runs ------------------------------------------------------------------------

const image = readFileSync(join(fixtures, 'bench.bin'));
let best = Infinity;
let result = null;
for (let i = 0; i < RUNS; i++) {
  const t0 = performance.now();
  const r = runRaw(image, { base: BASE, entry: BASE, maxInsns: 4_000_000_000 });
  const s = (performance.now() - t0) / 1000;
  log(`simulated run ${i + 1}/${RUNS}: ${r.insns} insns in ${s.toFixed(3)} s (${(r.insns / s / 1e6).toFixed(2)} MIPS), stop=${r.stop}`);
  if (r.stop !== 'halt') {
    const at = Number(BigInt(r.regs.rip)) - BASE;
    const bytes = at >= 0 && at < image.length ? Array.from(image.subarray(at, at + 8), (b) => b.toString(16).padStart(2, '0')).join(' ') : '?';
    log(`the guest did not halt: stop=${r.stop}${r.exception ? ` ${r.exception} (vector ${r.vector}, error code ${r.errorCode})` : ''} at rip=${r.regs.rip}, bytes ${bytes}`);
    const cli = spawnSync(process.execPath, [join(root, 'dist', 'cli', 'main.js'), 'raw', join(fixtures, 'bench.bin'), '--base', '100000', '--entry', '100000'], { encoding: 'utf8' });
    log(`(sim raw says: ${cli.stdout.trim()})`);
    result = r;
    failed = true;
    break;
  }
  if (result && r.regs.rax !== result.regs.rax) {
    log(`run ${i + 1} gave rax=${r.regs.rax}, run 1 gave ${result.regs.rax}`);
    failed = true;
  }
  result = r;
  best = Math.min(best, s);
}

const ref = native ? native.checksum : expected['bench.bin'];
const rax = BigInt(result.regs.rax);
const checksumOk = result.stop === 'halt' && ref !== undefined && rax === ref;
if (!checksumOk) {
  log(`checksum mismatch: rax=0x${rax.toString(16)}, expected 0x${(ref ?? 0n).toString(16)} (${native ? 'native run' : 'EXPECTED'})`);
  failed = true;
}

if (result.stop === 'halt') {
  figure('cpu.bench.insns', result.insns, 'count');
  figure('cpu.bench.seconds', round(best, 4), 's');
  figure('cpu.bench.mips', round(result.insns / best / 1e6, 3), 'MIPS');
}
if (native) {
  figure('cpu.native.seconds', round(native.seconds, 5), 's');
  if (result.stop === 'halt') figure('cpu.slowdown', round(best / native.seconds, 1), 'x');
}
figure('cpu.bench.checksum_ok', checksumOk ? 1 : 0, 'bool');

// ---- interpreter dispatch: mov ecx, N; 1: dec rcx; jnz 1b; hlt ------------------------------

{
  const loop = Uint8Array.from([
    0xb9, LOOP_ITERS & 0xff, (LOOP_ITERS >>> 8) & 0xff, (LOOP_ITERS >>> 16) & 0xff, (LOOP_ITERS >>> 24) & 0xff,
    0x48, 0xff, 0xc9, // dec rcx
    0x75, 0xfb, //       jnz -5
    0xf4, //             hlt
  ]);
  let lbest = Infinity, insns = 0;
  for (let i = 0; i < 3; i++) {
    const t0 = performance.now();
    const r = runRaw(loop, { base: BASE, entry: BASE, maxInsns: 4 * LOOP_ITERS });
    const s = (performance.now() - t0) / 1000;
    if (r.stop !== 'halt' || r.insns !== 2 * LOOP_ITERS + 2) {
      log(`micro-loop: unexpected stop=${r.stop} insns=${r.insns}`);
      failed = true;
      break;
    }
    insns = r.insns;
    lbest = Math.min(lbest, s);
  }
  if (insns) {
    log(`micro-loop: ${insns} insns, best ${lbest.toFixed(3)} s`);
    figure('cpu.loop.mips', round(insns / lbest / 1e6, 3), 'MIPS');
    figure('cpu.loop.ns_per_insn', round((lbest * 1e9) / insns, 3), 'ns');
  }
}

figure('cpu.bench.rss_mb', round(process.memoryUsage().rss / 1048576, 1), 'MB');

// ---- the CLI path, once, on the small variant ----------------------------------------------

{
  const cli = spawnSync(process.execPath, [join(root, 'dist', 'cli', 'main.js'), 'raw', join(fixtures, 'bench-small.bin'), '--base', '100000', '--entry', '100000'], { encoding: 'utf8' });
  let ok = false, detail = `status ${cli.status}: ${cli.stdout.trim()} ${cli.stderr.trim()}`;
  if (cli.status === 0) {
    try {
      const o = JSON.parse(cli.stdout.trim().split('\n').pop());
      ok = o.stop === 'halt' && BigInt(o.rax) === expected['bench-small.bin'];
      detail = `stop=${o.stop} rax=${o.rax} insns=${o.insns}${o.exception ? ` exception=${o.exception} rip=${o.rip}` : ''}`;
    } catch (e) {
      detail += ` (${e.message})`;
    }
  }
  log(`CLI check (sim raw bench-small.bin): ${ok ? 'ok' : 'FAILED'}, ${detail}`);
  if (!ok) failed = true;
}

process.exit(failed ? 1 : 0);
