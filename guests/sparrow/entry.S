/* SPDX-License-Identifier: GPL-2.0 */
/*
 * 64-bit entry (the ELF entry point, for trapvm and for the multiboot path),
 * interrupt/exception stubs, the SYSCALL entry, the common return path and
 * the context switch.
 *
 * sparrow is uniprocessor and runs its kernel with IF=0 (SFMASK clears IF
 * on SYSCALL, all IDT gates are interrupt gates), so the SYSCALL entry may
 * use plain globals instead of SWAPGS and per-CPU data.
 */
#define KERNEL_DS	0x18
#define USER_DS		0x2b
#define USER_CS		0x33
#define VEC_SYSCALL	0x100

	.text
	.code64
	.globl _start64
_start64:
	cli
	cld
	movq	%rdi, %r12
	/* Clear .bss (the boot stack and boot info are not in it). */
	movq	$__bss_start, %rdi
	movq	$__bss_end, %rcx
	subq	%rdi, %rcx
	shrq	$3, %rcx
	xorl	%eax, %eax
	rep stosq
	movq	$boot_stack_top, %rsp
	movq	%r12, %rdi
	call	kmain
1:	hlt
	jmp	1b

/* One 16-byte stub per vector: isr_stubs + 16 * vector. */
	.align 16
	.globl isr_stubs
isr_stubs:
	.set	vec, 0
	.rept	256
	.align	16
	.if	(vec == 8) || (vec == 10) || (vec == 11) || (vec == 12) || (vec == 13) || (vec == 14) || (vec == 17) || (vec == 21) || (vec == 29) || (vec == 30)
	.else
	pushq	$0
	.endif
	pushq	$vec
	jmp	isr_common
	.set	vec, vec + 1
	.endr

isr_common:
	pushq	%rax
	pushq	%rbx
	pushq	%rcx
	pushq	%rdx
	pushq	%rsi
	pushq	%rdi
	pushq	%rbp
	pushq	%r8
	pushq	%r9
	pushq	%r10
	pushq	%r11
	pushq	%r12
	pushq	%r13
	pushq	%r14
	pushq	%r15
	cld
	movq	%rsp, %rdi
	call	trap
	jmp	trap_return

	.globl syscall_entry
syscall_entry:
	movq	%rsp, syscall_user_rsp(%rip)
	movq	syscall_kstack_top(%rip), %rsp
	pushq	$USER_DS
	pushq	syscall_user_rsp(%rip)
	pushq	%r11
	pushq	$USER_CS
	pushq	%rcx
	pushq	$0
	pushq	$VEC_SYSCALL
	pushq	%rax
	pushq	%rbx
	pushq	%rcx
	pushq	%rdx
	pushq	%rsi
	pushq	%rdi
	pushq	%rbp
	pushq	%r8
	pushq	%r9
	pushq	%r10
	pushq	%r11
	pushq	%r12
	pushq	%r13
	pushq	%r14
	pushq	%r15
	cld
	movq	%rsp, %rdi
	call	syscall_dispatch
	/* fall through */

	.globl trap_return
trap_return:
	popq	%r15
	popq	%r14
	popq	%r13
	popq	%r12
	popq	%r11
	popq	%r10
	popq	%r9
	popq	%r8
	popq	%rbp
	popq	%rdi
	popq	%rsi
	popq	%rdx
	popq	%rcx
	popq	%rbx
	popq	%rax
	cmpq	$VEC_SYSCALL, (%rsp)
	je	1f
	addq	$16, %rsp
	iretq
1:	/* Frame built by SYSCALL (or a copy of one): return with SYSRETQ. */
	movq	16(%rsp), %rcx
	movq	32(%rsp), %r11
	movq	40(%rsp), %rsp
	sysretq

/* void swtch(u64 *old_ksp, u64 new_ksp) */
	.globl swtch
swtch:
	pushq	%rbp
	pushq	%rbx
	pushq	%r12
	pushq	%r13
	pushq	%r14
	pushq	%r15
	movq	%rsp, (%rdi)
	movq	%rsi, %rsp
	popq	%r15
	popq	%r14
	popq	%r13
	popq	%r12
	popq	%rbx
	popq	%rbp
	ret

/* First return of a new process: its trap frame sits on top of the stack. */
	.globl fork_ret
fork_ret:
	jmp	trap_return

	.bss
	.align 8
syscall_user_rsp:
	.quad	0
	.align 16
	.skip	16384
	.globl boot_stack_top
boot_stack_top:

	.section .note.GNU-stack, "", @progbits
