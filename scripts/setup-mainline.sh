#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The mainline lane: Debian sid's current kernel.  Its headers want sid's
# compiler, so pcache is built for it inside a minimal sid chroot
# (build/sid-root, made by debootstrap) rather than on the Debian 12 host.
# The matching kernel image is unpacked under build/kernels/RELEASE, as
# scripts/setup.sh does for 6.1 and 6.12, for scripts/vm.sh to boot.  The
# release is resolved once from sid's metadata and remembered in
# build/kernels/mainline.release (`kernel_release mainline`).
#
# Not part of `make check` and not in PCACHE_KERNEL_SERIES: only
# `make KERNEL=mainline` and `make selftests KERNELS=mainline` call it.
#
# usage: setup-mainline.sh                  set up (quiet when done already)
#        setup-mainline.sh --build [OPTS]   set up, then build pcache in the
#                                           chroot: scripts/build.sh OPTS
#                                           (--strict, --sparse) --kdir ...
set -euo pipefail
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sid-root.sh"

root=$SID_ROOT
mirror=http://deb.debian.org/debian
chroot_packages=(gcc make libc6-dev bc kmod)
# The mirror may serve a Release file past its Valid-Until date; its
# signature is still checked.
apt_opts=(-q -o Acquire::Check-Valid-Until=false)

# Everything mounted into the chroot, unmounted on the way out, last first.
cleanup() {
	sid_unmount_all
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log="$PCACHE_BUILD/sid-setup.log"
logged() {
	"$@" >>"$log" 2>&1 || {
		tail -n 30 "$log" >&2
		die "failed: $* (full log: $log)"
	}
}

make_root() {
	[ -x "$root/usr/bin/gcc" ] && [ -x "$root/usr/bin/apt-get" ] && return
	if ! command -v debootstrap >/dev/null; then
		say "mainline: installing debootstrap on the host"
		as_root apt-get install -y -q --no-install-recommends debootstrap >>"$log" 2>&1 || {
			logged as_root apt-get update -q
			logged as_root apt-get install -y -q --no-install-recommends debootstrap
		}
	fi
	say "mainline: debootstrap of a minimal Debian sid under $root (${chroot_packages[*]})"
	as_root rm -rf "$root.tmp"
	logged as_root debootstrap --variant=minbase --include="$(
		IFS=,
		echo "${chroot_packages[*]}"
	)" sid "$root.tmp" "$mirror"
	as_root rm -rf "$root"
	as_root mv "$root.tmp" "$root"
}

# The release sid's linux-headers-amd64 depends on, remembered.
resolve_release() {
	local memo="$PCACHE_BUILD/kernels/mainline.release" rel
	if [ -s "$memo" ]; then
		cat "$memo"
		return
	fi
	as_root cp /etc/resolv.conf "$root/etc/resolv.conf"
	say "mainline: refreshing sid's package lists in the chroot"
	logged in_sid_root apt-get "${apt_opts[@]}" update
	rel=$(in_sid_root apt-cache depends "$(kernel_meta_package mainline)" |
		sed -n 's/^ *Depends: linux-headers-\(.*-amd64\)$/\1/p' | head -n 1)
	[ -n "$rel" ] || die "cannot resolve sid's kernel from $(kernel_meta_package mainline)"
	mkdir -p "$(dirname "$memo")"
	echo "$rel" >"$memo"
	echo "$rel"
}

install_headers() {
	local rel=$1
	[ -f "$root$(kernel_headers_dir "$rel")/Makefile" ] && return
	as_root cp /etc/resolv.conf "$root/etc/resolv.conf"
	say "mainline: installing linux-headers-$rel in the chroot"
	logged in_sid_root apt-get "${apt_opts[@]}" update
	in_sid_root apt-cache show "linux-headers-$rel" >/dev/null 2>&1 ||
		die "sid no longer has linux-headers-$rel: remove $PCACHE_BUILD/kernels/mainline.release to take its current kernel"
	logged in_sid_root apt-get "${apt_opts[@]}" install -y --no-install-recommends \
		"linux-headers-$rel"
	logged in_sid_root apt-get clean
}

