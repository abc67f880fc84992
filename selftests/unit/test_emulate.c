// SPDX-License-Identifier: GPL-2.0
/*
 * Emulator tests: each privileged instruction, positive and negative,
 * against the rules of the Intel SDM volume 2 (instruction pages:
 * "Operation" and "Protected/64-Bit Mode Exceptions") and volume 3
 * (2.5 control registers, 5.x protection checks, 18.5 I/O permission
 * bitmap, the MSR chapter).  Expected values are written here from those
 * rules; faults are checked on the frame the guest's handler receives.
 */
#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "emu_harness.h"

static struct harness H;
static struct trapvm_emu_result R;
#define CPU (H.cpu)

static int run(const char *hex)
{
	h_code(&H, hex);
	return h_emulate(&H, &R);
}

static void setup(void)
{
	h_init(&H);
}

static void setup_user(void)
{
	h_init(&H);
	h_user(&H);
}

/*
 * The guest's handler for @vector was entered for a fault at @rip with
 * error code @err (or none if err < 0).
 */
static void check_exc(int line, unsigned int vector, long long err, u64 rip)
{
	u64 sp = CPU.gpr[GPR_RSP];

	if (R.status != TRAPVM_EMU_EXCEPTION || CPU.rip != H_HANDLER(vector)) {
		tap_fail(__FILE__, line,
			 "expected vector %u: status %u rip %#llx", vector,
			 R.status, (unsigned long long)CPU.rip);
		return;
	}
	if (err >= 0) {
		if (h_get64(&H, sp) != (u64)err)
			tap_fail(__FILE__, line, "error code %#llx, expected %#llx",
				 (unsigned long long)h_get64(&H, sp), err);
		sp += 8;
	}
	if (h_get64(&H, sp) != rip)
		tap_fail(__FILE__, line, "pushed rip %#llx, expected %#llx",
			 (unsigned long long)h_get64(&H, sp),
			 (unsigned long long)rip);
}

#define EXPECT_EXC(vec, err, rip) check_exc(__LINE__, vec, err, rip)
#define EXPECT_GP0()	EXPECT_EXC(13, 0, start)
#define EXPECT_UD()	EXPECT_EXC(6, -1, start)
#define EXPECT_OK(len)							\
	do {								\
		EXPECT_EQ(R.status, TRAPVM_EMU_CONTINUE);		\
		EXPECT_EQ(CPU.rip, start + (len));			\
	} while (0)

/* --- CLI / STI / HLT ------------------------------------------------ */

static void test_cli_sti(void)
{
	u64 start;

	setup();
	CPU.rflags = 0x202;
	start = CPU.rip;
	run("fa");
	EXPECT_OK(1);
	EXPECT_EQ(CPU.rflags & TRAPVM_RFLAGS_IF, 0);
	start = CPU.rip;
	run("fb");
	EXPECT_OK(1);
	EXPECT(CPU.rflags & TRAPVM_RFLAGS_IF, "STI sets IF");
	EXPECT_EQ(CPU.interrupt_shadow, 1);
	/* STI with IF already set: no shadow */
	start = CPU.rip;
	run("fb");
	EXPECT_EQ(CPU.interrupt_shadow, 0);

	/* CPL3, IOPL0: #GP(0), IF unchanged */
	setup_user();
	start = CPU.rip;
	run("fa");
	EXPECT_GP0();
	EXPECT_EQ(CPU.cpl, 0);
	EXPECT(h_get64(&H, CPU.gpr[GPR_RSP] + 24) & TRAPVM_RFLAGS_IF,
	       "pushed RFLAGS has IF");

	/* CPL3, IOPL3: allowed */
	setup_user();
	CPU.rflags |= TRAPVM_RFLAGS_IOPL;
	start = CPU.rip;
	run("fa");
	EXPECT_OK(1);
	EXPECT_EQ(CPU.rflags & TRAPVM_RFLAGS_IF, 0);

	/* LOCK CLI: #UD */
	setup();
	start = CPU.rip;
	run("f0 fa");
	EXPECT_UD();
}

static void test_hlt(void)
{
	u64 start;

	setup();
	start = CPU.rip;
	EXPECT_EQ(run("f4"), TRAPVM_EMU_HLT);
	EXPECT_EQ(CPU.rip, start + 1);
	EXPECT_EQ(CPU.halted, 1);
	EXPECT_EQ(H.stats[TRAPVM_STAT_EMUL_HLT], 1);

	setup_user();
	start = CPU.rip;
	run("f4");
	EXPECT_GP0();
	EXPECT_EQ(CPU.halted, 0);
}

/* --- control registers ---------------------------------------------- */

static void mov_to_cr(unsigned int cr, u64 val)
{
	CPU.gpr[GPR_RAX] = val;
	switch (cr) {
	case 0:
		run("0f 22 c0");
		break;
	case 2:
		run("0f 22 d0");
		break;
	case 3:
		run("0f 22 d8");
		break;
	case 4:
		run("0f 22 e0");
		break;
	case 8:
		run("44 0f 22 c0");
		break;
	}
}

static void test_mov_cr0(void)
{
	u64 start;

	setup();
	start = CPU.rip;
	mov_to_cr(0, CPU.cr0 | (1ULL << 32));	/* CR0[63:32] reserved */
	EXPECT_GP0();

	setup();
	start = CPU.rip;
	mov_to_cr(0, TRAPVM_CR0_PG | TRAPVM_CR0_ET);	/* PG without PE */
	EXPECT_GP0();

	setup();
	start = CPU.rip;
	mov_to_cr(0, CPU.cr0 | TRAPVM_CR0_NW);	/* NW without CD */
	EXPECT_GP0();

	setup();
	start = CPU.rip;
	mov_to_cr(0, CPU.cr0 & ~TRAPVM_CR0_PG);	/* leave paging in 64-bit */
	EXPECT_GP0();
	EXPECT(CPU.cr0 & TRAPVM_CR0_PG, "PG still set");
	EXPECT(CPU.efer & TRAPVM_EFER_LMA, "LMA still set");

	/* clear WP, set TS: accepted; ET reads as 1; reserved bit 5..15 ign. */
	setup();
	start = CPU.rip;
	mov_to_cr(0, (CPU.cr0 & ~(TRAPVM_CR0_WP | TRAPVM_CR0_ET)) |
		  TRAPVM_CR0_TS | BIT(7));
	EXPECT_OK(3);
	EXPECT_EQ(CPU.cr0, 0x8004003bULL);
	EXPECT_EQ(H.paging_changes, 1);
	start = CPU.rip;
	run("0f 20 c3");			/* mov rbx, cr0 */
	EXPECT_OK(3);
	EXPECT_EQ(CPU.gpr[GPR_RBX], 0x8004003bULL);

	/* CLTS clears TS; at CPL3 it is #GP(0) */
	start = CPU.rip;
	run("0f 06");
	EXPECT_OK(2);
	EXPECT_EQ(CPU.cr0 & TRAPVM_CR0_TS, 0);
	setup_user();
	start = CPU.rip;
	run("0f 06");
	EXPECT_GP0();

	/* LMSW sets TS but cannot clear PE */
	setup();
	start = CPU.rip;
	CPU.gpr[GPR_RAX] = 0x8;
	run("0f 01 f0");			/* lmsw ax */
	EXPECT_OK(3);
	EXPECT(CPU.cr0 & TRAPVM_CR0_TS, "TS set");
	EXPECT(CPU.cr0 & TRAPVM_CR0_PE, "PE kept");
	EXPECT_EQ(CPU.cr0 & TRAPVM_CR0_MP, 0);
}

static void test_mov_cr4(void)
{
	u64 start;

	setup();
	start = CPU.rip;
	mov_to_cr(4, CPU.cr4 | BIT(15));	/* reserved */
	EXPECT_GP0();
	setup();
	start = CPU.rip;
	mov_to_cr(4, CPU.cr4 | BIT_ULL(63));
	EXPECT_GP0();
	setup();
	start = CPU.rip;
	mov_to_cr(4, CPU.cr4 | BIT(13));	/* VMXE: no VMX here */
	EXPECT_GP0();
	setup();
	start = CPU.rip;
	mov_to_cr(4, CPU.cr4 & ~TRAPVM_CR4_PAE);	/* PAE off in IA-32e */
	EXPECT_GP0();
	setup();
	start = CPU.rip;
	mov_to_cr(4, CPU.cr4 | TRAPVM_CR4_LA57);	/* LA57 in IA-32e */
	EXPECT_GP0();
	setup();
	start = CPU.rip;
	CPU.cr3 = 0x1005;			/* PCIDE with CR3[11:0] != 0 */
	mov_to_cr(4, CPU.cr4 | TRAPVM_CR4_PCIDE);
	EXPECT_GP0();
	EXPECT_EQ(CPU.cr4 & TRAPVM_CR4_PCIDE, 0);

	setup();
	start = CPU.rip;
	mov_to_cr(4, CPU.cr4 | TRAPVM_CR4_PCIDE | TRAPVM_CR4_SMEP);
	EXPECT_OK(3);
	EXPECT(CPU.cr4 & TRAPVM_CR4_SMEP, "SMEP set");
	EXPECT_EQ(H.paging_changes, 1);
	start = CPU.rip;
	run("0f 20 e1");			/* mov rcx, cr4 */
	EXPECT_EQ(CPU.gpr[GPR_RCX], CPU.cr4);

	/* A vCPU configured without a feature refuses its CR4 bit. */
	setup();
	start = CPU.rip;
	CPU.cr4_supported = CPU.cr4 | TRAPVM_CR4_SMEP;
	mov_to_cr(4, CPU.cr4 | TRAPVM_CR4_PCIDE);
	EXPECT_GP0();
	EXPECT_EQ(CPU.cr4 & TRAPVM_CR4_PCIDE, 0);
	setup();
	start = CPU.rip;
	CPU.cr4_supported = CPU.cr4 | TRAPVM_CR4_SMEP;
	mov_to_cr(4, CPU.cr4 | TRAPVM_CR4_SMEP);
	EXPECT_OK(3);
	EXPECT(CPU.cr4 & TRAPVM_CR4_SMEP, "SMEP set");

	/* CR4 from CPL3 */
	setup_user();
	start = CPU.rip;
	run("0f 20 e0");
	EXPECT_GP0();
}

