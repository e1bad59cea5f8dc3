// A host started in this process on a temporary state directory, driven through the verbs
// (the real client, the real Unix socket) with captured I/O. Virtual pacing: no test
// depends on how fast anything runs.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NO_HOST_MESSAGE } from '../../src/cli/host-client.js';
import { consoleVerb, createVerb, dmesgVerb, domainVerb, infoVerb, listVerb, shutdownVerb, LIST_HEADER } from '../../src/cli/verbs.js';
import { startHost, type RunningHost } from '../../src/xen/hostd/host.js';
import { MAX_QUICK } from '../../src/xen/hostd/manager.js';
import { EXIT_CODES } from '../../src/cli/run.js';
import { capture, GUESTS, parseList, tempDir, until, writeCfg } from './helpers.js';

let dir: string;     // configs and kernels
let state: string;   // the host's state directory
let host: RunningHost;
const HELLO = path.join(GUESTS, 'hello/hello.elf');
const CRASH = path.join(GUESTS, 'shutdown-crash/shutdown-crash.elf');
const REBOOT = path.join(GUESTS, 'shutdown-reboot/shutdown-reboot.elf');

async function list(): Promise<ReturnType<typeof parseList>> {
  const io = capture();
  expect(await listVerb({ stateDir: state }, io)).toBe(0);
  return parseList(io.out());
}
async function create(cfg: string, extra: { paused?: boolean } = {}): Promise<void> {
  const io = capture();
  const code = await createVerb({ config: cfg, stateDir: state, ...extra }, io);
  expect(io.err()).not.toMatch(/^sim:/m);
  expect(code).toBe(0);
}
const consoleLog = (name: string) => {
  const f = path.join(state, 'console', `${name}.log`);
  return existsSync(f) ? readFileSync(f, 'utf8') : '';
};
const insnsOf = (name: string) => host.manager.domainOf(name).vcpus.reduce((n, v) => n + v.cpu.insns, 0);

beforeAll(async () => {
  dir = tempDir('xsh-');
  state = path.join(dir, 'st');
  host = await startHost({ stateDir: state, memoryMiB: 256, pace: 'virtual' });
});

