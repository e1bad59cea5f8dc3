/*
 * cpurun: the native "oracle" for differential CPU tests.
 *
 * Executes x86_64 instruction bytes on the real CPU (user mode, Linux x86_64) and
 * reports the outcome. Mirrors the contract of test/harness/case.ts:
 *   CODE  0x100000  4 KiB  (RWX) instruction bytes at offset 0, exits at given offsets
 *   DATA  0x200000  8 KiB  (RW)
 *   STACK 0x300000  4 KiB  (RW)
 * Nothing else below 4 GiB is mapped except the exit trampolines at TRAMP_BASE.
 *
 * Usage: cpurun [timeout_ms]      (default 1000 ms per case)
 * Reads case records from stdin until EOF, writes one outcome record per case to stdout.
 * Exit status 0 on success; 2 on a malformed input (message on stderr).
 *
 * ---------------------------------------------------------------------------------------
 * Record layout (all little-endian, fixed size, no padding between records)
 *
 * Input case record, IN_SIZE = 13216 bytes:
 *   off     size  field
 *   0       4     u32 code_len        0..256
 *   4       4     u32 n_exits         0..4 (0: single exit at code_len)
 *   8       16    u32 exits[4]        code offsets (< 4096); unused entries ignored
 *   24      128   u64 regs[16]        rax rcx rdx rbx rsp rbp rsi rdi r8..r15
 *   152     8     u64 rflags          only CF PF AF ZF SF DF OF (mask 0xCD5) are used; IF is always 1
 *   160     512   fxsave image        loaded with FXRSTOR64 (MXCSR is ANDed with the host MXCSR_MASK)
 *   672     8192  data              initial contents of DATA
 *   8864    4096  stack             initial contents of STACK
 *   12960   256   code              instruction bytes (only code_len used)
 *
 * Output outcome record, OUT_SIZE = 12968 bytes:
 *   0       4     u32 status      0 ok (reached an exit), 1 fault, 2 timeout, 3 syscall (blocked by seccomp)
 *   4       4     u32 vector      exception vector (REG_TRAPNO) for status 1, else 0xFFFFFFFF
 *   8       4     u32 error_code  REG_ERR for vectors that push one (8 10-14 17 21 29 30), else 0
 *   12      4     u32 reserved    0
 *   16      8     u64 fault_addr  CR2 for vector 14, else 0
 *   24      8     u64 rip         exit address (ok); otherwise REG_RIP as the CPU pushed it
 *                                 (faults: the faulting instruction; traps such as int3/#DB:
 *                                 the next instruction)
 *   32      128   u64 regs[16]    after the run, same order as input
 *   160     8     u64 rflags      full RFLAGS after the run (see below)
 *   168     512   fxsave image    after the run (fxsave64 format); the bytes that hold no
 *                                 state are zeroed: 5, 10..15 of each ST slot, 416..511
 *   680     8192  data            DATA after the run
 *   8872    4096  stack           STACK after the run
 *
 * rflags out: on the ok path it's what pushfq gives (bit 1 and IF always set, RF clear);
 * otherwise it's REG_EFL from the signal frame: fault-class exceptions (#DE #UD #GP #PF ...)
 * have RF (bit 16) set, traps (#BP, #DB) don't. Compare under a mask.
 * Note: case.ts's FLAGS_MASK is 0xED5, which includes IF (bit 9, always 1 in user mode);
 * CF PF AF ZF SF DF OF is 0xCD5, the mask applied to the input here.
 *
 * Inherent differences from a bare machine: the run is at CPL 3 (#PF error codes have U=1;
 * the kernel sets P=1 for faults on kernel-half addresses), the host's other mappings
 * (>= 4 GiB, and TRAMP_BASE) are reachable, the code page holds the exit stubs at the exit
 * offsets, and the kernel's #GP/#UD/#DB handling is what Linux reports.
 * ---------------------------------------------------------------------------------------
 *
 * How it works:
 *  - cpurun_enter (asm below) saves the host callee-saved regs and rsp, sets the FS and GS
 *    bases to 0 (so fs:/gs: overrides behave as in a flat machine, and the guest can't clobber
 *    glibc's TLS), XRSTORs an all-init XSAVE image (so AVX/AVX-512 state never leaks from one
 *    case to the next), FXRSTORs the input image, loads rflags and all 16 GPRs (rsp too) and jumps to CODE.
 *  - Each exit offset gets a 5-byte `jmp rel32` to a per-exit trampoline at TRAMP_BASE:
 *        movabs [g_out.rax], rax ; movabs rax, <exit address> ; jmp [rip+0] -> cpurun_exit
 *    None of these touch the flags or need a free register. cpurun_exit stores the other
 *    GPRs, restores the host rsp, pushfq's the flags, fxsave64's the guest FP state, restores
 *    FS, the host FP image (MXCSR / x87 CW) and DF=0, and returns to C.
 *    An exit with fewer than 5 bytes before the next exit (or the page end) gets a single
 *    int3 byte instead; that trap is recognised in the SIGTRAP handler and reported as ok.
 *  - Faults: SIGSEGV/SIGBUS/SIGFPE/SIGILL/SIGTRAP handlers run on a sigaltstack, restore the
 *    host FS base first (raw syscall, no TLS access), read everything from the ucontext
 *    (FP state from the XSAVE signal frame, with components in init state filled in) and
 *    siglongjmp back.
 *  - Timeouts: ITIMER_REAL one-shot per case -> SIGALRM -> status 2.
 *  - A seccomp filter turns any syscall (syscall / int 0x80) issued from the CODE page into
 *    SIGSYS (status 3) instead of running it on the host.
 */
