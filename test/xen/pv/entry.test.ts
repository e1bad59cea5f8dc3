// The PV execution model on a hand-built vCPU: hypercalls by syscall, guest system calls,
// exceptions and their bounce frames, privileged-instruction emulation, the forced-emulation
// CPUID, the iret hypercall, event upcalls and domain crashes.

import { describe, expect, it } from 'vitest';
import { Stop } from '../../../src/cpu/cpu.js';
import { Seg } from '../../../src/cpu/state.js';
import { VcpuInfo } from '../../../src/xen/layout.js';
import { gsBase } from '../../../src/xen/pv/mode.js';
import { kickEvents, toggleGuestMode } from '../../../src/xen/pv/entry.js';
import { Callback } from '../../../src/xen/vcpu.js';
import {
  asm, canon, code, KDATA, KHANDLERS, KSTACK, KTEXT, lin, makeRig, runToSpin, startKernel, UDATA, USTACK, UTEXT,
  type Rig,
} from './harness.js';

const RAX = 0, RCX = 1, RDX = 2, RBX = 3, RSP = 4, RSI = 6, RDI = 7, R11 = 11;
const H_PF = KHANDLERS, H_GP = KHANDLERS + 0x100n, H_UD = KHANDLERS + 0x200n, H_SYSCALL = KHANDLERS + 0x300n;
const H_EVENT = KHANDLERS + 0x400n, H_FAILSAFE = KHANDLERS + 0x500n, H_NM = KHANDLERS + 0x600n, H_INT80 = KHANDLERS + 0x700n;
const H_BP = KHANDLERS + 0x800n;

/** Every handler is a `jmp $`. */
function installHandlers(r: Rig): void {
  for (let o = 0n; o < 0x1000n; o += 0x100n) r.write(KHANDLERS + o, asm.jmpSelf);
  const t = (vec: number, h: bigint, flags = 0) => { r.v.trapAddr[vec] = lin(h); r.v.trapFlags[vec] = flags; };
  t(14, H_PF); t(13, H_GP); t(6, H_UD); t(7, H_NM); t(3, H_BP, 3);
  r.v.callbackAddr[Callback.SYSCALL] = lin(H_SYSCALL);
  r.v.callbackAddr[Callback.EVENT] = lin(H_EVENT);
  r.v.callbackAddr[Callback.FAILSAFE] = lin(H_FAILSAFE);
  r.v.kernelSp = lin(KSTACK + 0x1000n);
}

/** Put the vCPU in guest user mode at UTEXT with the user stack. */
function enterUser(r: Rig, body: number[]): void {
  r.write(UTEXT, body);
  toggleGuestMode(r.v);
  r.cpu.rip = lin(UTEXT);
  r.setReg(RSP, USTACK + 0x1000n);
}

/** The frame words at the current RSP. */
function frame(r: Rig, n: number): bigint[] {
  const sp = r.reg(RSP);
  return Array.from({ length: n }, (_, i) => r.u64(sp + BigInt(i * 8)));
}

