// Specialized handlers for the instruction forms that dominate compiled code. The generic
// handlers in ops/* branch on operand size, operand kind and operation on every execution;
// here the decoder asks for a handler generated for one (operation, size, operand shape),
// with the effective-address arithmetic inlined. Each distinct shape is compiled once with
// `new Function`, so V8 optimizes it with its constants folded. A form with no template
// keeps its generic handler; the differential tests run whichever handler the decoder picks.

import { CpuFault } from './fault.js';
import { cond, getCF, K, FS } from './flags.js';
import type { Handler, Insn } from './insn.js';
import { Mode, RIP_BASE, Seg } from './state.js';

const cache = new Map<string, Handler>();
const helpers = { CpuFault, cond, getCF };

function compile(key: string, body: string): Handler {
  let h = cache.get(key);
  if (h === undefined) {
    const name = 'fast_' + key.replace(/[^a-zA-Z0-9]/g, '_');
    const src = `const {CpuFault, cond, getCF} = H;\nreturn function ${name}(cpu, d) {\n${body}\n};`;
    h = new Function('H', src)(helpers) as Handler;
    cache.set(key, h);
  }
  return h;
}

/** Number of specialized handlers compiled so far (for tests and the bench). */
export function fastHandlerCount(): number { return cache.size; }

const TWO32 = 4294967296;

/**
 * JS that sets `lin` to the linear address of d's memory operand, for the common 64-bit
 * shapes: base (+ index*scale) + disp, RIP + disp, with an FS/GS base or none. Undefined for
 * shapes left to the generic cpu.ea().
 */
function eaCode(d: Insn): [string, string] | undefined {
  if (d.mode !== Mode.Long64 || d.asz !== 8) return undefined;
  const seg = d.seg >= Seg.FS ? d.seg : -1;
  const ss = d.base === 4 || d.base === 5;
  let key: string, code: string;
  if (d.base === RIP_BASE) {
    if (seg >= 0) return undefined;
    // RIP is a 48-bit linear number; rip + disp stays canonical unless it crosses the hole.
    key = 'rip';
    code = `const ripv = (cpu.rip >= 140737488355328 ? cpu.rip - 281474976710656 : cpu.rip) + d.disp;
if (ripv < -140737488355328 || ripv >= 140737488355328) throw new CpuFault(13, 0);
const lin = ripv < 0 ? ripv + 281474976710656 : ripv;`;
    return [key, code];
  }
  if (d.base < 0) return undefined;
  const b2 = d.base * 2;
  let sum = `(r[${b2}] >>> 0) + d.disp`;
  let hi = `r[${b2 + 1}]`;
  key = `b${d.base}`;
  if (d.index >= 0) {
    const x2 = d.index * 2, s = d.scale;
    sum += s === 0 ? ` + (r[${x2}] >>> 0)` : ` + (r[${x2}] >>> 0) * ${1 << s}`;
    hi += s === 0 ? ` + r[${x2 + 1}]` : ` + (r[${x2 + 1}] << ${s})`;
    key += `x${d.index}s${s}`;
  }
  code = `let lo = ${sum};
const c = Math.floor(lo / ${TWO32});
lo -= c * ${TWO32};
let hi = (${hi} + c) | 0;`;
  if (seg >= 0) {
    key += `g${seg}`;
    code += `
lo += cpu.seg.baseLo[${seg}] >>> 0;
if (lo >= ${TWO32}) { lo -= ${TWO32}; hi = (hi + cpu.seg.baseHi[${seg}] + 1) | 0; } else hi = (hi + cpu.seg.baseHi[${seg}]) | 0;`;
  }
  code += `
if (((hi << 16) >> 16) !== hi) throw new CpuFault(${ss ? 12 : 13}, 0);
const lin = (hi & 0xffff) * ${TWO32} + lo;`;
  return [key, code];
}

// ---- integer ALU ----------------------------------------------------------------------

const enum Op { ADD = 0, OR = 1, ADC = 2, SBB = 3, AND = 4, SUB = 5, XOR = 6, CMP = 7 }

