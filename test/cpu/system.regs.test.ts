// Control, debug and model-specific registers, the descriptor-table instructions, lar/lsl/
// verr/verw over random descriptors, xgetbv/xsetbv, port I/O permission and TLB flushes, run
// as instructions on a long-mode machine at CPL 0 and checked against models of the SDM rules
// written here independently of the implementation.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Cpu, Stop } from '../../src/cpu/cpu.js';
import { CpuModel } from '../../src/cpu/cpuid.js';
import type { CpuMemory } from '../../src/cpu/memory.js';
import { Cr0, Cr4, Efer, Mode, Seg } from '../../src/cpu/state.js';
import { CODE, GDT, KSTACK, Machine, Sel, TSS, UCODE, USTACK, le, longMachine, segDesc } from './system.kit.js';

const M64 = (1n << 64n) - 1n;
/** 64-bit values near the interesting edges: canonical boundary, reserved bit ranges. */
const v64: fc.Arbitrary<bigint> = fc.oneof(
  fc.constantFrom(0n, 1n, 0x7fffffffffffn, 0x800000000000n, 0xffff800000000000n, 0xffff7fffffffffffn, M64,
    0xffffffffn, 0x100000000n, 0xff00000000n, 0x10000000000n, 0x8000000000000000n),
  fc.bigInt({ min: 0n, max: M64 }),
  fc.bigInt({ min: 0n, max: 0xffffffffn }),
  fc.bigInt({ min: -(1n << 47n), max: (1n << 47n) - 1n }).map((v) => BigInt.asUintN(64, v)),
  fc.integer({ min: 0, max: 63 }).map((b) => 1n << BigInt(b)),
);
const canonical = (v: bigint): boolean => { const s = BigInt.asIntN(64, v); return s >= -(1n << 47n) && s < (1n << 47n); };

/** Run kernel code at CODE; returns the fault vector/error that stopped it, or null on hlt. */
function exec(m: Machine<CpuMemory>, code: number[]): { vector: number; errorCode: number } | null {
  m.bytes(CODE, [...code, 0xf4]);
  m.cpu.rip = CODE;
  m.cpu.idtrLimit = 0;
  const s = m.run(200);
  if (s === Stop.Fault) return { vector: m.cpu.stopFault!.vector, errorCode: m.cpu.stopFault!.errorCode };
  expect(s).toBe(Stop.Halt);
  return null;
}
const movabs = (r: number, v: bigint) => [0x48 | (r >= 8 ? 1 : 0), 0xb8 + (r & 7), ...le(BigInt.asUintN(64, v), 8)];
const wrmsr = (msr: number, v: bigint) => [0xb9, ...le(msr, 4), 0xb8, ...le(v & 0xffffffffn, 4), 0xba, ...le((v >> 32n) & 0xffffffffn, 4), 0x0f, 0x30];
const rdmsr = (msr: number) => [0xb9, ...le(msr, 4), 0x0f, 0x32];
const GP0 = { vector: 13, errorCode: 0 };

