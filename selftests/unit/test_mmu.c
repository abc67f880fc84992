// SPDX-License-Identifier: GPL-2.0
/*
 * Unit test of the shadow MMU (kmod/shadow/), in userspace on
 * the kernel shim in kshim/: guest page tables are built in fake guest
 * RAM, trapvm_mmu_page_fault() & co. are called as the world switch would,
 * and the resulting shadow tables are walked here and checked against
 * what the test itself knows it mapped: which host page backs each guest
 * frame, the permissions the guest gave, A/D flags, the views, INVLPG of
 * 4K/2M/1G guest pages, the hole, MMIO, 4- and 5-level host roots, and
 * that destroy frees every shadow page and page reference.
 *
 * Output: TAP.
 */
#include <stdio.h>
#include <stdlib.h>
#include <inttypes.h>
#include <sys/mman.h>
#include "kshim/kshim.h"
#include <linux/trapvm_guest.h>
#include "../../kmod/shadow/mmu_internal.h"

/* ------------------------------------------------------------------ */
/* The shim's memory                                                   */

unsigned char *kshim_arena;
struct page kshim_pages[NR_ARENA_PAGES];
long kshim_pages_used, kshim_bad_frees, kshim_warnings;
int kshim_la57, kshim_fail_alloc, kshim_fail_kmalloc;
bool kshim_ospke;
struct kshim_cpuinfo boot_cpu_data = { .x86_phys_bits = 40 };
static unsigned int next_free;
long kshim_lock_errors;

/* ------------------------------------------------------------------ */
/* What the module provides around kmod/shadow/                        */

static long protect_calls, kick_calls, flush_calls;

void trapvm_guest_mem_protect_from_user(struct trapvm_vm *v, u64 gfn)
{
	protect_calls++;
}

void trapvm_vcpu_kick(struct trapvm_vcpu *v)
{
	kick_calls++;
}

/* tlb.c: the remote flush, counted; the test plays the other CPUs. */
int trapvm_mmu_flush_init(struct trapvm_vm_mmu *m)
{
	return 0;
}

void trapvm_mmu_flush_free(struct trapvm_vm_mmu *m)
{
}

void trapvm_mmu_flush_remote(struct trapvm_vm_mmu *m)
{
	lockdep_assert_held(&m->lock);
	flush_calls++;
}

struct page *alloc_page(gfp_t gfp)
{
	unsigned int i;

	/* kshim_fail_alloc = n: the n-th allocation from now fails. */
	if (kshim_fail_alloc > 0 && --kshim_fail_alloc == 0)
		return NULL;
	for (i = 0; i < NR_ARENA_PAGES; i++) {
		unsigned int n = (next_free + i) % NR_ARENA_PAGES;
		struct page *page = &kshim_pages[n];

		if (page->refcount)
			continue;
		page->refcount = 1;
		page->private = 0;
		next_free = n + 1;
		kshim_pages_used++;
		/* Garbage unless asked to zero: catches missing __GFP_ZERO. */
		memset(page_address(page), (gfp & __GFP_ZERO) ? 0 : 0xa5,
		       PAGE_SIZE);
		return page;
	}
	return NULL;
}

void __free_page(struct page *page)
{
	if (page < kshim_pages || page >= kshim_pages + NR_ARENA_PAGES ||
	    page->refcount != 1) {
		kshim_bad_frees++;
		return;
	}
	page->refcount = 0;
	kshim_pages_used--;
}

/* ------------------------------------------------------------------ */
/* Guest memory                                                        */

#define GUEST_RAM	(16ULL << 20)
#define GUEST_GFNS	(GUEST_RAM >> PAGE_SHIFT)

static struct trapvm_vm vm;
static struct page *gpages[GUEST_GFNS];

struct page *trapvm_gfn_to_page(struct trapvm_vm *v, u64 gfn, bool alloc)
{
	if (gfn >= (v->mem.size >> PAGE_SHIFT))
		return NULL;
	if (!gpages[gfn]) {
		if (!alloc)
			return NULL;
		gpages[gfn] = alloc_page(__GFP_ZERO);
		if (!gpages[gfn])
			return NULL;
	}
	get_page(gpages[gfn]);
	return gpages[gfn];
}

static int guest_phys_copy(u64 gpa, void *buf, size_t len, bool write)
{
	if (gpa + len > GUEST_RAM || gpa + len < gpa)
		return -EFAULT;
	while (len) {
		size_t n = min(len, PAGE_SIZE - (gpa & ~PAGE_MASK));
		struct page *page = trapvm_gfn_to_page(&vm, gpa >> PAGE_SHIFT,
						       true);
		unsigned char *p;

		if (!page)
			return -ENOMEM;
		p = (unsigned char *)page_address(page) + (gpa & ~PAGE_MASK);
		if (write)
			memcpy(p, buf, n);
		else
			memcpy(buf, p, n);
		put_page(page);
		buf = (unsigned char *)buf + n;
		gpa += n;
		len -= n;
	}
	return 0;
}

int trapvm_read_guest_phys(struct trapvm_vm *v, u64 gpa, void *buf,
			   size_t len)
{
	(void)v;
	return guest_phys_copy(gpa, buf, len, false);
}

int trapvm_write_guest_phys(struct trapvm_vm *v, u64 gpa, const void *buf,
			    size_t len)
{
	(void)v;
	return guest_phys_copy(gpa, (void *)buf, len, true);
}

static u64 gread64(u64 gpa)
{
	u64 v = 0;

	trapvm_read_guest_phys(&vm, gpa, &v, 8);
	return v;
}

static void gwrite64(u64 gpa, u64 v)
{
	trapvm_write_guest_phys(&vm, gpa, &v, 8);
}

/* Host physical address of the page backing @gpa (allocating it). */
static u64 host_pa_of(u64 gpa)
{
	struct page *page = trapvm_gfn_to_page(&vm, gpa >> PAGE_SHIFT, true);
	u64 pa = page_to_phys(page);

	put_page(page);
	return pa;
}

/* ------------------------------------------------------------------ */
/* Guest page tables                                                   */

#define P	BIT_ULL(0)
#define RW	BIT_ULL(1)
#define US	BIT_ULL(2)
#define A	BIT_ULL(5)
#define D	BIT_ULL(6)
#define PS	BIT_ULL(7)
#define NX	BIT_ULL(63)
#define PKEY	(0xfULL << 59)
#define ADDR	0x000ffffffffff000ULL

#define GUEST_CR3	0x100000ULL
static u64 next_table;

static void guest_tables_reset(void)
{
	u64 a;

	for (a = GUEST_CR3; a < GUEST_CR3 + 0x100000; a += 8)
		gwrite64(a, 0);
	next_table = GUEST_CR3 + PAGE_SIZE;
}

static unsigned int gidx(u64 gva, int level)
{
	return (gva >> (12 + 9 * (level - 1))) & 511;
}

/* Address of the guest entry for @gva at @level, creating tables above. */
static u64 guest_entry(u64 gva, int level)
{
	u64 table = GUEST_CR3;
	int l;

	for (l = 4; l > level; l--) {
		u64 ea = table + gidx(gva, l) * 8;
		u64 e = gread64(ea);

		if (!(e & P)) {
			e = next_table | P | RW | US;
			next_table += PAGE_SIZE;
			gwrite64(ea, e);
		}
		table = e & ADDR;
	}
	return table + gidx(gva, level) * 8;
}

/* Map @gva -> @gpa with a leaf at @level (1 = 4K, 2 = 2M, 3 = 1G). */
static u64 guest_map(u64 gva, u64 gpa, int level, u64 flags)
{
	u64 ea = guest_entry(gva, level);

	gwrite64(ea, gpa | flags | (level > 1 ? PS : 0));
	return ea;
}

/* ------------------------------------------------------------------ */
/* Reading the shadow                                                  */

static struct trapvm_vcpu vcpu;

/* The shadow leaf for @gva under @root_pa (PML5 if la57), or 0. */
static u64 shadow_leaf(u64 root_pa, u64 gva)
{
	u64 *table = __va(root_pa);
	int level = kshim_la57 ? 5 : 4;

	for (; level >= 1; level--) {
		unsigned int idx = (gva >> (12 + 9 * (level - 1))) & 511;
		u64 e = table[idx];

		if (level == 1)
			return e;
		if (!(e & P))
			return 0;
		if (e & PS)
			return ~0ULL;	/* the shadow never uses large pages */
		table = __va(e & ADDR);
	}
	return 0;
}

static void set_mode(int cpl, u64 cr0_extra, u64 cr4, bool nxe, bool ac)
{
	vcpu.cpu.cpl = cpl;
	vcpu.cpu.cr0 = X86_CR0_PG | 1 | cr0_extra;
	vcpu.cpu.cr4 = cr4 | BIT_ULL(5);
	vcpu.cpu.efer = BIT_ULL(8) | BIT_ULL(10) | (nxe ? EFER_NX : 0);
	vcpu.cpu.rflags = 2 | (ac ? X86_EFLAGS_AC : 0);
	vcpu.cpu.cr3 = GUEST_CR3;
}

static void kernel_mode(void)
{
	set_mode(0, X86_CR0_WP, 0, true, false);
}

/* ------------------------------------------------------------------ */

static int tap_n, failures;

#define CHECK(cond, ...) do {						\
	if (!(cond)) {							\
		printf("# %s:%d: check failed: %s: ", __func__,	\
		       __LINE__, #cond);				\
		printf(__VA_ARGS__);					\
		printf("\n");						\
		ok = 0;							\
	}								\
} while (0)

static void tap(int ok, const char *name)
{
	printf("%s %d - %s%s\n", ok ? "ok" : "not ok", ++tap_n, name,
	       kshim_la57 ? " (5-level host)" : " (4-level host)");
	if (!ok)
		failures++;
}

#define HW_P	1u
#define HW_W	2u
#define HW_U	4u
#define HW_I	16u
#define HW_PK	32u

static long roots_pages(void)
{
	/* The empty root used when out of memory. */
	return kshim_la57 ? 2 : 1;
}

