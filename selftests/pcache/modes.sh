#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Cache modes, switched at runtime through backingN/mode.  Each mode is
# checked by the backing device's own counters (/sys/block/X/stat) and by
# reading the backing device directly: writethrough writes are on the
# backing device when they complete and the cache keeps a copy;
# writearound writes drop the cached copy; none sends everything down and
# forgets what was cached.  Leaving writeback writes back first, and while
# it cannot (the backing device fails) the switch waits, can be
# interrupted, and changes nothing.  The disk's write cache follows the
# mode.  fio verifies data while a loop switches modes under it.  The mode
# is kept across re-registration.
#
# pcvm: disks=2 timeout=900 kernels=6.1
. "$(dirname "$0")/lib.sh"

SYS=/sys/bus/pcache
CACHE=$SYS/devices/cache0
MIB=$((1 << 20))
DM_NAME=pcmodes
DEV=/dev/mapper/$DM_NAME
LOWER=$(backing_path 1)

sectors_read() {
	awk '{ print $3 }' "/sys/block/$1/stat"
}

sectors_written() {
	awk '{ print $7 }' "/sys/block/$1/stat"
}

# area DEV MIB LEN: LEN MiB at MIB, direct.
area() {
	dd if="$1" bs=64k skip=$(($2 * 16)) count=$(($3 * 16)) iflag=direct status=none
}

# put_area DEV MIB LEN SEED: write pattern SEED there, direct.
put_area() {
	pattern "$4" $(($3 * MIB)) | dd of="$1" bs=64k seek=$(($2 * 16)) oflag=direct status=none
}

# expect_area DEV MIB LEN SEED WHY
expect_area() {
	cmp <(area "$1" "$2" "$3") <(pattern "$4" $(($3 * MIB))) || fail "$1 at $2 MiB: $5"
}

dm_table() {
	dmsetup suspend "$DM_NAME"
	dmsetup reload "$DM_NAME" --table "$1"
	dmsetup resume "$DM_NAME"
}

linear_table() {
	echo "0 $(blockdev --getsz "$LOWER") linear $LOWER 0"
}

error_table() {
	echo "0 $(blockdev --getsz "$LOWER") error"
}

# switch_to MODE: the switch succeeds and says so.
switch_to() {
	local got
	dmesg -C
	got=$(write_errno "$B/mode" "$1")
	[ "$got" = OK ] || fail "switching to $1: $got"
	[ "$(cat "$B/mode")" = "$1" ] || fail "mode reads $(cat "$B/mode") after switching to $1"
	dmesg | grep 'pcache: ' | sed 's/^\[[ 0-9.]*\] //'
}

setup() {
	make_fsdax_namespace
	load_pcache
	modprobe -C /dev/null dm_mod
	echo path=/dev/pmem0,format >"$SYS/register"
	dmsetup create "$DM_NAME" --table "$(linear_table)"
	dmsetup mknodes "$DM_NAME"
	attach_backing "$(backing_path 0)" size=64M
	echo 3600000 >"$B/writeback_delay_ms"
	[ "$(cat "$B/mode")" = writeback ] || fail "the mode is $(cat "$B/mode"), not writeback"
}

refuses_bad_modes() {
	local v
	use_backing "$(backing_path 0)"
	for v in fast writeback2 "write back" none,x; do
		refused_einval "$B/mode" "$v"
	done
	# The same mode again is no switch at all.
	switch_to writeback
}

