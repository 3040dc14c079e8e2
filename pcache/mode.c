// SPDX-License-Identifier: GPL-2.0
/*
 * Cache modes of a backing device, and switching between them at runtime.
 *
 *   writeback     writes go to the log in pmem and complete there (cache.c);
 *                 writeback.c copies them to the backing device later.
 *   writethrough  writes go to the backing device and complete once it has
 *                 them; the cache then keeps a clean copy.
 *   writearound   writes go to the backing device and drop what the cache
 *                 had of their range.
 *   none          every request goes to the backing device as it is.
 * Reads are served from the cache and fill it in every mode but none.
 *
 * Writes around the log.  In writethrough and writearound, the index may
 * change only once the backing device has completed the write (else a read
 * could fill the range with the older data it still holds), and changing
 * it may allocate and sleep: so the request's last bio queues a work item
 * (pcache_around_work) that updates the index and completes the request.
 * Its data never was dirty, so the log only ever holds clean records in
 * these modes.
 *
 * Stale data never wins:
 *  - Against fills: the work bumps reclaim_gen before it changes the
 *    index, as reclaim does (see fill.c): a fill of a read that looked
 *    the range up before never lands where the work changed it.
 *  - Against each other: two overlapping writes in flight at once may
 *    reach the backing device in either order, so neither may leave its
 *    copy in the cache.  Each write around the log is on around_list from
 *    queue_rq until its work; one that finds an overlapping write there
 *    marks both, and both only drop the range.  The works run one at a
 *    time (around_mutex) and a work leaves the list under it, so a write
 *    that did not overlap any other was sent to the backing device after
 *    every earlier one completed, and updates the index after them.
 * The list and the mutex are per backing device, but only writes that go
 * to the backing device take them: the writeback path takes neither.
 *
 * A switch (pcache_mode_switch) freezes the disk's queue, so that no
 * request sees two modes.  Leaving writeback first writes back every dirty
 * byte: writes that bypass the log must not be overwritten on the backing
 * device by older data written back later.  The unfrozen drain lets I/O
 * go on while most of the dirty data goes; the rest goes with the queue
 * frozen.  Entering none drops the index: writes in mode none do not look
 * at it, so nothing it holds stays true.  Leaving a mode that sent writes
 * to the backing device flushes the backing device's write cache before
 * the disk stops advertising one; leaving writeback advertises it before
 * the freeze (pcache_mode_advertise_cache()).  The table on pmem records
 * the new mode only when it is in force.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/blk-mq.h>
#include <linux/blkdev.h>
#include <linux/list.h>
#include <linux/string.h>
#include <linux/workqueue.h>

#include "pcache.h"

const char * const pcache_mode_names[PCACHE_MODE_NR] = {
	[PCACHE_MODE_WRITEBACK]		= "writeback",
	[PCACHE_MODE_WRITETHROUGH]	= "writethrough",
	[PCACHE_MODE_WRITEAROUND]	= "writearound",
	[PCACHE_MODE_NONE]		= "none",
};

static struct workqueue_struct *pcache_around_wq;

static void pcache_around_work(struct work_struct *work);

/*
 * queue_rq of a WRITE, DISCARD or WRITE_ZEROES in writethrough or
 * writearound mode: send it to the backing device; pcache_around_work()
 * completes it.
 */
void pcache_around_write(struct pcache_backing *backing, struct request *rq)
{
	struct pcache_request *preq = blk_mq_rq_to_pdu(rq);
	sector_t start = blk_rq_pos(rq), end = start + blk_rq_sectors(rq);
	struct pcache_request *other;

	switch (req_op(rq)) {
	case REQ_OP_DISCARD:
		preq->kind = PCACHE_RQ_DISCARD;
		break;
	case REQ_OP_WRITE_ZEROES:
		preq->kind = PCACHE_RQ_WRITE_ZEROES;
		break;
	default:
		preq->kind = PCACHE_RQ_WRITE;
		break;
	}
	preq->around = true;
	preq->around_conflict = false;
	INIT_WORK(&preq->around_work, pcache_around_work);

	spin_lock(&backing->around_lock);
	list_for_each_entry(other, &backing->around_list, around_node) {
		struct request *orq = blk_mq_rq_from_pdu(other);

		if (blk_rq_pos(orq) < end &&
		    start < blk_rq_pos(orq) + blk_rq_sectors(orq)) {
			other->around_conflict = true;
			preq->around_conflict = true;
		}
	}
	list_add_tail(&preq->around_node, &backing->around_list);
	spin_unlock(&backing->around_lock);

	pcache_passthrough(backing, rq);
}

