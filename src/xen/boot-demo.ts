// The default host that `sim boot` runs: two PV domUs, "ping" and "pong", built from the
// project's own pingpong guest (fixtures/guests/pingpong), that meet in xenstore, connect an
// interdomain event channel and share a granted page, then power off (the protocol is in the
// guest's main.c). This module builds and runs the host; the CLI reads the image and prints.
//
// Decisions:
//  - Domain 0 is this process (the toolstack and xenstored), as in the host daemon
//    (hostd/manager.ts): domain ID 0 is burnt, so ping and pong are domUs 1 and 2 and
//    xenstored applies its permission checks to them (it trusts domid 0 as dom0).
//  - Each guest learns its peer's domid from /local/domain/<id>/pingpong/peer-domid, which
//    the toolstack writes before either runs (dom0-owned, readable by the domain, as libxl's
//    nodes are); the role and the number of rounds are on the command line.
//  - Console output of each domain (console_io and its console ring alike) is cut into
//    lines, so the CLI can prefix them with the domain's name; a line counts as the result
//    if it is "PASS <name>" or starts with "FAIL".

import { PhysMem } from '../mmu/physmem.js';
import type { Domain } from './domain.js';
import { runHost, type HostStop } from './host.js';
import { createPvDomain, type PvDomain } from './toolstack.js';
import { hostXenstore } from './xenstore/attach.js';
import { Xen } from './xen.js';

export interface DemoDomainSpec {
  name: string;
  role: 'ping' | 'pong';
  memoryMiB: number;
}

/** The default host's domains, in creation order (ping first: it publishes, pong waits). */
export const DEMO_DOMAINS: readonly DemoDomainSpec[] = [
  { name: 'ping', role: 'ping', memoryMiB: 16 },
  { name: 'pong', role: 'pong', memoryMiB: 16 },
];
export const DEMO_ROUNDS = 10;

export interface DemoOptions {
  /** The pingpong guest image (fixtures/guests/pingpong/pingpong.elf). */
  kernel: Uint8Array;
  rounds?: number;
  /** The domains, in creation order (default DEMO_DOMAINS). */
  domains?: readonly DemoDomainSpec[];
  /** One complete console line of a domain (without its newline). */
  onLine: (dom: DemoDomain, line: string) => void;
  /** The hypervisor log, line by line. */
  onLog?: (line: string) => void;
}

export interface DemoDomain {
  spec: DemoDomainSpec;
  pv: PvDomain;
  domain: Domain;
  cmdline: string;
  /** Every console line so far. */
  lines: string[];
  /** Output after the last newline (flushed as a line when the run ends). */
  partial: string;
}

export interface DemoHost {
  xen: Xen;
  domains: DemoDomain[];
  onLine: DemoOptions['onLine'];
}

export function buildDemoHost(o: DemoOptions): DemoHost {
  const rounds = o.rounds ?? DEMO_ROUNDS;
  const specs = o.domains ?? DEMO_DOMAINS;
  if (specs.length !== 2) throw new Error('the default host has two domains');
  const guestMiB = specs.reduce((n, s) => n + s.memoryMiB, 0);
  // Room for Xen's own frames (M2P, shared_info, grant frames) besides the guests, as sim run.
  const xen = new Xen(new PhysMem((guestMiB + 16 + Math.ceil(guestMiB / 512)) * 1048576));
  if (o.onLog) xen.onLog = o.onLog;
  // Domain 0 is this process; see the header.
  const dom0 = xen.newDomain('Domain-0');
  xen.domains.delete(dom0.id);

  const domains: DemoDomain[] = [];
  const emit = (d: DemoDomain, line: string): void => { d.lines.push(line); o.onLine(d, line); };
  for (const spec of specs) {
    const decoder = new TextDecoder();
    let rec: DemoDomain | null = null;
    const console = (bytes: Uint8Array): void => {
      if (!rec) return;
      const text = rec.partial + decoder.decode(bytes, { stream: true });
      const parts = text.split('\n');
      rec.partial = parts.pop() ?? '';
      for (const l of parts) emit(rec, l.replace(/\r$/, ''));
    };
    const cmdline = `role=${spec.role} rounds=${rounds}`;
    const pv = createPvDomain(xen, { name: spec.name, kernel: o.kernel, memoryMiB: spec.memoryMiB, vcpus: 1, cmdline, console });
    rec = { spec, pv, domain: pv.domain, cmdline, lines: [], partial: '' };
    domains.push(rec);
  }

  // Tell each guest who its peer is (before either runs).
  const xs = hostXenstore(xen).dom0;
  for (const d of domains) {
    const peer = domains.find((p) => p !== d)!;
    xs.write(`/local/domain/${d.domain.id}/pingpong/peer-domid`, String(peer.domain.id));
  }
  return { xen, domains, onLine: o.onLine };
}

export interface DemoLimits {
  /** Virtual seconds (default 60). */
  timeoutS?: number;
  /** Instructions over all vCPUs (default 500 million). */
  maxInsns?: number;
  /** Instructions per chunk between yields to the event loop. */
  chunk?: number;
}

export interface DemoResult {
  stop: HostStop;
  insns: number;
  virtualNs: number;
}

/** Run until every domain has shut down (or a limit); yields to the event loop between
 *  chunks so ^C and output keep flowing. */
export async function runDemoHost(h: DemoHost, limits: DemoLimits = {}): Promise<DemoResult> {
  const maxInsns = limits.maxInsns ?? 500_000_000;
  const timeoutNs = (limits.timeoutS ?? 60) * 1e9;
  const chunk = limits.chunk ?? 20_000_000;
  const start = totalInsns(h);
  let stop: HostStop;
  for (;;) {
    const done = totalInsns(h) - start;
    stop = runHost(h.xen, {
      maxInsns: Math.min(chunk, maxInsns - done), timeoutNs, until: () => h.domains.every((d) => d.domain.isDead),
    });
    if (stop.kind !== 'limit' || totalInsns(h) - start >= maxInsns) break;
    await new Promise((r) => setImmediate(r));
  }
  for (const d of h.domains) {
    if (d.partial !== '') { const l = d.partial; d.partial = ''; d.lines.push(l); h.onLine(d, l); }
  }
  return { stop, insns: totalInsns(h) - start, virtualNs: h.xen.now() };
}

function totalInsns(h: DemoHost): number {
  let n = 0;
  for (const d of h.domains) for (const v of d.domain.vcpus) n += v.cpu.insns;
  return n;
}

/** How one domain ended: its shutdown reason and whether it reported PASS. */
export interface DemoVerdict {
  name: string;
  domid: number;
  reason: number; // -1: still running
  passed: boolean;
  /** FAIL lines other than the result line. */
  failures: string[];
}

export function demoVerdicts(h: DemoHost): DemoVerdict[] {
  return h.domains.map((d) => ({
    name: d.spec.name,
    domid: d.domain.id,
    reason: d.domain.isDead ? d.domain.shutdownReason : -1,
    passed: d.lines.includes(`PASS ${d.spec.name}`),
    failures: d.lines.filter((l) => l.startsWith('FAIL') && l !== `FAIL ${d.spec.name}`),
  }));
}
