/* SPDX-License-Identifier: GPL-2.0 */
/*
 * trapvm tracepoints (system "trapvm"): bpftrace sees them as
 * tracepoint:trapvm:<event>.  A disabled tracepoint costs a static
 * branch (a NOP) at the call site; the arguments are not evaluated.
 *
 * Times are TSC cycles (convert with tsc_khz).
 */
#undef TRACE_SYSTEM
#define TRACE_SYSTEM trapvm

#if !defined(_TRAPVM_TRACE_H) || defined(TRACE_HEADER_MULTI_READ)
#define _TRAPVM_TRACE_H

#include <linux/tracepoint.h>

/*
 * One round trip into the guest and back: where the guest stopped, the
 * hardware vector (256 = SYSCALL, 257 = fault in the switcher), how long
 * the guest ran and how long the module worked since the previous exit
 * before entering again.
 */
TRACE_EVENT(trapvm_world_switch,
	TP_PROTO(u32 vcpu_id, u64 rip, u32 vector, u32 error_code,
		 u64 guest_cycles, u64 module_cycles),
	TP_ARGS(vcpu_id, rip, vector, error_code, guest_cycles,
		module_cycles),

	TP_STRUCT__entry(
		__field(u32, vcpu_id)
		__field(u32, vector)
		__field(u32, error_code)
		__field(u64, rip)
		__field(u64, guest_cycles)
		__field(u64, module_cycles)
	),

	TP_fast_assign(
		__entry->vcpu_id = vcpu_id;
		__entry->vector = vector;
		__entry->error_code = error_code;
		__entry->rip = rip;
		__entry->guest_cycles = guest_cycles;
		__entry->module_cycles = module_cycles;
	),

	TP_printk("vcpu %u rip %#llx vector %u error %#x guest %llu module %llu",
		  __entry->vcpu_id, __entry->rip, __entry->vector,
		  __entry->error_code, __entry->guest_cycles,
		  __entry->module_cycles)
);

/*
 * An exit classified: reason is the enum trapvm_vcpu_stat index counted
 * for it (names in <linux/trapvm_stats.h>), cr2 the faulting address of
 * a #PF.
 */
TRACE_EVENT(trapvm_exit,
	TP_PROTO(u32 vcpu_id, u32 reason, u64 rip, u32 vector,
		 u32 error_code, u64 cr2),
	TP_ARGS(vcpu_id, reason, rip, vector, error_code, cr2),

	TP_STRUCT__entry(
		__field(u32, vcpu_id)
		__field(u32, reason)
		__field(u32, vector)
		__field(u32, error_code)
		__field(u64, rip)
		__field(u64, cr2)
	),

	TP_fast_assign(
		__entry->vcpu_id = vcpu_id;
		__entry->reason = reason;
		__entry->vector = vector;
		__entry->error_code = error_code;
		__entry->rip = rip;
		__entry->cr2 = cr2;
	),

	TP_printk("vcpu %u reason %u rip %#llx vector %u error %#x cr2 %#llx",
		  __entry->vcpu_id, __entry->reason, __entry->rip,
		  __entry->vector, __entry->error_code, __entry->cr2)
);

/*
 * An instruction emulated: insn is the emulator's instruction class
 * (enum trapvm_vcpu_stat index of its EMUL_* counter), len its length,
 * result the emulator's result code.
 */
TRACE_EVENT(trapvm_emulate,
	TP_PROTO(u32 vcpu_id, u64 rip, u32 insn, u32 len, int result),
	TP_ARGS(vcpu_id, rip, insn, len, result),

	TP_STRUCT__entry(
		__field(u32, vcpu_id)
		__field(u32, insn)
		__field(u32, len)
		__field(int, result)
		__field(u64, rip)
	),

	TP_fast_assign(
		__entry->vcpu_id = vcpu_id;
		__entry->insn = insn;
		__entry->len = len;
		__entry->result = result;
		__entry->rip = rip;
	),

	TP_printk("vcpu %u rip %#llx insn %u len %u result %d",
		  __entry->vcpu_id, __entry->rip, __entry->insn, __entry->len,
		  __entry->result)
);

