// SPDX-License-Identifier: GPL-2.0
/* System calls (see abi.h for the calling convention). */
#include "sparrow.h"

#define SP_EBADF	9
#define MAX_WRITE	(1UL << 20)

static long sys_write(u64 fd, u64 buf, u64 len)
{
	char kbuf[128];
	u64 done = 0;

	if (fd != 1 && fd != 2)
		return -SP_EBADF;
	if (len > MAX_WRITE)
		return -SP_EINVAL;
	/* Validate the whole buffer first: no partial output on -EFAULT. */
	for (done = 0; done < len; done += sizeof(kbuf)) {
		u64 n = len - done < sizeof(kbuf) ? len - done : sizeof(kbuf);

		if (copy_from_user(kbuf, buf + done, n))
			return -SP_EFAULT;
	}
	for (done = 0; done < len; done += sizeof(kbuf)) {
		u64 n = len - done < sizeof(kbuf) ? len - done : sizeof(kbuf);

		copy_from_user(kbuf, buf + done, n);
		uart_write(kbuf, n);
	}
	return len;
}

static long sys_info(u64 uptr)
{
	struct sparrow_info info = {
		.tsc_khz = tsc_khz,
		.free_pages = pages_free(),
		.jiffies = jiffies,
		.hz = HZ,
		.mode = boot_mode,
		.boot_flags = boot_info.flags,
		.nr_faults = cur->nr_faults,
	};

	if (copy_to_user(uptr, &info, sizeof(info)))
		return -SP_EFAULT;
	return 0;
}

const struct user_prog *user_prog_find(const char *name)
{
	const struct user_prog *p;

	for (p = user_progs; p->name; p++)
		if (!strcmp(p->name, name))
			return p;
	return NULL;
}

void syscall_dispatch(struct trapframe *tf)
{
	u64 a0 = tf->rdi, a1 = tf->rsi, a2 = tf->rdx;
	char name[32];
	long ret;

	switch (tf->rax) {
	case SYS_EXIT:
		do_exit(SP_W_EXITED(a0));
	case SYS_WRITE:
		ret = sys_write(a0, a1, a2);
		break;
	case SYS_FORK:
		ret = do_fork(tf);
		break;
	case SYS_WAIT:
		ret = do_wait((int)a0, a1);
		break;
	case SYS_EXEC:
		ret = strncpy_from_user(name, a0, sizeof(name));
		if (ret >= 0)
			ret = do_exec(tf, name, a1);
		break;
	case SYS_GETPID:
		ret = cur->pid;
		break;
	case SYS_YIELD:
		need_resched = true;
		ret = 0;
		break;
	case SYS_MMAP:
		ret = (a0 && a0 <= BIT_ULL(32)) ? (long)vm_map_anon(cur, a0) :
		      -SP_EINVAL;
		break;
	case SYS_MUNMAP:
		ret = vm_remove(cur, a0, a0 + ALIGN_UP(a1, PAGE_SIZE));
		break;
	case SYS_KILL:
		ret = do_kill((int)a0);
		break;
	case SYS_INFO:
		ret = sys_info(a0);
		break;
	case SYS_HV_EXITS:
		ret = (long)hv_exit_count();
		break;
	default:
		ret = -SP_ENOSYS;
		break;
	}
	tf->rax = ret;
	check_resched();
}