static void test_mov_cr3_cr8_cr2(void)
{
	u64 start;

	setup();
	start = CPU.rip;
	mov_to_cr(3, 1ULL << 40);		/* beyond MAXPHYADDR = 40 */
	EXPECT_GP0();
	EXPECT_EQ(H.cr3_loads, 0);
	setup();
	start = CPU.rip;
	mov_to_cr(3, BIT_ULL(63) | 0x5000);	/* bit 63 without PCIDE */
	EXPECT_GP0();

	setup();
	start = CPU.rip;
	mov_to_cr(3, 0x7000);
	EXPECT_OK(3);
	EXPECT_EQ(CPU.cr3, 0x7000);
	EXPECT_EQ(H.cr3_loads, 1);
	EXPECT_EQ(H.last_noflush, 0);

	setup();
	CPU.cr4 |= TRAPVM_CR4_PCIDE;
	start = CPU.rip;
	mov_to_cr(3, BIT_ULL(63) | 0x8003);
	EXPECT_OK(3);
	EXPECT_EQ(CPU.cr3, 0x8003);		/* bit 63 is not stored */
	EXPECT_EQ(H.last_noflush, 1);

	setup();
	start = CPU.rip;
	mov_to_cr(8, 16);			/* CR8[63:4] reserved */
	EXPECT_GP0();
	setup();
	start = CPU.rip;
	mov_to_cr(8, 9);
	EXPECT_OK(4);
	EXPECT_EQ(CPU.cr8, 9);
	start = CPU.rip;
	run("44 0f 20 c2");			/* mov rdx, cr8 */
	EXPECT_EQ(CPU.gpr[GPR_RDX], 9);

	setup();
	start = CPU.rip;
	mov_to_cr(2, 0xdeadbeefcafeULL);
	EXPECT_OK(3);
	EXPECT_EQ(CPU.cr2, 0xdeadbeefcafeULL);

	/* CR1, CR5: #UD; LOCK MOV CR0: #UD (Intel) */
	setup();
	start = CPU.rip;
	run("0f 22 c8");
	EXPECT_UD();
	setup();
	start = CPU.rip;
	run("f0 0f 22 c0");
	EXPECT_UD();
}

static void test_mov_dr(void)
{
	u64 start;

	setup();
	start = CPU.rip;
	CPU.gpr[GPR_RAX] = 0x1ULL << 32;
	run("0f 23 f8");			/* mov dr7, rax */
	EXPECT_GP0();
	setup();
	start = CPU.rip;
	CPU.gpr[GPR_RAX] = 0x3;
	run("0f 23 f8");
	EXPECT_OK(3);
	EXPECT_EQ(CPU.dr[7], 0x403);		/* bit 10 reads as 1 */
	CPU.cr4 |= TRAPVM_CR4_DE;
	start = CPU.rip;
	run("0f 21 e0");			/* mov rax, dr4 with CR4.DE */
	EXPECT_UD();
	setup_user();
	start = CPU.rip;
	run("0f 21 c0");
	EXPECT_GP0();
}

/* --- descriptor tables ---------------------------------------------- */

static void test_lgdt_sgdt(void)
{
	u8 buf[10];
	u64 start;

	setup();
	buf[0] = 0xff;
	buf[1] = 0x0f;
	memcpy(buf + 2, &(u64){ 0xffff888000001000ULL }, 8);
	h_put(&H, H_KDATA, buf, 10);
	CPU.gpr[GPR_RAX] = H_KDATA;
	start = CPU.rip;
	run("0f 01 18");			/* lidt [rax] */
	EXPECT_OK(3);
	EXPECT_EQ(CPU.idtr.limit, 0xfff);
	EXPECT_EQ(CPU.idtr.base, 0xffff888000001000ULL);

	start = CPU.rip;
	CPU.gpr[GPR_RBX] = H_KDATA + 0x100;
	run("0f 01 03");			/* sgdt [rbx] */
	EXPECT_OK(3);
	EXPECT_EQ(h_get64(&H, H_KDATA + 0x102), H_GDT);
	h_get(&H, H_KDATA + 0x100, buf, 2);
	EXPECT_EQ(buf[0] | (buf[1] << 8), 0xff);

	/* LGDT from an unmapped page: #PF with CR2 */
	setup();
	CPU.gpr[GPR_RAX] = 0x900000;
	start = CPU.rip;
	run("0f 01 10");
	EXPECT_EXC(14, 0, start);
	EXPECT_EQ(CPU.cr2, 0x900000);
	EXPECT_EQ(CPU.gdtr.base, H_GDT);

	/* LIDT of a non-canonical base in 64-bit mode: #GP(0), no change */
	setup();
	buf[0] = 0xff;
	buf[1] = 0x0f;
	memcpy(buf + 2, &(u64){ 0x0000800000001000ULL }, 8);
	h_put(&H, H_KDATA, buf, 10);
	CPU.gpr[GPR_RAX] = H_KDATA;
	start = CPU.rip;
	run("0f 01 18");			/* lidt [rax] */
	EXPECT_GP0();
	EXPECT_EQ(CPU.idtr.base, H_IDT);

	/* LGDT at CPL3: #GP(0) */
	setup_user();
	CPU.gpr[GPR_RAX] = H_UDATA;
	start = CPU.rip;
	run("0f 01 10");
	EXPECT_GP0();

	/* SGDT at CPL3: works without UMIP, #GP(0) with it */
	setup_user();
	CPU.gpr[GPR_RAX] = H_UDATA;
	start = CPU.rip;
	run("0f 01 00");
	EXPECT_OK(3);
	EXPECT_EQ(h_get64(&H, H_UDATA + 2), H_GDT);
	setup_user();
	CPU.cr4 |= TRAPVM_CR4_UMIP;
	CPU.gpr[GPR_RAX] = H_UDATA;
	start = CPU.rip;
	run("0f 01 00");
	EXPECT_GP0();

	/* SGDT at CPL3 to a supervisor page: #PF, U/S and W set, P set */
	setup_user();
	CPU.gpr[GPR_RAX] = H_KDATA;
	start = CPU.rip;
	run("0f 01 00");
	EXPECT_EXC(14, 7, start);

	/* SMSW rax, STR, SLDT */
	setup();
	start = CPU.rip;
	run("48 0f 01 e0");			/* smsw rax */
	EXPECT_OK(4);
	EXPECT_EQ(CPU.gpr[GPR_RAX], CPU.cr0);
	start = CPU.rip;
	CPU.gpr[GPR_RCX] = ~0ULL;
	run("0f 00 c9");			/* str ecx */
	EXPECT_OK(3);
	EXPECT_EQ(CPU.gpr[GPR_RCX], SEL_TSS);
	setup_user();
	CPU.cr4 |= TRAPVM_CR4_UMIP;
	start = CPU.rip;
	run("0f 00 c0");			/* sldt eax */
	EXPECT_GP0();
}

static void test_ltr_lldt(void)
{
	u64 start, d;

	/* LTR needs an available TSS and marks it busy */
	setup();
	start = CPU.rip;
	CPU.gpr[GPR_RAX] = SEL_TSS;
	run("0f 00 d8");			/* ltr ax: TSS is busy */
	EXPECT_EXC(13, SEL_TSS, start);

	setup();
	d = h_get64(&H, H_GDT + SEL_TSS);
	h_put64(&H, H_GDT + SEL_TSS, d & ~(2ULL << 40));	/* available */
	CPU.tr.selector = 0;
	CPU.gpr[GPR_RAX] = SEL_TSS;
	start = CPU.rip;
	run("0f 00 d8");
	EXPECT_OK(3);
	EXPECT_EQ(CPU.tr.selector, SEL_TSS);
	EXPECT_EQ(CPU.tr.base, H_TSS);
	EXPECT_EQ(CPU.tr.limit, H_TSS_LIMIT);
	EXPECT_EQ((h_get64(&H, H_GDT + SEL_TSS) >> 40) & 0xf, 0xb);

	setup();
	CPU.gpr[GPR_RAX] = 0;
	start = CPU.rip;
	run("0f 00 d8");			/* ltr null */
	EXPECT_GP0();
	setup();
	CPU.gpr[GPR_RAX] = SEL_KDATA;
	start = CPU.rip;
	run("0f 00 d8");			/* not a TSS */
	EXPECT_EXC(13, SEL_KDATA, start);

	/* LLDT */
	setup();
	CPU.gpr[GPR_RAX] = SEL_LDT;
	start = CPU.rip;
	run("0f 00 d0");
	EXPECT_OK(3);
	EXPECT_EQ(CPU.ldtr.base, H_LDT);
	EXPECT_EQ(CPU.ldtr.limit, 0xf);
	setup();
	CPU.gpr[GPR_RAX] = SEL_LDT | 4;		/* TI=1 */
	start = CPU.rip;
	run("0f 00 d0");
	EXPECT_EXC(13, SEL_LDT | 4, start);
	setup();
	CPU.gpr[GPR_RAX] = 0;
	start = CPU.rip;
	run("0f 00 d0");			/* null LDT is fine */
	EXPECT_OK(3);
	EXPECT_EQ(CPU.ldtr.selector, 0);
	setup_user();
	CPU.gpr[GPR_RAX] = SEL_LDT;
	start = CPU.rip;
	run("0f 00 d0");
	EXPECT_GP0();
}

