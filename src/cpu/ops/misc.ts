// Flag instructions, nops and hints, fences, cpuid, rdtsc/rdtscp, hlt, ud0/ud1/ud2, and the
// 0F AE group (fences here; fxsave/fxrstor, ldmxcsr/stmxcsr, xsave... register themselves
// into grp15Mem from their own families).

import type { Cpu } from '../cpu.js';
import { CpuFault, Vec, ud } from '../fault.js';
import { FS, K, getCF, getFlags, materialize, setFlags } from '../flags.js';
import { def, Map as OpMap, type Handler, type Insn } from '../insn.js';
import { Cr4, F, Mode } from '../state.js';

const TWO32 = 4294967296;

function editFlags(cpu: Cpu, clear: number, set: number): void {
  const f = cpu.f;
  materialize(f);
  f[FS.FLAGS] = (f[FS.FLAGS] & ~clear) | set;
}

const clc: Handler = (cpu) => editFlags(cpu, F.CF, 0);
const stc: Handler = (cpu) => editFlags(cpu, 0, F.CF);
const cmc: Handler = (cpu) => editFlags(cpu, F.CF, getCF(cpu.f) ? 0 : F.CF);
const cld: Handler = (cpu) => { cpu.f[FS.FLAGS] &= ~F.DF; };
const std: Handler = (cpu) => { cpu.f[FS.FLAGS] |= F.DF; };

/** IOPL-sensitive instructions: CPL <= IOPL, else #GP(0). */
export function checkIopl(cpu: Cpu): void {
  if (cpu.mode !== Mode.Real && cpu.cpl > ((cpu.f[FS.FLAGS] >> 12) & 3)) throw new CpuFault(Vec.GP, 0);
}
/** CPL 0 only, else #GP(0). */
export function checkCpl0(cpu: Cpu): void {
  if (cpu.cpl !== 0) throw new CpuFault(Vec.GP, 0);
}

const cli: Handler = (cpu) => { checkIopl(cpu); cpu.f[FS.FLAGS] &= ~F.IF; };
const sti: Handler = (cpu) => {
  checkIopl(cpu);
  if (!(cpu.f[FS.FLAGS] & F.IF)) { cpu.f[FS.FLAGS] |= F.IF; cpu.inhibitIrq = true; }
  cpu.endBlock();
};

const lahf: Handler = (cpu) => {
  const v = getFlags(cpu.f) & 0xd5 | 2;
  cpu.setReg(16, 1, v, 0);
};
const sahf: Handler = (cpu) => {
  const ah = (cpu.r[0] >> 8) & 0xd5;
  const f = cpu.f;
  setFlags(f, (getFlags(f) & ~0xd5) | ah);
};

const nop: Handler = () => {};

const hlt: Handler = (cpu) => { checkCpl0(cpu); cpu.halted = true; cpu.endBlock(); };

const cpuid: Handler = (cpu) => {
  const r = cpu.r;
  const q = cpu.model.query(r[0], r[2], 0, (cpu.cr4 & Cr4.OSXSAVE) !== 0);
  r[0] = q[0]; r[1] = 0; r[6] = q[1]; r[7] = 0; r[2] = q[2]; r[3] = 0; r[4] = q[3]; r[5] = 0;
};

function tscToEdxEax(cpu: Cpu): void {
  const r = cpu.r;
  const t = cpu.tsc();
  const hi = Math.floor(t / TWO32);
  r[0] = (t - hi * TWO32) | 0; r[1] = 0; r[4] = hi | 0; r[5] = 0;
}
const rdtsc: Handler = (cpu) => {
  if ((cpu.cr4 & Cr4.TSD) && cpu.cpl !== 0) throw new CpuFault(Vec.GP, 0);
  tscToEdxEax(cpu);
};
const rdtscp: Handler = (cpu) => {
  if ((cpu.cr4 & Cr4.TSD) && cpu.cpl !== 0) throw new CpuFault(Vec.GP, 0);
  tscToEdxEax(cpu);
  const aux = cpu.msrs.get(0xc0000103);
  cpu.r[2] = aux ? aux[0] : 0; cpu.r[3] = 0;
};

/** 0F AE with a memory operand, by ModRM.reg: 0 fxsave, 1 fxrstor, 2 ldmxcsr, 3 stmxcsr,
 *  4 xsave, 5 xrstor, 6 xsaveopt, 7 clflush. Families fill their slots. */
export const grp15Mem: (Handler | undefined)[] = new Array(8).fill(undefined);
const clflush: Handler = (cpu, d) => { cpu.mem.rd8(cpu.ea(d)); };
grp15Mem[7] = clflush;
/** Register forms: 5 lfence, 6 mfence, 7 sfence (fences order nothing in one interpreter). */
const grp15Reg = (d: Insn): Handler | undefined => {
  const r = d.reg & 7;
  if (d.mp !== 0) return undefined;
  return r >= 5 ? nop : undefined;
};

def(0, 0xf8, { h: clc });
def(0, 0xf9, { h: stc });
def(0, 0xf5, { h: cmc });
def(0, 0xfc, { h: cld });
def(0, 0xfd, { h: std });
def(0, 0xfa, { h: cli });
def(0, 0xfb, { h: sti, end: true });
def(0, 0x9e, { h: sahf });
def(0, 0x9f, { h: lahf });
def(0, 0xf4, { h: hlt, end: true });
def(OpMap.X0F, 0xa2, { h: cpuid, cycles: 40 });
def(OpMap.X0F, 0x31, { h: rdtsc, cycles: 20 });
def(OpMap.X0F, 0x0b, { h: () => ud() });               // ud2
def(OpMap.X0F, 0xb9, { modrm: true, h: () => ud() });  // ud1
def(OpMap.X0F, 0xff, { modrm: true, h: () => ud() });  // ud0
// Hint nops: 0F 18..1F (prefetch, nop Ev, reserved nops). The memory operand is not accessed.
for (let op = 0x18; op <= 0x1f; op++) def(OpMap.X0F, op, { modrm: true, h: nop });
def(OpMap.X0F, 0x0d, { modrm: true, h: nop }); // prefetchw
def(OpMap.X0F, 0xae, { modrm: true, sel: (d) => (d.mod === 3 ? grp15Reg(d) : d.mp === 0 ? grp15Mem[d.reg & 7] : undefined) });
export const rdtscpHandler = rdtscp;
