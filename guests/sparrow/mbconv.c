// SPDX-License-Identifier: GPL-2.0
/*
 * Native boot only: turn the multiboot (v1) information QEMU hands the
 * 32-bit entry into the struct trapvm_boot_info that trapvm's loader would
 * have built, so that the rest of the kernel sees a single boot protocol.
 * Runs in long mode on the temporary 4 GiB identity map, before .bss is
 * cleared, so everything it writes lives in .data.
 */
#include "sparrow.h"

#define MB_BOOT_MAGIC	0x2badb002
#define MBI_MEM		BIT(0)
#define MBI_CMDLINE	BIT(2)
#define MBI_MMAP	BIT(6)

struct mb_info {
	u32 flags;
	u32 mem_lower, mem_upper;
	u32 boot_device;
	u32 cmdline;
	u32 mods_count, mods_addr;
	u32 syms[4];
	u32 mmap_length, mmap_addr;
} __packed;

struct mb_mmap {
	u32 size;
	u64 addr, len;
	u32 type;
} __packed;

static struct trapvm_boot_info mb_boot_info __section(".data");
static char mb_cmdline[256] __section(".data");

static void add_range(struct trapvm_boot_info *bi, u64 addr, u64 size,
		      u32 type)
{
	struct trapvm_mem_range *r;

	if (bi->nr_mem_ranges >= TRAPVM_BOOT_MAX_MEM_RANGES || !size)
		return;
	r = &bi->mem[bi->nr_mem_ranges++];
	r->addr = addr;
	r->size = size;
	r->type = type;
	if (type == TRAPVM_MEM_RAM && addr + size > bi->mem_size)
		bi->mem_size = addr + size;
}

struct trapvm_boot_info *mb_to_boot_info(u32 mbi_addr, u32 magic)
{
	struct trapvm_boot_info *bi = &mb_boot_info;
	const struct mb_info *mbi = (const void *)(u64)mbi_addr;

	bi->magic = TRAPVM_BOOT_MAGIC;
	bi->version = TRAPVM_BOOT_VERSION;
	bi->flags = 0;		/* bare metal: xAPIC MMIO, no trapvm */
	bi->hole_start = TRAPVM_HOLE_START;
	bi->hole_end = TRAPVM_HOLE_END;
	bi->cmdline_addr = (u64)mb_cmdline;
	if (magic != MB_BOOT_MAGIC)
		return bi;

	if (mbi->flags & MBI_CMDLINE) {
		const char *s = (const char *)(u64)mbi->cmdline;
		u32 n = 0;

		while (s[n] && n < sizeof(mb_cmdline) - 1) {
			mb_cmdline[n] = s[n];
			n++;
		}
		mb_cmdline[n] = 0;
		bi->cmdline_len = n;
	}
	if (mbi->flags & MBI_MMAP) {
		u64 p = mbi->mmap_addr, end = p + mbi->mmap_length;

		while (p < end) {
			const struct mb_mmap *e = (const void *)p;

			add_range(bi, e->addr, e->len, e->type == 1 ?
				  TRAPVM_MEM_RAM : TRAPVM_MEM_RESERVED);
			p += e->size + 4;
		}
	} else if (mbi->flags & MBI_MEM) {
		add_range(bi, 0, (u64)mbi->mem_lower << 10, TRAPVM_MEM_RAM);
		add_range(bi, 0x100000, (u64)mbi->mem_upper << 10,
			  TRAPVM_MEM_RAM);
	}
	/* The kernel itself; the page allocator also skips it by symbol. */
	add_range(bi, (u64)__image_start, __image_end - __image_start,
		  TRAPVM_MEM_KERNEL);
	return bi;
}
