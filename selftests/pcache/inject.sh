#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The kernel's own fault injection, on the debug kernel (FAILSLAB and
# FAIL_MAKE_REQUEST; Debian's kernels have neither):
#   failslab on pcache_extent, pcache's own slab cache (marked at boot with
#   slub_debug=A, which also keeps it apart from the caches of others; the
#   flag is read-only at run time): every allocation from it that cannot
#   sleep fails, while fio writes and verifies 4x the share with writeback
#   and reclaim running.  The extent mempool takes over (its first try
#   never sleeps): no request fails, nothing hangs, faults were injected
#   (the times counter).  Allocations that may sleep are left alone: a
#   GFP_NOIO allocation of one object does not fail, it waits in reclaim,
#   and failing it anyway only makes writers wait for extents the index
#   holds until reclaim frees some.
#   Then allocations that may sleep fail too, one in a hundred, with 16 MiB
#   of 4 KiB writes dirty: a writeback round's private index takes its
#   extents from the slab alone, never from the writes' reserve, so rounds
#   fail (counted) and the next ones take fewer records, until everything
#   is written back; no request fails.
#   fail_make_request on the backing disk: every bio to it fails while fio
#   writes and verifies inside the share: no request fails, writeback errors
#   are counted and retried, a read miss fails with EIO; once the injection
#   stops everything is written back, and the backing disk alone verifies.
#   Then kmemleak scans: no leak of pcache's.  (The console must not say
#   "kmemleak" unless it reports a leak: vm.sh counts the word as a splat.)
#
# pcvm: disks=1 timeout=1800 kernels=debug append=slub_debug=A,pcache_extent
. "$(dirname "$0")/lib.sh"

BUS=/sys/bus/pcache
CACHE=$BUS/devices/cache0
DEBUGFS=/sys/kernel/debug
FAILSLAB=$DEBUGFS/failslab
FAILREQ=$DEBUGFS/fail_make_request
QUOTA_MIB=64
# As many faults as this may be injected; what is left of it tells how many were.
TIMES=1000000
seed=${PCACHE_RUN_ID:?}
BACKING=$(backing_path 0)
DISK_NAME=$(backing_name 0)

wb_errors_counted() {
	[ "$(stat_of writeback_errors)" -gt 0 ]
}

# fio_job OFFSET SIZE SEED: random writes of 4 KiB to 64 KiB, each block
# verified after it is written (see verify.sh).
fio_job() {
	echo --name=inject --ioengine=libaio --direct=1 --iodepth=8 --verify=crc32c \
		--do_verify=1 --verify_fatal=1 --rw=randrw --rwmixread=0 \
		--bsrange=4k-64k --blocksize_unaligned=0 --offset="$1" \
		--size="$2" --randseed="$3"
}
read -ra SLAB_JOB <<<"$(fio_job 0 $((QUOTA_MIB * 4))M "$seed")"
ROUND_JOB=(--name=rounds --ioengine=libaio --direct=1 --iodepth=8 --rw=randwrite
	--bs=4k --offset=320M --size=16M --verify=crc32c --randseed=$((seed + 2)))
read -ra REQ_JOB <<<"$(fio_job 512M $((QUOTA_MIB / 4))M $((seed + 1)))"

# inject DIR PROBABILITY: fail that many percent of what DIR's filter lets
# through, silently (a stack trace per fault would count as a splat).
inject() {
	echo 0 >"$1/verbose"
	echo 1 >"$1/interval"
	echo "$TIMES" >"$1/times"
	echo "$2" >"$1/probability"
}

injected() {
	echo $((TIMES - $(cat "$1/times")))
}

test_setup() {
	[ -d "$FAILSLAB" ] || mount -t debugfs none "$DEBUGFS"
	[ -d "$FAILSLAB" ] || fail "no $FAILSLAB: not the debug kernel?"
	[ -d "$FAILREQ" ] || fail "no $FAILREQ"
	grep -q 'slub_debug=A,pcache_extent' /proc/cmdline ||
		fail "the guest did not boot with slub_debug=A,pcache_extent"
	# The debug kernel may have no hung-task detector; the timeout then
	# tells a hang.
	[ ! -e /proc/sys/kernel/hung_task_timeout_secs ] ||
		echo 60 >/proc/sys/kernel/hung_task_timeout_secs
	make_fsdax_namespace
	load_pcache
	echo path=/dev/pmem0,format >"$BUS/register"
	attach_backing "$BACKING" "size=${QUOTA_MIB}M"
	[ -L /sys/kernel/slab/pcache_extent ] && fail "pcache_extent is merged into another cache"
	[ -d /sys/kernel/slab/pcache_extent ] || fail "no /sys/kernel/slab/pcache_extent"
	[ "$(cat /sys/kernel/slab/pcache_extent/failslab)" = 1 ] ||
		fail "pcache_extent is not marked for failslab"
}

test_failslab() {
	local n
	use_backing "$BACKING"
	echo Y >"$FAILSLAB/cache-filter"
	echo Y >"$FAILSLAB/ignore-gfp-wait"
	inject "$FAILSLAB" 100
	run_fio failslab "${SLAB_JOB[@]}" --filename="/dev/$DISK"
	n=$(injected "$FAILSLAB")
	echo 0 >"$FAILSLAB/probability"
	echo "pcache_extent allocations failed on purpose: $n"
	echo "written back $(stat_of written_back_bytes) bytes, $(stat_of segments_reclaimed) segments reclaimed"
	[ "$n" -gt 0 ] || fail "no allocation failed: failslab did not reach pcache_extent"
	[ "$(stat_of stats/errors)" = 0 ] || fail "$(stat_of stats/errors) requests failed"
	[ "$(stat_of segments_reclaimed)" -gt 0 ] || fail "no segment was reclaimed"
	run_fio failslab-verify "${SLAB_JOB[@]}" --verify_only=1 --filename="/dev/$DISK"
}

