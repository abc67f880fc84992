// SPDX-License-Identifier: GPL-2.0
/*
 * Kernel side of the virtual x2APIC: the hrtimer behind the APIC timer,
 * kicking the vCPU when it expires, and the hand-over of interrupts that
 * other threads queue in vcpu->pending_irqs.
 *
 * Concurrency.  The model (vcpu->apic->lapic) belongs to the holder of
 * vcpu->mutex, i.e. the vCPU thread inside TRAPVM_RUN or a register ioctl.
 * Everything else (the hrtimer callback, TRAPVM_INTERRUPT from another
 * thread) only sets bits and kicks; trapvm_vcpu_apic_sync(), called by the
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

static const struct trapvm_lapic_ops apic_ops = {
	.now_ns = apic_now_ns,
	.read_tsc = apic_read_tsc,
	.arm_timer = apic_arm_timer,
	.cancel_timer = apic_cancel_timer,
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
	apic_push(vcpu);
}

bool trapvm_vcpu_apic_events_pending(struct trapvm_vcpu *vcpu)
{
	if (!vcpu->apic)
		return false;
	return test_bit(TRAPVM_APIC_EV_TIMER, &vcpu->apic->events) ||
	       !bitmap_empty(vcpu->pending_irqs, TRAPVM_NR_VECTORS);
}

bool trapvm_vcpu_apic_has_work(struct trapvm_vcpu *vcpu)
{
	if (!vcpu->apic)
		return false;
	trapvm_vcpu_apic_sync(vcpu);
	return trapvm_lapic_has_work(&vcpu->apic->lapic);
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
