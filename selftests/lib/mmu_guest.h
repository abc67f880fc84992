/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helpers for the shadow-MMU tests (selftests/trapvm/mmu_*_test.c) on top
 * of trapvm_test.h: an address space whose guest-kernel mappings are
 * supervisor-only (so the guest may turn on SMEP and SMAP), a page of
 * user-mode code mapped at a user alias, and page-table walking on the
 * test side.
 */
#ifndef SELFTESTS_MMU_GUEST_H
#define SELFTESTS_MMU_GUEST_H

#include "trapvm_test.h"

#define PTE_A			(1ULL << 5)
#define PTE_D			(1ULL << 6)

#define MSR_EFER		0xc0000080
#define EFER_NXE		(1ULL << 11)
#define CR0_WP			(1ULL << 16)
#define CR4_SMEP		(1ULL << 20)
#define CR4_SMAP		(1ULL << 21)

/* Where mmu_user_page (the user-mode stubs) is mapped for guest CPL3. */
#define MMU_USER_ALIAS		0x300000000000ULL

/*
 * Test side: clear U/S in every leaf of the guest's identity map and
 * image (not in the user stack), and map the page holding the user stubs
 * at MMU_USER_ALIAS with U/S=1.
 */
void mmu_kernel_only(struct tvm *vm);
/* The guest-physical address of the entry of @level (4..1) for @gva. */
uint64_t mmu_entry_gpa(struct tvm *vm, uint64_t cr3, uint64_t gva,
		       int level);
/* CPUID: MAXPHYADDR and 1 GiB page support of the (test host) CPU. */
unsigned int mmu_maxphyaddr(void);
bool mmu_has_1g(void);

/*
 * The host's kernel log: a mark, then "no splat and no trapvm vCPU
 * diagnostic since the mark" (only this test's own doing); the library's
 * tvm_host_log_mark() and tvm_host_clean_since().
 */
static inline long long mmu_host_log_mark(void)
{
	return tvm_host_log_mark();
}

static inline bool mmu_host_clean_since(long long mark, char *why,
					size_t len)
{
	return tvm_host_clean_since(mark, why, len);
}

/* Guest side. */
static inline void mmu_invlpg(uint64_t va)
{
	asm volatile("invlpg (%0)" : : "r"(va) : "memory");
}

static inline uint64_t mmu_read_cr(int n)
{
	uint64_t v = 0;

	if (n == 0)
		asm volatile("mov %%cr0, %0" : "=r"(v));
	else if (n == 2)
		asm volatile("mov %%cr2, %0" : "=r"(v));
	else if (n == 3)
		asm volatile("mov %%cr3, %0" : "=r"(v));
	else if (n == 4)
		asm volatile("mov %%cr4, %0" : "=r"(v));
	return v;
}

static inline void mmu_write_cr(int n, uint64_t v)
{
	if (n == 0)
		asm volatile("mov %0, %%cr0" : : "r"(v) : "memory");
	else if (n == 3)
		asm volatile("mov %0, %%cr3" : : "r"(v) : "memory");
	else if (n == 4)
		asm volatile("mov %0, %%cr4" : : "r"(v) : "memory");
}

/*
 * The fault catcher: while armed, a #PF, #GP or #UD is recorded in
 * mmu_fault and execution continues at the address in %rcx (each access
 * stub loads it with its continuation first).  vector 0xff: no fault.
 */
struct mmu_fault {
	uint64_t vector, err, cr2, rip, cs;
};

extern volatile struct mmu_fault mmu_fault;
extern volatile uint64_t mmu_fault_armed;
void mmu_guest_install_catcher(void);

/*
 * Access stubs, at CPL0 (mmu_k_*, mmu_k_*_ac with STAC/CLAC around the
 * access) and at CPL3 through mmu_user_call(mmu_user_addr(mmu_u_*), ...).
 * read/fetch return the byte read (fetch: the code at @va must be
 * "mov $imm32, %eax; jmp *%rcx") or 0x1ff when the access faulted.
 */
uint64_t mmu_k_read(uint64_t va);
uint64_t mmu_k_write(uint64_t va, uint64_t val);
uint64_t mmu_k_fetch(uint64_t va);
uint64_t mmu_k_read_ac(uint64_t va);
uint64_t mmu_k_write_ac(uint64_t va, uint64_t val);
uint64_t mmu_k_fetch_ac(uint64_t va);
/* 8-byte accesses; a fault shows only in mmu_fault.vector. */
uint64_t mmu_k_read64(uint64_t va);
void mmu_k_write64(uint64_t va, uint64_t val);
extern const unsigned char mmu_user_page[], mmu_u_read[], mmu_u_write[],
	mmu_u_fetch[];
uint64_t mmu_user_call(uint64_t rip, uint64_t a0, uint64_t a1);

static inline uint64_t mmu_user_addr(const unsigned char *stub)
{
	return MMU_USER_ALIAS + (stub - mmu_user_page);
}

/* The code the fetch stubs run: mov $0xa5, %eax; jmp *%rcx. */
#define MMU_FETCH_CODE		{ 0xb8, 0xa5, 0, 0, 0, 0xff, 0xe1 }
#define MMU_NO_VALUE		0x1ff

#endif /* SELFTESTS_MMU_GUEST_H */
