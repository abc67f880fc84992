// SPDX-License-Identifier: GPL-2.0
/*
 * TEMPORARY bootstrap shadow (see bootstrap_mmu.h): to be deleted when the
 * run loop switches to the shadow MMU.
 */
#include <linux/mm.h>
#include <linux/slab.h>
#include <linux/vmalloc.h>
#include <asm/pgtable.h>
#include <asm/io.h>
#include <asm/trapnr.h>
#include <asm/trap_pf.h>
#include "../trapvm.h"
#include <linux/trapvm_guest.h>
#include "switcher.h"
#include "bootstrap_mmu.h"

#define BM_TABLE	(_PAGE_PRESENT | _PAGE_RW | _PAGE_USER | _PAGE_ACCESSED)
#define BM_LEAF		(BM_TABLE | _PAGE_DIRTY)

struct trapvm_boot_mmu {
	struct trapvm_vm *vm;
	u64 *root;		/* PML5 under LA57, else == pml4 */
	u64 *pml4;
	struct page **pages;	/* per gfn, the reference the shadow holds */
	unsigned long nr_gfns;
};

struct trapvm_boot_mmu *trapvm_boot_mmu_create(struct trapvm_vm *vm)
{
	struct trapvm_boot_mmu *m = kzalloc(sizeof(*m), GFP_KERNEL);

	if (!m)
		return NULL;
	m->vm = vm;
	m->nr_gfns = vm->mem.nr_gfns;
	m->pages = vzalloc(array_size(max(m->nr_gfns, 1UL),
				      sizeof(*m->pages)));
	m->pml4 = (u64 *)get_zeroed_page(GFP_KERNEL);
	if (!m->pages || !m->pml4)
		goto fail;
	m->pml4[(TRAPVM_HOLE_START >> 39) & 511] = trapvm_switcher_hole_pml4e();
	if (pgtable_l5_enabled()) {
		m->root = (u64 *)get_zeroed_page(GFP_KERNEL);
		if (!m->root)
			goto fail;
		/* A 4-level guest: both halves go through the one PML4. */
		m->root[0] = __pa(m->pml4) | BM_TABLE;
		m->root[511] = __pa(m->pml4) | BM_TABLE;
	} else {
		m->root = m->pml4;
	}
	return m;
fail:
	trapvm_boot_mmu_destroy(m);
	return NULL;
}

static void bm_free_level(u64 *table, int level)
{
	int i;

	if (level > 1) {
		for (i = 0; i < 512; i++)
			if (table[i] & _PAGE_PRESENT)
				bm_free_level(__va(table[i] & PTE_PFN_MASK),
					      level - 1);
	}
	free_page((unsigned long)table);
}

void trapvm_boot_mmu_destroy(struct trapvm_boot_mmu *m)
{
	unsigned long i;
	int j;

	if (!m)
		return;
	if (m->pml4) {
		/* Only the guest half is ours; slot 256 is the switcher's. */
		for (j = 0; j < 256; j++)
			if (m->pml4[j] & _PAGE_PRESENT)
				bm_free_level(__va(m->pml4[j] & PTE_PFN_MASK),
					      3);
		free_page((unsigned long)m->pml4);
	}
	if (m->root && m->root != m->pml4)
		free_page((unsigned long)m->root);
	if (m->pages) {
		for (i = 0; i < m->nr_gfns; i++)
			if (m->pages[i])
				put_page(m->pages[i]);
		vfree(m->pages);
	}
	kfree(m);
}

u64 trapvm_boot_mmu_cr3(struct trapvm_boot_mmu *m)
{
	return __pa(m->root);
}

static u64 *bm_next(u64 *table, unsigned int idx)
{
	u64 *next;

	if (table[idx] & _PAGE_PRESENT)
		return __va(table[idx] & PTE_PFN_MASK);
	next = (u64 *)get_zeroed_page(GFP_KERNEL);
	if (next)
		table[idx] = __pa(next) | BM_TABLE;
	return next;
}

int trapvm_boot_mmu_fault(struct trapvm_boot_mmu *m, u64 gva, u32 error_code)
{
	unsigned long gfn = gva >> PAGE_SHIFT;
	struct page *page;
	u64 *t;

	if (gfn >= m->nr_gfns || (error_code & X86_PF_PROT))
		return 1;
	if (m->pages[gfn])
		return 1;	/* mapped already: not ours to fix */
	page = trapvm_gfn_to_page(m->vm, gfn, true);
	if (!page)
		return -ENOMEM;
	t = bm_next(m->pml4, (gva >> 39) & 511);
	if (t)
		t = bm_next(t, (gva >> 30) & 511);
	if (t)
		t = bm_next(t, (gva >> 21) & 511);
	if (!t) {
		put_page(page);
		return -ENOMEM;
	}
	m->pages[gfn] = page;
	t[(gva >> 12) & 511] = page_to_phys(page) | BM_LEAF;
	return 0;
}
