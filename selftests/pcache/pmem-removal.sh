#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The pmem namespace of a registered cache goes away underneath it (ndctl
# disable-namespace with I/O running): pcache must stop using the mapping,
# fail I/O with EIO, let the cache be unregistered, and replay what was
# acknowledged once the namespace is back.
. "$(dirname "$0")/lib.sh"

SYS=/sys/bus/pcache
CACHE=$SYS/devices/cache0
seed=${PCACHE_RUN_ID:?}

test_namespace_removed() {
	local pid out dev
	make_fsdax_namespace
	load_pcache
	echo path=/dev/pmem0,format >"$SYS/register"
	attach_backing "$(backing_path 0)" size=64M
	# Dirty data is all the cache has of it: nothing is written back.
	echo 3600000 >"$B/writeback_delay_ms"
	pattern "kept-$seed" $((4 << 20)) |
		dd of=/dev/pcache0 bs=1M oflag=direct status=none
	fio --name=under --filename=/dev/pcache0 --ioengine=psync --direct=1 \
		--rw=randwrite --bs=4k --offset=8M --size=8M --rate_iops=200 \
		--time_based --runtime=30 >/tmp/fio-under.out 2>&1 &
	pid=$!
	sleep 3
	[ "$(stat_of dirty_bytes)" -ge $((4 << 20)) ] ||
		fail "only $(stat_of dirty_bytes) bytes dirty"
	kmsg_mark
	out=$(ndctl disable-namespace namespace0.0 2>&1) &&
		fail "ndctl disabled the namespace of a registered cache"
	echo "ndctl refuses: $out"
	dev=$(basename "$(readlink -f /sys/block/pmem0/device)")
	echo "unbinding $dev from nd_pmem under the registered cache"
	echo "$dev" >/sys/bus/nd/drivers/nd_pmem/unbind
	! wait "$pid" || fail "fio went on without an error with the cache's namespace gone"
	grep -m1 'err=' /tmp/fio-under.out | sed 's/^ */fio: /'
	kmsg_since | grep -q 'pmem0 is going away under the cache' ||
		fail "no log line says the namespace went away"
	[ "$(cat "$CACHE/state")" = gone ] || fail "cache0's state is $(cat "$CACHE/state")"
	! dd if=/dev/pcache0 of=/dev/null bs=4k count=1 iflag=direct status=none ||
		fail "a read of /dev/pcache0 succeeded with its cache's namespace gone"
	ctl_refused EIO "$CACHE/detach" "backing=$(stat_of id)"
	ctl "$CACHE/detach" "backing=$(stat_of id),force"
	ctl "$SYS/unregister" cache=0
	rmmod pcache || fail "pcache does not unload"
	echo "$dev" >/sys/bus/nd/drivers/nd_pmem/bind
	wait_for 30 "/dev/pmem0 back" test -b /dev/pmem0
	load_pcache
	ctl "$SYS/register" path=/dev/pmem0
	use_backing "$(backing_path 0)"
	cmp <(pattern "kept-$seed" $((4 << 20))) \
		<(dd if=/dev/pcache0 bs=1M count=4 iflag=direct status=none) ||
		fail "what was acknowledged before the removal did not read back"
}

# One round: the namespace unbound some random time into a register (odd
# rounds) or an unregister (even ones).  The removal notice must either
# wait until the mapping is in use and shut it down, or find no holder; a
# notice working on a cache freed by the unregister shows up as a KASAN
# report on the debug kernel, a lock order as a lockdep one.
unbind_race_round() {
	local round=$1 dev=$2 pid spin i
	wait_for 30 "/dev/pmem0 back" test -b /dev/pmem0
	if ((round % 2)); then
		{ echo path=/dev/pmem0 >"$SYS/register"; } 2>/dev/null &
	else
		ctl "$SYS/register" path=/dev/pmem0
		{ echo cache=0 >"$SYS/unregister"; } 2>/dev/null &
	fi
	pid=$!
	# A few milliseconds at most, without a fork: a register takes about
	# as long here.
	spin=$((RANDOM % 3000))
	for ((i = 0; i < spin; i++)); do :; done
	echo "$dev" >/sys/bus/nd/drivers/nd_pmem/unbind
	wait "$pid" || true
	if [ -e "$CACHE" ]; then
		[ "$(cat "$CACHE/state")" = gone ] ||
			fail "cache0 is $(cat "$CACHE/state") with its namespace unbound"
		ctl "$SYS/unregister" cache=0
		echo "round $round (spin $spin): cache0 registered, gone, unregistered"
	else
		echo "round $round (spin $spin): no cache0 after the unbind"
	fi
	echo "$dev" >/sys/bus/nd/drivers/nd_pmem/bind
}

test_unbind_races() {
	local dev round
	dev=$(basename "$(readlink -f /sys/block/pmem0/device)")
	use_backing "$(backing_path 0)"
	ctl "$CACHE/detach" "backing=$(stat_of id),force"
	ctl "$SYS/unregister" cache=0
	for round in $(seq 1 16); do
		unbind_race_round "$round" "$dev"
	done
	wait_for 30 "/dev/pmem0 back" test -b /dev/pmem0
	rmmod pcache || fail "pcache does not unload"
}

ktap_plan 2
ktap_test "the namespace disabled under a registered cache: EIO, no crash, replayed later" test_namespace_removed
ktap_test "the namespace unbound while a register or an unregister runs" test_unbind_races
ktap_finish
