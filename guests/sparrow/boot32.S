/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Native entry: a multiboot (v1) header with the "a.out kludge" addresses,
 * because QEMU refuses to multiboot an ELF64 file but happily loads a flat
 * image described by the header.  The 32-bit entry builds temporary page
 * tables identity-mapping the first 4 GiB with 2 MiB pages, enters long mode,
 * converts the multiboot information into a struct trapvm_boot_info and
 * jumps to the same 64-bit entry trapvm uses (entry.S: _start64), in the
 * state the trapvm guest ABI describes (CS 0x10, SS/DS 0x18, IF 0, RDI =
 * boot info).
 */
#define MB_MAGIC	0x1badb002
#define MB_FLAGS	0x00010002	/* memory info, address fields valid */

	.section .multiboot, "ax"
	.align 4
	.globl mb_header
mb_header:
	.long MB_MAGIC
	.long MB_FLAGS
	.long -(MB_MAGIC + MB_FLAGS)
	.long mb_header			/* header_addr */
	.long __image_start		/* load_addr */
	.long __load_end		/* load_end_addr */
	.long __image_end		/* bss_end_addr */
	.long _start32			/* entry_addr */

	.section .text.boot32, "ax"
	.code32
	.globl _start32
_start32:
	cli
	cld
	movl	$boot32_stack_top, %esp
	movl	%eax, %esi		/* multiboot magic */
	movl	%ebx, %edi		/* multiboot information */

	/* Zero the boot tables (they live in .boot.bss). */
	movl	$boot_pml4, %ebx
	xorl	%eax, %eax
	movl	$(6 * 4096 / 4), %ecx
	pushl	%edi
	movl	%ebx, %edi
	rep stosl
	popl	%edi

	/* PML4[0] -> PDPT, PDPT[0..3] -> 4 PDs of 2 MiB pages. */
	movl	$boot_pdpt, %eax
	orl	$0x3, %eax
	movl	%eax, boot_pml4
	movl	$boot_pd, %eax
	orl	$0x3, %eax
	xorl	%ecx, %ecx
1:	movl	%eax, boot_pdpt(, %ecx, 8)
	addl	$4096, %eax
	incl	%ecx
	cmpl	$4, %ecx
	jne	1b

	movl	$0x83, %eax		/* P | W | PS */
	xorl	%ecx, %ecx
2:	movl	%eax, boot_pd(, %ecx, 8)
	movl	$0, boot_pd + 4(, %ecx, 8)
	addl	$0x200000, %eax
	incl	%ecx
	cmpl	$2048, %ecx
	jne	2b

	/* CR4.PAE, CR3, EFER.LME|NXE|SCE, CR0.PG|WP. */
	movl	%cr4, %eax
	orl	$0x20, %eax
	movl	%eax, %cr4
	movl	$boot_pml4, %eax
	movl	%eax, %cr3
	movl	$0xc0000080, %ecx
	rdmsr
	orl	$0x901, %eax
	wrmsr
	movl	%cr0, %eax
	orl	$0x80010001, %eax
	movl	%eax, %cr0

	lgdt	boot_gdt_desc
	ljmp	$0x10, $start64_from_32

	.code64
start64_from_32:
	movl	$0x18, %eax
	movl	%eax, %ds
	movl	%eax, %es
	movl	%eax, %ss
	xorl	%eax, %eax
	movl	%eax, %fs
	movl	%eax, %gs
	movl	$boot32_stack_top, %esp
	/* edi = multiboot info, esi = magic: build the boot info in C. */
	call	mb_to_boot_info
	movq	%rax, %rdi
	movq	$boot32_stack_top, %rsp
	jmp	_start64

	.section .rodata.boot32, "a"
	.align 16
boot_gdt:
	.quad	0
	.quad	0x00cf9a000000ffff	/* 0x08: 32-bit code (unused) */
	.quad	0x00af9a000000ffff	/* 0x10: 64-bit kernel code */
	.quad	0x00cf92000000ffff	/* 0x18: kernel data */
boot_gdt_desc:
	.word	boot_gdt_desc - boot_gdt - 1
	.long	boot_gdt

	.section .boot.bss, "aw", @nobits
	.align 4096
	.globl boot_pml4
boot_pml4:	.skip 4096
boot_pdpt:	.skip 4096
boot_pd:	.skip 4 * 4096
	.align 16
boot32_stack:	.skip 16384
boot32_stack_top:

	.section .note.GNU-stack, "", @progbits
