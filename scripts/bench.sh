#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Benchmark /dev/pcache0 against raw pmem, the raw backing disk, dm-writecache
# (pmem mode) and bcache (writeback), side by side in one guest, with the
# same fio matrix for every device: 4 KiB random writes and read hits at
# queue depth 1 (psync, 1 and 2 jobs) and 32 (libaio, io_uring), 64 KiB and
# 1 MiB sequential writes, read misses, a 70/30 random mix and writes with
# an fsync after each.  For every workload the devices take turns (A B C A B
# C ...), and the whole matrix repeats, so that the noise of an emulated
# machine shows as a spread; the report gives medians, spreads and ratios.
#
# Every device has a pmem namespace and a backing disk of its own, so that
# nothing writes over another's data:
#   pmem0 + disk0  pcache (and disk4, disk5 for the replay measurement)
#   pmem1          raw pmem, the limit
#   disk1          the raw backing disk, the floor
#   pmem2 + disk2  dm-writecache, 'writecache p' (pmem mode)
#   pmem3 + disk3  bcache, make-bcache -C pmem3 -B disk3, writeback,
#                  sequential_cutoff 0 and congestion thresholds 0
#   pmem4 + disk6  dm-pcache (mainline's, since 6.17), 'pcache pmem4 disk6
#                  4 cache_mode writeback data_crc false': only on a guest
#                  kernel that has dm-pcache.ko, its own or the one
#                  scripts/build-dm-pcache.sh builds (build/RELEASE/
#                  dm-pcache/); elsewhere the guest has no pmem4 nor disk6
# Each cache gets the whole of its pmem (pcache: its cache device's every
# segment).  Adding a device is a set-up function and one add_device line
# (see setup_devices).
#
# The guest is set up for measuring:
#  - the vNVDIMMs' files are preallocated on the host (QEMU prealloc=on), or
#    the first write to every page of pmem pays a host page fault that a
#    real NVDIMM does not have: pcache's log keeps moving to fresh pages;
#  - the guest's clocksource is its TSC (tsc=reliable): under TCG the
#    kernel otherwise falls back to the HPET, and every timestamp the block
#    layer and fio take becomes an emulated MMIO read.
# A run ends after --ios I/Os per job or --runtime seconds, whichever comes
# first.  Read hits: right before each read-hit run the device's 256 MiB
# region is written once with 1 MiB writes, the same for every device; what
# a cache does with it then (write it back, keep it, drop it) is its own
# business, and the report shows how many of the reads reached the backing
# disk.  Read misses read a 512 MiB region no one has written, another one
# each round (caches that keep read misses would hit in a later round).
# Background writeback runs during the runs as it would on any machine.
#
# Before the rounds, the guest writes 1 GiB of 4 KiB random writes and
# 256 MiB of 1 MiB writes through two pcache disks (writeback held off) and
# cuts its own power; the next boot registers the pmem again and the replay
# time of each log (logged by pcache) is reported; those two disks are then
# dropped (detach with force) and the cache's whole space goes to disk0.
#
# Results: a table on stdout, build/results/bench-KERNEL-DATE.csv (one line
# per run), .json (the summary), -replay.csv and an SVG plot next to them.
#
# usage: bench.sh [--kernel SERIES|RELEASE] [--repeat N] [--ios N] [--runtime SEC]
#                 [--quick] [--no-replay] [--workloads RE] [--devices RE]
#                 [--icount] [--iostats 0|1]
#   --quick       one round of one second per run (a smoke test, noisy)
#   --no-replay   skip the replay measurement (and its power cut)
#   --workloads   only the workloads whose name matches the regex RE
#   --devices     only the devices whose name matches RE (pcache0 is always
#                 set up; its replay measurement always runs)
#   --icount      count instructions instead of time (vm.sh --icount): the
#                 figures do not move with the host's load, for comparing
#                 code changes; memory costs are not in them
set -euo pipefail
. "$(dirname "$0")/lib.sh"

