// SPDX-License-Identifier: GPL-2.0
/*
 * Exceptions and interrupts.  A fault in user mode that the memory code
 * cannot resolve kills only the faulting process; any exception in the
 * kernel is a bug and panics.
 */
#include "sparrow.h"

static const char *const exc_names[32] = {
	"#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM",
	"#DF", "?9", "#TS", "#NP", "#SS", "#GP", "#PF", "?15",
	"#MF", "#AC", "#MC", "#XM", "#VE", "#CP",
};

static int exc_signal(u64 vec)
{
	switch (vec) {
	case 0:
	case 16:
	case 19:
		return SP_SIGFPE;
	case 6:
		return SP_SIGILL;
	default:
		return SP_SIGSEGV;
	}
}

void trap(struct trapframe *tf)
{
	bool user = (tf->cs & 3) == 3;
	u64 cr2 = 0;

	if (tf->vec == VEC_TIMER) {
		jiffies++;
		apic_eoi();
		need_resched = true;
		if (user)
			check_resched();
		return;
	}
	if (tf->vec == VEC_SPURIOUS)
		return;
	if (tf->vec >= 32) {
		kprintf("sparrow: unexpected interrupt %lu\n", tf->vec);
		apic_eoi();
		return;
	}

	if (tf->vec == 14)
		cr2 = read_cr2();
	if (!user && tf->vec == 6 && tf->rip == (u64)hypercall_insn) {
		/* VMCALL without a hypervisor to take it: -ENOSYS. */
		tf->rax = (u64)-SP_ENOSYS;
		tf->rip += 3;
		return;
	}
	if (!user)
		panic("%s in kernel: rip %lx err %lx cr2 %lx rsp %lx",
		      exc_names[tf->vec] ? exc_names[tf->vec] : "?", tf->rip,
		      tf->err, cr2, tf->rsp);

	if (tf->vec == 14) {
		int err = vm_fault(cur, cr2, tf->err);

		if (!err) {
			check_resched();
			return;
		}
		if (err == -SP_ENOMEM) {
			kprintf("sparrow: pid %d (%s) killed: out of memory at %lx\n",
				cur->pid, cur->name, cr2);
			do_exit(SP_W_SIGNALED(SP_SIGKILL));
		}
	}
	kprintf("sparrow: pid %d (%s) killed: %s rip %lx err %lx addr %lx\n",
		cur->pid, cur->name, exc_names[tf->vec] ? exc_names[tf->vec] : "?",
		tf->rip, tf->err, cr2);
	do_exit(SP_W_SIGNALED(exc_signal(tf->vec)));
}
