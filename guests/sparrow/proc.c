// SPDX-License-Identifier: GPL-2.0
/*
 * Processes: a fixed table, round-robin scheduling (preemption on the
 * timer tick, on return to user mode), fork, exec of the programs linked
 * into the kernel image, exit, wait and kill.  Slot 0 is the idle loop,
 * which runs on the boot stack.
 */
#include "sparrow.h"

#define ELF_PT_LOAD	1
#define ELF_PF_X	1
#define ELF_PF_W	2

struct elf64_ehdr {
	u8 ident[16];
	u16 type, machine;
	u32 version;
	u64 entry, phoff, shoff;
	u32 flags;
	u16 ehsize, phentsize, phnum, shentsize, shnum, shstrndx;
};

struct elf64_phdr {
	u32 type, flags;
	u64 offset, vaddr, paddr, filesz, memsz, align;
};

static struct proc procs[NPROC];
static u8 kstacks[NPROC][KSTACK_SIZE] __aligned(16);
struct proc *cur = &procs[0];
static struct proc *initproc;
static int next_pid = 1;
bool need_resched;

void proc_init(void)
{
	struct proc *idle = &procs[0];

	idle->state = P_RUNNABLE;
	idle->pid = 0;
	idle->pml4 = kernel_pml4;
	idle->kstack_top = (u64)kstacks[0] + KSTACK_SIZE;
	memcpy(idle->name, "idle", 5);
	tss_set_rsp0(idle->kstack_top);
}

static struct proc *alloc_proc(void)
{
	int i;

	for (i = 1; i < NPROC; i++) {
		struct proc *p = &procs[i];

		if (p->state != P_UNUSED)
			continue;
		memset(p, 0, sizeof(*p));
		p->pml4 = page_alloc();
		if (!p->pml4)
			return NULL;
		/* Slot 0: the kernel's identity map, shared by everyone. */
		((u64 *)phys_to_virt(p->pml4))[0] =
			((u64 *)phys_to_virt(kernel_pml4))[0];
		p->pid = next_pid++;
		p->kstack_top = (u64)kstacks[i] + KSTACK_SIZE;
		p->tf = (struct trapframe *)(p->kstack_top - sizeof(*p->tf));
		p->mmap_next = USER_MMAP_BASE;
		return p;
	}
	return NULL;
}

/* Make p's first switch land in fork_ret, which returns to its frame. */
static void prepare_kstack(struct proc *p)
{
	u64 *sp = (u64 *)p->tf;
	int i;

	*--sp = (u64)fork_ret;
	for (i = 0; i < 6; i++)		/* rbp rbx r12 r13 r14 r15 */
		*--sp = 0;
	p->ksp = (u64)sp;
}

void schedule(void)
{
	struct proc *prev = cur, *next = &procs[0];
	int i, start = cur - procs;

	need_resched = false;
	for (i = 1; i <= NPROC; i++) {
		struct proc *p = &procs[(start + i) % NPROC];

		if (p != &procs[0] && p->state == P_RUNNABLE) {
			next = p;
			break;
		}
	}
	if (next == prev)
		return;
	cur = next;
	if (next->pml4 != prev->pml4)
		write_cr3(next->pml4);
	tss_set_rsp0(next->kstack_top);
	swtch(&prev->ksp, next->ksp);
}

/* On the way back to user mode: die if killed, give up the CPU if asked. */
void check_resched(void)
{
	if (cur->killed)
		do_exit(SP_W_SIGNALED(SP_SIGKILL));
	if (need_resched)
		schedule();
}

static int load_program(struct proc *p, struct trapframe *tf,
			const struct user_prog *prog, u64 arg)
{
	const struct elf64_ehdr *eh = (const void *)prog->start;
	u64 size = prog->end - prog->start;
	int i, err;

	if (size < sizeof(*eh) || memcmp(eh->ident, "\177ELF", 4) ||
	    eh->phoff + (u64)eh->phnum * sizeof(struct elf64_phdr) > size)
		return -SP_ENOEXEC;
	vm_free_user(p);
	for (i = 0; i < eh->phnum; i++) {
		const struct elf64_phdr *ph = (const void *)(prog->start +
			eh->phoff + i * sizeof(*ph));
		u64 start = ph->vaddr & PAGE_MASK, skew = ph->vaddr - start;
		u32 flags = VM_READ;

		if (ph->type != ELF_PT_LOAD)
			continue;
		if (ph->offset + ph->filesz > size || ph->offset < skew)
			return -SP_ENOEXEC;
		if (ph->flags & ELF_PF_W)
			flags |= VM_WRITE;
		if (ph->flags & ELF_PF_X)
			flags |= VM_EXEC;
		/* Demand-paged from the image: nothing is copied yet. */
		err = vm_add(p, start, ALIGN_UP(ph->vaddr + ph->memsz, PAGE_SIZE),
			     flags, prog->start + ph->offset - skew,
			     ph->filesz + skew);
		if (err)
			return err;
	}
	err = vm_add(p, USER_STACK_TOP - USER_STACK_SIZE, USER_STACK_TOP,
		     VM_READ | VM_WRITE | VM_STACK, NULL, 0);
	if (err)
		return err;

	memset(tf, 0, offsetof(struct trapframe, vec));
	tf->rip = eh->entry;
	tf->rsp = USER_STACK_TOP;
	tf->rflags = 0x202;
	tf->cs = USER_CS;
	tf->ss = USER_DS;
	tf->rdi = arg;
	memcpy(p->name, prog->name, sizeof(p->name) - 1);
	return 0;
}

