#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Benchmark /dev/pcache0 against raw pmem in one guest: fio, 4 KiB
# random writes and random read hits at queue depth 1, with the synchronous
# psync engine and with libaio.  Runs alternate between the devices (A B A
# B ...) and repeat, so that the noise of an emulated machine shows as a
# spread; the report gives the median of each and pcache's ratio to pmem.
#
# The guest has two identical vNVDIMMs: /dev/pmem0 is pcache's cache
# device, /dev/pmem1 the raw pmem that pcache is measured against (fio must
# not write over a cache device in use).  It is set up for measuring:
#  - the vNVDIMM's file is preallocated on the host (QEMU prealloc=on), or
#    the first write to every page of pmem pays a host page fault that a
#    real NVDIMM does not have: pcache's log keeps moving to fresh pages;
#  - the guest's clocksource is its TSC (tsc=reliable): under TCG the
#    kernel otherwise falls back to the HPET, and every timestamp the block
#    layer and fio take becomes an emulated MMIO read.
# Writes per run are bounded (--number_ios) so that the runs measure the
# write path, not waits for space; background writeback runs meanwhile, as
# it does on any machine with dirty data (every second, and back to back
# once half the share is used).
#
# Before the rounds, the guest writes 1 GiB of 4 KiB random writes and
# 256 MiB of 1 MiB writes through two pcache disks and cuts its own power;
# the next boot registers the pmem again and the replay time of each log
# (logged by pcache) is reported per GiB of log and of cached data.
#
# Results: a table on stdout, build/results/bench-KERNEL-DATE.csv (and
# -replay.csv) and an SVG plot next to it.
#
# usage: bench.sh [--kernel SERIES] [--repeat N] [--ios N]
set -euo pipefail
. "$(dirname "$0")/lib.sh"

if [ "${1:-}" != --in-guest ]; then
	kernel=6.1 repeat=3 ios=50000
	while [ $# -gt 0 ]; do
		case "$1" in
		--kernel) kernel=$2; shift ;;
		--repeat) repeat=$2; shift ;;
		--ios) ios=$2; shift ;;
		*) die "unknown option $1 (see the header of $0)" ;;
		esac
		shift
	done
	[[ $repeat =~ ^[1-9][0-9]*$ ]] || die "--repeat wants a positive number"
	[[ $ios =~ ^[1-9][0-9]*$ ]] || die "--ios wants a positive number"
	rel=$(kernel_release "$kernel")
	results=$PCACHE_BUILD/results
	mkdir -p "$results"
	stamp=$(date +%Y%m%d-%H%M%S)
	log=$results/bench-$kernel-$stamp.log
	csv=$results/bench-$kernel-$stamp.csv
	say "bench: guest with Debian $rel, 2 x 3 GiB preallocated pmem; $repeat rounds of $ios I/Os per run"
	"$PCACHE_TOP/scripts/vm.sh" --kernel "$kernel" --fresh --nvdimms 2 --pmem 3G --pmem-prealloc --discard-pmem \
		--disk-size 4G \
		--append tsc=reliable --images "$PCACHE_BUILD/vm/bench" --log "$log" \
		-- env BENCH_REPEAT="$repeat" BENCH_IOS="$ios" \
		"$PCACHE_TOP/scripts/bench.sh" --in-guest |
		{ grep --line-buffered '^bench:' || true; } | sed -u 's/^bench: /  /' >&2
	{
		echo "kernel,device,workload,round,iops,lat_mean_us,lat_p99_us"
		sed -n "s/^BENCH,/$rel,/p" "$log" | tr -d '\r'
	} >"$csv"
	{
		echo "kernel,backing,keys,segments,replay_us,cached_kib,extents"
		sed -n "s/^REPLAY,/$rel,/p" "$log" | tr -d '\r'
	} >"${csv%.csv}-replay.csv"
	[ "$(wc -l <"$csv")" -gt 1 ] || die "no results in $log"
	python3 "$PCACHE_TOP/scripts/bench-report.py" "$csv" "${csv%.csv}.svg" \
		"${csv%.csv}-replay.csv"
	say "bench: results in $csv, plot in ${csv%.csv}.svg, console log in $log"
	exit 0
fi

