/* SPDX-License-Identifier: GPL-2.0 */
/*
 * trapvm guest memory: module-owned RAM from guest-physical 0 to size.
 *
 * Every guest page frame (gfn) has a small struct trapvm_gpage.  Pages are
 * allocated on first touch (guest access through the shadow MMU, the
 * emulator, or userspace through mmap() of the VM fd), so untouched RAM
 * costs nothing but its 16-byte descriptor.  The per-page state is what the
 * balloon (free a page) and page sharing (merge identical pages, make them
 * copy-on-write) work on.
 *
 * Locking: mem->lock (a spinlock, innermost lock of the module) protects
 * every struct trapvm_gpage and nr_pages.  Page contents are not protected:
 * the guest and userspace access them concurrently, as on real hardware.
 * Code that frees or replaces a gpage's page must, under mem->lock, change
 * the gpage, then (without the lock) zap the user mappings with
 * trapvm_guest_mem_zap() and whatever shadow entries map the page, and only
 * then drop the module's reference with put_page().
 *
 * Page references: trapvm_gfn_to_page() returns the page with a reference
 * held for the caller (get_page()); release it with put_page().  A page
 * obtained this way stays valid memory even if the balloon takes the gfn
 * away meanwhile; it just no longer backs that gfn.
 */
#ifndef _TRAPVM_GUEST_MEMORY_H
#define _TRAPVM_GUEST_MEMORY_H

#include <linux/types.h>
#include <linux/spinlock.h>
#include <linux/fs.h>
#include <linux/mm_types.h>

struct trapvm_vm;

/* struct trapvm_gpage.flags */
#define TRAPVM_GPAGE_BALLOONED	BIT(0)	/* given back by the guest */
#define TRAPVM_GPAGE_SHARED	BIT(1)	/* merged, copy-on-write */
#define TRAPVM_GPAGE_WRPROT	BIT(2)	/* a shadowed page table: user writes trap */

struct trapvm_gpage {
	struct page *page;		/* NULL until first touch */
	unsigned long flags;		/* TRAPVM_GPAGE_* */
};

struct trapvm_guest_mem {
	spinlock_t lock;		/* protects gpages[] and nr_pages */
	u64 size;			/* bytes; 0 until TRAPVM_SET_MEMORY */
	unsigned long nr_gfns;		/* size >> PAGE_SHIFT */
	unsigned long nr_pages;		/* gpages with a page now */
	struct trapvm_gpage *gpages;	/* nr_gfns entries */

	/*
	 * The address_space of the VM file: mmap()s of guest RAM are linked
	 * here, so unmap_mapping_range() on it zaps exactly this VM's user
	 * mappings of a gfn (the shared anon inode's mapping would not do).
	 */
	struct address_space mapping;
};

void trapvm_guest_mem_init(struct trapvm_guest_mem *mem);
int trapvm_guest_mem_alloc(struct trapvm_guest_mem *mem, u64 size);
void trapvm_guest_mem_free(struct trapvm_guest_mem *mem);
unsigned long trapvm_guest_mem_nr_pages(struct trapvm_guest_mem *mem);

/*
 * The page backing @gfn, with a reference for the caller (put_page() it).
 * NULL if @gfn is outside RAM, or if it has no page yet and @alloc is
 * false, or if allocating failed (then, with @alloc, an -ENOMEM case: check
 * gfn < nr_gfns to tell the two apart).  May sleep if @alloc is true.
 */
struct page *trapvm_gfn_to_page(struct trapvm_vm *vm, u64 gfn, bool alloc);

/*
 * Copy between guest-physical memory and a kernel buffer, crossing page
 * boundaries.  Allocates pages on first touch (so may sleep).  -EFAULT if
 * any byte of [gpa, gpa + len) is outside RAM (nothing is copied then),
 * -ENOMEM if a page could not be allocated, else 0.
 */
int trapvm_read_guest_phys(struct trapvm_vm *vm, u64 gpa, void *buf,
			   size_t len);
int trapvm_write_guest_phys(struct trapvm_vm *vm, u64 gpa, const void *buf,
			    size_t len);

/* Zap userspace mappings of [gfn, gfn + nr) of the VM's RAM. */
void trapvm_guest_mem_zap(struct trapvm_vm *vm, u64 gfn, u64 nr);

/*
 * The shadow MMU shadows @gfn as a guest page table from now on: make the
 * userspace mappings of it read-only, so that a VMM write through its
 * mapping of guest RAM first calls trapvm_mmu_user_write(), which drops
 * the shadow of the gfn.  Sleeps (page lock, i_mmap_rwsem); may be called
 * under the MMU lock, which page faults on guest RAM never hold while
 * they hold the page lock.
 */
void trapvm_guest_mem_protect_from_user(struct trapvm_vm *vm, u64 gfn);

/* mmap() of the VM fd: checks and sets up @vma for the fault handler. */
int trapvm_guest_mem_mmap(struct trapvm_vm *vm, struct vm_area_struct *vma);

#endif /* _TRAPVM_GUEST_MEMORY_H */
