// SPDX-License-Identifier: GPL-2.0
/*
 * blk_mq_alloc_disk() takes the queue limits (struct queue_limits) up front.
 * Linux 6.9, "block: pass a queue_limits argument to blk_mq_alloc_disk".
 */
#include <linux/blk-mq.h>

struct gendisk *probe(struct blk_mq_tag_set *set);
struct gendisk *probe(struct blk_mq_tag_set *set)
{
	struct queue_limits lim = { .logical_block_size = 512 };

	return blk_mq_alloc_disk(set, &lim, NULL);
}
