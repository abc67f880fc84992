// SPDX-License-Identifier: GPL-2.0
/*
 * Exception and interrupt delivery tests, against the Intel SDM vol. 3
 * chapter 6: 6.14 (64-bit mode: 16-byte gates, IST, the SS:RSP frame
 * always pushed, RSP aligned to 16, null SS on a CPL change), 6.12.1.x
 * (gate and code-segment checks, error codes with EXT and IDT bits), and
 * table 6-5 (benign / contributory / page-fault classes, #DF, shutdown).
 */
#include <string.h>

#include "tap.h"
#include "emu_harness.h"

static struct harness H;
#define CPU (H.cpu)

static u64 frame(unsigned int i)
{
	return h_get64(&H, CPU.gpr[GPR_RSP] + 8 * i);
}

static void test_error_code_vectors(void)
{
	/* SDM table 6-1: which exceptions push an error code */
	static const int has[32] = {
		[8] = 1, [10] = 1, [11] = 1, [12] = 1, [13] = 1, [14] = 1,
		[17] = 1, [21] = 1, [29] = 1, [30] = 1,
	};
	unsigned int v;

	for (v = 0; v < 32; v++)
		EXPECT(trapvm_exception_has_error_code(v) == has[v],
		       "vector %u", v);
}

static void test_same_cpl_interrupt_gate(void)
{
	u64 sp, rip;
	int r;

	h_init(&H);
	CPU.rflags = 0x202 | TRAPVM_RFLAGS_TF | TRAPVM_RFLAGS_RF;
	CPU.gpr[GPR_RSP] = H_KSTACK_TOP - 0x108;	/* not 16-aligned */
	sp = CPU.gpr[GPR_RSP];
	rip = CPU.rip;
	r = trapvm_deliver_exception(&CPU, &h_ops, &H, 13, true, 0x1234);
	EXPECT_EQ(r, TRAPVM_EMU_EXCEPTION);
	EXPECT_EQ(CPU.rip, H_HANDLER(13));
	/* aligned down to 16, then six qwords */
	EXPECT_EQ(CPU.gpr[GPR_RSP], ((sp & ~0xfULL) - 48));
	EXPECT_EQ(frame(0), 0x1234);
	EXPECT_EQ(frame(1), rip);
	EXPECT_EQ(frame(2), SEL_KCODE);
	EXPECT_EQ(frame(3), 0x202 | TRAPVM_RFLAGS_TF | TRAPVM_RFLAGS_RF);
	EXPECT_EQ(frame(4), sp);
	EXPECT_EQ(frame(5), SEL_KDATA);
	/* interrupt gate: IF, TF, RF cleared */
	EXPECT_EQ(CPU.rflags, 0x2);
	EXPECT_EQ(CPU.cpl, 0);
	EXPECT_EQ(CPU.seg[SREG_SS].selector, SEL_KDATA);
	EXPECT_EQ(H.stats[TRAPVM_STAT_INJ_EXCEPTION], 1);
}

static void test_cpl_switch_page_fault(void)
{
	struct trapvm_fault f = {
		.vector = 14, .has_error_code = true, .error_code = 6,
		.cr2 = 0x1234000,
	};
	u64 usp, urip;

	h_init(&H);
	h_user(&H);
	usp = CPU.gpr[GPR_RSP];
	urip = CPU.rip;
	EXPECT_EQ(trapvm_deliver_fault(&CPU, &h_ops, &H, &f),
		  TRAPVM_EMU_EXCEPTION);
	EXPECT_EQ(CPU.cr2, 0x1234000);
	EXPECT_EQ(CPU.cpl, 0);
	/* the stack comes from TSS.RSP0 */
	EXPECT_EQ(CPU.gpr[GPR_RSP], H_KSTACK_TOP - 48);
	EXPECT_EQ(frame(0), 6);
	EXPECT_EQ(frame(1), urip);
	EXPECT_EQ(frame(2), SEL_UCODE);		/* virtual RPL 3 */
	EXPECT_EQ(frame(3), 0x202);
	EXPECT_EQ(frame(4), usp);
	EXPECT_EQ(frame(5), SEL_UDATA);
	/* new SS is a null selector with RPL = new CPL */
	EXPECT_EQ(CPU.seg[SREG_SS].selector, 0);
	EXPECT_EQ(CPU.seg[SREG_CS].selector, SEL_KCODE);
	EXPECT_EQ(H.stats[TRAPVM_STAT_INJ_PF], 1);
}

