// SPDX-License-Identifier: GPL-2.0
/*
 * Tests of the emulated data instructions (emulate_data.c).  The oracle
 * for results and flags is the host CPU itself: every instruction (a
 * template with a [rdi] memory operand) is executed natively from an
 * executable buffer on a host copy of the same memory and registers, and
 * the emulator must produce the same memory, registers and the flags the
 * SDM defines for that instruction (flags it leaves undefined are not
 * compared).  Then MMIO loads/stores and REP string operations.
 *
 * Locked operations (SDM Vol. 3A 9.1.2: LOCK-prefixed read-modify-writes,
 * XCHG with memory, and CMPXCHG's compare) must write back through
 * ops->cmpxchg, and when memory changed between the emulator's read and
 * that write-back (another vCPU), the instruction must not be executed
 * at all: TRAPVM_EMU_RETRY with the whole CPU state unchanged and the
 * other writer's value left in memory; executed again, it must give what
 * the host CPU gives on the new memory.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "tap.h"
#include "emu_harness.h"

static struct harness H, snap;
#define CPU (H.cpu)

#define FL_ALL	0x8d5ULL	/* CF PF AF ZF SF OF */
#define FL_NOAF	0x8c5ULL
#define FL_CF	0x1ULL

struct regs {
	u64 rax, rcx, rdx, rsi, rdi, flags;
	u64 code;
};

/* Run @code (ends in RET) natively with the registers in @r. */
static void native(struct regs *r)
{
	asm volatile("sub $128, %%rsp\n\t"	/* the red zone */
		     "push %%rbx\n\t"
		     "push %%rbp\n\t"
		     "push %0\n\t"
		     "mov %0, %%rbp\n\t"
		     "mov 0(%%rbp), %%rax\n\t"
		     "mov 8(%%rbp), %%rcx\n\t"
		     "mov 16(%%rbp), %%rdx\n\t"
		     "mov 24(%%rbp), %%rsi\n\t"
		     "mov 32(%%rbp), %%rdi\n\t"
		     "push 40(%%rbp)\n\t"
		     "popfq\n\t"
		     "call *48(%%rbp)\n\t"
		     "pushfq\n\t"
		     "mov 8(%%rsp), %%rbp\n\t"
		     "pop 40(%%rbp)\n\t"
		     "mov %%rax, 0(%%rbp)\n\t"
		     "mov %%rcx, 8(%%rbp)\n\t"
		     "mov %%rdx, 16(%%rbp)\n\t"
		     "mov %%rsi, 24(%%rbp)\n\t"
		     "mov %%rdi, 32(%%rbp)\n\t"
		     "pop %%rbp\n\t"		/* the saved %0 */
		     "pop %%rbp\n\t"
		     "pop %%rbx\n\t"
		     "add $128, %%rsp\n\t"
		     : : "r"(r)
		     : "rax", "rcx", "rdx", "rsi", "rdi", "memory", "cc");
}

static u64 rng = 0x8badf00ddeadbeefULL;

static u64 rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* Random values biased to the interesting edges of each width. */
static u64 edge(void)
{
	static const u64 v[] = {
		0, 1, 2, 0x7f, 0x80, 0xff, 0x100, 0x7fff, 0x8000, 0xffff,
		0x7fffffff, 0x80000000, 0xffffffff, 0x7fffffffffffffffULL,
		0x8000000000000000ULL, ~0ULL, 0x0f, 0x10, 0xf0,
	};

	if (rnd() & 1)
		return rnd();
	return v[rnd() % ARRAY_SIZE(v)] ^ ((rnd() & 3) == 0 ? 1 : 0);
}

struct tmpl {
	const char *hex;	/* [rdi] memory operand, cl/ecx/rcx register */
	u64 flags;		/* flags the SDM defines */
	int bit_offset;		/* register bit offset: keep RCX small */
};

