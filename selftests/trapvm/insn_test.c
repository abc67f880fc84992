// SPDX-License-Identifier: GPL-2.0
/*
 * insn_test: every privileged instruction trapvm emulates, run by guest
 * code at virtual CPL0 (and CPL3 where the SDM gives CPL3 its own rule),
 * positive and negative.  Expected values and faults are written here from
 * the Intel SDM (Vol. 2 instruction pages, Vol. 3 chapters 2-6); they are
 * never read back from the module.
 *
 *   tools/testhost/run -- selftests/trapvm/insn_test
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>

#include <linux/trapvm.h>
#include <linux/trapvm_guest.h>
#include <linux/trapvm_stats.h>

#include "kselftest_harness.h"
#include "trapvm_test.h"

#define CR0_PE		(1ULL << 0)
#define CR0_MP		(1ULL << 1)
#define CR0_TS		(1ULL << 3)
#define CR0_ET		(1ULL << 4)
#define CR0_NE		(1ULL << 5)
#define CR0_WP		(1ULL << 16)
#define CR0_NW		(1ULL << 29)
#define CR0_CD		(1ULL << 30)
#define CR0_PG		(1ULL << 31)
#define CR4_PAE		(1ULL << 5)
#define CR4_PGE		(1ULL << 7)
#define CR4_OSXSAVE	(1ULL << 18)
#define CR4_LA57	(1ULL << 12)

#define MSR_EFER		0xc0000080
#define MSR_STAR		0xc0000081
#define MSR_LSTAR		0xc0000082
#define MSR_CSTAR		0xc0000083
#define MSR_SFMASK		0xc0000084
#define MSR_FS_BASE		0xc0000100
#define MSR_GS_BASE		0xc0000101
#define MSR_KERNEL_GS_BASE	0xc0000102
#define MSR_TSC_AUX		0xc0000103
#define MSR_PAT			0x277
#define MSR_APIC_BASE		0x1b

#define NONCANON	0x8000000000000000ULL

static uint64_t rd_cr(int n)
{
	uint64_t v = 0;

	switch (n) {
	case 0:
		asm volatile("mov %%cr0, %0" : "=r"(v));
		break;
	case 2:
		asm volatile("mov %%cr2, %0" : "=r"(v));
		break;
	case 3:
		asm volatile("mov %%cr3, %0" : "=r"(v));
		break;
	case 4:
		asm volatile("mov %%cr4, %0" : "=r"(v));
		break;
	case 8:
		asm volatile("mov %%cr8, %0" : "=r"(v));
		break;
	}
	return v;
}

/* MOV to CRn; returns the vector raised (0xff: none). */
static uint64_t wr_cr_safe(int n, uint64_t v)
{
	switch (n) {
	case 0:
		asm volatile(ASM_SAFE("mov %[v], %%cr0") : ASM_SAFE_OUT
			     : [v] "r"(v) : ASM_SAFE_CLOBBERS);
		break;
	case 2:
		asm volatile(ASM_SAFE("mov %[v], %%cr2") : ASM_SAFE_OUT
			     : [v] "r"(v) : ASM_SAFE_CLOBBERS);
		break;
	case 3:
		asm volatile(ASM_SAFE("mov %[v], %%cr3") : ASM_SAFE_OUT
			     : [v] "r"(v) : ASM_SAFE_CLOBBERS);
		break;
	case 4:
		asm volatile(ASM_SAFE("mov %[v], %%cr4") : ASM_SAFE_OUT
			     : [v] "r"(v) : ASM_SAFE_CLOBBERS);
		break;
	case 8:
		asm volatile(ASM_SAFE("mov %[v], %%cr8") : ASM_SAFE_OUT
			     : [v] "r"(v) : ASM_SAFE_CLOBBERS);
		break;
	}
	return guest_last_ex.vector;
}

static uint64_t rdmsr_safe(uint32_t msr, uint64_t *val)
{
	uint32_t lo = 0, hi = 0;

	asm volatile(ASM_SAFE("rdmsr") : ASM_SAFE_OUT, "+a"(lo), "+d"(hi)
		     : "c"(msr) : ASM_SAFE_CLOBBERS);
	*val = lo | ((uint64_t)hi << 32);
	return guest_last_ex.vector;
}

static uint64_t wrmsr_safe(uint32_t msr, uint64_t val)
{
	asm volatile(ASM_SAFE("wrmsr") : ASM_SAFE_OUT
		     : "c"(msr), "a"((uint32_t)val),
		       "d"((uint32_t)(val >> 32)) : ASM_SAFE_CLOBBERS);
	return guest_last_ex.vector;
}

static struct tvm *vm;

FIXTURE(vmf) {
	struct tvm *vm;
};

FIXTURE_SETUP(vmf)
{
	self->vm = vm = tvm_create(0);
}

FIXTURE_TEARDOWN(vmf)
{
	tvm_free(self->vm);
}

/* ---- the library itself: a function runs and comes back ---- */

static void guest_smoke(uint64_t arg)
{
	GUEST_SYNC(arg + 1);
	GUEST_ASSERT_EQ(arg, 41);
}

TEST_F(vmf, smoke)
{
	struct ucall uc;

	tvm_enter(self->vm, guest_smoke, 41);
	TVM_RUN_EXPECT(self->vm, &uc, UCALL_SYNC);
	EXPECT_EQ(42, uc.args[0]);
	TVM_RUN_DONE(self->vm);
}

/* ---- UD2, VMCALL, HLT, CLI/STI ---- */

static void guest_ud2(void)
{
	asm volatile(ASM_SAFE("ud2") : ASM_SAFE_OUT : : ASM_SAFE_CLOBBERS);
	/* #UD is a fault: RIP is the UD2, no error code (SDM Vol. 3 6.15). */
	GUEST_ASSERT_EX(UD_VECTOR, 0);
	GUEST_ASSERT_EQ(guest_last_ex.cs, TVM_KCS);
	GUEST_ASSERT_EQ(guest_last_ex.ss, TVM_KDS);
	/* An undefined opcode (0f 0b is UD2; 0f ff is UD0 with ModRM). */
	asm volatile(ASM_SAFE(".byte 0x0f, 0xff, 0xc0") : ASM_SAFE_OUT : :
		     ASM_SAFE_CLOBBERS);
	GUEST_ASSERT_EX(UD_VECTOR, 0);
	/* MOV to CR1 / CR5: reserved control registers are #UD. */
	asm volatile(ASM_SAFE(".byte 0x0f, 0x22, 0xc8") : ASM_SAFE_OUT
		     : : ASM_SAFE_CLOBBERS);
	GUEST_ASSERT_EX(UD_VECTOR, 0);
	asm volatile(ASM_SAFE(".byte 0x0f, 0x20, 0xe8") : ASM_SAFE_OUT
		     : : ASM_SAFE_CLOBBERS);
	GUEST_ASSERT_EX(UD_VECTOR, 0);
}

TEST_F(vmf, ud2)
{
	tvm_enter(self->vm, guest_ud2, 0);
	TVM_RUN_DONE(self->vm);
}

static void guest_vmcall(void)
{
	uint64_t rax = 0x7e57, rbx = 0x1111, rcx = 0x2222, rdx = 0x3333;
	uint64_t rsi = 0x4444, rdi = 0x5555;

	asm volatile("vmcall" : "+a"(rax), "+b"(rbx), "+c"(rcx), "+d"(rdx),
		     "+S"(rsi), "+D"(rdi) : : "memory");
	/* Result in RAX, the other registers unchanged. */
	GUEST_ASSERT_EQ(rax, 0xabcdef);
	GUEST_ASSERT_EQ(rbx, 0x1111);
	GUEST_ASSERT_EQ(rcx, 0x2222);
	GUEST_ASSERT_EQ(rdx, 0x3333);
	GUEST_ASSERT_EQ(rsi, 0x4444);
	GUEST_ASSERT_EQ(rdi, 0x5555);
}

static uint64_t user_vmcall(uint64_t arg)
{
	asm volatile(ASM_SAFE("vmcall") : ASM_SAFE_OUT : "a"(0x7e57ULL)
		     : ASM_SAFE_CLOBBERS);
	return guest_last_ex.vector;
}

static void guest_vmcall_user(void)
{
	/* From virtual CPL3 VMCALL is #UD (guest ABI; no VMX operation). */
	GUEST_ASSERT_EQ(guest_run_user(user_vmcall, 0, 0x202), UD_VECTOR);
	GUEST_ASSERT_EQ(guest_last_ex.error_code, 0);
	GUEST_ASSERT_EQ(guest_last_ex.rip, guest_ex_insn);
	GUEST_ASSERT_EQ(guest_last_ex.cs, TVM_UCS);
}

TEST_F(vmf, vmcall)
{
	struct trapvm_regs regs;
	struct ucall uc;

	tvm_enter(self->vm, guest_vmcall, 0);
	ASSERT_EQ(0, tvm_run(self->vm));
	ASSERT_EQ(TRAPVM_EXIT_HYPERCALL, self->vm->run->exit_reason)
		TH_LOG("%s", tvm_describe(self->vm, &uc));
	EXPECT_EQ(0x7e57, self->vm->run->hypercall.nr);
	EXPECT_EQ(0x1111, self->vm->run->hypercall.args[0]);
	EXPECT_EQ(0x2222, self->vm->run->hypercall.args[1]);
	EXPECT_EQ(0x3333, self->vm->run->hypercall.args[2]);
	EXPECT_EQ(0x4444, self->vm->run->hypercall.args[3]);
	/* RIP already points past the 3-byte VMCALL. */
	ASSERT_EQ(0, ioctl(self->vm->vcpu, TRAPVM_GET_REGS, &regs));
	EXPECT_EQ(0x0f, *(uint8_t *)tvm_gva(self->vm, regs.rip - 3));
	EXPECT_EQ(0xc1, *(uint8_t *)tvm_gva(self->vm, regs.rip - 1));
	self->vm->run->hypercall.ret = 0xabcdef;
	TVM_RUN_DONE(self->vm);

	tvm_enter(self->vm, guest_vmcall_user, 0);
	TVM_RUN_DONE(self->vm);
}

static void guest_hlt_noint(void)
{
	asm volatile("cli; hlt");
	GUEST_ASSERT(0);
}

TEST_F(vmf, hlt_if0_shutdown)
{
	struct ucall uc;

	/* HLT with IF=0 and no NMI model can never resume: SHUTDOWN. */
	tvm_enter(self->vm, guest_hlt_noint, 0);
	ASSERT_EQ(0, tvm_run(self->vm));
	ASSERT_EQ(TRAPVM_EXIT_SHUTDOWN, self->vm->run->exit_reason)
		TH_LOG("%s", tvm_describe(self->vm, &uc));
	EXPECT_EQ(TRAPVM_SHUTDOWN_HLT, self->vm->run->shutdown.reason);
}

static volatile uint64_t irq_count, irq_rip, irq_rflags, irq_vector;

static void irq_handler(struct ex_regs *regs)
{
	irq_count++;
	irq_rip = regs->rip;
	irq_rflags = regs->rflags;
	irq_vector = regs->vector;
	guest_wrmsr(0x80b, 0);		/* EOI */
}

