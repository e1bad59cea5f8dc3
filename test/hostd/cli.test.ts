// The host as users drive it: the built `sim` in child processes -- `sim boot --daemon`,
// the verbs against it, `sim console` over pipes, `sim boot --foreground` and SIGTERM.
// Uses dist/ (npm test builds it first), or the script named by $XENSIM_SIM.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GUESTS, parseList, ROOT, tempDir, until, writeCfg } from './helpers.js';

const SIM = process.env.XENSIM_SIM ?? path.join(ROOT, 'dist/cli/main.js');
const NO_HOST = 'no running host (start one with: sim boot --daemon)\n';
let dir: string;
let state: string;
let daemonPid = 0;

function sim(args: string[], input?: string): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, [SIM, ...args], { encoding: 'utf8', input, timeout: 60_000 });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}
const S = () => ['--state-dir', state];
function list(): ReturnType<typeof parseList> {
  const r = sim(['list', ...S()]);
  expect(r.code, r.err).toBe(0);
  return parseList(r.out);
}
async function exited(c: ChildProcess): Promise<number> {
  if (c.exitCode !== null) return c.exitCode;
  return new Promise((r) => c.once('exit', (code, sig) => r(code ?? (sig ? 128 : -1))));
}
function alive(pid: number): boolean { try { process.kill(pid, 0); return true; } catch { return false; } }

beforeAll(() => {
  if (!existsSync(SIM) || !existsSync(path.join(path.dirname(SIM), 'verbs.js'))) throw new Error(`${SIM} is missing or stale: run npm run build`);
  dir = tempDir('xsc-');
  state = path.join(dir, 'st');
});

