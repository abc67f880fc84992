// SPDX-License-Identifier: GPL-2.0
/*
 * trapvm shadow MMU, first version: shadow page tables filled on demand
 * from the guest's tables and dropped like a TLB.  See mmu.h.
 *
 * Shadow table pages are order-0 kernel pages.  A shadow PT or PD page
 * remembers in page->private whether it holds leaves that came from a
 * guest 2 MiB (PT) or 1 GiB (PD) page, so that INVLPG of one address can
 * drop the whole guest page, as the processor drops the whole TLB entry.
 */
#define pr_fmt(fmt) "trapvm: " fmt

#include <linux/slab.h>
#include <linux/mm.h>
#include <linux/highmem.h>
#include <linux/atomic.h>
#include <asm/io.h>
#include <asm/pgtable.h>
#include <asm/processor-flags.h>
#include <asm/msr-index.h>
#include <asm/cpufeature.h>

#include "../trapvm.h"
#include "mmu.h"

/* Intermediate shadow entries allow everything: the leaf decides. */
#define SHADOW_TABLE_FLAGS	(TRAPVM_PTE_P | TRAPVM_PTE_RW | \
				 TRAPVM_PTE_US | TRAPVM_PTE_A)
#define SHADOW_ADDR(e)		((e) & TRAPVM_PTE_ADDR_MASK)

/* page->private of a shadow PT / PD page. */
#define SHADOW_HAS_LARGE	BIT(0)

static atomic_long_t trapvm_mmu_pages = ATOMIC_LONG_INIT(0);

long trapvm_mmu_total_pages(void)
{
	return atomic_long_read(&trapvm_mmu_pages);
}

static inline unsigned int pt_index(u64 gva, int level)
{
	return (gva >> (12 + 9 * (level - 1))) & 511;
}

static bool hole_slot(unsigned int pml4_idx)
{
	return pml4_idx >= TRAPVM_HOLE_PML4_FIRST &&
	       pml4_idx <= TRAPVM_HOLE_PML4_LAST;
}

/* ------------------------------------------------------------------ */
/* Shadow table pages                                                   */

static u64 *shadow_alloc_table(struct trapvm_vcpu *vcpu)
{
	struct page *page = alloc_page(GFP_KERNEL_ACCOUNT | __GFP_ZERO);

	if (!page)
		return NULL;
	vcpu->mmu->nr_pages++;
	atomic_long_inc(&trapvm_mmu_pages);
	trapvm_vcpu_stat_inc(vcpu, TRAPVM_STAT_MMU_SHADOW_ALLOC);
	return page_address(page);
}

static void shadow_free_table(struct trapvm_vcpu *vcpu, u64 *table)
{
	struct page *page = virt_to_page(table);

	set_page_private(page, 0);
	__free_page(page);
	vcpu->mmu->nr_pages--;
	atomic_long_dec(&trapvm_mmu_pages);
	trapvm_vcpu_stat_inc(vcpu, TRAPVM_STAT_MMU_SHADOW_FREE);
}

static u64 *shadow_table_of(u64 entry)
{
	return __va(SHADOW_ADDR(entry));
}

static void shadow_mark_large(u64 *table)
{
	struct page *page = virt_to_page(table);

	set_page_private(page, page_private(page) | SHADOW_HAS_LARGE);
}

static bool shadow_has_large(u64 *table)
{
	return page_private(virt_to_page(table)) & SHADOW_HAS_LARGE;
}

/* A leaf holds a reference on the guest page it maps. */
static void shadow_drop_leaf(u64 *sptep)
{
	u64 spte = *sptep;

	if (!(spte & TRAPVM_PTE_P))
		return;
	WRITE_ONCE(*sptep, 0);
	put_page(pfn_to_page(SHADOW_ADDR(spte) >> PAGE_SHIFT));
}

/*
 * Free the shadow table @table at @level (1 = PT) and everything below
 * it, dropping the page references of its leaves.
 */
static void shadow_free_tree(struct trapvm_vcpu *vcpu, u64 *table, int level)
{
	int i;

	for (i = 0; i < 512; i++) {
		if (!(table[i] & TRAPVM_PTE_P))
			continue;
		if (level == 1)
			shadow_drop_leaf(&table[i]);
		else
			shadow_free_tree(vcpu, shadow_table_of(table[i]),
					 level - 1);
	}
	shadow_free_table(vcpu, table);
}

/*
 * Empty one of a view's PML4s.  Slots 256..271 (the hole) belong to the
 * switcher and are skipped; in the lower-half PML4 of a 5-level root they
 * are never used anyway (a canonical lower-half address has bit 47 clear).
 */