describe('hypercalls by syscall in guest kernel mode', () => {
  it('dispatches rax with rdi/rsi and returns in rax; rcx/r11 as syscall leaves them', () => {
    const r = makeRig();
    r.write(KTEXT, code(asm.movR32(RAX, 17), asm.xorEdiEdi, asm.xorEsiEsi, asm.syscall, asm.jmpSelf));
    startKernel(r, KTEXT);
    runToSpin(r);
    expect(r.reg(RAX)).toBe(0x40011n); // xen_version: 4.17
    const after = KTEXT + 5n + 2n + 2n + 2n;
    expect(r.rip()).toBe(after);
    expect(r.reg(RCX)).toBe(after);
    expect(r.reg(R11)).toBe(0x246n); // IF, ZF, PF from the xors
    expect(r.flags()).toBe(0x246);
    expect(r.cpu.seg.sel[Seg.CS]).toBe(0xe033);
    expect(r.v.kernelMode).toBe(true);
  });

  it('answers -ENOSYS (sign-extended) for an unknown number and for rax >= 2^32', () => {
    const r = makeRig();
    r.write(KTEXT, code(asm.movR32(RAX, 50), asm.syscall, asm.movR64(RAX, 0x100000011n), asm.syscall, asm.jmpSelf));
    startKernel(r, KTEXT);
    r.cpu.run(2);
    expect(r.reg(RAX)).toBe(BigInt.asUintN(64, -38n));
    runToSpin(r);
    expect(r.reg(RAX)).toBe(BigInt.asUintN(64, -38n));
  });

  it('stack_switch, set_callbacks, set_trap_table and callback_op take effect', () => {
    const r = makeRig();
    // trap_info table at KDATA: vector 14 -> H_PF, vector 0x80 DPL 3; terminator.
    const tt = new Uint8Array(48); const dv = new DataView(tt.buffer);
    dv.setUint8(0, 14); dv.setUint8(1, 4); dv.setUint16(2, 0xe030, true); dv.setBigUint64(8, H_PF, true);
    dv.setUint8(16, 0x80); dv.setUint8(17, 3); dv.setUint16(18, 0xe033, true); dv.setBigUint64(24, H_INT80, true);
    r.write(KDATA, tt);
    // callback_register {type syscall32, flags mask, address} at KDATA+0x100
    const cb = new Uint8Array(16); const cv = new DataView(cb.buffer);
    cv.setUint16(0, 7, true); cv.setUint16(2, 1, true); cv.setBigUint64(8, H_SYSCALL + 0x80n, true);
    r.write(KDATA + 0x100n, cb);
    r.write(KTEXT, code(
      asm.movR32(RAX, 3), asm.movR32(RDI, 0xe02b), asm.movR64(RSI, KSTACK + 0x800n), asm.syscall,
      asm.movR32(RAX, 4), asm.movR64(RDI, H_EVENT), asm.movR64(RSI, H_FAILSAFE), asm.movR64(RDX, H_SYSCALL), asm.syscall,
      asm.movR32(RAX, 0), asm.movR64(RDI, KDATA), asm.syscall, asm.movR32(RBX, 0), asm.pushRax, // keep rc
      asm.movR32(RAX, 30), asm.movR32(RDI, 0), asm.movR64(RSI, KDATA + 0x100n), asm.syscall,
      asm.jmpSelf));
    startKernel(r, KTEXT);
    runToSpin(r);
    expect(r.reg(RAX)).toBe(0n);
    expect(r.v.kernelSp).toBe(lin(KSTACK + 0x800n));
    expect(r.v.kernelSs).toBe(0xe02b);
    expect(r.v.callbackAddr[Callback.EVENT]).toBe(lin(H_EVENT));
    expect(r.v.callbackAddr[Callback.FAILSAFE]).toBe(lin(H_FAILSAFE));
    expect(r.v.callbackAddr[Callback.SYSCALL]).toBe(lin(H_SYSCALL));
    expect(r.v.callbackFlags[Callback.SYSCALL]).toBe(0);
    expect(r.v.callbackAddr[Callback.SYSCALL32]).toBe(lin(H_SYSCALL + 0x80n));
    expect(r.v.callbackFlags[Callback.SYSCALL32]).toBe(1);
    expect(r.v.trapAddr[14]).toBe(lin(H_PF));
    expect(r.v.trapFlags[14]).toBe(4);
    expect(r.v.trapCs[14]).toBe(0xe033); // RPL forced to 3
    expect(r.v.trapAddr[0x80]).toBe(lin(H_INT80));
    expect(r.v.trapAddr[13]).toBe(-1);
  });
});

describe('guest system calls', () => {
  it('bounce to the syscall callback with Xen\'s frame, switching to kernel mode', () => {
    const r = makeRig();
    installHandlers(r);
    r.v.callbackFlags[Callback.SYSCALL] = 1; // CALLBACKF_mask_events
    r.setVcpuInfo(VcpuInfo.UPCALL_MASK, 0);
    r.v.gsBaseKernelLo = 0x11110000; r.v.gsBaseKernelHi = 0xffffffff | 0;
    r.v.gsBaseUserLo = 0x22220000; r.v.gsBaseUserHi = 0;
    r.cpu.seg.baseLo[Seg.GS] = r.v.gsBaseKernelLo; r.cpu.seg.baseHi[Seg.GS] = r.v.gsBaseKernelHi;
    enterUser(r, code(asm.movR32(RAX, 0x1234), asm.syscall, asm.jmpSelf));
    expect(r.v.kernelMode).toBe(false);
    expect(r.cpu.seg.baseLo[Seg.GS]).toBe(0x22220000);
    r.setReg(RCX, 0xdeadn); r.setReg(R11, 0xbeefn);
    const userFlags = r.flags();
    runToSpin(r);
    expect(r.rip()).toBe(H_SYSCALL);
    expect(r.v.kernelMode).toBe(true);
    expect(r.cpu.cr3Lo).toBe(r.kl4 * 4096);
    expect(r.cpu.seg.baseLo[Seg.GS]).toBe(0x11110000);
    expect(r.cpu.seg.baseHi[Seg.GS]).toBe(-1);
    expect(gsBase(r.v, false)).toEqual([0x22220000, 0]);
    const next = UTEXT + 7n;
    expect(r.reg(RSP)).toBe(KSTACK + 0x1000n - 56n);
    expect(frame(r, 7)).toEqual([
      next,                       // rcx: the user's (as the syscall instruction set it)
      BigInt(userFlags),          // r11
      next,                       // rip
      0xe033n,                    // cs (user: RPL 3), saved mask 0 in bits 32..39
      BigInt(userFlags | 0x200),  // rflags, IF = !saved mask
      USTACK + 0x1000n,           // rsp
      0xe02bn,                    // ss
    ]);
    expect(r.vcpuInfo(VcpuInfo.UPCALL_MASK)).toBe(1);
    expect(r.reg(RAX)).toBe(0x1234n);
    expect(r.reg(RCX)).toBe(H_SYSCALL); // Xen returns to the handler with SYSRET
    expect(r.cpu.seg.sel[Seg.CS]).toBe(0xe033);
    expect(r.cpu.seg.sel[Seg.SS]).toBe(0xe02b);
  });

  it('raise #UD at the syscall when no syscall callback is registered', () => {
    const r = makeRig();
    installHandlers(r);
    r.v.callbackAddr[Callback.SYSCALL] = -1;
    enterUser(r, code(asm.syscall, asm.jmpSelf));
    runToSpin(r);
    expect(r.rip()).toBe(H_UD);
    const f = frame(r, 7);
    expect(f[2]).toBe(UTEXT); // rip: the syscall instruction
    expect(f[3] & 0xffffn).toBe(0xe033n);
  });
});

