// SPDX-License-Identifier: GPL-2.0
/*
 * Segmentation for the emulator: descriptor loads from the guest's GDT
 * and LDT with the SDM's protection checks (MOV/POP Sreg, LDS and
 * friends, LLDT, LTR), far JMP/CALL/RET, IRET, SYSCALL and SYSRET.
 *
 * Guest selectors carry virtual RPLs; the world switch maps them to the
 * hardware's CPL3 selectors.  Far JMP/CALL through 64-bit call gates are
 * supported; task switches do not exist in IA-32e mode.
 */
#include "emul_internal.h"

int trapvm_read_desc(struct trapvm_cpu *cpu, const struct trapvm_emu_ops *ops,
		     void *ctx, u16 sel, bool sys16, u32 ext, u64 desc[2],
		     struct trapvm_fault *f)
{
	u32 err = (sel & 0xfffc) | ext;
	unsigned int len = sys16 ? 16 : 8;
	u64 base, limit, off = sel & 0xfff8;

	if (sel & 4) {
		if (!(cpu->ldtr.selector & 0xfffc) ||
		    !(cpu->ldtr.attr & SEG_P)) {
			set_fault(f, TRAPVM_GP_VECTOR, err);
			return -1;
		}
		base = cpu->ldtr.base;
		limit = cpu->ldtr.limit;
	} else {
		base = cpu->gdtr.base;
		limit = cpu->gdtr.limit;
	}
	if (off + len - 1 > limit || !trapvm_is_canonical(cpu, base + off) ||
	    !trapvm_is_canonical(cpu, base + off + len - 1)) {
		set_fault(f, TRAPVM_GP_VECTOR, err);
		return -1;
	}
	desc[1] = 0;
	return ops->read(ctx, base + off, desc, len, TRAPVM_ACC_IMPLICIT, f) ?
		-1 : 0;
}

void trapvm_desc_to_seg(const u64 desc[2], bool sys16, u16 sel,
			struct trapvm_seg *seg)
{
	u64 d = desc[0];
	u32 limit;

	seg->selector = sel;
	seg->attr = (d >> 40) & 0xffff;
	seg->base = ((d >> 16) & 0xffffff) | (((d >> 56) & 0xff) << 24);
	if (sys16)
		seg->base |= (desc[1] & 0xffffffffULL) << 32;
	limit = (d & 0xffff) | (((d >> 48) & 0xf) << 16);
	if (seg->attr & SEG_G)
		limit = (limit << 12) | 0xfff;
	seg->limit = limit;
}

/* Set the accessed bit (or busy, for a TSS: bit 1) in the descriptor. */
static int desc_set_bits(struct trapvm_cpu *cpu,
			 const struct trapvm_emu_ops *ops, void *ctx, u16 sel,
			 u64 desc0, u8 bits, struct trapvm_fault *f)
{
	u8 b = (desc0 >> 40) & 0xff;
	u64 base = (sel & 4) ? cpu->ldtr.base : cpu->gdtr.base;

	if ((b & bits) == bits)
		return 0;
	b |= bits;
	return ops->write(ctx, base + (sel & 0xfff8) + 5, &b, 1,
			  TRAPVM_ACC_IMPLICIT | TRAPVM_ACC_WRITE, f) ? -1 : 0;
}

int trapvm_set_desc_accessed(struct trapvm_cpu *cpu,
			     const struct trapvm_emu_ops *ops, void *ctx,
			     u16 sel, u64 desc0, struct trapvm_fault *f)
{
	return desc_set_bits(cpu, ops, ctx, sel, desc0, SEG_TYPE_ACC, f);
}

static void null_seg(struct trapvm_seg *seg, u16 sel)
{
	memset(seg, 0, sizeof(*seg));
	seg->selector = sel;
}

/*
 * Check a stack segment selector for a load at privilege @cpl (MOV SS,
 * POP SS, LSS, far RET/IRET to @cpl).  null_ok: a null SS is allowed
 * (64-bit mode, CPL < 3).  Fills *seg.
 */
static int check_ss(struct emu *e, u16 sel, unsigned int cpl, bool null_ok,
		    struct trapvm_seg *seg, u64 desc[2])
{
	struct trapvm_cpu *cpu = e->cpu;

