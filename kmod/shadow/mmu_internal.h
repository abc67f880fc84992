/* SPDX-License-Identifier: GPL-2.0 */
/*
 * trapvm shadow MMU internals, shared by the files of kmod/shadow/:
 *
 *   page_cache.c   shadow pages: hash by gfn, (gfn, role) lookup, parent
 *                  links, zap, LRU
 *   rmap.c         gfn -> shadow leaves mapping it; write protection
 *   write_track.c  emulated writes to guest page tables, flood detection,
 *                  unshadowing, the TRAPVM_HC_MMU_UPDATE batch
 *   roots.c        the per-vCPU root cache, CR3/INVLPG/paging changes
 *   reclaim.c      the per-VM cap and LRU reclaim
 *   fault.c        guest walks, hidden faults, guest-virtual access
 *   mmu.c          init/destroy, counters
 *
 * See Documentation/shadow-mmu.rst for the design.
 */
#ifndef _TRAPVM_SHADOW_MMU_INTERNAL_H
#define _TRAPVM_SHADOW_MMU_INTERNAL_H

#include <linux/list.h>
#include <linux/hash.h>
#include "mmu.h"

/* Intermediate shadow entries allow everything: the leaf decides. */
#define SHADOW_TABLE_FLAGS	(TRAPVM_PTE_P | TRAPVM_PTE_RW | \
				 TRAPVM_PTE_US | TRAPVM_PTE_A)
#define SHADOW_ADDR(e)		((e) & TRAPVM_PTE_ADDR_MASK)

#define SP_HASH_BITS		10
#define RMAP_HASH_BITS		10

/*
 * What a shadow page translates, besides its gfn.  Two guest walks may
 * reach the same guest table with different permissions above it, in
 * different views or paging modes: each combination gets its own shadow
 * page, because the leaves below depend on all of it.
 */
union trapvm_sp_role {
	u32 word;
	struct {
		u32 level:3;	/* 4 = PML4 .. 1 = PT */
		u32 view:2;	/* enum trapvm_view */
		u32 wp:1;	/* CR0.WP */
		u32 nxe:1;	/* EFER.NXE */
		u32 smep:1;	/* CR4.SMEP */
		u32 smap:1;	/* CR4.SMAP */
		u32 acc_w:1;	/* R/W = 1 in every guest entry above */
		u32 acc_u:1;	/* U/S = 1 in every guest entry above */
		u32 acc_nx:1;	/* XD = 1 in some guest entry above */
		u32 direct:1;	/* no guest table: a large guest page */
		u32 upper:1;	/* PML4 of the upper half (5-level host) */
		u32 dirty:1;	/* direct: the guest's large page has D */
	};
};

/*
 * One shadow table page.  @gfn is the guest table it shadows, or for a
 * direct page the first gfn of the guest-physical range it maps.
 */
struct trapvm_sp {
	struct hlist_node hash;		/* mmu->sp_hash[hash(gfn)] */
	struct list_head lru;		/* mmu->sp_lru, oldest first */
	u64 gfn;
	union trapvm_sp_role role;
	u64 *spt;			/* the table the hardware walks */
	u64 **parents;			/* shadow entries pointing here */
	unsigned int nr_parents, max_parents;
	unsigned int root_count;	/* cached roots using it */
	unsigned int write_count;	/* emulated writes since last use */
	struct trapvm_rmap **rmap;	/* level 1: rmap of each leaf */
};

/* A shadow leaf mapping a guest frame (rmap.c). */
struct trapvm_rmap {
	struct hlist_node node;		/* mmu->rmap_hash[hash(gfn)] */
	u64 gfn;
	u64 *sptep;
};

/* One cached root: the shadow of one guest CR3 in one mode. */
struct trapvm_mmu_root {
	bool valid;
	u64 gfn;			/* guest CR3 >> 12 */
	union trapvm_sp_role role;	/* of the PML4 (upper = 0) */
	u64 last_used;
	/* [0] lower half (or all with 4-level paging), [1] upper half */
	struct trapvm_sp *sp[2];
	u64 *pml5;			/* 5-level host: the page CR3 holds */
};

#define TRAPVM_MMU_NR_ROOTS	16

/* Per VM: shared by the vCPUs' MMUs for the cap. */
struct trapvm_vm_mmu {
	atomic_long_t nr_pages;		/* shadow pages of all vCPUs */
	int users;			/* vCPU MMUs (under vm->lock) */
};

