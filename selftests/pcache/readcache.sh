#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Read caching.  What a read miss brings from the backing device is cached
# as clean data: the second read of it hits (pcache's hit counters rise, the
# backing device's read counters in /sys/block/X/stat do not) and nothing
# becomes dirty.  read_cache=0 turns it off.  A fill never hides a newer
# write: fio verifies writes while another job reads the same blocks at
# random, in a share smaller than the data, with writeback and reclaim
# running; the backing device alone verifies after detach.  After a power
# cut with fills in the log, replay passes their records by and keeps the
# writes after them.
#
# pcvm: disks=2 timeout=1200 kernels=6.12
. "$(dirname "$0")/lib.sh"

SYS=/sys/bus/pcache
CACHE=$SYS/devices/cache0
MIB=$((1 << 20))

# Sectors read from a disk (field 3 of /sys/block/X/stat).
sectors_read() {
	awk '{ print $3 }' "/sys/block/$1/stat"
}

# read_area DEV OFFSET_MIB MIBS: direct reads of 64 KiB, to stdout.
read_area() {
	dd if="$1" bs=64k skip=$(($2 * 16)) count=$(($3 * 16)) iflag=direct status=none
}

# expect_area DEV OFFSET_MIB MIBS SEED: it reads back pattern SEED's bytes
# at that offset.
expect_area() {
	cmp <(read_area "$1" "$2" "$3") \
		<(pattern "$4" $((($2 + $3) * MIB)) | tail -c $(($3 * MIB))) ||
		fail "$1 at $2 MiB does not read back what was written there"
}

setup() {
	make_fsdax_namespace
	load_pcache
	echo path=/dev/pmem0,format >"$SYS/register"
	# Data that only the backing device has.
	pattern "base-$PCACHE_RUN_ID" $((16 * MIB)) |
		dd of="$(backing_path 0)" bs=1M oflag=direct status=none
	echo "path=$(backing_path 0),size=64M" >"$CACHE/attach"
	use_backing "$(backing_path 0)"
	echo 3600000 >"$B/writeback_delay_ms"
	[ "$(cat "$B/read_cache")" = 1 ] || fail "read caching is not on by default"
}

second_read_hits() {
	local back before hits
	use_backing "$(backing_path 0)"
	back=$(backing_name 0)
	expect_area "/dev/$DISK" 0 4 "base-$PCACHE_RUN_ID"
	# Fills complete after the reads do: give them a moment.
	sleep 1
	before=$(sectors_read "$back")
	hits=$(cat "$B/stats/read_hits")
	expect_area "/dev/$DISK" 0 4 "base-$PCACHE_RUN_ID"
	echo "backing sectors read by the second pass: $(($(sectors_read "$back") - before))," \
		"hits: $(($(cat "$B/stats/read_hits") - hits)); segments used: $(cat "$B/segments_used")"
	[ "$(sectors_read "$back")" = "$before" ] ||
		fail "the second read of 4 MiB read $(($(sectors_read "$back") - before)) sectors from the backing device"
	[ $(($(cat "$B/stats/read_hits") - hits)) = 64 ] ||
		fail "the second read of 4 MiB made $(($(cat "$B/stats/read_hits") - hits)) hits, not 64"
	[ "$(cat "$B/dirty_bytes")" = 0 ] || fail "read cache fills count as dirty: $(cat "$B/dirty_bytes")"
}

read_cache_off() {
	local back before out
	use_backing "$(backing_path 0)"
	back=$(backing_name 0)
	if out=$({ echo 2 >"$B/read_cache"; } 2>&1); then
		fail "read_cache took 2"
	fi
	echo "read_cache=2: ${out##*: }"
	echo 0 >"$B/read_cache"
	expect_area "/dev/$DISK" 4 1 "base-$PCACHE_RUN_ID"
	sleep 1
	before=$(sectors_read "$back")
	expect_area "/dev/$DISK" 4 1 "base-$PCACHE_RUN_ID"
	[ $(($(sectors_read "$back") - before)) = 2048 ] ||
		fail "with read_cache 0, a second read of 1 MiB read $(($(sectors_read "$back") - before)) sectors from the backing device"
	echo 1 >"$B/read_cache"
}

