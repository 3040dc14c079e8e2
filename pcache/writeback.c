// SPDX-License-Identifier: GPL-2.0
/*
 * Writeback and reclaim: the log of a backing device goes to the backing
 * device in seq order, and segments whose records are all there are freed.
 *
 * Ordering.  A round of writeback takes every record with a seq in
 * (clean_seq, target], writes what they hold to the backing device (a range
 * written more than once in the round is written once, with the newest
 * data), flushes the backing device, and only then raises clean_seq in the
 * backing table on pmem.  Records of one segment are in seq order, so the
 * round is a prefix of each segment's log, and together a prefix of the
 * history of writes: after every flush pcache issues, the backing device
 * alone holds exactly the writes up to clean_seq.  A crash at any point
 * replays the log above the clean_seq on pmem, which still holds all of it.
 *
 * Every record up to @target exists: a seq is taken, and its record
 * written, under the lock of one head; once the work has taken and dropped
 * every head's lock after reading the seq counter, all of them are on pmem.
 *
 * Reclaim.  A segment no head appends to any more and whose records are all
 * up to clean_seq, and whose every key has reached the index (a write counts
 * its key in the segment's @inserting from the append to the insertion), is
 * clean.  Clean segments stay cached, so that what was written is still read
 * from pmem after it went to the backing device, until the backing runs
 * short of free segments: below its reserve (a sixteenth of the quota, at
 * least two segments per CPU), a round frees the clean segments whose
 * newest record is oldest until twice the reserve is free.  Freeing one
 * drops from the index every extent pointing into it, under the partition
 * locks that reads copy under; the next opening writes a new header with a
 * new gen before any record.
 *
 * Pacing.  A round runs when a delay (writeback_delay_ms) has passed since
 * data became dirty, and rounds run back to back while more than
 * dirty_high_percent of the quota holds dirty data (until below
 * dirty_low_percent), while a write waits for a segment, and while a detach
 * drains the cache.  A segment opened below the reserve starts a round at
 * once.  A failed round leaves everything as it was and is retried a second
 * later, taking half as many records at most: a device that fails briefly
 * but often (a flaky path, a controller reset) would fail every round that
 * takes longer than its good windows, for ever.  Each round that succeeds
 * doubles the limit again, up to PCACHE_WB_BATCH_KEYS.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/badblocks.h>
#include <linux/blkdev.h>
#include <linux/highmem.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>
#include <linux/sort.h>
#include <linux/uaccess.h>
#include <linux/wait.h>

#include "pcache.h"

/* Records in one round, at most. */
#define PCACHE_WB_BATCH_KEYS	4096
/* Extents of a round: a record splits an older extent in two at worst. */
#define PCACHE_WB_BATCH_EXTENTS	(3 * PCACHE_WB_BATCH_KEYS)
#define PCACHE_WB_INFLIGHT	64
#define PCACHE_WB_RETRY_MS	1000
/* Sectors per lookup or removal call: an extent length is a u32. */
#define PCACHE_WB_CHUNK		BIT_ULL(30)

static struct workqueue_struct *pcache_wb_wq;

/* A record taken into the round. */
struct pcache_wb_rec {
	u64 seq;
	u64 start;
	u32 len;
	u32 seg;
	u32 data_off;
	u32 data_end;			/* of the segment's data, with this one */
	u32 index;			/* in its segment */
	u32 flags;			/* PCACHE_EXTENT_* */
};

/*
 * A piece to write: @len sectors at @start, from @seg_off in @seg, or
 * zeroes or a discard (@flags).
 */
struct pcache_wb_extent {
	u64 start;
	u32 len;
	u32 seg;
	u32 seg_off;
	u32 flags;			/* PCACHE_EXTENT_* */
};

/* A dirty segment in the round's merge: its next record, read and checked. */
struct pcache_wb_source {
	u64 seq;			/* of @rec */
	u32 seg;
	u32 index;			/* of @rec in the segment */
	u32 keys;			/* records in the segment, as the round began */
	struct pcache_replay_cursor cur;	/* past @rec */
	struct pcache_key_record rec;
};

struct pcache_wb_batch {
	struct pcache_wb_rec recs[PCACHE_WB_BATCH_KEYS];
	u32 nr;
	/*
	 * Records the next round may take: halved after a round fails and
	 * doubled after one succeeds, so that a device failing briefly but
	 * often still sees rounds that fit between its failures.
	 */
	u32 max_keys;
	/* The round failed on pmem's side: its data cannot be written back. */
	bool data_bad;
	/* The dirty segments being merged: as many as the quota. */
	struct pcache_wb_source *sources;
	struct pcache_wb_source **heap;
	u32 nr_sources;
	struct pcache_wb_source spare;
	/* The round's records, newest wins: what to write, once. */
	struct pcache_index index;
	struct pcache_wb_extent ext[PCACHE_WB_BATCH_EXTENTS];
	u32 nr_ext;
	struct pcache_key_record page[PAGE_SIZE / PCACHE_KEY_SIZE];
	struct pcache_backing_table table;
	/* Bios in flight, plus one for the submitter. */
	atomic_t inflight;
	wait_queue_head_t wait;
	blk_status_t status;
};

/* Run the work in @delay jiffies (unless sooner already): a round is due. */
static void pcache_wb_queue(struct pcache_backing *backing, unsigned long delay)
{
	if (queue_delayed_work(pcache_wb_wq, &backing->wb_work, delay))
		WRITE_ONCE(backing->wb_due, jiffies + delay);
}

void pcache_wb_kick(struct pcache_backing *backing, bool now)
{
	if (READ_ONCE(backing->wb_stopped))
		return;
	if (now) {
		WRITE_ONCE(backing->wb_due, jiffies);
		mod_delayed_work(pcache_wb_wq, &backing->wb_work, 0);
	} else {
		pcache_wb_queue(backing,
				msecs_to_jiffies(READ_ONCE(backing->wb_delay_ms)));
	}
}

/*
 * Run the work now for reclaim alone: the data stays dirty until the round
 * due (writeback_delay_ms and the dirty marks keep pacing writeback).
 */
static void pcache_wb_kick_reclaim(struct pcache_backing *backing)
{
	if (READ_ONCE(backing->wb_stopped))
		return;
	WRITE_ONCE(backing->reclaim_asked, true);
	mod_delayed_work(pcache_wb_wq, &backing->wb_work, 0);
}

static bool pcache_wb_clean(struct pcache_backing *backing)
{
	return READ_ONCE(backing->clean_seq) == atomic64_read(&backing->seq);
}

/* Segments holding dirty data (or open): the used ones that are not clean. */
static u32 pcache_wb_dirty_segs(struct pcache_backing *backing)
{
	u32 used = READ_ONCE(backing->segs_used);
	u32 clean = READ_ONCE(backing->segs_clean);

	return used > clean ? used - clean : 0;
}

/*
 * A read cache fill found no room beyond the reserve: free the oldest clean
 * segments until twice the reserve is free, so that the cache keeps taking
 * new data once it is full of old clean data.
 */
