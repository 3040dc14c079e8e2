#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The control plane: a pmem device is registered and formatted as a cache
# device, two backing devices are attached to it, data goes through both
# pcache disks at once and lands on the backing devices, and everything is
# taken down again.  Every refused command fails with the errno that
# docs/ABI/sysfs-bus-pcache gives, logs one "pcache: " line saying why and
# changes nothing.
. "$(dirname "$0")/lib.sh"

SYS=/sys/bus/pcache
CACHE=$SYS/devices/cache0
SEG=$((4 << 20))
QUOTA=$((128 << 20))
MNT=/mnt/pcache-control
seed=${PCACHE_RUN_ID:?}

# The persistent name of disk vdX, as the guest's stand-in for udev made it.
by_id() {
	echo "/dev/disk/by-id/virtio-$(cat "/sys/block/$1/serial")"
}

# The superblock of /dev/pmem0, read past the page cache.
sb_bytes() {
	dd if=/dev/pmem0 bs=4096 skip=1 count=1 iflag=direct status=none
}

# sb_u32 OFFSET: a little-endian u32 of the superblock.
sb_u32() {
	sb_bytes | od -An -tu4 -j"$1" -N4 | tr -d ' '
}

sb_uuid_hex() {
	sb_bytes | od -An -tx1 -j16 -N16 | tr -d ' \n'
}

# region DEV MIB_OFFSET MIB: MIB mebibytes of DEV, past the page cache.
region() {
	dd if="$1" bs=1M skip="$2" count="$3" iflag=direct status=none
}

no_cache_registered() {
	local c
	for c in "$SYS"/devices/cache*; do
		[ ! -e "$c" ] || fail "$c exists"
	done
}

test_refuse_non_dax() {
	local vda_before
	load_pcache
	no_cache_registered
	if [ "$(cat /sys/block/pmem0/queue/dax)" = 0 ]; then
		ctl_refused EOPNOTSUPP "$SYS/register" "path=/dev/pmem0,format"
	else
		echo "pmem0 of the raw namespace supports DAX: not checking its refusal"
	fi
	vda_before=$(region /dev/vda 0 4 | sha256sum)
	ctl_refused EOPNOTSUPP "$SYS/register" "path=$(by_id vda),format"
	[ "$(region /dev/vda 0 4 | sha256sum)" = "$vda_before" ] || fail "the refused format wrote to vda"
	[ "$(excl /dev/vda)" = free ] || fail "vda is still held after the refusal"
	[ "$(excl /dev/pmem0)" = free ] || fail "pmem0 is still held after the refusal"
	no_cache_registered
}

test_refuse_bad_register() {
	local long
	make_fsdax_namespace
	long=/dev/$(printf 'x%.0s' $(seq 130))
	ctl_refused EINVAL "$SYS/register" ""
	ctl_refused EINVAL "$SYS/register" "format"
	ctl_refused EINVAL "$SYS/register" "path=/dev/pmem0,format,bogus"
	ctl_refused EINVAL "$SYS/register" "path=/dev/pmem0,format,segment_size=3M"
	ctl_refused EINVAL "$SYS/register" "path=/dev/pmem0,format,segment_size=512K"
	ctl_refused EINVAL "$SYS/register" "path=/dev/pmem0,format,segment_size=512M"
	ctl_refused EINVAL "$SYS/register" "path=/dev/pmem0,format,segment_size=lots"
	ctl_refused ENOENT "$SYS/register" "path=/dev/pcache-selftest-nonexistent,format"
	ctl_refused ENOTBLK "$SYS/register" "path=/dev/null,format"
	# The ABI says EINVAL for bad options; ENAMETOOLONG says it better.
	ctl_refused "EINVAL|ENAMETOOLONG" "$SYS/register" "path=$long,format"
	# A blank device holds no superblock to load.
	ctl_refused EINVAL "$SYS/register" "path=/dev/pmem0"
	[ "$(excl /dev/pmem0)" = free ] || fail "pmem0 is still held after the refusals"
	no_cache_registered
}

