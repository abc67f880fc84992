/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The virtual local APIC of a vCPU, in x2APIC mode (Intel SDM Vol. 3,
 * "Advanced Programmable Interrupt Controller").  Documentation/interrupts.rst
 * describes the model, its deviations and how the run loop uses it.
 *
 * The model (struct trapvm_lapic, vcpu/lapic.c) is kernel-agnostic: it
 * compiles into the module and into userspace unit tests.  Time comes from
 * callbacks (struct trapvm_lapic_ops) so tests can drive it with a fake
 * clock.  It is not thread-safe: only the owner of the vCPU (the holder of
 * vcpu->mutex) may call it.  Other threads hand interrupts over through
 * vcpu->pending_irqs, other vCPUs' IPIs through apic->ipi_pending and an
 * NMI event bit, and the hrtimer through an event bit (lapic_timer.c).
 */
#ifndef _TRAPVM_LAPIC_H
#define _TRAPVM_LAPIC_H

#include "glue.h"

/* Returned by the MSR and CR8 accessors: the guest gets #GP(0). */
#define TRAPVM_LAPIC_GP			13

/*
 * The timer's input clock: 1 GHz, so one tick is one nanosecond with
 * divide-by-1.  Reported to guests as trapvm_boot_info.apic_timer_hz.
 */
#define TRAPVM_LAPIC_TIMER_HZ		1000000000ULL
#define TRAPVM_LAPIC_NS_PER_TICK	1

/*
 * Periodic mode never programs the backing timer closer than this to the
 * current time: interrupts coalesce in IRR anyway, so a 1-tick period would
 * only burn host CPU.  The current-count register still follows the
 * programmed period exactly.
 */
#define TRAPVM_LAPIC_MIN_PERIOD_NS	100000ULL

/* MSRs */
#define TRAPVM_LAPIC_MSR_APIC_BASE	0x01b
#define TRAPVM_LAPIC_MSR_TSC_DEADLINE	0x6e0
#define TRAPVM_LAPIC_MSR_FIRST		0x800	/* the x2APIC range */
#define TRAPVM_LAPIC_MSR_LAST		0x8ff

#define TRAPVM_X2APIC_ID		0x802
#define TRAPVM_X2APIC_VERSION		0x803
#define TRAPVM_X2APIC_TPR		0x808
#define TRAPVM_X2APIC_PPR		0x80a
#define TRAPVM_X2APIC_EOI		0x80b
#define TRAPVM_X2APIC_LDR		0x80d
#define TRAPVM_X2APIC_SVR		0x80f
#define TRAPVM_X2APIC_ISR0		0x810	/* ..0x817 */
#define TRAPVM_X2APIC_TMR0		0x818	/* ..0x81f */
#define TRAPVM_X2APIC_IRR0		0x820	/* ..0x827 */
#define TRAPVM_X2APIC_ESR		0x828
#define TRAPVM_X2APIC_LVT_CMCI		0x82f
#define TRAPVM_X2APIC_ICR		0x830
#define TRAPVM_X2APIC_LVT_TIMER		0x832
#define TRAPVM_X2APIC_LVT_THERMAL	0x833
#define TRAPVM_X2APIC_LVT_PERF		0x834
#define TRAPVM_X2APIC_LVT_LINT0		0x835
#define TRAPVM_X2APIC_LVT_LINT1		0x836
#define TRAPVM_X2APIC_LVT_ERROR		0x837
#define TRAPVM_X2APIC_TIMER_ICR		0x838	/* initial count */
#define TRAPVM_X2APIC_TIMER_CCR		0x839	/* current count */
#define TRAPVM_X2APIC_TIMER_DCR		0x83e	/* divide configuration */
#define TRAPVM_X2APIC_SELF_IPI		0x83f

/* IA32_APIC_BASE */
#define TRAPVM_APIC_BASE_BSP		BIT_ULL(8)
#define TRAPVM_APIC_BASE_EXTD		BIT_ULL(10)	/* x2APIC mode */
#define TRAPVM_APIC_BASE_EN		BIT_ULL(11)	/* global enable */
#define TRAPVM_APIC_BASE_DEFAULT	0xfee00000ULL

