#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# fio verify through /dev/pcache0 in writeback mode in front of a backing
# device much slower than the cache: a device-mapper dm-delay device that
# delays every read and write of the first disk by 5 ms.  First, 4 KiB
# writes at queue depth 1 through /dev/pcache0 must complete from pmem, with
# writeback held off: none of them reaches the slow device, all are dirty
# in the cache (their latency beside the slow device's is printed, not
# judged: speed is make bench's business).  Then fio writes and verifies
# (crc32c) through /dev/pcache0 with several jobs at once, each on its own
# region: random writes of 512 B to 1 MiB, twice over (the second pass
# overwrites the first with other block boundaries); sequential 1 MiB
# writes; and 512 B / 4 KiB random writes over the region of the first job.
# Writeback copies the log to the slow device while the jobs run (and the
# jobs write more than half the backing's share, so it runs back to back
# for a while).  Finally detach writes the rest back, and
# the slow device alone holds exactly what /dev/pcache0 returned and passes
# fio's verify of the last writes to each region.
#
# pcvm: disks=1 timeout=900 kernels=6.1
. "$(dirname "$0")/lib.sh"

CACHE=/sys/bus/pcache/devices/cache0
QUOTA=512M
DELAY_MS=5
# No udev in the guest: dmsetup makes /dev/mapper/NAME itself.  pcache
# refuses only the kernel's name of a disk (/dev/dm-0 here, as /dev/vda would
# be for the disk itself), because another disk may take that name after a
# reboot; /dev/mapper/NAME is the name the table was created with and stays
# with it, so attach accepts it as the persistent path it records.
DM_NAME=pcslow
SLOW=/dev/mapper/$DM_NAME
LOWER=/dev/vda
# Regions of /dev/pcache0 (MiB): A, four random jobs of 32 MiB, overwritten
# by the 512 B / 4 KiB jobs; B, two sequential jobs of 64 MiB; the latency
# runs write past both.
A_MIB=0
A_JOB_MIB=32
A_JOBS=4
B_MIB=128
B_JOB_MIB=64
B_JOBS=2
LAT_MIB=768
LAT_SIZE_MIB=32
SUMS=/tmp/pcache-verify.sums
LAT_BACKING=/tmp/pcache-verify.backing-lat
seed=${PCACHE_RUN_ID:?}

# Job options of the verified writes (without the file).  The jobs are
# rw=randrw and rw=rw with no reads (rwmixread=0): all writes, but fio 3.33
# compares the seed in each block's verify header with the one it wrote
# there only when the job is declared read-write.  A pure write job would
# pass a block that still holds an earlier pass's data at the same offset
# (each 512 B verify interval carries its own valid header), which is the
# very failure an overwrite test is after.  Overwrites are separate fio runs
# with other seeds: a read-write job with loops=2 fails its own verify of the
# second loop ("bad header rand_seed") on a plain file too.
VERIFY_OPTS=(--ioengine=libaio --direct=1 --iodepth=8 --verify=crc32c
	--do_verify=1 --verify_fatal=1 --rwmixread=0)
RANDOM_JOB=(--name=random --rw=randrw --bsrange=512-1M --blocksize_unaligned=0
	--numjobs="$A_JOBS" --size="$A_JOB_MIB"M --offset="$A_MIB"M
	--offset_increment="$A_JOB_MIB"M)
SEQ_JOB=(--name=seq --rw=rw --bs=1M --numjobs="$B_JOBS" --size="$B_JOB_MIB"M
	--offset="$B_MIB"M --offset_increment="$B_JOB_MIB"M)
SMALL_JOB=(--name=small --rw=randrw --bssplit=512/50:4k/50
	--numjobs="$A_JOBS" --size="$A_JOB_MIB"M --offset="$A_MIB"M
	--offset_increment="$A_JOB_MIB"M --randseed=$((seed + 2)))

