// System instructions whose behaviour user mode can observe, against the host CPU at CPL 3
// (see UserRunner in system.kit.ts: the interpreter runs the same case at CPL 3 under a GDT
// like the host kernel's): segment register moves, pushes and pops, lar/lsl/verr/verw,
// privileged instructions (#GP/#UD precedence), port I/O without permission, far jmp/call/
// ret and iret within CPL 3 (to and from compatibility mode), and the instructions that exist
// only outside 64-bit mode, run in compatibility mode (CS 0x23).
import fc from 'fast-check';
import { describe } from 'vitest';
import { CODE_BASE, DATA_BASE, STACK_BASE, type CpuCase } from '../harness/case.js';
import type { Form } from '../harness/diff.js';
import { dataArb, flagsArb, mkCase, modrmReg, regsArb, rex, STACK_TOP, u64 } from '../harness/gen.js';
import { diffUserForms, le } from './system.kit.js';

const reg = fc.integer({ min: 0, max: 15 }).filter((r) => r !== 4);
const reg8 = fc.integer({ min: 0, max: 7 }).filter((r) => r !== 4);

/** Selectors: the host GDT's interesting ones with every RPL and TI, then anything. */
const selArb: fc.Arbitrary<number> = fc.oneof(
  fc.constantFrom(0, 1, 2, 3, 4, 7, 0x08, 0x0b, 0x10, 0x13, 0x18, 0x1b, 0x20, 0x21, 0x23, 0x28, 0x29, 0x2a, 0x2b,
    0x2f, 0x30, 0x33, 0x38, 0x3b, 0x40, 0x43, 0x48, 0x4b, 0x50, 0x78, 0x7b, 0x7f, 0x80, 0x83, 0xfffb, 0xffff),
  fc.integer({ min: 0, max: 0x8f }),
  fc.integer({ min: 0, max: 0xffff }),
);
/** A selector in the low 16 bits of a random 64-bit value. */
const selReg = fc.tuple(selArb, u64).map(([s, v]) => (v & ~0xffffn) | BigInt(s));

const osz = fc.constantFrom('66', '', 'W');
function pre(o: string, regN: number, rm: number): number[] {
  return [...(o === '66' ? [0x66] : []), ...rex(o === 'W', regN, 0, rm)];
}

/** A memory operand [rbx + disp8] in the data area (rbx set by the caller). */
const DISP = 0x40;
function memRbx(regField: number): number[] { return [0x40 | ((regField & 7) << 3) | 3, DISP]; }

/** The native runner keeps segment selectors from one case to the next: cases that read
 *  them start with DS ES FS GS = 0 (push 0; mov Sreg, [rsp] x4; lea rsp, [rsp + 8]). */
const NULL_SEGS = [0x6a, 0x00, 0x8e, 0x04, 0x24, 0x8e, 0x1c, 0x24, 0x8e, 0x24, 0x24, 0x8e, 0x2c, 0x24, 0x48, 0x8d, 0x64, 0x24, 0x08];

const forms: Form[] = [];

// ---- segment registers ------------------------------------------------------------------

