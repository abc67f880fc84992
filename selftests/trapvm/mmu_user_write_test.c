// SPDX-License-Identifier: GPL-2.0
/*
 * mmu_user_write_test: the VMM writes the guest's page tables through its
 * mmap() of guest RAM while the guest uses them.
 *
 * The shadow MMU write-protects guest page tables against the guest; a
 * write by userspace goes through a different mapping, so the module
 * makes the user mappings of shadowed tables read-only and drops the
 * shadow of a table before a user write to it lands
 * (Documentation/shadow-mmu.rst, "Userspace writes").  The guest must
 * then see a VMM's rewrite of its tables at once, as it sees its own
 * writes: no INVLPG, no register change between the RUNs.
 *
 * The oracle is the bytes of the pages: every page of the pool holds its
 * own stamp, and a read through TEST_VA must return the stamp of the
 * page the guest's tables map at that moment.
 *
 *   tools/testhost/run -- selftests/trapvm/mmu_user_write_test
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include <linux/trapvm.h>
#include <linux/trapvm_stats.h>

#include "kselftest_harness.h"
#include "mmu_guest.h"

#define TEST_VA		0x1c0000123000ULL	/* PML4 slot 56 */
#define NPAGE		8
#define ROUNDS		200
#define RACE_READS	200000ULL
#define RACE_FLIPS	2000ULL
#define RACE_CAP	200000000ULL

static long long log_mark;

static inline uint64_t stamp(uint64_t page)
{
	return 0x5553525752000000ULL | page;
}

/* ---- guest ---- */

/* Read TEST_VA and report what was there, @rounds times. */
static void guest_reader(uint64_t rounds)
{
	uint64_t i;

	for (i = 0; i < rounds; i++)
		GUEST_SYNC(*(volatile uint64_t *)TEST_VA);
	GUEST_DONE();
}

/* The flipper thread's count, written into the guest's copy by the host. */
static volatile uint64_t guest_flips;

/*
 * Read TEST_VA while another host thread flips its PTE, at least
 * RACE_READS times and until the host has flipped @min_flips times (or
 * RACE_CAP reads went by); report how many reads saw neither stamp and
 * whether the cap ended it, then read once more.
 */
static void guest_racer(uint64_t min_flips)
{
	uint64_t i, v, bad = 0, first_bad = 0;

	for (i = 0; i < RACE_CAP; i++) {
		v = *(volatile uint64_t *)TEST_VA;
		if (v != stamp(0) && v != stamp(1)) {
			if (!bad)
				first_bad = v;
			bad++;
		}
		if (i >= RACE_READS && guest_flips >= min_flips)
			break;
	}
	guest_ucall(UCALL_SYNC, __FILE__, __LINE__, NULL, bad, first_bad,
		    i, 0);
	GUEST_SYNC(*(volatile uint64_t *)TEST_VA);
	GUEST_DONE();
}

/* ---- host ---- */

struct pool {
	uint64_t gpa[NPAGE];
	uint64_t pt2;		/* a second PT that maps TEST_VA to page 1 */
};

static void pool_init(struct tvm *vm, struct pool *p)
{
	uint64_t *pte, *pt2;
	int i;

	for (i = 0; i < NPAGE; i++) {
		uint64_t *page;
		int w;

		p->gpa[i] = tvm_alloc(vm, 1);
		page = tvm_gpa(vm, p->gpa[i]);
		for (w = 0; w < 512; w++)
			page[w] = stamp(i);
	}
	tvm_map(vm, TEST_VA, p->gpa[0], PTE_P | PTE_W);

	/* A copy of TEST_VA's page table, mapping it to page 1 instead. */
	p->pt2 = tvm_alloc(vm, 1);
	pt2 = tvm_gpa(vm, p->pt2);
	pte = tvm_pte(vm, TEST_VA, false);
	memcpy(pt2, (uint64_t *)((uintptr_t)pte & ~4095UL), 4096);
	pt2[(TEST_VA >> 12) & 511] = p->gpa[1] | PTE_P | PTE_W;
}

/* The library's guest runs on the tables at TVM_PT_GPA. */
static uint64_t *pde_of(struct tvm *vm, uint64_t va)
{
	return tvm_gpa(vm, mmu_entry_gpa(vm, TVM_PT_GPA, va, 2));
}

FIXTURE(user_write) {
	struct tvm *vm;
	struct pool pool;
};

FIXTURE_SETUP(user_write)
{
	log_mark = mmu_host_log_mark();
	self->vm = tvm_create(16 * TVM_MiB);
	pool_init(self->vm, &self->pool);
}

FIXTURE_TEARDOWN(user_write)
{
	char why[2048];

	tvm_free(self->vm);
	EXPECT_TRUE(mmu_host_clean_since(log_mark, why, sizeof(why)))
		TH_LOG("%s", why);
}

/*
 * Between two reads the VMM points TEST_VA's PTE at another page of the
 * pool; every fourth round it swaps the whole page table under TEST_VA
 * (the PDE) instead.  No INVLPG, no register change.
 */
