#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The backing device stays crash-consistent on its own while writeback
# runs.  An ext4 filesystem is made on a 256 MiB slice of the first disk,
# which is then put under pcache through dm-log-writes (logging to a
# ramdisk in the guest) with a 16 MiB share of the cache, so that writeback and
# reclaim run all the time.  A filesystem workload (files created, written,
# fsynced, renamed, deleted) runs on /dev/pcache0; then the filesystem is
# unmounted and the backing detached.  The log of everything pcache wrote
# to the backing device is replayed onto a copy of the initial slice, and
# at flush points spread over the log (every flush is the end of a
# writeback round) the replayed device, as it stood after that flush, is
# mounted (replaying ext4's journal, as after a crash) and must pass
# e2fsck -fn.  The replay of the whole log must equal the backing device.
#
# The log is on a ramdisk, not a disk of the guest: dm-log-writes stops
# logging at the first write error, and now and then one of the thousands
# of small log writes to a virtio disk failed with EIO (in two full runs of
# the suite, never in a run of this test alone, with nothing else in the
# guest failing): a log that ends early, and the test failed.
#
# pcvm: disks=2 timeout=1500 kernels=6.12
. "$(dirname "$0")/lib.sh"

BUS=/sys/bus/pcache
CACHE=$BUS/devices/cache0
HERE=$(dirname "$0")
SLICE_SECTORS=$((256 * 2048))
LOG=/dev/ram0
LOG_KIB=$((384 * 1024))
QUOTA=16M
MNT=/tmp/pcache-bc-mnt
CHECK_MNT=/tmp/pcache-bc-check
TMPD=$(mktemp -d /tmp/pcache-bc.XXXXXX)
seed=${PCACHE_RUN_ID:?}

# dm devices: the slice under pcache, the log, the replay target and a
# scratch copy for each check (mounting replays the journal, which writes).
dm_linear() {
	dmsetup create "$1" --table "0 $SLICE_SECTORS linear $2 $3"
	dmsetup mknodes "$1"
}

test_setup() {
	make_fsdax_namespace
	load_pcache
	modprobe -C /dev/null dm_mod
	modprobe -C /dev/null dm_log_writes
	# The workload's writes and their log entries, about 170 MiB.
	modprobe -C /dev/null brd rd_nr=1 rd_size="$LOG_KIB"
	[ -b "$LOG" ] || fail "no ramdisk $LOG for the log"
	dm_linear pcslice /dev/vda 0
	dm_linear pcreplay /dev/vdb 0
	dm_linear pcscratch /dev/vdb $((2 * SLICE_SECTORS))
	mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 /dev/mapper/pcslice ||
		fail "mkfs.ext4 failed"
	dd if=/dev/mapper/pcslice of=/dev/mapper/pcreplay bs=1M iflag=direct \
		oflag=direct status=none || fail "copy of the initial slice failed"
	dmsetup create pclog --table "0 $SLICE_SECTORS log-writes /dev/mapper/pcslice $LOG"
	dmsetup mknodes pclog
	echo path=/dev/pmem0,format >"$BUS/register"
	echo "path=/dev/mapper/pclog,size=$QUOTA" >"$CACHE/attach"
	[ -b /dev/pcache0 ] || fail "no /dev/pcache0"
	echo 100 >"$CACHE/backing0/writeback_delay_ms"
}

