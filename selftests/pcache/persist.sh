#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# What a cache device records comes back: after a clean reboot and after a
# power cut, registering the cache device without format attaches both
# backing devices again, by their recorded persistent names, with their data.
# A backing disk replaced by another one is never attached in its stead: it
# stays "missing" with no disk, the new disk is left alone, and the cache
# device can still be unregistered.
#
# Phases: 1 format, attach, write, reboot; 2 verify, overwrite, power cut;
# 3 verify, replace disk 1, reboot; 4 verify backing0, backing1 missing.
#
# pcvm: kernels=6.12
. "$(dirname "$0")/lib.sh"

SYS=/sys/bus/pcache
CACHE=$SYS/devices/cache0
SEG=$((4 << 20))
QUOTA=$((128 << 20))
seed=${PCACHE_RUN_ID:?}
# Where each backing device's 16 MiB test region starts, in MiB.
OFF=(0 100)

by_id() {
	echo "/dev/disk/by-id/virtio-$(cat "/sys/block/$1/serial")"
}

region() {
	dd if="$1" bs=1M skip="$2" count="$3" iflag=direct status=none
}

sb_uuid_hex() {
	dd if=/dev/pmem0 bs=4096 skip=1 count=1 iflag=direct status=none |
		od -An -tx1 -j16 -N16 | tr -d ' \n'
}

# table_entry ID: "UUID-HEX PATH" of entry ID of the newest valid slot of the
# backing table on /dev/pmem0 (include/pcache/format.h).
table_entry() {
	python3 - "$1" <<'EOF'
import mmap, os, struct, sys

T = []
for i in range(256):
    c = i
    for _ in range(8):
        c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
    T.append(c)

def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c = T[(c ^ b) & 0xFF] ^ (c >> 8)
    return c

TABLE_SIZE = 64 + 32 * 256
fd = os.open("/dev/pmem0", os.O_RDONLY | os.O_DIRECT)
m = mmap.mmap(-1, 2 * 16384)
os.preadv(fd, [m], 8192)
os.close(fd)
best = None
for s in range(2):
    t = bytearray(m[s * 16384:s * 16384 + TABLE_SIZE])
    crc = struct.unpack_from("<I", t, 0)[0]
    t[0:4] = bytes(4)
    if crc32c(t) != crc:
        continue
    seq = struct.unpack_from("<Q", t, 16)[0]
    if best is None or seq > best[0]:
        best = (seq, t)
if best is None:
    sys.exit("no backing table slot with a valid crc")
e = best[1][64 + 256 * int(sys.argv[1]):][:256]
print(e[8:24].hex(), e[128:].split(b"\0")[0].decode())
EOF
}

# The pcache disks there are, in /sys/block or /dev.
disks_in() {
	local d
	for d in "$1"/pcache*; do
		[ -e "$d" ] && echo "${d##*/}"
	done
	return 0
}

# The disk of backing device ID.
disk_of() {
	local disk
	disk=$(cat "$CACHE/backing$1/disk")
	[ -n "$disk" ] || fail "backing$1 has no disk"
	echo "/dev/$disk"
}

# expected ID PHASE: the 16 MiB that backing device ID's test region holds
# after PHASE wrote to it.
expected() {
	local id=$1 phase=$2 tmp=/tmp/pcache-persist-expected
	pattern "p1-$id-$seed" $((16 << 20)) >"$tmp"
	if [ "$phase" = 1 ]; then
		cat "$tmp"
		return
	fi
	head -c $((4 << 20)) "$tmp"
	pattern "p2-$id-$seed" $((8 << 20))
	tail -c $((4 << 20)) "$tmp"
}

verify_data() {
	local id=$1 phase=$2
	cmp <(region "$(disk_of "$id")" "${OFF[$id]}" 16) <(expected "$id" "$phase") ||
		fail "backing$id ($(disk_of "$id")) does not hold what phase $phase left in MiB ${OFF[$id]}..$((OFF[id] + 16))"
}

