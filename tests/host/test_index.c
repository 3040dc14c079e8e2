// SPDX-License-Identifier: GPL-2.0
/*
 * Host tests of pcache/index.c: directed cases, a randomized comparison
 * with a per-sector reference model, an insertion-order test (replay must
 * build the index live writes build) and a threaded test.
 *
 * PCACHE_TEST_SEED=N replays the randomized tests with seed N (the seed is
 * printed on every run); INDEX_OPS=N sets the operations per random run.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <errno.h>
#include <pthread.h>
#include <cmocka.h>

#include <linux/errno.h>
#include <linux/kernel.h>
#include <linux/rbtree_augmented.h>
#include <linux/slab.h>

#include "index.h"

#define SECTOR_BYTES 512u

/* ---- extent allocation, counted; nothing may allocate under a lock ---- */

static long live_extents;	/* allocated and not freed, all tests */
static pthread_mutex_t live_lock = PTHREAD_MUTEX_INITIALIZER;

struct counting_alloc {
	unsigned int calls;
	unsigned int fail_at;	/* 1-based call that returns NULL; 0 never */
};

static struct pcache_extent *alloc_extent(void *ctx)
{
	struct counting_alloc *ca = ctx;
	struct pcache_extent *ext;

	if (pcache_shim_locks_held)
		abort();
	if (ca) {
		ca->calls++;
		if (ca->fail_at && ca->calls == ca->fail_at)
			return NULL;
	}
	ext = malloc(sizeof(*ext));
	if (!ext)
		abort();
	/* Garbage, so a field the index forgets to set shows. */
	memset(ext, 0xa5, sizeof(*ext));
	pthread_mutex_lock(&live_lock);
	live_extents++;
	pthread_mutex_unlock(&live_lock);
	return ext;
}

static void free_extent(struct pcache_extent *ext, void *ctx)
{
	unsigned int *frees = ctx;

	if (pcache_shim_locks_held)
		abort();
	if (frees)
		(*frees)++;
	free(ext);
	pthread_mutex_lock(&live_lock);
	live_extents--;
	pthread_mutex_unlock(&live_lock);
}

static void pool_fill(struct pcache_extent_pool *pool, unsigned int nr)
{
	while (nr--)
		pcache_extent_pool_put(pool, alloc_extent(NULL));
}

static void teardown_index(struct pcache_index *idx,
			   struct pcache_extent_pool *pool)
{
	pcache_index_exit(idx, free_extent, NULL);
	pcache_extent_pool_trim(pool, 0, free_extent, NULL);
	assert_int_equal(pool->nr, 0);
	assert_null(pool->head);
}

static struct pcache_key key(u64 start, u32 len, u32 seg, u32 seg_off,
			     u64 seq)
{
	struct pcache_key k = {
		.start = start, .len = len, .seg = seg, .seg_off = seg_off,
		.flags = PCACHE_EXTENT_DIRTY, .seq = seq,
	};

	return k;
}

/* Insert with a plenty pool: directed tests are not about allocation. */
static void put(struct pcache_index *idx, struct pcache_extent_pool *pool,
		u64 start, u32 len, u32 seg, u32 seg_off, u64 seq)
{
	struct pcache_key k = key(start, len, seg, seg_off, seq);

	assert_int_equal(pcache_index_insert_alloc(idx, &k, pool, alloc_extent,
						   NULL, NULL), 0);
}

/* ---- walking the trees directly, and the structural invariants ---- */

struct ext_copy {
	u64 start;
	u32 len, seg, seg_off, flags;
	u64 seq;
};

/* Copy every extent in order; return how many (at most max). */
static size_t dump(struct pcache_index *idx, struct ext_copy *out, size_t max)
{
	size_t n = 0;
	u32 i;

	for (i = 0; i < idx->nr_parts; i++) {
		struct rb_node *node;

		for (node = rb_first(&idx->parts[i].root); node;
		     node = rb_next(node)) {
			struct pcache_extent *e =
				rb_entry(node, struct pcache_extent, node);

			if (n < max) {
				out[n].start = e->start;
				out[n].len = e->len;
				out[n].seg = e->seg;
				out[n].seg_off = e->seg_off;
				out[n].flags = e->flags;
				out[n].seq = e->seq;
			}
			n++;
		}
	}
	return n;
}

/*
 * The red-black rules below @node, whose parent is @parent: every child
 * points back to its parent, no red node has a red child, and every path
 * down holds as many black nodes.  Returns that number (the black height),
 * or -1 when a rule is broken.
 */
static int rb_check(const struct rb_node *node, const struct rb_node *parent)
{
	int left, right;

	if (!node)
		return 1;
	if (rb_parent(node) != parent)
		return -1;
	if (rb_is_red(node) &&
	    ((node->rb_left && rb_is_red(node->rb_left)) ||
	     (node->rb_right && rb_is_red(node->rb_right))))
		return -1;
	left = rb_check(node->rb_left, node);
	right = rb_check(node->rb_right, node);
	if (left < 0 || left != right)
		return -1;
	return left + rb_is_black(node);
}

/*
 * Sorted, non-overlapping, non-empty, inside their partition and the
 * device, counted right, and each partition's tree a valid red-black tree
 * (the index links extents next to a neighbour as well as from the root).
 * Returns a message, or NULL when all holds.
 */
static const char *check_invariants(struct pcache_index *idx)
{
	static char msg[256];
	u64 total_ext = 0, total_sec = 0, ext_stat, sec_stat;
	u32 i;

	for (i = 0; i < idx->nr_parts; i++) {
		struct pcache_index_part *part = &idx->parts[i];
		u64 lo = (u64)i << idx->part_shift;
		u64 hi = min_t(u64, lo + (1ull << idx->part_shift),
			       idx->nr_sectors);
		u64 prev_end = lo, n = 0, sectors = 0;
		struct rb_node *node = part->root.rb_node;

		if ((node && !rb_is_black(node)) || rb_check(node, NULL) < 0) {
			snprintf(msg, sizeof(msg),
				 "part %u: not a valid red-black tree", i);
			return msg;
		}

		for (node = rb_first(&part->root); node; node = rb_next(node)) {
			struct pcache_extent *e =
				rb_entry(node, struct pcache_extent, node);

			if (!e->len || e->start < prev_end ||
			    e->start + e->len > hi) {
				snprintf(msg, sizeof(msg),
					 "part %u [%llu,%llu): bad extent [%llu,+%u) after %llu",
					 i, (unsigned long long)lo,
					 (unsigned long long)hi,
					 (unsigned long long)e->start, e->len,
					 (unsigned long long)prev_end);
				return msg;
			}
			prev_end = e->start + e->len;
			n++;
			sectors += e->len;
		}
		if (n != part->nr_extents || sectors != part->nr_sectors) {
			snprintf(msg, sizeof(msg),
				 "part %u: %llu extents, %llu sectors, counted %llu, %llu",
				 i, (unsigned long long)n,
				 (unsigned long long)sectors,
				 (unsigned long long)part->nr_extents,
				 (unsigned long long)part->nr_sectors);
			return msg;
		}
		total_ext += n;
		total_sec += sectors;
	}
	pcache_index_stats(idx, &ext_stat, &sec_stat);
	if (ext_stat != total_ext || sec_stat != total_sec)
		return "pcache_index_stats() disagrees with the trees";
	return NULL;
}

static void assert_invariants(struct pcache_index *idx)
{
	const char *why = check_invariants(idx);

	if (why)
		fail_msg("%s", why);
}

/* ---- lookups, recorded ---- */

struct piece {
	u64 start;
	u32 len;
	bool hit;
	u32 seg, seg_off, flags;
	u64 seq;
	u64 ext_start;		/* the whole extent a hit is part of */
	u32 ext_len;
	const struct pcache_extent *ext;	/* which extent, for identity */
};

struct recorder {
	struct piece *p;
	size_t n, max;
	size_t stop_after;	/* return stop_ret after this many; 0 never */
	int stop_ret;
};

static int record(void *ctx, u64 start, u32 len,
		  const struct pcache_extent *hit, u32 seg_off)
{
	struct recorder *r = ctx;
	struct piece *p;

	if (!pcache_shim_locks_held)
		abort();	/* the callback runs under the partition lock */
	if (r->n >= r->max)
		abort();
	p = &r->p[r->n++];
	memset(p, 0, sizeof(*p));
	p->start = start;
	p->len = len;
	p->hit = hit;
	p->seg_off = seg_off;
	if (hit) {
		p->seg = hit->seg;
		p->flags = hit->flags;
		p->seq = hit->seq;
		p->ext_start = hit->start;
		p->ext_len = hit->len;
		p->ext = hit;
	}
	if (r->stop_after && r->n == r->stop_after)
		return r->stop_ret;
	return 0;
}