/* Per vCPU, at vcpu->mmu. */
struct trapvm_vcpu_mmu {
	struct hlist_head sp_hash[1 << SP_HASH_BITS];
	struct hlist_head rmap_hash[1 << RMAP_HASH_BITS];
	struct list_head sp_lru;
	struct trapvm_mmu_root roots[TRAPVM_MMU_NR_ROOTS];
	int cur;			/* roots[] index in use, -1 if none */
	u64 root_clock;			/* LRU stamp of the roots */
	bool la57;			/* host 5-level paging */
	unsigned long nr_pages;		/* this vCPU's shadow pages */
	unsigned long nr_sp;		/* this vCPU's shadow pages, live */
	u64 mmio_gpa;			/* of the last MMIO result */
	atomic_t zap_request;		/* trapvm_mmu_request_zap() */
	u64 run_key[4];			/* see trapvm_mmu_run_end() */
	/* The write-protected gfn of the last EMULATE, ~0 if none. */
	u64 wp_fault_gfn;
	u64 wp_fault_gva;
	struct trapvm_vm_mmu *vm_mmu;
	/* CR3 when no root could be built (out of memory): all empty. */
	u64 *empty_top;
	u64 *empty_pml4;		/* == empty_top unless la57 */
};

static inline unsigned int pt_index(u64 gva, int level)
{
	return (gva >> (12 + 9 * (level - 1))) & 511;
}

static inline bool hole_slot(unsigned int pml4_idx)
{
	return pml4_idx >= TRAPVM_HOLE_PML4_FIRST &&
	       pml4_idx <= TRAPVM_HOLE_PML4_LAST;
}

/* The shadow page whose table @spt is (page->private). */
struct trapvm_sp *trapvm_sp_of_table(u64 *spt);

/* page_cache.c */
struct trapvm_sp *trapvm_sp_get(struct trapvm_vcpu *vcpu, u64 gfn,
				union trapvm_sp_role role, bool *created);
int trapvm_sp_link(struct trapvm_vcpu *vcpu, u64 *sptep,
		   struct trapvm_sp *child);
void trapvm_sp_zap_entry(struct trapvm_vcpu *vcpu, struct trapvm_sp *sp,
			 unsigned int idx);
void trapvm_sp_zap(struct trapvm_vcpu *vcpu, struct trapvm_sp *sp);
void trapvm_sp_zap_all(struct trapvm_vcpu *vcpu);
void trapvm_sp_touch(struct trapvm_vcpu *vcpu, struct trapvm_sp *sp);
bool trapvm_gfn_is_tracked(struct trapvm_vcpu *vcpu, u64 gfn);

/* rmap.c */
int trapvm_rmap_add(struct trapvm_vcpu *vcpu, struct trapvm_sp *sp,
		    unsigned int idx, u64 gfn);
void trapvm_rmap_remove(struct trapvm_vcpu *vcpu, struct trapvm_sp *sp,
			unsigned int idx);
void trapvm_rmap_write_protect(struct trapvm_vcpu *vcpu, u64 gfn);

/* write_track.c */
void trapvm_track_write(struct trapvm_vcpu *vcpu, u64 gpa,
			const void *old, const void *new, unsigned int nr,
			bool batch);
void trapvm_unshadow_gfn(struct trapvm_vcpu *vcpu, u64 gfn);

/* roots.c */
void trapvm_roots_put_all(struct trapvm_vcpu *vcpu, bool keep_cur);
void trapvm_roots_drop_sp(struct trapvm_vcpu *vcpu, struct trapvm_sp *sp);
bool trapvm_roots_is_cur(struct trapvm_vcpu *vcpu, struct trapvm_sp *sp);
struct trapvm_mmu_root *trapvm_mmu_cur_root(struct trapvm_vcpu *vcpu);
void trapvm_roots_zap_gva(struct trapvm_vcpu *vcpu, u64 gva, bool cur_only);
bool trapvm_mmu_shared(struct trapvm_vcpu *vcpu);

/* fault.c */
void trapvm_mmu_walk_ctx(struct trapvm_vcpu *vcpu, struct trapvm_walk_ctx *c);

/* reclaim.c */
extern unsigned int trapvm_shadow_max_pages;
int trapvm_mmu_make_room(struct trapvm_vcpu *vcpu, unsigned int need);
void trapvm_mmu_count_page(struct trapvm_vcpu *vcpu, int delta);

#endif /* _TRAPVM_SHADOW_MMU_INTERNAL_H */
