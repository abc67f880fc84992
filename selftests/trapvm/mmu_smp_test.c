// SPDX-License-Identifier: GPL-2.0
/*
 * mmu_smp_test: the shadow MMU with two vCPUs of one VM, running on two
 * host threads at the same time (the test host has 2 CPUs).  The shadow
 * page cache is per VM: every guest page table is read-only in the
 * shadow both vCPUs use, and a vCPU that takes rights away from it makes
 * the other leave the guest (a remote TLB flush) before it goes on.
 *
 *  concurrent_churn  both vCPUs, same CR3, rewrite entries of one shared
 *                    page table (each its own half, with the INVLPG the
 *                    SDM requires of the writer) and read through them:
 *                    every read returns the stamp of the page mapped.
 *  coherent_no_invlpg  vCPU 1 rewrites a PTE (an emulated write: the table
 *                    is shadowed); vCPU 0 then reads through it without
 *                    INVLPG and sees the new page, first after an exit,
 *                    then while it spins in the guest on the old
 *                    translation (vCPU 1 sets a flag after its write, and
 *                    vCPU 0's next read after seeing the flag must give
 *                    the new page).  The architecture would allow the old
 *                    page until an INVLPG on vCPU 0: this is what the
 *                    design guarantees (the writer's remote flush), not
 *                    an SDM rule.
 *  root_cache_shared CR3 switches among several address spaces hit each
 *                    vCPU's root cache (MMU_ROOT_HIT), and a second vCPU
 *                    on the same CR3 allocates next to no shadow pages
 *                    (MMU_SHADOW_LIVE, the VM's gauge).
 *  locked_atomic     both vCPUs do N locked operations each on words of a
 *                    guest page table (not-present entries of the live
 *                    PML4: every write traps and is emulated): LOCK XADD
 *                    and LOCK ADD of 2, a CMPXCHG loop adding 2, LOCK
 *                    BTS then LOCK BTR of bits of their own, XCHG of
 *                    distinct values in and the old ones out, and an XCHG
 *                    spinlock around a plain counter.  Locked operations
 *                    are atomic (SDM Vol. 3A 9.1): the sums are exactly
 *                    2 * N * 2, each BTS finds its bit clear and each BTR
 *                    set, the bits end as set last, every value XCHGed in
 *                    comes out exactly once (or is left in the word), the
 *                    counter is 2 * N.
 *  kill_one_vcpu     vCPU 1's thread is interrupted by a signal and its
 *                    fd closed while vCPU 0 churns on: vCPU 0 sees no
 *                    mismatch.
 *  leak.two_vcpu_vms VMs with two vCPUs built and destroyed: the page
 *                    allocator gets every page back (/proc/zoneinfo).
 *
 * Every test also checks the host log (no splat, no vCPU diagnostic).
 * MMU_SMP_OPS sets the churn length per vCPU (default 50000),
 * MMU_SMP_ATOMIC_OPS locked_atomic's N (default 20000).
 *
 *   tools/testhost/run -- selftests/trapvm/mmu_smp_test
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <linux/trapvm.h>
#include <linux/trapvm_stats.h>

#include "kselftest_harness.h"
#include "mmu_guest.h"

#define SMP_PORT	0x5ce		/* guest -> test: OUT of a code */
#define CODE_DONE	0xd0e
#define CODE_STEP	0x57e

#define NSLOT		512		/* one page table, shared */
#define NPAGE		256
#define SLOT_X		510		/* coherence tests */
#define SLOT_Y		511		/* always mapped, page 0 */
#define NCHURN		500		/* slots 0..499 churn */
#define WIN_VA		0x140000000000ULL
#define NCR3		4
#define ROUNDS		1000
#define SPIN_LIMIT	200000000ULL
#define STACK1_TOP	0x130000ULL	/* vCPU 1: lower half of the stack */

struct smp_shared {
	uint64_t pool;			/* GPA of page 0 */
	uint64_t pt;			/* VA == GPA of the shared PT */
	uint64_t ops;
	uint64_t cr3s[NCR3];
	uint64_t seq[4];		/* coherent_no_invlpg: values read */
	volatile uint64_t ready, flag;	/* spin handshake */
	volatile uint64_t stop;
	uint64_t rounds;
	/* per vCPU */
	uint64_t accesses[2], nbad[2], bad_va[2], bad_want[2], bad_got[2];
	uint64_t bad_op[2];
	/* locked_atomic */
	uint64_t atomic_ops, xcount;
	uint64_t cas_fails[2], bts_bad[2], btr_bad[2], xsum[2];
	volatile uint64_t arrived[2];
};

