// bzip2 streams (Linux's CONFIG_KERNEL_BZIP2): Huffman + MTF + RLE2 decoding, the inverse
// Burrows-Wheeler transform and the final run-length stage, with the per-block and combined
// CRCs checked. Randomised blocks (only written by bzip2 before 0.9.5) are rejected.

import { KernelImageError, hex } from '../image-error.js';
import { crc32be, OutBuf } from './util.js';

const MAX_GROUPS = 6;
const MAX_ALPHA = 258;
const MAX_CODE_LEN = 20;
const MAX_SELECTORS = 18002;
const GROUP_SIZE = 50;

export function isBzip2Start(d: Uint8Array, pos: number): boolean {
  return pos + 4 <= d.length && d[pos] === 0x42 && d[pos + 1] === 0x5a && d[pos + 2] === 0x68 &&
    d[pos + 3]! >= 0x31 && d[pos + 3]! <= 0x39;
}

function fail(msg: string): never {
  throw new KernelImageError('bzip2', msg);
}

class BitReader {
  private bitBuf = 0;
  private bitCount = 0;
  constructor(readonly d: Uint8Array, public pos: number) {}

  bits(n: number): number {
    // n <= 24
    while (this.bitCount < n) {
      if (this.pos >= this.d.length) {
        fail(`stream is truncated: input ends at offset ${hex(this.d.length)} inside a block`);
      }
      this.bitBuf = ((this.bitBuf << 8) | this.d[this.pos++]!) >>> 0;
      this.bitCount += 8;
    }
    this.bitCount -= n;
    return (this.bitBuf >>> this.bitCount) & ((1 << n) - 1);
  }

  bit(): number {
    return this.bits(1);
  }

  /** Offset of the first byte not (even partly) consumed. */
  bytePos(): number {
    return this.pos;
  }
}

interface HuffTable {
  minLen: number;
  limit: Int32Array; // max code value of each length (-1 if none)
  base: Int32Array; // index into perm of the first code of each length, minus its code value
  perm: Uint16Array;
}

function buildTable(lens: Uint8Array, alpha: number): HuffTable {
  let minLen = 32;
  let maxLen = 0;
  for (let i = 0; i < alpha; i++) {
    minLen = Math.min(minLen, lens[i]!);
    maxLen = Math.max(maxLen, lens[i]!);
  }
  const perm = new Uint16Array(alpha);
  let pp = 0;
  for (let l = minLen; l <= maxLen; l++) for (let i = 0; i < alpha; i++) if (lens[i] === l) perm[pp++] = i;
  const limit = new Int32Array(MAX_CODE_LEN + 2).fill(-1);
  const base = new Int32Array(MAX_CODE_LEN + 2);
  let code = 0;
  let idx = 0;
  for (let l = minLen; l <= maxLen; l++) {
    let count = 0;
    for (let i = 0; i < alpha; i++) if (lens[i] === l) count++;
    base[l] = idx - code;
    code += count;
    idx += count;
    limit[l] = code - 1;
    if (code > 1 << l) fail('invalid Huffman code lengths (oversubscribed)');
    code <<= 1;
  }
  return { minLen, limit, base, perm };
}

