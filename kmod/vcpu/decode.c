// SPDX-License-Identifier: GPL-2.0
/*
 * x86 instruction decoder (length, prefixes, ModRM/SIB, displacement,
 * immediates) for the trap-and-emulate path.
 *
 * The opcode attribute tables below were written from the opcode maps of
 * the Intel SDM volume 2, appendix A.  Every byte access goes through
 * peek(), which bounds it by both the buffer and the 15-byte limit.
 */
#include <trapvm/decode.h>

/* Opcode attributes. */
#define M	0x01		/* has a ModRM byte */
#define IB	0x02		/* imm8 */
#define IW	0x04		/* imm16 */
#define IZ	0x06		/* imm16/32 by operand size */
#define IV	0x08		/* imm16/32/64 by operand size (MOV r, imm) */
#define AP	0x0a		/* far pointer: imm16/32 offset + imm16 selector */
#define MO	0x0c		/* moffs: address-size offset */
#define WB	0x0e		/* ENTER: imm16 + imm8 */
#define IMASK	0x0e		/* bits 3:1 hold one of the above */
#define X64	0x10		/* invalid in 64-bit mode */
#define BAD	0x20		/* undefined opcode */
#define D64	0x40		/* default 64-bit operand size in 64-bit mode */
#define F64	0x80		/* operand size forced to 64 in 64-bit mode */

static const u8 map_1b[256] = {
	/* 00 */ M, M, M, M, IB, IZ, X64, X64, M, M, M, M, IB, IZ, X64, 0,
	/* 10 */ M, M, M, M, IB, IZ, X64, X64, M, M, M, M, IB, IZ, X64, X64,
	/* 20 */ M, M, M, M, IB, IZ, 0, X64, M, M, M, M, IB, IZ, 0, X64,
	/* 30 */ M, M, M, M, IB, IZ, 0, X64, M, M, M, M, IB, IZ, 0, X64,
	/* 40 */ 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	/* 50 */ D64, D64, D64, D64, D64, D64, D64, D64,
		 D64, D64, D64, D64, D64, D64, D64, D64,
	/* 60 */ X64, X64, M | X64, M, 0, 0, 0, 0,
		 IZ | D64, M | IZ, IB | D64, M | IB, 0, 0, 0, 0,
	/* 70 */ IB | F64, IB | F64, IB | F64, IB | F64,
		 IB | F64, IB | F64, IB | F64, IB | F64,
		 IB | F64, IB | F64, IB | F64, IB | F64,
		 IB | F64, IB | F64, IB | F64, IB | F64,
	/* 80 */ M | IB, M | IZ, M | IB | X64, M | IB, M, M, M, M,
		 M, M, M, M, M, M, M, M | D64,
	/* 90 */ 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, AP | X64, 0, D64, D64, 0, 0,
	/* a0 */ MO, MO, MO, MO, 0, 0, 0, 0, IB, IZ, 0, 0, 0, 0, 0, 0,
	/* b0 */ IB, IB, IB, IB, IB, IB, IB, IB, IV, IV, IV, IV, IV, IV, IV, IV,
	/* c0 */ M | IB, M | IB, IW | F64, F64, M | X64, M | X64, M | IB, M | IZ,
		 WB | D64, D64, IW, 0, 0, IB, X64, 0,
	/* d0 */ M, M, M, M, IB | X64, IB | X64, BAD | X64, 0,
		 M, M, M, M, M, M, M, M,
	/* e0 */ IB | F64, IB | F64, IB | F64, IB | F64, IB, IB, IB, IB,
		 IZ | F64, IZ | F64, AP | X64, IB | F64, 0, 0, 0, 0,
	/* f0 */ 0, 0, 0, 0, 0, 0, M, M, 0, 0, 0, 0, 0, 0, M, M,
};