static struct smp_shared sh;
static int32_t win_page[NSLOT];
static uint8_t win_rw[NSLOT];

static inline uint64_t stamp(uint64_t page, uint64_t word)
{
	return 0x534d505000000000ULL ^ (page << 12) ^ word;
}

/* ---- guest side ---- */

static void __attribute__((noreturn)) smp_done(void)
{
	for (;;)
		guest_report(SMP_PORT, CODE_DONE);
}

static inline uint64_t rd(uint64_t va)
{
	return *(volatile uint64_t *)va;
}

static inline void wr(uint64_t va, uint64_t v)
{
	*(volatile uint64_t *)va = v;
}

static inline volatile uint64_t *pte_of(uint64_t slot)
{
	return (volatile uint64_t *)sh.pt + slot;
}

static inline uint64_t pte_for(uint64_t page, bool rw)
{
	return (sh.pool + page * 4096) | PTE_P | (rw ? PTE_W : 0);
}

static uint64_t xorshift(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void guest_bad(int id, uint64_t op, uint64_t va, uint64_t want,
		      uint64_t got)
{
	if (!sh.nbad[id]) {
		sh.bad_op[id] = op;
		sh.bad_va[id] = va;
		sh.bad_want[id] = want;
		sh.bad_got[id] = got;
	}
	sh.nbad[id]++;
}

static void check_read(int id, uint64_t op, uint64_t slot, uint64_t off)
{
	uint64_t va = WIN_VA + slot * 4096 + (off & 4088);
	uint64_t want = stamp(win_page[slot], (off & 4088) >> 3);
	uint64_t v = rd(va);

	sh.accesses[id]++;
	if (v != want)
		guest_bad(id, op, va, want, v);
}

/*
 * Churn slots of parity @id: remap, unmap, change rights, read, write the
 * stamp back.  Never touches an unmapped address (no fault handling: the
 * two vCPUs share the IDT's stacks).
 */
static void guest_churn(uint64_t id)
{
	uint64_t rng = 0x9e3779b97f4a7c15ULL * (id + 1), op;

	for (op = 0; op < sh.ops && !sh.stop; op++) {
		uint64_t r = xorshift(&rng), k = r % 100;
		uint64_t s = 2 * ((r >> 8) % (NCHURN / 2)) + id;
		uint64_t va = WIN_VA + s * 4096;
		bool was = win_page[s] >= 0;

		if (k < 40) {
			win_page[s] = (r >> 20) % NPAGE;
			win_rw[s] = (r >> 40) & 1;
			*pte_of(s) = pte_for(win_page[s], win_rw[s]);
			if (was)
				mmu_invlpg(va);
			check_read(id, op, s, r >> 44);
		} else if (k < 45) {
			win_page[s] = -1;
			*pte_of(s) = 0;
			if (was)
				mmu_invlpg(va);
		} else if (k < 99) {
			if (!was)
				continue;
			check_read(id, op, s, r >> 44);
			if (win_rw[s] && ((r >> 60) & 1)) {
				uint64_t off = (r >> 32) & 4088;

				wr(va + off, stamp(win_page[s], off >> 3));
			}
		} else {
			mmu_write_cr(3, mmu_read_cr(3));
		}
	}
	smp_done();
}

/* coherent_no_invlpg, step by step: read X, exit, read X again. */
static void guest_seq_reader(uint64_t unused)
{
	sh.seq[0] = rd(WIN_VA + SLOT_X * 4096);
	guest_report(SMP_PORT, CODE_STEP);
	sh.seq[1] = rd(WIN_VA + SLOT_X * 4096);
	smp_done();
}

static void guest_seq_writer(uint64_t page)
{
	guest_report(SMP_PORT, CODE_STEP);
	*pte_of(SLOT_X) = pte_for(page, false);
	smp_done();
}

static uint64_t round_page(uint64_t r)
{
	return 16 + r % 4;
}

/* vCPU 0: hold X in the TLB, wait for vCPU 1's flag, then read X. */
static void guest_spin_reader(uint64_t unused)
{
	uint64_t r, spins, v, x = WIN_VA + SLOT_X * 4096;

	for (r = 1; r <= sh.rounds; r++) {
		uint64_t old = stamp(round_page(r - 1), 0);
		uint64_t new = stamp(round_page(r), 0);

		v = rd(x);
		if (v != old)
			guest_bad(0, r, x, old, v);
		sh.ready = r;
		for (spins = 0; sh.flag != r; spins++) {
			v = rd(x);
			if (v != old && v != new)
				guest_bad(0, r, x, new, v);
			if (spins > SPIN_LIMIT) {
				guest_bad(0, r, 0, r, sh.flag);
				smp_done();
			}
		}
		v = rd(x);
		sh.accesses[0]++;
		if (v != new)
			guest_bad(0, r, x, new, v);
	}
	smp_done();
}

/* vCPU 1: rewrite X's PTE, then raise the flag. */
static void guest_spin_writer(uint64_t unused)
{
	uint64_t r, spins;

	for (r = 1; r <= sh.rounds; r++) {
		for (spins = 0; sh.ready != r; spins++) {
			if (spins > SPIN_LIMIT) {
				guest_bad(1, r, 0, r, sh.ready);
				smp_done();
			}
		}
		*pte_of(SLOT_X) = pte_for(round_page(r), false);
		sh.flag = r;
	}
	smp_done();
}

/* Switch among the address spaces, reading Y in each. */
static void guest_cr3_switch(uint64_t id)
{
	uint64_t i, j, y = WIN_VA + SLOT_Y * 4096;

	for (i = 0; i < 50; i++) {
		for (j = 0; j < NCR3; j++) {
			mmu_write_cr(3, sh.cr3s[j]);
			sh.accesses[id]++;
			if (rd(y + 8) != stamp(0, 1))
				guest_bad(id, i, y, stamp(0, 1), rd(y + 8));
		}
	}
	mmu_write_cr(3, sh.cr3s[0]);
	smp_done();
}

/* Read every mapped churn slot, then exit; again on each resume. */
static void guest_touch(uint64_t id)
{
	uint64_t s;

	for (;;) {
		for (s = 0; s < NCHURN; s++)
			if (win_page[s] >= 0)
				check_read(id, s, s, s * 8);
		guest_report(SMP_PORT, CODE_STEP);
	}
}

/*
 * locked_atomic: words of the PML4 of TVM_PT_GPA (VA == GPA), entries no
 * address uses, bit 0 (P) always clear.
 */
#define ATOMIC_PML4	500
#define AW_XADD		0
#define AW_ADD		1
#define AW_CAS		2
#define AW_BITS		3
#define AW_LOCK		4
#define AW_XCHG		5
#define AW_NR		6

static inline volatile uint64_t *atomic_word(int i)
{
	return (volatile uint64_t *)TVM_PT_GPA + ATOMIC_PML4 + i;
}

/* The bits vCPU @id owns in AW_BITS: 1..30 and 33..62. */
static inline uint64_t atomic_bit(uint64_t id, uint64_t i)
{
	return 1 + 32 * id + i % 30;
}

static void guest_atomic(uint64_t id)
{
	volatile uint64_t *xw = atomic_word(AW_XADD);
	volatile uint64_t *aw = atomic_word(AW_ADD);
	volatile uint64_t *cw = atomic_word(AW_CAS);
	volatile uint64_t *bw = atomic_word(AW_BITS);
	volatile uint64_t *lw = atomic_word(AW_LOCK);
	volatile uint64_t *sw = atomic_word(AW_XCHG);
	uint64_t i, spins;

	/* start together, so that the operations overlap */
	sh.arrived[id] = 1;
	for (spins = 0; !sh.arrived[!id]; spins++)
		if (spins > SPIN_LIMIT)
			smp_done();
	for (i = 0; i < sh.atomic_ops; i++) {
		uint64_t v = 2, exp, prev, b = atomic_bit(id, i), c;
		uint8_t cf;

		asm volatile("lock xaddq %0, %1"
			     : "+r"(v), "+m"(*xw) : : "memory", "cc");
		asm volatile("lock addq $2, %0" : "+m"(*aw) : : "memory", "cc");
		exp = *cw;
		for (;;) {
			prev = exp;
			asm volatile("lock cmpxchgq %2, %1"
				     : "+a"(exp), "+m"(*cw) : "r"(prev + 2)
				     : "memory", "cc");
			if (exp == prev)
				break;
			sh.cas_fails[id]++;
		}
		asm volatile("lock btsq %2, %0; setc %1"
			     : "+m"(*bw), "=q"(cf) : "r"(b) : "memory", "cc");
		sh.bts_bad[id] += cf;
		asm volatile("lock btrq %2, %0; setc %1"
			     : "+m"(*bw), "=q"(cf) : "r"(b) : "memory", "cc");
		sh.btr_bad[id] += !cf;
		/* values 2, 4, ... 4N, each put in once: what comes out */
		v = 2 * (id * sh.atomic_ops + i + 1);
		asm volatile("xchgq %0, %1" : "+r"(v), "+m"(*sw) : : "memory");
		sh.xsum[id] += v;
		/* an XCHG spinlock around a plain read-modify-write */
		for (;;) {
			v = 2;
			while (*lw)
				;
			asm volatile("xchgq %0, %1"
				     : "+r"(v), "+m"(*lw) : : "memory");
			if (!v)
				break;
		}
		c = sh.xcount;
		asm volatile("" : : : "memory");
		sh.xcount = c + 1;
		asm volatile("" : : : "memory");
		*lw = 0;
	}
	/* leave the bits with an odd index set */
	for (i = 1; i < 30; i += 2) {
		uint64_t b = atomic_bit(id, i);

		asm volatile("lock btsq %1, %0"
			     : "+m"(*bw) : "r"(b) : "memory", "cc");
	}
	smp_done();
}

/* ---- test side ---- */

/* The VM: a stamped pool, a window of NSLOT slots in one page table. */
static struct tvm *smp_vm(void)
{
	struct tvm *vm = tvm_create(32 * TVM_MiB);
	uint64_t p, w, i;

	memset(&sh, 0, sizeof(sh));
	sh.ops = tvm_env_u64("MMU_SMP_OPS", 50000);
	sh.rounds = ROUNDS;
	sh.pool = tvm_alloc(vm, NPAGE);
	for (p = 0; p < NPAGE; p++)
		for (w = 0; w < 512; w++)
			((uint64_t *)tvm_gpa(vm, sh.pool + p * 4096))[w] =
				stamp(p, w);
	tvm_map(vm, WIN_VA, 0, 0);
	sh.pt = mmu_entry_gpa(vm, TVM_PT_GPA, WIN_VA, 1) & ~4095ULL;
	for (i = 0; i < NSLOT; i++) {
		win_page[i] = -1;
		win_rw[i] = 0;
		((uint64_t *)tvm_gpa(vm, sh.pt))[i] = 0;
	}
	win_page[SLOT_X] = round_page(0);
	((uint64_t *)tvm_gpa(vm, sh.pt))[SLOT_X] =
		(sh.pool + round_page(0) * 4096) | PTE_P;
	win_page[SLOT_Y] = 0;
	((uint64_t *)tvm_gpa(vm, sh.pt))[SLOT_Y] = sh.pool | PTE_P;
	/* Copies of the top-level table: the same memory, other CR3s. */
	for (i = 0; i < NCR3; i++) {
		sh.cr3s[i] = i ? tvm_alloc(vm, 1) : TVM_PT_GPA;
		memcpy(tvm_gpa(vm, sh.cr3s[i]), tvm_gpa(vm, TVM_PT_GPA), 4096);
	}
	tvm_sync_to_guest(vm, sh);
	tvm_sync_to_guest(vm, win_page);
	tvm_sync_to_guest(vm, win_rw);
	return vm;
}

static struct smp_shared *guest_sh(struct tvm *vm)
{
	return tvm_gva(vm, (uint64_t)&sh);
}

/* Every stamp of the pool intact (writes only wrote stamps back). */
static uint64_t bad_stamps(struct tvm *vm)
{
	uint64_t p, w, n = 0;

	for (p = 0; p < NPAGE; p++)
		for (w = 0; w < 512; w++)
			n += ((uint64_t *)tvm_gpa(vm, sh.pool + p * 4096))[w] !=
			     stamp(p, w);
	return n;
}

static void print_bad(struct smp_shared *g, int id)
{
	if (!g->nbad[id])
		return;
	printf("#   vCPU %d: %llu mismatches, first: op %llu va %#llx want %#llx got %#llx\n",
	       id, (unsigned long long)g->nbad[id],
	       (unsigned long long)g->bad_op[id],
	       (unsigned long long)g->bad_va[id],
	       (unsigned long long)g->bad_want[id],
	       (unsigned long long)g->bad_got[id]);
}

FIXTURE(smp) {
	struct tvm *vm;
	struct tvm_vcpu v[2];
	long long log_mark;
};

FIXTURE_SETUP(smp)
{
	self->log_mark = mmu_host_log_mark();
	self->vm = smp_vm();
	tvm_vcpu0(self->vm, &self->v[0], SMP_PORT);
	ASSERT_EQ(0, tvm_vcpu_add(self->vm, 1, &self->v[1], SMP_PORT));
}

FIXTURE_TEARDOWN(smp)
{
	char why[2048];

	tvm_vcpu_close(&self->v[1]);
	tvm_free(self->vm);
	EXPECT_TRUE(mmu_host_clean_since(self->log_mark, why, sizeof(why)))
		TH_LOG("%s", why);
}

/* Run both vCPUs from @fn0/@fn1 on two threads until both exit @want. */
static void run_pair(struct __test_metadata *_metadata, struct tvm_vcpu *v,
		     void *fn0, void *fn1, uint64_t arg0, uint64_t arg1,
		     uint64_t want)
{
	int i;

	ASSERT_EQ(0, tvm_vcpu_enter(&v[0], fn0, arg0, TVM_STACK_TOP));
	ASSERT_EQ(0, tvm_vcpu_enter(&v[1], fn1, arg1, STACK1_TOP));
	ASSERT_EQ(0, tvm_vcpus_run(v, 2));
	for (i = 0; i < 2; i++) {
		EXPECT_EQ(0, v[i].ret) TH_LOG("vCPU %d: %s", i, v[i].why);
		EXPECT_EQ(want, v[i].code);
	}
}

TEST_F_TIMEOUT(smp, concurrent_churn, 300)
{
	struct smp_shared *g = guest_sh(self->vm);
	uint64_t t0 = tvm_now_ns();
	int i;

	run_pair(_metadata, self->v, guest_churn, guest_churn, 0, 1,
		 CODE_DONE);
	t0 = tvm_now_ns() - t0;
	printf("# %llu + %llu checked reads in %llu ms; vCPU 0: %llu PT writes emulated, %llu remote flushes; vCPU 1: %llu, %llu\n",
	       (unsigned long long)g->accesses[0],
	       (unsigned long long)g->accesses[1],
	       (unsigned long long)t0 / 1000000,
	       (unsigned long long)tvm_vcpu_stat(&self->v[0],
						 TRAPVM_STAT_MMU_PT_WRITES),
	       (unsigned long long)tvm_vcpu_stat(&self->v[0],
						 TRAPVM_STAT_MMU_REMOTE_FLUSH),
	       (unsigned long long)tvm_vcpu_stat(&self->v[1],
						 TRAPVM_STAT_MMU_PT_WRITES),
	       (unsigned long long)tvm_vcpu_stat(&self->v[1],
						 TRAPVM_STAT_MMU_REMOTE_FLUSH));
	for (i = 0; i < 2; i++) {
		print_bad(g, i);
		EXPECT_EQ(0, g->nbad[i]);
		EXPECT_LT(sh.ops / 2, g->accesses[i]);
	}
	EXPECT_EQ(0, bad_stamps(self->vm));
}

TEST_F_TIMEOUT(smp, coherent_no_invlpg, 300)
{
	struct smp_shared *g = guest_sh(self->vm);
	struct tvm_vcpu *v = self->v;
	int i;

	/*
	 * vCPU 1 starts first (a RUN from a new entry point drops the
	 * shadow), then vCPU 0 reads X (page 16) and exits, still in guest
	 * code.
	 */
	ASSERT_EQ(0, tvm_vcpu_enter(&v[1], guest_seq_writer, 40, STACK1_TOP));
	ASSERT_EQ(0, tvm_vcpu_run(&v[1])) TH_LOG("%s", v[1].why);
	ASSERT_EQ(CODE_STEP, v[1].code);
	ASSERT_EQ(0, tvm_vcpu_enter(&v[0], guest_seq_reader, 0,
				    TVM_STACK_TOP));
	ASSERT_EQ(0, tvm_vcpu_run(&v[0])) TH_LOG("%s", v[0].why);
	ASSERT_EQ(CODE_STEP, v[0].code);
	EXPECT_EQ(stamp(round_page(0), 0), g->seq[0]);
	/* vCPU 1 points X at page 40: an emulated write, the PT is shadowed. */
	ASSERT_EQ(0, tvm_vcpu_run(&v[1])) TH_LOG("%s", v[1].why);
	ASSERT_EQ(CODE_DONE, v[1].code);
	EXPECT_LE(1, tvm_vcpu_stat(&v[1], TRAPVM_STAT_MMU_PT_WRITES));
	/* vCPU 0 resumes and reads X again, with no INVLPG: page 40. */
	ASSERT_EQ(0, tvm_vcpu_run(&v[0])) TH_LOG("%s", v[0].why);
	ASSERT_EQ(CODE_DONE, v[0].code);
	EXPECT_EQ(stamp(40, 0), g->seq[1]);

	/* The same while vCPU 0 spins in the guest on the old translation. */
	g->seq[0] = 0;
	*(uint64_t *)tvm_gpa(self->vm, sh.pt + SLOT_X * 8) =
		(sh.pool + round_page(0) * 4096) | PTE_P;
	run_pair(_metadata, v, guest_spin_reader, guest_spin_writer, 0, 0,
		 CODE_DONE);
	printf("# %llu rounds; vCPU 1: %llu remote flushes, %llu PT writes\n",
	       (unsigned long long)g->accesses[0],
	       (unsigned long long)tvm_vcpu_stat(&v[1],
						 TRAPVM_STAT_MMU_REMOTE_FLUSH),
	       (unsigned long long)tvm_vcpu_stat(&v[1],
						 TRAPVM_STAT_MMU_PT_WRITES));
	for (i = 0; i < 2; i++) {
		print_bad(g, i);
		EXPECT_EQ(0, g->nbad[i]);
	}
	EXPECT_EQ(ROUNDS, g->accesses[0]);
}

TEST_F_TIMEOUT(smp, root_cache_shared, 300)
{
	struct smp_shared *g = guest_sh(self->vm);
	struct tvm_vcpu *v = self->v;
	uint64_t live1, live2, live3, s;
	uint64_t *pt = tvm_gpa(self->vm, sh.pt);
	int i;

	run_pair(_metadata, v, guest_cr3_switch, guest_cr3_switch, 0, 1,
		 CODE_DONE);
	for (i = 0; i < 2; i++) {
		uint64_t hit = tvm_vcpu_stat(&v[i], TRAPVM_STAT_MMU_ROOT_HIT);
		uint64_t miss = tvm_vcpu_stat(&v[i],
					      TRAPVM_STAT_MMU_ROOT_MISS);

		printf("# vCPU %d: %llu root cache hits, %llu misses\n", i,
		       (unsigned long long)hit, (unsigned long long)miss);
		print_bad(g, i);
		EXPECT_EQ(0, g->nbad[i]);
		EXPECT_LE(150, hit);
		EXPECT_GE(2 * NCR3 + 4, miss);
	}

	/* Map the churn slots and let vCPU 0 alone walk them all. */
	g->accesses[0] = 0;
	g->accesses[1] = 0;
	for (s = 0; s < NCHURN; s++) {
		win_page[s] = s % NPAGE;
		pt[s] = (sh.pool + (s % NPAGE) * 4096) | PTE_P;
	}
	tvm_sync_to_guest(self->vm, win_page);
	ASSERT_EQ(0, tvm_vcpu_enter(&v[0], guest_touch, 0, TVM_STACK_TOP));
	ASSERT_EQ(0, tvm_vcpu_run(&v[0])) TH_LOG("%s", v[0].why);
	ASSERT_EQ(CODE_STEP, v[0].code);
	live1 = tvm_vcpu_stat(&v[0], TRAPVM_STAT_MMU_SHADOW_LIVE);
	/* vCPU 1 on the same CR3 (its new entry point drops the shadow). */
	ASSERT_EQ(0, tvm_vcpu_enter(&v[1], guest_touch, 1, STACK1_TOP));
	ASSERT_EQ(0, tvm_vcpu_run(&v[1])) TH_LOG("%s", v[1].why);
	ASSERT_EQ(CODE_STEP, v[1].code);
	live2 = tvm_vcpu_stat(&v[1], TRAPVM_STAT_MMU_SHADOW_LIVE);
	/* vCPU 0 walks them all again: it finds vCPU 1's shadow pages. */
	ASSERT_EQ(0, tvm_vcpu_run(&v[0])) TH_LOG("%s", v[0].why);
	ASSERT_EQ(CODE_STEP, v[0].code);
	live3 = tvm_vcpu_stat(&v[0], TRAPVM_STAT_MMU_SHADOW_LIVE);
	printf("# shadow pages of the VM: vCPU 0 alone %llu, then vCPU 1 %llu, both %llu\n",
	       (unsigned long long)live1, (unsigned long long)live2,
	       (unsigned long long)live3);
	for (i = 0; i < 2; i++) {
		print_bad(g, i);
		EXPECT_EQ(0, g->nbad[i]);
	}
	EXPECT_LE(3 * NCHURN / 2, g->accesses[0] + g->accesses[1]);
	/* Per-vCPU pages only: the PML4 (and PML5 and upper PML4). */
	EXPECT_GE(live2 + 4, live3);
	EXPECT_GT(live1 + live1 / 2, live3);
}

TEST_F_TIMEOUT(smp, locked_atomic, 600)
{
	struct smp_shared *g = guest_sh(self->vm);
	uint64_t *pml4 = tvm_gpa(self->vm, TVM_PT_GPA);
	uint64_t n = tvm_env_u64("MMU_SMP_ATOMIC_OPS", 20000);
	uint64_t bits = 0, want, i, t0;
	int id;

	for (i = 0; i < AW_NR; i++)
		pml4[ATOMIC_PML4 + i] = 0;
	g->atomic_ops = n;
	t0 = tvm_now_ns();
	run_pair(_metadata, self->v, guest_atomic, guest_atomic, 0, 1,
		 CODE_DONE);
	t0 = tvm_now_ns() - t0;
	for (id = 0; id < 2; id++)
		for (i = 1; i < 30; i += 2)
			bits |= 1ULL << atomic_bit(id, i);
	want = 2 * n * 2;
	printf("# xchg: %llu + %llu taken out, %llu left in (want in all %llu)\n",
	       (unsigned long long)g->xsum[0], (unsigned long long)g->xsum[1],
	       (unsigned long long)pml4[ATOMIC_PML4 + AW_XCHG],
	       (unsigned long long)(2 * n * (2 * n + 1)));
	printf("# %llu ops per vCPU in %llu ms: xadd %llu add %llu cmpxchg %llu (want %llu), bits %#llx (want %#llx), xchg-locked counter %llu (want %llu)\n",
	       (unsigned long long)n, (unsigned long long)t0 / 1000000,
	       (unsigned long long)pml4[ATOMIC_PML4 + AW_XADD],
	       (unsigned long long)pml4[ATOMIC_PML4 + AW_ADD],
	       (unsigned long long)pml4[ATOMIC_PML4 + AW_CAS],
	       (unsigned long long)want,
	       (unsigned long long)pml4[ATOMIC_PML4 + AW_BITS],
	       (unsigned long long)bits, (unsigned long long)g->xcount,
	       (unsigned long long)(2 * n));
	for (id = 0; id < 2; id++)
		printf("# vCPU %d: %llu PT writes emulated, %llu locked retries, %llu cmpxchg failures, BTS found set %llu, BTR found clear %llu\n",
		       id,
		       (unsigned long long)
		       tvm_vcpu_stat(&self->v[id], TRAPVM_STAT_MMU_PT_WRITES),
		       (unsigned long long)
		       tvm_vcpu_stat(&self->v[id], TRAPVM_STAT_EMUL_RETRY),
		       (unsigned long long)g->cas_fails[id],
		       (unsigned long long)g->bts_bad[id],
		       (unsigned long long)g->btr_bad[id]);
	EXPECT_EQ(want, pml4[ATOMIC_PML4 + AW_XADD]);
	EXPECT_EQ(want, pml4[ATOMIC_PML4 + AW_ADD]);
	EXPECT_EQ(want, pml4[ATOMIC_PML4 + AW_CAS]);
	EXPECT_EQ(bits, pml4[ATOMIC_PML4 + AW_BITS]);
	EXPECT_EQ(0, pml4[ATOMIC_PML4 + AW_LOCK]);
	EXPECT_EQ(2 * n, g->xcount);
	/* 2 + 4 + ... + 4N */
	EXPECT_EQ(2 * n * (2 * n + 1),
		  g->xsum[0] + g->xsum[1] + pml4[ATOMIC_PML4 + AW_XCHG]);
	for (id = 0; id < 2; id++) {
		EXPECT_EQ(0, g->bts_bad[id]);
		EXPECT_EQ(0, g->btr_bad[id]);
		/* the PML4 is live: its writes were emulated, not native */
		EXPECT_LE(6 * n, tvm_vcpu_stat(&self->v[id],
					       TRAPVM_STAT_MMU_PT_WRITES));
	}
}

static void on_sigusr1(int sig)
{
}

TEST_F_TIMEOUT(smp, kill_one_vcpu, 300)
{
	struct smp_shared *g = guest_sh(self->vm);
	struct tvm_vcpu *v = self->v;
	struct sigaction sa = { .sa_handler = on_sigusr1 };
	pthread_t t[2];
	int i;

	ASSERT_EQ(0, sigaction(SIGUSR1, &sa, NULL));
	ASSERT_EQ(0, tvm_vcpu_enter(&v[0], guest_churn, 0, TVM_STACK_TOP));
	ASSERT_EQ(0, tvm_vcpu_enter(&v[1], guest_churn, 1, STACK1_TOP));
	v[0].stop_on_eintr = true;
	v[1].stop_on_eintr = true;
	for (i = 0; i < 2; i++)
		ASSERT_EQ(0, pthread_create(&t[i], NULL, tvm_vcpu_thread,
					    &v[i]));
	usleep(300 * 1000);
	/* vCPU 1 is stopped mid-churn, and its fd and mapping go. */
	pthread_kill(t[1], SIGUSR1);
	pthread_join(t[1], NULL);
	tvm_vcpu_close(&v[1]);
	pthread_join(t[0], NULL);
	EXPECT_EQ(0, v[0].ret) TH_LOG("vCPU 0: %s", v[0].why);
	EXPECT_EQ(CODE_DONE, v[0].code);
	printf("# vCPU 1 stopped after %llu reads (%s); vCPU 0 did %llu\n",
	       (unsigned long long)g->accesses[1],
	       v[1].ret ? v[1].why : "finished",
	       (unsigned long long)g->accesses[0]);
	for (i = 0; i < 2; i++) {
		print_bad(g, i);
		EXPECT_EQ(0, g->nbad[i]);
	}
	EXPECT_LT(sh.ops / 2, g->accesses[0]);
	EXPECT_EQ(0, bad_stamps(self->vm));
}

/* Free pages as the page allocator counts them, per-CPU lists too. */
static long free_pages_total(void)
{
	char line[256];
	long total = 0, n;
	FILE *f = fopen("/proc/zoneinfo", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, " pages free %ld", &n) == 1)
			total += n;
		else if (sscanf(line, " count: %ld", &n) == 1)
			total += n;
	}
	fclose(f);
	return total;
}

