// SPDX-License-Identifier: GPL-2.0
/*
 * The write-back cache: writes appended to a log of pmem segments, reads
 * served from it, and replay of the log when a backing device comes back.
 *
 * Durability.  A write is durable when it completes: its data is copied
 * into a segment with non-temporal stores, then its key record (one cache
 * line, self-validating) is written after it, then pmem_wmb().  Each CPU
 * appends to its own open segment (its head), under the head's lock, so the
 * records of a segment are persistent in the order they were written and
 * replay may stop at the first record that is not valid: nothing after it
 * was ever acknowledged.  Across segments, a per-backing sequence number
 * orders overlapping writes; the index keeps the newest, in whatever order
 * replay finds them.
 *
 * WRITE_ZEROES and DISCARD are records without data (PCACHE_KEY_F_ZEROES),
 * one per aligned MiB they cover, appended and indexed like writes: the
 * range reads as zeroes from the cache until writeback has passed the
 * zeroes or the discard down and the segment is reclaimed.
 *
 * Space.  A backing device may own up to its quota of segments (the
 * accounting is in space.c; the locking and publishing here).  Writeback
 * (writeback.c) copies the log to the backing device in seq order and
 * reclaims segments whose every record is there; a write that finds no
 * segment waits for reclaim.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/bio.h>
#include <linux/blk-mq.h>
#include <linux/highmem.h>
#include <linux/libnvdimm.h>
#include <linux/delay.h>
#include <linux/jump_label.h>
#include <linux/mempool.h>
#include <linux/moduleparam.h>
#include <linux/percpu.h>
#include <linux/random.h>
#include <linux/sizes.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "pcache.h"

#define PCACHE_EXTENT_POOL_MIN		256
#define PCACHE_INDEX_DELAY_MAX_MS	60000

/*
 * For tests: hold a write back this long between its append and its index
 * insertion, so that writeback and reclaim can pass it meanwhile.  A static
 * key: the write path pays nothing while it is 0.
 */
static DEFINE_STATIC_KEY_FALSE(pcache_index_delay_on);
static unsigned int write_index_delay_ms;

static int pcache_index_delay_set(const char *val,
				  const struct kernel_param *kp)
{
	unsigned int ms;
	int ret = kstrtouint(val, 0, &ms);

	if (ret || ms > PCACHE_INDEX_DELAY_MAX_MS)
		return ret ?: -EINVAL;
	WRITE_ONCE(write_index_delay_ms, ms);
	if (ms)
		static_branch_enable(&pcache_index_delay_on);
	else
		static_branch_disable(&pcache_index_delay_on);
	return 0;
}

static const struct kernel_param_ops pcache_index_delay_ops = {
	.set = pcache_index_delay_set,
	.get = param_get_uint,
};
module_param_cb(write_index_delay_ms, &pcache_index_delay_ops,
		&write_index_delay_ms, 0644);
MODULE_PARM_DESC(write_index_delay_ms, "testing: delay each write's index insertion by this many ms (default 0, at most 60000)");

static struct kmem_cache *pcache_extent_slab;
static mempool_t *pcache_extent_mempool;

/* @ctx points to the gfp_t to allocate with. */
struct pcache_extent *pcache_extent_alloc(void *ctx)
{
	const gfp_t *gfp = ctx;

	return mempool_alloc(pcache_extent_mempool, *gfp);
}

/*
 * For a writeback round's private index: never the mempool's reserve, which
 * the writes' index needs to make progress, and no wait for it to refill (a
 * round holds thousands of extents until it ends, so a round waiting for
 * the reserve could wait for ever).  A round that finds no memory fails and
 * the next one takes fewer records.
 */
struct pcache_extent *pcache_extent_alloc_noreserve(void *ctx)
{
	return kmem_cache_alloc(pcache_extent_slab,
				GFP_NOIO | __GFP_NORETRY | __GFP_NOWARN);
}

void pcache_extent_free(struct pcache_extent *ext, void *ctx)
{
	mempool_free(ext, pcache_extent_mempool);
}

/* Bytes of a request's data copied at a time when their CRC is kept. */
#define PCACHE_CRC_BOUNCE	256

/*
 * Copy @len bytes to pmem; with @crc, also their CRC32C.  The CRC must be
 * of the bytes stored: a request's pages may change under it (O_DIRECT
 * from a buffer the program keeps writing, pages without stable writes),
 * and a CRC of a second read of them would fail every later read and
 * every writeback round.  So the bytes are read once, into a bounce buffer
 * that the CRC and the copy both take.
 */
static void pcache_copy_to_pmem(void *dst, const void *src, u32 len, u32 *crc)
{
	u8 bounce[PCACHE_CRC_BOUNCE];

	if (!crc) {
		memcpy_flushcache(dst, src, len);
		return;
	}
	while (len) {
		u32 n = min_t(u32, len, sizeof(bounce));

		memcpy(bounce, src, n);
		*crc = pcache_crc32c(*crc, bounce, n);
		memcpy_flushcache(dst, bounce, n);
		dst += n;
		src += n;
		len -= n;
	}
}

/*
 * Copy the request's data from byte @off to pmem; with @crc, also the
 * CRC32C of what was copied.
 */
static void pcache_rq_to_pmem(struct request *rq, u32 off, void *dst, u32 len,
			      u32 *crc)
{
	struct req_iterator iter;
	struct bio_vec bv;
	u32 pos = 0;

	rq_for_each_segment(bv, rq, iter) {
		u32 skip, n;
		void *src;

		if (pos + bv.bv_len <= off) {
			pos += bv.bv_len;
			continue;
		}
		skip = off > pos ? off - pos : 0;
		n = min(bv.bv_len - skip, len);
		src = kmap_local_page(bv.bv_page);
		pcache_copy_to_pmem(dst, src + bv.bv_offset + skip, n, crc);
		kunmap_local(src);
		dst += n;
		len -= n;
		pos += bv.bv_len;
		if (!len)
			break;
	}
}