static const struct tmpl tmpls[] = {
	/* ALU E,G and G,E at every size, and the LOCK forms */
	{ "00 0f", FL_ALL }, { "01 0f", FL_ALL }, { "66 01 0f", FL_ALL },
	{ "48 01 0f", FL_ALL }, { "02 0f", FL_ALL }, { "48 03 0f", FL_ALL },
	{ "00 37", FL_ALL },	/* add [rdi], dh */
	{ "40 00 37", FL_ALL },	/* add [rdi], sil */
	{ "08 0f", FL_NOAF }, { "09 0f", FL_NOAF }, { "48 0b 0f", FL_NOAF },
	{ "10 0f", FL_ALL }, { "11 0f", FL_ALL }, { "48 13 0f", FL_ALL },
	{ "18 0f", FL_ALL }, { "19 0f", FL_ALL }, { "66 1b 0f", FL_ALL },
	{ "20 0f", FL_NOAF }, { "21 0f", FL_NOAF }, { "48 23 0f", FL_NOAF },
	{ "28 0f", FL_ALL }, { "29 0f", FL_ALL }, { "48 2b 0f", FL_ALL },
	{ "30 0f", FL_NOAF }, { "31 0f", FL_NOAF }, { "66 33 0f", FL_NOAF },
	{ "38 0f", FL_ALL }, { "39 0f", FL_ALL }, { "48 3b 0f", FL_ALL },
	{ "f0 01 0f", FL_ALL }, { "f0 48 29 0f", FL_ALL },
	{ "f0 08 0f", FL_NOAF },
	/* group 1 with immediates */
	{ "80 07 85", FL_ALL }, { "80 17 7f", FL_ALL }, { "80 3f 80", FL_ALL },
	{ "81 07 78 56 34 12", FL_ALL }, { "48 81 2f 00 00 00 80", FL_ALL },
	{ "66 81 1f ff 7f", FL_ALL }, { "83 27 f0", FL_NOAF },
	{ "48 83 0f ff", FL_NOAF }, { "48 83 37 01", FL_NOAF },
	{ "f0 48 83 07 01", FL_ALL },
	/* TEST, XCHG, MOV */
	{ "84 0f", FL_NOAF }, { "48 85 0f", FL_NOAF },
	{ "f6 07 81", FL_NOAF }, { "f7 07 00 00 00 80", FL_NOAF },
	{ "86 0f", FL_ALL }, { "48 87 0f", FL_ALL }, { "66 87 0f", FL_ALL },
	{ "88 0f", FL_ALL }, { "89 0f", FL_ALL }, { "66 89 0f", FL_ALL },
	{ "48 89 0f", FL_ALL }, { "8a 0f", FL_ALL }, { "8b 0f", FL_ALL },
	{ "48 8b 0f", FL_ALL }, { "8a 37", FL_ALL },	/* mov dh, [rdi] */
	{ "c6 07 5a", FL_ALL }, { "48 c7 07 00 00 00 80", FL_ALL },
	{ "66 c7 07 34 12", FL_ALL },
	{ "0f b6 0f", FL_ALL }, { "48 0f b7 0f", FL_ALL },
	{ "0f be 0f", FL_ALL }, { "48 0f bf 0f", FL_ALL },
	{ "48 63 0f", FL_ALL }, { "0f c3 0f", FL_ALL },
	/* CMPXCHG (RAX is the accumulator), XADD */
	{ "0f b1 0f", FL_ALL }, { "f0 48 0f b1 0f", FL_ALL },
	{ "0f b0 0f", FL_ALL }, { "0f c1 0f", FL_ALL },
	{ "f0 48 0f c1 0f", FL_ALL }, { "0f c0 0f", FL_ALL },
	/* INC/DEC (CF kept), NOT, NEG */
	{ "fe 07", FL_ALL }, { "ff 0f", FL_ALL }, { "48 ff 07", FL_ALL },
	{ "66 ff 0f", FL_ALL }, { "f0 ff 07", FL_ALL },
	{ "f6 17", FL_ALL }, { "48 f7 17", FL_ALL }, { "f6 1f", FL_ALL },
	{ "48 f7 1f", FL_ALL }, { "66 f7 1f", FL_ALL },
	/* bit tests: only CF is defined */
	{ "0f a3 0f", FL_CF, 1 }, { "48 0f ab 0f", FL_CF, 1 },
	{ "0f b3 0f", FL_CF, 1 }, { "66 0f bb 0f", FL_CF, 1 },
	{ "f0 48 0f ab 0f", FL_CF, 1 },
	{ "0f ba 27 05", FL_CF }, { "48 0f ba 2f 3f", FL_CF },
	{ "0f ba 37 21", FL_CF }, { "0f ba 3f 0f", FL_CF },
	/* more LOCK forms: every size, BTR/BTC, NOT/NEG/DEC, XCHG */
	{ "f0 0f b0 0f", FL_ALL }, { "f0 66 0f b1 0f", FL_ALL },
	{ "f0 0f c0 0f", FL_ALL }, { "f0 0f c1 0f", FL_ALL },
	{ "f0 86 0f", FL_ALL }, { "f0 48 87 0f", FL_ALL },
	{ "f0 48 0f b3 0f", FL_CF, 1 }, { "f0 0f bb 0f", FL_CF, 1 },
	{ "f0 48 0f ba 2f 3f", FL_CF }, { "f0 0f ba 37 05", FL_CF },
	{ "f0 66 0f ba 3f 0f", FL_CF },
	{ "f0 fe 07", FL_ALL }, { "f0 48 ff 0f", FL_ALL },
	{ "f0 f6 17", FL_ALL }, { "f0 48 f7 1f", FL_ALL },
	{ "f0 66 11 0f", FL_ALL }, { "f0 48 19 0f", FL_ALL },
	{ "f0 20 0f", FL_NOAF }, { "f0 48 31 0f", FL_NOAF },
	{ "f0 80 07 85", FL_ALL }, { "f0 48 81 2f 00 00 00 80", FL_ALL },
};

