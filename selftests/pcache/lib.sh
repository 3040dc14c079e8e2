# SPDX-License-Identifier: GPL-2.0
# KTAP output and small helpers for pcache's guest selftests.  Sourced by the
# test programs, which run as root inside a guest started by scripts/vm.sh.
# shellcheck shell=bash

KTAP_NUM=0
KTAP_FAILED=0

# Print the KTAP header and plan.  A test spread over several boots prints it
# in its first phase only, and sets KTAP_NUM to the results already printed
# before it reports more in a later phase.
ktap_plan() {
	echo "TAP version 13"
	echo "1..$1"
}

ktap_ok() {
	KTAP_NUM=$((KTAP_NUM + 1))
	echo "ok $KTAP_NUM $*"
}

ktap_not_ok() {
	KTAP_NUM=$((KTAP_NUM + 1))
	KTAP_FAILED=$((KTAP_FAILED + 1))
	echo "not ok $KTAP_NUM $*"
}

ktap_diag() {
	sed -u 's/^/# /'
}

# ktap_test DESCRIPTION COMMAND...: run COMMAND in a subshell with errexit
# set (its output becomes KTAP diagnostics) and report the result.
ktap_test() {
	local desc=$1 rc
	shift
	(
		set -e
		"$@"
	) 2>&1 | ktap_diag
	rc=${PIPESTATUS[0]}
	if [ "$rc" -eq 0 ]; then
		ktap_ok "$desc"
	else
		echo "# '$desc' failed with status $rc"
		ktap_not_ok "$desc"
	fi
	return 0
}

ktap_finish() {
	failslab_report
	[ "$KTAP_FAILED" -eq 0 ]
	exit
}

# Fail the current check with a message.
fail() {
	echo "$*" >&2
	return 1
}

# A deterministic pseudo-random pattern: pattern SEED BYTES.
pattern() {
	python3 -c 'import random, sys
r = random.Random(sys.argv[1])
sys.stdout.buffer.write(r.randbytes(int(sys.argv[2])))' "$1" "$2"
}

