// A hand-built 64-bit PV vCPU for the PV execution-model tests: machine memory, a domain,
// page tables made here (kernel at 0xffffffff80000000, user at 0x400000), a shared_info
// page, and a few instruction encoders.

import { Cpu } from '../../../src/cpu/cpu.js';
import '../../../src/cpu/ops/index.js';
import { getFlags } from '../../../src/cpu/flags.js';
import { PagedMemory } from '../../../src/mmu/paged.js';
import { PhysMem } from '../../../src/mmu/physmem.js';
import type { Domain } from '../../../src/xen/domain.js';
import '../../../src/xen/hypercall/index.js';
import { attachPv } from '../../../src/xen/pv/entry.js';
import { Vcpu } from '../../../src/xen/vcpu.js';
import { Xen } from '../../../src/xen/xen.js';

export const TWO32 = 4294967296;

/** 48-bit linear form of a canonical 64-bit address. */
export function lin(v: bigint): number { return Number(BigInt.asUintN(48, v)); }
/** Canonical 64-bit (unsigned) value of a 48-bit linear address. */
export function canon(l: number): bigint { return BigInt.asUintN(64, BigInt.asIntN(48, BigInt(l))); }

export const KTEXT = 0xffffffff80000000n;
export const KSTACK = 0xffffffff80010000n; // one page; top = +0x1000
export const KDATA = 0xffffffff80020000n;
export const KHANDLERS = 0xffffffff80030000n;
export const UTEXT = 0x400000n;
export const USTACK = 0x600000n; // one page; top = +0x1000
export const UDATA = 0x700000n;

export interface Rig {
  phys: PhysMem;
  xen: Xen;
  d: Domain;
  v: Vcpu;
  cpu: Cpu;
  kl4: number;
  ul4: number;
  /** guest virtual -> machine frame for pages mapped through map(). */
  frameOf: Map<bigint, number>;
  sharedInfo: number;
  map(l4: number, va: bigint, mfn: number, flags?: number): void;
  page(va: bigint, kernel?: boolean, user?: boolean): number;
  write(va: bigint, bytes: number[] | Uint8Array): void;
  u64(va: bigint): bigint;
  setU64(va: bigint, val: bigint): void;
  reg(i: number): bigint;
  setReg(i: number, val: bigint): void;
  rip(): bigint;
  vcpuInfo(off: number): number;
  setVcpuInfo(off: number, val: number): void;
  flags(): number;
}

export function makeRig(opts: { privileged?: boolean } = {}): Rig {
  const phys = new PhysMem(32 << 20);
  const xen = new Xen(phys);
  const d = xen.newDomain('pvtest');
  d.privileged = opts.privileged ?? false;
  d.state = 'running';
  const mem = new PagedMemory(phys, undefined, { writeProtected: xen.writeProtected });
  const cpu = new Cpu(mem);
  mem.attach(cpu);
  xen.code = cpu.code;
  const v = new Vcpu(d, 0, cpu);
  d.vcpus.push(v);
  v.online = true;
  const alloc = (): number => { const m = xen.frames.alloc(d.id); if (m < 0) throw new Error('oom'); return m; };
  const dv = phys.dv;
  const frameOf = new Map<bigint, number>();

  function map(l4: number, va: bigint, mfn: number, flags = 7): void {
    const l = lin(va);
    let table = l4;
    for (let level = 4; level > 1; level--) {
      const idx = Math.floor(l / 2 ** (12 + 9 * (level - 1))) % 512;
      const pa = table * 4096 + idx * 8;
      let e = dv.getUint32(pa, true);
      if (!(e & 1)) {
        const t = alloc();
        dv.setUint32(pa, t * 4096 + 7, true);
        dv.setUint32(pa + 4, 0, true);
        e = dv.getUint32(pa, true);
      }
      table = Math.floor(e / 4096);
    }
    const idx = Math.floor(l / 4096) % 512;
    dv.setUint32(table * 4096 + idx * 8, mfn * 4096 + flags, true);
    dv.setUint32(table * 4096 + idx * 8 + 4, 0, true);
  }
  const kl4 = alloc(), ul4 = alloc();
  function page(va: bigint, kernel = true, user = false): number {
    const m = alloc();
    if (kernel) map(kl4, va, m);
    if (user) map(ul4, va, m);
    frameOf.set(va, m);
    return m;
  }
  page(KTEXT); page(KSTACK); page(KDATA); page(KHANDLERS);
  page(UTEXT, false, true); page(USTACK, false, true); page(UDATA, false, true);
  const sharedInfo = alloc();
  v.vcpuInfoPa = sharedInfo * 4096;
  phys.u8[v.vcpuInfoPa + 1] = 1; // events start masked, as the builder leaves them
  v.kernelCr3 = kl4;
  v.userCr3 = ul4;
  attachPv(v);

  const paOf = (va: bigint): number => {
    const base = va & ~0xfffn;
    const m = frameOf.get(base);
    if (m === undefined) throw new Error(`no test page at ${va.toString(16)}`);
    return m * 4096 + Number(va & 0xfffn);
  };
  const r: Rig = {
    phys, xen, d, v, cpu, kl4, ul4, frameOf, sharedInfo, map, page,
    write(va, bytes) { phys.u8.set(bytes, paOf(va)); },
    u64(va) { return dv.getBigUint64(paOf(va), true); },
    setU64(va, val) { dv.setBigUint64(paOf(va), val, true); },
    reg(i) { return BigInt.asUintN(64, (BigInt(cpu.r[i * 2 + 1]) << 32n) | BigInt(cpu.r[i * 2] >>> 0)); },
    setReg(i, val) { const u = BigInt.asUintN(64, val); cpu.r[i * 2] = Number(u & 0xffffffffn) | 0; cpu.r[i * 2 + 1] = Number(u >> 32n) | 0; },
    rip() { return canon(cpu.rip); },
    vcpuInfo(off) { return phys.u8[v.vcpuInfoPa + off]; },
    setVcpuInfo(off, val) { phys.u8[v.vcpuInfoPa + off] = val; },
    flags() { return getFlags(cpu.f); },
  };
  return r;
}

