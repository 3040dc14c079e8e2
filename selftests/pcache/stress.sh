#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The control plane under load.  While fio writes and verifies /dev/pcache0,
# at the same time: two more backing devices are attached and detached as
# fast as it goes, each by its own loop, every attribute in /sys/bus/pcache is read over and over, and
# detaching the busy backing, unregistering the cache and registering its
# device again are tried (and refused).  Nothing crashes, fio's data
# verifies, the counters stay consistent, and afterwards everything detaches,
# the cache unregisters with its metadata intact, no device stays claimed
# and the module unloads: no reference is leaked.
#
# pcvm: disks=3 timeout=1200 kernels=6.1
. "$(dirname "$0")/lib.sh"

BUS=/sys/bus/pcache
CACHE=$BUS/devices/cache0
LOAD_SECONDS=45
QUOTA=256M

TMPD=$(mktemp -d /dev/shm/pcache-stress.XXXXXX)
PY=$TMPD/pcache.py

cat >"$PY" <<'EOF'
import errno, glob, os, sys, time

BUS = "/sys/bus/pcache"
CACHE = BUS + "/devices/cache0"
CACHE_ATTRS = ["path", "uuid", "size", "segment_size", "segments_total",
               "segments_reserved", "segments_used", "state"]
BACKING_ATTRS = ["id", "path", "uuid", "size", "cache_size", "segments_total",
                 "segments_used", "mode", "state", "disk"]
MODES = ["writeback", "writethrough", "writearound", "none"]


def errname(e):
    if e.errno == errno.EOPNOTSUPP:
        return "EOPNOTSUPP"
    return errno.errorcode.get(e.errno, "errno%d" % e.errno)


def write(path, data):
    try:
        fd = os.open(path, os.O_WRONLY)
    except OSError as e:
        return errname(e)
    try:
        n = os.write(fd, data.encode())
        return "OK" if n == len(data) else "SHORT%d" % n
    except OSError as e:
        return errname(e)
    finally:
        os.close(fd)


def read(path):
    try:
        with open(path) as f:
            return "OK", f.read().rstrip("\n")
    except OSError as e:
        return errname(e), None


class Report:
    def __init__(self, who):
        self.who = who
        self.counts = {}
        self.problems = []

    def count(self, key):
        self.counts[key] = self.counts.get(key, 0) + 1

    def problem(self, msg):
        if len(self.problems) < 20:
            self.problems.append(msg)
        self.count("problems")

    def done(self):
        for key in sorted(self.counts):
            print("%s: %s x%d" % (self.who, key, self.counts[key]))
        for msg in self.problems:
            print("%s: %s" % (self.who, msg))
        return 1 if self.problems else 0


def churn(dev, secs):
    """Attach dev and detach it again, as fast as it goes: both succeed."""
    r = Report("churn " + dev.rsplit("/", 1)[1])
    end = time.monotonic() + secs
    i = 0
    while time.monotonic() < end:
        mode = MODES[i % len(MODES)]
        i += 1
        res = write(CACHE + "/attach", "path=%s,size=16M,mode=%s" % (dev, mode))
        r.count("attach " + res)
        if res != "OK":
            r.problem("attach %s mode=%s: %s" % (dev, mode, res))
            time.sleep(0.1)
            continue
        found = None
        for d in glob.glob(CACHE + "/backing*"):
            if read(d + "/path")[1] == dev:
                found = d
        if found is None:
            r.problem("attached %s, but no backing has its path" % dev)
            continue
        st, disk = read(found + "/disk")
        if st != "OK" or not os.path.exists("/sys/block/%s" % disk):
            r.problem("%s: disk %s (%s) does not exist" % (found, disk, st))
        if read(found + "/mode")[1] != mode:
            r.problem("%s: mode is not %s" % (found, mode))
        bid = found.rsplit("backing", 1)[1]
        res = write(CACHE + "/detach", "backing=" + bid)
        r.count("detach " + res)
        if res != "OK":
            r.problem("detach backing%s: %s" % (bid, res))
        elif read(found + "/path")[1] == dev:
            # The other loop may have taken the slot since: not by this path.
            r.problem("%s still there after detach" % found)
    return r.done()


