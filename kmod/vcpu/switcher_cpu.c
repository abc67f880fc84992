// SPDX-License-Identifier: GPL-2.0
/*
 * trapvm world switcher: per-CPU switcher regions in the hole, the
 * transit root, and the C half of a guest entry.  See switcher.h for the
 * region layout and switcher.S for the order of the switch.
 *
 * Why a transit root: the switch has to change CR3 while executing, so
 * the code doing it must be mapped at the same address before and after.
 * The host page tables do not map the hole and the guest's shadow maps
 * nothing of the host but the hole.  The transit root is a copy of the
 * host kernel's top-level entries plus the hole: module text runs on it
 * before jumping into the hole, and the hole code can load the shadow
 * root from there.  Its page has physical address bit 12 clear, so a
 * host NMI taken while it is loaded is not mistaken for a PTI user CR3.
 *
 * Why per-CPU text copies: the switcher code finds its CPU's data, IDT,
 * GDT and stacks RIP-relatively, so an exception or NMI arriving while
 * a foreign GS base or stack is loaded needs no lookup at all.
 */
#include <linux/mm.h>
#include <linux/slab.h>
#include <linux/mutex.h>
#include <linux/percpu.h>
#include <linux/vmalloc.h>
#include <asm/desc.h>
#include <asm/msr.h>
#include <asm/tlbflush.h>
#include <asm/special_insns.h>
#include <asm/debugreg.h>
#include <asm/pgtable.h>
#include <asm/processor.h>
#include <asm/trapnr.h>
#include <asm/idtentry.h>
#include <asm/io.h>
#include <linux/trapvm_guest.h>
#include "switcher.h"

/* Hardware RFLAGS bits the guest keeps; IF is forced on, IOPL to 0. */
#define SW_RFLAGS_GUEST	(X86_EFLAGS_CF | X86_EFLAGS_PF | X86_EFLAGS_AF | \
			 X86_EFLAGS_ZF | X86_EFLAGS_SF | X86_EFLAGS_TF | \
			 X86_EFLAGS_DF | X86_EFLAGS_OF | X86_EFLAGS_AC | \
			 X86_EFLAGS_ID)

#define SW_PTE_TEXT	(_PAGE_PRESENT | _PAGE_ACCESSED)
#define SW_PTE_RO	(_PAGE_PRESENT | _PAGE_ACCESSED | _PAGE_NX)
#define SW_PTE_RW	(_PAGE_PRESENT | _PAGE_RW | _PAGE_ACCESSED | \
			 _PAGE_DIRTY | _PAGE_NX)
#define SW_TABLE	(_PAGE_PRESENT | _PAGE_RW | _PAGE_ACCESSED)

/* PML4 slot of the hole (the same index in a 4-level and a 5-level walk). */
#define SW_HOLE_SLOT	((TRAPVM_HOLE_START >> 39) & 511)

struct trapvm_sw_cpu {
	struct page *pages[TRAPVM_SW_REGION_PAGES];	/* NULL: guard */
	struct trapvm_sw_data *data;			/* direct map */
	struct trapvm_sw_host *host;			/* direct map */
	unsigned long hole;				/* region in the hole */
};

static DEFINE_MUTEX(sw_lock);
static unsigned int sw_users;
static struct trapvm_sw_cpu *sw_cpus;
/* Page tables of the hole: one set for the guests, one for transit. */
struct sw_tables {
	u64 *pdpt, *pd;
	u64 **pts;
};

static struct sw_tables sw_guest_tables, sw_transit_tables;
static unsigned int sw_nr_pts;
static struct page *sw_transit_pages;	/* order 1: bit 12 of the root is 0 */
static u64 *sw_transit_p4d;		/* LA57: private copy of PML5[511] */
static u64 sw_transit_cr3;
static u64 sw_hole_pml4e;

static const u8 sw_used_pages[] = {
	0, 1, TRAPVM_SW_IDT_PAGE, TRAPVM_SW_DATA_PAGE, TRAPVM_SW_HOST_PAGE,
	TRAPVM_SW_STACK_PAGE,
	TRAPVM_SW_NMI_PAGE, TRAPVM_SW_DF_PAGE, TRAPVM_SW_MC_PAGE,
	TRAPVM_SW_DB_PAGE,
};

