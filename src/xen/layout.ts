// Guest-visible structure layouts of the x86_64 Xen ABI, declared once. Offsets were taken
// from the public headers (libxen-dev, __XEN_INTERFACE_VERSION__ 0x00040e00) and are
// asserted in test/xen/layout.test.ts against a C program compiled with those headers.

export const PAGE_SIZE = 4096;

/** struct start_info (1168 bytes). */
export const enum StartInfo {
  MAGIC = 0, NR_PAGES = 32, SHARED_INFO = 40, FLAGS = 48, STORE_MFN = 56, STORE_EVTCHN = 64,
  CONSOLE = 72, CONSOLE_MFN = 72, CONSOLE_EVTCHN = 80, // domU: { mfn, evtchn }; dom0: { info_off, info_size }
  PT_BASE = 88, NR_PT_FRAMES = 96, MFN_LIST = 104, MOD_START = 112, MOD_LEN = 120, CMD_LINE = 128,
  FIRST_P2M_PFN = 1152, NR_P2M_FRAMES = 1160, SIZE = 1168,
}
export const MAX_GUEST_CMDLINE = 1024;
export const enum Sif { PRIVILEGED = 1, INITDOMAIN = 2, MULTIBOOT_MOD = 4, MOD_START_PFN = 8, VIRT_P2M_4TOOLS = 16 }

/** struct shared_info (3136 bytes). */
export const enum SharedInfo {
  VCPU_INFO = 0, EVTCHN_PENDING = 2048, EVTCHN_MASK = 2560, WC_VERSION = 3072, WC_SEC = 3076, WC_NSEC = 3080,
  WC_SEC_HI = 3084, ARCH = 3088, ARCH_MAX_PFN = 3088, ARCH_P2M_FRAME_LIST_LIST = 3096, ARCH_NMI_REASON = 3104,
  ARCH_P2M_CR3 = 3112, ARCH_P2M_VADDR = 3120, ARCH_P2M_GENERATION = 3128, SIZE = 3136,
}
/** Legacy vcpu_info slots in shared_info. */
export const XEN_LEGACY_MAX_VCPUS = 32;

/** struct vcpu_info (64 bytes). */
export const enum VcpuInfo {
  UPCALL_PENDING = 0, UPCALL_MASK = 1, PENDING_SEL = 8, ARCH_CR2 = 16, TIME = 32, SIZE = 64,
}

/** struct vcpu_time_info (32 bytes). */
export const enum TimeInfo {
  VERSION = 0, TSC_TIMESTAMP = 8, SYSTEM_TIME = 16, TSC_TO_SYSTEM_MUL = 24, TSC_SHIFT = 28, FLAGS = 29, SIZE = 32,
}
export const XEN_PVCLOCK_TSC_STABLE_BIT = 1;

/** struct trap_info (16 bytes): vector u8, flags u8 (DPL in 0-1, bit 2: clear event mask), cs u16, address u64. */
export const enum TrapInfo { VECTOR = 0, FLAGS = 1, CS = 2, ADDRESS = 8, SIZE = 16 }

/** struct vcpu_runstate_info (48 bytes). */
export const enum Runstate { STATE = 0, STATE_ENTRY_TIME = 8, TIME = 16, SIZE = 48 }
export const enum RunstateState { RUNNING = 0, RUNNABLE = 1, BLOCKED = 2, OFFLINE = 3 }

/** struct multicall_entry (64 bytes): op, result, args[6]. */
export const enum Multicall { OP = 0, RESULT = 8, ARGS = 16, SIZE = 64 }

/** struct mmu_update (16 bytes) and struct mmuext_op (24 bytes). */
export const MMU_UPDATE_SIZE = 16;
export const MMUEXT_OP_SIZE = 24;

/** struct cpu_user_regs / vcpu_guest_context offsets used by VCPUOP_initialise. */
export const enum GuestContext {
  FLAGS = 512, USER_REGS = 520, TRAP_CTXT = 720, LDT_BASE = 4816, LDT_ENTS = 4824, GDT_FRAMES = 4832,
  GDT_ENTS = 4960, KERNEL_SS = 4968, KERNEL_SP = 4976, CTRLREG = 4984, DEBUGREG = 5048,
  EVENT_CALLBACK_EIP = 5112, FAILSAFE_CALLBACK_EIP = 5120, SYSCALL_CALLBACK_EIP = 5128, VM_ASSIST = 5136,
  FS_BASE = 5144, GS_BASE_KERNEL = 5152, GS_BASE_USER = 5160, SIZE = 5168,
}
export const enum UserRegs { RIP = 128, CS = 136, RFLAGS = 144, RSP = 152, SS = 160, SIZE = 200 }

/** Virtual address layout of a 64-bit PV guest. */
export const HYPERVISOR_VIRT_START = 0xffff800000000000n;
export const HYPERVISOR_VIRT_END = 0xffff880000000000n;
export const MACH2PHYS_VIRT_START = 0xffff800000000000n;
export const MACH2PHYS_VIRT_END = 0xffff804000000000n;
/** L4 slots 256..271 belong to Xen in every 64-bit PV address space. */
export const XEN_L4_FIRST = 256;
export const XEN_L4_LAST = 271;

/** Flat selectors a 64-bit PV guest runs with (Xen's GDT, RPL 3). */
export const FLAT_KERNEL_CS64 = 0xe033;
export const FLAT_KERNEL_DS64 = 0xe02b;
export const FLAT_KERNEL_SS64 = 0xe02b;
export const FLAT_USER_CS64 = 0xe033;
export const FLAT_USER_DS64 = 0xe02b;
export const FLAT_USER_CS32 = 0xe023;
export const FLAT_USER_DS32 = 0xe02b;
/** The first GDT entry Xen reserves: guests may use entries below it (FIRST_RESERVED_GDT_ENTRY). */
export const FIRST_RESERVED_GDT_PAGE = 14;
export const FIRST_RESERVED_GDT_ENTRY = 14 * 512;
