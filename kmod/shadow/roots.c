// SPDX-License-Identifier: GPL-2.0
/*
 * The root cache: each vCPU keeps up to TRAPVM_MMU_NR_ROOTS shadow roots,
 * one per (guest CR3, role) it ran on recently, and picks the one of the
 * current CR3 and virtual mode before every entry.  A guest CR3 load is
 * a lookup here, not a rebuild: the shadow pages under a cached root stay
 * valid because every guest page table is write-tracked.
 *
 * A root is the PML4 shadow page of the guest's CR3 (the root count keeps
 * it from being reclaimed), or with 5-level host paging a PML5 page whose
 * slot 0 points to the lower-half PML4 shadow page and slot 511 to the
 * upper-half one (role.upper), so that an address that is not canonical
 * in 48 bits faults through an empty PML5 slot.
 *
 * The PML4 shadow pages of a root belong to its vCPU (role.owner): the
 * world switch writes this CPU's switcher PDPT into the hole slot of the
 * current root, so two vCPUs on two CPUs never share one.  Everything
 * below the PML4 is shared by all vCPUs of the VM.  A root's PML4 page
 * that some vCPU zapped (write tracking, unshadowing) is only emptied
 * and made obsolete: the owner drops the root before its next entry.
 * roots[] and cur change only under the mmu lock, and only by their own
 * vCPU.
 *
 * Invalidation.  With write tracking the shadow never holds a translation
 * the guest's tables no longer give, whichever vCPU wrote the tables
 * (every guest page table is read-only in the shadow all vCPUs share),
 * and remote TLBs are flushed whenever the shadow loses an entry
 * (tlb.c).  So CR3 loads (global pages or not), CR4.PGE toggles and
 * INVLPG need not drop anything, with one vCPU or several: a vCPU sees
 * another's page-table write at once, as if its TLB had been flushed,
 * which is one of the behaviours the architecture allows.  INVLPG still
 * drops the leaf of its address (cheap, and it refreshes the A/D dance).
 */
#define pr_fmt(fmt) "trapvm: " fmt

#include <linux/slab.h>
#include <linux/mm.h>
#include <asm/io.h>
#include <asm/processor-flags.h>
#include <asm/msr-index.h>

#include "../trapvm.h"
#include "mmu_internal.h"
#include "mmu_trace.h"

/* The root the current virtual mode needs: guest CR3 gfn and role. */
static void mmu_root_key(struct trapvm_vcpu *vcpu, u64 *gfn,
			 union trapvm_sp_role *role)
{
	struct trapvm_walk_ctx c;

	trapvm_mmu_walk_ctx(vcpu, &c);
	role->word = 0;
	role->level = 4;
	role->view = trapvm_view_of(&c);
	role->wp = c.wp;
	role->nxe = c.nxe;
	role->smep = c.smep;
	role->smap = c.smap;
	role->acc_w = 1;
	role->acc_u = 1;
	role->owner = vcpu->id + 1;
	if (!(vcpu->cpu.cr0 & X86_CR0_PG)) {
		/* Paging off: guest-physical = linear, no guest tables. */
		role->direct = 1;
		*gfn = 0;
	} else {
		*gfn = (vcpu->cpu.cr3 & TRAPVM_PTE_ADDR_MASK) >> PAGE_SHIFT;
	}
}

static void root_put(struct trapvm_vcpu *vcpu, struct trapvm_mmu_root *root)
{
	struct trapvm_vm_mmu *m = vcpu_vm_mmu(vcpu);
	int i;

	for (i = 0; i < 2; i++) {
		if (root->sp[i])
			trapvm_sp_put_root(m, root->sp[i]);
		root->sp[i] = NULL;
	}
	if (root->pml5)
		memset(root->pml5, 0, PAGE_SIZE);
	root->valid = false;
}

/* Valid and none of its pages zapped by another vCPU meanwhile. */
static bool root_usable(struct trapvm_mmu_root *root)
{
	return root->valid && !root->sp[0]->obsolete &&
	       !(root->sp[1] && root->sp[1]->obsolete);
}

