// movs cmps stos lods scas at every operand size, plain and with rep / repe / repne, against
// the host CPU; each case picks DF, the address size (67: esi/edi/ecx, with garbage in the
// upper halves) and a source segment override at random. Buffers overlap, run off either
// end of the data region (#PF mid-rep: the registers must show the completed iterations),
// and some counts pass the interpreter's per-execution iteration limit (MAX_ITER).
//
// ins/outs need port access, which user mode on the host does not have: they get plain
// unit tests against a fake PortBus, and so do segment bases (the native runner's are 0).
//
// Flags: cmps/scas set them as sub does (all defined); the others change none. No masking.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DATA_BASE, DATA_SIZE } from '../harness/case.js';
import { diffForms, type Form } from '../harness/diff.js';
import { mkCase, regsArb, u64 } from '../harness/gen.js';
import { Cpu, Stop } from '../../src/cpu/cpu.js';
import { CpuFault } from '../../src/cpu/fault.js';
import '../../src/cpu/ops/index.js';
import { MAX_ITER } from '../../src/cpu/ops/string.js';
import type { PortBus } from '../../src/cpu/ports.js';
import { Mode, Seg } from '../../src/cpu/state.js';
import { FlatMemory } from '../../src/mmu/flat.js';
import { PhysMem } from '../../src/mmu/physmem.js';

const M64 = (1n << 64n) - 1n;
const SIZES = [1, 2, 4, 8] as const;
const RAX = 0, RCX = 1, RSI = 6, RDI = 7;
const DF = 0x400n;
type Op = 'movs' | 'cmps' | 'stos' | 'lods' | 'scas';
type Rep = '' | 'rep' | 'repe' | 'repne';
const OPC: Record<Op, number> = { movs: 0xa4, cmps: 0xa6, stos: 0xaa, lods: 0xac, scas: 0xae };
const SEG_PREFIX = [0x26, 0x2e, 0x36, 0x3e, 0x64, 0x65];

/** Data with long runs of equal elements: a short random period over a 4-letter alphabet,
 *  plus a few stray bytes, so repe/repne comparisons run for a while and then stop. */
const strData: fc.Arbitrary<{ data: Uint8Array; period: number }> = fc.record({
  period: fc.oneof(fc.constantFrom(1, 2, 4, 8, 16, 64), fc.integer({ min: 1, max: 64 })),
  alpha: fc.uint8Array({ minLength: 4, maxLength: 4 }),
  picks: fc.uint8Array({ minLength: 64, maxLength: 64 }),
  muts: fc.array(fc.record({ off: fc.integer({ min: 0, max: DATA_SIZE - 1 }), v: fc.integer({ min: 0, max: 255 }) }), { maxLength: 8 }),
}).map(({ period, alpha, picks, muts }) => {
  const data = new Uint8Array(DATA_SIZE);
  for (let i = 0; i < DATA_SIZE; i++) data[i] = alpha[picks[i % period] & 3];
  for (const m of muts) data[m.off] = m.v;
  return { data, period };
});

/** An offset in the data region, often near its ends or the page boundary in the middle. */
const offArb = fc.oneof(
  fc.integer({ min: 0, max: DATA_SIZE - 1 }),
  fc.integer({ min: 0, max: 64 }),
  fc.integer({ min: DATA_SIZE - 64, max: DATA_SIZE - 1 }),
  fc.integer({ min: 0xfc0, max: 0x1040 }),
);

function readLE(data: Uint8Array, off: number, size: number): bigint {
  let v = 0n;
  for (let i = size - 1; i >= 0; i--) v = (v << 8n) | BigInt(data[(off + i) & (DATA_SIZE - 1)]);
  return v;
}

