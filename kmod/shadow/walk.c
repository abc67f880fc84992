// SPDX-License-Identifier: GPL-2.0
/*
 * The guest page-table walker: 4-level IA-32e paging by the rules of the
 * Intel SDM Vol. 3A, 4.5-4.8.  Kernel-agnostic: see <trapvm/walk.h>.
 *
 * The walk goes PML4E, PDPTE, PDE, PTE (stopping early at a 1 GiB or 2 MiB
 * leaf).  At each level an entry with P = 0 ends the walk with a
 * not-present fault, and a present entry with a reserved bit set ends it
 * with a reserved-bit fault (P = 1, RSVD = 1).  A complete walk gives the
 * effective permissions (R/W and U/S ANDed, XD ORed over all levels), then
 * the access is checked against them (4.6), and only if it is allowed are
 * the A flags (and the leaf's D flag for a write) set (4.8).
 */
#include <trapvm/walk.h>

/*
 * What differs between levels: where the index comes from, whether PS may
 * end the walk here, and which bits a large-page leaf reserves (the bits
 * between the PAT bit 12 and the page frame).
 */
struct walk_level {
	u8 shift;		/* the linear-address bits that index it */
	bool ps_leaf;		/* PS = 1 maps a page here */
	bool ps_reserved;	/* PS = 1 is a reserved-bit fault here */
	u64 large_rsvd;		/* reserved in a PS = 1 leaf */
};

#define RSVD_BITS(hi, lo)	((~0ULL >> (63 - (hi))) & ~((1ULL << (lo)) - 1))

static const struct walk_level walk_levels[5] = {
	[4] = { .shift = 39, .ps_reserved = true },
	[3] = { .shift = 30, .ps_leaf = true, .large_rsvd = RSVD_BITS(29, 13) },
	[2] = { .shift = 21, .ps_leaf = true, .large_rsvd = RSVD_BITS(20, 13) },
	[1] = { .shift = 12 },	/* bit 7 of a PTE is PAT */
};

/* Retries of a walk whose A/D update raced with a change of the entry. */
#define WALK_MAX_RETRIES	64

/* Physical-address bits MAXPHYADDR-1 .. 12. */
static u64 phys_mask(u8 maxphyaddr)
{
	return RSVD_BITS(maxphyaddr - 1, 12);
}

/*
 * The error code bits given by the access itself (4.7): W/R, U/S, and I/D
 * for a fetch when either SMEP or (PAE paging and) NXE is on.
 */
static u32 access_pfec(const struct trapvm_walk_ctx *ctx, u32 access,
		       bool user)
{
	u32 pfec = 0;

	if (access & TRAPVM_ACC_WRITE)
		pfec |= TRAPVM_PFERR_W;
	if (user)
		pfec |= TRAPVM_PFERR_U;
	if ((access & TRAPVM_ACC_FETCH) && (ctx->nxe || ctx->smep))
		pfec |= TRAPVM_PFERR_I;
	return pfec;
}

/*
 * 4.6: may this access use a translation with effective permissions @perm?
 * Returns 0 if allowed, else the extra error-code bits of the protection
 * fault (P, and PK if the protection key forbids it).
 */
static u32 check_access(const struct trapvm_walk_ctx *ctx, u32 access,
			bool user, u8 perm, u8 pkey)
{
	bool write = access & TRAPVM_ACC_WRITE;
	bool fetch = access & TRAPVM_ACC_FETCH;
	bool implicit = access & TRAPVM_ACC_IMPLICIT;
	bool user_page = perm & TRAPVM_PERM_U;
	bool writable = perm & TRAPVM_PERM_W;
	bool nx = perm & TRAPVM_PERM_NX;
	bool denied = false;
	bool pk = false;

	if (user) {
		/* User-mode access: only user-mode addresses, W needs R/W. */
		if (!user_page || (write && !writable) || (fetch && nx))
			denied = true;
	} else if (fetch) {
		/* Supervisor fetch: XD, and SMEP for user-mode addresses. */
		if (nx || (user_page && ctx->smep))
			denied = true;
	} else {
		/*
		 * Supervisor data access: SMAP forbids user-mode addresses
		 * unless the access is explicit and RFLAGS.AC = 1; a write
		 * to a read-only address needs CR0.WP = 0.
		 */
		if (user_page && ctx->smap && (implicit || !ctx->ac))
			denied = true;
		if (write && !writable && ctx->wp)
			denied = true;
	}

	/*
	 * Protection keys (4.6.2) apply to data accesses to user-mode
	 * addresses: AD forbids every data access, WD forbids writes by
	 * user-mode accesses and, with CR0.WP = 1, by supervisor ones.
	 */
	if (ctx->pke && user_page && !fetch) {
		bool ad = (ctx->pkru >> (2 * pkey)) & 1;
		bool wd = (ctx->pkru >> (2 * pkey + 1)) & 1;

		if (ad || (write && wd && (user || ctx->wp)))
			pk = true;
	}

	if (!denied && !pk)
		return 0;
	return TRAPVM_PFERR_P | (pk ? TRAPVM_PFERR_PK : 0);
}

static enum trapvm_walk_status walk_fault(struct trapvm_walk *w, u32 pfec)
{
	w->status = TRAPVM_WALK_PF;
	w->error_code = pfec;
	return w->status;
}

