#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# `make check`: build everything against the test host's kernel headers, then
# run every test, printing TAP, and end with a line "N passed, N failed".
# Exits non-zero if anything failed.  Phases, in order:
#
#   build       make all (module, tools, guests) and every selftests/*/Makefile
#   checkpatch  checkpatch.pl --strict on kmod/ and uapi/ (one test per file;
#               ERRORs and WARNINGs fail, CHECKs are shown)
#   unit        make -C selftests/unit check (if that Makefile exists)
#   host        every program in selftests/host.list (on the build machine)
#   in-host     one test-host boot per configuration (default, la57, pti),
#               each running selftests/run-in-host.sh
#   testhost    the runner's own tests (selftests/testhost/runner-tests.sh)
#
# Each phase's TAP is kept in build/check/last/<phase>.tap.  A phase that fails
# without printing a "not ok" line gets one, so nothing fails silently.
#
# Env: CHECK_PHASES (space-separated subset, default all),
#      CHECK_CONFIGS (default "default la57 pti"),
#      CHECK_BOOT_TIMEOUT (seconds per test-host boot, default 900),
#      CHECK_JOBS (test-host boots at a time; default: CPUs / 2).

set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1
MAKE=${MAKE:-make}
phases=${CHECK_PHASES:-build checkpatch unit host in-host testhost}
configs=${CHECK_CONFIGS:-default la57 pti}
boot_timeout=${CHECK_BOOT_TIMEOUT:-900}
passed=0
failed=0
t_start=$(date +%s)

# A directory per run (several people may run make check in one tree);
# build/check/last points to the newest; the last five are kept.
out=$top/build/check/$(date +%Y%m%d-%H%M%S)-$$
mkdir -p "$out"
ln -sfn "$(basename "$out")" "$top/build/check/last"
ls -d "$top"/build/check/2*/ 2>/dev/null | sort | head -n -5 | xargs -r rm -rf

kver=$(scripts/testhost-kver.sh) || exit 1
kdir=/lib/modules/$kver/build
export KSFT_DIR=$top/build/linux-src/tools/testing/selftests

want() {
	case " $phases " in *" $1 "*) return 0 ;; esac
	return 1
}

