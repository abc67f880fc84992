#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# `make bench`: run sparrow's benchmark mode (guests/sparrow, mode=bench)
# three ways, side by side, and write the comparison:
#
#   native   QEMU TCG, bare: sparrow at real CPL0 (the baseline)
#   trapvm   inside the test host, `vmctl run` (sparrow deprivileged)
#   nested   inside the test host, QEMU TCG (nested software emulation:
#            what a user without trapvm would run)
#
# Each configuration runs BENCH_RUNS times (interleaved, so that a noisy
# spell of the shared machine hits every column alike); report.py takes
# the per-operation median and writes build/bench/{results.txt,
# results.csv,results.json,bench.png}.  A column whose run fails is shown
# as failed with the reason; the others are still produced.  These are
# figures, not tests: the exit status is 0 when at least the native column
# has results.  See Documentation/benchmarks.rst.
#
# Environment:
#   BENCH_RUNS=3             runs per column
#   BENCH_COLUMNS="native trapvm nested"
#   BENCH_BUILD=1            0: use the binaries as they are
#   BENCH_HOST_MEM=1024      test host memory (MiB)
#   BENCH_HOST_OPTS=""       extra tools/testhost/run options (e.g. --la57;
#                            not --append, which would replace ours)
#   BENCH_TIMEOUT=180        seconds per run before it counts as hung
#   BENCH_GUEST_ARGS=""      more sparrow command line for the native and
#                            trapvm columns (e.g. pv_mmu=0)
#   BENCH_OUT=build/bench    output directory

set -uo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top" || exit 1
MAKE=${MAKE:-make}
runs=${BENCH_RUNS:-3}
columns=${BENCH_COLUMNS:-native trapvm nested}
host_mem=${BENCH_HOST_MEM:-1024}
tmo=${BENCH_TIMEOUT:-180}
out=${BENCH_OUT:-$top/build/bench}
kernel=guests/sparrow/sparrow.elf
# The one QEMU configuration: the native run, the test host and the nested
# QEMU all use it (the test host adds its own -smp/-m, see testing.rst).
qemu_cpu=(-accel tcg -cpu max)
guest_mem=256
guest_cmdline="mode=bench${BENCH_GUEST_ARGS:+ $BENCH_GUEST_ARGS}"

msg() { printf 'bench: %s\n' "$*" >&2; }

rm -rf "$out/runs"
mkdir -p "$out/runs" || exit 1
stamp=$(date -u +%Y%m%d-%H%M%S)-$$

# Every RDTSC here reads the build machine's TSC (QEMU TCG passes the
# host's through, and trapvm guests run RDTSC natively in the test host).
# The test host's kernel sometimes calibrates it ~8x too slow against its
# PIT when the machine is loaded (then its CLOCK_MONOTONIC, vmctl's
# tsc_khz for sparrow and the nested QEMU's clocks are all off): tell it
# the rate measured here.
tsc_khz=
if gcc -O2 -o "$out/tsc-khz" tools/bench/tsc-khz.c 2>"$out/tsc-khz.log"; then
	tsc_khz=$("$out/tsc-khz")
fi
host_opts=(--mem "$host_mem" --timeout "$tmo")
if [ -n "$tsc_khz" ]; then
	host_opts+=(--append "tsc_early_khz=$tsc_khz")
else
	msg "could not measure the TSC rate: the test host calibrates its own"
fi
# shellcheck disable=SC2206
host_opts+=(${BENCH_HOST_OPTS:-})

# --- build ------------------------------------------------------------
# sparrow is needed by every column; the module and vmctl (built against
# the test host's headers) only by the trapvm column, so their failure
# fails that column alone.
build_note=
if [ "${BENCH_BUILD:-1}" != 0 ]; then
	msg "building sparrow"
	if ! $MAKE -s guests >"$out/build-guests.log" 2>&1; then
		msg "sparrow failed to build:"
		tail -n 20 "$out/build-guests.log" >&2
	fi
	if [[ " $columns " == *" trapvm "* ]]; then
		kdir=/lib/modules/$(scripts/testhost-kver.sh)/build
		msg "building trapvm.ko and vmctl against $kdir"
		if ! $MAKE -s -j2 module tools KDIR="$kdir" \
			>"$out/build-trapvm.log" 2>&1; then
			build_note="module/vmctl build failed (build/bench/build-trapvm.log)"
			msg "$build_note"
		fi
	fi
fi
if [ ! -f "$kernel" ]; then
	msg "no $kernel: nothing to benchmark"
	exit 1
