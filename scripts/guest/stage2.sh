#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Second stage of a pcache test guest, running in the chroot on the host's
# userland: load the device drivers, wait for the disks, run the command that
# scripts/vm.sh put in its run directory, dump the kernel log and power off.
# Everything goes to the serial console, which vm.sh reads; the markers
# <<<PCACHE-VM:...>>> are its protocol.
set -u

for arg in $(</proc/cmdline); do
	case "$arg" in
	pcvm.run=*) run=${arg#pcvm.run=} ;;
	pcvm.phase=*) export PCACHE_PHASE=${arg#pcvm.phase=} ;;
	pcvm.top=*) export PCACHE_TOP=${arg#pcvm.top=} ;;
	esac
done

# Builtins only from here: the host root goes away as the guest powers off.
power_off() {
	sync
	# The tty sends what was echoed (the EXIT marker) before the kernel's
	# own power-off message, which does not wait for it.
	sleep 0.5
	echo o >/proc/sysrq-trigger
	while :; do read -r -t 60 _ </dev/console || true; done
}

finish() {
	echo "<<<PCACHE-VM:DMESG-BEGIN>>>"
	dmesg
	echo "<<<PCACHE-VM:DMESG-END>>>"
	echo "<<<PCACHE-VM:EXIT $1>>>"
	power_off
}

export HOME=/root TERM=dumb LANG=C.UTF-8
export PATH="$PCACHE_TOP/scripts/guest/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
export PCACHE_RELEASE
PCACHE_RELEASE=$(uname -r)
hostname pcache-guest

# shellcheck source=/dev/null
[ -f "$run/env" ] && . "$run/env"

# devtmpfs has no /dev/fd and friends; bash process substitution needs them.
ln -sfn /proc/self/fd /dev/fd
ln -sfn /proc/self/fd/0 /dev/stdin
ln -sfn /proc/self/fd/1 /dev/stdout
ln -sfn /proc/self/fd/2 /dev/stderr
# No udev here: device-mapper must create its nodes itself.
export DM_DISABLE_UDEV=1

# Without udev nothing loads drivers for the devices: do it by hand.
# No modprobe.d: Debian's ndctl hooks a key loader (no keys here) onto libnvdimm.
modprobe -C /dev/null -a virtio_blk nfit nd_pmem dax_pmem || echo "pcvm: modprobe of the device drivers failed"
for _ in $(seq 100); do
	[ -e /sys/bus/nd/devices/region0 ] && break
	sleep 0.05
done

# insmod does not load dependencies: load what pcache.ko depends on.
if [ -n "${PCACHE_KO:-}" ] && [ -f "$PCACHE_KO" ]; then
	for dep in $(modinfo -F depends "$PCACHE_KO" | tr , ' '); do
		modprobe -C /dev/null "$dep" || echo "pcvm: cannot load $dep, which pcache needs"
	done
fi

# What udev would do: persistent names for the disks, from their serials.
mkdir -p /dev/disk/by-id
for serial in /sys/block/vd*/serial; do
	[ -s "$serial" ] || continue
	dev=$(basename "$(dirname "$serial")")
	ln -sfn "../../$dev" "/dev/disk/by-id/virtio-$(cat "$serial")"
done

echo "<<<PCACHE-VM:READY phase=$PCACHE_PHASE kernel=$PCACHE_RELEASE>>>"
cd "$PCACHE_TOP" || finish 125
bash "$run/cmd" </dev/null
finish $?
