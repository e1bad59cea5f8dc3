// Long-mode system behaviour at CPL 0 and across privilege levels, checked against the SDM:
// IDT delivery frames (privilege change, IST, error codes, alignment), iretq to CPL 3 and to
// compatibility mode, syscall/sysret, call gates and far returns to an outer level, swapgs,
// and the exceptions bad selectors raise.
import { describe, expect, it } from 'vitest';
import { Stop } from '../../src/cpu/cpu.js';
import { Efer, Mode, Seg } from '../../src/cpu/state.js';
import { CODE, HANDLERS, ISTACK, KSTACK, Machine, Sel, UCODE, USTACK, gate64, le, longMachine, vectorTaken } from './system.kit.js';

const RFLAGS_IF = 0x200n;

/** Put code at CODE (kernel) and run until the CPU halts; returns the stop reason. */
function kernel(m: Machine, code: number[], n = 100): Stop {
  m.bytes(CODE, code);
  m.cpu.rip = CODE;
  return m.run(n);
}

/** Enter user mode (64-bit, CPL 3) at UCODE with the given code, through iretq. */
function toUser(m: Machine, user: number[], cs: number = Sel.UCS, rflags = 0x202n): void {
  m.bytes(UCODE, user);
  const sp = KSTACK - 0x200;
  [BigInt(UCODE), BigInt(cs), rflags, BigInt(USTACK), BigInt(Sel.USS)].forEach((v, i) => m.w64(sp + i * 8, v));
  m.setReg(4, BigInt(sp));
  m.bytes(CODE, [0x48, 0xcf]); // iretq
  m.cpu.rip = CODE;
  m.run(1);
}

