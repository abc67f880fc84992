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
# The default guest, once vmctl has a run subcommand.
if $vmctl help 2>&1 | grep -qw run; then
	echo "== $vmctl run"
	$vmctl run
fi
