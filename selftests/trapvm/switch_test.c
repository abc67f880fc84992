// SPDX-License-Identifier: GPL-2.0
/*
 * switch_test: the world switch.  Guest code from this binary runs at
 * hardware CPL3 under trapvm and every exit comes back as the hardware
 * reported it (the module parameter raw_exits makes RUN return
 * TRAPVM_EXIT_DEBUG with vector, error code, CR2 and RIP).
 *
 * Oracles: the Intel SDM (which instructions fault at CPL3 with IOPL 0
 * and UMIP, with which error codes; #PF error-code bits; SYSCALL's RCX
 * and R11; the XSAVE init state), and values this test itself put into
 * registers and memory.  Nothing is compared with the module's own idea
 * of what should happen.
 *
 * Runs as root inside the test host with trapvm.ko loaded:
 *   tools/testhost/run -- selftests/trapvm/switch_test
 * SWITCH_TEST_EXITS=n sets the number of round trips of the exit storms
 * (default: 1000000 handled in the module, 100000 through userspace);
 * SWITCH_TEST_NMIS=n the size of the NMI storm (default 2000).
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <linux/perf_event.h>
#include <linux/hw_breakpoint.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include <linux/trapvm.h>
#include <linux/trapvm_stats.h>
#include <linux/trapvm_guest.h>

#include "kselftest_harness.h"

#ifndef ARRAY_SIZE
#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))
#endif

#define DEV		"/dev/trapvm"
#define RAW_PARAM	"/sys/module/trapvm/parameters/raw_exits"
#define MiB		(1024ULL * 1024)
#define GUEST_MEM	(4 * MiB)
#define CODE_GPA	0x1000ULL
#define STACK_GPA	0x100000ULL

#define GP_VECTOR	13
#define PF_VECTOR	14
#define UD_VECTOR	6
#define SYSCALL_VECTOR	256	/* TRAPVM_EXIT_DEBUG's SYSCALL */

/* #PF error code bits (SDM Vol. 3, 4.7). */
#define PF_P		(1u << 0)
#define PF_W		(1u << 1)
#define PF_U		(1u << 2)
#define PF_I		(1u << 4)

#define RFLAGS_CF	(1ULL << 0)
#define RFLAGS_IF	(1ULL << 9)

/* Guest code blobs: position independent, copied to CODE_GPA. */
#include "guest_code.h"

GUEST_CODE(g_hlt, "hlt");
GUEST_CODE(g_out, "outb %al, $0x80");
GUEST_CODE(g_in, "inb $0x80, %al");
GUEST_CODE(g_cli, "cli");
GUEST_CODE(g_sti, "sti");
GUEST_CODE(g_mov_cr3, "mov %rax, %cr3");
GUEST_CODE(g_mov_from_cr0, "mov %cr0, %rax");
GUEST_CODE(g_sgdt, "sgdt -16(%rsp)");
GUEST_CODE(g_sidt, "sidt -16(%rsp)");
GUEST_CODE(g_str, "str %ax");
GUEST_CODE(g_lgdt, "lgdt -16(%rsp)");
GUEST_CODE(g_wrmsr, "wrmsr");
GUEST_CODE(g_rdmsr, "rdmsr");
GUEST_CODE(g_invlpg, "invlpg (%rax)");
GUEST_CODE(g_swapgs, "swapgs");
GUEST_CODE(g_sysret, "sysretq");
GUEST_CODE(g_iretq_k, "pushq $0x18; pushq %rsp; pushfq; pushq $0x10; "
	   "pushq %rax; iretq");
/* REX.W FF /5: ljmp *(%rax), m16:64 */
GUEST_CODE(g_ljmp_k, ".byte 0x48, 0xff, 0x28");
GUEST_CODE(g_int3, "int3");
GUEST_CODE(g_int80, "int $0x80");
GUEST_CODE(g_syscall, "syscall");
GUEST_CODE(g_ud2, "ud2");
GUEST_CODE(g_vmcall, "vmcall");
GUEST_CODE(g_load, "mov (%rax), %rbx");
GUEST_CODE(g_store, "mov %rbx, (%rax)");
GUEST_CODE(g_call, "call *%rax");
GUEST_CODE(g_spin, "1: jmp 1b");
GUEST_CODE(g_sysloop, "1: syscall; jmp 1b");
GUEST_CODE(g_regs,
	   "add $1, %rax; add $2, %rcx; add $3, %rdx; add $4, %rbx; "
	   "sub $8, %rsp; add $6, %rbp; add $7, %rsi; add $8, %rdi; "
	   "add $9, %r8; add $10, %r9; add $11, %r10; add $12, %r11; "
	   "add $13, %r12; add $14, %r13; add $15, %r14; add $16, %r15; "
	   "stc; std; hlt");
GUEST_CODE(g_xmm_set, "movq %rax, %xmm0; movq %rbx, %xmm15; hlt");
GUEST_CODE(g_xmm_get, "movq %xmm0, %rcx; movq %xmm15, %rdx; hlt");
GUEST_CODE(g_xmm_init,
	   "movq %xmm0, %rax; movq %xmm7, %rbx; movq %xmm15, %rcx; "
	   "stmxcsr -8(%rsp); movl -8(%rsp), %edx; "
	   "fnstcw -16(%rsp); movzwl -16(%rsp), %esi; hlt");
GUEST_CODE(g_touch,
	   "1: movb %bl, (%rax); add $4096, %rax; cmp %rcx, %rax; jb 1b; hlt");
GUEST_CODE(g_cli_loop, "1: cli; dec %rcx; jnz 1b; hlt");
GUEST_CODE(g_fsgs, "mov %fs:0, %rax; mov %gs:8, %rbx; hlt");

static int raw_param(const char *val)
{
	int fd = open(RAW_PARAM, O_WRONLY);
	int ret;

	if (fd < 0)
		return -1;
	ret = write(fd, val, strlen(val)) == (ssize_t)strlen(val) ? 0 : -1;
	close(fd);
	return ret;
}

/* FIXTURE_DATA(vm), spelled so that checkpatch sees a type. */
#define vm_fixture _test_data_vm

FIXTURE(vm) {
	int dev, vm, vcpu;
	unsigned char *ram;
	struct trapvm_run *run;
	long run_size;
};

/*
 * The guest's own page tables: identity map of all RAM with 2 MiB pages,
 * user-accessible (so the guest's virtual CPL does not matter), and
 * 64-bit mode at virtual CPL0 (the state vmctl's loader gives a kernel).
 */