static int root_setup(struct trapvm_vcpu *vcpu, struct trapvm_mmu_root *root,
		      u64 gfn, union trapvm_sp_role role)
{
	struct trapvm_vcpu_mmu *mmu = vcpu->mmu;
	struct trapvm_vm_mmu *m = vcpu_vm_mmu(vcpu);
	int i, halves = mmu->la57 ? 2 : 1;
	bool created;

	trapvm_mmu_make_room(vcpu, 3);
	if (mmu->la57 && !root->pml5) {
		struct page *page = alloc_page(GFP_KERNEL_ACCOUNT |
					       __GFP_ZERO);

		if (!page)
			return -ENOMEM;
		root->pml5 = page_address(page);
		trapvm_mmu_count_page(m, 1);
	}
	root->gfn = gfn;
	root->role = role;
	for (i = 0; i < halves; i++) {
		union trapvm_sp_role r = role;

		r.upper = i;
		root->sp[i] = trapvm_sp_get(m, gfn, r, &created);
		if (!root->sp[i]) {
			root_put(vcpu, root);
			return -ENOMEM;
		}
		root->sp[i]->root_count++;
	}
	if (mmu->la57) {
		root->pml5[0] = __pa(root->sp[0]->spt) | SHADOW_TABLE_FLAGS;
		root->pml5[511] = __pa(root->sp[1]->spt) | SHADOW_TABLE_FLAGS;
	}
	root->valid = true;
	return 0;
}

/*
 * Find or build the root for the current mode and make it current.
 * NULL if out of memory.  Under the mmu lock.
 */
static struct trapvm_mmu_root *mmu_select_root(struct trapvm_vcpu *vcpu)
{
	struct trapvm_vcpu_mmu *mmu = vcpu->mmu;
	struct trapvm_mmu_root *root, *victim = NULL;
	union trapvm_sp_role role;
	u64 gfn;
	int i;

	mmu_root_key(vcpu, &gfn, &role);
	if (mmu->cur >= 0) {
		root = &mmu->roots[mmu->cur];
		if (root_usable(root) && root->gfn == gfn &&
		    root->role.word == role.word)
			return root;
	}
	for (i = 0; i < TRAPVM_MMU_NR_ROOTS; i++) {
		root = &mmu->roots[i];
		if (root->valid && !root_usable(root)) {
			root_put(vcpu, root);
			if (i == mmu->cur)
				mmu->cur = -1;
		}
		if (!root->valid) {
			if (!victim || victim->valid)
				victim = root;
			continue;
		}
		if (root->gfn == gfn && root->role.word == role.word)
			goto found;
		if (!victim || (victim->valid &&
				root->last_used < victim->last_used))
			victim = root;
	}
	trapvm_vcpu_stat_inc(vcpu, TRAPVM_STAT_MMU_ROOT_MISS);
	trace_trapvm_mmu_root(vcpu->id, gfn, role.view, false);
	root = victim;
	mmu->cur = -1;
	if (root->valid)
		root_put(vcpu, root);
	if (root_setup(vcpu, root, gfn, role))
		return NULL;
	goto set;
found:
	trapvm_vcpu_stat_inc(vcpu, TRAPVM_STAT_MMU_ROOT_HIT);
	trace_trapvm_mmu_root(vcpu->id, gfn, role.view, true);
set:
	mmu->cur = root - mmu->roots;
	root->last_used = ++mmu->root_clock;
	return root;
}

struct trapvm_mmu_root *trapvm_mmu_cur_root(struct trapvm_vcpu *vcpu)
{
	return mmu_select_root(vcpu);
}

phys_addr_t trapvm_mmu_root(struct trapvm_vcpu *vcpu)
{
	struct trapvm_vcpu_mmu *mmu = vcpu->mmu;
	struct trapvm_vm_mmu *m = vcpu_vm_mmu(vcpu);
	struct trapvm_mmu_root *root;
	phys_addr_t pa;
	int gen;

	trapvm_mmu_lock(m, vcpu);
	gen = atomic_read(&m->zap_gen);
	if (gen != m->zap_done) {
		/* For every vCPU: the flush at unlock reaches the others. */
		trapvm_sp_zap_all(m);
		m->zap_done = gen;
	}
	root = mmu_select_root(vcpu);
	if (!root)
		/* Out of memory: every access faults, the fault says KILL. */
		pa = __pa(mmu->empty_top);
	else if (mmu->la57)
		pa = __pa(root->pml5);
	else
		pa = __pa(root->sp[0]->spt);
	/* The gauge is the VM's: the shadow is shared. */
	vcpu->stats[TRAPVM_STAT_MMU_SHADOW_LIVE] = m->nr_pages;
	trapvm_mmu_unlock(m);
	return pa;
}

/*
 * No lock: the current root's pages are held by its root count, which
 * only this vCPU drops, and no other code writes the hole slots.
 */
