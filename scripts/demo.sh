#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The pcache demo: boots a guest with an emulated NVDIMM and two backing
# disks and walks through what an administrator does, printing every command
# before running it, so the output doubles as a tutorial.
#
# usage: demo.sh [--kernel SERIES]     (on the host; `make demo` calls it)
set -euo pipefail
. "$(dirname "$0")/lib.sh"

if [ "${1:-}" != --in-guest ]; then
	kernel=6.1
	[ "${1:-}" != --kernel ] || kernel=$2
	say "demo: booting a guest (Debian $kernel kernel, 1 GiB emulated pmem, two 1 GiB disks)"
	exec "$PCACHE_TOP/scripts/vm.sh" --kernel "$kernel" --fresh \
		--images "$PCACHE_BUILD/vm/demo" -- "$PCACHE_TOP/scripts/demo.sh" --in-guest
fi

# In the guest, as root; scripts/vm.sh exported PCACHE_KO.
: "${PCACHE_KO:?}"
section() { printf '\n### %s\n' "$*"; }
show() {
	printf '# %s\n' "$*"
	"$@"
}
# A control command: echo VALUE > FILE, shown as typed.
ctl() {
	printf '# echo %s > %s\n' "$1" "$2"
	echo "$1" >"$2"
}

section "1. The machine has a label-less NVDIMM region, seen as a raw namespace"
show ndctl list --regions --namespaces

section "2. Provision it as an fsdax namespace: /dev/pmem0, DAX-capable"
show ndctl create-namespace --force --reconfig=namespace0.0 --mode=fsdax
show cat /sys/block/pmem0/queue/dax
show lsblk -o NAME,SIZE,TYPE /dev/pmem0 /dev/vda /dev/vdb

section "3. Load pcache: its control files appear under /sys/bus/pcache"
show insmod "$PCACHE_KO"
show ls /sys/bus/pcache

section "4. Register the pmem namespace as a cache device (format: it is new)"
ctl "path=/dev/pmem0,format" "/sys/bus/pcache/register"
cache=/sys/bus/pcache/devices/cache0
for f in path uuid size segment_size segments_total state; do
	printf '  %-16s %s\n' "$f" "$(cat "$cache/$f")"
done

section "5. Attach two backing disks, by their persistent names, 128 MiB of cache each"
mapfile -t disks < <(printf '%s\n' /dev/disk/by-id/virtio-* | sort)
ctl "path=${disks[0]},size=128M" "$cache/attach"
ctl "path=${disks[1]},size=128M,mode=writeback" "$cache/attach"
show ls "$cache"
for b in "$cache"/backing*; do
	printf '  %s:' "$(basename "$b")"
	for f in disk path size cache_size mode state; do
		printf ' %s=%s' "$f" "$(cat "$b/$f")"
	done
	echo
done
show lsblk -o NAME,SIZE,TYPE /dev/pcache0 /dev/pcache1

section "6. A filesystem on /dev/pcache0: write files, read them back"
show mkfs.ext4 -q /dev/pcache0
show mkdir -p /mnt/demo
show mount /dev/pcache0 /mnt/demo
echo '# seq 1 100000 > /mnt/demo/numbers'
seq 1 100000 >/mnt/demo/numbers
show cp -r /usr/share/doc/fio /mnt/demo/
show sha256sum /mnt/demo/numbers
show ls /mnt/demo

section "7. A mounted disk cannot be detached"
ctl "backing=0" "$cache/detach" || true
dmesg | grep 'pcache:' | tail -n 1 | sed 's/^/  /'

section "8. Unmount, detach both, unregister, unload"
show umount /mnt/demo
ctl "backing=0" "$cache/detach"
ctl "backing=1" "$cache/detach"
ctl "cache=0" "/sys/bus/pcache/unregister"
show rmmod pcache

section "9. The backing disk alone holds the filesystem"
show mount -o ro "${disks[0]}" /mnt/demo
show sha256sum /mnt/demo/numbers
show umount /mnt/demo

section "What pcache logged"
dmesg | grep 'pcache:' | sed 's/^/  /'
