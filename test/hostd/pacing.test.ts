// Realtime pacing with an injected clock: idle time passes with the (fake) wall clock, never
// ahead of it, and a host whose guests all wait for timers sleeps instead of spinning.

import { readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHost, type RunningHost } from '../../src/xen/hostd/host.js';
import { SLACK_NS } from '../../src/xen/hostd/runner.js';
import { tempDir, until, writeCfg } from './helpers.js';

let dir: string;
let host: RunningHost;
let fakeMs = 1_000_000;
const dots = () => (readFileSync(path.join(dir, 'st/console/tick.log'), 'utf8').match(/\./g) ?? []).length;

beforeAll(async () => {
  dir = tempDir('xsp-');
  host = await startHost({ stateDir: path.join(dir, 'st'), memoryMiB: 128, pace: 'realtime', clock: () => fakeMs });
});
afterAll(async () => {
  await host?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('realtime pacing', () => {
  it('a 100 Hz ticker advances with the wall clock only', async () => {
    host.manager.create(readFileSync(writeCfg(dir, 'tick', 'ticker'), 'utf8'), path.join(dir, 'tick.cfg'));
    await until(() => host.manager.runner.state === 'sleeping', 'the host to wait for the wall clock');
    const xen = host.xen;
    const v0 = xen.now();
    const d0 = dots();
    // The wall clock stands still: so does virtual time, however long we wait.
    for (let i = 0; i < 5; i++) await new Promise((r) => setTimeout(r, 15));
    expect(dots()).toBe(d0);
    expect(xen.now()).toBe(v0);
    // 50 ms pass: five more ticks, and virtual time stays within the slack of the wall clock.
    fakeMs += 50;
    host.manager.runner.kick();
    await until(() => dots() >= d0 + 5, 'five ticks');
    await until(() => host.manager.runner.state === 'sleeping', 'the host to wait again');
    expect(dots()).toBeLessThanOrEqual(d0 + 6);
    expect(xen.now() - v0).toBeLessThanOrEqual(50e6 + SLACK_NS);
    expect(xen.now() - v0).toBeGreaterThanOrEqual(40e6);
  });
});
