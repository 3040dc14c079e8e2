#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Writeback, reclaim and draining.  The backing device is a device-mapper
# linear device over the first disk, so that its table can be swapped for
# one that delays or fails every I/O, and back.  With a 64 MiB share of the
# cache: fio writes and verifies four times that through /dev/pcache0 while
# the backing device is slow (writes wait for reclaim, never fail), then
# eight times that at full speed; dirty
# data then goes to the backing device on its own, without a detach, and
# stays cached: reading it again does not touch the backing device; while
# the backing device fails, writeback errors are counted, the data stays
# dirty and reads still come from the cache, a detach waits and can be
# interrupted; once it heals, everything is written back and the backing
# device alone verifies.  A detach with 'force' drops dirty data and says
# how much.  While the backing device fails, writes still take the room of
# data written back before (reclaim runs after a failed round too) rather
# than fail.  The tunables refuse bad values.  A write whose key reaches the
# index only after a newer write of its block was written back and its
# segment reclaimed does not show in the hole that left.
#
# pcvm: disks=1 disk-size=2G timeout=1800 kernels=6.12
. "$(dirname "$0")/lib.sh"

BUS=/sys/bus/pcache
CACHE=$BUS/devices/cache0
B=$CACHE/backing0
QUOTA_MIB=64
DM_NAME=pcwb
DEV=/dev/mapper/$DM_NAME
LOWER=/dev/vda
# Regions (MiB): fio writes 4x the quota from 0, then 8x (512 MiB); a
# region written while the backing device fails; one for the drain and
# forced detach.
BIG_MIB=512
FAIL_MIB=1100
FAIL_LEN_MIB=8
CLEAN_MIB=1150
CLEAN_LEN_MIB=8
ROOM_MIB=1500
ROOM_LEN_MIB=40
FORCE_MIB=1200
LATE_MIB=1300
PUSH_MIB=1400
PUSH_LEN_MIB=96
INDEX_DELAY=/sys/module/pcache/parameters/write_index_delay_ms
seed=${PCACHE_RUN_ID:?}
TMPD=$(mktemp -d /tmp/pcache-wb.XXXXXX)

show_stats() {
	local f
	for f in dirty_bytes clean_bytes written_back_bytes writeback_errors \
		segments_reclaimed waits_for_space segments_used; do
		echo "$f: $(stat_of "$f")"
	done
}

# Sectors read from the backing device so far (its block layer statistics).
backing_reads() {
	awk '{ print $3 }' "/sys/dev/block/$(printf '%d:%d' "0x$(stat -L -c %t "$DEV")" \
		"0x$(stat -L -c %T "$DEV")")/stat"
}

errors_counted() {
	[ "$(stat_of writeback_errors)" -gt 0 ]
}

dm_table() {
	local table=$1
	dmsetup suspend "$DM_NAME"
	dmsetup reload "$DM_NAME" --table "$table"
	dmsetup resume "$DM_NAME"
}

linear_table() {
	echo "0 $(blockdev --getsz "$LOWER") linear $LOWER 0"
}

error_table() {
	echo "0 $(blockdev --getsz "$LOWER") error"
}

# A slow backing device: 100 ms per I/O.
slow_table() {
	echo "0 $(blockdev --getsz "$LOWER") delay $LOWER 0 100"
}

# Random writes of 4 KiB to 64 KiB over 4x the quota, verified as they go
# (read-write job with no reads: fio checks each block's seed, see verify.sh).
FIO_JOB=(--name=wb --ioengine=libaio --direct=1 --iodepth=8 --verify=crc32c
	--do_verify=1 --verify_fatal=1 --rw=randrw --rwmixread=0
	--bsrange=4k-64k --blocksize_unaligned=0 --offset=0
	--size=$((QUOTA_MIB * 4))M --randseed="$seed")
# The same over 512 MiB with another seed: a working set 8x the share,
# every segment of it reused several times over.
BIG_JOB=("${FIO_JOB[@]}" --size="$BIG_MIB"M --randseed=$((seed + 1)))

# region DEV MIB LEN: LEN MiB at MIB, past the page cache.
region() {
	dd if="$1" bs=1M skip="$2" count="$3" iflag=direct status=none
}

# region_sum DEV MIB LEN: sha256 of region DEV MIB LEN.
region_sum() {
	region "$@" | sha256sum
}