/* Every guest page holds only the VM's own reference. */
static int guest_refs_clean(void)
{
	unsigned int i;

	for (i = 0; i < GUEST_GFNS; i++)
		if (gpages[i] && gpages[i]->refcount != 1)
			return 0;
	return 1;
}

static void setup(void)
{
	memset(&vcpu, 0, sizeof(vcpu));
	vcpu.vm = &vm;
	vm.mem.size = GUEST_RAM;
	guest_tables_reset();
	kernel_mode();
}

static void test_init_destroy(void)
{
	long before;
	int ok = 1, ret;

	setup();
	before = kshim_pages_used;
	ret = trapvm_mmu_init(&vcpu);
	CHECK(ret == 0, "init %d", ret);
	CHECK(kshim_pages_used - before == roots_pages(), "%ld pages",
	      kshim_pages_used - before);
	CHECK(trapvm_mmu_total_pages() == roots_pages(), "total %ld",
	      trapvm_mmu_total_pages());
	trapvm_mmu_destroy(&vcpu);
	CHECK(vcpu.mmu == NULL, "mmu left");
	CHECK(kshim_pages_used == before, "leak %ld",
	      kshim_pages_used - before);
	trapvm_mmu_destroy(&vcpu);	/* a second destroy is a no-op */

	/* Allocation failure at each step of init: nothing leaks. */
	for (int n = 1; n <= (int)roots_pages(); n++) {
		long used = kshim_pages_used;

		kshim_fail_alloc = n;
		ret = trapvm_mmu_init(&vcpu);
		kshim_fail_alloc = 0;
		CHECK(ret == -ENOMEM && !vcpu.mmu, "init, alloc %d fails: %d",
		      n, ret);
		CHECK(kshim_pages_used == used, "leak when alloc %d fails", n);
	}
	kshim_fail_alloc = 1;
	ret = trapvm_mmu_init(&vcpu);
	CHECK(ret == -ENOMEM && !vcpu.mmu, "init with no memory: %d", ret);
	kshim_fail_alloc = 0;
	CHECK(kshim_pages_used == before, "leak after failed init");
	CHECK(kshim_bad_frees == 0 && kshim_warnings == 0, "bad frees %ld",
	      kshim_bad_frees);
	tap(ok, "init/destroy, no leak, failed init cleans up");
}

/* A read then a write through a fresh 4K mapping: the D-bit dance. */
static void test_hidden_faults(void)
{
	u64 wproot;
	const u64 gva = 0x400123, gpa = 0x200000;
	struct trapvm_fault f;
	u64 root, leaf, ea;
	int ok = 1, r;

	setup();
	trapvm_mmu_init(&vcpu);
	ea = guest_map(gva, gpa, 1, P | RW);
	root = trapvm_mmu_root(&vcpu);

	r = trapvm_mmu_page_fault(&vcpu, gva, HW_U, &f);
	CHECK(r == TRAPVM_MMU_FAULT_RESUME, "read fault: %d", r);
	leaf = shadow_leaf(root, gva);
	CHECK((leaf & ADDR) == host_pa_of(gpa), "leaf %#" PRIx64, leaf);
	CHECK((leaf & (P | US)) == (P | US), "leaf %#" PRIx64, leaf);
	CHECK(!(leaf & RW), "writable before D: %#" PRIx64, leaf);
	CHECK(!(leaf & NX), "NX on an executable page");
	CHECK((gread64(ea) & (A | D)) == A, "guest pte %#" PRIx64,
	      gread64(ea));

	r = trapvm_mmu_page_fault(&vcpu, gva, HW_P | HW_W | HW_U, &f);
	CHECK(r == TRAPVM_MMU_FAULT_RESUME, "write fault: %d", r);
	leaf = shadow_leaf(root, gva);
	CHECK(leaf & RW, "not writable after D: %#" PRIx64, leaf);
	CHECK((gread64(ea) & (A | D)) == (A | D), "guest pte %#" PRIx64,
	      gread64(ea));
	CHECK(vcpu.stats[TRAPVM_STAT_MMU_HIDDEN_PF] == 2, "hidden %llu",
	      (unsigned long long)vcpu.stats[TRAPVM_STAT_MMU_HIDDEN_PF]);

	/* Read-only guest page, WP = 1: the write is the guest's #PF. */
	guest_map(gva + 0x1000, gpa + 0x1000, 1, P);
	r = trapvm_mmu_page_fault(&vcpu, gva + 0x1000, HW_W | HW_U, &f);
	CHECK(r == TRAPVM_MMU_FAULT_INJECT && f.vector == 14 &&
	      f.error_code == (HW_P | HW_W) && f.cr2 == gva + 0x1000,
	      "r %d vector %d error %#x", r, f.vector, f.error_code);
	CHECK(shadow_leaf(root, gva + 0x1000) == 0, "mapped anyway");
	/* ... and with WP = 0 the guest kernel may write it. */
	set_mode(0, 0, 0, true, false);
	/* CR0.WP is part of the role: another root; the WP = 1 one stays. */
	wproot = trapvm_mmu_root(&vcpu);
	CHECK(wproot != root, "same root for WP = 0");
	CHECK(shadow_leaf(wproot, gva) == 0, "WP = 0 root not empty");
	r = trapvm_mmu_page_fault(&vcpu, gva + 0x1000, HW_W | HW_U, &f);
	CHECK(r == TRAPVM_MMU_FAULT_RESUME, "WP=0 write: %d", r);
	CHECK(shadow_leaf(wproot, gva + 0x1000) & RW,
	      "WP=0 write not mapped writable");
	kernel_mode();
	CHECK(trapvm_mmu_root(&vcpu) == root, "WP = 1 root not cached");
	CHECK((shadow_leaf(root, gva) & RW) &&
	      !(shadow_leaf(root, gva + 0x1000) & RW),
	      "cached WP = 1 root changed");

	/* Not present: #PF with the guest's error code (kernel: U = 0). */
	r = trapvm_mmu_page_fault(&vcpu, 0x7000000, HW_U | HW_I, &f);
	CHECK(r == TRAPVM_MMU_FAULT_INJECT && f.error_code == HW_I,
	      "r %d error %#x", r, f.error_code);
	/* Delivery, not the MMU, counts injected #PFs. */
	CHECK(vcpu.stats[TRAPVM_STAT_INJ_PF] == 0, "inj %llu",
	      (unsigned long long)vcpu.stats[TRAPVM_STAT_INJ_PF]);

	/* NX page: a fetch is the guest's #PF, a read is mapped NX. */
	guest_map(0x600000, 0x300000, 1, P | NX | A);
	r = trapvm_mmu_page_fault(&vcpu, 0x600000, HW_U | HW_I, &f);
	CHECK(r == TRAPVM_MMU_FAULT_INJECT &&
	      f.error_code == (HW_P | HW_I), "r %d error %#x", r,
	      f.error_code);
	r = trapvm_mmu_page_fault(&vcpu, 0x600000, HW_U, &f);
	CHECK(r == TRAPVM_MMU_FAULT_RESUME &&
	      (shadow_leaf(root, 0x600000) & NX), "NX read %d", r);

	/*
	 * A fault on a leaf that already allows it is resumed once (another
	 * vCPU may have filled the shared leaf after the fault); the same
	 * fault again on the same leaf: can't fix, don't loop.
	 */
	r = trapvm_mmu_page_fault(&vcpu, gva, HW_P | HW_W | HW_U, &f);
	CHECK(r == TRAPVM_MMU_FAULT_RESUME, "first repeated fault: %d", r);
	r = trapvm_mmu_page_fault(&vcpu, gva, HW_P | HW_W | HW_U, &f);
	CHECK(r == TRAPVM_MMU_FAULT_EMULATE, "repeated fault: %d", r);
	CHECK(shadow_leaf(root, gva) & RW, "leaf lost");
	/* A hardware supervisor-mode access (U = 0): not the shadow's. */
	r = trapvm_mmu_page_fault(&vcpu, gva, HW_P, &f);
	CHECK(r == TRAPVM_MMU_FAULT_EMULATE, "supervisor access: %d", r);

	/* A shadow reserved-bit fault is a bug: kill, don't loop. */
	r = trapvm_mmu_page_fault(&vcpu, gva, HW_P | HW_U | 8, &f);
	CHECK(r == TRAPVM_MMU_FAULT_KILL, "rsvd: %d", r);

	trapvm_mmu_destroy(&vcpu);
	CHECK(guest_refs_clean(), "page references left");
	CHECK(trapvm_mmu_total_pages() == 0, "shadow pages left");
	tap(ok, "hidden faults, D on first write, injected #PF, WP, NX");
}

