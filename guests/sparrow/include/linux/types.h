/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Freestanding stand-in for <linux/types.h>: sparrow is built with
 * -nostdinc, but includes the trapvm uapi headers, which want __u32 & co.
 */
#ifndef _SPARROW_LINUX_TYPES_H
#define _SPARROW_LINUX_TYPES_H

typedef unsigned char __u8;
typedef unsigned short __u16;
typedef unsigned int __u32;
typedef unsigned long __u64;
typedef signed char __s8;
typedef short __s16;
typedef int __s32;
typedef long __s64;

#endif
