# SPDX-License-Identifier: GPL-2.0
# The Debian sid chroot of the mainline lane (build/sid-root): mounting into
# it, unmounting everything again, running commands in it.  Sourced after
# lib.sh by scripts/setup-mainline.sh and scripts/build-dm-pcache.sh.
# shellcheck shell=bash

SID_ROOT="$PCACHE_BUILD/sid-root"
sid_mounts=()

# Unmount what sid_mount mounted, last first.
sid_unmount_all() {
	local i
	for ((i = ${#sid_mounts[@]} - 1; i >= 0; i--)); do
		umount "${sid_mounts[i]}" 2>/dev/null || umount -l "${sid_mounts[i]}" ||
			warn "cannot unmount ${sid_mounts[i]}"
	done
	sid_mounts=()
}

# sid_mount SRC|proc DST: bind SRC (or mount proc) at DST inside the chroot.
sid_mount() {
	local dst="$SID_ROOT$2"
	mkdir -p "$dst"
	if [ "$1" = proc ]; then
		as_root mount -t proc proc "$dst"
	else
		as_root mount --bind "$1" "$dst"
	fi
	sid_mounts+=("$dst")
}

in_sid_root() {
	as_root chroot "$SID_ROOT" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
		LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive "$@"
}
