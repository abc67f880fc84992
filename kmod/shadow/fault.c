// SPDX-License-Identifier: GPL-2.0
/*
 * Guest page faults and guest-virtual memory access.
 *
 * A hardware #PF while the guest runs is answered from a walk of the
 * guest's tables in the current virtual mode (walk.c): the guest may do
 * the access -> the shadow is filled on the way down from the current
 * root, finding or creating a shadow page per guest table (page_cache.c),
 * and the leaf installed (a hidden fault); it may not -> the guest's #PF
 * is injected.  A write the guest may do to a page that is one of its page
 * tables is emulated instead (EMULATE), so that write_track.c sees it.
 */
#define pr_fmt(fmt) "trapvm: " fmt

#include <linux/slab.h>
#include <linux/mm.h>
#include <linux/highmem.h>
#include <asm/io.h>
#include <asm/processor-flags.h>
#include <asm/msr-index.h>
#include <asm/cpufeature.h>

#include "../trapvm.h"
#include "mmu_internal.h"
#include "mmu_trace.h"

/* ------------------------------------------------------------------ */
/* Guest memory for the walker                                         */

static bool gpa_is_ram(struct trapvm_vm *vm, u64 gpa)
{
	/* Pairs with smp_store_release() in trapvm_guest_mem_alloc(). */
	return gpa < smp_load_acquire(&vm->mem.size);
}

static int mmu_read_pte(void *opaque, u64 gpa, u64 *pte)
{
	struct trapvm_vcpu *vcpu = opaque;

	/* Unbacked memory reads as all ones, as on real hardware. */
	if (!gpa_is_ram(vcpu->vm, gpa)) {
		*pte = ~0ULL;
		return 0;
	}
	return trapvm_read_guest_phys(vcpu->vm, gpa, pte, sizeof(*pte));
}

/*
 * The walker setting A/D flags.  No shadow entry needs zapping for it:
 * shadow entries exist only for guest entries whose A flag is set, and a
 * leaf is writable only once D is set, so setting them only lets the
 * shadow allow more later.
 */
static int mmu_cmpxchg_pte(void *opaque, u64 gpa, u64 old, u64 new)
{
	struct trapvm_vcpu *vcpu = opaque;
	struct page *page;
	u64 *p, cur;

	if (!gpa_is_ram(vcpu->vm, gpa))
		return -EFAULT;
	page = trapvm_gfn_to_page(vcpu->vm, gpa >> PAGE_SHIFT, true);
	if (!page)
		return -ENOMEM;
	p = kmap_local_page(page);
	/* The guest may change the entry on another vCPU: a locked update. */
	cur = cmpxchg64(&p[(gpa & ~PAGE_MASK) / 8], old, new);
	kunmap_local(p);
	put_page(page);
	return cur == old ? 0 : 1;
}

static const struct trapvm_walk_ops mmu_walk_ops = {
	.read_pte = mmu_read_pte,
	.cmpxchg_pte = mmu_cmpxchg_pte,
};

/* The guest's paging mode from the virtual CPU. */
void trapvm_mmu_walk_ctx(struct trapvm_vcpu *vcpu, struct trapvm_walk_ctx *c)
{
	const struct trapvm_cpu *cpu = &vcpu->cpu;

	memset(c, 0, sizeof(*c));
	c->cr3 = cpu->cr3;
	c->cpl = cpu->cpl;
	c->wp = cpu->cr0 & X86_CR0_WP;
	c->nxe = cpu->efer & EFER_NX;
	c->smep = cpu->cr4 & X86_CR4_SMEP;
	c->smap = cpu->cr4 & X86_CR4_SMAP;
	c->ac = cpu->rflags & X86_EFLAGS_AC;
	/*
	 * Guest protection keys are not enforced yet: the shadow cannot
	 * follow a PKRU the guest changes without trapping.
	 */
	c->pke = false;
	c->gbpages = boot_cpu_has(X86_FEATURE_GBPAGES);
	c->host_pkeys = boot_cpu_has(X86_FEATURE_OSPKE);
	/* The guest sees the host's MAXPHYADDR unless told otherwise. */
	c->maxphyaddr = cpu->maxphyaddr ? cpu->maxphyaddr :
					  boot_cpu_data.x86_phys_bits;
	c->hole = true;
}