# /sys/block/X/queue/write_cache of the disk, and of the backing device.
write_cache_follows_mode() {
	local back theirs m
	use_backing "$(backing_path 0)"
	back=$(backing_name 0)
	theirs=$(cat "/sys/block/$back/queue/write_cache")
	echo "backing device: $theirs"
	[ "$(cat "/sys/block/$DISK/queue/write_cache")" = "write through" ] ||
		fail "in writeback, the disk shows a volatile write cache"
	for m in writethrough writearound none; do
		switch_to "$m"
		[ "$(cat "/sys/block/$DISK/queue/write_cache")" = "$theirs" ] ||
			fail "in $m the disk shows '$(cat "/sys/block/$DISK/queue/write_cache")', the backing device '$theirs'"
	done
	switch_to writeback
	[ "$(cat "/sys/block/$DISK/queue/write_cache")" = "write through" ] ||
		fail "back in writeback, the disk shows a volatile write cache"
}

writethrough() {
	local back before_w before_r hits
	use_backing "$(backing_path 0)"
	back=$(backing_name 0)
	switch_to writethrough
	before_w=$(sectors_written "$back")
	put_area "/dev/$DISK" 8 4 "wt-$PCACHE_RUN_ID"
	echo "backing sectors written by 4 MiB of writes: $(($(sectors_written "$back") - before_w))"
	[ $(($(sectors_written "$back") - before_w)) -ge 8192 ] ||
		fail "4 MiB of writes wrote $(($(sectors_written "$back") - before_w)) sectors to the backing device"
	expect_area "$(backing_path 0)" 8 4 "wt-$PCACHE_RUN_ID" "writes completed but are not on the backing device"
	[ "$(cat "$B/dirty_bytes")" = 0 ] || fail "writethrough left $(cat "$B/dirty_bytes") dirty bytes"
	before_r=$(sectors_read "$back")
	hits=$(cat "$B/stats/read_hits")
	expect_area "/dev/$DISK" 8 4 "wt-$PCACHE_RUN_ID" "does not read back the writes"
	echo "reading them back: $(($(sectors_read "$back") - before_r)) sectors from the backing device," \
		"$(($(cat "$B/stats/read_hits") - hits)) hits"
	[ "$(sectors_read "$back")" = "$before_r" ] ||
		fail "reading back writethrough writes read the backing device: the cache kept no copy"
}

writearound() {
	local back before_r hits
	use_backing "$(backing_path 0)"
	back=$(backing_name 0)
	switch_to writearound
	# The range is cached (writethrough's copies); a write drops it.
	put_area "/dev/$DISK" 8 4 "wa-$PCACHE_RUN_ID"
	expect_area "$(backing_path 0)" 8 4 "wa-$PCACHE_RUN_ID" "writes completed but are not on the backing device"
	before_r=$(sectors_read "$back")
	expect_area "/dev/$DISK" 8 4 "wa-$PCACHE_RUN_ID" "the cache served its old copy"
	echo "first read: $(($(sectors_read "$back") - before_r)) sectors from the backing device"
	[ $(($(sectors_read "$back") - before_r)) -ge 8192 ] ||
		fail "the first read after writearound writes did not go to the backing device"
	# Reads are still cached.
	sleep 1
	before_r=$(sectors_read "$back")
	hits=$(cat "$B/stats/read_hits")
	expect_area "/dev/$DISK" 8 4 "wa-$PCACHE_RUN_ID" "the second read"
	echo "second read: $(($(sectors_read "$back") - before_r)) sectors from the backing device," \
		"$(($(cat "$B/stats/read_hits") - hits)) hits"
	[ "$(sectors_read "$back")" = "$before_r" ] || fail "writearound does not cache reads"
	[ "$(cat "$B/dirty_bytes")" = 0 ] || fail "writearound left $(cat "$B/dirty_bytes") dirty bytes"
}

# Leaving writeback writes everything back first.
leave_writeback() {
	use_backing "$(backing_path 0)"
	switch_to writeback
	put_area "/dev/$DISK" 16 8 "wb-$PCACHE_RUN_ID"
	[ "$(cat "$B/dirty_bytes")" -ge $((8 * MIB)) ] ||
		fail "8 MiB of writes left only $(cat "$B/dirty_bytes") dirty bytes"
	switch_to writethrough | tee /tmp/switch.log
	grep -q 'writing back [0-9]* bytes first' /tmp/switch.log || fail "the switch did not say it writes back"
	[ "$(cat "$B/dirty_bytes")" = 0 ] || fail "$(cat "$B/dirty_bytes") bytes still dirty after the switch"
	expect_area "$(backing_path 0)" 16 8 "wb-$PCACHE_RUN_ID" "the switch did not write back"
}