/* Copy pmem at @src into the request's data at byte @off; NULL: zeroes. */
static int pcache_pmem_to_rq(struct request *rq, u32 off, const void *src,
			     u32 len)
{
	struct req_iterator iter;
	struct bio_vec bv;
	u32 pos = 0;
	int ret = 0;

	rq_for_each_segment(bv, rq, iter) {
		u32 skip, n;
		void *dst;

		if (pos + bv.bv_len <= off) {
			pos += bv.bv_len;
			continue;
		}
		skip = off > pos ? off - pos : 0;
		n = min(bv.bv_len - skip, len);
		dst = kmap_local_page(bv.bv_page);
		if (!src)
			memset(dst + bv.bv_offset + skip, 0, n);
		else if (copy_mc_to_kernel(dst + bv.bv_offset + skip, src, n))
			ret = -EIO;
		kunmap_local(dst);
		if (src)
			src += n;
		len -= n;
		pos += bv.bv_len;
		if (!len)
			break;
	}
	return ret;
}

/* Segments @backing may still take, counted up to @most. */
u32 pcache_backing_room(struct pcache_backing *backing, u32 most)
{
	struct pcache_cache *cache = backing->cache;
	u32 room;

	spin_lock(&cache->seg_lock);
	room = pcache_space_room(cache->seg_owner, cache->seg_bad,
				 cache->segment_count, backing->segs_used,
				 backing->quota, most);
	spin_unlock(&cache->seg_lock);
	return room;
}

/* @n more (or fewer) segments owned by backing @id; under seg_lock. */
static void pcache_seg_count(struct pcache_cache *cache, u32 id, int n)
{
	lockdep_assert_held(&cache->seg_lock);
	WRITE_ONCE(cache->seg_owned[id], cache->seg_owned[id] + n);
	WRITE_ONCE(cache->segs_owned, cache->segs_owned + n);
}

/* Take a free segment for @backing within its quota, or return false. */
static bool pcache_seg_get(struct pcache_backing *backing, u32 *seg)
{
	struct pcache_cache *cache = backing->cache;
	struct pcache_seg_state *state;
	u32 i;

	spin_lock(&cache->seg_lock);
	for (;;) {
		i = pcache_space_find(cache->seg_owner, cache->seg_bad,
				      cache->segment_count, backing->segs_used,
				      backing->quota);
		if (i == PCACHE_SPACE_NONE) {
			spin_unlock(&cache->seg_lock);
			return false;
		}
		/* Bad blocks found since registration: never write there. */
		if (!pcache_pmem_known_bad(cache, pcache_seg_offset(cache, i),
					   cache->segment_size, NULL, NULL))
			break;
		cache->seg_bad[i] = 1;
		WRITE_ONCE(cache->segs_bad, cache->segs_bad + 1);
		pr_warn_ratelimited("%s: segment %u has known bad blocks: not used\n",
				    cache->path, i);
	}
	state = &cache->segs[i];
	WRITE_ONCE(state->keys, 0);
	WRITE_ONCE(state->open, true);
	state->clean_keys = 0;
	state->clean_prev_seq = 0;
	/* Pairs with pcache_wb_seg_dirty(): state first. */
	smp_store_release(&cache->seg_owner[i], pcache_space_tag(backing->id));
	backing->segs_used++;
	pcache_seg_count(cache, backing->id, 1);
	spin_unlock(&cache->seg_lock);
	*seg = i;
	return true;
}

/*
 * @seg, owned by @backing and written back, becomes free.  Its header is
 * erased first (persisted before another owner can take it): pmem then
 * names a backing device only in the segments that backing owns, and the
 * registration's scan can hold every backing to its quota
 * (pcache_cache_scan_segments()).  A header in a known bad block is not
 * written; the scan treats it as free already.
 */
void pcache_seg_put(struct pcache_backing *backing, u32 seg)
{
	struct pcache_cache *cache = backing->cache;
	static const u64 no_header[2];

	if (!pcache_pmem_known_bad(cache, pcache_seg_offset(cache, seg),
				   sizeof(no_header), NULL, NULL)) {
		memcpy_flushcache(pcache_seg_addr(cache, seg, 0), no_header,
				  sizeof(no_header));
		pmem_wmb();
	}
	spin_lock(&cache->seg_lock);
	pcache_space_put(cache->seg_owner, seg, &backing->segs_used);
	pcache_seg_count(cache, backing->id, -1);
	spin_unlock(&cache->seg_lock);
}

/* Open a segment for a head: a header with a new random gen, persisted. */
static bool pcache_head_open(struct pcache_backing *backing,
			     struct pcache_head *head)
{
	struct pcache_cache *cache = backing->cache;
	struct pcache_seg_header *hdr = head->hdr;
	struct pcache_seg_state *state;
	u32 seg;

	if (!pcache_seg_get(backing, &seg))
		return false;
	head->seg = seg;
	head->gen = get_random_u64() ?: 1;
	head->nr_keys = 0;
	head->data_off = pcache_seg_data_offset(cache->segment_size);
	pcache_seg_header_init(hdr, cache->uuid, backing->uuid, backing->epoch,
			       head->gen);
	memcpy_flushcache(pcache_seg_addr(cache, seg, 0), hdr, sizeof(*hdr));
	pmem_wmb();
	/* Read by writeback only once a record is counted in keys. */
	state = &cache->segs[seg];
	state->gen = head->gen;
	state->clean_data_end = head->data_off;
	head->open = true;
	pcache_wb_seg_opened(backing);
	return true;
}

