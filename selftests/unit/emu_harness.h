/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Test harness for the emulator: a fake guest-virtual memory made of a
 * few 4 KiB pages with P/W/U/NX permissions (the #PF error code is
 * computed here from the SDM's rules, not by the code under test), the
 * trapvm_emu_ops callbacks over it, and a standard 64-bit guest: GDT, IDT,
 * TSS and stacks laid out like a small Linux-style kernel.
 */
#ifndef _UNIT_EMU_HARNESS_H
#define _UNIT_EMU_HARNESS_H

#include <trapvm/emulate.h>
#include <linux/trapvm_stats.h>

#define H_PAGES		48

#define PG_P		1
#define PG_W		2
#define PG_U		4
#define PG_NX		8

/* Layout of the standard guest. */
#define H_GDT		0x10000ULL
#define H_IDT		0x11000ULL
#define H_TSS		0x12000ULL
#define H_LDT		0x13000ULL
#define H_KCODE		0x100000ULL
#define H_KSTACK_TOP	0x201000ULL
#define H_IST1_TOP	0x301000ULL
#define H_UCODE		0x400000ULL
#define H_USTACK_TOP	0x501000ULL
#define H_KDATA		0x600000ULL
#define H_UDATA		0x700000ULL
#define H_RODATA	0x800000ULL
#define H_MMIO		0xfee00000ULL	/* one page of "device memory" */
#define H_HANDLER(v)	(0xffffffff81000000ULL + (v) * 0x10)
#define H_TSS_LIMIT	0xe8		/* bitmap: ports 0..1023, then 0xff */
#define H_IOMAP		0x68
#define H_BLOCKED_PORT	0x61		/* bit set in the I/O bitmap */

/* Selectors of the standard GDT (hand-written descriptors). */
#define SEL_KCODE32	0x08
#define SEL_KCODE	0x10
#define SEL_KDATA	0x18
#define SEL_UCODE32	0x23
#define SEL_UDATA	0x2b
#define SEL_UCODE	0x33
#define SEL_NP_DATA	0x38		/* data, not present */
#define SEL_TSS		0x40
#define SEL_LDT		0x50
#define SEL_RO_DATA	0x60		/* read-only data, DPL0 */
#define SEL_XO_CODE	0x68		/* execute-only code, DPL0 */
#define SEL_BASE_DATA	0x78		/* data DPL0, base 0x12345000 */
#define SEL_LDT_UDATA	0x07		/* LDT entry 0: user data, RPL3 */
#define SEL_FREE	0x80		/* 0x80..0xff free for tests */

struct h_page {
	u64 va;
	unsigned int flags;
	u8 data[4096];
};

struct harness {
	struct trapvm_cpu cpu;
	struct h_page pages[H_PAGES];
	unsigned int npages;

	/* what the callbacks saw */
	unsigned int cr3_loads, invlpgs, paging_changes, msr_hook_calls;
	u64 last_cr3, last_invlpg;
	bool last_noflush;
	u64 stats[TRAPVM_STAT_NR];
	u64 x2apic[256];
	u64 dirty;		/* pages written since the last restore */

	/*
	 * ops->cmpxchg: calls, and a write by "another vCPU" it performs
	 * first while race_left > 0 (race_len bytes of race_val at
	 * race_va), so that memory changed since the emulator read it.
	 */
	unsigned int cmpxchgs, race_left;
	u64 race_va, race_val;
	unsigned int race_len;
};

extern const struct trapvm_emu_ops h_ops;

void h_init(struct harness *h);			/* CPL0, 64-bit kernel */
void h_user(struct harness *h);			/* switch to CPL3 user */
void h_map(struct harness *h, u64 va, unsigned int flags);
struct h_page *h_page(struct harness *h, u64 va);
void h_put(struct harness *h, u64 va, const void *buf, unsigned int len);
void h_get(struct harness *h, u64 va, void *buf, unsigned int len);
u64 h_get64(struct harness *h, u64 va);
void h_put64(struct harness *h, u64 va, u64 v);
/* Write instruction bytes (hex string "0f 01 d1") at the current RIP. */
void h_code(struct harness *h, const char *hex);
unsigned int h_hex(const char *hex, u8 *out, unsigned int max);
void h_set_gate(struct harness *h, unsigned int vector, u64 handler, u16 sel,
		unsigned int ist, unsigned int type, unsigned int dpl,
		bool present);
void h_set_desc(struct harness *h, u16 sel, u64 desc);
int h_emulate(struct harness *h, struct trapvm_emu_result *res);
/* Cheap reset to a snapshot (copies only the pages written since). */
void h_restore(struct harness *h, const struct harness *snap);

/* Check that exception @vector was delivered with an error code. */
#define H_FRAME_ERR(h)	h_get64(h, (h)->cpu.gpr[GPR_RSP])

#endif /* _UNIT_EMU_HARNESS_H */
