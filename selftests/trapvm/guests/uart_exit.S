/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A minimal guest for `vmctl run`: checks the boot information it was
 * given, prints two lines on COM1 (polling LSR, then with REP OUTSB) and
 * exits through port 0xf4 with status 42.  Status 3 means bad boot info,
 * 4 a boot stack that does not work, 5 a wrong TRAPVM_HC_VERSION answer.
 */
#define COM1		0x3f8
#define EXIT_PORT	0xf4
#define BOOT_MAGIC	0x4d565054

	.code64
	.text
	.globl	_start
_start:
	/* RDI: struct trapvm_boot_info (magic, then version 1) */
	cmpl	$BOOT_MAGIC, (%rdi)
	jne	bad_boot_info
	cmpl	$1, 4(%rdi)
	jne	bad_boot_info

	/* the boot stack works */
	movq	$0x1234, %rax
	pushq	%rax
	popq	%rbx
	cmpq	%rax, %rbx
	jne	bad_stack

	/* hypercall 0 (TRAPVM_HC_VERSION) answers TRAPVM_BOOT_VERSION */
	movq	%rdi, %r12
	xorl	%eax, %eax
	vmcall
	cmpq	$1, %rax
	jne	bad_hypercall
	movq	%r12, %rdi

	/* line 1: wait for THRE in LSR before every byte */
	leaq	line1(%rip), %rsi
	movl	$line1_len, %ecx
1:	movw	$COM1 + 5, %dx
2:	inb	%dx, %al
	testb	$0x20, %al
	jz	2b
	movw	$COM1, %dx
	lodsb
	outb	%al, %dx
	loop	1b

	/* line 2: one string I/O instruction */
	leaq	line2(%rip), %rsi
	movl	$line2_len, %ecx
	movw	$COM1, %dx
	cld
	rep outsb

	movl	$42, %eax
	jmp	exit

bad_boot_info:
	movl	$3, %eax
	jmp	exit
bad_stack:
	movl	$4, %eax
	jmp	exit
bad_hypercall:
	movl	$5, %eax
exit:
	movw	$EXIT_PORT, %dx
	outl	%eax, %dx
	hlt
	jmp	exit

	.section .rodata
line1:	.ascii	"hello from a trapvm guest\n"
	.set	line1_len, . - line1
line2:	.ascii	"second line through rep outsb\n"
	.set	line2_len, . - line2
