// Tests of the native runner itself (test/native/cpurun.c via test/harness/native.ts),
// against facts about x86_64 that don't depend on the interpreter.
import { describe, expect, it } from 'vitest';
import {
  type CpuCase,
  CODE_BASE,
  DATA_BASE,
  DATA_SIZE,
  STACK_BASE,
  STACK_SIZE,
} from '../harness/case.js';
import { defaultFxImage, runNative, type NativeOutcome } from '../harness/native.js';

const RAX = 0, RCX = 1, RDX = 2, RBX = 3, RSP = 4, RBP = 5, RSI = 6, RDI = 7;
const R8 = 8, R15 = 15;

// The arithmetic flags and DF. (case.ts's FLAGS_MASK, 0xED5, also contains bit 9 = IF.)
const FLAGS_MASK = 0xcd5n;
const IF = 0x200n;
const CF = 0x1n, PF = 0x4n, AF = 0x10n, ZF = 0x40n, SF = 0x80n, DF = 0x400n, OF = 0x800n;

const C = BigInt(CODE_BASE);

function regs(over: Record<number, bigint> = {}): bigint[] {
  const r = Array.from({ length: 16 }, () => 0n);
  r[RSP] = BigInt(STACK_BASE + 0x800);
  for (const [k, v] of Object.entries(over)) r[Number(k)] = v;
  return r;
}

function mk(code: number[], over: Partial<CpuCase> & { r?: Record<number, bigint> } = {}): CpuCase {
  const { r, ...rest } = over;
  return { code: Uint8Array.from(code), regs: regs(r), rflags: 0n, ...rest };
}

function run1(c: CpuCase): NativeOutcome {
  const [o] = runNative([c]);
  return o!;
}

function u64le(buf: Uint8Array, off: number): bigint {
  return new DataView(buf.buffer, buf.byteOffset).getBigUint64(off, true);
}

function fxWithXmm(xmm: Record<number, number[]>): Uint8Array {
  const fx = defaultFxImage();
  const dv = new DataView(fx.buffer);
  for (const [i, lanes] of Object.entries(xmm)) {
    lanes.forEach((f, j) => dv.setFloat32(160 + 16 * Number(i) + 4 * j, f, true));
  }
  return fx;
}

function xmmF32(fx: Uint8Array, i: number): number[] {
  const dv = new DataView(fx.buffer, fx.byteOffset);
  return [0, 1, 2, 3].map((j) => dv.getFloat32(160 + 16 * i + 4 * j, true));
}

