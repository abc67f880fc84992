// SPDX-License-Identifier: GPL-2.0
/*
 * Ordinary data instructions with a memory operand, for when a guest
 * access has to be carried out by the emulator instead of the hardware:
 * the shadow MMU cannot let the hardware do it (an EMULATE result), the
 * address is device memory (MMIO), or the page is write-protected.
 *
 * MOV (and MOVZX/MOVSX/MOVSXD/MOVNTI), XCHG, CMPXCHG, XADD, the ALU group
 * (ADD OR ADC SBB AND SUB XOR CMP TEST), INC/DEC/NOT/NEG, BT/BTS/BTR/BTC,
 * and MOVS/STOS/LODS with REP.  Flags follow the SDM's definitions for
 * each instruction; flags the SDM leaves undefined are left unchanged.
 *
 * Atomicity: a LOCK-prefixed read-modify-write, XCHG with memory (locked
 * whether prefixed or not) and CMPXCHG are atomic against other vCPUs, as
 * the SDM requires of locked operations (Vol. 3A 9.1.2): the operand is
 * read, the result computed, and the write-back is ops->cmpxchg of the
 * value read against memory.  If another vCPU (its emulated write, its
 * native store, the MMU setting A/D flags) changed the operand meanwhile,
 * nothing is written and the instruction is not executed at all
 * (R_RETRY: RIP, registers and flags as they were): the guest runs it
 * again, natively or through here.  Non-locked read-modify-writes are
 * done as a read then a write, which the hardware does not make atomic
 * either.  Locked operations on device memory are not emulated (as any
 * read-modify-write of MMIO: unhandled).
 *
 * MMIO: a plain load or store (MOV forms) whose address the ops report
 * as TRAPVM_ACCESS_MMIO becomes a TRAPVM_EMU_MMIO result; anything else
 * touching MMIO is left unhandled.
 */
#include "emul_internal.h"

#define FL_ARITH	(TRAPVM_RFLAGS_CF | BIT_ULL(2) | BIT_ULL(4) | \
			 BIT_ULL(6) | BIT_ULL(7) | TRAPVM_RFLAGS_OF)
#define FL_PF		BIT_ULL(2)
#define FL_AF		BIT_ULL(4)
#define FL_ZF		BIT_ULL(6)
#define FL_SF		BIT_ULL(7)

enum alu_op { ALU_ADD, ALU_OR, ALU_ADC, ALU_SBB, ALU_AND, ALU_SUB, ALU_XOR,
	      ALU_CMP };

static u64 size_mask(unsigned int size)
{
	return size == 8 ? ~0ULL : (1ULL << (size * 8)) - 1;
}

static u64 sext(u64 v, unsigned int size)
{
	switch (size) {
	case 1:
		return (u64)(s64)(s8)v;
	case 2:
		return (u64)(s64)(s16)v;
	case 4:
		return (u64)(s64)(s32)v;
	default:
		return v;
	}
}

/* SF, ZF, PF of a result; the caller adds CF, OF, AF. */
static u64 szp(u64 r, unsigned int size)
{
	u64 f = 0;
	u8 low = r;

	r &= size_mask(size);
	if (!r)
		f |= FL_ZF;
	if (r >> (size * 8 - 1))
		f |= FL_SF;
	low ^= low >> 4;
	low ^= low >> 2;
	low ^= low >> 1;
	if (!(low & 1))
		f |= FL_PF;
	return f;
}

static void set_flags(struct trapvm_cpu *cpu, u64 mask, u64 val)
{
	cpu->rflags = (cpu->rflags & ~mask) | (val & mask);
}

