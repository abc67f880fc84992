#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Run unit-test binaries from $OUT and merge their TAP output into one
# stream with global numbering.  A test that crashes, exits non-zero or
# reports fewer results than its plan adds a "not ok".  The libFuzzer
# emulator fuzzer runs last for $FUZZ_RUNS iterations (20 s at most) as
# one TAP line.
# Exit status: 0 only if every line is "ok".
OUT=${OUT:-../../build/unit}
FUZZ_RUNS=${FUZZ_RUNS:-100000}
n=0
failed=0
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT

for t in "$@"; do
	"$OUT/$t" >"$tmp" 2>&1
	rc=$?
	seen=0
	tfailed=0
	plan=
	while IFS= read -r line; do
		case "$line" in
		"ok "*|"not ok "*)
			n=$((n + 1))
			seen=$((seen + 1))
			case "$line" in "not ok "*)
				failed=$((failed + 1))
				tfailed=$((tfailed + 1));;
			esac
			case "$line" in
			"not ok "*) st="not ok";;
			*) st=ok;;
			esac
			rest=$(printf '%s\n' "$line" |
			       sed -E 's/^(not )?ok *[0-9]* *(- )?//')
			echo "$st $n - $t: $rest"
			;;
		1..*)
			plan=${line#1..}
			;;
		"TAP version"*)
			;;
		*)
			echo "# $t: $line"
			;;
		esac
	done <"$tmp"
	# no plan or fewer results than planned: it died on the way
	if [ -z "$plan" ] || [ "$seen" -lt "$plan" ] ||
	   { [ "$rc" -ne 0 ] && [ "$tfailed" -eq 0 ]; }; then
		n=$((n + 1))
		failed=$((failed + 1))
		echo "not ok $n - $t: exited with status $rc after $seen results"
	fi
done

if [ "$FUZZ_RUNS" -gt 0 ]; then
	n=$((n + 1))
	if [ ! -s "$OUT/fuzz_emulate" ]; then
		echo "ok $n - fuzz_emulate # SKIP clang libFuzzer unavailable"
	elif "$OUT/fuzz_emulate" -runs="$FUZZ_RUNS" -max_len=64 -seed=1 \
		-max_total_time=20 >"$tmp" 2>&1; then
		done_runs=$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "$tmp")
		echo "ok $n - fuzz_emulate: ${done_runs:-$FUZZ_RUNS} runs of decode+emulate, no crash"
	else
		sed 's/^/# /' "$tmp" | tail -40
		failed=$((failed + 1))
		echo "not ok $n - fuzz_emulate: crashed (reproducer above)"
	fi
fi
echo "1..$n"
[ "$failed" -eq 0 ]
