// SSE availability and exception delivery that the host (running at CPL 3 under Linux, with
// SSE enabled) cannot show: CR0.EM / CR0.TS / CR4.OSFXSR / CR4.OSXMMEXCPT, the MMX encodings
// that are not implemented (#UD), and the error bound of the rcp/rsqrt approximations.
import { describe, expect, it } from 'vitest';
import { Cpu, Stop } from '../../src/cpu/cpu.js';
import '../../src/cpu/ops/index.js';
import { rcp32, rsqrt32 } from '../../src/cpu/ops/sse-approx.js';
import { FlatMemory } from '../../src/mmu/flat.js';
import { PhysMem } from '../../src/mmu/physmem.js';

const CODE = 0x10000, DATA = 0x20000;
const CR0_EM = 4, CR0_TS = 8, CR4_OSFXSR = 0x200, CR4_OSXMMEXCPT = 0x400;

/** Run one instruction; returns the exception vector, or -1 if it completed. */
function run1(code: number[], setup: (cpu: Cpu) => void = () => {}): { vector: number; cpu: Cpu } {
  const phys = new PhysMem(1 << 20);
  const cpu = new Cpu(new FlatMemory(phys));
  phys.u8.set(code, CODE);
  cpu.rip = CODE;
  cpu.r[0] = DATA; // rax: a 16-byte aligned data address
  setup(cpu);
  const s = cpu.run(1);
  return { vector: s === Stop.Fault ? cpu.stopFault!.vector : -1, cpu };
}

const MOVAPS = [0x0f, 0x28, 0xc1];             // movaps xmm0, xmm1
const ADDPS_MEM = [0x0f, 0x58, 0x00];          // addps xmm0, [rax]
const PADDB = [0x66, 0x0f, 0xfc, 0xc1];        // paddb xmm0, xmm1
const LDMXCSR = [0x0f, 0xae, 0x10];            // ldmxcsr [rax]
const MOVNTI = [0x0f, 0xc3, 0x08];             // movnti [rax], ecx
const DIVSS = [0xf3, 0x0f, 0x5e, 0xc1];        // divss xmm0, xmm1

describe('SSE availability', () => {
  it('runs with OSFXSR set, as the raw machine has it', () => {
    for (const c of [MOVAPS, ADDPS_MEM, PADDB, LDMXCSR, MOVNTI]) expect(run1(c).vector).toBe(-1);
  });
  it('#NM when CR0.TS is set (lazy FPU switching), except movnti', () => {
    for (const c of [MOVAPS, ADDPS_MEM, PADDB, LDMXCSR]) expect(run1(c, (cpu) => { cpu.cr0 |= CR0_TS; }).vector).toBe(7);
    expect(run1(MOVNTI, (cpu) => { cpu.cr0 |= CR0_TS; }).vector).toBe(-1);
  });
  it('#UD when CR0.EM is set (before #NM) or CR4.OSFXSR is clear', () => {
    for (const c of [MOVAPS, ADDPS_MEM, PADDB, LDMXCSR]) {
      expect(run1(c, (cpu) => { cpu.cr0 |= CR0_EM | CR0_TS; }).vector).toBe(6);
      expect(run1(c, (cpu) => { cpu.cr4 &= ~CR4_OSFXSR; }).vector).toBe(6);
    }
    expect(run1(MOVNTI, (cpu) => { cpu.cr4 &= ~CR4_OSFXSR; }).vector).toBe(-1);
  });
  it('an unmasked SIMD exception is #XM with OSXMMEXCPT, #UD without; flags recorded, no result', () => {
    const setup = (cpu: Cpu) => {
      cpu.mxcsr = 0x1f80 & ~0x200; // ZM clear
      cpu.xmm[0] = 0x3f800000; cpu.xmm[4] = 0; // 1.0 / 0.0
    };
    const a = run1(DIVSS, setup);
    expect(a.vector).toBe(19);
    expect(a.cpu.mxcsr).toBe(0x1d84);
    expect(a.cpu.xmm[0]).toBe(0x3f800000);
    const b = run1(DIVSS, (cpu) => { setup(cpu); cpu.cr4 &= ~CR4_OSXMMEXCPT; });
    expect(b.vector).toBe(6);
    expect(b.cpu.mxcsr).toBe(0x1d84);
  });
  it('ldmxcsr with a reserved bit is #GP(0)', () => {
    const r = run1(LDMXCSR, (cpu) => { cpu.mem.wr32(DATA, 0x11f80); });
    expect(r.vector).toBe(13);
    expect(r.cpu.mxcsr).toBe(0x1f80);
  });
  it('MMX encodings and the MMX-register conversions are #UD (MMX is not implemented)', () => {
    const mmx = [
      [0x0f, 0xfc, 0xc1], [0x0f, 0x6f, 0xc1], [0x0f, 0x7e, 0xc1], [0x0f, 0xd7, 0xc1], [0x0f, 0x70, 0xc1, 0x00],
      [0x0f, 0x2a, 0xc1], [0x66, 0x0f, 0x2a, 0xc1], [0x0f, 0x2c, 0xc1], [0x0f, 0x2d, 0xc1], [0x66, 0x0f, 0x2d, 0xc1],
      [0x0f, 0xf7, 0xc1], [0x0f, 0xc4, 0xc1, 0x00], [0x0f, 0x71, 0xd1, 0x01],
    ];
    for (const c of mmx) expect(run1(c).vector, c.map((b) => b.toString(16)).join(' ')).toBe(6);
  });
  it('movaps with a misaligned memory operand is #GP(0); movups is not', () => {
    expect(run1([0x0f, 0x28, 0x40, 0x01]).vector).toBe(13);
    expect(run1([0x0f, 0x10, 0x40, 0x01]).vector).toBe(-1);
  });
});

describe('rcp/rsqrt approximations', () => {
  const f = new Float32Array(1), u = new Uint32Array(f.buffer);
  const val = (b: number) => { u[0] = b; return f[0]; };
  it('stay within 1.5 * 2^-12 relative error for every fraction (SDM bound)', () => {
    const bound = 1.5 * 2 ** -12;
    let worstR = 0, worstS = 0;
    for (let m = 0; m < 1 << 23; m += 7) {
      for (const e of [1, 100, 127, 128, 200, 252]) {
        const x = val((e << 23) | m);
        worstR = Math.max(worstR, Math.abs(val(rcp32((e << 23) | m)) * x - 1));
        worstS = Math.max(worstS, Math.abs(val(rsqrt32((e << 23) | m)) * Math.sqrt(x) - 1));
      }
    }
    expect(worstR).toBeLessThanOrEqual(bound);
    expect(worstS).toBeLessThanOrEqual(bound);
  });
  it('special values', () => {
    expect(rcp32(0) >>> 0).toBe(0x7f800000);
    expect(rcp32(0x80000000) >>> 0).toBe(0xff800000);
    expect(rcp32(0x7f800000) >>> 0).toBe(0);
    expect(rcp32(0x7f800001) >>> 0).toBe(0x7fc00001);
    expect(rsqrt32(0xbf800000) >>> 0).toBe(0xffc00000);
    expect(rsqrt32(0x7f800000) >>> 0).toBe(0);
  });
});
