// SPDX-License-Identifier: GPL-2.0
/*
 * Unit test of the guest page-table walker (kmod/shadow/walk.c) and of the
 * shadow-leaf computation (kmod/shadow/shadow_pte.c), in userspace.
 *
 * The oracle is a model of the Intel SDM Vol. 3A rules written here, apart
 * from the walker: 4.5 (4-level paging, reserved bits), 4.6 (access rights
 * for supervisor-mode and user-mode accesses, SMEP, SMAP, protection keys),
 * 4.7 (the #PF error code) and 4.8 (accessed and dirty flags).  It only
 * calls trapvm_walk() and trapvm_shadow_pte() and compares their results
 * with the model for a matrix of page-table flags at every level and every
 * paging-mode bit.  Every mismatch is printed; the expected count is 0.
 *
 * Output: TAP.  Build: see selftests/unit/Makefile.
 */
#include <stdio.h>
#include <stdlib.h>
#include <inttypes.h>
#include <trapvm/walk.h>

/* ------------------------------------------------------------------ */
/* A tiny guest-physical memory: 64 KiB of tables, the rest unbacked.  */

#define MEM_SIZE	0x10000
#define PML4_GPA	0x1000
#define PDPT_GPA	0x2000
#define PD_GPA		0x3000
#define PT_GPA		0x4000
/* The frame every leaf points at: 1 GiB aligned, so any size fits. */
#define FRAME_GPA	0x40000000ULL

static uint64_t mem[MEM_SIZE / 8];
static int unbacked_error;	/* read_pte outside mem: error, not ~0 */
static int race_left;		/* cmpxchg reports a change this many times */
static int nr_cmpxchg;

static int t_read_pte(void *opaque, u64 gpa, u64 *pte)
{
	(void)opaque;
	if (gpa & 7)
		return -22;
	if (gpa >= MEM_SIZE) {
		if (unbacked_error)
			return -14;
		*pte = ~0ULL;
		return 0;
	}
	*pte = mem[gpa / 8];
	return 0;
}

static int t_cmpxchg_pte(void *opaque, u64 gpa, u64 old, u64 new)
{
	(void)opaque;
	nr_cmpxchg++;
	if (gpa >= MEM_SIZE)
		return -14;
	if (race_left > 0) {
		race_left--;
		return 1;
	}
	if (mem[gpa / 8] != old)
		return 1;
	mem[gpa / 8] = new;
	return 0;
}

static const struct trapvm_walk_ops ops = {
	.read_pte = t_read_pte,
	.cmpxchg_pte = t_cmpxchg_pte,
};

/* A canonical lower-half address with a different index at each level. */
#define TEST_GVA	0x00007f8a5b3c4d5eULL

static unsigned int idx_of(u64 gva, int level)
{
	return (gva >> (12 + 9 * (level - 1))) & 511;
}

static const u64 table_gpa[5] = { 0, PT_GPA, PD_GPA, PDPT_GPA, PML4_GPA };

/*
 * Install entries for @gva: ent[0] is the PML4E (level 4), ent[1] level 3,
 * ... down to the leaf at level @leaf.  The address field of each
 * non-leaf entry is filled in here, the leaf's points at FRAME_GPA.
 */
static u64 installed_at[4];
static int nr_installed;

static void install(u64 gva, const u64 *flags, int leaf)
{
	int level;

	/* Only undo the previous install: a memset per walk is too slow. */
	while (nr_installed)
		mem[installed_at[--nr_installed] / 8] = 0;
	for (level = 4; level >= 1; level--) {
		installed_at[nr_installed++] = table_gpa[level] +
					       idx_of(gva, level) * 8;
	}
	for (level = 4; level >= leaf; level--) {
		u64 e = flags[4 - level];

		if (level == leaf)
			e |= FRAME_GPA;
		else
			e |= table_gpa[level - 1];
		mem[(table_gpa[level] + idx_of(gva, level) * 8) / 8] = e;
	}
}

