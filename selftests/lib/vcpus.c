// SPDX-License-Identifier: GPL-2.0
/*
 * More than one vCPU per VM: handles for vCPU 0 and for added vCPUs, an
 * entry point with its own stack, RUN until the guest reports a code on
 * the test's port, a thread body and the vCPU's counters.  See the
 * "vCPUs" section of trapvm_test.h.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include <linux/trapvm.h>

#include "trapvm_test.h"

extern const unsigned char guest_fn_returned[];

void tvm_vcpu0(struct tvm *vm, struct tvm_vcpu *v, uint16_t port)
{
	memset(v, 0, sizeof(*v));
	v->vm = vm;
	v->fd = vm->vcpu;
	v->run = vm->run;
	v->port = port;
}

int tvm_vcpu_add(struct tvm *vm, int id, struct tvm_vcpu *v, uint16_t port)
{
	struct trapvm_sregs sr;
	int err;

	memset(v, 0, sizeof(*v));
	v->vm = vm;
	v->id = id;
	v->port = port;
	v->fd = ioctl(vm->vm, TRAPVM_CREATE_VCPU, id);
	if (v->fd < 0)
		return -errno;
	v->run = mmap(NULL, vm->run_size, PROT_READ | PROT_WRITE, MAP_SHARED,
		      v->fd, 0);
	if (v->run == MAP_FAILED) {
		err = -errno;
		close(v->fd);
		return err;
	}
	v->run_size = vm->run_size;
	/*
	 * vCPU 0's segments, descriptor tables, paging and control
	 * registers; an APIC of its own that is not the BSP's.
	 */
	if (ioctl(vm->vcpu, TRAPVM_GET_SREGS, &sr))
		goto fail;
	sr.apic_base &= ~(1ULL << 8);
	if (ioctl(v->fd, TRAPVM_SET_SREGS, &sr))
		goto fail;
	return 0;
fail:
	err = -errno;
	tvm_vcpu_close(v);
	return err;
}

void tvm_vcpu_close(struct tvm_vcpu *v)
{
	/* vCPU 0 (run_size 0) belongs to the struct tvm */
	if (!v->run_size)
		return;
	munmap(v->run, v->run_size);
	close(v->fd);
	v->run_size = 0;
	v->fd = -1;
}

int tvm_vcpu_enter(struct tvm_vcpu *v, void *fn, uint64_t arg,
		   uint64_t stack_top)
{
	struct trapvm_regs regs = {
		.rip = (uint64_t)fn,
		.rsp = stack_top - 8,
		.rdi = arg,
		.rflags = 0x2,
	};

	/* as tvm_enter(): a guest function that returns makes a DONE ucall */
	*(uint64_t *)tvm_gpa(v->vm, stack_top - 8) =
		(uint64_t)guest_fn_returned;
	return ioctl(v->fd, TRAPVM_SET_REGS, &regs) ? -errno : 0;
}

int tvm_vcpu_run(struct tvm_vcpu *v)
{
	struct trapvm_run *run = v->run;
	uint32_t code;

	for (;;) {
		if (ioctl(v->fd, TRAPVM_RUN, 0)) {
			if (errno == EINTR && !v->stop_on_eintr)
				continue;
			snprintf(v->why, sizeof(v->why), "RUN: %s",
				 strerror(errno));
			return -errno;
		}
		if (run->exit_reason == TRAPVM_EXIT_IO &&
		    run->io.direction == TRAPVM_EXIT_IO_OUT &&
		    run->io.port == v->port && run->io.size == 4) {
			memcpy(&code, (char *)run + run->io.data_offset, 4);
			v->code = code;
			return 0;
		}
		snprintf(v->why, sizeof(v->why),
			 "unexpected exit %u (io port %#x, mmio %#llx)",
			 run->exit_reason,
			 run->exit_reason == TRAPVM_EXIT_IO ? run->io.port : 0,
			 run->exit_reason == TRAPVM_EXIT_MMIO ?
			 (unsigned long long)run->mmio.phys_addr : 0ULL);
		return -EIO;
	}
}

void *tvm_vcpu_thread(void *arg)
{
	struct tvm_vcpu *v = arg;

	v->ret = tvm_vcpu_run(v);
	return NULL;
}

int tvm_vcpus_run(struct tvm_vcpu *v, int n)
{
	pthread_t *t = calloc(n, sizeof(*t));
	int i, err = 0;

	if (!t)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		err = pthread_create(&t[i], NULL, tvm_vcpu_thread, &v[i]);
		if (err)
			break;
	}
	n = i;
	for (i = 0; i < n; i++)
		pthread_join(t[i], NULL);
	free(t);
	return -err;
}

uint64_t tvm_vcpu_stat(struct tvm_vcpu *v, unsigned int counter)
{
	struct trapvm_vcpu_stats st;

	if (counter >= TRAPVM_STATS_MAX ||
	    ioctl(v->fd, TRAPVM_GET_STATS, &st))
		return ~0ULL;
	return st.count[counter];
}