#define SW_CHECK(type, field, off) \
	BUILD_BUG_ON(offsetof(struct type, field) != (off))

static void sw_build_checks(void)
{
	SW_CHECK(trapvm_sw_data, gprs, SWD_GPRS);
	SW_CHECK(trapvm_sw_data, rip, SWD_RIP);
	SW_CHECK(trapvm_sw_data, rflags, SWD_RFLAGS);
	SW_CHECK(trapvm_sw_data, vector, SWD_VECTOR);
	SW_CHECK(trapvm_sw_data, error_code, SWD_ERROR_CODE);
	SW_CHECK(trapvm_sw_data, cr2, SWD_CR2);
	SW_CHECK(trapvm_sw_data, cs, SWD_CS);
	SW_CHECK(trapvm_sw_data, ss, SWD_SS);
	SW_CHECK(trapvm_sw_data, guest_gs, SWD_GUEST_GS);
	SW_CHECK(trapvm_sw_data, transit_cr3, SWD_TRANSIT_CR3);
	SW_CHECK(trapvm_sw_data, shadow_cr3, SWD_SHADOW_CR3);
	SW_CHECK(trapvm_sw_data, nmi_pending, SWD_NMI_PENDING);
	SW_CHECK(trapvm_sw_data, kernel_exc, SWD_KERNEL_EXC);
	SW_CHECK(trapvm_sw_data, fault_vector, SWD_FAULT_VECTOR);
	SW_CHECK(trapvm_sw_data, fault_rip, SWD_FAULT_RIP);
	SW_CHECK(trapvm_sw_data, scratch, SWD_SCRATCH);
	SW_CHECK(trapvm_sw_data, verw_sel, SWD_VERW_SEL);
	SW_CHECK(trapvm_sw_data, sw_gdt, SWD_SW_GDT);
	SW_CHECK(trapvm_sw_data, sw_idt, SWD_SW_IDT);
	SW_CHECK(trapvm_sw_host, rsp, SWH_RSP);
	SW_CHECK(trapvm_sw_host, cr3, SWH_CR3);
	SW_CHECK(trapvm_sw_host, cr4, SWH_CR4);
	SW_CHECK(trapvm_sw_host, gs_base, SWH_GS);
	SW_CHECK(trapvm_sw_host, tss_desc, SWH_TSS_DESC);
	SW_CHECK(trapvm_sw_host, ret, SWH_RET);
	SW_CHECK(trapvm_sw_host, gdt_ro, SWH_GDT_RO);
	SW_CHECK(trapvm_sw_host, gdt_rw, SWH_GDT_RW);
	SW_CHECK(trapvm_sw_host, idt, SWH_IDT);
	BUILD_BUG_ON(sizeof(struct trapvm_sw_data) > SWD_GDT);
	BUILD_BUG_ON(SWD_TSS + sizeof(struct x86_hw_tss) > PAGE_SIZE);
	BUILD_BUG_ON(SWD_GDT + TRAPVM_SW_GDT_ENTRIES * 8 > SWD_TSS);
	BUILD_BUG_ON(GDT_ENTRY_TSS * 8 != TRAPVM_SW_TSS_SEL);
	/* Linux's IST numbers, so host IST stacks fit our gates too. */
	BUILD_BUG_ON(IST_INDEX_DF + 1 != TRAPVM_SW_IST_DF);
	BUILD_BUG_ON(IST_INDEX_NMI + 1 != TRAPVM_SW_IST_NMI);
	BUILD_BUG_ON(IST_INDEX_DB + 1 != TRAPVM_SW_IST_DB);
	BUILD_BUG_ON(IST_INDEX_MCE + 1 != TRAPVM_SW_IST_MC);
}

static unsigned long sw_text_off(const u8 *sym)
{
	return sym - trapvm_sw_text_start;
}

static u64 *sw_alloc_table(void)
{
	return (u64 *)get_zeroed_page(GFP_KERNEL);
}

static unsigned int sw_vector_ist(unsigned int vector)
{
	switch (vector) {
	case X86_TRAP_DF:
		return TRAPVM_SW_IST_DF;
	case X86_TRAP_NMI:
		return TRAPVM_SW_IST_NMI;
	case X86_TRAP_DB:
		return TRAPVM_SW_IST_DB;
	case X86_TRAP_MC:
		return TRAPVM_SW_IST_MC;
	default:
		return 0;
	}
}