void pcache_wb_fill_wants_room(struct pcache_backing *backing)
{
	if (READ_ONCE(backing->fill_room_asked))
		return;
	WRITE_ONCE(backing->fill_room_asked, true);
	pcache_wb_kick_reclaim(backing);
}

/* A segment was opened: start a round now if the cache needs one. */
void pcache_wb_seg_opened(struct pcache_backing *backing)
{
	if (pcache_wb_dirty_segs(backing) * 100 >=
	    backing->quota * READ_ONCE(backing->dirty_high_percent))
		pcache_wb_kick(backing, true);
	else if (pcache_backing_room(backing, backing->segs_reserve) <
		 backing->segs_reserve)
		pcache_wb_kick_reclaim(backing);
}

static bool pcache_wb_under_pressure(struct pcache_backing *backing)
{
	u32 dirty = pcache_wb_dirty_segs(backing) * 100;

	if (dirty >= backing->quota * READ_ONCE(backing->dirty_high_percent))
		backing->wb_urgent = true;
	else if (dirty < backing->quota * READ_ONCE(backing->dirty_low_percent))
		backing->wb_urgent = false;
	return backing->wb_urgent || READ_ONCE(backing->draining) ||
	       wq_has_sleeper(&backing->space_wait);
}

/* Record @i of @seg, checked as replay checks it, after the ones before. */
static int pcache_wb_read_record(struct pcache_backing *backing, u32 seg,
				 u32 i, struct pcache_replay_cursor *cur,
				 struct pcache_key_record *rec)
{
	struct pcache_cache *cache = backing->cache;
	const char *why;

	if (copy_mc_to_kernel(rec, pcache_seg_addr(cache, seg,
						   PCACHE_SEG_KEYS_OFFSET +
						   i * PCACHE_KEY_SIZE),
			      sizeof(*rec))) {
		pr_err_ratelimited("cache%d: backing%u: media error in record %u of segment %u: writeback stops there\n",
				   cache->id, backing->id, i, seg);
		return -EIO;
	}
	if (pcache_key_check(rec, cur, &why)) {
		pr_err_ratelimited("cache%d: backing%u: record %u of segment %u changed on pmem (%s): writeback stops there\n",
				   cache->id, backing->id, i, seg, why);
		return -EIO;
	}
	return 0;
}

static void pcache_wb_cursor(struct pcache_backing *backing, u32 seg,
			     struct pcache_replay_cursor *cur)
{
	struct pcache_cache *cache = backing->cache;
	struct pcache_seg_state *state = &cache->segs[seg];

	*cur = (struct pcache_replay_cursor){
		.gen = state->gen,
		.prev_seq = state->clean_prev_seq,
		.data_end = state->clean_data_end,
		.segment_size = cache->segment_size,
		.backing_sectors = backing->sectors,
		.block_mask = pcache_backing_block_mask(backing),
		.data_crc = cache->data_crc,
	};
}

/* @seg belongs to @backing; its state is then the one this owner set up. */
static bool pcache_wb_owns(struct pcache_backing *backing, u32 seg)
{
	/* Pairs with pcache_seg_get(): the new owner's state is reset. */
	return smp_load_acquire(&backing->cache->seg_owner[seg]) ==
	       pcache_space_tag(backing->id);
}

static bool pcache_wb_seg_dirty(struct pcache_backing *backing, u32 seg)
{
	struct pcache_cache *cache = backing->cache;

	return pcache_wb_owns(backing, seg) &&
	       /* Pairs with pcache_log_append(): the record is in place. */
	       cache->segs[seg].clean_keys < smp_load_acquire(&cache->segs[seg].keys);
}

/* Read @src's record at @src->index; its seq orders the merge. */
static int pcache_wb_source_read(struct pcache_backing *backing,
				 struct pcache_wb_source *src)
{
	int ret;

	ret = pcache_wb_read_record(backing, src->seg, src->index, &src->cur,
				    &src->rec);
	src->seq = le64_to_cpu(src->rec.seq);
	return ret;
}

/* Restore the min-heap (by seq) below @i. */
static void pcache_wb_sift_down(struct pcache_wb_source **heap, u32 n, u32 i)
{
	for (;;) {
		u32 l = 2 * i + 1, r = l + 1, min = i;

		if (l < n && heap[l]->seq < heap[min]->seq)
			min = l;
		if (r < n && heap[r]->seq < heap[min]->seq)
			min = r;
		if (min == i)
			return;
		swap(heap[i], heap[min]);
		i = min;
	}
}

/*
 * Gather the records of the round: every record with a seq in
 * (clean_seq, *@target], in seq order, merged from the logs of the dirty
 * segments (each in seq order already).  When they do not all fit,
 * *@target comes down to just below the oldest record left out, so the
 * round is still a prefix of every segment's log.
 */
static int pcache_wb_collect(struct pcache_backing *backing, u64 *target)
{
	struct pcache_cache *cache = backing->cache;
	struct pcache_wb_batch *wb = backing->wb;
	struct pcache_wb_source **heap = wb->heap, *src;
	u32 seg, n = 0, i;
	int ret;

	wb->nr = 0;
	for (seg = 0; seg < cache->segment_count; seg++) {
		if (!pcache_wb_seg_dirty(backing, seg))
			continue;
		/*
		 * More dirty segments than the quota (only a crafted image
		 * does that): the round stops below the first record of
		 * those left out.
		 */
		src = n < wb->nr_sources ? &wb->sources[n] : &wb->spare;
		src->seg = seg;
		src->index = cache->segs[seg].clean_keys;
		/* Pairs with pcache_log_append(): records up to keys are in place. */
		src->keys = smp_load_acquire(&cache->segs[seg].keys);
		pcache_wb_cursor(backing, seg, &src->cur);
		ret = pcache_wb_source_read(backing, src);
		if (ret)
			return ret;
		if (src == &wb->spare)
			*target = min(*target, src->seq - 1);
		else
			heap[n++] = src;
	}
	for (i = n / 2; i-- > 0;)
		pcache_wb_sift_down(heap, n, i);

	while (n && heap[0]->seq <= *target) {
		src = heap[0];
		if (wb->nr == wb->max_keys) {
			*target = src->seq - 1;
			break;
		}
		wb->recs[wb->nr++] = (struct pcache_wb_rec){
			.seq = src->seq,
			.start = le64_to_cpu(src->rec.start),
			.len = le32_to_cpu(src->rec.len),
			.seg = src->seg,
			.data_off = le32_to_cpu(src->rec.data_off),
			.data_end = src->cur.data_end,
			.index = src->index,
			.flags = pcache_extent_flags(le32_to_cpu(src->rec.flags)) |
				 pcache_extent_rec(src->index),
		};
		if (++src->index == src->keys) {
			heap[0] = heap[--n];
		} else if (pcache_wb_source_read(backing, src)) {
			/*
			 * The segment's next record is damaged: the round
			 * ends at the one just taken, so that what came
			 * before the damage still goes down.
			 */
			*target = wb->recs[wb->nr - 1].seq;
			return 0;
		}
		pcache_wb_sift_down(heap, n, 0);
	}
	return 0;
}

