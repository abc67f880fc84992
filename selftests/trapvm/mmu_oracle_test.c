// SPDX-License-Identifier: GPL-2.0
/*
 * mmu_oracle_test: the shadow MMU against a model of the SDM's paging
 * rules (Intel SDM Vol. 3A 4.6 access rights, 4.7 page-fault error code,
 * 4.8 accessed and dirty flags), written here and nowhere else.
 *
 * The guest runs a list of cases the test generates.  A case is the
 * paging mode (CR0.WP, EFER.NXE, CR4.SMEP, CR4.SMAP), the values of the
 * 2 to 4 entries on the way to one test page (a 4 KiB, 2 MiB or 1 GiB
 * guest page), an access (read, write, fetch) and a mode (CPL0 with
 * RFLAGS.AC 0 or 1, CPL3).  The guest changes its own entries (then
 * INVLPG; CR3 reload after a mode change), makes the access, and records
 * the fault (vector, error code, CR2), the value read or written and its
 * entries afterwards in a table the test compares with the model.  All
 * three page sizes reach the same physical page, so the result values are
 * the same.
 *
 * The matrix, factorised (MMU_ORACLE_FULL=1 makes sets A and C use all 16
 * paging modes, ~4x the cases):
 *   A  per level (PML4E, PDPTE, PDE and PTE of a 4 KiB page, the PDE of a
 *      2 MiB page, the PDPTE of a 1 GiB page): all 128 combinations of
 *      P, R/W, U/S, XD, A, D and a reserved bit, the other levels
 *      permissive, x 3 accesses x every mode, in 4 paging modes
 *      (none, all, WP+SMEP, NXE+SMAP);
 *   B  per level: P, R/W, U/S, XD x 3 accesses x modes x all 16 paging
 *      modes;
 *   C  every pair of levels of each page size: R/W, U/S, XD at both
 *      (64) x accesses x modes x the 4 paging modes;
 *   D  per level, every other bit that is reserved (PS in a PML4E, each
 *      end of the MAXPHYADDR..51 range, 20:13 / 29:13 of large pages)
 *      or ignored (11:9, 62:52, G, PAT), x accesses x modes x NXE 0/1.
 *
 * A guest CPL0 fetch from a user page with SMAP on, AC = 0 and SMEP off
 * is allowed by the SDM while a read or write is not: one P/RW/NX entry
 * cannot say so, the module uses a host protection key
 * (Documentation/shadow-mmu.rst).  Those cases run in their own subtest,
 * each followed by CPL0 reads and writes of the same page with AC = 0
 * and 1 (so that the data accesses meet the execute-only entry the fetch
 * left), and report SKIP on a host without protection keys if the module
 * stops the VM on them.  guest_wrpkru_contained: a guest WRPKRU (which
 * does not trap) lasts until the next exit and never reaches the host.
 *
 * What the SDM leaves open: whether a walk that ends in a fault sets A
 * in the entries it read before the failing one.  The model accepts both
 * there (and counts how often A was set); D is never set by a fault, and
 * A never in the failing entry nor below it.
 *
 *   tools/testhost/run -- selftests/trapvm/mmu_oracle_test
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cpuid.h>
#include <sys/ioctl.h>

#include <linux/trapvm.h>
#include <linux/trapvm_stats.h>

#include "kselftest_harness.h"
#include "mmu_guest.h"

/* ---- the case table shared with the guest ---- */

#define CFG_WP		1
#define CFG_NXE		2
#define CFG_SMEP	4
#define CFG_SMAP	8
#define CFG_MASK	15

enum { MODE_K, MODE_K_AC, MODE_U };
enum { ACC_R, ACC_W, ACC_X };

struct oc_case {
	uint64_t e[4];		/* PML4E, PDPTE, PDE, PTE (nlev used) */
	uint64_t va;
	uint8_t cfg, mode, acc, nlev;
	uint32_t set;		/* which part of the matrix (printing) */
};

struct oc_result {
	uint64_t vector, err, cr2, val;
	uint64_t e[4];
};

/* Guest-visible setup (the test fills it in and syncs it). */
struct oc_setup {
	uint64_t ent[4];	/* VAs (== GPAs) of the four entries */
	uint64_t alias;		/* supervisor RW alias of the data page */
	uint64_t cases, results;	/* VAs of the tables */
	uint64_t n;
	uint64_t chunk;
};

static struct oc_setup oc;

#define OFF_R		0x123
#define OFF_W		0x456
#define OFF_X		0x789
#define STAMP		0xa5
#define WRITE_VAL	0x5a

#define TEST_VA_BASE	0x180000000000ULL	/* PML4 slot 48 */
#define TABLE_VA	0x200000000000ULL	/* PML4 slot 64 */