test_failslab_rounds() {
	local n errors
	use_backing "$BACKING"
	wait_for 120 "the data of the failslab check written back" dirty_is_zero || return
	# All of it dirty before the first round.
	echo 3600000 >"$B/writeback_delay_ms"
	echo 100 >"$B/dirty_high_percent"
	run_fio rounds "${ROUND_JOB[@]}" --do_verify=0 --filename="/dev/$DISK"
	errors=$(stat_of writeback_errors)
	echo N >"$FAILSLAB/ignore-gfp-wait"
	inject "$FAILSLAB" 1
	echo 50 >"$B/dirty_high_percent"
	echo 100 >"$B/writeback_delay_ms"
	wait_for 900 "writeback with 1% of the extent allocations failing" dirty_is_zero
	n=$(injected "$FAILSLAB")
	echo 0 >"$FAILSLAB/probability"
	echo Y >"$FAILSLAB/ignore-gfp-wait"
	echo "pcache_extent allocations failed on purpose: $n;" \
		"rounds failed: $(($(stat_of writeback_errors) - errors))"
	[ "$(stat_of writeback_errors)" -gt "$errors" ] ||
		fail "no round failed: its index took from the reserve"
	[ "$(stat_of stats/errors)" = 0 ] || fail "$(stat_of stats/errors) requests failed"
	run_fio rounds-verify "${ROUND_JOB[@]}" --verify_only=1 --filename="/dev/$DISK"
}

test_fail_make_request() {
	local n t0
	use_backing "$BACKING"
	# Room for what follows without the backing: clean segments are
	# reclaimed without it, dirty ones are not.
	wait_for 120 "the data of the failslab check written back" dirty_is_zero || return
	echo 1 >"/sys/block/$DISK_NAME/make-it-fail"
	inject "$FAILREQ" 100
	run_fio fail-request "${REQ_JOB[@]}" --filename="/dev/$DISK"
	t0=$SECONDS
	wait_for 30 "writeback errors counted" wb_errors_counted || return
	[ "$(stat_of dirty_bytes)" -gt 0 ] || fail "nothing dirty while every bio to the backing fails"
	# A miss: a MiB never written nor read.
	if dd if="/dev/$DISK" of=/dev/null bs=1M count=1 skip=900 iflag=direct \
		status=none 2>/tmp/pcache-inject-miss; then
		fail "a read miss succeeded while every bio to the backing fails"
	fi
	echo "read miss: $(tail -n 1 /tmp/pcache-inject-miss)"
	n=$(injected "$FAILREQ")
	echo "bios failed on purpose: $n in about $((SECONDS - t0)) s; writeback errors: $(stat_of writeback_errors); dirty: $(stat_of dirty_bytes)"
	[ "$n" -gt 0 ] || fail "no bio failed"
	echo 0 >"$FAILREQ/probability"
	echo 0 >"/sys/block/$DISK_NAME/make-it-fail"
	wait_for 60 "everything written back once bios go through" dirty_is_zero || return
	run_fio fail-request-verify "${REQ_JOB[@]}" --verify_only=1 --filename="/dev/$DISK"
}

test_detach_verify() {
	echo backing=0 >"$CACHE/detach"
	echo cache=0 >"$BUS/unregister"
	run_fio failslab-backing "${SLAB_JOB[@]}" --verify_only=1 --filename="$BACKING"
	run_fio fail-request-backing "${REQ_JOB[@]}" --verify_only=1 --filename="$BACKING"
	run_fio rounds-backing "${ROUND_JOB[@]}" --verify_only=1 --filename="$BACKING"
}

test_leaks() {
	local leaks
	[ -e "$DEBUGFS/kmemleak" ] || fail "no kmemleak"
	echo scan >"$DEBUGFS/kmemleak"
	echo scan >"$DEBUGFS/kmemleak"
	leaks=$(grep -c '^unreferenced object' "$DEBUGFS/kmemleak" || true)
	echo "leak scan: $leaks unreferenced objects in all"
	if grep -q pcache "$DEBUGFS/kmemleak"; then
		grep -B3 -A20 pcache "$DEBUGFS/kmemleak" | head -n 60
		fail "the leak detector reports a leak of pcache's"
	fi
	rmmod pcache || fail "rmmod failed"
}

ktap_plan 6
ktap_test "setup: debugfs fault injection, a ${QUOTA_MIB} MiB share, pcache_extent its own cache" test_setup
ktap_test "failslab on pcache_extent: fio verify of 4x the share, no request fails" test_failslab
ktap_test "failslab on sleeping allocations too: rounds fail and shrink, all written back" \
	test_failslab_rounds
ktap_test "fail_make_request on the backing: writes kept, errors counted, written back once healed" \
	test_fail_make_request
ktap_test "detach: the backing disk alone holds every write" test_detach_verify
ktap_test "leak scan: nothing of pcache's leaked; rmmod" test_leaks
ktap_finish