/** JS computing result `res` (and `resh` for 64-bit) from a/ah, b/bh and recording flags. */
function aluCore(op: number, size: 4 | 8): string {
  const logic = op === Op.OR || op === Op.AND || op === Op.XOR;
  const sym = op === Op.OR ? '|' : op === Op.AND ? '&' : '^';
  if (size === 4) {
    let res: string;
    if (logic) res = `const res = a ${sym} b;`;
    else if (op === Op.ADD) res = 'const res = (a + b) | 0;';
    else if (op === Op.ADC) res = 'const res = (a + b + getCF(f)) | 0;';
    else if (op === Op.SBB) res = 'const res = (a - b - getCF(f)) | 0;';
    else res = 'const res = (a - b) | 0;';
    const fl = logic
      ? `f[${FS.KIND}] = ${K.LOGIC}; f[${FS.SIZE}] = 4; f[${FS.RES}] = res;`
      : `f[${FS.KIND}] = ${op === Op.ADD || op === Op.ADC ? K.ADD : K.SUB}; f[${FS.SIZE}] = 4; f[${FS.A}] = a; f[${FS.B}] = b; f[${FS.RES}] = res;`;
    return `${res}\n/*WRITE*/\n${fl}`;
  }
  let res: string;
  if (logic) res = `const res = a ${sym} b, resh = ah ${sym} bh;`;
  else if (op === Op.ADD || op === Op.ADC) {
    res = `const s = (a >>> 0) + (b >>> 0)${op === Op.ADC ? ' + getCF(f)' : ''};
const res = s | 0, resh = (ah + bh + (s >= ${TWO32} ? 1 : 0)) | 0;`;
  } else {
    res = `const s = (a >>> 0) - (b >>> 0)${op === Op.SBB ? ' - getCF(f)' : ''};
const res = s | 0, resh = (ah - bh - (s < 0 ? 1 : 0)) | 0;`;
  }
  const fl = logic
    ? `f[${FS.KIND}] = ${K.LOGIC}; f[${FS.SIZE}] = 8; f[${FS.RES}] = res; f[${FS.RESH}] = resh;`
    : `f[${FS.KIND}] = ${op === Op.ADD || op === Op.ADC ? K.ADD : K.SUB}; f[${FS.SIZE}] = 8; f[${FS.A}] = a; f[${FS.AH}] = ah; f[${FS.B}] = b; f[${FS.BH}] = bh; f[${FS.RES}] = res; f[${FS.RESH}] = resh;`;
  return `${res}\n/*WRITE*/\n${fl}`;
}

/** Operand reads/writes for size 4/8: register index expression or memory via lin. */
function readReg(size: 4 | 8, idx: string, v: string): string {
  return size === 4 ? `const ${v} = r[${idx} * 2];` : `const ${v} = r[${idx} * 2], ${v}h = r[${idx} * 2 + 1];`;
}
function readMem(size: 4 | 8, v: string): string {
  return size === 4 ? `const ${v} = cpu.mem.rd32(lin);` : `const ${v} = cpu.mem.rd64(lin), ${v}h = cpu.mem.hi;`;
}
function writeReg(size: 4 | 8, idx: string): string {
  return size === 4 ? `r[${idx} * 2] = res; r[${idx} * 2 + 1] = 0;` : `r[${idx} * 2] = res; r[${idx} * 2 + 1] = resh;`;
}
function writeMem(size: 4 | 8): string {
  return size === 4 ? 'cpu.mem.wr32(lin, res);' : 'cpu.mem.wr64(lin, res, resh);';
}

function aluHandler(d: Insn, op: number, toG: boolean, imm: boolean): Handler | undefined {
  const size = d.osz;
  if (size !== 4 && size !== 8) return undefined;
  const s = size as 4 | 8;
  let pre = 'const r = cpu.r, f = cpu.f;\n';
  let key = `alu${op}_${s}_${toG ? 'G' : 'E'}${imm ? 'I' : ''}`;
  let readA: string, readB: string, write: string;
  const eReg = d.mod === 3;
  if (!eReg) {
    const ea = eaCode(d);
    if (!ea) return undefined;
    key += '_m' + ea[0];
    pre += ea[1] + '\n';
  } else key += '_r';
  const regE = 'd.rm', regG = 'd.reg';
  const readE = (v: string) => (eReg ? readReg(s, regE, v) : readMem(s, v));
  if (imm) {
    readA = readE('a');
    readB = s === 4 ? 'const b = d.imm;' : 'const b = d.imm, bh = d.immHi;';
    write = eReg ? writeReg(s, regE) : writeMem(s);
  } else if (toG) {
    readA = readReg(s, regG, 'a');
    readB = readE('b');
    write = writeReg(s, regG);
  } else {
    readA = readE('a');
    readB = readReg(s, regG, 'b');
    write = eReg ? writeReg(s, regE) : writeMem(s);
  }
  if (op === Op.CMP) write = '';
  const body = pre + readA + '\n' + readB + '\n' + aluCore(op, s).replace('/*WRITE*/', write);
  return compile(key, body);
}

// ---- mov ------------------------------------------------------------------------------

