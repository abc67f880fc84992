// SPDX-License-Identifier: GPL-2.0
/*
 * The virtual local APIC in x2APIC mode: registers, interrupt priority
 * logic and the timer, after the Intel SDM Vol. 3 chapter "Advanced
 * Programmable Interrupt Controller (APIC)".
 *
 * Kernel-agnostic: no kernel calls here, time comes from the ops
 * callbacks, so userspace unit tests can drive it with a fake clock.
 * Documentation/interrupts.rst lists the deviations from the SDM.
 */
#include <trapvm/glue.h>
#include <trapvm/lapic.h>

#define NSEC_PER_MSEC_ULL	1000000ULL

/* A saturating "never" for timer arithmetic, well inside ktime_t. */
#define LAPIC_NEVER		BIT_ULL(62)

/* LVT bits a guest may set, per entry; everything else is reserved. */
static const u32 lvt_valid[TRAPVM_LVT_NR] = {
	[TRAPVM_LVT_CMCI] = TRAPVM_APIC_LVT_VECTOR | TRAPVM_APIC_LVT_DM_MASK |
			    TRAPVM_APIC_LVT_DS | TRAPVM_APIC_LVT_MASKED,
	[TRAPVM_LVT_TIMER] = TRAPVM_APIC_LVT_VECTOR | TRAPVM_APIC_LVT_DS |
			     TRAPVM_APIC_LVT_MASKED |
			     TRAPVM_APIC_LVT_TIMER_MODE,
	[TRAPVM_LVT_THERMAL] = TRAPVM_APIC_LVT_VECTOR |
			       TRAPVM_APIC_LVT_DM_MASK | TRAPVM_APIC_LVT_DS |
			       TRAPVM_APIC_LVT_MASKED,
	[TRAPVM_LVT_PERF] = TRAPVM_APIC_LVT_VECTOR | TRAPVM_APIC_LVT_DM_MASK |
			    TRAPVM_APIC_LVT_DS | TRAPVM_APIC_LVT_MASKED,
	[TRAPVM_LVT_LINT0] = TRAPVM_APIC_LVT_VECTOR |
			     TRAPVM_APIC_LVT_DM_MASK | TRAPVM_APIC_LVT_DS |
			     TRAPVM_APIC_LVT_POLARITY |
			     TRAPVM_APIC_LVT_REMOTE_IRR |
			     TRAPVM_APIC_LVT_LEVEL | TRAPVM_APIC_LVT_MASKED,
	[TRAPVM_LVT_LINT1] = TRAPVM_APIC_LVT_VECTOR |
			     TRAPVM_APIC_LVT_DM_MASK | TRAPVM_APIC_LVT_DS |
			     TRAPVM_APIC_LVT_POLARITY |
			     TRAPVM_APIC_LVT_REMOTE_IRR |
			     TRAPVM_APIC_LVT_LEVEL | TRAPVM_APIC_LVT_MASKED,
	[TRAPVM_LVT_ERROR] = TRAPVM_APIC_LVT_VECTOR | TRAPVM_APIC_LVT_DS |
			     TRAPVM_APIC_LVT_MASKED,
};

/* Status bits the APIC owns: writes are ignored, reads give ours (0). */
#define LVT_READ_ONLY	(TRAPVM_APIC_LVT_DS | TRAPVM_APIC_LVT_REMOTE_IRR)

/* ICR bits that are reserved in x2APIC mode (bit 12 is ignored). */
#define ICR_RESERVED	((1ULL << 13) | (3ULL << 16) | (0xfffULL << 20))

/* SVR: vector, enable, focus-check (ignored); no EOI-broadcast suppression */
#define SVR_VALID	(0xffu | TRAPVM_APIC_SVR_ENABLE | TRAPVM_APIC_SVR_FOCUS)

/* DCR: bits 0, 1 and 3 */
#define DCR_VALID	0xbu

static const int lvt_msr_index[TRAPVM_LVT_NR] = {
	[TRAPVM_LVT_CMCI] = TRAPVM_X2APIC_LVT_CMCI,
	[TRAPVM_LVT_TIMER] = TRAPVM_X2APIC_LVT_TIMER,
	[TRAPVM_LVT_THERMAL] = TRAPVM_X2APIC_LVT_THERMAL,
	[TRAPVM_LVT_PERF] = TRAPVM_X2APIC_LVT_PERF,
	[TRAPVM_LVT_LINT0] = TRAPVM_X2APIC_LVT_LINT0,
	[TRAPVM_LVT_LINT1] = TRAPVM_X2APIC_LVT_LINT1,
	[TRAPVM_LVT_ERROR] = TRAPVM_X2APIC_LVT_ERROR,
};

/* ---- 256-bit vector bitmaps as eight 32-bit registers ---- */

static bool vec_test(const u32 *r, unsigned int v)
{
	return r[v >> 5] & (1u << (v & 31));
}

static void vec_set(u32 *r, unsigned int v)
{
	r[v >> 5] |= 1u << (v & 31);
}

static void vec_clear(u32 *r, unsigned int v)
{
	r[v >> 5] &= ~(1u << (v & 31));
}

