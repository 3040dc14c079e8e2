#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# A damaged or hostile cache device is refused cleanly: register without
# format refuses a superblock with a bad byte or a well-checksummed field out
# of bounds, and a backing table whose two slots are both bad, with the
# errno of docs/ABI/sysfs-bus-pcache and a kernel log line, holding nothing
# afterwards; one bad table slot loses nothing.  Once the bytes are restored
# the device registers again with its backing device.  Foreign content is
# neither loaded nor formatted over without force.
#
# pcvm: kernels=6.1 timeout=1200
. "$(dirname "$0")/lib.sh"

SYS=/sys/bus/pcache
CACHE=$SYS/devices/cache0
WORK=/tmp/pcache-corrupt
GOOD=$WORK/good.img
# Bytes of metadata: the reserved 4 KiB, the superblock, two table slots.
META=40960
SB=4096
TABLE=8192
SLOT=16384

by_id() {
	echo "/dev/disk/by-id/virtio-$(cat "/sys/block/$1/serial")"
}

no_cache_registered() {
	local c
	for c in "$SYS"/devices/cache*; do
		[ ! -e "$c" ] || fail "$c exists"
	done
}

# meta COMMAND ARGS...: read or rewrite the metadata of /dev/pmem0 (past the
# page cache), recomputing the checksums of what it changes.  The layout and
# checksums are those of include/pcache/format.h: CRC32C, reflected poly
# 0x82F63B78, seed 0xFFFFFFFF, no final xor, over the object with its crc
# field zeroed.  An EXPR is a Python expression over the fields of the object
# changed (and segment_count, for table entries).
#   check                          the checksums agree
#   flip OFFSET...                 invert bytes (checksums left alone)
#   sb-get FIELD | sb-set FIELD EXPR
#   table-get SLOT FIELD | table-set SLOTS FIELD EXPR     (SLOTS: 0 1 0,1)
#   entry-get SLOT ID
#   entry-set SLOTS ID FIELD EXPR  FIELD: an entry field, path STRING,
#                                  uuid HEX, clear, copy SRC-ID
#   zero-slot SLOTS
META_PY='
import mmap, os, struct, sys

DEV = "/dev/pmem0"
META, SB, TABLE, SLOT = 40960, 4096, 8192, 16384
TABLE_SIZE = 64 + 32 * 256
SB_FIELDS = {
    "crc": (0, "<I"), "version": (4, "<I"), "magic": (8, "<Q"),
    "flags": (32, "<Q"), "device_size": (40, "<Q"),
    "segments_offset": (48, "<Q"), "segment_size": (56, "<I"),
    "segment_count": (60, "<I"), "table_offset": (64, "<Q"),
    "table_slot_size": (72, "<I"), "max_backings": (76, "<I"),
}
TABLE_FIELDS = {"crc": (0, "<I"), "nr_entries": (4, "<I"), "magic": (8, "<Q"),
                "seq": (16, "<Q")}
ENTRY_FIELDS = {"flags": (0, "<I"), "mode": (4, "<I"), "size": (24, "<Q"),
                "logical_block_size": (32, "<I"), "quota_segments": (36, "<I")}

CRC_TABLE = []
for i in range(256):
    c = i
    for _ in range(8):
        c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
    CRC_TABLE.append(c)

def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c = CRC_TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c

def read():
    fd = os.open(DEV, os.O_RDONLY | os.O_DIRECT)
    m = mmap.mmap(-1, META)
    n = os.preadv(fd, [m], 0)
    os.close(fd)
    if n != META:
        sys.exit("short read")
    return bytearray(m)

def write(buf):
    m = mmap.mmap(-1, META)
    m[:] = bytes(buf)
    fd = os.open(DEV, os.O_WRONLY | os.O_DIRECT)
    n = os.pwritev(fd, [m], 0)
    os.fsync(fd)
    os.close(fd)
    if n != META:
        sys.exit("short write")

def get(buf, off, fmt):
    return struct.unpack_from(fmt, buf, off)[0]

def crc_of(buf, off, size):
    obj = bytearray(buf[off:off + size])
    obj[0:4] = bytes(4)
    return crc32c(obj)

def fields(buf, base, table):
    return {k: get(buf, base + o, f) for k, (o, f) in table.items()}

def value(expr, names):
    return int(eval(expr, {"__builtins__": {}}, names))

def slots(spec):
    return [int(s) for s in spec.split(",")]

