// SPDX-License-Identifier: GPL-2.0
/*
 * Local APIC timer, periodic at HZ.  Under trapvm (TRAPVM_BOOT_F_X2APIC)
 * the x2APIC MSR interface is used and the timer clock comes from the boot
 * information; natively (QEMU TCG has no x2APIC) the xAPIC MMIO page at
 * 0xfee00000 is used and both the TSC and the APIC timer are calibrated
 * against PIT channel 2.  The platform is never guessed from CPUID.
 */
#include "sparrow.h"

#define XAPIC_BASE	0xfee00000ULL
#define MSR_APIC_BASE	0x1b
#define APIC_BASE_EN	BIT_ULL(11)
#define APIC_BASE_X2	BIT_ULL(10)

/* Register offsets (xAPIC MMIO; x2APIC MSR = 0x800 + offset / 16). */
#define APIC_EOI	0x0b0
#define APIC_SVR	0x0f0
#define APIC_LVT_TIMER	0x320
#define APIC_TIMER_INIT	0x380
#define APIC_TIMER_CUR	0x390
#define APIC_TIMER_DIV	0x3e0
#define LVT_MASKED	BIT(16)
#define LVT_PERIODIC	BIT(17)

#define PIT_HZ		1193182
#define PIT_CH2		0x42
#define PIT_CMD		0x43
#define PIT_GATE	0x61

static bool x2apic;
u64 jiffies;
u64 tsc_khz;

static void apic_write(u32 reg, u32 v)
{
	if (x2apic)
		wrmsr(0x800 + reg / 16, v);
	else
		asm volatile("movl %0, %1" : : "r"(v),
			     "m"(*(u32 *)(XAPIC_BASE + reg)) : "memory");
}

static u32 apic_read(u32 reg)
{
	u32 v;

	if (x2apic)
		return (u32)rdmsr(0x800 + reg / 16);
	asm volatile("movl %1, %0" : "=r"(v) : "m"(*(u32 *)(XAPIC_BASE + reg))
		     : "memory");
	return v;
}

void apic_eoi(void)
{
	apic_write(APIC_EOI, 0);
}

static void pic_disable(void)
{
	/* Remap the 8259s away from the exception vectors, then mask. */
	outb(0x20, 0x11);
	outb(0xa0, 0x11);
	outb(0x21, 0xf0);
	outb(0xa1, 0xf8);
	outb(0x21, 0x04);
	outb(0xa1, 0x02);
	outb(0x21, 0x01);
	outb(0xa1, 0x01);
	outb(0x21, 0xff);
	outb(0xa1, 0xff);
}

static u16 pit_read_ch2(void)
{
	u8 lo, hi;

	outb(PIT_CMD, 0x80);		/* latch channel 2 */
	lo = inb(PIT_CH2);
	hi = inb(PIT_CH2);
	return lo | (hi << 8);
}

/*
 * Let PIT channel 2 count down for ~50 ms and see how far the TSC and the
 * APIC timer (free-running from 0xffffffff, divide by 1) moved meanwhile.
 */
static void calibrate(u64 *tsc_hz, u64 *apic_hz)
{
	const u32 want = PIT_HZ / 20;
	u32 elapsed = 0, apic0, apic1;
	u16 prev, now;
	u64 t0, t1;

	outb(PIT_GATE, (inb(PIT_GATE) & ~0x02) | 0x01);	/* gate on, no spkr */
	outb(PIT_CMD, 0xb0);		/* ch2, lo/hi, mode 0, binary */
	outb(PIT_CH2, 0xff);
	outb(PIT_CH2, 0xff);

	apic_write(APIC_TIMER_DIV, 0xb);	/* divide by 1 */
	apic_write(APIC_LVT_TIMER, LVT_MASKED);
	apic_write(APIC_TIMER_INIT, 0xffffffff);

	prev = pit_read_ch2();
	t0 = rdtsc();
	apic0 = apic_read(APIC_TIMER_CUR);
	while (elapsed < want) {
		now = pit_read_ch2();
		elapsed += (u16)(prev - now);
		prev = now;
	}
	t1 = rdtsc();
	apic1 = apic_read(APIC_TIMER_CUR);
	apic_write(APIC_TIMER_INIT, 0);

	*tsc_hz = (t1 - t0) * PIT_HZ / elapsed;
	*apic_hz = (u64)(apic0 - apic1) * PIT_HZ / elapsed;
}

void timer_init(void)
{
	u64 tsc_hz = boot_info.tsc_khz * 1000, apic_hz = boot_info.apic_timer_hz;
	u64 base = rdmsr(MSR_APIC_BASE);

	x2apic = boot_info.flags & TRAPVM_BOOT_F_X2APIC;
	if (!(boot_info.flags & TRAPVM_BOOT_F_TRAPVM))
		pic_disable();
	if (x2apic)
		wrmsr(MSR_APIC_BASE, base | APIC_BASE_EN | APIC_BASE_X2);
	else if (!(base & APIC_BASE_EN))
		wrmsr(MSR_APIC_BASE, base | APIC_BASE_EN);
	apic_write(APIC_SVR, 0x100 | VEC_SPURIOUS);

	if (!tsc_hz || !apic_hz) {
		u64 t, a;

		if (boot_info.flags & TRAPVM_BOOT_F_TRAPVM) {
			/* No PIT under trapvm: the loader must tell us. */
			t = 1000000000ULL;
			a = 1000000000ULL;
			kprintf("sparrow: no clock rates in boot info, guessing 1 GHz\n");
		} else {
			calibrate(&t, &a);
		}
		if (!tsc_hz)
			tsc_hz = t;
		if (!apic_hz)
			apic_hz = a;
	}
	tsc_khz = tsc_hz / 1000;
	kprintf("sparrow: %s, tsc %lu kHz, apic timer %lu Hz, HZ %d\n",
		x2apic ? "x2apic" : "xapic", tsc_khz, apic_hz, HZ);

	apic_write(APIC_TIMER_DIV, 0xb);
	apic_write(APIC_LVT_TIMER, LVT_PERIODIC | VEC_TIMER);
	apic_write(APIC_TIMER_INIT, (u32)(apic_hz / HZ));
}
