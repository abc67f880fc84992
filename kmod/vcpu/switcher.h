/* SPDX-License-Identifier: GPL-2.0 */
/*
 * trapvm world switcher: moving a host CPU between the host kernel and a
 * guest running at hardware CPL3, and back.
 *
 * Every possible host CPU owns a 64 KiB region of the guest-visible hole
 * (TRAPVM_HOLE_START + cpu * TRAPVM_SW_REGION_SIZE):
 *
 *   page  0-1   text: a copy of the switcher code (position independent,
 *               it reaches its own data RIP-relatively, so no register or
 *               GS base is needed to find this CPU's data)
 *   page  2     IDT: 256 interrupt gates, DPL 0, to the stubs in the text
 *   page  3     data: struct trapvm_sw_data, GDT and TSS
 *   page  4     host state: struct trapvm_sw_host (transit root only)
 *   page  5     stack: TSS.RSP0, the exit frame lands here
 *   page  7     NMI IST stack   (IST2, as in Linux)
 *   page  9     #DF IST stack   (IST1)
 *   page 11     #MC IST stack   (IST4)
 *   page 13     #DB IST stack   (IST3)
 *   others      unmapped guard pages
 *
 * All of it is mapped supervisor-only (U=0): the guest at CPL3 cannot
 * read it.  One set of hole page tables (a PDPT hanging off PML4 slot
 * 256) is linked into every guest's shadow root; the transit root has a
 * copy that also maps the host-state page.  Host pointers (stack, CR3,
 * GDT/IDT, GS base, return address) live only there, so even a
 * Meltdown-style speculative read from the guest finds nothing of the
 * host in what its page tables map.
 *
 * The offsets below are shared by switcher.S and C; switcher.c checks
 * them against struct trapvm_sw_data at build time.
 */
#ifndef _TRAPVM_SWITCHER_H
#define _TRAPVM_SWITCHER_H

#define TRAPVM_SW_REGION_PAGES	16
#define TRAPVM_SW_REGION_SIZE	(TRAPVM_SW_REGION_PAGES * 4096)

#define TRAPVM_SW_TEXT_PAGE	0
#define TRAPVM_SW_TEXT_PAGES	2
#define TRAPVM_SW_IDT_PAGE	2
#define TRAPVM_SW_DATA_PAGE	3
#define TRAPVM_SW_HOST_PAGE	4
#define TRAPVM_SW_STACK_PAGE	5
#define TRAPVM_SW_NMI_PAGE	7
#define TRAPVM_SW_DF_PAGE	9
#define TRAPVM_SW_MC_PAGE	11
#define TRAPVM_SW_DB_PAGE	13

#define TRAPVM_SW_DATA_OFF	(TRAPVM_SW_DATA_PAGE * 4096)
#define TRAPVM_SW_HOST_OFF	(TRAPVM_SW_HOST_PAGE * 4096)
/* Top of the RSP0 stack: TSS.RSP0, and where the entry path runs. */
#define TRAPVM_SW_STACK_TOP	((TRAPVM_SW_STACK_PAGE + 1) * 4096)

/* IST slots, the same numbers Linux uses (so host IST stacks fit too). */
#define TRAPVM_SW_IST_DF	1
#define TRAPVM_SW_IST_NMI	2
#define TRAPVM_SW_IST_DB	3
#define TRAPVM_SW_IST_MC	4

/* Pseudo vectors reported in vector besides the hardware ones 0..255. */
#define TRAPVM_SW_VEC_SYSCALL	0x100	/* SYSCALL from the guest */
#define TRAPVM_SW_VEC_FAULT	0x101	/* unexpected fault inside the switcher */
#define TRAPVM_SW_VEC_ABORT	0x102	/* entry abandoned for a host NMI */

/* struct trapvm_sw_data field offsets. */
#define SWD_GPRS		0x000	/* 16 GPRs, architectural order */
#define SWD_RIP			0x080
#define SWD_RFLAGS		0x088
#define SWD_VECTOR		0x090
#define SWD_ERROR_CODE		0x098
#define SWD_CR2			0x0a0
#define SWD_CS			0x0a8
#define SWD_SS			0x0b0
#define SWD_GUEST_GS		0x0b8
#define SWD_TRANSIT_CR3		0x0c0
#define SWD_SHADOW_CR3		0x0c8
#define SWD_NMI_PENDING		0x0d0
#define SWD_KERNEL_EXC		0x0d8
#define SWD_FAULT_VECTOR	0x0e0
#define SWD_FAULT_RIP		0x0e8
#define SWD_SCRATCH		0x0f0
#define SWD_VERW_SEL		0x0f8
#define SWD_SW_GDT		0x100	/* struct desc_ptr, 10 bytes */
#define SWD_SW_IDT		0x110
#define SWD_GDT			0x200	/* 16 descriptors */
#define SWD_TSS			0x300	/* struct x86_hw_tss */