def slot_base(s):
    return TABLE + s * SLOT

def entry_base(s, i):
    return slot_base(s) + 64 + 256 * i

def seal(buf, ss):
    for s in ss:
        struct.pack_into("<I", buf, slot_base(s), crc_of(buf, slot_base(s), TABLE_SIZE))

buf = read()
cmd, a = sys.argv[1], sys.argv[2:]
sb = fields(buf, SB, SB_FIELDS)
if cmd == "check":
    ok = True
    calc = crc_of(buf, SB, 4096)
    print("superblock: crc %#010x, crc32c %#010x" % (sb["crc"], calc))
    ok &= sb["crc"] == calc
    for s in range(2):
        t = fields(buf, slot_base(s), TABLE_FIELDS)
        calc = crc_of(buf, slot_base(s), TABLE_SIZE)
        print("table slot %d: seq %d, crc %#010x, crc32c %#010x" % (s, t["seq"], t["crc"], calc))
        ok &= t["crc"] == calc
    sys.exit(0 if ok else 1)
elif cmd == "flip":
    for off in a:
        buf[int(off, 0)] ^= 0xFF
elif cmd == "sb-get":
    print(sb[a[0]])
    sys.exit(0)
elif cmd == "sb-set":
    off, fmt = SB_FIELDS[a[0]]
    struct.pack_into(fmt, buf, SB + off, value(a[1], sb))
    if a[0] != "crc":
        struct.pack_into("<I", buf, SB, crc_of(buf, SB, 4096))
elif cmd == "table-get":
    print(fields(buf, slot_base(int(a[0])), TABLE_FIELDS)[a[1]])
    sys.exit(0)
elif cmd == "table-set":
    for s in slots(a[0]):
        off, fmt = TABLE_FIELDS[a[1]]
        struct.pack_into(fmt, buf, slot_base(s) + off,
                         value(a[2], fields(buf, slot_base(s), TABLE_FIELDS)))
    if a[1] != "crc":
        seal(buf, slots(a[0]))
elif cmd == "entry-get":
    e = entry_base(int(a[0]), int(a[1]))
    f = fields(buf, e, ENTRY_FIELDS)
    print(buf[e + 8:e + 24].hex(), bytes(buf[e + 128:e + 256]).split(b"\0")[0].decode(),
          " ".join("%s=%d" % kv for kv in f.items()))
    sys.exit(0)
elif cmd == "entry-set":
    i, field = int(a[1]), a[2]
    for s in slots(a[0]):
        e = entry_base(s, i)
        if field == "path":
            p = a[3].encode()
            if len(p) > 128:
                sys.exit("path too long")
            buf[e + 128:e + 256] = p + bytes(128 - len(p))
        elif field == "uuid":
            buf[e + 8:e + 24] = bytes.fromhex(a[3])
        elif field == "clear":
            buf[e:e + 256] = bytes(256)
        elif field == "copy":
            src = entry_base(s, int(a[3]))
            buf[e:e + 256] = buf[src:src + 256]
        else:
            off, fmt = ENTRY_FIELDS[field]
            names = fields(buf, e, ENTRY_FIELDS)
            names["segment_count"] = sb["segment_count"]
            struct.pack_into(fmt, buf, e + off, value(a[3], names))
    seal(buf, slots(a[0]))
elif cmd == "zero-slot":
    for s in slots(a[0]):
        buf[slot_base(s):slot_base(s) + SLOT] = bytes(SLOT)
else:
    sys.exit("meta: unknown command " + cmd)
write(buf)
'
meta() {
	python3 -c "$META_PY" "$@"
}

save_good() {
	dd if=/dev/pmem0 of="$GOOD" bs=4096 count=$((META / 4096)) iflag=direct status=none
}

restore_good() {
	dd if="$GOOD" of=/dev/pmem0 bs=4096 oflag=direct conv=notrunc,fsync status=none
}

# Detach what is attached, unregister, and put the saved metadata back.
release() {
	local b
	if [ -d "$CACHE" ]; then
		for b in "$CACHE"/backing*; do
			if [ -d "$b" ] && [ "$(cat "$b/state")" = attached ]; then
				ctl "$CACHE/detach" "backing=${b##*backing}"
			fi
		done
		ctl "$SYS/unregister" "cache=0"
	fi
	restore_good
}

