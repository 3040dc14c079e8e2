#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Boot-time assembly with udev.  What `make install` installs (module, udev
# rules and helper, pcachectl) is installed in phase 1 and is in place at
# every later boot, as on a machine that has it, before systemd-udevd
# starts and coldplugs the devices; no test command registers or attaches
# anything after phase 1.
#
# Phases: 1 provision with pcachectl (fsdax namespace, format, attach two
# disks by their kernel names), an ext4 filesystem on one pcache disk and a
# pattern on the other, clean reboot; 2 both come back with their data and
# stable names, udevadm trigger changes nothing, power cut during writes;
# 3 boot with the cache device and backing disk 1 absent, then they appear
# (the cache device first, the disk hot-added later): assembled in that
# order, every acknowledged write reads back; 4 a blank disk with another
# serial in the place of backing disk 1 is left alone, and the logs and
# pcachectl status say what is waiting for what.
#
# pcvm: disks=3 timeout=900 kernels=6.1
. "$(dirname "$0")/lib.sh"

SYS=/sys/bus/pcache
CACHE=$SYS/devices/cache0
HERE=$(cd "$(dirname "$0")" && pwd)
TOP=${PCACHE_TOP:?}
seed=${PCACHE_RUN_ID:?}
QUOTA=128M
# The power-cut writer's region on backing 1: 16 MiB from 64 MiB.
ACK_FIRST=16384
ACK_BLOCKS=4096

# Both disks by their persistent names; the kernel names may change.
DISK0=$(backing_path 0)
DISK1=$(backing_path 1)
# The third disk is no backing device: it keeps what phase 1 installed.
STASH=$(backing_path 2)

acked_writes() {
	python3 "$HERE/acked_writes.py" "$@" --run "$seed" --first "$ACK_FIRST" --blocks "$ACK_BLOCKS"
}

# What install.sh puts in place, depmod's output included, relative to /.
installed_files() {
	local moddir
	moddir=$(realpath "/lib/modules/$(uname -r)")
	printf '%s\n' usr/lib/udev/rules.d/61-pcache.rules usr/lib/udev/pcache-udev \
		usr/sbin/pcachectl "${moddir#/}/extra/pcache.ko"
	(cd / && printf '%s\n' "${moddir#/}"/modules.*)
}

# A machine's root filesystem keeps what was installed from one boot to
# the next; the guest's is a tmpfs.  Phase 1 installs and keeps the files
# on the stash disk, later phases put them back (installing again would
# run depmod over the whole module tree: about a minute per boot here).
install_pcache() {
	if [ "$PCACHE_PHASE" = 1 ]; then
		"$TOP/scripts/install.sh" --module "$PCACHE_KO" >/tmp/pcache-install.log 2>&1 ||
			{ cat /tmp/pcache-install.log; fail "scripts/install.sh failed"; }
		installed_files | tar -C / -cf "$STASH" -T - || fail "cannot keep the installed files"
		blockdev --flushbufs "$STASH"
	else
		tar -C / -xf "$STASH" || fail "cannot put back the files installed in phase 1"
	fi
}

# What boot does on a machine with pcache installed: the files in place,
# then udevd starts and replays the kernel's events for every device.
boot_with_udev() {
	install_pcache
	/lib/systemd/systemd-udevd --daemon --resolve-names=never ||
		fail "systemd-udevd does not start"
	udevadm trigger --type=subsystems --action=add
	udevadm trigger --type=devices --action=add
	settle
}

settle() {
	udevadm settle --timeout=180 || fail "udev events still queued after 180 s"
}

# pcache disk standing for the backing device with persistent name $1.
pdisk() {
	echo "/dev/pcache/by-backing/${1##*/}"
}

helper_lines() {
	dmesg | grep 'pcache-udev: ' | sed 's/^\[[ 0-9.]*\] //' || true
}

# assembled ID...: cache0 is registered and the given backings are attached,
# with both stable names leading to their disk.
assembled() {
	local id b disk
	[ -d "$CACHE" ] || fail "cache0 was not registered; pcache-udev said: $(helper_lines)"
	for id in "$@"; do
		b=$CACHE/backing$id
		[ "$(cat "$b/state")" = attached ] ||
			fail "backing$id is $(cat "$b/state"); pcache-udev said: $(helper_lines)"
		disk=$(cat "$b/disk")
		[ "$(readlink -f "/dev/pcache/by-uuid/$(cat "$b/uuid")")" = "/dev/$disk" ] ||
			fail "/dev/pcache/by-uuid/$(cat "$b/uuid") does not lead to $disk"
		[ "$(readlink -f "$(pdisk "$(cat "$b/path")")")" = "/dev/$disk" ] ||
			fail "$(pdisk "$(cat "$b/path")") does not lead to $disk"
		echo "backing$id: $(cat "$b/path") -> /dev/$disk, $(pdisk "$(cat "$b/path")")"
	done
}

