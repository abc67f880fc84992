// SPDX-License-Identifier: GPL-2.0
/*
 * Exception and interrupt delivery through the guest's virtual IDT, as
 * the SDM (vol. 3, 6.14 "Exception and interrupt handling in 64-bit
 * mode") describes it, applied to the virtual CPU state: 16-byte gates,
 * IST, a CPL switch with the guest TSS's RSP0, a 16-byte aligned frame of
 * SS, RSP, RFLAGS, CS, RIP and the error code, and the double-fault and
 * shutdown rules of table 6-5.
 */
#include "emul_internal.h"

enum { CLASS_BENIGN, CLASS_CONTRIB, CLASS_PF, CLASS_DF };

static int exception_class(unsigned int vector, unsigned int flags)
{
	if (flags & (EV_SOFT | EV_IRQ))
		return CLASS_BENIGN;
	switch (vector) {
	case TRAPVM_DE_VECTOR:
	case TRAPVM_TS_VECTOR:
	case TRAPVM_NP_VECTOR:
	case TRAPVM_SS_VECTOR:
	case TRAPVM_GP_VECTOR:
		return CLASS_CONTRIB;
	case TRAPVM_PF_VECTOR:
		return CLASS_PF;
	case TRAPVM_DF_VECTOR:
		return CLASS_DF;
	default:
		return CLASS_BENIGN;
	}
}

bool trapvm_exception_has_error_code(unsigned int vector)
{
	switch (vector) {
	case TRAPVM_DF_VECTOR:
	case TRAPVM_TS_VECTOR:
	case TRAPVM_NP_VECTOR:
	case TRAPVM_SS_VECTOR:
	case TRAPVM_GP_VECTOR:
	case TRAPVM_PF_VECTOR:
	case TRAPVM_AC_VECTOR:
	case 21:	/* #CP */
	case 29:	/* #VC */
	case 30:	/* #SX */
		return true;
	default:
		return false;
	}
}

bool trapvm_is_canonical(const struct trapvm_cpu *cpu, u64 addr)
{
	unsigned int shift = (cpu->cr4 & TRAPVM_CR4_LA57) ? 64 - 57 : 64 - 48;

	return (u64)((s64)(addr << shift) >> shift) == addr;
}

/* Read a u64 from the guest TSS at @off (implicit supervisor access). */
static int read_tss(struct trapvm_cpu *cpu, const struct trapvm_emu_ops *ops,
		    void *ctx, unsigned int off, u32 ext, u64 *val,
		    struct trapvm_fault *f)
{
	if (!(cpu->tr.attr & SEG_P) || (u64)off + 7 > cpu->tr.limit) {
		set_fault(f, TRAPVM_TS_VECTOR, (cpu->tr.selector & 0xfffc) | ext);
		return -1;
	}
	return ops->read(ctx, cpu->tr.base + off, val, 8, TRAPVM_ACC_IMPLICIT,
			 f) ? -1 : 0;
}

/*
 * One delivery attempt.  Returns 0 when the guest state now points at
 * the handler, -1 with *f describing the fault that prevented it.
 */
