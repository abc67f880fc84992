// SPDX-License-Identifier: GPL-2.0
/*
 * Unit tests of the virtual x2APIC model (kmod/vcpu/lapic.c), in userspace
 * with a fake clock.  Expected values come from the Intel SDM Vol. 3
 * ("Advanced Programmable Interrupt Controller") as restated here: the
 * x2APIC register map and access rights, the PPR rule, the acceptance
 * rule, the divide-configuration table and the timer count formula are
 * written out in this file and do not use the model's own helpers.
 *
 * Output is TAP.  Built together with kmod/vcpu/lapic.c and -Ikmod/include
 * (selftests/unit/Makefile does it for `make check`).
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include <trapvm/glue.h>
#include <trapvm/lapic.h>

/* ---- TAP ---- */

static int tests_run, tests_failed, cur_failed;

static void fail(const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	cur_failed++;
	printf("# %s:%d: ", file, line);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
}

#define EXPECT(cond, ...) \
	do { if (!(cond)) fail(__FILE__, __LINE__, __VA_ARGS__); } while (0)
#define EXPECT_EQ(a, b) \
	do { \
		unsigned long long _a = (a), _b = (b); \
		if (_a != _b) \
			fail(__FILE__, __LINE__, "%s = %#llx, expected %s = %#llx", \
			     #a, _a, #b, _b); \
	} while (0)

static void run_test(void (*fn)(void), const char *name)
{
	cur_failed = 0;
	fn();
	tests_run++;
	if (cur_failed)
		tests_failed++;
	printf("%sok %d - %s\n", cur_failed ? "not " : "", tests_run, name);
}

#define RUN(fn) run_test(fn, #fn)

/* ---- fake clock and backing timer ---- */

struct fake {
	u64 ns;
	u64 tsc;
	bool armed;
	u64 expire;
	int arms, cancels;
};

static u64 fake_now(void *ctx)
{
	return ((struct fake *)ctx)->ns;
}

static u64 fake_tsc(void *ctx)
{
	return ((struct fake *)ctx)->tsc;
}

static void fake_arm(void *ctx, u64 expire)
{
	struct fake *f = ctx;

	f->armed = true;
	f->expire = expire;
	f->arms++;
}

static void fake_cancel(void *ctx)
{
	struct fake *f = ctx;

	f->armed = false;
	f->cancels++;
}

static const struct trapvm_lapic_ops fake_ops = {
	.now_ns = fake_now,
	.read_tsc = fake_tsc,
	.arm_timer = fake_arm,
	.cancel_timer = fake_cancel,
};

#define TSC_KHZ		2500000u	/* a 2.5 GHz fake TSC */
#define MAXPHYADDR	39

static struct fake fk;
static struct trapvm_lapic A;

static void setup_id(u32 id)
{
	memset(&fk, 0, sizeof(fk));
	fk.ns = 1000000000ULL;		/* the clock does not start at 0 */
	fk.tsc = 77777777777ULL;
	trapvm_lapic_init(&A, id, MAXPHYADDR, TSC_KHZ, &fake_ops, &fk);
}

static void setup(void)
{
	setup_id(0);
}

static u64 rd(u32 msr)
{
	u64 v = 0xdeadbeefULL;
	int r = trapvm_lapic_rdmsr(&A, msr, &v);

	if (r)
		fail(__FILE__, __LINE__, "rdmsr %#x: #GP", msr);
	return v;
}

static void wr(u32 msr, u64 v)
{
	int r = trapvm_lapic_wrmsr(&A, msr, v);

	if (r)
		fail(__FILE__, __LINE__, "wrmsr %#x <- %#llx: #GP", msr,
		     (unsigned long long)v);
}

static bool rd_gp(u32 msr)
{
	u64 v;

	return trapvm_lapic_rdmsr(&A, msr, &v) == TRAPVM_LAPIC_GP;
}

static bool wr_gp(u32 msr, u64 v)
{
	return trapvm_lapic_wrmsr(&A, msr, v) == TRAPVM_LAPIC_GP;
}

static void sw_enable(void)
{
	wr(0x80f, 0x1ff);
}

/*
 * The oracle: the SDM's table "Local APIC Register Address Map Supported
 * by x2APIC" (MSR, read allowed, write allowed).
 */

struct reg_access {
	u32 msr;
	bool read, write;
};

static const struct reg_access x2apic_map[] = {
	{ 0x802, true, false },		/* ID */
	{ 0x803, true, false },		/* version */
	{ 0x808, true, true },		/* TPR */
	{ 0x80a, true, false },		/* PPR */
	{ 0x80b, false, true },		/* EOI */
	{ 0x80d, true, false },		/* LDR */
	{ 0x80f, true, true },		/* SVR */
	{ 0x810, true, false }, { 0x811, true, false }, { 0x812, true, false },
	{ 0x813, true, false }, { 0x814, true, false }, { 0x815, true, false },
	{ 0x816, true, false }, { 0x817, true, false },	/* ISR */
	{ 0x818, true, false }, { 0x819, true, false }, { 0x81a, true, false },
	{ 0x81b, true, false }, { 0x81c, true, false }, { 0x81d, true, false },
	{ 0x81e, true, false }, { 0x81f, true, false },	/* TMR */
	{ 0x820, true, false }, { 0x821, true, false }, { 0x822, true, false },
	{ 0x823, true, false }, { 0x824, true, false }, { 0x825, true, false },
	{ 0x826, true, false }, { 0x827, true, false },	/* IRR */
	{ 0x828, true, true },		/* ESR */
	{ 0x82f, true, true },		/* LVT CMCI */
	{ 0x830, true, true },		/* ICR */
	{ 0x832, true, true },		/* LVT timer */
	{ 0x833, true, true },		/* LVT thermal */
	{ 0x834, true, true },		/* LVT perf */
	{ 0x835, true, true },		/* LVT LINT0 */
	{ 0x836, true, true },		/* LVT LINT1 */
	{ 0x837, true, true },		/* LVT error */
	{ 0x838, true, true },		/* initial count */
	{ 0x839, true, false },		/* current count */
	{ 0x83e, true, true },		/* divide configuration */
	{ 0x83f, false, true },		/* SELF IPI */
};

static const struct reg_access *map_find(u32 msr)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(x2apic_map); i++)
		if (x2apic_map[i].msr == msr)
			return &x2apic_map[i];
	return NULL;
}

/* SDM divide configuration: bits 3,1,0 -> divisor */
static const struct {
	u32 dcr, div;
} dcr_table[] = {
	{ 0x0, 2 }, { 0x1, 4 }, { 0x2, 8 }, { 0x3, 16 },
	{ 0x8, 32 }, { 0x9, 64 }, { 0xa, 128 }, { 0xb, 1 },
};

/* The documented timer input clock (Documentation/interrupts.rst). */
#define ORACLE_TIMER_HZ	1000000000ULL

/* SDM: the count decrements at (input clock / divisor). */
static u64 oracle_ticks(u64 elapsed_ns, u32 div)
{
	return elapsed_ns * (ORACLE_TIMER_HZ / 1000000000ULL) / div;
}

static u64 oracle_period_ns(u64 count, u32 div)
{
	return count * div * 1000000000ULL / ORACLE_TIMER_HZ;
}

/* SDM: PPR[7:4] = max(TPR[7:4], ISRV[7:4]); PPR[3:0] = TPR[3:0] or 0 */
static u32 oracle_ppr(u32 tpr, int isrv)
{
	u32 isr_class = isrv < 0 ? 0 : ((u32)isrv >> 4);

	if ((tpr >> 4) >= isr_class)
		return tpr;
	return isr_class << 4;
}

static bool bit_in_regs(u32 base_msr, unsigned int v)
{
	return (rd(base_msr + v / 32) >> (v % 32)) & 1;
}

/* ---- tests ---- */