describe('IDT delivery in long mode', () => {
  it('a fault at CPL 0 pushes SS RSP RFLAGS CS RIP and the error code on a 16-byte aligned stack', () => {
    const m = longMachine();
    m.setReg(4, BigInt(KSTACK - 0x108)); // not 16-byte aligned
    m.cpu.rflags = 0x2 | 0x200 | 0x1;
    // mov ax, 0x6b; mov ds, ax (index 13, not present data DPL 0 with RPL 3 -> #GP? no: DPL 0 < RPL 3 -> #GP(0x68))
    expect(kernel(m, [0x66, 0xb8, 0x6b, 0x00, 0x8e, 0xd8])).toBe(Stop.Halt);
    expect(vectorTaken(m)).toBe(13);
    const top = KSTACK - 0x110; // aligned down from 0x...ef8
    expect(m.cpu.r[8]).toBe(top - 48);
    expect(m.stackQ(0)).toBe(0x68n);                 // error code: the selector
    expect(m.stackQ(1)).toBe(BigInt(CODE + 4));      // the faulting mov ds
    expect(m.stackQ(2)).toBe(BigInt(Sel.KCS));
    expect(m.stackQ(3)).toBe(0x203n);                // RFLAGS as it was
    expect(m.stackQ(4)).toBe(BigInt(KSTACK - 0x108)); // the unaligned RSP
    expect(m.stackQ(5)).toBe(BigInt(Sel.KSS));
    expect(m.cpu.rflags & 0x200).toBe(0);            // interrupt gate: IF cleared
    expect(m.cpu.seg.sel[Seg.SS]).toBe(Sel.KSS);     // no privilege change: SS kept
  });

  it('a not-present data segment is #NP(sel) and a trap gate keeps IF', () => {
    const m = longMachine();
    m.idt(11, gate64(Sel.KCS, BigInt(HANDLERS + 11 * 16), 0xf));
    m.cpu.rflags = 0x202;
    expect(kernel(m, [0x66, 0xb8, 0x68, 0x00, 0x8e, 0xd8])).toBe(Stop.Halt);
    expect(vectorTaken(m)).toBe(11);
    expect(m.stackQ(0)).toBe(0x68n);
    expect(m.cpu.rflags & 0x200).toBe(0x200);
  });

  it('IST: the stack comes from the TSS even without a privilege change, SS unchanged', () => {
    const m = longMachine();
    m.idt(6, gate64(Sel.KCS, BigInt(HANDLERS + 6 * 16), 0xe, { ist: 1 }));
    expect(kernel(m, [0x90, 0x0f, 0x0b])).toBe(Stop.Halt); // nop; ud2
    expect(vectorTaken(m)).toBe(6);
    expect(m.cpu.r[8]).toBe(ISTACK - 40);
    expect(m.stackQ(0)).toBe(BigInt(CODE + 1));
    expect(m.stackQ(3)).toBe(BigInt(KSTACK - 0x100));
    expect(m.cpu.seg.sel[Seg.SS]).toBe(Sel.KSS);
  });

  it('from CPL 3: int n through a DPL 3 gate switches to RSP0 with a null SS, and iretq returns', () => {
    const m = longMachine();
    m.idt(0x80, gate64(Sel.KCS, BigInt(HANDLERS + 0x80 * 16), 0xe, { dpl: 3 }));
    // The 0x80 handler: iretq. The 0x81 handler: hlt (to look at the state after the return).
    m.bytes(HANDLERS + 0x80 * 16, [0x48, 0xcf]);
    m.idt(0x81, gate64(Sel.KCS, BigInt(HANDLERS + 0x81 * 16), 0xe, { dpl: 3 }));
    toUser(m, [0xcd, 0x80, 0xcd, 0x81]);
    expect(m.cpu.cpl).toBe(3);
    expect(m.cpu.rip).toBe(UCODE);
    m.run(1); // int 0x80
    expect(m.cpu.cpl).toBe(0);
    expect(m.cpu.seg.sel[Seg.SS]).toBe(0);
    expect(m.cpu.r[8]).toBe(KSTACK - 40);
    expect([0, 1, 2, 3, 4].map((i) => m.stackQ(i))).toEqual([BigInt(UCODE + 2), BigInt(Sel.UCS), 0x202n, BigInt(USTACK), BigInt(Sel.USS)]);
    expect(m.run(10)).toBe(Stop.Halt); // iretq, int 0x81, hlt
    expect(vectorTaken(m)).toBe(0x81);
    expect(m.stackQ(0)).toBe(BigInt(UCODE + 4));
    expect(m.stackQ(3)).toBe(BigInt(USTACK));
  });

  it('int n to a DPL 0 gate from CPL 3 is #GP(vector*8+2); a missing gate for a fault is #NP(vector*8+3)', () => {
    const m = longMachine();
    toUser(m, [0xcd, 0x40]);
    expect(m.run(5)).toBe(Stop.Halt);
    expect(vectorTaken(m)).toBe(13);
    expect(m.stackQ(0)).toBe(BigInt(0x40 * 8 + 2));
    expect(m.stackQ(1)).toBe(BigInt(UCODE)); // the int instruction
    const m2 = longMachine();
    m2.idt(6, gate64(Sel.KCS, BigInt(HANDLERS + 96), 0xe, { p: 0 }));
    expect(kernel(m2, [0x0f, 0x0b])).toBe(Stop.Halt);
    expect(vectorTaken(m2)).toBe(11);
    expect(m2.stackQ(0)).toBe(BigInt(6 * 8 + 3));
  });

  it('a gate to a 32-bit code segment is #GP(sel|EXT); a vector past the IDT limit #GP(v*8+3)', () => {
    const m = longMachine();
    m.idt(6, gate64(Sel.KCS32, BigInt(HANDLERS + 96), 0xe));
    expect(kernel(m, [0x0f, 0x0b])).toBe(Stop.Halt);
    expect(vectorTaken(m)).toBe(13);
    expect(m.stackQ(0)).toBe(BigInt(Sel.KCS32 | 1));
    const m2 = longMachine();
    m2.cpu.idtrLimit = 6 * 16 - 1; // vector 6 just outside; 13 too: double fault -> stop
    expect(kernel(m2, [0x0f, 0x0b])).toBe(Stop.Fault);
    expect(m2.cpu.stopFault!.vector).toBe(8);
  });

  it('a TSS too short for RSP0 is #TS(TR|EXT)', () => {
    const m = longMachine();
    m.cpu.seg.limit[Seg.TR] = 8; // RSP0 (4..11) is past the limit
    toUser(m, [0x0f, 0x0b]);
    expect(m.run(5)).toBe(Stop.Fault); // #UD -> #TS, whose delivery fails the same way -> #DF -> triple fault
    // With #TS going to a conforming handler (no stack switch) the error code is visible.
    const m2 = longMachine();
    m2.cpu.seg.limit[Seg.TR] = 8;
    m2.idt(10, gate64(Sel.KCONF, BigInt(HANDLERS + 160), 0xe));
    toUser(m2, [0x0f, 0x0b]);
    expect(m2.runTo(HANDLERS + 160)).toBe(true);
    expect(m2.cpu.cpl).toBe(3);
    expect(m2.cpu.r[8]).toBe(USTACK - 48);
    expect([0, 1, 2].map((i) => m2.stackQ(i))).toEqual([BigInt(Sel.TSS | 1), BigInt(UCODE), BigInt(Sel.UCS)]);
  });
});