	if (!(sel & 0xfffc)) {
		if (!null_ok || (sel & 3) != cpl)
			return emu_gp(e, 0);
		null_seg(seg, sel);
		desc[0] = 0;
		return 0;
	}
	if ((sel & 3) != cpl)
		return emu_gp(e, sel & 0xfffc);
	if (trapvm_read_desc(cpu, e->ops, e->ctx, sel, false, 0, desc,
			     &e->fault))
		return R_FAULT;
	trapvm_desc_to_seg(desc, false, sel, seg);
	if (!(seg->attr & SEG_S) || (seg->attr & SEG_TYPE_CODE) ||
	    !(seg->attr & SEG_TYPE_RW) || SEG_DPL(seg->attr) != cpl)
		return emu_gp(e, sel & 0xfffc);
	if (!(seg->attr & SEG_P))
		return emu_raise(e, TRAPVM_SS_VECTOR, true, sel & 0xfffc);
	return 0;
}

int emu_load_seg(struct emu *e, unsigned int sreg, u16 sel)
{
	struct trapvm_cpu *cpu = e->cpu;
	struct trapvm_seg seg;
	u64 desc[2];
	unsigned int dpl;
	int r;

	if (sreg != SREG_SS && !(sel & 0xfffc)) {
		/* a null data selector; Intel zeroes the base (FS/GS too) */
		null_seg(&cpu->seg[sreg], sel);
		return 0;
	}
	if (sreg == SREG_SS) {
		bool null_ok = is_long_mode(cpu) &&
			       trapvm_cpu_mode(cpu) == TRAPVM_MODE_64 &&
			       cpu->cpl != 3;

		r = check_ss(e, sel, cpu->cpl, null_ok, &seg, desc);
		if (r)
			return r;
	} else {
		if (trapvm_read_desc(cpu, e->ops, e->ctx, sel, false, 0, desc,
				     &e->fault))
			return R_FAULT;
		trapvm_desc_to_seg(desc, false, sel, &seg);
		if (!(seg.attr & SEG_S) ||
		    ((seg.attr & SEG_TYPE_CODE) && !(seg.attr & SEG_TYPE_RW)))
			return emu_gp(e, sel & 0xfffc);
		dpl = SEG_DPL(seg.attr);
		if (!((seg.attr & SEG_TYPE_CODE) &&
		      (seg.attr & SEG_TYPE_CONF)) &&
		    ((sel & 3) > dpl || cpu->cpl > dpl))
			return emu_gp(e, sel & 0xfffc);
		if (!(seg.attr & SEG_P))
			return emu_raise(e, TRAPVM_NP_VECTOR, true,
					 sel & 0xfffc);
	}
	if (sel & 0xfffc) {
		if (trapvm_set_desc_accessed(cpu, e->ops, e->ctx, sel, desc[0],
					     &e->fault))
			return R_FAULT;
		seg.attr |= SEG_TYPE_ACC;
	}
	cpu->seg[sreg] = seg;
	if (sreg == SREG_SS) {
		cpu->interrupt_shadow = 1;
		e->ss_loaded = true;
	}
	return 0;
}

/*
 * Check the target code segment of a far transfer.  For JMP/CALL the new
 * CPL is the current one; for RET/IRET it is RPL(sel), which may not be
 * more privileged than CPL.
 */
static int check_code(struct emu *e, u16 sel, bool is_ret,
		      struct trapvm_seg *cs, u64 desc[2], unsigned int *newcpl)
{
	struct trapvm_cpu *cpu = e->cpu;
	unsigned int rpl = sel & 3, dpl;

