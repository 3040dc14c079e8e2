#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Build pcache.ko for one kernel, out of tree, in build/RELEASE/ so that
# several kernels can be built from one source tree side by side.
#
# usage: build.sh [--strict] [--sparse] SERIES|RELEASE|--kdir DIR
#   SERIES   6.1 or 6.12: the Debian kernel installed by scripts/setup.sh
#   --kdir   any kernel build tree (e.g. /lib/modules/$(uname -r)/build)
#   --strict W=1 and fail on any compiler or modpost warning
#   --sparse also run sparse on every source file (C=2) and fail on any report
set -euo pipefail
. "$(dirname "$0")/lib.sh"

strict="" sparse="" kdir="" target=""
while [ $# -gt 0 ]; do
	case "$1" in
	--strict) strict=1 ;;
	--sparse) sparse=1 ;;
	--kdir) kdir=$2; shift ;;
	-*) die "unknown option $1" ;;
	*) target=$1 ;;
	esac
	shift
done

if [ -z "$kdir" ]; then
	[ -n "$target" ] || die "usage: build.sh [--strict] [--sparse] SERIES|RELEASE|--kdir DIR"
	case "$target" in
	*-amd64) rel=$target ;;
	*) rel=$(kernel_release "$target") || die "kernel $target is not set up: run scripts/setup.sh" ;;
	esac
	kdir=$(kernel_headers_dir "$rel")
fi
[ -f "$kdir/Makefile" ] || die "no kernel build tree at $kdir"
# The release the modules' vermagic carries (Debian's kernel.release differs).
rel=$(sed -n 's/^#define UTS_RELEASE "\(.*\)"$/\1/p' "$kdir/include/generated/utsrelease.h")
[ -n "$rel" ] || die "cannot read the kernel release of $kdir"
out=$(module_build_dir "$rel")

# Mirror the sources as symlinks: kbuild writes its objects next to them.
mkdir -p "$out/pcache" "$out/generated"
find "$out/pcache" -maxdepth 1 -type l ! -exec test -e {} \; -delete
for f in "$PCACHE_TOP"/pcache/*.[ch] "$PCACHE_TOP/pcache/Kbuild"; do
	ln -sfn "$f" "$out/pcache/$(basename "$f")"
done
ln -sfn "$PCACHE_TOP/include" "$out/include"

"$PCACHE_TOP/scripts/compat-probe.sh" "$kdir" "$out/generated/pcache_compat_probes.h"

args=(-C "$kdir" M="$out/pcache")
[ -z "$strict" ] || args+=(W=1)
say "build: pcache.ko for $rel${strict:+ (W=1, warnings are errors)}"
log="$out/build.log"
make "${args[@]}" modules 2>&1 | tee "$log" | grep -E -i 'warning|error' >&2 || true
[ "${PIPESTATUS[0]}" -eq 0 ] || die "build for $rel failed (log: $log)"
if [ -n "$strict" ] && grep -E -i -q 'warning|error' "$log"; then
	die "build for $rel has warnings (log: $log)"
fi

if [ -n "$sparse" ]; then
	say "sparse: pcache for $rel"
	log="$out/sparse.log"
	make "${args[@]}" C=2 modules \
		>"$log" 2>&1 || die "sparse run for $rel failed (log: $log)"
	if grep -E -q ': (warning|error):' "$log"; then
		grep -E ': (warning|error):' "$log" >&2
		die "sparse reports problems for $rel"
	fi
fi
echo "$out/pcache/pcache.ko"