static const u8 map_0f[256] = {
	/* 00 */ M, M, M, M, BAD, 0, 0, 0, 0, 0, BAD, 0, BAD, M, 0, M | IB,
	/* 10 */ M, M, M, M, M, M, M, M, M, M, M, M, M, M, M, M,
	/* 20 */ M, M, M, M, M | BAD, M | BAD, M | BAD, M | BAD,
		 M, M, M, M, M, M, M, M,
	/* 30 */ 0, 0, 0, 0, 0, 0, BAD, 0, 0, BAD, 0, BAD, BAD, BAD, BAD, BAD,
	/* 40 */ M, M, M, M, M, M, M, M, M, M, M, M, M, M, M, M,
	/* 50 */ M, M, M, M, M, M, M, M, M, M, M, M, M, M, M, M,
	/* 60 */ M, M, M, M, M, M, M, M, M, M, M, M, M, M, M, M,
	/* 70 */ M | IB, M | IB, M | IB, M | IB, M, M, M, 0,
		 M, M, BAD, BAD, M, M, M, M,
	/* 80 */ IZ | F64, IZ | F64, IZ | F64, IZ | F64,
		 IZ | F64, IZ | F64, IZ | F64, IZ | F64,
		 IZ | F64, IZ | F64, IZ | F64, IZ | F64,
		 IZ | F64, IZ | F64, IZ | F64, IZ | F64,
	/* 90 */ M, M, M, M, M, M, M, M, M, M, M, M, M, M, M, M,
	/* a0 */ D64, D64, 0, M, M | IB, M, M | BAD, M | BAD,
		 D64, D64, 0, M, M | IB, M, M, M,
	/* b0 */ M, M, M, M, M, M, M, M, M, M, M | IB, M, M, M, M, M,
	/* c0 */ M, M, M | IB, M, M | IB, M | IB, M | IB, M, 0, 0, 0, 0, 0, 0, 0, 0,
	/* d0 */ M, M, M, M, M, M, M, M, M, M, M, M, M, M, M, M,
	/* e0 */ M, M, M, M, M, M, M, M, M, M, M, M, M, M, M, M,
	/* f0 */ M, M, M, M, M, M, M, M, M, M, M, M, M, M, M, M,
};

struct cursor {
	const u8 *buf;
	unsigned int len;	/* usable bytes: min(buffer, 15) */
	unsigned int pos;
	unsigned int want;	/* highest position + 1 asked for */
	int err;
};

/* Byte at pos + off without consuming it; sets c->err when unavailable. */
static int peek(struct cursor *c, unsigned int off, u8 *out)
{
	unsigned int p = c->pos + off;

	if (c->err)
		return -1;
	if (p >= TRAPVM_INSN_MAX) {
		c->err = TRAPVM_DECODE_TOO_LONG;
		return -1;
	}
	if (p + 1 > c->want)
		c->want = p + 1;
	if (p >= c->len) {
		c->err = TRAPVM_DECODE_TRUNC;
		return -1;
	}
	*out = c->buf[p];
	return 0;
}

static int next(struct cursor *c, u8 *out)
{
	if (peek(c, 0, out))
		return -1;
	c->pos++;
	return 0;
}

/* Little-endian immediate/displacement of n (1, 2, 4, 8) bytes. */
static int fetch_le(struct cursor *c, unsigned int n, u64 *out)
{
	u64 v = 0;
	unsigned int i;
	u8 b;

	for (i = 0; i < n; i++) {
		if (next(c, &b))
			return -1;
		v |= (u64)b << (8 * i);
	}
	*out = v;
	return 0;
}

static s64 sign_extend(u64 v, unsigned int bytes)
{
	switch (bytes) {
	case 1:
		return (s8)v;
	case 2:
		return (s16)v;
	case 4:
		return (s32)v;
	default:
		return (s64)v;
	}
}

enum trapvm_cpu_mode trapvm_cpu_mode(const struct trapvm_cpu *cpu)
{
	u16 attr = cpu->seg[SREG_CS].attr;

	/* attr holds descriptor bits 40..55: L is bit 13, D/B bit 14 */
	if ((cpu->efer & BIT(10)) && (attr & BIT(13)))
		return TRAPVM_MODE_64;
	return (attr & BIT(14)) ? TRAPVM_MODE_32 : TRAPVM_MODE_16;
}