describe('control registers', () => {
  it('CR0: reserved upper bits, PG without PE, NW without CD, clearing PG in 64-bit mode are #GP(0)', () => {
    fc.assert(fc.property(v64, (v) => {
      const m = longMachine();
      const f = exec(m, [...movabs(0, v), 0x0f, 0x22, 0xc0, 0x0f, 0x20, 0xc3]); // mov cr0, rax; mov rbx, cr0
      const lo = Number(v & 0xffffffffn);
      const bad = (v >> 32n) !== 0n || !(lo & Cr0.PG) || !(lo & Cr0.PE) || ((lo & Cr0.NW) !== 0 && (lo & Cr0.CD) === 0);
      if (bad) { expect(f).toEqual(GP0); return; }
      expect(f).toBeNull();
      expect(m.reg(3)).toBe(BigInt(((lo & 0xe005003f) | 0x10) >>> 0));
    }), { numRuns: 400 });
  });

  it('CR4: bits the CPU model lacks are reserved; PAE cannot be cleared under LMA', () => {
    // TSD PSE PAE PGE PCE OSFXSR OSXMMEXCPT: the default CPUID has no VME, DE, MCE, PCID, XSAVE...
    const valid = 0x4 | 0x10 | 0x20 | 0x80 | 0x100 | 0x200 | 0x400;
    fc.assert(fc.property(v64, (v) => {
      const m = longMachine();
      const f = exec(m, [...movabs(0, v), 0x0f, 0x22, 0xe0, 0x0f, 0x20, 0xe3]);
      const lo = Number(v & 0xffffffffn);
      const bad = (v >> 32n) !== 0n || (lo & ~valid) !== 0 || !(lo & Cr4.PAE);
      if (bad) { expect(f).toEqual(GP0); return; }
      expect(f).toBeNull();
      expect(m.reg(3)).toBe(BigInt(lo >>> 0));
    }), { numRuns: 400 });
  });

  it('CR3: physical address bits above 39 are reserved; CR8: bits above 3', () => {
    fc.assert(fc.property(v64, (v) => {
      const m = longMachine();
      const f = exec(m, [...movabs(0, v), 0x0f, 0x22, 0xd8, 0x0f, 0x20, 0xdb]);
      if (v >> 40n) { expect(f).toEqual(GP0); return; }
      expect(f).toBeNull();
      expect(m.reg(3)).toBe(v);
    }), { numRuns: 300 });
    fc.assert(fc.property(v64, (v) => {
      const m = longMachine();
      const f = exec(m, [...movabs(0, v), 0x44, 0x0f, 0x22, 0xc0, 0x44, 0x0f, 0x20, 0xc3]);
      if (v > 15n) { expect(f).toEqual(GP0); return; }
      expect(f).toBeNull();
      expect(m.reg(3)).toBe(v);
    }), { numRuns: 300 });
  });

  it('CR2 holds any canonical address; CR1, CR5..7, CR9.. are #UD; the writes flush the TLB', () => {
    const m = longMachine();
    const flushes: (number | undefined)[] = [];
    m.mem.flush = (lin?: number) => { flushes.push(lin); };
    expect(exec(m, [...movabs(0, 0xffff800012345678n), 0x0f, 0x22, 0xd0, 0x0f, 0x20, 0xd1])).toBeNull();
    expect(m.reg(1)).toBe(0xffff800012345678n);
    for (const c of [[0x0f, 0x20, 0xc8], [0x0f, 0x22, 0xe8], [0x0f, 0x20, 0xf0], [0x0f, 0x22, 0xf8], [0x44, 0x0f, 0x20, 0xc8]]) {
      expect(exec(m, c)).toEqual({ vector: 6, errorCode: 0 });
    }
    flushes.length = 0;
    exec(m, [0x0f, 0x20, 0xd8, 0x0f, 0x22, 0xd8, 0x0f, 0x20, 0xe0, 0x48, 0x35, 0x80, 0, 0, 0, 0x0f, 0x22, 0xe0, 0x48, 0xb8, ...le(0x5000n, 8), 0x0f, 0x01, 0x38]);
    expect(flushes).toEqual([undefined, undefined, 0x5000]); // mov cr3; cr4.PGE toggled; invlpg
  });

  it('clts, lmsw (cannot clear PE), smsw', () => {
    const m = longMachine();
    m.cpu.cr0 = (m.cpu.cr0 | Cr0.TS) >>> 0;
    expect(exec(m, [0x0f, 0x06, 0x66, 0xb8, 0x0e, 0x00, 0x0f, 0x01, 0xf0, 0x0f, 0x01, 0xe3, 0x48, 0x0f, 0x01, 0xe1])).toBeNull();
    // clts; mov ax, 0x000e; lmsw ax (sets MP EM TS, PE stays); smsw ebx; smsw rcx
    expect(m.cpu.cr0 & 0xf).toBe(0xf);
    expect(m.reg(3)).toBe(BigInt(m.cpu.cr0 >>> 0));
    expect(m.reg(1)).toBe(BigInt(m.cpu.cr0 >>> 0));
  });

  it('a 32-bit protected-mode kernel enters long mode (PAE, EFER.LME, CR0.PG: LMA) and leaves it again', () => {
    const m = longMachine();
    const c = m.cpu;
    // Start in 32-bit protected mode, paging off.
    c.efer = Efer.SCE; c.cr0 = 0x11; c.cr4 = 0;
    m.gdt(8, segDesc(0, 0xfffff, 0xb, { db: 1, g: 1 }));
    m.setSeg(Seg.CS, Sel.KCS32);
    c.mode = Mode.Prot32;
    const flushes: (number | undefined)[] = [];
    m.mem.flush = (lin?: number) => { flushes.push(lin); };
    m.bytes(CODE, [
      0x0f, 0x20, 0xe0, 0x83, 0xc8, 0x20, 0x0f, 0x22, 0xe0,       // cr4 |= PAE
      0xb8, ...le(0x100000, 4), 0x0f, 0x22, 0xd8,                 // cr3 = 0x100000
      0xb9, ...le(0xc0000080, 4), 0x0f, 0x32, 0x0d, ...le(0x100, 4), 0x0f, 0x30, // EFER.LME
      0x0f, 0x20, 0xc0, 0x0d, ...le(0x80000000, 4), 0x0f, 0x22, 0xc0, // cr0 |= PG: LMA, compatibility mode
      0xea, ...le(CODE + 0x80, 4), Sel.KCS, 0x00,                   // jmp far 0x08:64-bit code
    ]);
    m.bytes(CODE + 0x80, [0x48, 0xb8, ...le(0x1122334455667788n, 8), 0xf4]);
    c.rip = CODE;
    expect(m.runTo(CODE + 0x80, 40)).toBe(true);
    expect(c.efer & Efer.LMA).toBe(Efer.LMA);
    expect(c.mode).toBe(Mode.Long64);
    expect(m.run(5)).toBe(Stop.Halt);
    expect(m.reg(0)).toBe(0x1122334455667788n);
    expect(flushes.length).toBeGreaterThanOrEqual(4); // cr4, cr3, EFER, cr0
    // Back out: clearing PG in 64-bit mode is #GP(0); from compatibility mode it clears LMA.
    const clearPg = [0x0f, 0x20, 0xc0, 0x25, ...le(0x7fffffff, 4), 0x0f, 0x22, 0xc0]; // and eax, 0x7fffffff
    expect(exec(m, clearPg)).toEqual(GP0);
    m.bytes(CODE + 0x100, [...clearPg, 0xf4]);
    m.w64(KSTACK - 0x200, BigInt(CODE + 0x100)); m.w64(KSTACK - 0x1f8, BigInt(Sel.KCS32));
    m.setReg(4, BigInt(KSTACK - 0x200));
    expect(exec(m, [0x48, 0xcb])).toBeNull(); // retfq to 32-bit code
    expect(c.efer & Efer.LMA).toBe(0);
    expect(c.mode).toBe(Mode.Prot32);
  });

  it('enabling paging with LME but without PAE is #GP(0)', () => {
    const m = longMachine();
    const c = m.cpu;
    c.efer = Efer.LME; c.cr0 = 0x11; c.cr4 = 0;
    m.setSeg(Seg.CS, Sel.KCS32); c.mode = Mode.Prot32;
    expect(exec(m, [0x0f, 0x20, 0xc0, 0x0d, ...le(0x80000000, 4), 0x0f, 0x22, 0xc0])).toEqual(GP0);
    expect(c.efer & Efer.LMA).toBe(0);
  });
});

