import { describe, expect, test } from 'vitest';
import { parseElf } from '../../src/guests/elf.js';
import {
  buildBsdSymtab, computeXenLayout, featureNames, parseFeatures, parseXenNotes, strtoull, XENFEAT,
} from '../../src/guests/xen-notes.js';
import { expectImageError, fixture, KERNBASE, minimalPvKernel, str, u32, u64 } from './helpers.js';

describe('Linux-style notes (PT_NOTE, PADDR_OFFSET 0, PVH entry)', () => {
  const elf = parseElf(fixture('linux-like.elf'));
  const info = parseXenNotes(elf);

  test('every note is decoded into the typed structure', () => {
    expect(info.source).toBe('PT_NOTE');
    expect(info.guestOs).toBe('linux');
    expect(info.guestVersion).toBe('2.6');
    expect(info.xenVersion).toBe('xen-3.0');
    expect(info.loader).toBe('generic');
    expect(info.virtBase).toBe(KERNBASE);
    expect(info.paddrOffset).toBe(0n);
    expect(info.initP2m).toBe(0x8000000000n);
    expect(info.hvStartLow).toBe(0xffff800000000000n);
    expect(info.pae).toBe('extended-cr3');
    expect(info.suspendCancel).toBe(1n);
    expect(info.unmappedInitrd).toBe(true);
    expect(info.l1MfnValid).toEqual([{ mask: 1n, value: 1n }]);
    expect(info.supportedFeatures).toBe(0x8801);
    expect(info.phys32Entry).toBeGreaterThan(0x1000000);
    expect(info.hypercallPage).toBeUndefined();
  });

  test("FEATURES without a NUL (as Linux writes it) and the '!' required marker", () => {
    expect(info.featuresString).toBe('!writable_page_tables|pae_pgdir_above_4gb');
    const f = info.features;
    expect(f.required).toBe(1 << XENFEAT.writable_page_tables);
    expect(f.supported & (1 << XENFEAT.pae_pgdir_above_4gb)).not.toBe(0);
    // SUPPORTED_FEATURES is ORed in: dom0 and linux_rsdp_unrestricted
    expect(featureNames(f.supported)).toEqual(['writable_page_tables', 'pae_pgdir_above_4gb', 'dom0', 'linux_rsdp_unrestricted']);
  });

  test('PV layout: segments placed by p_paddr + VIRT_BASE - PADDR_OFFSET', () => {
    const l = computeXenLayout(elf, info, 'pv');
    expect(l.virtOffset).toBe(KERNBASE);
    expect(l.pstart).toBe(0x1000000n);
    expect(l.virtKstart).toBe(0xffffffff81000000n);
    expect(l.virtKend).toBe(0xffffffff81206000n);
    expect(l.virtEntry).toBe(elf.sections.length ? info.entry : 0n);
    expect(l.p2mBase).toBe(0x8000000000n);
    const percpu = l.segments[2]!;
    expect(percpu.elfVaddr).toBe(0n);
    expect(percpu.vaddr).toBe(0xffffffff81201000n);
    expect(l.segments[3]!.data.length).toBe(0);
    expect(l.segments[3]!.memsz).toBe(0x4000n);
  });

  test('PVH layout: physical, entry at PHYS32_ENTRY', () => {
    const l = computeXenLayout(elf, info, 'pvh');
    expect(l.virtBase).toBe(0n);
    expect(l.virtKstart).toBe(0x1000000n);
    expect(l.virtEntry).toBe(BigInt(info.phys32Entry!));
    expect(l.segments[0]!.vaddr).toBe(0x1000000n);
  });
});

