#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Build mainline's dm-pcache (drivers/md/dm-pcache/, since 6.17: the
# device-mapper take on a pmem cache) as an out-of-tree module for the
# mainline lane's kernel, for scripts/bench.sh to compare against.  Debian
# ships the source but does not build it (CONFIG_DM_PCACHE is not set).
#
# Inside the sid chroot of scripts/setup-mainline.sh: Debian's linux-source
# package of the exact version of the kernel's headers is downloaded (about
# 160 MB, not installed), only drivers/md/dm-pcache/, the drivers/md headers
# it includes (dm-core.h and friends, not in the headers package) and its
# documentation are unpacked, and it is built with sid's gcc against
# /usr/src/linux-headers-RELEASE.  The module lands in
# build/RELEASE/dm-pcache/dm-pcache.ko, the sources beside it (src/), the
# download size and build times in build/RELEASE/dm-pcache/build-info.
# Quiet and quick when the module is already there and newer than this
# script; if the kernel's own modules have dm-pcache.ko, that one is used
# and nothing is built.
#
# usage: build-dm-pcache.sh [SERIES|RELEASE]   (default: mainline)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sid-root.sh"

target=${1:-mainline}
case "$target" in
*-amd64) rel=$target ;;
*) rel=$(kernel_release "$target") || die "kernel $target is not set up: run scripts/setup-mainline.sh" ;;
esac
root=$SID_ROOT
hdr=$(kernel_headers_dir "$rel")
out="$(module_build_dir "$rel")/dm-pcache"
ko="$out/dm-pcache.ko"
src="$out/src"
info="$out/build-info"
apt_opts=(-q -o Acquire::Check-Valid-Until=false)

shipped=$(find "$(kernel_modules_dir "$rel")/kernel/drivers/md" -maxdepth 1 -name 'dm-pcache.ko*' 2>/dev/null | head -n 1)
if [ -n "$shipped" ]; then
	say "dm-pcache: $rel ships it ($shipped): nothing to build"
	exit 0
fi
if [ -f "$ko" ] && [ "$ko" -nt "$0" ]; then
	say "dm-pcache: $ko is up to date"
	exit 0
fi
[ -f "$root$hdr/Makefile" ] || die "no $hdr in $root: run scripts/setup-mainline.sh"

# Everything mounted into the chroot, unmounted on the way out, last first.
tmp=""
cleanup() {
	sid_unmount_all
	[ -z "$tmp" ] || as_root rm -rf "$root$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# One user of the chroot at a time (scripts/setup-mainline.sh takes the
# same lock).
mkdir -p "$out"
exec {lock}>"$PCACHE_BUILD/sid-root.lock"
flock -n "$lock" || {
	say "dm-pcache: waiting for another user of $root"
	flock "$lock"
}
start=$SECONDS

# The source package of the headers' own version: linux-source-7.2 7.2.13-1
# for linux-headers-7.2.13+deb14-amd64.
series=$(echo "$rel" | sed -n 's/^\([0-9]*\.[0-9]*\).*/\1/p')
# shellcheck disable=SC2016 # a dpkg-query format, not an expansion
version=$(in_sid_root dpkg-query -W -f '${Version}' "linux-headers-$rel") ||
	die "linux-headers-$rel is not installed in $root: run scripts/setup-mainline.sh"
pkg="linux-source-$series"
keep=(drivers/md/dm-pcache 'drivers/md/*.h' Documentation/admin-guide/device-mapper/dm-pcache.rst)
if [ ! -f "$src/drivers/md/dm-pcache/Makefile" ] || [ "$(cat "$src/.version" 2>/dev/null)" != "$pkg=$version" ]; then
	tmp=/var/tmp/pcache-dm-pcache
	as_root rm -rf "$root$tmp"
	as_root mkdir -p "$root$tmp"
	as_root cp /etc/resolv.conf "$root/etc/resolv.conf"
	say "dm-pcache: downloading $pkg $version in $root (not installed)"
	t0=$SECONDS
	in_sid_root sh -c "cd $tmp && apt-get ${apt_opts[*]} download $pkg=$version" >"$out/download.log" 2>&1 || {
		tail -n 20 "$out/download.log" >&2
		die "cannot download $pkg=$version from sid (gone from the archive? see $out/download.log)"
	}
	deb=$(find "$root$tmp" -name "${pkg}_*.deb" | head -n 1)
	[ -n "$deb" ] || die "apt-get download $pkg left no .deb"
	bytes=$(stat -c %s "$deb")
	download_s=$((SECONDS - t0))
	say "dm-pcache: unpacking ${keep[*]} from $((bytes >> 20)) MiB"
	t0=$SECONDS
	rm -rf "$src.tmp"
	mkdir -p "$src.tmp"
	# The package holds /usr/src/linux-source-X.Y.tar.xz, whose top
	# directory is linux-source-X.Y/.
	dpkg-deb --fsys-tarfile "$deb" |
		tar -xO "./usr/src/$pkg.tar.xz" |
		tar -xJ -C "$src.tmp" --strip-components=1 --wildcards --no-wildcards-match-slash \
			"${keep[@]/#/$pkg/}" ||
		die "cannot unpack ${keep[*]} from $deb"
	echo "$pkg=$version" >"$src.tmp/.version"
	unpack_s=$((SECONDS - t0))
	rm -rf "$src"
	mv "$src.tmp" "$src"
	as_root rm -rf "$root$tmp"
	tmp=""
	{
		echo "package $pkg=$version"
		echo "download_bytes $bytes"
		echo "download_s $download_s"
		echo "unpack_s $unpack_s"
	} >"$info"
fi

# Built in the chroot, the output directory bound at its own path.  The
# Makefile there says obj-$(CONFIG_DM_PCACHE); the headers' .config does
# not set it, so it is set on the command line.
say "dm-pcache: building against $hdr with sid's $(in_sid_root gcc -dumpfullversion)"
t0=$SECONDS
sid_mount proc /proc
sid_mount "$out" "$out"
dir="$src/drivers/md/dm-pcache"
in_sid_root make -C "$hdr" M="$dir" CONFIG_DM_PCACHE=m modules >"$out/build.log" 2>&1 || {
	tail -n 30 "$out/build.log" >&2
	die "dm-pcache does not build (full log: $out/build.log)"
}
build_s=$((SECONDS - t0))
cleanup
[ -f "$dir/dm-pcache.ko" ] || die "the build left no $dir/dm-pcache.ko"
vermagic=$(modinfo -F vermagic "$dir/dm-pcache.ko")
[ "${vermagic%% *}" = "$rel" ] || die "dm-pcache.ko is for ${vermagic%% *}, not $rel"
cp "$dir/dm-pcache.ko" "$ko.tmp"
mv "$ko.tmp" "$ko"
sed -i '/^build_s /d' "$info" 2>/dev/null || true
echo "build_s $build_s" >>"$info"
say "dm-pcache: $ko built in ${build_s} s ($((SECONDS - start)) s in all; $(paste -sd ' ' "$info"))"
