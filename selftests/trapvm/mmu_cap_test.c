// SPDX-License-Identifier: GPL-2.0
/*
 * mmu_cap_test: a guest that builds far more page tables than the shadow
 * memory cap allows only slows itself down; the host never gives it more
 * than the cap.
 *
 * The test sets shadow_max_pages (sysfs) to a small cap, MMU_CAP_PAGES
 * (default 256; MMU_CAP_SYSFS writes another value while the assertions
 * keep MMU_CAP_PAGES, to see what they catch on a module that does not
 * cap), and restores the old value in the teardown, which the
 * harness runs after a failed assertion too.  The guest's address space
 * gets MMU_CAP_TABLES (default 4096) extra 4 KiB pages, each mapped
 * through its own page table, in a sparse region over PML4 slots 64 and
 * up: 64 page tables per page directory (every 8th entry), 16 page
 * directories per PDPT (every 32nd entry), one PDPT per PML4 slot.  Each
 * page is stamped with its own pattern by the test side.  The guest reads
 * every word of every page through its mapping, MMU_CAP_PASSES (default
 * 4) passes, forward and backward, counts the words that differ from the
 * stamp and reports after each pass (GUEST_SYNC).
 *
 * Shadowing all of it at once would take two pages per page table (a PT
 * shadow page counts twice, for its rmap) plus one per PD and PDPT:
 * about MMU_CAP_TABLES * 8 KiB.  Asserted:
 *
 * - zero mismatches (the oracle: the stamped bytes), every word read;
 * - mmu_shadow_pages_created >= MMU_CAP_TABLES > cap: the guest really
 *   needed more shadow pages than the cap;
 * - mmu_shadow_pages_reclaimed > 0: the cap was hit and reclaim ran;
 * - mmu_shadow_pages_live <= cap at every checkpoint (after each pass),
 *   with no slack: kmod/shadow/reclaim.c makes room for the worst case
 *   *before* allocating (5 pages before a fault, which allocates at most
 *   a PDPT, a PD and a PT = 4; 3 before a root switch: a PML5 and two
 *   PML4s), so the count stays at or below the cap as long as the roots
 *   alone fit, which they do with one vCPU and a cap of 256.  Pages zapped
 *   by reclaim are uncounted when zapped and freed at the unlock, before
 *   the vCPU returns to userspace, so at a checkpoint they are gone;
 * - independently of the module's own counting: /proc/meminfo MemAvailable
 *   never drops by more than cap * 8 KiB + MMU_CAP_SLACK_KB (default
 *   8192) below its value right before the guest runs.  The guest RAM is
 *   already resident then (the test side wrote every page and table), so
 *   the drop is what the module allocates for the guest's page tables:
 *   cap pages, counted generously twice for the shadow page structures,
 *   hashes and rmap.  Both that bound and the uncapped figure (tables
 *   * 8 KiB) are printed: with the defaults 10 MiB against 32 MiB, so an
 *   uncapped shadow fails this check too (MMU_CAP_SYSFS=1000000 shows it,
 *   with the live and reclaim checks; MMU_CAP_PAGES=1000000 fails the
 *   reclaim check);
 * - the host's kernel log is clean.
 *
 *   tools/testhost/run -- selftests/trapvm/mmu_cap_test
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include <linux/trapvm.h>
#include <linux/trapvm_stats.h>

#include "kselftest_harness.h"
#include "mmu_guest.h"

#define CAP_PARAM	"/sys/module/trapvm/parameters/shadow_max_pages"
#define MAX_TABLES	(64 * 1024)	/* PML4 slots 64..127 */
#define PER_PD		64
#define PER_PDPT	(16 * PER_PD)

struct cap {
	uint64_t tables, passes;
	/* results */
	uint64_t reads, nbad, bad_page, bad_word, bad_want, bad_got;
};

static struct cap cp;

static inline uint64_t stamp(uint64_t page, uint64_t word)
{
	return 0x4341505300000000ULL ^ (page << 12) ^ (word * 0x9e37ULL);
}

/* The virtual address of page @i, in a page table of its own. */
static inline uint64_t page_va(uint64_t i)
{
	uint64_t l4 = 64 + i / PER_PDPT;
	uint64_t l3 = (i / PER_PD) % 16 * 32;
	uint64_t l2 = i % PER_PD * 8;
	uint64_t l1 = i * 7 % 512;

	return l4 << 39 | l3 << 30 | l2 << 21 | l1 << 12;
}

