/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The cache's index in DRAM: which ranges of a backing device are cached,
 * and where on pmem.
 *
 * Every write the cache takes becomes a key: a range of the backing device
 * (in 512-byte sectors), the place in a pmem segment holding its data, and a
 * sequence number.  The index keeps, for every cached sector, the newest key
 * covering it, as non-overlapping extents in red-black trees.
 *
 * Newer seq wins, whatever the order of insertion: an extent is only ever
 * cut back by a key with a seq at least as high as its own, and a key only
 * fills the sectors that no newer extent holds.  Inserting the keys of the
 * log in any order (replay after a crash) therefore builds the same index as
 * inserting them in seq order as the writes happened.  Two different keys
 * must never have the same seq: an equal seq is taken as newer, which only
 * gives the right answer when it is the same key inserted again.
 *
 * The index is cut into partitions of (1 << part_shift) sectors, each with
 * its own spinlock and tree, so that I/O to unrelated parts of the device
 * does not contend on one lock.  No extent crosses a partition boundary; no
 * function holds two partition locks at once.
 *
 * Memory: nothing here allocates while a lock is held, and nothing is freed
 * under one.  Extents come from, and go back to, a struct pcache_extent_pool
 * the caller fills beforehand (see pcache_index_insert()).  The pure logic
 * has no other dependency, so that host tests compile this very file.
 *
 * Context: process context only (the locks are plain spin_lock()).
 */
#ifndef _PCACHE_INDEX_H
#define _PCACHE_INDEX_H

#include <linux/rbtree.h>
#include <linux/spinlock.h>
#include <linux/types.h>

/*
 * Default partition size: 1 << 11 sectors, 1 MiB of backing device, so
 * that a tree holds at most 256 extents of 4 KiB and a descent stays short;
 * larger on devices big enough to need more than 1 << 16 partitions, so
 * that the array of partitions stays within 2 MiB.
 */
#define PCACHE_INDEX_PART_SHIFT		11
#define PCACHE_INDEX_PARTS_BITS		16
/* Largest partition: an extent's length must fit its u32 len. */
#define PCACHE_INDEX_PART_SHIFT_MAX	31

/* A sector is 512 bytes: seg_off moves by this shift per sector. */
#define PCACHE_INDEX_SECTOR_SHIFT	9

/* Extent flags: carried along by the index, never interpreted by it. */
#define PCACHE_EXTENT_DIRTY		1
/* No data: the range reads as zeroes (seg_off means nothing). */
#define PCACHE_EXTENT_ZEROES		2
/* With ZEROES: writeback discards the range rather than zeroing it. */
#define PCACHE_EXTENT_DISCARD		4
/*
 * Bits 16-31: the index of the extent's key record in its segment, so
 * that a data CRC check finds the record (a segment has at most 65536).
 */
#define PCACHE_EXTENT_REC_SHIFT		16

/* A write to insert: @len sectors from @start, data at @seg + @seg_off. */
struct pcache_key {
	u64 start;		/* backing sector */
	u32 len;		/* sectors, >= 1 */
	u32 seg;		/* pmem segment */
	u32 seg_off;		/* bytes into the segment */
	u32 flags;		/* PCACHE_EXTENT_* */
	u64 seq;		/* higher is newer */
};

/*
 * What the index stores per cached range: 56 bytes on 64-bit (24 of rb_node,
 * 32 of fields, no padding), so about 56 bytes of DRAM per extent from a
 * dedicated kmem_cache (64 from kmalloc-64).  A 4 KiB write costs one
 * extent: 56 bytes per 4 KiB cached, 1.4% of the cache size at worst.
 *
 * An extent is either in a partition's tree (@node) or in a pool (@next),
 * never both, so the pool's free list costs no space.
 */
struct pcache_extent {
	union {
		struct rb_node node;
		struct pcache_extent *next;
	};
	u64 start;		/* backing sector */
	u32 len;		/* sectors, >= 1 */
	u32 seg;		/* pmem segment */
	u32 seg_off;		/* bytes into the segment, for @start */
	u32 flags;		/* PCACHE_EXTENT_*, from the key */
	u64 seq;		/* seq of the key this is a piece of */
};

