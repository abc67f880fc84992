// SPDX-License-Identifier: GPL-2.0
/*
 * libFuzzer target: random bytes at random virtual CPU states through
 * the decoder, the emulator and exception delivery (fuzz_common.c).
 *
 *   make -C selftests/unit ../../build/unit/fuzz_emulate
 *   build/unit/fuzz_emulate -max_len=64 corpus/
 */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_one(data, size);
	return 0;
}