void start_init(int mode)
{
	const struct user_prog *prog = user_prog_find("init");
	struct proc *p = alloc_proc();
	int err;

	if (!prog || !p)
		panic("cannot create init");
	memset(p->tf, 0, sizeof(*p->tf));
	err = load_program(p, p->tf, prog, mode);
	if (err)
		panic("cannot load init: %d", err);
	prepare_kstack(p);
	initproc = p;
	p->state = P_RUNNABLE;

	/* The idle loop: the only place the kernel enables interrupts. */
	for (;;) {
		cli();
		schedule();
		sti_hlt();
	}
}

long do_fork(struct trapframe *tf)
{
	struct proc *child = alloc_proc();

	if (!child)
		return -SP_EAGAIN;
	if (vm_fork(child, cur)) {
		vm_free_user(child);
		page_put(child->pml4);
		child->state = P_UNUSED;
		return -SP_ENOMEM;
	}
	*child->tf = *tf;
	child->tf->rax = 0;
	child->parent = cur;
	memcpy(child->name, cur->name, sizeof(child->name));
	prepare_kstack(child);
	child->state = P_RUNNABLE;
	return child->pid;
}

long do_exec(struct trapframe *tf, const char *name, u64 arg)
{
	const struct user_prog *prog = user_prog_find(name);
	int err;

	if (!prog)
		return -SP_ENOEXEC;
	err = load_program(cur, tf, prog, arg);
	if (err)
		do_exit(SP_W_SIGNALED(SP_SIGKILL));	/* old image is gone */
	return 0;
}

void do_exit(int status)
{
	struct proc *p = cur;
	int i;

	if (p == initproc) {
		u32 code = SP_WIFEXITED(status) ? SP_WEXITSTATUS(status) :
			   0x80 | SP_WTERMSIG(status);

		mm_pv_report();
		kprintf("sparrow: init exited with status %u, powering off\n",
			code);
		poweroff(code);
	}
	vm_free_user(p);
	write_cr3(kernel_pml4);
	page_put(p->pml4);
	p->pml4 = kernel_pml4;

	for (i = 1; i < NPROC; i++) {
		struct proc *q = &procs[i];

		if (q->state != P_UNUSED && q->parent == p) {
			q->parent = initproc;
			if (q->state == P_ZOMBIE &&
			    initproc->state == P_SLEEPING)
				initproc->state = P_RUNNABLE;
		}
	}
	p->exit_status = status;
	p->state = P_ZOMBIE;
	if (p->parent && p->parent->state == P_SLEEPING)
		p->parent->state = P_RUNNABLE;
	schedule();
	panic("zombie %d scheduled", p->pid);
}

long do_wait(int pid, u64 ustatus)
{
	int probe;

	/* Reject a bad status pointer now, not after sleeping. */
	if (ustatus && (copy_from_user(&probe, ustatus, sizeof(probe)) ||
			copy_to_user(ustatus, &probe, sizeof(probe))))
		return -SP_EFAULT;
	for (;;) {
		bool have = false;
		int i;

		for (i = 1; i < NPROC; i++) {
			struct proc *q = &procs[i];

			if (q->state == P_UNUSED || q->parent != cur ||
			    (pid > 0 && q->pid != pid))
				continue;
			have = true;
			if (q->state != P_ZOMBIE)
				continue;
			if (ustatus && copy_to_user(ustatus, &q->exit_status,
						    sizeof(int)))
				return -SP_EFAULT;
			q->state = P_UNUSED;
			return q->pid;
		}
		if (!have)
			return -SP_ECHILD;
		if (cur->killed)
			return -SP_EINVAL;
		cur->state = P_SLEEPING;
		schedule();
	}
}

long do_kill(int pid)
{
	int i;

	for (i = 1; i < NPROC; i++) {
		struct proc *q = &procs[i];

		if (q->state == P_UNUSED || q->state == P_ZOMBIE ||
		    q->pid != pid)
			continue;
		if (q == initproc)
			return -SP_EPERM;
		q->killed = true;
		if (q->state == P_SLEEPING)
			q->state = P_RUNNABLE;
		return 0;
	}
	return -SP_ESRCH;
}