static int pcache_wb_note_extent(void *data, u64 start, u32 len,
				 const struct pcache_extent *hit, u32 seg_off)
{
	struct pcache_wb_batch *wb = data;

	if (!hit)
		return 0;
	if (WARN_ON_ONCE(wb->nr_ext == PCACHE_WB_BATCH_EXTENTS))
		return -ENOSPC;
	wb->ext[wb->nr_ext++] = (struct pcache_wb_extent){
		.start = start, .len = len, .seg = hit->seg, .seg_off = seg_off,
		.flags = hit->flags,
	};
	return 0;
}

/* Under the partition lock: note the live pieces of the record passed over. */
static int pcache_wb_note_live(void *data, u64 start, u32 len,
			       const struct pcache_extent *hit, u32 seg_off)
{
	struct pcache_wb_batch *wb = data;
	const struct pcache_wb_rec *rec = &wb->recs[0];

	if (!hit || hit->seg != rec->seg ||
	    pcache_extent_rec_index(hit->flags) != rec->index)
		return 0;
	return pcache_wb_note_extent(data, start, len, hit, seg_off);
}

/* The round's record @index of @seg: its place in the round (seq order). */
static u32 pcache_wb_rec_pos(const struct pcache_wb_batch *wb, u32 seg,
			     u32 index)
{
	u32 i;

	for (i = 0; i < wb->nr; i++)
		if (wb->recs[i].seg == seg && wb->recs[i].index == index)
			return i;
	/* The extents come from the round's records: as if the first were bad. */
	WARN_ON_ONCE(1);
	return 0;
}

/*
 * Of the extents to write, find those whose data cannot be written back:
 * their record fails its data CRC, or pmem knows of bad blocks in them.
 * Nothing of such a record is written over the backing device's older
 * data: reads of it fail too.  Returns the place in the round of the
 * oldest record holding one, or wb->nr if all are good.
 */
static u32 pcache_wb_find_bad(struct pcache_backing *backing)
{
	struct pcache_cache *cache = backing->cache;
	struct pcache_wb_batch *wb = backing->wb;
	u32 i, seg = U32_MAX, rec = 0, bad = wb->nr;
	bool rec_bad = false;

	for (i = 0; i < wb->nr_ext; i++) {
		const struct pcache_wb_extent *ext = &wb->ext[i];
		u32 index = pcache_extent_rec_index(ext->flags);

		if (ext->flags & PCACHE_EXTENT_ZEROES)
			continue;
		if (ext->seg != seg || index != rec) {
			seg = ext->seg;
			rec = index;
			rec_bad = cache->data_crc &&
				  pcache_data_check(backing, seg, rec);
		}
		if (rec_bad ||
		    pcache_pmem_known_bad(cache, pcache_seg_offset(cache, seg) +
					  ext->seg_off,
					  (u64)ext->len << SECTOR_SHIFT,
					  NULL, NULL))
			bad = min(bad, pcache_wb_rec_pos(wb, seg, rec));
	}
	return bad;
}

/*
 * Index the round's records (newest wins) and list what to write.  Its
 * extents never come from the mempool's reserve; emptying the index again
 * splits no extent, so it takes none from there either.
 */
static int pcache_wb_plan_round(struct pcache_backing *backing)
{
	struct pcache_wb_batch *wb = backing->wb;
	u64 sectors = backing->sectors, pos;
	struct pcache_extent_pool pool;
	gfp_t gfp = GFP_NOIO;
	int ret = 0;
	u32 i;

	pcache_extent_pool_init(&pool);
	for (i = 0; i < wb->nr && !ret; i++) {
		struct pcache_key key = {
			.start = wb->recs[i].start,
			.len = wb->recs[i].len,
			.seg = wb->recs[i].seg,
			.seg_off = wb->recs[i].data_off,
			.flags = wb->recs[i].flags,
			.seq = wb->recs[i].seq,
		};

		/* Clean records (read cache fills): the backing has them. */
		if (!(key.flags & PCACHE_EXTENT_DIRTY))
			continue;
		ret = pcache_index_insert_alloc(&wb->index, &key, &pool,
						pcache_extent_alloc_noreserve,
						NULL, NULL);
	}
	wb->nr_ext = 0;
	for (pos = 0; pos < sectors && !ret; pos += PCACHE_WB_CHUNK)
		ret = pcache_index_lookup(&wb->index, pos,
					  min(PCACHE_WB_CHUNK, sectors - pos),
					  pcache_wb_note_extent, wb);
	/* Empty the round's index for the next one. */
	for (pos = 0; pos < sectors; pos += PCACHE_WB_CHUNK)
		pcache_index_remove_alloc(&wb->index, pos,
					  min(PCACHE_WB_CHUNK, sectors - pos),
					  NULL, NULL, &pool, pcache_extent_alloc,
					  &gfp, NULL);
	pcache_extent_pool_trim(&pool, 0, pcache_extent_free, NULL);
	return ret;
}

/*
 * The round's first record holds data that cannot be written back.  The
 * pieces of it that the live index still reads from it are the newest data
 * of their ranges: while any of those is bad, the round fails (reads of it
 * fail too) and is retried.  Once newer writes replaced them, wherever in
 * the log those are, the record is passed over: a round of it alone writes
 * its good live pieces and nothing of the rest.  Until the newer writes go
 * down too, the backing device holds older data than the record's for the
 * ranges passed over: the best there is without the record's data.
 */
static int pcache_wb_plan_past(struct pcache_backing *backing, u64 *target)
{
	struct pcache_cache *cache = backing->cache;
	struct pcache_wb_batch *wb = backing->wb;
	const struct pcache_wb_rec *rec = &wb->recs[0];
	int ret;

	wb->nr = 1;
	*target = rec->seq;
	/*
	 * The record's own key may not be in the index yet: none of its
	 * pieces would be found and it would be passed over as replaced.
	 * Landing after clean_seq passed it, the key would only cut
	 * (pcache_key_written_back()), and its range would read the backing
	 * device's older data instead of failing.  Look only once no key of
	 * the segment is on its way: read before the lookup, this pairs with
	 * pcache_log_index().
	 */
	if (atomic_read_acquire(&cache->segs[rec->seg].inserting)) {
		wb->data_bad = true;
		return -EAGAIN;
	}
	wb->nr_ext = 0;
	ret = pcache_index_lookup(&backing->index, rec->start, rec->len,
				  pcache_wb_note_live, wb);
	if (ret)
		return ret;
	if (!pcache_wb_find_bad(backing)) {
		pr_err_ratelimited("cache%d: backing%u: segment %u record %u (sectors %llu+%u) cannot be read and is still the newest data there: writeback waits for a newer write of it, or a detach with force\n",
				   cache->id, backing->id, rec->seg, rec->index,
				   rec->start, rec->len);
		wb->data_bad = true;
		return -EBADMSG;
	}
	pr_warn("cache%d: backing%u: segment %u record %u (sectors %llu+%u) cannot be read; newer writes replaced what is still read of it: passing over it\n",
		cache->id, backing->id, rec->seg, rec->index, rec->start,
		rec->len);
	return 0;
}