/* One 8-byte load that the compiler can neither merge nor vectorise. */
static inline uint64_t guest_read64(uint64_t va)
{
	uint64_t v;

	asm volatile("movq (%1), %0" : "=r"(v) : "r"(va) : "memory");
	return v;
}

static void guest_cap(uint64_t unused)
{
	uint64_t pass, n, i, w;

	for (pass = 0; pass < cp.passes; pass++) {
		for (n = 0; n < cp.tables; n++) {
			uint64_t va;

			i = pass & 1 ? cp.tables - 1 - n : n;
			va = page_va(i);
			for (w = 0; w < 512; w++) {
				uint64_t v = guest_read64(va + w * 8);
				uint64_t want = stamp(i, w);

				cp.reads++;
				if (v == want)
					continue;
				if (!cp.nbad) {
					cp.bad_page = i;
					cp.bad_word = w;
					cp.bad_want = want;
					cp.bad_got = v;
				}
				cp.nbad++;
			}
		}
		GUEST_SYNC(pass);
	}
}

static long read_param(void)
{
	FILE *f = fopen(CAP_PARAM, "r");
	long v = -1;

	if (!f)
		return -1;
	if (fscanf(f, "%ld", &v) != 1)
		v = -1;
	fclose(f);
	return v;
}

static int write_param(unsigned long v)
{
	FILE *f = fopen(CAP_PARAM, "w");
	int ret;

	if (!f)
		return -errno;
	ret = fprintf(f, "%lu\n", v) < 0 ? -EIO : 0;
	if (fclose(f) && !ret)
		ret = -errno;
	return ret;
}

