// The boot vCPU of a PV domain as Xen starts it: 64-bit mode at CPL 3 in guest-kernel
// mode, CS 0xe033 / SS 0xe02b, the other data selectors null, CR3 = the bootstrap L4,
// RIP = the ELF entry, RSP = the top of the boot stack, RSI = start_info, IF set, events
// masked in vcpu_info (the builder did that).

import { SegAttr } from '../../cpu/cpu.js';
import { setFlags } from '../../cpu/flags.js';
import { Cr0, Cr4, Efer, Mode, Seg } from '../../cpu/state.js';
import type { BuiltDomain } from '../builder.js';
import { linearOf } from '../hypercall/args.js';
import { FLAT_KERNEL_CS64, FLAT_KERNEL_SS64 } from '../layout.js';
import type { Vcpu } from '../vcpu.js';

/** Segment and control state every PV vCPU runs with (Xen's flat 64-bit ring-3 segments). */
export function pvCpuState(v: Vcpu): void {
  const cpu = v.cpu;
  cpu.efer = Efer.LME | Efer.LMA | Efer.NXE | Efer.SCE;
  cpu.cr0 = (Cr0.PG | Cr0.PE | Cr0.WP | Cr0.ET | Cr0.NE | Cr0.MP) >>> 0;
  cpu.cr4 = Cr4.PAE | Cr4.PGE | Cr4.OSFXSR | Cr4.OSXMMEXCPT;
  cpu.mode = Mode.Long64;
  cpu.cpl = 3;
  const s = cpu.seg;
  for (let i = 0; i < 6; i++) { s.sel[i] = 0; s.baseLo[i] = 0; s.baseHi[i] = 0; s.limit[i] = 0; s.attr[i] = 0; }
  s.sel[Seg.CS] = FLAT_KERNEL_CS64; s.limit[Seg.CS] = 0xffffffff;
  s.attr[Seg.CS] = 0xfb | SegAttr.L | SegAttr.G; // present, DPL 3, code, readable, accessed
  s.sel[Seg.SS] = FLAT_KERNEL_SS64; s.limit[Seg.SS] = 0xffffffff;
  s.attr[Seg.SS] = 0xf3 | SegAttr.DB | SegAttr.G; // present, DPL 3, data, writable, accessed
}

/** Registers of the boot vCPU; the caller then loads the L4 (setKernelBaseptr), which sets
 *  CR3 and takes the base pointer's references. */
export function pvBootVcpu(v: Vcpu, b: BuiltDomain): void {
  const cpu = v.cpu;
  pvCpuState(v);
  v.kernelMode = true;
  cpu.r.fill(0);
  setReg64(v, 4, b.stackTopVa);   // rsp
  setReg64(v, 6, b.startInfoVa);  // rsi
  cpu.rip = linearOf(b.entryVa);
  setFlags(cpu.f, 0x202);
  v.online = true;
  v.initialised = true;
}

/** Set a 64-bit general register from a bigint. */
export function setReg64(v: Vcpu, reg: number, val: bigint): void {
  const u = BigInt.asUintN(64, val);
  v.cpu.r[reg * 2] = Number(u & 0xffffffffn) | 0;
  v.cpu.r[reg * 2 + 1] = Number(u >> 32n) | 0;
}
