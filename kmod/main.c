// SPDX-License-Identifier: GPL-2.0
/*
 * trapvm: run guest kernels deprivileged at CPL3, without VT-x.
 *
 * This file: module init/exit and the /dev/trapvm misc device, the root
 * of the file-descriptor hierarchy described in <linux/trapvm.h>.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/module.h>
#include <linux/miscdevice.h>
#include <linux/fs.h>
#include <linux/mm.h>
#include <linux/uaccess.h>
#include <linux/stringify.h>
#include <asm/tsc.h>

#include "trapvm.h"

#define TRAPVM_MODULE_VERSION	"0.1.0-api" __stringify(TRAPVM_API_VERSION)

unsigned int trapvm_max_mem_mb = 4096;
module_param_named(max_mem_mb, trapvm_max_mem_mb, uint, 0444);
MODULE_PARM_DESC(max_mem_mb, "Largest guest RAM per VM, in MiB (default 4096)");

/* The largest TRAPVM_SET_MEMORY size that can succeed, 2 MiB aligned. */
u64 trapvm_max_mem_bytes(void)
{
	u64 max = (u64)trapvm_max_mem_mb << 20;
	u64 half = ((u64)totalram_pages() << PAGE_SHIFT) / 2;

	return round_down(min(max, half), 2ULL << 20);
}

static long trapvm_check_extension(unsigned long cap)
{
	switch (cap) {
	case TRAPVM_CAP_MAX_MEM_MB:
		return trapvm_max_mem_bytes() >> 20;
	case TRAPVM_CAP_MAX_VCPUS:
		return TRAPVM_MAX_VCPUS;
	case TRAPVM_CAP_VCPU_MMAP_SIZE:
		return PAGE_SIZE;
	case TRAPVM_CAP_IRQ_INJECT:
	case TRAPVM_CAP_STATS:
		return 1;
	case TRAPVM_CAP_TSC_KHZ:
		/* What the virtual APIC's TSC-deadline mode converts with. */
		return tsc_khz;
	default:
		return 0;
	}
}

static int trapvm_get_module_info(struct trapvm_module_info __user *argp)
{
	struct trapvm_module_info info;

	memset(&info, 0, sizeof(info));
	info.api_version = TRAPVM_API_VERSION;
	strscpy(info.version, TRAPVM_MODULE_VERSION, sizeof(info.version));
	if (copy_to_user(argp, &info, sizeof(info)))
		return -EFAULT;
	return 0;
}

static long trapvm_dev_ioctl(struct file *file, unsigned int cmd,
			     unsigned long arg)
{
	switch (cmd) {
	case TRAPVM_GET_API_VERSION:
		if (arg)
			return -EINVAL;
		return TRAPVM_API_VERSION;
	case TRAPVM_CREATE_VM:
		return trapvm_create_vm(arg);
	case TRAPVM_CHECK_EXTENSION:
		return trapvm_check_extension(arg);
	case TRAPVM_GET_VCPU_MMAP_SIZE:
		if (arg)
			return -EINVAL;
		return PAGE_SIZE;
	case TRAPVM_GET_MODULE_INFO:
		return trapvm_get_module_info((void __user *)arg);
	default:
		return -ENOTTY;
	}
}

static const struct file_operations trapvm_dev_fops = {
	.owner		= THIS_MODULE,
	.unlocked_ioctl	= trapvm_dev_ioctl,
	.compat_ioctl	= compat_ptr_ioctl,
	.llseek		= noop_llseek,
};

static struct miscdevice trapvm_dev = {
	.minor	= MISC_DYNAMIC_MINOR,
	.name	= "trapvm",
	.fops	= &trapvm_dev_fops,
};

static int __init trapvm_init(void)
{
	int ret;

	if (!trapvm_max_mem_mb) {
		pr_err("max_mem_mb must not be 0\n");
		return -EINVAL;
	}

	ret = misc_register(&trapvm_dev);
	if (ret) {
		pr_err("cannot register /dev/trapvm: %d\n", ret);
		return ret;
	}
	pr_info("version %s loaded\n", TRAPVM_MODULE_VERSION);
	return 0;
}

static void __exit trapvm_exit(void)
{
	misc_deregister(&trapvm_dev);
}

module_init(trapvm_init);
module_exit(trapvm_exit);

MODULE_DESCRIPTION("trapvm: deprivileged guest kernels without VT-x");
MODULE_AUTHOR("The trapvm authors");
MODULE_LICENSE("GPL");
MODULE_VERSION(TRAPVM_MODULE_VERSION);