/* Guest user and kernel views, SMAP and SMEP. */
static void test_views(void)
{
	const u64 sup = 0x800000, usr = 0x801000;
	struct trapvm_fault f;
	u64 kroot, uroot, acroot, xroot, xkey;
	int ok = 1, r;

	setup();
	trapvm_mmu_init(&vcpu);
	guest_map(sup, 0x400000, 1, P | RW | A | D);
	guest_map(usr, 0x401000, 1, P | RW | US | A | D);

	set_mode(0, X86_CR0_WP, X86_CR4_SMEP | X86_CR4_SMAP, true, false);
	kroot = trapvm_mmu_root(&vcpu);
	set_mode(0, X86_CR0_WP, X86_CR4_SMEP | X86_CR4_SMAP, true, true);
	acroot = trapvm_mmu_root(&vcpu);
	set_mode(3, X86_CR0_WP, X86_CR4_SMEP | X86_CR4_SMAP, true, false);
	uroot = trapvm_mmu_root(&vcpu);
	CHECK(kroot != uroot && kroot != acroot && uroot != acroot,
	      "views share a root");

	/* Guest user mode: its page maps, the kernel's is a #PF(P|U). */
	r = trapvm_mmu_page_fault(&vcpu, usr, HW_W | HW_U, &f);
	CHECK(r == TRAPVM_MMU_FAULT_RESUME, "user write %d", r);
	CHECK(shadow_leaf(uroot, usr) & RW, "user leaf");
	r = trapvm_mmu_page_fault(&vcpu, sup, HW_U, &f);
	CHECK(r == TRAPVM_MMU_FAULT_INJECT && f.error_code == (HW_P | HW_U),
	      "user read of kernel page: r %d error %#x", r, f.error_code);
	CHECK(shadow_leaf(uroot, sup) == 0, "kernel page in user view");

	/* Guest kernel, SMAP closed: user page is a #PF, kernel page maps. */
	set_mode(0, X86_CR0_WP, X86_CR4_SMEP | X86_CR4_SMAP, true, false);
	CHECK(trapvm_mmu_root(&vcpu) == kroot, "kernel root changed");
	r = trapvm_mmu_page_fault(&vcpu, usr, HW_U, &f);
	CHECK(r == TRAPVM_MMU_FAULT_INJECT && f.error_code == HW_P,
	      "SMAP read: r %d error %#x", r, f.error_code);
	r = trapvm_mmu_page_fault(&vcpu, sup, HW_U | HW_I, &f);
	CHECK(r == TRAPVM_MMU_FAULT_RESUME, "kernel fetch %d", r);
	CHECK((shadow_leaf(kroot, sup) & (P | US | RW | NX)) ==
	      (P | US | RW), "kernel leaf %#" PRIx64, shadow_leaf(kroot, sup));
	CHECK(shadow_leaf(kroot, usr) == 0, "user page in SMAP view");

	/* SMAP open (AC = 1): user page readable/writable, never fetchable
	 * with SMEP.
	 */
	set_mode(0, X86_CR0_WP, X86_CR4_SMEP | X86_CR4_SMAP, true, true);
	r = trapvm_mmu_page_fault(&vcpu, usr, HW_W | HW_U, &f);
	CHECK(r == TRAPVM_MMU_FAULT_RESUME, "AC write %d", r);
	CHECK((shadow_leaf(acroot, usr) & (RW | NX)) == (RW | NX),
	      "AC leaf %#" PRIx64, shadow_leaf(acroot, usr));
	r = trapvm_mmu_page_fault(&vcpu, usr, HW_P | HW_U | HW_I, &f);
	CHECK(r == TRAPVM_MMU_FAULT_INJECT &&
	      f.error_code == (HW_P | HW_I), "SMEP: r %d error %#x", r,
	      f.error_code);

	/* SMAP on, SMEP off, AC = 0: fetch from a user page can't be
	 * expressed without host protection keys: kill rather than loop.
	 */
	set_mode(0, X86_CR0_WP, X86_CR4_SMAP, true, false);
	r = trapvm_mmu_page_fault(&vcpu, usr, HW_U | HW_I, &f);
	CHECK(r == TRAPVM_MMU_FAULT_KILL, "execute-only: %d", r);

	/* With them: a present, executable, read-only leaf whose key the
	 * guest's PKRU denies (and only that key).  A read or write then
	 * faults in hardware with PK: the guest's SMAP #PF, without PK.
	 */
	kshim_ospke = true;
	xroot = trapvm_mmu_root(&vcpu);
	xkey = (u64)TRAPVM_SHADOW_XO_PKEY << TRAPVM_PTE_PKEY_SHIFT;
	CHECK(TRAPVM_SHADOW_XO_PKEY != 0 &&
	      (TRAPVM_SHADOW_PKRU >> (2 * TRAPVM_SHADOW_XO_PKEY) & 3) == 3 &&
	      (TRAPVM_SHADOW_PKRU & ~(3u << (2 * TRAPVM_SHADOW_XO_PKEY))) == 0,
	      "PKRU %#x key %d", TRAPVM_SHADOW_PKRU, TRAPVM_SHADOW_XO_PKEY);
	r = trapvm_mmu_page_fault(&vcpu, usr, HW_U | HW_I, &f);
	CHECK(r == TRAPVM_MMU_FAULT_RESUME, "execute-only fetch: %d", r);
	CHECK((shadow_leaf(xroot, usr) & (P | US | RW | NX | PKEY)) ==
	      (P | US | xkey), "execute-only leaf %#" PRIx64,
	      shadow_leaf(xroot, usr));
	r = trapvm_mmu_page_fault(&vcpu, sup, HW_U, &f);
	CHECK(r == TRAPVM_MMU_FAULT_RESUME &&
	      (shadow_leaf(xroot, sup) & (P | PKEY)) == P,
	      "kernel leaf: r %d %#" PRIx64, r, shadow_leaf(xroot, sup));
	r = trapvm_mmu_page_fault(&vcpu, usr, HW_P | HW_U | HW_PK, &f);
	CHECK(r == TRAPVM_MMU_FAULT_INJECT && f.error_code == HW_P &&
	      f.cr2 == usr, "PK read: r %d error %#x", r, f.error_code);
	r = trapvm_mmu_page_fault(&vcpu, usr, HW_U | HW_I, &f);
	CHECK(r == TRAPVM_MMU_FAULT_RESUME, "execute-only refetch: %d", r);
	r = trapvm_mmu_page_fault(&vcpu, usr, HW_P | HW_W | HW_U | HW_PK,
				  &f);
	CHECK(r == TRAPVM_MMU_FAULT_INJECT &&
	      f.error_code == (HW_P | HW_W) && f.cr2 == usr,
	      "PK write: r %d error %#x", r, f.error_code);
	/* RFLAGS.AC = 1 is another root: an ordinary readable leaf. */
	set_mode(0, X86_CR0_WP, X86_CR4_SMAP, true, true);
	r = trapvm_mmu_page_fault(&vcpu, usr, HW_U, &f);
	CHECK(r == TRAPVM_MMU_FAULT_RESUME && trapvm_mmu_root(&vcpu) != xroot,
	      "AC read: %d", r);
	CHECK((shadow_leaf(trapvm_mmu_root(&vcpu), usr) & (P | PKEY)) == P,
	      "AC leaf %#" PRIx64,
	      shadow_leaf(trapvm_mmu_root(&vcpu), usr));
	/* SMEP on: nothing to express, the fetch is the guest's #PF. */
	set_mode(0, X86_CR0_WP, X86_CR4_SMEP | X86_CR4_SMAP, true, false);
	r = trapvm_mmu_page_fault(&vcpu, usr, HW_U | HW_I, &f);
	CHECK(r == TRAPVM_MMU_FAULT_INJECT &&
	      f.error_code == (HW_P | HW_I), "SMEP fetch: r %d error %#x", r,
	      f.error_code);
	kshim_ospke = false;

	trapvm_mmu_destroy(&vcpu);
	CHECK(guest_refs_clean() && trapvm_mmu_total_pages() == 0, "leak");
	tap(ok, "views: guest user, kernel SMAP closed/open, SMEP");
}