# check_attached ID DEV: backing ID is DEV, attached, as recorded.
check_attached() {
	local id=$1 dev=$2 b=$CACHE/backing$1 rec
	[ -d "$b" ] || fail "no backing$id"
	attr_is "$b/id" "$id"
	attr_is "$b/state" attached
	attr_is "$b/path" "$(by_id "$dev")"
	attr_is "$b/size" "$(blockdev --getsize64 "/dev/$dev")"
	attr_is "$b/cache_size" "$QUOTA"
	attr_is "$b/segments_total" $((QUOTA / SEG))
	attr_is "$b/mode" writeback
	rec=$(table_entry "$id")
	[ "$(tr -d - <"$b/uuid")" = "${rec%% *}" ] ||
		fail "backing$id uuid $(cat "$b/uuid"), recorded ${rec%% *}"
	[ -b "$(disk_of "$id")" ] || fail "$(disk_of "$id") is not a block device"
	[ "$(blockdev --getsize64 "$(disk_of "$id")")" = "$(blockdev --getsize64 "/dev/$dev")" ] ||
		fail "$(disk_of "$id") does not have the size of $dev"
	[ "$(excl "/dev/$dev")" = busy ] || fail "/dev/$dev is not held by pcache"
	echo "backing$id: $(cat "$b/path") uuid $(cat "$b/uuid") as $(disk_of "$id")"
}

register_again() {
	load_pcache
	ctl "$SYS/register" "path=/dev/pmem0"
	kmsg_since | grep 'pcache: ' | sed 's/^\[[ 0-9.]*\] //'
	[ -d "$CACHE" ] || fail "no cache0 after register"
	attr_is "$CACHE/state" running
	[ "$(tr -d - <"$CACHE/uuid")" = "$(sb_uuid_hex)" ] || fail "cache0 uuid is not the superblock's"
	attr_is "$CACHE/segments_reserved" $((2 * QUOTA / SEG))
}

test_setup() {
	make_fsdax_namespace
	load_pcache
	ctl "$SYS/register" "path=/dev/pmem0,format"
	ctl "$CACHE/attach" "path=$(by_id vda),size=128M"
	ctl "$CACHE/attach" "path=$(by_id vdb),size=128M"
	check_attached 0 vda
	check_attached 1 vdb
	echo "cache0 uuid $(cat "$CACHE/uuid")"
}

test_write_phase1() {
	local id
	for id in 0 1; do
		pattern "p1-$id-$seed" $((16 << 20)) |
			dd of="$(disk_of "$id")" bs=1M seek="${OFF[$id]}" iflag=fullblock \
				oflag=direct conv=fsync status=none
		verify_data "$id" 1
	done
}

test_restore() {
	register_again
	check_attached 0 vda
	check_attached 1 vdb
	[ ! -e "$CACHE/backing2" ] || fail "a backing2 appeared"
}

test_verify_phase1() {
	verify_data 0 1
	verify_data 1 1
}

test_write_phase2() {
	local id
	for id in 0 1; do
		pattern "p2-$id-$seed" $((8 << 20)) |
			dd of="$(disk_of "$id")" bs=1M seek=$((OFF[id] + 4)) iflag=fullblock \
				oflag=direct conv=fsync status=none
		verify_data "$id" 2
	done
}

test_verify_phase2() {
	verify_data 0 2
	verify_data 1 2
}

test_missing() {
	local b=$CACHE/backing1 path
	register_again
	check_attached 0 vda
	[ -d "$b" ] || fail "backing1 is no longer recorded"
	attr_is "$b/state" missing
	attr_is "$b/disk" ""
	attr_is "$b/id" 1
	path=$(cat "$b/path")
	[ "$path" = "$(table_entry 1 | cut -d' ' -f2)" ] || fail "backing1 path '$path' is not the recorded one"
	[ "$path" != "$(by_id vdb)" ] || fail "the replaced disk has the old serial"
	[ ! -e "$path" ] || fail "$path still exists"
	[ "$(tr -d - <"$b/uuid")" = "$(table_entry 1 | cut -d' ' -f1)" ] || fail "backing1 uuid is not the recorded one"
	[ "$(disks_in /sys/block)" = "$(cat "$CACHE/backing0/disk")" ] || fail "pcache disks: $(disks_in /sys/block)"
	[ "$(disks_in /dev)" = "$(cat "$CACHE/backing0/disk")" ] || fail "pcache disk nodes: $(disks_in /dev)"
	echo "backing1: $path missing, the disk is now $(by_id vdb)"
}