# record_data_offset SECTOR [record]: the byte offset in /dev/pmem0 of the
# data of the newest dirty record that starts at SECTOR (with "record": of
# the record itself), in a segment of the cache on /dev/pmem0 (its
# superblock gives the uuid and geometry: no sysfs needed, so that it works
# before registration too).
record_data_offset() {
	echo 3 >/proc/sys/vm/drop_caches
	python3 - "$1" "${2:-data}" <<'PY'
import struct, sys
sector, what = int(sys.argv[1]), sys.argv[2]
MAGIC, CLEAN, KEYS = 0x79656b70, 0x4, 4096
with open("/dev/pmem0", "rb") as f:
    f.seek(4096)
    sb = f.read(64)
    cache_uuid = sb[16:32]
    first, = struct.unpack_from("<Q", sb, 48)
    seg_size, count = struct.unpack_from("<II", sb, 56)
    found = None
    for base in range(first, first + count * seg_size, seg_size):
        f.seek(base)
        hdr = f.read(64)
        # Free (reclaim erases the magic) or of another cache.
        if hdr[8:16] != b"pcseg\0\0\1" or hdr[16:32] != cache_uuid:
            continue
        gen, = struct.unpack_from("<Q", hdr, 56)
        f.seek(base + KEYS)
        area = f.read(seg_size // 64)
        for i in range(len(area) // 64):
            rec = area[64 * i:64 * i + 64]
            magic, = struct.unpack_from("<I", rec, 4)
            seq, = struct.unpack_from("<Q", rec, 8)
            rec_gen, = struct.unpack_from("<Q", rec, 16)
            start, = struct.unpack_from("<Q", rec, 24)
            data_off, flags = struct.unpack_from("<II", rec, 36)
            if magic == MAGIC and rec_gen == gen and start == sector and not flags & CLEAN:
                if found is None or seq > found[0]:
                    found = (seq, base + data_off, base + KEYS + 64 * i)
if found is None:
    sys.exit("no record of sector %d in the log" % sector)
print(found[2] if what == "record" else found[1])
PY
}

# seg_headers_naming UUID: how many segments of the cache on /dev/pmem0 have
# a header naming the backing device with UUID (its sysfs uuid).  A
# registration counts them as the backing's: they must be the segments it
# owns (segments_used), no more.
seg_headers_naming() {
	python3 - "$1" <<'PY'
import os, struct, sys
SEG_MAGIC = 0x0100006765736370
backing_uuid = bytes.fromhex(sys.argv[1].replace("-", ""))
fd = os.open("/dev/pmem0", os.O_RDONLY)
sb = os.pread(fd, 64, 4096)
cache_uuid = sb[16:32]
first, = struct.unpack_from("<Q", sb, 48)
seg_size, count = struct.unpack_from("<II", sb, 56)
named = 0
for seg in range(count):
    hdr = os.pread(fd, 64, first + seg * seg_size)
    magic, = struct.unpack_from("<Q", hdr, 8)
    named += magic == SEG_MAGIC and hdr[16:32] == cache_uuid and hdr[32:48] == backing_uuid
print(named)
PY
}

# Provision the emulated NVDIMM as an fsdax namespace (/dev/pmem0 with DAX).
make_fsdax_namespace() {
	ndctl create-namespace -f -e namespace0.0 -m fsdax >/dev/null 2>&1 ||
		fail "ndctl create-namespace -m fsdax failed"
	[ -b /dev/pmem0 ] || fail "/dev/pmem0 did not appear"
}

# sysfs_state PATH...: the state a refused command must leave alone, with
# one fork however many attributes there are (forks are slow under TCG):
# every existing PATH, then the contents of the regular files as PATH:LINE.
# Control files and counters that move on their own are left out.
sysfs_state() {
	local f
	local -a files=()
	for f in "$@"; do
		[ -e "$f" ] || continue
		case "${f##*/}" in
		attach | detach | register | unregister | segments_used) continue ;;
		# Writeback statistics move on their own (ext4 commits, writeback).
		dirty_bytes | clean_bytes | written_back_bytes | writeback_errors | segments_reclaimed | waits_for_space) continue ;;
		esac
		echo "$f"
		[ ! -f "$f" ] || files+=("$f")
	done
	[ "${#files[@]}" -eq 0 ] || grep -s -H '' "${files[@]}" || true
}

# Control files written from bash (echo >FILE), as an administrator would.

# strerror() of an errno name: what bash reports when a write fails.
errno_text() {
	case "$1" in
	EBUSY) echo "Device or resource busy" ;;
	EEXIST) echo "File exists" ;;
	EINVAL) echo "Invalid argument" ;;
	EIO) echo "Input/output error" ;;
	ENAMETOOLONG) echo "File name too long" ;;
	ENODEV) echo "No such device" ;;
	ENOENT) echo "No such file or directory" ;;
	ENOSPC) echo "No space left on device" ;;
	ENOTBLK) echo "Block device required" ;;
	EOPNOTSUPP) echo "Operation not supported" ;;
	EUCLEAN) echo "Structure needs cleaning" ;;
	*) echo "unknown errno name $1" ;;
	esac
}

# Everything a refused command must leave as it was: the sysfs tree of the
# caches and backing devices and the pcache disks.
pcache_snapshot() {
	sysfs_state /sys/bus/pcache/devices/* /sys/bus/pcache/devices/*/* \
		/sys/bus/pcache/devices/*/backing*/* \
		/sys/block/pcache* /dev/pcache* /sys/block/pcache*/size
}

# Kernel log lines since the last kmsg_mark.
kmsg_mark() {
	MARK="pcache-selftest-mark-$RANDOM$RANDOM"
	echo "$MARK" >/dev/kmsg
}
kmsg_since() {
	dmesg | sed -n "/$MARK/,\$p" | sed 1d
}

