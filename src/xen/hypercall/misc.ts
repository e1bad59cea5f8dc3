// Small hypercall families: xen_version (17), vm_assist (21), console_io (18),
// physdev_op (33: set_iopl, set_iobitmap), and the harmless ones guests probe.

import { Errno } from '../errno.js';
import { copyFromGuest, copyToGuest, readGuest32, readGuestU64, writeGuest32 } from '../guestmem.js';
import type { Vcpu } from '../vcpu.js';
import { Hc, registerHypercall } from './table.js';

export const XEN_MAJOR = 4, XEN_MINOR = 17;
export const XEN_EXTRAVERSION = '.0-xensim';

export const enum XenVer {
  version = 0, extraversion = 1, compile_info = 2, capabilities = 3, changeset = 4, platform_parameters = 5,
  get_features = 6, pagesize = 7, guest_handle = 8, commandline = 9, build_id = 10,
}
export const enum Feat {
  writable_page_tables = 0, writable_descriptor_tables = 1, auto_translated_physmap = 2, supervisor_mode_kernel = 3,
  pae_pgdir_above_4gb = 4, mmu_pt_update_preserve_ad = 5, highmem_assist = 6, gnttab_map_avail_bits = 7, dom0 = 11,
  memory_op_vnode_supported = 13, direct_mapped = 17,
}
export const enum Vmasst { four_gb_segments = 0, four_gb_segments_notify = 1, writable_pagetables = 2, pae_extended_cr3 = 3, architectural_iopl = 4, runstate_update_flag = 5, m2p_strict = 32 }
/** The assists a 64-bit PV guest may enable (Xen's VM_ASSIST_VALID for PV64), low 32 bits; m2p_strict separately. */
const VMASST_VALID_LO = (1 << 0) | (1 << 1) | (1 << 2) | (1 << 3) | (1 << 4) | (1 << 5);

function fixedString(s: string, len: number): Uint8Array {
  const b = new Uint8Array(len);
  b.set(new TextEncoder().encode(s).subarray(0, len - 1));
  return b;
}

/** XENVER_get_features submap 0 for a PV domain. */
export function featureMap(v: Vcpu): number {
  const d = v.domain;
  // Always memory_op_vnode_supported; direct_mapped for a domain that is not translated;
  // for PV the MMU features; pae_pgdir_above_4gb once the guest enabled pae_extended_cr3.
  // (writable_page_tables is only reported to translated guests.)
  let f = (1 << Feat.memory_op_vnode_supported) | (1 << Feat.direct_mapped) |
    (1 << Feat.mmu_pt_update_preserve_ad) | (1 << Feat.highmem_assist) | (1 << Feat.gnttab_map_avail_bits);
  if (d.vmAssist & (1 << Vmasst.pae_extended_cr3)) f |= 1 << Feat.pae_pgdir_above_4gb;
  if (d.privileged) f |= 1 << Feat.dom0;
  return f >>> 0;
}

function xenVersion(v: Vcpu, cmd: number, p: number): number {
  switch (cmd) {
    case XenVer.version: return (XEN_MAJOR << 16) | XEN_MINOR;
    case XenVer.extraversion: copyToGuest(v, p, fixedString(XEN_EXTRAVERSION, 16)); return 0;
    case XenVer.compile_info: {
      const b = new Uint8Array(64 + 16 + 32 + 32);
      b.set(fixedString('xensim (TypeScript)', 64), 0);
      b.set(fixedString('xensim', 16), 64);
      b.set(fixedString('localdomain', 32), 80);
      b.set(fixedString('Thu Jan  1 00:00:00 UTC 2026', 32), 112);
      copyToGuest(v, p, b);
      return 0;
    }
    case XenVer.capabilities: copyToGuest(v, p, fixedString('xen-3.0-x86_64 ', 1024)); return 0;
    case XenVer.changeset: copyToGuest(v, p, fixedString('xensim', 64)); return 0;
    case XenVer.platform_parameters: {
      // virt_start: HYPERVISOR_VIRT_START (0xffff800000000000)
      const b = new Uint8Array(8);
      new DataView(b.buffer).setBigUint64(0, 0xffff800000000000n, true);
      copyToGuest(v, p, b);
      return 0;
    }
    case XenVer.get_features: {
      const idx = readGuest32(v, p) >>> 0;
      if (idx !== 0) return -Errno.EINVAL;
      writeGuest32(v, p + 4, featureMap(v));
      return 0;
    }
    case XenVer.pagesize: return p !== 0 ? -Errno.EINVAL : 4096;
    case XenVer.guest_handle: copyToGuest(v, p, v.domain.handle); return 0;
    case XenVer.commandline:
      // The default XSM policy denies it to a domU; Xen then copies "<denied>" and succeeds.
      if (!v.domain.privileged) { copyToGuest(v, p, fixedString('<denied>', 9)); return 0; }
      copyToGuest(v, p, fixedString(v.domain.xen.commandLine, 1024));
      return 0;
    case XenVer.build_id:
      if (!v.domain.privileged) return -Errno.EPERM;
      return -Errno.ENODATA;
    default: return -Errno.ENOSYS;
  }
}

