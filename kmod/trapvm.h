/* SPDX-License-Identifier: GPL-2.0 */
/*
 * trapvm internal objects: the VM and the vCPU behind the file descriptors
 * of <linux/trapvm.h>.
 *
 * Lifetime.  A VM is reference counted (struct kref users): the VM file
 * holds one reference and every vCPU file holds one more, so a vCPU fd keeps
 * its VM (and the guest memory) alive after the VM fd is closed.  vCPUs
 * belong to their VM and are freed with it, as in KVM.  Every file's fops
 * has .owner = THIS_MODULE, so the module cannot be unloaded while any
 * /dev/trapvm, VM or vCPU fd (or mapping of one) exists.
 *
 * Locking, outermost first:
 *   vcpu->mutex      held for the whole of TRAPVM_RUN and by every ioctl
 *                    that reads or writes the vCPU's architectural state
 *                    (vcpu->cpu).  Code called from trapvm_vcpu_run() owns
 *                    vcpu->cpu, vcpu->run and vcpu->stats without more
 *                    locking.
 *   vm->lock         VM-wide state: vcpus[], nr_vcpus, setting the memory.
 *   vm->mem.lock     (spinlock) the per-page state of guest memory; see
 *                    guest_memory.h.
 * vm->lock is never taken while holding vcpu->mutex of the same VM except
 * in that order (vcpu->mutex, then vm->lock).
 */
#ifndef _TRAPVM_INTERNAL_H
#define _TRAPVM_INTERNAL_H

#include <linux/kref.h>
#include <linux/mutex.h>
#include <linux/wait.h>
#include <linux/bitmap.h>
#include <linux/sched.h>
#include <linux/trapvm.h>
#include <linux/trapvm_stats.h>
#include <trapvm/cpu.h>

#include "guest_memory.h"

#define TRAPVM_MAX_VCPUS	8
#define TRAPVM_NR_VECTORS	256

/* Subsystem state that other parts of the module hang off the objects. */
struct trapvm_vcpu_arch;		/* world switch, emulator (vcpu/) */
struct trapvm_vcpu_apic;		/* virtual x2APIC (vcpu/) */
struct trapvm_vcpu_mmu;			/* shadow MMU per vCPU (shadow/) */
struct trapvm_vm_mmu;			/* shadow MMU per VM (shadow/) */
struct trapvm_vm_balloon;		/* balloon and page sharing */

struct trapvm_vcpu {
	struct trapvm_vm *vm;
	u32 id;

	/* Serialises RUN and register access; see the locking rules above. */
	struct mutex mutex;

	/* The page shared with userspace through mmap() of the vCPU fd. */
	struct trapvm_run *run;

	/* Virtual architectural state (GET/SET_REGS, SREGS, MSRS). */
	struct trapvm_cpu cpu;

	/* TRAPVM_GET_STATS counters, indexed by enum trapvm_vcpu_stat. */
	u64 stats[TRAPVM_STAT_NR];

	/*
	 * External interrupts queued by TRAPVM_INTERRUPT (or by in-kernel
	 * devices): set_bit() from any context, then trapvm_vcpu_kick().
	 * The APIC code moves them into the guest.
	 */
	DECLARE_BITMAP(pending_irqs, TRAPVM_NR_VECTORS);

	/* Woken by trapvm_vcpu_kick(); a halted vCPU sleeps here. */
	wait_queue_head_t wq;

	/* The task inside TRAPVM_RUN, or NULL (for the kick IPI). */
	struct task_struct *run_task;

	/* For other subsystems; NULL until they set them up. */
	struct trapvm_vcpu_arch *arch;
	struct trapvm_vcpu_apic *apic;
	struct trapvm_vcpu_mmu *mmu;
};

struct trapvm_vm {
	struct kref users;
	struct mutex lock;		/* vcpus[], nr_vcpus, mem setup */

	struct trapvm_guest_mem mem;

	struct trapvm_vcpu *vcpus[TRAPVM_MAX_VCPUS];
	unsigned int nr_vcpus;

	struct trapvm_vm_mmu *mmu;
	struct trapvm_vm_balloon *balloon;
};

static inline void trapvm_vcpu_stat_inc(struct trapvm_vcpu *vcpu,
					enum trapvm_vcpu_stat stat)
{
	vcpu->stats[stat]++;
}

/* main.c */
extern unsigned int trapvm_max_mem_mb;
u64 trapvm_max_mem_bytes(void);

/* vm.c */
int trapvm_create_vm(unsigned long type);
void trapvm_vm_get(struct trapvm_vm *vm);
void trapvm_vm_put(struct trapvm_vm *vm);

/* vcpu/vcpu.c */
int trapvm_vcpu_create(struct trapvm_vm *vm, u32 id);
void trapvm_vcpu_destroy(struct trapvm_vcpu *vcpu);
void trapvm_vcpu_kick(struct trapvm_vcpu *vcpu);

/*
 * vcpu/run.c (the world switch): run the guest until userspace must act.
 * Called with vcpu->mutex held, signals not pending and immediate_exit
 * clear.  Fill vcpu->run->exit_reason (and the matching union member) and
 * return 0 to exit to userspace, -EINTR when a signal is pending (the
 * caller sets TRAPVM_EXIT_INTR), or another negative errno.
 */
int trapvm_vcpu_run(struct trapvm_vcpu *vcpu);

/*
 * vcpu/run.c: set up and tear down vcpu->arch (and whatever else the
 * world switch needs) when a vCPU is created and freed.  create runs with
 * vm->lock held after the architectural reset state is in vcpu->cpu;
 * destroy runs when the VM is freed (no RUN in progress, no fds left).
 */
int trapvm_vcpu_arch_create(struct trapvm_vcpu *vcpu);
void trapvm_vcpu_arch_destroy(struct trapvm_vcpu *vcpu);

#endif /* _TRAPVM_INTERNAL_H */