/*
 * Must the write-back be atomic (ops->cmpxchg)?  LOCK, XCHG with memory,
 * CMPXCHG.  Parsed from the bytes, independently of the decoder.
 */
static bool tmpl_atomic(const char *hex)
{
	u8 b[16];
	unsigned int n = h_hex(hex, b, sizeof(b)), i = 0;

	if (n && b[0] == 0xf0)
		return true;
	while (i < n && (b[i] == 0x66 || (b[i] & 0xf0) == 0x40))
		i++;
	if (i < n && (b[i] == 0x86 || b[i] == 0x87))
		return true;
	return i + 1 < n && b[i] == 0x0f && (b[i + 1] == 0xb0 ||
					     b[i + 1] == 0xb1);
}

#define BUF	64
#define MID	24		/* rdi points here, inside BUF */

/*
 * An executable page for running instruction templates natively, and the
 * harness reset to its snapshot; NULL (and a failed check) without one.
 */
static u8 *native_setup(void)
{
	u8 *code = mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC,
			MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (code == MAP_FAILED) {
		EXPECT(0, "mmap exec buffer");
		return NULL;
	}
	h_init(&snap);
	H = snap;
	return code;
}

static void test_against_native(void)
{
	u8 *code = native_setup();
	unsigned int t, iter, bad = 0, runs = 0;

	if (!code)
		return;
	for (t = 0; t < ARRAY_SIZE(tmpls); t++) {
		u8 insn[16];
		unsigned int n = h_hex(tmpls[t].hex, insn, sizeof(insn));

		memcpy(code, insn, n);
		code[n] = 0xc3;		/* ret */
		for (iter = 0; iter < 300; iter++) {
			struct trapvm_emu_result res;
			u8 hostmem[BUF], guestmem[BUF];
			struct regs r;
			unsigned int i;
			int st;

			for (i = 0; i < BUF; i++)
				hostmem[i] = rnd();
			for (i = 0; i < 8; i++)
				hostmem[MID + i] = edge() >> (8 * (rnd() % 2));
			r.rax = (rnd() & 1) ? edge() : 0;
			r.rcx = edge();
			r.rdx = edge();
			r.rsi = edge();
			if (iter & 1)		/* CMPXCHG: make them equal */
				memcpy(&r.rax, hostmem + MID, 8);
			if (tmpls[t].bit_offset)
				r.rcx = (s64)(rnd() % 192) - 64;
			r.flags = 0x2 | (rnd() & FL_ALL);
			r.rdi = (u64)(hostmem + MID);
			r.code = (u64)code;

			/* the emulator, on the same state */
			h_restore(&H, &snap);
			CPU.rip = H_KCODE;
			h_code(&H, tmpls[t].hex);
			h_put(&H, H_KDATA, hostmem, BUF);
			CPU.gpr[GPR_RAX] = r.rax;
			CPU.gpr[GPR_RCX] = r.rcx;
			CPU.gpr[GPR_RDX] = r.rdx;
			CPU.gpr[GPR_RSI] = r.rsi;
			CPU.gpr[GPR_RDI] = H_KDATA + MID;
			CPU.rflags = r.flags;
			memset(&res, 0, sizeof(res));
			st = trapvm_emulate(&CPU, &h_ops, &H, &res);

			native(&r);
			runs++;

			/* locked ones write back once through ops->cmpxchg */
			if (H.cmpxchgs != tmpl_atomic(tmpls[t].hex)) {
				if (bad++ < 10)
					printf("# %s: %u cmpxchg calls\n",
					       tmpls[t].hex, H.cmpxchgs);
			}
			h_get(&H, H_KDATA, guestmem, BUF);
			if (st != TRAPVM_EMU_CONTINUE || CPU.rip != H_KCODE + n ||
			    memcmp(guestmem, hostmem, BUF) ||
			    CPU.gpr[GPR_RAX] != r.rax ||
			    CPU.gpr[GPR_RCX] != r.rcx ||
			    CPU.gpr[GPR_RDX] != r.rdx ||
			    CPU.gpr[GPR_RSI] != r.rsi ||
			    ((CPU.rflags ^ r.flags) & tmpls[t].flags)) {
				if (bad++ < 10)
					printf("# %s: st %d rax %#llx/%#llx rcx %#llx/%#llx flags %#llx/%#llx mem %s\n",
					       tmpls[t].hex, st,
					       (unsigned long long)CPU.gpr[GPR_RAX],
					       (unsigned long long)r.rax,
					       (unsigned long long)CPU.gpr[GPR_RCX],
					       (unsigned long long)r.rcx,
					       (unsigned long long)CPU.rflags,
					       (unsigned long long)r.flags,
					       memcmp(guestmem, hostmem, BUF) ?
					       "differs" : "same");
			}
		}
	}
	printf("# %u native comparisons, %u mismatches\n", runs, bad);
	EXPECT_EQ(bad, 0);
	munmap(code, 4096);
}