afterAll(async () => {
  await host?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('with no host', () => {
  it('every verb prints the one-line message and exits 1', async () => {
    const empty = path.join(dir, 'none');
    const cfg = writeCfg(dir, 'nohost', HELLO);
    const runs: [string, (io: ReturnType<typeof capture>) => Promise<number>][] = [
      ['list', (io) => listVerb({ stateDir: empty }, io)],
      ['info', (io) => infoVerb({ stateDir: empty }, io)],
      ['dmesg', (io) => dmesgVerb({ stateDir: empty }, io)],
      ['console', (io) => consoleVerb({ stateDir: empty, domain: 'x' }, io)],
      ['shutdown', (io) => shutdownVerb({ stateDir: empty, domain: 'x', wait: true }, io)],
      ['destroy', (io) => domainVerb('destroy', { stateDir: empty, domain: 'x' }, io)],
      ['pause', (io) => domainVerb('pause', { stateDir: empty, domain: 'x' }, io)],
      ['unpause', (io) => domainVerb('unpause', { stateDir: empty, domain: 'x' }, io)],
      ['create', (io) => createVerb({ stateDir: empty, config: cfg }, io)],
    ];
    for (const [what, run] of runs) {
      const io = capture();
      expect(await run(io), what).toBe(1);
      expect(io.err(), what).toBe(NO_HOST_MESSAGE + '\n');
      expect(io.out(), what).toBe('');
    }
  });
});

describe('starting a host', () => {
  it('replaces a stale socket and pid file; refuses a second host on the same directory', async () => {
    const st = path.join(dir, 'stale');
    mkdirSync(st, { recursive: true });
    writeFileSync(path.join(st, 'hostd.sock'), '');            // left by a killed host
    const gone = spawnSync(process.execPath, ['-e', '0']).pid!; // a pid that has exited
    writeFileSync(path.join(st, 'hostd.pid'), `${gone}\n`);
    const io = capture();
    expect(await listVerb({ stateDir: st }, io)).toBe(1);
    expect(io.err()).toBe(NO_HOST_MESSAGE + '\n');
    const h = await startHost({ stateDir: st, memoryMiB: 64, pace: 'virtual' });
    try {
      expect(readFileSync(path.join(st, 'hostd.pid'), 'utf8')).toBe(`${process.pid}\n`);
      expect(await listVerb({ stateDir: st }, capture())).toBe(0);
      await expect(startHost({ stateDir: st, memoryMiB: 64, pace: 'virtual' })).rejects.toThrow(/a host is already running in .*stale \(pid \d+\)/);
    } finally { await h.stop(); }
    expect(existsSync(path.join(st, 'hostd.sock'))).toBe(false);
    expect(existsSync(path.join(st, 'hostd.pid'))).toBe(false);
  });
});

describe('a running host', () => {
  it('lists Domain-0 (the host itself) first in xl list columns', async () => {
    const io = capture();
    expect(await listVerb({ stateDir: state }, io)).toBe(0);
    const lines = io.out().split('\n');
    expect(lines[0]).toBe(LIST_HEADER);
    expect(lines[0]).toBe('Name                                        ID   Mem VCPUs\tState\tTime(s)');
    expect(lines[1]).toMatch(/^Domain-0 {32} {5}0 {5}0 {5}1 {5}r----- {2} +\d+\.\d$/);
    expect(lines[1].length).toBe(40 + 6 * 3 + 5 + 6 + 2 + 8);
  });

  it('creates a domain from an xl.cfg; its console output is logged; on_poweroff=preserve keeps it as ---s--', async () => {
    const cfg = writeCfg(dir, 'hello', HELLO, { memory: 32, on_poweroff: 'preserve', extra: 'console=hvc0 xensim-test' });
    await create(cfg);
    const rows = await until(async () => { const r = await list(); return r.get('hello')?.state === '---s--' ? r : null; }, 'hello to power off');
    const h = rows.get('hello')!;
    expect(h.id).toBeGreaterThanOrEqual(1);
    expect(h.mem).toBe(32);
    expect(h.vcpus).toBe(1);
    expect(h.line).toMatch(/^hello {35} +\d+ +32 +1 {5}---s-- {2} +\d+\.\d$/);
    expect(consoleLog('hello')).toContain('hello from a PV guest\n');
    expect(consoleLog('hello')).toContain('PASS hello\n');
    // A name is unique.
    const io = capture();
    expect(await createVerb({ config: cfg, stateDir: state }, io)).toBe(1);
    expect(io.err()).toMatch(/^sim: a domain named 'hello' already exists/m);
    // destroy by ID frees its memory.
    const free0 = host.xen.frames.free;
    expect(await domainVerb('destroy', { stateDir: state, domain: String(h.id) }, capture())).toBe(0);
    expect((await list()).has('hello')).toBe(false);
    expect(host.xen.frames.free - free0).toBeGreaterThanOrEqual(32 * 256);
  });

  it('pause stops a domain\'s vCPUs (--p---) and unpause resumes them (r-----)', async () => {
    const free0 = host.xen.frames.free;
    await create(writeCfg(dir, 'spin', 'spinner'));
    await until(() => consoleLog('spin').includes('spinner up\n'), 'the spinner to start');
    expect((await list()).get('spin')!.state).toBe('r-----');
    expect(await domainVerb('pause', { stateDir: state, domain: 'spin' }, capture())).toBe(0);
    const rows = await list();
    expect(rows.get('spin')!.state).toBe('--p---');
    const n = insnsOf('spin');
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
    expect(insnsOf('spin')).toBe(n);
    const io = capture();
    expect(await domainVerb('pause', { stateDir: state, domain: 'Domain-0' }, io)).toBe(1);
    expect(io.err()).toMatch(/^sim: cannot pause Domain-0/);
    expect(await domainVerb('unpause', { stateDir: state, domain: 'spin' }, capture())).toBe(0);
    await until(() => insnsOf('spin') > n, 'the spinner to run again');
    // Time(s) is the virtual CPU time its vCPU ran.
    await until(() => host.manager.list().find((r) => r.name === 'spin')!.timeS > 0, 'CPU time to be counted');
    expect((await list()).get('spin')!.state).toBe('r-----');
    const io2 = capture();
    expect(await domainVerb('unpause', { stateDir: state, domain: 'spin' }, io2)).toBe(1);
    expect(io2.err()).toMatch(/is not paused/);
    // shutdown -w returns once it is gone, and its memory is back.
    const sio = capture();
    expect(await shutdownVerb({ stateDir: state, domain: 'spin', wait: true }, sio)).toBe(0);
    expect(sio.err()).toMatch(/Domain \d+ 'spin': destroyed/);
    expect((await list()).has('spin')).toBe(false);
    // Every frame comes back, Xen's per-domain GDT/LDT tables included.
    expect(free0 - host.xen.frames.free).toBe(0);
  });

  it('create -p leaves the domain paused until unpause', async () => {
    await create(writeCfg(dir, 'later', 'spinner'), { paused: true });
    expect((await list()).get('later')!.state).toBe('--p---');
    for (let i = 0; i < 10; i++) await new Promise((r) => setImmediate(r));
    expect(insnsOf('later')).toBe(0);
    expect(consoleLog('later')).toBe('');
    expect(await domainVerb('unpause', { stateDir: state, domain: 'later' }, capture())).toBe(0);
    await until(() => consoleLog('later').includes('spinner up'), 'it to start');
    expect(await domainVerb('destroy', { stateDir: state, domain: 'later' }, capture())).toBe(0);
  });

  it('a domain whose vCPUs all block shows -b---- and the host goes idle (it does not spin)', async () => {
    await create(writeCfg(dir, 'idle', 'blocker'));
    await until(async () => (await list()).get('idle')?.state === '-b----', 'the blocker to block');
    await until(() => host.manager.runner.state === 'idle', 'the scheduler to go idle');
    const steps = host.manager.runner.steps;
    for (let i = 0; i < 20; i++) await new Promise((r) => setTimeout(r, 5));
    expect(host.manager.runner.steps).toBe(steps);
    const info = capture();
    expect(await infoVerb({ stateDir: state }, info)).toBe(0);
    expect(info.out()).toMatch(/^scheduler_state {8}: idle$/m);
    expect(await domainVerb('destroy', { stateDir: state, domain: 'idle' }, capture())).toBe(0);
  });

  it('console: output streams, input reaches the guest, ^] detaches (with pipes)', async () => {
    await create(writeCfg(dir, 'echo', 'echo'));
    const io = capture();
    const done = consoleVerb({ stateDir: state, domain: 'echo' }, io);
    await until(() => io.out().includes('echo up\n'), 'the buffered output');
    io.input.write('hello, guest\r');
    await until(() => io.out().includes('hello, guest\r'), 'the echo');
    // A second client attaching meanwhile gets new output only.
    const io2 = capture();
    const done2 = consoleVerb({ stateDir: state, domain: 'echo' }, io2);
    await until(() => host.manager.consoleOf('echo').console.attached === 2, 'the second attach');
    expect(io2.out()).toBe('');
    io.input.write('more\x1dignored');
    expect(await done).toBe(0);
    await until(() => io2.out().includes('more'), 'the second client to see it');
    expect(io.out()).not.toContain('ignored');
    expect(consoleLog('echo')).toBe('echo up\nhello, guest\rmore');
    // Destroying the domain ends the other attachment (status 0).
    expect(await domainVerb('destroy', { stateDir: state, domain: 'echo' }, capture())).toBe(0);
    expect(await done2).toBe(0);
  });

  it('create -c streams the console and exits with the status of how the domain ended', async () => {
    const ok = capture();
    expect(await createVerb({ config: writeCfg(dir, 'hi', HELLO, { memory: 32, extra: 'console=hvc0 xensim-test' }), console: true, stateDir: state }, ok)).toBe(0);
    expect(ok.out()).toContain('hello from a PV guest\n');
    expect(ok.out()).toContain('PASS hello\n');
    const bad = capture();
    expect(await createVerb({ config: writeCfg(dir, 'cr', CRASH, { memory: 32 }), console: true, stateDir: state }, bad)).toBe(3);
    expect(bad.out()).toContain('PASS shutdown-crash');
    expect(bad.err()).toMatch(/domain 'cr' ended: crash/);
    expect((await list()).has('cr')).toBe(false);
  });

  it('a crash with on_crash=destroy removes the domain; with preserve it stays as ---sc-; other domains run on', async () => {
    await create(writeCfg(dir, 'bystander', 'spinner'));
    await until(() => consoleLog('bystander').includes('spinner up'), 'the bystander');
    await create(writeCfg(dir, 'crashd', CRASH, { memory: 32, on_crash: 'destroy' }));
    await create(writeCfg(dir, 'crashp', CRASH, { memory: 32, on_crash: 'preserve' }));
    await create(writeCfg(dir, 'ud2', 'crasher', { on_crash: 'preserve' }));
    const rows = await until(async () => {
      const r = await list();
      return !r.has('crashd') && r.get('crashp')?.state === '---sc-' && r.get('ud2')?.state === '---sc-' ? r : null;
    }, 'the crashes');
    expect(rows.get('crashp')!.mem).toBe(32);
    expect(consoleLog('crashd')).toContain('PASS shutdown-crash');
    const n = insnsOf('bystander');
    await until(() => insnsOf('bystander') > n, 'the bystander to keep running');
    expect(rows.get('bystander')!.state).toBe('r-----');
    const dm = capture();
    expect(await dmesgVerb({ stateDir: state }, dm)).toBe(0);
    expect(dm.out()).toMatch(/\(XEN\) d\d+: shutdown: crash/);
    expect(dm.out()).toMatch(/\(XEN\) d\d+: shutdown: crash \(.+\)/); // ud2: Xen's own reason
    // A bug in the simulator while it runs a domain crashes that domain only.
    await create(writeCfg(dir, 'buggy', 'echo', { on_crash: 'preserve' }));
    await until(() => consoleLog('buggy').includes('echo up'), 'the echo guest');
    host.manager.domainOf('buggy').vcpus[0].cpu.hooks.syscall = () => { throw new Error('injected model bug'); };
    const att = capture();
    const attached = consoleVerb({ stateDir: state, domain: 'buggy' }, att);
    await until(() => host.manager.consoleOf('buggy').console.attached === 1, 'the attach');
    att.input.write('x');
    expect(await attached).toBe(EXIT_CODES.crash);
    expect((await list()).get('buggy')!.state).toBe('---sc-');
    const m = insnsOf('bystander');
    await until(() => insnsOf('bystander') > m, 'the bystander to keep running');
    expect(readFileSync(path.join(state, 'hypervisor.log'), 'utf8')).toMatch(/"event":"internal-error".*injected model bug/);
    expect(await domainVerb('destroy', { stateDir: state, domain: 'buggy' }, capture())).toBe(0);
    // A preserved domain cannot be paused; destroy takes it away.
    const p = capture();
    expect(await domainVerb('pause', { stateDir: state, domain: 'crashp' }, p)).toBe(1);
    expect(p.err()).toMatch(/is shut down/);
    for (const d of ['crashp', 'ud2', 'bystander']) expect(await domainVerb('destroy', { stateDir: state, domain: d }, capture())).toBe(0);
    expect([...(await list()).keys()]).toEqual(['Domain-0']);
  });

  it('on_reboot=restart recreates the domain with a new ID, the same name and console; a restart loop is stopped', async () => {
    const io = capture();
    const cfg = writeCfg(dir, 'rb', REBOOT, { memory: 32, on_reboot: 'restart' });
    // -c follows the domain across restarts; it ends when the host gives up on it.
    const code = await createVerb({ config: cfg, console: true, stateDir: state }, io);
    expect(io.err()).toMatch(/domain 'rb' ended: restarting too fast/);
    expect(code).toBe(1);
    const passes = consoleLog('rb').split('PASS shutdown-reboot').length - 1;
    expect(passes).toBe(MAX_QUICK + 1);
    expect(io.out().split('PASS shutdown-reboot').length - 1).toBe(MAX_QUICK + 1);
    const log = readFileSync(path.join(state, 'hypervisor.log'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const restarts = log.filter((e) => e.event === 'restart' && e.name === 'rb');
    expect(restarts.length).toBe(MAX_QUICK);
    const ids = restarts.map((e) => e.domid as number);
    expect(new Set(ids).size).toBe(MAX_QUICK);
    for (let i = 1; i < ids.length; i++) expect(ids[i]).toBeGreaterThan(ids[i - 1]);
    expect(log.some((e) => e.event === 'restart-refused' && e.name === 'rb')).toBe(true);
    expect((await list()).has('rb')).toBe(false);
  });

  it('shutdown of a guest without a PV control interface is done by the hypervisor; reboot restarts it', async () => {
    await create(writeCfg(dir, 'rs', 'spinner', { on_reboot: 'restart' }));
    const id0 = (await list()).get('rs')!.id;
    const io = capture();
    expect(await shutdownVerb({ stateDir: state, domain: 'rs', reboot: true, wait: true }, io)).toBe(0);
    const row = (await list()).get('rs')!;
    expect(row.id).toBeGreaterThan(id0);
    expect(io.err()).toBe(`Rebooting domain ${id0}\nDomain ${id0} 'rs': restarted as domain ${row.id}\n`);
    expect(row.state).toBe('r-----');
    await until(() => consoleLog('rs').split('spinner up').length === 3, 'the second boot');
    expect(await shutdownVerb({ stateDir: state, domain: String(row.id) }, capture())).toBe(0);
    await until(async () => !(await list()).has('rs'), 'it to go');
    const bad = capture();
    expect(await shutdownVerb({ stateDir: state, domain: 'nosuch' }, bad)).toBe(1);
    expect(bad.err()).toBe("sim: no domain 'nosuch' (see sim list)\n");
  });

  it('info, dmesg and the structured log', async () => {
    const io = capture();
    expect(await infoVerb({ stateDir: state }, io)).toBe(0);
    const info = new Map(io.out().trim().split('\n').map((l) => { const i = l.indexOf(':'); return [l.slice(0, i).trim(), l.slice(i + 1).trim()] as const; }));
    expect(io.out()).toMatch(/^total_memory {11}: 256$/m);
    expect(info.get('xen_version')).toBe('4.17.0-xensim');
    expect(info.get('nr_cpus')).toBe('1');
    expect(Number(info.get('free_memory'))).toBeGreaterThan(200);
    expect(Number(info.get('free_memory'))).toBeLessThan(256);
    expect(info.get('host_pid')).toBe(String(process.pid));
    const dm = capture();
    expect(await dmesgVerb({ stateDir: state }, dm)).toBe(0);
    expect(dm.out().split('\n')[0]).toMatch(/^\(XEN\) xensim host: Xen 4\.17\.0-xensim, 256 MiB/);
    expect(dm.out()).toMatch(/\(XEN\) d\d+: PV domain 'hello': 32 MiB/);
    const log = readFileSync(path.join(state, 'hypervisor.log'), 'utf8');
    expect(log).toMatch(/"event":"create".*"name":"hello"/);
    expect(log).toMatch(/"xen":"\(XEN\) d\d+: shutdown: poweroff"/);
    const clear = capture();
    expect(await dmesgVerb({ stateDir: state, clear: true }, clear)).toBe(0);
    const after = capture();
    expect(await dmesgVerb({ stateDir: state }, after)).toBe(0);
    expect(after.out()).toBe('');
  });
});
