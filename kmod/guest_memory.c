// SPDX-License-Identifier: GPL-2.0
/*
 * trapvm guest memory: per-page state, lazy allocation, guest-physical
 * copies for the emulator, and the userspace mapping of guest RAM.
 */
#include <linux/mm.h>
#include <linux/highmem.h>
#include <linux/slab.h>
#include <linux/pagemap.h>

#include "trapvm.h"
#include "shadow/mmu.h"

void trapvm_guest_mem_init(struct trapvm_guest_mem *mem)
{
	spin_lock_init(&mem->lock);
	mem->size = 0;
	mem->nr_gfns = 0;
	mem->nr_pages = 0;
	mem->gpages = NULL;
	address_space_init_once(&mem->mapping);
}

/* Called once, with vm->lock held, before anything can touch the RAM. */
int trapvm_guest_mem_alloc(struct trapvm_guest_mem *mem, u64 size)
{
	unsigned long nr = size >> PAGE_SHIFT;
	struct trapvm_gpage *gpages;

	gpages = kvcalloc(nr, sizeof(*gpages), GFP_KERNEL_ACCOUNT);
	if (!gpages)
		return -ENOMEM;

	spin_lock(&mem->lock);
	mem->gpages = gpages;
	mem->nr_gfns = nr;
	spin_unlock(&mem->lock);
	/* Published last: a non-zero size means gpages is valid. */
	smp_store_release(&mem->size, size);
	return 0;
}

/* The VM is being freed: no mappings, no vCPUs, no other users remain. */
void trapvm_guest_mem_free(struct trapvm_guest_mem *mem)
{
	unsigned long gfn;

	for (gfn = 0; gfn < mem->nr_gfns; gfn++) {
		struct page *page = mem->gpages[gfn].page;

		if (page) {
			/* A MAP_SHARED fault marks it dirty; not a page cache page. */
			ClearPageDirty(page);
			put_page(page);
		}
		cond_resched();
	}
	kvfree(mem->gpages);
	mem->gpages = NULL;
	mem->nr_gfns = 0;
	mem->nr_pages = 0;
	mem->size = 0;
}

unsigned long trapvm_guest_mem_nr_pages(struct trapvm_guest_mem *mem)
{
	unsigned long nr;

	spin_lock(&mem->lock);
	nr = mem->nr_pages;
	spin_unlock(&mem->lock);
	return nr;
}

static unsigned long trapvm_nr_gfns(struct trapvm_guest_mem *mem)
{
	/* Pairs with smp_store_release() in trapvm_guest_mem_alloc(). */
	return smp_load_acquire(&mem->size) >> PAGE_SHIFT;
}

struct page *trapvm_gfn_to_page(struct trapvm_vm *vm, u64 gfn, bool alloc)
{
	struct trapvm_guest_mem *mem = &vm->mem;
	struct page *page, *new;

	if (gfn >= trapvm_nr_gfns(mem))
		return NULL;

	spin_lock(&mem->lock);
	page = mem->gpages[gfn].page;
	if (page)
		get_page(page);
	spin_unlock(&mem->lock);
	if (page || !alloc)
		return page;

	/* Allocate outside the spinlock; another toucher may win the race. */
	new = alloc_page(GFP_HIGHUSER | __GFP_ZERO | __GFP_ACCOUNT);
	if (!new)
		return NULL;

	spin_lock(&mem->lock);
	page = mem->gpages[gfn].page;
	if (!page) {
		page = new;
		new = NULL;
		mem->gpages[gfn].page = page;
		mem->gpages[gfn].flags &= ~TRAPVM_GPAGE_BALLOONED;
		mem->nr_pages++;
	}
	get_page(page);
	spin_unlock(&mem->lock);

	if (new)
		__free_page(new);
	return page;
}

static bool trapvm_gpa_range_ok(struct trapvm_vm *vm, u64 gpa, size_t len)
{
	/* Pairs with smp_store_release() in trapvm_guest_mem_alloc(). */
	u64 size = smp_load_acquire(&vm->mem.size);

	return len <= size && gpa <= size - len;
}

/* Copy between guest RAM and a kernel buffer, page by page. */
static int trapvm_copy_guest_phys(struct trapvm_vm *vm, u64 gpa, void *buf,
				  size_t len, bool to_guest)
{
	if (!trapvm_gpa_range_ok(vm, gpa, len))
		return -EFAULT;

	while (len) {
		unsigned int off = offset_in_page(gpa);
		size_t n = min_t(size_t, len, PAGE_SIZE - off);
		struct page *page;
		void *va;

		page = trapvm_gfn_to_page(vm, gpa >> PAGE_SHIFT, true);
		if (!page)
			return -ENOMEM;
		va = kmap_local_page(page);
		if (to_guest)
			memcpy(va + off, buf, n);
		else
			memcpy(buf, va + off, n);
		kunmap_local(va);
		put_page(page);

		buf += n;
		gpa += n;
		len -= n;
	}
	return 0;
}

int trapvm_read_guest_phys(struct trapvm_vm *vm, u64 gpa, void *buf,
			   size_t len)
{
	return trapvm_copy_guest_phys(vm, gpa, buf, len, false);
}

