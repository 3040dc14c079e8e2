#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Everything CI runs (`make check`): set-up, the module built for every
# supported kernel with W=1 and warnings as errors, sparse, checkpatch,
# the script linter, host-side unit tests and fuzzing of pure logic, then the
# guest selftests on every kernel.
# Stops at the first failing step; the last line is "N passed, N failed".
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$PCACHE_TOP"

start=$SECONDS
step() { say "check: $* ($((SECONDS - start))s)"; }

step "set-up"
scripts/setup.sh

for series in "${PCACHE_KERNEL_SERIES[@]}"; do
	step "build for $series with W=1, warnings are errors"
	# Debian 12's sparse (0.6.4) predates 6.12's headers and misreads them;
	# sparse runs on the 6.1 build.
	if [ "$series" = 6.1 ]; then
		scripts/build.sh --strict --sparse "$series" >/dev/null
	else
		scripts/build.sh --strict "$series" >/dev/null
	fi
done

step "checkpatch --strict"
mapfile -t kernel_sources < <(git ls-files 'pcache/*.[ch]' 'include/*.h' 'scripts/compat-probes/*.c')
build/tools/checkpatch/checkpatch.pl --no-tree --strict --quiet -f "${kernel_sources[@]}" ||
	die "checkpatch reports problems"

step "shellcheck"
mapfile -t shell_scripts < <(git ls-files '*.sh' 'scripts/guest/bin/*' '.ci/run')
shellcheck "${shell_scripts[@]}" || die "shellcheck reports problems"
shellcheck -s sh scripts/guest/init || die "shellcheck reports problems"

step "host-side unit tests and fuzz smoke run"
scripts/unit-tests.sh

step "guest selftests"
args=()
for series in "${PCACHE_KERNEL_SERIES[@]}"; do
	args+=(--kernel "$series")
done
scripts/selftests.sh "${args[@]}" selftests/harness selftests/pcache