static void guest_cli_sti(void)
{
	uint64_t after_nop, after_sti;

	guest_x2apic_enable();
	guest_handlers[0x41] = irq_handler;
	asm volatile("cli");
	GUEST_ASSERT_EQ(guest_read_vif(), 0);
	asm volatile("sti");
	/* The #UD frame shows IF=1 only after STI's shadow is over. */
	GUEST_ASSERT_EQ(guest_read_vif(), X86_EFLAGS_IF);
	asm volatile("cli");
	GUEST_ASSERT_EQ(guest_read_vif(), 0);

	/* The test injects vector 0x41 now; IF=0 holds it. */
	GUEST_SYNC(1);
	GUEST_SYNC(2);
	GUEST_ASSERT_EQ(irq_count, 0);

	/*
	 * STI's interrupt shadow: the instruction after STI runs before the
	 * pending interrupt is taken (SDM Vol. 2 STI), so the frame's RIP
	 * is after the NOP, not before it.
	 */
	asm volatile("sti\n\t"
		     "leaq 1f(%%rip), %0\n\t"	/* the shadowed instruction */
		     "1: leaq 1b(%%rip), %1\n\t"
		     "cli\n\t"
		     : "=r"(after_sti), "=r"(after_nop) : : "memory");
	GUEST_ASSERT_EQ(irq_count, 1);
	GUEST_ASSERT_EQ(irq_vector, 0x41);
	GUEST_ASSERT(irq_rip != after_sti);
	GUEST_ASSERT(irq_rip == after_sti + 7);
	GUEST_ASSERT(irq_rflags & X86_EFLAGS_IF);
	GUEST_ASSERT_EQ(guest_read_vif(), 0);
	(void)after_nop;
}

TEST_F(vmf, cli_sti)
{
	struct trapvm_interrupt irq = { .vector = 0x41 };
	struct trapvm_regs regs;
	struct ucall uc;

	tvm_enter(self->vm, guest_cli_sti, 0);
	TVM_RUN_EXPECT(self->vm, &uc, UCALL_SYNC);
	ASSERT_EQ(1, uc.args[0]);
	ASSERT_EQ(0, ioctl(self->vm->vcpu, TRAPVM_GET_REGS, &regs));
	EXPECT_EQ(0, regs.rflags & X86_EFLAGS_IF);
	EXPECT_EQ(0, self->vm->run->if_flag);
	ASSERT_EQ(0, ioctl(self->vm->vcpu, TRAPVM_INTERRUPT, &irq));
	TVM_RUN_EXPECT(self->vm, &uc, UCALL_SYNC);
	ASSERT_EQ(2, uc.args[0]);
	TVM_RUN_DONE(self->vm);
}

/* request_interrupt_window: KVM's semantics, with the in-kernel APIC. */
static volatile uint64_t window_spin;

static void guest_irq_window(void)
{
	guest_x2apic_enable();
	guest_handlers[0x41] = irq_handler;
	irq_count = 0;
	asm volatile("cli");
	GUEST_SYNC(1);
	GUEST_SYNC(4);			/* IF=0: the window stays shut */
	asm volatile("sti");
	while (!irq_count)		/* no exit of its own until the IRQ */
		window_spin++;
	GUEST_ASSERT_EQ(irq_vector, 0x41);
	GUEST_SYNC(2);			/* IF=1, nothing pending: open */
	asm volatile("cli");
	GUEST_SYNC(3);
}

TEST_F(vmf, irq_window)
{
	struct trapvm_interrupt irq = { .vector = 0x41 };
	struct trapvm_run *run = self->vm->run;
	struct ucall uc;

	tvm_enter(self->vm, guest_irq_window, 0);
	TVM_RUN_EXPECT(self->vm, &uc, UCALL_SYNC);
	ASSERT_EQ(1, uc.args[0]);
	/* With IF=0 the request does not stop the guest. */
	run->request_interrupt_window = 1;
	TVM_RUN_EXPECT(self->vm, &uc, UCALL_SYNC);
	ASSERT_EQ(4, uc.args[0]);
	EXPECT_EQ(0, run->if_flag);
	EXPECT_EQ(0, run->ready_for_interrupt_injection);
	/* After STI, the window opens while the guest spins. */
	ASSERT_EQ(0, tvm_run(self->vm));
	ASSERT_EQ(TRAPVM_EXIT_IRQ_WINDOW_OPEN, run->exit_reason)
		TH_LOG("%s", tvm_describe(self->vm, &uc));
	EXPECT_EQ(1, run->if_flag);
	EXPECT_EQ(1, run->ready_for_interrupt_injection);
	ASSERT_EQ(0, ioctl(self->vm->vcpu, TRAPVM_INTERRUPT, &irq));
	run->request_interrupt_window = 0;
	TVM_RUN_EXPECT(self->vm, &uc, UCALL_SYNC);
	ASSERT_EQ(2, uc.args[0]);
	EXPECT_EQ(1, run->if_flag);
	EXPECT_EQ(1, run->ready_for_interrupt_injection);
	/*
	 * An interrupt pending in the APIC goes first: the window is
	 * reported only once its handler has returned (IRET sets IF).
	 */
	ASSERT_EQ(0, ioctl(self->vm->vcpu, TRAPVM_INTERRUPT, &irq));
	run->request_interrupt_window = 1;
	ASSERT_EQ(0, tvm_run(self->vm));
	ASSERT_EQ(TRAPVM_EXIT_IRQ_WINDOW_OPEN, run->exit_reason)
		TH_LOG("%s", tvm_describe(self->vm, &uc));
	tvm_sync_from_guest(self->vm, irq_count);
	EXPECT_EQ(2, irq_count);
	run->request_interrupt_window = 0;
	TVM_RUN_EXPECT(self->vm, &uc, UCALL_SYNC);
	ASSERT_EQ(3, uc.args[0]);
	EXPECT_EQ(0, run->if_flag);
	EXPECT_EQ(0, run->ready_for_interrupt_injection);
	TVM_RUN_DONE(self->vm);
}

/* ---- control registers ---- */

#define CR4_BOOT	(CR4_PAE | (1ULL << 9) | (1ULL << 10))

static void guest_cr(uint64_t pml4_copy)
{
	uint64_t cr0 = rd_cr(0), cr4 = rd_cr(4);

	/* What tvm_create() put there with SET_SREGS. */
	GUEST_ASSERT_EQ(cr0, CR0_PG | CR0_WP | CR0_NE | CR0_ET | CR0_MP |
			     CR0_PE);
	GUEST_ASSERT_EQ(rd_cr(3), TVM_PT_GPA);
	GUEST_ASSERT_EQ(cr4, CR4_BOOT);

	/* CR0.TS, then CLTS clears it and nothing else. */
	GUEST_ASSERT_EQ(wr_cr_safe(0, cr0 | CR0_TS), 0xff);
	GUEST_ASSERT_EQ(rd_cr(0), cr0 | CR0_TS);
	asm volatile("clts");
	GUEST_ASSERT_EQ(rd_cr(0), cr0);
	/* ET is fixed to 1 (SDM Vol. 3 2.5). */
	GUEST_ASSERT_EQ(wr_cr_safe(0, cr0 & ~CR0_ET), 0xff);
	GUEST_ASSERT_EQ(rd_cr(0), cr0);
	/* CD and NW together are legal. */
	GUEST_ASSERT_EQ(wr_cr_safe(0, cr0 | CR0_CD | CR0_NW), 0xff);
	GUEST_ASSERT_EQ(rd_cr(0), cr0 | CR0_CD | CR0_NW);
	GUEST_ASSERT_EQ(wr_cr_safe(0, cr0), 0xff);
	/* #GP(0): bits 63:32 set, NW without CD, PG without PE. */
	GUEST_ASSERT_EQ(wr_cr_safe(0, cr0 | (1ULL << 32)), GP_VECTOR);
	GUEST_ASSERT_EX(GP_VECTOR, 0);
	GUEST_ASSERT_EQ(wr_cr_safe(0, cr0 | CR0_NW), GP_VECTOR);
	GUEST_ASSERT_EX(GP_VECTOR, 0);
	GUEST_ASSERT_EQ(wr_cr_safe(0, cr0 & ~CR0_PE), GP_VECTOR);
	GUEST_ASSERT_EX(GP_VECTOR, 0);
	/* A faulting MOV changes nothing. */
	GUEST_ASSERT_EQ(rd_cr(0), cr0);

	/* CR2 holds whatever is written. */
	GUEST_ASSERT_EQ(wr_cr_safe(2, 0x123456789abcULL), 0xff);
	GUEST_ASSERT_EQ(rd_cr(2), 0x123456789abcULL);

	/* CR3: a copy of the PML4 maps the same; it reads back. */
	GUEST_ASSERT_EQ(wr_cr_safe(3, pml4_copy), 0xff);
	GUEST_ASSERT_EQ(rd_cr(3), pml4_copy);
	GUEST_ASSERT_EQ(wr_cr_safe(3, TVM_PT_GPA), 0xff);
	GUEST_ASSERT_EQ(rd_cr(3), TVM_PT_GPA);
	/* Bits above MAXPHYADDR (PCIDE=0: bit 63 too) are #GP(0). */
	GUEST_ASSERT_EQ(wr_cr_safe(3, TVM_PT_GPA | (1ULL << 62)), GP_VECTOR);
	GUEST_ASSERT_EX(GP_VECTOR, 0);
	GUEST_ASSERT_EQ(wr_cr_safe(3, TVM_PT_GPA | (1ULL << 63)), GP_VECTOR);
	GUEST_ASSERT_EX(GP_VECTOR, 0);
	/* MAXPHYADDR is what CPUID 0x80000008 tells the guest, not 52. */
	{
		unsigned int a, b, c, d;

		asm volatile("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d)
			     : "a"(0x80000008), "c"(0));
		if ((a & 0xff) < 52) {
			GUEST_ASSERT_EQ(wr_cr_safe(3, TVM_PT_GPA |
						      (1ULL << (a & 0xff))),
					GP_VECTOR);
			GUEST_ASSERT_EX(GP_VECTOR, 0);
		}
	}
	GUEST_ASSERT_EQ(rd_cr(3), TVM_PT_GPA);

	/* CR4: PGE on and off; reserved bits, PAE off and LA57 in IA-32e. */
	GUEST_ASSERT_EQ(wr_cr_safe(4, cr4 | CR4_PGE), 0xff);
	GUEST_ASSERT_EQ(rd_cr(4), cr4 | CR4_PGE);
	GUEST_ASSERT_EQ(wr_cr_safe(4, cr4), 0xff);
	GUEST_ASSERT_EQ(wr_cr_safe(4, cr4 | (1ULL << 63)), GP_VECTOR);
	GUEST_ASSERT_EX(GP_VECTOR, 0);
	GUEST_ASSERT_EQ(wr_cr_safe(4, cr4 | (1ULL << 15)), GP_VECTOR);
	GUEST_ASSERT_EX(GP_VECTOR, 0);
	GUEST_ASSERT_EQ(wr_cr_safe(4, cr4 & ~CR4_PAE), GP_VECTOR);
	GUEST_ASSERT_EX(GP_VECTOR, 0);
	GUEST_ASSERT_EQ(wr_cr_safe(4, cr4 | CR4_LA57), GP_VECTOR);
	GUEST_ASSERT_EX(GP_VECTOR, 0);
	GUEST_ASSERT_EQ(rd_cr(4), cr4);

	/* CR8 is TPR[7:4]; bits 63:4 reserved. */
	GUEST_ASSERT_EQ(wr_cr_safe(8, 5), 0xff);
	GUEST_ASSERT_EQ(rd_cr(8), 5);
	GUEST_ASSERT_EQ(wr_cr_safe(8, 16), GP_VECTOR);
	GUEST_ASSERT_EX(GP_VECTOR, 0);
	GUEST_ASSERT_EQ(rd_cr(8), 5);
	guest_x2apic_enable();
	/* x2APIC TPR (MSR 0x808) = CR8 << 4 (SDM Vol. 3 10.8.6.1). */
	GUEST_ASSERT_EQ(guest_rdmsr(0x808), 0x50);
	GUEST_ASSERT_EQ(wr_cr_safe(8, 0), 0xff);
	GUEST_ASSERT_EQ(guest_rdmsr(0x808), 0);
	GUEST_SYNC(0);
}

