#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# A check that fails must fail the test.
# pcvm: disks=0 expect=notok
. "$(dirname "$0")/../pcache/lib.sh"

ktap_plan 2
ktap_test "a passing check" true
ktap_test "a failing check" false
ktap_finish