describe('faults during delivery in long mode', () => {
  it('a non-canonical RSP0 is #SS(EXT); a not-present handler segment #NP(sel|EXT)', () => {
    const seen: [number, number][] = [];
    const m = longMachine();
    m.cpu.hooks.exception = (c, v, e) => { seen.push([v, e]); if (seen.length > 1) c.stopRequest = true; return seen.length > 1; };
    m.w64(0x3000 + 4, 0x0000800000000000n);
    toUser(m, [0x0f, 0x0b]);
    m.run(1);
    expect(seen).toEqual([[6, 0], [12, 1]]);
    seen.length = 0;
    const m2 = longMachine();
    m2.cpu.hooks.exception = (c, v, e) => { seen.push([v, e]); if (seen.length > 1) c.stopRequest = true; return seen.length > 1; };
    m2.idt(6, gate64(Sel.KCS_NP, BigInt(HANDLERS + 96), 0xe));
    expect(kernel(m2, [0x0f, 0x0b], 1)).toBe(Stop.Request);
    expect(seen).toEqual([[6, 0], [11, Sel.KCS_NP | 1]]);
  });
});

describe('iretq', () => {
  it('to compatibility mode: CS.L = 0 gives 32-bit code; an interrupt from there uses the 64-bit IDT', () => {
    const m = longMachine();
    m.idt(0x80, gate64(Sel.KCS, BigInt(HANDLERS + 0x80 * 16), 0xe, { dpl: 3 }));
    // 32-bit code: mov eax, 0x12345678; int 0x80
    toUser(m, [0xb8, 0x78, 0x56, 0x34, 0x12, 0xcd, 0x80], Sel.UCS32);
    expect(m.cpu.mode).toBe(Mode.Prot32);
    expect(m.cpu.cpl).toBe(3);
    expect(m.cpu.long).toBe(true);
    expect(m.run(5)).toBe(Stop.Halt);
    expect(m.cpu.mode).toBe(Mode.Long64);
    expect(m.reg(0)).toBe(0x12345678n);
    expect([0, 1, 3, 4].map((i) => m.stackQ(i))).toEqual([BigInt(UCODE + 7), BigInt(Sel.UCS32), BigInt(USTACK), BigInt(Sel.USS)]);
  });

  it('to CPL 3 nulls DS ES FS GS that hold DPL 0 data, keeps the FS/GS base', () => {
    const m = longMachine();
    m.setSeg(Seg.DS, Sel.KSS); m.setSeg(Seg.ES, Sel.USS); m.setSeg(Seg.GS, Sel.KSS);
    m.cpu.seg.baseLo[Seg.GS] = 0x1234;
    toUser(m, [0x90]);
    expect(m.cpu.seg.sel[Seg.DS]).toBe(0);
    expect(m.cpu.seg.sel[Seg.ES]).toBe(Sel.USS);
    expect(m.cpu.seg.sel[Seg.GS]).toBe(0);
    expect(m.cpu.seg.baseLo[Seg.GS]).toBe(0x1234);
  });

  /** iretq from CPL 0 with the given frame; returns the fault that stops the CPU, if any. */
  function iretWith(frame: bigint[]): { vector: number; errorCode: number } | null {
    const m = longMachine();
    const sp = KSTACK - 0x200;
    frame.forEach((v, i) => m.w64(sp + i * 8, v));
    m.setReg(4, BigInt(sp));
    m.bytes(CODE, [0x48, 0xcf]);
    m.cpu.idtrLimit = 0;
    m.cpu.rip = CODE;
    const s = m.run(1);
    return s === Stop.Fault ? { vector: m.cpu.stopFault!.vector, errorCode: m.cpu.stopFault!.errorCode } : null;
  }
  it('checks CS, RIP, then SS, with the SDM error codes', () => {
    const u = BigInt(UCODE), f = 0x202n, sp = BigInt(USTACK);
    expect(iretWith([u, BigInt(Sel.UCS), f, sp, BigInt(Sel.USS)])).toBeNull();
    expect(iretWith([u, 0n, f, sp, BigInt(Sel.USS)])).toEqual({ vector: 13, errorCode: 0 });
    expect(iretWith([u, BigInt(Sel.USS), f, sp, BigInt(Sel.USS)])).toEqual({ vector: 13, errorCode: 0x20 });   // data as CS
    expect(iretWith([u, BigInt(Sel.KCS | 3), f, sp, BigInt(Sel.USS)])).toEqual({ vector: 13, errorCode: 0x08 }); // DPL != RPL
    expect(iretWith([u, BigInt(Sel.KCS_NP), f, sp, BigInt(Sel.KSS)])).toEqual({ vector: 11, errorCode: 0x70 });
    expect(iretWith([0x800000000000n, BigInt(Sel.UCS), f, sp, BigInt(Sel.KSS)])).toEqual({ vector: 13, errorCode: 0 }); // RIP before SS
    expect(iretWith([u, BigInt(Sel.UCS), f, sp, 0n])).toEqual({ vector: 13, errorCode: 0 });      // null SS to CPL 3
    expect(iretWith([u, BigInt(Sel.UCS), f, sp, BigInt(Sel.KSS)])).toEqual({ vector: 13, errorCode: 0x10 }); // RPL != 3
    expect(iretWith([u, BigInt(Sel.UCS), f, sp, 0x7bn])).toEqual({ vector: 13, errorCode: 0x78 }); // read-only data
    expect(iretWith([u, BigInt(Sel.UCS32), f, sp, 3n])).toEqual({ vector: 13, errorCode: 0 });
    // Same level, 64-bit target: a null SS with RPL 0 is fine.
    expect(iretWith([u, BigInt(Sel.KCS), f, sp, 0n])).toBeNull();
  });

  it('at CPL 3 cannot change IF or IOPL; at CPL 0 can', () => {
    const m = longMachine();
    toUser(m, [0x90], Sel.UCS, 0x3202n);
    expect(m.cpu.rflags & 0x3200).toBe(0x3200);
    // Now at CPL 3 with IOPL 3: iretq to itself with IF=0 IOPL=0: IF may change (CPL <= IOPL), IOPL not.
    const sp = USTACK - 0x100;
    [BigInt(UCODE + 0x10), BigInt(Sel.UCS), 0x2n, BigInt(USTACK), BigInt(Sel.USS)].forEach((v, i) => m.w64(sp + i * 8, v));
    m.setReg(4, BigInt(sp));
    m.bytes(UCODE, [0x48, 0xcf]);
    m.cpu.rip = UCODE;
    m.run(1);
    expect(m.cpu.rip).toBe(UCODE + 0x10);
    expect(m.cpu.rflags & 0x3200).toBe(0x3000);
  });
});

