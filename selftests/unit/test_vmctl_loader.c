// SPDX-License-Identifier: GPL-2.0
/*
 * Unit test of vmctl's guest loader (tools/vmctl/loader.c): loads
 * synthetic ELF files into a buffer standing for guest RAM and checks what
 * it built against the architecture, not against the loader: page tables
 * walked with the SDM's 4-level rules, GDT descriptors decoded field by
 * field, the memory map checked for exact coverage of RAM.
 */
#include <elf.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <linux/trapvm_guest.h>

#include "tap.h"
#include "loader.h"

#define MiB (1ULL << 20)
#define GiB (1ULL << 30)

struct seg {
	uint64_t paddr, vaddr, filesz, memsz, offset;
	uint32_t type;
};

/* Build an ELF64 x86-64 executable with the given segments. */
static uint8_t *make_elf(const struct seg *segs, int n, uint64_t entry,
			 size_t *size)
{
	size_t data_off = sizeof(Elf64_Ehdr) + n * sizeof(Elf64_Phdr);
	size_t total = data_off;
	Elf64_Ehdr *eh;
	Elf64_Phdr *ph;
	uint8_t *buf;
	int i;

	for (i = 0; i < n; i++)
		total += segs[i].filesz;
	buf = calloc(1, total);
	eh = (Elf64_Ehdr *)buf;
	memcpy(eh->e_ident, ELFMAG, SELFMAG);
	eh->e_ident[EI_CLASS] = ELFCLASS64;
	eh->e_ident[EI_DATA] = ELFDATA2LSB;
	eh->e_ident[EI_VERSION] = EV_CURRENT;
	eh->e_type = ET_EXEC;
	eh->e_machine = EM_X86_64;
	eh->e_version = EV_CURRENT;
	eh->e_entry = entry;
	eh->e_phoff = sizeof(Elf64_Ehdr);
	eh->e_ehsize = sizeof(Elf64_Ehdr);
	eh->e_phentsize = sizeof(Elf64_Phdr);
	eh->e_phnum = n;
	ph = (Elf64_Phdr *)(buf + eh->e_phoff);
	for (i = 0; i < n; i++) {
		uint64_t j;

		ph[i].p_type = segs[i].type ? segs[i].type : PT_LOAD;
		ph[i].p_flags = PF_R | PF_W | PF_X;
		ph[i].p_offset = segs[i].offset ? segs[i].offset : data_off;
		ph[i].p_paddr = segs[i].paddr;
		ph[i].p_vaddr = segs[i].vaddr ? segs[i].vaddr : segs[i].paddr;
		ph[i].p_filesz = segs[i].filesz;
		ph[i].p_memsz = segs[i].memsz;
		ph[i].p_align = 4096;
		/* recognisable contents: byte k of segment i is i*37 + k */
		for (j = 0; j < segs[i].filesz && data_off + j < total; j++)
			buf[data_off + j] = (uint8_t)(i * 37 + j);
		data_off += segs[i].filesz;
	}
	*size = total;
	return buf;
}

