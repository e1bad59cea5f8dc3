// Port I/O: in and out (E4..E7, EC..EF) through cpu.ports. When CPL > IOPL (protected and
// long mode), the I/O permission bitmap of the current 32/64-bit TSS decides, as on hardware;
// checkIoPermission is shared with ins/outs (ops/string.ts).

import type { Cpu } from '../cpu.js';
import { CpuFault, Vec } from '../fault.js';
import { FS } from '../flags.js';
import { def, Imm, type Handler, type Insn } from '../insn.js';
import { linBase, sysRd16 } from '../segments.js';
import { Mode, Seg } from '../state.js';

/** #GP(0) unless the current privilege may access ports port..port+size-1. */
export function checkIoPermission(cpu: Cpu, port: number, size: number): void {
  if (cpu.mode === Mode.Real || cpu.cpl <= ((cpu.f[FS.FLAGS] >> 12) & 3)) return;
  const s = cpu.seg;
  const type = s.attr[Seg.TR] & 0x1f; // S = 0 and a 32/64-bit TSS, available or busy
  const lim = s.limit[Seg.TR];
  if ((type !== 9 && type !== 0xb) || lim < 0x67) throw new CpuFault(Vec.GP, 0);
  const base = linBase(cpu, Seg.TR);
  const off = sysRd16(cpu, base + 0x66) + (port >>> 3);
  // Two bytes are read, so a check near the end of a byte needs no special case.
  if (off + 1 > lim) throw new CpuFault(Vec.GP, 0);
  const bits = sysRd16(cpu, base + off);
  if ((bits >>> (port & 7)) & ((1 << size) - 1)) throw new CpuFault(Vec.GP, 0);
}

/** Port operand size: byte forms 1, else 2 or 4 (REX.W does not make it 8). */
function psize(d: Insn): number { return d.osz === 1 ? 1 : d.osz === 2 ? 2 : 4; }

function inFrom(cpu: Cpu, d: Insn, port: number): void {
  const size = psize(d);
  checkIoPermission(cpu, port, size);
  cpu.setReg(0, size, cpu.ports.portIn(port, size), 0);
}
function outTo(cpu: Cpu, d: Insn, port: number): void {
  const size = psize(d);
  checkIoPermission(cpu, port, size);
  const v = cpu.getReg(0, size);
  cpu.ports.portOut(port, size, size === 4 ? v : v & (size === 1 ? 0xff : 0xffff));
}

const inImm: Handler = (cpu, d) => inFrom(cpu, d, d.imm & 0xff);
const inDx: Handler = (cpu, d) => inFrom(cpu, d, cpu.r[4] & 0xffff);
const outImm: Handler = (cpu, d) => outTo(cpu, d, d.imm & 0xff);
const outDx: Handler = (cpu, d) => outTo(cpu, d, cpu.r[4] & 0xffff);

// A port access can raise an interrupt line or change device state the run loop watches:
// end the block so pending events are looked at.
def(0, 0xe4, { byte: true, imm: Imm.IbU, h: inImm, end: true, cycles: 30 });
def(0, 0xe5, { imm: Imm.IbU, h: inImm, end: true, cycles: 30 });
def(0, 0xe6, { byte: true, imm: Imm.IbU, h: outImm, end: true, cycles: 30 });
def(0, 0xe7, { imm: Imm.IbU, h: outImm, end: true, cycles: 30 });
def(0, 0xec, { byte: true, h: inDx, end: true, cycles: 30 });
def(0, 0xed, { h: inDx, end: true, cycles: 30 });
def(0, 0xee, { byte: true, h: outDx, end: true, cycles: 30 });
def(0, 0xef, { h: outDx, end: true, cycles: 30 });