def readers(secs, quota0):
    """Read every attribute over and over; the stable ones never fail."""
    r = Report("readers")
    end = time.monotonic() + secs
    while time.monotonic() < end:
        st, v = read(BUS + "/format_version")
        r.count("read " + st)
        if v != "1":
            r.problem("format_version: %s %s" % (st, v))
        for a in CACHE_ATTRS:
            st, v = read(CACHE + "/" + a)
            r.count("read " + st)
            if st != "OK":
                r.problem("cache0/%s: %s" % (a, st))
            elif a == "state" and v != "running":
                r.problem("cache0/state: %s" % v)
            elif a == "segments_reserved" and int(v) not in (quota0, quota0 + 4, quota0 + 8):
                r.problem("cache0/segments_reserved: %s (backing0 has %d)" % (v, quota0))
        for d in sorted(glob.glob(CACHE + "/backing*")):
            stable = d.endswith("/backing0")
            for a in BACKING_ATTRS:
                st, v = read(d + "/" + a)
                r.count("read " + st)
                if st != "OK" and (stable or st not in ("ENOENT", "ENODEV")):
                    r.problem("%s/%s: %s" % (d, a, st))
                elif stable and a == "state" and v != "attached":
                    r.problem("backing0/state: %s" % v)
                elif stable and a == "disk" and v != "pcache0":
                    r.problem("backing0/disk: %s" % v)
    return r.done()


def busy(deadline, dev0, fio_pid):
    """Try what must be refused while fio has pcache0 open.

    Until a wall-clock deadline set when fio started, well before fio's
    time is up: on a loaded machine this loop may start late, and fio's
    jobs close pcache0 a while before the fio process exits.
    """
    r = Report("busy")
    tries = [
        (CACHE + "/detach", "backing=0", "EBUSY"),
        (BUS + "/unregister", "cache=0", "EBUSY"),
        (BUS + "/register", "path=/dev/pmem0", "EBUSY"),
        (BUS + "/register", "path=/dev/pmem0,format,force", "EBUSY"),
        (CACHE + "/attach", "path=%s,size=16M" % dev0, "EEXIST"),
    ]
    i = 0
    while time.time() < deadline and os.path.exists("/proc/%d" % fio_pid):
        path, cmd, want = tries[i % len(tries)]
        i += 1
        res = write(path, cmd)
        r.count("%s > %s: %s" % (cmd, path.rsplit("/", 1)[1], res))
        if res != want:
            r.problem("%s > %s: %s, expected %s" % (cmd, path, res, want))
        time.sleep(0.2)
    return r.done()


cmd = sys.argv[1]
if cmd == "churn":
    sys.exit(churn(sys.argv[2], float(sys.argv[3])))
elif cmd == "readers":
    sys.exit(readers(float(sys.argv[2]), int(sys.argv[3])))
elif cmd == "busy":
    sys.exit(busy(float(sys.argv[2]), sys.argv[3], int(sys.argv[4])))
elif cmd == "write":
    print(write(sys.argv[2], sys.argv[3]))
elif cmd == "can-claim":
    try:
        os.close(os.open(sys.argv[2], os.O_RDONLY | os.O_EXCL))
        print("OK")
    except OSError as e:
        print(errname(e))
else:
    sys.exit("unknown command " + cmd)
EOF

# What the harness counts as a kernel splat (scripts/vm.sh), and sysfs
# complaining about a duplicate name.  The loops log so much that the kernel
# log buffer wraps: watch it while they run.
SPLAT_RE='WARNING: |BUG: |BUG at|Oops|general protection fault|Kernel panic|RCU stall|rcu_.* detected stall|possible circular locking|possible recursive locking|inconsistent lock state|lockdep|KASAN|UBSAN|kmemleak|blocked for more than|Call Trace|cannot create duplicate'

# Kernel log lines of a splat in FILE (a copy of the log), with context.
splats() {
	grep -E -B2 -m3 "$SPLAT_RE" "$1"
}

# The persistent name (/dev/disk/by-id/virtio-SERIAL) of disk vdX.
by_id() {
	local link
	for link in /dev/disk/by-id/virtio-*; do
		[ "$(readlink "$link")" = "../../$1" ] && echo "$link" && return 0
	done
	echo "/dev/disk/by-id/no-name-for-$1"
}
B0=$(by_id vda)
B1=$(by_id vdb)
B2=$(by_id vdc)

