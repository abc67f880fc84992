/* SPDX-License-Identifier: GPL-2.0 */
/*
 * trapvm world switcher.
 *
 * Two kinds of code live here:
 *
 *  - trapvm_sw_enter / trapvm_sw_host_return run from the module's text,
 *    at its normal address, on the host or the transit page tables.
 *  - trapvm_sw_text_start .. trapvm_sw_text_end is a template that
 *    switcher.c copies into every CPU's region of the hole; it only ever
 *    runs there.  It addresses its data RIP-relatively (the data page is
 *    at a fixed distance from the text in every region), so the copy
 *    finds its own CPU's data without GS or any register.
 *
 * The order of the switch (why each state is safe for an NMI):
 *
 *  enter:  host CR3/IDT/GDT/TR/GS/stack
 *          CR4.PGE off (flushes global host TLB entries the guest could
 *          otherwise hit), transit CR3 (kernel half + hole): host IDT is
 *          still fine, the host is fully mapped
 *          jump into the hole, LIDT switcher IDT first: an NMI now goes
 *          to our stub on the host's IST stack (same IST numbers), which
 *          only records it
 *          own stack, own GDT and TR, guest GS base, shadow CR3, IRETQ
 *  exit:   stub saves the guest state, guest GS base out, transit CR3
 *          (now the host-state page is mapped), host GS base, host TR
 *          (busy bit cleared in the writable GDT alias, LGDT it, LTR,
 *          LGDT the read-only one), host IDT last
 *          while the transit root still maps everything, host stack,
 *          jump back to module text, host CR3, CR4.
 *
 * Nothing here uses a retpoline or return thunk while not on the host
 * page tables; the file is OBJECT_FILES_NON_STANDARD for objtool.
 */
#include <linux/linkage.h>
#include <asm/segment.h>
#include <asm/msr-index.h>
#include <asm/nospec-branch.h>
#include <asm/ibt.h>
#include <asm/processor-flags.h>
#include "switcher.h"

#define SWD(off)	(trapvm_sw_text_start + TRAPVM_SW_DATA_OFF + (off))(%rip)
#define SWH(off)	(trapvm_sw_text_start + TRAPVM_SW_HOST_OFF + (off))(%rip)

/* Exit frame as it sits on the stack after sw_common pushed the GPRs. */
#define F_R15		0x00
#define F_R14		0x08
#define F_R13		0x10
#define F_R12		0x18
#define F_R11		0x20
#define F_R10		0x28
#define F_R9		0x30
#define F_R8		0x38
#define F_RDI		0x40
#define F_RSI		0x48
#define F_RBP		0x50
#define F_RBX		0x58
#define F_RDX		0x60
#define F_RCX		0x68
#define F_RAX		0x70
#define F_VEC		0x78
#define F_ERR		0x80
#define F_RIP		0x88
#define F_CS		0x90
#define F_RFLAGS	0x98
#define F_RSP		0xa0
#define F_SS		0xa8

	.text

/*
 * void trapvm_sw_enter(struct trapvm_sw_data *data, unsigned long hole_entry,
 *			unsigned long cr4, struct trapvm_sw_host *host)
 * Called with interrupts off.  Returns (through trapvm_sw_host_return)
 * when the guest trapped.
 */
SYM_FUNC_START(trapvm_sw_enter)
	pushq	%rbp
	movq	%rsp, %rbp
	pushq	%rbx
	pushq	%r12
	pushq	%r13
	pushq	%r14
	pushq	%r15
	movq	%rsp, SWH_RSP(%rcx)
	movq	%rdx, %cr4
	movq	SWD_TRANSIT_CR3(%rdi), %rax
	movq	%rax, %cr3
	/* The transit root maps the kernel: a retpoline still works here. */
	JMP_NOSPEC rsi
SYM_FUNC_END(trapvm_sw_enter)

/*
 * Back from the hole on the transit root and the host stack, with
 * %r12 = host CR3 and %r13 = host CR4.
 */
