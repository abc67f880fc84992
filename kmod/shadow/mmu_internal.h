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
 *   mmu.c          init/destroy, the mmu lock and commit-zap
 *   tlb.c          remote TLB flush (IPIs to vCPUs in the guest)
 *
 * The shadow page cache (hashes, LRU, every struct trapvm_sp) is per VM
 * (struct trapvm_vm_mmu) under its mutex; each vCPU has its root cache
 * (struct trapvm_vcpu_mmu).
 *
 * See Documentation/shadow-mmu.rst for the design.
 */
#ifndef _TRAPVM_SHADOW_MMU_INTERNAL_H
#define _TRAPVM_SHADOW_MMU_INTERNAL_H

#include <linux/list.h>
#include <linux/hash.h>
#include <linux/mutex.h>
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
		/*
		 * Level 4 only: vCPU id + 1 of the vCPU whose roots use it.
		 * The world switch writes its CPU's switcher PDPT into the
		 * hole slot of the current PML4, so no two vCPUs may share
		 * one; lower levels are shared by all vCPUs (owner 0).
		 */
		u32 owner:4;
	};
};

/*
 * One shadow table page.  @gfn is the guest table it shadows, or for a
 * direct page the first gfn of the guest-physical range it maps.  All
 * fields are under the VM's mmu lock.
 */
struct trapvm_sp {
	struct hlist_node hash;		/* m->sp_hash[hash(gfn)] */
	struct list_head lru;		/* m->sp_lru, or m->zapped */
	u64 gfn;
	union trapvm_sp_role role;
	u64 *spt;			/* the table the hardware walks */
	u64 **parents;			/* shadow entries pointing here */
	unsigned int nr_parents, max_parents;
	unsigned int root_count;	/* cached roots using it */
	unsigned int write_count;	/* emulated writes since last use */
	/*
	 * Zapped while a cached root held it: out of the hash (it shadows
	 * nothing any more), emptied, freed when its owner drops the root.
	 */
	bool obsolete;
	struct trapvm_rmap **rmap;	/* level 1: rmap of each leaf */
};

