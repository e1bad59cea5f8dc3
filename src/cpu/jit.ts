// The block compiler: a block that has run often becomes one JavaScript function that
// calls its instructions' handlers in a straight line. Each call site then sees a single
// handler, so V8 can inline it, and the interpreter's per-instruction loop (array load,
// indirect call, bookkeeping) disappears. Semantics are the interpreter's exactly: RIP is
// advanced before each handler, ripStart names the executing instruction, and the block
// is left after any instruction that sets exitBlock.
//
//   function block(cpu) {            // returns the number of instructions retired
//     const r0 = cpu.rip;
//     cpu.ripStart = r0;      cpu.rip = r0 + 3;  H0(cpu, D0); if (cpu.exitBlock) return 1;
//     cpu.ripStart = r0 + 3;  cpu.rip = r0 + 7;  H1(cpu, D1); if (cpu.exitBlock) return 2;
//     ...
//     return n;
//   }
//
// A fault inside leaves ripStart at the faulting instruction; the caller works out how
// many instructions retired from it (retiredBefore).

import type { Block } from './codecache.js';
import type { Cpu } from './cpu.js';

export type BlockFn = (cpu: Cpu) => number;

/** When blocks are compiled: after `threshold` runs (the interpreter warms them up and
 *  proves they decode), unless disabled. Tests set threshold 1 to force every block through
 *  the compiler. */
export const jitConfig = { enabled: true, threshold: 16 };

let compiled = 0;
export function compiledBlocks(): number { return compiled; }

export function compileBlock(b: Block): BlockFn {
  const insns = b.insns;
  const names: string[] = [];
  const values: unknown[] = [];
  let body = 'const r0 = cpu.rip;\n';
  let off = 0;
  for (let i = 0; i < insns.length; i++) {
    const d = insns[i];
    names.push(`H${i}`, `D${i}`);
    values.push(d.h, d);
    const next = off + d.len;
    body += `cpu.ripStart = r0 + ${off}; cpu.rip = r0 + ${next}; H${i}(cpu, D${i}); if (cpu.exitBlock) return ${i + 1};\n`;
    off = next;
  }
  body += `return ${insns.length};`;
  const factory = new Function(...names, `return function block(cpu) {\n${body}\n};`);
  compiled++;
  return factory(...values) as BlockFn;
}

/** How many instructions of a compiled block retired before the one at ripStart faulted. */
export function retiredBefore(b: Block, startRip: number, faultRip: number): number {
  let off = 0;
  const target = faultRip - startRip;
  for (let i = 0; i < b.insns.length; i++) {
    if (off === target) return i;
    off += b.insns[i].len;
  }
  return b.insns.length;
}