#define MAX_PIECES 4096
static struct piece pieces[MAX_PIECES];

static size_t lookup(struct pcache_index *idx, u64 start, u32 len)
{
	struct recorder r = { .p = pieces, .max = MAX_PIECES };

	assert_int_equal(pcache_index_lookup(idx, start, len, record, &r), 0);
	return r.n;
}

static void assert_hit(size_t i, u64 start, u32 len, u32 seg, u32 seg_off,
		       u64 seq)
{
	assert_true(pieces[i].hit);
	assert_int_equal(pieces[i].start, start);
	assert_int_equal(pieces[i].len, len);
	assert_int_equal(pieces[i].seg, seg);
	assert_int_equal(pieces[i].seg_off, seg_off);
	assert_int_equal(pieces[i].seq, seq);
}

static void assert_gap(size_t i, u64 start, u32 len)
{
	assert_false(pieces[i].hit);
	assert_int_equal(pieces[i].start, start);
	assert_int_equal(pieces[i].len, len);
	assert_int_equal(pieces[i].seg_off, 0);
}

static void assert_stats(struct pcache_index *idx, u64 extents, u64 sectors)
{
	u64 e, s;

	pcache_index_stats(idx, &e, &s);
	assert_int_equal(e, extents);
	assert_int_equal(s, sectors);
	assert_invariants(idx);
}

/* ---- directed tests ---- */

static void test_init(void **state)
{
	struct pcache_index idx;

	(void)state;
	assert_int_equal(pcache_index_init(&idx, 0, 10), -EINVAL);
	assert_int_equal(pcache_index_init(&idx, 100,
					   PCACHE_INDEX_PART_SHIFT_MAX + 1),
			 -EINVAL);
	/* 2^64 - 1 sectors in 2-sector partitions: too many partitions. */
	assert_int_equal(pcache_index_init(&idx, UINT64_MAX, 1), -EINVAL);

	pcache_shim_alloc_fail = 1;
	assert_int_equal(pcache_index_init(&idx, 100, 4), -ENOMEM);
	pcache_shim_alloc_fail = 0;

	/* The default: 1 MiB partitions, up to 1 << 16 of them. */
	assert_int_equal(pcache_index_init(&idx, (1 << 11) + 1, 0), 0);
	assert_int_equal(idx.part_shift, PCACHE_INDEX_PART_SHIFT);
	assert_int_equal(idx.nr_parts, 2);
	pcache_index_exit(&idx, free_extent, NULL);
	assert_int_equal(pcache_index_init(&idx, 1ull << 27, 0), 0);
	assert_int_equal(idx.part_shift, 11);
	assert_int_equal(idx.nr_parts, 1 << 16);
	pcache_index_exit(&idx, free_extent, NULL);
	assert_int_equal(pcache_index_init(&idx, (1ull << 27) + 1, 0), 0);
	assert_int_equal(idx.part_shift, 12);
	assert_int_equal(idx.nr_parts, (1 << 15) + 1);
	pcache_index_exit(&idx, free_extent, NULL);
	/* 16 TiB: 256 MiB partitions. */
	assert_int_equal(pcache_index_init(&idx, 1ull << 35, 0), 0);
	assert_int_equal(idx.part_shift, 19);
	assert_int_equal(idx.nr_parts, 1 << 16);
	pcache_index_exit(&idx, free_extent, NULL);

	assert_int_equal(pcache_index_init(&idx, 64, 4), 0);
	assert_int_equal(idx.nr_parts, 4);
	pcache_index_exit(&idx, free_extent, NULL);

	/* The biggest partition an extent's u32 len can fill. */
	assert_int_equal(pcache_index_init(&idx, 1ull << 40,
					   PCACHE_INDEX_PART_SHIFT_MAX), 0);
	assert_int_equal(idx.nr_parts, 1 << 9);
	pcache_index_exit(&idx, free_extent, NULL);

	/* 56 bytes: the size the memory estimate in index.h is based on. */
	assert_int_equal(sizeof(struct pcache_extent), 56);
}

static void test_bad_args(void **state)
{
	struct pcache_extent_pool pool;
	struct pcache_index idx;
	struct pcache_key k;
	struct recorder r = { .p = pieces, .max = MAX_PIECES };
	u64 removed = 0;

	(void)state;
	pcache_extent_pool_init(&pool);
	pool_fill(&pool, 4);
	assert_int_equal(pcache_index_init(&idx, 1000, 4), 0);

	k = key(0, 0, 1, 0, 1);
	assert_int_equal(pcache_index_insert(&idx, &k, &pool), -EINVAL);
	k = key(999, 2, 1, 0, 1);
	assert_int_equal(pcache_index_insert(&idx, &k, &pool), -EINVAL);
	k = key(1000, 1, 1, 0, 1);
	assert_int_equal(pcache_index_insert(&idx, &k, &pool), -EINVAL);
	k = key(UINT64_MAX, 2, 1, 0, 1);
	assert_int_equal(pcache_index_insert(&idx, &k, &pool), -EINVAL);
	/* The last piece's seg_off would not fit in 32 bits. */
	k = key(0, 8, 1, (u32)(0x100000000ull - 4096 + 512), 1);
	assert_int_equal(pcache_index_insert(&idx, &k, &pool), -EINVAL);
	k = key(0, 1, 1, UINT32_MAX, 1);
	assert_int_equal(pcache_index_insert(&idx, &k, &pool), -EINVAL);
	k = key(0, 8, 1, (u32)(0x100000000ull - 4096), 1);
	assert_int_equal(pcache_index_insert(&idx, &k, &pool), 0);
	k = key(999, 1, 1, 0, 1);
	assert_int_equal(pcache_index_insert(&idx, &k, &pool), 0);

	assert_int_equal(pcache_index_lookup(&idx, 0, 0, record, &r), -EINVAL);
	assert_int_equal(pcache_index_lookup(&idx, 990, 11, record, &r),
			 -EINVAL);
	assert_int_equal(r.n, 0);
	assert_int_equal(pcache_index_remove(&idx, 0, 0, NULL, NULL, &pool,
					     &removed), -EINVAL);
	assert_int_equal(pcache_index_remove(&idx, 1, 1000, NULL, NULL, &pool,
					     &removed), -EINVAL);
	assert_int_equal(removed, 0);
	assert_stats(&idx, 2, 9);
	teardown_index(&idx, &pool);
}

static void test_trim_front_back(void **state)
{
	struct pcache_extent_pool pool;
	struct pcache_index idx;

	(void)state;
	pcache_extent_pool_init(&pool);
	assert_int_equal(pcache_index_init(&idx, 4096, 10), 0);

	put(&idx, &pool, 100, 100, 1, 0, 1);
	/* Newer key over the front of it: the extent starts later. */
	put(&idx, &pool, 50, 70, 2, 8192, 2);
	/* Newer key over its back. */
	put(&idx, &pool, 180, 70, 3, 0, 3);
	assert_int_equal(lookup(&idx, 0, 300), 5);
	assert_gap(0, 0, 50);
	assert_hit(1, 50, 70, 2, 8192, 2);
	assert_hit(2, 120, 60, 1, 20 * SECTOR_BYTES, 1);
	assert_int_equal(pieces[2].ext_start, 120);
	assert_int_equal(pieces[2].ext_len, 60);
	assert_hit(3, 180, 70, 3, 0, 3);
	assert_gap(4, 250, 50);
	assert_stats(&idx, 3, 200);
	teardown_index(&idx, &pool);
}

static void test_split_middle(void **state)
{
	struct pcache_extent_pool pool;
	struct pcache_index idx;
	struct pcache_key k;

	(void)state;
	pcache_extent_pool_init(&pool);
	assert_int_equal(pcache_index_init(&idx, 4096, 10), 0);
	put(&idx, &pool, 100, 100, 1, 4096, 1);

	/* Splitting needs two extents: the tail and the key. */
	k = key(130, 10, 2, 0, 2);
	assert_int_equal(pool.nr, 0);
	assert_int_equal(pcache_index_insert(&idx, &k, &pool), 2);
	pool_fill(&pool, 1);
	assert_int_equal(pcache_index_insert(&idx, &k, &pool), 1);
	assert_stats(&idx, 1, 100);		/* untouched while short */
	pool_fill(&pool, 1);
	assert_int_equal(pcache_index_insert(&idx, &k, &pool), 0);
	assert_int_equal(pool.nr, 0);

	assert_int_equal(lookup(&idx, 100, 100), 3);
	assert_hit(0, 100, 30, 1, 4096, 1);
	assert_hit(1, 130, 10, 2, 0, 2);
	assert_hit(2, 140, 60, 1, 4096 + 40 * SECTOR_BYTES, 1);
	assert_int_equal(pieces[2].flags, PCACHE_EXTENT_DIRTY);
	assert_stats(&idx, 3, 100);
	teardown_index(&idx, &pool);
}

