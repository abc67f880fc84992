// SPDX-License-Identifier: GPL-2.0
/*
 * Memory: a physical page allocator built from the boot memory map, the
 * kernel's identity map, per-process 4-level page tables, demand paging
 * (zero-fill and from program images), copy-on-write fork, and user-memory
 * access that walks the page tables in software so that a bad user pointer
 * is an -EFAULT, never a kernel page fault.
 */
#include "sparrow.h"

#define MAX_PHYS	0x80000000ULL		/* 2 GiB of RAM is plenty */
#define NR_FRAMES	(MAX_PHYS / PAGE_SIZE)
#define PT_FLAGS	(PTE_P | PTE_W | PTE_U)	/* user intermediate tables */

static u16 page_ref[NR_FRAMES];
static u64 free_list;
static u64 nr_free;
u64 kernel_pml4;

/*
 * Page-table writes in bulk (fork, teardown, munmap).  Under trapvm every
 * store to a page table traps and is emulated; pt_set() instead queues the
 * (entry, value) pair and pt_flush() hands the queue to the hypervisor in
 * one TRAPVM_HC_MMU_UPDATE, which stores each value exactly as our own
 * store would have.  Natively, with pv_mmu=0, or once the hypercall has
 * failed, pt_set() is a plain store and pt_flush() only frees tables.
 *
 * The batch only pays for stores that would trap: the hypervisor write-
 * protects a table once a page walk has gone through it, and a walk sets
 * the accessed bit of every entry it uses (SDM 4.8), so a table whose
 * upper entry has A clear is not tracked and plain stores to it cost
 * nothing, while each batched entry costs the hypervisor some work.
 * pt_write(pte, value, walked) is pt_set() for tables that may have been
 * walked and a plain store for the others (fork's new tables, a dead
 * process's tables it never used).  Either way the same value reaches
 * memory; only the cost differs.
 *
 * Until pt_flush() a queued entry still holds its old value in memory, so:
 * every bulk operation flushes before it returns (nothing else, not the
 * fault handler, not a CR3 switch, not the return to user mode, ever sees
 * a non-empty queue); nothing reads an entry back after queueing it; the
 * INVLPG or CR3 reload that the architecture requires after a downgrade
 * comes after the flush (before it the stale entry could be cached anew);
 * and a page-table page that still has queued writes into it is not freed
 * (pt_defer_free) until the queue is flushed and the TLB invalidated, so
 * that it cannot be reused while a late write could land in it.
 */
bool pv_mmu;
static struct trapvm_mmu_update pt_queue[TRAPVM_MMU_UPDATE_MAX] __aligned(64);
static unsigned int pt_queued;
#define PT_DEFER_MAX	64
static u64 pt_deferred[PT_DEFER_MAX];
static unsigned int pt_ndeferred;
static u64 pv_mmu_batches, pv_mmu_entries;

/* Flush the queue: afterwards every pt_set() so far is in memory. */
static void pt_flush(void)
{
	unsigned int i, n = pt_queued;
	long ret;

	if (!n)
		return;
	pt_queued = 0;
	ret = hypercall(TRAPVM_HC_MMU_UPDATE, (u64)pt_queue, n, 0, 0);
	if (ret == (long)n) {
		pv_mmu_batches++;
		pv_mmu_entries += n;
		return;
	}
	/* All or nothing (guest-abi.rst): store them ourselves. */
	kprintf("sparrow: TRAPVM_HC_MMU_UPDATE(%u) = %ld, now plain stores\n",
		n, ret);
	pv_mmu = false;
	for (i = 0; i < n; i++)
		*(u64 *)phys_to_virt(pt_queue[i].pte_gpa) = pt_queue[i].value;
}

static void pt_set(u64 *pte, u64 val)
{
	if (!pv_mmu) {
		*pte = val;
		return;
	}
	pt_queue[pt_queued].pte_gpa = (u64)pte;	/* identity mapped */
	pt_queue[pt_queued].value = val;
	if (++pt_queued == TRAPVM_MMU_UPDATE_MAX)
		pt_flush();
}