describe('exceptions', () => {
  it('#PF from user mode: cr2 in vcpu_info, U in the error code, frame on the kernel stack', () => {
    const r = makeRig();
    installHandlers(r);
    enterUser(r, code(asm.loadRaxAbs(0x10000000), asm.jmpSelf));
    runToSpin(r);
    expect(r.rip()).toBe(H_PF);
    expect(r.v.kernelMode).toBe(true);
    expect(r.phys.dv.getBigUint64(r.v.vcpuInfoPa + VcpuInfo.ARCH_CR2, true)).toBe(0x10000000n);
    expect(r.reg(RSP)).toBe(KSTACK + 0x1000n - 64n);
    const f = frame(r, 8);
    expect(f[2]).toBe(4n);           // error code: not present, read, user
    expect(f[3]).toBe(UTEXT);        // rip: the faulting instruction
    expect(f[4]).toBe(0x10000e033n); // cs with the saved mask in bits 32..39 (events start masked)
    expect(f[5] & 0x200n).toBe(0n);  // IF = !mask
    expect(f[6]).toBe(USTACK + 0x1000n);
    expect(f[7]).toBe(0xe02bn);
  });

  it('#PF in kernel mode: error code without U, RPL 0 in the saved CS, current stack', () => {
    const r = makeRig();
    installHandlers(r);
    r.setVcpuInfo(VcpuInfo.UPCALL_MASK, 0);
    r.write(KTEXT, code(asm.movR64(RBX, 0xffffffff90000008n), asm.loadRaxRbx, asm.jmpSelf));
    startKernel(r, KTEXT, KSTACK + 0x808n);
    runToSpin(r);
    expect(r.rip()).toBe(H_PF);
    expect(r.reg(RSP)).toBe(KSTACK + 0x800n - 64n); // rounded down to 16
    const f = frame(r, 8);
    expect(f[2]).toBe(0n);
    expect(f[3]).toBe(KTEXT + 10n);
    expect(f[4]).toBe(0xe030n);
    expect(f[5] & 0x200n).toBe(0x200n);
    expect(f[6]).toBe(KSTACK + 0x808n);
    expect(r.phys.dv.getBigUint64(r.v.vcpuInfoPa + VcpuInfo.ARCH_CR2, true)).toBe(0xffffffff90000008n);
    expect(r.vcpuInfo(VcpuInfo.UPCALL_MASK)).toBe(0); // trap flags without bit 2
  });

  it('trap_info flag bit 2 masks events on entry', () => {
    const r = makeRig();
    installHandlers(r);
    r.v.trapFlags[14] = 4;
    r.setVcpuInfo(VcpuInfo.UPCALL_MASK, 0);
    enterUser(r, code(asm.loadRaxAbs(0x10000000), asm.jmpSelf));
    runToSpin(r);
    expect(r.vcpuInfo(VcpuInfo.UPCALL_MASK)).toBe(1);
    expect(frame(r, 8)[4]).toBe(0xe033n);
  });

  it('no handler: the domain crashes', () => {
    const r = makeRig();
    r.v.kernelSp = lin(KSTACK + 0x1000n);
    enterUser(r, code(asm.loadRaxAbs(0x10000000), asm.jmpSelf));
    const s = r.cpu.run(10);
    expect(s).toBe(Stop.Request);
    expect(r.d.state).toBe('shutdown');
    expect(r.d.shutdownReason).toBe(3);
    expect(r.xen.log.some((l) => l.includes('Unhandled: vec 14, #PF[0004]'))).toBe(true);
    expect(r.xen.log.some((l) => l.includes('crashed'))).toBe(true);
  });

  it('int3 and int $0x80 (DPL 3) bounce with RIP after; int $0x80 at DPL 0 is #GP(0x402)', () => {
    const r = makeRig();
    installHandlers(r);
    r.v.trapAddr[0x80] = lin(H_INT80);
    r.v.trapFlags[0x80] = 3;
    enterUser(r, code(asm.intN(0x80), asm.jmpSelf));
    runToSpin(r);
    expect(r.rip()).toBe(H_INT80);
    expect(frame(r, 7)[2]).toBe(UTEXT + 2n);

    const r2 = makeRig();
    installHandlers(r2);
    r2.v.trapAddr[0x80] = lin(H_INT80);
    r2.v.trapFlags[0x80] = 0;
    enterUser(r2, code(asm.intN(0x80), asm.jmpSelf));
    runToSpin(r2);
    expect(r2.rip()).toBe(H_GP);
    const f = frame(r2, 8);
    expect(f[2]).toBe(0x402n);
    expect(f[3]).toBe(UTEXT);

    const r3 = makeRig();
    installHandlers(r3);
    enterUser(r3, code(asm.int3, asm.jmpSelf));
    runToSpin(r3);
    expect(r3.rip()).toBe(H_BP);
    expect(frame(r3, 7)[2]).toBe(UTEXT + 1n);
  });

  it('fpu_taskswitch(1): the next SSE instruction raises #NM and Xen clears TS', () => {
    const r = makeRig();
    installHandlers(r);
    r.write(KTEXT, code(asm.movR32(RAX, 5), asm.movR32(RDI, 1), asm.syscall, asm.addps, asm.jmpSelf));
    startKernel(r, KTEXT);
    runToSpin(r);
    expect(r.rip()).toBe(H_NM);
    expect(r.v.fpuTs).toBe(false);
    expect(r.cpu.cr0 & 8).toBe(0);
    expect(frame(r, 7)[2]).toBe(KTEXT + 12n);
  });
});

