#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# `make demo`: build against the test host's kernel headers, boot the test
# host, load trapvm.ko and show vmctl talking to /dev/trapvm (and running
# the default guest, once `vmctl run` exists).  V=1 also shows the test
# host's serial console; DEMO_GUEST=path.elf and DEMO_CMDLINE=... choose
# the guest and its command line (default: sparrow, mode=demo).

set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
MAKE=${MAKE:-make}
kdir=/lib/modules/$(scripts/testhost-kver.sh)/build

echo "demo: building against $kdir"
$MAKE -s -j2 all KDIR="$kdir"

opts=()
[ "${V:-0}" = 1 ] && opts+=(-v)
echo "demo: booting the test host (tools/testhost/run${opts[*]:+ ${opts[*]}})"
exec tools/testhost/run "${opts[@]}" ${DEMO_GUEST:+--env DEMO_GUEST="$DEMO_GUEST"} \
	${DEMO_CMDLINE:+--env DEMO_CMDLINE="$DEMO_CMDLINE"} -- scripts/demo-in-host.sh