function strForm(op: Op, size: number, rep: Rep, long = false): Form {
  const opc = OPC[op] + (size === 1 ? 0 : 1);
  const suffix = ({ 1: 'b', 2: 'w', 4: 'd', 8: 'q' } as Record<number, string>)[size];
  return {
    name: `${rep ? rep + ' ' : ''}${op}${suffix}${long ? ' (long counts)' : ''}`,
    gen: fc.record({
      regs: regsArb(), sd: strData, offS: offArb, offD: offArb,
      rel: fc.oneof(fc.constant(null), fc.integer({ min: -3, max: 3 }), fc.integer({ min: -24, max: 24 }).map((k) => ({ k }))),
      count: long ? fc.integer({ min: MAX_ITER - 64, max: 0x2000 }) : fc.oneof(fc.integer({ min: 0, max: 40 }), fc.constantFrom(0, 1, 2), fc.integer({ min: 0, max: 700 })),
      df: fc.boolean(), a32: fc.integer({ min: 0, max: 3 }), seg: fc.integer({ min: -4, max: 5 }), f2: fc.boolean(),
      wild: fc.integer({ min: 0, max: 40 }), wv: u64, j: fc.integer({ min: -1, max: 3 }), fl: fc.bigInt({ min: 0n, max: 0x8d5n }),
    }).map(({ regs, sd, offS: s0, offD, rel, count, df, a32, seg, f2, wild, wv, j, fl }) => {
      const { data, period } = sd;
      const use67 = a32 === 0;
      let offS = s0;
      // The destination: independent, a whole number of periods away (equal contents), or near.
      let dOff = offD;
      if (typeof rel === 'number') dOff = offS + (rel === 0 ? 1 : rel) * period;
      else if (rel) dOff = offS + rel.k;
      if (long) {
        // Keep most of a long run inside the region, in the direction of travel.
        const span = count * size;
        if (!df) { offS = Math.min(offS, Math.max(0, DATA_SIZE - span)); dOff = Math.min(Math.max(dOff, 0), Math.max(0, DATA_SIZE - span)); }
        else { offS = Math.max(offS, Math.min(DATA_SIZE - 1, span)); dOff = Math.max(Math.min(dOff, DATA_SIZE - 1), Math.min(DATA_SIZE - 1, span)); }
      }
      const hiS = use67 ? regs[RSI] & ~0xffffffffn : 0n, hiD = use67 ? regs[RDI] & ~0xffffffffn : 0n;
      regs[RSI] = (hiS | BigInt(DATA_BASE + offS)) & M64;
      regs[RDI] = (hiD | BigInt(DATA_BASE + dOff)) & M64;
      if (!use67 && wild === 0) regs[RSI] = wv; // anywhere: #PF, or #GP/#SS when non-canonical
      if (!use67 && wild === 1) regs[RDI] = wv;
      const cnt = BigInt(count);
      regs[RCX] = use67 ? (regs[RCX] & ~0xffffffffn) | cnt : rep ? cnt : regs[RCX];
      if (!use67 && rep && wild === 2) regs[RCX] = (1n << 32n) | cnt; // 64-bit count: runs into a fault
      if (j >= 0) regs[RAX] = readLE(data, dOff + j * size, size) | (regs[RAX] & ~((1n << BigInt(8 * size)) - 1n));
      const code = [
        ...(seg >= 0 ? [SEG_PREFIX[seg]] : []),
        ...(use67 ? [0x67] : []),
        ...(rep === 'repne' || (rep === 'rep' && f2) ? [0xf2] : rep ? [0xf3] : []),
        ...(size === 2 ? [0x66] : []),
        ...(size === 8 ? [0x48] : []),
        opc,
      ];
      return mkCase(code, regs, (fl & 0x8d5n) | (df ? DF : 0n), { data });
    }),
  };
}

const forms: Form[] = [];
for (const size of SIZES) {
  for (const op of ['movs', 'stos', 'lods'] as const) {
    forms.push(strForm(op, size, ''));
    forms.push(strForm(op, size, 'rep'));
  }
  for (const op of ['cmps', 'scas'] as const) {
    forms.push(strForm(op, size, ''));
    forms.push(strForm(op, size, 'repe'));
    forms.push(strForm(op, size, 'repne'));
  }
}
forms.push(strForm('movs', 1, 'rep', true), strForm('stos', 1, 'rep', true), strForm('cmps', 1, 'repe', true),
  strForm('scas', 1, 'repe', true), strForm('lods', 1, 'rep', true), strForm('movs', 2, 'rep', true));

describe('string instructions against the host CPU', () => diffForms(forms));

// ---- unit tests: ins/outs, segment bases, the per-execution iteration limit -------------

class FakePorts implements PortBus {
  reads: [number, number][] = [];
  writes: [number, number, number][] = [];
  next = 0x10;
  portIn(port: number, size: number): number {
    this.reads.push([port, size]);
    const v = this.next;
    this.next = (this.next + 0x11) & 0xff;
    return size === 4 ? (v * 0x01010101) | 0 : size === 2 ? v * 0x0101 : v;
  }
  portOut(port: number, size: number, value: number): void { this.writes.push([port, size, value]); }
}