/* Locked forms for the race test: their operand is the 8 bytes at MID. */
static const struct tmpl race_tmpls[] = {
	{ "f0 48 01 0f", FL_ALL },		/* lock add [rdi], rcx */
	{ "f0 83 07 02", FL_ALL },		/* lock add dword [rdi], 2 */
	{ "f0 48 0f c1 0f", FL_ALL },		/* lock xadd [rdi], rcx */
	{ "f0 0f c0 0f", FL_ALL },		/* lock xadd [rdi], cl */
	{ "f0 48 0f b1 0f", FL_ALL },		/* lock cmpxchg [rdi], rcx */
	{ "0f b1 0f", FL_ALL },			/* cmpxchg [rdi], ecx */
	{ "66 0f b1 0f", FL_ALL },		/* cmpxchg [rdi], cx */
	{ "48 87 0f", FL_ALL },			/* xchg [rdi], rcx */
	{ "86 0f", FL_ALL },			/* xchg [rdi], cl */
	{ "f0 48 0f ab 0f", FL_CF, 1 },		/* lock bts [rdi], rcx */
	{ "f0 0f b3 0f", FL_CF, 1 },		/* lock btr [rdi], ecx */
	{ "f0 48 0f ba 3f 07", FL_CF },		/* lock btc qword [rdi], 7 */
	{ "f0 48 ff 07", FL_ALL },		/* lock inc qword [rdi] */
	{ "f0 66 ff 0f", FL_ALL },		/* lock dec word [rdi] */
	{ "f0 48 f7 1f", FL_ALL },		/* lock neg qword [rdi] */
	{ "f0 f7 17", FL_ALL },			/* lock not dword [rdi] */
	{ "f0 48 09 0f", FL_NOAF },		/* lock or [rdi], rcx */
	{ "f0 48 19 0f", FL_ALL },		/* lock sbb [rdi], rcx */
};

/*
 * Memory changes between the emulator's read and its locked write-back:
 * TRAPVM_EMU_RETRY, nothing executed (the whole CPU state as before, no
 * #DB for TF), the other writer's value intact.  Run again, the result is
 * the host CPU's on the new memory.
 */
