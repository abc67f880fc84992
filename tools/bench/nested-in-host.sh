#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Runs inside the test host (tools/testhost/run): boot sparrow's bench mode
# under a QEMU TCG started *in* the test host -- nested software emulation,
# the peer a user without trapvm would pick.  The QEMU binary, firmware and
# sparrow.elf come from the build machine's / over 9p.
#
#   nested-in-host.sh KERNEL [QEMU ARGS...]
#
# The guest's serial console is this script's stdout, which the runner
# relays live (CMD's own output channel, not the test host's console), so
# that make bench can stamp each result line with the build machine's
# clock.  Exit status: 0 if the guest powered off with status 0
# (isa-debug-exit makes QEMU exit with (status << 1) | 1), otherwise
# QEMU's exit status, or 120 if QEMU exited with 0 (no exit device write:
# should not happen).

set -u
kernel=$1
shift

qemu-system-x86_64 "$@" -kernel "$kernel" -append mode=bench \
	-device isa-debug-exit,iobase=0xf4,iosize=4 \
	-serial stdio -display none -no-reboot -nodefaults </dev/null
rc=$?
echo "nested-in-host: qemu exit $rc"
case $rc in
1) exit 0 ;;
0) exit 120 ;;
*) exit "$rc" ;;
esac