if [ "${1:-}" != --in-guest ]; then
	kernel=6.1 repeat=3 ios=50000 runtime=2 workloads=. devices=. replay=1
	vm_opts=() mode="" iostats=""
	while [ $# -gt 0 ]; do
		case "$1" in
		--kernel) kernel=$2; shift ;;
		--repeat) repeat=$2; shift ;;
		--ios) ios=$2; shift ;;
		--runtime) runtime=$2; shift ;;
		--quick) repeat=1 runtime=1 ;;
		--no-replay) replay=0 ;;
		--workloads) workloads=$2; shift ;;
		--devices) devices=$2; shift ;;
		--icount) vm_opts+=(--icount) mode=-icount ;;
		--iostats) iostats=$2; shift ;;
		*) die "unknown option $1 (see the header of $0)" ;;
		esac
		shift
	done
	[[ $repeat =~ ^[1-9][0-9]*$ ]] || die "--repeat wants a positive number"
	[[ $ios =~ ^[1-9][0-9]*$ ]] || die "--ios wants a positive number"
	[[ $runtime =~ ^[1-9][0-9]*$ ]] || die "--runtime wants a positive number of seconds"
	[[ $iostats =~ ^[01]?$ ]] || die "--iostats wants 0 or 1"
	case "$kernel" in
	*-amd64) rel=$kernel ;;
	*) rel=$(kernel_release "$kernel") || die "kernel $kernel is not set up: run scripts/setup.sh" ;;
	esac
	# dm-pcache, where the kernel has it: its own module, or else one
	# built by scripts/build-dm-pcache.sh.  It gets a fifth pmem and a
	# seventh disk.
	dm_pcache_ko="" nvdimms=4 ndisks=6
	if [[ dm-pcache =~ $devices ]]; then
		dm_pcache_ko=$(find "$(kernel_modules_dir "$rel")/kernel/drivers/md" -maxdepth 1 \
			-name 'dm-pcache.ko*' 2>/dev/null | head -n 1)
		[ -n "$dm_pcache_ko" ] || [ ! -f "$(module_build_dir "$rel")/dm-pcache/dm-pcache.ko" ] ||
			dm_pcache_ko=$(module_build_dir "$rel")/dm-pcache/dm-pcache.ko
		[ -z "$dm_pcache_ko" ] || nvdimms=5 ndisks=7
	fi
	results=$PCACHE_BUILD/results
	mkdir -p "$results"
	stamp=$(date +%Y%m%d-%H%M%S)
	log=$results/bench-$kernel$mode-$stamp.log
	csv=$results/bench-$kernel$mode-$stamp.csv
	say "bench: guest with Debian $rel, $nvdimms x 2 GiB preallocated pmem, $ndisks disks; $repeat rounds, runs of $ios I/Os per job or ${runtime}s${mode:+; instruction counts (QEMU -icount), not time}"
	start=$SECONDS
	"$PCACHE_TOP/scripts/vm.sh" "${vm_opts[@]}" --kernel "$kernel" --fresh --nvdimms "$nvdimms" --pmem 2G --pmem-prealloc --discard-pmem \
		--disks "$ndisks" --disk-size 4G --timeout 3600 \
		--append tsc=reliable --images "$PCACHE_BUILD/vm/bench" --log "$log" \
		-- env BENCH_REPEAT="$repeat" BENCH_IOS="$ios" BENCH_RUNTIME="$runtime" \
		BENCH_WORKLOADS="$workloads" BENCH_DEVICES="$devices" BENCH_REPLAY="$replay" BENCH_DM_PCACHE_KO="$dm_pcache_ko" \
		BENCH_IOSTATS="$iostats" \
		"$PCACHE_TOP/scripts/bench.sh" --in-guest |
		{ grep --line-buffered '^bench:' || true; } | sed -u 's/^bench: /  /' >&2
	{
		echo "kernel,device,workload,round,iops,bw_kib_s,lat_mean_us,lat_p99_us,lat_p999_us,read_kib,backing_read_kib,backing_write_kib"
		sed -n "s/^BENCH,/$rel,/p" "$log" | tr -d '\r'
	} >"$csv"
	{
		echo "kernel,backing,keys,segments,replay_us,cached_kib,extents"
		sed -n "s/^REPLAY,/$rel,/p" "$log" | tr -d '\r'
	} >"${csv%.csv}-replay.csv"
	[ "$(wc -l <"$csv")" -gt 1 ] || die "no results in $log"
	python3 "$PCACHE_TOP/scripts/bench-report.py" "$csv" "${csv%.csv}.svg" \
		"${csv%.csv}-replay.csv"
	say "bench: $((SECONDS - start)) s; results in $csv (and .json), plot in ${csv%.csv}.svg, console log in $log"
	exit 0
