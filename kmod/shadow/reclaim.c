// SPDX-License-Identifier: GPL-2.0
/*
 * Shadow memory cap and reclaim.
 *
 * The shadow pages of a VM (all its vCPUs) are capped at
 * shadow_max_pages (module parameter; a PT shadow page counts twice, for
 * its rmap array).  The pages are shared, so is the cap.  Before a fault
 * or a root switch allocates, the vCPU makes room by zapping the VM's
 * least recently used shadow pages that no cached root of any vCPU holds;
 * if there are none it gives up its own other cached roots, and as a
 * last resort empties everything but the roots (emptied, not freed: a
 * root may be the current one of a vCPU that is in the guest; reclaimed
 * pages are freed only after the remote TLB flush).
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

/* Under the mmu lock; the gauge goes to the vCPU doing the work. */
void trapvm_mmu_count_page(struct trapvm_vm_mmu *m, int delta)
{
	m->nr_pages += delta;
	atomic_long_add(delta, &trapvm_mmu_pages);
	if (m->actor)
		m->actor->stats[TRAPVM_STAT_MMU_SHADOW_LIVE] = m->nr_pages;
}

static unsigned long mmu_cap(void)
{
	return max(READ_ONCE(trapvm_shadow_max_pages), 64U);
}

static bool mmu_over(struct trapvm_vm_mmu *m, unsigned int need)
{
	return m->nr_pages + need > mmu_cap();
}

/*
 * Zap LRU shadow pages no root of any vCPU holds until @need more fit.
 * They are freed after the remote flush, at unlock.
 */
static unsigned long reclaim_lru(struct trapvm_vm_mmu *m, unsigned int need)
{
	struct trapvm_sp *sp, *tmp;
	unsigned long freed = 0;

	list_for_each_entry_safe(sp, tmp, &m->sp_lru, lru) {
		if (!mmu_over(m, need))
			break;
		if (sp->root_count)
			continue;
		trace_trapvm_mmu_sp(mmu_actor_id(m), TRAPVM_TRACE_SP_RECLAIM,
				    sp->gfn, sp->role.level, sp->role.word);
		/*
		 * Zapping @sp unlinks its children but releases nothing
		 * else, so @tmp stays on the list.
		 */
		trapvm_sp_zap(m, sp);
		freed++;
	}
	return freed;
}

/* Under the mmu lock. */
int trapvm_mmu_make_room(struct trapvm_vcpu *vcpu, unsigned int need)
{
	struct trapvm_vm_mmu *m = vcpu_vm_mmu(vcpu);
	unsigned long before, freed;

	if (!mmu_over(m, need))
		return 0;
	before = m->nr_pages;
	freed = reclaim_lru(m, need);
	if (mmu_over(m, need)) {
		/* Only this vCPU's roots: the others are theirs to drop. */
		trapvm_roots_put_all(vcpu, true);
		freed += reclaim_lru(m, need);
	}
	if (mmu_over(m, need)) {
		trapvm_sp_zap_all(m);
		freed++;
	}
	vcpu->stats[TRAPVM_STAT_MMU_RECLAIMED] += freed;
	trace_trapvm_mmu_reclaim(vcpu->id, freed, before, m->nr_pages);
	return mmu_over(m, need) ? -ENOSPC : 0;
}