fs_file_sum() {
	pattern "fs-$seed" $((8 << 20)) | md5sum | cut -d' ' -f1
}

check_fs() {
	local dev mnt=/mnt/pcache-udev
	dev=$(pdisk "$DISK0")
	e2fsck -fn "$dev" >/tmp/pcache-fsck.out 2>&1 ||
		{ cat /tmp/pcache-fsck.out; fail "the filesystem on $dev is not clean"; }
	mkdir -p "$mnt"
	mount -o ro "$dev" "$mnt" || fail "cannot mount $dev"
	[ "$(md5sum <"$mnt/data" | cut -d' ' -f1)" = "$(fs_file_sum)" ] ||
		{ umount "$mnt"; fail "the file on $dev does not hold what was written"; }
	umount "$mnt"
	echo "$dev: e2fsck clean, the file reads back"
}

check_pattern() {
	cmp <(dd if="$(pdisk "$DISK1")" bs=1M count=16 iflag=direct status=none) \
		<(pattern "raw-$seed" $((16 << 20))) ||
		fail "$(pdisk "$DISK1") does not hold the pattern written in phase 1"
	echo "$(pdisk "$DISK1"): the pattern reads back"
}

# The debug kernel (Debian's 6.1) takes a namespace's device lock in
# uevent_show(), which udevd reads; reconfiguring the namespace afterwards
# removes sysfs files under that lock, and lockdep reports the order (no
# pcache frame in it), then switches itself off for the rest of the run.
# There the namespace is made fsdax before udevd starts, to keep lockdep
# watching pcache; the other kernels run pcachectl's reconfiguration.
namespace_before_udev() {
	[[ "$PCACHE_RELEASE" == *-pcache-debug ]]
}

test_install() {
	if namespace_before_udev; then
		make_fsdax_namespace
	fi
	boot_with_udev
	[ -f /usr/lib/udev/rules.d/61-pcache.rules ] || fail "no rules installed"
	[ -x /usr/lib/udev/pcache-udev ] || fail "no udev helper installed"
	[ -x /usr/sbin/pcachectl ] || fail "no pcachectl installed"
	modinfo pcache >/dev/null || fail "modprobe cannot find the installed module"
	# Nothing here is pcache's yet: nothing loaded, nothing said.
	[ ! -d "$SYS" ] || fail "pcache was loaded with no cache device present"
	[ -z "$(helper_lines)" ] || fail "pcache-udev spoke with nothing to do: $(helper_lines)"
}

test_provision() {
	if namespace_before_udev; then
		echo "debug kernel: namespace0.0 was made fsdax before udevd started"
	else
		pcachectl namespace namespace0.0 >/dev/null || fail "pcachectl namespace failed"
	fi
	settle
	[ -b /dev/pmem0 ] || fail "no /dev/pmem0"
	pcachectl format /dev/pmem0
	pcachectl attach 0 "/dev/$(backing_name 0)" "$QUOTA"
	pcachectl attach cache0 "/dev/$(backing_name 1)" "$QUOTA" writeback
	[ "$(cat "$CACHE/backing0/path")" = "$DISK0" ] || fail "backing0 recorded as $(cat "$CACHE/backing0/path")"
	[ "$(cat "$CACHE/backing1/path")" = "$DISK1" ] || fail "backing1 recorded as $(cat "$CACHE/backing1/path")"
	settle
	assembled 0 1
	# The helper saw pmem0 (not a pcache device yet) and said nothing.
	[ -z "$(helper_lines)" ] || fail "pcache-udev spoke: $(helper_lines)"
}