/*
 * Plan the round: what to write, once, newest data first.  A record whose
 * data cannot be written back ends the round just before it, so that the
 * records before it still go down; when it is the first, it is passed over
 * once newer writes replaced it (pcache_wb_plan_past()).  @target comes
 * down with the round.
 */
static int pcache_wb_plan(struct pcache_backing *backing, u64 *target)
{
	struct pcache_wb_batch *wb = backing->wb;
	u32 bad;
	int ret;

	for (;;) {
		ret = pcache_wb_plan_round(backing);
		if (ret)
			return ret;
		bad = pcache_wb_find_bad(backing);
		if (bad == wb->nr)
			return 0;
		if (!bad)
			return pcache_wb_plan_past(backing, target);
		wb->nr = bad;
		*target = wb->recs[bad].seq - 1;
	}
}

/* A bio over pmem's own pages. */
static void pcache_wb_endio_pmem(struct bio *bio)
{
	struct pcache_wb_batch *wb = bio->bi_private;
	unsigned long flags;

	if (bio->bi_status)
		WRITE_ONCE(wb->status, bio->bi_status);
	bio_put(bio);
	/* Under the wait lock: the waiter may go on once it sees 0. */
	spin_lock_irqsave(&wb->wait.lock, flags);
	atomic_dec(&wb->inflight);
	wake_up_locked(&wb->wait);
	spin_unlock_irqrestore(&wb->wait.lock, flags);
}

/* A bio over pages of our own, holding a copy. */
static void pcache_wb_endio(struct bio *bio)
{
	struct bvec_iter_all iter;
	struct bio_vec *bv;

	bio_for_each_segment_all(bv, bio, iter)
		__free_page(bv->bv_page);
	pcache_wb_endio_pmem(bio);
}

/*
 * Bios over pmem's pages at byte @off of the device: an extent that does
 * not start on a page boundary spans one page more than its size, so a
 * 1 MiB one takes two bios.
 */
static int pcache_wb_write_pmem_pages(struct pcache_backing *backing,
				      const struct pcache_wb_extent *ext,
				      u64 off)
{
	struct pcache_cache *cache = backing->cache;
	struct pcache_wb_batch *wb = backing->wb;
	u32 bytes = ext->len << SECTOR_SHIFT, done = 0;
	struct bio *bio = NULL;

	while (done < bytes) {
		u32 in_page = offset_in_page(off + done);
		u32 n = min_t(u32, PAGE_SIZE - in_page, bytes - done);
		struct page *page =
			pfn_to_page(cache->pfn + ((off + done) >> PAGE_SHIFT));

		if (!bio) {
			bio = bio_alloc_bioset(backing->bdev.bdev,
					       min_t(u32, BIO_MAX_VECS,
						     DIV_ROUND_UP(in_page + bytes - done,
								  PAGE_SIZE)),
					       REQ_OP_WRITE, GFP_NOIO,
					       &pcache_bio_set);
			bio->bi_iter.bi_sector = ext->start + (done >> SECTOR_SHIFT);
			bio->bi_private = wb;
			bio->bi_end_io = pcache_wb_endio_pmem;
		}
		__bio_add_page(bio, page, n, in_page);
		done += n;
		if (bio->bi_vcnt == bio->bi_max_vecs || done == bytes) {
			atomic_inc(&wb->inflight);
			submit_bio(bio);
			bio = NULL;
		}
	}
	return 0;
}

/*
 * Zeroes, or a discard where the backing device takes discards (where it
 * does not, a discarded range keeps what it had: a discard promises no
 * content).  Synchronous: rare, and the round is a worker of its own.
 */
static int pcache_wb_write_zeroes(struct pcache_backing *backing,
				  const struct pcache_wb_extent *ext)
{
	struct block_device *bdev = backing->bdev.bdev;

	/* Zeroes stay allocated: the log does not say whether unmapping was allowed. */
	if (!(ext->flags & PCACHE_EXTENT_DISCARD))
		return blkdev_issue_zeroout(bdev, ext->start, ext->len,
					    GFP_NOIO, BLKDEV_ZERO_NOUNMAP);
	if (!bdev_max_discard_sectors(bdev))
		return 0;
	return blkdev_issue_discard(bdev, ext->start, ext->len, GFP_NOIO);
}

/*
 * Write one extent to the backing device.  The bio carries pmem's own
 * pages when they have struct pages and hold no known bad block: no copy.
 * Otherwise the data goes through pages of our own, filled with
 * copy_mc_to_kernel(), which turns a media error into an error of the
 * round instead of a machine check in the backing device's driver.
 */
static int pcache_wb_write_extent(struct pcache_backing *backing,
				  const struct pcache_wb_extent *ext)
{
	struct pcache_cache *cache = backing->cache;
	struct pcache_wb_batch *wb = backing->wb;
	const void *src = pcache_seg_addr(cache, ext->seg, ext->seg_off);
	u64 off = src - cache->kaddr;
	u32 bytes = ext->len << SECTOR_SHIFT, done = 0;
	blk_status_t status = BLK_STS_OK;
	struct bio *bio;
	bool direct;

	if (ext->flags & PCACHE_EXTENT_ZEROES)
		return pcache_wb_write_zeroes(backing, ext);
	/*
	 * Known bad blocks: their data is not written over the backing
	 * device's, as a read hit of them fails; the round fails and the
	 * data stays dirty until a newer write replaces it.
	 */
	if (pcache_pmem_known_bad(cache, off, bytes, NULL, NULL)) {
		pr_err_ratelimited("cache%d: backing%u: segment %u holds known bad blocks: not written back\n",
				   cache->id, backing->id, ext->seg);
		wb->data_bad = true;
		return -EIO;
	}
	direct = cache->has_pages;
	if (direct)
		return pcache_wb_write_pmem_pages(backing, ext, off);
	bio = bio_alloc_bioset(backing->bdev.bdev, DIV_ROUND_UP(bytes, PAGE_SIZE),
			       REQ_OP_WRITE, GFP_NOIO, &pcache_bio_set);
	bio->bi_iter.bi_sector = ext->start;
	bio->bi_private = wb;
	bio->bi_end_io = pcache_wb_endio;
	while (done < bytes) {
		u32 n = min_t(u32, PAGE_SIZE, bytes - done);
		struct page *page = alloc_page(GFP_NOIO);

		if (!page) {
			status = BLK_STS_RESOURCE;
			break;
		}
		if (copy_mc_to_kernel(page_address(page), src + done, n)) {
			__free_page(page);
			wb->data_bad = true;
			status = BLK_STS_MEDIUM;
			break;
		}
		__bio_add_page(bio, page, n, 0);
		done += n;
	}
	atomic_inc(&wb->inflight);
	if (status) {
		bio->bi_status = status;
		bio_endio(bio);
		return -EIO;
	}
	submit_bio(bio);
	return 0;
}