const LOADABLE = [0, 2, 3, 4, 5]; // ES SS DS FS GS
forms.push({
  name: 'mov Sreg, r (ES SS DS FS GS) then mov r, Sreg',
  gen: fc.record({
    regs: regsArb(), fl: flagsArb, src: reg, dst: reg, s: fc.constantFrom(...LOADABLE), s2: fc.integer({ min: 0, max: 5 }),
    v: selReg, o1: fc.constantFrom('', '66', 'W'), o2: osz,
  }).map(({ regs, fl, src, dst, s, s2, v, o1, o2 }) => {
    regs[src] = v;
    return mkCase([...NULL_SEGS, ...pre(o1, 0, src), 0x8e, modrmReg(s, src), ...pre(o2, 0, dst), 0x8c, modrmReg(s2, dst)], regs, fl);
  }),
});
forms.push({
  name: 'mov Sreg, m16 then mov m16, Sreg',
  gen: fc.record({
    regs: regsArb(), fl: flagsArb, s: fc.constantFrom(...LOADABLE), s2: fc.integer({ min: 0, max: 5 }),
    v: selArb, data: dataArb, o: osz,
  }).map(({ regs, fl, s, s2, v, data, o }) => {
    regs[3] = BigInt(DATA_BASE);
    const d = data.slice(); d[DISP] = v & 0xff; d[DISP + 1] = v >> 8;
    return mkCase([...NULL_SEGS, ...pre(o, 0, 3), 0x8e, ...memRbx(s), ...pre(o, 0, 3), 0x8c, 0x40 | (s2 << 3) | 3, DISP + 8], regs, fl, { data: d });
  }),
});
forms.push({
  name: 'mov CS/Sreg6/Sreg7, r and mov r, Sreg6/7: #UD',
  gen: fc.record({ regs: regsArb(), fl: flagsArb, r: reg, s: fc.constantFrom(1, 6, 7), load: fc.boolean(), o: osz }).map(({ regs, fl, r, s, load, o }) =>
    mkCase([...pre(o, 0, r), load ? 0x8e : 0x8c, modrmReg(load || s !== 1 ? s : 6, r)], regs, fl)),
});
forms.push({
  name: 'pop fs/gs (64 and 16 bits) then push fs/gs',
  gen: fc.record({
    regs: regsArb(), fl: flagsArb, v: selReg, gs: fc.boolean(), o1: fc.constantFrom('', '66'), o2: fc.constantFrom('', '66'), stack: dataArb,
  }).map(({ regs, fl, v, gs, o1, o2, stack }) => {
    const st = stack.slice(0, 0x1000);
    new DataView(st.buffer).setBigUint64(0x800, v, true);
    const p = (o: string) => (o === '66' ? [0x66] : []);
    return mkCase([...NULL_SEGS, ...p(o1), 0x0f, gs ? 0xa9 : 0xa1, ...p(o2), 0x0f, gs ? 0xa8 : 0xa0], regs, fl, { stack: st });
  }),
});

// ---- lar lsl verr verw ----------------------------------------------------------------

for (const [name, op] of [['lar', 0x02], ['lsl', 0x03]] as const) {
  // lsl of the CPUNODE entry (0x78..0x7f) gives the host's CPU number: left out.
  const sel = name === 'lsl' ? selReg.filter((v) => (Number(v & 0xfff8n) !== 0x78)) : selReg;
  forms.push({
    name: `${name} r, r16 (all operand sizes)`,
    gen: fc.record({ regs: regsArb(), fl: flagsArb, g: reg, e: reg, v: sel, o: osz }).map(({ regs, fl, g, e, v, o }) => {
      regs[e] = v;
      return mkCase([...pre(o, g, e), 0x0f, op, modrmReg(g, e)], regs, fl);
    }),
  });
  forms.push({
    name: `${name} r, m16`,
    gen: fc.record({ regs: regsArb(), fl: flagsArb, g: reg.filter((r) => r !== 3), v: sel, o: osz, data: dataArb }).map(({ regs, fl, g, v, o, data }) => {
      regs[3] = BigInt(DATA_BASE);
      const d = data.slice(); d[DISP] = Number(v & 0xffn); d[DISP + 1] = Number((v >> 8n) & 0xffn);
      return mkCase([...pre(o, g, 3), 0x0f, op, ...memRbx(g)], regs, fl, { data: d });
    }),
  });
}
for (const [name, sub] of [['verr', 4], ['verw', 5]] as const) {
  forms.push({
    name: `${name} r16 / m16`,
    gen: fc.record({ regs: regsArb(), fl: flagsArb, e: reg, v: selReg, mem: fc.boolean(), data: dataArb }).map(({ regs, fl, e, v, mem, data }) => {
      if (mem) {
        regs[3] = BigInt(DATA_BASE);
        const d = data.slice(); d[DISP] = Number(v & 0xffn); d[DISP + 1] = Number((v >> 8n) & 0xffn);
        return mkCase([0x0f, 0x00, ...memRbx(sub)], regs, fl, { data: d });
      }
      regs[e] = v;
      return mkCase([...rex(false, 0, 0, e), 0x0f, 0x00, modrmReg(sub, e)], regs, fl);
    }),
  });
}

