#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Run a command in a QEMU guest with emulated persistent memory.
#
# The guest boots a Debian kernel under TCG with 2 vCPUs, a file-backed
# vNVDIMM (its contents survive a kill of QEMU), virtio-blk backing disks
# from image files, and the host root shared read-only as its userland, so
# the command sees this repository at the same path.  The console is
# streamed; markers printed by the guest drive the run:
#   pcvm-powercut  (guest) -> QEMU is killed at once, then booted again
#   pcvm-reboot    (guest) -> clean power-off, then booted again
#   pcvm-replace-disk N (guest) -> before the next boot, disk N is replaced
#                     by a blank disk of the same size with another serial
# Each boot runs the same command with PCACHE_PHASE=1, 2, ...  The run ends
# when the command exits; vm.sh exits with its status, or 124 on timeout,
# 125 if the guest died, 126 if the kernel log shows a warning, BUG, Oops,
# lockdep, KASAN or RCU stall report.
#
# usage: vm.sh [options] [--] COMMAND...
#   --kernel SERIES|RELEASE  guest kernel (default 6.1)
#   --images DIR     where disk images live (default build/vm)
#   --fresh          start from zeroed images
#   --pmem SIZE      size of the vNVDIMM (default 1G)
#   --nvdimms N      number of vNVDIMMs of that size, one region each, so
#                    namespaceN.0 becomes /dev/pmemN (default 1)
#   --virtio-pmem SIZE  also a virtio-pmem device of SIZE (asynchronous DAX:
#                    the guest's pmem driver calls its region ND_REGION_ASYNC)
#   --pmem-prealloc  allocate the vNVDIMM files up front (QEMU prealloc=on):
#                    no host page fault on the guest's first touch of a page
#   --discard-pmem   delete the vNVDIMM files when done (they live in RAM)
#   --disks N        number of backing disks (default 2)
#   --disk-size SIZE size of each backing disk (default 1G)
#   --mem SIZE       guest RAM (default 2G)
#   --timeout SEC    per boot (default 600)
#   --max-boots N    give up after N boots (default 500)
#   --log FILE       keep the whole console log there
#   --append ARGS    more guest kernel command-line arguments
#   --quiet          do not stream the console (the log still has it)
#   --shell          interactive shell on the console instead of a command
#   --icount         count instructions (QEMU -icount shift=0, one vCPU
#                    thread): the guest's clock advances 1 ns per
#                    instruction, so timings are deterministic and do not
#                    depend on the host's load; for comparing code, not
#                    for absolute figures (memory costs are not modelled)
set -euo pipefail
. "$(dirname "$0")/lib.sh"

kernel=6.1 images="$PCACHE_BUILD/vm" fresh="" pmem_size=1G disks=2 disk_size=1G
mem=2G timeout=600 max_boots=500 log="" quiet="" shell="" append=""
silent_limit=300
nvdimms=1 virtio_pmem="" prealloc=off discard_pmem="" accel=tcg,thread=multi icount=""
while [ $# -gt 0 ]; do
	case "$1" in
	--kernel) kernel=$2; shift ;;
	--images) images=$2; shift ;;
	--fresh) fresh=1 ;;
	--pmem) pmem_size=$2; shift ;;
	--nvdimms) nvdimms=$2; shift ;;
	--virtio-pmem) virtio_pmem=$2; shift ;;
	--pmem-prealloc) prealloc=on ;;
	--icount) accel=tcg,thread=single icount=1 ;;
	--discard-pmem) discard_pmem=1 ;;
	--disks) disks=$2; shift ;;
	--disk-size) disk_size=$2; shift ;;
	--mem) mem=$2; shift ;;
	--timeout) timeout=$2; shift ;;
	--max-boots) max_boots=$2; shift ;;
	--log) log=$2; shift ;;
	--append) append=$2; shift ;;
	--quiet) quiet=1 ;;
	--shell) shell=1 ;;
	--) shift; break ;;
	-*) die "unknown option $1 (see the header of $0)" ;;
	*) break ;;
	esac
	shift
done
[ $# -gt 0 ] || [ -n "$shell" ] || die "usage: vm.sh [options] [--] COMMAND..."

case "$kernel" in
*-amd64) rel=$kernel ;;
*) rel=$(kernel_release "$kernel") || die "kernel $kernel is not set up: run scripts/setup.sh" ;;
esac
vmlinuz=$(kernel_image "$rel")
[ -f "$vmlinuz" ] || die "no kernel image for $rel: run scripts/setup.sh"

