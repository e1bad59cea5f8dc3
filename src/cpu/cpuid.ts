// The CPU model that CPUID reports. It advertises only what the interpreter implements and
// the differential tests check; a machine may mask bits further (a PV guest sees Xen's view).

/** Feature bits, by the register they appear in. */
export const enum Cpuid1Edx {
  FPU = 1 << 0, PSE = 1 << 3, TSC = 1 << 4, MSR = 1 << 5, PAE = 1 << 6, CX8 = 1 << 8, APIC = 1 << 9,
  PGE = 1 << 13, CMOV = 1 << 15, PAT = 1 << 16, CLFSH = 1 << 19, FXSR = 1 << 24, SSE = 1 << 25, SSE2 = 1 << 26,
}
export const enum Cpuid1Ecx {
  SSE3 = 1 << 0, SSSE3 = 1 << 9, CX16 = 1 << 13, SSE41 = 1 << 19, SSE42 = 1 << 20, MOVBE = 1 << 22,
  POPCNT = 1 << 23, XSAVE = 1 << 26, OSXSAVE = 1 << 27, HYPERVISOR = 1 << 31,
}
export const enum CpuidExt1Edx { SYSCALL = 1 << 11, NX = 1 << 20, PAGE1GB = 1 << 26, RDTSCP = 1 << 27, LM = 1 << 29 }
export const enum CpuidExt1Ecx { LAHF_LM = 1 << 0, ABM = 1 << 5 }

export interface CpuModelOptions {
  vendor?: string;        // 12 characters
  brand?: string;         // up to 48 characters
  family?: number; model?: number; stepping?: number;
  leaf1Edx?: number; leaf1Ecx?: number;
  leaf7Ebx?: number;
  ext1Edx?: number; ext1Ecx?: number;
}

export class CpuModel {
  readonly vendor: string;
  readonly brand: string;
  readonly family: number; readonly modelNo: number; readonly stepping: number;
  leaf1Edx: number; leaf1Ecx: number; leaf7Ebx: number; ext1Edx: number; ext1Ecx: number;
  /** Extra leaves a hypervisor adds (0x40000000..), keyed by leaf. */
  readonly extra = new Map<number, [number, number, number, number]>();

  constructor(o: CpuModelOptions = {}) {
    this.vendor = (o.vendor ?? 'GenuineIntel').padEnd(12, ' ').slice(0, 12);
    this.brand = (o.brand ?? 'xensim virtual x86_64 CPU').padEnd(48, '\0').slice(0, 48);
    this.family = o.family ?? 6; this.modelNo = o.model ?? 0x3a; this.stepping = o.stepping ?? 9;
    this.leaf1Edx = o.leaf1Edx ?? (Cpuid1Edx.FPU | Cpuid1Edx.PSE | Cpuid1Edx.TSC | Cpuid1Edx.MSR | Cpuid1Edx.PAE |
      Cpuid1Edx.CX8 | Cpuid1Edx.PGE | Cpuid1Edx.CMOV | Cpuid1Edx.PAT | Cpuid1Edx.CLFSH | Cpuid1Edx.FXSR |
      Cpuid1Edx.SSE | Cpuid1Edx.SSE2);
    this.leaf1Ecx = o.leaf1Ecx ?? (Cpuid1Ecx.CX16 | Cpuid1Ecx.MOVBE | Cpuid1Ecx.POPCNT);
    this.leaf7Ebx = o.leaf7Ebx ?? 0;
    this.ext1Edx = o.ext1Edx ?? (CpuidExt1Edx.SYSCALL | CpuidExt1Edx.NX | CpuidExt1Edx.PAGE1GB | CpuidExt1Edx.RDTSCP | CpuidExt1Edx.LM);
    this.ext1Ecx = o.ext1Ecx ?? (CpuidExt1Ecx.LAHF_LM | CpuidExt1Ecx.ABM);
  }

  has1Ecx(bit: number): boolean { return (this.leaf1Ecx & bit) !== 0; }

  /** CPUID output for leaf/subleaf; `osxsave` reflects CR4.OSXSAVE, `apicId` the vCPU. */
  query(leaf: number, sub: number, apicId: number, osxsave: boolean): [number, number, number, number] {
    const x = this.extra.get(leaf >>> 0);
    if (x) return x;
    const str = (s: string, i: number) =>
      s.charCodeAt(i) | (s.charCodeAt(i + 1) << 8) | (s.charCodeAt(i + 2) << 16) | (s.charCodeAt(i + 3) << 24);
    switch (leaf >>> 0) {
      case 0: return [0xd, str(this.vendor, 0), str(this.vendor, 8), str(this.vendor, 4)];
      case 1: {
        const fam = this.family > 15 ? 15 : this.family;
        const extFam = this.family > 15 ? this.family - 15 : 0;
        const eax = (this.stepping & 15) | ((this.modelNo & 15) << 4) | (fam << 8) |
          (((this.modelNo >> 4) & 15) << 16) | (extFam << 20);
        const ebx = (8 << 8) | (1 << 16) | ((apicId & 0xff) << 24);
        let ecx = this.leaf1Ecx;
        if (osxsave && (ecx & Cpuid1Ecx.XSAVE)) ecx |= Cpuid1Ecx.OSXSAVE;
        return [eax, ebx, ecx | 0, this.leaf1Edx];
      }
      case 7: return sub === 0 ? [0, this.leaf7Ebx, 0, 0] : [0, 0, 0, 0];
      case 0xd:
        if (!(this.leaf1Ecx & Cpuid1Ecx.XSAVE)) return [0, 0, 0, 0];
        if (sub === 0) return [3, 576, 576, 0];
        if (sub === 1) return [0, 0, 0, 0];
        return [0, 0, 0, 0];
      case 0x80000000: return [0x80000008 | 0, 0, 0, 0];
      case 0x80000001: return [0, 0, this.ext1Ecx, this.ext1Edx];
      case 0x80000002: case 0x80000003: case 0x80000004: {
        const o = ((leaf >>> 0) - 0x80000002) * 16;
        return [str(this.brand, o), str(this.brand, o + 4), str(this.brand, o + 8), str(this.brand, o + 12)];
      }
      case 0x80000008: return [0x3028, 0, 0, 0]; // 40 physical, 48 linear address bits
      default:
        // Intel: leaves above the maximum return the highest basic leaf's data; we answer 0s.
        return [0, 0, 0, 0];
    }
  }
}

export function defaultCpuModel(): CpuModel { return new CpuModel(); }
