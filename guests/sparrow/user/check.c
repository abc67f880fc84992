// SPDX-License-Identifier: GPL-2.0
/*
 * "check": the program exec'ed by the self-test and the fork+exec
 * benchmark.  It verifies that its initialized data (demand-paged from the
 * image, spanning several pages) and its .bss (demand-zero) are what the
 * ELF file says, then exits with (arg * 7 + 3) & 0xff, or 0xee on error.
 */
#include "ulib.h"

static u64 words[1500] = {
	[0] = 0x1111111111111111ULL,
	[511] = 0x2222,
	[512] = 0x3333,
	[1499] = 0x4444,
};
static u64 zeros[3000];

int umain(unsigned long arg)
{
	int i;

	/* The values come from the ELF file, not from what the compiler saw. */
	use_memory(words);
	use_memory(zeros);
	for (i = 0; i < 1500; i++) {
		u64 want = i == 0 ? 0x1111111111111111ULL : i == 511 ? 0x2222 :
			   i == 512 ? 0x3333 : i == 1499 ? 0x4444 : 0;

		if (words[i] != want)
			return 0xee;
		words[i] = ~want;
	}
	for (i = 0; i < 3000; i++) {
		if (zeros[i])
			return 0xee;
		zeros[i] = i;
	}
	return (arg * 7 + 3) & 0xff;
}
