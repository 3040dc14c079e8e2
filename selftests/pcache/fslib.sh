# SPDX-License-Identifier: GPL-2.0
# Filesystems on pcache disks, and workloads we did not write (Debian's
# stress-ng, dbench, fs_mark and sysbench) to run on them.  Sourced after
# lib.sh by the test programs that use them.
# shellcheck shell=bash

# shellcheck disable=SC2034 # for the programs that source this
FS_TYPES="ext4 xfs"
# shellcheck disable=SC2034
FS_WORKLOADS="stress-ng dbench fsmark sysbench"

# fs_make TYPE DEV
fs_make() {
	case "$1" in
	ext4) mkfs.ext4 -q -F -E nodiscard,lazy_itable_init=0,lazy_journal_init=0 "$2" ;;
	xfs) mkfs.xfs -q -f -K "$2" ;;
	*) fail "no such filesystem type $1" ;;
	esac || fail "mkfs.$1 on $2 failed"
}

# fs_check TYPE DEV: the read-only check of an unmounted filesystem; its
# report on failure.  After a power cut, mount and unmount first: the
# journal is replayed by the mount, and a check of a filesystem with a dirty
# journal reports what the journal would repair.
fs_check() {
	local out rc=0
	case "$1" in
	ext4) out=$(e2fsck -fn "$2" 2>&1) || rc=$? ;;
	xfs) out=$(xfs_repair -n "$2" 2>&1) || rc=$? ;;
	*) fail "no such filesystem type $1" ;;
	esac
	if [ "$rc" -ne 0 ]; then
		printf '%s\n' "$out" | tail -n 40
		fail "$1 on $2: fsck found damage (status $rc)"
	fi
}

# fs_workload NAME DIR SECONDS: run one workload in DIR for about SECONDS,
# small enough for a 1 GiB filesystem under TCG.  Its status is the tool's:
# non-zero if it failed or its own verification found a mismatch.
fs_workload() {
	local name=$1 dir=$2 secs=$3 rc=0
	mkdir -p "$dir"
	case "$name" in
	stress-ng)
		# File and directory stressors that check what they read back.
		stress-ng --temp-path "$dir" --verify --timeout "${secs}s" \
			--hdd 1 --hdd-bytes 8M --hdd-write-size 4K \
			--iomix 1 --iomix-bytes 4M --seek 1 --seek-size 4M \
			--fallocate 1 --fallocate-bytes 4M \
			--sync-file 1 --sync-file-bytes 4M \
			--rename 1 --dir 1 --dir-dirs 64 --link 1 \
			--metrics-brief || rc=$?
		;;
	dbench)
		dbench -c /usr/share/dbench/client.txt -D "$dir" -t "$secs" 2 || rc=$?
		;;
	fsmark)
		# Files are fsynced before close; it stops at the time limit or
		# after 1000 rounds of 64 files.
		timeout "$secs" fs_mark -d "$dir" -s 16384 -n 64 -L 1000 -S 1 -t 2 || rc=$?
		[ "$rc" -ne 124 ] || rc=0
		;;
	sysbench)
		# No --validate: prepare writes zeroes without checksums, so
		# the first read of such a block fails it on any filesystem
		# (seen on the host's own ext4 too).
		(cd "$dir" &&
			sysbench fileio --file-num=8 --file-total-size=32M prepare >/dev/null &&
			sysbench fileio --file-num=8 --file-total-size=32M \
				--file-test-mode=rndrw --file-fsync-freq=16 \
				--time="$secs" run &&
			sysbench fileio --file-num=8 --file-total-size=32M cleanup >/dev/null) || rc=$?
		;;
	*) fail "no such workload $name" ;;
	esac
	return "$rc"
}
