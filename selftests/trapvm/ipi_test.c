// SPDX-License-Identifier: GPL-2.0
/*
 * ipi_test: inter-processor interrupts between the vCPUs of one VM, each
 * vCPU on its own thread.  Fixed IPIs by physical destination (ping-pong:
 * every IPI is acknowledged through memory before the next, so the count
 * must be exact), the shorthands self / all including self / all
 * excluding self on four vCPUs, waking a target halted with IF=1, NMI
 * IPIs (taken with IF=0, and a second one only after the handler's IRET),
 * the same ping-pong in xAPIC mode through the MMIO page with the ID and
 * version registers read there, and IPIs that must not be sent (a
 * nonexistent APIC ID; a vector below 16 sets ESR "send illegal vector").
 *
 * Oracle: the Intel SDM, Vol. 3A, chapter "Advanced Programmable
 * Interrupt Controller (APIC)": ICR layout and shorthands, x2APIC ID =
 * the vCPU id, xAPIC ID in bits 31:24, version register layout, ESR bits.
 *
 *   tools/testhost/run -- selftests/trapvm/ipi_test
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <linux/trapvm.h>
#include <linux/trapvm_stats.h>

#include "kselftest_harness.h"
#include "trapvm_test.h"

#define IPI_PORT	0x5cf		/* guest -> test: OUT of a code */
#define CODE_DONE	0xd0e
#define CODE_FAIL	0xfa1

#define MAXV		4
#define IPI_VECTOR	0x40
#define NMI_VECTOR	2
#define N_PINGPONG	1000
#define N_BCAST		200
#define SPIN_LIMIT	2000000000ULL

/* x2APIC MSRs */
#define X2APIC_ID	0x802
#define X2APIC_EOI	0x80b
#define X2APIC_ESR	0x828
#define X2APIC_ICR	0x830

/* xAPIC page */
#define XAPIC_BASE	0xfee00000ULL
#define XAPIC_ID	0x020
#define XAPIC_VER	0x030
#define XAPIC_EOI	0x0b0
#define XAPIC_SVR	0x0f0
#define XAPIC_ICR_LO	0x300
#define XAPIC_ICR_HI	0x310

/* ICR fields (SDM "Interrupt Command Register") */
#define ICR_NMI		(4u << 8)
#define ICR_SELF	(1u << 18)
#define ICR_ALL		(2u << 18)
#define ICR_OTHERS	(3u << 18)
#define ESR_SEND_ILLEGAL (1u << 5)

struct ipi_shared {
	uint64_t nvcpu;
	uint64_t xapic;			/* handlers use the MMIO page */
	volatile uint64_t ready[MAXV];
	volatile uint64_t recv[MAXV];	/* IPI_VECTOR handler runs */
	volatile uint64_t nmis[MAXV];
	volatile uint64_t stop;
	volatile uint64_t halting;
	volatile uint64_t nmi_depth, nmi_nested, nmi_release;
	uint64_t odd_reads[MAXV];
	/* results */
	uint64_t fail_line[MAXV], fail_val[MAXV];
	uint64_t id_reg[MAXV], ver_reg[MAXV], esr[MAXV];
};

static struct ipi_shared sh;

/* ---- guest side ---- */

static void __attribute__((noreturn)) ipi_done(void)
{
	for (;;)
		guest_report(IPI_PORT, CODE_DONE);
}

#define CHECK(id, c, v) do {						\
	if (!(c)) {							\
		sh.fail_line[id] = __LINE__;				\
		sh.fail_val[id] = (uint64_t)(v);			\
		for (;;)						\
			guest_report(IPI_PORT, CODE_FAIL);		\
	}								\
} while (0)

static inline uint32_t mmio_rd(uint32_t off)
{
	return *(volatile uint32_t *)(XAPIC_BASE + off);
}

static inline void mmio_wr(uint32_t off, uint32_t v)
{
	*(volatile uint32_t *)(XAPIC_BASE + off) = v;
}

static uint64_t my_id(void)
{
	if (sh.xapic)
		return mmio_rd(XAPIC_ID) >> 24;
	return guest_rdmsr(X2APIC_ID);
}

static void eoi(void)
{
	if (sh.xapic)
		mmio_wr(XAPIC_EOI, 0);
	else
		guest_wrmsr(X2APIC_EOI, 0);
}

static void ipi_handler(struct ex_regs *regs)
{
	sh.recv[my_id()]++;
	eoi();
}

