/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The guest page-table walker: 4-level IA-32e paging of the guest, by the
 * rules of the Intel SDM Vol. 3A, 4.5 (4-level paging), 4.6 (access
 * rights) and 4.7 (page-fault exceptions), 4.8 (accessed and dirty flags).
 *
 * Kernel-agnostic (see glue.h): the module's shadow MMU and emulator use it,
 * and selftests/unit/test_walk.c checks it against a separate model of the
 * SDM's rules in userspace.
 *
 * The guest is always 4-level, whatever the host uses.  The walker reads
 * guest page-table entries and updates their A/D flags only through the
 * callbacks in struct trapvm_walk_ops, so it knows nothing about how guest
 * memory is stored.
 */
#ifndef _TRAPVM_WALK_H
#define _TRAPVM_WALK_H

#include "glue.h"

/* Paging-structure entry bits (SDM Vol. 3A, tables 4-15 .. 4-20). */
#define TRAPVM_PTE_P		BIT_ULL(0)
#define TRAPVM_PTE_RW		BIT_ULL(1)
#define TRAPVM_PTE_US		BIT_ULL(2)
#define TRAPVM_PTE_PWT		BIT_ULL(3)
#define TRAPVM_PTE_PCD		BIT_ULL(4)
#define TRAPVM_PTE_A		BIT_ULL(5)
#define TRAPVM_PTE_D		BIT_ULL(6)
#define TRAPVM_PTE_PS		BIT_ULL(7)
#define TRAPVM_PTE_G		BIT_ULL(8)
#define TRAPVM_PTE_PAT_LARGE	BIT_ULL(12)	/* PAT bit of a 2M/1G leaf */
#define TRAPVM_PTE_NX		BIT_ULL(63)
#define TRAPVM_PTE_PKEY_SHIFT	59		/* bits 62:59 of a leaf */
#define TRAPVM_PTE_PKEY_MASK	(0xfULL << TRAPVM_PTE_PKEY_SHIFT)
/* Bits 51:12, the widest physical address field (MAXPHYADDR = 52). */
#define TRAPVM_PTE_ADDR_MASK	0x000ffffffffff000ULL

/* #PF error code (SDM Vol. 3A, 4.7). */
#define TRAPVM_PFERR_P		BIT(0)	/* protection violation, not !present */
#define TRAPVM_PFERR_W		BIT(1)	/* write access */
#define TRAPVM_PFERR_U		BIT(2)	/* user-mode access */
#define TRAPVM_PFERR_RSVD	BIT(3)	/* reserved bit set in an entry */
#define TRAPVM_PFERR_I		BIT(4)	/* instruction fetch (see 4.7) */
#define TRAPVM_PFERR_PK		BIT(5)	/* protection-key violation */

/*
 * PML4 slots of the hole (TRAPVM_HOLE_START..TRAPVM_HOLE_END in
 * <linux/trapvm_guest.h>): the guest's entries there are ignored.
 */
#define TRAPVM_HOLE_PML4_FIRST	256
#define TRAPVM_HOLE_PML4_LAST	271

/*
 * Access type (the same values as in <trapvm/emulate.h>, so the emulator's
 * access flags can be passed through): a read unless WRITE or FETCH.
 * A user-mode access is one at virtual CPL3 (ctx->cpl, or USER) that is
 * not IMPLICIT.  IMPLICIT is an implicit supervisor-mode access (GDT, LDT,
 * IDT, TSS, the stack of an event delivered with a CPL change): a
 * supervisor access even at CPL3, and SMAP applies to it whatever
 * RFLAGS.AC says.
 */
#define TRAPVM_ACC_READ		0
#define TRAPVM_ACC_WRITE	BIT(0)
#define TRAPVM_ACC_FETCH	BIT(1)
#define TRAPVM_ACC_USER		BIT(2)
#define TRAPVM_ACC_IMPLICIT	BIT(3)

/* The guest's paging mode, as the control registers say. */
struct trapvm_walk_ctx {
	u64 cr3;
	u32 pkru;		/* only used when pke */
	u8 maxphyaddr;		/* guest MAXPHYADDR, 36..52 */
	u8 cpl;			/* virtual CPL: 3 is user mode */
	bool wp;		/* CR0.WP */
	bool nxe;		/* EFER.NXE */
	bool smep;		/* CR4.SMEP */
	bool smap;		/* CR4.SMAP */
	bool pke;		/* CR4.PKE */
	bool ac;		/* RFLAGS.AC */
	bool gbpages;		/* 1 GiB pages supported (else PS is reserved) */
	bool hole;		/* PML4 slots 256..271 read as not present */
	/* Host CR4.PKE: the shadow may use execute-only leaves (below). */
	bool host_pkeys;
};

/*
 * Access to guest-physical memory.  @opaque is trapvm_walk()'s argument.
 * read_pte: read the aligned 8-byte entry at @gpa into *@pte; 0 or a
 *   negative errno (the walk then fails with TRAPVM_WALK_ERROR).  For a
 *   @gpa outside RAM an implementation may return 0 with all ones, as a
 *   read of unbacked memory does on real hardware (a reserved-bit fault).
 * cmpxchg_pte: atomically replace @old with @new at @gpa.  0 when done,
 *   1 when the entry no longer held @old (the walker starts over, as the
 *   processor's locked update does), or a negative errno.  May be NULL
 *   for a walk that must not change guest memory (then no A/D updates).
 */