/*
 * Spare extents for insertion and removal, filled by the caller where it
 * may allocate (no lock held).  Insertion and removal take what they need
 * from it and put back the extents they drop; the caller frees what it does
 * not want to keep with pcache_extent_pool_trim().  A list rather than an
 * array: an old key inserted under many newer extents needs a piece for each
 * hole, and a key covering many old extents drops them all, so neither
 * number has a bound.
 */
struct pcache_extent_pool {
	struct pcache_extent *head;	/* singly linked through ->next */
	unsigned int nr;
};

struct pcache_index_part {
	spinlock_t lock;		/* root and both counters */
	struct rb_root root;		/* extents, by start, never overlapping */
	u64 nr_extents;
	u64 nr_sectors;			/* sum of the extents' len */
};

struct pcache_index {
	struct pcache_index_part *parts;
	u32 nr_parts;
	u32 part_shift;			/* a partition is 1 << part_shift sectors */
	u64 nr_sectors;			/* size of the backing device */
};

typedef struct pcache_extent *(*pcache_extent_alloc_t)(void *ctx);
typedef void (*pcache_extent_free_t)(struct pcache_extent *ext, void *ctx);
typedef bool (*pcache_extent_match_t)(const struct pcache_extent *ext,
				      void *ctx);
typedef int (*pcache_index_lookup_t)(void *ctx, u64 start, u32 len,
				     const struct pcache_extent *hit,
				     u32 seg_off);
typedef bool (*pcache_index_stale_t)(void *ctx);

/**
 * pcache_extent_pool_init() - make an empty pool
 * @pool: the pool
 */
static inline void pcache_extent_pool_init(struct pcache_extent_pool *pool)
{
	pool->head = NULL;
	pool->nr = 0;
}

/**
 * pcache_extent_pool_put() - add a spare extent to a pool
 * @pool: the pool
 * @ext: an extent that is in no index
 */
void pcache_extent_pool_put(struct pcache_extent_pool *pool,
			    struct pcache_extent *ext);

/**
 * pcache_extent_pool_get() - take a spare extent from a pool
 * @pool: the pool
 *
 * Return: an extent, or NULL when the pool is empty.
 */
struct pcache_extent *pcache_extent_pool_get(struct pcache_extent_pool *pool);

/**
 * pcache_extent_pool_trim() - free spare extents down to a number
 * @pool: the pool
 * @keep: how many extents to leave in the pool
 * @free_extent: frees one extent
 * @ctx: passed to @free_extent
 *
 * Context: no partition lock held (free_extent may be mempool_free()).
 */
void pcache_extent_pool_trim(struct pcache_extent_pool *pool,
			     unsigned int keep,
			     pcache_extent_free_t free_extent, void *ctx);

/**
 * pcache_index_init() - set up an empty index
 * @idx: the index
 * @nr_sectors: size of the backing device in sectors, at least 1
 * @part_shift: log2 of the partition size in sectors, from 1 to
 *	PCACHE_INDEX_PART_SHIFT_MAX; 0 means PCACHE_INDEX_PART_SHIFT, or more
 *	to keep to 1 << PCACHE_INDEX_PARTS_BITS partitions
 *
 * Context: process context, may sleep (GFP_KERNEL).
 * Return: 0, -EINVAL for a bad size or shift, -ENOMEM.
 */
int pcache_index_init(struct pcache_index *idx, u64 nr_sectors,
		      u32 part_shift);

/**
 * pcache_index_exit() - free an index and every extent in it
 * @idx: the index, which nobody else uses any more
 * @free_extent: frees one extent
 * @ctx: passed to @free_extent
 */
void pcache_index_exit(struct pcache_index *idx,
		       pcache_extent_free_t free_extent, void *ctx);

/**
 * pcache_index_insert() - insert a key, taking extents from a pool
 * @idx: the index
 * @key: the key; len >= 1, inside the device, seg_off + len * 512 < 4 GiB
 * @pool: spare extents; extents the key replaces are added to it
 *
 * Where an extent with a lower (or equal) seq overlaps the key, it is
 * trimmed, split or dropped; where one with a higher seq does, the key
 * leaves it alone, so the key may end up in several pieces or none.
 *
 * The key is inserted partition by partition, each one under its lock and
 * all at once.  When the pool runs short for a partition, that partition is
 * left untouched and the call returns how many extents to add before
 * calling again.  The partitions done before stay done: a lookup in between
 * sees the key in some partitions and not in others, which is a state the
 * write being inserted may legitimately show, since it has not completed.
 * Inserting the same key again does no harm (an equal seq replaces the
 * key's own pieces with the same), so the retry starts from the beginning.
 * pcache_index_insert_alloc() does the retry and resumes where it stopped.
 *
 * Context: takes and drops partition locks; never allocates nor frees.
 * Return: 0 when inserted, a positive number of extents the pool lacks,
 * -EINVAL for a bad key.
 */