# 5-level paging off under the debug kernel: in 6.1, identify_cpu() clears
# the boot CPU's feature bits for a moment, pgtable_l5_enabled() (a feature
# bit there) reads false, and an interrupt in that window makes KASAN call
# the LA57 direct map a wild access (a report at 0.002 s, before any test).
# pcache_extent, pcache's slab cache, is marked for failslab when it is
# created (the mark is read-only at run time; a marked cache is never
# merged with another): lib.sh's load_pcache turns failslab on for it.
cpu=max debug_args=""
case "$rel" in
*-pcache-debug) cpu=max,la57=off debug_args="slub_debug=A,pcache_extent" ;;
esac

# The initramfs is rebuilt whenever its inputs change.
initrd="$(module_build_dir "$rel")/initramfs.cpio.gz"
if [ ! -f "$initrd" ] || [ "$PCACHE_TOP/scripts/guest/init" -nt "$initrd" ] ||
	[ "$PCACHE_TOP/scripts/mkinitramfs.sh" -nt "$initrd" ]; then
	mkdir -p "$(dirname "$initrd")"
	"$PCACHE_TOP/scripts/mkinitramfs.sh" "$rel" "$initrd"
fi

# pmem lives on tmpfs: a file on disk makes the host's page-cache writeback
# show through as pmem latency.  tmpfs still survives a kill of QEMU.
shm=/dev/shm/pcache-$(id -u)
mkdir -p "$images" "$shm"
pmem_prefix="$shm/$(echo "$images" | md5sum | cut -c1-12)"
make_image() {
	local img=$1 size=$2
	if [ -n "$fresh" ] || [ ! -f "$img" ]; then
		rm -f "$img"
		truncate -s "$size" "$img"
	fi
}
[[ $nvdimms =~ ^[1-8]$ ]] || die "--nvdimms takes 1 to 8"
[[ $mem =~ ^[0-9]+[MG]$ ]] || die "--mem takes a size in M or G (512M, 2G)"
mem_mib=$(($(numfmt --from=iec "$mem") >> 20))
# A full tmpfs kills the guest with SIGBUS in the middle of a write, which
# looks like a crash: refuse to start instead.  (Files left by earlier runs
# with other --images count; --discard-pmem removes a run's own.)
pmem_bytes() { numfmt --from=iec "${pmem_size%B}"; }
pmem_needed=$((nvdimms * $(pmem_bytes)))
for ((i = 0; i < nvdimms; i++)); do
	[ -n "$fresh" ] || [ ! -f "$pmem_prefix-pmem$i.img" ] ||
		pmem_needed=$((pmem_needed - $(du -B1 "$pmem_prefix-pmem$i.img" | cut -f1)))
done
shm_free=$(($(df -B1 --output=avail "$shm" | tail -n 1)))
[ "$pmem_needed" -le "$shm_free" ] ||
	die "$shm has $((shm_free >> 20)) MiB free, the vNVDIMMs need $((pmem_needed >> 20)) MiB: remove old images there (rm $shm/*.img) or use a smaller --pmem"
for ((i = 0; i < nvdimms; i++)); do
	make_image "$pmem_prefix-pmem$i.img" "$pmem_size"
done
[ -z "$virtio_pmem" ] || make_image "$pmem_prefix-vpmem.img" "$virtio_pmem"
nvdimm_args() {
	local i
	for ((i = 0; i < nvdimms; i++)); do
		printf '%q ' -object "memory-backend-file,id=nv$i,share=on,mem-path=$pmem_prefix-pmem$i.img,size=$pmem_size,prealloc=$prealloc" \
			-device "nvdimm,id=nvdimm$i,memdev=nv$i"
	done
	[ -z "$virtio_pmem" ] ||
		printf '%q ' -object "memory-backend-file,id=vpmem,share=on,mem-path=$pmem_prefix-vpmem.img,size=$virtio_pmem" \
			-device "virtio-pmem-pci,memdev=vpmem,id=vpmem0"
}
# Room in the guest's address space for the devices beside its RAM, in MiB.
hotplug_mib() {
	local vp=0
	[ -z "$virtio_pmem" ] || vp=$(($(numfmt --from=iec "${virtio_pmem%B}") >> 20))
	echo $((2 * mem_mib + nvdimms * ($(pmem_bytes) >> 20) + vp + 1024))
}
# Each disk has a serial (/dev/disk/by-id/virtio-SERIAL in the guest) that
# stays with its image, as a real disk's serial stays with the disk.
make_disk() {
	local i=$1
	if [ -n "$fresh" ] || [ ! -f "$images/disk$i.img" ] || [ ! -s "$images/disk$i.serial" ]; then
		echo "pcd$i-$(od -An -N4 -tx4 /dev/urandom | tr -d ' ')" >"$images/disk$i.serial"
	fi
	make_image "$images/disk$i.img" "$disk_size"
}
replace_disk() {
	local i=$1
	rm -f "$images/disk$i.img" "$images/disk$i.serial"
	make_disk "$i"
	say "vm: disk $i replaced by a blank disk with serial $(cat "$images/disk$i.serial")"
}
for ((i = 0; i < disks; i++)); do
	make_disk "$i"