static uint8_t *alloc_ram(uint64_t size)
{
	uint8_t *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

static uint64_t rd64(const uint8_t *mem, uint64_t gpa)
{
	uint64_t v;

	memcpy(&v, mem + gpa, 8);
	return v;
}

#define PTE_P	(1ULL << 0)
#define PTE_RW	(1ULL << 1)
#define PTE_US	(1ULL << 2)
#define PTE_PS	(1ULL << 7)
#define PTE_NX	(1ULL << 63)
#define ADDR_MASK 0x000ffffffffff000ULL
/* bits 51:MAXPHYADDR and 62:52; take MAXPHYADDR = 46 as a worst case */
#define RSVD_HI	0x7fffc00000000000ULL

/*
 * 4-level translation (SDM Vol. 3, 4.5).  Returns 0 and the physical
 * address, or -1 if not present; checks reserved bits and access rights
 * on the way (supervisor-only, writable, executable all the way down).
 */
static int walk(const uint8_t *mem, uint64_t mem_size, uint64_t cr3,
		uint64_t va, uint64_t *pa, int *bad)
{
	uint64_t table = cr3 & ADDR_MASK, e = 0;
	int level;

	for (level = 4; level >= 1; level--) {
		int idx = (va >> (12 + 9 * (level - 1))) & 511;

		if (table + 4096 > mem_size) {
			(*bad)++;
			return -1;
		}
		e = rd64(mem, table + idx * 8);
		if (!(e & PTE_P))
			return -1;
		if ((e & RSVD_HI) || !(e & PTE_RW) || (e & PTE_US) ||
		    (e & PTE_NX))
			(*bad)++;
		if (level == 4 && (e & PTE_PS))
			(*bad)++;	/* PS is reserved in a PML4E */
		if (level == 3 && (e & PTE_PS))
			(*bad)++;	/* the loader must not use 1 GiB pages */
		if (level == 2 && (e & PTE_PS)) {
			/* 2 MiB page: bits 20:13 are reserved */
			if (e & 0x1fe000ULL)
				(*bad)++;
			*pa = (e & ADDR_MASK & ~0x1fffffULL) | (va & 0x1fffff);
			return 0;
		}
		table = e & ADDR_MASK;
	}
	/* 4 KiB pages are fine architecturally, but the ABI says 2 MiB */
	(*bad)++;
	*pa = (e & ADDR_MASK) | (va & 0xfff);
	return 0;
}

static uint64_t xorshift(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void check_identity(const uint8_t *mem, uint64_t mem_size,
			   uint64_t cr3)
{
	uint64_t va, pa, seed = 0x1234567;
	int bad = 0, i, unmapped = 0, wrong = 0;

	for (va = 0; va < mem_size; va += 2 * MiB) {
		if (walk(mem, mem_size, cr3, va, &pa, &bad) || pa != va)
			wrong++;
		if (walk(mem, mem_size, cr3, va + 2 * MiB - 1, &pa, &bad) ||
		    pa != va + 2 * MiB - 1)
			wrong++;
	}
	for (i = 0; i < 10000; i++) {
		va = xorshift(&seed) % mem_size;
		if (walk(mem, mem_size, cr3, va, &pa, &bad) || pa != va)
			wrong++;
	}
	EXPECT(!wrong, "%d addresses below mem_size not identity mapped", wrong);
	EXPECT(!bad, "%d bad paging-structure entries", bad);

	/* Nothing else is mapped. */
	{
		const uint64_t outside[] = {
			mem_size, mem_size + 4096, mem_size + 2 * MiB,
			512 * GiB, 0x00007fffffffffffULL,
			TRAPVM_HOLE_START, 0xffffffff80000000ULL,
			0xfffffffffffff000ULL,
		};

		for (i = 0; i < (int)(sizeof(outside) / sizeof(outside[0])); i++)
			if (!walk(mem, mem_size, cr3, outside[i], &pa, &bad))
				unmapped++;
		EXPECT(!unmapped, "%d addresses outside RAM are mapped", unmapped);
	}
}

static void check_mem_map(const uint8_t *mem, uint64_t mem_size,
			  const struct vmctl_boot_layout *b,
			  const struct seg *segs, int n)
{
	const struct trapvm_boot_info *bi = (const void *)(mem + b->boot_info);
	uint64_t pos = 0;
	uint32_t i;
	int s;

	EXPECT(bi->nr_mem_ranges >= 2 &&
	       bi->nr_mem_ranges <= TRAPVM_BOOT_MAX_MEM_RANGES,
	       "nr_mem_ranges %u", bi->nr_mem_ranges);
	for (i = 0; i < bi->nr_mem_ranges && i < TRAPVM_BOOT_MAX_MEM_RANGES; i++) {
		const struct trapvm_mem_range *r = &bi->mem[i];

		EXPECT_EQ(r->addr, pos);	/* sorted, no gaps, no overlap */
		EXPECT(r->size > 0, "empty range %u", i);
		EXPECT(!(r->addr & 4095) && !(r->size & 4095),
		       "range %u not page aligned", i);
		EXPECT(r->type == TRAPVM_MEM_RAM ||
		       r->type == TRAPVM_MEM_RESERVED ||
		       r->type == TRAPVM_MEM_KERNEL, "range %u type %u", i,
		       r->type);
		EXPECT_EQ(r->reserved, 0);
		if (i)
			EXPECT(r->type != bi->mem[i - 1].type,
			       "ranges %u and %u not merged", i - 1, i);
		pos = r->addr + r->size;
	}
	EXPECT_EQ(pos, mem_size);

	/* type of one byte according to the map */
#define TYPE_AT(gpa) ({							\
		uint32_t _t = 0, _k;					\
		for (_k = 0; _k < bi->nr_mem_ranges; _k++)		\
			if ((gpa) >= bi->mem[_k].addr &&		\
			    (gpa) - bi->mem[_k].addr < bi->mem[_k].size)	\
				_t = bi->mem[_k].type;			\
		_t; })

	for (s = 0; s < n; s++) {
		if (segs[s].type && segs[s].type != PT_LOAD)
			continue;
		EXPECT_EQ(TYPE_AT(segs[s].paddr), TRAPVM_MEM_KERNEL);
		EXPECT_EQ(TYPE_AT(segs[s].paddr + segs[s].memsz - 1),
			  TRAPVM_MEM_KERNEL);
	}
	EXPECT_EQ(TYPE_AT(b->pml4), TRAPVM_MEM_RESERVED);
	EXPECT_EQ(TYPE_AT(b->gdt), TRAPVM_MEM_RESERVED);
	EXPECT_EQ(TYPE_AT(b->boot_info), TRAPVM_MEM_RESERVED);
	EXPECT_EQ(TYPE_AT(b->cmdline), TRAPVM_MEM_RESERVED);
	EXPECT_EQ(TYPE_AT(b->stack_top - 1), TRAPVM_MEM_RESERVED);
	EXPECT_EQ(TYPE_AT(b->stack_top - VMCTL_BOOT_STACK_SIZE),
		  TRAPVM_MEM_RESERVED);
	/* every page-table page the walk can reach */
	{
		uint64_t pdpt = rd64(mem, b->pml4) & ADDR_MASK;
		uint64_t k;

		EXPECT_EQ(TYPE_AT(pdpt), TRAPVM_MEM_RESERVED);
		for (k = 0; k < (mem_size + GiB - 1) / GiB; k++)
			EXPECT_EQ(TYPE_AT(rd64(mem, pdpt + k * 8) & ADDR_MASK),
				  TRAPVM_MEM_RESERVED);
	}
}