describe('syscall / sysret', () => {
  /** Kernel setup: EFER.SCE, STAR, LSTAR, CSTAR, SFMASK through wrmsr. */
  function withSyscall(m: Machine, sfmask = 0x700): void {
    const wr = (msr: number, lo: number, hi: number) => [0xb9, ...le(msr, 4), 0xb8, ...le(lo, 4), 0xba, ...le(hi, 4), 0x0f, 0x30];
    const code = [
      ...wr(0xc0000081, 0, (0x18 << 16) | Sel.KCS),   // STAR
      ...wr(0xc0000082, HANDLERS + 0x1800, 0),          // LSTAR
      ...wr(0xc0000083, HANDLERS + 0x1900, 0),          // CSTAR
      ...wr(0xc0000084, sfmask, 0),                     // SFMASK
      0xf4,
    ];
    m.cpu.efer &= ~Efer.SCE;
    expect(kernel(m, code)).toBe(Stop.Halt);
    m.cpu.efer |= Efer.SCE;
  }

  it('64-bit round trip: RCX/R11, the masked RFLAGS, the cached CS/SS, then sysretq', () => {
    const m = longMachine();
    withSyscall(m);
    m.bytes(HANDLERS + 0x1800, [0x48, 0x0f, 0x07]); // sysretq
    m.idt(0x81, gate64(Sel.KCS, BigInt(HANDLERS + 0x81 * 16), 0xe, { dpl: 3 }));
    toUser(m, [0x0f, 0x05, 0xcd, 0x81], Sel.UCS, 0x2d7n | 0x200n | 0x400n);
    m.run(1); // syscall
    expect(m.cpu.cpl).toBe(0);
    expect(m.cpu.rip).toBe(HANDLERS + 0x1800);
    expect(m.reg(1)).toBe(BigInt(UCODE + 2));
    expect(m.reg(11)).toBe(0x6d7n | 0x200n);
    expect(m.cpu.rflags).toBe((0x6d7 | 0x200) & ~0x700 | 2);
    expect(m.cpu.seg.sel[Seg.CS]).toBe(Sel.KCS);
    expect(m.cpu.seg.sel[Seg.SS]).toBe(Sel.KSS);
    expect(m.cpu.seg.attr[Seg.SS] & 0xff).toBe(0x93);
    expect(m.reg(4)).toBe(BigInt(USTACK)); // syscall does not switch stacks
    m.run(1); // sysretq
    expect(m.cpu.cpl).toBe(3);
    expect(m.cpu.rip).toBe(UCODE + 2);
    expect(m.cpu.seg.sel[Seg.CS]).toBe(Sel.UCS);
    expect(m.cpu.seg.sel[Seg.SS]).toBe(Sel.USS);
    expect(m.cpu.rflags).toBe(0x6d7 | 0x200);
    expect(m.cpu.mode).toBe(Mode.Long64);
  });

  it('sysretl returns to compatibility mode; syscall from there goes to CSTAR', () => {
    const m = longMachine();
    withSyscall(m);
    m.bytes(HANDLERS + 0x1900, [0xf4]);
    m.setReg(1, 0xffffffff00000000n | BigInt(UCODE)); // ECX only matters
    m.setReg(11, 0x202n);
    m.bytes(UCODE, [0x0f, 0x05]);
    expect(kernel(m, [0x0f, 0x07], 1)).toBe(Stop.Budget);
    expect(m.cpu.mode).toBe(Mode.Prot32);
    expect(m.cpu.seg.sel[Seg.CS]).toBe(Sel.UCS32);
    expect(m.cpu.rip).toBe(UCODE);
    expect(m.run(5)).toBe(Stop.Halt);
    expect(m.cpu.rip).toBe(HANDLERS + 0x1901);
    expect(m.reg(1)).toBe(BigInt(UCODE + 2));
  });

  it('sysretq with a non-canonical RCX is #GP(0) at CPL 0 (Intel); syscall without EFER.SCE is #UD', () => {
    const m = longMachine();
    withSyscall(m);
    m.setReg(1, 0x0000800000000000n);
    expect(kernel(m, [0x48, 0x0f, 0x07])).toBe(Stop.Halt);
    expect(vectorTaken(m)).toBe(13);
    expect(m.stackQ(2)).toBe(BigInt(Sel.KCS)); // delivered at CPL 0
    const m2 = longMachine();
    m2.cpu.efer &= ~Efer.SCE;
    expect(kernel(m2, [0x0f, 0x05])).toBe(Stop.Halt);
    expect(vectorTaken(m2)).toBe(6);
  });

  it('cpu.hooks.syscall takes the instruction first (the PV hypercall path)', () => {
    const m = longMachine();
    let seen = 0n;
    m.cpu.hooks.syscall = (cpu) => { seen = BigInt(cpu.r[0]); cpu.r[0] = -38; cpu.r[1] = -1; return true; };
    m.setReg(0, 17n);
    toUser(m, [0x0f, 0x05, 0x90]);
    m.run(1);
    expect(seen).toBe(17n);
    expect(m.cpu.rip).toBe(UCODE + 2);
    expect(m.cpu.cpl).toBe(3);
    expect(m.reg(0)).toBe(0xffffffffffffffdan);
  });

  it('sysenter / sysexit (Intel, 64-bit)', () => {
    const m = longMachine();
    const wr = (msr: number, lo: number) => [0xb9, ...le(msr, 4), 0xb8, ...le(lo, 4), 0x31, 0xd2, 0x0f, 0x30];
    expect(kernel(m, [...wr(0x174, Sel.KCS), ...wr(0x175, KSTACK - 0x400), ...wr(0x176, HANDLERS + 0x1a00), 0xf4])).toBe(Stop.Halt);
    // sysexitq: CS = SYSENTER_CS + 32 | 3 = 0x2b, SS = + 40 | 3 = 0x33 (cached loads, no descriptor read).
    m.bytes(HANDLERS + 0x1a00, [0x48, 0x0f, 0x35]); // sysexitq
    m.setReg(2, BigInt(UCODE + 2)); m.setReg(1, BigInt(USTACK - 8));
    toUser(m, [0x0f, 0x34, 0x90]);
    m.run(1);
    expect(m.cpu.cpl).toBe(0);
    expect(m.cpu.rip).toBe(HANDLERS + 0x1a00);
    expect(m.reg(4)).toBe(BigInt(KSTACK - 0x400));
    m.run(1);
    expect(m.cpu.cpl).toBe(3);
    expect(m.cpu.seg.sel[Seg.CS]).toBe(0x2b);
    expect(m.cpu.seg.sel[Seg.SS]).toBe(0x33);
    expect(m.cpu.rip).toBe(UCODE + 2);
    expect(m.reg(4)).toBe(BigInt(USTACK - 8));
  });
});