# Files of 4 KiB to 2 MiB written, some fsynced, renamed, overwritten in
# place and deleted, about 160 MiB in all: ten times the cache share.
workload() {
	python3 - "$MNT" "$seed" <<'EOF'
import os, random, sys
root, seed = sys.argv[1], sys.argv[2]
r = random.Random(seed)
files, written = [], 0
while written < 160 << 20:
    d = os.path.join(root, "d%d" % r.randrange(8))
    os.makedirs(d, exist_ok=True)
    op = r.random()
    if op < 0.6 or not files:
        name = os.path.join(d, "f%d" % r.randrange(1 << 30))
        size = r.choice([4096, 16384, 65536, 1 << 20, 2 << 20])
        with open(name, "wb") as f:
            f.write(r.randbytes(size))
            if r.random() < 0.5:
                f.flush()
                os.fsync(f.fileno())
        files.append(name)
        written += size
    elif op < 0.75:
        old = r.choice(files)
        new = os.path.join(d, "r%d" % r.randrange(1 << 30))
        os.rename(old, new)
        files[files.index(old)] = new
        dfd = os.open(d, os.O_RDONLY)
        os.fsync(dfd)
        os.close(dfd)
    elif op < 0.9:
        name = r.choice(files)
        with open(name, "r+b") as f:
            size = os.fstat(f.fileno()).st_size
            f.seek(r.randrange(max(1, size - 4096)))
            f.write(r.randbytes(4096))
            os.fsync(f.fileno())
        written += 4096
    else:
        name = files.pop(r.randrange(len(files)))
        os.unlink(name)
print("%d files left, %d MiB written" % (len(files), written >> 20))
EOF
}

test_workload() {
	local b=$CACHE/backing0
	mkdir -p "$MNT"
	mount -t ext4 /dev/pcache0 "$MNT" || fail "mount /dev/pcache0 failed"
	workload || fail "the workload failed"
	umount "$MNT" || fail "umount failed"
	echo "written back $(cat "$b/written_back_bytes") bytes," \
		"$(cat "$b/segments_reclaimed") segments reclaimed," \
		"$(cat "$b/waits_for_space") waits for space"
	[ "$(cat "$b/segments_reclaimed")" -gt 0 ] || fail "no segment was reclaimed"
}

test_detach() {
	echo backing=0 >"$CACHE/detach"
	echo cache=0 >"$BUS/unregister"
	# Removing the target writes the log's final super block.
	dmsetup remove pclog
}

test_replay() {
	cat >"$TMPD/check" <<EOF
#!/bin/bash
set -e
dd if=/dev/mapper/pcreplay of=/dev/mapper/pcscratch bs=1M iflag=direct oflag=direct status=none
mkdir -p $CHECK_MNT
mount -t ext4 /dev/mapper/pcscratch $CHECK_MNT
umount $CHECK_MNT
e2fsck -fn /dev/mapper/pcscratch >$TMPD/fsck.out 2>&1 || { cat $TMPD/fsck.out; exit 1; }
EOF
	chmod +x "$TMPD/check"
	! dmesg | grep -q 'log-writes: Error writing log block' ||
		fail "dm-log-writes failed to write its log, which ends early: this run says nothing about pcache"
	python3 "$HERE/logwrites.py" replay "$LOG" /dev/mapper/pcreplay \
		--check "$TMPD/check" --max-checks 25 || fail "the backing device was not consistent at a flush"
}

test_final_state() {
	cmp <(dd if=/dev/mapper/pcreplay bs=1M iflag=direct status=none | sha256sum) \
		<(dd if=/dev/mapper/pcslice bs=1M iflag=direct status=none | sha256sum) ||
		fail "the replayed log does not end where the backing device is"
	e2fsck -fn /dev/mapper/pcslice >/dev/null || fail "the backing device's filesystem is not clean"
}

test_teardown() {
	dmsetup remove pcscratch pcreplay pcslice
	rmmod pcache brd
	rm -rf "$TMPD"
}

ktap_plan 6
ktap_test "ext4 on a slice, under dm-log-writes, under pcache with a $QUOTA share" test_setup
ktap_test "filesystem workload of 10x the share through /dev/pcache0" test_workload
ktap_test "detach writes everything back" test_detach
ktap_test "the backing device alone is a clean filesystem at every flush point checked" test_replay
ktap_test "the replayed log ends where the backing device is" test_final_state
ktap_test "remove the dm devices, rmmod" test_teardown
ktap_finish
