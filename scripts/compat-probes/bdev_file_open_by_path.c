// SPDX-License-Identifier: GPL-2.0
/*
 * Block devices are opened by path as a struct file: Linux 6.9,
 * bdev_file_open_by_path() and file_bdev() replace the bdev_handle API
 * that 6.7 had put in place of blkdev_get_by_path().
 */
#include <linux/blkdev.h>
#include <linux/fs.h>

struct block_device *probe(const char *path, void *holder);
struct block_device *probe(const char *path, void *holder)
{
	struct file *file = bdev_file_open_by_path(path, BLK_OPEN_READ, holder, NULL);

	return IS_ERR(file) ? NULL : file_bdev(file);
}
