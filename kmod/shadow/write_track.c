// SPDX-License-Identifier: GPL-2.0
/*
 * Write tracking of guest page tables.
 *
 * Every guest page that some shadow page shadows is mapped read-only in
 * the shadow all vCPUs share (rmap.c, fault.c), so a guest write to it,
 * from any vCPU, faults; the fault handler answers EMULATE, the emulator
 * performs the write through trapvm_mmu_write_gva(), and that lands here
 * under the mmu lock: the guest entries the write changed are zapped in
 * every shadow page of that gfn (every vCPU's PML4 copy too), and the
 * remote TLBs are flushed before the lock is released, so no vCPU keeps
 * a translation the guest's tables no longer give.
 *
 * Flooding: a table written TRAPVM_MMU_FLOOD_WRITES times in a row without
 * a fault being filled through it is probably no longer a page table
 * (freed and reused as data): it is unshadowed, so its writes run at full
 * speed again.  A write the emulator cannot perform unshadows the page
 * too (trapvm_mmu_unemulatable()).
 */
#include <linux/slab.h>
#include <linux/mm.h>
#include <linux/highmem.h>
#include <linux/list.h>
#include <linux/hash.h>
#include <linux/trapvm_guest.h>
#include <asm/io.h>
#include <asm/cpufeature.h>

#include "../trapvm.h"
#include "mmu_internal.h"
#include "mmu_trace.h"

#define TRAPVM_MMU_FLOOD_WRITES	3

static void sp_flooded(struct trapvm_vm_mmu *m, struct trapvm_sp *sp)
{
	mmu_stat_inc(m, TRAPVM_STAT_MMU_FLOODED);
	trace_trapvm_mmu_sp(mmu_actor_id(m), TRAPVM_TRACE_SP_FLOOD, sp->gfn,
			    sp->role.level, sp->role.word);
	trapvm_sp_zap(m, sp);
}

static bool gpa_range_in_ram(struct trapvm_vm *vm, u64 gpa, u64 len)
{
	/* Pairs with smp_store_release() in trapvm_guest_mem_alloc(). */
	u64 size = smp_load_acquire(&vm->mem.size);

	return gpa < size && len <= size - gpa;
}

/*
 * Entry @idx of the PT shadow page @sp was zapped because the guest wrote
 * @gpte there: install the leaf @gpte gives right away, as a walk through
 * @sp would, so that e.g. fork write-protecting a parent's PTEs does not
 * cost a fault per page on the next read.  Only for an entry the
 * processor could use without touching it: present, A set (else the
 * next access must fault and set A), no reserved bit (else it must fault
 * with RSVD), backed by a guest page that exists already.
 */
static void sp_prefetch_leaf(struct trapvm_vm_mmu *m, struct trapvm_sp *sp,
			     unsigned int idx, u64 gpte)
{
	union trapvm_sp_role role = sp->role;
	unsigned int maxphy = m->actor && m->actor->cpu.maxphyaddr ?
			      m->actor->cpu.maxphyaddr :
			      boot_cpu_data.x86_phys_bits;
	struct trapvm_walk_ctx c;
	struct trapvm_walk w;
	struct page *page;
	u64 gfn, spte, rsvd;

	if ((gpte & (TRAPVM_PTE_P | TRAPVM_PTE_A)) !=
	    (TRAPVM_PTE_P | TRAPVM_PTE_A))
		return;
	rsvd = maxphy < 52 ? ((1ULL << 52) - 1) & ~((1ULL << maxphy) - 1) : 0;
	if (!role.nxe)
		rsvd |= TRAPVM_PTE_NX;
	if (gpte & rsvd)
		return;
	gfn = (gpte & TRAPVM_PTE_ADDR_MASK) >> PAGE_SHIFT;
	if (!gpa_range_in_ram(m->vm, gfn << PAGE_SHIFT, PAGE_SIZE))
		return;
	page = trapvm_gfn_to_page(m->vm, gfn, false);
	if (!page)
		return;

	memset(&c, 0, sizeof(c));
	c.wp = role.wp;
	c.nxe = role.nxe;
	c.smep = role.smep;
	c.smap = role.smap;
	memset(&w, 0, sizeof(w));
	w.status = TRAPVM_WALK_OK;
	w.gpa = gfn << PAGE_SHIFT;
	w.page_size = PAGE_SIZE;
	w.level = 1;
	w.nr_entries = 4;
	w.ptes[3] = gpte;
	if (role.acc_w && (gpte & TRAPVM_PTE_RW))
		w.perm |= TRAPVM_PERM_W;
	if (role.acc_u && (gpte & TRAPVM_PTE_US))
		w.perm |= TRAPVM_PERM_U;
	if (role.acc_nx || (role.nxe && (gpte & TRAPVM_PTE_NX)))
		w.perm |= TRAPVM_PERM_NX;

	spte = trapvm_shadow_pte(&c, &w, role.view, page_to_phys(page));
	if (trapvm_gfn_is_tracked(m, gfn))
		spte &= ~(TRAPVM_PTE_RW | TRAPVM_PTE_D);
	if (!spte || trapvm_rmap_add(m, sp, idx, gfn)) {
		put_page(page);
		return;
	}
	/* The page reference now belongs to the leaf. */
	WRITE_ONCE(sp->spt[idx], spte);
}