/* The head appends no more to its segment: writeback may reclaim it. */
void pcache_head_close(struct pcache_backing *backing, struct pcache_head *head)
{
	lockdep_assert_held(&head->lock);
	if (!head->open)
		return;
	/* Pairs with pcache_wb_reclaimable(): insertions counted before. */
	smp_store_release(&backing->cache->segs[head->seg].open, false);
	head->open = false;
}

/*
 * Append [pos, pos + *len) of the request (or with @fill, of the fill's
 * copy), from byte @rq_off, to this CPU's head: as much as fits, possibly
 * less than asked (*len is updated).  With PCACHE_KEY_F_ZEROES in
 * @key_flags, a record without data, up to the end of its aligned MiB.
 * Returns the key for the index, or false when no segment can be had.
 */
bool pcache_log_append(struct pcache_backing *backing, struct request *rq,
		       struct pcache_fill *fill, u32 rq_off, sector_t pos,
		       u32 *len, u32 key_flags, struct pcache_key *key)
{
	struct pcache_cache *cache = backing->cache;
	u32 keys_max = pcache_seg_keys_size(cache->segment_size) / PCACHE_KEY_SIZE;
	bool zeroes = key_flags & PCACHE_KEY_F_ZEROES;
	struct pcache_key_record rec = {};
	struct pcache_head *head;
	u32 room, sectors, data_off = 0, crc = ~0u;
	u32 *data_crc = cache->data_crc ? &crc : NULL;

	head = raw_cpu_ptr(backing->heads);
	spin_lock(&head->lock);
	room = head->open ? cache->segment_size - head->data_off : 0;
	if (!head->open || head->nr_keys == keys_max ||
	    (!zeroes && room < SECTOR_SIZE)) {
		pcache_head_close(backing, head);
		if (!pcache_head_open(backing, head)) {
			spin_unlock(&head->lock);
			return false;
		}
		room = cache->segment_size - head->data_off;
	}
	if (zeroes) {
		u64 window = BIT_ULL(PCACHE_KEY_ZEROES_SHIFT);

		sectors = min_t(u64, *len, window - (pos & (window - 1)));
	} else {
		void *dst;

		sectors = min(*len, room >> SECTOR_SHIFT);
		data_off = head->data_off;
		dst = pcache_seg_addr(cache, head->seg, data_off);
		if (fill)
			pcache_fill_to_pmem(fill, rq_off, dst,
					    sectors << SECTOR_SHIFT, data_crc);
		else
			pcache_rq_to_pmem(rq, rq_off, dst,
					  sectors << SECTOR_SHIFT, data_crc);
		if (data_crc)
			rec.data_crc = cpu_to_le32(crc);
		/*
		 * Non-temporal stores reach pmem in no order of their own:
		 * without this fence the record could be persistent before
		 * the data it vouches for, and replay would index whatever
		 * an earlier lap left there.
		 */
		pmem_wmb();
	}
	rec.seq = cpu_to_le64(atomic64_inc_return(&backing->seq));
	rec.gen = cpu_to_le64(head->gen);
	rec.start = cpu_to_le64(pos);
	rec.len = cpu_to_le32(sectors);
	rec.data_off = cpu_to_le32(data_off);
	rec.flags = cpu_to_le32(key_flags);
	pcache_key_seal(&rec);
	/* The record is persistent once fenced: before the request completes. */
	memcpy_flushcache(pcache_seg_addr(cache, head->seg, PCACHE_SEG_KEYS_OFFSET +
					  head->nr_keys * PCACHE_KEY_SIZE),
			  &rec, sizeof(rec));
	pmem_wmb();

	key->start = pos;
	key->len = sectors;
	key->seg = head->seg;
	key->seg_off = data_off;
	key->flags = pcache_extent_flags(key_flags) |
		     pcache_extent_rec(head->nr_keys);
	key->seq = le64_to_cpu(rec.seq);
	if (!zeroes)
		head->data_off += sectors << SECTOR_SHIFT;
	head->nr_keys++;
	/* Counted before the segment can be closed; see pcache_cache_write(). */
	atomic_inc(&cache->segs[head->seg].inserting);
	/* Writeback reads the record after it reads the count. */
	smp_store_release(&cache->segs[head->seg].keys, head->nr_keys);
	spin_unlock(&head->lock);
	*len = sectors;
	if (!(key_flags & PCACHE_KEY_F_CLEAN))
		percpu_counter_add(&backing->dirty_sectors, *len);
	/* The first write after a clean spell starts the writeback clock. */
	if (key->seq == READ_ONCE(backing->clean_seq) + 1)
		pcache_wb_kick(backing, false);
	return true;
}

struct pcache_key_seq {
	struct pcache_backing *backing;
	u64 seq;
};

/*
 * Under a partition's lock: was the key written back since its append?
 * Writeback raises clean_seq before reclaim drops extents under these
 * locks, so a key that goes into a partition after such a drop sees it.
 *
 * Such a key only cuts, and may leave a hole where reads go to the backing
 * device.  A fill that read the backing device before the round wrote this
 * key there must not fill that hole: bump reclaim_gen, which fills check
 * under this same lock, as reclaim does before it drops extents.
 */
static bool pcache_key_written_back(void *ctx)
{
	const struct pcache_key_seq *k = ctx;

	if (k->seq > READ_ONCE(k->backing->clean_seq))
		return false;
	atomic_inc(&k->backing->reclaim_gen);
	return true;
}

