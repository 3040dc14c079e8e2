#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The module loads, creates its sysfs root, and unloads cleanly, repeatedly.
. "$(dirname "$0")/lib.sh"

test_load() {
	load_pcache
	[ -d /sys/module/pcache ] || fail "/sys/module/pcache missing after insmod"
	dmesg | grep -q 'pcache: version .* loaded' || fail "no load message in dmesg"
}

test_sysfs_root() {
	[ -d /sys/bus/pcache ] || fail "/sys/bus/pcache missing"
	[ "$(cat /sys/bus/pcache/format_version)" = 1 ] || fail "format_version is not 1"
	! (echo 2 >/sys/bus/pcache/format_version) 2>/dev/null || fail "format_version is writable"
}

test_unload() {
	[ "$(cat /sys/module/pcache/refcnt)" = 0 ] || fail "module is still referenced"
	rmmod pcache
	[ ! -e /sys/bus/pcache ] || fail "/sys/bus/pcache still there after rmmod"
	[ ! -e /sys/module/pcache ] || fail "/sys/module/pcache still there after rmmod"
}

test_reload_loop() {
	local i
	for i in $(seq 20); do
		insmod "$PCACHE_KO"
		[ -d /sys/bus/pcache ] || fail "iteration $i: no sysfs root"
		rmmod pcache
	done
}

ktap_plan 4
ktap_test "module loads" test_load
ktap_test "sysfs root /sys/bus/pcache" test_sysfs_root
ktap_test "module unloads and removes its sysfs root" test_unload
ktap_test "20 load/unload cycles" test_reload_loop
ktap_finish
