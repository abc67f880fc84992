// SPDX-License-Identifier: GPL-2.0
/*
 * Kernel side of the virtual x2APIC: the hrtimer behind the APIC timer,
 * kicking the vCPU when it expires, the hand-over of interrupts that
 * other threads queue in vcpu->pending_irqs, IPIs between the vCPUs of a
 * VM (apic_send_ipi()), NMIs, and the xAPIC MMIO page.
 *
 * Concurrency.  The model (vcpu->apic->lapic) belongs to the holder of
 * vcpu->mutex, i.e. the vCPU thread inside TRAPVM_RUN or a register ioctl.
 * Everything else (the hrtimer callback, TRAPVM_INTERRUPT from another
 * thread, another vCPU's IPI) only sets bits and kicks; trapvm_vcpu_apic_sync(), called by the
 * run loop, folds those bits into the model.  The kick (trapvm_vcpu_kick(),
 * safe in hard interrupt context) wakes a halted vCPU (vcpu->wq) and sends
 * the reschedule IPI of kick_process() to the CPU running the vCPU thread:
 * taken as a host interrupt while the guest runs, it makes the world switch
 * return to the host, where the run loop sees the event.  When the hrtimer
 * fires on the vCPU's own CPU, its interrupt alone stops the guest.  The
 * run loop checks trapvm_vcpu_apic_events_pending() with interrupts
 * disabled right before entering the guest, so an IPI sent after that
 * check stays pending and exits the guest at once.
 *
 * The hrtimer runs in HRTIMER_MODE_ABS_HARD: the callback is a few atomic
 * operations, and hard-interrupt expiry gives the guest its timer interrupt
 * without a detour through the timer softirq (which ksoftirqd may run
 * milliseconds later on a loaded host).  It is not pinned: it fires on
 * whatever CPU armed it and the kick reaches the vCPU wherever it runs.
 */
#include <linux/hrtimer.h>
#include <linux/ktime.h>
#include <linux/rcupdate.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/wait.h>
#include <asm/msr.h>
#include <asm/processor.h>
#include <asm/tsc.h>

#include <linux/trapvm_guest.h>

#include "../trapvm.h"
#include "../trace.h"
#include <trapvm/emulate.h>
#include <trapvm/lapic.h>

static u64 apic_now_ns(void *ctx)
{
	return ktime_get_ns();
}

static u64 apic_read_tsc(void *ctx)
{
	/* Guest RDTSC runs natively: the deadline is in host TSC units. */
	return rdtsc();
}

static void apic_arm_timer(void *ctx, u64 expire_ns)
{
	struct trapvm_vcpu_apic *va = ctx;

	hrtimer_start(&va->timer, ns_to_ktime(expire_ns),
		      HRTIMER_MODE_ABS_HARD);
}

static void apic_cancel_timer(void *ctx)
{
	struct trapvm_vcpu_apic *va = ctx;

	/*
	 * Never waits: a callback already running only sets the event bit,
	 * and trapvm_lapic_timer_expired() ignores an expiry that is no
	 * longer due.
	 */
	hrtimer_try_to_cancel(&va->timer);
}

/*
 * Hand an IPI to vCPU t.  Its model belongs to its own thread (which may
 * be in the guest on another CPU, halted in vcpu->wq, or outside RUN):
 * set a bit, then kick, as TRAPVM_INTERRUPT does.  The target folds the
 * bit into its IRR in trapvm_vcpu_apic_sync(); a bit set after its last
 * check with interrupts off is caught by the kick's host IPI, one set
 * while it sleeps by the wake-up, one set while it is outside RUN waits
 * for the next RUN.  Our own model we change directly: we own it.
 */
static void apic_post_ipi(struct trapvm_vcpu_apic *va, struct trapvm_vcpu *t,
			  const struct trapvm_lapic_ipi *ipi)
{
	struct trapvm_vcpu_apic *ta = t->apic;

	if (ta == va) {
		if (ipi->mode == TRAPVM_LAPIC_IPI_NMI) {
			set_bit(TRAPVM_APIC_EV_NMI, &va->events);
		} else {
			va->lapic.stats.ipis_self++;
			trapvm_lapic_deliver_ipi(&va->lapic, ipi);
		}
		return;
	}
	if (ipi->mode == TRAPVM_LAPIC_IPI_NMI)
		set_bit(TRAPVM_APIC_EV_NMI, &ta->events);
	else
		set_bit(ipi->vector, ta->ipi_pending);
	/* the bit must be visible before the kick looks at the vCPU */
	smp_mb__after_atomic();
	trapvm_vcpu_kick(t);
}