test_register_format() {
	ctl "$SYS/register" "path=/dev/pmem0,format"
	[ -d "$CACHE" ] || fail "no $CACHE after register"
	kmsg_since | grep 'pcache: ' | sed 's/^\[[ 0-9.]*\] //'
	[ "$(excl /dev/pmem0)" = busy ] || fail "pmem0 is not held exclusively by the registered cache"
}

test_cache_attrs() {
	local size total uuid
	size=$(blockdev --getsize64 /dev/pmem0)
	attr_is "$CACHE/path" /dev/pmem0
	attr_is "$CACHE/size" "$size"
	attr_is "$CACHE/segment_size" "$SEG"
	attr_is "$CACHE/segments_reserved" 0
	attr_is "$CACHE/segments_used" 0
	attr_is "$CACHE/state" running
	uuid=$(cat "$CACHE/uuid")
	echo "cache0: uuid $uuid, $(cat "$CACHE/segments_total") segments, $size bytes"
	[[ "$uuid" =~ ^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$ ]] ||
		fail "uuid '$uuid' is not a uuid"
	[ "${uuid//-/}" = "$(sb_uuid_hex)" ] || fail "uuid $uuid is not the one in the superblock ($(sb_uuid_hex))"
	total=$(cat "$CACHE/segments_total")
	[ "$total" -ge 8 ] || fail "segments_total is $total"
	[ "$total" = "$(sb_u32 60)" ] || fail "segments_total $total, the superblock says $(sb_u32 60)"
	# Segments follow the metadata, 2 MiB aligned, within the device.
	((total * SEG <= size - (2 << 20))) || fail "$total segments of $SEG bytes do not fit in $size bytes"
	((total * SEG > size - (2 << 20) - 2 * SEG)) || fail "only $total segments of $SEG bytes in $size bytes"
	! (echo 1 >"$CACHE/segments_total") 2>/dev/null || fail "segments_total is writable"
	attr_is "$SYS/format_version" 1
}

test_register_twice() {
	local meta
	meta=$(dd if=/dev/pmem0 bs=4096 count=10 iflag=direct status=none | sha256sum)
	ctl_refused "EBUSY|EEXIST" "$SYS/register" "path=/dev/pmem0"
	ctl_refused "EBUSY|EEXIST" "$SYS/register" "path=/dev/pmem0,format"
	ctl_refused "EBUSY|EEXIST" "$SYS/register" "path=/dev/pmem0,format,force"
	[ "$(dd if=/dev/pmem0 bs=4096 count=10 iflag=direct status=none | sha256sum)" = "$meta" ] ||
		fail "a refused register changed the metadata of the registered cache"
}

test_rmmod_busy() {
	local refcnt
	refcnt=$(cat /sys/module/pcache/refcnt)
	[ "$refcnt" -gt 0 ] || fail "module refcnt is $refcnt with a cache registered"
	! rmmod pcache 2>/dev/null || fail "rmmod succeeded with a cache registered"
	[ -d /sys/module/pcache ] || fail "module gone"
	attr_is "$CACHE/state" running
}

test_refuse_bad_attach() {
	local a
	a=$(by_id vda)
	ln -sfn ../../pmem0 /dev/disk/by-id/pcache-selftest-pmem0
	ctl_refused EINVAL "$CACHE/attach" "path=$a"
	ctl_refused EINVAL "$CACHE/attach" "size=128M"
	ctl_refused EINVAL "$CACHE/attach" ""
	ctl_refused EINVAL "$CACHE/attach" "path=$a,size=8M"
	ctl_refused EINVAL "$CACHE/attach" "path=$a,size=$((4 * SEG - 512))"
	ctl_refused EINVAL "$CACHE/attach" "path=$a,size=many"
	ctl_refused EINVAL "$CACHE/attach" "path=$a,size=128M,mode=bogus"
	ctl_refused EINVAL "$CACHE/attach" "path=$a,size=128M,bogus"
	ctl_refused ENOSPC "$CACHE/attach" "path=$a,size=4G"
	ctl_refused ENOSPC "$CACHE/attach" "path=$a,size=$((($(cat "$CACHE/segments_total") + 1) * SEG))"
	ctl_refused ENOENT "$CACHE/attach" "path=/dev/disk/by-id/virtio-pcache-selftest-nonexistent,size=128M"
	ctl_refused ENOTBLK "$CACHE/attach" "path=/dev/null,size=128M"
	# The kernel's name may name another disk after a reboot.
	ctl_refused any "$CACHE/attach" "path=/dev/vda,size=128M"
	ctl_refused EINVAL "$CACHE/attach" "path=/dev/disk/by-id/pcache-selftest-pmem0,size=128M"
	[ "$(excl /dev/vda)" = free ] || fail "vda is held after the refusals"
	[ ! -e "$CACHE/backing0" ] || fail "backing0 exists"
}

