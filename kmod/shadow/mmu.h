/* SPDX-License-Identifier: GPL-2.0 */
/*
 * trapvm shadow MMU: the interface the rest of the module uses.
 *
 * The guest (virtual CPL0 and CPL3 alike) runs at hardware CPL3 with CR3
 * pointing at a shadow root built here.  Shadow pages are cached per
 * (guest table gfn, role); every guest page table is write-protected in
 * the shadow and the guest's writes to it are emulated and keep the
 * shadow in sync, so guest CR3 loads switch between cached roots.  A
 * hardware #PF that the guest's translation permits is a "hidden" fault,
 * fixed here and never seen by the guest; one it does not permit is
 * injected as the #PF the guest's tables give.  See
 * Documentation/shadow-mmu.rst and mmu_internal.h.
 *
 * Views.  Both guest modes run at CPL3, so hardware U/S cannot separate
 * them: the role of a shadow page includes the view (enum trapvm_view in
 * <trapvm/walk.h>): guest user mode (only guest user pages), guest kernel
 * mode with SMAP closed, guest kernel mode with SMAP open (SMAP off or
 * RFLAGS.AC = 1).  The kernel views map guest supervisor pages
 * user-accessible.
 *
 * Host paging depth.  With 5-level host paging the root is a PML5 whose
 * slot 0 holds the PML4 of the guest's lower half and slot 511 the PML4
 * of its upper half; a guest address that is not canonical in 48 bits
 * faults through the empty PML5 slots and is reported as
 * TRAPVM_MMU_FAULT_GP.
 *
 * The hole (TRAPVM_HOLE_START..END, PML4 slots 256..271 of the upper
 * half): never filled from the guest's tables.  The world switch puts its
 * per-CPU switcher PDPT into slot 256 of the current root before every
 * entry (trapvm_mmu_hole_slot()); this code never reads or frees it.
 *
 * What a shadow leaf holds: the host page backing the guest frame (a page
 * reference is held per leaf), P, U/S = 1, R/W only if the guest's view
 * may write, the guest's D flag is set and the frame is not a guest page
 * table, NX if the view may not fetch, protection key 0.  The exception:
 * a guest kernel fetch from a user page with SMAP on, AC = 0 and SMEP off
 * (execute but not read) gets a read-only executable leaf with key
 * TRAPVM_SHADOW_XO_PKEY, which the PKRU the guest runs with denies for
 * data (<trapvm/walk.h>); on a host without protection keys that fetch
 * is KILL.  Guest 2 MiB and 1 GiB pages are
 * shadowed with 4 KiB leaves.  Nothing but guest RAM pages is ever mapped.
 *
 * Hardware TLB: this code changes the shadow while the host CR3 is loaded;
 * the world switch must load the shadow CR3 without PCID no-flush on every
 * entry, so the hardware never uses a stale shadow translation.
 *
 * Several vCPUs: the shadow page cache is per VM (vm->mmu), shared by the
 * vCPUs under one mutex; each vCPU has its own root cache and its own
 * PML4 shadow pages (the world switch writes into them).  A change that
 * takes rights away from the shared shadow makes the other vCPUs that are
 * in the guest exit (an IPI, shadow/tlb.c) before anything is freed or
 * relied on, so a page-table write by one vCPU reaches all at once.
 *
 * Locking: the vCPU functions here run under vcpu->mutex (the RUN loop and
 * the register ioctls) and take the VM's mmu lock (vcpu->mutex -> vm->lock
 * -> mmu lock); trapvm_mmu_request_zap() may be called from anywhere.
 * Everything may sleep (allocations, first touch of guest memory) except
 * trapvm_mmu_hole_slot(), trapvm_mmu_guest_enter()/exit() and
 * trapvm_mmu_request_zap().
 *
 * Counters (vcpu->stats): MMU_HIDDEN_PF, MMU_CR3_LOADS, MMU_INVLPG,
 * MMU_SHADOW_ALLOC/FREE/LIVE, MMU_PT_WRITES, MMU_FLOODED, MMU_UNSHADOWED,
 * MMU_ROOT_HIT/MISS, MMU_RECLAIMED, MMU_HC_UPDATES, MMU_REMOTE_FLUSH, for
 * the vCPU that did the work; MMU_SHADOW_LIVE is the VM's gauge.  Injected
 * #PFs are counted (INJ_PF) by the exception delivery code when they
 * reach the guest.
 */
#ifndef _TRAPVM_SHADOW_MMU_H
#define _TRAPVM_SHADOW_MMU_H

#include <linux/types.h>
#include <linux/atomic.h>
#include <trapvm/walk.h>
#include <trapvm/emulate.h>	/* struct trapvm_fault */

struct trapvm_vm;
struct trapvm_vcpu;
struct trapvm_vcpu_mmu;

