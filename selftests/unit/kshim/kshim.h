/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Just enough of the kernel for kmod/shadow/mmu.c to compile and run in
 * userspace (selftests/unit/test_mmu.c), in the spirit of the kernel's
 * tools/testing/radix-tree.  Force-included before mmu.c; the kernel
 * headers mmu.c names resolve to the empty files next to this one.
 *
 * "Physical memory" is an arena of NR_ARENA_PAGES pages with a struct page
 * each; __pa()/__va() translate between the arena and fake physical
 * addresses starting at ARENA_PHYS.  alloc_page() and __free_page() keep
 * counts so the test can check for leaks and bad frees.
 *
 * struct trapvm_vcpu / trapvm_vm are cut down to what mmu.c uses, and the
 * include guard of kmod/trapvm.h is predefined so the real one is skipped.
 */
#ifndef _TRAPVM_KSHIM_H
#define _TRAPVM_KSHIM_H

#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
#include <trapvm/glue.h>
#include <linux/trapvm_stats.h>

#define _TRAPVM_INTERNAL_H	/* skip kmod/trapvm.h */

typedef u64 phys_addr_t;
typedef unsigned int gfp_t;

#define PAGE_SHIFT		12
#define PAGE_SIZE		(1UL << PAGE_SHIFT)
#define PAGE_MASK		(~(PAGE_SIZE - 1))
#define GFP_KERNEL_ACCOUNT	1u
#define __GFP_ZERO		2u

struct page {
	unsigned long private;
	int refcount;		/* 0: free */
};

#define NR_ARENA_PAGES		8192
#define ARENA_PHYS		0x100000000ULL

extern unsigned char *kshim_arena;
extern struct page kshim_pages[NR_ARENA_PAGES];
extern long kshim_pages_used;
extern long kshim_bad_frees;
extern int kshim_la57;
extern int kshim_fail_alloc;	/* n: the n-th allocation from now fails */

struct page *alloc_page(gfp_t gfp);
void __free_page(struct page *page);

static inline unsigned long kshim_page_index(const struct page *page)
{
	return page - kshim_pages;
}

static inline void *page_address(const struct page *page)
{
	return kshim_arena + kshim_page_index(page) * PAGE_SIZE;
}

static inline struct page *virt_to_page(const void *addr)
{
	return &kshim_pages[((const unsigned char *)addr - kshim_arena) >>
			    PAGE_SHIFT];
}

static inline u64 __pa(const void *addr)
{
	return ARENA_PHYS + ((const unsigned char *)addr - kshim_arena);
}

static inline void *__va(u64 phys)
{
	return kshim_arena + (phys - ARENA_PHYS);
}

static inline struct page *pfn_to_page(u64 pfn)
{
	return &kshim_pages[pfn - (ARENA_PHYS >> PAGE_SHIFT)];
}

static inline phys_addr_t page_to_phys(const struct page *page)
{
	return __pa(page_address(page));
}

static inline void get_page(struct page *page)
{
	page->refcount++;
}

static inline void put_page(struct page *page)
{
	if (page->refcount <= 0) {
		kshim_bad_frees++;
		return;
	}
	if (--page->refcount == 0) {
		page->refcount = 1;
		__free_page(page);
	}
}

#define page_private(page)		((page)->private)
#define set_page_private(page, v)	((page)->private = (v))

static inline void *kzalloc(size_t size, gfp_t gfp)
{
	(void)gfp;
	return calloc(1, size);
}

static inline void kfree(const void *p)
{
	free((void *)p);
}

static inline void *kmap_local_page(struct page *page)
{
	return page_address(page);
}

static inline void kunmap_local(const void *addr)
{
	(void)addr;
}

typedef struct { int counter; } atomic_t;
typedef struct { long counter; } atomic_long_t;
#define ATOMIC_LONG_INIT(v)	{ (v) }
#define atomic_set(a, v)	((a)->counter = (v))
#define atomic_xchg(a, v)	__atomic_exchange_n(&(a)->counter, (v), \
						    __ATOMIC_SEQ_CST)
#define atomic_long_read(a)	((a)->counter)
#define atomic_long_inc(a)	((a)->counter++)
#define atomic_long_dec(a)	((a)->counter--)

#define WRITE_ONCE(x, v)	((x) = (v))
/* The same ordering as the kernel's, for the same pairing. */
#define smp_load_acquire(p)	__atomic_load_n((p), __ATOMIC_ACQUIRE)

static inline u64 cmpxchg64(u64 *p, u64 old, u64 new)
{
	__atomic_compare_exchange_n(p, &old, new, false, __ATOMIC_SEQ_CST,
				    __ATOMIC_SEQ_CST);
	return old;
}

#define MAX_ERRNO		4095
#define ERR_PTR(e)		((void *)(long)(e))
#define IS_ERR_OR_NULL(p)	(!(p) || (unsigned long)(p) >= \
				 (unsigned long)-MAX_ERRNO)

#define pr_err_ratelimited(fmt, ...) \
	printf("# " pr_fmt(fmt), ##__VA_ARGS__)
extern long kshim_warnings;
#define WARN_ON_ONCE(c)		((c) ? (kshim_warnings++, 1) : 0)

#define min(a, b)		((a) < (b) ? (a) : (b))

#define X86_CR0_WP		BIT_ULL(16)
#define X86_CR0_PG		BIT_ULL(31)
#define X86_CR4_PSE		BIT_ULL(4)
#define X86_CR4_PAE		BIT_ULL(5)
#define X86_CR4_PGE		BIT_ULL(7)
#define X86_CR4_SMEP		BIT_ULL(20)
#define X86_CR4_PKE		BIT_ULL(22)
#define EFER_LMA		BIT_ULL(10)
#define X86_CR4_SMAP		BIT_ULL(21)
#define EFER_NX			BIT_ULL(11)
#define X86_EFLAGS_AC		BIT_ULL(18)

#define X86_FEATURE_GBPAGES	1
#define boot_cpu_has(f)		((f) == X86_FEATURE_GBPAGES)
struct kshim_cpuinfo {
	u8 x86_phys_bits;
};
extern struct kshim_cpuinfo boot_cpu_data;
#define pgtable_l5_enabled()	(kshim_la57)

/* The parts of kmod/trapvm.h and guest_memory.h that mmu.c uses. */
#include <trapvm/cpu.h>

struct trapvm_vcpu_mmu;

struct trapvm_guest_mem {
	u64 size;
	struct page **gpages;	/* lazily allocated, one ref held here */
};

struct trapvm_vm {
	struct trapvm_guest_mem mem;
};

struct trapvm_vcpu {
	struct trapvm_vm *vm;
	u32 id;
	struct trapvm_cpu cpu;
	u64 stats[TRAPVM_STAT_NR];
	struct trapvm_vcpu_mmu *mmu;
};

static inline void trapvm_vcpu_stat_inc(struct trapvm_vcpu *vcpu,
					enum trapvm_vcpu_stat stat)
{
	vcpu->stats[stat]++;
}

struct page *trapvm_gfn_to_page(struct trapvm_vm *vm, u64 gfn, bool alloc);
int trapvm_read_guest_phys(struct trapvm_vm *vm, u64 gpa, void *buf,
			   size_t len);
int trapvm_write_guest_phys(struct trapvm_vm *vm, u64 gpa, const void *buf,
			    size_t len);

#endif /* _TRAPVM_KSHIM_H */
