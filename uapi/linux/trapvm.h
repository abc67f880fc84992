/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * trapvm: the /dev/trapvm ioctl ABI.
 *
 * The file-descriptor hierarchy follows KVM's:
 *
 *   /dev/trapvm  --TRAPVM_CREATE_VM-->  VM fd  --TRAPVM_CREATE_VCPU-->  vCPU fd
 *
 * Guest RAM is owned by the module and mapped by mmap() on the VM fd
 * (offset 0 is guest-physical address 0).  Each vCPU fd can be mmap()ed
 * at offset 0 for TRAPVM_GET_VCPU_MMAP_SIZE bytes to get the
 * struct trapvm_run shared with userspace.
 *
 * Every structure has explicit padding and fixed-size fields so that the
 * layout is identical for every compiler; reserved fields must be zero.
 */
#ifndef _UAPI_LINUX_TRAPVM_H
#define _UAPI_LINUX_TRAPVM_H

#include <linux/types.h>
#include <linux/ioctl.h>

#define TRAPVM_API_VERSION	1

#define TRAPVMIO		0xAF	/* shared with KVM's magic; numbers differ */

/* Extensions, queried with TRAPVM_CHECK_EXTENSION (0 = absent). */
#define TRAPVM_CAP_MAX_MEM_MB		1	/* returns the largest VM, in MiB */
#define TRAPVM_CAP_MAX_VCPUS		2	/* returns vCPUs per VM */
#define TRAPVM_CAP_VCPU_MMAP_SIZE	3	/* returns the run area size */
#define TRAPVM_CAP_IRQ_INJECT		4	/* TRAPVM_INTERRUPT works */
#define TRAPVM_CAP_STATS		5	/* TRAPVM_GET_STATS works */
#define TRAPVM_CAP_TSC_KHZ		6	/* returns the host TSC kHz (0: unknown) */

/* ioctls on /dev/trapvm */
#define TRAPVM_GET_API_VERSION		_IO(TRAPVMIO, 0x00)
#define TRAPVM_CREATE_VM		_IO(TRAPVMIO, 0x01) /* arg: type, 0 */
#define TRAPVM_CHECK_EXTENSION		_IO(TRAPVMIO, 0x03) /* arg: cap */
#define TRAPVM_GET_VCPU_MMAP_SIZE	_IO(TRAPVMIO, 0x04)
#define TRAPVM_GET_MODULE_INFO	_IOR(TRAPVMIO, 0x05, struct trapvm_module_info)

struct trapvm_module_info {
	__u32 api_version;
	__u32 reserved;
	char version[32];		/* module version string, NUL-terminated */
};

/* ioctls on a VM fd */
#define TRAPVM_SET_MEMORY	_IOW(TRAPVMIO, 0x10, struct trapvm_memory)
#define TRAPVM_CREATE_VCPU	_IO(TRAPVMIO, 0x11) /* arg: vcpu id */
#define TRAPVM_GET_VM_INFO	_IOR(TRAPVMIO, 0x12, struct trapvm_vm_info)

/*
 * Guest RAM: one contiguous range of guest-physical memory starting at 0,
 * backed by module-owned pages allocated on first touch.  Can be set once,
 * before the first vCPU is created.  size must be a multiple of 2 MiB.
 */
struct trapvm_memory {
	__u64 size;			/* bytes */
	__u32 flags;			/* must be 0 */
	__u32 reserved;
};

struct trapvm_vm_info {
	__u64 mem_size;			/* bytes of guest RAM, 0 if not set */
	__u64 pages_allocated;		/* module-owned pages backing RAM now */
	__u32 nr_vcpus;
	__u32 reserved[5];
};

/* ioctls on a vCPU fd */
#define TRAPVM_RUN		_IO(TRAPVMIO, 0x20)
#define TRAPVM_GET_REGS		_IOR(TRAPVMIO, 0x21, struct trapvm_regs)
#define TRAPVM_SET_REGS		_IOW(TRAPVMIO, 0x22, struct trapvm_regs)
#define TRAPVM_GET_SREGS	_IOR(TRAPVMIO, 0x23, struct trapvm_sregs)
#define TRAPVM_SET_SREGS	_IOW(TRAPVMIO, 0x24, struct trapvm_sregs)
#define TRAPVM_GET_MSRS		_IOWR(TRAPVMIO, 0x25, struct trapvm_msrs)
#define TRAPVM_SET_MSRS		_IOW(TRAPVMIO, 0x26, struct trapvm_msrs)
#define TRAPVM_INTERRUPT	_IOW(TRAPVMIO, 0x27, struct trapvm_interrupt)
#define TRAPVM_GET_STATS	_IOR(TRAPVMIO, 0x28, struct trapvm_vcpu_stats)

/* General-purpose registers, as in the architecture's encoding order. */
struct trapvm_regs {
	__u64 rax, rcx, rdx, rbx, rsp, rbp, rsi, rdi;
	__u64 r8, r9, r10, r11, r12, r13, r14, r15;
	__u64 rip, rflags;		/* rflags as the guest sees it */
};

struct trapvm_segment {
	__u64 base;
	__u32 limit;
	__u16 selector;
	__u8  type;			/* descriptor type field (4 bits) */
	__u8  present, dpl, db, s, l, g, avl;
	__u8  unusable;
	__u8  padding;
};

struct trapvm_dtable {
	__u64 base;
	__u16 limit;
	__u16 padding[3];
};

/* Architectural state the guest kernel sees (virtual, not hardware). */
struct trapvm_sregs {
	struct trapvm_segment cs, ds, es, fs, gs, ss;
	struct trapvm_segment tr, ldt;
	struct trapvm_dtable gdt, idt;
	__u64 cr0, cr2, cr3, cr4, cr8;
	__u64 efer;
	__u64 apic_base;
	__u32 cpl;			/* virtual CPL: 0..3 */
	__u32 reserved[7];
};