struct trapvm_walk_ops {
	int (*read_pte)(void *opaque, u64 gpa, u64 *pte);
	int (*cmpxchg_pte)(void *opaque, u64 gpa, u64 old, u64 new);
};

enum trapvm_walk_status {
	TRAPVM_WALK_OK,		/* gpa and permissions valid */
	TRAPVM_WALK_PF,		/* #PF with error_code, CR2 = gva */
	TRAPVM_WALK_GP,		/* non-canonical gva: #GP (or #SS) */
	TRAPVM_WALK_ERROR,	/* a callback failed */
	TRAPVM_WALK_RETRY,	/* entries kept changing: re-execute */
};

/* Effective permissions of a translation (combined over all levels). */
#define TRAPVM_PERM_W		BIT(0)	/* R/W = 1 at every level */
#define TRAPVM_PERM_U		BIT(1)	/* U/S = 1 at every level */
#define TRAPVM_PERM_NX		BIT(2)	/* XD = 1 at some level (NXE = 1) */

struct trapvm_walk {
	enum trapvm_walk_status status;
	u32 error_code;		/* TRAPVM_WALK_PF */
	int err;		/* TRAPVM_WALK_ERROR: the callback's errno */
	u64 gva;
	u64 gpa;		/* the translated address (page offset kept) */
	u64 page_size;		/* 4K, 2M or 1G */
	u8 level;		/* level of the leaf: 1 = PTE, 2 = PDE, 3 = PDPTE */
	u8 perm;		/* TRAPVM_PERM_* */
	u8 pkey;		/* protection key of the leaf (pke only) */
	u8 nr_entries;		/* entries read: ptes[0] is the PML4E */
	u64 pte_gpa[4];		/* guest-physical address of each entry */
	u64 ptes[4];		/* the entries as used (A/D as after the walk) */
};

/*
 * Translate @gva for @access (TRAPVM_ACC_*) under @ctx.  On success sets the
 * A flag in every entry used and, for a write, the D flag in the leaf;
 * a failed walk changes nothing.  Returns w->status.
 */
enum trapvm_walk_status trapvm_walk(const struct trapvm_walk_ctx *ctx,
				    const struct trapvm_walk_ops *ops,
				    void *opaque, u64 gva, u32 access,
				    struct trapvm_walk *w);

/* True if @gva is canonical for 48-bit linear addresses. */
static inline bool trapvm_gva_canonical(u64 gva)
{
	return (u64)((s64)(gva << 16) >> 16) == gva;
}

/*
 * Shadow page-table entries.  The guest (kernel and user) runs at CPL3 on
 * shadow tables, so the shadow's permissions must be what the guest's
 * tables allow the *virtual* mode, expressed for a CPL3 hardware access:
 *
 *   TRAPVM_VIEW_USER         guest CPL3: only guest user pages (U=1).
 *   TRAPVM_VIEW_KERNEL       guest CPL0, SMAP closed (CR4.SMAP = 1 and
 *                            RFLAGS.AC = 0, so guest user pages are not
 *                            accessible for data).
 *   TRAPVM_VIEW_KERNEL_AC    guest CPL0 with SMAP off or RFLAGS.AC = 1.
 */
enum trapvm_view {
	TRAPVM_VIEW_USER,
	TRAPVM_VIEW_KERNEL,
	TRAPVM_VIEW_KERNEL_AC,
	TRAPVM_NR_VIEWS
};

static inline enum trapvm_view trapvm_view_of(const struct trapvm_walk_ctx *c)
{
	if (c->cpl == 3)
		return TRAPVM_VIEW_USER;
	if (c->smap && !c->ac)
		return TRAPVM_VIEW_KERNEL;
	return TRAPVM_VIEW_KERNEL_AC;
}

/*
 * Execute-only shadow leaves.  A guest supervisor fetch from a guest user
 * page with SMAP on, RFLAGS.AC = 0 and SMEP off is allowed while a read or
 * a write is not, and P/RW/NX cannot say "execute but do not read".  A
 * protection key can: PKRU governs data accesses to U/S = 1 pages and never
 * instruction fetches.  With host protection keys (ctx->host_pkeys) such a
 * leaf in TRAPVM_VIEW_KERNEL carries key TRAPVM_SHADOW_XO_PKEY and the world
 * switch runs the guest with PKRU = TRAPVM_SHADOW_PKRU: that key access-
 * and write-disabled, every other key (every other leaf has key 0) allowed.
 * The shadow tables and the PKRU the guest runs with are the module's own,
 * so any key but 0 would do; none is taken from a host process's pkeys.
 */
#define TRAPVM_SHADOW_XO_PKEY	15
#define TRAPVM_SHADOW_PKRU	(3U << (2 * TRAPVM_SHADOW_XO_PKEY))

/*
 * The shadow leaf for a 4 KiB host page at @host_pa that backs a guest
 * translation @w (a successful walk), in @view under @ctx.  Returns 0 if
 * the page must not be mapped in that view (every access there must fault
 * to the module), else P | U/S | A, R/W only if the view may write and the
 * guest's D flag is already set, and NX if the view may not fetch; an
 * execute-only leaf (above) has key TRAPVM_SHADOW_XO_PKEY, every other
 * leaf key 0.
 */
u64 trapvm_shadow_pte(const struct trapvm_walk_ctx *ctx,
		      const struct trapvm_walk *w, enum trapvm_view view,
		      u64 host_pa);

#endif /* _TRAPVM_WALK_H */