describe('privileged instructions', () => {
  it('wrmsr GS_BASE sets the kernel GS base and skips the instruction', () => {
    const r = makeRig();
    installHandlers(r);
    r.write(KTEXT, code(asm.movR32(RCX, 0xc0000101), asm.movR32(RAX, 0x83044000), asm.movR32(RDX, 0xffffffff), asm.wrmsr,
      asm.movR32(RCX, 0xc0000101), asm.rdmsr, asm.jmpSelf));
    startKernel(r, KTEXT);
    runToSpin(r);
    expect(r.rip()).toBe(KTEXT + 15n + 2n + 5n + 2n);
    expect(r.cpu.seg.baseLo[Seg.GS] >>> 0).toBe(0x83044000);
    expect(r.cpu.seg.baseHi[Seg.GS]).toBe(-1);
    expect(gsBase(r.v, true)).toEqual([0x83044000 | 0, -1]);
    expect(r.reg(RAX)).toBe(0x83044000n);
    expect(r.reg(RDX)).toBe(0xffffffffn);
  });

  it('rdmsr PAT and EFER; an unknown MSR is #GP', () => {
    const r = makeRig();
    installHandlers(r);
    r.write(KTEXT, code(asm.movR32(RCX, 0x277), asm.rdmsr, asm.jmpSelf));
    startKernel(r, KTEXT);
    runToSpin(r);
    expect((r.reg(RDX) << 32n) | r.reg(RAX)).toBe(0x0000050100070406n);
    r.write(KTEXT + 0x100n, code(asm.movR32(RCX, 0xc0000080), asm.rdmsr, asm.movR32(RCX, 0x12345), asm.rdmsr, asm.jmpSelf));
    r.cpu.rip = lin(KTEXT + 0x100n);
    runToSpin(r);
    expect(r.reg(RAX)).toBe(0xd01n);
    expect(r.rip()).toBe(H_GP);
    expect(frame(r, 8)[3]).toBe(KTEXT + 0x100n + 12n);
  });

  it('mov from CR0/CR3 returns the guest view; mov to CR0 sets TS', () => {
    const r = makeRig();
    installHandlers(r);
    r.write(KTEXT, code(asm.movRaxCr3, [0x48, 0x89, 0xc3] /* mov rbx, rax */, asm.movRaxCr0,
      [0x48, 0x83, 0xc8, 0x08] /* or rax, 8 */, asm.movCr0Rax, asm.jmpSelf));
    startKernel(r, KTEXT);
    runToSpin(r);
    expect(r.reg(RBX)).toBe(BigInt(r.kl4) << 12n);
    expect(r.reg(RAX)).toBe(0x8005003bn);
    expect(r.v.fpuTs).toBe(true);
    expect(r.cpu.cr0 & 8).toBe(8);
  });

  it('in/out need the virtual IOPL; unassigned ports read as all ones', () => {
    const r = makeRig();
    installHandlers(r);
    r.v.iopl = 1;
    r.write(KTEXT, code(asm.movR32(RAX, 0), asm.inAl80, asm.cli, asm.jmpSelf));
    startKernel(r, KTEXT);
    runToSpin(r);
    expect(r.reg(RAX)).toBe(0xffn);
    expect(r.rip()).toBe(KTEXT + 8n); // cli skipped

    const r2 = makeRig();
    installHandlers(r2);
    r2.write(KTEXT, code(asm.inAl80, asm.jmpSelf));
    startKernel(r2, KTEXT);
    runToSpin(r2);
    expect(r2.rip()).toBe(H_GP);
    expect(frame(r2, 8)[2]).toBe(0n);
  });

  it('hlt and rdmsr in user mode are #GP', () => {
    const r = makeRig();
    installHandlers(r);
    enterUser(r, code(asm.movR32(RCX, 0x277), asm.rdmsr, asm.jmpSelf));
    runToSpin(r);
    expect(r.rip()).toBe(H_GP);
    expect(frame(r, 8)[3]).toBe(UTEXT + 5n);
    const r2 = makeRig();
    installHandlers(r2);
    r2.write(KTEXT, code(asm.hlt, asm.jmpSelf));
    startKernel(r2, KTEXT);
    runToSpin(r2);
    expect(r2.rip()).toBe(H_GP);
  });
});

