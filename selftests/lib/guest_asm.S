/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Guest-side entry code of the test library: one IDT stub per vector,
 * the common exception path, and the round trip to guest user mode.
 * It runs inside the guest at the same virtual address it has in the
 * test process (see trapvm_test.h).
 */

#define USER_RETURN_VECTOR	0x81

	.text

/* Stubs: 16 bytes each, so stub(v) = guest_idt_stubs + 16 * v. */
	.balign 16
	.globl guest_idt_stubs
guest_idt_stubs:
	vector = 0
	.rept 256
	.balign 16
	/* Vectors with an error code: 8, 10-14, 17, 21, 29, 30. */
	.if !(vector == 8 || (vector >= 10 && vector <= 14) || vector == 17 || vector == 21 || vector == 29 || vector == 30)
	pushq $0
	.endif
	.if vector < 128
	pushq $vector
	.else
	pushq $(vector - 256)
	.endif
	jmp guest_ex_common
	vector = vector + 1
	.endr

/*
 * Build struct ex_regs, save the FPU/SSE state (the C handler may use
 * SSE registers), call guest_ex_dispatch(regs), return with IRETQ.
 */
	.balign 16
guest_ex_common:
	pushq %rax
	pushq %rcx
	pushq %rdx
	pushq %rbx
	pushq %rbp
	pushq %rsi
	pushq %rdi
	pushq %r8
	pushq %r9
	pushq %r10
	pushq %r11
	pushq %r12
	pushq %r13
	pushq %r14
	pushq %r15
	movq %rsp, %rbp
	andq $0xff, 15*8(%rbp)		/* the vector was sign-extended */
	subq $512, %rsp
	andq $-64, %rsp
	fxsave64 (%rsp)
	movq %rbp, %rdi
	call guest_ex_dispatch
	fxrstor64 (%rsp)
	movq %rbp, %rsp
	popq %r15
	popq %r14
	popq %r13
	popq %r12
	popq %r11
	popq %r10
	popq %r9
	popq %r8
	popq %rdi
	popq %rsi
	popq %rbp
	popq %rbx
	popq %rdx
	popq %rcx
	popq %rax
	addq $16, %rsp
	iretq

/*
 * uint64_t guest_run_user(void *fn, uint64_t arg, uint64_t rflags):
 * IRETQ to fn(arg) at CPL3 on the user stack; fn's return value comes back
 * through INT USER_RETURN_VECTOR (guest_user_return() in guest.c).
 */
	.globl guest_run_user
guest_run_user:
	pushq %rbx
	pushq %rbp
	pushq %r12
	pushq %r13
	pushq %r14
	pushq %r15
	movq %rsp, guest_user_kernel_rsp(%rip)
	pushq $0x2b				/* SS */
	pushq $0x1f0000				/* RSP: TVM_USTACK_TOP */
	pushq %rdx				/* RFLAGS */
	pushq $0x33				/* CS */
	leaq guest_user_trampoline(%rip), %rax
	pushq %rax				/* RIP */
	movq %rdi, %rax
	movq %rsi, %rdi
	iretq

	.globl guest_user_trampoline
guest_user_trampoline:
	call *%rax
	int $USER_RETURN_VECTOR
	ud2

	.globl guest_user_back
guest_user_back:
	popq %r15
	popq %r14
	popq %r13
	popq %r12
	popq %rbp
	popq %rbx
	ret

/* Where a guest function called by tvm_enter() returns to. */
	.globl guest_fn_returned
guest_fn_returned:
	andq $-16, %rsp
	call guest_done
	ud2

	.section .note.GNU-stack, "", @progbits