#define _GNU_SOURCE
#include <cpuid.h>
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/time.h>
#include <sys/ucontext.h>
#include <ucontext.h>
#include <unistd.h>
#include <linux/filter.h>
#include <linux/seccomp.h>

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

#define CODE_BASE 0x100000UL
#define CODE_SIZE 0x1000UL
#define DATA_BASE 0x200000UL
#define DATA_SIZE 0x2000UL
#define STACK_BASE 0x300000UL
#define STACK_SIZE 0x1000UL
#define MAX_CODE 256
#define MAX_EXITS 4
#define FX_SIZE 512
/* Must be within +-2 GiB of CODE for jmp rel32; an address a test is unlikely to use. */
#define TRAMP_BASE 0x6ee00000UL
#define TRAMP_SLOT 64

#define IN_SIZE 13216
#define OUT_SIZE 12968

#define ST_OK 0
#define ST_FAULT 1
#define ST_TIMEOUT 2
#define ST_SYSCALL 3

#define SYS_ARCH_PRCTL 158
#define ARCH_SET_FS_ 0x1002
#define ARCH_GET_FS_ 0x1003

/* ---- state shared with the asm ---- */
struct gregs_blk {
  uint64_t regs[16]; /* +0   */
  uint64_t rflags;   /* +128 */
  uint64_t rip;      /* +136 */
};

__attribute__((used, aligned(64))) struct gregs_blk g_in;
__attribute__((used, aligned(64))) struct gregs_blk g_out;
__attribute__((used, aligned(64))) uint8_t g_fx_in[FX_SIZE];
__attribute__((used, aligned(64))) uint8_t g_fx_out[FX_SIZE];
__attribute__((used, aligned(64))) uint8_t g_host_fx[FX_SIZE];
__attribute__((used)) uint64_t g_host_rsp;
__attribute__((used)) uint64_t g_host_fs;
__attribute__((used)) uint64_t g_entry = CODE_BASE;
/* XSAVE area (standard format) with XSTATE_BV = 0, and the XCR0 components to init from it. */
__attribute__((used, aligned(64))) uint8_t g_xinit[4096];
__attribute__((used)) uint64_t g_xmask;

void cpurun_enter(void);
void cpurun_exit(void);

