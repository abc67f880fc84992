#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# vmctl against the loaded module, in the test host: version, help, error
# messages and exit statuses, counter names, and guests run with `vmctl run`
# (UART output, exit port status, Ctrl-C).  TAP output.

top=$(cd "$(dirname "$0")/../.." && pwd)
vmctl=$top/tools/vmctl/vmctl
guests=$top/selftests/trapvm/guests
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
n=0
failed=0

ok() {
	n=$((n + 1))
	echo "ok $n $*"
}

not_ok() {
	n=$((n + 1))
	failed=$((failed + 1))
	echo "not ok $n $*"
}

check() {	# check DESCRIPTION COMMAND...: ok if the command succeeds
	desc=$1
	shift
	if "$@"; then ok "$desc"; else not_ok "$desc"; fi
}

# Prints the command's status; stdout/stderr in $tmp/out, $tmp/err.
run() {
	"$@" > "$tmp/out" 2> "$tmp/err"
	echo $?
}

diag() {
	sed 's/^/# /' "$@"
}

echo "TAP version 13"

if [ ! -x "$vmctl" ]; then
	echo "1..0 # SKIP $vmctl not built"
	exit 0
fi
if [ ! -e /dev/trapvm ]; then
	echo "1..0 # SKIP trapvm module not loaded"
	exit 0
fi

# -- version: the module's answer matches what the module loader recorded
st=$(run "$vmctl" version)
sysver=$(cat /sys/module/trapvm/version 2>/dev/null)
check "vmctl version exits 0" [ "$st" = 0 ]
if grep -q "^trapvm module $sysver, API version 1\$" "$tmp/out" &&
   grep -q "^vmctl API version 1\$" "$tmp/out"; then
	ok "vmctl version reports module $sysver and API 1"
else
	diag "$tmp/out" "$tmp/err"
	not_ok "vmctl version reports module $sysver and API 1"
fi

# -- help
st=$(run "$vmctl" --help)
check "vmctl --help exits 0" [ "$st" = 0 ]
missing=
for c in run stats version; do
	grep -q "^  $c " "$tmp/out" || missing="$missing $c"
done
check "vmctl --help lists run, stats, version" [ -z "$missing" ]
st=$(run "$vmctl" run --help)
check "vmctl run --help shows its usage" \
	sh -c "[ $st = 0 ] && grep -q 'usage: vmctl run' '$tmp/out'"
st=$(run "$vmctl" no-such-command)
check "unknown command: status 2 and a message" \
	sh -c "[ $st = 2 ] && grep -q \"no command 'no-such-command'\" '$tmp/err'"

# -- stats: every counter of the uapi header, in order
sed -n 's/^[[:space:]]*TRAPVM_STAT([A-Z_0-9]*,[[:space:]]*"\([a-z_0-9]*\)").*/\1/p' \
	"$top/uapi/linux/trapvm_stat_list.h" > "$tmp/names"
st=$(run "$vmctl" stats)
grep -v '^#' "$tmp/out" | awk '{ print $1 }' > "$tmp/got"
if [ "$st" = 0 ] && [ -s "$tmp/names" ] && cmp -s "$tmp/names" "$tmp/got"; then
	ok "vmctl stats lists every counter of trapvm_stat_list.h"
else
	diff "$tmp/names" "$tmp/got" | diag
	not_ok "vmctl stats lists every counter of trapvm_stat_list.h"
fi
check "a vCPU that never ran has no entries or exits" \
	sh -c "grep -E '^(entries|exit_)' '$tmp/out' | awk '\$2 != 0 { exit 1 }'"

# -- run: errors before any guest code runs
st=$(run "$vmctl" run /bin/true)
check "run of a non-EXEC ELF: status 1, says why" \
	sh -c "[ $st = 1 ] && grep -q 'not an executable ELF file' '$tmp/err'"
printf 'not an elf at all' > "$tmp/bad"
st=$(run "$vmctl" run "$tmp/bad")
check "run of a non-ELF file: status 1, says why" \
	sh -c "[ $st = 1 ] && grep -q 'not an ELF file' '$tmp/err'"
st=$(run "$vmctl" run "$tmp/does-not-exist")
check "run of a missing file: status 1, says why" \
	sh -c "[ $st = 1 ] && grep -q 'No such file' '$tmp/err'"
st=$(run "$vmctl" run --mem 3M "$guests/uart_exit.elf")
check "run --mem 3M: status 2 (not a multiple of 2 MiB)" [ "$st" = 2 ]
st=$(run "$vmctl" run --mem 1G "$guests/uart_exit.elf" --mem 64T)
check "run --mem 64T: refused" sh -c "[ $st = 1 ] || [ $st = 2 ]"
st=$(run "$vmctl" run --mem 2M "$guests/uart_exit.elf")
check "run --mem 2M with a kernel at 2 MiB: status 1, says why" \
	sh -c "[ $st = 1 ] && grep -q 'does not fit' '$tmp/err'"

# -- run: guests
st=$(run timeout 60 "$vmctl" run --mem 8M "$guests/uart_exit.elf")
printf 'hello from a trapvm guest\nsecond line through rep outsb\n' > "$tmp/want"
if [ "$st" = 42 ] && cmp -s "$tmp/want" "$tmp/out"; then
	ok "uart_exit guest: COM1 output and exit status 42"
else
	echo "# status $st"
	diag "$tmp/out" "$tmp/err"
	not_ok "uart_exit guest: COM1 output and exit status 42"
fi

"$vmctl" run "$guests/spin.elf" > "$tmp/out" 2> "$tmp/err" &
pid=$!
sleep 2
kill -INT $pid 2>/dev/null
( sleep 20; kill -KILL $pid 2>/dev/null ) &
killer=$!
wait $pid
st=$?
kill $killer 2>/dev/null
if [ "$st" = 130 ] && grep -q 'interrupted' "$tmp/err"; then
	ok "Ctrl-C ends a spinning guest: status 130"
else
	echo "# status $st"
	diag "$tmp/err"
	not_ok "Ctrl-C ends a spinning guest: status 130"
fi

echo "1..$n"
[ "$failed" = 0 ]
