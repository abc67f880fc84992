/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Just enough of the kernel for kmod/shadow/ to compile and run in
 * userspace (selftests/unit/test_mmu.c), in the spirit of the kernel's
 * tools/testing/radix-tree.  Force-included before each file; the kernel
 * headers they name resolve to the empty files next to this one.
 *
 * "Physical memory" is an arena of NR_ARENA_PAGES pages with a struct page
 * each; __pa()/__va() translate between the arena and fake physical
 * addresses starting at ARENA_PHYS.  alloc_page() and __free_page() keep
 * counts so the test can check for leaks and bad frees.
 *
 * struct trapvm_vcpu / trapvm_vm are cut down to what kmod/shadow/ uses, and the
 * include guard of kmod/trapvm.h is predefined so the real one is skipped.
 */
#ifndef _TRAPVM_KSHIM_H
#define _TRAPVM_KSHIM_H

#include <stdio.h>
#include <stdlib.h>
#include <stddef.h>
#include <string.h>
#include <errno.h>
#include <trapvm/glue.h>
#include <linux/trapvm_stats.h>

#define _TRAPVM_INTERNAL_H	/* skip kmod/trapvm.h */
#define TRAPVM_KSHIM		1	/* no tracepoints (mmu_trace.h) */

typedef uint8_t __u8;
typedef uint16_t __u16;
typedef uint32_t __u32;
typedef uint64_t __u64;

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

extern int kshim_fail_kmalloc;	/* n: the n-th kmalloc from now fails */

static inline void *kmalloc(size_t size, gfp_t gfp)
{
	(void)gfp;
	if (kshim_fail_kmalloc > 0 && --kshim_fail_kmalloc == 0)
		return NULL;
	return malloc(size);
}

static inline void *krealloc(const void *p, size_t size, gfp_t gfp)
{
	(void)gfp;
	if (kshim_fail_kmalloc > 0 && --kshim_fail_kmalloc == 0)
		return NULL;
	return realloc((void *)p, size);
}

/* <linux/list.h>: the parts kmod/shadow/ uses. */
struct list_head {
	struct list_head *next, *prev;
};

struct hlist_node {
	struct hlist_node *next, **pprev;
};

struct hlist_head {
	struct hlist_node *first;
};

#define container_of(ptr, type, member) \
	((type *)((char *)(ptr) - offsetof(type, member)))

static inline void INIT_LIST_HEAD(struct list_head *l)
{
	l->next = l;
	l->prev = l;
}

static inline void list_del_raw(struct list_head *e)
{
	e->prev->next = e->next;
	e->next->prev = e->prev;
}

static inline void list_add_tail(struct list_head *e, struct list_head *h)
{
	e->prev = h->prev;
	e->next = h;
	h->prev->next = e;
	h->prev = e;
}

static inline void list_del(struct list_head *e)
{
	list_del_raw(e);
	e->next = e->prev = NULL;
}

static inline void list_move_tail(struct list_head *e, struct list_head *h)
{
	list_del_raw(e);
	list_add_tail(e, h);
}

#define list_entry(ptr, type, member)	container_of(ptr, type, member)
#define list_for_each_entry(pos, head, member)				\
	for (pos = list_entry((head)->next, __typeof__(*pos), member);	\
	     &pos->member != (head);					\
	     pos = list_entry(pos->member.next, __typeof__(*pos), member))
#define list_for_each_entry_safe(pos, n, head, member)			\
	for (pos = list_entry((head)->next, __typeof__(*pos), member),	\
	     n = list_entry(pos->member.next, __typeof__(*pos), member); \
	     &pos->member != (head);					\
	     pos = n, n = list_entry(n->member.next, __typeof__(*n), member))

#define INIT_HLIST_HEAD(h)	((h)->first = NULL)

static inline void hlist_add_head(struct hlist_node *n, struct hlist_head *h)
{
	n->next = h->first;
	if (h->first)
		h->first->pprev = &n->next;
	h->first = n;
	n->pprev = &h->first;
}

static inline void hlist_del(struct hlist_node *n)
{
	*n->pprev = n->next;
	if (n->next)
		n->next->pprev = n->pprev;
	n->next = NULL;
	n->pprev = NULL;
}

#define hlist_entry_safe(ptr, type, member) \
	({ __typeof__(ptr) ____ptr = (ptr); \
	   ____ptr ? container_of(____ptr, type, member) : NULL; })
#define hlist_for_each_entry(pos, head, member)				\
	for (pos = hlist_entry_safe((head)->first, __typeof__(*pos), member); \
	     pos;							\
	     pos = hlist_entry_safe(pos->member.next, __typeof__(*pos), member))
#define hlist_for_each_entry_safe(pos, n, head, member)			\
	for (pos = hlist_entry_safe((head)->first, __typeof__(*pos), member); \
	     pos && ({ n = pos->member.next; 1; });			\
	     pos = hlist_entry_safe(n, __typeof__(*pos), member))

/* <linux/hash.h> */
static inline u32 hash_64(u64 val, unsigned int bits)
{
	return (u32)((val * 0x61c8864680b583ebULL) >> (64 - bits));
}

