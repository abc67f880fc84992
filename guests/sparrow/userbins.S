/* SPDX-License-Identifier: GPL-2.0 */
/* The user programs, linked into the kernel image as ELF files. */
	.section .rodata
	.align 16
init_elf:
	.incbin "user/init.elf"
init_elf_end:
	.align 16
check_elf:
	.incbin "user/check.elf"
check_elf_end:

name_init:	.asciz "init"
name_check:	.asciz "check"

	.align 8
	.globl user_progs
user_progs:
	.quad name_init, init_elf, init_elf_end
	.quad name_check, check_elf, check_elf_end
	.quad 0, 0, 0

	.section .note.GNU-stack, "", @progbits