TEST_F(vmf, control_registers)
{
	uint64_t copy = tvm_alloc(self->vm, 1);
	struct trapvm_sregs sr;
	struct ucall uc;

	memcpy(tvm_gpa(self->vm, copy), tvm_gpa(self->vm, TVM_PT_GPA), 4096);
	tvm_enter(self->vm, guest_cr, copy);
	TVM_RUN_EXPECT(self->vm, &uc, UCALL_SYNC);
	/* The virtual state as the VMM sees it. */
	ASSERT_EQ(0, ioctl(self->vm->vcpu, TRAPVM_GET_SREGS, &sr));
	EXPECT_EQ(0x123456789abcULL, sr.cr2);
	EXPECT_EQ(TVM_PT_GPA, sr.cr3);
	EXPECT_EQ(0, sr.cr8);
	TVM_RUN_DONE(self->vm);
}

/* Privileged instructions at virtual CPL3 are #GP(0). */
static uint64_t user_privileged(uint64_t which)
{
	uint64_t v = 0;

	switch (which) {
	case 0:
		asm volatile(ASM_SAFE("mov %%cr0, %%rax") : ASM_SAFE_OUT
			     : : "rax", ASM_SAFE_CLOBBERS);
		break;
	case 1:
		asm volatile(ASM_SAFE("mov %%rax, %%cr3") : ASM_SAFE_OUT
			     : "a"(TVM_PT_GPA) : ASM_SAFE_CLOBBERS);
		break;
	case 2:
		asm volatile(ASM_SAFE("clts") : ASM_SAFE_OUT : :
			     ASM_SAFE_CLOBBERS);
		break;
	case 3:
		asm volatile(ASM_SAFE("rdmsr") : ASM_SAFE_OUT
			     : "c"(MSR_LSTAR) : "rax", "rdx",
			       ASM_SAFE_CLOBBERS);
		break;
	case 4:
		asm volatile(ASM_SAFE("wrmsr") : ASM_SAFE_OUT
			     : "c"(MSR_LSTAR), "a"(0), "d"(0)
			     : ASM_SAFE_CLOBBERS);
		break;
	case 5:
		asm volatile(ASM_SAFE("cli") : ASM_SAFE_OUT : :
			     ASM_SAFE_CLOBBERS);
		break;
	case 6:
		asm volatile(ASM_SAFE("hlt") : ASM_SAFE_OUT : :
			     ASM_SAFE_CLOBBERS);
		break;
	case 7:
		asm volatile(ASM_SAFE("outb %%al, $0x80") : ASM_SAFE_OUT
			     : "a"(0) : ASM_SAFE_CLOBBERS);
		break;
	case 8:
		asm volatile(ASM_SAFE("inb $0x80, %%al") : ASM_SAFE_OUT
			     : : "rax", ASM_SAFE_CLOBBERS);
		break;
	case 9:
		asm volatile(ASM_SAFE("invlpg (%%rax)") : ASM_SAFE_OUT
			     : "a"(0x1000) : ASM_SAFE_CLOBBERS);
		break;
	case 10:
		asm volatile(ASM_SAFE("wbinvd") : ASM_SAFE_OUT : :
			     ASM_SAFE_CLOBBERS);
		break;
	case 11:
		asm volatile(ASM_SAFE("swapgs") : ASM_SAFE_OUT : :
			     ASM_SAFE_CLOBBERS);
		break;
	case 12:
		asm volatile(ASM_SAFE("lgdt (%%rax)") : ASM_SAFE_OUT
			     : "a"(TVM_USTACK_TOP - 64) : ASM_SAFE_CLOBBERS);
		break;
	case 13:
		asm volatile(ASM_SAFE("xsetbv") : ASM_SAFE_OUT
			     : "c"(0), "a"(3), "d"(0) : ASM_SAFE_CLOBBERS);
		break;
	case 14:
		asm volatile(ASM_SAFE("mov %%rax, %%cr8") : ASM_SAFE_OUT
			     : "a"(0) : ASM_SAFE_CLOBBERS);
		break;
	case 15:
		asm volatile(ASM_SAFE("sysretq") : ASM_SAFE_OUT
			     : : "rcx", ASM_SAFE_CLOBBERS);
		break;
	case 16:
		asm volatile(ASM_SAFE("invd") : ASM_SAFE_OUT : :
			     ASM_SAFE_CLOBBERS);
		break;
	}
	(void)v;
	return guest_last_ex.vector;
}

#define NR_USER_PRIV	17

static void guest_user_privileged(void)
{
	uint64_t i;

	for (i = 0; i < NR_USER_PRIV; i++) {
		/* XSETBV needs CR4.OSXSAVE first, else #UD: skip it. */
		if (i == 13)
			continue;
		GUEST_ASSERT_EQ_X(guest_run_user(user_privileged, i, 0x202),
				  GP_VECTOR, i);
		GUEST_ASSERT_EQ_X(guest_last_ex.error_code, 0, i);
		GUEST_ASSERT_EQ_X(guest_last_ex.rip, guest_ex_insn, i);
		GUEST_ASSERT_EQ_X(guest_last_ex.cs, TVM_UCS, i);
		GUEST_ASSERT_EQ_X(guest_last_ex.ss, TVM_UDS, i);
	}
	/* Nothing changed: CR0, CR3, LSTAR, CR8. */
	GUEST_ASSERT_EQ(rd_cr(3), TVM_PT_GPA);
	GUEST_ASSERT_EQ(rd_cr(0) & CR0_TS, 0);
}

TEST_F(vmf, privileged_at_cpl3)
{
	tvm_enter(self->vm, guest_user_privileged, 0);
	TVM_RUN_DONE(self->vm);
}

/* ---- MSRs ---- */

static const struct {
	uint32_t msr;
	uint64_t val;
} msr_values[] = {
	{ MSR_STAR, 0x0023001000000000ULL },
	{ MSR_LSTAR, 0xffffffff81234560ULL },
	{ MSR_CSTAR, 0x00007fffffff0000ULL },
	{ MSR_SFMASK, 0x47700 },
	{ MSR_FS_BASE, 0x00007f0012345000ULL },
	{ MSR_GS_BASE, 0xffff888012345000ULL },
	{ MSR_KERNEL_GS_BASE, 0x1000 },
	{ MSR_TSC_AUX, 0x12345678 },
	{ MSR_PAT, 0x0007010600070106ULL },
};

static const struct {
	uint32_t msr;
	uint64_t val;
} msr_gp[] = {
	/* Non-canonical addresses (SDM Vol. 4 tables; WRMSR #GP(0)). */
	{ MSR_LSTAR, NONCANON },
	{ MSR_CSTAR, 0x0000800000000000ULL },
	{ MSR_FS_BASE, NONCANON },
	{ MSR_GS_BASE, 0x0000800000000000ULL },
	{ MSR_KERNEL_GS_BASE, NONCANON },
	/* TSC_AUX bits 63:32 reserved. */
	{ MSR_TSC_AUX, 1ULL << 32 },
	/* PAT memory types 2, 3 and >= 8 are reserved. */
	{ MSR_PAT, 0x0007010600070102ULL },
	{ MSR_PAT, 0x0307010600070106ULL },
	{ MSR_PAT, 0x0007010600080106ULL },
	/* EFER reserved bits. */
	{ MSR_EFER, 0xd01ULL | (1ULL << 63) },
	{ MSR_EFER, 0xd01ULL | (1ULL << 1) },
};

/* MSRs no processor model here implements: #GP(0) both ways. */
static const uint32_t msr_unknown[] = { 0x12345678, 0xc0001234, 0x40000000,
					0x4b564d00, 0xdeadbeef };

static void guest_msrs(void)
{
	uint64_t i, v;

	for (i = 0; i < sizeof(msr_values) / sizeof(msr_values[0]); i++) {
		GUEST_ASSERT_EQ_X(wrmsr_safe(msr_values[i].msr,
					     msr_values[i].val), 0xff, i);
		GUEST_ASSERT_EQ_X(rdmsr_safe(msr_values[i].msr, &v), 0xff, i);
		GUEST_ASSERT_EQ_X(v, msr_values[i].val, i);
	}
	for (i = 0; i < sizeof(msr_gp) / sizeof(msr_gp[0]); i++) {
		uint64_t before;

		rdmsr_safe(msr_gp[i].msr, &before);
		GUEST_ASSERT_EQ_X(wrmsr_safe(msr_gp[i].msr, msr_gp[i].val),
				  GP_VECTOR, i);
		GUEST_ASSERT_EQ_X(guest_last_ex.error_code, 0, i);
		GUEST_ASSERT_EQ_X(guest_last_ex.rip, guest_ex_insn, i);
		GUEST_ASSERT_EQ_X(rdmsr_safe(msr_gp[i].msr, &v), 0xff, i);
		GUEST_ASSERT_EQ_X(v, before, i);
	}
	for (i = 0; i < sizeof(msr_unknown) / sizeof(msr_unknown[0]); i++) {
		GUEST_ASSERT_EQ_X(rdmsr_safe(msr_unknown[i], &v), GP_VECTOR,
				  i);
		GUEST_ASSERT_EQ_X(guest_last_ex.error_code, 0, i);
		GUEST_ASSERT_EQ_X(wrmsr_safe(msr_unknown[i], 0), GP_VECTOR,
				  i);
		GUEST_ASSERT_EQ_X(guest_last_ex.error_code, 0, i);
	}
	/* EFER as set up; clearing LME with paging on is #GP(0). */
	GUEST_ASSERT_EQ(rdmsr_safe(MSR_EFER, &v), 0xff);
	GUEST_ASSERT_EQ(v, 0xd01);
	GUEST_ASSERT_EQ(wrmsr_safe(MSR_EFER, 0xd01), 0xff);
	GUEST_ASSERT_EQ(wrmsr_safe(MSR_EFER, 0xc01), GP_VECTOR);
	/* APIC base at reset: 0xfee00000, enabled, BSP. */
	GUEST_ASSERT_EQ(rdmsr_safe(MSR_APIC_BASE, &v), 0xff);
	GUEST_ASSERT_EQ(v, 0xfee00900);
	/* WRMSR FS_BASE moves the FS segment base. */
	*(volatile uint64_t *)0x1a0008 = 0xf5f5f5f5;
	GUEST_ASSERT_EQ(wrmsr_safe(MSR_FS_BASE, 0x1a0000), 0xff);
	asm volatile("mov %%fs:8, %0" : "=r"(v));
	GUEST_ASSERT_EQ(v, 0xf5f5f5f5);
	GUEST_SYNC(0);
}

TEST_F(vmf, msrs)
{
	struct {
		struct trapvm_msrs h;
		struct trapvm_msr_entry e[4];
	} m = { .h.nmsrs = 4 };
	struct ucall uc;

	tvm_enter(self->vm, guest_msrs, 0);
	TVM_RUN_EXPECT(self->vm, &uc, UCALL_SYNC);
	/* The VMM sees what the guest wrote. */
	m.e[0].index = MSR_LSTAR;
	m.e[1].index = MSR_STAR;
	m.e[2].index = MSR_TSC_AUX;
	m.e[3].index = MSR_PAT;
	ASSERT_EQ(4, ioctl(self->vm->vcpu, TRAPVM_GET_MSRS, &m));
	EXPECT_EQ(0xffffffff81234560ULL, m.e[0].data);
	EXPECT_EQ(0x0023001000000000ULL, m.e[1].data);
	EXPECT_EQ(0x12345678, m.e[2].data);
	EXPECT_EQ(0x0007010600070106ULL, m.e[3].data);
	TVM_RUN_DONE(self->vm);
}

/* ---- descriptor tables ---- */

struct __attribute__((packed)) dtr {
	uint16_t limit;
	uint64_t base;
};

