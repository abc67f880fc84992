// SPDX-License-Identifier: GPL-2.0
/*
 * mmu_escape_test: a guest that tries to reach memory that is not its
 * own through its page tables.
 *
 *  beyond_ram      4 KiB, 2 MiB and 1 GiB mappings of guest-physical
 *                  addresses past the end of RAM, up to the top of
 *                  MAXPHYADDR (one VM per probe, read and write);
 *  reserved_phys   an address bit at MAXPHYADDR: #PF with RSVD;
 *  gib_over_all    a PDPT of 512 1 GiB pages over the whole 512 GiB
 *                  (and one at the top of MAXPHYADDR), probed inside and
 *                  outside RAM;
 *  hole            PML4 slots 256..271 the guest fills are ignored
 *                  (#PF not-present), slot 272 works;
 *  own_tables      the guest maps its own page tables writable and
 *                  rewrites its translations through that mapping;
 *  self_reference  a PML4 entry pointing to the PML4 (recursive map):
 *                  the guest reads its tables through it and creates a
 *                  mapping by writing through it.
 *
 * A probe that leaves RAM must end in exactly one MMIO exit for that
 * guest-physical address, 8 bytes, in the access's direction (a write
 * carries WRITE_VAL), and the load must return what the test put in
 * run->mmio.data (MMIO_FILL); a probe inside RAM must read or write the
 * guest's own bytes without any exit.  Meanwhile the test
 * keeps a canary buffer of its own and a second VM whose RAM holds
 * another pattern, and checks that both are unchanged and that no probe
 * ever read either pattern; and the host's kernel log stays clean.
 *
 *   tools/testhost/run -- selftests/trapvm/mmu_escape_test
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include <linux/trapvm.h>

#include "kselftest_harness.h"
#include "mmu_guest.h"

static long long log_mark;

#define RAM_SIZE	(32 * TVM_MiB)
#define CANARY_SIZE	(16 * TVM_MiB)
#define CANARY		0x43414e4152592121ULL	/* "CANARY!!" */
#define OTHER		0x4f54484552564d21ULL	/* "OTHERVM!" */
#define MMIO_FILL	0x5a5a5a5a5a5a5a5aULL
#define WRITE_VAL	0x4553434150452121ULL	/* "ESCAPE!!" */
#define PROBE_VA	0x1e0000000000ULL	/* PML4 slot 60 */
#define GIB_VA		0x1e8000000000ULL	/* PML4 slot 61 */

static uint64_t *canary;
static struct tvm *other;

/* Guest: one access, reported with GUEST_SYNC (vector, err, cr2, val). */
struct probe_arg {
	uint64_t va, write;
};

static struct probe_arg pa;

static void guest_probe(uint64_t unused)
{
	uint64_t v = 0;

	mmu_guest_install_catcher();
	mmu_fault.vector = 0xff;
	mmu_fault_armed = 1;
	if (pa.write)
		mmu_k_write64(pa.va, WRITE_VAL);
	else
		v = mmu_k_read64(pa.va);
	mmu_fault_armed = 0;
	guest_ucall(UCALL_SYNC, __FILE__, __LINE__, NULL, mmu_fault.vector,
		    mmu_fault.err, mmu_fault.cr2, v);
}

struct outcome {
	bool stopped, faulted, mmio;
	unsigned int nr_mmio, mmio_len, mmio_write;
	uint64_t vector, err, cr2, val, mmio_addr, mmio_data;
	char why[512];
};

/* Run the VM to its report, answering MMIO reads with MMIO_FILL. */
static void run_probe(struct tvm *vm, struct outcome *o)
{
	struct ucall uc;
	int i;

	memset(o, 0, sizeof(*o));
	for (i = 0; i < 64; i++) {
		uint64_t cmd = tvm_run_ucall(vm, &uc);

		if (cmd == UCALL_SYNC) {
			o->vector = uc.args[0];
			o->err = uc.args[1];
			o->cr2 = uc.args[2];
			o->val = uc.args[3];
			o->faulted = o->vector != 0xff;
			return;
		}
		if (cmd == UCALL_NONE &&
		    vm->run->exit_reason == TRAPVM_EXIT_MMIO) {
			o->mmio = true;
			o->nr_mmio++;
			o->mmio_addr = vm->run->mmio.phys_addr;
			o->mmio_len = vm->run->mmio.len;
			o->mmio_write = vm->run->mmio.is_write;
			memcpy(&o->mmio_data, vm->run->mmio.data, 8);
			if (!vm->run->mmio.is_write)
				memset(vm->run->mmio.data, 0x5a,
				       sizeof(vm->run->mmio.data));
			continue;
		}
		break;
	}
	o->stopped = true;
	snprintf(o->why, sizeof(o->why), "%s", tvm_describe(vm, &uc));
}

