/* SPDX-License-Identifier: GPL-2.0 */
/* vmctl-entry: functions shared between shim32.S, shim.c and loader.c. */
#ifndef _VMCTL_ENTRY_SHIM_H
#define _VMCTL_ENTRY_SHIM_H

#include <stdint.h>
#include <stddef.h>
#include <stdarg.h>

/* shim32.S */
void enter_kernel(uint64_t entry, uint64_t cr3, const void *gdtr,
		  uint64_t rsp, uint64_t boot_info);
/* shim.c, called from shim32.S */
void shim_main(uint32_t mbi_addr);

/* The C library functions vmctl's loader uses (shim.c, sparrow's lib.c). */
int vsnprintf(char *buf, size_t size, const char *fmt, va_list ap);
void qsort(void *base, size_t n, size_t size,
	   int (*cmp)(const void *, const void *));
size_t strlen(const char *s);
void *memcpy(void *d, const void *s, size_t n);

#endif /* _VMCTL_ENTRY_SHIM_H */