function movHandler(d: Insn, kind: 'EG' | 'GE' | 'EI'): Handler | undefined {
  const size = d.osz;
  if (size !== 4 && size !== 8) return undefined;
  const s = size as 4 | 8;
  let key = `mov${kind}_${s}`;
  let body = 'const r = cpu.r;\n';
  if (d.mod === 3) {
    key += '_r';
    if (kind === 'EG') body += s === 4 ? 'r[d.rm * 2] = r[d.reg * 2]; r[d.rm * 2 + 1] = 0;' : 'r[d.rm * 2] = r[d.reg * 2]; r[d.rm * 2 + 1] = r[d.reg * 2 + 1];';
    else if (kind === 'GE') body += s === 4 ? 'r[d.reg * 2] = r[d.rm * 2]; r[d.reg * 2 + 1] = 0;' : 'r[d.reg * 2] = r[d.rm * 2]; r[d.reg * 2 + 1] = r[d.rm * 2 + 1];';
    else body += s === 4 ? 'r[d.rm * 2] = d.imm; r[d.rm * 2 + 1] = 0;' : 'r[d.rm * 2] = d.imm; r[d.rm * 2 + 1] = d.immHi;';
    return compile(key, body);
  }
  const ea = eaCode(d);
  if (!ea) return undefined;
  key += '_m' + ea[0];
  body += ea[1] + '\n';
  if (kind === 'EG') body += s === 4 ? 'cpu.mem.wr32(lin, r[d.reg * 2]);' : 'cpu.mem.wr64(lin, r[d.reg * 2], r[d.reg * 2 + 1]);';
  else if (kind === 'GE') body += s === 4 ? 'const v = cpu.mem.rd32(lin); r[d.reg * 2] = v; r[d.reg * 2 + 1] = 0;' : 'const v = cpu.mem.rd64(lin); r[d.reg * 2 + 1] = cpu.mem.hi; r[d.reg * 2] = v;';
  else body += s === 4 ? 'cpu.mem.wr32(lin, d.imm);' : 'cpu.mem.wr64(lin, d.imm, d.immHi);';
  return compile(key, body);
}

function leaHandler(d: Insn): Handler | undefined {
  if (d.mod === 3 || d.mode !== Mode.Long64 || d.asz !== 8 || d.base === RIP_BASE || d.base < 0) return undefined;
  if (d.osz !== 8 && d.osz !== 4) return undefined;
  const b2 = d.base * 2;
  let key = `lea${d.osz}_b${d.base}`;
  let sum = `(r[${b2}] >>> 0) + d.disp`;
  let hi = `r[${b2 + 1}]`;
  if (d.index >= 0) {
    const x2 = d.index * 2, s = d.scale;
    sum += s === 0 ? ` + (r[${x2}] >>> 0)` : ` + (r[${x2}] >>> 0) * ${1 << s}`;
    hi += s === 0 ? ` + r[${x2 + 1}]` : ` + (r[${x2 + 1}] << ${s})`;
    key += `x${d.index}s${s}`;
  }
  // The low sum is exact in a double (< 2^36); its carry goes into the high half.
  let body = `const r = cpu.r;\nlet lo = ${sum};\nconst c = Math.floor(lo / ${TWO32});\nlo -= c * ${TWO32};\n`;
  if (d.osz === 8) body += `const h = (${hi} + c) | 0; r[d.reg * 2] = lo | 0; r[d.reg * 2 + 1] = h;`;
  else body += 'r[d.reg * 2] = lo | 0; r[d.reg * 2 + 1] = 0;';
  return compile(key, body);
}

// ---- inc / dec ------------------------------------------------------------------------

function incDecHandler(d: Insn, dec: boolean): Handler | undefined {
  if (d.mod !== 3 || (d.osz !== 4 && d.osz !== 8)) return undefined;
  const s = d.osz;
  // CF is preserved: materialize it into FLAGS before recording the new lazy state.
  let body = `const r = cpu.r, f = cpu.f;
f[${FS.FLAGS}] = (f[${FS.FLAGS}] & ~1) | getCF(f);
const i = d.rm * 2;
const a = r[i];\n`;
  if (s === 4) body += `const res = (a ${dec ? '-' : '+'} 1) | 0; r[i] = res; r[i + 1] = 0;
f[${FS.KIND}] = ${dec ? K.DEC : K.INC}; f[${FS.SIZE}] = 4; f[${FS.A}] = a; f[${FS.B}] = 1; f[${FS.RES}] = res;`;
  else body += `const ah = r[i + 1];
const res = (a ${dec ? '-' : '+'} 1) | 0;
const resh = ${dec ? '(a === 0 ? (ah - 1) | 0 : ah)' : '(res === 0 ? (ah + 1) | 0 : ah)'};
r[i] = res; r[i + 1] = resh;
f[${FS.KIND}] = ${dec ? K.DEC : K.INC}; f[${FS.SIZE}] = 8; f[${FS.A}] = a; f[${FS.AH}] = ah; f[${FS.B}] = 1; f[${FS.BH}] = 0; f[${FS.RES}] = res; f[${FS.RESH}] = resh;`;
  return compile(`incdec${dec ? 'D' : 'I'}_${s}`, body);
}

