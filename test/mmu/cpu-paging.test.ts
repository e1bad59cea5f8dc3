// A Cpu running on PagedMemory under 4-level paging: kernel code, GDT, IDT, data and stack
// in the high half (0xffffffff80000000), a Linux-style direct map of the first 2 MiB with a
// large page (0xffff888000000000), a demand-paging #PF handler that maps the missing page
// and returns with iretq, then a fetch from an NX page whose #PF (P|I) stops the run.
import { describe, expect, it } from 'vitest';
import { Cpu, Stop } from '../../src/cpu/cpu.js';
import '../../src/cpu/ops/index.js';
import { PagedMemory } from '../../src/mmu/paged.js';
import { PhysMem } from '../../src/mmu/physmem.js';

/*  Assembled with GNU as (--64, intel syntax); `data` is start + 0x3000.
 *  0x00 start:   movabs rax, 0x1122334455667788
 *  0x0a          mov [rip + data], rax
 *  0x11          movabs rbx, 0xffff888000103000       ; data, through the direct map
 *  0x1b          mov rcx, [rbx]
 *  0x1e          mov edx, 0x400000                    ; not mapped yet
 *  0x23          mov dword ptr [rdx], 0x5a            ; #PF(W): the handler maps it, then retried
 *  0x29          mov eax, [rdx]
 *  0x2b          lea r9, [rip + data]
 *  0x32          jmp r9                               ; data is NX: #PF(P|I)
 *  0x35 handler: mov rsi, cr2
 *  0x38          pop rdi                              ; error code
 *  0x39          test edi, 0x10
 *  0x3f          jnz stop
 *  0x41          movabs rax, 0xffff888000004000       ; the PTE for 0x400000, via the direct map
 *  0x4b          mov qword ptr [rax], 0x105007
 *  0x52          invlpg [rsi]
 *  0x55          iretq
 *  0x57 stop:    mov r8, [rsp]                        ; the RIP of the fault
 *  0x5b          hlt
 */
const PROGRAM = [
  0x48, 0xb8, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, 0x48, 0x89, 0x05, 0xef, 0x2f, 0x00, 0x00, 0x48, 0xbb, 0x00,
  0x30, 0x10, 0x00, 0x80, 0x88, 0xff, 0xff, 0x48, 0x8b, 0x0b, 0xba, 0x00, 0x00, 0x40, 0x00, 0xc7, 0x02, 0x5a, 0x00, 0x00,
  0x00, 0x8b, 0x02, 0x4c, 0x8d, 0x0d, 0xce, 0x2f, 0x00, 0x00, 0x41, 0xff, 0xe1, 0x0f, 0x20, 0xd6, 0x5f, 0xf7, 0xc7, 0x10,
  0x00, 0x00, 0x00, 0x75, 0x16, 0x48, 0xb8, 0x00, 0x40, 0x00, 0x00, 0x80, 0x88, 0xff, 0xff, 0x48, 0xc7, 0x00, 0x07, 0x50,
  0x10, 0x00, 0x0f, 0x01, 0x3e, 0x48, 0xcf, 0x4c, 0x8b, 0x04, 0x24, 0xf4,
];
const HANDLER = 0x35, HLT = 0x5b;

const KBASE = 0xffff_ffff_8000_0000n;
const lin48 = (v: bigint) => Number(v & 0xffff_ffff_ffffn);
const P = 1n, RW = 2n, US = 4n, A = 0x20n, D = 0x40n, PS = 0x80n, G = 0x100n, NX = 1n << 63n;

// Physical layout: tables in the first 64 KiB; kernel pages at 1 MiB.
const PML4 = 0x1000, PDPT_LO = 0x2000, PD_LO = 0x3000, PT_LO = 0x4000;
const PDPT_K = 0x5000, PD_K = 0x6000, PT_K = 0x7000, PDPT_DM = 0x8000, PD_DM = 0x9000;
const K_CODE = 0x100000, K_GDT = 0x101000, K_IDT = 0x102000, K_DATA = 0x103000, K_STACK = 0x104000, FRESH = 0x105000;