static bool foreign(uint64_t v)
{
	return v == CANARY || v == OTHER;
}

/*
 * Map @va to @gpa with @flags (2 MiB / 1 GiB: PTE_PS and level), access
 * it in a new VM and check the outcome.  Returns the number of failures.
 */
static int probe(struct __test_metadata *_metadata, const char *what,
		 uint64_t gpa, int level, bool write)
{
	struct tvm *vm = tvm_create(RAM_SIZE);
	uint64_t va = PROBE_VA + (level == 3 ? (gpa & 0x3fffffffULL) :
				  level == 2 ? (gpa & 0x1fffffULL) :
				  (gpa & 4095));
	uint64_t ram_val = 0, flags = PTE_P | PTE_W, *e;
	bool in_ram = gpa + 8 <= RAM_SIZE;
	struct outcome o;
	int fails = 0;

	tvm_map(vm, PROBE_VA, 0, 0);	/* the chain */
	if (level == 1) {
		e = tvm_pte(vm, va, false);
		*e = (gpa & PTE_ADDR) | flags;
	} else {
		uint64_t mask = level == 3 ? ~0x3fffffffULL : ~0x1fffffULL;

		e = tvm_gpa(vm, mmu_entry_gpa(vm, TVM_PT_GPA, va, level));
		*e = (gpa & mask & PTE_ADDR) | flags | PTE_PS;
	}
	if (in_ram) {
		ram_val = 0x494e52414d000000ULL ^ gpa;	/* "INRAM" */
		memcpy(tvm_gpa(vm, gpa), &ram_val, 8);
	}
	pa.va = va;
	pa.write = write;
	tvm_sync_to_guest(vm, pa);
	tvm_enter(vm, guest_probe, 0);
	run_probe(vm, &o);
	printf("#   %-28s gpa %#14llx %s: %s", what, (unsigned long long)gpa,
	       write ? "write" : "read ",
	       o.stopped ? "VM stopped: " : o.faulted ? "fault" : "ok");
	if (o.stopped)
		printf("%s", o.why);
	else if (o.faulted)
		printf(" vector %llu err %#llx cr2 %#llx",
		       (unsigned long long)o.vector,
		       (unsigned long long)o.err, (unsigned long long)o.cr2);
	else if (!write)
		printf(" value %#llx", (unsigned long long)o.val);
	if (o.mmio)
		printf(" (MMIO exit %#llx)", (unsigned long long)o.mmio_addr);
	printf("\n");

	if (o.mmio && o.mmio_addr != gpa) {
		printf("#     MMIO exit for %#llx, the access was to %#llx\n",
		       (unsigned long long)o.mmio_addr,
		       (unsigned long long)gpa);
		fails++;
	}
	if (in_ram && (o.mmio || o.stopped)) {
		printf("#     RAM access did not complete\n");
		fails++;
	}
	if (!in_ram && (o.stopped || o.faulted || o.nr_mmio != 1 ||
			o.mmio_len != 8 || o.mmio_write != write ||
			(write && o.mmio_data != WRITE_VAL))) {
		printf("#     want one MMIO exit: %u exits, len %u, write %u, data %#llx\n",
		       o.nr_mmio, o.mmio_len, o.mmio_write,
		       (unsigned long long)o.mmio_data);
		fails++;
	}
	if (!o.stopped && !o.faulted && !write) {
		bool ok = in_ram ? o.val == ram_val : o.val == MMIO_FILL;

		if (!ok || foreign(o.val)) {
			printf("#     read %#llx: not the guest's\n",
			       (unsigned long long)o.val);
			fails++;
		}
	}
	if (in_ram && write && !o.stopped && !o.faulted) {
		uint64_t v;

		memcpy(&v, tvm_gpa(vm, gpa), 8);
		if (v != WRITE_VAL) {
			printf("#     write did not land in guest RAM\n");
			fails++;
		}
	}
	if (o.faulted && (o.vector != PF_VECTOR || o.cr2 != va)) {
		printf("#     unexpected fault\n");
		fails++;
	}
	tvm_free(vm);
	return fails;
}