static int vec_highest(const u32 *r)
{
	int i;

	for (i = 7; i >= 0; i--)
		if (r[i])
			return i * 32 + 31 - __builtin_clz(r[i]);
	return -1;
}

/* ---- state ---- */

static bool hw_enabled(const struct trapvm_lapic *a)
{
	return a->apic_base & TRAPVM_APIC_BASE_EN;
}

static bool x2apic_mode(const struct trapvm_lapic *a)
{
	return hw_enabled(a) && (a->apic_base & TRAPVM_APIC_BASE_EXTD);
}

static bool sw_enabled(const struct trapvm_lapic *a)
{
	return a->svr & TRAPVM_APIC_SVR_ENABLE;
}

static u32 timer_mode(const struct trapvm_lapic *a)
{
	return a->lvt[TRAPVM_LVT_TIMER] & TRAPVM_APIC_LVT_TIMER_MODE;
}

static u32 ldr(const struct trapvm_lapic *a)
{
	/* x2APIC logical ID: cluster in 31:16, one bit of 16 in 15:0 */
	return ((a->vcpu_id >> 4) << 16) | (1u << (a->vcpu_id & 0xf));
}

/* ---- accepting interrupts ---- */

static enum trapvm_lapic_irq_result accept(struct trapvm_lapic *a,
					   unsigned int vector, bool level);

/*
 * An error was detected: latch it for the next ESR write and raise the
 * error interrupt.  An illegal vector in the LVT error entry itself only
 * latches "received illegal vector" (no recursion).
 */
static void raise_error(struct trapvm_lapic *a, u32 bits)
{
	u32 lvt = a->lvt[TRAPVM_LVT_ERROR];

	a->esr_pending |= bits;
	a->stats.errors++;
	if (lvt & TRAPVM_APIC_LVT_MASKED)
		return;
	if ((lvt & TRAPVM_APIC_LVT_VECTOR) < 16) {
		a->esr_pending |= TRAPVM_APIC_ESR_RECV_ILLEGAL;
		return;
	}
	accept(a, lvt & TRAPVM_APIC_LVT_VECTOR, false);
}

static enum trapvm_lapic_irq_result accept(struct trapvm_lapic *a,
					   unsigned int vector, bool level)
{
	/*
	 * A globally or software-disabled APIC takes no fixed interrupts:
	 * the LVTs are masked and an external interrupt finds no one home.
	 */
	if (!hw_enabled(a) || !sw_enabled(a)) {
		a->stats.irqs_dropped++;
		return TRAPVM_LAPIC_IRQ_DISABLED;
	}
	if (vector < 16) {
		/* The APIC never sets IRR bits 0..15. */
		a->stats.irqs_dropped++;
		raise_error(a, TRAPVM_APIC_ESR_RECV_ILLEGAL);
		return TRAPVM_LAPIC_IRQ_ILLEGAL;
	}
	if (level)
		vec_set(a->tmr, vector);
	else
		vec_clear(a->tmr, vector);
	if (vec_test(a->irr, vector)) {
		a->stats.irqs_coalesced++;
		return TRAPVM_LAPIC_IRQ_COALESCED;
	}
	vec_set(a->irr, vector);
	a->stats.irqs_accepted++;
	return TRAPVM_LAPIC_IRQ_ACCEPTED;
}

enum trapvm_lapic_irq_result trapvm_lapic_set_irq(struct trapvm_lapic *a,
						  unsigned int vector)
{
	if (vector > 255) {
		a->stats.irqs_dropped++;
		return TRAPVM_LAPIC_IRQ_ILLEGAL;
	}
	return accept(a, vector, false);
}

u32 trapvm_lapic_get_ppr(const struct trapvm_lapic *a)
{
	int isrv = vec_highest(a->isr);
	u32 isr_class = isrv < 0 ? 0 : (u32)isrv & 0xf0;

	/* SDM: PPR = TPR if TPR[7:4] >= ISRV[7:4], else ISRV[7:4] << 4 */
	if ((a->tpr & 0xf0) >= isr_class)
		return a->tpr & 0xff;
	return isr_class;
}

int trapvm_lapic_pending_irq(const struct trapvm_lapic *a)
{
	int v = vec_highest(a->irr);

	if (v < 0 || !hw_enabled(a))
		return -1;
	if (((u32)v & 0xf0) <= (trapvm_lapic_get_ppr(a) & 0xf0))
		return -1;
	return v;
}

void trapvm_lapic_ack_irq(struct trapvm_lapic *a, int vector)
{
	if (vector < 16 || vector > 255 || !vec_test(a->irr, vector))
		return;
	vec_clear(a->irr, vector);
	vec_set(a->isr, vector);
	a->stats.irqs_acked++;
}

bool trapvm_lapic_has_work(const struct trapvm_lapic *a)
{
	return trapvm_lapic_pending_irq(a) >= 0;
}

static void eoi(struct trapvm_lapic *a)
{
	int v = vec_highest(a->isr);

	a->stats.eois++;
	if (v < 0)
		return;
	vec_clear(a->isr, v);
	/*
	 * A level-triggered vector would now broadcast an EOI to the I/O
	 * APICs; there are none, so TMR only records how it was accepted.
	 */
}