/* INVLPG of 4K, 2M and 1G guest pages; CR3 loads; injected #PF. */
static void test_invalidation(void)
{
	struct trapvm_fault f;
	u64 root, ea, other;
	unsigned long nr_sp;
	int ok = 1, r;

	setup();
	trapvm_mmu_init(&vcpu);
	root = trapvm_mmu_root(&vcpu);

	/* 4K: two neighbours, INVLPG drops exactly one. */
	guest_map(0x1000000, 0x500000, 1, P | RW | A);
	guest_map(0x1001000, 0x501000, 1, P | RW | A);
	trapvm_mmu_page_fault(&vcpu, 0x1000000, HW_U, &f);
	trapvm_mmu_page_fault(&vcpu, 0x1001000, HW_U, &f);
	CHECK(shadow_leaf(root, 0x1000000) && shadow_leaf(root, 0x1001000),
	      "not filled");
	trapvm_mmu_invlpg(&vcpu, 0x1000abc);
	CHECK(shadow_leaf(root, 0x1000000) == 0, "4K not dropped");
	CHECK(shadow_leaf(root, 0x1001000) != 0, "neighbour dropped");
	CHECK(gpages[0x500]->refcount == 1, "ref of the dropped leaf kept");

	/* 2M guest page: INVLPG anywhere in it drops all its leaves. */
	guest_map(0x40000000, 0x600000, 2, P | RW | A);
	trapvm_mmu_page_fault(&vcpu, 0x40000000, HW_U, &f);
	trapvm_mmu_page_fault(&vcpu, 0x40001000, HW_U, &f);
	r = trapvm_mmu_page_fault(&vcpu, 0x401ff000, HW_U, &f);
	CHECK(r == TRAPVM_MMU_FAULT_RESUME &&
	      (shadow_leaf(root, 0x401ff000) & ADDR) == host_pa_of(0x7ff000),
	      "2M leaf %#" PRIx64, shadow_leaf(root, 0x401ff000));
	/* Shared: another 2M guest page onto the same frames, same role. */
	guest_map(0x40200000, 0x600000, 2, P | RW | A);
	nr_sp = vcpu.mmu->vm_mmu->nr_sp;
	r = trapvm_mmu_page_fault(&vcpu, 0x40201000, HW_U, &f);
	CHECK(r == TRAPVM_MMU_FAULT_RESUME && shadow_leaf(root, 0x40201000) &&
	      vcpu.mmu->vm_mmu->nr_sp == nr_sp, "direct shadow page not shared: %d",
	      r);
	trapvm_mmu_invlpg(&vcpu, 0x40001456);
	CHECK(!shadow_leaf(root, 0x40001000) &&
	      shadow_leaf(root, 0x401ff000), "INVLPG in a 2M page");
	CHECK(shadow_leaf(root, 0x1001000) != 0, "4K page dropped by 2M");

	/* 1G guest page (gpa 0: RAM is its first 16M). */
	guest_map(0x8000000000ULL, 0, 3, P | RW | A);
	trapvm_mmu_page_fault(&vcpu, 0x8000003000ULL, HW_U, &f);
	trapvm_mmu_page_fault(&vcpu, 0x8000a00000ULL, HW_U, &f);
	CHECK((shadow_leaf(root, 0x8000a00000ULL) & ADDR) ==
	      host_pa_of(0xa00000), "1G leaf");
	/* Beyond RAM inside the 1G page: MMIO, with the gpa. */
	r = trapvm_mmu_page_fault(&vcpu, 0x8012345678ULL, HW_W | HW_U, &f);
	CHECK(r == TRAPVM_MMU_FAULT_MMIO &&
	      trapvm_mmu_mmio_gpa(vcpu.mmu) == 0x12345678,
	      "MMIO r %d gpa %#" PRIx64, r, trapvm_mmu_mmio_gpa(vcpu.mmu));
	CHECK(shadow_leaf(root, 0x8012345678ULL) == 0, "MMIO mapped");
	trapvm_mmu_invlpg(&vcpu, 0x8000003fffULL);
	CHECK(!shadow_leaf(root, 0x8000003000ULL) &&
	      shadow_leaf(root, 0x8000a00000ULL), "INVLPG in a 1G page");

	/* Injected #PF drops the stale translation of that address. */
	ea = guest_map(0x1002000, 0x502000, 1, P | RW | A | D);
	trapvm_mmu_page_fault(&vcpu, 0x1002000, HW_W | HW_U, &f);
	CHECK(shadow_leaf(root, 0x1002000) & RW, "not writable");
	gwrite64(ea, 0);	/* the guest unmaps without INVLPG */
	r = trapvm_mmu_page_fault(&vcpu, 0x1002000, HW_U | HW_I, &f);
	CHECK(r == TRAPVM_MMU_FAULT_INJECT &&
	      shadow_leaf(root, 0x1002000) == 0, "stale after #PF");

	/*
	 * CR3 or a paging bit changed (emulated or SET_SREGS): another
	 * root; back to the first state: its cached root, leaves intact.
	 */
	CHECK(trapvm_mmu_root(&vcpu) == root &&
	      shadow_leaf(root, 0x1001000) != 0, "dropped for nothing");
	vcpu.cpu.cr4 |= X86_CR4_SMEP;
	other = trapvm_mmu_root(&vcpu);
	CHECK(other != root && shadow_leaf(other, 0x1001000) == 0,
	      "CR4.SMEP: same root");
	trapvm_mmu_page_fault(&vcpu, 0x1001000, HW_U, &f);
	CHECK(shadow_leaf(other, 0x1001000) != 0, "not filled");
	kernel_mode();
	vcpu.cpu.cr3 = GUEST_CR3 | 0x8;	/* PWT: the same table */
	CHECK(trapvm_mmu_root(&vcpu) == root &&
	      shadow_leaf(root, 0x1001000) != 0, "cached root lost");

	/* CR3 load: nothing to drop, write tracking keeps it exact. */
	trapvm_mmu_load_cr3(&vcpu);
	CHECK(trapvm_mmu_root(&vcpu) == root &&
	      shadow_leaf(root, 0x1001000) != 0, "CR3 load dropped a leaf");
	CHECK(vcpu.stats[TRAPVM_STAT_MMU_CR3_LOADS] == 1 &&
	      vcpu.stats[TRAPVM_STAT_MMU_INVLPG] == 3, "counters");
	CHECK(vcpu.stats[TRAPVM_STAT_MMU_ROOT_HIT] == 1 &&
	      vcpu.stats[TRAPVM_STAT_MMU_ROOT_MISS] == 2,
	      "root cache hits %llu misses %llu",
	      (unsigned long long)vcpu.stats[TRAPVM_STAT_MMU_ROOT_HIT],
	      (unsigned long long)vcpu.stats[TRAPVM_STAT_MMU_ROOT_MISS]);

	/* Userspace moving the guest leaves the shadow alone. */
	vcpu.cpu.rip += 0x10;
	vcpu.cpu.gpr[GPR_RSP] += 0x10;
	CHECK(trapvm_mmu_root(&vcpu) == root &&
	      shadow_leaf(root, 0x1001000) != 0, "new entry dropped it");

	/* Several vCPUs share the shadow: a CR3 load still drops nothing. */
	vm.nr_vcpus = 2;
	trapvm_mmu_load_cr3(&vcpu);
	vm.nr_vcpus = 0;
	CHECK(shadow_leaf(root, 0x1001000) != 0, "shared CR3 load dropped");
	/* A zap request (balloon, page sharing) drops it all. */
	trapvm_mmu_request_zap(&vcpu);
	CHECK(trapvm_mmu_root(&vcpu) == root &&
	      shadow_leaf(root, 0x1001000) == 0, "zap request kept a leaf");
	CHECK(guest_refs_clean(), "page references left");
	CHECK(vcpu.stats[TRAPVM_STAT_MMU_SHADOW_ALLOC] -
	      vcpu.stats[TRAPVM_STAT_MMU_SHADOW_FREE] ==
	      (u64)(kshim_la57 ? 4 : 2), "alloc/free counters: roots only");

	trapvm_mmu_destroy(&vcpu);
	CHECK(trapvm_mmu_total_pages() == 0, "leak");
	tap(ok, "INVLPG, shared direct pages, #PF, cached roots across CR3/CR4, MMIO");
}

/* The hole is never filled, and its slot is left alone. */
static void test_hole(void)
{
	struct trapvm_fault f;
	struct page *switcher;
	u64 *slot, root;
	int ok = 1, r;

	setup();
	trapvm_mmu_init(&vcpu);
	guest_map(0xffff800000001000ULL, 0x200000, 1, P | RW | A);
	guest_map(0xffff880000001000ULL, 0x201000, 1, P | RW | A);
	root = trapvm_mmu_root(&vcpu);
	slot = trapvm_mmu_hole_slot(&vcpu);
	{
		u64 *pml4 = __va(root);

		if (kshim_la57)
			pml4 = __va(pml4[511] & ADDR);
		CHECK(slot == &pml4[256], "hole slot");
	}
	switcher = alloc_page(__GFP_ZERO);
	*slot = page_to_phys(switcher) | P | RW;

	r = trapvm_mmu_page_fault(&vcpu, 0xffff800000001000ULL, HW_U, &f);
	CHECK(r == TRAPVM_MMU_FAULT_INJECT && f.error_code == 0,
	      "hole: r %d error %#x", r, f.error_code);
	r = trapvm_mmu_page_fault(&vcpu, 0xffff880000001000ULL, HW_U, &f);
	CHECK(r == TRAPVM_MMU_FAULT_RESUME, "after the hole: %d", r);
	CHECK((shadow_leaf(root, 0xffff880000001000ULL) & ADDR) ==
	      host_pa_of(0x201000), "upper-half leaf");
	trapvm_mmu_invlpg(&vcpu, 0xffff800000001000ULL);
	trapvm_mmu_load_cr3(&vcpu);
	CHECK(*slot == (page_to_phys(switcher) | P | RW),
	      "hole slot changed");
	trapvm_mmu_destroy(&vcpu);
	CHECK(switcher->refcount == 1 && kshim_bad_frees == 0,
	      "switcher page freed");
	__free_page(switcher);
	CHECK(trapvm_mmu_total_pages() == 0, "leak");
	tap(ok, "hole: never filled, switcher slot untouched");
}

/* Non-canonical addresses (a 5-level host faults on them). */
static void test_noncanonical(void)
{
	struct trapvm_fault f;
	char buf[1];
	int ok = 1, r;

	setup();
	trapvm_mmu_init(&vcpu);
	r = trapvm_mmu_page_fault(&vcpu, 0x0001000000000000ULL, HW_U, &f);
	CHECK(r == TRAPVM_MMU_FAULT_GP && f.vector == 13 &&
	      f.error_code == 0, "r %d", r);
	r = trapvm_mmu_read_gva(&vcpu, 0xfffe000000000000ULL, buf, 1, 0, &f);
	CHECK(r == TRAPVM_MMU_FAULT_GP, "read_gva r %d", r);
	trapvm_mmu_invlpg(&vcpu, 0x0001000000000000ULL);	/* a no-op */
	trapvm_mmu_destroy(&vcpu);
	tap(ok, "non-canonical addresses give GP");
}

/* Guest-virtual access for the emulator. */
static void test_gva_access(void)
{
	unsigned char buf[16], want[16];
	struct trapvm_fault f;
	u64 ea;
	int ok = 1, r, i;

	setup();
	trapvm_mmu_init(&vcpu);
	guest_map(0x2000000, 0x600000, 1, P | RW);
	ea = guest_map(0x2001000, 0x700000, 1, P | RW);
	for (i = 0; i < 16; i++)
		want[i] = 0x40 + i;

	/* A write across the page boundary lands on both frames. */
	r = trapvm_mmu_write_gva(&vcpu, 0x2000ff8, want, 16, 0, &f);
	CHECK(r == 0, "write %d", r);
	trapvm_read_guest_phys(&vm, 0x600ff8, buf, 8);
	CHECK(!memcmp(buf, want, 8), "first page");
	trapvm_read_guest_phys(&vm, 0x700000, buf, 8);
	CHECK(!memcmp(buf, want + 8, 8), "second page");
	CHECK((gread64(ea) & (A | D)) == (A | D), "A/D not set");
	memset(buf, 0, sizeof(buf));
	r = trapvm_mmu_read_gva(&vcpu, 0x2000ff8, buf, 16, 0, &f);
	CHECK(r == 0 && !memcmp(buf, want, 16), "read back %d", r);

	/* Second page read-only: #PF at its start, nothing written. */
	gwrite64(ea, 0x700000 | P);
	memset(buf, 0xee, sizeof(buf));
	r = trapvm_mmu_write_gva(&vcpu, 0x2000ffc, buf, 8, 0, &f);
	CHECK(r == TRAPVM_MMU_FAULT_INJECT && f.cr2 == 0x2001000 &&
	      f.error_code == (HW_P | HW_W), "r %d cr2 %#" PRIx64 " err %#x",
	      r, (u64)f.cr2, f.error_code);
	trapvm_read_guest_phys(&vm, 0x600ff8, buf, 8);
	CHECK(!memcmp(buf, want, 8), "first page written by a faulting write");

	/* User access to a supervisor page; implicit access at CPL3. */
	r = trapvm_mmu_read_gva(&vcpu, 0x2000000, buf, 4, TRAPVM_ACC_USER,
				&f);
	CHECK(r == TRAPVM_MMU_FAULT_INJECT &&
	      f.error_code == (HW_P | HW_U), "user read: r %d err %#x", r,
	      f.error_code);
	vcpu.cpu.cpl = 3;
	r = trapvm_mmu_read_gva(&vcpu, 0x2000000, buf, 4,
				TRAPVM_ACC_IMPLICIT, &f);
	CHECK(r == 0, "implicit read at CPL3: %d", r);
	kernel_mode();

	/* Fetch from an NX page. */
	guest_map(0x2002000, 0x701000, 1, P | NX);
	r = trapvm_mmu_fetch(&vcpu, 0x2002000, buf, 15, 0, &f);
	CHECK(r == TRAPVM_MMU_FAULT_INJECT &&
	      f.error_code == (HW_P | HW_I), "fetch NX: r %d err %#x", r,
	      f.error_code);

	/* MMIO. */
	guest_map(0x2003000, 0xfee00000, 1, P | RW);
	r = trapvm_mmu_write_gva(&vcpu, 0x20030b0, buf, 4, 0, &f);
	CHECK(r == TRAPVM_MMU_FAULT_MMIO &&
	      trapvm_mmu_mmio_gpa(vcpu.mmu) == 0xfee000b0, "MMIO r %d", r);

	/* Not a single shadow page for any of it. */
	CHECK(trapvm_mmu_total_pages() == roots_pages(), "shadow built");
	trapvm_mmu_destroy(&vcpu);
	CHECK(guest_refs_clean(), "refs");
	tap(ok, "read/write/fetch by guest-virtual address");
}