# Mode none forgets the cache: data written in none is what a later mode
# reads, not the copy cached before.
none_forgets() {
	local back before_w
	use_backing "$(backing_path 0)"
	back=$(backing_name 0)
	expect_area "/dev/$DISK" 16 8 "wb-$PCACHE_RUN_ID" "before none"
	switch_to none
	before_w=$(sectors_written "$back")
	put_area "/dev/$DISK" 16 8 "none-$PCACHE_RUN_ID"
	[ $(($(sectors_written "$back") - before_w)) -ge 16384 ] ||
		fail "writes in mode none did not reach the backing device"
	switch_to writearound
	expect_area "/dev/$DISK" 16 8 "none-$PCACHE_RUN_ID" "the cache served data from before mode none"
}

# A backing device that fails: leaving writeback waits, can be
# interrupted, and changes nothing; detach meanwhile is refused.
switch_waits_for_writeback() {
	local got out pid
	attach_backing "$DEV" size=32M
	echo 3600000 >"$B/writeback_delay_ms"
	# Failing first: a round already due (the partition scan's fills
	# started the clock) must not write the data back.
	dm_table "$(error_table)"
	put_area "/dev/$DISK" 0 4 "dm-$PCACHE_RUN_ID"
	[ "$(cat "$B/dirty_bytes")" -ge $((4 * MIB)) ] ||
		fail "only $(cat "$B/dirty_bytes") bytes dirty"
	python3 -c "$WRITE_ERRNO" "$B/mode" writearound >/tmp/switch.out &
	pid=$!
	sleep 3
	[ "$(cat /tmp/switch.out)" = "" ] || fail "the switch ended with the backing device failing: $(cat /tmp/switch.out)"
	dmesg -C
	got=$(write_errno "$CACHE/detach" "backing=$(cat "$B/id")")
	echo "detach during the switch: $got; $(dmesg | grep 'pcache: ' | grep -v 'writeback failed' | sed 's/^\[[ 0-9.]*\] //')"
	[ "$got" = EBUSY ] || fail "detach during a switch: $got, not EBUSY"
	dmesg -C
	kill -USR1 "$pid"
	wait "$pid" || true
	out=$(cat /tmp/switch.out)
	echo "switch interrupted: $out; $(dmesg | grep 'pcache: ' | grep -v 'writeback failed' | sed 's/^\[[ 0-9.]*\] //')"
	[ "$out" = EINTR ] || fail "the interrupted switch returned $out"
	[ "$(cat "$B/mode")" = writeback ] || fail "the interrupted switch left mode $(cat "$B/mode")"
	[ "$(cat "$B/dirty_bytes")" -gt 0 ] || fail "no dirty data left"
	dm_table "$(linear_table)"
	switch_to writearound
	expect_area "$LOWER" 0 4 "dm-$PCACHE_RUN_ID" "the healed switch did not write back"
}