# ok FILE COMMAND: the command succeeds.
ok() {
	local got
	got=$(python3 "$PY" write "$1" "$2")
	echo "$2 > ${1#"$BUS"/}: $got"
	[ "$got" = OK ] || fail "expected success: $(dmesg | grep 'pcache: ' | tail -n 1)"
}

test_setup() {
	load_pcache
	make_fsdax_namespace
	dd if=/dev/zero of=/dev/pmem0 bs=1M count=1 oflag=direct conv=fsync status=none
	[ -b "$B0" ] || fail "no persistent name for vda"
	[ -b "$B1" ] || fail "no persistent name for vdb"
	[ -b "$B2" ] || fail "no persistent name for vdc"
	ok "$BUS/register" "path=/dev/pmem0,format"
	ok "$CACHE/attach" "path=$B0,size=$QUOTA"
	[ "$(cat "$CACHE/backing0/disk")" = pcache0 ] || fail "backing0's disk is not pcache0"
	[ -b /dev/pcache0 ] || fail "no /dev/pcache0"
}

# fio on pcache0 and, while it runs, the three loops.  Results go to files
# that the next tests look at.
test_run() {
	local fio_pid pids=() pid i quota0 watcher busy_deadline
	quota0=$(cat "$CACHE/backing0/segments_total")
	dmesg -W >"$TMPD/kernel.log" 2>&1 &
	watcher=$!
	(
		cd "$TMPD" || exit 1
		fio --name=stress --filename=/dev/pcache0 --rw=randrw --bsrange=4k-64k \
			--direct=1 --ioengine=libaio --iodepth=16 --numjobs=2 \
			--size=64M --offset_increment=64M --time_based \
			--runtime=$((LOAD_SECONDS + 15)) --verify=crc32c \
			--verify_backlog=256 --verify_fatal=1 --verify_state_save=0 \
			--group_reporting --output="$TMPD/fio.out"
		echo $? >"$TMPD/fio.rc"
	) &
	fio_pid=$!
	# fio's jobs run LOAD_SECONDS + 15 s from here: the busy loop stops
	# LOAD_SECONDS from here, however late it starts.
	busy_deadline=$(($(date +%s) + LOAD_SECONDS))
	for i in $(seq 300); do
		find /proc/[0-9]*/fd -lname /dev/pcache0 2>/dev/null | grep -q . && break
		[ ! -e "$TMPD/fio.rc" ] || break
		sleep 0.1
	done
	find /proc/[0-9]*/fd -lname /dev/pcache0 2>/dev/null | grep -q . ||
		fail "fio did not open /dev/pcache0 (after $i tries)"
	fio_pid=$(pgrep -o -x fio) || fail "no fio process"
	echo "fio ($fio_pid) has /dev/pcache0 open; churning for ${LOAD_SECONDS}s"
	python3 "$PY" churn "$B1" "$LOAD_SECONDS" >"$TMPD/churn.out" 2>&1 &
	pids+=($!)
	python3 "$PY" churn "$B2" "$LOAD_SECONDS" >"$TMPD/churn2.out" 2>&1 &
	pids+=($!)
	python3 "$PY" readers "$LOAD_SECONDS" "$quota0" >"$TMPD/readers.out" 2>&1 &
	pids+=($!)
	python3 "$PY" busy "$busy_deadline" "$B0" "$fio_pid" >"$TMPD/busy.out" 2>&1 &
	pids+=($!)
	for pid in "${pids[@]}"; do
		wait "$pid" && echo 0 >"$TMPD/$pid.rc" || echo $? >"$TMPD/$pid.rc"
	done
	echo "${pids[0]}" >"$TMPD/churn.pid"
	echo "${pids[1]}" >"$TMPD/churn2.pid"
	echo "${pids[2]}" >"$TMPD/readers.pid"
	echo "${pids[3]}" >"$TMPD/busy.pid"
	while [ ! -e "$TMPD/fio.rc" ]; do
		sleep 1
	done
	sleep 1
	kill "$watcher"
	wait
	echo "fio exited with $(cat "$TMPD/fio.rc")"
}

