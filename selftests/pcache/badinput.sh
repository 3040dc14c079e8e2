#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Every bad input to every control file (register, unregister, attach,
# detach) is refused with the errno docs/ABI/sysfs-bus-pcache gives, logs one
# "pcache: " line saying why, and changes nothing: the devices and backings
# in sysfs, their attributes, the cache device's metadata and the backing
# disks stay as they were.  Read-only attributes refuse writes.  Detach,
# attach, unregister and register racing each other leave a consistent state.
#
# pcvm: disks=2 timeout=1500 kernels=6.1
. "$(dirname "$0")/lib.sh"

BUS=/sys/bus/pcache
CACHE=$BUS/devices/cache0
CACHE_ATTRS="path uuid size segment_size data_crc segments_total segments_reserved segments_used state"
BACKING_ATTRS="id path uuid size cache_size segments_total segments_used mode state disk"
RACE_SECONDS=30

TMPD=$(mktemp -d /dev/shm/pcache-badinput.XXXXXX)
PY=$TMPD/pcache.py

# Python does what bash cannot: one write(2) of exact bytes, errno names, an
# O_EXCL hold on a block device, and fast loops for the races.
cat >"$PY" <<'EOF'
import codecs, difflib, errno, glob, hashlib, mmap, os, random, sys, time

BUS = "/sys/bus/pcache"


def errname(e):
    if e.errno == errno.EOPNOTSUPP:
        return "EOPNOTSUPP"  # errorcode[] calls it ENOTSUP, the same number
    return errno.errorcode.get(e.errno, "errno%d" % e.errno)


def write(path, data):
    """One write(2) of data to path: "OK", "SHORTn" or the errno name."""
    try:
        fd = os.open(path, os.O_WRONLY)
    except OSError as e:
        return errname(e)
    try:
        n = os.write(fd, data)
        return "OK" if n == len(data) else "SHORT%d" % n
    except OSError as e:
        return errname(e)
    finally:
        os.close(fd)


def caches():
    return sorted(glob.glob(BUS + "/devices/cache*"))


def backing_ids(cache):
    return [int(d.rsplit("backing", 1)[1]) for d in glob.glob(cache + "/backing*")]


def backing_with_path(cache, path):
    for d in glob.glob(cache + "/backing*"):
        try:
            with open(d + "/path") as f:
                if f.read().strip() == path:
                    return int(d.rsplit("backing", 1)[1])
        except OSError:
            pass
    return None


class Counts:
    def __init__(self, allowed):
        self.allowed = allowed
        self.counts = {}
        self.unexpected = 0

    def add(self, op, res):
        key = "%s %s" % (op, res)
        self.counts[key] = self.counts.get(key, 0) + 1
        if res not in self.allowed[op]:
            self.unexpected += 1

    def report(self, who):
        for key in sorted(self.counts):
            print("%s: %s x%d" % (who, key, self.counts[key]))
        if self.unexpected:
            print("%s: %d unexpected results" % (who, self.unexpected))
        return 1 if self.unexpected else 0


ATTACH_OK = {"OK", "EEXIST", "EBUSY", "ENOENT", "ENODEV"}
DETACH_OK = {"OK", "ENOENT", "ENODEV"}
# A detach racing someone else's attach may find the new disk still open by
# the kernel's partition scan (6.12 closes it only when the attaching task
# returns to user space); refusing it with EBUSY is right then.
RACING_DETACH_OK = DETACH_OK | {"EBUSY"}


def race_attach(dev, secs):
    """Attach dev and detach it again, as fast as possible."""
    c = Counts({"attach": ATTACH_OK, "detach": DETACH_OK})
    end = time.monotonic() + secs
    while time.monotonic() < end:
        cs = caches()
        if not cs:
            time.sleep(0.002)
            continue
        res = write(cs[0] + "/attach", b"path=%s,size=16M" % dev.encode())
        c.add("attach", res)
        if res == "OK":
            bid = backing_with_path(cs[0], dev)
            if bid is not None:
                c.add("detach", write(cs[0] + "/detach", b"backing=%d" % bid))
        else:
            time.sleep(random.random() * 0.01)
    return c.report("attach/detach " + dev)


def race_detach(secs):
    """Detach whatever backing is there."""
    c = Counts({"detach": RACING_DETACH_OK})
    end = time.monotonic() + secs
    while time.monotonic() < end:
        done = False
        for cache in caches():
            for bid in backing_ids(cache):
                c.add("detach", write(cache + "/detach", b"backing=%d" % bid))
                done = True
        time.sleep(random.random() * (0.01 if done else 0.002))
    return c.report("detach")


def race_unregister(secs):
    """Unregister the cache whenever it lets us, and register it again."""
    c = Counts({"unregister": {"OK", "EBUSY", "ENOENT"}, "register": {"OK"}})
    end = time.monotonic() + secs
    while time.monotonic() < end:
        for cache in caches():
            n = cache.rsplit("cache", 1)[1]
            res = write(BUS + "/unregister", b"cache=" + n.encode())
            c.add("unregister", res)
            if res == "OK":
                time.sleep(random.random() * 0.01)
                c.add("register", write(BUS + "/register", b"path=/dev/pmem0"))
        time.sleep(random.random() * 0.03)
    return c.report("unregister/register")


def hold(dev, ready):
    """Claim dev exclusively, as a mounted filesystem would, until killed."""
    fd = os.open(dev, os.O_RDONLY | os.O_EXCL)
    open(ready, "w").close()
    time.sleep(3600)
    os.close(fd)


def decode(text):
    """Input with \\n and \\0 escapes, as bytes."""
    return codecs.escape_decode(os.fsencode(text))[0]


def shorten(text):
    return text if len(text) <= 90 else "%s...(%d bytes)" % (text[:60], len(text))


def read_attr(path):
    try:
        with open(path) as f:
            return f.read().splitlines()
    except OSError as e:
        return [" " + errname(e)]


