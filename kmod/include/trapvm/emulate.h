/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Privileged-instruction emulator and exception/interrupt delivery for a
 * deprivileged x86-64 guest.  Kernel-agnostic (glue.h): the module and
 * the userspace unit tests/fuzzer both provide struct trapvm_emu_ops.
 *
 * Typical use by the world switch, after the guest took #GP or #UD at
 * hardware CPL3:
 *
 *	struct trapvm_emu_result res = { .io_buf = buf, .io_buf_size = n };
 *
 *	switch (trapvm_emulate(cpu, &ops, ctx, &res)) {
 *	case TRAPVM_EMU_CONTINUE:	resume the guest
 *	case TRAPVM_EMU_EXCEPTION:	an exception was delivered; resume
 *	case TRAPVM_EMU_UNHANDLED:	not a privileged instruction: reflect
 *					the hardware fault (trapvm_deliver_*)
 *	case TRAPVM_EMU_IO:		res.io; for IN call
 *					trapvm_emulate_in_complete() with
 *					the data before resuming
 *	case TRAPVM_EMU_HLT:		block until an interrupt (cpu->halted)
 *	case TRAPVM_EMU_HYPERCALL:	res.hypercall; put the result in RAX
 *	case TRAPVM_EMU_SHUTDOWN:	triple fault (cpu->shutdown)
 *	case TRAPVM_EMU_MMIO:		res.mmio; for a load call
 *					trapvm_emulate_mmio_complete()
 *	case TRAPVM_EMU_RETRY:		nothing happened (RIP, registers
 *					and flags as before): resume, the
 *					guest executes it again
 *	}
 *
 * Besides the privileged instructions, the ordinary data instructions
 * with a memory operand (MOV, XCHG, CMPXCHG, XADD, ALU, BTx, INC/DEC,
 * NOT/NEG, MOVS/STOS/LODS) are emulated, for accesses the hardware
 * cannot be allowed to make (shadow EMULATE results, device memory).
 *
 * Nothing here sleeps or allocates; the ops callbacks decide that.
 */
#ifndef _TRAPVM_EMULATE_H
#define _TRAPVM_EMULATE_H

#include "glue.h"
#include "cpu.h"
#include "decode.h"

/* Exception vectors. */
#define TRAPVM_DE_VECTOR	0
#define TRAPVM_DB_VECTOR	1
#define TRAPVM_NMI_VECTOR	2
#define TRAPVM_BP_VECTOR	3
#define TRAPVM_OF_VECTOR	4
#define TRAPVM_BR_VECTOR	5
#define TRAPVM_UD_VECTOR	6
#define TRAPVM_NM_VECTOR	7
#define TRAPVM_DF_VECTOR	8
#define TRAPVM_TS_VECTOR	10
#define TRAPVM_NP_VECTOR	11
#define TRAPVM_SS_VECTOR	12
#define TRAPVM_GP_VECTOR	13
#define TRAPVM_PF_VECTOR	14
#define TRAPVM_MF_VECTOR	16
#define TRAPVM_AC_VECTOR	17
#define TRAPVM_MC_VECTOR	18
#define TRAPVM_XM_VECTOR	19

/* RFLAGS bits. */
#define TRAPVM_RFLAGS_CF	BIT_ULL(0)
#define TRAPVM_RFLAGS_FIXED	BIT_ULL(1)
#define TRAPVM_RFLAGS_TF	BIT_ULL(8)
#define TRAPVM_RFLAGS_IF	BIT_ULL(9)
#define TRAPVM_RFLAGS_DF	BIT_ULL(10)
#define TRAPVM_RFLAGS_OF	BIT_ULL(11)
#define TRAPVM_RFLAGS_IOPL	(3ULL << 12)
#define TRAPVM_RFLAGS_NT	BIT_ULL(14)
#define TRAPVM_RFLAGS_RF	BIT_ULL(16)
#define TRAPVM_RFLAGS_VM	BIT_ULL(17)
#define TRAPVM_RFLAGS_AC	BIT_ULL(18)
#define TRAPVM_RFLAGS_VIF	BIT_ULL(19)
#define TRAPVM_RFLAGS_VIP	BIT_ULL(20)
#define TRAPVM_RFLAGS_ID	BIT_ULL(21)

