// SPDX-License-Identifier: GPL-2.0
/*
 * The blk-mq disk of a backing device, /dev/pcacheN, and its request path.
 *
 * queue_rq runs in the submitter's context (no workqueue hop).  It builds
 * bios to the backing device straight from the request's pages; no bio of
 * the upper layer is cloned.  Bios come from pcache_bio_set with GFP_NOIO:
 * allocation waits instead of failing, which is why the queue is
 * BLK_MQ_F_BLOCKING, and the bio_set's rescuer keeps it from deadlocking
 * under submit_bio().
 *
 * In writeback mode requests go through the cache (cache.c), and the disk
 * advertises no volatile write cache: a completed write is in pmem; so
 * are a completed DISCARD and WRITE_ZEROES, of any size.  In the other
 * modes writes go to the backing device (around the log, mode.c, or as
 * they are in mode none), and the disk advertises exactly the backing
 * device's write cache and FUA, so that a completed FLUSH or FUA write
 * means what it says.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/bio.h>
#include <linux/blk-mq.h>
#include <linux/blkdev.h>
#include <linux/idr.h>
#include <linux/module.h>

#include "pcache.h"

/* Minors per disk: the disk and 15 partitions. */
#define PCACHE_DISK_MINORS	16
#define PCACHE_QUEUE_DEPTH	128

static int pcache_major;
static DEFINE_IDA(pcache_disk_ida);

bool pcache_is_pcache_disk(dev_t devt)
{
	return MAJOR(devt) == pcache_major;
}

void pcache_request_end(struct request *rq, blk_status_t status)
{
	pcache_stats_account(rq->q->queuedata, rq, status);
	blk_mq_end_request(rq, status);
}

void pcache_request_put(struct request *rq)
{
	struct pcache_request *preq = blk_mq_rq_to_pdu(rq);

	if (!atomic_dec_and_test(&preq->pending))
		return;
	if (preq->around)
		pcache_around_done(rq);
	else
		pcache_request_end(rq, READ_ONCE(preq->status));
}

static void pcache_backing_endio(struct bio *bio)
{
	struct request *rq = bio->bi_private;
	struct pcache_request *preq = blk_mq_rq_to_pdu(rq);

	/* Any error of the request's bios fails the request. */
	if (bio->bi_status)
		WRITE_ONCE(preq->status, bio->bi_status);
	bio_put(bio);
	pcache_request_put(rq);
}

struct bio *pcache_backing_bio(struct pcache_backing *backing,
			       struct request *rq, blk_opf_t opf,
			       unsigned short nr_vecs, sector_t sector)
{
	struct pcache_request *preq = blk_mq_rq_to_pdu(rq);
	struct bio *bio;

	bio = bio_alloc_bioset(backing->bdev.bdev, nr_vecs, opf, GFP_NOIO,
			       &pcache_bio_set);
	bio->bi_iter.bi_sector = sector;
	bio->bi_private = rq;
	bio->bi_end_io = pcache_backing_endio;
	atomic_inc(&preq->pending);
	return bio;
}

/* Send a request to the backing device, in as few bios as it takes. */
void pcache_passthrough(struct pcache_backing *backing, struct request *rq)
{
	struct pcache_request *preq = blk_mq_rq_to_pdu(rq);
	blk_opf_t opf = req_op(rq) |
		(rq->cmd_flags & (REQ_FUA | REQ_SYNC | REQ_META | REQ_PRIO |
				  REQ_NOUNMAP));
	unsigned short nr_vecs;
	sector_t sector = blk_rq_pos(rq);
	struct req_iterator iter;
	struct bio *bio = NULL;
	struct bio_vec bv;

	atomic_set(&preq->pending, 1);
	preq->status = BLK_STS_OK;

	if (req_op(rq) == REQ_OP_FLUSH) {
		bio = pcache_backing_bio(backing, rq, REQ_OP_WRITE | REQ_PREFLUSH,
					 0, 0);
		submit_bio(bio);
		pcache_request_put(rq);
		return;
	}
	if (req_op(rq) == REQ_OP_DISCARD &&
	    !bdev_max_discard_sectors(backing->bdev.bdev)) {
		/* A hint the backing device does not take (writearound). */
		pcache_request_put(rq);
		return;
	}
	if (req_op(rq) == REQ_OP_DISCARD || req_op(rq) == REQ_OP_WRITE_ZEROES) {
		/* No data: the request's size says how much. */
		bio = pcache_backing_bio(backing, rq, opf, 0, sector);
		bio->bi_iter.bi_size = blk_rq_bytes(rq);
		submit_bio(bio);
		pcache_request_put(rq);
		return;
	}

	nr_vecs = min_t(unsigned int, blk_rq_nr_phys_segments(rq), BIO_MAX_VECS);
	rq_for_each_bvec(bv, rq, iter) {
		if (bio && bio_add_page(bio, bv.bv_page, bv.bv_len, bv.bv_offset))
			continue;
		if (bio) {
			sector += bio_sectors(bio);
			submit_bio(bio);
		}
		bio = pcache_backing_bio(backing, rq, opf, nr_vecs ?: 1, sector);
		/* An empty bio takes any one bvec. */
		__bio_add_page(bio, bv.bv_page, bv.bv_len, bv.bv_offset);
	}
	if (bio)
		submit_bio(bio);
	pcache_request_put(rq);
}

