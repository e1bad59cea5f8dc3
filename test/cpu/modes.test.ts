// The non-64-bit modes: a 32-bit protected-mode program with non-zero segment bases, limit
// checks on control transfers, protected-mode IDT delivery with and without a privilege
// change, 16-bit gates, a 32-bit call gate copying parameters, 16-bit protected-mode code
// (16-bit addressing, default SS for BP, a 16-bit stack that wraps), real-mode interrupts,
// and the boot path real mode -> protected mode -> long mode.
import { describe, expect, it } from 'vitest';
import { Stop } from '../../src/cpu/cpu.js';
import { setSegCache } from '../../src/cpu/segments.js';
import { Efer, Mode, Seg } from '../../src/cpu/state.js';
import { GDT, HANDLERS, IDT, KSTACK, Machine, TSS, code32, data32, gate32, le, segDesc, vectorTaken } from './system.kit.js';

const S = { KCS: 0x08, KDS: 0x10, UCS: 0x1b, UDS: 0x23, TSS: 0x28, SEGCS: 0x30, SEGDS: 0x38, SEGSS: 0x40, CS16: 0x48, SS16: 0x50, GATE: 0x5b, SEGES: 0x60 };
const CODE = 0x10000, UCODE = 0x20000, USTACK = 0x70000;

/** 32-bit protected mode at CPL 0, paging off: flat kernel and user segments, segmented ones
 *  with bases 0x40000 (code), 0x50000 (data), 0x60000 (stack), 0x58000 (ES), a 32-bit TSS
 *  (SS0:ESP0 = 0x10:KSTACK), and an IDT of 32-bit interrupt gates to HANDLERS + 16v (hlt). */
function protMachine(): Machine {
  const m = new Machine(1);
  const c = m.cpu;
  m.gdt(1, code32(0)); m.gdt(2, data32(0)); m.gdt(3, code32(3)); m.gdt(4, data32(3));
  m.gdt(5, segDesc(TSS, 0x67, 0xb, { s: 0 }));
  m.gdt(6, segDesc(0x40000, 0xffff, 0xb, { db: 1 }));
  m.gdt(7, segDesc(0x50000, 0xffff, 0x3, { db: 1 }));
  m.gdt(8, segDesc(0x60000, 0xffff, 0x3, { db: 1 }));
  m.gdt(9, segDesc(0x40000, 0xffff, 0xb, {}));
  m.gdt(10, segDesc(0x60000, 0xffff, 0x3, {}));
  m.gdt(11, gate32(S.KCS, HANDLERS + 0x1000, 0xc, { dpl: 3, params: 2 }));
  m.gdt(12, segDesc(0x58000, 0xffff, 0x3, { db: 1 }));
  m.w32(TSS + 4, KSTACK); m.w16(TSS + 8, S.KDS); m.w16(TSS + 0x66, 0x68);
  for (let v = 0; v < 256; v++) { m.idt(v, gate32(S.KCS, HANDLERS + v * 16, 0xe)); m.w8(HANDLERS + v * 16, 0xf4); }
  c.idtrBase = IDT; c.idtrLimit = 256 * 8 - 1;
  c.efer = 0; c.cr0 = 0x11; c.cr4 = 0;
  m.setSeg(Seg.CS, S.KCS); m.setSeg(Seg.SS, S.KDS); m.setSeg(Seg.DS, S.KDS); m.setSeg(Seg.ES, S.KDS);
  setSegCache(c, Seg.FS, 0, null); setSegCache(c, Seg.GS, 0, null);
  m.setSeg(Seg.TR, S.TSS);
  c.mode = Mode.Prot32; c.cpl = 0;
  c.rflags = 2;
  m.setReg(4, BigInt(KSTACK - 0x100));
  c.rip = CODE;
  return m;
}