describe('far transfers across privilege levels', () => {
  it('call far through a 64-bit call gate to CPL 0, then retfq back to CPL 3', () => {
    const m = longMachine();
    m.bytes(HANDLERS + 0x1000, [0x48, 0xcb]); // retfq
    const ptr = USTACK + 0x100;
    m.w32(ptr, 0x11111111); m.w16(ptr + 4, Sel.GATE | 3); // the offset is ignored for a gate
    m.setReg(0, BigInt(ptr));
    toUser(m, [0xff, 0x18, 0xf4]); // call far [rax]; hlt (#GP at CPL 3)
    m.run(1);
    expect(m.cpu.cpl).toBe(0);
    expect(m.cpu.rip).toBe(HANDLERS + 0x1000);
    expect(m.cpu.seg.sel[Seg.CS]).toBe(Sel.KCS);
    expect(m.cpu.seg.sel[Seg.SS]).toBe(0);
    expect(m.cpu.r[8]).toBe(KSTACK - 32);
    expect([0, 1, 2, 3].map((i) => m.stackQ(i))).toEqual([BigInt(UCODE + 2), BigInt(Sel.UCS), BigInt(USTACK), BigInt(Sel.USS)]);
    m.run(1);
    expect(m.cpu.cpl).toBe(3);
    expect(m.cpu.rip).toBe(UCODE + 2);
    expect(m.reg(4)).toBe(BigInt(USTACK));
    expect(m.cpu.seg.sel[Seg.SS]).toBe(Sel.USS);
  });

  it('retf imm16 to an outer level releases the parameters on both stacks', () => {
    const m = longMachine();
    const sp = KSTACK - 0x200;
    // RIP, CS, 2 qwords of parameters, RSP, SS
    [BigInt(UCODE), BigInt(Sel.UCS), 0n, 0n, BigInt(USTACK), BigInt(Sel.USS)].forEach((v, i) => m.w64(sp + i * 8, v));
    m.setReg(4, BigInt(sp));
    kernel(m, [0x48, 0xca, 0x10, 0x00], 1);
    expect(m.cpu.cpl).toBe(3);
    expect(m.reg(4)).toBe(BigInt(USTACK + 0x10));
  });

  it('jmp far to a conforming DPL 0 segment from CPL 3 keeps CPL 3; a not-present one is #NP(sel)', () => {
    const m = longMachine();
    const ptr = USTACK + 0x100;
    m.w32(ptr, UCODE + 0x40); m.w16(ptr + 4, Sel.KCONF);
    m.w32(ptr + 8, UCODE); m.w16(ptr + 12, Sel.KCS_NP);
    m.setReg(0, BigInt(ptr));
    toUser(m, [0xff, 0x28]);
    m.run(1);
    expect(m.cpu.rip).toBe(UCODE + 0x40);
    expect(m.cpu.cpl).toBe(3);
    expect(m.cpu.seg.sel[Seg.CS]).toBe(Sel.KCONF | 3);
    // From CPL 3, a DPL 0 non-conforming target fails the privilege check first: #GP(sel).
    m.bytes(UCODE + 0x40, [0xff, 0x68, 0x08]); // jmp far [rax+8]
    m.cpu.idtrLimit = 0;
    expect(m.run(1)).toBe(Stop.Fault);
    expect([m.cpu.stopFault!.vector, m.cpu.stopFault!.errorCode]).toEqual([13, Sel.KCS_NP]);
    const m2 = longMachine();
    m2.w32(ptr, UCODE); m2.w16(ptr + 4, Sel.KCS_NP);
    m2.setReg(0, BigInt(ptr));
    m2.cpu.idtrLimit = 0;
    expect(kernel(m2, [0xff, 0x28])).toBe(Stop.Fault);
    expect([m2.cpu.stopFault!.vector, m2.cpu.stopFault!.errorCode]).toEqual([11, Sel.KCS_NP]);
  });

  it('jmp far m16:64 (REX.W) and call far m16:64 push 8-byte CS and RIP', () => {
    const m = longMachine();
    const ptr = KSTACK - 0x1000;
    m.w64(ptr, BigInt(CODE + 0x40)); m.w16(ptr + 8, Sel.KCS);
    m.setReg(0, BigInt(ptr));
    kernel(m, [0x48, 0xff, 0x18], 1);
    expect(m.cpu.rip).toBe(CODE + 0x40);
    expect(m.stackQ(0)).toBe(BigInt(CODE + 3));
    expect(m.stackQ(1)).toBe(BigInt(Sel.KCS));
  });
});