# count FILE: add FILE's TAP results to the totals.  "ok" lines pass (SKIP
# included), "not ok" lines fail unless marked TODO.
count() {
	local p f
	read -r p f < <(awk '
		/^ok( |$)/ { p++ }
		/^not ok( |$)/ { if ($0 ~ /# *TODO/) p++; else f++ }
		END { print p + 0, f + 0 }' "$1")
	passed=$((passed + p))
	failed=$((failed + f))
}

# tap FILE LINE: append one result line to FILE and show it.
tap() {
	printf '%s\n' "$2" | tee -a "$1"
}

# phase NAME CMD...: run CMD, showing and keeping its TAP; a failing CMD
# without any "not ok" of its own gets one.
phase() {
	local name=$1 f=$out/$1.tap rc t
	shift
	echo "# ===== $name ====="
	t=$(date +%s)
	"$@" 2>&1 | tee "$f"
	rc=${PIPESTATUS[0]}
	echo "# $name took $(( $(date +%s) - t )) s"
	if [ "$rc" != 0 ] && ! grep -q '^not ok' "$f"; then
		tap "$f" "not ok - $name: '$*' exited $rc"
	fi
	count "$f"
}

# step FILE NAME CMD...: one TAP result for CMD's success; its output goes
# to a log, shown (tail) only on failure.
step() {
	local f=$1 name=$2 log
	shift 2
	log=$out/$(echo "$name" | sed 's/[^A-Za-z0-9_.-]/_/g').log
	if "$@" > "$log" 2>&1; then
		tap "$f" "ok - $name"
	else
		tail -n 30 "$log" | sed 's/^/# /' | tee -a "$f"
		tap "$f" "not ok - $name # see $log"
	fi
}

build_phase() {
	local f=$out/build.tap d t
	echo "# ===== build (KDIR=$kdir) ====="
	t=$(date +%s)
	: > "$f"
	step "$f" "build: make all" \
		$MAKE -k -j2 all KDIR="$kdir"
	for d in selftests/*/Makefile; do
		[ -f "$d" ] || continue
		d=${d%/Makefile}
		step "$f" "build: $d" \
			$MAKE -k -j2 -C "$d" KDIR="$kdir" KSFT_DIR="$KSFT_DIR"
	done
	count "$f"
	echo "# build took $(( $(date +%s) - t )) s"
}

checkpatch_phase() {
	local cp=build/linux-src/scripts/checkpatch.pl
	echo "TAP version 13"
	if [ ! -f "$cp" ]; then
		echo "not ok - checkpatch: $cp missing (run scripts/deps.sh)"
		return 1
	fi
	find kmod uapi -name '*.[ch]' ! -name '*.mod.c' | sort > "$out/checkpatch.files"
	echo "1..$(wc -l < "$out/checkpatch.files")"
	# One checkpatch process for all files (perl start-up and its word
	# lists dominate otherwise).  --no-tree: we are not inside a kernel
	# tree; nothing else is ignored, kmod/ and uapi/ follow the kernel's
	# coding style.  Each file's report is framed by dashes around its name
	# and ends with its "total:" line.  ERRORs and WARNINGs fail a file;
	# --strict CHECKs are shown as comments.
	# shellcheck disable=SC2046
	perl "$cp" --no-tree --strict --show-types --color=never \
		-f $(cat "$out/checkpatch.files") > "$out/checkpatch.out" 2>&1
	awk -v want="$(wc -l < "$out/checkpatch.files")" '
		/^-+$/ { if (st == 1) st = 2; else if (st == 3) { st = 0; body = "" } else st = 1; next }
		st == 1 { file = $0; st = 3; next }
		/^total: / {
			n++
			split($0, t, /[ ,]+/)
			bad = t[2] + t[4]
			if (bad == 0) {
				printf "%s", checks
				print "ok " n " checkpatch " file " # " $0
			} else {
				printf "%s", body
				print "not ok " n " checkpatch " file " # " $0
			}
			body = ""; checks = ""; st = 4
			next
		}
		st == 0 {
			body = body "# " $0 "\n"
			if ($0 ~ /^CHECK:/)
				checks = checks "# " file ": " $0 "\n"
		}
		END {
			if (n < want)
				print "not ok - checkpatch reported on " n " of " want " files"
		}
	' "$out/checkpatch.out"
}

unit_phase() {
	if [ ! -f selftests/unit/Makefile ]; then
		echo "# selftests/unit/Makefile does not exist yet: no unit tests"
		return 0
	fi
	$MAKE -s -C selftests/unit check KSFT_DIR="$KSFT_DIR"
}

# Programs that run on the build machine itself (e.g. a guest booted
# natively under QEMU), one per line in selftests/host.list, each printing
# TAP and exiting non-zero on failure.
host_phase() {
	local prog args rc
	[ -f selftests/host.list ] || return 0
	rc=0
	while read -r prog args; do
		case $prog in '' | '#'*) continue ;; esac
		echo "# === $prog $args"
		# shellcheck disable=SC2086 # args are split on purpose
		if ! "./$prog" $args < /dev/null; then
			rc=1
		fi
	done < selftests/host.list
	return $rc
}

# boot_config CFG: one test-host boot running every in-VM test in
# configuration CFG.  The TAP ends up in $out/in-host-CFG.tap, the runner's
# status in $out/in-host-CFG.rc; run-in-host.sh's TAP is relayed to stdout
# as it comes.
boot_config() {
	local cfg=$1 opts name rundir f=$out/in-host-$1.tap rc t
	case $cfg in
	default) opts=() ;;
	la57) opts=(--la57) ;;
	pti) opts=(--pti) ;;
	*) opts=() ;;
	esac
	name=check-$(date +%Y%m%d-%H%M%S)-$$-$cfg
	rundir=build/testhost/runs/$name
	echo "# ===== in-host: $cfg (tools/testhost/run --smp 2${opts[*]:+ ${opts[*]}}) ====="
	t=$(date +%s)
	tools/testhost/run --run-name "$name" --timeout "$boot_timeout" \
		--smp 2 "${opts[@]}" --env TESTHOST_CONFIG="$cfg" \
		-- selftests/run-in-host.sh 2> "$out/in-host-$cfg.err"
	rc=$?
	# The TAP file in the results share is authoritative.
	if [ -f "$rundir/results/tap" ]; then
		cp "$rundir/results/tap" "$f"
	else
		: > "$f"
	fi
	{
		sed 's/^/# /' "$out/in-host-$cfg.err" | tail -n 40
		case $rc in
		0) ;;
		122 | 123 | 124 | 125)
			echo "not ok - in-host $cfg: $(grep -h \
				'^testhost: \(FAIL\|error\)' \
				"$out/in-host-$cfg.err" | tail -n1)" ;;
		*)
			grep -q '^not ok' "$f" ||
				echo "not ok - in-host $cfg: runner exit $rc" ;;
		esac
	} | tee -a "$f"
	echo "# in-host $cfg took $(( $(date +%s) - t )) s"
}

# One boot per configuration.  TCG is CPU-bound and each boot has two
# vCPUs, so boots run side by side only when there are at least two CPUs
# per boot (CHECK_JOBS overrides); their output is then shown per boot, at
# the end, instead of live.
in_host_phase() {
	local cfg ncfg jobs running=0
	ncfg=$(echo $configs | wc -w)
	jobs=${CHECK_JOBS:-$(( $(nproc) / 2 ))}
	[ "$jobs" -ge 1 ] || jobs=1
	if [ "$jobs" -le 1 ] || [ "$ncfg" -le 1 ]; then
		for cfg in $configs; do
			boot_config "$cfg"
			count "$out/in-host-$cfg.tap"
		done
		return
	fi
	echo "# ===== in-host: $ncfg configurations, $jobs at a time ====="
	for cfg in $configs; do
		if [ "$running" -ge "$jobs" ]; then
			wait -n
			running=$((running - 1))
		fi
		boot_config "$cfg" > "$out/in-host-$cfg.live" 2>&1 &
		running=$((running + 1))
	done
	wait
	for cfg in $configs; do
		cat "$out/in-host-$cfg.live"
		count "$out/in-host-$cfg.tap"
	done
}

testhost_phase() {
	selftests/testhost/runner-tests.sh
}

want build && build_phase
want checkpatch && phase checkpatch checkpatch_phase
want unit && phase unit unit_phase
want host && phase host host_phase
want in-host && in_host_phase
want testhost && phase testhost testhost_phase

echo "# make check took $(( $(date +%s) - t_start )) s; TAP in $out/"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