# ctl FILE COMMAND: a command that must succeed.
ctl() {
	local out
	kmsg_mark
	out=$({ echo "$2" >"$1"; } 2>&1) ||
		fail "'$2' > $1 failed (${out##*: }); kernel log: $(kmsg_since | grep 'pcache: ')"
}

# ctl_refused ERRNO[|ERRNO...] FILE COMMAND: writing COMMAND to FILE must
# fail with one of the errnos ("any": whichever), log a "pcache: " line, and
# leave the state as it was.
ctl_refused() {
	local want=$1 file=$2 command=$3 out got log before after ok="" w
	before=$(pcache_snapshot)
	kmsg_mark
	if out=$({ echo "$command" >"$file"; } 2>&1); then
		fail "'$command' > $file succeeded, expected $want"
	fi
	got=${out##*: }
	log=$(kmsg_since | grep 'pcache: ' || true)
	echo "'$command' > ${file#/sys/bus/pcache/}: $got; ${log:-(nothing logged)}" |
		sed 's/^\[[ 0-9.]*\] //'
	for w in ${want//|/ }; do
		if [ "$w" = any ] || [ "$got" = "$(errno_text "$w")" ]; then
			ok=1
		fi
	done
	[ -n "$ok" ] || fail "'$command' > $file: expected $want, got '$got'"
	[ -n "$log" ] || fail "'$command' > $file: no 'pcache: ' line in the kernel log says why"
	after=$(pcache_snapshot)
	[ "$before" = "$after" ] ||
		fail "'$command' > $file changed the state: $(diff <(echo "$before") <(echo "$after"))"
}

# attr_is FILE EXPECTED: a sysfs attribute holds exactly EXPECTED.
attr_is() {
	local got
	got=$(cat "$1") || fail "cannot read $1"
	[ "$got" = "$2" ] || fail "$1 is '$got', expected '$2'"
}

# python3 -c "$WRITE_ERRNO" FILE VALUE: the errno name of one write(2) of
# VALUE, or OK.  SIGUSR1 interrupts the write (EINTR), for commands that
# wait: run it in the background itself, for its pid.
WRITE_ERRNO='import errno, os, signal, sys
def interrupted(*_):
    raise InterruptedError(errno.EINTR, "interrupted")
signal.signal(signal.SIGUSR1, interrupted)
try:
    fd = os.open(sys.argv[1], os.O_WRONLY)
    os.write(fd, sys.argv[2].encode())
    print("OK")
except OSError as e:
    print(errno.errorcode[e.errno])'

# write_errno FILE VALUE: as above.
write_errno() {
	python3 -c "$WRITE_ERRNO" "$1" "$2"
}

# refused_einval FILE VALUE: writing VALUE to FILE fails with EINVAL, logs
# one "pcache: " line and leaves FILE as it was.
refused_einval() {
	local before got n
	before=$(cat "$1")
	dmesg -C
	got=$(write_errno "$1" "$2")
	n=$(dmesg | grep -c 'pcache: ') || true
	echo "${1##*/} <- '$2': $got; $(dmesg | grep 'pcache: ' | sed 's/^\[[ 0-9.]*\] //')"
	[ "$got" = EINVAL ] || fail "${1##*/} <- '$2': $got, not EINVAL"
	[ "$n" = 1 ] || fail "${1##*/} <- '$2': $n log lines, not one"
	[ "$(cat "$1")" = "$before" ] || fail "${1##*/} changed to $(cat "$1")"
}

# backing_path [N]: the persistent name of the guest's Nth test disk (from 0).
backing_path() {
	printf '%s\n' /dev/disk/by-id/virtio-* | sort | sed -n "$((${1:-0} + 1))p"
}

# backing_name [N]: its kernel name (vda...).
backing_name() {
	basename "$(readlink -f "$(backing_path "${1:-0}")")"
}

# use_backing PATH: set B to the backing directory of PATH under $CACHE,
# DISK to the name of its disk.
use_backing() {
	local b
	for b in "$CACHE"/backing*; do
		[ "$(cat "$b/path")" = "$1" ] || continue
		# shellcheck disable=SC2034 # for the caller
		B=$b
		# shellcheck disable=SC2034 # for the caller
		DISK=$(cat "$b/disk")
		return 0
	done
	fail "no backing of $CACHE shows $1"
}

# stat_of NAME: attribute NAME of the backing $B (see use_backing).
stat_of() {
	cat "$B/$1"
}

dirty_is_zero() {
	[ "$(stat_of dirty_bytes)" = 0 ]
}

# writeback_errors_rose N: the attached backing device counts more than N
# writeback errors.
writeback_errors_rose() {
	[ "$(stat_of writeback_errors)" -gt "$1" ]
}

# A write is in flight on /dev/pcache0 (held by write_index_delay_ms, say).
write_in_flight() {
	[ "$(awk '{ print $2 }' /sys/block/pcache0/inflight)" -ge 1 ]
}

# attach_backing PATH OPTIONS: attach PATH to $CACHE, then use_backing it.
attach_backing() {
	echo "path=$1,$2" >"$CACHE/attach"
	use_backing "$1"
}

# run_fio NAME ARGS...: fio must exit 0 and report no error and no failed
# verify; its summary lines become diagnostics.
run_fio() {
	local name=$1 out=/tmp/pcache-fio-$1.out
	shift
	if ! fio --group_reporting "$@" >"$out" 2>&1; then
		cat "$out"
		fail "fio $name failed"
		return
	fi
	grep -E 'err=|issued rwts|WRITE:|READ:' "$out" | sed 's/^ *//' || true
	if grep -E 'err= *[1-9]|verify:|bad (magic|header)|Assertion' "$out"; then
		fail "fio $name reports errors"
	fi
}

# excl DEV...: for each DEV, "busy" if it is opened exclusively (by pcache,
# or mounted), else "free".
excl() {
	python3 -c 'import errno, os, sys
for dev in sys.argv[1:]:
    try:
        os.close(os.open(dev, os.O_RDONLY | os.O_EXCL))
        print("free")
    except OSError as e:
        if e.errno != errno.EBUSY:
            raise
        print("busy")' "$@"
}

# wait_for SECONDS DESCRIPTION COMMAND...: poll until COMMAND succeeds.
wait_for() {
	local secs=$1 what=$2 i
	shift 2
	for ((i = 0; i < secs * 5; i++)); do
		"$@" && return 0
		sleep 0.2
	done
	fail "$what: not within $secs s"
}

# On the debug kernel (pcache_extent marked at boot, see vm.sh), one in a
# hundred allocations from pcache_extent that cannot sleep fails, in every
# program: the mempool's reserve must take over unseen.  inject.sh sets
# harsher rules of its own.
failslab_extents() {
	local fs=/sys/kernel/debug/failslab
	[ "$(cat /sys/kernel/slab/pcache_extent/failslab 2>/dev/null)" = 1 ] || return 0
	[ -d "$fs" ] || mount -t debugfs none /sys/kernel/debug
	echo Y >"$fs/cache-filter"
	echo Y >"$fs/ignore-gfp-wait"
	echo 0 >"$fs/verbose"
	echo 0 >"$fs/space"
	echo 1 >"$fs/interval"
	echo "$FAILSLAB_TIMES" >"$fs/times"
	echo 1 >"$fs/probability"
}
FAILSLAB_TIMES=1000000000

failslab_report() {
	local fs=/sys/kernel/debug/failslab
	[ "$(cat "$fs/probability" 2>/dev/null)" = 1 ] || return 0
	echo "# failslab: $((FAILSLAB_TIMES - $(cat "$fs/times"))) pcache_extent allocations failed on purpose"
}

load_pcache() {
	insmod "$PCACHE_KO"
	failslab_extents
}
