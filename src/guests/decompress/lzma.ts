// The LZMA decoder (range coder + the LZMA literal/match model) and the two containers built
// directly on it: LZMA2 chunks (inside xz blocks) and the legacy ".lzma" (LZMA_Alone) format
// that `lzma -9` writes and Linux's CONFIG_KERNEL_LZMA uses.
//
// The whole output is the dictionary: decoders append to an OutBuf and copy matches out of
// it, so there is no circular window. A dictionary reset just moves `dictStart`.

import { KernelImageError, hex, type ImageErrorSource } from '../image-error.js';
import { need, OutBuf, u32le, u64le } from './util.js';

const PROB_INIT = 1024;
const LEN_PROBS = 2 + 16 * 8 + 16 * 8 + 256;
// Offsets inside a length decoder's probability block.
const LEN_CHOICE = 0;
const LEN_CHOICE2 = 1;
const LEN_LOW = 2;
const LEN_MID = 2 + 128;
const LEN_HIGH = 2 + 256;

const EOS_DISTANCE = 0xffffffff;

export class LzmaDecoder {
  // Range decoder.
  private inp: Uint8Array = new Uint8Array(0);
  ip = 0;
  private iend = 0;
  private range = 0;
  private code = 0;

  // Model.
  private lc = 3;
  private lp = 0;
  private pb = 2;
  private literal = new Uint16Array(0x300 << 3);
  private isMatch = new Uint16Array(192);
  private isRep = new Uint16Array(12);
  private isRepG0 = new Uint16Array(12);
  private isRepG1 = new Uint16Array(12);
  private isRepG2 = new Uint16Array(12);
  private isRep0Long = new Uint16Array(192);
  private posSlot = new Uint16Array(256);
  private specPos = new Uint16Array(115);
  private align = new Uint16Array(16);
  private lenDec = new Uint16Array(LEN_PROBS);
  private repLenDec = new Uint16Array(LEN_PROBS);

  private state = 0;
  private rep0 = 0;
  private rep1 = 0;
  private rep2 = 0;
  private rep3 = 0;

  /** Output offset of the last dictionary reset: matches may not reach before it. */
  dictStart = 0;

  constructor(
    readonly out: OutBuf,
    readonly source: ImageErrorSource,
    public dictSize: number,
  ) {}

  private fail(msg: string): never {
    throw new KernelImageError(this.source, msg);
  }

  /** Set lc/lp/pb (validated by the caller) and reset the state. */
  setProps(lc: number, lp: number, pb: number): void {
    this.lc = lc;
    this.lp = lp;
    this.pb = pb;
    const n = 0x300 << (lc + lp);
    if (this.literal.length !== n) this.literal = new Uint16Array(n);
    this.resetState();
  }

  resetState(): void {
    for (const a of [this.literal, this.isMatch, this.isRep, this.isRepG0, this.isRepG1, this.isRepG2,
      this.isRep0Long, this.posSlot, this.specPos, this.align, this.lenDec, this.repLenDec]) a.fill(PROB_INIT);
    this.state = 0;
    this.rep0 = this.rep1 = this.rep2 = this.rep3 = 0;
  }

  resetDict(): void {
    this.dictStart = this.out.pos;
  }

  /** Start the range decoder on input[pos..end). */
  initRc(inp: Uint8Array, pos: number, end: number): void {
    if (end - pos < 5) {
      if (end >= inp.length) this.fail(`stream is truncated: range coder data at input offset ${hex(pos)} is shorter than 5 bytes`);
      this.fail(`range coder data at input offset ${hex(pos)} is shorter than 5 bytes`);
    }
    if (inp[pos] !== 0) this.fail(`range coder data at input offset ${hex(pos)} does not start with a zero byte`);
    this.inp = inp;
    this.iend = end;
    this.code = ((inp[pos + 1]! << 24) | (inp[pos + 2]! << 16) | (inp[pos + 3]! << 8) | inp[pos + 4]!) >>> 0;
    this.range = 0xffffffff;
    this.ip = pos + 5;
    if (this.code === this.range) this.fail(`range coder data at input offset ${hex(pos)} is corrupt`);
  }

  /** True when the range decoder is in the state an encoder flush leaves it in. */
  rcFinished(): boolean {
    return this.code === 0;
  }

  private overrun(): never {
    if (this.iend >= this.inp.length) {
      this.fail(`stream is truncated: compressed data ends at input offset ${hex(this.iend)} in the middle of the LZMA data`);
    }
    this.fail(`corrupt LZMA data: the decoder ran past the end of its chunk at input offset ${hex(this.iend)}`);
  }