static void sw_fill_gdt(struct trapvm_sw_data *d, unsigned long hole)
{
	struct desc_struct *gdt = (void *)d + SWD_GDT;
	struct x86_hw_tss *tss = (void *)d + SWD_TSS;

	/* Linux's layout, so the host's STAR stays valid for the guest. */
	gdt[GDT_ENTRY_KERNEL_CS] = (struct desc_struct)
		GDT_ENTRY_INIT(0xa09b, 0, 0xfffff);
	gdt[GDT_ENTRY_KERNEL_DS] = (struct desc_struct)
		GDT_ENTRY_INIT(0xc093, 0, 0xfffff);
	gdt[GDT_ENTRY_DEFAULT_USER_DS] = (struct desc_struct)
		GDT_ENTRY_INIT(0xc0f3, 0, 0xfffff);
	gdt[GDT_ENTRY_DEFAULT_USER_CS] = (struct desc_struct)
		GDT_ENTRY_INIT(0xa0fb, 0, 0xfffff);
	/* No 32-bit user CS: a guest far jump there traps instead. */
	set_tssldt_descriptor(&gdt[GDT_ENTRY_TSS],
			      hole + TRAPVM_SW_DATA_OFF + SWD_TSS, DESC_TSS,
			      sizeof(struct x86_hw_tss) - 1);

	memset(tss, 0, sizeof(*tss));
	tss->sp0 = hole + TRAPVM_SW_STACK_TOP;
	tss->ist[TRAPVM_SW_IST_DF - 1] = hole + (TRAPVM_SW_DF_PAGE + 1) *
					 PAGE_SIZE;
	tss->ist[TRAPVM_SW_IST_NMI - 1] = hole + (TRAPVM_SW_NMI_PAGE + 1) *
					  PAGE_SIZE;
	tss->ist[TRAPVM_SW_IST_DB - 1] = hole + (TRAPVM_SW_DB_PAGE + 1) *
					 PAGE_SIZE;
	tss->ist[TRAPVM_SW_IST_MC - 1] = hole + (TRAPVM_SW_MC_PAGE + 1) *
					 PAGE_SIZE;
	/* No I/O bitmap (offset past the limit): every IN/OUT is #GP. */
	tss->io_bitmap_base = sizeof(struct x86_hw_tss);

	d->sw_gdt.size = TRAPVM_SW_GDT_ENTRIES * 8 - 1;
	d->sw_gdt.address = hole + TRAPVM_SW_DATA_OFF + SWD_GDT;
	d->sw_idt.size = 256 * sizeof(gate_desc) - 1;
	d->sw_idt.address = hole + TRAPVM_SW_IDT_PAGE * PAGE_SIZE;
}

static void sw_fill_idt(gate_desc *idt, unsigned long hole)
{
	unsigned long stubs = hole + sw_text_off(trapvm_sw_stubs);
	unsigned int v;

	for (v = 0; v < 256; v++) {
		unsigned long addr = stubs + 16 * v;
		gate_desc *g = &idt[v];

		memset(g, 0, sizeof(*g));
		g->offset_low = addr & 0xffff;
		g->segment = __KERNEL_CS;
		g->bits.ist = sw_vector_ist(v);
		g->bits.type = GATE_INTERRUPT;
		/* DPL 0: a guest INT n (INT3 included) is #GP, not a vector. */
		g->bits.dpl = 0;
		g->bits.p = 1;
		g->offset_middle = (addr >> 16) & 0xffff;
		g->offset_high = addr >> 32;
	}
}

static void sw_free_cpu(struct trapvm_sw_cpu *sc)
{
	unsigned int i;

	for (i = 0; i < TRAPVM_SW_REGION_PAGES; i++)
		if (sc->pages[i])
			__free_page(sc->pages[i]);
	memset(sc, 0, sizeof(*sc));
}

