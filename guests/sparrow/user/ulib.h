/* SPDX-License-Identifier: GPL-2.0 */
/* sparrow user library: system call wrappers and a few helpers. */
#ifndef _SPARROW_ULIB_H
#define _SPARROW_ULIB_H

#include <stdint.h>
#include <stddef.h>
#include <stdarg.h>
#include "../abi.h"
#include "../compiler.h"
#include "../fmt.h"

typedef uint8_t u8;
typedef uint32_t u32;
typedef uint64_t u64;

static inline long syscall3(long nr, long a, long b, long c)
{
	long ret;

	asm volatile("syscall"
		     : "=a"(ret)
		     : "a"(nr), "D"(a), "S"(b), "d"(c)
		     : "rcx", "r11", "memory");
	return ret;
}

static inline u64 rdtsc(void)
{
	u32 lo, hi;

	asm volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return ((u64)hi << 32) | lo;
}

static inline __noreturn void sys_exit(int status)
{
	syscall3(SYS_EXIT, status, 0, 0);
	__builtin_unreachable();
}

#define sys_write(fd, buf, len) syscall3(SYS_WRITE, (fd), (long)(buf), (len))
#define sys_fork()		syscall3(SYS_FORK, 0, 0, 0)
#define sys_wait(pid, st)	syscall3(SYS_WAIT, (pid), (long)(st), 0)
#define sys_exec(name, arg)	syscall3(SYS_EXEC, (long)(name), (arg), 0)
#define sys_getpid()		syscall3(SYS_GETPID, 0, 0, 0)
#define sys_yield()		syscall3(SYS_YIELD, 0, 0, 0)
#define sys_mmap(len)		syscall3(SYS_MMAP, (len), 0, 0)
#define sys_munmap(a, len)	syscall3(SYS_MUNMAP, (long)(a), (len), 0)
#define sys_kill(pid)		syscall3(SYS_KILL, (pid), 0, 0)
#define sys_info(p)		syscall3(SYS_INFO, (long)(p), 0, 0)
#define sys_hv_exits()		syscall3(SYS_HV_EXITS, 0, 0, 0)

void *memset(void *d, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n);
size_t strlen(const char *s);
__printf(3, 4) int snprintf(char *buf, size_t size, const char *fmt, ...);
__printf(1, 2) int printf(const char *fmt, ...);

/* Each program's entry (crt0.S): the argument exec passed, the exit status. */
int umain(unsigned long arg);

#endif