test_attach_two() {
	ctl "$CACHE/attach" "path=$(by_id vda),size=128M"
	ctl "$CACHE/attach" "path=$(by_id vdb),size=128M"
	kmsg_since | grep 'pcache: ' | sed 's/^\[[ 0-9.]*\] //'
	[ -d "$CACHE/backing0" ] || fail "no backing0"
	[ -d "$CACHE/backing1" ] || fail "no backing1"
}

check_backing() {
	local id=$1 dev=$2 b=$CACHE/backing$1 uuid
	attr_is "$b/id" "$id"
	attr_is "$b/path" "$(by_id "$dev")"
	attr_is "$b/size" "$(blockdev --getsize64 "/dev/$dev")"
	attr_is "$b/cache_size" "$QUOTA"
	attr_is "$b/segments_total" $((QUOTA / SEG))
	attr_is "$b/mode" writeback
	attr_is "$b/state" attached
	attr_is "$b/disk" "pcache$id"
	uuid=$(cat "$b/uuid")
	[[ "$uuid" =~ ^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$ ]] ||
		fail "$b/uuid '$uuid' is not a uuid"
	echo "backing$id: $(cat "$b/path") uuid $uuid, segments_used $(cat "$b/segments_used")"
	[ "$(excl "/dev/$dev")" = busy ] || fail "/dev/$dev is not held exclusively"
}

test_backing_attrs() {
	check_backing 0 vda
	check_backing 1 vdb
	[ "$(cat "$CACHE/backing0/uuid")" != "$(cat "$CACHE/backing1/uuid")" ] ||
		fail "both backing devices have the same uuid"
	attr_is "$CACHE/segments_reserved" $((2 * QUOTA / SEG))
}

test_disk_sizes() {
	local i dev
	for i in 0 1; do
		dev=vd$(echo ab | cut -c$((i + 1)))
		[ -b "/dev/pcache$i" ] || fail "/dev/pcache$i is not a block device"
		[ "$(blockdev --getsize64 "/dev/pcache$i")" = "$(blockdev --getsize64 "/dev/$dev")" ] ||
			fail "/dev/pcache$i has $(blockdev --getsize64 "/dev/pcache$i") bytes, $dev has $(blockdev --getsize64 "/dev/$dev")"
		[ "$(blockdev --getss "/dev/pcache$i")" = "$(blockdev --getss "/dev/$dev")" ] ||
			fail "/dev/pcache$i has $(blockdev --getss "/dev/pcache$i")-byte blocks, $dev $(blockdev --getss "/dev/$dev")"
	done
	[ ! -e /dev/pcache2 ] || fail "/dev/pcache2 exists"
}

test_refuse_attach_again() {
	ln -sfn ../../pcache0 /dev/disk/by-id/pcache-selftest-pcache0
	ctl_refused EEXIST "$CACHE/attach" "path=$(by_id vda),size=16M"
	ctl_refused EEXIST "$CACHE/attach" "path=$(by_id vdb),size=16M"
	ctl_refused EINVAL "$CACHE/attach" "path=/dev/disk/by-id/pcache-selftest-pcache0,size=16M"
}

# fio_both ARGS...: one fio job per pcache disk, at the same time.
fio_both() {
	local out=/tmp/pcache-control-fio.out
	if ! fio --ioengine=libaio --direct=1 --iodepth=8 --verify=crc32c \
		--verify_fatal=1 --randrepeat=1 --randseed="$seed" "$@" \
		--name=pcache0 --filename=/dev/pcache0 \
		--name=pcache1 --filename=/dev/pcache1 >"$out" 2>&1; then
		cat "$out"
		fail "fio $* failed"
	fi
	grep -E 'err=|WRITE:|READ:' "$out" || true
	! grep -E 'err= *[1-9]|verify:' "$out" || fail "fio reports errors"
}

