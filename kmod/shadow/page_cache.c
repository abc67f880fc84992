// SPDX-License-Identifier: GPL-2.0
/*
 * The shadow page cache: one shadow table page per (guest table gfn,
 * role), found through a hash by gfn, linked to the shadow entries that
 * point to it (its parents), on an LRU list for reclaim.
 *
 * Zapping an entry of a shadow table only unlinks what it points to: a
 * child shadow page stays cached (an orphan, still write-protecting its
 * guest table) so that the next walk through another parent, or through
 * the same one after the guest rewrote it, finds it again.  Orphans go
 * when their guest table is rewritten as data (flood detection, see
 * write_track.c) or by LRU reclaim.
 */
#define pr_fmt(fmt) "trapvm: " fmt

#include <linux/slab.h>
#include <linux/mm.h>
#include <linux/list.h>
#include <linux/hash.h>
#include <asm/io.h>

#include "../trapvm.h"
#include "mmu_internal.h"
#include "mmu_trace.h"

static unsigned int sp_hash(u64 gfn)
{
	return hash_64(gfn, SP_HASH_BITS);
}

struct trapvm_sp *trapvm_sp_of_table(u64 *spt)
{
	return (struct trapvm_sp *)page_private(virt_to_page(spt));
}

static struct trapvm_sp *sp_child(u64 spte)
{
	return trapvm_sp_of_table(__va(SHADOW_ADDR(spte)));
}

void trapvm_sp_touch(struct trapvm_vcpu *vcpu, struct trapvm_sp *sp)
{
	sp->write_count = 0;
	list_move_tail(&sp->lru, &vcpu->mmu->sp_lru);
}

bool trapvm_gfn_is_tracked(struct trapvm_vcpu *vcpu, u64 gfn)
{
	struct trapvm_sp *sp;

	hlist_for_each_entry(sp, &vcpu->mmu->sp_hash[sp_hash(gfn)], hash)
		if (sp->gfn == gfn && !sp->role.direct)
			return true;
	return false;
}

static unsigned int sp_pages(const struct trapvm_sp *sp)
{
	/* A PT also has its rmap array (a page of pointers). */
	return sp->role.level == 1 ? 2 : 1;
}

static struct trapvm_sp *sp_alloc(struct trapvm_vcpu *vcpu, u64 gfn,
				  union trapvm_sp_role role)
{
	struct trapvm_sp *sp = kzalloc(sizeof(*sp), GFP_KERNEL_ACCOUNT);
	struct page *page;

	if (!sp)
		return NULL;
	page = alloc_page(GFP_KERNEL_ACCOUNT | __GFP_ZERO);
	if (!page)
		goto fail;
	sp->spt = page_address(page);
	set_page_private(page, (unsigned long)sp);
	if (role.level == 1) {
		sp->rmap = kzalloc(512 * sizeof(*sp->rmap),
				   GFP_KERNEL_ACCOUNT);
		if (!sp->rmap) {
			set_page_private(page, 0);
			__free_page(page);
			goto fail;
		}
	}
	sp->gfn = gfn;
	sp->role = role;
	return sp;
fail:
	kfree(sp);
	return NULL;
}

/*
 * The shadow page for (@gfn, @role), created if there is none (then
 * *@created is true and, for a guest table, every shadow leaf mapping
 * @gfn has been made read-only).  NULL if out of memory.
 */
struct trapvm_sp *trapvm_sp_get(struct trapvm_vcpu *vcpu, u64 gfn,
				union trapvm_sp_role role, bool *created)
{
	struct trapvm_vcpu_mmu *mmu = vcpu->mmu;
	struct hlist_head *head = &mmu->sp_hash[sp_hash(gfn)];
	struct trapvm_sp *sp;
	bool tracked = false;

	*created = false;
	hlist_for_each_entry(sp, head, hash) {
		if (sp->gfn != gfn)
			continue;
		if (sp->role.word == role.word) {
			trapvm_sp_touch(vcpu, sp);
			return sp;
		}
		tracked |= !sp->role.direct;
	}

	sp = sp_alloc(vcpu, gfn, role);
	if (!sp)
		return NULL;
	hlist_add_head(&sp->hash, head);
	list_add_tail(&sp->lru, &mmu->sp_lru);
	mmu->nr_sp++;
	trapvm_mmu_count_page(vcpu, sp_pages(sp));
	trapvm_vcpu_stat_inc(vcpu, TRAPVM_STAT_MMU_SHADOW_ALLOC);
	trace_trapvm_mmu_sp(vcpu->id, TRAPVM_TRACE_SP_CREATE, gfn,
			    role.level, role.word);
	/* A guest table from now on: no writable mapping of it may stay. */
	if (!role.direct && !tracked)
		trapvm_rmap_write_protect(vcpu, gfn);
	*created = true;
	return sp;
}

