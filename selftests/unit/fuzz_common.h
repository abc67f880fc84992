/* SPDX-License-Identifier: GPL-2.0 */
#ifndef _UNIT_FUZZ_COMMON_H
#define _UNIT_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>

/* Run one fuzz input through decode + emulate (+ delivery); aborts on a
 * broken invariant.  Shared by the libFuzzer target and the plain loop. */
void fuzz_one(const uint8_t *data, size_t size);

#endif
