// Debian's Linux PV kernel (linux-image-amd64, unpacked by scripts/fetch-debian-guests.sh)
// with a busybox initramfs of our own and no devices: it must boot through its event
// channel, grant table, xenstore and timer set-up to its init, show init's output on hvc0
// and power off cleanly.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { makeCpio, S_IFCHR, S_IFDIR, S_IFREG } from '../../src/guests/cpio.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const DEB = path.join(ROOT, 'build/debian');
const SIM = path.join(ROOT, 'dist/cli/main.js');

function findKernel(): string | undefined {
  for (const dir of [DEB, '/boot']) {
    if (!existsSync(dir)) continue;
    const k = readdirSync(dir).filter((f) => /^vmlinuz-.*-amd64$/.test(f)).sort().pop();
    if (k) return path.join(dir, k);
  }
  return undefined;
}
const kernel = findKernel();
const busybox = existsSync(path.join(DEB, 'busybox')) ? path.join(DEB, 'busybox') : undefined;

export function busyboxInitramfs(bb: string, script: string): Uint8Array {
  const enc = new TextEncoder();
  return makeCpio([
    { path: 'bin', mode: S_IFDIR | 0o755 },
    { path: 'dev', mode: S_IFDIR | 0o755 },
    { path: 'dev/console', mode: S_IFCHR | 0o600, rdev: [5, 1] },
    { path: 'proc', mode: S_IFDIR | 0o755 },
    { path: 'bin/busybox', mode: S_IFREG | 0o755, data: readFileSync(bb) },
    { path: 'init', mode: S_IFREG | 0o755, data: enc.encode(script) },
  ]);
}

const INIT = `#!/bin/busybox sh
/bin/busybox echo PV-INIT-OK
/bin/busybox mount -t proc proc /proc
/bin/busybox head -1 /proc/version
/bin/busybox echo CPUS=$(/bin/busybox grep -c ^processor /proc/cpuinfo)
/bin/busybox echo PV-DONE
/bin/busybox poweroff -f
`;

describe.skipIf(!kernel || !busybox)('Debian Linux PV kernel', () => {
  it('boots a busybox initramfs on two vCPUs to init on hvc0 and powers off', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'xensim-linux-'));
    const initrd = path.join(dir, 'initrd.cpio');
    writeFileSync(initrd, busyboxInitramfs(busybox!, INIT));
    const r = spawnSync(process.execPath, [SIM, 'run', kernel!, '--memory', '256', '--vcpus', '2', '--ramdisk', initrd,
      '--cmdline', 'console=hvc0 quiet', '--timeout', '300', '-v'], { encoding: 'utf8', timeout: 600_000 });
    const out = r.stdout;
    if (r.status !== 0) console.log(out.slice(-4000), r.stderr.slice(-3000));
    expect(out).toContain('PV-INIT-OK');
    expect(out).toContain('Linux version');
    expect(out).toContain('CPUS=2');
    expect(out).toContain('PV-DONE');
    expect(r.status).toBe(0);
    const stats = /sim: (\d+) instructions, ([\d.]+) s of virtual time/.exec(r.stderr);
    if (stats) console.log(`Linux PV boot to init and poweroff: ${stats[1]} instructions, ${stats[2]} s virtual`);
  }, 900_000);
});
