// x87 FPU state. The arithmetic lives in float80.ts (software 80-bit arithmetic) and the
// instruction families in ops/x87-*.ts; this holds the registers. Physical register p is
// ST((p - top) & 7). The FXSAVE image (fxsave.ts) is the canonical external form.

export class Fpu {
  /** Physical registers R0..R7 as 80-bit values: mantissa (64 bits as two int32) and sign+exponent (16 bits). */
  readonly mantLo = new Int32Array(8);
  readonly mantHi = new Int32Array(8);
  readonly signExp = new Uint16Array(8);
  cw = 0x037f;
  /** Status word without TOP (which lives in `top`); ES and B always summarise the unmasked
   *  exception flags, so a pending #MF is simply sw & 0x80. */
  sw = 0;
  /** Full tag word (2 bits per physical register: 0 valid, 1 zero, 2 special, 3 empty). */
  tw = 0xffff;
  top = 0;
  /** Last non-control instruction: opcode (11 bits), address, and memory operand offset. */
  fop = 0;
  fipLo = 0; fipHi = 0; fcs = 0;
  fdpLo = 0; fdpHi = 0; fds = 0;

  reset(): void {
    this.cw = 0x037f; this.sw = 0; this.tw = 0xffff; this.top = 0; this.fop = 0;
    this.fipLo = this.fipHi = this.fcs = this.fdpLo = this.fdpHi = this.fds = 0;
  }
}
