/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The one place where kernel API differences are hidden.  Each difference is
 * decided by a feature probe (scripts/compat-probes/NAME.c, compiled against
 * the target kernel, result in pcache_compat_probes.h as PCACHE_HAVE_NAME),
 * never by LINUX_VERSION_CODE: Debian backports APIs into its kernels.
 * pcache is written against the newest API; older kernels get a wrapper.
 */
#ifndef _PCACHE_COMPAT_H
#define _PCACHE_COMPAT_H

#include <linux/badblocks.h>
#include <linux/blk-mq.h>
#include <linux/blkdev.h>
#include <linux/dax.h>
#include <linux/device.h>
#include <linux/fs.h>
#include "pcache_compat_probes.h"

/*
 * CRC32C of the 64-byte key record, once per write.  Up to 6.13, crc32c()
 * is a crypto API call (a shash, then the driver), which costs more than
 * the CRC of 64 bytes; the CRC library's __crc32c_le() computes the same
 * value directly.  Later kernels have only crc32c(), itself a direct
 * library call.  Large metadata (the 16 KiB table) keeps crc32c().
 */
#ifdef PCACHE_HAVE_CRC32C_LE
#include <linux/crc32.h>
#define pcache_crc32c(crc, buf, len)	__crc32c_le(crc, (const u8 *)(buf), len)
#else
#include <linux/crc32c.h>
#define pcache_crc32c(crc, buf, len)	crc32c(crc, buf, len)
#endif

/*
 * dax_direct_access() with the pfn of the mapping's first page and whether
 * the mapping has struct pages (which writeback may put in bios).  Since
 * 6.17 the pfn is a plain unsigned long and every DAX pfn has a page;
 * before, a pfn_t carried that in its flags.
 */
#ifdef PCACHE_HAVE_DAX_DIRECT_ACCESS_PFN
static inline long pcache_dax_direct_access(struct dax_device *dax_dev,
					    pgoff_t pgoff, long nr_pages,
					    void **kaddr, unsigned long *pfn,
					    bool *has_pages)
{
	*has_pages = true;
	return dax_direct_access(dax_dev, pgoff, nr_pages, DAX_ACCESS, kaddr,
				 pfn);
}
#else
#include <linux/pfn_t.h>
static inline long pcache_dax_direct_access(struct dax_device *dax_dev,
					    pgoff_t pgoff, long nr_pages,
					    void **kaddr, unsigned long *pfn,
					    bool *has_pages)
{
	pfn_t pfnt;
	long avail;

	avail = dax_direct_access(dax_dev, pgoff, nr_pages, DAX_ACCESS, kaddr,
				  &pfnt);
	if (avail >= 0) {
		*pfn = pfn_t_to_pfn(pfnt);
		*has_pages = pfn_t_has_page(pfnt);
	}
	return avail;
}
#endif

/*
 * badblocks_check(): the bad range's length is a sector_t since 6.15.
 * Before, the length asked about is an int too: a range of 2^31 sectors
 * (1 TiB, such as a whole large cache device) would wrap and find nothing,
 * so it is asked about in pieces, in order, the first bad one answering.
 */
#ifdef PCACHE_HAVE_BADBLOCKS_SECTOR_T
#define pcache_badblocks_check		badblocks_check
#else
static inline int pcache_badblocks_check(struct badblocks *bb, sector_t s,
					 sector_t sectors, sector_t *first_bad,
					 sector_t *bad_sectors)
{
	int piece, bad, ret;

	while (sectors) {
		piece = min_t(sector_t, sectors, 1U << 30);
		ret = badblocks_check(bb, s, piece, first_bad, &bad);
		if (ret) {
			*bad_sectors = bad;
			return ret;
		}
		s += piece;
		sectors -= piece;
	}
	return 0;
}
#endif

/* Bus attribute callbacks: const struct bus_type since 6.4. */
#ifdef PCACHE_HAVE_BUS_ATTR_CONST
#define pcache_bus_type_arg		const struct bus_type
#else
#define pcache_bus_type_arg		struct bus_type
#endif

/*
 * A block device opened exclusively by path, for read and write.  6.9 and
 * later hand out a struct file, 6.1 the block_device itself.
 */
struct pcache_bdev {
	struct block_device *bdev;
#ifdef PCACHE_HAVE_BDEV_FILE_OPEN_BY_PATH
	struct file *file;
#endif
};