/* ---- timer ---- */

static u32 timer_divisor(u32 dcr)
{
	/* DCR bits 3,1,0: 000 = /2 ... 110 = /128, 111 = /1 */
	u32 idx = (dcr & 3) | ((dcr >> 1) & 4);

	return idx == 7 ? 1 : 2u << idx;
}

static u64 ticks_to_ns(const struct trapvm_lapic *a, u64 ticks)
{
	return ticks * timer_divisor(a->timer_dcr) * TRAPVM_LAPIC_NS_PER_TICK;
}

static void timer_arm(struct trapvm_lapic *a, u64 expire)
{
	a->timer_armed = true;
	a->timer_expire_ns = expire;
	a->ops->arm_timer(a->ctx, expire);
}

static void timer_disarm(struct trapvm_lapic *a)
{
	if (a->timer_armed)
		a->ops->cancel_timer(a->ctx);
	a->timer_armed = false;
}

/* The current-count register at time now (one-shot and periodic). */
static u32 timer_current(const struct trapvm_lapic *a, u64 now)
{
	u64 ticks;

	if (timer_mode(a) == TRAPVM_APIC_TIMER_TSCDEADLINE ||
	    !a->timer_initial)
		return 0;
	if (now <= a->timer_base_ns)
		return a->timer_base_count;
	ticks = (now - a->timer_base_ns) / ticks_to_ns(a, 1);
	if (ticks < a->timer_base_count)
		return a->timer_base_count - (u32)ticks;
	if (timer_mode(a) != TRAPVM_APIC_TIMER_PERIODIC)
		return 0;
	/* reached 0 and reloaded from the initial count, maybe many times */
	ticks -= a->timer_base_count;
	return a->timer_initial - (u32)(ticks % a->timer_initial);
}

static void timer_start_count(struct trapvm_lapic *a, u32 count)
{
	u64 now = a->ops->now_ns(a->ctx);

	a->timer_base_ns = now;
	a->timer_base_count = count;
	a->timer_grid_ns = now + ticks_to_ns(a, count);
	timer_arm(a, a->timer_grid_ns);
}

static void write_initial_count(struct trapvm_lapic *a, u32 val)
{
	/* SDM: ignored in TSC-deadline mode */
	if (timer_mode(a) == TRAPVM_APIC_TIMER_TSCDEADLINE)
		return;
	a->timer_initial = val;
	if (!val) {
		timer_disarm(a);
		return;
	}
	timer_start_count(a, val);
}

static void write_dcr(struct trapvm_lapic *a, u32 val)
{
	u64 now;
	u32 cur;

	if (timer_mode(a) == TRAPVM_APIC_TIMER_TSCDEADLINE ||
	    !a->timer_initial) {
		a->timer_dcr = val;
		return;
	}
	/* Keep the count reached so far; count on at the new rate. */
	now = a->ops->now_ns(a->ctx);
	cur = timer_current(a, now);
	a->timer_dcr = val;
	if (cur)
		timer_start_count(a, cur);
}

/* ns from now until the TSC reaches deadline, rounded up (never early) */
static u64 tsc_to_expiry(struct trapvm_lapic *a, u64 deadline)
{
	u64 now = a->ops->now_ns(a->ctx);
	u64 tsc = a->ops->read_tsc(a->ctx);
	u64 khz = a->tsc_khz ? a->tsc_khz : NSEC_PER_MSEC_ULL;
	u64 delta, q, r, ns;

	if (deadline <= tsc)
		return now;
	delta = deadline - tsc;
	q = delta / khz;
	r = delta % khz;
	if (q >= LAPIC_NEVER / NSEC_PER_MSEC_ULL)
		return LAPIC_NEVER;
	ns = q * NSEC_PER_MSEC_ULL + (r * NSEC_PER_MSEC_ULL + khz - 1) / khz;
	if (ns >= LAPIC_NEVER - now)
		return LAPIC_NEVER;
	return now + ns;
}

static void write_tsc_deadline(struct trapvm_lapic *a, u64 val)
{
	/* SDM: writes outside TSC-deadline mode are ignored */
	if (!hw_enabled(a) ||
	    timer_mode(a) != TRAPVM_APIC_TIMER_TSCDEADLINE)
		return;
	a->tsc_deadline = val;
	if (!val) {
		timer_disarm(a);
		return;
	}
	timer_arm(a, tsc_to_expiry(a, val));
}