static void decode_modrm16(struct trapvm_insn *insn)
{
	static const s8 base16[8] = {
		GPR_RBX, GPR_RBX, GPR_RBP, GPR_RBP, -1, -1, GPR_RBP, GPR_RBX
	};
	static const s8 index16[8] = {
		GPR_RSI, GPR_RDI, GPR_RSI, GPR_RDI, GPR_RSI, GPR_RDI, -1, -1
	};
	unsigned int rm = insn->modrm & 7;

	insn->base_reg = base16[rm];
	insn->index_reg = index16[rm];
	insn->scale = 1;
	if (insn->mod == 0 && rm == 6) {
		insn->base_reg = -1;
		insn->disp_size = 2;
	} else if (insn->mod == 1) {
		insn->disp_size = 1;
	} else if (insn->mod == 2) {
		insn->disp_size = 2;
	}
	if (insn->base_reg == GPR_RBP)
		insn->default_seg = SREG_SS;
}

static int decode_modrm32(struct cursor *c, struct trapvm_insn *insn)
{
	unsigned int rm = insn->modrm & 7;
	unsigned int rex_b = (insn->rex & 1) << 3;
	unsigned int rex_x = (insn->rex & 2) << 2;

	insn->scale = 1;
	insn->index_reg = -1;
	if (rm == 4) {
		unsigned int base, index;

		if (next(c, &insn->sib))
			return -1;
		insn->has_sib = true;
		base = insn->sib & 7;
		index = ((insn->sib >> 3) & 7) | rex_x;
		insn->scale = 1 << (insn->sib >> 6);
		if (index != GPR_RSP)
			insn->index_reg = index;
		if (base == 5 && insn->mod == 0) {
			insn->base_reg = -1;
			insn->disp_size = 4;
		} else {
			insn->base_reg = base | rex_b;
		}
	} else if (rm == 5 && insn->mod == 0) {
		insn->base_reg = -1;
		insn->disp_size = 4;
		insn->rip_relative = insn->mode == TRAPVM_MODE_64;
	} else {
		insn->base_reg = rm | rex_b;
	}
	if (insn->mod == 1)
		insn->disp_size = 1;
	else if (insn->mod == 2)
		insn->disp_size = 4;
	if (insn->base_reg == GPR_RSP || insn->base_reg == GPR_RBP)
		insn->default_seg = SREG_SS;
	return 0;
}

/*
 * VEX (C4/C5) and EVEX (62) prefixes: decode enough to find the opcode
 * map, the ModRM operand and the immediate.
 */
static int decode_vex(struct cursor *c, struct trapvm_insn *insn, u8 first,
		      u8 *attr, bool *invalid)
{
	u8 p0, p1, p2;
	unsigned int map;

	/* 66/F2/F3/F0/REX before VEX: #UD, reported once length is known */
	if (insn->rex || (insn->prefixes & (TRAPVM_PFX_OPSIZE |
	    TRAPVM_PFX_LOCK | TRAPVM_PFX_REP | TRAPVM_PFX_REPNE)))
		*invalid = true;
	if (next(c, &p0))
		return -1;
	if (first == 0xc5) {
		insn->prefixes |= TRAPVM_PFX_VEX;
		map = 1;
		if (insn->mode == TRAPVM_MODE_64)
			insn->rex = 0x40 | (!(p0 & 0x80) << 2);
	} else if (first == 0xc4) {
		if (next(c, &p1))
			return -1;
		insn->prefixes |= TRAPVM_PFX_VEX;
		map = p0 & 0x1f;
		if (insn->mode == TRAPVM_MODE_64)
			insn->rex = 0x40 | ((~p0 >> 5) & 7) | ((p1 & 0x80) >> 4);
	} else {
		if (next(c, &p1) || next(c, &p2))
			return -1;
		insn->prefixes |= TRAPVM_PFX_EVEX;
		map = p0 & 7;
		if (insn->mode == TRAPVM_MODE_64)
			insn->rex = 0x40 | ((~p0 >> 5) & 7) | ((p1 & 0x80) >> 4);
	}
	if (insn->mode != TRAPVM_MODE_64)
		insn->rex = 0;
	if (next(c, &insn->opcode))
		return -1;
	switch (map) {
	case 1:
		insn->map = TRAPVM_MAP_0F;
		*attr = M;
		if (insn->opcode == 0x77 && !(insn->prefixes & TRAPVM_PFX_EVEX))
			*attr = 0;	/* VZEROUPPER/VZEROALL */
		else if ((insn->opcode >= 0x70 && insn->opcode <= 0x73) ||
			 insn->opcode == 0xc2 ||
			 (insn->opcode >= 0xc4 && insn->opcode <= 0xc6))
			*attr = M | IB;
		break;
	case 2:
		insn->map = TRAPVM_MAP_0F38;
		*attr = M;
		break;
	case 3:
		insn->map = TRAPVM_MAP_0F3A;
		*attr = M | IB;
		break;
	default:
		/* reserved map: undefined, assume ModRM for a length */
		insn->map = TRAPVM_MAP_0F;
		*attr = M | BAD;
		break;
	}
	return 0;
}