#define PT_P		(1ULL << 0)
#define PT_RW		(1ULL << 1)
#define PT_US		(1ULL << 2)
#define PT_PS		(1ULL << 7)
#define PML4_GPA	0x10000ULL

static void guest_long_mode(struct __test_metadata *_metadata,
			    struct vm_fixture *self)
{
	uint64_t *pml4 = (uint64_t *)(self->ram + PML4_GPA);
	uint64_t *pdpt = pml4 + 512, *pd = pml4 + 1024;
	struct trapvm_segment code = {
		.limit = 0xffffffff, .selector = TRAPVM_GUEST_KERNEL_CS,
		.type = 0xb, .present = 1, .s = 1, .l = 1, .g = 1,
	};
	struct trapvm_segment data = code;
	struct trapvm_sregs sr;
	uint64_t a;

	pml4[0] = (PML4_GPA + 0x1000) | PT_P | PT_RW | PT_US;
	pdpt[0] = (PML4_GPA + 0x2000) | PT_P | PT_RW | PT_US;
	for (a = 0; a < GUEST_MEM; a += 2 * MiB)
		pd[a >> 21] = a | PT_P | PT_RW | PT_US | PT_PS;

	data.selector = TRAPVM_GUEST_KERNEL_DS;
	data.type = 0x3;
	data.l = 0;
	data.db = 1;
	ASSERT_EQ(0, ioctl(self->vcpu, TRAPVM_GET_SREGS, &sr));
	sr.cs = code;
	sr.ds = sr.es = sr.ss = data;
	sr.fs = sr.gs = data;
	sr.fs.selector = sr.gs.selector = 0;
	sr.tr.type = 0xb;
	sr.tr.present = 1;
	sr.tr.limit = 0x67;
	sr.ldt.unusable = 1;
	sr.cr0 = 0x80010031ULL;		/* PG | WP | NE | ET | PE */
	sr.cr3 = PML4_GPA;
	sr.cr4 = 1ULL << 5;		/* PAE */
	sr.efer = (1ULL << 0) | (1ULL << 8) | (1ULL << 10) | (1ULL << 11);
	sr.cpl = 0;
	ASSERT_EQ(0, ioctl(self->vcpu, TRAPVM_SET_SREGS, &sr))
		TH_LOG("SET_SREGS: %s", strerror(errno));
}

static void vm_create(struct __test_metadata *_metadata,
		      struct vm_fixture *self)
{
	struct trapvm_memory mem = { .size = GUEST_MEM };

	self->dev = open(DEV, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, self->dev) TH_LOG("open %s: %s", DEV, strerror(errno));
	self->vm = ioctl(self->dev, TRAPVM_CREATE_VM, 0);
	ASSERT_LE(0, self->vm);
	ASSERT_EQ(0, ioctl(self->vm, TRAPVM_SET_MEMORY, &mem));
	self->vcpu = ioctl(self->vm, TRAPVM_CREATE_VCPU, 0);
	ASSERT_LE(0, self->vcpu);
	self->ram = mmap(NULL, GUEST_MEM, PROT_READ | PROT_WRITE, MAP_SHARED,
			 self->vm, 0);
	ASSERT_NE(MAP_FAILED, self->ram);
	self->run_size = ioctl(self->dev, TRAPVM_GET_VCPU_MMAP_SIZE, 0);
	ASSERT_LT(0, self->run_size);
	self->run = mmap(NULL, self->run_size, PROT_READ | PROT_WRITE,
			 MAP_SHARED, self->vcpu, 0);
	ASSERT_NE(MAP_FAILED, self->run);
	guest_long_mode(_metadata, self);
}

FIXTURE_SETUP(vm)
{
	ASSERT_EQ(0, raw_param("1"))
		TH_LOG("cannot set %s (module loaded?)", RAW_PARAM);
	vm_create(_metadata, self);
}

FIXTURE_TEARDOWN(vm)
{
	if (self->run && self->run != MAP_FAILED)
		munmap(self->run, self->run_size);
	if (self->ram && self->ram != MAP_FAILED)
		munmap(self->ram, GUEST_MEM);
	close(self->vcpu);
	close(self->vm);
	close(self->dev);
	raw_param("0");
}

static void load_code(struct vm_fixture *self, const unsigned char *start,
		      const unsigned char *end, struct trapvm_regs *regs)
{
	memcpy(self->ram + CODE_GPA, start, end - start);
	memset(regs, 0, sizeof(*regs));
	regs->rip = CODE_GPA;
	regs->rsp = STACK_GPA;
	regs->rflags = 0x2;
}

#define LOAD(self, blob, regs)	load_code(self, blob, blob##_end, regs)

/* RUN once; expect a raw exit. */
static void run_raw(struct __test_metadata *_metadata, struct vm_fixture *self,
		    struct trapvm_regs *regs)
{
	if (regs)
		ASSERT_EQ(0, ioctl(self->vcpu, TRAPVM_SET_REGS, regs));
	ASSERT_EQ(0, ioctl(self->vcpu, TRAPVM_RUN, 0))
		TH_LOG("RUN: %s", strerror(errno));
	ASSERT_EQ(TRAPVM_EXIT_DEBUG, self->run->exit_reason)
		TH_LOG("exit reason %u (internal %u: %llx %llx %llx %llx %llx)",
		       self->run->exit_reason, self->run->internal.suberror,
		       (unsigned long long)self->run->internal.data[0],
		       (unsigned long long)self->run->internal.data[1],
		       (unsigned long long)self->run->internal.data[2],
		       (unsigned long long)self->run->internal.data[3],
		       (unsigned long long)self->run->internal.data[4]);
}

static void expect_exit(struct __test_metadata *_metadata,
			struct vm_fixture *self, const unsigned char *start,
			const unsigned char *end, unsigned int vector,
			unsigned int error_code, const char *what)
{
	struct trapvm_regs regs;

	load_code(self, start, end, &regs);
	regs.rax = 0x1000;
	run_raw(_metadata, self, &regs);
	EXPECT_EQ(vector, self->run->debug.vector) TH_LOG("%s", what);
	EXPECT_EQ(error_code, self->run->debug.error_code) TH_LOG("%s", what);
	/* Faults report the faulting instruction. */
	EXPECT_EQ(CODE_GPA, self->run->debug.rip) TH_LOG("%s", what);
}

