// SPDX-License-Identifier: GPL-2.0
/*
 * exception_test: exception and interrupt delivery through the guest's
 * own IDT, checked against the Intel SDM Vol. 3 chapter 6 (and 4.7 for
 * page-fault error codes): interrupt vs trap gates and virtual IF, IST
 * stacks, the CPL switch to TSS.RSP0 and the frame it builds, 16-byte
 * stack alignment, error codes, not-present and invalid gates, the IDT
 * limit, double faults and triple faults (a SHUTDOWN exit for that VM
 * only), and #PF error codes and CR2.
 *
 *   tools/testhost/run -- selftests/trapvm/exception_test
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>

#include <linux/trapvm.h>

#include "kselftest_harness.h"
#include "trapvm_test.h"

#define PF_P		(1u << 0)
#define PF_W		(1u << 1)
#define PF_U		(1u << 2)
#define PF_RSVD		(1u << 3)
#define PF_I		(1u << 4)

/* IDT error code: index << 3 | IDT (bit 1) | EXT (bit 0). */
#define IDT_ERR(v)	((v) * 8 + 2)

FIXTURE(vmf) {
	struct tvm *vm;
};

FIXTURE_SETUP(vmf)
{
	self->vm = tvm_create(0);
}

FIXTURE_TEARDOWN(vmf)
{
	tvm_free(self->vm);
}

/* ---- interrupt vs trap gates ---- */

static volatile uint64_t h_vif, h_frame_if, h_count;

static void if_handler(struct ex_regs *regs)
{
	h_count++;
	h_frame_if = regs->rflags & X86_EFLAGS_IF;
	h_vif = guest_read_vif();
}

static void guest_gate_types(void)
{
	guest_handlers[0x60] = if_handler;
	guest_handlers[0x61] = if_handler;
	guest_set_stub_gate(0x60, GATE_INTR, 0, 0);
	guest_set_stub_gate(0x61, GATE_TRAP, 0, 0);

	asm volatile("sti");
	/* Interrupt gate: IF cleared in the handler, pushed as it was. */
	asm volatile("int $0x60");
	GUEST_ASSERT_EQ(h_count, 1);
	GUEST_ASSERT_EQ(h_frame_if, X86_EFLAGS_IF);
	GUEST_ASSERT_EQ(h_vif, 0);
	/* IRETQ restored it. */
	GUEST_ASSERT_EQ(guest_read_vif(), X86_EFLAGS_IF);
	/* Trap gate: IF unchanged. */
	asm volatile("int $0x61");
	GUEST_ASSERT_EQ(h_count, 2);
	GUEST_ASSERT_EQ(h_frame_if, X86_EFLAGS_IF);
	GUEST_ASSERT_EQ(h_vif, X86_EFLAGS_IF);
	asm volatile("cli");
	/* With IF=0 both push IF=0 and leave it 0. */
	asm volatile("int $0x61");
	GUEST_ASSERT_EQ(h_frame_if, 0);
	GUEST_ASSERT_EQ(h_vif, 0);
	asm volatile("int $0x60");
	GUEST_ASSERT_EQ(h_frame_if, 0);
	GUEST_ASSERT_EQ(h_vif, 0);
	/* Exceptions go through their gate type too (#UD via a trap gate). */
	guest_set_stub_gate(UD_VECTOR, GATE_TRAP, 0, 0);
	asm volatile("sti");
	GUEST_ASSERT_EQ(guest_read_vif(), X86_EFLAGS_IF);
	/* guest_read_vif() itself went through the trap gate: still IF=1. */
	asm volatile(ASM_SAFE("ud2") : ASM_SAFE_OUT : : ASM_SAFE_CLOBBERS);
	GUEST_ASSERT_EQ(guest_last_ex.rflags & X86_EFLAGS_IF, X86_EFLAGS_IF);
	asm volatile("cli");
}

TEST_F(vmf, interrupt_vs_trap_gate)
{
	tvm_enter(self->vm, guest_gate_types, 0);
	TVM_RUN_DONE(self->vm);
}