test_missing_logged() {
	local path line
	path=$(cat "$CACHE/backing1/path")
	line=$(dmesg | grep 'pcache: ' | grep -E "backing1|$path" | grep -iE 'missing|not found|cannot|no such' || true)
	[ -n "$line" ] || fail "no 'pcache: ' line says why backing1 ($path) was not attached"
	echo "$line"
}

# A missing backing has no disk and no writeback behind its files: each
# one reads, the tunables take values, a mode switch is refused.
test_missing_files() {
	local b=$CACHE/backing1 f
	while IFS= read -r f; do
		cat "$f" >/dev/null || fail "cannot read ${f#"$CACHE"/}"
	done < <(find "$b" "$b/stats" -maxdepth 1 -type f -perm -u=r)
	ctl_refused ENODEV "$b/mode" writethrough
	attr_is "$b/mode" writeback
	ctl "$b/failing_backing_timeout_ms" 5000
	attr_is "$b/failing_backing_timeout_ms" 5000
	ctl "$b/writeback_delay_ms" 200
	attr_is "$b/writeback_delay_ms" 200
	ctl "$b/dirty_high_percent" 60
	attr_is "$b/dirty_high_percent" 60
	ctl "$b/read_cache" 0
	attr_is "$b/read_cache" 0
	attr_is "$b/state" missing
}

test_replaced_untouched() {
	[ "$(excl /dev/vdb)" = free ] || fail "the replaced disk vdb is held by someone"
	cmp -n "$(blockdev --getsize64 /dev/vdb)" <(dd if=/dev/vdb bs=4M iflag=direct status=none) /dev/zero ||
		fail "the replaced (blank) disk vdb has been written to"
}

test_verify_phase2_backing0() {
	verify_data 0 2
}

test_refuse_reattach() {
	local img=/tmp/pcache-persist-small.img loop link=/dev/disk/by-id/pcache-selftest-small path
	ctl_refused EEXIST "$CACHE/attach" "path=$(by_id vda),backing=0"
	ctl_refused EEXIST "$CACHE/attach" "path=$(by_id vdb),backing=0"
	ctl_refused any "$CACHE/attach" "path=$(by_id vdb),backing=9"
	ctl_refused EINVAL "$CACHE/attach" "path=$(by_id vdb),backing=1,size=128M"
	# A disk of another size at the place of backing1 is not it.
	modprobe -C /dev/null loop 2>/dev/null || true
	truncate -s 512M "$img"
	if loop=$(losetup -f --show "$img" 2>/dev/null); then
		ln -sfn "$loop" "$link"
		ctl_refused EINVAL "$CACHE/attach" "path=$link,backing=1"
		[ "$(excl "$loop")" = free ] || fail "$loop is held after the refusal"
		losetup -d "$loop"
	else
		echo "no loop device: not checking a disk of another size"
	fi
	rm -f "$img" "$link"
	# Nor is the disk recorded as backing1 attached anew, by its recorded
	# name or another: its old log, replayed when backing1 is attached
	# again, would write over what the new one wrote back.  (Here the
	# replaced disk stands in for it.)
	path=$(cat "$CACHE/backing1/path")
	ln -sfn /dev/vdb "$path"
	ln -sfn /dev/vdb "$link"
	ctl_refused EEXIST "$CACHE/attach" "path=$path,size=128M"
	ctl_refused EEXIST "$CACHE/attach" "path=$link,size=128M"
	rm -f "$path" "$link"
	[ ! -e "$CACHE/backing2" ] || fail "the disk recorded as backing1 was attached as backing2"
	[ "$(excl /dev/vdb)" = free ] || fail "the replaced disk vdb is held after the refusals"
	ctl_refused EBUSY "$SYS/unregister" "cache=0"
}