  private bit(p: Uint16Array, i: number): number {
    const prob = p[i]!;
    const bound = (this.range >>> 11) * prob;
    let b: number;
    if (this.code < bound) {
      this.range = bound;
      p[i] = prob + ((2048 - prob) >>> 5);
      b = 0;
    } else {
      this.range -= bound;
      this.code -= bound;
      p[i] = prob - (prob >>> 5);
      b = 1;
    }
    if (this.range < 0x1000000) {
      if (this.ip >= this.iend) this.overrun();
      this.range *= 256;
      this.code = this.code * 256 + this.inp[this.ip++]!;
    }
    return b;
  }

  private bitTree(p: Uint16Array, base: number, bits: number): number {
    let m = 1;
    for (let i = 0; i < bits; i++) m = (m << 1) | this.bit(p, base + m);
    return m - (1 << bits);
  }

  private bitTreeReverse(p: Uint16Array, base: number, bits: number): number {
    let m = 1;
    let sym = 0;
    for (let i = 0; i < bits; i++) {
      const b = this.bit(p, base + m);
      m = (m << 1) | b;
      sym |= b << i;
    }
    return sym;
  }

  private direct(bits: number): number {
    let r = 0;
    for (let i = 0; i < bits; i++) {
      this.range = this.range >>> 1;
      let b = 0;
      if (this.code >= this.range) {
        this.code -= this.range;
        b = 1;
      }
      r = r * 2 + b;
      if (this.range < 0x1000000) {
        if (this.ip >= this.iend) this.overrun();
        this.range *= 256;
        this.code = this.code * 256 + this.inp[this.ip++]!;
      }
    }
    return r;
  }

  private len(p: Uint16Array, posState: number): number {
    if (this.bit(p, LEN_CHOICE) === 0) return 2 + this.bitTree(p, LEN_LOW + posState * 8, 3);
    if (this.bit(p, LEN_CHOICE2) === 0) return 10 + this.bitTree(p, LEN_MID + posState * 8, 3);
    return 18 + this.bitTree(p, LEN_HIGH, 8);
  }

  private distance(len: number): number {
    const lenState = len < 6 ? len - 2 : 3;
    const slot = this.bitTree(this.posSlot, lenState * 64, 6);
    if (slot < 4) return slot;
    const nbits = (slot >>> 1) - 1;
    let dist = (2 | (slot & 1)) * 2 ** nbits;
    if (slot < 14) {
      dist += this.bitTreeReverse(this.specPos, dist - slot - 1, nbits);
    } else {
      dist += this.direct(nbits - 4) * 16;
      dist += this.bitTreeReverse(this.align, 0, 4);
    }
    return dist;
  }

  /**
   * Decode until the output reaches `outLimit` (an absolute OutBuf position). Returns true if
   * an end-of-stream marker ended the data first (only accepted when `allowEos`). With
   * `hardLimit` a match may not run past `outLimit`; without it (streams of unknown size,
   * decoded in steps) it may, by at most 273 bytes.
   */
  decode(outLimit: number, allowEos: boolean, hardLimit = true): boolean {
    const out = this.out;
    out.ensure(outLimit - out.pos + (hardLimit ? 0 : 273));
    const buf = out.buf;
    let pos = out.pos;
    const dictStart = this.dictStart;
    const dictSize = this.dictSize;
    const pbMask = (1 << this.pb) - 1;
    const lpMask = (1 << this.lp) - 1;
    const lc = this.lc;
    const literal = this.literal;
    let state = this.state;
    try {
      while (pos < outLimit) {
        const rel = pos - dictStart;
        const posState = rel & pbMask;
        if (this.bit(this.isMatch, (state << 4) + posState) === 0) {
          const prev = rel > 0 ? buf[pos - 1]! : 0;
          const base = 0x300 * (((rel & lpMask) << lc) + (prev >>> (8 - lc)));
          let sym = 1;
          if (state >= 7) {
            let matchByte = buf[pos - this.rep0 - 1]!;
            do {
              const matchBit = (matchByte >>> 7) & 1;
              matchByte <<= 1;
              const b = this.bit(literal, base + 0x100 + (matchBit << 8) + sym);
              sym = (sym << 1) | b;
              if (matchBit !== b) break;
            } while (sym < 0x100);
          }
          while (sym < 0x100) sym = (sym << 1) | this.bit(literal, base + sym);
          buf[pos++] = sym & 0xff;
          state = state < 4 ? 0 : state < 10 ? state - 3 : state - 6;
          continue;
        }
        let len: number;
        if (this.bit(this.isRep, state) === 0) {
          len = this.len(this.lenDec, posState);
          state = state < 7 ? 7 : 10;
          const dist = this.distance(len);
          if (dist === EOS_DISTANCE) {
            if (!allowEos) this.fail(`unexpected end-of-stream marker at output offset ${hex(pos)}`);
            this.state = state;
            out.pos = pos;
            return true;
          }
          this.rep3 = this.rep2;
          this.rep2 = this.rep1;
          this.rep1 = this.rep0;
          this.rep0 = dist;
        } else {
          if (this.bit(this.isRepG0, state) === 0) {
            if (this.bit(this.isRep0Long, (state << 4) + posState) === 0) {
              if (this.rep0 >= rel) this.fail(`match distance ${this.rep0 + 1} reaches before the start of the data at output offset ${hex(pos)}`);
              buf[pos] = buf[pos - this.rep0 - 1]!;
              pos++;
              state = state < 7 ? 9 : 11;
              continue;
            }
          } else {
            let dist: number;
            if (this.bit(this.isRepG1, state) === 0) {
              dist = this.rep1;
            } else {
              if (this.bit(this.isRepG2, state) === 0) {
                dist = this.rep2;
              } else {
                dist = this.rep3;
                this.rep3 = this.rep2;
              }
              this.rep2 = this.rep1;
            }
            this.rep1 = this.rep0;
            this.rep0 = dist;
          }
          len = this.len(this.repLenDec, posState);
          state = state < 7 ? 8 : 11;
        }
        const d = this.rep0 + 1;
        if (d > rel || d > dictSize) {
          this.fail(`match distance ${d} reaches before the start of the ${d > dictSize ? 'dictionary' : 'data'} at output offset ${hex(pos)}`);
        }
        if (hardLimit && len > outLimit - pos) {
          this.fail(`a match of ${len} bytes at output offset ${hex(pos)} runs past the end of the data (${hex(outLimit)})`);
        }
        let src = pos - d;
        const end = pos + len;
        if (d >= len) {
          buf.copyWithin(pos, src, src + len);
          pos = end;
        } else {
          while (pos < end) buf[pos++] = buf[src++]!;
        }
      }
    } finally {
      out.pos = pos;
    }
    this.state = state;
    return false;
  }
}

