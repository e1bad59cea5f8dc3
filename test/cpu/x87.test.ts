// Unit tests for the x87 core: the software 80-bit arithmetic (float80.ts), the
// transcendentals (with a tolerance against Math: hardware and our results are not bit-exact
// references for each other), and the behaviour the differential tests cannot reach because
// the native side runs at CPL 3 with fixed CR0/CR4: #NM for CR0.TS/EM, fwait with CR0.MP,
// #MF with and without CR0.NE, #UD for xsave without CR4.OSXSAVE, #GP for misalignment.
import { describe, expect, it } from 'vitest';
import {
  add, div, FMT32, FMT64, fromF64, fromInt, fx, mk, mul, rem, remOut, sqrt, toFloat, toIntRaw, type F80,
} from '../../src/cpu/float80.js';
import { atan2, f2xm1, sincos, yl2x, yl2xp1 } from '../../src/cpu/float80-trans.js';
import { DATA_BASE } from '../harness/case.js';
import { InterpRunner } from '../harness/interp.js';
import { defaultFxImage } from '../harness/native.js';

const J = 1n << 63n;
const one = mk(0, 16383, J);
const two = mk(0, 16384, J);
const three = mk(0, 16384, 0xc000000000000000n);

/** An 80-bit value as a JS number (for tolerance checks). */
function num(x: F80): number {
  if (x.e === 0x7fff) return x.m === J ? (x.s ? -Infinity : Infinity) : NaN;
  const v = Number(x.m) * 2 ** ((x.e === 0 ? 1 : x.e) - 16383 - 63);
  return x.s ? -v : v;
}
/** The 80-bit value nearest a double (exact: doubles fit). */
const ext = (v: number): F80 => {
  const b = new DataView(new ArrayBuffer(8));
  b.setFloat64(0, v);
  return fromF64(b.getBigUint64(0));
};
function ctx(cw = 0x037f): void { fx.cw = cw; fx.exc = 0; fx.up = false; fx.den = false; }

describe('float80 arithmetic', () => {
  it('adds, multiplies, divides and takes square roots exactly rounded', () => {
    ctx();
    expect(add(one, two, false)).toEqual(three);
    expect(mul(three, three)).toEqual(mk(0, 16386, 0x9000000000000000n));
    expect(fx.exc).toBe(0);
    const third = div(one, three)!;
    expect(third).toEqual(mk(0, 16381, 0xaaaaaaaaaaaaaaabn));
    expect(fx.exc & 0x20).toBe(0x20); // PE
    expect(fx.up).toBe(true);         // rounded up: C1
    ctx(0x037f & ~0x300);             // PC = 24 bits
    expect(div(one, three)).toEqual(mk(0, 16381, 0xaaaaab0000000000n));
    ctx();
    expect(sqrt(two)).toEqual(mk(0, 16383, 0xb504f333f9de6484n));
  });

  it('gives +0 for x - x, and -0 when rounding down', () => {
    ctx();
    expect(add(three, three, true)).toEqual(mk(0, 0, 0n));
    ctx(0x077f);
    expect(add(three, three, true)).toEqual(mk(1, 0, 0n));
  });

  it('raises IE with the indefinite for invalid operations, ZE for x/0', () => {
    ctx();
    expect(mul(mk(0, 0x7fff, J), mk(0, 0, 0n))).toEqual(mk(1, 0x7fff, 0xc000000000000000n));
    expect(fx.exc).toBe(1);
    ctx();
    expect(div(one, mk(1, 0, 0n))).toEqual(mk(1, 0x7fff, J));
    expect(fx.exc).toBe(4);
    ctx();
    expect(add(mk(0, 16383, 1n), one, false)).toEqual(mk(1, 0x7fff, 0xc000000000000000n)); // unnormal
    expect(fx.exc).toBe(1);
  });

  it('rounds to float32/float64 with ties to even and the other modes', () => {
    ctx();
    const tie = mk(0, 16383, 0x8000008000000000n); // 1 + 2^-24: halfway between two floats
    expect(toFloat(tie, FMT32)).toBe(0x3f800000n);
    ctx(0x0b7f); // round up
    expect(toFloat(tie, FMT32)).toBe(0x3f800001n);
    ctx();
    expect(toFloat(mk(0, 16383 - 1074, J), FMT64)).toBe(1n);       // the smallest denormal
    expect(toFloat(mk(0, 16383 - 1076, J), FMT64)).toBe(0n);       // below half of it: 0
    expect(fx.exc).toBe(0x30);                                     // UE PE
    ctx();
    expect(toFloat(mk(0, 0x7ffe, J), FMT32)).toBe(0x7f800000n);    // overflow to infinity
    expect(fx.exc).toBe(0x28);
  });

  it('converts to integers by RC, and reports out of range', () => {
    ctx();
    expect(toIntRaw(mk(0, 16384, 0xa000000000000000n), false, -32768n, 32767n)).toBe(2n); // 2.5 -> 2
    ctx(0x0f7f);
    expect(toIntRaw(mk(1, 16384, 0xe000000000000000n), false, -32768n, 32767n)).toBe(-3n); // -3.5 chop
    ctx();
    expect(toIntRaw(fromInt(40000n), false, -32768n, 32767n)).toBeNull();
  });

  it('computes partial remainders like the host (N = 32 + D mod 32)', () => {
    ctx();
    const r = rem(mk(0, 16383 + 64, 0xffffffffffffffffn), one, false)!;
    expect(remOut.partial).toBe(true);
    expect(r.e - 16383).toBe(31);
    ctx();
    rem(mk(0, 16383 + 3, 0xb000000000000000n), three, false); // 11 = 3*3 + 2
    expect(remOut.q).toBe(3);
  });
});