fi

# In the guest, as root.
: "${PCACHE_KO:?}" "${PCACHE_PHASE:?}" "${BENCH_REPEAT:?}" "${BENCH_IOS:?}"
: "${BENCH_RUNTIME:?}" "${BENCH_WORKLOADS:?}" "${BENCH_DEVICES:?}" "${BENCH_REPLAY:?}"
: "${BENCH_IOSTATS=}"
BENCH_DM_PCACHE_KO=${BENCH_DM_PCACHE_KO:-}
REGION=256M
MISS_REGION=512M
CACHE=/sys/bus/pcache/devices/cache0
progress() { echo "bench: $*"; }
mapfile -t disks < <(printf '%s\n' /dev/disk/by-id/virtio-* | sort)
[ "${#disks[@]}" -ge 6 ] || { progress "want 6 disks, have ${#disks[@]}"; exit 1; }
# The kernel's name of a disk (vdb), for its I/O counters.
kname() { basename "$(readlink -f "$1")"; }

# The workloads: name, then fio options.  All 4 KiB random I/O and the
# sequential writes go to the first 256 MiB of a device; "randread-*"
# workloads are read hits (warmed up just before), "missread-*" read a
# region no one has written.
WORKLOADS=(
	"randwrite-qd1"		"--rw=randwrite --bs=4k --ioengine=psync --iodepth=1 --numjobs=1"
	"randwrite-qd1-2j"	"--rw=randwrite --bs=4k --ioengine=psync --iodepth=1 --numjobs=2"
	"randwrite-libaio-qd32"	"--rw=randwrite --bs=4k --ioengine=libaio --iodepth=32 --numjobs=1"
	"randwrite-uring-qd32"	"--rw=randwrite --bs=4k --ioengine=io_uring --iodepth=32 --numjobs=1"
	"randwrite-fsync-qd1"	"--rw=randwrite --bs=4k --ioengine=psync --iodepth=1 --numjobs=1 --fsync=1"
	"randrw70-qd1"		"--rw=randrw --rwmixread=70 --bs=4k --ioengine=psync --iodepth=1 --numjobs=1"
	"seqwrite-64k-qd1"	"--rw=write --bs=64k --ioengine=psync --iodepth=1 --numjobs=1"
	"seqwrite-1m-qd1"	"--rw=write --bs=1M --ioengine=psync --iodepth=1 --numjobs=1"
	"randread-qd1"		"--rw=randread --bs=4k --ioengine=psync --iodepth=1 --numjobs=1"
	"randread-qd1-2j"	"--rw=randread --bs=4k --ioengine=psync --iodepth=1 --numjobs=2"
	"randread-libaio-qd32"	"--rw=randread --bs=4k --ioengine=libaio --iodepth=32 --numjobs=1"
	"randread-uring-qd32"	"--rw=randread --bs=4k --ioengine=io_uring --iodepth=32 --numjobs=1"
	"missread-qd1"		"--rw=randread --bs=4k --ioengine=psync --iodepth=1 --numjobs=1"
)