/* SDM Vol. 3, 3.4.5: decode a code/data segment descriptor. */
static void check_desc(const uint8_t *mem, uint64_t gdt, unsigned int sel,
		       unsigned int type, unsigned int dpl, unsigned int l,
		       unsigned int db)
{
	uint64_t d = rd64(mem, gdt + (sel & ~7u));
	uint64_t base = ((d >> 16) & 0xffffff) | (((d >> 56) & 0xff) << 24);
	uint64_t limit = (d & 0xffff) | (((d >> 48) & 0xf) << 16);

	EXPECT(base == 0, "selector %#x base %#llx", sel,
	       (unsigned long long)base);
	EXPECT(limit == 0xfffff, "selector %#x limit %#llx", sel,
	       (unsigned long long)limit);
	EXPECT(((d >> 40) & 0xf) == type, "selector %#x type %llu", sel,
	       (unsigned long long)((d >> 40) & 0xf));
	EXPECT((d >> 44) & 1, "selector %#x not code/data (S=0)", sel);
	EXPECT(((d >> 45) & 3) == dpl, "selector %#x DPL", sel);
	EXPECT((d >> 47) & 1, "selector %#x not present", sel);
	EXPECT(((d >> 53) & 1) == l, "selector %#x L", sel);
	EXPECT(((d >> 54) & 1) == db, "selector %#x D/B", sel);
	EXPECT((d >> 55) & 1, "selector %#x G", sel);
}