#define EXPECT_FAULT(blob, vec, err) \
	expect_exit(_metadata, self, blob, blob##_end, vec, err, #blob)

static bool cpu_has(const char *flag)
{
	char line[8192];
	bool found = false;
	FILE *f = fopen("/proc/cpuinfo", "r");

	if (!f)
		return false;
	while (fgets(line, sizeof(line), f)) {
		char *p;

		if (strncmp(line, "flags", 5))
			continue;
		for (p = strtok(line, " \t\n:"); p; p = strtok(NULL, " \t\n:"))
			if (!strcmp(p, flag))
				found = true;
		break;
	}
	fclose(f);
	return found;
}

/*
 * Privileged instructions at CPL3 raise #GP(0) (SDM: HLT, CLI/STI and
 * IN/OUT with IOPL < CPL and no I/O bitmap, MOV CRn, LGDT, RDMSR/WRMSR,
 * SWAPGS, SYSRET at CPL3); UD2 and VMCALL outside VMX are #UD.
 */
TEST_F(vm, privileged_instructions)
{
	EXPECT_FAULT(g_hlt, GP_VECTOR, 0);
	EXPECT_FAULT(g_out, GP_VECTOR, 0);
	EXPECT_FAULT(g_in, GP_VECTOR, 0);
	EXPECT_FAULT(g_cli, GP_VECTOR, 0);
	EXPECT_FAULT(g_sti, GP_VECTOR, 0);
	EXPECT_FAULT(g_mov_cr3, GP_VECTOR, 0);
	EXPECT_FAULT(g_mov_from_cr0, GP_VECTOR, 0);
	EXPECT_FAULT(g_lgdt, GP_VECTOR, 0);
	EXPECT_FAULT(g_wrmsr, GP_VECTOR, 0);
	EXPECT_FAULT(g_rdmsr, GP_VECTOR, 0);
	EXPECT_FAULT(g_invlpg, GP_VECTOR, 0);
	EXPECT_FAULT(g_sysret, GP_VECTOR, 0);
	/* SWAPGS in 64-bit mode at CPL != 0 is #GP(0), not #UD. */
	EXPECT_FAULT(g_swapgs, GP_VECTOR, 0);
	EXPECT_FAULT(g_ud2, UD_VECTOR, 0);
	/* VMCALL outside VMX operation is #UD. */
	EXPECT_FAULT(g_vmcall, UD_VECTOR, 0);
}

/* With CR4.UMIP (the host sets it when the CPU has it) SGDT & co #GP(0). */
TEST_F(vm, umip)
{
	if (!cpu_has("umip"))
		SKIP(return, "no UMIP on this CPU: SGDT/SIDT do not trap");
	EXPECT_FAULT(g_sgdt, GP_VECTOR, 0);
	EXPECT_FAULT(g_sidt, GP_VECTOR, 0);
	EXPECT_FAULT(g_str, GP_VECTOR, 0);
}

/*
 * INT n through a gate with DPL < CPL is #GP(vector * 8 + 2) (SDM, INT n
 * operation: "IDT" bit 1 set).  QEMU TCG reports vector * 16 + 2 (known
 * deviation, see the design brief), accepted only there.
 */
TEST_F(vm, soft_interrupts)
{
	struct trapvm_regs regs;
	int i;
	static const struct {
		const unsigned char *s, *e;
		unsigned int vec;
	} ints[] = {
		{ g_int3, g_int3_end, 3 },
		{ g_int80, g_int80_end, 0x80 },
	};

	for (i = 0; i < 2; i++) {
		load_code(self, ints[i].s, ints[i].e, &regs);
		run_raw(_metadata, self, &regs);
		EXPECT_EQ(GP_VECTOR, self->run->debug.vector);
		if (self->run->debug.error_code == ints[i].vec * 16 + 2 &&
		    cpu_has("hypervisor"))
			TH_LOG("vector %u: TCG's vector*16+2 error code",
			       ints[i].vec);
		else
			EXPECT_EQ(ints[i].vec * 8 + 2,
				  self->run->debug.error_code);
		EXPECT_EQ(CODE_GPA, self->run->debug.rip);
	}
}

/*
 * A far transfer to a kernel code segment (IRETQ to CPL0, far JMP to
 * 0x10) is refused by the hardware with #GP: the guest never reaches
 * hardware CPL0.
 */
TEST_F(vm, no_way_to_cpl0)
{
	struct trapvm_regs regs;
	uint64_t *desc = (uint64_t *)(self->ram + 0x3000);

	LOAD(self, g_iretq_k, &regs);
	regs.rax = CODE_GPA;
	run_raw(_metadata, self, &regs);
	if (self->run->debug.vector == PF_VECTOR &&
	    self->run->debug.error_code == PF_P && cpu_has("hypervisor")) {
		/*
		 * QEMU TCG pops the IRET frame with supervisor accesses, so
		 * SMAP faults on the user stack (known deviation).  Still no
		 * way to CPL0.
		 */
		TH_LOG("TCG: IRETQ frame read as supervisor (SMAP #PF)");
	} else {
		EXPECT_EQ(GP_VECTOR, self->run->debug.vector);
		/* #GP(selector) for a CS with RPL < CPL. */
		EXPECT_EQ(0x10, self->run->debug.error_code);
	}
	EXPECT_EQ(CODE_GPA + 7, self->run->debug.rip);	/* the IRETQ */

	/*
	 * ljmp *m16:64 (Intel) or *m16:32 (AMD ignores REX.W) to selector
	 * 0x10: #GP(0x10) (nonconforming code segment with DPL != CPL).  The
	 * operand is laid out so that both readings give selector 0x10.
	 */
	desc[0] = (0x10ULL << 32) | CODE_GPA;
	desc[1] = 0x10;
	LOAD(self, g_ljmp_k, &regs);
	regs.rax = 0x3000;
	run_raw(_metadata, self, &regs);
	EXPECT_EQ(GP_VECTOR, self->run->debug.vector);
	EXPECT_EQ(0x10, self->run->debug.error_code);
}

TEST_F(vm, syscall)
{
	struct trapvm_regs regs;

	LOAD(self, g_syscall, &regs);
	regs.rflags = 0x2 | RFLAGS_CF;
	run_raw(_metadata, self, &regs);
	EXPECT_EQ(SYSCALL_VECTOR, self->run->debug.vector);
	ASSERT_EQ(0, ioctl(self->vcpu, TRAPVM_GET_REGS, &regs));
	/* SDM SYSCALL: RCX = next RIP, R11 = RFLAGS (hardware: IF is 1). */
	EXPECT_EQ(CODE_GPA + 2, regs.rcx);
	EXPECT_EQ(RFLAGS_CF | RFLAGS_IF | 0x2, regs.r11 & ~0x10000ULL);
	EXPECT_EQ(CODE_GPA + 2, self->run->debug.rip);
}

/* #PF: error code bits and CR2 as the SDM defines them. */
TEST_F(vm, page_faults)
{
	struct trapvm_regs regs;
	static const uint64_t outside = 0x40000000ULL;	/* past RAM */

	LOAD(self, g_load, &regs);
	regs.rax = outside + 0x123;
	run_raw(_metadata, self, &regs);
	EXPECT_EQ(PF_VECTOR, self->run->debug.vector);
	EXPECT_EQ(PF_U, self->run->debug.error_code);
	EXPECT_EQ(outside + 0x123, self->run->debug.cr2);
	EXPECT_EQ(CODE_GPA, self->run->debug.rip);

	LOAD(self, g_store, &regs);
	regs.rax = outside + 8;
	run_raw(_metadata, self, &regs);
	EXPECT_EQ(PF_VECTOR, self->run->debug.vector);
	EXPECT_EQ(PF_U | PF_W, self->run->debug.error_code);
	EXPECT_EQ(outside + 8, self->run->debug.cr2);

	/* Instruction fetch from an unmapped page (I only with NX on). */
	LOAD(self, g_call, &regs);
	regs.rax = outside;
	run_raw(_metadata, self, &regs);
	EXPECT_EQ(PF_VECTOR, self->run->debug.vector);
	EXPECT_EQ(PF_U, self->run->debug.error_code & ~PF_I);
	EXPECT_EQ(outside, self->run->debug.cr2);
	EXPECT_EQ(outside, self->run->debug.rip);
}

/*
 * Meltdown-style probes: nothing of the host is mapped for the guest.
 * Host kernel addresses are not present (#PF, P clear); the switcher in
 * the hole is present but supervisor (#PF with P set, U set).
 */
TEST_F(vm, host_invisible)
{
	static const uint64_t host_addrs[] = {
		0xffffffff81000000ULL,	/* kernel text (4-level layout) */
		0xffff888000000000ULL,	/* direct map */
		0xffffc90000000000ULL,	/* vmalloc */
		0xffffffffa0000000ULL,	/* modules */
		0xfffffe0000000000ULL,	/* cpu_entry_area */
	};
	struct trapvm_regs regs;
	unsigned int i;
	uint64_t a;

	for (i = 0; i < ARRAY_SIZE(host_addrs); i++) {
		LOAD(self, g_load, &regs);
		regs.rax = host_addrs[i];
		run_raw(_metadata, self, &regs);
		EXPECT_EQ(PF_VECTOR, self->run->debug.vector)
			TH_LOG("%#llx", (unsigned long long)host_addrs[i]);
		EXPECT_EQ(PF_U, self->run->debug.error_code)
			TH_LOG("%#llx", (unsigned long long)host_addrs[i]);
		EXPECT_EQ(host_addrs[i], self->run->debug.cr2);
	}
	/* 5-level layout's direct map: non-canonical (#GP) on 4-level. */
	LOAD(self, g_load, &regs);
	regs.rax = 0xff11000000000000ULL;
	run_raw(_metadata, self, &regs);
	if (cpu_has("la57")) {
		EXPECT_EQ(PF_VECTOR, self->run->debug.vector);
		EXPECT_EQ(PF_U, self->run->debug.error_code);
	} else {
		EXPECT_EQ(GP_VECTOR, self->run->debug.vector);
		EXPECT_EQ(0, self->run->debug.error_code);
	}
	/* The switcher region of CPU 0: text, IDT, data. */
	for (a = TRAPVM_HOLE_START; a < TRAPVM_HOLE_START + 4 * 4096;
	     a += 4096) {
		LOAD(self, g_load, &regs);
		regs.rax = a;
		run_raw(_metadata, self, &regs);
		EXPECT_EQ(PF_VECTOR, self->run->debug.vector);
		EXPECT_EQ(PF_U | PF_P, self->run->debug.error_code)
			TH_LOG("%#llx", (unsigned long long)a);
		LOAD(self, g_store, &regs);
		regs.rax = a;
		run_raw(_metadata, self, &regs);
		EXPECT_EQ(PF_VECTOR, self->run->debug.vector);
		EXPECT_EQ(PF_U | PF_P | PF_W, self->run->debug.error_code);
	}
	/*
	 * The page after them holds the host's state (stack pointer, CR3,
	 * descriptor tables) and is not mapped for the guest at all, so not
	 * even a speculative read could find host pointers.
	 */
	LOAD(self, g_load, &regs);
	regs.rax = TRAPVM_HOLE_START + 4 * 4096;
	run_raw(_metadata, self, &regs);
	EXPECT_EQ(PF_VECTOR, self->run->debug.vector);
	EXPECT_EQ(PF_U, self->run->debug.error_code);
}

/* All 16 GPRs, RSP, RIP and the arithmetic flags survive the switch. */
TEST_F(vm, register_state)
{
	struct trapvm_regs regs, out;
	__u64 *r = &regs.rax, *o = &out.rax;
	int i;

	LOAD(self, g_regs, &regs);
	for (i = 0; i < 16; i++)
		r[i] = 0x1111111111111111ULL * (i + 1) + 0x100000000ULL;
	regs.rsp = STACK_GPA;
	run_raw(_metadata, self, &regs);
	EXPECT_EQ(GP_VECTOR, self->run->debug.vector);	/* the HLT */
	ASSERT_EQ(0, ioctl(self->vcpu, TRAPVM_GET_REGS, &out));
	EXPECT_EQ(STACK_GPA - 8, out.rsp);
	for (i = 0; i < 16; i++) {
		if (i == 4)	/* RSP */
			continue;
		EXPECT_EQ(r[i] + (i + 1), o[i]) TH_LOG("gpr %d", i);
	}
	EXPECT_EQ(CODE_GPA + (g_regs_end - g_regs) - 1, out.rip);
	EXPECT_TRUE(out.rflags & RFLAGS_CF);
	EXPECT_TRUE(out.rflags & (1ULL << 10));	/* DF */
}

/* FS/GS bases are the guest's (set through SET_SREGS). */
TEST_F(vm, segment_bases)
{
	struct trapvm_sregs sregs;
	struct trapvm_regs regs;

	*(uint64_t *)(self->ram + 0x5000) = 0x1234567890abcdefULL;
	*(uint64_t *)(self->ram + 0x6008) = 0xfedcba0987654321ULL;
	ASSERT_EQ(0, ioctl(self->vcpu, TRAPVM_GET_SREGS, &sregs));
	sregs.fs.base = 0x5000;
	sregs.gs.base = 0x6000;
	ASSERT_EQ(0, ioctl(self->vcpu, TRAPVM_SET_SREGS, &sregs));
	LOAD(self, g_fsgs, &regs);
	run_raw(_metadata, self, &regs);
	EXPECT_EQ(GP_VECTOR, self->run->debug.vector);
	ASSERT_EQ(0, ioctl(self->vcpu, TRAPVM_GET_REGS, &regs));
	EXPECT_EQ(0x1234567890abcdefULL, regs.rax);
	EXPECT_EQ(0xfedcba0987654321ULL, regs.rbx);
}

static void set_host_xmm(uint64_t v0, uint64_t v1, uint64_t v2, uint64_t v15)
{
	asm volatile("movq %0, %%xmm0; movq %1, %%xmm1; movq %2, %%xmm2; "
		     "movq %3, %%xmm15"
		     : : "r" (v0), "r" (v1), "r" (v2), "r" (v15)
		     : "xmm0", "xmm1", "xmm2", "xmm15");
}

/*
 * TRAPVM_RUN with the host's XMM0 = @val around it, in one asm block so
 * that no compiler-generated code touches XMM0 in between.  Returns the
 * ioctl result; *after gets XMM0 as the host sees it after RUN.
 */
static long run_keep_xmm0(int fd, uint64_t val, uint64_t *after)
{
	long ret = __NR_ioctl;
	uint64_t out;

	asm volatile("movq %[v], %%xmm0\n\t"
		     "syscall\n\t"
		     "movq %%xmm0, %[o]"
		     : [o] "=r" (out), "+a" (ret)
		     : "D" ((long)fd), "S" ((long)TRAPVM_RUN), "d" (0L),
		       [v] "r" (val)
		     : "rcx", "r11", "memory", "xmm0");
	*after = out;
	return ret;
}

/* A fresh guest sees the XSAVE init state, not the host's registers. */
TEST_F(vm, fpu_init_not_leaked)
{
	struct trapvm_regs regs;

	LOAD(self, g_xmm_init, &regs);
	ASSERT_EQ(0, ioctl(self->vcpu, TRAPVM_SET_REGS, &regs));
	set_host_xmm(0xdead0000beef0000ULL, 0x1234, 0x5678, 0x9abc);
	ASSERT_EQ(0, ioctl(self->vcpu, TRAPVM_RUN, 0));
	ASSERT_EQ(TRAPVM_EXIT_DEBUG, self->run->exit_reason);
	ASSERT_EQ(0, ioctl(self->vcpu, TRAPVM_GET_REGS, &regs));
	EXPECT_EQ(0, regs.rax);
	EXPECT_EQ(0, regs.rbx);
	EXPECT_EQ(0, regs.rcx);
	EXPECT_EQ(0x1f80, regs.rdx);	/* MXCSR reset value */
	EXPECT_EQ(0x37f, regs.rsi);	/* FCW after FNINIT */
}

/* Guest XMM state survives exits; the host's survives guest runs. */
TEST_F(vm, fpu_preserved)
{
	struct trapvm_regs regs;
	uint64_t host;
	int i;

	LOAD(self, g_xmm_set, &regs);
	regs.rax = 0x0123456789abcdefULL;
	regs.rbx = 0x0fedcba987654321ULL;
	ASSERT_EQ(0, ioctl(self->vcpu, TRAPVM_SET_REGS, &regs));
	ASSERT_EQ(0, run_keep_xmm0(self->vcpu, 0x5555aaaa5555aaaaULL, &host));
	ASSERT_EQ(TRAPVM_EXIT_DEBUG, self->run->exit_reason);
	EXPECT_EQ(0x5555aaaa5555aaaaULL, host);

	/* The host uses the FPU in between (and so may other tasks). */
	for (i = 0; i < 10; i++) {
		set_host_xmm(i, i, i, i);
		usleep(1000);
	}
	LOAD(self, g_xmm_get, &regs);
	ASSERT_EQ(0, ioctl(self->vcpu, TRAPVM_SET_REGS, &regs));
	ASSERT_EQ(0, run_keep_xmm0(self->vcpu, 0x7777777788888888ULL, &host));
	ASSERT_EQ(TRAPVM_EXIT_DEBUG, self->run->exit_reason);
	EXPECT_EQ(0x7777777788888888ULL, host);
	ASSERT_EQ(0, ioctl(self->vcpu, TRAPVM_GET_REGS, &regs));
	EXPECT_EQ(0x0123456789abcdefULL, regs.rcx);
	EXPECT_EQ(0x0fedcba987654321ULL, regs.rdx);
}

/* First touches of RAM are hidden faults: the guest never sees them. */
TEST_F(vm, hidden_faults)
{
	struct trapvm_vcpu_stats st;
	struct trapvm_regs regs;
	uint64_t before, p;

	ASSERT_EQ(0, ioctl(self->vcpu, TRAPVM_GET_STATS, &st));
	before = st.count[TRAPVM_STAT_MMU_HIDDEN_PF];
	LOAD(self, g_touch, &regs);
	regs.rax = 0x200000;
	regs.rcx = 0x300000;
	regs.rbx = 0xa5;
	run_raw(_metadata, self, &regs);
	EXPECT_EQ(GP_VECTOR, self->run->debug.vector);	/* the HLT */
	for (p = 0x200000; p < 0x300000; p += 4096)
		ASSERT_EQ(0xa5, self->ram[p]) TH_LOG("gpa %#llx",
						     (unsigned long long)p);
	ASSERT_EQ(0, ioctl(self->vcpu, TRAPVM_GET_STATS, &st));
	/* 256 pages touched the first time, plus the code page. */
	EXPECT_EQ(257, st.count[TRAPVM_STAT_MMU_HIDDEN_PF] - before);
}

static sig_atomic_t alarms;

static void on_alarm(int sig)
{
	__atomic_fetch_add(&alarms, 1, __ATOMIC_RELAXED);
}

/* A pending signal ends RUN with -EINTR; host timer IRQs are handled. */
TEST_F(vm, signal_interrupts_run)
{
	struct sigaction sa = { .sa_handler = on_alarm };
	struct trapvm_vcpu_stats st;
	struct trapvm_regs regs;
	struct timespec t0, t1;
	int ret;

	ASSERT_EQ(0, sigaction(SIGALRM, &sa, NULL));	/* no SA_RESTART */
	LOAD(self, g_spin, &regs);
	ASSERT_EQ(0, ioctl(self->vcpu, TRAPVM_SET_REGS, &regs));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	alarm(1);
	ret = ioctl(self->vcpu, TRAPVM_RUN, 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(EINTR, errno);
	EXPECT_EQ(1, __atomic_load_n(&alarms, __ATOMIC_RELAXED));
	EXPECT_EQ(TRAPVM_EXIT_INTR, self->run->exit_reason);
	EXPECT_LE(0.9, (t1.tv_sec - t0.tv_sec) +
		  (t1.tv_nsec - t0.tv_nsec) / 1e9);
	ASSERT_EQ(0, ioctl(self->vcpu, TRAPVM_GET_STATS, &st));
	/* One second of guest time must have seen host timer ticks. */
	EXPECT_LT(10, st.count[TRAPVM_STAT_EXIT_HOST_IRQ]);
	/* The spinning guest is still where it was. */
	ASSERT_EQ(0, ioctl(self->vcpu, TRAPVM_GET_REGS, &regs));
	EXPECT_EQ(CODE_GPA, regs.rip);
	signal(SIGALRM, SIG_DFL);
}

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

/*
 * The exit storm: SYSCALL round trips guest -> module -> userspace ->
 * guest.  The counters must match exactly and the host stay clean (the
 * runner checks dmesg).
 */
TEST_F_TIMEOUT(vm, many_exits, 900)
{
	const char *env = getenv("SWITCH_TEST_EXITS");
	long n = env ? atol(env) : 100000, i;
	struct trapvm_vcpu_stats st0, st1;
	struct trapvm_regs regs;
	double t0, t1;

	LOAD(self, g_sysloop, &regs);
	ASSERT_EQ(0, ioctl(self->vcpu, TRAPVM_SET_REGS, &regs));
	ASSERT_EQ(0, ioctl(self->vcpu, TRAPVM_GET_STATS, &st0));
	t0 = now();
	for (i = 0; i < n; i++) {
		if (ioctl(self->vcpu, TRAPVM_RUN, 0) ||
		    self->run->exit_reason != TRAPVM_EXIT_DEBUG ||
		    self->run->debug.vector != SYSCALL_VECTOR)
			break;
	}
	t1 = now();
	ASSERT_EQ(n, i) TH_LOG("stopped after %ld: reason %u vector %u",
			       i, self->run->exit_reason,
			       self->run->debug.vector);
	ASSERT_EQ(0, ioctl(self->vcpu, TRAPVM_GET_STATS, &st1));
	EXPECT_EQ(n, st1.count[TRAPVM_STAT_EXIT_SYSCALL] -
		  st0.count[TRAPVM_STAT_EXIT_SYSCALL]);
	EXPECT_LE(n, st1.count[TRAPVM_STAT_ENTRIES] -
		  st0.count[TRAPVM_STAT_ENTRIES]);
	TH_LOG("%ld SYSCALL exits to userspace in %.2f s: %.2f us per round trip",
	       n, t1 - t0, (t1 - t0) * 1e6 / n);
	printf("# switch_test: round trip %.2f us (%ld exits)\n",
	       (t1 - t0) * 1e6 / n, n);
}

/*
 * Exits the module handles itself, without userspace: CLI at virtual
 * CPL0 is emulated (virtual IF), then HLT with IF = 0 is a shutdown exit
 * (nothing can wake the vCPU).  Measures the in-kernel round trip.
 */
TEST_F_TIMEOUT(vm, in_kernel_exits, 900)
{
	const char *env = getenv("SWITCH_TEST_EXITS");
	long n = env ? atol(env) : 1000000;
	struct trapvm_vcpu_stats st0, st1;
	struct trapvm_regs regs;
	double t0, t1;

	ASSERT_EQ(0, raw_param("0"));
	LOAD(self, g_cli_loop, &regs);
	regs.rcx = n;
	ASSERT_EQ(0, ioctl(self->vcpu, TRAPVM_SET_REGS, &regs));
	ASSERT_EQ(0, ioctl(self->vcpu, TRAPVM_GET_STATS, &st0));
	t0 = now();
	ASSERT_EQ(0, ioctl(self->vcpu, TRAPVM_RUN, 0));
	t1 = now();
	ASSERT_EQ(TRAPVM_EXIT_SHUTDOWN, self->run->exit_reason)
		TH_LOG("exit %u", self->run->exit_reason);
	EXPECT_EQ(TRAPVM_SHUTDOWN_HLT, self->run->shutdown.reason);
	ASSERT_EQ(0, ioctl(self->vcpu, TRAPVM_GET_REGS, &regs));
	EXPECT_EQ(0, regs.rcx);
	EXPECT_EQ(0, regs.rflags & RFLAGS_IF);
	ASSERT_EQ(0, ioctl(self->vcpu, TRAPVM_GET_STATS, &st1));
	/* n CLIs and the HLT, each a #GP exit. */
	EXPECT_EQ(n + 1, st1.count[TRAPVM_STAT_EXIT_GP] -
		  st0.count[TRAPVM_STAT_EXIT_GP]);
	EXPECT_EQ(n, st1.count[TRAPVM_STAT_EMUL_CLI_STI] -
		  st0.count[TRAPVM_STAT_EMUL_CLI_STI]);
	TH_LOG("%ld in-kernel CLI exits in %.2f s: %.2f us per round trip",
	       n, t1 - t0, (t1 - t0) * 1e6 / n);
	printf("# switch_test: in-kernel round trip %.2f us (%ld exits)\n",
	       (t1 - t0) * 1e6 / n, n);
}

/*
 * A RIP no CPU accepts (non-canonical for 4- and 5-level paging) makes
 * the switcher's own IRETQ fault: RUN reports an internal error and the
 * vCPU stays usable.
 */
TEST_F(vm, bad_rip_is_internal_error)
{
	struct trapvm_regs regs;

	LOAD(self, g_hlt, &regs);
	regs.rip = 0x8000000000000000ULL;
	ASSERT_EQ(0, ioctl(self->vcpu, TRAPVM_SET_REGS, &regs));
	ASSERT_EQ(0, ioctl(self->vcpu, TRAPVM_RUN, 0));
	if (self->run->exit_reason == TRAPVM_EXIT_DEBUG &&
	    cpu_has("hypervisor")) {
		/*
		 * QEMU TCG does not check RIP on IRETQ (SDM: #GP(0)); the
		 * fetch at CPL3 then faults.  Still no harm to the host.
		 */
		TH_LOG("TCG: IRETQ took a non-canonical RIP, fetch #GP");
		EXPECT_EQ(GP_VECTOR, self->run->debug.vector);
	} else {
		ASSERT_EQ(TRAPVM_EXIT_INTERNAL_ERROR,
			  self->run->exit_reason);
		EXPECT_EQ(TRAPVM_INTERNAL_ERROR_SWITCHER,
			  self->run->internal.suberror);
		EXPECT_EQ(GP_VECTOR, self->run->internal.data[3]);
	}

	LOAD(self, g_hlt, &regs);
	run_raw(_metadata, self, &regs);
	EXPECT_EQ(GP_VECTOR, self->run->debug.vector);
	EXPECT_EQ(CODE_GPA, self->run->debug.rip);
}

/*
 * A hardware watchpoint of the host thread (perf, DR7) must not fire on
 * the guest's accesses to the same linear address.
 */
TEST_F(vm, host_breakpoints_not_in_guest)
{
	struct perf_event_attr attr = {
		.type = PERF_TYPE_BREAKPOINT,
		.size = sizeof(attr),
		.bp_type = HW_BREAKPOINT_W,
		.bp_len = HW_BREAKPOINT_LEN_8,
		.exclude_kernel = 1,
		.exclude_hv = 1,
	};
	const uint64_t addr = 0x300000;	/* in guest RAM too */
	struct trapvm_regs regs;
	uint64_t *host;
	uint64_t hits;
	int fd;

	host = mmap((void *)addr, 4096, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	if (host == MAP_FAILED)
		SKIP(return, "cannot map %#llx in the host",
		     (unsigned long long)addr);
	attr.bp_addr = addr;
	fd = syscall(__NR_perf_event_open, &attr, 0, -1, -1, 0);
	if (fd < 0)
		SKIP(return, "no hardware breakpoints: %s", strerror(errno));

	/* The watchpoint works on the host... */
	*host = 1;
	asm volatile("" : : : "memory");	/* the store happens here */
	ASSERT_EQ(sizeof(hits), read(fd, &hits, sizeof(hits)));
	ASSERT_EQ(1, hits);

	/* ...and the guest's store to the same address is not seen. */
	LOAD(self, g_store, &regs);
	regs.rax = addr;
	regs.rbx = 0x1234;
	run_raw(_metadata, self, &regs);
	/* The store completes; the next exit is the end of the blob. */
	EXPECT_NE(1, self->run->debug.vector);
	EXPECT_EQ(0x1234, *(uint64_t *)(self->ram + addr));
	ASSERT_EQ(sizeof(hits), read(fd, &hits, sizeof(hits)));
	EXPECT_EQ(1, hits);
	close(fd);
	munmap((void *)host, 4096);
}

static bool tracefs(char *dir, size_t len)
{
	static const char * const paths[] = {
		"/sys/kernel/tracing", "/sys/kernel/debug/tracing",
	};
	char probe[256];
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(paths); i++) {
		snprintf(probe, sizeof(probe), "%s/events", paths[i]);
		if (!access(probe, F_OK)) {
			snprintf(dir, len, "%s", paths[i]);
			return true;
		}
	}
	if (mount("nodev", "/sys/kernel/tracing", "tracefs", 0, NULL))
		return false;
	snprintf(dir, len, "/sys/kernel/tracing");
	return true;
}

static int write_str(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY | O_TRUNC);
	int ret;

	if (fd < 0)
		return -1;
	ret = write(fd, val, strlen(val)) == (ssize_t)strlen(val) ? 0 : -1;
	close(fd);
	return ret;
}

/* The trapvm tracepoints exist and record a round trip's fields. */
TEST_F(vm, tracepoints)
{
	char dir[128], path[256], line[512];
	struct trapvm_regs regs;
	bool seen_switch = false, seen_exit = false;
	FILE *f;

	if (!tracefs(dir, sizeof(dir)))
		SKIP(return, "no tracefs");
	snprintf(path, sizeof(path), "%s/events/trapvm/enable", dir);
	ASSERT_EQ(0, access(path, W_OK)) TH_LOG("%s", path);
	snprintf(path, sizeof(path), "%s/trace", dir);
	ASSERT_EQ(0, write_str(path, ""));
	snprintf(path, sizeof(path), "%s/events/trapvm/enable", dir);
	ASSERT_EQ(0, write_str(path, "1"));

	LOAD(self, g_ud2, &regs);
	run_raw(_metadata, self, &regs);
	EXPECT_EQ(UD_VECTOR, self->run->debug.vector);

	ASSERT_EQ(0, write_str(path, "0"));
	snprintf(path, sizeof(path), "%s/trace", dir);
	f = fopen(path, "r");
	ASSERT_NE(NULL, f);
	while (fgets(line, sizeof(line), f)) {
		if (strstr(line, "trapvm_world_switch:") &&
		    strstr(line, "rip 0x1000 vector 6 "))
			seen_switch = true;
		if (strstr(line, "trapvm_exit:") &&
		    strstr(line, "rip 0x1000 vector 6 "))
			seen_exit = true;
	}
	fclose(f);
	EXPECT_TRUE(seen_switch);
	EXPECT_TRUE(seen_exit);
}

/* The vCPU thread moves between host CPUs between (and during) RUNs. */
TEST_F(vm, migrate_between_cpus)
{
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN), i;
	struct trapvm_regs regs, out;
	__u64 *r = &regs.rax, *o = &out.rax;
	cpu_set_t set;
	int j;

	if (ncpu < 2)
		SKIP(return, "needs 2 host CPUs (--smp 2)");
	LOAD(self, g_regs, &regs);
	for (i = 0; i < 2000; i++) {
		CPU_ZERO(&set);
		CPU_SET(i % ncpu, &set);
		ASSERT_EQ(0, sched_setaffinity(0, sizeof(set), &set));
		for (j = 0; j < 16; j++)
			r[j] = i * 1000 + j;
		regs.rsp = STACK_GPA;
		regs.rip = CODE_GPA;
		ASSERT_EQ(0, ioctl(self->vcpu, TRAPVM_SET_REGS, &regs));
		ASSERT_EQ(0, ioctl(self->vcpu, TRAPVM_RUN, 0));
		ASSERT_EQ(TRAPVM_EXIT_DEBUG, self->run->exit_reason);
		ASSERT_EQ(GP_VECTOR, self->run->debug.vector);
		ASSERT_EQ(i % ncpu, sched_getcpu());
		ASSERT_EQ(0, ioctl(self->vcpu, TRAPVM_GET_REGS, &out));
		for (j = 0; j < 16; j++)
			if (j != 4)
				ASSERT_EQ(r[j] + j + 1, o[j]);
	}
	CPU_ZERO(&set);
	for (j = 0; j < ncpu; j++)
		CPU_SET(j, &set);
	sched_setaffinity(0, sizeof(set), &set);
}