describe('x87 transcendentals (tolerance against Math)', () => {
  // The double references carry a few ulps of error themselves.
  const rel = (a: number, b: number) => Math.abs(a - b) <= 1e-15 * Math.max(Math.abs(b), 1e-300);
  it('sin cos tan', () => {
    for (const v of [0.5, 1, -1.25, 3, 10, 100.5, 1e-5, 12345.678]) {
      ctx();
      const [s, c] = sincos(ext(v), 3)!;
      expect(rel(num(s), Math.sin(v))).toBe(true);
      expect(rel(num(c), Math.cos(v))).toBe(true);
      ctx();
      expect(rel(num(sincos(ext(v), 4)![0]), Math.tan(v))).toBe(true);
    }
  });
  it('reduces by a 66-bit pi, as the hardware does', () => {
    ctx();
    const pi = mk(0, 16384, 0xc90fdaa22168c235n);
    expect(sincos(pi, 1)![0]).toEqual(mk(1, 16383 - 64, J)); // -2^-64, the host's answer
  });
  it('atan2, 2^x - 1, y log2 x, y log2(x + 1)', () => {
    for (const [y, x] of [[1, 1], [1, -2], [-3, 0.5], [1e-10, 1], [5, -1e-3]]) {
      ctx();
      expect(rel(num(atan2(ext(y), ext(x))!), Math.atan2(y, x))).toBe(true);
    }
    for (const v of [0.5, -0.75, 1e-6, -1e-12, 0.999]) { ctx(); expect(rel(num(f2xm1(ext(v))!), Math.expm1(v * Math.LN2))).toBe(true); }
    for (const [x, y] of [[10, 3], [0.1, -2], [1e100, 1], [1.5, 1e-5]]) { ctx(); expect(rel(num(yl2x(ext(x), ext(y))!), y * Math.log2(x))).toBe(true); }
    for (const [x, y] of [[0.25, 3], [-0.2, 1], [1e-9, 2]]) { ctx(); expect(rel(num(yl2xp1(ext(x), ext(y))!), (y * Math.log1p(x)) / Math.LN2)).toBe(true); }
    ctx();
    expect(atan2(one, one)).toEqual(mk(0, 16382, 0xc90fdaa22168c235n)); // pi/4, correctly rounded
  });
});

describe('x87 exceptions the host cannot show', () => {
  const run = (code: number[], setup: (r: InterpRunner) => void, sw = 0, cw = 0x37f) => {
    const r = new InterpRunner();
    setup(r);
    const fxi = defaultFxImage();
    fxi[0] = cw & 0xff; fxi[1] = cw >> 8; fxi[2] = sw & 0xff; fxi[3] = sw >> 8;
    const regs = new Array<bigint>(16).fill(0n);
    regs[3] = BigInt(DATA_BASE); regs[4] = 0x300800n;
    return r.run({ code: Uint8Array.from(code), regs, rflags: 0n, fx: fxi });
  };
  const FADD = [0xd8, 0xc0];
  it('#NM for CR0.TS and CR0.EM; fwait only with TS and MP', () => {
    expect(run(FADD, (r) => { r.cpu.cr0 |= 8; }).vector).toBe(7);
    expect(run(FADD, (r) => { r.cpu.cr0 |= 4; }).vector).toBe(7);
    expect(run([0x9b], (r) => { r.cpu.cr0 |= 8; r.cpu.cr0 &= ~2; }).status).toBe('ok');
    expect(run([0x9b], (r) => { r.cpu.cr0 |= 8 | 2; }).vector).toBe(7);
    expect(run([0x0f, 0xae, 0x03], (r) => { r.cpu.cr0 |= 8; }).vector).toBe(7); // fxsave
  });
  it('#MF on the next waiting instruction with CR0.NE; nothing without it', () => {
    // IE pending and unmasked (ES set by fxrstor).
    expect(run(FADD, () => {}, 0x0001, 0x037e).vector).toBe(16);
    expect(run([0xdb, 0xe2], () => {}, 0x0001, 0x037e).status).toBe('ok'); // fnclex does not wait
    expect(run(FADD, (r) => { r.cpu.cr0 &= ~0x20; }, 0x0001, 0x037e).status).toBe('ok');
  });
  it('#UD for xsave without CR4.OSXSAVE; #GP for misaligned fxsave/xsave', () => {
    expect(run([0x0f, 0xae, 0x23], (r) => { r.cpu.cr4 &= ~0x40000; }).vector).toBe(6);
    expect(run([0x0f, 0xae, 0x43, 0x08], () => {}).vector).toBe(13);
    expect(run([0x0f, 0xae, 0x63, 0x20], (r) => { r.cpu.cr4 |= 0x40000; r.cpu.xcr0Lo = 3; }).vector).toBe(13);
  });
});