/*
 * The guest wrote @nr entries starting at @gpa (8-byte aligned, within one
 * page) that were @old and are now @new: zap what changed, and refill a
 * changed PTE from its new value.  @batch: a TRAPVM_HC_MMU_UPDATE, which
 * says it is a page table: no flood detection.
 */
void trapvm_track_write(struct trapvm_vm_mmu *m, u64 gpa,
			const void *old, const void *new, unsigned int nr,
			bool batch)
{
	u64 gfn = gpa >> PAGE_SHIFT;
	unsigned int first = (gpa & ~PAGE_MASK) / 8;
	struct hlist_head *head;
	struct hlist_node *tmp;
	struct trapvm_sp *sp;
	unsigned int i, zapped = 0;

	if (!batch)
		mmu_stat_inc(m, TRAPVM_STAT_MMU_PT_WRITES);
	/* Every vCPU's shadow pages of @gfn, PML4 copies included. */
	head = &m->sp_hash[hash_64(gfn, SP_HASH_BITS)];
	hlist_for_each_entry_safe(sp, tmp, head, hash) {
		if (sp->gfn != gfn || sp->role.direct)
			continue;
		for (i = 0; i < nr; i++) {
			u64 v = ((const u64 *)new)[i];

			if (((const u64 *)old)[i] == v)
				continue;
			trapvm_sp_zap_entry(m, sp, first + i);
			if (sp->role.level == 1)
				sp_prefetch_leaf(m, sp, first + i, v);
			zapped++;
		}
		if (batch || ++sp->write_count < TRAPVM_MMU_FLOOD_WRITES)
			continue;
		/*
		 * A cached root of a dead address space is flooded like
		 * any table once its page is reused (it becomes obsolete,
		 * its vCPU drops the root); a vCPU's current root is the
		 * live PML4 and stays.
		 */
		if (sp->root_count && trapvm_roots_is_cur(m, sp))
			continue;
		sp_flooded(m, sp);
	}
	trace_trapvm_mmu_pt_write(mmu_actor_id(m), gpa, *(const u64 *)new,
				  zapped);
}

/* Stop shadowing guest page @gfn: zap every shadow page of it. */
void trapvm_unshadow_gfn(struct trapvm_vm_mmu *m, u64 gfn)
{
	struct hlist_head *head;
	struct hlist_node *tmp;
	struct trapvm_sp *sp;

	head = &m->sp_hash[hash_64(gfn, SP_HASH_BITS)];
	hlist_for_each_entry_safe(sp, tmp, head, hash) {
		if (sp->gfn != gfn || sp->role.direct)
			continue;
		mmu_stat_inc(m, TRAPVM_STAT_MMU_UNSHADOWED);
		trace_trapvm_mmu_sp(mmu_actor_id(m), TRAPVM_TRACE_SP_UNSHADOW,
				    sp->gfn, sp->role.level, sp->role.word);
		/* A root's page becomes obsolete: its vCPU drops the root. */
		trapvm_sp_zap(m, sp);
	}
}