describe('debug registers', () => {
  it('DR6/DR7 read with their fixed bits, DR4/5 alias them unless CR4.DE, upper halves of DR6/7 are #GP', () => {
    const m = longMachine();
    expect(exec(m, [0x0f, 0x21, 0xf0, 0x0f, 0x21, 0xf9, 0x0f, 0x21, 0xe2])).toBeNull(); // dr6->rax dr7->rcx dr4->rdx
    expect(m.reg(0)).toBe(0xffff0ff0n);
    expect(m.reg(1)).toBe(0x400n);
    expect(m.reg(2)).toBe(0xffff0ff0n);
    expect(exec(m, [...movabs(0, 0xffffffffn), 0x0f, 0x23, 0xf8, 0x0f, 0x21, 0xfb])).toBeNull(); // dr7 = -1
    expect(m.reg(3)).toBe(0xffff27ffn);
    expect(exec(m, [...movabs(0, 0xffff812345678000n), 0x0f, 0x23, 0xc8, 0x0f, 0x21, 0xcb])).toBeNull(); // dr1
    expect(m.reg(3)).toBe(0xffff812345678000n);
    expect(exec(m, [...movabs(0, 0x100000000n), 0x0f, 0x23, 0xf8])).toEqual(GP0);
    m.cpu.cr4 |= Cr4.DE;
    expect(exec(m, [0x0f, 0x21, 0xe0])).toEqual({ vector: 6, errorCode: 0 });
  });
});

