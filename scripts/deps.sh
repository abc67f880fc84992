#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Install what trapvm needs to build and test, idempotently, then fetch the
# few kernel-source files the build uses and prepare the test host's kernel.
#
# - Debian packages: only the missing ones are installed; when everything is
#   present this does not touch apt at all (no `apt-get update`).
# - build/linux-src/: kselftest headers and checkpatch.pl, extracted from
#   Debian's linux-source-6.1 package (downloaded once into build/, cached).
# - build/testhost/: the uncompressed vmlinux and the initramfs of the test
#   host (tools/testhost/run --prepare).
#
# Usage: scripts/deps.sh [--no-install]   (--no-install: only check)

set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
build=$top/build

# Keep in sync with Documentation/testing.rst.
pkgs=(
	qemu-system-x86 linux-image-amd64 linux-headers-amd64
	busybox-static kmod cpio
	libnl-3-dev libnl-genl-3-dev pkg-config
	bpftrace clang libclang-rt-14-dev llvm
	gcc libc6-dev make perl python3 xz-utils
	gnuplot-nox	# make bench's plot (Documentation/benchmarks.rst)
)

msg() { printf 'deps: %s\n' "$*" >&2; }
die() { msg "error: $*"; exit 1; }

installed() {
	# An installed package reports "install ok installed".
	[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]
}

missing=()
for p in "${pkgs[@]}"; do
	installed "$p" || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
	[ "${1:-}" = --no-install ] && die "missing packages: ${missing[*]}"
	[ "$(id -u)" -eq 0 ] || die "missing packages (${missing[*]}); run as root or: sudo apt-get install ${missing[*]}"
	msg "installing: ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	# The package lists of a fresh machine may be empty or stale.
	apt-get update -q >&2
	# INITRD=No: we never boot the installed kernel on this machine, so
	# skip update-initramfs (it costs ~40 s).
	INITRD=No apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
else
	msg "all packages present"
fi

# The test host kernel: the one linux-image-amd64 depends on (never uname).
kver=$("$top/scripts/testhost-kver.sh")
msg "test host kernel $kver"
[ -d "/lib/modules/$kver/build" ] || die "/lib/modules/$kver/build missing (linux-headers-$kver?)"

# Kernel-source files: kselftest headers and checkpatch.  Re-extracted only
# when the linux-source version changes (the stamp records it).
src_files=(
	tools/testing/selftests/kselftest_harness.h
	tools/testing/selftests/kselftest.h
	tools/testing/selftests/kselftest_module.h
	scripts/checkpatch.pl
	scripts/spelling.txt
	scripts/const_structs.checkpatch
)
srcdir=$build/linux-src
stamp=$srcdir/.stamp
have_all() {
	local f
	for f in "${src_files[@]}"; do
		[ -f "$srcdir/$f" ] || return 1
	done
}

mkdir -p "$build"
deb=$(ls "$build"/linux-source-6.1_*_all.deb 2>/dev/null | sort -V | tail -n1 || true)
if [ -z "$deb" ] || ! { have_all && [ "$(cat "$stamp" 2>/dev/null)" = "$(basename "$deb")" ]; }; then
	if [ -z "$deb" ]; then
		msg "downloading linux-source-6.1"
		# apt-get download writes into the current directory; _apt
		# cannot write into a root-owned tree, hence the warning it may
		# print (harmless).
		if ! (cd "$build" && apt-get download -q linux-source-6.1 >&2); then
			# Package lists may be missing (fresh container) or stale.
			[ "$(id -u)" -eq 0 ] ||
				die "apt-get download linux-source-6.1 failed (apt-get update?)"
			apt-get update -q >&2
			(cd "$build" && apt-get download -q linux-source-6.1 >&2) ||
				die "apt-get download linux-source-6.1 failed"
		fi
		deb=$(ls "$build"/linux-source-6.1_*_all.deb | sort -V | tail -n1)
	fi
	msg "extracting kernel-source files from $(basename "$deb")"
	tmp=$(mktemp -d "$build/linux-src.XXXXXX")
	chmod 755 "$tmp"
	trap 'rm -rf "$tmp"' EXIT
	dpkg-deb --fsys-tarfile "$deb" |
		tar -x -O ./usr/src/linux-source-6.1.tar.xz |
		tar -xJ -C "$tmp" --strip-components=1 \
			"${src_files[@]/#/linux-source-6.1/}"
	basename "$deb" > "$tmp/.stamp"
	rm -rf "$srcdir"
	mv "$tmp" "$srcdir"
	trap - EXIT
fi

# vmlinux and initramfs for tools/testhost/run (cached, per kernel version).
python3 "$top/tools/testhost/run" --prepare > /dev/null
msg "ready"
