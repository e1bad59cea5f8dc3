// Zstandard frames (RFC 8878; Linux's CONFIG_KERNEL_ZSTD): frame and block headers, raw/RLE/
// compressed blocks, Huffman-coded literals (1 or 4 streams), FSE-coded sequences with
// predefined/RLE/compressed/repeat tables, repeat offsets, skippable frames and the XXH64
// content checksum. Dictionaries are not supported (kernel images never use them).

import { KernelImageError, hex } from '../image-error.js';
import { need, OutBuf, u32le } from './util.js';
import { xxh64Low32 } from './xxh64.js';

const MAGIC = 0xfd2fb528;
const BLOCK_MAX = 128 << 10;

export function isZstdStart(d: Uint8Array, pos: number): boolean {
  if (pos + 4 > d.length) return false;
  const m = u32le(d, pos);
  return m === MAGIC || (m & 0xfffffff0) >>> 0 === 0x184d2a50;
}

function fail(msg: string): never {
  throw new KernelImageError('zstd', msg);
}

// ---- bitstreams ----

/** Forward little-endian bit reader (FSE table descriptions). */
class FwdBits {
  bitPos = 0;
  constructor(readonly d: Uint8Array, readonly start: number, readonly end: number) {}
  read(n: number): number {
    let v = 0;
    for (let i = 0; i < n; i++) {
      const p = this.start + ((this.bitPos + i) >>> 3);
      if (p >= this.end) fail(`FSE table description runs past the end of its block (input offset ${hex(p)})`);
      v |= ((this.d[p]! >>> ((this.bitPos + i) & 7)) & 1) << i;
    }
    this.bitPos += n;
    return v >>> 0;
  }
  peek(n: number): number {
    const save = this.bitPos;
    let v = 0;
    for (let i = 0; i < n; i++) {
      const p = this.start + ((this.bitPos + i) >>> 3);
      const b = p < this.end ? this.d[p]! : 0;
      v |= ((b >>> ((this.bitPos + i) & 7)) & 1) << i;
    }
    this.bitPos = save;
    return v >>> 0;
  }
  bytesUsed(): number {
    return (this.bitPos + 7) >>> 3;
  }
}

/** Backward bit reader (Huffman streams, FSE-coded weights and sequences). */
class BackBits {
  /** Unread bits; negative once reads went past the start ("overflow"). */
  left: number;
  constructor(readonly d: Uint8Array, readonly start: number, readonly end: number, what: string) {
    if (end <= start) fail(`${what}: empty bitstream`);
    const last = d[end - 1]!;
    if (last === 0) fail(`${what}: bitstream at input offset ${hex(start)} has no end marker`);
    this.left = (end - start - 1) * 8 + (31 - Math.clz32(last));
  }
  private window(start: number, n: number): number {
    const b = this.start + (start >>> 3);
    const w = (this.d[b]! | ((this.d[b + 1] ?? 0) << 8) | ((this.d[b + 2] ?? 0) << 16) | ((this.d[b + 3] ?? 0) << 24)) >>> 0;
    return (w >>> (start & 7)) & ((1 << n) - 1);
  }
  /** Read n <= 24 bits (zeros past the start). */
  read(n: number): number {
    if (n === 0) return 0;
    const before = this.left;
    this.left -= n;
    if (this.left >= 0) return this.window(this.left, n);
    if (before <= 0) return 0;
    return this.window(0, before) << (n - before);
  }
  readLong(n: number): number {
    if (n <= 24) return this.read(n);
    const hi = this.read(n - 16);
    return hi * 65536 + this.read(16);
  }
  peek(n: number): number {
    const save = this.left;
    const v = this.read(n);
    this.left = save;
    return v;
  }
}

// ---- FSE ----

interface FseTable {
  log: number;
  symbol: Uint8Array;
  nbBits: Uint8Array;
  base: Uint16Array;
}

