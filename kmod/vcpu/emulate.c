// SPDX-License-Identifier: GPL-2.0
/*
 * Trap-and-emulate of the privileged x86-64 instructions a deprivileged
 * guest kernel executes, against the virtual CPU (struct trapvm_cpu).
 *
 * The guest runs at hardware CPL3, so its privileged instructions fault
 * (#GP, or #UD for some) and come here.  Each instruction is emulated
 * with the architecture's semantics as the Intel SDM describes them,
 * including its faults: privilege checks against the VIRTUAL CPL,
 * reserved bits, canonical addresses, and #PF on memory operands (the
 * ops callbacks translate guest-virtual addresses and report faults).
 *
 * Segmentation and far transfers are in emulate_seg.c, exception and
 * interrupt delivery in exception.c.
 */
#include "emul_internal.h"

#define PAGE_SZ		4096ULL

unsigned int emu_stack_size(const struct trapvm_cpu *cpu)
{
	if (trapvm_cpu_mode(cpu) == TRAPVM_MODE_64)
		return 8;
	return (cpu->seg[SREG_SS].attr & SEG_DB) ? 4 : 2;
}

static unsigned int access_flags(const struct emu *e)
{
	return e->cpu->cpl == 3 ? TRAPVM_ACC_USER : 0;
}

/* Segment base + offset; in 64-bit mode only FS and GS have a base. */
static int emu_linear(struct emu *e, unsigned int seg, u64 off,
		      unsigned int len, u64 *la)
{
	struct trapvm_cpu *cpu = e->cpu;

	if (seg >= SREG_NR)
		seg = SREG_DS;
	if (e->insn.mode == TRAPVM_MODE_64) {
		u64 base = (seg == SREG_FS || seg == SREG_GS) ?
			   cpu->seg[seg].base : 0;

		*la = base + off;
		if (!trapvm_is_canonical(cpu, *la) ||
		    !trapvm_is_canonical(cpu, *la + len - 1)) {
			if (seg == SREG_SS)
				return emu_raise(e, TRAPVM_SS_VECTOR, true, 0);
			return emu_gp(e, 0);
		}
		return 0;
	}
	/* 16/32-bit code: no limit checks (flat segments assumed) */
	*la = (cpu->seg[seg].base + off) & 0xffffffffULL;
	return 0;
}

static void preset_fault(struct emu *e)
{
	/* in case a callback fails without saying why */
	e->fault.vector = TRAPVM_GP_VECTOR;
	e->fault.has_error_code = true;
	e->fault.error_code = 0;
	e->fault.cr2 = 0;
}

/* An ops access failed: a fault to raise, or device memory. */
static int access_failed(struct emu *e, int r, u64 la)
{
	if (r == TRAPVM_ACCESS_MMIO) {
		e->res->mmio.gva = la;
		return R_MMIO;
	}
	return R_FAULT;
}

int emu_read(struct emu *e, unsigned int seg, u64 off, void *buf,
	     unsigned int len)
{
	u64 la;
	int r = emu_linear(e, seg, off, len, &la);

	if (r)
		return r;
	preset_fault(e);
	r = e->ops->read(e->ctx, la, buf, len, access_flags(e), &e->fault);
	return r ? access_failed(e, r, la) : 0;
}

int emu_write(struct emu *e, unsigned int seg, u64 off, const void *buf,
	      unsigned int len)
{
	u64 la;
	int r = emu_linear(e, seg, off, len, &la);

	if (r)
		return r;
	preset_fault(e);
	r = e->ops->write(e->ctx, la, buf, len,
			  access_flags(e) | TRAPVM_ACC_WRITE, &e->fault);
	return r ? access_failed(e, r, la) : 0;
}

/*
 * The write-back of a locked read-modify-write: @new replaces the @len
 * bytes at seg:off only if they still hold @old (the value the result was
 * computed from); R_RETRY if not.  Without an ops->cmpxchg it is a plain
 * write.
 */
int emu_cmpxchg(struct emu *e, unsigned int seg, u64 off, u64 old, u64 new,
		unsigned int len)
{
	u8 b[8];
	unsigned int i;
	u64 la;
	int r;

	if (!e->ops->cmpxchg) {
		for (i = 0; i < len; i++)
			b[i] = new >> (8 * i);
		return emu_write(e, seg, off, b, len);
	}
	r = emu_linear(e, seg, off, len, &la);
	if (r)
		return r;
	if (len < 8) {
		old &= (1ULL << (8 * len)) - 1;
		new &= (1ULL << (8 * len)) - 1;
	}
	preset_fault(e);
	r = e->ops->cmpxchg(e->ctx, la, old, new, len,
			    access_flags(e) | TRAPVM_ACC_WRITE, &e->fault);
	if (r == TRAPVM_ACCESS_CHANGED)
		return R_RETRY;
	return r ? access_failed(e, r, la) : 0;
}

u64 emu_reg_read(const struct emu *e, unsigned int reg, unsigned int size)
{
	const struct trapvm_cpu *cpu = e->cpu;

	reg &= 15;
	switch (size) {
	case 1:
		if (!e->insn.rex && reg >= 4 && reg < 8)
			return (cpu->gpr[reg - 4] >> 8) & 0xff;
		return cpu->gpr[reg] & 0xff;
	case 2:
		return cpu->gpr[reg] & 0xffff;
	case 4:
		return cpu->gpr[reg] & 0xffffffffULL;
	default:
		return cpu->gpr[reg];
	}
}

void emu_reg_write(struct emu *e, unsigned int reg, unsigned int size, u64 v)
{
	u64 *r;

	reg &= 15;
	r = &e->cpu->gpr[reg];
	switch (size) {
	case 1:
		if (!e->insn.rex && reg >= 4 && reg < 8) {
			r = &e->cpu->gpr[reg - 4];
			*r = (*r & ~0xff00ULL) | ((v & 0xff) << 8);
		} else {
			*r = (*r & ~0xffULL) | (v & 0xff);
		}
		break;
	case 2:
		*r = (*r & ~0xffffULL) | (v & 0xffff);
		break;
	case 4:
		*r = v & 0xffffffffULL;	/* 32-bit writes zero-extend */
		break;
	default:
		*r = v;
		break;
	}
}

static u64 mem_ea(const struct emu *e)
{
	return trapvm_insn_ea(e->cpu, &e->insn, e->cpu->rip);
}

int emu_read_rm16(struct emu *e, u16 *out)
{
	u8 b[2];
	int r;

	if (e->insn.mod == 3) {
		*out = emu_reg_read(e, e->insn.rm, 2);
		return 0;
	}
	r = emu_read(e, trapvm_insn_seg(&e->insn), mem_ea(e), b, 2);
	if (r)
		return r;
	*out = b[0] | (b[1] << 8);
	return 0;
}

static void put_le(u8 *p, unsigned int n, u64 v)
{
	unsigned int i;

	for (i = 0; i < n; i++)
		p[i] = v >> (8 * i);
}

static u64 get_le(const u8 *p, unsigned int n)
{
	u64 v = 0;
	unsigned int i;

	for (i = 0; i < n; i++)
		v |= (u64)p[i] << (8 * i);
	return v;
}

static unsigned int iopl(const struct trapvm_cpu *cpu)
{
	return (cpu->rflags & TRAPVM_RFLAGS_IOPL) >> 12;
}

static bool umip_blocks(const struct emu *e)
{
	return (e->cpu->cr4 & TRAPVM_CR4_UMIP) && e->cpu->cpl > 0;
}

static void notify_paging(struct emu *e, u64 cr0, u64 cr4, u64 efer)
{
	if (e->ops->paging_changed)
		e->ops->paging_changed(e->ctx, cr0, cr4, efer);
}

/* --- CLI/STI -------------------------------------------------------- */

