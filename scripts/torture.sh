#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# make torture: the long runs of pcache's torture suite, then a summary.
#
#   1. The power-cut loop (selftests/pcache/torture.sh): writers that log
#      what was acknowledged, ext4 and XFS under workloads from Debian
#      packages, and a power cut at the end of every boot, during I/O,
#      writeback, reclaim, detach, attach, registration or a mode switch;
#      after each: every acknowledged write and file checked, fsck clean.
#      It cuts until --cuts cuts are made or --minutes have passed.
#   2. The external workloads (selftests/pcache/workloads.sh) on both
#      filesystems, --workload-seconds each, fsck after each.
#
# make check runs a short sample of both (4 cuts; 20 s workloads).
#
# usage: torture.sh [--kernel SERIES] [--cuts N] [--minutes M]
#                   [--workload-seconds S] [--no-workloads]
#   defaults: 6.12, 1000 cuts, 60 minutes, 60 s per workload
set -euo pipefail
. "$(dirname "$0")/lib.sh"

kernel=6.12 cuts=1000 minutes=60 workload_seconds=60 workloads=1
while [ $# -gt 0 ]; do
	case "$1" in
	--kernel) kernel=$2; shift ;;
	--cuts) cuts=$2; shift ;;
	--minutes) minutes=$2; shift ;;
	--workload-seconds) workload_seconds=$2; shift ;;
	--no-workloads) workloads="" ;;
	*) die "unknown option $1 (see the header of $0)" ;;
	esac
	shift
done
[[ "$cuts" =~ ^[0-9]+$ && "$minutes" =~ ^[0-9]+$ && "$workload_seconds" =~ ^[0-9]+$ ]] ||
	die "--cuts, --minutes and --workload-seconds take whole numbers"

results=$PCACHE_BUILD/results/$kernel
log=$results/pcache-torture.log
summary=$PCACHE_BUILD/results/torture-summary-$kernel.txt
mkdir -p "$results"
start=$SECONDS
rc=0

say "torture: power-cut loop on $kernel: up to $cuts cuts or $minutes minutes (progress: $log)"
export PCACHE_ALL_KERNELS=1 PCACHE_TEST_CUTS=$cuts
export PCACHE_TEST_DEADLINE=$(($(date +%s) + 60 * minutes))
# The loop's own progress: one line per cut, from its console log.
# shellcheck disable=SC2016 # expanded by the inner bash
setsid bash -c 'sleep 5; tail -n +1 -F "$1" 2>/dev/null |
	grep --line-buffered -E "^(# )?TORTURE: (cut|done)" |
	sed -u "s/^# //; s/^/torture: /"' progress "$log" &
progress=$!
trap 'kill -- "-$progress" 2>/dev/null || true' EXIT
loop_start=$SECONDS
scripts/selftests.sh --kernel "$kernel" --summary "$results/torture-loop.summary" \
	selftests/pcache/torture.sh || rc=1
loop_seconds=$((SECONDS - loop_start))
kill -- "-$progress" 2>/dev/null || true

if [ -n "$workloads" ]; then
	say "torture: external workloads on ext4 and XFS, ${workload_seconds}s each"
	PCACHE_TEST_WORKLOAD_SECONDS=$workload_seconds scripts/selftests.sh --kernel "$kernel" \
		--summary "$results/torture-workloads.summary" selftests/pcache/workloads.sh || rc=1
fi

# The summary, from the console logs.
count() {
	grep -c -E "$1" "$2" 2>/dev/null || true
}
{
	echo "pcache torture summary, $(date -u '+%Y-%m-%d %H:%M UTC'), kernel $kernel, $(((SECONDS - start) / 60)) min"
	made=$(count '^(# )?TORTURE: cut [0-9]+ during' "$log")
	checked=$(count '^ok [0-9]+ after cut' "$log")
	survived=$(sed -n 's/^ok [0-9]* after cut \([0-9]*\) .*/\1/p' "$log" | tail -n 1)
	echo "power cuts made:      $made"
	echo "power cuts survived:  ${survived:-0} (checked after $checked boots; a cut during registration is checked with the next)"
	echo "power-cut loop:       $loop_seconds s, $((loop_seconds / (made > 0 ? made : 1))) s per cut"
	echo "  boots checked, on average $(sed -n 's/^\(# \)\{0,1\}TORTURE: checked \([0-9.]*\) s after boot/\2/p' "$log" |
		awk '{ s += $1; n++ } END { printf "%.0f", n ? s / n : 0 }') s after boot"
	echo "  cuts without an acknowledged write before them: $(count '^(# )?TORTURE: the writers acknowledged nothing' "$log")"
	echo "faults injected, by what the cut fell into:"
	sed -n 's/^\(# \)\{0,1\}TORTURE: cut [0-9]* during \(.*\), [0-9.]* s after boot$/\2/p' "$log" |
		sed 's/ to [a-z]* and back/ to another mode and back/' | sort | uniq -c | sed 's/^/  /'
	echo "workloads cut:"
	sed -n 's/^\(# \)\{0,1\}TORTURE: workload \(.*\)/\2/p' "$log" | sort | uniq -c | sed 's/^/  /'
	bytes=$(sed -n 's/^\(# \)\{0,1\}TORTURE: verified bytes \([0-9]*\)/\2/p' "$log" | paste -sd+ | bc)
	echo "bytes verified:       ${bytes:-0} ($(((${bytes:-0}) >> 20)) MiB)"
	echo "fsck clean:           $(count '^(# )?TORTURE: fsck clean' "$log")"
	if [ -n "$workloads" ]; then
		echo "external workloads:   $(count '^ok [0-9]+ .* fsck clean' "$results/pcache-workloads.log") passed with fsck clean"
	fi
	failures=0
	for f in "$results/torture-loop.summary" ${workloads:+"$results/torture-workloads.summary"}; do
		[ -s "$f" ] || { failures=$((failures + 1)); continue; }
		read -r _ failed _ <"$f"
		failures=$((failures + failed))
	done
	echo "failures:             $failures"
} | tee "$summary"
say "torture: summary in $summary"
exit "$rc"