static void test_reset_state(void)
{
	int i;

	setup_id(0);
	EXPECT_EQ(trapvm_lapic_get_apic_base(&A),
		  0xfee00000ULL | (1 << 11) | (1 << 10) | (1 << 8));
	setup_id(0x23);
	EXPECT_EQ(trapvm_lapic_get_apic_base(&A),
		  0xfee00000ULL | (1 << 11) | (1 << 10));
	EXPECT_EQ(rd(0x802), 0x23);
	/* x2APIC LDR: cluster = id[31:4] in 31:16, 1 << id[3:0] in 15:0 */
	EXPECT_EQ(rd(0x80d), (2u << 16) | (1u << 3));
	EXPECT_EQ(rd(0x803) & 0xff, 0x14);
	/* seven LVT entries (CMCI included): max LVT entry = 6 */
	EXPECT_EQ((rd(0x803) >> 16) & 0xff, 6);
	EXPECT_EQ(rd(0x80f), 0xff);
	EXPECT_EQ(rd(0x808), 0);
	EXPECT_EQ(rd(0x80a), 0);
	for (i = 0; i < 8; i++) {
		EXPECT_EQ(rd(0x810 + i), 0);
		EXPECT_EQ(rd(0x818 + i), 0);
		EXPECT_EQ(rd(0x820 + i), 0);
	}
	EXPECT_EQ(rd(0x82f), 1 << 16);
	for (i = 0x832; i <= 0x837; i++)
		EXPECT_EQ(rd(i), 1 << 16);
	EXPECT_EQ(rd(0x838), 0);
	EXPECT_EQ(rd(0x839), 0);
	EXPECT_EQ(rd(0x83e), 0);
	EXPECT_EQ(rd(0x830), 0);
}

static void test_access_matrix(void)
{
	u32 msr;

	setup();
	for (msr = 0x800; msr <= 0x8ff; msr++) {
		const struct reg_access *r = map_find(msr);
		bool rgp = rd_gp(msr);

		EXPECT(rgp == !(r && r->read), "rdmsr %#x: gp=%d", msr, rgp);
		if (!r || !r->write) {
			/* read-only or absent: any write #GPs */
			EXPECT(wr_gp(msr, 0), "wrmsr %#x <- 0 should #GP", msr);
		}
	}
	/* the writable ones accept 0 (or their reset value) */
	EXPECT(!wr_gp(0x808, 0), "TPR");
	EXPECT(!wr_gp(0x80b, 0), "EOI");
	EXPECT(!wr_gp(0x80f, 0xff), "SVR");
	EXPECT(!wr_gp(0x828, 0), "ESR");
	EXPECT(!wr_gp(0x832, 1 << 16), "LVT timer");
	EXPECT(!wr_gp(0x838, 0), "initial count");
	EXPECT(!wr_gp(0x83e, 0), "DCR");
	EXPECT(!wr_gp(0x830, 0x0000000000040000ULL | 0x40), "ICR self");
	EXPECT(!wr_gp(0x83f, 0x40), "SELF IPI");
	/* MSRs outside the APIC are not ours */
	EXPECT(!trapvm_lapic_is_msr(0x7ff), "0x7ff");
	EXPECT(!trapvm_lapic_is_msr(0x900), "0x900");
	EXPECT(trapvm_lapic_is_msr(0x1b), "0x1b");
	EXPECT(trapvm_lapic_is_msr(0x6e0), "0x6e0");
}

static void test_reserved_bits(void)
{
	setup();
	sw_enable();
	/* every 32-bit register: bits 63:32 are reserved */
	EXPECT(wr_gp(0x808, 1ULL << 32), "TPR high");
	EXPECT(wr_gp(0x838, 1ULL << 32), "initial count high");
	EXPECT(wr_gp(0x832, 1ULL << 40), "LVT high");
	/* TPR bits 31:8 */
	wr(0x808, 0x20);
	EXPECT(wr_gp(0x808, 0x100), "TPR bit 8");
	EXPECT_EQ(rd(0x808), 0x20);	/* #GP changed nothing */
	/* EOI and ESR take only 0 */
	EXPECT(wr_gp(0x80b, 1), "EOI 1");
	EXPECT(wr_gp(0x828, 1), "ESR 1");
	/* SVR: bits 10, 11 and 12 (no EOI-broadcast suppression), 13+ */
	EXPECT(wr_gp(0x80f, 0x1ff | (1 << 10)), "SVR bit 10");
	EXPECT(wr_gp(0x80f, 0x1ff | (1 << 12)), "SVR bit 12");
	EXPECT(wr_gp(0x80f, 0x1ff | (1 << 20)), "SVR bit 20");
	EXPECT_EQ(rd(0x80f), 0x1ff);
	/* DCR: only bits 0, 1, 3 */
	EXPECT(wr_gp(0x83e, 1 << 2), "DCR bit 2");
	EXPECT(wr_gp(0x83e, 1 << 4), "DCR bit 4");
	/* LVT timer: no delivery mode, no polarity/trigger, mode 11b */
	EXPECT(wr_gp(0x832, 1 << 8), "LVT timer bit 8");
	EXPECT(wr_gp(0x832, 1 << 15), "LVT timer bit 15");
	EXPECT(wr_gp(0x832, 1 << 19), "LVT timer bit 19");
	EXPECT(wr_gp(0x832, 3 << 17), "LVT timer mode 11b");
	/* LVT error: vector and mask only */
	EXPECT(wr_gp(0x837, 1 << 8), "LVT error bit 8");
	EXPECT(wr_gp(0x837, 1 << 13), "LVT error bit 13");
	/* LINT0: everything up to bit 16, nothing above */
	EXPECT(!wr_gp(0x835, 0x1e7ff & ~(1u << 12) & ~(1u << 14)), "LINT0");
	EXPECT(wr_gp(0x835, 1 << 17), "LINT0 bit 17");
	/* delivery status and remote IRR are read-only, not reserved */
	wr(0x835, (1 << 12) | (1 << 14) | 0x30);
	EXPECT_EQ(rd(0x835), 0x30);
	/* thermal/perf/CMCI: no polarity/trigger bits */
	EXPECT(wr_gp(0x833, 1 << 13), "thermal bit 13");
	EXPECT(wr_gp(0x834, 1 << 15), "perf bit 15");
	EXPECT(wr_gp(0x82f, 1 << 17), "CMCI bit 17");
	/* ICR: bits 13, 16, 17, 20..31 reserved; bit 12 ignored */
	EXPECT(wr_gp(0x830, 1 << 13), "ICR bit 13");
	EXPECT(wr_gp(0x830, 1 << 16), "ICR bit 16");
	EXPECT(wr_gp(0x830, 1 << 17), "ICR bit 17");
	EXPECT(wr_gp(0x830, 1 << 20), "ICR bit 20");
	EXPECT(wr_gp(0x830, 1u << 31), "ICR bit 31");
	EXPECT(!wr_gp(0x830, (5ULL << 32) | (1 << 12) | 0x40), "ICR bit 12");
	/* SELF IPI: vector only */
	EXPECT(wr_gp(0x83f, 0x140), "SELF IPI bit 8");
	/* CR8: bits 63:4 */
	EXPECT_EQ(trapvm_lapic_set_cr8(&A, 0x10), TRAPVM_LAPIC_GP);
}

static void test_x2apic_off_gp(void)
{
	u32 msr;

	setup();
	/* xAPIC mode: EN=1, EXTD=0 needs x2APIC -> disabled -> xAPIC */
	EXPECT(!wr_gp(0x1b, 0xfee00000ULL | (1 << 8)), "disable");
	EXPECT(!wr_gp(0x1b, 0xfee00000ULL | (1 << 8) | (1 << 11)), "xAPIC");
	for (msr = 0x800; msr <= 0x8ff; msr++) {
		EXPECT(rd_gp(msr), "rdmsr %#x in xAPIC mode", msr);
		EXPECT(wr_gp(msr, 0), "wrmsr %#x in xAPIC mode", msr);
	}
}