/* Two vCPUs of two VMs running at once on different CPUs. */
TEST(two_vms_in_parallel)
{
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	int status, k;
	pid_t pid[2];

	ASSERT_EQ(0, raw_param("1"));
	for (k = 0; k < 2; k++) {
		pid[k] = fork();
		ASSERT_LE(0, pid[k]);
		if (!pid[k]) {
			FIXTURE_DATA(vm) s = { 0 }, *self = &s;
			struct trapvm_regs regs;
			cpu_set_t set;
			int i;

			CPU_ZERO(&set);
			CPU_SET(k % ncpu, &set);
			sched_setaffinity(0, sizeof(set), &set);
			vm_create(_metadata, self);
			LOAD(self, g_sysloop, &regs);
			regs.rbx = k;
			if (ioctl(self->vcpu, TRAPVM_SET_REGS, &regs))
				_exit(2);
			for (i = 0; i < 20000; i++)
				if (ioctl(self->vcpu, TRAPVM_RUN, 0) ||
				    self->run->debug.vector != SYSCALL_VECTOR)
					_exit(3);
			if (ioctl(self->vcpu, TRAPVM_GET_REGS, &regs) ||
			    regs.rbx != (uint64_t)k)
				_exit(4);
			_exit(0);
		}
	}
	for (k = 0; k < 2; k++) {
		ASSERT_EQ(pid[k], waitpid(pid[k], &status, 0));
		EXPECT_TRUE(WIFEXITED(status) && !WEXITSTATUS(status))
			TH_LOG("child %d status %#x", k, status);
	}
	raw_param("0");
}