/* One piece of trapvm_mmu_write_phys(): at most 8 entries. */
static int write_phys_piece(struct trapvm_vcpu *vcpu, u64 gpa,
			    const void *buf, unsigned int len, bool batch)
{
	struct trapvm_vm_mmu *m = vcpu_vm_mmu(vcpu);
	u64 first = gpa & ~7ULL;
	unsigned int nr = (gpa + len - first + 7) / 8;
	u64 old[9], new[9];
	int ret;

	ret = trapvm_read_guest_phys(vcpu->vm, first, old, nr * 8);
	if (!ret)
		ret = trapvm_write_guest_phys(vcpu->vm, gpa, buf, len);
	if (!ret)
		ret = trapvm_read_guest_phys(vcpu->vm, first, new, nr * 8);
	if (ret)
		return ret;
	trapvm_track_write(m, first, old, new, nr, batch);
	return 0;
}

/*
 * Write @len bytes (within one page) at guest-physical @gpa in RAM, and
 * keep the shadow in sync if it is a guest page table.  0 or -errno.
 * Under the mmu lock: a tracked table changes only here, so a fault's
 * walk and this write never interleave.
 */
static int mmu_write_phys(struct trapvm_vcpu *vcpu, u64 gpa,
			  const void *buf, unsigned int len, bool batch)
{
	if (!trapvm_gfn_is_tracked(vcpu_vm_mmu(vcpu), gpa >> PAGE_SHIFT))
		return trapvm_write_guest_phys(vcpu->vm, gpa, buf, len);
	while (len) {
		unsigned int n = min(len, 64U);
		int ret = write_phys_piece(vcpu, gpa, buf, n, batch);

		if (ret)
			return ret;
		gpa += n;
		buf += n;
		len -= n;
	}
	return 0;
}

int trapvm_mmu_write_phys(struct trapvm_vcpu *vcpu, u64 gpa, const void *buf,
			  unsigned int len)
{
	struct trapvm_vm_mmu *m = vcpu_vm_mmu(vcpu);
	int ret;

	trapvm_mmu_lock(m, vcpu);
	ret = mmu_write_phys(vcpu, gpa, buf, len, false);
	trapvm_mmu_unlock(m);
	return ret;
}

/*
 * A locked compare-exchange on the host page: a real one of @len bytes,
 * so that it is atomic against the other vCPUs' native accesses and the
 * walker's A/D updates too.  0 if @new was written, 1 if memory held
 * another value, -errno.
 */
static int cmpxchg_host(struct trapvm_vcpu *vcpu, u64 gpa, u64 old, u64 new,
			unsigned int len)
{
	struct page *page = trapvm_gfn_to_page(vcpu->vm, gpa >> PAGE_SHIFT,
					       true);
	void *va, *p;
	bool ok;

	if (!page)
		return -ENOMEM;
	va = kmap_local_page(page);
	p = va + (gpa & ~PAGE_MASK);
	switch (len) {
	case 1:
		ok = cmpxchg((u8 *)p, (u8)old, (u8)new) == (u8)old;
		break;
	case 2:
		ok = cmpxchg((u16 *)p, (u16)old, (u16)new) == (u16)old;
		break;
	case 4:
		ok = cmpxchg((u32 *)p, (u32)old, (u32)new) == (u32)old;
		break;
	default:
		ok = cmpxchg64((u64 *)p, old, new) == old;
		break;
	}
	kunmap_local(va);
	put_page(page);
	return ok ? 0 : 1;
}

/*
 * The write-back of a locked read-modify-write the emulator performs:
 * under the mmu lock, if the @len (1, 2, 4, 8) bytes at guest-physical
 * @gpa0 (@n0 of them, the rest at @gpa1: the operand crosses a page)
 * hold @old, write @new, and keep the shadow in sync as for any guest
 * write.  Atomic against the emulated writes of other vCPUs and against
 * the walker's A/D updates (the lock, and a real cmpxchg on the host
 * page), and against other vCPUs' native accesses (the cmpxchg).  An
 * operand split across a cache line or a page would be a split lock: it
 * is compared and written under the lock only, which native accesses and
 * an A/D update by an emulator's walk (not under the lock) do not see.
 * Returns 0 when written, 1 when memory held another value (nothing
 * written), or -errno.
 */
