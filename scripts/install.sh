#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Install or remove pcache on this machine (make install / make uninstall /
# make dkms-install): the module, the udev rules and helper that assemble
# cache and backing devices at boot, and pcachectl.
#
# usage: install.sh [options]
#   --module FILE   install this pcache.ko (default: build one for the
#                   running kernel from /lib/modules/$(uname -r)/build)
#   --kdir DIR      build for the kernel build tree DIR and install that
#   --no-module     only the udev rules, helper and pcachectl
#   --dkms          install the sources in /usr/src/pcache-VERSION and let
#                   DKMS build and install the module (and rebuild it for
#                   every kernel installed later)
#   --uninstall     remove what install put in place (and the DKMS module)
#   --destdir DIR   stage under DIR instead of / (packaging); skips depmod
#                   and udev reloads
set -euo pipefail
. "$(dirname "$0")/lib.sh"

module="" kdir="" no_module="" dkms="" uninstall="" destdir=""
while [ $# -gt 0 ]; do
	case "$1" in
	--module) module=$2; shift ;;
	--kdir) kdir=$2; shift ;;
	--no-module) no_module=1 ;;
	--dkms) dkms=1 ;;
	--uninstall) uninstall=1 ;;
	--destdir) destdir=$2; shift ;;
	*) die "unknown option $1 (see the header of $0)" ;;
	esac
	shift
done

version=$(sed -n 's/^PACKAGE_VERSION="\(.*\)"$/\1/p' "$PCACHE_TOP/dkms.conf")
rules=$destdir/usr/lib/udev/rules.d/61-pcache.rules
helper=$destdir/usr/lib/udev/pcache-udev
ctl=$destdir/usr/sbin/pcachectl
dkms_src=$destdir/usr/src/pcache-$version

# The kernel release a module was built for, from its vermagic.
module_release() {
	modinfo -F vermagic "$1" | cut -d' ' -f1
}

reload_udev() {
	[ -z "$destdir" ] || return 0
	if udevadm control --ping >/dev/null 2>&1; then
		run udevadm control --reload
	fi
}

# Files DKMS needs to build the module: the sources, the shared headers and
# the build script with its compat probes.
dkms_files() {
	(cd "$PCACHE_TOP" && printf '%s\n' dkms.conf pcache/Kbuild pcache/*.[ch] \
		include/pcache/*.h scripts/build.sh scripts/lib.sh scripts/compat-probe.sh \
		scripts/compat-probes/*.c)
}

if [ -n "$uninstall" ]; then
	if [ -z "$destdir" ] && command -v dkms >/dev/null && dkms status pcache 2>/dev/null | grep -q .; then
		run dkms remove "pcache/$version" --all
	fi
	run rm -rf "$dkms_src"
	run rm -f "$rules" "$helper" "$ctl"
	for ko in "$destdir"/lib/modules/*/extra/pcache.ko; do
		[ -e "$ko" ] || continue
		run rm -f "$ko"
		rel=${ko#"$destdir"/lib/modules/}
		rel=${rel%%/*}
		[ -n "$destdir" ] || run depmod -a "$rel"
	done
	reload_udev
	say "pcache uninstalled"
	exit 0
fi

say "install: udev rules, udev helper, pcachectl"
run install -D -m 0644 "$PCACHE_TOP/scripts/udev/61-pcache.rules" "$rules"
run install -D -m 0755 "$PCACHE_TOP/scripts/udev/pcache-udev" "$helper"
run install -D -m 0755 "$PCACHE_TOP/scripts/pcachectl" "$ctl"

if [ -n "$dkms" ]; then
	command -v dkms >/dev/null || die "dkms is not installed (apt install dkms)"
	say "install: sources in $dkms_src for DKMS"
	run rm -rf "$dkms_src"
	while IFS= read -r f; do
		install -D -m 0644 "$PCACHE_TOP/$f" "$dkms_src/$f"
	done < <(dkms_files)
	chmod 0755 "$dkms_src"/scripts/*.sh
	if [ -z "$destdir" ]; then
		run dkms install "pcache/$version"
	fi
elif [ -z "$no_module" ]; then
	if [ -z "$module" ]; then
		kdir=${kdir:-/lib/modules/$(uname -r)/build}
		module=$("$PCACHE_TOP/scripts/build.sh" --kdir "$kdir")
	fi
	[ -f "$module" ] || die "no module at $module"
	rel=$(module_release "$module")
	say "install: pcache.ko for $rel"
	run install -D -m 0644 "$module" "$destdir/lib/modules/$rel/extra/pcache.ko"
	[ -n "$destdir" ] || run depmod -a "$rel"
fi
reload_udev
say "pcache installed: cache devices are registered and backing devices attached as they appear"