u64 *trapvm_mmu_hole_slot(struct trapvm_vcpu *vcpu)
{
	struct trapvm_vcpu_mmu *mmu = vcpu->mmu;
	struct trapvm_mmu_root *root;

	if (mmu->cur < 0)
		return &mmu->empty_pml4[TRAPVM_HOLE_PML4_FIRST];
	root = &mmu->roots[mmu->cur];
	return &root->sp[mmu->la57 ? 1 : 0]->spt[TRAPVM_HOLE_PML4_FIRST];
}

void trapvm_roots_put_all(struct trapvm_vcpu *vcpu, bool keep_cur)
{
	struct trapvm_vcpu_mmu *mmu = vcpu->mmu;
	int i;

	for (i = 0; i < TRAPVM_MMU_NR_ROOTS; i++) {
		if (!mmu->roots[i].valid || (keep_cur && i == mmu->cur))
			continue;
		root_put(vcpu, &mmu->roots[i]);
		if (i == mmu->cur)
			mmu->cur = -1;
	}
}

/* Is @sp a page of the current root of the vCPU that owns it? */
bool trapvm_roots_is_cur(struct trapvm_vm_mmu *m, struct trapvm_sp *sp)
{
	struct trapvm_vcpu *owner;
	struct trapvm_vcpu_mmu *mmu;

	if (sp->role.level != 4 || !sp->role.owner)
		return false;
	owner = m->vcpus[sp->role.owner - 1];
	if (!owner || !owner->mmu)
		return false;
	mmu = owner->mmu;
	return mmu->cur >= 0 && (mmu->roots[mmu->cur].sp[0] == sp ||
				 mmu->roots[mmu->cur].sp[1] == sp);
}

/* The shadow leaf of @gva under @root, if the tables to it exist. */
static void root_zap_gva(struct trapvm_vcpu *vcpu,
			 struct trapvm_mmu_root *root, u64 gva)
{
	struct trapvm_sp *sp = root->sp[vcpu->mmu->la57 ? gva >> 63 : 0];
	int level;

	for (level = 4; level > 1; level--) {
		u64 spte = sp->spt[pt_index(gva, level)];

		if (level == 4 && hole_slot(pt_index(gva, 4)))
			return;
		if (!(spte & TRAPVM_PTE_P))
			return;
		sp = trapvm_sp_of_table(__va(SHADOW_ADDR(spte)));
	}
	trapvm_sp_zap_entry(vcpu_vm_mmu(vcpu), sp, pt_index(gva, 1));
}

/* Under the mmu lock. */
void trapvm_roots_zap_gva(struct trapvm_vcpu *vcpu, u64 gva, bool cur_only)
{
	struct trapvm_vcpu_mmu *mmu = vcpu->mmu;
	int i;

	if (!trapvm_gva_canonical(gva))
		return;
	if (cur_only) {
		if (mmu->cur >= 0 && root_usable(&mmu->roots[mmu->cur]))
			root_zap_gva(vcpu, &mmu->roots[mmu->cur], gva);
		return;
	}
	for (i = 0; i < TRAPVM_MMU_NR_ROOTS; i++)
		if (root_usable(&mmu->roots[i]))
			root_zap_gva(vcpu, &mmu->roots[i], gva);
}

void trapvm_mmu_load_cr3(struct trapvm_vcpu *vcpu)
{
	trapvm_vcpu_stat_inc(vcpu, TRAPVM_STAT_MMU_CR3_LOADS);
	/* The next trapvm_mmu_root() switches roots. */
}

void trapvm_mmu_invlpg(struct trapvm_vcpu *vcpu, u64 gva)
{
	struct trapvm_vm_mmu *m = vcpu_vm_mmu(vcpu);

	trapvm_vcpu_stat_inc(vcpu, TRAPVM_STAT_MMU_INVLPG);
	trapvm_mmu_lock(m, vcpu);
	trapvm_roots_zap_gva(vcpu, gva, false);
	trapvm_mmu_unlock(m);
}

void trapvm_mmu_reset(struct trapvm_vcpu *vcpu)
{
	/* A new paging mode is a new role: other roots, nothing stale. */
}

void trapvm_mmu_request_zap(struct trapvm_vcpu *vcpu)
{
	struct trapvm_vm *vm = vcpu->vm;
	int i;

	atomic_inc(&vcpu_vm_mmu(vcpu)->zap_gen);
	/*
	 * Every vCPU: the first to enter drops the shadow for all and its
	 * remote flush stops those in the guest.  vm->vcpus[] holds only
	 * fully created vCPUs, which stay until the VM is freed.
	 */
	for (i = 0; i < TRAPVM_MAX_VCPUS; i++) {
		struct trapvm_vcpu *v = READ_ONCE(vm->vcpus[i]);

		if (v)
			trapvm_vcpu_kick(v);
	}
}