static int emu_cli_sti(struct emu *e, bool sti)
{
	struct trapvm_cpu *cpu = e->cpu;

	emu_stat(e, TRAPVM_STAT_EMUL_CLI_STI);
	if (cpu->cpl <= iopl(cpu)) {
		if (sti && !(cpu->rflags & TRAPVM_RFLAGS_IF))
			cpu->interrupt_shadow = 1;
		if (sti)
			cpu->rflags |= TRAPVM_RFLAGS_IF;
		else
			cpu->rflags &= ~TRAPVM_RFLAGS_IF;
		return R_NEXT;
	}
	/* protected-mode virtual interrupts (CR4.PVI), SDM CLI/STI */
	if (cpu->cpl == 3 && (cpu->cr4 & TRAPVM_CR4_PVI) &&
	    e->insn.mode != TRAPVM_MODE_64) {
		if (!sti) {
			cpu->rflags &= ~TRAPVM_RFLAGS_VIF;
			return R_NEXT;
		}
		if (!(cpu->rflags & TRAPVM_RFLAGS_VIP)) {
			cpu->rflags |= TRAPVM_RFLAGS_VIF;
			return R_NEXT;
		}
	}
	return emu_gp(e, 0);
}

/* --- control and debug registers ---------------------------------- */

#define CR0_DEFINED	(TRAPVM_CR0_PE | TRAPVM_CR0_MP | TRAPVM_CR0_EM | \
			 TRAPVM_CR0_TS | TRAPVM_CR0_ET | TRAPVM_CR0_NE | \
			 TRAPVM_CR0_WP | TRAPVM_CR0_AM | TRAPVM_CR0_NW | \
			 TRAPVM_CR0_CD | TRAPVM_CR0_PG)

static int set_cr0(struct emu *e, u64 val)
{
	struct trapvm_cpu *cpu = e->cpu;
	u64 old = cpu->cr0, old_efer = cpu->efer;

	if (val >> 32)
		return emu_gp(e, 0);
	/* writes to the other bits of CR0[31:0] are ignored; ET is 1 */
	val = (val & CR0_DEFINED) | TRAPVM_CR0_ET;
	if ((val & TRAPVM_CR0_PG) && !(val & TRAPVM_CR0_PE))
		return emu_gp(e, 0);
	if ((val & TRAPVM_CR0_NW) && !(val & TRAPVM_CR0_CD))
		return emu_gp(e, 0);
	if (!(old & TRAPVM_CR0_PG) && (val & TRAPVM_CR0_PG) &&
	    (cpu->efer & TRAPVM_EFER_LME)) {
		if (!(cpu->cr4 & TRAPVM_CR4_PAE))
			return emu_gp(e, 0);
		cpu->efer |= TRAPVM_EFER_LMA;
	}
	if ((old & TRAPVM_CR0_PG) && !(val & TRAPVM_CR0_PG)) {
		if (e->insn.mode == TRAPVM_MODE_64 ||
		    (cpu->cr4 & TRAPVM_CR4_PCIDE)) {
			cpu->efer = old_efer;
			return emu_gp(e, 0);
		}
		cpu->efer &= ~TRAPVM_EFER_LMA;
	}
	cpu->cr0 = val;
	if (((old ^ val) & (TRAPVM_CR0_PG | TRAPVM_CR0_WP | TRAPVM_CR0_PE)) ||
	    old_efer != cpu->efer)
		notify_paging(e, old, cpu->cr4, old_efer);
	return R_NEXT;
}

static int set_cr3(struct emu *e, u64 val)
{
	struct trapvm_cpu *cpu = e->cpu;
	unsigned int phys = cpu->maxphyaddr ? cpu->maxphyaddr : 52;
	bool noflush = false;

	if (is_long_mode(cpu)) {
		if ((cpu->cr4 & TRAPVM_CR4_PCIDE) && (val & BIT_ULL(63))) {
			noflush = true;
			val &= ~BIT_ULL(63);
		}
		if (phys < 64 && (val >> phys))
			return emu_gp(e, 0);
	} else {
		val &= 0xffffffffULL;
	}
	cpu->cr3 = val;
	if (e->ops->cr3_load)
		e->ops->cr3_load(e->ctx, val, noflush);
	return R_NEXT;
}

static int set_cr4(struct emu *e, u64 val)
{
	struct trapvm_cpu *cpu = e->cpu;
	u64 old = cpu->cr4;
	bool lma = is_long_mode(cpu);
	u64 supp = TRAPVM_CR4_SUPPORTED;

	if (cpu->cr4_supported)
		supp &= cpu->cr4_supported;
	if (val & ~supp)
		return emu_gp(e, 0);
	if (lma && !(val & TRAPVM_CR4_PAE))
		return emu_gp(e, 0);
	if (lma && ((val ^ old) & TRAPVM_CR4_LA57))
		return emu_gp(e, 0);
	if ((val & TRAPVM_CR4_PCIDE) && !(old & TRAPVM_CR4_PCIDE) &&
	    (!lma || (cpu->cr3 & 0xfff)))
		return emu_gp(e, 0);
	cpu->cr4 = val;
	if ((old ^ val) & (TRAPVM_CR4_PSE | TRAPVM_CR4_PAE | TRAPVM_CR4_PGE |
			   TRAPVM_CR4_PCIDE | TRAPVM_CR4_SMEP |
			   TRAPVM_CR4_SMAP | TRAPVM_CR4_PKE | TRAPVM_CR4_LA57))
		notify_paging(e, cpu->cr0, old, cpu->efer);
	return R_NEXT;
}

/* CR8 reads the APIC's TPR[7:4] when the APIC model answers. */
static u64 get_cr8(struct emu *e)
{
	u64 tpr;

	if (e->ops->rdmsr &&
	    e->ops->rdmsr(e->ctx, TRAPVM_MSR_X2APIC_TPR, &tpr) ==
	    TRAPVM_MSR_OK)
		e->cpu->cr8 = (tpr >> 4) & 0xf;
	return e->cpu->cr8;
}

static int emu_mov_cr(struct emu *e, bool to_cr)
{
	struct trapvm_cpu *cpu = e->cpu;
	unsigned int size = e->insn.mode == TRAPVM_MODE_64 ? 8 : 4;
	unsigned int cr = e->insn.reg;
	u64 val;

	emu_stat(e, TRAPVM_STAT_EMUL_MOV_CR);
	if (e->insn.prefixes & TRAPVM_PFX_LOCK)
		return emu_ud(e);
	if (cr != 0 && cr != 2 && cr != 3 && cr != 4 && cr != 8)
		return emu_ud(e);
	if (cpu->cpl != 0)
		return emu_gp(e, 0);
	if (!to_cr) {
		switch (cr) {
		case 0:
			val = cpu->cr0;
			break;
		case 2:
			val = cpu->cr2;
			break;
		case 3:
			val = cpu->cr3;
			break;
		case 4:
			val = cpu->cr4;
			break;
		default:
			val = get_cr8(e);
			break;
		}
		emu_reg_write(e, e->insn.rm, size, val);
		return R_NEXT;
	}
	val = emu_reg_read(e, e->insn.rm, size);
	switch (cr) {
	case 0:
		return set_cr0(e, val);
	case 2:
		cpu->cr2 = val;
		return R_NEXT;
	case 3:
		return set_cr3(e, val);
	case 4:
		return set_cr4(e, val);
	default:
		if (val >> 4)
			return emu_gp(e, 0);
		cpu->cr8 = val;
		/* CR8 is TPR[7:4] (SDM 10.8.6.1): keep the APIC in step */
		if (e->ops->wrmsr)
			e->ops->wrmsr(e->ctx, TRAPVM_MSR_X2APIC_TPR, val << 4);
		return R_NEXT;
	}
}

