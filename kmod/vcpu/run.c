// SPDX-License-Identifier: GPL-2.0
/*
 * trapvm run loop: enter the guest through the world switcher, classify
 * why it stopped, handle what the module can, return to userspace for
 * the rest.
 *
 * One iteration:
 *   signal pending?  -> -EINTR
 *   cond_resched()
 *   kernel_fpu_begin(); IRQs off; XRSTOR the guest's FPU state; the
 *   shadow's PKRU
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
#include <trapvm/emulate.h>
#include <trapvm/lapic.h>
#include <linux/trapvm_guest.h>
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

	/* An exit to userspace whose completion the next RUN owes. */
	bool io_pending;		/* IN/INS: data comes back in run */
	bool hypercall_pending;		/* the result comes back in run */
	bool mmio_pending;		/* MMIO load: data comes back in run */
	struct trapvm_emu_result emu;
	u32 emu_abort;			/* internal error hit inside ops */
	/* MMIO inside trapvm_emulate(): allowed, seen, and where. */
	bool mmio_ok;
	bool mmio_seen;
	u64 mmio_gpa;
	u64 shadow_rip;			/* insn the STI/MOV SS shadow covers */
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
	arch->fpu = alloc_pages_exact(arch->fpu_size,
				      GFP_KERNEL_ACCOUNT | __GFP_ZERO);
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

	/* Charged to the VMM's memory cgroup, like guest RAM. */
	arch = kzalloc(sizeof(*arch), GFP_KERNEL_ACCOUNT);
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
	ret = trapvm_vcpu_apic_create(vcpu);
	if (ret)
		goto fail_mmu;
	vcpu->arch = arch;
	return 0;

fail_mmu:
	trapvm_mmu_destroy(vcpu);
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
	trapvm_vcpu_apic_destroy(vcpu);
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

/*
 * Returns false without entering if, with interrupts off, something is
 * found that must be handled first: a kick (IPI) that arrived before the
 * interrupts were disabled has been consumed by the host and would not
 * stop the guest.
 */
static bool vcpu_enter_guest(struct trapvm_vcpu *vcpu)
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
	if (need_resched() || signal_pending(current) ||
	    (!raw_exits && trapvm_vcpu_apic_events_pending(vcpu))) {
		local_irq_enable();
		kernel_fpu_end();
		return false;
	}
	if (pkru)
		host_pkru = rdpkru();
	vcpu_fpu_load(arch);
	/*
	 * The guest runs with the shadow's PKRU (execute-only leaves, see
	 * <trapvm/walk.h>), whatever its XSAVE area says.  Its virtual CPU
	 * has no PKE, but WRPKRU/XRSTOR at CPL3 cannot be made to trap: a
	 * value the guest loads lasts until the next exit and only hurts
	 * the guest (its execute-only pages open to data accesses, or its
	 * own accesses faulting to the module and emulated).
	 */
	if (pkru)
		wrpkru(TRAPVM_SHADOW_PKRU);
	/* In guest mode for remote TLB flushes (shadow/tlb.c). */
	trapvm_mmu_guest_enter(vcpu);
	trapvm_switcher_run(&arch->regs, cr3, &arch->exit);
	trapvm_mmu_guest_exit(vcpu);
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
	return true;
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

/* Canonical with 48 address bits: valid for 4- and 5-level hosts alike. */
static bool vcpu_canonical48(u64 addr)
{
	return (u64)((s64)(addr << 16) >> 16) == addr;
}

/*
 * Can this state be entered at all?  The guest runs as 64-bit code on
 * 4-level shadow tables, so only 64-bit mode with paging is possible
 * (not the reset state, protected or compatibility mode: those would run
 * as 64-bit code and fault forever).  The switcher loads the FS/GS bases
 * into the real MSRs, where a non-canonical value faults in the host;
 * SET_SREGS, SET_MSRS and the emulator refuse one, this makes sure.
 */