# The packages holding sid's kernel image and modules.  Up to 6.x Debian
# ships them in linux-image-RELEASE(-unsigned); sid's 7.x splits that into
# linux-base-, linux-binary- and linux-modules-RELEASE, on which
# linux-image-RELEASE (then nearly empty) depends.
image_packages() {
	local rel=$1 pkg parts
	for pkg in "linux-image-$rel-unsigned" "linux-image-$rel"; do
		in_sid_root apt-cache show "$pkg" >/dev/null 2>&1 || continue
		parts=$(in_sid_root apt-cache depends "$pkg" |
			sed -n "s/^ *Depends: \(linux-[a-z-]*-$rel\)$/\1/p")
		echo "$pkg"
		[ -z "$parts" ] || echo "$parts"
		return
	done
	die "no linux-image package for $rel in sid"
}

# As fetch_kernel_image in setup.sh: unpacked, never installed, with a
# modules.dep.
fetch_image() {
	local rel=$1 dir list pkgs pkg deb kroot
	kroot=$(kernel_root_dir "$rel")
	[ -f "$(kernel_image "$rel")" ] && [ -s "$(kernel_modules_dir "$rel")/modules.dep" ] && return
	as_root cp /etc/resolv.conf "$root/etc/resolv.conf"
	dir=/var/tmp/pcache-debs
	as_root rm -rf "$root$dir"
	as_root mkdir -p "$root$dir"
	list=$(image_packages "$rel")
	mapfile -t pkgs <<<"$list"
	say "mainline: downloading ${pkgs[*]} (unpacked under build/, not installed)"
	logged in_sid_root sh -c "cd $dir && apt-get ${apt_opts[*]} download ${pkgs[*]}"
	rm -rf "$kroot.tmp"
	mkdir -p "$kroot.tmp"
	for pkg in "${pkgs[@]}"; do
		deb=$(find "$root$dir" -name "${pkg}_*.deb" | head -n 1)
		[ -n "$deb" ] || die "apt-get download $pkg left no .deb"
		dpkg-deb -x "$deb" "$kroot.tmp"
	done
	# sid's packages put the module tree under usr/lib/modules and the
	# kernel beside it (vmlinuz, no /boot); vm.sh and mkinitramfs.sh look for
	# lib/modules/RELEASE and boot/vmlinuz-RELEASE.
	[ -e "$kroot.tmp/lib" ] || [ ! -d "$kroot.tmp/usr/lib" ] || ln -s usr/lib "$kroot.tmp/lib"
	if [ ! -e "$kroot.tmp/boot/vmlinuz-$rel" ] && [ -f "$kroot.tmp/usr/lib/modules/$rel/vmlinuz" ]; then
		mkdir -p "$kroot.tmp/boot"
		ln -s "../usr/lib/modules/$rel/vmlinuz" "$kroot.tmp/boot/vmlinuz-$rel"
	fi
	depmod -b "$kroot.tmp" "$rel"
	rm -rf "$kroot"
	mv "$kroot.tmp" "$kroot"
	as_root rm -rf "$root$dir"
}

# scripts/build.sh in the chroot, the repository and build directory bound
# at their own paths so that the module lands in build/RELEASE/ as usual.
build_in_root() {
	local rel=$1
	shift
	sid_mount proc /proc
	sid_mount "$PCACHE_TOP" "$PCACHE_TOP"
	case "$PCACHE_BUILD/" in
	"$PCACHE_TOP"/*) ;;
	*) sid_mount "$PCACHE_BUILD" "$PCACHE_BUILD" ;;
	esac
	in_sid_root PCACHE_BUILD="$PCACHE_BUILD" bash "$PCACHE_TOP/scripts/build.sh" "$@" \
		--kdir "$(kernel_headers_dir "$rel")"
	cleanup
}

main() {
	local rel build="" lock
	if [ "${1:-}" = --build ]; then
		build=1
		shift
	fi
	command -v apt-get >/dev/null || die "the mainline lane needs a Debian host (apt-get not found)"
	mkdir -p "$PCACHE_BUILD"
	# One set-up or chroot build at a time.
	exec {lock}>"$PCACHE_BUILD/sid-root.lock"
	flock "$lock"

	make_root
	rel=$(resolve_release)
	install_headers "$rel"
	fetch_image "$rel"
	[ -z "$build" ] || build_in_root "$rel" "$@"
}

main "$@"