static void test_full_cover(void **state)
{
	struct pcache_extent_pool pool;
	struct pcache_index idx;
	struct pcache_key k;

	(void)state;
	pcache_extent_pool_init(&pool);
	assert_int_equal(pcache_index_init(&idx, 4096, 10), 0);
	put(&idx, &pool, 10, 5, 1, 0, 1);
	put(&idx, &pool, 20, 5, 1, 4096, 2);
	put(&idx, &pool, 30, 10, 1, 8192, 3);
	assert_int_equal(pool.nr, 0);

	/* The three are dropped; one of them becomes the key's extent. */
	k = key(10, 30, 2, 0, 4);
	assert_int_equal(pcache_index_insert(&idx, &k, &pool), 0);
	assert_int_equal(pool.nr, 2);
	assert_int_equal(lookup(&idx, 0, 50), 3);
	assert_gap(0, 0, 10);
	assert_hit(1, 10, 30, 2, 0, 4);
	assert_gap(2, 40, 10);
	assert_stats(&idx, 1, 30);

	/* Same range, newer: replaced with no allocation at all. */
	k = key(10, 30, 3, 0, 5);
	assert_int_equal(pcache_index_insert(&idx, &k, &pool), 0);
	assert_int_equal(pool.nr, 2);
	assert_int_equal(lookup(&idx, 10, 30), 1);
	assert_hit(0, 10, 30, 3, 0, 5);
	teardown_index(&idx, &pool);
}

/* The write path's common cases: a rewrite of the same blocks, a new range. */
static void test_rewrite_in_place(void **state)
{
	u64 replaced;
	const struct pcache_extent *ext;
	struct pcache_extent_pool pool;
	struct pcache_index idx;
	struct pcache_key k;

	(void)state;
	pcache_extent_pool_init(&pool);
	assert_int_equal(pcache_index_init(&idx, 4096, 10), 0);

	/* Nothing overlaps: the pool's one extent is linked as it is. */
	pool_fill(&pool, 1);
	k = key(64, 8, 1, 4096, 10);
	assert_int_equal(pcache_index_insert(&idx, &k, &pool), 0);
	assert_int_equal(pool.nr, 0);
	assert_int_equal(lookup(&idx, 64, 8), 1);
	assert_hit(0, 64, 8, 1, 4096, 10);
	ext = pieces[0].ext;

	/* A newer key over exactly that range takes over the same extent. */
	k = key(64, 8, 7, 8192, 11);
	assert_int_equal(pcache_index_insert(&idx, &k, &pool), 0);
	assert_int_equal(pool.nr, 0);
	assert_int_equal(lookup(&idx, 60, 16), 3);
	assert_gap(0, 60, 4);
	assert_hit(1, 64, 8, 7, 8192, 11);
	assert_ptr_equal(pieces[1].ext, ext);
	assert_gap(2, 72, 4);


	/* An older key over exactly that range changes nothing. */
	k = key(64, 8, 2, 0, 9);
	assert_int_equal(pcache_index_insert(&idx, &k, &pool), 0);
	assert_int_equal(lookup(&idx, 64, 8), 1);
	assert_hit(0, 64, 8, 7, 8192, 11);
	assert_stats(&idx, 1, 8);

	/* Same start, longer: not a rewrite; the general path needs a piece. */
	k = key(64, 16, 3, 0, 12);
	assert_int_equal(pcache_index_insert(&idx, &k, &pool), 0);
	assert_int_equal(pool.nr, 0);
	assert_int_equal(lookup(&idx, 64, 16), 1);
	assert_hit(0, 64, 16, 3, 0, 12);
	/* Next to it, with an empty pool: the caller is asked for one. */
	k = key(80, 8, 3, 8192, 13);
	assert_int_equal(pcache_index_insert(&idx, &k, &pool), 1);
	assert_stats(&idx, 1, 16);

	/* Both paths count the sectors of older data a key replaces. */
	replaced = 0;
	k = key(1000, 8, 5, 0, 30);
	assert_int_equal(pcache_index_insert_alloc(&idx, &k, &pool, alloc_extent,
						   NULL, &replaced), 0);
	assert_int_equal(replaced, 0);
	k = key(1000, 8, 5, 4096, 31);	/* the fast path */
	assert_int_equal(pcache_index_insert_alloc(&idx, &k, &pool, alloc_extent,
						   NULL, &replaced), 0);
	assert_int_equal(replaced, 8);
	k = key(996, 16, 6, 0, 29);	/* older: fills around, replaces nothing */
	assert_int_equal(pcache_index_insert_alloc(&idx, &k, &pool, alloc_extent,
						   NULL, &replaced), 0);
	assert_int_equal(replaced, 8);
	k = key(994, 20, 6, 0, 32);	/* the general path: all 16 and more */
	assert_int_equal(pcache_index_insert_alloc(&idx, &k, &pool, alloc_extent,
						   NULL, &replaced), 0);
	assert_int_equal(replaced, 24);
	teardown_index(&idx, &pool);
}

static void test_older_under_newer(void **state)
{
	struct pcache_extent_pool pool;
	struct pcache_index idx;
	struct pcache_key k;

	(void)state;
	pcache_extent_pool_init(&pool);
	assert_int_equal(pcache_index_init(&idx, 4096, 10), 0);
	put(&idx, &pool, 10, 10, 5, 0, 50);
	put(&idx, &pool, 30, 10, 5, 4096, 51);

	/* An old key lands only in the holes, in three pieces. */
	k = key(0, 50, 1, 0, 7);
	assert_int_equal(pcache_index_insert(&idx, &k, &pool), 3);
	pool_fill(&pool, 3);
	assert_int_equal(pcache_index_insert(&idx, &k, &pool), 0);
	assert_int_equal(lookup(&idx, 0, 50), 5);
	assert_hit(0, 0, 10, 1, 0, 7);
	assert_hit(1, 10, 10, 5, 0, 50);
	assert_hit(2, 20, 10, 1, 20 * SECTOR_BYTES, 7);
	assert_hit(3, 30, 10, 5, 4096, 51);
	assert_hit(4, 40, 10, 1, 40 * SECTOR_BYTES, 7);
	assert_stats(&idx, 5, 50);

	/* Entirely under newer extents: nothing changes, nothing needed. */
	k = key(12, 5, 2, 0, 8);
	assert_int_equal(pcache_index_insert(&idx, &k, &pool), 0);
	k = key(10, 10, 2, 0, 49);
	assert_int_equal(pcache_index_insert(&idx, &k, &pool), 0);
	/* Over old and new: only the old parts give way. */
	k = key(5, 30, 3, 0, 9);
	assert_int_equal(pool.nr, 0);
	/* Two pieces, one of them in the extent it drops. */
	assert_int_equal(pcache_index_insert(&idx, &k, &pool), 1);
	pool_fill(&pool, 1);
	assert_int_equal(pcache_index_insert(&idx, &k, &pool), 0);
	assert_int_equal(lookup(&idx, 0, 50), 6);
	assert_hit(0, 0, 5, 1, 0, 7);
	assert_hit(1, 5, 5, 3, 0, 9);
	assert_hit(2, 10, 10, 5, 0, 50);
	assert_hit(3, 20, 10, 3, 15 * SECTOR_BYTES, 9);
	assert_hit(4, 30, 10, 5, 4096, 51);
	assert_hit(5, 40, 10, 1, 40 * SECTOR_BYTES, 7);
	assert_stats(&idx, 6, 50);
	teardown_index(&idx, &pool);
}

static void test_equal_seq(void **state)
{
	struct pcache_extent_pool pool;
	struct pcache_index idx;
	struct pcache_key k;

	(void)state;
	pcache_extent_pool_init(&pool);
	assert_int_equal(pcache_index_init(&idx, 4096, 4), 0);
	put(&idx, &pool, 10, 40, 1, 0, 3);
	put(&idx, &pool, 20, 4, 2, 0, 4);
	assert_stats(&idx, 6, 40);

	/* The same key again (a replayed key) replaces its own pieces. */
	k = key(10, 40, 1, 0, 3);
	assert_int_equal(pcache_index_insert(&idx, &k, &pool), 0);
	assert_stats(&idx, 6, 40);
	assert_int_equal(lookup(&idx, 10, 40), 6);
	assert_hit(0, 10, 6, 1, 0, 3);
	assert_hit(1, 16, 4, 1, 6 * SECTOR_BYTES, 3);
	assert_hit(2, 20, 4, 2, 0, 4);
	assert_hit(3, 24, 8, 1, 14 * SECTOR_BYTES, 3);
	assert_hit(4, 32, 16, 1, 22 * SECTOR_BYTES, 3);
	assert_hit(5, 48, 2, 1, 38 * SECTOR_BYTES, 3);
	teardown_index(&idx, &pool);
}