static int sw_init_cpu(unsigned int cpu)
{
	struct trapvm_sw_cpu *sc = &sw_cpus[cpu];
	size_t text_len = trapvm_sw_text_end - trapvm_sw_text_start;
	unsigned int i, first_pte;
	u8 *text;

	sc->hole = TRAPVM_HOLE_START + (unsigned long)cpu *
		   TRAPVM_SW_REGION_SIZE;
	for (i = 0; i < ARRAY_SIZE(sw_used_pages); i++) {
		struct page *p = alloc_pages_node(cpu_to_node(cpu),
						  GFP_KERNEL | __GFP_ZERO, 0);

		if (!p)
			return -ENOMEM;
		sc->pages[sw_used_pages[i]] = p;
	}

	/* The text: two pages, copied from the template, 0xcc padded. */
	for (i = 0; i < TRAPVM_SW_TEXT_PAGES; i++) {
		size_t off = i * PAGE_SIZE, n;

		text = page_address(sc->pages[i]);
		memset(text, 0xcc, PAGE_SIZE);
		if (off < text_len) {
			n = min_t(size_t, PAGE_SIZE, text_len - off);
			memcpy(text, trapvm_sw_text_start + off, n);
		}
	}

	sw_fill_idt(page_address(sc->pages[TRAPVM_SW_IDT_PAGE]), sc->hole);

	sc->data = page_address(sc->pages[TRAPVM_SW_DATA_PAGE]);
	sw_fill_gdt(sc->data, sc->hole);
	sc->data->transit_cr3 = sw_transit_cr3;
	sc->data->verw_sel = __KERNEL_DS;

	sc->host = page_address(sc->pages[TRAPVM_SW_HOST_PAGE]);
	sc->host->ret = (unsigned long)trapvm_sw_host_return;
	sc->host->tss_desc =
		(unsigned long)&get_cpu_gdt_rw(cpu)[GDT_ENTRY_TSS];
	sc->host->gdt_rw.size = GDT_SIZE - 1;
	sc->host->gdt_rw.address = (unsigned long)get_cpu_gdt_rw(cpu);

	first_pte = cpu * TRAPVM_SW_REGION_PAGES;
	for (i = 0; i < TRAPVM_SW_REGION_PAGES; i++) {
		unsigned int n = first_pte + i;
		u64 flags;

		if (!sc->pages[i])
			continue;
		if (i < TRAPVM_SW_TEXT_PAGES)
			flags = SW_PTE_TEXT;
		else if (i == TRAPVM_SW_IDT_PAGE)
			flags = SW_PTE_RO;
		else
			flags = SW_PTE_RW;
		flags &= __supported_pte_mask;
		sw_transit_tables.pts[n / 512][n % 512] =
			page_to_phys(sc->pages[i]) | flags;
		/* The guests never see the host state. */
		if (i != TRAPVM_SW_HOST_PAGE)
			sw_guest_tables.pts[n / 512][n % 512] =
				page_to_phys(sc->pages[i]) | flags;
	}
	return 0;
}

static int sw_alloc_tables(struct sw_tables *t)
{
	unsigned int i;

	t->pdpt = sw_alloc_table();
	t->pd = sw_alloc_table();
	t->pts = kcalloc(sw_nr_pts, sizeof(*t->pts), GFP_KERNEL);
	if (!t->pdpt || !t->pd || !t->pts)
		return -ENOMEM;
	for (i = 0; i < sw_nr_pts; i++) {
		t->pts[i] = sw_alloc_table();
		if (!t->pts[i])
			return -ENOMEM;
		t->pd[i] = __pa(t->pts[i]) | SW_TABLE;
	}
	t->pdpt[0] = __pa(t->pd) | SW_TABLE;
	return 0;
}

static void sw_free_tables(struct sw_tables *t)
{
	unsigned int i;

	if (t->pts) {
		for (i = 0; i < sw_nr_pts; i++)
			free_page((unsigned long)t->pts[i]);
		kfree(t->pts);
	}
	free_page((unsigned long)t->pd);
	free_page((unsigned long)t->pdpt);
	memset(t, 0, sizeof(*t));
}

static void sw_free_all(void)
{
	unsigned int cpu;

	if (sw_cpus) {
		for_each_possible_cpu(cpu)
			sw_free_cpu(&sw_cpus[cpu]);
		kfree(sw_cpus);
		sw_cpus = NULL;
	}
	sw_free_tables(&sw_guest_tables);
	sw_free_tables(&sw_transit_tables);
	free_page((unsigned long)sw_transit_p4d);
	if (sw_transit_pages)
		__free_pages(sw_transit_pages, 1);
	sw_transit_p4d = NULL;
	sw_transit_pages = NULL;
	sw_transit_cr3 = 0;
	sw_hole_pml4e = 0;
}

