// SPDX-License-Identifier: GPL-2.0
/*
 * vmctl: open /dev/trapvm, create VMs and vCPUs, map their memory.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <linux/trapvm_stats.h>

#include "vm.h"

#define TRAPVM_DEV	"/dev/trapvm"

long vmctl_ioctl(int fd, unsigned long req, void *arg, const char *name)
{
	long ret = ioctl(fd, req, arg);

	if (ret < 0) {
		int err = errno;

		fprintf(stderr, "vmctl: %s: %s\n", name, strerror(err));
		errno = err;
	}
	return ret;
}

int vmctl_open_dev(void)
{
	int fd = open(TRAPVM_DEV, O_RDWR | O_CLOEXEC);
	int api;

	if (fd < 0) {
		int err = errno;

		if (err == ENOENT || err == ENODEV || err == ENXIO)
			fprintf(stderr, "vmctl: trapvm module not loaded (no %s)\n",
				TRAPVM_DEV);
		else
			fprintf(stderr, "vmctl: open %s: %s\n", TRAPVM_DEV,
				strerror(err));
		errno = err;
		return -1;
	}

	api = ioctl(fd, TRAPVM_GET_API_VERSION, 0);
	if (api != TRAPVM_API_VERSION) {
		fprintf(stderr,
			"vmctl: %s speaks API version %d, vmctl was built for %d\n",
			TRAPVM_DEV, api, TRAPVM_API_VERSION);
		close(fd);
		errno = EPROTO;
		return -1;
	}
	return fd;
}

int vmctl_vm_create(struct vmctl_vm *vm, uint64_t mem_size)
{
	struct trapvm_memory m = { .size = mem_size };

	memset(vm, 0, sizeof(*vm));
	vm->vm_fd = -1;
	vm->mem = MAP_FAILED;
	vm->dev_fd = vmctl_open_dev();
	if (vm->dev_fd < 0)
		return -1;

	vm->vm_fd = VMCTL_IOCTL(vm->dev_fd, TRAPVM_CREATE_VM, 0);
	if (vm->vm_fd < 0)
		goto err;
	if (VMCTL_IOCTL(vm->vm_fd, TRAPVM_SET_MEMORY, &m) < 0) {
		if (errno == E2BIG || errno == ENOMEM)
			fprintf(stderr,
				"vmctl: the module allows at most %d MiB of guest RAM\n",
				ioctl(vm->dev_fd, TRAPVM_CHECK_EXTENSION,
				      TRAPVM_CAP_MAX_MEM_MB));
		goto err;
	}
	vm->mem_size = mem_size;
	vm->mem = mmap(NULL, mem_size, PROT_READ | PROT_WRITE, MAP_SHARED,
		       vm->vm_fd, 0);
	if (vm->mem == MAP_FAILED) {
		fprintf(stderr, "vmctl: mmap of guest RAM: %s\n",
			strerror(errno));
		goto err;
	}
	return 0;

err:
	vmctl_vm_destroy(vm);
	return -1;
}

void vmctl_vm_destroy(struct vmctl_vm *vm)
{
	int err = errno;

	if (vm->mem && vm->mem != MAP_FAILED)
		munmap(vm->mem, vm->mem_size);
	vm->mem = MAP_FAILED;
	if (vm->vm_fd >= 0)
		close(vm->vm_fd);
	vm->vm_fd = -1;
	if (vm->dev_fd >= 0)
		close(vm->dev_fd);
	vm->dev_fd = -1;
	errno = err;
}

int vmctl_vcpu_create(struct vmctl_vm *vm, struct vmctl_vcpu *vcpu,
		      unsigned int id)
{
	long size;

	memset(vcpu, 0, sizeof(*vcpu));
	vcpu->id = id;
	vcpu->run = MAP_FAILED;
	size = VMCTL_IOCTL(vm->dev_fd, TRAPVM_GET_VCPU_MMAP_SIZE, 0);
	if (size < (long)sizeof(struct trapvm_run)) {
		if (size >= 0)
			fprintf(stderr, "vmctl: run area too small (%ld)\n",
				size);
		return -1;
	}
	vcpu->run_size = size;
	vcpu->fd = VMCTL_IOCTL(vm->vm_fd, TRAPVM_CREATE_VCPU, (unsigned long)id);
	if (vcpu->fd < 0)
		return -1;
	vcpu->run = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED,
			 vcpu->fd, 0);
	if (vcpu->run == MAP_FAILED) {
		fprintf(stderr, "vmctl: mmap of the vCPU run area: %s\n",
			strerror(errno));
		close(vcpu->fd);
		vcpu->fd = -1;
		return -1;
	}
	return 0;
}

void vmctl_vcpu_destroy(struct vmctl_vcpu *vcpu)
{
	if (vcpu->run && vcpu->run != MAP_FAILED)
		munmap(vcpu->run, vcpu->run_size);
	vcpu->run = MAP_FAILED;
	if (vcpu->fd >= 0)
		close(vcpu->fd);
	vcpu->fd = -1;
}

int vmctl_parse_size(const char *s, uint64_t *bytes)
{
	unsigned long long v;
	uint64_t shift = 20;
	char *end;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s || s[0] == '-')
		return -1;
	switch (*end) {
	case 'k': case 'K':
		shift = 10;
		end++;
		break;
	case 'm': case 'M':
		shift = 20;
		end++;
		break;
	case 'g': case 'G':
		shift = 30;
		end++;
		break;
	case '\0':
		break;
	default:
		return -1;
	}
	if (*end == 'i' && end[1] == 'B')
		end += 2;
	else if (*end == 'B')
		end++;
	if (*end || v > (UINT64_MAX >> shift))
		return -1;
	*bytes = (uint64_t)v << shift;
	return 0;
}

static const char *const stat_names[] = {
#define TRAPVM_STAT(id, name) [TRAPVM_STAT_##id] = name,
#include <linux/trapvm_stat_list.h>
};

int vmctl_print_stats(int vcpu_fd, int all, FILE *f)
{
	struct trapvm_vcpu_stats st;
	unsigned int i;

	if (VMCTL_IOCTL(vcpu_fd, TRAPVM_GET_STATS, &st) < 0)
		return -1;
	for (i = 0; i < st.nr && i < TRAPVM_STATS_MAX; i++) {
		if (!all && !st.count[i])
			continue;
		if (i < TRAPVM_STAT_NR)
			fprintf(f, "%-28s %llu\n", stat_names[i],
				(unsigned long long)st.count[i]);
		else	/* a newer module: counters vmctl has no name for */
			fprintf(f, "stat_%-23u %llu\n", i,
				(unsigned long long)st.count[i]);
	}
	return 0;
}
