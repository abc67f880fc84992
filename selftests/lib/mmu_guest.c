// SPDX-License-Identifier: GPL-2.0
/*
 * Shadow-MMU test helpers: see mmu_guest.h.  The guest half must not call
 * libc (it is built with the guest flags, like guest.c).
 */
#include <cpuid.h>

#include "mmu_guest.h"

extern const char __executable_start[], _end[];

volatile struct mmu_fault mmu_fault;
volatile uint64_t mmu_fault_armed;

static void mmu_catch(struct ex_regs *regs)
{
	uint64_t cr2;

	asm volatile("mov %%cr2, %0" : "=r"(cr2));
	if (!mmu_fault_armed)
		guest_ucall(UCALL_UNHANDLED, __FILE__, __LINE__, NULL,
			    regs->vector, regs->error_code, regs->rip,
			    regs->vector == PF_VECTOR ? cr2 : regs->cs);
	mmu_fault.vector = regs->vector;
	mmu_fault.err = regs->error_code;
	mmu_fault.cr2 = regs->vector == PF_VECTOR ? cr2 : 0;
	mmu_fault.rip = regs->rip;
	mmu_fault.cs = regs->cs;
	regs->rip = regs->rcx;
}

void mmu_guest_install_catcher(void)
{
	guest_handlers[PF_VECTOR] = mmu_catch;
	guest_handlers[GP_VECTOR] = mmu_catch;
	guest_handlers[UD_VECTOR] = mmu_catch;
}

/*
 * The stubs.  Each loads its continuation into %rcx before the access:
 * mmu_catch() resumes there.  The user stubs live alone in one page,
 * mapped for CPL3 at MMU_USER_ALIAS, and return with INT 0x81 (the
 * library's way back to CPL0, see guest_asm.S); mmu_user_call() is
 * guest_run_user() with a raw RIP instead of the library's trampoline,
 * which is supervisor-only here.
 */
asm(".text\n"
	".globl mmu_k_read\nmmu_k_read:\n"
	"	leaq 1f(%rip), %rcx\n	movl $0x1ff, %eax\n"
	"	movzbl (%rdi), %eax\n1:	ret\n"
	".globl mmu_k_write\nmmu_k_write:\n"
	"	leaq 1f(%rip), %rcx\n	movb %sil, (%rdi)\n1:	ret\n"
	".globl mmu_k_fetch\nmmu_k_fetch:\n"
	"	leaq 1f(%rip), %rcx\n	movl $0x1ff, %eax\n"
	"	jmp *%rdi\n1:	ret\n"
	".globl mmu_k_read_ac\nmmu_k_read_ac:\n"
	"	stac\n	leaq 1f(%rip), %rcx\n	movl $0x1ff, %eax\n"
	"	movzbl (%rdi), %eax\n1:	clac\n	ret\n"
	".globl mmu_k_write_ac\nmmu_k_write_ac:\n"
	"	stac\n	leaq 1f(%rip), %rcx\n	movb %sil, (%rdi)\n"
	"1:	clac\n	ret\n"
	".globl mmu_k_fetch_ac\nmmu_k_fetch_ac:\n"
	"	stac\n	leaq 1f(%rip), %rcx\n	movl $0x1ff, %eax\n"
	"	jmp *%rdi\n1:	clac\n	ret\n"
	".globl mmu_k_read64\nmmu_k_read64:\n"
	"	leaq 1f(%rip), %rcx\n	xorl %eax, %eax\n"
	"	movq (%rdi), %rax\n1:	ret\n"
	".globl mmu_k_write64\nmmu_k_write64:\n"
	"	leaq 1f(%rip), %rcx\n	movq %rsi, (%rdi)\n1:	ret\n"
	".globl mmu_user_call\nmmu_user_call:\n"
	"	pushq %rbx\n	pushq %rbp\n	pushq %r12\n	pushq %r13\n"
	"	pushq %r14\n	pushq %r15\n"
	"	movq %rsp, guest_user_kernel_rsp(%rip)\n"
	"	pushq $0x2b\n	pushq $0x1f0000\n	pushq $0x2\n"
	"	pushq $0x33\n	pushq %rdi\n"
	"	movq %rsi, %rdi\n	movq %rdx, %rsi\n	iretq\n"
	".pushsection .text.mmu_user, \"ax\"\n"
	".balign 4096\n"
	".globl mmu_user_page\nmmu_user_page:\n"
	".globl mmu_u_read\nmmu_u_read:\n"
	"	leaq 1f(%rip), %rcx\n	movl $0x1ff, %eax\n"
	"	movzbl (%rdi), %eax\n1:	int $0x81\n	ud2\n"
	".globl mmu_u_write\nmmu_u_write:\n"
	"	leaq 1f(%rip), %rcx\n	movb %sil, (%rdi)\n"
	"1:	int $0x81\n	ud2\n"
	".globl mmu_u_fetch\nmmu_u_fetch:\n"
	"	leaq 1f(%rip), %rcx\n	movl $0x1ff, %eax\n"
	"	jmp *%rdi\n1:	int $0x81\n	ud2\n"
	".balign 4096, 0xcc\n"
	".popsection\n");

/* ---- test side ---- */

uint64_t mmu_entry_gpa(struct tvm *vm, uint64_t cr3, uint64_t gva,
		       int level)
{
	uint64_t table = cr3 & PTE_ADDR;
	int l;

	for (l = 4; l > level; l--) {
		uint64_t e = *(uint64_t *)tvm_gpa(vm, table + 8 *
					((gva >> (3 + 9 * l)) & 511));

		if (!(e & PTE_P) || (e & PTE_PS))
			return 0;
		table = e & PTE_ADDR;
	}
	return table + 8 * ((gva >> (3 + 9 * level)) & 511);
}

static void clear_user(struct tvm *vm, uint64_t start, uint64_t end)
{
	uint64_t va;

	for (va = start & ~4095ULL; va < end; va += 4096) {
		uint64_t *pte = tvm_pte(vm, va, false);

		if (pte && (*pte & PTE_P))
			*pte &= ~PTE_U;
	}
}

void mmu_kernel_only(struct tvm *vm)
{
	uint64_t upage = (uint64_t)mmu_user_page;
	uint64_t *pte = tvm_pte(vm, upage, false);

	clear_user(vm, 0x1000, TVM_USTACK_TOP - 0x30000);
	clear_user(vm, TVM_USTACK_TOP, TVM_IDMAP_END);
	clear_user(vm, (uint64_t)__executable_start, (uint64_t)_end);
	tvm_map(vm, MMU_USER_ALIAS, *pte & PTE_ADDR, PTE_P | PTE_U);
}

unsigned int mmu_maxphyaddr(void)
{
	unsigned int a, b, c, d;

	if (!__get_cpuid(0x80000008, &a, &b, &c, &d))
		return 36;
	return a & 0xff;
}

bool mmu_has_1g(void)
{
	unsigned int a, b, c, d;

	if (!__get_cpuid(0x80000001, &a, &b, &c, &d))
		return false;
	return d & (1U << 26);
}