describe('NetBSD-style notes (SHT_NOTE only, VIRT_BASE = PADDR_OFFSET, hypercall page, BSD_SYMTAB)', () => {
  const elf = parseElf(fixture('netbsd-like.elf'));
  const info = parseXenNotes(elf);

  test('falls back to the SHT_NOTE section', () => {
    expect(info.source).toBe('SHT_NOTE');
    expect(info.guestOs).toBe('NetBSD');
    expect(info.guestVersion).toBe('4.99');
    expect(info.featuresString).toBe('');
    expect(info.features.supported).toBe(0);
    expect(info.bsdSymtab).toBe(true);
    expect(info.suspendCancel).toBe(0n);
    expect(info.notes[0]!.container).toMatch(/^section \d+ \(\.note\.Xen\)$/);
  });

  test('layout: p_paddr = p_vaddr, hypercall page, symbol table after the image', () => {
    const l = computeXenLayout(elf, info, 'pv');
    expect(l.virtOffset).toBe(0n);
    expect(l.virtKstart).toBe(0xffffffff80200000n);
    expect(l.virtEntry).toBe(0xffffffff80200000n);
    expect(l.virtHypercall).toBe(0xffffffff80201000n);
    expect(l.bsdSymtab).toBeDefined();
    expect(l.bsdSymtab!.pstart).toBe(l.pend); // pend is 8-aligned here
    expect(l.virtKend).toBe(l.bsdSymtab!.pend);
  });

  test('the BSD symbol table blob is a minimal ELF with symtab and strtab', () => {
    const l = computeXenLayout(elf, info, 'pv');
    const blob = buildBsdSymtab(elf, l);
    const dv = new DataView(blob.buffer);
    const size = dv.getUint32(0, true);
    expect(4 + size).toBeLessThanOrEqual(blob.length);
    const inner = blob.subarray(4, 4 + size);
    const sym = parseElf(inner);
    expect(sym.header.shnum).toBe(3);
    expect(sym.header.phnum).toBe(0);
    expect(sym.sections[1]!.type).toBe(2);
    expect(sym.sections[1]!.link).toBe(2);
    expect(sym.sections[2]!.type).toBe(3);
    const strtab = inner.subarray(sym.sections[2]!.offset, sym.sections[2]!.offset + Number(sym.sections[2]!.size));
    expect(new TextDecoder().decode(strtab)).toContain('hypercall_page');
  });
});

describe('legacy __xen_guest section', () => {
  test('64-bit: defaults ELF_PADDR_OFFSET to VIRT_BASE, HYPERCALL_PAGE is a page number', () => {
    const elf = parseElf(fixture('legacy64.elf'));
    const info = parseXenNotes(elf);
    expect(info.source).toBe('__xen_guest');
    expect(info.guestInfoString).toMatch(/^GUEST_OS=linux,GUEST_VER=2\.6,XEN_VER=xen-3\.0,VIRT_BASE=0xffffffff80000000,/);
    expect(info.virtBase).toBe(KERNBASE);
    expect(info.paddrOffset).toBeUndefined();
    expect(info.hypercallPage).toBe(0xffffffff80101000n);
    expect(info.pae).toBe('extended-cr3');
    // made_up_feature is optional and unknown: ignored
    expect(info.features.entries.map((e) => [e.name, e.required, e.known])).toEqual([
      ['writable_page_tables', false, true], ['pae_pgdir_above_4gb', true, true], ['made_up_feature', false, false],
    ]);
    const l = computeXenLayout(elf, info, 'pv');
    expect(l.elfPaddrOffset).toBe(KERNBASE);
    expect(l.virtKstart).toBe(0xffffffff80100000n);
    expect(l.virtHypercall).toBe(0xffffffff80101000n);
    expect(l.virtEntry).toBe(0xffffffff80100000n); // e_entry: no VIRT_ENTRY given
  });

  test('32-bit: parsed, but refused for 64-bit PV with a clear reason', () => {
    const elf = parseElf(fixture('legacy32.elf'));
    const info = parseXenNotes(elf);
    expect(info.virtBase).toBe(0xc0000000n);
    expect(info.paddrOffset).toBe(0xc0000000n);
    expect(info.hypercallPage).toBe(0xc0002000n);
    expect(info.bsdSymtab).toBe(true);
    expectImageError(() => computeXenLayout(elf, info, 'pv'), /ELF class 1 \(32-bit\) kernel for machine EM_386 is not supported for 64-bit PV/);
  });

  test('strtoull semantics', () => {
    expect(strtoull('0x10')).toBe(16n);
    expect(strtoull('010')).toBe(8n);
    expect(strtoull('12abc')).toBe(12n);
    expect(strtoull('junk')).toBe(0n);
    expect(strtoull('0xffffffffffffffffff')).toBe(0xffffffffffffffffn);
  });
});

describe('FEATURES parsing', () => {
  test("'!' marks required; required implies supported", () => {
    const f = parseFeatures('writable_descriptor_tables|!auto_translated_physmap|dom0');
    expect(f.supported).toBe((1 << 1) | (1 << 2) | (1 << 11));
    expect(f.required).toBe(1 << 2);
  });
  test('an unknown required feature is fatal, an unknown optional one is not', () => {
    expect(parseFeatures('frobnicate').supported).toBe(0);
    expectImageError(() => parseFeatures('!frobnicate'), /FEATURES requires "frobnicate", a feature Xen does not know/);
  });
});

