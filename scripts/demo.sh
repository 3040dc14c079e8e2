#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The pcache demo: boots a guest with an emulated NVDIMM and two backing
# disks and walks through what an administrator does, printing every command
# before running it, so the output doubles as a tutorial.  It shows the
# cache at work (write latency of a pcache disk next to its backing disk
# alone) and pulls the plug on the guest in the middle of it: after the
# reboot, pcache replays its log and every acknowledged write is there.
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

# In the guest, as root; scripts/vm.sh exported PCACHE_KO and PCACHE_PHASE.
: "${PCACHE_KO:?}" "${PCACHE_PHASE:?}"
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
# 32 MiB that phase 2 can generate again to compare with.
RAW_BYTES=$((32 << 20))
raw_data() {
	python3 -c 'import random, sys
sys.stdout.buffer.write(random.Random("pcache-demo").randbytes(int(sys.argv[1])))' "$RAW_BYTES"
}
# 4 KiB random writes, O_DIRECT, one at a time (libaio at queue depth 1):
# IOPS, mean and p99 latency from submission to completion.
# write_latency FILE LABEL FIO-OPTION...
write_latency() {
	local file=$1 label=$2
	shift 2
	fio --name=lat --filename="$file" --direct=1 --ioengine=libaio --iodepth=1 \
		--rw=randwrite --bs=4k --size=64M --offset=512M --lat_percentiles=1 \
		"$@" --output-format=json |
		python3 -c 'import json, sys
w = json.load(sys.stdin)["jobs"][0]["write"]
p = w["lat_ns"]["percentile"]
print("  %-28s %8.0f IOPS   mean %8.1f us   p99 %8.1f us" % (sys.argv[1],
      w["iops"], w["lat_ns"]["mean"] / 1000, p["99.000000"] / 1000))' "$label"
}
cache=/sys/bus/pcache/devices/cache0
mapfile -t disks < <(printf '%s\n' /dev/disk/by-id/virtio-* | sort)

if [ "$PCACHE_PHASE" -eq 1 ]; then
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
for f in path uuid size segment_size segments_total state; do
	printf '  %-16s %s\n' "$f" "$(cat "$cache/$f")"
done

section "5. Before caching it: how fast does the second disk take 4 KiB random writes?"
write_latency "${disks[1]}" "backing disk alone" --runtime=5 --time_based

section "6. Attach two backing disks by their persistent names, with 128 and 512 MiB of cache"
ctl "path=${disks[0]},size=128M" "$cache/attach"
ctl "path=${disks[1]},size=512M,mode=writeback" "$cache/attach"
show ls "$cache"
for b in "$cache"/backing*; do
	printf '  %s:' "$(basename "$b")"
	for f in disk path size cache_size mode state; do
		printf ' %s=%s' "$f" "$(cat "$b/$f")"
	done
	echo
done
show lsblk -o NAME,SIZE,TYPE /dev/pcache0 /dev/pcache1
echo "  A write is durable in pmem when it completes: no volatile cache to flush."
show cat /sys/block/pcache1/queue/write_cache

section "7. The same writes through the cache: /dev/pcache1 in front of that disk"
write_latency /dev/pcache1 "/dev/pcache1 (cached)" --number_ios=20000

section "8. A filesystem on /dev/pcache0: write files, read them back"
show mkfs.ext4 -q /dev/pcache0
show mkdir -p /mnt/demo
show mount /dev/pcache0 /mnt/demo
echo '# seq 1 100000 > /mnt/demo/numbers'
seq 1 100000 >/mnt/demo/numbers
show cp -r /usr/share/doc/fio /mnt/demo/
show sha256sum /mnt/demo/numbers
show ls /mnt/demo

section "9. A mounted disk cannot be detached"
ctl "backing=0" "$cache/detach" || true
dmesg | grep 'pcache:' | tail -n 1 | sed 's/^/  /'
show umount /mnt/demo

section "10. Write 32 MiB to /dev/pcache1 with O_DIRECT, then cut the power"
echo "# raw_data | dd of=/dev/pcache1 bs=1M oflag=direct"
raw_data | dd of=/dev/pcache1 bs=1M iflag=fullblock oflag=direct status=none
echo "  sha256 of what was written: $(raw_data | sha256sum | cut -d' ' -f1)"
echo "  Every write above has completed; nothing was flushed, synced or detached."
echo "  Pulling the plug: QEMU is killed now and the guest boots again."
pcvm-powercut "demo: power cut after the acknowledged writes"
fi

section "11. After the power cut: register the pmem again (no format)"
show ndctl list --namespaces
show insmod "$PCACHE_KO"
ctl "path=/dev/pmem0" "/sys/bus/pcache/register"
echo "  The backing disks come back by their persistent names; the log is replayed:"
dmesg | grep 'pcache:.*replayed' | sed 's/^/  /'
for b in "$cache"/backing*; do
	printf '  %s: disk=%s state=%s\n' "$(basename "$b")" "$(cat "$b/disk")" "$(cat "$b/state")"
done

section "12. Every acknowledged write is there"
echo "  expected sha256: $(raw_data | sha256sum | cut -d' ' -f1)"
echo "  /dev/pcache1:    $(head -c "$RAW_BYTES" /dev/pcache1 | sha256sum | cut -d' ' -f1)"
mkdir -p /mnt/demo
show mount /dev/pcache0 /mnt/demo
show sha256sum /mnt/demo/numbers
show umount /mnt/demo

section "13. Detach both (the cache is written back), unregister, unload"
ctl "backing=0" "$cache/detach"
ctl "backing=1" "$cache/detach"
ctl "cache=0" "/sys/bus/pcache/unregister"
show rmmod pcache

section "14. The backing disks alone hold the filesystem and the 32 MiB"
show mount -o ro "${disks[0]}" /mnt/demo
show sha256sum /mnt/demo/numbers
show umount /mnt/demo
echo "  ${disks[1]##*/}: $(head -c "$RAW_BYTES" "${disks[1]}" | sha256sum | cut -d' ' -f1)"

section "What pcache logged since the power cut"
dmesg | grep 'pcache:' | sed 's/^/  /'