static int pcache_wb_write(struct pcache_backing *backing, u64 *bytes)
{
	struct pcache_wb_batch *wb = backing->wb;
	int ret = 0;
	u32 i;

	atomic_set(&wb->inflight, 1);
	wb->status = BLK_STS_OK;
	*bytes = 0;
	for (i = 0; i < wb->nr_ext && !ret; i++) {
		wait_event(wb->wait,
			   atomic_read(&wb->inflight) <= PCACHE_WB_INFLIGHT);
		ret = pcache_wb_write_extent(backing, &wb->ext[i]);
		if (!(wb->ext[i].flags & PCACHE_EXTENT_ZEROES))
			*bytes += (u64)wb->ext[i].len << SECTOR_SHIFT;
	}
	atomic_dec(&wb->inflight);
	wait_event(wb->wait, !atomic_read(&wb->inflight));
	/* The last completion has left the wait lock. */
	spin_lock_irq(&wb->wait.lock);
	spin_unlock_irq(&wb->wait.lock);
	if (!ret && wb->status)
		ret = blk_status_to_errno(wb->status);
	if (!ret)
		ret = blkdev_issue_flush(backing->bdev.bdev);
	return ret;
}

/* The round is on the backing device and flushed: say so on pmem. */
static void pcache_wb_commit(struct pcache_backing *backing, u64 target)
{
	struct pcache_cache *cache = backing->cache;
	struct pcache_wb_batch *wb = backing->wb;
	u64 sectors = 0;
	u32 i;

	mutex_lock(&cache->lock);
	memcpy(&wb->table, cache->table, sizeof(wb->table));
	wb->table.entries[backing->id].clean_seq = cpu_to_le64(target);
	pcache_cache_write_table(cache, &wb->table);
	mutex_unlock(&cache->lock);
	WRITE_ONCE(backing->clean_seq, target);
	/*
	 * Pairs with the seq increment in pcache_log_append(): either a
	 * write taking clean_seq + 1 sees the new clean_seq and starts the
	 * timer, or pcache_wb_work() sees its seq and comes back.
	 */
	smp_mb();

	for (i = 0; i < wb->nr; i++) {
		const struct pcache_wb_rec *rec = &wb->recs[i];
		struct pcache_seg_state *state = &cache->segs[rec->seg];

		state->clean_keys = rec->index + 1;
		state->clean_prev_seq = rec->seq;
		state->clean_data_end = rec->data_end;
		if (rec->flags & PCACHE_EXTENT_DIRTY)
			sectors += rec->len;
	}
	percpu_counter_sub(&backing->dirty_sectors, sectors);
}

static bool pcache_wb_match_seg(const struct pcache_extent *ext, void *ctx)
{
	return ext->seg == *(u32 *)ctx;
}

/* Drop every extent of the index that points into @seg. */
static void pcache_wb_unindex_seg(struct pcache_backing *backing, u32 seg)
{
	struct pcache_cache *cache = backing->cache;
	struct pcache_wb_batch *wb = backing->wb;
	u32 keys = cache->segs[seg].keys, batch = ARRAY_SIZE(wb->page), i;
	u64 sectors = backing->sectors, pos;
	struct pcache_extent_pool pool;
	bool whole = false;

	pcache_extent_pool_init(&pool);
	for (i = 0; i < keys; i++) {
		const struct pcache_key_record *rec = &wb->page[i % batch];
		u64 start;
		u32 len;

		if (i % batch == 0 &&
		    copy_mc_to_kernel(wb->page, pcache_seg_addr(cache, seg,
								PCACHE_SEG_KEYS_OFFSET +
								i * PCACHE_KEY_SIZE),
				      PAGE_SIZE)) {
			whole = true;
			break;
		}
		start = le64_to_cpu(rec->start);
		len = le32_to_cpu(rec->len);
		/*
		 * Checked when written back, but pmem may have changed since
		 * without a machine check: a record that lost its seal would
		 * name other sectors, and leave the segment's in the index.
		 */
		if (le32_to_cpu(rec->magic) != PCACHE_KEY_MAGIC ||
		    le32_to_cpu(rec->crc) != pcache_meta_crc(rec, sizeof(*rec)) ||
		    le64_to_cpu(rec->gen) != cache->segs[seg].gen ||
		    !len || start >= sectors || len > sectors - start) {
			whole = true;
			break;
		}
		pcache_index_drop(&backing->index, start, len,
				  pcache_wb_match_seg, &seg, &pool, NULL);
	}
	/* The records cannot be read back: look at every extent instead. */
	for (pos = 0; whole && pos < sectors; pos += PCACHE_WB_CHUNK)
		pcache_index_drop(&backing->index, pos,
				  min(PCACHE_WB_CHUNK, sectors - pos),
				  pcache_wb_match_seg, &seg, &pool, NULL);
	pcache_extent_pool_trim(&pool, 0, pcache_extent_free, NULL);
}

/* A segment of @backing's (pcache_wb_owns()) that is clean. */
static bool pcache_wb_reclaimable(struct pcache_backing *backing, u32 seg)
{
	struct pcache_seg_state *state = &backing->cache->segs[seg];

	/* Pairs with pcache_head_close(): the last append is counted. */
	if (smp_load_acquire(&state->open) ||
	    state->clean_keys != READ_ONCE(state->keys))
		return false;
	/* Pairs with pcache_cache_write(): counted keys are in the index. */
	return !atomic_read_acquire(&state->inserting);
}