__asm__(
    ".intel_syntax noprefix\n"
    ".text\n"
    ".globl cpurun_enter\n"
    ".type cpurun_enter,@function\n"
    "cpurun_enter:\n"
    "  push rbx\n"
    "  push rbp\n"
    "  push r12\n"
    "  push r13\n"
    "  push r14\n"
    "  push r15\n"
    "  mov qword ptr [rip + g_host_rsp], rsp\n"
    /* FS base := 0 (arch_prctl(ARCH_SET_FS, 0)); clobbers rax rcx rdx rsi rdi r11 */
    "  mov eax, 158\n"
    "  mov edi, 0x1002\n"
    "  xor esi, esi\n"
    "  syscall\n"
    /* GS base := 0 too (the guest may have changed it with wrgsbase) */
    "  mov eax, 158\n"
    "  mov edi, 0x1001\n"
    "  xor esi, esi\n"
    "  syscall\n"
    /* XRSTOR an all-init image: clears AVX/AVX-512 state left by earlier cases */
    "  mov eax, dword ptr [rip + g_xmask]\n"
    "  mov edx, dword ptr [rip + g_xmask + 4]\n"
    "  test eax, eax\n"
    "  jz 1f\n"
    "  xrstor64 [rip + g_xinit]\n"
    "1:\n"
    "  fxrstor64 [rip + g_fx_in]\n"
    "  lea rax, [rip + g_in]\n"
    "  push qword ptr [rax + 128]\n"
    "  popfq\n"
    "  mov rcx, [rax + 8]\n"
    "  mov rdx, [rax + 16]\n"
    "  mov rbx, [rax + 24]\n"
    "  mov rbp, [rax + 40]\n"
    "  mov rsi, [rax + 48]\n"
    "  mov rdi, [rax + 56]\n"
    "  mov r8,  [rax + 64]\n"
    "  mov r9,  [rax + 72]\n"
    "  mov r10, [rax + 80]\n"
    "  mov r11, [rax + 88]\n"
    "  mov r12, [rax + 96]\n"
    "  mov r13, [rax + 104]\n"
    "  mov r14, [rax + 112]\n"
    "  mov r15, [rax + 120]\n"
    "  mov rsp, [rax + 32]\n"
    "  mov rax, [rax]\n"
    "  jmp qword ptr [rip + g_entry]\n"
    ".size cpurun_enter, .-cpurun_enter\n"
    "\n"
    /* Entered from a trampoline: guest rax already stored in g_out.regs[0], rax = exit rip. */
    ".globl cpurun_exit\n"
    ".type cpurun_exit,@function\n"
    "cpurun_exit:\n"
    "  mov qword ptr [rip + g_out + 136], rax\n"
    "  lea rax, [rip + g_out]\n"
    "  mov [rax + 8], rcx\n"
    "  mov [rax + 16], rdx\n"
    "  mov [rax + 24], rbx\n"
    "  mov [rax + 32], rsp\n"
    "  mov [rax + 40], rbp\n"
    "  mov [rax + 48], rsi\n"
    "  mov [rax + 56], rdi\n"
    "  mov [rax + 64], r8\n"
    "  mov [rax + 72], r9\n"
    "  mov [rax + 80], r10\n"
    "  mov [rax + 88], r11\n"
    "  mov [rax + 96], r12\n"
    "  mov [rax + 104], r13\n"
    "  mov [rax + 112], r14\n"
    "  mov [rax + 120], r15\n"
    "  mov rsp, qword ptr [rip + g_host_rsp]\n"
    "  pushfq\n"
    "  pop qword ptr [rax + 128]\n"
    "  fxsave64 [rip + g_fx_out]\n"
    /* FS base := host value */
    "  mov eax, 158\n"
    "  mov edi, 0x1002\n"
    "  mov rsi, qword ptr [rip + g_host_fs]\n"
    "  syscall\n"
    "  fxrstor64 [rip + g_host_fx]\n"
    "  cld\n"
    "  pop r15\n"
    "  pop r14\n"
    "  pop r13\n"
    "  pop r12\n"
    "  pop rbp\n"
    "  pop rbx\n"
    "  ret\n"
    ".size cpurun_exit, .-cpurun_exit\n"
    ".att_syntax prefix\n");

/* ---- C side state ---- */
static sigjmp_buf g_jb;
static volatile sig_atomic_t g_in_guest;
static long g_timeout_us = 1000000;

/* Result of a signal-terminated run (written by the handlers). */
static volatile uint32_t g_sig_status, g_sig_vector, g_sig_err;
static volatile uint64_t g_sig_addr, g_sig_rip;

/* Exits of the current case that were emitted as a single int3 byte. */
static uint64_t g_int3_exit[MAX_EXITS];
static int g_n_int3_exit;
/* Exit address served by each trampoline slot. */
static uint64_t g_tramp_exit[MAX_EXITS];

static uint8_t *g_code = (uint8_t *)CODE_BASE;
static uint8_t *g_tramp = (uint8_t *)TRAMP_BASE;
static uint32_t g_mxcsr_mask = 0xffff;