static void shadow_drop_pml4(struct trapvm_vcpu *vcpu, u64 *pml4)
{
	int i;

	for (i = 0; i < 512; i++) {
		if (hole_slot(i) || !(pml4[i] & TRAPVM_PTE_P))
			continue;
		shadow_free_tree(vcpu, shadow_table_of(pml4[i]), 3);
		WRITE_ONCE(pml4[i], 0);
	}
}

/* Empty one view, keeping its root page(s). */
static void shadow_drop_view(struct trapvm_vcpu *vcpu,
			     struct trapvm_shadow_root *root)
{
	if (root->pml4[0])
		shadow_drop_pml4(vcpu, root->pml4[0]);
	if (root->pml4[1] && root->pml4[1] != root->pml4[0])
		shadow_drop_pml4(vcpu, root->pml4[1]);
}

static void shadow_drop_all(struct trapvm_vcpu *vcpu)
{
	int v;

	for (v = 0; v < TRAPVM_NR_VIEWS; v++)
		shadow_drop_view(vcpu, &vcpu->mmu->roots[v]);
}

/* The PML4 of @root that translates @gva (canonical in 48 bits). */
static u64 *shadow_pml4_of(struct trapvm_shadow_root *root, u64 gva)
{
	return root->pml4[gva >> 63];
}

/*
 * The shadow leaf slot for @gva, allocating missing tables if @alloc.
 * Also returns the PD and PT pages on the way (for the large marks).
 * NULL if absent (or in the hole), ERR_PTR(-ENOMEM) if out of memory.
 */
static u64 *shadow_leaf_slot(struct trapvm_vcpu *vcpu,
			     struct trapvm_shadow_root *root, u64 gva,
			     bool alloc, u64 **pd_out, u64 **pt_out)
{
	u64 *table = shadow_pml4_of(root, gva);
	int level;

	if (hole_slot(pt_index(gva, 4)))
		return NULL;
	for (level = 4; level >= 2; level--) {
		u64 *entry = &table[pt_index(gva, level)];

		if (!(*entry & TRAPVM_PTE_P)) {
			u64 *child;

			if (!alloc)
				return NULL;
			child = shadow_alloc_table(vcpu);
			if (!child)
				return ERR_PTR(-ENOMEM);
			WRITE_ONCE(*entry, __pa(child) | SHADOW_TABLE_FLAGS);
		}
		table = shadow_table_of(*entry);
		if (level == 3 && pd_out)
			*pd_out = table;
		if (level == 2 && pt_out)
			*pt_out = table;
	}
	return &table[pt_index(gva, 1)];
}

/* INVLPG in one view (see mmu.h). */
static void shadow_invlpg_view(struct trapvm_vcpu *vcpu,
			       struct trapvm_shadow_root *root, u64 gva)
{
	u64 *pdpt, *pd, *pt, *pdpte, *pde;
	u64 *pml4e = &shadow_pml4_of(root, gva)[pt_index(gva, 4)];

	if (hole_slot(pt_index(gva, 4)))
		return;
	if (!(*pml4e & TRAPVM_PTE_P))
		return;
	pdpt = shadow_table_of(*pml4e);
	pdpte = &pdpt[pt_index(gva, 3)];
	if (!(*pdpte & TRAPVM_PTE_P))
		return;
	pd = shadow_table_of(*pdpte);
	if (shadow_has_large(pd)) {
		/* Leaves from a guest 1 GiB page: drop all of it. */
		WRITE_ONCE(*pdpte, 0);
		shadow_free_tree(vcpu, pd, 2);
		return;
	}
	pde = &pd[pt_index(gva, 2)];
	if (!(*pde & TRAPVM_PTE_P))
		return;
	pt = shadow_table_of(*pde);
	if (shadow_has_large(pt)) {
		/* Leaves from a guest 2 MiB page. */
		WRITE_ONCE(*pde, 0);
		shadow_free_tree(vcpu, pt, 1);
		return;
	}
	shadow_drop_leaf(&pt[pt_index(gva, 1)]);
}

static void shadow_invlpg_all_views(struct trapvm_vcpu *vcpu, u64 gva)
{
	int v;

	if (!trapvm_gva_canonical(gva))
		return;
	for (v = 0; v < TRAPVM_NR_VIEWS; v++)
		shadow_invlpg_view(vcpu, &vcpu->mmu->roots[v], gva);
}

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
static void mmu_walk_ctx(struct trapvm_vcpu *vcpu, struct trapvm_walk_ctx *c)
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
/* Setup                                                               */

