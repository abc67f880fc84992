#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Run the sparrow guest under trapvm: meant to run inside the test host,
# with the module loaded, e.g.
#
#   tools/testhost/run -- selftests/guests/sparrow_trapvm.sh
#   tools/testhost/run --smp 2 --la57 -- selftests/guests/sparrow_trapvm.sh
#
# A run passes only if vmctl exits with the guest's status 0 AND the
# console shows every TAP line ok with a matching plan and the pass marker.
# The self-test runs twice: with pv_mmu=1, sparrow's bulk page-table writes
# go through TRAPVM_HC_MMU_UPDATE (it must say so and have sent batches),
# with pv_mmu=0 they are plain stores, each trapped and emulated (it must
# have sent none).  Then eight copies run at once (eight VMs, the default
# command line), and must all pass.  With
# BENCH=1, bench mode runs last and its figures are printed as comments
# (figures, not a pass/fail test, except that every line must appear).
# Output: TAP.  Environment: VMCTL (default tools/vmctl/vmctl), MEM (guest
# RAM, default 64M), COPIES (default 8), TIMEOUT (seconds per run, default
# 600), BENCH (default 0).

set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
kernel=${1:-$top/guests/sparrow/sparrow.elf}
vmctl=${VMCTL:-$top/tools/vmctl/vmctl}
mem=${MEM:-64M}
copies=${COPIES:-8}
timeout=${TIMEOUT:-600}
if [ -n "${TESTHOST_RESULTS:-}" ]; then
	logdir=$TESTHOST_RESULTS/sparrow
	mkdir -p "$logdir"
else
	logdir=$(mktemp -d /tmp/sparrow-trapvm.XXXXXX)
fi
n=0
failed=0

result() {
	n=$((n + 1))
	if [ "$1" = 0 ]; then
		echo "ok $n - $2"
	else
		echo "not ok $n - $2"
		failed=$((failed + 1))
	fi
}

# check_selftest LOG RC: the run's exit status and its console agree.
check_selftest() {
	nok=$(grep -c '^ok [0-9]' "$1")
	nnot=$(grep -c '^not ok' "$1")
	plan=$(sed -n 's/^1\.\.\([0-9][0-9]*\).*/\1/p' "$1" | tr -d '\r')
	[ "$2" = 0 ] && [ "$nnot" = 0 ] && [ -n "$plan" ] &&
		[ "$nok" = "$plan" ] && [ "$nok" -ge 40 ] &&
		grep -q '^sparrow: booting on trapvm' "$1" &&
		grep -q '^sparrow-selftest: PASS' "$1"
}

# run NAME MODE [MORE COMMAND LINE]
run() {
	timeout "$timeout" "$vmctl" run --mem "$mem" --cmdline "mode=$2${3:+ $3}" \
		"$kernel" >"$logdir/$1.log" 2>"$logdir/$1.err" </dev/null
}

bench=${BENCH:-0}
echo "TAP version 13"
echo "1..$((3 + (bench == 1)))"

# pv_run PV DESCRIPTION: the self-test with pv_mmu=PV; the boot line must
# name the path and the batch count at power-off must match it.
pv_run() {
	log=$logdir/selftest-pv$1.log
	start=$(date +%s)
	run "selftest-pv$1" selftest "pv_mmu=$1"
	rc=$?
	echo "# selftest pv_mmu=$1: vmctl exit $rc in $(($(date +%s) - start))s"
	grep -E '^sparrow: (page tables|pv_mmu)' "$log" | tr -d '\r' |
		sed 's/^/# /'
	if [ "$1" = 1 ]; then
		grep -q '^sparrow: page tables: TRAPVM_HC_MMU_UPDATE' "$log" &&
			grep -Eq '^sparrow: pv_mmu on: [1-9][0-9]* batches' "$log"
	else
		grep -q '^sparrow: page tables: plain stores (pv_mmu=0)' "$log" &&
			grep -q '^sparrow: pv_mmu off: 0 batches' "$log"
	fi
	path=$?
	check_selftest "$log" "$rc" && [ "$path" = 0 ]
	result $? "sparrow selftest under trapvm, $2"
	if [ "$rc" != 0 ]; then
		grep -E '^not ok|killed|PANIC' "$log" | sed 's/^/#   /'
		tail -n 5 "$log" "$logdir/selftest-pv$1.err" | sed 's/^/#   /'
	fi
}

pv_run 1 "pv_mmu=1: page tables batched (TRAPVM_HC_MMU_UPDATE)"
pv_run 0 "pv_mmu=0: page tables by plain trapped stores"

start=$(date +%s)
i=0
pids=
while [ "$i" -lt "$copies" ]; do
	run "copy$i" selftest &
	pids="$pids $!"
	i=$((i + 1))
done
i=0
good=0
for pid in $pids; do
	wait "$pid"
	check_selftest "$logdir/copy$i.log" $? || good=1
	i=$((i + 1))
done
echo "# $copies copies in $(($(date +%s) - start))s"
result $good "$copies sparrow guests at once, every one passes its selftest"

if [ "$bench" = 1 ]; then
	start=$(date +%s)
	run bench bench
	rc=$?
	echo "# bench: vmctl exit $rc in $(($(date +%s) - start))s"
	grep -E '^(# )?bench ' "$logdir/bench.log" | tr -d '\r' | sed 's/^/# /'
	[ "$rc" = 0 ] && [ "$(grep -c '^bench ' "$logdir/bench.log")" -ge 7 ]
	result $? "sparrow bench under trapvm"
fi

[ "$failed" = 0 ]