# lat_us FILE RW ARGS...: mean latency (submission to completion) in
# microseconds of 4 KiB direct I/O at queue depth 1, for 3 s or 32 MiB
# (8192 writes through the cache, a few percent of its share).
lat_us() {
	local file=$1 rw=$2 json=/tmp/pcache-verify-lat.json
	shift 2
	fio --name=lat --filename="$file" --rw="$rw" --bs=4k --ioengine=psync \
		--direct=1 --runtime=3 --randseed="$seed" \
		--offset="$LAT_MIB"M --size="$LAT_SIZE_MIB"M "$@" \
		--output-format=json --output="$json" >/dev/null 2>&1 || {
		fail "fio $rw on $file failed: $(cat "$json")"
		return
	}
	python3 -c 'import json, sys
j = json.load(open(sys.argv[1]))["jobs"][0][sys.argv[2]]
if j["total_ios"] == 0 or j["io_bytes"] == 0:
    sys.exit("no I/O done")
print(round(j["lat_ns"]["mean"] / 1000))' "$json" "${rw#rand}"
}

# region_sum DEV: sha256 of regions A and B of DEV, past the page cache.
region_sum() {
	dd if="$1" bs=1M skip="$A_MIB" count=$((A_JOBS * A_JOB_MIB)) iflag=direct status=none | sha256sum
	dd if="$1" bs=1M skip="$B_MIB" count=$((B_JOBS * B_JOB_MIB)) iflag=direct status=none | sha256sum
}

test_setup() {
	local sectors
	make_fsdax_namespace
	load_pcache
	modprobe -C /dev/null dm_delay
	sectors=$(blockdev --getsz "$LOWER")
	dmsetup create "$DM_NAME" --table "0 $sectors delay $LOWER 0 $DELAY_MS"
	dmsetup mknodes "$DM_NAME"
	[ -b "$SLOW" ] || fail "$SLOW did not appear"
	dmsetup table "$DM_NAME"
	echo path=/dev/pmem0,format >/sys/bus/pcache/register
	[ -d "$CACHE" ] || fail "no $CACHE"
}

# The slow device alone, before it is attached; the writes go past the
# regions verified later.
test_backing_latency() {
	local r w
	r=$(lat_us "$SLOW" randread)
	w=$(lat_us "$SLOW" randwrite)
	echo "$SLOW: 4 KiB QD1 mean latency: read $r us, write $w us"
	[ "$r" -ge $((DELAY_MS * 1000)) ] || fail "reads of $SLOW take $r us, less than the ${DELAY_MS} ms delay"
	[ "$w" -ge $((DELAY_MS * 1000)) ] || fail "writes to $SLOW take $w us, less than the ${DELAY_MS} ms delay"
	echo "$w" >"$LAT_BACKING"
}

test_attach() {
	echo "path=$SLOW,size=$QUOTA,mode=writeback" >"$CACHE/attach"
	[ "$(cat "$CACHE/backing0/disk")" = pcache0 ] || fail "backing0 has no disk pcache0"
	[ "$(cat "$CACHE/backing0/path")" = "$SLOW" ] ||
		fail "backing0 recorded $(cat "$CACHE/backing0/path"), not $SLOW"
	[ "$(cat "$CACHE/backing0/mode")" = writeback ] || fail "backing0 is not in writeback mode"
	[ -b /dev/pcache0 ] || fail "no /dev/pcache0"
	[ "$(blockdev --getsize64 /dev/pcache0)" = "$(blockdev --getsize64 "$SLOW")" ] ||
		fail "/dev/pcache0 and $SLOW differ in size"
	echo "backing0: $(cat "$CACHE/backing0/segments_total") segments"
}

# Completed writes of a block device (the 5th field of its stat file), by
# its device number: dmsetup's node has no link to the kernel's name.
writes_done() {
	local dev
	dev=$(printf '%d:%d' "0x$(stat -L -c %t "$1")" "0x$(stat -L -c %T "$1")")
	awk '{ print $5 }' "/sys/dev/block/$dev/stat"
}

test_cache_absorbs() {
	local b=$CACHE/backing0 w backing delay writes dirty
	backing=$(cat "$LAT_BACKING") || fail "no latency measured on $SLOW"
	delay=$(cat "$b/writeback_delay_ms")
	echo 3600000 >"$b/writeback_delay_ms"
	writes=$(writes_done "$SLOW")
	dirty=$(cat "$b/dirty_bytes")
	w=$(lat_us /dev/pcache0 randwrite)
	echo "/dev/pcache0: 4 KiB QD1 mean write latency $w us; $SLOW: $backing us" \
		"($((backing / (w > 0 ? w : 1)))x; timing is make bench's to judge)"
	echo "writes that reached $SLOW meanwhile: $(($(writes_done "$SLOW") - writes))," \
		"dirty bytes: $dirty -> $(cat "$b/dirty_bytes")"
	[ "$(writes_done "$SLOW")" = "$writes" ] ||
		fail "writes through /dev/pcache0 reached $SLOW with writeback held off"
	[ "$(cat "$b/dirty_bytes")" -gt "$dirty" ] ||
		fail "the writes through /dev/pcache0 are not dirty in the cache"
	echo "$delay" >"$b/writeback_delay_ms"
}

