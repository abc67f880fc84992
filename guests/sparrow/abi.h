/* SPDX-License-Identifier: GPL-2.0 */
/*
 * sparrow's system call ABI, shared by the kernel and its user programs.
 * SYSCALL with the number in RAX, arguments in RDI, RSI, RDX; result in RAX
 * (negative errno on failure).  RCX and R11 are clobbered, as usual.
 */
#ifndef _SPARROW_ABI_H
#define _SPARROW_ABI_H

#define SYS_EXIT	0	/* (status) */
#define SYS_WRITE	1	/* (fd, buf, len) -> len */
#define SYS_FORK	2	/* () -> child pid / 0 */
#define SYS_WAIT	3	/* (pid or -1, int *status) -> pid */
#define SYS_EXEC	4	/* (name, arg) -> only on failure */
#define SYS_GETPID	5
#define SYS_YIELD	6
#define SYS_MMAP	7	/* (len) -> address of demand-zero memory */
#define SYS_MUNMAP	8	/* (addr, len): a whole mapping */
#define SYS_KILL	9	/* (pid) */
#define SYS_INFO	10	/* (struct sparrow_info *) */
#define SYS_HV_EXITS	11	/* () -> hypervisor exits so far, or -ENOSYS */
#define NR_SYSCALLS	12

#define SP_EPERM	1
#define SP_ESRCH	3
#define SP_ENOEXEC	8
#define SP_ECHILD	10
#define SP_EAGAIN	11
#define SP_ENOMEM	12
#define SP_EFAULT	14
#define SP_EINVAL	22
#define SP_ENOSYS	38

/* Wait status, in the traditional encoding. */
#define SP_W_EXITED(code)	(((code) & 0xff) << 8)
#define SP_W_SIGNALED(sig)	((sig) & 0x7f)
#define SP_WIFEXITED(s)		(((s) & 0x7f) == 0)
#define SP_WEXITSTATUS(s)	(((s) >> 8) & 0xff)
#define SP_WTERMSIG(s)		((s) & 0x7f)
#define SP_SIGILL	4
#define SP_SIGKILL	9
#define SP_SIGSEGV	11
#define SP_SIGFPE	8

/* User address space: PML4 slot 1 up to (not including) slot 2. */
#define USER_BASE	0x0000008000000000ULL
#define USER_END	0x0000010000000000ULL
#define USER_MMAP_BASE	0x0000009000000000ULL
#define USER_STACK_TOP	0x000000ff00000000ULL
#define USER_STACK_SIZE	(1024 * 1024ULL)

/* init's argument: the mode= of the boot command line. */
enum sparrow_mode {
	MODE_SELFTEST,		/* mode=selftest (default) */
	MODE_BENCH,		/* mode=bench */
	MODE_DEMO,		/* mode=demo */
	MODE_SELFTEST_FAIL,	/* mode=selftest-fail: plus a failing test */
};

struct sparrow_info {
	unsigned long tsc_khz;
	unsigned long free_pages;
	unsigned long jiffies;
	unsigned long hz;
	unsigned long mode;
	unsigned long boot_flags;
	unsigned long nr_faults;	/* page faults taken by the caller */
};

#endif /* _SPARROW_ABI_H */
