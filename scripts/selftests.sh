#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Run kselftest-style test programs in QEMU guests and collect their KTAP.
#
# Each program listed in TEST_PROGS of a selftest directory's Makefile boots
# its own guest (fresh images) through scripts/vm.sh.  A program may say, in
# a comment line of its own:
#   # pcvm: disks=N disk-size=SIZE pmem=SIZE mem=SIZE timeout=SEC
#   # pcvm: vpmem=SIZE                (a virtio-pmem device beside the vNVDIMM)
#   # pcvm: expect=notok|died|splat   (harness self-tests: must fail so)
#   # pcvm: kernels=6.1               (run only on these kernel series;
#                                      PCACHE_ALL_KERNELS=1 ignores it)
#   # pcvm: append=ARG                (one more guest kernel argument)
# The directory's `settings` file gives the default timeout (kselftest's
# timeout=SEC); on the debug kernel every timeout is 4 times longer.  One
# line is printed per KTAP result, and a final "N passed, N failed" line; a
# program whose guest died, timed out, printed fewer results than planned
# or whose kernel log shows a splat counts as a failure too.  Console logs
# are kept in build/results/.
#
# usage: selftests.sh [--kernel SERIES]... [--summary FILE] [--lane NAME]
#                     [--ledger FILE] [DIR|DIR/PROGRAM]...
#   --kernel   run on this guest kernel (repeatable; default 6.1)
#   --summary  also write "PASSED FAILED SKIPPED" counts to FILE
#   --lane     guest images and logs of their own (build/vm/selftests-KERNEL-NAME,
#              build/results/KERNEL-NAME/), so that two runs on the same
#              kernel can go side by side
#   --ledger   programs that passed, by kernel and code (code_key(): a
#              program's key leaves the other programs out): one
#              that passed before on this kernel with the same code is not
#              run again, one that passes is added.  For a run longer than
#              a sitting, such as the debug kernel's whole suite.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

kernels=()
targets=()
summary=""
lane=""
ledger=""
while [ $# -gt 0 ]; do
	case "$1" in
	--kernel) kernels+=("$2"); shift ;;
	--summary) summary=$2; shift ;;
	--lane) lane=$2; shift ;;
	--ledger) ledger=$2; shift ;;
	-*) die "unknown option $1" ;;
	*) targets+=("$1") ;;
	esac
	shift
done
[ "${#targets[@]}" -gt 0 ] || targets=(selftests/pcache)
[ "${#kernels[@]}" -gt 0 ] || kernels=(6.1)

passed=0 failed=0 skipped=0 ledger_hits=0

# What the outcome of program $2 of directory $1 depends on: the module,
# the on-media format, what runs in the guest, the debug kernel's config,
# the program itself and the files of its directory that are not other
# programs (lib.sh and the like), so that changing one program leaves the
# others' passes standing.  Empty when any of it, or of the directory,
# differs from the commit.
code_key() {
	local dir prog=$2
	dir=$(realpath --relative-to="$PCACHE_TOP" "$1")
	local paths=(pcache include "$dir" scripts/vm.sh scripts/guest
		scripts/lib.sh scripts/mkinitramfs.sh scripts/setup-debug-kernel.sh)
	git -C "$PCACHE_TOP" diff --quiet HEAD -- "${paths[@]}" || return 0
	git -C "$PCACHE_TOP" ls-tree -r HEAD -- "${paths[@]}" |
		awk -v dir="$dir" -v prog="$prog" -v others="$(test_programs "$dir" | tr '\n' ' ')" '
			BEGIN { n = split(others, list, " "); for (i = 1; i <= n; i++) skip[dir "/" list[i]] = 1 }
			{ path = $0; sub(/^[^\t]*\t/, "", path) }
			!(path in skip) || path == dir "/" prog' |
		sha1sum | cut -c1-16
}

if [ -n "$ledger" ]; then
	say "selftests: ledger $ledger (a key per program and code)"
	mkdir -p "$(dirname "$ledger")"
	touch "$ledger"
fi

# in_ledger NAME KEY: NAME passed on $kernel with the code of KEY.
in_ledger() {
	[ -n "$2" ] &&
		awk -v k="$kernel" -v n="$1" -v c="$2" \
			'$1 == k && $2 == n && $3 == c { found = 1 } END { exit !found }' "$ledger"
}

pass() {
	passed=$((passed + 1))
	printf 'ok      %s\n' "$*"
}
flunk() {
	failed=$((failed + 1))
	printf 'FAILED  %s\n' "$*"
}

test_programs() {
	local dir=$1
	make -s --no-print-directory -C "$dir" -f Makefile list-tests
}

# Value of a "# pcvm: key=value" setting in a test program, or $3.
setting() {
	local prog=$1 key=$2 default=$3 value
	value=$(sed -n 's/^# pcvm:.*\<'"$key"'=\([^ ]*\).*/\1/p' "$prog" | head -n 1)
	echo "${value:-$default}"
}