SYM_CODE_START(trapvm_sw_host_return)
	ENDBR
	movq	%r12, %cr3
	movq	%r13, %cr4
	/* Exception delivery keeps the guest's DF and AC: C wants both 0. */
	pushq	$X86_EFLAGS_FIXED
	popfq
	UNTRAIN_RET
	popq	%r15
	popq	%r14
	popq	%r13
	popq	%r12
	popq	%rbx
	popq	%rbp
	RET
SYM_CODE_END(trapvm_sw_host_return)

/*
 * void trapvm_sw_dispatch(unsigned long handler)
 * Call a host IDT entry point as if the CPU had delivered the vector
 * here with interrupts off: it finds a kernel-mode IRET frame and IRETs
 * back to us.
 */
SYM_FUNC_START(trapvm_sw_dispatch)
	pushq	%rbp
	movq	%rsp, %rbp
	andq	$-16, %rsp
	pushq	$__KERNEL_DS
	pushq	%rbp
	pushfq
	pushq	$__KERNEL_CS
	CALL_NOSPEC rdi
	leave
	RET
SYM_FUNC_END(trapvm_sw_dispatch)

/* ------------------------------------------------------------------ */
/* The template copied into every CPU's region of the hole.            */
/* ------------------------------------------------------------------ */

	.balign	4096, 0xcc
SYM_CODE_START_NOALIGN(trapvm_sw_text_start)

/* 256 IDT stubs, 16 bytes apart: vector number, dummy error code. */
SYM_INNER_LABEL(trapvm_sw_stubs, SYM_L_GLOBAL)
trapvm_sw_vec = 0
.rept 256
	.balign	16, 0xcc
	.if ((trapvm_sw_vec == 8) || \
	    ((trapvm_sw_vec >= 10) && (trapvm_sw_vec <= 14)) || \
	    (trapvm_sw_vec == 17) || (trapvm_sw_vec == 21) || \
	    (trapvm_sw_vec == 29) || (trapvm_sw_vec == 30))
	.else
	pushq	$0
	.endif
	pushq	$trapvm_sw_vec
	jmp	sw_common
trapvm_sw_vec = trapvm_sw_vec + 1
.endr

	.balign	16, 0xcc
sw_common:
	cld
	pushq	%rax
	pushq	%rcx
	pushq	%rdx
	pushq	%rbx
	pushq	%rbp
	pushq	%rsi
	pushq	%rdi
	pushq	%r8
	pushq	%r9
	pushq	%r10
	pushq	%r11
	pushq	%r12
	pushq	%r13
	pushq	%r14
	pushq	%r15
	testb	$3, F_CS(%rsp)
	jz	sw_from_kernel

	/* From the guest: save everything into the data page. */
	leaq	SWD(0), %rdi
	movq	%cr2, %rax
	movq	%rax, SWD_CR2(%rdi)
.macro SAVE_SLOT from, to
	movq	\from(%rsp), %rax
	movq	%rax, \to(%rdi)
.endm
	SAVE_SLOT F_RAX, SWD_GPRS + 0x00
	SAVE_SLOT F_RCX, SWD_GPRS + 0x08
	SAVE_SLOT F_RDX, SWD_GPRS + 0x10
	SAVE_SLOT F_RBX, SWD_GPRS + 0x18
	SAVE_SLOT F_RSP, SWD_GPRS + 0x20
	SAVE_SLOT F_RBP, SWD_GPRS + 0x28
	SAVE_SLOT F_RSI, SWD_GPRS + 0x30
	SAVE_SLOT F_RDI, SWD_GPRS + 0x38
	SAVE_SLOT F_R8,  SWD_GPRS + 0x40
	SAVE_SLOT F_R9,  SWD_GPRS + 0x48
	SAVE_SLOT F_R10, SWD_GPRS + 0x50
	SAVE_SLOT F_R11, SWD_GPRS + 0x58
	SAVE_SLOT F_R12, SWD_GPRS + 0x60
	SAVE_SLOT F_R13, SWD_GPRS + 0x68
	SAVE_SLOT F_R14, SWD_GPRS + 0x70
	SAVE_SLOT F_R15, SWD_GPRS + 0x78
	SAVE_SLOT F_RIP, SWD_RIP
	SAVE_SLOT F_RFLAGS, SWD_RFLAGS
	SAVE_SLOT F_VEC, SWD_VECTOR
	SAVE_SLOT F_ERR, SWD_ERROR_CODE
	SAVE_SLOT F_CS, SWD_CS
	SAVE_SLOT F_SS, SWD_SS
	jmp	sw_exit

