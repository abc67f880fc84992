// SPDX-License-Identifier: GPL-2.0
/*
 * pv_mmu_bench: page-table updates through the trap path and through the
 * TRAPVM_HC_MMU_UPDATE batch hypercall, measured.
 *
 * The guest maps NPAGES pages through one page table, touches them all
 * (so the shadow holds them and the table is write-tracked), then changes
 * every PTE the way fork write-protects a parent (clear R/W), and back:
 * once with plain stores (each one an emulated page-table write until
 * write-flood detection unshadows the table), once with one hypercall of
 * NPAGES updates.  After each change it reloads CR3 and touches every
 * page again.  Cycles (guest RDTSC), exits and the MMU counters of each
 * phase are printed, not asserted; the guest asserts that every update
 * took effect (a write to a write-protected page faults) and that the
 * hypercall validates its arguments.
 *
 *   tools/testhost/run -- selftests/trapvm/pv_mmu_bench
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>

#include <linux/trapvm.h>
#include <linux/trapvm_guest.h>
#include <linux/trapvm_stats.h>

#include "kselftest_harness.h"
#include "trapvm_test.h"

#define NPAGES		512
#define DATA_VA		0x40000000ULL	/* NPAGES pages, one PT */
#define LIST_VA		0x40400000ULL	/* the update list, 2 pages */
#define ROUNDS		4

struct bench {
	uint64_t pt_gpa;		/* the PT of DATA_VA (identity mapped) */
	uint64_t list_gpa;
	uint64_t cycles[2];		/* trap, batch: per round */
	int64_t bad_ret;
};

static struct bench bp;

static long guest_hc_update(uint64_t list_gpa, uint64_t count)
{
	long ret;

	asm volatile("vmcall" : "=a"(ret)
		     : "a"((uint64_t)TRAPVM_HC_MMU_UPDATE), "b"(list_gpa),
		       "c"(count) : "memory");
	return ret;
}

static void reload_cr3(void)
{
	asm volatile("mov %%cr3, %%rax; mov %%rax, %%cr3" : : : "rax",
		     "memory");
}

static void touch_all(bool write)
{
	volatile uint64_t *p = (volatile uint64_t *)DATA_VA;
	int i;

	for (i = 0; i < NPAGES; i++) {
		if (write)
			p[i * 512] = i;
		else
			(void)p[i * 512];
	}
}

static void set_rw_trap(volatile uint64_t *pte, bool rw)
{
	int i;

	for (i = 0; i < NPAGES; i++)
		pte[i] = rw ? pte[i] | PTE_W : pte[i] & ~PTE_W;
}

static void set_rw_batch(volatile uint64_t *pte, bool rw)
{
	struct trapvm_mmu_update *u = (struct trapvm_mmu_update *)LIST_VA;
	long ret;
	int i;

	for (i = 0; i < NPAGES; i++) {
		u[i].pte_gpa = bp.pt_gpa + 8 * i;
		u[i].value = rw ? pte[i] | PTE_W : pte[i] & ~PTE_W;
	}
	ret = guest_hc_update(bp.list_gpa, NPAGES);
	GUEST_ASSERT_EQ(ret, NPAGES);
}

/* A write to DATA_VA faults exactly when R/W was cleared. */
static void check_rw(bool rw)
{
	asm volatile(ASM_SAFE("movq $1, (%[p])") : ASM_SAFE_OUT
		     : [p] "r"(DATA_VA + 4096 * (NPAGES - 1))
		     : ASM_SAFE_CLOBBERS);
	if (rw)
		GUEST_ASSERT_NO_EX();
	else
		GUEST_ASSERT_EX(PF_VECTOR, 3);
}

