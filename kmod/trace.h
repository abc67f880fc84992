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

#endif /* _TRAPVM_TRACE_H */

/* This part must be outside the include guard. */
#undef TRACE_INCLUDE_PATH
#define TRACE_INCLUDE_PATH .
#undef TRACE_INCLUDE_FILE
#define TRACE_INCLUDE_FILE trace
#include <trace/define_trace.h>
