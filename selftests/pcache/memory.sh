#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Memory pressure.  A guest with 384 MiB of RAM, most of it taken by a
# stress-ng memory hog, runs fio through /dev/pcache0: direct random writes
# of 4 KiB to 64 KiB over 12x the cache share (writeback and reclaim all
# along), verified as they go, beside buffered writes and reads through the
# page cache of another region.  No request may fail (pcache's I/O path
# takes its memory from mempools, GFP_NOIO), no allocation failure may be
# logged, and the kernel must actually have been short of memory (direct
# reclaim counted in /proc/vmstat).  The backing device alone verifies
# after detach.
#
# pcvm: disks=2 mem=384M timeout=900 kernels=6.12
. "$(dirname "$0")/lib.sh"

BUS=/sys/bus/pcache
CACHE=$BUS/devices/cache0
seed=${PCACHE_RUN_ID:?}
DIRECT_JOB=(--name=direct --ioengine=libaio --direct=1 --iodepth=16
	--verify=crc32c --do_verify=1 --verify_fatal=1 --rw=randrw --rwmixread=0
	--bsrange=4k-64k --blocksize_unaligned=0 --offset=0 --size=384M
	--randseed="$seed")
BUFFERED_JOB=(--name=buffered --ioengine=psync --direct=0 --verify=crc32c
	--do_verify=1 --verify_fatal=1 --rw=randwrite --bs=16k --offset=512M
	--size=128M --end_fsync=1 --randseed=$((seed + 1)))

# vmstat NAME: a counter of /proc/vmstat (0 when the kernel has none).
vmstat() {
	awk -v n="$1" '$1 == n { v = $2 } END { print v + 0 }' /proc/vmstat
}

direct_reclaim() {
	echo $(($(vmstat pgscan_direct) + $(vmstat allocstall_normal) + $(vmstat allocstall_movable)))
}

test_setup() {
	make_fsdax_namespace
	load_pcache
	echo path=/dev/pmem0,format >"$BUS/register"
	attach_backing "$(backing_path 0)" size=32M
	echo 100 >"$B/writeback_delay_ms"
	echo "guest memory: $(awk '/MemTotal/ { print $2 }' /proc/meminfo) KiB"
}

test_pressure() {
	local hog reclaim before_errors
	use_backing "$(backing_path 0)"
	reclaim=$(direct_reclaim)
	before_errors=$(cat "$B/stats/errors")
	stress-ng --vm 1 --vm-bytes 70% --vm-keep --vm-method all --timeout 300s \
		--quiet >/tmp/pcache-hog.out 2>&1 &
	hog=$!
	sleep 5
	echo "with the hog: MemAvailable $(awk '/MemAvailable/ { print $2 }' /proc/meminfo) KiB"
	run_fio pressure --filename="/dev/$DISK" "${DIRECT_JOB[@]}" "${BUFFERED_JOB[@]}"
	kill "$hog" 2>/dev/null || true
	wait "$hog" 2>/dev/null || true
	echo "direct reclaim (pgscan_direct + allocstall): $(($(direct_reclaim) - reclaim));" \
		"waits for space: $(cat "$B/waits_for_space"), segments reclaimed: $(cat "$B/segments_reclaimed")"
	[ "$(direct_reclaim)" -gt "$reclaim" ] ||
		fail "the guest never ran short of memory: no direct reclaim"
	[ "$(cat "$B/segments_reclaimed")" -gt 0 ] || fail "pcache reclaimed no segment"
	[ "$(cat "$B/stats/errors")" = "$before_errors" ] ||
		fail "requests failed: stats/errors went from $before_errors to $(cat "$B/stats/errors")"
	if dmesg | grep -E 'page allocation failure|Out of memory|oom-kill'; then
		fail "the kernel ran out of memory or failed an allocation"
	fi
}

test_backing_alone() {
	use_backing "$(backing_path 0)"
	echo "backing=$(cat "$B/id")" >"$CACHE/detach"
	run_fio direct-backing --filename="$(backing_path 0)" "${DIRECT_JOB[@]}" --verify_only
	run_fio buffered-backing --filename="$(backing_path 0)" "${BUFFERED_JOB[@]}" --verify_only
	echo cache=0 >"$BUS/unregister"
	rmmod pcache
}

ktap_plan 3
ktap_test "a cache in a guest with 384 MiB of RAM" test_setup
ktap_test "fio verify, direct and buffered, beside a memory hog: no error, no allocation failure" test_pressure
ktap_test "the backing device alone verifies; the module unloads" test_backing_alone
ktap_finish
