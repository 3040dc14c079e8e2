// SPDX-License-Identifier: GPL-2.0
/*
 * block_device_operations.open takes the gendisk and a blk_mode_t, and
 * release takes only the gendisk.
 * Linux 6.5, "block: pass a gendisk to ->open" and "block: remove the
 * unused mode argument to ->release".
 */
#include <linux/blkdev.h>

static int probe_open(struct gendisk *disk, blk_mode_t mode)
{
	return 0;
}

static void probe_release(struct gendisk *disk)
{
}

const struct block_device_operations probe_fops = {
	.open = probe_open,
	.release = probe_release,
};