/* Register fields */
#define TRAPVM_APIC_VERSION_VAL		0x14	/* integrated APIC */
#define TRAPVM_APIC_SVR_ENABLE		BIT(8)
#define TRAPVM_APIC_SVR_FOCUS		BIT(9)
#define TRAPVM_APIC_LVT_VECTOR		0xffu
#define TRAPVM_APIC_LVT_DM_MASK		(7u << 8)	/* delivery mode */
#define TRAPVM_APIC_LVT_DS		BIT(12)	/* delivery status */
#define TRAPVM_APIC_LVT_POLARITY	BIT(13)
#define TRAPVM_APIC_LVT_REMOTE_IRR	BIT(14)
#define TRAPVM_APIC_LVT_LEVEL		BIT(15)	/* trigger mode */
#define TRAPVM_APIC_LVT_MASKED		BIT(16)
#define TRAPVM_APIC_LVT_TIMER_MODE	(3u << 17)
#define TRAPVM_APIC_TIMER_ONESHOT	(0u << 17)
#define TRAPVM_APIC_TIMER_PERIODIC	BIT(17)
#define TRAPVM_APIC_TIMER_TSCDEADLINE	(2u << 17)

#define TRAPVM_APIC_ESR_SEND_ILLEGAL	BIT(5)
#define TRAPVM_APIC_ESR_RECV_ILLEGAL	BIT(6)
#define TRAPVM_APIC_ESR_ILLEGAL_REG	BIT(7)	/* xAPIC only */

#define TRAPVM_APIC_ICR_VECTOR		0xffULL
#define TRAPVM_APIC_ICR_DM_MASK		(7ULL << 8)
#define TRAPVM_APIC_ICR_DM_FIXED	(0ULL << 8)
#define TRAPVM_APIC_ICR_DM_LOWEST	BIT_ULL(8)	/* xAPIC only */
#define TRAPVM_APIC_ICR_DM_SMI		(2ULL << 8)
#define TRAPVM_APIC_ICR_DM_NMI		(4ULL << 8)
#define TRAPVM_APIC_ICR_DM_INIT		(5ULL << 8)
#define TRAPVM_APIC_ICR_DM_STARTUP	(6ULL << 8)
#define TRAPVM_APIC_ICR_LOGICAL		BIT_ULL(11)
#define TRAPVM_APIC_ICR_DS		BIT_ULL(12)	/* ignored in x2APIC */
#define TRAPVM_APIC_ICR_LEVEL_ASSERT	BIT_ULL(14)
#define TRAPVM_APIC_ICR_TRIGGER_LEVEL	BIT_ULL(15)
#define TRAPVM_APIC_ICR_SH_MASK		(3ULL << 18)	/* destination shorthand */
#define TRAPVM_APIC_ICR_SH_NONE		(0ULL << 18)
#define TRAPVM_APIC_ICR_SH_SELF		BIT_ULL(18)
#define TRAPVM_APIC_ICR_SH_ALL		(2ULL << 18)
#define TRAPVM_APIC_ICR_SH_OTHERS	(3ULL << 18)
#define TRAPVM_APIC_ICR_DEST_SHIFT	32

/* Local vector table entries, in the order of their MSRs. */
enum trapvm_lapic_lvt {
	TRAPVM_LVT_CMCI,
	TRAPVM_LVT_TIMER,
	TRAPVM_LVT_THERMAL,
	TRAPVM_LVT_PERF,
	TRAPVM_LVT_LINT0,
	TRAPVM_LVT_LINT1,
	TRAPVM_LVT_ERROR,
	TRAPVM_LVT_NR
};

/* trapvm_lapic_set_irq() results */
enum trapvm_lapic_irq_result {
	TRAPVM_LAPIC_IRQ_ACCEPTED,	/* IRR bit newly set */
	TRAPVM_LAPIC_IRQ_COALESCED,	/* IRR bit was already set */
	TRAPVM_LAPIC_IRQ_DISABLED,	/* APIC disabled: dropped */
	TRAPVM_LAPIC_IRQ_ILLEGAL,	/* vector 0..15: ESR, dropped */
};

/*
 * An interrupt message from an ICR write, decoded in the sender's mode
 * (x2APIC: 32-bit destination; xAPIC: 8-bit).  Only messages the model
 * sends (fixed, lowest priority, NMI with a legal vector) are built.
 */
enum trapvm_lapic_ipi_mode {
	TRAPVM_LAPIC_IPI_FIXED,
	TRAPVM_LAPIC_IPI_LOWEST,	/* xAPIC only */
	TRAPVM_LAPIC_IPI_NMI,
};