bool trapvm_lapic_timer_expired(struct trapvm_lapic *a, u64 now)
{
	u32 lvt = a->lvt[TRAPVM_LVT_TIMER];
	u64 period, due, next;

	if (!a->timer_armed || now < a->timer_expire_ns)
		return false;	/* stale: disarmed or re-armed since */

	a->stats.timer_fired++;
	if (lvt & TRAPVM_APIC_LVT_MASKED)
		a->stats.timer_masked++;
	else if (accept(a, lvt & TRAPVM_APIC_LVT_VECTOR, false) ==
		 TRAPVM_LAPIC_IRQ_COALESCED)
		a->stats.timer_coalesced++;	/* the last one not taken */

	switch (timer_mode(a)) {
	case TRAPVM_APIC_TIMER_PERIODIC:
		/*
		 * The counter reloads at every multiple of the period after
		 * timer_grid_ns.  Every reload up to now is an expiry; they
		 * all went into the one IRR bit just set (a real APIC does
		 * the same when its interrupts are held off), so count the
		 * extra ones.  The next expiry stays on the grid.
		 */
		period = ticks_to_ns(a, a->timer_initial);
		due = 1 + (now - a->timer_grid_ns) / period;
		a->stats.timer_coalesced += due - 1;
		a->timer_grid_ns += due * period;
		next = a->timer_grid_ns;
		/*
		 * Not closer than TRAPVM_LAPIC_MIN_PERIOD_NS after the
		 * expiry just handled: the grid points skipped are counted
		 * above at the next expiry.
		 */
		if (period < TRAPVM_LAPIC_MIN_PERIOD_NS)
			next += (TRAPVM_LAPIC_MIN_PERIOD_NS - 1) / period *
				period;
		timer_arm(a, next);
		break;
	case TRAPVM_APIC_TIMER_TSCDEADLINE:
		a->tsc_deadline = 0;
		a->timer_armed = false;
		break;
	default:
		a->timer_armed = false;
		break;
	}
	return true;
}

bool trapvm_lapic_timer_next(const struct trapvm_lapic *a, u64 *expire_ns)
{
	if (a->timer_armed)
		*expire_ns = a->timer_expire_ns;
	return a->timer_armed;
}

/* ---- registers ---- */

static int write_lvt(struct trapvm_lapic *a, enum trapvm_lapic_lvt i, u32 val)
{
	u32 old = a->lvt[i];

	if (val & ~lvt_valid[i])
		return TRAPVM_LAPIC_GP;
	if (i == TRAPVM_LVT_TIMER &&
	    (val & TRAPVM_APIC_LVT_TIMER_MODE) == TRAPVM_APIC_LVT_TIMER_MODE)
		return TRAPVM_LAPIC_GP;	/* mode 11b is reserved */
	val &= ~LVT_READ_ONLY;
	/* SDM: while software-disabled the mask bits cannot be cleared */
	if (!sw_enabled(a))
		val |= TRAPVM_APIC_LVT_MASKED;
	a->lvt[i] = val;

	if (i == TRAPVM_LVT_TIMER &&
	    ((old ^ val) & TRAPVM_APIC_LVT_TIMER_MODE)) {
		/* SDM: a write that changes the timer mode disarms it */
		timer_disarm(a);
		a->timer_initial = 0;
		a->tsc_deadline = 0;
	}
	return 0;
}

static int write_svr(struct trapvm_lapic *a, u32 val)
{
	int i;

	if (val & ~SVR_VALID)
		return TRAPVM_LAPIC_GP;
	a->svr = val;
	if (!sw_enabled(a))
		for (i = 0; i < TRAPVM_LVT_NR; i++)
			a->lvt[i] |= TRAPVM_APIC_LVT_MASKED;
	return 0;
}

/* ---- IPIs ---- */

/* trapvm_lapic_dest_key() layout */
#define KEY_ID		0xffffffffULL
#define KEY_EN		BIT_ULL(32)
#define KEY_X2APIC	BIT_ULL(33)
#define KEY_LDR_SHIFT	40		/* xAPIC LDR[31:24] */
#define KEY_DFR_SHIFT	48		/* xAPIC DFR[31:28] (model) */

u64 trapvm_lapic_dest_key(const struct trapvm_lapic *a)
{
	u64 key = a->vcpu_id;

	if (hw_enabled(a))
		key |= KEY_EN;
	if (x2apic_mode(a))
		key |= KEY_X2APIC;
	key |= (u64)(a->xapic_ldr >> 24) << KEY_LDR_SHIFT;
	key |= (u64)(a->xapic_dfr >> 28) << KEY_DFR_SHIFT;
	return key;
}

/*
 * SDM destination rules, in the sender's mode.  x2APIC: 32-bit
 * destination, physical = x2APIC ID, logical = cluster (31:16) and a
 * 16-bit mask against the LDR derived from the ID.  xAPIC: 8-bit
 * destination, physical = APIC ID, logical per the destination's DFR
 * model (flat: 8-bit mask; cluster: cluster in 7:4, mask in 3:0) against
 * its LDR[31:24].  All ones is the broadcast in both modes.  A
 * hardware-disabled APIC takes no messages.
 */
bool trapvm_lapic_ipi_match(const struct trapvm_lapic_ipi *ipi, u64 key)
{
	u32 id = key & KEY_ID;
	u32 bcast = ipi->x2apic ? 0xffffffffu : 0xffu;
	u32 l;

	if (!(key & KEY_EN))
		return false;
	switch (ipi->shorthand) {
	case TRAPVM_APIC_ICR_SH_SELF >> 18:
		return id == ipi->src;
	case TRAPVM_APIC_ICR_SH_ALL >> 18:
		return true;
	case TRAPVM_APIC_ICR_SH_OTHERS >> 18:
		return id != ipi->src;
	}
	if (ipi->dest == bcast)
		return true;
	if (!ipi->logical)
		return ipi->dest == id;
	if (ipi->x2apic) {
		l = ((id >> 4) << 16) | (1u << (id & 0xf));
		return (ipi->dest >> 16) == (l >> 16) &&
		       (ipi->dest & l & 0xffff);
	}
	l = (key >> KEY_LDR_SHIFT) & 0xff;
	if (((key >> KEY_DFR_SHIFT) & 0xf) == 0xf)	/* flat model */
		return ipi->dest & l;
	return (ipi->dest >> 4) == (l >> 4) && (ipi->dest & l & 0xf);
}