/* The entries as install() writes them, address fields included. */
static void full_entries(const u64 *flags, int leaf, u64 *out)
{
	int level;

	for (level = 4; level >= 1; level--) {
		if (level < leaf)
			out[4 - level] = 0;
		else
			out[4 - level] = flags[4 - level] |
				(level == leaf ? FRAME_GPA : table_gpa[level - 1]);
	}
}

static u64 entry_now(u64 gva, int level)
{
	return mem[(table_gpa[level] + idx_of(gva, level) * 8) / 8];
}

/* ------------------------------------------------------------------ */
/* The model (SDM Vol. 3A 4.5-4.8), independent of the walker.         */

struct expect {
	int gp;			/* non-canonical */
	int fault;
	u32 pfec;
	int leaf;		/* level of the leaf when no fault */
	u64 gpa;
	int pk_blocked;		/* for the record */
};

#define PFEC_P	1u
#define PFEC_W	2u
#define PFEC_US	4u
#define PFEC_RSVD 8u
#define PFEC_ID	16u
#define PFEC_PK	32u

#define B(n)	(1ULL << (n))
/* Bits 51:MAXPHYADDR. */
#define RSVD_MASK_ALL(mp)	((B(52) - 1) & ~(B(mp) - 1))

enum acc { A_READ, A_WRITE, A_FETCH };

/* Table 4-14 .. 4-20: which bits of a present entry are reserved. */
static int model_reserved(const struct trapvm_walk_ctx *c, int level, u64 e)
{
	int bit;

	for (bit = c->maxphyaddr; bit <= 51; bit++)
		if (e & B(bit))
			return 1;
	if (!c->nxe && (e & B(63)))
		return 1;
	switch (level) {
	case 4:
		return !!(e & B(7));		/* PML4E: PS must be 0 */
	case 3:
		if (!(e & B(7)))
			return 0;
		if (!c->gbpages)
			return 1;
		for (bit = 13; bit <= 29; bit++)	/* 1 GiB leaf */
			if (e & B(bit))
				return 1;
		return 0;
	case 2:
		if (!(e & B(7)))
			return 0;
		for (bit = 13; bit <= 20; bit++)	/* 2 MiB leaf */
			if (e & B(bit))
				return 1;
		return 0;
	default:
		return 0;			/* PTE: bit 7 is PAT */
	}
}

/*
 * One access.  @e[i] is the entry at level 4 - i as installed.  The
 * model reads entries from @e, not from memory: it does not walk memory.
 */
static struct expect model(const struct trapvm_walk_ctx *c, u64 gva,
			   const u64 *e, enum acc acc, int implicit)
{
	struct expect x = { 0 };
	int user_access = c->cpl == 3 && !implicit;
	int user_page = 1, writable = 1, xd = 0;
	u32 base = 0;
	int level, i;
	u64 leaf_e = 0;

	if ((gva >> 47) != 0 && (gva >> 47) != 0x1ffff) {
		x.gp = 1;
		return x;
	}

	/* 4.7: bits describing the access, in every #PF error code. */
	if (acc == A_WRITE)
		base |= PFEC_W;
	if (user_access)
		base |= PFEC_US;
	if (acc == A_FETCH && (c->smep || c->nxe))
		base |= PFEC_ID;

	for (i = 0, level = 4; level >= 1; i++, level--) {
		u64 ent = e[i];
		int is_leaf;

		if (level == 4 && c->hole && idx_of(gva, 4) >= 256 &&
		    idx_of(gva, 4) <= 271)
			ent = 0;	/* the hole: ignored entries */
		if (!(ent & 1)) {
			x.fault = 1;
			x.pfec = base;
			return x;
		}
		if (model_reserved(c, level, ent)) {
			x.fault = 1;
			x.pfec = base | PFEC_P | PFEC_RSVD;
			return x;
		}
		if (!(ent & B(1)))
			writable = 0;
		if (!(ent & B(2)))
			user_page = 0;
		if (c->nxe && (ent & B(63)))
			xd = 1;
		is_leaf = level == 1 || ((level == 2 || level == 3) &&
					 (ent & B(7)));
		if (is_leaf) {
			leaf_e = ent;
			break;
		}
	}
	x.leaf = level;

	/* 4.6.1: access rights. */
	{
		int ok;
		int smap_open = !c->smap || (c->ac && !implicit);

		if (user_access) {
			if (acc == A_READ)
				ok = user_page;
			else if (acc == A_WRITE)
				ok = user_page && writable;
			else
				ok = user_page && !xd;
		} else if (acc == A_READ) {
			ok = !user_page || smap_open;
		} else if (acc == A_WRITE) {
			if (!user_page)
				ok = !c->wp || writable;
			else
				ok = smap_open && (!c->wp || writable);
		} else {
			if (!user_page)
				ok = !xd;
			else
				ok = !c->smep && !xd;
		}

		/* 4.6.2: protection keys, data accesses to user pages. */
		int pk = 0;

		if (c->pke && user_page && acc != A_FETCH) {
			unsigned int key = (leaf_e >> 59) & 15;
			int ad = (c->pkru >> (2 * key)) & 1;
			int wd = (c->pkru >> (2 * key + 1)) & 1;

			if (ad)
				pk = 1;
			if (acc == A_WRITE && wd && (user_access || c->wp))
				pk = 1;
		}
		x.pk_blocked = pk;
		if (!ok || pk) {
			x.fault = 1;
			x.pfec = base | PFEC_P | (pk ? PFEC_PK : 0);
			return x;
		}
	}

	{
		u64 size = level == 3 ? B(30) : level == 2 ? B(21) : B(12);
		u64 frame = leaf_e & ((B(c->maxphyaddr) - 1)) & ~(size - 1);

		x.gpa = frame | (gva & (size - 1));
	}
	return x;
}

