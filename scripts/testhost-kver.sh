#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Print the test host's kernel version: the kernel linux-image-amd64 pulled
# in (e.g. 6.1.0-56-amd64).  Never uname -r: the build machine may run some
# other kernel.  Falls back to the newest /lib/modules/*-amd64 that has a
# matching /boot/vmlinuz.

dep=$(dpkg-query -W -f='${Depends}' linux-image-amd64 2>/dev/null |
	tr ',|' '\n\n' | sed -n 's/^ *linux-image-\([^ ]*-amd64\).*/\1/p' |
	head -n1)
if [ -n "$dep" ] && [ -f "/boot/vmlinuz-$dep" ] && [ -d "/lib/modules/$dep" ]; then
	echo "$dep"
	exit 0
fi
for d in $(ls -d /lib/modules/*-amd64 2>/dev/null | sort -rV); do
	v=${d#/lib/modules/}
	if [ -f "/boot/vmlinuz-$v" ]; then
		echo "$v"
		exit 0
	fi
done
echo "testhost-kver: no Debian amd64 kernel installed (linux-image-amd64)" >&2
exit 1
