// SPDX-License-Identifier: GPL-2.0
/*
 * The fuzzer's iteration (fuzz_common.c) driven by a plain PRNG, so that
 * it runs under gcc's ASan+UBSan without libFuzzer: random instruction
 * bytes (biased towards prefixes and the privileged opcodes) at random
 * CPU states.  Passes if nothing crashes, hangs or reads out of bounds.
 */
#include <stdlib.h>

#include "tap.h"
#include "fuzz_common.h"

static uint64_t s = 0x2545f4914f6cdd1dULL;

static uint64_t rnd(void)
{
	s ^= s << 13;
	s ^= s >> 7;
	s ^= s << 17;
	return s;
}

static const uint8_t hot[] = {
	0x0f, 0x01, 0x00, 0x22, 0x20, 0x30, 0x32, 0x07, 0x05, 0xcf, 0xcb,
	0xca, 0x8e, 0xcd, 0xcc, 0xf1, 0xfa, 0xfb, 0xf4, 0x6c, 0x6d, 0x6e,
	0x6f, 0xe4, 0xe5, 0xe6, 0xe7, 0xec, 0xee, 0xf3, 0x66, 0x67, 0x48,
	0x44, 0xff, 0xa1, 0xa9, 0xb2, 0xd1, 0xc1, 0xf8, 0x18, 0x10, 0xd8,
};

static void test_random_bytes(void)
{
	uint8_t buf[48];
	unsigned int i, j;

	for (i = 0; i < 150000; i++) {
		for (j = 0; j < sizeof(buf); j++)
			buf[j] = (j >= 18 && (rnd() & 1)) ?
				 hot[rnd() % sizeof(hot)] : (uint8_t)rnd();
		fuzz_one(buf, 18 + rnd() % 31);
	}
}

int main(void)
{
	RUN(test_random_bytes);
	return tap_done();
}
