// SPDX-License-Identifier: GPL-2.0
/*
 * Remote TLB flush for the shared shadow.
 *
 * Every vCPU walks the same shadow pages.  When the shadow loses an entry
 * or a right (a leaf zapped or made read-only, a table unlinked or about
 * to be freed), a vCPU running in the guest on another CPU may still hold
 * the old translation in its TLB, or be walking the table.  The world
 * switch loads CR3 without PCID no-flush on every entry, so a vCPU that
 * leaves the guest and enters again has a clean TLB: a flush is an IPI to
 * the CPUs of the vCPUs in guest mode, waiting until each has run the
 * (empty) handler.  A host interrupt that arrives in guest mode exits the
 * guest through the switcher and is handled after the switch back, so by
 * the time the handler runs the vCPU is out of the guest.
 *
 * Ordering with a vCPU that is just entering: it sets mode = IN_GUEST
 * with a full barrier before it loads the shadow CR3, and the flusher has
 * changed the shadow and issued a full barrier before it reads the
 * modes.  Either the flusher sees IN_GUEST (and waits for the exit), or
 * the vCPU's page walks see the changed shadow.
 */
#include <linux/slab.h>
#include <linux/smp.h>
#include <linux/cpumask.h>
#include <linux/preempt.h>

#include "../trapvm.h"
#include "mmu_internal.h"

int trapvm_mmu_flush_init(struct trapvm_vm_mmu *m)
{
	m->flush_mask = kzalloc(cpumask_size(), GFP_KERNEL_ACCOUNT);
	return m->flush_mask ? 0 : -ENOMEM;
}

void trapvm_mmu_flush_free(struct trapvm_vm_mmu *m)
{
	kfree(m->flush_mask);
	m->flush_mask = NULL;
}

static void mmu_flush_ipi(void *unused)
{
	/* Getting here made the vCPU leave the guest: nothing else to do. */
}

/* Under m->lock. */
void trapvm_mmu_flush_remote(struct trapvm_vm_mmu *m)
{
	struct cpumask *mask = m->flush_mask;
	bool any = false;
	int i;

	lockdep_assert_held(&m->lock);
	/* The shadow changes before the modes; see the top of the file. */
	smp_mb();
	cpumask_clear(mask);
	for (i = 0; i < TRAPVM_MAX_VCPUS; i++) {
		struct trapvm_vcpu *vcpu = m->vcpus[i];

		if (!vcpu || vcpu == m->actor || !vcpu->mmu)
			continue;
		/* Then cpu, written before mode by guest_enter. */
		if (smp_load_acquire(&vcpu->mmu->mode) !=
		    TRAPVM_MMU_IN_GUEST)
			continue;
		cpumask_set_cpu(READ_ONCE(vcpu->mmu->cpu), mask);
		any = true;
	}
	if (!any)
		return;
	if (m->actor)
		trapvm_vcpu_stat_inc(m->actor, TRAPVM_STAT_MMU_REMOTE_FLUSH);
	/* Skips this CPU, where no vCPU can be in the guest now. */
	preempt_disable();
	smp_call_function_many(mask, mmu_flush_ipi, NULL, true);
	preempt_enable();
}

void trapvm_mmu_guest_enter(struct trapvm_vcpu *vcpu)
{
	struct trapvm_vcpu_mmu *mmu = vcpu->mmu;

	WRITE_ONCE(mmu->cpu, smp_processor_id());
	/* Before the CR3 load: pairs with smp_mb() in flush_remote. */
	smp_store_mb(mmu->mode, TRAPVM_MMU_IN_GUEST);
}

void trapvm_mmu_guest_exit(struct trapvm_vcpu *vcpu)
{
	/* After the switch back: the guest's accesses are all done. */
	smp_store_release(&vcpu->mmu->mode, TRAPVM_MMU_OUTSIDE_GUEST);
}