function build() {
  const phys = new PhysMem(4 << 20);
  const dv = phys.dv;
  const w64 = (pa: number, v: bigint) => dv.setBigUint64(pa, v, true);
  const idx = (lin: bigint, level: number) => Number((lin >> BigInt(12 + 9 * (level - 1))) & 511n);
  // user half: 0x400000 has a page table, with nothing in it yet
  w64(PML4 + idx(0x400000n, 4) * 8, BigInt(PDPT_LO) | P | RW | US);
  w64(PDPT_LO + idx(0x400000n, 3) * 8, BigInt(PD_LO) | P | RW | US);
  w64(PD_LO + idx(0x400000n, 2) * 8, BigInt(PT_LO) | P | RW | US);
  // kernel image: code (RX), GDT and IDT (RO), data and stack (RW, NX); all global
  w64(PML4 + idx(KBASE, 4) * 8, BigInt(PDPT_K) | P | RW);
  w64(PDPT_K + idx(KBASE, 3) * 8, BigInt(PD_K) | P | RW);
  w64(PD_K + idx(KBASE, 2) * 8, BigInt(PT_K) | P | RW);
  w64(PT_K + 0 * 8, BigInt(K_CODE) | P | G);
  w64(PT_K + 1 * 8, BigInt(K_GDT) | P | G | NX);
  w64(PT_K + 2 * 8, BigInt(K_IDT) | P | G | NX);
  w64(PT_K + 3 * 8, BigInt(K_DATA) | P | RW | G | NX);
  w64(PT_K + 4 * 8, BigInt(K_STACK) | P | RW | G | NX);
  // direct map of the first 2 MiB
  const DM = 0xffff_8880_0000_0000n;
  w64(PML4 + idx(DM, 4) * 8, BigInt(PDPT_DM) | P | RW | NX);
  w64(PDPT_DM + idx(DM, 3) * 8, BigInt(PD_DM) | P | RW);
  w64(PD_DM + idx(DM, 2) * 8, 0n | P | RW | PS | G);

  phys.u8.set(PROGRAM, K_CODE);
  // accessed bits preset: the GDT page is read-only (as Linux maps it), and the CPU's
  // write of an accessed bit would fault
  w64(K_GDT + 8, 0x00209b0000000000n);  // 64-bit code, DPL 0
  w64(K_GDT + 16, 0x0000930000000000n); // data
  const h = KBASE + BigInt(HANDLER);
  w64(K_IDT + 14 * 16, (h & 0xffffn) | (0x08n << 16n) | (0x8e00n << 32n) | (((h >> 16n) & 0xffffn) << 48n));
  w64(K_IDT + 14 * 16 + 8, (h >> 32n) & 0xffffffffn);

  const mem = new PagedMemory(phys);
  const cpu = new Cpu(mem);
  mem.attach(cpu);
  cpu.cr0 |= 0x10000;  // WP
  cpu.cr4 |= 0x80;     // PGE
  cpu.cr3Lo = PML4; cpu.cr3Hi = 0;
  mem.flush();
  cpu.gdtrBase = lin48(KBASE + 0x1000n); cpu.gdtrLimit = 23;
  cpu.idtrBase = lin48(KBASE + 0x2000n); cpu.idtrLimit = 256 * 16 - 1;
  cpu.rip = lin48(KBASE);
  const sp = KBASE + 0x5000n;
  cpu.r[8] = Number(sp & 0xffffffffn) | 0; cpu.r[9] = Number(sp >> 32n) | 0;
  cpu.rflags = 0x2;
  return { phys, mem, cpu, r64: (pa: number) => dv.getBigUint64(pa, true) };
}

const reg = (cpu: Cpu, i: number) => (BigInt(cpu.r[i * 2 + 1] >>> 0) << 32n) | BigInt(cpu.r[i * 2] >>> 0);

describe('a CPU on 4-level paging', () => {
  it('runs high-half code, takes and returns from a #PF through the IDT, and reports an NX fetch', () => {
    const { phys, cpu, r64 } = build();
    expect(cpu.run(100)).toBe(Stop.Halt);
    expect(cpu.stopFault).toBeNull();
    expect(cpu.rip).toBe(lin48(KBASE) + HLT + 1);
    // the store went to the data page; the direct map read it back
    expect(phys.dv.getBigUint64(K_DATA, true)).toBe(0x1122334455667788n);
    expect(reg(cpu, 1)).toBe(0x1122334455667788n);
    // the first fault was mapped and retried
    expect(phys.dv.getUint32(FRESH, true)).toBe(0x5a);
    expect(reg(cpu, 0)).toBe(0x5an);
    // the second: a fetch from the NX data page, CR2 = RIP = its address (canonical)
    expect(reg(cpu, 7)).toBe(0x11n);                  // rdi: P | I/D
    expect(reg(cpu, 6)).toBe(KBASE + 0x3000n);        // rsi: cr2
    expect(reg(cpu, 8)).toBe(KBASE + 0x3000n);        // r8: the pushed RIP
    expect(cpu.cr2).toBe(lin48(KBASE + 0x3000n));
    // A/D bits as hardware leaves them
    expect(r64(PT_LO) & (A | D)).toBe(A | D);                      // written after the fix-up
    expect(r64(PT_K + 3 * 8) & (A | D)).toBe(A | D);               // data: written
    expect(r64(PT_K + 0 * 8) & (A | D)).toBe(A);                   // code: fetched only
    expect(r64(PT_K + 2 * 8) & (A | D)).toBe(A);                   // IDT: read on delivery
    expect(r64(PT_K + 4 * 8) & (A | D)).toBe(A | D);               // stack: the frames
    expect(r64(PD_DM) & (A | D)).toBe(A | D);                      // direct map: the handler wrote the PTE through it
    expect(r64(PML4 + 511 * 8) & A).toBe(A);
  });

  it('without the handler mapping the page, a user-half access faults with the exact error code', () => {
    const { cpu, mem } = build();
    cpu.idtrLimit = 0; // no IDT: the CPU stops at the first exception
    expect(cpu.run(100)).toBe(Stop.Fault);
    expect(cpu.stopFault?.vector).toBe(14);
    expect(cpu.stopFault?.errorCode).toBe(2);
    expect(cpu.cr2).toBe(0x400000);
    expect(cpu.rip).toBe(lin48(KBASE) + 0x23);
    // the kernel's code and data translations are cached, global: they survive a CR3 reload
    mem.flush();
    expect(mem.tlbEntries).toBeGreaterThan(0);
  });
});
