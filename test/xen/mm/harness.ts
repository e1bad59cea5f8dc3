// Test support for the PV MMU: a host (Xen with PhysMem), domains built by hand, vCPUs whose
// Cpu runs on a PagedMemory sharing xen.writeProtected, page-table frames written directly,
// a small guest address space with a hypercall buffer, and hypercall invocation.

import { Cpu } from '../../../src/cpu/cpu.js';
import { PagedMemory } from '../../../src/mmu/paged.js';
import { PhysMem } from '../../../src/mmu/physmem.js';
import type { Domain } from '../../../src/xen/domain.js';
import { copyFromGuest, copyToGuest } from '../../../src/xen/guestmem.js';
import { canonicalOf } from '../../../src/xen/hypercall/args.js';
import '../../../src/xen/hypercall/memory.js';
import { setKernelBaseptr } from '../../../src/xen/hypercall/mmu.js';
import { dispatchHypercall } from '../../../src/xen/hypercall/table.js';
import { initM2P } from '../../../src/xen/mm/m2p.js';
import { pageInfo } from '../../../src/xen/mm/pagetype.js';
import '../../../src/xen/mm/validate.js';
import { Vcpu } from '../../../src/xen/vcpu.js';
import { Xen } from '../../../src/xen/xen.js';

export const P = 1n, RW = 2n, US = 4n, PWT = 8n, PCD = 0x10n, A = 0x20n, D = 0x40n, PSE = 0x80n, G = 0x100n;
export const NX = 1n << 63n;
export const GUEST_KERNEL = 1n << 52n;
export const PRW = P | RW | US, PRO = P | US;

export const EPERM = -1, ESRCH = -3, EFAULT = -14, EBUSY = -16, EINVAL = -22, ENOSYS = -38, EACCES = -13;
export const EOPNOTSUPP = -95, EDOM = -33, ENXIO = -6;

export const DOMID_SELF = 0x7ff0, DOMID_IO = 0x7ff1, DOMID_XEN = 0x7ff2;

/** The entry value for a frame with flags. */
export function pte(mfn: number, flags: bigint): bigint { return (BigInt(mfn) << 12n) | flags; }
/** An mmu_update ptr for entry idx of frame mfn, with a command. */
export function ptr(mfn: number, idx: number, cmd = 0): bigint { return (BigInt(mfn) << 12n) | BigInt(idx * 8) | BigInt(cmd); }

export class Host {
  readonly phys: PhysMem;
  readonly xen: Xen;
  readonly pi;
  constructor(frames = 2048) {
    this.phys = new PhysMem(frames * 4096);
    this.xen = new Xen(this.phys);
    initM2P(this.xen);
    this.pi = pageInfo(this.xen);
  }

  domain(name: string, opts: { privileged?: boolean; maxPages?: number } = {}): Domain {
    const d = this.xen.newDomain(name);
    d.privileged = opts.privileged ?? false;
    d.maxPages = opts.maxPages ?? 512;
    d.state = 'running';
    return d;
  }

  vcpu(d: Domain): Vcpu {
    const mem = new PagedMemory(this.phys, undefined, { writeProtected: this.xen.writeProtected });
    const cpu = new Cpu(mem);
    mem.attach(cpu);
    cpu.cpl = 3;
    const v = new Vcpu(d, d.vcpus.length, cpu);
    d.vcpus.push(v);
    return v;
  }

  /** n frames for d (zeroed), with M2P entries pfn = index in allocation order. */
  alloc(d: Domain, n = 1): number[] {
    const out: number[] = [];
    for (let i = 0; i < n; i++) {
      const m = this.xen.frames.alloc(d.id);
      if (m < 0) throw new Error('out of frames');
      d.totPages++;
      this.xen.frames.setM2p(m, d.totPages - 1);
      out.push(m);
    }
    return out;
  }

  get(mfn: number, idx: number): bigint { return this.phys.dv.getBigUint64(mfn * 4096 + idx * 8, true); }
  set(mfn: number, idx: number, v: bigint): void { this.phys.dv.setBigUint64(mfn * 4096 + idx * 8, BigInt.asUintN(64, v), true); }
}

/** Run hypercall nr with up to five 64-bit arguments. */
export function hc(v: Vcpu, nr: number, ...args: (bigint | number)[]): number {
  const a = v.args;
  for (let i = 0; i < 5; i++) {
    const x = BigInt.asUintN(64, BigInt(args[i] ?? 0));
    a.set(i, Number(BigInt.asIntN(32, x)), Number(BigInt.asIntN(32, x >> 32n)));
  }
  return dispatchHypercall(v, nr, a);
}

/**
 * A guest address space: L4 -> L3 -> L2 -> L1 at VA 0, mapping `bufPages` read-write buffer
 * pages at BUF (0x1000..) and its own four tables read-only at TABLES (0x100000..), installed
 * as the vCPU's kernel base (validated and referenced by it).
 */
export const BUF = 0x1000;
export const TABLES = 0x100000;
export class Space {
  readonly l4: number; readonly l3: number; readonly l2: number; readonly l1: number; readonly l1b: number;
  readonly buf: number[];
  constructor(readonly host: Host, readonly v: Vcpu, bufPages = 8) {
    const d = v.domain;
    [this.l4, this.l3, this.l2, this.l1, this.l1b] = host.alloc(d, 5);
    this.buf = host.alloc(d, bufPages);
    host.set(this.l4, 0, pte(this.l3, PRW));
    host.set(this.l3, 0, pte(this.l2, PRW));
    host.set(this.l2, 0, pte(this.l1, PRW));
    host.set(this.l2, 1, pte(this.l1b, PRW)); // VA 0x200000..: an empty L1 for tests
    this.buf.forEach((m, i) => host.set(this.l1, 1 + i, pte(m, PRW)));
    [this.l4, this.l3, this.l2, this.l1, this.l1b].forEach((m, i) => host.set(this.l1, 256 + i, pte(m, PRO)));
    const rc = setKernelBaseptr(v, this.l4);
    if (rc !== 0) throw new Error(`address space did not validate: ${rc}`);
  }
  /** The VA at which table frame k (0 = L4 .. 4 = second L1) is mapped read-only. */
  tableVa(k: number): number { return TABLES + k * 4096; }
  write(off: number, data: Uint8Array): void { copyToGuest(this.v, BUF + off, data); }
  read(off: number, len: number): Uint8Array { return copyFromGuest(this.v, BUF + off, len); }
  /** Write 64-bit little-endian values at BUF + off. */
  put64(off: number, vals: bigint[]): void {
    const b = new Uint8Array(vals.length * 8), dv = new DataView(b.buffer);
    vals.forEach((x, i) => dv.setBigUint64(i * 8, BigInt.asUintN(64, x), true));
    this.write(off, b);
  }
  get64(off: number): bigint { return new DataView(this.read(off, 8).buffer).getBigUint64(0, true); }
  get32(off: number): number { return new DataView(this.read(off, 4).buffer).getUint32(0, true); }
}

/** A canonical 64-bit address for a 48-bit linear one. */
export function va(lin: number): bigint { return canonicalOf(lin); }