/*
 * The model's send_ipi op: match every vCPU of the VM, in APIC ID order
 * (vm->vcpus[] is indexed by the ID; entries are published once and
 * freed only with the VM).  Lowest priority goes to the first match.
 */
static unsigned int apic_send_ipi(void *ctx,
				  const struct trapvm_lapic_ipi *ipi)
{
	struct trapvm_vcpu_apic *va = ctx;
	struct trapvm_vcpu *src = va->vcpu;
	struct trapvm_vm *vm = src->vm;
	unsigned int i, n = 0;

	for (i = 0; i < TRAPVM_MAX_VCPUS; i++) {
		struct trapvm_vcpu *t = READ_ONCE(vm->vcpus[i]);
		struct trapvm_vcpu_apic *ta;
		u64 key;

		if (!t)
			continue;
		ta = READ_ONCE(t->apic);
		if (!ta)
			continue;
		key = ta == va ? trapvm_lapic_dest_key(&va->lapic) :
				 READ_ONCE(ta->dest_key);
		if (!trapvm_lapic_ipi_match(ipi, key))
			continue;
		apic_post_ipi(va, t, ipi);
		n++;
		if (ipi->mode == TRAPVM_LAPIC_IPI_LOWEST)
			break;
	}
	trace_trapvm_ipi(src->id, ipi->dest, ipi->shorthand, ipi->logical,
			 ipi->vector, ipi->mode, n);
	return n;
}

static const struct trapvm_lapic_ops apic_ops = {
	.now_ns = apic_now_ns,
	.read_tsc = apic_read_tsc,
	.arm_timer = apic_arm_timer,
	.cancel_timer = apic_cancel_timer,
	.send_ipi = apic_send_ipi,
};

/*
 * vcpu->cpu keeps copies of IA32_APIC_BASE and CR8 for the register
 * ioctls and the emulator.  A copy that changed since the last push was
 * written by them: apply it to the model (as a host-initiated write for
 * APIC_BASE; guest WRMSRs should come through trapvm_vcpu_apic_wrmsr() to
 * get the transition rules).  Then write the model's values back.
 */
static void apic_pull(struct trapvm_vcpu *vcpu)
{
	struct trapvm_vcpu_apic *va = vcpu->apic;
	struct trapvm_cpu *cpu = &vcpu->cpu;

	if (cpu->apic_base != va->seen_apic_base)
		trapvm_lapic_set_apic_base(&va->lapic, cpu->apic_base, true);
	if (cpu->cr8 != va->seen_cr8)
		trapvm_lapic_set_cr8(&va->lapic, cpu->cr8 & 0xf);
}

static void apic_push(struct trapvm_vcpu *vcpu)
{
	struct trapvm_vcpu_apic *va = vcpu->apic;
	struct trapvm_cpu *cpu = &vcpu->cpu;

	cpu->apic_base = trapvm_lapic_get_apic_base(&va->lapic);
	cpu->cr8 = trapvm_lapic_get_cr8(&va->lapic);
	va->seen_apic_base = cpu->apic_base;
	va->seen_cr8 = cpu->cr8;

	/* the model counts; TRAPVM_GET_STATS shows copies */
	vcpu->stats[TRAPVM_STAT_APIC_TIMER_FIRED] = va->lapic.stats.timer_fired;
	vcpu->stats[TRAPVM_STAT_APIC_IRQS_COALESCED] =
		va->lapic.stats.irqs_coalesced;
	vcpu->stats[TRAPVM_STAT_APIC_IRQS_DROPPED] =
		va->lapic.stats.irqs_dropped;
	vcpu->stats[TRAPVM_STAT_APIC_IPIS_DROPPED] =
		va->lapic.stats.ipis_dropped;
	vcpu->stats[TRAPVM_STAT_APIC_IPIS_SENT] = va->lapic.stats.ipis_sent;
	vcpu->stats[TRAPVM_STAT_APIC_IPIS_RECEIVED] =
		va->lapic.stats.ipis_received;
	vcpu->stats[TRAPVM_STAT_APIC_NMIS_RECEIVED] = va->nmis_received;
	vcpu->stats[TRAPVM_STAT_APIC_IPIS_UNSUPPORTED] =
		va->lapic.stats.ipis_unsupported;
	vcpu->stats[TRAPVM_STAT_APIC_TIMER_COALESCED] =
		va->lapic.stats.timer_coalesced;

	/* what senders on other threads match against */
	WRITE_ONCE(va->dest_key, trapvm_lapic_dest_key(&va->lapic));
}