static void test_trap_gate_and_ist(void)
{
	h_init(&H);
	h_set_gate(&H, 0x30, H_HANDLER(0x30), SEL_KCODE, 0, 0xf, 0, true);
	CPU.rflags = 0x202;
	trapvm_deliver_interrupt(&CPU, &h_ops, &H, 0x30);
	EXPECT_EQ(CPU.rip, H_HANDLER(0x30));
	EXPECT(CPU.rflags & TRAPVM_RFLAGS_IF, "trap gate keeps IF");
	EXPECT_EQ(H.stats[TRAPVM_STAT_INJ_IRQ], 1);

	/* IST1 is used even without a privilege change */
	h_init(&H);
	h_set_gate(&H, 2, H_HANDLER(2), SEL_KCODE, 1, 0xe, 0, true);
	trapvm_deliver_exception(&CPU, &h_ops, &H, 2, false, 0);
	EXPECT_EQ(CPU.rip, H_HANDLER(2));
	EXPECT_EQ(CPU.gpr[GPR_RSP], H_IST1_TOP - 40);

	/* ... and from CPL3 */
	h_init(&H);
	h_user(&H);
	h_set_gate(&H, 2, H_HANDLER(2), SEL_KCODE, 1, 0xe, 0, true);
	trapvm_deliver_exception(&CPU, &h_ops, &H, 2, false, 0);
	EXPECT_EQ(CPU.gpr[GPR_RSP], H_IST1_TOP - 40);
	EXPECT_EQ(frame(1), SEL_UCODE);

	/* IST slot beyond the TSS limit: #TS(TR selector + EXT) */
	h_init(&H);
	CPU.tr.limit = 0x30;
	h_set_gate(&H, 2, H_HANDLER(2), SEL_KCODE, 3, 0xe, 0, true);
	trapvm_deliver_exception(&CPU, &h_ops, &H, 2, false, 0);
	EXPECT_EQ(CPU.rip, H_HANDLER(10));
	EXPECT_EQ(frame(0), SEL_TSS | 1);
}

