// SPDX-License-Identifier: GPL-2.0
/*
 * trapvm run loop: enter the guest through the world switcher, classify
 * why it stopped, handle what the module can, return to userspace for
 * the rest.
 *
 * One iteration:
 *   signal pending?  -> -EINTR
 *   cond_resched()
 *   kernel_fpu_begin(); IRQs off; XRSTOR the guest's FPU state
 *   trapvm_switcher_run() (host IRQs/NMIs that stopped the guest are
 *   handed to the host's handlers inside, with IRQs still off)
 *   XSAVE the guest's FPU state; host PKRU back; IRQs on; kernel_fpu_end()
 *   classify the exit (may sleep: shadow faults allocate)
 *
 * The guest's FPU/SSE/AVX registers are its own: kernel_fpu_begin() saved
 * the vmctl thread's user state (restored on its return to user mode) and
 * the guest area is loaded over every enabled component, so neither side
 * sees the other's values.
 */
#include <linux/module.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/mm.h>
#include <asm/fpu/api.h>
#include <asm/fpu/xcr.h>
#include <asm/fpu/types.h>
#include <asm/trapnr.h>
#include <asm/special_insns.h>
#include <asm/cpufeature.h>
#include <trapvm/cpu.h>
#include "../trapvm.h"
#include "../trace.h"
#include "switcher.h"
#include "../shadow/mmu.h"

static bool raw_exits;
module_param(raw_exits, bool, 0644);
MODULE_PARM_DESC(raw_exits,
		 "Report every guest-caused exit to userspace as TRAPVM_EXIT_DEBUG (testing)");

/* XSAVE components the guest may use (no AMX: XFD would fault on it). */
#define TRAPVM_FPU_XFEATURES	(XFEATURE_MASK_FP | XFEATURE_MASK_SSE | \
				 XFEATURE_MASK_YMM | XFEATURE_MASK_OPMASK | \
				 XFEATURE_MASK_ZMM_Hi256 | \
				 XFEATURE_MASK_Hi16_ZMM | XFEATURE_MASK_PKRU)

#define RFLAGS_HW_OWNED	(X86_EFLAGS_CF | X86_EFLAGS_PF | X86_EFLAGS_AF | \
			 X86_EFLAGS_ZF | X86_EFLAGS_SF | X86_EFLAGS_TF | \
			 X86_EFLAGS_DF | X86_EFLAGS_OF | X86_EFLAGS_AC | \
			 X86_EFLAGS_ID)

struct trapvm_vcpu_arch {
	struct trapvm_sw_regs regs;
	struct trapvm_sw_exit exit;
	void *fpu;			/* XSAVE (or FXSAVE) area, page aligned */
	size_t fpu_size;
	u64 xfeatures;			/* RFBM for XSAVE/XRSTOR */
	u64 last_exit_tsc;
	/* The shadow MMU's verdict on the last #PF exit it did not fix. */
	enum trapvm_mmu_fault_result pf_result;
	struct trapvm_fault pf_inject;
};

/* ---- guest FPU state ---- */

static int vcpu_fpu_init(struct trapvm_vcpu_arch *arch)
{
	unsigned int eax, ebx, ecx, edx;
	struct fxregs_state *fx;

	if (boot_cpu_has(X86_FEATURE_XSAVE)) {
		arch->xfeatures = xgetbv(XCR_XFEATURE_ENABLED_MASK) &
				  TRAPVM_FPU_XFEATURES;
		cpuid_count(0xd, 0, &eax, &ebx, &ecx, &edx);
		arch->fpu_size = max_t(size_t, ebx, 576);
	} else {
		arch->fpu_size = sizeof(struct fxregs_state);
	}
	arch->fpu = alloc_pages_exact(arch->fpu_size, GFP_KERNEL | __GFP_ZERO);
	if (!arch->fpu)
		return -ENOMEM;
	/*
	 * Architectural init state: XSTATE_BV = 0 makes XRSTOR initialise
	 * every component, except that MXCSR is still read from memory.
	 */
	fx = arch->fpu;
	fx->cwd = 0x37f;
	fx->mxcsr = MXCSR_DEFAULT;
	return 0;
}

static void vcpu_fpu_load(struct trapvm_vcpu_arch *arch)
{
	u32 lo = arch->xfeatures, hi = arch->xfeatures >> 32;

	if (boot_cpu_has(X86_FEATURE_XSAVE))
		asm volatile("xrstor64 %0" : : "m" (*(u8 *)arch->fpu),
			     "a" (lo), "d" (hi) : "memory");
	else
		asm volatile("fxrstor64 %0" : : "m" (*(u8 *)arch->fpu)
			     : "memory");
}