/* MemAvailable in KiB, or -1. */
static long long mem_available_kb(void)
{
	FILE *f = fopen("/proc/meminfo", "r");
	char line[256];
	long long kb = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "MemAvailable: %lld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

FIXTURE(cap) {
	long saved;
};

FIXTURE_SETUP(cap)
{
	self->saved = read_param();
}

FIXTURE_TEARDOWN(cap)
{
	if (self->saved > 0 && write_param(self->saved))
		fprintf(stderr, "# could not restore %s to %ld\n", CAP_PARAM,
			self->saved);
}

TEST_F_TIMEOUT(cap, many_page_tables, 240)
{
	static struct trapvm_vcpu_stats b, a;
	uint64_t cap_pages = tvm_env_u64("MMU_CAP_PAGES", 256);
	uint64_t set_pages = tvm_env_u64("MMU_CAP_SYSFS", cap_pages);
	uint64_t slack_kb = tvm_env_u64("MMU_CAP_SLACK_KB", 8192);
	uint64_t i, w, t0, mem, pdpt = 0, pd = 0, pt, data, live, max_live = 0;
	long long avail0, avail, max_drop = 0, bound_kb, uncapped_kb;
	uint64_t *pml4;
	struct tvm *vm;
	struct ucall uc;
	long long log_mark;
	char why[2048];

	if (self->saved <= 0)
		SKIP(return, "%s not readable (module not loaded?)",
		     CAP_PARAM);
	cp.tables = tvm_env_u64("MMU_CAP_TABLES", 4096);
	cp.passes = tvm_env_u64("MMU_CAP_PASSES", 4);
	ASSERT_LE(cp.tables, MAX_TABLES);
	ASSERT_GE(cp.passes, 1);
	ASSERT_GT(cp.tables, cap_pages)
		TH_LOG("MMU_CAP_TABLES must exceed the cap to test it");
	ASSERT_EQ(0, write_param(set_pages));
	ASSERT_EQ((long)set_pages, read_param());

	/* Data pages and tables, plus 16 MiB for the image and the rest. */
	mem = 16 * TVM_MiB + (2 * cp.tables + cp.tables / PER_PD + 64) * 4096;
	mem = (mem + 2 * TVM_MiB - 1) & ~(2 * TVM_MiB - 1);	/* 2 MiB units */
	vm = tvm_create(mem);
	log_mark = mmu_host_log_mark();
	data = tvm_alloc(vm, cp.tables);
	pt = tvm_alloc(vm, cp.tables);
	pml4 = tvm_gpa(vm, TVM_PT_GPA);
	for (i = 0; i < cp.tables; i++) {
		uint64_t va = page_va(i), *e;

		if (i % PER_PDPT == 0) {
			pdpt = tvm_alloc(vm, 1);
			pml4[(va >> 39) & 511] = pdpt | PTE_P | PTE_W;
		}
		if (i % PER_PD == 0) {
			pd = tvm_alloc(vm, 1);
			e = tvm_gpa(vm, pdpt);
			e[(va >> 30) & 511] = pd | PTE_P | PTE_W;
		}
		e = tvm_gpa(vm, pd);
		e[(va >> 21) & 511] = (pt + i * 4096) | PTE_P | PTE_W;
		e = tvm_gpa(vm, pt + i * 4096);
		e[(va >> 12) & 511] = (data + i * 4096) | PTE_P | PTE_W;
		e = tvm_gpa(vm, data + i * 4096);
		for (w = 0; w < 512; w++)
			e[w] = stamp(i, w);
	}
	tvm_sync_to_guest(vm, cp);

	ASSERT_EQ(0, ioctl(vm->vcpu, TRAPVM_GET_STATS, &b));
	tvm_enter(vm, guest_cap, 0);
	avail0 = mem_available_kb();
	ASSERT_GT(avail0, 0);
	t0 = tvm_now_ns();
	for (i = 0; i < cp.passes; i++) {
		TVM_RUN_EXPECT(vm, &uc, UCALL_SYNC);
		ASSERT_EQ(0, ioctl(vm->vcpu, TRAPVM_GET_STATS, &a));
		live = a.count[TRAPVM_STAT_MMU_SHADOW_LIVE];
		avail = mem_available_kb();
		if (live > max_live)
			max_live = live;
		if (avail0 - avail > max_drop)
			max_drop = avail0 - avail;
		printf("# pass %llu: mmu_shadow_pages_live %llu, MemAvailable -%lld KiB\n",
		       (unsigned long long)i, (unsigned long long)live,
		       avail0 - avail);
		EXPECT_LE(live, cap_pages)
			TH_LOG("pass %llu: %llu live shadow pages, cap %llu",
			       (unsigned long long)i,
			       (unsigned long long)live,
			       (unsigned long long)cap_pages);
	}
	TVM_RUN_EXPECT(vm, &uc, UCALL_DONE);
	t0 = tvm_now_ns() - t0;
	tvm_sync_from_guest(vm, cp);

	bound_kb = cap_pages * 8 + slack_kb;
	uncapped_kb = (cp.tables + cp.tables / PER_PD +
		       (cp.tables + PER_PDPT - 1) / PER_PDPT) * 4 +
		      cp.tables * 4;
#define D(s) ((unsigned long long)(a.count[TRAPVM_STAT_##s] - \
				   b.count[TRAPVM_STAT_##s]))
	printf("# %llu page tables, %llu passes in %llu ms; cap %llu pages: created %llu, reclaimed %llu, hidden faults %llu, max live %llu\n",
	       (unsigned long long)cp.tables, (unsigned long long)cp.passes,
	       (unsigned long long)t0 / 1000000,
	       (unsigned long long)cap_pages, D(MMU_SHADOW_ALLOC),
	       D(MMU_RECLAIMED), D(MMU_HIDDEN_PF),
	       (unsigned long long)max_live);
	printf("# MemAvailable: max drop %lld KiB, bound %lld KiB (cap * 8 KiB + %llu KiB slack); uncapped shadow would be ~%lld KiB\n",
	       max_drop, bound_kb, (unsigned long long)slack_kb, uncapped_kb);
	EXPECT_EQ(cp.passes * cp.tables * 512, cp.reads);
	EXPECT_EQ(0, cp.nbad)
		TH_LOG("first bad: page %llu word %llu: read %#llx, want %#llx",
		       (unsigned long long)cp.bad_page,
		       (unsigned long long)cp.bad_word,
		       (unsigned long long)cp.bad_got,
		       (unsigned long long)cp.bad_want);
	EXPECT_GE(D(MMU_SHADOW_ALLOC), cp.tables);
	EXPECT_GT(D(MMU_RECLAIMED), 0)
		TH_LOG("no reclaim: the cap of %llu pages was never hit",
		       (unsigned long long)cap_pages);
#undef D
	EXPECT_LE(max_drop, bound_kb)
		TH_LOG("host lost %lld KiB of MemAvailable, bound %lld KiB",
		       max_drop, bound_kb);
	EXPECT_TRUE(mmu_host_clean_since(log_mark, why, sizeof(why)))
		TH_LOG("%s", why);
	tvm_free(vm);
}

TEST_HARNESS_MAIN