function vmAssist(v: Vcpu, cmd: number, type: number): number {
  if (type >= 64) return -Errno.EINVAL;
  const bit = type === Vmasst.m2p_strict ? 1 << 30 : type < 32 ? 1 << type : 0;
  const valid = type === Vmasst.m2p_strict || (type < 32 && (VMASST_VALID_LO & (1 << type)) !== 0);
  if (!valid) return -Errno.EINVAL;
  if (cmd === 0) { v.domain.vmAssist |= bit; return 0; }
  if (cmd === 1) { v.domain.vmAssist &= ~bit; return 0; }
  return -Errno.ENOSYS;
}

function consoleIo(v: Vcpu, cmd: number, count: number, p: number): number {
  switch (cmd) {
    case 0: { // CONSOLEIO_write: every domain may write (a debug Xen's behaviour; early printk needs it)
      if (count < 0 || count > 0x7fffffff) return -Errno.EINVAL;
      let left = count, at = p;
      while (left > 0) {
        const n = Math.min(left, 4096);
        v.domain.consoleWrite(copyFromGuest(v, at, n));
        left -= n; at += n;
      }
      return 0;
    }
    case 1: { // CONSOLEIO_read: the Xen console's input, dom0 only
      if (!v.domain.privileged) return -Errno.EPERM;
      const data = v.domain.xen.consoleInput.splice(0, Math.max(0, count));
      copyToGuest(v, p, Uint8Array.from(data));
      return data.length;
    }
    default: return -Errno.ENOSYS;
  }
}

function physdevOp(v: Vcpu, cmd: number, p: number): number {
  switch (cmd) {
    case 6: { // PHYSDEVOP_set_iopl
      const iopl = readGuest32(v, p) >>> 0;
      if (iopl > 3) return -Errno.EINVAL;
      v.iopl = iopl;
      return 0;
    }
    case 7: { // PHYSDEVOP_set_iobitmap: {bitmap guest handle, nr_ports}
      const bitmap = readGuestU64(v, p), nr = readGuest32(v, p + 8) >>> 0;
      if (nr > 65536) return -Errno.EINVAL;
      v.ioBitmap = bitmap;
      v.ioBitmapPorts = nr;
      return 0;
    }
    default: return -Errno.ENOSYS;
  }
}

registerHypercall(Hc.xen_version, (v, a) => xenVersion(v, a.u32(0), a.ptr(1)));
registerHypercall(Hc.vm_assist, (v, a) => vmAssist(v, a.u32(0), a.u32(1)));
registerHypercall(Hc.console_io, (v, a) => consoleIo(v, a.u32(0), a.s32(1), a.ptr(2)));
registerHypercall(Hc.physdev_op, (v, a) => physdevOp(v, a.u32(0), a.ptr(1)));
// xenpmu_op: no virtual PMU ("VPMU disabled by hypervisor").
registerHypercall(Hc.xenpmu_op, () => -Errno.EOPNOTSUPP);
