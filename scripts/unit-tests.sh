#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Host-side tests of pcache's pure logic (tests/host/): the cmocka unit tests
# of meta.c, space.c and index.c, built with gcc, ASan and UBSan, the tests
# of the bench's report (scripts/bench-report.py), then a short
# libFuzzer run of the metadata checks and of replay (clang), seeded with the
# images tests/host/gen_corpus.c and gen_replay_seeds.c write and with seeds
# cut from real pmem images (tests/host/corpus/*-real, scripts/harvest-corpus.sh).
# Needs the Debian packages in tests/host/packages.txt.
#
# usage: unit-tests.sh
#   FUZZ_SECONDS=N  how long to fuzz (default 30; 0 only replays the seeds)
# The fuzzer's full log is build/host/fuzz.log; a crashing input is kept in
# build/host/fuzz/crashes/ (replay: build/host/fuzz_meta FILE).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$PCACHE_TOP"

FUZZ_SECONDS=${FUZZ_SECONDS:-30}
[[ $FUZZ_SECONDS =~ ^[0-9]+$ ]] || die "FUZZ_SECONDS must be a number of seconds, not '$FUZZ_SECONDS'"

host_build=$PCACHE_BUILD/host
fuzz_log=$host_build/fuzz.log
start=$SECONDS

missing=()
while read -r pkg; do
	dpkg-query -W -f='${Status}\n' "$pkg" 2>/dev/null |
		grep -q '^install ok installed$' || missing+=("$pkg")
done < <(grep -v '^#' tests/host/packages.txt)
[ "${#missing[@]}" -eq 0 ] ||
	die "missing Debian packages: ${missing[*]} (apt-get install --no-install-recommends ${missing[*]})"

say "unit tests: tests/host/ on pcache/meta.c, space.c and index.c (gcc, ASan, UBSan)"
run make -s -j2 -O -C tests/host O="$host_build" check ||
	die "unit tests failed"

say "unit tests: scripts/bench-report.py on a bench CSV of known figures (python3)"
run python3 tests/host/test_bench_report.py ||
	die "the bench report's tests failed"

if [ "$FUZZ_SECONDS" -eq 0 ]; then
	say "fuzz targets: tests/host/fuzz_meta.c and fuzz_replay.c on their seed corpora only (clang, libFuzzer, ASan, UBSan)"
else
	say "fuzz smoke run: tests/host/fuzz_meta.c and fuzz_replay.c, ${FUZZ_SECONDS}s each (clang, libFuzzer, ASan, UBSan)"
fi
mkdir -p "$host_build"
# Both targets at once (-j2), each one's output in one piece (-O).
if ! run make -s -j2 -O -C tests/host O="$host_build" FUZZ_SECONDS="$FUZZ_SECONDS" fuzz >"$fuzz_log" 2>&1; then
	tail -n 40 "$fuzz_log" >&2
	die "fuzzing failed: see $fuzz_log and $host_build/fuzz/crashes/, replay-crashes/"
fi
grep -E '^(gen_corpus:|Done [0-9]+ runs|stat::(number_of_executed_units|average_exec_per_sec|new_units_added|peak_rss_mb))' "$fuzz_log" |
	sed 's/^/  /' >&2

say "unit tests and fuzzing passed ($((SECONDS - start))s)"
