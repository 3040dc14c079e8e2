#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Install everything pcache's build, checks and guest tests need on Debian 12:
# compilers, the Debian 6.1 and 6.12 kernel headers, the exactly matching
# kernel images and module trees (downloaded and unpacked under build/, never
# installed), QEMU, the guest userland tools, sparse and checkpatch.
#
# Idempotent: when everything is in place it prints nothing and takes well
# under a second, so every make target calls it first.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

packages=(
	gcc make libc6-dev bc kmod cpio xz-utils zstd dwarves libelf-dev
	qemu-system-x86 busybox-static
	fio ndctl dmsetup bcache-tools xfsprogs e2fsprogs util-linux
	sparse linux-source-6.1 shellcheck python3 udev dkms openssl
	stress-ng dbench sysbench fsmark
)

missing_packages() {
	local pkg
	for pkg in "$@"; do
		dpkg-query -W -f='${Status}\n' "$pkg" 2>/dev/null |
			grep -q '^install ok installed$' || echo "$pkg"
	done
}

apt_updated=
apt_update_once() {
	[ -n "$apt_updated" ] && return
	say "setup: refreshing the apt package lists"
	as_root apt-get update -q >/dev/null
	apt_updated=1
}

apt_install() {
	apt_update_once
	say "setup: installing $*"
	as_root env DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -q --no-install-recommends "$@" >"$PCACHE_BUILD/apt.log" 2>&1 ||
		{
			tail -n 30 "$PCACHE_BUILD/apt.log" >&2
			die "apt-get install failed (full log: $PCACHE_BUILD/apt.log)"
		}
}

resolve_release() {
	local series=$1 rel
	rel=$(kernel_release "$series") && { echo "$rel"; return; }
	apt_update_once
	rel=$(kernel_release "$series") ||
		die "cannot resolve the Debian $series kernel from $(kernel_meta_package "$series")"
	echo "$rel"
}

# Unpack the kernel image package matching the headers, and give its module
# tree a modules.dep (the package leaves that to its postinst).
fetch_kernel_image() {
	local rel=$1 root debs deb pkg
	root=$(kernel_root_dir "$rel")
	[ -f "$(kernel_image "$rel")" ] && [ -s "$(kernel_modules_dir "$rel")/modules.dep" ] && return
	debs="$PCACHE_BUILD/kernels/debs"
	mkdir -p "$debs"
	deb=
	for pkg in "linux-image-$rel-unsigned" "linux-image-$rel"; do
		apt-cache show "$pkg" >/dev/null 2>&1 || continue
		say "setup: downloading $pkg (unpacked under build/, not installed)"
		(cd "$debs" && as_root apt-get download -q -o APT::Sandbox::User=root "$pkg" >/dev/null)
		deb=$(find "$debs" -name "${pkg}_*.deb" | head -n 1)
		break
	done
	[ -n "$deb" ] || die "no linux-image package for $rel in the apt sources"
	rm -rf "$root.tmp"
	dpkg-deb -x "$deb" "$root.tmp"
	depmod -b "$root.tmp" "$rel"
	rm -rf "$root"
	mv "$root.tmp" "$root"
	rm -f "$deb"
}

# checkpatch.pl and the data files it reads live only in the kernel source.
fetch_checkpatch() {
	local dest="$PCACHE_BUILD/tools/checkpatch" tarball=/usr/src/linux-source-6.1.tar.xz
	[ -x "$dest/checkpatch.pl" ] && return
	say "setup: extracting checkpatch.pl from $tarball"
	rm -rf "$dest.tmp"
	mkdir -p "$dest.tmp"
	tar -xJf "$tarball" -C "$dest.tmp" --strip-components=2 \
		linux-source-6.1/scripts/checkpatch.pl \
		linux-source-6.1/scripts/spelling.txt \
		linux-source-6.1/scripts/const_structs.checkpatch
	rm -rf "$dest"
	mv "$dest.tmp" "$dest"
}

main() {
	local series rel releases=() todo
	mkdir -p "$PCACHE_BUILD"
	command -v apt-get >/dev/null || die "pcache's set-up needs Debian 12 (apt-get not found)"

	# The host-side test harness names its own packages.
	mapfile -t -O "${#packages[@]}" packages < <(grep -v '^#' "$PCACHE_TOP/tests/host/packages.txt")

	for series in "${PCACHE_KERNEL_SERIES[@]}"; do
		rel=$(resolve_release "$series")
		releases+=("$rel")
		packages+=("linux-headers-$rel")
	done

	mapfile -t todo < <(missing_packages "${packages[@]}")
	[ "${#todo[@]}" -eq 0 ] || apt_install "${todo[@]}"

	for rel in "${releases[@]}"; do
		fetch_kernel_image "$rel"
	done
	fetch_checkpatch
}

main "$@"