/** Point the vCPU at kernel code at va with the kernel stack. */
export function startKernel(r: Rig, va: bigint, sp = KSTACK + 0x1000n): void {
  r.cpu.rip = lin(va);
  r.setReg(4, sp);
}

// ---- encoders --------------------------------------------------------------------------------

const le32 = (v: number): number[] => [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff];
const le64 = (v: bigint): number[] => { const u = BigInt.asUintN(64, v); return [...le32(Number(u & 0xffffffffn)), ...le32(Number(u >> 32n))]; };

export const asm = {
  /** mov r32, imm32 (zero-extends), registers 0..7. */
  movR32: (reg: number, imm: number) => [0xb8 + reg, ...le32(imm >>> 0)],
  /** mov r64, imm64, registers 0..15. */
  movR64: (reg: number, imm: bigint) => [reg >= 8 ? 0x49 : 0x48, 0xb8 + (reg & 7), ...le64(imm)],
  syscall: [0x0f, 0x05],
  jmpSelf: [0xeb, 0xfe],
  wrmsr: [0x0f, 0x30],
  rdmsr: [0x0f, 0x32],
  forcedCpuid: [0x0f, 0x0b, 0x78, 0x65, 0x6e, 0x0f, 0xa2],
  cpuid: [0x0f, 0xa2],
  /** push imm32 (sign-extended to 64 bits): give a number or a 64-bit bigint that fits. */
  pushImm: (imm: number | bigint) => [0x68, ...le32(typeof imm === 'bigint' ? Number(BigInt.asIntN(32, imm)) : imm)],
  push0: [0x6a, 0x00],
  pushRax: [0x50], pushRcx: [0x51], pushR11: [0x41, 0x53],
  /** mov rax, [abs32] (sign-extended address). */
  loadRaxAbs: (addr: number) => [0x48, 0x8b, 0x04, 0x25, ...le32(addr)],
  /** mov rax, [rbx] */
  loadRaxRbx: [0x48, 0x8b, 0x03],
  iretq: [0x48, 0xcf],
  int3: [0xcc],
  intN: (n: number) => [0xcd, n],
  inAl80: [0xe4, 0x80],
  cli: [0xfa],
  hlt: [0xf4],
  movRaxCr0: [0x0f, 0x20, 0xc0], movCr0Rax: [0x0f, 0x22, 0xc0], movRaxCr2: [0x0f, 0x20, 0xd0], movRaxCr3: [0x0f, 0x20, 0xd8],
  /** mov ds, ax / mov ss, ax / mov gs, ax / mov eax, ss / mov eax, cs */
  movDsAx: [0x8e, 0xd8], movSsAx: [0x8e, 0xd0], movGsAx: [0x8e, 0xe8], movEaxSs: [0x8c, 0xd0], movEaxCs: [0x8c, 0xc8],
  /** addps xmm0, xmm0 (an SSE instruction: #NM with CR0.TS) */
  addps: [0x0f, 0x58, 0xc0],
  xorEsiEsi: [0x31, 0xf6], xorEdiEdi: [0x31, 0xff],
  /** The iret-to-self sequence of Linux's sync_core: build SS RSP RFLAGS CS RIP and iretq. */
  iretToSelf: [
    0x8c, 0xd0,                   // mov eax, ss
    0x50,                         // push rax
    0x54,                         // push rsp
    0x48, 0x83, 0x04, 0x24, 0x08, // add qword [rsp], 8
    0x9c,                         // pushfq
    0x8c, 0xc8,                   // mov eax, cs
    0x50,                         // push rax
    0x48, 0x8d, 0x05, 0x03, 0x00, 0x00, 0x00, // lea rax, [rip + 3]
    0x50,                         // push rax
    0x48, 0xcf,                   // iretq
  ],
};

export function code(...parts: (number[] | number)[]): number[] {
  const out: number[] = [];
  for (const p of parts) { if (typeof p === 'number') out.push(p); else out.push(...p); }
  return out;
}

/** Run until RIP sits on a `jmp $` (or the budget ends); returns the instructions retired. */
export function runToSpin(r: Rig, max = 200): number {
  let n = 0;
  for (; n < max; n++) {
    if (r.d.isDead) break;
    const b0 = peek(r, r.cpu.rip), b1 = peek(r, r.cpu.rip + 1);
    if (b0 === 0xeb && b1 === 0xfe) break;
    r.cpu.run(1);
  }
  return n;
}

function peek(r: Rig, l: number): number {
  try { return r.cpu.mem.rd8(l); } catch { return -1; }
}
