#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# DISCARD and WRITE_ZEROES through the cache.  In writeback mode the disk
# takes both, of any size, as log records without data: the ranges read
# back as zeroes at once (also partly overlapped, across MiB boundaries, and
# with newer writes on top), after a power cut, and on the backing device
# once detach has written them back; a discard reaches the backing device as
# a discard.  In mode none both go straight to the backing device, and are
# advertised only as the backing device advertises them.
#
# pcvm: disks=2 timeout=900
. "$(dirname "$0")/lib.sh"

SYS=/sys/bus/pcache
CACHE=$SYS/devices/cache0
MIB=$((1 << 20))
AREA=$((4 * MIB))	# the bytes under test, from offset 0
EXPECT=/tmp/pcache-discard.expect

# Field 12 of /sys/block/X/stat: discards completed.
discards_done() {
	awk '{ print $12 }' "/sys/block/$1/stat"
}

# The pattern written first, and the operations after it, applied to a
# model of the area: EXPECT is what /dev/pcache0 must read.
OPS=(
	"zero $((4096)) $((8192))"			# inside one extent
	"discard $((MIB - 65536)) $((MIB + 131072))"	# across two MiB boundaries
	"zero $((3 * MIB + 512)) $((1024))"		# sub-page, unaligned
	"write $((MIB + 4096)) $((8192))"		# newer data over a discard
	"discard 0 512"					# the first sector
)

make_expect() {
	python3 - "$PCACHE_RUN_ID" "$AREA" "$EXPECT" "${OPS[@]}" <<'PY'
import random, sys
run, area, out, ops = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4:]
img = bytearray(random.Random("base-" + run).randbytes(area))
for i, op in enumerate(ops):
    kind, off, n = op.split()
    off, n = int(off), int(n)
    if kind == "write":
        img[off:off + n] = random.Random("op-%s-%d" % (run, i)).randbytes(n)
    else:
        img[off:off + n] = bytes(n)
open(out, "wb").write(img)
PY
}

# Apply the pattern and OPS to DEV.
apply_ops() {
	local dev=$1 i kind off n
	pattern "base-$PCACHE_RUN_ID" "$AREA" |
		dd of="$dev" bs=1M oflag=direct status=none
	for i in "${!OPS[@]}"; do
		read -r kind off n <<<"${OPS[i]}"
		case "$kind" in
		zero) blkdiscard --zeroout -o "$off" -l "$n" "$dev" ;;
		discard) blkdiscard -o "$off" -l "$n" "$dev" ;;
		write)
			python3 -c 'import random, sys
sys.stdout.buffer.write(random.Random(sys.argv[1]).randbytes(int(sys.argv[2])))' \
				"op-$PCACHE_RUN_ID-$i" "$n" |
				dd of="$dev" bs=512 seek=$((off / 512)) oflag=direct status=none
			;;
		esac
	done
}

area_is_expected() {
	make_expect
	cmp <(dd if="$1" bs=1M count=$((AREA / MIB)) iflag=direct status=none) "$EXPECT" ||
		fail "$1 does not read back what was written, zeroed and discarded"
}

setup() {
	make_fsdax_namespace
	load_pcache
	echo path=/dev/pmem0,format >"$SYS/register"
	echo "path=$(backing_path 0),size=64M" >"$CACHE/attach"
	# Nothing goes to the backing device before the detach.
	echo 3600000 >"$CACHE/backing0/writeback_delay_ms"
}

advertised() {
	local q=/sys/block/pcache0/queue
	echo "discard_max_bytes $(cat $q/discard_max_bytes)," \
		"write_zeroes_max_bytes $(cat $q/write_zeroes_max_bytes)"
	[ "$(cat $q/discard_max_bytes)" -ge $((1 << 30)) ] ||
		fail "the cache takes discards of any size, but advertises less"
	[ "$(cat $q/write_zeroes_max_bytes)" -ge $((1 << 30)) ] ||
		fail "the cache takes write zeroes of any size, but advertises less"
}

zeroes_read_back() {
	local b0 reads
	b0=$(backing_name 0)
	apply_ops /dev/pcache0
	# After blkdiscard: it probes the whole device for signatures first.
	reads=$(awk '{ print $1 }' "/sys/block/$b0/stat")
	area_is_expected /dev/pcache0
	[ "$(awk '{ print $1 }' "/sys/block/$b0/stat")" = "$reads" ] ||
		fail "zeroed or discarded ranges were read from the backing device"
	cmp -s <(dd if="$(backing_path 0)" bs=1M count=$((AREA / MIB)) iflag=direct status=none) \
		<(head -c "$AREA" /dev/zero) ||
		fail "the backing device changed before writeback was due"
}

# Writeback runs at its default pace once registered again: the discards
# it sends are counted from before.
DISCARDS_BEFORE=/tmp/pcache-discard.before

after_power_cut() {
	discards_done "$(backing_name 0)" >"$DISCARDS_BEFORE"
	load_pcache
	echo path=/dev/pmem0 >"$SYS/register"
	[ "$(cat "$CACHE/backing0/state")" = attached ] || fail "backing0 not attached again"
	area_is_expected /dev/pcache0
	dmesg | grep 'pcache:.*replayed' | tail -n 1
}

detach_writes_back() {
	local b0 before
	b0=$(backing_name 0)
	before=$(cat "$DISCARDS_BEFORE")
	echo backing=0 >"$CACHE/detach"
	area_is_expected "$(backing_path 0)"
	if [ "$(cat "/sys/block/$b0/queue/discard_max_bytes")" -gt 0 ]; then
		[ "$(discards_done "$b0")" -gt "$before" ] ||
			fail "the backing device takes discards, but writeback sent none"
	fi
	echo "discards completed on $b0: $before -> $(discards_done "$b0")"
}

