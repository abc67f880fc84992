// SPDX-License-Identifier: GPL-2.0
/*
 * From a guest translation to the shadow leaf the hardware walks.
 * Kernel-agnostic: see <trapvm/walk.h>.
 *
 * The hardware only ever sees CPL3 user-mode accesses, on a host with
 * EFER.NXE = 1, CR0.WP = 1 and SMEP/SMAP irrelevant (they only affect
 * supervisor accesses).  So for every view the shadow leaf has U/S = 1 and
 * must allow exactly the accesses the guest's translation allows the
 * virtual mode of that view, as a CPL3 access to P/RW/NX can express it:
 *
 *   reads   P = 1
 *   writes  R/W = 1 (and the guest's D flag already set: the first write
 *           faults to the module, whose walk sets D; a "hidden" fault)
 *   fetches NX = 0
 *
 * The one combination P/RW/NX cannot express is "execute but do not read":
 * a guest supervisor fetch from a user page with SMAP on, AC = 0 and SMEP
 * off.  With host protection keys (ctx->host_pkeys) the leaf is present,
 * executable and carries TRAPVM_SHADOW_XO_PKEY, which the PKRU the guest
 * runs with denies for data (see <trapvm/walk.h>).  Without them such
 * pages stay unmapped in TRAPVM_VIEW_KERNEL (data accesses must fault), so
 * the caller sees that the walk allowed a fetch the shadow cannot give.
 */
#include <trapvm/walk.h>

/* Host physical address bits of a 4 KiB shadow leaf. */
#define SHADOW_ADDR_MASK	TRAPVM_PTE_ADDR_MASK

u64 trapvm_shadow_pte(const struct trapvm_walk_ctx *ctx,
		      const struct trapvm_walk *w, enum trapvm_view view,
		      u64 host_pa)
{
	bool user_page = w->perm & TRAPVM_PERM_U;
	bool writable = w->perm & TRAPVM_PERM_W;
	bool nx = w->perm & TRAPVM_PERM_NX;
	bool dirty = w->ptes[w->nr_entries - 1] & TRAPVM_PTE_D;
	bool may_write, may_fetch;
	u64 spte;

	switch (view) {
	case TRAPVM_VIEW_USER:
		/* Guest user mode: supervisor pages must not be there. */
		if (!user_page)
			return 0;
		may_write = writable;
		may_fetch = !nx;
		break;
	case TRAPVM_VIEW_KERNEL:
		/* SMAP closed: no data access to user pages at all. */
		if (user_page && ctx->smap) {
			if (nx || ctx->smep || !ctx->host_pkeys)
				return 0;
			/* A fetch is allowed: execute-only. */
			return (host_pa & SHADOW_ADDR_MASK) | TRAPVM_PTE_P |
			       TRAPVM_PTE_US | TRAPVM_PTE_A |
			       ((u64)TRAPVM_SHADOW_XO_PKEY <<
				TRAPVM_PTE_PKEY_SHIFT);
		}
		fallthrough;
	case TRAPVM_VIEW_KERNEL_AC:
		/* Supervisor: CR0.WP = 0 lets it write read-only pages. */
		may_write = writable || !ctx->wp;
		may_fetch = !nx && !(user_page && ctx->smep);
		break;
	default:
		return 0;
	}

	spte = (host_pa & SHADOW_ADDR_MASK) | TRAPVM_PTE_P | TRAPVM_PTE_US |
	       TRAPVM_PTE_A;
	if (may_write && dirty)
		spte |= TRAPVM_PTE_RW | TRAPVM_PTE_D;
	if (!may_fetch)
		spte |= TRAPVM_PTE_NX;
	return spte;
}