FIXTURE(leak) {
	int unused;
};

FIXTURE_SETUP(leak)
{
}

FIXTURE_TEARDOWN(leak)
{
}

TEST_F_TIMEOUT(leak, two_vcpu_vms, 300)
{
	const int iters = 12;
	long before = 0, after = 0, live = 0;
	long long mark = mmu_host_log_mark();
	char why[2048];
	int pass, it;

	for (pass = 0; pass < 2; pass++) {
		/* pass 0 warms caches (slabs, page tables), pass 1 measures */
		before = free_pages_total();
		for (it = 0; it < (pass ? iters : 2); it++) {
			struct tvm *vm = smp_vm();
			struct tvm_vcpu v[2];
			uint64_t s, *pt = tvm_gpa(vm, sh.pt);

			for (s = 0; s < NCHURN; s++) {
				win_page[s] = s % NPAGE;
				pt[s] = (sh.pool + (s % NPAGE) * 4096) | PTE_P;
			}
			tvm_sync_to_guest(vm, win_page);
			tvm_vcpu0(vm, &v[0], SMP_PORT);
			ASSERT_EQ(0, tvm_vcpu_add(vm, 1, &v[1], SMP_PORT));
			run_pair(_metadata, v, guest_touch, guest_touch, 0, 1,
				 CODE_STEP);
			live = tvm_vcpu_stat(&v[1],
					     TRAPVM_STAT_MMU_SHADOW_LIVE);
			tvm_vcpu_close(&v[1]);
			tvm_free(vm);
		}
		after = free_pages_total();
	}
	TH_LOG("free pages before %ld after %ld; %ld shadow pages per VM",
	       before, after, live);
	/* A VM's shadow left behind would be >= live pages each time. */
	EXPECT_LT(8, live);
	EXPECT_GT(256, before - after);
	EXPECT_TRUE(mmu_host_clean_since(mark, why, sizeof(why)))
		TH_LOG("%s", why);
}

TEST_HARNESS_MAIN
