// SPDX-License-Identifier: GPL-2.0
/*
 * mmu_roots_test: 64 guest address spaces switched round-robin.
 *
 * Each space is its own PML4 (a copy of the library's, so the guest's
 * code, stacks and tables are mapped in all of them) with its own
 * PDPT/PD/PT chain for one virtual address, TEST_VA, which maps a page
 * of its own: the same VA reads different bytes in every space.  The
 * guest loads each CR3 in turn, many rounds, and checks the stamp it
 * reads at TEST_VA (and writes it back); between rounds it remaps
 * TEST_VA in spaces that are not current, through a supervisor alias of
 * their page tables, so a cached root that missed the write would show.
 * No INVLPG is needed for that: loading CR3 flushes every non-global
 * translation (SDM Vol. 3A 4.10.4.1).
 *
 * Correctness is asserted; the root-cache counters (mmu_root_cache_hits,
 * mmu_root_cache_misses, mmu_cr3_loads) are printed, not asserted.
 * MMU_ROOTS_ROUNDS sets the number of rounds (default 200).
 *
 *   tools/testhost/run -- selftests/trapvm/mmu_roots_test
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

#define NSPACE		64
#define NPAGE		(2 * NSPACE)
#define TEST_VA		0x190000345000ULL	/* PML4 slot 50 */
#define PT_ALIAS	0x1a0000000000ULL	/* the spaces' PTs, RW */

struct roots {
	uint64_t cr3[NSPACE];
	uint64_t pool;			/* GPA of page 0 */
	uint64_t rounds, seed;
	/* results */
	uint64_t loads, checks, remaps, nbad;
	uint64_t bad_space, bad_round, bad_want, bad_got;
};

static struct roots rt;
static int32_t cur_page[NSPACE];	/* guest: what TEST_VA maps */

static inline uint64_t stamp(uint64_t page, uint64_t word)
{
	return 0x524f4f5400000000ULL ^ (page << 16) ^ word;
}

static void guest_roots(uint64_t unused)
{
	uint64_t cr3_0 = mmu_read_cr(3), rng = rt.seed | 1;
	uint64_t round, i, word;

	for (i = 0; i < NSPACE; i++)
		cur_page[i] = i;
	for (round = 0; round < rt.rounds; round++) {
		for (i = 0; i < NSPACE; i++) {
			uint64_t v, want;

			mmu_write_cr(3, rt.cr3[i]);
			rt.loads++;
			rng ^= rng << 13;
			rng ^= rng >> 7;
			rng ^= rng << 17;
			word = rng % 512;
			v = *(volatile uint64_t *)(TEST_VA + word * 8);
			want = stamp(cur_page[i], word);
			rt.checks++;
			if (v != want) {
				if (!rt.nbad) {
					rt.bad_space = i;
					rt.bad_round = round;
					rt.bad_want = want;
					rt.bad_got = v;
				}
				rt.nbad++;
			}
			*(volatile uint64_t *)(TEST_VA + word * 8) = want;
		}
		/* Remap TEST_VA in a few spaces that are not current. */
		for (i = 0; i < 4; i++) {
			uint64_t s = (rng >> (8 * i)) % (NSPACE - 1);
			volatile uint64_t *pte = (volatile uint64_t *)
				(PT_ALIAS + s * 4096) + ((TEST_VA >> 12) & 511);

			cur_page[s] = (rng >> (8 * i + 32)) % NPAGE;
			*pte = (rt.pool + cur_page[s] * 4096ULL) | PTE_P |
			       PTE_W;
			rt.remaps++;
		}
		if ((round & 7) == 7)
			GUEST_SYNC(round);
	}
	mmu_write_cr(3, cr3_0);
}

FIXTURE(roots) {
	int unused;
};

FIXTURE_SETUP(roots)
{
}

FIXTURE_TEARDOWN(roots)
{
}

