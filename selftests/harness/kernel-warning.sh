#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# A warning in the guest kernel log fails the test even when every check
# passes.  /dev/kmsg puts the line into the kernel log as the kernel would.
# pcvm: disks=0 expect=splat
. "$(dirname "$0")/../pcache/lib.sh"

inject_warning() {
	echo "<4>WARNING: CPU: 0 PID: 1 at harness-self-test" >/dev/kmsg
}

ktap_plan 1
ktap_test "a check that passes but leaves a warning" inject_warning
ktap_finish