done
drive_args() {
	local i
	for ((i = 0; i < disks; i++)); do
		printf '%q ' -drive "file=$images/disk$i.img,if=none,id=disk$i,format=raw,cache=none,aio=native" \
			-device "virtio-blk-pci,drive=disk$i,serial=$(cat "$images/disk$i.serial")"
	done
}

run=$(mktemp -d "$PCACHE_BUILD/vm/run.XXXXXX")
cleanup() {
	[ -z "${qpid:-}" ] || kill -9 "$qpid" 2>/dev/null || true
	rm -rf "$run"
	[ -z "$discard_pmem" ] || rm -f "$pmem_prefix"-pmem*.img "$pmem_prefix"-vpmem.img
}
trap cleanup EXIT
trap 'exit 130' INT TERM
{
	printf 'export PCACHE_RUN_ID=%q\n' "${PCACHE_RUN_ID:-$RANDOM$RANDOM}"
	printf 'export PCACHE_KO=%q\n' "$(module_path "$rel")"
	printf 'export PCACHE_DISKS=%q\n' "$disks"
	# The host's console log, for a later phase to read what an earlier
	# one reported (acknowledged writes) before its power was cut.
	printf 'export PCACHE_CONSOLE_LOG=%q\n' "${log:-$run/console.log}"
	# Test knobs pass through from the host (e.g. PCACHE_TEST_CUTS).
	while IFS='=' read -r name _; do
		printf 'export %s=%q\n' "$name" "${!name}"
	done < <(env | grep -E '^PCACHE_TEST_[A-Z0-9_]+=' || true)
} >"$run/env"
if [ -n "$shell" ]; then
	echo 'exec bash -i </dev/console >/dev/console 2>&1' >"$run/cmd"
else
	printf '%q ' "$@" >"$run/cmd"
	echo >>"$run/cmd"
fi
[ -n "$log" ] || log="$run/console.log"
: >"$log"

qemu_cmd() {
	local phase=$1
	echo qemu-system-x86_64 -nodefaults -no-user-config -display none -no-reboot \
		-machine pc,nvdimm=on -accel "$accel"${icount:+ -icount shift=0} -cpu "$cpu" -smp 2 \
		-m "${mem_mib}M,slots=$((nvdimms + 2)),maxmem=$(hotplug_mib)M"
	nvdimm_args
	echo
	drive_args
	echo
	echo -virtfs "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap"
	echo -kernel "$vmlinuz" -initrd "$initrd"
	# cryptomgr.notests: a boot-time crypto self-test once spun for 400+ s
	# under TCG (soft lockup in cryptomgr_test) and hung a test's boot.
	# no_timer_check: on a loaded host the emulated timer can miss the
	# kernel's IO-APIC timer check, which then panics at boot.
	echo -append "'console=ttyS0,115200 loglevel=4 panic=-1 mitigations=off random.trust_cpu=on cryptomgr.notests no_timer_check pcvm.top=$PCACHE_TOP pcvm.moddir=$(kernel_modules_dir "$rel") pcvm.run=$run pcvm.phase=$phase${debug_args:+ $debug_args}${append:+ $append}'"
}

# Kernel log lines that fail a run, whatever the command said.
splat_re='WARNING: |BUG: |BUG at|Oops|general protection fault|Kernel panic|RCU stall|rcu_.* detected stall|possible circular locking|possible recursive locking|inconsistent lock state|lockdep|KASAN|UBSAN|kmemleak|blocked for more than|Call Trace'
# What a debug kernel (scripts/setup-debug-kernel.sh) says at every boot.
benign_re='RCU lockdep checking is enabled|kmemleak: Kernel memory leak detector initialized|kmemleak: Automatic memory scanning thread started'