test_kernel_log() {
	[ -e "$TMPD/kernel.log" ] || fail "the kernel log was not watched"
	echo "$(grep -c 'pcache: ' "$TMPD/kernel.log") pcache lines in the kernel log"
	if splats "$TMPD/kernel.log"; then
		fail "the kernel complained under load (lines above)"
	fi
}

# The result of a loop: its report, and its exit status.
loop_result() {
	local name=$1 pid
	[ -e "$TMPD/$name.out" ] || fail "the $name loop did not run"
	cat "$TMPD/$name.out"
	pid=$(cat "$TMPD/$name.pid")
	[ "$(cat "$TMPD/$pid.rc")" = 0 ] || fail "the $name loop saw problems"
}

test_fio() {
	[ -e "$TMPD/fio.rc" ] || fail "fio did not run"
	grep -E 'err=|verify|READ:|WRITE:' "$TMPD/fio.out" || true
	[ "$(cat "$TMPD/fio.rc")" = 0 ] || fail "fio failed: $(cat "$TMPD/fio.rc")"
}

test_churn() {
	local rc=0
	loop_result churn || rc=1
	loop_result churn2 || rc=1
	[ "$rc" = 0 ] || fail "attach or detach failed"
	grep -q 'attach OK' "$TMPD/churn.out" || fail "not one attach of vdb went through"
	grep -q 'attach OK' "$TMPD/churn2.out" || fail "not one attach of vdc went through"
}

test_busy() {
	loop_result busy
}

test_readers() {
	loop_result readers
}

test_consistent() {
	local quota0 b disk
	for b in "$CACHE"/backing*; do
		[ "$b" = "$CACHE/backing0" ] || fail "${b##*/} is left after the churn"
	done
	for disk in /sys/block/pcache*; do
		[ "$disk" = /sys/block/pcache0 ] || fail "disk ${disk##*/} is left after the churn"
	done
	quota0=$(cat "$CACHE/backing0/segments_total")
	[ "$(cat "$CACHE/segments_reserved")" = "$quota0" ] ||
		fail "segments_reserved is $(cat "$CACHE/segments_reserved"), backing0 has $quota0"
	[ "$(cat "$CACHE/backing0/state")" = attached ] || fail "backing0 is not attached"
	[ "$(cat "$CACHE/state")" = running ] || fail "cache0 is not running"
}

test_teardown() {
	local d
	ok "$CACHE/detach" "backing=0"
	[ ! -e /sys/block/pcache0 ] || fail "pcache0 is still there"
	ok "$BUS/unregister" "cache=0"
	[ ! -e "$CACHE" ] || fail "cache0 is still there"
	for d in /dev/pmem0 /dev/vda /dev/vdb; do
		[ "$(python3 "$PY" can-claim "$d")" = OK ] || fail "$d is still claimed"
	done
	# The backing table took every attach and detach: it loads, empty.
	ok "$BUS/register" "path=/dev/pmem0"
	for d in "$CACHE"/backing*; do
		[ ! -e "$d" ] || fail "${d##*/} is recorded after everything was detached"
	done
	[ "$(cat "$CACHE/segments_reserved")" = 0 ] || fail "segments still reserved"
	ok "$BUS/unregister" "cache=0"
}

test_unload() {
	[ "$(cat /sys/module/pcache/refcnt)" = 0 ] || fail "the module is still referenced"
	rmmod pcache || fail "rmmod failed"
	[ ! -e "$BUS" ] || fail "$BUS is still there"
}

ktap_plan 10
ktap_test "setup: cache0 on pmem0, backing0 on vda" test_setup
ktap_test "fio and control-plane loops ran together" test_run
ktap_test "fio's data verifies under control-plane churn" test_fio
ktap_test "no kernel warning under load" test_kernel_log
ktap_test "attach and detach of two more backings never fail" test_churn
ktap_test "busy backing, cache and device refused (EBUSY, EEXIST)" test_busy
ktap_test "attributes readable and consistent throughout" test_readers
ktap_test "state consistent after the churn" test_consistent
ktap_test "detach, unregister; table loads again; nothing stays claimed" test_teardown
ktap_test "module unloads: no leaked reference" test_unload
rm -rf "$TMPD"
ktap_finish