/* An exception or interrupt delivered into the guest. */
TRACE_EVENT(trapvm_inject,
	TP_PROTO(u32 vcpu_id, u32 vector, bool has_error, u32 error_code,
		 u64 cr2, bool external),
	TP_ARGS(vcpu_id, vector, has_error, error_code, cr2, external),

	TP_STRUCT__entry(
		__field(u32, vcpu_id)
		__field(u32, vector)
		__field(u32, error_code)
		__field(bool, has_error)
		__field(bool, external)
		__field(u64, cr2)
	),

	TP_fast_assign(
		__entry->vcpu_id = vcpu_id;
		__entry->vector = vector;
		__entry->error_code = error_code;
		__entry->has_error = has_error;
		__entry->external = external;
		__entry->cr2 = cr2;
	),

	TP_printk("vcpu %u vector %u%s error %#x cr2 %#llx%s",
		  __entry->vcpu_id, __entry->vector,
		  __entry->has_error ? "" : " (no error code)",
		  __entry->error_code, __entry->cr2,
		  __entry->external ? " external" : "")
);

/*
 * Shadow MMU (kmod/shadow/): a guest #PF the MMU handled.  result: 0
 * hidden (filled), 1 injected into the guest, 2 emulated, 3 MMIO, else
 * GP/KILL (enum trapvm_mmu_fault_result + ...); cost in TSC cycles.
 */
TRACE_EVENT(trapvm_mmu_fault,
	TP_PROTO(u32 vcpu_id, u64 gva, u64 gpa, u32 hw_error, u32 guest_error,
		 u32 result, u64 cost),
	TP_ARGS(vcpu_id, gva, gpa, hw_error, guest_error, result, cost),

	TP_STRUCT__entry(
		__field(u32, vcpu_id)
		__field(u32, hw_error)
		__field(u32, guest_error)
		__field(u32, result)
		__field(u64, gva)
		__field(u64, gfn)
		__field(u64, cost)
	),

	TP_fast_assign(
		__entry->vcpu_id = vcpu_id;
		__entry->hw_error = hw_error;
		__entry->guest_error = guest_error;
		__entry->result = result;
		__entry->gva = gva;
		__entry->gfn = gpa >> 12;
		__entry->cost = cost;
	),

	TP_printk("vcpu %u gva %#llx gfn %#llx hw_error %#x result %u guest_error %#x cost %llu",
		  __entry->vcpu_id, __entry->gva, __entry->gfn,
		  __entry->hw_error, __entry->result, __entry->guest_error,
		  __entry->cost)
);

/*
 * A shadow page created (event 0), zapped (1), unshadowed after an
 * unemulatable write (2), for write flooding (3), or reclaimed (4).
 */
TRACE_EVENT(trapvm_mmu_sp,
	TP_PROTO(u32 vcpu_id, u32 event, u64 gfn, u32 level, u32 role),
	TP_ARGS(vcpu_id, event, gfn, level, role),

	TP_STRUCT__entry(
		__field(u32, vcpu_id)
		__field(u32, event)
		__field(u32, level)
		__field(u32, role)
		__field(u64, gfn)
	),

	TP_fast_assign(
		__entry->vcpu_id = vcpu_id;
		__entry->event = event;
		__entry->level = level;
		__entry->role = role;
		__entry->gfn = gfn;
	),

	TP_printk("vcpu %u %s gfn %#llx level %u role %#x",
		  __entry->vcpu_id,
		  __print_symbolic(__entry->event, { 0, "create" },
				   { 1, "zap" }, { 2, "unshadow" },
				   { 3, "flood" }, { 4, "reclaim" }),
		  __entry->gfn, __entry->level, __entry->role)
);