/*
 * Random churn: random mappings and permission changes in the guest,
 * faults, INVLPGs and CR3 loads; after every resumed fault the shadow leaf
 * must map the host page of the gpa the test mapped, with no more rights
 * than the guest gave.  Then destroy: nothing left.
 */
#define CHURN_PAGES	64

/*
 * The guest changes the entry at @ea: emulated (through the write
 * tracking, no INVLPG needed) or behind the MMU's back, then INVLPG.
 */
static void churn_write(u64 ea, u64 v, u64 gva, bool emulated)
{
	if (emulated) {
		trapvm_mmu_write_phys(&vcpu, ea, &v, 8);
	} else {
		gwrite64(ea, v);
		trapvm_mmu_invlpg(&vcpu, gva);
	}
}

static bool churn_leaf_ok(u64 root, u64 gva, u64 ea, u64 gpa)
{
	u64 leaf = shadow_leaf(root, gva), pte = gread64(ea);

	if (!(leaf & P))
		return true;
	if (!(pte & P) || !(pte & A) || (leaf & ADDR) != host_pa_of(gpa))
		return false;
	if ((leaf & RW) && (!(pte & RW) || !(pte & D)))
		return false;
	if (!(leaf & NX) && (pte & NX))
		return false;
	return true;
}

static void test_churn(void)
{
	static const u64 bases[] = { 0x10000000ULL, 0x7ffff0000000ULL,
				     0xffffc90000000000ULL };
	u64 gva[CHURN_PAGES], gpa[CHURN_PAGES], ea[CHURN_PAGES];
	struct trapvm_fault f;
	unsigned int seed = 12345;
	long iter, resumed = 0, bad = 0, stale = 0;
	int ok = 1, i;

	setup();
	trapvm_mmu_init(&vcpu);
	for (i = 0; i < CHURN_PAGES; i++) {
		gva[i] = bases[i % 3] + (u64)(i * 7919 % 4096) * PAGE_SIZE;
		gpa[i] = 0x800000 + (u64)i * PAGE_SIZE;
		ea[i] = guest_map(gva[i], gpa[i], 1, P | RW | US);
	}
	for (iter = 0; iter < 200000; iter++) {
		int op = rand_r(&seed) % 100;
		bool emulated = rand_r(&seed) % 2;
		u64 cur_root = trapvm_mmu_root(&vcpu);

		/*
		 * Whatever happened, a present leaf never gives more than
		 * the guest's entry: write tracking keeps the shadow exact
		 * without INVLPG.
		 */
		i = rand_r(&seed) % CHURN_PAGES;
		if (!churn_leaf_ok(cur_root, gva[i], ea[i], gpa[i]) &&
		    stale++ < 5)
			printf("# churn: stale leaf for gva %#" PRIx64 "\n",
			       gva[i]);

		i = rand_r(&seed) % CHURN_PAGES;
		if (op < 70) {
			u32 hw = (rand_r(&seed) % 3 == 0) ? HW_W :
				 (rand_r(&seed) % 2) ? HW_I : 0;
			int cpl = (rand_r(&seed) % 2) ? 3 : 0;
			u64 root, leaf, pte;
			int r;

			set_mode(cpl, X86_CR0_WP, 0, true, false);
			root = trapvm_mmu_root(&vcpu);
			r = trapvm_mmu_page_fault(&vcpu, gva[i], hw | HW_U, &f);
			if (r != TRAPVM_MMU_FAULT_RESUME)
				continue;
			resumed++;
			leaf = shadow_leaf(root, gva[i]);
			pte = gread64(ea[i]);
			if ((leaf & ADDR) != host_pa_of(gpa[i]) ||
			    ((leaf & RW) && !(pte & RW)) ||
			    ((leaf & RW) && !(pte & D)) ||
			    (cpl == 3 && !(pte & US)) ||
			    (!(leaf & NX) && (pte & NX))) {
				if (bad++ < 5)
					printf("# churn: gva %#" PRIx64 " leaf %#" PRIx64 " pte %#" PRIx64 "\n",
					       gva[i], leaf, pte);
			}
		} else if (op < 85) {
			/* The guest changes the PTE, then INVLPGs. */
			u64 fl = P | (rand_r(&seed) % 2 ? RW : 0) |
				 (rand_r(&seed) % 2 ? US : 0) |
				 (rand_r(&seed) % 4 ? 0 : NX);
			int j = rand_r(&seed) % CHURN_PAGES;

			/* Sometimes point it at another page. */
			if (rand_r(&seed) % 4 == 0) {
				u64 t = gpa[i];

				gpa[i] = gpa[j];
				gpa[j] = t;
				churn_write(ea[j], (gread64(ea[j]) & ~ADDR) |
					    gpa[j], gva[j], emulated);
			}
			churn_write(ea[i], gpa[i] | fl, gva[i], emulated);
		} else if (op < 97) {
			churn_write(ea[i], gread64(ea[i]) & ~(A | D), gva[i],
				    emulated);
		} else {
			trapvm_mmu_load_cr3(&vcpu);
		}
	}
	CHECK(bad == 0, "%ld bad leaves", bad);
	CHECK(stale == 0, "%ld stale leaves", stale);
	CHECK(vcpu.stats[TRAPVM_STAT_MMU_PT_WRITES] > 10000, "pt writes");
	CHECK(resumed > 10000, "only %ld hidden faults", resumed);
	trapvm_mmu_destroy(&vcpu);
	CHECK(trapvm_mmu_total_pages() == 0 && guest_refs_clean() &&
	      kshim_bad_frees == 0 && kshim_warnings == 0,
	      "leak: %ld shadow pages, bad frees %ld",
	      trapvm_mmu_total_pages(), kshim_bad_frees);
	tap(ok, "random churn, then destroy leaves nothing");
}

/*
 * A guest building ever more page tables: the shadow stays under the cap
 * (LRU reclaim), every fault still resolves, and the reclaimed pages come
 * back on the next access.
 */
#define CAP_TABLES	1000
#define CAP_PT_BASE	0x200000ULL

static u64 cap_gva(int i)
{
	return 0x100000000000ULL + ((u64)i << 21);
}

static void test_cap(void)
{
	unsigned int saved = trapvm_shadow_max_pages;
	struct trapvm_fault f;
	long max_seen = 0;
	int ok = 1, i, r, pass;

	setup();
	trapvm_shadow_max_pages = 256;
	trapvm_mmu_init(&vcpu);
	trapvm_mmu_root(&vcpu);
	/* A guest PT per 2M region, each mapping its first page. */
	for (i = 0; i < CAP_TABLES; i++) {
		u64 pt = CAP_PT_BASE + (u64)i * PAGE_SIZE;
		u64 a;

		for (a = pt; a < pt + PAGE_SIZE; a += 8)
			gwrite64(a, 0);
		gwrite64(pt, 0x800000 | P | RW | A);
		gwrite64(guest_entry(cap_gva(i), 2), pt | P | RW | US);
	}
	for (pass = 0; pass < 2; pass++) {
		for (i = 0; i < CAP_TABLES; i++) {
			r = trapvm_mmu_page_fault(&vcpu, cap_gva(i), HW_U, &f);
			if (r != TRAPVM_MMU_FAULT_RESUME) {
				CHECK(0, "fill %d: r %d", i, r);
				break;
			}
			if (trapvm_mmu_total_pages() > max_seen)
				max_seen = trapvm_mmu_total_pages();
		}
	}
	CHECK(max_seen <= 256, "%ld shadow pages", max_seen);
	CHECK(max_seen >= 240, "cap not reached: %ld", max_seen);
	CHECK(vcpu.stats[TRAPVM_STAT_MMU_RECLAIMED] >= CAP_TABLES,
	      "reclaimed %llu",
	      (unsigned long long)vcpu.stats[TRAPVM_STAT_MMU_RECLAIMED]);
	CHECK(vcpu.stats[TRAPVM_STAT_MMU_SHADOW_LIVE] ==
	      (u64)trapvm_mmu_total_pages(), "live gauge %llu %ld",
	      (unsigned long long)vcpu.stats[TRAPVM_STAT_MMU_SHADOW_LIVE],
	      trapvm_mmu_total_pages());
	trapvm_mmu_destroy(&vcpu);
	trapvm_shadow_max_pages = saved;
	CHECK(trapvm_mmu_total_pages() == 0 && guest_refs_clean(), "leak");
	tap(ok, "shadow size capped, LRU reclaim");
}

/*
 * Write tracking: a guest page table is read-only in the shadow, also
 * where it was mapped writable before it became one; the guest's write to
 * it is EMULATE, and the emulated write zaps exactly the entry it changed.
 */
#define WT_GVA		0x5000000ULL	/* data page */
#define WT_GVA2		0x5001000ULL	/* its neighbour, same PT */
#define WT_PT_GVA	0x6000000ULL	/* where the PT itself is mapped */