/*
 * The transit root: the host kernel's half of the current top-level
 * table (identical in every process and in init_mm) plus the hole.
 */
static int sw_build_transit(void)
{
	u64 hole = __pa(sw_transit_tables.pdpt) | SW_TABLE;
	u64 *host = __va(read_cr3_pa());
	u64 *root, *host_p4d;
	unsigned int i;

	sw_transit_pages = alloc_pages(GFP_KERNEL | __GFP_ZERO, 1);
	if (!sw_transit_pages)
		return -ENOMEM;
	root = page_address(sw_transit_pages);
	for (i = 256; i < 512; i++)
		root[i] = host[i];

	if (pgtable_l5_enabled()) {
		/* 0xffff8000_00000000 is PML5[511] -> PML4[256]. */
		if (!(host[511] & _PAGE_PRESENT))
			return -ENODEV;
		host_p4d = __va(host[511] & PTE_PFN_MASK);
		if (host_p4d[SW_HOLE_SLOT] & _PAGE_PRESENT) {
			pr_err("trapvm: host uses the hole (PML5 511, PML4 %lu)\n",
			       (unsigned long)SW_HOLE_SLOT);
			return -EBUSY;
		}
		sw_transit_p4d = sw_alloc_table();
		if (!sw_transit_p4d)
			return -ENOMEM;
		memcpy(sw_transit_p4d, host_p4d, PAGE_SIZE);
		sw_transit_p4d[SW_HOLE_SLOT] = hole;
		root[511] = __pa(sw_transit_p4d) | (host[511] & ~PTE_PFN_MASK);
	} else {
		if (host[SW_HOLE_SLOT] & _PAGE_PRESENT) {
			pr_err("trapvm: host uses the hole (PML4 %lu)\n",
			       (unsigned long)SW_HOLE_SLOT);
			return -EBUSY;
		}
		root[SW_HOLE_SLOT] = hole;
	}
	sw_transit_cr3 = page_to_phys(sw_transit_pages);
	return 0;
}

static int sw_init_all(void)
{
	unsigned int cpu, nr_ptes;
	int ret = -ENOMEM;

	sw_build_checks();
	if (trapvm_sw_text_end - trapvm_sw_text_start >
	    TRAPVM_SW_TEXT_PAGES * PAGE_SIZE)
		return -E2BIG;

	nr_ptes = nr_cpu_ids * TRAPVM_SW_REGION_PAGES;
	sw_nr_pts = DIV_ROUND_UP(nr_ptes, 512);
	if (sw_nr_pts > 512)
		return -E2BIG;

	sw_cpus = kcalloc(nr_cpu_ids, sizeof(*sw_cpus), GFP_KERNEL);
	if (!sw_cpus || sw_alloc_tables(&sw_guest_tables) ||
	    sw_alloc_tables(&sw_transit_tables))
		goto fail;
	/* Supervisor only at the top: nothing below is reachable at CPL3. */
	sw_hole_pml4e = __pa(sw_guest_tables.pdpt) | SW_TABLE;

	ret = sw_build_transit();
	if (ret)
		goto fail;

	for_each_possible_cpu(cpu) {
		ret = sw_init_cpu(cpu);
		if (ret)
			goto fail;
	}
	return 0;
fail:
	sw_free_all();
	return ret;
}

int trapvm_switcher_get(void)
{
	int ret = 0;

	mutex_lock(&sw_lock);
	if (!sw_users)
		ret = sw_init_all();
	if (!ret)
		sw_users++;
	mutex_unlock(&sw_lock);
	return ret;
}

void trapvm_switcher_put(void)
{
	mutex_lock(&sw_lock);
	if (!WARN_ON(!sw_users) && !--sw_users)
		sw_free_all();
	mutex_unlock(&sw_lock);
}

u64 trapvm_switcher_hole_pml4e(void)
{
	return sw_hole_pml4e;
}

/* Hand a vector that hit the switcher IDT to the host's own handler. */
static void sw_host_vector(struct trapvm_sw_host *h, unsigned int vector)
{
	gate_desc *idt = (gate_desc *)h->idt.address;

	trapvm_sw_dispatch(gate_offset(&idt[vector]));
}