static void nmi_handler(struct ex_regs *regs)
{
	uint64_t n;

	/* no EOI: NMIs are not in ISR */
	if (++sh.nmi_depth > 1)
		sh.nmi_nested++;
	n = ++sh.nmis[my_id()];
	/* nmi_blocked: the first handler waits for the second NMI */
	while (n == 1 && sh.nmi_release == 1 && !sh.fail_line[0])
		asm volatile("pause" : : : "memory");
	sh.nmi_depth--;
}

static void send(uint32_t dest, uint32_t low)
{
	if (sh.xapic) {
		mmio_wr(XAPIC_ICR_HI, dest << 24);
		mmio_wr(XAPIC_ICR_LO, low);
	} else {
		guest_wrmsr(X2APIC_ICR, ((uint64_t)dest << 32) | low);
	}
}

/* Spin (IF as it is) until *p == want; fail after SPIN_LIMIT loops. */
static void wait_eq(uint64_t id, volatile uint64_t *p, uint64_t want)
{
	uint64_t n = 0;

	while (*p != want) {
		CHECK(id, ++n < SPIN_LIMIT, *p);
		asm volatile("pause" : : : "memory");
	}
}

static void apic_up(uint64_t id)
{
	guest_handlers[IPI_VECTOR] = ipi_handler;
	guest_handlers[NMI_VECTOR] = nmi_handler;
	if (sh.xapic) {
		mmio_wr(XAPIC_SVR, 0x1ff);
		sh.id_reg[id] = mmio_rd(XAPIC_ID);
		sh.ver_reg[id] = mmio_rd(XAPIC_VER);
	} else {
		guest_x2apic_enable();
	}
	sh.ready[id] = 1;
}

static void wait_all_ready(uint64_t id)
{
	uint64_t i;

	for (i = 0; i < sh.nvcpu; i++)
		wait_eq(id, &sh.ready[i], 1);
}

/* Others: sleep with IF=1 (an IPI wakes HLT) until n IPIs came. */
static void hlt_until_count(uint64_t id, uint64_t n)
{
	while (sh.recv[id] < n)
		asm volatile("sti; hlt; cli" : : : "memory");
}

/* vCPU 0 sends N fixed IPIs to vCPU 1, one at a time. */
static void guest_pingpong(uint64_t id)
{
	uint64_t i;

	apic_up(id);
	if (id == 0) {
		wait_all_ready(id);
		for (i = 1; i <= N_PINGPONG; i++) {
			send(1, IPI_VECTOR);
			wait_eq(id, &sh.recv[1], i);
		}
		CHECK(id, sh.recv[0] == 0, sh.recv[0]);
	} else {
		hlt_until_count(id, N_PINGPONG);
	}
	ipi_done();
}

/* Shorthands on every vCPU: others, self, all including self. */
static void guest_shorthands(uint64_t id)
{
	uint64_t i, k;

	apic_up(id);
	if (id != 0) {
		hlt_until_count(id, N_BCAST + 2);
		ipi_done();
	}
	wait_all_ready(id);
	for (i = 1; i <= N_BCAST; i++) {
		send(0, ICR_OTHERS | IPI_VECTOR);
		for (k = 1; k < sh.nvcpu; k++)
			wait_eq(id, &sh.recv[k], i);
		CHECK(id, sh.recv[0] == 0, sh.recv[0]);
	}
	/* self: only the sender, taken as soon as IF is 1 */
	send(0, ICR_SELF | IPI_VECTOR);
	asm volatile("sti; nop; cli" : : : "memory");
	CHECK(id, sh.recv[0] == 1, sh.recv[0]);
	for (k = 1; k < sh.nvcpu; k++)
		CHECK(id, sh.recv[k] == N_BCAST, sh.recv[k]);
	/* all including self */
	send(0, ICR_ALL | IPI_VECTOR);
	asm volatile("sti; nop; cli" : : : "memory");
	CHECK(id, sh.recv[0] == 2, sh.recv[0]);
	for (k = 1; k < sh.nvcpu; k++)
		wait_eq(id, &sh.recv[k], N_BCAST + 1);
	/* broadcast destination: everyone, the sender too */
	send(sh.xapic ? 0xff : 0xffffffffu, IPI_VECTOR);
	asm volatile("sti; nop; cli" : : : "memory");
	CHECK(id, sh.recv[0] == 3, sh.recv[0]);
	for (k = 1; k < sh.nvcpu; k++)
		wait_eq(id, &sh.recv[k], N_BCAST + 2);
	ipi_done();
}