static void test_write_tracking(void)
{
	struct trapvm_fault f;
	u64 root, ea, ea2, pt, v, leaf;
	int ok = 1, r, i;

	setup();
	trapvm_mmu_init(&vcpu);
	root = trapvm_mmu_root(&vcpu);
	ea = guest_map(WT_GVA, 0x500000, 1, P | RW | A | D);
	ea2 = guest_map(WT_GVA2, 0x501000, 1, P | RW | A | D);
	pt = ea & ~(PAGE_SIZE - 1);
	/* The PT page mapped writable, and filled before it is a PT. */
	guest_map(WT_PT_GVA, pt, 1, P | RW | A | D);
	r = trapvm_mmu_page_fault(&vcpu, WT_PT_GVA, HW_W | HW_U, &f);
	CHECK(r == TRAPVM_MMU_FAULT_RESUME &&
	      (shadow_leaf(root, WT_PT_GVA) & RW), "PT page not filled");
	/* Now it becomes one: the writable leaf must lose R/W. */
	trapvm_mmu_page_fault(&vcpu, WT_GVA, HW_W | HW_U, &f);
	trapvm_mmu_page_fault(&vcpu, WT_GVA2, HW_U, &f);
	CHECK(shadow_leaf(root, WT_GVA) && shadow_leaf(root, WT_GVA2),
	      "not filled");
	leaf = shadow_leaf(root, WT_PT_GVA);
	CHECK((leaf & P) && !(leaf & RW), "PT still writable: %#" PRIx64,
	      leaf);
	/* A write to it: emulate (a read is fine). */
	r = trapvm_mmu_page_fault(&vcpu, WT_PT_GVA + 8, HW_P | HW_W | HW_U,
				  &f);
	CHECK(r == TRAPVM_MMU_FAULT_EMULATE, "PT write: %d", r);
	CHECK(!(shadow_leaf(root, WT_PT_GVA) & RW), "PT write mapped");

	/* The emulated write: the changed entry goes, its neighbour stays. */
	v = 0x502000 | P | RW | A | D;
	r = trapvm_mmu_write_gva(&vcpu, WT_PT_GVA + (ea & 0xfff), &v, 8, 0,
				 &f);
	CHECK(r == 0 && gread64(ea) == v, "write not done: %d", r);
	/* A and D set: the new leaf is there at once, without a fault. */
	leaf = shadow_leaf(root, WT_GVA);
	CHECK((leaf & ADDR) == host_pa_of(0x502000) && (leaf & RW),
	      "changed entry not refilled: %#" PRIx64, leaf);
	CHECK(shadow_leaf(root, WT_GVA2) != 0, "neighbour zapped");
	CHECK(vcpu.stats[TRAPVM_STAT_MMU_PT_WRITES] == 1, "pt writes");
	/* D clear: read-only; A clear: not there (the access must set A). */
	trapvm_mmu_page_fault(&vcpu, WT_GVA2, HW_U, &f);	/* use */
	v = 0x502000 | P | RW | A;
	trapvm_mmu_write_gva(&vcpu, WT_PT_GVA + (ea & 0xfff), &v, 8, 0, &f);
	leaf = shadow_leaf(root, WT_GVA);
	CHECK((leaf & P) && !(leaf & RW), "clean PTE refilled %#" PRIx64,
	      leaf);
	trapvm_mmu_page_fault(&vcpu, WT_GVA2, HW_U, &f);	/* use */
	v = 0x502000 | P | RW | D;
	trapvm_mmu_write_gva(&vcpu, WT_PT_GVA + (ea & 0xfff), &v, 8, 0, &f);
	CHECK(shadow_leaf(root, WT_GVA) == 0, "PTE without A refilled");
	r = trapvm_mmu_page_fault(&vcpu, WT_GVA, HW_U, &f);
	CHECK(r == TRAPVM_MMU_FAULT_RESUME && (gread64(ea) & A) &&
	      (shadow_leaf(root, WT_GVA) & ADDR) == host_pa_of(0x502000),
	      "new translation not used");
	v = gread64(ea);
	/* The same value again: nothing to zap. */
	trapvm_mmu_write_gva(&vcpu, WT_PT_GVA + (ea & 0xfff), &v, 8, 0, &f);
	CHECK(shadow_leaf(root, WT_GVA) != 0, "unchanged entry zapped");
	/*
	 * Clearing A in the PDE (emulated): the shadow PDE goes; the next
	 * walk sets A again, as the processor would.
	 */
	{
		u64 pde_ea = guest_entry(WT_GVA, 2);
		u64 pde = gread64(pde_ea) & ~A;

		trapvm_mmu_write_phys(&vcpu, pde_ea, &pde, 8);
		CHECK(shadow_leaf(root, WT_GVA) == 0 &&
		      shadow_leaf(root, WT_GVA2) == 0, "PDE change kept");
		trapvm_mmu_page_fault(&vcpu, WT_GVA2, HW_U, &f);
		CHECK((gread64(pde_ea) & A) && shadow_leaf(root, WT_GVA2),
		      "A not set again");
		/* The PT shadow page was found again, not rebuilt. */
	}

	/*
	 * Flooding: the PT written 3 times without a fault through it is
	 * unshadowed; its page is then writable at full speed.
	 */
	for (i = 0; i < 3; i++) {
		v = 0x503000 | P | RW | A | (i & 1 ? D : 0);
		trapvm_mmu_write_gva(&vcpu, WT_PT_GVA + 0x800, &v, 8, 0, &f);
	}
	CHECK(vcpu.stats[TRAPVM_STAT_MMU_FLOODED] == 1, "flooded %llu",
	      (unsigned long long)vcpu.stats[TRAPVM_STAT_MMU_FLOODED]);
	r = trapvm_mmu_page_fault(&vcpu, WT_PT_GVA, HW_P | HW_W | HW_U, &f);
	CHECK(r == TRAPVM_MMU_FAULT_RESUME &&
	      (shadow_leaf(root, WT_PT_GVA) & RW), "flooded PT: %d", r);
	CHECK(shadow_leaf(root, WT_GVA2) == 0, "leaf of a flooded PT");

	/*
	 * Used again as a PT: tracked again; an unemulatable write to it
	 * unshadows it, other addresses do not.
	 */
	trapvm_mmu_page_fault(&vcpu, WT_GVA2, HW_U, &f);
	CHECK(!(shadow_leaf(root, WT_PT_GVA) & RW), "PT again, writable");
	r = trapvm_mmu_page_fault(&vcpu, WT_PT_GVA + 16, HW_P | HW_W | HW_U,
				  &f);
	CHECK(r == TRAPVM_MMU_FAULT_EMULATE, "PT write: %d", r);
	CHECK(!trapvm_mmu_unemulatable(&vcpu, WT_GVA), "other page");
	CHECK(trapvm_mmu_unemulatable(&vcpu, WT_PT_GVA + 16), "not unshadowed");
	CHECK(vcpu.stats[TRAPVM_STAT_MMU_UNSHADOWED] == 1, "unshadowed");
	r = trapvm_mmu_page_fault(&vcpu, WT_PT_GVA, HW_P | HW_W | HW_U, &f);
	CHECK(r == TRAPVM_MMU_FAULT_RESUME, "after unshadow: %d", r);

	trapvm_mmu_destroy(&vcpu);
	CHECK(trapvm_mmu_total_pages() == 0 && guest_refs_clean() &&
	      kshim_warnings == 0, "leak");
	(void)ea2;
	tap(ok, "write tracking: write-protect, emulated sync, flood, unshadow");
}

/*
 * The emulator's locked write-back (trapvm_mmu_cmpxchg_gva) on a tracked
 * page table: nothing written when memory does not hold the old value;
 * else written and tracked like any write; the same for an operand split
 * across a cache line; a read-only page gives the write #PF.
 */
static void test_locked_write(void)
{
	struct trapvm_fault f;
	u64 root, ea, pt, v, old, leaf, lo, hi;
	int ok = 1, r;

	setup();
	trapvm_mmu_init(&vcpu);
	root = trapvm_mmu_root(&vcpu);
	ea = guest_map(WT_GVA, 0x500000, 1, P | RW | A | D);
	guest_map(WT_GVA2, 0x501000, 1, P | RW | A | D);
	pt = ea & ~(PAGE_SIZE - 1);
	guest_map(WT_PT_GVA, pt, 1, P | RW | A | D);
	trapvm_mmu_page_fault(&vcpu, WT_GVA, HW_W | HW_U, &f);
	trapvm_mmu_page_fault(&vcpu, WT_GVA2, HW_U, &f);
	trapvm_mmu_page_fault(&vcpu, WT_PT_GVA, HW_U, &f);
	CHECK(shadow_leaf(root, WT_GVA) &&
	      !(shadow_leaf(root, WT_PT_GVA) & RW), "PT not tracked");

	/* memory changed meanwhile: nothing written, nothing zapped */
	old = gread64(ea);
	v = 0x502000 | P | RW | A | D;
	r = trapvm_mmu_cmpxchg_gva(&vcpu, WT_PT_GVA + (ea & 0xfff), old ^ 2,
				   v, 8, 0, &f);
	CHECK(r == TRAPVM_ACCESS_CHANGED && gread64(ea) == old,
	      "stale old value: %d", r);
	CHECK(shadow_leaf(root, WT_GVA) != 0, "zapped without a write");
	CHECK(vcpu.stats[TRAPVM_STAT_MMU_PT_WRITES] == 0, "counted");

	/* the expected value: written, zapped and refilled */
	r = trapvm_mmu_cmpxchg_gva(&vcpu, WT_PT_GVA + (ea & 0xfff), old, v, 8,
				   0, &f);
	leaf = shadow_leaf(root, WT_GVA);
	CHECK(r == 0 && gread64(ea) == v, "not written: %d", r);
	CHECK((leaf & ADDR) == host_pa_of(0x502000), "not refilled %#" PRIx64,
	      leaf);
	CHECK(shadow_leaf(root, WT_GVA2) != 0, "neighbour zapped");
	CHECK(vcpu.stats[TRAPVM_STAT_MMU_PT_WRITES] == 1, "not counted");

	/* one byte, as LOCK BTR of A: the leaf goes */
	r = trapvm_mmu_cmpxchg_gva(&vcpu, WT_PT_GVA + (ea & 0xfff), v & 0xff,
				   (v & 0xff) & ~A, 1, 0, &f);
	CHECK(r == 0 && gread64(ea) == (v & ~A), "byte: %d", r);
	CHECK(shadow_leaf(root, WT_GVA) == 0, "A cleared, leaf kept");

	/* 8 bytes across a cache line: the entries at 0x838 and 0x840 */
	gwrite64(pt + 0x838, 0x1111111111111110ULL);
	gwrite64(pt + 0x840, 0x2222222222222220ULL);
	old = 0x2222222222201111ULL;	/* bytes 0x83e..0x845 */
	r = trapvm_mmu_cmpxchg_gva(&vcpu, WT_PT_GVA + 0x83e, old ^ 1, 0, 8, 0,
				   &f);
	CHECK(r == TRAPVM_ACCESS_CHANGED, "split, stale: %d", r);
	r = trapvm_mmu_cmpxchg_gva(&vcpu, WT_PT_GVA + 0x83e, old, 0, 8, 0, &f);
	lo = gread64(pt + 0x838);
	hi = gread64(pt + 0x840);
	CHECK(r == 0 && lo == 0x0000111111111110ULL &&
	      hi == 0x2222000000000000ULL, "split: %d %#" PRIx64 " %#" PRIx64,
	      r, lo, hi);

	/* a read-only mapping: #PF for a write, memory unchanged */
	guest_map(WT_GVA2 + PAGE_SIZE, pt, 1, P | A);
	old = gread64(ea);
	r = trapvm_mmu_cmpxchg_gva(&vcpu, WT_GVA2 + PAGE_SIZE + (ea & 0xfff),
				   old, 0, 8, 0, &f);
	CHECK(r == TRAPVM_MMU_FAULT_INJECT && f.vector == 14 &&
	      (f.error_code & 3) == 3 && gread64(ea) == old,
	      "read-only: %d %#x", r, f.error_code);

	trapvm_mmu_destroy(&vcpu);
	CHECK(trapvm_mmu_total_pages() == 0 && guest_refs_clean() &&
	      kshim_warnings == 0, "leak");
	tap(ok, "locked write-back: compare-exchange, tracking, split, #PF");
}

