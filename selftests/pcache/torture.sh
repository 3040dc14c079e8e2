#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The power-cut loop of the torture suite (scripts/torture.sh, make
# torture).  Three backing devices share one cache device, each with a small
# quota so that writeback and reclaim never rest: the first takes random
# 4 KiB writes (acked_writes.py), the second carries ext4 and the third XFS,
# each with a writer that replaces files with fsync and rename
# (acked_files.py) and, in turn, one of the workloads of fslib.sh.  Every
# boot ends in a power cut, at a random moment of one of these:
#   io         all of it running
#   detach     the XFS backing being detached (written back)
#   register   the cache device being registered (its log replayed)
#   mode       the first backing switching to another mode and back
#   writeback  writers stopped, dirty data being written back
#   attach     the XFS backing being attached again
# After each cut the next boot registers the cache device again (attaches
# the XFS backing again if its detach had finished), checks that every
# acknowledged write and file reads back, mounts both filesystems (their
# journals replay), checks both read-only (e2fsck -fn, xfs_repair -n), and
# goes on.  At the end everything is detached, and the backing devices alone
# pass the same checks.  A fourth disk, not under pcache, keeps what the
# checks have read of the console log (the verifiers' --state), so that a
# check reads only the lines of the boot before it; the final check reads
# the whole log, so that the state cannot have hidden anything.
#
# PCACHE_TEST_CUTS: number of cuts (4); PCACHE_TEST_DEADLINE: stop cutting
# at this time (seconds since the epoch) even if fewer cuts were made.
# "TORTURE" lines on the console are what scripts/torture.sh sums up.
#
# pcvm: disks=4 timeout=900 kernels=6.12
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/fslib.sh"

CUTS=${PCACHE_TEST_CUTS:-4}
DEADLINE=${PCACHE_TEST_DEADLINE:-0}
EVENTS=(io detach register mode writeback attach)
BLOCKS=4096			# 16 MiB of 4 KiB blocks on the first backing
QUOTA_RAW=16M
QUOTA_FS=48M
FILES=128
CACHE=/sys/bus/pcache/devices/cache0
HERE=$(dirname "$0")
MNT=/mnt/pcache-torture
READY=/tmp/torture-ready	# -raw, -0, -1: a writer's first acknowledgements
run_id=${PCACHE_RUN_ID:?}
cut=$((PCACHE_PHASE - 1))	# cuts survived before this boot

RAW=$(backing_path 0)
FS_DEV=("$(backing_path 1)" "$(backing_path 2)")
FS_TYPE=(ext4 xfs)
MOVABLE=1			# FS_DEV index that is detached and attached
STATE_DEV=$(backing_path 3)	# ext4, not under pcache: the verifiers' state
STATE=/mnt/pcache-torture-state
WHOLE_LOG=""			# set: verify from the whole log, not the state

event_of() {
	echo "${EVENTS[$(($1 % ${#EVENTS[@]}))]}"
}

# workload_of CUT: the external workload and the filesystem it runs on.
workload_of() {
	local names
	read -ra names <<<"$FS_WORKLOADS"
	echo "${names[$(($1 / 2 % ${#names[@]}))]} $(($1 % 2))"
}

rand_ms() {
	echo "$((RANDOM % ($2 - $1 + 1) + $1))"
}

sleep_ms() {
	sleep "$(printf '%d.%03d' $(($1 / 1000)) $(($1 % 1000)))"
}

backing_dir_of() {
	local b
	for b in "$CACHE"/backing*; do
		[ "$(cat "$b/path" 2>/dev/null)" = "$1" ] && echo "$b" && return 0
	done
	return 1
}

# disk_of PATH: the pcache disk of the backing recorded with PATH, or
# nothing if the cache has no attached backing of that path.
disk_of() {
	local b
	b=$(backing_dir_of "$1") || return 0
	[ "$(cat "$b/state")" = attached ] || return 0
	cat "$b/disk"
}

attach_fs() {
	echo "path=${FS_DEV[$1]},size=$QUOTA_FS" >"$CACHE/attach"
}

mount_fs() {
	local i=$1 disk
	disk=$(disk_of "${FS_DEV[$i]}")
	[ -n "$disk" ] || fail "${FS_TYPE[$i]}: no pcache disk for ${FS_DEV[$i]}"
	mkdir -p "$MNT$i"
	mount -t "${FS_TYPE[$i]}" "/dev/$disk" "$MNT$i" ||
		fail "${FS_TYPE[$i]}: mount of /dev/$disk failed"
}

acked_writes() {
	python3 "$HERE/acked_writes.py" "$@" --run "$run_id" --blocks "$BLOCKS"
}

# state_of NAME: the verifier's --state option, unless WHOLE_LOG is set.
state_of() {
	[ -n "$WHOLE_LOG" ] || echo "--state $STATE/$1.json"
}

mount_state() {
	mkdir -p "$STATE"
	mountpoint -q "$STATE" || mount -t ext4 "$STATE_DEV" "$STATE" ||
		fail "cannot mount the state disk $STATE_DEV"
}