function buildFse(norm: Int16Array, nsym: number, log: number): FseTable {
  const size = 1 << log;
  const symbol = new Uint8Array(size);
  const nbBits = new Uint8Array(size);
  const base = new Uint16Array(size);
  const next = new Uint16Array(nsym);
  let high = size - 1;
  for (let s = 0; s < nsym; s++) {
    if (norm[s] === -1) {
      symbol[high--] = s;
      next[s] = 1;
    } else {
      next[s] = norm[s]!;
    }
  }
  const step = (size >>> 1) + (size >>> 3) + 3;
  const mask = size - 1;
  let pos = 0;
  for (let s = 0; s < nsym; s++) {
    for (let i = 0; i < norm[s]!; i++) {
      symbol[pos] = s;
      do pos = (pos + step) & mask; while (pos > high);
    }
  }
  if (pos !== 0) fail('corrupt FSE table (distribution does not fill the table)');
  for (let u = 0; u < size; u++) {
    const s = symbol[u]!;
    const ns = next[s]++;
    const nb = log - (31 - Math.clz32(ns));
    nbBits[u] = nb;
    base[u] = (ns << nb) - size;
  }
  return { log, symbol, nbBits, base };
}

/** Read an FSE table description at `pos`; returns the table and the bytes used. */
function readFse(d: Uint8Array, pos: number, end: number, maxSym: number, maxLog: number, what: string): [FseTable, number] {
  const br = new FwdBits(d, pos, end);
  const log = br.read(4) + 5;
  if (log > maxLog) fail(`${what}: FSE accuracy log ${log} exceeds ${maxLog}`);
  const norm = new Int16Array(maxSym + 1);
  let remaining = (1 << log) + 1;
  let threshold = 1 << log;
  let nbBits = log + 1;
  let sym = 0;
  while (remaining > 1) {
    if (sym > maxSym) fail(`${what}: FSE table has too many symbols`);
    const max = 2 * threshold - 1 - remaining;
    let count: number;
    const low = br.peek(nbBits - 1);
    if (low < max) {
      count = low;
      br.read(nbBits - 1);
    } else {
      count = br.peek(nbBits);
      if (count >= threshold) count -= max;
      br.read(nbBits);
    }
    count--;
    remaining -= count < 0 ? -count : count;
    norm[sym++] = count;
    if (count === 0) {
      for (;;) {
        const rep = br.read(2);
        for (let i = 0; i < rep; i++) {
          if (sym > maxSym) fail(`${what}: FSE table has too many symbols`);
          norm[sym++] = 0;
        }
        if (rep !== 3) break;
      }
    }
    while (remaining < threshold) {
      nbBits--;
      threshold >>>= 1;
    }
  }
  if (remaining !== 1) fail(`${what}: corrupt FSE table description`);
  return [buildFse(norm, sym, log), br.bytesUsed()];
}

function rleTable(sym: number): FseTable {
  return { log: 0, symbol: new Uint8Array([sym]), nbBits: new Uint8Array(1), base: new Uint16Array(1) };
}

const LL_DEFAULT = [4, 3, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 3, 2, 1, 1, 1, 1, 1, -1, -1, -1, -1];
const ML_DEFAULT = [1, 4, 3, 2, 2, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, -1, -1, -1, -1, -1, -1, -1];
const OF_DEFAULT = [1, 1, 1, 1, 1, 1, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, -1, -1, -1, -1, -1];
const LL_PREDEF = buildFse(Int16Array.from(LL_DEFAULT), LL_DEFAULT.length, 6);
const ML_PREDEF = buildFse(Int16Array.from(ML_DEFAULT), ML_DEFAULT.length, 6);
const OF_PREDEF = buildFse(Int16Array.from(OF_DEFAULT), OF_DEFAULT.length, 5);

const LL_BASE = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 18, 20, 22, 24, 28, 32, 40, 48, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536];
const LL_BITS = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 3, 3, 4, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16];
const ML_BASE = [...Array.from({ length: 32 }, (_, i) => i + 3), 35, 37, 39, 41, 43, 47, 51, 59, 67, 83, 99, 131, 259, 515, 1027, 2051, 4099, 8195, 16387, 32771, 65539];
const ML_BITS = [...new Array<number>(32).fill(0), 1, 1, 1, 1, 2, 2, 3, 3, 4, 4, 5, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16];

// ---- Huffman ----

interface HufTable {
  maxBits: number;
  symbol: Uint8Array;
  nbBits: Uint8Array;
}