# The devices, in the order they take turns: name, block device, and the
# backing disk whose counters show what reached it ("" for none).
DEVICES=()
declare -A DEV_PATH DEV_BACKING
add_device() {
	[[ $1 =~ $BENCH_DEVICES ]] || [ "$1" = pcache0 ] || return 0
	DEVICES+=("$1")
	DEV_PATH[$1]=$2
	DEV_BACKING[$1]=$3
	progress "device $1: $2${3:+ (backing /dev/$3)}"
}

# fio_workload WORKLOAD OPTIONS ROUND: one fio for every device, one after
# the other (stonewall), one BENCH line each.  One fio and one parse per
# workload: under TCG, starting fio and python costs seconds.
fio_workload() {
	local workload=$1 opts=$2 round=$3 region=$REGION offset=0 dev bk
	local -A before after
	local -a jobs=(--output-format=json --output=/tmp/bench.json --direct=1 --norandommap --randrepeat=0 --group_reporting
		--lat_percentiles=1 --percentile_list=99:99.9 --unified_rw_reporting=both)
	if [[ $workload == missread-* ]]; then
		# 1 GiB on: never written, another 512 MiB each round.
		offset=$(((1024 + ((round - 1) % 5) * 512) << 20))
		region=$MISS_REGION
	fi
	for dev in "${DEVICES[@]}"; do
		if [[ $workload == randread-* ]]; then
			jobs+=(--name="warmup-$dev" --new_group --stonewall
				--filename="${DEV_PATH[$dev]}" --ioengine=libaio
				--iodepth=8 --rw=write --bs=1M --offset=0 --size="$REGION")
		fi
		# shellcheck disable=SC2206 # $opts is a list of options
		jobs+=(--name="$dev" --new_group --stonewall --filename="${DEV_PATH[$dev]}"
			$opts --offset="$offset" --size="$region"
			--number_ios="$BENCH_IOS" --runtime="$BENCH_RUNTIME")
	done
	# /sys/block/X/stat: sectors read are field 3, sectors written field 7.
	# The backing disks are the devices' own: what they did during this
	# fio is what their device did to them (reads: its misses; writes:
	# also writeback after its run).
	for dev in "${DEVICES[@]}"; do
		bk=${DEV_BACKING[$dev]}
		[ -z "$bk" ] || before[$dev]=$(awk '{print $3 " " $7}' "/sys/block/$bk/stat")
	done
	fio "${jobs[@]}"
	for dev in "${DEVICES[@]}"; do
		bk=${DEV_BACKING[$dev]}
		[ -z "$bk" ] || after[$dev]=$(awk '{print $3 " " $7}' "/sys/block/$bk/stat")
	done
	for dev in "${DEVICES[@]}"; do
		echo "$dev ${before[$dev]:-- -} ${after[$dev]:-- -}"
	done | python3 -c 'import json, sys
jobs = {j["jobname"]: j for j in json.load(open("/tmp/bench.json"))["jobs"]}
for line in sys.stdin:
    dev, rb, wb, ra, wa = line.split()
    j = jobs[dev]
    d = j["mixed"]
    lat = d["lat_ns"]
    print("BENCH,%s,%s,%s,%.0f,%.0f,%.2f,%.2f,%.2f,%d,%s,%s" % (
        dev, sys.argv[1], sys.argv[2], d["iops"], d["bw_bytes"] / 1024,
        lat["mean"] / 1000, lat["percentile"]["99.000000"] / 1000,
        lat["percentile"]["99.900000"] / 1000, j["read"]["io_bytes"] // 1024,
        (int(ra) - int(rb)) // 2 if rb != "-" else "",
        (int(wa) - int(wb)) // 2 if wb != "-" else ""))' "$workload" "$round"
}

setup_pcache() {
	local pmem=$1 disk=$2 id segs seg_size reserved
	[ "$(cat "$CACHE/path")" = "$pmem" ] || { progress "cache0 is not on $pmem"; return 1; }
	# The replay measurement's two disks go (their data with them), and
	# the bench's disk gets every segment that is left.
	for id in "$CACHE"/backing*; do
		[ -e "$id" ] || continue
		echo "backing=${id##*/backing},force" >"$CACHE/detach"
	done
	segs=$(cat "$CACHE/segments_total")
	seg_size=$(cat "$CACHE/segment_size")
	reserved=$(cat "$CACHE/segments_reserved")
	echo "path=$disk,size=$(((segs - reserved) * seg_size))" >"$CACHE/attach"
	for id in "$CACHE"/backing*; do
		[ "$(cat "$id/path")" = "$disk" ] && add_device pcache0 "/dev/$(cat "$id/disk")" "$(kname "$disk")"
	done
}

setup_dm_writecache() {
	local pmem=$1 disk=$2
	modprobe -C /dev/null dm-writecache
	dmsetup create bench-wc --table "0 $(blockdev --getsz "$disk") writecache p $disk $pmem 4096 0"
	dmsetup mknodes
	add_device dm-writecache /dev/mapper/bench-wc "$(kname "$disk")"
}

setup_bcache() {
	local pmem=$1 disk=$2 f cset
	modprobe -C /dev/null bcache
	make-bcache --writeback -C "$pmem" -B "$(readlink -f "$disk")" >/dev/null
	echo "$pmem" >/sys/fs/bcache/register
	readlink -f "$disk" >/sys/fs/bcache/register
	for _ in $(seq 100); do
		[ -e /sys/block/bcache0/bcache/cache ] && break
		sleep 0.1
	done
	echo writeback >/sys/block/bcache0/bcache/cache_mode
	# Cache everything: no bypass of sequential I/O, nor of I/O while
	# the cache device is "congested".
	echo 0 >/sys/block/bcache0/bcache/sequential_cutoff
	cset=/sys/block/bcache0/bcache/cache
	for f in congested_read_threshold_us congested_write_threshold_us; do
		[ ! -e "$cset/$f" ] || echo 0 >"$cset/$f"
	done
	add_device bcache /dev/bcache0 "$(kname "$disk")"
}

# dm-pcache formats a pmem it does not recognise (a fresh, zeroed one) by
# itself.  No data CRC (its default): pcache has none either.
setup_dm_pcache() {
	local pmem=$1 disk=$2
	modprobe -C /dev/null dm-mod
	insmod "$BENCH_DM_PCACHE_KO"
	dmsetup create bench-pc --table \
		"0 $(blockdev --getsz "$disk") pcache $pmem $disk 4 cache_mode writeback data_crc false"
	dmsetup mknodes
	add_device dm-pcache /dev/mapper/bench-pc "$(kname "$disk")"
}

# One line per device; the first is the reference of the ratios.  A peer
# is a setup function and a line.
setup_devices() {
	add_device pmem /dev/pmem1 ""
	add_device backing "${disks[1]}" ""
	setup_pcache /dev/pmem0 "${disks[0]}"
	[[ ! dm-writecache =~ $BENCH_DEVICES ]] || setup_dm_writecache /dev/pmem2 "${disks[2]}"
	[[ ! bcache =~ $BENCH_DEVICES ]] || setup_bcache /dev/pmem3 "${disks[3]}"
	[ -z "$BENCH_DM_PCACHE_KO" ] || setup_dm_pcache /dev/pmem4 "${disks[6]}"
}

if [ "$PCACHE_PHASE" -eq 1 ]; then
	namespaces=(0 1 2 3)
	[ -z "$BENCH_DM_PCACHE_KO" ] || namespaces+=(4)
	progress "provisioning pmem0-pmem${namespaces[-1]} (fsdax); pcache on pmem0"
	for n in "${namespaces[@]}"; do
		ndctl create-namespace -f -e "namespace$n.0" -m fsdax >/dev/null
	done
	insmod "$PCACHE_KO"
	echo path=/dev/pmem0,format >/sys/bus/pcache/register
fi
if [ "$PCACHE_PHASE" -eq 1 ] && [ "$BENCH_REPLAY" = 1 ]; then
	echo "path=${disks[4]},size=1280M" >"$CACHE/attach"
	echo "path=${disks[5]},size=320M" >"$CACHE/attach"
	# Replay is to read the whole log: nothing written back before the cut.
	for b in "$CACHE"/backing*; do
		echo 3600000 >"$b/writeback_delay_ms"
		echo 100 >"$b/dirty_high_percent"
		echo 99 >"$b/dirty_low_percent"
	done
	# What replay has to read back after the power cut: 1 GiB of 4 KiB
	# random writes (a key per 4 KiB) and 256 MiB of 1 MiB writes.
	progress "replay set-up: 1 GiB of 4 KiB random writes to pcache0, 256 MiB of 1 MiB writes to pcache1"
	fio --name=small --filename=/dev/pcache0 --direct=1 --ioengine=libaio \
		--iodepth=8 --rw=randwrite --bs=4k --size=1G \
		--norandommap --randrepeat=0 --io_size=1G >/dev/null
	fio --name=large --filename=/dev/pcache1 --direct=1 --ioengine=libaio \
		--iodepth=8 --rw=write --bs=1M --size=256M >/dev/null
	pcvm-powercut "bench: replay after a power cut"
fi

if [ "$PCACHE_PHASE" -gt 1 ]; then
	progress "after the power cut: registering pmem0 again, replaying the logs"
	insmod "$PCACHE_KO"
	echo path=/dev/pmem0 >/sys/bus/pcache/register
	# "backingN: replayed K keys from S segments in T us: X KiB cached in E extents, ..."
	dmesg | sed -n \
		's/.*pcache: .*\(backing[0-9]*\): replayed \([0-9]*\) keys from \([0-9]*\) segments in \([0-9]*\) us: \([0-9]*\) KiB cached in \([0-9]*\) extents.*/REPLAY,\1,\2,\3,\4,\5,\6/p'
	progress "$(dmesg | grep -c 'pcache: .*replayed') logs replayed"
fi

setup_devices
# I/O accounting costs timestamps and per-cpu counters on every request;
# drivers differ in whether it is on (bio-based pmem: off).
for dev in "${DEVICES[@]}"; do
	f=/sys/block/$(kname "${DEV_PATH[$dev]}")/queue/iostats
	[ -z "$BENCH_IOSTATS" ] || echo "$BENCH_IOSTATS" >"$f"
	progress "device $dev: iostats $(cat "$f")"
done
nwl=$((${#WORKLOADS[@]} / 2))
runs=0
for round in $(seq 1 "$BENCH_REPEAT"); do
	for ((w = 0; w < nwl; w++)); do
		workload=${WORKLOADS[2 * w]}
		[[ $workload =~ $BENCH_WORKLOADS ]] || continue
		while IFS= read -r line; do
			echo "$line"
			runs=$((runs + 1))
			progress "round $round/$BENCH_REPEAT $workload $(echo "$line" | cut -d, -f2): $(echo "$line" | cut -d, -f5) IOPS"
		done < <(fio_workload "$workload" "${WORKLOADS[2 * w + 1]}" "$round")
	done
done
progress "$runs runs done"
# What the caches say they did, for the console log.
for f in "$CACHE"/backing*/{dirty_bytes,written_back_bytes,segments_reclaimed,waits_for_space,writeback_errors}; do
	[ ! -e "$f" ] || echo "STAT,pcache0,${f##*/},$(cat "$f")"
done
[ -z "${DEV_PATH[dm-writecache]:-}" ] || echo "STAT,dm-writecache,status,$(dmsetup status bench-wc)"
[ -z "${DEV_PATH[dm-pcache]:-}" ] || echo "STAT,dm-pcache,status,$(dmsetup status bench-pc)"
if [ -n "${DEV_PATH[bcache]:-}" ]; then
	for f in dirty_data stats_total/cache_hits stats_total/cache_misses stats_total/cache_bypass_hits stats_total/cache_bypass_misses; do
		echo "STAT,bcache,$f,$(cat "/sys/block/bcache0/bcache/$f")"
	done
fi