static int mmu_alloc_root(struct trapvm_vcpu *vcpu,
			  struct trapvm_shadow_root *root)
{
	root->top = shadow_alloc_table(vcpu);
	if (!root->top)
		return -ENOMEM;
	if (!vcpu->mmu->la57) {
		root->pml4[0] = root->top;
		root->pml4[1] = root->top;
		return 0;
	}
	root->pml4[0] = shadow_alloc_table(vcpu);
	root->pml4[1] = shadow_alloc_table(vcpu);
	if (!root->pml4[0] || !root->pml4[1])
		return -ENOMEM;
	root->top[0] = __pa(root->pml4[0]) | SHADOW_TABLE_FLAGS;
	root->top[511] = __pa(root->pml4[1]) | SHADOW_TABLE_FLAGS;
	return 0;
}

static void mmu_free_root(struct trapvm_vcpu *vcpu,
			  struct trapvm_shadow_root *root)
{
	if (root->top)
		shadow_drop_view(vcpu, root);
	if (vcpu->mmu->la57) {
		if (root->pml4[0])
			shadow_free_table(vcpu, root->pml4[0]);
		if (root->pml4[1])
			shadow_free_table(vcpu, root->pml4[1]);
	}
	if (root->top)
		shadow_free_table(vcpu, root->top);
	memset(root, 0, sizeof(*root));
}

int trapvm_mmu_init(struct trapvm_vcpu *vcpu)
{
	struct trapvm_vcpu_mmu *mmu;
	int v, ret;

	mmu = kzalloc(sizeof(*mmu), GFP_KERNEL_ACCOUNT);
	if (!mmu)
		return -ENOMEM;
	mmu->la57 = pgtable_l5_enabled();
	mmu->cur = TRAPVM_VIEW_KERNEL_AC;
	atomic_set(&mmu->zap_request, 0);
	vcpu->mmu = mmu;

	for (v = 0; v < TRAPVM_NR_VIEWS; v++) {
		ret = mmu_alloc_root(vcpu, &mmu->roots[v]);
		if (ret) {
			trapvm_mmu_destroy(vcpu);
			return ret;
		}
	}
	return 0;
}

void trapvm_mmu_destroy(struct trapvm_vcpu *vcpu)
{
	struct trapvm_vcpu_mmu *mmu = vcpu->mmu;
	int v;

	if (!mmu)
		return;
	/* The switcher's PDPT in the hole is not ours and is left alone. */
	for (v = 0; v < TRAPVM_NR_VIEWS; v++)
		mmu_free_root(vcpu, &mmu->roots[v]);
	WARN_ON_ONCE(mmu->nr_pages);
	vcpu->mmu = NULL;
	kfree(mmu);
}

/* ------------------------------------------------------------------ */
/* Entry points                                                        */

/*
 * What the shadow was built for: CR3 and the paging-mode bits.  The
 * emulator reports guest MOV CR3/CR0/CR4 and WRMSR EFER, but userspace
 * can also change these (SET_SREGS) between runs.
 */
static void mmu_paging_key(struct trapvm_vcpu *vcpu, u64 key[4])
{
	const struct trapvm_cpu *cpu = &vcpu->cpu;

	key[0] = cpu->cr3;
	key[1] = cpu->cr0 & (X86_CR0_PG | X86_CR0_WP);
	key[2] = cpu->cr4 & (X86_CR4_PAE | X86_CR4_PSE | X86_CR4_PGE |
			     X86_CR4_SMEP | X86_CR4_SMAP | X86_CR4_PKE);
	key[3] = cpu->efer & (EFER_NX | EFER_LMA);
}

phys_addr_t trapvm_mmu_root(struct trapvm_vcpu *vcpu)
{
	struct trapvm_vcpu_mmu *mmu = vcpu->mmu;
	struct trapvm_walk_ctx c;
	u64 key[4];

	mmu_paging_key(vcpu, key);
	if (memcmp(key, mmu->paging_key, sizeof(key))) {
		memcpy(mmu->paging_key, key, sizeof(key));
		shadow_drop_all(vcpu);
	}
	if (atomic_xchg(&mmu->zap_request, 0))
		shadow_drop_all(vcpu);
	mmu_walk_ctx(vcpu, &c);
	mmu->cur = trapvm_view_of(&c);
	return __pa(mmu->roots[mmu->cur].top);
}

u64 *trapvm_mmu_hole_slot(struct trapvm_vcpu *vcpu)
{
	struct trapvm_vcpu_mmu *mmu = vcpu->mmu;

	return &mmu->roots[mmu->cur].pml4[1][TRAPVM_HOLE_PML4_FIRST];
}

void trapvm_mmu_request_zap(struct trapvm_vcpu *vcpu)
{
	atomic_set(&vcpu->mmu->zap_request, 1);
}