static void test_partition_boundary(void **state)
{
	struct pcache_extent_pool pool;
	struct pcache_index idx;
	struct pcache_key k;

	(void)state;
	pcache_extent_pool_init(&pool);
	/* 16-sector partitions, the last one short (60 sectors). */
	assert_int_equal(pcache_index_init(&idx, 60, 4), 0);
	assert_int_equal(idx.nr_parts, 4);

	k = key(10, 50, 7, 4096, 1);
	assert_int_equal(pcache_index_insert(&idx, &k, &pool), 1);
	assert_stats(&idx, 0, 0);
	pool_fill(&pool, 1);
	/* Partial progress: the first partition is done, then one more. */
	assert_int_equal(pcache_index_insert(&idx, &k, &pool), 1);
	assert_stats(&idx, 1, 6);
	pool_fill(&pool, 3);
	assert_int_equal(pcache_index_insert(&idx, &k, &pool), 0);
	/* The retry swapped the first partition's piece for another. */
	assert_int_equal(pool.nr, 0);
	assert_stats(&idx, 4, 50);
	assert_int_equal(idx.parts[0].nr_extents, 1);
	assert_int_equal(idx.parts[3].nr_sectors, 12);

	assert_int_equal(lookup(&idx, 0, 60), 5);
	assert_gap(0, 0, 10);
	assert_hit(1, 10, 6, 7, 4096, 1);
	assert_hit(2, 16, 16, 7, 4096 + 6 * SECTOR_BYTES, 1);
	assert_hit(3, 32, 16, 7, 4096 + 22 * SECTOR_BYTES, 1);
	assert_hit(4, 48, 12, 7, 4096 + 38 * SECTOR_BYTES, 1);
	assert_int_equal(pieces[2].ext_start, 16);
	assert_int_equal(pieces[2].ext_len, 16);

	/* A newer key across a boundary trims both neighbours. */
	put(&idx, &pool, 30, 4, 8, 0, 2);
	assert_int_equal(lookup(&idx, 28, 8), 4);
	assert_hit(0, 28, 2, 7, 4096 + 18 * SECTOR_BYTES, 1);
	assert_hit(1, 30, 2, 8, 0, 2);
	assert_hit(2, 32, 2, 8, 2 * SECTOR_BYTES, 2);
	assert_hit(3, 34, 2, 7, 4096 + 24 * SECTOR_BYTES, 1);
	assert_stats(&idx, 6, 50);
	teardown_index(&idx, &pool);
}

static void test_lookup_sequence(void **state)
{
	struct pcache_extent_pool pool;
	struct pcache_index idx;
	struct recorder r = { .p = pieces, .max = MAX_PIECES };

	(void)state;
	pcache_extent_pool_init(&pool);
	assert_int_equal(pcache_index_init(&idx, 256, 4), 0);

	/* Nothing cached: one gap over all the partitions. */
	assert_int_equal(lookup(&idx, 3, 250), 1);
	assert_gap(0, 3, 250);

	put(&idx, &pool, 40, 5, 1, 0, 1);
	put(&idx, &pool, 45, 3, 2, 0, 2);	/* adjacent: separate hit */
	put(&idx, &pool, 100, 2, 3, 512, 3);
	assert_int_equal(lookup(&idx, 0, 200), 6);
	assert_gap(0, 0, 40);			/* across two boundaries */
	assert_hit(1, 40, 5, 1, 0, 1);
	assert_hit(2, 45, 3, 2, 0, 2);
	assert_gap(3, 48, 52);
	assert_hit(4, 100, 2, 3, 512, 3);
	assert_gap(5, 102, 98);

	/* Clipped at both ends, seg_off moved to the range's start. */
	assert_int_equal(lookup(&idx, 42, 60), 4);
	assert_hit(0, 42, 3, 1, 2 * SECTOR_BYTES, 1);
	assert_hit(1, 45, 3, 2, 0, 2);
	assert_gap(2, 48, 52);
	assert_hit(3, 100, 2, 3, 512, 3);
	assert_int_equal(lookup(&idx, 101, 1), 1);
	assert_hit(0, 101, 1, 3, 1024, 3);

	/* The callback's nonzero return stops the walk and is returned. */
	r.stop_after = 2;
	r.stop_ret = 7;
	assert_int_equal(pcache_index_lookup(&idx, 0, 200, record, &r), 7);
	assert_int_equal(r.n, 2);
	r.n = 0;
	r.stop_after = 1;
	r.stop_ret = -5;
	assert_int_equal(pcache_index_lookup(&idx, 0, 10, record, &r), -5);
	assert_int_equal(r.n, 1);
	teardown_index(&idx, &pool);
}

static bool match_seg(const struct pcache_extent *ext, void *ctx)
{
	if (!pcache_shim_locks_held)
		abort();
	return ext->seg == *(u32 *)ctx;
}

static void test_remove(void **state)
{
	struct counting_alloc ca = { 0 };
	struct pcache_extent_pool pool;
	struct pcache_index idx;
	u64 removed = 0;
	u32 seg = 1;

	(void)state;
	pcache_extent_pool_init(&pool);
	assert_int_equal(pcache_index_init(&idx, 256, 5), 0);
	put(&idx, &pool, 0, 10, 1, 0, 1);
	put(&idx, &pool, 10, 10, 2, 0, 2);
	put(&idx, &pool, 20, 20, 1, 8192, 3);	/* crosses 32 */
	put(&idx, &pool, 40, 10, 2, 8192, 4);
	assert_stats(&idx, 5, 50);

	/* Drop what lies in segment 1, from sector 5 on. */
	assert_int_equal(pcache_index_remove(&idx, 5, 100, match_seg, &seg,
					     &pool, &removed), 0);
	assert_int_equal(removed, 25);
	assert_int_equal(lookup(&idx, 0, 60), 6);
	assert_hit(0, 0, 5, 1, 0, 1);
	assert_gap(1, 5, 5);
	assert_hit(2, 10, 10, 2, 0, 2);
	assert_gap(3, 20, 20);
	assert_hit(4, 40, 10, 2, 8192, 4);
	assert_gap(5, 50, 10);
	assert_stats(&idx, 3, 25);
	assert_int_equal(pool.nr, 2);

	/* A hole in the middle of an extent needs one for the split. */
	pcache_extent_pool_trim(&pool, 0, free_extent, NULL);
	removed = 0;
	assert_int_equal(pcache_index_remove(&idx, 12, 3, NULL, NULL, &pool,
					     &removed), 1);
	assert_int_equal(removed, 0);
	assert_stats(&idx, 3, 25);
	assert_int_equal(pcache_index_remove_alloc(&idx, 12, 3, NULL, NULL,
						   &pool, alloc_extent, &ca,
						   &removed), 0);
	assert_int_equal(ca.calls, 1);
	assert_int_equal(removed, 3);
	assert_int_equal(lookup(&idx, 10, 10), 3);
	assert_hit(0, 10, 2, 2, 0, 2);
	assert_gap(1, 12, 3);
	assert_hit(2, 15, 5, 2, 5 * SECTOR_BYTES, 2);

	/* Nothing matching: nothing removed, nothing needed. */
	seg = 9;
	assert_int_equal(pcache_index_remove(&idx, 0, 256, match_seg, &seg,
					     &pool, NULL), 0);
	assert_stats(&idx, 4, 22);
	/* Everything (discard). */
	removed = 0;
	assert_int_equal(pcache_index_remove(&idx, 0, 256, NULL, NULL, &pool,
					     &removed), 0);
	assert_int_equal(removed, 22);
	assert_stats(&idx, 0, 0);
	assert_int_equal(pool.nr, 4);
	teardown_index(&idx, &pool);
}

/*
 * pcache_index_drop(): an extent of the segment sticking out of the range
 * at both ends goes whole, with no extent from the pool; other segments'
 * extents stay.
 */
