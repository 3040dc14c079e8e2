#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Faulty backing devices.  The backing device is a dm device over the
# first disk whose table is swapped under pcache:
# - flakey: writes fail for 1 s in every 3 while fio writes 5x the cache
#   share, verified as it goes: writes never fail, writeback errors are
#   counted and retried, and once the device heals everything is there;
# - short good windows: flakey over 300 ms per I/O, so that a round of all
#   the dirty data takes longer than the 2 s the device works between its
#   failures: rounds shrink until they fit, and the data goes down while
#   the device keeps failing;
# - error (dead): reads of cached data are served, read misses fail with
#   EIO at once; with the share full of dirty data, writes fail with EIO
#   after failing_backing_timeout_ms instead of hanging, the writes
#   acknowledged before stay cached, and once the device heals they are
#   written back;
# - delay (200 ms per I/O): fio at queue depth 32 with verify while
#   detach, unregister and rmmod are tried underneath: each is refused,
#   nothing breaks, the data verifies.
# - resized: shrunk to half, then grown past its recorded size, under
#   dirty data: pcache keeps its recorded size, writeback past the end
#   fails and is retried until the device is large enough again.
# At the end the backing device alone holds every acknowledged write.  A
# null_blk with a volatile write cache and bad blocks: writeback over bad
# blocks fails and is retried (the data stays in the cache and is served)
# until they are cleared, and after its power-off, which drops what it did
# not flush, everything written back is on its store.  Then a scsi_debug
# disk is attached and deleted underneath pcache with writes in flight:
# requests fail (counted), reads return the written data or EIO, no crash,
# no hung task, a forced detach, and the module unloads.  The hung-task detector is set to 20 s
# for the whole program, so a write that waits too long fails the test.
#
# pcvm: disks=2 timeout=1500 kernels=6.12
. "$(dirname "$0")/lib.sh"

BUS=/sys/bus/pcache
CACHE=$BUS/devices/cache0
DM_NAME=pcfault
DEV=/dev/mapper/$DM_NAME
QUOTA_MIB=32
TMPD=$(mktemp -d /tmp/pcache-faults.XXXXXX)
seed=${PCACHE_RUN_ID:?}
LOWER=$(backing_path 0)

dm_table() {
	dmsetup suspend "$DM_NAME"
	dmsetup reload "$DM_NAME" --table "$1"
	dmsetup resume "$DM_NAME"
	echo "backing device now: $(dmsetup table "$DM_NAME" | cut -d' ' -f3-)"
}

sectors() {
	blockdev --getsz "$LOWER"
}

linear_table() { echo "0 $(sectors) linear $LOWER 0"; }
error_table() { echo "0 $(sectors) error"; }
# Up 2 s, then writes fail for 1 s; reads always work.
flakey_table() { echo "0 $(sectors) flakey $LOWER 0 2 1 1 error_writes"; }
slow_table() { echo "0 $(sectors) delay $LOWER 0 200"; }

# fio jobs writing 4 KiB to 64 KiB blocks at random over SIZE at OFFSET,
# each block verified after it is written (a read-write job with no reads
# checks each block's seed, see verify.sh).
fio_job() {
	local offset=$1 size=$2 seed=$3
	echo --name=faults --ioengine=libaio --direct=1 --verify=crc32c \
		--do_verify=1 --verify_fatal=1 --rw=randrw --rwmixread=0 \
		--bsrange=4k-64k --blocksize_unaligned=0 --offset="$offset" \
		--size="$size" --randseed="$seed"
}
FLAKEY_JOB=$(fio_job 0 160M "$seed")
SLOW_JOB=$(fio_job 256M 96M $((seed + 1)))

test_setup() {
	echo 20 >/proc/sys/kernel/hung_task_timeout_secs
	make_fsdax_namespace
	load_pcache
	modprobe -C /dev/null dm_mod
	modprobe -C /dev/null dm_flakey
	modprobe -C /dev/null dm_delay
	dmsetup create "$DM_NAME" --table "$(linear_table)"
	dmsetup mknodes "$DM_NAME"
	echo path=/dev/pmem0,format >"$BUS/register"
	attach_backing "$DEV" "size=${QUOTA_MIB}M"
	[ "$(stat_of failing_backing_timeout_ms)" = 30000 ] ||
		fail "failing_backing_timeout_ms is $(stat_of failing_backing_timeout_ms), not 30000"
	refused_einval "$B/failing_backing_timeout_ms" 3600001
	refused_einval "$B/failing_backing_timeout_ms" abc
	refused_einval "$B/failing_backing_timeout_ms" -1
	echo 100 >"$B/writeback_delay_ms"
}