/* a OP b with the SDM's flag results (all of CF PF AF ZF SF OF). */
static u64 alu(struct trapvm_cpu *cpu, enum alu_op op, u64 a, u64 b,
	       unsigned int size)
{
	u64 m = size_mask(size), top = 1ULL << (size * 8 - 1);
	u64 c = cpu->rflags & TRAPVM_RFLAGS_CF, r, f = 0;

	a &= m;
	b &= m;
	switch (op) {
	case ALU_ADD:
	case ALU_ADC:
		if (op == ALU_ADD)
			c = 0;
		r = (a + b + c) & m;
		if (r < a || (c && r == a))
			f |= TRAPVM_RFLAGS_CF;
		if ((a ^ r) & (b ^ r) & top)
			f |= TRAPVM_RFLAGS_OF;
		f |= (a ^ b ^ r) & FL_AF;
		break;
	case ALU_SUB:
	case ALU_CMP:
	case ALU_SBB:
		if (op != ALU_SBB)
			c = 0;
		r = (a - b - c) & m;
		if (a < b || (c && a == b))
			f |= TRAPVM_RFLAGS_CF;
		if ((a ^ b) & (a ^ r) & top)
			f |= TRAPVM_RFLAGS_OF;
		f |= (a ^ b ^ r) & FL_AF;
		break;
	case ALU_AND:
		r = a & b;
		break;
	case ALU_OR:
		r = a | b;
		break;
	default:
		r = a ^ b;
		break;
	}
	f |= szp(r, size);
	if (op == ALU_AND || op == ALU_OR || op == ALU_XOR)
		set_flags(cpu, FL_ARITH & ~FL_AF, f);	/* AF undefined */
	else
		set_flags(cpu, FL_ARITH, f);
	return r;
}

struct dop {
	struct emu *e;
	unsigned int seg;
	u64 off;
	bool locked;		/* LOCK prefix: atomic write-backs */
};

static int mem_read(struct dop *d, u64 off, unsigned int size, u64 *v)
{
	u8 b[8];
	int r = emu_read(d->e, d->seg, off, b, size);
	unsigned int i;

	if (r)
		return r;
	*v = 0;
	for (i = 0; i < size; i++)
		*v |= (u64)b[i] << (8 * i);
	return 0;
}

static int mem_write(struct dop *d, u64 off, unsigned int size, u64 v)
{
	u8 b[8];
	unsigned int i;

	for (i = 0; i < size; i++)
		b[i] = v >> (8 * i);
	return emu_write(d->e, d->seg, off, b, size);
}

/*
 * Write back @v, the result of a read-modify-write of the value @old read
 * at @off: atomically (memory must still hold @old, else R_RETRY) if
 * @atomic, else a plain store.
 */
static int rmw_write(struct dop *d, u64 off, unsigned int size, u64 old,
		     u64 v, bool atomic)
{
	if (atomic)
		return emu_cmpxchg(d->e, d->seg, off, old, v, size);
	return mem_write(d, off, size, v);
}

/* Is LOCK allowed for this (memory-destination) instruction? */
static bool lockable(const struct trapvm_insn *insn)
{
	u8 op = insn->opcode;

	if (insn->map == TRAPVM_MAP_0F)
		return op == 0xb0 || op == 0xb1 || op == 0xc0 || op == 0xc1 ||
		       op == 0xab || op == 0xb3 || op == 0xbb ||
		       (op == 0xba && (insn->reg & 7) >= 5);
	if (op < 0x40)
		return (op & 7) <= 1 && (op >> 3) != ALU_CMP;
	switch (op) {
	case 0x80: case 0x81: case 0x83:
		return (insn->reg & 7) != ALU_CMP;
	case 0x86: case 0x87:
		return true;
	case 0xf6: case 0xf7:
		return (insn->reg & 7) == 2 || (insn->reg & 7) == 3;
	case 0xfe: case 0xff:
		return (insn->reg & 7) <= 1;
	}
	return false;
}

/* MMIO load: remember where the value goes (trapvm_emulate_mmio_complete) */
static int mmio_load(struct dop *d, unsigned int len, unsigned int reg,
		     unsigned int dst_size, bool sign)
{
	struct trapvm_emu_result *res = d->e->res;

	res->mmio.is_write = 0;
	res->mmio.len = len;
	res->mmio.reg = reg;
	res->mmio.dst_size = dst_size;
	res->mmio.sign = sign;
	res->mmio.next_rip = d->e->next_rip;
	return R_MMIO_READY;
}

