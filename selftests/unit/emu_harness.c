// SPDX-License-Identifier: GPL-2.0
/*
 * Fake guest memory and ops for the emulator tests; see emu_harness.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emu_harness.h"

struct h_page *h_page(struct harness *h, u64 va)
{
	unsigned int i;

	for (i = 0; i < h->npages; i++)
		if (h->pages[i].va == (va & ~0xfffULL))
			return &h->pages[i];
	return NULL;
}

void h_map(struct harness *h, u64 va, unsigned int flags)
{
	struct h_page *p = h_page(h, va);

	if (!p) {
		if (h->npages >= H_PAGES) {
			fprintf(stderr, "harness: out of pages\n");
			abort();
		}
		p = &h->pages[h->npages++];
		p->va = va & ~0xfffULL;
		memset(p->data, 0, sizeof(p->data));
	}
	p->flags = flags | PG_P;
}

void h_put(struct harness *h, u64 va, const void *buf, unsigned int len)
{
	const u8 *b = buf;
	unsigned int i;

	for (i = 0; i < len; i++) {
		struct h_page *p = h_page(h, va + i);

		if (!p) {
			fprintf(stderr, "harness: put to unmapped %llx\n",
				(unsigned long long)(va + i));
			abort();
		}
		p->data[(va + i) & 0xfff] = b[i];
		h->dirty |= 1ULL << (p - h->pages);
	}
}

void h_restore(struct harness *h, const struct harness *snap)
{
	unsigned int i;

	for (i = 0; i < H_PAGES; i++)
		if (h->dirty & (1ULL << i))
			memcpy(&h->pages[i], &snap->pages[i],
			       sizeof(h->pages[i]));
	h->npages = snap->npages;
	h->cpu = snap->cpu;
	h->cr3_loads = h->invlpgs = h->paging_changes = 0;
	h->msr_hook_calls = 0;
	h->cmpxchgs = h->race_left = 0;
	h->dirty = 0;
}

void h_get(struct harness *h, u64 va, void *buf, unsigned int len)
{
	u8 *b = buf;
	unsigned int i;

	for (i = 0; i < len; i++) {
		struct h_page *p = h_page(h, va + i);

		b[i] = p ? p->data[(va + i) & 0xfff] : 0xee;
	}
}

u64 h_get64(struct harness *h, u64 va)
{
	u64 v;

	h_get(h, va, &v, 8);
	return v;
}

void h_put64(struct harness *h, u64 va, u64 v)
{
	h_put(h, va, &v, 8);
}

unsigned int h_hex(const char *hex, u8 *out, unsigned int max)
{
	unsigned int n = 0;

	while (*hex && n < max) {
		char *end;
		unsigned long v;

		while (*hex == ' ')
			hex++;
		if (!*hex)
			break;
		v = strtoul(hex, &end, 16);
		if (end == hex)
			break;
		out[n++] = v;
		hex = end;
	}
	return n;
}

void h_code(struct harness *h, const char *hex)
{
	u8 b[32];
	unsigned int n = h_hex(hex, b, sizeof(b));

	h_put(h, h->cpu.rip, b, n);
}

void h_set_desc(struct harness *h, u16 sel, u64 desc)
{
	h_put64(h, H_GDT + (sel & ~7), desc);
}

void h_set_gate(struct harness *h, unsigned int vector, u64 handler, u16 sel,
		unsigned int ist, unsigned int type, unsigned int dpl,
		bool present)
{
	u64 lo, hi;

	/* SDM figure 6-8: 64-bit IDT gate descriptor */
	lo = (handler & 0xffff) | ((u64)sel << 16) | ((u64)ist << 32) |
	     ((u64)type << 40) | ((u64)dpl << 45) | ((u64)present << 47) |
	     (((handler >> 16) & 0xffff) << 48);
	hi = handler >> 32;
	h_put64(h, H_IDT + vector * 16, lo);
	h_put64(h, H_IDT + vector * 16 + 8, hi);
}

static u64 tss_desc_lo(u64 base, u32 limit, unsigned int type)
{
	return (limit & 0xffff) | ((base & 0xffffff) << 16) |
	       ((u64)(0x80 | type) << 40) | ((u64)((limit >> 16) & 0xf) << 48) |
	       (((base >> 24) & 0xff) << 56);
}

/* --- ops ------------------------------------------------------------ */