	if (!(sel & 0xfffc))
		return emu_gp(e, 0);
	if (trapvm_read_desc(cpu, e->ops, e->ctx, sel, false, 0, desc,
			     &e->fault))
		return R_FAULT;
	trapvm_desc_to_seg(desc, false, sel, cs);
	if (!(cs->attr & SEG_S) || !(cs->attr & SEG_TYPE_CODE))
		return emu_gp(e, sel & 0xfffc);
	dpl = SEG_DPL(cs->attr);
	if (is_ret) {
		if (rpl < cpu->cpl)
			return emu_gp(e, sel & 0xfffc);
		if ((cs->attr & SEG_TYPE_CONF) ? dpl > rpl : dpl != rpl)
			return emu_gp(e, sel & 0xfffc);
		*newcpl = rpl;
	} else {
		if ((cs->attr & SEG_TYPE_CONF) ? dpl > cpu->cpl :
		    (rpl > cpu->cpl || dpl != cpu->cpl))
			return emu_gp(e, sel & 0xfffc);
		*newcpl = cpu->cpl;
	}
	if (!(cs->attr & SEG_P))
		return emu_raise(e, TRAPVM_NP_VECTOR, true, sel & 0xfffc);
	if (is_long_mode(cpu) && (cs->attr & SEG_L) && (cs->attr & SEG_DB))
		return emu_gp(e, sel & 0xfffc);
	cs->selector = (sel & 0xfffc) | *newcpl;
	return 0;
}

static bool code_is_64(const struct trapvm_cpu *cpu, const struct trapvm_seg *cs)
{
	return is_long_mode(cpu) && (cs->attr & SEG_L);
}

/* Is @rip a valid target in @cs?  (canonical in 64-bit, else limit) */
static bool rip_ok(const struct trapvm_cpu *cpu, const struct trapvm_seg *cs,
		   u64 rip)
{
	if (code_is_64(cpu, cs))
		return trapvm_is_canonical(cpu, rip);
	return rip <= cs->limit;
}

static u64 le_get(const u8 *p, unsigned int size)
{
	u64 v = 0;
	unsigned int i;

	for (i = 0; i < size; i++)
		v |= (u64)p[i] << (8 * i);
	return v;
}

static void le_put(u8 *p, unsigned int size, u64 v)
{
	unsigned int i;

	for (i = 0; i < size; i++)
		p[i] = v >> (8 * i);
}

static u64 stack_mask(const struct trapvm_cpu *cpu)
{
	unsigned int s = emu_stack_size(cpu);

	return s == 8 ? ~0ULL : s == 4 ? 0xffffffffULL : 0xffffULL;
}

static void set_rsp(struct trapvm_cpu *cpu, u64 v)
{
	u64 m = stack_mask(cpu);

	cpu->gpr[GPR_RSP] = (cpu->gpr[GPR_RSP] & ~m) | (v & m);
}

/*
 * Far JMP/CALL through a 64-bit call gate (IA-32e mode, SDM JMP/CALL
 * "call gate" paths): the gate gives CS:RIP; a CALL to a more privileged
 * non-conforming segment switches to TSS.RSPn with a null SS and pushes
 * SS, RSP, CS and RIP (8 bytes each) there.
 */
