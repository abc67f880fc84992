#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# The part of `make demo` that runs inside the test host, as root, with
# trapvm.ko already loaded by tools/testhost/run.

set -e
vmctl=tools/vmctl/vmctl

echo "== test host: $(uname -sr), $(nproc) CPUs"
echo "== module:"
grep '^trapvm ' /proc/modules
dmesg | grep -i trapvm | tail -n 5
echo "== device:"
ls -l /dev/trapvm
echo "== $vmctl version"
$vmctl version
# The default guest: the bundled sparrow OS in its demo mode.
guest=${DEMO_GUEST:-guests/sparrow/sparrow.elf}
if [ -f "$guest" ] && $vmctl help 2>&1 | grep -qw run; then
	echo "== $vmctl run $guest --cmdline ${DEMO_CMDLINE:-mode=demo}"
	timeout 300 $vmctl run "$guest" --cmdline "${DEMO_CMDLINE:-mode=demo}"
fi