# A sequential stream past sequential_cutoff is not cached: with a cutoff
# of 1 MiB, a 4 MiB sequential read fills its first MiB only, and so does
# the second pass (the rest is read from the backing device again); with
# no cutoff, all of it.  Bad values are refused.
sequential_bypass() {
	local back before bypassed out v
	use_backing "$(backing_path 0)"
	back=$(backing_name 0)
	[ "$(cat "$B/sequential_cutoff")" = $((4 * MIB)) ] ||
		fail "sequential_cutoff is $(cat "$B/sequential_cutoff") by default, not 4 MiB"
	for v in abc 2T -1 ""; do
		if out=$({ echo "$v" >"$B/sequential_cutoff"; } 2>&1); then
			fail "sequential_cutoff took '$v'"
		fi
		echo "sequential_cutoff='$v': ${out##*: }"
	done
	echo 1M >"$B/sequential_cutoff"
	bypassed=$(cat "$B/stats/sequential_bypassed")
	# Run the stream on one CPU: the cutoff follows streams per CPU.
	taskset -c 0 dd if="/dev/$DISK" of=/dev/null bs=64k skip=$((32 * 16)) count=64 \
		iflag=direct status=none
	sleep 1
	before=$(sectors_read "$back")
	taskset -c 0 dd if="/dev/$DISK" of=/dev/null bs=64k skip=$((32 * 16)) count=64 \
		iflag=direct status=none
	echo "second pass read $(($(sectors_read "$back") - before)) sectors from the backing device;" \
		"sequential_bypassed: $(($(cat "$B/stats/sequential_bypassed") - bypassed))"
	[ $(($(sectors_read "$back") - before)) = $((3 * MIB / 512)) ] ||
		fail "with a 1 MiB cutoff, the second pass of 4 MiB should read 3 MiB from the backing device"
	[ $(($(cat "$B/stats/sequential_bypassed") - bypassed)) = 96 ] ||
		fail "sequential_bypassed should count the 2 x 48 reads past the cutoff"
	echo 0 >"$B/sequential_cutoff"
	taskset -c 0 dd if="/dev/$DISK" of=/dev/null bs=64k skip=$((40 * 16)) count=64 \
		iflag=direct status=none
	sleep 1
	before=$(sectors_read "$back")
	taskset -c 0 dd if="/dev/$DISK" of=/dev/null bs=64k skip=$((40 * 16)) count=64 \
		iflag=direct status=none
	[ "$(sectors_read "$back")" = "$before" ] ||
		fail "with no cutoff, the second pass read $(($(sectors_read "$back") - before)) sectors from the backing device"
	echo 4M >"$B/sequential_cutoff"
	[ "$(cat "$B/sequential_cutoff")" = $((4 * MIB)) ] || fail "4M reads back as $(cat "$B/sequential_cutoff")"
}

# preadv_direct DEV OFFSET SIZES...: one O_DIRECT preadv at byte OFFSET
# into iovecs of SIZES bytes laid end to end from 512 bytes into a
# page-aligned buffer, so that they are sector aligned but most start and
# end inside a page; the bytes read, to stdout.
preadv_direct() {
	python3 - "$@" <<'EOF'
import mmap, os, sys
dev, off, sizes = sys.argv[1], int(sys.argv[2]), [int(s) for s in sys.argv[3:]]
buf = mmap.mmap(-1, sum(sizes) + 2 * mmap.PAGESIZE)
view, pos, iov = memoryview(buf), 512, []
for n in sizes:
    iov.append(view[pos:pos + n])
    pos += n
fd = os.open(dev, os.O_RDONLY | os.O_DIRECT)
got = os.preadv(fd, iov, off)
if got != sum(sizes):
    sys.exit("short read: %d of %d bytes" % (got, sum(sizes)))
sys.stdout.buffer.write(buf[512:pos])
EOF
}