// ---- privilege ------------------------------------------------------------------------

/** Privileged or absent instructions at CPL 3, with the fault each must raise. */
const PRIV: number[][] = [
  [0x0f, 0x20, 0xc0], [0x0f, 0x20, 0xd8], [0x0f, 0x22, 0xe0], [0x0f, 0x22, 0xc3], // mov r, cr0 / cr3; mov cr4 / cr0, r
  [0x0f, 0x20, 0xc8], [0x0f, 0x22, 0xe8], [0x44, 0x0f, 0x20, 0xc8], // cr1, cr5, cr9: #UD
  [0x44, 0x0f, 0x20, 0xc0], [0x44, 0x0f, 0x22, 0xc0], // cr8
  [0x0f, 0x21, 0xc0], [0x0f, 0x23, 0xf8], [0x0f, 0x21, 0xe0], [0x44, 0x0f, 0x21, 0xc0], // dr0, dr7, dr4, dr8
  [0x0f, 0x32], [0x0f, 0x30], [0x0f, 0x06], [0x0f, 0x08], [0x0f, 0x09], [0x0f, 0x07], [0x48, 0x0f, 0x07], // rdmsr wrmsr clts invd wbinvd sysret
  [0x0f, 0x01, 0x53, 0x40], [0x0f, 0x01, 0x5b, 0x40], [0x0f, 0x01, 0x7b, 0x40], // lgdt lidt invlpg [rbx+0x40]
  [0x0f, 0x00, 0xd0], [0x0f, 0x00, 0xd8], [0x0f, 0x00, 0x53, 0x40], // lldt ax, ltr ax, lldt m16
  [0x0f, 0x01, 0xf0], [0x0f, 0x01, 0x73, 0x40], [0x0f, 0x01, 0xf8], // lmsw ax, lmsw m16, swapgs
  [0x0f, 0x01, 0xca], [0x0f, 0x01, 0xcb], [0x0f, 0x01, 0xc8], // clac stac monitor
  [0x0f, 0x01, 0x6b, 0x40], [0x0f, 0x01, 0xe8], [0x0f, 0x00, 0xf0], [0x0f, 0x00, 0x7b, 0x40], // 0F01 /5 m, 0F01 E8, 0F00 /6, /7
  [0x0f, 0x01, 0xc4], // vmxoff
  // Not here: vmcall, vmmcall, vmrun, invlpga: the host runs under a hypervisor that takes them.
  [0x06], [0x07], [0x0e], [0x16], [0x17], [0x1e], [0x1f], [0x27], [0x2f], [0x37], [0x3f], [0x60], [0x61], [0x62, 0x03],
  [0xd4, 0x0a], [0xd5, 0x0a], [0xd6], [0x9a, 1, 2, 3, 4, 5, 6], [0xea, 1, 2, 3, 4, 5, 6], [0xc4, 0x03], [0xc5, 0x03], // #UD in 64-bit mode
];
forms.push({
  name: 'privileged and 32-bit-only instructions at CPL 3: #GP(0) / #UD',
  gen: fc.record({ regs: regsArb(), fl: flagsArb, i: fc.integer({ min: 0, max: PRIV.length - 1 }) }).map(({ regs, fl, i }) => {
    regs[3] = BigInt(DATA_BASE);
    return mkCase(PRIV[i], regs, fl);
  }),
});
forms.push({
  name: 'in/out (imm8 and dx, all sizes) without I/O permission: #GP(0)',
  gen: fc.record({ regs: regsArb(), fl: flagsArb, op: fc.constantFrom(0xe4, 0xe5, 0xe6, 0xe7, 0xec, 0xed, 0xee, 0xef), p66: fc.boolean(), port: fc.integer({ min: 0, max: 255 }) })
    .map(({ regs, fl, op, p66, port }) => mkCase([...(p66 ? [0x66] : []), op, ...(op < 0xe8 ? [port] : [])], regs, fl)),
});

// ---- far transfers and iret within CPL 3 ---------------------------------------------------