/* A shadow leaf mapping a guest frame (rmap.c). */
struct trapvm_rmap {
	struct hlist_node node;		/* m->rmap_hash[hash(gfn)] */
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

/* Leaf page references dropped after the next remote flush. */
#define TRAPVM_MMU_PUT_BATCH	64

/*
 * Per VM, at vm->mmu: the shadow page cache shared by every vCPU.
 * Everything below @lock is protected by it.
 */
struct trapvm_vm_mmu {
	struct mutex lock;		/* all below; may sleep under it */
	struct trapvm_vm *vm;
	/* The vCPU doing the current work (counters), NULL for none. */
	struct trapvm_vcpu *actor;
	struct hlist_head sp_hash[1 << SP_HASH_BITS];
	struct hlist_head rmap_hash[1 << RMAP_HASH_BITS];
	struct list_head sp_lru;	/* live shadow pages, oldest first */
	unsigned long nr_pages;		/* shadow pages of the VM */
	unsigned long nr_sp;		/* struct trapvm_sp of the VM */
	struct trapvm_vcpu *vcpus[TRAPVM_MAX_VCPUS];
	int users;			/* vCPU MMUs */
	/*
	 * Commit-zap: a shadow entry was removed or lost rights (remote TLBs
	 * may hold it); shadow pages and leaf page references that other
	 * CPUs may still walk or reach, released after the remote flush.
	 */
	bool need_flush;
	struct list_head zapped;
	unsigned int nr_put;
	struct page *put[TRAPVM_MMU_PUT_BATCH];
	atomic_t zap_gen;		/* trapvm_mmu_request_zap() */
	int zap_done;			/* zap_gen last acted on */
	void *flush_mask;		/* tlb.c: cpumask for the IPI */
};

/* vcpu_mmu->mode */
#define TRAPVM_MMU_OUTSIDE_GUEST	0
#define TRAPVM_MMU_IN_GUEST		1

/*
 * Per vCPU, at vcpu->mmu: the root cache.  roots[] and cur are changed
 * only by the vCPU itself under the VM's mmu lock (so others may read them
 * under the lock); mode and cpu are written by the world switch.
 */
struct trapvm_vcpu_mmu {
	struct trapvm_mmu_root roots[TRAPVM_MMU_NR_ROOTS];
	int cur;			/* roots[] index in use, -1 if none */
	u64 root_clock;			/* LRU stamp of the roots */
	bool la57;			/* host 5-level paging */
	int mode;			/* TRAPVM_MMU_*_GUEST */
	int cpu;			/* where it last entered the guest */
	u64 mmio_gpa;			/* of the last MMIO result */
	/* The write-protected gfn of the last EMULATE, ~0 if none. */
	u64 wp_fault_gfn;
	u64 wp_fault_gva;
	/*
	 * The last fault on a leaf that already allowed the access, ~0 if
	 * none: the first is resumed (another vCPU may have filled the leaf
	 * after the fault), the same again is EMULATE.
	 */
	u64 spurious_gva;
	u32 spurious_access;
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

static inline struct trapvm_vm_mmu *vcpu_vm_mmu(struct trapvm_vcpu *vcpu)
{
	return vcpu->mmu->vm_mmu;
}

/* A counter of the vCPU doing the work, if any. */
static inline void mmu_stat_inc(struct trapvm_vm_mmu *m,
				enum trapvm_vcpu_stat stat)
{
	if (m->actor)
		trapvm_vcpu_stat_inc(m->actor, stat);
}

static inline u32 mmu_actor_id(struct trapvm_vm_mmu *m)
{
	return m->actor ? m->actor->id : ~0U;
}

/* The shadow page whose table @spt is (page->private). */
struct trapvm_sp *trapvm_sp_of_table(u64 *spt);

/*
 * mmu.c: take and release the VM's mmu lock.  @actor (NULL if no vCPU)
 * gets the counters.  Unlock commits: remote TLB flush if an entry was
 * removed or downgraded, then the zapped pages and dropped page
 * references are released.
 */
void trapvm_mmu_lock(struct trapvm_vm_mmu *m, struct trapvm_vcpu *actor);
void trapvm_mmu_unlock(struct trapvm_vm_mmu *m);
void trapvm_mmu_commit(struct trapvm_vm_mmu *m);
void trapvm_mmu_put_leaf_page(struct trapvm_vm_mmu *m, struct page *page);

/* tlb.c (stubbed by the unit test) */
int trapvm_mmu_flush_init(struct trapvm_vm_mmu *m);
void trapvm_mmu_flush_free(struct trapvm_vm_mmu *m);
void trapvm_mmu_flush_remote(struct trapvm_vm_mmu *m);

/* page_cache.c */
struct trapvm_sp *trapvm_sp_get(struct trapvm_vm_mmu *m, u64 gfn,
				union trapvm_sp_role role, bool *created);
int trapvm_sp_link(struct trapvm_vm_mmu *m, u64 *sptep,
		   struct trapvm_sp *child);
void trapvm_sp_zap_entry(struct trapvm_vm_mmu *m, struct trapvm_sp *sp,
			 unsigned int idx);
void trapvm_sp_zap(struct trapvm_vm_mmu *m, struct trapvm_sp *sp);
void trapvm_sp_zap_all(struct trapvm_vm_mmu *m);
void trapvm_sp_put_root(struct trapvm_vm_mmu *m, struct trapvm_sp *sp);
void trapvm_sp_free_zapped(struct trapvm_vm_mmu *m);
void trapvm_sp_touch(struct trapvm_vm_mmu *m, struct trapvm_sp *sp);
bool trapvm_gfn_is_tracked(struct trapvm_vm_mmu *m, u64 gfn);

/* rmap.c */
int trapvm_rmap_add(struct trapvm_vm_mmu *m, struct trapvm_sp *sp,
		    unsigned int idx, u64 gfn);
void trapvm_rmap_remove(struct trapvm_vm_mmu *m, struct trapvm_sp *sp,
			unsigned int idx);
void trapvm_rmap_write_protect(struct trapvm_vm_mmu *m, u64 gfn);

/* write_track.c */
void trapvm_track_write(struct trapvm_vm_mmu *m, u64 gpa,
			const void *old, const void *new, unsigned int nr,
			bool batch);
void trapvm_unshadow_gfn(struct trapvm_vm_mmu *m, u64 gfn);

/* roots.c */
void trapvm_roots_put_all(struct trapvm_vcpu *vcpu, bool keep_cur);
bool trapvm_roots_is_cur(struct trapvm_vm_mmu *m, struct trapvm_sp *sp);
struct trapvm_mmu_root *trapvm_mmu_cur_root(struct trapvm_vcpu *vcpu);
void trapvm_roots_zap_gva(struct trapvm_vcpu *vcpu, u64 gva, bool cur_only);

/* fault.c */
void trapvm_mmu_walk_ctx(struct trapvm_vcpu *vcpu, struct trapvm_walk_ctx *c);

/* reclaim.c */
extern unsigned int trapvm_shadow_max_pages;
int trapvm_mmu_make_room(struct trapvm_vcpu *vcpu, unsigned int need);
void trapvm_mmu_count_page(struct trapvm_vm_mmu *m, int delta);

#endif /* _TRAPVM_SHADOW_MMU_INTERNAL_H */