test_flakey() {
	local errors failed waits
	use_backing "$DEV"
	# Counted since the attach: the dead device's checks failed requests.
	errors=$(stat_of writeback_errors)
	failed=$(stat_of stats/errors)
	waits=$(stat_of waits_for_space)
	dm_table "$(flakey_table)"
	# shellcheck disable=SC2086 # the job is a list of options
	run_fio flakey --filename="/dev/$DISK" --iodepth=16 $FLAKEY_JOB
	echo "writeback errors: $(($(stat_of writeback_errors) - errors))," \
		"waits for space: $(($(stat_of waits_for_space) - waits))," \
		"failed requests: $(($(stat_of stats/errors) - failed))"
	[ "$(stat_of writeback_errors)" -gt "$errors" ] ||
		fail "no writeback round failed while the backing device failed writes"
	[ "$(stat_of stats/errors)" = "$failed" ] ||
		fail "requests failed: $(($(stat_of stats/errors) - failed))"
	dm_table "$(linear_table)"
	wait_for 120 "writeback once the device healed" dirty_is_zero
	# shellcheck disable=SC2086
	run_fio flakey-reverify --filename="/dev/$DISK" --iodepth=16 $FLAKEY_JOB --verify_only
}

SHORT_JOB="--name=short --ioengine=libaio --direct=1 --iodepth=16 --rw=randwrite
	--bs=4k --offset=400M --size=4M --verify=crc32c --randseed=$((seed + 2))"

test_short_windows() {
	local errors dirty
	use_backing "$DEV"
	# A share with free segments: full of clean data, its first write would
	# wait for room, and a write waiting for room has rounds write back
	# all that is dirty (the debug kernel's run of 2026-12-05).
	echo "backing=$(stat_of id)" >"$CACHE/detach"
	attach_backing "$DEV" "size=${QUOTA_MIB}M"
	dmsetup create "$DM_NAME-slow" --table "0 $(sectors) delay $LOWER 0 300"
	# All of it dirty when the windows begin: no round before.
	echo 3600000 >"$B/writeback_delay_ms"
	echo 100 >"$B/dirty_high_percent"
	# shellcheck disable=SC2086
	run_fio short-windows --filename="/dev/$DISK" $SHORT_JOB --do_verify=0
	dirty=$(stat_of dirty_bytes)
	echo "dirty: $dirty"
	[ "$dirty" -ge $((4 << 20)) ] || fail "only $dirty bytes dirty: a round went before the windows"
	errors=$(stat_of writeback_errors)
	dm_table "0 $(sectors) flakey /dev/mapper/$DM_NAME-slow 0 2 1 1 error_writes"
	echo 50 >"$B/dirty_high_percent"
	echo 100 >"$B/writeback_delay_ms"
	wait_for 240 "writeback while the device fails 1 s in every 3" dirty_is_zero
	echo "rounds failed: $(($(stat_of writeback_errors) - errors))"
	[ "$(stat_of writeback_errors)" -gt "$errors" ] ||
		fail "no round failed: the device's failures did not bite"
	dm_table "$(linear_table)"
	dmsetup remove "$DM_NAME-slow"
	# shellcheck disable=SC2086
	run_fio short-windows-reverify --filename="/dev/$DISK" $SHORT_JOB --verify_only
}

# chunks_write FIRST_MIB COUNT TAG: COUNT writes of 1 MiB, O_DIRECT, from
# FIRST_MIB on, of pattern TAG-i; prints "i OK" or "i ERRNO SECONDS".
chunks_write() {
	python3 - "/dev/$DISK" "$@" <<'EOF'
import errno, mmap, os, random, sys, time
dev, first, count, tag = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
fd = os.open(dev, os.O_WRONLY | os.O_DIRECT)
buf = mmap.mmap(-1, 1 << 20)
for i in range(count):
    buf[:] = random.Random("%s-%d" % (tag, i)).randbytes(1 << 20)
    start = time.monotonic()
    try:
        os.pwrite(fd, buf, (first + i) << 20)
        print(i, "OK", flush=True)
    except OSError as e:
        print(i, errno.errorcode[e.errno], "%.1f" % (time.monotonic() - start), flush=True)
EOF
}