static void guest_bench(uint64_t unused)
{
	volatile uint64_t *pte = (volatile uint64_t *)bp.pt_gpa;
	uint64_t t0;
	int r, path;

	/* Validation: nothing is done on a bad argument. */
	bp.bad_ret = guest_hc_update(bp.list_gpa + 4, 1);
	GUEST_ASSERT_EQ(bp.bad_ret, -EINVAL);
	GUEST_ASSERT_EQ(guest_hc_update(bp.list_gpa, NPAGES + 1), -E2BIG);
	GUEST_ASSERT_EQ(guest_hc_update(1ULL << 40, 1), -EFAULT);

	touch_all(true);
	GUEST_SYNC(0);
	for (path = 0; path < 2; path++) {
		for (r = 0; r < ROUNDS; r++) {
			t0 = guest_rdtsc();
			if (path == 0)
				set_rw_trap(pte, false);
			else
				set_rw_batch(pte, false);
			reload_cr3();
			touch_all(false);
			check_rw(false);
			if (path == 0)
				set_rw_trap(pte, true);
			else
				set_rw_batch(pte, true);
			reload_cr3();
			touch_all(true);
			check_rw(true);
			bp.cycles[path] += guest_rdtsc() - t0;
		}
		GUEST_SYNC(path + 1);
	}
}

static uint64_t stat(const struct trapvm_vcpu_stats *a,
		     const struct trapvm_vcpu_stats *b, int i)
{
	return b->count[i] - a->count[i];
}

TEST(pv_mmu_bench)
{
	static const char *const name[2] = { "trap per PTE", "batch hypercall" };
	struct trapvm_vcpu_stats st[3];
	struct tvm *vm = tvm_create(0);
	uint64_t data, list, khz;
	struct bench *gbp;
	struct ucall uc;
	int i;

	data = tvm_alloc(vm, NPAGES);
	list = tvm_alloc(vm, 2);
	for (i = 0; i < NPAGES; i++)
		tvm_map(vm, DATA_VA + 4096ULL * i, data + 4096ULL * i,
			PTE_P | PTE_W);
	tvm_map(vm, LIST_VA, list, PTE_P | PTE_W);
	tvm_map(vm, LIST_VA + 4096, list + 4096, PTE_P | PTE_W);
	gbp = tvm_gva(vm, (uint64_t)&bp);
	/* Page-table pages are identity mapped: the PTE's GPA is its VA. */
	gbp->pt_gpa = (uint8_t *)tvm_pte(vm, DATA_VA, false) - vm->ram;
	gbp->list_gpa = list;
	tvm_enter(vm, guest_bench, 0);

	TVM_RUN_EXPECT(vm, &uc, UCALL_SYNC);
	ASSERT_EQ(0, ioctl(vm->vcpu, TRAPVM_GET_STATS, &st[0]));
	for (i = 0; i < 2; i++) {
		TVM_RUN_EXPECT(vm, &uc, UCALL_SYNC);
		ASSERT_EQ(0, ioctl(vm->vcpu, TRAPVM_GET_STATS, &st[i + 1]));
	}
	TVM_RUN_DONE(vm);
	khz = tvm_tsc_khz(vm);
	for (i = 0; i < 2; i++) {
		uint64_t ups = 2ULL * ROUNDS * NPAGES;
		uint64_t cyc = gbp->cycles[i];

		TH_LOG("%-16s %llu PTE updates: %llu cycles/update (%llu ns), %llu exits, %llu PT writes emulated, %llu flooded, %llu hypercall updates, %llu hidden faults",
			       name[i], (unsigned long long)ups,
			       (unsigned long long)(cyc / ups),
			       (unsigned long long)(khz ? cyc * 1000000 /
						    khz / ups : 0),
			       (unsigned long long)stat(&st[i], &st[i + 1],
							TRAPVM_STAT_ENTRIES),
			       (unsigned long long)stat(&st[i], &st[i + 1],
							TRAPVM_STAT_MMU_PT_WRITES),
			       (unsigned long long)stat(&st[i], &st[i + 1],
							TRAPVM_STAT_MMU_FLOODED),
			       (unsigned long long)stat(&st[i], &st[i + 1],
							TRAPVM_STAT_MMU_HC_UPDATES),
			       (unsigned long long)stat(&st[i], &st[i + 1],
							TRAPVM_STAT_MMU_HIDDEN_PF));
	}
	tvm_free(vm);
}

TEST_HARNESS_MAIN
