#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Replay rejects damaged log records and serves the intact prefix.  One
# writer on one CPU writes blocks 0..N-1 through /dev/pcache0, one record
# each, into one segment; the cache is unregistered, the record of block K
# is damaged in pmem (a flipped byte, a torn record, a record of an earlier
# lap or out of sequence, each with a valid CRC), and registering again must
# serve blocks 0..K-1 from the cache and nothing of K..N-1, without a crash.
# A record holding the last seq there is refuses the backing device instead.
# The segment and the record are found by their contents: the disk's
# partition scan at attach makes read cache fills, whose records may come
# first.
#
# pcvm: disks=1 timeout=600 kernels=6.1
. "$(dirname "$0")/lib.sh"

N=16
K=6
CACHE=/sys/bus/pcache/devices/cache0
SEGMENTS_OFFSET=$((2 << 20))	# PCACHE_SEGMENTS_ALIGN: the first segment
KEYS_OFFSET=4096		# PCACHE_SEG_KEYS_OFFSET

block_pattern() {
	pattern "log-$PCACHE_RUN_ID-$1" 4096
}

# The first MiB of the intact segment is kept on the backing disk, far past
# the blocks under test, so that every boot can start from it; the MiB
# before it says where the segment is (its offset in pmem, in MiB), the MiB
# after it holds pmem's first MiB: the superblock and the backing table,
# whose clean_seq the writeback of an earlier boot raised (over the records
# its read cache fills appended).
SAVE_SEEK=$((512 << 20))

# find_record SECTOR: "OFFSET INDEX" of the data record for SECTOR in the
# log (OFFSET: its segment's, in MiB), read straight from /dev/pmem0.
find_record() {
	python3 - "$1" "$SEGMENTS_OFFSET" "$KEYS_OFFSET" "$(cat "$CACHE/segment_size")" <<'PY'
import struct, sys
sector, first, keys, seg_size = (int(a) for a in sys.argv[1:5])
MAGIC, CLEAN = 0x79656b70, 0x4
with open("/dev/pmem0", "rb") as f:
    f.seek(0, 2)
    size = f.tell()
    for base in range(first, size - seg_size + 1, seg_size):
        f.seek(base + keys)
        area = f.read(seg_size // 64)
        for i in range(len(area) // 64):
            rec = area[64 * i:64 * i + 64]
            magic, = struct.unpack_from("<I", rec, 4)
            start, = struct.unpack_from("<Q", rec, 24)
            flags, = struct.unpack_from("<I", rec, 40)
            if magic == MAGIC and start == sector and not flags & CLEAN:
                print(base >> 20, i)
                sys.exit(0)
sys.exit("no record of sector %d in the log" % sector)
PY
}

setup() {
	make_fsdax_namespace
	load_pcache
	echo path=/dev/pmem0,format >/sys/bus/pcache/register
	echo "path=$(backing_path),size=64M" >"$CACHE/attach"
	# Nothing written back before the reboot: the log alone holds the blocks.
	echo 3600000 >"$CACHE/backing0/writeback_delay_ms"
	local i
	for i in $(seq 0 $((N - 1))); do
		block_pattern "$i" | taskset -c 0 dd of=/dev/pcache0 bs=4096 seek="$i" \
			oflag=direct status=none
	done
	local where last
	where=$(find_record 0)
	last=$(find_record $(((N - 1) * 8)))
	[ "${where% *}" = "${last% *}" ] || fail "the blocks' records are in two segments: $where, $last"
	echo "the records of blocks 0 and $((N - 1)): segment at ${where% *} MiB, records ${where#* } and ${last#* }"
	printf '%-511s\n' "${where% *}" |
		dd of="$(backing_path)" bs=512 seek=$(((SAVE_SEEK >> 9) - 2048)) oflag=direct status=none
	dd if=/dev/pmem0 of="$(backing_path)" bs=1M skip="${where% *}" \
		seek=$((SAVE_SEEK >> 20)) count=1 oflag=direct status=none
	dd if=/dev/pmem0 of="$(backing_path)" bs=1M count=1 \
		seek=$(((SAVE_SEEK >> 20) + 1)) oflag=direct status=none
}

# The segment's offset in pmem, in MiB, as setup saved it.
SEGMENT_MIB=

restore_segment() {
	SEGMENT_MIB=$(dd if="$(backing_path)" bs=512 skip=$(((SAVE_SEEK >> 9) - 2048)) count=1 \
		iflag=direct status=none | tr -dc 0-9)
	[ -n "$SEGMENT_MIB" ] || fail "no segment saved"
	dd if="$(backing_path)" of=/dev/pmem0 bs=1M skip=$((SAVE_SEEK >> 20)) \
		seek="$SEGMENT_MIB" count=1 iflag=direct conv=notrunc status=none
	dd if="$(backing_path)" of=/dev/pmem0 bs=1M skip=$(((SAVE_SEEK >> 20) + 1)) \
		count=1 iflag=direct conv=notrunc status=none
}

# Edit the record of block K in pmem, before the module is loaded.
# flip | torn | lap | seq | seqmax; or modenone: the table (both slots)
# records mode none for backing0.
damage_record() {
	python3 - "$1" $((SEGMENT_MIB * 1048576 + KEYS_OFFSET)) $((K * 8)) <<'PY'
import struct, sys
mode, base, sector = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])

def crc32c(data, crc=0xffffffff):
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82f63b78 if crc & 1 else 0)
    return crc