static int emu_mov_dr(struct emu *e, bool to_dr)
{
	struct trapvm_cpu *cpu = e->cpu;
	unsigned int size = e->insn.mode == TRAPVM_MODE_64 ? 8 : 4;
	unsigned int dr = e->insn.reg;
	u64 val;

	emu_stat(e, TRAPVM_STAT_EMUL_OTHER);
	if ((e->insn.prefixes & TRAPVM_PFX_LOCK) || dr > 7)
		return emu_ud(e);
	if ((dr == 4 || dr == 5) && (cpu->cr4 & TRAPVM_CR4_DE))
		return emu_ud(e);
	if (cpu->cpl != 0)
		return emu_gp(e, 0);
	if (dr == 4 || dr == 5)
		dr += 2;	/* aliases of DR6/DR7 without CR4.DE */
	if (!to_dr) {
		emu_reg_write(e, e->insn.rm, size, cpu->dr[dr]);
		return R_NEXT;
	}
	val = emu_reg_read(e, e->insn.rm, size);
	if (dr == 6 || dr == 7) {
		if (val >> 32)
			return emu_gp(e, 0);
		if (dr == 6)
			val = (val & 0x1e00fULL) | 0xfffe0ff0ULL;
		else
			val = (val & ~0xd800ULL) | 0x400ULL;
	}
	cpu->dr[dr] = val;
	return R_NEXT;
}

/* --- descriptor-table registers, MSW ------------------------------- */

static int emu_group7_mem(struct emu *e)
{
	struct trapvm_cpu *cpu = e->cpu;
	struct trapvm_insn *insn = &e->insn;
	unsigned int seg = trapvm_insn_seg(insn);
	unsigned int blen = insn->mode == TRAPVM_MODE_64 ? 8 : 4;
	struct trapvm_dt *dt;
	u64 ea = mem_ea(e);
	u8 buf[10];
	int r;

	switch (insn->reg & 7) {
	case 0:		/* SGDT */
	case 1:		/* SIDT */
		e->res->insn_class = (insn->reg & 7) ? TRAPVM_INSN_SIDT :
						       TRAPVM_INSN_SGDT;
		emu_stat(e, TRAPVM_STAT_EMUL_DTABLE);
		if (umip_blocks(e))
			return emu_gp(e, 0);
		dt = (insn->reg & 7) ? &cpu->idtr : &cpu->gdtr;
		put_le(buf, 2, dt->limit);
		put_le(buf + 2, blen, dt->base);
		r = emu_write(e, seg, ea, buf, 2 + blen);
		return r ? r : R_NEXT;
	case 2:		/* LGDT */
	case 3:		/* LIDT */
		e->res->insn_class = (insn->reg & 7) == 3 ? TRAPVM_INSN_LIDT :
							    TRAPVM_INSN_LGDT;
		emu_stat(e, TRAPVM_STAT_EMUL_DTABLE);
		if (cpu->cpl != 0)
			return emu_gp(e, 0);
		r = emu_read(e, seg, ea, buf, 2 + blen);
		if (r)
			return r;
		/*
		 * A non-canonical base in 64-bit mode is #GP(0).  SET_SREGS
		 * refuses one (as VM entry does on VT-x), so taking it here
		 * would leave a state userspace cannot save and restore.
		 */
		if (insn->mode == TRAPVM_MODE_64 &&
		    !trapvm_is_canonical(cpu, get_le(buf + 2, 8)))
			return emu_gp(e, 0);
		dt = (insn->reg & 7) == 3 ? &cpu->idtr : &cpu->gdtr;
		dt->limit = get_le(buf, 2);
		dt->base = get_le(buf + 2, blen);
		if (insn->mode != TRAPVM_MODE_64 && insn->opsize == 2)
			dt->base &= 0xffffff;
		return R_NEXT;
	case 4:		/* SMSW m16 */
		e->res->insn_class = TRAPVM_INSN_SMSW;
		emu_stat(e, TRAPVM_STAT_EMUL_MOV_CR);
		if (umip_blocks(e))
			return emu_gp(e, 0);
		put_le(buf, 2, cpu->cr0);
		r = emu_write(e, seg, ea, buf, 2);
		return r ? r : R_NEXT;
	case 6:		/* LMSW m16 */
		break;
	case 7:		/* INVLPG */
		e->res->insn_class = TRAPVM_INSN_INVLPG;
		emu_stat(e, TRAPVM_STAT_EMUL_INVLPG);
		if (insn->prefixes & TRAPVM_PFX_LOCK)
			return emu_ud(e);
		if (cpu->cpl != 0)
			return emu_gp(e, 0);
		if (insn->mode == TRAPVM_MODE_64) {
			u64 la = ((seg == SREG_FS || seg == SREG_GS) ?
				  cpu->seg[seg].base : 0) + ea;

			/* a non-canonical address makes INVLPG a no-op */
			if (trapvm_is_canonical(cpu, la) && e->ops->invlpg)
				e->ops->invlpg(e->ctx, la);
		} else if (e->ops->invlpg) {
			e->ops->invlpg(e->ctx,
				       (cpu->seg[seg].base + ea) & 0xffffffffULL);
		}
		return R_NEXT;
	default:
		return R_UNHANDLED;
	}

	/* LMSW */
	{
		u16 msw;
		u64 v;

		e->res->insn_class = TRAPVM_INSN_LMSW;
		emu_stat(e, TRAPVM_STAT_EMUL_MOV_CR);
		if (cpu->cpl != 0)
			return emu_gp(e, 0);
		r = emu_read_rm16(e, &msw);
		if (r)
			return r;
		/* loads PE, MP, EM, TS; cannot clear PE */
		v = (cpu->cr0 & ~0xeULL) | (msw & 0xf) |
		    (cpu->cr0 & TRAPVM_CR0_PE);
		return set_cr0(e, v);
	}
}

static int emu_xsetbv(struct emu *e)
{
	struct trapvm_cpu *cpu = e->cpu;
	u64 supp = cpu->xcr0_supported ? cpu->xcr0_supported :
				       TRAPVM_XCR0_DEFAULT;
	u64 v = (cpu->gpr[GPR_RAX] & 0xffffffffULL) |
		(cpu->gpr[GPR_RDX] << 32);

	e->res->insn_class = TRAPVM_INSN_XSETBV;
	emu_stat(e, TRAPVM_STAT_EMUL_OTHER);
	if (!(cpu->cr4 & TRAPVM_CR4_OSXSAVE) ||
	    (e->insn.prefixes & (TRAPVM_PFX_LOCK | TRAPVM_PFX_OPSIZE |
				 TRAPVM_PFX_REP | TRAPVM_PFX_REPNE)))
		return emu_ud(e);
	if (cpu->cpl != 0 || (cpu->gpr[GPR_RCX] & 0xffffffffULL) != 0)
		return emu_gp(e, 0);
	if ((v & ~supp) || !(v & TRAPVM_XCR0_X87))
		return emu_gp(e, 0);
	if ((v & TRAPVM_XCR0_AVX) && !(v & TRAPVM_XCR0_SSE))
		return emu_gp(e, 0);
	if (!(v & TRAPVM_XCR0_BNDREGS) != !(v & TRAPVM_XCR0_BNDCSR))
		return emu_gp(e, 0);
	if ((v & TRAPVM_XCR0_AVX512) &&
	    ((v & TRAPVM_XCR0_AVX512) != TRAPVM_XCR0_AVX512 ||
	     !(v & TRAPVM_XCR0_AVX)))
		return emu_gp(e, 0);
	cpu->xcr0 = v;
	return R_NEXT;
}

/* RDTSC/RDTSCP: #GP(0) at CPL > 0 with the guest's CR4.TSD. */
static int emu_rdtsc(struct emu *e, bool rdtscp)
{
	struct trapvm_cpu *cpu = e->cpu;
	u64 tsc;

	e->res->insn_class = TRAPVM_INSN_RDTSC;
	emu_stat(e, TRAPVM_STAT_EMUL_OTHER);
	if (e->insn.prefixes & TRAPVM_PFX_LOCK)
		return emu_ud(e);
	if ((cpu->cr4 & TRAPVM_CR4_TSD) && cpu->cpl > 0)
		return emu_gp(e, 0);
	if (!e->ops->rdtsc)
		return R_UNHANDLED;
	tsc = e->ops->rdtsc(e->ctx);
	cpu->gpr[GPR_RAX] = tsc & 0xffffffffULL;
	cpu->gpr[GPR_RDX] = tsc >> 32;
	if (rdtscp)
		cpu->gpr[GPR_RCX] = cpu->tsc_aux & 0xffffffffULL;
	return R_NEXT;
}