/* Control register and EFER bits the emulator checks. */
#define TRAPVM_CR0_PE		BIT_ULL(0)
#define TRAPVM_CR0_MP		BIT_ULL(1)
#define TRAPVM_CR0_EM		BIT_ULL(2)
#define TRAPVM_CR0_TS		BIT_ULL(3)
#define TRAPVM_CR0_ET		BIT_ULL(4)
#define TRAPVM_CR0_NE		BIT_ULL(5)
#define TRAPVM_CR0_WP		BIT_ULL(16)
#define TRAPVM_CR0_AM		BIT_ULL(18)
#define TRAPVM_CR0_NW		BIT_ULL(29)
#define TRAPVM_CR0_CD		BIT_ULL(30)
#define TRAPVM_CR0_PG		BIT_ULL(31)

#define TRAPVM_CR4_VME		BIT_ULL(0)
#define TRAPVM_CR4_PVI		BIT_ULL(1)
#define TRAPVM_CR4_TSD		BIT_ULL(2)
#define TRAPVM_CR4_DE		BIT_ULL(3)
#define TRAPVM_CR4_PSE		BIT_ULL(4)
#define TRAPVM_CR4_PAE		BIT_ULL(5)
#define TRAPVM_CR4_MCE		BIT_ULL(6)
#define TRAPVM_CR4_PGE		BIT_ULL(7)
#define TRAPVM_CR4_PCE		BIT_ULL(8)
#define TRAPVM_CR4_OSFXSR	BIT_ULL(9)
#define TRAPVM_CR4_OSXMMEXCPT	BIT_ULL(10)
#define TRAPVM_CR4_UMIP		BIT_ULL(11)
#define TRAPVM_CR4_LA57		BIT_ULL(12)
#define TRAPVM_CR4_FSGSBASE	BIT_ULL(16)
#define TRAPVM_CR4_PCIDE	BIT_ULL(17)
#define TRAPVM_CR4_OSXSAVE	BIT_ULL(18)
#define TRAPVM_CR4_SMEP		BIT_ULL(20)
#define TRAPVM_CR4_SMAP		BIT_ULL(21)
#define TRAPVM_CR4_PKE		BIT_ULL(22)
/* CR4 bits a guest may set; any other bit is reserved (#GP). */
#define TRAPVM_CR4_SUPPORTED						\
	(TRAPVM_CR4_VME | TRAPVM_CR4_PVI | TRAPVM_CR4_TSD | TRAPVM_CR4_DE | \
	 TRAPVM_CR4_PSE | TRAPVM_CR4_PAE | TRAPVM_CR4_MCE | TRAPVM_CR4_PGE | \
	 TRAPVM_CR4_PCE | TRAPVM_CR4_OSFXSR | TRAPVM_CR4_OSXMMEXCPT |	\
	 TRAPVM_CR4_UMIP | TRAPVM_CR4_FSGSBASE | TRAPVM_CR4_PCIDE |	\
	 TRAPVM_CR4_OSXSAVE | TRAPVM_CR4_SMEP | TRAPVM_CR4_SMAP |	\
	 TRAPVM_CR4_PKE)

#define TRAPVM_EFER_SCE		BIT_ULL(0)
#define TRAPVM_EFER_LME		BIT_ULL(8)
#define TRAPVM_EFER_LMA		BIT_ULL(10)
#define TRAPVM_EFER_NXE		BIT_ULL(11)