static blk_status_t pcache_queue_rq(struct blk_mq_hw_ctx *hctx,
				    const struct blk_mq_queue_data *bd)
{
	struct pcache_backing *backing = hctx->queue->queuedata;
	struct pcache_request *preq = blk_mq_rq_to_pdu(bd->rq);
	struct blk_plug *submitter_plug, plug;
	struct request *rq = bd->rq;
	u32 mode;

	switch (req_op(rq)) {
	case REQ_OP_READ:
	case REQ_OP_WRITE:
	case REQ_OP_FLUSH:
	case REQ_OP_DISCARD:
	case REQ_OP_WRITE_ZEROES:
		break;
	default:
		/* Not advertised, so not expected: refuse, never crash. */
		return BLK_STS_NOTSUPP;
	}
	blk_mq_start_request(rq);
	preq->start_ns = ktime_get_ns();
	preq->kind = PCACHE_RQ_BYPASS;
	preq->around = false;
	/*
	 * Without the log, neither the data cached nor which ranges of the
	 * backing device are stale can be known: everything fails.
	 */
	if (unlikely(pcache_pmem_gone(backing->cache))) {
		pcache_request_end(rq, BLK_STS_IOERR);
		return BLK_STS_OK;
	}
	/*
	 * queue_rq may be called while the submitter's plug is being flushed
	 * (blk_mq_plug_issue_direct pops requests off the plug list): neither
	 * bios for the backing device nor a sleep (which flushes the current
	 * plug) may touch that list under its feet.  The submitter's plug is
	 * hidden meanwhile; bios go into a plug of their own, flushed before
	 * returning, or when this task sleeps.
	 */
	submitter_plug = current->plug;
	pcache_plug_forget_ts();
	current->plug = NULL;
	/* Stable while the request is in flight: a switch freezes the queue. */
	mode = READ_ONCE(backing->mode);
	if (mode == PCACHE_MODE_WRITEBACK && req_op(rq) != REQ_OP_READ) {
		/*
		 * Writes are durable in pmem when they complete; so is a
		 * flush.  Neither sends a bio down: no plug of our own.
		 */
		pcache_request_end(rq, req_op(rq) == REQ_OP_FLUSH ? BLK_STS_OK :
				   pcache_cache_write(backing, rq));
		current->plug = submitter_plug;
		return BLK_STS_OK;
	}
	blk_start_plug(&plug);
	if (mode == PCACHE_MODE_NONE || req_op(rq) == REQ_OP_FLUSH)
		pcache_passthrough(backing, rq);
	else if (req_op(rq) == REQ_OP_READ)
		pcache_cache_read(backing, rq);
	else
		pcache_around_write(backing, rq);
	blk_finish_plug(&plug);
	current->plug = submitter_plug;
	return BLK_STS_OK;
}

/*
 * A flush of this disk can complete inside the backing device's flush
 * completion (a request ends from its backing bio's end_io) with that
 * queue's mq_flush_lock held: another lock, but the same lockdep class,
 * which reports recursive locking.  The flush queues of pcache's disks
 * get a class of their own, as nvme-loop's do.
 */
static struct lock_class_key pcache_fq_lock_key;

static int pcache_init_hctx(struct blk_mq_hw_ctx *hctx, void *data,
			    unsigned int index)
{
	blk_mq_hctx_set_fq_lock_class(hctx, &pcache_fq_lock_key);
	return 0;
}

static const struct blk_mq_ops pcache_mq_ops = {
	.queue_rq	= pcache_queue_rq,
	.init_hctx	= pcache_init_hctx,
};

static int pcache_disk_do_open(struct gendisk *disk)
{
	struct pcache_backing *backing = disk->private_data;
	int ret = 0;

	mutex_lock(&backing->open_lock);
	if (backing->removing)
		ret = -ENXIO;
	else
		backing->open_count++;
	mutex_unlock(&backing->open_lock);
	return ret;
}

static void pcache_disk_do_release(struct gendisk *disk)
{
	struct pcache_backing *backing = disk->private_data;

	mutex_lock(&backing->open_lock);
	backing->open_count--;
	mutex_unlock(&backing->open_lock);
}

PCACHE_DEFINE_BLOCK_OPEN(pcache_disk, pcache_disk_do_open, pcache_disk_do_release)

static const struct block_device_operations pcache_disk_fops = {
	.owner		= THIS_MODULE,
	.open		= pcache_disk_open,
	.release	= pcache_disk_release,
};

/*
 * Refuse removal while the disk is open; once claimed, opens fail, so the
 * disk can be deleted without anyone holding it.
 */
int pcache_disk_claim_removal(struct pcache_backing *backing)
{
	int ret = 0;

	mutex_lock(&backing->open_lock);
	if (backing->open_count)
		ret = -EBUSY;
	else
		backing->removing = true;
	mutex_unlock(&backing->open_lock);
	return ret;
}

