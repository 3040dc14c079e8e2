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

# write_errno FILE VALUE: the errno name of one write(2) of VALUE, or OK.
write_errno() {
	python3 -c 'import errno, os, sys
try:
    fd = os.open(sys.argv[1], os.O_WRONLY)
    os.write(fd, sys.argv[2].encode())
    print("OK")
except OSError as e:
    print(errno.errorcode[e.errno])' "$1" "$2"
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

load_pcache() {
	insmod "$PCACHE_KO"
}