static int mmio_store(struct dop *d, unsigned int len, u64 v)
{
	struct trapvm_emu_result *res = d->e->res;
	unsigned int i;

	res->mmio.is_write = 1;
	res->mmio.len = len;
	for (i = 0; i < len; i++)
		res->mmio.data[i] = v >> (8 * i);
	d->e->cpu->rip = d->e->next_rip;
	return R_MMIO_READY;
}

/* MOV-type loads into a register: MMIO may complete them later. */
static int load_reg(struct dop *d, unsigned int size, unsigned int reg,
		    unsigned int dst_size, bool sign)
{
	u64 v;
	int r = mem_read(d, d->off, size, &v);

	if (r == R_MMIO)
		return mmio_load(d, size, reg, dst_size, sign);
	if (r)
		return r;
	emu_reg_write(d->e, reg, dst_size, sign ? sext(v, size) : v);
	return R_NEXT;
}

static int store(struct dop *d, unsigned int size, u64 v)
{
	int r = mem_write(d, d->off, size, v);

	if (r == R_MMIO)
		return mmio_store(d, size, v);
	return r ? r : R_NEXT;
}

static int do_alu_mem(struct dop *d, enum alu_op op, unsigned int size,
		      u64 src)
{
	struct trapvm_cpu *cpu = d->e->cpu;
	u64 v, res;
	int r = mem_read(d, d->off, size, &v);

	if (r)
		return r;
	res = alu(cpu, op, v, src, size);
	if (op == ALU_CMP)
		return R_NEXT;
	r = rmw_write(d, d->off, size, v, res, d->locked);
	return r ? r : R_NEXT;
}

/* BT/BTS/BTR/BTC: 0 test, 1 set, 2 reset, 3 complement. */
static int do_bit(struct dop *d, unsigned int kind, unsigned int size,
		  s64 bit, bool reg_offset)
{
	struct trapvm_cpu *cpu = d->e->cpu;
	unsigned int bits = size * 8;
	u64 off = d->off, v, old, mask;
	int r;

	if (reg_offset) {
		/* a register offset reaches outside the operand (signed) */
		s64 idx = bit >= 0 ? bit / bits : -((-bit + bits - 1) / bits);

		off += (u64)(idx * (s64)size);
		bit -= idx * bits;
	} else {
		bit &= bits - 1;
	}
	r = mem_read(d, off, size, &v);
	if (r)
		return r;
	mask = 1ULL << bit;
	set_flags(cpu, TRAPVM_RFLAGS_CF, (v & mask) ? TRAPVM_RFLAGS_CF : 0);
	if (!kind)
		return R_NEXT;
	old = v;
	v = kind == 1 ? v | mask : kind == 2 ? v & ~mask : v ^ mask;
	r = rmw_write(d, off, size, old, v, d->locked);
	return r ? r : R_NEXT;
}

static u64 admask(unsigned int adsize)
{
	return adsize == 8 ? ~0ULL : adsize == 4 ? 0xffffffffULL : 0xffffULL;
}