enum trapvm_lapic_irq_result
trapvm_lapic_deliver_ipi(struct trapvm_lapic *a,
			 const struct trapvm_lapic_ipi *ipi)
{
	enum trapvm_lapic_irq_result r;

	r = accept(a, ipi->vector, ipi->level);
	if (r == TRAPVM_LAPIC_IRQ_ACCEPTED || r == TRAPVM_LAPIC_IRQ_COALESCED)
		a->stats.ipis_received++;
	return r;
}

/* Send the IPI that a->icr describes. */
static void send_ipi(struct trapvm_lapic *a)
{
	u64 icr = a->icr;
	u64 dm = icr & TRAPVM_APIC_ICR_DM_MASK;
	bool x2 = x2apic_mode(a);
	struct trapvm_lapic_ipi ipi = {
		.src = a->vcpu_id,
		.dest = x2 ? icr >> TRAPVM_APIC_ICR_DEST_SHIFT : icr >> 56,
		.vector = icr & TRAPVM_APIC_ICR_VECTOR,
		.shorthand = (icr & TRAPVM_APIC_ICR_SH_MASK) >> 18,
		.logical = icr & TRAPVM_APIC_ICR_LOGICAL,
		.x2apic = x2,
		/* SDM: level-triggered fixed IPIs are edge in effect */
		.level = false,
	};
	unsigned int n;

	switch (dm) {
	case TRAPVM_APIC_ICR_DM_FIXED:
		ipi.mode = TRAPVM_LAPIC_IPI_FIXED;
		break;
	case TRAPVM_APIC_ICR_DM_LOWEST:
		/* reserved in x2APIC mode */
		if (x2) {
			a->stats.ipis_unsupported++;
			return;
		}
		ipi.mode = TRAPVM_LAPIC_IPI_LOWEST;
		break;
	case TRAPVM_APIC_ICR_DM_NMI:
		ipi.mode = TRAPVM_LAPIC_IPI_NMI;
		ipi.vector = 0;
		break;
	default:
		/*
		 * INIT, SIPI, SMI and the reserved modes: no SMP boot
		 * protocol yet (Documentation/interrupts.rst).
		 */
		a->stats.ipis_unsupported++;
		return;
	}
	/* SDM: an illegal vector is not sent; ESR "send illegal vector" */
	if (ipi.mode != TRAPVM_LAPIC_IPI_NMI && ipi.vector < 16) {
		raise_error(a, TRAPVM_APIC_ESR_SEND_ILLEGAL);
		return;
	}

	if (a->ops->send_ipi) {
		n = a->ops->send_ipi(a->ctx, &ipi);
		a->stats.ipis_sent += n;
		if (!n)
			a->stats.ipis_dropped++;
		return;
	}
	/* No other vCPUs to reach: only this APIC, and not for NMIs. */
	n = trapvm_lapic_ipi_match(&ipi, trapvm_lapic_dest_key(a)) &&
	    ipi.mode != TRAPVM_LAPIC_IPI_NMI;
	if (n) {
		a->stats.ipis_self++;
		a->stats.ipis_sent++;
		trapvm_lapic_deliver_ipi(a, &ipi);
	}
	if (!n || ipi.shorthand == TRAPVM_APIC_ICR_SH_ALL >> 18 ||
	    ipi.shorthand == TRAPVM_APIC_ICR_SH_OTHERS >> 18 ||
	    (!ipi.shorthand && ipi.dest == (x2 ? 0xffffffffu : 0xffu)))
		a->stats.ipis_dropped++;	/* others were meant */
}

static int write_icr(struct trapvm_lapic *a, u64 val)
{
	if (val & ICR_RESERVED)
		return TRAPVM_LAPIC_GP;
	/* SDM: WRMSR ignores bit 12 (no delivery status in x2APIC) */
	a->icr = val & ~TRAPVM_APIC_ICR_DS;
	send_ipi(a);
	return 0;
}

static int write_self_ipi(struct trapvm_lapic *a, u32 val)
{
	struct trapvm_lapic_ipi self_ipi = {
		.src = a->vcpu_id,
		.vector = val,
		.mode = TRAPVM_LAPIC_IPI_FIXED,
		.shorthand = TRAPVM_APIC_ICR_SH_SELF >> 18,
		.x2apic = true,
	};

	if (val & ~0xffu)
		return TRAPVM_LAPIC_GP;
	if (val < 16) {
		raise_error(a, TRAPVM_APIC_ESR_SEND_ILLEGAL);
		return 0;
	}
	a->stats.ipis_self++;
	a->stats.ipis_sent++;
	trapvm_lapic_deliver_ipi(a, &self_ipi);
	return 0;
}