describe('CPUID', () => {
  const sig = (r: Rig) => [r.reg(RBX), r.reg(RCX), r.reg(RDX)].map((x) => {
    const n = Number(x); return String.fromCharCode(n & 0xff, (n >> 8) & 0xff, (n >> 16) & 0xff, (n >>> 24) & 0xff);
  }).join('');

  it('the forced-emulation prefix returns XenVMMXenVMM at 0x40000000 and skips 7 bytes', () => {
    const r = makeRig();
    installHandlers(r);
    r.write(KTEXT, code(asm.movR32(RAX, 0x40000000), asm.forcedCpuid, asm.jmpSelf));
    startKernel(r, KTEXT);
    runToSpin(r);
    expect(r.rip()).toBe(KTEXT + 12n);
    expect(sig(r)).toBe('XenVMMXenVMM');
    expect(r.reg(RAX)).toBe(0x40000005n);
  });

  it('native cpuid sees the same policy: hypervisor bit, Xen version leaf', () => {
    const r = makeRig();
    installHandlers(r);
    r.write(KTEXT, code(asm.movR32(RAX, 0x40000000), asm.cpuid, asm.jmpSelf));
    startKernel(r, KTEXT);
    runToSpin(r);
    expect(sig(r)).toBe('XenVMMXenVMM');
    r.write(KTEXT + 0x40n, code(asm.movR32(RAX, 1), asm.cpuid, asm.movR32(RAX, 0x40000001), asm.forcedCpuid, asm.jmpSelf));
    r.cpu.rip = lin(KTEXT + 0x40n);
    r.cpu.run(2);
    expect(r.reg(RCX) >> 31n).toBe(1n);
    expect(r.reg(RDX) & (1n << 13n)).toBe(0n); // no PGE for PV
    runToSpin(r);
    expect(r.reg(RAX)).toBe(0x40011n);
  });

  it('ud2 without the signature is a #UD for the guest', () => {
    const r = makeRig();
    installHandlers(r);
    r.write(KTEXT, code([0x0f, 0x0b, 0x90, 0x90, 0x90], asm.jmpSelf));
    startKernel(r, KTEXT);
    runToSpin(r);
    expect(r.rip()).toBe(H_UD);
    expect(frame(r, 7)[2]).toBe(KTEXT);
  });
});

describe('the iret hypercall', () => {
  /** Kernel code that builds {rax r11 rcx flags rip cs rflags rsp ss} and calls iret. */
  function iretCode(o: { rip: bigint; cs: number; rflags: number; rsp: bigint; ss: number; flags?: number }): number[] {
    return code(
      asm.pushImm(o.ss), asm.pushImm(o.rsp), asm.pushImm(o.rflags), asm.pushImm(o.cs), asm.pushImm(o.rip),
      asm.pushImm(o.flags ?? 0),
      asm.movR32(RCX, 0x1111), asm.movR64(R11, 0x2222n), asm.movR32(RAX, 0x5555),
      asm.pushRcx, asm.pushR11, asm.pushRax,
      asm.movR32(RAX, 23), asm.syscall, asm.jmpSelf);
  }

  it('to user mode: user L4 and GS base, RPL 3, rax/r11/rcx from the frame, mask = !IF', () => {
    const r = makeRig();
    installHandlers(r);
    r.v.gsBaseUserLo = 0x7000; r.cpu.seg.baseLo[Seg.GS] = 0x9000;
    r.write(UTEXT, asm.jmpSelf);
    r.write(KTEXT, iretCode({ rip: UTEXT, cs: 0xe033, rflags: 0x246, rsp: USTACK + 0xff8n, ss: 0xe02b }));
    startKernel(r, KTEXT);
    runToSpin(r);
    expect(r.v.kernelMode).toBe(false);
    expect(r.cpu.cr3Lo).toBe(r.ul4 * 4096);
    expect(r.cpu.seg.baseLo[Seg.GS]).toBe(0x7000);
    expect(gsBase(r.v, true)[0]).toBe(0x9000);
    expect(r.rip()).toBe(UTEXT);
    expect(r.reg(RSP)).toBe(USTACK + 0xff8n);
    expect(r.reg(RAX)).toBe(0x5555n);
    expect(r.reg(RCX)).toBe(0x1111n);
    expect(r.reg(R11)).toBe(0x2222n);
    expect(r.cpu.seg.sel[Seg.CS]).toBe(0xe033);
    expect(r.cpu.seg.sel[Seg.SS]).toBe(0xe02b);
    expect(r.flags() & 0x200).toBe(0x200);
    expect(r.vcpuInfo(VcpuInfo.UPCALL_MASK)).toBe(0);
  });

  it('to kernel mode with IF clear masks events; VGCF_in_syscall returns as SYSRET', () => {
    const r = makeRig();
    installHandlers(r);
    r.setVcpuInfo(VcpuInfo.UPCALL_MASK, 0);
    const target = KTEXT + 0x200n;
    r.write(target, asm.jmpSelf);
    r.write(KTEXT, iretCode({ rip: target, cs: 0xe030, rflags: 0x046, rsp: KSTACK + 0x800n, ss: 0xe028, flags: 256 }));
    startKernel(r, KTEXT);
    runToSpin(r);
    expect(r.v.kernelMode).toBe(true);
    expect(r.rip()).toBe(target);
    expect(r.vcpuInfo(VcpuInfo.UPCALL_MASK)).toBe(1);
    expect(r.reg(RCX)).toBe(target);
    expect(r.reg(R11)).toBe(0x246n);
    expect(r.reg(RAX)).toBe(0x5555n);
    expect(r.flags()).toBe(0x246);
  });

  it('to user mode without user page tables crashes the domain', () => {
    const r = makeRig();
    installHandlers(r);
    r.v.userCr3 = 0;
    r.write(KTEXT, iretCode({ rip: UTEXT, cs: 0xe033, rflags: 0x202, rsp: USTACK, ss: 0xe02b }));
    startKernel(r, KTEXT);
    runToSpin(r);
    expect(r.d.state).toBe('shutdown');
    expect(r.xen.log.some((l) => l.includes('no user page tables'))).toBe(true);
  });

  it('a CS that does not load goes to the failsafe callback with DS..GS in the frame', () => {
    const r = makeRig();
    installHandlers(r);
    r.write(KTEXT, iretCode({ rip: UTEXT, cs: 0x0b, rflags: 0x202, rsp: USTACK + 0x800n, ss: 0xe02b }));
    startKernel(r, KTEXT);
    runToSpin(r);
    expect(r.rip()).toBe(H_FAILSAFE);
    expect(r.v.kernelMode).toBe(true);
    const f = frame(r, 11);
    expect(f[0]).toBe(0x1111n); expect(f[1]).toBe(0x2222n);
    expect(f.slice(2, 6)).toEqual([0n, 0n, 0n, 0n]);
    expect(f[6]).toBe(UTEXT);
    expect(f[7] & 0xffffn).toBe(0x0bn);
    expect(f[9]).toBe(USTACK + 0x800n);
    expect(f[10]).toBe(0xe02bn);
  });
});

