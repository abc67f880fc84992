// SPDX-License-Identifier: GPL-2.0
/*
 * trapvm shadow MMU: setup and teardown, the VM's mmu lock and commit-zap.
 * See mmu.h for the interface, mmu_internal.h for how the files of
 * kmod/shadow/ divide the work, and Documentation/shadow-mmu.rst for the
 * design.
 */
#define pr_fmt(fmt) "trapvm: " fmt

#include <linux/slab.h>
#include <linux/mm.h>
#include <linux/list.h>
#include <linux/mutex.h>
#include <asm/io.h>
#include <asm/pgtable.h>

#include "../trapvm.h"
#include "mmu_internal.h"

/* role.owner holds vcpu->id + 1 in 4 bits. */
static_assert(TRAPVM_MAX_VCPUS < 16);

void trapvm_mmu_lock(struct trapvm_vm_mmu *m, struct trapvm_vcpu *actor)
{
	mutex_lock(&m->lock);
	m->actor = actor;
}

/*
 * Commit-zap.  Everything the shadow lost since the last commit (entries
 * removed, leaves made read-only) may still be in the TLB of a vCPU that
 * runs in the guest on another CPU: make those vCPUs leave the guest
 * (they reload CR3, which flushes, before they enter again), and only
 * then free the shadow pages and drop the page references that the
 * removed entries held.
 */
void trapvm_mmu_commit(struct trapvm_vm_mmu *m)
{
	unsigned int i;

	if (m->need_flush) {
		trapvm_mmu_flush_remote(m);
		m->need_flush = false;
	}
	for (i = 0; i < m->nr_put; i++)
		put_page(m->put[i]);
	m->nr_put = 0;
	trapvm_sp_free_zapped(m);
}

void trapvm_mmu_unlock(struct trapvm_vm_mmu *m)
{
	trapvm_mmu_commit(m);
	m->actor = NULL;
	mutex_unlock(&m->lock);
}

/* A zapped leaf's page reference, dropped after the remote flush. */
void trapvm_mmu_put_leaf_page(struct trapvm_vm_mmu *m, struct page *page)
{
	unsigned int i;

	if (m->nr_put == TRAPVM_MMU_PUT_BATCH) {
		/* Flushed: what is pending now is unreachable everywhere. */
		trapvm_mmu_flush_remote(m);
		m->need_flush = false;
		for (i = 0; i < m->nr_put; i++)
			put_page(m->put[i]);
		m->nr_put = 0;
	}
	m->put[m->nr_put++] = page;
}

static u64 *mmu_alloc_empty(struct trapvm_vm_mmu *m)
{
	struct page *page = alloc_page(GFP_KERNEL_ACCOUNT | __GFP_ZERO);

	if (!page)
		return NULL;
	trapvm_mmu_count_page(m, 1);
	return page_address(page);
}

static void mmu_free_page(struct trapvm_vm_mmu *m, u64 *table)
{
	if (!table)
		return;
	__free_page(virt_to_page(table));
	trapvm_mmu_count_page(m, -1);
}

static void mmu_vm_free(struct trapvm_vm_mmu *m)
{
	trapvm_mmu_flush_free(m);
	mutex_destroy(&m->lock);
	kvfree(m);
}

/* vcpu->vm->mmu: the shadow page cache of the VM, made by the first vCPU. */
static struct trapvm_vm_mmu *mmu_vm_get(struct trapvm_vcpu *vcpu)
{
	struct trapvm_vm *vm = vcpu->vm;
	struct trapvm_vm_mmu *m = vm->mmu;
	int i;

	if (m)
		return m;
	m = kvzalloc(sizeof(*m), GFP_KERNEL_ACCOUNT);
	if (!m)
		return NULL;
	mutex_init(&m->lock);
	m->vm = vm;
	for (i = 0; i < ARRAY_SIZE(m->sp_hash); i++)
		INIT_HLIST_HEAD(&m->sp_hash[i]);
	for (i = 0; i < ARRAY_SIZE(m->rmap_hash); i++)
		INIT_HLIST_HEAD(&m->rmap_hash[i]);
	INIT_LIST_HEAD(&m->sp_lru);
	INIT_LIST_HEAD(&m->zapped);
	atomic_set(&m->zap_gen, 0);
	if (trapvm_mmu_flush_init(m)) {
		mmu_vm_free(m);
		return NULL;
	}
	/* Pairs with smp_load_acquire() in the lockless users. */
	smp_store_release(&vm->mmu, m);
	return m;
}

