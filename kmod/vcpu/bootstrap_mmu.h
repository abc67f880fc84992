/* SPDX-License-Identifier: GPL-2.0 */
/*
 * TEMPORARY bootstrap shadow for the world switch, until the shadow MMU
 * (kmod/shadow/) is wired into the run loop: identity-maps guest RAM
 * (gva == gpa, user, writable, executable, 4 KiB pages) lazily on #PF,
 * and carries the hole.  It ignores the guest's own page tables.
 */
#ifndef _TRAPVM_BOOTSTRAP_MMU_H
#define _TRAPVM_BOOTSTRAP_MMU_H

#include <linux/types.h>

struct trapvm_vm;
struct trapvm_boot_mmu;

struct trapvm_boot_mmu *trapvm_boot_mmu_create(struct trapvm_vm *vm);
void trapvm_boot_mmu_destroy(struct trapvm_boot_mmu *m);
/* CR3 value of the shadow root (of the host's paging depth). */
u64 trapvm_boot_mmu_cr3(struct trapvm_boot_mmu *m);
/*
 * A #PF at @gva: 0 if it was a hidden fault (now mapped, re-run the
 * instruction), 1 if it is the guest's own fault, -ENOMEM.  May sleep.
 */
int trapvm_boot_mmu_fault(struct trapvm_boot_mmu *m, u64 gva, u32 error_code);

#endif /* _TRAPVM_BOOTSTRAP_MMU_H */