void trapvm_mmu_load_cr3(struct trapvm_vcpu *vcpu)
{
	trapvm_vcpu_stat_inc(vcpu, TRAPVM_STAT_MMU_CR3_LOADS);
	shadow_drop_all(vcpu);
}

void trapvm_mmu_invlpg(struct trapvm_vcpu *vcpu, u64 gva)
{
	trapvm_vcpu_stat_inc(vcpu, TRAPVM_STAT_MMU_INVLPG);
	shadow_invlpg_all_views(vcpu, gva);
}

void trapvm_mmu_reset(struct trapvm_vcpu *vcpu)
{
	shadow_drop_all(vcpu);
}

/* The access a hardware #PF error code describes (host NXE is on). */
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
	return true;
}

/* A hidden fault: install the shadow leaf for a permitted access. */
static enum trapvm_mmu_fault_result
mmu_fix_hidden_fault(struct trapvm_vcpu *vcpu, const struct trapvm_walk_ctx *c,
		     const struct trapvm_walk *w, u32 access)
{
	enum trapvm_view view = trapvm_view_of(c);
	struct trapvm_shadow_root *root = &vcpu->mmu->roots[view];
	u64 *sptep, *pd = NULL, *pt = NULL;
	struct page *page;
	u64 spte;

	page = trapvm_gfn_to_page(vcpu->vm, w->gpa >> PAGE_SHIFT, true);
	if (!page)
		return TRAPVM_MMU_FAULT_KILL;	/* RAM checked: -ENOMEM */

	spte = trapvm_shadow_pte(c, w, view, page_to_phys(page));
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

	/*
	 * Until reclaim exists, a guest touching ever more address space
	 * must not pin ever more host memory: start over past the cap.
	 */
	if (vcpu->mmu->nr_pages >= TRAPVM_MMU_MAX_PAGES)
		shadow_drop_all(vcpu);

	sptep = shadow_leaf_slot(vcpu, root, w->gva, true, &pd, &pt);
	if (IS_ERR_OR_NULL(sptep)) {
		put_page(page);
		return TRAPVM_MMU_FAULT_KILL;
	}
	if (w->level == 3)
		shadow_mark_large(pd);
	if (w->level >= 2)
		shadow_mark_large(pt);

	/*
	 * The leaf already let this access through: the hardware faulted
	 * for a reason the shadow cannot fix.  Filling it again would loop.
	 */
	if (*sptep == spte) {
		put_page(page);
		return TRAPVM_MMU_FAULT_EMULATE;
	}

	/* The reference from trapvm_gfn_to_page() now belongs to the leaf. */
	shadow_drop_leaf(sptep);
	WRITE_ONCE(*sptep, spte);
	trapvm_vcpu_stat_inc(vcpu, TRAPVM_STAT_MMU_HIDDEN_PF);
	return TRAPVM_MMU_FAULT_RESUME;
}

static enum trapvm_mmu_fault_result
mmu_inject_pf(struct trapvm_vcpu *vcpu, const struct trapvm_walk *w,
	      struct trapvm_fault *inject)
{
	/* A #PF invalidates the TLB's translations of the faulting address. */
	shadow_invlpg_all_views(vcpu, w->gva);
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

enum trapvm_mmu_fault_result trapvm_mmu_page_fault(struct trapvm_vcpu *vcpu,
						   u64 cr2, u32 hw_error,
						   struct trapvm_fault *inject)
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

	mmu_walk_ctx(vcpu, &c);
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

	if (!gpa_is_ram(vcpu->vm, w.gpa))
		return mmu_mmio(vcpu, w.gpa);
	return mmu_fix_hidden_fault(vcpu, &c, &w, access);
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

	mmu_walk_ctx(vcpu, &c);
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
 * byte of it is written.
 */
int trapvm_mmu_write_gva(struct trapvm_vcpu *vcpu, u64 gva, const void *buf,
			 unsigned int len, unsigned int access,
			 struct trapvm_fault *f)
{
	struct trapvm_walk_ctx c;

	access = (access & ~TRAPVM_ACC_FETCH) | TRAPVM_ACC_WRITE;
	mmu_walk_ctx(vcpu, &c);
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
		if (trapvm_write_guest_phys(vcpu->vm, gpa0, buf, n0))
			return TRAPVM_MMU_FAULT_KILL;
		if (n1 && trapvm_write_guest_phys(vcpu->vm, gpa1, buf + n0, n1))
			return TRAPVM_MMU_FAULT_KILL;
		buf += n0 + n1;
		gva += n0 + n1;
		len -= n0 + n1;
	}
	return 0;
}