static void test_locked_retry(void)
{
	u8 *code = native_setup();
	unsigned int t, iter, bad = 0, runs = 0;

	if (!code)
		return;
	for (t = 0; t < ARRAY_SIZE(race_tmpls); t++) {
		const char *hex = race_tmpls[t].hex;
		unsigned int n = h_hex(hex, code, 16);

		code[n] = 0xc3;		/* ret */
		for (iter = 0; iter < 200; iter++) {
			struct trapvm_emu_result res;
			struct trapvm_cpu before;
			u8 mem[BUF], guestmem[BUF];
			u64 other, retries;
			struct regs r;
			unsigned int i;
			int st1, st2;
			bool tf = iter % 8 == 7;

			for (i = 0; i < BUF; i++)
				mem[i] = rnd();
			r.rax = edge();
			r.rcx = edge();
			if (race_tmpls[t].bit_offset)
				r.rcx = rnd() % 16;
			/* another vCPU's value: differs in the low byte */
			memcpy(&other, mem + MID, 8);
			other ^= 1 | (rnd() << 1);
			if (iter & 1)	/* CMPXCHG: equal to what is read */
				memcpy(&r.rax, mem + MID, 8);
			else if (iter & 2)	/* or to the new value */
				r.rax = other;
			r.rdx = edge();
			r.rsi = edge();
			r.flags = 0x2 | (rnd() & FL_ALL);

			h_restore(&H, &snap);
			CPU.rip = H_KCODE;
			h_code(&H, hex);
			h_put(&H, H_KDATA, mem, BUF);
			CPU.gpr[GPR_RAX] = r.rax;
			CPU.gpr[GPR_RCX] = r.rcx;
			CPU.gpr[GPR_RDX] = r.rdx;
			CPU.gpr[GPR_RSI] = r.rsi;
			CPU.gpr[GPR_RDI] = H_KDATA + MID;
			CPU.rflags = r.flags | (tf ? TRAPVM_RFLAGS_TF : 0);
			CPU.interrupt_shadow = iter % 5 == 0;
			memcpy(&before, &CPU, sizeof(before));
			H.race_left = 1;
			H.race_va = H_KDATA + MID;
			H.race_val = other;
			H.race_len = 8;
			retries = H.stats[TRAPVM_STAT_EMUL_RETRY];
			memset(&res, 0, sizeof(res));
			st1 = trapvm_emulate(&CPU, &h_ops, &H, &res);
			runs++;

			memcpy(mem + MID, &other, 8);
			h_get(&H, H_KDATA, guestmem, BUF);
			if (st1 != TRAPVM_EMU_RETRY ||
			    memcmp(&before, &CPU, sizeof(before)) ||
			    memcmp(guestmem, mem, BUF) ||
			    H.stats[TRAPVM_STAT_EMUL_RETRY] != retries + 1) {
				if (bad++ < 10)
					printf("# %s race: st %d rip %#llx flags %#llx/%#llx rax %#llx/%#llx mem %s\n",
					       hex, st1,
					       (unsigned long long)CPU.rip,
					       (unsigned long long)CPU.rflags,
					       (unsigned long long)before.rflags,
					       (unsigned long long)CPU.gpr[GPR_RAX],
					       (unsigned long long)r.rax,
					       memcmp(guestmem, mem, BUF) ?
					       "differs" : "same");
				continue;
			}
			if (tf)
				continue;

			/* executed again with nobody interfering */
			CPU.interrupt_shadow = 0;
			memset(&res, 0, sizeof(res));
			st2 = trapvm_emulate(&CPU, &h_ops, &H, &res);
			r.rdi = (u64)(mem + MID);
			r.code = (u64)code;
			native(&r);
			h_get(&H, H_KDATA, guestmem, BUF);
			if (st2 != TRAPVM_EMU_CONTINUE ||
			    CPU.rip != H_KCODE + n ||
			    memcmp(guestmem, mem, BUF) ||
			    CPU.gpr[GPR_RAX] != r.rax ||
			    CPU.gpr[GPR_RCX] != r.rcx ||
			    ((CPU.rflags ^ r.flags) & race_tmpls[t].flags)) {
				if (bad++ < 10)
					printf("# %s again: st %d rax %#llx/%#llx rcx %#llx/%#llx flags %#llx/%#llx\n",
					       hex, st2,
					       (unsigned long long)CPU.gpr[GPR_RAX],
					       (unsigned long long)r.rax,
					       (unsigned long long)CPU.gpr[GPR_RCX],
					       (unsigned long long)r.rcx,
					       (unsigned long long)CPU.rflags,
					       (unsigned long long)r.flags);
			}
		}
	}
	printf("# %u races, %u mismatches\n", runs, bad);
	EXPECT_EQ(bad, 0);
	munmap(code, 4096);
}