static int lvt_of_msr(u32 msr)
{
	int i;

	for (i = 0; i < TRAPVM_LVT_NR; i++)
		if (lvt_msr_index[i] == (int)msr)
			return i;
	return -1;
}

static int x2apic_read(struct trapvm_lapic *a, u32 msr, u64 *val)
{
	int lvt;

	if (msr >= TRAPVM_X2APIC_ISR0 && msr < TRAPVM_X2APIC_ISR0 + 8) {
		*val = a->isr[msr - TRAPVM_X2APIC_ISR0];
		return 0;
	}
	if (msr >= TRAPVM_X2APIC_TMR0 && msr < TRAPVM_X2APIC_TMR0 + 8) {
		*val = a->tmr[msr - TRAPVM_X2APIC_TMR0];
		return 0;
	}
	if (msr >= TRAPVM_X2APIC_IRR0 && msr < TRAPVM_X2APIC_IRR0 + 8) {
		*val = a->irr[msr - TRAPVM_X2APIC_IRR0];
		return 0;
	}
	lvt = lvt_of_msr(msr);
	if (lvt >= 0) {
		*val = a->lvt[lvt];
		return 0;
	}

	switch (msr) {
	case TRAPVM_X2APIC_ID:
		*val = a->vcpu_id;
		break;
	case TRAPVM_X2APIC_VERSION:
		*val = TRAPVM_APIC_VERSION_VAL | ((TRAPVM_LVT_NR - 1) << 16);
		break;
	case TRAPVM_X2APIC_TPR:
		*val = a->tpr;
		break;
	case TRAPVM_X2APIC_PPR:
		*val = trapvm_lapic_get_ppr(a);
		break;
	case TRAPVM_X2APIC_LDR:
		*val = ldr(a);
		break;
	case TRAPVM_X2APIC_SVR:
		*val = a->svr;
		break;
	case TRAPVM_X2APIC_ESR:
		*val = a->esr;
		break;
	case TRAPVM_X2APIC_ICR:
		*val = a->icr;
		break;
	case TRAPVM_X2APIC_TIMER_ICR:
		*val = a->timer_initial;
		break;
	case TRAPVM_X2APIC_TIMER_CCR:
		*val = timer_current(a, a->ops->now_ns(a->ctx));
		break;
	case TRAPVM_X2APIC_TIMER_DCR:
		*val = a->timer_dcr;
		break;
	default:
		/* EOI and SELF_IPI are write-only; the rest is not there */
		return TRAPVM_LAPIC_GP;
	}
	return 0;
}

static int x2apic_write(struct trapvm_lapic *a, u32 msr, u64 val)
{
	int lvt;

	if (msr == TRAPVM_X2APIC_ICR)
		return write_icr(a, val);
	/* every other x2APIC register is 32 bits wide */
	if (val >> 32)
		return TRAPVM_LAPIC_GP;

	lvt = lvt_of_msr(msr);
	if (lvt >= 0)
		return write_lvt(a, lvt, val);

	switch (msr) {
	case TRAPVM_X2APIC_TPR:
		if (val & ~0xffULL)
			return TRAPVM_LAPIC_GP;
		a->tpr = val;
		return 0;
	case TRAPVM_X2APIC_EOI:
		if (val)
			return TRAPVM_LAPIC_GP;
		eoi(a);
		return 0;
	case TRAPVM_X2APIC_SVR:
		return write_svr(a, val);
	case TRAPVM_X2APIC_ESR:
		if (val)
			return TRAPVM_LAPIC_GP;
		a->esr = a->esr_pending;
		a->esr_pending = 0;
		return 0;
	case TRAPVM_X2APIC_TIMER_ICR:
		write_initial_count(a, val);
		return 0;
	case TRAPVM_X2APIC_TIMER_DCR:
		if (val & ~(u64)DCR_VALID)
			return TRAPVM_LAPIC_GP;
		write_dcr(a, val);
		return 0;
	case TRAPVM_X2APIC_SELF_IPI:
		return write_self_ipi(a, val);
	default:
		/* read-only (ID, version, PPR, LDR, ISR/TMR/IRR, CCR) or absent */
		return TRAPVM_LAPIC_GP;
	}
}

/* ---- IA32_APIC_BASE ---- */

u64 trapvm_lapic_get_apic_base(const struct trapvm_lapic *a)
{
	return a->apic_base;
}

static u64 apic_base_reserved(const struct trapvm_lapic *a)
{
	u64 valid = TRAPVM_APIC_BASE_BSP | TRAPVM_APIC_BASE_EXTD |
		    TRAPVM_APIC_BASE_EN;
	u8 phys = a->maxphyaddr ? a->maxphyaddr : 36;

	valid |= (phys >= 64 ? ~0ULL : (1ULL << phys) - 1) & ~0xfffULL;
	return ~valid;
}

