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
 *
 * The cache is per VM, under the VM's mmu lock: every vCPU walks the
 * same lower-level shadow pages; PML4 pages carry their vCPU in the role
 * (role.owner) because the world switch writes into them.  Removing or
 * downgrading an entry another CPU may have cached in its TLB sets
 * m->need_flush, and what a removed entry pointed to (a shadow page, a
 * guest page reference) is only released after the remote flush, at
 * trapvm_mmu_unlock() (commit-zap, mmu.c).
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

void trapvm_sp_touch(struct trapvm_vm_mmu *m, struct trapvm_sp *sp)
{
	sp->write_count = 0;
	list_move_tail(&sp->lru, &m->sp_lru);
}

bool trapvm_gfn_is_tracked(struct trapvm_vm_mmu *m, u64 gfn)
{
	struct trapvm_sp *sp;

	hlist_for_each_entry(sp, &m->sp_hash[sp_hash(gfn)], hash)
		if (sp->gfn == gfn && !sp->role.direct)
			return true;
	return false;
}

static unsigned int sp_pages(const struct trapvm_sp *sp)
{
	/* A PT also has its rmap array (a page of pointers). */
	return sp->role.level == 1 ? 2 : 1;
}

static struct trapvm_sp *sp_alloc(u64 gfn, union trapvm_sp_role role)
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
 * *@created is true and, for a guest table, every shadow leaf of every
 * vCPU mapping @gfn has been made read-only: the caller must have the
 * remote TLBs flushed, trapvm_mmu_commit(), before it trusts the guest
 * table's contents).  NULL if out of memory.
 */
struct trapvm_sp *trapvm_sp_get(struct trapvm_vm_mmu *m, u64 gfn,
				union trapvm_sp_role role, bool *created)
{
	struct hlist_head *head = &m->sp_hash[sp_hash(gfn)];
	struct trapvm_sp *sp;
	bool tracked = false;

	*created = false;
	hlist_for_each_entry(sp, head, hash) {
		if (sp->gfn != gfn)
			continue;
		if (sp->role.word == role.word) {
			trapvm_sp_touch(m, sp);
			return sp;
		}
		tracked |= !sp->role.direct;
	}

	sp = sp_alloc(gfn, role);
	if (!sp)
		return NULL;
	hlist_add_head(&sp->hash, head);
	list_add_tail(&sp->lru, &m->sp_lru);
	m->nr_sp++;
	trapvm_mmu_count_page(m, sp_pages(sp));
	mmu_stat_inc(m, TRAPVM_STAT_MMU_SHADOW_ALLOC);
	trace_trapvm_mmu_sp(mmu_actor_id(m), TRAPVM_TRACE_SP_CREATE, gfn,
			    role.level, role.word);
	/*
	 * A guest table from now on: no writable mapping of it may stay,
	 * in any vCPU's shadow or in the VMM's mapping of guest RAM.
	 */
	if (!role.direct && !tracked) {
		trapvm_rmap_write_protect(m, gfn);
		trapvm_guest_mem_protect_from_user(m->vm, gfn);
	}
	*created = true;
	return sp;
}

