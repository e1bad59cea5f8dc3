// A real client against the Unix-socket transport: Debian's python3-pyxs (CI installs it
// with apt-get) runs reads, writes, listings, removals, permissions, transactions with a
// conflict, and watches against the in-process xenstored.

import { execFile, spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { createXenstore } from '../../../src/xen/xenstore/model.js';
import { serveXenstoreSocket } from '../../../src/xen/xenstore/socket.js';

const PYTHON = '/usr/bin/python3';
const script = fileURLToPath(new URL('./pyxs_client.py', import.meta.url));
const havePyxs = spawnSync(PYTHON, ['-c', 'import pyxs'], { stdio: 'ignore' }).status === 0;

function run(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: 60_000 }, (e, stdout, stderr) => {
      if (e) reject(new Error(`${e.message}\n${stderr}`)); else resolve(stdout);
    });
  });
}

describe('xenstored Unix socket with a real client (python3-pyxs)', () => {
  // Locally without the package the test is skipped; in CI (which installs it) it must run.
  it.skipIf(!havePyxs && !process.env.CI)('serves pyxs: read/write/ls/rm, permissions, transactions, watches', async () => {
    const xs = createXenstore();
    const sock = join(tmpdir(), `xensim-xenstored-${process.pid}.sock`);
    rmSync(sock, { force: true });
    const server = await serveXenstoreSocket(xs, sock);
    try {
      const out = JSON.parse(await run(PYTHON, [script, sock])) as Record<string, unknown>;
      expect(out).toEqual({
        read: 'hello', read_deep: 'deep', read_parent: '',
        ls: ['a', 'b', 'empty'], exists: [true, false], read_missing: 'ENOENT', default: 'dflt',
        ls_after_rm: ['a', 'empty'], rm_missing_ok: null, rm_orphan: 'ENOENT',
        walk: [['/test', '', ['a', 'empty']], ['/test/a', 'hello', []], ['/test/empty', '', []]],
        perms: ['n5', 'r6'], bad_perms: 'EINVAL',
        domain_path: '/local/domain/5', introduced0: true, introduced9: false, introduced9_after: true,
        tx_isolated: 'absent', commit: true, tx_read: '1', conflict_commit: false, after_conflict: '2', after_rollback: '2',
        events: [['/test', 'tok'], ['/test/w', 'tok'], ['/test/w', 'tok']],
        special: [['@introduceDomain', 'intro'], ['@introduceDomain', 'intro']],
      });
      expect(xs.dom0.read('/test/tx')).toBe('2');
      expect(xs.dom0.getPerms('/test/a')).toEqual(['n5', 'r6']);
      expect(xs.isIntroduced(10)).toBe(true);
      expect(xs.internalErrors).toEqual([]);
    } finally {
      await server.close();
    }
    expect(server.connections).toBe(0);
    expect([...xs.conns.values()].filter((c) => c.kind === 'socket')).toEqual([]);
  });
});