/* ---- guest ---- */

static void oc_set_cfg(unsigned int cfg)
{
	uint64_t cr0 = mmu_read_cr(0), cr4 = mmu_read_cr(4);
	uint64_t efer = guest_rdmsr(MSR_EFER);

	cr0 = (cfg & CFG_WP) ? cr0 | CR0_WP : cr0 & ~CR0_WP;
	efer = (cfg & CFG_NXE) ? efer | EFER_NXE : efer & ~EFER_NXE;
	cr4 &= ~(CR4_SMEP | CR4_SMAP);
	cr4 |= ((cfg & CFG_SMEP) ? CR4_SMEP : 0) |
	       ((cfg & CFG_SMAP) ? CR4_SMAP : 0);
	mmu_write_cr(0, cr0);
	guest_wrmsr(MSR_EFER, efer);
	mmu_write_cr(4, cr4);
	mmu_write_cr(3, mmu_read_cr(3));
}

static uint64_t oc_access(const volatile struct oc_case *c)
{
	uint64_t va = c->va;

	if (c->mode == MODE_U) {
		if (c->acc == ACC_R)
			return mmu_user_call(mmu_user_addr(mmu_u_read),
					     va + OFF_R, 0);
		if (c->acc == ACC_W)
			return mmu_user_call(mmu_user_addr(mmu_u_write),
					     va + OFF_W, WRITE_VAL);
		return mmu_user_call(mmu_user_addr(mmu_u_fetch),
				     va + OFF_X, 0);
	}
	if (c->mode == MODE_K_AC) {
		if (c->acc == ACC_R)
			return mmu_k_read_ac(va + OFF_R);
		if (c->acc == ACC_W)
			return mmu_k_write_ac(va + OFF_W, WRITE_VAL);
		return mmu_k_fetch_ac(va + OFF_X);
	}
	if (c->acc == ACC_R)
		return mmu_k_read(va + OFF_R);
	if (c->acc == ACC_W)
		return mmu_k_write(va + OFF_W, WRITE_VAL);
	return mmu_k_fetch(va + OFF_X);
}

static void guest_oracle(uint64_t unused)
{
	volatile uint8_t *alias = (volatile uint8_t *)oc.alias;
	unsigned int cur_cfg = 0x100;
	uint64_t i, l;

	mmu_guest_install_catcher();
	for (i = 0; i < oc.n; i++) {
		const volatile struct oc_case *c =
			(const volatile struct oc_case *)oc.cases + i;
		volatile struct oc_result *r =
			(volatile struct oc_result *)oc.results + i;
		volatile uint64_t *ent;
		bool changed = false;
		uint64_t v;

		if (c->cfg != cur_cfg) {
			cur_cfg = c->cfg;
			oc_set_cfg(cur_cfg);
		}
		for (l = 0; l < c->nlev; l++) {
			ent = (volatile uint64_t *)oc.ent[l];
			if (*ent != c->e[l]) {
				*ent = c->e[l];
				changed = true;
			}
		}
		if (changed)
			mmu_invlpg(c->va + OFF_R);
		alias[OFF_W] = 0;
		mmu_fault.vector = 0xff;
		mmu_fault_armed = 1;
		v = oc_access(c);
		mmu_fault_armed = 0;
		r->vector = mmu_fault.vector;
		r->err = mmu_fault.err;
		r->cr2 = mmu_fault.cr2;
		r->val = c->acc == ACC_W ? alias[OFF_W] : v;
		for (l = 0; l < 4; l++)
			r->e[l] = l < c->nlev ? *(volatile uint64_t *)oc.ent[l]
					      : 0;
		if (oc.chunk && (i + 1) % oc.chunk == 0)
			GUEST_SYNC(i + 1);
	}
	oc_set_cfg(CFG_WP | CFG_NXE);
}

/* ---- the model (SDM Vol. 3A 4.6-4.8) ---- */

static unsigned int maxphy;
static bool have_1g;

struct expect {
	bool fault;
	uint64_t err, cr2, val;
	int stop;		/* level index of a P=0 / RSVD entry, or -1 */
	uint64_t e[4];		/* entries after a successful access */
};

#define BITS(hi, lo)	((~0ULL >> (63 - (hi))) & ~((1ULL << (lo)) - 1))

/* Reserved bits of a present entry at level index l (0 = PML4E). */
static bool reserved(uint64_t e, int l, bool leaf, unsigned int cfg)
{
	uint64_t r = maxphy < 52 ? BITS(51, maxphy) : 0;

	if (!(cfg & CFG_NXE))
		r |= 1ULL << 63;
	if (l == 0)
		r |= PTE_PS;
	if (l == 1 && leaf)
		r |= BITS(29, 13);
	if (l == 2 && leaf)
		r |= BITS(20, 13);
	return e & r;
}