static void vcpu_fpu_save(struct trapvm_vcpu_arch *arch)
{
	u32 lo = arch->xfeatures, hi = arch->xfeatures >> 32;

	if (boot_cpu_has(X86_FEATURE_XSAVE))
		asm volatile("xsave64 %0" : "+m" (*(u8 *)arch->fpu)
			     : "a" (lo), "d" (hi) : "memory");
	else
		asm volatile("fxsave64 %0" : "+m" (*(u8 *)arch->fpu)
			     : : "memory");
}

/* ---- vCPU life cycle (called by vcpu.c) ---- */

int trapvm_vcpu_arch_create(struct trapvm_vcpu *vcpu)
{
	struct trapvm_vcpu_arch *arch;
	int ret;

	arch = kzalloc(sizeof(*arch), GFP_KERNEL);
	if (!arch)
		return -ENOMEM;
	ret = vcpu_fpu_init(arch);
	if (ret)
		goto fail_free;
	ret = trapvm_switcher_get();
	if (ret)
		goto fail_fpu;
	ret = trapvm_mmu_init(vcpu);
	if (ret)
		goto fail_switcher;
	vcpu->arch = arch;
	return 0;

fail_switcher:
	trapvm_switcher_put();
fail_fpu:
	free_pages_exact(arch->fpu, arch->fpu_size);
fail_free:
	kfree(arch);
	return ret;
}

void trapvm_vcpu_arch_destroy(struct trapvm_vcpu *vcpu)
{
	struct trapvm_vcpu_arch *arch = vcpu->arch;

	if (!arch)
		return;
	trapvm_mmu_destroy(vcpu);
	trapvm_switcher_put();
	free_pages_exact(arch->fpu, arch->fpu_size);
	kfree(arch);
	vcpu->arch = NULL;
}

/* ---- one round trip ---- */

static void vcpu_load_regs(struct trapvm_vcpu *vcpu)
{
	struct trapvm_sw_regs *r = &vcpu->arch->regs;
	struct trapvm_cpu *cpu = &vcpu->cpu;

	memcpy(r->gpr, cpu->gpr, sizeof(r->gpr));
	r->rip = cpu->rip;
	r->rflags = cpu->rflags;
	r->fs_base = cpu->seg[SREG_FS].base;
	r->gs_base = cpu->seg[SREG_GS].base;
}

static void vcpu_store_regs(struct trapvm_vcpu *vcpu)
{
	struct trapvm_sw_regs *r = &vcpu->arch->regs;
	struct trapvm_cpu *cpu = &vcpu->cpu;

	memcpy(cpu->gpr, r->gpr, sizeof(r->gpr));
	cpu->rip = r->rip;
	/* Arithmetic flags, TF, DF, AC, ID are the hardware's; IF/IOPL not. */
	cpu->rflags = (cpu->rflags & ~RFLAGS_HW_OWNED) |
		      (r->rflags & RFLAGS_HW_OWNED);
	cpu->seg[SREG_FS].base = r->fs_base;
	cpu->seg[SREG_GS].base = r->gs_base;
}

static void vcpu_enter_guest(struct trapvm_vcpu *vcpu)
{
	struct trapvm_vcpu_arch *arch = vcpu->arch;
	bool pkru = boot_cpu_has(X86_FEATURE_OSPKE);
	u32 host_pkru = 0;
	u64 cr3;

	/* The shadow root of the current virtual mode, with the hole. */
	cr3 = trapvm_mmu_root(vcpu);
	*trapvm_mmu_hole_slot(vcpu) = trapvm_switcher_hole_pml4e();
	vcpu_load_regs(vcpu);
	kernel_fpu_begin();
	local_irq_disable();
	if (pkru)
		host_pkru = rdpkru();
	vcpu_fpu_load(arch);
	trapvm_switcher_run(&arch->regs, cr3, &arch->exit);
	vcpu_fpu_save(arch);
	/* Kernel accesses to user memory obey PKRU: give back the host's. */
	if (pkru)
		wrpkru(host_pkru);
	local_irq_enable();
	kernel_fpu_end();
	vcpu_store_regs(vcpu);

	trapvm_vcpu_stat_inc(vcpu, TRAPVM_STAT_ENTRIES);
	trace_trapvm_world_switch(vcpu->id, vcpu->cpu.rip, arch->exit.vector,
				  arch->exit.error_code,
				  arch->exit.tsc_exit - arch->exit.tsc_guest,
				  arch->last_exit_tsc ?
				  arch->exit.tsc_guest - arch->last_exit_tsc :
				  0);
	arch->last_exit_tsc = arch->exit.tsc_exit;
}

/* ---- exit classification ---- */