/* SDM "x2APIC State Transitions" (EN, EXTD) */
static void test_apic_base_transitions(void)
{
	static const u64 st[4] = { 0, 1 << 10, 1 << 11, (1 << 11) | (1 << 10) };
	const u64 base = 0xfee00000ULL;
	int from, to;

	for (from = 0; from < 4; from++) {
		if (from == 1)
			continue;	/* the invalid state cannot be reached */
		for (to = 0; to < 4; to++) {
			bool legal;
			int r;

			/* the oracle */
			legal = to != 1 &&
				!(from == 3 && to == 2) &&	/* x2 -> xAPIC */
				!(from == 0 && to == 3);	/* off -> x2 */
			setup_id(1);
			/* reach "from" legally: x2APIC -> off -> xAPIC */
			if (from != 3)
				wr(0x1b, base);
			if (from == 2)
				wr(0x1b, base | st[2]);
			EXPECT_EQ(trapvm_lapic_get_apic_base(&A) & 0xc00,
				  st[from]);
			r = trapvm_lapic_wrmsr(&A, 0x1b, base | st[to]);
			EXPECT((r == 0) == legal, "%d -> %d: r=%d", from, to,
			       r);
			EXPECT_EQ(trapvm_lapic_get_apic_base(&A) & 0xc00,
				  legal ? st[to] : st[from]);
		}
	}

	/* reserved bits: 0..7, 9, MAXPHYADDR..63 */
	setup();
	EXPECT(wr_gp(0x1b, base | 0xd00 | 1), "bit 0");
	EXPECT(wr_gp(0x1b, base | 0xd00 | (1 << 9)), "bit 9");
	EXPECT(wr_gp(0x1b, base | 0xd00 | (1ULL << MAXPHYADDR)),
	       "bit MAXPHYADDR");
	EXPECT(!wr_gp(0x1b, (1ULL << (MAXPHYADDR - 1)) | 0xd00), "high base");
	/* host-initiated writes may skip the transition rules */
	EXPECT_EQ(trapvm_lapic_set_apic_base(&A, base, true), 0);
	EXPECT_EQ(trapvm_lapic_set_apic_base(&A, base | 0xc00, true), 0);
	EXPECT_EQ(trapvm_lapic_set_apic_base(&A, base | 0x400, true),
		  TRAPVM_LAPIC_GP);

	/* disabling loses the state: reset values after re-enabling */
	setup();
	sw_enable();
	wr(0x808, 0x30);
	trapvm_lapic_set_irq(&A, 0x40);
	wr(0x1b, base | (1 << 8));
	wr(0x1b, base | (1 << 8) | (1 << 11));
	wr(0x1b, base | (1 << 8) | (1 << 11) | (1 << 10));
	EXPECT_EQ(rd(0x808), 0);
	EXPECT_EQ(rd(0x80f), 0xff);
	EXPECT_EQ(rd(0x822), 0);
	EXPECT_EQ(trapvm_lapic_pending_irq(&A), -1);
}

static void test_priority_order(void)
{
	setup();
	sw_enable();
	trapvm_lapic_set_irq(&A, 0x31);
	trapvm_lapic_set_irq(&A, 0x52);
	trapvm_lapic_set_irq(&A, 0x45);
	EXPECT(bit_in_regs(0x820, 0x31) && bit_in_regs(0x820, 0x52) &&
	       bit_in_regs(0x820, 0x45), "IRR bits");
	EXPECT_EQ(trapvm_lapic_pending_irq(&A), 0x52);
	trapvm_lapic_ack_irq(&A, 0x52);
	EXPECT(!bit_in_regs(0x820, 0x52) && bit_in_regs(0x810, 0x52),
	       "IRR->ISR");
	EXPECT_EQ(rd(0x80a), 0x50);
	/* class 4 is not above the PPR class 5 */
	EXPECT_EQ(trapvm_lapic_pending_irq(&A), -1);
	EXPECT(!trapvm_lapic_has_work(&A), "has_work");
	/* same class as in service: still blocked */
	trapvm_lapic_set_irq(&A, 0x5f);
	EXPECT_EQ(trapvm_lapic_pending_irq(&A), -1);
	/* higher class nests */
	trapvm_lapic_set_irq(&A, 0x61);
	EXPECT_EQ(trapvm_lapic_pending_irq(&A), 0x61);
	trapvm_lapic_ack_irq(&A, 0x61);
	EXPECT_EQ(rd(0x80a), 0x60);
	/* EOI retires the highest in-service vector */
	wr(0x80b, 0);
	EXPECT(!bit_in_regs(0x810, 0x61) && bit_in_regs(0x810, 0x52), "EOI 1");
	EXPECT_EQ(rd(0x80a), 0x50);
	wr(0x80b, 0);
	EXPECT_EQ(rd(0x810 + 2), 0);
	EXPECT_EQ(rd(0x80a), 0);
	EXPECT_EQ(trapvm_lapic_pending_irq(&A), 0x5f);
	trapvm_lapic_ack_irq(&A, 0x5f);
	wr(0x80b, 0);
	EXPECT_EQ(trapvm_lapic_pending_irq(&A), 0x45);
	/* EOI with nothing in service is harmless */
	trapvm_lapic_ack_irq(&A, 0x45);
	wr(0x80b, 0);
	wr(0x80b, 0);
	EXPECT_EQ(trapvm_lapic_pending_irq(&A), 0x31);
	/* a pending vector is one IRR bit: a second one coalesces */
	EXPECT_EQ(trapvm_lapic_set_irq(&A, 0x31), TRAPVM_LAPIC_IRQ_COALESCED);
	trapvm_lapic_ack_irq(&A, 0x31);
	EXPECT_EQ(trapvm_lapic_pending_irq(&A), -1);
}

static void test_tpr_masking(void)
{
	setup();
	sw_enable();
	wr(0x808, 0x40);
	trapvm_lapic_set_irq(&A, 0x45);
	EXPECT_EQ(rd(0x80a), 0x40);
	EXPECT_EQ(trapvm_lapic_pending_irq(&A), -1);
	EXPECT(!trapvm_lapic_has_work(&A), "masked by TPR");
	wr(0x808, 0x3f);
	EXPECT_EQ(rd(0x80a), 0x3f);
	EXPECT_EQ(trapvm_lapic_pending_irq(&A), 0x45);
	/* CR8 is TPR[7:4] */
	EXPECT_EQ(trapvm_lapic_set_cr8(&A, 5), 0);
	EXPECT_EQ(rd(0x808), 0x50);
	EXPECT_EQ(trapvm_lapic_pending_irq(&A), -1);
	wr(0x808, 0x7c);
	EXPECT_EQ(trapvm_lapic_get_cr8(&A), 7);
	EXPECT_EQ(trapvm_lapic_set_cr8(&A, 0), 0);
	EXPECT_EQ(trapvm_lapic_pending_irq(&A), 0x45);
}

/* Random TPR/ISR/IRR contents against the oracle's PPR and acceptance. */
static void test_ppr_random(void)
{
	unsigned int seed = 12345;
	int round;

	for (round = 0; round < 2000; round++) {
		bool isr[256] = { false }, irr[256] = { false };
		int v, isrv = -1, irrv = -1, want;
		u32 tpr;

		setup();
		sw_enable();
		tpr = rand_r(&seed) & 0xff;
		wr(0x808, tpr);
		/* fill ISR through IRR -> ack, in priority order like a CPU */
		for (v = 16; v < 256; v++)
			if (rand_r(&seed) % 40 == 0)
				isr[v] = true;
		for (v = 16; v < 256; v++) {
			if (!isr[v])
				continue;
			trapvm_lapic_set_irq(&A, v);
			trapvm_lapic_ack_irq(&A, v);
			isrv = v;
		}
		for (v = 16; v < 256; v++)
			if (rand_r(&seed) % 30 == 0) {
				irr[v] = true;
				trapvm_lapic_set_irq(&A, v);
				irrv = v;	/* ascending: the highest so far */
			}
		EXPECT_EQ(rd(0x80a), oracle_ppr(tpr, isrv));
		want = -1;
		if (irrv >= 0 && (irrv >> 4) > (int)(oracle_ppr(tpr, isrv) >> 4))
			want = irrv;
		EXPECT(trapvm_lapic_pending_irq(&A) == want,
		       "round %d: tpr %#x isrv %#x irrv %#x: got %d want %d",
		       round, tpr, isrv, irrv, trapvm_lapic_pending_irq(&A),
		       want);
		for (v = 0; v < 256; v++) {
			EXPECT(bit_in_regs(0x810, v) == isr[v], "ISR %#x", v);
			EXPECT(bit_in_regs(0x820, v) == irr[v], "IRR %#x", v);
		}
		if (cur_failed)
			break;
	}
}

