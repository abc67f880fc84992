/* SPDX-License-Identifier: GPL-2.0 */
/*
 * sparrow: a small multi-process kernel for trapvm (and bare x86-64).
 * Kernel-wide declarations.
 */
#ifndef _SPARROW_H
#define _SPARROW_H

#include <stdint.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdbool.h>
#include "../../uapi/linux/trapvm_guest.h"
#include "abi.h"
#include "compiler.h"
#include "fmt.h"

typedef uint8_t u8;
typedef uint16_t u16;
typedef uint32_t u32;
typedef uint64_t u64;
typedef int64_t s64;

#define PAGE_SIZE	4096UL
#define PAGE_MASK	(~(PAGE_SIZE - 1))
#define ALIGN_UP(x, a)	(((x) + (a) - 1) & ~((u64)(a) - 1))

/* Selectors: the trapvm boot GDT layout (the same as Linux's). */
#define KERNEL_CS	TRAPVM_GUEST_KERNEL_CS
#define KERNEL_DS	TRAPVM_GUEST_KERNEL_DS
#define USER_DS		TRAPVM_GUEST_USER_DS
#define USER_CS		TRAPVM_GUEST_USER_CS
#define TSS_SEL		0x40

/* Page-table entry bits. */
#define PTE_P		BIT_ULL(0)
#define PTE_W		BIT_ULL(1)
#define PTE_U		BIT_ULL(2)
#define PTE_PWT		BIT_ULL(3)
#define PTE_PCD		BIT_ULL(4)
#define PTE_A		BIT_ULL(5)
#define PTE_PS		BIT_ULL(7)
#define PTE_COW		BIT_ULL(9)	/* software: copy on write */
#define PTE_NX		BIT_ULL(63)
#define PTE_ADDR	0x000ffffffffff000ULL

/*
 * Kernel: identity map of the first 4 GiB in PML4 slot 0 (shared by all
 * address spaces, supervisor-only).  User space: PML4 slots 1..255, far
 * from the trapvm hole (slots 256..271), which sparrow never touches.
 */
#define KERNEL_MAP_END	0x100000000ULL

/* Interrupt vectors. */
#define VEC_TIMER	0x20
#define VEC_SPURIOUS	0xff
#define VEC_SYSCALL	0x100	/* pseudo-vector: frame built by SYSCALL */
#define HZ		100

/* Trap frame: what entry.S pushes (keep in sync). */
struct trapframe {
	u64 r15, r14, r13, r12, r11, r10, r9, r8;
	u64 rbp, rdi, rsi, rdx, rcx, rbx, rax;
	u64 vec, err;
	u64 rip, cs, rflags, rsp, ss;
};

/* x86 helpers. */
static inline void outb(u16 port, u8 v)
{
	asm volatile("out %0, %1" : : "a"(v), "Nd"(port));
}

static inline void outl(u16 port, u32 v)
{
	asm volatile("out %0, %1" : : "a"(v), "Nd"(port));
}

