// SPDX-License-Identifier: GPL-2.0
/*
 * Decoder tests.  The oracle is a table of encodings with their lengths
 * worked out by hand from the Intel SDM volume 2 (opcode maps of
 * appendix A, ModRM/SIB tables 2-1..2-3, the 64-bit mode rules of 2.2.1,
 * VEX/EVEX layouts of 2.3 and 2.7), not from the decoder.  Then
 * randomized properties every correct length decoder has.
 */
#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "emu_harness.h"

struct enc {
	int mode;		/* 64, 32, 16 */
	const char *hex;
	int len;		/* expected length; <0: expected error */
	const char *what;
};

#define E_TRUNC		(-TRAPVM_DECODE_TRUNC)
#define E_LONG		(-TRAPVM_DECODE_TOO_LONG)
#define E_INVAL		(-TRAPVM_DECODE_INVALID)

static const struct enc table[] = {
	{ 64, "90", 1, "nop" },
	{ 64, "c3", 1, "ret" },
	{ 64, "cc", 1, "int3" },
	{ 64, "cd 80", 2, "int 0x80" },
	{ 64, "f4", 1, "hlt" },
	{ 64, "fa", 1, "cli" },
	{ 64, "fb", 1, "sti" },
	{ 64, "f1", 1, "int1" },
	{ 64, "0f 01 c1", 3, "vmcall" },
	{ 64, "0f 01 f8", 3, "swapgs" },
	{ 64, "0f 01 d1", 3, "xsetbv" },
	{ 64, "0f 01 ca", 3, "clac" },
	{ 64, "0f 05", 2, "syscall" },
	{ 64, "48 0f 07", 3, "sysretq" },
	{ 64, "48 cf", 2, "iretq" },
	{ 64, "cf", 1, "iretd" },
	{ 64, "0f 22 d8", 3, "mov cr3, rax" },
	{ 64, "0f 20 c0", 3, "mov rax, cr0" },
	{ 64, "44 0f 22 c0", 4, "mov cr8, rax" },
	{ 64, "0f 22 05 11 22 33 44", 3, "mov cr0: mod ignored, no disp" },
	{ 64, "0f 23 3c", 3, "mov dr7: mod ignored, no SIB" },
	{ 64, "0f 01 15 00 00 00 00", 7, "lgdt [rip+0]" },
	{ 64, "0f 01 10", 3, "lgdt [rax]" },
	{ 64, "0f 01 14 24", 4, "lgdt [rsp] (SIB)" },
	{ 64, "0f 01 54 24 08", 5, "lgdt [rsp+8]" },
	{ 64, "0f 01 94 24 00 01 00 00", 8, "lgdt [rsp+0x100]" },
	{ 64, "0f 01 04 25 00 10 00 00", 8, "sgdt [abs32] (SIB, no base)" },
	{ 64, "0f 01 45 00", 4, "sgdt [rbp+0]" },
	{ 64, "41 0f 01 55 00", 5, "lgdt [r13+0]" },
	{ 64, "41 0f 01 14 24", 5, "lgdt [r12] (SIB)" },
	{ 64, "0f 01 0c 85 00 00 00 00", 8, "sidt [rax*4+d32] no base" },
	{ 64, "0f 00 d8", 3, "ltr ax" },
	{ 64, "0f 00 d0", 3, "lldt ax" },
	{ 64, "0f 00 08", 3, "str [rax]" },
	{ 64, "8e d8", 2, "mov ds, ax" },
	{ 64, "8e 18", 2, "mov ds, [rax]" },
	{ 64, "0f a1", 2, "pop fs" },
	{ 64, "0f a9", 2, "pop gs" },
	{ 64, "0f b2 00", 3, "lss eax, [rax]" },
	{ 64, "48 ff 2c 24", 4, "jmp far [rsp]" },
	{ 64, "ff 1c 24", 3, "call far [rsp]" },
	{ 64, "48 cb", 2, "retfq" },
	{ 64, "ca 08 00", 3, "retf 8" },
	{ 64, "0f 30", 2, "wrmsr" },
	{ 64, "0f 32", 2, "rdmsr" },
	{ 64, "0f 33", 2, "rdpmc" },
	{ 64, "e4 60", 2, "in al, 0x60" },
	{ 64, "e6 80", 2, "out 0x80, al" },
	{ 64, "e7 f4", 2, "out 0xf4, eax" },
	{ 64, "ec", 1, "in al, dx" },
	{ 64, "66 ed", 2, "in ax, dx" },
	{ 64, "ef", 1, "out dx, eax" },
	{ 64, "f3 6e", 2, "rep outsb" },
	{ 64, "66 f3 6d", 3, "rep insw" },
	{ 64, "0f 01 38", 3, "invlpg [rax]" },
	{ 64, "0f 01 3c 24", 4, "invlpg [rsp]" },
	{ 64, "0f 09", 2, "wbinvd" },
	{ 64, "0f 08", 2, "invd" },
	{ 64, "0f 0b", 2, "ud2" },
	{ 64, "0f 06", 2, "clts" },
	{ 64, "48 b8 01 02 03 04 05 06 07 08", 10, "movabs rax, imm64" },
	{ 64, "b8 01 02 03 04", 5, "mov eax, imm32" },
	{ 64, "66 b8 01 02", 4, "mov ax, imm16" },
	{ 64, "41 b8 01 02 03 04", 6, "mov r8d, imm32 (REX.B only)" },
	{ 64, "48 c7 c0 01 02 03 04", 7, "mov rax, simm32" },
	{ 64, "c6 00 05", 3, "mov byte [rax], 5" },
	{ 64, "66 c7 00 34 12", 5, "mov word [rax], imm16" },
	{ 64, "48 81 c4 00 01 00 00", 7, "add rsp, imm32" },
	{ 64, "48 83 ec 08", 4, "sub rsp, 8" },
	{ 64, "e8 00 00 00 00", 5, "call rel32" },
	{ 64, "66 e8 00 00 00 00", 6, "call rel32 (66 ignored, Intel)" },
	{ 64, "e9 00 00 00 00", 5, "jmp rel32" },
	{ 64, "eb 10", 2, "jmp rel8" },
	{ 64, "74 10", 2, "je rel8" },
	{ 64, "0f 84 00 00 00 00", 6, "je rel32" },
	{ 64, "e3 10", 2, "jrcxz" },
	{ 64, "a1 01 02 03 04 05 06 07 08", 9, "mov eax, moffs64" },
	{ 64, "67 a1 01 02 03 04", 6, "mov eax, moffs32 (67)" },
	{ 64, "48 a3 01 02 03 04 05 06 07 08", 10, "mov moffs64, rax" },
	{ 64, "68 01 02 03 04", 5, "push imm32" },
	{ 64, "66 68 01 02", 4, "push imm16" },
	{ 64, "6a 01", 2, "push imm8" },
	{ 64, "69 c0 01 02 03 04", 6, "imul eax, eax, imm32" },
	{ 64, "6b c0 01", 3, "imul eax, eax, imm8" },
	{ 64, "c8 10 00 00", 4, "enter 16, 0" },
	{ 64, "c2 08 00", 3, "ret 8" },
	{ 64, "f6 c0 01", 3, "test al, 1" },
	{ 64, "f6 d0", 2, "not al" },
	{ 64, "f7 c0 01 02 03 04", 6, "test eax, imm32" },
	{ 64, "66 f7 c0 01 02", 5, "test ax, imm16" },
	{ 64, "f7 d8", 2, "neg eax" },
	{ 64, "48 f7 00 01 02 03 04", 7, "test qword [rax], imm32" },
	{ 64, "f7 40 08 01 02 03 04", 7, "test [rax+8], imm32" },
	{ 64, "0f 1f 44 00 00", 5, "nopl 0(rax,rax)" },
	{ 64, "66 0f 1f 84 00 00 00 00 00", 9, "nopw 0(rax,rax) disp32" },
	{ 64, "66 2e 0f 1f 84 00 00 00 00 00", 10, "cs nopw" },
	{ 64, "f3 0f 1e fa", 4, "endbr64" },
	{ 64, "0f a2", 2, "cpuid" },
	{ 64, "0f 31", 2, "rdtsc" },
	{ 64, "0f 01 f9", 3, "rdtscp" },
	{ 64, "0f ae f0", 3, "mfence" },
	{ 64, "0f ae 00", 3, "fxsave [rax]" },
	{ 64, "48 0f c7 08", 4, "cmpxchg16b [rax]" },
	{ 64, "f0 48 0f b1 0a", 5, "lock cmpxchg [rdx], rcx" },
	{ 64, "c7 f8 00 00 00 00", 6, "xbegin rel32" },
	{ 64, "0f ba e0 05", 4, "bt eax, 5" },
	{ 64, "0f a4 c2 03", 4, "shld edx, eax, 3" },
	{ 64, "0f a5 c2", 3, "shld edx, eax, cl" },
	{ 64, "8d 05 00 00 00 00", 6, "lea eax, [rip+d32]" },
	{ 64, "48 8d 04 c5 00 00 00 00", 8, "lea rax, [rax*8+d32]" },
	{ 64, "48 8b 84 24 00 01 00 00", 8, "mov rax, [rsp+0x100]" },
	{ 64, "67 8b 00", 3, "mov eax, [eax]" },
	{ 64, "d9 e8", 2, "fld1" },
	{ 64, "dd 04 24", 3, "fld qword [rsp]" },
	{ 64, "0f 0f c1 b4", 4, "3DNow! pfadd (imm8 suffix)" },
	{ 64, "66 0f 3a 0f c1 08", 6, "palignr xmm0, xmm1, 8" },
	{ 64, "66 0f 38 00 c1", 5, "pshufb xmm0, xmm1" },
	{ 64, "66 0f 70 c0 1b", 5, "pshufd imm8" },
	{ 64, "66 0f 73 d0 04", 5, "psrlq xmm0, 4" },
	{ 64, "0f c2 c1 00", 4, "cmpps imm8" },
	{ 64, "0f 10 04 24", 4, "movups xmm0, [rsp]" },
	{ 64, "c4 e2 79 18 00", 5, "vbroadcastss (VEX3 0F38)" },
	{ 64, "c5 f8 77", 3, "vzeroupper (no ModRM)" },
	{ 64, "c5 f9 6f 00", 4, "vmovdqa xmm0, [rax]" },
	{ 64, "c4 e3 79 0f c1 04", 6, "vpalignr (VEX3 0F3A imm8)" },
	{ 64, "c5 f9 70 c0 1b", 5, "vpshufd imm8 (VEX2)" },
	{ 64, "c4 e1 fd 6f 44 24 08", 7, "vmovdqa ymm0, [rsp+8]" },
	{ 64, "62 f1 7c 48 28 00", 6, "vmovaps zmm0, [rax] (EVEX)" },
	{ 64, "62 f1 7c 48 28 40 01", 7, "vmovaps zmm0, [rax+disp8*N]" },
	{ 64, "62 f3 7d 48 03 c1 04", 7, "valignd (EVEX 0F3A imm8)" },
	{ 64, "40 c3", 2, "rex ret" },
	{ 64, "48 90", 2, "rex.w nop" },
	{ 64, "48 66 90", 3, "rex then 66: rex ignored" },
	{ 64, "66 66 66 66 66 66 2e 0f 1f 84 00 00 00 00 00", 15,
	  "15 bytes exactly" },
	{ 64, "66 66 66 66 66 66 66 2e 0f 1f 84 00 00 00 00 00", E_LONG,
	  "16 bytes: #GP" },
	{ 64, "f3 f3 f3 f3 f3 f3 f3 f3 f3 f3 f3 f3 f3 f3 f3 90", E_LONG,
	  "15 prefixes: #GP" },
	{ 64, "06", E_INVAL, "push es invalid in 64-bit" },
	{ 64, "27", E_INVAL, "daa invalid in 64-bit" },
	{ 64, "60", E_INVAL, "pusha invalid in 64-bit" },
	{ 64, "ce", E_INVAL, "into invalid in 64-bit" },
	{ 64, "d4 0a", E_INVAL, "aam invalid in 64-bit" },
	{ 64, "9a 00 00 00 00 10 00", E_INVAL, "call far ptr in 64-bit" },
	{ 64, "ea 00 00 00 00 10 00", E_INVAL, "jmp far ptr in 64-bit" },
	{ 64, "0f 04", E_INVAL, "0f 04 undefined" },
	{ 64, "66 c5 f8 77", E_INVAL, "66 before VEX" },
	{ 64, "48", E_TRUNC, "lone REX" },
	{ 64, "0f", E_TRUNC, "lone 0f" },
	{ 64, "b8 00", E_TRUNC, "short imm32" },
	{ 64, "0f 01", E_TRUNC, "missing ModRM" },
	{ 64, "0f 01 14", E_TRUNC, "missing SIB" },
	{ 64, "0f 01 15 00 00", E_TRUNC, "short disp32" },
	{ 64, "", E_TRUNC, "empty" },

	{ 32, "b8 01 02 03 04", 5, "mov eax, imm32" },
	{ 32, "66 b8 01 02", 4, "mov ax, imm16" },
	{ 32, "a1 01 02 03 04", 5, "mov eax, moffs32" },
	{ 32, "67 a1 01 02", 4, "mov eax, moffs16" },
	{ 32, "9a 00 00 00 00 10 00", 7, "call far ptr16:32" },
	{ 32, "66 ea 00 00 10 00", 6, "jmp far ptr16:16" },
	{ 32, "8b 04 24", 3, "mov eax, [esp]" },
	{ 32, "8b 05 00 10 00 00", 6, "mov eax, [abs32] (not RIP)" },
	{ 32, "c4 00", 2, "les eax, [eax]" },
	{ 32, "c5 f8 77", 3, "vzeroupper (VEX outside 64-bit)" },
	{ 32, "62 00", 2, "bound eax, [eax]" },
	{ 32, "40", 1, "inc eax" },
	{ 32, "48 90", 1, "dec eax (no REX outside 64-bit)" },
	{ 32, "0f 01 10", 3, "lgdt [eax]" },
	{ 32, "67 8b 07", 3, "mov eax, [bx]" },
	{ 32, "67 8b 46 08", 4, "mov eax, [bp+8]" },
	{ 32, "67 8b 06 00 10", 5, "mov eax, [disp16]" },
	{ 32, "67 8b 86 00 10", 5, "mov eax, [bp+disp16]" },
	{ 32, "07", 1, "pop es" },
	{ 32, "ce", 1, "into" },
	{ 32, "e8 00 00 00 00", 5, "call rel32" },
	{ 32, "66 e8 00 00", 4, "call rel16" },

	{ 16, "b8 34 12", 3, "mov ax, imm16" },
	{ 16, "66 b8 01 02 03 04", 6, "mov eax, imm32" },
	{ 16, "8b 07", 2, "mov ax, [bx]" },
	{ 16, "8b 06 00 10", 4, "mov ax, [disp16]" },
	{ 16, "e8 00 00", 3, "call rel16" },
	{ 16, "67 8b 04 24", 4, "mov ax, [esp] (SIB)" },
	{ 16, "ea 00 00 00 f0", 5, "jmp far ptr16:16" },
	{ 16, "cd 10", 2, "int 0x10" },
};

