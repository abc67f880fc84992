/* SPDX-License-Identifier: GPL-2.0 */
/* The formatter shared by the kernel and the user programs (fmt.c). */
#ifndef _SPARROW_FMT_H
#define _SPARROW_FMT_H

#include <stddef.h>
#include <stdarg.h>

int kvsnprintf(char *buf, size_t size, const char *fmt, va_list ap);

#endif /* _SPARROW_FMT_H */