/* --- segment registers ----------------------------------------------- */

static void test_mov_sreg(void)
{
	u64 start;

	setup();
	CPU.gpr[GPR_RAX] = SEL_KDATA;
	start = CPU.rip;
	run("8e d0");				/* mov ss, ax */
	EXPECT_OK(2);
	EXPECT_EQ(CPU.seg[SREG_SS].selector, SEL_KDATA);
	EXPECT_EQ(CPU.interrupt_shadow, 1);

	setup();
	CPU.gpr[GPR_RAX] = SEL_NP_DATA;
	start = CPU.rip;
	run("8e d8");				/* mov ds: not present */
	EXPECT_EXC(11, SEL_NP_DATA, start);

	setup();
	CPU.gpr[GPR_RAX] = SEL_RO_DATA;
	start = CPU.rip;
	run("8e d0");				/* ss read-only */
	EXPECT_EXC(13, SEL_RO_DATA, start);

	setup();
	CPU.gpr[GPR_RAX] = SEL_XO_CODE;
	start = CPU.rip;
	run("8e d8");				/* ds execute-only */
	EXPECT_EXC(13, SEL_XO_CODE, start);

	setup();
	CPU.gpr[GPR_RAX] = SEL_UDATA;
	start = CPU.rip;
	run("8e d0");				/* ss RPL3 at CPL0 */
	EXPECT_EXC(13, SEL_UDATA & ~3, start);

	setup();
	CPU.gpr[GPR_RAX] = SEL_UDATA;
	start = CPU.rip;
	run("8e d8");				/* ds DPL3 at CPL0 ok */
	EXPECT_OK(2);
	EXPECT_EQ(CPU.seg[SREG_DS].selector, SEL_UDATA);

	setup();
	CPU.gpr[GPR_RAX] = 0x100;		/* beyond the GDT limit */
	start = CPU.rip;
	run("8e d8");
	EXPECT_EXC(13, 0x100, start);

	setup();
	CPU.gpr[GPR_RAX] = SEL_KDATA;
	start = CPU.rip;
	run("8e c8");				/* mov cs: #UD */
	EXPECT_UD();

	/* FS from a descriptor with a base; accessed bit gets set */
	setup();
	h_set_desc(&H, SEL_BASE_DATA, 0x12cf92345000ffffULL);
	CPU.gpr[GPR_RAX] = SEL_BASE_DATA;
	start = CPU.rip;
	run("8e e0");				/* mov fs, ax */
	EXPECT_OK(2);
	EXPECT_EQ(CPU.seg[SREG_FS].base, 0x12345000);
	EXPECT_EQ((h_get64(&H, H_GDT + SEL_BASE_DATA) >> 40) & 0xff, 0x93);

	/* SS null: allowed at CPL0 in 64-bit mode, not at CPL3 */
	setup();
	CPU.gpr[GPR_RAX] = 0;
	start = CPU.rip;
	run("8e d0");
	EXPECT_OK(2);
	setup_user();
	CPU.gpr[GPR_RAX] = 3;
	start = CPU.rip;
	run("8e d0");
	EXPECT_GP0();

	/* CPL3: a DPL0 data segment is refused, an LDT one is fine */
	setup_user();
	CPU.gpr[GPR_RAX] = SEL_KDATA;
	start = CPU.rip;
	run("8e d8");
	EXPECT_EXC(13, SEL_KDATA, start);
	setup_user();
	CPU.ldtr.selector = SEL_LDT;
	CPU.ldtr.base = H_LDT;
	CPU.ldtr.limit = 0xf;
	CPU.ldtr.attr = 0x82;
	CPU.gpr[GPR_RAX] = SEL_LDT_UDATA;
	start = CPU.rip;
	run("8e d8");
	EXPECT_OK(2);

	/* memory source at CPL3 from a supervisor page: #PF(P|U) */
	setup_user();
	CPU.gpr[GPR_RAX] = H_KDATA;
	start = CPU.rip;
	run("8e 18");
	EXPECT_EXC(14, 5, start);

	/* POP FS */
	setup();
	h_put64(&H, CPU.gpr[GPR_RSP], SEL_BASE_DATA);
	{
		u64 sp = CPU.gpr[GPR_RSP];

		start = CPU.rip;
		run("0f a1");
		EXPECT_OK(2);
		EXPECT_EQ(CPU.gpr[GPR_RSP], sp + 8);
		EXPECT_EQ(CPU.seg[SREG_FS].selector, SEL_BASE_DATA);
	}

	/* LSS rsp, [rax]: m16:64 with REX.W */
	setup();
	h_put64(&H, H_KDATA, 0x200800);
	h_put(&H, H_KDATA + 8, &(u16){ SEL_KDATA }, 2);
	CPU.gpr[GPR_RAX] = H_KDATA;
	start = CPU.rip;
	run("48 0f b2 20");
	EXPECT_OK(4);
	EXPECT_EQ(CPU.gpr[GPR_RSP], 0x200800);
	EXPECT_EQ(CPU.seg[SREG_SS].selector, SEL_KDATA);
}

/* --- far transfers, IRET, SYSCALL/SYSRET ----------------------------- */

static void push_frame(const u64 *v, unsigned int n)
{
	CPU.gpr[GPR_RSP] -= 8 * n;
	h_put(&H, CPU.gpr[GPR_RSP], v, 8 * n);
}

static void test_far_ret_jmp_call(void)
{
	u64 start, sp;

	/* lretq to the same level: the classic CS reload */
	setup();
	push_frame((u64[]){ H_KCODE + 0x40, SEL_KCODE }, 2);
	sp = CPU.gpr[GPR_RSP];
	start = CPU.rip;
	run("48 cb");
	EXPECT_EQ(R.status, TRAPVM_EMU_CONTINUE);
	EXPECT_EQ(CPU.rip, H_KCODE + 0x40);
	EXPECT_EQ(CPU.gpr[GPR_RSP], sp + 16);
	EXPECT_EQ(CPU.seg[SREG_CS].selector, SEL_KCODE);

	/* lretq to CPL3 pops SS:RSP too */
	setup();
	push_frame((u64[]){ H_UCODE, SEL_UCODE, H_USTACK_TOP - 8,
			    SEL_UDATA }, 4);
	start = CPU.rip;
	run("48 cb");
	EXPECT_EQ(R.status, TRAPVM_EMU_CONTINUE);
	EXPECT_EQ(CPU.cpl, 3);
	EXPECT_EQ(CPU.seg[SREG_SS].selector, SEL_UDATA);
	EXPECT_EQ(CPU.gpr[GPR_RSP], H_USTACK_TOP - 8);
	/* DS was a DPL0 segment: nulled on the way out */
	EXPECT_EQ(CPU.seg[SREG_DS].selector, 0);

	/* to a data segment: #GP(sel) */
	setup();
	push_frame((u64[]){ H_KCODE, SEL_KDATA }, 2);
	start = CPU.rip;
	run("48 cb");
	EXPECT_EXC(13, SEL_KDATA, start);

	/* from CPL3 to CPL0 (RPL < CPL): #GP(sel) */
	setup_user();
	push_frame((u64[]){ H_KCODE, SEL_KCODE }, 2);
	start = CPU.rip;
	run("48 cb");
	EXPECT_EXC(13, SEL_KCODE, start);

	/* non-canonical RIP: #GP(0) */
	setup();
	push_frame((u64[]){ 0x0000800000000000ULL, SEL_KCODE }, 2);
	start = CPU.rip;
	run("48 cb");
	EXPECT_GP0();

	/* jmp far [rax] (m16:64) and call far [rax] */
	setup();
	h_put64(&H, H_KDATA, H_KCODE + 0x80);
	h_put(&H, H_KDATA + 8, &(u16){ SEL_KCODE }, 2);
	CPU.gpr[GPR_RAX] = H_KDATA;
	start = CPU.rip;
	run("48 ff 28");
	EXPECT_EQ(R.status, TRAPVM_EMU_CONTINUE);
	EXPECT_EQ(CPU.rip, H_KCODE + 0x80);
	sp = CPU.gpr[GPR_RSP];
	start = CPU.rip;
	run("48 ff 18");
	EXPECT_EQ(CPU.rip, H_KCODE + 0x80);
	EXPECT_EQ(CPU.gpr[GPR_RSP], sp - 16);
	EXPECT_EQ(h_get64(&H, sp - 16), start + 3);
	EXPECT_EQ(h_get64(&H, sp - 8), SEL_KCODE);

	/* far jmp to a CPL3 code segment from CPL0: #GP(sel) */
	setup();
	h_put64(&H, H_KDATA, H_UCODE);
	h_put(&H, H_KDATA + 8, &(u16){ SEL_UCODE }, 2);
	CPU.gpr[GPR_RAX] = H_KDATA;
	start = CPU.rip;
	run("48 ff 28");
	EXPECT_EXC(13, SEL_UCODE & ~3, start);
}