static void model(const struct oc_case *c, struct expect *x)
{
	bool user = c->mode == MODE_U, w = c->acc == ACC_W;
	bool fetch = c->acc == ACC_X, ac = c->mode == MODE_K_AC;
	bool nxe = c->cfg & CFG_NXE, smep = c->cfg & CFG_SMEP;
	bool smap = c->cfg & CFG_SMAP, wp = c->cfg & CFG_WP;
	bool rw = true, us = true, xd = false, ok;
	uint64_t off = fetch ? OFF_X : w ? OFF_W : OFF_R;
	int l;

	memset(x, 0, sizeof(*x));
	x->stop = -1;
	x->cr2 = c->va + off;
	x->err = (w ? 2 : 0) | (user ? 4 : 0) |
		 (fetch && (nxe || smep) ? 16 : 0);
	for (l = 0; l < c->nlev; l++) {
		uint64_t e = c->e[l];
		bool leaf = l == c->nlev - 1;

		if (!(e & PTE_P)) {
			x->stop = l;
			break;
		}
		if (reserved(e, l, leaf, c->cfg)) {
			x->stop = l;
			x->err |= 1 | 8;
			break;
		}
		rw &= !!(e & PTE_W);
		us &= !!(e & PTE_U);
		xd |= nxe && (e & PTE_NX);
	}
	if (x->stop >= 0) {
		x->fault = true;
	} else {
		/* 4.6: user pages are those with U/S=1 at every level. */
		if (user)
			ok = us && (!w || rw) && !(fetch && xd);
		else if (fetch)
			ok = !xd && !(us && smep);
		else
			ok = !(us && smap && !ac) && (!w || rw || !wp);
		x->fault = !ok;
		if (x->fault)
			x->err |= 1;
	}
	if (x->fault) {
		x->val = w ? 0 : MMU_NO_VALUE;
		return;
	}
	x->val = w ? WRITE_VAL : STAMP;
	for (l = 0; l < c->nlev; l++)
		x->e[l] = c->e[l] | PTE_A;
	if (w)
		x->e[c->nlev - 1] |= PTE_D;
}

static const char *const acc_name[] = { "read", "write", "fetch" };
static const char *const mode_name[] = { "cpl0", "cpl0+ac", "cpl3" };

static void print_case(const struct oc_case *c, const char *what)
{
	int l;

	printf("#   %s: set %c %s %s wp=%d nxe=%d smep=%d smap=%d %s:",
	       what, 'A' + c->set, acc_name[c->acc], mode_name[c->mode],
	       !!(c->cfg & CFG_WP), !!(c->cfg & CFG_NXE),
	       !!(c->cfg & CFG_SMEP), !!(c->cfg & CFG_SMAP),
	       c->nlev == 2 ? "1G" : c->nlev == 3 ? "2M" : "4K");
	for (l = 0; l < c->nlev; l++)
		printf(" %#llx", (unsigned long long)c->e[l]);
	printf("\n");
}

/* Compare one result; returns the number of mismatches (0 or 1). */
static int check(const struct oc_case *c, const struct oc_result *r,
		 uint64_t *a_on_fault)
{
	struct expect x;
	char buf[512];
	int l, bad = 0;

	model(c, &x);
	buf[0] = 0;
	if (x.fault) {
		if (r->vector == 0xff)
			bad = snprintf(buf, sizeof(buf),
				       "want #PF err %#llx cr2 %#llx, got no fault",
				       (unsigned long long)x.err,
				       (unsigned long long)x.cr2);
		else if (r->vector != PF_VECTOR || r->err != x.err ||
			 r->cr2 != x.cr2)
			bad = snprintf(buf, sizeof(buf),
				       "want #PF err %#llx cr2 %#llx, got vector %#llx err %#llx cr2 %#llx",
				       (unsigned long long)x.err,
				       (unsigned long long)x.cr2,
				       (unsigned long long)r->vector,
				       (unsigned long long)r->err,
				       (unsigned long long)r->cr2);
	} else if (r->vector != 0xff) {
		bad = snprintf(buf, sizeof(buf),
			       "want no fault, got vector %#llx err %#llx cr2 %#llx",
			       (unsigned long long)r->vector,
			       (unsigned long long)r->err,
			       (unsigned long long)r->cr2);
	}
	if (!bad && r->val != x.val)
		bad = snprintf(buf, sizeof(buf), "value %#llx, want %#llx",
			       (unsigned long long)r->val,
			       (unsigned long long)x.val);
	for (l = 0; !bad && l < c->nlev; l++) {
		uint64_t want = x.fault ? c->e[l] : x.e[l], got = r->e[l];

		/* A fault may set A above the failing entry, nothing else. */
		if (x.fault && (x.stop < 0 || l < x.stop) &&
		    got == (want | PTE_A) && got != want) {
			(*a_on_fault)++;
			continue;
		}
		if (got != want)
			bad = snprintf(buf, sizeof(buf),
				       "level %d entry %#llx after, want %#llx",
				       4 - l, (unsigned long long)got,
				       (unsigned long long)want);
	}
	if (bad) {
		print_case(c, "MISMATCH");
		printf("#     %s\n", buf);
	}
	return !!bad;
}