#define STORM_KO	"selftests/trapvm/nmi_storm/trapvm_nmi_storm.ko"
#define STORM_PARAM	"/sys/module/trapvm_nmi_storm/parameters/"

static long read_long(const char *path)
{
	long v = -1;
	FILE *f = fopen(path, "r");

	if (f) {
		if (fscanf(f, "%ld", &v) != 1)
			v = -1;
		fclose(f);
	}
	return v;
}

static int count_in_dmesg(const char *what)
{
	char cmd[128];
	int n = -1;
	FILE *p;

	snprintf(cmd, sizeof(cmd), "dmesg | grep -c '%s'", what);
	p = popen(cmd, "r");
	if (p) {
		if (fscanf(p, "%d", &n) != 1)
			n = -1;
		pclose(p);
	}
	return n;
}

static void pin(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	sched_setaffinity(0, sizeof(set), &set);
}

static void on_usr1(int sig)
{
}

/*
 * NMIs sent one at a time to the CPU where a guest spins: each must reach
 * the host's NMI handlers exactly once, whether it hit the guest, the
 * switcher or the host (trapvm_nmi_storm counts them; a doubled one is an
 * "unknown NMI" in dmesg, a lost one a timeout).
 */
FIXTURE(storm) {
	int unused;
};

FIXTURE_SETUP(storm)
{
}

