// The host's xenstored: one per Xen, with each domain's ring page attached when the
// toolstack introduces the domain (as xenstored maps the page and binds the port), and the
// nodes libxl writes for a new domain.

import type { Domain } from '../domain.js';
import type { Xen } from '../xen.js';
import { createXenstore, type Xenstore } from './model.js';
import { XenstoreRing, type RingPage } from './ring.js';

interface Attached { xs: Xenstore; rings: Map<number, XenstoreRing>; notify: Map<number, () => void>; pages: Map<number, number> }
const byXen = new WeakMap<Xen, Attached>();

/** The host's xenstore, made on first use. */
export function hostXenstore(xen: Xen): Xenstore {
  return attachedOf(xen).xs;
}

function attachedOf(xen: Xen): Attached {
  let a = byXen.get(xen);
  if (a) return a;
  const rings = new Map<number, XenstoreRing>(), notify = new Map<number, () => void>(), pages = new Map<number, number>();
  const xs = createXenstore({
    domainExists: (domid) => domid === 0 || xen.domains.has(domid),
    hooks: {
      onIntroduce(d, why) {
        const pa = pages.get(d.domid);
        const kick = notify.get(d.domid);
        if (pa === undefined || !kick || !d.conn) return;
        const m = xen.machine;
        const page: RingPage = {
          read: (off, len) => m.bytes(pa + off, len),
          write: (off, data) => m.setBytes(pa + off, data),
        };
        const ring = new XenstoreRing(xs, d.conn, page, kick);
        rings.set(d.domid, ring);
        ring.start(why !== 'restore');
      },
      onRelease(domid) { rings.delete(domid); },
    },
  });
  a = { xs, rings, notify, pages };
  byXen.set(xen, a);
  return a;
}

/** Introduce a domain whose xenstore ring is the frame storeMfn and whose event channel to
 *  xenstored raises `notifyGuest`; returns the function to call when the guest notifies. */
export function introduceToXenstore(d: Domain, storeMfn: number, port: number, notifyGuest: () => void): () => void {
  const a = attachedOf(d.xen);
  a.pages.set(d.id, storeMfn * 4096);
  a.notify.set(d.id, notifyGuest);
  a.xs.introduceDomain(d.id, storeMfn, port);
  return () => a.rings.get(d.id)?.kick();
}

/** The nodes the toolstack (libxl) writes for a new domain before it runs. */
export function writeDomainNodes(d: Domain, memoryKiB: number, vcpus: number): void {
  const xs = hostXenstore(d.xen).dom0;
  const base = `/local/domain/${d.id}`;
  const own = [`n${d.id}`, 'r0'];
  xs.mkdir(base);
  xs.setPerms(base, [`n0`, `r${d.id}`]);
  xs.write(`${base}/name`, d.name);
  xs.write(`${base}/domid`, String(d.id));
  for (const dir of ['device', 'control', 'data', 'memory', 'cpu', 'drivers', 'feature', 'attr', 'error']) {
    xs.mkdir(`${base}/${dir}`);
    xs.setPerms(`${base}/${dir}`, dir === 'data' || dir === 'drivers' || dir === 'feature' || dir === 'attr' || dir === 'error' ? own : ['n0', `r${d.id}`]);
  }
  xs.write(`${base}/memory/target`, String(memoryKiB));
  xs.write(`${base}/memory/static-max`, String(memoryKiB));
  xs.write(`${base}/memory/videoram`, '-1');
  for (let i = 0; i < vcpus; i++) xs.write(`${base}/cpu/${i}/availability`, 'online');
  for (const f of ['platform-feature-multiprocessor-suspend', 'platform-feature-xs_reset_watches']) xs.write(`${base}/control/${f}`, '1');
  xs.write(`${base}/control/shutdown`, '');
  xs.setPerms(`${base}/control/shutdown`, own);
  for (const f of ['feature-poweroff', 'feature-reboot', 'feature-suspend', 'sysrq']) {
    xs.write(`${base}/control/${f}`, '');
    xs.setPerms(`${base}/control/${f}`, own);
  }
  xs.write(`/vm/${d.id}/name`, d.name);
  xs.write(`${base}/vm`, `/vm/${d.id}`);
}

/** Whether a domain's PV drivers watch control/shutdown (a guest that will act on a
 *  shutdown request written there, as xl's shutdown relies on). */
export function watchesControlShutdown(d: Domain): boolean {
  const rec = hostXenstore(d.xen).domains.get(d.id);
  const conn = rec?.conn;
  if (!conn) return false;
  const target = `/local/domain/${d.id}/control/shutdown`;
  return conn.watches.some((w) => {
    const p = w.path.startsWith('/') || w.path.startsWith('@') ? w.path : `/local/domain/${d.id}/${w.path}`;
    return target === p || target.startsWith(p === '/' ? '/' : p + '/');
  });
}

/** xl shutdown / reboot through xenstore: write control/shutdown for the guest to act on. */
export function requestShutdown(d: Domain, reason: 'poweroff' | 'reboot'): void {
  hostXenstore(d.xen).dom0.write(`/local/domain/${d.id}/control/shutdown`, reason);
}
