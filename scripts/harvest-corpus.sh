#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Regenerate the fuzzers' seeds taken from real pmem images:
# tests/host/corpus/meta-real/ (fuzz_meta) and corpus/replay-real/
# (fuzz_replay).  The synthetic seeds (make -C tests/host corpus) are
# made up by hand; these are what the module really writes.
#
# One guest (scripts/vm.sh) formats a cache on a vNVDIMM, attaches
# two backing disks, writes a mix through both (4 KiB random writes, 1 MiB
# writes, overwrites; writeback running on one backing only) and cuts the
# power while more writes are in flight.  After each step it copies the
# head of /dev/pmem0 (the metadata) to a third, scratch disk.  On the host,
# tests/host/cut_seeds finds the superblock by its magic (the fsdax
# namespace puts labels and an info block in front of it) and cuts out:
#   meta-real/real-format, real-attach, real-writes, real-powercut
#       metadata images (meta_image.h), as the module would read them
#   replay-real/real-powercut-segN-{raw,fit,tail}
#       fuzz_replay inputs from written segments of the final image: the
#       header and records as found (raw), the same with their data moved
#       into the harness's 64 KiB segment (fit), and the end of the log
#       (tail; fit as well).  See tests/host/cut_seeds.c.
#
# usage: harvest-corpus.sh [--kernel SERIES] [--pmem SIZE] [--keep]
#   --kernel SERIES  guest kernel (default 6.12)
#   --pmem SIZE      size of the vNVDIMM, whole GiB for vm.sh (default 1G;
#                    a tmpfs file, sparse: only what the guest writes is used)
#   --keep           keep the vNVDIMM file in /dev/shm (default: delete it)
# The module must be built (scripts/build.sh SERIES); PCACHE_BUILD is
# honoured.  The guest's console log goes to $PCACHE_BUILD/harvest/console.log.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

# Size of the metadata copy per step, enough for PCACHE_META_END.
STEP_BYTES=$((64 << 10))
STEPS=(format attach writes)

guest() {
	local bus=/sys/bus/pcache cache=/sys/bus/pcache/devices/cache0 i link
	[ "${PCACHE_PHASE:-1}" -eq 1 ] || exit 0	# after the power cut
	step() {
		echo "harvest: step $1 ($2): copy the metadata to /dev/vdc"
		dd if=/dev/pmem0 of=/dev/vdc bs="$STEP_BYTES" count=1 seek="$1" \
			iflag=direct oflag=direct conv=fsync status=none
	}
	set -x
	ndctl create-namespace -f -e namespace0.0 -m fsdax >/dev/null
	insmod "${PCACHE_KO:?set by vm.sh}"
	echo path=/dev/pmem0,format >"$bus/register"
	step 0 format
	# Attach wants a persistent name of the disk, not vdX.
	for i in vda vdb; do
		for link in /dev/disk/by-id/virtio-*; do
			[ "$(readlink -f "$link")" != "/dev/$i" ] ||
				echo "path=$link,size=120M" >"$cache/attach"
		done
	done
	[ -b /dev/pcache1 ]
	# Backing 0 keeps its data dirty, backing 1 is written back.
	echo 3600000 >"$cache/backing0/writeback_delay_ms"
	echo 100 >"$cache/backing1/writeback_delay_ms"
	step 1 attach
	for i in 0 1; do
		fio --name=rand4k --filename="/dev/pcache$i" --direct=1 \
			--ioengine=psync --rw=randwrite --bs=4k --size=16M \
			--io_size=6M --randseed=$((11 + i)) --eta=never --output=/dev/null
		dd if=/dev/urandom of="/dev/pcache$i" bs=1M count=8 seek=32 \
			oflag=direct status=none
		# Overwrites: the same 1 MiB again in 4 KiB and 64 KiB pieces.
		fio --name=over --filename="/dev/pcache$i" --direct=1 \
			--ioengine=psync --rw=randwrite --bssplit=4k/50:64k/50 \
			--offset=32M --size=1M --io_size=2M \
			--randseed=$((21 + i)) --eta=never --output=/dev/null
	done
	sync
	sleep 2
	step 2 writes
	for i in 0 1; do
		fio --name=inflight --filename="/dev/pcache$i" --direct=1 \
			--ioengine=psync --rw=randwrite --bs=4k --size=64M \
			--time_based --runtime=60 --rate_iops=200 \
			--randseed=$((31 + i)) \
			--eta=never --output=/dev/null >/dev/null 2>&1 &
	done
	sleep 3
	# vm.sh sees the marker only at the start of a console line.
	echo
	pcvm-powercut "harvest: power cut during writes"
}

if [ "${1:-}" = --guest ]; then
	guest
	exit
fi

kernel=6.12 pmem=1G keep=""
while [ $# -gt 0 ]; do
	case "$1" in
	--kernel) kernel=$2; shift ;;
	--pmem) pmem=$2; shift ;;
	--keep) keep=1 ;;
	*) die "usage: harvest-corpus.sh [--kernel SERIES] [--pmem SIZE] [--keep]" ;;
	esac
	shift
done

cd "$PCACHE_TOP"
rel=$(kernel_release "$kernel") || die "kernel $kernel is not set up: run scripts/setup.sh"
[ -f "$(module_path "$rel")" ] || die "no $(module_path "$rel"): run scripts/build.sh $kernel"
images=$PCACHE_BUILD/harvest
# Where vm.sh keeps the vNVDIMM of these --images (see its pmem_prefix).
pmem_img=/dev/shm/pcache-$(id -u)/$(echo "$images" | md5sum | cut -c1-12)-pmem0.img
meta_dir=tests/host/corpus/meta-real
replay_dir=tests/host/corpus/replay-real
host_build=$PCACHE_BUILD/host
work=$images/steps
cleanup() { [ -n "$keep" ] || rm -f "$pmem_img"; }
trap cleanup EXIT

say "harvest: build tests/host/cut_seeds"
run make -s -C tests/host O="$host_build" "$host_build/cut_seeds"

say "harvest: one guest ($kernel, $pmem of pmem): format, attach, write, power cut"
mkdir -p "$images" "$PCACHE_BUILD/vm"	# vm.sh keeps its run directories there
rc=0
run nice -n 19 scripts/vm.sh --kernel "$kernel" --images "$images" --fresh \
	--pmem "$pmem" --disks 3 --disk-size 256M --max-boots 2 --quiet \
	--log "$images/console.log" -- "$PCACHE_TOP/scripts/harvest-corpus.sh" --guest ||
	rc=$?
[ "$rc" -eq 0 ] || die "the guest failed ($rc): see $images/console.log"
[ -f "$pmem_img" ] || die "no vNVDIMM file $pmem_img after the run"

say "harvest: cut seeds into $meta_dir/ and $replay_dir/"
rm -rf "$meta_dir" "$replay_dir" "$work"
mkdir -p "$meta_dir" "$replay_dir" "$work"
for i in "${!STEPS[@]}"; do
	run dd if="$images/disk2.img" of="$work/${STEPS[$i]}" bs="$STEP_BYTES" \
		skip="$i" count=1 status=none
	run "$host_build/cut_seeds" "$work/${STEPS[$i]}" "${STEPS[$i]}" "$meta_dir"
done
run "$host_build/cut_seeds" "$pmem_img" powercut "$meta_dir" "$replay_dir"
say "harvest: $(find "$meta_dir" -type f | wc -l) metadata seeds, $(find "$replay_dir" -type f | wc -l) replay seeds, $(du -sk "$meta_dir" "$replay_dir" | awk '{ s += $1 } END { print s }') KiB"