/*
 * Insert a write's @key, starting with this CPU's spare extents.  The
 * extents left over go to @left, for pcache_spare_refill().
 *
 * A write's key can reach the index after a round wrote it back, with a
 * newer write of the same range, and reclaim dropped that newer one's
 * extents: filling the hole it left would show the older data, which the
 * backing device no longer holds.  Such a key only cuts the older extents
 * out of its range (pcache_index_insert_or_cut()); reads of it go to the
 * backing device, which holds it or newer.
 */
void pcache_index_add(struct pcache_backing *backing,
		      const struct pcache_key *key, gfp_t gfp, u64 *replaced,
		      struct pcache_extent_pool *left)
{
	struct pcache_key_seq k = { .backing = backing, .seq = key->seq };
	struct pcache_extent *ext;
	int i, ret;

	pcache_extent_pool_init(left);
	for (i = 0; i < PCACHE_SPARE_EXTENTS; i++) {
		ext = this_cpu_xchg(backing->heads->spare[i], NULL);
		if (ext)
			pcache_extent_pool_put(left, ext);
	}
	/* No -ENOMEM: the mempool waits rather than fail with GFP_NOIO. */
	ret = pcache_index_insert_or_cut(&backing->index, key, left,
					 pcache_extent_alloc, &gfp, replaced,
					 pcache_key_written_back, &k);
	WARN_ON(ret);
}

/*
 * Keep PCACHE_SPARE_EXTENTS extents ready for the next write on this CPU
 * (or, after a migration, another): from @pool first, else new ones; what
 * is left of @pool is freed.  Called with no lock held, so that a mempool
 * wait holds up nothing else.
 */
void pcache_spare_refill(struct pcache_backing *backing,
			 struct pcache_extent_pool *pool, gfp_t gfp)
{
	struct pcache_extent *ext;
	int i;

	for (i = 0; i < PCACHE_SPARE_EXTENTS; i++) {
		if (this_cpu_read(backing->heads->spare[i]))
			continue;
		ext = pcache_extent_pool_get(pool) ?: pcache_extent_alloc(&gfp);
		if (this_cpu_cmpxchg(backing->heads->spare[i], NULL, ext))
			pcache_extent_pool_put(pool, ext);
	}
	pcache_extent_pool_trim(pool, 0, pcache_extent_free, NULL);
}

/*
 * Index a key pcache_log_append() just returned, over what the index held
 * (@replaced: as for pcache_index_insert_alloc()); then its segment may be
 * reclaimed.
 */
void pcache_log_index(struct pcache_backing *backing,
		      const struct pcache_key *key, u64 *replaced)
{
	struct pcache_extent_pool left;

	pcache_index_add(backing, key, GFP_NOIO, replaced, &left);
	/* Pairs with pcache_wb_reclaimable(): the key is in the index. */
	smp_mb__before_atomic();
	atomic_dec(&backing->cache->segs[key->seg].inserting);
	pcache_spare_refill(backing, &left, GFP_NOIO);
}

/* A WRITE, WRITE_ZEROES or DISCARD, durable in pmem on return. */
blk_status_t pcache_cache_write(struct pcache_backing *backing,
				struct request *rq)
{
	struct pcache_request *preq = blk_mq_rq_to_pdu(rq);
	sector_t pos = blk_rq_pos(rq);
	u32 left = blk_rq_sectors(rq), done = 0, len, key_flags = 0;
	struct pcache_key key;
	u64 replaced = 0;

	preq->kind = PCACHE_RQ_WRITE;
	if (req_op(rq) == REQ_OP_WRITE_ZEROES) {
		preq->kind = PCACHE_RQ_WRITE_ZEROES;
		key_flags = PCACHE_KEY_F_ZEROES;
	} else if (req_op(rq) == REQ_OP_DISCARD) {
		preq->kind = PCACHE_RQ_DISCARD;
		key_flags = PCACHE_KEY_F_ZEROES | PCACHE_KEY_F_DISCARD;
	}
	while (left) {
		len = left;
		if (!pcache_log_append(backing, rq, NULL, done << SECTOR_SHIFT,
				       pos, &len, key_flags, &key)) {
			if (pcache_wb_wait_for_room(backing)) {
				preq->replaced = replaced;
				return BLK_STS_IOERR;
			}
			continue;
		}
		if (static_branch_unlikely(&pcache_index_delay_on))
			msleep(READ_ONCE(write_index_delay_ms));
		pcache_log_index(backing, &key, &replaced);
		pos += len;
		done += len;
		left -= len;
	}
	preq->replaced = replaced;
	return BLK_STS_OK;
}

/* Data CRCs are checked this many bytes at a time, copied off pmem. */
#define PCACHE_DATA_CHECK_CHUNK	256

/*
 * With data CRCs: does the data of record @rec_index of segment @seg match
 * its CRC?  The record is read again (pmem may have changed since it was
 * appended) and must be intact; the data is read with machine-check-safe
 * copies, a chunk at a time.  Returns 0, or -EBADMSG, counted.
 */