static void test_basic_layout(void)
{
	const uint64_t mem_size = 64 * MiB;
	struct seg segs[] = {
		{ .paddr = 1 * MiB, .filesz = 0x3456, .memsz = 0x240000 },
	};
	const char *cmdline = "console=ttyS0 hello=world";
	struct vmctl_boot_layout b;
	const struct trapvm_boot_info *bi;
	uint8_t *mem = alloc_ram(mem_size), *elf;
	char err[256] = "";
	size_t size;
	uint64_t k;

	elf = make_elf(segs, 1, 1 * MiB + 0x10, &size);
	/* garbage everywhere: the loader must zero what it relies on */
	memset(mem, 0xa5, 8 * MiB);
	EXPECT_EQ(vmctl_load_kernel(mem, mem_size, elf, size, cmdline, 2500000,
				    &b, err, sizeof(err)), 0);
	EXPECT(!err[0], "error: %s", err);

	EXPECT_EQ(b.entry, 1 * MiB + 0x10);
	/* segment contents, then zeroed bss */
	for (k = 0; k < segs[0].filesz; k++)
		if (mem[1 * MiB + k] != (uint8_t)k)
			break;
	EXPECT_EQ(k, segs[0].filesz);
	for (k = segs[0].filesz; k < segs[0].memsz; k++)
		if (mem[1 * MiB + k])
			break;
	EXPECT_EQ(k, segs[0].memsz);

	/* the boot area avoids the kernel and lies in RAM */
	EXPECT(b.area_start + b.area_size <= 1 * MiB ||
	       b.area_start >= 1 * MiB + segs[0].memsz, "area overlaps kernel");
	EXPECT(b.area_start + b.area_size <= mem_size, "area outside RAM");
	EXPECT_EQ(b.stack_top & 15, 0);
	EXPECT_EQ(b.pml4 & 4095, 0);

	check_identity(mem, mem_size, b.pml4);

	bi = (const void *)(mem + b.boot_info);
	EXPECT_EQ(bi->magic, 0x4d565054);	/* "TPVM" */
	EXPECT_EQ(bi->version, TRAPVM_BOOT_VERSION);
	EXPECT_EQ(bi->mem_size, mem_size);
	EXPECT_EQ(bi->flags & TRAPVM_BOOT_F_TRAPVM, TRAPVM_BOOT_F_TRAPVM);
	EXPECT_EQ(bi->tsc_khz, 2500000);
	EXPECT_EQ(bi->apic_timer_hz, TRAPVM_APIC_TIMER_HZ);
	EXPECT_EQ(bi->hole_start, 0xffff800000000000ULL);
	EXPECT_EQ(bi->hole_end, 0xffff87ffffffffffULL);
	EXPECT_EQ(bi->cmdline_len, strlen(cmdline));
	EXPECT_EQ(bi->cmdline_addr, b.cmdline);
	EXPECT(!strcmp((const char *)mem + bi->cmdline_addr, cmdline),
	       "command line not in guest RAM");
	for (k = 0; k < 8; k++)
		EXPECT_EQ(bi->reserved[k], 0);
	check_mem_map(mem, mem_size, &b, segs, 1);

	/* GDT with the guest ABI's selectors */
	EXPECT(b.gdt_limit >= (TRAPVM_GUEST_USER_CS & ~7) + 7, "GDT limit %#x",
	       b.gdt_limit);
	EXPECT_EQ(rd64(mem, b.gdt), 0);		/* null descriptor */
	check_desc(mem, b.gdt, TRAPVM_GUEST_KERNEL_CS, 0xb, 0, 1, 0);
	check_desc(mem, b.gdt, TRAPVM_GUEST_KERNEL_DS, 0x3, 0, 0, 1);
	check_desc(mem, b.gdt, TRAPVM_GUEST_USER_CS32, 0xb, 3, 0, 1);
	check_desc(mem, b.gdt, TRAPVM_GUEST_USER_DS, 0x3, 3, 0, 1);
	check_desc(mem, b.gdt, TRAPVM_GUEST_USER_CS, 0xb, 3, 1, 0);

	free(elf);
	munmap(mem, mem_size);
}