static void test_lvt_sw_disabled(void)
{
	int i;

	setup();
	/* software-disabled at reset: mask bits stick */
	wr(0x832, 0x20);
	EXPECT_EQ(rd(0x832), 0x10020);
	wr(0x835, 0x8700);
	EXPECT_EQ(rd(0x835), 0x18700);
	/* and no fixed interrupts are accepted */
	EXPECT_EQ(trapvm_lapic_set_irq(&A, 0x40), TRAPVM_LAPIC_IRQ_DISABLED);
	EXPECT_EQ(trapvm_lapic_pending_irq(&A), -1);
	/* enabling does not unmask; writing does */
	sw_enable();
	EXPECT_EQ(rd(0x832), 0x10020);
	for (i = 0x832; i <= 0x837; i++)
		wr(i, 0x40 + i - 0x832);
	wr(0x82f, 0x3f);
	for (i = 0x832; i <= 0x837; i++)
		EXPECT_EQ(rd(i), 0x40 + i - 0x832);
	EXPECT_EQ(rd(0x82f), 0x3f);
	/* disabling masks every LVT entry */
	wr(0x80f, 0xff);
	for (i = 0x832; i <= 0x837; i++)
		EXPECT_EQ(rd(i), (1 << 16) | (0x40 + i - 0x832));
	EXPECT_EQ(rd(0x82f), (1 << 16) | 0x3f);
}

static void test_esr(void)
{
	setup();
	sw_enable();
	/* errors latch until the next ESR write makes them visible */
	wr(0x83f, 5);			/* self-IPI with an illegal vector */
	EXPECT_EQ(rd(0x828), 0);
	wr(0x828, 0);
	EXPECT_EQ(rd(0x828), 1 << 5);	/* send illegal vector */
	wr(0x828, 0);
	EXPECT_EQ(rd(0x828), 0);
	/* a received illegal vector never reaches IRR */
	EXPECT_EQ(trapvm_lapic_set_irq(&A, 3), TRAPVM_LAPIC_IRQ_ILLEGAL);
	EXPECT_EQ(rd(0x820), 0);
	wr(0x828, 0);
	EXPECT_EQ(rd(0x828), 1 << 6);
	/* an unmasked LVT error entry raises its vector */
	wr(0x837, 0xee);
	wr(0x830, (1 << 18) | 7);	/* ICR self, vector 7: illegal */
	EXPECT(bit_in_regs(0x820, 0xee), "error interrupt");
	EXPECT_EQ(trapvm_lapic_pending_irq(&A), 0xee);
	EXPECT(!bit_in_regs(0x820, 7), "no IRR bit 7");
}

static void test_self_ipi(void)
{
	setup_id(0x13);
	sw_enable();
	wr(0x83f, 0x40);
	EXPECT(bit_in_regs(0x820, 0x40), "SELF IPI");
	/* ICR, fixed, shorthand self */
	wr(0x830, (1 << 18) | 0x41);
	EXPECT(bit_in_regs(0x820, 0x41), "ICR self");
	/* all including self */
	wr(0x830, (2 << 18) | 0x42);
	EXPECT(bit_in_regs(0x820, 0x42), "ICR all");
	/* all excluding self: not us (no other vCPU here) */
	wr(0x830, (3 << 18) | 0x43);
	EXPECT(!bit_in_regs(0x820, 0x43), "ICR others");
	/* physical destination = our x2APIC ID */
	wr(0x830, (0x13ULL << 32) | 0x44);
	EXPECT(bit_in_regs(0x820, 0x44), "ICR physical self");
	wr(0x830, (0x14ULL << 32) | 0x45);
	EXPECT(!bit_in_regs(0x820, 0x45), "ICR physical other");
	/* broadcast FFFF_FFFFH in physical and logical mode */
	wr(0x830, (0xffffffffULL << 32) | 0x46);
	EXPECT(bit_in_regs(0x820, 0x46), "ICR broadcast");
	wr(0x830, (0xffffffffULL << 32) | (1 << 11) | 0x47);
	EXPECT(bit_in_regs(0x820, 0x47), "ICR logical broadcast");
	/* logical: cluster 1, bit 3 is ID 0x13 */
	wr(0x830, (((1ULL << 16) | 0x8) << 32) | (1 << 11) | 0x48);
	EXPECT(bit_in_regs(0x820, 0x48), "ICR logical self");
	wr(0x830, (((0ULL << 16) | 0x8) << 32) | (1 << 11) | 0x49);
	EXPECT(!bit_in_regs(0x820, 0x49), "ICR logical other cluster");
	wr(0x830, (((1ULL << 16) | 0x4) << 32) | (1 << 11) | 0x4a);
	EXPECT(!bit_in_regs(0x820, 0x4a), "ICR logical other bit");
	/* NMI delivery mode is not a fixed vector */
	wr(0x830, (1 << 18) | (4 << 8) | 0x4b);
	EXPECT(!bit_in_regs(0x820, 0x4b), "ICR NMI");
	/* lowest priority (001) is reserved in x2APIC mode: nothing sent */
	wr(0x830, (1 << 18) | (1 << 8) | 0x4d);
	EXPECT(!bit_in_regs(0x820, 0x4d), "ICR lowest priority");
	/* the ICR reads back (bit 12 ignored on write) */
	wr(0x830, (0x77ULL << 32) | (1 << 12) | (1 << 14) | 0x4c);
	EXPECT_EQ(rd(0x830) & ~(1ULL << 12), (0x77ULL << 32) | (1 << 14) | 0x4c);
	EXPECT_EQ(trapvm_lapic_pending_irq(&A), 0x48);
}

/* program the timer: LVT, DCR, initial count */
static void timer_setup(u32 lvt, u32 dcr, u32 count)
{
	sw_enable();
	wr(0x832, lvt);
	wr(0x83e, dcr);
	wr(0x838, count);
}

static void test_timer_oneshot_all_divides(void)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(dcr_table); i++) {
		const u32 n = 1000003, div = dcr_table[i].div;
		u64 start, period = oracle_period_ns(n, div);
		static const u64 probes[] = { 0, 1, 7, 999, 123456, 1000002 };
		size_t j;

		setup();
		start = fk.ns;
		timer_setup(0xec, dcr_table[i].dcr, n);
		EXPECT_EQ(rd(0x83e), dcr_table[i].dcr);
		EXPECT(fk.armed && fk.expire == start + period,
		       "div %u: armed %d at %llu, want %llu", div, fk.armed,
		       (unsigned long long)fk.expire,
		       (unsigned long long)(start + period));
		for (j = 0; j < ARRAY_SIZE(probes); j++) {
			u64 el = probes[j] * div + (j & 1);

			fk.ns = start + el;
			EXPECT_EQ(rd(0x839), n - oracle_ticks(el, div));
		}
		/* not yet: a stale expiry does nothing */
		fk.ns = start + period - 1;
		EXPECT(!trapvm_lapic_timer_expired(&A, fk.ns), "early");
		EXPECT_EQ(rd(0x839), 1);
		EXPECT(!bit_in_regs(0x820, 0xec), "early IRR");
		fk.ns = start + period;
		EXPECT_EQ(rd(0x839), 0);
		EXPECT(trapvm_lapic_timer_expired(&A, fk.ns), "expire");
		EXPECT(bit_in_regs(0x820, 0xec), "timer IRR");
		EXPECT_EQ(rd(0x838), n);	/* initial count stays */
		fk.ns += 10 * period;
		EXPECT_EQ(rd(0x839), 0);
		EXPECT(!trapvm_lapic_timer_expired(&A, fk.ns), "one shot");
	}
}