# Leaving writeback, the disk advertises the backing device's write cache
# before the frozen drain: the block layer drops FLUSH and FUA of bios
# submitted meanwhile by the limits in force, and they run in the new mode.
# With the backing device failing, the frozen drain waits until interrupted.
advertise_before_drain() {
	local pid theirs seen=""
	use_backing "$DEV"
	switch_to writeback
	# Failing writes over the disk, unlike an error table, keep its cache.
	modprobe -C /dev/null dm_flakey
	dm_table "0 $(blockdev --getsz "$LOWER") flakey $LOWER 0 0 1 1 error_writes"
	theirs=$(cat "/sys/dev/block/$((0x$(stat -c %t "$DEV"))):$((0x$(stat -c %T "$DEV")))/queue/write_cache")
	[ "$theirs" = "write back" ] || fail "the dm device shows '$theirs': nothing to advertise"
	# Under the first drain's target (a sixteenth of the quota): straight
	# to the frozen one.
	put_area "/dev/$DISK" 8 1 "adv-$PCACHE_RUN_ID"
	kmsg_mark
	python3 -c "$WRITE_ERRNO" "$B/mode" writethrough >/tmp/switch.out &
	pid=$!
	for _ in $(seq 50); do
		if [ "$(cat "/sys/block/$DISK/queue/write_cache")" = "write back" ]; then
			seen=1
			break
		fi
		sleep 0.1
	done
	echo "during the drain: mode $(cat "$B/mode"), write_cache $(cat "/sys/block/$DISK/queue/write_cache")"
	[ "$(cat /tmp/switch.out)" = "" ] || fail "the switch ended with the backing device failing: $(cat /tmp/switch.out)"
	[ -n "$seen" ] || fail "the disk did not advertise a write cache before the drain"
	[ "$(cat "$B/mode")" = writeback ] || fail "the mode changed before the drain ended"
	kill -USR1 "$pid"
	wait "$pid" || true
	[ "$(cat /tmp/switch.out)" = EINTR ] || fail "the interrupted switch returned $(cat /tmp/switch.out)"
	kmsg_since | grep -q 'mode: interrupted; still writeback' ||
		fail "the log does not say the frozen drain was interrupted"
	[ "$(cat "/sys/block/$DISK/queue/write_cache")" = "write through" ] ||
		fail "the interrupted switch left the disk advertising a write cache"
	dm_table "$(linear_table)"
	switch_to writearound
	expect_area "$LOWER" 8 1 "adv-$PCACHE_RUN_ID" "the switch did not write back"
}

# fio verifies 4 jobs' writes while the mode changes every second.
switch_under_io() {
	local job=(--name=modes --rw=randwrite --bsrange=4k-64k --blocksize_unaligned=0
		--offset=0 --size=24M --numjobs=4 --offset_increment=24M
		--verify=crc32c --randseed="$PCACHE_RUN_ID")
	local m switches=0 pid
	use_backing "$(backing_path 0)"
	echo 100 >"$B/writeback_delay_ms"
	fio --filename="/dev/$DISK" --direct=1 --ioengine=libaio --iodepth=8 \
		"${job[@]}" --do_verify=1 --loops=6 >/tmp/modes-fio.out 2>&1 &
	pid=$!
	while kill -0 "$pid" 2>/dev/null; do
		for m in writethrough writeback writearound none writeback; do
			kill -0 "$pid" 2>/dev/null || break
			echo "$m" >"$B/mode"
			switches=$((switches + 1))
			sleep 1
		done
	done
	wait "$pid" || { cat /tmp/modes-fio.out; fail "fio failed while modes switched"; }
	echo "$switches switches while fio ran; mode now $(cat "$B/mode")"
	grep -E 'err=|WRITE:' /tmp/modes-fio.out | sed 's/^ *//'
	! grep -E 'err= *[1-9]|verify:|bad (magic|header)' /tmp/modes-fio.out || fail "fio reports errors"
	[ "$switches" -ge 5 ] || fail "only $switches switches"
	run_fio reverify --filename="/dev/$DISK" --direct=1 --ioengine=libaio --iodepth=8 \
		"${job[@]}" --verify_only
	echo "backing=$(cat "$B/id")" >"$CACHE/detach"
	run_fio backing-verify --filename="$(backing_path 0)" --direct=1 --ioengine=libaio \
		--iodepth=8 "${job[@]}" --verify_only
}

