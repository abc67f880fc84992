/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A multiboot "boot loader" that enters a kernel the way trapvm does.
 * QEMU loads this shim (at 128 MiB) and the guest kernel as a multiboot
 * module; the 32-bit entry here enters long mode on its own tables
 * (identity map of 4 GiB, plus guest RAM aliased at 64 GiB so that the
 * loader can address it without a NULL base), and shim.c runs vmctl's own
 * loader (tools/vmctl/loader.c) over guest RAM, then jumps to the kernel
 * with exactly the register state vmctl gives it.
 */
#define MB_MAGIC	0x1badb002
#define MB_FLAGS	0x00010003	/* page-aligned modules, memory info,
					 * address fields valid */

	.section .multiboot, "ax"
	.align 4
mb_header:
	.long MB_MAGIC
	.long MB_FLAGS
	.long -(MB_MAGIC + MB_FLAGS)
	.long mb_header
	.long __image_start
	.long __load_end
	.long __image_end
	.long shim_start32

	.text
	.code32
	.globl shim_start32
shim_start32:
	cli
	cld
	movl	$shim_stack_top, %esp
	movl	%ebx, %ebp			/* multiboot information */

	movl	$shim_pml4, %edi
	xorl	%eax, %eax
	movl	$(6 * 4096 / 4), %ecx
	rep stosl

	movl	$shim_pdpt, %eax
	orl	$0x3, %eax
	movl	%eax, shim_pml4
	movl	$shim_pd, %eax
	orl	$0x3, %eax
	xorl	%ecx, %ecx
1:	movl	%eax, shim_pdpt(, %ecx, 8)
	addl	$4096, %eax
	incl	%ecx
	cmpl	$4, %ecx
	jne	1b
	/* 64 GiB: alias of the first GiB (guest RAM for the loader). */
	movl	$shim_pd, %eax
	orl	$0x3, %eax
	movl	%eax, shim_pdpt + 64 * 8

	movl	$0x83, %eax
	xorl	%ecx, %ecx
2:	movl	%eax, shim_pd(, %ecx, 8)
	addl	$0x200000, %eax
	incl	%ecx
	cmpl	$2048, %ecx
	jne	2b

	/* The trapvm entry state: CR4 PAE|OSFXSR|OSXMMEXCPT, EFER LME|NXE|SCE. */
	movl	%cr4, %eax
	orl	$0x620, %eax
	movl	%eax, %cr4
	movl	$shim_pml4, %eax
	movl	%eax, %cr3
	movl	$0xc0000080, %ecx
	rdmsr
	orl	$0x901, %eax
	wrmsr
	movl	%cr0, %eax
	orl	$0x80010001, %eax
	movl	%eax, %cr0

	lgdt	shim_gdt_desc
	ljmp	$0x10, $shim_start64

	.code64
shim_start64:
	movl	$0x18, %eax
	movl	%eax, %ds
	movl	%eax, %es
	movl	%eax, %ss
	movl	%ebp, %edi
	call	shim_main
1:	hlt
	jmp	1b

/*
 * void enter_kernel(u64 entry, u64 cr3, const void *gdtr, u64 rsp,
 *		     u64 boot_info): the guest ABI's entry state.
 */
	.globl enter_kernel
enter_kernel:
	cli
	cld
	lgdt	(%rdx)
	movq	%rsi, %cr3
	movl	$0x18, %eax
	movl	%eax, %ds
	movl	%eax, %es
	movl	%eax, %ss
	xorl	%eax, %eax
	movl	%eax, %fs
	movl	%eax, %gs
	movq	%rcx, %rsp
	pushq	$0x10
	pushq	%rdi
	movq	%r8, %rdi
	xorl	%esi, %esi
	xorl	%edx, %edx
	xorl	%ecx, %ecx
	xorl	%r8d, %r8d
	xorl	%ebp, %ebp
	lretq

	.section .rodata
	.align 16
shim_gdt:
	.quad	0
	.quad	0x00cf9a000000ffff
	.quad	0x00af9a000000ffff
	.quad	0x00cf92000000ffff
shim_gdt_desc:
	.word	shim_gdt_desc - shim_gdt - 1
	.long	shim_gdt

	.bss
	.align 4096
shim_pml4:	.skip 4096
shim_pdpt:	.skip 4096
shim_pd:	.skip 4 * 4096
	.align 16
	.skip 16384
shim_stack_top:

	.section .note.GNU-stack, "", @progbits
