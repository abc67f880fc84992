/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * trapvm guest ABI: what a guest kernel started by `vmctl run` finds.
 * Documentation/guest-abi.rst is the prose version of this file.
 *
 * Entry state (set up by the loader in vmctl):
 *   - 64-bit long mode, virtual CPL0, paging on, CR0.PG|PE|WP, CR4.PAE,
 *     EFER.LME|LMA|NXE; CR3 points at loader-built tables that identity
 *     map all guest RAM with 2 MiB pages (supervisor, writable, executable)
 *   - flat GDT in guest RAM with the selectors below; CS = 0x10,
 *     SS = DS = ES = 0x18, FS = GS = 0 with base 0; no IDT (limit 0), no TSS
 *   - RFLAGS = 0x2 (IF = 0), RIP = ELF entry, RDI = guest-physical address
 *     of struct trapvm_boot_info, RSP = top of a 16 KiB boot stack in RAM
 *   - everything the loader placed (kernel, tables, boot info, command
 *     line, stack) is described by the memory map as RESERVED or KERNEL
 *
 * Guest-physical layout: RAM from 0 to mem_size.  Accesses to other
 * guest-physical addresses are MMIO exits to the VMM.
 */
#ifndef _UAPI_LINUX_TRAPVM_GUEST_H
#define _UAPI_LINUX_TRAPVM_GUEST_H

#include <linux/types.h>

/* Boot GDT selectors (the same layout as Linux's, so SYSCALL/SYSRET work). */
#define TRAPVM_GUEST_KERNEL_CS		0x10
#define TRAPVM_GUEST_KERNEL_DS		0x18
#define TRAPVM_GUEST_USER_CS32		0x23
#define TRAPVM_GUEST_USER_DS		0x2b
#define TRAPVM_GUEST_USER_CS		0x33

/*
 * The hole: guest-virtual addresses the guest can never map.  The module
 * maps its world switcher here (supervisor-only, invisible to the guest),
 * in PML4 slots 256..271, the range Xen reserves for its PV guests.  Guest
 * PML4 entries 256..271 are ignored; an access there is a #PF (not present).
 */
#define TRAPVM_HOLE_START		0xffff800000000000ULL
#define TRAPVM_HOLE_END			0xffff87ffffffffffULL	/* inclusive */

/* Memory map entry types. */
#define TRAPVM_MEM_RAM			1	/* free for the guest to use */
#define TRAPVM_MEM_RESERVED		2	/* boot tables, boot info, stack */
#define TRAPVM_MEM_KERNEL		3	/* the loaded ELF segments */

struct trapvm_mem_range {
	__u64 addr;
	__u64 size;
	__u32 type;
	__u32 reserved;
};

#define TRAPVM_BOOT_MAGIC		0x4d565054	/* "TPVM" */
#define TRAPVM_BOOT_VERSION		1
#define TRAPVM_BOOT_MAX_MEM_RANGES	32

/*
 * The x2APIC timer's input clock (boot_info.apic_timer_hz): 1 GHz, one
 * tick per nanosecond with divide-by-1 (Documentation/interrupts.rst).
 */
#define TRAPVM_APIC_TIMER_HZ		1000000000ULL

/* Platform flags: tell the guest what CPUID cannot (see guest-abi.rst). */
#define TRAPVM_BOOT_F_X2APIC		(1u << 0)	/* x2APIC via MSRs */
#define TRAPVM_BOOT_F_TRAPVM		(1u << 1)	/* running under trapvm */

struct trapvm_boot_info {
	__u32 magic;
	__u32 version;
	__u32 flags;			/* TRAPVM_BOOT_F_* */
	__u32 nr_mem_ranges;
	__u64 mem_size;			/* bytes of guest RAM */
	__u64 cmdline_addr;		/* guest-physical, NUL-terminated */
	__u32 cmdline_len;		/* excluding the NUL */
	__u32 reserved0;
	__u64 tsc_khz;			/* 0 if unknown */
	__u64 apic_timer_hz;		/* x2APIC timer input clock */
	__u64 hole_start, hole_end;	/* TRAPVM_HOLE_START/END */
	__u64 reserved[8];
	struct trapvm_mem_range mem[TRAPVM_BOOT_MAX_MEM_RANGES];
};

/*
 * Hypercalls: VMCALL (0f 01 c1) from virtual CPL0.  Number in RAX,
 * arguments in RBX, RCX, RDX, RSI; result in RAX (negative errno on
 * failure).  From virtual CPL3 VMCALL raises #UD in the guest.
 */
#define TRAPVM_HC_VERSION		0	/* returns TRAPVM_BOOT_VERSION */
#define TRAPVM_HC_MMU_UPDATE		1	/* RBX = list, RCX = count */
/*
 * The calling vCPU's exits so far (its TRAPVM_STAT_ENTRIES counter: every
 * return from the guest to the host, this hypercall's included), for
 * benchmarks that report exits per operation (sparrow's mode=bench).
 * Answered by the module or by the VMM through TRAPVM_GET_STATS.
 */
#define TRAPVM_HC_EXIT_COUNT		2

/*
 * TRAPVM_HC_MMU_UPDATE: RBX = guest-physical address (8-byte aligned) of
 * RCX entries (at most TRAPVM_MMU_UPDATE_MAX); each writes @value to the
 * 8-byte aligned guest-physical @pte_gpa (in RAM) as an emulated guest
 * write would.  RAX = RCX when all are done, else -EINVAL, -E2BIG or
 * -EFAULT and none is done.  See Documentation/guest-abi.rst.
 */
struct trapvm_mmu_update {
	__u64 pte_gpa;
	__u64 value;
};

#define TRAPVM_MMU_UPDATE_MAX		512

/* Devices emulated by vmctl. */
#define TRAPVM_PORT_COM1		0x3f8	/* 16550 UART */
#define TRAPVM_PORT_EXIT		0xf4	/* 32-bit OUT v: exit status v */

#endif /* _UAPI_LINUX_TRAPVM_GUEST_H */
