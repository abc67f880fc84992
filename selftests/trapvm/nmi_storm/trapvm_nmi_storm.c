// SPDX-License-Identifier: GPL-2.0
/*
 * Test-only helper for selftests/trapvm/switch_test: sends NMIs to one
 * CPU, one at a time, and counts them in a local NMI handler, so a test
 * can check that NMIs arriving while a trapvm guest runs on that CPU
 * reach the host exactly once (not lost, not doubled).
 *
 *   insmod trapvm_nmi_storm.ko cpu=1 count=2000
 *   cat /sys/module/trapvm_nmi_storm/parameters/{sent,received,lost}
 *
 * The storm runs in module init, from the CPU insmod runs on (which must
 * not be the target).  The next NMI is sent only after the previous one
 * was seen (or 1 s passed: counted as lost), so the hardware cannot
 * legitimately merge two of them.  An NMI seen with none outstanding is
 * not claimed: the kernel then logs it as an unknown NMI ("Uhhuh"),
 * which the test looks for.
 */
#include <linux/module.h>
#include <linux/delay.h>
#include <linux/atomic.h>
#include <linux/smp.h>
#include <asm/apic.h>
#include <asm/nmi.h>

static int cpu = 1;
module_param(cpu, int, 0444);
MODULE_PARM_DESC(cpu, "CPU to send NMIs to");

static unsigned int count = 1000;
module_param(count, uint, 0444);
MODULE_PARM_DESC(count, "NMIs to send");

static unsigned int sent, lost;
static atomic_t received = ATOMIC_INIT(0);
static atomic_t outstanding = ATOMIC_INIT(0);

static int get_received(char *buf, const struct kernel_param *kp)
{
	return sysfs_emit(buf, "%d\n", atomic_read(&received));
}

static const struct kernel_param_ops received_ops = {
	.get = get_received,
};

module_param(sent, uint, 0444);
module_param(lost, uint, 0444);
module_param_cb(received, &received_ops, NULL, 0444);

static int storm_nmi(unsigned int type, struct pt_regs *regs)
{
	if (smp_processor_id() != cpu)
		return NMI_DONE;
	if (atomic_dec_if_positive(&outstanding) < 0)
		return NMI_DONE;
	atomic_inc(&received);
	return NMI_HANDLED;
}

static int __init storm_init(void)
{
	unsigned int i, waited;
	int ret;

	if (cpu < 0 || cpu >= nr_cpu_ids || !cpu_online(cpu) ||
	    cpu == raw_smp_processor_id())
		return -EINVAL;
	ret = register_nmi_handler(NMI_LOCAL, storm_nmi, 0, "trapvm_storm");
	if (ret)
		return ret;
	for (i = 0; i < count; i++) {
		atomic_inc(&outstanding);
		apic->send_IPI(cpu, NMI_VECTOR);
		sent++;
		for (waited = 0; atomic_read(&outstanding); waited++) {
			if (waited == 1000000) {	/* 1 s */
				atomic_set(&outstanding, 0);
				lost++;
				break;
			}
			udelay(1);
		}
		if (!(i % 64))
			cond_resched();
	}
	unregister_nmi_handler(NMI_LOCAL, "trapvm_storm");
	return 0;
}

static void __exit storm_exit(void)
{
}

module_init(storm_init);
module_exit(storm_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("trapvm selftest: NMI storm to one CPU");