/* ------------------------------------------------------------------ */

static long nr_checks, nr_mismatch;
static int print_budget = 40;

static void mismatch(const char *what, const struct trapvm_walk_ctx *c,
		     const u64 *e, int leaf, int acc, int implicit,
		     const char *detail)
{
	nr_mismatch++;
	if (print_budget-- <= 0)
		return;
	printf("# MISMATCH %s: %s; cpl=%d acc=%d impl=%d wp=%d nxe=%d smep=%d smap=%d ac=%d pke=%d pkru=%x leaf=%d e=[%016" PRIx64 " %016" PRIx64 " %016" PRIx64 " %016" PRIx64 "]\n",
	       what, detail, c->cpl, acc, implicit, c->wp, c->nxe, c->smep,
	       c->smap, c->ac, c->pke, c->pkru, leaf, e[0], e[1], e[2], e[3]);
}

static const u32 acc_flags[3] = {
	TRAPVM_ACC_READ, TRAPVM_ACC_WRITE, TRAPVM_ACC_FETCH
};

/*
 * Install @e (leaf at @leaf), walk, compare fault/error code/gpa/level with
 * the model and the A/D flags in memory afterwards with 4.8.
 */
static void check_one(const char *what, const struct trapvm_walk_ctx *c,
		      u64 gva, const u64 *e, int leaf, enum acc acc,
		      int implicit)
{
	struct trapvm_walk w;
	struct expect x;
	u32 access = acc_flags[acc] | (implicit ? TRAPVM_ACC_IMPLICIT : 0);
	char buf[160];
	int level;

	u64 full[4];

	/* ACC_USER is optional at CPL3 (the emulator passes it). */
	if (c->cpl == 3 && !implicit && (nr_checks & 1))
		access |= TRAPVM_ACC_USER;
	install(gva, e, leaf);
	full_entries(e, leaf, full);
	x = model(c, gva, full, acc, implicit);
	trapvm_walk(c, &ops, NULL, gva, access, &w);
	nr_checks++;

	if (x.gp) {
		if (w.status != TRAPVM_WALK_GP)
			mismatch(what, c, e, leaf, acc, implicit,
				 "expected #GP");
		return;
	}
	if (x.fault) {
		if (w.status != TRAPVM_WALK_PF || w.error_code != x.pfec) {
			snprintf(buf, sizeof(buf),
				 "expected #PF %#x, got status %d pfec %#x",
				 x.pfec, w.status, w.error_code);
			mismatch(what, c, e, leaf, acc, implicit, buf);
		}
	} else {
		if (w.status != TRAPVM_WALK_OK || w.gpa != x.gpa ||
		    w.level != x.leaf ||
		    w.page_size != (1ULL << (12 + 9 * (x.leaf - 1)))) {
			snprintf(buf, sizeof(buf),
				 "expected OK gpa %#" PRIx64 " leaf %d, got status %d pfec %#x gpa %#" PRIx64 " level %d",
				 x.gpa, x.leaf, w.status, w.error_code,
				 w.gpa, w.level);
			mismatch(what, c, e, leaf, acc, implicit, buf);
		}
	}

	/* 4.8: A on every entry used, D on the leaf for a write; only when
	 * the access is allowed (the translation is used).
	 */
	for (level = 4; level >= leaf; level--) {
		u64 want = full[4 - level];

		if (!x.fault && level >= x.leaf) {
			want |= B(5);
			if (level == x.leaf && acc == A_WRITE)
				want |= B(6);
		}
		if (entry_now(gva, level) != want) {
			snprintf(buf, sizeof(buf),
				 "level %d entry %#" PRIx64 " want %#" PRIx64,
				 level, entry_now(gva, level), want);
			mismatch(what, c, e, leaf, acc, implicit, buf);
		}
	}
}

