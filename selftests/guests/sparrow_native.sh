#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Boot the sparrow guest natively (QEMU TCG, no trapvm) and check what it
# reports.  A boot passes only if QEMU's exit code carries the expected
# guest status (isa-debug-exit: (status << 1) | 1) AND the serial log has
# the expected markers, so neither a crash nor a hang nor a lying exit
# path can pass.  Output: TAP.
#
#   selftests/guests/sparrow_native.sh [path/to/sparrow.elf]
#
# Environment: QEMU (default qemu-system-x86_64), TIMEOUT (seconds per
# boot, default 60), KEEP_LOGS=1 to keep the serial logs.

set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
kernel=${1:-$top/guests/sparrow/sparrow.elf}
qemu=${QEMU:-qemu-system-x86_64}
timeout=${TIMEOUT:-60}
logdir=$(mktemp -d /tmp/sparrow-native.XXXXXX)
n=0
failed=0

if [ ! -f "$kernel" ]; then
	make -C "$top/guests/sparrow" >/dev/null || exit 1
fi
# The shim that enters a kernel through vmctl's loader (vmctl-entry/).
shim=$top/selftests/guests/vmctl-entry/vmctl-entry.elf
make -s -C "$top/selftests/guests/vmctl-entry" >/dev/null 2>&1 || shim=

# boot NAME MODE "QEMU ARGS" [MEM [KERNEL]]: sets $rc, $log
boot() {
	log=$logdir/$1.log
	start=$(date +%s.%N)
	# shellcheck disable=SC2086
	timeout "$timeout" "$qemu" -accel tcg $3 -m "${4:-256}" \
		-kernel "${5:-$kernel}" \
		-append "mode=$2" \
		-device isa-debug-exit,iobase=0xf4,iosize=4 \
		-serial "file:$log" -display none -no-reboot -nodefaults \
		</dev/null >"$logdir/$1.qemu" 2>&1
	rc=$?
	end=$(date +%s.%N)
	secs=$(awk "BEGIN { printf \"%.1f\", $end - $start }")
	echo "# $1: qemu exit $rc in ${secs}s"
}

result() {
	n=$((n + 1))
	if [ "$1" = 0 ]; then
		echo "ok $n - $2"
	else
		echo "not ok $n - $2"
		failed=$((failed + 1))
		if [ -f "$log" ]; then
			grep -E '^not ok|killed|PANIC' "$log" | sed 's/^/#   /'
			sed 's/^/#   /' "$log" | tail -n 8
		fi
	fi
}

# Self-test: status 0 (QEMU exit 1), every TAP line ok, plan matches.
selftest() {
	boot "$1" selftest "$2" "${3:-256}"
	nok=$(grep -c '^ok [0-9]' "$log")
	nnot=$(grep -c '^not ok' "$log")
	plan=$(sed -n 's/^1\.\.\([0-9][0-9]*\).*/\1/p' "$log" | tr -d '\r')
	[ "$rc" = 1 ] && [ "$nnot" = 0 ] && [ -n "$plan" ] &&
		[ "$nok" = "$plan" ] && [ "$nok" -ge 40 ] &&
		grep -q '^sparrow-selftest: PASS' "$log" &&
		grep -q 'init exited with status 0' "$log"
	result $? "sparrow selftest natively, $1 ($nok/${plan:-?} ok)"
}

echo "TAP version 13"
echo "1..11"

selftest cpu-max "-cpu max"
selftest smp1 "-cpu max -smp 1"
selftest la57-off "-cpu max,la57=off"
selftest smp2-intel "-cpu max,vendor=GenuineIntel -smp 2"
selftest mem16m "-cpu max" 16

# The trapvm entry path, natively: vmctl's own loader builds the page
# tables, GDT, boot information and memory map, and the shim enters
# _start64 with the guest ABI's registers; the boot flags say trapvm (so
# sparrow leaves PIT and PIC alone and its VMCALL must be fixed up).
if [ -n "$shim" ]; then
	boot vmctl-entry selftest "-cpu max -initrd $kernel" 256 "$shim"
else
	rc=none log=/dev/null
fi
nok=$(grep -c '^ok [0-9]' "$log")
plan=$(sed -n 's/^1\.\.\([0-9][0-9]*\).*/\1/p' "$log" | tr -d '\r')
[ "$rc" = 1 ] && ! grep -q '^not ok' "$log" && [ "$nok" = "${plan:-x}" ] &&
	grep -q '^vmctl-entry: entry ' "$log" &&
	grep -q '^sparrow: booting on trapvm' "$log" &&
	grep -q '^sparrow: trapvm hypercall version -38' "$log" &&
	grep -q '^sparrow-selftest: PASS' "$log"