/* vCPU 1 halts with IF=1 once; vCPU 0's IPI must wake it. */
static void guest_halted(uint64_t id)
{
	uint64_t t;

	apic_up(id);
	if (id == 0) {
		wait_all_ready(id);
		wait_eq(id, &sh.halting, 1);
		/* let it reach HLT and go to sleep */
		t = guest_rdtsc();
		while (guest_rdtsc() - t < 200000000ULL)
			asm volatile("pause");
		send(1, IPI_VECTOR);
		wait_eq(id, &sh.recv[1], 1);
	} else {
		sh.halting = 1;
		asm volatile("sti; hlt; cli" : : : "memory");
		CHECK(id, sh.recv[1] == 1, sh.recv[1]);
	}
	ipi_done();
}

/* NMI IPIs to vCPU 1, which spins with IF=0. */
static void guest_nmi(uint64_t id)
{
	apic_up(id);
	if (id == 0) {
		wait_all_ready(id);
		send(1, ICR_NMI);
		wait_eq(id, &sh.nmis[1], 1);
		/* after the handler's IRET, the next NMI gets through */
		send(1, ICR_NMI);
		wait_eq(id, &sh.nmis[1], 2);
		CHECK(id, sh.nmis[0] == 0, sh.nmis[0]);
		CHECK(id, sh.recv[1] == 0, sh.recv[1]);
		sh.stop = 1;
	} else {
		while (!sh.stop)
			asm volatile("pause" : : : "memory");
		CHECK(id, sh.nmis[1] == 2, sh.nmis[1]);
	}
	ipi_done();
}

/*
 * SDM: after an NMI, further NMIs are blocked until the next IRET.  The
 * first handler spins while vCPU 0 sends a second NMI (kicks make the
 * target exit to the host meanwhile); the second must run only after
 * the first handler's IRET, not nested.
 */
static void guest_nmi_blocked(uint64_t id)
{
	uint64_t t;

	apic_up(id);
	if (id == 0) {
		wait_all_ready(id);
		sh.nmi_release = 1;
		send(1, ICR_NMI);
		wait_eq(id, &sh.nmis[1], 1);
		send(1, ICR_NMI);
		t = guest_rdtsc();
		while (guest_rdtsc() - t < 100000000ULL)
			asm volatile("pause");
		CHECK(id, sh.nmis[1] == 1, sh.nmis[1]);
		sh.nmi_release = 2;
		wait_eq(id, &sh.nmis[1], 2);
		CHECK(id, sh.nmi_nested == 0, sh.nmi_nested);
		sh.stop = 1;
	} else {
		/* vCPU 0 failing stops it too */
		while (!sh.stop && !sh.fail_line[0])
			asm volatile("pause" : : : "memory");
	}
	ipi_done();
}

/* The target runs with IF=1 and never exits by itself: the kick must. */
static void guest_running(uint64_t id)
{
	uint64_t i;

	apic_up(id);
	if (id == 0) {
		wait_all_ready(id);
		for (i = 1; i <= N_BCAST; i++) {
			send(1, IPI_VECTOR);
			wait_eq(id, &sh.recv[1], i);
		}
	} else {
		asm volatile("sti" : : : "memory");
		while (sh.recv[1] < N_BCAST)
			asm volatile("pause" : : : "memory");
		asm volatile("cli" : : : "memory");
	}
	ipi_done();
}

/* IPIs that go nowhere: no such APIC ID; an illegal vector. */
static void guest_bad_ipis(uint64_t id)
{
	uint64_t t;

	apic_up(id);
	if (id == 0) {
		wait_all_ready(id);
		send(7, IPI_VECTOR);		/* no vCPU 7 */
		send(1, 5);			/* vector 5 is illegal */
		if (sh.xapic) {
			mmio_wr(0x280, 0);	/* ESR: latch */
			sh.esr[0] = mmio_rd(0x280);
			/* not 32 bits at a 16-byte offset: reads 0 */
			sh.odd_reads[0] =
				*(volatile uint8_t *)(XAPIC_BASE + XAPIC_VER) |
				*(volatile uint16_t *)(XAPIC_BASE + XAPIC_VER) |
				*(volatile uint64_t *)(XAPIC_BASE + XAPIC_VER) |
				*(volatile uint32_t *)(XAPIC_BASE + 0x34);
			/* and such writes write nothing */
			*(volatile uint16_t *)(XAPIC_BASE + XAPIC_SVR) = 0;
			*(volatile uint32_t *)(XAPIC_BASE + 0xf4) = 0;
			CHECK(id, mmio_rd(XAPIC_SVR) == 0x1ff,
			      mmio_rd(XAPIC_SVR));
		} else {
			guest_wrmsr(X2APIC_ESR, 0);
			sh.esr[0] = guest_rdmsr(X2APIC_ESR);
		}
		/* a legal one still works afterwards */
		send(1, IPI_VECTOR);
		wait_eq(id, &sh.recv[1], 1);
		t = guest_rdtsc();
		while (guest_rdtsc() - t < 50000000ULL)
			asm volatile("pause");
		CHECK(id, sh.recv[1] == 1, sh.recv[1]);
	} else {
		hlt_until_count(id, 1);
	}
	ipi_done();
}