/* Iterate the paging-mode bits (not PKE) and every access type. */
static void check_all_modes(const char *what, const struct trapvm_walk_ctx *c0,
			  u64 gva, const u64 *e, int leaf)
{
	struct trapvm_walk_ctx c = *c0;
	unsigned int m;

	for (m = 0; m < 64; m++) {
		int acc, impl;

		c.cpl = (m & 1) ? 3 : 0;
		c.wp = !!(m & 2);
		c.nxe = !!(m & 4);
		c.smep = !!(m & 8);
		c.smap = !!(m & 16);
		c.ac = !!(m & 32);
		for (acc = 0; acc < 3; acc++)
			for (impl = 0; impl < 2; impl++) {
				if (impl && acc == A_FETCH)
					continue;
				check_one(what, &c, gva, e, leaf, acc, impl);
			}
	}
}

static struct trapvm_walk_ctx base_ctx(void)
{
	struct trapvm_walk_ctx c = {
		.cr3 = PML4_GPA,
		.maxphyaddr = 40,
		.gbpages = true,
	};
	return c;
}

static int tap_n;

static void tap(int ok, const char *name)
{
	printf("%s %d - %s\n", ok ? "ok" : "not ok", ++tap_n, name);
}

/* P, R/W, U/S, XD at every level of a walk to a @leaf-level page. */
static void test_flag_matrix(int leaf)
{
	static const u64 flag_bits[4] = { B(0), B(1), B(2), B(63) };
	struct trapvm_walk_ctx c = base_ctx();
	int nlev = 5 - leaf;
	unsigned long combo, ncombo = 1UL << (4 * nlev);
	long before = nr_mismatch;
	char name[80];

	for (combo = 0; combo < ncombo; combo++) {
		u64 e[4] = { 0 };
		int i, b;

		for (i = 0; i < nlev; i++) {
			for (b = 0; b < 4; b++)
				if (combo & (1UL << (4 * i + b)))
					e[i] |= flag_bits[b];
			if (i == nlev - 1 && leaf > 1)
				e[i] |= B(7);
		}
		check_all_modes("flags", &c, TEST_GVA, e, leaf);
	}
	snprintf(name, sizeof(name),
		 "P/RW/US/XD matrix, %s pages, all modes (%ld mismatches)",
		 leaf == 1 ? "4K" : leaf == 2 ? "2M" : "1G",
		 nr_mismatch - before);
	tap(nr_mismatch == before, name);
}

/*
 * Reserved bits: each candidate bit at each level with everything else
 * permissive, for several MAXPHYADDRs, and a not-present entry below or
 * above it (whichever comes first in the walk wins).
 */