static int pcache_wb_cmp_seq(const void *a, const void *b)
{
	const struct pcache_wb_source *x = *(struct pcache_wb_source * const *)a;
	const struct pcache_wb_source *y = *(struct pcache_wb_source * const *)b;

	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/*
 * Count the clean segments (closed, all written back, and whose keys are
 * all in the index: a write inserts its key after it appended the record,
 * so a segment with a key still on its way is left for the next round),
 * and free the oldest of them if the backing is short of free segments.
 * The merge's sources are free again by now: they hold the list.
 */
static void pcache_wb_reclaim(struct pcache_backing *backing)
{
	struct pcache_cache *cache = backing->cache;
	struct pcache_wb_batch *wb = backing->wb;
	u32 data_off = pcache_seg_data_offset(cache->segment_size);
	u32 reserve = backing->segs_reserve;
	u32 seg, nr = 0, free, want = 0, freed;
	u64 clean_bytes = 0;

	for (seg = 0; seg < cache->segment_count; seg++) {
		struct pcache_seg_state *state = &cache->segs[seg];
		struct pcache_wb_source *src = &wb->sources[nr];

		if (!pcache_wb_owns(backing, seg))
			continue;
		/* Pairs with pcache_log_append(): clean_data_end is set. */
		if (smp_load_acquire(&state->keys))
			clean_bytes += state->clean_data_end - data_off;
		if (nr == wb->nr_sources || !pcache_wb_reclaimable(backing, seg))
			continue;
		src->seg = seg;
		/* Records are in seq order: the last one is the newest. */
		src->seq = state->clean_prev_seq;
		wb->heap[nr++] = src;
	}

	free = pcache_backing_room(backing, 2 * reserve);
	if (free < reserve || wq_has_sleeper(&backing->space_wait) ||
	    (READ_ONCE(backing->fill_room_asked) && free < 2 * reserve))
		/* Twice the reserve free, or one segment for a waiting write. */
		want = min(nr, free < 2 * reserve ? 2 * reserve - free : 1);
	if (want)
		sort(wb->heap, nr, sizeof(*wb->heap), pcache_wb_cmp_seq, NULL);
	for (freed = 0; freed < want; freed++) {
		seg = wb->heap[freed]->seg;
		atomic_inc(&backing->reclaim_gen);
		/* Before the index changes: see pcache_fill_insert(). */
		smp_mb__after_atomic();
		pcache_wb_unindex_seg(backing, seg);
		/* Before the segment is free: a new owner resets its state. */
		clean_bytes -= cache->segs[seg].clean_data_end - data_off;
		pcache_seg_put(backing, seg);
	}
	WRITE_ONCE(backing->segs_clean, nr - freed);
	WRITE_ONCE(backing->clean_bytes, clean_bytes);
	/*
	 * With nothing clean to free yet, the ask stands for the rounds to
	 * come, rather than have every miss kick the work again.
	 */
	if (freed || free >= 2 * reserve)
		WRITE_ONCE(backing->fill_room_asked, false);
	if (!freed)
		return;
	atomic64_add(freed, &backing->segs_reclaimed);
	wake_up_all(&backing->space_wait);
}

static void pcache_wb_size_next(struct pcache_wb_batch *wb, int ret)
{
	/*
	 * A bad record still read (pcache_wb_plan_past()), or a media error
	 * copying data, fails the round whatever its length: fewer records
	 * would not help.  Take all there is.
	 */
	if (ret && wb->data_bad)
		wb->max_keys = PCACHE_WB_BATCH_KEYS;
	else if (ret)
		wb->max_keys = max(wb->max_keys / 2, 1U);
	else
		wb->max_keys = min(wb->max_keys * 2, (u32)PCACHE_WB_BATCH_KEYS);
}

/*
 * One round: write back what is in the log up to now (or as much as fits),
 * then reclaim.  With writes waiting for room, the heads' open segments are
 * closed first, so that everything written back can be reclaimed.
 */
static int pcache_wb_round(struct pcache_backing *backing)
{
	bool close = wq_has_sleeper(&backing->space_wait);
	u64 target, bytes;
	int cpu, ret;

	target = atomic64_read(&backing->seq);
	for_each_possible_cpu(cpu) {
		struct pcache_head *head = per_cpu_ptr(backing->heads, cpu);

		spin_lock(&head->lock);
		if (close)
			pcache_head_close(backing, head);
		spin_unlock(&head->lock);
	}
	ret = 0;
	backing->wb->data_bad = false;
	if (target > backing->clean_seq) {
		ret = pcache_wb_collect(backing, &target);
		if (!ret && backing->wb->nr) {
			ret = pcache_wb_plan(backing, &target) ?:
			      pcache_wb_write(backing, &bytes);
			if (!ret) {
				pcache_wb_commit(backing, target);
				atomic64_add(bytes, &backing->written_back);
			}
		}
		pcache_wb_size_next(backing->wb, ret);
	}
	/*
	 * Even when the round failed: segments written back by earlier
	 * rounds still make room, and writes waiting for it (while the
	 * backing device fails) must not time out with it there.
	 */
	pcache_wb_reclaim(backing);
	return ret;
}

static void pcache_wb_work(struct work_struct *work)
{
	struct pcache_backing *backing =
		container_of(to_delayed_work(work), struct pcache_backing, wb_work);
	unsigned int noio = memalloc_noio_save();
	bool reclaim_only = READ_ONCE(backing->reclaim_asked);
	unsigned long delay, due;
	int ret;

	WRITE_ONCE(backing->reclaim_asked, false);
	due = READ_ONCE(backing->wb_due);
	/* A failing backing device is retried when due, not at every ask. */
	if (reclaim_only && (!pcache_wb_under_pressure(backing) ||
			     READ_ONCE(backing->wb_failing_since)) &&
	    time_before(jiffies, due)) {
		pcache_wb_reclaim(backing);
		memalloc_noio_restore(noio);
		/* The round that was due is still due, no later. */
		delay = time_before(jiffies, due) ? due - jiffies : 0;
		if (!READ_ONCE(backing->wb_stopped))
			queue_delayed_work(pcache_wb_wq, &backing->wb_work,
					   delay);
		return;
	}
	ret = pcache_wb_round(backing);
	memalloc_noio_restore(noio);
	wake_up_all(&backing->clean_wait);
	if (!ret && READ_ONCE(backing->wb_failing_since)) {
		pr_info("cache%d: backing%u: writeback works again\n",
			backing->cache->id, backing->id);
		WRITE_ONCE(backing->wb_failing_since, 0);
	}
	if (ret) {
		atomic64_inc(&backing->wb_errors);
		if (!READ_ONCE(backing->wb_failing_since))
			WRITE_ONCE(backing->wb_failing_since, jiffies | 1);
		/* Writes waiting for room may have waited long enough. */
		wake_up_all(&backing->space_wait);
		pr_err_ratelimited("cache%d: backing%u: writeback failed: %d; the data stays in pmem, retrying\n",
				   backing->cache->id, backing->id, ret);
		delay = msecs_to_jiffies(PCACHE_WB_RETRY_MS);
	} else if (!pcache_wb_clean(backing) ||
		   wq_has_sleeper(&backing->space_wait)) {
		delay = pcache_wb_under_pressure(backing) ? 0 :
			msecs_to_jiffies(READ_ONCE(backing->wb_delay_ms));
	} else {
		return;
	}
	if (!READ_ONCE(backing->wb_stopped))
		pcache_wb_queue(backing, delay);
}

/*
 * @backing is below its quota and finds no free segment: ask every other
 * attached backing device of the cache to reclaim.  With the table lock
 * only if it is free: a control command may hold it for long, and the
 * waiter asks again.
 */
static void pcache_wb_starved(struct pcache_backing *backing)
{
	struct pcache_cache *cache = backing->cache;
	struct pcache_backing *other;
	u32 id;

	pr_warn_ratelimited("cache%d: backing%u: below its quota, no good segment is free (known bad blocks): asking the other backing devices to reclaim\n",
			    cache->id, backing->id);
	if (!mutex_trylock(&cache->lock))
		return;
	for (id = 0; id < PCACHE_MAX_BACKINGS; id++) {
		other = cache->backings[id];
		if (other && other != backing &&
		    other->state == PCACHE_BACKING_ATTACHED)
			pcache_wb_kick_reclaim(other);
	}
	mutex_unlock(&cache->lock);
}

/*
 * A write found no segment: wait for reclaim.  Only when writeback has been
 * failing for failing_timeout_ms does the write fail (-EIO), rather than
 * hang for as long as the backing device is dead.
 */
int pcache_wb_wait_for_room(struct pcache_backing *backing)
{
	unsigned long since = 0, deadline;
	DEFINE_WAIT(wait);
	int ret = 0;
	long left;

	atomic64_inc(&backing->waits_for_space);
	for (;;) {
		prepare_to_wait(&backing->space_wait, &wait, TASK_UNINTERRUPTIBLE);
		if (pcache_backing_room(backing, 1))
			break;
		if (pcache_pmem_gone(backing->cache)) {
			ret = -EIO;
			break;
		}
		/*
		 * Below its quota, yet no segment: known bad blocks left fewer
		 * than the quotas reserve, and other backing devices hold the
		 * rest.  Their reclaim frees what they hold clean; asked here,
		 * and again every second, as their reclaim wakes only theirs.
		 */
		since = READ_ONCE(backing->wb_failing_since);
		deadline = since + msecs_to_jiffies(READ_ONCE(backing->failing_timeout_ms));
		if (READ_ONCE(backing->segs_used) < backing->quota) {
			/*
			 * Not for ever either: with its own device failing
			 * and nothing of its own clean, only the others'
			 * reclaim could make room.
			 */
			if (since && !READ_ONCE(backing->segs_clean) &&
			    time_after_eq(jiffies, deadline)) {
				ret = -EIO;
				break;
			}
			if (!since)
				pcache_wb_kick(backing, true);
			pcache_wb_starved(backing);
			schedule_timeout(HZ);
			continue;
		}
		/*
		 * A round that fails wakes us to start the clock; the work
		 * retries on its own then, kicking it would only hammer a
		 * dead device.
		 */
		/*
		 * Segments written back before the failure make room without
		 * the backing device: the timeout is for waiting on it, not
		 * on them.  Reclaim frees one at least for a waiter.
		 */
		if (since && READ_ONCE(backing->segs_clean)) {
			pcache_wb_kick_reclaim(backing);
			schedule_timeout(HZ);
			continue;
		}
		if (since) {
			/* One read of jiffies: a tick between two would go negative. */
			left = (long)(deadline - jiffies);
			if (left <= 0) {
				ret = -EIO;
				break;
			}
			schedule_timeout(left);
			continue;
		}
		/* After joining the queue: the round must see a waiter. */
		pcache_wb_kick(backing, true);
		schedule();
	}
	finish_wait(&backing->space_wait, &wait);
	if (ret)
		pr_err_ratelimited("cache%d: backing%u: a write found no room: writeback has failed for %u ms; failing it\n",
				   backing->cache->id, backing->id,
				   jiffies_to_msecs(jiffies - since));
	return ret;
}

/*
 * Write everything back, for a detach: the disk takes no I/O any more.
 * Interrupted by a signal, it returns -EINTR and the cache stays as it is.
 */
int pcache_wb_drain(struct pcache_backing *backing, u64 most)
{
	int ret;

	WRITE_ONCE(backing->draining, true);
	pcache_wb_kick(backing, true);
	ret = wait_event_interruptible(backing->clean_wait,
				       pcache_wb_clean(backing) ||
				       (most && pcache_dirty_bytes(backing) <= most) ||
				       pcache_pmem_gone(backing->cache));
	WRITE_ONCE(backing->draining, false);
	if (!ret && pcache_pmem_gone(backing->cache) && !pcache_wb_clean(backing))
		ret = -EIO;
	/*
	 * -ERESTARTSYS: a signal whose handler asks for restarts (a shell's
	 * SIGCHLD) restarts the command; others return EINTR.
	 */
	return ret;
}

/* No round runs after this returns, until pcache_wb_start(). */
void pcache_wb_stop(struct pcache_backing *backing)
{
	WRITE_ONCE(backing->wb_stopped, true);
	cancel_delayed_work_sync(&backing->wb_work);
}

/* The disk is up: write back what replay found, and what comes. */
void pcache_wb_start(struct pcache_backing *backing)
{
	if (pcache_pmem_gone(backing->cache))
		return;
	WRITE_ONCE(backing->wb_stopped, false);
	if (!pcache_wb_clean(backing))
		pcache_wb_kick(backing, false);
}

/*
 * For the life of the object, attached or not: the tunables' sysfs files
 * wake the waiters whatever the state (a missing backing has no waiter).
 */
void pcache_wb_waitqueues_init(struct pcache_backing *backing)
{
	init_waitqueue_head(&backing->space_wait);
	init_waitqueue_head(&backing->clean_wait);
}

int pcache_wb_backing_init(struct pcache_backing *backing)
{
	struct pcache_wb_batch *wb;
	int ret;

	wb = kvzalloc(sizeof(*wb), GFP_KERNEL);
	if (!wb)
		return -ENOMEM;
	/* One partition: only the work uses it. */
	ret = pcache_index_init(&wb->index, backing->sectors,
				PCACHE_INDEX_PART_SHIFT_MAX);
	if (ret)
		goto out_free;
	wb->nr_sources = backing->quota;
	/* Free segments for the heads to open, whatever the rounds do. */
	backing->segs_reserve = min(max(backing->quota / 16,
					2 * num_possible_cpus()),
				    backing->quota / 2);
	backing->segs_clean = 0;
	backing->clean_bytes = 0;
	wb->sources = kvcalloc(wb->nr_sources, sizeof(*wb->sources), GFP_KERNEL);
	wb->heap = kvcalloc(wb->nr_sources, sizeof(*wb->heap), GFP_KERNEL);
	if (!wb->sources || !wb->heap) {
		ret = -ENOMEM;
		goto out_index;
	}
	init_waitqueue_head(&wb->wait);
	wb->max_keys = PCACHE_WB_BATCH_KEYS;
	backing->wb = wb;
	INIT_DELAYED_WORK(&backing->wb_work, pcache_wb_work);
	backing->wb_stopped = true;
	backing->draining = false;
	backing->wb_urgent = false;
	backing->reclaim_asked = false;
	backing->fill_room_asked = false;
	backing->wb_due = jiffies;
	backing->wb_failing_since = 0;
	atomic64_set(&backing->written_back, 0);
	atomic64_set(&backing->wb_errors, 0);
	atomic64_set(&backing->data_crc_errors, 0);
	atomic64_set(&backing->segs_reclaimed, 0);
	atomic64_set(&backing->waits_for_space, 0);
	percpu_counter_set(&backing->dirty_sectors, 0);
	return 0;

out_index:
	kvfree(wb->heap);
	kvfree(wb->sources);
	pcache_index_exit(&wb->index, pcache_extent_free, NULL);
out_free:
	kvfree(wb);
	return ret;
}

void pcache_wb_backing_exit(struct pcache_backing *backing)
{
	if (!backing->wb)
		return;
	pcache_wb_stop(backing);
	pcache_index_exit(&backing->wb->index, pcache_extent_free, NULL);
	kvfree(backing->wb->heap);
	kvfree(backing->wb->sources);
	kvfree(backing->wb);
	backing->wb = NULL;
}

int pcache_wb_init(void)
{
	/* Writes waiting for room wait for this: it must run under pressure. */
	pcache_wb_wq = alloc_workqueue("pcache_wb", WQ_MEM_RECLAIM | WQ_UNBOUND, 0);
	return pcache_wb_wq ? 0 : -ENOMEM;
}

void pcache_wb_exit(void)
{
	destroy_workqueue(pcache_wb_wq);
}

/* Statistics and tunables: backingM/{dirty_bytes,...}, one value each. */
#define PCACHE_WB_STAT_ATTR(name, expr)						\
static ssize_t name##_show(struct device *dev, struct device_attribute *attr,	\
			   char *buf)						\
{										\
	struct pcache_backing *backing = to_pcache_backing(dev);		\
										\
	return sysfs_emit(buf, "%llu\n", (u64)(expr));				\
}										\
static DEVICE_ATTR_RO(name)

