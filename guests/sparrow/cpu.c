// SPDX-License-Identifier: GPL-2.0
/*
 * GDT, TSS, IDT and the SYSCALL MSRs.  The GDT keeps the trapvm boot
 * layout (0x10/0x18 kernel, 0x23/0x2b/0x33 user, as Linux) so STAR can use
 * the usual SYSCALL/SYSRET selector arithmetic; the TSS follows at 0x40.
 */
#include "sparrow.h"

#define MSR_EFER	0xc0000080
#define MSR_STAR	0xc0000081
#define MSR_LSTAR	0xc0000082
#define MSR_CSTAR	0xc0000083
#define MSR_SFMASK	0xc0000084
#define EFER_SCE	BIT_ULL(0)
#define EFER_NXE	BIT_ULL(11)

struct tss {
	u32 reserved0;
	u64 rsp[3];
	u64 reserved1;
	u64 ist[7];
	u64 reserved2;
	u16 reserved3;
	u16 iomap_base;
} __packed;

struct idt_gate {
	u16 off_lo;
	u16 sel;
	u8 ist;
	u8 type;
	u16 off_mid;
	u32 off_hi;
	u32 reserved;
} __packed;

struct desc_ptr {
	u16 limit;
	u64 base;
} __packed;

static u64 gdt[10] __aligned(16);
static struct tss tss __aligned(16);
static struct idt_gate idt[256] __aligned(16);
static u8 df_stack[4096] __aligned(16);
u64 syscall_kstack_top;

void tss_set_rsp0(u64 rsp0)
{
	tss.rsp[0] = rsp0;
	syscall_kstack_top = rsp0;
}

static void set_gate(int vec, u64 handler, int dpl, int ist)
{
	struct idt_gate *g = &idt[vec];

	g->off_lo = handler & 0xffff;
	g->sel = KERNEL_CS;
	g->ist = ist;
	g->type = 0x8e | (dpl << 5);	/* present, 64-bit interrupt gate */
	g->off_mid = (handler >> 16) & 0xffff;
	g->off_hi = handler >> 32;
	g->reserved = 0;
}

void cpu_init(void)
{
	struct desc_ptr gdtr, idtr;
	u64 base = (u64)&tss, limit = sizeof(tss) - 1;
	int i;

	gdt[0] = 0;
	gdt[1] = 0x00cf9a000000ffffULL;		/* 0x08: unused */
	gdt[2] = 0x00af9a000000ffffULL;		/* 0x10: kernel code 64 */
	gdt[3] = 0x00cf92000000ffffULL;		/* 0x18: kernel data */
	gdt[4] = 0x00cffa000000ffffULL;		/* 0x20: user code 32 */
	gdt[5] = 0x00cff2000000ffffULL;		/* 0x28: user data */
	gdt[6] = 0x00affa000000ffffULL;		/* 0x30: user code 64 */
	gdt[7] = 0;
	/* 0x40: 64-bit available TSS (16 bytes). */
	gdt[8] = (limit & 0xffff) | ((base & 0xffffff) << 16) |
		 (0x89ULL << 40) | (((limit >> 16) & 0xf) << 48) |
		 (((base >> 24) & 0xff) << 56);
	gdt[9] = base >> 32;

	tss.iomap_base = sizeof(tss);	/* no I/O bitmap */
	tss.ist[0] = (u64)df_stack + sizeof(df_stack);

	gdtr.limit = sizeof(gdt) - 1;
	gdtr.base = (u64)gdt;
	asm volatile("lgdt %0" : : "m"(gdtr));
	/* Reload CS with a far return and the data segments. */
	asm volatile("pushq %0\n\t"
		     "leaq 1f(%%rip), %%rax\n\t"
		     "pushq %%rax\n\t"
		     "lretq\n"
		     "1:\n\t"
		     "movl %1, %%eax\n\t"
		     "movl %%eax, %%ds\n\t"
		     "movl %%eax, %%es\n\t"
		     "movl %%eax, %%ss\n\t"
		     "xorl %%eax, %%eax\n\t"
		     "movl %%eax, %%fs\n\t"
		     "movl %%eax, %%gs\n\t"
		     : : "i"((u64)KERNEL_CS), "i"(KERNEL_DS) : "rax", "memory");
	asm volatile("ltr %w0" : : "r"(TSS_SEL));

	for (i = 0; i < 256; i++)
		set_gate(i, (u64)isr_stubs + 16 * i, 0, i == 8 ? 1 : 0);
	idtr.limit = sizeof(idt) - 1;
	idtr.base = (u64)idt;
	asm volatile("lidt %0" : : "m"(idtr));

	/*
	 * SYSCALL: CS 0x10/SS 0x18.  SYSRET: CS 0x23 + 16 = 0x33,
	 * SS 0x23 + 8 = 0x2b.  SFMASK clears IF, TF, DF, NT and AC.
	 */
	wrmsr(MSR_EFER, rdmsr(MSR_EFER) | EFER_SCE | EFER_NXE);
	wrmsr(MSR_STAR, ((u64)0x23 << 48) | ((u64)KERNEL_CS << 32));
	wrmsr(MSR_LSTAR, (u64)syscall_entry);
	wrmsr(MSR_CSTAR, 0);
	wrmsr(MSR_SFMASK, 0x44700);
}