TEST_F_TIMEOUT(user_write, rewrite_seen_at_once, 120)
{
	struct tvm *vm = self->vm;
	struct pool *p = &self->pool;
	uint64_t *pte = tvm_pte(vm, TEST_VA, false);
	uint64_t *pde = pde_of(vm, TEST_VA);
	uint64_t pt1 = *pde & PTE_ADDR, want = 0, bad = 0;
	struct ucall uc;
	int r;

	tvm_enter(vm, guest_reader, ROUNDS);
	for (r = 0; r < ROUNDS; r++) {
		TVM_RUN_EXPECT(vm, &uc, UCALL_SYNC);
		if (uc.args[0] != stamp(want)) {
			if (!bad++)
				TH_LOG("round %d: read %#llx, want page %llu",
				       r, (unsigned long long)uc.args[0],
				       (unsigned long long)want);
		}
		if (r % 4 == 3) {
			/*
			 * Swap the page table under TEST_VA, after pointing
			 * the one coming in at page 1 (pt2) or 2 (pt1).
			 */
			bool to_pt2 = (*pde & PTE_ADDR) == pt1;

			if (to_pt2)
				((uint64_t *)tvm_gpa(vm, p->pt2))
					[(TEST_VA >> 12) & 511] =
					p->gpa[1] | PTE_P | PTE_W;
			else
				*pte = p->gpa[2] | PTE_P | PTE_W;
			*pde = (to_pt2 ? p->pt2 : pt1) | PTE_P | PTE_W;
			want = to_pt2 ? 1 : 2;
		} else {
			want = (want + 1 + r) % NPAGE;
			if ((*pde & PTE_ADDR) == pt1)
				*pte = p->gpa[want] | PTE_P | PTE_W;
			else
				((uint64_t *)tvm_gpa(vm, p->pt2))
					[(TEST_VA >> 12) & 511] =
					p->gpa[want] | PTE_P | PTE_W;
		}
	}
	TVM_RUN_DONE(vm);
	EXPECT_EQ(0, bad);
}

struct flipper {
	volatile uint64_t *pte;
	volatile uint64_t *count;	/* guest_flips in guest RAM */
	uint64_t val[2];
	volatile int stop;
	unsigned long flips;
};

static void *flip_pte(void *arg)
{
	struct flipper *f = arg;

	while (!f->stop) {
		__atomic_store_n(f->pte, f->val[f->flips & 1],
				 __ATOMIC_SEQ_CST);
		f->flips++;
		*f->count = f->flips;
	}
	return NULL;
}

/*
 * A host thread flips TEST_VA's PTE between pages 0 and 1 while the guest
 * reads it (until RACE_FLIPS flips are done): every read returns one of
 * the two stamps, never another page
 * (a stale shadow of a page the tables no longer map).  Afterwards the
 * VMM maps page 5 and the guest's next read returns it.
 */
TEST_F_TIMEOUT(user_write, concurrent_flips, 300)
{
	struct tvm *vm = self->vm;
	struct pool *p = &self->pool;
	struct flipper f = {
		.pte = tvm_pte(vm, TEST_VA, false),
		.val = { p->gpa[0] | PTE_P | PTE_W, p->gpa[1] | PTE_P | PTE_W },
	};
	struct ucall uc;
	pthread_t t;

	f.count = tvm_gva(vm, (uint64_t)&guest_flips);
	tvm_enter(vm, guest_racer, RACE_FLIPS);
	ASSERT_EQ(0, pthread_create(&t, NULL, flip_pte, &f));
	TVM_RUN_EXPECT(vm, &uc, UCALL_SYNC);
	f.stop = 1;
	pthread_join(t, NULL);
	TH_LOG("%lu PTE flips by the VMM during %llu guest reads", f.flips,
	       (unsigned long long)uc.args[2]);
	EXPECT_GT(RACE_CAP, uc.args[2])
		TH_LOG("the flipper thread did not get %llu flips done",
		       RACE_FLIPS);
	EXPECT_EQ(0, uc.args[0])
		TH_LOG("first bad read %#llx",
		       (unsigned long long)uc.args[1]);

	*f.pte = p->gpa[5] | PTE_P | PTE_W;
	TVM_RUN_EXPECT(vm, &uc, UCALL_SYNC);
	EXPECT_EQ(stamp(5), uc.args[0]);
	TVM_RUN_DONE(vm);
}

/*
 * User writes to pages that are not guest page tables cost the shadow
 * nothing: no shadow page is zapped for them.
 */
TEST_F_TIMEOUT(user_write, data_writes_keep_shadow, 120)
{
	struct tvm *vm = self->vm;
	struct pool *p = &self->pool;
	static struct trapvm_vcpu_stats b, a;
	struct ucall uc;
	int r, i;

	tvm_enter(vm, guest_reader, ROUNDS);
	TVM_RUN_EXPECT(vm, &uc, UCALL_SYNC);
	ASSERT_EQ(0, ioctl(vm->vcpu, TRAPVM_GET_STATS, &b));
	for (r = 1; r < ROUNDS; r++) {
		uint64_t *page = tvm_gpa(vm, p->gpa[0]);

		/* Rewrite the data page TEST_VA maps, same stamp. */
		for (i = 0; i < 512; i++)
			page[i] = stamp(0);
		TVM_RUN_EXPECT(vm, &uc, UCALL_SYNC);
		EXPECT_EQ(stamp(0), uc.args[0]);
	}
	ASSERT_EQ(0, ioctl(vm->vcpu, TRAPVM_GET_STATS, &a));
	TVM_RUN_DONE(vm);
	EXPECT_EQ(0, a.count[TRAPVM_STAT_MMU_SHADOW_FREE] -
		     b.count[TRAPVM_STAT_MMU_SHADOW_FREE]);
}

TEST_HARNESS_MAIN