/*
 * Two guest 2M pages over the same frames: the write through the dirty
 * one must not let a write through the clean one go without a fault that
 * sets its D.
 */
static void test_large_dirty(void)
{
	struct trapvm_fault f;
	u64 root, ea1, ea2;
	int ok = 1, r;

	setup();
	trapvm_mmu_init(&vcpu);
	root = trapvm_mmu_root(&vcpu);
	ea1 = guest_map(0x40000000, 0x600000, 2, P | RW | A | D);
	ea2 = guest_map(0x40200000, 0x600000, 2, P | RW | A);
	r = trapvm_mmu_page_fault(&vcpu, 0x40001000, HW_W | HW_U, &f);
	CHECK(r == TRAPVM_MMU_FAULT_RESUME &&
	      (shadow_leaf(root, 0x40001000) & RW), "dirty 2M write: %d", r);
	r = trapvm_mmu_page_fault(&vcpu, 0x40201000, HW_U, &f);
	CHECK(r == TRAPVM_MMU_FAULT_RESUME &&
	      !(shadow_leaf(root, 0x40201000) & RW), "clean 2M read: %d", r);
	CHECK(!(gread64(ea2) & D), "D set by a read");
	r = trapvm_mmu_page_fault(&vcpu, 0x40201000, HW_P | HW_W | HW_U, &f);
	CHECK(r == TRAPVM_MMU_FAULT_RESUME && (gread64(ea2) & D) &&
	      (shadow_leaf(root, 0x40201000) & RW), "clean 2M write: %d", r);
	CHECK(gread64(ea1) & D, "D lost");
	trapvm_mmu_destroy(&vcpu);
	CHECK(trapvm_mmu_total_pages() == 0 && guest_refs_clean(), "leak");
	tap(ok, "D of guest large pages sharing frames");
}

/* The root cache: address spaces switched round-robin. */
#define RC_SPACES	20

static void test_root_cache(void)
{
	u64 roots[RC_SPACES], base = 0x300000;
	struct trapvm_fault f;
	int ok = 1, i, s;

	setup();
	trapvm_mmu_init(&vcpu);
	/* RC_SPACES PML4s sharing the lower tables of GUEST_CR3. */
	guest_map(0x7000000, 0x700000, 1, P | RW | US | A);
	for (s = 0; s < RC_SPACES; s++) {
		u64 pml4 = base + (u64)s * PAGE_SIZE;

		for (i = 0; i < 512; i++)
			gwrite64(pml4 + i * 8, gread64(GUEST_CR3 + i * 8));
	}
	for (s = 0; s < RC_SPACES; s++) {
		vcpu.cpu.cr3 = base + (u64)s * PAGE_SIZE;
		trapvm_mmu_load_cr3(&vcpu);
		roots[s] = trapvm_mmu_root(&vcpu);
		trapvm_mmu_page_fault(&vcpu, 0x7000000, HW_U, &f);
		CHECK(shadow_leaf(roots[s], 0x7000000), "space %d", s);
	}
	CHECK(vcpu.stats[TRAPVM_STAT_MMU_ROOT_MISS] == RC_SPACES, "misses");
	/* The last TRAPVM_MMU_NR_ROOTS are cached, with their leaves. */
	for (s = RC_SPACES - TRAPVM_MMU_NR_ROOTS; s < RC_SPACES; s++) {
		vcpu.cpu.cr3 = base + (u64)s * PAGE_SIZE;
		trapvm_mmu_load_cr3(&vcpu);
		CHECK(trapvm_mmu_root(&vcpu) == roots[s] &&
		      shadow_leaf(roots[s], 0x7000000), "space %d lost", s);
	}
	CHECK(vcpu.stats[TRAPVM_STAT_MMU_ROOT_HIT] == TRAPVM_MMU_NR_ROOTS &&
	      vcpu.stats[TRAPVM_STAT_MMU_ROOT_MISS] == RC_SPACES,
	      "hits %llu", (unsigned long long)
	      vcpu.stats[TRAPVM_STAT_MMU_ROOT_HIT]);
	/* The lower tables are one shadow PDPT for all of them. */
	CHECK(vcpu.mmu->vm_mmu->nr_sp <= (u64)(RC_SPACES * (kshim_la57 ? 2 : 1) + 3),
	      "%lu shadow pages", vcpu.mmu->vm_mmu->nr_sp);
	/* The oldest was evicted: a miss. */
	vcpu.cpu.cr3 = base;
	roots[0] = trapvm_mmu_root(&vcpu);
	trapvm_mmu_page_fault(&vcpu, 0x7000000, HW_U, &f);
	CHECK(vcpu.stats[TRAPVM_STAT_MMU_ROOT_MISS] == RC_SPACES + 1,
	      "evicted root hit");
	/*
	 * A dead address space's PML4 reused as data floods: its cached
	 * root goes.  The current PML4 never floods.
	 */
	for (i = 0; i < 4; i++) {
		u64 v = 0x1111ULL * (i + 1);

		trapvm_mmu_write_phys(&vcpu, base + PAGE_SIZE * (RC_SPACES - 1)
				      + 0x10, &v, 8);
		trapvm_mmu_write_phys(&vcpu, base + 0x10, &v, 8);
	}
	CHECK(vcpu.stats[TRAPVM_STAT_MMU_FLOODED] == (kshim_la57 ? 2 : 1),
	      "flooded %llu",
	      (unsigned long long)vcpu.stats[TRAPVM_STAT_MMU_FLOODED]);
	CHECK(trapvm_mmu_root(&vcpu) == roots[0] &&
	      shadow_leaf(roots[0], 0x7000000), "current root flooded");
	vcpu.cpu.cr3 = base + PAGE_SIZE * (RC_SPACES - 1);
	trapvm_mmu_root(&vcpu);
	CHECK(vcpu.stats[TRAPVM_STAT_MMU_ROOT_MISS] == RC_SPACES + 2,
	      "flooded root still cached");
	trapvm_mmu_destroy(&vcpu);
	CHECK(trapvm_mmu_total_pages() == 0 && guest_refs_clean(), "leak");
	tap(ok, "root cache: 20 address spaces round-robin, LRU");
}