/*
 * Translate @gva for @access in the current virtual mode.  With paging
 * off (not a state a 64-bit guest can be in, but the registers can be
 * set so) addresses are physical with every permission.
 */
static enum trapvm_walk_status mmu_translate(struct trapvm_vcpu *vcpu,
					     const struct trapvm_walk_ctx *c,
					     u64 gva, u32 access,
					     struct trapvm_walk *w)
{
	if (!(vcpu->cpu.cr0 & X86_CR0_PG)) {
		memset(w, 0, sizeof(*w));
		w->status = TRAPVM_WALK_OK;
		w->gva = gva;
		w->gpa = gva;
		w->page_size = PAGE_SIZE;
		w->level = 1;
		w->perm = TRAPVM_PERM_W | TRAPVM_PERM_U;
		w->nr_entries = 1;
		w->ptes[0] = TRAPVM_PTE_P | TRAPVM_PTE_RW | TRAPVM_PTE_US |
			     TRAPVM_PTE_A | TRAPVM_PTE_D;
		return w->status;
	}
	return trapvm_walk(c, &mmu_walk_ops, vcpu, gva, access, w);
}

static void mmu_set_pf(struct trapvm_fault *f, u64 gva, u32 error_code)
{
	memset(f, 0, sizeof(*f));
	f->vector = TRAPVM_PF_VECTOR;
	f->has_error_code = true;
	f->error_code = error_code;
	f->cr2 = gva;
}

static void mmu_set_gp(struct trapvm_fault *f)
{
	memset(f, 0, sizeof(*f));
	f->vector = TRAPVM_GP_VECTOR;
	f->has_error_code = true;
	f->error_code = 0;
}

/* ------------------------------------------------------------------ */
/* Filling the shadow                                                  */

/*
 * The access a hardware #PF error code describes (host NXE is on).  PK
 * (a read or write of an execute-only leaf) adds nothing: the walk of the
 * guest's tables decides, and the guest's error code never has PK.
 */
static u32 hw_error_access(u32 hw_error)
{
	if (hw_error & TRAPVM_PFERR_I)
		return TRAPVM_ACC_FETCH;
	if (hw_error & TRAPVM_PFERR_W)
		return TRAPVM_ACC_WRITE;
	return TRAPVM_ACC_READ;
}

/* Does the shadow leaf @spte let a CPL3 access of type @access through? */
static bool spte_allows(u64 spte, u32 access)
{
	if (!(spte & TRAPVM_PTE_P))
		return false;
	if ((access & TRAPVM_ACC_WRITE) && !(spte & TRAPVM_PTE_RW))
		return false;
	if ((access & TRAPVM_ACC_FETCH) && (spte & TRAPVM_PTE_NX))
		return false;
	/* TRAPVM_SHADOW_PKRU denies data access to execute-only leaves. */
	if (!(access & TRAPVM_ACC_FETCH) &&
	    (spte & TRAPVM_PTE_PKEY_MASK) ==
	    ((u64)TRAPVM_SHADOW_XO_PKEY << TRAPVM_PTE_PKEY_SHIFT))
		return false;
	return true;
}

/*
 * The role of the shadow page below the entry for @w at @level (4..2) of
 * a shadow page with role @parent, and the gfn it stands for.
 */
static union trapvm_sp_role child_role(const struct trapvm_walk_ctx *c,
				       const struct trapvm_walk *w,
				       union trapvm_sp_role parent, int level,
				       u64 *gfn)
{
	union trapvm_sp_role role = parent;

	role.level = level - 1;
	role.upper = 0;
	role.owner = 0;		/* below the PML4: shared by all vCPUs */
	if (!parent.direct) {
		u64 gpte = w->ptes[4 - level];

		role.acc_w &= !!(gpte & TRAPVM_PTE_RW);
		role.acc_u &= !!(gpte & TRAPVM_PTE_US);
		role.acc_nx |= c->nxe && (gpte & TRAPVM_PTE_NX);
		if (level > w->level) {
			*gfn = SHADOW_ADDR(gpte) >> PAGE_SHIFT;
			return role;
		}
		/*
		 * A guest 2M/1G page: shadowed by direct pages below, shared
		 * by every guest large page mapping the same frames with
		 * the same rights.  Whether its D is set is part of the role,
		 * so that a write through a clean one still faults and sets
		 * D in that guest entry.
		 */
		role.direct = 1;
		role.dirty = !!(gpte & TRAPVM_PTE_D);
	}
	*gfn = (w->gpa >> PAGE_SHIFT) & ~((1ULL << (9 * (level - 1))) - 1);
	return role;
}