describe('32-bit protected mode with segment bases', () => {
  it('CS DS SS ES bases apply to fetch, data, stack and overrides; call pushes the offset', () => {
    const m = protMachine();
    const c = m.cpu;
    m.setSeg(Seg.CS, S.SEGCS); m.setSeg(Seg.DS, S.SEGDS); m.setSeg(Seg.SS, S.SEGSS); m.setSeg(Seg.ES, S.SEGES);
    m.w32(0x58004, 0xcafef00d);
    m.bytes(0x40000, [
      0xb8, ...le(0x11223344, 4),        // mov eax, 0x11223344
      0xa3, ...le(0x10, 4),              // mov [0x10], eax        -> 0x50010
      0xbc, ...le(0x1000, 4),            // mov esp, 0x1000
      0x50,                              // push eax               -> 0x60ffc
      0x26, 0x8b, 0x1d, ...le(4, 4),     // mov ebx, [es:4]        <- 0x58004
      0xbd, ...le(0x800, 4),             // mov ebp, 0x800
      0x89, 0x45, 0x04,                  // mov [ebp+4], eax       -> 0x60804 (SS: ebp-based)
      0xe8, 0, 0, 0, 0,                  // call +0
      0x59,                              // pop ecx: the offset of this pop
      0xea, ...le(CODE, 4), S.KCS, 0,    // jmp far 0x08:CODE (flat)
    ]);
    m.bytes(CODE, [0xf4]);
    c.rip = 0;
    expect(m.run(20)).toBe(Stop.Halt);
    expect(m.r32(0x50010)).toBe(0x11223344);
    expect(m.r32(0x60ffc)).toBe(0x11223344);
    expect(m.r32(0x60804)).toBe(0x11223344);
    expect(m.reg(3)).toBe(0xcafef00dn);
    expect(m.reg(1)).toBe(0x24n);
    expect(c.rip).toBe(CODE + 1);
    expect(c.seg.sel[Seg.CS]).toBe(S.KCS);
  });

  it('a jump past the CS limit is #GP(0), near or far', () => {
    const m = protMachine();
    m.setSeg(Seg.CS, S.SEGCS);
    m.bytes(0x40000, [0xe9, ...le(0x20000, 4)]);
    m.cpu.rip = 0;
    m.cpu.idtrLimit = 0;
    expect(m.run(2)).toBe(Stop.Fault);
    expect([m.cpu.stopFault!.vector, m.cpu.stopFault!.errorCode, m.cpu.rip]).toEqual([13, 0, 0]);
    m.bytes(0x40000, [0xea, ...le(0x12345, 4), S.SEGCS, 0]);
    expect(m.run(2)).toBe(Stop.Fault);
    expect([m.cpu.stopFault!.vector, m.cpu.stopFault!.errorCode]).toEqual([13, 0]);
  });

  it('far call and retf between code segments push and pop CS:EIP', () => {
    const m = protMachine();
    m.bytes(CODE, [0x9a, ...le(0x100, 4), S.SEGCS, 0, 0xf4]); // call far 0x30:0x100; hlt
    m.bytes(0x40100, [0xcb]);                                  // retf
    expect(m.runTo(0x100, 5)).toBe(true);
    expect(m.cpu.seg.sel[Seg.CS]).toBe(S.SEGCS);
    expect(m.stackQ(0) & 0xffffffffn).toBe(BigInt(CODE + 7));
    expect((m.stackQ(0) >> 32n) & 0xffffn).toBe(BigInt(S.KCS));
    expect(m.run(5)).toBe(Stop.Halt);
    expect(m.cpu.rip).toBe(CODE + 8);
  });
});