describe('segment loads: the exception for each bad selector', () => {
  /** mov Sreg, ax with ax = sel at the given CPL (64-bit code). */
  function load(seg: number, sel: number, cpl = 0): { vector: number; errorCode: number } | 'ok' {
    const m = longMachine();
    const code = [0x66, 0xb8, ...le(sel, 2), 0x8e, 0xc0 | (seg << 3)];
    if (cpl === 3) { toUser(m, code); } else m.bytes(CODE, code);
    m.cpu.rip = cpl === 3 ? UCODE : CODE;
    m.cpu.idtrLimit = 0;
    const s = m.run(2);
    return s === Stop.Fault ? { vector: m.cpu.stopFault!.vector, errorCode: m.cpu.stopFault!.errorCode } : 'ok';
  }
  it('SS', () => {
    expect(load(Seg.SS, 0)).toBe('ok');                                         // null SS at CPL 0 in 64-bit mode
    expect(load(Seg.SS, 0, 3)).toEqual({ vector: 13, errorCode: 0 });
    expect(load(Seg.SS, Sel.USS)).toEqual({ vector: 13, errorCode: 0x20 });     // RPL 3 != CPL 0
    expect(load(Seg.SS, Sel.USS & ~3)).toEqual({ vector: 13, errorCode: 0x20 }); // DPL 3 != CPL 0
    expect(load(Seg.SS, Sel.KCS)).toEqual({ vector: 13, errorCode: 0x08 });     // code
    expect(load(Seg.SS, Sel.KDS_NP)).toEqual({ vector: 12, errorCode: 0x68 });  // not present: #SS
    expect(load(Seg.SS, Sel.URO, 3)).toEqual({ vector: 13, errorCode: 0x78 });  // read-only
    expect(load(Seg.SS, 0xfff8)).toEqual({ vector: 13, errorCode: 0xfff8 });    // past the GDT limit
    expect(load(Seg.SS, Sel.TSS)).toEqual({ vector: 13, errorCode: Sel.TSS });  // system
  });
  it('DS ES FS GS', () => {
    expect(load(Seg.DS, Sel.KDS_NP)).toEqual({ vector: 11, errorCode: 0x68 });
    expect(load(Seg.ES, Sel.UXO, 3)).toEqual({ vector: 13, errorCode: 0x88 });  // execute-only code
    expect(load(Seg.FS, Sel.KSS, 3)).toEqual({ vector: 13, errorCode: 0x10 });  // DPL 0 < CPL 3
    expect(load(Seg.GS, Sel.KSS | 3)).toEqual({ vector: 13, errorCode: 0x10 }); // DPL 0 < RPL 3
    expect(load(Seg.DS, Sel.KCONF | 3, 3)).toBe('ok');                          // conforming readable code
    expect(load(Seg.DS, 0x4c)).toEqual({ vector: 13, errorCode: 0x4c });        // an LDT selector with no LDT loaded
    expect(load(Seg.DS, 3, 3)).toBe('ok');
  });
  it('FS/GS loads in 64-bit mode take the 32-bit descriptor base and drop the old upper half', () => {
    const m = longMachine();
    m.gdt(20, [0x0000ffff, 0x12cf9334 | 0]); // base 0x12340000? (bits 24..31 = 0x12, 16..23 = 0x34)
    m.cpu.seg.baseHi[Seg.FS] = 0x7fff; m.cpu.seg.baseLo[Seg.FS] = 0x1000;
    kernel(m, [0x66, 0xb8, 0xa0, 0x00, 0x8e, 0xe0, 0xf4]);
    expect(m.cpu.seg.baseHi[Seg.FS]).toBe(0);
    expect(m.cpu.seg.baseLo[Seg.FS] >>> 0).toBe(0x12340000);
  });
  it('LDT selectors after lldt', () => {
    const m = longMachine();
    m.ldt(1, [0x0000ffff, 0x00cff200]); // data DPL 3, not yet accessed
    kernel(m, [0x66, 0xb8, ...le(Sel.LDT, 2), 0x0f, 0x00, 0xd0, 0x66, 0xb8, 0x0f, 0x00, 0x8e, 0xd8, 0xf4]);
    expect(m.cpu.seg.sel[Seg.LDTR]).toBe(Sel.LDT);
    expect(m.cpu.seg.sel[Seg.DS]).toBe(0x0f);
    expect(m.cpu.seg.attr[Seg.DS] & 0xff).toBe(0xf3); // accessed bit set
    expect(m.r32(0x6000 + 12) & 0x100).toBe(0x100);
  });
});

describe('swapgs', () => {
  it('exchanges GS.base and KERNEL_GS_BASE; #UD outside 64-bit mode', () => {
    const m = longMachine();
    const wr = (msr: number, lo: number, hi: number) => [0xb9, ...le(msr, 4), 0xb8, ...le(lo, 4), 0xba, ...le(hi, 4), 0x0f, 0x30];
    const rd = (msr: number) => [0xb9, ...le(msr, 4), 0x0f, 0x32];
    kernel(m, [...wr(0xc0000101, 0x1000, 0xffff8000), ...wr(0xc0000102, 0x2000, 0x7fff), 0x0f, 0x01, 0xf8, ...rd(0xc0000101), 0xf4]);
    expect(m.reg(0)).toBe(0x2000n);
    expect(m.reg(2)).toBe(0x7fffn);
    expect(m.cpu.seg.baseHi[Seg.GS]).toBe(0x7fff);
    toUser(m, [0x0f, 0x01, 0xf8], Sel.UCS32);
    m.cpu.idtrLimit = 0;
    expect(m.run(1)).toBe(Stop.Fault);
    expect(m.cpu.stopFault!.vector).toBe(6);
  });
});