static int vcpu_exit_to_user_debug(struct trapvm_vcpu *vcpu)
{
	struct trapvm_sw_exit *e = &vcpu->arch->exit;
	struct trapvm_run *run = vcpu->run;

	run->exit_reason = TRAPVM_EXIT_DEBUG;
	run->debug.vector = e->vector;
	run->debug.error_code = e->error_code;
	run->debug.cr2 = e->cr2;
	run->debug.rip = vcpu->cpu.rip;
	return 0;
}

static int vcpu_internal_error(struct trapvm_vcpu *vcpu, u32 suberror)
{
	struct trapvm_sw_exit *e = &vcpu->arch->exit;
	struct trapvm_run *run = vcpu->run;

	run->exit_reason = TRAPVM_EXIT_INTERNAL_ERROR;
	run->internal.suberror = suberror;
	run->internal.ndata = 5;
	run->internal.data[0] = e->vector;
	run->internal.data[1] = e->error_code;
	run->internal.data[2] = vcpu->cpu.rip;
	run->internal.data[3] = e->fault_vector;
	run->internal.data[4] = e->fault_rip;
	return 0;
}

static u32 vcpu_exit_stat(const struct trapvm_sw_exit *e)
{
	if (e->host_event)
		return e->vector == X86_TRAP_NMI ? TRAPVM_STAT_EXIT_HOST_NMI :
						   TRAPVM_STAT_EXIT_HOST_IRQ;
	switch (e->vector) {
	case X86_TRAP_PF:
		return TRAPVM_STAT_EXIT_PF;
	case X86_TRAP_GP:
		return TRAPVM_STAT_EXIT_GP;
	case X86_TRAP_UD:
		return TRAPVM_STAT_EXIT_UD;
	case TRAPVM_SW_VEC_SYSCALL:
		return TRAPVM_STAT_EXIT_SYSCALL;
	default:
		return TRAPVM_STAT_EXIT_EXCEPTION;
	}
}

/*
 * An exit the guest caused that the world switch cannot resolve itself
 * (#GP/#UD for the emulator, SYSCALL, other exceptions to deliver into
 * the guest).  The emulator and exception delivery are wired in here.
 */
static int vcpu_handle_guest_exit(struct trapvm_vcpu *vcpu)
{
	if (raw_exits)
		return vcpu_exit_to_user_debug(vcpu);
	return vcpu_internal_error(vcpu, TRAPVM_INTERNAL_ERROR_EMULATION);
}

/* > 0: re-enter the guest; 0: exit to userspace; < 0: error. */
static int vcpu_handle_exit(struct trapvm_vcpu *vcpu)
{
	struct trapvm_vcpu_arch *arch = vcpu->arch;
	struct trapvm_sw_exit *e = &arch->exit;
	u32 stat = vcpu_exit_stat(e);

	trapvm_vcpu_stat_inc(vcpu, stat);
	trace_trapvm_exit(vcpu->id, stat, vcpu->cpu.rip, e->vector,
			  e->error_code, e->cr2);

	if (e->host_event)
		return 1;
	if (e->vector == TRAPVM_SW_VEC_FAULT) {
		pr_warn_ratelimited("trapvm: vcpu %u: fault %u at %#llx inside the switcher (guest rip %#llx)\n",
				    vcpu->id, e->fault_vector, e->fault_rip,
				    vcpu->cpu.rip);
		return vcpu_internal_error(vcpu,
					   TRAPVM_INTERNAL_ERROR_SWITCHER);
	}
	if (e->vector == X86_TRAP_PF) {
		/*
		 * Hidden faults are fixed (and counted) by the shadow MMU;
		 * anything else is the guest's business (INJECT, GP), the
		 * device model's (MMIO) or the emulator's (EMULATE: e.g. a
		 * supervisor-mode access the hardware made at CPL3).
		 */
		arch->pf_result = trapvm_mmu_page_fault(vcpu, e->cr2,
							e->error_code,
							&arch->pf_inject);
		if (arch->pf_result == TRAPVM_MMU_FAULT_RESUME)
			return 1;
		if (arch->pf_result == TRAPVM_MMU_FAULT_KILL)
			return vcpu_internal_error(vcpu,
						  TRAPVM_INTERNAL_ERROR_MEMORY);
	}
	return vcpu_handle_guest_exit(vcpu);
}

int trapvm_vcpu_run(struct trapvm_vcpu *vcpu)
{
	int ret;

	for (;;) {
		if (signal_pending(current)) {
			vcpu->run->exit_reason = TRAPVM_EXIT_INTR;
			return -EINTR;
		}
		cond_resched();

		vcpu_enter_guest(vcpu);
		ret = vcpu_handle_exit(vcpu);
		if (ret <= 0)
			return ret;
	}
}
