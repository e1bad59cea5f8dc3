// The "newc" cpio format Linux unpacks as an initramfs: 110-byte ASCII headers (magic
// 070701, hex fields), the name, padding to 4 bytes, the data, padding, and a TRAILER!!!.

export interface CpioEntry {
  path: string;          // without a leading slash, e.g. "bin/busybox"
  mode: number;          // file type and permissions, e.g. 0o100755, 0o040755, 0o120777
  data?: Uint8Array;     // file contents, or the target of a symlink
  /** Device number of a character or block special file. */
  rdev?: [number, number];
}

export const S_IFDIR = 0o040000, S_IFREG = 0o100000, S_IFLNK = 0o120000, S_IFCHR = 0o020000;

export function makeCpio(entries: CpioEntry[]): Uint8Array {
  const parts: Uint8Array[] = [];
  const enc = new TextEncoder();
  let ino = 1;
  let size = 0;
  const push = (b: Uint8Array) => { parts.push(b); size += b.length; };
  const pad = () => { const n = (4 - (size % 4)) % 4; if (n) push(new Uint8Array(n)); };
  const hex = (v: number) => (v >>> 0).toString(16).padStart(8, '0');
  const one = (name: string, mode: number, data: Uint8Array, nlink: number, rdev: [number, number] = [0, 0]) => {
    const nameBytes = enc.encode(name + '\0');
    const header = '070701' + hex(ino++) + hex(mode) + hex(0) + hex(0) + hex(nlink) + hex(0) + hex(data.length) +
      hex(0) + hex(0) + hex(rdev[0]) + hex(rdev[1]) + hex(nameBytes.length) + hex(0);
    push(enc.encode(header));
    push(nameBytes);
    pad();
    if (data.length) push(data);
    pad();
  };
  for (const e of entries) {
    const name = e.path.replace(/^\/+/, '');
    if (!name) throw new Error('cpio: empty path');
    one(name, e.mode, e.data ?? new Uint8Array(0), (e.mode & 0o170000) === S_IFDIR ? 2 : 1, e.rdev);
  }
  one('TRAILER!!!', 0, new Uint8Array(0), 1);
  const out = new Uint8Array(size);
  let o = 0;
  for (const p of parts) { out.set(p, o); o += p.length; }
  return out;
}