# A read miss into sub-page buffers (as XFS's metadata buffers) must fill
# the cache with exactly what it read: each layout is read as a miss, then
# again (a hit, the backing device not read) page-aligned, and both must
# equal the backing device.  Before fill.c copied up to page boundaries,
# a segment starting inside a fill page ran into the next physical page:
# the hit returned wrong bytes and memory beyond the fill was corrupted.
unaligned_fill() {
	local back before hits off i=0 layout sizes blocks expected
	use_backing "$(backing_path 0)"
	back=$(backing_name 0)
	expected=$(mktemp)
	for layout in "512 4096 3584" "1536 2560 4096 512 3584" "3584 8192 512" "512 512 7168"; do
		read -ra sizes <<<"$layout"
		blocks=$((($(IFS=+; echo "${sizes[*]}")) / 4096))
		off=$((6 * MIB + i * 65536)) i=$((i + 1))
		dd if="$(backing_path 0)" of="$expected" bs=4096 skip=$((off / 4096)) \
			count=$blocks iflag=direct status=none
		cmp <(preadv_direct "/dev/$DISK" "$off" "${sizes[@]}") "$expected" ||
			fail "a miss into iovecs of $layout bytes read wrong data"
		sleep 1
		before=$(sectors_read "$back")
		hits=$(cat "$B/stats/read_hits")
		cmp <(dd if="/dev/$DISK" bs=4096 skip=$((off / 4096)) count=$blocks \
			iflag=direct status=none) "$expected" ||
			fail "after a miss into iovecs of $layout bytes, the cache returns other bytes than the backing device"
		[ "$(sectors_read "$back")" = "$before" ] ||
			fail "the read after a miss into iovecs of $layout bytes was not a hit"
		[ "$(cat "$B/stats/read_hits")" -gt "$hits" ] ||
			fail "read_hits did not rise for the read after a miss into iovecs of $layout bytes"
		echo "iovecs of $layout bytes: a miss, then a hit, both as on the backing device"
	done
	rm -f "$expected"
}

# An O_DIRECT reader that stores into its buffer while its read is in
# flight (another thread of it here, all along) must not decide what later
# readers get: a fill caches what the device returned.  256 blocks at 48 MiB
# (zeroes on the backing device) are read so, then read again, as hits,
# into a buffer nobody touches, and compared with the backing device.
scribbled_buffer() {
	local hits out
	use_backing "$(backing_path 0)"
	hits=$(cat "$B/stats/read_hits")
	out=$(python3 - "/dev/$DISK" "$(backing_path 0)" <<'EOF'
import mmap, os, sys, threading, time
disk, backing = sys.argv[1], sys.argv[2]
base, n = 48 << 20, 256
buf = mmap.mmap(-1, 4096)
stop = []
def scribble():
    junk = b"\x41" * 4096
    while not stop:
        buf[:] = junk
fd = os.open(disk, os.O_RDONLY | os.O_DIRECT)
t = threading.Thread(target=scribble)
t.start()
for i in range(n):
    os.preadv(fd, [buf], base + i * 65536)
stop.append(1)
t.join()
time.sleep(2)  # the fills land after the reads complete
bad = 0
mine, theirs = mmap.mmap(-1, 4096), mmap.mmap(-1, 4096)
bfd = os.open(backing, os.O_RDONLY | os.O_DIRECT)
for i in range(n):
    os.preadv(fd, [mine], base + i * 65536)
    os.preadv(bfd, [theirs], base + i * 65536)
    bad += mine[:] != theirs[:]
print(bad)
EOF
)
	echo "blocks that read back other than the backing device has: $out;" \
		"hits: $(($(cat "$B/stats/read_hits") - hits))"
	[ "$out" = 0 ] || fail "$out blocks cached with what the reader stored into its buffer"
	[ "$(cat "$B/stats/read_hits")" -ge $((hits + 256)) ] ||
		fail "the blocks were not cached: the check proves nothing"
}

FILL_DELAY=/sys/module/pcache/parameters/fill_delay_ms

# block DEV OFFSET: the 4 KiB block at byte OFFSET, direct, as hex.
block() {
	dd if="$1" bs=4096 skip=$(($2 / 4096)) count=1 iflag=direct status=none | od -An -tx1 | tr -d ' \n'
}

# put_block DEV OFFSET SEED: write pattern SEED's 4 KiB there.
put_block() {
	pattern "$3" 4096 | dd of="$1" bs=4096 seek=$(($2 / 4096)) oflag=direct status=none
}