def head_sum(dev):
    """sha256 of the first 64 KiB of dev, read past the page cache."""
    try:
        fd = os.open(dev, os.O_RDONLY | os.O_DIRECT)
    except OSError as e:
        return errname(e)
    try:
        buf = mmap.mmap(-1, 65536)
        n = os.preadv(fd, [buf], 0)
        return hashlib.sha256(buf[:n]).hexdigest()
    except OSError as e:
        return errname(e)
    finally:
        os.close(fd)


class Checker:
    """
    The checks of refused commands, run from one process: starting python
    and a dozen other programs for every one of them took 3-4 s under TCG.
    """

    def __init__(self, tmpdir, cache_attrs, backing_attrs):
        self.tmpdir = tmpdir
        self.cache_attrs = cache_attrs.split()
        self.backing_attrs = backing_attrs.split()

    def snapshot(self):
        """Everything a refused command must leave alone, as lines."""
        top = BUS + "/devices/"
        names = [os.path.basename(c) for c in caches()]
        disks = sorted(os.path.basename(d) for d in glob.glob("/sys/block/pcache*"))
        out = ["caches: " + " ".join(names), "disks: " + " ".join(disks)]
        for cache in caches():
            files = [cache + "/" + a for a in self.cache_attrs]
            for b in sorted(glob.glob(cache + "/backing*")):
                if os.path.isdir(b):
                    files += [b + "/" + a for a in self.backing_attrs]
            for f in files:
                out += [f[len(top):] + ":" + line for line in read_attr(f)]
        # The cache device's superblock and backing table, and the disks' heads.
        for dev in ("/dev/pmem0", "/dev/vda", "/dev/vdb"):
            out.append(dev + ": " + head_sum(dev))
        return out

    def logged(self, inp_path, data):
        """Write data to inp_path; the result and the kernel log lines it caused."""
        kmsg = os.open("/dev/kmsg", os.O_RDONLY | os.O_NONBLOCK)
        try:
            os.lseek(kmsg, 0, os.SEEK_END)
            got = write(inp_path, data)
            lines = []
            while True:
                try:
                    rec = os.read(kmsg, 8192)
                except BlockingIOError:
                    break
                except BrokenPipeError:
                    continue  # records overwritten: go on with the oldest left
                if not rec:
                    break
                msg = rec.decode(errors="replace").partition(";")[2]
                lines.append(msg.split("\n", 1)[0])
        finally:
            os.close(kmsg)
        return got, lines

    def refused(self, want, path, text):
        """
        One write of text to path must fail with one of want ("EINVAL" or
        "ENOENT|EINVAL"), log exactly one "pcache: " line and change
        nothing.  Returns the report; its last line is PASS or FAIL, and
        UNDO when the write went through.
        """
        before = self.snapshot()
        got, lines = self.logged(path, decode(text))
        reasons = [line for line in lines if "pcache: " in line]
        after = self.snapshot()
        out = ["%s > %s: %s; %s" % (shorten(text), path[len(BUS) + 1:], got,
                                    "\n".join(reasons) or "(no kernel log line)")]
        bad = False
        if got not in want.split("|"):
            out.append("  FAIL: expected %s, got %s" % (want, got))
            bad = True
        if len(reasons) != 1:
            out.append("  FAIL: expected one 'pcache: ' line in the kernel log, got %d"
                       % len(reasons))
            bad = True
        if before != after:
            out.append("  FAIL: the refused command changed state:")
            out += ["    " + d for d in difflib.unified_diff(before, after, lineterm="", n=0)]
            bad = True
        status = "FAIL" if bad else "PASS"
        if got == "OK":
            with open(self.tmpdir + "/before", "w") as f:
                f.write("\n".join(before) + "\n")
            status += " UNDO"
        return out + [status]

    def unchanged(self, path, text):
        """A write that must change nothing: its result, and SAME or CHANGED."""
        before = self.snapshot()
        got = write(path, decode(text))
        return [got, "SAME" if self.snapshot() == before else "CHANGED"]

    def accepted(self, path, text):
        """A write that must succeed: a report, and its result last."""
        got, lines = self.logged(path, decode(text))
        out = ["%s > %s: %s" % (shorten(text), path[len(BUS) + 1:], got)]
        if got != "OK":
            out += ["  " + line for line in lines if "pcache" in line]
        return out + [got]

    def serve(self):
        """Requests on stdin, one a line, fields split by \\x1f; replies on
        stdout, each ending in a line of \\x1e alone."""
        for req in sys.stdin.buffer:
            args = req.rstrip(b"\n").decode().split("\x1f")
            cmd = args.pop(0)
            if cmd == "refused":
                out = self.refused(*args)
            elif cmd == "unchanged":
                out = self.unchanged(*args)
            elif cmd == "accepted":
                out = self.accepted(*args)
            elif cmd == "write":
                out = [write(args[0], decode(args[1]))]
            else:
                out = ["unknown request " + cmd]
            sys.stdout.write("\n".join(out) + "\n\x1e\n")
            sys.stdout.flush()


cmd = sys.argv[1]
if cmd == "serve":
    Checker(*sys.argv[2:5]).serve()
elif cmd == "write":
    # Input with \n and \0 escapes, written as one write(2).
    print(write(sys.argv[2], decode(sys.argv[3])))
elif cmd == "can-claim":
    try:
        os.close(os.open(sys.argv[2], os.O_RDONLY | os.O_EXCL))
        print("OK")
    except OSError as e:
        print(errname(e))
elif cmd == "hold":
    hold(sys.argv[2], sys.argv[3])
elif cmd == "race-attach":
    sys.exit(race_attach(sys.argv[2], float(sys.argv[3])))
elif cmd == "race-detach":
    sys.exit(race_detach(float(sys.argv[2])))
elif cmd == "race-unregister":
    sys.exit(race_unregister(float(sys.argv[2])))
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