describe('MSRs', () => {
  /** The SDM rules for the MSRs the model has: null when the write must #GP, else the value read back. */
  const rules: [number, (v: bigint) => bigint | null][] = [
    [0xc0000081, (v) => v],                                          // STAR
    [0xc0000082, (v) => (canonical(v) ? v : null)],                  // LSTAR
    [0xc0000083, (v) => (canonical(v) ? v : null)],                  // CSTAR
    [0xc0000084, (v) => (v >> 32n ? null : v)],                      // SFMASK
    [0xc0000100, (v) => (canonical(v) ? v : null)],                  // FS_BASE
    [0xc0000101, (v) => (canonical(v) ? v : null)],                  // GS_BASE
    [0xc0000102, (v) => (canonical(v) ? v : null)],                  // KERNEL_GS_BASE
    [0xc0000103, (v) => (v >> 32n ? null : v)],                      // TSC_AUX
    [0x174, (v) => v], [0x175, (v) => (canonical(v) ? v : null)], [0x176, (v) => (canonical(v) ? v : null)],
    [0x277, (v) => {                                                 // PAT: each byte UC WC WT WP WB UC-
      for (let i = 0n; i < 8n; i++) if (![0n, 1n, 4n, 5n, 6n, 7n].includes((v >> (8n * i)) & 0xffn)) return null;
      return v;
    }],
    [0x1b, (v) => ((v & 0x6ffn) || (v >> 40n) ? null : v)],          // APIC_BASE
    [0x2ff, (v) => ((v & ~0xcffn) || ![0n, 1n, 4n, 5n, 6n].includes(v & 0xffn) ? null : v)], // MTRRdefType
    [0x200, (v) => ((v & 0xf00n) || (v >> 40n) || ![0n, 1n, 4n, 5n, 6n].includes(v & 0xffn) ? null : v)], // PHYSBASE0
    [0x201, (v) => ((v & 0x7ffn) || (v >> 40n) ? null : v)],         // PHYSMASK0
    [0xfe, () => null],                                              // MTRRcap: read-only
    [0x12345, () => null], [0xc0000104, () => null], [0x40000000, () => null], // unknown
  ];
  it('wrmsr then rdmsr: the value back, or #GP(0) for reserved bits, bad types, non-canonical addresses, unknown MSRs', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: rules.length - 1 }), v64, (i, v) => {
      const [msr, rule] = rules[i];
      const m = longMachine();
      const f = exec(m, [...wrmsr(msr, v), ...rdmsr(msr)]);
      const want = rule(v);
      if (want === null) { expect(f).toEqual(GP0); return; }
      expect(f).toBeNull();
      expect((m.reg(2) << 32n) | m.reg(0)).toBe(want);
    }), { numRuns: 2000 });
  });

  it('EFER: reserved bits #GP, LMA is read-only, LME cannot change while paging is on', () => {
    const m = longMachine();
    expect(exec(m, [...wrmsr(0xc0000080, 0x1001n)])).toEqual(GP0);       // bit 12 reserved
    expect(exec(m, [...wrmsr(0xc0000080, 0x801n), ...rdmsr(0xc0000080)])).toEqual(GP0); // LME cleared under PG
    expect(exec(m, [...wrmsr(0xc0000080, 0x101n), ...rdmsr(0xc0000080)])).toBeNull(); // LMA written 0: kept
    expect(m.reg(0)).toBe(0x501n);
    expect(m.cpu.efer & Efer.NXE).toBe(0);
  });

  it('TSC writes move the virtual counter; unknown MSRs and CPL 3 are #GP(0)', () => {
    const m = longMachine();
    expect(exec(m, [...wrmsr(0x10, 0x123456789abn), 0x0f, 0x31])).toBeNull();
    const t = (m.reg(2) << 32n) | m.reg(0);
    expect(t >= 0x123456789abn && t < 0x123456789abn + 1000n).toBe(true);
    expect(exec(m, [...wrmsr(0x10, 0n), ...rdmsr(0x10)])).toBeNull();
    expect((m.reg(2) << 32n) | m.reg(0)).toBeLessThan(1000n);
  });

  it('rdtscp returns TSC_AUX in ECX', () => {
    const m = longMachine();
    expect(exec(m, [...wrmsr(0xc0000103, 0x42n), 0x0f, 0x01, 0xf9])).toBeNull();
    expect(m.reg(1)).toBe(0x42n);
  });
});