/* More than 1 GiB: several page directories; kernel low, segments share pages. */
static void test_big_ram_and_segments(void)
{
	const uint64_t mem_size = 3 * GiB + 2 * MiB;
	struct seg segs[] = {
		{ .paddr = 0x1000, .filesz = 0x100, .memsz = 0x1800 },
		{ .paddr = 0x2800, .filesz = 0x80, .memsz = 0x200 },	/* same page as seg 0's end */
		{ .type = PT_NOTE, .paddr = 0, .filesz = 0x10, .memsz = 0x10 },
		{ .paddr = 2 * GiB, .filesz = 0x1000, .memsz = 0x1000 },
	};
	struct vmctl_boot_layout b;
	uint8_t *mem = alloc_ram(mem_size), *elf;
	char err[256] = "";
	size_t size;

	EXPECT(mem != NULL, "mmap");
	if (!mem)
		return;
	elf = make_elf(segs, 4, 2 * GiB + 0x20, &size);
	EXPECT_EQ(vmctl_load_kernel(mem, mem_size, elf, size, "", 0, &b, err,
				    sizeof(err)), 0);
	EXPECT(!err[0], "error: %s", err);
	EXPECT_EQ(mem[0x2800], (uint8_t)(1 * 37));
	EXPECT_EQ(mem[2 * GiB + 5], (uint8_t)(3 * 37 + 5));
	EXPECT_EQ(mem[(uint64_t)b.cmdline], 0);
	check_identity(mem, mem_size, b.pml4);
	check_mem_map(mem, mem_size, &b, segs, 4);
	free(elf);
	munmap(mem, mem_size);
}

#define EXPECT_LOAD_FAILS(mem_size, elf, size, cmdline, what)		\
	do {								\
		char _err[256] = "";					\
		EXPECT(vmctl_load_kernel(mem, mem_size, elf, size, cmdline, \
					 0, &b, _err, sizeof(_err)) == -1, \
		       "accepted: %s", what);				\
		EXPECT(_err[0], "no message for: %s", what);		\
	} while (0)