describe('protected-mode interrupts', () => {
  it('a fault at CPL 0 pushes EFLAGS CS EIP and the error code on SS:ESP (SS base applied)', () => {
    const m = protMachine();
    m.setSeg(Seg.SS, S.SEGSS);
    m.setReg(4, 0x1000n);
    m.cpu.rflags = 0x202;
    m.bytes(CODE, [0x66, 0xb8, 0x2b, 0x00, 0x8e, 0xd8]); // mov ds, 0x2b (a TSS: #GP(0x28))
    expect(m.run(5)).toBe(Stop.Halt);
    expect(vectorTaken(m)).toBe(13);
    expect(m.cpu.r[8]).toBe(0x1000 - 16);
    expect([m.r32(0x60ff0), m.r32(0x60ff4), m.r32(0x60ff8), m.r32(0x60ffc)]).toEqual([0x28, CODE + 4, S.KCS, 0x202]);
    expect(m.cpu.rflags & 0x200).toBe(0);
  });

  it('from CPL 3 through the TSS (SS0:ESP0), and iretd back to CPL 3 nulls DPL 0 data segments', () => {
    const m = protMachine();
    m.idt(0x80, gate32(S.KCS, HANDLERS + 0x800, 0xe, { dpl: 3 }));
    m.bytes(UCODE, [0xcd, 0x80]);
    const sp = KSTACK - 0x200;
    [UCODE, S.UCS, 0x202, USTACK, S.UDS].forEach((v, i) => m.w32(sp + i * 4, v));
    m.setReg(4, BigInt(sp));
    m.bytes(CODE, [0xcf]); // iretd
    m.run(1);
    expect(m.cpu.cpl).toBe(3);
    expect(m.cpu.seg.sel[Seg.DS]).toBe(0);
    expect(m.cpu.seg.sel[Seg.SS]).toBe(S.UDS);
    expect(m.run(5)).toBe(Stop.Halt);
    expect(vectorTaken(m)).toBe(0x80);
    expect(m.cpu.seg.sel[Seg.SS]).toBe(S.KDS);
    expect(m.cpu.r[8]).toBe(KSTACK - 20);
    const f = [0, 4, 8, 12, 16].map((o) => m.r32(KSTACK - 20 + o));
    expect(f).toEqual([UCODE + 2, S.UCS, 0x202, USTACK, S.UDS]);
  });

  it('a 16-bit interrupt gate pushes 16-bit FLAGS CS IP', () => {
    const m = protMachine();
    m.idt(0x81, gate32(S.KCS, 0x810, 0x6)); // a 16-bit gate holds a 16-bit offset
    m.bytes(0x810, [0xf4]);
    m.bytes(CODE, [0x90, 0xcd, 0x81]);
    m.cpu.rflags = 0x202;
    expect(m.run(5)).toBe(Stop.Halt);
    expect(m.cpu.r[8]).toBe(KSTACK - 0x100 - 6);
    const b = KSTACK - 0x100 - 6;
    expect([m.r16(b), m.r16(b + 2), m.r16(b + 4)]).toEqual([(CODE + 3) & 0xffff, S.KCS, 0x202]);
  });

  it('a 32-bit call gate to CPL 0 copies its parameters to the inner stack; retf 8 returns to CPL 3', () => {
    const m = protMachine();
    m.bytes(HANDLERS + 0x1000, [0xca, 0x08, 0x00]); // retf 8
    m.bytes(UCODE, [0x68, ...le(0xaaaa, 4), 0x68, ...le(0xbbbb, 4), 0x9a, 0, 0, 0, 0, S.GATE, 0, 0x90]);
    const sp = KSTACK - 0x200;
    [UCODE, S.UCS, 0x202, USTACK, S.UDS].forEach((v, i) => m.w32(sp + i * 4, v));
    m.setReg(4, BigInt(sp));
    m.bytes(CODE, [0xcf]);
    m.run(1);
    expect(m.runTo(HANDLERS + 0x1000, 10)).toBe(true);
    expect(m.cpu.cpl).toBe(0);
    const e = KSTACK - 24;
    expect(m.cpu.r[8]).toBe(e);
    expect([0, 4, 8, 12, 16, 20].map((o) => m.r32(e + o))).toEqual([UCODE + 17, S.UCS, 0xbbbb, 0xaaaa, USTACK - 8, S.UDS]);
    m.run(1);
    expect(m.cpu.cpl).toBe(3);
    expect(m.cpu.rip).toBe(UCODE + 17);
    expect(m.cpu.r[8]).toBe(USTACK);
    expect(m.cpu.seg.sel[Seg.SS]).toBe(S.UDS);
  });
});