/** Split an lc/lp/pb properties byte; throws on values above 224. */
export function splitProps(source: ImageErrorSource, b: number, where: string): [number, number, number] {
  if (b >= 9 * 5 * 5) throw new KernelImageError(source, `${where}: invalid LZMA properties byte ${hex(b)}`);
  const lc = b % 9;
  const rest = (b / 9) | 0;
  return [lc, rest % 5, (rest / 5) | 0];
}

/** LZMA2 dictionary size from its one-byte property. */
export function lzma2DictSize(b: number): number {
  if (b > 40) throw new KernelImageError('xz', `invalid LZMA2 dictionary size property ${b}`);
  if (b === 40) return 0xffffffff;
  return (2 | (b & 1)) * 2 ** ((b >>> 1) + 11);
}

/**
 * Decode LZMA2 data starting at `pos` (ending no later than `end`) into `out`. Returns the
 * offset just past the terminating 0x00 control byte.
 */
export function decodeLzma2(inp: Uint8Array, pos: number, end: number, out: OutBuf, dictSize: number, where: string): number {
  const dec = new LzmaDecoder(out, 'xz', dictSize);
  let needDictReset = true;
  let needProps = true;
  let needStateReset = false;
  for (;;) {
    if (pos >= end) {
      throw new KernelImageError('xz', `stream is truncated: ${where}: LZMA2 data ends at input offset ${hex(pos)} without an end marker`);
    }
    const ctl = inp[pos]!;
    const at = pos;
    if (ctl === 0) return pos + 1;
    if (ctl === 1 || ctl === 2) {
      need('xz', inp, pos, 3, `${where}: LZMA2 uncompressed chunk header`);
      if (pos + 3 > end) throw new KernelImageError('xz', `${where}: LZMA2 chunk header at input offset ${hex(at)} runs past the end of the block`);
      const size = ((inp[pos + 1]! << 8) | inp[pos + 2]!) + 1;
      pos += 3;
      if (ctl === 1) {
        dec.resetDict();
        needDictReset = false;
      } else if (needDictReset) {
        throw new KernelImageError('xz', `${where}: the first LZMA2 chunk (input offset ${hex(at)}) does not reset the dictionary`);
      }
      if (pos + size > end) {
        if (end >= inp.length) need('xz', inp, pos, size, `${where}: LZMA2 uncompressed chunk`);
        throw new KernelImageError('xz', `${where}: LZMA2 uncompressed chunk at input offset ${hex(at)} runs past the end of the block`);
      }
      out.append(inp.subarray(pos, pos + size));
      pos += size;
      needStateReset = true;
      continue;
    }
    if (ctl < 0x80) throw new KernelImageError('xz', `${where}: invalid LZMA2 control byte ${hex(ctl)} at input offset ${hex(at)}`);
    need('xz', inp, pos, 5, `${where}: LZMA2 chunk header`);
    const reset = (ctl >>> 5) & 3;
    const unpacked = ((ctl & 0x1f) * 65536 + (inp[pos + 1]! << 8) + inp[pos + 2]!) + 1;
    const packed = ((inp[pos + 3]! << 8) | inp[pos + 4]!) + 1;
    pos += 5;
    if (reset === 3) {
      dec.resetDict();
      needDictReset = false;
    } else if (needDictReset) {
      throw new KernelImageError('xz', `${where}: the first LZMA2 chunk (input offset ${hex(at)}) does not reset the dictionary`);
    }
    if (reset >= 2) {
      need('xz', inp, pos, 1, `${where}: LZMA2 properties byte`);
      const [lc, lp, pb] = splitProps('xz', inp[pos]!, `${where}: LZMA2 chunk at input offset ${hex(at)}`);
      if (lc + lp > 4) throw new KernelImageError('xz', `${where}: LZMA2 chunk at input offset ${hex(at)} has lc + lp = ${lc + lp} > 4`);
      dec.setProps(lc, lp, pb);
      pos++;
      needProps = false;
    } else if (needProps) {
      throw new KernelImageError('xz', `${where}: LZMA2 chunk at input offset ${hex(at)} has no properties and none were set before`);
    } else if (reset === 1) {
      dec.resetState();
    } else if (needStateReset) {
      throw new KernelImageError('xz', `${where}: LZMA2 chunk at input offset ${hex(at)} continues the state after an uncompressed chunk`);
    }
    needStateReset = false;
    const cend = pos + packed;
    if (cend > end) {
      if (end >= inp.length) need('xz', inp, pos, packed, `${where}: LZMA2 chunk`);
      throw new KernelImageError('xz', `${where}: LZMA2 chunk at input offset ${hex(at)} runs past the end of the block`);
    }
    dec.initRc(inp, pos, cend);
    dec.decode(out.pos + unpacked, false);
    if (dec.ip !== cend || !dec.rcFinished()) {
      throw new KernelImageError('xz', `${where}: LZMA2 chunk at input offset ${hex(at)} is corrupt (its compressed size does not match its data)`);
    }
    pos = cend;
  }
}