static int emu_group7_reg(struct emu *e)
{
	struct trapvm_cpu *cpu = e->cpu;
	struct trapvm_insn *insn = &e->insn;

	switch (insn->modrm) {
	case 0xc1:	/* VMCALL: the hypercall instruction */
		e->res->insn_class = TRAPVM_INSN_VMCALL;
		emu_stat(e, TRAPVM_STAT_EMUL_HYPERCALL);
		if (cpu->cpl != 0)
			return emu_ud(e);
		e->res->hypercall.nr = cpu->gpr[GPR_RAX];
		e->res->hypercall.args[0] = cpu->gpr[GPR_RBX];
		e->res->hypercall.args[1] = cpu->gpr[GPR_RCX];
		e->res->hypercall.args[2] = cpu->gpr[GPR_RDX];
		e->res->hypercall.args[3] = cpu->gpr[GPR_RSI];
		return R_HYPERCALL;
	case 0xc8:	/* MONITOR */
	case 0xc9:	/* MWAIT: may wake spuriously, so a no-op is valid */
		e->res->insn_class = TRAPVM_INSN_MONITOR_MWAIT;
		emu_stat(e, TRAPVM_STAT_EMUL_OTHER);
		if (cpu->cpl != 0)
			return emu_ud(e);
		return R_NEXT;
	case 0xca:	/* CLAC */
	case 0xcb:	/* STAC */
		e->res->insn_class = TRAPVM_INSN_CLAC_STAC;
		emu_stat(e, TRAPVM_STAT_EMUL_OTHER);
		if (cpu->cpl != 0 || (insn->prefixes & TRAPVM_PFX_LOCK))
			return emu_ud(e);
		if (insn->modrm == 0xca)
			cpu->rflags &= ~TRAPVM_RFLAGS_AC;
		else
			cpu->rflags |= TRAPVM_RFLAGS_AC;
		return R_NEXT;
	case 0xd1:
		return emu_xsetbv(e);
	case 0xf9:	/* RDTSCP */
		return emu_rdtsc(e, true);
	case 0xf8:	/* SWAPGS */
		e->res->insn_class = TRAPVM_INSN_SWAPGS;
		emu_stat(e, TRAPVM_STAT_EMUL_SWAPGS);
		if (insn->mode != TRAPVM_MODE_64 ||
		    (insn->prefixes & TRAPVM_PFX_LOCK))
			return emu_ud(e);
		if (cpu->cpl != 0)
			return emu_gp(e, 0);
		{
			u64 t = cpu->seg[SREG_GS].base;

			cpu->seg[SREG_GS].base = cpu->kernel_gs_base;
			cpu->kernel_gs_base = t;
		}
		return R_NEXT;
	}
	switch (insn->reg & 7) {
	case 4:		/* SMSW r16/r32/r64 */
		e->res->insn_class = TRAPVM_INSN_SMSW;
		emu_stat(e, TRAPVM_STAT_EMUL_MOV_CR);
		if (umip_blocks(e))
			return emu_gp(e, 0);
		emu_reg_write(e, insn->rm, insn->opsize, cpu->cr0);
		return R_NEXT;
	case 6:		/* LMSW r16 */
		return emu_group7_mem(e);
	}
	return R_UNHANDLED;
}

static int emu_group6(struct emu *e)
{
	struct trapvm_cpu *cpu = e->cpu;
	struct trapvm_insn *insn = &e->insn;
	u16 sel;
	u8 b[2];
	int r;

	switch (insn->reg & 7) {
	case 0:		/* SLDT */
	case 1:		/* STR */
		e->res->insn_class = (insn->reg & 7) ? TRAPVM_INSN_STR :
						       TRAPVM_INSN_SLDT;
		emu_stat(e, TRAPVM_STAT_EMUL_DTABLE);
		if (insn->prefixes & TRAPVM_PFX_LOCK)
			return emu_ud(e);
		if (umip_blocks(e))
			return emu_gp(e, 0);
		sel = (insn->reg & 7) ? cpu->tr.selector : cpu->ldtr.selector;
		if (insn->mod == 3) {
			/* register destinations are zero-extended */
			emu_reg_write(e, insn->rm, insn->opsize == 2 ? 2 :
				      insn->opsize == 4 ? 4 : 8, sel);
			return R_NEXT;
		}
		put_le(b, 2, sel);
		r = emu_write(e, trapvm_insn_seg(insn), mem_ea(e), b, 2);
		return r ? r : R_NEXT;
	case 2:		/* LLDT */
	case 3:		/* LTR */
		e->res->insn_class = (insn->reg & 7) == 3 ? TRAPVM_INSN_LTR :
							    TRAPVM_INSN_LLDT;
		emu_stat(e, TRAPVM_STAT_EMUL_DTABLE);
		if (insn->prefixes & TRAPVM_PFX_LOCK)
			return emu_ud(e);
		return emu_lldt_ltr(e, (insn->reg & 7) == 3);
	}
	return R_UNHANDLED;
}

/* --- MSRs ----------------------------------------------------------- */

static bool pat_valid(u64 v)
{
	unsigned int i;

	for (i = 0; i < 8; i++) {
		u8 t = v >> (8 * i);

		/* UC, WC, WT, WP, WB, UC- */
		if (t != 0 && t != 1 && t != 4 && t != 5 && t != 6 && t != 7)
			return false;
	}
	return true;
}

#define EFER_WRITABLE	(TRAPVM_EFER_SCE | TRAPVM_EFER_LME | TRAPVM_EFER_LMA | \
			 TRAPVM_EFER_NXE)

struct msr_field {
	u32 index;
	u16 offset;		/* of the u64 in struct trapvm_cpu */
	u8 rule;
};

#define MSR_FIELD(msr, field, rule) \
	{ TRAPVM_MSR_##msr, offsetof(struct trapvm_cpu, field), \
	  TRAPVM_MSR_RULE_##rule }

/*
 * RDMSR returns the field, WRMSR checks the rule and stores; neither has
 * side effects.  MSRs that need more (EFER, PAT, APIC_BASE) are below.
 */
static const struct msr_field msr_fields[] = {
	MSR_FIELD(STAR, star, ANY),
	MSR_FIELD(LSTAR, lstar, CANONICAL),
	MSR_FIELD(CSTAR, cstar, CANONICAL),
	MSR_FIELD(SFMASK, sfmask, HIGH_ZERO),
	MSR_FIELD(FS_BASE, seg[SREG_FS].base, CANONICAL),
	MSR_FIELD(GS_BASE, seg[SREG_GS].base, CANONICAL),
	MSR_FIELD(KERNEL_GS_BASE, kernel_gs_base, CANONICAL),
	MSR_FIELD(TSC_AUX, tsc_aux, HIGH_ZERO),
	MSR_FIELD(SYSENTER_CS, sysenter_cs, TRUNC32),
	MSR_FIELD(SYSENTER_ESP, sysenter_esp, CANONICAL),
	MSR_FIELD(SYSENTER_EIP, sysenter_eip, CANONICAL),
};

u64 *trapvm_msr_field(struct trapvm_cpu *cpu, u32 msr,
		      enum trapvm_msr_rule *rule)
{
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(msr_fields); i++) {
		if (msr_fields[i].index == msr) {
			*rule = msr_fields[i].rule;
			return (u64 *)((char *)cpu + msr_fields[i].offset);
		}
	}
	return NULL;
}