# The saved metadata registers, with backing0 attached as recorded.
registers_again() {
	restore_good
	ctl "$SYS/register" "path=/dev/pmem0"
	[ -d "$CACHE" ] || fail "the restored metadata does not register"
	attr_is "$CACHE/uuid" "$(cat "$WORK/cache.uuid")"
	attr_is "$CACHE/backing0/state" attached
	attr_is "$CACHE/backing0/path" "$(by_id vda)"
	attr_is "$CACHE/backing0/uuid" "$(cat "$WORK/backing0.uuid")"
	[ -b "/dev/$(cat "$CACHE/backing0/disk")" ] || fail "backing0 has no disk"
	release
}

# head_sum BYTES: a hash of the first BYTES (a multiple of 4 KiB) of pmem0.
head_sum() {
	dd if=/dev/pmem0 bs=4096 count=$(($1 / 4096)) iflag=direct status=none | sha256sum
}

# register_refused ERRNOS WHAT: register without format is refused, writes
# nothing, and nothing is held afterwards.  The metadata stays as it was
# made, so the next case starts from restore_good; each test ends with
# registers_again, which shows the module takes the good metadata after the
# refusals.
register_refused() {
	local sum
	echo "$2:"
	sum=$(head_sum "$META")
	ctl_refused "$1" "$SYS/register" "path=/dev/pmem0"
	no_cache_registered
	[ "$(excl /dev/pmem0 /dev/vda | tr '\n' ' ')" = "free free " ] ||
		fail "$2: pmem0 or vda is held after the refusal"
	[ "$(head_sum "$META")" = "$sum" ] || fail "$2: the refused register wrote to the device"
}

test_setup() {
	mkdir -p "$WORK"
	make_fsdax_namespace
	load_pcache
	ctl "$SYS/register" "path=/dev/pmem0,format"
	ctl "$CACHE/attach" "path=$(by_id vda),size=128M"
	cat "$CACHE/uuid" >"$WORK/cache.uuid"
	cat "$CACHE/backing0/uuid" >"$WORK/backing0.uuid"
	save_good
	ctl "$CACHE/detach" "backing=0"
	ctl "$SYS/unregister" "cache=0"
	restore_good
}

test_checksums() {
	local e
	meta check || fail "the on-media checksums are not CRC32C as format.h describes"
	e=$(meta entry-get 0 0)
	echo "entry 0: $e"
	[ "$(meta entry-get 1 0)" = "$e" ] || fail "the two table slots differ: $(meta entry-get 1 0)"
	[ "$(meta table-get 0 seq)" = "$(meta table-get 1 seq)" ] || fail "the two table slots have different seq"
	[ "${e%% *}" = "$(tr -d - <"$WORK/backing0.uuid")" ] || fail "entry 0 does not hold backing0's uuid"
	[ "$(echo "$e" | cut -d' ' -f2)" = "$(by_id vda)" ] || fail "entry 0 does not hold backing0's path"
}

test_registers() {
	registers_again
}

test_sb_flips() {
	local off want
	for off in 0 4 8 16 60 80 4095; do
		want=EUCLEAN
		# Without its magic, it is no pcache superblock at all.
		[ "$off" -lt 8 ] || [ "$off" -ge 16 ] || want="EINVAL|EUCLEAN"
		meta flip $((SB + off))
		register_refused "$want" "superblock byte $off flipped"
		restore_good
	done
	registers_again
}

test_sb_fields() {
	local spec
	for spec in \
		"segment_count=0xffffffff" \
		"segment_count=0" \
		"segment_count=(device_size - segments_offset) // segment_size + 1" \
		"segment_size=3 << 20" \
		"segment_size=512 << 10" \
		"segment_size=512 << 20" \
		"segment_size=segment_size * 2" \
		"segments_offset=device_size" \
		"segments_offset=0" \
		"segments_offset=segments_offset + 4096" \
		"device_size=device_size * 2" \
		"table_offset=12288" \
		"table_slot_size=8192" \
		"max_backings=33" \
		"flags=2"; do
		meta sb-set "${spec%%=*}" "${spec#*=}"
		register_refused EUCLEAN "superblock $spec, crc valid"
		restore_good
	done
	meta sb-set magic 0x0100656863616371
	register_refused "EINVAL|EUCLEAN" "superblock with another magic, crc valid"
	registers_again
}

test_sb_version() {
	meta sb-set version 2
	register_refused any "superblock of format version 2, crc valid"
	registers_again
}