test_setup() {
	make_fsdax_namespace
	load_pcache
	modprobe -C /dev/null dm_mod
	modprobe -C /dev/null dm_delay
	dmsetup create "$DM_NAME" --table "$(linear_table)"
	dmsetup mknodes "$DM_NAME"
	[ -b "$DEV" ] || fail "$DEV did not appear"
	echo path=/dev/pmem0,format >"$BUS/register"
	echo "path=$DEV,size=${QUOTA_MIB}M" >"$CACHE/attach"
	[ -b /dev/pcache0 ] || fail "no /dev/pcache0"
	echo "backing0: $(stat_of segments_total) segments"
}

test_defaults() {
	local f
	local clean read
	for f in dirty_bytes written_back_bytes writeback_errors \
		segments_reclaimed waits_for_space; do
		[ "$(stat_of "$f")" = 0 ] || fail "$f is $(stat_of "$f") on a new backing"
	done
	# The partition scan at attach reads the disk's first and last blocks
	# and read caching fills them: the only clean data a new backing has.
	clean=$(stat_of clean_bytes)
	read=$(stat_of stats/read_bytes)
	echo "clean_bytes $clean after the partition scan read $read bytes"
	[ "$clean" -le "$read" ] ||
		fail "clean_bytes is $clean, more than the $read bytes ever read"
	[ "$(stat_of writeback_delay_ms)" = 1000 ] || fail "writeback_delay_ms is not 1000"
	[ "$(stat_of dirty_high_percent)" = 50 ] || fail "dirty_high_percent is not 50"
	[ "$(stat_of dirty_low_percent)" = 25 ] || fail "dirty_low_percent is not 25"
}

# refused FILE VALUE: EINVAL, one "pcache: " line, the value unchanged.
refused() {
	refused_einval "$B/$1" "$2"
}

test_tunables() {
	refused dirty_high_percent 0
	refused dirty_high_percent 101
	refused dirty_high_percent 25
	refused dirty_low_percent 50
	refused dirty_low_percent -1
	refused writeback_delay_ms 3600001
	refused writeback_delay_ms abc
	refused writeback_delay_ms 1x
	echo 80 >"$B/dirty_high_percent"
	echo 60 >"$B/dirty_low_percent"
	echo 200 >"$B/writeback_delay_ms"
	[ "$(stat_of dirty_high_percent)/$(stat_of dirty_low_percent)/$(stat_of writeback_delay_ms)" = 80/60/200 ] ||
		fail "tunables not taken"
	echo 25 >"$B/dirty_low_percent"
	echo 50 >"$B/dirty_high_percent"
	echo 1000 >"$B/writeback_delay_ms"
	[ "$(write_errno "$B/dirty_bytes" 0)" != OK ] || fail "dirty_bytes is writable"
}

waited_for_space() {
	[ "$(stat_of waits_for_space)" -gt 0 ]
}

test_fill() {
	local fio_pid waited=""
	dm_table "$(slow_table)"
	# The backing device is held (suspended) until a write has waited for
	# room: how fast this guest writes next to writeback must not decide
	# whether the test sees writes wait (a debug kernel writes slower
	# than writeback empties the share).
	dmsetup suspend "$DM_NAME"
	run_fio fill "${FIO_JOB[@]}" --do_verify=0 --filename=/dev/pcache0 &
	fio_pid=$!
	wait_for 300 "a write waiting for room" waited_for_space && waited=1
	dmsetup resume "$DM_NAME"
	wait "$fio_pid" || fail "fio fill failed"
	[ -n "$waited" ] || return 1
	# Verified once the backing device is fast again: most of it was
	# reclaimed from the cache and is read from there.
	dm_table "$(linear_table)"
	run_fio fill-verify "${FIO_JOB[@]}" --iodepth=32 --verify_only=1 \
		--filename=/dev/pcache0
	show_stats
	[ "$(stat_of written_back_bytes)" -gt 0 ] || fail "nothing was written back"
	[ "$(stat_of segments_reclaimed)" -gt 0 ] || fail "no segment was reclaimed"
	[ "$(stat_of waits_for_space)" -gt 0 ] || fail "no write waited for space"
	[ "$(stat_of writeback_errors)" = 0 ] || fail "writeback errors"
	[ "$(stat_of segments_used)" -le "$(stat_of segments_total)" ] ||
		fail "more segments used than the quota"
	run_fio big "${BIG_JOB[@]}" --filename=/dev/pcache0
	show_stats
	region_sum /dev/pcache0 0 "$BIG_MIB" >"$TMPD/fill.sum"
}

headers_are_owned() {
	echo 3 >/proc/sys/vm/drop_caches
	local named used
	named=$(seg_headers_naming "$(cat "$B/uuid")")
	used=$(stat_of segments_used)
	echo "segment headers on pmem naming backing0: $named, segments it owns: $used"
	[ "$named" = "$used" ]
}

