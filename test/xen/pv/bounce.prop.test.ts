// Properties of the PV bounce frame and of the iret hypercall against a small model of
// Xen's create_bounce_frame and do_iret, over random register state, event mask, trap
// flags and guest mode; plus edge cases of the trap hypercalls.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { setFlags } from '../../../src/cpu/flags.js';
import { Seg } from '../../../src/cpu/state.js';
import { VcpuInfo } from '../../../src/xen/layout.js';
import { toggleGuestMode } from '../../../src/xen/pv/entry.js';
import { Callback } from '../../../src/xen/vcpu.js';
import { asm, canon, code, KHANDLERS, KSTACK, KTEXT, lin, makeRig, runToSpin, startKernel, USTACK, UTEXT, type Rig } from './harness.js';

const RCX = 1, RSP = 4, R11 = 11, RAX = 0, RDI = 7, RSI = 6, RDX = 2;
const H_BP = KHANDLERS + 0x800n, H_GP = KHANDLERS + 0x100n;
const F_IF = 0x200n, F_IOPL = 0x3000n;
const ARITH = [0x1, 0x4, 0x10, 0x40, 0x80, 0x400, 0x800]; // CF PF AF ZF SF DF OF

function setMode(r: Rig, kernel: boolean): void { if (r.v.kernelMode !== kernel) toggleGuestMode(r.v); }

describe('bounce frame (create_bounce_frame) property', () => {
  const r = makeRig();
  for (let o = 0n; o < 0x1000n; o += 0x100n) r.write(KHANDLERS + o, asm.jmpSelf);
  r.write(KTEXT + 0x800n, asm.int3);
  r.write(UTEXT + 0x800n, asm.int3);
  r.v.kernelSp = lin(KSTACK + 0x1000n);

  it('matches the model for int3 from either mode, any mask, flags and trap flags', () => {
    fc.assert(fc.property(
      fc.boolean(), fc.constantFrom(0, 1), fc.constantFrom(0, 4), fc.subarray(ARITH), fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
      fc.integer({ min: 0x100, max: 0xf00 }), fc.constantFrom(0, 1, 2, 3), fc.boolean(),
      (kernel, mask, tiIf, arith, rcx, r11, spOff, iopl, archIopl) => {
        r.d.vmAssist = archIopl ? 1 << 4 : 0;
        r.v.iopl = iopl;
        r.v.trapAddr[3] = lin(H_BP); r.v.trapFlags[3] = 3 | tiIf;
        setMode(r, true);
        setMode(r, kernel);
        const rspIn = (kernel ? KSTACK : USTACK) + BigInt(spOff & ~7);
        r.setReg(RSP, rspIn); r.setReg(RCX, rcx); r.setReg(R11, r11);
        const flags = 0x202 | arith.reduce((a, b) => a | b, 0);
        setFlags(r.cpu.f, flags);
        r.setVcpuInfo(VcpuInfo.UPCALL_MASK, mask);
        r.setVcpuInfo(VcpuInfo.UPCALL_PENDING, 0);
        const at = (kernel ? KTEXT : UTEXT) + 0x800n;
        r.cpu.rip = lin(at);
        r.cpu.run(1);
        // The model.
        const base = kernel ? rspIn & ~0xfn : KSTACK + 0x1000n;
        const fl = (BigInt(flags) & ~(F_IF | F_IOPL)) | (mask ? 0n : F_IF) | (archIopl ? BigInt(iopl) << 12n : 0n);
        const want = [rcx, r11, at + 1n, (kernel ? 0xe030n : 0xe033n) | (BigInt(mask) << 32n), fl, rspIn, 0xe02bn];
        expect(r.v.kernelMode).toBe(true);
        expect(r.reg(RSP)).toBe(base - 56n);
        expect(Array.from({ length: 7 }, (_, i) => r.u64(base - 56n + BigInt(i * 8)))).toEqual(want);
        expect(r.vcpuInfo(VcpuInfo.UPCALL_MASK)).toBe(mask | (tiIf ? 1 : 0));
        expect(r.rip()).toBe(H_BP);
        const realFlags = flags & ~0x100; // TF VM RF NT AC cleared on entry
        expect(r.flags()).toBe(realFlags);
        expect(r.reg(RCX)).toBe(H_BP);
        expect(r.reg(R11)).toBe(BigInt(realFlags | 0x200));
        expect(r.cpu.seg.sel[Seg.CS]).toBe(0xe033);
        expect(r.cpu.cr3Lo).toBe(r.kl4 * 4096);
      }), { numRuns: 150 });
  });
});