acked_files() {
	local i=$1
	shift
	python3 "$HERE/acked_files.py" "$@" --run "$run_id" --tag "${FS_TYPE[$i]}" --files "$FILES"
}

setup() {
	local i
	fs_make ext4 "$STATE_DEV"
	mount_state
	make_fsdax_namespace
	load_pcache
	echo path=/dev/pmem0,format >/sys/bus/pcache/register
	echo "path=$RAW,size=$QUOTA_RAW" >"$CACHE/attach"
	for i in 0 1; do
		attach_fs "$i"
		fs_make "${FS_TYPE[$i]}" "/dev/$(disk_of "${FS_DEV[$i]}")"
		mount_fs "$i"
		mkdir "$MNT$i/acked"
		umount "$MNT$i"
	done
}

register_again() {
	load_pcache
	echo path=/dev/pmem0 >/sys/bus/pcache/register
	dmesg | grep 'pcache:.*replayed' || true
	[ -n "$(disk_of "$RAW")" ] || fail "the first backing is not attached again"
	[ -n "$(disk_of "${FS_DEV[0]}")" ] || fail "the ext4 backing is not attached again"
	if ! backing_dir_of "${FS_DEV[$MOVABLE]}" >/dev/null; then
		echo "the XFS backing was detached before the cut: attach it again"
		attach_fs "$MOVABLE"
	fi
	[ -n "$(disk_of "${FS_DEV[$MOVABLE]}")" ] || fail "the XFS backing is not attached"
	local b
	b=$(backing_dir_of "$RAW")
	[ "$(cat "$b/mode")" = writeback ] || echo writeback >"$b/mode"
}

# verify_fs I DEV: a filesystem after a cut, on DEV (a pcache disk or, at
# the end, the backing device alone): the mount replays its journal, then
# the acknowledged files, then the read-only check.
verify_fs() {
	local i=$1 dev=$2 out
	mkdir -p "$MNT$i"
	mount -t "${FS_TYPE[$i]}" "$dev" "$MNT$i" || fail "${FS_TYPE[$i]}: mount of $dev failed"
	# shellcheck disable=SC2046 # an option and its value, or nothing
	out=$(acked_files "$i" verify "$MNT$i/acked" --log "$PCACHE_CONSOLE_LOG" \
		$(state_of "${FS_TYPE[$i]}")) || {
		echo "$out"
		umount "$MNT$i"
		fail "${FS_TYPE[$i]}: acknowledged files lost or stale"
	}
	echo "$out" | tail -n 1
	echo "TORTURE: verified bytes $(echo "$out" | sed -n 's/.* \([0-9]*\) bytes,.*/\1/p')"
	umount "$MNT$i" || fail "${FS_TYPE[$i]}: umount failed"
	fs_check "${FS_TYPE[$i]}" "$dev"
	echo "TORTURE: fsck clean ${FS_TYPE[$i]}"
}

verify_raw() {
	local out
	# shellcheck disable=SC2046 # an option and its value, or nothing
	out=$(acked_writes verify "$1" --log "$PCACHE_CONSOLE_LOG" $(state_of raw)) || {
		echo "$out" | tail -n 40
		fail "acknowledged writes lost or stale on $1"
	}
	echo "$out" | tail -n 1
	echo "TORTURE: verified bytes $((BLOCKS * 4096))"
}

verify_all() {
	local i
	verify_raw "/dev/$(disk_of "$RAW")"
	for i in 0 1; do
		verify_fs "$i" "/dev/$(disk_of "${FS_DEV[$i]}")"
	done
}

# The end: everything written back and detached; the backing devices alone.
final_check() {
	local b
	for b in "$CACHE"/backing*; do
		echo "backing=$(cat "$b/id")" >"$CACHE/detach"
	done
	echo cache=0 >/sys/bus/pcache/unregister
	rmmod pcache
	WHOLE_LOG=1
	verify_raw "$RAW"
	verify_fs 0 "${FS_DEV[0]}"
	verify_fs 1 "${FS_DEV[1]}"
}

pids=()

# start OUT COMMAND...: COMMAND in its own process group, output to OUT.
start() {
	local out=$1
	shift
	setsid "$@" >"$out" 2>&1 &
	pids+=("$!")
}

stop_all() {
	local p
	for p in "${pids[@]}"; do
		kill -TERM -- "-$p" 2>/dev/null || true
	done
	for p in "${pids[@]}"; do
		wait "$p" 2>/dev/null || true
	done
	pids=()
}

