/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The shadow MMU's tracepoints (system trapvm, kmod/trace.h), or nothing
 * in the userspace build of selftests/unit (kshim).
 */
#ifndef _TRAPVM_SHADOW_MMU_TRACE_H
#define _TRAPVM_SHADOW_MMU_TRACE_H

/* trapvm_mmu_sp events */
#define TRAPVM_TRACE_SP_CREATE		0
#define TRAPVM_TRACE_SP_ZAP		1
#define TRAPVM_TRACE_SP_UNSHADOW	2
#define TRAPVM_TRACE_SP_FLOOD		3
#define TRAPVM_TRACE_SP_RECLAIM		4

/* trapvm_mmu_fault results */
#define TRAPVM_TRACE_PF_HIDDEN		0
#define TRAPVM_TRACE_PF_INJECT		1
#define TRAPVM_TRACE_PF_EMULATE		2
#define TRAPVM_TRACE_PF_MMIO		3

#ifdef TRAPVM_KSHIM
/* Evaluate nothing, but count the arguments as used. */
#define trapvm_trace_nop(...)	do { if (0) trapvm_trace_args(__VA_ARGS__); } while (0)
static inline void trapvm_trace_args(int n, ...) { }
#define trace_trapvm_mmu_sp(...)		trapvm_trace_nop(0, __VA_ARGS__)
#define trace_trapvm_mmu_fault(...)		trapvm_trace_nop(0, __VA_ARGS__)
#define trace_trapvm_mmu_fault_enabled()	false
#define trace_trapvm_mmu_pt_write(...)		trapvm_trace_nop(0, __VA_ARGS__)
#define trace_trapvm_mmu_root(...)		trapvm_trace_nop(0, __VA_ARGS__)
#define trace_trapvm_mmu_reclaim(...)		trapvm_trace_nop(0, __VA_ARGS__)
#define trapvm_mmu_cycles()			0ULL
#else
#include <linux/timex.h>
#include "../trace.h"
#define trapvm_mmu_cycles()			((u64)get_cycles())
#endif

#endif /* _TRAPVM_SHADOW_MMU_TRACE_H */