/* TRAPVM_HC_MMU_UPDATE: validation, and updates as emulated writes. */
static void test_hc_update(void)
{
	const u64 list = 0x900000;
	struct trapvm_mmu_update u[3];
	struct trapvm_fault f;
	u64 root, ea, ea2, pt;
	long r;
	int ok = 1;

	setup();
	trapvm_mmu_init(&vcpu);
	root = trapvm_mmu_root(&vcpu);
	ea = guest_map(0x5000000, 0x500000, 1, P | RW | A);
	ea2 = guest_map(0x5001000, 0x501000, 1, P | RW | A);
	pt = ea & ~(PAGE_SIZE - 1);
	trapvm_mmu_page_fault(&vcpu, 0x5000000, HW_U, &f);
	trapvm_mmu_page_fault(&vcpu, 0x5001000, HW_U, &f);

	u[0].pte_gpa = ea;
	u[0].value = 0x502000 | P | A;
	u[1].pte_gpa = ea2;
	u[1].value = 0;
	u[2].pte_gpa = pt + 0x10;
	u[2].value = 0x503000 | P;
	trapvm_write_guest_phys(&vm, list, u, sizeof(u));

	CHECK(trapvm_mmu_hc_update(&vcpu, list, TRAPVM_MMU_UPDATE_MAX + 1) ==
	      -E2BIG, "count bound");
	CHECK(trapvm_mmu_hc_update(&vcpu, list + 4, 1) == -EINVAL,
	      "list alignment");
	CHECK(trapvm_mmu_hc_update(&vcpu, GUEST_RAM - 16, 2) == -EFAULT,
	      "list outside RAM");
	CHECK(trapvm_mmu_hc_update(&vcpu, ~0ULL & ~7ULL, 2) == -EFAULT,
	      "list wraps");
	/* A bad entry anywhere: nothing is done. */
	u[2].pte_gpa = pt + 0x11;
	trapvm_write_guest_phys(&vm, list, u, sizeof(u));
	CHECK(trapvm_mmu_hc_update(&vcpu, list, 3) == -EINVAL &&
	      gread64(ea) == (0x500000 | P | RW | A), "bad pte_gpa");
	u[2].pte_gpa = GUEST_RAM;
	trapvm_write_guest_phys(&vm, list, u, sizeof(u));
	CHECK(trapvm_mmu_hc_update(&vcpu, list, 3) == -EFAULT &&
	      gread64(ea2) != 0, "pte_gpa outside RAM");
	CHECK(trapvm_mmu_hc_update(&vcpu, list, 0) == 0, "empty batch");

	u[2].pte_gpa = pt + 0x10;
	trapvm_write_guest_phys(&vm, list, u, sizeof(u));
	r = trapvm_mmu_hc_update(&vcpu, list, 3);
	CHECK(r == 3, "r %ld", r);
	CHECK(gread64(ea) == u[0].value && gread64(ea2) == 0 &&
	      gread64(pt + 0x10) == u[2].value, "not written");
	CHECK((shadow_leaf(root, 0x5000000) & ADDR) == host_pa_of(0x502000) &&
	      !(shadow_leaf(root, 0x5000000) & RW) &&
	      !shadow_leaf(root, 0x5001000), "shadow not synced");
	CHECK(vcpu.stats[TRAPVM_STAT_MMU_PT_WRITES] == 0 &&
	      vcpu.stats[TRAPVM_STAT_MMU_FLOODED] == 0,
	      "a batch counted as emulated writes");
	r = trapvm_mmu_page_fault(&vcpu, 0x5001000, HW_U, &f);
	CHECK(r == TRAPVM_MMU_FAULT_INJECT, "unmapped: %ld", r);
	CHECK(vcpu.stats[TRAPVM_STAT_MMU_HC_UPDATES] == 3, "counter");
	trapvm_mmu_destroy(&vcpu);
	CHECK(trapvm_mmu_total_pages() == 0 && guest_refs_clean(), "leak");
	tap(ok, "TRAPVM_HC_MMU_UPDATE batches");
}

/*
 * Two vCPUs of one VM: one shadow below the per-vCPU PML4s, write tracking
 * across vCPUs, remote flushes before anything is freed or relied on.
 */
static struct trapvm_vcpu vcpu2;

static void test_two_vcpus(void)
{
	const u64 gva = 0x7000000;
	struct trapvm_fault f;
	u64 root0, root1, ea, v, pml4e;
	unsigned long nr_sp;
	long flushes, protects = protect_calls;
	int ok = 1, r;

	setup();
	memset(&vcpu2, 0, sizeof(vcpu2));
	vcpu2.vm = &vm;
	vcpu2.id = 1;
	CHECK(!trapvm_mmu_init(&vcpu) && !trapvm_mmu_init(&vcpu2), "init");
	vcpu2.cpu = vcpu.cpu;
	CHECK(vcpu.mmu->vm_mmu == vcpu2.mmu->vm_mmu, "cache not per VM");
	ea = guest_map(gva, 0x700000, 1, P | RW | A | D);
	root0 = trapvm_mmu_root(&vcpu);
	root1 = trapvm_mmu_root(&vcpu2);
	CHECK(root0 != root1 && trapvm_mmu_hole_slot(&vcpu) !=
	      trapvm_mmu_hole_slot(&vcpu2), "top level shared");
	CHECK(protect_calls > protects, "VMM mapping of the PML4 not protected");

	r = trapvm_mmu_page_fault(&vcpu, gva, HW_U, &f);
	CHECK(r == TRAPVM_MMU_FAULT_RESUME, "fill 0: %d", r);
	nr_sp = vcpu.mmu->vm_mmu->nr_sp;
	r = trapvm_mmu_page_fault(&vcpu2, gva, HW_U, &f);
	CHECK(r == TRAPVM_MMU_FAULT_RESUME, "fill 1: %d", r);
	CHECK(vcpu.mmu->vm_mmu->nr_sp == nr_sp, "lower levels not shared");
	CHECK(shadow_leaf(root0, gva) && shadow_leaf(root0, gva) ==
	      shadow_leaf(root1, gva), "leaves differ");

	/* vCPU 1 rewrites the PTE while vCPU 0 is in the guest. */
	vcpu.mmu->mode = TRAPVM_MMU_IN_GUEST;
	flushes = flush_calls;
	v = 0x701000 | P | RW | A | D;
	CHECK(trapvm_mmu_write_phys(&vcpu2, ea, &v, 8) == 0, "write");
	CHECK(flush_calls > flushes, "no remote flush");
	CHECK(!shadow_leaf(root0, gva) ||
	      (shadow_leaf(root0, gva) & ADDR) == host_pa_of(0x701000),
	      "vCPU 0 still sees the old page: %#" PRIx64,
	      shadow_leaf(root0, gva));
	r = trapvm_mmu_page_fault(&vcpu, gva, HW_U, &f);
	CHECK((shadow_leaf(root0, gva) & ADDR) == host_pa_of(0x701000),
	      "vCPU 0 refilled the old page: %d", r);
	vcpu.mmu->mode = TRAPVM_MMU_OUTSIDE_GUEST;

	/* A PML4 write by vCPU 0 reaches vCPU 1's copy of the PML4. */
	pml4e = GUEST_CR3 + gidx(gva, 4) * 8;
	v = gread64(pml4e);
	CHECK(trapvm_mmu_write_phys(&vcpu, pml4e, &(u64){ 0 }, 8) == 0 &&
	      !shadow_leaf(root1, gva), "vCPU 1's PML4 copy kept the entry");
	CHECK(trapvm_mmu_write_phys(&vcpu, pml4e, &v, 8) == 0, "restore");
	r = trapvm_mmu_page_fault(&vcpu2, gva, HW_U, &f);
	CHECK(r == TRAPVM_MMU_FAULT_RESUME && shadow_leaf(root1, gva),
	      "refill 1: %d", r);

	/* The VMM writes the PML4: both vCPUs' roots go. */
	CHECK(trapvm_gfn_is_tracked(vm.mmu, GUEST_CR3 >> PAGE_SHIFT) &&
	      !trapvm_gfn_is_tracked(vm.mmu, 0x700), "tracked");
	trapvm_mmu_user_write(&vm, GUEST_CR3 >> PAGE_SHIFT);
	CHECK(!trapvm_gfn_is_tracked(vm.mmu, GUEST_CR3 >> PAGE_SHIFT),
	      "still shadowed");
	CHECK(!shadow_leaf(root0, gva) && !shadow_leaf(root1, gva),
	      "unshadowed PML4 still maps");
	root0 = trapvm_mmu_root(&vcpu);
	root1 = trapvm_mmu_root(&vcpu2);
	r = trapvm_mmu_page_fault(&vcpu, gva, HW_U, &f);
	CHECK(r == TRAPVM_MMU_FAULT_RESUME && shadow_leaf(root0, gva),
	      "new root 0: %d", r);

	/* A zap request: for every vCPU, and each is kicked. */
	kick_calls = 0;
	vm.vcpus[0] = &vcpu;
	vm.vcpus[1] = &vcpu2;
	trapvm_mmu_request_zap(&vcpu2);
	vm.vcpus[0] = vm.vcpus[1] = NULL;
	CHECK(kick_calls == 2, "kicked %ld", kick_calls);
	CHECK(trapvm_mmu_root(&vcpu) == root0 && !shadow_leaf(root0, gva),
	      "zap request ignored");

	/* vCPU 1 goes, vCPU 0 loses nothing. */
	r = trapvm_mmu_page_fault(&vcpu, gva, HW_U, &f);
	trapvm_mmu_destroy(&vcpu2);
	CHECK(trapvm_mmu_root(&vcpu) == root0 && shadow_leaf(root0, gva),
	      "vCPU 0 lost its shadow");
	CHECK(vcpu.mmu->vm_mmu->vcpus[1] == NULL, "vCPU 1 registered");
	trapvm_mmu_destroy(&vcpu);
	CHECK(vm.mmu == NULL && trapvm_mmu_total_pages() == 0 &&
	      guest_refs_clean() && kshim_warnings == 0, "leak");
	tap(ok, "two vCPUs: shared shadow, per-vCPU PML4, remote flush");
}

/* Out of memory while filling: KILL, and nothing leaks. */
static void test_oom(void)
{
	struct trapvm_fault f;
	int ok = 1, r;

	setup();
	trapvm_mmu_init(&vcpu);
	guest_map(0x3000000000ULL, 0x900000, 1, P | RW);
	kshim_fail_alloc = 1;
	r = trapvm_mmu_page_fault(&vcpu, 0x3000000000ULL, HW_U, &f);
	kshim_fail_alloc = 0;
	CHECK(r == TRAPVM_MMU_FAULT_KILL, "r %d", r);
	trapvm_mmu_destroy(&vcpu);
	CHECK(trapvm_mmu_total_pages() == 0 && guest_refs_clean(), "leak");
	tap(ok, "allocation failure while filling");
}

static void free_guest_ram(void)
{
	unsigned int i;

	for (i = 0; i < GUEST_GFNS; i++) {
		if (gpages[i])
			put_page(gpages[i]);
		gpages[i] = NULL;
	}
}

int main(void)
{
	kshim_arena = mmap(NULL, (size_t)NR_ARENA_PAGES * PAGE_SIZE,
			   PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			   -1, 0);
	if (kshim_arena == MAP_FAILED)
		return 2;
	printf("TAP version 13\n1..30\n");
	for (kshim_la57 = 0; kshim_la57 < 2; kshim_la57++) {
		test_init_destroy();
		test_hidden_faults();
		test_views();
		test_invalidation();
		test_hole();
		test_noncanonical();
		test_gva_access();
		test_churn();
		test_oom();
		test_cap();
		test_write_tracking();
		test_locked_write();
		test_large_dirty();
		test_root_cache();
		test_hc_update();
		test_two_vcpus();
		free_guest_ram();
	}
	printf("# arena pages in use at exit: %ld, lock errors %ld\n",
	       kshim_pages_used, kshim_lock_errors);
	return failures || kshim_pages_used || kshim_lock_errors ? 1 : 0;
}