/* ---- stacks: IST, RSP0, alignment ---- */

static volatile uint64_t st_frame, st_cs, st_ss, st_rsp;

static void stack_handler(struct ex_regs *regs)
{
	st_frame = (uint64_t)&regs->rip;
	st_cs = regs->cs;
	st_ss = regs->ss;
	st_rsp = regs->rsp;
}

static uint64_t user_int62(uint64_t arg)
{
	uint64_t rsp;

	asm volatile("movq %%rsp, %0\n\tint $0x62" : "=r"(rsp));
	return rsp;
}

static uint64_t user_gp(uint64_t arg)
{
	asm volatile(ASM_SAFE("hlt") : ASM_SAFE_OUT : : ASM_SAFE_CLOBBERS);
	return 0;
}

static void guest_stacks(void)
{
	uint64_t rsp;

	guest_handlers[0x62] = stack_handler;
	/* IST 3 at CPL0: the frame is at the top of IST3, 5 quadwords. */
	guest_set_stub_gate(0x62, GATE_INTR, 3, 3);
	asm volatile("movq %%rsp, %0\n\tint $0x62" : "=r"(rsp));
	GUEST_ASSERT_EQ(st_frame, TVM_IST_TOP(3) - 40);
	GUEST_ASSERT_EQ(st_cs, TVM_KCS);
	GUEST_ASSERT_EQ(st_ss, TVM_KDS);
	GUEST_ASSERT_EQ(st_rsp, rsp);
	/* IST from CPL3 wins over RSP0. */
	rsp = guest_run_user(user_int62, 0, 0x202);
	GUEST_ASSERT_EQ(st_frame, TVM_IST_TOP(3) - 40);
	GUEST_ASSERT_EQ(st_cs, TVM_UCS);
	GUEST_ASSERT_EQ(st_ss, TVM_UDS);
	GUEST_ASSERT_EQ(st_rsp, rsp);
	/* No IST from CPL3: TSS.RSP0, with the old SS:RSP in the frame. */
	guest_set_stub_gate(0x62, GATE_INTR, 3, 0);
	rsp = guest_run_user(user_int62, 0, 0x202);
	GUEST_ASSERT_EQ(st_frame, TVM_RSP0_TOP - 40);
	GUEST_ASSERT_EQ(st_cs, TVM_UCS);
	GUEST_ASSERT_EQ(st_rsp, rsp);
	/* An exception with an error code from CPL3: same frame place. */
	guest_run_user(user_gp, 0, 0x202);
	GUEST_ASSERT_EQ(guest_last_ex.vector, GP_VECTOR);
	GUEST_ASSERT_EQ(guest_last_ex.frame, TVM_RSP0_TOP - 40);
	/* An RSP0 that is not 16-byte aligned is aligned down first. */
	*(volatile uint64_t *)(TVM_TSS_GPA + 4) = TVM_RSP0_TOP - 8;
	guest_run_user(user_int62, 0, 0x202);
	GUEST_ASSERT_EQ(st_frame, TVM_RSP0_TOP - 16 - 40);
	*(volatile uint64_t *)(TVM_TSS_GPA + 4) = TVM_RSP0_TOP;
	/* Same CPL, no IST: the current RSP, aligned down to 16. */
	asm volatile("movq %%rsp, %%rbx\n\t"
		     "andq $-16, %%rsp\n\t"
		     "subq $8, %%rsp\n\t"
		     "movq %%rsp, %0\n\t"
		     "int $0x62\n\t"
		     "movq %%rbx, %%rsp"
		     : "=r"(rsp) : : "rbx", "memory");
	GUEST_ASSERT_EQ(st_frame, ((rsp & ~15ULL) - 40));
	GUEST_ASSERT_EQ(st_rsp, rsp);
}

TEST_F(vmf, ist_rsp0_alignment)
{
	tvm_enter(self->vm, guest_stacks, 0);
	TVM_RUN_DONE(self->vm);
}

