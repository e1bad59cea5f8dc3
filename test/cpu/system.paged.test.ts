// System instructions under real paging (src/mmu/paged.ts): the GDT, IDT, TSS, handlers and
// kernel stack are on supervisor-only pages, user code and stack on user pages. Descriptor
// and TSS accesses made from CPL 3 are implicit supervisor accesses, and the frame of an
// event taken from CPL 3 is written with the inner level's rights: none of this may fault,
// while a user access to a kernel page must.
import { describe, expect, it } from 'vitest';
import { Stop } from '../../src/cpu/cpu.js';
import { Seg } from '../../src/cpu/state.js';
import { PagedMemory } from '../../src/mmu/paged.js';
import { GDT, HANDLERS, KSTACK, Machine, Sel, TSS, UCODE, USTACK, gate64, le, longMachine, segDesc, vectorTaken } from './system.kit.js';

const PML4 = 0xa0000, PDPT = 0xa1000, PD = 0xa2000, PT = 0xa3000;

/** longMachine on paged memory: the first 1 MiB identity-mapped with 4 KiB pages, user
 *  pages only at UCODE (64 KiB) and the user stack (USTACK - 64 KiB .. USTACK). */
function pagedMachine(): Machine<PagedMemory> {
  const m = longMachine<PagedMemory>(undefined, (phys) => new PagedMemory(phys));
  const P = 1, RW = 2, U = 4;
  m.w64(PML4, BigInt(PDPT | P | RW | U));
  m.w64(PDPT, BigInt(PD | P | RW | U));
  m.w64(PD, BigInt(PT | P | RW | U));
  for (let i = 0; i < 256; i++) {
    const a = i * 4096;
    const user = (a >= UCODE && a < UCODE + 0x10000) || (a >= USTACK - 0x10000 && a < USTACK);
    m.w64(PT + i * 8, BigInt(a | P | RW | (user ? U : 0)));
  }
  m.cpu.cr3Lo = PML4; m.cpu.cr3Hi = 0;
  m.mem.attach(m.cpu);
  return m;
}

function toUser(m: Machine<PagedMemory>, user: number[]): void {
  m.bytes(UCODE, user);
  const sp = KSTACK - 0x200;
  [BigInt(UCODE), BigInt(Sel.UCS), 0x202n, BigInt(USTACK), BigInt(Sel.USS)].forEach((v, i) => m.w64(sp + i * 8, v));
  m.setReg(4, BigInt(sp));
  m.bytes(0x10000, [0x48, 0xcf]);
  m.cpu.rip = 0x10000;
  expect(m.run(1)).toBe(Stop.Budget);
  expect(m.cpu.cpl).toBe(3);
}

describe('system instructions under paging', () => {
  it('a user access to a kernel page faults (#PF with U), delivered on the kernel stack', () => {
    const m = pagedMachine();
    m.setReg(0, BigInt(GDT));
    toUser(m, [0x8b, 0x18]); // mov ebx, [rax]
    expect(m.run(5)).toBe(Stop.Halt);
    expect(vectorTaken(m)).toBe(14);
    expect(m.stackQ(0)).toBe(5n); // P | U
    expect(m.cpu.cr2).toBe(GDT);
  });

  it('int n from CPL 3 reads the IDT, GDT and TSS and writes its frame with supervisor rights; iretq returns', () => {
    const m = pagedMachine();
    m.idt(0x80, gate64(Sel.KCS, BigInt(HANDLERS + 0x800), 0xe, { dpl: 3 }));
    m.idt(0x81, gate64(Sel.KCS, BigInt(HANDLERS + 0x810), 0xe, { dpl: 3 }));
    m.bytes(HANDLERS + 0x800, [0x48, 0xcf]);
    toUser(m, [0xcd, 0x80, 0xcd, 0x81]);
    expect(m.run(10)).toBe(Stop.Halt);
    expect(vectorTaken(m)).toBe(0x81);
    expect(m.stackQ(0)).toBe(BigInt(UCODE + 4));
  });

  it('mov Sreg from CPL 3 reads the GDT and sets the accessed bit in it', () => {
    const m = pagedMachine();
    m.gdt(20, segDesc(0, 0xfffff, 0x2, { dpl: 3, db: 1, g: 1 })); // not yet accessed
    toUser(m, [0x66, 0xb8, 0xa3, 0x00, 0x8e, 0xd8, 0x0f, 0x02, 0xc8]); // mov ds, 0xa3; lar ecx, eax
    expect(m.run(3)).toBe(Stop.Budget);
    expect(m.cpu.seg.sel[Seg.DS]).toBe(0xa3);
    expect((m.r32(GDT + 0xa4) >> 8) & 1).toBe(1);
    expect(m.reg(1)).toBe(0xcff300n);
  });

  it('a call gate from CPL 3 builds its frame on the supervisor stack', () => {
    const m = pagedMachine();
    m.bytes(HANDLERS + 0x1000, [0x48, 0xcb]);
    const ptr = USTACK - 0x100;
    m.w32(ptr, 0); m.w16(ptr + 4, Sel.GATE | 3);
    m.setReg(0, BigInt(ptr));
    toUser(m, [0xff, 0x18, 0x90]);
    expect(m.run(2)).toBe(Stop.Budget);
    expect(m.cpu.cpl).toBe(3);
    expect(m.cpu.rip).toBe(UCODE + 2);
  });

  it('in/out at CPL 3 reads the I/O bitmap in the TSS', () => {
    const m = pagedMachine();
    m.w8(TSS + 0x68 + 0x10, 0); // ports 0x80..0x87
    toUser(m, [0xe6, 0x80, 0xe6, 0x88]);
    m.cpu.idtrLimit = 0;
    expect(m.run(2)).toBe(Stop.Fault);
    expect(m.portLog.map((p) => p[0])).toEqual([0x80]);
    expect([m.cpu.stopFault!.vector, m.cpu.stopFault!.errorCode]).toEqual([13, 0]);
  });

  it('the implicit-supervisor flag is clear again after every system access, faulting or not', () => {
    const m = pagedMachine();
    toUser(m, [0x66, 0xb8, 0xf8, 0xff, 0x8e, 0xd8]); // mov ds, 0xfff8: #GP
    m.cpu.idtrLimit = 0;
    expect(m.run(2)).toBe(Stop.Fault);
    expect(m.mem.implicitSupervisor).toBe(false);
    void le;
  });
});
