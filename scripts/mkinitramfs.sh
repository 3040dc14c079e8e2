#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Build the guest's initramfs for one kernel release: static busybox, the few
# modules needed to mount the host root over virtio-9p with an overlay on top
# (with their dependency closure from modules.dep, decompressed), and
# scripts/guest/init.  Everything else comes from the host root at run time.
#
# usage: mkinitramfs.sh RELEASE OUTPUT
set -euo pipefail
. "$(dirname "$0")/lib.sh"

rel=$1
out=$2
moddir=$(kernel_modules_dir "$rel")
[ -s "$moddir/modules.dep" ] || die "no module tree for $rel: run scripts/setup.sh"

wanted=(virtio_pci virtio_blk 9pnet_virtio 9p overlay)

declare -A seen=()
order=()
# Post-order walk of modules.dep: dependencies before the modules using them.
add_module() {
	local path=$1 dep deps
	[ -n "${seen[$path]:-}" ] && return
	seen[$path]=1
	read -r -a deps < <(sed -n "s|^$path: *||p" "$moddir/modules.dep")
	for dep in "${deps[@]}"; do
		add_module "$dep"
	done
	order+=("$path")
}

for name in "${wanted[@]}"; do
	path=$(grep -E "(^|/)$name\.ko(\.xz|\.zst|\.gz)?:" "$moddir/modules.dep" | cut -d: -f1 || true)
	if [ -z "$path" ]; then
		grep -q -E "(^|/)$name\.ko$" "$moddir/modules.builtin" ||
			die "module $name is neither in modules.dep nor built in for $rel"
		continue
	fi
	add_module "$path"
done

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{bin,dev,proc,sys,host,rw,newroot,modules}
cp /bin/busybox "$root/bin/busybox"
cp "$PCACHE_TOP/scripts/guest/init" "$root/init"
chmod 755 "$root/init"
: >"$root/modules/order"
for path in "${order[@]}"; do
	base=$(basename "$path")
	case "$base" in
	*.xz) xz -dc "$moddir/$path" >"$root/modules/${base%.xz}" ;;
	*.zst) zstd -q -dc "$moddir/$path" >"$root/modules/${base%.zst}" ;;
	*.gz) gzip -dc "$moddir/$path" >"$root/modules/${base%.gz}" ;;
	*) cp "$moddir/$path" "$root/modules/$base" ;;
	esac
	echo "${base%.*}.ko" | sed 's/\.ko\.ko$/.ko/' >>"$root/modules/order"
done

# A name of our own: two lanes of make check may build the same one at once.
(cd "$root" && find . | cpio -o -H newc --quiet) | gzip -1 >"$out.$$.tmp"
mv "$out.$$.tmp" "$out"