/* ---- bad gates and the IDT limit ---- */

static void guest_bad_gates(void)
{
	struct __attribute__((packed)) {
		uint16_t limit;
		uint64_t base;
	} idt = { 0x7ff, TVM_IDT_GPA }, full = { 0xfff, TVM_IDT_GPA };
	uint64_t stub = (uint64_t)guest_idt_stubs;

	/* Not present: #NP(vector * 8 + 2), at the INT (a fault). */
	guest_set_gate(0x63, stub + 16 * 0x63, GATE_INTR, 0, 0, false);
	asm volatile(ASM_SAFE("int $0x63") : ASM_SAFE_OUT : :
		     ASM_SAFE_CLOBBERS);
	GUEST_ASSERT_EX(NP_VECTOR, IDT_ERR(0x63));
	/* Call gate (0xc), task gate (0x5), 16-bit gate (0x6): #GP. */
	guest_set_gate(0x64, stub + 16 * 0x64, 0xc, 0, 0, true);
	asm volatile(ASM_SAFE("int $0x64") : ASM_SAFE_OUT : :
		     ASM_SAFE_CLOBBERS);
	GUEST_ASSERT_EX(GP_VECTOR, IDT_ERR(0x64));
	guest_set_gate(0x64, stub + 16 * 0x64, 0x5, 0, 0, true);
	asm volatile(ASM_SAFE("int $0x64") : ASM_SAFE_OUT : :
		     ASM_SAFE_CLOBBERS);
	GUEST_ASSERT_EX(GP_VECTOR, IDT_ERR(0x64));
	guest_set_gate(0x64, stub + 16 * 0x64, 0x6, 0, 0, true);
	asm volatile(ASM_SAFE("int $0x64") : ASM_SAFE_OUT : :
		     ASM_SAFE_CLOBBERS);
	GUEST_ASSERT_EX(GP_VECTOR, IDT_ERR(0x64));
	/* A vector beyond the IDT limit: #GP(vector * 8 + 2). */
	asm volatile("lidt %0" : : "m"(idt));
	asm volatile(ASM_SAFE("int $0xf0") : ASM_SAFE_OUT : :
		     ASM_SAFE_CLOBBERS);
	GUEST_ASSERT_EX(GP_VECTOR, IDT_ERR(0xf0));
	asm volatile("lidt %0" : : "m"(full));
	/* An exception whose gate is absent: #NP with the vector's index. */
	guest_set_gate(UD_VECTOR, stub + 16 * UD_VECTOR, GATE_INTR, 0, 0,
		       false);
	asm volatile(ASM_SAFE("ud2") : ASM_SAFE_OUT : : ASM_SAFE_CLOBBERS);
	/* EXT is set: the #UD was not caused by INT n (SDM 6.13). */
	GUEST_ASSERT_EX(NP_VECTOR, IDT_ERR(UD_VECTOR) | 1);
	guest_set_stub_gate(UD_VECTOR, GATE_INTR, 0, 0);
}

TEST_F(vmf, not_present_and_bad_gates)
{
	tvm_enter(self->vm, guest_bad_gates, 0);
	TVM_RUN_DONE(self->vm);
}

/* ---- double and triple faults ---- */