static int far_via_gate(struct emu *e, bool call, u16 gsel, const u64 g0)
{
	struct trapvm_cpu *cpu = e->cpu;
	unsigned int gdpl = (g0 >> 45) & 3, dpl, newcpl = cpu->cpl;
	u64 g[2], desc[2], rip, rsp = cpu->gpr[GPR_RSP], frame[4];
	struct trapvm_seg cs;
	unsigned int n = 0;
	u16 sel;

	if (trapvm_read_desc(cpu, e->ops, e->ctx, gsel, true, 0, g, &e->fault))
		return R_FAULT;
	if (((g[0] >> 40) & 0x1f) != SYS_CALL_GATE || ((g[1] >> 40) & 0x1f))
		return emu_gp(e, gsel & 0xfffc);
	if (gdpl < cpu->cpl || gdpl < (gsel & 3))
		return emu_gp(e, gsel & 0xfffc);
	if (!((g[0] >> 47) & 1))
		return emu_raise(e, TRAPVM_NP_VECTOR, true, gsel & 0xfffc);
	sel = (g[0] >> 16) & 0xffff;
	rip = (g[0] & 0xffff) | ((g[0] >> 32) & 0xffff0000ULL) | (g[1] << 32);
	if (!(sel & 0xfffc))
		return emu_gp(e, 0);
	if (trapvm_read_desc(cpu, e->ops, e->ctx, sel, false, 0, desc,
			     &e->fault))
		return R_FAULT;
	trapvm_desc_to_seg(desc, false, sel, &cs);
	dpl = SEG_DPL(cs.attr);
	if (!(cs.attr & SEG_S) || !(cs.attr & SEG_TYPE_CODE) ||
	    dpl > cpu->cpl || !(cs.attr & SEG_L) || (cs.attr & SEG_DB))
		return emu_gp(e, sel & 0xfffc);
	if (!(cs.attr & SEG_TYPE_CONF) && dpl < cpu->cpl) {
		if (!call)	/* JMP never changes privilege */
			return emu_gp(e, sel & 0xfffc);
		newcpl = dpl;
	}
	if (!(cs.attr & SEG_P))
		return emu_raise(e, TRAPVM_NP_VECTOR, true, sel & 0xfffc);
	if (!trapvm_is_canonical(cpu, rip))
		return emu_gp(e, 0);

	if (call) {
		unsigned int access = newcpl == 3 ? TRAPVM_ACC_USER : 0;

		if (newcpl != cpu->cpl) {
			u64 off = 4 + 8 * newcpl;

			if (!(cpu->tr.attr & SEG_P) || off + 7 > cpu->tr.limit)
				return emu_raise(e, TRAPVM_TS_VECTOR, true,
						 cpu->tr.selector & 0xfffc);
			if (e->ops->read(e->ctx, cpu->tr.base + off, &rsp, 8,
					 TRAPVM_ACC_IMPLICIT, &e->fault))
				return R_FAULT;
			frame[n++] = e->next_rip;
			frame[n++] = cpu->seg[SREG_CS].selector;
			frame[n++] = cpu->gpr[GPR_RSP];
			frame[n++] = cpu->seg[SREG_SS].selector;
		} else {
			frame[n++] = e->next_rip;
			frame[n++] = cpu->seg[SREG_CS].selector;
		}
		if (!trapvm_is_canonical(cpu, rsp - 8 * n) ||
		    !trapvm_is_canonical(cpu, rsp - 1))
			return emu_raise(e, TRAPVM_SS_VECTOR, true, 0);
		if (e->ops->write(e->ctx, rsp - 8 * n, frame, 8 * n,
				  access | TRAPVM_ACC_WRITE, &e->fault))
			return R_FAULT;
	}
	if (trapvm_set_desc_accessed(cpu, e->ops, e->ctx, sel, desc[0],
				     &e->fault))
		return R_FAULT;
	cs.attr |= SEG_TYPE_ACC;
	cs.selector = (sel & 0xfffc) | newcpl;
	if (newcpl != cpu->cpl) {
		null_seg(&cpu->seg[SREG_SS], newcpl);
		cpu->cpl = newcpl;
	}
	cpu->seg[SREG_CS] = cs;
	cpu->gpr[GPR_RSP] = rsp - 8 * n;
	cpu->rip = rip;
	return R_JUMPED;
}

int emu_far_jmp_call(struct emu *e, bool call)
{
	struct trapvm_cpu *cpu = e->cpu;
	struct trapvm_insn *insn = &e->insn;
	unsigned int os = insn->opsize, newcpl;
	struct trapvm_seg cs;
	u8 buf[16];
	u64 desc[2], rip, rsp;
	u16 sel;
	int r;

	if (insn->map == TRAPVM_MAP_1B && (insn->opcode == 0xea ||
					   insn->opcode == 0x9a)) {
		rip = insn->imm;
		sel = insn->imm2;
	} else {
		if (insn->mod == 3)
			return emu_ud(e);
		r = emu_read(e, trapvm_insn_seg(insn),
			     trapvm_insn_ea(cpu, insn, cpu->rip), buf, os + 2);
		if (r)
			return r;
		rip = le_get(buf, os);
		sel = le_get(buf + os, 2);
	}
	if (is_long_mode(cpu) && (sel & 0xfffc)) {
		/* a system descriptor: only 64-bit call gates exist here */
		if (trapvm_read_desc(cpu, e->ops, e->ctx, sel, false, 0, desc,
				     &e->fault))
			return R_FAULT;
		if (!(desc[0] & BIT_ULL(44)))
			return far_via_gate(e, call, sel, desc[0]);
	}
	r = check_code(e, sel, false, &cs, desc, &newcpl);
	if (r)
		return r;
	if (!rip_ok(cpu, &cs, rip))
		return emu_gp(e, 0);
	if (call) {
		rsp = (cpu->gpr[GPR_RSP] - 2 * os) & stack_mask(cpu);
		le_put(buf, os, e->next_rip);
		le_put(buf + os, os, cpu->seg[SREG_CS].selector);
		r = emu_write(e, SREG_SS, rsp, buf, 2 * os);
		if (r)
			return r;
	}
	if (trapvm_set_desc_accessed(cpu, e->ops, e->ctx, sel, desc[0],
				     &e->fault))
		return R_FAULT;
	cs.attr |= SEG_TYPE_ACC;
	if (call)
		set_rsp(cpu, cpu->gpr[GPR_RSP] - 2 * os);
	cpu->seg[SREG_CS] = cs;
	cpu->rip = rip;
	return R_JUMPED;
}