static int try_deliver(struct trapvm_cpu *cpu,
		       const struct trapvm_emu_ops *ops, void *ctx,
		       unsigned int vector, unsigned int flags, u32 err,
		       u64 push_rip, struct trapvm_fault *f)
{
	u32 ext = (flags & EV_EXT) ? 1 : 0;
	u32 idt_err = vector * 8 + 2 + ext;
	u64 gate[2], desc[2], frame[6], rsp, handler, gaddr;
	unsigned int type, gdpl, ist, newcpl, n, access;
	struct trapvm_seg cs;
	u16 sel;

	if ((u64)vector * 16 + 15 > cpu->idtr.limit) {
		set_fault(f, TRAPVM_GP_VECTOR, idt_err);
		return -1;
	}
	gaddr = cpu->idtr.base + vector * 16;
	if (!trapvm_is_canonical(cpu, gaddr) ||
	    !trapvm_is_canonical(cpu, gaddr + 15)) {
		set_fault(f, TRAPVM_GP_VECTOR, idt_err);
		return -1;
	}
	if (ops->read(ctx, gaddr, gate, 16, TRAPVM_ACC_IMPLICIT, f))
		return -1;

	/* only 64-bit interrupt and trap gates exist in IA-32e mode */
	type = (gate[0] >> 40) & 0x1f;		/* type + S */
	if ((type != SYS_INT_GATE && type != SYS_TRAP_GATE) ||
	    ((gate[1] >> 40) & 0x1f)) {
		set_fault(f, TRAPVM_GP_VECTOR, idt_err);
		return -1;
	}
	gdpl = (gate[0] >> 45) & 3;
	if ((flags & EV_SOFT) && gdpl < cpu->cpl) {
		set_fault(f, TRAPVM_GP_VECTOR, vector * 8 + 2);
		return -1;
	}
	if (!((gate[0] >> 47) & 1)) {
		set_fault(f, TRAPVM_NP_VECTOR, idt_err);
		return -1;
	}
	sel = (gate[0] >> 16) & 0xffff;
	ist = (gate[0] >> 32) & 7;
	handler = (gate[0] & 0xffff) | ((gate[0] >> 32) & 0xffff0000ULL) |
		  (gate[1] << 32);

	/* the target code segment */
	if (!(sel & 0xfffc)) {
		set_fault(f, TRAPVM_GP_VECTOR, ext);
		return -1;
	}
	if (trapvm_read_desc(cpu, ops, ctx, sel, false, ext, desc, f))
		return -1;
	trapvm_desc_to_seg(desc, false, sel, &cs);
	if (!(cs.attr & SEG_S) || !(cs.attr & SEG_TYPE_CODE) ||
	    SEG_DPL(cs.attr) > cpu->cpl) {
		set_fault(f, TRAPVM_GP_VECTOR, (sel & 0xfffc) | ext);
		return -1;
	}
	if (!(cs.attr & SEG_P)) {
		set_fault(f, TRAPVM_NP_VECTOR, (sel & 0xfffc) | ext);
		return -1;
	}
	if (!(cs.attr & SEG_L) || (cs.attr & SEG_DB)) {
		set_fault(f, TRAPVM_GP_VECTOR, (sel & 0xfffc) | ext);
		return -1;
	}
	newcpl = (cs.attr & (SEG_TYPE_CONF)) ? cpu->cpl : SEG_DPL(cs.attr);

	/* the stack: IST, else RSPn on a privilege change, else the same */
	if (ist) {
		if (read_tss(cpu, ops, ctx, 36 + (ist - 1) * 8, ext, &rsp, f))
			return -1;
	} else if (newcpl < cpu->cpl) {
		if (read_tss(cpu, ops, ctx, 4 + newcpl * 8, ext, &rsp, f))
			return -1;
	} else {
		rsp = cpu->gpr[GPR_RSP];
	}
	rsp &= ~0xfULL;

	n = 0;
	if (flags & EV_ERR)
		frame[n++] = err;
	frame[n++] = push_rip;
	frame[n++] = cpu->seg[SREG_CS].selector;
	frame[n++] = cpu->rflags;
	frame[n++] = cpu->gpr[GPR_RSP];
	frame[n++] = cpu->seg[SREG_SS].selector;
	if (!trapvm_is_canonical(cpu, rsp - n * 8) ||
	    !trapvm_is_canonical(cpu, rsp - 1)) {
		set_fault(f, TRAPVM_SS_VECTOR, ext);
		return -1;
	}
	if (!trapvm_is_canonical(cpu, handler)) {
		set_fault(f, TRAPVM_GP_VECTOR, ext);
		return -1;
	}
	access = newcpl == 3 ? TRAPVM_ACC_USER : 0;
	if (ops->write(ctx, rsp - n * 8, frame, n * 8, access, f))
		return -1;

	/* commit */
	cs.selector = (sel & 0xfffc) | newcpl;
	cs.attr |= SEG_TYPE_ACC;
	if (newcpl != cpu->cpl) {
		/* SS becomes a null selector with RPL = new CPL */
		memset(&cpu->seg[SREG_SS], 0, sizeof(cpu->seg[SREG_SS]));
		cpu->seg[SREG_SS].selector = newcpl;
	}
	cpu->seg[SREG_CS] = cs;
	cpu->cpl = newcpl;
	cpu->gpr[GPR_RSP] = rsp - n * 8;
	cpu->rflags &= ~(TRAPVM_RFLAGS_TF | TRAPVM_RFLAGS_NT |
			 TRAPVM_RFLAGS_RF | TRAPVM_RFLAGS_VM);
	if ((type & 0xf) == SYS_INT_GATE)
		cpu->rflags &= ~TRAPVM_RFLAGS_IF;
	cpu->rflags |= TRAPVM_RFLAGS_FIXED;
	cpu->rip = handler;
	cpu->interrupt_shadow = 0;
	cpu->halted = 0;
	return 0;
}