# Mount both filesystems and start every writer and this cut's workload.
start_load() {
	local i gen=$((PCACHE_PHASE * 10000000)) workload fs
	read -r workload fs <<<"$(workload_of "$cut")"
	for i in 0 1; do
		mount_fs "$i" || return 1
	done
	# The ACK lines go to the console, where the next boot reads them.
	rm -f "$READY"-*
	start /dev/stdout python3 "$HERE/acked_writes.py" write "/dev/$(disk_of "$RAW")" \
		--run "$run_id" --blocks "$BLOCKS" --gen-base "$gen" --ready "$READY-raw"
	for i in 0 1; do
		start /dev/stdout python3 "$HERE/acked_files.py" write "$MNT$i/acked" \
			--run "$run_id" --tag "${FS_TYPE[$i]}" --files "$FILES" --gen-base "$gen" \
			--ready "$READY-$i"
	done
	rm -rf "$MNT$fs/work"
	start "/tmp/torture-$workload.out" bash -c \
		". '$HERE/lib.sh'; . '$HERE/fslib.sh'; fs_workload '$workload' '$MNT$fs/work' 600"
	echo "TORTURE: workload $workload on ${FS_TYPE[$fs]}"
}

# Every writer has had writes acknowledged.
writers_ready() {
	local w
	for w in raw 0 1; do
		[ -e "$READY-$w" ] || return 1
	done
}

cut_power() {
	echo "TORTURE: cut $((cut + 1)) during $1, $(awk '{ print $1 }' /proc/uptime) s after boot"
	pcvm-powercut "cut $((cut + 1)) during $1"
}

# The event this boot ends with; the power is cut inside it.
run_event() {
	local event=$1 b xfs_b
	xfs_b=$(backing_dir_of "${FS_DEV[$MOVABLE]}")
	# Under TCG the writers take seconds to start, longer than the shortest
	# random delay: a cut before their first acknowledged write checks nothing.
	wait_for 60 "the writers' first acknowledgements" writers_ready ||
		echo "TORTURE: the writers acknowledged nothing within 60 s"
	case "$event" in
	io)
		sleep_ms "$(rand_ms 3000 9000)"
		cut_power "I/O with writeback and reclaim"
		;;
	writeback)
		sleep_ms "$(rand_ms 3000 6000)"
		stop_all
		echo "dirty bytes: $(cat "$CACHE"/backing*/dirty_bytes | tr '\n' ' ')"
		sleep_ms "$(rand_ms 0 1500)"
		cut_power "writeback with the writers stopped"
		;;
	mode)
		b=$(backing_dir_of "$RAW")
		local modes=(writethrough writearound none)
		local mode=${modes[$((RANDOM % 3))]}
		sleep_ms "$(rand_ms 1000 3000)"
		(echo "$mode" >"$b/mode" && sleep 1 && echo writeback >"$b/mode") &
		sleep_ms "$(rand_ms 0 4000)"
		cut_power "a switch to $mode and back to writeback"
		;;
	detach | attach)
		sleep_ms "$(rand_ms 2000 5000)"
		stop_all
		umount "$MNT$MOVABLE"
		if [ "$event" = attach ]; then
			echo "backing=$(cat "$xfs_b/id")" >"$CACHE/detach"
			(attach_fs "$MOVABLE") &
			sleep_ms "$(rand_ms 0 300)"
			cut_power "attach of the XFS backing"
		fi
		echo "dirty bytes of the XFS backing: $(cat "$xfs_b/dirty_bytes")"
		(echo "backing=$(cat "$xfs_b/id")" >"$CACHE/detach") &
		sleep_ms "$(rand_ms 0 2000)"
		cut_power "detach of the XFS backing (writeback)"
		;;
	esac
}

done_cutting() {
	[ "$cut" -ge "$CUTS" ] && return 0
	[ "$DEADLINE" -gt 0 ] && [ "$(date +%s)" -ge "$DEADLINE" ] && return 0
	return 1
}

# Print the plan after the results (their number depends on the deadline).
finish() {
	echo "1..$KTAP_NUM"
	echo "TORTURE: done after $cut cuts, $KTAP_FAILED failed checks"
	ktap_finish
}

after_cut() {
	mount_state
	register_again
	verify_all
	echo "TORTURE: checked $(awk '{ print $1 }' /proc/uptime) s after boot"
}

if [ "$PCACHE_PHASE" -eq 1 ]; then
	echo "TAP version 13"
	ktap_test "register, attach three backings with small quotas, ext4 and XFS" setup
else
	KTAP_NUM=$(grep -c -E '^(not )?ok [0-9]+ ' "$PCACHE_CONSOLE_LOG" || true)
	KTAP_FAILED=$(grep -c -E '^not ok [0-9]+ ' "$PCACHE_CONSOLE_LOG" || true)
	if [ "$(event_of "$cut")" = register ] && ! done_cutting; then
		load_pcache
		(echo path=/dev/pmem0 >/sys/bus/pcache/register) &
		sleep_ms "$(rand_ms 0 1500)"
		cut_power "registration (log replay)"
	fi
	ktap_test "after cut $cut ($(event_of "$((cut - 1))")): acknowledged writes and files read back, fsck clean" \
		after_cut
fi
[ "$KTAP_FAILED" -eq 0 ] || finish

if done_cutting; then
	ktap_test "after $cut cuts: detached, the backing devices alone hold everything" final_check
	finish
fi

if ! start_load; then
	ktap_not_ok "start the writers and the workload for cut $((cut + 1))"
	finish
fi
run_event "$(event_of "$cut")"