const CODE = 0x1000, DATA = 0x8000;
function machine(code: number[]): { cpu: Cpu; phys: PhysMem; mem: FlatMemory; ports: FakePorts } {
  const phys = new PhysMem(0x20000);
  const mem = new FlatMemory(phys);
  mem.present.fill(0);
  mem.present[CODE / 4096] = 1; mem.present[DATA / 4096] = 1; mem.present[DATA / 4096 + 1] = 1;
  phys.u8.set(code, CODE);
  const cpu = new Cpu(mem);
  const ports = new FakePorts();
  cpu.ports = ports;
  cpu.rip = CODE;
  cpu.rflags = 0x202;
  return { cpu, phys, mem, ports };
}
function set64(cpu: Cpu, reg: number, v: number): void { cpu.r[reg * 2] = v % 2 ** 32 | 0; cpu.r[reg * 2 + 1] = Math.floor(v / 2 ** 32); }
function get64(cpu: Cpu, reg: number): number { return (cpu.r[reg * 2 + 1] >>> 0) * 2 ** 32 + (cpu.r[reg * 2] >>> 0); }

describe('ins/outs (fake port bus)', () => {
  it('rep insb stores port bytes at ES:rdi and counts rcx down', () => {
    const { cpu, phys, ports } = machine([0xf3, 0x6c]);
    set64(cpu, 2, 0x1234_0060); set64(cpu, RDI, DATA + 0x10); set64(cpu, RCX, 3);
    cpu.run(1);
    expect(ports.reads).toEqual([[0x60, 1], [0x60, 1], [0x60, 1]]);
    expect(Array.from(phys.u8.subarray(DATA + 0x10, DATA + 0x14))).toEqual([0x10, 0x21, 0x32, 0]);
    expect(get64(cpu, RDI)).toBe(DATA + 0x13);
    expect(get64(cpu, RCX)).toBe(0);
    expect(cpu.rip).toBe(CODE + 2);
  });
  it('insd with DF=1 walks down; REX.W still moves 4 bytes', () => {
    const { cpu, phys, ports } = machine([0x48, 0x6d]);
    cpu.rflags = 0x602;
    set64(cpu, 2, 0x3f8); set64(cpu, RDI, DATA + 0x20);
    cpu.run(1);
    expect(ports.reads).toEqual([[0x3f8, 4]]);
    expect(Array.from(phys.u8.subarray(DATA + 0x20, DATA + 0x25))).toEqual([0x10, 0x10, 0x10, 0x10, 0]);
    expect(get64(cpu, RDI)).toBe(DATA + 0x1c);
  });
  it('rep outsw reads seg:rsi and writes the port; 67 uses esi/ecx and zero-extends', () => {
    const { cpu, phys, ports } = machine([0x67, 0xf3, 0x66, 0x6f]);
    phys.u8.set([1, 2, 3, 4, 5, 6], DATA);
    set64(cpu, 2, 0x80); set64(cpu, RSI, 0x5_0000_0000 + DATA); set64(cpu, RCX, 0x7_0000_0002);
    cpu.run(1);
    expect(ports.writes).toEqual([[0x80, 2, 0x0201], [0x80, 2, 0x0403]]);
    expect(get64(cpu, RSI)).toBe(DATA + 4);
    expect(get64(cpu, RCX)).toBe(0);
  });
  it('count 0 does nothing', () => {
    const { cpu, ports } = machine([0xf3, 0x6e]);
    set64(cpu, RSI, DATA); set64(cpu, RCX, 0);
    cpu.run(1);
    expect(ports.writes).toEqual([]);
    expect(get64(cpu, RSI)).toBe(DATA);
    expect(cpu.rip).toBe(CODE + 2);
  });
  /** A 64-bit TSS at DATA+0x1000 whose I/O bitmap (if any) starts at 0x68. */
  function tss(cpu: Cpu, phys: PhysMem, limit: number): void {
    cpu.seg.baseLo[Seg.TR] = DATA + 0x1000; cpu.seg.limit[Seg.TR] = limit;
    phys.u8[DATA + 0x1000 + 0x66] = 0x68;
  }
  it('CPL > IOPL with no I/O bitmap: #GP(0) before any port access', () => {
    const { cpu, phys, ports } = machine([0xf3, 0x6c]);
    cpu.cpl = 3;
    tss(cpu, phys, 0x67);
    set64(cpu, 2, 0x60); set64(cpu, RDI, DATA); set64(cpu, RCX, 2);
    expect(cpu.run(1)).toBe(Stop.Fault);
    expect(cpu.stopFault?.vector).toBe(13);
    expect(ports.reads).toEqual([]);
    expect(get64(cpu, RCX)).toBe(2);
    expect(cpu.rip).toBe(CODE);
  });
  it('CPL > IOPL: the TSS bitmap decides, for every byte of the access', () => {
    const { cpu, phys, ports } = machine([0x66, 0x6f]);
    cpu.cpl = 3;
    tss(cpu, phys, 0x68 + 0x20);
    phys.u8[DATA + 0x1000 + 0x68 + (0x61 >> 3)] = 1 << (0x61 & 7); // deny port 0x61 only
    set64(cpu, 2, 0x62); set64(cpu, RSI, DATA);
    expect(cpu.run(1)).toBe(Stop.Budget);
    expect(ports.writes.length).toBe(1);
    cpu.rip = CODE; set64(cpu, 2, 0x60); // a word at 0x60 touches 0x61
    expect(cpu.run(1)).toBe(Stop.Fault);
    expect(cpu.stopFault?.vector).toBe(13);
    expect(ports.writes.length).toBe(1);
  });
  it('CPL 3 with IOPL 3 is allowed', () => {
    const { cpu, ports } = machine([0x6c]);
    cpu.cpl = 3; cpu.rflags = 0x3202;
    set64(cpu, RDI, DATA);
    expect(cpu.run(1)).toBe(Stop.Budget);
    expect(ports.reads.length).toBe(1);
  });
  it('ins into an unmapped page faults without reading the port; rep keeps completed work', () => {
    const { cpu, ports } = machine([0xf3, 0x6c]);
    set64(cpu, RDI, DATA + 0x2000 - 2); set64(cpu, RCX, 5);
    expect(cpu.run(1)).toBe(Stop.Fault);
    expect(cpu.stopFault).toBeInstanceOf(CpuFault);
    expect(cpu.stopFault?.vector).toBe(14);
    expect(ports.reads.length).toBe(2);
    expect(get64(cpu, RCX)).toBe(3);
    expect(get64(cpu, RDI)).toBe(DATA + 0x2000);
    expect(cpu.rip).toBe(CODE);
  });
  it('more than MAX_ITER iterations resume on the next execution', () => {
    const { cpu, ports } = machine([0xf3, 0x6c, 0x90]);
    const n = MAX_ITER + 100;
    set64(cpu, RDI, DATA); set64(cpu, RCX, n);
    cpu.run(1);
    expect(ports.reads.length).toBe(MAX_ITER);
    expect(get64(cpu, RCX)).toBe(100);
    expect(cpu.rip).toBe(CODE);
    cpu.run(1);
    expect(ports.reads.length).toBe(n);
    expect(get64(cpu, RCX)).toBe(0);
    expect(cpu.rip).toBe(CODE + 2);
  });
});

