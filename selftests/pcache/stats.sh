#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Statistics integrity: after a scripted workload of direct I/O, every
# counter under backingN/stats/ and cacheN/stats/ equals what the workload
# implies, the counters agree with each other (reads = hits + partial hits
# + misses, histograms sum to their counters), with the block layer's own
# counts of /dev/pcacheN and with the backing device's: a hit never reads
# the backing device, a miss reads exactly its own bytes there.  Requests
# in mode none count as bypassed, a failing backing device counts errors,
# and a cache keeps the counts of a backing device after its detach.
#
# pcvm: disks=2 timeout=600 kernels=6.1
. "$(dirname "$0")/lib.sh"

SYS=/sys/bus/pcache
CACHE=$SYS/devices/cache0
KIB=1024
MIB=$((1 << 20))
COUNTERS="reads read_hits read_partial_hits read_misses read_bytes read_hit_bytes
	sequential_bypassed writes write_hits write_bytes discards write_zeroes bypassed errors"
SAVED=/tmp/pcache-stats

# save NAME DIR: keep the counters of DIR (a stats directory) as NAME.
save() {
	grep -H '' "$2"/* | grep -v latency_histogram | sed "s|^$2/||" >"$SAVED.$1"
}

# delta NAME DIR COUNTER: how much COUNTER of DIR grew since save NAME.
delta() {
	local before
	before=$(sed -n "s/^$3://p" "$SAVED.$1")
	echo $(($(cat "$2/$3") - before))
}

# expect NAME DIR COUNTER=VALUE...: the counters grew by exactly these.
expect() {
	local name=$1 dir=$2 pair got bad=
	shift 2
	for pair in "$@"; do
		got=$(delta "$name" "$dir" "${pair%%=*}")
		if [ "$got" != "${pair#*=}" ]; then
			echo "${dir#"$SYS"/devices/}/${pair%%=*}: grew by $got, expected ${pair#*=}"
			bad=1
		fi
	done
	[ -z "$bad" ] || fail "counters do not match the workload"
}

# Fields of /sys/block/X/stat: read requests, sectors read, write
# requests, sectors written, discard requests.
blk_stat() {
	awk -v f="$2" '{ print $f }' "/sys/block/$1/stat"
}

# io OP DEV BS OFFSET COUNT: COUNT direct requests of BS bytes from OFFSET.
io() {
	case "$1" in
	read) dd if="$2" of=/dev/null bs="$3" skip="$4" count="$5" \
		iflag=direct,skip_bytes status=none ;;
	write) head -c $(($3 * $5)) /dev/urandom |
		dd of="$2" bs="$3" seek="$4" count="$5" iflag=fullblock \
			oflag=direct,seek_bytes status=none ;;
	esac
}

# ioctl_range DEV BLKDISCARD|BLKZEROOUT OFFSET LENGTH: one request.
ioctl_range() {
	python3 - "$@" <<'PY'
import fcntl, os, struct, sys
dev, op, off, length = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
code = {"BLKDISCARD": 0x1277, "BLKZEROOUT": 0x127f}[op]
fd = os.open(dev, os.O_WRONLY)
fcntl.ioctl(fd, code, struct.pack("QQ", off, length))
os.close(fd)
PY
}

# hist_sum DIR COLUMN: the sum of a latency histogram column (2: read hits,
# 3: read misses, 4: writes).
hist_sum() {
	awk -v c="$2" 'NR > 1 { s += $c } END { print s + 0 }' "$1/latency_histogram"
}

setup() {
	make_fsdax_namespace
	load_pcache
	echo path=/dev/pmem0,format >"$SYS/register"
	attach_backing "$(backing_path 0)" size=64M
	local f
	# Writeback would neither read the backing device nor count a request,
	# but keep it still: the backing device's counters must be ours alone.
	echo 3600000 >"$B/writeback_delay_ms"
	for f in $COUNTERS latency_histogram; do
		[ -f "$B/stats/$f" ] || fail "backing0/stats/$f is missing"
		[ -f "$CACHE/stats/$f" ] || fail "cache0/stats/$f is missing"
	done
	echo "stats: $(cd "$B/stats" && echo *)"
}

workload() {
	local back rd_before rs_before ws_before wb_before
	use_backing "$(backing_path 0)"
	back=$(basename "$(readlink -f "$(backing_path 0)")")
	save b "$B/stats"
	save c "$CACHE/stats"
	rd_before=$(blk_stat "$DISK" 1)
	ws_before=$(blk_stat "$DISK" 5)
	rs_before=$(blk_stat "$back" 3)
	wb_before=$(blk_stat "$back" 7)

	# From 8 MiB on: the partition scan at attach read (and so cached)
	# the disk's first and last blocks.
	io write "/dev/$DISK" 4096 $((8 * MIB)) 64	# 64 new blocks
	io write "/dev/$DISK" 4096 $((8 * MIB)) 16	# 16 of them again: write hits
	io write "/dev/$DISK" 8192 $((8 * MIB + 252 * KIB)) 1	# half over the last one
	io read "/dev/$DISK" 4096 $((8 * MIB)) 64	# 64 hits
	io read "/dev/$DISK" 4096 $((9 * MIB)) 64	# 64 misses
	io read "/dev/$DISK" 16384 $((8 * MIB + 256 * KIB)) 1	# 4 KiB cached, 12 KiB not
	ioctl_range "/dev/$DISK" BLKZEROOUT $((10 * MIB)) 8192
	ioctl_range "/dev/$DISK" BLKDISCARD $((11 * MIB)) 8192

	expect b "$B/stats" reads=129 read_hits=64 read_partial_hits=1 read_misses=64 \
		read_bytes=$((128 * 4096 + 16384)) read_hit_bytes=$((65 * 4096)) \
		writes=81 write_hits=17 write_bytes=$((80 * 4096 + 8192)) \
		discards=1 write_zeroes=1 bypassed=0 errors=0
	# One backing device: the cache's sums grew alike.
	expect c "$CACHE/stats" reads=129 read_hits=64 read_partial_hits=1 read_misses=64 \
		read_bytes=$((128 * 4096 + 16384)) read_hit_bytes=$((65 * 4096)) \
		writes=81 write_hits=17 write_bytes=$((80 * 4096 + 8192)) \
		discards=1 write_zeroes=1 bypassed=0 errors=0
	# The block layer counts write zeroes as writes.
	[ $(($(blk_stat "$DISK" 1) - rd_before)) = 129 ] ||
		fail "/sys/block/$DISK/stat counts $(($(blk_stat "$DISK" 1) - rd_before)) reads, pcache 129"
	[ $(($(blk_stat "$DISK" 5) - ws_before)) = 82 ] ||
		fail "/sys/block/$DISK/stat counts $(($(blk_stat "$DISK" 5) - ws_before)) writes, pcache 81 + 1 write zeroes"
	# Misses, and only they, read the backing device: 64 blocks and 12 KiB.
	[ $(($(blk_stat "$back" 3) - rs_before)) = $(((64 * 4096 + 12288) / 512)) ] ||
		fail "the backing device read $(($(blk_stat "$back" 3) - rs_before)) sectors, the misses were $(((64 * 4096 + 12288) / 512))"
	[ "$(blk_stat "$back" 7)" = "$wb_before" ] ||
		fail "the backing device was written to, with writeback held back"
}

counters_agree() {
	local d
	use_backing "$(backing_path 0)"
	for d in "$B/stats" "$CACHE/stats"; do
		[ "$(cat "$d/reads")" = $(($(cat "$d/read_hits") + $(cat "$d/read_partial_hits") + $(cat "$d/read_misses"))) ] ||
			fail "$d: reads != read_hits + read_partial_hits + read_misses"
		[ "$(hist_sum "$d" 2)" = "$(cat "$d/read_hits")" ] ||
			fail "$d: the read hit histogram sums to $(hist_sum "$d" 2), read_hits is $(cat "$d/read_hits")"
		[ "$(hist_sum "$d" 3)" = $(($(cat "$d/read_partial_hits") + $(cat "$d/read_misses"))) ] ||
			fail "$d: the read miss histogram does not sum to partial hits + misses"
		[ "$(hist_sum "$d" 4)" = "$(cat "$d/writes")" ] ||
			fail "$d: the write histogram sums to $(hist_sum "$d" 4), writes is $(cat "$d/writes")"
		[ "$(cat "$d/read_hit_bytes")" -le "$(cat "$d/read_bytes")" ] ||
			fail "$d: more bytes hit than were read"
	done
	[ "$(head -n 1 "$B/stats/latency_histogram")" = "below_ns read_hits read_misses writes" ] ||
		fail "latency_histogram has no header line"
	[ "$(wc -l <"$B/stats/latency_histogram")" = 25 ] ||
		fail "latency_histogram does not have 24 buckets"
	head -n 8 "$B/stats/latency_histogram"
}

# Mode none: every request goes to the backing device, counted as bypassed;
# the cache's sums are the two backing devices' sums.
bypass() {
	local b0 c
	use_backing "$(backing_path 0)"
	b0=$B
	save b0 "$b0/stats"
	attach_backing "$(backing_path 1)" size=16M,mode=none
	save b1 "$B/stats"
	io write "/dev/$DISK" 4096 0 5
	io read "/dev/$DISK" 4096 0 10
	expect b1 "$B/stats" bypassed=15 reads=0 writes=0 errors=0
	expect b0 "$b0/stats" reads=0 writes=0 bypassed=0
	for c in $COUNTERS; do
		[ "$(cat "$CACHE/stats/$c")" = $(($(cat "$b0/stats/$c") + $(cat "$B/stats/$c"))) ] ||
			fail "cache0/stats/$c is not the sum of backing0's and backing1's"
	done
	echo "bypassed: $(cat "$B/stats/bypassed")"
}

# A backing device whose second MiB fails: a miss there fails the read and
# counts an error; the error is in the histogram's misses too.
errors() {
	local slice=$((32 * MIB / 512)) c
	# Detach backing1 first: the cache keeps what it counted.
	use_backing "$(backing_path 1)"
	save c "$CACHE/stats"
	echo "backing=$(cat "$B/id")" >"$CACHE/detach"
	for c in $COUNTERS; do
		[ "$(delta c "$CACHE/stats" "$c")" = 0 ] ||
			fail "cache0/stats/$c changed when backing1 was detached"
	done
	dmsetup create pcstats-err --table "0 2048 linear $(backing_path 1) 0
2048 2048 error
4096 $((slice - 4096)) linear $(backing_path 1) 4096"
	dmsetup mknodes pcstats-err
	attach_backing /dev/mapper/pcstats-err size=16M
	save e "$B/stats"
	save c "$CACHE/stats"
	# Not the first MiB, which the partition scan has read (and cached).
	io read "/dev/$DISK" 4096 $((4 * MIB)) 1 || fail "a read of a healthy MiB failed"
	if io read "/dev/$DISK" 4096 $((MIB)) 1 2>/dev/null; then
		fail "a read of the failing MiB succeeded"
	fi
	expect e "$B/stats" reads=2 read_misses=2 errors=1
	expect c "$CACHE/stats" reads=2 read_misses=2 errors=1
	echo "backing=$(cat "$B/id")" >"$CACHE/detach"
	dmsetup remove pcstats-err
}

case "$PCACHE_PHASE" in
1)
	ktap_plan 5
	ktap_test "a cache and a backing device; the stats files are there" setup
	ktap_test "a scripted workload: every counter grew by what it implies" workload
	ktap_test "reads add up, the histograms sum to their counters" counters_agree
	ktap_test "mode none counts bypassed requests; the cache sums its backings" bypass
	ktap_test "a failing backing device counts errors; detach keeps the counts" errors
	ktap_finish
	;;
esac
