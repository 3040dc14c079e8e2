// SPDX-License-Identifier: GPL-2.0
/*
 * A plug caches a timestamp, flagged by PF_BLOCK_TS on the task, which the
 * scheduler clears through current->plug (Linux 6.9, blk_plug_invalidate_ts).
 */
#include <linux/blkdev.h>

void probe(void);
void probe(void)
{
	blk_plug_invalidate_ts();
}