int trapvm_decode(const u8 *buf, unsigned int len, enum trapvm_cpu_mode mode,
		  struct trapvm_insn *insn, unsigned int *needed)
{
	struct cursor c = { .buf = buf, .len = len, .pos = 0 };
	bool is64 = mode == TRAPVM_MODE_64;
	bool invalid = false;
	u8 b, attr;
	u64 v;

	if (c.len > TRAPVM_INSN_MAX)
		c.len = TRAPVM_INSN_MAX;
	memset(insn, 0, sizeof(*insn));
	insn->mode = mode;
	insn->seg_override = TRAPVM_SEG_NONE;
	insn->base_reg = -1;
	insn->index_reg = -1;
	insn->default_seg = SREG_DS;

	/* legacy prefixes and REX */
	for (;;) {
		if (next(&c, &b))
			goto out;
		switch (b) {
		case 0x26: case 0x2e: case 0x36: case 0x3e:
			/* ES/CS/SS/DS overrides are null prefixes in 64-bit mode */
			if (!is64)
				insn->seg_override = b == 0x26 ? SREG_ES :
						     b == 0x2e ? SREG_CS :
						     b == 0x36 ? SREG_SS : SREG_DS;
			insn->rex = 0;
			continue;
		case 0x64:
			insn->seg_override = SREG_FS;
			insn->rex = 0;
			continue;
		case 0x65:
			insn->seg_override = SREG_GS;
			insn->rex = 0;
			continue;
		case 0x66:
			insn->prefixes |= TRAPVM_PFX_OPSIZE;
			insn->rex = 0;
			continue;
		case 0x67:
			insn->prefixes |= TRAPVM_PFX_ADSIZE;
			insn->rex = 0;
			continue;
		case 0xf0:
			insn->prefixes |= TRAPVM_PFX_LOCK;
			insn->rex = 0;
			continue;
		case 0xf2:
			insn->prefixes |= TRAPVM_PFX_REPNE;
			insn->last_rep = b;
			insn->rex = 0;
			continue;
		case 0xf3:
			insn->prefixes |= TRAPVM_PFX_REP;
			insn->last_rep = b;
			insn->rex = 0;
			continue;
		}
		if (is64 && (b & 0xf0) == 0x40) {
			/* a REX prefix only counts right before the opcode */
			insn->rex = b;
			continue;
		}
		break;
	}

	/* address size */
	if (is64)
		insn->adsize = (insn->prefixes & TRAPVM_PFX_ADSIZE) ? 4 : 8;
	else if (mode == TRAPVM_MODE_32)
		insn->adsize = (insn->prefixes & TRAPVM_PFX_ADSIZE) ? 2 : 4;
	else
		insn->adsize = (insn->prefixes & TRAPVM_PFX_ADSIZE) ? 4 : 2;

	/* opcode (b is the first opcode byte) */
	insn->map = TRAPVM_MAP_1B;
	insn->opcode = b;
	attr = map_1b[b];
	if (b == 0x0f) {
		if (next(&c, &b))
			goto out;
		insn->opcode = b;
		if (b == 0x38 || b == 0x3a) {
			insn->map = b == 0x38 ? TRAPVM_MAP_0F38 : TRAPVM_MAP_0F3A;
			if (next(&c, &insn->opcode))
				goto out;
			attr = b == 0x38 ? M : M | IB;
		} else {
			insn->map = TRAPVM_MAP_0F;
			attr = map_0f[b];
		}
	} else if (b == 0xc4 || b == 0xc5 || b == 0x62) {
		/*
		 * VEX/EVEX in 64-bit mode; outside it only when the next
		 * byte would be a register-form ModRM (LES/LDS/BOUND need a
		 * memory operand).
		 */
		u8 nb = 0;

		if (!is64 && peek(&c, 0, &nb))
			goto out;
		if ((is64 || (nb & 0xc0) == 0xc0) &&
		    decode_vex(&c, insn, b, &attr, &invalid))
			goto out;
	}