int pcache_index_insert(struct pcache_index *idx, const struct pcache_key *key,
			struct pcache_extent_pool *pool);

/**
 * pcache_index_insert_alloc() - insert a key, allocating what it needs
 * @idx: the index
 * @key: the key, as for pcache_index_insert()
 * @pool: spare extents, refilled with @alloc when short
 * @alloc: allocates one extent; called with no lock held, so it may sleep
 *	(mempool_alloc() with GFP_NOIO, which never fails)
 * @ctx: passed to @alloc
 * @replaced: if not NULL, increased by the sectors of older extents the key
 *	replaced, whether they were dropped, trimmed or split
 *
 * Each partition is tried with what the pool holds; when that is not
 * enough the lock is dropped, the pool is refilled and the partition is
 * tried again from scratch, since the index may have changed meanwhile.
 *
 * Return: 0, -EINVAL for a bad key, -ENOMEM if @alloc returned NULL (the
 * partitions before the one it was for are inserted).
 */
int pcache_index_insert_alloc(struct pcache_index *idx,
			      const struct pcache_key *key,
			      struct pcache_extent_pool *pool,
			      pcache_extent_alloc_t alloc, void *ctx,
			      u64 *replaced);

/**
 * pcache_index_insert_unless() - insert a key while it is not stale
 * @idx: the index
 * @key: the key, as for pcache_index_insert()
 * @pool: as for pcache_index_insert_alloc()
 * @alloc: as for pcache_index_insert_alloc()
 * @alloc_ctx: passed to @alloc
 * @stale: called under each partition's lock before the key goes in there;
 *	true leaves that partition and the ones after it untouched.  It must
 *	not sleep nor call into the index.
 * @stale_ctx: passed to @stale
 *
 * For data that is only true until something else happens (a read cache
 * fill, until the backing device's data changes under a hole of the
 * index): whoever makes it untrue changes what @stale reads before taking
 * the partition locks, so the key never lands in a partition after that.
 *
 * Return: as for pcache_index_insert_alloc(), or -ESTALE when @stale
 * stopped it (the partitions before the one it stopped at are inserted).
 */
int pcache_index_insert_unless(struct pcache_index *idx,
			       const struct pcache_key *key,
			       struct pcache_extent_pool *pool,
			       pcache_extent_alloc_t alloc, void *alloc_ctx,
			       pcache_index_stale_t stale, void *stale_ctx);

/**
 * pcache_index_insert_or_cut() - insert a key, or only cut what it replaces
 * @idx: the index
 * @key: the key, as for pcache_index_insert()
 * @pool: as for pcache_index_insert_alloc()
 * @alloc: as for pcache_index_insert_alloc()
 * @alloc_ctx: passed to @alloc
 * @replaced: as for pcache_index_insert_alloc()
 * @stale: called under each partition's lock before the key goes in there;
 *	when true, the older extents of the key's range in that partition
 *	are cut as the key would cut them, but the key fills no hole there.
 *	It must not sleep nor call into the index.
 * @stale_ctx: passed to @stale
 *
 * For a write whose data may be on the backing device by the time its key
 * reaches the index (written back meanwhile, with the writes after it):
 * a hole in its range may then be the place of a newer write that was
 * written back and dropped from the index, where the older key must not
 * show.  Cutting the older extents out still keeps them from showing
 * instead of it; reads of the range go to the backing device.
 *
 * Return: as for pcache_index_insert_alloc().
 */
int pcache_index_insert_or_cut(struct pcache_index *idx,
			       const struct pcache_key *key,
			       struct pcache_extent_pool *pool,
			       pcache_extent_alloc_t alloc, void *alloc_ctx,
			       u64 *replaced, pcache_index_stale_t stale,
			       void *stale_ctx);

