#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# make dkms-check: prove that DKMS builds and installs pcache for the guest
# kernels, and that the module it installs works there.
#
# For each kernel, the DKMS source tree is staged the way `make
# dkms-install` puts it in /usr/src (scripts/install.sh --dkms), then
# `dkms install` builds and installs it with private DKMS, source and
# install trees under build/dkms/, so this machine's own DKMS state and
# module trees are left alone.  The installed module must carry the
# kernel's release in its vermagic; then a guest of that kernel loads it
# and uses it (selftests/pcache/dkms.sh).
#
# usage: dkms-check.sh [--no-guest] [SERIES...]   (default: 6.1 6.12)
set -euo pipefail
. "$(dirname "$0")/lib.sh"

guest=1
series=()
while [ $# -gt 0 ]; do
	case "$1" in
	--no-guest) guest="" ;;
	-*) die "unknown option $1" ;;
	*) series+=("$1") ;;
	esac
	shift
done
[ "${#series[@]}" -gt 0 ] || series=("${PCACHE_KERNEL_SERIES[@]}")
command -v dkms >/dev/null || die "dkms is not installed: run scripts/setup.sh"

version=$(sed -n 's/^PACKAGE_VERSION="\(.*\)"$/\1/p' "$PCACHE_TOP/dkms.conf")
root=$PCACHE_BUILD/dkms/root
tree=$PCACHE_BUILD/dkms/tree
rm -rf "$PCACHE_BUILD/dkms"
mkdir -p "$PCACHE_BUILD/dkms"
say "dkms-check: staging the DKMS source tree (as make dkms-install does)"
"$PCACHE_TOP/scripts/install.sh" --dkms --destdir "$root" >"$PCACHE_BUILD/dkms/stage.log" 2>&1 ||
	{ cat "$PCACHE_BUILD/dkms/stage.log" >&2; die "staging the DKMS sources failed"; }

for s in "${series[@]}"; do
	rel=$(kernel_release "$s") || die "kernel $s is not set up: run scripts/setup.sh"
	mkdir -p "$root/lib/modules/$rel"
	say "dkms-check: dkms install pcache/$version for $rel"
	start=$SECONDS
	dkms install "pcache/$version" -k "$rel" \
		--dkmstree "$tree" --sourcetree "$root/usr/src" \
		--installtree "$root/lib/modules" \
		--kernelsourcedir "$(kernel_headers_dir "$rel")" \
		>"$PCACHE_BUILD/dkms/$rel.log" 2>&1 ||
		{ tail -n 30 "$PCACHE_BUILD/dkms/$rel.log" >&2; die "dkms install for $rel failed"; }
	# Compressed like the kernel's own modules (6.12: pcache.ko.xz).
	ko=$(find "$root/lib/modules/$rel/updates/dkms" -name 'pcache.ko*' 2>/dev/null | head -n 1)
	[ -n "$ko" ] || die "dkms did not install pcache.ko* in $root/lib/modules/$rel/updates/dkms"
	magic=$(modinfo -F vermagic "$ko" | cut -d' ' -f1)
	[ "$magic" = "$rel" ] || die "$ko is built for '$magic', not $rel"
	dkms status pcache --dkmstree "$tree" --sourcetree "$root/usr/src" \
		--installtree "$root/lib/modules" -k "$rel" | grep -q ': installed' ||
		die "dkms status does not show pcache installed for $rel"
	echo "dkms: pcache/$version built and installed for $rel in $((SECONDS - start)) s"
done

[ -n "$guest" ] || exit 0
args=()
for s in "${series[@]}"; do
	args+=(--kernel "$s")
done
PCACHE_TEST_DKMS_ROOT=$root "$PCACHE_TOP/scripts/selftests.sh" "${args[@]}" \
	"$PCACHE_TOP/selftests/pcache/dkms.sh"
