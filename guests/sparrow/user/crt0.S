/* SPDX-License-Identifier: GPL-2.0 */
/* User program entry: RDI = the argument exec passed; exit(umain(arg)). */
	.section .text.start, "ax"
	.globl _start
_start:
	xorl	%ebp, %ebp
	andq	$-16, %rsp
	call	umain
	movq	%rax, %rdi
	xorl	%eax, %eax		/* SYS_EXIT */
	syscall
	ud2

	.section .note.GNU-stack, "", @progbits