function buildHuf(weights: Uint8Array, n: number, what: string): HufTable {
  let total = 0;
  for (let i = 0; i < n; i++) {
    if (weights[i]! > 11) fail(`${what}: Huffman weight ${weights[i]} too large`);
    if (weights[i]) total += 1 << (weights[i]! - 1);
  }
  if (total === 0) fail(`${what}: all Huffman weights are zero`);
  const maxBits = 32 - Math.clz32(total);
  if (maxBits > 11) fail(`${what}: Huffman table too deep`);
  const rest = (1 << maxBits) - total;
  if (rest & (rest - 1)) fail(`${what}: Huffman weights do not sum to a power of two`);
  const lastW = 31 - Math.clz32(rest) + 1;
  const w = new Uint8Array(n + 1);
  w.set(weights.subarray(0, n));
  w[n] = lastW;
  const nsym = n + 1;
  const size = 1 << maxBits;
  const symbol = new Uint8Array(size);
  const nbBits = new Uint8Array(size);
  const rankStart = new Int32Array(13);
  const counts = new Int32Array(13);
  for (let s = 0; s < nsym; s++) counts[w[s]!]++;
  let next = 0;
  for (let k = 1; k <= 12; k++) {
    rankStart[k] = next;
    next += counts[k]! << (k - 1);
  }
  for (let s = 0; s < nsym; s++) {
    const k = w[s]!;
    if (!k) continue;
    const len = 1 << (k - 1);
    const st = rankStart[k]!;
    symbol.fill(s, st, st + len);
    nbBits.fill(maxBits + 1 - k, st, st + len);
    rankStart[k] = st + len;
  }
  return { maxBits, symbol, nbBits };
}

/** Read a Huffman tree description at `pos`; returns the table and bytes used. */
function readHuf(d: Uint8Array, pos: number, end: number, what: string): [HufTable, number] {
  if (pos >= end) fail(`${what}: missing Huffman tree description`);
  const hb = d[pos]!;
  const weights = new Uint8Array(256);
  let n: number;
  let used: number;
  if (hb >= 128) {
    n = hb - 127;
    used = 1 + ((n + 1) >>> 1);
    if (pos + used > end) fail(`${what}: Huffman weights run past the end of the block`);
    for (let i = 0; i < n; i++) {
      const b = d[pos + 1 + (i >>> 1)]!;
      weights[i] = i & 1 ? b & 15 : b >>> 4;
    }
  } else {
    used = 1 + hb;
    if (pos + used > end) fail(`${what}: Huffman weights run past the end of the block`);
    const [t, tl] = readFse(d, pos + 1, pos + used, 255, 6, what);
    const bits = new BackBits(d, pos + 1 + tl, pos + used, what);
    let s1 = bits.read(t.log);
    let s2 = bits.read(t.log);
    n = 0;
    for (;;) {
      if (n >= 255) fail(`${what}: too many Huffman weights`);
      weights[n++] = t.symbol[s1]!;
      s1 = t.base[s1]! + bits.read(t.nbBits[s1]!);
      if (bits.left < 0) {
        weights[n++] = t.symbol[s2]!;
        break;
      }
      if (n >= 255) fail(`${what}: too many Huffman weights`);
      weights[n++] = t.symbol[s2]!;
      s2 = t.base[s2]! + bits.read(t.nbBits[s2]!);
      if (bits.left < 0) {
        weights[n++] = t.symbol[s1]!;
        break;
      }
    }
  }
  return [buildHuf(weights, n, what), used];
}

function hufStream(d: Uint8Array, start: number, end: number, t: HufTable, out: Uint8Array, o: number, count: number, what: string): void {
  const bits = new BackBits(d, start, end, what);
  const mb = t.maxBits;
  for (let i = 0; i < count; i++) {
    const v = bits.peek(mb);
    out[o + i] = t.symbol[v]!;
    bits.left -= t.nbBits[v]!;
    if (bits.left < 0) fail(`${what}: Huffman stream overrun`);
  }
  if (bits.left !== 0) fail(`${what}: Huffman stream not fully consumed`);
}

// ---- frames ----

interface FrameState {
  huf?: HufTable;
  ll?: FseTable;
  of?: FseTable;
  ml?: FseTable;
  reps: [number, number, number];
  frameStart: number;
  windowSize: number;
}