static void guest_double_fault(void)
{
	uint64_t stub = (uint64_t)guest_idt_stubs;

	/* #GP whose gate is not present: #NP (contributory) -> #DF. */
	guest_set_gate(GP_VECTOR, stub + 16 * GP_VECTOR, GATE_INTR, 0, 0,
		       false);
	asm volatile(ASM_SAFE("wrmsr") : ASM_SAFE_OUT
		     : "c"(0x12345678), "a"(0), "d"(0) : ASM_SAFE_CLOBBERS);
	GUEST_ASSERT_EQ(guest_last_ex.vector, DF_VECTOR);
	GUEST_ASSERT_EQ(guest_last_ex.error_code, 0);
	/* #DF has IST1: its frame is there. */
	GUEST_ASSERT_EQ(guest_last_ex.frame, TVM_IST_TOP(1) - 40);
	guest_set_stub_gate(GP_VECTOR, GATE_INTR, 0, 0);

	/*
	 * A stack that is not mapped: #UD delivery faults with #PF, whose
	 * delivery faults with #PF again: #DF (on its IST stack).
	 */
	asm volatile("movq %%rsp, %%rbx\n\t"
		     "movq $0x50000000, %%rsp\n\t"
		     ASM_SAFE("ud2")
		     "movq %%rbx, %%rsp"
		     : ASM_SAFE_OUT : : "rbx", ASM_SAFE_CLOBBERS);
	GUEST_ASSERT_EQ(guest_last_ex.vector, DF_VECTOR);
	GUEST_ASSERT_EQ(guest_last_ex.error_code, 0);
	/* CR2 is the address of the push that faulted. */
	asm volatile("mov %%cr2, %%rax" : : : "rax");
	/* A benign #UD with the #UD gate absent is only an #NP. */
	guest_set_gate(UD_VECTOR, stub + 16 * UD_VECTOR, GATE_INTR, 0, 0,
		       false);
	asm volatile(ASM_SAFE("ud2") : ASM_SAFE_OUT : : ASM_SAFE_CLOBBERS);
	GUEST_ASSERT_EQ(guest_last_ex.vector, NP_VECTOR);
	guest_set_stub_gate(UD_VECTOR, GATE_INTR, 0, 0);
}

TEST_F(vmf, double_fault)
{
	tvm_enter(self->vm, guest_double_fault, 0);
	TVM_RUN_DONE(self->vm);
}

static void guest_triple_fault(void)
{
	uint64_t stub = (uint64_t)guest_idt_stubs;

	/* #GP -> #NP -> #DF, and #DF's gate is absent too: shutdown. */
	guest_set_gate(GP_VECTOR, stub + 16 * GP_VECTOR, GATE_INTR, 0, 0,
		       false);
	guest_set_gate(DF_VECTOR, stub + 16 * DF_VECTOR, GATE_INTR, 0, 1,
		       false);
	asm volatile("wrmsr" : : "c"(0x12345678), "a"(0), "d"(0));
	GUEST_ASSERT(0);
}

static void guest_triple_fault_stack(void)
{
	/* No IDT at all (limit 0): every delivery faults. */
	struct __attribute__((packed)) {
		uint16_t limit;
		uint64_t base;
	} idt = { 0, 0 };

	asm volatile("lidt %0; ud2" : : "m"(idt));
	GUEST_ASSERT(0);
}

TEST_F(vmf, triple_fault_is_shutdown_of_that_vm)
{
	struct tvm *other = tvm_create(0);
	struct trapvm_run *run = self->vm->run;
	struct ucall uc;

	tvm_enter(self->vm, guest_triple_fault, 0);
	ASSERT_EQ(0, tvm_run(self->vm));
	ASSERT_EQ(TRAPVM_EXIT_SHUTDOWN, run->exit_reason)
		TH_LOG("%s", tvm_describe(self->vm, &uc));
	EXPECT_EQ(TRAPVM_SHUTDOWN_TRIPLE_FAULT, run->shutdown.reason);
	/* A shut-down vCPU stays shut down. */
	ASSERT_EQ(0, tvm_run(self->vm));
	EXPECT_EQ(TRAPVM_EXIT_SHUTDOWN, run->exit_reason);

	/* Another VM is not affected, and shuts down on its own terms. */
	tvm_enter(other, guest_triple_fault_stack, 0);
	ASSERT_EQ(0, tvm_run(other));
	ASSERT_EQ(TRAPVM_EXIT_SHUTDOWN, other->run->exit_reason)
		TH_LOG("%s", tvm_describe(other, &uc));
	EXPECT_EQ(TRAPVM_SHUTDOWN_TRIPLE_FAULT, other->run->shutdown.reason);
	tvm_free(other);
	other = tvm_create(0);
	tvm_enter(other, guest_gate_types, 0);
	TVM_RUN_DONE(other);
	tvm_free(other);
}

