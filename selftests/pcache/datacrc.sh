#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Data CRCs, chosen at format time (register ...,format,data_crc).  Every
# record with data carries the CRC32C of its data: a read hit checks it, and
# so does writeback before it writes anything back.  A byte flipped in a
# cached extent in pmem makes reads of it fail with EIO and counts in
# data_crc_errors; writeback refuses it (writeback_errors too) and the
# backing device keeps what it had, while what was written before it goes
# down; a newer write of the range makes it readable and written back again,
# and writeback passes the damaged record over, however far back it is, but
# not while its own key is still on its way to the index.  A log record
# changed on pmem stops writeback there, after what came before it.  The
# CRC is of the bytes stored even when the writer's buffer changes during
# the write (O_DIRECT).  A read that fails its CRC leaves none of the data
# in the reader's buffer.  Replay after a power cut accepts the records'
# CRCs.  Without data CRCs (the default) a flipped byte is read back as it
# is: that is what the option is for.
#
# pcvm: disks=1 timeout=600 kernels=6.12
. "$(dirname "$0")/lib.sh"

SYS=/sys/bus/pcache
CACHE=$SYS/devices/cache0
# The range under test: 64 KiB at 1 MiB, away from the partition scan's reads.
SECTOR=2048
INDEX_DELAY=/sys/module/pcache/parameters/write_index_delay_ms

# flip_byte OFFSET: invert one byte of /dev/pmem0, under the module's feet.
flip_byte() {
	local block=$(($1 / 4096 * 4096))
	dd if=/dev/pmem0 bs=4096 skip=$((block / 4096)) count=1 iflag=direct status=none |
		python3 -c 'import sys
b = bytearray(sys.stdin.buffer.read())
b[int(sys.argv[1])] ^= 0xff
sys.stdout.buffer.write(b)' $(($1 - block)) |
		dd of=/dev/pmem0 bs=4096 seek=$((block / 4096)) count=1 oflag=direct \
			conv=notrunc status=none
}

range_of() {
	dd if="$1" bs=64k skip=16 count=1 iflag=direct status=none
}

put_range() {
	pattern "$1" 65536 | dd of=/dev/pcache0 bs=64k seek=16 oflag=direct status=none
}

setup() {
	local got
	make_fsdax_namespace
	load_pcache
	got=$(write_errno "$SYS/register" "path=/dev/pmem0,data_crc")
	echo "data_crc without format: $got"
	[ "$got" = EINVAL ] || fail "data_crc without format: $got"
	echo path=/dev/pmem0,format,data_crc >"$SYS/register"
	[ "$(cat "$CACHE/data_crc")" = 1 ] || fail "data_crc reads $(cat "$CACHE/data_crc")"
	dmesg | grep -q 'pcache: cache0: formatted .*, data CRC' || fail "the log does not say data CRC"
	attach_backing "$(backing_path 0)" size=32M
	# Held back: a round the partition scan's fills queued runs first.
	echo 3600000 >"$B/writeback_delay_ms"
	sleep 1.5
	put_range "crc-$PCACHE_RUN_ID"
	[ "$(cat "$B/dirty_bytes")" -ge 65536 ] || fail "the write is not dirty"
	cmp <(range_of /dev/pcache0) <(pattern "crc-$PCACHE_RUN_ID" 65536) ||
		fail "the data does not read back"
	[ "$(cat "$B/data_crc_errors")" = 0 ] || fail "data_crc_errors is $(cat "$B/data_crc_errors")"
}

