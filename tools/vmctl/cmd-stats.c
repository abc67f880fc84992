// SPDX-License-Identifier: GPL-2.0
/*
 * vmctl stats: per-vCPU counters (TRAPVM_GET_STATS).
 *
 * A vCPU's counters can only be read through its fd, which only the
 * process running the VM holds; until the module exports them another way
 * (the netlink family), `vmctl run --stats` prints them when a guest ends,
 * and this command shows the counter names and a fresh vCPU's values.
 */
#include <stdio.h>
#include <string.h>

#include "vmctl.h"
#include "vm.h"

static int stats_main(int argc, char **argv)
{
	struct vmctl_vcpu vcpu;
	struct vmctl_vm vm;
	int ret;

	if (argc > 1 && strcmp(argv[1], "--fresh")) {
		fprintf(stderr,
			"vmctl stats: reading another process's VM is not supported yet;\n"
			"use `vmctl run --stats KERNEL.elf` to print a guest's counters\n");
		return VMCTL_EXIT_USAGE;
	}

	if (vmctl_vm_create(&vm, 2 << 20) < 0)
		return VMCTL_EXIT_ERROR;
	if (vmctl_vcpu_create(&vm, &vcpu, 0) < 0) {
		vmctl_vm_destroy(&vm);
		return VMCTL_EXIT_ERROR;
	}
	printf("# counters of a new vCPU (in-process only, see vmctl help stats)\n");
	ret = vmctl_print_stats(vcpu.fd, 1, stdout);
	vmctl_vcpu_destroy(&vcpu);
	vmctl_vm_destroy(&vm);
	return ret ? VMCTL_EXIT_ERROR : 0;
}

static struct vmctl_command stats_cmd = {
	.name = "stats",
	.summary = "per-vCPU counters (exits, emulations, shadow MMU)",
	.usage = "usage: vmctl stats [--fresh]\n\n"
		 "Counters are read through the vCPU fd, so only the process that\n"
		 "runs a VM can see them for now: `vmctl run --stats KERNEL.elf`\n"
		 "prints them when the guest ends.  This command creates a fresh\n"
		 "VM and lists every counter name with its (zero) value.\n",
	.main = stats_main,
};
VMCTL_COMMAND(stats_cmd)