/* pt_set() if the table holding pte may be tracked, else a plain store. */
static void pt_write(u64 *pte, u64 val, bool walked)
{
	if (walked)
		pt_set(pte, val);
	else
		*pte = val;
}

/* Free the deferred tables: only after pt_flush() and the invalidation. */
static void pt_free_deferred(void)
{
	unsigned int i;

	for (i = 0; i < pt_ndeferred; i++)
		page_put(pt_deferred[i]);
	pt_ndeferred = 0;
}

/* Free page table pa of p once its unlinking is in memory and the TLB. */
static void pt_defer_free(struct proc *p, u64 pa)
{
	if (pt_ndeferred == PT_DEFER_MAX) {
		pt_flush();
		if (p == cur)
			write_cr3(p->pml4);
		pt_free_deferred();
	}
	pt_deferred[pt_ndeferred++] = pa;
}

/*
 * Choose the path once at boot: the batch under trapvm unless the command
 * line says pv_mmu=0, and only if the hypercall answers (an empty batch).
 */
void mm_pv_init(void)
{
	const char *v = cmdline_value("pv_mmu");
	long ret;

	if (!(boot_info.flags & TRAPVM_BOOT_F_TRAPVM)) {
		kprintf("sparrow: page tables: plain stores (not under trapvm)\n");
		return;
	}
	if (v && *v == '0') {
		kprintf("sparrow: page tables: plain stores (pv_mmu=0)\n");
		return;
	}
	ret = hypercall(TRAPVM_HC_MMU_UPDATE, (u64)pt_queue, 0, 0, 0);
	if (ret) {
		kprintf("sparrow: page tables: plain stores (TRAPVM_HC_MMU_UPDATE answers %ld)\n",
			ret);
		return;
	}
	pv_mmu = true;
	kprintf("sparrow: page tables: TRAPVM_HC_MMU_UPDATE batches of up to %u (pv_mmu=1)\n",
		TRAPVM_MMU_UPDATE_MAX);
}

void mm_pv_report(void)
{
	kprintf("sparrow: pv_mmu %s: %lu batches, %lu entries\n",
		pv_mmu ? "on" : "off", pv_mmu_batches, pv_mmu_entries);
}

static void free_page_raw(u64 pa)
{
	*(u64 *)phys_to_virt(pa) = free_list;
	free_list = pa;
	nr_free++;
}

u64 page_alloc(void)
{
	u64 pa = free_list;

	if (!pa)
		return 0;
	free_list = *(u64 *)phys_to_virt(pa);
	nr_free--;
	memset(phys_to_virt(pa), 0, PAGE_SIZE);
	page_ref[pa / PAGE_SIZE] = 1;
	return pa;
}

void page_get(u64 pa)
{
	page_ref[pa / PAGE_SIZE]++;
}

void page_put(u64 pa)
{
	if (!page_ref[pa / PAGE_SIZE])
		panic("%s: free page %lx", __func__, pa);
	if (--page_ref[pa / PAGE_SIZE] == 0)
		free_page_raw(pa);
}

u64 pages_free(void)
{
	return nr_free;
}