flipped_read_fails() {
	local off errors
	use_backing "$(backing_path 0)"
	off=$(record_data_offset $SECTOR)
	echo "the data of sector $SECTOR is at byte $off of pmem0"
	flip_byte $((off + 5000))
	errors=$(cat "$B/stats/errors")
	dmesg -C
	# O_DIRECT into a buffer filled with 0xaa: the read fails, and the
	# damaged data must not have reached the buffer either.
	python3 - $((SECTOR * 512)) <<'PY' || fail "a read of the flipped extent succeeded, or left data in the buffer"
import errno, mmap, os, sys
buf = mmap.mmap(-1, 65536)
buf.write(b"\xaa" * 65536)
fd = os.open("/dev/pcache0", os.O_RDONLY | os.O_DIRECT)
try:
    os.preadv(fd, [buf], int(sys.argv[1]))
    sys.exit("the read succeeded")
except OSError as e:
    if e.errno != errno.EIO:
        raise
left = set(buf[:]) - {0, 0xaa}
print("after the failed read the buffer holds bytes %s"
      % ("of zeroes and 0xaa only" if not left else "of the data"))
sys.exit(1 if left else 0)
PY
	dmesg | grep 'pcache: ' | sed 's/^\[[ 0-9.]*\] //'
	dmesg | grep -q 'data CRC mismatch' || fail "no log line says data CRC mismatch"
	[ "$(cat "$B/data_crc_errors")" -ge 1 ] || fail "data_crc_errors did not rise"
	[ "$(cat "$B/stats/errors")" -gt "$errors" ] || fail "stats/errors did not rise"
	[ "$(cat "$CACHE/stats/data_crc_errors")" -ge 1 ] || fail "the cache's data_crc_errors did not rise"
	# The blocks around it still read: another record, another range.
	dd if=/dev/pcache0 bs=4k skip=200 count=1 iflag=direct status=none >/dev/null ||
		fail "a read elsewhere fails"
}

writeback_refuses() {
	local before errors
	use_backing "$(backing_path 0)"
	before=$(range_of "$(backing_path 0)" | sha256sum)
	errors=$(cat "$B/writeback_errors")
	echo 0 >"$B/writeback_delay_ms"
	sleep 3
	echo "writeback_errors: $(($(cat "$B/writeback_errors") - errors)) more;" \
		"dirty: $(cat "$B/dirty_bytes"); data_crc_errors: $(cat "$B/data_crc_errors")"
	[ "$(cat "$B/writeback_errors")" -gt "$errors" ] || fail "writeback did not fail"
	[ "$(cat "$B/dirty_bytes")" -ge 65536 ] || fail "the flipped data is no longer dirty"
	[ "$(range_of "$(backing_path 0)" | sha256sum)" = "$before" ] ||
		fail "the backing device changed: corrupt data was written back"
}

overwrite_heals() {
	use_backing "$(backing_path 0)"
	put_range "new-$PCACHE_RUN_ID"
	cmp <(range_of /dev/pcache0) <(pattern "new-$PCACHE_RUN_ID" 65536) ||
		fail "the new data does not read back"
	local _
	for _ in $(seq 50); do
		[ "$(cat "$B/dirty_bytes")" = 0 ] && break
		sleep 0.2
	done
	[ "$(cat "$B/dirty_bytes")" = 0 ] || fail "still $(cat "$B/dirty_bytes") bytes dirty"
	cmp <(range_of "$(backing_path 0)") <(pattern "new-$PCACHE_RUN_ID" 65536) ||
		fail "the backing device does not hold the new data"
}