static inline long raw_syscall2(long nr, long a, long b) {
  long ret;
  __asm__ volatile("syscall" : "=a"(ret) : "0"(nr), "D"(a), "S"(b) : "rcx", "r11", "memory");
  return ret;
}

static inline void fxsave64(void *p) { __asm__ volatile("fxsave64 %0" : "=m"(*(uint8_t(*)[FX_SIZE])p)); }
static inline void fxrstor64(const void *p) {
  __asm__ volatile("fxrstor64 %0" : : "m"(*(const uint8_t(*)[FX_SIZE])p));
}

static void die(const char *msg) {
  fprintf(stderr, "cpurun: %s\n", msg);
  exit(2);
}

static int vector_has_error_code(unsigned v) {
  return v == 8 || (v >= 10 && v <= 14) || v == 17 || v == 21 || v == 29 || v == 30;
}

static const int greg_index[16] = {
    REG_RAX, REG_RCX, REG_RDX, REG_RBX, REG_RSP, REG_RBP, REG_RSI, REG_RDI,
    REG_R8,  REG_R9,  REG_R10, REG_R11, REG_R12, REG_R13, REG_R14, REG_R15,
};

/* Copy the legacy (FXSAVE-format) part of the signal frame's FP state into g_fx_out,
 * filling in components that XSAVE left untouched because they were in init state. */
__attribute__((no_stack_protector)) static void fx_from_ucontext(const ucontext_t *uc) {
  const uint8_t *fp = (const uint8_t *)uc->uc_mcontext.fpregs;
  if (!fp) {
    memcpy(g_fx_out, g_fx_in, FX_SIZE);
    return;
  }
  memcpy(g_fx_out, fp, FX_SIZE);
  uint32_t magic1;
  memcpy(&magic1, fp + 464, 4);
  if (magic1 == 0x46505853u /* FP_XSTATE_MAGIC1 */) {
    uint64_t xstate_bv;
    memcpy(&xstate_bv, fp + 512, 8);
    if (!(xstate_bv & 1)) { /* x87 in init state */
      memset(g_fx_out, 0, 24);
      g_fx_out[0] = 0x7f; /* FCW = 0x037F */
      g_fx_out[1] = 0x03;
      memset(g_fx_out + 32, 0, 128);
    }
    if (!(xstate_bv & 2)) /* SSE (XMM) in init state */
      memset(g_fx_out + 160, 0, 256);
  }
}

__attribute__((no_stack_protector)) static void capture_ucontext(const ucontext_t *uc) {
  const greg_t *g = uc->uc_mcontext.gregs;
  for (int i = 0; i < 16; i++) g_out.regs[i] = (uint64_t)g[greg_index[i]];
  g_out.rflags = (uint64_t)g[REG_EFL];
  fx_from_ucontext(uc);
}

__attribute__((no_stack_protector)) static void on_fault(int sig, siginfo_t *si, void *ucv) {
  /* The guest ran with FS base 0: restore the host TLS before anything touches it. */
  raw_syscall2(SYS_ARCH_PRCTL, ARCH_SET_FS_, (long)g_host_fs);
  ucontext_t *uc = (ucontext_t *)ucv;
  if (!g_in_guest) { /* a genuine crash of the runner itself */
    signal(sig, SIG_DFL);
    return;
  }
  g_in_guest = 0;
  const greg_t *g = uc->uc_mcontext.gregs;
  uint64_t rip = (uint64_t)g[REG_RIP];
  unsigned trapno = (unsigned)g[REG_TRAPNO];
  capture_ucontext(uc);
  g_sig_err = 0;
  g_sig_addr = 0;
  g_sig_rip = rip;
  if (sig == SIGSYS) {
    g_sig_status = ST_SYSCALL;
    g_sig_vector = 0xffffffffu;
  } else {
    g_sig_status = ST_FAULT;
    g_sig_vector = trapno;
    if (vector_has_error_code(trapno)) g_sig_err = (uint32_t)g[REG_ERR];
    if (trapno == 14) g_sig_addr = (uint64_t)g[REG_CR2];
    if (rip >= TRAMP_BASE && rip < TRAMP_BASE + MAX_EXITS * TRAMP_SLOT &&
        (rip - TRAMP_BASE) % TRAMP_SLOT == 0) {
      /* A trap (single-step: the guest set TF on its last instruction) right after the
       * jmp into an exit trampoline: the guest did reach that exit. */
      g_sig_status = ST_OK;
      g_sig_vector = 0xffffffffu;
      g_sig_err = 0;
      g_sig_addr = 0;
      g_sig_rip = g_tramp_exit[(rip - TRAMP_BASE) / TRAMP_SLOT];
    } else if (sig == SIGTRAP && trapno == 3) {
      for (int i = 0; i < g_n_int3_exit; i++)
        if (rip - 1 == g_int3_exit[i]) {
          g_sig_status = ST_OK;
          g_sig_vector = 0xffffffffu;
          g_sig_rip = rip - 1;
          break;
        }
    }
  }
  (void)si;
  siglongjmp(g_jb, 1);
}