static void test_drop(void **state)
{
	struct pcache_extent_pool pool;
	struct pcache_index idx;
	u64 removed = 0;
	u32 seg = 1;

	(void)state;
	pcache_extent_pool_init(&pool);
	assert_int_equal(pcache_index_init(&idx, 256, 5), 0);
	put(&idx, &pool, 0, 30, 1, 0, 1);
	put(&idx, &pool, 40, 20, 2, 0, 2);
	put(&idx, &pool, 64, 10, 1, 8192, 3);
	assert_stats(&idx, 3, 60);
	pcache_extent_pool_trim(&pool, 0, free_extent, NULL);

	/* The middle of segment 1's first extent: all of it goes. */
	assert_int_equal(pcache_index_drop(&idx, 10, 5, match_seg, &seg,
					   &pool, &removed), 0);
	assert_int_equal(removed, 30);
	assert_int_equal(pool.nr, 1);
	assert_int_equal(lookup(&idx, 0, 80), 5);
	assert_gap(0, 0, 40);
	assert_hit(1, 40, 20, 2, 0, 2);
	assert_gap(2, 60, 4);
	assert_hit(3, 64, 10, 1, 8192, 3);
	assert_gap(4, 74, 6);

	/*
	 * Over two partitions: segment 2's extent stays, segment 1's goes
	 * whole though it ends past the range.
	 */
	removed = 0;
	assert_int_equal(pcache_index_drop(&idx, 50, 20, match_seg, &seg,
					   &pool, &removed), 0);
	assert_int_equal(removed, 10);
	assert_stats(&idx, 1, 20);
	assert_int_equal(pcache_index_drop(&idx, 250, 10, NULL, NULL, &pool,
					   NULL), -EINVAL);
	teardown_index(&idx, &pool);
}

/* A stale() that records the partition whose lock it runs under. */
struct stale_probe {
	struct pcache_index *idx;
	u32 held[8];			/* the partition of each call */
	unsigned int calls;
	unsigned int stale_from;	/* calls from this one on say stale */
};

static bool stale_probe(void *ctx)
{
	struct stale_probe *p = ctx;
	unsigned int held = 0;
	u32 i;

	assert_int_equal(pcache_shim_locks_held, 1);
	assert_true(p->calls < ARRAY_SIZE(p->held));
	/* Error-checking mutexes: taking one this thread holds says so. */
	for (i = 0; i < p->idx->nr_parts; i++) {
		int ret = pthread_mutex_lock(&p->idx->parts[i].lock.mutex);

		if (ret == EDEADLK) {
			p->held[p->calls] = i;
			held++;
		} else {
			assert_int_equal(ret, 0);
			pthread_mutex_unlock(&p->idx->parts[i].lock.mutex);
		}
	}
	assert_int_equal(held, 1);
	return p->calls++ >= p->stale_from;
}

/* Insert @k with stale_probe() saying stale from its call @stale_from on. */
static int insert_probed(struct pcache_index *idx, struct pcache_key *k,
			 struct pcache_extent_pool *pool, void *alloc_ctx,
			 struct stale_probe *probe, unsigned int stale_from)
{
	probe->calls = 0;
	probe->stale_from = stale_from;
	return pcache_index_insert_unless(idx, k, pool, alloc_extent, alloc_ctx,
					  stale_probe, probe);
}

/*
 * pcache_index_insert_or_cut(): in the partitions where stale() says so,
 * the key cuts the older extents as ever but fills no hole; newer extents
 * stay; the partitions before are inserted in full.
 */
static void test_insert_or_cut(void **state)
{
	struct pcache_extent_pool pool;
	struct pcache_index idx;
	struct stale_probe probe = { .idx = &idx, .stale_from = 1 };
	struct pcache_key k;
	u64 replaced = 0;

	(void)state;
	pcache_extent_pool_init(&pool);
	assert_int_equal(pcache_index_init(&idx, 1024, 5), 0);
	put(&idx, &pool, 0, 16, 2, 0, 5);	/* older */
	put(&idx, &pool, 40, 8, 3, 0, 20);	/* newer */
	put(&idx, &pool, 60, 10, 4, 0, 6);	/* older, over 64 */
	/* Enough for every partition at the first try: one call each. */
	pool_fill(&pool, 8);

	/* 8-32 in full, then 32-64 and 64-68 stale. */
	k = key(8, 60, 1, 0, 10);
	assert_int_equal(pcache_index_insert_or_cut(&idx, &k, &pool,
						    alloc_extent, NULL,
						    &replaced, stale_probe,
						    &probe), 0);
	assert_int_equal(probe.calls, 3);
	assert_int_equal(probe.held[0], 0);
	assert_int_equal(probe.held[1], 1);
	assert_int_equal(probe.held[2], 2);
	assert_int_equal(replaced, 8 + 4 + 4);
	assert_int_equal(lookup(&idx, 0, 96), 7);
	assert_hit(0, 0, 8, 2, 0, 5);
	assert_hit(1, 8, 24, 1, 0, 10);
	assert_gap(2, 32, 8);
	assert_hit(3, 40, 8, 3, 0, 20);
	assert_gap(4, 48, 20);
	assert_hit(5, 68, 2, 4, 8 * SECTOR_BYTES, 6);
	assert_gap(6, 70, 26);
	assert_stats(&idx, 4, 8 + 24 + 8 + 2);
	assert_invariants(&idx);

	/* Stale everywhere over an extent it splits: two pieces, no key. */
	replaced = 0;
	probe.calls = 0;
	probe.stale_from = 0;
	k = key(2, 4, 1, 0, 11);
	assert_int_equal(pcache_index_insert_or_cut(&idx, &k, &pool,
						    alloc_extent, NULL,
						    &replaced, stale_probe,
						    &probe), 0);
	assert_int_equal(replaced, 4);
	assert_int_equal(lookup(&idx, 0, 8), 3);
	assert_hit(0, 0, 2, 2, 0, 5);
	assert_gap(1, 2, 4);
	assert_hit(2, 6, 2, 2, 6 * SECTOR_BYTES, 5);
	assert_invariants(&idx);
	teardown_index(&idx, &pool);
}

/*
 * pcache_index_insert_unless(): stale() is asked under each partition's
 * lock before anything changes there; from the first partition it says
 * stale, nothing more goes in, and the partitions before keep the key.
 */
static void test_insert_unless(void **state)
{
	struct pcache_extent_pool pool;
	struct pcache_index idx;
	struct stale_probe probe = { .idx = &idx };
	struct counting_alloc ca = { 0 };
	struct pcache_key k;

	(void)state;
	pcache_extent_pool_init(&pool);
	assert_int_equal(pcache_index_init(&idx, 1024, 5), 0);
	put(&idx, &pool, 40, 8, 2, 0, 5);
	/* Enough for every partition at the first try: one call each. */
	pool_fill(&pool, 8);

	/* Stale at once: nothing at all. */
	k = key(0, 8, 1, 0, 0);
	assert_int_equal(insert_probed(&idx, &k, &pool, NULL, &probe, 0),
			 -ESTALE);
	assert_int_equal(probe.calls, 1);
	assert_int_equal(probe.held[0], 0);
	assert_int_equal(lookup(&idx, 0, 8), 1);
	assert_gap(0, 0, 8);
	assert_stats(&idx, 1, 8);

	/* Over three partitions (20-32, 32-64, 64-70), stale from the second. */
	k = key(20, 50, 1, 0, 0);
	assert_int_equal(insert_probed(&idx, &k, &pool, NULL, &probe, 1),
			 -ESTALE);
	assert_int_equal(probe.calls, 2);
	assert_int_equal(probe.held[0], 0);
	assert_int_equal(probe.held[1], 1);
	assert_int_equal(lookup(&idx, 20, 50), 4);
	assert_hit(0, 20, 12, 1, 0, 0);
	assert_gap(1, 32, 8);
	assert_hit(2, 40, 8, 2, 0, 5);
	assert_gap(3, 48, 22);
	assert_invariants(&idx);

	/* Never stale: the holes are filled, the newer extent stays. */
	assert_int_equal(insert_probed(&idx, &k, &pool, NULL, &probe, 8), 0);
	assert_int_equal(probe.calls, 3);
	assert_int_equal(probe.held[2], 2);
	assert_int_equal(lookup(&idx, 20, 50), 5);
	assert_hit(0, 20, 12, 1, 0, 0);
	assert_hit(1, 32, 8, 1, 12 * SECTOR_BYTES, 0);
	assert_hit(2, 40, 8, 2, 0, 5);
	assert_hit(3, 48, 16, 1, 28 * SECTOR_BYTES, 0);
	assert_hit(4, 64, 6, 1, 44 * SECTOR_BYTES, 0);
	assert_invariants(&idx);

	/* Short of extents: asked again under the lock after each refill. */
	pcache_extent_pool_trim(&pool, 0, free_extent, NULL);
	k = key(100, 70, 3, 0, 0);	/* 100-128, 128-160, 160-170 */
	assert_int_equal(insert_probed(&idx, &k, &pool, &ca, &probe, 8), 0);
	assert_int_equal(ca.calls, 3);
	assert_int_equal(probe.calls, 6);
	assert_int_equal(probe.held[0], 3);
	assert_int_equal(probe.held[1], 3);
	assert_int_equal(probe.held[5], 5);
	assert_int_equal(lookup(&idx, 100, 70), 3);
	assert_invariants(&idx);
	teardown_index(&idx, &pool);
}