/* The last bio of a write around the log is done: update the index. */
void pcache_around_done(struct request *rq)
{
	struct pcache_request *preq = blk_mq_rq_to_pdu(rq);

	queue_work(pcache_around_wq, &preq->around_work);
}

/*
 * Writethrough: append the written data as clean records and index them
 * with their seq, over whatever the cache held.  Returns the sectors kept
 * from the start of the request: fewer when the cache has no room beyond
 * the writes' reserve.
 */
static u32 pcache_around_keep(struct pcache_backing *backing,
			      struct request *rq)
{
	struct pcache_request *preq = blk_mq_rq_to_pdu(rq);
	u32 left = blk_rq_sectors(rq), done = 0, len;
	sector_t pos = blk_rq_pos(rq);
	struct pcache_key key;
	u64 replaced = 0;

	while (left && pcache_fill_has_room(backing)) {
		len = left;
		if (!pcache_log_append(backing, rq, NULL, done << SECTOR_SHIFT,
				       pos, &len, PCACHE_KEY_F_CLEAN, &key))
			break;
		pcache_log_index(backing, &key, &replaced);
		pos += len;
		done += len;
		left -= len;
	}
	preq->replaced = replaced;
	return done;
}

/* Drop what the cache holds of @len sectors at @start. */
static void pcache_around_drop(struct pcache_backing *backing, sector_t start,
			       u64 len)
{
	struct pcache_extent_pool pool;
	gfp_t gfp = GFP_NOIO;

	pcache_extent_pool_init(&pool);
	while (len) {
		u32 n = min_t(u64, len, SZ_1G);

		/* Only an allocation failure stops it; GFP_NOIO waits instead. */
		WARN_ON(pcache_index_remove_alloc(&backing->index, start, n,
						  NULL, NULL, &pool,
						  pcache_extent_alloc, &gfp,
						  NULL));
		start += n;
		len -= n;
	}
	pcache_extent_pool_trim(&pool, 0, pcache_extent_free, NULL);
}

static void pcache_around_work(struct work_struct *work)
{
	struct pcache_request *preq = container_of(work, struct pcache_request,
						   around_work);
	struct request *rq = blk_mq_rq_from_pdu(preq);
	struct pcache_backing *backing = rq->q->queuedata;
	blk_status_t status = READ_ONCE(preq->status);
	u32 kept = 0;
	bool keep;

	mutex_lock(&backing->around_mutex);
	spin_lock(&backing->around_lock);
	list_del(&preq->around_node);
	keep = !preq->around_conflict;
	spin_unlock(&backing->around_lock);
	keep = keep && status == BLK_STS_OK && req_op(rq) == REQ_OP_WRITE &&
	       READ_ONCE(backing->mode) == PCACHE_MODE_WRITETHROUGH;

	atomic_inc(&backing->reclaim_gen);
	/*
	 * Before the index changes: a fill of an older read that takes a
	 * partition lock after this work did sees the gen bumped, and stops
	 * (pcache_fill_insert()).
	 */
	smp_mb__after_atomic();
	if (keep)
		kept = pcache_around_keep(backing, rq);
	if (kept < blk_rq_sectors(rq))
		pcache_around_drop(backing, blk_rq_pos(rq) + kept,
				   blk_rq_sectors(rq) - kept);
	mutex_unlock(&backing->around_mutex);
	pcache_request_end(rq, status);
}