# A writer that keeps changing its buffer while O_DIRECT writes of it are in
# flight: whatever bytes each write stored, their CRC matches them, so they
# read back and are written back without a CRC error.
changing_buffer() {
	local crc_errors wb_errors _
	use_backing "$(backing_path 0)"
	crc_errors=$(cat "$B/data_crc_errors")
	wb_errors=$(cat "$B/writeback_errors")
	python3 - <<'PY' >/tmp/changing.bin || fail "writes from a changing buffer do not read back"
import mmap, os, threading
SIZE, OFF, ROUNDS = 1 << 20, 8 << 20, 40
buf = mmap.mmap(-1, SIZE)
stop = False
def scribble():
    i = 0
    while not stop:
        buf[(i * 4099) % SIZE] = i & 0xff
        i += 1
t = threading.Thread(target=scribble)
t.start()
fd = os.open("/dev/pcache0", os.O_RDWR | os.O_DIRECT)
try:
    for _ in range(ROUNDS):
        os.pwritev(fd, [buf], OFF)
finally:
    stop = True
    t.join()
back = mmap.mmap(-1, SIZE)
os.preadv(fd, [back], OFF)
os.write(2, b"%d writes of 1 MiB from a buffer changed meanwhile; read back\n" % ROUNDS)
os.write(1, back[:])
PY
	[ "$(cat "$B/data_crc_errors")" = "$crc_errors" ] ||
		fail "data_crc_errors rose to $(cat "$B/data_crc_errors")"
	for _ in $(seq 100); do
		[ "$(cat "$B/dirty_bytes")" = 0 ] && break
		sleep 0.2
	done
	[ "$(cat "$B/dirty_bytes")" = 0 ] || fail "still $(cat "$B/dirty_bytes") bytes dirty"
	[ "$(cat "$B/writeback_errors")" = "$wb_errors" ] ||
		fail "writeback_errors rose to $(cat "$B/writeback_errors")"
	[ "$(cat "$B/data_crc_errors")" = "$crc_errors" ] ||
		fail "data_crc_errors rose to $(cat "$B/data_crc_errors") in writeback"
	cmp <(dd if="$(backing_path 0)" bs=1M skip=8 count=1 iflag=direct status=none) \
		/tmp/changing.bin || fail "the backing device does not hold what was read back"
	# Held back from now on: whatever round was queued runs first.
	echo 3600000 >"$B/writeback_delay_ms"
	sleep 1.5
	put_range "cut-$PCACHE_RUN_ID"
}

after_power_cut() {
	load_pcache
	echo path=/dev/pmem0 >"$SYS/register"
	use_backing "$(backing_path 0)"
	[ "$(cat "$CACHE/data_crc")" = 1 ] || fail "data_crc is off after the power cut"
	dmesg | grep 'pcache:.*replayed' | tail -n 1
	dmesg | grep -q 'pcache:.*replayed .*: [1-9][0-9]* KiB cached' ||
		fail "replay indexed nothing"
	cmp <(range_of /dev/pcache0) <(pattern "cut-$PCACHE_RUN_ID" 65536) ||
		fail "the replayed data does not read back"
	[ "$(cat "$B/data_crc_errors")" = 0 ] || fail "data_crc_errors: $(cat "$B/data_crc_errors")"
	echo backing=0 >"$CACHE/detach"
	echo cache=0 >"$SYS/unregister"
}

# A record that fails its CRC ends the rounds just before it: what was
# written earlier goes down.  A newer write of its range lets writeback pass
# it over, however many records came in between (more than a round takes).
heals_past_round() {
	local off late=4200 errors _ mib=$((1 << 20))
	echo path=/dev/pmem0,format,force,data_crc >"$SYS/register"
	attach_backing "$(backing_path 0)" size=128M
	echo 3600000 >"$B/writeback_delay_ms"
	sleep 1.5
	pattern "early-$PCACHE_RUN_ID" $mib |
		dd of=/dev/pcache0 bs=1M seek=32 oflag=direct iflag=fullblock status=none
	put_range "bad-$PCACHE_RUN_ID"
	off=$(record_data_offset $SECTOR)
	flip_byte $((off + 5000))
	pattern "late-$PCACHE_RUN_ID" $((late * 4096)) |
		dd of=/dev/pcache0 bs=4k seek=$((64 * 256)) oflag=direct iflag=fullblock status=none
	errors=$(cat "$B/writeback_errors")
	echo 0 >"$B/writeback_delay_ms"
	for _ in $(seq 150); do
		[ "$(cat "$B/writeback_errors")" -gt "$errors" ] && break
		sleep 0.2
	done
	echo "stopped at the flipped record: dirty_bytes $(cat "$B/dirty_bytes"), writeback_errors $(cat "$B/writeback_errors")"
	[ "$(cat "$B/writeback_errors")" -gt "$errors" ] || fail "writeback did not stop at the flipped record"
	cmp <(dd if="$(backing_path 0)" bs=1M skip=32 count=1 iflag=direct status=none) \
		<(pattern "early-$PCACHE_RUN_ID" $mib) ||
		fail "the write before the flipped record was not written back"
	[ "$(cat "$B/dirty_bytes")" -ge $((late * 4096 + 65536)) ] ||
		fail "records after the flipped one were written back"
	dmesg -C
	put_range "heal-$PCACHE_RUN_ID"
	for _ in $(seq 300); do
		[ "$(cat "$B/dirty_bytes")" = 0 ] && break
		sleep 0.2
	done
	dmesg | grep 'pcache: ' | sed 's/^\[[ 0-9.]*\] //' | sort | uniq -c
	[ "$(cat "$B/dirty_bytes")" = 0 ] || fail "still $(cat "$B/dirty_bytes") bytes dirty"
	dmesg | grep -q 'pcache:.*cannot be read; newer writes replaced .*: passing over it' ||
		fail "no log line says the flipped record was passed over"
	cmp <(range_of "$(backing_path 0)") <(pattern "heal-$PCACHE_RUN_ID" 65536) ||
		fail "the backing device does not hold the newer write"
	cmp <(dd if="$(backing_path 0)" bs=4k skip=$((64 * 256)) count=$late iflag=direct status=none) \
		<(pattern "late-$PCACHE_RUN_ID" $((late * 4096))) ||
		fail "the backing device does not hold the writes after the flipped record"
	echo backing=0 >"$CACHE/detach"
	echo cache=0 >"$SYS/unregister"
}

