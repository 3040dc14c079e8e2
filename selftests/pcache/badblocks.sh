#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Known bad blocks of the cache device: the pmem driver's badblocks list (as
# a scrub or a machine check fills it; here written to
# /sys/block/pmem0/badblocks).  DAX refuses to map a range with bad blocks,
# so a cache device with any used to be refused at registration, with all
# its data.  Now: after a power cut with dirty data in the log, bad blocks
# in a free segment and in the data of a dirty record do not stop the
# registration; replay keeps every record; reads of the bad block fail
# with EIO (counted), the rest of the data reads back; writeback refuses to
# write it over the backing device's data until a newer write replaces it;
# segments with bad blocks are never taken again, whether the blocks were
# known at registration or found later, and a quota larger than the good
# segments left makes writes wait for reclaim.  Bad blocks in pcache's own
# metadata refuse the registration with a reason.
#
# pcvm: disks=1 timeout=600
. "$(dirname "$0")/lib.sh"

SYS=/sys/bus/pcache
CACHE=$SYS/devices/cache0
BADBLOCKS=/sys/block/pmem0/badblocks
MIB=$((1 << 20))
STATE=/tmp/pcache-badblocks

# block DEV MIB N: the Nth 4 KiB block from MIB, read direct.
block() {
	dd if="$1" bs=4096 skip=$(($2 * 256 + $3)) count=1 iflag=direct status=none
}

# pattern_block SEED N: the Nth 4 KiB block of a 64 KiB pattern.
pattern_block() {
	pattern "$1" 65536 | dd bs=4096 skip="$2" count=1 status=none
}

put_range() {
	pattern "$1" 65536 | dd of=/dev/pcache0 bs=64k seek=$(($2 * 16)) oflag=direct status=none
}

# sb_field OFFSET FORMAT: a field of the superblock on /dev/pmem0.
sb_field() {
	python3 -c 'import struct, sys
with open("/dev/pmem0", "rb") as f:
    f.seek(4096 + int(sys.argv[1]))
    print(struct.unpack(sys.argv[2], f.read(struct.calcsize(sys.argv[2])))[0])' "$1" "$2"
}

# The geometry register_around_bad found (ktap_test runs each in a subshell).
geometry() {
	# shellcheck source=/dev/null
	. "$STATE/geometry"
}

# seg_header N: the first 4 KiB of segment N (its header).
seg_header() {
	dd if=/dev/pmem0 bs=4096 skip=$(((FIRST + $1 * SEG_SIZE) / 4096)) count=1 \
		iflag=direct status=none | sha256sum
}

# seg_retaken N: segment N has a header, and not the one saved before its
# blocks went bad (reclaim may have erased that one since: no header).
seg_retaken() {
	local magic
	magic=$(dd if=/dev/pmem0 bs=4096 skip=$(((FIRST + $1 * SEG_SIZE) / 4096)) count=1 \
		iflag=direct status=none | od -An -tx8 -j8 -N8 | tr -d ' ')
	[ "$magic" = 0100006765736370 ] && [ "$(seg_header "$1")" != "$(cat "$STATE/header-$1")" ]
}

# mark_bad BYTE: a known bad 4 KiB at BYTE of /dev/pmem0.
mark_bad() {
	echo "$(($1 / 512)) 8" >"$BADBLOCKS"
}

setup() {
	make_fsdax_namespace
	load_pcache
	echo path=/dev/pmem0,format >"$SYS/register"
	attach_backing "$(backing_path 0)" size=32M
	# Held back: a round the partition scan's fills queued runs first.
	echo 3600000 >"$B/writeback_delay_ms"
	sleep 1.5
	put_range "a-$PCACHE_RUN_ID" 1
	put_range "b-$PCACHE_RUN_ID" 2
	[ "$(cat "$B/dirty_bytes")" -ge $((2 * 65536)) ] || fail "the writes are not dirty"
}