/* ---- #PF error codes and CR2 ---- */

#define PF_BASE		0x41000000ULL
#define VA_USER		(PF_BASE + 0x0000)	/* P W U */
#define VA_SUP		(PF_BASE + 0x1000)	/* P W */
#define VA_RO		(PF_BASE + 0x2000)	/* P U */
#define VA_NP		(PF_BASE + 0x3000)	/* not present */
#define VA_NX		(PF_BASE + 0x4000)	/* P W U NX, holds RET */
#define VA_RSVD		(PF_BASE + 0x5000)	/* P W U + a reserved bit */
#define VA_SUPX		(PF_BASE + 0x6000)	/* P W, holds RET */

static uint64_t pf_read(uint64_t va)
{
	asm volatile(ASM_SAFE("movq (%[p]), %%rax") : ASM_SAFE_OUT
		     : [p] "r"(va) : "rax", ASM_SAFE_CLOBBERS);
	return guest_last_ex.vector;
}

static uint64_t pf_write(uint64_t va)
{
	asm volatile(ASM_SAFE("movq %%rax, (%[p])") : ASM_SAFE_OUT
		     : [p] "r"(va), "a"(0x77) : ASM_SAFE_CLOBBERS);
	return guest_last_ex.vector;
}

static uint64_t pf_call(uint64_t va)
{
	/* A fetch fault comes after the CALL pushed: restore RSP. */
	asm volatile("movq %%rsp, %%rbx\n\t"
		     ASM_SAFE("call *%[p]")
		     "movq %%rbx, %%rsp"
		     : ASM_SAFE_OUT
		     : [p] "r"(va) : "rax", "rbx", "rcx", "rdx", "rsi", "rdi",
		       "r8", "r9", "r10", ASM_SAFE_CLOBBERS);
	return guest_last_ex.vector;
}

/* arg: va | 1 = write, | 2 = fetch */
static uint64_t user_pf(uint64_t arg)
{
	uint64_t va = arg & ~3ULL;

	if (arg & 1)
		return pf_write(va);
	if (arg & 2)
		return pf_call(va);
	return pf_read(va);
}

#define EXPECT_PF(vec_expr, va, err) do {				\
	GUEST_ASSERT_EQ_X((vec_expr), PF_VECTOR, (va));			\
	GUEST_ASSERT_EQ_X(guest_last_ex.error_code, (err), (va));	\
	GUEST_ASSERT_EQ_X(guest_last_ex.cr2, (va), (va));		\
} while (0)

