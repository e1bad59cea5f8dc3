// The grant_table_op structure layouts the hypercall layer uses (GntLayout) and the v1/v2
// entry layouts (GntEnt), against a C program compiled with the Xen public headers.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { GntEnt } from '../../../src/xen/gnttab/model.js';
import { GntLayout } from '../../../src/xen/hypercall/gnttab.js';

const HEADER = '/usr/include/xen/grant_table.h';
function haveCc(): boolean {
  try { execFileSync('cc', ['--version'], { stdio: 'ignore' }); return true; } catch { return false; }
}

const FIELDS: [string, string, number][] = [
  ['gnttab_map_grant_ref', 'host_addr', GntLayout.MAP_HOST_ADDR], ['gnttab_map_grant_ref', 'flags', GntLayout.MAP_FLAGS],
  ['gnttab_map_grant_ref', 'ref', GntLayout.MAP_REF], ['gnttab_map_grant_ref', 'dom', GntLayout.MAP_DOM],
  ['gnttab_map_grant_ref', 'status', GntLayout.MAP_STATUS], ['gnttab_map_grant_ref', 'handle', GntLayout.MAP_HANDLE],
  ['gnttab_map_grant_ref', 'dev_bus_addr', GntLayout.MAP_DEV_BUS_ADDR],
  ['gnttab_unmap_grant_ref', 'host_addr', GntLayout.UNMAP_HOST_ADDR], ['gnttab_unmap_grant_ref', 'dev_bus_addr', GntLayout.UNMAP_DEV_BUS_ADDR],
  ['gnttab_unmap_grant_ref', 'handle', GntLayout.UNMAP_HANDLE], ['gnttab_unmap_grant_ref', 'status', GntLayout.UNMAP_STATUS],
  ['gnttab_setup_table', 'dom', GntLayout.SETUP_DOM], ['gnttab_setup_table', 'nr_frames', GntLayout.SETUP_NR_FRAMES],
  ['gnttab_setup_table', 'status', GntLayout.SETUP_STATUS], ['gnttab_setup_table', 'frame_list', GntLayout.SETUP_FRAME_LIST],
  ['gnttab_dump_table', 'dom', GntLayout.DUMP_DOM], ['gnttab_dump_table', 'status', GntLayout.DUMP_STATUS],
  ['gnttab_transfer', 'mfn', GntLayout.TRANSFER_MFN], ['gnttab_transfer', 'domid', GntLayout.TRANSFER_DOMID],
  ['gnttab_transfer', 'ref', GntLayout.TRANSFER_REF], ['gnttab_transfer', 'status', GntLayout.TRANSFER_STATUS],
  ['gnttab_copy', 'source', GntLayout.COPY_SRC], ['gnttab_copy', 'dest', GntLayout.COPY_DEST],
  ['gnttab_copy', 'source.domid', GntLayout.COPY_PTR_DOMID], ['gnttab_copy', 'source.offset', GntLayout.COPY_PTR_OFFSET],
  ['gnttab_copy', 'len', GntLayout.COPY_LEN], ['gnttab_copy', 'flags', GntLayout.COPY_FLAGS], ['gnttab_copy', 'status', GntLayout.COPY_STATUS],
  ['gnttab_query_size', 'dom', GntLayout.QUERY_DOM], ['gnttab_query_size', 'nr_frames', GntLayout.QUERY_NR_FRAMES],
  ['gnttab_query_size', 'max_nr_frames', GntLayout.QUERY_MAX_NR_FRAMES], ['gnttab_query_size', 'status', GntLayout.QUERY_STATUS],
  ['gnttab_unmap_and_replace', 'host_addr', GntLayout.REPLACE_HOST_ADDR], ['gnttab_unmap_and_replace', 'new_addr', GntLayout.REPLACE_NEW_ADDR],
  ['gnttab_unmap_and_replace', 'handle', GntLayout.REPLACE_HANDLE], ['gnttab_unmap_and_replace', 'status', GntLayout.REPLACE_STATUS],
  ['gnttab_set_version', 'version', GntLayout.SETVER_VERSION],
  ['gnttab_get_status_frames', 'nr_frames', GntLayout.STATUS_NR_FRAMES], ['gnttab_get_status_frames', 'dom', GntLayout.STATUS_DOM],
  ['gnttab_get_status_frames', 'status', GntLayout.STATUS_STATUS], ['gnttab_get_status_frames', 'frame_list', GntLayout.STATUS_FRAME_LIST],
  ['gnttab_get_version', 'dom', GntLayout.GETVER_DOM], ['gnttab_get_version', 'version', GntLayout.GETVER_VERSION],
  ['gnttab_swap_grant_ref', 'ref_a', GntLayout.SWAP_REF_A], ['gnttab_swap_grant_ref', 'ref_b', GntLayout.SWAP_REF_B],
  ['gnttab_swap_grant_ref', 'status', GntLayout.SWAP_STATUS],
  ['gnttab_cache_flush', 'a', GntLayout.FLUSH_A], ['gnttab_cache_flush', 'offset', GntLayout.FLUSH_OFFSET],
  ['gnttab_cache_flush', 'length', GntLayout.FLUSH_LENGTH], ['gnttab_cache_flush', 'op', GntLayout.FLUSH_OP],
  ['grant_entry_v1', 'flags', GntEnt.FLAGS], ['grant_entry_v1', 'domid', GntEnt.DOMID], ['grant_entry_v1', 'frame', GntEnt.V1_FRAME],
];
const SIZES: [string, number][] = [
  ['struct gnttab_map_grant_ref', GntLayout.MAP_SIZE], ['struct gnttab_unmap_grant_ref', GntLayout.UNMAP_SIZE],
  ['struct gnttab_setup_table', GntLayout.SETUP_SIZE], ['struct gnttab_dump_table', GntLayout.DUMP_SIZE],
  ['struct gnttab_transfer', GntLayout.TRANSFER_SIZE], ['struct gnttab_copy', GntLayout.COPY_SIZE],
  ['struct gnttab_query_size', GntLayout.QUERY_SIZE], ['struct gnttab_unmap_and_replace', GntLayout.REPLACE_SIZE],
  ['struct gnttab_set_version', GntLayout.SETVER_SIZE], ['struct gnttab_get_status_frames', GntLayout.STATUS_SIZE],
  ['struct gnttab_get_version', GntLayout.GETVER_SIZE], ['struct gnttab_swap_grant_ref', GntLayout.SWAP_SIZE],
  ['struct gnttab_cache_flush', GntLayout.FLUSH_SIZE], ['struct grant_entry_v1', GntEnt.V1_SIZE], ['union grant_entry_v2', GntEnt.V2_SIZE],
];
const V2: [string, number][] = [
  ['full_page.frame', GntEnt.V2_FRAME], ['sub_page.page_off', GntEnt.V2_PAGE_OFF], ['sub_page.length', GntEnt.V2_LENGTH],
  ['sub_page.frame', GntEnt.V2_FRAME], ['transitive.trans_domid', GntEnt.V2_TRANS_DOMID], ['transitive.gref', GntEnt.V2_TRANS_GREF],
];