# A damaged record whose own key is still on its way to the index
# (write_index_delay_ms) when writeback gets to it: the index holds none of
# it yet, which must not pass for "replaced".  Rounds wait for the key;
# once it lands, reads of the range fail instead of returning the backing
# device's older data, and a newer write heals it.
late_key_not_passed() {
	local held off errors
	echo path=/dev/pmem0,format,force,data_crc >"$SYS/register"
	pattern "old-$PCACHE_RUN_ID" 65536 |
		dd of="$(backing_path 0)" bs=64k seek=16 oflag=direct status=none
	attach_backing "$(backing_path 0)" size=32M
	echo 3600000 >"$B/writeback_delay_ms"
	sleep 1.5
	echo 30000 >"$INDEX_DELAY"
	put_range "held-$PCACHE_RUN_ID" &
	held=$!
	wait_for 10 "the write held before its index insertion" write_in_flight || return
	echo 0 >"$INDEX_DELAY"
	off=$(record_data_offset $SECTOR)
	flip_byte $((off + 5000))
	errors=$(cat "$B/writeback_errors")
	dmesg -C
	echo 0 >"$B/writeback_delay_ms"
	wait_for 15 "a round refused while the key is on its way" writeback_errors_rose "$errors"
	kill -0 "$held" 2>/dev/null ||
		fail "the write was no longer held when writeback got to it: the race was not run"
	wait "$held" || fail "the held write failed"
	if dmesg | grep 'pcache:.*passing over it'; then
		fail "the record was passed over while its key was on its way"
	fi
	if range_of /dev/pcache0 >/dev/null 2>&1; then
		fail "a read of the damaged range succeeded"
	fi
	[ "$(cat "$B/dirty_bytes")" -ge 65536 ] || fail "the damaged write is no longer dirty"
	put_range "healed-$PCACHE_RUN_ID"
	wait_for 60 "everything written back" dirty_is_zero || return
	cmp <(range_of "$(backing_path 0)") <(pattern "healed-$PCACHE_RUN_ID" 65536) ||
		fail "the backing device does not hold the newer write"
	echo backing=0 >"$CACHE/detach"
	echo cache=0 >"$SYS/unregister"
}

