// The CPUID view of a 64-bit PV guest: the machine's CPU model masked as Xen masks it for PV
// (its PV max policy and guest_cpuid's PV adjustments), plus the hypervisor leaves
// 0x40000000..0x40000005 (cpuid_hypervisor_leaves).
//
// Both paths a guest has to CPUID see the same answers: the native instruction (the CPU
// model's query, which we patch: this is what Xen gives on hardware with CPUID faulting)
// and the forced-emulation prefix `ud2; .ascii "xen"; cpuid` (emulate.ts calls pvCpuid).
//
// Masked for PV (Xen's featureset annotations: S = shadow/HAP HVM only, H = HAP only,
// nothing = never for guests): leaf 1 EDX VME PSE MTRR PGE PSE36 PSN DS ACPI TM PBE; leaf 1
// ECX DTES64 MONITOR DS-CPL VMX SMX EST TM2 SDBG xTPR PDCM PCID DCA x2APIC TSC-deadline,
// OSXSAVE (dynamic: the guest's CR4); HYPERVISOR is set. Leaf 7 EBX SMEP INVPCID SMAP; leaf
// 0x80000001 EDX Page1GB, ECX SVM IBS SKINIT WDT. Xen leaks MTRR/EIST/MONITOR into dom0's
// kernel; the model offers none of them, so that is not modelled.

import type { CpuModel } from '../../cpu/cpuid.js';
import type { Domain } from '../domain.js';
import { XEN_MAJOR, XEN_MINOR } from '../hypercall/misc.js';
import { TSC_HZ } from '../xen.js';

const bit = (n: number) => (1 << n) >>> 0;

const LEAF1_EDX_CLEAR = bit(1) | bit(3) | bit(12) | bit(13) | bit(17) | bit(18) | bit(21) | bit(22) | bit(29) | bit(31);
const LEAF1_ECX_CLEAR = bit(2) | bit(3) | bit(4) | bit(5) | bit(6) | bit(7) | bit(8) | bit(11) | bit(14) | bit(15) |
  bit(17) | bit(18) | bit(21) | bit(24) | bit(27);
const LEAF1_ECX_HYPERVISOR = bit(31);
const LEAF7_EBX_CLEAR = bit(7) | bit(10) | bit(20);
const EXT1_EDX_CLEAR = bit(26);
const EXT1_ECX_CLEAR = bit(2) | bit(10) | bit(12) | bit(13);

export const XEN_CPUID_FIRST_LEAF = 0x40000000;
/** The last Xen leaf a PV guest sees (leaf 5: PV parameters). */
export const XEN_CPUID_MAX_PV_LEAF = 0x40000005;
/** "XenVMMXenVMM" as EBX ECX EDX. */
export const XEN_CPUID_SIGNATURE = [0x566e6558, 0x65584d4d, 0x4d4d566e] as const;
const XEN_CPUID_FEAT1_MMU_PT_UPDATE_PRESERVE_AD = 1;
/** tsc_to_system_mul and shift for a 1 GHz TSC (set_time_scale's result). */
const TSC_MUL_FRAC = 0x80000000 | 0, TSC_SHIFT = 1;

const applied = new WeakSet<CpuModel>();

/** Mask a CPU model to what a 64-bit PV guest of d sees and add the Xen leaves, in place
 *  (each vCPU has its own model; applying twice is a no-op). */
export function applyPvCpuidPolicy(model: CpuModel, d: Domain): void {
  if (applied.has(model)) return;
  applied.add(model);
  model.leaf1Edx = (model.leaf1Edx & ~LEAF1_EDX_CLEAR) | 0;
  model.leaf1Ecx = ((model.leaf1Ecx & ~LEAF1_ECX_CLEAR) | LEAF1_ECX_HYPERVISOR) | 0;
  model.leaf7Ebx = (model.leaf7Ebx & ~LEAF7_EBX_CLEAR) | 0;
  model.ext1Edx = (model.ext1Edx & ~EXT1_EDX_CLEAR) | 0;
  model.ext1Ecx = (model.ext1Ecx & ~EXT1_ECX_CLEAR) | 0;
  const base = model.query.bind(model);
  model.query = (leaf, sub, apicId, osxsave) => {
    const l = leaf >>> 0;
    if (l >= XEN_CPUID_FIRST_LEAF && l < 0x50000000) return xenLeaf(model, d, l, sub >>> 0);
    return base(leaf, sub, apicId, osxsave);
  };
}

/** CPUID as the guest sees it (the model must have had applyPvCpuidPolicy). */
export function pvCpuid(model: CpuModel, leaf: number, sub: number, osxsave: boolean): [number, number, number, number] {
  return model.query(leaf, sub, 0, osxsave);
}

/** Xen's hypervisor leaves for a PV domain (no Viridian: base 0x40000000 only). */
function xenLeaf(model: CpuModel, d: Domain, leaf: number, sub: number): [number, number, number, number] {
  if (leaf > XEN_CPUID_MAX_PV_LEAF) return [0, 0, 0, 0];
  switch (leaf - XEN_CPUID_FIRST_LEAF) {
    case 0: return [XEN_CPUID_MAX_PV_LEAF | 0, XEN_CPUID_SIGNATURE[0], XEN_CPUID_SIGNATURE[1], XEN_CPUID_SIGNATURE[2]];
    case 1: return [(XEN_MAJOR << 16) | XEN_MINOR, 0, 0, 0];
    // One hypercall page, the MSR that installs it, and the PV feature flags.
    case 2: return [1, XEN_CPUID_FIRST_LEAF | 0, XEN_CPUID_FEAT1_MMU_PT_UPDATE_PRESERVE_AD, 0];
    case 3: {
      // Time: sub 0 = {flags (vtsc 0, host TSC safe, RDTSCP), tsc_mode 0 (default), tsc_khz,
      // incarnation}; sub 1 = {offset lo, hi, mul_frac, shift}; sub 2 = {cpu_khz}.
      const khz = TSC_HZ / 1000;
      const rdtscp = (model.ext1Edx & bit(27)) !== 0;
      if (sub === 0) return [(1 << 1) | (rdtscp ? 1 << 2 : 0), 0, khz, 0];
      if (sub === 1) return [0, 0, TSC_MUL_FRAC, TSC_SHIFT];
      if (sub === 2) return [khz, 0, 0, 0];
      return [0, 0, 0, 0];
    }
    case 4: return [0, 0, 0, 0]; // HVM features: nothing for PV
    case 5: {
      // PV parameters, sub 0: EBX = machine address width (highest MFN's bit + 12).
      if (sub !== 0) return [0, 0, 0, 0];
      const frames = d.xen.frames.frames;
      const width = 32 - Math.clz32(Math.max(frames - 1, 1)) + 12;
      return [0, width, 0, 0];
    }
    default: return [0, 0, 0, 0];
  }
}
