// SPDX-License-Identifier: GPL-2.0
/*
 * Guest side of the test library: ucalls, exception dispatch with
 * fixups, IDT gates, user mode, MSRs.  Runs inside the guest at virtual
 * CPL0 (guest_user_return() is reached from CPL3 through a DPL3 gate).
 * Must not call anything outside the image: no libc.
 */
#include "trapvm_test.h"

volatile uint64_t guest_ex_fixup;
volatile uint64_t guest_ex_insn;
volatile struct guest_ex guest_last_ex;
uint64_t guest_user_kernel_rsp;

extern const unsigned char guest_user_back[];
static void guest_user_return(struct ex_regs *regs);

/*
 * Initialized here: the image is copied into the guest after the test
 * process's relocations, so the pointer is the guest's too.
 */
guest_handler_t guest_handlers[256] = {
	[TVM_USER_RETURN_VECTOR] = guest_user_return,
};

void guest_ucall_fill(uint64_t cmd, const char *file, uint64_t line,
		      const char *text, uint64_t a0, uint64_t a1, uint64_t a2,
		      uint64_t a3)
{
	volatile struct ucall *uc = (volatile struct ucall *)TVM_UCALL_GPA;

	uc->cmd = cmd;
	uc->file = file;
	uc->line = line;
	uc->text = text;
	uc->args[0] = a0;
	uc->args[1] = a1;
	uc->args[2] = a2;
	uc->args[3] = a3;
}

void guest_ucall(uint64_t cmd, const char *file, uint64_t line,
		 const char *text, uint64_t a0, uint64_t a1, uint64_t a2,
		 uint64_t a3)
{
	guest_ucall_fill(cmd, file, line, text, a0, a1, a2, a3);
	asm volatile("outl %0, %w1" : : "a"((uint32_t)TVM_UCALL_GPA),
		     "Nd"(TVM_UCALL_PORT) : "memory");
	/* A failed assertion never continues. */
	while (cmd == UCALL_ABORT || cmd == UCALL_UNHANDLED)
		asm volatile("outl %0, %w1" : : "a"((uint32_t)TVM_UCALL_GPA),
			     "Nd"(TVM_UCALL_PORT) : "memory");
}

void guest_done(void)
{
	for (;;)
		GUEST_DONE();
}

static uint64_t read_cr2(void)
{
	uint64_t v;

	asm volatile("mov %%cr2, %0" : "=r"(v));
	return v;
}

void guest_ex_dispatch(struct ex_regs *regs)
{
	uint64_t v = regs->vector;

	if (guest_ex_fixup) {
		guest_last_ex.vector = v;
		guest_last_ex.error_code = regs->error_code;
		guest_last_ex.rip = regs->rip;
		guest_last_ex.cs = regs->cs;
		guest_last_ex.rflags = regs->rflags;
		guest_last_ex.rsp = regs->rsp;
		guest_last_ex.ss = regs->ss;
		guest_last_ex.cr2 = v == PF_VECTOR ? read_cr2() : 0;
		guest_last_ex.frame = (uint64_t)&regs->rip;
		regs->rip = guest_ex_fixup;
		guest_ex_fixup = 0;
		return;
	}
	if (guest_handlers[v]) {
		guest_handlers[v](regs);
		return;
	}
	guest_ucall(UCALL_UNHANDLED, __FILE__, __LINE__, NULL, v,
		    regs->error_code, regs->rip,
		    v == PF_VECTOR ? read_cr2() : regs->cs);
}

/* INT TVM_USER_RETURN_VECTOR from guest_user_trampoline: back to CPL0. */
static void guest_user_return(struct ex_regs *regs)
{
	regs->rip = (uint64_t)guest_user_back;
	regs->cs = TVM_KCS;
	regs->ss = TVM_KDS;
	regs->rsp = guest_user_kernel_rsp;
	regs->rflags = 0x2;
}

void guest_set_gate(unsigned int vector, uint64_t handler, unsigned int type,
		    unsigned int dpl, unsigned int ist, bool present)
{
	volatile uint64_t *g = (volatile uint64_t *)(TVM_IDT_GPA + 16 * vector);

	g[0] = (handler & 0xffff) | ((uint64_t)TVM_KCS << 16) |
	       ((uint64_t)ist << 32) | ((uint64_t)type << 40) |
	       ((uint64_t)dpl << 45) | ((uint64_t)present << 47) |
	       (((handler >> 16) & 0xffff) << 48);
	g[1] = handler >> 32;
}

void guest_set_stub_gate(unsigned int vector, unsigned int type,
			 unsigned int dpl, unsigned int ist)
{
	guest_set_gate(vector, (uint64_t)guest_idt_stubs + 16 * vector, type,
		       dpl, ist, true);
}

/* Virtual RFLAGS.IF, from the frame of a #UD (PUSHF cannot show it). */
uint64_t guest_read_vif(void)
{
	asm volatile(ASM_SAFE("ud2") : ASM_SAFE_OUT : : ASM_SAFE_CLOBBERS);
	GUEST_ASSERT_EQ(guest_last_ex.vector, UD_VECTOR);
	return guest_last_ex.rflags & X86_EFLAGS_IF;
}

uint64_t guest_rdmsr(uint32_t msr)
{
	uint32_t lo, hi;

	asm volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
	return lo | ((uint64_t)hi << 32);
}

void guest_wrmsr(uint32_t msr, uint64_t val)
{
	asm volatile("wrmsr" : : "c"(msr), "a"((uint32_t)val),
		     "d"((uint32_t)(val >> 32)) : "memory");
}

uint64_t guest_rdtsc(void)
{
	uint32_t lo, hi;

	asm volatile("lfence; rdtsc" : "=a"(lo), "=d"(hi));
	return lo | ((uint64_t)hi << 32);
}

/* x2APIC mode, software-enabled, spurious vector 0xff. */
void guest_x2apic_enable(void)
{
	guest_wrmsr(0x1b, 0xfee00000ULL | (1 << 11) | (1 << 10) | (1 << 8));
	guest_wrmsr(0x80f, 0x1ff);
}
