// XXH64 (seed 0) on 32-bit halves, for zstd's content checksum (its low 32 bits).

const P1H = 0x9e3779b1, P1L = 0x85ebca87;
const P2H = 0xc2b2ae3d, P2L = 0x27d4eb4f;
const P3H = 0x165667b1, P3L = 0x9e3779f9;
const P4H = 0x85ebca77, P4L = 0xc2b2ae63;
const P5H = 0x27d4eb2f, P5L = 0x165667c5;

// A 64-bit value as [hi, lo] uint32 in a scratch register file.
let rh = 0;
let rl = 0;

function mul(ah: number, al: number, bh: number, bl: number): void {
  const a0 = al & 0xffff, a1 = al >>> 16, b0 = bl & 0xffff, b1 = bl >>> 16;
  const p00 = a0 * b0, p01 = a0 * b1, p10 = a1 * b0, p11 = a1 * b1;
  const mid = (p00 >>> 16) + (p01 & 0xffff) + (p10 & 0xffff);
  rl = (((mid & 0xffff) << 16) | (p00 & 0xffff)) >>> 0;
  rh = (p11 + (p01 >>> 16) + (p10 >>> 16) + Math.floor(mid / 65536) + Math.imul(ah, bl) + Math.imul(al, bh)) >>> 0;
}

function add(ah: number, al: number, bh: number, bl: number): void {
  const lo = al + bl;
  rl = lo >>> 0;
  rh = (ah + bh + (lo > 0xffffffff ? 1 : 0)) >>> 0;
}

function rotl(h: number, l: number, r: number): void {
  if (r >= 32) {
    const t = h;
    h = l;
    l = t;
    r -= 32;
  }
  if (r === 0) {
    rh = h >>> 0;
    rl = l >>> 0;
    return;
  }
  rh = ((h << r) | (l >>> (32 - r))) >>> 0;
  rl = ((l << r) | (h >>> (32 - r))) >>> 0;
}

/** acc = rotl(acc + input * P2, 31) * P1 */
function round(accH: number, accL: number, inH: number, inL: number): void {
  mul(inH, inL, P2H, P2L);
  add(accH, accL, rh, rl);
  rotl(rh, rl, 31);
  mul(rh, rl, P1H, P1L);
}

function u32(d: Uint8Array, i: number): number {
  return (d[i]! | (d[i + 1]! << 8) | (d[i + 2]! << 16) | (d[i + 3]! << 24)) >>> 0;
}

/** The low 32 bits of XXH64(data[start..end), seed 0). */
export function xxh64Low32(d: Uint8Array, start: number, end: number): number {
  let i = start;
  const len = end - start;
  let hH: number, hL: number;
  if (len >= 32) {
    add(P1H, P1L, P2H, P2L);
    let v1h = rh, v1l = rl;
    let v2h = P2H, v2l = P2L;
    let v3h = 0, v3l = 0;
    // 0 - P1
    let v4h = (~P1H) >>> 0, v4l = ((~P1L) + 1) >>> 0;
    if (v4l === 0) v4h = (v4h + 1) >>> 0;
    const limit = end - 32;
    while (i <= limit) {
      round(v1h, v1l, u32(d, i + 4), u32(d, i)); v1h = rh; v1l = rl;
      round(v2h, v2l, u32(d, i + 12), u32(d, i + 8)); v2h = rh; v2l = rl;
      round(v3h, v3l, u32(d, i + 20), u32(d, i + 16)); v3h = rh; v3l = rl;
      round(v4h, v4l, u32(d, i + 28), u32(d, i + 24)); v4h = rh; v4l = rl;
      i += 32;
    }
    rotl(v1h, v1l, 1); let ah = rh, al = rl;
    rotl(v2h, v2l, 7); add(ah, al, rh, rl); ah = rh; al = rl;
    rotl(v3h, v3l, 12); add(ah, al, rh, rl); ah = rh; al = rl;
    rotl(v4h, v4l, 18); add(ah, al, rh, rl); hH = rh; hL = rl;
    for (const [vh, vl] of [[v1h, v1l], [v2h, v2l], [v3h, v3l], [v4h, v4l]] as const) {
      round(0, 0, vh, vl);
      hH = (hH ^ rh) >>> 0; hL = (hL ^ rl) >>> 0;
      mul(hH, hL, P1H, P1L);
      add(rh, rl, P4H, P4L);
      hH = rh; hL = rl;
    }
  } else {
    hH = P5H; hL = P5L;
  }
  add(hH, hL, Math.floor(len / 0x100000000), len >>> 0);
  hH = rh; hL = rl;
  while (i + 8 <= end) {
    round(0, 0, u32(d, i + 4), u32(d, i));
    hH = (hH ^ rh) >>> 0; hL = (hL ^ rl) >>> 0;
    rotl(hH, hL, 27);
    mul(rh, rl, P1H, P1L);
    add(rh, rl, P4H, P4L);
    hH = rh; hL = rl;
    i += 8;
  }
  if (i + 4 <= end) {
    mul(0, u32(d, i), P1H, P1L);
    hH = (hH ^ rh) >>> 0; hL = (hL ^ rl) >>> 0;
    rotl(hH, hL, 23);
    mul(rh, rl, P2H, P2L);
    add(rh, rl, P3H, P3L);
    hH = rh; hL = rl;
    i += 4;
  }
  while (i < end) {
    mul(0, d[i]!, P5H, P5L);
    hH = (hH ^ rh) >>> 0; hL = (hL ^ rl) >>> 0;
    rotl(hH, hL, 11);
    mul(rh, rl, P1H, P1L);
    hH = rh; hL = rl;
    i++;
  }
  // avalanche
  hL = (hL ^ (hH >>> 1)) >>> 0; // h ^= h >> 33
  mul(hH, hL, P2H, P2L); hH = rh; hL = rl;
  hL = (hL ^ ((hH << 3) | (hL >>> 29))) >>> 0; hH = (hH ^ (hH >>> 29)) >>> 0; // h ^= h >> 29
  mul(hH, hL, P3H, P3L); hH = rh; hL = rl;
  hL = (hL ^ hH) >>> 0; // h ^= h >> 32
  return hL;
}