int pcache_data_check(struct pcache_backing *backing, u32 seg, u32 rec_index)
{
	struct pcache_cache *cache = backing->cache;
	u32 keys_max = pcache_seg_keys_size(cache->segment_size) / PCACHE_KEY_SIZE;
	u8 buf[PCACHE_DATA_CHECK_CHUNK];
	struct pcache_key_record rec;
	u32 off, bytes, crc = ~0u;
	const char *why = NULL;

	if (rec_index >= keys_max ||
	    copy_mc_to_kernel(&rec, pcache_seg_addr(cache, seg, PCACHE_SEG_KEYS_OFFSET +
						    rec_index * PCACHE_KEY_SIZE),
			      sizeof(rec))) {
		why = "its record cannot be read";
		goto bad;
	}
	off = le32_to_cpu(rec.data_off);
	/* In u64: a damaged record must not wrap these checks. */
	if (le32_to_cpu(rec.magic) != PCACHE_KEY_MAGIC ||
	    le32_to_cpu(rec.crc) != pcache_meta_crc(&rec, sizeof(rec)) ||
	    off < pcache_seg_data_offset(cache->segment_size) ||
	    off + ((u64)le32_to_cpu(rec.len) << SECTOR_SHIFT) >
	    cache->segment_size) {
		why = "its record is damaged";
		goto bad;
	}
	bytes = le32_to_cpu(rec.len) << SECTOR_SHIFT;
	while (bytes) {
		u32 n = min_t(u32, bytes, sizeof(buf));

		if (copy_mc_to_kernel(buf, pcache_seg_addr(cache, seg, off), n)) {
			why = "media error";
			goto bad;
		}
		crc = pcache_crc32c(crc, buf, n);
		off += n;
		bytes -= n;
	}
	if (crc == le32_to_cpu(rec.data_crc))
		return 0;
	why = "data CRC mismatch";
bad:
	atomic64_inc(&backing->data_crc_errors);
	pr_err_ratelimited("cache%d: backing%u: segment %u record %u: %s\n",
			   cache->id, backing->id, seg, rec_index, why);
	return -EBADMSG;
}

struct pcache_read_ctx {
	struct pcache_backing *backing;
	struct request *rq;
	struct pcache_request *preq;
	sector_t pos;
	int error;
	/*
	 * The record whose data CRC was checked last: pieces share it, in
	 * one partition only (between two, the lock was dropped and the
	 * segment may have been reclaimed and written again).
	 */
	u64 checked_part;
	u32 checked_seg;
	u32 checked_rec;
	bool checked_bad;
};

/* Under the partition lock: copy a hit, note which sectors it filled. */
static int pcache_read_piece(void *data, u64 start, u32 len,
			     const struct pcache_extent *hit, u32 seg_off)
{
	struct pcache_read_ctx *ctx = data;
	struct pcache_backing *backing = ctx->backing;
	u64 part = start >> backing->index.part_shift;
	u32 first = start - ctx->pos;

	if (!hit)
		return 0;
	if (backing->cache->data_crc && !(hit->flags & PCACHE_EXTENT_ZEROES) &&
	    (hit->seg != ctx->checked_seg || part != ctx->checked_part ||
	     pcache_extent_rec_index(hit->flags) != ctx->checked_rec)) {
		ctx->checked_part = part;
		ctx->checked_seg = hit->seg;
		ctx->checked_rec = pcache_extent_rec_index(hit->flags);
		ctx->checked_bad = pcache_data_check(backing, hit->seg,
						     ctx->checked_rec);
		if (ctx->checked_bad)
			ctx->error = -EBADMSG;
	}
	/* Known bad blocks fail the read, as the pmem driver's own reads do. */
	if (!(hit->flags & PCACHE_EXTENT_ZEROES) &&
	    pcache_pmem_known_bad(backing->cache,
				  pcache_seg_offset(backing->cache, hit->seg) +
				  seg_off, (u64)len << SECTOR_SHIFT, NULL, NULL)) {
		if (!ctx->error)
			ctx->error = -EIO;
		bitmap_set(ctx->preq->hit, first, len);
		ctx->preq->hit_sectors += len;
		return 0;
	}
	/*
	 * Data that failed its CRC never reaches the caller's buffer, not
	 * even with the error (an O_DIRECT reader would see it): zeroes.
	 */
	if (pcache_pmem_to_rq(ctx->rq, first << SECTOR_SHIFT,
			      (hit->flags & PCACHE_EXTENT_ZEROES) ||
			      ctx->checked_bad ? NULL :
			      pcache_seg_addr(backing->cache, hit->seg, seg_off),
			      len << SECTOR_SHIFT) && !ctx->error)
		ctx->error = -EIO;
	bitmap_set(ctx->preq->hit, first, len);
	ctx->preq->hit_sectors += len;
	return 0;
}

/*
 * Read the sectors the cache did not have from the backing device; each
 * run of them may become a fill (fill.c), read into the fill's own pages.
 * @fill_gen: backing->reclaim_gen, read before the lookup.
 */
static void pcache_read_misses(struct pcache_backing *backing,
			       struct request *rq, struct pcache_request *preq,
			       int fill_gen)
{
	bool no_fill = preq->seq_bypass || !READ_ONCE(backing->read_cache);
	u32 nr = blk_rq_sectors(rq), run, end = 0;

	for (run = find_first_zero_bit(preq->hit, nr); run < nr;
	     run = find_next_zero_bit(preq->hit, nr, end)) {
		struct pcache_fill *fill;
		struct req_iterator iter;
		struct bio_vec bv;
		struct bio *bio = NULL;
		u32 pos = 0, from, to;

		end = find_next_bit(preq->hit, nr, run);
		from = run << SECTOR_SHIFT;
		to = end << SECTOR_SHIFT;
		fill = no_fill ? NULL :
		       pcache_fill_prepare(backing, rq, blk_rq_pos(rq) + run,
					   end - run, fill_gen);
		if (fill) {
			pcache_fill_read(backing, fill);
			continue;
		}
		rq_for_each_segment(bv, rq, iter) {
			u32 lo = max(pos, from), hi = min(pos + bv.bv_len, to);

			if (lo < hi) {
				if (!bio || !bio_add_page(bio, bv.bv_page, hi - lo,
							  bv.bv_offset + lo - pos)) {
					if (bio)
						submit_bio(bio);
					bio = pcache_backing_bio(backing, rq, REQ_OP_READ,
								 BIO_MAX_VECS,
								 blk_rq_pos(rq) +
								 ((lo) >> SECTOR_SHIFT));
					__bio_add_page(bio, bv.bv_page, hi - lo,
						       bv.bv_offset + lo - pos);
				}
			}
			pos += bv.bv_len;
			if (pos >= to)
				break;
		}
		if (bio)
			submit_bio(bio);
	}
}