result $? "sparrow selftest entered through vmctl's loader and the trapvm entry ($nok/${plan:-?} ok)"

# A deliberately failing self-test must be reported as a failure.
boot fail-injected selftest-fail "-cpu max"
[ "$rc" = 3 ] && grep -q '^not ok .*deliberately failing' "$log" &&
	grep -q '^sparrow-selftest: FAIL' "$log"
result $? "injected self-test failure gives status 1 (qemu exit 3)"

# Bench: every operation reported once, machine-readable.
boot bench bench "-cpu max"
good=0
for op in null_syscall ctxsw_2proc ctxsw_16proc page_fault fork_exit_wait \
	  fork_exec_wait map_touch_64m cpu_loop_1m; do
	grep -Eq "^bench $op iters=[0-9]+ ns_per_op=[0-9]+\.[0-9]+" "$log" ||
		good=1
done
[ "$rc" = 1 ] && [ "$good" = 0 ]
result $? "sparrow bench mode reports every operation"
grep '^bench ' "$log" | tr -d '\r' | sed 's/^/# /'

# Demo: four workers, each line whole, and the workers interleave (A's
# last step comes after B's first), which needs timer preemption.
boot demo demo "-cpu max"
a_last=$(grep -n '^\[A\] pid [0-9]* step 5' "$log" | cut -d: -f1)
b_first=$(grep -n '^\[B\] pid [0-9]* step 0' "$log" | cut -d: -f1)
[ "$rc" = 1 ] && [ "$(grep -c '^\[[ABCD]\] pid [0-9]* step [0-5]' "$log")" = 24 ] &&
	[ -n "$a_last" ] && [ -n "$b_first" ] && [ "$a_last" -gt "$b_first" ]
result $? "sparrow demo: 4 preempted processes interleave"

# Static checks of the image against the trapvm guest ABI.
log=/dev/null
# The paravirtual contract: no instruction whose CPL3 behaviour differs
# silently (PUSHF/POPF, SGDT & co., LAR/LSL/VERR/VERW), no CPUID probing.
bad=$(objdump -d "$kernel" | awk -F'\t' 'NF >= 3 { split($3, w, " "); print w[1] }' |
	grep -E '^(pushf|popf|pushfq|popfq|sgdt|sidt|sldt|str|smsw|lar|lsl|verr|verw|cpuid)$' |
	sort -u | tr '\n' ' ')
[ -z "$bad" ]
result $? "sparrow.elf uses no instruction the paravirtual contract forbids ${bad:+($bad)}"

# One file, two entries: the ELF entry is the 64-bit entry (trapvm), the
# multiboot header (magic, checksum, a.out kludge) points at the 32-bit one.
entry=$(readelf -h "$kernel" | awk '/Entry point/ { print $4 }')
start64=$(nm "$kernel" | awk '$3 == "_start64" { print "0x" $1 }')
start32=$(nm "$kernel" | awk '$3 == "_start32" { print "0x" $1 }')
# First 8 KiB, one 32-bit word per line; the header is 4-byte aligned.
mbwords=$(od -An -v -t x4 -w4 -N 8192 "$kernel" | tr -d ' ' |
	grep -A7 -m1 '^1badb002$' | tr '\n' ' ')
mb=none
if [ -n "$mbwords" ]; then
	# shellcheck disable=SC2086
	set -- $mbwords
	sum=$(( (0x$1 + 0x$2 + 0x$3) & 0xffffffff ))
	if [ "$sum" = 0 ] && [ $(( 0x$2 & 0x10000 )) != 0 ] &&
	   [ -n "$start32" ] && [ $(( 0x$8 )) = $(( start32 )) ]; then
		mb=ok
	else
		mb=bad
	fi
fi
[ -n "$start64" ] && [ "$((entry))" = "$((start64))" ] && [ "$mb" = ok ]
result $? "ELF entry is _start64 ($entry), multiboot header enters _start32 ($mb)"

if [ "${KEEP_LOGS:-0}" = 1 ]; then
	echo "# logs kept in $logdir"
else
	rm -rf "$logdir"
fi
[ "$failed" = 0 ]