#define SEL_DATA_NA	0x50	/* data, DPL0, accessed bit clear */
#define SEL_DATA_NP	0x58	/* data, not present */
#define SEL_LDT		0x60	/* LDT (16-byte descriptor) */
#define SEL_TSS2	0x70	/* available 64-bit TSS (16 bytes) */
#define SEL_CODE_XO	0x80	/* execute-only code */
#define SEL_CODE_RX	0x88	/* readable 64-bit code, DPL0 */
#define SEL_DATA_BASE	0x90	/* data with base FS_TEST_BASE */
#define SEL_CODE_NP	0x98	/* 64-bit code, not present */
#define SEL_LDT_NP	0xa0	/* LDT, not present (16 bytes) */
#define SEL_DATA_DPL3	0xb0	/* data, DPL3 */
#define FS_TEST_BASE	0x1a0000ULL

static void setup_spare_gdt(struct tvm *vm)
{
	tvm_set_gdt_entry(vm, SEL_DATA_NA,
			  tvm_seg_desc(0, 0xfffff, 0x2, 1, 0, 1, 0, 1, 1));
	tvm_set_gdt_entry(vm, SEL_DATA_NP,
			  tvm_seg_desc(0, 0xfffff, 0x3, 1, 0, 0, 0, 1, 1));
	tvm_set_gdt_entry(vm, SEL_LDT,
			  tvm_seg_desc(0x1b0000, 0xfff, 0x2, 0, 0, 1, 0, 0, 0));
	tvm_set_gdt_entry(vm, SEL_LDT + 8, 0);
	tvm_set_gdt_entry(vm, SEL_TSS2,
			  tvm_seg_desc(0x1b1000, 0x67, 0x9, 0, 0, 1, 0, 0, 0));
	tvm_set_gdt_entry(vm, SEL_TSS2 + 8, 0);
	tvm_set_gdt_entry(vm, SEL_CODE_XO,
			  tvm_seg_desc(0, 0xfffff, 0x9, 1, 0, 1, 1, 0, 1));
	tvm_set_gdt_entry(vm, SEL_CODE_RX,
			  tvm_seg_desc(0, 0xfffff, 0xb, 1, 0, 1, 1, 0, 1));
	tvm_set_gdt_entry(vm, SEL_DATA_BASE,
			  tvm_seg_desc(FS_TEST_BASE, 0xfffff, 0x3, 1, 0, 1, 0,
				       1, 1));
	tvm_set_gdt_entry(vm, SEL_CODE_NP,
			  tvm_seg_desc(0, 0xfffff, 0xb, 1, 0, 0, 1, 0, 1));
	tvm_set_gdt_entry(vm, SEL_LDT_NP,
			  tvm_seg_desc(0x1b0000, 0xfff, 0x2, 0, 0, 0, 0, 0, 0));
	tvm_set_gdt_entry(vm, SEL_LDT_NP + 8, 0);
	tvm_set_gdt_entry(vm, SEL_DATA_DPL3,
			  tvm_seg_desc(0, 0xfffff, 0x3, 1, 3, 1, 0, 1, 1));
}

static uint64_t gdt_entry(unsigned int sel)
{
	return ((volatile uint64_t *)TVM_GDT_GPA)[sel >> 3];
}

#define DESC_TYPE(d)	(((d) >> 40) & 0xf)

static void guest_dtables(uint64_t umip)
{
	struct dtr d = { 0 }, nd = { .limit = 0x7ff, .base = 0x5000 };
	struct dtr gdt = { .limit = 0xfff, .base = TVM_GDT_GPA };
	struct dtr idt = { .limit = 0xfff, .base = TVM_IDT_GPA };
	uint64_t v;

	if (umip) {
		/* SGDT/SIDT store the virtual GDTR/IDTR (10 bytes). */
		asm volatile("sgdt %0" : "=m"(d));
		GUEST_ASSERT_EQ(d.base, TVM_GDT_GPA);
		GUEST_ASSERT_EQ(d.limit, 0xfff);
		asm volatile("sidt %0" : "=m"(d));
		GUEST_ASSERT_EQ(d.base, TVM_IDT_GPA);
		GUEST_ASSERT_EQ(d.limit, 0xfff);
		/* STR / SLDT: the virtual TR and LDTR selectors. */
		v = 0xffff;
		asm volatile("str %w0" : "+r"(v));
		GUEST_ASSERT_EQ(v & 0xffff, TVM_TSS_SEL);
		v = 0xffff;
		asm volatile("sldt %w0" : "+r"(v));
		GUEST_ASSERT_EQ(v & 0xffff, 0);
		/* SMSW: low 16 bits of the virtual CR0 (PE MP ET NE). */
		asm volatile("smsw %w0" : "=r"(v));
		GUEST_ASSERT_EQ(v & 0xffff, 0x0033);
	}

	/* LGDT/LIDT load base and limit; S*DT give them back. */
	asm volatile("lgdt %0" : : "m"(nd));
	if (umip) {
		asm volatile("sgdt %0" : "=m"(d));
		GUEST_ASSERT_EQ(d.base, 0x5000);
		GUEST_ASSERT_EQ(d.limit, 0x7ff);
	}
	GUEST_SYNC(1);
	asm volatile("lgdt %0" : : "m"(gdt));
	asm volatile("lidt %0" : : "m"(nd));
	if (umip) {
		asm volatile("sidt %0" : "=m"(d));
		GUEST_ASSERT_EQ(d.base, 0x5000);
		GUEST_ASSERT_EQ(d.limit, 0x7ff);
	}
	GUEST_SYNC(2);
	asm volatile("lidt %0" : : "m"(idt));
	/* A non-canonical memory operand is #GP(0). */
	asm volatile(ASM_SAFE("lgdt (%[m])") : ASM_SAFE_OUT
		     : [m] "r"(NONCANON) : ASM_SAFE_CLOBBERS);
	GUEST_ASSERT_EX(GP_VECTOR, 0);

	/* LLDT: an LDT descriptor loads; others #GP(sel), absent #NP. */
	asm volatile(ASM_SAFE("lldt %w[s]") : ASM_SAFE_OUT
		     : [s] "r"(SEL_LDT) : ASM_SAFE_CLOBBERS);
	GUEST_ASSERT_NO_EX();
	if (umip) {
		asm volatile("sldt %w0" : "=r"(v));
		GUEST_ASSERT_EQ(v & 0xffff, SEL_LDT);
	}
	GUEST_SYNC(3);
	asm volatile(ASM_SAFE("lldt %w[s]") : ASM_SAFE_OUT
		     : [s] "r"(TVM_KDS) : ASM_SAFE_CLOBBERS);
	GUEST_ASSERT_EX(GP_VECTOR, TVM_KDS);
	asm volatile(ASM_SAFE("lldt %w[s]") : ASM_SAFE_OUT
		     : [s] "r"(SEL_LDT | 4) : ASM_SAFE_CLOBBERS);
	GUEST_ASSERT_EX(GP_VECTOR, SEL_LDT | 4);
	asm volatile(ASM_SAFE("lldt %w[s]") : ASM_SAFE_OUT
		     : [s] "r"(0x1000) : ASM_SAFE_CLOBBERS);
	GUEST_ASSERT_EX(GP_VECTOR, 0x1000);
	asm volatile(ASM_SAFE("lldt %w[s]") : ASM_SAFE_OUT
		     : [s] "r"(SEL_LDT_NP) : ASM_SAFE_CLOBBERS);
	GUEST_ASSERT_EX(NP_VECTOR, SEL_LDT_NP);
	/* A null selector makes the LDT unusable, no fault. */
	asm volatile(ASM_SAFE("lldt %w[s]") : ASM_SAFE_OUT
		     : [s] "r"(0) : ASM_SAFE_CLOBBERS);
	GUEST_ASSERT_NO_EX();

	/* LTR: marks the TSS descriptor busy; a busy one is #GP(sel). */
	GUEST_ASSERT_EQ(DESC_TYPE(gdt_entry(SEL_TSS2)), 0x9);
	asm volatile(ASM_SAFE("ltr %w[s]") : ASM_SAFE_OUT
		     : [s] "r"(SEL_TSS2) : ASM_SAFE_CLOBBERS);
	GUEST_ASSERT_NO_EX();
	GUEST_ASSERT_EQ(DESC_TYPE(gdt_entry(SEL_TSS2)), 0xb);
	if (umip) {
		asm volatile("str %w0" : "=r"(v));
		GUEST_ASSERT_EQ(v & 0xffff, SEL_TSS2);
	}
	GUEST_SYNC(4);
	asm volatile(ASM_SAFE("ltr %w[s]") : ASM_SAFE_OUT
		     : [s] "r"(SEL_TSS2) : ASM_SAFE_CLOBBERS);
	GUEST_ASSERT_EX(GP_VECTOR, SEL_TSS2);
	asm volatile(ASM_SAFE("ltr %w[s]") : ASM_SAFE_OUT
		     : [s] "r"(TVM_KDS) : ASM_SAFE_CLOBBERS);
	GUEST_ASSERT_EX(GP_VECTOR, TVM_KDS);
	asm volatile(ASM_SAFE("ltr %w[s]") : ASM_SAFE_OUT
		     : [s] "r"(0) : ASM_SAFE_CLOBBERS);
	GUEST_ASSERT_EX(GP_VECTOR, 0);
}

static bool host_has_umip(void)
{
	char line[8192];
	bool found = false;
	FILE *f = fopen("/proc/cpuinfo", "r");

	if (!f)
		return false;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "flags", 5)) {
			found = strstr(line, " umip") != NULL;
			break;
		}
	fclose(f);
	return found;
}

TEST_F(vmf, descriptor_tables)
{
	bool umip = host_has_umip();
	struct trapvm_sregs sr;
	struct ucall uc;

	if (!umip)
		TH_LOG("no UMIP on this host: SGDT/SIDT/SLDT/STR/SMSW not checked");
	setup_spare_gdt(self->vm);
	tvm_enter(self->vm, guest_dtables, umip);
	TVM_RUN_EXPECT(self->vm, &uc, UCALL_SYNC);
	ASSERT_EQ(0, ioctl(self->vm->vcpu, TRAPVM_GET_SREGS, &sr));
	EXPECT_EQ(0x5000, sr.gdt.base);
	EXPECT_EQ(0x7ff, sr.gdt.limit);
	TVM_RUN_EXPECT(self->vm, &uc, UCALL_SYNC);
	ASSERT_EQ(0, ioctl(self->vm->vcpu, TRAPVM_GET_SREGS, &sr));
	EXPECT_EQ(0x5000, sr.idt.base);
	EXPECT_EQ(0x7ff, sr.idt.limit);
	EXPECT_EQ(TVM_GDT_GPA, sr.gdt.base);
	TVM_RUN_EXPECT(self->vm, &uc, UCALL_SYNC);
	ASSERT_EQ(0, ioctl(self->vm->vcpu, TRAPVM_GET_SREGS, &sr));
	EXPECT_EQ(SEL_LDT, sr.ldt.selector);
	EXPECT_EQ(0x1b0000, sr.ldt.base);
	EXPECT_EQ(0xfff, sr.ldt.limit);
	EXPECT_EQ(2, sr.ldt.type);
	TVM_RUN_EXPECT(self->vm, &uc, UCALL_SYNC);
	ASSERT_EQ(0, ioctl(self->vm->vcpu, TRAPVM_GET_SREGS, &sr));
	EXPECT_EQ(SEL_TSS2, sr.tr.selector);
	EXPECT_EQ(0x1b1000, sr.tr.base);
	EXPECT_EQ(0x67, sr.tr.limit);
	EXPECT_EQ(0xb, sr.tr.type);
	TVM_RUN_DONE(self->vm);
}

/* ---- segment registers ---- */