/* Mode none: nothing in the index stays true, so nothing stays in it. */
static void pcache_mode_drop_index(struct pcache_backing *backing)
{
	atomic_inc(&backing->reclaim_gen);
	/* Before the index changes, as in pcache_around_work(). */
	smp_mb__after_atomic();
	pcache_around_drop(backing, 0, backing->sectors);
}

/* Take the switch, or say why not; under cache->lock. */
static int pcache_mode_switch_begin(struct pcache_backing *backing)
{
	struct pcache_cache *cache = backing->cache;

	lockdep_assert_held(&cache->lock);
	if (cache->removing) {
		pr_err("cache%d: being unregistered\n", cache->id);
		return -ENODEV;
	}
	if (backing->state != PCACHE_BACKING_ATTACHED) {
		pr_err("cache%d: backing%u: mode: not attached; attach it first\n",
		       cache->id, backing->id);
		return -ENODEV;
	}
	if (backing->mode_switching) {
		pr_err("cache%d: backing%u: mode: a switch is running already\n",
		       cache->id, backing->id);
		return -EBUSY;
	}
	backing->mode_switching = true;
	return 0;
}

/*
 * Leaving writeback: advertise the write cache and FUA of @mode before the
 * freeze.  The block layer strips FLUSH and FUA from a bio before it waits
 * to enter the queue, by the limits in force then: a bio submitted during
 * the frozen drain runs in @mode after it, and must keep them.  Writeback
 * serves both meanwhile as it serves any write (durable on completion).
 */
static int pcache_mode_advertise_cache(struct pcache_backing *backing,
				       u32 mode)
{
	struct pcache_disk_limits lim, next;
	struct pcache_limits_update upd;
	int ret;

	pcache_disk_mode_limits(backing, mode, &next);
	pcache_limits_start(backing->disk, &upd);
	pcache_disk_mode_limits(backing, backing->mode, &lim);
	lim.write_cache = next.write_cache;
	lim.fua = next.fua;
	ret = pcache_limits_commit(backing->disk, &upd, &lim);
	if (ret)
		pr_err("cache%d: backing%u: mode: the disk refused to advertise a write cache: %d; still writeback\n",
		       backing->cache->id, backing->id, ret);
	return ret;
}

/*
 * Switch @backing to @mode: see the top of this file.  Interrupted while
 * it writes back (a signal), it leaves everything as it was.
 */