struct trapvm_lapic_ipi {
	u32 src;			/* the sender's APIC ID */
	u32 dest;			/* destination field */
	u8 vector;			/* fixed and lowest priority */
	u8 mode;			/* enum trapvm_lapic_ipi_mode */
	u8 shorthand;			/* ICR bits 19:18 */
	bool logical;			/* destination mode */
	bool x2apic;			/* the sender's mode */
	bool level;			/* trigger mode (TMR) */
};

/* How the model gets time and drives its backing timer. */
struct trapvm_lapic_ops {
	/* A monotonic clock, in nanoseconds. */
	u64 (*now_ns)(void *ctx);
	/* The TSC the guest reads with RDTSC. */
	u64 (*read_tsc)(void *ctx);
	/*
	 * Make sure trapvm_lapic_timer_expired() gets called once now_ns()
	 * reaches expire_ns (replacing any earlier request), or never.
	 */
	void (*arm_timer)(void *ctx, u64 expire_ns);
	void (*cancel_timer)(void *ctx);
	/*
	 * Optional: deliver an IPI to every vCPU it names (this one
	 * included: trapvm_lapic_deliver_ipi() on the own model) and
	 * return how many were named.  Without it, only this APIC is a
	 * destination and what is meant for others counts as dropped.
	 */
	unsigned int (*send_ipi)(void *ctx, const struct trapvm_lapic_ipi *ipi);
};

/* Counters for statistics and tests; never reset by the guest. */
struct trapvm_lapic_counters {
	u64 irqs_accepted;		/* IRR bits set, all sources */
	u64 irqs_coalesced;		/* already pending */
	u64 irqs_dropped;		/* APIC disabled or illegal vector */
	u64 irqs_acked;			/* IRR -> ISR (injected) */
	u64 eois;
	u64 timer_fired;		/* expiries, masked or not */
	u64 timer_masked;		/* expiries with the LVT masked */
	u64 ipis_self;			/* delivered to this vCPU */
	u64 ipis_dropped;		/* no destination matched */
	u64 ipis_unsupported;		/* INIT/SIPI/SMI/reserved modes */
	u64 ipis_sent;			/* messages x destinations reached */
	u64 ipis_received;		/* fixed/lowest IPIs taken (IRR) */
	u64 errors;			/* ESR bits raised */
	u64 timer_coalesced;		/* periodic expiries merged into one */
};

struct trapvm_lapic {
	const struct trapvm_lapic_ops *ops;
	void *ctx;

	u32 vcpu_id;			/* the x2APIC ID */
	u32 tsc_khz;			/* for TSC-deadline; 0 = unknown */
	u8 maxphyaddr;			/* reserved bits of APIC_BASE */

	u64 apic_base;
	u32 tpr;
	u32 svr;
	u32 esr;			/* what the guest reads */
	u32 esr_pending;		/* errors since the last ESR write */
	u64 icr;			/* xAPIC: destination in 63:56 */
	u32 xapic_ldr;			/* xAPIC mode: LDR and DFR */
	u32 xapic_dfr;
	u32 lvt[TRAPVM_LVT_NR];
	u32 irr[8], isr[8], tmr[8];

	/* Timer */
	u32 timer_initial;		/* initial-count register */
	u32 timer_dcr;			/* divide configuration register */
	u64 tsc_deadline;		/* IA32_TSC_DEADLINE, 0 = disarmed */
	u64 timer_base_ns;		/* counting started here ... */
	u32 timer_base_count;		/* ... from this count */
	bool timer_armed;		/* an expiry is due at timer_expire_ns */
	u64 timer_expire_ns;
	u64 timer_grid_ns;		/* periodic: first unhandled expiry */

	struct trapvm_lapic_counters stats;
};

/* Set up a vCPU's APIC in its reset state, with x2APIC mode enabled. */
void trapvm_lapic_init(struct trapvm_lapic *a, u32 vcpu_id, u8 maxphyaddr,
		       u32 tsc_khz, const struct trapvm_lapic_ops *ops,
		       void *ctx);
/* The SDM's power-up/INIT reset of the APIC registers (APIC_BASE kept). */
void trapvm_lapic_reset(struct trapvm_lapic *a);

/*
 * RDMSR/WRMSR of IA32_APIC_BASE (0x1b), IA32_TSC_DEADLINE (0x6e0) and the
 * x2APIC range 0x800-0x8ff.  Return 0, or TRAPVM_LAPIC_GP: the instruction
 * must raise #GP(0) and change nothing.
 */
bool trapvm_lapic_is_msr(u32 msr);
int trapvm_lapic_rdmsr(struct trapvm_lapic *a, u32 msr, u64 *val);
int trapvm_lapic_wrmsr(struct trapvm_lapic *a, u32 msr, u64 val);