void trapvm_switcher_run(struct trapvm_sw_regs *regs, u64 shadow_cr3,
			 struct trapvm_sw_exit *exit)
{
	unsigned int cpu = smp_processor_id();
	struct trapvm_sw_cpu *sc = &sw_cpus[cpu];
	struct trapvm_sw_data *d = sc->data;
	struct trapvm_sw_host *h = sc->host;
	unsigned long cr4, host_fs, host_lstar, host_sysenter = 0, dr7;
	bool sysenter = boot_cpu_has(X86_FEATURE_SEP);
	unsigned int vector;

	lockdep_assert_irqs_disabled();

	memcpy(d->gprs, regs->gpr, sizeof(d->gprs));
	d->rip = regs->rip;
	d->rflags = (regs->rflags & SW_RFLAGS_GUEST) | X86_EFLAGS_IF |
		    X86_EFLAGS_FIXED;
	d->guest_gs = regs->gs_base;
	d->shadow_cr3 = shadow_cr3;
	d->vector = TRAPVM_SW_VEC_FAULT;
	d->nmi_pending = 0;
	d->kernel_exc = 0;
	h->cr3 = __read_cr3();
	cr4 = __read_cr4();
	h->cr4 = cr4;
	rdmsrl(MSR_GS_BASE, h->gs_base);
	native_store_gdt(&h->gdt_ro);
	store_idt(&h->idt);

	/* MSRs the guest's CPL3 execution would otherwise reach. */
	rdmsrl(MSR_FS_BASE, host_fs);
	wrmsrl(MSR_FS_BASE, regs->fs_base);
	rdmsrl(MSR_LSTAR, host_lstar);
	wrmsrl(MSR_LSTAR, sc->hole + sw_text_off(trapvm_sw_syscall));
	if (sysenter) {
		/* SYSENTER from CPL3 with SYSENTER_CS = 0 is #GP. */
		rdmsrl(MSR_IA32_SYSENTER_CS, host_sysenter);
		wrmsrl(MSR_IA32_SYSENTER_CS, 0);
	}
	/* Host hardware breakpoints must not fire on guest accesses. */
	dr7 = local_db_save();

	exit->tsc_guest = rdtsc();
	trapvm_sw_enter(d, sc->hole + sw_text_off(trapvm_sw_entry),
			cr4 & ~X86_CR4_PGE, h);
	exit->tsc_exit = rdtsc();

	local_db_restore(dr7);
	if (sysenter)
		wrmsrl(MSR_IA32_SYSENTER_CS, host_sysenter);
	wrmsrl(MSR_LSTAR, host_lstar);
	rdmsrl(MSR_FS_BASE, regs->fs_base);
	wrmsrl(MSR_FS_BASE, host_fs);

	memcpy(regs->gpr, d->gprs, sizeof(d->gprs));
	regs->rip = d->rip;
	regs->rflags = d->rflags;
	regs->gs_base = d->guest_gs;

	vector = d->vector;
	exit->vector = vector;
	exit->error_code = d->error_code;
	exit->cr2 = d->cr2;
	exit->cs = d->cs;
	exit->ss = d->ss;
	exit->fault_rip = d->fault_rip;
	exit->fault_vector = d->fault_vector;
	exit->host_event = false;

	if (vector == X86_TRAP_NMI) {
		/* NMIs stay blocked until an IRET: the host handler does it. */
		trapvm_sw_dispatch((unsigned long)asm_exc_nmi_noist);
		exit->host_event = true;
	} else if (vector >= FIRST_EXTERNAL_VECTOR && vector < 256) {
		sw_host_vector(h, vector);
		exit->host_event = true;
	} else if (vector == TRAPVM_SW_VEC_ABORT) {
		/* The recorded NMI is replayed below. */
		exit->host_event = true;
	} else if (vector == X86_TRAP_MC) {
		pr_err_ratelimited("trapvm: machine check while a guest ran\n");
		exit->host_event = true;
	}
	if (d->nmi_pending)
		trapvm_sw_dispatch((unsigned long)asm_exc_nmi_noist);
	if (d->kernel_exc)
		pr_warn_ratelimited("trapvm: #DB/#MC inside the switcher (%llx)\n",
				    d->kernel_exc);
}