/* Locked operations and faults, one by one against the SDM. */
static void test_locked(void)
{
	struct trapvm_emu_result res;
	u64 start;

	/* lock xadd: the old value to the register, the sum to memory */
	h_init(&H);
	h_put64(&H, H_KDATA, 40);
	CPU.gpr[GPR_RCX] = 2;
	CPU.gpr[GPR_RDI] = H_KDATA;
	start = CPU.rip;
	h_code(&H, "f0 48 0f c1 0f");
	EXPECT_EQ(h_emulate(&H, &res), TRAPVM_EMU_CONTINUE);
	EXPECT_EQ(h_get64(&H, H_KDATA), 42);
	EXPECT_EQ(CPU.gpr[GPR_RCX], 40);
	EXPECT_EQ(CPU.rip, start + 5);
	EXPECT_EQ(H.cmpxchgs, 1);

	/* lock bts/btr: CF is the bit's old value */
	h_init(&H);
	h_put64(&H, H_KDATA, 0x10);
	CPU.gpr[GPR_RDI] = H_KDATA;
	CPU.gpr[GPR_RCX] = 36;
	h_code(&H, "f0 48 0f ab 0f");		/* lock bts [rdi], rcx */
	EXPECT_EQ(h_emulate(&H, &res), TRAPVM_EMU_CONTINUE);
	EXPECT_EQ(h_get64(&H, H_KDATA), 0x1000000010ULL);
	EXPECT_EQ(CPU.rflags & TRAPVM_RFLAGS_CF, 0);
	h_code(&H, "f0 48 0f ba 37 04");	/* lock btr qword [rdi], 4 */
	EXPECT_EQ(h_emulate(&H, &res), TRAPVM_EMU_CONTINUE);
	EXPECT_EQ(h_get64(&H, H_KDATA), 0x1000000000ULL);
	EXPECT_EQ(CPU.rflags & TRAPVM_RFLAGS_CF, TRAPVM_RFLAGS_CF);

	/* lock cmpxchg that fails: RAX gets memory, ZF clear */
	h_init(&H);
	h_put64(&H, H_KDATA, 7);
	CPU.gpr[GPR_RAX] = 6;
	CPU.gpr[GPR_RCX] = 99;
	CPU.gpr[GPR_RDI] = H_KDATA;
	h_code(&H, "f0 48 0f b1 0f");
	EXPECT_EQ(h_emulate(&H, &res), TRAPVM_EMU_CONTINUE);
	EXPECT_EQ(h_get64(&H, H_KDATA), 7);
	EXPECT_EQ(CPU.gpr[GPR_RAX], 7);
	EXPECT_EQ(CPU.rflags & (1 << 6), 0);

	/* a locked write to a read-only page: #PF(P|W), memory as it was */
	h_init(&H);
	h_put64(&H, H_RODATA, 5);
	CPU.gpr[GPR_RDI] = H_RODATA;
	CPU.gpr[GPR_RCX] = 1;
	start = CPU.rip;
	h_code(&H, "f0 48 01 0f");
	EXPECT_EQ(h_emulate(&H, &res), TRAPVM_EMU_EXCEPTION);
	EXPECT_EQ(CPU.rip, H_HANDLER(14));
	EXPECT_EQ(h_get64(&H, CPU.gpr[GPR_RSP]), 3);
	EXPECT_EQ(h_get64(&H, CPU.gpr[GPR_RSP] + 8), start);
	EXPECT_EQ(CPU.cr2, H_RODATA);
	EXPECT_EQ(h_get64(&H, H_RODATA), 5);

	/* xchg with a read-only page faults too, the register unchanged */
	h_init(&H);
	CPU.gpr[GPR_RDI] = H_RODATA;
	CPU.gpr[GPR_RCX] = 0x1234;
	h_code(&H, "48 87 0f");
	EXPECT_EQ(h_emulate(&H, &res), TRAPVM_EMU_EXCEPTION);
	EXPECT_EQ(CPU.rip, H_HANDLER(14));
	EXPECT_EQ(CPU.gpr[GPR_RCX], 0x1234);

	/* a locked read-modify-write of device memory: not emulated */
	h_init(&H);
	CPU.gpr[GPR_RDI] = H_MMIO;
	start = CPU.rip;
	h_code(&H, "f0 0f c1 0f");
	EXPECT_EQ(h_emulate(&H, &res), TRAPVM_EMU_UNHANDLED);
	EXPECT_EQ(CPU.rip, start);
}