sw_from_kernel:
	/*
	 * Inside the switcher (CPL0).  NMI: remember it for the host and
	 * go on.  #DB/#MC: note them.  Anything else is a switcher bug or
	 * a bad guest RIP/RSP on IRETQ: go back to the host and say so.
	 *
	 * While TR is the host's (just after LIDT on entry, just after LTR
	 * on exit) this frame is on the host's own IST stack.  Our pushes
	 * land where Linux's NMI entry keeps its "NMI executing" word (the
	 * second slot below the hardware frame): we leave the vector there,
	 * 2, never the 1 that would make the next host NMI think it nests.
	 */
	cmpq	$2, F_VEC(%rsp)
	jne	1f
	movq	$1, SWD(SWD_NMI_PENDING)
	jmp	sw_resume_kernel
1:	cmpq	$1, F_VEC(%rsp)
	je	2f
	cmpq	$18, F_VEC(%rsp)
	jne	3f
2:	movq	F_VEC(%rsp), %rcx
	movl	$1, %eax
	shlq	%cl, %rax
	orq	%rax, SWD(SWD_KERNEL_EXC)
	jmp	sw_resume_kernel
3:	leaq	SWD(0), %rdi
	SAVE_SLOT F_VEC, SWD_FAULT_VECTOR
	SAVE_SLOT F_RIP, SWD_FAULT_RIP
	SAVE_SLOT F_ERR, SWD_ERROR_CODE
	SAVE_SLOT F_CS, SWD_CS
	SAVE_SLOT F_SS, SWD_SS
	movq	%cr2, %rax
	movq	%rax, SWD_CR2(%rdi)
	movq	$TRAPVM_SW_VEC_FAULT, SWD_VECTOR(%rdi)
	jmp	sw_exit

sw_resume_kernel:
	popq	%r15
	popq	%r14
	popq	%r13
	popq	%r12
	popq	%r11
	popq	%r10
	popq	%r9
	popq	%r8
	popq	%rdi
	popq	%rsi
	popq	%rbp
	popq	%rbx
	popq	%rdx
	popq	%rcx
	popq	%rax
	addq	$16, %rsp
	iretq

sw_exit:
	leaq	SWD(0), %rbx
	/* The guest may have changed GS base itself (WRGSBASE). */
	movl	$MSR_GS_BASE, %ecx
	rdmsr
	movl	%eax, SWD_GUEST_GS(%rbx)
	movl	%edx, SWD_GUEST_GS + 4(%rbx)
	movq	SWD_TRANSIT_CR3(%rbx), %rax
	movq	%rax, %cr3
	/* Only the transit root maps the host-state page. */
	leaq	SWH(0), %rbx
	movl	SWH_GS(%rbx), %eax
	movl	SWH_GS + 4(%rbx), %edx
	wrmsr
	/* Host TR: the descriptor is busy, clear it in the writable alias. */
	movq	SWH_TSS_DESC(%rbx), %rax
	andb	$0xfd, 5(%rax)
	lgdt	SWH_GDT_RW(%rbx)
	movl	$TRAPVM_SW_TSS_SEL, %eax
	ltr	%ax
	lgdt	SWH_GDT_RO(%rbx)
	lidt	SWH_IDT(%rbx)
	movl	$__KERNEL_DS, %eax
	movl	%eax, %ss
	movq	SWH_CR3(%rbx), %r12
	movq	SWH_CR4(%rbx), %r13
	movq	SWH_RSP(%rbx), %rsp
	movq	SWH_RET(%rbx), %rax
	/*
	 * Module text is out of rel32 reach from the hole, and a retpoline
	 * thunk cannot be called from copied code: a plain indirect jump
	 * to the one fixed target (see world-switch.rst, known limits).
	 */
	ANNOTATE_RETPOLINE_SAFE
	jmp	*%rax