fi

# Snapshot the binaries: the working tree is shared and may be rebuilt
# while the runs go on, and every run must measure the same code.
bin=$out/bin
rm -rf "$bin"
mkdir -p "$bin"
cp "$kernel" "$bin/sparrow.elf" || exit 1
kernel=$bin/sparrow.elf
vmctl=$bin/vmctl
module=$bin/trapvm.ko
if [ -z "$build_note" ] && ! cp tools/vmctl/vmctl kmod/trapvm.ko "$bin/" 2>/dev/null; then
	build_note="no tools/vmctl/vmctl or kmod/trapvm.ko"
fi

# Machine facts for the report.
{
	echo "date=$(date -u '+%Y-%m-%d %H:%M UTC')"
	echo "cpus=$(nproc)"
	echo "cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)"
	echo "qemu=$(qemu-system-x86_64 --version | head -n1)"
	echo "testhost_kernel=$(scripts/testhost-kver.sh 2>/dev/null)"
	echo "commit=$(git rev-parse --short HEAD 2>/dev/null)$(git diff --quiet HEAD -- guests kmod tools uapi 2>/dev/null || echo '+dirty')"
	echo "loadavg_start=$(cut -d' ' -f1-3 /proc/loadavg)"
	echo "runs=$runs"
	echo "host_mem=$host_mem"
	echo "host_opts=${host_opts[*]:4}"
	echo "tsc_khz=$tsc_khz"
	echo "guest_cmdline=$guest_cmdline"
	echo "build_note=$build_note"
	(cd "$bin" && sha256sum -- *) |
		awk '{ printf "sha256_%s=%s\n", $2, substr($1, 1, 16) }'
} >"$out/runs/machine.env"

# run_COLUMN RUN: leaves $out/runs/COLUMN-RUN.{log,rc,secs}.  The .log
# has the guest's serial output (and, for trapvm, vmctl's and the
# runner's), every line stamped with the build machine's clock on arrival
# (stamp.py): the runner relays CMD's output live.
run_native() {
	timeout "$tmo" qemu-system-x86_64 "${qemu_cpu[@]}" -m "$guest_mem" \
		-kernel "$kernel" -append "$guest_cmdline" \
		-device isa-debug-exit,iobase=0xf4,iosize=4 \
		-serial stdio -display none -no-reboot -nodefaults \
		</dev/null 2>"$out/runs/native-$1.qemu" |
		tools/bench/stamp.py "$out/runs/native-$1.log"
	return "${PIPESTATUS[0]}"
}

run_trapvm() {
	local log=$out/runs/trapvm-$1.log
	if [ -n "$build_note" ]; then
		echo "bench: $build_note" >"$log"
		return 122
	fi
	tools/testhost/run "${host_opts[@]}" --module "$module" \
		--run-name "bench-$stamp-trapvm-$1" \
		-- "$vmctl" run --stats --mem "${guest_mem}M" \
		--cmdline "$guest_cmdline" "$kernel" </dev/null 2>&1 |
		tools/bench/stamp.py "$log"
	return "${PIPESTATUS[0]}"
}

run_nested() {
	tools/testhost/run "${host_opts[@]}" --no-module \
		--run-name "bench-$stamp-nested-$1" \
		-- tools/bench/nested-in-host.sh "$kernel" "${qemu_cpu[@]}" \
		-m "$guest_mem" </dev/null 2>&1 |
		tools/bench/stamp.py "$out/runs/nested-$1.log"
	return "${PIPESTATUS[0]}"
}

declare -A dead
for r in $(seq 1 "$runs"); do
	for c in $columns; do
		if [ -n "${dead[$c]:-}" ]; then
			continue
		fi
		msg "run $r/$runs: $c"
		t0=$(date +%s.%N)
		"run_$c" "$r"
		rc=$?
		t1=$(date +%s.%N)
		echo "$rc" >"$out/runs/$c-$r.rc"
		awk "BEGIN { printf \"%.1f\n\", $t1 - $t0 }" >"$out/runs/$c-$r.secs"
		msg "run $r/$runs: $c: exit $rc in $(cat "$out/runs/$c-$r.secs") s"
		# A failing configuration fails the same way again: don't
		# spend the time budget on it.
		ok=0
		case $c in native) [ "$rc" = 1 ] && ok=1 ;; *) [ "$rc" = 0 ] && ok=1 ;; esac
		[ "$ok" = 1 ] || dead[$c]=1
	done
done

python3 tools/bench/report.py --columns "$columns" "$out"