/* Point the shadow entry @sptep (not present) at @child. */
int trapvm_sp_link(struct trapvm_vcpu *vcpu, u64 *sptep,
		   struct trapvm_sp *child)
{
	if (child->nr_parents == child->max_parents) {
		unsigned int max = child->max_parents ?
				   child->max_parents * 2 : 4;
		u64 **p = krealloc(child->parents, max * sizeof(*p),
				   GFP_KERNEL_ACCOUNT);

		if (!p)
			return -ENOMEM;
		child->parents = p;
		child->max_parents = max;
	}
	child->parents[child->nr_parents++] = sptep;
	WRITE_ONCE(*sptep, __pa(child->spt) | SHADOW_TABLE_FLAGS);
	return 0;
}

static void sp_unlink_parent(struct trapvm_sp *child, u64 *sptep)
{
	unsigned int i;

	for (i = 0; i < child->nr_parents; i++) {
		if (child->parents[i] == sptep) {
			child->parents[i] = child->parents[--child->nr_parents];
			return;
		}
	}
	WARN_ON_ONCE(1);
}

/*
 * Clear entry @idx of @sp: drop a leaf (and its page reference and rmap
 * entry), or unlink a child shadow page.  The hole slots of a PML4 hold
 * the switcher's page tables and are never touched.
 */
void trapvm_sp_zap_entry(struct trapvm_vcpu *vcpu, struct trapvm_sp *sp,
			 unsigned int idx)
{
	u64 spte = sp->spt[idx];

	if (!(spte & TRAPVM_PTE_P))
		return;
	if (sp->role.level == 4 && hole_slot(idx))
		return;
	WRITE_ONCE(sp->spt[idx], 0);
	if (sp->role.level == 1) {
		trapvm_rmap_remove(vcpu, sp, idx);
		put_page(pfn_to_page(SHADOW_ADDR(spte) >> PAGE_SHIFT));
	} else {
		sp_unlink_parent(sp_child(spte), &sp->spt[idx]);
	}
}

static void sp_clear(struct trapvm_vcpu *vcpu, struct trapvm_sp *sp)
{
	unsigned int i;

	for (i = 0; i < 512; i++)
		trapvm_sp_zap_entry(vcpu, sp, i);
}

static void sp_unlink_parents(struct trapvm_sp *sp)
{
	while (sp->nr_parents)
		WRITE_ONCE(*sp->parents[--sp->nr_parents], 0);
}

static void sp_free(struct trapvm_vcpu *vcpu, struct trapvm_sp *sp)
{
	struct page *page = virt_to_page(sp->spt);

	hlist_del(&sp->hash);
	list_del(&sp->lru);
	vcpu->mmu->nr_sp--;
	trapvm_mmu_count_page(vcpu, -(int)sp_pages(sp));
	trapvm_vcpu_stat_inc(vcpu, TRAPVM_STAT_MMU_SHADOW_FREE);
	set_page_private(page, 0);
	__free_page(page);
	kfree(sp->rmap);
	kfree(sp->parents);
	kfree(sp);
}

/*
 * Remove @sp from the shadow: its entries, the entries pointing to it,
 * and (unless a cached root still holds it) the page itself.
 */
void trapvm_sp_zap(struct trapvm_vcpu *vcpu, struct trapvm_sp *sp)
{
	trace_trapvm_mmu_sp(vcpu->id, TRAPVM_TRACE_SP_ZAP, sp->gfn,
			    sp->role.level, sp->role.word);
	sp_clear(vcpu, sp);
	sp_unlink_parents(sp);
	if (!sp->root_count)
		sp_free(vcpu, sp);
}

/* Drop every shadow page except those cached roots hold (emptied). */
void trapvm_sp_zap_all(struct trapvm_vcpu *vcpu)
{
	struct trapvm_sp *sp, *tmp;

	list_for_each_entry(sp, &vcpu->mmu->sp_lru, lru)
		sp_clear(vcpu, sp);
	list_for_each_entry_safe(sp, tmp, &vcpu->mmu->sp_lru, lru) {
		sp_unlink_parents(sp);
		if (!sp->root_count)
			sp_free(vcpu, sp);
	}
}