int trapvm_lapic_set_apic_base(struct trapvm_lapic *a, u64 val,
			       bool host_initiated)
{
	u64 mode = TRAPVM_APIC_BASE_EN | TRAPVM_APIC_BASE_EXTD;
	u64 old = a->apic_base & mode, new = val & mode;

	if (val & apic_base_reserved(a))
		return TRAPVM_LAPIC_GP;
	/* EN=0, EXTD=1 is the invalid state */
	if (new == TRAPVM_APIC_BASE_EXTD)
		return TRAPVM_LAPIC_GP;
	/*
	 * SDM "x2APIC State Transitions": x2APIC -> xAPIC and
	 * disabled -> x2APIC are illegal; go through disabled / xAPIC.
	 */
	if (!host_initiated && old != new &&
	    ((old == mode && new == TRAPVM_APIC_BASE_EN) ||
	     (old == 0 && new == mode)))
		return TRAPVM_LAPIC_GP;

	a->apic_base = val;
	/* Disabling loses the APIC's state (back to its power-up state). */
	if (!new && old)
		trapvm_lapic_reset(a);
	/*
	 * xAPIC -> x2APIC keeps the registers; ID and LDR are derived from
	 * the vCPU id on every read, so there is nothing to convert.
	 */
	return 0;
}

/* ---- MSR entry points ---- */

bool trapvm_lapic_is_msr(u32 msr)
{
	return msr == TRAPVM_LAPIC_MSR_APIC_BASE || msr == TRAPVM_LAPIC_MSR_TSC_DEADLINE ||
	       (msr >= TRAPVM_LAPIC_MSR_FIRST &&
		msr <= TRAPVM_LAPIC_MSR_LAST);
}

int trapvm_lapic_rdmsr(struct trapvm_lapic *a, u32 msr, u64 *val)
{
	switch (msr) {
	case TRAPVM_LAPIC_MSR_APIC_BASE:
		*val = a->apic_base;
		return 0;
	case TRAPVM_LAPIC_MSR_TSC_DEADLINE:
		/* SDM: reads as 0 outside TSC-deadline mode */
		*val = timer_mode(a) == TRAPVM_APIC_TIMER_TSCDEADLINE ?
		       a->tsc_deadline : 0;
		return 0;
	}
	if (msr < TRAPVM_LAPIC_MSR_FIRST || msr > TRAPVM_LAPIC_MSR_LAST ||
	    !x2apic_mode(a))
		return TRAPVM_LAPIC_GP;
	return x2apic_read(a, msr, val);
}

int trapvm_lapic_wrmsr(struct trapvm_lapic *a, u32 msr, u64 val)
{
	switch (msr) {
	case TRAPVM_LAPIC_MSR_APIC_BASE:
		return trapvm_lapic_set_apic_base(a, val, false);
	case TRAPVM_LAPIC_MSR_TSC_DEADLINE:
		write_tsc_deadline(a, val);
		return 0;
	}
	if (msr < TRAPVM_LAPIC_MSR_FIRST || msr > TRAPVM_LAPIC_MSR_LAST ||
	    !x2apic_mode(a))
		return TRAPVM_LAPIC_GP;
	return x2apic_write(a, msr, val);
}

/* ---- the xAPIC MMIO interface ---- */

/* MMIO offset >> 4 is the x2APIC MSR number - 0x800 */
#define XAPIC_REG(msr)	((msr) - TRAPVM_LAPIC_MSR_FIRST)

bool trapvm_lapic_mmio_claims(const struct trapvm_lapic *a, u64 gpa)
{
	u64 base = a->apic_base & ~0xfffULL & ~apic_base_reserved(a);

	return hw_enabled(a) && !x2apic_mode(a) && gpa >= base &&
	       gpa < base + 0x1000;
}

void trapvm_lapic_mmio_read(struct trapvm_lapic *a, u32 offset,
			    unsigned int len, u32 *val)
{
	u32 reg = offset >> 4;
	u64 v = 0;

	*val = 0;
	if (len != 4 || (offset & 0xf) || offset >= 0x1000 || !hw_enabled(a))
		return;
	switch (reg) {
	case XAPIC_REG(TRAPVM_X2APIC_ID):
		*val = a->vcpu_id << 24;
		return;
	case XAPIC_REG(TRAPVM_X2APIC_LDR):
		*val = a->xapic_ldr;
		return;
	case 0x0e:				/* DFR */
		*val = a->xapic_dfr;
		return;
	case 0x09:				/* APR: no arbitration */
	case 0x0c:				/* RRD: no remote reads */
	case XAPIC_REG(TRAPVM_X2APIC_EOI):
		return;
	case XAPIC_REG(TRAPVM_X2APIC_ICR):
		*val = (u32)a->icr;
		return;
	case XAPIC_REG(TRAPVM_X2APIC_ICR) + 1:	/* ICR high: destination */
		*val = (a->icr >> 32) & 0xff000000u;
		return;
	case XAPIC_REG(TRAPVM_X2APIC_SELF_IPI):	/* x2APIC only */
		break;
	default:
		if (!x2apic_read(a, TRAPVM_LAPIC_MSR_FIRST + reg, &v)) {
			*val = v;
			return;
		}
	}
	raise_error(a, TRAPVM_APIC_ESR_ILLEGAL_REG);
}

