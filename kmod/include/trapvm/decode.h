/* SPDX-License-Identifier: GPL-2.0 */
/*
 * x86 instruction decoder: one instruction from a byte buffer.
 *
 * Kernel-agnostic (glue.h only).  The decoder never reads past the
 * buffer it is given and never more than TRAPVM_INSN_MAX bytes, so it is
 * safe on any input.  It computes the length of every instruction of the
 * one-byte, 0F, 0F 38 and 0F 3A maps (and VEX/EVEX encoded ones), even
 * those the emulator does not implement, so that callers can report or
 * skip them.
 */
#ifndef _TRAPVM_DECODE_H
#define _TRAPVM_DECODE_H

#include "glue.h"
#include "cpu.h"

#define TRAPVM_INSN_MAX		15	/* architectural limit, SDM 2.3.11 */

/* Execution modes the decoder understands. */
enum trapvm_cpu_mode {
	TRAPVM_MODE_16,		/* 16-bit protected mode code segment */
	TRAPVM_MODE_32,		/* 32-bit or compatibility mode */
	TRAPVM_MODE_64,		/* 64-bit mode: EFER.LMA and CS.L */
};

/* Opcode maps. */
enum trapvm_opmap {
	TRAPVM_MAP_1B,		/* one-byte opcodes */
	TRAPVM_MAP_0F,
	TRAPVM_MAP_0F38,
	TRAPVM_MAP_0F3A,
};

/* trapvm_decode() return values (0 = decoded). */
#define TRAPVM_DECODE_OK	0
#define TRAPVM_DECODE_TRUNC	1	/* needs more bytes than given */
#define TRAPVM_DECODE_TOO_LONG	2	/* > 15 bytes: #GP(0) */
#define TRAPVM_DECODE_INVALID	3	/* invalid opcode: #UD */

/* Legacy prefix flags (trapvm_insn.prefixes). */
#define TRAPVM_PFX_OPSIZE	BIT(0)	/* 66 */
#define TRAPVM_PFX_ADSIZE	BIT(1)	/* 67 */
#define TRAPVM_PFX_LOCK		BIT(2)	/* F0 */
#define TRAPVM_PFX_REPNE	BIT(3)	/* F2 */
#define TRAPVM_PFX_REP		BIT(4)	/* F3 */
#define TRAPVM_PFX_VEX		BIT(5)	/* VEX (C4/C5) encoded */
#define TRAPVM_PFX_EVEX		BIT(6)	/* EVEX (62) encoded */

#define TRAPVM_SEG_NONE		0xff	/* no segment override */

struct trapvm_insn {
	u8 len;			/* total length in bytes */
	u8 mode;		/* enum trapvm_cpu_mode */
	u8 opsize;		/* operand size: 2, 4 or 8 */
	u8 adsize;		/* address size: 2, 4 or 8 */
	u8 map;			/* enum trapvm_opmap */
	u8 opcode;		/* last opcode byte */
	u8 prefixes;		/* TRAPVM_PFX_* */
	u8 seg_override;	/* enum trapvm_sreg or TRAPVM_SEG_NONE */
	u8 rex;			/* REX byte, or 0 */
	u8 last_rep;		/* last of F2/F3 seen (mandatory prefix), or 0 */

	bool has_modrm;
	u8 modrm;
	u8 mod;			/* modrm bits 7:6 */
	u8 reg;			/* modrm bits 5:3 plus REX.R: 0..15 */
	u8 rm;			/* modrm bits 2:0 plus REX.B (mod == 3): 0..15 */

	bool has_sib;
	u8 sib;

	/* memory operand (has_modrm && mod != 3) */
	bool rip_relative;
	s8 base_reg;		/* enum trapvm_gpr or -1 */
	s8 index_reg;		/* enum trapvm_gpr or -1 */
	u8 scale;		/* 1, 2, 4, 8 */
	u8 default_seg;		/* SREG_DS or SREG_SS (RSP/RBP based) */
	u8 disp_size;		/* 0, 1, 2, 4 (8 for moffs in 64-bit mode) */
	s64 disp;		/* sign-extended */

	u8 imm_size;		/* bytes of the first immediate */
	u8 imm2_size;		/* second immediate (ENTER, far pointers) */
	u64 imm;		/* zero-extended raw value */
	u64 imm2;
};

/* The mode the vCPU is executing in, from EFER.LMA and CS.L/D. */
enum trapvm_cpu_mode trapvm_cpu_mode(const struct trapvm_cpu *cpu);

/*
 * Decode one instruction from buf[0..len) (len may exceed 15; at most 15
 * bytes are looked at).  Returns TRAPVM_DECODE_*; insn->len is valid for
 * TRAPVM_DECODE_OK.  On TRAPVM_DECODE_TRUNC, *needed (if non-NULL) is the
 * number of bytes the decoder wanted to look at.
 */
int trapvm_decode(const u8 *buf, unsigned int len, enum trapvm_cpu_mode mode,
		  struct trapvm_insn *insn, unsigned int *needed);

/*
 * Offset part of the memory operand (base + index*scale + disp, RIP
 * relative resolved with rip = address of the instruction), truncated to
 * the address size.  No segment base is added.
 */
u64 trapvm_insn_ea(const struct trapvm_cpu *cpu, const struct trapvm_insn *insn,
		   u64 rip);

/* Segment register the memory operand uses (override or default). */
static inline unsigned int trapvm_insn_seg(const struct trapvm_insn *insn)
{
	return insn->seg_override != TRAPVM_SEG_NONE ? insn->seg_override :
						       insn->default_seg;
}

#endif /* _TRAPVM_DECODE_H */