/* A 64-bit call gate (SDM figure 5-9) in the GDT at @sel. */
static void put_call_gate(u16 sel, u64 target, u16 cs, unsigned int dpl,
			  bool present)
{
	u64 lo = (target & 0xffff) | ((u64)cs << 16) | (0xcULL << 40) |
		 ((u64)dpl << 45) | ((u64)present << 47) |
		 (((target >> 16) & 0xffff) << 48);

	h_put64(&H, H_GDT + sel, lo);
	h_put64(&H, H_GDT + sel + 8, target >> 32);
}

static void far_ptr(u64 off, u16 sel)
{
	h_put64(&H, H_KDATA, off);
	h_put(&H, H_KDATA + 8, &sel, 2);
	CPU.gpr[GPR_RAX] = H_KDATA;
}

static void test_call_gates(void)
{
	u64 start, usp;

	/* JMP through a gate at the same level */
	setup();
	put_call_gate(SEL_FREE, 0xffffffff81111000ULL, SEL_KCODE, 0, true);
	far_ptr(0, SEL_FREE);
	start = CPU.rip;
	run("48 ff 28");
	EXPECT_EQ(R.status, TRAPVM_EMU_CONTINUE);
	EXPECT_EQ(CPU.rip, 0xffffffff81111000ULL);
	EXPECT_EQ(CPU.seg[SREG_CS].selector, SEL_KCODE);

	/* CALL from CPL3 through a DPL3 gate to CPL0: stack from RSP0 */
	setup_user();
	put_call_gate(SEL_FREE, 0xffffffff81222000ULL, SEL_KCODE, 3, true);
	h_put64(&H, H_UDATA, 0);
	h_put(&H, H_UDATA + 8, &(u16){ SEL_FREE | 3 }, 2);
	CPU.gpr[GPR_RAX] = H_UDATA;
	usp = CPU.gpr[GPR_RSP];
	start = CPU.rip;
	run("48 ff 18");
	EXPECT_EQ(R.status, TRAPVM_EMU_CONTINUE);
	EXPECT_EQ(CPU.cpl, 0);
	EXPECT_EQ(CPU.rip, 0xffffffff81222000ULL);
	EXPECT_EQ(CPU.gpr[GPR_RSP], H_KSTACK_TOP - 32);
	EXPECT_EQ(h_get64(&H, H_KSTACK_TOP - 32), start + 3);
	EXPECT_EQ(h_get64(&H, H_KSTACK_TOP - 24), SEL_UCODE);
	EXPECT_EQ(h_get64(&H, H_KSTACK_TOP - 16), usp);
	EXPECT_EQ(h_get64(&H, H_KSTACK_TOP - 8), SEL_UDATA);
	EXPECT_EQ(CPU.seg[SREG_SS].selector, 0);
	EXPECT_EQ(CPU.seg[SREG_CS].selector, SEL_KCODE);

	/* ... a DPL0 gate is out of reach from CPL3: #GP(gate) */
	setup_user();
	put_call_gate(SEL_FREE, 0xffffffff81222000ULL, SEL_KCODE, 0, true);
	h_put64(&H, H_UDATA, 0);
	h_put(&H, H_UDATA + 8, &(u16){ SEL_FREE | 3 }, 2);
	CPU.gpr[GPR_RAX] = H_UDATA;
	start = CPU.rip;
	run("48 ff 18");
	EXPECT_EXC(13, SEL_FREE, start);

	/* ... JMP cannot change privilege: #GP(target CS) */
	setup_user();
	put_call_gate(SEL_FREE, 0xffffffff81222000ULL, SEL_KCODE, 3, true);
	h_put64(&H, H_UDATA, 0);
	h_put(&H, H_UDATA + 8, &(u16){ SEL_FREE | 3 }, 2);
	CPU.gpr[GPR_RAX] = H_UDATA;
	start = CPU.rip;
	run("48 ff 28");
	EXPECT_EXC(13, SEL_KCODE, start);

	/* not present: #NP(gate); a 32-bit target: #GP(target) */
	setup();
	put_call_gate(SEL_FREE, 0xffffffff81222000ULL, SEL_KCODE, 0, false);
	far_ptr(0, SEL_FREE);
	start = CPU.rip;
	run("48 ff 18");
	EXPECT_EXC(11, SEL_FREE, start);
	setup();
	put_call_gate(SEL_FREE, 0x1000, SEL_KCODE32, 0, true);
	far_ptr(0, SEL_FREE);
	start = CPU.rip;
	run("48 ff 18");
	EXPECT_EXC(13, SEL_KCODE32, start);

	/* CALL through a gate at the same level pushes CS and RIP */
	setup();
	put_call_gate(SEL_FREE, 0xffffffff81333000ULL, SEL_KCODE, 0, true);
	far_ptr(0, SEL_FREE);
	usp = CPU.gpr[GPR_RSP];
	start = CPU.rip;
	run("48 ff 18");
	EXPECT_EQ(CPU.gpr[GPR_RSP], usp - 16);
	EXPECT_EQ(h_get64(&H, usp - 16), start + 3);
	EXPECT_EQ(h_get64(&H, usp - 8), SEL_KCODE);
}

static void test_iret(void)
{
	u64 start;

	/* IRETQ CPL0 -> CPL3: CPL0 may set IOPL and IF */
	setup();
	push_frame((u64[]){ H_UCODE, SEL_UCODE, 0x3202, H_USTACK_TOP - 16,
			    SEL_UDATA }, 5);
	start = CPU.rip;
	run("48 cf");
	EXPECT_EQ(R.status, TRAPVM_EMU_CONTINUE);
	EXPECT_EQ(CPU.cpl, 3);
	EXPECT_EQ(CPU.rip, H_UCODE);
	EXPECT_EQ(CPU.rflags, 0x3202);
	EXPECT_EQ(CPU.gpr[GPR_RSP], H_USTACK_TOP - 16);
	EXPECT_EQ(CPU.seg[SREG_CS].selector, SEL_UCODE);
	EXPECT_EQ(CPU.seg[SREG_SS].selector, SEL_UDATA);
	EXPECT_EQ(H.stats[TRAPVM_STAT_EMUL_IRET], 1);

	/* CPL3, IOPL0: IRET cannot change IF or IOPL */
	setup_user();
	push_frame((u64[]){ H_UCODE + 0x10, SEL_UCODE, 0x3002 | 0x1,
			    H_USTACK_TOP - 64, SEL_UDATA }, 5);
	start = CPU.rip;
	run("48 cf");
	EXPECT_EQ(R.status, TRAPVM_EMU_CONTINUE);
	EXPECT_EQ(CPU.rflags, 0x203);		/* CF from the frame only */

	/* CPL0 -> CPL0 with a null SS (64-bit mode allows it) */
	setup();
	push_frame((u64[]){ H_KCODE + 8, SEL_KCODE, 0x2, 0x200800, 0 }, 5);
	start = CPU.rip;
	run("48 cf");
	EXPECT_EQ(R.status, TRAPVM_EMU_CONTINUE);
	EXPECT_EQ(CPU.gpr[GPR_RSP], 0x200800);
	EXPECT_EQ(CPU.rflags & TRAPVM_RFLAGS_IF, 0);

	/* to CPL3 with a null SS: #GP(0) */
	setup();
	push_frame((u64[]){ H_UCODE, SEL_UCODE, 0x202, H_USTACK_TOP, 3 }, 5);
	start = CPU.rip;
	run("48 cf");
	EXPECT_GP0();

	/* SS with RPL != RPL(CS): #GP(ss) */
	setup();
	push_frame((u64[]){ H_UCODE, SEL_UCODE, 0x202, H_USTACK_TOP,
			    SEL_KDATA }, 5);
	start = CPU.rip;
	run("48 cf");
	EXPECT_EXC(13, SEL_KDATA, start);

	/* to 32-bit compatibility-mode user code; RF comes from the frame */
	setup();
	push_frame((u64[]){ 0x8048000, SEL_UCODE32, 0x10202, 0xffffd000,
			    SEL_UDATA }, 5);
	start = CPU.rip;
	run("48 cf");
	EXPECT_EQ(R.status, TRAPVM_EMU_CONTINUE);
	EXPECT_EQ(CPU.rip, 0x8048000);
	EXPECT_EQ(CPU.seg[SREG_CS].selector, SEL_UCODE32);
	EXPECT_EQ(trapvm_cpu_mode(&CPU), TRAPVM_MODE_32);
	EXPECT_EQ(CPU.rflags, 0x10202);
	/* ... where RIP beyond the 4 GiB limit is #GP(0) */
	setup();
	push_frame((u64[]){ 0x100000000ULL, SEL_UCODE32, 0x202, 0xffffd000,
			    SEL_UDATA }, 5);
	start = CPU.rip;
	run("48 cf");
	EXPECT_GP0();

	/* NT set: #GP(0) in IA-32e mode */
	setup();
	CPU.rflags |= TRAPVM_RFLAGS_NT;
	push_frame((u64[]){ H_KCODE, SEL_KCODE, 0x2, 0x200800, 0 }, 5);
	start = CPU.rip;
	run("48 cf");
	EXPECT_GP0();

	/* non-canonical return RIP: #GP(0) */
	setup();
	push_frame((u64[]){ 0x8000000000000000ULL, SEL_KCODE, 0x2, 0x200800,
			    0 }, 5);
	start = CPU.rip;
	run("48 cf");
	EXPECT_GP0();

	/*
	 * frame on an unmapped stack: #PF, whose own frame cannot be
	 * pushed there either: #PF during #PF is a #DF (on IST1)
	 */
	setup();
	CPU.gpr[GPR_RSP] = 0xa00000;
	start = CPU.rip;
	run("48 cf");
	EXPECT_EQ(R.status, TRAPVM_EMU_EXCEPTION);
	EXPECT_EXC(8, 0, start);
	EXPECT_EQ(CPU.cr2, 0xa00000 - 48);
}