/*
 * RESUME  fixed (or nothing to do): re-enter the guest.
 * INJECT  deliver *inject (a #PF) to the guest.
 * MMIO    the access goes to a gpa outside RAM: emulate the instruction;
 *         trapvm_mmu_mmio_gpa() says where.
 * GP      non-canonical address: *inject is #GP(0) (the caller may make it
 *         #SS for a stack access).
 * KILL    internal failure (out of memory, a shadow bug): stop the VM.
 * EMULATE the guest's translation permits the access and the shadow
 *         cannot make the hardware do it: the fault has another cause
 *         (a supervisor-mode access by the hardware itself, e.g. QEMU TCG
 *         reads IRETQ frames that way and host SMAP stops it; or the
 *         shadow already allowed the access).  Emulate the instruction
 *         (or report the fault); resuming would fault again forever.
 */
enum trapvm_mmu_fault_result {
	TRAPVM_MMU_FAULT_RESUME,
	TRAPVM_MMU_FAULT_INJECT,
	TRAPVM_MMU_FAULT_MMIO,
	TRAPVM_MMU_FAULT_GP,
	TRAPVM_MMU_FAULT_KILL,
	TRAPVM_MMU_FAULT_EMULATE,
};

/*
 * Set up vcpu->mmu (and vcpu->vm->mmu with the first vCPU) and free it.
 * Call init when the vCPU is created (after vcpu->vm is set, under
 * vm->lock), destroy when it is freed (under vm->lock or when the VM is
 * freed, with no RUN of that vCPU in progress; other vCPUs may run).
 * destroy drops the vCPU's roots and PML4 pages, and with the last vCPU
 * frees every shadow page and drops every page reference; it is a no-op
 * if init failed or never ran.  init returns 0, -ENOMEM, or -EINVAL for
 * a vCPU id of TRAPVM_MAX_VCPUS or more.
 */
int trapvm_mmu_init(struct trapvm_vcpu *vcpu);
void trapvm_mmu_destroy(struct trapvm_vcpu *vcpu);

/*
 * The hardware CR3 value to enter the guest with, for the current virtual
 * mode (vcpu->cpu.cpl, CR4.SMAP, RFLAGS.AC).  Call before every entry
 * (with interrupts on: it may allocate and free pages).  Drops the shadow
 * first if a zap was requested (trapvm_mmu_request_zap()).  Picks the
 * cached root of the current CR3 and mode, or builds one.  Never fails:
 * out of memory, it returns an empty root and the next fault says KILL.
 */
phys_addr_t trapvm_mmu_root(struct trapvm_vcpu *vcpu);

/*
 * The entry of the root returned by the last trapvm_mmu_root() that covers
 * TRAPVM_HOLE_START (PML4 slot 256; under PML5 slot 511 with 5-level host
 * paging).  The world switch writes this CPU's switcher PDPT there before
 * every entry.  Slots 256..271 are never filled from the guest's tables.
 */
u64 *trapvm_mmu_hole_slot(struct trapvm_vcpu *vcpu);

/*
 * A #PF taken while the guest ran: @cr2 the faulting address, @hw_error
 * the hardware error code (W and I/D say what the access was; PK, a data
 * access to an execute-only leaf, is not special).  Walks the
 * guest's tables in the current virtual mode:
 *   the guest translation permits it -> fill the shadow, RESUME;
 *   it does not -> *inject = the guest's #PF (guest error code, CR2), INJECT;
 *   the page is outside guest RAM -> MMIO (gpa in trapvm_mmu_mmio_gpa());
 *   the address is not canonical (5-level hosts) -> GP;
 *   a hardware supervisor-mode access (U/S = 0 in @hw_error), or a fault
 *   on a translation the shadow already allows -> EMULATE;
 *   out of memory or an inconsistent shadow -> KILL.
 */
enum trapvm_mmu_fault_result trapvm_mmu_page_fault(struct trapvm_vcpu *vcpu,
						   u64 cr2, u32 hw_error,
						   struct trapvm_fault *inject);

/* The guest-physical address of the last MMIO result. */
u64 trapvm_mmu_mmio_gpa(struct trapvm_vcpu_mmu *mmu);

/*
 * The guest loaded CR3 (with or without PCID no-flush).  Counted; the next
 * trapvm_mmu_root() switches to the cached root of the new CR3.
 */
void trapvm_mmu_load_cr3(struct trapvm_vcpu *vcpu);

/* The guest executed INVLPG @gva: drop the shadow leaf of @gva. */
void trapvm_mmu_invlpg(struct trapvm_vcpu *vcpu, u64 gva);

/* CR0.PG/WP, CR4.PGE/PSE/PAE/SMEP/SMAP/PKE or EFER.NXE changed. */
void trapvm_mmu_reset(struct trapvm_vcpu *vcpu);

/*
 * The emulator could not perform the instruction behind the last #PF
 * exit (TRAPVM_EMU_UNHANDLED) at @cr2.  If that fault was a write to a
 * write-protected guest page table, the page is unshadowed and true is
 * returned: re-execute the instruction, it will run natively now.
 * False: the fault is the guest's.
 */
bool trapvm_mmu_unemulatable(struct trapvm_vcpu *vcpu, u64 cr2);