# A symlink to TARGET whose path is exactly LEN bytes long.
long_link() {
	local target=$1 len=$2 dir=$TMPD/l name
	mkdir -p "$dir"
	name=$(printf '%*s' $((len - ${#dir} - 1)) '' | tr ' ' x)
	ln -sfn "$target" "$dir/$name"
	echo "$dir/$name"
}

# The resident checker (Checker in $PY): requests on a fifo, replies on
# another, one at a time.  Subshells (ktap_test runs each test in one) share
# the descriptors; bash reads a fifo a byte at a time, so none reads past its
# own reply.
mkfifo "$TMPD/requests" "$TMPD/replies"
python3 "$PY" serve "$TMPD" "$CACHE_ATTRS" "$BACKING_ATTRS" \
	<"$TMPD/requests" >"$TMPD/replies" 2>"$TMPD/checker.err" &
CHECKER_PID=$!
exec {CHECK_REQ}>"$TMPD/requests" {CHECK_REPLY}<"$TMPD/replies"

# checker REQUEST ARG...: the reply's lines.
checker() {
	local IFS=$'\x1f' line
	printf '%s\n' "$*" >&"$CHECK_REQ"
	while IFS= read -r line <&"$CHECK_REPLY"; do
		[ "$line" != $'\x1e' ] || return 0
		printf '%s\n' "$line"
	done
	cat "$TMPD/checker.err" >&2
	fail "the checker process is gone"
}

# sysfs_write FILE INPUT: one write(2) of INPUT (\n and \0 escapes allowed);
# prints OK or the errno name.
sysfs_write() {
	checker write "$1" "$2"
}

CHECKS_FAILED=0

# undo FILE SNAPSHOT: a command that should have failed went through; take
# back what it did (from the state in SNAPSHOT) so that one bug does not make
# every later check fail too.
undo() {
	local file=$1 before=$2 obj v
	case "$file" in
	*/detach)
		sed -n 's|^\(cache[0-9]*/backing[0-9]*\)/id:.*|\1|p' <<<"$before" | while read -r obj; do
			[ ! -d "$BUS/devices/$obj" ] || continue
			v="path=$(sed -n "s|^$obj/path:||p" <<<"$before")"
			v="$v,size=$(sed -n "s|^$obj/cache_size:||p" <<<"$before")"
			v="$v,mode=$(sed -n "s|^$obj/mode:||p" <<<"$before")"
			echo "  undo: attach $v: $(sysfs_write "$BUS/devices/${obj%/*}/attach" "$v")"
		done
		;;
	*/unregister)
		sed -n 's|^\(cache[0-9]*\)/path:.*|\1|p' <<<"$before" | while read -r obj; do
			[ ! -d "$BUS/devices/$obj" ] || continue
			v="path=$(sed -n "s|^$obj/path:||p" <<<"$before")"
			echo "  undo: register $v: $(sysfs_write "$BUS/register" "$v")"
		done
		;;
	*/attach)
		for obj in "${file%/attach}"/backing*; do
			[ -d "$obj" ] || continue
			grep -q "^${obj#"$BUS"/devices/}/id:" <<<"$before" && continue
			echo "  undo: detach ${obj##*/}: $(sysfs_write "${file%/attach}/detach" "backing=${obj##*backing}")"
		done
		;;
	*/register)
		for obj in "$BUS"/devices/cache*; do
			[ -d "$obj" ] || continue
			grep -q "^${obj##*/}/path:" <<<"$before" && continue
			echo "  undo: unregister ${obj##*/}: $(sysfs_write "$BUS/unregister" "cache=${obj##*cache}")"
		done
		;;
	esac
}

# refused ERRNOS FILE INPUT: one write of INPUT to FILE fails with one of
# ERRNOS ("EINVAL" or "ENOENT|EINVAL"), logs exactly one "pcache: " line and
# changes nothing.  Counts a failure in CHECKS_FAILED and goes on.
refused() {
	local reply status
	reply=$(checker refused "$1" "$2" "$3")
	status=${reply##*$'\n'}
	printf '%s\n' "${reply%$'\n'*}"
	[[ "$status" != *UNDO* ]] || undo "$2" "$(cat "$TMPD/before")"
	[[ "$status" == PASS* ]] || CHECKS_FAILED=$((CHECKS_FAILED + 1))
}

checks_done() {
	[ "$CHECKS_FAILED" -eq 0 ] || fail "$CHECKS_FAILED checks failed"
}

# accepted FILE INPUT: the command succeeds.
accepted() {
	local reply got
	reply=$(checker accepted "$1" "$2")
	got=${reply##*$'\n'}
	printf '%s\n' "${reply%$'\n'*}"
	[ "$got" = OK ] || fail "expected success, got $got"
}

attr() {
	cat "$CACHE/$1"
}

seg() {
	echo $(($(attr segment_size) * $1))
}

# Attach with a path, return quickly: the number of the new backing.
backing_of() {
	local b
	for b in "$CACHE"/backing*; do
		[ "$(cat "$b/path" 2>/dev/null)" = "$1" ] && echo "${b##*backing}" && return 0
	done
	fail "no backing with path $1"
}

# --- the tests ---

test_load() {
	load_pcache
	[ -d "$BUS" ] || fail "$BUS missing"
	echo "backing disks: $B0 $B1"
	[ -b "$B0" ] || fail "no persistent name for vda"
	[ -b "$B1" ] || fail "no persistent name for vdb"
}

test_register_not_dax() {
	ndctl list -N | grep -q '"mode":"raw"' || fail "pmem0 is not a raw namespace"
	refused EOPNOTSUPP "$BUS/register" "path=/dev/pmem0,format"
	refused EOPNOTSUPP "$BUS/register" "path=/dev/pmem0"
	refused EOPNOTSUPP "$BUS/register" "path=/dev/vda,format"
	refused EOPNOTSUPP "$BUS/register" "path=/dev/vda,format,force"
	refused EOPNOTSUPP "$BUS/register" "path=$B1,format,segment_size=8M"
	checks_done
}

test_fsdax() {
	make_fsdax_namespace
	[ "$(cat /sys/block/pmem0/queue/dax)" = 1 ] || fail "pmem0 is not DAX"
	dd if=/dev/zero of=/dev/pmem0 bs=1M count=1 oflag=direct conv=fsync status=none
}

test_register_malformed() {
	refused EINVAL "$BUS/register" '\n'
	refused EINVAL "$BUS/register" 'foo'
	refused EINVAL "$BUS/register" 'foo\n'
	refused EINVAL "$BUS/register" ','
	refused EINVAL "$BUS/register" 'format'
	refused EINVAL "$BUS/register" 'format,force'
	refused EINVAL "$BUS/register" '/dev/pmem0'
	refused EINVAL "$BUS/register" 'path'
	refused EINVAL "$BUS/register" 'path=/dev/pmem0,bogus=1'
	refused EINVAL "$BUS/register" 'path=/dev/pmem0,format,bogus'
	refused EINVAL "$BUS/register" 'path=/dev/pmem0,format,size=64M'
	refused "ENOENT|EINVAL" "$BUS/register" 'path=/dev/pmem0;format'
	refused "EINVAL|ENOENT" "$BUS/register" 'path='
	refused "EINVAL|ENOENT" "$BUS/register" 'path=,format'
	checks_done
}

test_register_paths() {
	local file=$TMPD/regular link127 link128
	echo data >"$file"
	link127=$(long_link /dev/vda 127)
	link128=$(long_link /dev/pmem0 128)
	refused ENOENT "$BUS/register" "path=/dev/pmem9,format"
	refused ENOENT "$BUS/register" "path=/nonexistent/pmem0,format"
	refused ENOENT "$BUS/register" "path=pmem0,format"
	refused ENOTBLK "$BUS/register" "path=$file,format"
	[ ! -f /etc/hostname ] || refused ENOTBLK "$BUS/register" "path=/etc/hostname,format"
	refused ENOTBLK "$BUS/register" "path=/dev,format"
	refused ENOTBLK "$BUS/register" "path=/dev/null,format"
	# 127 bytes is allowed (this one leads to a non-DAX disk), 128 is not.
	refused EOPNOTSUPP "$BUS/register" "path=$link127,format"
	refused "ENAMETOOLONG|EINVAL" "$BUS/register" "path=$link128,format"
	refused "ENAMETOOLONG|EINVAL" "$BUS/register" "path=$link128"
	refused "ENAMETOOLONG|EINVAL" "$BUS/register" "path=/dev/$(printf '%*s' 300 '' | tr ' ' p),format"
	refused "ENAMETOOLONG|EINVAL" "$BUS/register" "path=/dev/$(printf '%*s' 4994 '' | tr ' ' p)"
	checks_done
}

# A device set read-only (BLKROSET) cannot be opened for writing: the open
# fails with EACCES, and the log line must say why rather than give a
# number.
test_register_read_only() {
	blockdev --setro /dev/pmem0
	refused EACCES "$BUS/register" "path=/dev/pmem0,format"
	refused EACCES "$BUS/register" "path=/dev/pmem0"
	blockdev --setrw /dev/pmem0
	dmesg | grep -q "pcache: /dev/pmem0: read-only" ||
		fail "the log does not say pmem0 is read-only: $(dmesg | grep 'pcache: ' | tail -n 1)"
	checks_done
}

test_register_no_superblock() {
	refused EINVAL "$BUS/register" "path=/dev/pmem0"
	refused EINVAL "$BUS/register" 'path=/dev/pmem0\n'
	refused EINVAL "$BUS/register" 'path=/dev/pmem0\0,format'
	refused EINVAL "$BUS/register" "path=/dev/pmem0,force"
	checks_done
}

test_register_segment_size() {
	local s
	for s in 3M 1536K 512K 1023K 0 1G 512M 257M 4M1 abc -4M 4T ""; do
		refused EINVAL "$BUS/register" "path=/dev/pmem0,format,segment_size=$s"
	done
	refused EINVAL "$BUS/register" "path=/dev/pmem0,format,segment_size"
	refused EINVAL "$BUS/register" "path=/dev/pmem0,format,segment_size=$(((1 << 32) + (4 << 20)))"
	checks_done
}

test_register_not_blank() {
	mkfs.ext4 -q -F /dev/pmem0 64M
	# Not listed in the ABI: format without force on a filesystem fails.
	refused "EBUSY|EEXIST|EINVAL" "$BUS/register" "path=/dev/pmem0,format"
	refused EINVAL "$BUS/register" "path=/dev/pmem0"
	blkid -p /dev/pmem0 | grep -q ext4 || fail "the filesystem on pmem0 is gone"
	dd if=/dev/zero of=/dev/pmem0 bs=1M count=1 oflag=direct conv=fsync status=none
	checks_done
}

test_register() {
	accepted "$BUS/register" 'path=/dev/pmem0,format\n'
	[ -d "$CACHE" ] || fail "no $CACHE"
	echo "cache0: $(attr segments_total) segments of $(attr segment_size) bytes"
	[ "$(attr state)" = running ] || fail "state is not running"
	[ "$(attr segment_size)" = $((4 << 20)) ] || fail "default segment size is not 4M"
	[ "$(attr segments_reserved)" = 0 ] || fail "segments reserved on a new cache"
	[ "$(attr segments_total)" -ge 200 ] || fail "too few segments for these tests"
}

test_register_twice() {
	local link=$TMPD/pmem-link
	ln -sfn /dev/pmem0 "$link"
	refused EBUSY "$BUS/register" "path=/dev/pmem0"
	refused EBUSY "$BUS/register" "path=/dev/pmem0,format"
	refused EBUSY "$BUS/register" "path=/dev/pmem0,format,force"
	refused EBUSY "$BUS/register" "path=/dev/pmem0,format,force,segment_size=8M"
	refused EBUSY "$BUS/register" "path=$link"
	refused EBUSY "$BUS/register" "path=$link,format,force"
	checks_done
}

test_unregister_malformed() {
	local u=$BUS/unregister
	refused EINVAL "$u" '\n'
	refused EINVAL "$u" 'foo'
	refused EINVAL "$u" '0'
	refused EINVAL "$u" 'cache'
	refused EINVAL "$u" 'cache='
	refused EINVAL "$u" 'cache=abc'
	refused EINVAL "$u" 'cache=0abc'
	refused EINVAL "$u" 'cache=0,bogus=1'
	refused EINVAL "$u" 'cache=0,force'
	refused EINVAL "$u" 'path=/dev/pmem0'
	refused "EINVAL|ENOENT" "$u" 'cache=-1'
	refused "EINVAL|ENOENT" "$u" 'cache=4294967296'
	refused "EINVAL|ENOENT" "$u" 'cache=18446744073709551616'
	refused ENOENT "$u" 'cache=1'
	refused ENOENT "$u" 'cache=99'
	refused ENOENT "$u" 'cache=99\n'
	checks_done
}

test_attach_malformed() {
	local a=$CACHE/attach
	refused EINVAL "$a" '\n'
	refused EINVAL "$a" 'foo'
	refused EINVAL "$a" ','
	refused EINVAL "$a" "$B1"
	refused EINVAL "$a" "path=$B1"
	refused EINVAL "$a" "path=$B1,mode=writeback"
	refused EINVAL "$a" 'size=64M'
	refused EINVAL "$a" "path=$B1,size=64M,bogus=1"
	refused EINVAL "$a" "path=$B1,size=64M,format"
	refused EINVAL "$a" "path=$B1,size="
	refused EINVAL "$a" "path=$B1,size"
	refused EINVAL "$a" "path=$B1,size=0"
	refused EINVAL "$a" "path=$B1,size=abc"
	refused EINVAL "$a" "path=$B1,size=-64M"
	refused EINVAL "$a" "path=$B1,size=64X"
	refused EINVAL "$a" "path=$B1,size=64MM"
	# At least 4 segments, after rounding down to whole segments.
	refused EINVAL "$a" "path=$B1,size=4M"
	refused EINVAL "$a" "path=$B1,size=12M"
	refused EINVAL "$a" "path=$B1,size=16383K"
	refused EINVAL "$a" "path=$B1,size=$(($(seg 4) - 1))"
	refused EINVAL "$a" "path=$B1,size=64M,mode=fast"
	refused EINVAL "$a" "path=$B1,size=64M,mode="
	refused EINVAL "$a" "path=$B1,size=64M,mode"
	refused EINVAL "$a" "path=$B1,size=64M,mode=writeback,bogus"
	checks_done
}

test_attach_paths() {
	local a=$CACHE/attach file=$TMPD/regular link127 link128 id
	echo data >"$file"
	ln -sfn /dev/pmem0 "$TMPD/pmem-link"
	link127=$(long_link "$(readlink -f "$B1")" 127)
	link128=$(long_link "$(readlink -f "$B1")" 128)
	refused ENOENT "$a" "path=/dev/disk/by-id/virtio-nonexistent,size=64M"
	refused ENOENT "$a" "path=/nonexistent,size=64M"
	refused ENOTBLK "$a" "path=$file,size=64M"
	refused ENOTBLK "$a" "path=/dev/disk/by-id,size=64M"
	refused ENOTBLK "$a" "path=/dev/null,size=64M"
	refused "EINVAL|ENOENT" "$a" "path=,size=64M"
	# The kernel's name of a disk is not a stable name.
	refused EINVAL "$a" "path=/dev/vdb,size=64M"
	# Nor is a relative path: the registration looks it up from elsewhere
	# (recorded, its entry would make the next registration refuse the
	# whole table).
	ln -sfn "$(readlink -f "$B1")" "$TMPD/relative-link"
	cd "$TMPD"
	refused EINVAL "$a" "path=relative-link,size=64M"
	cd - >/dev/null
	# The cache device itself.
	refused EINVAL "$a" "path=/dev/pmem0,size=64M"
	refused EINVAL "$a" "path=$TMPD/pmem-link,size=64M"
	refused "ENAMETOOLONG|EINVAL" "$a" "path=$link128,size=64M"
	refused "ENAMETOOLONG|EINVAL" "$a" "path=/dev/$(printf '%*s' 4990 '' | tr ' ' p),size=64M"
	# 127 bytes is the longest path allowed.
	accepted "$a" "path=$link127,size=64M"
	id=$(backing_of "$link127")
	[ "$(cat "$CACHE/backing$id/path")" = "$link127" ] || fail "the 127-byte path was not kept"
	accepted "$CACHE/detach" "backing=$id"
	[ ! -e "$CACHE/backing$id" ] || fail "backing$id still there after detach"
	[ "$(attr segments_reserved)" = 0 ] || fail "segments still reserved after detach"
	checks_done
}

test_attach_too_big() {
	local a=$CACHE/attach total
	total=$(attr segments_total)
	refused ENOSPC "$a" "path=$B1,size=$(seg $((total + 1)))"
	refused ENOSPC "$a" "path=$B1,size=1T"
	refused ENOSPC "$a" "path=$B1,size=1048576G"
	# 2^64 + 64M: must not wrap around to 64M.
	refused "EINVAL|ENOSPC" "$a" "path=$B1,size=17592186044480M"
	refused "EINVAL|ENOSPC" "$a" "path=$B1,size=18446744073709551615"
	refused "EINVAL|ENOSPC" "$a" "path=$B1,size=18446744073709551616"
	checks_done
}

test_attach() {
	local total
	total=$(attr segments_total)
	# Most of the cache: 6 segments stay free.
	accepted "$CACHE/attach" "path=$B0,size=$(seg $((total - 6)))\n"
	[ -d "$CACHE/backing0" ] || fail "no backing0"
	[ "$(cat "$CACHE/backing0/path")" = "$B0" ] || fail "backing0 path is not $B0"
	[ "$(cat "$CACHE/backing0/state")" = attached ] || fail "backing0 is not attached"
	[ "$(cat "$CACHE/backing0/mode")" = writeback ] || fail "default mode is not writeback"
	[ "$(cat "$CACHE/backing0/segments_total")" = $((total - 6)) ] || fail "backing0 quota wrong"
	[ "$(attr segments_reserved)" = $((total - 6)) ] || fail "segments_reserved wrong"
	[ "$(cat "$CACHE/backing0/disk")" = pcache0 ] || fail "backing0's disk is not pcache0"
	[ -b /dev/pcache0 ] || fail "/dev/pcache0 missing"
}

test_attach_no_space_left() {
	local a=$CACHE/attach id
	refused ENOSPC "$a" "path=$B1,size=$(seg 7)"
	refused ENOSPC "$a" "path=$B1,size=$(seg 7),mode=none"
	refused ENOSPC "$a" "path=$B1,size=1G"
	# What is left fits exactly.
	accepted "$a" "path=$B1,size=$(seg 6),mode=writearound"
	id=$(backing_of "$B1")
	[ "$(cat "$CACHE/backing$id/mode")" = writearound ] || fail "mode is not writearound"
	accepted "$CACHE/detach" "backing=$id"
	checks_done
}

test_attach_duplicate() {
	local a=$CACHE/attach pid
	ln -sfn "$(readlink -f "$B0")" "$TMPD/vda-link"
	refused EEXIST "$a" "path=$B0,size=$(seg 4)"
	refused EEXIST "$a" "path=$B0,size=$(seg 4),mode=writethrough"
	# The same disk under another name is attached already too.
	refused "EEXIST|EBUSY" "$a" "path=$TMPD/vda-link,size=$(seg 4)"
	# A disk someone else holds exclusively (as a mount would).
	rm -f "$TMPD/held"
	python3 "$PY" hold "$B1" "$TMPD/held" &
	pid=$!
	for _ in $(seq 100); do
		[ -e "$TMPD/held" ] && break
		sleep 0.1
	done
	[ -e "$TMPD/held" ] || fail "could not claim $B1"
	refused EBUSY "$a" "path=$B1,size=$(seg 4)"
	kill "$pid"
	wait "$pid" || true
	blockdev --setro "$B1"
	refused EACCES "$a" "path=$B1,size=$(seg 4)"
	blockdev --setrw "$B1"
	dmesg | grep -q "pcache: cache0: $B1 is read-only" ||
		fail "the log does not say $B1 is read-only: $(dmesg | grep 'pcache: ' | tail -n 1)"
	checks_done
}

# blkpg add|del PNO: add (1 MiB at 1 MiB) or delete partition PNO of
# /dev/pcache0, without a partition table.
blkpg() {
	python3 -c 'import ctypes, fcntl, os, sys
class Part(ctypes.Structure):
    _fields_ = [("start", ctypes.c_longlong), ("length", ctypes.c_longlong),
                ("pno", ctypes.c_int), ("devname", ctypes.c_char * 64),
                ("volname", ctypes.c_char * 64)]
class Arg(ctypes.Structure):
    _fields_ = [("op", ctypes.c_int), ("flags", ctypes.c_int),
                ("datalen", ctypes.c_int), ("data", ctypes.c_void_p)]
part = Part(start=1 << 20, length=1 << 20, pno=int(sys.argv[2]))
arg = Arg(op=1 if sys.argv[1] == "add" else 2, datalen=ctypes.sizeof(part),
          data=ctypes.addressof(part))
fd = os.open("/dev/pcache0", os.O_RDONLY)
fcntl.ioctl(fd, 0x1269, arg)  # BLKPG
os.close(fd)' "$@"
}

test_attach_pcache_disk() {
	local a=$CACHE/attach
	ln -sfn /dev/pcache0 "$TMPD/pcache-link"
	refused EINVAL "$a" "path=/dev/pcache0,size=$(seg 4)"
	refused EINVAL "$a" "path=$TMPD/pcache-link,size=$(seg 4)"
	# Partition 17 has a number of the extended major (259), not pcache's.
	blkpg add 17 || fail "cannot add partition 17 to pcache0"
	wait_for 10 "/dev/pcache0p17" test -b /dev/pcache0p17
	echo "pcache0p17: $(stat -c 'major %t minor %T' /dev/pcache0p17) (hex)"
	ln -sfn /dev/pcache0p17 "$TMPD/pcache-part-link"
	refused EINVAL "$a" "path=$TMPD/pcache-part-link,size=$(seg 4)"
	blkpg del 17 || fail "cannot delete partition 17 of pcache0"
	checks_done
}

test_attach_backing_id() {
	local a=$CACHE/attach
	refused "ENOENT|EINVAL" "$a" "backing=5"
	refused "ENOENT|EINVAL" "$a" "backing=1"
	refused "ENOENT|EINVAL" "$a" "backing=31"
	refused "ENOENT|EINVAL" "$a" "backing=32"
	refused "ENOENT|EINVAL" "$a" "backing=4294967296"
	# Attached, not missing.
	refused "EINVAL|EEXIST" "$a" "backing=0"
	refused EINVAL "$a" "backing="
	refused EINVAL "$a" "backing=abc"
	refused "EINVAL|ENOENT" "$a" "backing=-1"
	refused "EINVAL|ENOENT" "$a" "backing=5,size=$(seg 4)"
	refused "EINVAL|ENOENT" "$a" "backing=5,path=$B1"
	checks_done
}

test_unregister_busy() {
	refused EBUSY "$BUS/unregister" "cache=0"
	refused EBUSY "$BUS/unregister" 'cache=0\n'
	checks_done
}

test_detach_malformed() {
	local d=$CACHE/detach
	refused EINVAL "$d" '\n'
	refused EINVAL "$d" 'foo'
	refused EINVAL "$d" '0'
	refused EINVAL "$d" 'backing'
	refused EINVAL "$d" 'backing='
	refused EINVAL "$d" 'backing=abc'
	refused EINVAL "$d" 'backing=0x'
	refused EINVAL "$d" 'backing=0,bogus=1'
	refused EINVAL "$d" 'force'
	refused EINVAL "$d" 'backing=0,force=1'
	refused EINVAL "$d" "path=$B0"
	refused "EINVAL|ENOENT" "$d" 'backing=-1'
	refused "EINVAL|ENOENT" "$d" 'backing=4294967296'
	refused ENOENT "$d" 'backing=7'
	refused ENOENT "$d" 'backing=1'
	refused "ENOENT|EINVAL" "$d" 'backing=32'
	checks_done
}

test_read_only() {
	local f got
	for f in "$BUS/format_version" "$CACHE"/{path,uuid,size,segment_size,data_crc,segments_total,segments_reserved,segments_used,state} \
		"$CACHE"/backing0/{id,path,uuid,size,cache_size,segments_total,segments_used,state,disk}; do
		[ -e "$f" ] || { echo "${f#"$BUS"/}: missing" && CHECKS_FAILED=$((CHECKS_FAILED + 1)) && continue; }
		got=$(checker unchanged "$f" '0\n' | paste -sd ' ')
		echo "write to ${f#"$BUS"/}: $got"
		if [ "$got" != "${got#OK}" ] || [ "${got##* }" != SAME ]; then
			echo "  FAIL: a read-only attribute took a write"
			CHECKS_FAILED=$((CHECKS_FAILED + 1))
		fi
	done
	for f in "$BUS/register" "$BUS/unregister" "$CACHE/attach" "$CACHE/detach"; do
		if cat "$f" >/dev/null 2>&1; then
			echo "  FAIL: write-only ${f#"$BUS"/} can be read"
			CHECKS_FAILED=$((CHECKS_FAILED + 1))
		fi
	done
	checks_done
}

# A zero-length write carries no command: it changes nothing.
test_empty_writes() {
	local f got
	for f in "$BUS/register" "$BUS/unregister" "$CACHE/attach" "$CACHE/detach"; do
		got=$(checker unchanged "$f" '' | paste -sd ' ')
		echo "empty write to ${f#"$BUS"/}: $got"
		[ "${got##* }" = SAME ] || fail "an empty write to $f changed state"
	done
}

test_detach_open() {
	exec 3</dev/pcache0
	refused EBUSY "$CACHE/detach" "backing=0"
	refused EBUSY "$CACHE/detach" 'backing=0\n'
	exec 3<&-
	accepted "$CACHE/detach" 'backing=0\n'
	[ ! -e "$CACHE/backing0" ] || fail "backing0 still there"
	[ ! -e /sys/block/pcache0 ] || fail "pcache0 still there"
	[ "$(attr segments_reserved)" = 0 ] || fail "segments still reserved"
	refused ENOENT "$CACHE/detach" "backing=0"
	checks_done
}

# Wait (up to a minute) until pmem's metadata stays the same for 3 s.  The
# partition scan of a new disk reads it, the reads fill the cache, and the
# writeback round that passes those clean records a second later writes the
# backing table: a refused command must be compared with a settled state.
settle_pmem() {
	local last="" now tries=0
	while [ "$tries" -lt 20 ]; do
		now=$(dd if=/dev/pmem0 bs=4096 count=16 iflag=direct status=none | sha256sum)
		[ "$now" = "$last" ] && return 0
		last=$now
		tries=$((tries + 1))
		sleep 3
	done
	echo "pmem's metadata still changes after a minute"
}

test_table_full() {
	local i got n=0
	modprobe -C /dev/null null_blk nr_devices=33 gb=1 || fail "cannot load null_blk"
	for i in $(seq 0 32); do
		[ -b "/dev/nullb$i" ] || fail "no /dev/nullb$i"
		ln -sfn "/dev/nullb$i" "$TMPD/nullb$i"
	done
	for i in $(seq 0 31); do
		got=$(sysfs_write "$CACHE/attach" "path=$TMPD/nullb$i,size=16M")
		if [ "$got" = OK ]; then
			n=$((n + 1))
		else
			echo "attach nullb$i: $got"
		fi
	done
	echo "$n backing devices attached"
	[ "$n" = 32 ] || fail "could not attach 32 backing devices"
	settle_pmem
	refused EMLINK "$CACHE/attach" "path=$TMPD/nullb32,size=16M"
	refused EMLINK "$CACHE/attach" "path=$B1,size=16M"
	for i in $(seq 0 31); do
		got=$(sysfs_write "$CACHE/detach" "backing=$i")
		[ "$got" = OK ] || { echo "detach backing$i: $got" && CHECKS_FAILED=$((CHECKS_FAILED + 1)); }
	done
	[ "$(attr segments_reserved)" = 0 ] || fail "segments still reserved"
	rmmod null_blk || fail "null_blk still in use"
	checks_done
}

# Each backing is attached, has its disk, and every pcache disk belongs to a
# backing; the reserved segments add up.
check_consistent() {
	local cache b disk sum=0 disks=""
	for cache in "$BUS"/devices/cache*; do
		[ -d "$cache" ] || continue
		[ "$(cat "$cache/state")" = running ] || fail "${cache##*/} is $(cat "$cache/state")"
		for b in "$cache"/backing*; do
			[ -d "$b" ] || continue
			disk=$(cat "$b/disk")
			echo "${cache##*/}/${b##*/}: $(cat "$b/path") $(cat "$b/state") $disk"
			[ "$(cat "$b/state")" = attached ] || fail "${b##*/} is not attached"
			[ -e "/sys/block/$disk" ] || fail "${b##*/}'s disk $disk does not exist"
			sum=$((sum + $(cat "$b/segments_total")))
			disks="$disks $disk"
		done
		[ "$(cat "$cache/segments_reserved")" = "$sum" ] ||
			fail "${cache##*/} reserves $(cat "$cache/segments_reserved") segments, its backings $sum"
	done
	for disk in /sys/block/pcache*; do
		[ -e "$disk" ] || continue
		case "$disks " in
		*" ${disk##*/} "*) ;;
		*) fail "${disk##*/} belongs to no backing" ;;
		esac
	done
}

test_race() {
	local pids=() pid rc=0 cache b watcher
	[ -d "$CACHE" ] || accepted "$BUS/register" "path=/dev/pmem0"
	dmesg -W >"$TMPD/race.log" 2>&1 &
	watcher=$!
	python3 "$PY" race-attach "$B0" "$RACE_SECONDS" >"$TMPD/race0" 2>&1 &
	pids+=($!)
	python3 "$PY" race-attach "$B1" "$RACE_SECONDS" >"$TMPD/race1" 2>&1 &
	pids+=($!)
	python3 "$PY" race-detach "$RACE_SECONDS" >"$TMPD/race2" 2>&1 &
	pids+=($!)
	python3 "$PY" race-unregister "$RACE_SECONDS" >"$TMPD/race3" 2>&1 &
	pids+=($!)
	for pid in "${pids[@]}"; do
		wait "$pid" || rc=1
	done
	sleep 1
	kill "$watcher"
	wait "$watcher" || true
	cat "$TMPD"/race[0-3]
	if splats "$TMPD/race.log"; then
		fail "the kernel complained during the race (lines above)"
	fi
	[ "$rc" = 0 ] || fail "unexpected results in the race"
	check_consistent
	# Whatever is left: detach it all, and there is exactly one cache.
	set -- "$BUS"/devices/cache*
	[ "$#" = 1 ] || fail "expected one cache after the race, found: $*"
	[ -d "$1" ] || fail "no cache registered after the race"
	for b in "$1"/backing*; do
		[ -d "$b" ] || continue
		accepted "$1/detach" "backing=${b##*backing}"
	done
	cache=${1##*cache}
	accepted "$BUS/unregister" "cache=$cache"
	[ ! -e /sys/block/pcache0 ] || fail "a pcache disk is left"
	# The cache device's metadata survived all that.
	accepted "$BUS/register" "path=/dev/pmem0"
	check_consistent
	for b in "$BUS"/devices/cache*/backing*; do
		[ ! -e "$b" ] || fail "${b#"$BUS"/} recorded after everything was detached"
	done
	set -- "$BUS"/devices/cache*
	echo "registered again as ${1##*/}"
	[ -d "$CACHE" ] || echo "note: not cache0 after unregister and register (the ABI does not say)"
}

test_teardown() {
	local d n
	set -- "$BUS"/devices/cache*
	[ -d "$1" ] || fail "no cache registered"
	n=${1##*cache}
	accepted "$BUS/unregister" "cache=$n"
	# Another pcache on the device: format without force changes nothing.
	refused "EBUSY|EEXIST|EINVAL" "$BUS/register" "path=/dev/pmem0,format"
	refused "EBUSY|EEXIST|EINVAL" "$BUS/register" "path=/dev/pmem0,format,segment_size=8M"
	refused ENOENT "$BUS/unregister" "cache=$n"
	for d in /dev/pmem0 /dev/vda /dev/vdb; do
		[ "$(python3 "$PY" can-claim "$d")" = OK ] || fail "$d is still claimed"
	done
	[ "$(cat /sys/module/pcache/refcnt)" = 0 ] || fail "module still referenced"
	rmmod pcache || fail "rmmod failed"
	checks_done
}

ktap_plan 28
ktap_test "setup: module, persistent disk names" test_load
ktap_test "register: non-DAX devices refused with EOPNOTSUPP" test_register_not_dax
ktap_test "setup: fsdax namespace" test_fsdax
ktap_test "register: malformed commands refused with EINVAL" test_register_malformed
ktap_test "register: bad paths refused (ENOENT, ENOTBLK, too long)" test_register_paths
ktap_test "register: a read-only device refused with EACCES" test_register_read_only
ktap_test "register: device without a superblock refused with EINVAL" test_register_no_superblock
ktap_test "register: bad segment sizes refused with EINVAL" test_register_segment_size
ktap_test "register: format without force spares a filesystem" test_register_not_blank
ktap_test "register: format pmem0" test_register
ktap_test "register: a registered device refused with EBUSY" test_register_twice
ktap_test "unregister: malformed commands and unknown caches refused" test_unregister_malformed
ktap_test "attach: malformed commands and sizes refused with EINVAL" test_attach_malformed
ktap_test "attach: bad paths refused, 127-byte path allowed" test_attach_paths
ktap_test "attach: sizes over the cache refused with ENOSPC" test_attach_too_big
ktap_test "attach: a backing with most of the cache" test_attach
ktap_test "attach: more than what is left refused with ENOSPC" test_attach_no_space_left
ktap_test "attach: attached, claimed or read-only disks refused (EEXIST, EBUSY, EACCES)" test_attach_duplicate
ktap_test "attach: a pcache disk refused with EINVAL" test_attach_pcache_disk
ktap_test "attach: backing=ID of no missing backing refused" test_attach_backing_id
ktap_test "unregister: refused with EBUSY while a backing is attached" test_unregister_busy
ktap_test "detach: malformed commands and unknown ids refused" test_detach_malformed
ktap_test "read-only attributes refuse writes" test_read_only
ktap_test "zero-length writes change nothing" test_empty_writes
ktap_test "detach: refused with EBUSY while the disk is open" test_detach_open
ktap_test "attach: a full backing table refused with EMLINK" test_table_full
ktap_test "racing detach, attach, unregister and register stay consistent" test_race
ktap_test "teardown: nothing left claimed, module unloads" test_teardown
exec {CHECK_REQ}>&- {CHECK_REPLY}<&-
wait "$CHECKER_PID" || true
rm -rf "$TMPD"
ktap_finish