# chunks_check DEV FIRST_MIB TAG I...: those chunks read back as written.
chunks_check() {
	local dev=$1 first=$2 tag=$3 i
	shift 3
	for i in "$@"; do
		cmp <(dd if="$dev" bs=1M skip=$((first + i)) count=1 iflag=direct status=none) \
			<(pattern "$tag-$i" $((1 << 20))) ||
			fail "chunk $i of $tag at $((first + i)) MiB does not read back from $dev"
	done
}

DEAD_MIB=512
DEAD_TAG=dead-$seed

test_dead_reads() {
	local errors got
	use_backing "$DEV"
	# Data cached and not written back, then the device dies.  No round
	# may take it first: this runs while the share has free segments (a
	# write waiting for room has rounds write back everything, and
	# reclaim then frees clean segments down to an empty share of 8), and
	# the 4 MiB may spread over half the share's segments, which starts a
	# round at the default dirty_high_percent.
	echo 3600000 >"$B/writeback_delay_ms"
	echo 100 >"$B/dirty_high_percent"
	chunks_write 900 4 "cached-$seed" >/dev/null
	dm_table "$(error_table)"
	chunks_check "/dev/$DISK" 900 "cached-$seed" 0 1 2 3
	echo 50 >"$B/dirty_high_percent"
	errors=$(stat_of stats/errors)
	got=$(dd if="/dev/$DISK" of=/dev/null bs=4k skip=$((800 << 8)) count=1 iflag=direct 2>&1) &&
		fail "a read miss on a dead backing device succeeded"
	echo "read miss on the dead device: ${got##*: }"
	[ "$(stat_of stats/errors)" -gt "$errors" ] || fail "the failed read was not counted"
}

test_dead_writes() {
	local out acked failed elapsed
	use_backing "$DEV"
	echo 3000 >"$B/failing_backing_timeout_ms"
	echo 100 >"$B/writeback_delay_ms"
	# Twice the share: the first writes fill it, the rest find no room.
	SECONDS=0
	out=$(chunks_write "$DEAD_MIB" $((2 * QUOTA_MIB)) "$DEAD_TAG")
	elapsed=$SECONDS
	acked=$(awk '$2 == "OK"' <<<"$out" | wc -l)
	failed=$(awk '$2 == "EIO"' <<<"$out" | wc -l)
	echo "$acked writes of 1 MiB acknowledged, $failed failed with EIO, in $elapsed s;" \
		"longest wait of a failed write: $(awk '$2 == "EIO" { print $3 }' <<<"$out" | sort -n | tail -n 1) s"
	[ "$acked" -gt 0 ] || fail "no write found room in the cache"
	[ "$failed" -gt 0 ] || fail "no write failed with the share full and the device dead"
	[ $((acked + failed)) = $((2 * QUOTA_MIB)) ] || fail "writes failed otherwise than with EIO: $out"
	[ "$elapsed" -lt 60 ] || fail "the writes took $elapsed s: they waited too long"
	dmesg | grep 'pcache:.*found no room' | tail -n 1 | sed 's/^\[[ 0-9.]*\] //'
	awk '$2 == "OK" { print $1 }' <<<"$out" >"$TMPD/dead-acked"
	# shellcheck disable=SC2046 # a list of chunk numbers
	chunks_check "/dev/$DISK" "$DEAD_MIB" "$DEAD_TAG" $(cat "$TMPD/dead-acked")
	dm_table "$(linear_table)"
	wait_for 120 "writeback once the device healed" dirty_is_zero
	dmesg | grep 'pcache:.*works again' | tail -n 1 | sed 's/^\[[ 0-9.]*\] //'
	dmesg | grep -q 'pcache:.*works again' || fail "no 'writeback works again' in the log"
	out=$(chunks_write $((DEAD_MIB + 2 * QUOTA_MIB)) 4 "$DEAD_TAG-after")
	! grep -v OK <<<"$out" || fail "writes fail after the device healed"
	echo 30000 >"$B/failing_backing_timeout_ms"
}

