#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The test bench itself survives a power cut: data written to pmem and to a
# backing disk (flushed) before QEMU is killed is there after the next boot,
# and the fsdax namespace comes back by itself.
#
# pcvm: disks=2
. "$(dirname "$0")/lib.sh"

PMEM_BYTES=$((16 << 20))
DISK_BYTES=$((16 << 20))
seed=${PCACHE_RUN_ID:?}

write_patterns() {
	make_fsdax_namespace
	pattern "pmem-$seed" "$PMEM_BYTES" | dd of=/dev/pmem0 bs=1M oflag=direct conv=fsync status=none
	pattern "disk-$seed" "$DISK_BYTES" | dd of=/dev/vda bs=1M oflag=direct conv=fsync status=none
	echo "pmem0 sha256 $(head -c "$PMEM_BYTES" /dev/pmem0 | sha256sum | cut -c1-16)"
	echo "vda sha256 $(head -c "$DISK_BYTES" /dev/vda | sha256sum | cut -c1-16)"
}

same_as_pattern() {
	local dev=$1 name=$2 bytes=$3
	cmp <(head -c "$bytes" "$dev") <(pattern "$name-$seed" "$bytes") ||
		fail "$dev does not hold what was written before the power cut"
}

verify_pmem() {
	ndctl list -N | grep -q '"mode":"fsdax"' || fail "fsdax namespace not found after the power cut"
	[ -b /dev/pmem0 ] || fail "/dev/pmem0 missing after the power cut"
	same_as_pattern /dev/pmem0 pmem "$PMEM_BYTES"
}

verify_disk() {
	same_as_pattern /dev/vda disk "$DISK_BYTES"
}

case "$PCACHE_PHASE" in
1)
	ktap_plan 3
	ktap_test "write patterns to pmem and a disk" write_patterns
	# Cut the power while unrelated writes are in flight on the other disk.
	dd if=/dev/urandom of=/dev/vdb bs=1M count=512 oflag=direct status=none &
	sleep 1
	pcvm-powercut "after flushed pattern writes"
	;;
2)
	KTAP_NUM=1
	ktap_test "pmem holds its data after a power cut" verify_pmem
	ktap_test "disk holds its flushed data after a power cut" verify_disk
	ktap_finish
	;;
esac