static int pcache_mode_switch(struct pcache_backing *backing, u32 mode)
{
	struct pcache_cache *cache = backing->cache;
	struct pcache_backing_table *table;
	struct pcache_limits_update upd;
	struct pcache_disk_limits lim;
	struct request_queue *q;
	unsigned int memflags;
	u32 old;
	int ret, err;

	table = kvmalloc(sizeof(*table), GFP_KERNEL);
	if (!table)
		return -ENOMEM;
	mutex_lock(&cache->lock);
	ret = pcache_mode_switch_begin(backing);
	old = backing->mode;
	mutex_unlock(&cache->lock);
	if (ret)
		goto out_free;
	/* Only now: a backing that is not attached has no disk. */
	q = backing->disk->queue;
	if (old == mode)
		goto out_end;

	/* Most of the dirty data goes while I/O continues. */
	if (old == PCACHE_MODE_WRITEBACK) {
		pr_info("cache%d: backing%u: switching to %s: writing back %llu bytes first\n",
			cache->id, backing->id, pcache_mode_names[mode],
			pcache_dirty_bytes(backing));
		ret = pcache_wb_drain(backing, (u64)backing->quota *
					       cache->segment_size / 16);
		if (ret)
			goto out_interrupted;
	}

	if (old == PCACHE_MODE_WRITEBACK) {
		ret = pcache_mode_advertise_cache(backing, mode);
		if (ret)
			goto out_end;
	}
	pcache_limits_start(backing->disk, &upd);
	memflags = pcache_freeze_queue(q);
	if (old == PCACHE_MODE_WRITEBACK) {
		ret = pcache_wb_drain(backing, 0);
	} else if (mode == PCACHE_MODE_WRITEBACK) {
		/* What the disk acknowledged must not need a flush any more. */
		ret = blkdev_issue_flush(backing->bdev.bdev);
		if (ret)
			pr_err("cache%d: backing%u: mode: flushing the backing device failed: %d; still %s\n",
			       cache->id, backing->id, ret,
			       pcache_mode_names[old]);
	}
	pcache_disk_mode_limits(backing, ret ? old : mode, &lim);
	err = pcache_limits_commit(backing->disk, &upd, &lim);
	if (!ret && err) {
		pr_err("cache%d: backing%u: mode: the disk refused the limits of %s: %d; still %s\n",
		       cache->id, backing->id, pcache_mode_names[mode], err,
		       pcache_mode_names[old]);
		ret = err;
	}
	if (!ret) {
		if (mode == PCACHE_MODE_NONE)
			pcache_mode_drop_index(backing);
		WRITE_ONCE(backing->mode, mode);
		/* Before any request runs in it: replay must know it. */
		mutex_lock(&cache->lock);
		memcpy(table, cache->table, sizeof(*table));
		table->entries[backing->id].mode = cpu_to_le32(mode);
		pcache_cache_write_table(cache, table);
		mutex_unlock(&cache->lock);
	}
	pcache_unfreeze_queue(q, memflags);
	if (ret == -ERESTARTSYS)
		goto out_interrupted;
	if (ret)
		goto out_end;
	pr_info("cache%d: backing%u: mode %s (was %s)\n", cache->id,
		backing->id, pcache_mode_names[mode], pcache_mode_names[old]);
	goto out_end;

out_interrupted:
	pr_err("cache%d: backing%u: mode: interrupted; still writeback with %llu bytes not written back\n",
	       cache->id, backing->id, pcache_dirty_bytes(backing));
out_end:
	mutex_lock(&cache->lock);
	backing->mode_switching = false;
	mutex_unlock(&cache->lock);
out_free:
	kvfree(table);
	return ret;
}

static ssize_t mode_show(struct device *dev, struct device_attribute *attr,
			 char *buf)
{
	struct pcache_backing *backing = to_pcache_backing(dev);
	struct pcache_cache *cache = backing->cache;
	ssize_t ret;
	u32 mode;

	mutex_lock(&cache->lock);
	mode = le32_to_cpu(pcache_backing_entry(backing)->mode);
	ret = sysfs_emit(buf, "%s\n", pcache_mode_names[mode]);
	mutex_unlock(&cache->lock);
	return ret;
}

static ssize_t mode_store(struct device *dev, struct device_attribute *attr,
			  const char *buf, size_t count)
{
	struct pcache_backing *backing = to_pcache_backing(dev);
	int mode, ret;

	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	mode = sysfs_match_string(pcache_mode_names, buf);
	if (mode < 0) {
		pr_err("cache%d: backing%u: mode: unknown mode '%.*s' (writeback, writethrough, writearound, none)\n",
		       backing->cache->id, backing->id,
		       (int)strcspn(buf, "\n"), buf);
		return -EINVAL;
	}
	ret = pcache_mode_switch(backing, mode);
	return ret ?: count;
}
static DEVICE_ATTR_RW(mode);

static struct attribute *pcache_mode_attrs[] = {
	&dev_attr_mode.attr,
	NULL,
};

const struct attribute_group pcache_mode_attr_group = {
	.attrs = pcache_mode_attrs,
};

void pcache_mode_backing_init(struct pcache_backing *backing)
{
	spin_lock_init(&backing->around_lock);
	INIT_LIST_HEAD(&backing->around_list);
	mutex_init(&backing->around_mutex);
}

int pcache_mode_init(void)
{
	/* Requests complete from it: it must make progress under reclaim. */
	pcache_around_wq = alloc_workqueue("pcache_around", WQ_MEM_RECLAIM | WQ_UNBOUND, 0);
	return pcache_around_wq ? 0 : -ENOMEM;
}

void pcache_mode_exit(void)
{
	destroy_workqueue(pcache_around_wq);
}