u64 trapvm_lapic_get_apic_base(const struct trapvm_lapic *a);
/* host_initiated (SET_SREGS/SET_MSRS): any valid state, no transition rules */
int trapvm_lapic_set_apic_base(struct trapvm_lapic *a, u64 val,
			       bool host_initiated);

/*
 * The xAPIC interface: 32-bit accesses to the 4 KiB page at the APIC base
 * while the APIC is enabled in xAPIC mode.  trapvm_lapic_mmio_claims()
 * says whether a guest-physical address belongs to it now.  offset is
 * within the page; accesses that are not 4 bytes at a 16-byte aligned
 * offset read 0 and write nothing (the SDM leaves them undefined).  The
 * xAPIC raises no faults: reserved bits are ignored, reserved registers
 * set ESR "illegal register address".
 */
bool trapvm_lapic_mmio_claims(const struct trapvm_lapic *a, u64 gpa);
void trapvm_lapic_mmio_read(struct trapvm_lapic *a, u32 offset,
			    unsigned int len, u32 *val);
void trapvm_lapic_mmio_write(struct trapvm_lapic *a, u32 offset,
			     unsigned int len, u32 val);

/*
 * IPIs between vCPUs.  A destination's matching state (APIC ID, mode,
 * enable, xAPIC LDR and DFR model) packed into 64 bits, so that its owner
 * can publish it with WRITE_ONCE() and senders on other threads can match
 * against it with READ_ONCE() without touching the model.
 */
u64 trapvm_lapic_dest_key(const struct trapvm_lapic *a);
/* Does the message name the APIC whose key this is (SDM destination rules)? */
bool trapvm_lapic_ipi_match(const struct trapvm_lapic_ipi *ipi, u64 key);
/*
 * On the destination's owner: take a fixed or lowest-priority message
 * (IRR, counted in ipis_received).  NMIs are the caller's business.
 */
enum trapvm_lapic_irq_result
trapvm_lapic_deliver_ipi(struct trapvm_lapic *a,
			 const struct trapvm_lapic_ipi *ipi);

/* MOV to/from CR8: TPR[7:4].  Bits 63:4 set in a write: #GP. */
int trapvm_lapic_set_cr8(struct trapvm_lapic *a, u64 val);
u64 trapvm_lapic_get_cr8(const struct trapvm_lapic *a);

u32 trapvm_lapic_get_ppr(const struct trapvm_lapic *a);

/* A fixed, edge-triggered interrupt from a device (TRAPVM_INTERRUPT). */
enum trapvm_lapic_irq_result trapvm_lapic_set_irq(struct trapvm_lapic *a,
						  unsigned int vector);

/*
 * The vector the CPU would take now if its IF allowed it (highest IRR
 * whose priority class is above the PPR's), or -1.
 */
int trapvm_lapic_pending_irq(const struct trapvm_lapic *a);
/* After delivering vector through the guest IDT: IRR -> ISR. */
void trapvm_lapic_ack_irq(struct trapvm_lapic *a, int vector);
/* Something would wake HLT (a deliverable interrupt is pending). */
bool trapvm_lapic_has_work(const struct trapvm_lapic *a);

/*
 * The backing timer expired (or may have): if an expiry is due at now,
 * make the LVT timer vector pending unless masked, re-arm a periodic
 * timer, disarm the others.  Returns true if the timer expired.
 */
bool trapvm_lapic_timer_expired(struct trapvm_lapic *a, u64 now);
/* The timer's next expiry, if armed. */
bool trapvm_lapic_timer_next(const struct trapvm_lapic *a, u64 *expire_ns);

#ifdef __KERNEL__
#include <linux/hrtimer.h>

struct trapvm_vcpu;

/*
 * The kernel side of a vCPU's APIC (vcpu/lapic_timer.c), hung off
 * vcpu->apic.  The model is owned by the holder of vcpu->mutex; the
 * hrtimer callback only sets an event bit and kicks the vCPU.
 */