/*
 * A guest entry the walk used changed since it was read (only possible
 * for a table that was not write-protected yet: another vCPU wrote it
 * natively).  Setting A or D only lets the shadow allow more later.
 */
static bool gpte_changed(u64 old, u64 cur)
{
	u64 ad = TRAPVM_PTE_A | TRAPVM_PTE_D;

	return (old | ad) != (cur | ad) || (old & ~cur);
}

/*
 * Guest tables became write-tracked during this fault: their entries were
 * read by the walk before any other vCPU lost its writable mapping of
 * them.  Now that every shadow leaf of them is read-only and the remote
 * TLBs are flushed, read them again; if one changed, unlink what was
 * built from it (the next access faults and walks again).  @sps[level]
 * is the shadow page holding the entry for the guest entry at @level.
 * Returns true if the walk still holds.
 */
static bool mmu_recheck_walk(struct trapvm_vcpu *vcpu,
			     const struct trapvm_walk *w,
			     struct trapvm_sp *sps[5])
{
	struct trapvm_vm_mmu *m = vcpu_vm_mmu(vcpu);
	bool ok = true;
	int i;

	if (m->need_flush) {
		trapvm_mmu_flush_remote(m);
		m->need_flush = false;
	}
	for (i = 0; i < w->nr_entries && i < 4; i++) {
		int level = 4 - i;
		u64 cur;

		if (trapvm_read_guest_phys(vcpu->vm, w->pte_gpa[i], &cur,
					   sizeof(cur)))
			return false;
		if (!gpte_changed(w->ptes[i], cur))
			continue;
		ok = false;
		if (level > 1 && sps[level])
			trapvm_sp_zap_entry(m, sps[level],
					    pt_index(w->gva, level));
	}
	return ok;
}