/* Store @v in @field as @rule allows: TRAPVM_MSR_OK or TRAPVM_MSR_GP. */
static int wrmsr_field(struct trapvm_cpu *cpu, u64 *field,
		       enum trapvm_msr_rule rule, u64 v)
{
	switch (rule) {
	case TRAPVM_MSR_RULE_ANY:
		break;
	case TRAPVM_MSR_RULE_CANONICAL:
		if (!trapvm_is_canonical(cpu, v))
			return TRAPVM_MSR_GP;
		break;
	case TRAPVM_MSR_RULE_HIGH_ZERO:
		if (v >> 32)
			return TRAPVM_MSR_GP;
		break;
	case TRAPVM_MSR_RULE_TRUNC32:
		v &= 0xffffffffULL;
		break;
	}
	*field = v;
	return TRAPVM_MSR_OK;
}

/* Returns TRAPVM_MSR_OK/GP/UNHANDLED. */
static int wrmsr(struct emu *e, u32 msr, u64 v)
{
	struct trapvm_cpu *cpu = e->cpu;
	unsigned int phys = cpu->maxphyaddr ? cpu->maxphyaddr : 52;
	u64 old, *field;
	enum trapvm_msr_rule rule;

	field = trapvm_msr_field(cpu, msr, &rule);
	if (field)
		return wrmsr_field(cpu, field, rule, v);

	switch (msr) {
	case TRAPVM_MSR_EFER:
		if (v & ~EFER_WRITABLE)
			return TRAPVM_MSR_GP;
		if ((cpu->cr0 & TRAPVM_CR0_PG) &&
		    ((v ^ cpu->efer) & TRAPVM_EFER_LME))
			return TRAPVM_MSR_GP;
		old = cpu->efer;
		/* LMA is read-only: it follows LME and CR0.PG */
		cpu->efer = (v & ~TRAPVM_EFER_LMA) | (old & TRAPVM_EFER_LMA);
		if ((old ^ cpu->efer) & TRAPVM_EFER_NXE)
			notify_paging(e, cpu->cr0, cpu->cr4, old);
		return TRAPVM_MSR_OK;
	case TRAPVM_MSR_PAT:
		if (!pat_valid(v))
			return TRAPVM_MSR_GP;
		cpu->pat = v;
		return TRAPVM_MSR_OK;
	case TRAPVM_MSR_APIC_BASE: {
		u64 en = BIT_ULL(11), extd = BIT_ULL(10);
		u64 rsvd = 0xffULL | BIT_ULL(9) |
			   (phys < 64 ? ~0ULL << phys : 0);
		u64 om = cpu->apic_base & (en | extd), nm = v & (en | extd);

		if (v & rsvd)
			return TRAPVM_MSR_GP;
		/* SDM 10.12.5: invalid state and invalid transitions */
		if (nm == extd)
			return TRAPVM_MSR_GP;
		if (om == (en | extd) && nm == en)
			return TRAPVM_MSR_GP;
		if (om == 0 && nm == (en | extd))
			return TRAPVM_MSR_GP;
		cpu->apic_base = v;
		return TRAPVM_MSR_OK;
	}
	}
	if (!e->ops->wrmsr)
		return TRAPVM_MSR_UNHANDLED;
	return e->ops->wrmsr(e->ctx, msr, v);
}

static int rdmsr(struct emu *e, u32 msr, u64 *v)
{
	struct trapvm_cpu *cpu = e->cpu;
	u64 *field;
	enum trapvm_msr_rule rule;

	field = trapvm_msr_field(cpu, msr, &rule);
	if (field) {
		*v = *field;
		return TRAPVM_MSR_OK;
	}

	switch (msr) {
	case TRAPVM_MSR_EFER:
		*v = cpu->efer;
		break;
	case TRAPVM_MSR_PAT:
		*v = cpu->pat;
		break;
	case TRAPVM_MSR_APIC_BASE:
		*v = cpu->apic_base;
		break;
	default:
		if (!e->ops->rdmsr)
			return TRAPVM_MSR_UNHANDLED;
		return e->ops->rdmsr(e->ctx, msr, v);
	}
	return TRAPVM_MSR_OK;
}

static int emu_msr(struct emu *e, bool write)
{
	struct trapvm_cpu *cpu = e->cpu;
	u32 msr = cpu->gpr[GPR_RCX];
	u64 v = 0;
	int r;

	e->res->insn_class = write ? TRAPVM_INSN_WRMSR : TRAPVM_INSN_RDMSR;
	emu_stat(e, TRAPVM_STAT_EMUL_MSR);
	if (e->insn.prefixes & TRAPVM_PFX_LOCK)
		return emu_ud(e);
	if (cpu->cpl != 0)
		return emu_gp(e, 0);
	if (write) {
		v = (cpu->gpr[GPR_RAX] & 0xffffffffULL) |
		    (cpu->gpr[GPR_RDX] << 32);
		r = wrmsr(e, msr, v);
	} else {
		r = rdmsr(e, msr, &v);
	}
	if (r == TRAPVM_MSR_UNHANDLED)
		emu_stat(e, TRAPVM_STAT_EMUL_MSR_UNKNOWN);
	if (r != TRAPVM_MSR_OK)
		return emu_gp(e, 0);
	if (!write) {
		cpu->gpr[GPR_RAX] = v & 0xffffffffULL;
		cpu->gpr[GPR_RDX] = v >> 32;
	}
	return R_NEXT;
}

/* --- port I/O ------------------------------------------------------- */

/* CPL > IOPL: the guest TSS's I/O permission bitmap decides (SDM 18.5). */
static int io_permitted(struct emu *e, u16 port, unsigned int size)
{
	struct trapvm_cpu *cpu = e->cpu;
	unsigned int t = SEG_TYPE(cpu->tr.attr);
	u8 b[2];
	u64 base;

	if (cpu->cpl <= iopl(cpu))
		return 0;
	if (!(cpu->tr.attr & SEG_P) || (t != SYS_TSS_AVAIL && t != SYS_TSS_BUSY) ||
	    cpu->tr.limit < 103)
		return emu_gp(e, 0);
	preset_fault(e);
	if (e->ops->read(e->ctx, cpu->tr.base + 102, b, 2,
			 TRAPVM_ACC_IMPLICIT, &e->fault))
		return R_FAULT;
	base = get_le(b, 2) + port / 8;
	if (base + 1 > cpu->tr.limit)
		return emu_gp(e, 0);
	if (e->ops->read(e->ctx, cpu->tr.base + base, b, 2,
			 TRAPVM_ACC_IMPLICIT, &e->fault))
		return R_FAULT;
	if ((get_le(b, 2) >> (port & 7)) & ((1u << size) - 1))
		return emu_gp(e, 0);
	return 0;
}

static u64 admask(unsigned int adsize)
{
	return adsize == 8 ? ~0ULL : adsize == 4 ? 0xffffffffULL : 0xffffULL;
}

/* Update an address-size register (RSI, RDI, RCX) like the CPU does. */
static void set_adreg(struct emu *e, unsigned int reg, u64 v)
{
	emu_reg_write(e, reg, e->insn.adsize, v);
}

