// SPDX-License-Identifier: GPL-2.0
/*
 * One fuzz iteration: a random virtual CPU state (CPL, IOPL, TF, CR4
 * bits, a corrupted GDT or IDT entry, interesting register values) and
 * random instruction bytes at RIP, run through trapvm_emulate() a few
 * times (following wherever RIP goes), completing I/O exits.  The fake
 * memory's callbacks bound every access, and ASan/UBSan watch the rest.
 *
 * Input layout: [0] flags, [1] selector of what to corrupt, [2..9] the
 * corrupting value, [10..17] register picks, [18..] instruction bytes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emu_harness.h"
#include "fuzz_common.h"

static struct harness H, snap;
static int snap_ready;

static const u64 interesting[] = {
	0, 1, 0x10, 0x18, 0x2b, 0x33, 0x40, 0x50, 0x7, 0xffff,
	H_KDATA, H_KDATA + 0xffc, H_UDATA, H_RODATA, H_GDT, H_IDT,
	H_KSTACK_TOP - 0x100, H_USTACK_TOP - 8, H_KCODE, H_UCODE,
	0x0000800000000000ULL, 0xffff800000000000ULL, 0x00007fffffffffffULL,
	~0ULL, 0x80000000ULL, 0xfee00d00ULL, 0xc0000080ULL, 0x808,
	0x3f8, 0x61, 0x1000, 0xffffffff81000000ULL,
};

static void check(bool cond, const char *what)
{
	if (!cond) {
		fprintf(stderr, "fuzz invariant broken: %s\n", what);
		abort();
	}
}

/* Decoder properties on the raw bytes, in every mode. */
static void fuzz_decode(const u8 *data, unsigned int n)
{
	unsigned int mode;

	for (mode = TRAPVM_MODE_16; mode <= TRAPVM_MODE_64; mode++) {
		struct trapvm_insn a, b;
		u8 *exact;
		int r = trapvm_decode(data, n, mode, &a, NULL);

		if (r != TRAPVM_DECODE_OK && r != TRAPVM_DECODE_INVALID)
			continue;
		check(a.len >= 1 && a.len <= 15 && a.len <= n, "decode len");
		exact = malloc(a.len);	/* ASan: no read past a.len */
		memcpy(exact, data, a.len);
		check(trapvm_decode(exact, a.len, mode, &b, NULL) == r &&
		      b.len == a.len, "decode exact");
		check(trapvm_decode(exact, a.len - 1, mode, &b, NULL) ==
		      TRAPVM_DECODE_TRUNC, "decode truncated");
		free(exact);
	}
}

void fuzz_one(const uint8_t *data, size_t size)
{
	struct trapvm_cpu *cpu = &H.cpu;
	struct trapvm_emu_result res;
	u8 iobuf[32], flags, hdr[18];
	unsigned int i, n;
	u64 val;
	int st;

	if (!snap_ready) {
		h_init(&snap);
		snap_ready = 1;
		H = snap;
	}
	h_restore(&H, &snap);

	memset(hdr, 0, sizeof(hdr));
	memcpy(hdr, data, size < sizeof(hdr) ? size : sizeof(hdr));
	data += size < sizeof(hdr) ? size : sizeof(hdr);
	size -= size < sizeof(hdr) ? size : sizeof(hdr);
	flags = hdr[0];
	memcpy(&val, hdr + 2, 8);

	if (flags & 1) {
		h_user(&H);
		if (hdr[1] & 0x80) {
			/* 32-bit compatibility-mode user code */
			cpu->seg[SREG_CS].selector = SEL_UCODE32;
			cpu->seg[SREG_CS].attr = 0xcffb;
		}
	}
	if (flags & 2)
		cpu->rflags |= TRAPVM_RFLAGS_IOPL;
	if (flags & 4)
		cpu->rflags |= TRAPVM_RFLAGS_TF;
	if (flags & 8)
		cpu->cr4 |= TRAPVM_CR4_UMIP | TRAPVM_CR4_PCIDE | TRAPVM_CR4_DE;
	if (flags & 16)
		cpu->rflags |= TRAPVM_RFLAGS_DF | TRAPVM_RFLAGS_NT;
	if (flags & 32) {
		/* corrupt one GDT entry, IDT gate half or TSS qword */
		unsigned int k = hdr[1];

		if (k < 16)
			h_put64(&H, H_GDT + k * 8, val);
		else if (k < 128)
			h_put64(&H, H_IDT + (k - 16) * 8 * 4, val);
		else
			h_put64(&H, H_TSS + ((k - 128) % 13) * 8, val);
	}
	if (flags & 64)
		cpu->rip = (flags & 1 ? H_UCODE : H_KCODE) + 0x1000 -
			   (hdr[1] % 16);
	if (flags & 128) {
		cpu->efer &= ~TRAPVM_EFER_SCE;
		cpu->cr4 |= TRAPVM_CR4_LA57 & val;
		cpu->interrupt_shadow = 1;
	}
	for (i = 0; i < 8; i++) {
		u8 p = hdr[10 + i];
		u64 v = interesting[p % ARRAY_SIZE(interesting)];

		if (p >= 0xf0)
			v = val ^ p;
		cpu->gpr[i == 4 ? GPR_R8 + (p & 7) : i] = v;
		if (i == 4 && p < 0x10)
			cpu->gpr[GPR_RSP] = v;
	}

	n = size > 15 ? 15 : size;
	fuzz_decode(data, n);
	{
		/* code may hang off the page: put what fits */
		u64 va;

		for (i = 0, va = cpu->rip; i < n; i++, va++)
			if (h_page(&H, va))
				h_put(&H, va, data + i, 1);
	}

	for (i = 0; i < 4; i++) {
		memset(&res, 0, sizeof(res));
		res.io_buf = iobuf;
		res.io_buf_size = (flags & 8) ? sizeof(iobuf) : 0;
		st = trapvm_emulate(cpu, &h_ops, &H, &res);
		check(st >= TRAPVM_EMU_CONTINUE && st <= TRAPVM_EMU_MMIO,
		      "status");
		check(res.insn_len <= 15, "insn_len");
		if (st == TRAPVM_EMU_IO) {
			check(res.io.size == 1 || res.io.size == 2 ||
			      res.io.size == 4, "io size");
			check(res.io.count >= 1 &&
			      res.io.count * res.io.size <=
			      (res.io_buf_size ? res.io_buf_size : 8), "io count");
			if (res.io.in) {
				memset(iobuf, 0xab, sizeof(iobuf));
				trapvm_emulate_in_complete(cpu, &h_ops, &H, &res,
							   res.io.data);
			}
		}
		if (st == TRAPVM_EMU_SHUTDOWN) {
			check(cpu->shutdown, "shutdown flag");
			break;
		}
		if (st == TRAPVM_EMU_UNHANDLED)
			break;
		if (trapvm_cpu_mode(cpu) == TRAPVM_MODE_64)
			check(trapvm_is_canonical(cpu, cpu->rip) ||
			      st == TRAPVM_EMU_UNHANDLED, "canonical rip");
		/* the next iteration runs whatever RIP points at now */
	}
	/* exercise the delivery entry points on the final state too */
	if (!cpu->shutdown && size > 15)
		trapvm_deliver_interrupt(cpu, &h_ops, &H, data[15]);
}