# A log record changed on pmem while writeback runs (here, the record of the
# second of two writes, right after the first's in one segment): writeback
# stops there, and what came before it still goes down.
damaged_record_ends_round() {
	local first second errors
	echo path=/dev/pmem0,format,force >"$SYS/register"
	attach_backing "$(backing_path 0)" size=32M
	echo 3600000 >"$B/writeback_delay_ms"
	sleep 1.5
	pattern "first-$PCACHE_RUN_ID" 65536 | taskset -c 0 \
		dd of=/dev/pcache0 bs=64k seek=16 oflag=direct status=none
	pattern "second-$PCACHE_RUN_ID" 65536 | taskset -c 0 \
		dd of=/dev/pcache0 bs=64k seek=32 oflag=direct status=none
	first=$(record_data_offset $SECTOR record)
	second=$(record_data_offset $((2 * SECTOR)) record)
	[ "$second" = $((first + 64)) ] ||
		fail "the records are not one after the other: at $first and $second"
	flip_byte $((second + 24))
	errors=$(cat "$B/writeback_errors")
	dmesg -C
	echo 0 >"$B/writeback_delay_ms"
	wait_for 30 "writeback stopped at the damaged record" writeback_errors_rose "$errors"
	dmesg | grep 'pcache:.*changed on pmem' | sed 's/^\[[ 0-9.]*\] //' | sort | uniq -c
	dmesg | grep -q 'pcache:.*record .* changed on pmem .*: writeback stops there' ||
		fail "no log line says where writeback stopped"
	cmp <(range_of "$(backing_path 0)") <(pattern "first-$PCACHE_RUN_ID" 65536) ||
		fail "the write before the damaged record was not written back"
	[ "$(cat "$B/dirty_bytes")" -ge 65536 ] || fail "the second write is no longer dirty"
	cmp <(dd if=/dev/pcache0 bs=64k skip=32 count=1 iflag=direct status=none) \
		<(pattern "second-$PCACHE_RUN_ID" 65536) ||
		fail "the second write does not read back"
	echo backing=0,force >"$CACHE/detach"
	echo cache=0 >"$SYS/unregister"
}

# Without data CRCs a flipped byte is served as it is.
without_data_crc() {
	local off
	echo path=/dev/pmem0,format,force >"$SYS/register"
	[ "$(cat "$CACHE/data_crc")" = 0 ] || fail "data_crc is on without the option"
	attach_backing "$(backing_path 0)" size=32M
	echo 3600000 >"$B/writeback_delay_ms"
	put_range "plain-$PCACHE_RUN_ID"
	off=$(record_data_offset $SECTOR)
	flip_byte $((off + 5000))
	range_of /dev/pcache0 >/tmp/plain.bin || fail "the read failed"
	cmp /tmp/plain.bin <(pattern "plain-$PCACHE_RUN_ID" 65536) && fail "the flipped byte was not served"
	[ "$(cmp /tmp/plain.bin <(pattern "plain-$PCACHE_RUN_ID" 65536) -l | wc -l)" = 1 ] ||
		fail "more than the flipped byte differs"
	echo backing=0,force >"$CACHE/detach"
	echo cache=0 >"$SYS/unregister"
	rmmod pcache
}

case "$PCACHE_PHASE" in
1)
	ktap_plan 10
	ktap_test "format with data_crc (refused without format); data reads back" setup
	ktap_test "a byte flipped in a cached extent: the read fails, counted" flipped_read_fails
	ktap_test "writeback refuses the flipped extent; the backing device keeps its data" \
		writeback_refuses
	ktap_test "a newer write of the range reads back and is written back" overwrite_heals
	ktap_test "writes from a buffer changed meanwhile read back and are written back" \
		changing_buffer
	pcvm-powercut "with data CRCs in the log"
	;;
2)
	KTAP_NUM=5
	ktap_test "after a power cut, replay accepts the data CRCs" after_power_cut
	ktap_test "a record failing its CRC: writeback gets to it, passes it once rewritten" \
		heals_past_round
	ktap_test "a record failing its CRC, its key on the way: not passed over" \
		late_key_not_passed
	ktap_test "a log record changed on pmem: what came before it is written back" \
		damaged_record_ends_round
	ktap_test "without data_crc a flipped byte is served as it is" without_data_crc
	ktap_finish
	;;
esac
