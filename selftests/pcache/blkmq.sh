#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The block layer's own operations on a pcache disk while fio writes and
# verifies through it, as blktests does them to any blk-mq disk (block/005
# switches the I/O scheduler under I/O, block/008 takes CPUs offline):
# pcache keeps a log head and spare extents per CPU, and writeback and
# reclaim run meanwhile (the share is an eighth of what fio writes).
#
# - cpu1 goes offline and online again, a few tenths of a second each way,
#   for as long as fio runs: no request fails, every block verifies.
# - The scheduler cycles through every one the kernel has (none,
#   mq-deadline, kyber, bfq) under the same load: requests then come merged
#   and from kblockd's workers rather than the submitter.
# - Data written from cpu1 sits in the log behind cpu1's head when cpu1
#   goes offline; detach with cpu1 still offline writes it back, and the
#   backing device alone verifies everything written so far.
# - A disk made while cpu1 was offline (one hardware queue) takes writes
#   from cpu1 once it is back, and they verify.
#
# pcvm: disks=1 disk-size=2G timeout=900 kernels=6.12
. "$(dirname "$0")/lib.sh"

BUS=/sys/bus/pcache
CACHE=$BUS/devices/cache0
CPU1=/sys/devices/system/cpu/cpu1/online
QUOTA_MIB=64
TMPD=$(mktemp -d /tmp/pcache-blkmq.XXXXXX)
seed=${PCACHE_RUN_ID:?}

# fio jobs over SIZE MiB from OFFSET MiB in JOBS regions, 4-64 KiB random
# writes each verified (a read-write job without reads: see verify.sh).
fio_job() {
	local offset=$1 size=$2 jobs=$3 seed=$4
	echo --name=blkmq --ioengine=libaio --direct=1 --iodepth=8 \
		--verify=crc32c --do_verify=1 --verify_fatal=1 --rw=randrw \
		--rwmixread=0 --bsrange=4k-64k --blocksize_unaligned=0 \
		--numjobs="$jobs" --offset="${offset}M" \
		--size="$((size / jobs))M" --offset_increment="$((size / jobs))M" \
		--randseed="$seed"
}
HOTPLUG_JOB=$(fio_job 0 512 2 "$seed")
SCHED_JOB=$(fio_job 512 512 2 $((seed + 1)))
OFFLINE_JOB="$(fio_job 1024 16 1 $((seed + 2))) --cpus_allowed=1"
LATE_JOB="$(fio_job 1056 16 1 $((seed + 3))) --cpus_allowed=1"

hw_queues() {
	local queues=("/sys/block/$DISK/mq/"*)
	echo "${#queues[@]}"
}

cpu1_online() {
	[ "$(cat "$CPU1")" = 1 ] || echo 1 >"$CPU1"
}

# Repeat COMMAND (a function that does one step and says what it did) a
# few tenths of a second apart until $TMPD/stop exists; count the steps
# in $TMPD/steps and record a failure in $TMPD/failed.
repeat_until_stopped() {
	local n=0
	rm -f "$TMPD/stop" "$TMPD/failed"
	echo 0 >"$TMPD/steps"
	while [ ! -e "$TMPD/stop" ]; do
		if ! "$@" >>"$TMPD/steps.log" 2>&1; then
			echo "$* failed at step $n: $(tail -n 3 "$TMPD/steps.log")" >"$TMPD/failed"
			return
		fi
		n=$((n + 1))
		echo "$n" >"$TMPD/steps"
		sleep "0.$((RANDOM % 4 + 1))"
	done
}

# stop_repeating PID WHAT MIN: end the loop of PID, which must have done
# at least MIN steps of WHAT without a failure.
stop_repeating() {
	local pid=$1 what=$2 min=$3 steps
	touch "$TMPD/stop"
	wait "$pid" || true
	steps=$(cat "$TMPD/steps")
	echo "$what: $steps times while fio ran"
	[ ! -e "$TMPD/failed" ] || fail "$(cat "$TMPD/failed")"
	[ "$steps" -ge "$min" ] || fail "$what only $steps times: fio ended too soon to tell"
}

cpu1_cycle() {
	echo 0 >"$CPU1" || return
	sleep "0.$((RANDOM % 4 + 1))"
	echo 1 >"$CPU1"
}

# Every scheduler the disk offers, in turn; back to none at the end of a
# cycle.
scheduler_cycle() {
	local q=/sys/block/$DISK/queue/scheduler s
	for s in "${SCHEDULERS[@]}"; do
		echo "$s" >"$q" || return
		grep -q "\[$s\]" "$q" || { echo "$q shows $(cat "$q") after $s"; return 1; }
		sleep 0.2
	done
}

test_setup() {
	make_fsdax_namespace
	load_pcache
	echo path=/dev/pmem0,format >"$BUS/register"
	attach_backing "$(backing_path 0)" "size=${QUOTA_MIB}M"
	echo 100 >"$B/writeback_delay_ms"
	[ "$(hw_queues)" = 2 ] ||
		fail "$DISK has $(hw_queues) hardware queues with two CPUs online"
}