static void test_reserved(void)
{
	static const int maxphys[] = { 36, 39, 40, 46, 52 };
	static const int bits[] = { 7, 8, 9, 11, 12, 13, 16, 20, 21, 22, 29,
				    30, 31, 35, 36, 39, 40, 45, 46, 50, 51,
				    52, 58, 59, 62, 63 };
	const u64 ok_bits = B(0) | B(1) | B(2);
	long before = nr_mismatch;
	unsigned int mp, bi;
	int np, leaf, lvl, gb;
	char name[80];

	unsigned long combo;

	/* mp x gb x leaf x lvl x bi x np, one counter to keep it flat. */
	for (combo = 0; combo < ARRAY_SIZE(maxphys) * 2 * 3 * 4 *
			       ARRAY_SIZE(bits) * 5; combo++) {
		struct trapvm_walk_ctx c = base_ctx();
		unsigned long k = combo;
		u64 e[4] = { 0 };
		int i;

		np = k % 5;
		k /= 5;
		bi = k % ARRAY_SIZE(bits);
		k /= ARRAY_SIZE(bits);
		lvl = 4 - k % 4;
		k /= 4;
		leaf = 1 + k % 3;
		k /= 3;
		gb = k % 2;
		mp = k / 2;
		if (lvl < leaf)
			continue;

		c.maxphyaddr = maxphys[mp];
		c.gbpages = gb;
		for (i = 0; i < 5 - leaf; i++)
			e[i] = ok_bits;
		if (leaf > 1)
			e[4 - leaf] |= B(7);
		/* The frame must fit the smallest MAXPHYADDR tried. */
		/*
		 * Bits 12..MAXPHYADDR-1 of a table pointer are its address,
		 * not reserved: setting them would only move the table.
		 */
		if (lvl > leaf && bits[bi] >= 12 && bits[bi] < maxphys[mp])
			continue;
		e[4 - lvl] |= B(bits[bi]);
		/* np: 0 = none, else a not-present entry at level np. */
		if (np >= leaf && np != 0)
			e[4 - np] &= ~B(0);
		check_all_modes("rsvd", &c, TEST_GVA, e, leaf);
	}
	snprintf(name, sizeof(name),
		 "reserved bits per level, MAXPHYADDR, 1G support (%ld mismatches)",
		 nr_mismatch - before);
	tap(nr_mismatch == before, name);
}

/* Protection keys: every key's AD/WD combination, user and supervisor. */
static void test_pkeys(void)
{
	long before = nr_mismatch;
	unsigned int key, adwd;
	int us, rw;

	unsigned int combo;

	for (combo = 0; combo < 16 * 4 * 2 * 2; combo++) {
		struct trapvm_walk_ctx c = base_ctx();
		u64 e[4] = { 7, 7, 7, 1 };

		rw = combo & 1;
		us = (combo >> 1) & 1;
		adwd = (combo >> 2) & 3;
		key = combo >> 4;

		c.pke = true;
		/* Other keys all disabled, this one per adwd. */
		c.pkru = 0xffffffffu & ~(3u << (2 * key));
		c.pkru |= adwd << (2 * key);
		if (us)
			e[3] |= B(2);
		if (rw)
			e[3] |= B(1);
		e[3] |= (u64)key << 59;
		check_all_modes("pkeys", &c, TEST_GVA, e, 1);
	}
	tap(nr_mismatch == before, "protection keys");
}

/*
 * Random entries and modes: every bit of every entry may be anything but
 * the address of a next-level table (which would only move the table).
 * Catches interactions the structured matrices above do not combine
 * (PS with reserved bits with XD with keys, MAXPHYADDR with large pages).
 */