/* Null ES/DS/FS/GS the new, less privileged CPL may not use. */
static void null_data_segs(struct trapvm_cpu *cpu)
{
	static const u8 segs[] = { SREG_ES, SREG_DS, SREG_FS, SREG_GS };
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(segs); i++) {
		struct trapvm_seg *s = &cpu->seg[segs[i]];
		u16 a = s->attr;

		if (!(s->selector & 0xfffc))
			continue;
		if ((a & SEG_TYPE_CODE) && (a & SEG_TYPE_CONF))
			continue;
		if (SEG_DPL(a) < cpu->cpl) {
			/* the base stays, as the SDM leaves it undefined */
			s->selector = 0;
			s->attr = 0;
		}
	}
}

/* Common tail of far RET and IRET to an outer level: pop SS:RSP. */
static int outer_ss(struct emu *e, u16 ss_sel, unsigned int newcpl,
		    const struct trapvm_seg *cs, struct trapvm_seg *ss,
		    u64 desc[2])
{
	bool null_ok = code_is_64(e->cpu, cs) && newcpl != 3;

	return check_ss(e, ss_sel, newcpl, null_ok, ss, desc);
}

int emu_far_ret(struct emu *e)
{
	struct trapvm_cpu *cpu = e->cpu;
	struct trapvm_insn *insn = &e->insn;
	unsigned int os = insn->opsize, newcpl;
	u64 imm = insn->opcode == 0xca ? insn->imm : 0;
	u64 desc[2], ssdesc[2], rip, rsp = cpu->gpr[GPR_RSP], newrsp;
	struct trapvm_seg cs, ss;
	u8 buf[32];
	u16 sel, ss_sel;
	int r;

	r = emu_read(e, SREG_SS, rsp & stack_mask(cpu), buf, 2 * os);
	if (r)
		return r;
	rip = le_get(buf, os);
	sel = le_get(buf + os, 2);
	r = check_code(e, sel, true, &cs, desc, &newcpl);
	if (r)
		return r;
	if (!rip_ok(cpu, &cs, rip))
		return emu_gp(e, 0);
	newrsp = rsp + 2 * os + imm;
	if (newcpl != cpu->cpl) {
		r = emu_read(e, SREG_SS, newrsp & stack_mask(cpu), buf, 2 * os);
		if (r)
			return r;
		ss_sel = le_get(buf + os, 2);
		r = outer_ss(e, ss_sel, newcpl, &cs, &ss, ssdesc);
		if (r)
			return r;
		newrsp = le_get(buf, os) + imm;
		if (ss_sel & 0xfffc) {
			if (trapvm_set_desc_accessed(cpu, e->ops, e->ctx, ss_sel,
						     ssdesc[0], &e->fault))
				return R_FAULT;
			ss.attr |= SEG_TYPE_ACC;
		}
	}
	if (trapvm_set_desc_accessed(cpu, e->ops, e->ctx, sel, desc[0],
				     &e->fault))
		return R_FAULT;
	cs.attr |= SEG_TYPE_ACC;
	cpu->seg[SREG_CS] = cs;
	cpu->rip = rip;
	if (newcpl != cpu->cpl) {
		cpu->seg[SREG_SS] = ss;
		cpu->cpl = newcpl;
		cpu->gpr[GPR_RSP] = newrsp;
		null_data_segs(cpu);
	} else {
		set_rsp(cpu, newrsp);
	}
	return R_JUMPED;
}