run_program() {
	local dir=$1 prog=$2 path="$1/$2" area log rc plan=0 count=0 notok=0 expect started
	local failed_before=$failed key="" vpmem
	local -a opts
	area="$kernel $(basename "$dir")/${prog%.sh}"
	# A lane's logs of its own: two lanes may run one program at once.
	log="$PCACHE_BUILD/results/$kernel${lane:+-$lane}/$(basename "$dir")-${prog%.sh}.log"
	mkdir -p "$(dirname "$log")"
	expect=$(setting "$path" expect "")
	only=$(setting "$path" kernels "")
	if [ -z "${PCACHE_ALL_KERNELS:-}" ] && [ -n "$only" ] &&
		[[ ",$only," != *",$kernel,"* ]]; then
		say "selftests: $area: only on kernel $only, not run here"
		return
	fi
	opts=(--kernel "$kernel" --fresh --quiet --log "$log"
		--images "$PCACHE_BUILD/vm/selftests-$kernel${lane:+-$lane}"
		--disks "$(setting "$path" disks 2)"
		--disk-size "$(setting "$path" disk-size 1G)"
		--pmem "$(setting "$path" pmem 1G)"
		--mem "$(setting "$path" mem 2G)"
		--append "$(setting "$path" append "")"
		--timeout $(($(setting "$path" timeout "$default_timeout") * timeout_factor)))
	vpmem=$(setting "$path" vpmem "")
	[ -z "$vpmem" ] || opts+=(--virtio-pmem "$vpmem")
	if [ -n "$ledger" ]; then
		key=$(code_key "$dir" "$prog")
		[ -n "$key" ] || say "selftests: $area: uncommitted changes, not in the ledger"
	fi
	if in_ledger "$(basename "$dir")/$prog" "$key"; then
		say "selftests: $area passed before with this code ($ledger): not run again"
		ledger_hits=$((ledger_hits + 1))
		return
	fi
	say "selftests: $area"
	rc=0 started=$SECONDS
	PCACHE_RUN_ID=$RANDOM$RANDOM "$PCACHE_TOP/scripts/vm.sh" "${opts[@]}" -- "$path" || rc=$?
	say "selftests: $area took $((SECONDS - started)) s"

	plan=$(sed -n 's/^1\.\.\([0-9]*\)$/\1/p' "$log" | head -n 1)
	plan=${plan:-0}
	while IFS= read -r line; do
		count=$((count + 1))
		case "$line" in
		"not ok "*)
			notok=$((notok + 1))
			[ -n "$expect" ] || flunk "$area: ${line#not ok * }"
			;;
		*"# SKIP"*)
			skipped=$((skipped + 1))
			printf 'skip    %s\n' "$area: ${line#ok * }"
			;;
		*) [ -n "$expect" ] || pass "$area: ${line#ok * }" ;;
		esac
	done < <(grep -E '^(not )?ok [0-9]+ ' "$log")

	if [ -n "$expect" ]; then
		case "$expect:$rc" in
		notok:1) [ "$notok" -gt 0 ] && { pass "$area: a failing check fails the test"; return; } ;;
		died:125) [ "$count" -gt 0 ] && { pass "$area: a guest that dies fails the test"; return; } ;;
		splat:126) [ "$notok" -eq 0 ] && { pass "$area: a kernel warning fails the test"; return; } ;;
		esac
		flunk "$area: expected the harness to report '$expect', got status $rc"
		return
	fi

	case "$rc" in
	0 | 1) ;;
	124) flunk "$area: timed out" ;;
	125) flunk "$area: the guest died (kernel crash?)" ;;
	126) flunk "$area: the guest kernel log shows a warning or crash report" ;;
	*) flunk "$area: exited with status $rc" ;;
	esac
	if [ "$rc" -eq 1 ] && [ "$notok" -eq 0 ]; then
		flunk "$area: exited with status 1 without a failing result"
	fi
	if [ "$count" -lt "$plan" ]; then
		flunk "$area: only $count of $plan planned results"
	fi
	if [ "$plan" -eq 0 ]; then
		flunk "$area: no KTAP plan"
	fi
	if [ "$failed" -gt "$failed_before" ]; then
		echo "--- last lines of $log:"
		grep -v -E '^(not )?ok [0-9]+ ' "$log" | tail -n 25 | sed 's/^/    /'
	elif [ -n "$key" ]; then
		echo "$kernel $(basename "$dir")/$prog $key $(date -u +%FT%TZ) $count" >>"$ledger"
	fi
}

for kernel in "${kernels[@]}"; do
	# The debug kernel (KASAN, lockdep, kmemleak) runs the same program
	# 3-4 times slower under TCG than a Debian kernel: readcache.sh took
	# more than its 900 s there.
	case "$kernel" in
	debug | *-pcache-debug) timeout_factor=4 ;;
	*) timeout_factor=1 ;;
	esac
	for target in "${targets[@]}"; do
		if [ -d "$target" ]; then
			dir=$target
			mapfile -t progs < <(test_programs "$dir")
		else
			dir=$(dirname "$target")
			progs=("$(basename "$target")")
		fi
		default_timeout=$(sed -n 's/^timeout=//p' "$dir/settings" 2>/dev/null || true)
		default_timeout=${default_timeout:-600}
		for prog in "${progs[@]}"; do
			run_program "$dir" "$prog"
		done
	done
done

[ -z "$summary" ] || echo "$passed $failed $skipped" >"$summary"
[ "$ledger_hits" -eq 0 ] ||
	echo "$ledger_hits programs not run again: they passed before with this code ($ledger)"
if [ "$skipped" -gt 0 ]; then
	echo "$passed passed, $failed failed, $skipped skipped"
else
	echo "$passed passed, $failed failed"
fi
[ "$failed" -eq 0 ]