test_write() {
	local dev mnt=/mnt/pcache-udev fsuuid
	dev=$(pdisk "$DISK0")
	mkfs.ext4 -q -F "$dev" || fail "mkfs.ext4 on $dev failed"
	mkdir -p "$mnt"
	mount "$dev" "$mnt"
	pattern "fs-$seed" $((8 << 20)) >"$mnt/data"
	umount "$mnt"
	pattern "raw-$seed" $((16 << 20)) |
		dd of="$(pdisk "$DISK1")" bs=1M iflag=fullblock oflag=direct status=none
	# The filesystem is on the backing disk too, stale: its name must
	# lead to the pcache disk.  udev sees mkfs close the disk (watch).
	fsuuid=$(blkid -o value -s UUID "$dev")
	for _ in $(seq 40); do
		[ -e "/dev/disk/by-uuid/$fsuuid" ] && break
		sleep 0.5
	done
	settle
	[ "$(readlink -f "/dev/disk/by-uuid/$fsuuid")" = "$(readlink -f "$dev")" ] ||
		fail "/dev/disk/by-uuid/$fsuuid leads to $(readlink -f "/dev/disk/by-uuid/$fsuuid"), not $(readlink -f "$dev")"
	echo "/dev/disk/by-uuid/$fsuuid -> $(readlink -f "$dev")"
	check_fs
	check_pattern
}

test_reboot_assembled() {
	local fsuuid
	boot_with_udev
	assembled 0 1
	helper_lines
	helper_lines | grep -q 'registered /dev/pmem0' || fail "pcache-udev did not log the registration"
	fsuuid=$(blkid -o value -s UUID "$(pdisk "$DISK0")")
	[ "$(readlink -f "/dev/disk/by-uuid/$fsuuid")" = "$(readlink -f "$(pdisk "$DISK0")")" ] ||
		fail "/dev/disk/by-uuid/$fsuuid does not lead to the pcache disk"
}

test_data() {
	check_fs
	check_pattern
}

state_now() {
	sysfs_state "$SYS"/devices/* "$SYS"/devices/*/* "$SYS"/devices/*/backing*/*
	# shellcheck disable=SC2012 # names only
	ls -l /dev/pcache/by-uuid /dev/pcache/by-backing /dev/disk/by-uuid | awk '{ print $9, $10, $11 }'
	dmesg | grep -c -E 'pcache(-udev)?: ' || true
}

test_retrigger() {
	local before after
	before=$(state_now)
	udevadm trigger --type=devices --action=change
	settle
	udevadm trigger --type=devices --action=add --subsystem-match=block
	settle
	after=$(state_now)
	[ "$before" = "$after" ] || fail "udevadm trigger changed: $(diff <(echo "$before") <(echo "$after"))"
	echo "udevadm trigger (change, add): nothing changed, nothing logged"
}

# The PCI function of a virtio disk: removing it unplugs the disk.
pci_function() {
	dirname "$(readlink -f "/sys/block/$1/device")"
}

# Phase 3 boots with the cache device and backing disk 1 both absent: the
# namespace is disabled and the disk unplugged before udevd starts.
test_late_devices() {
	echo 1 >"$(pci_function "$(backing_name 1)")/remove"
	[ ! -e "$DISK1" ] || fail "$DISK1 is still there after unplugging it"
	ndctl disable-namespace namespace0.0 >/dev/null || fail "cannot disable namespace0.0"
	[ ! -e /dev/pmem0 ] || fail "/dev/pmem0 is still there"
	boot_with_udev
	[ ! -d "$CACHE" ] || fail "cache0 registered without its device"
	[ -z "$(helper_lines)" ] || fail "pcache-udev spoke with no cache device: $(helper_lines)"
}

test_cache_late() {
	sleep 2
	ndctl enable-namespace namespace0.0 >/dev/null || fail "cannot enable namespace0.0"
	settle
	assembled 0
	[ "$(cat "$CACHE/backing1/state")" = missing ] || fail "backing1 is $(cat "$CACHE/backing1/state")"
	[ "$(cat "$CACHE/missing_backings")" = 1 ] || fail "missing_backings is '$(cat "$CACHE/missing_backings")'"
	pcachectl status | tee /tmp/pcache-status
	grep -q "backing1  missing   waiting for $DISK1" /tmp/pcache-status ||
		fail "pcachectl status does not say backing1 waits for $DISK1"
	helper_lines | grep -q "backing1 waits for $DISK1" || fail "pcache-udev did not say backing1 waits for $DISK1"
}

test_backing_late() {
	sleep 2
	echo 1 >/sys/bus/pci/rescan
	settle
	[ -e "$DISK1" ] || fail "$DISK1 did not come back"
	assembled 0 1
	[ -z "$(cat "$CACHE/missing_backings")" ] || fail "missing_backings is '$(cat "$CACHE/missing_backings")'"
	helper_lines | grep "backing1 ($DISK1) attached" || fail "pcache-udev did not log the attach"
	acked_writes verify "$(pdisk "$DISK1")" --log "$PCACHE_CONSOLE_LOG"
	check_fs
	check_pattern
}