static enum hrtimer_restart apic_timer_fn(struct hrtimer *timer)
{
	struct trapvm_vcpu_apic *va =
		container_of(timer, struct trapvm_vcpu_apic, timer);

	set_bit(TRAPVM_APIC_EV_TIMER, &va->events);
	/* the event bit must be visible before the kick looks at the vCPU */
	smp_mb__after_atomic();
	trapvm_vcpu_kick(va->vcpu);
	/* a periodic timer is re-armed by the model in the vCPU thread */
	return HRTIMER_NORESTART;
}

int trapvm_vcpu_apic_create(struct trapvm_vcpu *vcpu)
{
	struct trapvm_vcpu_apic *va;

	/* what the boot info tells guests is what the model implements */
	BUILD_BUG_ON(TRAPVM_LAPIC_TIMER_HZ != TRAPVM_APIC_TIMER_HZ);
	BUILD_BUG_ON(TRAPVM_LAPIC_TIMER_HZ * TRAPVM_LAPIC_NS_PER_TICK !=
		     NSEC_PER_SEC);

	va = kzalloc(sizeof(*va), GFP_KERNEL_ACCOUNT);
	if (!va)
		return -ENOMEM;
	va->vcpu = vcpu;
	hrtimer_init(&va->timer, CLOCK_MONOTONIC, HRTIMER_MODE_ABS_HARD);
	va->timer.function = apic_timer_fn;
	trapvm_lapic_init(&va->lapic, vcpu->id, boot_cpu_data.x86_phys_bits,
			  tsc_khz, &apic_ops, va);
	/* start in the reset state vcpu.c chose for IA32_APIC_BASE */
	trapvm_lapic_set_apic_base(&va->lapic, vcpu->cpu.apic_base, true);
	vcpu->apic = va;
	apic_push(vcpu);
	return 0;
}

void trapvm_vcpu_apic_destroy(struct trapvm_vcpu *vcpu)
{
	struct trapvm_vcpu_apic *va = vcpu->apic;

	if (!va)
		return;
	/* no RUN in progress any more: wait for a running callback */
	hrtimer_cancel(&va->timer);
	vcpu->apic = NULL;
	kfree(va);
}

void trapvm_vcpu_apic_sync(struct trapvm_vcpu *vcpu)
{
	struct trapvm_vcpu_apic *va = vcpu->apic;
	unsigned int v;

	if (!va)
		return;
	apic_pull(vcpu);
	if (test_and_clear_bit(TRAPVM_APIC_EV_TIMER, &va->events))
		trapvm_lapic_timer_expired(&va->lapic, ktime_get_ns());

	if (!bitmap_empty(vcpu->pending_irqs, TRAPVM_NR_VECTORS)) {
		for_each_set_bit(v, vcpu->pending_irqs, TRAPVM_NR_VECTORS)
			if (test_and_clear_bit(v, vcpu->pending_irqs))
				trapvm_lapic_set_irq(&va->lapic, v);
	}
	/* fixed IPIs from other vCPUs: their senders checked the vector */
	if (!bitmap_empty(va->ipi_pending, TRAPVM_NR_VECTORS)) {
		struct trapvm_lapic_ipi ipi = {
			.mode = TRAPVM_LAPIC_IPI_FIXED,
		};

		for_each_set_bit(v, va->ipi_pending, TRAPVM_NR_VECTORS) {
			if (!test_and_clear_bit(v, va->ipi_pending))
				continue;
			ipi.vector = v;
			trapvm_lapic_deliver_ipi(&va->lapic, &ipi);
		}
	}
	/*
	 * An NMI latches (one at most) unless the APIC was disabled since
	 * the sender matched it.
	 */
	if (test_and_clear_bit(TRAPVM_APIC_EV_NMI, &va->events) &&
	    (trapvm_lapic_get_apic_base(&va->lapic) & TRAPVM_APIC_BASE_EN)) {
		va->nmi_pending = true;
		va->nmis_received++;
	}
	apic_push(vcpu);
}

bool trapvm_vcpu_apic_events_pending(struct trapvm_vcpu *vcpu)
{
	struct trapvm_vcpu_apic *va = vcpu->apic;

	if (!va)
		return false;
	return test_bit(TRAPVM_APIC_EV_TIMER, &va->events) ||
	       test_bit(TRAPVM_APIC_EV_NMI, &va->events) ||
	       !bitmap_empty(vcpu->pending_irqs, TRAPVM_NR_VECTORS) ||
	       !bitmap_empty(va->ipi_pending, TRAPVM_NR_VECTORS);
}