int trapvm_mmu_init(struct trapvm_vcpu *vcpu)
{
	struct trapvm_vcpu_mmu *mmu;
	struct trapvm_vm_mmu *m;

	if (vcpu->id >= TRAPVM_MAX_VCPUS)
		return -EINVAL;
	mmu = kzalloc(sizeof(*mmu), GFP_KERNEL_ACCOUNT);
	if (!mmu)
		return -ENOMEM;
	mmu->la57 = pgtable_l5_enabled();
	mmu->cur = -1;
	mmu->wp_fault_gfn = ~0ULL;
	mmu->spurious_gva = ~0ULL;
	mmu->mode = TRAPVM_MMU_OUTSIDE_GUEST;
	m = mmu_vm_get(vcpu);
	if (!m) {
		kfree(mmu);
		return -ENOMEM;
	}
	mmu->vm_mmu = m;
	vcpu->mmu = mmu;

	trapvm_mmu_lock(m, vcpu);
	m->users++;
	WARN_ON_ONCE(m->vcpus[vcpu->id]);
	m->vcpus[vcpu->id] = vcpu;
	mmu->empty_top = mmu_alloc_empty(m);
	mmu->empty_pml4 = mmu->empty_top;
	if (mmu->empty_top && mmu->la57) {
		mmu->empty_pml4 = mmu_alloc_empty(m);
		if (mmu->empty_pml4)
			mmu->empty_top[511] = __pa(mmu->empty_pml4) |
					      SHADOW_TABLE_FLAGS;
	}
	trapvm_mmu_unlock(m);
	if (!mmu->empty_top || !mmu->empty_pml4) {
		trapvm_mmu_destroy(vcpu);
		return -ENOMEM;
	}
	return 0;
}

void trapvm_mmu_destroy(struct trapvm_vcpu *vcpu)
{
	struct trapvm_vcpu_mmu *mmu = vcpu->mmu;
	struct trapvm_vm_mmu *m;
	struct trapvm_sp *sp, *tmp;
	bool last;
	int i;

	if (!mmu)
		return;
	m = mmu->vm_mmu;
	trapvm_mmu_lock(m, vcpu);
	/* The switcher's PDPT in the hole is not ours and is left alone. */
	trapvm_roots_put_all(vcpu, false);
	/* Its PML4 pages: nobody else can use them. */
	list_for_each_entry_safe(sp, tmp, &m->sp_lru, lru)
		if (sp->role.owner == vcpu->id + 1)
			trapvm_sp_zap(m, sp);
	last = !--m->users;
	if (last) {
		trapvm_sp_zap_all(m);
		list_for_each_entry_safe(sp, tmp, &m->sp_lru, lru)
			trapvm_sp_zap(m, sp);	/* none should be left */
	}
	for (i = 0; i < TRAPVM_MMU_NR_ROOTS; i++)
		mmu_free_page(m, mmu->roots[i].pml5);
	if (mmu->empty_pml4 != mmu->empty_top)
		mmu_free_page(m, mmu->empty_pml4);
	mmu_free_page(m, mmu->empty_top);
	m->vcpus[vcpu->id] = NULL;
	trapvm_mmu_unlock(m);
	vcpu->mmu = NULL;
	kfree(mmu);
	if (!last)
		return;
	WARN_ON_ONCE(m->nr_pages || m->nr_sp);
	vcpu->vm->mmu = NULL;
	mmu_vm_free(m);
}

u64 trapvm_mmu_mmio_gpa(struct trapvm_vcpu_mmu *mmu)
{
	return mmu->mmio_gpa;
}

void trapvm_mmu_user_write(struct trapvm_vm *vm, u64 gfn)
{
	/* Pairs with smp_store_release() in mmu_vm_get(). */
	struct trapvm_vm_mmu *m = smp_load_acquire(&vm->mmu);

	if (!m)
		return;
	trapvm_mmu_lock(m, NULL);
	trapvm_unshadow_gfn(m, gfn);
	trapvm_mmu_unlock(m);
}
