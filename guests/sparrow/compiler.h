/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The compiler attributes and barriers sparrow uses, under the names the
 * kernel coding style expects (this is the one place that spells them out).
 */
#ifndef _SPARROW_COMPILER_H
#define _SPARROW_COMPILER_H

#define __packed		__attribute__((packed))
#define __aligned(x)		__attribute__((aligned(x)))
#define __noreturn		__attribute__((noreturn))
#define __printf(a, b)		__attribute__((format(printf, a, b)))
#define __section(s)		__attribute__((section(s)))
#define noinline		__attribute__((noinline))

#define BIT(n)			(1U << (n))
#define BIT_ULL(n)		(1ULL << (n))
#define ARRAY_SIZE(a)		(sizeof(a) / sizeof((a)[0]))

/* Forget what the compiler knows about memory. */
static inline void barrier(void)
{
	asm volatile("" : : : "memory");
}

/* Make the compiler believe the object at p is read, and may change. */
static inline void use_memory(const void *p)
{
	asm volatile("" : : "r"(p) : "memory");
}

/* A value the compiler cannot see through. */
static inline unsigned long hide_value(unsigned long v)
{
	asm volatile("" : "+r"(v));
	return v;
}

#endif /* _SPARROW_COMPILER_H */