int trapvm_write_guest_phys(struct trapvm_vm *vm, u64 gpa, const void *buf,
			    size_t len)
{
	/* The buffer is only read when copying to the guest. */
	return trapvm_copy_guest_phys(vm, gpa, (void *)buf, len, true);
}

void trapvm_guest_mem_zap(struct trapvm_vm *vm, u64 gfn, u64 nr)
{
	/* unmap_mapping_range() reads a length of 0 as "to the end". */
	if (!nr)
		return;
	unmap_mapping_range(&vm->mem.mapping, (loff_t)gfn << PAGE_SHIFT,
			    (loff_t)nr << PAGE_SHIFT, 1);
}

static vm_fault_t trapvm_guest_mem_fault(struct vm_fault *vmf)
{
	struct trapvm_vm *vm = vmf->vma->vm_file->private_data;
	struct page *page;

	if (vmf->pgoff >= trapvm_nr_gfns(&vm->mem))
		return VM_FAULT_SIGBUS;

	page = trapvm_gfn_to_page(vm, vmf->pgoff, true);
	if (!page)
		return VM_FAULT_OOM;

	/* The reference taken above is the mapping's; the core drops it. */
	vmf->page = page;
	return 0;
}

/*
 * Userspace writes to guest page tables.  A gfn the shadow MMU shadows as a
 * guest page table is TRAPVM_GPAGE_WRPROT: its user mappings are zapped
 * and come back read-only (the VMA has ->page_mkwrite, so the core maps
 * shared pages read-only until the first write), and the first userspace
 * write lands here, where the shadow of the gfn is dropped before the
 * write can happen.  The guest thus sees a VMM's write to its page tables
 * like its own: at once, with no invalidation needed.
 *
 * The race with a vCPU that starts shadowing the gfn again while this
 * fault completes is closed by the page lock: the bit is tested with the
 * page locked and the core installs the writable PTE before unlocking it;
 * trapvm_guest_mem_protect_from_user() sets the bit first and zaps under
 * the page lock, so it either is seen here or zaps the new PTE.
 */
static vm_fault_t trapvm_guest_mem_page_mkwrite(struct vm_fault *vmf)
{
	struct trapvm_vm *vm = vmf->vma->vm_file->private_data;
	struct trapvm_guest_mem *mem = &vm->mem;
	struct page *page = vmf->page;
	u64 gfn = vmf->pgoff;
	bool tracked, stale;

	for (;;) {
		lock_page(page);
		spin_lock(&mem->lock);
		/* The balloon or page sharing replaced the page: fault again. */
		stale = mem->gpages[gfn].page != page;
		tracked = mem->gpages[gfn].flags & TRAPVM_GPAGE_WRPROT;
		if (!stale)
			mem->gpages[gfn].flags &= ~TRAPVM_GPAGE_WRPROT;
		spin_unlock(&mem->lock);
		if (stale) {
			unlock_page(page);
			return VM_FAULT_NOPAGE;
		}
		if (!tracked)
			return VM_FAULT_LOCKED;
		unlock_page(page);
		/* Sleeps and takes the MMU lock: never under the page lock. */
		trapvm_mmu_user_write(vm, gfn);
	}
}

void trapvm_guest_mem_protect_from_user(struct trapvm_vm *vm, u64 gfn)
{
	struct trapvm_guest_mem *mem = &vm->mem;
	struct page *page;

	if (gfn >= trapvm_nr_gfns(mem))
		return;
	spin_lock(&mem->lock);
	mem->gpages[gfn].flags |= TRAPVM_GPAGE_WRPROT;
	page = mem->gpages[gfn].page;
	if (page)
		get_page(page);
	spin_unlock(&mem->lock);
	/* Never touched: no user mapping yet, the first write will see the bit. */
	if (!page)
		return;
	lock_page(page);
	unmap_mapping_range(&mem->mapping, (loff_t)gfn << PAGE_SHIFT,
			    PAGE_SIZE, 1);
	unlock_page(page);
	put_page(page);
}

static const struct vm_operations_struct trapvm_guest_mem_vm_ops = {
	.fault = trapvm_guest_mem_fault,
	.page_mkwrite = trapvm_guest_mem_page_mkwrite,
};

int trapvm_guest_mem_mmap(struct trapvm_vm *vm, struct vm_area_struct *vma)
{
	unsigned long nr_gfns = trapvm_nr_gfns(&vm->mem);
	unsigned long pages = vma_pages(vma);

	if (!nr_gfns)
		return -EINVAL;
	/* Private mappings would COW away from the guest's view. */
	if (!(vma->vm_flags & VM_SHARED))
		return -EINVAL;
	if (vma->vm_pgoff >= nr_gfns || pages > nr_gfns - vma->vm_pgoff)
		return -EINVAL;

	/* Fixed-size RAM: no mremap() growth; guest RAM stays out of cores. */
	vma->vm_flags |= VM_DONTEXPAND | VM_DONTDUMP;
	vma->vm_ops = &trapvm_guest_mem_vm_ops;
	return 0;
}