static int emu_io(struct emu *e)
{
	struct trapvm_cpu *cpu = e->cpu;
	struct trapvm_insn *insn = &e->insn;
	struct trapvm_emu_result *res = e->res;
	u8 op = insn->opcode;
	bool string = op >= 0x6c && op <= 0x6f;
	bool in = string ? op <= 0x6d : !(op & 2);
	unsigned int size = (op & 1) ? (insn->opsize == 2 ? 2 : 4) : 1;
	u16 port = (op & 0xf0) == 0xe0 && op < 0xec ? insn->imm :
		   cpu->gpr[GPR_RDX];
	bool rep = string && (insn->prefixes & (TRAPVM_PFX_REP |
						TRAPVM_PFX_REPNE));
	u64 am = admask(insn->adsize), count = 1, cap, off, la;
	unsigned int seg, i, reg;
	s64 step;
	int r;

	res->insn_class = string ? (in ? TRAPVM_INSN_INS : TRAPVM_INSN_OUTS) :
				   (in ? TRAPVM_INSN_IN : TRAPVM_INSN_OUT);
	emu_stat(e, TRAPVM_STAT_EMUL_IO);
	if (insn->prefixes & TRAPVM_PFX_LOCK)
		return emu_ud(e);
	r = io_permitted(e, port, size);
	if (r)
		return r;

	res->io.in = in;
	res->io.size = size;
	res->io.port = port;
	res->io.string = string;
	res->io.rep = rep;
	res->io.count = 1;
	res->io.data = res->io.inline_data;
	res->io.next_rip = e->next_rip;
	memset(res->io.inline_data, 0, sizeof(res->io.inline_data));

	if (!string) {
		if (!in) {
			put_le(res->io.inline_data, size,
			       cpu->gpr[GPR_RAX]);
			cpu->rip = e->next_rip;
		}
		return R_IO;
	}

	if (rep) {
		count = cpu->gpr[GPR_RCX] & am;
		if (!count)
			return R_NEXT;
	}
	step = (cpu->rflags & TRAPVM_RFLAGS_DF) ? -(s64)size : (s64)size;
	reg = in ? GPR_RDI : GPR_RSI;
	seg = in ? SREG_ES : trapvm_insn_seg(insn);
	off = cpu->gpr[reg] & am;
	r = emu_linear(e, seg, off, size, &la);
	if (r)
		return r;

	/* as many elements as fit the buffer and stay in this page */
	cap = 1;
	if (res->io_buf && res->io_buf_size >= size) {
		cap = res->io_buf_size / size;
		res->io.data = res->io_buf;
	}
	if (step > 0)
		i = (PAGE_SZ - (la & (PAGE_SZ - 1))) / size;
	else
		i = ((la & (PAGE_SZ - 1)) + size) / size;
	if (i < 1)
		i = 1;
	if (cap > i)
		cap = i;
	if (count > cap)
		count = cap;

	if (in) {
		/* memory is written by trapvm_emulate_in_complete() */
		res->io.count = count;
		res->io.mem = la;
		return R_IO;
	}
	for (i = 0; i < count; i++) {
		r = emu_read(e, seg, (off + i * step) & am,
			     res->io.data + i * size, size);
		if (r) {
			if (!i)
				return r;
			/* the rest restarts and faults then */
			break;
		}
	}
	count = i;
	res->io.count = count;
	set_adreg(e, GPR_RSI, off + count * step);
	if (rep) {
		u64 left = (cpu->gpr[GPR_RCX] & am) - count;

		set_adreg(e, GPR_RCX, left);
		if (left) {
			/* not done: RIP stays, the guest re-executes */
			return R_IO;
		}
	}
	cpu->rip = e->next_rip;
	return R_IO;
}

int trapvm_emulate_in_complete(struct trapvm_cpu *cpu,
			       const struct trapvm_emu_ops *ops, void *ctx,
			       struct trapvm_emu_result *res, const u8 *data)
{
	unsigned int size = res->io.size, i, count = res->io.count;
	struct trapvm_fault f;
	struct emu e;
	u64 am, off, left;
	s64 step;

	if (res->status != TRAPVM_EMU_IO || !res->io.in || !size || size > 4)
		return TRAPVM_EMU_CONTINUE;
	if (!res->io.string) {
		u64 v = get_le(data, size);

		if (size == 4)
			cpu->gpr[GPR_RAX] = v;
		else if (size == 2)
			cpu->gpr[GPR_RAX] = (cpu->gpr[GPR_RAX] & ~0xffffULL) | v;
		else
			cpu->gpr[GPR_RAX] = (cpu->gpr[GPR_RAX] & ~0xffULL) | v;
		cpu->rip = res->io.next_rip;
		return TRAPVM_EMU_CONTINUE;
	}

	memset(&e, 0, sizeof(e));
	e.cpu = cpu;
	e.ops = ops;
	e.ctx = ctx;
	e.res = res;
	e.insn.mode = trapvm_cpu_mode(cpu);
	/* recover the address size from the saved instruction */
	if (trapvm_decode(res->insn, res->insn_len, e.insn.mode, &e.insn,
			  NULL) != TRAPVM_DECODE_OK)
		return TRAPVM_EMU_CONTINUE;
	am = admask(e.insn.adsize);
	step = (cpu->rflags & TRAPVM_RFLAGS_DF) ? -(s64)size : (s64)size;
	off = cpu->gpr[GPR_RDI] & am;
	for (i = 0; i < count; i++) {
		memset(&f, 0, sizeof(f));
		f.vector = TRAPVM_GP_VECTOR;
		f.has_error_code = true;
		if (ops->write(ctx, res->io.mem + i * step, data + i * size,
			       size, (cpu->cpl == 3 ? TRAPVM_ACC_USER : 0) |
			       TRAPVM_ACC_WRITE, &f))
			break;
	}
	set_adreg(&e, GPR_RDI, off + i * step);
	if (res->io.rep) {
		left = (cpu->gpr[GPR_RCX] & am) - i;
		set_adreg(&e, GPR_RCX, left);
	} else {
		left = 0;
	}
	if (i < count)
		return trapvm_deliver_fault(cpu, ops, ctx, &f);
	if (!left)
		cpu->rip = res->io.next_rip;
	return TRAPVM_EMU_CONTINUE;
}

/* --- segment register loads ----------------------------------------- */

static int emu_pop_sreg(struct emu *e, unsigned int sreg)
{
	struct trapvm_cpu *cpu = e->cpu;
	unsigned int os = e->insn.opsize, ss = emu_stack_size(cpu);
	u64 m = ss == 8 ? ~0ULL : ss == 4 ? 0xffffffffULL : 0xffffULL;
	u8 b[8];
	int r;

	e->res->insn_class = TRAPVM_INSN_POP_SREG;
	emu_stat(e, TRAPVM_STAT_EMUL_SEG);
	if (e->insn.prefixes & TRAPVM_PFX_LOCK)
		return emu_ud(e);
	r = emu_read(e, SREG_SS, cpu->gpr[GPR_RSP] & m, b, os);
	if (r)
		return r;
	r = emu_load_seg(e, sreg, get_le(b, 2));
	if (r)
		return r;
	cpu->gpr[GPR_RSP] = (cpu->gpr[GPR_RSP] & ~m) |
			    ((cpu->gpr[GPR_RSP] + os) & m);
	return R_NEXT;
}

static int emu_mov_sreg(struct emu *e)
{
	unsigned int sreg = e->insn.reg & 7;
	u16 sel;
	int r;

	e->res->insn_class = TRAPVM_INSN_MOV_SREG;
	emu_stat(e, TRAPVM_STAT_EMUL_SEG);
	if (sreg == SREG_CS || sreg >= SREG_NR ||
	    (e->insn.prefixes & TRAPVM_PFX_LOCK))
		return emu_ud(e);
	r = emu_read_rm16(e, &sel);
	if (r)
		return r;
	r = emu_load_seg(e, sreg, sel);
	return r ? r : R_NEXT;
}

/* LDS/LES/LSS/LFS/LGS: far pointer in memory to Sreg:reg. */
static int emu_lseg(struct emu *e, unsigned int sreg)
{
	struct trapvm_insn *insn = &e->insn;
	unsigned int os = insn->opsize;
	u8 b[10];
	int r;

	e->res->insn_class = TRAPVM_INSN_LSEG;
	emu_stat(e, TRAPVM_STAT_EMUL_SEG);
	if (insn->mod == 3 || (insn->prefixes & TRAPVM_PFX_LOCK))
		return emu_ud(e);
	r = emu_read(e, trapvm_insn_seg(insn), mem_ea(e), b, os + 2);
	if (r)
		return r;
	r = emu_load_seg(e, sreg, get_le(b + os, 2));
	if (r)
		return r;
	emu_reg_write(e, insn->reg, os, get_le(b, os));
	return R_NEXT;
}

/* --- software interrupts -------------------------------------------- */

static int emu_int(struct emu *e, unsigned int vector, unsigned int flags)
{
	struct trapvm_cpu *cpu = e->cpu;

	e->res->insn_class = TRAPVM_INSN_INT;
	emu_stat(e, TRAPVM_STAT_EMUL_OTHER);
	e->status = trapvm_deliver_event(cpu, e->ops, e->ctx, vector, flags, 0,
					 e->next_rip);
	return R_STATUS;
}