/* MOVS/STOS/LODS, up to 64 elements per call; REP re-executes. */
static int do_string(struct emu *e, u8 op)
{
	struct trapvm_cpu *cpu = e->cpu;
	struct trapvm_insn *insn = &e->insn;
	unsigned int size = (op & 1) ? insn->opsize : 1, i;
	bool rep = insn->prefixes & (TRAPVM_PFX_REP | TRAPVM_PFX_REPNE);
	u64 am = admask(insn->adsize), count = 1, done = 0, v = 0;
	s64 step = (cpu->rflags & TRAPVM_RFLAGS_DF) ? -(s64)size : (s64)size;
	struct dop src = { .e = e, .seg = trapvm_insn_seg(insn) };
	struct dop dst = { .e = e, .seg = SREG_ES };
	int r = 0;

	if (rep) {
		count = cpu->gpr[GPR_RCX] & am;
		if (!count)
			return R_NEXT;
	}
	if (count > 64)
		count = 64;
	for (i = 0; i < count; i++) {
		u64 si = (cpu->gpr[GPR_RSI] + done * step) & am;
		u64 di = (cpu->gpr[GPR_RDI] + done * step) & am;

		if (op == 0xa4 || op == 0xa5) {		/* MOVS */
			r = mem_read(&src, si, size, &v);
			if (!r)
				r = mem_write(&dst, di, size, v);
		} else if (op == 0xaa || op == 0xab) {	/* STOS */
			r = mem_write(&dst, di, size, cpu->gpr[GPR_RAX]);
		} else {				/* LODS */
			r = mem_read(&src, si, size, &v);
			if (!r)
				emu_reg_write(e, GPR_RAX, size, v);
		}
		if (r)
			break;
		done++;
	}
	if (op != 0xaa && op != 0xab)
		emu_reg_write(e, GPR_RSI, insn->adsize,
			      cpu->gpr[GPR_RSI] + done * step);
	if (op != 0xac && op != 0xad)
		emu_reg_write(e, GPR_RDI, insn->adsize,
			      cpu->gpr[GPR_RDI] + done * step);
	if (rep)
		emu_reg_write(e, GPR_RCX, insn->adsize,
			      (cpu->gpr[GPR_RCX] & am) - done);
	if (r == R_MMIO)	/* device memory: not for string ops */
		return done ? R_JUMPED : R_UNHANDLED;
	if (r)
		return r;		/* the elements before it are done */
	if (rep && (cpu->gpr[GPR_RCX] & am))
		return R_JUMPED;	/* RIP stays: the rest restarts */
	return R_NEXT;
}

static u64 greg(struct emu *e, unsigned int size)
{
	return emu_reg_read(e, e->insn.reg, size);
}