static void test_timer_periodic(void)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(dcr_table); i++) {
		const u32 div = dcr_table[i].div;
		const u32 n = 250000 / div + 17;	/* >= 100 us period */
		u64 start, period = oracle_period_ns(n, div), el;
		u64 next;
		int k;

		setup();
		start = fk.ns;
		timer_setup((1 << 17) | 0xd0, dcr_table[i].dcr, n);
		EXPECT_EQ(fk.expire, start + period);
		/* SDM: counts down to 0, then reloads from the initial count */
		for (el = 0; el < 5 * period; el += period / 3 + 1) {
			fk.ns = start + el;
			EXPECT_EQ(rd(0x839),
				  n - oracle_ticks(el, div) % n);
		}
		/* expiries at start + k * period, one IRR bit each time */
		for (k = 1; k <= 3; k++) {
			fk.ns = start + k * period;
			EXPECT(trapvm_lapic_timer_expired(&A, fk.ns), "k=%d", k);
			EXPECT_EQ(trapvm_lapic_pending_irq(&A), 0xd0);
			trapvm_lapic_ack_irq(&A, 0xd0);
			wr(0x80b, 0);
			EXPECT(trapvm_lapic_timer_next(&A, &next) &&
			       next == start + (k + 1) * period, "k=%d next", k);
			EXPECT_EQ(fk.expire, start + (k + 1) * period);
		}
		/* a late host timer: missed periods coalesce, phase kept */
		fk.ns = start + 6 * period + period / 2;
		EXPECT(trapvm_lapic_timer_expired(&A, fk.ns), "late");
		EXPECT_EQ(fk.expire, start + 7 * period);
		EXPECT_EQ(A.stats.timer_fired, 4);
		EXPECT_EQ(trapvm_lapic_pending_irq(&A), 0xd0);
	}
}

static void test_timer_masked_and_stop(void)
{
	const u32 n = 5000;

	setup();
	timer_setup((1 << 16) | 0xd1, 0xb, n);
	fk.ns += n;
	EXPECT(trapvm_lapic_timer_expired(&A, fk.ns), "expired");
	EXPECT_EQ(trapvm_lapic_pending_irq(&A), -1);
	EXPECT(!bit_in_regs(0x820, 0xd1), "masked");
	EXPECT_EQ(A.stats.timer_masked, 1);

	/* writing 0 to the initial count stops the timer */
	setup();
	timer_setup(0xd1, 0xb, n);
	fk.ns += n / 2;
	wr(0x838, 0);
	EXPECT(!fk.armed, "stopped");
	EXPECT_EQ(rd(0x839), 0);
	fk.ns += n;
	EXPECT(!trapvm_lapic_timer_expired(&A, fk.ns), "no expiry");

	/* changing the timer mode disarms it */
	setup();
	timer_setup(0xd1, 0xb, n);
	wr(0x832, (1 << 17) | 0xd1);
	EXPECT(!fk.armed, "mode change disarms");
	EXPECT_EQ(rd(0x838), 0);
	EXPECT_EQ(rd(0x839), 0);
	/* rewriting the same mode does not */
	wr(0x838, n);
	wr(0x832, (1 << 17) | (1 << 16) | 0xd1);
	EXPECT(fk.armed, "same mode keeps the timer");
	EXPECT_EQ(rd(0x838), n);

	/* a divide change mid-count keeps the count reached (our choice) */
	setup();
	timer_setup(0xd1, 0xb, n);	/* /1 */
	fk.ns += 1000;
	wr(0x83e, 0x0);			/* /2 */
	fk.ns += 1000;
	EXPECT_EQ(rd(0x839), n - 1000 - 500);
	EXPECT_EQ(fk.expire, fk.ns - 1000 + (u64)(n - 1000) * 2);
}

/* ceil((deadline - tsc) * 10^6 / tsc_khz) ns from now */
static u64 oracle_deadline_ns(u64 deadline, u64 tsc)
{
	unsigned __int128 d = deadline - tsc;

	return (u64)((d * 1000000 + TSC_KHZ - 1) / TSC_KHZ);
}

static void test_timer_tsc_deadline(void)
{
	u64 d, now;

	setup();
	sw_enable();
	/* outside TSC-deadline mode: reads 0, writes ignored */
	wr(0x832, 0xe0);
	wr(0x6e0, fk.tsc + 1000);
	EXPECT_EQ(rd(0x6e0), 0);
	EXPECT(!fk.armed, "ignored in one-shot mode");

	wr(0x832, (2 << 17) | 0xe0);
	/* initial count is ignored, current count reads 0 */
	wr(0x838, 1234);
	EXPECT_EQ(rd(0x838), 0);
	EXPECT_EQ(rd(0x839), 0);
	EXPECT(!fk.armed, "initial count ignored");

	d = fk.tsc + 2500001;		/* 1000000.4 ns ahead */
	now = fk.ns;
	wr(0x6e0, d);
	EXPECT_EQ(rd(0x6e0), d);
	EXPECT(fk.armed, "armed");
	EXPECT_EQ(fk.expire, now + oracle_deadline_ns(d, fk.tsc));
	EXPECT_EQ(fk.expire, now + 1000001);
	fk.ns = fk.expire - 1;
	EXPECT(!trapvm_lapic_timer_expired(&A, fk.ns), "early");
	fk.ns++;
	EXPECT(trapvm_lapic_timer_expired(&A, fk.ns), "fires");
	EXPECT_EQ(trapvm_lapic_pending_irq(&A), 0xe0);
	EXPECT_EQ(rd(0x6e0), 0);	/* cleared on expiry */
	EXPECT(!trapvm_lapic_timer_expired(&A, fk.ns + 1000000), "once");
	trapvm_lapic_ack_irq(&A, 0xe0);
	wr(0x80b, 0);

	/* writing 0 disarms */
	wr(0x6e0, fk.tsc + 100000);
	EXPECT(fk.armed, "re-armed");
	wr(0x6e0, 0);
	EXPECT(!fk.armed, "disarmed");
	EXPECT(!trapvm_lapic_timer_expired(&A, fk.ns + 10000000), "none");

	/* a deadline in the past fires at once */
	wr(0x6e0, fk.tsc - 5);
	EXPECT_EQ(fk.expire, fk.ns);
	EXPECT(trapvm_lapic_timer_expired(&A, fk.ns), "past");
	EXPECT_EQ(trapvm_lapic_pending_irq(&A), 0xe0);

	/* leaving TSC-deadline mode disarms */
	wr(0x6e0, fk.tsc + 100000);
	wr(0x832, 0xe0);
	EXPECT(!fk.armed, "mode change disarms");
	wr(0x832, (2 << 17) | 0xe0);
	EXPECT_EQ(rd(0x6e0), 0);
	EXPECT(!trapvm_lapic_timer_expired(&A, fk.ns + 10000000), "gone");

	/* a far-away deadline neither overflows nor fires */
	wr(0x6e0, ~0ULL);
	EXPECT(fk.armed && fk.expire > fk.ns + 1000000000ULL * 3600,
	       "far deadline");
}

static void test_disabled_apic(void)
{
	setup();
	sw_enable();
	trapvm_lapic_set_irq(&A, 0x80);
	EXPECT_EQ(trapvm_lapic_pending_irq(&A), 0x80);
	/* globally disabled: nothing pending, nothing accepted */
	wr(0x1b, 0xfee00000ULL | (1 << 8));
	EXPECT_EQ(trapvm_lapic_pending_irq(&A), -1);
	EXPECT_EQ(trapvm_lapic_set_irq(&A, 0x81), TRAPVM_LAPIC_IRQ_DISABLED);
	EXPECT_EQ(trapvm_lapic_set_irq(&A, 256), TRAPVM_LAPIC_IRQ_ILLEGAL);
}

/* xAPIC MMIO, after the SDM's "Local APIC Register Address Map" */
static u32 mr(u32 off)
{
	u32 v = 0xdeadbeef;

	trapvm_lapic_mmio_read(&A, off, 4, &v);
	return v;
}