static enum trapvm_walk_status walk_error(struct trapvm_walk *w, int err)
{
	w->status = TRAPVM_WALK_ERROR;
	w->err = err;
	return w->status;
}

/*
 * 4.8: set A in every entry the translation used and D in the leaf for a
 * write.  Returns 0, 1 if an entry changed under us (walk again) or a
 * negative errno.
 */
static int walk_set_ad(const struct trapvm_walk_ops *ops, void *opaque,
		       struct trapvm_walk *w, bool write)
{
	int i, ret;

	if (!ops->cmpxchg_pte)
		return 0;
	for (i = 0; i < w->nr_entries; i++) {
		u64 old = w->ptes[i];
		u64 new = old | TRAPVM_PTE_A;

		if (i == w->nr_entries - 1 && write)
			new |= TRAPVM_PTE_D;
		if (new == old)
			continue;
		ret = ops->cmpxchg_pte(opaque, w->pte_gpa[i], old, new);
		if (ret)
			return ret;
		w->ptes[i] = new;
	}
	return 0;
}

static enum trapvm_walk_status walk_once(const struct trapvm_walk_ctx *ctx,
					 const struct trapvm_walk_ops *ops,
					 void *opaque, u64 gva, u32 access,
					 struct trapvm_walk *w, int *retry)
{
	bool user = (ctx->cpl == 3 || (access & TRAPVM_ACC_USER)) &&
		    !(access & TRAPVM_ACC_IMPLICIT);
	u32 pfec = access_pfec(ctx, access, user);
	u64 pmask = phys_mask(ctx->maxphyaddr);
	u64 rsvd_all, table, pte = 0;
	u8 perm = TRAPVM_PERM_W | TRAPVM_PERM_U;
	int level, ret;
	u32 prot;

	memset(w, 0, sizeof(*w));
	w->gva = gva;

	if (!trapvm_gva_canonical(gva)) {
		w->status = TRAPVM_WALK_GP;
		return w->status;
	}

	/* Reserved in every present entry: bits 51:MAXPHYADDR, XD if !NXE. */
	rsvd_all = RSVD_BITS(51, ctx->maxphyaddr);
	if (!ctx->nxe)
		rsvd_all |= TRAPVM_PTE_NX;

	table = ctx->cr3 & pmask;
	for (level = 4; level >= 1; level--) {
		const struct walk_level *l = &walk_levels[level];
		unsigned int idx = (gva >> l->shift) & 511;
		u64 gpa = table + idx * 8;
		u64 rsvd = rsvd_all;
		bool leaf;

		ret = ops->read_pte(opaque, gpa, &pte);
		if (ret)
			return walk_error(w, ret);
		w->pte_gpa[w->nr_entries] = gpa;
		w->ptes[w->nr_entries] = pte;
		w->nr_entries++;

		if (level == 4 && ctx->hole && idx >= TRAPVM_HOLE_PML4_FIRST &&
		    idx <= TRAPVM_HOLE_PML4_LAST)
			return walk_fault(w, pfec);
		if (!(pte & TRAPVM_PTE_P))
			return walk_fault(w, pfec);

		leaf = level == 1;
		if (pte & TRAPVM_PTE_PS) {
			if (l->ps_reserved || (level == 3 && !ctx->gbpages))
				rsvd |= TRAPVM_PTE_PS;
			else if (l->ps_leaf)
				leaf = true;
			if (l->ps_leaf)
				rsvd |= l->large_rsvd;
		}
		if (pte & rsvd)
			return walk_fault(w, pfec | TRAPVM_PFERR_P |
					  TRAPVM_PFERR_RSVD);

		if (!(pte & TRAPVM_PTE_RW))
			perm &= ~TRAPVM_PERM_W;
		if (!(pte & TRAPVM_PTE_US))
			perm &= ~TRAPVM_PERM_U;
		if (ctx->nxe && (pte & TRAPVM_PTE_NX))
			perm |= TRAPVM_PERM_NX;

		if (leaf)
			break;
		table = pte & pmask;
	}

	w->level = level;
	w->page_size = 1ULL << walk_levels[level].shift;
	w->perm = perm;
	if (ctx->pke)
		w->pkey = (pte & TRAPVM_PTE_PKEY_MASK) >> TRAPVM_PTE_PKEY_SHIFT;
	w->gpa = (pte & pmask & ~(w->page_size - 1)) |
		 (gva & (w->page_size - 1));

	prot = check_access(ctx, access, user, perm, w->pkey);
	if (prot)
		return walk_fault(w, pfec | prot);

	ret = walk_set_ad(ops, opaque, w, access & TRAPVM_ACC_WRITE);
	if (ret < 0)
		return walk_error(w, ret);
	*retry = ret;
	w->status = TRAPVM_WALK_OK;
	return w->status;
}

enum trapvm_walk_status trapvm_walk(const struct trapvm_walk_ctx *ctx,
				    const struct trapvm_walk_ops *ops,
				    void *opaque, u64 gva, u32 access,
				    struct trapvm_walk *w)
{
	int tries;

	for (tries = 0; tries < WALK_MAX_RETRIES; tries++) {
		int retry = 0;

		walk_once(ctx, ops, opaque, gva, access, w, &retry);
		if (!retry)
			return w->status;
	}
	/* The guest keeps rewriting the entries under us: let it retry. */
	w->status = TRAPVM_WALK_RETRY;
	return w->status;
}