static void test_syscall_sysret(void)
{
	u64 start;
	int r;

	setup_user();
	CPU.rflags = 0x202 | TRAPVM_RFLAGS_TF | TRAPVM_RFLAGS_DF | 0x1;
	CPU.rip = H_UCODE + 0x20;		/* address OF the syscall */
	r = trapvm_emulate_syscall(&CPU, &h_ops, &H);
	EXPECT_EQ(r, TRAPVM_EMU_CONTINUE);
	EXPECT_EQ(CPU.gpr[GPR_RCX], H_UCODE + 0x22);
	EXPECT_EQ(CPU.gpr[GPR_R11], 0x202 | 0x100 | 0x400 | 0x1);
	EXPECT_EQ(CPU.rflags, 0x3);		/* FMASK cleared TF DF IF */
	EXPECT_EQ(CPU.rip, CPU.lstar);
	EXPECT_EQ(CPU.cpl, 0);
	EXPECT_EQ(CPU.seg[SREG_CS].selector, 0x10);
	EXPECT_EQ(CPU.seg[SREG_SS].selector, 0x18);

	/* EFER.SCE clear: #UD at the SYSCALL */
	setup_user();
	CPU.efer &= ~TRAPVM_EFER_SCE;
	start = CPU.rip;
	r = trapvm_emulate_syscall(&CPU, &h_ops, &H);
	R.status = r;
	EXPECT_UD();

	/* SYSRETQ back to 64-bit user mode */
	setup();
	CPU.gpr[GPR_RCX] = H_UCODE + 0x22;
	CPU.gpr[GPR_R11] = 0x246 | TRAPVM_RFLAGS_RF | TRAPVM_RFLAGS_VM;
	start = CPU.rip;
	run("48 0f 07");
	EXPECT_EQ(R.status, TRAPVM_EMU_CONTINUE);
	EXPECT_EQ(CPU.rip, H_UCODE + 0x22);
	EXPECT_EQ(CPU.cpl, 3);
	EXPECT_EQ(CPU.seg[SREG_CS].selector, 0x33);
	EXPECT_EQ(CPU.seg[SREG_SS].selector, 0x2b);
	EXPECT_EQ(CPU.rflags, 0x246);		/* RF and VM dropped */

	/* SYSRETL: compatibility mode, CS = STAR[63:48] */
	setup();
	CPU.gpr[GPR_RCX] = 0xffffffff00001000ULL;
	CPU.gpr[GPR_R11] = 0x202;
	start = CPU.rip;
	run("0f 07");
	EXPECT_EQ(CPU.rip, 0x1000);
	EXPECT_EQ(CPU.seg[SREG_CS].selector, 0x23);

	/* non-canonical RCX: #GP(0) at CPL0 */
	setup();
	CPU.gpr[GPR_RCX] = 0x0000800000000000ULL;
	start = CPU.rip;
	run("48 0f 07");
	EXPECT_GP0();
	EXPECT_EQ(CPU.cpl, 0);

	setup_user();
	start = CPU.rip;
	run("48 0f 07");
	EXPECT_GP0();

	setup();
	CPU.efer &= ~TRAPVM_EFER_SCE;
	start = CPU.rip;
	run("48 0f 07");
	EXPECT_UD();

	/* SWAPGS */
	setup();
	CPU.seg[SREG_GS].base = 0x1111;
	CPU.kernel_gs_base = 0x2222;
	start = CPU.rip;
	run("0f 01 f8");
	EXPECT_OK(3);
	EXPECT_EQ(CPU.seg[SREG_GS].base, 0x2222);
	EXPECT_EQ(CPU.kernel_gs_base, 0x1111);
	setup_user();
	start = CPU.rip;
	run("0f 01 f8");
	EXPECT_GP0();
}

static void test_int_n(void)
{
	u64 start;

	/* INT 0x80 from CPL3 through a DPL3 trap gate: CPL switch */
	setup_user();
	start = CPU.rip;
	run("cd 80");
	EXPECT_EQ(R.status, TRAPVM_EMU_EXCEPTION);
	EXPECT_EQ(CPU.rip, H_HANDLER(0x80));
	EXPECT_EQ(CPU.cpl, 0);
	EXPECT_EQ(CPU.gpr[GPR_RSP], H_KSTACK_TOP - 40);
	EXPECT_EQ(h_get64(&H, CPU.gpr[GPR_RSP]), start + 2);
	EXPECT_EQ(h_get64(&H, CPU.gpr[GPR_RSP] + 8), SEL_UCODE);
	EXPECT_EQ(h_get64(&H, CPU.gpr[GPR_RSP] + 32), SEL_UDATA);
	EXPECT(CPU.rflags & TRAPVM_RFLAGS_IF, "trap gate keeps IF");

	/* INT 0x21 from CPL3 to a DPL0 gate: #GP(0x21*8+2) at the INT */
	setup_user();
	start = CPU.rip;
	run("cd 21");
	EXPECT_EXC(13, 0x21 * 8 + 2, start);

	/* INT3 from CPL3: DPL3 gate */
	setup_user();
	start = CPU.rip;
	run("cc");
	EXPECT_EXC(3, -1, start + 1);

	/* INT1 ignores the gate DPL */
	setup_user();
	start = CPU.rip;
	run("f1");
	EXPECT_EXC(1, -1, start + 1);

	/* INTO is invalid in 64-bit mode */
	setup_user();
	start = CPU.rip;
	run("ce");
	EXPECT_UD();
}

/* --- MSRs -------------------------------------------------------------- */

static void wrmsr(u32 msr, u64 v)
{
	CPU.gpr[GPR_RCX] = msr;
	CPU.gpr[GPR_RAX] = v & 0xffffffff;
	CPU.gpr[GPR_RDX] = v >> 32;
	run("0f 30");
}

static u64 rdmsr(u32 msr)
{
	CPU.gpr[GPR_RCX] = msr;
	CPU.gpr[GPR_RAX] = ~0ULL;
	CPU.gpr[GPR_RDX] = ~0ULL;
	run("0f 32");
	return (CPU.gpr[GPR_RDX] << 32) | CPU.gpr[GPR_RAX];
}

#define WR_GP(msr, v)							\
	do {								\
		setup();						\
		start = CPU.rip;					\
		wrmsr(msr, v);						\
		EXPECT_GP0();						\
	} while (0)
#define WR_OK(msr, v)							\
	do {								\
		setup();						\
		start = CPU.rip;					\
		wrmsr(msr, v);						\
		EXPECT_OK(2);						\
	} while (0)