static inline u8 inb(u16 port)
{
	u8 v;

	asm volatile("in %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline u64 rdtsc(void)
{
	u32 lo, hi;

	asm volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return ((u64)hi << 32) | lo;
}

static inline u64 rdmsr(u32 msr)
{
	u32 lo, hi;

	asm volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
	return ((u64)hi << 32) | lo;
}

static inline void wrmsr(u32 msr, u64 v)
{
	asm volatile("wrmsr" : : "c"(msr), "a"((u32)v), "d"((u32)(v >> 32))
		     : "memory");
}

static inline void write_cr3(u64 v)
{
	asm volatile("mov %0, %%cr3" : : "r"(v) : "memory");
}

static inline u64 read_cr2(void)
{
	u64 v;

	asm volatile("mov %%cr2, %0" : "=r"(v));
	return v;
}

static inline void flush_tlb_page(u64 va)
{
	asm volatile("invlpg (%0)" : : "r"(va) : "memory");
}

/*
 * Interrupt state is kept in software (the trapvm contract forbids reading
 * IF with PUSHF): the kernel runs with IF=0 except in the idle loop.
 */
static inline void cli(void)
{
	asm volatile("cli" : : : "memory");
}

static inline void sti_hlt(void)
{
	asm volatile("sti; hlt" : : : "memory");
}

/* lib.c */
void *memset(void *d, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
int strcmp(const char *a, const char *b);
int strncmp(const char *a, const char *b, size_t n);

/* console.c */
void uart_init(void);
void uart_write(const char *s, size_t n);
__printf(3, 4) int ksnprintf(char *buf, size_t size, const char *fmt, ...);
__printf(1, 2) void kprintf(const char *fmt, ...);
__printf(1, 2) __noreturn void panic(const char *fmt, ...);
__noreturn void poweroff(u32 status);

/* main.c */
extern struct trapvm_boot_info boot_info;
extern char boot_cmdline[256];
extern int boot_mode;
extern u64 tsc_khz;
u64 hv_exit_count(void);
const char *cmdline_value(const char *key);
long hypercall(u64 nr, u64 a0, u64 a1, u64 a2, u64 a3);
extern char hypercall_insn[];

/* cpu.c */
void cpu_init(void);
void tss_set_rsp0(u64 rsp0);
extern u64 syscall_kstack_top;

/* apic.c */
void timer_init(void);
void apic_eoi(void);
extern u64 jiffies;

/* mm.c */
void mm_init(void);
u64 page_alloc(void);
void page_get(u64 pa);
void page_put(u64 pa);
u64 pages_free(void);
static inline void *phys_to_virt(u64 pa)
{
	return (void *)pa;
}
extern u64 kernel_pml4;
extern bool pv_mmu;
void mm_pv_init(void);
void mm_pv_report(void);

struct proc;
int vm_fault(struct proc *p, u64 addr, u64 err);
int vm_fork(struct proc *child, struct proc *parent);
void vm_free_user(struct proc *p);
int vm_add(struct proc *p, u64 start, u64 end, u32 flags,
	   const u8 *backing, u64 backing_len);
int vm_remove(struct proc *p, u64 start, u64 end);
u64 vm_map_anon(struct proc *p, u64 len);
int copy_from_user(void *dst, u64 usrc, u64 n);
int copy_to_user(u64 udst, const void *src, u64 n);
int strncpy_from_user(char *dst, u64 usrc, u64 n);

/* Address-space regions. */
#define VM_READ		1
#define VM_WRITE	2
#define VM_EXEC		4
#define VM_STACK	8
#define NR_VMAS		16

struct vma {
	u64 start, end;		/* [start, end), page aligned; end 0 = free */
	u32 flags;
	const u8 *backing;	/* file contents mapped at start, or NULL */
	u64 backing_len;
};

/* proc.c */
#define NPROC		64
#define KSTACK_SIZE	16384

enum proc_state { P_UNUSED, P_RUNNABLE, P_SLEEPING, P_ZOMBIE };

struct proc {
	enum proc_state state;
	int pid;
	struct proc *parent;
	u64 ksp;		/* saved kernel stack pointer (swtch) */
	u64 kstack_top;
	u64 pml4;		/* physical address */
	struct trapframe *tf;
	struct vma vmas[NR_VMAS];
	u64 mmap_next;		/* next address for anonymous mappings */
	int exit_status;	/* wait status */
	bool killed;
	bool waiting;
	char name[16];
	u64 nr_faults;
};

extern struct proc *cur;
void proc_init(void);
__noreturn void start_init(int mode);
void schedule(void);
__noreturn void do_exit(int status);
long do_fork(struct trapframe *tf);
long do_exec(struct trapframe *tf, const char *name, u64 arg);
long do_wait(int pid, u64 ustatus);
long do_kill(int pid);
void check_resched(void);
extern bool need_resched;

/* syscall.c, trap.c */
void syscall_dispatch(struct trapframe *tf);
void trap(struct trapframe *tf);

/* entry.S */
void swtch(u64 *old_ksp, u64 new_ksp);
void fork_ret(void);
void syscall_entry(void);
extern char isr_stubs[];

/* kernel.ld */
extern char __image_start[], __image_end[];

/* main.c, mbconv.c: entered from assembly */
void kmain(struct trapvm_boot_info *bi);
struct trapvm_boot_info *mb_to_boot_info(u32 mbi_addr, u32 magic);

/* userbins.S */
struct user_prog {
	const char *name;
	const u8 *start, *end;
};
extern const struct user_prog user_progs[];
const struct user_prog *user_prog_find(const char *name);

#endif /* _SPARROW_H */