/* --- dispatch ------------------------------------------------------- */

static int dispatch_0f(struct emu *e)
{
	struct trapvm_cpu *cpu = e->cpu;
	struct trapvm_insn *insn = &e->insn;

	switch (insn->opcode) {
	case 0x00:
		return emu_group6(e);
	case 0x01:
		return insn->mod == 3 ? emu_group7_reg(e) : emu_group7_mem(e);
	case 0x05:	/* SYSCALL arriving as a fault: do it here */
		e->res->insn_class = TRAPVM_INSN_SYSCALL;
		e->status = trapvm_emulate_syscall(cpu, e->ops, e->ctx);
		return R_STATUS;
	case 0x06:	/* CLTS */
		e->res->insn_class = TRAPVM_INSN_CLTS;
		emu_stat(e, TRAPVM_STAT_EMUL_MOV_CR);
		if (insn->prefixes & TRAPVM_PFX_LOCK)
			return emu_ud(e);
		if (cpu->cpl != 0)
			return emu_gp(e, 0);
		cpu->cr0 &= ~TRAPVM_CR0_TS;
		return R_NEXT;
	case 0x07:
		e->res->insn_class = TRAPVM_INSN_SYSRET;
		emu_stat(e, TRAPVM_STAT_EMUL_SYSRET);
		return emu_sysret(e);
	case 0x08:	/* INVD */
	case 0x09:	/* WBINVD */
		e->res->insn_class = TRAPVM_INSN_WBINVD;
		emu_stat(e, TRAPVM_STAT_EMUL_OTHER);
		if (insn->prefixes & TRAPVM_PFX_LOCK)
			return emu_ud(e);
		if (cpu->cpl != 0)
			return emu_gp(e, 0);
		return R_NEXT;
	case 0x0b:	/* UD2 */
	case 0xb9:	/* UD1 */
	case 0xff:	/* UD0 */
		e->res->insn_class = TRAPVM_INSN_UD;
		return emu_ud(e);
	case 0x20:
	case 0x22:
		e->res->insn_class = TRAPVM_INSN_MOV_CR;
		return emu_mov_cr(e, insn->opcode == 0x22);
	case 0x21:
	case 0x23:
		e->res->insn_class = TRAPVM_INSN_MOV_DR;
		return emu_mov_dr(e, insn->opcode == 0x23);
	case 0x30:
	case 0x32:
		return emu_msr(e, insn->opcode == 0x30);
	case 0x33:	/* RDPMC: no virtual PMU, every counter is invalid */
		e->res->insn_class = TRAPVM_INSN_RDPMC;
		emu_stat(e, TRAPVM_STAT_EMUL_OTHER);
		return emu_gp(e, 0);
	case 0x31:
		return emu_rdtsc(e, false);
	case 0x34:
	case 0x35:
		e->res->insn_class = TRAPVM_INSN_SYSENTER;
		emu_stat(e, TRAPVM_STAT_EMUL_OTHER);
		if (insn->prefixes & TRAPVM_PFX_LOCK)
			return emu_ud(e);
		return insn->opcode == 0x34 ? emu_sysenter(e) : emu_sysexit(e);
	case 0xa2:	/* CPUID: only traps with CPUID faulting on */
		e->res->insn_class = TRAPVM_INSN_CPUID;
		emu_stat(e, TRAPVM_STAT_EMUL_OTHER);
		if (!e->ops->cpuid)
			return R_UNHANDLED;
		{
			u32 out[4] = { 0 };

			e->ops->cpuid(e->ctx, cpu->gpr[GPR_RAX],
				      cpu->gpr[GPR_RCX], out);
			cpu->gpr[GPR_RAX] = out[0];
			cpu->gpr[GPR_RBX] = out[1];
			cpu->gpr[GPR_RCX] = out[2];
			cpu->gpr[GPR_RDX] = out[3];
		}
		return R_NEXT;
	case 0xa1:
		return emu_pop_sreg(e, SREG_FS);
	case 0xa9:
		return emu_pop_sreg(e, SREG_GS);
	case 0xb2:
		return emu_lseg(e, SREG_SS);
	case 0xb4:
		return emu_lseg(e, SREG_FS);
	case 0xb5:
		return emu_lseg(e, SREG_GS);
	}
	return emu_data(e);
}

static int dispatch(struct emu *e)
{
	struct trapvm_cpu *cpu = e->cpu;
	struct trapvm_insn *insn = &e->insn;
	u8 op = insn->opcode;

	if (insn->prefixes & (TRAPVM_PFX_VEX | TRAPVM_PFX_EVEX))
		return R_UNHANDLED;
	if (insn->map == TRAPVM_MAP_0F)
		return dispatch_0f(e);
	if (insn->map != TRAPVM_MAP_1B)
		return R_UNHANDLED;

	switch (op) {
	case 0xfa:
	case 0xfb:
		e->res->insn_class = op == 0xfa ? TRAPVM_INSN_CLI :
						  TRAPVM_INSN_STI;
		if (insn->prefixes & TRAPVM_PFX_LOCK)
			return emu_ud(e);
		return emu_cli_sti(e, op == 0xfb);
	case 0xf4:
		e->res->insn_class = TRAPVM_INSN_HLT;
		emu_stat(e, TRAPVM_STAT_EMUL_HLT);
		if (insn->prefixes & TRAPVM_PFX_LOCK)
			return emu_ud(e);
		if (cpu->cpl != 0)
			return emu_gp(e, 0);
		return R_HLT;
	case 0x8e:
		return emu_mov_sreg(e);
	case 0x07:
		return emu_pop_sreg(e, SREG_ES);
	case 0x17:
		return emu_pop_sreg(e, SREG_SS);
	case 0x1f:
		return emu_pop_sreg(e, SREG_DS);
	case 0xc4:
		return emu_lseg(e, SREG_ES);
	case 0xc5:
		return emu_lseg(e, SREG_DS);
	case 0xca:
	case 0xcb:
		e->res->insn_class = TRAPVM_INSN_RET_FAR;
		emu_stat(e, TRAPVM_STAT_EMUL_SEG);
		if (insn->prefixes & TRAPVM_PFX_LOCK)
			return emu_ud(e);
		return emu_far_ret(e);
	case 0xcf:
		e->res->insn_class = TRAPVM_INSN_IRET;
		emu_stat(e, TRAPVM_STAT_EMUL_IRET);
		if (insn->prefixes & TRAPVM_PFX_LOCK)
			return emu_ud(e);
		return emu_iret(e);
	case 0xea:
	case 0x9a:
		e->res->insn_class = op == 0xea ? TRAPVM_INSN_JMP_FAR :
						  TRAPVM_INSN_CALL_FAR;
		emu_stat(e, TRAPVM_STAT_EMUL_SEG);
		if (insn->prefixes & TRAPVM_PFX_LOCK)
			return emu_ud(e);
		return emu_far_jmp_call(e, op == 0x9a);
	case 0xff:
		if ((insn->reg & 7) != 3 && (insn->reg & 7) != 5)
			return emu_data(e);
		e->res->insn_class = (insn->reg & 7) == 3 ?
				     TRAPVM_INSN_CALL_FAR : TRAPVM_INSN_JMP_FAR;
		emu_stat(e, TRAPVM_STAT_EMUL_SEG);
		if (insn->prefixes & TRAPVM_PFX_LOCK)
			return emu_ud(e);
		return emu_far_jmp_call(e, (insn->reg & 7) == 3);
	case 0xcc:
		if (insn->prefixes & TRAPVM_PFX_LOCK)
			return emu_ud(e);
		return emu_int(e, TRAPVM_BP_VECTOR, EV_SOFT);
	case 0xcd:
		if (insn->prefixes & TRAPVM_PFX_LOCK)
			return emu_ud(e);
		return emu_int(e, insn->imm & 0xff, EV_SOFT);
	case 0xce:	/* INTO (invalid in 64-bit mode: decoder said #UD) */
		if (insn->prefixes & TRAPVM_PFX_LOCK)
			return emu_ud(e);
		if (!(cpu->rflags & TRAPVM_RFLAGS_OF))
			return R_NEXT;
		return emu_int(e, TRAPVM_OF_VECTOR, EV_SOFT);
	case 0xf1:	/* INT1: a #DB trap without the gate DPL check */
		if (insn->prefixes & TRAPVM_PFX_LOCK)
			return emu_ud(e);
		return emu_int(e, TRAPVM_DB_VECTOR, EV_EXT);
	case 0xe4: case 0xe5: case 0xe6: case 0xe7:
	case 0xec: case 0xed: case 0xee: case 0xef:
	case 0x6c: case 0x6d: case 0x6e: case 0x6f:
		return emu_io(e);
	}
	return emu_data(e);
}