__attribute__((no_stack_protector)) static void on_alarm(int sig, siginfo_t *si, void *ucv) {
  (void)sig;
  (void)si;
  uint64_t old_fs = 0;
  raw_syscall2(SYS_ARCH_PRCTL, ARCH_GET_FS_, (long)&old_fs);
  raw_syscall2(SYS_ARCH_PRCTL, ARCH_SET_FS_, (long)g_host_fs);
  ucontext_t *uc = (ucontext_t *)ucv;
  uint64_t rip = (uint64_t)uc->uc_mcontext.gregs[REG_RIP];
  if (!g_in_guest) return; /* the case already finished */
  if (rip < CODE_BASE || rip >= CODE_BASE + CODE_SIZE) {
    /* Caught in the runner's own entry/exit code: try again shortly. */
    struct itimerval it = {{0, 0}, {0, 10000}};
    setitimer(ITIMER_REAL, &it, NULL);
    raw_syscall2(SYS_ARCH_PRCTL, ARCH_SET_FS_, (long)old_fs);
    return;
  }
  g_in_guest = 0;
  capture_ucontext(uc);
  g_sig_status = ST_TIMEOUT;
  g_sig_vector = 0xffffffffu;
  g_sig_err = 0;
  g_sig_addr = 0;
  g_sig_rip = rip;
  siglongjmp(g_jb, 1);
}

static void install_handlers(void) {
  static uint8_t altstack[256 * 1024] __attribute__((aligned(64)));
  stack_t ss = {.ss_sp = altstack, .ss_size = sizeof altstack, .ss_flags = 0};
  if (sigaltstack(&ss, NULL) != 0) die("sigaltstack failed");
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_fault;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sigfillset(&sa.sa_mask);
  const int sigs[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS};
  for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
    if (sigaction(sigs[i], &sa, NULL) != 0) die("sigaction failed");
  sa.sa_sigaction = on_alarm;
  if (sigaction(SIGALRM, &sa, NULL) != 0) die("sigaction(SIGALRM) failed");
}

/* Syscalls whose (return) address lies in the CODE page raise SIGSYS instead of running. */
static void install_seccomp(void) {
  struct sock_filter f[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, instruction_pointer) + 4),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 4),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, instruction_pointer)),
      BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, (uint32_t)CODE_BASE, 0, 2),
      BPF_JUMP(BPF_JMP | BPF_JGT | BPF_K, (uint32_t)(CODE_BASE + CODE_SIZE), 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRAP),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  struct sock_fprog prog = {.len = sizeof f / sizeof f[0], .filter = f};
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
      prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0)
    fprintf(stderr, "cpurun: warning: seccomp filter not installed (%s); guest syscalls will run\n",
            strerror(errno));
}

static void map_fixed(unsigned long addr, unsigned long size, int prot) {
  void *p = mmap((void *)addr, size, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  if (p != (void *)addr) {
    fprintf(stderr, "cpurun: cannot map %#lx (+%#lx): %s\n", addr, size,
            p == MAP_FAILED ? strerror(errno) : "placed elsewhere");
    exit(2);
  }
}

static inline uint32_t rd32(const uint8_t *p) {
  uint32_t v;
  memcpy(&v, p, 4);
  return v;
}
static inline uint64_t rd64(const uint8_t *p) {
  uint64_t v;
  memcpy(&v, p, 8);
  return v;
}
static inline void wr32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static inline void wr64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }

