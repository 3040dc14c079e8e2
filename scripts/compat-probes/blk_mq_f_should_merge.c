// SPDX-License-Identifier: GPL-2.0
/*
 * BLK_MQ_F_SHOULD_MERGE still exists; merging became the default and the
 * flag was removed in Linux 6.14.
 */
#include <linux/blk-mq.h>

unsigned int probe_flags = BLK_MQ_F_SHOULD_MERGE;
