#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# No acknowledged write is lost or returned stale across power cuts.  A
# writer does random 4 KiB writes through /dev/pcache0 and reports each
# completed one on the console; QEMU is killed at a random moment; after the
# next boot, registering the cache device replays its log and every block
# must hold its latest acknowledged write (or a later one in flight), never
# older data and never data not written there.  The cache quota is small, so
# writes wait for reclaim and cuts fall while writeback and reclaim run.
# Finally, detach writes everything back, and the backing device alone
# passes the same check.  PCACHE_TEST_CUTS sets the number of cuts (3).
#
# pcvm: disks=1 timeout=900 kernels=6.1
. "$(dirname "$0")/lib.sh"

CUTS=${PCACHE_TEST_CUTS:-3}
BLOCKS=8192			# 32 MiB of 4 KiB blocks
QUOTA=16M			# 4 segments: the cache fills and empties
CACHE=/sys/bus/pcache/devices/cache0
HERE=$(dirname "$0")
run_id=${PCACHE_RUN_ID:?}

acked_writes() {
	python3 "$HERE/acked_writes.py" "$@" --run "$run_id" --blocks "$BLOCKS"
}

setup() {
	make_fsdax_namespace
	load_pcache
	echo path=/dev/pmem0,format >/sys/bus/pcache/register
	echo "path=$(backing_path),size=$QUOTA" >"$CACHE/attach"
	[ "$(cat "$CACHE/backing0/disk")" = pcache0 ] || fail "no pcache0"
	[ "$(cat /sys/block/pcache0/queue/write_cache)" = "write through" ] ||
		fail "pcache0 advertises a volatile write cache"
}

register_again() {
	load_pcache
	echo path=/dev/pmem0 >/sys/bus/pcache/register
	[ "$(cat "$CACHE/backing0/state")" = attached ] || fail "backing0 not attached again"
	dmesg | grep 'pcache:.*replayed' || true
}

verify_cache() {
	acked_writes verify /dev/pcache0 --log "$PCACHE_CONSOLE_LOG"
}

verify_backing_alone() {
	echo backing=0 >"$CACHE/detach"
	echo cache=0 >/sys/bus/pcache/unregister
	acked_writes verify "$(backing_path)" --log "$PCACHE_CONSOLE_LOG"
}

# Write until the power goes, at a random moment 4 to 9 s from now.
write_and_cut() {
	acked_writes write /dev/pcache0 --gen-base $((PCACHE_PHASE * 10000000)) &
	sleep $((4 + RANDOM % 6))
	pcvm-powercut "phase $PCACHE_PHASE, writes in flight"
}

if [ "$PCACHE_PHASE" -eq 1 ]; then
	ktap_plan $((CUTS + 2))
	ktap_test "register, attach with a small quota" setup
	write_and_cut
elif [ "$PCACHE_PHASE" -le "$CUTS" ]; then
	KTAP_NUM=$((PCACHE_PHASE - 1))
	register_again >/dev/null
	ktap_test "after power cut $((PCACHE_PHASE - 1)), every acknowledged write reads back" verify_cache
	write_and_cut
else
	KTAP_NUM=$CUTS
	register_again >/dev/null
	ktap_test "after power cut $CUTS, every acknowledged write reads back" verify_cache
	ktap_test "after detach, the backing device alone holds every acknowledged write" \
		verify_backing_alone
	ktap_finish
fi
