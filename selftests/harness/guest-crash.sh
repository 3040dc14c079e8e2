#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# A guest kernel that crashes fails the test (and does not hang the run).
# pcvm: disks=0 expect=died timeout=120
. "$(dirname "$0")/../pcache/lib.sh"

ktap_plan 2
ktap_test "a check before the crash" true
echo c >/proc/sysrq-trigger
ktap_test "never reached" true
ktap_finish