/*
 * Fetch up to 15 bytes at CS:RIP.  The second page is only needed when
 * the instruction really continues there: its fault is kept in *f2 and
 * reported only if the decoder runs out of bytes.
 */
static int fetch(struct emu *e, u8 *buf, unsigned int *avail,
		 struct trapvm_fault *f2, bool *f2_valid)
{
	struct trapvm_cpu *cpu = e->cpu;
	unsigned int n1;
	u64 la;

	*f2_valid = false;
	if (e->insn.mode == TRAPVM_MODE_64) {
		la = cpu->rip;
		if (!trapvm_is_canonical(cpu, la))
			return emu_gp(e, 0);
	} else {
		la = (cpu->seg[SREG_CS].base + cpu->rip) & 0xffffffffULL;
	}
	n1 = PAGE_SZ - (la & (PAGE_SZ - 1));
	if (n1 > TRAPVM_INSN_MAX)
		n1 = TRAPVM_INSN_MAX;
	preset_fault(e);
	if (e->ops->read(e->ctx, la, buf, n1,
			 access_flags(e) | TRAPVM_ACC_FETCH, &e->fault))
		return R_FAULT;
	*avail = n1;
	if (n1 < TRAPVM_INSN_MAX) {
		u64 la2 = la + n1;

		memset(f2, 0, sizeof(*f2));
		f2->vector = TRAPVM_GP_VECTOR;
		f2->has_error_code = true;
		if (e->insn.mode == TRAPVM_MODE_64 &&
		    !trapvm_is_canonical(cpu, la2)) {
			*f2_valid = true;
		} else if (e->ops->read(e->ctx, la2, buf + n1,
					TRAPVM_INSN_MAX - n1,
					access_flags(e) | TRAPVM_ACC_FETCH,
					f2)) {
			*f2_valid = true;
		} else {
			*avail = TRAPVM_INSN_MAX;
		}
	}
	return 0;
}

static int emu_deliver(struct emu *e)
{
	struct trapvm_emu_result *res = e->res;

	res->fault = e->fault;
	return trapvm_deliver_fault(e->cpu, e->ops, e->ctx, &e->fault);
}

int trapvm_emulate(struct trapvm_cpu *cpu, const struct trapvm_emu_ops *ops,
		   void *ctx, struct trapvm_emu_result *res)
{
	u8 buf[TRAPVM_INSN_MAX];
	struct trapvm_fault f2;
	unsigned int avail = 0;
	u8 old_shadow = cpu->interrupt_shadow;
	u64 old_rflags = cpu->rflags;
	bool f2_valid;
	struct emu e;
	int r, status;

	res->status = TRAPVM_EMU_UNHANDLED;
	res->insn_class = TRAPVM_INSN_NONE;
	res->insn_len = 0;
	memset(&res->fault, 0, sizeof(res->fault));
	memset(&res->io, 0, sizeof(res->io));
	if (cpu->shutdown) {
		res->status = TRAPVM_EMU_SHUTDOWN;
		return res->status;
	}

	memset(&e, 0, sizeof(e));
	e.cpu = cpu;
	e.ops = ops;
	e.ctx = ctx;
	e.res = res;
	e.insn.mode = trapvm_cpu_mode(cpu);
	memset(buf, 0, sizeof(buf));

	r = fetch(&e, buf, &avail, &f2, &f2_valid);
	if (r) {
		status = emu_deliver(&e);
		goto out;
	}
	r = trapvm_decode(buf, avail, e.insn.mode, &e.insn, NULL);
	switch (r) {
	case TRAPVM_DECODE_OK:
		break;
	case TRAPVM_DECODE_TRUNC:
		/* the instruction continues into a page we cannot fetch */
		e.fault = f2;
		status = emu_deliver(&e);
		goto out;
	case TRAPVM_DECODE_TOO_LONG:
		emu_gp(&e, 0);
		status = emu_deliver(&e);
		goto out;
	default:
		res->insn_len = e.insn.len;
		memcpy(res->insn, buf, e.insn.len);
		res->insn_class = TRAPVM_INSN_UD;
		emu_stat(&e, TRAPVM_STAT_EMUL_FAILED);
		emu_ud(&e);
		status = emu_deliver(&e);
		goto out;
	}
	res->insn_len = e.insn.len;
	memcpy(res->insn, buf, e.insn.len);
	e.next_rip = cpu->rip + e.insn.len;
	if (e.insn.mode != TRAPVM_MODE_64)
		e.next_rip &= 0xffffffffULL;

	/* the shadow covers exactly one instruction */
	cpu->interrupt_shadow = 0;
	r = dispatch(&e);
	switch (r) {
	case R_NEXT:
		cpu->rip = e.next_rip;
		cpu->rflags &= ~TRAPVM_RFLAGS_RF;
		status = TRAPVM_EMU_CONTINUE;
		/* a MOV/POP SS also holds off debug traps for one insn */
		if ((old_rflags & TRAPVM_RFLAGS_TF) && !e.ss_loaded) {
			/* single-step trap after the emulated instruction */
			cpu->dr[6] |= BIT_ULL(14);
			status = trapvm_deliver_exception(cpu, ops, ctx,
							  TRAPVM_DB_VECTOR,
							  false, 0);
		}
		break;
	case R_JUMPED:
		/* IRET loads RF from its frame; everything else clears it */
		if (res->insn_class != TRAPVM_INSN_IRET)
			cpu->rflags &= ~TRAPVM_RFLAGS_RF;
		status = TRAPVM_EMU_CONTINUE;
		if (old_rflags & TRAPVM_RFLAGS_TF) {
			/* TF at the start counts, even if the insn cleared it */
			cpu->dr[6] |= BIT_ULL(14);
			status = trapvm_deliver_exception(cpu, ops, ctx,
							  TRAPVM_DB_VECTOR,
							  false, 0);
		}
		break;
	case R_FAULT:
		status = emu_deliver(&e);
		break;
	case R_IO:
		status = TRAPVM_EMU_IO;
		break;
	case R_HLT:
		cpu->rip = e.next_rip;
		cpu->halted = 1;
		status = TRAPVM_EMU_HLT;
		break;
	case R_HYPERCALL:
		cpu->rip = e.next_rip;
		status = TRAPVM_EMU_HYPERCALL;
		break;
	case R_MMIO_READY:
		status = TRAPVM_EMU_MMIO;
		break;
	case R_STATUS:
		status = e.status;
		break;
	case R_RETRY:
		/* not executed: the handler put the flags back */
		cpu->interrupt_shadow = old_shadow;
		emu_stat(&e, TRAPVM_STAT_EMUL_RETRY);
		res->status = TRAPVM_EMU_RETRY;
		return TRAPVM_EMU_RETRY;
	default:
		cpu->interrupt_shadow = old_shadow;
		emu_stat(&e, TRAPVM_STAT_EMUL_FAILED);
		status = TRAPVM_EMU_UNHANDLED;
		break;
	}
	if (status != TRAPVM_EMU_UNHANDLED)
		emu_stat(&e, TRAPVM_STAT_EMUL_TOTAL);
out:
	res->status = status;
	return status;
}