static int h_check(struct harness *h, u64 va, unsigned int len,
		   unsigned int acc, struct trapvm_fault *f)
{
	bool user = (acc & TRAPVM_ACC_USER) && !(acc & TRAPVM_ACC_IMPLICIT);
	bool write = acc & TRAPVM_ACC_WRITE, fetch = acc & TRAPVM_ACC_FETCH;
	u32 err = (write ? 2 : 0) | (user ? 4 : 0) | (fetch ? 0x10 : 0);
	unsigned int i;

	for (i = 0; i < len; i++) {
		struct h_page *p = h_page(h, va + i);
		bool bad = false;

		if (!p) {
			bad = true;
		} else {
			if (user && !(p->flags & PG_U))
				bad = true;
			/* supervisor writes ignore W only when CR0.WP=0 */
			if (write && !(p->flags & PG_W) &&
			    (user || (h->cpu.cr0 & TRAPVM_CR0_WP)))
				bad = true;
			if (fetch && (p->flags & PG_NX) &&
			    (h->cpu.efer & TRAPVM_EFER_NXE))
				bad = true;
			if (bad)
				err |= 1;
		}
		if (bad) {
			f->vector = TRAPVM_PF_VECTOR;
			f->has_error_code = true;
			f->error_code = err;
			f->cr2 = va + i;
			return -1;
		}
	}
	return 0;
}

static int h_read(void *ctx, u64 gva, void *buf, unsigned int len,
		  unsigned int access, struct trapvm_fault *fault)
{
	struct harness *h = ctx;

	if (gva + len > H_MMIO && gva < H_MMIO + 0x1000)
		return TRAPVM_ACCESS_MMIO;
	if (len > 24 || h_check(h, gva, len, access, fault))
		return -1;
	h_get(h, gva, buf, len);
	return 0;
}

static int h_write(void *ctx, u64 gva, const void *buf, unsigned int len,
		   unsigned int access, struct trapvm_fault *fault)
{
	struct harness *h = ctx;

	if (gva + len > H_MMIO && gva < H_MMIO + 0x1000)
		return TRAPVM_ACCESS_MMIO;
	if (len > 48 ||
	    h_check(h, gva, len, access | TRAPVM_ACC_WRITE, fault))
		return -1;
	h_put(h, gva, buf, len);
	return 0;
}

static int h_cmpxchg(void *ctx, u64 gva, u64 old, u64 new, unsigned int len,
		     unsigned int access, struct trapvm_fault *fault)
{
	struct harness *h = ctx;
	u64 cur = 0;

	h->cmpxchgs++;
	if (gva + len > H_MMIO && gva < H_MMIO + 0x1000)
		return TRAPVM_ACCESS_MMIO;
	if (!(access & TRAPVM_ACC_WRITE) || !len || len > 8 ||
	    (len & (len - 1))) {
		fprintf(stderr, "harness: bad cmpxchg access %#x len %u\n",
			access, len);
		abort();
	}
	if (h_check(h, gva, len, access, fault))
		return -1;
	if (h->race_left) {
		h->race_left--;
		h_put(h, h->race_va, &h->race_val, h->race_len);
	}
	h_get(h, gva, &cur, len);
	if (cur != old)
		return TRAPVM_ACCESS_CHANGED;
	h_put(h, gva, &new, len);
	return 0;
}

static int h_rdmsr(void *ctx, u32 msr, u64 *val)
{
	struct harness *h = ctx;

	h->msr_hook_calls++;
	if (msr >= TRAPVM_MSR_X2APIC_FIRST && msr <= TRAPVM_MSR_X2APIC_LAST) {
		*val = h->x2apic[msr & 0xff];
		return TRAPVM_MSR_OK;
	}
	return TRAPVM_MSR_UNHANDLED;
}

static int h_wrmsr(void *ctx, u32 msr, u64 val)
{
	struct harness *h = ctx;

	h->msr_hook_calls++;
	if (msr >= TRAPVM_MSR_X2APIC_FIRST && msr <= TRAPVM_MSR_X2APIC_LAST) {
		if (msr == 0x808 && (val >> 8))	/* TPR: reserved bits */
			return TRAPVM_MSR_GP;
		h->x2apic[msr & 0xff] = val;
		return TRAPVM_MSR_OK;
	}
	return TRAPVM_MSR_UNHANDLED;
}