test_unregister_missing() {
	ctl "$CACHE/detach" "backing=0"
	[ ! -e "$CACHE/backing0" ] || fail "backing0 is still there after detach"
	ctl "$SYS/unregister" "cache=0"
	[ ! -e "$CACHE" ] || fail "cache0 is still there after unregister"
	[ "$(excl /dev/pmem0)" = free ] || fail "pmem0 is still held after unregister"
	[ "$(excl /dev/vda)" = free ] || fail "vda is still held after unregister"
	attr_is /sys/module/pcache/refcnt 0
	# The missing backing device stays recorded on the cache device.
	ctl "$SYS/register" "path=/dev/pmem0"
	[ ! -e "$CACHE/backing0" ] || fail "detached backing0 came back"
	attr_is "$CACHE/backing1/state" missing
	attr_is "$CACHE/backing1/disk" ""
	attr_is "$CACHE/segments_reserved" $((QUOTA / SEG))
	[ -z "$(disks_in /sys/block)" ] || fail "pcache disks: $(disks_in /sys/block)"
	[ -z "$(disks_in /dev)" ] || fail "pcache disk nodes: $(disks_in /dev)"
	[ "$(excl /dev/vdb)" = free ] || fail "the replaced disk vdb is held by someone"
}

test_detach_missing() {
	# Its cached data was never written back: forgetting it takes force.
	ctl_refused EBUSY "$CACHE/detach" "backing=1"
	attr_is "$CACHE/backing1/state" missing
	ctl "$CACHE/detach" "backing=1,force"
	dmesg | grep -q 'backing1 forgotten: dropped [0-9]* segments' ||
		fail "no kernel log line saying how much was dropped"
	[ ! -e "$CACHE/backing1" ] || fail "backing1 is still there after detach"
	attr_is "$CACHE/segments_reserved" 0
	ctl "$SYS/unregister" "cache=0"
	ctl "$SYS/register" "path=/dev/pmem0"
	[ ! -e "$CACHE/backing1" ] || fail "detached backing1 came back"
	ctl "$SYS/unregister" "cache=0"
	rmmod pcache
}

case "$PCACHE_PHASE" in
1)
	ktap_plan 15
	ktap_test "format, attach two backing devices by persistent name" test_setup
	ktap_test "write patterns through both pcache disks" test_write_phase1
	pcvm-reboot
	;;
2)
	KTAP_NUM=2
	ktap_test "after a clean reboot, register attaches both backing devices again" test_restore
	ktap_test "data written before the reboot reads back" test_verify_phase1
	ktap_test "overwrite part of it, flushed" test_write_phase2
	# Unflushed writes elsewhere are in flight when the power goes.
	dd if=/dev/urandom of="/dev/$(cat "$CACHE/backing1/disk")" bs=1M seek=512 count=256 \
		oflag=direct status=none &
	sleep 1
	pcvm-powercut "with a registered cache and writes in flight"
	;;
3)
	KTAP_NUM=5
	ktap_test "after a power cut, register attaches both backing devices again" test_restore
	ktap_test "data flushed before the power cut reads back" test_verify_phase2
	pcvm-replace-disk 1
	pcvm-reboot
	;;
4)
	KTAP_NUM=7
	ktap_test "disk 1 replaced: backing0 attached, backing1 missing without a disk" test_missing
	ktap_test "the kernel log says why backing1 is missing" test_missing_logged
	ktap_test "a missing backing's files read and take values; mode refuses" test_missing_files
	ktap_test "the replaced disk is neither held nor written" test_replaced_untouched
	ktap_test "backing0 still holds its data" test_verify_phase2_backing0
	ktap_test "attach backing= and unregister refuse while backing0 is attached" test_refuse_reattach
	ktap_test "unregister works with backing1 missing, which stays recorded" test_unregister_missing
	ktap_test "a missing backing with cached data is forgotten only with force" test_detach_missing
	ktap_finish
	;;
esac