describe('iret hypercall property', () => {
  const r = makeRig();
  r.v.kernelSp = lin(KSTACK + 0x1000n);
  // The frame sits at KSTACK+0x400; the code only loads RAX and does the syscall.
  r.write(KTEXT, code(asm.movR32(RAX, 23), asm.syscall));

  it('restores the frame as do_iret does (to kernel or user, with or without VGCF_in_syscall)', () => {
    fc.assert(fc.property(
      fc.boolean(), fc.boolean(), fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), fc.subarray(ARITH), fc.boolean(),
      fc.constantFrom(0, 0x3000),
      (toUser, inSyscall, rax, r11, rcx, arith, ifSet, ioplBits) => {
        setMode(r, true);
        const target = toUser ? UTEXT + 0x10n : KTEXT + 0x40n;
        const rsp = toUser ? USTACK + 0x800n : KSTACK + 0x800n;
        const rflags = BigInt(0x2 | arith.reduce((a, b) => a | b, 0) | (ifSet ? 0x200 : 0) | ioplBits);
        const words = [rax, r11, rcx, inSyscall ? 256n : 0n, target, toUser ? 0xe033n : 0xe030n, rflags, rsp, toUser ? 0xe02bn : 0xe028n];
        words.forEach((w, i) => r.setU64(KSTACK + 0x400n + BigInt(i * 8), w));
        r.setReg(RSP, KSTACK + 0x400n);
        r.cpu.rip = lin(KTEXT);
        r.cpu.run(2);
        const realFlags = Number((rflags & ~F_IOPL) | F_IF);
        expect(r.v.kernelMode).toBe(!toUser);
        expect(r.rip()).toBe(target);
        expect(r.reg(RSP)).toBe(rsp);
        expect(r.reg(RAX)).toBe(rax);
        expect(r.flags()).toBe(realFlags);
        expect(r.vcpuInfo(VcpuInfo.UPCALL_MASK)).toBe(ifSet ? 0 : 1);
        expect(r.cpu.seg.sel[Seg.CS]).toBe(0xe033);
        expect(r.cpu.seg.sel[Seg.SS]).toBe(0xe02b);
        if (inSyscall) { expect(r.reg(RCX)).toBe(target); expect(r.reg(R11)).toBe(BigInt(realFlags)); }
        else { expect(r.reg(RCX)).toBe(rcx); expect(r.reg(R11)).toBe(r11); }
        expect(r.cpu.cr3Lo).toBe((toUser ? r.ul4 : r.kl4) * 4096);
      }), { numRuns: 150 });
  });
});