test_background() {
	local t0=$SECONDS
	wait_for 120 "dirty data written back without a detach" dirty_is_zero || return
	echo "dirty_bytes reached 0 in about $((SECONDS - t0)) s, no detach"
	show_stats
	# Reclaim erases a segment's header before another owner can take it
	# (a round may still be reclaiming: a few tries).
	wait_for 30 "pmem naming backing0 only in the segments it owns (a registration counts every segment named)" \
		headers_are_owned
	cmp <(region_sum "$DEV" 0 "$BIG_MIB") "$TMPD/fill.sum" ||
		fail "$DEV does not hold what /dev/pcache0 returned"
}

test_clean_cached() {
	local reads
	pattern "$seed-clean" $((CLEAN_LEN_MIB << 20)) >"$TMPD/clean.bin"
	dd if="$TMPD/clean.bin" of=/dev/pcache0 bs=1M seek="$CLEAN_MIB" oflag=direct \
		status=none || fail "write failed"
	wait_for 60 "the new data written back" dirty_is_zero || return
	show_stats
	[ "$(stat_of clean_bytes)" -ge $((CLEAN_LEN_MIB << 20)) ] ||
		fail "clean_bytes is $(stat_of clean_bytes) after $CLEAN_LEN_MIB MiB were written back"
	cmp <(region "$DEV" "$CLEAN_MIB" "$CLEAN_LEN_MIB") "$TMPD/clean.bin" ||
		fail "$DEV does not hold the data written back"
	reads=$(backing_reads)
	cmp <(region /dev/pcache0 "$CLEAN_MIB" "$CLEAN_LEN_MIB") "$TMPD/clean.bin" ||
		fail "/dev/pcache0 does not return the data written back"
	echo "backing device sectors read: $reads before reading the data again, $(backing_reads) after"
	[ "$(backing_reads)" = "$reads" ] ||
		fail "reading data already written back went to the backing device"
}

# block_sum DEV MIB: sha256 of the 4 KiB block at MIB, read direct.
block_sum() {
	dd if="$1" bs=4096 skip=$(($2 * 256)) count=1 iflag=direct status=none | sha256sum
}

# An older write held between its append and its index insertion
# (write_index_delay_ms, 60 s: the push below must end within it) while a
# newer write of the same block completes; with writeback running at once,
# both are written back (the backing device gets the newer), and 96 MiB of
# other writes through the 64 MiB share reclaim the newer one's segment,
# dropping its extent.  The older key, landing after that, must not fill
# the hole: the disk returns what the backing device holds.  The older
# write runs on CPU 0, the others on CPU 1: each CPU appends to a segment
# of its own, and the older write's segment cannot be reclaimed while its
# key is on its way, so the newer one must be elsewhere.
test_late_insert() {
	local reclaimed held new start
	# Made before the hold begins: 96 MiB of urandom takes much of 60 s
	# in a debug-kernel guest.
	head -c $((PUSH_LEN_MIB << 20)) /dev/urandom >"$TMPD/push.bin"
	reclaimed=$(stat_of segments_reclaimed)
	echo 0 >"$B/writeback_delay_ms"
	echo 60000 >"$INDEX_DELAY"
	pattern "$seed-old" 4096 | taskset -c 0 \
		dd of=/dev/pcache0 bs=4096 seek=$((LATE_MIB * 256)) oflag=direct status=none &
	held=$!
	wait_for 10 "the older write held before its index insertion" write_in_flight || return
	echo 0 >"$INDEX_DELAY"
	pattern "$seed-new" 4096 | taskset -c 1 \
		dd of=/dev/pcache0 bs=4096 seek=$((LATE_MIB * 256)) oflag=direct status=none ||
		fail "the newer write failed"
	start=$SECONDS
	taskset -c 1 dd if="$TMPD/push.bin" of=/dev/pcache0 bs=1M seek="$PUSH_MIB" \
		oflag=direct status=none ||
		fail "the writes that push the segments out failed"
	rm "$TMPD/push.bin"
	echo "segments reclaimed meanwhile: $(($(stat_of segments_reclaimed) - reclaimed)), in $((SECONDS - start)) s"
	[ "$(stat_of segments_reclaimed)" -gt "$reclaimed" ] || fail "nothing was reclaimed"
	kill -0 "$held" 2>/dev/null ||
		fail "the older write was no longer held when reclaim was done: the race was not run"
	wait "$held" || fail "the older write failed"
	wait_for 60 "everything written back" dirty_is_zero || return
	new=$(pattern "$seed-new" 4096 | sha256sum)
	[ "$(block_sum "$DEV" "$LATE_MIB")" = "$new" ] ||
		fail "the backing device does not hold the newer write"
	[ "$(block_sum /dev/pcache0 "$LATE_MIB")" = "$new" ] ||
		fail "/dev/pcache0 returns the older write, which the backing device no longer holds"
	echo 1000 >"$B/writeback_delay_ms"
}