TEST_F_TIMEOUT(roots, round_robin_64, 180)
{
	static struct trapvm_vcpu_stats b, a;
	struct tvm *vm = tvm_create(32 * TVM_MiB);
	uint64_t i, w, t0, pt[NSPACE], pml4_base = TVM_PT_GPA;
	struct ucall uc;
	char why[2048];

	log_mark = mmu_host_log_mark();
	rt.rounds = tvm_env_u64("MMU_ROOTS_ROUNDS", 200);
	rt.seed = 0x9e3779b97f4a7c15ULL;
	rt.pool = tvm_alloc(vm, NPAGE);
	for (i = 0; i < NPAGE; i++)
		for (w = 0; w < 512; w++)
			((uint64_t *)tvm_gpa(vm, rt.pool + i * 4096))[w] =
				stamp(i, w);
	/* Each space: PDPT -> PD -> PT -> its page, from RAM pages. */
	for (i = 0; i < NSPACE; i++) {
		uint64_t pdpt = tvm_alloc(vm, 3), pd = pdpt + 4096;

		pt[i] = pd + 4096;
		((uint64_t *)tvm_gpa(vm, pdpt))[(TEST_VA >> 30) & 511] =
			pd | PTE_P | PTE_W;
		((uint64_t *)tvm_gpa(vm, pd))[(TEST_VA >> 21) & 511] =
			pt[i] | PTE_P | PTE_W;
		((uint64_t *)tvm_gpa(vm, pt[i]))[(TEST_VA >> 12) & 511] =
			(rt.pool + i * 4096) | PTE_P | PTE_W;
		tvm_map(vm, PT_ALIAS + i * 4096, pt[i], PTE_P | PTE_W);
		rt.cr3[i] = pdpt;	/* for now: the PDPT, see below */
	}
	mmu_kernel_only(vm);
	/* Then the PML4 copies, once the shared mappings are complete. */
	for (i = 0; i < NSPACE; i++) {
		uint64_t pml4 = tvm_alloc(vm, 1);
		uint64_t *p = tvm_gpa(vm, pml4);

		memcpy(p, tvm_gpa(vm, pml4_base), 4096);
		p[(TEST_VA >> 39) & 511] = rt.cr3[i] | PTE_P | PTE_W;
		rt.cr3[i] = pml4;
	}
	tvm_sync_to_guest(vm, rt);

	ASSERT_EQ(0, ioctl(vm->vcpu, TRAPVM_GET_STATS, &b));
	tvm_enter(vm, guest_roots, 0);
	t0 = tvm_now_ns();
	for (;;) {
		uint64_t cmd = tvm_run_ucall(vm, &uc);

		if (cmd == UCALL_SYNC)
			continue;
		ASSERT_EQ(UCALL_DONE, cmd) TH_LOG("%s", tvm_describe(vm, &uc));
		break;
	}
	t0 = tvm_now_ns() - t0;
	ASSERT_EQ(0, ioctl(vm->vcpu, TRAPVM_GET_STATS, &a));
	tvm_sync_from_guest(vm, rt);
	printf("# %llu rounds x %d spaces in %llu ms: %llu CR3 loads, %llu checks, %llu remaps of non-current spaces\n",
	       (unsigned long long)rt.rounds, NSPACE,
	       (unsigned long long)t0 / 1000000,
	       (unsigned long long)rt.loads, (unsigned long long)rt.checks,
	       (unsigned long long)rt.remaps);
#define D(s) ((unsigned long long)(a.count[TRAPVM_STAT_##s] - \
				   b.count[TRAPVM_STAT_##s]))
	printf("# module: mmu_cr3_loads %llu, mmu_root_cache_hits %llu, mmu_root_cache_misses %llu, mmu_hidden_faults %llu, mmu_shadow_pages_created %llu, mmu_shadow_pages_zapped %llu, mmu_pt_writes_emulated %llu\n",
	       D(MMU_CR3_LOADS), D(MMU_ROOT_HIT), D(MMU_ROOT_MISS),
	       D(MMU_HIDDEN_PF), D(MMU_SHADOW_ALLOC), D(MMU_SHADOW_FREE),
	       D(MMU_PT_WRITES));
#undef D
	EXPECT_EQ(rt.rounds * NSPACE, rt.checks);
	EXPECT_EQ(0, rt.nbad)
		TH_LOG("first bad: space %llu round %llu: read %#llx, want %#llx",
		       (unsigned long long)rt.bad_space,
		       (unsigned long long)rt.bad_round,
		       (unsigned long long)rt.bad_got,
		       (unsigned long long)rt.bad_want);
	/* The stamps are intact (the guest wrote back what it read). */
	for (i = 0, w = 0; i < NPAGE * 512; i++)
		w += ((uint64_t *)tvm_gpa(vm, rt.pool))[i] !=
		     stamp(i / 512, i % 512);
	EXPECT_EQ(0, w);
	EXPECT_TRUE(mmu_host_clean_since(log_mark, why, sizeof(why)))
		TH_LOG("%s", why);
	tvm_free(vm);
}

TEST_HARNESS_MAIN
