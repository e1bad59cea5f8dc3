// The hypervisor: machine memory and its frame table, the domains, virtual time and the
// deterministic scheduler that runs every vCPU in turn.

import { CodeCache } from '../cpu/codecache.js';
import type { PhysMem } from '../mmu/physmem.js';
import { Domain } from './domain.js';
import { MachineMem } from './guestmem.js';
import { FrameTable } from './mm/frames.js';

/** The virtual TSC runs at 1 GHz: one cycle is one nanosecond of Xen system time. */
export const TSC_HZ = 1_000_000_000;

export class Xen {
  readonly frames: FrameTable;
  readonly domains = new Map<number, Domain>();
  /** Global virtual time in cycles (= ns); each vCPU's TSC follows it while it runs. */
  cycles = 0;
  /** Hypervisor log (what `sim dmesg` shows). */
  readonly log: string[] = [];
  /** Where hypervisor log lines go besides the buffer. */
  onLog: ((line: string) => void) | null = null;
  /** Machine-address access to shared pages. */
  readonly machine: MachineMem;
  /** The wallclock at host boot (ns since the Unix epoch): fixed, so runs are reproducible. */
  bootEpochNs = Date.UTC(2026, 0, 1) * 1e6;
  /** Decoded code of every vCPU, keyed by machine address (set when the first vCPU is made). */
  code: CodeCache | null = null;
  /** Frames no guest may write directly whatever its PTEs say (PV page tables, descriptor
   *  pages): shared by every vCPU's PagedMemory; writes go to its WriteProtectHook. */
  readonly writeProtected: Uint8Array;
  /** Xen's own command line (XENVER_commandline). */
  commandLine = '';
  /** Bytes typed at the Xen console, read by dom0 with CONSOLEIO_read. */
  readonly consoleInput: number[] = [];
  private nextDomid = 0;

  constructor(readonly phys: PhysMem) {
    this.frames = new FrameTable(phys);
    this.writeProtected = new Uint8Array(phys.frames);
    this.machine = new MachineMem(phys, (ppn) => this.code?.dropPage(ppn));
    this.frames.onCodeFrameReused = (mfn) => this.code?.dropPage(mfn);
  }

  /** Xen system time (ns) for a TSC value. */
  nsOfTsc(tsc: number): number { return tsc * (1e9 / TSC_HZ); }

  printk(line: string): void {
    const l = `(XEN) ${line}`;
    this.log.push(l);
    if (this.log.length > 10000) this.log.splice(0, this.log.length - 10000);
    this.onLog?.(l);
  }

  /** System time in ns (Xen's NOW()). */
  now(): number { return this.cycles * (1e9 / TSC_HZ); }

  newDomain(name: string): Domain {
    const d = new Domain(this, this.nextDomid++, name);
    this.domains.set(d.id, d);
    return d;
  }
}
