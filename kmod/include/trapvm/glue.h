/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The thin layer that lets kernel-agnostic trapvm code (decoder, emulator,
 * guest page-table walker, shadow bookkeeping) compile both into the module
 * and into userspace unit tests and fuzzers.  Only what such code needs.
 */
#ifndef _TRAPVM_GLUE_H
#define _TRAPVM_GLUE_H

#ifdef __KERNEL__
#include <linux/types.h>
#include <linux/string.h>
#include <linux/compiler.h>
#include <linux/bits.h>
#include <linux/kernel.h>
#else
#include <stdint.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

typedef uint8_t u8;
typedef uint16_t u16;
typedef uint32_t u32;
typedef uint64_t u64;
typedef int8_t s8;
typedef int16_t s16;
typedef int32_t s32;
typedef int64_t s64;

#define likely(x)	__builtin_expect(!!(x), 1)
#define unlikely(x)	__builtin_expect(!!(x), 0)
#define BIT(n)		(1UL << (n))
#define BIT_ULL(n)	(1ULL << (n))
#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))
#define fallthrough	__attribute__((__fallthrough__))
#endif /* __KERNEL__ */

#endif /* _TRAPVM_GLUE_H */