# read_then_write MIB COUNT TAG: for COUNT blocks 64 KiB apart from MIB, a
# read (a miss, whose fill fill_delay_ms holds back), then a write of
# pattern TAG-i.
read_then_write() {
	local i off
	for i in $(seq 0 $(($2 - 1))); do
		off=$(($1 * MIB + i * 65536))
		block "/dev/$DISK" "$off" >/dev/null
		put_block "/dev/$DISK" "$off" "$3-$i"
	done
}

# expect_written MIB COUNT TAG WHY: those blocks read back what was written.
expect_written() {
	local i off
	for i in $(seq 0 $(($2 - 1))); do
		off=$(($1 * MIB + i * 65536))
		[ "$(block "/dev/$DISK" "$off")" = "$(pattern "$3-$i" 4096 | od -An -tx1 | tr -d ' \n')" ] ||
			fail "block $i reads what the backing device had before the write: $4"
	done
}

# The deterministic form of the race: every fill is held back (fill_delay_ms)
# while a write of the same block goes through; the write must win.
fill_loses_to_write() {
	use_backing "$(backing_path 0)"
	echo 3000 >"$FILL_DELAY"
	read_then_write 20 16 "w-$PCACHE_RUN_ID"
	echo 0 >"$FILL_DELAY"
	sleep 4
	expect_written 20 16 "w-$PCACHE_RUN_ID" "a fill hid the write"
}

# The other way a fill could hide a write: the write is written back and
# its segment reclaimed (its extent leaves the index) before the fill, read
# before the write, is inserted.  The fills wait 30 s; meanwhile 96 MiB of
# other writes in the 64 MiB share push the blocks' segments out.
fill_after_reclaim() {
	local reclaimed
	use_backing "$(backing_path 0)"
	reclaimed=$(cat "$B/segments_reclaimed")
	echo 0 >"$B/writeback_delay_ms"
	echo 30000 >"$FILL_DELAY"
	read_then_write 24 8 "r-$PCACHE_RUN_ID"
	echo 0 >"$FILL_DELAY"
	head -c $((96 * MIB)) /dev/urandom |
		dd of="/dev/$DISK" bs=1M seek=64 iflag=fullblock oflag=direct status=none
	echo "segments reclaimed meanwhile: $(($(cat "$B/segments_reclaimed") - reclaimed))"
	[ "$(cat "$B/segments_reclaimed")" -gt "$reclaimed" ] || fail "nothing was reclaimed"
	# The held fills land now (30 s after the first read).
	sleep 32
	expect_written 24 8 "r-$PCACHE_RUN_ID" "a fill landed after reclaim"
	echo 3600000 >"$B/writeback_delay_ms"
}

INDEX_DELAY=/sys/module/pcache/parameters/write_index_delay_ms

# A write whose key reaches the index only after a round wrote it back cuts
# older extents and leaves a hole; a fill read before the write must not
# land in it.  Each write is held 3 s between its append and its index
# insertion, and written back meanwhile (writeback_delay_ms 0); the fill
# of the read before it lands 6 s after that read.
fill_after_late_write() {
	use_backing "$(backing_path 0)"
	echo 0 >"$B/writeback_delay_ms"
	echo 6000 >"$FILL_DELAY"
	echo 3000 >"$INDEX_DELAY"
	read_then_write 28 4 "l-$PCACHE_RUN_ID"
	echo 0 >"$INDEX_DELAY"
	echo 0 >"$FILL_DELAY"
	echo "written back: $(cat "$B/written_back_bytes") bytes, dirty: $(cat "$B/dirty_bytes")"
	# The last fill lands 6 s after the last read, 3 s ago.
	sleep 4
	expect_written 28 4 "l-$PCACHE_RUN_ID" "a fill landed in the hole of a late write"
	echo 3600000 >"$B/writeback_delay_ms"
}