/* Point the shadow entry @sptep (not present) at @child. */
int trapvm_sp_link(struct trapvm_vm_mmu *m, u64 *sptep,
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
	/* Not present before: an upgrade, no TLB can hold it. */
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
 * Clear entry @idx of @sp: drop a leaf (and its page reference, after the
 * remote flush, and its rmap entry), or unlink a child shadow page.  The
 * hole slots of a PML4 hold the switcher's page tables and are never
 * touched.
 */
void trapvm_sp_zap_entry(struct trapvm_vm_mmu *m, struct trapvm_sp *sp,
			 unsigned int idx)
{
	u64 spte;

	/* Not even read: the world switch writes it without the lock. */
	if (sp->role.level == 4 && hole_slot(idx))
		return;
	spte = sp->spt[idx];
	if (!(spte & TRAPVM_PTE_P))
		return;
	WRITE_ONCE(sp->spt[idx], 0);
	m->need_flush = true;
	if (sp->role.level == 1) {
		trapvm_rmap_remove(m, sp, idx);
		trapvm_mmu_put_leaf_page(m, pfn_to_page(SHADOW_ADDR(spte) >>
							PAGE_SHIFT));
	} else {
		sp_unlink_parent(sp_child(spte), &sp->spt[idx]);
	}
}

static void sp_clear(struct trapvm_vm_mmu *m, struct trapvm_sp *sp)
{
	unsigned int i;

	for (i = 0; i < 512; i++)
		trapvm_sp_zap_entry(m, sp, i);
}

static void sp_unlink_parents(struct trapvm_vm_mmu *m, struct trapvm_sp *sp)
{
	if (sp->nr_parents)
		m->need_flush = true;
	while (sp->nr_parents)
		WRITE_ONCE(*sp->parents[--sp->nr_parents], 0);
}

/* Out of the hash: no walk finds @sp any more. */
static void sp_unhash(struct trapvm_vm_mmu *m, struct trapvm_sp *sp)
{
	if (sp->obsolete)
		return;
	hlist_del(&sp->hash);
}

/*
 * @sp is empty and unlinked: move it to m->zapped, freed after the next
 * remote flush (another CPU may still walk it through a stale TLB or
 * paging-structure cache entry).
 */
static void sp_release(struct trapvm_vm_mmu *m, struct trapvm_sp *sp)
{
	sp_unhash(m, sp);
	list_move_tail(&sp->lru, &m->zapped);
	m->nr_sp--;
	trapvm_mmu_count_page(m, -(int)sp_pages(sp));
	mmu_stat_inc(m, TRAPVM_STAT_MMU_SHADOW_FREE);
	m->need_flush = true;
}

/* Free the pages of m->zapped: only after trapvm_mmu_flush_remote(). */
void trapvm_sp_free_zapped(struct trapvm_vm_mmu *m)
{
	struct trapvm_sp *sp, *tmp;

	list_for_each_entry_safe(sp, tmp, &m->zapped, lru) {
		struct page *page = virt_to_page(sp->spt);

		list_del(&sp->lru);
		set_page_private(page, 0);
		__free_page(page);
		kfree(sp->rmap);
		kfree(sp->parents);
		kfree(sp);
	}
}

/*
 * Remove @sp from the shadow: its entries, the entries pointing to it,
 * and the page itself.  A page a cached root holds (a PML4 of some vCPU)
 * becomes obsolete instead: emptied, out of the hash, freed when its
 * vCPU drops the root (trapvm_sp_put_root()), which it does before its
 * next entry.
 */
void trapvm_sp_zap(struct trapvm_vm_mmu *m, struct trapvm_sp *sp)
{
	trace_trapvm_mmu_sp(mmu_actor_id(m), TRAPVM_TRACE_SP_ZAP, sp->gfn,
			    sp->role.level, sp->role.word);
	sp_clear(m, sp);
	sp_unlink_parents(m, sp);
	if (!sp->root_count) {
		sp_release(m, sp);
		return;
	}
	sp_unhash(m, sp);
	sp->obsolete = true;
}

/* A cached root lets go of @sp. */
void trapvm_sp_put_root(struct trapvm_vm_mmu *m, struct trapvm_sp *sp)
{
	if (--sp->root_count)
		return;
	if (sp->obsolete)
		sp_release(m, sp);
	else
		/* An ordinary cached page from now on. */
		list_move_tail(&sp->lru, &m->sp_lru);
}

/*
 * Drop every shadow page except those cached roots hold (emptied, still
 * valid: their vCPUs refill them from the guest's tables).
 */
void trapvm_sp_zap_all(struct trapvm_vm_mmu *m)
{
	struct trapvm_sp *sp, *tmp;

	list_for_each_entry(sp, &m->sp_lru, lru)
		sp_clear(m, sp);
	list_for_each_entry_safe(sp, tmp, &m->sp_lru, lru) {
		sp_unlink_parents(m, sp);
		if (!sp->root_count)
			sp_release(m, sp);
	}
}