static void test_msr(void)
{
	u64 start;

	WR_GP(TRAPVM_MSR_EFER, CPU.efer | BIT(2));		/* reserved */
	WR_GP(TRAPVM_MSR_EFER, CPU.efer & ~TRAPVM_EFER_LME);	/* PG on */
	WR_OK(TRAPVM_MSR_EFER, CPU.efer & ~TRAPVM_EFER_NXE);
	EXPECT_EQ(H.paging_changes, 1);
	/* LMA is read-only: writing 0 there changes nothing */
	WR_OK(TRAPVM_MSR_EFER, TRAPVM_EFER_SCE | TRAPVM_EFER_LME |
	      TRAPVM_EFER_NXE);
	EXPECT(CPU.efer & TRAPVM_EFER_LMA, "LMA kept");

	WR_GP(TRAPVM_MSR_LSTAR, 0x0000800000000000ULL);
	WR_OK(TRAPVM_MSR_LSTAR, 0xffff800000001000ULL);
	EXPECT_EQ(CPU.lstar, 0xffff800000001000ULL);
	WR_GP(TRAPVM_MSR_CSTAR, 0x1234567812345678ULL);
	WR_GP(TRAPVM_MSR_SFMASK, 1ULL << 32);
	WR_OK(TRAPVM_MSR_STAR, 0x0023001000000000ULL);
	EXPECT_EQ(CPU.star, 0x0023001000000000ULL);
	WR_GP(TRAPVM_MSR_FS_BASE, 0x0000800000000000ULL);
	WR_OK(TRAPVM_MSR_FS_BASE, 0x7fff12345000ULL);
	EXPECT_EQ(CPU.seg[SREG_FS].base, 0x7fff12345000ULL);
	WR_GP(TRAPVM_MSR_GS_BASE, 0xff00000000000000ULL);
	WR_OK(TRAPVM_MSR_KERNEL_GS_BASE, 0xffffffff80000000ULL);
	EXPECT_EQ(CPU.kernel_gs_base, 0xffffffff80000000ULL);
	WR_GP(TRAPVM_MSR_TSC_AUX, 1ULL << 32);
	WR_OK(TRAPVM_MSR_TSC_AUX, 7);
	EXPECT_EQ(CPU.tsc_aux, 7);
	WR_GP(TRAPVM_MSR_PAT, 0x0007040600070402ULL);	/* type 2 */
	WR_GP(TRAPVM_MSR_PAT, 0x0307040600070406ULL);	/* type 3 */
	WR_GP(TRAPVM_MSR_PAT, 0x0807040600070406ULL);	/* type 8 */
	WR_OK(TRAPVM_MSR_PAT, 0x0001050600070406ULL);
	EXPECT_EQ(CPU.pat, 0x0001050600070406ULL);
	WR_GP(TRAPVM_MSR_SYSENTER_EIP, 0x0000800000000000ULL);
	WR_OK(TRAPVM_MSR_SYSENTER_CS, 0x10);

	/* APIC base: x2APIC -> xAPIC directly, EXTD without EN, reserved */
	WR_GP(TRAPVM_MSR_APIC_BASE, 0xfee00900ULL);
	WR_GP(TRAPVM_MSR_APIC_BASE, 0xfee00500ULL);
	WR_GP(TRAPVM_MSR_APIC_BASE, 0xfee00f00ULL);	/* bit 9 */
	WR_GP(TRAPVM_MSR_APIC_BASE, 0x10000000d00ULL);	/* > MAXPHYADDR */
	WR_OK(TRAPVM_MSR_APIC_BASE, 0xfee00100ULL);	/* disable */

	/* x2APIC range goes to the hook; its #GP is honoured */
	setup();
	start = CPU.rip;
	wrmsr(0x808, 0x20);
	EXPECT_OK(2);
	EXPECT_EQ(H.x2apic[8], 0x20);
	EXPECT_EQ(H.msr_hook_calls, 1);
	start = CPU.rip;
	EXPECT_EQ(rdmsr(0x808), 0x20);
	setup();
	start = CPU.rip;
	wrmsr(0x808, 0x100);
	EXPECT_GP0();

	/* unknown MSR: #GP(0) and counted */
	setup();
	start = CPU.rip;
	rdmsr(0x12345);
	EXPECT_GP0();
	EXPECT_EQ(H.stats[TRAPVM_STAT_EMUL_MSR_UNKNOWN], 1);

	/* RDMSR splits EDX:EAX and clears the upper halves */
	setup();
	start = CPU.rip;
	EXPECT_EQ(rdmsr(TRAPVM_MSR_PAT), 0x0007040600070406ULL);
	EXPECT_EQ(CPU.gpr[GPR_RAX], 0x00070406ULL);
	EXPECT_EQ(CPU.gpr[GPR_RDX], 0x00070406ULL);
	EXPECT_EQ(rdmsr(TRAPVM_MSR_EFER), 0xd01);

	/* CPL3: #GP(0) */
	setup_user();
	start = CPU.rip;
	rdmsr(TRAPVM_MSR_EFER);
	EXPECT_GP0();
}

/*
 * Every MSR that is a plain register, each value checked against the
 * SDM (Vol. 4 MSR list, Vol. 3 3.3.7.1 canonical addresses), not against
 * the emulator: a write that must #GP leaves the register alone, one that
 * must succeed is seen by RDMSR and in the architectural register.
 */
enum { ANY, CANON, HIGH0, TRUNC32 };

static u64 *msr_reg(u32 msr)
{
	switch (msr) {
	case TRAPVM_MSR_STAR:		return &CPU.star;
	case TRAPVM_MSR_LSTAR:		return &CPU.lstar;
	case TRAPVM_MSR_CSTAR:		return &CPU.cstar;
	case TRAPVM_MSR_SFMASK:		return &CPU.sfmask;
	case TRAPVM_MSR_FS_BASE:	return &CPU.seg[SREG_FS].base;
	case TRAPVM_MSR_GS_BASE:	return &CPU.seg[SREG_GS].base;
	case TRAPVM_MSR_KERNEL_GS_BASE:	return &CPU.kernel_gs_base;
	case TRAPVM_MSR_TSC_AUX:	return &CPU.tsc_aux;
	case TRAPVM_MSR_SYSENTER_CS:	return &CPU.sysenter_cs;
	case TRAPVM_MSR_SYSENTER_ESP:	return &CPU.sysenter_esp;
	case TRAPVM_MSR_SYSENTER_EIP:	return &CPU.sysenter_eip;
	}
	return NULL;
}

static const struct {
	u32 msr;
	int kind;
} plain_msrs[] = {
	{ TRAPVM_MSR_STAR, ANY },		/* C000_0081 */
	{ TRAPVM_MSR_LSTAR, CANON },		/* C000_0082 */
	{ TRAPVM_MSR_CSTAR, CANON },		/* C000_0083 */
	{ TRAPVM_MSR_SFMASK, HIGH0 },		/* C000_0084: 63:32 rsvd */
	{ TRAPVM_MSR_FS_BASE, CANON },		/* C000_0100 */
	{ TRAPVM_MSR_GS_BASE, CANON },		/* C000_0101 */
	{ TRAPVM_MSR_KERNEL_GS_BASE, CANON },	/* C000_0102 */
	{ TRAPVM_MSR_TSC_AUX, HIGH0 },		/* C000_0103: 63:32 rsvd */
	{ TRAPVM_MSR_SYSENTER_CS, TRUNC32 },	/* 174H: a 32-bit register */
	{ TRAPVM_MSR_SYSENTER_ESP, CANON },	/* 175H */
	{ TRAPVM_MSR_SYSENTER_EIP, CANON },	/* 176H */
};

static const struct {
	int kind;
	bool la57;
	u64 v;
	bool gp;
	u64 stored;
} msr_values[] = {
	{ ANY, false, 0, false, 0 },
	{ ANY, false, ~0ULL, false, ~0ULL },
	{ ANY, false, 0x8000000000000001ULL, false, 0x8000000000000001ULL },
	/* 48-bit: bits 63:47 all equal */
	{ CANON, false, 0, false, 0 },
	{ CANON, false, 0x00007fffffffffffULL, false, 0x00007fffffffffffULL },
	{ CANON, false, 0xffff800000000000ULL, false, 0xffff800000000000ULL },
	{ CANON, false, ~0ULL, false, ~0ULL },
	{ CANON, false, 0x0000800000000000ULL, true, 0 },
	{ CANON, false, 0xffff7fffffffffffULL, true, 0 },
	{ CANON, false, 0x8000000000000000ULL, true, 0 },
	{ CANON, false, 0x0001000000000000ULL, true, 0 },
	/* 57-bit (CR4.LA57): bits 63:56 all equal */
	{ CANON, true, 0x0000800000000000ULL, false, 0x0000800000000000ULL },
	{ CANON, true, 0x00ffffffffffffffULL, false, 0x00ffffffffffffffULL },
	{ CANON, true, 0xff00000000000000ULL, false, 0xff00000000000000ULL },
	{ CANON, true, 0x0100000000000000ULL, true, 0 },
	{ CANON, true, 0xfeffffffffffffffULL, true, 0 },
	{ HIGH0, false, 0, false, 0 },
	{ HIGH0, false, 0xffffffffULL, false, 0xffffffffULL },
	{ HIGH0, false, 0x100000000ULL, true, 0 },
	{ HIGH0, false, 0x8000000000000000ULL, true, 0 },
	{ HIGH0, false, ~0ULL, true, 0 },
	{ TRUNC32, false, 0x10, false, 0x10 },
	{ TRUNC32, false, 0xffffffffULL, false, 0xffffffffULL },
	{ TRUNC32, false, 0xdeadbeef00000010ULL, false, 0x10 },
	{ TRUNC32, false, ~0ULL, false, 0xffffffffULL },
};

static void test_msr_plain(void)
{
	const u64 old = 0x5a5a5a5aULL;
	unsigned int i, j;
	u64 start;

	for (i = 0; i < ARRAY_SIZE(plain_msrs); i++) {
		u32 msr = plain_msrs[i].msr;

		for (j = 0; j < ARRAY_SIZE(msr_values); j++) {
			if (msr_values[j].kind != plain_msrs[i].kind)
				continue;
			setup();
			if (msr_values[j].la57)
				CPU.cr4 |= TRAPVM_CR4_LA57;
			*msr_reg(msr) = old;
			start = CPU.rip;
			wrmsr(msr, msr_values[j].v);
			if (msr_values[j].gp) {
				EXPECT_GP0();
				EXPECT_EQ(*msr_reg(msr), old);
				continue;
			}
			EXPECT_OK(2);
			EXPECT_EQ(*msr_reg(msr), msr_values[j].stored);
			start = CPU.rip;
			EXPECT_EQ(rdmsr(msr), msr_values[j].stored);
			EXPECT_OK(2);
			EXPECT_EQ(H.msr_hook_calls, 0);
		}
	}
}

/* --- port I/O -------------------------------------------------------- */