/* A hidden fault: install the shadow leaf for a permitted access. */
static enum trapvm_mmu_fault_result
mmu_fix_hidden_fault(struct trapvm_vcpu *vcpu, const struct trapvm_walk_ctx *c,
		     const struct trapvm_walk *w, u32 access)
{
	struct trapvm_vcpu_mmu *mmu = vcpu->mmu;
	struct trapvm_vm_mmu *m = vcpu_vm_mmu(vcpu);
	enum trapvm_view view = trapvm_view_of(c);
	u64 gfn = w->gpa >> PAGE_SHIFT;
	struct trapvm_sp *sps[5] = { NULL };
	struct trapvm_mmu_root *root;
	struct trapvm_sp *sp;
	struct page *page;
	unsigned int idx;
	bool created, linked = false, recheck = false;
	u64 spte;
	int level;

	/* Room for a table per level, before any pointer is taken. */
	trapvm_mmu_make_room(vcpu, 5);
	root = trapvm_mmu_cur_root(vcpu);
	if (!root)
		return TRAPVM_MMU_FAULT_KILL;
	sp = root->sp[mmu->la57 ? w->gva >> 63 : 0];

	for (level = 4; level > 1; level--) {
		u64 *sptep = &sp->spt[pt_index(w->gva, level)];
		union trapvm_sp_role role;
		struct trapvm_sp *child;
		u64 child_gfn;

		sps[level] = sp;
		trapvm_sp_touch(m, sp);
		role = child_role(c, w, sp->role, level, &child_gfn);
		if (*sptep & TRAPVM_PTE_P) {
			child = trapvm_sp_of_table(__va(SHADOW_ADDR(*sptep)));
			if (child->gfn == child_gfn &&
			    child->role.word == role.word) {
				sp = child;
				continue;
			}
			/* A clean large page got dirty: relink. */
			trapvm_sp_zap_entry(m, sp, pt_index(w->gva, level));
		}
		child = trapvm_sp_get(m, child_gfn, role, &created);
		if (!child || trapvm_sp_link(m, sptep, child))
			return TRAPVM_MMU_FAULT_KILL;
		recheck |= created && !role.direct;
		linked = true;
		sp = child;
	}
	sps[1] = sp;
	trapvm_sp_touch(m, sp);

	if (recheck && !mmu_recheck_walk(vcpu, w, sps))
		return TRAPVM_MMU_FAULT_RESUME;

	page = trapvm_gfn_to_page(vcpu->vm, gfn, true);
	if (!page)
		return TRAPVM_MMU_FAULT_KILL;	/* RAM checked: -ENOMEM */

	spte = trapvm_shadow_pte(c, w, view, page_to_phys(page));
	if (trapvm_gfn_is_tracked(m, gfn)) {
		/* A guest page table: writes must trap. */
		spte &= ~(TRAPVM_PTE_RW | TRAPVM_PTE_D);
		if ((access & TRAPVM_ACC_WRITE) && (spte & TRAPVM_PTE_P)) {
			put_page(page);
			mmu->wp_fault_gfn = gfn;
			mmu->wp_fault_gva = w->gva;
			return TRAPVM_MMU_FAULT_EMULATE;
		}
	}
	if (!spte_allows(spte, access)) {
		/*
		 * The guest may do this but a page-table entry cannot say
		 * so (an execute-only user page for a guest kernel with SMAP
		 * on and SMEP off): give up rather than loop.
		 */
		pr_err_ratelimited("vcpu %u: cannot shadow gva %#llx access %#x (perm %#x view %d)\n",
				   vcpu->id, w->gva, access, w->perm, view);
		put_page(page);
		return TRAPVM_MMU_FAULT_KILL;
	}

	idx = pt_index(w->gva, 1);
	/*
	 * The leaf already lets this access through.  If a table on the
	 * way was just linked (a shared page already had it), or another
	 * vCPU filled the leaf after this one faulted, resuming is right.
	 * The same fault again on an unchanged shadow: the hardware faulted
	 * for a reason the shadow cannot fix; filling it again would loop.
	 */
	if (sp->spt[idx] == spte) {
		put_page(page);
		if (linked) {
			trapvm_vcpu_stat_inc(vcpu, TRAPVM_STAT_MMU_HIDDEN_PF);
			return TRAPVM_MMU_FAULT_RESUME;
		}
		if (mmu->spurious_gva != (w->gva & PAGE_MASK) ||
		    mmu->spurious_access != access) {
			mmu->spurious_gva = w->gva & PAGE_MASK;
			mmu->spurious_access = access;
			return TRAPVM_MMU_FAULT_RESUME;
		}
		mmu->spurious_gva = ~0ULL;
		return TRAPVM_MMU_FAULT_EMULATE;
	}
	mmu->spurious_gva = ~0ULL;

	trapvm_sp_zap_entry(m, sp, idx);
	if (trapvm_rmap_add(m, sp, idx, gfn)) {
		put_page(page);
		return TRAPVM_MMU_FAULT_KILL;
	}
	/* The reference from trapvm_gfn_to_page() now belongs to the leaf. */
	WRITE_ONCE(sp->spt[idx], spte);
	trapvm_vcpu_stat_inc(vcpu, TRAPVM_STAT_MMU_HIDDEN_PF);
	return TRAPVM_MMU_FAULT_RESUME;
}

static enum trapvm_mmu_fault_result
mmu_inject_pf(struct trapvm_vcpu *vcpu, const struct trapvm_walk *w,
	      struct trapvm_fault *inject)
{
	/* A #PF invalidates the TLB's translations of the faulting address. */
	trapvm_roots_zap_gva(vcpu, w->gva, true);
	/* Counted as injected_page_faults when it is delivered. */
	mmu_set_pf(inject, w->gva, w->error_code);
	return TRAPVM_MMU_FAULT_INJECT;
}

static enum trapvm_mmu_fault_result
mmu_mmio(struct trapvm_vcpu *vcpu, u64 gpa)
{
	vcpu->mmu->mmio_gpa = gpa;
	return TRAPVM_MMU_FAULT_MMIO;
}

