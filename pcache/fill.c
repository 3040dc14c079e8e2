// SPDX-License-Identifier: GPL-2.0
/*
 * Read caching: what a read miss brings from the backing device is added to
 * the cache as clean data (a fill), so that the next read of it hits.
 *
 * A read's completion never waits for its fill.  Each run of missed
 * sectors small enough (PCACHE_FILL_MAX_BYTES) gets a fill prepared in
 * queue_rq, with pages allocated without waiting (no pages, no fill).  The
 * run is read into the fill's pages, not the reader's: an O_DIRECT reader
 * may store into its buffer while the read is in flight, and what is
 * cached, for every later reader, must be what the device returned.  The
 * bio's completion copies the data into the request before it completes
 * it, and queues the fill.  The fill work appends a record flagged
 * PCACHE_KEY_F_CLEAN with the data to a head like a write, and inserts it
 * into the index.
 *
 * Stale data never wins.  A fill holds what the backing device held when it
 * was read, so it must not hide any write:
 *  - Its index key has seq 0, below every write's: the insertion only fills
 *    the holes of the index, and any write inserted later replaces it.  A
 *    write indexed before the lookup made those sectors hits, not misses;
 *    one indexed between the lookup and the fill's insertion keeps its
 *    sectors.  (Its log record has a real seq, so that the log stays in
 *    order; replay does not index clean records at all.)
 *  - The one way a write can leave the index is reclaim, once it is on the
 *    backing device: then the hole reappears, and a fill read before the
 *    write reached the backing device would fill it with older data.
 *    Reclaim bumps reclaim_gen before it drops extents; a fill that finds
 *    reclaim_gen changed since before its lookup, under the lock of the
 *    partition it goes into, stops there (pcache_fill_insert()).
 * Writeback passes clean records by (the backing device has their data),
 * and they do not count as dirty.
 *
 * A fill is best effort: it is dropped when pages cannot be had at once,
 * when the read failed, and when the backing
 * device is down to its reserve of free segments (fills never make a write
 * wait for space); then reclaim is asked to free the oldest clean segments.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/bio.h>
#include <linux/blk-mq.h>
#include <linux/delay.h>
#include <linux/highmem.h>
#include <linux/moduleparam.h>
#include <linux/slab.h>
#include <linux/wait_bit.h>
#include <linux/workqueue.h>

#include "pcache.h"

/* Larger misses are not cached: streams should not evict the hot set. */
#define PCACHE_FILL_MAX_BYTES	SZ_256K

struct pcache_fill {
	struct work_struct work;
	struct pcache_backing *backing;
	struct request *rq;
	sector_t start;
	u32 sectors;
	int gen;			/* reclaim_gen before the lookup */
	unsigned int nr_pages;
	struct page *pages[];
};

static struct workqueue_struct *pcache_fill_wq;

/*
 * For tests: hold every fill back this long before it is appended, to
 * widen the window in which writes and reclaim race with it.
 */
static unsigned int fill_delay_ms;
module_param(fill_delay_ms, uint, 0644);
MODULE_PARM_DESC(fill_delay_ms, "testing: delay read cache fills by this many ms (default 0)");

static void pcache_fill_work(struct work_struct *work);

static void pcache_fill_free(struct pcache_fill *fill)
{
	struct pcache_backing *backing = fill->backing;
	unsigned int i;

	for (i = 0; i < fill->nr_pages; i++)
		__free_page(fill->pages[i]);
	kfree(fill);
	if (atomic_dec_and_test(&backing->fills))
		wake_up_var(&backing->fills);
}

/*
 * Room for clean data: never the reserve that writes need.  Without room,
 * reclaim is asked to free the oldest clean segments.
 */
bool pcache_fill_has_room(struct pcache_backing *backing)
{
	u32 used = READ_ONCE(backing->segs_used);

	if (used + backing->segs_reserve < backing->quota)
		return true;
	pcache_wb_fill_wants_room(backing);
	return false;
}

/*
 * In queue_rq, for a run of @sectors missed sectors from @start of @rq:
 * a fill, or NULL.  Allocates without waiting or warning.
 */
struct pcache_fill *pcache_fill_prepare(struct pcache_backing *backing,
					struct request *rq, sector_t start,
					u32 sectors, int gen)
{
	u32 bytes = sectors << SECTOR_SHIFT;
	unsigned int nr = DIV_ROUND_UP(bytes, PAGE_SIZE), i;
	const gfp_t gfp = GFP_NOWAIT | __GFP_NOWARN;
	struct pcache_fill *fill;

	if (bytes > PCACHE_FILL_MAX_BYTES || !pcache_fill_has_room(backing))
		return NULL;
	fill = kmalloc(struct_size(fill, pages, nr), gfp);
	if (!fill)
		return NULL;
	for (i = 0; i < nr; i++) {
		fill->pages[i] = alloc_page(gfp);
		if (!fill->pages[i])
			break;
	}
	fill->nr_pages = i;
	fill->backing = backing;
	atomic_inc(&backing->fills);
	if (i < nr) {
		pcache_fill_free(fill);
		return NULL;
	}
	INIT_WORK(&fill->work, pcache_fill_work);
	fill->rq = rq;
	fill->start = start;
	fill->sectors = sectors;
	fill->gen = gen;
	return fill;
}

