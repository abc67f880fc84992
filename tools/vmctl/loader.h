/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vmctl's guest loader: puts an ELF64 kernel into guest RAM and builds
 * everything the entry state of <linux/trapvm_guest.h> needs (identity
 * page tables, GDT, boot information, command line, stack).  Plain C over
 * a buffer, no ioctls, so unit tests can check what it builds.
 */
#ifndef VMCTL_LOADER_H
#define VMCTL_LOADER_H

#include <stddef.h>
#include <stdint.h>

/* Where the loader put things (guest-physical addresses). */
struct vmctl_boot_layout {
	uint64_t entry;			/* RIP */
	uint64_t pml4;			/* CR3 */
	uint64_t gdt;			/* GDTR base */
	uint16_t gdt_limit;
	uint64_t boot_info;		/* RDI */
	uint64_t cmdline;
	uint64_t stack_top;		/* RSP */
	uint64_t area_start;		/* all of the above: one RESERVED range */
	uint64_t area_size;
	uint64_t kernel_start, kernel_end;	/* lowest/highest segment byte */
};

#define VMCTL_BOOT_STACK_SIZE	(16 * 1024)
#define VMCTL_CMDLINE_MAX	4095

/*
 * Load @elf (@elf_size bytes) into @mem (guest RAM, @mem_size bytes, a
 * multiple of 2 MiB) and build the boot structures.  On error returns -1
 * with a message in @err.
 */
int vmctl_load_kernel(uint8_t *mem, uint64_t mem_size, const void *elf,
		      size_t elf_size, const char *cmdline, uint64_t tsc_khz,
		      struct vmctl_boot_layout *out, char *err, size_t errlen);

/* Only the ELF checks of vmctl_load_kernel(), before any VM exists. */
int vmctl_check_kernel(const void *elf, size_t elf_size, uint64_t mem_size,
		       char *err, size_t errlen);

/* Page-table entry bits the loader uses. */
#define VMCTL_PTE_P		(1ULL << 0)
#define VMCTL_PTE_RW		(1ULL << 1)
#define VMCTL_PTE_US		(1ULL << 2)
#define VMCTL_PTE_PS		(1ULL << 7)
#define VMCTL_PTE_NX		(1ULL << 63)
#define VMCTL_PTE_ADDR		0x000ffffffffff000ULL

/* Boot GDT descriptors (SDM Vol. 3, 3.4.5), accessed bit set. */
#define VMCTL_GDT_KERNEL_CS	0x00af9b000000ffffULL
#define VMCTL_GDT_KERNEL_DS	0x00cf93000000ffffULL
#define VMCTL_GDT_USER_CS32	0x00cffb000000ffffULL
#define VMCTL_GDT_USER_DS	0x00cff3000000ffffULL
#define VMCTL_GDT_USER_CS	0x00affb000000ffffULL
#define VMCTL_GDT_ENTRIES	7

#endif /* VMCTL_LOADER_H */