// ---- test -----------------------------------------------------------------------------

function testHandler(d: Insn): Handler | undefined {
  if (d.mod !== 3 || (d.osz !== 4 && d.osz !== 8)) return undefined;
  const body = d.osz === 4
    ? `const r = cpu.r, f = cpu.f; f[${FS.KIND}] = ${K.LOGIC}; f[${FS.SIZE}] = 4; f[${FS.RES}] = r[d.rm * 2] & r[d.reg * 2];`
    : `const r = cpu.r, f = cpu.f; f[${FS.KIND}] = ${K.LOGIC}; f[${FS.SIZE}] = 8; f[${FS.RES}] = r[d.rm * 2] & r[d.reg * 2]; f[${FS.RESH}] = r[d.rm * 2 + 1] & r[d.reg * 2 + 1];`;
  return compile(`test_${d.osz}`, body);
}

// ---- jcc ------------------------------------------------------------------------------

/** jcc with the condition evaluated straight from a SUB/LOGIC lazy state when possible. */
function jccHandler(d: Insn, cc: number): Handler | undefined {
  if (d.mode !== Mode.Long64) return undefined;
  const body = `if (cond(cpu.f, ${cc})) {
  const s = (cpu.rip >= 140737488355328 ? cpu.rip - 281474976710656 : cpu.rip) + d.imm;
  if (s < -140737488355328 || s >= 140737488355328) throw new CpuFault(13, 0);
  cpu.rip = s < 0 ? s + 281474976710656 : s;
}`;
  return compile(`jcc${cc}`, body);
}

// ---- push / pop -----------------------------------------------------------------------

function pushPopHandler(d: Insn, pop: boolean): Handler | undefined {
  if (d.mode !== Mode.Long64 || d.osz !== 8) return undefined;
  const body = pop
    ? `const r = cpu.r;
const lo = r[8], hi = r[9];
if (((hi << 16) >> 16) !== hi) throw new CpuFault(12, 0);
const lin = (hi & 0xffff) * ${TWO32} + (lo >>> 0);
const v = cpu.mem.rd64(lin), vh = cpu.mem.hi;
const n = (lo >>> 0) + 8;
r[8] = n | 0; r[9] = n >= ${TWO32} ? (hi + 1) | 0 : hi;
r[d.rm * 2] = v; r[d.rm * 2 + 1] = vh;`
    : `const r = cpu.r;
const v = r[d.rm * 2], vh = r[d.rm * 2 + 1];
const n = (r[8] >>> 0) - 8;
const lo = n | 0, hi = n < 0 ? (r[9] - 1) | 0 : r[9];
if (((hi << 16) >> 16) !== hi) throw new CpuFault(12, 0);
cpu.mem.wr64((hi & 0xffff) * ${TWO32} + (lo >>> 0), v, vh);
r[8] = lo; r[9] = hi;`;
  return compile(pop ? 'pop64' : 'push64', body);
}

/**
 * A specialized handler for a decoded instruction, or undefined to keep the generic one.
 * Only called for instructions whose generic handler was selected (not #UD).
 */
export function specialize(d: Insn): Handler | undefined {
  if (d.pfx & 1 /* LOCK */) return undefined;
  const op = d.op;
  if (op < 0x40 && (op & 7) < 4 && (op & 7) !== 0 && (op & 7) !== 2) {
    // 01, 03 (+8n): op Ev,Gv / op Gv,Ev
    return aluHandler(d, op >> 3, (op & 7) === 3, false);
  }
  switch (op) {
    case 0x81: case 0x83: return aluHandler(d, d.reg & 7, false, true);
    case 0x85: return testHandler(d);
    case 0x89: return movHandler(d, 'EG');
    case 0x8b: return movHandler(d, 'GE');
    case 0xc7: return (d.reg & 7) === 0 ? movHandler(d, 'EI') : undefined;
    case 0x8d: return leaHandler(d);
    case 0xff: return (d.reg & 7) < 2 ? incDecHandler(d, (d.reg & 7) === 1) : undefined;
    default:
      if (op >= 0x70 && op <= 0x7f) return jccHandler(d, op - 0x70);
      if (op >= 0x180 && op <= 0x18f) return jccHandler(d, op - 0x180);
      if (op >= 0x50 && op <= 0x57) return pushPopHandler(d, false);
      if (op >= 0x58 && op <= 0x5f) return pushPopHandler(d, true);
      return undefined;
  }
}