afterAll(async () => {
  if (daemonPid && alive(daemonPid)) {
    process.kill(daemonPid, 'SIGTERM');
    await until(() => !alive(daemonPid), 'the daemon to exit', 20_000).catch(() => process.kill(daemonPid, 'SIGKILL'));
  }
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('sim verbs without a host', () => {
  it('print the one-line message and exit 1', () => {
    for (const args of [['list'], ['info'], ['dmesg'], ['console', 'x'], ['shutdown', '-w', 'x'], ['destroy', 'x'], ['pause', 'x'], ['unpause', 'x'], ['create', writeCfg(dir, 'nh', 'spinner')]]) {
      const r = sim([...args, '--state-dir', path.join(dir, 'none')]);
      expect(r.err, args.join(' ')).toBe(NO_HOST);
      expect(r.code, args.join(' ')).toBe(1);
    }
  });
  it('sim boot host options need --foreground or --daemon', () => {
    const r = sim(['boot', '--memory', '256']);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/add --foreground or --daemon/);
  });
});

describe('sim boot --daemon', () => {
  it('starts a detached host with a pid file and a control socket', () => {
    const r = sim(['boot', '--daemon', ...S(), '--memory', '256', '--clock', 'virtual']);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const m = /^xensim host started: pid (\d+), state dir (.+)$/m.exec(r.out);
    expect(m).not.toBeNull();
    daemonPid = Number(m![1]);
    expect(m![2]).toBe(state);
    expect(Number(readFileSync(path.join(state, 'hostd.pid'), 'utf8'))).toBe(daemonPid);
    expect(existsSync(path.join(state, 'hostd.sock'))).toBe(true);
    const again = sim(['boot', '--daemon', ...S()]);
    expect(again.code).toBe(1);
    expect(again.err).toMatch(/a host is already running in .* \(pid \d+\)/);
  });

  it('create, list, pause, unpause, shutdown -w, destroy', async () => {
    const hello = writeCfg(dir, 'hello', path.join(GUESTS, 'hello/hello.elf'), { memory: 32, on_poweroff: 'preserve', extra: 'console=hvc0 xensim-test' });
    let r = sim(['create', hello, ...S()]);
    expect(r.code, r.err).toBe(0);
    expect(r.err).toMatch(/^Parsing config from /);
    await until(() => list().get('hello')?.state === '---s--', 'hello to power off');
    expect(readFileSync(path.join(state, 'console/hello.log'), 'utf8')).toContain('PASS hello\n');

    r = sim(['create', writeCfg(dir, 'spin', 'spinner'), ...S()]);
    expect(r.code, r.err).toBe(0);
    const rows = list();
    expect([...rows.keys()]).toEqual(['Domain-0', 'hello', 'spin']);
    expect(rows.get('Domain-0')!.id).toBe(0);
    expect(rows.get('spin')!.state).toBe('r-----');
    expect(rows.get('spin')!.mem).toBe(8);
    const id = rows.get('spin')!.id;
    expect(sim(['pause', String(id), ...S()]).code).toBe(0);
    expect(list().get('spin')!.state).toBe('--p---');
    const t = list().get('spin')!.time;
    expect(list().get('spin')!.time).toBe(t);
    expect(sim(['unpause', 'spin', ...S()]).code).toBe(0);
    expect(list().get('spin')!.state).toBe('r-----');
    r = sim(['shutdown', '-w', 'spin', ...S()]);
    expect(r.code, r.err).toBe(0);
    expect(r.err).toMatch(new RegExp(`Domain ${id} 'spin': destroyed`));
    expect(list().has('spin')).toBe(false);

    r = sim(['destroy', 'hello', ...S()]);
    expect(r.code, r.err).toBe(0);
    expect([...list().keys()]).toEqual(['Domain-0']);
    r = sim(['destroy', 'hello', ...S()]);
    expect(r.code).toBe(1);
    expect(r.err).toBe("sim: no domain 'hello' (see sim list)\n");
  });

  it('sim console over pipes: output, input, ^] detaches', async () => {
    expect(sim(['create', writeCfg(dir, 'echo', 'echo'), ...S()]).code).toBe(0);
    const c = spawn(process.execPath, [SIM, 'console', 'echo', ...S()], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    c.stdout!.on('data', (b: Buffer) => { out += b.toString('utf8'); });
    await until(() => out.includes('echo up\n'), 'the console output');
    c.stdin!.write('typed\r');
    await until(() => out.includes('typed\r'), 'the echo');
    c.stdin!.write('\x1d');
    expect(await exited(c)).toBe(0);
    expect(sim(['destroy', 'echo', ...S()]).code).toBe(0);
  });

  it('sim create -c: a crash ends it with status 3 and on_crash=preserve keeps ---sc-', () => {
    const r = sim(['create', '-c', writeCfg(dir, 'cr', path.join(GUESTS, 'shutdown-crash/shutdown-crash.elf'), { memory: 32, on_crash: 'preserve' }), ...S()]);
    expect(r.out).toContain('PASS shutdown-crash');
    expect(r.code).toBe(3);
    expect(list().get('cr')!.state).toBe('---sc-');
    expect(sim(['destroy', 'cr', ...S()]).code).toBe(0);
  });

  it('sim info and sim dmesg', () => {
    const i = sim(['info', ...S()]);
    expect(i.code).toBe(0);
    expect(i.out).toMatch(/^xen_version {12}: 4\.17\.0-xensim$/m);
    expect(i.out).toMatch(/^total_memory {11}: 256$/m);
    expect(i.out).toMatch(new RegExp(`^host_pid {15}: ${daemonPid}$`, 'm'));
    const d = sim(['dmesg', ...S()]);
    expect(d.code).toBe(0);
    expect(d.out).toMatch(/^\(XEN\) xensim host: /);
    expect(d.out).toMatch(/\(XEN\) d\d+: shutdown: crash/);
  });

  it('SIGTERM stops it and removes its socket and pid file', async () => {
    process.kill(daemonPid, 'SIGTERM');
    await until(() => !alive(daemonPid), 'the daemon to exit', 20_000);
    expect(existsSync(path.join(state, 'hostd.sock'))).toBe(false);
    expect(existsSync(path.join(state, 'hostd.pid'))).toBe(false);
    expect(sim(['list', ...S()]).err).toBe(NO_HOST);
    expect(readFileSync(path.join(state, 'hypervisor.log'), 'utf8')).toMatch(/"event":"stop","why":"signal SIGTERM"/);
  });
});

describe('sim boot --foreground', () => {
  it('serves the verbs, prints the hypervisor log and stops on SIGTERM', async () => {
    const st = path.join(dir, 'fg');
    const c = spawn(process.execPath, [SIM, 'boot', '--foreground', '--state-dir', st, '--memory', '128'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    c.stdout!.on('data', (b: Buffer) => { out += b.toString('utf8'); });
    await until(() => existsSync(path.join(st, 'hostd.sock')) && sim(['list', '--state-dir', st]).code === 0, 'the host');
    expect(sim(['create', writeCfg(dir, 'fgspin', 'spinner'), '--state-dir', st]).code).toBe(0);
    await until(() => out.includes("PV domain 'fgspin'"), 'the log line');
    c.kill('SIGTERM');
    expect(await exited(c)).toBe(0);
    expect(out).toMatch(/^\(XEN\) xensim host: Xen 4\.17\.0-xensim, 128 MiB/);
    expect(existsSync(path.join(st, 'hostd.sock'))).toBe(false);
  });
});