void pcache_cache_read(struct pcache_backing *backing, struct request *rq)
{
	struct pcache_request *preq = blk_mq_rq_to_pdu(rq);
	struct pcache_read_ctx ctx = {
		.backing = backing, .rq = rq, .preq = preq, .pos = blk_rq_pos(rq),
		.checked_seg = U32_MAX,
	};
	int fill_gen;

	atomic_set(&preq->pending, 1);
	preq->status = BLK_STS_OK;
	preq->kind = PCACHE_RQ_READ;
	preq->hit_sectors = 0;
	preq->seq_bypass = pcache_fill_stream_bypass(backing, rq);
	bitmap_zero(preq->hit, blk_rq_sectors(rq));

	/*
	 * Before the lookup (acquire: its loads stay after this one), for
	 * the fills of its misses: see pcache_fill_insert().
	 */
	fill_gen = atomic_read_acquire(&backing->reclaim_gen);
	pcache_index_lookup(&backing->index, blk_rq_pos(rq), blk_rq_sectors(rq),
			    pcache_read_piece, &ctx);
	/* Never the data of a record that fails its CRC: an I/O error. */
	if (ctx.error)
		preq->status = ctx.error == -EBADMSG ? BLK_STS_IOERR :
			       BLK_STS_MEDIUM;

	pcache_read_misses(backing, rq, preq, fill_gen);
	pcache_request_put(rq);
}

/*
 * At registration: which backing device owns each segment, from its header
 * (pcache_space_seg_owner()).
 */
int pcache_cache_scan_segments(struct pcache_cache *cache)
{
	struct pcache_seg_header *hdr;
	u32 seg, owned;
	int id;

	cache->seg_owner = kvcalloc(cache->segment_count, 1, GFP_KERNEL);
	cache->seg_bad = kvcalloc(cache->segment_count, 1, GFP_KERNEL);
	cache->segs = kvcalloc(cache->segment_count, sizeof(*cache->segs),
			       GFP_KERNEL);
	hdr = kmalloc(sizeof(*hdr), GFP_KERNEL);
	if (!cache->seg_owner || !cache->seg_bad || !cache->segs || !hdr) {
		kfree(hdr);
		return -ENOMEM;
	}
	for (seg = 0; seg < cache->segment_count; seg++) {
		/*
		 * Known bad blocks (the device's badblocks list): the segment
		 * is never taken again; what it holds is read as far as it
		 * can be.  A header in a bad block cannot be read: free.
		 */
		if (pcache_pmem_known_bad(cache, pcache_seg_offset(cache, seg),
					  cache->segment_size, NULL, NULL)) {
			cache->seg_bad[seg] = 1;
			pr_warn("%s: segment %u has known bad blocks: not used\n",
				cache->path, seg);
			if (pcache_pmem_known_bad(cache,
						  pcache_seg_offset(cache, seg),
						  sizeof(*hdr), NULL, NULL))
				continue;
		}
		if (copy_mc_to_kernel(hdr, pcache_seg_addr(cache, seg, 0),
				      sizeof(*hdr))) {
			pr_warn("%s: media error in the header of segment %u: treated as free\n",
				cache->path, seg);
			continue;
		}
		cache->seg_owner[seg] =
			pcache_space_seg_owner(cache->table, cache->uuid, hdr);
	}
	kfree(hdr);
	/* Not yet seen by anyone: no lock needed for the counts. */
	for (seg = 0; seg < cache->segment_count; seg++) {
		cache->segs_bad += cache->seg_bad[seg];
		if (cache->seg_owner[seg]) {
			cache->seg_owned[cache->seg_owner[seg] - 1]++;
			cache->segs_owned++;
		}
	}
	id = pcache_space_over_quota(cache->table, cache->seg_owner,
				     cache->segment_count, &owned);
	if (id >= 0) {
		pr_err("%s: segment headers give backing%d %u segments, more than its quota of %u: damaged or forged headers; refusing the cache\n",
		       cache->path, id, owned,
		       le32_to_cpu(cache->table->entries[id].quota_segments));
		return -EUCLEAN;
	}
	return 0;
}

/*
 * Read the page of records from record @i of @seg into @recs; returns how
 * many records were read whole before a media error or known bad block.
 */
static u32 pcache_replay_read_page(struct pcache_cache *cache, u32 seg,
				   u32 i, struct pcache_key_record *recs)
{
	u32 off = PCACHE_SEG_KEYS_OFFSET + i * PCACHE_KEY_SIZE;
	u64 bad_off, bad_len, len = PAGE_SIZE;

	if (pcache_pmem_known_bad(cache, pcache_seg_offset(cache, seg) + off,
				  len, &bad_off, &bad_len))
		len = bad_off - (pcache_seg_offset(cache, seg) + off);
	return (len - copy_mc_to_kernel(recs, pcache_seg_addr(cache, seg, off),
					len)) / PCACHE_KEY_SIZE;
}

