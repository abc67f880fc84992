/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helpers shared by the emulator files (emulate.c, emulate_seg.c,
 * exception.c).  Not part of the module's API.
 */
#ifndef _TRAPVM_EMUL_INTERNAL_H
#define _TRAPVM_EMUL_INTERNAL_H

#include <trapvm/emulate.h>
#include <linux/trapvm_stats.h>

/* Descriptor attribute bits, as in struct trapvm_seg.attr (bits 40..55). */
#define SEG_TYPE(a)	((a) & 0xf)
#define SEG_S		BIT(4)
#define SEG_DPL(a)	(((a) >> 5) & 3)
#define SEG_P		BIT(7)
#define SEG_L		BIT(13)
#define SEG_DB		BIT(14)
#define SEG_G		BIT(15)
#define SEG_TYPE_CODE	BIT(3)
#define SEG_TYPE_CONF	BIT(2)	/* code: conforming */
#define SEG_TYPE_RW	BIT(1)	/* code: readable, data: writable */
#define SEG_TYPE_ACC	BIT(0)

/* System descriptor types in long mode. */
#define SYS_LDT		0x2
#define SYS_TSS_AVAIL	0x9
#define SYS_TSS_BUSY	0xb
#define SYS_CALL_GATE	0xc
#define SYS_INT_GATE	0xe
#define SYS_TRAP_GATE	0xf

/* Flat segments SYSCALL/SYSRET load (limit 19:16 = 0xf included). */
#define ATTR_CODE64(dpl)	(0xaf9b | ((dpl) << 5))
#define ATTR_CODE32(dpl)	(0xcf9b | ((dpl) << 5))
#define ATTR_DATA(dpl)		(0xcf93 | ((dpl) << 5))

/* Handler results inside the emulator. */
enum {
	R_NEXT,		/* done: RIP = next instruction */
	R_FAULT,	/* raise e->fault at this instruction */
	R_JUMPED,	/* done: handler set RIP */
	R_UNHANDLED,	/* not ours, nothing changed */
	R_IO,		/* res->io filled; handler set RIP as needed */
	R_HLT,		/* RIP = next, then HLT */
	R_HYPERCALL,	/* RIP = next, then hypercall exit */
	R_STATUS,	/* handler delivered an event: return e->status */
	R_MMIO,		/* an access hit device memory (ops said so) */
	R_MMIO_READY,	/* res->mmio describes the access to complete */
	R_RETRY,	/* locked write-back lost a race: undo, run it again */
};

struct emu {
	struct trapvm_cpu *cpu;
	const struct trapvm_emu_ops *ops;
	void *ctx;
	struct trapvm_emu_result *res;
	struct trapvm_insn insn;
	u64 next_rip;
	struct trapvm_fault fault;
	int status;
	bool ss_loaded;		/* MOV/POP/LSS to SS: the shadow blocks #DB */
};

static inline int emu_raise(struct emu *e, unsigned int vector, bool has_err,
			    u32 err)
{
	e->fault.vector = vector;
	e->fault.has_error_code = has_err;
	e->fault.error_code = err;
	e->fault.cr2 = 0;
	return R_FAULT;
}

static inline int emu_gp(struct emu *e, u32 err)
{
	return emu_raise(e, TRAPVM_GP_VECTOR, true, err);
}

static inline int emu_ud(struct emu *e)
{
	return emu_raise(e, TRAPVM_UD_VECTOR, false, 0);
}

static inline void emu_stat(struct emu *e, unsigned int stat)
{
	if (e->ops->stat)
		e->ops->stat(e->ctx, stat);
}

static inline bool is_long_mode(const struct trapvm_cpu *cpu)
{
	return cpu->efer & TRAPVM_EFER_LMA;
}

static inline void set_fault(struct trapvm_fault *f, unsigned int vector,
			     u32 err)
{
	f->vector = vector;
	f->has_error_code = true;
	f->error_code = err;
	f->cr2 = 0;
}

/* emulate.c */
int emu_read(struct emu *e, unsigned int seg, u64 off, void *buf,
	     unsigned int len);
int emu_write(struct emu *e, unsigned int seg, u64 off, const void *buf,
	      unsigned int len);
int emu_cmpxchg(struct emu *e, unsigned int seg, u64 off, u64 old, u64 new,
		unsigned int len);
u64 emu_reg_read(const struct emu *e, unsigned int reg, unsigned int size);
void emu_reg_write(struct emu *e, unsigned int reg, unsigned int size, u64 v);
unsigned int emu_stack_size(const struct trapvm_cpu *cpu);
int emu_read_rm16(struct emu *e, u16 *out);

/* emulate_seg.c: descriptors, segment loads, far transfers */
int trapvm_read_desc(struct trapvm_cpu *cpu, const struct trapvm_emu_ops *ops,
		     void *ctx, u16 sel, bool sys16, u32 ext, u64 desc[2],
		     struct trapvm_fault *f);
void trapvm_desc_to_seg(const u64 desc[2], bool sys16, u16 sel,
			struct trapvm_seg *seg);
int trapvm_set_desc_accessed(struct trapvm_cpu *cpu,
			     const struct trapvm_emu_ops *ops, void *ctx,
			     u16 sel, u64 desc0, struct trapvm_fault *f);
int emu_load_seg(struct emu *e, unsigned int sreg, u16 sel);
int emu_far_jmp_call(struct emu *e, bool call);
int emu_far_ret(struct emu *e);
int emu_iret(struct emu *e);
int emu_sysret(struct emu *e);
int emu_sysenter(struct emu *e);
int emu_sysexit(struct emu *e);
int emu_lldt_ltr(struct emu *e, bool ltr);

/* emulate_data.c: data instructions with a memory operand */
int emu_data(struct emu *e);

/* exception.c */
int trapvm_deliver_event(struct trapvm_cpu *cpu,
			 const struct trapvm_emu_ops *ops, void *ctx,
			 unsigned int vector, unsigned int flags, u32 err,
			 u64 push_rip);
#define EV_ERR		BIT(0)	/* pushes an error code */
#define EV_SOFT		BIT(1)	/* INT n / INT3 / INTO: gate DPL check */
#define EV_EXT		BIT(2)	/* external: EXT bit in nested error codes */
#define EV_IRQ		BIT(3)	/* external interrupt (statistics) */

#endif /* _TRAPVM_EMUL_INTERNAL_H */
