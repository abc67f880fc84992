/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vmctl's small library over /dev/trapvm: open the device, create a VM
 * with guest RAM mapped, create vCPUs with their run areas mapped.  Every
 * function prints what failed (which ioctl, strerror) to stderr and
 * returns -1 (errno preserved) on error.
 */
#ifndef VMCTL_VM_H
#define VMCTL_VM_H

#include <stddef.h>
#include <stdio.h>
#include <stdint.h>
#include <linux/trapvm.h>

struct vmctl_vm {
	int dev_fd;
	int vm_fd;
	uint64_t mem_size;
	uint8_t *mem;			/* guest RAM, guest-physical 0 */
};

struct vmctl_vcpu {
	int fd;
	unsigned int id;
	struct trapvm_run *run;
	size_t run_size;
};

/* open /dev/trapvm; a clear message when the module is not loaded */
int vmctl_open_dev(void);

/* ioctl() that reports failures as "vmctl: NAME: strerror" */
long vmctl_ioctl(int fd, unsigned long req, void *arg, const char *name);
#define VMCTL_IOCTL(fd, req, arg)	vmctl_ioctl(fd, req, (void *)(arg), #req)

int vmctl_vm_create(struct vmctl_vm *vm, uint64_t mem_size);
void vmctl_vm_destroy(struct vmctl_vm *vm);
int vmctl_vcpu_create(struct vmctl_vm *vm, struct vmctl_vcpu *vcpu,
		      unsigned int id);
void vmctl_vcpu_destroy(struct vmctl_vcpu *vcpu);

/* Parse "64", "64M", "2G", "4096k" (no suffix: MiB). 0 on success. */
int vmctl_parse_size(const char *s, uint64_t *bytes);

/* Print a vCPU's TRAPVM_GET_STATS counters by name, skipping zeroes. */
int vmctl_print_stats(int vcpu_fd, int all, FILE *f);

#endif /* VMCTL_VM_H */