test_one_slot() {
	local slot damage
	for slot in 0 1; do
		for damage in path crc zero; do
			case $damage in
			path) meta flip $((TABLE + slot * SLOT + 64 + 128 + 10)) ;;
			crc) meta flip $((TABLE + slot * SLOT)) ;;
			zero) meta zero-slot "$slot" ;;
			esac
			ctl "$SYS/register" "path=/dev/pmem0" ||
				fail "table slot $slot damaged ($damage): not registered"
			kmsg_since | grep -q "backing table copy $slot refused" ||
				fail "table slot $slot damaged ($damage): no log line names it"
			attr_is "$CACHE/backing0/state" attached
			attr_is "$CACHE/backing0/path" "$(by_id vda)"
			attr_is "$CACHE/backing0/uuid" "$(cat "$WORK/backing0.uuid")"
			echo "table slot $slot damaged ($damage): registered, backing0 attached"
			release
		done
	done
}

test_both_slots() {
	meta flip $((TABLE + 64 + 128 + 10)) $((TABLE + SLOT + 64 + 128 + 10))
	register_refused EUCLEAN "both table slots with a flipped byte"
	kmsg_since | grep -q 'refusing the backing table: copy 0: .*; copy 1: ' ||
		fail "the log does not give both copies' reasons"
	restore_good
	meta zero-slot 0,1
	register_refused EUCLEAN "both table slots zeroed"
	restore_good
	meta flip $((TABLE + 64 + 128 + 10))
	meta zero-slot 1
	register_refused EUCLEAN "one table slot flipped, the other zeroed"
	registers_again
}

test_newest_slot() {
	local slot
	[ "$(meta table-get 0 seq)" -gt 0 ] || fail "table seq is 0 after an attach"
	for slot in 0 1; do
		# A newer copy in which backing0 was detached.
		meta entry-set "$slot" 0 clear
		meta table-set "$slot" seq "seq + 1"
		ctl "$SYS/register" "path=/dev/pmem0"
		[ ! -e "$CACHE/backing0" ] || fail "slot $slot is newer, without backing0, yet backing0 is there"
		attr_is "$CACHE/segments_reserved" 0
		[ ! -e "/dev/pcache0" ] || fail "slot $slot is newer, without backing0, yet /dev/pcache0 is there"
		echo "newer slot $slot without backing0: loaded"
		release
		# An older copy without it.
		meta entry-set "$slot" 0 clear
		meta table-set "$slot" seq "seq - 1"
		ctl "$SYS/register" "path=/dev/pmem0"
		attr_is "$CACHE/backing0/state" attached
		echo "older slot $slot without backing0: ignored"
		release
	done
}

test_bad_entries() {
	local spec field
	for spec in \
		"path=$(printf 'A%.0s' $(seq 128))" \
		"path=" \
		"flags=flags | 2" \
		"flags=flags | 0x80000000" \
		"mode=4" \
		"quota_segments=0xffffffff" \
		"quota_segments=segment_count + 1" \
		"quota_segments=3" \
		"logical_block_size=0" \
		"logical_block_size=1000" \
		"size=0"; do
		field=${spec%%=*}
		meta entry-set 0,1 0 "$field" "${spec#*=}"
		register_refused EUCLEAN "table entry 0 $field=${spec#*=} in both slots, crc valid"
		restore_good
	done
	# Two entries for one device: the same uuid twice.
	meta entry-set 0,1 1 copy 0
	register_refused EUCLEAN "table entry 1 a copy of entry 0 in both slots, crc valid"
	restore_good
	# Quotas that add up to more than the cache has.
	meta entry-set 0,1 1 copy 0
	meta entry-set 0,1 1 uuid 00112233445566778899aabbccddeeff
	meta entry-set 0,1 1 path /dev/disk/by-id/pcache-selftest-none
	meta entry-set 0,1 1 quota_segments segment_count
	register_refused EUCLEAN "table entries whose quotas exceed the cache, crc valid"
	registers_again
}

test_bad_table_header() {
	meta table-set 0,1 nr_entries 31
	register_refused EUCLEAN "table nr_entries 31 in both slots, crc valid"
	restore_good
	meta table-set 0,1 magic 0
	register_refused EUCLEAN "table magic 0 in both slots, crc valid"
	registers_again
}