# refused_busy FILE INPUT: writing INPUT to FILE fails with EBUSY.
refused_busy() {
	local got
	got=$(write_errno "$1" "$2")
	echo "'$2' > ${1##*/}: $got"
	[ "$got" = EBUSY ] || fail "'$2' > ${1##*/} while fio ran on /dev/$DISK: $got, not EBUSY"
}

# The writes /dev/$DISK completed (field 5 of its stat).
disk_writes() {
	awk '{ print $5 }' "/sys/block/$DISK/stat"
}

# disk_writes_above N: /dev/$DISK completed more than N writes.
disk_writes_above() {
	[ "$(disk_writes)" -gt "$1" ]
}

test_slow_teardown() {
	local pid writes
	use_backing "$DEV"
	dm_table "$(slow_table)"
	writes=$(disk_writes)
	# shellcheck disable=SC2086
	run_fio slow --filename="/dev/$DISK" --iodepth=32 $SLOW_JOB &
	pid=$!
	# fio holds the disk open from its first write on, however long it
	# takes to start (seconds on a loaded debug kernel).
	wait_for 60 "fio writing to /dev/$DISK" disk_writes_above "$writes"
	refused_busy "$CACHE/detach" "backing=$(stat_of id)"
	refused_busy "$CACHE/detach" "backing=$(stat_of id),force"
	refused_busy "$BUS/unregister" cache=0
	! rmmod pcache 2>&1 || fail "rmmod pcache succeeded while fio ran on /dev/$DISK"
	[ "$(stat_of state)" = attached ] || fail "the backing is $(stat_of state)"
	wait "$pid" || fail "fio on the slow device failed"
	echo "waits for space: $(stat_of waits_for_space)"
	dm_table "$(linear_table)"
}

# The backing device resized underneath (an LV shrunk or grown): pcache
# keeps the size it recorded for its disk, its index and its records.
# Writeback past the end of a shrunk device fails and is retried, the data
# stays dirty and served; once the device is that size again, or larger,
# it is all written back.
test_resized() {
	local size first errors
	use_backing "$DEV"
	wait_for 120 "writeback of the earlier tests" dirty_is_zero
	size=$(sectors)
	first=$((size * 3 / 4 / 2048))
	errors=$(stat_of writeback_errors)
	echo 3600000 >"$B/writeback_delay_ms"
	chunks_write "$first" 4 "resized-$seed" >/dev/null
	dm_table "0 $((size / 2)) linear $LOWER 0"
	echo 100 >"$B/writeback_delay_ms"
	wait_for 60 "a failing writeback round past the shrunk device's end" \
		writeback_errors_rose "$errors"
	[ "$(blockdev --getsz "/dev/$DISK")" = "$size" ] ||
		fail "/dev/$DISK is $(blockdev --getsz "/dev/$DISK") sectors, not the recorded $size"
	[ "$(stat_of dirty_bytes)" -gt 0 ] ||
		fail "the writes past the shrunk device's end are no longer dirty"
	chunks_check "/dev/$DISK" "$first" "resized-$seed" 0 1 2 3
	echo "shrunk to half: $(($(stat_of writeback_errors) - errors)) failed rounds," \
		"$(stat_of dirty_bytes) bytes dirty"
	# Larger than recorded: 1 MiB more at the end.
	dmsetup suspend "$DM_NAME"
	printf '0 %s linear %s 0\n%s 2048 linear %s 0\n' "$size" "$LOWER" "$size" "$LOWER" |
		dmsetup reload "$DM_NAME"
	dmsetup resume "$DM_NAME"
	echo "grown to $(blockdev --getsz "$DEV") sectors, $size recorded"
	wait_for 120 "writeback once the device is large enough again" dirty_is_zero
	[ "$(blockdev --getsz "/dev/$DISK")" = "$size" ] ||
		fail "/dev/$DISK is $(blockdev --getsz "/dev/$DISK") sectors, not the recorded $size"
	chunks_check "$DEV" "$first" "resized-$seed" 0 1 2 3
	dm_table "$(linear_table)"
}