/**
 * pcache_index_lookup() - walk the cached and uncached pieces of a range
 * @idx: the index
 * @start: first sector
 * @len: sectors, >= 1, inside the device
 * @cb: called for each piece, in order: @hit is the extent holding it and
 *	@seg_off the offset in its segment of the piece's first sector, or
 *	@hit is NULL for a gap (and @seg_off 0).  Called under a partition
 *	lock: it must not sleep nor call into the index, and @hit is only
 *	valid during the call.  A nonzero return stops the walk.
 * @ctx: passed to @cb
 *
 * A hit is one extent clipped to the range (adjacent extents give separate
 * hits, and none crosses a partition boundary).  A gap is maximal, also
 * across partition boundaries.  Each partition is seen in one consistent
 * state, but the partitions are visited one after the other.
 *
 * Return: 0 after the whole range, the nonzero value @cb stopped with, or
 * -EINVAL for a bad range (and @cb is not called).
 */
int pcache_index_lookup(struct pcache_index *idx, u64 start, u32 len,
			pcache_index_lookup_t cb, void *ctx);

/**
 * pcache_index_remove() - drop cached ranges, taking extents from a pool
 * @idx: the index
 * @start: first sector
 * @len: sectors, >= 1, inside the device
 * @match: which extents to cut the range out of (NULL: all of them).
 *	Called under a partition lock, possibly twice for an extent: it must
 *	not sleep and must answer the same for the same extent.  It sees the
 *	whole extent, not the part in the range.
 * @match_ctx: passed to @match
 * @pool: spare extents (splitting an extent around the range needs one);
 *	extents dropped are added to it
 * @removed: if not NULL, increased by the number of sectors removed
 *
 * Used to drop what points into a segment being reclaimed, or a discarded
 * range.  Like pcache_index_insert(), it works partition by partition and
 * may stop short of extents; calling again finishes the job.
 *
 * Return: 0, a positive number of extents the pool lacks, or -EINVAL.
 */
int pcache_index_remove(struct pcache_index *idx, u64 start, u32 len,
			pcache_extent_match_t match, void *match_ctx,
			struct pcache_extent_pool *pool, u64 *removed);

/**
 * pcache_index_remove_alloc() - drop cached ranges, allocating if needed
 * @idx: the index
 * @start: first sector
 * @len: sectors
 * @match: as for pcache_index_remove()
 * @match_ctx: passed to @match
 * @pool: spare extents, refilled with @alloc when short
 * @alloc: as for pcache_index_insert_alloc()
 * @alloc_ctx: passed to @alloc
 * @removed: if not NULL, increased by the number of sectors removed
 *
 * Return: 0, -EINVAL for a bad range, -ENOMEM if @alloc returned NULL.
 */
int pcache_index_remove_alloc(struct pcache_index *idx, u64 start, u32 len,
			      pcache_extent_match_t match, void *match_ctx,
			      struct pcache_extent_pool *pool,
			      pcache_extent_alloc_t alloc, void *alloc_ctx,
			      u64 *removed);

/**
 * pcache_index_drop() - drop whole the extents that overlap a range
 * @idx: the index
 * @start: first sector
 * @len: sectors, >= 1, inside the device
 * @match: as for pcache_index_remove()
 * @match_ctx: passed to @match
 * @pool: extents dropped are added to it
 * @removed: if not NULL, increased by the number of sectors removed
 *
 * Unlike pcache_index_remove(), a matching extent that sticks out of the
 * range goes whole: reclaim drops every extent of a segment, by the ranges
 * of its records, and must not split one (which takes an extent) only to
 * drop both halves.  Never needs an extent.
 *
 * Return: 0, or -EINVAL for a bad range.
 */
int pcache_index_drop(struct pcache_index *idx, u64 start, u32 len,
		      pcache_extent_match_t match, void *match_ctx,
		      struct pcache_extent_pool *pool, u64 *removed);

/**
 * pcache_index_stats() - count the extents and cached sectors
 * @idx: the index
 * @extents: set to the number of extents
 * @sectors: set to the number of cached sectors
 *
 * Sums the partitions one at a time, so not a snapshot under concurrent
 * changes.
 */
void pcache_index_stats(struct pcache_index *idx, u64 *extents, u64 *sectors);

#endif /* _PCACHE_INDEX_H */