static void test_pool_refill(void **state)
{
	struct counting_alloc ca = { 0 };
	struct pcache_extent_pool pool;
	struct pcache_index idx;
	struct pcache_key k;
	unsigned int frees = 0;

	(void)state;
	pcache_extent_pool_init(&pool);
	assert_int_equal(pcache_index_init(&idx, 1024, 5), 0);

	/* An empty pool: one allocation for a plain insertion... */
	k = key(0, 8, 1, 0, 10);
	assert_int_equal(pcache_index_insert_alloc(&idx, &k, &pool,
						   alloc_extent, &ca, NULL), 0);
	assert_int_equal(ca.calls, 1);
	assert_int_equal(pool.nr, 0);
	/* ...two for a split... */
	k = key(2, 2, 1, 0, 11);
	assert_int_equal(pcache_index_insert_alloc(&idx, &k, &pool,
						   alloc_extent, &ca, NULL), 0);
	assert_int_equal(ca.calls, 3);
	/* ...none to overwrite an extent exactly (it is reused)... */
	k = key(2, 2, 1, 0, 12);
	assert_int_equal(pcache_index_insert_alloc(&idx, &k, &pool,
						   alloc_extent, &ca, NULL), 0);
	assert_int_equal(ca.calls, 3);
	/* ...and one per hole for an old key under newer extents. */
	put(&idx, &pool, 20, 2, 2, 0, 20);
	put(&idx, &pool, 25, 2, 2, 0, 21);
	ca.calls = 0;
	k = key(8, 24, 1, 0, 5);	/* holes 8-20, 22-25, 27-32 */
	assert_int_equal(pcache_index_insert_alloc(&idx, &k, &pool,
						   alloc_extent, &ca, NULL), 0);
	assert_int_equal(ca.calls, 3);
	assert_stats(&idx, 8, 32);

	/* Across partitions, one refill each: 32-64, 64-96, 96-100. */
	ca.calls = 0;
	k = key(32, 68, 1, 0, 30);
	assert_int_equal(pcache_index_insert_alloc(&idx, &k, &pool,
						   alloc_extent, &ca, NULL), 0);
	assert_int_equal(ca.calls, 3);

	/* An allocation failure stops between partitions. */
	ca.calls = 0;
	ca.fail_at = 2;
	k = key(100, 100, 3, 0, 31);	/* 100-128, 128-160, 160-192, 192-200 */
	assert_int_equal(pcache_index_insert_alloc(&idx, &k, &pool,
						   alloc_extent, &ca, NULL), -ENOMEM);
	assert_int_equal(lookup(&idx, 100, 100), 2);
	assert_hit(0, 100, 28, 3, 0, 31);
	assert_gap(1, 128, 72);
	ca.fail_at = 0;
	assert_int_equal(pcache_index_insert_alloc(&idx, &k, &pool,
						   alloc_extent, &ca, NULL), 0);
	assert_int_equal(lookup(&idx, 100, 100), 4);
	assert_stats(&idx, 15, 200);

	pcache_index_exit(&idx, free_extent, &frees);
	assert_int_equal(frees, 15);
	assert_int_equal(pool.nr, 0);	/* the retry reused its own piece */
	assert_int_equal(live_extents, 0);
}

static void test_pool(void **state)
{
	struct pcache_extent_pool pool;
	unsigned int frees = 0;

	(void)state;
	pcache_extent_pool_init(&pool);
	assert_null(pcache_extent_pool_get(&pool));
	pool_fill(&pool, 5);
	assert_int_equal(pool.nr, 5);
	pcache_extent_pool_trim(&pool, 2, free_extent, &frees);
	assert_int_equal(pool.nr, 2);
	assert_int_equal(frees, 3);
	free_extent(pcache_extent_pool_get(&pool), NULL);
	free_extent(pcache_extent_pool_get(&pool), NULL);
	assert_null(pcache_extent_pool_get(&pool));
	assert_int_equal(pool.nr, 0);
}

/* ---- randomized comparison with a per-sector model ---- */

static u64 rng_state;