static void h_cr3_load(void *ctx, u64 cr3, bool noflush)
{
	struct harness *h = ctx;

	h->cr3_loads++;
	h->last_cr3 = cr3;
	h->last_noflush = noflush;
}

static void h_invlpg(void *ctx, u64 gva)
{
	struct harness *h = ctx;

	h->invlpgs++;
	h->last_invlpg = gva;
}

static void h_paging_changed(void *ctx, u64 cr0, u64 cr4, u64 efer)
{
	struct harness *h = ctx;

	h->paging_changes++;
}

static void h_stat(void *ctx, unsigned int stat)
{
	struct harness *h = ctx;

	if (stat >= TRAPVM_STAT_NR) {
		fprintf(stderr, "harness: bad stat %u\n", stat);
		abort();
	}
	h->stats[stat]++;
}

static void h_cpuid(void *ctx, u32 leaf, u32 subleaf, u32 out[4])
{
	/* a recognisable answer: leaf/subleaf echoed */
	out[0] = leaf;
	out[1] = subleaf;
	out[2] = 0x6e74654c;
	out[3] = 0x4d565054;
}

static u64 h_rdtsc(void *ctx)
{
	return 0x123456789abcdefULL;
}

const struct trapvm_emu_ops h_ops = {
	.read = h_read,
	.write = h_write,
	.cmpxchg = h_cmpxchg,
	.rdmsr = h_rdmsr,
	.wrmsr = h_wrmsr,
	.cr3_load = h_cr3_load,
	.invlpg = h_invlpg,
	.paging_changed = h_paging_changed,
	.stat = h_stat,
	.cpuid = h_cpuid,
	.rdtsc = h_rdtsc,
};

int h_emulate(struct harness *h, struct trapvm_emu_result *res)
{
	memset(res, 0, sizeof(*res));
	return trapvm_emulate(&h->cpu, &h_ops, h, res);
}

/* --- the standard guest ---------------------------------------------- */

static void set_seg(struct trapvm_seg *s, u16 sel, u16 attr)
{
	s->selector = sel;
	s->attr = attr;
	s->base = 0;
	s->limit = 0xffffffff;
}

