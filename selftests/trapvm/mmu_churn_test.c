// SPDX-License-Identifier: GPL-2.0
/*
 * mmu_churn_test: random page-table churn.  The guest maps, unmaps,
 * remaps and changes the permissions of pages at random, with the
 * invalidations the SDM requires and no more (INVLPG after changing or
 * removing a present entry, none after filling a not-present one, a CR3
 * reload after changing a PDE that covered 4 KiB translations), and
 * checks every access against what it mapped:
 *
 *  - a window of 1024 4 KiB slots; any of 2048 physical pages, R/W or
 *    read-only;
 *  - 8 slots of 2 MiB, each either unmapped, a 2 MiB page (one of four
 *    2 MiB physical regions) or a page table of its own whose entries
 *    map random 4 KiB pages (written through a supervisor alias of the
 *    table, not through the page table's own mapping);
 *  - every physical page is stamped with its own pattern, each 8-byte
 *    word differs: a read must return the stamp of the page it mapped, a
 *    write to a read-only or unmapped page must fault with the right
 *    error code and CR2, a write to a writable one writes the stamp back
 *    (so the stamps stay checkable by the test afterwards).
 *
 * The guest counts mismatches and keeps the first few.  MMU_CHURN_OPS
 * sets the number of operations (default 100,000, the count:
 * ~12 s under TCG in the test host), MMU_CHURN_SEED the seed.
 *
 *   tools/testhost/run -- selftests/trapvm/mmu_churn_test
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include <linux/trapvm.h>
#include <linux/trapvm_stats.h>

#include "kselftest_harness.h"
#include "mmu_guest.h"

static long long log_mark;

#define NSLOT		1024
#define NPAGE		2048		/* 4 regions of 2 MiB */
#define NREGION		(NPAGE / 512)
#define NLARGE		8
#define WIN_VA		0x140000000000ULL	/* 4 KiB slots */
#define LARGE_VA	0x148000000000ULL	/* 2 MiB slots, own PD */
#define LPT_VA		0x150000000000ULL	/* aliases of their PTs */
#define MAX_BAD		16

struct churn_bad {
	uint64_t op, va, want, got, kind;
};

struct churn {
	uint64_t pool;			/* GPA of page 0 (2 MiB aligned) */
	uint64_t win_pt[2];		/* VAs (== GPAs) of the window PTs */
	uint64_t large_pd;		/* VA (== GPA) of the 2 MiB slots' PD */
	uint64_t lpt_gpa[NLARGE];	/* the slots' own page tables */
	uint64_t ops, seed;
	/* results */
	uint64_t accesses, faults, invlpgs, cr3_loads, nbad;
	struct churn_bad bad[MAX_BAD];
};

static struct churn ch;

/* Guest state: what is mapped where (-1: nothing). */
static int32_t win_page[NSLOT];
static uint8_t win_rw[NSLOT];
static int8_t large_mode[NLARGE];	/* 0 none, 1 2 MiB page, 2 table */
static int32_t large_region[NLARGE];
static int32_t lpt_page[NLARGE][512];
static uint8_t lpt_rw[NLARGE][512];

static inline uint64_t stamp(uint64_t page, uint64_t word)
{
	return 0x5354414d00000000ULL ^ (page << 12) ^ word;
}

static uint64_t rng;

static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void bad(uint64_t op, uint64_t va, uint64_t want, uint64_t got,
		uint64_t kind)
{
	if (ch.nbad < MAX_BAD) {
		ch.bad[ch.nbad].op = op;
		ch.bad[ch.nbad].va = va;
		ch.bad[ch.nbad].want = want;
		ch.bad[ch.nbad].got = got;
		ch.bad[ch.nbad].kind = kind;
	}
	ch.nbad++;
}

static void invlpg(uint64_t va)
{
	mmu_invlpg(va);
	ch.invlpgs++;
}

static void reload_cr3(void)
{
	mmu_write_cr(3, mmu_read_cr(3));
	ch.cr3_loads++;
}

/* What the guest mapped at @va: page index or -1, and writable. */
static int64_t expect(uint64_t va, bool *rw)
{
	uint64_t i, j;

	if (va < LARGE_VA) {
		uint64_t s = (va - WIN_VA) >> 12;

		*rw = win_rw[s];
		return win_page[s];
	}
	j = (va - LARGE_VA) >> 21;
	i = (va >> 12) & 511;
	*rw = true;
	if (large_mode[j] == 1)
		return large_region[j] * 512 + i;
	if (large_mode[j] == 2) {
		*rw = lpt_rw[j][i];
		return lpt_page[j][i];
	}
	return -1;
}