describe('event upcalls', () => {
  it('a pending unmasked event is delivered at a block boundary with events masked', () => {
    const r = makeRig();
    installHandlers(r);
    r.write(KTEXT, asm.jmpSelf);
    startKernel(r, KTEXT, KSTACK + 0x800n);
    r.cpu.run(3);
    expect(r.rip()).toBe(KTEXT);
    r.setVcpuInfo(VcpuInfo.UPCALL_MASK, 0);
    r.setVcpuInfo(VcpuInfo.UPCALL_PENDING, 1);
    kickEvents(r.v);
    r.cpu.run(1);
    expect(r.rip()).toBe(H_EVENT);
    expect(r.vcpuInfo(VcpuInfo.UPCALL_MASK)).toBe(1);
    expect(r.reg(RSP)).toBe(KSTACK + 0x800n - 56n);
    const f = frame(r, 7);
    expect(f[2]).toBe(KTEXT);
    expect(f[3]).toBe(0xe030n); // kernel: RPL 0; saved mask 0
    expect(f[4] & 0x200n).toBe(0x200n);
    expect(f[5]).toBe(KSTACK + 0x800n);
    expect(f[6]).toBe(0xe02bn);
  });

  it('a masked event waits; the hypercall after unmasking delivers it on return', () => {
    const r = makeRig();
    installHandlers(r);
    r.setVcpuInfo(VcpuInfo.UPCALL_PENDING, 1); // events are masked (as at boot)
    r.write(KTEXT, code(asm.movR64(RBX, 0n), asm.jmpSelf));
    startKernel(r, KTEXT);
    kickEvents(r.v);
    r.cpu.run(5);
    expect(r.rip()).toBe(KTEXT + 10n);
    // The guest unmasks, then forces a callback with xen_version(0).
    r.setVcpuInfo(VcpuInfo.UPCALL_MASK, 0);
    r.write(KTEXT + 0x100n, code(asm.movR32(RAX, 17), asm.xorEdiEdi, asm.syscall, asm.jmpSelf));
    r.cpu.rip = lin(KTEXT + 0x100n);
    runToSpin(r);
    expect(r.rip()).toBe(H_EVENT);
    const f = frame(r, 7);
    expect(f[0]).toBe(KTEXT + 0x100n + 9n); // rcx as the syscall left it
    expect(f[2]).toBe(KTEXT + 0x100n + 9n);
    expect(r.reg(RAX)).toBe(0x40011n);
  });

  it('an event in user mode switches to the kernel stack and the kernel L4', () => {
    const r = makeRig();
    installHandlers(r);
    enterUser(r, code(asm.jmpSelf));
    r.cpu.run(2);
    r.setVcpuInfo(VcpuInfo.UPCALL_MASK, 0);
    r.setVcpuInfo(VcpuInfo.UPCALL_PENDING, 1);
    kickEvents(r.v);
    r.cpu.run(1);
    expect(r.rip()).toBe(H_EVENT);
    expect(r.v.kernelMode).toBe(true);
    expect(r.cpu.cr3Lo).toBe(r.kl4 * 4096);
    expect(r.reg(RSP)).toBe(KSTACK + 0x1000n - 56n);
    expect(frame(r, 7)[3]).toBe(0xe033n);
  });
});