/* struct trapvm_sw_host field offsets (the host-state page). */
#define SWH_RSP			0x00
#define SWH_CR3			0x08
#define SWH_CR4			0x10
#define SWH_GS			0x18
#define SWH_TSS_DESC		0x20
#define SWH_RET			0x28
#define SWH_GDT_RO		0x30	/* struct desc_ptr, 10 bytes */
#define SWH_GDT_RW		0x40
#define SWH_IDT			0x50

#define TRAPVM_SW_GDT_ENTRIES	16
#define TRAPVM_SW_TSS_SEL	0x40	/* GDT_ENTRY_TSS * 8, as in Linux */

#ifndef __ASSEMBLY__
#include <linux/types.h>
#include <asm/desc_defs.h>

/*
 * Guest hardware state the switcher loads and saves.  gpr[] is in the
 * architectural order (enum trapvm_gpr), gpr[GPR_RSP] included.
 */
struct trapvm_sw_regs {
	u64 gpr[16];
	u64 rip;
	u64 rflags;		/* hardware value: IF=1, IOPL=0 enforced */
	u64 fs_base;
	u64 gs_base;
};

/* Why the guest stopped, as the hardware reported it. */
struct trapvm_sw_exit {
	u32 vector;		/* 0..255, or TRAPVM_SW_VEC_* */
	u32 error_code;		/* 0 if the vector has none */
	u64 cr2;		/* #PF only */
	u64 cs, ss;		/* selectors of the exit frame */
	u64 fault_rip;		/* TRAPVM_SW_VEC_FAULT: where */
	u32 fault_vector;	/* TRAPVM_SW_VEC_FAULT: what */
	bool host_event;	/* a host IRQ/NMI/#MC, already handled */
	u64 tsc_guest;		/* TSC at the switch into the guest */
	u64 tsc_exit;		/* TSC back in the host */
};

/* Lives at offset 0 of the data page; see SWD_* above. */
struct trapvm_sw_data {
	u64 gprs[16];
	u64 rip;
	u64 rflags;
	u64 vector;
	u64 error_code;
	u64 cr2;
	u64 cs;
	u64 ss;
	u64 guest_gs;
	u64 transit_cr3;
	u64 shadow_cr3;
	u64 nmi_pending;	/* NMI taken inside the switcher */
	u64 kernel_exc;		/* bitmask of #DB/#MC taken inside it */
	u64 fault_vector;
	u64 fault_rip;
	u64 scratch;
	u64 verw_sel;		/* a writable data selector for VERW */
	struct desc_ptr sw_gdt;
	u8 pad0[6];
	struct desc_ptr sw_idt;
	u8 pad1[6];
};

/* Lives at offset 0 of the host-state page; see SWH_* above. */
struct trapvm_sw_host {
	u64 rsp;
	u64 cr3;
	u64 cr4;
	u64 gs_base;
	u64 tss_desc;		/* writable alias of the host TSS descriptor */
	u64 ret;		/* module text to return to */
	struct desc_ptr gdt_ro;
	u8 pad0[6];
	struct desc_ptr gdt_rw;
	u8 pad1[6];
	struct desc_ptr idt;
	u8 pad2[6];
};

struct trapvm_vm;

/*
 * Switcher users: every vCPU holds a reference (trapvm_vcpu_arch_create),
 * the per-CPU pages exist while there is at least one.
 */
int trapvm_switcher_get(void);
void trapvm_switcher_put(void);

/*
 * The entry a shadow root must carry in PML4 slot 256 (the hole), for a
 * 4-level guest shadow.  Valid while a switcher reference is held.
 */
u64 trapvm_switcher_hole_pml4e(void);

/*
 * Run the guest once on this CPU: load @regs, switch to @shadow_cr3
 * (physical address of a root of the host's paging depth that carries
 * the hole entry), run until the first trap, save @regs, fill @exit.
 * Host interrupts and NMIs that stopped the guest are handed to the host
 * before returning (exit->host_event).  Call with interrupts disabled,
 * inside kernel_fpu_begin() (the guest owns the FPU registers).
 */
void trapvm_switcher_run(struct trapvm_sw_regs *regs, u64 shadow_cr3,
			 struct trapvm_sw_exit *exit);

/* asm: switcher.S */
void trapvm_sw_enter(struct trapvm_sw_data *data, unsigned long hole_entry,
		     unsigned long cr4, struct trapvm_sw_host *host);
void trapvm_sw_host_return(void);
void trapvm_sw_dispatch(unsigned long handler);
extern const u8 trapvm_sw_text_start[], trapvm_sw_text_end[];
extern const u8 trapvm_sw_stubs[], trapvm_sw_entry[], trapvm_sw_syscall[];

#endif /* __ASSEMBLY__ */
#endif /* _TRAPVM_SWITCHER_H */