struct trapvm_msr_entry {
	__u32 index;
	__u32 reserved;
	__u64 data;
};

/*
 * GET_MSRS/SET_MSRS: nmsrs entries follow.  Processing stops at the
 * first MSR the vCPU does not implement; the ioctl returns the number
 * of entries processed.
 */
struct trapvm_msrs {
	__u32 nmsrs;
	__u32 pad;
	struct trapvm_msr_entry entries[];
};

#define TRAPVM_MAX_MSRS		64

/* Inject an external interrupt (a device vCPU emulates in userspace). */
struct trapvm_interrupt {
	__u32 vector;			/* 32..255 */
	__u32 flags;			/* must be 0 */
};

/*
 * Exit reasons.  Everything the module counts is in the per-vCPU
 * statistics below; these are only the exits userspace has to handle.
 */
#define TRAPVM_EXIT_UNKNOWN		0
#define TRAPVM_EXIT_IO			1	/* port I/O to emulate */
#define TRAPVM_EXIT_MMIO		2	/* access outside RAM */
#define TRAPVM_EXIT_SHUTDOWN		3	/* triple fault or HLT, IF=0 */
#define TRAPVM_EXIT_HYPERCALL		4	/* VMCALL not handled in kernel */
#define TRAPVM_EXIT_INTERNAL_ERROR	5	/* guest killed; see suberror */
#define TRAPVM_EXIT_INTR		6	/* signal pending; RUN gave -EINTR */
#define TRAPVM_EXIT_DEBUG		7	/* raw hardware exit (trapvm.raw_exits) */
#define TRAPVM_EXIT_IRQ_WINDOW_OPEN	8	/* request_interrupt_window met */

#define TRAPVM_EXIT_IO_IN		0
#define TRAPVM_EXIT_IO_OUT		1

#define TRAPVM_INTERNAL_ERROR_EMULATION	1
#define TRAPVM_INTERNAL_ERROR_MEMORY	2
#define TRAPVM_INTERNAL_ERROR_SWITCHER	3	/* fault inside the world switch */
/*
 * The vCPU state cannot be entered (RUN did not enter the guest).
 * data[0] says why: TRAPVM_INVALID_STATE_*; data[1..6]: CR0, EFER, CS
 * descriptor bits 40..55 (L is bit 13), FS base, GS base, RIP.
 */
#define TRAPVM_INTERNAL_ERROR_INVALID_STATE	4

#define TRAPVM_INVALID_STATE_MODE	1	/* not 64-bit mode with paging */
#define TRAPVM_INVALID_STATE_BASE	2	/* FS/GS base not canonical */

/*
 * request_interrupt_window: RUN returns TRAPVM_EXIT_IRQ_WINDOW_OPEN as
 * soon as the vCPU could take an external interrupt (what
 * ready_for_interrupt_injection says); clear it to run on.
 * ready_for_interrupt_injection, if_flag: filled on every return from RUN.
 */
struct trapvm_run {
	/* in */
	__u8  request_interrupt_window;
	__u8  immediate_exit;		/* return -EINTR before entering */
	__u8  padding1[6];

	/* out */
	__u32 exit_reason;
	__u8  ready_for_interrupt_injection;
	__u8  if_flag;
	__u8  padding2[2];
	__u64 cr8;
	__u64 apic_base;

	union {
		/* TRAPVM_EXIT_IO: data is at (char *)run + data_offset */
		struct {
			__u8  direction;
			__u8  size;		/* 1, 2, 4 */
			__u16 port;
			__u32 count;		/* > 1 for REP INS/OUTS */
			__u64 data_offset;
		} io;
		/* TRAPVM_EXIT_MMIO */
		struct {
			__u64 phys_addr;
			__u8  data[8];
			__u32 len;
			__u8  is_write;
			__u8  padding[3];
		} mmio;
		/* TRAPVM_EXIT_HYPERCALL: set ret, then RUN again */
		struct {
			__u64 nr;
			__u64 args[4];
			__u64 ret;
		} hypercall;
		/* TRAPVM_EXIT_SHUTDOWN */
		struct {
			__u32 reason;		/* TRAPVM_SHUTDOWN_* */
			__u32 padding;
		} shutdown;
		/* TRAPVM_EXIT_INTERNAL_ERROR */
		struct {
			__u32 suberror;
			__u32 ndata;
			__u64 data[16];
		} internal;
		/*
		 * TRAPVM_EXIT_DEBUG: with the module parameter raw_exits set,
		 * every exit the guest itself caused is reported as the
		 * hardware saw it (for tests of the world switch): vector
		 * 0..255, or 256 for SYSCALL (rip is then past it).
		 */
		struct {
			__u32 vector;
			__u32 error_code;
			__u64 cr2;
			__u64 rip;
		} debug;
		char padding[256];
	};
};

#define TRAPVM_SHUTDOWN_TRIPLE_FAULT	1
#define TRAPVM_SHUTDOWN_HLT		2	/* HLT with IF=0, none pending */

/*
 * Per-vCPU counters (TRAPVM_GET_STATS).  The names and order are given by
 * <linux/trapvm_stat_list.h>; count[] has nr entries,
 * and new counters are only ever appended.
 */
#define TRAPVM_STATS_MAX	256

struct trapvm_vcpu_stats {
	__u32 nr;
	__u32 reserved;
	__u64 count[TRAPVM_STATS_MAX];
};

/* Offset of the I/O data area inside the vCPU mapping. */
#define TRAPVM_RUN_IO_DATA_OFFSET	2048

#endif /* _UAPI_LINUX_TRAPVM_H */