describe('faults during delivery', () => {
  /** Run user code at CPL 3 and report the first event after the original one (the fault
   *  its delivery raised), through the exception hook. */
  function secondFault(m: Machine, user: number[]): [number, number] | null {
    const seen: [number, number][] = [];
    m.cpu.hooks.exception = (c, v, e) => { seen.push([v, e]); if (seen.length > 1) c.stopRequest = true; return seen.length > 1; };
    m.bytes(UCODE, user);
    const sp = KSTACK - 0x200;
    [UCODE, S.UCS, 0x202, USTACK, S.UDS].forEach((v, i) => m.w32(sp + i * 4, v));
    m.setReg(4, BigInt(sp));
    m.bytes(CODE, [0xcf]);
    m.run(1);
    m.run(2);
    return seen[1] ?? null;
  }
  it('a bad SS0 in the TSS is #TS(SS0) (EXT 0 for int n, 1 for an exception)', () => {
    const m = protMachine();
    m.idt(0x80, gate32(S.KCS, HANDLERS + 0x800, 0xe, { dpl: 3 }));
    m.w16(TSS + 8, S.KCS);
    expect(secondFault(m, [0xcd, 0x80])).toEqual([10, S.KCS]);
    const m2 = protMachine();
    m2.w16(TSS + 8, S.UDS); // RPL 3 for CPL 0
    expect(secondFault(m2, [0x0f, 0x0b])).toEqual([10, 0x20 | 1]);
  });
  it('a not-present handler segment is #NP(sel|EXT); a TSS that cannot hold SS0:ESP0 is #TS(TR|EXT)', () => {
    const m = protMachine();
    m.gdt(13, segDesc(0, 0xfffff, 0xb, { db: 1, g: 1, p: 0 }));
    m.idt(6, gate32(0x68, HANDLERS + 96, 0xe));
    expect(secondFault(m, [0x0f, 0x0b])).toEqual([11, 0x68 | 1]);
    const m2 = protMachine();
    m2.cpu.seg.limit[Seg.TR] = 8; // SS0 (8..9) is past it
    expect(secondFault(m2, [0x0f, 0x0b])).toEqual([10, S.TSS | 1]);
  });
});

describe('16-bit protected mode', () => {
  it('16-bit addressing, BP defaults to SS, operand-size and address-size prefixes, a wrapping 16-bit stack', () => {
    const m = protMachine();
    const c = m.cpu;
    m.setSeg(Seg.CS, S.CS16); m.setSeg(Seg.DS, S.SEGDS); m.setSeg(Seg.SS, S.SS16);
    c.mode = Mode.Prot16;
    m.w16(0x50124, 0xbeef);
    m.w32(0x50300, 0x76543210);
    m.bytes(0x40000, [
      0xbb, 0x00, 0x01,             // mov bx, 0x100
      0xbe, 0x20, 0x00,             // mov si, 0x20
      0x8b, 0x40, 0x04,             // mov ax, [bx+si+4]     <- DS:0x124
      0xbd, 0x00, 0x02,             // mov bp, 0x200
      0xbf, 0x10, 0x00,             // mov di, 0x10
      0x89, 0x43, 0xfe,             // mov [bp+di-2], ax     -> SS:0x20e
      0x66, 0xb9, ...le(0x12345678, 4), // mov ecx, 0x12345678
      0xbc, 0x00, 0x00,             // mov sp, 0
      0x50,                         // push ax: SP wraps to 0xfffe
      0x66, 0x51,                   // push ecx: SP 0xfffa
      0x66, 0xbb, ...le(0x300, 4),  // mov ebx, 0x300
      0x67, 0x8b, 0x13,             // mov dx, [ebx] (32-bit addressing)
      0xe8, 0x00, 0x00,             // call +0: pushes a 16-bit IP
      0xf4,
    ]);
    c.rip = 0;
    expect(m.run(20)).toBe(Stop.Halt);
    expect(m.reg(0) & 0xffffn).toBe(0xbeefn);
    expect(m.r16(0x6020e)).toBe(0xbeef);
    expect(m.r16(0x6fffe)).toBe(0xbeef);
    expect(m.r32(0x6fffa)).toBe(0x12345678);
    expect(m.reg(2) & 0xffffn).toBe(0x3210n);
    expect(c.r[8] & 0xffff).toBe(0xfff8);
    expect(m.r16(0x6fff8)).toBe(0x2a);
  });
});