static void test_random(void)
{
	static const int maxphys[] = { 36, 40, 46, 52 };
	unsigned int seed = 20261120;
	long before = nr_mismatch;
	long iter;

	for (iter = 0; iter < 1000000; iter++) {
		struct trapvm_walk_ctx c = base_ctx();
		int leaf = 1 + rand_r(&seed) % 3;
		u64 e[4] = { 0 };
		int i, acc, implicit;

		c.maxphyaddr = maxphys[rand_r(&seed) % 4];
		c.cpl = rand_r(&seed) % 2 ? 3 : 0;
		c.wp = rand_r(&seed) % 2;
		c.nxe = rand_r(&seed) % 2;
		c.smep = rand_r(&seed) % 2;
		c.smap = rand_r(&seed) % 2;
		c.ac = rand_r(&seed) % 2;
		c.pke = rand_r(&seed) % 2;
		c.pkru = rand_r(&seed);
		c.gbpages = rand_r(&seed) % 4 != 0;
		for (i = 0; i < 5 - leaf; i++) {
			int level = 4 - i;
			u64 r = ((u64)rand_r(&seed) << 33) ^
				((u64)rand_r(&seed) << 11) ^ rand_r(&seed);

			/* Mostly-valid entries, so walks get far enough. */
			r |= B(0);
			if (rand_r(&seed) % 4)
				r &= ~(RSVD_MASK_ALL(c.maxphyaddr));
			if (rand_r(&seed) % 4)
				r &= ~B(63);
			if (rand_r(&seed) % 8 == 0)
				r &= ~B(0);
			if (level > leaf) {
				/* Keep the pointer to our next table. */
				r &= ~(((1ULL << c.maxphyaddr) - 1) & ~0xfffULL);
				if (rand_r(&seed) % 8)
					r &= ~B(7);
			} else if (level > 1) {
				r |= B(7);
				if (rand_r(&seed) % 2)
					r &= ~(((1ULL << (12 + 9 * (level - 1))) -
						1) & ~0x1fffULL);
			}
			e[i] = r;
		}
		acc = rand_r(&seed) % 3;
		implicit = acc != A_FETCH && rand_r(&seed) % 4 == 0;
		check_one("random", &c, TEST_GVA, e, leaf, acc, implicit);
	}
	tap(nr_mismatch == before, "random entries and modes, 1M walks");
}

/* Non-canonical addresses: #GP, no memory touched. */
static void test_canonical(void)
{
	static const u64 gvas[] = {
		0x0000800000000000ULL, 0xffff7fffffffffffULL,
		0x8000000000000000ULL, 0x00ff000000001000ULL,
		0x0000000000001000ULL, 0xffff800000001000ULL,
		0x00007fffffffffffULL, 0xffffffffffffffffULL,
	};
	long before = nr_mismatch;
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(gvas); i++) {
		struct trapvm_walk_ctx c = base_ctx();
		u64 e[4] = { 7, 7, 7, 7 };

		check_all_modes("canonical", &c, gvas[i], e, 1);
	}
	tap(nr_mismatch == before, "non-canonical addresses give #GP");
}

/* The hole: PML4 slots 256..271 read as not present when ctx->hole. */
static void test_hole(void)
{
	static const u64 gvas[] = {
		0xffff800000000000ULL, 0xffff87ffffffffffULL,
		0xffff880000000000ULL, 0x0000000000401000ULL,
		0xffff840123456789ULL,
	};
	long before = nr_mismatch;
	unsigned int i;
	int hole;

	for (hole = 0; hole < 2; hole++)
		for (i = 0; i < ARRAY_SIZE(gvas); i++) {
			struct trapvm_walk_ctx c = base_ctx();
			u64 e[4] = { 7, 7, 7, 7 };

			c.hole = hole;
			check_all_modes("hole", &c, gvas[i], e, 1);
		}
	tap(nr_mismatch == before, "hole PML4 slots 256..271");
}

