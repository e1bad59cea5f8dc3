// Decoder cases the host can't arbitrate (it has AVX): VEX/EVEX must be #UD in our model,
// which does not advertise AVX; and the 15-byte limit at the exact boundary.
import { describe, expect, it } from 'vitest';
import { RawMachine } from '../../src/guests/raw.js';

function run(code: number[]): ReturnType<RawMachine['run']> {
  const m = new RawMachine(4);
  m.load(Uint8Array.from([...code, 0xf4]), 0x1000);
  m.cpu.rip = 0x1000;
  return m.run(100);
}

describe('decoder', () => {
  it('raises #UD for VEX (C4/C5) and EVEX (62) encodings in 64-bit mode', () => {
    for (const code of [[0xc5, 0xf8, 0x77], [0xc4, 0xe2, 0x79, 0x18, 0x00], [0x62, 0xf1, 0x7c, 0x48, 0x58, 0xc1]]) {
      const r = run(code);
      expect(r.exception).toBe('#UD');
      expect(r.regs.rip).toBe('0x1000');
    }
  });
  it('accepts exactly 15 bytes and raises #GP(0) at 16', () => {
    const nop15 = [...Array(13).fill(0x66), 0x0f, 0x1f, 0xc0].slice(-15); // 12x66 + 0f 1f c0 = 15
    expect(nop15.length).toBe(15);
    expect(run(nop15).stop).toBe('halt');
    const r = run([0x66, ...nop15]);
    expect(r.exception).toBe('#GP');
    expect(r.errorCode).toBe(0);
  });
  it('ignores a REX prefix that is not directly before the opcode', () => {
    // 48 66 89 c0: the REX is followed by 66, so it is dropped: mov ax, ax (16-bit).
    const m = new RawMachine(4);
    m.load(Uint8Array.from([0x48, 0x66, 0xb8, 0x34, 0x12, 0xf4]), 0x1000); // mov ax, 0x1234 (no REX.W)
    m.cpu.rip = 0x1000;
    m.setReg('rax', 0xffffffffffffffffn);
    const r = m.run(10);
    expect(r.regs.rax).toBe('0xffffffffffff1234');
  });
});