# In the guest, as root.
: "${PCACHE_KO:?}" "${PCACHE_PHASE:?}" "${BENCH_REPEAT:?}" "${BENCH_IOS:?}"
REGION=256M
CACHE=/sys/bus/pcache/devices/cache0
progress() { echo "bench: $*"; }
mapfile -t disks < <(printf '%s\n' /dev/disk/by-id/virtio-* | sort)

# fio_run DEVICE WORKLOAD ROUND: one run, one BENCH line on the console.
fio_run() {
	local dev=$1 workload=$2 round=$3 rw engine
	rw=${workload%%-*}
	engine=${workload#*-}
	fio --name=bench --filename="/dev/$dev" --direct=1 --ioengine="$engine" \
		--iodepth=1 --rw="$rw" --bs=4k --size=$REGION --norandommap \
		--randrepeat=0 --number_ios="$BENCH_IOS" --lat_percentiles=1 \
		--output-format=json |
		python3 -c 'import json, sys
j = json.load(sys.stdin)["jobs"][0]
d = j["write"] if j["write"]["io_bytes"] else j["read"]
lat = d["lat_ns"]
print("BENCH,%s,%s,%s,%.0f,%.2f,%.2f" % (sys.argv[1], sys.argv[2], sys.argv[3],
      d["iops"], lat["mean"] / 1000, lat["percentile"]["99.000000"] / 1000))' \
			"$dev" "$workload" "$round"
}

if [ "$PCACHE_PHASE" -eq 1 ]; then
	progress "provisioning pmem0 and pmem1 (fsdax); pcache on pmem0 with two disks"
	ndctl create-namespace -f -e namespace0.0 -m fsdax >/dev/null
	ndctl create-namespace -f -e namespace1.0 -m fsdax >/dev/null
	insmod "$PCACHE_KO"
	echo path=/dev/pmem0,format >/sys/bus/pcache/register
	echo "path=${disks[0]},size=2560M" >"$CACHE/attach"
	echo "path=${disks[1]},size=320M" >"$CACHE/attach"
	# What replay has to read back after the power cut: 1 GiB of 4 KiB
	# random writes (a key per 4 KiB) and 256 MiB of 1 MiB writes.
	progress "replay set-up: 1 GiB of 4 KiB random writes to pcache0, 256 MiB of 1 MiB writes to pcache1"
	fio --name=small --filename=/dev/pcache0 --direct=1 --ioengine=libaio \
		--iodepth=8 --rw=randwrite --bs=4k --size=1G --offset=1G \
		--norandommap --randrepeat=0 --io_size=1G >/dev/null
	fio --name=large --filename=/dev/pcache1 --direct=1 --ioengine=libaio \
		--iodepth=8 --rw=write --bs=1M --size=256M >/dev/null
	pcvm-powercut "bench: replay after a power cut"
fi

progress "after the power cut: registering pmem0 again, replaying the logs"
insmod "$PCACHE_KO"
echo path=/dev/pmem0 >/sys/bus/pcache/register
# "backingN: replayed K keys from S segments in T us: X KiB cached in E extents, ..."
dmesg | grep 'pcache: .*replayed' | sed -n \
	's/.*\(backing[0-9]*\): replayed \([0-9]*\) keys from \([0-9]*\) segments in \([0-9]*\) us: \([0-9]*\) KiB cached in \([0-9]*\) extents.*/REPLAY,\1,\2,\3,\4,\5,\6/p'
progress "$(dmesg | grep -c 'pcache: .*replayed') logs replayed"

# Reads are to hit: the region goes into the cache first; the raw pmem's
# region is written once too, so that both start warm.
fio --name=fill --filename=/dev/pcache0 --direct=1 --ioengine=libaio \
	--iodepth=8 --rw=write --bs=1M --size=$REGION >/dev/null
dd if=/dev/zero of=/dev/pmem1 bs=1M count=256 oflag=direct status=none

workloads=(randwrite-psync randwrite-libaio randread-psync randread-libaio)
for round in $(seq 1 "$BENCH_REPEAT"); do
	for workload in "${workloads[@]}"; do
		for dev in pmem1 pcache0; do
			line=$(fio_run "$dev" "$workload" "$round")
			echo "$line"
			progress "round $round/$BENCH_REPEAT $workload $dev: $(echo "$line" | cut -d, -f5) IOPS"
		done
	done
done