static void mw(u32 off, u32 v)
{
	trapvm_lapic_mmio_write(&A, off, 4, v);
}

static void to_xapic(void)
{
	wr(0x1b, 0xfee00000ULL);			/* disable */
	wr(0x1b, 0xfee00000ULL | (1 << 11));		/* xAPIC */
}

static void test_xapic_mmio(void)
{
	u32 v;

	setup_id(0x13);
	EXPECT(!trapvm_lapic_mmio_claims(&A, 0xfee00000ULL), "x2APIC: no MMIO");
	to_xapic();
	EXPECT(trapvm_lapic_mmio_claims(&A, 0xfee00000ULL), "page start");
	EXPECT(trapvm_lapic_mmio_claims(&A, 0xfee00ff0ULL), "page end");
	EXPECT(!trapvm_lapic_mmio_claims(&A, 0xfee01000ULL), "next page");
	EXPECT(!trapvm_lapic_mmio_claims(&A, 0xfedff000ULL), "page before");

	/* reset values; the xAPIC ID is in bits 31:24 */
	EXPECT_EQ(mr(0x020), 0x13u << 24);
	EXPECT_EQ(mr(0x030) & 0xff00ff, 0x060014);
	EXPECT_EQ(mr(0x0d0), 0);
	EXPECT_EQ(mr(0x0e0), 0xffffffff);
	EXPECT_EQ(mr(0x0f0), 0xff);
	EXPECT_EQ(mr(0x320), 1 << 16);

	/* reserved bits are ignored, not faulted */
	mw(0x0f0, 0x1ff | (1 << 12) | (1 << 20));
	EXPECT_EQ(mr(0x0f0), 0x1ff);
	mw(0x080, 0x1234);
	EXPECT_EQ(mr(0x080), 0x34);
	EXPECT_EQ(mr(0x0a0), 0x34);
	mw(0x080, 0);
	/* read-only registers ignore writes */
	mw(0x020, 0x55000000);
	EXPECT_EQ(mr(0x020), 0x13u << 24);

	/* ICR: the high half holds the destination, the low half sends */
	mw(0x300, (1 << 18) | 0x41);			/* self */
	mw(0x310, 0x13u << 24);
	mw(0x300, 0x44);				/* physical 0x13 */
	mw(0x310, 0x14u << 24);
	mw(0x300, 0x45);				/* physical 0x14 */
	EXPECT_EQ(mr(0x310), 0x14u << 24);
	EXPECT_EQ(mr(0x300), 0x45);
	mw(0x310, 0xffu << 24);
	mw(0x300, 0x46);				/* broadcast */
	/* logical, flat model: our LDR bit is 2 */
	mw(0x0d0, 0x04000000 | 0xabcd);
	EXPECT_EQ(mr(0x0d0), 0x04000000);
	mw(0x310, 0x06u << 24);
	mw(0x300, (1 << 11) | 0x47);
	mw(0x310, 0x08u << 24);
	mw(0x300, (1 << 11) | 0x48);
	/* logical, cluster model: cluster 2, member bit 0 */
	mw(0x0e0, 0);
	EXPECT_EQ(mr(0x0e0), 0x0fffffff);
	mw(0x0d0, 0x21000000);
	mw(0x310, 0x23u << 24);
	mw(0x300, (1 << 11) | 0x49);
	mw(0x310, 0x11u << 24);
	mw(0x300, (1 << 11) | 0x4a);
	/* lowest priority exists in xAPIC mode: to us alone, it is fixed */
	mw(0x300, (1 << 18) | (1 << 8) | 0x4b);
	v = mr(0x220);				/* IRR bits 0x40..0x5f */
	EXPECT_EQ(v, (1u << 1) | (1u << 4) | (1u << 6) | (1u << 7) |
		     (1u << 9) | (1u << 0xb));

	/* EOI takes any value */
	trapvm_lapic_ack_irq(&A, 0x4b);
	EXPECT_EQ(mr(0x120), 1u << 0xb);	/* ISR */
	mw(0x0b0, 0x1234);
	EXPECT_EQ(mr(0x120), 0);

	/* reserved registers: ESR "illegal register address", no fault */
	mw(0x280, 0);
	EXPECT_EQ(mr(0x000), 0);
	mw(0x3f0, 0x50);			/* SELF IPI is x2APIC only */
	EXPECT_EQ(mr(0x220) & (1u << 0x10), 0);
	mw(0x280, 0x77);
	EXPECT_EQ(mr(0x280), 1 << 7);

	/* misaligned or non-dword accesses do nothing */
	trapvm_lapic_mmio_read(&A, 0x084, 4, &v);
	EXPECT_EQ(v, 0);
	trapvm_lapic_mmio_write(&A, 0x080, 2, 0x70);
	EXPECT_EQ(mr(0x080), 0);

	/* the timer through MMIO */
	mw(0x320, 0xec);
	mw(0x3e0, 0x3 | (1 << 2));		/* /16, bit 2 ignored */
	EXPECT_EQ(mr(0x3e0), 0x3);
	mw(0x380, 1000);
	fk.ns += 16 * 10;
	EXPECT_EQ(mr(0x390), 990);
	EXPECT_EQ(fk.expire, fk.ns - 160 + 16000);
	/* a reserved timer mode leaves the entry alone */
	mw(0x320, (3 << 17) | 0xed);
	EXPECT_EQ(mr(0x320), 0xec);

	/* a disabled APIC has no registers */
	wr(0x1b, 0xfee00000ULL);
	EXPECT(!trapvm_lapic_mmio_claims(&A, 0xfee00000ULL), "disabled");
	EXPECT_EQ(mr(0x0f0), 0);
}

/*
 * Random MSR traffic (with time passing and timer expiries) must keep the
 * architectural invariants: no IRR/ISR bit below 16, PPR by the SDM rule
 * from what ISR and TPR read back, every LVT masked while the APIC is
 * software-disabled, pending vectors above the PPR class.
 */
static void test_random_traffic(void)
{
	static const u32 hot[] = { 0x808, 0x80b, 0x80f, 0x828, 0x82f, 0x830,
				   0x832, 0x835, 0x837, 0x838, 0x839, 0x83e,
				   0x83f, 0x6e0, 0x1b };
	unsigned int seed = 4242;
	int i, j;

	setup();
	for (i = 0; i < 200000 && !cur_failed; i++) {
		u32 msr = hot[rand_r(&seed) % ARRAY_SIZE(hot)];
		u64 val = ((u64)rand_r(&seed) << 33) ^ rand_r(&seed);
		int isrv = -1, pend;
		u32 tpr;
		u64 v;

		if (rand_r(&seed) % 4 == 0)
			msr = 0x800 + rand_r(&seed) % 256;

		switch (rand_r(&seed) % 8) {
		case 0:
			val &= 0xff;
			break;
		case 1:
			val &= 0xffffffffULL;
			break;
		case 2:
			val &= 0x601ff;
			break;
		case 3:
			val = 0;
			break;
		}
		if (msr == 0x1b && rand_r(&seed) % 4)
			val = (val & 0xc00) | 0xfee00000ULL;
		if (rand_r(&seed) % 2)
			trapvm_lapic_wrmsr(&A, msr, val);
		else
			trapvm_lapic_rdmsr(&A, msr, &v);
		if (rand_r(&seed) % 5 == 0)
			trapvm_lapic_set_irq(&A, rand_r(&seed) % 300);
		if (rand_r(&seed) % 6 == 0) {
			u32 off = rand_r(&seed) % 0x1100, mv;

			if (rand_r(&seed) % 2)
				off &= ~0xfu;
			if (rand_r(&seed) % 2)
				trapvm_lapic_mmio_write(&A, off, 4, (u32)val);
			else
				trapvm_lapic_mmio_read(&A, off, 4, &mv);
		}
		fk.ns += rand_r(&seed) % 50000;
		fk.tsc += rand_r(&seed) % 100000;
		if (fk.armed && fk.ns >= fk.expire)
			trapvm_lapic_timer_expired(&A, fk.ns);
		pend = trapvm_lapic_pending_irq(&A);
		if (pend >= 0 && rand_r(&seed) % 2) {
			trapvm_lapic_ack_irq(&A, pend);
			pend = trapvm_lapic_pending_irq(&A);
		}

		/* invariants, read through the model's state */
		EXPECT(!(A.irr[0] & 0xffff) && !(A.isr[0] & 0xffff),
		       "op %d: IRR/ISR bit below 16", i);
		for (j = 255; j >= 0; j--)
			if (A.isr[j / 32] & (1u << (j % 32))) {
				isrv = j;
				break;
			}
		tpr = A.tpr;
		EXPECT_EQ(trapvm_lapic_get_ppr(&A), oracle_ppr(tpr, isrv));
		if (pend >= 0)
			EXPECT((u32)(pend >> 4) > (oracle_ppr(tpr, isrv) >> 4),
			       "op %d: pending %#x under PPR", i, pend);
		if (!(A.svr & 0x100))
			for (j = 0; j < TRAPVM_LVT_NR; j++)
				EXPECT(A.lvt[j] & (1u << 16), "op %d: LVT %d",
				       i, j);
	}
}

