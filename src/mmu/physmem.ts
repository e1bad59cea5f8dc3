// Machine memory: one ArrayBuffer cut into 4 KiB frames (an MFN is a frame index), with a
// per-frame byte that says whether decoded code lives there.

export const PAGE_SIZE = 4096;

export class PhysMem {
  readonly u8: Uint8Array;
  readonly dv: DataView;
  readonly frames: number;
  /** 1 where the CPU's decode cache holds code from that frame. */
  readonly codeFrame: Uint8Array;

  constructor(readonly size: number) {
    if (size % PAGE_SIZE !== 0 || size <= 0) throw new Error(`memory size ${size} is not a positive multiple of 4 KiB`);
    this.u8 = new Uint8Array(size);
    this.dv = new DataView(this.u8.buffer);
    this.frames = size / PAGE_SIZE;
    this.codeFrame = new Uint8Array(this.frames);
  }
}