/* ---- case generation ---- */

struct gen {
	struct oc_case *c;
	size_t n, cap;
	uint64_t addr[4][2];	/* per level: next-table address, leaf addr */
	uint64_t va;
	bool full;
	bool smap_fetch_only;	/* collect only the SMAP-fetch cases */
};

/* Flag bits of the enumerations. */
#define F_P	1
#define F_RW	2
#define F_US	4
#define F_NX	8
#define F_A	16
#define F_D	32
#define F_R	64

static const unsigned int cfg4[] = { 0, CFG_MASK, CFG_WP | CFG_SMEP,
				     CFG_NXE | CFG_SMAP };

static uint64_t rsvd_bit(int l, int nlev)
{
	bool leaf = l == nlev - 1;

	if (l == 0)
		return PTE_PS;
	if (l == 1)
		return leaf ? 1ULL << 20 : 1ULL << 51;
	if (l == 2)
		return leaf ? 1ULL << 13 : 1ULL << (maxphy < 52 ? maxphy : 51);
	return 1ULL << 51;
}

static uint64_t entry(struct gen *g, int l, int nlev, unsigned int f,
		      uint64_t extra)
{
	bool leaf = l == nlev - 1;
	uint64_t e = g->addr[l][leaf] | extra;

	if (leaf && nlev < 4)
		e |= PTE_PS;
	e |= (f & F_P ? PTE_P : 0) | (f & F_RW ? PTE_W : 0) |
	     (f & F_US ? PTE_U : 0) | (f & F_NX ? PTE_NX : 0) |
	     (f & F_A ? PTE_A : 0) | (f & F_D ? PTE_D : 0) |
	     (f & F_R ? rsvd_bit(l, nlev) : 0);
	return e;
}

/* The one combination a shadow entry cannot express (see the top). */
static bool smap_fetch(const struct oc_case *c)
{
	bool us = true;
	int l;

	if (c->mode != MODE_K || c->acc != ACC_X ||
	    (c->cfg & (CFG_SMAP | CFG_SMEP)) != CFG_SMAP)
		return false;
	for (l = 0; l < c->nlev; l++) {
		if (!(c->e[l] & PTE_P) ||
		    reserved(c->e[l], l, l == c->nlev - 1, c->cfg))
			return false;
		us &= !!(c->e[l] & PTE_U);
	}
	return us;
}

static void push(struct gen *g, const struct oc_case *c)
{
	if (g->n == g->cap) {
		g->cap = g->cap ? 2 * g->cap : 65536;
		g->c = realloc(g->c, g->cap * sizeof(*g->c));
	}
	g->c[g->n++] = *c;
}

/*
 * After an SMAP fetch case: data accesses to the same page, its entries
 * with A set as the fetch leaves them (so the guest does not rewrite
 * them and the shadow entry the fetch made stays): CPL0 read and write
 * with AC = 0 (SMAP #PF), each after a fetch, then with AC = 1.
 */
static void push_smap_followers(struct gen *g, const struct oc_case *f)
{
	static const uint8_t seq[][2] = {
		{ MODE_K, ACC_R }, { MODE_K, ACC_X }, { MODE_K, ACC_W },
		{ MODE_K, ACC_X }, { MODE_K_AC, ACC_R }, { MODE_K_AC, ACC_W },
	};
	struct oc_case c = *f;
	unsigned int i;
	int l;

	for (l = 0; l < c.nlev; l++)
		c.e[l] |= PTE_A;
	for (i = 0; i < sizeof(seq) / sizeof(seq[0]); i++) {
		c.mode = seq[i][0];
		c.acc = seq[i][1];
		push(g, &c);
	}
}