register_around_bad() {
	local off seg
	load_pcache
	FIRST=$(sb_field 48 '<Q')
	SEG_SIZE=$(sb_field 56 '<I')
	off=$(record_data_offset 2048)
	DATA_SEG=$(((off - FIRST) / SEG_SIZE))
	# The first segment the log never used: the next one a head would take.
	FREE_SEG=$(python3 -c 'import sys
first, size, count = (int(a) for a in sys.argv[1:4])
with open("/dev/pmem0", "rb") as f:
    for seg in range(count):
        f.seek(first + seg * size)
        if not any(f.read(64)):
            print(seg)
            break' "$FIRST" "$SEG_SIZE" "$(sb_field 60 '<I')")
	echo "record of 1 MiB: byte $off of pmem0, segment $DATA_SEG; first unused segment $FREE_SEG"
	mkdir -p "$STATE"
	printf 'FIRST=%s\nSEG_SIZE=%s\nDATA_SEG=%s\nFREE_SEG=%s\n' \
		"$FIRST" "$SEG_SIZE" "$DATA_SEG" "$FREE_SEG" >"$STATE/geometry"
	for seg in "$DATA_SEG" "$FREE_SEG"; do
		seg_header "$seg" >"$STATE/header-$seg"
	done
	mark_bad $((off + 2 * 4096))
	mark_bad $((FIRST + FREE_SEG * SEG_SIZE + SEG_SIZE / 2))
	echo "known bad: $(tr '\n' ' ' <"$BADBLOCKS")"
	dmesg -C
	echo path=/dev/pmem0 >"$SYS/register" || fail "registration refused"
	dmesg | grep 'pcache: ' | sed 's/^\[[ 0-9.]*\] //'
	use_backing "$(backing_path 0)"
	[ "$(cat "$CACHE/segments_bad")" = 2 ] ||
		fail "segments_bad is $(cat "$CACHE/segments_bad"), not 2"
	for seg in "$DATA_SEG" "$FREE_SEG"; do
		dmesg | grep -q "segment $seg has known bad blocks: not used" ||
			fail "no log line about segment $seg"
	done
	dmesg | grep -q 'pcache:.*replayed .*: 128 KiB cached' || fail "replay did not index both records"
}

reads_around_bad() {
	local errors
	use_backing "$(backing_path 0)"
	errors=$(cat "$B/stats/errors")
	cmp <(block /dev/pcache0 1 0) <(pattern_block "a-$PCACHE_RUN_ID" 0) || fail "block 0 does not read back"
	cmp <(block /dev/pcache0 1 1) <(pattern_block "a-$PCACHE_RUN_ID" 1) || fail "block 1 does not read back"
	if block /dev/pcache0 1 2 >/dev/null 2>&1; then
		fail "a read of the known bad block succeeded"
	fi
	[ "$(cat "$B/stats/errors")" -gt "$errors" ] || fail "stats/errors did not rise"
	cmp <(dd if=/dev/pcache0 bs=64k skip=32 count=1 iflag=direct status=none) \
		<(pattern "b-$PCACHE_RUN_ID" 65536) || fail "the other record does not read back"
}

writeback_refuses_bad() {
	local _
	use_backing "$(backing_path 0)"
	for _ in $(seq 150); do
		[ "$(cat "$B/writeback_errors")" -gt 0 ] && break
		sleep 0.2
	done
	echo "writeback_errors $(cat "$B/writeback_errors"), dirty_bytes $(cat "$B/dirty_bytes")"
	[ "$(cat "$B/writeback_errors")" -gt 0 ] || fail "writeback did not fail"
	[ "$(cat "$B/dirty_bytes")" -ge 65536 ] || fail "the data is no longer dirty"
	cmp -s <(block "$(backing_path 0)" 1 2) <(pattern_block "a-$PCACHE_RUN_ID" 2) &&
		fail "the known bad block was written to the backing device"
	dmesg | grep 'pcache:.*known bad blocks: not written back' | tail -n 1 | sed 's/^\[[ 0-9.]*\] //'
}

overwrite_heals() {
	local _
	use_backing "$(backing_path 0)"
	put_range "c-$PCACHE_RUN_ID" 1
	cmp <(dd if=/dev/pcache0 bs=64k skip=16 count=1 iflag=direct status=none) \
		<(pattern "c-$PCACHE_RUN_ID" 65536) || fail "the new data does not read back"
	for _ in $(seq 100); do
		[ "$(cat "$B/dirty_bytes")" = 0 ] && break
		sleep 0.2
	done
	[ "$(cat "$B/dirty_bytes")" = 0 ] || fail "still $(cat "$B/dirty_bytes") bytes dirty"
	cmp <(dd if="$(backing_path 0)" bs=64k skip=16 count=1 iflag=direct status=none) \
		<(pattern "c-$PCACHE_RUN_ID" 65536) || fail "the backing device does not hold the new data"
	cmp <(dd if="$(backing_path 0)" bs=64k skip=32 count=1 iflag=direct status=none) \
		<(pattern "b-$PCACHE_RUN_ID" 65536) || fail "the backing device does not hold the other record"
}

# 96 MiB through the 32 MiB share: every segment that can be is reused.
bad_never_taken() {
	local reclaimed seg
	geometry
	use_backing "$(backing_path 0)"
	reclaimed=$(cat "$B/segments_reclaimed")
	echo 0 >"$B/writeback_delay_ms"
	head -c $((96 * MIB)) /dev/urandom |
		dd of=/dev/pcache0 bs=1M seek=8 iflag=fullblock oflag=direct status=none ||
		fail "writes failed"
	echo "segments reclaimed: $(($(cat "$B/segments_reclaimed") - reclaimed))"
	[ "$(cat "$B/segments_reclaimed")" -gt "$reclaimed" ] || fail "nothing was reclaimed"
	for seg in "$DATA_SEG" "$FREE_SEG"; do
		seg_retaken "$seg" && fail "segment $seg, with known bad blocks, was taken"
	done
	# Found while registered: after a detach every segment is free, and
	# the lowest one without known bad blocks is the next taken.
	echo "backing=0" >"$CACHE/detach"
	for seg in 0 1 2; do
		[ "$seg" != "$DATA_SEG" ] && [ "$seg" != "$FREE_SEG" ] && break
	done
	seg_header "$seg" >"$STATE/header-$seg"
	mark_bad $((FIRST + seg * SEG_SIZE + SEG_SIZE / 2))
	attach_backing "$(backing_path 0)" size=32M
	put_range "d-$PCACHE_RUN_ID" 4
	seg_retaken "$seg" && fail "segment $seg, with bad blocks found since registration, was taken"
	dmesg | grep -q "segment $seg has known bad blocks: not used" ||
		fail "no log line about segment $seg"
	echo "segments_bad: $(cat "$CACHE/segments_bad")"
	[ "$(cat "$CACHE/segments_bad")" -ge 3 ] || fail "segments_bad did not rise"
	cmp <(dd if=/dev/pcache0 bs=64k skip=64 count=1 iflag=direct status=none) \
		<(pattern "d-$PCACHE_RUN_ID" 65536) || fail "the write after does not read back"
	echo "backing=0" >"$CACHE/detach"
	echo cache=0 >"$SYS/unregister"
}

# Bad blocks in all but a few segments, and a backing device whose quota is
# the whole cache: its quota says room where no good segment is free.  Its
# writes must wait for reclaim of the good ones (they used to spin in
# queue_rq for ever).
quota_over_bad() {
	local count seg good=0
	geometry
	count=$(sb_field 60 '<I')
	for ((seg = 12; seg < count; seg++)); do
		mark_bad $((FIRST + seg * SEG_SIZE + SEG_SIZE / 2))
	done
	echo path=/dev/pmem0 >"$SYS/register" || fail "registration refused"
	echo "segments_bad: $(cat "$CACHE/segments_bad") of $count"
	good=$((count - $(cat "$CACHE/segments_bad")))
	attach_backing "$(backing_path 0)" size=$((count * SEG_SIZE))
	echo 0 >"$B/writeback_delay_ms"
	echo "quota: $(cat "$B/segments_total") segments, $good without known bad blocks"
	head -c $((96 * MIB)) /dev/urandom >/tmp/pcache-over-bad
	dd if=/tmp/pcache-over-bad of=/dev/pcache0 bs=1M seek=8 oflag=direct status=none ||
		fail "writes failed"
	echo "segments reclaimed: $(cat "$B/segments_reclaimed"), waits for space: $(cat "$B/waits_for_space")"
	[ "$(cat "$B/segments_reclaimed")" -gt 0 ] || fail "nothing was reclaimed"
	cmp <(dd if=/dev/pcache0 bs=1M skip=8 count=96 iflag=direct status=none) \
		/tmp/pcache-over-bad || fail "the data does not read back"
	echo "backing=0" >"$CACHE/detach"
	cmp <(dd if="$(backing_path 0)" bs=1M skip=8 count=96 iflag=direct status=none) \
		/tmp/pcache-over-bad || fail "the backing device does not hold the data"
	echo cache=0 >"$SYS/unregister"
}

metadata_bad() {
	local got
	mark_bad 8192
	dmesg -C
	got=$(write_errno "$SYS/register" "path=/dev/pmem0")
	echo "registration with a bad block in the backing table: $got"
	[ "$got" = EIO ] || fail "registration gave $got, not EIO"
	dmesg | grep 'pcache: ' | sed 's/^\[[ 0-9.]*\] //'
	dmesg | grep -q "bad blocks in pcache's metadata" || fail "the log does not say why"
	[ ! -e "$CACHE" ] || fail "cache0 exists"
	rmmod pcache
}

case "$PCACHE_PHASE" in
1)
	ktap_plan 8
	ktap_test "a cache with dirty data in its log" setup
	pcvm-powercut "with dirty data in the log"
	;;
2)
	KTAP_NUM=1
	ktap_test "bad blocks in a free segment and in dirty data: registered, replayed" \
		register_around_bad
	ktap_test "the bad block fails its read (counted); the rest reads back" reads_around_bad
	ktap_test "writeback refuses the bad block; the backing device keeps its data" \
		writeback_refuses_bad
	ktap_test "a newer write of the range reads back and is written back" overwrite_heals
	ktap_test "segments with bad blocks, known before or found after, are never taken" \
		bad_never_taken
	ktap_test "a quota over segments with bad blocks: writes wait for reclaim, never spin" \
		quota_over_bad
	ktap_test "bad blocks in the metadata refuse the registration (EIO, a reason)" metadata_bad
	ktap_finish
	;;
esac