void mm_init(void)
{
	u64 kstart = (u64)__image_start, kend = ALIGN_UP((u64)__image_end,
							 PAGE_SIZE);
	u64 pdpt, i;
	u32 r;

	for (r = 0; r < boot_info.nr_mem_ranges && r < TRAPVM_BOOT_MAX_MEM_RANGES;
	     r++) {
		const struct trapvm_mem_range *m = &boot_info.mem[r];
		u64 a = ALIGN_UP(m->addr, PAGE_SIZE);
		u64 e = (m->addr + m->size) & PAGE_MASK;

		if (m->type != TRAPVM_MEM_RAM)
			continue;
		if (e > MAX_PHYS)
			e = MAX_PHYS;
		if (a < 0x100000)	/* keep low memory (BIOS, boot data) */
			a = 0x100000;
		for (; a < e; a += PAGE_SIZE) {
			u32 k;
			bool skip = a >= kstart && a < kend;

			/* RESERVED/KERNEL ranges win over overlapping RAM. */
			for (k = 0; k < boot_info.nr_mem_ranges && !skip; k++) {
				const struct trapvm_mem_range *o =
					&boot_info.mem[k];

				if (o->type != TRAPVM_MEM_RAM &&
				    a + PAGE_SIZE > o->addr &&
				    a < o->addr + o->size)
					skip = true;
			}
			if (!skip)
				free_page_raw(a);
		}
	}
	kprintf("sparrow: %lu KiB free, kernel %lx-%lx\n", nr_free * 4, kstart,
		kend);
	if (nr_free < 1024)
		panic("not enough memory");

	/* Identity map [0, 4 GiB) with 2 MiB supervisor pages. */
	kernel_pml4 = page_alloc();
	pdpt = page_alloc();
	((u64 *)kernel_pml4)[0] = pdpt | PTE_P | PTE_W;
	for (i = 0; i < 4; i++) {
		u64 pd = page_alloc(), j;

		((u64 *)pdpt)[i] = pd | PTE_P | PTE_W;
		for (j = 0; j < 512; j++) {
			u64 pa = (i << 30) | (j << 21);
			u64 e = pa | PTE_P | PTE_W | PTE_PS;

			if (pa >= 0xfe000000ULL)	/* APIC & co.: MMIO */
				e |= PTE_PCD | PTE_PWT;
			((u64 *)pd)[j] = e;
		}
	}
	write_cr3(kernel_pml4);
}

/*
 * Return the PTE for va in pml4, allocating tables if create.  *walked
 * (if not NULL): every upper entry on the way has the accessed bit.
 */
static u64 *walk(u64 pml4, u64 va, bool create, bool *walked)
{
	u64 *table = phys_to_virt(pml4);
	int level;

	if (walked)
		*walked = true;
	for (level = 3; level > 0; level--) {
		u64 *e = &table[(va >> (12 + 9 * level)) & 511];

		if (!(*e & PTE_P)) {
			u64 pa;

			if (!create)
				return NULL;
			pa = page_alloc();
			if (!pa)
				return NULL;
			*e = pa | PT_FLAGS;
		}
		if (walked && !(*e & PTE_A))
			*walked = false;
		table = phys_to_virt(*e & PTE_ADDR);
	}
	return &table[(va >> 12) & 511];
}

static struct vma *vma_find(struct proc *p, u64 addr)
{
	int i;

	for (i = 0; i < NR_VMAS; i++)
		if (p->vmas[i].end && addr >= p->vmas[i].start &&
		    addr < p->vmas[i].end)
			return &p->vmas[i];
	return NULL;
}

int vm_add(struct proc *p, u64 start, u64 end, u32 flags,
	   const u8 *backing, u64 backing_len)
{
	int i;

	if (start < USER_BASE || end > USER_END || start >= end ||
	    (start | end) & ~PAGE_MASK)
		return -SP_EINVAL;
	for (i = 0; i < NR_VMAS; i++)
		if (p->vmas[i].end && start < p->vmas[i].end &&
		    end > p->vmas[i].start)
			return -SP_EINVAL;
	for (i = 0; i < NR_VMAS; i++) {
		struct vma *v = &p->vmas[i];

		if (v->end)
			continue;
		v->start = start;
		v->end = end;
		v->flags = flags;
		v->backing = backing;
		v->backing_len = backing_len;
		return 0;
	}
	return -SP_ENOMEM;
}

u64 vm_map_anon(struct proc *p, u64 len)
{
	u64 start = p->mmap_next;
	int err;

	len = ALIGN_UP(len, PAGE_SIZE);
	err = vm_add(p, start, start + len, VM_READ | VM_WRITE, NULL, 0);
	if (err)
		return (u64)(s64)err;
	p->mmap_next += len + PAGE_SIZE;	/* leave a guard page */
	return start;
}

/*
 * Past this many pages a CR3 reload is cheaper than one INVLPG each (under
 * trapvm every INVLPG is an exit too).  The same in both pv_mmu modes.
 */
#define INVLPG_MAX	32