static void test_bad_elf(void)
{
	const uint64_t mem_size = 16 * MiB;
	struct seg one[] = { { .paddr = 1 * MiB, .filesz = 64, .memsz = 4096 } };
	struct vmctl_boot_layout b;
	uint8_t *mem = alloc_ram(mem_size), *elf;
	Elf64_Ehdr *eh;
	Elf64_Phdr *ph;
	char *longcmd;
	size_t size;

	elf = make_elf(one, 1, 1 * MiB, &size);
	eh = (Elf64_Ehdr *)elf;
	ph = (Elf64_Phdr *)(elf + eh->e_phoff);

	EXPECT_LOAD_FAILS(mem_size, elf, 10, "", "truncated header");
	EXPECT_LOAD_FAILS(mem_size, (uint8_t *)"hello world, not an elf file at all, longer than a header is........", 64, "", "bad magic");
	eh->e_ident[EI_CLASS] = ELFCLASS32;
	EXPECT_LOAD_FAILS(mem_size, elf, size, "", "ELFCLASS32");
	eh->e_ident[EI_CLASS] = ELFCLASS64;
	eh->e_machine = EM_386;
	EXPECT_LOAD_FAILS(mem_size, elf, size, "", "EM_386");
	eh->e_machine = EM_X86_64;
	eh->e_type = ET_DYN;
	EXPECT_LOAD_FAILS(mem_size, elf, size, "", "ET_DYN");
	eh->e_type = ET_EXEC;
	eh->e_phoff = size;
	EXPECT_LOAD_FAILS(mem_size, elf, size, "", "phdrs past EOF");
	eh->e_phoff = ~0ULL - 8;
	EXPECT_LOAD_FAILS(mem_size, elf, size, "", "phoff overflow");
	eh->e_phoff = sizeof(*eh);
	eh->e_phnum = 0xffff;
	EXPECT_LOAD_FAILS(mem_size, elf, size, "", "phnum past EOF");
	eh->e_phnum = 1;
	eh->e_entry = 3 * MiB;
	EXPECT_LOAD_FAILS(mem_size, elf, size, "", "entry outside segments");
	eh->e_entry = 1 * MiB;
	ph->p_filesz = 8192;
	EXPECT_LOAD_FAILS(mem_size, elf, size, "", "filesz > memsz");
	ph->p_filesz = 64;
	ph->p_offset = size;
	EXPECT_LOAD_FAILS(mem_size, elf, size, "", "data past EOF");
	ph->p_offset = ~0ULL - 10;
	EXPECT_LOAD_FAILS(mem_size, elf, size, "", "offset overflow");
	ph->p_offset = sizeof(*eh) + sizeof(*ph);
	ph->p_paddr = mem_size - 2048;
	eh->e_entry = ph->p_paddr;
	EXPECT_LOAD_FAILS(mem_size, elf, size, "", "segment past RAM");
	ph->p_paddr = ~0ULL - 100;
	eh->e_entry = ph->p_paddr;
	EXPECT_LOAD_FAILS(mem_size, elf, size, "", "paddr overflow");
	ph->p_paddr = 1 * MiB;
	ph->p_vaddr = 0xffffffff80100000ULL;
	eh->e_entry = 1 * MiB;
	EXPECT_LOAD_FAILS(mem_size, elf, size, "", "vaddr != paddr");
	ph->p_vaddr = 1 * MiB;
	ph->p_type = PT_NOTE;
	EXPECT_LOAD_FAILS(mem_size, elf, size, "", "no PT_LOAD");
	ph->p_type = PT_LOAD;

	/* the sane version loads */
	{
		char err[256];

		EXPECT_EQ(vmctl_load_kernel(mem, mem_size, elf, size, "", 0, &b,
					    err, sizeof(err)), 0);
	}
	EXPECT_LOAD_FAILS(mem_size - 4096, elf, size, "", "RAM not 2 MiB multiple");
	longcmd = malloc(VMCTL_CMDLINE_MAX + 2);
	memset(longcmd, 'x', VMCTL_CMDLINE_MAX + 1);
	longcmd[VMCTL_CMDLINE_MAX + 1] = 0;
	EXPECT_LOAD_FAILS(mem_size, elf, size, longcmd, "long command line");
	free(longcmd);
	free(elf);

	/* overlapping segments; a kernel filling all RAM leaves no room */
	{
		struct seg ov[] = {
			{ .paddr = 1 * MiB, .filesz = 16, .memsz = 8192 },
			{ .paddr = 1 * MiB + 4096, .filesz = 16, .memsz = 16 },
		};
		struct seg full[] = {
			{ .paddr = 0, .filesz = 16, .memsz = 16 * MiB },
		};

		elf = make_elf(ov, 2, 1 * MiB, &size);
		EXPECT_LOAD_FAILS(mem_size, elf, size, "", "overlapping segments");
		free(elf);
		elf = make_elf(full, 1, 0, &size);
		EXPECT_LOAD_FAILS(mem_size, elf, size, "", "no room for boot area");
		free(elf);
	}
	munmap(mem, mem_size);
}

int main(void)
{
	RUN(test_basic_layout);
	RUN(test_big_ram_and_segments);
	RUN(test_bad_elf);
	return tap_done();
}