static void test_bad_gates(void)
{
	/* not present: #NP(vector*8 + IDT(2) + EXT(1)) */
	h_init(&H);
	h_set_gate(&H, 0x40, H_HANDLER(0x40), SEL_KCODE, 0, 0xe, 0, false);
	trapvm_deliver_interrupt(&CPU, &h_ops, &H, 0x40);
	EXPECT_EQ(CPU.rip, H_HANDLER(11));
	EXPECT_EQ(frame(0), 0x40 * 8 + 3);

	/* a call gate or a 32-bit gate type: #GP(vector*8+3) */
	h_init(&H);
	h_set_gate(&H, 0x41, H_HANDLER(0x41), SEL_KCODE, 0, 0xc, 0, true);
	trapvm_deliver_interrupt(&CPU, &h_ops, &H, 0x41);
	EXPECT_EQ(CPU.rip, H_HANDLER(13));
	EXPECT_EQ(frame(0), 0x41 * 8 + 3);
	h_init(&H);
	h_set_gate(&H, 0x41, H_HANDLER(0x41), SEL_KCODE, 0, 0x6, 0, true);
	trapvm_deliver_interrupt(&CPU, &h_ops, &H, 0x41);
	EXPECT_EQ(frame(0), 0x41 * 8 + 3);

	/* beyond the IDT limit */
	h_init(&H);
	CPU.idtr.limit = 0x30 * 16 - 1;
	trapvm_deliver_interrupt(&CPU, &h_ops, &H, 0x30);
	EXPECT_EQ(CPU.rip, H_HANDLER(13));
	EXPECT_EQ(frame(0), 0x30 * 8 + 3);

	/* INT n to a DPL0 gate from CPL3: #GP(n*8+2), no EXT */
	h_init(&H);
	h_user(&H);
	trapvm_deliver_soft_int(&CPU, &h_ops, &H, 0x40, 2);
	EXPECT_EQ(CPU.rip, H_HANDLER(13));
	EXPECT_EQ(frame(0), 0x40 * 8 + 2);
	EXPECT_EQ(frame(1), H_UCODE);		/* reported at the INT */

	/* ... a hardware exception ignores the gate DPL */
	h_init(&H);
	h_user(&H);
	trapvm_deliver_exception(&CPU, &h_ops, &H, 0, false, 0);
	EXPECT_EQ(CPU.rip, H_HANDLER(0));

	/* target CS: data segment, not present, 32-bit, null */
	h_init(&H);
	h_set_gate(&H, 0x42, H_HANDLER(0x42), SEL_KDATA, 0, 0xe, 0, true);
	trapvm_deliver_interrupt(&CPU, &h_ops, &H, 0x42);
	EXPECT_EQ(CPU.rip, H_HANDLER(13));
	EXPECT_EQ(frame(0), SEL_KDATA | 1);
	h_init(&H);
	h_set_desc(&H, 0x70, 0x00af1b000000ffffULL);	/* code64, P=0 */
	h_set_gate(&H, 0x42, H_HANDLER(0x42), 0x70, 0, 0xe, 0, true);
	trapvm_deliver_interrupt(&CPU, &h_ops, &H, 0x42);
	EXPECT_EQ(CPU.rip, H_HANDLER(11));
	EXPECT_EQ(frame(0), 0x70 | 1);
	h_init(&H);
	h_set_gate(&H, 0x42, H_HANDLER(0x42), SEL_KCODE32, 0, 0xe, 0, true);
	trapvm_deliver_interrupt(&CPU, &h_ops, &H, 0x42);
	EXPECT_EQ(CPU.rip, H_HANDLER(13));
	EXPECT_EQ(frame(0), SEL_KCODE32 | 1);
	h_init(&H);
	h_set_gate(&H, 0x42, H_HANDLER(0x42), 0, 0, 0xe, 0, true);
	trapvm_deliver_interrupt(&CPU, &h_ops, &H, 0x42);
	EXPECT_EQ(CPU.rip, H_HANDLER(13));
	EXPECT_EQ(frame(0), 1);

	/* non-canonical handler address: #GP(EXT) */
	h_init(&H);
	h_set_gate(&H, 0x43, 0x0000800000000000ULL, SEL_KCODE, 0, 0xe, 0,
		   true);
	trapvm_deliver_interrupt(&CPU, &h_ops, &H, 0x43);
	EXPECT_EQ(CPU.rip, H_HANDLER(13));
	EXPECT_EQ(frame(0), 1);
}