/* Zero the fields of an FXSAVE image that carry no architectural state. */
static void normalize_fx(uint8_t *fx) {
  fx[5] = 0;
  for (int i = 0; i < 8; i++) memset(fx + 32 + 16 * i + 10, 0, 6);
  memset(fx + 416, 0, FX_SIZE - 416);
}

/* Write the per-exit trampoline for exit address `exit_addr` into slot i, return its address. */
static uint64_t write_trampoline(int i, uint64_t exit_addr) {
  uint8_t *t = g_tramp + i * TRAMP_SLOT;
  uint8_t *p = t;
  g_tramp_exit[i] = exit_addr;
  *p++ = 0x48; *p++ = 0xA3; wr64(p, (uint64_t)&g_out.regs[0]); p += 8; /* movabs [g_out.rax], rax */
  *p++ = 0x48; *p++ = 0xB8; wr64(p, exit_addr); p += 8;                 /* movabs rax, exit_addr */
  *p++ = 0xFF; *p++ = 0x25; wr32(p, 0); p += 4;                         /* jmp [rip+0] */
  wr64(p, (uint64_t)(uintptr_t)&cpurun_exit);
  return (uint64_t)(uintptr_t)t;
}

static void run_case(const uint8_t *in, uint8_t *out) {
  uint32_t code_len = rd32(in + 0);
  uint32_t n_exits = rd32(in + 4);
  if (code_len > MAX_CODE) die("code_len > 256");
  if (n_exits > MAX_EXITS) die("n_exits > 4");
  uint32_t exits[MAX_EXITS];
  int ne = 0;
  if (n_exits == 0) exits[ne++] = code_len;
  for (uint32_t i = 0; i < n_exits; i++) {
    uint32_t e = rd32(in + 8 + 4 * i);
    if (e >= CODE_SIZE) die("exit offset >= 4096");
    int dup = 0;
    for (int j = 0; j < ne; j++) dup |= exits[j] == e;
    if (!dup) exits[ne++] = e;
  }
  for (int i = 0; i + 1 < ne; i++) /* sort ascending */
    for (int j = i + 1; j < ne; j++)
      if (exits[j] < exits[i]) {
        uint32_t t = exits[i];
        exits[i] = exits[j];
        exits[j] = t;
      }

  for (int i = 0; i < 16; i++) g_in.regs[i] = rd64(in + 24 + 8 * i);
  /* CF PF AF ZF SF DF OF = 0xCD5 (case.ts's FLAGS_MASK 0xED5 also has bit 9, IF: always 1 here). */
  g_in.rflags = (rd64(in + 152) & 0xCD5) | 0x202;
  memcpy(g_fx_in, in + 160, FX_SIZE);
  wr32(g_fx_in + 24, rd32(g_fx_in + 24) & g_mxcsr_mask);
  memcpy((void *)DATA_BASE, in + 672, DATA_SIZE);
  memcpy((void *)STACK_BASE, in + 8864, STACK_SIZE);
  memset(g_code, 0, CODE_SIZE);
  memcpy(g_code, in + 12960, code_len);

  g_n_int3_exit = 0;
  for (int i = 0; i < ne; i++) {
    uint32_t e = exits[i];
    uint32_t room = (i + 1 < ne ? exits[i + 1] : CODE_SIZE) - e;
    uint64_t addr = CODE_BASE + e;
    if (room >= 5) {
      uint64_t t = write_trampoline(i, addr);
      g_code[e] = 0xE9;
      wr32(g_code + e + 1, (uint32_t)(int32_t)(int64_t)(t - (addr + 5)));
    } else {
      g_code[e] = 0xCC;
      g_int3_exit[g_n_int3_exit++] = addr;
    }
  }

  memset(&g_out, 0, sizeof g_out);
  memset(g_fx_out, 0, FX_SIZE);
  uint32_t status, vector, err;
  uint64_t addr, rip;
  struct itimerval it = {{0, 0}, {g_timeout_us / 1000000, g_timeout_us % 1000000}};
  struct itimerval off = {{0, 0}, {0, 0}};

  if (sigsetjmp(g_jb, 1) == 0) {
    setitimer(ITIMER_REAL, &it, NULL);
    g_in_guest = 1;
    cpurun_enter();
    g_in_guest = 0;
    setitimer(ITIMER_REAL, &off, NULL);
    status = ST_OK;
    vector = 0xffffffffu;
    err = 0;
    addr = 0;
    rip = g_out.rip;
  } else {
    /* Came back from a signal handler (FS already restored there). */
    g_in_guest = 0;
    setitimer(ITIMER_REAL, &off, NULL);
    fxrstor64(g_host_fx);
    __asm__ volatile("cld" ::: "memory");
    status = g_sig_status;
    vector = g_sig_vector;
    err = g_sig_err;
    addr = g_sig_addr;
    rip = g_sig_rip;
  }

  normalize_fx(g_fx_out);
  memset(out, 0, OUT_SIZE);
  wr32(out + 0, status);
  wr32(out + 4, vector);
  wr32(out + 8, err);
  wr64(out + 16, addr);
  wr64(out + 24, rip);
  for (int i = 0; i < 16; i++) wr64(out + 32 + 8 * i, g_out.regs[i]);
  wr64(out + 160, g_out.rflags);
  memcpy(out + 168, g_fx_out, FX_SIZE);
  memcpy(out + 680, (void *)DATA_BASE, DATA_SIZE);
  memcpy(out + 8872, (void *)STACK_BASE, STACK_SIZE);
}