/* One access to @va, checked against expect(). */
static void check_access(uint64_t op, uint64_t va, bool write)
{
	bool rw;
	int64_t page = expect(va, &rw);
	uint64_t word = (va & 4095) >> 3, v = 0, err;

	va &= ~7ULL;
	mmu_fault.vector = 0xff;
	mmu_fault_armed = 1;
	if (write)
		mmu_k_write64(va, page >= 0 ? stamp(page, word) : 0);
	else
		v = mmu_k_read64(va);
	mmu_fault_armed = 0;
	ch.accesses++;
	if (page >= 0 && (!write || rw)) {
		if (mmu_fault.vector != 0xff)
			bad(op, va, 0xff, (uint64_t)mmu_fault.vector << 32 |
			    mmu_fault.err, 1);
		else if (!write && v != stamp(page, word))
			bad(op, va, stamp(page, word), v, 2);
		return;
	}
	ch.faults++;
	err = (page >= 0 ? 1 : 0) | (write ? 2 : 0);
	if (mmu_fault.vector != PF_VECTOR || mmu_fault.err != err)
		bad(op, va, (uint64_t)PF_VECTOR << 32 | err,
		    (uint64_t)mmu_fault.vector << 32 | mmu_fault.err, 3);
	else if (mmu_fault.cr2 != va)
		bad(op, va, va, mmu_fault.cr2, 4);
}

static uint64_t pte_for(int64_t page, bool rw)
{
	return (ch.pool + page * 4096) | PTE_P | (rw ? PTE_W : 0);
}

static void op_window(uint64_t op, uint64_t r)
{
	uint64_t s = r % NSLOT, va = WIN_VA + s * 4096;
	volatile uint64_t *pte = (volatile uint64_t *)ch.win_pt[s / 512] +
				 s % 512;
	bool was = win_page[s] >= 0;

	switch ((r >> 16) % 4) {
	case 0:		/* map or remap */
	case 1:
		win_page[s] = (r >> 24) % NPAGE;
		win_rw[s] = (r >> 40) & 1;
		*pte = pte_for(win_page[s], win_rw[s]);
		if (was)
			invlpg(va);
		break;
	case 2:		/* unmap */
		win_page[s] = -1;
		*pte = 0;
		if (was)
			invlpg(va);
		break;
	case 3:		/* change permissions */
		if (!was)
			return;
		win_rw[s] ^= 1;
		*pte = pte_for(win_page[s], win_rw[s]);
		invlpg(va);
		break;
	}
	/* Read right away, and once more elsewhere in the page. */
	check_access(op, va + ((r >> 44) & 4095), false);
}

static void op_large(uint64_t op, uint64_t r)
{
	uint64_t j = r % NLARGE, va = LARGE_VA + (j << 21), i;
	volatile uint64_t *pde = (volatile uint64_t *)ch.large_pd + j;
	volatile uint64_t *pt = (volatile uint64_t *)(LPT_VA + j * 4096);
	int old = large_mode[j];

	switch ((r >> 8) % 8) {
	case 0:		/* unmap the slot */
		large_mode[j] = 0;
		*pde = 0;
		break;
	case 1:		/* a 2 MiB page */
	case 2:
		large_mode[j] = 1;
		large_region[j] = (r >> 16) % NREGION;
		*pde = (ch.pool + (uint64_t)large_region[j] * (2 << 20)) |
		       PTE_P | PTE_W | PTE_PS;
		break;
	case 3:		/* its own page table */
		large_mode[j] = 2;
		*pde = ch.lpt_gpa[j] | PTE_P | PTE_W;
		break;
	default: {	/* one entry of its page table */
		int64_t page = (r >> 24) & 1 ? -1 : (int64_t)((r >> 32) %
							     NPAGE);
		bool was;

		i = (r >> 16) & 511;
		was = lpt_page[j][i] >= 0;
		lpt_page[j][i] = page;
		lpt_rw[j][i] = (r >> 48) & 1;
		pt[i] = page < 0 ? 0 : pte_for(page, lpt_rw[j][i]);
		if (large_mode[j] == 2 && was)
			invlpg(va + i * 4096);
		check_access(op, va + i * 4096 + ((r >> 52) & 4095), false);
		return;
	}
	}
	/*
	 * A PDE that pointed to a table (or a 2 MiB page) changed: its 4 KiB
	 * translations are flushed with a CR3 load, a 2 MiB one by INVLPG.
	 */
	if (old == 2)
		reload_cr3();
	else if (old == 1)
		invlpg(va);
	check_access(op, va + ((r >> 40) & 0x1fffff), false);
}

static void guest_churn(uint64_t unused)
{
	uint64_t op, i, j;

	mmu_guest_install_catcher();
	rng = ch.seed | 1;
	for (i = 0; i < NSLOT; i++)
		win_page[i] = -1;
	for (j = 0; j < NLARGE; j++)
		for (i = 0; i < 512; i++)
			lpt_page[j][i] = -1;
	for (op = 0; op < ch.ops; op++) {
		uint64_t k = rnd() % 100, r = rnd();

		if (k < 30) {
			op_window(op, r);
		} else if (k < 40) {
			op_large(op, r);
		} else if (k < 99) {
			/* Access a random mapped-or-not address. */
			uint64_t va = (r & 1) ?
				WIN_VA + ((r >> 1) % (NSLOT * 4096)) :
				LARGE_VA + ((r >> 1) % (NLARGE << 21));

			check_access(op, va, (r >> 60) & 1);
		} else {
			reload_cr3();
		}
		if ((op & 8191) == 8191)
			GUEST_SYNC(op + 1);
	}
}

FIXTURE(churn) {
	int unused;
};

