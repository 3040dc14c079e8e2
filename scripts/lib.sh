# SPDX-License-Identifier: GPL-2.0
# Shared helpers for pcache's scripts: messages, the build directory and the
# Debian kernels pcache is built and tested against.  Sourced, not run.
# shellcheck shell=bash

PCACHE_TOP=${PCACHE_TOP:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
PCACHE_BUILD=${PCACHE_BUILD:-$PCACHE_TOP/build}

say() { printf '==> %s\n' "$*" >&2; }
warn() { printf 'warning: %s\n' "$*" >&2; }
die() {
	printf 'error: %s\n' "$*" >&2
	exit 1
}

# Print a command the way a person would type it, then run it.
run() {
	printf '  $ %s\n' "$*" >&2
	"$@"
}

as_root() {
	if [ "$(id -u)" -eq 0 ]; then
		"$@"
	else
		sudo "$@"
	fi
}

# Kernel series pcache supports.  Each maps to a Debian metapackage whose
# dependency names the exact ABI (e.g. 6.1 -> linux-headers-6.1.0-56-amd64);
# headers and image must come from that same ABI.
PCACHE_KERNEL_SERIES=(6.1 6.12)

kernel_meta_package() {
	case "$1" in
	6.1) echo linux-headers-amd64 ;;
	6.12) echo linux-headers-6.12-amd64 ;;
	mainline) echo linux-headers-amd64 ;; # in Debian sid, see below
	*) die "unknown kernel series '$1' (known: ${PCACHE_KERNEL_SERIES[*]})" ;;
	esac
}

# The release string (uname -r of the guest) of a series, resolved once from
# the apt metadata and remembered under build/, so later runs are quiet and
# stable even when the archive moves on.
kernel_release() {
	local series=$1 memo="$PCACHE_BUILD/kernels/$1.release" meta rel
	if [ -s "$memo" ]; then
		cat "$memo"
		return
	fi
	# "mainline" is Debian sid's kernel, which the host's apt does not know:
	# scripts/setup-mainline.sh resolves it in its sid chroot and writes the
	# memo.  It is deliberately not in PCACHE_KERNEL_SERIES (make check and
	# CI never download sid).
	# The same for "debug", the kernel scripts/setup-debug-kernel.sh builds.
	case "$series" in mainline | debug) return 1 ;; esac
	meta=$(kernel_meta_package "$series")
	rel=$(apt-cache depends "$meta" 2>/dev/null |
		sed -n 's/^ *Depends: linux-headers-\(.*-amd64\)$/\1/p' | head -n 1)
	[ -n "$rel" ] || return 1
	mkdir -p "$(dirname "$memo")"
	echo "$rel" >"$memo"
	echo "$rel"
}

# A kernel built here (the debug lane) is its own headers tree.
kernel_headers_dir() {
	if [ -d "$PCACHE_BUILD/kernels/$1/build" ]; then
		echo "$PCACHE_BUILD/kernels/$1/build"
	else
		echo "/usr/src/linux-headers-$1"
	fi
}
kernel_root_dir() { echo "$PCACHE_BUILD/kernels/$1"; }
kernel_image() { echo "$PCACHE_BUILD/kernels/$1/boot/vmlinuz-$1"; }
kernel_modules_dir() { echo "$PCACHE_BUILD/kernels/$1/lib/modules/$1"; }
module_build_dir() { echo "$PCACHE_BUILD/$1"; }
module_path() { echo "$PCACHE_BUILD/$1/pcache/pcache.ko"; }
