/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * trapvm per-vCPU counters, as one list so that the module, vmctl and
 * the netlink family agree on names and indices.  Append only: the index
 * of a counter is part of the ABI.
 *
 * The list itself is <linux/trapvm_stat_list.h>: define TRAPVM_STAT(id,
 * "name") and include it to build a table of the counters.
 */
#ifndef _UAPI_LINUX_TRAPVM_STATS_H
#define _UAPI_LINUX_TRAPVM_STATS_H

#define TRAPVM_STAT(id, name) TRAPVM_STAT_##id,
enum trapvm_vcpu_stat {
#include <linux/trapvm_stat_list.h>
	TRAPVM_STAT_NR
};

#endif /* _UAPI_LINUX_TRAPVM_STATS_H */