static uint64_t mov_ds_safe(uint64_t sel)
{
	asm volatile(ASM_SAFE("mov %w[s], %%ds") : ASM_SAFE_OUT
		     : [s] "r"(sel) : ASM_SAFE_CLOBBERS);
	return guest_last_ex.vector;
}

static uint64_t mov_ss_safe(uint64_t sel)
{
	asm volatile(ASM_SAFE("mov %w[s], %%ss") : ASM_SAFE_OUT
		     : [s] "r"(sel) : ASM_SAFE_CLOBBERS);
	return guest_last_ex.vector;
}

static void guest_segments(void)
{
	uint64_t v;

	/* Loading a data segment sets its accessed bit (SDM Vol. 3 3.4.5.1). */
	GUEST_ASSERT_EQ(DESC_TYPE(gdt_entry(SEL_DATA_NA)), 0x2);
	GUEST_ASSERT_EQ(mov_ds_safe(SEL_DATA_NA), 0xff);
	GUEST_ASSERT_EQ(DESC_TYPE(gdt_entry(SEL_DATA_NA)), 0x3);
	GUEST_SYNC(1);
	/* A readable code segment can be loaded into DS, execute-only not. */
	GUEST_ASSERT_EQ(mov_ds_safe(SEL_CODE_RX), 0xff);
	GUEST_ASSERT_EQ(mov_ds_safe(SEL_CODE_XO), GP_VECTOR);
	GUEST_ASSERT_EX(GP_VECTOR, SEL_CODE_XO);
	/* Not present: #NP(sel). */
	GUEST_ASSERT_EQ(mov_ds_safe(SEL_DATA_NP), NP_VECTOR);
	GUEST_ASSERT_EX(NP_VECTOR, SEL_DATA_NP);
	/* Beyond the GDT limit: #GP(sel), RPL bits not in the code. */
	GUEST_ASSERT_EQ(mov_ds_safe(0x1003), GP_VECTOR);
	GUEST_ASSERT_EX(GP_VECTOR, 0x1000);
	/* RPL 3 > DPL 0 of a data segment: #GP(sel). */
	GUEST_ASSERT_EQ(mov_ds_safe(SEL_DATA_NA | 3), GP_VECTOR);
	GUEST_ASSERT_EX(GP_VECTOR, SEL_DATA_NA);
	/* The null selector is fine for DS in 64-bit mode. */
	GUEST_ASSERT_EQ(mov_ds_safe(0), 0xff);
	GUEST_ASSERT_EQ(mov_ds_safe(TVM_KDS), 0xff);

	/*
	 * SS: DPL and RPL must equal CPL; not present is #SS(sel).  (Not
	 * with the guest's own user selectors 0x2b/0x33: they are valid at
	 * the hardware CPL3 the guest runs at, so MOV does not trap; the
	 * guest ABI's paravirtual contract.)
	 */
	GUEST_ASSERT_EQ(mov_ss_safe(SEL_DATA_DPL3 | 3), GP_VECTOR);
	GUEST_ASSERT_EX(GP_VECTOR, SEL_DATA_DPL3);
	GUEST_ASSERT_EQ(mov_ss_safe(SEL_DATA_DPL3), GP_VECTOR);
	GUEST_ASSERT_EX(GP_VECTOR, SEL_DATA_DPL3);
	GUEST_ASSERT_EQ(mov_ss_safe(TVM_KDS | 3), GP_VECTOR);
	GUEST_ASSERT_EX(GP_VECTOR, TVM_KDS);
	GUEST_ASSERT_EQ(mov_ss_safe(SEL_CODE_RX), GP_VECTOR);
	GUEST_ASSERT_EX(GP_VECTOR, SEL_CODE_RX);
	GUEST_ASSERT_EQ(mov_ss_safe(SEL_DATA_NP), SS_VECTOR);
	GUEST_ASSERT_EX(SS_VECTOR, SEL_DATA_NP);
	GUEST_ASSERT_EQ(mov_ss_safe(TVM_KDS), 0xff);

	/* MOV FS loads the descriptor's base (32 bits in 64-bit mode). */
	*(volatile uint64_t *)(FS_TEST_BASE + 16) = 0x5e65e65e;
	asm volatile("mov %w0, %%fs" : : "r"(SEL_DATA_BASE));
	asm volatile("mov %%fs:16, %0" : "=r"(v));
	GUEST_ASSERT_EQ(v, 0x5e65e65e);
	/* POP GS too; POP of a not-present selector is #NP(sel). */
	asm volatile("push %q0; pop %%gs" : : "r"((uint64_t)SEL_DATA_BASE));
	asm volatile("mov %%gs:16, %0" : "=r"(v));
	GUEST_ASSERT_EQ(v, 0x5e65e65e);
	GUEST_SYNC(2);
	asm volatile("push %q[s]\n\t" ASM_SAFE("pop %%fs") "add $8, %%rsp"
		     : ASM_SAFE_OUT : [s] "r"((uint64_t)SEL_DATA_NP)
		     : ASM_SAFE_CLOBBERS);
	GUEST_ASSERT_EX(NP_VECTOR, SEL_DATA_NP);
	/* POP DS/ES/SS do not exist in 64-bit mode: #UD. */
	asm volatile("push %q[s]\n\t" ASM_SAFE(".byte 0x1f") "add $8, %%rsp"
		     : ASM_SAFE_OUT : [s] "r"((uint64_t)TVM_KDS)
		     : ASM_SAFE_CLOBBERS);
	GUEST_ASSERT_EX(UD_VECTOR, 0);
	/* MOV to CS does not exist: #UD. */
	asm volatile(ASM_SAFE(".byte 0x8e, 0xc8") : ASM_SAFE_OUT : "a"(0x10)
		     : ASM_SAFE_CLOBBERS);
	GUEST_ASSERT_EX(UD_VECTOR, 0);
}

TEST_F(vmf, segments)
{
	struct trapvm_sregs sr;
	struct ucall uc;

	setup_spare_gdt(self->vm);
	tvm_enter(self->vm, guest_segments, 0);
	TVM_RUN_EXPECT(self->vm, &uc, UCALL_SYNC);
	ASSERT_EQ(0, ioctl(self->vm->vcpu, TRAPVM_GET_SREGS, &sr));
	EXPECT_EQ(SEL_DATA_NA, sr.ds.selector);
	EXPECT_EQ(0x3, sr.ds.type);
	EXPECT_EQ(1, sr.ds.present);
	TVM_RUN_EXPECT(self->vm, &uc, UCALL_SYNC);
	ASSERT_EQ(0, ioctl(self->vm->vcpu, TRAPVM_GET_SREGS, &sr));
	EXPECT_EQ(SEL_DATA_BASE, sr.fs.selector);
	EXPECT_EQ(FS_TEST_BASE, sr.fs.base);
	EXPECT_EQ(SEL_DATA_BASE, sr.gs.selector);
	EXPECT_EQ(FS_TEST_BASE, sr.gs.base);
	EXPECT_EQ(TVM_KDS, sr.ss.selector);
	EXPECT_EQ(TVM_KDS, sr.ds.selector);
	TVM_RUN_DONE(self->vm);
}

/* ---- far JMP/CALL/RET, IRETQ ---- */

struct __attribute__((packed)) farptr {
	uint64_t off;
	uint16_t sel;
};

static void guest_far(void)
{
	struct farptr fp;
	uint64_t ret, cs, sp, sp0, at;

	/* JMP m16:64 (REX.W FF /5) to the same CS. */
	asm volatile("leaq 1f(%%rip), %%rcx\n\t"
		     "movq %%rcx, (%[fp])\n\t"
		     "movw %[sel], 8(%[fp])\n\t"
		     "xorl %%ecx, %%ecx\n\t"
		     ".byte 0x48, 0xff, 0x28\n\t"	/* ljmp *(%rax) */
		     "ud2\n\t"
		     "1: movl $1, %%ecx\n\t"
		     "movq %%rcx, %[r]"
		     : [r] "=r"(ret) : [fp] "a"(&fp), [sel] "i"(TVM_KCS)
		     : "rcx", "memory");
	GUEST_ASSERT_EQ(ret, 1);
	/* ... to another 64-bit code segment, then back. */
	fp.sel = SEL_CODE_RX;
	asm volatile("leaq 1f(%%rip), %%rcx\n\t"
		     "movq %%rcx, (%[fp])\n\t"
		     ".byte 0x48, 0xff, 0x28\n\t"
		     "ud2\n\t"
		     "1:"
		     : : [fp] "a"(&fp) : "rcx", "memory");
	GUEST_SYNC(SEL_CODE_RX);
	fp.sel = TVM_KCS;
	asm volatile("leaq 1f(%%rip), %%rcx\n\t"
		     "movq %%rcx, (%[fp])\n\t"
		     ".byte 0x48, 0xff, 0x28\n\t"
		     "ud2\n\t"
		     "1:"
		     : : [fp] "a"(&fp) : "rcx", "memory");
	GUEST_SYNC(TVM_KCS);
	/* A data segment is #GP(sel), a not-present code segment #NP. */
	fp.sel = TVM_KDS;
	asm volatile(ASM_SAFE(".byte 0x48, 0xff, 0x28") : ASM_SAFE_OUT
		     : "a"(&fp) : ASM_SAFE_CLOBBERS);
	GUEST_ASSERT_EX(GP_VECTOR, TVM_KDS);
	fp.sel = SEL_CODE_NP;
	asm volatile(ASM_SAFE(".byte 0x48, 0xff, 0x28") : ASM_SAFE_OUT
		     : "a"(&fp) : ASM_SAFE_CLOBBERS);
	GUEST_ASSERT_EX(NP_VECTOR, SEL_CODE_NP);
	fp.sel = 0;
	asm volatile(ASM_SAFE(".byte 0x48, 0xff, 0x28") : ASM_SAFE_OUT
		     : "a"(&fp) : ASM_SAFE_CLOBBERS);
	GUEST_ASSERT_EX(GP_VECTOR, 0);

	/*
	 * CALL m16:64 (REX.W FF /3) pushes CS then RIP, 8 bytes each;
	 * far RET (REX.W CB) pops them.
	 */
	fp.sel = TVM_KCS;
	asm volatile("movq %%rsp, %[sp0]\n\t"
		     "leaq 1f(%%rip), %%rcx\n\t"
		     "movq %%rcx, (%[fp])\n\t"
		     "leaq 2f(%%rip), %[at]\n\t"
		     ".byte 0x48, 0xff, 0x18\n\t"	/* lcall *(%rax) */
		     "2: jmp 3f\n\t"
		     "1: movq (%%rsp), %[ret]\n\t"
		     "movq 8(%%rsp), %[cs]\n\t"
		     "movq %%rsp, %[sp]\n\t"
		     ".byte 0x48, 0xcb\n\t"		/* lretq */
		     "ud2\n\t"
		     "3:"
		     : [ret] "=&r"(ret), [cs] "=&r"(cs), [sp] "=&r"(sp),
		       [sp0] "=&r"(sp0), [at] "=&r"(at)
		     : [fp] "a"(&fp) : "rcx", "memory");
	GUEST_ASSERT_EQ(ret, at);
	GUEST_ASSERT_EQ(cs, TVM_KCS);
	GUEST_ASSERT_EQ(sp, sp0 - 16);

	/* IRETQ to CPL0: pops RIP, CS, RFLAGS, RSP, SS (64-bit mode). */
	asm volatile("movq %%rsp, %[sp0]\n\t"
		     "pushq $0x18\n\t"
		     "leaq -64(%%rsp), %%rcx\n\t"
		     "pushq %%rcx\n\t"
		     "pushq $0x203\n\t"			/* IF, CF */
		     "pushq $0x10\n\t"
		     "leaq 1f(%%rip), %%rcx\n\t"
		     "pushq %%rcx\n\t"
		     "iretq\n\t"
		     "1: movq %%rsp, %[sp]\n\t"
		     "setc %b[ret]\n\t"
		     "movq %[sp0], %%rsp"
		     : [sp0] "=&r"(sp0), [sp] "=&r"(sp), [ret] "=&q"(ret)
		     : : "rcx", "memory");
	GUEST_ASSERT_EQ(sp, sp0 - 8 - 64);
	GUEST_ASSERT_EQ(ret & 1, 1);
	GUEST_ASSERT_EQ(guest_read_vif(), X86_EFLAGS_IF);
	asm volatile("cli");
	/* IRETQ to a data selector is #GP(sel); non-canonical RIP #GP(0). */
	asm volatile("movq %%rsp, %%rdx\n\t"
		     "pushq $0x18\n\t"
		     "pushq %%rdx\n\t"
		     "pushq $2\n\t"
		     "pushq $0x18\n\t"
		     "leaq 1f(%%rip), %%rcx\n\t"
		     "pushq %%rcx\n\t"
		     ASM_SAFE("iretq")
		     "movq %%rdx, %%rsp\n\t"
		     : ASM_SAFE_OUT : : "rcx", "rdx", ASM_SAFE_CLOBBERS);
	GUEST_ASSERT_EX(GP_VECTOR, TVM_KDS);
	asm volatile("movq %%rsp, %%rdx\n\t"
		     "pushq $0x18\n\t"
		     "pushq %%rdx\n\t"
		     "pushq $2\n\t"
		     "pushq $0x10\n\t"
		     "pushq %[nc]\n\t"
		     ASM_SAFE("iretq")
		     "movq %%rdx, %%rsp\n\t"
		     : ASM_SAFE_OUT : [nc] "r"(NONCANON)
		     : "rdx", ASM_SAFE_CLOBBERS);
	GUEST_ASSERT_EX(GP_VECTOR, 0);
}