static void test_double_fault(void)
{
	int r;

	/* contributory (#GP) then contributory (#NP): #DF, error code 0 */
	h_init(&H);
	h_set_gate(&H, 13, H_HANDLER(13), SEL_KCODE, 0, 0xe, 0, false);
	r = trapvm_deliver_exception(&CPU, &h_ops, &H, 13, true, 0);
	EXPECT_EQ(r, TRAPVM_EMU_EXCEPTION);
	EXPECT_EQ(CPU.rip, H_HANDLER(8));
	EXPECT_EQ(CPU.gpr[GPR_RSP], H_IST1_TOP - 48);
	EXPECT_EQ(frame(0), 0);

	/* benign (#UD) then contributory (#NP): the #NP, not #DF */
	h_init(&H);
	h_set_gate(&H, 6, H_HANDLER(6), SEL_KCODE, 0, 0xe, 0, false);
	trapvm_deliver_exception(&CPU, &h_ops, &H, 6, false, 0);
	EXPECT_EQ(CPU.rip, H_HANDLER(11));
	EXPECT_EQ(frame(0), 6 * 8 + 3);

	/* #PF then #PF (the handler stack is unmapped): #DF */
	h_init(&H);
	h_user(&H);
	h_put64(&H, H_TSS + 4, 0xd00000);	/* RSP0 -> nothing */
	CPU.cr2 = 0;
	r = trapvm_deliver_exception(&CPU, &h_ops, &H, 14, true, 4);
	EXPECT_EQ(r, TRAPVM_EMU_EXCEPTION);
	EXPECT_EQ(CPU.rip, H_HANDLER(8));
	EXPECT_EQ(CPU.cr2, 0xd00000 - 48);	/* the second #PF's CR2 */

	/* #PF then #GP: #DF */
	h_init(&H);
	h_set_gate(&H, 14, H_HANDLER(14), SEL_KCODE, 0, 0xc, 0, true);
	trapvm_deliver_exception(&CPU, &h_ops, &H, 14, true, 0);
	EXPECT_EQ(CPU.rip, H_HANDLER(8));

	/* #PF then #UD-free benign? a #PF while delivering an interrupt */
	h_init(&H);
	h_user(&H);
	h_put64(&H, H_TSS + 4, 0xd00000);
	trapvm_deliver_interrupt(&CPU, &h_ops, &H, 0x30);
	/* interrupt (benign) then #PF: the #PF is delivered (then its
	 * own delivery faults again: #PF+#PF = #DF) */
	EXPECT_EQ(CPU.rip, H_HANDLER(8));
}

static void test_triple_fault(void)
{
	struct trapvm_emu_result res;
	int r;

	/* #GP gate and #DF gate both bad: shutdown */
	h_init(&H);
	h_set_gate(&H, 13, H_HANDLER(13), SEL_KCODE, 0, 0xe, 0, false);
	h_set_gate(&H, 8, H_HANDLER(8), SEL_KCODE, 1, 0xe, 0, false);
	r = trapvm_deliver_exception(&CPU, &h_ops, &H, 13, true, 0);
	EXPECT_EQ(r, TRAPVM_EMU_SHUTDOWN);
	EXPECT_EQ(CPU.shutdown, 1);
	/* nothing runs after a shutdown */
	memset(&res, 0, sizeof(res));
	EXPECT_EQ(trapvm_emulate(&CPU, &h_ops, &H, &res),
		  TRAPVM_EMU_SHUTDOWN);

	/* no IDT at all (the boot state): any exception is a triple fault */
	h_init(&H);
	CPU.idtr.limit = 0;
	r = trapvm_deliver_exception(&CPU, &h_ops, &H, 6, false, 0);
	EXPECT_EQ(r, TRAPVM_EMU_SHUTDOWN);

	/* the emulator's own fault escalates the same way */
	h_init(&H);
	CPU.idtr.limit = 0;
	h_code(&H, "0f 0b");
	memset(&res, 0, sizeof(res));
	EXPECT_EQ(trapvm_emulate(&CPU, &h_ops, &H, &res),
		  TRAPVM_EMU_SHUTDOWN);
}

static void test_interrupt_state(void)
{
	h_init(&H);
	CPU.rflags = 0x202;
	CPU.halted = 1;
	CPU.interrupt_shadow = 1;
	EXPECT_EQ(trapvm_deliver_interrupt(&CPU, &h_ops, &H, 0x20),
		  TRAPVM_EMU_EXCEPTION);
	EXPECT_EQ(CPU.halted, 0);
	EXPECT_EQ(CPU.interrupt_shadow, 0);
	EXPECT_EQ(CPU.rflags & TRAPVM_RFLAGS_IF, 0);
	/* an interrupt pushes the current RIP, no error code */
	EXPECT_EQ(frame(0), H_KCODE);
	EXPECT_EQ(frame(1), SEL_KCODE);
}

int main(void)
{
	RUN(test_error_code_vectors);
	RUN(test_same_cpl_interrupt_gate);
	RUN(test_cpl_switch_page_fault);
	RUN(test_trap_gate_and_ist);
	RUN(test_bad_gates);
	RUN(test_double_fault);
	RUN(test_triple_fault);
	RUN(test_interrupt_state);
	return tap_done();
}