/* <linux/module.h> */
#define module_param_named(name, var, type, perm)
#define MODULE_PARM_DESC(name, desc)

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
#define atomic_long_add(v, a)	((a)->counter += (v))

#define WRITE_ONCE(x, v)	((x) = (v))
#define READ_ONCE(x)		(x)
/* The same ordering as the kernel's, for the same pairing. */
#define smp_load_acquire(p)	__atomic_load_n((p), __ATOMIC_ACQUIRE)

static inline u64 cmpxchg64(u64 *p, u64 old, u64 new)
{
	__atomic_compare_exchange_n(p, &old, new, false, __ATOMIC_SEQ_CST,
				    __ATOMIC_SEQ_CST);
	return old;
}

/* cmpxchg() of 1, 2, 4 or 8 bytes: returns what memory held. */
#define cmpxchg(p, o, n) ({						\
	__typeof__(*(p)) __old = (o);					\
	__atomic_compare_exchange_n((p), &__old, (n), false,		\
				    __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST); \
	__old;								\
})

#define MAX_ERRNO		4095
#define ERR_PTR(e)		((void *)(long)(e))
#define IS_ERR_OR_NULL(p)	(!(p) || (unsigned long)(p) >= \
				 (unsigned long)-MAX_ERRNO)

#define pr_err_ratelimited(fmt, ...) \
	printf("# " pr_fmt(fmt), ##__VA_ARGS__)
extern long kshim_warnings;
#define WARN_ON_ONCE(c)		({ int __c = !!(c); if (__c) kshim_warnings++; __c; })

#define min(a, b)		((a) < (b) ? (a) : (b))
#define max(a, b)		((a) > (b) ? (a) : (b))

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
#define X86_FEATURE_OSPKE	2
/* Host protection keys: set by the test (execute-only shadow leaves). */
extern bool kshim_ospke;
#define boot_cpu_has(f)		((f) == X86_FEATURE_GBPAGES || \
				 ((f) == X86_FEATURE_OSPKE && kshim_ospke))
struct kshim_cpuinfo {
	u8 x86_phys_bits;
};
extern struct kshim_cpuinfo boot_cpu_data;
#define pgtable_l5_enabled()	(kshim_la57)

/* <linux/mutex.h>: single-threaded, but the pairing is checked. */
struct mutex {
	int locked;
};

extern long kshim_lock_errors;
#define kshim_lock_error()						\
	((void)(kshim_lock_errors++ ||					\
		printf("# lock error at %s:%d\n", __FILE__, __LINE__)))
#define mutex_init(l)		((l)->locked = 0)
#define mutex_destroy(l)	((void)((l)->locked && (kshim_lock_error(), 1)))
#define mutex_lock(l)		((void)((l)->locked++ && (kshim_lock_error(), 1)))
#define mutex_unlock(l)		((void)(--(l)->locked && (kshim_lock_error(), 1)))
#define lockdep_assert_held(l)	((void)(!(l)->locked && (kshim_lock_error(), 1)))

#define static_assert(e)	_Static_assert(e, #e)
#define smp_store_release(p, v)	__atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define atomic_read(a)		((a)->counter)
#define atomic_inc(a)		((a)->counter++)

/* <linux/bitops.h>, <linux/slab.h> kvmalloc */
#define BITS_PER_LONG		64
#define BITS_TO_LONGS(n)	(((n) + BITS_PER_LONG - 1) / BITS_PER_LONG)
static inline void set_bit(unsigned long nr, unsigned long *addr)
{
	addr[nr / BITS_PER_LONG] |= 1UL << (nr % BITS_PER_LONG);
}

static inline void clear_bit(unsigned long nr, unsigned long *addr)
{
	addr[nr / BITS_PER_LONG] &= ~(1UL << (nr % BITS_PER_LONG));
}

static inline bool test_bit(unsigned long nr, const unsigned long *addr)
{
	return addr[nr / BITS_PER_LONG] & (1UL << (nr % BITS_PER_LONG));
}

#define kvzalloc(s, g)		kzalloc((s), (g))
#define kvcalloc(n, s, g)	kzalloc((n) * (s), (g))
#define kvfree(p)		kfree(p)

/* The parts of kmod/trapvm.h and guest_memory.h that kmod/shadow/ uses. */
#include <trapvm/cpu.h>

struct trapvm_vcpu_mmu;
struct trapvm_vm_mmu;

struct trapvm_guest_mem {
	u64 size;
	struct page **gpages;	/* lazily allocated, one ref held here */
};

#define TRAPVM_MAX_VCPUS	8

struct trapvm_vm {
	struct trapvm_guest_mem mem;
	struct trapvm_vcpu *vcpus[TRAPVM_MAX_VCPUS];
	unsigned int nr_vcpus;
	struct trapvm_vm_mmu *mmu;
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
void trapvm_guest_mem_protect_from_user(struct trapvm_vm *vm, u64 gfn);
void trapvm_vcpu_kick(struct trapvm_vcpu *vcpu);

#endif /* _TRAPVM_KSHIM_H */