/*
 * TRAPVM_HC_MMU_UPDATE (<linux/trapvm_guest.h>): @count struct
 * trapvm_mmu_update at guest-physical @list_gpa, each written as an
 * emulated guest write would be.  Returns @count, or a negative errno
 * and nothing written: -E2BIG (count > TRAPVM_MMU_UPDATE_MAX), -EINVAL
 * (list or a pte_gpa not 8-byte aligned), -EFAULT (outside RAM).
 */
long trapvm_mmu_hc_update(struct trapvm_vcpu *vcpu, u64 list_gpa, u64 count);

/*
 * Write @len bytes at guest-physical @gpa (in RAM, within one page) as a
 * guest write: a write to a guest page table updates the shadow.
 */
int trapvm_mmu_write_phys(struct trapvm_vcpu *vcpu, u64 gpa, const void *buf,
			  unsigned int len);

/*
 * A locked write-back of the emulator: if the @len (1, 2, 4 or 8) bytes
 * at guest-physical @gpa0 (@n0 of them, the rest at @gpa1) hold @old,
 * write @new, as a guest write, atomically against the other vCPUs and
 * the shadow MMU.  0 when written, 1 when memory held another value
 * (nothing written), -errno.
 */
int trapvm_mmu_cmpxchg_phys(struct trapvm_vcpu *vcpu, u64 gpa0, u64 gpa1,
			    unsigned int n0, u64 old, u64 new,
			    unsigned int len);

/*
 * Ask for the whole shadow of the VM (it is shared) to be dropped before
 * the next entry of any of its vCPUs (e.g. the balloon or page sharing
 * replaced a guest page).  Any context; every vCPU of the VM is kicked,
 * and the vCPU that drops the shadow flushes the others out of the guest.
 */
void trapvm_mmu_request_zap(struct trapvm_vcpu *vcpu);

/*
 * Userspace is about to write guest page @gfn through its mapping of guest
 * RAM, and the gfn is (or was) shadowed as a guest page table
 * (trapvm_guest_mem_protect_from_user()): drop its shadow everywhere.
 * Sleeps; called from the page fault of the VMM's write.
 */
void trapvm_mmu_user_write(struct trapvm_vm *vm, u64 gfn);

/*
 * Guest-virtual memory access for the emulator, with the guest's
 * permission semantics for @access (TRAPVM_ACC_*, as in <trapvm/emulate.h>:
 * WRITE/FETCH/USER/IMPLICIT; trapvm_mmu_write_gva adds WRITE and
 * trapvm_mmu_fetch adds FETCH), setting A/D flags in the guest's tables
 * like the processor.  @len may cross pages.  Returns 0 when done, else a
 * nonzero enum trapvm_mmu_fault_result:
 *   INJECT  *f is the #PF to raise (nothing written),
 *   GP      *f is #GP(0) (non-canonical @gva),
 *   MMIO    a page is outside RAM: trapvm_mmu_mmio_gpa() (nothing copied),
 *   KILL    out of memory or a failing guest memory access.
 * A write spanning pages checks every page before writing any byte.
 */
int trapvm_mmu_read_gva(struct trapvm_vcpu *vcpu, u64 gva, void *buf,
			unsigned int len, unsigned int access,
			struct trapvm_fault *f);
int trapvm_mmu_write_gva(struct trapvm_vcpu *vcpu, u64 gva, const void *buf,
			 unsigned int len, unsigned int access,
			 struct trapvm_fault *f);
int trapvm_mmu_fetch(struct trapvm_vcpu *vcpu, u64 gva, void *buf,
		     unsigned int len, unsigned int access,
		     struct trapvm_fault *f);

/*
 * ops->cmpxchg of the emulator (<trapvm/emulate.h>): translate @gva for a
 * write of @len (1, 2, 4, 8) bytes, which may cross a page, then
 * trapvm_mmu_cmpxchg_phys().  Returns as trapvm_mmu_write_gva, or
 * TRAPVM_ACCESS_CHANGED if memory did not hold @old (nothing written).
 */
int trapvm_mmu_cmpxchg_gva(struct trapvm_vcpu *vcpu, u64 gva, u64 old,
			   u64 new, unsigned int len, unsigned int access,
			   struct trapvm_fault *f);

/*
 * The world switch, with interrupts off: the vCPU enters the guest on
 * this CPU (call right before loading the shadow CR3; a full barrier
 * orders it against remote flushes) and has left it (right after the
 * switch back).  While it is in the guest, other vCPUs that take rights
 * away from the shared shadow IPI this CPU and wait for the exit.
 */
void trapvm_mmu_guest_enter(struct trapvm_vcpu *vcpu);
void trapvm_mmu_guest_exit(struct trapvm_vcpu *vcpu);

/* Shadow pages (tables, rmap arrays, roots) of all VMs (leak tests). */
long trapvm_mmu_total_pages(void);

#endif /* _TRAPVM_SHADOW_MMU_H */
