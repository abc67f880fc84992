#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Runs inside the test host (tools/testhost/run -- selftests/run-in-host.sh):
# every program listed in selftests/in-host.list, then "module unloads" and
# "dmesg clean".  Prints one TAP stream, renumbered across programs (each
# program's own plan becomes a comment; a program that crashes, times out or
# reports fewer results than it planned gets a "not ok" of its own), and
# writes the same TAP to $TESTHOST_RESULTS/tap, which make check reads.
#
# Env: TESTHOST_RESULTS (set by the runner), TEST_TIMEOUT (per program,
# seconds, default 600), TESTHOST_CONFIG (a label, e.g. la57).

set -u
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1
res=${TESTHOST_RESULTS:-$(mktemp -d)}
tap=$res/tap
list=${IN_HOST_LIST:-$top/selftests/in-host.list}
timeout=${TEST_TIMEOUT:-600}
config=${TESTHOST_CONFIG:-default}
n=0
failed=0

: > "$tap"
out() {
	printf '%s\n' "$*" | tee -a "$tap"
}

result() {
	# result ok|not-ok DESCRIPTION
	n=$((n + 1))
	if [ "$1" = ok ]; then
		out "ok $n $2"
	else
		failed=$((failed + 1))
		out "not ok $n $2"
	fi
}

out "TAP version 13"
out "# test host: $(uname -r), config $config, $(nproc) CPUs," \
	"$(grep -q '^flags.* la57' /proc/cpuinfo && echo 5 || echo 4)-level paging," \
	"pti $(grep -q '^flags.* pti' /proc/cpuinfo && echo on || echo off)"

# A line is [@CONFIG[,CONFIG...]] [NAME=VALUE...] PROGRAM [ARGS...]: an
# @ list restricts the program to those configurations; the assignments
# go into its environment (e.g. a shorter run in the extra configurations).
while read -r line; do
	set -- $line
	case ${1:-#} in '#'*) continue ;; esac
	case $1 in
	@*)
		case ",${1#@}," in *",$config,"*) ;; *) continue ;; esac
		shift
		;;
	esac
	envs=()
	while [ $# -gt 0 ] && [[ $1 == [A-Za-z_]*=* ]]; do
		envs+=("$1")
		shift
	done
	prog=$1
	shift
	args=$*
	name=${prog#selftests/}
	log=$res/$(echo "$name" | tr '/' '_').log
	out "# === ${envs[*]} $prog $args ==="
	if [ ! -x "$prog" ]; then
		result not-ok "$name: missing or not executable (not built?)"
		continue
	fi
	# shellcheck disable=SC2086 # args are split on purpose
	case $prog in /*) exe=$prog ;; *) exe=./$prog ;; esac
	t0=$(date +%s)
	# Streamed, so progress shows live; the raw output is kept in $log.
	# Renumber the program's results into our stream, prefix their names
	# with the program, and turn its plan and version into comments.
	env "${envs[@]}" timeout -k 10 "$timeout" "$exe" $args < /dev/null 2>&1 |
	tee "$log" |
	awk -v n="$n" -v name="$name" -v sum="$log.sum" '
		function emit(s) { print s; fflush() }
		/^TAP version/ { emit("# " $0); next }
		/^1\.\.[0-9]+/ { plan = substr($1, 4) + 0; emit("# " $0); next }
		/^(not )?ok( |$)/ {
			notok = ($1 == "not")
			rest = $0
			sub(/^(not )?ok */, "", rest)
			sub(/^[0-9]+ */, "", rest)
			sub(/^- */, "", rest)
			n++; seen++
			if (notok && rest !~ /# *TODO/)
				bad++
			emit((notok ? "not ok " : "ok ") n " " name ": " rest)
			next
		}
		{ emit($0 ~ /^#/ ? $0 : "# " $0) }
		END { printf "%d %d %d %d\n", n, seen, plan, bad > sum }
	' | tee -a "$tap"
	rc=${PIPESTATUS[0]}
	out "# $name took $(( $(date +%s) - t0 )) s"
	read -r n seen plan bad < "$log.sum"
	rm -f "$log.sum"
	failed=$((failed + bad))
	if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
		result not-ok "$name: timed out after $timeout s"
	elif [ "$plan" -gt 0 ] && [ "$seen" -lt "$plan" ]; then
		result not-ok "$name: reported $seen of $plan planned results (exit $rc)"
	elif [ "$rc" != 0 ] && [ "$bad" = 0 ]; then
		result not-ok "$name: exit $rc without reporting a failure"
	elif [ "$seen" = 0 ]; then
		result not-ok "$name: no TAP results (exit $rc)"
	fi
done < "$list"

# Every fd is closed by now: the module must unload (a leaked reference
# would keep it busy).
if grep -q '^trapvm ' /proc/modules; then
	out "# === module unload ==="
	if msg=$(rmmod trapvm 2>&1); then
		result ok "rmmod trapvm"
	else
		result not-ok "rmmod trapvm # $msg"
	fi
fi

# The kernel must stay clean: no Oops/BUG/WARNING/lockdep/... in dmesg.
out "# === dmesg clean ==="
pats=$(mktemp)
grep -v -e '^#' -e '^$' "$top/tools/testhost/splat-patterns" > "$pats"
dmesg > "$res/dmesg-in-host" 2>&1
grep -E -f "$pats" "$res/dmesg-in-host" > "$res/splats"
case $? in
0)
	while IFS= read -r l; do
		out "# $l"
	done < <(head -n 40 "$res/splats")
	result not-ok "dmesg clean"
	;;
1)
	result ok "dmesg clean"
	;;
*)
	result not-ok "dmesg clean # could not check dmesg"
	;;
esac
rm -f "$pats" "$res/splats"

out "1..$n"
out "# config $config: $((n - failed)) passed, $failed failed"
[ "$failed" = 0 ]