/* MSRs the emulator owns. */
#define TRAPVM_MSR_APIC_BASE		0x0000001b
#define TRAPVM_MSR_SYSENTER_CS		0x00000174
#define TRAPVM_MSR_SYSENTER_ESP		0x00000175
#define TRAPVM_MSR_SYSENTER_EIP		0x00000176
#define TRAPVM_MSR_PAT			0x00000277
#define TRAPVM_MSR_EFER			0xc0000080
#define TRAPVM_MSR_STAR			0xc0000081
#define TRAPVM_MSR_LSTAR		0xc0000082
#define TRAPVM_MSR_CSTAR		0xc0000083
#define TRAPVM_MSR_SFMASK		0xc0000084
#define TRAPVM_MSR_FS_BASE		0xc0000100
#define TRAPVM_MSR_GS_BASE		0xc0000101
#define TRAPVM_MSR_KERNEL_GS_BASE	0xc0000102
#define TRAPVM_MSR_TSC_AUX		0xc0000103
#define TRAPVM_MSR_X2APIC_FIRST		0x00000800	/* ops->rdmsr/wrmsr */
#define TRAPVM_MSR_X2APIC_LAST		0x000008ff
#define TRAPVM_MSR_X2APIC_TPR		0x00000808	/* CR8 = TPR[7:4] */

/* XCR0 bits. */
#define TRAPVM_XCR0_X87		BIT_ULL(0)
#define TRAPVM_XCR0_SSE		BIT_ULL(1)
#define TRAPVM_XCR0_AVX		BIT_ULL(2)
#define TRAPVM_XCR0_BNDREGS	BIT_ULL(3)
#define TRAPVM_XCR0_BNDCSR	BIT_ULL(4)
#define TRAPVM_XCR0_AVX512	(7ULL << 5)	/* opmask, ZMM_Hi256, Hi16_ZMM */
#define TRAPVM_XCR0_PKRU	BIT_ULL(9)
#define TRAPVM_XCR0_DEFAULT	(TRAPVM_XCR0_X87 | TRAPVM_XCR0_SSE | TRAPVM_XCR0_AVX)

/* A fault an access or an instruction raises in the guest. */
struct trapvm_fault {
	u8 vector;
	bool has_error_code;
	u32 error_code;
	u64 cr2;		/* #PF only: faulting linear address */
};

/* Access flags for trapvm_emu_ops.read/write. */
#define TRAPVM_ACC_WRITE	BIT(0)	/* write (set by ->write callers) */
#define TRAPVM_ACC_FETCH	BIT(1)	/* instruction fetch */
#define TRAPVM_ACC_USER		BIT(2)	/* virtual CPL3 access */
#define TRAPVM_ACC_IMPLICIT	BIT(3)	/* GDT/IDT/TSS access: supervisor */

/* ops->read/write: the address is device memory (see TRAPVM_EMU_MMIO). */
#define TRAPVM_ACCESS_MMIO	0x4d4d
/* ops->cmpxchg: memory no longer holds the old value; nothing written. */
#define TRAPVM_ACCESS_CHANGED	0x4348

/* Return values of the MSR hooks. */
#define TRAPVM_MSR_OK		0
#define TRAPVM_MSR_GP		1	/* inject #GP(0) */
#define TRAPVM_MSR_UNHANDLED	2	/* not mine: #GP(0), counted unknown */

/*
 * Callbacks into the rest of the module (or a test harness).  All
 * addresses are guest-virtual (linear, segment base already added, never
 * non-canonical: the emulator checks that).
 *
 * read/write: copy len (reads <= 24, writes <= 48 for an exception frame;
 * may cross a page) bytes with the permission semantics of @access (TRAPVM_ACC_*): a user
 * access (ACC_USER) to a supervisor page, a write to a read-only page
 * (with CR0.WP rules), a fetch from an NX page... fail.  Return 0 on
 * success; on failure return nonzero and fill *fault (normally #PF with
 * the architectural error code and cr2 = the faulting address), or return
 * TRAPVM_ACCESS_MMIO if the address is not RAM (device memory; nothing
 * done).  A failed write must not have modified guest memory.
 *
 * cmpxchg: the write-back of a locked read-modify-write (any LOCK-prefixed
 * instruction, XCHG with memory, CMPXCHG): atomically against every other
 * vCPU and the MMU, if the @len (1, 2, 4 or 8; may cross a page) bytes at
 * @gva still hold @old, replace them with @new (both little-endian values
 * of @len bytes), with the permission checks of a write (@access has
 * TRAPVM_ACC_WRITE).  Return 0 when written, TRAPVM_ACCESS_CHANGED when
 * memory held another value (nothing written: the emulator then leaves
 * the instruction unexecuted, TRAPVM_EMU_RETRY), else as write.  May be
 * NULL: the write-back is then a plain write, which is only atomic when
 * nothing else runs (a one-vCPU guest, tests).
 *
 * rdmsr/wrmsr: for MSRs the emulator does not implement (x2APIC range and
 * anything unknown).  Return TRAPVM_MSR_*.  May be NULL (= UNHANDLED).
 *
 * cr3_load: the guest loaded CR3 (noflush: CR4.PCIDE and bit 63 set).
 * invlpg: the guest invalidated the translation of @gva.
 * paging_changed: CR0.PG/WP, CR4 paging bits or EFER.NXE/LMA changed; old
 * values are passed, new ones are in cpu.
 * stat: count an event (enum trapvm_vcpu_stat index).
 * cpuid: answer CPUID (leaf EAX, subleaf ECX) into out[] = EAX, EBX, ECX,
 * EDX, for hosts with CPUID faulting; NULL leaves CPUID unhandled.
 * rdtsc: the guest's TSC, for RDTSC/RDTSCP that trap (host CR4.TSD set
 * while the guest runs); NULL leaves them unhandled.
 * All but read/write may be NULL.
 *
 * MOV to/from CR8 also goes through rdmsr/wrmsr of TRAPVM_MSR_X2APIC_TPR
 * (TPR = CR8 << 4), so an APIC model sees the same priority.
 */