	if ((attr & X64) && is64)
		invalid = true;
	if (attr & BAD)
		invalid = true;

	/* operand size */
	if (is64) {
		if (insn->rex & 8)
			insn->opsize = 8;
		else if (attr & F64)
			insn->opsize = 8;
		else if (insn->prefixes & TRAPVM_PFX_OPSIZE)
			insn->opsize = 2;
		else
			insn->opsize = (attr & D64) ? 8 : 4;
	} else if (mode == TRAPVM_MODE_32) {
		insn->opsize = (insn->prefixes & TRAPVM_PFX_OPSIZE) ? 2 : 4;
	} else {
		insn->opsize = (insn->prefixes & TRAPVM_PFX_OPSIZE) ? 4 : 2;
	}

	/* ModRM, SIB, displacement */
	if (attr & M) {
		if (next(&c, &insn->modrm))
			goto out;
		insn->has_modrm = true;
		insn->mod = insn->modrm >> 6;
		insn->reg = ((insn->modrm >> 3) & 7) | ((insn->rex & 4) << 1);
		insn->rm = insn->modrm & 7;
		if (insn->map == TRAPVM_MAP_0F && insn->opcode >= 0x20 &&
		    insn->opcode <= 0x27) {
			/* MOV CR/DR (and the old TR): mod is ignored */
			insn->mod = 3;
		}
		if (insn->mod == 3) {
			insn->rm |= (insn->rex & 1) << 3;
		} else {
			if (insn->adsize == 2)
				decode_modrm16(insn);
			else if (decode_modrm32(&c, insn))
				goto out;
			if (insn->disp_size) {
				if (fetch_le(&c, insn->disp_size, &v))
					goto out;
				insn->disp = sign_extend(v, insn->disp_size);
			}
		}
	}

	/* immediates */
	switch (attr & IMASK) {
	case IB:
		insn->imm_size = 1;
		break;
	case IW:
		insn->imm_size = 2;
		break;
	case IZ:
		insn->imm_size = insn->opsize == 2 ? 2 : 4;
		break;
	case IV:
		insn->imm_size = insn->opsize;
		break;
	case AP:
		insn->imm_size = insn->opsize == 2 ? 2 : 4;
		insn->imm2_size = 2;
		break;
	case MO:
		/* moffs is a displacement of address size, no ModRM */
		insn->disp_size = insn->adsize;
		if (fetch_le(&c, insn->adsize, &v))
			goto out;
		insn->disp = (s64)v;
		break;
	case WB:
		insn->imm_size = 2;
		insn->imm2_size = 1;
		break;
	}
	if (insn->map == TRAPVM_MAP_1B && (insn->opcode & 0xfe) == 0xf6 &&
	    insn->has_modrm && ((insn->modrm >> 3) & 7) < 2) {
		/* TEST r/m, imm (F6 /0 /1, F7 /0 /1) */
		insn->imm_size = insn->opcode == 0xf6 ? 1 :
				 insn->opsize == 2 ? 2 : 4;
	}
	if (insn->imm_size && fetch_le(&c, insn->imm_size, &insn->imm))
		goto out;
	if (insn->imm2_size && fetch_le(&c, insn->imm2_size, &insn->imm2))
		goto out;

out:
	if (needed)
		*needed = c.want;
	if (c.err)
		return c.err;
	insn->len = c.pos;
	return invalid ? TRAPVM_DECODE_INVALID : TRAPVM_DECODE_OK;
}

u64 trapvm_insn_ea(const struct trapvm_cpu *cpu, const struct trapvm_insn *insn,
		   u64 rip)
{
	u64 ea = (u64)insn->disp;

	if (insn->rip_relative)
		ea += rip + insn->len;
	if (insn->base_reg >= 0)
		ea += cpu->gpr[insn->base_reg];
	if (insn->index_reg >= 0)
		ea += cpu->gpr[insn->index_reg] * insn->scale;
	if (insn->adsize == 4)
		ea &= 0xffffffffULL;
	else if (insn->adsize == 2)
		ea &= 0xffffULL;
	return ea;
}