describe('string instructions: segment bases (interpreter only)', () => {
  it('fs:movsq reads from FS base + rsi, writes ES:rdi (ES base ignored in long mode)', () => {
    const { cpu, phys } = machine([0x64, 0x48, 0xa5]);
    cpu.seg.baseLo[Seg.FS] = 0x1000; cpu.seg.baseLo[Seg.ES] = 0x4000;
    phys.u8.set([1, 2, 3, 4, 5, 6, 7, 8], DATA + 0x1000);
    set64(cpu, RSI, DATA); set64(cpu, RDI, DATA + 0x100);
    cpu.run(1);
    expect(Array.from(phys.u8.subarray(DATA + 0x100, DATA + 0x108))).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(get64(cpu, RSI)).toBe(DATA + 8);
  });
  it('gs:lodsb: GS base plus a negative rsi wraps modulo 2^64', () => {
    const { cpu, phys } = machine([0x65, 0xac]);
    cpu.seg.baseLo[Seg.GS] = DATA + 0x10; cpu.seg.baseHi[Seg.GS] = 0;
    phys.u8[DATA] = 0x5a;
    cpu.r[RSI * 2] = -0x10; cpu.r[RSI * 2 + 1] = -1;
    cpu.run(1);
    expect(cpu.r[0] & 0xff).toBe(0x5a);
  });
});

describe('string instructions: legacy address sizes (interpreter only)', () => {
  it('32-bit code with 67: si/di/cx are 16-bit, wrap at 64 KiB and keep the upper bits; DS and ES bases apply', () => {
    const { cpu, phys, mem } = machine([0x67, 0xf3, 0xa4]);
    mem.present.fill(1);
    cpu.mode = Mode.Prot32;
    cpu.seg.baseLo[Seg.DS] = DATA; cpu.seg.baseLo[Seg.ES] = 0x10000;
    phys.u8.set([1, 2], DATA + 0xfffe); phys.u8.set([3, 4], DATA);
    cpu.r[RSI * 2] = 0x1234fffe; cpu.r[RDI * 2] = 0x5678_0010; cpu.r[RCX * 2] = 0xabcd0004 | 0;
    cpu.run(1);
    expect(Array.from(phys.u8.subarray(0x10010, 0x10014))).toEqual([1, 2, 3, 4]);
    expect(cpu.r[RSI * 2]).toBe(0x12340002);
    expect(cpu.r[RDI * 2]).toBe(0x56780014);
    expect(cpu.r[RCX * 2]).toBe(0xabcd0000 | 0);
    expect(cpu.rip).toBe(CODE + 3);
  });
});