struct trapvm_emu_ops {
	int (*read)(void *ctx, u64 gva, void *buf, unsigned int len,
		    unsigned int access, struct trapvm_fault *fault);
	int (*write)(void *ctx, u64 gva, const void *buf, unsigned int len,
		     unsigned int access, struct trapvm_fault *fault);
	int (*cmpxchg)(void *ctx, u64 gva, u64 old, u64 new, unsigned int len,
		       unsigned int access, struct trapvm_fault *fault);
	int (*rdmsr)(void *ctx, u32 msr, u64 *val);
	int (*wrmsr)(void *ctx, u32 msr, u64 val);
	void (*cr3_load)(void *ctx, u64 cr3, bool noflush);
	void (*invlpg)(void *ctx, u64 gva);
	void (*paging_changed)(void *ctx, u64 old_cr0, u64 old_cr4,
			       u64 old_efer);
	void (*stat)(void *ctx, unsigned int stat);
	void (*cpuid)(void *ctx, u32 leaf, u32 subleaf, u32 out[4]);
	u64 (*rdtsc)(void *ctx);
};

enum trapvm_emu_status {
	TRAPVM_EMU_CONTINUE,	/* emulated, RIP advanced */
	TRAPVM_EMU_EXCEPTION,	/* an exception was delivered to the guest */
	TRAPVM_EMU_UNHANDLED,	/* not emulated, state untouched */
	TRAPVM_EMU_IO,		/* port I/O: see res->io */
	TRAPVM_EMU_HLT,		/* HLT executed: cpu->halted is set */
	TRAPVM_EMU_HYPERCALL,	/* VMCALL at CPL0: see res->hypercall */
	TRAPVM_EMU_SHUTDOWN,	/* triple fault: cpu->shutdown is set */
	TRAPVM_EMU_MMIO,	/* a load/store to device memory: res->mmio */
	TRAPVM_EMU_RETRY,	/* a locked write-back found memory changed */
};