int emu_iret(struct emu *e)
{
	struct trapvm_cpu *cpu = e->cpu;
	unsigned int os = e->insn.opsize, newcpl, oldcpl = cpu->cpl;
	u64 desc[2], ssdesc[2], rip, rfl, newrsp = 0, mask, rsp;
	bool mode64 = e->insn.mode == TRAPVM_MODE_64, pop_ss;
	struct trapvm_seg cs, ss;
	u8 buf[40];
	u16 sel, ss_sel = 0;
	int r;

	/* no task switches in IA-32e mode; legacy mode is not emulated */
	if (!is_long_mode(cpu) || (cpu->rflags & TRAPVM_RFLAGS_NT))
		return emu_gp(e, 0);

	rsp = cpu->gpr[GPR_RSP] & stack_mask(cpu);
	r = emu_read(e, SREG_SS, rsp, buf, 3 * os);
	if (r)
		return r;
	rip = le_get(buf, os);
	sel = le_get(buf + os, 2);
	rfl = le_get(buf + 2 * os, os);
	r = check_code(e, sel, true, &cs, desc, &newcpl);
	if (r)
		return r;
	pop_ss = mode64 || newcpl != oldcpl;
	if (pop_ss) {
		r = emu_read(e, SREG_SS, (rsp + 3 * os) & stack_mask(cpu),
			     buf + 3 * os, 2 * os);
		if (r)
			return r;
		newrsp = le_get(buf + 3 * os, os);
		ss_sel = le_get(buf + 4 * os, 2);
		r = outer_ss(e, ss_sel, newcpl, &cs, &ss, ssdesc);
		if (r)
			return r;
	}
	if (!rip_ok(cpu, &cs, rip))
		return emu_gp(e, 0);

	if (trapvm_set_desc_accessed(cpu, e->ops, e->ctx, sel, desc[0],
				     &e->fault))
		return R_FAULT;
	cs.attr |= SEG_TYPE_ACC;
	if (pop_ss && (ss_sel & 0xfffc)) {
		if (trapvm_set_desc_accessed(cpu, e->ops, e->ctx, ss_sel,
					     ssdesc[0], &e->fault))
			return R_FAULT;
		ss.attr |= SEG_TYPE_ACC;
	}

	/* RFLAGS, with the privilege rules of the CPL before the return */
	mask = TRAPVM_RFLAGS_CF | BIT_ULL(2) | BIT_ULL(4) | BIT_ULL(6) |
	       BIT_ULL(7) | TRAPVM_RFLAGS_TF | TRAPVM_RFLAGS_DF |
	       TRAPVM_RFLAGS_OF | TRAPVM_RFLAGS_NT | TRAPVM_RFLAGS_RF |
	       TRAPVM_RFLAGS_AC | TRAPVM_RFLAGS_ID;
	if (oldcpl == 0)
		mask |= TRAPVM_RFLAGS_IF | TRAPVM_RFLAGS_IOPL |
			TRAPVM_RFLAGS_VIF | TRAPVM_RFLAGS_VIP;
	else if (oldcpl <= ((cpu->rflags & TRAPVM_RFLAGS_IOPL) >> 12))
		mask |= TRAPVM_RFLAGS_IF;
	if (os == 2)
		mask &= 0xffff;
	cpu->rflags = (cpu->rflags & ~mask) | (rfl & mask) |
		      TRAPVM_RFLAGS_FIXED;

	cpu->seg[SREG_CS] = cs;
	cpu->rip = rip;
	if (pop_ss) {
		cpu->seg[SREG_SS] = ss;
		if (os == 2)
			cpu->gpr[GPR_RSP] = (cpu->gpr[GPR_RSP] & ~0xffffULL) |
					    (newrsp & 0xffff);
		else
			cpu->gpr[GPR_RSP] = newrsp;
	} else {
		cpu->gpr[GPR_RSP] = (rsp + 3 * os) & stack_mask(cpu);
	}
	cpu->cpl = newcpl;
	if (newcpl > oldcpl)
		null_data_segs(cpu);
	return R_JUMPED;
}