/* A detach that failed after claiming the removal gives the disk back. */
void pcache_disk_unclaim_removal(struct pcache_backing *backing)
{
	mutex_lock(&backing->open_lock);
	backing->removing = false;
	mutex_unlock(&backing->open_lock);
}

/*
 * The limits that depend on the mode.  Through the log (writeback), a
 * completed write is durable in pmem, and discards and zeroes of any size
 * are records without data.  Around the log, the backing device takes the
 * writes: the disk has its write cache and FUA, and its write zeroes;
 * discards of any size drop cached data and go down if it takes them.
 */
void pcache_disk_mode_limits(struct pcache_backing *backing, u32 mode,
			     struct pcache_disk_limits *lim)
{
	struct block_device *bdev = backing->bdev.bdev;
	bool log = mode == PCACHE_MODE_WRITEBACK;
	bool around = mode == PCACHE_MODE_WRITETHROUGH ||
		      mode == PCACHE_MODE_WRITEAROUND;

	lim->max_discard_sectors = log || around ? UINT_MAX >> SECTOR_SHIFT :
				   bdev_max_discard_sectors(bdev);
	lim->max_write_zeroes_sectors = log ? UINT_MAX >> SECTOR_SHIFT :
					bdev_write_zeroes_sectors(bdev);
	lim->discard_granularity = log || around ? bdev_logical_block_size(bdev) :
				   bdev_discard_granularity(bdev);
	lim->write_cache = !log && bdev_write_cache(bdev);
	lim->fua = !log && bdev_fua(bdev);
}

int pcache_disk_create(struct pcache_backing *backing)
{
	struct block_device *bdev = backing->bdev.bdev;
	struct blk_mq_tag_set *set = &backing->tag_set;
	struct pcache_disk_limits lim = {
		.logical_block_size	= bdev_logical_block_size(bdev),
		.physical_block_size	= bdev_physical_block_size(bdev),
		.io_min			= bdev_io_min(bdev),
		.max_hw_sectors		= PCACHE_MAX_HW_SECTORS,
	};
	struct gendisk *disk;
	int index, ret;

	pcache_disk_mode_limits(backing, backing->mode, &lim);
	index = ida_alloc_max(&pcache_disk_ida,
			      (1 << MINORBITS) / PCACHE_DISK_MINORS - 1,
			      GFP_KERNEL);
	if (index < 0)
		return index;

	memset(set, 0, sizeof(*set));
	set->ops = &pcache_mq_ops;
	set->nr_hw_queues = num_online_cpus();
	set->queue_depth = PCACHE_QUEUE_DEPTH;
	set->numa_node = NUMA_NO_NODE;
	set->cmd_size = sizeof(struct pcache_request);
	/*
	 * No I/O scheduler unless the administrator picks one: with a single
	 * hardware queue (one CPU online) the block layer would default to
	 * mq-deadline, a lock and a sort per request in front of a submit
	 * path that completes writes in pmem at once.
	 */
	set->flags = PCACHE_BLK_MQ_F_MERGE | BLK_MQ_F_BLOCKING |
		     BLK_MQ_F_NO_SCHED_BY_DEFAULT;
	set->driver_data = backing;
	ret = blk_mq_alloc_tag_set(set);
	if (ret)
		goto out_free_index;

	disk = pcache_alloc_disk(set, &lim, backing);
	if (IS_ERR(disk)) {
		ret = PTR_ERR(disk);
		goto out_free_tag_set;
	}
	disk->major = pcache_major;
	disk->first_minor = index * PCACHE_DISK_MINORS;
	disk->minors = PCACHE_DISK_MINORS;
	disk->fops = &pcache_disk_fops;
	disk->private_data = backing;
	snprintf(disk->disk_name, DISK_NAME_LEN, "pcache%d", index);
	set_capacity(disk, backing->sectors);

	backing->disk = disk;
	backing->disk_index = index;
	backing->open_count = 0;
	backing->removing = false;
	ret = device_add_disk(&backing->dev, disk, NULL);
	if (ret)
		goto out_put_disk;
	return 0;

out_put_disk:
	backing->disk = NULL;
	put_disk(disk);
out_free_tag_set:
	blk_mq_free_tag_set(set);
out_free_index:
	ida_free(&pcache_disk_ida, index);
	return ret;
}

/* The caller has claimed the removal: nobody has the disk open. */
void pcache_disk_destroy(struct pcache_backing *backing)
{
	if (!backing->disk)
		return;
	del_gendisk(backing->disk);
	put_disk(backing->disk);
	blk_mq_free_tag_set(&backing->tag_set);
	ida_free(&pcache_disk_ida, backing->disk_index);
	backing->disk = NULL;
}

int pcache_disk_init(void)
{
	int ret = register_blkdev(0, "pcache");

	if (ret < 0)
		return ret;
	pcache_major = ret;
	return 0;
}

void pcache_disk_exit(void)
{
	unregister_blkdev(pcache_major, "pcache");
	ida_destroy(&pcache_disk_ida);
}
