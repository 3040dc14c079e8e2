#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The guest's emulated NVDIMM becomes an fsdax namespace with DAX, as on a
# real machine provisioned with ndctl.  A virtio-pmem device beside it is
# DAX too, but asynchronous: stores reach its persistence only with a flush
# of the device, so pcache refuses it as a cache.
#
# pcvm: vpmem=256M
. "$(dirname "$0")/lib.sh"

test_raw_namespace() {
	ndctl list -N | grep -q '"mode":"raw"' || fail "expected a label-less raw namespace at boot"
}

test_fsdax() {
	make_fsdax_namespace
	ndctl list -N | grep -q '"mode":"fsdax"' || fail "namespace is not in fsdax mode"
}

test_dax_enabled() {
	[ "$(cat /sys/block/pmem0/queue/dax)" = 1 ] || fail "/dev/pmem0 does not support DAX"
	local size
	size=$(blockdev --getsize64 /dev/pmem0)
	echo "pmem0: $size bytes"
	[ "$size" -gt $((512 << 20)) ] || fail "pmem0 is too small: $size"
}

test_dax_mount() {
	local attrs
	mkfs.ext4 -q -F /dev/pmem0
	mkdir -p /mnt/pmem
	mount -o dax=always /dev/pmem0 /mnt/pmem
	echo hello >/mnt/pmem/file
	# STATX_ATTR_DAX (0x200000) marks a file whose I/O goes through DAX.
	attrs=$(xfs_io -c 'statx -r' /mnt/pmem/file | sed -n 's/^stat.attributes = //p')
	echo "statx attributes of a file: $attrs"
	umount /mnt/pmem
	(((attrs & 0x200000) != 0)) || fail "files on pmem0 are not DAX"
}

test_virtio_pmem_refused() {
	local ns round
	if ! modprobe -C /dev/null virtio_pmem 2>/dev/null &&
		[ ! -d /sys/bus/virtio/drivers/virtio_pmem ]; then
		echo "this kernel has no virtio_pmem driver: no asynchronous DAX device can exist"
		return
	fi
	wait_for 30 "the virtio-pmem namespace" test -e /sys/bus/nd/devices/namespace1.0
	# Rounds after the first begin by tearing down the ADR namespace's
	# dax_device: on 6.1 the virtio one may then be given its slab object,
	# DAXDEV_SYNC and all (see pcache_disk_on_virtio()).
	for round in 1 2 3; do
		if [ "$round" -gt 1 ]; then
			ns=$(ndctl create-namespace -f -e namespace0.0 -m fsdax 2>&1) ||
				fail "ndctl create-namespace -e namespace0.0 failed: $ns"
			sleep 1
		fi
		ns=$(ndctl create-namespace -f -e namespace1.0 -m fsdax 2>&1) ||
			fail "ndctl create-namespace -m fsdax on virtio-pmem failed: $ns"
		[ -b /dev/pmem1 ] || fail "/dev/pmem1 did not appear"
		[ "$(cat /sys/block/pmem1/queue/dax)" = 1 ] ||
			fail "/dev/pmem1 does not support DAX"
		# Loaded only now, as a boot would: on 6.1 the first round
		# registered /dev/pmem1 about one time in four before 6.1's
		# stale flag was worked around.
		[ "$round" -gt 1 ] || load_pcache
		echo "round $round:"
		ctl_refused EOPNOTSUPP /sys/bus/pcache/register "path=/dev/pmem1,format"
		kmsg_since | grep -q 'pmem1: its DAX is asynchronous' ||
			fail "no log line says why /dev/pmem1 was refused"
	done
	rmmod pcache
}

ktap_plan 5
ktap_test "boot shows the raw namespace" test_raw_namespace
ktap_test "ndctl creates an fsdax namespace" test_fsdax
ktap_test "/dev/pmem0 supports DAX" test_dax_enabled
ktap_test "ext4 mounts with dax=always" test_dax_mount
ktap_test "a virtio-pmem device (asynchronous DAX) is refused as a cache" test_virtio_pmem_refused
ktap_finish