/* Entries outside RAM, a failing read, a racing cmpxchg. */
static void test_memory_edges(void)
{
	struct trapvm_walk_ctx c = base_ctx();
	struct trapvm_walk w;
	u64 e[4] = { 7, 7, 7, 7 };
	int ok = 1;

	/* A PDPT outside memory reads all ones: reserved-bit fault. */
	install(TEST_GVA, e, 1);
	mem[(PML4_GPA + idx_of(TEST_GVA, 4) * 8) / 8] = 0x100000000ULL | 7;
	trapvm_walk(&c, &ops, NULL, TEST_GVA, TRAPVM_ACC_READ, &w);
	if (w.status != TRAPVM_WALK_PF ||
	    w.error_code != (PFEC_P | PFEC_RSVD)) {
		printf("# unbacked table: status %d pfec %#x\n", w.status,
		       w.error_code);
		ok = 0;
	}
	unbacked_error = 1;
	trapvm_walk(&c, &ops, NULL, TEST_GVA, TRAPVM_ACC_READ, &w);
	if (w.status != TRAPVM_WALK_ERROR || w.err != -14) {
		printf("# failing read: status %d err %d\n", w.status, w.err);
		ok = 0;
	}
	unbacked_error = 0;

	/* A few lost cmpxchg races: the walk is redone and succeeds. */
	install(TEST_GVA, e, 1);
	race_left = 3;
	trapvm_walk(&c, &ops, NULL, TEST_GVA, TRAPVM_ACC_WRITE, &w);
	if (w.status != TRAPVM_WALK_OK ||
	    entry_now(TEST_GVA, 1) != (FRAME_GPA | 7 | B(5) | B(6))) {
		printf("# race: status %d\n", w.status);
		ok = 0;
	}
	/* Endless races: the walker gives up with RETRY. */
	install(TEST_GVA, e, 1);
	race_left = 1000000;
	trapvm_walk(&c, &ops, NULL, TEST_GVA, TRAPVM_ACC_READ, &w);
	if (w.status != TRAPVM_WALK_RETRY) {
		printf("# endless race: status %d\n", w.status);
		ok = 0;
	}
	race_left = 0;

	/* No cmpxchg callback: a walk that changes nothing. */
	{
		struct trapvm_walk_ops ro = { .read_pte = t_read_pte };

		install(TEST_GVA, e, 1);
		trapvm_walk(&c, &ro, NULL, TEST_GVA, TRAPVM_ACC_WRITE, &w);
		if (w.status != TRAPVM_WALK_OK ||
		    entry_now(TEST_GVA, 1) != (FRAME_GPA | 7)) {
			printf("# read-only walk changed memory\n");
			ok = 0;
		}
	}

	/* Already-set A/D: no writes at all. */
	{
		u64 ad[4] = { 7 | B(5), 7 | B(5), 7 | B(5), 7 | B(5) | B(6) };

		install(TEST_GVA, ad, 1);
		nr_cmpxchg = 0;
		trapvm_walk(&c, &ops, NULL, TEST_GVA, TRAPVM_ACC_WRITE, &w);
		if (w.status != TRAPVM_WALK_OK || nr_cmpxchg) {
			printf("# A/D already set: %d cmpxchg\n", nr_cmpxchg);
			ok = 0;
		}
	}

	/* CR3's low bits (PCID, PWT/PCD) and bit 63 are not address. */
	c.cr3 = PML4_GPA | 0x818 | B(63);
	install(TEST_GVA, e, 1);
	trapvm_walk(&c, &ops, NULL, TEST_GVA, TRAPVM_ACC_READ, &w);
	if (w.status != TRAPVM_WALK_OK || w.gpa != (FRAME_GPA | 0xd5e)) {
		printf("# cr3 low bits: status %d gpa %#" PRIx64 "\n",
		       w.status, w.gpa);
		ok = 0;
	}
	nr_checks += 7;
	if (!ok)
		nr_mismatch++;
	tap(ok, "unbacked tables, read errors, A/D races, CR3 flags");
}

/*
 * The shadow leaf.  The hardware runs the guest at CPL3 (user-mode
 * accesses) with NXE = 1: a shadow leaf allows a read if P, a write if
 * R/W, a fetch if not NX.  For each view and guest mode, the shadow must
 * allow exactly what the model allows the virtual mode of that view,
 * except that a write must fault while the guest's D flag is clear, and
 * that "fetch but no read" (KERNEL view, SMAP on, SMEP off, user page) is
 * left unmapped without host protection keys (documented in
 * shadow_pte.c).  With them the hardware also applies the PKRU the guest
 * runs with (TRAPVM_SHADOW_PKRU) to data accesses: AD or WD of the leaf's
 * key.
 */