/* An emulated guest write to one of its page tables. */
TRACE_EVENT(trapvm_mmu_pt_write,
	TP_PROTO(u32 vcpu_id, u64 gpa, u64 value, u32 zapped),
	TP_ARGS(vcpu_id, gpa, value, zapped),

	TP_STRUCT__entry(
		__field(u32, vcpu_id)
		__field(u32, zapped)
		__field(u64, gpa)
		__field(u64, value)
	),

	TP_fast_assign(
		__entry->vcpu_id = vcpu_id;
		__entry->zapped = zapped;
		__entry->gpa = gpa;
		__entry->value = value;
	),

	TP_printk("vcpu %u gpa %#llx value %#llx zapped %u",
		  __entry->vcpu_id, __entry->gpa, __entry->value,
		  __entry->zapped)
);

/* A root switch: the guest CR3's gfn, the view, root-cache hit or miss. */
TRACE_EVENT(trapvm_mmu_root,
	TP_PROTO(u32 vcpu_id, u64 gfn, u32 view, bool hit),
	TP_ARGS(vcpu_id, gfn, view, hit),

	TP_STRUCT__entry(
		__field(u32, vcpu_id)
		__field(u32, view)
		__field(bool, hit)
		__field(u64, gfn)
	),

	TP_fast_assign(
		__entry->vcpu_id = vcpu_id;
		__entry->view = view;
		__entry->hit = hit;
		__entry->gfn = gfn;
	),

	TP_printk("vcpu %u cr3 gfn %#llx view %u %s", __entry->vcpu_id,
		  __entry->gfn, __entry->view, __entry->hit ? "hit" : "miss")
);

/* Reclaim at the shadow cap: shadow pages zapped, pages before/after. */
TRACE_EVENT(trapvm_mmu_reclaim,
	TP_PROTO(u32 vcpu_id, u64 zapped, u64 before, u64 after),
	TP_ARGS(vcpu_id, zapped, before, after),

	TP_STRUCT__entry(
		__field(u32, vcpu_id)
		__field(u64, zapped)
		__field(u64, before)
		__field(u64, after)
	),

	TP_fast_assign(
		__entry->vcpu_id = vcpu_id;
		__entry->zapped = zapped;
		__entry->before = before;
		__entry->after = after;
	),

	TP_printk("vcpu %u zapped %llu pages %llu -> %llu", __entry->vcpu_id,
		  __entry->zapped, __entry->before, __entry->after)
);

/*
 * An IPI sent by a vCPU's APIC: destination field, shorthand (ICR bits
 * 19:18), delivery mode (enum trapvm_lapic_ipi_mode: 0 fixed, 1 lowest
 * priority, 2 NMI) and how many vCPUs it reached.
 */
TRACE_EVENT(trapvm_ipi,
	TP_PROTO(u32 src, u32 dest, u32 shorthand, bool logical, u32 vector,
		 u32 mode, u32 ndest),
	TP_ARGS(src, dest, shorthand, logical, vector, mode, ndest),

	TP_STRUCT__entry(
		__field(u32, src)
		__field(u32, dest)
		__field(u32, shorthand)
		__field(u32, vector)
		__field(u32, mode)
		__field(u32, ndest)
		__field(bool, logical)
	),

	TP_fast_assign(
		__entry->src = src;
		__entry->dest = dest;
		__entry->shorthand = shorthand;
		__entry->vector = vector;
		__entry->mode = mode;
		__entry->ndest = ndest;
		__entry->logical = logical;
	),

	TP_printk("vcpu %u dest %#x%s shorthand %u vector %u mode %u reached %u",
		  __entry->src, __entry->dest,
		  __entry->logical ? " logical" : "", __entry->shorthand,
		  __entry->vector, __entry->mode, __entry->ndest)
);

#endif /* _TRAPVM_TRACE_H */

/* This part must be outside the include guard. */
#undef TRACE_INCLUDE_PATH
#define TRACE_INCLUDE_PATH .
#undef TRACE_INCLUDE_FILE
#define TRACE_INCLUDE_FILE trace
#include <trace/define_trace.h>