int emu_sysret(struct emu *e)
{
	struct trapvm_cpu *cpu = e->cpu;
	u16 base = cpu->star >> 48;
	u64 rcx = cpu->gpr[GPR_RCX];

	if (e->insn.mode != TRAPVM_MODE_64 || !(cpu->efer & TRAPVM_EFER_SCE))
		return emu_ud(e);
	if (cpu->cpl != 0)
		return emu_gp(e, 0);
	if (e->insn.opsize == 8) {
		if (!trapvm_is_canonical(cpu, rcx))
			return emu_gp(e, 0);
		cpu->seg[SREG_CS].selector = (base + 16) | 3;
		cpu->seg[SREG_CS].attr = ATTR_CODE64(3);
		cpu->rip = rcx;
	} else {
		cpu->seg[SREG_CS].selector = base | 3;
		cpu->seg[SREG_CS].attr = ATTR_CODE32(3);
		cpu->rip = rcx & 0xffffffffULL;
	}
	cpu->seg[SREG_CS].base = 0;
	cpu->seg[SREG_CS].limit = 0xffffffff;
	cpu->seg[SREG_SS].selector = (base + 8) | 3;
	cpu->seg[SREG_SS].attr = ATTR_DATA(3);
	cpu->seg[SREG_SS].base = 0;
	cpu->seg[SREG_SS].limit = 0xffffffff;
	cpu->rflags = (cpu->gpr[GPR_R11] & 0x3c7fd7ULL) | TRAPVM_RFLAGS_FIXED;
	cpu->cpl = 3;
	return R_JUMPED;
}

/* Flat CS and SS for SYSENTER/SYSEXIT/SYSRET-style transitions. */
static void flat_cs_ss(struct trapvm_cpu *cpu, u16 cs, u16 cs_attr, u16 ss,
		       unsigned int dpl)
{
	cpu->seg[SREG_CS].selector = cs;
	cpu->seg[SREG_CS].attr = cs_attr;
	cpu->seg[SREG_CS].base = 0;
	cpu->seg[SREG_CS].limit = 0xffffffff;
	cpu->seg[SREG_SS].selector = ss;
	cpu->seg[SREG_SS].attr = ATTR_DATA(dpl);
	cpu->seg[SREG_SS].base = 0;
	cpu->seg[SREG_SS].limit = 0xffffffff;
	cpu->cpl = dpl;
}

/* SYSENTER (SDM vol. 2B), IA-32e mode: into 64-bit code at CPL0. */
int emu_sysenter(struct emu *e)
{
	struct trapvm_cpu *cpu = e->cpu;
	u16 cs = cpu->sysenter_cs;
	bool lm = is_long_mode(cpu);

	if (!(cpu->cr0 & TRAPVM_CR0_PE) || !(cs & 0xfffc))
		return emu_gp(e, 0);
	cpu->rflags &= ~(TRAPVM_RFLAGS_VM | TRAPVM_RFLAGS_IF |
			 TRAPVM_RFLAGS_RF);
	flat_cs_ss(cpu, cs & 0xfffc, lm ? ATTR_CODE64(0) : ATTR_CODE32(0),
		   (cs & 0xfffc) + 8, 0);
	if (lm) {
		cpu->gpr[GPR_RSP] = cpu->sysenter_esp;
		cpu->rip = cpu->sysenter_eip;
	} else {
		cpu->gpr[GPR_RSP] = cpu->sysenter_esp & 0xffffffffULL;
		cpu->rip = cpu->sysenter_eip & 0xffffffffULL;
	}
	return R_JUMPED;
}

/* SYSEXIT: back to CPL3, 64-bit with REX.W (RIP = RDX, RSP = RCX). */
int emu_sysexit(struct emu *e)
{
	struct trapvm_cpu *cpu = e->cpu;
	u16 cs = cpu->sysenter_cs;

	if (!(cpu->cr0 & TRAPVM_CR0_PE) || !(cs & 0xfffc) || cpu->cpl != 0)
		return emu_gp(e, 0);
	if (e->insn.opsize == 8) {
		if (!trapvm_is_canonical(cpu, cpu->gpr[GPR_RDX]) ||
		    !trapvm_is_canonical(cpu, cpu->gpr[GPR_RCX]))
			return emu_gp(e, 0);
		flat_cs_ss(cpu, (cs + 32) | 3, ATTR_CODE64(3), (cs + 40) | 3, 3);
		cpu->rip = cpu->gpr[GPR_RDX];
		cpu->gpr[GPR_RSP] = cpu->gpr[GPR_RCX];
	} else {
		flat_cs_ss(cpu, (cs + 16) | 3, ATTR_CODE32(3), (cs + 24) | 3, 3);
		cpu->rip = cpu->gpr[GPR_RDX] & 0xffffffffULL;
		cpu->gpr[GPR_RSP] = cpu->gpr[GPR_RCX] & 0xffffffffULL;
	}
	return R_JUMPED;
}

