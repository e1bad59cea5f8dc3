// `sim boot` with no host options: the built-in default host. Two PV domUs from the guest
// that ships with the project (fixtures/guests/pingpong/pingpong.elf), "ping" and "pong",
// meet in xenstore, connect an interdomain event channel, share a granted page and play a
// few rounds over it, then power off (src/xen/boot-demo.ts builds and runs the host). Each
// console line is printed with a "[name] " prefix, then a summary. Exit status: 0 when both
// powered off and reported PASS; 1 when one failed; 124/125/126 as `sim run` (a limit, or
// nothing left to run).
//
// `sim boot --raw` runs the old flat-binary demo (fixtures/raw/demo.bin) and prints its
// registers.

import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { runRaw } from '../guests/raw.js';
import { KernelImageError } from '../guests/image.js';
import { BuildError } from '../xen/builder.js';
import { buildDemoHost, demoVerdicts, runDemoHost, DEMO_ROUNDS, type DemoHost } from '../xen/boot-demo.js';
import { SHUTDOWN_NAMES } from '../xen/domain.js';
import { UsageError } from './errors.js';
import { EXIT_CODES } from './run.js';

export interface BootArgs {
  /** The old raw demo instead of the default host. */
  raw?: boolean;
  /** Show the hypervisor log on stderr. */
  verbose?: boolean;
}

const GUEST = '../../fixtures/guests/pingpong/pingpong.elf';

function builtIn(rel: string): { path: string; bytes: Uint8Array } {
  const path = fileURLToPath(new URL(rel, import.meta.url));
  try { return { path, bytes: readFileSync(path) }; } catch { throw new UsageError(`the built-in guest ${path} is missing`); }
}

export async function bootCommand(a: BootArgs = {}): Promise<number> {
  if (a.raw) return rawDemo();
  const out = (s: string) => { process.stdout.write(s); };
  const { path, bytes } = builtIn(GUEST);

  let host: DemoHost;
  try {
    host = buildDemoHost({
      kernel: bytes, rounds: DEMO_ROUNDS,
      onLine: (d, line) => out(`[${d.spec.name}] ${line}\n`),
      onLog: a.verbose ? (l) => process.stderr.write(l + '\n') : undefined,
    });
  } catch (e) {
    if (e instanceof KernelImageError || e instanceof BuildError) throw new UsageError(`${path}: ${e.message}`);
    throw e;
  }
  out(`xensim: the default host: ${host.domains.length} PV domains from ${GUEST.replace('../../', '')}, ` +
    `talking over an event channel and a granted page\n`);
  for (const d of host.domains) out(`  d${d.domain.id} ${d.spec.name}: ${d.spec.memoryMiB} MiB, "${d.cmdline}"\n`);

  const r = await runDemoHost(host);
  const verdicts = demoVerdicts(host);
  const names = verdicts.map((v) => `${v.name} (d${v.domid})`).join(' and ');
  const when = `after ${r.insns} instructions and ${(r.virtualNs / 1e6).toFixed(3)} ms of virtual time`;
  const allDead = verdicts.every((v) => v.reason >= 0);
  out(allDead ? `xensim: ${names} shut down ${when}\n` : `xensim: ${names}: stopped ${when} (${stopWhy(r.stop.kind)})\n`);
  let ok = allDead;
  for (const v of verdicts) {
    const how = v.reason < 0 ? 'still running' : SHUTDOWN_NAMES[v.reason] ?? `reason ${v.reason}`;
    const good = v.reason === 0 && v.passed && v.failures.length === 0;
    if (!good) ok = false;
    const result = v.passed && v.failures.length === 0 ? 'PASS' : `FAIL${v.failures.length ? ` (${v.failures.length} failed check${v.failures.length > 1 ? 's' : ''})` : ''}`;
    out(`  d${v.domid} ${v.name}: ${how}, ${result}\n`);
  }
  if (!a.verbose && !ok) for (const l of host.xen.log.slice(-5)) process.stderr.write(l + '\n');
  if (ok) return 0;
  if (!allDead) return r.stop.kind === 'timeout' ? EXIT_CODES.timeout : r.stop.kind === 'limit' ? EXIT_CODES.limit : r.stop.kind === 'idle' ? EXIT_CODES.idle : 1;
  return 1;
}

function stopWhy(kind: string): string {
  switch (kind) {
    case 'timeout': return 'the virtual time limit';
    case 'limit': return 'the instruction limit';
    case 'idle': return 'every vCPU is blocked with no timer armed';
    default: return kind;
  }
}

function rawDemo(): number {
  const { bytes } = builtIn('../../fixtures/raw/demo.bin');
  const r = runRaw(bytes, { base: 0x100000, entry: 0x100000, maxInsns: 2_000_000_000 });
  process.stdout.write(`xensim: built-in raw guest ran ${r.insns} instructions and stopped (${r.stop})\n`);
  process.stdout.write(JSON.stringify(r.regs) + '\n');
  return r.stop === 'halt' ? 0 : 1;
}