static void add(struct gen *g, const uint64_t *e, int nlev, unsigned int cfg,
		unsigned int set)
{
	unsigned int mode, acc;

	for (mode = MODE_K; mode <= MODE_U; mode++) {
		if (mode == MODE_K_AC && !(cfg & CFG_SMAP))
			continue;
		for (acc = ACC_R; acc <= ACC_X; acc++) {
			struct oc_case c = {
				.va = g->va, .cfg = cfg, .mode = mode,
				.acc = acc, .nlev = nlev, .set = set,
			};

			memcpy(c.e, e, nlev * sizeof(*e));
			if (smap_fetch(&c) != g->smap_fetch_only)
				continue;
			push(g, &c);
			if (g->smap_fetch_only)
				push_smap_followers(g, &c);
		}
	}
}

#define PERMISSIVE	(F_P | F_RW | F_US)

/* Set C: R/W, U/S, XD (all 64 combinations) at levels l and l2. */
static void gen_pair(struct gen *g, int nlev, int l, int l2,
		     unsigned int ncfg)
{
	unsigned int f, ci;
	uint64_t e[4];
	int i;

	for (f = 0; f < 64; f++)
		for (ci = 0; ci < ncfg; ci++) {
			for (i = 0; i < nlev; i++)
				e[i] = entry(g, i, nlev, F_P, 0);
			e[l] = entry(g, l, nlev, F_P | ((f & 7) << 1), 0);
			e[l2] = entry(g, l2, nlev, F_P | ((f >> 3) << 1), 0);
			add(g, e, nlev, g->full ? ci : cfg4[ci], 2);
		}
}

static void gen_all(struct gen *g)
{
	static const uint64_t special[] = {
		1ULL << 9, 1ULL << 11, 1ULL << 52, 1ULL << 62, 1ULL << 8,
		0 /* PAT */, 1ULL << 51, 0 /* MAXPHYADDR */, PTE_PS,
		1ULL << 13, 1ULL << 20, 1ULL << 29,
	};
	unsigned int nsizes = have_1g ? 3 : 2;
	unsigned int s, l, l2, f, ci, si;
	uint64_t e[4];

	for (s = 0; s < nsizes; s++) {
		int nlev = 4 - s;
		unsigned int ncfg = g->full ? 16 : 4;

		/* A: every combination of 7 flags at one level. */
		for (l = 0; l < nlev; l++) {
			/* Non-leaf levels of large pages: done with 4K. */
			if (s && l != nlev - 1)
				continue;
			for (f = 0; f < 128; f++)
				for (ci = 0; ci < ncfg; ci++) {
					for (l2 = 0; l2 < nlev; l2++)
						e[l2] = entry(g, l2, nlev,
							l2 == l ? f : PERMISSIVE, 0);
					add(g, e, nlev, g->full ? ci : cfg4[ci],
					    0);
				}
			/* B: P, R/W, U/S, XD in all 16 paging modes. */
			for (f = 0; f < 16; f++)
				for (ci = 0; ci < 16; ci++) {
					for (l2 = 0; l2 < nlev; l2++)
						e[l2] = entry(g, l2, nlev,
							l2 == l ? f : PERMISSIVE, 0);
					add(g, e, nlev, ci, 1);
				}
		}
		/* C: R/W, U/S, XD at every pair of levels. */
		for (l = 0; l < nlev; l++)
			for (l2 = l + 1; l2 < nlev; l2++)
				gen_pair(g, nlev, l, l2, ncfg);
		/* D: the other reserved and ignored bits. */
		for (l = 0; l < nlev; l++)
			for (si = 0; si < sizeof(special) / 8; si++) {
				bool leaf = l == nlev - 1;
				uint64_t b = special[si];

				if (si == 5)	/* PAT */
					b = leaf ? (nlev == 4 ? 1ULL << 7 :
						    1ULL << 12) : 0;
				if (si == 7)
					b = maxphy < 52 ? 1ULL << maxphy : 0;
				if (!b || (b == PTE_PS && l != 0))
					continue;
				if ((b == 1ULL << 13 || b == 1ULL << 20) &&
				    (!leaf || nlev == 4))
					continue;
				/* 29 is an address bit of a 2 MiB page. */
				if (b == 1ULL << 29 && (!leaf || nlev != 2))
					continue;
				if (b == 1ULL << 8 && !leaf)
					continue;
				for (ci = 0; ci < 2; ci++) {
					for (l2 = 0; l2 < nlev; l2++)
						e[l2] = entry(g, l2, nlev,
							      PERMISSIVE,
							      l2 == l ? b : 0);
					add(g, e, nlev,
					    ci ? CFG_WP | CFG_NXE : CFG_WP, 3);
				}
			}
	}
}

static int cmp_cfg(const void *a, const void *b)
{
	const struct oc_case *x = a, *y = b;

	if (x->cfg != y->cfg)
		return x->cfg - y->cfg;
	return (x->va > y->va) - (x->va < y->va);	/* stable */
}

/* ---- the test ---- */