describe('segments and descriptor tables', () => {
  it('the guest can iretq to itself and load the flat selectors through Xen\'s GDT', () => {
    const r = makeRig();
    installHandlers(r);
    r.write(KTEXT, code(asm.iretToSelf, asm.movR32(RAX, 0xe02b), asm.movDsAx, asm.movSsAx, asm.jmpSelf));
    startKernel(r, KTEXT);
    runToSpin(r);
    expect(r.rip()).toBe(KTEXT + BigInt(asm.iretToSelf.length + 5 + 4));
    expect(r.cpu.seg.sel[Seg.DS]).toBe(0xe02b);
    expect(r.cpu.seg.sel[Seg.CS]).toBe(0xe033);
    expect(r.reg(RSP)).toBe(KSTACK + 0x1000n);
  });

  it('set_gdt installs guest descriptors (DPL raised to 3); update_descriptor edits them', () => {
    const r = makeRig();
    installHandlers(r);
    const gdtVa = 0xffffffff80040000n;
    const gdtMfn = r.page(gdtVa);
    // entry 2: flat data, DPL 0 (Xen raises it to 3)
    r.phys.dv.setBigUint64(gdtMfn * 4096 + 16, 0x00cf92000000ffffn, true);
    r.setU64(KDATA, BigInt(gdtMfn));
    r.write(KTEXT, code(
      asm.movR32(RAX, 2), asm.movR64(RDI, KDATA), asm.movR32(RSI, 16), asm.syscall, asm.movR64(RBX, 0n),
      asm.movR32(RAX, 0x13), asm.movDsAx,
      asm.movR32(RAX, 10), asm.movR64(RDI, BigInt(gdtMfn * 4096 + 24)), asm.movR64(RSI, 0x00cff2000000ffffn), asm.syscall,
      asm.movR32(RAX, 0x1b), asm.movGsAx, asm.jmpSelf));
    startKernel(r, KTEXT);
    runToSpin(r);
    expect(r.v.gdtFrames).toEqual([gdtMfn]);
    expect(r.cpu.seg.sel[Seg.DS]).toBe(0x13);
    expect(r.cpu.seg.attr[Seg.DS] & 0xff).toBe(0xf3);
    expect(r.phys.dv.getBigUint64(gdtMfn * 4096 + 16, true)).toBe(0x00cff3000000ffffn);
    expect(r.cpu.seg.sel[Seg.GS]).toBe(0x1b);
  });

  it('an LDT selector loads through the shadow LDT mapped on first use', async () => {
    const { setLdt } = await import('../../../src/xen/pv/mode.js');
    const r = makeRig();
    installHandlers(r);
    const ldtVa = 0xffffffff80050000n;
    const ldtMfn = r.page(ldtVa);
    r.phys.dv.setBigUint64(ldtMfn * 4096 + 8, 0x00cff2000000ffffn, true); // entry 1: data
    expect(setLdt(r.v, lin(ldtVa), 4)).toBe(0);
    r.write(KTEXT, code(asm.movR32(RAX, 0x0f), asm.movDsAx, asm.jmpSelf));
    startKernel(r, KTEXT);
    runToSpin(r);
    expect(r.rip()).toBe(KTEXT + 7n);
    expect(r.cpu.seg.sel[Seg.DS]).toBe(0x0f);
  });

  it('set_segment_base: FS, GS_USER, GS_KERNEL and a bad selector for GS_USER_SEL', () => {
    const r = makeRig();
    installHandlers(r);
    r.write(KTEXT, code(
      asm.movR32(RAX, 25), asm.movR32(RDI, 0), asm.movR64(RSI, 0x7fff00001000n), asm.syscall,
      asm.movR32(RAX, 25), asm.movR32(RDI, 1), asm.movR64(RSI, 0x2000n), asm.syscall,
      asm.movR32(RAX, 25), asm.movR32(RDI, 2), asm.movR64(RSI, 0xffff888000000000n), asm.syscall,
      asm.movR32(RAX, 25), asm.movR32(RDI, 0), asm.movR64(RSI, 0x0000800000000000n), asm.syscall, asm.movR64(RBX, 0n),
      asm.jmpSelf));
    startKernel(r, KTEXT);
    runToSpin(r);
    expect(r.reg(RAX)).toBe(BigInt.asUintN(64, -22n));
    expect(r.cpu.seg.baseLo[Seg.FS]).toBe(0x1000);
    expect(r.cpu.seg.baseHi[Seg.FS]).toBe(0x7fff);
    expect(gsBase(r.v, false)).toEqual([0x2000, 0]);
    expect(gsBase(r.v, true)).toEqual([0, 0xffff8880 | 0]);
  });

  it('set_debugreg / get_debugreg, and DR7.GD is refused', () => {
    const r = makeRig();
    installHandlers(r);
    r.write(KTEXT, code(
      asm.movR32(RAX, 8), asm.movR32(RDI, 0), asm.movR64(RSI, 0xffffffff80001000n), asm.syscall,
      asm.movR32(RAX, 9), asm.movR32(RDI, 0), asm.syscall, [0x48, 0x89, 0xc3], // mov rbx, rax
      asm.movR32(RAX, 8), asm.movR32(RDI, 7), asm.movR64(RSI, 0x2000n), asm.syscall,
      asm.jmpSelf));
    startKernel(r, KTEXT);
    runToSpin(r);
    expect(r.reg(RBX)).toBe(0xffffffff80001000n);
    expect(r.reg(RAX)).toBe(BigInt.asUintN(64, -1n)); // -EPERM
  });
});