test_fio_mixed() {
	fio_both --rw=randwrite --bsrange=4k-64k --size=64M
}

test_fio_512() {
	fio_both --rw=randwrite --bs=512 --offset=64M --size=2M
}

test_write_patterns() {
	pattern "control-0-$seed" $((8 << 20)) |
		dd of=/dev/pcache0 bs=1M seek=256 iflag=fullblock oflag=direct conv=fsync status=none
	cmp <(region /dev/pcache0 256 8) <(pattern "control-0-$seed" $((8 << 20))) ||
		fail "/dev/pcache0 does not read back what was written"
	mkfs.ext4 -q -F -E nodiscard /dev/pcache1
	mkdir -p "$MNT"
	mount /dev/pcache1 "$MNT"
	pattern "control-1-$seed" $((4 << 20)) >"$MNT/file"
	sync
}

test_unregister_busy() {
	ctl_refused EBUSY "$SYS/unregister" "cache=0"
	ctl_refused ENOENT "$SYS/unregister" "cache=7"
	ctl_refused EINVAL "$SYS/unregister" "cache=x"
	ctl_refused EINVAL "$SYS/unregister" "bogus"
	ctl_refused EINVAL "$SYS/unregister" ""
}

test_detach_busy() {
	exec 3</dev/pcache0
	ctl_refused EBUSY "$CACHE/detach" "backing=0"
	exec 3<&-
	# Mounted.
	ctl_refused EBUSY "$CACHE/detach" "backing=1"
	ctl_refused ENOENT "$CACHE/detach" "backing=5"
	ctl_refused EINVAL "$CACHE/detach" "backing=x"
	ctl_refused EINVAL "$CACHE/detach" "bogus"
}

test_detach_first() {
	ctl "$CACHE/detach" "backing=0"
	[ ! -e "$CACHE/backing0" ] || fail "backing0 is still there"
	[ ! -e /dev/pcache0 ] || fail "/dev/pcache0 is still there"
	[ ! -e /sys/block/pcache0 ] || fail "/sys/block/pcache0 is still there"
	[ -e /dev/pcache1 ] || fail "detaching backing0 took /dev/pcache1 too"
	attr_is "$CACHE/segments_reserved" $((QUOTA / SEG))
	[ "$(excl /dev/vda)" = free ] || fail "vda is still held after detach"
	cmp <(region /dev/vda 256 8) <(pattern "control-0-$seed" $((8 << 20))) ||
		fail "what was written through /dev/pcache0 is not on vda after detach"
}

test_detach_second() {
	umount "$MNT"
	ctl "$CACHE/detach" "backing=1"
	[ ! -e "$CACHE/backing1" ] || fail "backing1 is still there"
	[ ! -e /dev/pcache1 ] || fail "/dev/pcache1 is still there"
	attr_is "$CACHE/segments_reserved" 0
	[ "$(excl /dev/vdb)" = free ] || fail "vdb is still held after detach"
	mount -o ro,noload /dev/vdb "$MNT" || fail "the ext4 made through /dev/pcache1 does not mount from vdb"
	cmp "$MNT/file" <(pattern "control-1-$seed" $((4 << 20))) || {
		umount "$MNT"
		fail "a file written through /dev/pcache1 reads back wrong from vdb"
	}
	umount "$MNT"
}

test_unregister() {
	local uuid
	uuid=$(cat "$CACHE/uuid")
	ctl "$SYS/unregister" "cache=0"
	no_cache_registered
	[ "$(excl /dev/pmem0)" = free ] || fail "pmem0 is still held after unregister"
	attr_is /sys/module/pcache/refcnt 0
	ctl_refused ENOENT "$SYS/unregister" "cache=0"
	# Nothing recorded is left: it registers again without format, empty.
	ctl "$SYS/register" "path=/dev/pmem0"
	[ -d "$CACHE" ] || fail "no cache0 after registering again: $(ls "$SYS/devices")"
	attr_is "$CACHE/uuid" "$uuid"
	attr_is "$CACHE/segments_reserved" 0
	[ ! -e "$CACHE/backing0" ] || fail "detached backing0 came back"
	[ ! -e "$CACHE/backing1" ] || fail "detached backing1 came back"
	[ ! -e /dev/pcache0 ] || fail "/dev/pcache0 came back"
	[ ! -e /dev/pcache1 ] || fail "/dev/pcache1 came back"
}