/*
 * Replay one segment's log into the index; returns the keys it held.
 * Records up to the backing's clean_seq are on the backing device already:
 * they are checked and counted as written back, not indexed.
 */
static u32 pcache_replay_segment(struct pcache_backing *backing, u32 seg,
				 struct pcache_key_record *recs, u64 *max_seq)
{
	struct pcache_seg_state *state = &backing->cache->segs[seg];
	struct pcache_cache *cache = backing->cache;
	u32 keys_max = pcache_seg_keys_size(cache->segment_size) / PCACHE_KEY_SIZE;
	struct pcache_replay_cursor cur = {
		.data_end = pcache_seg_data_offset(cache->segment_size),
		.segment_size = cache->segment_size,
		.backing_sectors = backing->sectors,
		.block_mask = pcache_backing_block_mask(backing),
		.data_crc = cache->data_crc,
	};
	struct pcache_seg_header *hdr = (void *)recs;
	struct pcache_extent_pool left;
	const char *why = NULL;
	struct pcache_key key;
	u32 i, batch = PAGE_SIZE / PCACHE_KEY_SIZE, copied = 0;

	/* @recs is a page: the header first, then the records a page at a time. */
	memset(state, 0, sizeof(*state));
	if (copy_mc_to_kernel(hdr, pcache_seg_addr(cache, seg, 0), sizeof(*hdr))) {
		pr_warn("cache%d: backing%u: segment %u: media error in its header: none of its records replayed\n",
			cache->id, backing->id, seg);
		return 0;
	}
	cur.gen = le64_to_cpu(hdr->gen);
	state->gen = cur.gen;
	state->clean_data_end = cur.data_end;
	for (i = 0; i < keys_max; i++) {
		/*
		 * A media error stops the log where it is: the records of the
		 * page before it are used (copy_mc_to_kernel() copies up to
		 * the bad line), not lost with the page.
		 */
		if (i % batch == 0)
			copied = pcache_replay_read_page(cache, seg, i, recs);
		if (i % batch >= copied) {
			/* Acknowledged writes may be past it: say so. */
			pr_warn("cache%d: backing%u: segment %u: media error in its log after %u records: the log ends there\n",
				cache->id, backing->id, seg, i);
			why = "media error in the log";
			break;
		}
		if (pcache_key_check(&recs[i % batch], &cur, &why))
			break;
		key.start = le64_to_cpu(recs[i % batch].start);
		key.len = le32_to_cpu(recs[i % batch].len);
		key.seg = seg;
		key.seg_off = le32_to_cpu(recs[i % batch].data_off);
		key.flags = pcache_extent_flags(le32_to_cpu(recs[i % batch].flags)) |
			    pcache_extent_rec(i);
		key.seq = le64_to_cpu(recs[i % batch].seq);
		*max_seq = max(*max_seq, key.seq);
		if (key.seq <= backing->clean_seq) {
			state->clean_keys = i + 1;
			state->clean_prev_seq = key.seq;
			state->clean_data_end = cur.data_end;
			continue;
		}
		/* Read cache fills: kept for writeback to pass, not indexed. */
		if (!(key.flags & PCACHE_EXTENT_DIRTY))
			continue;
		percpu_counter_add(&backing->dirty_sectors, key.len);
		pcache_index_add(backing, &key, GFP_KERNEL, NULL, &left);
		pcache_spare_refill(backing, &left, GFP_KERNEL);
	}
	state->keys = i;
	pr_debug("cache%d: backing%u: segment %u: %u keys, %s\n", cache->id,
		 backing->id, seg, i, why ?: "full");
	return i;
}

static void pcache_heads_free(struct pcache_backing *backing)
{
	int cpu, i;

	for_each_possible_cpu(cpu) {
		struct pcache_head *head = per_cpu_ptr(backing->heads, cpu);

		kfree(head->hdr);
		for (i = 0; i < PCACHE_SPARE_EXTENTS; i++)
			if (head->spare[i])
				pcache_extent_free(head->spare[i], NULL);
	}
	free_percpu(backing->heads);
	backing->heads = NULL;
}

/*
 * Bring up the cache of a backing device that was just opened: its index,
 * per-CPU heads, and a replay of every segment it owns.
 */