describe('descriptor tables', () => {
  it('lgdt/lidt then sgdt/sidt in 64-bit mode; a non-canonical base is #GP(0)', () => {
    fc.assert(fc.property(v64, fc.integer({ min: 0, max: 0xffff }), fc.boolean(), (base, limit, idt) => {
      const m = longMachine();
      const p = KSTACK - 0x1000;
      m.w16(p, limit); m.w64(p + 2, base);
      m.setReg(0, BigInt(p));
      const f = exec(m, [0x0f, 0x01, idt ? 0x18 : 0x10, 0x0f, 0x01, idt ? 0x48 : 0x40, 0x20]); // l?dt [rax]; s?dt [rax+0x20]
      if (!canonical(base)) { expect(f).toEqual(GP0); return; }
      if (!idt) { expect(f).toBeNull(); } // a bogus IDT only matters when something faults
      expect(m.r16(p + 0x20)).toBe(limit);
      expect(m.r64(p + 0x22)).toBe(base);
    }), { numRuns: 300 });
  });

  it('in 32-bit code lgdt with a 16-bit operand size takes a 24-bit base; sgdt stores 32 bits', () => {
    const m = longMachine();
    m.setSeg(Seg.CS, Sel.KCS32); m.cpu.mode = Mode.Prot32;
    const p = KSTACK - 0x1000;
    m.w16(p, 0x1234); m.w32(p + 2, 0x87654321);
    m.setReg(0, BigInt(p));
    expect(exec(m, [0x66, 0x0f, 0x01, 0x10, 0x0f, 0x01, 0x40, 0x20])).toBeNull();
    expect(m.cpu.gdtrBase).toBe(0x654321);
    expect(m.r32(p + 0x22)).toBe(0x654321);
  });

  it('ltr marks the TSS busy, and a busy or non-TSS selector is #GP(sel); lldt wants an LDT in the GDT', () => {
    const m = longMachine();
    m.gdt(20, [...(() => { const d = segDesc(0x5000, 0x67, 9, { s: 0 }); return d; })(), 0, 0]);
    expect(exec(m, [0x66, 0xb8, 0xa0, 0x00, 0x0f, 0x00, 0xd8, 0x0f, 0x00, 0xcb])).toBeNull(); // ltr ax; str ebx
    expect(m.cpu.seg.sel[Seg.TR]).toBe(0xa0);
    expect((m.r32(GDT + 0xa4) >> 8) & 0xf).toBe(0xb);
    expect(m.reg(3)).toBe(0xa0n);
    expect(exec(m, [0x66, 0xb8, 0xa0, 0x00, 0x0f, 0x00, 0xd8])).toEqual({ vector: 13, errorCode: 0xa0 });
    expect(exec(m, [0x66, 0xb8, 0x10, 0x00, 0x0f, 0x00, 0xd8])).toEqual({ vector: 13, errorCode: 0x10 });
    expect(exec(m, [0x31, 0xc0, 0x0f, 0x00, 0xd8])).toEqual(GP0);
    expect(exec(m, [0x66, 0xb8, 0xa0, 0x00, 0x0f, 0x00, 0xd0])).toEqual({ vector: 13, errorCode: 0xa0 }); // lldt of a TSS
    expect(exec(m, [0x66, 0xb8, 0x4c, 0x00, 0x0f, 0x00, 0xd0])).toEqual({ vector: 13, errorCode: 0x4c }); // TI = 1
    expect(exec(m, [0x66, 0xb8, 0x48, 0x00, 0x0f, 0x00, 0xd0, 0x0f, 0x00, 0xc1])).toBeNull();            // lldt; sldt ecx
    expect(m.reg(1)).toBe(0x48n);
    expect(exec(m, [0x31, 0xc0, 0x0f, 0x00, 0xd0])).toBeNull(); // lldt 0: LDTR unusable
    expect(m.cpu.seg.attr[Seg.LDTR]).toBe(0);
  });

  it('a 64-bit TSS with a non-canonical base is #GP(sel)', () => {
    const m = longMachine();
    m.gdt(20, [...segDesc(0x5000, 0x67, 9, { s: 0 }), 0x8000, 0]);
    expect(exec(m, [0x66, 0xb8, 0xa0, 0x00, 0x0f, 0x00, 0xd8])).toEqual({ vector: 13, errorCode: 0xa0 });
  });
});