describe('native runner: ok path', () => {
  it('add rax, rbx', () => {
    const o = run1(mk([0x48, 0x01, 0xd8], { r: { [RAX]: 1n, [RBX]: 2n }, rflags: DF }));
    expect(o.status).toBe('ok');
    expect(o.rip).toBe(C + 3n);
    expect(o.regs[RAX]).toBe(3n);
    expect(o.regs[RBX]).toBe(2n);
    expect(o.rflags & FLAGS_MASK).toBe(PF | DF);
    // bit 1 and IF are always set in user mode; nothing else outside the mask.
    expect(o.rflags & ~FLAGS_MASK).toBe(0x2n | IF);
  });

  it('add rax, rbx with signed overflow', () => {
    const o = run1(mk([0x48, 0x01, 0xd8], { r: { [RAX]: 0x7fffffffffffffffn, [RBX]: 1n }, rflags: CF | ZF }));
    expect(o.regs[RAX]).toBe(0x8000000000000000n);
    expect(o.rflags & FLAGS_MASK).toBe(OF | SF | AF | PF);
  });

  it('round-trips all 16 registers and the flags through an empty run', () => {
    const r: Record<number, bigint> = {};
    for (let i = 0; i < 16; i++) r[i] = 0x0123456789abcdefn ^ (BigInt(i) * 0x1111111111111111n);
    r[RSP] = 0xdead0000beef0007n; // arbitrary, never used
    const c = mk([], { r, rflags: FLAGS_MASK });
    const o = run1(c);
    expect(o.status).toBe('ok');
    expect(o.rip).toBe(C);
    expect(o.regs).toEqual(c.regs);
    expect(o.rflags).toBe(FLAGS_MASK | IF | 0x2n);
  });

  it('ignores rflags bits outside the mask (TF, AC, IF...)', () => {
    const o = run1(mk([0x90], { rflags: 0xffffffffn }));
    expect(o.status).toBe('ok');
    expect(o.rflags).toBe(FLAGS_MASK | IF | 0x2n);
  });

  it('a store shows up in data', () => {
    // mov [0x200010], rax
    const o = run1(mk([0x48, 0x89, 0x04, 0x25, 0x10, 0x00, 0x20, 0x00], { r: { [RAX]: 0x1122334455667788n } }));
    expect(o.status).toBe('ok');
    expect(u64le(o.data, 0x10)).toBe(0x1122334455667788n);
    expect(o.data.length).toBe(DATA_SIZE);
    expect(o.data.filter((b) => b !== 0).length).toBe(8);
  });

  it('loads read the initial data, including across the page boundary', () => {
    const data = new Uint8Array(DATA_SIZE);
    data.set([1, 2, 3, 4, 5, 6, 7, 8], 0xffc);
    // mov rax, [rbx]
    const o = run1(mk([0x48, 0x8b, 0x03], { r: { [RBX]: BigInt(DATA_BASE + 0xffc) }, data }));
    expect(o.regs[RAX]).toBe(0x0807060504030201n);
    expect(o.data).toEqual(data);
  });

  it('push changes the stack and rsp; pop reads the initial stack', () => {
    const stack = new Uint8Array(STACK_SIZE);
    stack.set([0xaa, 0xbb], 0x800);
    // push rax; pop rcx; pop rdx
    const o = run1(mk([0x50, 0x59, 0x5a], { r: { [RAX]: 0xcafef00dn }, stack }));
    expect(o.status).toBe('ok');
    expect(u64le(o.stack, 0x7f8)).toBe(0xcafef00dn);
    expect(o.regs[RCX]).toBe(0xcafef00dn);
    expect(o.regs[RDX]).toBe(0xbbaan);
    expect(o.regs[RSP]).toBe(BigInt(STACK_BASE + 0x808));
  });

  it('push rax alone', () => {
    const o = run1(mk([0x50], { r: { [RAX]: 0x42n } }));
    expect(o.regs[RSP]).toBe(BigInt(STACK_BASE + 0x7f8));
    expect(u64le(o.stack, 0x7f8)).toBe(0x42n);
  });

  it('jmp rel8 forward ends at the second exit', () => {
    // jmp +0x10 ; exits at 2 (fall through) and 0x12 (taken)
    const o = run1(mk([0xeb, 0x10], { exits: [2, 0x12] }));
    expect(o.status).toBe('ok');
    expect(o.rip).toBe(C + 0x12n);
  });

  it('exits closer than 5 bytes (int3 exits) work, both taken and not taken', () => {
    // jz +2 over two nops; exits at 2 and 4
    const jz = [0x74, 0x02];
    const taken = run1(mk(jz, { exits: [2, 4], rflags: ZF }));
    expect(taken.status).toBe('ok');
    expect(taken.rip).toBe(C + 4n);
    const notTaken = run1(mk(jz, { exits: [4, 2], rflags: 0n }));
    expect(notTaken.status).toBe('ok');
    expect(notTaken.rip).toBe(C + 2n);
    // Adjacent exits.
    const adj = run1(mk([0x75, 0x00], { exits: [2, 3, 4, 5] }));
    expect(adj.rip).toBe(C + 2n);
    // An exit in the last 4 bytes of the page.
    const end = run1(mk([0xe9, ...le32(0xffe - 5)], { exits: [5, 0xffe] }));
    expect(end.status).toBe('ok');
    expect(end.rip).toBe(C + 0xffen);
  });

  it('int3 exits and jmp exits report the same state', () => {
    // add rax, rbx; addps xmm0, xmm1; std; push rax
    const code = [0x48, 0x01, 0xd8, 0x0f, 0x58, 0xc1, 0xfd, 0x50];
    const base = {
      r: { [RAX]: 0xffffffffffffffffn, [RBX]: 1n, [R15]: 77n },
      fx: fxWithXmm({ 0: [1, 2, 3, 4], 1: [0.5, 0.5, 0.5, 0.5], 7: [9, 9, 9, 9] }),
    };
    const [viaJmp, viaInt3] = runNative([
      mk(code, { ...base, exits: [code.length] }),
      mk(code, { ...base, exits: [code.length, code.length + 1] }),
    ]);
    expect(viaJmp!.status).toBe('ok');
    expect(viaInt3!.status).toBe('ok');
    expect(viaInt3!.rip).toBe(viaJmp!.rip);
    expect(viaInt3!.regs).toEqual(viaJmp!.regs);
    expect(viaInt3!.rflags & FLAGS_MASK).toBe(viaJmp!.rflags & FLAGS_MASK);
    expect(viaJmp!.rflags & FLAGS_MASK).toBe(CF | ZF | PF | AF | DF);
    expect(Array.from(viaInt3!.fx.subarray(24, 416))).toEqual(Array.from(viaJmp!.fx.subarray(24, 416)));
    expect(viaInt3!.stack).toEqual(viaJmp!.stack);
  });

  it('addps xmm0, xmm1 through the FXSAVE image', () => {
    const fx = fxWithXmm({ 0: [1, 2, 3, 4], 1: [10, 20, 30, 40] });
    const o = run1(mk([0x0f, 0x58, 0xc1], { fx }));
    expect(o.status).toBe('ok');
    expect(xmmF32(o.fx, 0)).toEqual([11, 22, 33, 44]);
    expect(xmmF32(o.fx, 1)).toEqual([10, 20, 30, 40]);
    const dv = new DataView(o.fx.buffer, o.fx.byteOffset);
    expect(dv.getUint32(24, true)).toBe(0x1f80); // MXCSR, no exception flags
    expect(dv.getUint16(0, true)).toBe(0x037f); // FCW
  });

  it('x87: fld1; fld1; faddp leaves 2.0 in st0', () => {
    const o = run1(mk([0xd9, 0xe8, 0xd9, 0xe8, 0xde, 0xc1]));
    expect(o.status).toBe('ok');
    // st0 is at offset 32 in 80-bit format: 2.0 = exponent 0x4000, mantissa 0x8000000000000000
    expect(u64le(o.fx, 32)).toBe(0x8000000000000000n);
    expect(new DataView(o.fx.buffer, o.fx.byteOffset).getUint16(40, true)).toBe(0x4000);
    const fsw = new DataView(o.fx.buffer, o.fx.byteOffset).getUint16(2, true);
    expect((fsw >> 11) & 7).toBe(7); // TOP = 7 (one value on the stack)
    expect(o.fx[4]).toBe(0x80); // abridged tag word: only physical register 7 valid
  });

  it('fs: override uses base 0', () => {
    const data = new Uint8Array(DATA_SIZE);
    data.set([0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88], 0x40);
    // mov rax, fs:[0x200040]
    const o = run1(mk([0x64, 0x48, 0x8b, 0x04, 0x25, 0x40, 0x00, 0x20, 0x00], { data }));
    expect(o.status).toBe('ok');
    expect(o.regs[RAX]).toBe(0x8877665544332211n);
  });

  it('runs a batch of 1000 cases', () => {
    const cases: CpuCase[] = [];
    for (let i = 0; i < 1000; i++) {
      const a = BigInt.asUintN(64, BigInt(i) * 0x9e3779b97f4a7c15n);
      const b = BigInt.asUintN(64, BigInt(i * 7919) << 40n);
      // add rax, rbx ; mov [0x200000 + 8*(i%1024)], rax
      const off = DATA_BASE + 8 * (i % 1024);
      const code = [0x48, 0x01, 0xd8, 0x48, 0x89, 0x04, 0x25, ...le32(off)];
      cases.push(mk(code, { r: { [RAX]: a, [RBX]: b } }));
    }
    const t0 = Date.now();
    const outs = runNative(cases);
    const ms = Date.now() - t0;
    expect(outs.length).toBe(1000);
    outs.forEach((o, i) => {
      const c = cases[i]!;
      const sum = BigInt.asUintN(64, c.regs[RAX]! + c.regs[RBX]!);
      expect(o.status).toBe('ok');
      expect(o.regs[RAX]).toBe(sum);
      expect(u64le(o.data, 8 * (i % 1024))).toBe(sum);
      expect((o.rflags & CF) !== 0n).toBe(sum < c.regs[RAX]!);
    });
    expect(ms).toBeLessThan(20_000);
  });
});