static enum trapvm_cpu_mode mode_of(int m)
{
	return m == 64 ? TRAPVM_MODE_64 : m == 32 ? TRAPVM_MODE_32 :
						   TRAPVM_MODE_16;
}

static void test_length_table(void)
{
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(table); i++) {
		const struct enc *t = &table[i];
		struct trapvm_insn insn;
		u8 bytes[32];
		unsigned int n = h_hex(t->hex, bytes, sizeof(bytes));
		u8 *heap = malloc(n ? n : 1);
		int r, got;

		/* exact-size heap buffer: ASan catches any overread */
		memcpy(heap, bytes, n);
		r = trapvm_decode(heap, n, mode_of(t->mode), &insn, NULL);
		got = r == TRAPVM_DECODE_OK ? insn.len : -r;
		EXPECT(got == t->len, "[%d] %s (%s): got %d, expected %d",
		       t->mode, t->what, t->hex, got, t->len);
		free(heap);
	}
	printf("# %zu encodings\n", ARRAY_SIZE(table));
}

static void test_operands(void)
{
	struct trapvm_cpu cpu;
	struct trapvm_insn insn;
	u8 b[16];
	unsigned int n;

	memset(&cpu, 0, sizeof(cpu));
	cpu.gpr[GPR_RAX] = 0x1000;
	cpu.gpr[GPR_RSP] = 0x8000;
	cpu.gpr[GPR_R12] = 0x20000;
	cpu.gpr[GPR_RBX] = 3;

	/* lgdt [rip+0x10] at rip 0x4000: ea = 0x4000 + 7 + 0x10 */
	n = h_hex("0f 01 15 10 00 00 00", b, sizeof(b));
	EXPECT_EQ(trapvm_decode(b, n, TRAPVM_MODE_64, &insn, NULL), 0);
	EXPECT(insn.rip_relative, "rip relative");
	EXPECT_EQ(insn.reg, 2);
	EXPECT_EQ(trapvm_insn_ea(&cpu, &insn, 0x4000), 0x4017);

	/* mov eax, [r12 + rbx*8 - 8]: 41 8b 44 dc f8 */
	n = h_hex("41 8b 44 dc f8", b, sizeof(b));
	EXPECT_EQ(trapvm_decode(b, n, TRAPVM_MODE_64, &insn, NULL), 0);
	EXPECT_EQ(insn.len, 5);
	EXPECT_EQ(trapvm_insn_ea(&cpu, &insn, 0), 0x20000 + 3 * 8 - 8);

	/* [rsp+8] uses SS by default, [rax] DS, gs: override */
	n = h_hex("8b 44 24 08", b, sizeof(b));
	EXPECT_EQ(trapvm_decode(b, n, TRAPVM_MODE_64, &insn, NULL), 0);
	EXPECT_EQ(trapvm_insn_seg(&insn), SREG_SS);
	EXPECT_EQ(trapvm_insn_ea(&cpu, &insn, 0), 0x8008);
	n = h_hex("65 8b 00", b, sizeof(b));
	EXPECT_EQ(trapvm_decode(b, n, TRAPVM_MODE_64, &insn, NULL), 0);
	EXPECT_EQ(trapvm_insn_seg(&insn), SREG_GS);
	/* ds: override is a null prefix in 64-bit mode */
	n = h_hex("3e 8b 04 24", b, sizeof(b));
	EXPECT_EQ(trapvm_decode(b, n, TRAPVM_MODE_64, &insn, NULL), 0);
	EXPECT_EQ(trapvm_insn_seg(&insn), SREG_SS);

	/* 67: 32-bit address wraps */
	cpu.gpr[GPR_RAX] = 0xfffffff0ULL;
	n = h_hex("67 8b 40 20", b, sizeof(b));
	EXPECT_EQ(trapvm_decode(b, n, TRAPVM_MODE_64, &insn, NULL), 0);
	EXPECT_EQ(insn.adsize, 4);
	EXPECT_EQ(trapvm_insn_ea(&cpu, &insn, 0), 0x10);

	/* operand sizes */
	n = h_hex("48 cf", b, sizeof(b));
	EXPECT_EQ(trapvm_decode(b, n, TRAPVM_MODE_64, &insn, NULL), 0);
	EXPECT_EQ(insn.opsize, 8);
	n = h_hex("cb", b, sizeof(b));
	EXPECT_EQ(trapvm_decode(b, n, TRAPVM_MODE_64, &insn, NULL), 0);
	EXPECT_EQ(insn.opsize, 4);	/* far RET defaults to 32-bit */
	n = h_hex("0f a1", b, sizeof(b));
	EXPECT_EQ(trapvm_decode(b, n, TRAPVM_MODE_64, &insn, NULL), 0);
	EXPECT_EQ(insn.opsize, 8);	/* POP FS defaults to 64-bit */

	/* REX.R extends reg: mov cr8 */
	n = h_hex("44 0f 22 c0", b, sizeof(b));
	EXPECT_EQ(trapvm_decode(b, n, TRAPVM_MODE_64, &insn, NULL), 0);
	EXPECT_EQ(insn.reg, 8);
	EXPECT_EQ(insn.rm, 0);

	/* 16-bit [bx+si+disp8] */
	cpu.gpr[GPR_RBX] = 0x100;
	cpu.gpr[GPR_RSI] = 0x20;
	n = h_hex("8b 40 05", b, sizeof(b));
	EXPECT_EQ(trapvm_decode(b, n, TRAPVM_MODE_16, &insn, NULL), 0);
	EXPECT_EQ(trapvm_insn_ea(&cpu, &insn, 0), 0x125);

	/* immediates */
	n = h_hex("cd 80", b, sizeof(b));
	EXPECT_EQ(trapvm_decode(b, n, TRAPVM_MODE_64, &insn, NULL), 0);
	EXPECT_EQ(insn.imm, 0x80);
	n = h_hex("9a 78 56 34 12 10 00", b, sizeof(b));
	EXPECT_EQ(trapvm_decode(b, n, TRAPVM_MODE_32, &insn, NULL), 0);
	EXPECT_EQ(insn.imm, 0x12345678);
	EXPECT_EQ(insn.imm2, 0x10);
}