# A valid table at the end of the seq space stays loadable after updates
# (it is saved while attached: unregister wants its backings detached).
test_table_seq_max() {
	local slot img="$WORK/seq-max.img"
	meta table-set 0,1 seq "1 << 62"
	ctl "$SYS/register" "path=/dev/pmem0"
	attr_is "$CACHE/backing0/state" attached
	ctl "$CACHE/detach" "backing=0"
	ctl "$CACHE/attach" "path=$(by_id vda),size=128M"
	attr_is "$CACHE/backing0/state" attached
	cat "$CACHE/backing0/uuid" >"$WORK/backing0.new-uuid"
	dd if=/dev/pmem0 of="$img" bs=4096 count=$((META / 4096)) iflag=direct status=none
	ctl "$CACHE/detach" "backing=0"
	ctl "$SYS/unregister" "cache=0"
	dd if="$img" of=/dev/pmem0 bs=4096 oflag=direct conv=notrunc,fsync status=none
	for slot in 0 1; do
		echo "slot $slot: seq $(meta table-get "$slot" seq)"
	done
	ctl "$SYS/register" "path=/dev/pmem0"
	[ -d "$CACHE" ] || fail "a table updated at seq 2^62 does not register"
	attr_is "$CACHE/backing0/state" attached
	attr_is "$CACHE/backing0/uuid" "$(cat "$WORK/backing0.new-uuid")"
	release
	registers_again
}

test_foreign() {
	local sum
	mkfs.ext4 -q -F -E nodiscard /dev/pmem0
	[ "$(meta sb-get magic)" != $((0x0100656863616370)) ] || fail "the pcache superblock survived mkfs.ext4"
	sum=$(head_sum $((4 << 20)))
	echo "ext4 without format:"
	ctl_refused EINVAL "$SYS/register" "path=/dev/pmem0"
	no_cache_registered
	echo "ext4, format without force:"
	ctl_refused any "$SYS/register" "path=/dev/pmem0,format"
	no_cache_registered
	[ "$(head_sum $((4 << 20)))" = "$sum" ] || fail "the refused commands wrote to the ext4 device"
	[ "$(excl /dev/pmem0)" = free ] || fail "pmem0 is still held after the refusals"
	ctl "$SYS/register" "path=/dev/pmem0,format,force"
	attr_is "$CACHE/state" running
	attr_is "$CACHE/segments_reserved" 0
	[ ! -e "$CACHE/backing0" ] || fail "a formatted cache has a backing0"
	meta check
	cat "$CACHE/uuid" >"$WORK/cache.uuid"
	ctl "$SYS/unregister" "cache=0"
}

test_other_cache() {
	local sum uuid
	uuid=$(cat "$WORK/cache.uuid")
	sum=$(head_sum $((4 << 20)))
	echo "a pcache cache, format without force:"
	ctl_refused any "$SYS/register" "path=/dev/pmem0,format"
	no_cache_registered
	[ "$(head_sum $((4 << 20)))" = "$sum" ] || fail "the refused format wrote to the cache device"
	ctl "$SYS/register" "path=/dev/pmem0"
	attr_is "$CACHE/uuid" "$uuid"
	ctl "$SYS/unregister" "cache=0"
	ctl "$SYS/register" "path=/dev/pmem0,format,force"
	[ "$(cat "$CACHE/uuid")" != "$uuid" ] || fail "format,force kept the uuid $uuid"
	ctl "$SYS/unregister" "cache=0"
	attr_is /sys/module/pcache/refcnt 0
	rmmod pcache
}

ktap_plan 14
ktap_test "format, attach a backing device, save the metadata" test_setup
ktap_test "on-media checksums are CRC32C as format.h says" test_checksums
ktap_test "the saved metadata registers with its backing device" test_registers
ktap_test "a flipped superblock byte is refused" test_sb_flips
ktap_test "superblock fields out of bounds with a valid crc are refused" test_sb_fields
ktap_test "another format version is refused" test_sb_version
ktap_test "one damaged table slot loses nothing" test_one_slot
ktap_test "two damaged table slots are refused" test_both_slots
ktap_test "the newest valid table slot wins" test_newest_slot
ktap_test "bad table entries with a valid crc are refused" test_bad_entries
ktap_test "a bad table header with a valid crc is refused" test_bad_table_header
ktap_test "a table at the end of its seq space stays loadable" test_table_seq_max
ktap_test "a filesystem is neither loaded nor formatted over without force" test_foreign
ktap_test "a cache is not formatted over without force" test_other_cache
ktap_finish