bool trapvm_vcpu_apic_has_work(struct trapvm_vcpu *vcpu)
{
	if (!vcpu->apic)
		return false;
	trapvm_vcpu_apic_sync(vcpu);
	return trapvm_lapic_has_work(&vcpu->apic->lapic) ||
	       trapvm_vcpu_apic_nmi_pending(vcpu);
}

bool trapvm_vcpu_apic_nmi_pending(struct trapvm_vcpu *vcpu)
{
	struct trapvm_vcpu_apic *va = vcpu->apic;

	return va && va->nmi_pending && !va->nmi_blocked;
}

void trapvm_vcpu_apic_nmi_ack(struct trapvm_vcpu *vcpu)
{
	struct trapvm_vcpu_apic *va = vcpu->apic;

	va->nmi_pending = false;
	va->nmi_blocked = true;
}

void trapvm_vcpu_apic_iret(struct trapvm_vcpu *vcpu)
{
	if (vcpu->apic)
		vcpu->apic->nmi_blocked = false;
}

bool trapvm_vcpu_apic_mmio_claims(struct trapvm_vcpu *vcpu, u64 gpa)
{
	if (!vcpu->apic)
		return false;
	apic_pull(vcpu);
	return trapvm_lapic_mmio_claims(&vcpu->apic->lapic, gpa);
}

void trapvm_vcpu_apic_mmio(struct trapvm_vcpu *vcpu, u64 gpa,
			   unsigned int len, bool is_write, void *data)
{
	struct trapvm_lapic *a = &vcpu->apic->lapic;
	u32 offset = gpa & 0xfff;
	u32 val = 0;

	trapvm_vcpu_stat_inc(vcpu, TRAPVM_STAT_APIC_MMIO);
	apic_pull(vcpu);
	if (is_write) {
		if (len == 4)
			memcpy(&val, data, 4);
		trapvm_lapic_mmio_write(a, offset, len, val);
	} else {
		trapvm_lapic_mmio_read(a, offset, len, &val);
		memset(data, 0, len);
		if (len == 4)
			memcpy(data, &val, 4);
	}
	apic_push(vcpu);
}

void trapvm_vcpu_apic_post_irq(struct trapvm_vcpu *vcpu, unsigned int vector)
{
	if (vector >= TRAPVM_NR_VECTORS)
		return;
	set_bit(vector, vcpu->pending_irqs);
	/* the bit must be visible before the kick looks at the vCPU */
	smp_mb__after_atomic();
	trapvm_vcpu_kick(vcpu);
}

int trapvm_vcpu_apic_rdmsr(struct trapvm_vcpu *vcpu, u32 msr, u64 *val)
{
	int ret;

	if (!vcpu->apic || !trapvm_lapic_is_msr(msr))
		return TRAPVM_MSR_UNHANDLED;
	apic_pull(vcpu);
	ret = trapvm_lapic_rdmsr(&vcpu->apic->lapic, msr, val);
	apic_push(vcpu);
	return ret ? TRAPVM_MSR_GP : TRAPVM_MSR_OK;
}

int trapvm_vcpu_apic_wrmsr(struct trapvm_vcpu *vcpu, u32 msr, u64 val)
{
	int ret;

	if (!vcpu->apic || !trapvm_lapic_is_msr(msr))
		return TRAPVM_MSR_UNHANDLED;
	apic_pull(vcpu);
	ret = trapvm_lapic_wrmsr(&vcpu->apic->lapic, msr, val);
	apic_push(vcpu);
	return ret ? TRAPVM_MSR_GP : TRAPVM_MSR_OK;
}

int trapvm_vcpu_apic_set_cr8(struct trapvm_vcpu *vcpu, u64 val)
{
	int ret;

	if (!vcpu->apic) {
		if (val >> 4)
			return TRAPVM_MSR_GP;
		vcpu->cpu.cr8 = val;
		return TRAPVM_MSR_OK;
	}
	apic_pull(vcpu);
	ret = trapvm_lapic_set_cr8(&vcpu->apic->lapic, val);
	apic_push(vcpu);
	return ret ? TRAPVM_MSR_GP : TRAPVM_MSR_OK;
}

u64 trapvm_vcpu_apic_get_cr8(struct trapvm_vcpu *vcpu)
{
	if (!vcpu->apic)
		return vcpu->cpu.cr8;
	apic_pull(vcpu);
	return trapvm_lapic_get_cr8(&vcpu->apic->lapic);
}
