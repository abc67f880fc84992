#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Tests of tools/testhost/run itself (test the tester), TAP on stdout.
# Every case boots the test host without trapvm.ko (--no-module), so these
# results do not depend on the module building or loading.
#
# Needs warn_mod.ko built next to this script (make -C selftests/testhost).

set -u
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
run=$top/tools/testhost/run
runs=$top/build/testhost/runs
tag=selftest-$(date +%Y%m%d-%H%M%S)-$$
n=0
failed=0

echo "TAP version 13"
echo "1..12"

# check NAME EXPECTED-STATUS GOT-STATUS [extra condition result]
report() {
	local name=$1 ok=$2 detail=$3

	n=$((n + 1))
	if [ "$ok" = 1 ]; then
		echo "ok $n testhost: $name"
	else
		failed=$((failed + 1))
		echo "not ok $n testhost: $name # $detail"
	fi
}

# boot NAME [run options] -- CMD: sets $rc, $out, $dir (the run dir)
boot() {
	local name=$1 err
	shift
	dir=$runs/$tag-$name
	err=$(mktemp)
	out=$("$run" --run-name "$tag-$name" "$@" 2>"$err")
	rc=$?
	# The runner's verdict, as a TAP comment (its logs stay in $dir).
	grep -E '^testhost: (FAIL|error)' "$err" | sed 's/^/# /'
	rm -f "$err"
}

boot relay --no-module -- sh -c \
	'echo relay-marker-$((6 * 7)); echo results-data > "$TESTHOST_RESULTS/x"'
report "exit 0 and output relayed" \
	"$([ $rc = 0 ] && [ "$out" = relay-marker-42 ] && echo 1)" \
	"status $rc, output '$out'"
report "CMD writes to \$TESTHOST_RESULTS" \
	"$([ "$(cat "$dir/results/x" 2>/dev/null)" = results-data ] && echo 1)" \
	"no results/x in $dir"
report "console and dmesg kept" \
	"$([ -s "$dir/console.log" ] && grep -q 'Linux version' "$dir/results/dmesg" && echo 1)" \
	"console.log/results/dmesg missing in $dir"

boot status --no-module -- sh -c 'exit 7'
report "CMD exit status relayed (7)" "$([ $rc = 7 ] && echo 1)" "status $rc"

# The configuration matrix, checked against what the test host's kernel
# reports (/proc/cpuinfo flags, /proc/cmdline), not against our options.
boot cfg-default --no-module --append testhost.marker=1 -- sh -c \
	'! grep -qw la57 /proc/cpuinfo && ! grep -qw pti /proc/cpuinfo &&
	 [ "$(nproc)" = 2 ] && grep -qw testhost.marker=1 /proc/cmdline'
report "default: 4-level paging, no PTI, 2 CPUs, --append passed" \
	"$([ $rc = 0 ] && echo 1)" "status $rc"

boot cfg-la57 --no-module --la57 -- grep -qw la57 /proc/cpuinfo
report "--la57: 5-level paging on" "$([ $rc = 0 ] && echo 1)" "status $rc"

boot cfg-pti --no-module --pti --smp 1 -- sh -c \
	'grep -qw pti /proc/cpuinfo && [ "$(nproc)" = 1 ] &&
	 grep -q "vendor_id.*GenuineIntel" /proc/cpuinfo'
report "--pti --smp 1: PTI on, Intel vendor, 1 CPU" \
	"$([ $rc = 0 ] && echo 1)" "status $rc"

boot false --no-module -- false
report "in-VM failure (false) fails the run" "$([ $rc = 1 ] && echo 1)" \
	"status $rc, expected 1"

boot warn --no-module -- insmod "$here/warn_mod.ko"
report "WARN in dmesg fails the run (126) though CMD succeeded" \
	"$([ $rc = 126 ] && grep -q '^0$' "$dir/results/exit-code" && echo 1)" \
	"status $rc, expected 126"

boot hang --no-module --timeout 10 -- sleep 600
report "hang past --timeout gives 124" "$([ $rc = 124 ] && echo 1)" \
	"status $rc, expected 124"

boot panic --no-module -- sh -c 'echo c > /proc/sysrq-trigger'
report "kernel panic gives 125" "$([ $rc = 125 ] && echo 1)" \
	"status $rc, expected 125"

boot insmod --module /nonexistent/none.ko -- true
report "module load failure gives 123" "$([ $rc = 123 ] && echo 1)" \
	"status $rc, expected 123"

[ $failed = 0 ]
