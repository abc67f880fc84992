// SPDX-License-Identifier: GPL-2.0
/*
 * trapvm tracepoints: the one place that instantiates them.  Everything
 * else includes "trace.h" (kmod/) and calls trace_trapvm_*().
 */
#define CREATE_TRACE_POINTS
#include "trace.h"