test_backing_alone() {
	use_backing "$DEV"
	echo "backing=$(stat_of id)" >"$CACHE/detach"
	# shellcheck disable=SC2086
	run_fio flakey-backing --filename="$DEV" --iodepth=16 $FLAKEY_JOB --verify_only
	# shellcheck disable=SC2086
	run_fio slow-backing --filename="$DEV" --iodepth=16 $SLOW_JOB --verify_only
	# shellcheck disable=SC2046
	chunks_check "$DEV" "$DEAD_MIB" "$DEAD_TAG" $(cat "$TMPD/dead-acked")
	chunks_check "$DEV" 900 "cached-$seed" 0 1 2 3
	# shellcheck disable=SC2086
	run_fio short-backing --filename="$DEV" $SHORT_JOB --verify_only
	dmsetup remove "$DM_NAME"
}

NULLB=/sys/kernel/config/nullb/pcnull

# The null_blk disk: named after its configfs directory on newer kernels,
# nullbN on older ones.
nullb_disk() {
	local d
	for d in "/sys/block/${NULLB##*/}" /sys/block/nullb*; do
		[ -e "$d" ] && echo "/dev/${d##*/}"
	done | head -n 1
}

# null_blk, memory backed, with a 32 MiB volatile write cache that its
# power-off drops (only what was flushed reaches its store), and bad blocks.
test_null_blk() {
	local nb errors out
	modprobe -C /dev/null null_blk nr_devices=0
	mountpoint -q /sys/kernel/config || mount -t configfs none /sys/kernel/config
	mkdir "$NULLB"
	echo 512 >"$NULLB/size"
	echo 1 >"$NULLB/memory_backed"
	echo 32 >"$NULLB/cache_size"
	echo 1 >"$NULLB/power"
	nb=$(nullb_disk)
	[ -b "$nb" ] || fail "no null_blk disk"
	echo "$nb: $(cat "/sys/block/${nb#/dev/}/queue/write_cache")"
	attach_backing "$(by_id_link "$nb")" size=16M
	echo 100 >"$B/writeback_delay_ms"
	# 4x the share: written back (and flushed) and reclaimed as it goes.
	out=$(chunks_write 0 64 "nullb-$seed")
	! grep -v OK <<<"$out" || fail "writes to the null_blk backing failed"
	wait_for 120 "writeback to null_blk" dirty_is_zero
	# Bad blocks under data not written back yet: rounds fail, the data
	# stays and is served; once the blocks are good again it goes down.
	errors=$(stat_of writeback_errors)
	echo "+$((80 * 2048))-$((80 * 2048 + 255))" >"$NULLB/badblocks"
	out=$(chunks_write 78 4 "bad-$seed")
	! grep -v OK <<<"$out" || fail "writes over bad blocks of the backing failed"
	wait_for 30 "a writeback error on the bad blocks" writeback_errors_rose "$errors"
	chunks_check "/dev/$DISK" 78 "bad-$seed" 0 1 2 3
	echo "with bad blocks: writeback errors $(($(stat_of writeback_errors) - errors)), dirty $(stat_of dirty_bytes)"
	[ "$(stat_of dirty_bytes)" -gt 0 ] || fail "data over bad blocks counted as written back"
	echo "-$((80 * 2048))-$((80 * 2048 + 255))" >"$NULLB/badblocks"
	wait_for 120 "writeback once the bad blocks were cleared" dirty_is_zero
	# Power off: null_blk drops its write cache.  Everything pcache wrote
	# back was flushed, so its store has it all.
	echo 0 >"$NULLB/power"
	echo 1 >"$NULLB/power"
	nb=$(nullb_disk)
	chunks_check "$nb" 0 "nullb-$seed" $(seq 0 63)
	chunks_check "$nb" 78 "bad-$seed" 0 1 2 3
	echo "after the backing's power-off: 68 MiB read back from its store"
	echo "backing=$(stat_of id),force" >"$CACHE/detach"
	rmdir "$NULLB"
	rmmod null_blk
}

scsi_debug_disk() {
	local m
	for m in /sys/block/sd*/device/model; do
		[ -e "$m" ] && grep -q scsi_debug "$m" && [ -b "/dev/$(cut -d/ -f4 <<<"$m")" ] &&
			cut -d/ -f4 <<<"$m" && return 0
	done
	return 1
}

# by_id_link DEV: a /dev/disk/by-id name for DEV, as udev makes for real
# disks (pcache refuses the kernel's names, which may change at a reboot).
by_id_link() {
	mkdir -p /dev/disk/by-id
	ln -sfn "$1" "/dev/disk/by-id/pcache-test-${1##*/}"
	echo "/dev/disk/by-id/pcache-test-${1##*/}"
}

test_removed_underneath() {
	local sd pid writes
	# No udevd in the guest to load the disk driver for the new SCSI device.
	modprobe -C /dev/null sd_mod
	modprobe -C /dev/null scsi_debug dev_size_mb=256
	udevadm settle 2>/dev/null || sleep 2
	wait_for 30 "a scsi_debug disk" scsi_debug_disk
	sd=$(scsi_debug_disk)
	attach_backing "$(by_id_link "/dev/$sd")" size=16M
	echo 3600000 >"$B/writeback_delay_ms"
	# Writes that find no room must fail well before the hung-task report.
	echo 5000 >"$B/failing_backing_timeout_ms"
	pattern "gone-$seed" $((8 << 20)) | dd of="/dev/$DISK" bs=1M oflag=direct status=none
	writes=$(disk_writes)
	fio --name=gone --filename="/dev/$DISK" --ioengine=libaio --direct=1 --iodepth=16 \
		--rw=randrw --bs=4k --offset=16M --size=200M --time_based --runtime=15 \
		>"$TMPD/gone.out" 2>&1 &
	pid=$!
	wait_for 60 "fio writing to /dev/$DISK" disk_writes_above "$writes"
	sleep 1
	echo "deleting /dev/$sd under pcache with fio running"
	echo 1 >"/sys/block/$sd/device/delete"
	wait "$pid" || true
	grep -E 'err=' "$TMPD/gone.out" | sed 's/^ *//' || true
	# fio may have ended before the deletion did (a debug kernel once
	# ran all of its 15 s against the cache): a read of a range nothing
	# cached must fail now.
	! dd if="/dev/$DISK" of=/dev/null bs=4k skip=$((240 << 8)) count=1 \
		iflag=direct status=none 2>/dev/null ||
		fail "a read of a range never cached succeeded with the disk gone"
	echo "stats/errors: $(stat_of stats/errors), dirty: $(stat_of dirty_bytes)," \
		"state: $(stat_of state)"
	[ "$(stat_of stats/errors)" -gt 0 ] || fail "no request failed with the disk gone"
	# Data still in pmem reads back; data written back to the disk and
	# reclaimed since (fio's writes pushed it out) went with the disk:
	# EIO.  Never other bytes.
	if dd if="/dev/$DISK" of="$TMPD/gone.bin" bs=1M count=8 iflag=direct status=none; then
		cmp "$TMPD/gone.bin" <(pattern "gone-$seed" $((8 << 20))) ||
			fail "the first 8 MiB read back other bytes than were written"
		echo "the first 8 MiB, still cached, read back"
	else
		echo "the first 8 MiB, written back to the deleted disk, fail with EIO"
	fi
	echo "backing=$(stat_of id),force" >"$CACHE/detach"
	dmesg | grep 'pcache:.*drop' | tail -n 1 | sed 's/^\[[ 0-9.]*\] //'
	echo cache=0 >"$BUS/unregister"
	rmmod pcache || fail "pcache does not unload"
	rmmod scsi_debug || true
	rm -rf "$TMPD"
}

no_hung_task() {
	! dmesg | grep 'blocked for more than'
}

ktap_plan 11
ktap_test "a dm backing device, failing_backing_timeout_ms and its bad values" test_setup
ktap_test "dead backing: cached data served, read misses fail with EIO" test_dead_reads
ktap_test "dead backing, share full: writes fail with EIO in time, the acknowledged ones survive the heal" test_dead_writes
ktap_test "flakey backing: writes never fail, errors counted, all there once healed" test_flakey
ktap_test "good windows shorter than a round: rounds shrink to fit, data goes down" test_short_windows
ktap_test "slow backing: detach, unregister and rmmod refused under fio at QD32" test_slow_teardown
ktap_test "backing device shrunk, then grown underneath: nothing lost, all written back" test_resized
ktap_test "the backing device alone holds every acknowledged write" test_backing_alone
ktap_test "null_blk backing: bad blocks stall writeback, not data; its power-off loses nothing written back" test_null_blk
ktap_test "a backing disk deleted underneath: errors, no crash, forced detach" test_removed_underneath
ktap_test "nothing hung (hung-task detector at 20 s all along)" no_hung_task
ktap_finish
