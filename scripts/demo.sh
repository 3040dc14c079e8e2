#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The pcache demo: boots a guest with an emulated NVDIMM and two backing
# disks and walks through what an administrator does, printing every command
# before running it, so the output doubles as a tutorial.
#
# usage: demo.sh [--kernel SERIES]     (on the host; `make demo` calls it)
set -euo pipefail
. "$(dirname "$0")/lib.sh"

if [ "${1:-}" != --in-guest ]; then
	kernel=6.1
	[ "${1:-}" != --kernel ] || kernel=$2
	say "demo: booting a guest (Debian $kernel kernel, 1 GiB emulated pmem, two 1 GiB disks)"
	exec "$PCACHE_TOP/scripts/vm.sh" --kernel "$kernel" --fresh \
		--images "$PCACHE_BUILD/vm/demo" -- "$PCACHE_TOP/scripts/demo.sh" --in-guest
fi

# In the guest, as root; scripts/vm.sh exported PCACHE_KO.
: "${PCACHE_KO:?}"
section() { printf '\n### %s\n' "$*"; }
show() {
	printf '# %s\n' "$*"
	"$@"
}

section "1. The machine has a label-less NVDIMM region, seen as a raw namespace"
show ndctl list --regions --namespaces

section "2. Provision it as an fsdax namespace: /dev/pmem0, DAX-capable"
show ndctl create-namespace --force --reconfig=namespace0.0 --mode=fsdax
show cat /sys/block/pmem0/queue/dax
show lsblk -o NAME,SIZE,TYPE /dev/pmem0 /dev/vda /dev/vdb

section "3. Load pcache: its control root appears under /sys/bus/pcache"
show insmod "$PCACHE_KO"
show ls /sys/bus/pcache
show cat /sys/bus/pcache/format_version
dmesg | grep 'pcache:' | sed 's/^/  /'

section "4. Unload it again"
show rmmod pcache
show ls /sys/bus/pcache 2>&1 || true

section "Done: cache and backing devices are registered through /sys/bus/pcache (coming next)"