/* Instruction classes, for tracing (res->insn_class). */
enum trapvm_insn_class {
	TRAPVM_INSN_NONE,
	TRAPVM_INSN_CLI, TRAPVM_INSN_STI, TRAPVM_INSN_HLT,
	TRAPVM_INSN_MOV_CR, TRAPVM_INSN_MOV_DR, TRAPVM_INSN_CLTS,
	TRAPVM_INSN_LGDT, TRAPVM_INSN_LIDT, TRAPVM_INSN_LLDT, TRAPVM_INSN_LTR,
	TRAPVM_INSN_SGDT, TRAPVM_INSN_SIDT, TRAPVM_INSN_SLDT, TRAPVM_INSN_STR,
	TRAPVM_INSN_SMSW, TRAPVM_INSN_LMSW,
	TRAPVM_INSN_MOV_SREG, TRAPVM_INSN_POP_SREG, TRAPVM_INSN_LSEG,
	TRAPVM_INSN_JMP_FAR, TRAPVM_INSN_CALL_FAR, TRAPVM_INSN_RET_FAR,
	TRAPVM_INSN_IRET, TRAPVM_INSN_SYSCALL, TRAPVM_INSN_SYSRET,
	TRAPVM_INSN_SWAPGS, TRAPVM_INSN_INT, TRAPVM_INSN_RDMSR,
	TRAPVM_INSN_WRMSR, TRAPVM_INSN_IN, TRAPVM_INSN_OUT, TRAPVM_INSN_INS,
	TRAPVM_INSN_OUTS, TRAPVM_INSN_INVLPG, TRAPVM_INSN_WBINVD,
	TRAPVM_INSN_XSETBV, TRAPVM_INSN_VMCALL, TRAPVM_INSN_RDPMC,
	TRAPVM_INSN_UD, TRAPVM_INSN_CLAC_STAC, TRAPVM_INSN_MONITOR_MWAIT,
	TRAPVM_INSN_SYSENTER, TRAPVM_INSN_CPUID, TRAPVM_INSN_DATA,
	TRAPVM_INSN_RDTSC,
	TRAPVM_INSN_NR
};

/* Inline I/O data for a single IN/OUT (or one string element). */
#define TRAPVM_EMU_IO_INLINE	8

struct trapvm_emu_result {
	/* in: optional buffer for REP INS/OUTS data (else one element) */
	u8 *io_buf;
	u32 io_buf_size;

	/* out */
	u32 status;		/* enum trapvm_emu_status */
	u32 insn_class;		/* enum trapvm_insn_class */
	u8 insn_len;		/* 0 if not decoded */
	u8 insn[TRAPVM_INSN_MAX];
	struct trapvm_fault fault;	/* TRAPVM_EMU_EXCEPTION: what was raised */

	union {
		struct {
			u8 in;		/* 1: IN/INS, 0: OUT/OUTS */
			u8 size;	/* 1, 2, 4 */
			u8 string;	/* INS/OUTS */
			u8 rep;
			u16 port;
			u32 count;	/* elements (string: <= capacity) */
			u8 *data;	/* count * size bytes (OUT: filled) */
			u8 inline_data[TRAPVM_EMU_IO_INLINE];
			/* private to trapvm_emulate_in_complete() */
			u64 next_rip;
			u64 mem;	/* INS destination linear address */
		} io;
		struct {
			u64 nr;		/* RAX */
			u64 args[4];	/* RBX, RCX, RDX, RSI */
		} hypercall;
		/*
		 * TRAPVM_EMU_MMIO: a MOV-type access to gva (linear address)
		 * that ops reported as device memory.  A store (is_write)
		 * is complete from the guest's view (RIP advanced); a load
		 * needs trapvm_emulate_mmio_complete() with the data.
		 */
		struct {
			u64 gva;
			u8 len;		/* 1, 2, 4, 8 */
			u8 is_write;
			u8 data[8];	/* store: the bytes */
			/* private to trapvm_emulate_mmio_complete() */
			u8 reg, dst_size, sign;
			u64 next_rip;
		} mmio;
	};
};

/*
 * Emulate the instruction at cpu->rip (CS base + RIP, fetched with
 * ops->read and TRAPVM_ACC_FETCH).  Returns enum trapvm_emu_status (also
 * stored in res->status).  The interrupt shadow (cpu->interrupt_shadow)
 * is cleared before emulating and set again by STI (when IF was 0) and
 * MOV/POP SS.
 */
int trapvm_emulate(struct trapvm_cpu *cpu, const struct trapvm_emu_ops *ops,
		   void *ctx, struct trapvm_emu_result *res);

/*
 * Complete an IN/INS exit: @data holds res->io.count elements of
 * res->io.size bytes.  Writes AL/AX/EAX (IN) or guest memory (INS,
 * updating RDI/RCX) and advances RIP.  Returns CONTINUE, EXCEPTION (a
 * fault writing INS data; the elements before it are committed) or
 * SHUTDOWN.
 */