# Overlapping writes in flight together may reach the backing device in
# either order: whatever the cache keeps must be what the backing device
# ended up with.  4 jobs write the same 1 MiB at random (16 in flight
# each) while another reads it, in writethrough and in writearound; then
# the disk (served from the cache where it has the blocks) and the backing
# device read directly must agree.
overlapping_writes_agree() {
	local m hits
	use_backing "$DEV"
	for m in writethrough writearound; do
		echo "$m" >"$B/mode"
		hits=$(cat "$B/stats/read_hits")
		fio --filename="/dev/$DISK" --direct=1 --ioengine=libaio --bs=4k \
			--offset=64M --size=1M --time_based --runtime=10 \
			--name=w --rw=randwrite --iodepth=16 --numjobs=4 \
			--name=r --rw=randread --iodepth=4 >/tmp/overlap.out 2>&1 ||
			{ cat /tmp/overlap.out; fail "fio failed in $m"; }
		sleep 1
		cmp <(area "/dev/$DISK" 64 1) <(area "$LOWER" 64 1) ||
			fail "in $m, the cache and the backing device disagree after overlapping writes"
		echo "$m: agree; read hits during and after: $(($(cat "$B/stats/read_hits") - hits))"
	done
}

# The mode is in the backing table on pmem: set two, then cut the power.
modes_before_cut() {
	attach_backing "$(backing_path 0)" size=32M,mode=writethrough
	use_backing "$DEV"
	switch_to none
}

modes_after_cut() {
	load_pcache
	modprobe -C /dev/null dm_mod
	dmsetup create "$DM_NAME" --table "$(linear_table)"
	dmsetup mknodes "$DM_NAME"
	echo path=/dev/pmem0 >"$SYS/register"
	use_backing "$(backing_path 0)"
	[ "$(cat "$B/mode")" = writethrough ] || fail "backing0 came back as $(cat "$B/mode")"
	use_backing "$DEV"
	[ "$(cat "$B/state")" = attached ] || fail "the dm backing is $(cat "$B/state")"
	[ "$(cat "$B/mode")" = none ] || fail "the dm backing came back as $(cat "$B/mode")"
	expect_area "$DEV" 0 4 "dm-$PCACHE_RUN_ID" "lost its data"
}

teardown() {
	local b
	for b in "$CACHE"/backing*; do
		echo "backing=$(cat "$b/id")" >"$CACHE/detach"
	done
	echo cache=0 >"$SYS/unregister"
	dmsetup remove "$DM_NAME"
	rmmod pcache
}

case "$PCACHE_PHASE" in
1)
	ktap_plan 14
	ktap_test "a cache, a backing device in writeback, a dm-linear one" setup
	ktap_test "mode refuses unknown modes (EINVAL, one log line, unchanged)" refuses_bad_modes
	ktap_test "the disk's write cache follows the mode" write_cache_follows_mode
	ktap_test "writethrough: on the backing device at completion, then read from the cache" writethrough
	ktap_test "writearound: on the backing device, the cached copy dropped, reads cached" writearound
	ktap_test "leaving writeback writes everything back first" leave_writeback
	ktap_test "none forgets the cache: data written in none wins afterwards" none_forgets
	ktap_test "leaving writeback waits for a failing backing, can be interrupted; detach refused" \
		switch_waits_for_writeback
	ktap_test "leaving writeback advertises the backing's write cache before the frozen drain" \
		advertise_before_drain
	ktap_test "fio verify while the mode switches every second, then on the backing alone" \
		switch_under_io
	ktap_test "overlapping writes and reads: the cache and the backing device agree" \
		overlapping_writes_agree
	ktap_test "modes writethrough and none set, then the power is cut" modes_before_cut
	pcvm-powercut "with modes set"
	;;
2)
	KTAP_NUM=12
	ktap_test "after the power cut, each backing device is back in its mode" modes_after_cut
	ktap_test "detach, unregister, remove the dm device, rmmod" teardown
	ktap_finish
	;;
esac
