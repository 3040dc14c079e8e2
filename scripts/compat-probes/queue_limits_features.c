// SPDX-License-Identifier: GPL-2.0
/*
 * Write cache and FUA are queue limit features (BLK_FEAT_*).
 * Linux 6.11, "block: move the write cache flags to queue_limits".
 */
#include <linux/blkdev.h>

unsigned int probe(struct queue_limits *lim);
unsigned int probe(struct queue_limits *lim)
{
	lim->features |= BLK_FEAT_WRITE_CACHE | BLK_FEAT_FUA;
	return (__force unsigned int)lim->features;
}