# A whole-device discard is many records; reads of it are zeroes, from the
# cache, and a filesystem made on top (mkfs discards first) checks clean.
whole_device() {
	attach_backing "$(backing_path 0)" size=64M
	echo 3600000 >"$B/writeback_delay_ms"
	pattern "whole-$PCACHE_RUN_ID" $((8 * MIB)) |
		dd of="/dev/$DISK" bs=1M oflag=direct status=none
	blkdiscard "/dev/$DISK"
	cmp <(dd if="/dev/$DISK" bs=1M count=8 iflag=direct status=none) \
		<(head -c $((8 * MIB)) /dev/zero) ||
		fail "a whole-device discard left data readable"
	mkfs.ext4 -q -F -E discard "/dev/$DISK"
	e2fsck -fn "/dev/$DISK"
	echo "backing=$(cat "$B/id")" >"$CACHE/detach"
	e2fsck -fn "$(backing_path 0)"
}

# Writes and discards side by side, writeback running every 50 ms, in a
# share smaller than the data: one fio job writes and verifies 24 MiB at
# random, another discards 24 MiB of written data beside it, 4 KiB at a time
# in random order.  Every discarded block then reads as zeroes (its record
# still cached) or as what it held before (its record written back and
# reclaimed: the backing device, here QEMU's, may ignore a discard, which a
# discard allows), never as anything else; after detach the backing device
# alone passes the first job's verify.
fio_discards() {
	local job=(--name=write --rw=randwrite --offset=0 --size=24M
		--verify=crc32c --randseed="$PCACHE_RUN_ID")
	attach_backing "$(backing_path 0)" size=32M
	pattern "fio-$PCACHE_RUN_ID" $((48 * MIB)) |
		dd of="/dev/$DISK" bs=1M oflag=direct status=none
	echo 50 >"$B/writeback_delay_ms"
	run_fio side-by-side --filename="/dev/$DISK" --direct=1 --ioengine=psync --bs=4k \
		"${job[@]}" --do_verify=1 \
		--name=trim --rw=randtrim --offset=24M --size=24M
	python3 - "/dev/$DISK" "fio-$PCACHE_RUN_ID" <<'PY' || fail "a discarded block reads as something it never held"
import mmap, os, random, sys
dev, seed = sys.argv[1], sys.argv[2]
MIB, BS = 1 << 20, 4096
old = random.Random(seed).randbytes(48 * MIB)[24 * MIB:]
fd = os.open(dev, os.O_RDONLY | os.O_DIRECT)
page = mmap.mmap(-1, BS)        # O_DIRECT wants an aligned buffer
zero = same = bad = 0
for i in range(24 * MIB // BS):
    os.preadv(fd, [page], 24 * MIB + i * BS)
    buf = bytes(page)
    if buf == bytes(BS):
        zero += 1
    elif buf == old[i * BS:(i + 1) * BS]:
        same += 1
    else:
        bad += 1
print("discarded blocks: %d read as zeroes, %d as before, %d otherwise" % (zero, same, bad))
sys.exit(1 if bad else 0)
PY
	echo "backing=$(cat "$B/id")" >"$CACHE/detach"
	run_fio backing-verify --filename="$(backing_path 0)" --direct=1 --ioengine=psync \
		--bs=4k "${job[@]}" --verify_only
}

# Mode none: the backing device's own limits, and the operations go there.
passthrough() {
	local b1 q f
	b1=/sys/block/$(backing_name 1)/queue
	attach_backing "$(backing_path 1)" size=16M,mode=none
	q=/sys/block/$DISK/queue
	for f in discard_max_bytes write_zeroes_max_bytes; do
		[ "$(cat "$q/$f")" = "$(cat "$b1/$f")" ] ||
			fail "mode none advertises $f $(cat "$q/$f"), the backing device $(cat "$b1/$f")"
	done
	pattern "pass-$PCACHE_RUN_ID" "$MIB" | dd of="/dev/$DISK" bs=1M oflag=direct status=none
	if [ "$(cat "$q/write_zeroes_max_bytes")" -gt 0 ]; then
		blkdiscard --zeroout -o 4096 -l 8192 "/dev/$DISK"
		cmp -s <(dd if="$(backing_path 1)" bs=4096 skip=1 count=2 iflag=direct status=none) \
			<(head -c 8192 /dev/zero) || fail "write zeroes in mode none did not zero the backing device"
		cmp -s <(dd if="$(backing_path 1)" bs=4096 skip=3 count=1 iflag=direct status=none) \
			<(pattern "pass-$PCACHE_RUN_ID" "$MIB" | dd bs=4096 skip=3 count=1 status=none) ||
			fail "write zeroes in mode none zeroed more than asked"
	else
		echo "the backing device takes no write zeroes: not advertised, not tested"
	fi
	echo "backing=$(cat "$B/id")" >"$CACHE/detach"
}

case "$PCACHE_PHASE" in
1)
	ktap_plan 8
	ktap_test "a fresh cache with a backing device" setup
	ktap_test "the disk takes discards and write zeroes of any size" advertised
	ktap_test "zeroed and discarded ranges read back as zeroes, from the cache" zeroes_read_back
	pcvm-powercut "with zeroes and discards in the log"
	;;
2)
	KTAP_NUM=3
	ktap_test "after a power cut, replay serves the same zeroes" after_power_cut
	ktap_test "detach writes the zeroes back and sends the discards down" detach_writes_back
	ktap_test "a whole-device discard, then mkfs.ext4 -E discard and e2fsck" whole_device
	ktap_test "fio: writes and discards side by side, writeback running; verified" fio_discards
	ktap_test "mode none passes discards and write zeroes to the backing device" passthrough
	ktap_finish
	;;
esac