/** Decode one frame (or skip a skippable one) at `pos`; returns the offset after it. */
export function decodeZstdFrame(d: Uint8Array, pos: number, out: OutBuf, frameNo = 1): number {
  const f = `frame ${frameNo}`;
  need('zstd', d, pos, 4, `the magic of ${f}`);
  const magic = u32le(d, pos);
  if ((magic & 0xfffffff0) >>> 0 === 0x184d2a50) {
    need('zstd', d, pos + 4, 4, `the size of skippable ${f}`);
    const size = u32le(d, pos + 4);
    need('zstd', d, pos + 8, size, `skippable ${f}`);
    return pos + 8 + size;
  }
  if (magic !== MAGIC) fail(`${f} at input offset ${hex(pos)}: bad magic ${hex(magic)}`);
  need('zstd', d, pos + 4, 1, `the header of ${f}`);
  const fhd = d[pos + 4]!;
  const fcsFlag = fhd >>> 6;
  const single = (fhd & 0x20) !== 0;
  if (fhd & 0x08) fail(`${f}: reserved frame header bit set`);
  const checksum = (fhd & 0x04) !== 0;
  const dictIdSize = [0, 1, 2, 4][fhd & 3]!;
  const fcsSize = fcsFlag === 0 ? (single ? 1 : 0) : [0, 2, 4, 8][fcsFlag]!;
  let p = pos + 5;
  let windowSize = 0;
  if (!single) {
    need('zstd', d, p, 1, `the window descriptor of ${f}`);
    const wd = d[p++]!;
    const exp = wd >>> 3;
    if (exp > 21) fail(`${f}: window size 2^${10 + exp} is too large`);
    const base = 2 ** (10 + exp);
    windowSize = base + (base / 8) * (wd & 7);
  }
  need('zstd', d, p, dictIdSize + fcsSize, `the header of ${f}`);
  let dictId = 0;
  for (let i = 0; i < dictIdSize; i++) dictId += d[p + i]! * 2 ** (8 * i);
  p += dictIdSize;
  if (dictId !== 0) fail(`${f}: needs dictionary ${dictId}; dictionaries are not supported`);
  let contentSize: number | undefined;
  if (fcsSize) {
    let v = 0;
    for (let i = 0; i < fcsSize; i++) v += d[p + i]! * 2 ** (8 * i);
    if (fcsSize === 2) v += 256;
    contentSize = v;
    p += fcsSize;
  }
  if (single) windowSize = contentSize!;
  if (contentSize !== undefined && contentSize > out.max - out.pos) {
    fail(`${f}: content size ${contentSize} exceeds the limit of ${out.max} bytes`);
  }
  const st: FrameState = { reps: [1, 4, 8], frameStart: out.pos, windowSize };
  const blockMax = Math.min(BLOCK_MAX, Math.max(windowSize, 1));
  let blockNo = 0;
  for (;;) {
    need('zstd', d, p, 3, `a block header of ${f}`);
    const bh = d[p]! | (d[p + 1]! << 8) | (d[p + 2]! << 16);
    p += 3;
    blockNo++;
    const where = `${f}, block ${blockNo}`;
    const last = bh & 1;
    const type = (bh >>> 1) & 3;
    const size = bh >>> 3;
    if (type === 3) fail(`${where}: reserved block type`);
    if (type === 1) {
      if (size > blockMax) fail(`${where}: RLE block of ${size} bytes exceeds the maximum ${blockMax}`);
      need('zstd', d, p, 1, `${where}`);
      out.ensure(size);
      out.buf.fill(d[p]!, out.pos, out.pos + size);
      out.pos += size;
      p += 1;
    } else {
      if (size > blockMax) fail(`${where}: block of ${size} bytes exceeds the maximum ${blockMax}`);
      need('zstd', d, p, size, `${where}`);
      if (type === 0) out.append(d.subarray(p, p + size));
      else decodeCompressedBlock(d, p, p + size, out, st, where);
      p += size;
    }
    if (last) break;
  }
  const produced = out.pos - st.frameStart;
  if (contentSize !== undefined && produced !== contentSize) {
    fail(`${f}: decoded ${produced} bytes but the frame header says ${contentSize}`);
  }
  if (checksum) {
    need('zstd', d, p, 4, `the content checksum of ${f}`);
    const got = xxh64Low32(out.buf, st.frameStart, out.pos);
    if (got !== u32le(d, p)) fail(`${f}: content checksum ${hex(got)} does not match ${hex(u32le(d, p))}`);
    p += 4;
  }
  return p;
}