/* ---- IPIs between several APICs ---- */

/*
 * A small machine: NODES APICs with chosen IDs, whose send_ipi op
 * delivers the way the kernel glue does (every matching APIC in order,
 * the first one only for lowest priority; fixed into IRR, NMIs counted).
 */
#define NODES	8

struct node {
	struct fake f;			/* first: the fake_* ops cast ctx */
	int idx;
	struct trapvm_lapic a;
	int nmis;
};

static struct node nodes[NODES];
static int nnodes;

static unsigned int node_send_ipi(void *ctx, const struct trapvm_lapic_ipi *ipi)
{
	unsigned int n = 0;
	int i;

	for (i = 0; i < nnodes; i++) {
		if (!trapvm_lapic_ipi_match(ipi,
					    trapvm_lapic_dest_key(&nodes[i].a)))
			continue;
		n++;
		if (ipi->mode == TRAPVM_LAPIC_IPI_NMI)
			nodes[i].nmis++;
		else
			trapvm_lapic_deliver_ipi(&nodes[i].a, ipi);
		if (ipi->mode == TRAPVM_LAPIC_IPI_LOWEST)
			break;
	}
	return n;
}

static const struct trapvm_lapic_ops node_ops = {
	.now_ns = fake_now,
	.read_tsc = fake_tsc,
	.arm_timer = fake_arm,
	.cancel_timer = fake_cancel,
	.send_ipi = node_send_ipi,
};

static void nodes_setup(const u32 *ids, int n, bool xapic)
{
	int i;

	memset(nodes, 0, sizeof(nodes));
	nnodes = n;
	for (i = 0; i < n; i++) {
		struct trapvm_lapic *a = &nodes[i].a;

		nodes[i].idx = i;
		nodes[i].f.ns = 1000000000ULL;
		trapvm_lapic_init(a, ids[i], MAXPHYADDR, TSC_KHZ, &node_ops,
				  &nodes[i]);
		if (xapic) {
			trapvm_lapic_set_apic_base(a, 0xfee00000ULL, false);
			trapvm_lapic_set_apic_base(a, 0xfee00000ULL | (1 << 11),
						   false);
			trapvm_lapic_mmio_write(a, 0xf0, 4, 0x1ff);
		} else {
			trapvm_lapic_wrmsr(a, 0x80f, 0x1ff);
		}
	}
}

/* Which nodes have vector v in IRR, as a bit mask (cleared after). */
static u32 irr_mask(unsigned int v)
{
	u32 m = 0;
	int i;

	for (i = 0; i < nnodes; i++) {
		struct trapvm_lapic *a = &nodes[i].a;

		if (a->irr[v >> 5] & (1u << (v & 31)))
			m |= 1u << i;
		a->irr[v >> 5] &= ~(1u << (v & 31));
	}
	return m;
}

static void x2_send(int from, u64 icr)
{
	int r = trapvm_lapic_wrmsr(&nodes[from].a, 0x830, icr);

	if (r)
		fail(__FILE__, __LINE__, "ICR %#llx: #GP",
		     (unsigned long long)icr);
}

static void test_ipi_x2apic_dest(void)
{
	/* x2APIC IDs; logical ID = cluster ID >> 4, bit 1 << (ID & 15) */
	static const u32 ids[NODES] = { 0, 1, 2, 3, 0x10, 0x11, 0x1f, 0x20 };
	static const struct {
		u64 icr;
		u32 want;	/* nodes (indexes) that must get it */
		const char *what;
	} t[] = {
		{ (2ULL << 32) | 0x50, 0x04, "physical 2" },
		{ (0x11ULL << 32) | 0x50, 0x20, "physical 0x11" },
		{ (0x12ULL << 32) | 0x50, 0x00, "physical, no such ID" },
		{ (0xffffffffULL << 32) | 0x50, 0xff, "physical broadcast" },
		{ (0xffULL << 32) | 0x50, 0x00, "0xff is no x2APIC broadcast" },
		{ (0x0000000bULL << 32) | (1 << 11) | 0x50, 0x0b,
		  "logical cluster 0 bits 0,1,3" },
		{ (0x00018003ULL << 32) | (1 << 11) | 0x50, 0x70,
		  "logical cluster 1 bits 0,1,15" },
		{ (0x00020001ULL << 32) | (1 << 11) | 0x50, 0x80,
		  "logical cluster 2 bit 0" },
		{ (0x00030001ULL << 32) | (1 << 11) | 0x50, 0x00,
		  "logical, empty cluster" },
		{ (0xffffffffULL << 32) | (1 << 11) | 0x50, 0xff,
		  "logical broadcast" },
		/* shorthands ignore the destination field */
		{ (5ULL << 32) | (1 << 18) | 0x50, 0x10, "self" },
		{ (5ULL << 32) | (2 << 18) | 0x50, 0xff, "all incl. self" },
		{ (5ULL << 32) | (3 << 18) | 0x50, 0xef, "all excl. self" },
	};
	size_t i;

	for (i = 0; i < ARRAY_SIZE(t); i++) {
		nodes_setup(ids, NODES, false);
		x2_send(4, t[i].icr);		/* from ID 0x10 */
		EXPECT(irr_mask(0x50) == t[i].want, "%s: got %#x want %#x",
		       t[i].what, irr_mask(0x50), t[i].want);
		EXPECT_EQ(nodes[4].a.stats.ipis_sent,
			  __builtin_popcount(t[i].want));
		EXPECT_EQ(nodes[4].a.stats.ipis_dropped, !t[i].want);
	}
}