static size_t read_full(uint8_t *buf, size_t n) {
  size_t got = 0;
  while (got < n) {
    ssize_t r = read(0, buf + got, n - got);
    if (r < 0) {
      if (errno == EINTR) continue;
      die("read error");
    }
    if (r == 0) break;
    got += (size_t)r;
  }
  return got;
}

static void write_full(const uint8_t *buf, size_t n) {
  while (n > 0) {
    ssize_t w = write(1, buf, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      die("write error");
    }
    buf += w;
    n -= (size_t)w;
  }
}

int main(int argc, char **argv) {
  if (argc > 1) {
    long ms = strtol(argv[1], NULL, 10);
    if (ms > 0) g_timeout_us = ms * 1000;
  }
  if (raw_syscall2(SYS_ARCH_PRCTL, ARCH_GET_FS_, (long)&g_host_fs) != 0) die("arch_prctl(ARCH_GET_FS)");

  /* Host FP image with the ABI defaults (x87 CW 0x37F, MXCSR 0x1F80). */
  __asm__ volatile("fninit" ::: "memory");
  uint32_t mxcsr = 0x1f80;
  __asm__ volatile("ldmxcsr %0" : : "m"(mxcsr));
  memset(g_host_fx, 0, FX_SIZE);
  fxsave64(g_host_fx);
  g_mxcsr_mask = rd32(g_host_fx + 28);
  if (g_mxcsr_mask == 0) g_mxcsr_mask = 0xffbf;

  /* All user XSAVE components except PKRU (keep the host's protection keys). */
  unsigned a, b, c, d;
  if (__get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 27)) /* OSXSAVE */) {
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    g_xmask = (((uint64_t)hi << 32) | lo) & ~(1ull << 9);
    wr32(g_xinit + 24, 0x1f80); /* MXCSR (loaded whenever SSE or AVX is restored) */
  }

  map_fixed(CODE_BASE, CODE_SIZE, PROT_READ | PROT_WRITE | PROT_EXEC);
  map_fixed(DATA_BASE, DATA_SIZE, PROT_READ | PROT_WRITE);
  map_fixed(STACK_BASE, STACK_SIZE, PROT_READ | PROT_WRITE);
  map_fixed(TRAMP_BASE, 0x1000, PROT_READ | PROT_WRITE | PROT_EXEC);

  install_handlers();
  install_seccomp();

  static uint8_t in[IN_SIZE], out[OUT_SIZE];
  /* Outcomes are buffered so that the pipe is written in large chunks. */
  size_t cap = 64, used = 0;
  uint8_t *obuf = malloc(cap * OUT_SIZE);
  if (!obuf) die("out of memory");
  for (;;) {
    size_t got = read_full(in, IN_SIZE);
    if (got == 0) break;
    if (got != IN_SIZE) die("truncated case record");
    run_case(in, out);
    memcpy(obuf + used * OUT_SIZE, out, OUT_SIZE);
    if (++used == cap) {
      write_full(obuf, used * OUT_SIZE);
      used = 0;
    }
  }
  write_full(obuf, used * OUT_SIZE);
  free(obuf);
  return 0;
}