int emu_data(struct emu *e)
{
	struct trapvm_cpu *cpu = e->cpu;
	struct trapvm_insn *insn = &e->insn;
	unsigned int os = insn->opsize, size, sub = insn->reg & 7;
	struct dop d = { .e = e };
	u64 rflags = cpu->rflags;
	u8 op = insn->opcode;
	u64 v, imm;
	int r;

	if (insn->map == TRAPVM_MAP_1B && op >= 0xa4 && op <= 0xad &&
	    op != 0xa8 && op != 0xa9) {
		if (op == 0xa6 || op == 0xa7)
			return R_UNHANDLED;		/* CMPS */
		if (insn->prefixes & TRAPVM_PFX_LOCK)
			return emu_ud(e);
		e->res->insn_class = TRAPVM_INSN_DATA;
		emu_stat(e, TRAPVM_STAT_EMUL_OTHER);
		return do_string(e, op);
	}

	/* everything else: a memory operand (ModRM) or a moffs */
	if (insn->map == TRAPVM_MAP_1B && op >= 0xa0 && op <= 0xa3) {
		d.seg = insn->seg_override != TRAPVM_SEG_NONE ?
			insn->seg_override : SREG_DS;
		d.off = (u64)insn->disp & admask(insn->adsize);
	} else {
		if (!insn->has_modrm || insn->mod == 3)
			return R_UNHANDLED;
		d.seg = trapvm_insn_seg(insn);
		d.off = trapvm_insn_ea(cpu, insn, cpu->rip);
	}
	if ((insn->prefixes & TRAPVM_PFX_LOCK) && !lockable(insn))
		return emu_ud(e);
	d.locked = insn->prefixes & TRAPVM_PFX_LOCK;

	if (insn->map == TRAPVM_MAP_0F) {
		switch (op) {
		case 0xb6: case 0xb7:		/* MOVZX */
		case 0xbe: case 0xbf:		/* MOVSX */
			size = (op & 1) ? 2 : 1;
			r = load_reg(&d, size, insn->reg, os, op >= 0xbe);
			break;
		case 0xc3:			/* MOVNTI */
			r = store(&d, os, greg(e, os));
			break;
		case 0xb0: case 0xb1: {		/* CMPXCHG */
			u64 acc;

			size = op == 0xb0 ? 1 : os;
			r = mem_read(&d, d.off, size, &v);
			if (r)
				break;
			acc = emu_reg_read(e, GPR_RAX, size);
			alu(cpu, ALU_CMP, acc, v, size);
			/*
			 * Compared against memory atomically, LOCK or not;
			 * on a mismatch the destination is written back.
			 */
			if (cpu->rflags & FL_ZF) {
				r = rmw_write(&d, d.off, size, v,
					      greg(e, size), true);
			} else {
				r = rmw_write(&d, d.off, size, v, v, true);
				if (!r)
					emu_reg_write(e, GPR_RAX, size, v);
			}
			r = r ? r : R_NEXT;
			break;
		}
		case 0xc0: case 0xc1: {		/* XADD */
			u64 sum, src;

			size = op == 0xc0 ? 1 : os;
			r = mem_read(&d, d.off, size, &v);
			if (r)
				break;
			src = greg(e, size);
			sum = alu(cpu, ALU_ADD, v, src, size);
			r = rmw_write(&d, d.off, size, v, sum, d.locked);
			if (r)
				break;
			emu_reg_write(e, insn->reg, size, v);
			r = R_NEXT;
			break;
		}
		case 0xa3: case 0xab: case 0xb3: case 0xbb:
			r = do_bit(&d, ((op >> 3) & 3), os,
				   (s64)sext(greg(e, os), os), true);
			break;
		case 0xba:
			if (sub < 4)
				return emu_ud(e);
			r = do_bit(&d, sub - 4, os, insn->imm & 0xff, false);
			break;
		default:
			return R_UNHANDLED;
		}
		goto out;
	}

	if (op < 0x40 && (op & 7) < 4) {	/* ALU E,G / G,E */
		enum alu_op aop = op >> 3;

		size = (op & 1) ? os : 1;
		if (op & 2) {			/* G = G op E */
			r = mem_read(&d, d.off, size, &v);
			if (r)
				goto out;
			v = alu(cpu, aop, greg(e, size), v, size);
			if (aop != ALU_CMP)
				emu_reg_write(e, insn->reg, size, v);
			r = R_NEXT;
		} else {
			r = do_alu_mem(&d, aop, size, greg(e, size));
		}
		goto out;
	}

	switch (op) {
	case 0x80: case 0x81: case 0x83:
		size = op == 0x80 ? 1 : os;
		imm = op == 0x81 ? sext(insn->imm, insn->imm_size) :
				   sext(insn->imm, 1);
		r = do_alu_mem(&d, sub, size, imm);
		break;
	case 0x84: case 0x85:			/* TEST */
		size = op == 0x84 ? 1 : os;
		r = mem_read(&d, d.off, size, &v);
		if (!r) {
			alu(cpu, ALU_AND, v, greg(e, size), size);
			r = R_NEXT;
		}
		break;
	case 0x86: case 0x87:			/* XCHG: always locked */
		size = op == 0x86 ? 1 : os;
		r = mem_read(&d, d.off, size, &v);
		if (r)
			break;
		r = rmw_write(&d, d.off, size, v, greg(e, size), true);
		if (r)
			break;
		emu_reg_write(e, insn->reg, size, v);
		r = R_NEXT;
		break;
	case 0x88: case 0x89:			/* MOV E, G */
		size = op == 0x88 ? 1 : os;
		r = store(&d, size, greg(e, size));
		break;
	case 0x8a: case 0x8b:			/* MOV G, E */
		size = op == 0x8a ? 1 : os;
		r = load_reg(&d, size, insn->reg, size, false);
		break;
	case 0x63:				/* MOVSXD */
		if (insn->mode != TRAPVM_MODE_64)
			return R_UNHANDLED;	/* ARPL */
		r = load_reg(&d, os == 8 ? 4 : os, insn->reg, os, os == 8);
		break;
	case 0xa0: case 0xa1:			/* MOV AL/rAX, moffs */
		size = op == 0xa0 ? 1 : os;
		r = load_reg(&d, size, GPR_RAX, size, false);
		break;
	case 0xa2: case 0xa3:			/* MOV moffs, AL/rAX */
		size = op == 0xa2 ? 1 : os;
		r = store(&d, size, emu_reg_read(e, GPR_RAX, size));
		break;
	case 0xc6: case 0xc7:			/* MOV E, imm */
		if (sub != 0)
			return R_UNHANDLED;
		size = op == 0xc6 ? 1 : os;
		r = store(&d, size, sext(insn->imm, insn->imm_size));
		break;
	case 0xf6: case 0xf7:
		size = op == 0xf6 ? 1 : os;
		if (sub >= 4)
			return R_UNHANDLED;	/* MUL/IMUL/DIV/IDIV */
		r = mem_read(&d, d.off, size, &v);
		if (r)
			break;
		if (sub < 2) {			/* TEST E, imm */
			alu(cpu, ALU_AND, v, sext(insn->imm, insn->imm_size),
			    size);
			r = R_NEXT;
			break;
		}
		if (sub == 2)			/* NOT: no flags */
			imm = ~v;
		else				/* NEG */
			imm = alu(cpu, ALU_SUB, 0, v, size);
		r = rmw_write(&d, d.off, size, v, imm, d.locked);
		r = r ? r : R_NEXT;
		break;
	case 0xfe: case 0xff: {			/* INC/DEC: CF unchanged */
		u64 cf = cpu->rflags & TRAPVM_RFLAGS_CF;

		if (sub > 1)
			return R_UNHANDLED;
		size = op == 0xfe ? 1 : os;
		r = mem_read(&d, d.off, size, &v);
		if (r)
			break;
		imm = alu(cpu, sub ? ALU_SUB : ALU_ADD, v, 1, size);
		set_flags(cpu, TRAPVM_RFLAGS_CF, cf);
		r = rmw_write(&d, d.off, size, v, imm, d.locked);
		r = r ? r : R_NEXT;
		break;
	}
	default:
		return R_UNHANDLED;
	}
out:
	/* device memory is only emulated for plain loads and stores */
	if (r == R_MMIO)
		r = R_UNHANDLED;
	/*
	 * Not executed: only the flags can have been changed by then (the
	 * registers are written after the memory operand).
	 */
	if (r == R_UNHANDLED || r == R_RETRY)
		cpu->rflags = rflags;
	if (r != R_UNHANDLED) {
		e->res->insn_class = TRAPVM_INSN_DATA;
		emu_stat(e, TRAPVM_STAT_EMUL_OTHER);
	}
	return r;
}

int trapvm_emulate_mmio_complete(struct trapvm_cpu *cpu,
				 struct trapvm_emu_result *res, const u8 *data)
{
	struct emu e;
	unsigned int i, len = res->mmio.len;
	u64 v = 0;

	if (res->status != TRAPVM_EMU_MMIO || res->mmio.is_write ||
	    !len || len > 8)
		return TRAPVM_EMU_CONTINUE;
	for (i = 0; i < len; i++)
		v |= (u64)data[i] << (8 * i);
	if (res->mmio.sign)
		v = sext(v, len);
	memset(&e, 0, sizeof(e));
	e.cpu = cpu;
	e.res = res;
	/* the byte-register encoding needs the REX state */
	if (trapvm_decode(res->insn, res->insn_len, trapvm_cpu_mode(cpu),
			  &e.insn, NULL) != TRAPVM_DECODE_OK)
		return TRAPVM_EMU_CONTINUE;
	emu_reg_write(&e, res->mmio.reg, res->mmio.dst_size, v);
	cpu->rip = res->mmio.next_rip;
	return TRAPVM_EMU_CONTINUE;
}
