/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The virtual CPU's architectural state: what the guest believes the CPU
 * holds.  Kernel-agnostic (see glue.h) so the emulator and the exception
 * delivery code can be unit-tested and fuzzed in userspace.
 *
 * The guest runs at hardware CPL3 with hardware RFLAGS.IF=1 and IOPL=0;
 * the values here (cpl, rflags.IF/IOPL, control registers, descriptor
 * tables, segment selectors) are the virtual ones.
 */
#ifndef _TRAPVM_CPU_H
#define _TRAPVM_CPU_H

#include "glue.h"

enum trapvm_gpr {
	GPR_RAX, GPR_RCX, GPR_RDX, GPR_RBX, GPR_RSP, GPR_RBP, GPR_RSI, GPR_RDI,
	GPR_R8, GPR_R9, GPR_R10, GPR_R11, GPR_R12, GPR_R13, GPR_R14, GPR_R15,
	GPR_NR
};

enum trapvm_sreg { SREG_ES, SREG_CS, SREG_SS, SREG_DS, SREG_FS, SREG_GS, SREG_NR };

struct trapvm_seg {
	u64 base;
	u32 limit;
	u16 selector;
	u16 attr;	/* descriptor bits 40..55: type, S, DPL, P, AVL, L, D/B, G */
};

struct trapvm_dt {
	u64 base;
	u16 limit;
};

struct trapvm_cpu {
	u64 gpr[GPR_NR];
	u64 rip;
	u64 rflags;		/* virtual: IF, IOPL, ... as the guest sees them */

	u8 cpl;			/* virtual CPL: 0..3 (mostly 0 or 3) */
	u8 interrupt_shadow;	/* STI / MOV SS shadow for the next instruction */
	u8 halted;
	u8 shutdown;		/* triple fault happened */

	struct trapvm_seg seg[SREG_NR];
	struct trapvm_seg ldtr, tr;
	struct trapvm_dt gdtr, idtr;

	u64 cr0, cr2, cr3, cr4, cr8;
	u64 efer;
	u64 xcr0;

	/* MSRs the emulator implements */
	u64 star, lstar, cstar, sfmask;
	u64 kernel_gs_base;
	u64 tsc_aux;
	u64 pat;
	u64 apic_base;
	u64 sysenter_cs, sysenter_esp, sysenter_eip;

	/* emulator state and configuration (vcpu/emulate.c) */
	u64 dr[8];		/* debug registers; [4]/[5] unused */
	u64 xcr0_supported;	/* XCR0 bits XSETBV accepts; 0: x87|SSE|AVX */
	u8 maxphyaddr;		/* guest physical address bits; 0: 52 */
	/* CR4 bits MOV to CR4 accepts (within TRAPVM_CR4_SUPPORTED); 0: all */
	u64 cr4_supported;
};

#endif /* _TRAPVM_CPU_H */