int vm_remove(struct proc *p, u64 start, u64 end)
{
	struct vma *v = vma_find(p, start);
	u64 a, inv[INVLPG_MAX];
	unsigned int n = 0, i;
	bool walked;

	if (!v || v->start != start || v->end != end || (v->flags & VM_STACK))
		return -SP_EINVAL;
	for (a = start; a < end; a += PAGE_SIZE) {
		u64 *pte = walk(p->pml4, a, false, &walked);

		if (pte && (*pte & PTE_P)) {
			/* Not reused before the flush: no allocation here. */
			page_put(*pte & PTE_ADDR);
			pt_write(pte, 0, walked);
			if (n < INVLPG_MAX)
				inv[n] = a;
			n++;
		}
	}
	/* The entries are cleared in memory first, then the TLB. */
	pt_flush();
	if (p == cur) {
		if (n > INVLPG_MAX)
			write_cr3(p->pml4);
		else
			for (i = 0; i < n; i++)
				flush_tlb_page(inv[i]);
	}
	v->end = 0;
	return 0;
}

/*
 * Resolve a user page fault: 0 if the access may now be retried, negative
 * if the process touched something it must not.  err is the #PF error code.
 */
int vm_fault(struct proc *p, u64 addr, u64 err)
{
	struct vma *v = vma_find(p, addr);
	u64 page = addr & PAGE_MASK, *pte, pa;

	if (pt_queued)
		panic("%s: %u page-table updates not flushed", __func__,
		      pt_queued);
	if (!v)
		return -SP_EFAULT;
	if ((err & 2) && !(v->flags & VM_WRITE))
		return -SP_EFAULT;
	if ((err & 16) && !(v->flags & VM_EXEC))
		return -SP_EFAULT;
	pte = walk(p->pml4, page, true, NULL);
	if (!pte)
		return -SP_ENOMEM;
	p->nr_faults++;

	if (!(*pte & PTE_P)) {
		/* Demand paging: zero-fill, or copy from the program image. */
		u64 off = page - v->start;

		pa = page_alloc();
		if (!pa)
			return -SP_ENOMEM;
		if (v->backing && off < v->backing_len) {
			u64 n = v->backing_len - off;

			memcpy(phys_to_virt(pa), v->backing + off,
			       n < PAGE_SIZE ? n : PAGE_SIZE);
		}
		*pte = pa | PTE_P | PTE_U | ((v->flags & VM_WRITE) ? PTE_W : 0) |
		       ((v->flags & VM_EXEC) ? 0 : PTE_NX);
		return 0;
	}

	if ((err & 2) && !(*pte & PTE_W)) {
		if (!(*pte & PTE_COW))
			return -SP_EFAULT;
		pa = *pte & PTE_ADDR;
		if (page_ref[pa / PAGE_SIZE] == 1) {
			/* Last sharer: take the page over. */
			*pte = (*pte | PTE_W) & ~PTE_COW;
		} else {
			u64 copy = page_alloc();

			if (!copy)
				return -SP_ENOMEM;
			memcpy(phys_to_virt(copy), phys_to_virt(pa), PAGE_SIZE);
			*pte = copy | PTE_P | PTE_U | PTE_W |
			       (*pte & PTE_NX);
			page_put(pa);
		}
	}
	/* Otherwise spurious (stale TLB entry): flush and retry. */
	if (p == cur)
		flush_tlb_page(page);
	return 0;
}

/*
 * Copy one level of user page tables for fork, sharing pages COW.  The
 * parent's downgrades go through pt_set() (its tables are live); the
 * child's new tables have never been walked: plain stores, and their
 * upper entries start with the accessed bit clear, as for a new table.
 */
static int fork_table(u64 *dst, u64 *src, int level, int first, int last)
{
	int i;

	for (i = first; i <= last; i++) {
		u64 e = src[i];

		if (!(e & PTE_P))
			continue;
		if (level == 0) {
			/* Already COW (an earlier fork): nothing to write. */
			if (e & PTE_W) {
				e = (e & ~PTE_W) | PTE_COW;
				pt_set(&src[i], e);
			}
			page_get(e & PTE_ADDR);
			dst[i] = e;
		} else {
			u64 t = page_alloc();

			if (!t)
				return -SP_ENOMEM;
			dst[i] = t | (e & ~(PTE_ADDR | PTE_A));
			if (fork_table(phys_to_virt(t),
				       phys_to_virt(e & PTE_ADDR), level - 1,
				       0, 511))
				return -SP_ENOMEM;
		}
	}
	return 0;
}