# One job writes 48 MiB at random and verifies it, another reads the same
# 48 MiB at random all along (misses become fills racing the writes), in a
# 32 MiB share with writeback every 20 ms: writes wait for reclaim, which
# drops extents under the fills' feet.
fills_race_writes() {
	local job=(--name=write --rw=randwrite --offset=0 --size=48M
		--verify=crc32c --randseed="$PCACHE_RUN_ID")
	echo "path=$(backing_path 1),size=32M" >"$CACHE/attach"
	use_backing "$(backing_path 1)"
	echo 20 >"$B/writeback_delay_ms"
	run_fio race --filename="/dev/$DISK" --direct=1 --ioengine=psync --bs=4k \
		"${job[@]}" --do_verify=1 \
		--name=read --rw=randread --offset=0 --size=48M --time_based --runtime=40
	echo "reclaimed $(cat "$B/segments_reclaimed") segments," \
		"hits $(cat "$B/stats/read_hits"), misses $(cat "$B/stats/read_misses")," \
		"partial hits $(cat "$B/stats/read_partial_hits")"
	[ "$(cat "$B/segments_reclaimed")" -gt 0 ] || fail "reclaim never ran"
	# Everything again, now that the fills of the last reads are in.
	sleep 1
	run_fio reverify --filename="/dev/$DISK" --direct=1 --ioengine=psync --bs=4k \
		"${job[@]}" --verify_only
	echo "backing=$(cat "$B/id")" >"$CACHE/detach"
	run_fio backing-verify --filename="$(backing_path 1)" --direct=1 --ioengine=psync \
		--bs=4k "${job[@]}" --verify_only
}

# Fills and writes interleaved, so that clean records sit before dirty ones
# in the log; then the power is cut.
fills_then_writes() {
	local i
	use_backing "$(backing_path 0)"
	for i in 0 1 2 3 4 5 6 7; do
		expect_area "/dev/$DISK" $((8 + i)) 1 "base-$PCACHE_RUN_ID"
		sleep 0.2
		pattern "new-$PCACHE_RUN_ID-$i" "$MIB" |
			dd of="/dev/$DISK" bs=64k seek=$((i * 16)) oflag=direct status=none
	done
	echo "dirty: $(cat "$B/dirty_bytes") bytes, segments used: $(cat "$B/segments_used")"
}

after_power_cut() {
	local i
	load_pcache
	echo path=/dev/pmem0 >"$SYS/register"
	use_backing "$(backing_path 0)"
	[ "$(cat "$B/state")" = attached ] || fail "backing0 not attached again"
	dmesg | grep 'pcache:.*replayed' | tail -n 1
	for i in 0 1 2 3 4 5 6 7; do
		cmp <(read_area "/dev/$DISK" "$i" 1) <(pattern "new-$PCACHE_RUN_ID-$i" "$MIB") ||
			fail "write $i after the fills was lost"
	done
	expect_area "/dev/$DISK" 8 8 "base-$PCACHE_RUN_ID"
	echo backing=0 >"$CACHE/detach"
	for i in 0 1 2 3 4 5 6 7; do
		cmp <(read_area "$(backing_path 0)" "$i" 1) <(pattern "new-$PCACHE_RUN_ID-$i" "$MIB") ||
			fail "write $i did not reach the backing device"
	done
}

case "$PCACHE_PHASE" in
1)
	ktap_plan 12
	ktap_test "a cache; data on the backing device only" setup
	ktap_test "a second read is served from the cache, nothing dirty" second_read_hits
	ktap_test "read_cache 0 turns fills off; it takes 0 or 1 only" read_cache_off
	ktap_test "a sequential stream past sequential_cutoff is not cached" sequential_bypass
	ktap_test "a miss read into sub-page buffers is cached as read" unaligned_fill
	ktap_test "a reader storing into its buffer during the read does not decide what is cached" \
		scribbled_buffer
	ktap_test "a write wins over a fill of the same block held back" fill_loses_to_write
	ktap_test "a fill held back past writeback and reclaim of a write does not land" fill_after_reclaim
	ktap_test "a fill held back past a write written back before its index insertion does not land" \
		fill_after_late_write
	ktap_test "fio: writes verified while reads fill the same blocks, reclaim running" fills_race_writes
	ktap_test "fills and writes interleaved in the log" fills_then_writes
	pcvm-powercut "with read cache fills in the log"
	;;
2)
	KTAP_NUM=11
	ktap_test "after a power cut, the writes after the fills are replayed and written back" after_power_cut
	ktap_finish
	;;
esac