/** lar/lsl/verr/verw over random descriptors: a model of the SDM tables. */
describe('lar lsl verr verw', () => {
  interface Out { lar: bigint | null; lsl: bigint | null; verr: boolean; verw: boolean }
  function model(lo: number, hi: number, cpl: number, rpl: number, long: boolean): Out {
    const acc = (hi >>> 8) & 0xff, s = (acc >> 4) & 1, type = acc & 0xf, dpl = (acc >> 5) & 3;
    const code = s === 1 && (type & 8) !== 0, conforming = code && (type & 4) !== 0;
    const priv = conforming || (dpl >= cpl && dpl >= rpl);
    const larTypes = long ? [2, 9, 0xb, 0xc] : [1, 2, 3, 4, 5, 9, 0xb, 0xc];
    const lslTypes = long ? [2, 9, 0xb] : [1, 2, 3, 9, 0xb];
    const okLar = priv && (s === 1 || larTypes.includes(type));
    const okLsl = priv && (s === 1 || lslTypes.includes(type));
    const raw = (lo & 0xffff) | (hi & 0xf0000);
    const limit = (hi & 0x800000) ? BigInt(raw) * 4096n + 4095n : BigInt(raw);
    return {
      lar: okLar ? BigInt((hi & 0x00ffff00) >>> 0) : null,
      lsl: okLsl ? limit & 0xffffffffn : null,
      verr: s === 1 && priv && (!code || (type & 2) !== 0),
      verw: s === 1 && !code && (type & 2) !== 0 && priv,
    };
  }
  it('match the model at every CPL and RPL, in 64-bit and 32-bit code', () => {
    fc.assert(fc.property(
      fc.integer(), fc.integer(), fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 3 }), fc.boolean(), fc.boolean(),
      (lo, hi, cpl, rpl, long, outside) => {
        const m = longMachine();
        m.gdt(40, [lo, hi]);
        if (!long) { m.setSeg(Seg.CS, Sel.KCS32); m.cpu.mode = Mode.Prot32; m.cpu.efer &= ~Efer.LMA; }
        const sel = (outside ? 0x1000 : 40 * 8) | rpl;
        m.cpu.cpl = cpl;
        // lar ebx, ax; setz dl? (no setcc needed: ZF via pushf) -> use lahf-free: store ZF with setz
        m.setReg(0, BigInt(sel));
        m.setReg(3, 0xdeadn); m.setReg(5, 0xbeefn);
        const code = [0x0f, 0x02, 0xd8, 0x0f, 0x94, 0xc1, 0x0f, 0x03, 0xe8, 0x0f, 0x94, 0xc6, 0x0f, 0x00, 0xe0, 0x0f, 0x94, 0xc2, 0x0f, 0x00, 0xe8, 0x0f, 0x94, 0xc5];
        // lar ebx,eax; setz cl; lsl ebp,eax; setz dh; verr ax; setz dl; verw ax; setz ch
        m.bytes(CODE, [...code, 0xf4]);
        m.cpu.rip = CODE;
        // hlt needs CPL 0: run exactly the 8 instructions.
        m.cpu.idtrLimit = 0;
        expect(m.run(8)).toBe(Stop.Budget);
        const want: Out = outside ? { lar: null, lsl: null, verr: false, verw: false } : model(lo, hi, cpl, rpl, long);
        const rcx = m.reg(1), rdx = m.reg(2);
        expect(rcx & 0xffn).toBe(want.lar !== null ? 1n : 0n);
        expect(m.reg(3)).toBe(want.lar ?? 0xdeadn);
        expect((rdx >> 8n) & 0xffn).toBe(want.lsl !== null ? 1n : 0n);
        expect(m.reg(5)).toBe(want.lsl ?? 0xbeefn);
        expect(rdx & 0xffn).toBe(want.verr ? 1n : 0n);
        expect((rcx >> 8n) & 0xffn).toBe(want.verw ? 1n : 0n);
      }), { numRuns: 2000 });
  });
});

