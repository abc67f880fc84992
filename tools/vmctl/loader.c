// SPDX-License-Identifier: GPL-2.0
/*
 * vmctl's guest loader: ELF64 segments into guest RAM, then the boot
 * structures of the guest ABI in one RESERVED area that avoids them.
 */
#include <elf.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/trapvm_guest.h>

#include "loader.h"

#define PAGE		4096ULL
#define SZ_2M		(2ULL << 20)
#define SZ_1G		(1ULL << 30)
#define SZ_512G		(512ULL << 30)
#define MAX_SEGS	TRAPVM_BOOT_MAX_MEM_RANGES

_Static_assert(sizeof(struct trapvm_boot_info) <= PAGE,
	       "boot info must fit its page");

struct range {
	uint64_t start, end;		/* [start, end) */
	uint32_t type;
};

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

static uint64_t round_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) & ~(a - 1);
}

static int cmp_range(const void *a, const void *b)
{
	const struct range *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

/* Check the header and program headers; fill page-rounded KERNEL ranges. */
static int check_elf(const uint8_t *elf, size_t size, uint64_t mem_size,
		     struct range *segs, int *nsegs, char *err, size_t errlen)
{
	const Elf64_Ehdr *eh = (const void *)elf;
	const Elf64_Phdr *ph;
	int i, n = 0;
	bool entry_ok = false;

	if (size < sizeof(*eh) || memcmp(eh->e_ident, ELFMAG, SELFMAG))
		return fail(err, errlen, "not an ELF file");
	if (eh->e_ident[EI_CLASS] != ELFCLASS64)
		return fail(err, errlen, "not a 64-bit ELF file");
	if (eh->e_ident[EI_DATA] != ELFDATA2LSB ||
	    eh->e_machine != EM_X86_64)
		return fail(err, errlen, "not an x86-64 ELF file");
	if (eh->e_type != ET_EXEC)
		return fail(err, errlen,
			    "not an executable ELF file (type %u)", eh->e_type);
	if (eh->e_phentsize != sizeof(Elf64_Phdr) || !eh->e_phnum)
		return fail(err, errlen, "no usable program headers");
	if (eh->e_phoff > size ||
	    (size - eh->e_phoff) / sizeof(Elf64_Phdr) < eh->e_phnum)
		return fail(err, errlen, "program headers beyond end of file");

	ph = (const void *)(elf + eh->e_phoff);
	for (i = 0; i < eh->e_phnum; i++) {
		const Elf64_Phdr *p = &ph[i];

		if (p->p_type != PT_LOAD || !p->p_memsz)
			continue;
		if (p->p_filesz > p->p_memsz)
			return fail(err, errlen,
				    "segment %d: file size > memory size", i);
		if (p->p_offset > size || size - p->p_offset < p->p_filesz)
			return fail(err, errlen,
				    "segment %d: data beyond end of file", i);
		if (p->p_paddr >= mem_size ||
		    mem_size - p->p_paddr < p->p_memsz)
			return fail(err, errlen,
				    "segment %d: [%#llx, %#llx) does not fit in %llu MiB of guest RAM",
				    i, (unsigned long long)p->p_paddr,
				    (unsigned long long)(p->p_paddr + p->p_memsz),
				    (unsigned long long)(mem_size >> 20));
		if (p->p_vaddr != p->p_paddr)
			return fail(err, errlen,
				    "segment %d: virtual address %#llx != physical %#llx (the boot page tables only identity-map RAM)",
				    i, (unsigned long long)p->p_vaddr,
				    (unsigned long long)p->p_paddr);
		if (n == MAX_SEGS)
			return fail(err, errlen, "too many PT_LOAD segments");
		if (eh->e_entry >= p->p_paddr &&
		    eh->e_entry - p->p_paddr < p->p_memsz)
			entry_ok = true;
		segs[n].start = p->p_paddr;
		segs[n].end = p->p_paddr + p->p_memsz;
		segs[n].type = TRAPVM_MEM_KERNEL;
		n++;
	}
	if (!n)
		return fail(err, errlen, "no PT_LOAD segments");
	if (!entry_ok)
		return fail(err, errlen,
			    "entry point %#llx is not inside a loaded segment",
			    (unsigned long long)eh->e_entry);

	qsort(segs, n, sizeof(*segs), cmp_range);
	for (i = 1; i < n; i++)
		if (segs[i].start < segs[i - 1].end)
			return fail(err, errlen, "PT_LOAD segments overlap");
	/* Page granularity from here on; neighbours may share a page. */
	for (i = 0; i < n; i++) {
		segs[i].start &= ~(PAGE - 1);
		segs[i].end = round_up(segs[i].end, PAGE);
	}
	*nsegs = n;
	return 0;
}

/* First page-aligned gap of @size bytes in [PAGE, mem_size) avoiding @segs. */
static int find_gap(const struct range *segs, int n, uint64_t mem_size,
		    uint64_t size, uint64_t *addr)
{
	uint64_t cand = PAGE;
	int i;

	for (i = 0; i <= n; i++) {
		uint64_t limit = i < n ? segs[i].start : mem_size;

		if (limit > cand && limit - cand >= size) {
			*addr = cand;
			return 0;
		}
		if (i < n && segs[i].end > cand)
			cand = segs[i].end;
	}
	return -1;
}

static void build_page_tables(uint8_t *mem, uint64_t mem_size, uint64_t pml4,
			      uint64_t pdpt, uint64_t pd, int nr_pd)
{
	uint64_t *l4 = (uint64_t *)(mem + pml4);
	uint64_t *l3 = (uint64_t *)(mem + pdpt);
	uint64_t gpa;
	int i;

	memset(mem + pml4, 0, PAGE);
	memset(mem + pdpt, 0, PAGE);
	memset(mem + pd, 0, PAGE * nr_pd);
	/* Supervisor, writable, executable, as the guest ABI says. */
	l4[0] = pdpt | VMCTL_PTE_P | VMCTL_PTE_RW;
	for (i = 0; i < nr_pd; i++)
		l3[i] = (pd + i * PAGE) | VMCTL_PTE_P | VMCTL_PTE_RW;
	for (gpa = 0; gpa < mem_size; gpa += SZ_2M) {
		uint64_t *l2 = (uint64_t *)(mem + pd);

		l2[gpa / SZ_2M] = gpa | VMCTL_PTE_P | VMCTL_PTE_RW |
				  VMCTL_PTE_PS;
	}
}

static int build_mem_map(struct trapvm_boot_info *bi, const struct range *segs,
			 int n, uint64_t area, uint64_t area_size,
			 uint64_t mem_size)
{
	struct range r[MAX_SEGS + 1];
	uint64_t pos = 0;
	int i, nr = 0, out = 0;

	memcpy(r, segs, n * sizeof(*r));
	r[n].start = area;
	r[n].end = area + area_size;
	r[n].type = TRAPVM_MEM_RESERVED;
	nr = n + 1;
	qsort(r, nr, sizeof(*r), cmp_range);

	for (i = 0; i <= nr; i++) {
		uint64_t start = i < nr ? r[i].start : mem_size;
		struct trapvm_mem_range *last = out ? &bi->mem[out - 1] : NULL;

		if (start > pos) {		/* free RAM before this range */
			if (out == TRAPVM_BOOT_MAX_MEM_RANGES)
				return -1;
			bi->mem[out].addr = pos;
			bi->mem[out].size = start - pos;
			bi->mem[out].type = TRAPVM_MEM_RAM;
			out++;
			last = &bi->mem[out - 1];
		}
		if (i == nr)
			break;
		if (r[i].end <= pos)
			continue;
		if (r[i].start < pos)		/* kernel pages shared by segments */
			r[i].start = pos;
		if (last && last->type == r[i].type &&
		    last->addr + last->size == r[i].start) {
			last->size += r[i].end - r[i].start;
		} else {
			if (out == TRAPVM_BOOT_MAX_MEM_RANGES)
				return -1;
			bi->mem[out].addr = r[i].start;
			bi->mem[out].size = r[i].end - r[i].start;
			bi->mem[out].type = r[i].type;
			out++;
		}
		pos = r[i].end;
	}
	bi->nr_mem_ranges = out;
	return 0;
}

int vmctl_check_kernel(const void *elf, size_t elf_size, uint64_t mem_size,
		       char *err, size_t errlen)
{
	struct range segs[MAX_SEGS];
	int nsegs;

	if (!mem_size || mem_size % SZ_2M)
		return fail(err, errlen, "guest RAM must be a multiple of 2 MiB");
	return check_elf(elf, elf_size, mem_size, segs, &nsegs, err, errlen);
}

int vmctl_load_kernel(uint8_t *mem, uint64_t mem_size, const void *elf,
		      size_t elf_size, const char *cmdline, uint64_t tsc_khz,
		      struct vmctl_boot_layout *out, char *err, size_t errlen)
{
	const Elf64_Ehdr *eh = elf;
	const Elf64_Phdr *ph;
	struct range segs[MAX_SEGS];
	struct trapvm_boot_info *bi;
	uint64_t *gdt, area, area_size, cmdline_size, p;
	size_t cmdline_len = cmdline ? strlen(cmdline) : 0;
	int nsegs = 0, nr_pd, i;

	memset(out, 0, sizeof(*out));
	if (!mem_size || mem_size % SZ_2M)
		return fail(err, errlen, "guest RAM must be a multiple of 2 MiB");
	if (mem_size > SZ_512G)
		return fail(err, errlen, "guest RAM above 512 GiB");
	if (cmdline_len > VMCTL_CMDLINE_MAX)
		return fail(err, errlen, "command line longer than %d bytes",
			    VMCTL_CMDLINE_MAX);
	if (check_elf(elf, elf_size, mem_size, segs, &nsegs, err, errlen))
		return -1;
	/* Room for the boot area's RESERVED range and the RAM around it. */
	if (nsegs > (TRAPVM_BOOT_MAX_MEM_RANGES - 2) / 2)
		return fail(err, errlen, "too many PT_LOAD segments");

	/* stack, PML4, PDPT, one PD per GiB, GDT, boot info, command line */
	nr_pd = (int)(round_up(mem_size, SZ_1G) / SZ_1G);
	cmdline_size = round_up(cmdline_len + 1, PAGE);
	area_size = VMCTL_BOOT_STACK_SIZE + (2 + nr_pd + 2) * PAGE +
		    cmdline_size;
	if (find_gap(segs, nsegs, mem_size, area_size, &area))
		return fail(err, errlen,
			    "no room for %llu KiB of boot structures next to the kernel",
			    (unsigned long long)(area_size >> 10));

	/* The segments. */
	ph = (const void *)((const uint8_t *)elf + eh->e_phoff);
	out->kernel_start = UINT64_MAX;
	for (i = 0; i < eh->e_phnum; i++) {
		const Elf64_Phdr *s = &ph[i];

		if (s->p_type != PT_LOAD || !s->p_memsz)
			continue;
		memcpy(mem + s->p_paddr, (const uint8_t *)elf + s->p_offset,
		       s->p_filesz);
		memset(mem + s->p_paddr + s->p_filesz, 0,
		       s->p_memsz - s->p_filesz);
		if (s->p_paddr < out->kernel_start)
			out->kernel_start = s->p_paddr;
		if (s->p_paddr + s->p_memsz > out->kernel_end)
			out->kernel_end = s->p_paddr + s->p_memsz;
	}

	/* The boot area. */
	memset(mem + area, 0, area_size);
	out->area_start = area;
	out->area_size = area_size;
	p = area;
	out->stack_top = p + VMCTL_BOOT_STACK_SIZE;
	p += VMCTL_BOOT_STACK_SIZE;
	out->pml4 = p;
	build_page_tables(mem, mem_size, p, p + PAGE, p + 2 * PAGE, nr_pd);
	p += (2 + nr_pd) * PAGE;

	out->gdt = p;
	gdt = (uint64_t *)(mem + p);
	gdt[TRAPVM_GUEST_KERNEL_CS >> 3] = VMCTL_GDT_KERNEL_CS;
	gdt[TRAPVM_GUEST_KERNEL_DS >> 3] = VMCTL_GDT_KERNEL_DS;
	gdt[TRAPVM_GUEST_USER_CS32 >> 3] = VMCTL_GDT_USER_CS32;
	gdt[TRAPVM_GUEST_USER_DS >> 3] = VMCTL_GDT_USER_DS;
	gdt[TRAPVM_GUEST_USER_CS >> 3] = VMCTL_GDT_USER_CS;
	out->gdt_limit = VMCTL_GDT_ENTRIES * 8 - 1;
	p += PAGE;

	out->boot_info = p;
	bi = (struct trapvm_boot_info *)(mem + p);
	p += PAGE;
	out->cmdline = p;
	if (cmdline_len)
		memcpy(mem + p, cmdline, cmdline_len);
	mem[p + cmdline_len] = '\0';

	bi->magic = TRAPVM_BOOT_MAGIC;
	bi->version = TRAPVM_BOOT_VERSION;
	bi->flags = TRAPVM_BOOT_F_X2APIC | TRAPVM_BOOT_F_TRAPVM;
	bi->mem_size = mem_size;
	bi->cmdline_addr = out->cmdline;
	bi->cmdline_len = (uint32_t)cmdline_len;
	bi->tsc_khz = tsc_khz;
	bi->apic_timer_hz = TRAPVM_APIC_TIMER_HZ;
	bi->hole_start = TRAPVM_HOLE_START;
	bi->hole_end = TRAPVM_HOLE_END;
	if (build_mem_map(bi, segs, nsegs, area, area_size, mem_size))
		return fail(err, errlen, "memory map has too many ranges");

	out->entry = eh->e_entry;
	return 0;
}