describe('real mode and the boot path', () => {
  function realMachine(): Machine {
    const m = new Machine(1);
    const c = m.cpu;
    c.cr0 = 0x10; c.efer = 0; c.cr4 = 0;
    for (let s = 0; s < 6; s++) { const g = c.seg; g.sel[s] = 0; g.baseLo[s] = 0; g.baseHi[s] = 0; g.limit[s] = 0xffff; g.attr[s] = s === Seg.CS ? 0x9b : 0x93; }
    c.mode = Mode.Real; c.cpl = 0;
    c.idtrBase = 0; c.idtrLimit = 0x3ff;
    c.rflags = 2;
    return m;
  }

  it('int n through the IVT and iret back', () => {
    const m = realMachine();
    m.w16(0x10 * 4, 0x0010); m.w16(0x10 * 4 + 2, 0x0800); // vector 0x10 -> 0800:0010
    m.bytes(0x8010, [0xb8, 0x34, 0x12, 0xcf]);             // mov ax, 0x1234; iret
    m.bytes(0x7c00, [0xcd, 0x10, 0xf4]);
    m.setReg(4, 0x7000n);
    m.cpu.rip = 0x7c00;
    m.cpu.rflags = 0x202;
    expect(m.runTo(0x10, 2)).toBe(true);
    expect(m.cpu.seg.sel[Seg.CS]).toBe(0x800);
    expect([m.r16(0x6ffa), m.r16(0x6ffc), m.r16(0x6ffe)]).toEqual([0x7c02, 0, 0x202]);
    expect(m.cpu.rflags & 0x200).toBe(0);
    expect(m.run(10)).toBe(Stop.Halt);
    expect(m.cpu.rip).toBe(0x7c03);
    expect(m.reg(0)).toBe(0x1234n);
    expect(m.cpu.rflags & 0x200).toBe(0x200);
  });

  it('real mode -> 32-bit protected mode -> long mode, as a boot loader does it', () => {
    const m = realMachine();
    const c = m.cpu;
    m.gdt(1, code32(0)); m.gdt(2, data32(0)); m.gdt(3, segDesc(0, 0xfffff, 0xb, { l: 1, g: 1 }));
    m.w16(0x7e00, 0x1f); m.w32(0x7e02, GDT);
    const PM = 0x7c20, LM = 0x7c80;
    m.bytes(0x7c00, [
      0x0f, 0x01, 0x16, 0x00, 0x7e,       // lgdt [0x7e00]
      0x0f, 0x20, 0xc0, 0x0c, 0x01,       // mov eax, cr0; or al, 1
      0x0f, 0x22, 0xc0,                   // mov cr0, eax: PE (still 16-bit code)
      0x66, 0xea, ...le(PM, 4), 0x08, 0x00, // jmp far dword 0x08:PM
    ]);
    m.bytes(PM, [
      0x66, 0xb8, 0x10, 0x00, 0x8e, 0xd8, 0x8e, 0xd0, // mov ax, 0x10; mov ds, ax; mov ss, ax
      0xbc, ...le(0x9000, 4),                         // mov esp, 0x9000
      0x0f, 0x20, 0xe0, 0x83, 0xc8, 0x20, 0x0f, 0x22, 0xe0, // cr4.PAE
      0xb8, ...le(0x20000, 4), 0x0f, 0x22, 0xd8,      // cr3
      0xb9, ...le(0xc0000080, 4), 0x0f, 0x32, 0x0d, ...le(0x100, 4), 0x0f, 0x30, // EFER.LME
      0x0f, 0x20, 0xc0, 0x0d, ...le(0x80000000, 4), 0x0f, 0x22, 0xc0, // CR0.PG
      0xea, ...le(LM, 4), 0x18, 0x00,                 // jmp far 0x18:LM
    ]);
    m.bytes(LM, [0x48, 0xb8, ...le(0x1122334455667788n, 8), 0xf4]);
    c.rip = 0x7c00;
    expect(m.runTo(0x7c0d, 10)).toBe(true);
    expect(c.mode).toBe(Mode.Prot16);
    expect(m.runTo(PM, 10)).toBe(true);
    expect(c.mode).toBe(Mode.Prot32);
    expect(m.runTo(LM, 40)).toBe(true);
    expect(c.mode).toBe(Mode.Long64);
    expect(c.efer & (Efer.LME | Efer.LMA)).toBe(Efer.LME | Efer.LMA);
    expect(m.run(5)).toBe(Stop.Halt);
    expect(m.reg(0)).toBe(0x1122334455667788n);
    expect(c.seg.sel[Seg.SS]).toBe(0x10);
  });
});