/* SYSCALL from the guest (LSTAR): CPL0, IF=0, guest RSP still loaded. */
	.balign	16, 0xcc
SYM_INNER_LABEL(trapvm_sw_syscall, SYM_L_GLOBAL)
	ENDBR
	movq	%rsp, SWD(SWD_SCRATCH)
	leaq	(trapvm_sw_text_start + TRAPVM_SW_STACK_TOP)(%rip), %rsp
	pushq	$__USER_DS
	pushq	SWD(SWD_SCRATCH)
	pushq	%r11
	pushq	$__USER_CS
	pushq	%rcx
	pushq	$0
	pushq	$TRAPVM_SW_VEC_SYSCALL
	jmp	sw_common

/* Entered from trapvm_sw_enter on the transit root, interrupts off. */
	.balign	16, 0xcc
SYM_INNER_LABEL(trapvm_sw_entry, SYM_L_GLOBAL)
	ENDBR
	leaq	SWD(0), %rbx
	lidt	SWD_SW_IDT(%rbx)
	leaq	(trapvm_sw_text_start + TRAPVM_SW_STACK_TOP)(%rip), %rsp
	andb	$0xfd, SWD_GDT + TRAPVM_SW_TSS_SEL + 5(%rbx)
	lgdt	SWD_SW_GDT(%rbx)
	movl	$TRAPVM_SW_TSS_SEL, %eax
	ltr	%ax
	movl	$MSR_GS_BASE, %ecx
	movl	SWD_GUEST_GS(%rbx), %eax
	movl	SWD_GUEST_GS + 4(%rbx), %edx
	wrmsr
	movq	SWD_SHADOW_CR3(%rbx), %rax
	movq	%rax, %cr3
	/*
	 * An NMI that hit the entry path so far was only recorded: go back
	 * and let the host handle it now rather than at the next exit.
	 */
	cmpq	$0, SWD_NMI_PENDING(%rbx)
	jne	sw_entry_abort
	pushq	$__USER_DS
	pushq	SWD_GPRS + 0x20(%rbx)
	pushq	SWD_RFLAGS(%rbx)
	pushq	$__USER_CS
	pushq	SWD_RIP(%rbx)
	/* Flush CPU buffers before user mode (MDS & co), as the host does. */
	verw	SWD_VERW_SEL(%rbx)
	movq	SWD_GPRS + 0x00(%rbx), %rax
	movq	SWD_GPRS + 0x08(%rbx), %rcx
	movq	SWD_GPRS + 0x10(%rbx), %rdx
	movq	SWD_GPRS + 0x28(%rbx), %rbp
	movq	SWD_GPRS + 0x30(%rbx), %rsi
	movq	SWD_GPRS + 0x38(%rbx), %rdi
	movq	SWD_GPRS + 0x40(%rbx), %r8
	movq	SWD_GPRS + 0x48(%rbx), %r9
	movq	SWD_GPRS + 0x50(%rbx), %r10
	movq	SWD_GPRS + 0x58(%rbx), %r11
	movq	SWD_GPRS + 0x60(%rbx), %r12
	movq	SWD_GPRS + 0x68(%rbx), %r13
	movq	SWD_GPRS + 0x70(%rbx), %r14
	movq	SWD_GPRS + 0x78(%rbx), %r15
	movq	SWD_GPRS + 0x18(%rbx), %rbx
	iretq

sw_entry_abort:
	/* The guest did not run: its state in the data page is untouched. */
	movq	$TRAPVM_SW_VEC_ABORT, SWD_VECTOR(%rbx)
	jmp	sw_exit

	.balign	16, 0xcc
SYM_INNER_LABEL(trapvm_sw_text_end, SYM_L_GLOBAL)
SYM_CODE_END(trapvm_sw_text_start)
