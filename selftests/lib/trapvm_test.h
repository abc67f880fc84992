/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A small library for in-test-host tests of trapvm, in the style of KVM's
 * selftests: create a VM with RAM, build the guest's own 4-level page
 * tables, GDT, IDT and TSS, run guest code that is compiled into the test
 * binary, and let that code report back through "ucalls".
 *
 * Guest code: the whole test executable (every PT_LOAD segment) is copied
 * into guest RAM and mapped at the same virtual addresses it has in the
 * test process, so a guest function is called by its C name and guest
 * globals are the test's globals (a copy: tvm_sync_to_guest() and
 * tvm_sync_from_guest() move values).  Guest code must not call libc
 * (build with -fno-stack-protector -mno-red-zone
 * -fno-tree-loop-distribute-patterns, see TVM_GUEST_CFLAGS in the
 * Makefile).
 *
 * Guest-physical layout (identity mapped, VA == PA, below 2 MiB):
 *
 *   0x1000 GDT   0x2000 IDT   0x3000 TSS   0x4000 ucall block
 *   0x10000-0xfffff page-table pages
 *   0x120000-0x140000 kernel stack      0x140000-0x160000 TSS.RSP0 stack
 *   0x160000-0x17c000 IST1..7 stacks     0x1c0000-0x1f0000 user stack
 *   0x200000- the executable's image, then free pages (tvm_alloc()).
 *
 * More vCPUs (vcpus.c): tvm_vcpu_add() creates one with vCPU 0's
 * registers, tvm_vcpu_enter() starts a guest function on a stack of the
 * test's choosing, tvm_vcpu_run() runs until the guest OUTs a 32-bit code
 * to the vCPU's port, tvm_vcpus_run() does that on a thread per vCPU.
 */
#ifndef SELFTESTS_TRAPVM_TEST_H
#define SELFTESTS_TRAPVM_TEST_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <linux/trapvm.h>

#define TVM_MiB			(1024ULL * 1024)
#define TVM_MEM_DEFAULT		(16 * TVM_MiB)

#define TVM_GDT_GPA		0x1000ULL
#define TVM_IDT_GPA		0x2000ULL
#define TVM_TSS_GPA		0x3000ULL
#define TVM_UCALL_GPA		0x4000ULL
#define TVM_PT_GPA		0x10000ULL
#define TVM_PT_END		0x100000ULL
#define TVM_STACK_TOP		0x140000ULL
#define TVM_RSP0_TOP		0x160000ULL
#define TVM_IST_TOP(n)		(0x160000ULL + (n) * 0x4000ULL)	/* 1..7 */
#define TVM_USTACK_TOP		0x1f0000ULL
#define TVM_IDMAP_END		0x200000ULL
#define TVM_IMAGE_GPA		0x200000ULL

/* GDT selectors (Linux's layout, as the guest ABI has it). */
#define TVM_KCS			0x10
#define TVM_KDS			0x18
#define TVM_UCS32		0x23
#define TVM_UDS			0x2b
#define TVM_UCS			0x33
#define TVM_TSS_SEL		0x40
#define TVM_SPARE_SEL		0x50	/* free GDT slots from here */

/* Page-table entry bits. */
#define PTE_P			(1ULL << 0)
#define PTE_W			(1ULL << 1)
#define PTE_U			(1ULL << 2)
#define PTE_PS			(1ULL << 7)
#define PTE_NX			(1ULL << 63)
#define PTE_ADDR		0x000ffffffffff000ULL

/* Gate types. */
#define GATE_INTR		0xe
#define GATE_TRAP		0xf

/* Exception vectors. */
#define DE_VECTOR	0
#define DB_VECTOR	1
#define BP_VECTOR	3
#define UD_VECTOR	6
#define NM_VECTOR	7
#define DF_VECTOR	8
#define TS_VECTOR	10
#define NP_VECTOR	11
#define SS_VECTOR	12
#define GP_VECTOR	13
#define PF_VECTOR	14