describe.skipIf(!existsSync(HEADER) || !haveCc())('grant_table.h layouts', () => {
  it('every offset and size matches the C compiler\'s', () => {
    const dir = mkdtempSync(join(tmpdir(), 'gnttab-layout-'));
    try {
      const lines = [
        '#include <stdio.h>', '#include <stddef.h>', '#include <stdint.h>',
        '#define __XEN_INTERFACE_VERSION__ 0x00040e00', '#include <xen/xen.h>', '#include <xen/grant_table.h>', 'int main(void) {',
        ...FIELDS.map(([s, f]) => `printf("%zu\\n", offsetof(struct ${s}, ${f}));`),
        ...SIZES.map(([t]) => `printf("%zu\\n", sizeof(${t}));`),
        ...V2.map(([f]) => `printf("%zu\\n", offsetof(union grant_entry_v2, ${f}));`),
        'return 0; }',
      ];
      writeFileSync(join(dir, 'l.c'), lines.join('\n'));
      execFileSync('cc', ['-o', join(dir, 'l'), join(dir, 'l.c')]);
      const got = execFileSync(join(dir, 'l')).toString().trim().split('\n').map(Number);
      const want = [...FIELDS.map((f) => f[2]), ...SIZES.map((s) => s[1]), ...V2.map((v) => v[1])];
      const names = [...FIELDS.map(([s, f]) => `${s}.${f}`), ...SIZES.map((s) => s[0]), ...V2.map((v) => `v2.${v[0]}`)];
      expect(Object.fromEntries(names.map((n, i) => [n, got[i]]))).toEqual(Object.fromEntries(names.map((n, i) => [n, want[i]])));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