test_cpu_hotplug() {
	local pid
	use_backing "$(backing_path 0)"
	repeat_until_stopped cpu1_cycle &
	pid=$!
	# shellcheck disable=SC2086 # the job is a list of options
	run_fio hotplug --filename="/dev/$DISK" $HOTPLUG_JOB
	stop_repeating "$pid" "cpu1 offline and online again" 3
	cpu1_online
	echo "meanwhile: $(stat_of written_back_bytes) bytes written back," \
		"$(stat_of segments_reclaimed) segments reclaimed"
	[ "$(stat_of segments_reclaimed)" -gt 0 ] ||
		fail "no segment reclaimed: fio wrote too little to need it"
}

test_scheduler_switch() {
	local pid q m
	use_backing "$(backing_path 0)"
	q=/sys/block/$DISK/queue/scheduler
	for m in kyber-iosched bfq; do
		modprobe -C /dev/null "$m" || echo "no $m module: not switching to it"
	done
	read -ra SCHEDULERS <<<"$(tr -d '[]' <"$q")"
	echo "schedulers: ${SCHEDULERS[*]}"
	[ "${#SCHEDULERS[@]}" -ge 3 ] || fail "only ${SCHEDULERS[*]} to switch among"
	# none last: the disk ends as it began.
	SCHEDULERS=("${SCHEDULERS[@]/none/}" none)
	read -ra SCHEDULERS <<<"${SCHEDULERS[*]}"
	repeat_until_stopped scheduler_cycle &
	pid=$!
	# shellcheck disable=SC2086
	run_fio scheduler --filename="/dev/$DISK" $SCHED_JOB
	stop_repeating "$pid" "every scheduler in turn" 2
	echo none >"$q"
	grep -q '\[none\]' "$q" || fail "$q ends as $(cat "$q")"
}

test_detach_cpu_offline() {
	local dirty rc=0
	use_backing "$(backing_path 0)"
	echo 600000 >"$B/writeback_delay_ms"
	# shellcheck disable=SC2086
	run_fio offline --filename="/dev/$DISK" $OFFLINE_JOB
	dirty=$(stat_of dirty_bytes)
	echo "dirty before cpu1 goes offline: $dirty bytes"
	[ "$dirty" -gt 0 ] || fail "nothing dirty: writeback ran despite writeback_delay_ms"
	echo 0 >"$CPU1"
	echo "backing=$(stat_of id)" >"$CACHE/detach" || rc=$?
	# Back online before any failure ends the test: the next ones need it.
	cpu1_online
	[ "$rc" = 0 ] || fail "detach with cpu1 offline failed"
	[ ! -e "/dev/$DISK" ] || fail "/dev/$DISK is still there after detach"
	# The backing device alone: the last pass over each region.
	# shellcheck disable=SC2086
	run_fio hotplug-backing --filename="$(backing_path 0)" $HOTPLUG_JOB --verify_only
	# shellcheck disable=SC2086
	run_fio scheduler-backing --filename="$(backing_path 0)" $SCHED_JOB --verify_only
	# shellcheck disable=SC2086
	run_fio offline-backing --filename="$(backing_path 0)" $OFFLINE_JOB --verify_only
}

test_cpu_back_later() {
	local rc=0
	echo 0 >"$CPU1"
	attach_backing "$(backing_path 0)" "size=${QUOTA_MIB}M" || rc=$?
	cpu1_online
	[ "$rc" = 0 ] || return "$rc"
	[ "$(hw_queues)" = 1 ] ||
		fail "$DISK made with one CPU online has $(hw_queues) hardware queues"
	# shellcheck disable=SC2086
	run_fio late --filename="/dev/$DISK" $LATE_JOB
	# shellcheck disable=SC2086
	run_fio late-reverify --filename="/dev/$DISK" $LATE_JOB --verify_only
	echo "backing=$(stat_of id)" >"$CACHE/detach"
	# shellcheck disable=SC2086
	run_fio late-backing --filename="$(backing_path 0)" $LATE_JOB --verify_only
}

test_teardown() {
	echo cache=0 >"$BUS/unregister"
	rmmod pcache
}

trap 'cpu1_online; rm -rf "$TMPD"' EXIT

ktap_plan 6
ktap_test "register, attach a backing device with a $QUOTA_MIB MiB share" test_setup
ktap_test "cpu1 offline and online under fio verify" test_cpu_hotplug
ktap_test "I/O scheduler switched under fio verify" test_scheduler_switch
ktap_test "detach with cpu1 offline writes back what cpu1 wrote" test_detach_cpu_offline
ktap_test "a disk made with cpu1 offline takes writes from cpu1 once back" test_cpu_back_later
ktap_test "unregister, rmmod" test_teardown
ktap_finish