/*
 * Sequential bypass: is @rq a read of a stream that is past the cutoff
 * already?  Then its misses are not cached, so that a backup or a scan
 * does not push the hot data out.  A stream is a run of reads each
 * starting where the last one on this CPU ended.
 */
bool pcache_fill_stream_bypass(struct pcache_backing *backing,
			       struct request *rq)
{
	struct pcache_head *head = raw_cpu_ptr(backing->heads);
	u64 cutoff = READ_ONCE(backing->sequential_cutoff);
	u64 before = 0;

	if (READ_ONCE(head->stream_next) == blk_rq_pos(rq))
		before = READ_ONCE(head->stream_bytes);
	WRITE_ONCE(head->stream_bytes, before + blk_rq_bytes(rq));
	WRITE_ONCE(head->stream_next, blk_rq_pos(rq) + blk_rq_sectors(rq));
	return cutoff && before >= cutoff;
}

/* Copy the fill's pages into the part of its request it read. */
static void pcache_fill_to_request(struct pcache_fill *fill)
{
	struct request *rq = fill->rq;
	u32 from = (fill->start - blk_rq_pos(rq)) << SECTOR_SHIFT;
	u32 to = from + (fill->sectors << SECTOR_SHIFT), pos = 0, off, hi, n;
	struct req_iterator iter;
	struct bio_vec bv;

	rq_for_each_segment(bv, rq, iter) {
		hi = min(pos + bv.bv_len, to);
		/* Up to each page boundary of the fill: sub-page buffers. */
		for (off = max(pos, from); off < hi; off += n) {
			n = min_t(u32, hi - off,
				  PAGE_SIZE - offset_in_page(off - from));
			memcpy_page(bv.bv_page, bv.bv_offset + off - pos,
				    fill->pages[(off - from) >> PAGE_SHIFT],
				    offset_in_page(off - from), n);
		}
		pos += bv.bv_len;
		if (pos >= to)
			break;
	}
}

/* Give the request its data, then complete the bio as pcache_backing_endio() does. */
static void pcache_fill_endio(struct bio *bio)
{
	struct pcache_fill *fill = bio->bi_private;
	struct request *rq = fill->rq;
	struct pcache_request *preq = blk_mq_rq_to_pdu(rq);

	if (bio->bi_status) {
		WRITE_ONCE(preq->status, bio->bi_status);
		pcache_fill_free(fill);
	} else {
		pcache_fill_to_request(fill);
		queue_work(pcache_fill_wq, &fill->work);
	}
	bio_put(bio);
	pcache_request_put(rq);
}

/* Read the fill's run of missed sectors into its pages, in one bio. */
void pcache_fill_read(struct pcache_backing *backing, struct pcache_fill *fill)
{
	u32 bytes = fill->sectors << SECTOR_SHIFT, off;
	struct bio *bio;

	bio = pcache_backing_bio(backing, fill->rq, REQ_OP_READ, fill->nr_pages,
				 fill->start);
	for (off = 0; off < bytes; off += PAGE_SIZE)
		__bio_add_page(bio, fill->pages[off >> PAGE_SHIFT],
			       min_t(u32, PAGE_SIZE, bytes - off), 0);
	bio->bi_private = fill;
	bio->bi_end_io = pcache_fill_endio;
	submit_bio(bio);
}

/* For pcache_log_append(): copy @len bytes from byte @off of the fill. */
void pcache_fill_to_pmem(struct pcache_fill *fill, u32 off, void *dst, u32 len,
			 u32 *crc)
{
	while (len) {
		u32 n = min_t(u32, len, PAGE_SIZE - offset_in_page(off));
		void *src = kmap_local_page(fill->pages[off >> PAGE_SHIFT]);

		memcpy_flushcache(dst, src + offset_in_page(off), n);
		if (crc)
			*crc = pcache_crc32c(*crc, src + offset_in_page(off), n);
		kunmap_local(src);
		dst += n;
		off += n;
		len -= n;
	}
}

/* Under a partition's lock: see pcache_fill_insert(). */
static bool pcache_fill_stale(void *ctx)
{
	struct pcache_fill *fill = ctx;

	return atomic_read(&fill->backing->reclaim_gen) != fill->gen;
}