static inline int pcache_bdev_open(struct pcache_bdev *h, const char *path,
				   void *holder)
{
#ifdef PCACHE_HAVE_BDEV_FILE_OPEN_BY_PATH
	struct file *file;

	file = bdev_file_open_by_path(path, BLK_OPEN_READ | BLK_OPEN_WRITE,
				      holder, NULL);
	if (IS_ERR(file))
		return PTR_ERR(file);
	h->file = file;
	h->bdev = file_bdev(file);
#else
	struct block_device *bdev;

	bdev = blkdev_get_by_path(path, FMODE_READ | FMODE_WRITE | FMODE_EXCL,
				  holder);
	if (IS_ERR(bdev))
		return PTR_ERR(bdev);
	h->bdev = bdev;
#endif
	return 0;
}

static inline void pcache_bdev_close(struct pcache_bdev *h)
{
	if (!h->bdev)
		return;
#ifdef PCACHE_HAVE_BDEV_FILE_OPEN_BY_PATH
	fput(h->file);
	h->file = NULL;
#else
	blkdev_put(h->bdev, FMODE_READ | FMODE_WRITE | FMODE_EXCL);
#endif
	h->bdev = NULL;
}

/* The queue limits pcache sets on its disks. */
struct pcache_disk_limits {
	unsigned int logical_block_size;
	unsigned int physical_block_size;
	unsigned int io_min;
	unsigned int max_hw_sectors;
	unsigned int max_discard_sectors;	/* 0: no discard */
	unsigned int max_write_zeroes_sectors;	/* 0: no write zeroes */
	unsigned int discard_granularity;	/* bytes */
	bool write_cache;
	bool fua;
};

/* blk_mq_alloc_disk() with limits: takes struct queue_limits since 6.9. */
static inline struct gendisk *
pcache_alloc_disk(struct blk_mq_tag_set *set,
		  const struct pcache_disk_limits *pl, void *queuedata)
{
	struct gendisk *disk;
#ifdef PCACHE_HAVE_BLK_MQ_ALLOC_DISK_LIMITS
	struct queue_limits lim = {
		.logical_block_size	= pl->logical_block_size,
		.physical_block_size	= pl->physical_block_size,
		.io_min			= pl->io_min,
		.max_hw_sectors		= pl->max_hw_sectors,
		.max_hw_discard_sectors	= pl->max_discard_sectors,
		.max_write_zeroes_sectors = pl->max_write_zeroes_sectors,
		.discard_granularity	= pl->discard_granularity,
	};

#ifdef PCACHE_HAVE_QUEUE_LIMITS_FEATURES
	if (pl->write_cache)
		lim.features |= BLK_FEAT_WRITE_CACHE;
	if (pl->fua)
		lim.features |= BLK_FEAT_FUA;
#endif
	disk = blk_mq_alloc_disk(set, &lim, queuedata);
	if (IS_ERR(disk))
		return disk;
#else
	disk = blk_mq_alloc_disk(set, queuedata);
	if (IS_ERR(disk))
		return disk;
	blk_queue_logical_block_size(disk->queue, pl->logical_block_size);
	blk_queue_physical_block_size(disk->queue, pl->physical_block_size);
	blk_queue_io_min(disk->queue, pl->io_min);
	blk_queue_max_hw_sectors(disk->queue, pl->max_hw_sectors);
	blk_queue_max_discard_sectors(disk->queue, pl->max_discard_sectors);
	blk_queue_max_write_zeroes_sectors(disk->queue,
					   pl->max_write_zeroes_sectors);
	disk->queue->limits.discard_granularity = pl->discard_granularity;
#endif
#ifndef PCACHE_HAVE_QUEUE_LIMITS_FEATURES
	blk_queue_write_cache(disk->queue, pl->write_cache, pl->fua);
#endif
	return disk;
}

/*
 * New limits for a live disk: a mode switch changes what the disk takes
 * (discard, write zeroes) and whether it has a volatile write cache.
 * Since 6.9 limits change as a whole, between queue_limits_start_update()
 * (which takes the queue's limits lock) and a commit; the block layer
 * takes that lock before it freezes the queue, and so does the caller:
 * pcache_limits_start(), then the freeze, then pcache_limits_commit().
 * Before 6.9, one setter per limit, with the queue frozen.
 */
struct pcache_limits_update {
#ifdef PCACHE_HAVE_BLK_MQ_ALLOC_DISK_LIMITS
	struct queue_limits lim;
#endif
};