static void stat(const struct trapvm_emu_ops *ops, void *ctx, unsigned int s)
{
	if (ops->stat)
		ops->stat(ctx, s);
}

int trapvm_deliver_event(struct trapvm_cpu *cpu,
			 const struct trapvm_emu_ops *ops, void *ctx,
			 unsigned int vector, unsigned int flags, u32 err,
			 u64 push_rip)
{
	struct trapvm_fault f;
	unsigned int tries;
	int c1, c2;

	if (cpu->shutdown)
		return TRAPVM_EMU_SHUTDOWN;
	/*
	 * Only IA-32e mode delivery is implemented: guests enter in long
	 * mode and cannot leave it (clearing CR0.PG in 64-bit mode #GPs).
	 */
	if (!is_long_mode(cpu))
		goto shutdown;

	for (tries = 0; tries < 8; tries++) {
		memset(&f, 0, sizeof(f));
		if (!try_deliver(cpu, ops, ctx, vector & 0xff, flags, err,
				 push_rip, &f)) {
			if (flags & EV_IRQ)
				stat(ops, ctx, TRAPVM_STAT_INJ_IRQ);
			else if (vector == TRAPVM_PF_VECTOR &&
				 !(flags & EV_SOFT))
				stat(ops, ctx, TRAPVM_STAT_INJ_PF);
			else
				stat(ops, ctx, TRAPVM_STAT_INJ_EXCEPTION);
			return TRAPVM_EMU_EXCEPTION;
		}
		/* a fault while delivering: table 6-5 */
		c1 = exception_class(vector, flags);
		if (c1 == CLASS_DF)
			goto shutdown;
		c2 = exception_class(f.vector, 0);
		if (f.vector == TRAPVM_PF_VECTOR)
			cpu->cr2 = f.cr2;
		if ((c1 == CLASS_CONTRIB && c2 == CLASS_CONTRIB) ||
		    (c1 == CLASS_PF && (c2 == CLASS_CONTRIB || c2 == CLASS_PF))) {
			vector = TRAPVM_DF_VECTOR;
			flags = EV_ERR | EV_EXT;
			err = 0;
		} else {
			vector = f.vector;
			flags = EV_EXT | (f.has_error_code ? EV_ERR : 0);
			err = f.error_code;
		}
		/* faults while delivering report the original instruction */
		push_rip = cpu->rip;
	}
shutdown:
	cpu->shutdown = 1;
	return TRAPVM_EMU_SHUTDOWN;
}

int trapvm_deliver_exception(struct trapvm_cpu *cpu,
			     const struct trapvm_emu_ops *ops, void *ctx,
			     unsigned int vector, bool has_error_code,
			     u32 error_code)
{
	return trapvm_deliver_event(cpu, ops, ctx, vector,
				    EV_EXT | (has_error_code ? EV_ERR : 0),
				    error_code, cpu->rip);
}

int trapvm_deliver_fault(struct trapvm_cpu *cpu,
			 const struct trapvm_emu_ops *ops, void *ctx,
			 const struct trapvm_fault *fault)
{
	if (fault->vector == TRAPVM_PF_VECTOR)
		cpu->cr2 = fault->cr2;
	return trapvm_deliver_exception(cpu, ops, ctx, fault->vector,
					fault->has_error_code,
					fault->error_code);
}

int trapvm_deliver_interrupt(struct trapvm_cpu *cpu,
			     const struct trapvm_emu_ops *ops, void *ctx,
			     unsigned int vector)
{
	return trapvm_deliver_event(cpu, ops, ctx, vector, EV_EXT | EV_IRQ, 0,
				    cpu->rip);
}

int trapvm_deliver_soft_int(struct trapvm_cpu *cpu,
			    const struct trapvm_emu_ops *ops, void *ctx,
			    unsigned int vector, unsigned int insn_len)
{
	return trapvm_deliver_event(cpu, ops, ctx, vector, EV_SOFT, 0,
				    cpu->rip + insn_len);
}