FIXTURE(oracle) {
	int unused;
};

FIXTURE_SETUP(oracle)
{
	maxphy = mmu_maxphyaddr();
	have_1g = mmu_has_1g();
}

FIXTURE_TEARDOWN(oracle)
{
}

static bool env_set(const char *name)
{
	const char *v = getenv(name);

	return v && *v && strcmp(v, "0");
}

/*
 * Run the cases; 0 when the guest finished, -1 if the VM stopped (what
 * it said is in *why).  *mismatches counts the failed checks.
 */
static int run_cases(struct __test_metadata *_metadata, struct gen *g,
		     uint64_t *mismatches, char *why, size_t whylen)
{
	static const uint8_t code[] = MMU_FETCH_CODE;
	uint64_t data, tables, va, nbytes, npages, p, i, t0, a_fault = 0;
	uint64_t last = 0;
	uint64_t mem = 64 * TVM_MiB, cr3 = TVM_PT_GPA, set[4] = { 0 };
	struct oc_result *res;
	struct tvm *vm;
	struct ucall uc;
	uint8_t *page;
	int l, ret = 0;

	vm = tvm_create(mem);
	/* The data page, in a 2 MiB aligned region below 1 GiB, stamped. */
	vm->next_free = (vm->next_free + 0x1fffff) & ~0x1fffffULL;
	data = tvm_alloc(vm, 1);
	page = tvm_gpa(vm, data);
	memset(page, 0xcc, 4096);
	page[OFF_R] = STAMP;
	page[OFF_W] = 0;
	memcpy(page + OFF_X, code, sizeof(code));

	/* The test page's chain: VA = base + the data page's GPA. */
	g->va = va = TEST_VA_BASE + data;
	tvm_map(vm, va, data, PTE_P | PTE_W | PTE_U);
	for (l = 0; l < 4; l++)
		oc.ent[l] = mmu_entry_gpa(vm, cr3, va, 4 - l);
	for (l = 0; l < 3; l++)
		g->addr[l][0] = *(uint64_t *)tvm_gpa(vm, oc.ent[l]) &
				PTE_ADDR;
	g->addr[1][1] = 0;			/* 1 GiB page at GPA 0 */
	g->addr[2][1] = data & ~0x1fffffULL;	/* 2 MiB page */
	g->addr[3][1] = data;

	gen_all(g);
	for (i = 0; i < g->n; i++)
		set[g->c[i].set]++;
	printf("# maxphyaddr %u, 1G pages %s; %zu cases (A %llu B %llu C %llu D %llu)%s\n",
	       maxphy, have_1g ? "yes" : "no", g->n,
	       (unsigned long long)set[0], (unsigned long long)set[1],
	       (unsigned long long)set[2], (unsigned long long)set[3],
	       g->full ? " full" : "");
	/* Stable sort by paging mode: few mode switches. */
	for (i = 0; i < g->n; i++)
		g->c[i].va = i;
	qsort(g->c, g->n, sizeof(*g->c), cmp_cfg);
	for (i = 0; i < g->n; i++)
		g->c[i].va = va;

	nbytes = g->n * (sizeof(struct oc_case) + sizeof(struct oc_result));
	npages = (nbytes + 4095) / 4096;
	tables = tvm_alloc(vm, npages);
	for (p = 0; p < npages; p++)
		tvm_map(vm, TABLE_VA + p * 4096, tables + p * 4096, PTE_P |
			PTE_W);
	tvm_map(vm, TABLE_VA + npages * 4096, data, PTE_P | PTE_W);
	oc.alias = TABLE_VA + npages * 4096;
	memcpy(tvm_gpa(vm, tables), g->c, g->n * sizeof(struct oc_case));
	oc.cases = TABLE_VA;
	oc.results = TABLE_VA + g->n * sizeof(struct oc_case);
	oc.n = g->n;
	oc.chunk = tvm_env_u64("MMU_ORACLE_CHUNK", 8192);
	tvm_sync_to_guest(vm, oc);
	mmu_kernel_only(vm);

	tvm_enter(vm, guest_oracle, 0);
	t0 = tvm_now_ns();
	for (;;) {
		uint64_t cmd = tvm_run_ucall(vm, &uc);

		if (cmd == UCALL_SYNC) {
			last = uc.args[0];
			/* Small chunks are for debugging: show each one. */
			if (oc.chunk < 16 && last <= g->n && last)
				print_case(&g->c[last - 1], "done");
			continue;
		}
		if (cmd != UCALL_DONE) {
			snprintf(why, whylen, "%s (after case %llu)",
				 tvm_describe(vm, &uc),
				 (unsigned long long)last);
			if (last < g->n)
				print_case(&g->c[last], "next case");
			ret = -1;
		}
		break;
	}
	printf("# %zu cases in %llu ms\n", g->n,
	       (unsigned long long)(tvm_now_ns() - t0) / 1000000);
	if (!ret) {
		res = tvm_gpa(vm, tables + g->n * sizeof(struct oc_case));
		for (i = 0; i < g->n; i++)
			*mismatches += check(&g->c[i], &res[i], &a_fault);
		printf("# %llu mismatches; A set by %llu faulting walks (allowed)\n",
		       (unsigned long long)*mismatches,
		       (unsigned long long)a_fault);
	}
	tvm_free(vm);
	return ret;
}