TEST_F(vmf, far_transfers)
{
	struct trapvm_sregs sr;
	struct ucall uc;

	setup_spare_gdt(self->vm);
	tvm_enter(self->vm, guest_far, 0);
	TVM_RUN_EXPECT(self->vm, &uc, UCALL_SYNC);
	ASSERT_EQ(0, ioctl(self->vm->vcpu, TRAPVM_GET_SREGS, &sr));
	EXPECT_EQ(SEL_CODE_RX, sr.cs.selector);
	EXPECT_EQ(0, sr.cpl);
	TVM_RUN_EXPECT(self->vm, &uc, UCALL_SYNC);
	ASSERT_EQ(0, ioctl(self->vm->vcpu, TRAPVM_GET_SREGS, &sr));
	EXPECT_EQ(TVM_KCS, sr.cs.selector);
	TVM_RUN_DONE(self->vm);
}

/* IRETQ and far RET to CPL3: what user mode sees. */
static uint64_t user_where(uint64_t arg)
{
	asm volatile(ASM_SAFE("ud2") : ASM_SAFE_OUT : : ASM_SAFE_CLOBBERS);
	return guest_last_ex.cs | (guest_last_ex.ss << 16);
}

/* Like guest_run_user(), with a far RET (REX.W CB) instead of IRETQ. */
uint64_t lret_to_user(void *fn, uint64_t arg);
asm(".pushsection .text\n"
    "lret_to_user:\n\t"
    "pushq %rbx; pushq %rbp; pushq %r12; pushq %r13; pushq %r14; pushq %r15\n\t"
    "movq %rsp, guest_user_kernel_rsp(%rip)\n\t"
    "pushq $0x2b\n\t"
    "pushq $0x1f0000\n\t"
    "pushq $0x33\n\t"
    "leaq guest_user_trampoline(%rip), %rax\n\t"
    "pushq %rax\n\t"
    "movq %rdi, %rax\n\t"
    "movq %rsi, %rdi\n\t"
    ".byte 0x48, 0xcb\n\t"
    ".popsection");

static void guest_to_user(void)
{
	GUEST_ASSERT_EQ(guest_run_user(user_where, 0, 0x202),
			TVM_UCS | (TVM_UDS << 16));
	GUEST_ASSERT(guest_last_ex.rflags & X86_EFLAGS_IF);
	GUEST_ASSERT(guest_last_ex.rsp < TVM_USTACK_TOP &&
		     guest_last_ex.rsp > TVM_USTACK_TOP - 4096);
	/* IRETQ to CPL3 with IF=0 in the image: the user runs with IF=0. */
	GUEST_ASSERT_EQ(guest_run_user(user_where, 0, 0x2),
			TVM_UCS | (TVM_UDS << 16));
	GUEST_ASSERT_EQ(guest_last_ex.rflags & X86_EFLAGS_IF, 0);
	GUEST_ASSERT_EQ(lret_to_user(user_where, 0),
			TVM_UCS | (TVM_UDS << 16));
	GUEST_ASSERT(guest_last_ex.rsp < TVM_USTACK_TOP &&
		     guest_last_ex.rsp > TVM_USTACK_TOP - 4096);
}

TEST_F(vmf, iret_lret_to_cpl3)
{
	tvm_enter(self->vm, guest_to_user, 0);
	TVM_RUN_DONE(self->vm);
}

/* ---- SYSCALL / SYSRETQ / SWAPGS ---- */

uint64_t sys_rcx, sys_r11, sys_rsp;
static volatile uint64_t user_ret, user_flags;
static volatile struct guest_ex kernel_frame;

/* LSTAR: note RCX, R11, RSP and the frame of a #UD, then SYSRETQ. */
void syscall_entry(void);
asm(".pushsection .text\n"
    "syscall_entry:\n\t"
    "movq %rcx, sys_rcx(%rip)\n\t"
    "movq %r11, sys_r11(%rip)\n\t"
    "movq %rsp, sys_rsp(%rip)\n\t"
    "leaq 1f(%rip), %rax\n\t"
    "movq %rax, guest_ex_fixup(%rip)\n\t"
    "ud2\n"
    "1:\tmovq sys_rcx(%rip), %rcx\n\t"
    "movq sys_r11(%rip), %r11\n\t"
    "sysretq\n\t"
    ".popsection");

static uint64_t user_syscall(uint64_t arg)
{
	uint64_t ret_rip, flags;

	asm volatile("std\n\t"
		     "pushfq\n\t"
		     "popq %[fl]\n\t"
		     "leaq 1f(%%rip), %[r]\n\t"
		     "syscall\n\t"
		     "1: cld"
		     : [r] "=&r"(ret_rip), [fl] "=&r"(flags)
		     : : "rax", "rcx", "r11", "memory");
	user_ret = ret_rip;
	user_flags = flags;
	kernel_frame.cs = guest_last_ex.cs;
	kernel_frame.ss = guest_last_ex.ss;
	kernel_frame.rflags = guest_last_ex.rflags;
	kernel_frame.rsp = guest_last_ex.rsp;
	/* Back in user mode: where are we? */
	asm volatile(ASM_SAFE("ud2") : ASM_SAFE_OUT : : ASM_SAFE_CLOBBERS);
	return 0;
}

static uint64_t user_syscall_ud(uint64_t arg)
{
	asm volatile(ASM_SAFE("syscall") : ASM_SAFE_OUT : :
		     "rcx", ASM_SAFE_CLOBBERS);
	return guest_last_ex.vector;
}

static void guest_syscall(void)
{
	const uint64_t fmask = X86_EFLAGS_IF | X86_EFLAGS_DF | X86_EFLAGS_TF |
			       X86_EFLAGS_AC;
	uint64_t v;

	guest_wrmsr(MSR_STAR, (0x10ULL << 32) | (0x23ULL << 48));
	guest_wrmsr(MSR_LSTAR, (uint64_t)syscall_entry);
	guest_wrmsr(MSR_SFMASK, fmask);
	guest_run_user(user_syscall, 0, 0x202);

	/* SYSCALL: RCX = next RIP, R11 = RFLAGS (SDM Vol. 2 SYSCALL). */
	GUEST_ASSERT_EQ(sys_rcx, user_ret);
	GUEST_ASSERT_EQ(sys_r11, user_flags);
	GUEST_ASSERT(user_flags & X86_EFLAGS_DF);
	GUEST_ASSERT(user_flags & X86_EFLAGS_IF);
	/* CS = STAR[47:32], SS = +8, RFLAGS &= ~FMASK, RSP unchanged. */
	GUEST_ASSERT_EQ(kernel_frame.cs, TVM_KCS);
	GUEST_ASSERT_EQ(kernel_frame.ss, TVM_KDS);
	GUEST_ASSERT_EQ(kernel_frame.rflags & fmask, 0);
	GUEST_ASSERT_EQ(kernel_frame.rsp, sys_rsp);
	GUEST_ASSERT(sys_rsp < TVM_USTACK_TOP &&
		     sys_rsp > TVM_USTACK_TOP - 4096);
	/* SYSRETQ: CS = STAR[63:48] + 16 | 3, SS = + 8 | 3, RFLAGS = R11. */
	GUEST_ASSERT_EQ(guest_last_ex.cs, TVM_UCS);
	GUEST_ASSERT_EQ(guest_last_ex.ss, TVM_UDS);
	GUEST_ASSERT(guest_last_ex.rflags & X86_EFLAGS_IF);
	GUEST_ASSERT_EQ(guest_last_ex.rflags & X86_EFLAGS_DF, 0);

	/* SYSRETQ to a non-canonical RCX is #GP(0) at CPL0 (Intel). */
	asm volatile("movq %[nc], %%rcx\n\t" ASM_SAFE("sysretq")
		     : ASM_SAFE_OUT : [nc] "r"(NONCANON)
		     : "rcx", ASM_SAFE_CLOBBERS);
	GUEST_ASSERT_EX(GP_VECTOR, 0);
	GUEST_ASSERT_EQ(guest_last_ex.cs, TVM_KCS);

	/* EFER.SCE = 0: SYSCALL is #UD. */
	guest_wrmsr(MSR_EFER, 0xd00);
	GUEST_ASSERT_EQ(guest_run_user(user_syscall_ud, 0, 0x202), UD_VECTOR);
	GUEST_ASSERT_EQ(guest_last_ex.rip, guest_ex_insn);
	guest_wrmsr(MSR_EFER, 0xd01);

	/* SWAPGS exchanges GS.base and KERNEL_GS_BASE. */
	*(volatile uint64_t *)(FS_TEST_BASE + 0x10) = 0xaaaa;
	*(volatile uint64_t *)(FS_TEST_BASE + 0x1010) = 0xbbbb;
	guest_wrmsr(MSR_GS_BASE, FS_TEST_BASE);
	guest_wrmsr(MSR_KERNEL_GS_BASE, FS_TEST_BASE + 0x1000);
	asm volatile("mov %%gs:0x10, %0" : "=r"(v));
	GUEST_ASSERT_EQ(v, 0xaaaa);
	asm volatile("swapgs");
	GUEST_ASSERT_EQ(guest_rdmsr(MSR_GS_BASE), FS_TEST_BASE + 0x1000);
	GUEST_ASSERT_EQ(guest_rdmsr(MSR_KERNEL_GS_BASE), FS_TEST_BASE);
	asm volatile("mov %%gs:0x10, %0" : "=r"(v));
	GUEST_ASSERT_EQ(v, 0xbbbb);
	asm volatile("swapgs");
	asm volatile("mov %%gs:0x10, %0" : "=r"(v));
	GUEST_ASSERT_EQ(v, 0xaaaa);
}

TEST_F(vmf, syscall_sysret_swapgs)
{
	tvm_enter(self->vm, guest_syscall, 0);
	TVM_RUN_DONE(self->vm);
}

/* ---- INT n, INT3, INT1 and gate DPLs ---- */

