// Constants of /usr/include/xen/grant_table.h, written out independently of src/ for the tests.

export const Gnttab = {
  GNTTABOP_map_grant_ref: 0, GNTTABOP_unmap_grant_ref: 1, GNTTABOP_setup_table: 2, GNTTABOP_dump_table: 3,
  GNTTABOP_transfer: 4, GNTTABOP_copy: 5, GNTTABOP_query_size: 6, GNTTABOP_unmap_and_replace: 7,
  GNTTABOP_set_version: 8, GNTTABOP_get_status_frames: 9, GNTTABOP_get_version: 10, GNTTABOP_swap_grant_ref: 11,
  GNTTABOP_cache_flush: 12,

  GTF_invalid: 0, GTF_permit_access: 1, GTF_accept_transfer: 2, GTF_transitive: 3, GTF_type_mask: 3,
  GTF_readonly: 4, GTF_reading: 8, GTF_writing: 16, GTF_PWT: 32, GTF_PCD: 64, GTF_PAT: 128, GTF_sub_page: 256,
  GTF_transfer_committed: 4, GTF_transfer_completed: 8,

  GNTMAP_device_map: 1, GNTMAP_host_map: 2, GNTMAP_readonly: 4, GNTMAP_application_map: 8, GNTMAP_contains_pte: 16,
  GNTMAP_guest_avail0: 16,

  GNTCOPY_source_gref: 1, GNTCOPY_dest_gref: 2,

  GNTTAB_CACHE_CLEAN: 1, GNTTAB_CACHE_INVAL: 2, GNTTAB_CACHE_SOURCE_GREF: 0x80000000,
} as const;

export const GNTST = {
  okay: 0, general_error: -1, bad_domain: -2, bad_gntref: -3, bad_handle: -4, bad_virt_addr: -5, bad_dev_addr: -6,
  no_device_space: -7, permission_denied: -8, bad_page: -9, bad_copy_arg: -10, address_too_big: -11, eagain: -12,
  no_space: -13,
} as const;

export const ERR = { EPERM: -1, ESRCH: -3, EFAULT: -14, EBUSY: -16, EINVAL: -22, ENOSYS: -38, ERANGE: -34, EOPNOTSUPP: -95 } as const;

export const DOMID_SELF = 0x7ff0;
