#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Workloads we did not write, on filesystems on a pcache disk: stress-ng's
# file and I/O stressors (with their own verification), dbench, fs_mark
# (fsync before close) and sysbench fileio (with validation), each on ext4
# and on XFS on /dev/pcache0, each followed by a read-only fsck.  The quota
# is small, so writeback and reclaim run under every workload.  At the end
# the backing device is detached: the filesystem on it alone checks clean.
# PCACHE_TEST_WORKLOAD_SECONDS sets how long each workload runs (20).
#
# pcvm: disks=1 timeout=1500 kernels=6.1
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/fslib.sh"

SECONDS_EACH=${PCACHE_TEST_WORKLOAD_SECONDS:-20}
QUOTA=32M
CACHE=/sys/bus/pcache/devices/cache0
MNT=/mnt/pcache-workloads

setup() {
	make_fsdax_namespace
	load_pcache
	echo path=/dev/pmem0,format >/sys/bus/pcache/register
	attach_backing "$(backing_path)" "size=$QUOTA"
	mkdir -p "$MNT"
}

# One workload on a fresh filesystem of TYPE, then the check.
workload_on() {
	local type=$1 name=$2
	use_backing "$(backing_path)"
	fs_make "$type" "/dev/$DISK"
	mount -t "$type" "/dev/$DISK" "$MNT" || fail "mount failed"
	if ! fs_workload "$name" "$MNT/work" "$SECONDS_EACH" >"/tmp/workload-$name.out" 2>&1; then
		tail -n 30 "/tmp/workload-$name.out"
		umount "$MNT"
		fail "$name on $type failed"
	fi
	grep -iE 'successful run|Throughput|Files/sec|read, MiB|written, MiB|passed|fail' \
		"/tmp/workload-$name.out" | tail -n 6 || true
	umount "$MNT" || fail "umount failed"
	fs_check "$type" "/dev/$DISK"
	echo "written back so far: $(cat "$B/written_back_bytes") bytes; waits for space: $(cat "$B/waits_for_space")"
}

# The last filesystem, after detach: the backing device alone.
detached_check() {
	local type=$1
	echo "backing=0" >"$CACHE/detach"
	echo cache=0 >/sys/bus/pcache/unregister
	fs_check "$type" "$(backing_path)"
	rmmod pcache
}

ktap_plan $((2 * 4 + 2))
ktap_test "register, attach with a $QUOTA quota" setup
for type in $FS_TYPES; do
	for name in $FS_WORKLOADS; do
		ktap_test "$name on $type on /dev/pcache0, fsck clean" workload_on "$type" "$name"
	done
done
last_type=${FS_TYPES##* }
ktap_test "detach: the $last_type left on the backing device alone checks clean; rmmod" \
	detached_check "$last_type"
ktap_finish