const EXIT = 0xf0;     // the 64-bit exit
const STUB = 0xc0;     // compatibility-mode code there jumps back: jmp far 0x33:EXIT
const farBack = [0xea, ...le(CODE_BASE + EXIT, 4), 0x33, 0x00];
/** Code with the compat stub at STUB. */
function withStub(code: number[]): number[] {
  const c = code.slice();
  while (c.length < STUB) c.push(0x90);
  return [...c, ...farBack];
}
/** A CS for a far transfer: usually 0x33 or 0x23 (then the offset is the exit or the stub). */
const csArb = fc.oneof({ weight: 3, arbitrary: fc.constantFrom(0x33, 0x23) }, { weight: 2, arbitrary: selArb });
function targetFor(cs: number): number { return CODE_BASE + ((cs & 0xfffc) === 0x20 ? STUB : EXIT); }

forms.push({
  name: 'jmp/call far m16:32 and m16:16 (FF /5, /3)',
  gen: fc.record({ regs: regsArb(), fl: flagsArb, cs: csArb, call: fc.boolean(), p66: fc.boolean(), data: dataArb }).map(({ regs, fl, cs, call, p66, data }) => {
    regs[3] = BigInt(DATA_BASE);
    const d = data.slice();
    const dv = new DataView(d.buffer);
    const t = targetFor(cs);
    if (p66) { dv.setUint16(DISP, t & 0xffff, true); dv.setUint16(DISP + 2, cs, true); }
    else { dv.setUint32(DISP, t, true); dv.setUint16(DISP + 4, cs, true); }
    return mkCase(withStub([...(p66 ? [0x66] : []), 0xff, ...memRbx(call ? 3 : 5)]), regs, fl, { data: d, exits: [EXIT] });
  }),
});
forms.push({
  name: 'retf / retfq / retf imm16 within CPL 3',
  gen: fc.record({ regs: regsArb(), fl: flagsArb, cs: csArb, w: fc.boolean(), imm: fc.constantFrom(0, 0, 8, 16, 0x100), stack: dataArb }).map(({ regs, fl, cs, w, imm, stack }) => {
    const st = stack.slice(0, 0x1000);
    const dv = new DataView(st.buffer);
    const t = targetFor(cs);
    if (w) { dv.setBigUint64(0x800, BigInt(t), true); dv.setBigUint64(0x808, BigInt(cs) | 0xabcd0000n, true); }
    else { dv.setUint32(0x800, t, true); dv.setUint32(0x804, cs | 0x55550000, true); }
    const op = imm ? [0xca, ...le(imm, 2)] : [0xcb];
    return mkCase(withStub([...(w ? [0x48] : []), ...op]), regs, fl, { stack: st, exits: [EXIT] });
  }),
});
/** RFLAGS images for iret: arithmetic, DF, and bits CPL 3 may not change (IF IOPL) or that
 *  are reserved; TF NT and AC are left out (they would trap or fault later). */
const iretFlags = fc.oneof(u64, fc.bigInt({ min: 0n, max: 0x3fffffn })).map((v) => (v & ~0x44100n) | 0x2n);
forms.push({
  name: 'iretq / iretd within CPL 3 (to 64-bit and compatibility code)',
  gen: fc.record({
    regs: regsArb(), fl: flagsArb, cs: csArb, ss: fc.oneof(fc.constantFrom(0x2b, 0x2b, 0x2b, 0x28, 0x23, 0, 3), selArb), w: fc.boolean(),
    f: iretFlags, sp: fc.oneof(fc.constant(STACK_TOP), u64), stack: dataArb, badRip: fc.integer({ min: 0, max: 9 }),
  }).map(({ regs, fl, cs, ss, w, f, sp, stack, badRip }) => {
    const st = stack.slice(0, 0x1000);
    const dv = new DataView(st.buffer);
    let t = BigInt(targetFor(cs));
    if (badRip === 0) t = 0x0000800000000000n;
    const vals = [t, BigInt(cs), f, sp, BigInt(ss)];
    vals.forEach((v, i) => (w ? dv.setBigUint64(0x800 + i * 8, BigInt.asUintN(64, v), true) : dv.setUint32(0x800 + i * 4, Number(v & 0xffffffffn), true)));
    return mkCase(withStub([...(w ? [0x48] : []), 0xcf]), regs, fl, { stack: st, exits: [EXIT] });
  }),
});