describe('native runner: exceptions', () => {
  it('div rcx with rcx = 0 is #DE at the div', () => {
    // nop; div rcx
    const o = run1(mk([0x90, 0x48, 0xf7, 0xf1], { r: { [RAX]: 5n, [RCX]: 0n, [R8]: 8n } }));
    expect(o.status).toBe('fault');
    expect(o.vector).toBe(0);
    expect(o.errorCode).toBe(0);
    expect(o.rip).toBe(C + 1n);
    expect(o.regs[RAX]).toBe(5n);
    expect(o.regs[R8]).toBe(8n);
  });

  it('ud2 is #UD', () => {
    const o = run1(mk([0x0f, 0x0b]));
    expect(o.status).toBe('fault');
    expect(o.vector).toBe(6);
    expect(o.rip).toBe(C);
  });

  it('a load from an unmapped address is #PF with CR2', () => {
    // mov rax, [0x500000]
    const o = run1(mk([0x48, 0x8b, 0x04, 0x25, 0x00, 0x00, 0x50, 0x00]));
    expect(o.status).toBe('fault');
    expect(o.vector).toBe(14);
    expect(o.faultAddr).toBe(0x500000n);
    expect(o.rip).toBe(C);
    expect(o.errorCode & 0x3).toBe(0); // not present, read
    expect(o.errorCode & 0x4).toBe(4); // user mode
  });

  it('a store to an unmapped address is #PF with the W bit', () => {
    // mov [rbx + 8], eax
    const o = run1(mk([0x89, 0x43, 0x08], { r: { [RBX]: BigInt(DATA_BASE + DATA_SIZE - 8) } }));
    expect(o.vector).toBe(14);
    expect(o.faultAddr).toBe(BigInt(DATA_BASE + DATA_SIZE));
    expect(o.errorCode & 0x2).toBe(2);
  });

  it('a page-crossing store faults on the second page', () => {
    // mov [rbx], rax at 4 bytes before the end of DATA
    const o = run1(mk([0x48, 0x89, 0x03], { r: { [RBX]: BigInt(DATA_BASE + DATA_SIZE - 4), [RAX]: -1n } }));
    expect(o.vector).toBe(14);
    expect(o.faultAddr).toBe(BigInt(DATA_BASE + DATA_SIZE));
  });

  it('jumping to an unmapped address is an instruction-fetch #PF', () => {
    // jmp rax
    const o = run1(mk([0xff, 0xe0], { r: { [RAX]: 0x700000n } }));
    expect(o.vector).toBe(14);
    expect(o.faultAddr).toBe(0x700000n);
    expect(o.rip).toBe(0x700000n);
  });

  it('a non-canonical address is #GP(0)', () => {
    // mov rax, [rbx]
    const o = run1(mk([0x48, 0x8b, 0x03], { r: { [RBX]: 0x8000000000000000n } }));
    expect(o.status).toBe('fault');
    expect(o.vector).toBe(13);
    expect(o.errorCode).toBe(0);
    expect(o.faultAddr).toBe(0n);
    expect(o.rip).toBe(C);
  });

  it('a non-canonical stack access is #SS(0)', () => {
    // push rax with a non-canonical rsp
    const o = run1(mk([0x50], { r: { [RSP]: 0x8000000000000008n } }));
    expect(o.status).toBe('fault');
    expect(o.vector).toBe(12);
    expect(o.regs[RSP]).toBe(0x8000000000000008n);
  });

  it('int3 is #BP, reported with the rip after it (a trap)', () => {
    const o = run1(mk([0x90, 0xcc, 0x90], { r: { [RSI]: 6n } }));
    expect(o.status).toBe('fault');
    expect(o.vector).toBe(3);
    expect(o.rip).toBe(C + 2n);
    expect(o.regs[RSI]).toBe(6n);
  });

  it('int3 just before an int3 exit is still #BP', () => {
    const o = run1(mk([0xcc], { exits: [1, 2] }));
    expect(o.status).toBe('fault');
    expect(o.vector).toBe(3);
  });

  it('int 0x21 is #GP with the IDT error code', () => {
    const o = run1(mk([0xcd, 0x21]));
    expect(o.vector).toBe(13);
    expect(o.errorCode).toBe(0x21 * 8 + 2);
  });

  it('hlt and privileged instructions are #GP(0)', () => {
    const [hlt, cli] = runNative([mk([0xf4]), mk([0xfa])]);
    expect(hlt!.vector).toBe(13);
    expect(cli!.vector).toBe(13);
  });

  it('an unmasked SSE exception is #XM', () => {
    // divps xmm0, xmm1 with 1/0 and ZM unmasked
    const fx = fxWithXmm({ 0: [1, 1, 1, 1], 1: [0, 0, 0, 0] });
    new DataView(fx.buffer).setUint32(24, 0x1f80 & ~0x200, true);
    const o = run1(mk([0x0f, 0x5e, 0xc1], { fx }));
    expect(o.status).toBe('fault');
    expect(o.vector).toBe(19);
    expect(o.rip).toBe(C);
    // MXCSR in the fault image has ZE set
    expect(new DataView(o.fx.buffer, o.fx.byteOffset).getUint32(24, true) & 0x4).toBe(4);
  });

  it('reports the FP state at a fault', () => {
    // addps xmm0, xmm1; ud2
    const fx = fxWithXmm({ 0: [1, 2, 3, 4], 1: [10, 20, 30, 40] });
    const o = run1(mk([0x0f, 0x58, 0xc1, 0x0f, 0x0b], { fx }));
    expect(o.vector).toBe(6);
    expect(xmmF32(o.fx, 0)).toEqual([11, 22, 33, 44]);
    // and with everything in init state
    const z = run1(mk([0x0f, 0x0b]));
    expect(Array.from(z.fx.subarray(0, 416))).toEqual(Array.from(run1(mk([])).fx.subarray(0, 416)));
  });

  it('data/stack writes before a fault are kept', () => {
    // push rax; ud2
    const o = run1(mk([0x50, 0x0f, 0x0b], { r: { [RAX]: 0x99n } }));
    expect(o.vector).toBe(6);
    expect(u64le(o.stack, 0x7f8)).toBe(0x99n);
    expect(o.regs[RSP]).toBe(BigInt(STACK_BASE + 0x7f8));
  });
});