# Boot once.  Sets $outcome to exit:N, powercut, reboot, timeout or died,
# and $ready once the guest said it was up (before the test began).
boot() {
	local phase=$1 fifo="$run/console" line partial="" deadline status splat="" in_dmesg="" reason
	local done_marker="" silent_deadline
	ready=
	local -a argv
	eval "argv=($(qemu_cmd "$phase" | tr '\n' ' '))"
	if [ -n "$shell" ]; then
		"${argv[@]}" -serial mon:stdio
		outcome=exit:0
		return
	fi
	rm -f "$fifo"
	mkfifo "$fifo"
	"${argv[@]}" -serial stdio </dev/null >"$fifo" 2>"$run/qemu.err" &
	qpid=$!
	exec {con}<"$fifo"
	deadline=$((SECONDS + timeout))
	silent_deadline=$((SECONDS + silent_limit))
	outcome=died
	while :; do
		if IFS= read -r -t 2 -u "$con" line; then
			line="${partial}${line%$'\r'}"
			partial=
			silent_deadline=
		else
			status=$?
			if [ "$status" -gt 128 ]; then
				partial+=$line
				if [ "$SECONDS" -ge "$deadline" ]; then
					outcome=timeout
					kill -9 "$qpid" 2>/dev/null || true
					break
				fi
				# A guest that never printed a line hung before
				# its kernel's console came up (a debug-kernel run
				# once sat silent for its whole 2400 s): treated as
				# a guest that died booting.
				if [ -n "$silent_deadline" ] && [ -z "$partial" ] &&
					[ "$SECONDS" -ge "$silent_deadline" ]; then
					say "vm: not one console line in ${silent_limit}s (phase $phase)"
					kill -9 "$qpid" 2>/dev/null || true
					break
				fi
				continue
			fi
			break
		fi
		printf '%s\n' "$line" >>"$log"
		# A kernel message may land in the middle of a marker's line
		# (printk does not wait for the tty): markers count anywhere.
		case "$line" in
		'<<<PCACHE-VM:DMESG-BEGIN>>>') in_dmesg=1; continue ;;
		'<<<PCACHE-VM:DMESG-END>>>') in_dmesg=; continue ;;
		*'<<<PCACHE-VM:POWERCUT'*)
			kill -9 "$qpid" 2>/dev/null || true
			outcome=powercut
			reason=${line#*POWERCUT }
			reason=${reason%%>>>*}
			say "vm: power cut in phase $phase ($reason)"
			break
			;;
		*'<<<PCACHE-VM:REBOOT>>>'*) outcome=reboot; done_marker=1 ;;
		*'<<<PCACHE-VM:REPLACE-DISK '*)
			reason=${line#*REPLACE-DISK }
			replace_next+=("${reason%%>>>*}")
			;;
		*'<<<PCACHE-VM:EXIT '*)
			reason=${line#*<<<PCACHE-VM:EXIT }
			outcome="exit:${reason%%>>>*}"
			done_marker=1
			;;
		*'<<<PCACHE-VM:READY'*) ready=1 ;;
		*'] sysrq: Power Off' | *'] reboot: Power down') ;;
		*)
			# After the run's last word, power-off noise is not the test's.
			if [ -z "$done_marker" ] && [[ "$line" =~ $splat_re ]] && ! [[ "$line" =~ $benign_re ]]; then
				splat=1
				printf 'vm: kernel log: %s\n' "$line" >&2
			fi
			[ -n "$quiet" ] || [ -n "$in_dmesg" ] || printf '%s\n' "$line"
			;;
		esac
	done
	exec {con}<&-
	wait "$qpid" 2>/dev/null || true
	qpid=
	# All of QEMU's stderr for a guest that died; otherwise its errors
	# (a host-side I/O error on a disk image shows only here).
	if [ "$outcome" = died ] && [ -s "$run/qemu.err" ]; then
		sed 's/^/vm: qemu: /' "$run/qemu.err" >&2
	elif [ -s "$run/qemu.err" ]; then
		{ grep -iE 'error|fail' "$run/qemu.err" || true; } | sed 's/^/vm: qemu: /' >&2
	fi
	# A guest that died booting, before the test began, is retried.
	if [ -n "$splat" ] && { [ -n "$ready" ] || [ "$outcome" != died ]; }; then
		kernel_splat=1
	fi
}

kernel_splat=
replace_next=()
early_deaths=0
phase=1
while :; do
	[ "$phase" -le "$max_boots" ] || die "vm: giving up after $max_boots boots"
	for i in "${replace_next[@]}"; do
		replace_disk "$i"
	done
	replace_next=()
	boot "$phase"
	case "$outcome" in
	powercut | reboot) phase=$((phase + 1)) ;;
	exit:*) rc=${outcome#exit:}; break ;;
	timeout) say "vm: timeout after ${timeout}s in phase $phase"; rc=124; break ;;
	*)
		# Nothing of ours runs before READY (the tests load pcache): a
		# guest kernel dying that early is the emulation's fault (TCG
		# has crashed a 6.12 boot on an int3 in sched_clock_cpu while
		# it patched kernel text).  Boot that phase again, twice at most.
		if [ -z "$ready" ] && [ "$early_deaths" -lt 2 ]; then
			early_deaths=$((early_deaths + 1))
			say "vm: the guest died while booting, before the test began (phase $phase): booting it again"
			continue
		fi
		say "vm: the guest died in phase $phase (no exit status; see $log)"
		rc=125
		break
		;;
	esac
done
if [ -n "$kernel_splat" ] && [ "$rc" -eq 0 ]; then
	say "vm: the guest kernel log shows a warning or crash report"
	rc=126
fi
exit "$rc"