export function isLzmaAloneStart(d: Uint8Array, pos: number): boolean {
  // Linux and Xen recognise ".lzma" by "5d 00": lc=3 lp=0 pb=2 and a dictionary size whose
  // low byte is zero. We also check that the header is otherwise plausible.
  if (pos + 13 > d.length || d[pos] !== 0x5d || d[pos + 1] !== 0x00) return false;
  const hi = u32le(d, pos + 9);
  return hi === 0xffffffff || hi < 0x10000;
}

/** Decode one legacy .lzma stream at `pos`; returns the offset just past its data. */
export function decodeLzmaAlone(inp: Uint8Array, pos: number, out: OutBuf): number {
  need('lzma', inp, pos, 13, 'the .lzma header');
  const [lc, lp, pb] = splitProps('lzma', inp[pos]!, `header at input offset ${hex(pos)}`);
  const dictSize = Math.max(4096, u32le(inp, pos + 1));
  const size = u64le(inp, pos + 5);
  const unknown = size === 0xffffffffffffffffn;
  if (!unknown && size > BigInt(out.max - out.pos)) {
    throw new KernelImageError('lzma', `header says the data is ${size} bytes, more than the limit of ${out.max} bytes`);
  }
  const dec = new LzmaDecoder(out, 'lzma', dictSize);
  dec.setProps(lc, lp, pb);
  dec.resetDict();
  dec.initRc(inp, pos + 13, inp.length);
  if (unknown) {
    // Decode in steps until the end marker; the output grows as needed.
    for (;;) {
      const room = out.max - out.pos - 273;
      if (room <= 0) throw new KernelImageError('lzma', `decompressed data exceeds the limit of ${out.max} bytes (${hex(out.max)})`);
      if (dec.decode(out.pos + Math.min(1 << 20, room), true, false)) break;
    }
  } else {
    const target = out.pos + Number(size);
    const eos = dec.decode(target, true);
    if (eos && out.pos !== target) {
      throw new KernelImageError('lzma', `end marker after ${out.pos - dec.dictStart} bytes but the header says ${size}`);
    }
  }
  if (!dec.rcFinished()) throw new KernelImageError('lzma', `corrupt data: the range coder did not finish cleanly (input offset ${hex(dec.ip)})`);
  return dec.ip;
}
