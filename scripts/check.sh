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

# show_lane NAME LOG: what a lane run in the background printed, its
# results and the log lines of its failures.
show_lane() {
	say "check: the $1 lane ($((SECONDS - start))s)"
	grep -E '^(ok|FAILED|skip) ' "$2" || true
	grep -E -A 30 '^FAILED ' "$2" | grep -E '^    ' || true
}

# add_up_lanes DIR LANE...: the final "N passed, N failed" line from the
# lanes' summary files; fails if a test failed or a lane did not finish.
add_up_lanes() {
	local dir=$1 lane p f s passed=0 failed=0 skipped=0
	shift
	for lane in "$@"; do
		if [ ! -s "$dir/$lane" ]; then
			echo "FAILED  the $lane lane did not finish (see $dir/$lane.log)"
			failed=$((failed + 1))
			continue
		fi
		read -r p f s <"$dir/$lane"
		passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
	done
	say "check: done in $((SECONDS - start))s"
	if [ "$skipped" -gt 0 ]; then
		echo "$passed passed, $failed failed, $skipped skipped"
	else
		echo "$passed passed, $failed failed"
	fi
	[ "$failed" -eq 0 ]
}

step "set-up"
scripts/setup.sh

# make check KERNEL=debug: the whole suite on the debug kernel (KASAN,
# lockdep, kmemleak, failslab, fail_make_request), every program whatever
# its kernels= line says, inject.sh included.  Hours, not CI's minutes.
if [ "${KERNEL:-}" = debug ]; then
	step "the debug kernel (built once, about 25 minutes)"
	scripts/setup-debug-kernel.sh
	step "build for debug with W=1, warnings are errors"
	scripts/build.sh --strict debug >/dev/null
	# Two lanes side by side, every other program each: a debug guest
	# spends much of its time waiting too.
	step "guest selftests on the debug kernel, every program, two lanes"
	lanes="$PCACHE_BUILD/results/lanes-debug"
	rm -rf "$lanes"
	mkdir -p "$lanes"
	progs_a=() progs_b=() n=0
	for dir in selftests/harness selftests/pcache; do
		while IFS= read -r prog; do
			if [ $((n++ % 2)) -eq 0 ]; then
				progs_a+=("$dir/$prog")
			else
				progs_b+=("$dir/$prog")
			fi
		done < <(make -s --no-print-directory -C "$dir" -f Makefile list-tests)
	done
	# The ledger (docs/debug-ledger, committed, so that it outlives the
	# machine; PCACHE_DEBUG_LEDGER= for none): the run may be spread over
	# sittings, each program run once per code.
	ledger=()
	PCACHE_DEBUG_LEDGER=${PCACHE_DEBUG_LEDGER-docs/debug-ledger}
	[ -z "$PCACHE_DEBUG_LEDGER" ] || ledger=(--ledger "$PCACHE_DEBUG_LEDGER")
	PCACHE_ALL_KERNELS=1 scripts/selftests.sh --kernel debug --lane b \
		--summary "$lanes/b" "${ledger[@]}" "${progs_b[@]}" >"$lanes/b.log" 2>&1 &
	lane_b=$!
	PCACHE_ALL_KERNELS=1 scripts/selftests.sh --kernel debug --lane a \
		--summary "$lanes/a" "${ledger[@]}" "${progs_a[@]}" || true
	wait "$lane_b" || true
	show_lane "debug kernel's b" "$lanes/b.log"
	add_up_lanes "$lanes" a b
	exit
fi

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
mapfile -t shell_scripts < <(git ls-files '*.sh' 'scripts/guest/bin/*' '.ci/run' scripts/pcachectl scripts/udev/pcache-udev)
shellcheck "${shell_scripts[@]}" || die "shellcheck reports problems"
shellcheck -s sh scripts/guest/init || die "shellcheck reports problems"

# A test program missing from its Makefile's TEST_PROGS is never run by
# anyone, and nothing else would say so.
step "every selftest program is in its Makefile"
for dir in selftests/harness selftests/pcache; do
	listed=$(make -s --no-print-directory -C "$dir" -f Makefile list-all)
	while IFS= read -r path; do
		prog=${path##*/}
		grep -qE '^[[:space:]]*ktap_plan ' "$path" || continue
		grep -qxF "$prog" <<<"$listed" ||
			die "$path plans KTAP tests but is not in $dir/Makefile's TEST_PROGS"
	done < <(git ls-files "$dir/*.sh")
	while IFS= read -r prog; do
		[ -f "$dir/$prog" ] || die "$dir/Makefile lists $prog, which does not exist"
	done <<<"$listed"
done

step "host-side unit tests and fuzz smoke run"
scripts/unit-tests.sh

step "DKMS builds and installs pcache for each kernel, guests use it"
scripts/dkms-check.sh

# The two kernel lanes run side by side: much of a guest test's time is
# waiting (fixed-length fio runs, power-cut delays), not CPU.  The 6.12 lane
# is printed when it ends; the last line adds both up.
step "guest selftests, 6.1 and 6.12 lanes in parallel"
lanes="$PCACHE_BUILD/results/lanes"
rm -rf "$lanes"
mkdir -p "$lanes"
scripts/selftests.sh --kernel 6.12 --summary "$lanes/6.12" selftests/pcache \
	>"$lanes/6.12.log" 2>&1 &
lane_612=$!
scripts/selftests.sh --kernel 6.1 --summary "$lanes/6.1" selftests/harness selftests/pcache || true
wait "$lane_612" || true
show_lane 6.12 "$lanes/6.12.log"

add_up_lanes "$lanes" 6.1 6.12