static void guest_page_faults(uint64_t rsvd_ok)
{
	uint64_t cr0;

	/* Kernel accesses. */
	GUEST_ASSERT_EQ(pf_read(VA_USER), 0xff);
	GUEST_ASSERT_EQ(pf_write(VA_SUP), 0xff);
	EXPECT_PF(pf_read(VA_NP), VA_NP, 0);
	GUEST_ASSERT_EQ(guest_last_ex.rip, guest_ex_insn);
	EXPECT_PF(pf_write(VA_NP), VA_NP, PF_W);
	/* CR0.WP=1: supervisor writes to read-only pages fault. */
	EXPECT_PF(pf_write(VA_RO), VA_RO, PF_P | PF_W);
	/* Instruction fetch from an NX page (EFER.NXE=1): I is reported. */
	EXPECT_PF(pf_call(VA_NX), VA_NX, PF_P | PF_I);
	GUEST_ASSERT_EQ(guest_last_ex.rip, VA_NX);
	if (rsvd_ok) {
		/* A reserved bit (above MAXPHYADDR) in the PTE: P|RSVD. */
		EXPECT_PF(pf_read(VA_RSVD), VA_RSVD, PF_P | PF_RSVD);
	}
	/* The supervisor page is executable for the kernel. */
	GUEST_ASSERT_EQ(pf_call(VA_SUPX), 0xff);

	/* User accesses. */
	GUEST_ASSERT_EQ(guest_run_user(user_pf, VA_USER | 1, 0x202), 0xff);
	GUEST_ASSERT_EQ(guest_run_user(user_pf, VA_RO, 0x202), 0xff);
	EXPECT_PF(guest_run_user(user_pf, VA_SUP, 0x202), VA_SUP,
		  PF_P | PF_U);
	GUEST_ASSERT_EQ(guest_last_ex.cs, TVM_UCS);
	EXPECT_PF(guest_run_user(user_pf, VA_SUP | 1, 0x202), VA_SUP,
		  PF_P | PF_W | PF_U);
	EXPECT_PF(guest_run_user(user_pf, VA_RO | 1, 0x202), VA_RO,
		  PF_P | PF_W | PF_U);
	EXPECT_PF(guest_run_user(user_pf, VA_NP, 0x202), VA_NP, PF_U);
	EXPECT_PF(guest_run_user(user_pf, VA_NP | 1, 0x202), VA_NP,
		  PF_W | PF_U);
	EXPECT_PF(guest_run_user(user_pf, VA_SUPX | 2, 0x202), VA_SUPX,
		  PF_P | PF_U | PF_I);
	EXPECT_PF(guest_run_user(user_pf, VA_NX | 2, 0x202), VA_NX,
		  PF_P | PF_U | PF_I);

	/* CR0.WP=0: the kernel may write read-only pages (SDM 4.6.1). */
	asm volatile("mov %%cr0, %0" : "=r"(cr0));
	asm volatile("mov %0, %%cr0" : : "r"(cr0 & ~(1ULL << 16)));
	GUEST_ASSERT_EQ(pf_write(VA_RO), 0xff);
	GUEST_ASSERT_EQ(*(volatile uint64_t *)VA_RO, 0x77);
	asm volatile("mov %0, %%cr0" : : "r"(cr0));
	EXPECT_PF(pf_write(VA_RO), VA_RO, PF_P | PF_W);
	/* ... but user writes still fault. */
	GUEST_SYNC(0);
}

static unsigned int host_phys_bits(void)
{
	unsigned int a, b, c, d;

	asm volatile("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d)
		     : "a"(0x80000008), "c"(0));
	return a & 0xff;
}

TEST_F(vmf, page_fault_error_codes)
{
	uint64_t pages = tvm_alloc(self->vm, 8);
	unsigned int pa_bits = host_phys_bits();
	uint64_t rsvd = pa_bits < 52 ? 1ULL << pa_bits : 0;
	struct ucall uc;

	tvm_map(self->vm, VA_USER, pages, PTE_P | PTE_W | PTE_U);
	tvm_map(self->vm, VA_SUP, pages + 0x1000, PTE_P | PTE_W);
	tvm_map(self->vm, VA_RO, pages + 0x2000, PTE_P | PTE_U);
	*tvm_pte(self->vm, VA_NP, true) = 0;
	tvm_map(self->vm, VA_NX, pages + 0x4000,
		PTE_P | PTE_W | PTE_U | PTE_NX);
	*(uint8_t *)tvm_gpa(self->vm, pages + 0x4000) = 0xc3;
	tvm_map(self->vm, VA_RSVD, (pages + 0x5000) | rsvd,
		PTE_P | PTE_W | PTE_U);
	tvm_map(self->vm, VA_SUPX, pages + 0x6000, PTE_P | PTE_W);
	*(uint8_t *)tvm_gpa(self->vm, pages + 0x6000) = 0xc3;
	if (!rsvd)
		TH_LOG("MAXPHYADDR is 52: no reserved PTE bit to test");
	tvm_enter(self->vm, guest_page_faults, !!rsvd);
	TVM_RUN_EXPECT(self->vm, &uc, UCALL_SYNC);
	TVM_RUN_DONE(self->vm);
}

TEST_HARNESS_MAIN