static void test_ipi_xapic_dest(void)
{
	static const u32 ids[NODES] = { 0, 1, 2, 3, 4, 5, 6, 7 };
	int i;

	/* flat model: LDR = one bit each; the destination is a mask */
	nodes_setup(ids, NODES, true);
	for (i = 0; i < NODES; i++)
		trapvm_lapic_mmio_write(&nodes[i].a, 0xd0, 4, 1u << (24 + i));
	trapvm_lapic_mmio_write(&nodes[0].a, 0x310, 4, 0x05u << 24);
	trapvm_lapic_mmio_write(&nodes[0].a, 0x300, 4, (1 << 11) | 0x51);
	EXPECT_EQ(irr_mask(0x51), 0x05);
	/* physical 6, then the 8-bit broadcast */
	trapvm_lapic_mmio_write(&nodes[0].a, 0x310, 4, 6u << 24);
	trapvm_lapic_mmio_write(&nodes[0].a, 0x300, 4, 0x52);
	EXPECT_EQ(irr_mask(0x52), 0x40);
	trapvm_lapic_mmio_write(&nodes[0].a, 0x310, 4, 0xffu << 24);
	trapvm_lapic_mmio_write(&nodes[0].a, 0x300, 4, 0x53);
	EXPECT_EQ(irr_mask(0x53), 0xff);
	/* bits 55:32 of the ICR are not part of an xAPIC destination */
	trapvm_lapic_mmio_write(&nodes[0].a, 0x310, 4, 0x00ffffffu);
	trapvm_lapic_mmio_write(&nodes[0].a, 0x300, 4, 0x54);
	EXPECT_EQ(irr_mask(0x54), 0x01);

	/* cluster model: cluster in LDR[31:28], bits in LDR[27:24] */
	nodes_setup(ids, NODES, true);
	for (i = 0; i < NODES; i++) {
		trapvm_lapic_mmio_write(&nodes[i].a, 0xe0, 4, 0x0fffffff);
		trapvm_lapic_mmio_write(&nodes[i].a, 0xd0, 4,
					((i / 4) << 28) | (1u << (24 + i % 4)));
	}
	trapvm_lapic_mmio_write(&nodes[0].a, 0x310, 4, 0x13u << 24);
	trapvm_lapic_mmio_write(&nodes[0].a, 0x300, 4, (1 << 11) | 0x55);
	EXPECT_EQ(irr_mask(0x55), 0x30);	/* cluster 1: IDs 4, 5 */
	trapvm_lapic_mmio_write(&nodes[0].a, 0x310, 4, 0x0cu << 24);
	trapvm_lapic_mmio_write(&nodes[0].a, 0x300, 4, (1 << 11) | 0x56);
	EXPECT_EQ(irr_mask(0x56), 0x0c);	/* cluster 0: IDs 2, 3 */

	/* lowest priority: exactly one of the destinations */
	trapvm_lapic_mmio_write(&nodes[0].a, 0x310, 4, 0x1fu << 24);
	trapvm_lapic_mmio_write(&nodes[0].a, 0x300, 4,
				(1 << 11) | (1 << 8) | 0x57);
	i = irr_mask(0x57);
	EXPECT(i && !(i & (i - 1)) && (i & 0xf0), "lowest: %#x", i);
}

static void test_ipi_modes(void)
{
	static const u32 ids[4] = { 0, 1, 2, 3 };
	u64 esr;

	nodes_setup(ids, 4, false);
	/* NMI: the vector field is ignored, nothing in IRR */
	x2_send(0, (2ULL << 32) | (4 << 8) | 0x03);
	EXPECT_EQ(nodes[2].nmis, 1);
	EXPECT_EQ(irr_mask(0x03), 0);
	x2_send(0, (3 << 18) | (4 << 8));
	EXPECT(nodes[0].nmis == 0 && nodes[1].nmis == 1 &&
	       nodes[2].nmis == 2 && nodes[3].nmis == 1, "NMI others");
	/* INIT, SIPI, SMI: not modelled, counted, nothing delivered */
	x2_send(0, (1ULL << 32) | (5 << 8) | (1 << 14));
	x2_send(0, (1ULL << 32) | (6 << 8) | 0x10);
	x2_send(0, (1ULL << 32) | (2 << 8));
	EXPECT_EQ(nodes[0].a.stats.ipis_unsupported, 3);
	EXPECT_EQ(irr_mask(0x10), 0);
	EXPECT_EQ(nodes[1].nmis, 1);
	/* lowest priority is reserved in x2APIC mode */
	x2_send(0, (1ULL << 32) | (1 << 8) | 0x60);
	EXPECT_EQ(irr_mask(0x60), 0);
	EXPECT_EQ(nodes[0].a.stats.ipis_unsupported, 4);
	/* an illegal vector is not sent: ESR bit 5 at the sender only */
	x2_send(0, (1ULL << 32) | 0x0f);
	EXPECT_EQ(irr_mask(0x0f), 0);
	trapvm_lapic_wrmsr(&nodes[0].a, 0x828, 0);
	trapvm_lapic_rdmsr(&nodes[0].a, 0x828, &esr);
	EXPECT_EQ(esr, 1 << 5);
	trapvm_lapic_wrmsr(&nodes[1].a, 0x828, 0);
	trapvm_lapic_rdmsr(&nodes[1].a, 0x828, &esr);
	EXPECT_EQ(esr, 0);
	/* a software-disabled destination drops fixed IPIs */
	trapvm_lapic_wrmsr(&nodes[3].a, 0x80f, 0xff);
	x2_send(0, (3 << 18) | 0x61);
	EXPECT_EQ(irr_mask(0x61), 0x06);
	EXPECT_EQ(nodes[3].a.stats.irqs_dropped, 1);
	/* a globally disabled one is no destination at all */
	trapvm_lapic_set_apic_base(&nodes[2].a, 0xfee00000ULL, false);
	x2_send(0, (2ULL << 32) | 0x62);
	EXPECT_EQ(irr_mask(0x62), 0);
	EXPECT_EQ(nodes[0].a.stats.ipis_dropped, 1);
	/* received IPIs are counted at the destination */
	EXPECT_EQ(nodes[1].a.stats.ipis_received, 1);
	/* level-triggered fixed IPIs are taken as edge (TMR clear) */
	x2_send(0, (1ULL << 32) | (1 << 15) | (1 << 14) | 0x63);
	EXPECT_EQ(irr_mask(0x63), 0x02);
	EXPECT_EQ(nodes[1].a.tmr[0x63 >> 5] & (1u << (0x63 & 31)), 0);
}

/*
 * The periodic timer on a late host: every reload the SDM's counter
 * makes (one per period since the start) either set the timer vector's
 * IRR bit or is counted in timer_coalesced, and the
 * backing timer is only ever armed on the period grid.
 */
static void test_timer_periodic_coalesced(void)
{
	static const u32 periods[] = { 30000, 100000, 250000 };
	size_t i;
	int k;

	for (i = 0; i < ARRAY_SIZE(periods); i++) {
		const u64 p = periods[i];	/* ns, divide by 1 */
		u64 start, now, reloads, raised = 0;

		setup();
		start = fk.ns;
		timer_setup((1 << 17) | 0xd2, 0xb, p);
		for (k = 0; k < 20; k++) {
			/* the host comes 0..3.7 periods late */
			now = fk.expire + (k % 5) * p * 9 / 10;
			fk.ns = now;
			/* one IRR bit: an interrupt only if it was clear */
			raised += !bit_in_regs(0x820, 0xd2);
			EXPECT(trapvm_lapic_timer_expired(&A, now), "k=%d", k);
			reloads = (now - start) / p;
			EXPECT(raised + A.stats.timer_coalesced == reloads,
			       "p=%llu k=%d: %llu + %llu != %llu",
			       (unsigned long long)p, k,
			       (unsigned long long)raised,
			       (unsigned long long)A.stats.timer_coalesced,
			       (unsigned long long)reloads);
			EXPECT((fk.expire - start) % p == 0, "off the grid");
			EXPECT(fk.expire > now, "armed in the past");
			EXPECT(fk.expire - now <= p + 100000, "too late");
			/* the guest takes it every other time */
			if (k & 1) {
				trapvm_lapic_ack_irq(&A, 0xd2);
				wr(0x80b, 0);
			}
		}
		/* the current count is on the same grid */
		fk.ns = start + 1000 * p + p / 4;
		EXPECT_EQ(rd(0x839), p - p / 4);
	}
}

int main(void)
{
	printf("TAP version 13\n");
	RUN(test_reset_state);
	RUN(test_access_matrix);
	RUN(test_reserved_bits);
	RUN(test_x2apic_off_gp);
	RUN(test_apic_base_transitions);
	RUN(test_priority_order);
	RUN(test_tpr_masking);
	RUN(test_ppr_random);
	RUN(test_lvt_sw_disabled);
	RUN(test_esr);
	RUN(test_self_ipi);
	RUN(test_timer_oneshot_all_divides);
	RUN(test_timer_periodic);
	RUN(test_timer_masked_and_stop);
	RUN(test_timer_tsc_deadline);
	RUN(test_disabled_apic);
	RUN(test_xapic_mmio);
	RUN(test_random_traffic);
	RUN(test_ipi_x2apic_dest);
	RUN(test_ipi_xapic_dest);
	RUN(test_ipi_modes);
	RUN(test_timer_periodic_coalesced);
	printf("1..%d\n", tests_run);
	return tests_failed ? 1 : 0;
}