FIXTURE_TEARDOWN(storm)
{
}

TEST_F_TIMEOUT(storm, nmi_storm, 600)
{
	const char *env = getenv("SWITCH_TEST_NMIS");
	long n = env ? atol(env) : 2000;
	int unknown0, status, pfd[2];
	struct vm_fixture s = { 0 }, *vm = &s;
	struct trapvm_vcpu_stats st;
	char cmd[256];
	pid_t child;

	if (sysconf(_SC_NPROCESSORS_ONLN) < 2)
		SKIP(return, "needs 2 host CPUs (--smp 2)");
	if (access(STORM_KO, R_OK))
		SKIP(return, "%s not built", STORM_KO);
	ASSERT_EQ(0, raw_param("1"));
	unknown0 = count_in_dmesg("NMI received for unknown reason");
	ASSERT_EQ(0, pipe(pfd));

	child = fork();
	ASSERT_LE(0, child);
	if (!child) {
		struct sigaction sa = { .sa_handler = on_usr1 };
		struct trapvm_regs regs;
		char c = 0;
		int ret;

		sigaction(SIGUSR1, &sa, NULL);
		pin(1);
		vm_create(_metadata, vm);
		LOAD(vm, g_spin, &regs);
		if (ioctl(vm->vcpu, TRAPVM_SET_REGS, &regs))
			_exit(2);
		if (write(pfd[1], &c, 1) != 1)
			_exit(3);
		/* Spins in the guest until the parent's SIGUSR1. */
		ret = ioctl(vm->vcpu, TRAPVM_RUN, 0);
		if (ret != -1 || errno != EINTR)
			_exit(4);
		if (ioctl(vm->vcpu, TRAPVM_GET_STATS, &st))
			_exit(5);
		/* Tell the parent how many NMIs stopped the guest. */
		if (write(pfd[1], &st.count[TRAPVM_STAT_EXIT_HOST_NMI],
			  sizeof(st.count[0])) != sizeof(st.count[0]))
			_exit(6);
		_exit(0);
	}

	{
		char c;
		__u64 guest_nmis = 0;

		ASSERT_EQ(1, read(pfd[0], &c, 1));
		usleep(200000);		/* let the child enter the guest */
		pin(0);
		snprintf(cmd, sizeof(cmd), "insmod %s cpu=1 count=%ld",
			 STORM_KO, n);
		EXPECT_EQ(0, system(cmd));
		EXPECT_EQ(n, read_long(STORM_PARAM "sent"));
		EXPECT_EQ(n, read_long(STORM_PARAM "received"));
		EXPECT_EQ(0, read_long(STORM_PARAM "lost"));
		EXPECT_EQ(0, system("rmmod trapvm_nmi_storm"));
		kill(child, SIGUSR1);
		ASSERT_EQ(sizeof(guest_nmis),
			  read(pfd[0], &guest_nmis, sizeof(guest_nmis)));
		ASSERT_EQ(child, waitpid(child, &status, 0));
		EXPECT_TRUE(WIFEXITED(status) && !WEXITSTATUS(status))
			TH_LOG("child status %#x", status);
		/*
		 * Some must have hit the guest.  How many is a matter of
		 * timing (NMIs sent back to back mostly land while the
		 * previous one's exit is handled; a loaded build machine
		 * has seen 6 of 2000), so only "at least one" is asserted.
		 */
		EXPECT_LT(0, (long)guest_nmis);
		EXPECT_EQ(unknown0,
			  count_in_dmesg("NMI received for unknown reason"));
		TH_LOG("%ld NMIs, %llu of them stopped the guest", n,
		       (unsigned long long)guest_nmis);
	}
	raw_param("0");
}

TEST_HARNESS_MAIN