TEST_F_TIMEOUT(oracle, matrix, 300)
{
	struct gen g = { .full = env_set("MMU_ORACLE_FULL") };
	uint64_t mismatches = 0;
	char why[1024];

	ASSERT_EQ(0, run_cases(_metadata, &g, &mismatches, why, sizeof(why)))
		TH_LOG("guest stopped: %s", why);
	EXPECT_EQ(0, mismatches);
	free(g.c);
}

/* CPUID.(EAX=7,ECX=0):ECX[4] OSPKE: the host has CR4.PKE = 1. */
static bool host_ospke(void)
{
	unsigned int a, b, c, d;

	if (!__get_cpuid_count(7, 0, &a, &b, &c, &d))
		return false;
	return c & (1U << 4);
}

static uint32_t host_rdpkru(void)
{
	uint32_t eax, edx;

	asm volatile("rdpkru" : "=a"(eax), "=d"(edx) : "c"(0));
	return eax;
}

static void host_wrpkru(uint32_t pkru)
{
	asm volatile("wrpkru" : : "a"(pkru), "c"(0), "d"(0) : "memory");
}

TEST_F_TIMEOUT(oracle, kernel_fetch_user_page_smap, 180)
{
	struct gen g = { .full = true, .smap_fetch_only = true };
	uint64_t mismatches = 0;
	char why[1024];
	int ret;

	ret = run_cases(_metadata, &g, &mismatches, why, sizeof(why));
	free(g.c);
	if (ret && !host_ospke()) {
		why[200] = 0;
		SKIP(return, "host has no protection keys (no PKU/OSPKE): the module stops the VM on a guest CPL0 fetch from a user page with SMAP on, AC=0, SMEP off: %.200s",
		     why);
	}
	ASSERT_EQ(0, ret) TH_LOG("guest stopped: %s", why);
	EXPECT_EQ(0, mismatches);
}

/* ---- a guest WRPKRU ---- */

/*
 * GUEST_SYNC(@tag) right after WRPKRU(@pkru), with no memory access in
 * between (the ucall block is filled first): the value the guest loaded
 * is still in PKRU when it exits.
 */
static void guest_wrpkru_sync(uint32_t pkru, uint64_t tag)
{
	guest_ucall_fill(UCALL_SYNC, __FILE__, __LINE__, NULL, tag, 0, 0, 0);
	asm volatile("xorl %%edx, %%edx\n\t"
		     "wrpkru\n\t"
		     "movl %[port], %%edx\n\t"
		     "movl %[gpa], %%eax\n\t"
		     "outl %%eax, %%dx"
		     : "+a"(pkru)
		     : "c"(0), [port] "i"(TVM_UCALL_PORT),
		       [gpa] "i"((uint32_t)TVM_UCALL_GPA)
		     : "rdx", "memory");
}

static uint32_t guest_rdpkru(void)
{
	uint32_t eax, edx;

	asm volatile("rdpkru" : "=a"(eax), "=d"(edx) : "c"(0));
	return eax;
}

static volatile uint64_t wk_array[512];

/* Run @access with the fault catcher armed; mmu_fault says what it did. */
#define WK_TRY(access) ({						\
	uint64_t __v;							\
	mmu_fault.vector = 0xff;					\
	mmu_fault_armed = 1;						\
	__v = (access);							\
	mmu_fault_armed = 0;						\
	__v;								\
})