describe('edge cases', () => {
  it('a kernel stack inside Xen\'s range crashes the domain (create_bounce_frame_bad_sp)', () => {
    const r = makeRig();
    r.v.trapAddr[3] = lin(H_BP); r.v.trapFlags[3] = 3;
    r.v.kernelSp = lin(0xffff800000001000n);
    r.write(UTEXT, asm.int3);
    toggleGuestMode(r.v);
    r.cpu.rip = lin(UTEXT);
    r.setReg(RSP, USTACK + 0x800n);
    r.cpu.run(1);
    expect(r.d.state).toBe('shutdown');
    expect(r.xen.log.some((l) => l.includes('create_bounce_frame_bad_sp'))).toBe(true);
  });

  it('update_descriptor refuses a TSS and a misaligned address; set_gdt too many entries', () => {
    const r = makeRig();
    const gdtVa = 0xffffffff80040000n;
    const mfn = r.page(gdtVa);
    r.write(KTEXT, code(
      asm.movR32(RAX, 10), asm.movR64(RDI, BigInt(mfn * 4096 + 8)), asm.movR64(RSI, 0x00008b000000ffffn), asm.syscall,
      [0x48, 0x89, 0xc3], // mov rbx, rax
      asm.movR32(RAX, 10), asm.movR64(RDI, BigInt(mfn * 4096 + 4)), asm.movR64(RSI, 0x00cff2000000ffffn), asm.syscall,
      [0x48, 0x89, 0xc5], // mov rbp, rax
      asm.movR32(RAX, 2), asm.movR64(RDI, 0xffffffff80020000n), asm.movR32(RSI, 14 * 512 + 1), asm.syscall,
      asm.jmpSelf));
    startKernel(r, KTEXT);
    runToSpin(r);
    expect(r.reg(3)).toBe(BigInt.asUintN(64, -22n));
    expect(r.reg(5)).toBe(BigInt.asUintN(64, -22n));
    expect(r.reg(RAX)).toBe(BigInt.asUintN(64, -22n));
  });

  it('CR4.TSD: rdtsc is emulated in kernel mode and #GP in user mode', () => {
    const r = makeRig();
    for (let o = 0n; o < 0x1000n; o += 0x100n) r.write(KHANDLERS + o, asm.jmpSelf);
    r.v.trapAddr[13] = lin(H_GP);
    r.v.kernelSp = lin(KSTACK + 0x1000n);
    r.write(KTEXT, code(asm.movR32(RAX, 0x6a4), [0x0f, 0x22, 0xe0] /* mov cr4, rax */, [0x0f, 0x20, 0xe3] /* mov rbx, cr4 */,
      [0x0f, 0x31] /* rdtsc */, asm.jmpSelf));
    startKernel(r, KTEXT);
    runToSpin(r);
    expect(r.reg(3)).toBe(0x624n); // TSD PAE OSFXSR OSXMMEXCPT: DE dropped (the CPU model has no DE), PGE/PSE not the guest's
    expect(r.cpu.cr4 & 4).toBe(4);
    expect(r.rip()).toBe(KTEXT + 13n);
    r.write(UTEXT, code([0x0f, 0x31], asm.jmpSelf));
    toggleGuestMode(r.v);
    r.cpu.rip = lin(UTEXT);
    r.setReg(RSP, USTACK + 0x800n);
    runToSpin(r);
    expect(r.rip()).toBe(H_GP);
  });

  it('wrmsr 0x40000000 writes the hypercall page into a frame of the domain', () => {
    const r = makeRig();
    const va = 0xffffffff80060000n;
    const mfn = r.page(va);
    const val = BigInt(mfn) << 12n;
    r.write(KTEXT, code(asm.movR32(1, 0x40000000), asm.movR32(RAX, Number(val & 0xffffffffn)), asm.movR32(RDX, Number(val >> 32n)),
      asm.wrmsr, asm.jmpSelf));
    startKernel(r, KTEXT);
    runToSpin(r);
    expect(r.rip()).toBe(KTEXT + 17n);
    const page = r.phys.u8.subarray(mfn * 4096, mfn * 4096 + 4096);
    expect(Array.from(page.subarray(17 * 32, 17 * 32 + 14))).toEqual([0x51, 0x41, 0x53, 0xb8, 17, 0, 0, 0, 0x0f, 0x05, 0x41, 0x5b, 0x59, 0xc3]);
    expect(Array.from(page.subarray(23 * 32, 23 * 32 + 11))).toEqual([0x51, 0x41, 0x53, 0x50, 0xb8, 23, 0, 0, 0, 0x0f, 0x05]);
    // And a call through it works: xen_version via the page.
    r.write(KTEXT + 0x100n, code(asm.movR32(RDI, 0), asm.movR64(RAX, va + 17n * 32n), [0xff, 0xd0] /* call rax */, asm.jmpSelf));
    r.cpu.rip = lin(KTEXT + 0x100n);
    runToSpin(r);
    expect(r.reg(RAX)).toBe(0x40011n);
    expect(r.reg(RSP)).toBe(KSTACK + 0x1000n);
    void canon; void Callback; void RDX; void RSI;
  });
});