// ---- compatibility mode ----------------------------------------------------------------------

/** 64-bit prologue: retfq to 0x23:COMPAT; in compat mode, DS = ES = SS (0x2b); then the body,
 *  and a far jmp back to 64-bit code at EXIT. */
function compat(body: number[]): number[] {
  const pro = [0x6a, 0x23, 0x68, ...le(CODE_BASE + 9, 4), 0x48, 0xcb, 0x16, 0x1f, 0x16, 0x07];
  return [...pro, ...body, ...farBack];
}
function compatCase(body: number[], regs: bigint[], fl: bigint, extra: Partial<CpuCase> = {}): CpuCase {
  return mkCase(compat(body), regs, fl, { exits: [EXIT], ...extra });
}

/** AL/AH values and AF/CF flags that reach every branch of the BCD adjustments. */
const bcdRegs = fc.tuple(regsArb(), fc.integer({ min: 0, max: 0xffff })).map(([r, ax]) => { r[0] = (r[0] & ~0xffffn) | BigInt(ax); return r; });
const bcdFlags = fc.oneof(flagsArb, fc.constantFrom(0n, 1n, 0x10n, 0x11n));

// Undefined flags (SDM): daa/das OF; aaa/aas OF SF ZF PF; aam/aad OF AF CF.
const OF = 0x800, SZP = 0xc4, AF = 0x10, CF = 0x1;
for (const [name, op, undef] of [['daa', 0x27, OF], ['das', 0x2f, OF], ['aaa', 0x37, OF | SZP], ['aas', 0x3f, OF | SZP]] as const) {
  forms.push({ name: `${name} (compatibility mode)`, undef, gen: fc.record({ regs: bcdRegs, fl: bcdFlags }).map(({ regs, fl }) => compatCase([op], regs, fl)) });
}
for (const [name, op] of [['aam', 0xd4], ['aad', 0xd5]] as const) {
  forms.push({
    name: `${name} ib (compatibility mode)`, undef: OF | AF | CF,
    gen: fc.record({ regs: bcdRegs, fl: bcdFlags, ib: fc.oneof(fc.constantFrom(0, 1, 10, 16, 0xff), fc.integer({ min: 0, max: 255 })) })
      .map(({ regs, fl, ib }) => compatCase([op, ib], regs, fl)),
  });
}
forms.push({ name: 'salc (compatibility mode)', gen: fc.record({ regs: regsArb(), fl: flagsArb }).map(({ regs, fl }) => compatCase([0xd6], regs, fl)) });
forms.push({
  name: 'pusha/popa (16 and 32 bits, compatibility mode)',
  gen: fc.record({ regs: regsArb(), fl: flagsArb, p1: fc.boolean(), p2: fc.boolean(), stack: dataArb }).map(({ regs, fl, p1, p2, stack }) =>
    compatCase([...(p1 ? [0x66] : []), 0x60, ...(p2 ? [0x66] : []), 0x61], regs, fl, { stack: stack.slice(0, 0x1000) })),
});
forms.push({
  name: 'bound r16/r32, m (compatibility mode: #BR out of range)',
  gen: fc.record({ regs: regsArb(), fl: flagsArb, g: reg8.filter((r) => r !== 3), p66: fc.boolean(), lo: u64, hi: u64, near: fc.boolean(), data: dataArb })
    .map(({ regs, fl, g, p66, lo, hi, near, data }) => {
      regs[3] = BigInt(DATA_BASE);
      const d = data.slice(), dv = new DataView(d.buffer);
      const x = regs[g];
      const l = near ? x - 2n : lo, h = near ? x + 1n : hi;
      if (p66) { dv.setUint16(DISP, Number(l & 0xffffn), true); dv.setUint16(DISP + 2, Number(h & 0xffffn), true); }
      else { dv.setUint32(DISP, Number(l & 0xffffffffn), true); dv.setUint32(DISP + 4, Number(h & 0xffffffffn), true); }
      return compatCase([...(p66 ? [0x66] : []), 0x62, ...memRbx(g)], regs, fl, { data: d });
    }),
});
forms.push({
  name: 'arpl r16 / m16, r16 (compatibility mode)',
  gen: fc.record({ regs: regsArb(), fl: flagsArb, g: reg8, e: reg8, mem: fc.boolean(), data: dataArb }).map(({ regs, fl, g, e, mem, data }) => {
    if (mem) { regs[3] = BigInt(DATA_BASE); return compatCase([0x63, ...memRbx(g)], regs, fl, { data }); }
    return compatCase([0x63, modrmReg(g, e)], regs, fl);
  }),
});
forms.push({
  name: 'push/pop es cs ss ds (compatibility mode)',
  gen: fc.record({ regs: regsArb(), fl: flagsArb, v: selArb, pop: fc.constantFrom(0x07, 0x17, 0x1f), p66: fc.boolean() }).map(({ regs, fl, v, pop, p66 }) =>
    // push imm32 (a selector with junk above), pop Sreg, then push all four.
    compatCase([0x68, ...le(v | 0x12340000, 4), ...(p66 ? [0x66] : []), pop, 0x06, 0x0e, 0x16, 0x1e], regs, fl)),
});
forms.push({
  name: 'les lds lss lfs lgs r, m16:16/m16:32 (compatibility mode)',
  gen: fc.record({ regs: regsArb(), fl: flagsArb, g: reg8.filter((r) => r !== 3), op: fc.constantFrom(0xc4, 0xc5, 0xb2, 0xb4, 0xb5), p66: fc.boolean(), v: selArb, data: dataArb })
    .map(({ regs, fl, g, op, p66, v, data }) => {
      regs[3] = BigInt(DATA_BASE);
      const d = data.slice(), dv = new DataView(d.buffer);
      dv.setUint16(DISP + (p66 ? 2 : 4), v, true);
      const opc = op >= 0xc4 ? [op] : [0x0f, op];
      return compatCase([...(p66 ? [0x66] : []), ...opc, ...memRbx(g)], regs, fl, { data: d });
    }),
});
// 16-bit addressing (67 in 32-bit code): lea gives the effective address itself; a load
// from it faults at that low address, which checks the address with the segment base.
forms.push({
  name: 'lea r16/r32 with 16-bit addressing (compatibility mode, 67)',
  gen: fc.record({ regs: regsArb(), fl: flagsArb, g: reg8, mod: fc.integer({ min: 0, max: 2 }), rm: fc.integer({ min: 0, max: 7 }), disp: fc.integer({ min: 0, max: 0xffff }), p66: fc.boolean() })
    .map(({ regs, fl, g, mod, rm, disp, p66 }) => {
      const dispBytes = mod === 1 ? [disp & 0xff] : mod === 2 || (mod === 0 && rm === 6) ? le(disp, 2) : [];
      return compatCase([...(p66 ? [0x66] : []), 0x67, 0x8d, (mod << 6) | (g << 3) | rm, ...dispBytes], regs, fl);
    }),
});
forms.push({
  name: 'mov r32, [16-bit address] (compatibility mode: #PF at the low address)',
  gen: fc.record({ regs: regsArb(), fl: flagsArb, g: reg8, mod: fc.integer({ min: 0, max: 2 }), rm: fc.integer({ min: 0, max: 7 }), disp: fc.integer({ min: 0, max: 0xffff }) })
    .map(({ regs, fl, g, mod, rm, disp }) => {
      const dispBytes = mod === 1 ? [disp & 0xff] : mod === 2 || (mod === 0 && rm === 6) ? le(disp, 2) : [];
      return compatCase([0x67, 0x8b, (mod << 6) | (g << 3) | rm, ...dispBytes], regs, fl);
    }),
});

void STACK_BASE;
describe('system instructions vs the host CPU at CPL 3', () => diffUserForms(forms));
