// SPDX-License-Identifier: GPL-2.0
/*
 * Load the multiboot module (a guest kernel ELF) with vmctl's loader and
 * enter it as trapvm would, on bare (emulated) metal.  What cannot be the
 * same natively is patched as a trapvm platform would look to the guest:
 * the 8259s are masked, the TSC rate is measured here and passed in the
 * boot information, and TRAPVM_BOOT_F_X2APIC is cleared because QEMU's TCG
 * has no x2APIC (the guest then uses the xAPIC page).  The kernel still
 * sees TRAPVM_BOOT_F_TRAPVM, so it touches neither PIT nor PIC itself.
 */
#include <stdint.h>
#include <stddef.h>
#include <stdarg.h>
#include "../../../uapi/linux/trapvm_guest.h"
#include "../../../tools/vmctl/loader.h"
#include "../../../guests/sparrow/fmt.h"
#include "../../../guests/sparrow/compiler.h"
#include "shim.h"

#define GUEST_RAM	(256ULL << 20)
#define RAM_ALIAS	(64ULL << 30)		/* shim32.S maps it */
#define COM1		0x3f8

struct mb_info {
	uint32_t flags;
	uint32_t mem_lower, mem_upper;
	uint32_t boot_device;
	uint32_t cmdline;
	uint32_t mods_count, mods_addr;
} __packed;

struct mb_module {
	uint32_t start, end, string, reserved;
};

struct desc_ptr {
	uint16_t limit;
	uint64_t base;
} __packed;

static void outb(uint16_t port, uint8_t v)
{
	asm volatile("out %0, %1" : : "a"(v), "Nd"(port));
}

static uint8_t inb(uint16_t port)
{
	uint8_t v;

	asm volatile("in %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static uint64_t rdtsc(void)
{
	uint32_t lo, hi;

	asm volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return ((uint64_t)hi << 32) | lo;
}

static void say(const char *fmt, ...)
{
	char buf[256];
	va_list ap;
	int i, n;

	va_start(ap, fmt);
	n = kvsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	for (i = 0; i < n && buf[i]; i++) {
		while (!(inb(COM1 + 5) & 0x20))
			;
		outb(COM1, buf[i]);
	}
}

static void stop(uint32_t status)
{
	asm volatile("outl %0, %1" : : "a"(status), "Nd"(0xf4));
	for (;;)
		asm volatile("cli; hlt");
}

/* What vmctl's loader needs from a C library. */
int vsnprintf(char *buf, size_t size, const char *fmt, va_list ap)
{
	return kvsnprintf(buf, size, fmt, ap);
}

void qsort(void *base, size_t n, size_t size,
	   int (*cmp)(const void *, const void *))
{
	char *a = base, tmp[64];
	size_t i, j;

	if (size > sizeof(tmp))
		stop(0x7e);
	for (i = 1; i < n; i++)
		for (j = i; j > 0 && cmp(a + (j - 1) * size, a + j * size) > 0;
		     j--) {
			memcpy(tmp, a + j * size, size);
			memcpy(a + j * size, a + (j - 1) * size, size);
			memcpy(a + (j - 1) * size, tmp, size);
		}
}

/* TSC rate against PIT channel 2, 50 ms (the loader's tsc_khz). */
static uint64_t measure_tsc_khz(void)
{
	uint32_t elapsed = 0, want = 1193182 / 20;
	uint16_t prev, now;
	uint64_t t0;

	outb(0x61, (inb(0x61) & ~0x02) | 0x01);
	outb(0x43, 0xb0);
	outb(0x42, 0xff);
	outb(0x42, 0xff);
	outb(0x43, 0x80);
	prev = inb(0x42) | (inb(0x42) << 8);
	t0 = rdtsc();
	while (elapsed < want) {
		outb(0x43, 0x80);
		now = inb(0x42) | (inb(0x42) << 8);
		elapsed += (uint16_t)(prev - now);
		prev = now;
	}
	return (rdtsc() - t0) * 1193182 / elapsed / 1000;
}

/* A platform without 8259s: remap them off the exception vectors, mask. */
static void mask_pics(void)
{
	static const uint8_t seq[][2] = {
		{ 0x20, 0x11 }, { 0xa0, 0x11 }, { 0x21, 0xf0 }, { 0xa1, 0xf8 },
		{ 0x21, 0x04 }, { 0xa1, 0x02 }, { 0x21, 0x01 }, { 0xa1, 0x01 },
		{ 0x21, 0xff }, { 0xa1, 0xff },
	};
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(seq); i++)
		outb(seq[i][0], seq[i][1]);
}

void shim_main(uint32_t mbi_addr)
{
	const struct mb_info *mbi = (const void *)(uint64_t)mbi_addr;
	const struct mb_module *mod;
	uint8_t *ram = (uint8_t *)RAM_ALIAS;
	struct vmctl_boot_layout l;
	struct trapvm_boot_info *bi;
	struct desc_ptr gdtr;
	const char *cmdline = "";
	char err[160];
	uint64_t khz;

	if (!(mbi->flags & (1 << 3)) || !mbi->mods_count) {
		say("vmctl-entry: no kernel module (-initrd)\n");
		stop(0x7d);
	}
	mod = (const void *)(uint64_t)mbi->mods_addr;
	if (mbi->flags & (1 << 2)) {
		/* QEMU passes "shim.elf args": the guest gets the args. */
		cmdline = (const char *)(uint64_t)mbi->cmdline;
		while (*cmdline && *cmdline != ' ')
			cmdline++;
		while (*cmdline == ' ')
			cmdline++;
	}
	if (mod->start < GUEST_RAM / 2) {
		say("vmctl-entry: module at %x would be overwritten\n",
		    mod->start);
		stop(0x7d);
	}

	mask_pics();
	khz = measure_tsc_khz();
	if (vmctl_load_kernel(ram, GUEST_RAM,
			      (const void *)(uint64_t)mod->start,
			      mod->end - mod->start, cmdline, khz, &l, err,
			      sizeof(err))) {
		say("vmctl-entry: vmctl_load_kernel: %s\n", err);
		stop(0x7d);
	}
	bi = (struct trapvm_boot_info *)(ram + l.boot_info);
	bi->flags &= ~TRAPVM_BOOT_F_X2APIC;

	say("vmctl-entry: entry %lx cr3 %lx gdt %lx rsp %lx boot info %lx flags %x tsc %lu kHz\n",
	    l.entry, l.pml4, l.gdt, l.stack_top, l.boot_info, bi->flags, khz);
	gdtr.limit = l.gdt_limit;
	gdtr.base = l.gdt;
	enter_kernel(l.entry, l.pml4, &gdtr, l.stack_top, l.boot_info);
}
