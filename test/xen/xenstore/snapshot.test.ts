// Snapshots: what is saved (tree, domains, ring connections with watches, open transactions
// and buffers), and that a damaged or foreign blob is refused.

import fc from 'fast-check';
import { Packr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { createXenstore } from '../../../src/xen/xenstore/model.js';
import { XsType } from '../../../src/xen/xenstore/protocol.js';
import { SnapshotError, XS_SNAPSHOT_MAGIC, crc32, restoreXenstore, saveXenstore } from '../../../src/xen/xenstore/snapshot.js';
import { call, events } from './harness.js';

function busy() {
  const xs = createXenstore({ quotas: { nodes: 50 } });
  xs.introduceDomain(1, '18446744073709551615', 4);
  xs.dom0.mkdir('/local/domain/1');
  xs.dom0.setPerms('/local/domain/1', ['n1', 'r0']);
  const c1 = xs.domains.get(1)!.conn!;
  call(xs, c1, XsType.WRITE, 0, 'bin\0', '\x00\x01\xff');
  call(xs, c1, XsType.WATCH, 0, 'bin\0', 'tok\0');
  const t = Number.parseInt(call(xs, c1, XsType.TRANSACTION_START, 0, '\0'), 10);
  call(xs, c1, XsType.WRITE, t, 'intx\0', 'pending');
  c1.rx = Uint8Array.of(11, 0, 0, 0, 9);
  return { xs, t };
}

describe('xenstore snapshots', () => {
  it('restores the tree, domains, watches, open transactions and buffers', () => {
    const { xs, t } = busy();
    const blob = saveXenstore(xs);
    const xs2 = restoreXenstore(blob);
    expect(xs2.dump()).toEqual(xs.dump());
    expect(xs2.quotas.nodes).toBe(50);
    const d = xs2.domains.get(1)!;
    expect(d.mfn).toBe('18446744073709551615');
    const c = d.conn!;
    expect([...c.rx]).toEqual([11, 0, 0, 0, 9]);
    expect(c.outq.length).toBe(xs.domains.get(1)!.conn!.outq.length);
    c.rx = new Uint8Array(0);
    events(c);
    // The open transaction carries on and commits, firing the restored watch.
    expect(call(xs2, c, XsType.READ, t, 'intx\0')).toBe('pending');
    expect(xs2.dom0.read('/local/domain/1/intx')).toBeUndefined();
    expect(call(xs2, c, XsType.TRANSACTION_END, t, 'T\0')).toBe('OK\0');
    expect(xs2.dom0.read('/local/domain/1/intx')).toBe('pending');
    xs2.dom0.write('/local/domain/1/bin', 'x');
    expect(events(c)).toEqual([['bin', 'tok']]);
    expect(Buffer.from(xs2.dom0.readBytes('/local/domain/1/bin')!)).toEqual(Buffer.from('x'));
  });

  it('refuses a blob with a flipped bit, a foreign magic or another version', () => {
    const blob = saveXenstore(busy().xs);
    fc.assert(fc.property(fc.nat(blob.length - 1), fc.integer({ min: 0, max: 7 }), (at, bit) => {
      const bad = Uint8Array.from(blob);
      bad[at] ^= 1 << bit;
      expect(() => restoreXenstore(bad)).toThrow(SnapshotError);
    }), { numRuns: 200, seed: 7 });
    const packr = new Packr({ useRecords: false });
    const body = packr.pack({});
    expect(() => restoreXenstore(packr.pack({ magic: 'other', version: 1, crc: crc32(body), body }))).toThrow(/magic/);
    expect(() => restoreXenstore(packr.pack({ magic: XS_SNAPSHOT_MAGIC, version: 99, crc: crc32(body), body }))).toThrow(/version/);
    expect(() => restoreXenstore(Uint8Array.of(1, 2, 3))).toThrow(SnapshotError);
  });

  it('computes the standard CRC-32', () => {
    expect(crc32(new TextEncoder().encode('123456789'))).toBe(0xcbf43926);
  });
});