#define X86_EFLAGS_CF	(1ULL << 0)
#define X86_EFLAGS_TF	(1ULL << 8)
#define X86_EFLAGS_IF	(1ULL << 9)
#define X86_EFLAGS_DF	(1ULL << 10)
#define X86_EFLAGS_AC	(1ULL << 18)

/* Vector the library uses to come back from guest user mode. */
#define TVM_USER_RETURN_VECTOR	0x81

/* ---- ucalls: guest -> test ---- */

#define TVM_UCALL_PORT		0x5cc

enum {
	UCALL_NONE,
	UCALL_SYNC,
	UCALL_DONE,
	UCALL_ABORT,		/* GUEST_ASSERT failed */
	UCALL_UNHANDLED,	/* exception without handler or fixup */
};

struct ucall {
	uint64_t cmd;
	uint64_t line;
	const char *file;	/* pointers into the (shared) image */
	const char *text;
	uint64_t args[4];
};

/* ---- guest side ---- */

/* The frame the library's exception stubs build (lowest address first). */
struct ex_regs {
	uint64_t r15, r14, r13, r12, r11, r10, r9, r8;
	uint64_t rdi, rsi, rbp, rbx, rdx, rcx, rax;
	uint64_t vector, error_code;
	uint64_t rip, cs, rflags, rsp, ss;	/* pushed by the CPU */
};

/* What the last exception caught by a fixup looked like. */
struct guest_ex {
	uint64_t vector, error_code, rip, cs, rflags, rsp, ss, cr2;
	uint64_t frame;		/* address of the CPU-pushed frame (rip) */
};

typedef void (*guest_handler_t)(struct ex_regs *regs);

extern volatile uint64_t guest_ex_fixup;
extern volatile uint64_t guest_ex_insn;
extern volatile struct guest_ex guest_last_ex;
extern guest_handler_t guest_handlers[256];
extern const unsigned char guest_idt_stubs[];	/* 16 bytes per vector */

void guest_ucall(uint64_t cmd, const char *file, uint64_t line,
		 const char *text, uint64_t a0, uint64_t a1, uint64_t a2,
		 uint64_t a3);
/*
 * Fill the ucall block only; the caller exits with OUT to TVM_UCALL_PORT
 * (EAX = TVM_UCALL_GPA) itself, for tests that need the exit to follow
 * some instruction with no memory access in between.
 */
void guest_ucall_fill(uint64_t cmd, const char *file, uint64_t line,
		      const char *text, uint64_t a0, uint64_t a1, uint64_t a2,
		      uint64_t a3);
void guest_set_gate(unsigned int vector, uint64_t handler, unsigned int type,
		    unsigned int dpl, unsigned int ist, bool present);
void guest_set_stub_gate(unsigned int vector, unsigned int type,
			 unsigned int dpl, unsigned int ist);
uint64_t guest_read_vif(void);
uint64_t guest_run_user(void *fn, uint64_t arg, uint64_t rflags);
uint64_t guest_rdmsr(uint32_t msr);
void guest_wrmsr(uint32_t msr, uint64_t val);
void guest_x2apic_enable(void);
uint64_t guest_rdtsc(void);

/* Report @code to tvm_vcpu_run() on @port (see "vCPUs" below). */
static inline void guest_report(uint16_t port, uint32_t code)
{
	asm volatile("outl %0, %w1" : : "a"(code), "Nd"(port) : "memory");
}

#define GUEST_SYNC(x) \
	guest_ucall(UCALL_SYNC, __FILE__, __LINE__, NULL, (x), 0, 0, 0)
#define GUEST_DONE() \
	guest_ucall(UCALL_DONE, __FILE__, __LINE__, NULL, 0, 0, 0, 0)