static void test_faults(void)
{
	struct trapvm_emu_result res;
	u64 start;

	/* a store to a read-only page: #PF(P|W), memory untouched */
	h_init(&H);
	CPU.gpr[GPR_RDI] = H_RODATA;
	start = CPU.rip;
	h_code(&H, "89 0f");
	memset(&res, 0, sizeof(res));
	EXPECT_EQ(trapvm_emulate(&CPU, &h_ops, &H, &res),
		  TRAPVM_EMU_EXCEPTION);
	EXPECT_EQ(CPU.rip, H_HANDLER(14));
	EXPECT_EQ(h_get64(&H, CPU.gpr[GPR_RSP]), 3);
	EXPECT_EQ(h_get64(&H, CPU.gpr[GPR_RSP] + 8), start);
	EXPECT_EQ(CPU.cr2, H_RODATA);

	/* user access to a supervisor page */
	h_init(&H);
	h_user(&H);
	CPU.gpr[GPR_RDI] = H_KDATA;
	h_code(&H, "8b 0f");
	memset(&res, 0, sizeof(res));
	trapvm_emulate(&CPU, &h_ops, &H, &res);
	EXPECT_EQ(CPU.rip, H_HANDLER(14));
	EXPECT_EQ(h_get64(&H, CPU.gpr[GPR_RSP]), 5);

	/* a non-canonical address: #GP(0); through RSP: #SS(0) */
	h_init(&H);
	CPU.gpr[GPR_RDI] = 0x0000800000000000ULL;
	h_code(&H, "8b 0f");
	memset(&res, 0, sizeof(res));
	trapvm_emulate(&CPU, &h_ops, &H, &res);
	EXPECT_EQ(CPU.rip, H_HANDLER(13));
	h_init(&H);
	CPU.gpr[GPR_RSP] = 0x0000800000000000ULL;
	h_code(&H, "8b 0c 24");
	memset(&res, 0, sizeof(res));
	trapvm_emulate(&CPU, &h_ops, &H, &res);
	EXPECT_EQ(res.fault.vector, TRAPVM_SS_VECTOR);

	/* LOCK on a MOV or a CMP: #UD */
	h_init(&H);
	CPU.gpr[GPR_RDI] = H_KDATA;
	h_code(&H, "f0 89 0f");
	memset(&res, 0, sizeof(res));
	trapvm_emulate(&CPU, &h_ops, &H, &res);
	EXPECT_EQ(CPU.rip, H_HANDLER(6));
	h_init(&H);
	CPU.gpr[GPR_RDI] = H_KDATA;
	h_code(&H, "f0 39 0f");
	memset(&res, 0, sizeof(res));
	trapvm_emulate(&CPU, &h_ops, &H, &res);
	EXPECT_EQ(CPU.rip, H_HANDLER(6));

	/* register-only forms never fault: not for the emulator */
	h_init(&H);
	h_code(&H, "01 c8");
	memset(&res, 0, sizeof(res));
	EXPECT_EQ(trapvm_emulate(&CPU, &h_ops, &H, &res),
		  TRAPVM_EMU_UNHANDLED);
}

static void test_mmio(void)
{
	struct trapvm_emu_result res;
	u64 start;

	/* mov eax, [rdi]: a load the caller completes */
	h_init(&H);
	CPU.gpr[GPR_RAX] = ~0ULL;
	CPU.gpr[GPR_RDI] = H_MMIO + 0x30;
	start = CPU.rip;
	h_code(&H, "8b 07");
	memset(&res, 0, sizeof(res));
	EXPECT_EQ(trapvm_emulate(&CPU, &h_ops, &H, &res), TRAPVM_EMU_MMIO);
	EXPECT_EQ(res.mmio.gva, H_MMIO + 0x30);
	EXPECT_EQ(res.mmio.len, 4);
	EXPECT_EQ(res.mmio.is_write, 0);
	EXPECT_EQ(CPU.rip, start);
	trapvm_emulate_mmio_complete(&CPU, &res, (u8[]){ 0x78, 0x56, 0x34,
							 0x12 });
	EXPECT_EQ(CPU.gpr[GPR_RAX], 0x12345678);	/* zero-extended */
	EXPECT_EQ(CPU.rip, start + 2);

	/* movsx rax, byte [rdi] */
	h_init(&H);
	CPU.gpr[GPR_RDI] = H_MMIO;
	start = CPU.rip;
	h_code(&H, "48 0f be 07");
	memset(&res, 0, sizeof(res));
	EXPECT_EQ(trapvm_emulate(&CPU, &h_ops, &H, &res), TRAPVM_EMU_MMIO);
	EXPECT_EQ(res.mmio.len, 1);
	trapvm_emulate_mmio_complete(&CPU, &res, (u8[]){ 0x80 });
	EXPECT_EQ(CPU.gpr[GPR_RAX], 0xffffffffffffff80ULL);

	/* mov [rdi], ecx: a store, complete at once */
	h_init(&H);
	CPU.gpr[GPR_RCX] = 0xaabbccdd11223344ULL;
	CPU.gpr[GPR_RDI] = H_MMIO + 0xb0;
	start = CPU.rip;
	h_code(&H, "89 0f");
	memset(&res, 0, sizeof(res));
	EXPECT_EQ(trapvm_emulate(&CPU, &h_ops, &H, &res), TRAPVM_EMU_MMIO);
	EXPECT_EQ(res.mmio.is_write, 1);
	EXPECT_EQ(res.mmio.len, 4);
	EXPECT(!memcmp(res.mmio.data, (u8[]){ 0x44, 0x33, 0x22, 0x11 }, 4),
	       "store data");
	EXPECT_EQ(CPU.rip, start + 2);

	/* mov dword [rdi], imm32 */
	h_init(&H);
	CPU.gpr[GPR_RDI] = H_MMIO + 0x80;
	h_code(&H, "c7 07 10 00 00 00");
	memset(&res, 0, sizeof(res));
	EXPECT_EQ(trapvm_emulate(&CPU, &h_ops, &H, &res), TRAPVM_EMU_MMIO);
	EXPECT_EQ(res.mmio.data[0], 0x10);

	/* read-modify-write on device memory: not emulated */
	h_init(&H);
	CPU.gpr[GPR_RDI] = H_MMIO;
	start = CPU.rip;
	h_code(&H, "01 0f");
	memset(&res, 0, sizeof(res));
	EXPECT_EQ(trapvm_emulate(&CPU, &h_ops, &H, &res),
		  TRAPVM_EMU_UNHANDLED);
	EXPECT_EQ(CPU.rip, start);
}

