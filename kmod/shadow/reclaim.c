// SPDX-License-Identifier: GPL-2.0
/*
 * Shadow memory cap and reclaim.
 *
 * The shadow pages of a VM (all its vCPUs) are capped at
 * shadow_max_pages (module parameter; a PT shadow page counts twice, for
 * its rmap array).  Before a fault or a root switch allocates, the vCPU
 * makes room by zapping its least recently used shadow pages that no
 * cached root holds; if there are none it gives up its other cached
 * roots, and as a last resort empties everything but the current root.
 * So a guest that builds ever more page tables only makes itself fault
 * more: the host never gives it more than the cap.
 */
#include <linux/module.h>
#include <linux/list.h>

#include "../trapvm.h"
#include "mmu_internal.h"
#include "mmu_trace.h"

unsigned int trapvm_shadow_max_pages = 4096;
module_param_named(shadow_max_pages, trapvm_shadow_max_pages, uint, 0644);
MODULE_PARM_DESC(shadow_max_pages,
		 "Shadow page-table pages per VM before LRU reclaim (default 4096 = 16 MiB; minimum 64)");

static atomic_long_t trapvm_mmu_pages = ATOMIC_LONG_INIT(0);

long trapvm_mmu_total_pages(void)
{
	return atomic_long_read(&trapvm_mmu_pages);
}

void trapvm_mmu_count_page(struct trapvm_vcpu *vcpu, int delta)
{
	struct trapvm_vcpu_mmu *mmu = vcpu->mmu;

	mmu->nr_pages += delta;
	atomic_long_add(delta, &trapvm_mmu_pages);
	atomic_long_add(delta, &mmu->vm_mmu->nr_pages);
	vcpu->stats[TRAPVM_STAT_MMU_SHADOW_LIVE] = mmu->nr_pages;
}

static unsigned long mmu_cap(void)
{
	return max(READ_ONCE(trapvm_shadow_max_pages), 64U);
}

static bool mmu_over(struct trapvm_vcpu *vcpu, unsigned int need)
{
	return atomic_long_read(&vcpu->mmu->vm_mmu->nr_pages) + need >
	       mmu_cap();
}

/* Zap LRU shadow pages no root holds until @need more fit. */
static unsigned long reclaim_lru(struct trapvm_vcpu *vcpu, unsigned int need)
{
	struct trapvm_sp *sp, *tmp;
	unsigned long freed = 0;

	list_for_each_entry_safe(sp, tmp, &vcpu->mmu->sp_lru, lru) {
		if (!mmu_over(vcpu, need))
			break;
		if (sp->root_count)
			continue;
		trace_trapvm_mmu_sp(vcpu->id, TRAPVM_TRACE_SP_RECLAIM, sp->gfn,
				    sp->role.level, sp->role.word);
		/*
		 * Zapping @sp unlinks its children but frees nothing else,
		 * so @tmp stays valid.
		 */
		trapvm_sp_zap(vcpu, sp);
		freed++;
	}
	return freed;
}

int trapvm_mmu_make_room(struct trapvm_vcpu *vcpu, unsigned int need)
{
	unsigned long before, freed;

	if (!mmu_over(vcpu, need))
		return 0;
	before = vcpu->mmu->nr_pages;
	freed = reclaim_lru(vcpu, need);
	if (mmu_over(vcpu, need)) {
		trapvm_roots_put_all(vcpu, true);
		freed += reclaim_lru(vcpu, need);
	}
	if (mmu_over(vcpu, need)) {
		trapvm_sp_zap_all(vcpu);
		freed++;
	}
	vcpu->stats[TRAPVM_STAT_MMU_RECLAIMED] += freed;
	trace_trapvm_mmu_reclaim(vcpu->id, freed, before, vcpu->mmu->nr_pages);
	return mmu_over(vcpu, need) ? -ENOSPC : 0;
}