int trapvm_emulate_in_complete(struct trapvm_cpu *cpu,
			       const struct trapvm_emu_ops *ops, void *ctx,
			       struct trapvm_emu_result *res, const u8 *data);

/*
 * Complete a TRAPVM_EMU_MMIO load: @data holds res->mmio.len bytes read
 * from the device.  Writes the destination register, advances RIP.
 */
int trapvm_emulate_mmio_complete(struct trapvm_cpu *cpu,
				 struct trapvm_emu_result *res, const u8 *data);

/*
 * SYSCALL executed by the guest (the world switch gets it through the
 * host's LSTAR): cpu->rip must be the address OF the SYSCALL instruction
 * (hardware RCX - 2).  Performs the SDM's SYSCALL operation on the
 * virtual state (RCX, R11, FMASK, CS/SS from STAR, CPL0, RIP = LSTAR or
 * CSTAR from compatibility mode), or delivers #UD when EFER.SCE is clear
 * or outside long mode.  Returns CONTINUE, EXCEPTION or SHUTDOWN.
 */
int trapvm_emulate_syscall(struct trapvm_cpu *cpu,
			   const struct trapvm_emu_ops *ops, void *ctx);

/*
 * Exception and interrupt delivery through the guest's IDT (IA-32e mode:
 * 64-bit gates, IST, CPL switch with TSS.RSP0, #DF and triple-fault
 * escalation).  cpu->rip must be the RIP to push (the faulting
 * instruction for faults, the next one for traps).  Returns
 * TRAPVM_EMU_EXCEPTION or TRAPVM_EMU_SHUTDOWN (cpu->shutdown set).
 *
 * trapvm_deliver_exception: a hardware exception; for #PF set cpu->cr2
 * first (or use trapvm_deliver_fault, which does it).
 * trapvm_deliver_interrupt: an external interrupt (caller checked IF and
 * the interrupt shadow); EXT is set in error codes of nested faults.
 * trapvm_deliver_soft_int: INT n / INT3 semantics (gate DPL checked
 * against CPL): cpu->rip is the INT instruction, insn_len its length
 * (the frame gets rip + insn_len; faults while delivering report rip).
 */
int trapvm_deliver_exception(struct trapvm_cpu *cpu,
			     const struct trapvm_emu_ops *ops, void *ctx,
			     unsigned int vector, bool has_error_code,
			     u32 error_code);
int trapvm_deliver_fault(struct trapvm_cpu *cpu,
			 const struct trapvm_emu_ops *ops, void *ctx,
			 const struct trapvm_fault *fault);
int trapvm_deliver_interrupt(struct trapvm_cpu *cpu,
			     const struct trapvm_emu_ops *ops, void *ctx,
			     unsigned int vector);
int trapvm_deliver_soft_int(struct trapvm_cpu *cpu,
			    const struct trapvm_emu_ops *ops, void *ctx,
			    unsigned int vector, unsigned int insn_len);

/* Does the vector push an error code (for hardware exceptions)? */
bool trapvm_exception_has_error_code(unsigned int vector);

/* Canonical for the guest's paging mode (CR4.LA57)? */
bool trapvm_is_canonical(const struct trapvm_cpu *cpu, u64 addr);

/* What a write must satisfy for an MSR that is a plain vCPU field. */
enum trapvm_msr_rule {
	TRAPVM_MSR_RULE_ANY,		/* every value */
	TRAPVM_MSR_RULE_CANONICAL,	/* a canonical address */
	TRAPVM_MSR_RULE_HIGH_ZERO,	/* bits 63:32 reserved */
	TRAPVM_MSR_RULE_TRUNC32,	/* 32 bits wide: 63:32 dropped */
};

/*
 * The u64 of @cpu that holds @msr, with its rule in @rule, if @msr is one
 * with no side effects (STAR, LSTAR, FS_BASE...); NULL otherwise.  The
 * emulator's RDMSR/WRMSR and the GET/SET_MSRS ioctls share this list.
 */
u64 *trapvm_msr_field(struct trapvm_cpu *cpu, u32 msr,
		      enum trapvm_msr_rule *rule);

#endif /* _TRAPVM_EMULATE_H */