static enum trapvm_mmu_fault_result
mmu_page_fault(struct trapvm_vcpu *vcpu, u64 cr2, u32 hw_error,
	       struct trapvm_fault *inject, u64 *gpa)
{
	u32 access = hw_error_access(hw_error);
	struct trapvm_walk_ctx c;
	struct trapvm_walk w;

	/* The shadow never sets reserved bits: that would be our bug. */
	if (hw_error & TRAPVM_PFERR_RSVD) {
		pr_err_ratelimited("vcpu %u: reserved-bit fault on the shadow at %#llx\n",
				   vcpu->id, cr2);
		return TRAPVM_MMU_FAULT_KILL;
	}

	/*
	 * The guest runs at CPL3: a supervisor-mode access is one the
	 * hardware made on its own (an implicit access), which host SMAP
	 * refuses on our user-accessible leaves whatever they say.
	 */
	if (!(hw_error & TRAPVM_PFERR_U))
		return TRAPVM_MMU_FAULT_EMULATE;

	trapvm_mmu_walk_ctx(vcpu, &c);
	switch (mmu_translate(vcpu, &c, cr2, access, &w)) {
	case TRAPVM_WALK_OK:
		break;
	case TRAPVM_WALK_PF:
		return mmu_inject_pf(vcpu, &w, inject);
	case TRAPVM_WALK_GP:
		mmu_set_gp(inject);
		return TRAPVM_MMU_FAULT_GP;
	case TRAPVM_WALK_RETRY:
		return TRAPVM_MMU_FAULT_RESUME;
	default:
		return TRAPVM_MMU_FAULT_KILL;
	}

	*gpa = w.gpa;
	if (!gpa_is_ram(vcpu->vm, w.gpa))
		return mmu_mmio(vcpu, w.gpa);
	return mmu_fix_hidden_fault(vcpu, &c, &w, access);
}

enum trapvm_mmu_fault_result trapvm_mmu_page_fault(struct trapvm_vcpu *vcpu,
						   u64 cr2, u32 hw_error,
						   struct trapvm_fault *inject)
{
	bool tracing = trace_trapvm_mmu_fault_enabled();
	u64 start = tracing ? trapvm_mmu_cycles() : 0, gpa = ~0ULL;
	struct trapvm_vm_mmu *m = vcpu_vm_mmu(vcpu);
	enum trapvm_mmu_fault_result r;

	vcpu->mmu->wp_fault_gfn = ~0ULL;
	/*
	 * The walk too is under the lock: the guest tables that are tracked
	 * change only through emulated writes, which take it.
	 */
	trapvm_mmu_lock(m, vcpu);
	r = mmu_page_fault(vcpu, cr2, hw_error, inject, &gpa);
	trapvm_mmu_unlock(m);
	if (tracing)
		trace_trapvm_mmu_fault(vcpu->id, cr2, gpa, hw_error,
				       r == TRAPVM_MMU_FAULT_INJECT ?
				       inject->error_code : 0, r,
				       trapvm_mmu_cycles() - start);
	return r;
}

/* ------------------------------------------------------------------ */
/* Guest-virtual memory for the emulator                               */

/* Translate one piece (within a page) of an access; 0 or a result. */
static int mmu_gva_piece(struct trapvm_vcpu *vcpu,
			 const struct trapvm_walk_ctx *c, u64 gva,
			 unsigned int access, u64 *gpa, struct trapvm_fault *f)
{
	struct trapvm_walk w;

	switch (mmu_translate(vcpu, c, gva, access, &w)) {
	case TRAPVM_WALK_OK:
		break;
	case TRAPVM_WALK_PF:
		mmu_set_pf(f, gva, w.error_code);
		return TRAPVM_MMU_FAULT_INJECT;
	case TRAPVM_WALK_GP:
		mmu_set_gp(f);
		return TRAPVM_MMU_FAULT_GP;
	default:
		return TRAPVM_MMU_FAULT_KILL;
	}
	if (!gpa_is_ram(vcpu->vm, w.gpa))
		return mmu_mmio(vcpu, w.gpa);
	*gpa = w.gpa;
	return 0;
}

static unsigned int piece_len(u64 gva, unsigned int len)
{
	unsigned int room = PAGE_SIZE - (gva & ~PAGE_MASK);

	return min(len, room);
}