int trapvm_emulate_syscall(struct trapvm_cpu *cpu,
			   const struct trapvm_emu_ops *ops, void *ctx)
{
	u16 base = cpu->star >> 32;

	if (cpu->shutdown)
		return TRAPVM_EMU_SHUTDOWN;
	if (trapvm_cpu_mode(cpu) != TRAPVM_MODE_64 ||
	    !(cpu->efer & TRAPVM_EFER_SCE))
		return trapvm_deliver_exception(cpu, ops, ctx,
						TRAPVM_UD_VECTOR, false, 0);
	cpu->gpr[GPR_RCX] = cpu->rip + 2;
	cpu->gpr[GPR_R11] = cpu->rflags & ~TRAPVM_RFLAGS_RF;
	cpu->rflags &= ~(cpu->sfmask | TRAPVM_RFLAGS_RF);
	cpu->rflags |= TRAPVM_RFLAGS_FIXED;
	cpu->seg[SREG_CS].selector = base & 0xfffc;
	cpu->seg[SREG_CS].attr = ATTR_CODE64(0);
	cpu->seg[SREG_CS].base = 0;
	cpu->seg[SREG_CS].limit = 0xffffffff;
	cpu->seg[SREG_SS].selector = (base + 8) & 0xfffc;
	cpu->seg[SREG_SS].attr = ATTR_DATA(0);
	cpu->seg[SREG_SS].base = 0;
	cpu->seg[SREG_SS].limit = 0xffffffff;
	cpu->cpl = 0;
	cpu->rip = cpu->lstar;
	cpu->interrupt_shadow = 0;
	if (ops->stat)
		ops->stat(ctx, TRAPVM_STAT_EMUL_TOTAL);
	return TRAPVM_EMU_CONTINUE;
}

int emu_lldt_ltr(struct emu *e, bool ltr)
{
	struct trapvm_cpu *cpu = e->cpu;
	bool lm = is_long_mode(cpu);
	struct trapvm_seg seg;
	u64 desc[2];
	u16 sel;
	int r;

	if (cpu->cpl != 0)
		return emu_gp(e, 0);
	r = emu_read_rm16(e, &sel);
	if (r)
		return r;
	if (!(sel & 0xfffc)) {
		if (ltr)
			return emu_gp(e, 0);
		null_seg(&cpu->ldtr, sel);
		return R_NEXT;
	}
	if (sel & 4)
		return emu_gp(e, sel & 0xfffc);
	if (trapvm_read_desc(cpu, e->ops, e->ctx, sel, lm, 0, desc, &e->fault))
		return R_FAULT;
	trapvm_desc_to_seg(desc, lm, sel, &seg);
	if ((seg.attr & SEG_S) ||
	    SEG_TYPE(seg.attr) != (ltr ? SYS_TSS_AVAIL : SYS_LDT))
		return emu_gp(e, sel & 0xfffc);
	if (!(seg.attr & SEG_P))
		return emu_raise(e, TRAPVM_NP_VECTOR, true, sel & 0xfffc);
	if (lm && (((desc[1] >> 40) & 0x1f) ||
		   !trapvm_is_canonical(cpu, seg.base)))
		return emu_gp(e, sel & 0xfffc);
	if (ltr) {
		if (desc_set_bits(cpu, e->ops, e->ctx, sel, desc[0], 2,
				  &e->fault))
			return R_FAULT;
		seg.attr |= 2;		/* busy */
		cpu->tr = seg;
	} else {
		cpu->ldtr = seg;
	}
	return R_NEXT;
}