static u64 rnd(void)
{
	/* splitmix64 */
	u64 z = (rng_state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static u64 rnd_below(u64 n)
{
	return rnd() % n;
}

static u64 test_seed(void)
{
	static u64 seed;
	static bool chosen;
	const char *env;

	if (chosen)
		return seed;
	env = getenv("PCACHE_TEST_SEED");
	if (env && *env)
		seed = strtoull(env, NULL, 0);
	else
		seed = (u64)time(NULL) ^ ((u64)clock() << 20);
	chosen = true;
	printf("test_index: PCACHE_TEST_SEED=%llu\n", (unsigned long long)seed);
	fflush(stdout);
	return seed;
}

static unsigned long test_ops(void)
{
	const char *env = getenv("INDEX_OPS");

	return env && *env ? strtoul(env, NULL, 0) : 200000;
}

struct model_sector {
	bool valid;
	u32 seg;
	u32 off;	/* byte offset in the segment of this very sector */
	u32 flags;
	u64 seq;
};

struct model {
	struct model_sector *s;
	u64 nr;
};

static unsigned long cur_op;
static const char *cur_what;

#define CHECK(cond, fmt, ...)						\
	do {								\
		if (!(cond))						\
			fail_msg("seed %llu op %lu (%s): " fmt,		\
				 (unsigned long long)test_seed(), cur_op,	\
				 cur_what, ##__VA_ARGS__);		\
	} while (0)

/* Returns the sectors of older data the key replaces. */
static u64 model_insert(struct model *m, const struct pcache_key *k)
{
	u64 i, replaced = 0;

	for (i = 0; i < k->len; i++) {
		struct model_sector *s = &m->s[k->start + i];

		if (s->valid && s->seq > k->seq)
			continue;
		if (s->valid)
			replaced++;
		s->valid = true;
		s->seg = k->seg;
		s->off = k->seg_off + (u32)(i * SECTOR_BYTES);
		s->flags = k->flags;
		s->seq = k->seq;
	}
	return replaced;
}

/* What the random removals match on: whole-extent properties only. */
struct rmatch {
	int kind;	/* 0 all, 1 segment, 2 odd seq, 3 seq below */
	u32 seg;
	u64 seq;
};

static bool rmatch_fn(const struct pcache_extent *ext, void *ctx)
{
	struct rmatch *rm = ctx;

	switch (rm->kind) {
	case 1:
		return ext->seg == rm->seg;
	case 2:
		return ext->seq & 1;
	default:
		return ext->seq < rm->seq;
	}
}

static u64 model_remove(struct model *m, u64 start, u32 len,
			struct rmatch *rm)
{
	u64 i, n = 0;

	for (i = start; i < start + len; i++) {
		struct model_sector *s = &m->s[i];
		struct pcache_extent fake = {
			.seg = s->seg, .seq = s->seq, .flags = s->flags,
		};

		if (!s->valid || (rm->kind && !rmatch_fn(&fake, rm)))
			continue;
		s->valid = false;
		n++;
	}
	return n;
}

/* Every extent agrees with the model, and covers all it holds. */
static void model_compare(struct pcache_index *idx, struct model *m)
{
	u64 covered = 0, valid = 0, i;
	const char *why = check_invariants(idx);
	u32 p;

	CHECK(!why, "%s", why);
	for (p = 0; p < idx->nr_parts; p++) {
		struct rb_node *node;

		for (node = rb_first(&idx->parts[p].root); node;
		     node = rb_next(node)) {
			struct pcache_extent *e =
				rb_entry(node, struct pcache_extent, node);

			for (i = 0; i < e->len; i++) {
				struct model_sector *s = &m->s[e->start + i];

				CHECK(s->valid && s->seq == e->seq &&
				      s->seg == e->seg && s->flags == e->flags &&
				      s->off == e->seg_off + i * SECTOR_BYTES,
				      "sector %llu of extent [%llu,+%u) seq %llu",
				      (unsigned long long)(e->start + i),
				      (unsigned long long)e->start, e->len,
				      (unsigned long long)e->seq);
			}
			covered += e->len;
		}
	}
	for (i = 0; i < m->nr; i++)
		valid += m->s[i].valid;
	CHECK(covered == valid, "index holds %llu sectors, model %llu",
	      (unsigned long long)covered, (unsigned long long)valid);
}

/* A lookup, piece by piece against the model. */
static void model_lookup(struct pcache_index *idx, struct model *m,
			 u64 start, u32 len)
{
	struct recorder r = { .p = pieces, .max = MAX_PIECES };
	u64 pos = start, i;
	size_t n;
	int ret;

	if (rnd_below(8) == 0) {
		r.stop_after = 1 + rnd_below(4);
		r.stop_ret = 1;
	}
	ret = pcache_index_lookup(idx, start, len, record, &r);
	CHECK(ret == (r.stop_after && r.n == r.stop_after ? 1 : 0),
	      "lookup returned %d", ret);
	for (n = 0; n < r.n; n++) {
		struct piece *p = &pieces[n];

		CHECK(p->start == pos && p->len >= 1 &&
		      p->start + p->len <= start + len,
		      "piece %zu [%llu,+%u) at %llu", n,
		      (unsigned long long)p->start, p->len,
		      (unsigned long long)pos);
		if (!p->hit) {
			CHECK(n == 0 || pieces[n - 1].hit,
			      "two gaps in a row at %llu",
			      (unsigned long long)p->start);
			CHECK(!p->seg_off, "gap with a seg_off");
		} else {
			CHECK(p->ext_start <= p->start &&
			      p->start + p->len <= p->ext_start + p->ext_len,
			      "hit outside its extent");
			CHECK(p->start >> idx->part_shift ==
			      (p->start + p->len - 1) >> idx->part_shift,
			      "hit across a partition boundary");
			/* Maximal: a hit ends at its extent's end or the range's. */
			CHECK(p->start + p->len == p->ext_start + p->ext_len ||
			      p->start + p->len == start + len,
			      "hit cut short");
		}
		for (i = 0; i < p->len; i++) {
			struct model_sector *s = &m->s[p->start + i];

			if (!p->hit) {
				CHECK(!s->valid, "sector %llu is cached, got a gap",
				      (unsigned long long)(p->start + i));
				continue;
			}
			CHECK(s->valid && s->seq == p->seq && s->seg == p->seg &&
			      s->flags == p->flags &&
			      s->off == p->seg_off + i * SECTOR_BYTES,
			      "sector %llu: hit seq %llu seg %u off %u, model %d seq %llu seg %u off %u",
			      (unsigned long long)(p->start + i),
			      (unsigned long long)p->seq, p->seg,
			      (u32)(p->seg_off + i * SECTOR_BYTES), s->valid,
			      (unsigned long long)s->seq, s->seg, s->off);
		}
		pos += p->len;
	}
	if (!r.stop_after || r.n < r.stop_after)
		CHECK(pos == start + len, "lookup stopped at %llu",
		      (unsigned long long)pos);
}

static void random_range(u64 nr, u64 *start, u32 *len)
{
	u64 max_len;

	*start = rnd_below(nr);
	max_len = nr - *start;
	switch (rnd_below(4)) {
	case 0:
		*len = 1 + rnd_below(min_t(u64, max_len, 4));
		break;
	case 1:
	case 2:
		*len = 1 + rnd_below(min_t(u64, max_len, 40));
		break;
	default:
		*len = 1 + rnd_below(min_t(u64, max_len, 400));
	}
}

/* @insert_pct of the operations insert, @lookup_pct look up, the rest remove. */
static void random_run(u64 nr_sectors, u32 part_shift, unsigned long ops,
		       unsigned int insert_pct, unsigned int lookup_pct)
{
	struct counting_alloc ca = { 0 };
	struct pcache_extent_pool pool;
	struct pcache_index idx;
	struct model m;
	u64 next_seq = 1000, ext, sec;
	unsigned long nr_insert = 0, nr_lookup = 0, nr_remove = 0;
	unsigned int lack;
	int ret;

	rng_state = test_seed() ^ (nr_sectors << 8) ^ part_shift;
	pcache_extent_pool_init(&pool);
	assert_int_equal(pcache_index_init(&idx, nr_sectors, part_shift), 0);
	m.nr = nr_sectors;
	m.s = calloc(nr_sectors, sizeof(*m.s));
	assert_non_null(m.s);

	for (cur_op = 0; cur_op < ops; cur_op++) {
		u64 start, removed = 0, expect;
		u32 len;
		unsigned int dice = rnd_below(100);
		bool refilled = false;

		random_range(nr_sectors, &start, &len);
		if (dice < insert_pct) {
			struct pcache_key k = {
				.start = start, .len = len,
				.seg = rnd_below(8),
				.seg_off = rnd_below(2048) * SECTOR_BYTES,
				.flags = rnd_below(2),
			};

			/*
			 * Mostly in order; sometimes a little or a lot older
			 * (replay, or writes completing out of order), and now
			 * and then equal to an existing one.
			 */
			if (rnd_below(4))
				k.seq = next_seq++;
			else if (rnd_below(2))
				k.seq = next_seq - 1 - rnd_below(32);
			else
				k.seq = next_seq - 1 - rnd_below(next_seq - 1);
			cur_what = "insert";
			if (rnd_below(2)) {
				u64 replaced = 0;

				ret = pcache_index_insert_alloc(&idx, &k, &pool,
								alloc_extent,
								&ca, &replaced);
				expect = model_insert(&m, &k);
				CHECK(replaced == expect,
				      "replaced %llu, model %llu",
				      (unsigned long long)replaced,
				      (unsigned long long)expect);
			} else {
				/* The raw API: add what it asks for, again. */
				pcache_extent_pool_trim(&pool, 0, free_extent,
							NULL);
				while ((ret = pcache_index_insert(&idx, &k,
								  &pool)) > 0) {
					pool_fill(&pool, ret);
					refilled = true;
				}
				model_insert(&m, &k);
			}
			CHECK(ret == 0, "insert returned %d", ret);
			nr_insert++;
		} else if (dice < insert_pct + lookup_pct) {
			cur_what = "lookup";
			model_lookup(&idx, &m, start, len);
			nr_lookup++;
		} else {
			struct rmatch rm = {
				.kind = rnd_below(4),
				.seg = rnd_below(8),
				.seq = next_seq - rnd_below(next_seq / 4 + 1),
			};

			cur_what = "remove";
			expect = model_remove(&m, start, len, &rm);
			if (rnd_below(2)) {
				ret = pcache_index_remove_alloc(&idx, start,
								len,
								rm.kind ? rmatch_fn : NULL,
								&rm, &pool,
								alloc_extent,
								&ca, &removed);
			} else {
				pcache_extent_pool_trim(&pool, 0, free_extent,
							NULL);
				while ((ret = pcache_index_remove(&idx, start,
								  len,
								  rm.kind ? rmatch_fn : NULL,
								  &rm, &pool,
								  &removed)) > 0) {
					pool_fill(&pool, ret);
					refilled = true;
				}
			}
			CHECK(ret == 0, "remove returned %d", ret);
			CHECK(removed == expect, "removed %llu, model %llu",
			      (unsigned long long)removed,
			      (unsigned long long)expect);
			nr_remove++;
		}
		/*
		 * Within one partition, starting from an empty pool, the
		 * count asked for is exact: nothing is left over.
		 */
		if (refilled && start >> part_shift ==
		    (start + len - 1) >> part_shift)
			CHECK(pool.nr == 0, "asked for %u extents too many",
			      pool.nr);
		/* The caller keeps a few spares, frees the rest. */
		lack = rnd_below(4);
		pcache_extent_pool_trim(&pool, lack, free_extent, NULL);

		/* Invariants, and every extent against the model, every time. */
		cur_what = "compare";
		model_compare(&idx, &m);
	}
	pcache_index_stats(&idx, &ext, &sec);
	printf("test_index: %llu sectors, shift %u: %lu ops (%lu inserts, %lu lookups, %lu removals), %llu extents, %llu sectors cached at the end\n",
	       (unsigned long long)nr_sectors, part_shift, ops, nr_insert,
	       nr_lookup, nr_remove, (unsigned long long)ext,
	       (unsigned long long)sec);
	teardown_index(&idx, &pool);
	free(m.s);
	assert_int_equal(live_extents, 0);
}

static void test_random_small_parts(void **state)
{
	(void)state;
	/* 32-sector partitions, the last one short: boundaries everywhere. */
	random_run(3000, 5, test_ops(), 55, 30);
}

static void test_random_large_parts(void **state)
{
	(void)state;
	random_run(4096, 10, test_ops() / 2, 55, 30);
}

static void test_random_sparse(void **state)
{
	(void)state;
	/* As many removals as insertions: many gaps, few big extents. */
	random_run(2500, 4, test_ops() / 2, 35, 30);
}

/* ---- insertion order does not matter ---- */

static void random_keys(struct pcache_key *keys, size_t n, u64 nr_sectors)
{
	size_t i;

	for (i = 0; i < n; i++) {
		random_range(nr_sectors, &keys[i].start, &keys[i].len);
		keys[i].seg = rnd_below(16);
		keys[i].seg_off = rnd_below(4096) * SECTOR_BYTES;
		keys[i].flags = PCACHE_EXTENT_DIRTY;
		keys[i].seq = i + 1;		/* unique */
	}
}

static void shuffle(struct pcache_key *keys, size_t n)
{
	size_t i;

	for (i = n - 1; i > 0; i--) {
		size_t j = rnd_below(i + 1);
		struct pcache_key t = keys[i];

		keys[i] = keys[j];
		keys[j] = t;
	}
}

#define REPLAY_KEYS 20000
#define REPLAY_SECTORS 5000

static void assert_same_index(struct pcache_index *a, struct pcache_index *b)
{
	static struct ext_copy ea[REPLAY_SECTORS], eb[REPLAY_SECTORS];
	size_t na = dump(a, ea, REPLAY_SECTORS);
	size_t nb = dump(b, eb, REPLAY_SECTORS);

	assert_invariants(a);
	assert_invariants(b);
	assert_int_equal(na, nb);
	assert_memory_equal(ea, eb, na * sizeof(ea[0]));
}

static void test_replay_order(void **state)
{
	struct pcache_key *keys = calloc(REPLAY_KEYS, sizeof(*keys));
	struct pcache_extent_pool pool;
	struct pcache_index live, replay;
	size_t i, round;

	(void)state;
	assert_non_null(keys);
	rng_state = test_seed() ^ 0x5eed;
	pcache_extent_pool_init(&pool);
	for (round = 0; round < 3; round++) {
		random_keys(keys, REPLAY_KEYS, REPLAY_SECTORS);
		assert_int_equal(pcache_index_init(&live, REPLAY_SECTORS, 6), 0);
		assert_int_equal(pcache_index_init(&replay, REPLAY_SECTORS, 6),
				 0);
		for (i = 0; i < REPLAY_KEYS; i++)
			put(&live, &pool, keys[i].start, keys[i].len,
			    keys[i].seg, keys[i].seg_off, keys[i].seq);
		shuffle(keys, REPLAY_KEYS);
		for (i = 0; i < REPLAY_KEYS; i++) {
			/* Some keys twice, as a replay may see them. */
			put(&replay, &pool, keys[i].start, keys[i].len,
			    keys[i].seg, keys[i].seg_off, keys[i].seq);
			if (!rnd_below(10)) {
				size_t j = rnd_below(i + 1);

				put(&replay, &pool, keys[j].start, keys[j].len,
				    keys[j].seg, keys[j].seg_off, keys[j].seq);
			}
		}
		assert_same_index(&live, &replay);
		pcache_index_exit(&live, free_extent, NULL);
		pcache_index_exit(&replay, free_extent, NULL);
	}
	pcache_extent_pool_trim(&pool, 0, free_extent, NULL);
	free(keys);
	assert_int_equal(live_extents, 0);
}

/* ---- threads: concurrent inserters and readers ---- */

#define THREAD_KEYS 30000
#define THREAD_SECTORS 2048
#define NR_WRITERS 3

struct thread_arg {
	struct pcache_index *idx;
	struct pcache_key *keys;
	size_t first, step, n;
	u64 seed;
	volatile bool *stop;
	unsigned long lookups;
};

static int check_piece(void *ctx, u64 start, u32 len,
		       const struct pcache_extent *hit, u32 seg_off)
{
	(void)ctx;
	if (!len || (hit && (start < hit->start ||
			     start + len > hit->start + hit->len ||
			     seg_off != hit->seg_off +
				(start - hit->start) * SECTOR_BYTES)))
		abort();
	return 0;
}

static void *writer(void *p)
{
	struct thread_arg *a = p;
	struct pcache_extent_pool pool;
	size_t i;

	pcache_extent_pool_init(&pool);
	for (i = a->first; i < a->n; i += a->step) {
		if (pcache_index_insert_alloc(a->idx, &a->keys[i], &pool,
					      alloc_extent, NULL, NULL))
			abort();
		if (i % 64 == 0) {
			u64 s, e;

			pcache_index_stats(a->idx, &s, &e);
			pcache_extent_pool_trim(&pool, 2, free_extent, NULL);
		}
	}
	pcache_extent_pool_trim(&pool, 0, free_extent, NULL);
	return NULL;
}

static void *reader(void *p)
{
	struct thread_arg *a = p;
	u64 state = a->seed;

	while (!*a->stop) {
		u64 start, len;

		state = state * 6364136223846793005ull + 1442695040888963407ull;
		start = (state >> 33) % THREAD_SECTORS;
		len = 1 + (state >> 13) % min_t(u64, 300, THREAD_SECTORS - start);
		if (pcache_index_lookup(a->idx, start, len, check_piece, NULL))
			abort();
		a->lookups++;
	}
	return NULL;
}

static void test_threads(void **state)
{
	struct pcache_key *keys = calloc(THREAD_KEYS, sizeof(*keys));
	struct pcache_extent_pool pool;
	struct pcache_index idx, ref;
	struct thread_arg w[NR_WRITERS], r;
	pthread_t wt[NR_WRITERS], rt;
	volatile bool stop = false;
	size_t i;

	(void)state;
	assert_non_null(keys);
	rng_state = test_seed() ^ 0x7417;
	random_keys(keys, THREAD_KEYS, THREAD_SECTORS);
	shuffle(keys, THREAD_KEYS);
	assert_int_equal(pcache_index_init(&idx, THREAD_SECTORS, 7), 0);
	assert_int_equal(pcache_index_init(&ref, THREAD_SECTORS, 7), 0);

	r = (struct thread_arg){ .idx = &idx, .seed = rnd(), .stop = &stop };
	assert_int_equal(pthread_create(&rt, NULL, reader, &r), 0);
	for (i = 0; i < NR_WRITERS; i++) {
		w[i] = (struct thread_arg){
			.idx = &idx, .keys = keys, .first = i,
			.step = NR_WRITERS, .n = THREAD_KEYS,
		};
		assert_int_equal(pthread_create(&wt[i], NULL, writer, &w[i]), 0);
	}
	for (i = 0; i < NR_WRITERS; i++)
		assert_int_equal(pthread_join(wt[i], NULL), 0);
	stop = true;
	assert_int_equal(pthread_join(rt, NULL), 0);

	/* Whatever the interleaving, the result is the one of seq order. */
	pcache_extent_pool_init(&pool);
	for (i = 0; i < THREAD_KEYS; i++)
		put(&ref, &pool, keys[i].start, keys[i].len, keys[i].seg,
		    keys[i].seg_off, keys[i].seq);
	assert_same_index(&idx, &ref);
	printf("test_index: threads: %d writers, %lu lookups meanwhile\n",
	       NR_WRITERS, r.lookups);
	pcache_index_exit(&idx, free_extent, NULL);
	pcache_index_exit(&ref, free_extent, NULL);
	pcache_extent_pool_trim(&pool, 0, free_extent, NULL);
	free(keys);
	assert_int_equal(live_extents, 0);
}

/* A failed test leaks its extents: let the next one count from zero. */
static int forget_leaks(void **state)
{
	(void)state;
	live_extents = 0;
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_init, forget_leaks),
		cmocka_unit_test_setup(test_pool, forget_leaks),
		cmocka_unit_test_setup(test_bad_args, forget_leaks),
		cmocka_unit_test_setup(test_trim_front_back, forget_leaks),
		cmocka_unit_test_setup(test_split_middle, forget_leaks),
		cmocka_unit_test_setup(test_full_cover, forget_leaks),
		cmocka_unit_test_setup(test_rewrite_in_place, forget_leaks),
		cmocka_unit_test_setup(test_older_under_newer, forget_leaks),
		cmocka_unit_test_setup(test_equal_seq, forget_leaks),
		cmocka_unit_test_setup(test_partition_boundary, forget_leaks),
		cmocka_unit_test_setup(test_lookup_sequence, forget_leaks),
		cmocka_unit_test_setup(test_remove, forget_leaks),
		cmocka_unit_test_setup(test_drop, forget_leaks),
		cmocka_unit_test_setup(test_pool_refill, forget_leaks),
		cmocka_unit_test_setup(test_insert_unless, forget_leaks),
		cmocka_unit_test_setup(test_insert_or_cut, forget_leaks),
		cmocka_unit_test_setup(test_replay_order, forget_leaks),
		cmocka_unit_test_setup(test_threads, forget_leaks),
		cmocka_unit_test_setup(test_random_small_parts, forget_leaks),
		cmocka_unit_test_setup(test_random_large_parts, forget_leaks),
		cmocka_unit_test_setup(test_random_sparse, forget_leaks),
	};

	test_seed();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