int vm_fork(struct proc *child, struct proc *parent)
{
	int err;

	memcpy(child->vmas, parent->vmas, sizeof(child->vmas));
	child->mmap_next = parent->mmap_next;
	err = fork_table(phys_to_virt(child->pml4), phys_to_virt(parent->pml4),
			 3, 1, 255);
	/*
	 * The parent's writable pages just became read-only: the entries in
	 * memory first, then the TLB (also after a failure half-way).
	 */
	pt_flush();
	write_cr3(parent->pml4);
	return err;
}

/* walked: t may have been used by a page walk (see pt_write()). */
static void free_table(struct proc *p, u64 *t, int level, int first,
		       int last, bool walked)
{
	int i;

	for (i = first; i <= last; i++) {
		u64 e = t[i];

		if (!(e & PTE_P))
			continue;
		if (level > 0) {
			free_table(p, phys_to_virt(e & PTE_ADDR), level - 1,
				   0, 511, walked && (e & PTE_A));
			pt_write(&t[i], 0, walked);
			/* It may still have queued writes into it. */
			pt_defer_free(p, e & PTE_ADDR);
		} else {
			/* Not reused before the flush: no allocation here. */
			page_put(e & PTE_ADDR);
			pt_write(&t[i], 0, walked);
		}
	}
}

/* Drop the whole user part of p's address space (exec, exit). */
void vm_free_user(struct proc *p)
{
	free_table(p, phys_to_virt(p->pml4), 3, 1, 255, true);
	pt_flush();
	if (p == cur)
		write_cr3(p->pml4);
	pt_free_deferred();
	memset(p->vmas, 0, sizeof(p->vmas));
	p->mmap_next = USER_MMAP_BASE;
}

/* Physical address of the current process's user page at addr, or 0. */
static u64 user_page(u64 addr, bool write)
{
	u64 *pte;

	if (addr < USER_BASE || addr >= USER_END)
		return 0;
	pte = walk(cur->pml4, addr, false, NULL);
	if (!pte || !(*pte & PTE_P) || (write && !(*pte & PTE_W))) {
		u64 err = 4 | (write ? 2 : 0) | (pte && (*pte & PTE_P) ? 1 : 0);

		if (vm_fault(cur, addr, err))
			return 0;
		pte = walk(cur->pml4, addr, false, NULL);
	}
	return (*pte & PTE_ADDR) | (addr & ~PAGE_MASK);
}

static int user_copy(u64 uaddr, void *kbuf, u64 n, bool to_user)
{
	u8 *k = kbuf;

	if (uaddr + n < uaddr)
		return -SP_EFAULT;
	while (n) {
		u64 chunk = PAGE_SIZE - (uaddr & ~PAGE_MASK);
		u64 pa = user_page(uaddr, to_user);

		if (!pa)
			return -SP_EFAULT;
		if (chunk > n)
			chunk = n;
		if (to_user)
			memcpy(phys_to_virt(pa), k, chunk);
		else
			memcpy(k, phys_to_virt(pa), chunk);
		uaddr += chunk;
		k += chunk;
		n -= chunk;
	}
	return 0;
}

int copy_from_user(void *dst, u64 usrc, u64 n)
{
	return user_copy(usrc, dst, n, false);
}

int copy_to_user(u64 udst, const void *src, u64 n)
{
	return user_copy(udst, (void *)src, n, true);
}

/* Copy a NUL-terminated string of at most n - 1 characters. */
int strncpy_from_user(char *dst, u64 usrc, u64 n)
{
	u64 i;

	for (i = 0; i < n; i++) {
		if (copy_from_user(&dst[i], usrc + i, 1))
			return -SP_EFAULT;
		if (!dst[i])
			return (int)i;
	}
	return -SP_EINVAL;
}