static uint64_t check_canaries(void)
{
	uint64_t i, bad = 0;

	for (i = 0; i < CANARY_SIZE / 8; i++)
		bad += canary[i] != CANARY;
	for (i = 0; i < other->mem_size / 8; i++)
		bad += ((uint64_t *)other->ram)[i] != OTHER;
	return bad;
}

FIXTURE(escape) {
	int unused;
};

FIXTURE_SETUP(escape)
{
	uint64_t i;

	log_mark = mmu_host_log_mark();
	canary = mmap(NULL, CANARY_SIZE, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	ASSERT_NE(MAP_FAILED, canary);
	for (i = 0; i < CANARY_SIZE / 8; i++)
		canary[i] = CANARY;
	other = tvm_create(8 * TVM_MiB);
	for (i = 0; i < other->mem_size / 8; i++)
		((uint64_t *)other->ram)[i] = OTHER;
}

FIXTURE_TEARDOWN(escape)
{
	char why[2048];

	EXPECT_EQ(0, check_canaries());
	EXPECT_TRUE(mmu_host_clean_since(log_mark, why, sizeof(why)))
		TH_LOG("%s", why);
	tvm_free(other);
	munmap(canary, CANARY_SIZE);
}

TEST_F_TIMEOUT(escape, beyond_ram, 300)
{
	uint64_t top = 1ULL << mmu_maxphyaddr();
	static const struct { const char *what; uint64_t off; int level; }
	p[] = {
		{ "4K, last page of RAM", RAM_SIZE - 4096, 1 },
		{ "4K, just past RAM", RAM_SIZE, 1 },
		{ "4K, 1 MiB past RAM", RAM_SIZE + TVM_MiB, 1 },
		{ "4K, 4 GiB", 1ULL << 32, 1 },
		{ "2M, last in RAM", RAM_SIZE - 8, 2 },
		{ "2M, just past RAM", RAM_SIZE + 8, 2 },
		{ "1G, 64 GiB", 64ULL << 30, 3 },
	};
	unsigned int i, w;
	int fails = 0;

	for (i = 0; i < ARRAY_SIZE(p); i++)
		for (w = 0; w < 2; w++)
			fails += probe(_metadata, p[i].what, p[i].off,
				       p[i].level, w);
	for (w = 0; w < 2; w++) {
		fails += probe(_metadata, "4K, top of MAXPHYADDR",
			       top - 4096, 1, w);
		fails += probe(_metadata, "1G, top of MAXPHYADDR",
			       top - (1 << 30) + 0x1238, 3, w);
	}
	EXPECT_EQ(0, fails);
	EXPECT_EQ(0, check_canaries());
}

/* A physical-address bit at MAXPHYADDR: reserved, #PF with RSVD. */
TEST_F_TIMEOUT(escape, reserved_phys, 120)
{
	unsigned int m = mmu_maxphyaddr();
	struct tvm *vm;
	struct outcome o;

	if (m >= 52)
		SKIP(return, "MAXPHYADDR is 52: no reserved address bit");
	vm = tvm_create(RAM_SIZE);
	tvm_map(vm, PROBE_VA, (1ULL << m) | 0x5000, PTE_P | PTE_W);
	pa.va = PROBE_VA + 0x10;
	pa.write = 0;
	tvm_sync_to_guest(vm, pa);
	tvm_enter(vm, guest_probe, 0);
	run_probe(vm, &o);
	ASSERT_FALSE(o.stopped) TH_LOG("%s", o.why);
	EXPECT_TRUE(o.faulted);
	EXPECT_EQ(PF_VECTOR, o.vector);
	EXPECT_EQ(0x9, o.err);		/* P | RSVD, supervisor read */
	EXPECT_EQ(pa.va, o.cr2);
	EXPECT_FALSE(o.mmio);
	tvm_free(vm);
}

/* ---- 1 GiB pages over everything ---- */

#define GIB_PROBES	8

static struct { uint64_t va[GIB_PROBES], n; } gp;

static void guest_gib(uint64_t unused)
{
	uint64_t i;

	mmu_guest_install_catcher();
	for (i = 0; i < gp.n; i++) {
		uint64_t v;

		mmu_fault.vector = 0xff;
		mmu_fault_armed = 1;
		v = mmu_k_read64(gp.va[i]);
		mmu_fault_armed = 0;
		guest_ucall(UCALL_SYNC, __FILE__, __LINE__, NULL,
			    mmu_fault.vector, mmu_fault.err, i, v);
	}
}

TEST_F_TIMEOUT(escape, gib_over_all, 300)
{
	/* GiB pages probed: RAM, just above, far, the last one. */
	static const uint64_t gib[] = { 0, 1, 2, 100, 511 };
	uint64_t stampv = 0x47494250414745ULL, gpa_in = 0x300008;
	unsigned int i, fails = 0, outside = 0;

	for (i = 0; i < ARRAY_SIZE(gib); i++) {
		struct tvm *vm = tvm_create(RAM_SIZE);
		uint64_t *pdpt, j, va;
		struct outcome o;

		/* Slot 61: 512 1 GiB pages, GPA 0 .. 512 GiB. */
		tvm_map(vm, GIB_VA, 0, 0);
		pdpt = tvm_gpa(vm, mmu_entry_gpa(vm, TVM_PT_GPA, GIB_VA, 3));
		for (j = 0; j < 512; j++)
			pdpt[j] = (j << 30) | PTE_P | PTE_W | PTE_PS;
		memcpy(tvm_gpa(vm, gpa_in), &stampv, 8);
		va = GIB_VA + (gib[i] << 30) + gpa_in;
		gp.n = 1;
		gp.va[0] = va;
		tvm_sync_to_guest(vm, gp);
		tvm_enter(vm, guest_gib, 0);
		run_probe(vm, &o);
		o.cr2 = va;
		printf("#   1G page %3llu (+%#llx): %s", (unsigned long long)gib[i],
		       (unsigned long long)gpa_in,
		       o.stopped ? "VM stopped: " : o.faulted ? "fault" : "ok");
		if (o.stopped)
			printf("%s", o.why);
		else if (!o.faulted)
			printf(" value %#llx", (unsigned long long)o.val);
		if (o.mmio)
			printf(" (MMIO exit %#llx)",
			       (unsigned long long)o.mmio_addr);
		printf("\n");
		if (gib[i] == 0) {
			/* Inside RAM: must read the guest's own bytes. */
			if (o.stopped || o.faulted || o.val != stampv)
				fails++;
			tvm_free(vm);
			continue;
		}
		/* Outside: one 8-byte MMIO load there, answered. */
		outside++;
		if (o.stopped || o.faulted || o.nr_mmio != 1 ||
		    o.mmio_addr != (gib[i] << 30) + gpa_in ||
		    o.mmio_len != 8 || o.mmio_write ||
		    o.val != MMIO_FILL || foreign(o.val)) {
			printf("#     want one MMIO read of %#llx returning %#llx\n",
			       (unsigned long long)((gib[i] << 30) + gpa_in),
			       (unsigned long long)MMIO_FILL);
			fails++;
		}
		tvm_free(vm);
	}
	EXPECT_EQ(5, outside + 1);
	EXPECT_EQ(0, fails);
	EXPECT_EQ(0, check_canaries());
}

/* ---- the hole ---- */

static struct { uint64_t va[4], page_va; } hl;

static void guest_hole(uint64_t unused)
{
	uint64_t i, v;

	mmu_guest_install_catcher();
	for (i = 0; i < 4; i++) {
		mmu_fault.vector = 0xff;
		mmu_fault_armed = 1;
		v = mmu_k_read64(hl.va[i]);
		mmu_fault_armed = 0;
		if (i < 3) {
			/* Slots 256, 263, 271: ignored, not present. */
			GUEST_ASSERT_EQ_X(mmu_fault.vector, PF_VECTOR, i);
			GUEST_ASSERT_EQ_X(mmu_fault.err, 0, i);
			GUEST_ASSERT_EQ_X(mmu_fault.cr2, hl.va[i], i);
		} else {
			GUEST_ASSERT_EQ_X(mmu_fault.vector, 0xff, i);
			GUEST_ASSERT_EQ_X(v, *(volatile uint64_t *)hl.page_va,
					  i);
		}
	}
	/* A write into the hole faults too, and so does a fetch. */
	mmu_fault.vector = 0xff;
	mmu_fault_armed = 1;
	mmu_k_write64(hl.va[0], WRITE_VAL);
	mmu_fault_armed = 0;
	GUEST_ASSERT_EQ(mmu_fault.vector, PF_VECTOR);
	GUEST_ASSERT_EQ(mmu_fault.err, 2);
	mmu_fault.vector = 0xff;
	mmu_fault_armed = 1;
	mmu_k_fetch(hl.va[0]);
	mmu_fault_armed = 0;
	GUEST_ASSERT_EQ(mmu_fault.vector, PF_VECTOR);
	GUEST_ASSERT_EQ(mmu_fault.err & 1, 0);
}

TEST_F_TIMEOUT(escape, hole, 120)
{
	static const unsigned int slot[] = { 256, 263, 271, 272 };
	struct tvm *vm = tvm_create(RAM_SIZE);
	uint64_t page = tvm_alloc(vm, 1), v = 0x484f4c4521ULL, i;
	uint64_t *pml4 = tvm_gpa(vm, TVM_PT_GPA), pdpt;

	memcpy(tvm_gpa(vm, page), &v, 8);
	/* One PDPT chain, linked from all four PML4 slots. */
	hl.va[3] = 0xffff000000000000ULL | ((uint64_t)slot[3] << 39) | 0x1000;
	tvm_map(vm, hl.va[3], page, PTE_P | PTE_W);
	pdpt = pml4[slot[3]];
	for (i = 0; i < 3; i++) {
		pml4[slot[i]] = pdpt;
		hl.va[i] = 0xffff000000000000ULL |
			   ((uint64_t)slot[i] << 39) | 0x1000;
	}
	tvm_map(vm, 0x1e0000000000ULL, page, PTE_P | PTE_W);
	hl.page_va = 0x1e0000000000ULL;
	tvm_sync_to_guest(vm, hl);
	tvm_enter(vm, guest_hole, 0);
	TVM_RUN_DONE(vm);
	tvm_free(vm);
}

/* ---- the guest's own page tables, mapped writable ---- */

#define OT_VA		0x1f0000000000ULL	/* PML4 slot 62 */
#define NOT		16

static struct { uint64_t pt_alias, pt_gpa, pool; } ot;

static uint64_t ot_stamp(uint64_t page)
{
	return 0x4f574e5054000000ULL ^ page;
}

/*
 * The PT that maps OT_VA also maps itself at OT_VA + 4 KiB (pt_alias).
 * The guest retargets OT_VA through that alias, maps the PT itself at
 * OT_VA and rewrites its own entry through the very mapping it uses.
 */
static void guest_own_tables(uint64_t unused)
{
	volatile uint64_t *pt = (volatile uint64_t *)ot.pt_alias;
	volatile uint64_t *va = (volatile uint64_t *)OT_VA;
	uint64_t idx = (OT_VA >> 12) & 511, i, v;

	for (i = 0; i < 300; i++) {
		uint64_t page = (i * 7) % NOT, e;

		pt[idx] = (ot.pool + page * 4096) | PTE_P | PTE_W;
		mmu_invlpg(OT_VA);
		GUEST_ASSERT_EQ_X(va[i % 512], ot_stamp(page) + i % 512, i);
		GUEST_ASSERT_EQ_X(pt[idx] & (PTE_A | PTE_D), PTE_A, i);
		va[i % 512] = ot_stamp(page) + i % 512;	/* same bytes */
		GUEST_ASSERT_EQ_X(pt[idx] & PTE_D, PTE_D, i);
		if (i % 3)
			continue;
		/* OT_VA maps the PT itself: its entry for OT_VA is there. */
		pt[idx] = ot.pt_gpa | PTE_P | PTE_W;
		mmu_invlpg(OT_VA);
		e = va[idx];
		GUEST_ASSERT_EQ_X(e & ~(PTE_A | PTE_D),
				  ot.pt_gpa | PTE_P | PTE_W, i);
		/* Rewrite that entry through itself. */
		va[idx] = (ot.pool + page * 4096) | PTE_P | PTE_W;
		mmu_invlpg(OT_VA);
		v = va[0];
		GUEST_ASSERT_EQ_X(v, ot_stamp(page), i);
	}
}

TEST_F_TIMEOUT(escape, own_tables, 120)
{
	struct tvm *vm = tvm_create(RAM_SIZE);
	uint64_t i, w, bad = 0;

	ot.pool = tvm_alloc(vm, NOT);
	for (i = 0; i < NOT; i++)
		for (w = 0; w < 512; w++)
			((uint64_t *)tvm_gpa(vm, ot.pool + i * 4096))[w] =
				ot_stamp(i) + w;
	tvm_map(vm, OT_VA, ot.pool, PTE_P | PTE_W);
	ot.pt_gpa = mmu_entry_gpa(vm, TVM_PT_GPA, OT_VA, 1) & ~4095ULL;
	ot.pt_alias = OT_VA + 4096;
	tvm_map(vm, ot.pt_alias, ot.pt_gpa, PTE_P | PTE_W);
	tvm_sync_to_guest(vm, ot);
	tvm_enter(vm, guest_own_tables, 0);
	TVM_RUN_DONE(vm);
	for (i = 0; i < NOT; i++)
		for (w = 0; w < 512; w++)
			bad += ((uint64_t *)tvm_gpa(vm, ot.pool + i * 4096))[w]
			       != ot_stamp(i) + w;
	EXPECT_EQ(0, bad);
	tvm_free(vm);
}

/* ---- a PML4 entry pointing to the PML4 ---- */

#define R		100ULL			/* the recursive slot */
#define X_VA		0x1f8000a3c000ULL	/* PML4 slot 63 */

static inline uint64_t rec_va(uint64_t a, uint64_t b, uint64_t c,
			      uint64_t d)
{
	return (a << 39) | (b << 30) | (c << 21) | (d << 12);
}

static struct { uint64_t pml4, page; } sr;

static void guest_self_ref(uint64_t unused)
{
	volatile uint64_t *pml4 = (volatile uint64_t *)sr.pml4;
	volatile uint64_t *rp = (volatile uint64_t *)rec_va(R, R, R, R);
	uint64_t i4 = (X_VA >> 39) & 511, i3 = (X_VA >> 30) & 511;
	uint64_t i2 = (X_VA >> 21) & 511, i1 = (X_VA >> 12) & 511, i;
	volatile uint64_t *x_pt = (volatile uint64_t *)rec_va(R, i4, i3, i2);
	volatile uint64_t *x_pd = (volatile uint64_t *)rec_va(R, R, i4, i3);

	/* The PML4 through itself. */
	for (i = 0; i < 512; i++)
		GUEST_ASSERT_EQ_X(rp[i] & ~PTE_A, pml4[i] & ~PTE_A, i);
	GUEST_ASSERT_EQ(rp[R] & PTE_ADDR, sr.pml4);
	/* Make a mapping through the recursive view, then use it. */
	GUEST_ASSERT_EQ(x_pt[i1], 0);
	x_pt[i1] = sr.page | PTE_P | PTE_W;
	GUEST_ASSERT_EQ(*(volatile uint64_t *)X_VA, 0x53454c46ULL);
	GUEST_ASSERT_EQ(x_pd[i2] & PTE_A, PTE_A);
	/* A second PML4 slot aliasing X's chain, written through rp. */
	rp[i4 + 1] = rp[i4];
	GUEST_ASSERT_EQ(*(volatile uint64_t *)(X_VA + (1ULL << 39)),
			0x53454c46ULL);
	/* Unmap through the recursive view. */
	x_pt[i1] = 0;
	mmu_invlpg(X_VA);
	mmu_guest_install_catcher();
	mmu_fault.vector = 0xff;
	mmu_fault_armed = 1;
	mmu_k_read64(X_VA);
	mmu_fault_armed = 0;
	GUEST_ASSERT_EQ(mmu_fault.vector, PF_VECTOR);
	GUEST_ASSERT_EQ(mmu_fault.err, 0);
	/* The recursive slot pointing to itself, read-only: no writes. */
	pml4[R] = sr.pml4 | PTE_P;
	mmu_write_cr(3, mmu_read_cr(3));
	mmu_fault.vector = 0xff;
	mmu_fault_armed = 1;
	mmu_k_write64((uint64_t)&rp[R + 1], 0);
	mmu_fault_armed = 0;
	GUEST_ASSERT_EQ(mmu_fault.vector, PF_VECTOR);
	GUEST_ASSERT_EQ(mmu_fault.err, 3);
	GUEST_ASSERT_EQ(pml4[R + 1], 0);
}

TEST_F_TIMEOUT(escape, self_reference, 120)
{
	struct tvm *vm = tvm_create(RAM_SIZE);
	uint64_t *pml4 = tvm_gpa(vm, TVM_PT_GPA), v = 0x53454c46ULL;

	sr.pml4 = TVM_PT_GPA;
	sr.page = tvm_alloc(vm, 1);
	memcpy(tvm_gpa(vm, sr.page), &v, 8);
	tvm_map(vm, X_VA, 0, 0);	/* the chain, entry empty */
	pml4[R] = TVM_PT_GPA | PTE_P | PTE_W;
	tvm_sync_to_guest(vm, sr);
	tvm_enter(vm, guest_self_ref, 0);
	TVM_RUN_DONE(vm);
	tvm_free(vm);
}

TEST_HARNESS_MAIN