describe('native runner: robustness', () => {
  it('an infinite loop times out and later cases still run', () => {
    const [loop, after] = runNative([mk([0xeb, 0xfe]), mk([0x48, 0xff, 0xc0])], { timeoutMs: 100 });
    expect(loop!.status).toBe('fault');
    expect(loop!.nativeStatus).toBe('timeout');
    expect(loop!.vector).toBe(-1);
    expect(loop!.rip).toBe(C);
    expect(after!.status).toBe('ok');
    expect(after!.regs[RAX]).toBe(1n);
  });

  it('syscall is blocked, not executed', () => {
    // rax = 60 (exit), rdi = 3; then a normal case
    const [sys, int80, after] = runNative([
      mk([0x0f, 0x05], { r: { [RAX]: 60n, [RDI]: 3n } }),
      mk([0xcd, 0x80], { r: { [RAX]: 1n, [RBX]: 3n } }),
      mk([0x90]),
    ]);
    expect(sys!.nativeStatus).toBe('syscall');
    expect(sys!.status).toBe('fault');
    expect(int80!.nativeStatus).toBe('syscall');
    expect(after!.status).toBe('ok');
  });

  it('guest DF, MXCSR, x87 CW and stack pointer do not leak into later cases', () => {
    const weird = defaultFxImage();
    const dv = new DataView(weird.buffer);
    dv.setUint16(0, 0x0000, true); // all x87 exceptions unmasked, single precision
    dv.setUint32(24, 0x0000, true); // all SSE exceptions unmasked
    const cases = [
      mk([0xfd], { fx: weird, r: { [RSP]: 0n, [RBP]: 0n } }), // std, ok path
      mk([0xfd, 0x0f, 0x0b], { fx: weird, r: { [RSP]: 1n } }), // std; ud2, fault path
      mk([0xfd, 0xcc], { fx: weird }), // std; int3
      mk([0xfd], { fx: weird, exits: [1, 2] }), // std, int3 exit
      mk([0x48, 0x01, 0xd8], { r: { [RAX]: 2n, [RBX]: 3n } }),
    ];
    const outs = runNative(cases);
    expect(outs.map((o) => o.nativeStatus)).toEqual(['ok', 'fault', 'fault', 'ok', 'ok']);
    for (const o of outs.slice(0, 4)) expect(o.rflags & DF).toBe(DF);
    expect(outs[4]!.regs[RAX]).toBe(5n);
    expect(outs[4]!.rflags & DF).toBe(0n);
    // MXCSR in the output images is the guest's
    expect(new DataView(outs[0]!.fx.buffer, outs[0]!.fx.byteOffset).getUint32(24, true)).toBe(0);
  });

  it('TF set by the last instruction still ends at the exit', () => {
    // push 0x100 (TF); popfq  -- the single-step trap would come after the next instruction
    const o = run1(mk([0x68, 0x00, 0x01, 0x00, 0x00, 0x9d]));
    expect(o.status).toBe('ok');
    expect(o.rip).toBe(C + 6n);
    expect(o.rflags & 0x100n).toBe(0x100n);
    // ...and one instruction later it is a #DB trap
    const db = run1(mk([0x68, 0x00, 0x01, 0x00, 0x00, 0x9d, 0x90]));
    expect(db.status).toBe('fault');
    expect(db.vector).toBe(1);
    expect(db.rip).toBe(C + 7n);
  });

  it('splits large arrays across runner processes', () => {
    const cases = Array.from({ length: 25 }, (_, i) => mk([0x48, 0x83, 0xc0, i])); // add rax, i
    const outs = runNative(cases, { batchSize: 7 });
    expect(outs.map((o) => o.regs[RAX])).toEqual(cases.map((_, i) => BigInt(i)));
  });

  it('AVX upper halves and the GS base do not leak into later cases', () => {
    const outs = runNative([
      mk([0xc5, 0xfd, 0x76, 0xc0]), // vpcmpeqd ymm0, ymm0, ymm0 (all ones)
      mk([0xc4, 0xe3, 0x7d, 0x39, 0xc1, 0x01]), // vextracti128 xmm1, ymm0, 1
      mk([0xf3, 0x48, 0x0f, 0xae, 0xd8], { r: { [RAX]: BigInt(DATA_BASE) } }), // wrgsbase rax
      mk([0x65, 0x48, 0x8b, 0x04, 0x25, 0x40, 0x00, 0x00, 0x00]), // mov rax, gs:[0x40]
    ]);
    expect(outs[0]!.status).toBe('ok');
    expect(Array.from(outs[0]!.fx.subarray(160, 176))).toEqual(new Array(16).fill(0xff));
    expect(outs[1]!.status).toBe('ok');
    expect(Array.from(outs[1]!.fx.subarray(176, 192))).toEqual(new Array(16).fill(0));
    if (outs[2]!.status === 'ok') {
      // wrgsbase is enabled for user mode on this host: the next case still sees GS base 0.
      expect(outs[3]!.vector).toBe(14);
      expect(outs[3]!.faultAddr).toBe(0x40n);
    }
  });

  it('self-modifying code and code-page reads see the case bytes', () => {
    // mov al, [rip + 0] (reads the next byte, 0x90); nop
    const o = run1(mk([0x8a, 0x05, 0x00, 0x00, 0x00, 0x00, 0x90]));
    expect(o.regs[RAX]! & 0xffn).toBe(0x90n);
  });

  it('rejects malformed cases before running', () => {
    expect(() => runNative([mk(new Array(257).fill(0x90))])).toThrow(/max 256/);
    expect(() => runNative([mk([], { exits: [4096] })])).toThrow(/exit/);
  });
});

function le32(v: number): number[] {
  return [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff];
}
