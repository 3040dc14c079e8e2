#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The module DKMS built and installed for this kernel (scripts/dkms-check.sh,
# make dkms-check; not part of the selftest directory's run) is pcache, for
# this kernel, from these sources, and works: it loads, formats a cache,
# attaches a disk, passes a short fio verify, and unloads.
#
# pcvm: disks=1
. "$(dirname "$0")/lib.sh"

SYS=/sys/bus/pcache
CACHE=$SYS/devices/cache0
rel=$(uname -r)
DKMS_DIR=${PCACHE_TEST_DKMS_ROOT:?run by scripts/dkms-check.sh}/lib/modules/$rel/updates/dkms
# Compressed like the kernel's own modules (6.12: pcache.ko.xz).
KO=$(find "$DKMS_DIR" -name 'pcache.ko*' 2>/dev/null | head -n 1)

test_module() {
	[ -n "$KO" ] || fail "DKMS installed no module for $rel in $DKMS_DIR"
	[ "$(modinfo -F vermagic "$KO" | cut -d' ' -f1)" = "$rel" ] ||
		fail "vermagic $(modinfo -F vermagic "$KO"), not $rel"
	[ "$(modinfo -F srcversion "$KO")" = "$(modinfo -F srcversion "$PCACHE_KO")" ] ||
		fail "DKMS built other sources than this tree's build (srcversion differs)"
	echo "$KO: $(modinfo -F version "$KO"), srcversion $(modinfo -F srcversion "$KO"), for $rel"
}

test_works() {
	local dep
	for dep in $(modinfo -F depends "$KO" | tr , ' '); do
		modprobe -C /dev/null "$dep"
	done
	insmod "$KO" || fail "the DKMS module does not load"
	make_fsdax_namespace
	echo path=/dev/pmem0,format >"$SYS/register"
	echo "path=$(backing_path),size=64M" >"$CACHE/attach"
	run_fio dkms --name=dkms --filename=/dev/pcache0 --direct=1 --rw=randwrite \
		--bs=4k --size=32M --verify=crc32c --do_verify=1 --ioengine=psync
	echo backing=0 >"$CACHE/detach"
	echo cache=0 >"$SYS/unregister"
	rmmod pcache || fail "the DKMS module does not unload"
}

ktap_plan 2
ktap_test "DKMS installed pcache for $rel, built from this tree" test_module
ktap_test "the DKMS module loads, caches a disk with fio verify, unloads" test_works
ktap_finish