describe('xgetbv / xsetbv', () => {
  const xsaveModel = () => (mem: ConstructorParameters<typeof Cpu>[0]) => new Cpu(mem, { model: new CpuModel({ leaf1Ecx: 1 << 26 }) });
  it('#UD without CR4.OSXSAVE; CR4.OSXSAVE is reserved without XSAVE in CPUID', () => {
    const m = longMachine();
    expect(exec(m, [0x31, 0xc9, 0x0f, 0x01, 0xd0])).toEqual({ vector: 6, errorCode: 0 });
    expect(exec(m, [0x0f, 0x20, 0xe0, 0x0d, ...le(0x40000, 4), 0x0f, 0x22, 0xe0])).toEqual(GP0);
  });
  it('XCR0 takes x87 (required) and SSE only; ECX must be 0', () => {
    const m = longMachine(xsaveModel());
    expect(exec(m, [0x0f, 0x20, 0xe0, 0x0d, ...le(0x40000, 4), 0x0f, 0x22, 0xe0])).toBeNull();
    fc.assert(fc.property(fc.bigInt({ min: 0n, max: M64 }), fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 3 })), (v, ecx) => {
      const f = exec(m, [0xb8, ...le(v & 0xffffffffn, 4), 0xba, ...le(v >> 32n, 4), 0xb9, ...le(ecx, 4), 0x0f, 0x01, 0xd1]);
      if (ecx !== 0 || (v & ~3n) !== 0n || !(v & 1n)) { expect(f).toEqual(GP0); return; }
      expect(f).toBeNull();
      expect(exec(m, [0x31, 0xc9, 0x0f, 0x01, 0xd0])).toBeNull();
      expect((m.reg(2) << 32n) | m.reg(0)).toBe(v);
    }), { numRuns: 300 });
  });
});