function decodeCompressedBlock(d: Uint8Array, start: number, end: number, out: OutBuf, st: FrameState, where: string): void {
  // Literals section.
  let p = start;
  if (p >= end) fail(`${where}: empty compressed block`);
  const b0 = d[p]!;
  const ltype = b0 & 3;
  const sf = (b0 >>> 2) & 3;
  let regen: number;
  let lits: Uint8Array;
  if (ltype <= 1) {
    let hsize: number;
    if (sf === 0 || sf === 2) {
      regen = b0 >>> 3;
      hsize = 1;
    } else if (sf === 1) {
      if (p + 2 > end) fail(`${where}: literals header runs past the block`);
      regen = (b0 >>> 4) + (d[p + 1]! << 4);
      hsize = 2;
    } else {
      if (p + 3 > end) fail(`${where}: literals header runs past the block`);
      regen = (b0 >>> 4) + (d[p + 1]! << 4) + (d[p + 2]! << 12);
      hsize = 3;
    }
    p += hsize;
    if (regen > BLOCK_MAX) fail(`${where}: ${regen} literals exceed the block maximum`);
    if (ltype === 0) {
      if (p + regen > end) fail(`${where}: raw literals run past the end of the block`);
      lits = d.subarray(p, p + regen);
      p += regen;
    } else {
      if (p + 1 > end) fail(`${where}: RLE literals run past the end of the block`);
      lits = new Uint8Array(regen).fill(d[p]!);
      p += 1;
    }
  } else {
    const hsize = sf <= 1 ? 3 : sf === 2 ? 4 : 5;
    if (p + hsize > end) fail(`${where}: literals header runs past the block`);
    const h = (d[p]! | (d[p + 1]! << 8) | (d[p + 2]! << 16) | ((hsize > 3 ? d[p + 3]! : 0) << 24)) >>> 0;
    let csize: number;
    if (hsize === 3) {
      regen = (h >>> 4) & 0x3ff;
      csize = (h >>> 14) & 0x3ff;
    } else if (hsize === 4) {
      regen = (h >>> 4) & 0x3fff;
      csize = h >>> 18;
    } else {
      regen = (h >>> 4) & 0x3ffff;
      csize = (h >>> 22) + d[p + 4]! * 1024;
    }
    const streams = sf === 0 ? 1 : 4;
    p += hsize;
    if (regen > BLOCK_MAX) fail(`${where}: ${regen} literals exceed the block maximum`);
    if (p + csize > end) fail(`${where}: compressed literals run past the end of the block`);
    const cend = p + csize;
    let q = p;
    if (ltype === 2) {
      const [t, used] = readHuf(d, q, cend, `${where}: literals`);
      st.huf = t;
      q += used;
    } else if (!st.huf) {
      fail(`${where}: treeless literals without a previous Huffman table`);
    }
    const t = st.huf!;
    lits = new Uint8Array(regen);
    if (streams === 1) {
      hufStream(d, q, cend, t, lits, 0, regen, `${where}: literals`);
    } else {
      if (q + 6 > cend) fail(`${where}: literals jump table runs past the end`);
      const s1 = d[q]! | (d[q + 1]! << 8);
      const s2 = d[q + 2]! | (d[q + 3]! << 8);
      const s3 = d[q + 4]! | (d[q + 5]! << 8);
      q += 6;
      const per = Math.floor((regen + 3) / 4);
      if (q + s1 + s2 + s3 > cend || per * 3 > regen) fail(`${where}: corrupt literals jump table`);
      hufStream(d, q, q + s1, t, lits, 0, per, `${where}: literals stream 1`);
      hufStream(d, q + s1, q + s1 + s2, t, lits, per, per, `${where}: literals stream 2`);
      hufStream(d, q + s1 + s2, q + s1 + s2 + s3, t, lits, 2 * per, per, `${where}: literals stream 3`);
      hufStream(d, q + s1 + s2 + s3, cend, t, lits, 3 * per, regen - 3 * per, `${where}: literals stream 4`);
    }
    p = cend;
  }

  // Sequences section.
  if (p >= end) fail(`${where}: missing sequences section`);
  let nseq = d[p++]!;
  if (nseq >= 128) {
    if (nseq < 255) {
      if (p >= end) fail(`${where}: sequences header runs past the block`);
      nseq = ((nseq - 128) << 8) + d[p++]!;
    } else {
      if (p + 2 > end) fail(`${where}: sequences header runs past the block`);
      nseq = d[p]! + (d[p + 1]! << 8) + 0x7f00;
      p += 2;
    }
  }
  let litPos = 0;
  if (nseq === 0) {
    if (p !== end) fail(`${where}: ${end - p} bytes after an empty sequences section`);
    out.append(lits);
    return;
  }
  if (p >= end) fail(`${where}: sequences header runs past the block`);
  const modes = d[p++]!;
  if (modes & 3) fail(`${where}: reserved bits set in the sequence compression modes`);
  const pick = (mode: number, predef: FseTable, prev: FseTable | undefined, maxSym: number, maxLog: number, name: string): FseTable => {
    switch (mode) {
      case 0: return predef;
      case 1: {
        if (p >= end) fail(`${where}: ${name} RLE symbol runs past the block`);
        const s = d[p++]!;
        if (s > maxSym) fail(`${where}: ${name} RLE symbol ${s} out of range`);
        return rleTable(s);
      }
      case 2: {
        const [t, used] = readFse(d, p, end, maxSym, maxLog, `${where}: ${name} table`);
        p += used;
        return t;
      }
      default:
        if (!prev) fail(`${where}: ${name} repeat mode without a previous table`);
        return prev;
    }
  };
  st.ll = pick(modes >>> 6, LL_PREDEF, st.ll, 35, 9, 'literal length');
  st.of = pick((modes >>> 4) & 3, OF_PREDEF, st.of, 31, 8, 'offset');
  st.ml = pick((modes >>> 2) & 3, ML_PREDEF, st.ml, 52, 9, 'match length');
  const ll = st.ll, of = st.of, ml = st.ml;
  const bits = new BackBits(d, p, end, `${where}: sequences`);
  let sLL = bits.read(ll.log);
  let sOF = bits.read(of.log);
  let sML = bits.read(ml.log);
  const reps = st.reps;
  for (let i = 0; i < nseq; i++) {
    const ofCode = of.symbol[sOF]!;
    const mlCode = ml.symbol[sML]!;
    const llCode = ll.symbol[sLL]!;
    if (ofCode > 31) fail(`${where}: offset code ${ofCode} out of range`);
    const ofValue = 2 ** ofCode + bits.readLong(ofCode);
    const mlen = ML_BASE[mlCode]! + bits.read(ML_BITS[mlCode]!);
    const llen = LL_BASE[llCode]! + bits.read(LL_BITS[llCode]!);
    let offset: number;
    if (ofValue > 3) {
      offset = ofValue - 3;
      reps[2] = reps[1];
      reps[1] = reps[0];
      reps[0] = offset;
    } else {
      const idx = ofValue - 1 + (llen === 0 ? 1 : 0);
      if (idx === 0) {
        offset = reps[0];
      } else {
        offset = idx === 3 ? reps[0] - 1 : reps[idx]!;
        if (idx !== 1) reps[2] = reps[1];
        reps[1] = reps[0];
        reps[0] = offset;
      }
    }
    if (i !== nseq - 1) {
      sLL = ll.base[sLL]! + bits.read(ll.nbBits[sLL]!);
      sML = ml.base[sML]! + bits.read(ml.nbBits[sML]!);
      sOF = of.base[sOF]! + bits.read(of.nbBits[sOF]!);
    }
    if (bits.left < 0) fail(`${where}: sequences bitstream overrun at sequence ${i + 1} of ${nseq}`);
    // Execute.
    if (llen > lits.length - litPos) fail(`${where}: sequence ${i + 1} uses more literals than decoded`);
    out.ensure(llen + mlen);
    const buf = out.buf;
    buf.set(lits.subarray(litPos, litPos + llen), out.pos);
    out.pos += llen;
    litPos += llen;
    if (offset === 0 || offset > out.pos - st.frameStart) {
      fail(`${where}: sequence ${i + 1}: offset ${offset} reaches before the start of the frame`);
    }
    let src = out.pos - offset;
    let dst = out.pos;
    const stop = dst + mlen;
    if (offset >= mlen) buf.copyWithin(dst, src, src + mlen);
    else while (dst < stop) buf[dst++] = buf[src++]!;
    out.pos = stop;
  }
  if (bits.left !== 0) fail(`${where}: sequences bitstream not fully consumed (${bits.left} bits left)`);
  out.append(lits.subarray(litPos));
}
