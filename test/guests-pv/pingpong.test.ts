// `sim boot`: the built-in default host, as a new user first runs it. Two PV domUs from the
// pingpong guest (fixtures/guests/pingpong), "ping" and "pong", meet in xenstore, connect an
// interdomain event channel and share a granted page; every round must have moved both the
// counter (through the page) and an event (a round counts on either side only when both
// arrived). The CLI runs from dist in a child process; the host-building module also runs
// in-process with the domains the other way round (pong first: it must wait for ping through
// its xenstore watch) and with a peer that never answers (the failure must show).
//
// XENSIM_CLI=/path/to/main.js runs another build of the CLI.

import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildDemoHost, demoVerdicts, runDemoHost, type DemoDomainSpec } from '../../src/xen/boot-demo.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const SIM = process.env.XENSIM_CLI ?? path.join(ROOT, 'dist/cli/main.js');
const ELF = path.join(ROOT, 'fixtures/guests/pingpong/pingpong.elf');
const ROUNDS = 10;

function sim(args: string[]): { code: number | null; out: string; err: string } {
  const r = spawnSync(process.execPath, [SIM, ...args], { encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** The lines a domain printed (its "[name] " prefix removed). */
function consoleOf(out: string, name: string): string[] {
  const p = `[${name}] `;
  return out.split('\n').filter((l) => l.startsWith(p)).map((l) => l.slice(p.length));
}

/** want appears in lines in this order. */
function inOrder(lines: string[], want: string[]): string[] {
  const missing: string[] = [];
  let at = 0;
  for (const w of want) {
    const i = lines.indexOf(w, at);
    if (i < 0) missing.push(w); else at = i + 1;
  }
  return missing;
}

beforeAll(() => {
  // `npm test` builds dist/ first (the pretest script).
  if (!existsSync(SIM)) throw new Error(`${SIM} is missing: run npm run build`);
});

describe('sim boot (the default host: ping and pong)', () => {
  let first: ReturnType<typeof sim>;
  beforeAll(() => { first = sim(['boot']); });

  it('both domains power off with PASS, exit status 0', () => {
    const r = first;
    const why = `---- stdout ----\n${r.out}\n---- stderr ----\n${r.err}`;
    expect(r.code, why).toBe(0);
    expect(r.out.split('\n').filter((l) => /^\[\w+\] FAIL/.test(l)), why).toEqual([]);
    expect(consoleOf(r.out, 'ping'), why).toContain('PASS ping');
    expect(consoleOf(r.out, 'pong'), why).toContain('PASS pong');
    expect(r.out, why).toMatch(/^xensim: ping \(d1\) and pong \(d2\) shut down after \d+ instructions and [\d.]+ ms of virtual time$/m);
    expect(r.out).toContain('\n  d1 ping: poweroff, PASS\n  d2 pong: poweroff, PASS\n');
  });

  it('prints a header naming the domains and the image they boot', () => {
    const head = first.out.split('\n').slice(0, 3);
    expect(head[0]).toBe('xensim: the default host: 2 PV domains from fixtures/guests/pingpong/pingpong.elf, talking over an event channel and a granted page');
    expect(head[1]).toBe(`  d1 ping: 16 MiB, "role=ping rounds=${ROUNDS}"`);
    expect(head[2]).toBe(`  d2 pong: 16 MiB, "role=pong rounds=${ROUNDS}"`);
  });

  it('every console line carries its domain\'s prefix', () => {
    const lines = first.out.split('\n').filter((l) => l !== '');
    const body = lines.slice(3, lines.length - 3); // header (3 lines) and summary (3 lines)
    expect(body.length).toBeGreaterThan(2 * ROUNDS);
    for (const l of body) expect(l).toMatch(/^\[(ping|pong)\] /);
  });

  it('the page and the event channel carried every round, on both sides', () => {
    const ping = consoleOf(first.out, 'ping'), pong = consoleOf(first.out, 'pong');
    const pingRounds = [], pongRounds = [];
    for (let i = 0; i < ROUNDS; i++) {
      pingRounds.push(`ping: round ${i + 1}: sent ${2 * i + 1}, pong answered ${2 * i + 2}`);
      pongRounds.push(`pong: round ${i + 1}: read ${2 * i + 1}, answered ${2 * i + 2}`);
    }
    expect(inOrder(ping, ['ping: I am domain 1, my peer is domain 2', 'ping: pong connected', ...pingRounds,
      "ping: pong wrote 'hello from pong'", `ping: ${ROUNDS} rounds, counter ${2 * ROUNDS + 1}, ${ROUNDS + 2} events`, 'PASS ping']), ping.join('\n')).toEqual([]);
    expect(inOrder(pong, ['pong: I am domain 2, my peer is domain 1', 'pong: /local/domain/1/data/pingpong: port gref ready',
      "pong: ping wrote 'hello from ping'", ...pongRounds,
      `pong: ${ROUNDS} rounds, last answer ${2 * ROUNDS}, ${ROUNDS + 1} events`, 'PASS pong']), pong.join('\n')).toEqual([]);
    // The checks behind them: the grant was in use while mapped, and pong's unmap cleared it.
    for (const l of ['ok the grant entry is GTF_reading|GTF_writing while pong has it mapped',
      'ok after pong\'s unmap the entry is GTF_permit_access again', 'ok end the grant',
      `ok events received: connect, one per round, and the last`]) expect(ping).toContain(l);
    for (const l of ['ok map_grant_ref(GNTMAP_host_map) of the peer\'s page over a page of our own',
      'ok GNTTABOP_copy of the greeting from the peer\'s grant', 'ok unmap_grant_ref',
      'ok xenstore: writing the peer\'s node is EACCES', 'ok events received: one per round, and the last word'])
      expect(pong).toContain(l);
  });

  it('is deterministic: a second run prints the same bytes', () => {
    const again = sim(['boot']);
    expect(again.code).toBe(0);
    expect(again.out).toBe(first.out);
  });

  it('sim boot --raw still runs the flat-binary demo', () => {
    const r = sim(['boot', '--raw']);
    expect(r.code, r.err).toBe(0);
    const [head, regs] = r.out.trim().split('\n');
    expect(head).toMatch(/^xensim: built-in raw guest ran \d+ instructions and stopped \(halt\)$/);
    expect(JSON.parse(regs)).toHaveProperty('rip');
  });

  it('--raw is refused with --daemon', () => {
    const r = sim(['boot', '--raw', '--daemon']);
    expect(r.code).toBe(2);
  });
});

describe('the default host in-process (src/xen/boot-demo.ts)', () => {
  const kernel = readFileSync(ELF);

  async function boot(domains: DemoDomainSpec[], rounds = 3) {
    const lines: string[] = [];
    const h = buildDemoHost({ kernel, rounds, domains, onLine: (d, l) => lines.push(`[${d.spec.name}] ${l}`) });
    const r = await runDemoHost(h, { timeoutS: 30 });
    return { h, r, lines, verdicts: demoVerdicts(h) };
  }

  it('pong created first waits for ping through its xenstore watch', async () => {
    const { r, lines, verdicts } = await boot([
      { name: 'pong', role: 'pong', memoryMiB: 16 }, { name: 'ping', role: 'ping', memoryMiB: 16 },
    ]);
    const why = lines.join('\n');
    expect(r.stop.kind, why).toBe('done');
    expect(verdicts.map((v) => [v.name, v.domid, v.reason, v.passed, v.failures]), why).toEqual([
      ['pong', 1, 0, true, []], ['ping', 2, 0, true, []],
    ]);
    expect(lines).toContain('[pong] pong: I am domain 1, my peer is domain 2');
    expect(lines).toContain('[ping] ping: 3 rounds, counter 7, 5 events');
    expect(lines).toContain('[pong] pong: 3 rounds, last answer 6, 4 events');
  });

  it('a peer that never answers is reported: FAIL lines, no PASS', async () => {
    // Two pings: each grants and publishes for the other, and waits for a pong that never comes.
    const { r, verdicts, lines } = await boot([
      { name: 'ping', role: 'ping', memoryMiB: 16 }, { name: 'pong', role: 'ping', memoryMiB: 16 },
    ]);
    expect(r.stop.kind, lines.join('\n')).toBe('done');
    for (const v of verdicts) {
      expect(v.reason).toBe(0);
      expect(v.passed).toBe(false);
      expect(v.failures.some((f) => f.startsWith('FAIL wait for pong to connect: no answer within the deadline'))).toBe(true);
    }
  });
});