PCACHE_WB_STAT_ATTR(dirty_bytes, pcache_dirty_bytes(backing));
PCACHE_WB_STAT_ATTR(clean_bytes, READ_ONCE(backing->clean_bytes));
PCACHE_WB_STAT_ATTR(written_back_bytes, atomic64_read(&backing->written_back));
PCACHE_WB_STAT_ATTR(writeback_errors, atomic64_read(&backing->wb_errors));
PCACHE_WB_STAT_ATTR(data_crc_errors, atomic64_read(&backing->data_crc_errors));
PCACHE_WB_STAT_ATTR(segments_reclaimed, atomic64_read(&backing->segs_reclaimed));
PCACHE_WB_STAT_ATTR(waits_for_space, atomic64_read(&backing->waits_for_space));

/*
 * Nothing waits for the round that is due: no dirty data, no reclaim asked
 * for, no write waiting for room, no drain, no failed round to retry.  The
 * round is then only for clean records, read cache fills such as those of
 * the partition scan at attach.
 */
static bool pcache_wb_idle(struct pcache_backing *backing)
{
	return !READ_ONCE(backing->reclaim_asked) &&
	       !READ_ONCE(backing->wb_urgent) &&
	       !READ_ONCE(backing->draining) &&
	       !READ_ONCE(backing->wb_failing_since) &&
	       !wq_has_sleeper(&backing->space_wait) &&
	       !percpu_counter_sum(&backing->dirty_sectors);
}