/* ---- test side ---- */

FIXTURE(ipi) {
	struct tvm *vm;
	struct tvm_vcpu v[MAXV];
	int n;
	long long log_mark;
};

FIXTURE_VARIANT(ipi) {
	int nvcpu;
	bool xapic;
};

FIXTURE_VARIANT_ADD(ipi, x2apic_2) { .nvcpu = 2, .xapic = false };
FIXTURE_VARIANT_ADD(ipi, x2apic_4) { .nvcpu = 4, .xapic = false };
FIXTURE_VARIANT_ADD(ipi, xapic_2) { .nvcpu = 2, .xapic = true };
FIXTURE_VARIANT_ADD(ipi, xapic_4) { .nvcpu = 4, .xapic = true };

FIXTURE_SETUP(ipi)
{
	int i;

	self->log_mark = tvm_host_log_mark();
	self->vm = tvm_create(0);
	self->n = variant->nvcpu;
	memset(&sh, 0, sizeof(sh));
	sh.nvcpu = self->n;
	sh.xapic = variant->xapic;
	tvm_sync_to_guest(self->vm, sh);
	/* the xAPIC page, uncached, outside RAM */
	tvm_map(self->vm, XAPIC_BASE, XAPIC_BASE,
		PTE_P | PTE_W | (1ULL << 4));
	tvm_vcpu0(self->vm, &self->v[0], IPI_PORT);
	for (i = 1; i < self->n; i++)
		ASSERT_EQ(0, tvm_vcpu_add(self->vm, i, &self->v[i], IPI_PORT));
}

FIXTURE_TEARDOWN(ipi)
{
	char why[2048];
	int i;

	for (i = 1; i < self->n; i++)
		tvm_vcpu_close(&self->v[i]);
	tvm_free(self->vm);
	EXPECT_TRUE(tvm_host_clean_since(self->log_mark, why, sizeof(why)))
		TH_LOG("%s", why);
}

static struct ipi_shared *guest_sh(struct tvm *vm)
{
	return tvm_gva(vm, (uint64_t)&sh);
}

/* Run every vCPU from @fn on its own thread until all exit. */
static void run_all(struct __test_metadata *_metadata, FIXTURE_DATA(ipi) *self,
		    void *fn, int n)
{
	struct ipi_shared *g = guest_sh(self->vm);
	int i;

	g->nvcpu = n;
	/* 32 KiB of the kernel stack each */
	for (i = 0; i < n; i++)
		ASSERT_EQ(0, tvm_vcpu_enter(&self->v[i], fn, i,
					    TVM_STACK_TOP - i * 0x8000));
	ASSERT_EQ(0, tvm_vcpus_run(self->v, n));
	for (i = 0; i < n; i++) {
		EXPECT_EQ(0, self->v[i].ret)
			TH_LOG("vCPU %d: %s", i, self->v[i].why);
		EXPECT_EQ(CODE_DONE, self->v[i].code)
			TH_LOG("vCPU %d: failed at line %llu (value %#llx)", i,
			       (unsigned long long)g->fail_line[i],
			       (unsigned long long)g->fail_val[i]);
	}
}

/* SDM: xAPIC ID in bits 31:24; version 1xH, max LVT entry in 23:16. */
static void check_xapic_regs(struct __test_metadata *_metadata,
			     FIXTURE_DATA(ipi) *self, int n)
{
	struct ipi_shared *g = guest_sh(self->vm);
	int i;

	for (i = 0; i < n; i++) {
		EXPECT_EQ((uint64_t)i << 24, g->id_reg[i]);
		EXPECT_EQ(0x10, g->ver_reg[i] & 0xf0);
		/* CMCI, timer, thermal, perf, LINT0, LINT1, error */
		EXPECT_EQ(6, (g->ver_reg[i] >> 16) & 0xff);
		EXPECT_GT(tvm_vcpu_stat(&self->v[i], TRAPVM_STAT_APIC_MMIO), 0);
		EXPECT_EQ(0, tvm_vcpu_stat(&self->v[i],
					   TRAPVM_STAT_EXIT_USER_MMIO));
	}
}