segments_used() {
	local b=$CACHE/backing0
	echo "backing0: $(cat "$b/segments_used") of $(cat "$b/segments_total") segments used," \
		"$(cat "$b/dirty_bytes") bytes dirty, $(cat "$b/written_back_bytes") written back," \
		"$(cat "$b/segments_reclaimed") segments reclaimed, $(cat "$b/waits_for_space") waits for space"
}

test_random() {
	local pass
	for pass in 0 1; do
		echo "pass $((pass + 1)):"
		run_fio random "${VERIFY_OPTS[@]}" --filename=/dev/pcache0 \
			"${RANDOM_JOB[@]}" --randseed=$((seed + pass))
	done
	segments_used
}

test_seq() {
	run_fio seq "${VERIFY_OPTS[@]}" --filename=/dev/pcache0 "${SEQ_JOB[@]}"
	segments_used
}

test_small() {
	run_fio small "${VERIFY_OPTS[@]}" --filename=/dev/pcache0 "${SMALL_JOB[@]}"
	segments_used
	[ "$(cat "$CACHE/backing0/written_back_bytes")" -gt 0 ] ||
		fail "nothing was written back while the jobs ran"
	region_sum /dev/pcache0 >"$SUMS"
}

test_detach() {
	local t0 t1
	t0=$(date +%s.%N)
	echo backing=0 >"$CACHE/detach"
	t1=$(date +%s.%N)
	[ ! -e "$CACHE/backing0" ] || fail "backing0 is still there"
	[ ! -e /dev/pcache0 ] || fail "/dev/pcache0 is still there"
	dmesg | grep 'pcache:.*writing back' | tail -n 1 | sed 's/^\[[ 0-9.]*\] //'
	echo "detach took $(python3 -c 'import sys; print(f"{float(sys.argv[2]) - float(sys.argv[1]):.1f}")' "$t0" "$t1") s"
}

test_backing_sums() {
	[ -s "$SUMS" ] || fail "no checksums were taken through /dev/pcache0"
	cmp <(region_sum "$SLOW") "$SUMS" ||
		fail "$SLOW does not hold what /dev/pcache0 returned"
}

test_backing_verify() {
	# The same jobs replayed without writing, with more reads in flight;
	# each in a fio run of its own, as written: the seeds fio gives a job
	# depend on its number within the run.
	run_fio backing-seq "${VERIFY_OPTS[@]}" --iodepth=32 --filename="$SLOW" \
		--verify_only=1 "${SEQ_JOB[@]}"
	run_fio backing-small "${VERIFY_OPTS[@]}" --iodepth=32 --filename="$SLOW" \
		--verify_only=1 "${SMALL_JOB[@]}"
}

test_teardown() {
	echo cache=0 >/sys/bus/pcache/unregister
	[ ! -e "$CACHE" ] || fail "cache0 is still there"
	dmsetup remove "$DM_NAME"
	rmmod pcache
}

ktap_plan 11
ktap_test "dm-delay device with ${DELAY_MS} ms per I/O over vda; pmem0 registered" test_setup
ktap_test "4 KiB QD1 latency of the slow device alone" test_backing_latency
ktap_test "attach $SLOW in writeback mode with a $QUOTA share" test_attach
ktap_test "4 KiB QD1 writes through /dev/pcache0 complete in pmem, none reaches the slow device" \
	test_cache_absorbs
ktap_test "fio verify: random 512 B-1 MiB, 4 jobs, written twice over" test_random
ktap_test "fio verify: sequential 1 MiB, 2 jobs" test_seq
ktap_test "fio verify: random 512 B / 4 KiB over the random jobs' region, 4 jobs" test_small
ktap_test "detach writes the cache back to the slow device" test_detach
ktap_test "the slow device holds exactly what /dev/pcache0 returned" test_backing_sums
ktap_test "fio verify_only of the last writes passes on the slow device alone" test_backing_verify
ktap_test "unregister, remove the dm-delay device, rmmod" test_teardown
ktap_finish