static void test_shadow_pte(void)
{
	static const u64 host_pa = 0x123456789000ULL;
	struct trapvm_walk_ctx c = base_ctx();
	long before = nr_mismatch;
	unsigned int combo, m;
	char buf[160];

	for (combo = 0; combo < 1024; combo++) {
		u64 e[4] = { 1, 1, 1, 1 };
		int i;

		/* R/W, U/S, XD of all four levels, and the leaf's D. */
		for (i = 0; i < 4; i++) {
			if (combo & (1u << i))
				e[i] |= B(1);
			if (combo & (16u << i))
				e[i] |= B(2);
		}
		if (combo & 256)
			e[3] |= B(6);
		c.host_pkeys = !!(combo & 512);
		for (m = 0; m < 128; m++) {
			struct trapvm_walk w;
			enum trapvm_view view;
			u64 spte;
			int acc;

			c.cpl = (m & 1) ? 3 : 0;
			c.wp = !!(m & 2);
			c.nxe = !!(m & 4);
			c.smep = !!(m & 8);
			c.smap = !!(m & 16);
			c.ac = !!(m & 32);
			if (m & 64) {
				if (!c.nxe)
					continue;
				e[2] |= B(63);
			} else {
				e[2] &= ~B(63);
			}

			/* Any translation: an implicit supervisor read. */
			{
				struct trapvm_walk_ctx k = c;

				k.cpl = 0;
				k.smap = false;
				install(TEST_GVA, e, 1);
				if (trapvm_walk(&k, &ops, NULL, TEST_GVA,
						TRAPVM_ACC_READ |
						TRAPVM_ACC_IMPLICIT,
						&w) != TRAPVM_WALK_OK) {
					mismatch("shadow", &c, e, 1, 0, 1,
						 "setup walk failed");
					continue;
				}
			}
			view = trapvm_view_of(&c);
			spte = trapvm_shadow_pte(&c, &w, view, host_pa);
			nr_checks++;

			if (spte && ((spte & TRAPVM_PTE_ADDR_MASK) != host_pa ||
				     !(spte & B(2)))) {
				mismatch("shadow", &c, e, 1, 0, 0,
					 "bad address or U/S=0");
				continue;
			}
			for (acc = 0; acc < 3; acc++) {
				u64 full[4];
				struct expect x;

				full_entries(e, 1, full);
				x = model(&c, TEST_GVA, full, acc, 0);
				int hw, want = !x.fault;

				if (!(spte & 1))
					hw = 0;
				else if (acc == A_WRITE)
					hw = !!(spte & B(1));
				else if (acc == A_FETCH)
					hw = !(spte & B(63));
				else
					hw = 1;
				if (hw && acc != A_FETCH && c.host_pkeys) {
					int key = (spte >> 59) & 15;
					u32 pkru = TRAPVM_SHADOW_PKRU;

					if ((pkru >> (2 * key)) & 1 ||
					    (acc == A_WRITE &&
					     (pkru >> (2 * key + 1)) & 1))
						hw = 0;
				}
				if (acc == A_WRITE && !(e[3] & B(6)))
					want = 0;	/* D clear: fault */
				if (acc == A_FETCH && want &&
				    view == TRAPVM_VIEW_KERNEL && !c.smep &&
				    (w.perm & TRAPVM_PERM_U) && !c.host_pkeys)
					want = 0;	/* documented */
				if (hw != want) {
					snprintf(buf, sizeof(buf),
						 "view %d spte %#" PRIx64 " hw %d want %d",
						 view, spte, hw, want);
					mismatch("shadow", &c, e, 1, acc, 0,
						 buf);
				}
			}
		}
	}
	tap(nr_mismatch == before, "shadow leaf permissions per view");
}

int main(void)
{
	printf("TAP version 13\n1..10\n");
	test_flag_matrix(1);
	test_flag_matrix(2);
	test_flag_matrix(3);
	test_reserved();
	test_pkeys();
	test_random();
	test_canonical();
	test_hole();
	test_memory_edges();
	test_shadow_pte();
	printf("# %ld checks, %ld mismatches\n", nr_checks, nr_mismatch);
	return nr_mismatch ? 1 : 0;
}
