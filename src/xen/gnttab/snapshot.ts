// Snapshot and restore of the grant-table state with msgpackr: an envelope with a magic, a
// format version and a CRC-32 of the body; the body names its fields (gnttabState).
//
// Saved: each domain's table (version, limits, grant and status frame numbers, active
// entries with their pins) and each grantee's maptrack. Not saved here: the frames'
// contents (the shared entries are guest RAM, saved with memory) and the page references
// grant mappings hold (the mm module's state).

import { Packr } from 'msgpackr';
import type { Xen } from '../xen.js';
import { crc32 } from '../xenstore/snapshot.js';
import { type GnttabState, gnttabState, restoreGnttabState } from './ops.js';

export const GNTTAB_SNAPSHOT_MAGIC = 'xensim-gnttab';
export const GNTTAB_SNAPSHOT_VERSION = 1;

export class GnttabSnapshotError extends Error {
  constructor(msg: string) { super(msg); this.name = 'GnttabSnapshotError'; }
}

const packr = new Packr({ useRecords: false, mapsAsObjects: true });

interface Envelope { magic: string; version: number; crc: number; body: Uint8Array }

/** The state as bytes. */
export function encodeGnttabState(s: GnttabState): Uint8Array {
  const body = packr.pack(s);
  const env: Envelope = { magic: GNTTAB_SNAPSHOT_MAGIC, version: GNTTAB_SNAPSHOT_VERSION, crc: crc32(body), body };
  return packr.pack(env);
}

/** Bytes back to state; throws GnttabSnapshotError on a foreign, newer or damaged snapshot. */
export function decodeGnttabState(bytes: Uint8Array): GnttabState {
  let env: Envelope;
  try { env = packr.unpack(bytes) as Envelope; } catch (e) { throw new GnttabSnapshotError(`not a snapshot: ${(e as Error).message}`); }
  if (!env || env.magic !== GNTTAB_SNAPSHOT_MAGIC) throw new GnttabSnapshotError('not a grant-table snapshot');
  if (env.version !== GNTTAB_SNAPSHOT_VERSION) throw new GnttabSnapshotError(`unsupported snapshot version ${env.version}`);
  const body = env.body instanceof Uint8Array ? env.body : new Uint8Array(env.body as ArrayLike<number>);
  if (crc32(body) !== env.crc) throw new GnttabSnapshotError('snapshot checksum mismatch');
  const s = packr.unpack(body) as GnttabState;
  if (!s || !Array.isArray(s.tables) || !Array.isArray(s.maptracks) || typeof s.defaults !== 'object') {
    throw new GnttabSnapshotError('malformed grant-table snapshot');
  }
  return s;
}

export function saveGnttab(xen: Xen): Uint8Array { return encodeGnttabState(gnttabState(xen)); }
export function loadGnttab(xen: Xen, bytes: Uint8Array): void { restoreGnttabState(xen, decodeGnttabState(bytes)); }