TEST_F_TIMEOUT(ipi, pingpong, 300)
{
	struct ipi_shared *g = guest_sh(self->vm);

	/* only two of them play */
	run_all(_metadata, self, guest_pingpong, 2);
	EXPECT_EQ(N_PINGPONG, g->recv[1]);
	EXPECT_EQ(0, g->recv[0]);
	EXPECT_EQ(N_PINGPONG,
		  tvm_vcpu_stat(&self->v[0], TRAPVM_STAT_APIC_IPIS_SENT));
	EXPECT_EQ(N_PINGPONG,
		  tvm_vcpu_stat(&self->v[1], TRAPVM_STAT_APIC_IPIS_RECEIVED));
	EXPECT_EQ(0, tvm_vcpu_stat(&self->v[0], TRAPVM_STAT_APIC_IPIS_DROPPED));
	if (variant->xapic)
		check_xapic_regs(_metadata, self, 2);
}

TEST_F_TIMEOUT(ipi, shorthands, 300)
{
	struct ipi_shared *g = guest_sh(self->vm);
	int k;

	run_all(_metadata, self, guest_shorthands, self->n);
	EXPECT_EQ(3, g->recv[0]);
	for (k = 1; k < self->n; k++) {
		/* N others, all, broadcast */
		EXPECT_EQ(N_BCAST + 2, g->recv[k]) TH_LOG("vCPU %d", k);
		EXPECT_EQ(N_BCAST + 2,
			  tvm_vcpu_stat(&self->v[k],
					TRAPVM_STAT_APIC_IPIS_RECEIVED));
	}
	/* one message per destination reached */
	EXPECT_EQ((N_BCAST + 2) * (self->n - 1) + 3,
		  tvm_vcpu_stat(&self->v[0], TRAPVM_STAT_APIC_IPIS_SENT));
	if (variant->xapic)
		check_xapic_regs(_metadata, self, self->n);
}

TEST_F_TIMEOUT(ipi, halted_target, 300)
{
	struct ipi_shared *g = guest_sh(self->vm);

	run_all(_metadata, self, guest_halted, 2);
	EXPECT_EQ(1, g->recv[1]);
	EXPECT_GE(tvm_vcpu_stat(&self->v[1], TRAPVM_STAT_HALTS), 1);
}

TEST_F_TIMEOUT(ipi, nmi, 300)
{
	struct ipi_shared *g = guest_sh(self->vm);

	run_all(_metadata, self, guest_nmi, 2);
	EXPECT_EQ(2, g->nmis[1]);
	EXPECT_EQ(0, g->nmis[0]);
	EXPECT_EQ(2, tvm_vcpu_stat(&self->v[1],
				   TRAPVM_STAT_APIC_NMIS_RECEIVED));
}

TEST_F_TIMEOUT(ipi, nmi_blocked_until_iret, 300)
{
	struct ipi_shared *g = guest_sh(self->vm);

	run_all(_metadata, self, guest_nmi_blocked, 2);
	EXPECT_EQ(2, g->nmis[1]);
	EXPECT_EQ(0, g->nmi_nested);
}

TEST_F_TIMEOUT(ipi, running_target, 300)
{
	struct ipi_shared *g = guest_sh(self->vm);

	run_all(_metadata, self, guest_running, 2);
	EXPECT_EQ(N_BCAST, g->recv[1]);
	EXPECT_EQ(N_BCAST,
		  tvm_vcpu_stat(&self->v[1], TRAPVM_STAT_APIC_IPIS_RECEIVED));
}

TEST_F_TIMEOUT(ipi, bad_ipis, 300)
{
	struct ipi_shared *g = guest_sh(self->vm);

	run_all(_metadata, self, guest_bad_ipis, 2);
	/* SDM: "Send Illegal Vector" (bit 5); no error for a lost one */
	EXPECT_EQ(ESR_SEND_ILLEGAL, g->esr[0]);
	EXPECT_EQ(0, g->odd_reads[0]);
	EXPECT_EQ(1, g->recv[1]);
	EXPECT_EQ(1, tvm_vcpu_stat(&self->v[0], TRAPVM_STAT_APIC_IPIS_DROPPED));
	EXPECT_EQ(1, tvm_vcpu_stat(&self->v[0], TRAPVM_STAT_APIC_IPIS_SENT));
}

TEST_HARNESS_MAIN