FIXTURE_SETUP(churn)
{
}

FIXTURE_TEARDOWN(churn)
{
}

TEST_F_TIMEOUT(churn, random, 300)
{
	static struct trapvm_vcpu_stats st;
	struct tvm *vm = tvm_create(32 * TVM_MiB);
	uint64_t p, w, i, t0, bad_stamps = 0, cr3 = TVM_PT_GPA;
	struct ucall uc;
	char why[2048];
	uint64_t *pd;

	log_mark = mmu_host_log_mark();
	ch.ops = tvm_env_u64("MMU_CHURN_OPS", 100000);
	ch.seed = tvm_env_u64("MMU_CHURN_SEED", 0x2545f4914f6cdd1dULL);
	vm->next_free = (vm->next_free + 0x1fffff) & ~0x1fffffULL;
	ch.pool = tvm_alloc(vm, NPAGE);
	for (p = 0; p < NPAGE; p++)
		for (w = 0; w < 512; w++)
			((uint64_t *)tvm_gpa(vm, ch.pool + p * 4096))[w] =
				stamp(p, w);
	/* The window's page tables (empty) and the 2 MiB slots' PD. */
	tvm_map(vm, WIN_VA, 0, 0);
	tvm_map(vm, WIN_VA + (NSLOT - 1) * 4096ULL, 0, 0);
	ch.win_pt[0] = mmu_entry_gpa(vm, cr3, WIN_VA, 1);
	ch.win_pt[1] = mmu_entry_gpa(vm, cr3, WIN_VA + 512 * 4096, 1);
	ASSERT_NE(0, ch.win_pt[0]);
	ASSERT_NE(0, ch.win_pt[1]);
	ch.win_pt[0] &= ~4095ULL;
	ch.win_pt[1] &= ~4095ULL;
	tvm_map(vm, LARGE_VA, 0, 0);
	ch.large_pd = mmu_entry_gpa(vm, cr3, LARGE_VA, 2);
	ASSERT_NE(0, ch.large_pd);
	ch.large_pd &= ~4095ULL;
	pd = tvm_gpa(vm, ch.large_pd);
	pd[0] = 0;			/* drop tvm_map's page table */
	for (i = 0; i < NLARGE; i++) {
		ch.lpt_gpa[i] = tvm_alloc(vm, 1);
		tvm_map(vm, LPT_VA + i * 4096, ch.lpt_gpa[i], PTE_P | PTE_W);
	}
	tvm_sync_to_guest(vm, ch);
	mmu_kernel_only(vm);

	tvm_enter(vm, guest_churn, 0);
	t0 = tvm_now_ns();
	for (;;) {
		uint64_t cmd = tvm_run_ucall(vm, &uc);

		if (cmd == UCALL_SYNC)
			continue;
		ASSERT_EQ(UCALL_DONE, cmd) TH_LOG("%s", tvm_describe(vm, &uc));
		break;
	}
	t0 = tvm_now_ns() - t0;
	tvm_sync_from_guest(vm, ch);
	ASSERT_EQ(0, ioctl(vm->vcpu, TRAPVM_GET_STATS, &st));
	printf("# %llu ops in %llu ms: %llu accesses (%llu faulted as expected), %llu INVLPG, %llu CR3 loads; module: %llu hidden faults, %llu injected #PF, %llu shadow pages created\n",
	       (unsigned long long)ch.ops,
	       (unsigned long long)t0 / 1000000,
	       (unsigned long long)ch.accesses,
	       (unsigned long long)ch.faults,
	       (unsigned long long)ch.invlpgs,
	       (unsigned long long)ch.cr3_loads,
	       (unsigned long long)st.count[TRAPVM_STAT_MMU_HIDDEN_PF],
	       (unsigned long long)st.count[TRAPVM_STAT_INJ_PF],
	       (unsigned long long)st.count[TRAPVM_STAT_MMU_SHADOW_ALLOC]);
	for (i = 0; i < ch.nbad && i < MAX_BAD; i++)
		printf("#   mismatch: op %llu va %#llx want %#llx got %#llx (%s)\n",
		       (unsigned long long)ch.bad[i].op,
		       (unsigned long long)ch.bad[i].va,
		       (unsigned long long)ch.bad[i].want,
		       (unsigned long long)ch.bad[i].got,
		       ch.bad[i].kind == 1 ? "unexpected fault" :
		       ch.bad[i].kind == 2 ? "wrong bytes" :
		       ch.bad[i].kind == 3 ? "wrong fault" : "wrong CR2");
	EXPECT_EQ(0, ch.nbad);
	/* Every stamp intact: writes only ever wrote the stamp back. */
	for (p = 0; p < NPAGE; p++)
		for (w = 0; w < 512; w++)
			bad_stamps += ((uint64_t *)tvm_gpa(vm, ch.pool +
					p * 4096))[w] != stamp(p, w);
	EXPECT_EQ(0, bad_stamps);
	EXPECT_TRUE(mmu_host_clean_since(log_mark, why, sizeof(why)))
		TH_LOG("%s", why);
	tvm_free(vm);
}

TEST_HARNESS_MAIN