void trapvm_lapic_mmio_write(struct trapvm_lapic *a, u32 offset,
			     unsigned int len, u32 val)
{
	u32 reg = offset >> 4;
	int lvt;

	if (len != 4 || (offset & 0xf) || offset >= 0x1000 || !hw_enabled(a))
		return;
	lvt = lvt_of_msr(TRAPVM_LAPIC_MSR_FIRST + reg);
	if (lvt >= 0) {
		val &= lvt_valid[lvt];
		/* a reserved timer mode leaves the entry as it was */
		write_lvt(a, lvt, val);
		return;
	}
	switch (reg) {
	case XAPIC_REG(TRAPVM_X2APIC_ID):	/* writes ignored, see docs */
	case XAPIC_REG(TRAPVM_X2APIC_VERSION):
	case 0x09:				/* APR */
	case XAPIC_REG(TRAPVM_X2APIC_PPR):
	case 0x0c:				/* RRD */
	case XAPIC_REG(TRAPVM_X2APIC_ISR0) ...
	     XAPIC_REG(TRAPVM_X2APIC_IRR0) + 7:
	case XAPIC_REG(TRAPVM_X2APIC_TIMER_CCR):
		return;
	case XAPIC_REG(TRAPVM_X2APIC_TPR):
		a->tpr = val & 0xff;
		return;
	case XAPIC_REG(TRAPVM_X2APIC_EOI):	/* any value */
		eoi(a);
		return;
	case XAPIC_REG(TRAPVM_X2APIC_LDR):
		a->xapic_ldr = val & 0xff000000u;
		return;
	case 0x0e:				/* DFR: only the model bits */
		a->xapic_dfr = val | 0x0fffffffu;
		return;
	case XAPIC_REG(TRAPVM_X2APIC_SVR):
		write_svr(a, val & SVR_VALID);
		return;
	case XAPIC_REG(TRAPVM_X2APIC_ESR):	/* any value */
		a->esr = a->esr_pending;
		a->esr_pending = 0;
		return;
	case XAPIC_REG(TRAPVM_X2APIC_ICR):	/* the low half sends */
		a->icr = (a->icr & ~0xffffffffULL) |
			 (val & ~(u32)(ICR_RESERVED | TRAPVM_APIC_ICR_DS));
		send_ipi(a);
		return;
	case XAPIC_REG(TRAPVM_X2APIC_ICR) + 1:
		a->icr = (a->icr & 0xffffffffULL) |
			 ((u64)(val & 0xff000000u) << 32);
		return;
	case XAPIC_REG(TRAPVM_X2APIC_TIMER_ICR):
		write_initial_count(a, val);
		return;
	case XAPIC_REG(TRAPVM_X2APIC_TIMER_DCR):
		write_dcr(a, val & DCR_VALID);
		return;
	}
	raise_error(a, TRAPVM_APIC_ESR_ILLEGAL_REG);
}

/* ---- CR8 ---- */

int trapvm_lapic_set_cr8(struct trapvm_lapic *a, u64 val)
{
	if (val & ~0xfULL)
		return TRAPVM_LAPIC_GP;
	a->tpr = (u32)val << 4;
	return 0;
}

u64 trapvm_lapic_get_cr8(const struct trapvm_lapic *a)
{
	return (a->tpr >> 4) & 0xf;
}

/* ---- reset ---- */

void trapvm_lapic_reset(struct trapvm_lapic *a)
{
	int i;

	timer_disarm(a);
	memset(a->irr, 0, sizeof(a->irr));
	memset(a->isr, 0, sizeof(a->isr));
	memset(a->tmr, 0, sizeof(a->tmr));
	a->tpr = 0;
	a->svr = 0xff;
	a->esr = 0;
	a->esr_pending = 0;
	a->icr = 0;
	a->xapic_ldr = 0;
	a->xapic_dfr = 0xffffffff;
	for (i = 0; i < TRAPVM_LVT_NR; i++)
		a->lvt[i] = TRAPVM_APIC_LVT_MASKED;
	a->timer_initial = 0;
	a->timer_dcr = 0;
	a->tsc_deadline = 0;
	a->timer_base_ns = 0;
	a->timer_base_count = 0;
	a->timer_expire_ns = 0;
	a->timer_grid_ns = 0;
}

void trapvm_lapic_init(struct trapvm_lapic *a, u32 vcpu_id, u8 maxphyaddr,
		       u32 tsc_khz, const struct trapvm_lapic_ops *ops,
		       void *ctx)
{
	memset(a, 0, sizeof(*a));
	a->ops = ops;
	a->ctx = ctx;
	a->vcpu_id = vcpu_id;
	a->maxphyaddr = maxphyaddr;
	a->tsc_khz = tsc_khz;
	/* As if firmware had enabled x2APIC mode (guest-abi.rst). */
	a->apic_base = TRAPVM_APIC_BASE_DEFAULT | TRAPVM_APIC_BASE_EN |
		       TRAPVM_APIC_BASE_EXTD;
	if (vcpu_id == 0)
		a->apic_base |= TRAPVM_APIC_BASE_BSP;
	trapvm_lapic_reset(a);
}