/*
 * Insert a piece of a fill (its key appended to the log) into the index,
 * where nothing is, unless reclaim ran since the lookup.  Its extents come
 * from the slab alone, never from the writes' spare extents or mempool
 * reserve, which a burst of read misses could empty, leaving writes to
 * wait on it: a fill is best effort, and one that finds no memory stops
 * (what it did not index is read from the backing device).  Reclaim (and the
 * drops of mode.c) bump reclaim_gen before they take a partition lock to
 * drop extents, so a fill that goes into a partition after such a drop
 * sees the gen changed, under that partition's lock, and stops: it never
 * fills a hole a drop made.  A piece that went in before the drop took
 * the lock only filled holes that were there before, which the fill read
 * after (its gen was read before the read's lookup, pcache_cache_read()).
 * Returns false when it stopped so: the rest of the fill is stale too.
 */
static bool pcache_fill_insert(struct pcache_backing *backing,
			       struct pcache_fill *fill, struct pcache_key *key)
{
	struct pcache_extent_pool pool;
	int ret;

	key->seq = 0;
	pcache_extent_pool_init(&pool);
	ret = pcache_index_insert_unless(&backing->index, key, &pool,
					 pcache_extent_alloc_noreserve, NULL,
					 pcache_fill_stale, fill);
	pcache_extent_pool_trim(&pool, 0, pcache_extent_free, NULL);
	WARN_ON(ret && ret != -ESTALE && ret != -ENOMEM);
	return !ret;
}

static void pcache_fill_work(struct work_struct *work)
{
	struct pcache_fill *fill = container_of(work, struct pcache_fill, work);
	struct pcache_backing *backing = fill->backing;
	u32 left = fill->sectors, done = 0, len;
	sector_t pos = fill->start;
	unsigned int delay = READ_ONCE(fill_delay_ms);
	struct pcache_key key;
	bool inserted = true;

	if (delay)
		msleep(delay);
	/* Waited for by pcache_backing_pmem_gone() if it started before. */
	if (pcache_pmem_gone(backing->cache))
		left = 0;
	while (left && inserted && pcache_fill_has_room(backing)) {
		len = left;
		if (!pcache_log_append(backing, NULL, fill, done << SECTOR_SHIFT,
				       pos, &len, PCACHE_KEY_F_CLEAN, &key))
			break;
		inserted = pcache_fill_insert(backing, fill, &key);
		/* Pairs with pcache_wb_reclaimable(): the key is in the index. */
		smp_mb__before_atomic();
		atomic_dec(&backing->cache->segs[key.seg].inserting);
		pos += len;
		done += len;
		left -= len;
	}
	pcache_fill_free(fill);
}

/* Before the backing's cache goes: no fill is left. */
void pcache_fill_wait(struct pcache_backing *backing)
{
	wait_var_event(&backing->fills, !atomic_read(&backing->fills));
}

static ssize_t read_cache_show(struct device *dev,
			       struct device_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%d\n", READ_ONCE(to_pcache_backing(dev)->read_cache));
}

static ssize_t read_cache_store(struct device *dev,
				struct device_attribute *attr, const char *buf,
				size_t count)
{
	struct pcache_backing *backing = to_pcache_backing(dev);
	bool value;

	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	if (kstrtobool(buf, &value)) {
		pr_err("cache%d: backing%u: read_cache: expected 0 or 1\n",
		       backing->cache->id, backing->id);
		return -EINVAL;
	}
	WRITE_ONCE(backing->read_cache, value);
	return count;
}
static DEVICE_ATTR_RW(read_cache);

static ssize_t sequential_cutoff_show(struct device *dev,
				      struct device_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%llu\n",
			  READ_ONCE(to_pcache_backing(dev)->sequential_cutoff));
}

static ssize_t sequential_cutoff_store(struct device *dev,
				       struct device_attribute *attr,
				       const char *buf, size_t count)
{
	struct pcache_backing *backing = to_pcache_backing(dev);
	char value[32];
	u64 bytes;

	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	if (strscpy(value, buf, sizeof(value)) < 0 ||
	    pcache_parse_size(strim(value), &bytes) || bytes > SZ_1T) {
		pr_err("cache%d: backing%u: sequential_cutoff: expected bytes (with K, M, G or T) up to 1T, 0 for none\n",
		       backing->cache->id, backing->id);
		return -EINVAL;
	}
	WRITE_ONCE(backing->sequential_cutoff, bytes);
	return count;
}
static DEVICE_ATTR_RW(sequential_cutoff);

static struct attribute *pcache_fill_attrs[] = {
	&dev_attr_read_cache.attr,
	&dev_attr_sequential_cutoff.attr,
	NULL,
};

const struct attribute_group pcache_fill_attr_group = {
	.attrs = pcache_fill_attrs,
};

int pcache_fill_init(void)
{
	pcache_fill_wq = alloc_workqueue("pcache_fill", WQ_UNBOUND, 0);
	return pcache_fill_wq ? 0 : -ENOMEM;
}

void pcache_fill_exit(void)
{
	destroy_workqueue(pcache_fill_wq);
}