#define GUEST_ASSERT(c) do {						\
	if (!(c))							\
		guest_ucall(UCALL_ABORT, __FILE__, __LINE__, #c,	\
			    0, 0, 0, 0);				\
} while (0)
#define GUEST_ASSERT_EQ(a, b) do {					\
	uint64_t __a = (uint64_t)(a), __b = (uint64_t)(b);		\
	if (__a != __b)							\
		guest_ucall(UCALL_ABORT, __FILE__, __LINE__,		\
			    #a " == " #b, __a, __b, 1, 0);		\
} while (0)
/* a, b plus a third value to show (e.g. a loop index). */
#define GUEST_ASSERT_EQ_X(a, b, x) do {					\
	uint64_t __a = (uint64_t)(a), __b = (uint64_t)(b);		\
	if (__a != __b)							\
		guest_ucall(UCALL_ABORT, __FILE__, __LINE__,		\
			    #a " == " #b, __a, __b, 2, (uint64_t)(x));	\
} while (0)

/*
 * Run one instruction sequence "safely": an exception in it is recorded
 * in guest_last_ex and execution continues after the sequence.  Use as
 *
 *	asm volatile(ASM_SAFE("wrmsr") : ASM_SAFE_OUT : "c"(msr), ...
 *		     : ASM_SAFE_CLOBBERS);
 *
 * then guest_last_ex.vector is the vector (0xff: no exception) and
 * guest_ex_insn the address of the first instruction of the sequence.
 * The sequence must not use %r11 (it holds the fixup address briefly).
 */
#define ASM_SAFE(insn)							\
	"movq $0xff, %[__vec]\n\t"					\
	"leaq 1f(%%rip), %%r11\n\t"					\
	"movq %%r11, %[__fix]\n\t"					\
	"leaq 2f(%%rip), %%r11\n\t"					\
	"movq %%r11, %[__at]\n\t"					\
	"2: " insn "\n\t"						\
	"1: movq $0, %[__fix]\n\t"
#define ASM_SAFE_OUT							\
	[__fix] "=m"(guest_ex_fixup), [__at] "=m"(guest_ex_insn),	\
	[__vec] "=m"(guest_last_ex.vector)
#define ASM_SAFE_CLOBBERS	"r11", "memory", "cc"

/* Assert the last ASM_SAFE sequence raised vector/err at its first insn. */
#define GUEST_ASSERT_EX(vec, err) do {					\
	GUEST_ASSERT_EQ(guest_last_ex.vector, (vec));			\
	GUEST_ASSERT_EQ(guest_last_ex.error_code, (err));		\
	GUEST_ASSERT_EQ(guest_last_ex.rip, guest_ex_insn);		\
} while (0)
#define GUEST_ASSERT_NO_EX()						\
	GUEST_ASSERT_EQ(guest_last_ex.vector, 0xff)

/* ---- test (host) side ---- */

struct tvm {
	int dev, vm, vcpu;
	uint8_t *ram;
	uint64_t mem_size;
	struct trapvm_run *run;
	long run_size;
	uint64_t next_pt;	/* page-table page allocator */
	uint64_t next_free;	/* tvm_alloc() */
	char desc[512];		/* tvm_describe() */
};

struct tvm *tvm_create(uint64_t mem_size);
void tvm_free(struct tvm *vm);
void *tvm_gpa(struct tvm *vm, uint64_t gpa);
void *tvm_gva(struct tvm *vm, uint64_t gva);	/* NULL: not mapped */
uint64_t *tvm_pte(struct tvm *vm, uint64_t gva, bool alloc);
void tvm_map(struct tvm *vm, uint64_t gva, uint64_t gpa, uint64_t flags);
uint64_t tvm_alloc(struct tvm *vm, uint64_t npages);
void tvm_set_gdt_entry(struct tvm *vm, unsigned int sel, uint64_t desc);
void tvm_set_gate(struct tvm *vm, unsigned int vector, uint64_t handler,
		  unsigned int type, unsigned int dpl, unsigned int ist,
		  bool present);
uint64_t tvm_seg_desc(uint32_t base, uint32_t limit, unsigned int type,
		      unsigned int s, unsigned int dpl, unsigned int p,
		      unsigned int l, unsigned int db, unsigned int g);