int trapvm_mmu_cmpxchg_phys(struct trapvm_vcpu *vcpu, u64 gpa0, u64 gpa1,
			    unsigned int n0, u64 old, u64 new,
			    unsigned int len)
{
	struct trapvm_vm_mmu *m = vcpu_vm_mmu(vcpu);
	u64 first = gpa0 & ~7ULL, before[2], after[2], cur = 0;
	unsigned int nr = (gpa0 + len - first + 7) / 8;
	int ret;

	trapvm_mmu_lock(m, vcpu);
	if (n0 < len || (gpa0 & 63) + len > 64) {
		/* split: compare and write under the lock */
		ret = trapvm_read_guest_phys(vcpu->vm, gpa0, &cur, n0);
		if (!ret && n0 < len)
			ret = trapvm_read_guest_phys(vcpu->vm, gpa1,
						     (u8 *)&cur + n0,
						     len - n0);
		if (!ret && cur != old)
			ret = 1;
		if (!ret)
			ret = mmu_write_phys(vcpu, gpa0, &new, n0, false);
		if (!ret && n0 < len)
			ret = mmu_write_phys(vcpu, gpa1, (u8 *)&new + n0,
					     len - n0, false);
		goto out;
	}
	ret = cmpxchg_host(vcpu, gpa0, old, new, len);
	if (ret || !trapvm_gfn_is_tracked(m, gpa0 >> PAGE_SHIFT))
		goto out;
	/* A guest page table: what changed is @old -> @new at @gpa0. */
	ret = trapvm_read_guest_phys(vcpu->vm, first, after, nr * 8);
	if (ret)
		goto out;
	memcpy(before, after, sizeof(before));
	memcpy((u8 *)before + (gpa0 - first), &old, len);
	trapvm_track_write(m, first, before, after, nr, false);
out:
	trapvm_mmu_unlock(m);
	return ret;
}

bool trapvm_mmu_unemulatable(struct trapvm_vcpu *vcpu, u64 cr2)
{
	struct trapvm_vcpu_mmu *mmu = vcpu->mmu;
	u64 gfn = mmu->wp_fault_gfn;

	if (gfn == ~0ULL || (mmu->wp_fault_gva >> PAGE_SHIFT) !=
			    (cr2 >> PAGE_SHIFT))
		return false;
	mmu->wp_fault_gfn = ~0ULL;
	trapvm_mmu_lock(vcpu_vm_mmu(vcpu), vcpu);
	trapvm_unshadow_gfn(vcpu_vm_mmu(vcpu), gfn);
	trapvm_mmu_unlock(vcpu_vm_mmu(vcpu));
	/* A root on it was dropped: the next entry builds another. */
	return true;
}

long trapvm_mmu_hc_update(struct trapvm_vcpu *vcpu, u64 list_gpa, u64 count)
{
	struct trapvm_vm_mmu *m = vcpu_vm_mmu(vcpu);
	struct trapvm_mmu_update u;
	long ret;
	u64 i;

	if (count > TRAPVM_MMU_UPDATE_MAX)
		return -E2BIG;
	if (list_gpa & 7)
		return -EINVAL;
	if (!gpa_range_in_ram(vcpu->vm, list_gpa, count * sizeof(u)))
		return -EFAULT;
	/* Check everything first: either all updates are done or none. */
	for (i = 0; i < count; i++) {
		if (trapvm_read_guest_phys(vcpu->vm, list_gpa + i * sizeof(u),
					   &u, sizeof(u)))
			return -EFAULT;
		if (u.pte_gpa & 7)
			return -EINVAL;
		if (!gpa_range_in_ram(vcpu->vm, u.pte_gpa, 8))
			return -EFAULT;
	}
	trapvm_mmu_lock(m, vcpu);
	for (i = 0; i < count; i++) {
		ret = -EFAULT;
		if (trapvm_read_guest_phys(vcpu->vm, list_gpa + i * sizeof(u),
					   &u, sizeof(u)))
			goto out;
		/* The guest may rewrite the list meanwhile (other vCPU). */
		ret = -EINVAL;
		if ((u.pte_gpa & 7) ||
		    !gpa_range_in_ram(vcpu->vm, u.pte_gpa, 8))
			goto out;
		ret = -ENOMEM;
		if (mmu_write_phys(vcpu, u.pte_gpa, &u.value, 8, true))
			goto out;
	}
	vcpu->stats[TRAPVM_STAT_MMU_HC_UPDATES] += count;
	ret = count;
out:
	trapvm_mmu_unlock(m);
	return ret;
}