def seal(rec):
    rec[0:4] = bytes(4)
    rec[0:4] = struct.pack("<I", crc32c(bytes(rec)))

TABLE, SLOT, TABLE_SIZE = 8192, 16384, 64 + 32 * 256
with open("/dev/pmem0", "r+b", buffering=0) as f:
    if mode == "modenone":
        for slot in range(2):
            f.seek(TABLE + slot * SLOT)
            t = bytearray(f.read(TABLE_SIZE))
            t[64 + 4:64 + 8] = struct.pack("<I", 3)   # entry 0's mode
            seal(t)
            f.seek(TABLE + slot * SLOT)
            f.write(t)
        sys.exit(0)
    f.seek(base)
    area = f.read(65536)
    k = next(i for i in range(1, 1024)
             if struct.unpack_from("<Q", area, 64 * i + 24)[0] == sector and
             struct.unpack_from("<I", area, 64 * i + 4)[0] == 0x79656b70 and
             not struct.unpack_from("<I", area, 64 * i + 40)[0] & 0x4)
    f.seek(base + 64 * (k - 1))
    prev = bytearray(f.read(64))
    rec = bytearray(f.read(64))
    if mode == "flip":
        rec[24] ^= 0x01                       # start sector: the CRC fails
    elif mode == "torn":
        rec[32:64] = bytes(32)                # its second half never written
    elif mode == "lap":
        gen = struct.unpack_from("<Q", rec, 16)[0]
        rec[16:24] = struct.pack("<Q", gen ^ 1)
        seal(rec)                             # an earlier lap, valid CRC
    elif mode == "seq":
        rec[8:16] = prev[8:16]                # seq not above the previous
        seal(rec)
    elif mode == "seqmax":
        rec[8:16] = struct.pack("<Q", 1 << 62) # PCACHE_SEQ_MAX: used up
        seal(rec)
    f.seek(base + 64 * k)
    f.write(rec)
PY
}

block_is() {
	cmp -s <(dd if=/dev/pcache0 bs=4096 skip="$1" count=1 iflag=direct status=none) "$2"
}

# Register; blocks before K come from the cache, the rest from the backing.
check_prefix() {
	local prefix=$1 i
	load_pcache
	echo path=/dev/pmem0 >/sys/bus/pcache/register
	[ "$(cat "$CACHE/backing0/state")" = attached ] || fail "backing0 not attached"
	for i in $(seq 0 $((N - 1))); do
		if [ "$i" -lt "$prefix" ]; then
			block_is "$i" <(block_pattern "$i") ||
				fail "block $i, before the damaged record, is not served"
		else
			block_is "$i" <(head -c 4096 /dev/zero) ||
				fail "block $i, from the damaged record on, is served"
		fi
	done
	dmesg | grep 'pcache:.*replayed' | tail -n 1
}

damaged() {
	restore_segment
	damage_record "$1"
	check_prefix "$K"
}

# Register: backing0 must be refused (missing, no disk) with $1 in the log,
# and the cache still goes.
expect_refused() {
	load_pcache
	echo path=/dev/pmem0 >/sys/bus/pcache/register
	[ "$(cat "$CACHE/backing0/state")" = missing ] || fail "backing0 is $(cat "$CACHE/backing0/state")"
	[ ! -e /dev/pcache0 ] || fail "/dev/pcache0 appeared"
	dmesg | grep "pcache: .*$1" || fail "no log line says why"
	echo cache=0 >/sys/bus/pcache/unregister
	rmmod pcache
}

# A record at the last seq there is leaves none for the next write.
seq_used_up() {
	restore_segment
	damage_record seqmax
	expect_refused "sequence numbers are used up"
}

# Dirty records under a mode other than writeback: the module never leaves
# them (leaving writeback drains first), and written back they would
# overwrite what went around the log since.
dirty_in_mode_none() {
	restore_segment
	damage_record modenone
	expect_refused "dirty records in none mode"
}

intact_then_detach() {
	local i
	restore_segment
	check_prefix "$N"
	echo backing=0 >"$CACHE/detach"
	for i in $(seq 0 $((N - 1))); do
		cmp -s <(dd if="$(backing_path)" bs=4096 skip="$i" count=1 iflag=direct status=none) \
			<(block_pattern "$i") || fail "block $i is not on the backing device"
	done
	echo cache=0 >/sys/bus/pcache/unregister
}

MODES=(flip torn lap seq)
case "$PCACHE_PHASE" in
1)
	ktap_plan $((${#MODES[@]} + 4))
	ktap_test "write $N blocks through one CPU's log" setup
	pcvm-reboot
	;;
*)
	KTAP_NUM=$((PCACHE_PHASE - 1))
	mode=${MODES[PCACHE_PHASE - 2]:-}
	if [ -n "$mode" ]; then
		ktap_test "a $mode record ends replay; the records before it are served" damaged "$mode"
		pcvm-reboot
	else
		ktap_test "a record with the last seq: the backing is refused, the log says why" seq_used_up
		ktap_test "dirty records with the mode none recorded: the backing is refused, the log says why" \
			dirty_in_mode_none
		ktap_test "the intact log serves all blocks; detach writes them back" intact_then_detach
		ktap_finish
	fi
	;;
esac