struct trapvm_vcpu_apic {
	struct trapvm_lapic lapic;
	struct trapvm_vcpu *vcpu;
	struct hrtimer timer;
	unsigned long events;		/* TRAPVM_APIC_EV_* bits, atomic */
	/* what vcpu->cpu.{apic_base,cr8} held when last synchronised */
	u64 seen_apic_base;
	u64 seen_cr8;
	/*
	 * IPIs from other vCPUs: set_bit() by the sender, then a kick; the
	 * owner moves them into the model.  dest_key is what senders match
	 * (trapvm_lapic_dest_key(), WRITE_ONCE by the owner).
	 */
	DECLARE_BITMAP(ipi_pending, 256);
	u64 dest_key;
	/*
	 * Owner only: an NMI is latched (one at most), and one was
	 * delivered with no IRET since (further NMIs wait).
	 */
	bool nmi_pending;
	bool nmi_blocked;
	u64 nmis_received;
};

#define TRAPVM_APIC_EV_TIMER		0	/* the hrtimer fired */
#define TRAPVM_APIC_EV_NMI		1	/* an NMI IPI was sent here */

/*
 * vCPU creation (after vcpu->cpu holds its reset state) and destruction
 * (no RUN in progress): allocate vcpu->apic, stop the timer.
 */
int trapvm_vcpu_apic_create(struct trapvm_vcpu *vcpu);
void trapvm_vcpu_apic_destroy(struct trapvm_vcpu *vcpu);

/*
 * Run loop, vCPU thread: fold expired timers and vcpu->pending_irqs into
 * the model, and reconcile vcpu->cpu.apic_base/cr8 with it (whoever wrote
 * those fields -- SET_SREGS, an emulated MOV CR8 -- is applied to the
 * model; the model's values are written back).  Call before
 * trapvm_lapic_pending_irq() on every entry.
 */
void trapvm_vcpu_apic_sync(struct trapvm_vcpu *vcpu);
/*
 * Cheap, any context: is there something for trapvm_vcpu_apic_sync()?
 * Check it with interrupts disabled right before entering the guest.
 */
bool trapvm_vcpu_apic_events_pending(struct trapvm_vcpu *vcpu);
/* HLT: sync, then is a deliverable interrupt pending?  For wait_event(). */
bool trapvm_vcpu_apic_has_work(struct trapvm_vcpu *vcpu);
/* Queue an interrupt from any context (like TRAPVM_INTERRUPT) and kick. */
void trapvm_vcpu_apic_post_irq(struct trapvm_vcpu *vcpu, unsigned int vector);
/*
 * For the emulator's rdmsr/wrmsr hooks: IA32_APIC_BASE, IA32_TSC_DEADLINE
 * and 0x800-0x8ff.  Return TRAPVM_MSR_OK, TRAPVM_MSR_GP, or
 * TRAPVM_MSR_UNHANDLED for other MSRs (<trapvm/emulate.h>).
 */
int trapvm_vcpu_apic_rdmsr(struct trapvm_vcpu *vcpu, u32 msr, u64 *val);
int trapvm_vcpu_apic_wrmsr(struct trapvm_vcpu *vcpu, u32 msr, u64 val);
/*
 * xAPIC page: does this guest-physical address belong to the vCPU's APIC
 * page now (enabled, xAPIC mode)?  Then the emulated load or store goes
 * to trapvm_vcpu_apic_mmio() instead of userspace; data is little-endian,
 * len bytes (anything but an aligned 32-bit access reads 0 and writes
 * nothing).
 */
bool trapvm_vcpu_apic_mmio_claims(struct trapvm_vcpu *vcpu, u64 gpa);
void trapvm_vcpu_apic_mmio(struct trapvm_vcpu *vcpu, u64 gpa,
			   unsigned int len, bool is_write, void *data);
/*
 * NMIs (from NMI IPIs): trapvm_vcpu_apic_nmi_pending() says one can be
 * delivered now (pending and not blocked by an earlier NMI's handler);
 * trapvm_vcpu_apic_nmi_ack() after delivering vector 2 blocks further
 * NMIs until trapvm_vcpu_apic_iret() (the guest executed IRET).
 */
bool trapvm_vcpu_apic_nmi_pending(struct trapvm_vcpu *vcpu);
void trapvm_vcpu_apic_nmi_ack(struct trapvm_vcpu *vcpu);
void trapvm_vcpu_apic_iret(struct trapvm_vcpu *vcpu);
/* MOV to/from CR8 (TRAPVM_MSR_OK or TRAPVM_MSR_GP for bits 63:4). */
int trapvm_vcpu_apic_set_cr8(struct trapvm_vcpu *vcpu, u64 val);
u64 trapvm_vcpu_apic_get_cr8(struct trapvm_vcpu *vcpu);
#endif /* __KERNEL__ */

#endif /* _TRAPVM_LAPIC_H */