static void test_io(void)
{
	u8 buf[64];
	u64 start;

	/* out 0xf4, eax */
	setup();
	CPU.gpr[GPR_RAX] = 0x1122334455667788ULL;
	start = CPU.rip;
	EXPECT_EQ(run("e7 f4"), TRAPVM_EMU_IO);
	EXPECT_EQ(R.io.in, 0);
	EXPECT_EQ(R.io.size, 4);
	EXPECT_EQ(R.io.port, 0xf4);
	EXPECT_EQ(R.io.count, 1);
	EXPECT_EQ(R.io.data[0] | (R.io.data[3] << 24), 0x55000088);
	EXPECT_EQ(CPU.rip, start + 2);

	/* in al, dx: only AL changes, RIP moves on completion */
	setup();
	CPU.gpr[GPR_RAX] = 0x1122334455667788ULL;
	CPU.gpr[GPR_RDX] = 0x3fd;
	start = CPU.rip;
	EXPECT_EQ(run("ec"), TRAPVM_EMU_IO);
	EXPECT_EQ(R.io.in, 1);
	EXPECT_EQ(R.io.port, 0x3fd);
	EXPECT_EQ(R.io.size, 1);
	EXPECT_EQ(trapvm_emulate_in_complete(&CPU, &h_ops, &H, &R,
					     (u8[]){ 0x60 }),
		  TRAPVM_EMU_CONTINUE);
	EXPECT_EQ(CPU.gpr[GPR_RAX], 0x1122334455667760ULL);
	EXPECT_EQ(CPU.rip, start + 1);

	/* in eax, 0x60 zero-extends into RAX */
	setup();
	CPU.gpr[GPR_RAX] = ~0ULL;
	EXPECT_EQ(run("e5 60"), TRAPVM_EMU_IO);
	trapvm_emulate_in_complete(&CPU, &h_ops, &H, &R,
				   (u8[]){ 1, 2, 3, 4 });
	EXPECT_EQ(CPU.gpr[GPR_RAX], 0x04030201ULL);

	/* CPL3, IOPL0: the TSS bitmap decides */
	setup_user();
	CPU.gpr[GPR_RDX] = 0x3f8;
	start = CPU.rip;
	EXPECT_EQ(run("ee"), TRAPVM_EMU_IO);
	setup_user();
	CPU.gpr[GPR_RDX] = H_BLOCKED_PORT;
	start = CPU.rip;
	run("ee");
	EXPECT_GP0();
	setup_user();
	CPU.gpr[GPR_RDX] = H_BLOCKED_PORT - 1;	/* 16-bit access covers it */
	start = CPU.rip;
	run("66 ef");
	EXPECT_GP0();
	setup_user();
	CPU.gpr[GPR_RDX] = 0x500;		/* beyond the bitmap */
	start = CPU.rip;
	run("ee");
	EXPECT_GP0();
	setup_user();
	CPU.rflags |= TRAPVM_RFLAGS_IOPL;	/* IOPL3: no bitmap check */
	CPU.gpr[GPR_RDX] = 0x500;
	start = CPU.rip;
	EXPECT_EQ(run("ee"), TRAPVM_EMU_IO);

	/* rep outsb: all 5 bytes in one exit with a buffer */
	setup();
	h_put(&H, H_KDATA, "hello", 5);
	CPU.gpr[GPR_RSI] = H_KDATA;
	CPU.gpr[GPR_RCX] = 5;
	CPU.gpr[GPR_RDX] = 0x3f8;
	start = CPU.rip;
	h_code(&H, "f3 6e");
	memset(&R, 0, sizeof(R));
	R.io_buf = buf;
	R.io_buf_size = sizeof(buf);
	EXPECT_EQ(trapvm_emulate(&CPU, &h_ops, &H, &R), TRAPVM_EMU_IO);
	EXPECT_EQ(R.io.count, 5);
	EXPECT(!memcmp(R.io.data, "hello", 5), "data");
	EXPECT_EQ(CPU.gpr[GPR_RCX], 0);
	EXPECT_EQ(CPU.gpr[GPR_RSI], H_KDATA + 5);
	EXPECT_EQ(CPU.rip, start + 2);

	/* without a buffer: one element per exit, RIP stays */
	setup();
	h_put(&H, H_KDATA, "hello", 5);
	CPU.gpr[GPR_RSI] = H_KDATA;
	CPU.gpr[GPR_RCX] = 5;
	start = CPU.rip;
	EXPECT_EQ(run("f3 6e"), TRAPVM_EMU_IO);
	EXPECT_EQ(R.io.count, 1);
	EXPECT_EQ(R.io.data[0], 'h');
	EXPECT_EQ(CPU.gpr[GPR_RCX], 4);
	EXPECT_EQ(CPU.rip, start);

	/* rep outsb with RCX = 0 does nothing */
	setup();
	CPU.gpr[GPR_RCX] = 0;
	start = CPU.rip;
	run("f3 6e");
	EXPECT_OK(2);

	/* outsb from an unmapped address: #PF */
	setup();
	CPU.gpr[GPR_RSI] = 0xb00000;
	start = CPU.rip;
	run("6e");
	EXPECT_EXC(14, 0, start);

	/* rep insw: 3 words into memory at completion */
	setup();
	CPU.gpr[GPR_RDI] = H_KDATA + 0x10;
	CPU.gpr[GPR_RCX] = 3;
	CPU.gpr[GPR_RDX] = 0x1f0;
	start = CPU.rip;
	h_code(&H, "66 f3 6d");
	memset(&R, 0, sizeof(R));
	R.io_buf = buf;
	R.io_buf_size = sizeof(buf);
	EXPECT_EQ(trapvm_emulate(&CPU, &h_ops, &H, &R), TRAPVM_EMU_IO);
	EXPECT_EQ(R.io.in, 1);
	EXPECT_EQ(R.io.count, 3);
	EXPECT_EQ(R.io.size, 2);
	trapvm_emulate_in_complete(&CPU, &h_ops, &H, &R,
				   (u8[]){ 1, 2, 3, 4, 5, 6 });
	h_get(&H, H_KDATA + 0x10, buf, 6);
	EXPECT(!memcmp(buf, (u8[]){ 1, 2, 3, 4, 5, 6 }, 6), "INS data");
	EXPECT_EQ(CPU.gpr[GPR_RDI], H_KDATA + 0x16);
	EXPECT_EQ(CPU.gpr[GPR_RCX], 0);
	EXPECT_EQ(CPU.rip, start + 3);

	/* insb into a read-only page: #PF(P|W) at completion */
	setup();
	CPU.gpr[GPR_RDI] = H_RODATA;
	start = CPU.rip;
	EXPECT_EQ(run("6c"), TRAPVM_EMU_IO);
	R.status = trapvm_emulate_in_complete(&CPU, &h_ops, &H, &R,
					      (u8[]){ 9 });
	EXPECT_EXC(14, 3, start);
}

/* --- the rest -------------------------------------------------------- */

static void test_misc(void)
{
	u64 start;

	/* INVLPG */
	setup();
	CPU.gpr[GPR_RAX] = 0x7fff0000;
	start = CPU.rip;
	run("0f 01 38");
	EXPECT_OK(3);
	EXPECT_EQ(H.invlpgs, 1);
	EXPECT_EQ(H.last_invlpg, 0x7fff0000);
	setup_user();
	start = CPU.rip;
	run("0f 01 38");
	EXPECT_GP0();

	/* WBINVD */
	setup();
	start = CPU.rip;
	run("0f 09");
	EXPECT_OK(2);
	setup_user();
	start = CPU.rip;
	run("0f 09");
	EXPECT_GP0();

	/* XSETBV */
	setup();
	CPU.xcr0_supported = 0x7;
	CPU.gpr[GPR_RCX] = 0;
	CPU.gpr[GPR_RAX] = 7;
	CPU.gpr[GPR_RDX] = 0;
	start = CPU.rip;
	run("0f 01 d1");
	EXPECT_OK(3);
	EXPECT_EQ(CPU.xcr0, 7);
	CPU.gpr[GPR_RAX] = 6;			/* x87 missing */
	start = CPU.rip;
	run("0f 01 d1");
	EXPECT_GP0();
	setup();
	CPU.xcr0_supported = 0x7;
	CPU.gpr[GPR_RAX] = 5;			/* AVX without SSE */
	start = CPU.rip;
	run("0f 01 d1");
	EXPECT_GP0();
	setup();
	CPU.xcr0_supported = 0x7;
	CPU.gpr[GPR_RAX] = 0xf;			/* unsupported bit */
	start = CPU.rip;
	run("0f 01 d1");
	EXPECT_GP0();
	setup();
	CPU.gpr[GPR_RAX] = 1;
	CPU.gpr[GPR_RCX] = 1;			/* only XCR0 exists */
	start = CPU.rip;
	run("0f 01 d1");
	EXPECT_GP0();
	setup();
	CPU.cr4 &= ~TRAPVM_CR4_OSXSAVE;
	CPU.gpr[GPR_RAX] = 1;
	start = CPU.rip;
	run("0f 01 d1");
	EXPECT_UD();

	/* VMCALL */
	setup();
	CPU.gpr[GPR_RAX] = 1;
	CPU.gpr[GPR_RBX] = 2;
	CPU.gpr[GPR_RCX] = 3;
	CPU.gpr[GPR_RDX] = 4;
	CPU.gpr[GPR_RSI] = 5;
	start = CPU.rip;
	EXPECT_EQ(run("0f 01 c1"), TRAPVM_EMU_HYPERCALL);
	EXPECT_EQ(R.hypercall.nr, 1);
	EXPECT_EQ(R.hypercall.args[0], 2);
	EXPECT_EQ(R.hypercall.args[3], 5);
	EXPECT_EQ(CPU.rip, start + 3);
	setup_user();
	start = CPU.rip;
	run("0f 01 c1");
	EXPECT_UD();

	/* CLAC/STAC */
	setup();
	start = CPU.rip;
	run("0f 01 cb");
	EXPECT(CPU.rflags & TRAPVM_RFLAGS_AC, "STAC");
	start = CPU.rip;
	run("0f 01 ca");
	EXPECT_EQ(CPU.rflags & TRAPVM_RFLAGS_AC, 0);
	setup_user();
	start = CPU.rip;
	run("0f 01 ca");
	EXPECT_UD();

	/* RDPMC: no virtual PMU */
	setup();
	start = CPU.rip;
	run("0f 33");
	EXPECT_GP0();

	/* UD2 and an undefined opcode: #UD at the instruction */
	setup();
	start = CPU.rip;
	run("0f 0b");
	EXPECT_UD();
	setup();
	start = CPU.rip;
	run("0f 04");
	EXPECT_UD();

	/* something unprivileged: not ours, nothing touched */
	setup();
	start = CPU.rip;
	CPU.interrupt_shadow = 1;
	EXPECT_EQ(run("48 89 c3"), TRAPVM_EMU_UNHANDLED);
	EXPECT_EQ(CPU.rip, start);
	EXPECT_EQ(CPU.interrupt_shadow, 1);

	/* 16 bytes: #GP(0) */
	setup();
	start = CPU.rip;
	run("66 66 66 66 66 66 66 66 66 66 66 66 66 66 66 fa");
	EXPECT_GP0();
}