static volatile uint64_t int_count, int_rip, int_cs, int_ss;

static void int_handler(struct ex_regs *regs)
{
	int_count++;
	int_rip = regs->rip;
	int_cs = regs->cs;
	int_ss = regs->ss;
}

static uint64_t user_int(uint64_t which)
{
	switch (which) {
	case 0x50:
		asm volatile(ASM_SAFE("int $0x50") : ASM_SAFE_OUT : :
			     ASM_SAFE_CLOBBERS);
		break;
	case 0x51:
		asm volatile(ASM_SAFE("int $0x51") : ASM_SAFE_OUT : :
			     ASM_SAFE_CLOBBERS);
		break;
	case 3:
		asm volatile(ASM_SAFE("int3") : ASM_SAFE_OUT : :
			     ASM_SAFE_CLOBBERS);
		break;
	case 0x103:	/* INT 3 in its two-byte form */
		asm volatile(ASM_SAFE(".byte 0xcd, 0x03") : ASM_SAFE_OUT : :
			     ASM_SAFE_CLOBBERS);
		break;
	case 1:
		asm volatile(ASM_SAFE(".byte 0xf1") : ASM_SAFE_OUT : :
			     ASM_SAFE_CLOBBERS);
		break;
	}
	return guest_last_ex.vector;
}

static void guest_int(void)
{
	uint64_t next;

	guest_handlers[0x50] = int_handler;
	guest_handlers[0x51] = int_handler;
	guest_set_stub_gate(0x51, GATE_INTR, 3, 0);

	/* INT n at CPL0, DPL0 gate: delivered, RIP after the INT. */
	asm volatile("leaq 1f(%%rip), %0\n\tint $0x50\n1:" : "=r"(next));
	GUEST_ASSERT_EQ(int_count, 1);
	GUEST_ASSERT_EQ(int_rip, next);
	GUEST_ASSERT_EQ(int_cs, TVM_KCS);

	/* From CPL3 through a DPL0 gate: #GP(vector * 8 + 2). */
	GUEST_ASSERT_EQ(guest_run_user(user_int, 0x50, 0x202), GP_VECTOR);
	GUEST_ASSERT_EQ(guest_last_ex.error_code, 0x50 * 8 + 2);
	GUEST_ASSERT_EQ(guest_last_ex.rip, guest_ex_insn);
	GUEST_ASSERT_EQ(int_count, 1);
	/* Through a DPL3 gate: delivered with the user's CS/SS. */
	GUEST_ASSERT_EQ(guest_run_user(user_int, 0x51, 0x202), 0x51);
	GUEST_ASSERT_EQ(guest_last_ex.rip, guest_ex_insn + 2);
	GUEST_ASSERT_EQ(guest_last_ex.cs, TVM_UCS);
	GUEST_ASSERT_EQ(guest_last_ex.ss, TVM_UDS);
	GUEST_ASSERT_EQ(guest_last_ex.error_code, 0);
	/* ... at the TSS's RSP0 (SDM Vol. 3 6.14.2: 16-byte aligned). */
	GUEST_ASSERT_EQ(guest_last_ex.frame, TVM_RSP0_TOP - 40);

	/* INT3 and INT 3 check the DPL too (SDM Vol. 3 6.12.1.1). */
	GUEST_ASSERT_EQ(guest_run_user(user_int, 3, 0x202), GP_VECTOR);
	GUEST_ASSERT_EQ(guest_last_ex.error_code, 3 * 8 + 2);
	GUEST_ASSERT_EQ(guest_last_ex.rip, guest_ex_insn);
	GUEST_ASSERT_EQ(guest_run_user(user_int, 0x103, 0x202), GP_VECTOR);
	GUEST_ASSERT_EQ(guest_last_ex.error_code, 3 * 8 + 2);
	guest_set_stub_gate(BP_VECTOR, GATE_INTR, 3, 0);
	/* #BP is a trap: RIP after the INT3. */
	GUEST_ASSERT_EQ(guest_run_user(user_int, 3, 0x202), BP_VECTOR);
	GUEST_ASSERT_EQ(guest_last_ex.rip, guest_ex_insn + 1);
	GUEST_ASSERT_EQ(guest_last_ex.cs, TVM_UCS);
	GUEST_ASSERT_EQ(guest_run_user(user_int, 0x103, 0x202), BP_VECTOR);
	GUEST_ASSERT_EQ(guest_last_ex.rip, guest_ex_insn + 2);
	/* INT1 (ICEBP) has no DPL check: #DB through a DPL0 gate. */
	GUEST_ASSERT_EQ(guest_run_user(user_int, 1, 0x202), DB_VECTOR);
	GUEST_ASSERT_EQ(guest_last_ex.rip, guest_ex_insn + 1);
	GUEST_ASSERT_EQ(guest_last_ex.error_code, 0);
	/* INT3 at CPL0. */
	asm volatile(ASM_SAFE("int3") : ASM_SAFE_OUT : : ASM_SAFE_CLOBBERS);
	GUEST_ASSERT_EQ(guest_last_ex.vector, BP_VECTOR);
	GUEST_ASSERT_EQ(guest_last_ex.rip, guest_ex_insn + 1);
	GUEST_ASSERT_EQ(guest_last_ex.cs, TVM_KCS);
	/* INTO does not exist in 64-bit mode. */
	asm volatile(ASM_SAFE(".byte 0xce") : ASM_SAFE_OUT : :
		     ASM_SAFE_CLOBBERS);
	GUEST_ASSERT_EX(UD_VECTOR, 0);
}

TEST_F(vmf, int_n)
{
	tvm_enter(self->vm, guest_int, 0);
	TVM_RUN_DONE(self->vm);
}

/* ---- IN/OUT/INS/OUTS ---- */

static const char io_msg[] = "hello trapvm!";
static uint16_t io_words[8];

static void guest_io(void)
{
	uint64_t rax, rsi, rdi, rcx;

	asm volatile("outb %%al, $0x80" : : "a"(0x1122334455667712ULL));
	asm volatile("outw %%ax, %%dx" : : "a"(0x3456), "d"(0x1234));
	asm volatile("outl %%eax, %%dx" : : "a"(0x789abcde), "d"(0x1238));
	/* IN of 8/16 bits leaves the rest of RAX; 32 bits zero-extends. */
	rax = 0x1122334455667700ULL;
	asm volatile("inb $0x71, %%al" : "+a"(rax));
	GUEST_ASSERT_EQ(rax, 0x11223344556677a5ULL);
	rax = 0x1122334455667700ULL;
	asm volatile("inw %%dx, %%ax" : "+a"(rax) : "d"(0x72));
	GUEST_ASSERT_EQ(rax, 0x112233445566beefULL);
	rax = 0x1122334455667700ULL;
	asm volatile("inl %%dx, %%eax" : "+a"(rax) : "d"(0x74));
	GUEST_ASSERT_EQ(rax, 0xdeadbeefULL);
	/* REP OUTSB: RSI advances, RCX counts down to 0. */
	rsi = (uint64_t)io_msg;
	rcx = sizeof(io_msg) - 1;
	asm volatile("rep outsb" : "+S"(rsi), "+c"(rcx) : "d"(0x3f8)
		     : "memory");
	GUEST_ASSERT_EQ(rsi, (uint64_t)io_msg + sizeof(io_msg) - 1);
	GUEST_ASSERT_EQ(rcx, 0);
	/* REP INSW into memory. */
	rdi = (uint64_t)io_words;
	rcx = 4;
	asm volatile("rep insw" : "+D"(rdi), "+c"(rcx) : "d"(0x60)
		     : "memory");
	GUEST_ASSERT_EQ(rdi, (uint64_t)io_words + 8);
	GUEST_ASSERT_EQ(rcx, 0);
	GUEST_ASSERT_EQ(io_words[0], 0x1001);
	GUEST_ASSERT_EQ(io_words[3], 0x4004);
	GUEST_ASSERT_EQ(io_words[4], 0);
	/* OUTSW with DF=1 walks down. */
	io_words[5] = 0x5555;
	rsi = (uint64_t)&io_words[5];
	asm volatile("std; outsw; cld" : "+S"(rsi) : "d"(0x62) : "memory");
	GUEST_ASSERT_EQ(rsi, (uint64_t)&io_words[4]);
}

struct io_expect {
	uint8_t dir, size;
	uint16_t port;
	uint32_t bytes;
	uint64_t data;		/* OUT: expected; IN: what the test answers */
};

TEST_F(vmf, port_io)
{
	static const struct io_expect want[] = {
		{ TRAPVM_EXIT_IO_OUT, 1, 0x80, 1, 0x12 },
		{ TRAPVM_EXIT_IO_OUT, 2, 0x1234, 2, 0x3456 },
		{ TRAPVM_EXIT_IO_OUT, 4, 0x1238, 4, 0x789abcde },
		{ TRAPVM_EXIT_IO_IN, 1, 0x71, 1, 0xa5 },
		{ TRAPVM_EXIT_IO_IN, 2, 0x72, 2, 0xbeef },
		{ TRAPVM_EXIT_IO_IN, 4, 0x74, 4, 0xdeadbeef },
		{ TRAPVM_EXIT_IO_OUT, 1, 0x3f8, 13, 0 },	/* io_msg */
		{ TRAPVM_EXIT_IO_IN, 2, 0x60, 8, 0 },		/* 0x1001.. */
		{ TRAPVM_EXIT_IO_OUT, 2, 0x62, 2, 0x5555 },
	};
	struct trapvm_run *run = self->vm->run;
	unsigned int i = 0, done = 0, k;
	uint8_t got[64];
	struct ucall uc;

	tvm_enter(self->vm, guest_io, 0);
	while (i < sizeof(want) / sizeof(want[0])) {
		uint8_t *data;
		uint32_t n;

		ASSERT_EQ(0, tvm_run(self->vm));
		data = (uint8_t *)run + run->io.data_offset;
		ASSERT_EQ(TRAPVM_EXIT_IO, run->exit_reason)
			TH_LOG("step %u: %s", i, tvm_describe(self->vm, &uc));
		ASSERT_EQ(UCALL_NONE, tvm_get_ucall(self->vm, &uc))
			TH_LOG("step %u: %s", i, tvm_describe(self->vm, &uc));
		EXPECT_EQ(want[i].dir, run->io.direction) TH_LOG("step %u", i);
		EXPECT_EQ(want[i].size, run->io.size) TH_LOG("step %u", i);
		EXPECT_EQ(want[i].port, run->io.port) TH_LOG("step %u", i);
		ASSERT_LE(1, run->io.count);
		n = run->io.count * run->io.size;
		ASSERT_LE(done + n, want[i].bytes) TH_LOG("step %u", i);
		if (want[i].dir == TRAPVM_EXIT_IO_OUT) {
			memcpy(got + done, data, n);
		} else {
			for (k = 0; k < n; k++) {
				uint64_t v = want[i].data;

				if (i == 7)	/* words 0x1001, 0x2002, ... */
					v = 0x1001 * ((done + k) / 2 + 1);
				data[k] = v >> (8 * ((done + k) %
						     (i == 7 ? 2 : 8)));
			}
		}
		done += n;
		if (done < want[i].bytes)
			continue;	/* a string split into several exits */
		if (want[i].dir == TRAPVM_EXIT_IO_OUT) {
			if (i == 6) {
				EXPECT_EQ(0, memcmp(got, io_msg, 13));
			} else {
				uint64_t v = 0;

				memcpy(&v, got, want[i].bytes);
				EXPECT_EQ(want[i].data, v) TH_LOG("step %u", i);
			}
		}
		i++;
		done = 0;
	}
	TVM_RUN_DONE(self->vm);
}

/* ---- loads and stores to device memory (MMIO exits) ---- */