static inline void pcache_limits_start(struct gendisk *disk,
				       struct pcache_limits_update *upd)
{
#ifdef PCACHE_HAVE_BLK_MQ_ALLOC_DISK_LIMITS
	upd->lim = queue_limits_start_update(disk->queue);
#endif
}

static inline int pcache_limits_commit(struct gendisk *disk,
				       struct pcache_limits_update *upd,
				       const struct pcache_disk_limits *pl)
{
	struct request_queue *q = disk->queue;
#ifdef PCACHE_HAVE_BLK_MQ_ALLOC_DISK_LIMITS
	struct queue_limits *lim = &upd->lim;
	int ret;

	lim->max_hw_discard_sectors = pl->max_discard_sectors;
	lim->max_write_zeroes_sectors = pl->max_write_zeroes_sectors;
	lim->discard_granularity = pl->discard_granularity;
#ifdef PCACHE_HAVE_QUEUE_LIMITS_FEATURES
	lim->features &= ~(BLK_FEAT_WRITE_CACHE | BLK_FEAT_FUA);
	if (pl->write_cache)
		lim->features |= BLK_FEAT_WRITE_CACHE;
	if (pl->fua)
		lim->features |= BLK_FEAT_FUA;
#endif
	ret = queue_limits_commit_update(q, lim);
	if (ret)
		return ret;
#else
	blk_queue_max_discard_sectors(q, pl->max_discard_sectors);
	blk_queue_max_write_zeroes_sectors(q, pl->max_write_zeroes_sectors);
	q->limits.discard_granularity = pl->discard_granularity;
#endif
#ifndef PCACHE_HAVE_QUEUE_LIMITS_FEATURES
	blk_queue_write_cache(q, pl->write_cache, pl->fua);
#endif
	return 0;
}

/* Freeze and unfreeze a queue: since 6.14 the freeze saves noio state. */
#ifdef PCACHE_HAVE_BLK_MQ_FREEZE_QUEUE_MEMFLAGS
#define pcache_freeze_queue(q)			blk_mq_freeze_queue(q)
#define pcache_unfreeze_queue(q, memflags)	blk_mq_unfreeze_queue(q, memflags)
#else
static inline unsigned int pcache_freeze_queue(struct request_queue *q)
{
	blk_mq_freeze_queue(q);
	return 0;
}

static inline void pcache_unfreeze_queue(struct request_queue *q,
					 unsigned int memflags)
{
	blk_mq_unfreeze_queue(q);
}
#endif

/*
 * Before current->plug is swapped: since 6.9 a plug may hold a timestamp
 * (PF_BLOCK_TS) that the scheduler clears through current->plug.
 */
#ifdef PCACHE_HAVE_BLK_PLUG_INVALIDATE_TS
#define pcache_plug_forget_ts()		blk_plug_invalidate_ts()
#else
#define pcache_plug_forget_ts()		do { } while (0)
#endif

/* BLK_MQ_F_SHOULD_MERGE: merging is the default without it since 6.14. */
#ifdef PCACHE_HAVE_BLK_MQ_F_SHOULD_MERGE
#define PCACHE_BLK_MQ_F_MERGE		BLK_MQ_F_SHOULD_MERGE
#else
#define PCACHE_BLK_MQ_F_MERGE		0
#endif

/*
 * block_device_operations open/release: the gendisk and a blk_mode_t since
 * 6.5.  PCACHE_DEFINE_BLOCK_OPEN() wraps int fn(struct gendisk *) and
 * void fn(struct gendisk *) into the signatures of the running kernel.
 */
#ifdef PCACHE_HAVE_BLOCK_OPEN_GENDISK
#define PCACHE_DEFINE_BLOCK_OPEN(name, open_fn, release_fn)		\
	static int name##_open(struct gendisk *disk, blk_mode_t mode)	\
	{								\
		return open_fn(disk);					\
	}								\
	static void name##_release(struct gendisk *disk)		\
	{								\
		release_fn(disk);					\
	}
#else
#define PCACHE_DEFINE_BLOCK_OPEN(name, open_fn, release_fn)		\
	static int name##_open(struct block_device *bdev, fmode_t mode)	\
	{								\
		return open_fn(bdev->bd_disk);				\
	}								\
	static void name##_release(struct gendisk *disk, fmode_t mode)	\
	{								\
		release_fn(disk);					\
	}
#endif

#endif /* _PCACHE_COMPAT_H */
