// SPDX-License-Identifier: GPL-2.0
/*
 * trapvm shadow MMU: setup and teardown.  See mmu.h for the interface,
 * mmu_internal.h for how the files of kmod/shadow/ divide the work, and
 * Documentation/shadow-mmu.rst for the design.
 */
#define pr_fmt(fmt) "trapvm: " fmt

#include <linux/slab.h>
#include <linux/mm.h>
#include <linux/list.h>
#include <asm/io.h>
#include <asm/pgtable.h>

#include "../trapvm.h"
#include "mmu_internal.h"

static u64 *mmu_alloc_empty(struct trapvm_vcpu *vcpu)
{
	struct page *page = alloc_page(GFP_KERNEL_ACCOUNT | __GFP_ZERO);

	if (!page)
		return NULL;
	trapvm_mmu_count_page(vcpu, 1);
	return page_address(page);
}

static void mmu_free_page(struct trapvm_vcpu *vcpu, u64 *table)
{
	if (!table)
		return;
	__free_page(virt_to_page(table));
	trapvm_mmu_count_page(vcpu, -1);
}

/* vcpu->vm->mmu: shared by the vCPUs of a VM, for the cap. */
static int mmu_vm_get(struct trapvm_vcpu *vcpu)
{
	struct trapvm_vm *vm = vcpu->vm;

	if (!vm->mmu) {
		vm->mmu = kzalloc(sizeof(*vm->mmu), GFP_KERNEL_ACCOUNT);
		if (!vm->mmu)
			return -ENOMEM;
	}
	vm->mmu->users++;
	vcpu->mmu->vm_mmu = vm->mmu;
	return 0;
}

static void mmu_vm_put(struct trapvm_vcpu *vcpu)
{
	struct trapvm_vm *vm = vcpu->vm;

	if (--vm->mmu->users)
		return;
	WARN_ON_ONCE(atomic_long_read(&vm->mmu->nr_pages));
	kfree(vm->mmu);
	vm->mmu = NULL;
}

int trapvm_mmu_init(struct trapvm_vcpu *vcpu)
{
	struct trapvm_vcpu_mmu *mmu;
	int i;

	mmu = kzalloc(sizeof(*mmu), GFP_KERNEL_ACCOUNT);
	if (!mmu)
		return -ENOMEM;
	for (i = 0; i < ARRAY_SIZE(mmu->sp_hash); i++)
		INIT_HLIST_HEAD(&mmu->sp_hash[i]);
	for (i = 0; i < ARRAY_SIZE(mmu->rmap_hash); i++)
		INIT_HLIST_HEAD(&mmu->rmap_hash[i]);
	INIT_LIST_HEAD(&mmu->sp_lru);
	mmu->la57 = pgtable_l5_enabled();
	mmu->cur = -1;
	mmu->wp_fault_gfn = ~0ULL;
	atomic_set(&mmu->zap_request, 0);
	vcpu->mmu = mmu;
	if (mmu_vm_get(vcpu)) {
		vcpu->mmu = NULL;
		kfree(mmu);
		return -ENOMEM;
	}

	mmu->empty_top = mmu_alloc_empty(vcpu);
	if (!mmu->empty_top)
		goto fail;
	mmu->empty_pml4 = mmu->empty_top;
	if (mmu->la57) {
		mmu->empty_pml4 = mmu_alloc_empty(vcpu);
		if (!mmu->empty_pml4)
			goto fail;
		mmu->empty_top[511] = __pa(mmu->empty_pml4) |
				      SHADOW_TABLE_FLAGS;
	}
	return 0;
fail:
	trapvm_mmu_destroy(vcpu);
	return -ENOMEM;
}

void trapvm_mmu_destroy(struct trapvm_vcpu *vcpu)
{
	struct trapvm_vcpu_mmu *mmu = vcpu->mmu;
	struct trapvm_sp *sp, *tmp;
	int i;

	if (!mmu)
		return;
	/* The switcher's PDPT in the hole is not ours and is left alone. */
	trapvm_roots_put_all(vcpu, false);
	trapvm_sp_zap_all(vcpu);
	list_for_each_entry_safe(sp, tmp, &mmu->sp_lru, lru)
		trapvm_sp_zap(vcpu, sp);	/* none should be left */
	for (i = 0; i < TRAPVM_MMU_NR_ROOTS; i++)
		mmu_free_page(vcpu, mmu->roots[i].pml5);
	if (mmu->empty_pml4 != mmu->empty_top)
		mmu_free_page(vcpu, mmu->empty_pml4);
	mmu_free_page(vcpu, mmu->empty_top);
	WARN_ON_ONCE(mmu->nr_pages || mmu->nr_sp);
	mmu_vm_put(vcpu);
	vcpu->mmu = NULL;
	kfree(mmu);
}

u64 trapvm_mmu_mmio_gpa(struct trapvm_vcpu_mmu *mmu)
{
	return mmu->mmio_gpa;
}