#define MMIO_VA		0x60000000ULL
#define MMIO_GPA	0xfed01000ULL	/* far outside the VM's RAM */

static void guest_mmio(void)
{
	volatile uint8_t *p = (volatile uint8_t *)MMIO_VA;
	uint64_t v;

	/* Stores: MOV r/m8, r8; MOV r/m16, imm16; MOV r/m32, r32; r/m64. */
	asm volatile("movb %b0, 1(%1)" : : "q"(0xa1), "r"(p) : "memory");
	asm volatile("movw $0xb2c3, 2(%0)" : : "r"(p) : "memory");
	asm volatile("movl %0, 4(%1)" : : "r"(0xd4e5f607), "r"(p) : "memory");
	asm volatile("movq %0, 8(%1)" : : "r"(0x0123456789abcdefULL), "r"(p)
		     : "memory");
	/* MOV r8: the other bits of the register stay (SDM Vol. 1 3.4.1.1). */
	asm volatile("movq $-1, %0; movb 0x10(%1), %b0" : "=&q"(v) : "r"(p)
		     : "memory");
	GUEST_ASSERT_EQ(v, 0xffffffffffffff88ULL);
	/* ... also AH (no REX prefix). */
	asm volatile("movq $-1, %%rax; movb 0x11(%1), %%ah; movq %%rax, %0"
		     : "=r"(v) : "Q"(p) : "rax", "memory");
	GUEST_ASSERT_EQ(v, 0xffffffffffff5affULL);
	/* MOV r32 zero-extends into the 64-bit register. */
	asm volatile("movq $-1, %0; movl 0x14(%1), %k0" : "=&r"(v) : "r"(p)
		     : "memory");
	GUEST_ASSERT_EQ(v, 0x89abcdefULL);
	asm volatile("movq 0x18(%1), %0" : "=r"(v) : "r"(p) : "memory");
	GUEST_ASSERT_EQ(v, 0x1122334455667788ULL);
	/* MOVZX r32, m8 / m16; MOVSX r64, m8; MOVSXD r64, m32. */
	asm volatile("movq $-1, %0; movzbl 0x20(%1), %k0" : "=&r"(v)
		     : "r"(p) : "memory");
	GUEST_ASSERT_EQ(v, 0x99ULL);
	asm volatile("movq $-1, %0; movzwl 0x22(%1), %k0" : "=&r"(v)
		     : "r"(p) : "memory");
	GUEST_ASSERT_EQ(v, 0xfedcULL);
	asm volatile("movsbq 0x24(%1), %0" : "=r"(v) : "r"(p) : "memory");
	GUEST_ASSERT_EQ(v, 0xffffffffffffff80ULL);
	asm volatile("movslq 0x28(%1), %0" : "=r"(v) : "r"(p) : "memory");
	GUEST_ASSERT_EQ(v, 0xffffffff80000001ULL);
	GUEST_SYNC(0);
	/* A string store to device memory: not emulated, the VM stops. */
	asm volatile("movb $0x42, %%al; stosb" : "+D"(p) : : "rax", "memory");
	GUEST_ASSERT(0);
}

TEST_F(vmf, mmio)
{
	static const struct {
		uint8_t write, len, off;
		uint64_t data;
	} want[] = {
		{ 1, 1, 0x01, 0xa1 },
		{ 1, 2, 0x02, 0xb2c3 },
		{ 1, 4, 0x04, 0xd4e5f607 },
		{ 1, 8, 0x08, 0x0123456789abcdefULL },
		{ 0, 1, 0x10, 0x88 },
		{ 0, 1, 0x11, 0x5a },
		{ 0, 4, 0x14, 0x89abcdef },
		{ 0, 8, 0x18, 0x1122334455667788ULL },
		{ 0, 1, 0x20, 0x99 },
		{ 0, 2, 0x22, 0xfedc },
		{ 0, 1, 0x24, 0x80 },
		{ 0, 4, 0x28, 0x80000001 },
	};
	struct trapvm_run *run = self->vm->run;
	struct trapvm_vcpu_stats st;
	struct ucall uc;
	unsigned int i;

	ASSERT_GT(MMIO_GPA, self->vm->mem_size);
	tvm_map(self->vm, MMIO_VA, MMIO_GPA, PTE_P | PTE_W);
	tvm_enter(self->vm, guest_mmio, 0);
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		uint64_t v = 0;

		ASSERT_EQ(0, tvm_run(self->vm));
		ASSERT_EQ(TRAPVM_EXIT_MMIO, run->exit_reason)
			TH_LOG("step %u: %s", i, tvm_describe(self->vm, &uc));
		EXPECT_EQ(MMIO_GPA + want[i].off, run->mmio.phys_addr)
			TH_LOG("step %u", i);
		EXPECT_EQ(want[i].len, run->mmio.len) TH_LOG("step %u", i);
		EXPECT_EQ(want[i].write, run->mmio.is_write)
			TH_LOG("step %u", i);
		if (want[i].write) {
			memcpy(&v, run->mmio.data, sizeof(v));
			EXPECT_EQ(want[i].data, v) TH_LOG("step %u", i);
		} else {
			v = want[i].data;
			memcpy(run->mmio.data, &v, sizeof(v));
		}
	}
	TVM_RUN_EXPECT(self->vm, &uc, UCALL_SYNC);
	ASSERT_EQ(0, ioctl(self->vm->vcpu, TRAPVM_GET_STATS, &st));
	EXPECT_EQ(i, st.count[TRAPVM_STAT_EXIT_USER_MMIO]);
	/* STOS to MMIO: no device access can express it. */
	ASSERT_EQ(0, tvm_run(self->vm));
	ASSERT_EQ(TRAPVM_EXIT_INTERNAL_ERROR, run->exit_reason)
		TH_LOG("%s", tvm_describe(self->vm, &uc));
	EXPECT_EQ(TRAPVM_INTERNAL_ERROR_EMULATION, run->internal.suberror);
}

/* ---- INVLPG, CR3 reloads, WBINVD, INVD, XSETBV ---- */

#define TLB_VA		0x40000000ULL

static void guest_tlb(uint64_t pte_addr)
{
	volatile uint64_t *pte = (volatile uint64_t *)pte_addr;
	volatile uint64_t *va = (volatile uint64_t *)TLB_VA;
	uint64_t a = *pte, b = a + 0x1000;

	GUEST_ASSERT_EQ(*va, 0xaaaa);
	/* After INVLPG the new translation must be used. */
	*pte = b;
	asm volatile("invlpg (%0)" : : "r"(va) : "memory");
	GUEST_ASSERT_EQ(*va, 0xbbbb);
	/* ... and after a CR3 load. */
	*pte = a;
	asm volatile("mov %%cr3, %%rax; mov %%rax, %%cr3" : : : "rax",
		     "memory");
	GUEST_ASSERT_EQ(*va, 0xaaaa);
	/* Not present after INVLPG: #PF, error code 0 (read, not present). */
	*pte = 0;
	asm volatile("invlpg (%0)" : : "r"(va) : "memory");
	asm volatile(ASM_SAFE("movq (%[p]), %%rax") : ASM_SAFE_OUT
		     : [p] "r"(va) : "rax", ASM_SAFE_CLOBBERS);
	GUEST_ASSERT_EX(PF_VECTOR, 0);
	GUEST_ASSERT_EQ(guest_last_ex.cr2, TLB_VA);
	*pte = b;
	asm volatile("invlpg (%0)" : : "r"(va) : "memory");
	GUEST_ASSERT_EQ(*va, 0xbbbb);
	/* A non-canonical INVLPG operand is a NOP (SDM Vol. 2 INVLPG). */
	asm volatile(ASM_SAFE("invlpg (%[p])") : ASM_SAFE_OUT
		     : [p] "r"(NONCANON) : ASM_SAFE_CLOBBERS);
	GUEST_ASSERT_NO_EX();
	/* WBINVD and INVD at CPL0 just complete. */
	asm volatile(ASM_SAFE("wbinvd") : ASM_SAFE_OUT : : ASM_SAFE_CLOBBERS);
	GUEST_ASSERT_NO_EX();
	asm volatile(ASM_SAFE("invd") : ASM_SAFE_OUT : : ASM_SAFE_CLOBBERS);
	GUEST_ASSERT_NO_EX();
}

TEST_F(vmf, invlpg_cr3_wbinvd)
{
	uint64_t pages = tvm_alloc(self->vm, 2);

	*(uint64_t *)tvm_gpa(self->vm, pages) = 0xaaaa;
	*(uint64_t *)tvm_gpa(self->vm, pages + 4096) = 0xbbbb;
	tvm_map(self->vm, TLB_VA, pages, PTE_P | PTE_W);
	/* Page-table pages are identity mapped: the PTE's GPA is its VA. */
	tvm_enter(self->vm, guest_tlb,
		  (uint8_t *)tvm_pte(self->vm, TLB_VA, false) - self->vm->ram);
	TVM_RUN_DONE(self->vm);
}

static uint64_t xsetbv_safe(uint32_t xcr, uint64_t val)
{
	asm volatile(ASM_SAFE("xsetbv") : ASM_SAFE_OUT
		     : "c"(xcr), "a"((uint32_t)val),
		       "d"((uint32_t)(val >> 32)) : ASM_SAFE_CLOBBERS);
	return guest_last_ex.vector;
}

static void guest_xsetbv(void)
{
	uint32_t a, b, c, d;
	uint64_t cr4 = rd_cr(4);

	/* Without CR4.OSXSAVE, XSETBV is #UD. */
	GUEST_ASSERT_EQ(xsetbv_safe(0, 3), UD_VECTOR);
	GUEST_ASSERT_EX(UD_VECTOR, 0);
	asm volatile("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d)
		     : "a"(1), "c"(0));
	if (!(c & (1u << 26))) {
		GUEST_SYNC(0);	/* no XSAVE on this CPU */
		return;
	}
	if (wr_cr_safe(4, cr4 | CR4_OSXSAVE) != 0xff) {
		GUEST_SYNC(1);	/* the vCPU does not offer OSXSAVE */
		return;
	}
	GUEST_ASSERT_EQ(rd_cr(4), cr4 | CR4_OSXSAVE);
	/* x87|SSE is always valid. */
	GUEST_ASSERT_EQ(xsetbv_safe(0, 3), 0xff);
	/* Only XCR0 exists; x87 must stay set; AVX needs SSE; bit 63. */
	GUEST_ASSERT_EQ(xsetbv_safe(1, 3), GP_VECTOR);
	GUEST_ASSERT_EX(GP_VECTOR, 0);
	GUEST_ASSERT_EQ(xsetbv_safe(0, 2), GP_VECTOR);
	GUEST_ASSERT_EX(GP_VECTOR, 0);
	GUEST_ASSERT_EQ(xsetbv_safe(0, 5), GP_VECTOR);
	GUEST_ASSERT_EX(GP_VECTOR, 0);
	GUEST_ASSERT_EQ(xsetbv_safe(0, 3 | (1ULL << 63)), GP_VECTOR);
	GUEST_ASSERT_EX(GP_VECTOR, 0);
	/* SSE still works after XSETBV(0, 3). */
	asm volatile("movq %0, %%xmm3; movq %%xmm3, %0" : "+r"(cr4)
		     : : "xmm3");
	GUEST_SYNC(2);
}

TEST_F(vmf, xsetbv)
{
	struct ucall uc;

	tvm_enter(self->vm, guest_xsetbv, 0);
	TVM_RUN_EXPECT(self->vm, &uc, UCALL_SYNC);
	if (uc.args[0] == 0)
		SKIP(return, "the CPU has no XSAVE");
	if (uc.args[0] == 1)
		SKIP(return, "the vCPU refuses CR4.OSXSAVE (host without it)");
	TVM_RUN_DONE(self->vm);
}

TEST_HARNESS_MAIN