void h_init(struct harness *h)
{
	struct trapvm_cpu *cpu = &h->cpu;
	unsigned int v;

	memset(h, 0, sizeof(*h));
	h_map(h, H_GDT, PG_W);
	h_map(h, H_IDT, PG_W);
	h_map(h, H_TSS, PG_W);
	h_map(h, H_LDT, PG_W);
	h_map(h, H_KCODE, 0);
	h_map(h, H_KSTACK_TOP - 0x1000, PG_W | PG_NX);
	h_map(h, H_IST1_TOP - 0x1000, PG_W | PG_NX);
	h_map(h, H_UCODE, PG_U);
	h_map(h, H_USTACK_TOP - 0x1000, PG_W | PG_U | PG_NX);
	h_map(h, H_KDATA, PG_W | PG_NX);
	h_map(h, H_UDATA, PG_W | PG_U | PG_NX);
	h_map(h, H_RODATA, PG_NX);

	/* GDT: the descriptors Linux uses, written out by hand */
	h_set_desc(h, SEL_KCODE32, 0x00cf9b000000ffffULL);
	h_set_desc(h, SEL_KCODE, 0x00af9b000000ffffULL);
	h_set_desc(h, SEL_KDATA, 0x00cf93000000ffffULL);
	h_set_desc(h, SEL_UCODE32, 0x00cffb000000ffffULL);
	h_set_desc(h, SEL_UDATA, 0x00cff3000000ffffULL);
	h_set_desc(h, SEL_UCODE, 0x00affb000000ffffULL);
	h_set_desc(h, SEL_NP_DATA, 0x00cf13000000ffffULL);
	h_put64(h, H_GDT + SEL_TSS, tss_desc_lo(H_TSS, H_TSS_LIMIT, 0xb));
	h_put64(h, H_GDT + SEL_TSS + 8, H_TSS >> 32);
	h_put64(h, H_GDT + SEL_LDT, tss_desc_lo(H_LDT, 0xf, 0x2));
	h_put64(h, H_GDT + SEL_LDT + 8, H_LDT >> 32);
	h_set_desc(h, SEL_RO_DATA, 0x00cf91000000ffffULL);
	h_set_desc(h, SEL_XO_CODE, 0x00cf99000000ffffULL);
	h_set_desc(h, SEL_BASE_DATA, 0x12cf93345000ffffULL);
	h_put64(h, H_LDT, 0x00cff3000000ffffULL);

	/* IDT: interrupt gates to 0x10, #BP and 0x80 reachable from CPL3 */
	for (v = 0; v < 256; v++)
		h_set_gate(h, v, H_HANDLER(v), SEL_KCODE, 0, 0xe, 0, true);
	h_set_gate(h, 3, H_HANDLER(3), SEL_KCODE, 0, 0xf, 3, true);
	h_set_gate(h, 0x80, H_HANDLER(0x80), SEL_KCODE, 0, 0xf, 3, true);
	h_set_gate(h, 8, H_HANDLER(8), SEL_KCODE, 1, 0xe, 0, true);

	/* TSS: RSP0, IST1, I/O bitmap right after the header */
	h_put64(h, H_TSS + 4, H_KSTACK_TOP);
	h_put64(h, H_TSS + 36, H_IST1_TOP);
	h_put(h, H_TSS + 102, &(u16){ H_IOMAP }, 2);
	{
		u8 b = 1 << (H_BLOCKED_PORT & 7);

		h_put(h, H_TSS + H_IOMAP + H_BLOCKED_PORT / 8, &b, 1);
		b = 0xff;	/* the byte after the bitmap (SDM 20.5.2) */
		h_put(h, H_TSS + H_TSS_LIMIT, &b, 1);
	}

	cpu->cpl = 0;
	set_seg(&cpu->seg[SREG_CS], SEL_KCODE, 0xaf9b);
	set_seg(&cpu->seg[SREG_SS], SEL_KDATA, 0xcf93);
	set_seg(&cpu->seg[SREG_DS], SEL_KDATA, 0xcf93);
	set_seg(&cpu->seg[SREG_ES], SEL_KDATA, 0xcf93);
	set_seg(&cpu->seg[SREG_FS], 0, 0);
	set_seg(&cpu->seg[SREG_GS], 0, 0);
	cpu->tr.selector = SEL_TSS;
	cpu->tr.base = H_TSS;
	cpu->tr.limit = H_TSS_LIMIT;
	cpu->tr.attr = 0x8b;
	cpu->gdtr.base = H_GDT;
	cpu->gdtr.limit = 0xff;
	cpu->idtr.base = H_IDT;
	cpu->idtr.limit = 0xfff;
	cpu->efer = TRAPVM_EFER_SCE | TRAPVM_EFER_LME | TRAPVM_EFER_LMA |
		    TRAPVM_EFER_NXE;
	cpu->cr0 = 0x80050033ULL;	/* PG AM WP NE ET MP PE */
	cpu->cr4 = TRAPVM_CR4_PAE | TRAPVM_CR4_PGE | TRAPVM_CR4_OSFXSR |
		   TRAPVM_CR4_OSXMMEXCPT | TRAPVM_CR4_OSXSAVE;
	cpu->cr3 = 0x1000;
	cpu->xcr0 = 1;
	cpu->rflags = 0x2;
	cpu->rip = H_KCODE;
	cpu->gpr[GPR_RSP] = H_KSTACK_TOP - 0x100;
	cpu->star = (0x23ULL << 48) | (0x10ULL << 32);
	cpu->lstar = 0xffffffff81800000ULL;
	cpu->sfmask = 0x47700;
	cpu->pat = 0x0007040600070406ULL;
	cpu->apic_base = 0xfee00d00ULL;
	cpu->dr[6] = 0xffff0ff0ULL;
	cpu->dr[7] = 0x400;
	cpu->maxphyaddr = 40;
}

void h_user(struct harness *h)
{
	struct trapvm_cpu *cpu = &h->cpu;

	cpu->cpl = 3;
	set_seg(&cpu->seg[SREG_CS], SEL_UCODE, 0xaffb);
	set_seg(&cpu->seg[SREG_SS], SEL_UDATA, 0xcff3);
	set_seg(&cpu->seg[SREG_DS], SEL_UDATA, 0xcff3);
	set_seg(&cpu->seg[SREG_ES], SEL_UDATA, 0xcff3);
	cpu->rip = H_UCODE;
	cpu->gpr[GPR_RSP] = H_USTACK_TOP - 0x100;
	cpu->rflags = 0x202;
}