/** Decode one bzip2 stream at `pos`; returns the offset just past it (byte-aligned). */
export function decodeBzip2Stream(d: Uint8Array, pos: number, out: OutBuf, streamNo = 1): number {
  const s = `stream ${streamNo}`;
  if (!isBzip2Start(d, pos)) fail(`${s} at input offset ${hex(pos)}: bad magic`);
  const blockMax = (d[pos + 3]! - 0x30) * 100000;
  const br = new BitReader(d, pos + 4);
  let combined = 0;
  const tt = new Uint32Array(blockMax);
  let blockNo = 0;
  for (;;) {
    const m1 = br.bits(24);
    const m2 = br.bits(24);
    const want = br.bits(16) * 65536 + br.bits(16);
    if (m1 === 0x177245 && m2 === 0x385090) {
      if (want !== combined) fail(`${s}: combined CRC ${hex(combined)} does not match the stream's ${hex(want)}`);
      return br.bytePos();
    }
    blockNo++;
    const where = `${s}, block ${blockNo}`;
    if (m1 !== 0x314159 || m2 !== 0x265359) fail(`${where}: bad block magic near input offset ${hex(br.pos)}`);
    if (br.bit()) fail(`${where}: randomised blocks (bzip2 < 0.9.5) are not supported`);
    const origPtr = br.bits(24);
    // Symbol map.
    const used = br.bits(16);
    const seqToUnseq = new Uint8Array(256);
    let nInUse = 0;
    for (let i = 0; i < 16; i++) {
      if (!(used & (0x8000 >>> i))) continue;
      const bitsHere = br.bits(16);
      for (let j = 0; j < 16; j++) if (bitsHere & (0x8000 >>> j)) seqToUnseq[nInUse++] = i * 16 + j;
    }
    if (nInUse === 0) fail(`${where}: no symbols in use`);
    const alpha = nInUse + 2;
    const nGroups = br.bits(3);
    if (nGroups < 2 || nGroups > MAX_GROUPS) fail(`${where}: invalid number of Huffman groups ${nGroups}`);
    const nSelectors = br.bits(15);
    if (nSelectors < 1) fail(`${where}: no selectors`);
    const mtfGroups = [0, 1, 2, 3, 4, 5].slice(0, nGroups);
    const selectors = new Uint8Array(Math.min(nSelectors, MAX_SELECTORS));
    for (let i = 0; i < nSelectors; i++) {
      let j = 0;
      while (br.bit()) {
        j++;
        if (j >= nGroups) fail(`${where}: invalid selector`);
      }
      const v = mtfGroups[j]!;
      mtfGroups.splice(j, 1);
      mtfGroups.unshift(v);
      if (i < MAX_SELECTORS) selectors[i] = v;
    }
    const tables: HuffTable[] = [];
    for (let g = 0; g < nGroups; g++) {
      const lens = new Uint8Array(alpha);
      let cur = br.bits(5);
      for (let i = 0; i < alpha; i++) {
        for (;;) {
          if (cur < 1 || cur > MAX_CODE_LEN) fail(`${where}: invalid Huffman code length ${cur}`);
          if (!br.bit()) break;
          cur += br.bit() ? -1 : 1;
        }
        lens[i] = cur;
      }
      tables.push(buildTable(lens, alpha));
    }
    // Huffman + MTF + RUNA/RUNB decoding into tt.
    const mtf = new Uint8Array(256);
    for (let i = 0; i < 256; i++) mtf[i] = i;
    const counts = new Int32Array(256);
    const eob = alpha - 1;
    let n = 0;
    let groupLeft = 0;
    let selIdx = 0;
    let table = tables[0]!;
    let runLen = 0;
    let runBit = 1;
    for (;;) {
      if (groupLeft === 0) {
        if (selIdx >= selectors.length) fail(`${where}: ran out of selectors`);
        table = tables[selectors[selIdx++]!]!;
        groupLeft = GROUP_SIZE;
      }
      groupLeft--;
      let len = table.minLen;
      let code = br.bits(len);
      while (len <= MAX_CODE_LEN && code > table.limit[len]!) {
        len++;
        code = (code << 1) | br.bit();
      }
      if (len > MAX_CODE_LEN) fail(`${where}: invalid Huffman code`);
      const idx = table.base[len]! + code;
      if (idx < 0 || idx >= alpha) fail(`${where}: invalid Huffman code`);
      const sym = table.perm[idx]!;
      if (sym <= 1) {
        // RUNA (0) / RUNB (1): bijective base-2 digits of a run of the front symbol.
        runLen += (sym + 1) * runBit;
        runBit *= 2;
        if (runLen > blockMax) fail(`${where}: run exceeds the block size`);
        continue;
      }
      if (runLen > 0) {
        if (n + runLen > blockMax) fail(`${where}: data exceeds the ${blockMax}-byte block size`);
        const b = seqToUnseq[mtf[0]!]!;
        counts[b] += runLen;
        tt.fill(b, n, n + runLen);
        n += runLen;
        runLen = 0;
        runBit = 1;
      }
      if (sym === eob) break;
      if (n >= blockMax) fail(`${where}: data exceeds the ${blockMax}-byte block size`);
      const k = sym - 1;
      const v = mtf[k]!;
      mtf.copyWithin(1, 0, k);
      mtf[0] = v;
      const b = seqToUnseq[v]!;
      counts[b]++;
      tt[n++] = b;
    }
    if (origPtr >= n) fail(`${where}: origPtr ${origPtr} is outside the block (${n} bytes)`);
    // Inverse BWT: link each position to the next.
    let sum = 0;
    const cftab = new Int32Array(256);
    for (let i = 0; i < 256; i++) {
      cftab[i] = sum;
      sum += counts[i]!;
    }
    for (let i = 0; i < n; i++) {
      const b = tt[i]! & 0xff;
      tt[cftab[b]!] |= i << 8;
      cftab[b]++;
    }
    // Undo the initial run-length encoding while walking the chain.
    const blockStart = out.pos;
    let tpos = tt[origPtr]! >>> 8;
    let last = -1;
    let run = 0;
    for (let i = 0; i < n; i++) {
      const e = tt[tpos]!;
      const b = e & 0xff;
      tpos = e >>> 8;
      if (run === 4) {
        if (b > 0) {
          out.ensure(b);
          out.buf.fill(last, out.pos, out.pos + b);
          out.pos += b;
        }
        run = 0;
        last = -1;
        continue;
      }
      if (b === last) run++;
      else {
        last = b;
        run = 1;
      }
      out.push(b);
    }
    const crc = ~crc32be(out.buf, blockStart, out.pos, 0xffffffff) >>> 0;
    if (crc !== want) fail(`${where}: CRC ${hex(crc)} does not match the block's ${hex(want)}`);
    combined = (((combined << 1) | (combined >>> 31)) ^ crc) >>> 0;
    tt.fill(0, 0, n);
  }
}
