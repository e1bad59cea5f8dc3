// The toolstack's domain creation (what `xl create` does through libxl and libxenguest):
// read the kernel image, make the domain and its vCPUs, its event channels and consoles,
// build its memory, and start the boot vCPU.

import { CodeCache } from '../cpu/codecache.js';
import { Cpu } from '../cpu/cpu.js';
import '../cpu/ops/index.js';
import { loadKernelImage, type KernelImage } from '../guests/image.js';
import { PagedMemory } from '../mmu/paged.js';
import { ConsoleBackend } from './backends/console.js';
import { BuildError, buildPvDomain, type BuiltDomain } from './builder.js';
import { pinTable, setKernelBaseptr } from './hypercall/mmu.js';
import { setRamMemoryMap } from './hypercall/memory.js';
import { initM2P } from './mm/m2p.js';
import { initGrantTable, seedGrantTable } from './gnttab/ops.js';
import { installPtwr } from './mm/ptwr.js';
import { attachPv } from './pv/entry.js';
import { pageInfo, shareXenPage } from './mm/pagetype.js';
import type { Domain } from './domain.js';
import { bindToXen, initEvents, raisePort } from './evtchn/events.js';
import { introduceToXenstore, writeDomainNodes } from './xenstore/attach.js';
import { SharedInfo, VcpuInfo } from './layout.js';
import { pvBootVcpu } from './pv/boot.js';
import { wakeVcpu } from './sched.js';
import { updateVcpuTime, updateWallclock } from './time.js';
import { Vcpu } from './vcpu.js';
import type { Xen } from './xen.js';
import './hypercall/index.js';

export interface PvDomainConfig {
  name: string;
  kernel: Uint8Array;
  ramdisk?: Uint8Array;
  memoryMiB: number;
  vcpus?: number;
  cmdline?: string;
  /** Where the guest's console ring output goes. */
  console?: (bytes: Uint8Array) => void;
  /** Where console_io (the hypervisor console) output goes; default: the same as console. */
  hvConsole?: (bytes: Uint8Array) => void;
  privileged?: boolean;
}

export interface PvDomain {
  domain: Domain;
  image: KernelImage;
  built: BuiltDomain;
  console: ConsoleBackend;
  storePort: number;
}

/** Make a vCPU with its own CPU and paged memory over the host's machine memory. */
export function makeVcpu(d: Domain, id: number): Vcpu {
  const xen = d.xen;
  const mem = new PagedMemory(xen.phys, undefined, { writeProtected: xen.writeProtected });
  if (!xen.code) xen.code = new CodeCache(mem);
  else { const code = xen.code; mem.onCodeWrite = (ppn) => code.dropPage(ppn); }
  const cpu = new Cpu(mem, { code: xen.code });
  mem.attach(cpu);
  const v = new Vcpu(d, id, cpu);
  d.vcpus.push(v);
  return v;
}

export function createPvDomain(xen: Xen, cfg: PvDomainConfig): PvDomain {
  const image = loadKernelImage(cfg.kernel, { mode: 'pv' });
  const layout = image.pv!;
  initM2P(xen); // before any domain memory, so the M2P gets contiguous frames
  const d = xen.newDomain(cfg.name);
  d.privileged = cfg.privileged ?? false;
  const out = cfg.console ?? (() => {});
  d.consoleWrite = cfg.hvConsole ?? out;
  const n = cfg.vcpus ?? 1;
  for (let i = 0; i < n; i++) makeVcpu(d, i);
  initEvents(d, (i) => { const v = d.vcpus[i]; if (v) wakeVcpu(v); }, (port) => {
    for (const v of d.vcpus) if (v.blocked && v.pollPorts.includes(port)) wakeVcpu(v);
  });

  // The console and xenstore ports exist before the memory is built (start_info names them).
  let consoleBackend: ConsoleBackend | undefined;
  const consolePort = bindToXen(d, () => consoleBackend?.drain());
  let storeKick: () => void = () => {};
  const storePort = bindToXen(d, () => storeKick());
  const built = buildPvDomain(d, {
    layout, memoryMiB: cfg.memoryMiB, cmdline: cfg.cmdline, ramdisk: cfg.ramdisk,
    storeEvtchn: storePort, consoleEvtchn: consolePort, sifFlags: d.privileged ? 3 : 0,
  });
  consoleBackend = new ConsoleBackend(d, built.consoleMfn, consolePort, out);
  setRamMemoryMap(d, built.nrPages);
  writeDomainNodes(d, cfg.memoryMiB * 1024, n);
  // The reserved grant entries libxl writes: 0 the console ring, 1 the xenstore ring, for dom0.
  initGrantTable(d);
  seedGrantTable(d, [{ ref: 0, domid: 0, frame: built.consoleMfn }, { ref: 1, domid: 0, frame: built.storeMfn }]);
  storeKick = introduceToXenstore(d, built.storeMfn, storePort, () => raisePort(d, storePort));
  shareXenPage(pageInfo(xen), d.sharedInfoMfn, d, true);
  // The toolstack pins the bootstrap L4 (validating the whole tree) as libxenguest does.
  const rc = pinTable(d, built.l4Mfn, 4);
  if (rc !== 0) throw new BuildError(`the bootstrap page tables did not validate (error ${rc})`);

  // vcpu_info of each vCPU starts in its shared_info slot, events masked.
  for (const v of d.vcpus) v.vcpuInfoPa = d.sharedInfoMfn * 4096 + SharedInfo.VCPU_INFO + v.id * VcpuInfo.SIZE;
  updateWallclock(xen, d.sharedInfoMfn);
  pvBootVcpu(d.vcpus[0], built);
  const brc = setKernelBaseptr(d.vcpus[0], built.l4Mfn);
  if (brc !== 0) throw new BuildError(`could not load the bootstrap page tables (error ${brc})`);
  for (const v of d.vcpus) { attachPv(v); installPtwr(v); }
  for (const v of d.vcpus) {
    updateVcpuTime(xen, v);
    // PV vCPUs start with a 100 Hz periodic timer (Xen's pv_vcpu_initialise); Linux and
    // NetBSD stop it with VCPUOP_stop_periodic_timer.
    v.periodicNs = 10_000_000;
    v.periodicNextNs = xen.now() + v.periodicNs;
  }
  xen.printk(`d${d.id}: PV domain '${d.name}': ${cfg.memoryMiB} MiB, ${n} vCPU(s), kernel ${fmt(built.virtBase)}-${fmt(built.virtEnd)}, entry ${fmt(built.entryVa)}`);
  d.state = 'running';
  return { domain: d, image, built, console: consoleBackend, storePort };
}

function fmt(v: bigint): string { return '0x' + v.toString(16); }
