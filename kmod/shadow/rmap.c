// SPDX-License-Identifier: GPL-2.0
/*
 * Reverse map: for each guest frame, the shadow leaves that map it.
 *
 * Used when a guest page becomes a page table (a shadow page is created
 * for it): every leaf mapping it loses R/W, so that the guest's next
 * write to the table faults and is emulated (write_track.c).  Each PT
 * shadow page has an array with the rmap entry of each of its leaves, so
 * dropping a leaf finds its entry without a search.  Per VM, under the
 * mmu lock, like the shadow pages.
 */
#include <linux/slab.h>
#include <linux/list.h>
#include <linux/hash.h>

#include "../trapvm.h"
#include "mmu_internal.h"

static unsigned int rmap_hash(u64 gfn)
{
	return hash_64(gfn, RMAP_HASH_BITS);
}

int trapvm_rmap_add(struct trapvm_vm_mmu *m, struct trapvm_sp *sp,
		    unsigned int idx, u64 gfn)
{
	struct trapvm_rmap *r = kmalloc(sizeof(*r), GFP_KERNEL_ACCOUNT);

	if (!r)
		return -ENOMEM;
	r->gfn = gfn;
	r->sptep = &sp->spt[idx];
	hlist_add_head(&r->node, &m->rmap_hash[rmap_hash(gfn)]);
	sp->rmap[idx] = r;
	return 0;
}

void trapvm_rmap_remove(struct trapvm_vm_mmu *m, struct trapvm_sp *sp,
			unsigned int idx)
{
	struct trapvm_rmap *r = sp->rmap[idx];

	if (!r)
		return;
	hlist_del(&r->node);
	kfree(r);
	sp->rmap[idx] = NULL;
}

/*
 * Make every shadow leaf mapping @gfn read-only, in the shadow pages all
 * vCPUs share.  A vCPU running in the guest on another CPU may still
 * hold the writable translation in its TLB: m->need_flush has the caller
 * flush before anyone relies on the protection (trapvm_mmu_commit()).
 */
void trapvm_rmap_write_protect(struct trapvm_vm_mmu *m, u64 gfn)
{
	struct trapvm_rmap *r;

	hlist_for_each_entry(r, &m->rmap_hash[rmap_hash(gfn)], node) {
		u64 spte = *r->sptep;

		if (r->gfn != gfn || !(spte & (TRAPVM_PTE_RW | TRAPVM_PTE_D)))
			continue;
		WRITE_ONCE(*r->sptep, spte & ~(TRAPVM_PTE_RW | TRAPVM_PTE_D));
		m->need_flush = true;
	}
}