test_failing_backing() {
	dm_table "$(error_table)"
	pattern "$seed-fail" $((FAIL_LEN_MIB << 20)) >"$TMPD/fail.bin"
	dd if="$TMPD/fail.bin" of=/dev/pcache0 bs=1M seek="$FAIL_MIB" oflag=direct \
		status=none || fail "writes through /dev/pcache0 failed while the backing fails"
	wait_for 30 "writeback errors counted" errors_counted || return
	show_stats
	[ "$(stat_of dirty_bytes)" -ge $((FAIL_LEN_MIB << 20)) ] ||
		fail "dirty_bytes fell while the backing device fails"
	cmp <(region /dev/pcache0 "$FAIL_MIB" "$FAIL_LEN_MIB") "$TMPD/fail.bin" ||
		fail "the cache does not serve the data written while the backing fails"
	dmesg | grep 'pcache:.*writeback failed' | tail -n 1 | sed 's/^\[[ 0-9.]*\] //'
}

# The backing device still fails and the share is full of data written back
# before, up to a few free segments.  With the dirty marks low (10%), every
# round is a full one, and fails: 40 MiB of writes need the room that
# reclaim makes out of the clean segments, which it must do after a failed
# round as after a good one, or the writes fail once
# failing_backing_timeout_ms (5 s here) has passed.
test_failing_room() {
	echo 5000 >"$B/failing_backing_timeout_ms"
	echo 5 >"$B/dirty_low_percent"
	echo 10 >"$B/dirty_high_percent"
	pattern "$seed-room" $((ROOM_LEN_MIB << 20)) >"$TMPD/room.bin"
	dd if="$TMPD/room.bin" of=/dev/pcache0 bs=1M seek="$ROOM_MIB" oflag=direct \
		status=none || fail "writes failed while written-back data could make room"
	show_stats
	cmp <(region /dev/pcache0 "$ROOM_MIB" "$ROOM_LEN_MIB") "$TMPD/room.bin" ||
		fail "the data written while the backing fails does not read back"
	echo 50 >"$B/dirty_high_percent"
	echo 25 >"$B/dirty_low_percent"
	echo 30000 >"$B/failing_backing_timeout_ms"
}