describe('invlpg / invpcid', () => {
  it('invpcid is #UD without CPUID support; with it, checks type and descriptor and flushes', () => {
    expect(exec(longMachine(), [0x66, 0x0f, 0x38, 0x82, 0x08])).toEqual({ vector: 6, errorCode: 0 });
    const m = longMachine((mem) => new Cpu(mem, { model: new CpuModel({ leaf7Ebx: 1 << 10 }) }));
    const flushes: (number | undefined)[] = [];
    m.mem.flush = (lin?: number) => { flushes.push(lin); };
    const d = KSTACK - 0x1000;
    m.setReg(0, BigInt(d));
    const inv = (type: number, pcid: bigint, lin: bigint) => {
      m.w64(d, pcid); m.w64(d + 8, lin);
      m.setReg(1, BigInt(type));
      return exec(m, [0x66, 0x0f, 0x38, 0x82, 0x08]); // invpcid rcx, [rax]
    };
    expect(inv(0, 0n, 0x7000n)).toBeNull();
    expect(inv(0, 0n, 0x800000000000n)).toEqual(GP0); // non-canonical
    expect(inv(0, 5n, 0x7000n)).toEqual(GP0);         // PCID without CR4.PCIDE
    expect(inv(1, 0x1000n, 0n)).toEqual(GP0);         // reserved descriptor bits
    expect(inv(4, 0n, 0n)).toEqual(GP0);              // type
    expect(inv(2, 0n, 0n)).toBeNull();
    expect(flushes).toEqual([0x7000, undefined]);
    toUserThen(m);
    function toUserThen(mm: typeof m): void { mm.cpu.cpl = 3; expect(exec(mm, [0x66, 0x0f, 0x38, 0x82, 0x08])).toEqual(GP0); }
  });
});

describe('port I/O', () => {
  it('CPL <= IOPL: any port; else the TSS bitmap decides, for every byte of the access', () => {
    // Allow ports 0x80..0x87 (byte 0x10 of the bitmap = 0), deny the rest.
    const go = (code: number[], iopl: number) => {
      const mm = longMachine();
      mm.w8(TSS + 0x68 + 0x10, 0);
      mm.bytes(UCODE, code);
      const sp = KSTACK - 0x200;
      [BigInt(UCODE), BigInt(Sel.UCS), BigInt(0x202 | (iopl << 12)), BigInt(USTACK), BigInt(Sel.USS)].forEach((v, i) => mm.w64(sp + i * 8, v));
      mm.setReg(4, BigInt(sp));
      mm.setReg(2, 0x86n); mm.setReg(0, 0x1122334455667788n);
      mm.bytes(CODE, [0x48, 0xcf]);
      mm.cpu.rip = CODE;
      mm.run(1);
      mm.cpu.idtrLimit = 0;
      const s = mm.run(1);
      return { fault: s === Stop.Fault ? mm.cpu.stopFault!.vector : null, log: mm.portLog, rax: mm.reg(0) };
    };
    expect(go([0xee], 0)).toEqual({ fault: null, log: [[0x86, 1, 0x88]], rax: 0x1122334455667788n }); // out dx, al
    expect(go([0x66, 0xef], 0)).toEqual({ fault: null, log: [[0x86, 2, 0x7788]], rax: 0x1122334455667788n }); // 0x86..0x87
    expect(go([0xef], 0).fault).toBe(13);                      // 0x86..0x89: 0x88 denied
    expect(go([0xe6, 0x90], 0).fault).toBe(13);                // out 0x90, al
    expect(go([0xe6, 0x90], 3).log).toEqual([[0x90, 1, 0x88]]); // IOPL 3
    expect(go([0xed], 3).rax).toBe(BigInt((0x1234567 ^ 0x86) >>> 0)); // in eax, dx zero-extends
    expect(go([0xec], 0).rax).toBe(0x1122334455667700n | BigInt((0x1234567 ^ 0x86) & 0xff));
  });
});