void UDATA; void RSI;

describe('VCPUOP_initialise context', () => {
  it('pvSetContext loads registers, trap table, callbacks, bases and page tables into a second vCPU', async () => {
    const { Cpu } = await import('../../../src/cpu/cpu.js');
    const { PagedMemory } = await import('../../../src/mmu/paged.js');
    const { Vcpu } = await import('../../../src/xen/vcpu.js');
    const { pvSetContext } = await import('../../../src/xen/pv/entry.js');
    const r = makeRig();
    installHandlers(r);
    const mem = new PagedMemory(r.phys, undefined, { writeProtected: r.xen.writeProtected });
    const cpu = new Cpu(mem);
    mem.attach(cpu);
    const v1 = new Vcpu(r.d, 1, cpu);
    r.d.vcpus.push(v1);
    v1.vcpuInfoPa = r.v.vcpuInfoPa + 64;
    const ctx = new Uint8Array(5168);
    const dv = new DataView(ctx.buffer);
    const U = 520;
    dv.setUint32(512, 4, true); // VGCF_in_kernel
    dv.setBigUint64(U + 80, 0x1234n, true); // rax
    dv.setBigUint64(U + 104, 0x5678n, true); // rsi
    dv.setBigUint64(U + 128, KTEXT + 0x300n, true); // rip
    dv.setUint16(U + 136, 0xe033, true);
    dv.setBigUint64(U + 144, 0x3202n, true); // rflags with IOPL 3
    dv.setBigUint64(U + 152, KSTACK + 0x400n, true);
    dv.setUint16(U + 160, 0xe02b, true);
    dv.setUint8(720 + 14 * 16, 14); dv.setUint16(720 + 14 * 16 + 2, 0xe030, true); dv.setBigUint64(720 + 14 * 16 + 8, H_PF, true);
    dv.setBigUint64(4968, 0xe02bn, true); dv.setBigUint64(4976, KSTACK + 0xf00n, true);
    dv.setBigUint64(4984 + 8, BigInt(r.ul4) << 12n, true);
    dv.setBigUint64(4984 + 24, BigInt(r.kl4) << 12n, true);
    dv.setBigUint64(5112, H_EVENT, true); dv.setBigUint64(5120, H_FAILSAFE, true); dv.setBigUint64(5128, H_SYSCALL, true);
    dv.setBigUint64(5152, 0xffffffff80020000n, true); dv.setBigUint64(5160, 0x1000n, true);
    r.write(KTEXT + 0x300n, code(asm.iretToSelf, asm.jmpSelf));
    expect(pvSetContext(v1, ctx)).toBe(0);
    expect(v1.kernelMode).toBe(true);
    expect(v1.iopl).toBe(3);
    expect(v1.trapAddr[14]).toBe(lin(H_PF));
    expect(v1.trapCs[14]).toBe(0xe033);
    expect(v1.kernelSp).toBe(lin(KSTACK + 0xf00n));
    expect(v1.callbackAddr[Callback.SYSCALL]).toBe(lin(H_SYSCALL));
    expect(canon(cpu.rip)).toBe(KTEXT + 0x300n);
    expect(cpu.r[0]).toBe(0x1234);
    expect(cpu.r[12]).toBe(0x5678);
    expect(cpu.cr3Lo).toBe(r.kl4 * 4096);
    expect(cpu.seg.baseHi[Seg.GS]).toBe(-1);
    expect(gsBase(v1, false)).toEqual([0x1000, 0]);
    expect(cpu.gdtrBase).toBe(lin(0xffff820000000000n) + 0x20000);
    // It runs: iretq to itself through its own GDT mapping.
    for (let i = 0; i < 20 && cpu.mem.rd8(cpu.rip) !== 0xeb; i++) cpu.run(1);
    expect(canon(cpu.rip)).toBe(KTEXT + 0x300n + BigInt(asm.iretToSelf.length));
  });

  it('rejects a non-canonical RIP and user mode without a user L4', async () => {
    const { pvSetContext } = await import('../../../src/xen/pv/entry.js');
    const r = makeRig();
    const ctx = new Uint8Array(5168);
    const dv = new DataView(ctx.buffer);
    dv.setBigUint64(520 + 128, 0x0000900000000000n, true);
    expect(pvSetContext(r.v, ctx)).toBe(-22);
    dv.setBigUint64(520 + 128, 0x400000n, true);
    dv.setBigUint64(4984 + 24, BigInt(r.kl4) << 12n, true);
    expect(pvSetContext(r.v, ctx)).toBe(-22); // flags lack VGCF_in_kernel, ctrlreg[1] = 0
  });
});