void tvm_enter(struct tvm *vm, void *fn, uint64_t arg);
int tvm_run(struct tvm *vm);
uint64_t tvm_get_ucall(struct tvm *vm, struct ucall *uc);
uint64_t tvm_run_ucall(struct tvm *vm, struct ucall *uc);
const char *tvm_describe(struct tvm *vm, struct ucall *uc);
int tvm_set_msr(struct tvm *vm, uint32_t index, uint64_t data);
uint64_t tvm_tsc_khz(struct tvm *vm);
uint64_t tvm_now_ns(void);
/* The environment variable @name as a number (strtoull base 0), or @def if unset or empty. */
uint64_t tvm_env_u64(const char *name, uint64_t def);
/*
 * The host's kernel log: no splat and no trapvm vCPU diagnostic since
 * @mark (a sequence number from tvm_host_log_mark()), or, for
 * tvm_host_clean(), since this process (= this kselftest test) first
 * called tvm_create().  @why gets the first bad record.
 */
long long tvm_host_log_mark(void);
bool tvm_host_clean_since(long long mark, char *why, size_t len);
bool tvm_host_clean(char *why, size_t len);

/*
 * ---- vCPUs: several per VM, each on a thread of its own ----
 *
 * A struct tvm_vcpu is vCPU 0 (tvm_vcpu0(), owned by the struct tvm) or
 * one more (tvm_vcpu_add(), id = its APIC ID; tvm_vcpu_close() before
 * tvm_free()).  Guest code on it reports with "outl %eax, %dx" to @port;
 * tvm_vcpu_run() returns 0 with that value in ->code, or a negative errno
 * with ->why saying what else happened.  RUN interrupted by a signal is
 * restarted unless ->stop_on_eintr.  Guest functions get @arg in %rdi
 * and a stack below @stack_top; vCPUs that run at the same time need
 * stacks of their own (e.g. parts of the kernel stack below
 * TVM_STACK_TOP), and they share the IDT's RSP0 and IST stacks.
 */
struct tvm_vcpu {
	struct tvm *vm;
	int id, fd;
	struct trapvm_run *run;
	long run_size;		/* 0: vCPU 0 */
	uint16_t port;
	bool stop_on_eintr;	/* set before the vCPU's thread starts */
	/* what the last tvm_vcpu_run() (or its thread) gave */
	int ret;
	uint64_t code;
	char why[256];
};

void tvm_vcpu0(struct tvm *vm, struct tvm_vcpu *v, uint16_t port);
int tvm_vcpu_add(struct tvm *vm, int id, struct tvm_vcpu *v, uint16_t port);
void tvm_vcpu_close(struct tvm_vcpu *v);
int tvm_vcpu_enter(struct tvm_vcpu *v, void *fn, uint64_t arg,
		   uint64_t stack_top);
int tvm_vcpu_run(struct tvm_vcpu *v);
/* pthread body: ->ret = tvm_vcpu_run(arg) */
void *tvm_vcpu_thread(void *arg);
/* v[0..n-1] each on a thread, all joined: 0, or pthread_create's error */
int tvm_vcpus_run(struct tvm_vcpu *v, int n);
/* One counter (TRAPVM_STAT_*) of TRAPVM_GET_STATS; ~0 on error. */
uint64_t tvm_vcpu_stat(struct tvm_vcpu *v, unsigned int counter);

#define tvm_sync_to_guest(vm, g) \
	memcpy(tvm_gva(vm, (uint64_t)&(g)), (const void *)&(g), sizeof(g))
#define tvm_sync_from_guest(vm, g) \
	memcpy((void *)&(g), tvm_gva(vm, (uint64_t)&(g)), sizeof(g))

/* In a kselftest TEST: run until a ucall and require cmd. */
#define TVM_RUN_EXPECT(vm, uc, cmd)					\
	ASSERT_EQ((uint64_t)(cmd), tvm_run_ucall(vm, uc))		\
		TH_LOG("%s", tvm_describe(vm, uc))
#define TVM_RUN_DONE(vm) do {						\
	struct ucall __uc;						\
	TVM_RUN_EXPECT(vm, &__uc, UCALL_DONE);				\
} while (0)

#endif /* SELFTESTS_TRAPVM_TEST_H */