test_attach_options() {
	# A size is rounded down to whole segments; the mode is recorded.
	ctl "$CACHE/attach" "path=$(by_id vda),size=$((4 * SEG + SEG / 2)),mode=writethrough"
	attr_is "$CACHE/backing0/cache_size" $((4 * SEG))
	attr_is "$CACHE/backing0/segments_total" 4
	attr_is "$CACHE/backing0/mode" writethrough
	attr_is "$CACHE/segments_reserved" 4
	ctl "$CACHE/detach" "backing=0"
	ctl "$SYS/unregister" "cache=0"
}

# A disk has a hardware queue per CPU online when it is made; with one,
# the block layer would give it mq-deadline by default: a lock and a sort
# for every request of a cache whose submit path needs neither.
test_one_queue_no_scheduler() {
	local cpu1=/sys/devices/system/cpu/cpu1/online disk sched queues rc=0
	ctl "$SYS/register" "path=/dev/pmem0"
	echo 0 >"$cpu1" || fail "cannot take cpu1 offline"
	ctl "$CACHE/attach" "path=$(by_id vda),size=$((4 * SEG))" || rc=$?
	echo 1 >"$cpu1" || fail "cannot bring cpu1 back"
	[ "$rc" = 0 ] || return "$rc"
	disk=$(cat "$CACHE/backing0/disk")
	queues=("/sys/block/$disk/mq/"*)
	sched=$(cat "/sys/block/$disk/queue/scheduler")
	echo "made with one CPU online: ${#queues[@]} hardware queue(s), scheduler: $sched"
	ctl "$CACHE/detach" "backing=0"
	ctl "$SYS/unregister" "cache=0"
	[ "${#queues[@]}" = 1 ] || fail "$disk had ${#queues[@]} hardware queues, not one"
	[[ "$sched" == *"[none]"* ]] || fail "$disk was given an I/O scheduler: $sched"
}

test_rmmod() {
	attr_is /sys/module/pcache/refcnt 0
	rmmod pcache
	[ ! -e "$SYS" ] || fail "$SYS is still there after rmmod"
}

ktap_plan 22
ktap_test "register refuses devices without DAX" test_refuse_non_dax
ktap_test "register refuses bad options and paths" test_refuse_bad_register
ktap_test "register with format creates cache0" test_register_format
ktap_test "cache0 attributes" test_cache_attrs
ktap_test "a registered device cannot be registered again" test_register_twice
ktap_test "rmmod is refused while a cache is registered" test_rmmod_busy
ktap_test "attach refuses bad options, sizes and devices" test_refuse_bad_attach
ktap_test "attach two backing devices by persistent name" test_attach_two
ktap_test "backing0 and backing1 attributes" test_backing_attrs
ktap_test "pcache disks have the size and block size of their backing device" test_disk_sizes
ktap_test "attach refuses an attached device and a pcache disk" test_refuse_attach_again
ktap_test "fio randwrite 4k-64k verifies through both disks at once" test_fio_mixed
ktap_test "fio randwrite 512 B verifies through both disks at once" test_fio_512
ktap_test "write a pattern and an ext4 file through the pcache disks" test_write_patterns
ktap_test "unregister refuses while backing devices are attached" test_unregister_busy
ktap_test "detach refuses while the disk is open or mounted" test_detach_busy
ktap_test "detach backing0: disk gone, data on the backing device" test_detach_first
ktap_test "detach backing1: its ext4 mounts from the backing device" test_detach_second
ktap_test "unregister, then register again without format" test_unregister
ktap_test "attach rounds size to segments and records the mode" test_attach_options
ktap_test "a disk made with one CPU online has no I/O scheduler" test_one_queue_no_scheduler
ktap_test "unregistered: rmmod" test_rmmod
ktap_finish