describe('layout checks mirror libelf', () => {
  const layout = (b: Uint8Array, mode: 'pv' | 'pvh' = 'pv') => {
    const elf = parseElf(b);
    return computeXenLayout(elf, parseXenNotes(elf), mode);
  };

  test('a minimal PV kernel', () => {
    const l = layout(minimalPvKernel());
    expect(l.virtEntry).toBe(KERNBASE + 0x1000000n);
    expect(l.virtKend).toBe(KERNBASE + 0x1003000n);
  });

  test('no notes at all', () => {
    const b = minimalPvKernel([], { os: null, ver: null, vb: null, po: null, entry: null, loader: null });
    expectImageError(() => layout(b), /not a Xen-ELF image: no Xen ELF notes or '__xen_guest' section found/);
  });

  test('loader / guest OS and Xen version checks', () => {
    expectImageError(() => layout(minimalPvKernel([], { os: { type: 6, desc: str('Plan9') }, loader: null })),
      /only load images built for the generic loader or Linux images \(not loader "" and guest OS "Plan9"\)/);
    expectImageError(() => layout(minimalPvKernel([], { ver: { type: 5, desc: str('xen-2.0') } })), /built for Xen v3\.0 \(XEN_VERSION is "xen-2\.0"\)/);
  });

  test('PADDR_OFFSET without VIRT_BASE', () => {
    expectImageError(() => layout(minimalPvKernel([], { vb: null })), /ELF_PADDR_OFFSET set, VIRT_BASE unset/);
  });

  test('VIRT_BASE defaults to 0 and ENTRY to e_entry', () => {
    const l = layout(minimalPvKernel([], { vb: null, po: null, entry: null }));
    expect(l.virtBase).toBe(0n);
    expect(l.virtEntry).toBe(0x1000000n);
    expect(l.virtKstart).toBe(0x1000000n);
  });

  test('entry outside the image', () => {
    expectImageError(() => layout(minimalPvKernel([], { entry: { type: 1, desc: u64(KERNBASE + 0x9000000n) } })), /ELF start or entries are out of bounds/);
  });

  test('INIT_P2M inside the kernel', () => {
    expectImageError(() => layout(minimalPvKernel([{ type: 15, desc: u64(KERNBASE + 0x1001000n) }])), /P->M table base .* is inside the kernel/);
  });

  test('hypercall page outside the kernel', () => {
    expectImageError(() => layout(minimalPvKernel([{ type: 2, desc: u64(KERNBASE) }])), /hypercall page 0xffffffff80000000 is not a page-aligned page inside the kernel/);
  });

  test('numeric notes of odd sizes read as 0 (with a warning), 4-byte values work', () => {
    const elf = parseElf(minimalPvKernel([{ type: 14, desc: new Uint8Array(3) }, { type: 18, desc: u32(0x1000000) }]));
    const info = parseXenNotes(elf);
    expect(info.suspendCancel).toBe(0n);
    expect(info.warnings.join()).toMatch(/SUSPEND_CANCEL .* 3-byte descriptor/);
    expect(info.phys32Entry).toBe(0x1000000);
    expect(computeXenLayout(elf, info, 'pvh').virtEntry).toBe(0x1000000n);
  });

  test('PVH needs PHYS32_ENTRY', () => {
    expectImageError(() => layout(minimalPvKernel(), 'pvh'), /no PHYS32_ENTRY note/);
  });

  test('a non-x86 64-bit kernel', () => {
    const b = minimalPvKernel();
    new DataView(b.buffer).setUint16(18, 183, true);
    expectImageError(() => layout(b), /ELF class 2 \(64-bit\) kernel for machine EM_AARCH64 is not an x86_64 kernel/);
  });

  test('a huge p_memsz is refused without allocating', () => {
    const b = minimalPvKernel();
    new DataView(b.buffer).setBigUint64(64 + 40, 0x100000000000n, true);
    expectImageError(() => layout(b), /span 0x100000000000 bytes .* more than the limit/);
  });

  test('a later note overrides an earlier one; non-Xen notes are skipped', () => {
    const elf = parseElf(minimalPvKernel([
      { type: 6, desc: str('other'), name: 'GNU' },
      { type: 7, desc: str('1') },
      { type: 7, desc: str('2') },
    ]));
    const info = parseXenNotes(elf);
    expect(info.guestOs).toBe('linux');
    expect(info.guestVersion).toBe('2');
  });
});