int pcache_cache_backing_start(struct pcache_backing *backing)
{
	struct pcache_cache *cache = backing->cache;
	struct pcache_backing_entry *entry = &cache->table->entries[backing->id];
	struct pcache_key_record *recs;
	u64 max_seq = 0, keys = 0, extents, sectors;
	u32 replayed = 0;
	ktime_t start = ktime_get();
	int cpu, ret;
	u32 seg;

	lockdep_assert_held(&cache->lock);
	if (pcache_pmem_gone(cache)) {
		pr_err("cache%d: backing%u: %s is gone: no log to replay\n",
		       cache->id, backing->id, cache->path);
		return -EIO;
	}
	memcpy(backing->uuid, entry->uuid, PCACHE_UUID_SIZE);
	backing->epoch = le64_to_cpu(entry->epoch);
	backing->quota = le32_to_cpu(entry->quota_segments);
	backing->mode = le32_to_cpu(entry->mode);
	backing->clean_seq = le64_to_cpu(entry->clean_seq);
	backing->sectors = bdev_nr_sectors(backing->bdev.bdev);
	ret = pcache_index_init(&backing->index, backing->sectors, 0);
	if (ret)
		return ret;
	backing->heads = alloc_percpu(struct pcache_head);
	if (!backing->heads) {
		ret = -ENOMEM;
		goto out_index;
	}
	for_each_possible_cpu(cpu) {
		struct pcache_head *head = per_cpu_ptr(backing->heads, cpu);

		spin_lock_init(&head->lock);
		head->open = false;
		memset(head->spare, 0, sizeof(head->spare));
		head->hdr = kmalloc(sizeof(*head->hdr), GFP_KERNEL);
		if (!head->hdr) {
			ret = -ENOMEM;
			goto out_heads;
		}
	}
	ret = pcache_wb_backing_init(backing);
	if (ret)
		goto out_heads;

	recs = kmalloc(PAGE_SIZE, GFP_KERNEL);
	if (!recs) {
		ret = -ENOMEM;
		goto out_wb;
	}
	backing->segs_used = pcache_cache_segments_owned(cache, backing->id);
	for (seg = 0; seg < cache->segment_count; seg++) {
		struct pcache_seg_state *state = &cache->segs[seg];

		if (cache->seg_owner[seg] != pcache_space_tag(backing->id))
			continue;
		keys += pcache_replay_segment(backing, seg, recs, &max_seq);
		replayed++;
		/* All on the backing device already: free. */
		if (state->clean_keys == state->keys)
			pcache_seg_put(backing, seg);
	}
	kfree(recs);
	max_seq = max(max_seq, backing->clean_seq);
	/*
	 * Checks let seqs reach PCACHE_SEQ_MAX, which 2^62 writes never do:
	 * at it, the next write's record would end its segment's log at the
	 * next replay.  Only damaged or forged metadata gets here.
	 */
	if (max_seq >= PCACHE_SEQ_MAX) {
		pr_err("cache%d: backing%u: its sequence numbers are used up (%llu): damaged or forged metadata; refusing it\n",
		       cache->id, backing->id, max_seq);
		ret = -EUCLEAN;
		goto out_wb;
	}
	/*
	 * Leaving writeback drains before the new mode is recorded: dirty
	 * records under another mode are forged or damaged, and written
	 * back they would overwrite what went around the log since.
	 */
	if (backing->mode != PCACHE_MODE_WRITEBACK && pcache_dirty_bytes(backing)) {
		pr_err("cache%d: backing%u: dirty records in %s mode: damaged or forged metadata; refusing it\n",
		       cache->id, backing->id, pcache_mode_names[backing->mode]);
		ret = -EUCLEAN;
		goto out_wb;
	}
	atomic64_set(&backing->seq, max_seq);
	pcache_index_stats(&backing->index, &extents, &sectors);
	if (replayed)
		pr_info("cache%d: backing%u: replayed %llu keys from %u segments in %lld us: %llu KiB cached in %llu extents, %llu KiB not written back\n",
			cache->id, backing->id, keys, replayed,
			ktime_us_delta(ktime_get(), start), sectors >> 1, extents,
			pcache_dirty_bytes(backing) >> 10);
	return 0;

out_wb:
	pcache_wb_backing_exit(backing);
out_heads:
	pcache_heads_free(backing);
out_index:
	pcache_index_exit(&backing->index, pcache_extent_free, NULL);
	return ret;
}

/* The disk is gone: drop the DRAM state.  pmem keeps what it holds. */
void pcache_cache_backing_stop(struct pcache_backing *backing)
{
	if (!backing->heads)
		return;
	pcache_fill_wait(backing);
	pcache_wb_backing_exit(backing);
	pcache_heads_free(backing);
	pcache_index_exit(&backing->index, pcache_extent_free, NULL);
}

/* Segments of a backing device that is forgotten become free. */
void pcache_cache_release_segments(struct pcache_cache *cache, u32 id)
{
	u32 n;

	spin_lock(&cache->seg_lock);
	n = pcache_space_release(cache->seg_owner, cache->segment_count,
				 pcache_space_tag(id));
	pcache_seg_count(cache, id, -(int)n);
	WARN_ON_ONCE(cache->seg_owned[id]);
	spin_unlock(&cache->seg_lock);
}

/*
 * Segments backing @id owns, or with U32_MAX, all the owned segments.  A
 * snapshot: the counts move as segments are taken and freed.
 */
u32 pcache_cache_segments_owned(struct pcache_cache *cache, u32 id)
{
	if (id == U32_MAX)
		return READ_ONCE(cache->segs_owned);
	return READ_ONCE(cache->seg_owned[id]);
}

/* Segments with known bad blocks, never taken. */
u32 pcache_cache_segments_bad(struct pcache_cache *cache)
{
	return READ_ONCE(cache->segs_bad);
}

int pcache_cache_init(void)
{
	pcache_extent_slab = KMEM_CACHE(pcache_extent, 0);
	if (!pcache_extent_slab)
		return -ENOMEM;
	pcache_extent_mempool = mempool_create_slab_pool(PCACHE_EXTENT_POOL_MIN,
							 pcache_extent_slab);
	if (!pcache_extent_mempool)
		goto out_slab;
	if (pcache_wb_init())
		goto out_mempool;
	if (pcache_fill_init())
		goto out_wb;
	if (pcache_mode_init())
		goto out_fill;
	return 0;

out_fill:
	pcache_fill_exit();
out_wb:
	pcache_wb_exit();
out_mempool:
	mempool_destroy(pcache_extent_mempool);
out_slab:
	kmem_cache_destroy(pcache_extent_slab);
	return -ENOMEM;
}

void pcache_cache_exit(void)
{
	pcache_mode_exit();
	pcache_fill_exit();
	pcache_wb_exit();
	mempool_destroy(pcache_extent_mempool);
	kmem_cache_destroy(pcache_extent_slab);
}