static int mmu_read_common(struct trapvm_vcpu *vcpu, u64 gva, void *buf,
			   unsigned int len, unsigned int access,
			   struct trapvm_fault *f)
{
	struct trapvm_walk_ctx c;

	trapvm_mmu_walk_ctx(vcpu, &c);
	while (len) {
		unsigned int n = piece_len(gva, len);
		u64 gpa;
		int ret;

		ret = mmu_gva_piece(vcpu, &c, gva, access, &gpa, f);
		if (ret)
			return ret;
		if (trapvm_read_guest_phys(vcpu->vm, gpa, buf, n))
			return TRAPVM_MMU_FAULT_KILL;
		buf += n;
		gva += n;
		len -= n;
	}
	return 0;
}

int trapvm_mmu_read_gva(struct trapvm_vcpu *vcpu, u64 gva, void *buf,
			unsigned int len, unsigned int access,
			struct trapvm_fault *f)
{
	return mmu_read_common(vcpu, gva, buf, len,
			       access & ~(TRAPVM_ACC_WRITE | TRAPVM_ACC_FETCH),
			       f);
}

int trapvm_mmu_fetch(struct trapvm_vcpu *vcpu, u64 gva, void *buf,
		     unsigned int len, unsigned int access,
		     struct trapvm_fault *f)
{
	return mmu_read_common(vcpu, gva, buf, len,
			       (access & ~TRAPVM_ACC_WRITE) | TRAPVM_ACC_FETCH,
			       f);
}

/*
 * Writes go in chunks of at most two pages (an emulated instruction
 * writes at most 16 bytes): every page of a chunk is checked before any
 * byte of it is written.  A write to a guest page table keeps the shadow
 * in sync (write_track.c).
 */
int trapvm_mmu_write_gva(struct trapvm_vcpu *vcpu, u64 gva, const void *buf,
			 unsigned int len, unsigned int access,
			 struct trapvm_fault *f)
{
	struct trapvm_walk_ctx c;

	access = (access & ~TRAPVM_ACC_FETCH) | TRAPVM_ACC_WRITE;
	trapvm_mmu_walk_ctx(vcpu, &c);
	while (len) {
		unsigned int n0 = piece_len(gva, len);
		unsigned int n1 = piece_len(gva + n0, len - n0);
		u64 gpa0, gpa1 = 0;
		int ret;

		ret = mmu_gva_piece(vcpu, &c, gva, access, &gpa0, f);
		if (ret)
			return ret;
		if (n1) {
			ret = mmu_gva_piece(vcpu, &c, gva + n0, access, &gpa1,
					    f);
			if (ret)
				return ret;
		}
		if (trapvm_mmu_write_phys(vcpu, gpa0, buf, n0))
			return TRAPVM_MMU_FAULT_KILL;
		if (n1 && trapvm_mmu_write_phys(vcpu, gpa1, buf + n0, n1))
			return TRAPVM_MMU_FAULT_KILL;
		buf += n0 + n1;
		gva += n0 + n1;
		len -= n0 + n1;
	}
	return 0;
}

int trapvm_mmu_cmpxchg_gva(struct trapvm_vcpu *vcpu, u64 gva, u64 old,
			   u64 new, unsigned int len, unsigned int access,
			   struct trapvm_fault *f)
{
	unsigned int n0 = piece_len(gva, len);
	struct trapvm_walk_ctx c;
	u64 gpa0, gpa1 = 0;
	int ret;

	if (!len || len > 8)
		return TRAPVM_MMU_FAULT_KILL;
	access = (access & ~TRAPVM_ACC_FETCH) | TRAPVM_ACC_WRITE;
	trapvm_mmu_walk_ctx(vcpu, &c);
	ret = mmu_gva_piece(vcpu, &c, gva, access, &gpa0, f);
	if (!ret && n0 < len)
		ret = mmu_gva_piece(vcpu, &c, gva + n0, access, &gpa1, f);
	if (ret)
		return ret;
	ret = trapvm_mmu_cmpxchg_phys(vcpu, gpa0, gpa1, n0, old, new, len);
	if (ret < 0)
		return TRAPVM_MMU_FAULT_KILL;
	return ret ? TRAPVM_ACCESS_CHANGED : 0;
}