test_detach_interrupted() {
	local got
	got=$(timeout -s INT 3 python3 -c 'import errno, os, signal, sys
def interrupted(signum, frame):
    raise InterruptedError(errno.EINTR, "interrupted")
signal.signal(signal.SIGINT, interrupted)
try:
    fd = os.open(sys.argv[1], os.O_WRONLY)
    os.write(fd, b"backing=0")
    print("OK")
except OSError as e:
    print(errno.errorcode[e.errno])' "$CACHE/detach") || true
	echo "detach while the backing fails, interrupted after 3 s: ${got:-killed}"
	[ "$got" != OK ] || fail "detach succeeded with dirty data on a failing backing"
	[ "$(stat_of state)" = attached ] || fail "backing0 is $(stat_of state) after the interrupted detach"
	[ -b /dev/pcache0 ] || fail "/dev/pcache0 went away"
	dmesg | grep 'pcache:.*interrupted' | tail -n 1 | sed 's/^\[[ 0-9.]*\] //'
	cmp <(region /dev/pcache0 "$FAIL_MIB" "$FAIL_LEN_MIB") "$TMPD/fail.bin" ||
		fail "the data changed after the interrupted detach"
}

test_heal() {
	dm_table "$(linear_table)"
	wait_for 60 "writeback after the backing healed" dirty_is_zero || return
	show_stats
}

# 4 KiB writes, DRAIN_MIB of them: several rounds of writeback.
DRAIN_MIB=40

test_drain_detach() {
	local samples=() pid dirty
	pattern "$seed-drain" $((DRAIN_MIB << 20)) >"$TMPD/drain.bin"
	# Nothing written back until the detach.
	echo 3600000 >"$B/writeback_delay_ms"
	echo 100 >"$B/dirty_high_percent"
	echo 90 >"$B/dirty_low_percent"
	dd if="$TMPD/drain.bin" of=/dev/pcache0 bs=4k seek=$((FORCE_MIB * 256)) oflag=direct \
		status=none || fail "write failed"
	[ "$(stat_of dirty_bytes)" = $((DRAIN_MIB << 20)) ] ||
		fail "$(stat_of dirty_bytes) bytes dirty, not $((DRAIN_MIB << 20))"
	# A slower backing device, so that the drain can be watched.
	dm_table "0 $(blockdev --getsz "$LOWER") delay $LOWER 0 20"
	echo backing=0 >"$CACHE/detach" &
	pid=$!
	while kill -0 "$pid" 2>/dev/null; do
		dirty=$(cat "$B/dirty_bytes" 2>/dev/null) || break
		samples+=("$dirty")
		sleep 0.2
	done
	wait "$pid" || fail "detach failed"
	dm_table "$(linear_table)"
	echo "dirty_bytes during the detach: $(printf '%s\n' "${samples[@]}" | uniq | tr '\n' ' ')"
	[ "$(printf '%s\n' "${samples[@]}" | sort -u | wc -l)" -ge 2 ] ||
		fail "dirty_bytes did not go down during the detach"
	[ ! -e "$B" ] || fail "backing0 is still there"
	dmesg | grep 'pcache:.*writing back' | tail -n 1 | sed 's/^\[[ 0-9.]*\] //'
	cmp <(region_sum "$DEV" 0 "$BIG_MIB") "$TMPD/fill.sum" ||
		fail "$DEV does not hold fio's data"
	cmp <(region "$DEV" "$FAIL_MIB" "$FAIL_LEN_MIB") "$TMPD/fail.bin" ||
		fail "$DEV does not hold the data written while it failed"
	cmp <(region "$DEV" "$FORCE_MIB" "$DRAIN_MIB") \
		"$TMPD/drain.bin" || fail "$DEV does not hold the data written before the detach"
	run_fio verify-only "${BIG_JOB[@]}" --iodepth=32 --verify_only=1 --filename="$DEV"
}

test_force_detach() {
	local line
	echo "path=$DEV,size=${QUOTA_MIB}M" >"$CACHE/attach"
	echo 3600000 >"$B/writeback_delay_ms"
	pattern "$seed-force" $((2 << 20)) | dd of=/dev/pcache0 bs=1M seek="$FORCE_MIB" \
		oflag=direct status=none iflag=fullblock || fail "write failed"
	# Past the default delay: the round queued at attach for the partition
	# scan's fills moved to the new delay, it does not write this back.
	sleep 2
	if [ "$(stat_of dirty_bytes)" != $((2 << 20)) ]; then
		show_stats
		fail "dirty_bytes is $(stat_of dirty_bytes), not 2 MiB"
	fi
	echo backing=0,force >"$CACHE/detach"
	[ ! -e "$B" ] || fail "backing0 is still there"
	line=$(dmesg | grep 'pcache:.*dropped' | tail -n 1 | sed 's/^\[[ 0-9.]*\] //')
	echo "$line"
	[[ "$line" == *"dropped $((2 << 20)) bytes"* ]] || fail "the forced detach did not say what it dropped"
	cmp <(region "$DEV" "$FORCE_MIB" "$DRAIN_MIB") \
		"$TMPD/drain.bin" || fail "the forced detach changed the backing device"
}

test_teardown() {
	echo cache=0 >"$BUS/unregister"
	dmsetup remove "$DM_NAME"
	rmmod pcache
	rm -rf "$TMPD"
}

ktap_plan 14
ktap_test "dm-linear backing over vda, a ${QUOTA_MIB} MiB share of pmem0" test_setup
ktap_test "statistics start at 0, tunables at their defaults" test_defaults
ktap_test "tunables refuse bad values (EINVAL, one log line, unchanged)" test_tunables
ktap_test "fio verify of 4x the share on a slow backing (writes wait, never fail), then 8x" test_fill
ktap_test "dirty data reaches the backing device without a detach" test_background
ktap_test "data written back stays cached: reads do not reach the backing device" test_clean_cached
ktap_test "a write indexed after a newer one was written back and reclaimed does not show" \
	test_late_insert
ktap_test "backing fails: errors counted, data stays dirty, reads hit the cache" test_failing_backing
ktap_test "while the backing fails, writes take the room of data written back before" \
	test_failing_room
ktap_test "detach waits for a failing backing and can be interrupted" test_detach_interrupted
ktap_test "backing heals: everything is written back" test_heal
ktap_test "detach drains (dirty_bytes goes down); the backing device alone holds every write" \
	test_drain_detach
ktap_test "detach with force drops dirty data and says how much" test_force_detach
ktap_test "unregister, remove the dm device, rmmod" test_teardown
ktap_finish