static int vcpu_check_state(struct trapvm_vcpu *vcpu)
{
	struct trapvm_cpu *cpu = &vcpu->cpu;
	struct trapvm_run *run = vcpu->run;
	u32 why;

	if (!(cpu->efer & TRAPVM_EFER_LMA) || !(cpu->cr0 & TRAPVM_CR0_PG) ||
	    trapvm_cpu_mode(cpu) != TRAPVM_MODE_64)
		why = TRAPVM_INVALID_STATE_MODE;
	else if (!vcpu_canonical48(cpu->seg[SREG_FS].base) ||
		 !vcpu_canonical48(cpu->seg[SREG_GS].base))
		why = TRAPVM_INVALID_STATE_BASE;
	else
		return 1;
	run->exit_reason = TRAPVM_EXIT_INTERNAL_ERROR;
	run->internal.suberror = TRAPVM_INTERNAL_ERROR_INVALID_STATE;
	run->internal.ndata = 7;
	run->internal.data[0] = why;
	run->internal.data[1] = cpu->cr0;
	run->internal.data[2] = cpu->efer;
	run->internal.data[3] = cpu->seg[SREG_CS].attr;
	run->internal.data[4] = cpu->seg[SREG_FS].base;
	run->internal.data[5] = cpu->seg[SREG_GS].base;
	run->internal.data[6] = cpu->rip;
	return 0;
}