static u64 rng_state = 0x9e3779b97f4a7c15ULL;

static u64 rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

/*
 * Properties of any correct length decoder, on random bytes biased
 * towards prefixes and the interesting opcodes:
 *  - the length is 1..15 and the result only depends on those bytes;
 *  - given one byte less it reports truncation;
 *  - a null prefix (2E in 64-bit mode) in front adds exactly one byte
 *    (or makes it too long);
 *  - it never reads beyond the buffer (exact heap buffers, ASan).
 */
static void test_random_consistency(void)
{
	static const u8 pick[] = {
		0x66, 0x67, 0xf0, 0xf2, 0xf3, 0x2e, 0x64, 0x65, 0x48, 0x41,
		0x0f, 0x0f, 0x0f, 0x38, 0x3a, 0xc4, 0xc5, 0x62, 0x8f, 0xf6,
		0xf7, 0xc7, 0x81, 0x69, 0xa1, 0xb8, 0xea, 0x9a, 0xc8, 0x01,
		0x20, 0x22, 0x04, 0x05, 0x44, 0x84, 0x24, 0x25, 0xff, 0x00,
	};
	unsigned int iter, ok = 0, bad = 0;

	for (iter = 0; iter < 200000; iter++) {
		enum trapvm_cpu_mode mode = rnd() % 3;
		struct trapvm_insn a, b;
		u8 buf[16], *heap;
		unsigned int i, need = 0;
		int r, r2;

		for (i = 0; i < 16; i++)
			buf[i] = (rnd() & 1) ? pick[rnd() % sizeof(pick)] :
					       (u8)rnd();
		r = trapvm_decode(buf, 15, mode, &a, &need);
		if (need > 15) {
			bad++;
			continue;
		}
		if (r != TRAPVM_DECODE_OK && r != TRAPVM_DECODE_INVALID)
			continue;
		ok++;
		if (a.len < 1 || a.len > 15) {
			bad++;
			continue;
		}
		heap = malloc(a.len);
		memcpy(heap, buf, a.len);
		r2 = trapvm_decode(heap, a.len, mode, &b, NULL);
		if (r2 != r || b.len != a.len || b.opcode != a.opcode ||
		    b.imm != a.imm || b.disp != a.disp)
			bad++;
		r2 = trapvm_decode(heap, a.len - 1, mode, &b, NULL);
		if (r2 != TRAPVM_DECODE_TRUNC)
			bad++;
		free(heap);

		if (mode == TRAPVM_MODE_64) {
			u8 p[17];

			p[0] = 0x2e;
			memcpy(p + 1, buf, 15);
			r2 = trapvm_decode(p, 16, mode, &b, NULL);
			if (a.len == 15 ? r2 != TRAPVM_DECODE_TOO_LONG :
			    (r2 != r || b.len != a.len + 1))
				bad++;
		}
	}
	printf("# %u decoded, %u inconsistent\n", ok, bad);
	EXPECT_EQ(bad, 0);
	EXPECT(ok > 100000, "too few decodable samples: %u", ok);
}

int main(void)
{
	RUN(test_length_table);
	RUN(test_operands);
	RUN(test_random_consistency);
	return tap_done();
}
