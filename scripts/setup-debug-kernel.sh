#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The debug kernel lane: build Debian's linux-source-6.1 with KASAN, lockdep
# (PROVE_LOCKING), DEBUG_ATOMIC_SLEEP, kmemleak, failslab and
# fail_make_request, on x86_64_defconfig plus what the test guests need
# (virtio, 9p, overlay, NVDIMM/DAX, device-mapper, bcache, null_blk, brd,
# scsi_debug, the hung-task detector: faults.sh and backing-consistency.sh
# use them), and lay it out under build/kernels/RELEASE/ like the Debian
# kernels, so that KERNEL=debug / --kernel debug work everywhere: the build
# tree itself is the headers pcache builds against
# (build/kernels/RELEASE/build).
#
# Cached: a second run with the same source package and config is quiet.
# About 30-40 minutes on 2 cores.
#
# usage: setup-debug-kernel.sh [-j N]
set -euo pipefail
. "$(dirname "$0")/lib.sh"

jobs=$(($(nproc) + 1))
while [ $# -gt 0 ]; do
	case "$1" in
	-j) jobs=$2; shift ;;
	*) die "unknown option $1" ;;
	esac
	shift
done

# What the guests need built in, and the debugging options.
config=$(cat <<'CONFIG'
CONFIG_LOCALVERSION="-pcache-debug"
# CONFIG_LOCALVERSION_AUTO is not set
# CONFIG_MODULE_SIG is not set
CONFIG_DEBUG_KERNEL=y
CONFIG_DEBUG_FS=y
CONFIG_KASAN=y
CONFIG_KASAN_GENERIC=y
CONFIG_KASAN_INLINE=y
CONFIG_PROVE_LOCKING=y
CONFIG_DEBUG_ATOMIC_SLEEP=y
CONFIG_DEBUG_KMEMLEAK=y
CONFIG_DEBUG_KMEMLEAK_AUTO_SCAN=y
CONFIG_DEBUG_KMEMLEAK_MEM_POOL_SIZE=40000
CONFIG_FAULT_INJECTION=y
CONFIG_FAULT_INJECTION_DEBUG_FS=y
CONFIG_FAILSLAB=y
CONFIG_FAIL_MAKE_REQUEST=y
CONFIG_MAGIC_SYSRQ=y
CONFIG_DETECT_HUNG_TASK=y
CONFIG_DEVTMPFS=y
CONFIG_TMPFS=y
CONFIG_BLK_DEV_INITRD=y
CONFIG_VIRTIO=y
CONFIG_VIRTIO_PCI=y
CONFIG_VIRTIO_BLK=y
CONFIG_NET_9P=y
CONFIG_NET_9P_VIRTIO=y
CONFIG_9P_FS=y
CONFIG_OVERLAY_FS=y
CONFIG_SPARSEMEM_VMEMMAP=y
CONFIG_MEMORY_HOTPLUG=y
CONFIG_MEMORY_HOTREMOVE=y
CONFIG_ZONE_DEVICE=y
CONFIG_TRANSPARENT_HUGEPAGE=y
CONFIG_ACPI_NFIT=y
CONFIG_LIBNVDIMM=y
CONFIG_BLK_DEV_PMEM=y
CONFIG_BTT=y
CONFIG_NVDIMM_PFN=y
CONFIG_NVDIMM_DAX=y
CONFIG_DAX=y
CONFIG_DEV_DAX=y
CONFIG_DEV_DAX_PMEM=y
CONFIG_FS_DAX=y
CONFIG_MD=y
CONFIG_BLK_DEV_DM=y
CONFIG_DM_WRITECACHE=y
CONFIG_DM_LOG_WRITES=y
CONFIG_DM_DELAY=m
CONFIG_DM_FLAKEY=m
CONFIG_BCACHE=y
CONFIG_BLK_DEV_LOOP=y
CONFIG_BLK_DEV_NULL_BLK=m
CONFIG_BLK_DEV_RAM=m
CONFIG_SCSI=y
CONFIG_BLK_DEV_SD=y
CONFIG_SCSI_DEBUG=m
CONFIG_EXT4_FS=y
CONFIG_XFS_FS=y
CONFIG_CRYPTO_CRC32C=y
CONFIG_CRYPTO_CRC32C_INTEL=y
CONFIG
)

tarball=/usr/src/linux-source-6.1.tar.xz
[ -f "$tarball" ] || die "no $tarball: run scripts/setup.sh"
work=$PCACHE_BUILD/kernels/debug-src
memo=$PCACHE_BUILD/kernels/debug.release
stamp=$work/.pcache-stamp
want_stamp="$(md5sum <"$tarball" | cut -c1-12) $(echo "$config" | md5sum | cut -c1-12)"

if [ -s "$memo" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want_stamp" ] &&
	[ -f "$(kernel_image "$(cat "$memo")")" ]; then
	exit 0
fi

for pkg in flex bison libelf-dev libssl-dev bc dwarves; do
	dpkg-query -W -f='${Status}\n' "$pkg" 2>/dev/null | grep -q '^install ok installed$' ||
		as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$pkg" >/dev/null 2>&1
done

if [ ! -f "$work/Makefile" ]; then
	say "debug kernel: unpacking $tarball"
	rm -rf "$work"
	mkdir -p "$work"
	tar -xJf "$tarball" -C "$work" --strip-components=1
fi

printf '%s\n' "$config" >"$work/pcache-debug.config"
say "debug kernel: configuring (x86_64_defconfig + $work/pcache-debug.config)"
make -C "$work" -s x86_64_defconfig >/dev/null
(cd "$work" && scripts/kconfig/merge_config.sh -m .config pcache-debug.config >/dev/null)
make -C "$work" -s olddefconfig >/dev/null
for opt in KASAN PROVE_LOCKING DEBUG_ATOMIC_SLEEP DEBUG_KMEMLEAK FAILSLAB FAIL_MAKE_REQUEST \
	LIBNVDIMM FS_DAX ZONE_DEVICE NET_9P_VIRTIO OVERLAY_FS BLK_DEV_DM BCACHE DETECT_HUNG_TASK; do
	grep -q "^CONFIG_$opt=y" "$work/.config" || die "the debug kernel's config lost CONFIG_$opt"
done
for opt in DM_DELAY DM_FLAKEY BLK_DEV_NULL_BLK BLK_DEV_RAM SCSI_DEBUG; do
	grep -q "^CONFIG_$opt=[ym]" "$work/.config" || die "the debug kernel's config lost CONFIG_$opt"
done

say "debug kernel: building with -j$jobs (30-40 minutes on 2 cores; log: $work/build.log)"
start=$SECONDS
make -C "$work" -j"$jobs" bzImage modules >"$work/build.log" 2>&1 ||
	{ tail -n 30 "$work/build.log" >&2; die "the debug kernel does not build (log: $work/build.log)"; }
rel=$(make -C "$work" -s kernelrelease)
root=$(kernel_root_dir "$rel")
rm -rf "$root"
mkdir -p "$root/boot"
cp "$work/arch/x86/boot/bzImage" "$(kernel_image "$rel")"
make -C "$work" -s INSTALL_MOD_PATH="$root" modules_install >/dev/null
ln -sfn "$work" "$root/build"
echo "$rel" >"$memo"
echo "$want_stamp" >"$stamp"
say "debug kernel: $rel built in $(((SECONDS - start) / 60)) min"
