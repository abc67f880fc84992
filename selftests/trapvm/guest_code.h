/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Guest code inside a test binary: GUEST_CODE(name, "asm") assembles the
 * instructions into .rodata between the symbols name and name_end, for a
 * test to copy into guest RAM.  The code must be position independent.
 */
#ifndef _TRAPVM_SELFTEST_GUEST_CODE_H
#define _TRAPVM_SELFTEST_GUEST_CODE_H

#define GUEST_CODE(name, body)						\
	extern const unsigned char name[], name##_end[];		\
	asm(".pushsection .rodata\n" #name ":\n" body "\n"		\
	    #name "_end:\n.popsection\n")

#endif /* _TRAPVM_SELFTEST_GUEST_CODE_H */