static void test_strings(void)
{
	struct trapvm_emu_result res;
	u8 buf[32];
	u64 start;

	/* rep stosq: 3 qwords */
	h_init(&H);
	CPU.gpr[GPR_RAX] = 0x1122334455667788ULL;
	CPU.gpr[GPR_RDI] = H_KDATA;
	CPU.gpr[GPR_RCX] = 3;
	start = CPU.rip;
	h_code(&H, "f3 48 ab");
	memset(&res, 0, sizeof(res));
	EXPECT_EQ(trapvm_emulate(&CPU, &h_ops, &H, &res),
		  TRAPVM_EMU_CONTINUE);
	EXPECT_EQ(h_get64(&H, H_KDATA + 16), 0x1122334455667788ULL);
	EXPECT_EQ(h_get64(&H, H_KDATA + 24), 0);
	EXPECT_EQ(CPU.gpr[GPR_RDI], H_KDATA + 24);
	EXPECT_EQ(CPU.gpr[GPR_RCX], 0);
	EXPECT_EQ(CPU.rip, start + 3);

	/* rep movsb backwards (DF=1) */
	h_init(&H);
	h_put(&H, H_KDATA, "abcde", 5);
	CPU.rflags |= TRAPVM_RFLAGS_DF;
	CPU.gpr[GPR_RSI] = H_KDATA + 4;
	CPU.gpr[GPR_RDI] = H_KDATA + 0x104;
	CPU.gpr[GPR_RCX] = 5;
	h_code(&H, "f3 a4");
	memset(&res, 0, sizeof(res));
	trapvm_emulate(&CPU, &h_ops, &H, &res);
	h_get(&H, H_KDATA + 0x100, buf, 5);
	EXPECT(!memcmp(buf, "abcde", 5), "movsb data");
	EXPECT_EQ(CPU.gpr[GPR_RSI], H_KDATA - 1);
	EXPECT_EQ(CPU.gpr[GPR_RCX], 0);

	/* a long count: 64 elements per call, RIP stays until done */
	h_init(&H);
	CPU.gpr[GPR_RDI] = H_KDATA;
	CPU.gpr[GPR_RCX] = 100;
	start = CPU.rip;
	h_code(&H, "f3 aa");
	memset(&res, 0, sizeof(res));
	trapvm_emulate(&CPU, &h_ops, &H, &res);
	EXPECT_EQ(CPU.gpr[GPR_RCX], 36);
	EXPECT_EQ(CPU.rip, start);
	trapvm_emulate(&CPU, &h_ops, &H, &res);
	EXPECT_EQ(CPU.gpr[GPR_RCX], 0);
	EXPECT_EQ(CPU.rip, start + 2);

	/* a fault part-way: the elements before it are done */
	h_init(&H);
	CPU.gpr[GPR_RDI] = H_KDATA + 0xffc;
	CPU.gpr[GPR_RCX] = 8;
	start = CPU.rip;
	h_code(&H, "f3 aa");
	memset(&res, 0, sizeof(res));
	trapvm_emulate(&CPU, &h_ops, &H, &res);
	EXPECT_EQ(CPU.rip, H_HANDLER(14));
	EXPECT_EQ(CPU.cr2, H_KDATA + 0x1000);
	EXPECT_EQ(CPU.gpr[GPR_RCX], 4);
	EXPECT_EQ(CPU.gpr[GPR_RDI], H_KDATA + 0x1000);
	EXPECT_EQ(h_get64(&H, CPU.gpr[GPR_RSP] + 8), start);
}

int main(void)
{
	RUN(test_against_native);
	RUN(test_locked_retry);
	RUN(test_locked);
	RUN(test_faults);
	RUN(test_mmio);
	RUN(test_strings);
	return tap_done();
}
