/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * trapvm per-vCPU counters: one TRAPVM_STAT(ID, "name") per counter, in
 * index order.  Append only: the index of a counter is part of the ABI.
 *
 * No include guard, on purpose: define TRAPVM_STAT(id, name) and include
 * this file wherever a table of the counters is needed (the enum in
 * <linux/trapvm_stats.h>, name tables in vmctl and the tests).  It
 * undefines TRAPVM_STAT at the end.
 */
/* world switches and why the guest stopped running */
TRAPVM_STAT(ENTRIES, "entries")
TRAPVM_STAT(EXIT_HOST_IRQ, "exit_host_irq")
TRAPVM_STAT(EXIT_HOST_NMI, "exit_host_nmi")
TRAPVM_STAT(EXIT_PF, "exit_page_fault")
TRAPVM_STAT(EXIT_GP, "exit_gp")
TRAPVM_STAT(EXIT_UD, "exit_ud")
TRAPVM_STAT(EXIT_SYSCALL, "exit_syscall")
TRAPVM_STAT(EXIT_INT, "exit_soft_int")
TRAPVM_STAT(EXIT_EXCEPTION, "exit_other_exception")
TRAPVM_STAT(EXIT_USER_IO, "exit_user_io")
TRAPVM_STAT(EXIT_USER_MMIO, "exit_user_mmio")
TRAPVM_STAT(EXIT_USER_HYPERCALL, "exit_user_hypercall")
TRAPVM_STAT(EXIT_SIGNAL, "exit_signal")
TRAPVM_STAT(HALTS, "halts")

/* delivered to the guest */
TRAPVM_STAT(INJ_EXCEPTION, "injected_exceptions")
TRAPVM_STAT(INJ_IRQ, "injected_interrupts")
TRAPVM_STAT(INJ_PF, "injected_page_faults")

/* emulated instructions */
TRAPVM_STAT(EMUL_TOTAL, "emulated")
TRAPVM_STAT(EMUL_FAILED, "emulation_failed")
TRAPVM_STAT(EMUL_CLI_STI, "emul_cli_sti")
TRAPVM_STAT(EMUL_HLT, "emul_hlt")
TRAPVM_STAT(EMUL_MOV_CR, "emul_mov_cr")
TRAPVM_STAT(EMUL_DTABLE, "emul_desc_table")
TRAPVM_STAT(EMUL_SEG, "emul_segment")
TRAPVM_STAT(EMUL_IRET, "emul_iret")
TRAPVM_STAT(EMUL_SYSRET, "emul_sysret")
TRAPVM_STAT(EMUL_SWAPGS, "emul_swapgs")
TRAPVM_STAT(EMUL_MSR, "emul_msr")
TRAPVM_STAT(EMUL_MSR_UNKNOWN, "emul_msr_unknown")
TRAPVM_STAT(EMUL_IO, "emul_io")
TRAPVM_STAT(EMUL_INVLPG, "emul_invlpg")
TRAPVM_STAT(EMUL_HYPERCALL, "emul_hypercall")
TRAPVM_STAT(EMUL_OTHER, "emul_other")

/* shadow MMU */
TRAPVM_STAT(MMU_HIDDEN_PF, "mmu_hidden_faults")
TRAPVM_STAT(MMU_CR3_LOADS, "mmu_cr3_loads")
TRAPVM_STAT(MMU_INVLPG, "mmu_invlpg")
TRAPVM_STAT(MMU_SHADOW_ALLOC, "mmu_shadow_pages_created")
TRAPVM_STAT(MMU_SHADOW_FREE, "mmu_shadow_pages_zapped")
TRAPVM_STAT(MMU_PT_WRITES, "mmu_pt_writes_emulated")
TRAPVM_STAT(MMU_FLOODED, "mmu_flooded_pages")
TRAPVM_STAT(MMU_ROOT_HIT, "mmu_root_cache_hits")
TRAPVM_STAT(MMU_ROOT_MISS, "mmu_root_cache_misses")

/* virtual x2APIC (copies of the model's counters) */
TRAPVM_STAT(APIC_TIMER_FIRED, "apic_timer_expiries")
TRAPVM_STAT(APIC_IRQS_COALESCED, "apic_irqs_coalesced")
TRAPVM_STAT(APIC_IRQS_DROPPED, "apic_irqs_dropped")
TRAPVM_STAT(APIC_IPIS_DROPPED, "apic_ipis_dropped")

/* shadow MMU, continued (mmu_shadow_pages_live is a gauge) */
TRAPVM_STAT(MMU_SHADOW_LIVE, "mmu_shadow_pages_live")
TRAPVM_STAT(MMU_UNSHADOWED, "mmu_unshadowed_pages")
TRAPVM_STAT(MMU_RECLAIMED, "mmu_shadow_pages_reclaimed")
TRAPVM_STAT(MMU_HC_UPDATES, "mmu_hc_updates")

/* shadow MMU: IPIs that flushed other vCPUs' TLBs (shared shadow) */
TRAPVM_STAT(MMU_REMOTE_FLUSH, "mmu_remote_flushes")

/* a locked instruction emulated while another vCPU changed its operand */
TRAPVM_STAT(EMUL_RETRY, "emul_locked_retries")

/* virtual APIC: IPIs between vCPUs, xAPIC page, late periodic timer */
TRAPVM_STAT(APIC_IPIS_SENT, "apic_ipis_sent")
TRAPVM_STAT(APIC_IPIS_RECEIVED, "apic_ipis_received")
TRAPVM_STAT(APIC_NMIS_RECEIVED, "apic_nmis_received")
TRAPVM_STAT(APIC_IPIS_UNSUPPORTED, "apic_ipis_unsupported")
TRAPVM_STAT(APIC_TIMER_COALESCED, "apic_timer_coalesced")
TRAPVM_STAT(APIC_MMIO, "apic_mmio_accesses")

#undef TRAPVM_STAT