/*
 * writeback_delay_ms changed: a round due later than the new delay allows
 * comes sooner; one due sooner for clean records alone moves to the new
 * delay, so that data written after a longer delay is set stays dirty that
 * long, even right after attach.  Under cache->lock, attached: detach has
 * not stopped writeback, and cannot until the lock is dropped.
 */
static void pcache_wb_delay_changed(struct pcache_backing *backing)
{
	unsigned long delay = msecs_to_jiffies(READ_ONCE(backing->wb_delay_ms));
	unsigned long due = READ_ONCE(backing->wb_due);

	lockdep_assert_held(&backing->cache->lock);
	if (backing->state != PCACHE_BACKING_ATTACHED ||
	    READ_ONCE(backing->wb_stopped) ||
	    !delayed_work_pending(&backing->wb_work))
		return;
	if (time_after(due, jiffies + delay) ||
	    (time_before(due, jiffies + delay) && pcache_wb_idle(backing))) {
		WRITE_ONCE(backing->wb_due, jiffies + delay);
		mod_delayed_work(pcache_wb_wq, &backing->wb_work, delay);
	}
}

static ssize_t pcache_wb_tunable_show(struct device *dev, char *buf,
				      size_t offset)
{
	return sysfs_emit(buf, "%u\n",
			  READ_ONCE(*(unsigned int *)((void *)to_pcache_backing(dev) +
						      offset)));
}

static ssize_t pcache_wb_tunable_store(struct device *dev, const char *buf,
				       size_t count, size_t offset,
				       const char *name)
{
	struct pcache_backing *backing = to_pcache_backing(dev);
	struct pcache_cache *cache = backing->cache;
	unsigned int *field = (void *)backing + offset;
	unsigned int value, high, low;
	int ret;

	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	ret = kstrtouint(buf, 10, &value);
	if (ret) {
		pr_err("cache%d: backing%u: %s: not a number\n", cache->id,
		       backing->id, name);
		return ret;
	}
	mutex_lock(&cache->lock);
	high = field == &backing->dirty_high_percent ? value :
	       backing->dirty_high_percent;
	low = field == &backing->dirty_low_percent ? value :
	      backing->dirty_low_percent;
	ret = -EINVAL;
	if ((field == &backing->wb_delay_ms ||
	     field == &backing->failing_timeout_ms) &&
	    value > 3600 * MSEC_PER_SEC)
		pr_err("cache%d: backing%u: %s: at most an hour (3600000)\n",
		       cache->id, backing->id, name);
	else if (high > 100 || !high || low >= high)
		pr_err("cache%d: backing%u: %s: need 0 <= dirty_low_percent < dirty_high_percent <= 100\n",
		       cache->id, backing->id, name);
	else
		ret = 0;
	if (!ret)
		WRITE_ONCE(*field, value);
	if (!ret && field == &backing->wb_delay_ms)
		pcache_wb_delay_changed(backing);
	/* Writes waiting for room wait by the new timeout. */
	if (!ret && field == &backing->failing_timeout_ms)
		wake_up_all(&backing->space_wait);
	mutex_unlock(&cache->lock);
	return ret ? ret : count;
}

#define PCACHE_WB_TUNABLE_ATTR(name, field)					\
static const size_t name##_offset = offsetof(struct pcache_backing, field);	\
static ssize_t name##_show(struct device *dev, struct device_attribute *attr,	\
			   char *buf)						\
{										\
	return pcache_wb_tunable_show(dev, buf, name##_offset);			\
}										\
static ssize_t name##_store(struct device *dev, struct device_attribute *attr,	\
			    const char *buf, size_t count)			\
{										\
	return pcache_wb_tunable_store(dev, buf, count, name##_offset, #name);	\
}										\
static DEVICE_ATTR_RW(name)

PCACHE_WB_TUNABLE_ATTR(writeback_delay_ms, wb_delay_ms);
PCACHE_WB_TUNABLE_ATTR(dirty_high_percent, dirty_high_percent);
PCACHE_WB_TUNABLE_ATTR(dirty_low_percent, dirty_low_percent);
PCACHE_WB_TUNABLE_ATTR(failing_backing_timeout_ms, failing_timeout_ms);

static struct attribute *pcache_wb_attrs[] = {
	&dev_attr_dirty_bytes.attr,
	&dev_attr_clean_bytes.attr,
	&dev_attr_written_back_bytes.attr,
	&dev_attr_writeback_errors.attr,
	&dev_attr_data_crc_errors.attr,
	&dev_attr_segments_reclaimed.attr,
	&dev_attr_waits_for_space.attr,
	&dev_attr_writeback_delay_ms.attr,
	&dev_attr_dirty_high_percent.attr,
	&dev_attr_dirty_low_percent.attr,
	&dev_attr_failing_backing_timeout_ms.attr,
	NULL,
};

const struct attribute_group pcache_wb_attr_group = {
	.attrs = pcache_wb_attrs,
};