test_wrong_disk() {
	local path
	boot_with_udev
	assembled 0
	path=$(cat "$CACHE/backing1/path")
	[ "$path" = "$DISK1" ] && fail "the replaced disk has the serial of the old one"
	[ "$(cat "$CACHE/backing1/state")" = missing ] || fail "backing1 is $(cat "$CACHE/backing1/state")"
	[ "$(cat "$CACHE/missing_backings")" = 1 ] || fail "missing_backings is '$(cat "$CACHE/missing_backings")'"
	[ ! -e "$(pdisk "$path")" ] || fail "$(pdisk "$path") exists"
	dmesg | grep "pcache: cache0: backing1 ($path) is missing" ||
		fail "the kernel log does not say backing1 ($path) is missing"
	helper_lines | grep "backing1 waits for $path" || fail "pcache-udev does not say what backing1 waits for"
	pcachectl status | grep "waiting for $path" || fail "pcachectl status does not show backing1 waiting"
	echo "the disk now in its place, $DISK1, is not $path"
}

test_wrong_disk_untouched() {
	local dev
	dev=/dev/$(backing_name 1)
	[ "$(excl "$dev")" = free ] || fail "$dev is held by someone"
	cmp -n "$(blockdev --getsize64 "$dev")" <(dd if="$dev" bs=4M iflag=direct status=none) /dev/zero ||
		fail "the blank disk $dev has been written to"
	check_fs
}

test_uninstall() {
	pcachectl detach 0 1 force
	pcachectl remove 0
	[ ! -d "$CACHE" ] || fail "cache0 is still registered"
	pcachectl status | tee /tmp/pcache-status
	grep -q '^/dev/pmem0  pcache .*  not registered$' /tmp/pcache-status ||
		fail "pcachectl status does not show /dev/pmem0 as an unregistered cache device"
	# What udev does when the device appears again: it comes back.
	/usr/lib/udev/pcache-udev add /dev/pmem0
	[ -d "$CACHE" ] || fail "pcache-udev did not register /dev/pmem0 again"
	pcachectl remove 0 wipe
	[ ! -d "$CACHE" ] || fail "cache0 is still registered"
	[ "$(pcachectl status)" = "no pcache devices" ] || fail "pcachectl status after wipe: $(pcachectl status)"
	rmmod pcache
	"$TOP/scripts/install.sh" --uninstall >/tmp/pcache-install.log 2>&1 ||
		{ cat /tmp/pcache-install.log; fail "uninstall failed"; }
	[ ! -e /usr/lib/udev/rules.d/61-pcache.rules ] || fail "the rules are still installed"
	[ ! -e /usr/sbin/pcachectl ] || fail "pcachectl is still installed"
	! modinfo pcache >/dev/null 2>&1 || fail "the module is still installed"
	udevadm trigger --type=devices --action=add --subsystem-match=block
	settle
	[ ! -d "$SYS" ] || fail "pcache came back after uninstall"
}

case "$PCACHE_PHASE" in
1)
	ktap_plan 12
	ktap_test "make install, udevd coldplug: nothing to assemble, nothing said" test_install
	ktap_test "pcachectl: fsdax namespace, format, attach two disks by kernel name" test_provision
	ktap_test "ext4 on one pcache disk, a pattern on the other; by-uuid leads to pcache" test_write
	pcvm-reboot
	;;
2)
	KTAP_NUM=3
	ktap_test "after a clean reboot, udev assembled cache and both backing devices" test_reboot_assembled
	ktap_test "their data reads back, the filesystem is clean" test_data
	ktap_test "udevadm trigger changes nothing" test_retrigger
	acked_writes write "$(pdisk "$DISK1")" --gen-base 20000000 &
	sleep $((3 + RANDOM % 4))
	pcvm-powercut "writes in flight through $(pdisk "$DISK1")"
	;;
3)
	KTAP_NUM=6
	ktap_test "after a power cut, boot without the cache device and backing disk 1: nothing happens" test_late_devices
	ktap_test "the cache device appears: assembled, backing 1 shown waiting" test_cache_late
	ktap_test "backing disk 1 hot-added: attached, every acknowledged write reads back" test_backing_late
	pcvm-replace-disk 1
	pcvm-reboot
	;;
4)
	KTAP_NUM=9
	ktap_test "another disk in the place of backing disk 1 is not attached, and logs say why" test_wrong_disk
	ktap_test "that disk is neither held nor written; backing 0 keeps its data" test_wrong_disk_untouched
	ktap_test "pcachectl remove and make uninstall take everything away" test_uninstall
	ktap_finish
	;;
esac