static u32 vcpu_exit_stat(const struct trapvm_sw_exit *e)
{
	if (e->host_event)
		return e->vector == X86_TRAP_NMI ||
		       e->vector == TRAPVM_SW_VEC_ABORT ?
		       TRAPVM_STAT_EXIT_HOST_NMI : TRAPVM_STAT_EXIT_HOST_IRQ;
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

/* ---- the emulator's view of the vCPU (struct trapvm_emu_ops) ---- */

static int vcpu_mem_result(struct trapvm_vcpu *vcpu, int r, u64 gva,
			   unsigned int len, unsigned int access,
			   struct trapvm_fault *f)
{
	struct trapvm_vcpu_arch *arch = vcpu->arch;

	if (r == TRAPVM_MMU_FAULT_INJECT || r == TRAPVM_MMU_FAULT_GP)
		return r;
	/* Whatever happens next, a caller unaware of MMIO sees a failure. */
	f->vector = X86_TRAP_GP;
	f->has_error_code = true;
	f->error_code = 0;
	f->cr2 = 0;
	/*
	 * Device memory: a data access of an instruction being emulated,
	 * within one page (so that the MMU's gpa is where it starts), at
	 * most one per instruction, may become an MMIO exit.  Fetches,
	 * descriptor-table and stack accesses of event delivery, string
	 * instructions (the emulator refuses them) cannot.
	 */
	if (r == TRAPVM_MMU_FAULT_MMIO && arch->mmio_ok && !arch->mmio_seen &&
	    !(access & (TRAPVM_ACC_FETCH | TRAPVM_ACC_IMPLICIT)) &&
	    len <= 8 && (gva & ~PAGE_MASK) + len <= PAGE_SIZE) {
		arch->mmio_seen = true;
		arch->mmio_gpa = trapvm_mmu_mmio_gpa(vcpu->mmu);
		return TRAPVM_ACCESS_MMIO;
	}
	/*
	 * Any other MMIO, or out of memory: stop the VM with an internal
	 * error once the emulator or the delivery returns.
	 */
	arch->emu_abort = r == TRAPVM_MMU_FAULT_MMIO ?
			  TRAPVM_INTERNAL_ERROR_EMULATION :
			  TRAPVM_INTERNAL_ERROR_MEMORY;
	return r;
}

/*
 * The emulator marks user accesses with TRAPVM_ACC_USER; the walker also
 * treats everything at virtual CPL3 as user unless it is IMPLICIT.  A
 * supervisor access while the vCPU is still at CPL3 is the new stack of
 * an event delivered with a CPL change: an implicit supervisor access.
 */
static unsigned int vcpu_emu_access(struct trapvm_vcpu *vcpu,
				    unsigned int access)
{
	if (vcpu->cpu.cpl == 3 && !(access & TRAPVM_ACC_USER))
		access |= TRAPVM_ACC_IMPLICIT;
	return access;
}

static int vcpu_emu_read(void *ctx, u64 gva, void *buf, unsigned int len,
			 unsigned int access, struct trapvm_fault *f)
{
	struct trapvm_vcpu *vcpu = ctx;
	int r;

	access = vcpu_emu_access(vcpu, access);
	if (access & TRAPVM_ACC_FETCH)
		r = trapvm_mmu_fetch(vcpu, gva, buf, len, access, f);
	else
		r = trapvm_mmu_read_gva(vcpu, gva, buf, len, access, f);
	return r ? vcpu_mem_result(vcpu, r, gva, len, access, f) : 0;
}

static int vcpu_emu_write(void *ctx, u64 gva, const void *buf,
			  unsigned int len, unsigned int access,
			  struct trapvm_fault *f)
{
	struct trapvm_vcpu *vcpu = ctx;
	int r;

	access = vcpu_emu_access(vcpu, access);
	r = trapvm_mmu_write_gva(vcpu, gva, buf, len, access, f);
	return r ? vcpu_mem_result(vcpu, r, gva, len, access, f) : 0;
}

static int vcpu_emu_cmpxchg(void *ctx, u64 gva, u64 old, u64 new,
			    unsigned int len, unsigned int access,
			    struct trapvm_fault *f)
{
	struct trapvm_vcpu *vcpu = ctx;
	int r;

	access = vcpu_emu_access(vcpu, access);
	r = trapvm_mmu_cmpxchg_gva(vcpu, gva, old, new, len, access, f);
	if (r == TRAPVM_ACCESS_CHANGED)
		return r;
	return r ? vcpu_mem_result(vcpu, r, gva, len, access, f) : 0;
}

static int vcpu_emu_rdmsr(void *ctx, u32 msr, u64 *val)
{
	struct trapvm_vcpu *vcpu = ctx;

	return trapvm_vcpu_apic_rdmsr(vcpu, msr, val);
}

static int vcpu_emu_wrmsr(void *ctx, u32 msr, u64 val)
{
	struct trapvm_vcpu *vcpu = ctx;

	return trapvm_vcpu_apic_wrmsr(vcpu, msr, val);
}

static void vcpu_emu_cr3_load(void *ctx, u64 cr3, bool noflush)
{
	/* The next trapvm_mmu_root() picks the cached root of the new CR3. */
	trapvm_mmu_load_cr3(ctx);
}

static void vcpu_emu_invlpg(void *ctx, u64 gva)
{
	trapvm_mmu_invlpg(ctx, gva);
}

static void vcpu_emu_paging_changed(void *ctx, u64 old_cr0, u64 old_cr4,
				    u64 old_efer)
{
	trapvm_mmu_reset(ctx);
}

static void vcpu_emu_stat(void *ctx, unsigned int stat)
{
	struct trapvm_vcpu *vcpu = ctx;

	if (stat < TRAPVM_STAT_NR)
		trapvm_vcpu_stat_inc(vcpu, stat);
}

static const struct trapvm_emu_ops vcpu_emu_ops = {
	.read		= vcpu_emu_read,
	.write		= vcpu_emu_write,
	.cmpxchg	= vcpu_emu_cmpxchg,
	.rdmsr		= vcpu_emu_rdmsr,
	.wrmsr		= vcpu_emu_wrmsr,
	.cr3_load	= vcpu_emu_cr3_load,
	.invlpg		= vcpu_emu_invlpg,
	.paging_changed	= vcpu_emu_paging_changed,
	.stat		= vcpu_emu_stat,
};

/* ---- exits the guest caused ---- */

static int vcpu_shutdown(struct trapvm_vcpu *vcpu, u32 reason)
{
	vcpu->run->exit_reason = TRAPVM_EXIT_SHUTDOWN;
	vcpu->run->shutdown.reason = reason;
	return 0;
}

/* An internal error the emu ops hit (vcpu_mem_result()), once. */
static int vcpu_take_abort(struct trapvm_vcpu *vcpu)
{
	u32 why = vcpu->arch->emu_abort;

	vcpu->arch->emu_abort = 0;
	return vcpu_internal_error(vcpu, why);
}

/* What trapvm_deliver_*() / trapvm_emulate*() returned for delivery. */
static int vcpu_delivered(struct trapvm_vcpu *vcpu, int status)
{
	if (vcpu->arch->emu_abort)
		return vcpu_take_abort(vcpu);
	if (status == TRAPVM_EMU_SHUTDOWN || vcpu->cpu.shutdown)
		return vcpu_shutdown(vcpu, TRAPVM_SHUTDOWN_TRIPLE_FAULT);
	return 1;
}

static int vcpu_deliver(struct trapvm_vcpu *vcpu, unsigned int vector,
			bool has_error, u32 error_code, u64 cr2)
{
	int st;

	trace_trapvm_inject(vcpu->id, vector, has_error, error_code, cr2,
			    false);
	if (vector == X86_TRAP_PF)
		vcpu->cpu.cr2 = cr2;
	st = trapvm_deliver_exception(&vcpu->cpu, &vcpu_emu_ops, vcpu, vector,
				      has_error, error_code);
	return vcpu_delivered(vcpu, st);
}

static int vcpu_exit_io(struct trapvm_vcpu *vcpu)
{
	struct trapvm_emu_result *res = &vcpu->arch->emu;
	struct trapvm_run *run = vcpu->run;
	u8 *data = (u8 *)run + TRAPVM_RUN_IO_DATA_OFFSET;
	u32 bytes = res->io.count * res->io.size;

	if (bytes > PAGE_SIZE - TRAPVM_RUN_IO_DATA_OFFSET)
		return vcpu_internal_error(vcpu,
					   TRAPVM_INTERNAL_ERROR_EMULATION);
	run->exit_reason = TRAPVM_EXIT_IO;
	run->io.direction = res->io.in ? TRAPVM_EXIT_IO_IN :
					 TRAPVM_EXIT_IO_OUT;
	run->io.size = res->io.size;
	run->io.port = res->io.port;
	run->io.count = res->io.count;
	run->io.data_offset = TRAPVM_RUN_IO_DATA_OFFSET;
	if (!res->io.in && res->io.data != data)
		memcpy(data, res->io.data, bytes);
	vcpu->arch->io_pending = res->io.in;
	trapvm_vcpu_stat_inc(vcpu, TRAPVM_STAT_EXIT_USER_IO);
	return 0;
}

/*
 * A load or store to device memory: the address is the guest-physical
 * one the shadow MMU found; a store's data goes out, a load's comes back
 * in run->mmio.data with the next RUN (vcpu_complete_user_exit()).
 */
static int vcpu_exit_mmio(struct trapvm_vcpu *vcpu)
{
	struct trapvm_vcpu_arch *arch = vcpu->arch;
	struct trapvm_emu_result *res = &arch->emu;
	struct trapvm_run *run = vcpu->run;

	if (!res->mmio.len || res->mmio.len > sizeof(run->mmio.data))
		return vcpu_internal_error(vcpu,
					   TRAPVM_INTERNAL_ERROR_EMULATION);
	run->exit_reason = TRAPVM_EXIT_MMIO;
	run->mmio.phys_addr = arch->mmio_gpa;
	run->mmio.len = res->mmio.len;
	run->mmio.is_write = res->mmio.is_write;
	memset(run->mmio.data, 0, sizeof(run->mmio.data));
	if (res->mmio.is_write)
		memcpy(run->mmio.data, res->mmio.data, res->mmio.len);
	arch->mmio_pending = !res->mmio.is_write;
	trapvm_vcpu_stat_inc(vcpu, TRAPVM_STAT_EXIT_USER_MMIO);
	return 0;
}

/* A load or store to the vCPU's xAPIC page: the in-kernel APIC's. */
static int vcpu_apic_mmio(struct trapvm_vcpu *vcpu)
{
	struct trapvm_vcpu_arch *arch = vcpu->arch;
	struct trapvm_emu_result *res = &arch->emu;
	u8 data[sizeof(res->mmio.data)] = {};

	if (!res->mmio.len || res->mmio.len > sizeof(data))
		return vcpu_internal_error(vcpu,
					   TRAPVM_INTERNAL_ERROR_EMULATION);
	if (res->mmio.is_write)
		memcpy(data, res->mmio.data, res->mmio.len);
	trapvm_vcpu_apic_mmio(vcpu, arch->mmio_gpa, res->mmio.len,
			      res->mmio.is_write, data);
	if (res->mmio.is_write)
		return 1;
	return vcpu_delivered(vcpu,
			      trapvm_emulate_mmio_complete(&vcpu->cpu, res,
							   data));
}

/* HLT: sleep until an interrupt can wake the vCPU (or a signal). */
static int vcpu_halt(struct trapvm_vcpu *vcpu)
{
	struct trapvm_cpu *cpu = &vcpu->cpu;
	int ret;

	if (!(cpu->rflags & TRAPVM_RFLAGS_IF)) {
		trapvm_vcpu_apic_sync(vcpu);
		if (trapvm_vcpu_apic_nmi_pending(vcpu)) {
			cpu->halted = 0;	/* the NMI wakes it */
			return 1;
		}
		/* Only an NMI could wake it: not waited for (interrupts.rst). */
		cpu->halted = 0;
		return vcpu_shutdown(vcpu, TRAPVM_SHUTDOWN_HLT);
	}
	trapvm_vcpu_stat_inc(vcpu, TRAPVM_STAT_HALTS);
	ret = wait_event_interruptible(vcpu->wq,
				       trapvm_vcpu_apic_has_work(vcpu));
	if (ret)
		return -EINTR;		/* still halted: the next RUN waits */
	cpu->halted = 0;
	return 1;
}

static int vcpu_emulate(struct trapvm_vcpu *vcpu)
{
	struct trapvm_vcpu_arch *arch = vcpu->arch;
	struct trapvm_sw_exit *e = &arch->exit;
	struct trapvm_emu_result *res = &arch->emu;
	u64 rip = vcpu->cpu.rip;
	int st;

	memset(res, 0, sizeof(*res));
	res->io_buf = (u8 *)vcpu->run + TRAPVM_RUN_IO_DATA_OFFSET;
	res->io_buf_size = PAGE_SIZE - TRAPVM_RUN_IO_DATA_OFFSET;
	arch->emu_abort = 0;
	arch->mmio_seen = false;
	arch->mmio_ok = true;
	st = trapvm_emulate(&vcpu->cpu, &vcpu_emu_ops, vcpu, res);
	arch->mmio_ok = false;
	trace_trapvm_emulate(vcpu->id, rip, res->insn_class, res->insn_len,
			     st);
	if (arch->emu_abort)
		return vcpu_take_abort(vcpu);
	if (res->insn_class == TRAPVM_INSN_IRET)
		trapvm_vcpu_apic_iret(vcpu);	/* unblocks NMIs */
	if (st == TRAPVM_EMU_MMIO && arch->mmio_seen &&
	    trapvm_vcpu_apic_mmio_claims(vcpu, arch->mmio_gpa))
		return vcpu_apic_mmio(vcpu);
	if (st == TRAPVM_EMU_MMIO && arch->mmio_seen)
		return vcpu_exit_mmio(vcpu);
	/*
	 * Device memory the emulator touched but did not turn into an MMIO
	 * access (not a plain load or store), or a fault on device memory
	 * it could not emulate at all: no device can complete that, and
	 * the guest's #PF would be wrong.
	 */
	if (st == TRAPVM_EMU_MMIO || arch->mmio_seen ||
	    (st == TRAPVM_EMU_UNHANDLED && e->vector == X86_TRAP_PF &&
	     arch->pf_result == TRAPVM_MMU_FAULT_MMIO))
		return vcpu_internal_error(vcpu,
					   TRAPVM_INTERNAL_ERROR_EMULATION);

	switch (st) {
	case TRAPVM_EMU_CONTINUE:
		if (vcpu->cpu.interrupt_shadow)
			arch->shadow_rip = vcpu->cpu.rip;
		return 1;
	case TRAPVM_EMU_RETRY:
		/* Another vCPU won the race for a locked operand: again. */
		return 1;
	case TRAPVM_EMU_EXCEPTION:
		trace_trapvm_inject(vcpu->id, res->fault.vector,
				    res->fault.has_error_code,
				    res->fault.error_code, res->fault.cr2,
				    false);
		return vcpu_delivered(vcpu, st);
	case TRAPVM_EMU_UNHANDLED:
		/* Not privileged after all: the hardware fault stands. */
		if (e->vector == X86_TRAP_PF &&
		    trapvm_mmu_unemulatable(vcpu, e->cr2))
			return 1;	/* a page table no more: retry */
		if (e->vector == X86_TRAP_PF)
			return vcpu_deliver(vcpu, X86_TRAP_PF, true,
					    arch->pf_inject.error_code,
					    e->cr2);
		return vcpu_deliver(vcpu, e->vector,
				    trapvm_exception_has_error_code(e->vector),
				    e->error_code, 0);
	case TRAPVM_EMU_IO:
		return vcpu_exit_io(vcpu);
	case TRAPVM_EMU_HLT:
		return vcpu_halt(vcpu);
	case TRAPVM_EMU_HYPERCALL:
		/* The ABI version is the module's to tell (guest ABI). */
		if (res->hypercall.nr == TRAPVM_HC_VERSION) {
			vcpu->cpu.gpr[GPR_RAX] = TRAPVM_BOOT_VERSION;
			return 1;
		}
		if (res->hypercall.nr == TRAPVM_HC_MMU_UPDATE) {
			vcpu->cpu.gpr[GPR_RAX] =
				trapvm_mmu_hc_update(vcpu,
						     res->hypercall.args[0],
						     res->hypercall.args[1]);
			return 1;
		}
		vcpu->run->exit_reason = TRAPVM_EXIT_HYPERCALL;
		vcpu->run->hypercall.nr = res->hypercall.nr;
		memcpy(vcpu->run->hypercall.args, res->hypercall.args,
		       sizeof(vcpu->run->hypercall.args));
		vcpu->run->hypercall.ret = 0;
		arch->hypercall_pending = true;
		trapvm_vcpu_stat_inc(vcpu, TRAPVM_STAT_EXIT_USER_HYPERCALL);
		return 0;
	case TRAPVM_EMU_SHUTDOWN:
	default:
		return vcpu_delivered(vcpu, TRAPVM_EMU_SHUTDOWN);
	}
}

/*
 * An exit the guest caused that the world switch and the shadow MMU did
 * not resolve: emulate, deliver into the guest, or ask userspace.
 */
static int vcpu_handle_guest_exit(struct trapvm_vcpu *vcpu)
{
	struct trapvm_vcpu_arch *arch = vcpu->arch;
	struct trapvm_sw_exit *e = &arch->exit;
	struct trapvm_cpu *cpu = &vcpu->cpu;
	int st;

	if (raw_exits)
		return vcpu_exit_to_user_debug(vcpu);

	/*
	 * The STI/MOV SS shadow covers one instruction.  If the guest ran
	 * past it natively, the shadow is over: an interrupt it held is
	 * taken now, before a faulting instruction, which restarts after
	 * the handler's IRET (SDM Vol. 3 6.8.3).
	 */
	if (cpu->interrupt_shadow && cpu->rip != arch->shadow_rip) {
		cpu->interrupt_shadow = 0;
		if (vcpu->apic && (cpu->rflags & TRAPVM_RFLAGS_IF) &&
		    (e->vector == X86_TRAP_GP || e->vector == X86_TRAP_UD)) {
			trapvm_vcpu_apic_sync(vcpu);
			if (trapvm_lapic_pending_irq(&vcpu->apic->lapic) >= 0)
				return 1;
		}
	}

	switch (e->vector) {
	case X86_TRAP_GP:
	case X86_TRAP_UD:
		return vcpu_emulate(vcpu);
	case X86_TRAP_PF:
		switch (arch->pf_result) {
		case TRAPVM_MMU_FAULT_INJECT:
			return vcpu_deliver(vcpu, X86_TRAP_PF, true,
					    arch->pf_inject.error_code,
					    arch->pf_inject.cr2);
		case TRAPVM_MMU_FAULT_GP:
			return vcpu_deliver(vcpu, X86_TRAP_GP, true, 0, 0);
		default:	/* EMULATE, MMIO */
			return vcpu_emulate(vcpu);
		}
	case TRAPVM_SW_VEC_SYSCALL:
		/* Hardware RCX is the next RIP; the emulator wants SYSCALL's. */
		cpu->rip = cpu->gpr[GPR_RCX] - 2;
		st = trapvm_emulate_syscall(cpu, &vcpu_emu_ops, vcpu);
		return vcpu_delivered(vcpu, st);
	default:
		return vcpu_deliver(vcpu, e->vector,
				    trapvm_exception_has_error_code(e->vector),
				    e->error_code, e->cr2);
	}
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
		/* Userspace can cause it (SET_REGS): not for the host log. */
		pr_debug("trapvm: vcpu %u: fault %u at %#llx inside the switcher (guest rip %#llx)\n",
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

/* Complete what the last exit to userspace asked for. */
static int vcpu_complete_user_exit(struct trapvm_vcpu *vcpu)
{
	struct trapvm_vcpu_arch *arch = vcpu->arch;
	int st;

	if (arch->hypercall_pending) {
		arch->hypercall_pending = false;
		vcpu->cpu.gpr[GPR_RAX] = vcpu->run->hypercall.ret;
	}
	if (arch->mmio_pending) {
		arch->mmio_pending = false;
		st = trapvm_emulate_mmio_complete(&vcpu->cpu, &arch->emu,
						  vcpu->run->mmio.data);
		return vcpu_delivered(vcpu, st);
	}
	if (arch->io_pending) {
		arch->io_pending = false;
		st = trapvm_emulate_in_complete(&vcpu->cpu, &vcpu_emu_ops,
						vcpu, &arch->emu,
						(u8 *)vcpu->run +
						TRAPVM_RUN_IO_DATA_OFFSET);
		return vcpu_delivered(vcpu, st);
	}
	return 1;
}

/* Deliver a pending external interrupt if the virtual CPU accepts one. */
static int vcpu_inject_irq(struct trapvm_vcpu *vcpu)
{
	struct trapvm_cpu *cpu = &vcpu->cpu;
	int vector, st;

	if (!vcpu->apic)
		return 1;
	trapvm_vcpu_apic_sync(vcpu);
	if (cpu->interrupt_shadow && cpu->rip != vcpu->arch->shadow_rip)
		cpu->interrupt_shadow = 0;	/* the guest got past it */
	/* An NMI IPI: not masked by IF, blocked until the handler's IRET. */
	if (trapvm_vcpu_apic_nmi_pending(vcpu) && !cpu->interrupt_shadow) {
		trace_trapvm_inject(vcpu->id, TRAPVM_NMI_VECTOR, false, 0, 0,
				    true);
		st = trapvm_deliver_interrupt(cpu, &vcpu_emu_ops, vcpu,
					      TRAPVM_NMI_VECTOR);
		trapvm_vcpu_apic_nmi_ack(vcpu);
		return vcpu_delivered(vcpu, st);
	}
	if (!(cpu->rflags & TRAPVM_RFLAGS_IF) || cpu->interrupt_shadow)
		return 1;
	vector = trapvm_lapic_pending_irq(&vcpu->apic->lapic);
	if (vector < 0)
		return 1;
	trace_trapvm_inject(vcpu->id, vector, false, 0, 0, true);
	st = trapvm_deliver_interrupt(cpu, &vcpu_emu_ops, vcpu, vector);
	trapvm_lapic_ack_irq(&vcpu->apic->lapic, vector);
	return vcpu_delivered(vcpu, st);
}

/*
 * Could an external interrupt be delivered now: virtual IF set, no
 * STI/MOV SS shadow still ahead of the guest, and none pending in the
 * virtual APIC (that one would be delivered first).
 */
static bool vcpu_irq_window_open(struct trapvm_vcpu *vcpu)
{
	struct trapvm_cpu *cpu = &vcpu->cpu;

	if (!(cpu->rflags & TRAPVM_RFLAGS_IF))
		return false;
	if (cpu->interrupt_shadow && cpu->rip == vcpu->arch->shadow_rip)
		return false;
	if (!vcpu->apic)
		return true;
	trapvm_vcpu_apic_sync(vcpu);
	return trapvm_lapic_pending_irq(&vcpu->apic->lapic) < 0;
}

static void vcpu_fill_run(struct trapvm_vcpu *vcpu)
{
	struct trapvm_cpu *cpu = &vcpu->cpu;
	struct trapvm_run *run = vcpu->run;

	run->if_flag = !!(cpu->rflags & TRAPVM_RFLAGS_IF);
	run->ready_for_interrupt_injection = vcpu_irq_window_open(vcpu);
	run->cr8 = cpu->cr8;
	run->apic_base = cpu->apic_base;
}

static int vcpu_run_loop(struct trapvm_vcpu *vcpu)
{
	int ret;

	if (vcpu->cpu.shutdown)
		return vcpu_shutdown(vcpu, TRAPVM_SHUTDOWN_TRIPLE_FAULT);
	ret = vcpu_complete_user_exit(vcpu);
	if (ret <= 0)
		return ret;

	for (;;) {
		if (signal_pending(current)) {
			vcpu->run->exit_reason = TRAPVM_EXIT_INTR;
			return -EINTR;
		}
		cond_resched();

		ret = vcpu_check_state(vcpu);
		if (ret <= 0)
			return ret;
		/*
		 * Checked between any two exits of the guest: a window that
		 * STI opens is seen at the guest's next exit (at the latest
		 * the host's next timer tick).
		 */
		if (READ_ONCE(vcpu->run->request_interrupt_window) &&
		    !raw_exits && vcpu_irq_window_open(vcpu)) {
			vcpu->run->exit_reason = TRAPVM_EXIT_IRQ_WINDOW_OPEN;
			return 0;
		}
		if (vcpu->cpu.halted && !raw_exits) {
			ret = vcpu_halt(vcpu);
			if (ret <= 0)
				return ret;
		}
		if (!raw_exits) {
			ret = vcpu_inject_irq(vcpu);
			if (ret <= 0)
				return ret;
		}

		if (!vcpu_enter_guest(vcpu))
			continue;
		ret = vcpu_handle_exit(vcpu);
		if (ret <= 0)
			return ret;
	}
}

int trapvm_vcpu_run(struct trapvm_vcpu *vcpu)
{
	int ret;

	ret = vcpu_run_loop(vcpu);

	vcpu_fill_run(vcpu);
	return ret;
}