static void test_fetch_faults(void)
{
	u64 start;

	/* RIP on an unmapped page: #PF with I/D set */
	setup();
	CPU.rip = 0xc00000;
	start = CPU.rip;
	h_emulate(&H, &R);
	EXPECT_EXC(14, 0x10, start);
	EXPECT_EQ(CPU.cr2, 0xc00000);

	/* instruction crossing into an unmapped page: CR2 = next page */
	setup();
	CPU.rip = H_KCODE + 0xffe;
	start = CPU.rip;
	run("0f 01");
	EXPECT_EXC(14, 0x10, start);
	EXPECT_EQ(CPU.cr2, H_KCODE + 0x1000);

	/* a complete instruction at the end of a page is fine */
	setup();
	CPU.rip = H_KCODE + 0xfff;
	start = CPU.rip;
	run("fa");
	EXPECT_OK(1);

	/* fetch from an NX page */
	setup();
	CPU.rip = H_KDATA;
	start = CPU.rip;
	run("fa");
	EXPECT_EXC(14, 0x11, start);

	/* user fetch from a supervisor page */
	setup_user();
	CPU.rip = H_KCODE;
	start = CPU.rip;
	h_emulate(&H, &R);
	EXPECT_EXC(14, 0x15, start);
}

static void test_sysenter_sysexit(void)
{
	u64 start;

	/* SYSENTER_CS = 0: #GP(0) */
	setup_user();
	start = CPU.rip;
	run("0f 34");
	EXPECT_GP0();

	/* into 64-bit CPL0 code: CS = SYSENTER_CS, SS = +8, IF cleared */
	setup_user();
	CPU.sysenter_cs = SEL_KCODE;
	CPU.sysenter_esp = H_KSTACK_TOP - 0x40;
	CPU.sysenter_eip = 0xffffffff81234000ULL;
	start = CPU.rip;
	run("0f 34");
	EXPECT_EQ(R.status, TRAPVM_EMU_CONTINUE);
	EXPECT_EQ(CPU.cpl, 0);
	EXPECT_EQ(CPU.rip, 0xffffffff81234000ULL);
	EXPECT_EQ(CPU.gpr[GPR_RSP], H_KSTACK_TOP - 0x40);
	EXPECT_EQ(CPU.seg[SREG_CS].selector, SEL_KCODE);
	EXPECT_EQ(CPU.seg[SREG_SS].selector, SEL_KDATA);
	EXPECT_EQ(CPU.rflags & TRAPVM_RFLAGS_IF, 0);

	/* SYSEXIT (REX.W): CS = SYSENTER_CS + 32, SS = + 40, RPL 3 */
	setup();
	CPU.sysenter_cs = SEL_KCODE32;
	CPU.gpr[GPR_RDX] = H_UCODE + 4;
	CPU.gpr[GPR_RCX] = H_USTACK_TOP - 8;
	start = CPU.rip;
	run("48 0f 35");
	EXPECT_EQ(R.status, TRAPVM_EMU_CONTINUE);
	EXPECT_EQ(CPU.cpl, 3);
	EXPECT_EQ(CPU.rip, H_UCODE + 4);
	EXPECT_EQ(CPU.gpr[GPR_RSP], H_USTACK_TOP - 8);
	EXPECT_EQ(CPU.seg[SREG_CS].selector, SEL_KCODE32 + 32 + 3);
	EXPECT_EQ(CPU.seg[SREG_SS].selector, SEL_KCODE32 + 40 + 3);

	/* SYSEXIT at CPL3, or to a non-canonical RIP: #GP(0) */
	setup_user();
	CPU.sysenter_cs = SEL_KCODE32;
	start = CPU.rip;
	run("48 0f 35");
	EXPECT_GP0();
	setup();
	CPU.sysenter_cs = SEL_KCODE32;
	CPU.gpr[GPR_RDX] = 0x0000800000000000ULL;
	start = CPU.rip;
	run("48 0f 35");
	EXPECT_GP0();
}

static void test_cpuid_cr8_tpr(void)
{
	u64 start;

	/* CPUID (trapping with CPUID faulting) answered by the hook */
	setup_user();
	CPU.gpr[GPR_RAX] = 0xffffffff00000007ULL;
	CPU.gpr[GPR_RCX] = 1;
	start = CPU.rip;
	run("0f a2");
	EXPECT_OK(2);
	EXPECT_EQ(CPU.gpr[GPR_RAX], 7);
	EXPECT_EQ(CPU.gpr[GPR_RBX], 1);
	EXPECT_EQ(CPU.gpr[GPR_RDX], 0x4d565054);

	/* RDTSC(P): #GP(0) at CPL3 with CR4.TSD, else the hook's TSC */
	setup_user();
	CPU.cr4 |= TRAPVM_CR4_TSD;
	start = CPU.rip;
	run("0f 31");
	EXPECT_GP0();
	setup();
	CPU.cr4 |= TRAPVM_CR4_TSD;
	CPU.tsc_aux = 3;
	start = CPU.rip;
	run("0f 01 f9");
	EXPECT_OK(3);
	EXPECT_EQ(CPU.gpr[GPR_RAX], 0x89abcdefULL);
	EXPECT_EQ(CPU.gpr[GPR_RDX], 0x01234567ULL);
	EXPECT_EQ(CPU.gpr[GPR_RCX], 3);

	/* CR8 and the x2APIC TPR are the same register (TPR = CR8 << 4) */
	setup();
	mov_to_cr(8, 0xa);
	EXPECT_EQ(H.x2apic[8], 0xa0);
	H.x2apic[8] = 0x5c;
	start = CPU.rip;
	run("44 0f 20 c0");			/* mov rax, cr8 */
	EXPECT_OK(4);
	EXPECT_EQ(CPU.gpr[GPR_RAX], 5);
}

static void test_single_step(void)
{
	u64 start;

	setup();
	CPU.rflags |= TRAPVM_RFLAGS_TF;
	start = CPU.rip;
	run("fa");
	/* #DB is a trap: the frame holds the next instruction */
	EXPECT_EXC(1, -1, start + 1);
	EXPECT(CPU.dr[6] & BIT(14), "DR6.BS");

	/* MOV SS holds the trap off (SDM 6.8.3) */
	setup();
	CPU.rflags |= TRAPVM_RFLAGS_TF;
	CPU.gpr[GPR_RAX] = SEL_KDATA;
	start = CPU.rip;
	run("8e d0");
	EXPECT_OK(2);

	/* after a far transfer the trap reports the new RIP */
	setup();
	CPU.rflags |= TRAPVM_RFLAGS_TF;
	push_frame((u64[]){ H_KCODE + 0x40, SEL_KCODE }, 2);
	start = CPU.rip;
	run("48 cb");
	EXPECT_EXC(1, -1, H_KCODE + 0x40);
}

int main(void)
{
	RUN(test_cli_sti);
	RUN(test_hlt);
	RUN(test_mov_cr0);
	RUN(test_mov_cr4);
	RUN(test_mov_cr3_cr8_cr2);
	RUN(test_mov_dr);
	RUN(test_lgdt_sgdt);
	RUN(test_ltr_lldt);
	RUN(test_mov_sreg);
	RUN(test_far_ret_jmp_call);
	RUN(test_call_gates);
	RUN(test_iret);
	RUN(test_syscall_sysret);
	RUN(test_int_n);
	RUN(test_msr);
	RUN(test_msr_plain);
	RUN(test_io);
	RUN(test_misc);
	RUN(test_fetch_faults);
	RUN(test_sysenter_sysexit);
	RUN(test_cpuid_cr8_tpr);
	RUN(test_single_step);
	return tap_done();
}