/* SMAP on, SMEP off: @va is a user page, execute-only for CPL0. */
static void guest_wrpkru(uint64_t va)
{
	uint64_t v, i;

	mmu_guest_install_catcher();
	oc_set_cfg(CFG_WP | CFG_NXE | CFG_SMAP);
	for (i = 0; i < 2; i++) {
		/* The fetch runs; a read (4.7: P=1, W=0, U/S=0) faults. */
		v = WK_TRY(mmu_k_fetch(va + OFF_X));
		GUEST_ASSERT_EQ(mmu_fault.vector, 0xff);
		GUEST_ASSERT_EQ(v, STAMP);
		v = WK_TRY(mmu_k_read(va + OFF_R));
		GUEST_ASSERT_EQ(mmu_fault.vector, PF_VECTOR);
		GUEST_ASSERT_EQ(mmu_fault.err, 1);
		GUEST_ASSERT_EQ(mmu_fault.cr2, va + OFF_R);
		WK_TRY(mmu_k_fetch(va + OFF_X));
		GUEST_ASSERT_EQ(mmu_fault.vector, 0xff);
		/*
		 * All keys open, then exit: after the next entry the read
		 * above must still be SMAP's #PF.
		 */
		if (!i)
			guest_wrpkru_sync(0, 1);
	}
	/* Everything denied, then exit: the host must not see it. */
	guest_wrpkru_sync(~0U, 2);
	for (i = 0; i < 512; i++)
		wk_array[i] = i;
	GUEST_SYNC(guest_rdpkru());
	/* Plain kernel loads and stores: no exit each (key 0 open again). */
	for (i = 0; i < 512; i++)
		wk_array[i] += wk_array[511 - i];
	GUEST_SYNC(4);
	/* The user page from guest CPL3. */
	v = WK_TRY(mmu_user_call(mmu_user_addr(mmu_u_read), va + OFF_R, 0));
	GUEST_ASSERT_EQ(mmu_fault.vector, 0xff);
	GUEST_ASSERT_EQ(v, STAMP);
	WK_TRY(mmu_user_call(mmu_user_addr(mmu_u_write), va + OFF_W,
			     WRITE_VAL));
	GUEST_ASSERT_EQ(mmu_fault.vector, 0xff);
	oc_set_cfg(CFG_WP | CFG_NXE);
}

static uint64_t vcpu_entries(struct __test_metadata *_metadata,
			     struct tvm *vm)
{
	struct trapvm_vcpu_stats st;

	memset(&st, 0, sizeof(st));
	EXPECT_EQ(0, ioctl(vm->vcpu, TRAPVM_GET_STATS, &st));
	return st.count[TRAPVM_STAT_ENTRIES];
}

TEST_F_TIMEOUT(oracle, guest_wrpkru_contained, 120)
{
	static const uint8_t code[] = MMU_FETCH_CODE;
	const uint32_t mine = 0x12345678;	/* key 0 open */
	uint64_t data, va, cmd, entries = 0;
	uint32_t orig;
	long long mark;
	struct ucall uc;
	struct tvm *vm;
	uint8_t *page;
	char why[512];
	int step;

	if (!host_ospke())
		SKIP(return, "host has no protection keys (no PKU/OSPKE)");
	mark = mmu_host_log_mark();
	vm = tvm_create(16 * TVM_MiB);
	data = tvm_alloc(vm, 1);
	page = tvm_gpa(vm, data);
	memset(page, 0xcc, 4096);
	page[OFF_R] = STAMP;
	memcpy(page + OFF_X, code, sizeof(code));
	va = TEST_VA_BASE + data;
	tvm_map(vm, va, data, PTE_P | PTE_W | PTE_U);
	mmu_kernel_only(vm);
	tvm_enter(vm, guest_wrpkru, va);

	orig = host_rdpkru();
	for (step = 1; step <= 5; step++) {
		host_wrpkru(mine);
		cmd = tvm_run_ucall(vm, &uc);
		/* Read before anything else can change it. */
		EXPECT_EQ(mine, host_rdpkru()) TH_LOG("step %d", step);
		host_wrpkru(orig);
		if (step == 5) {
			ASSERT_EQ(UCALL_DONE, cmd)
				TH_LOG("%s", tvm_describe(vm, &uc));
			break;
		}
		ASSERT_EQ(UCALL_SYNC, cmd) TH_LOG("step %d: %s", step,
						  tvm_describe(vm, &uc));
		if (step <= 2)
			ASSERT_EQ(step, uc.args[0]);
		if (step == 3) {
			/* The guest's all-deny did not survive the exit. */
			EXPECT_EQ(0, uc.args[0] & 3)
				TH_LOG("guest PKRU %#llx",
				       (unsigned long long)uc.args[0]);
			entries = vcpu_entries(_metadata, vm);
		}
		if (step == 4) {
			ASSERT_EQ(4, uc.args[0]);
			/* 1024 accesses, not an exit (and emulation) each. */
			EXPECT_GT(32, vcpu_entries(_metadata, vm) - entries);
		}
	}
	EXPECT_EQ(WRITE_VAL, page[OFF_W]);
	tvm_free(vm);
	EXPECT_TRUE(mmu_host_clean_since(mark, why, sizeof(why)))
		TH_LOG("%s", why);
}

TEST_HARNESS_MAIN
