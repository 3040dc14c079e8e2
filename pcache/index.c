// SPDX-License-Identifier: GPL-2.0
/*
 * The cache's index in DRAM (see index.h for the rules it keeps).
 *
 * Every change to a partition is done in two passes under its lock: the
 * first only counts the extents the change needs, the second makes it.  If
 * the pool cannot cover the count, the partition is left as it was and the
 * caller is told how many extents to add, so that it can allocate with the
 * lock dropped (an allocation on the I/O path may sleep, and must not fail)
 * and try again.  The second pass can then never run out half way, and no
 * partition is ever seen half changed.  The insertions most writes are
 * (change_part_fast()) touch at most one older extent: they check the pool
 * first and make the change in one pass.
 */
#include <linux/errno.h>
#include <linux/kernel.h>
#include <linux/rbtree.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/types.h>

#include "index.h"

void pcache_extent_pool_put(struct pcache_extent_pool *pool,
			    struct pcache_extent *ext)
{
	ext->next = pool->head;
	pool->head = ext;
	pool->nr++;
}

struct pcache_extent *pcache_extent_pool_get(struct pcache_extent_pool *pool)
{
	struct pcache_extent *ext = pool->head;

	if (ext) {
		pool->head = ext->next;
		pool->nr--;
	}
	return ext;
}

void pcache_extent_pool_trim(struct pcache_extent_pool *pool,
			     unsigned int keep,
			     pcache_extent_free_t free_extent, void *ctx)
{
	while (pool->nr > keep)
		free_extent(pcache_extent_pool_get(pool), ctx);
}

static inline u64 ext_end(const struct pcache_extent *ext)
{
	return ext->start + ext->len;
}

static inline struct pcache_extent *ext_next(struct pcache_extent *ext)
{
	struct rb_node *node = rb_next(&ext->node);

	return node ? rb_entry(node, struct pcache_extent, node) : NULL;
}

/* Byte offset in the segment of @sector, for data that starts at @start. */
static inline u32 seg_off_at(u32 seg_off, u64 start, u64 sector)
{
	return seg_off + (u32)((sector - start) << PCACHE_INDEX_SECTOR_SHIFT);
}

/*
 * The extent holding @sector, else the first one after it, else NULL.  The
 * extents of a tree do not overlap, so their ends are sorted like their
 * starts and one descent finds it.
 */
static struct pcache_extent *first_from(struct pcache_index_part *part,
					u64 sector)
{
	struct rb_node *node = part->root.rb_node;
	struct pcache_extent *after = NULL;

	while (node) {
		struct pcache_extent *ext =
			rb_entry(node, struct pcache_extent, node);

		if (sector < ext->start) {
			after = ext;
			node = node->rb_left;
		} else if (sector >= ext_end(ext)) {
			node = node->rb_right;
		} else {
			return ext;
		}
	}
	return after;
}

static void link_at(struct pcache_index_part *part, struct pcache_extent *new,
		    struct rb_node *parent, struct rb_node **link)
{
	rb_link_node(&new->node, parent, link);
	rb_insert_color(&new->node, &part->root);
	part->nr_extents++;
	part->nr_sectors += new->len;
}

static void link_extent(struct pcache_index_part *part,
			struct pcache_extent *new)
{
	struct rb_node **link = &part->root.rb_node;
	struct rb_node *parent = NULL;

	while (*link) {
		struct pcache_extent *ext =
			rb_entry(*link, struct pcache_extent, node);

		parent = *link;
		if (new->start < ext->start)
			link = &parent->rb_left;
		else
			link = &parent->rb_right;
	}
	link_at(part, new, parent, link);
}

/*
 * Link @new right after @prev in the order of the tree, without a descent
 * from the root: where it goes is the leftmost free spot of @prev's right
 * subtree.  The caller knows no extent lies between them.
 */
static void link_after(struct pcache_index_part *part,
		       struct pcache_extent *prev, struct pcache_extent *new)
{
	struct rb_node *parent = &prev->node;
	struct rb_node **link = &parent->rb_right;

	while (*link) {
		parent = *link;
		link = &parent->rb_left;
	}
	link_at(part, new, parent, link);
}

/* Link @new right before @next, or last in the tree when @next is NULL. */
static void link_before(struct pcache_index_part *part,
			struct pcache_extent *next, struct pcache_extent *new)
{
	struct rb_node *parent;
	struct rb_node **link;

	if (!next) {
		link_extent(part, new);
		return;
	}
	parent = &next->node;
	link = &parent->rb_left;
	while (*link) {
		parent = *link;
		link = &parent->rb_right;
	}
	link_at(part, new, parent, link);
}

/*
 * Split @ext at @at, inside it: its part from @at on becomes an extent of
 * its own from @pool, linked right after it.  The sectors cached stay the
 * same.
 */
static void split_at(struct pcache_index_part *part, struct pcache_extent *ext,
		     u64 at, struct pcache_extent_pool *pool)
{
	struct pcache_extent *tail = pcache_extent_pool_get(pool);

	*tail = *ext;
	tail->start = at;
	tail->len = ext_end(ext) - at;
	tail->seg_off = seg_off_at(ext->seg_off, ext->start, at);
	ext->len = at - ext->start;
	/* link_at() counts the tail again. */
	part->nr_sectors -= tail->len;
	link_after(part, ext, tail);
}

/*
 * What gives way to a change of [start, end) in one partition: for an
 * insertion, extents no newer than the key; for a removal, the extents the
 * caller's match() picks.
 */
struct index_change {
	u64 start;
	u64 end;
	const struct pcache_key *key;		/* insertion, else NULL */
	pcache_extent_match_t match;		/* removal; NULL: all */
	void *match_ctx;
	pcache_index_stale_t stale;		/* insertion; NULL: never */
	void *stale_ctx;
	bool stale_cuts;			/* stale: cut, else stop */
	bool whole;				/* removal: drop whole */
};

static bool gives_way(const struct index_change *c,
		      const struct pcache_extent *ext)
{
	/* An equal seq is the same key inserted again: replace it. */
	if (c->key)
		return ext->seq <= c->key->seq;
	return !c->match || c->match(ext, c->match_ctx);
}

/*
 * First pass, which changes nothing.  *@need: the extents the change takes
 * from the pool: one to split an extent sticking out at both ends of
 * [start, end), and for an insertion one per piece of the key, that is per
 * hole between the extents that do not give way.  *@dropped: the extents it
 * drops whole, which go to the pool before the key's pieces are taken.
 */
static void carve_count(struct pcache_index_part *part,
			const struct index_change *c, unsigned int *need,
			unsigned int *dropped)
{
	struct pcache_extent *ext;
	u64 pos = c->start;		/* start of the key's next piece */

	*need = 0;
	*dropped = 0;
	for (ext = first_from(part, c->start); ext && ext->start < c->end;
	     ext = ext_next(ext)) {
		if (!gives_way(c, ext)) {
			if (c->key && ext->start > pos)
				(*need)++;
			pos = max_t(u64, pos, ext_end(ext));
		} else if (c->whole) {
			(*dropped)++;
		} else if (ext->start < c->start && ext_end(ext) > c->end) {
			(*need)++;
		} else if (ext->start >= c->start && ext_end(ext) <= c->end) {
			(*dropped)++;
		}
	}
	if (c->key && pos < c->end)
		(*need)++;
}

/*
 * Second pass, first half: cut [start, end) out of every extent that gives
 * way.  An extent sticking out at both ends is split (which only happens
 * when it is the one extent overlapping, so nothing was dropped yet and the
 * pool holds the extent: carve_count() counted it).  Trimming an extent's
 * front moves its start, but never past another extent, so the tree stays
 * ordered without relinking.
 *
 * Return: the number of sectors removed from the index.
 */
static u64 carve(struct pcache_index_part *part,
		 const struct index_change *c, struct pcache_extent_pool *pool)
{
	struct pcache_extent *ext, *next;
	u64 removed = 0;

	for (ext = first_from(part, c->start); ext && ext->start < c->end;
	     ext = next) {
		u64 end = ext_end(ext);

		next = ext_next(ext);
		if (!gives_way(c, ext))
			continue;

		if (c->whole) {
			rb_erase(&ext->node, &part->root);
			part->nr_extents--;
			part->nr_sectors -= ext->len;
			removed += ext->len;
			pcache_extent_pool_put(pool, ext);
		} else if (ext->start < c->start && end > c->end) {
			split_at(part, ext, c->end, pool);
			ext->len = c->start - ext->start;
			part->nr_sectors -= c->end - c->start;
			removed += c->end - c->start;
			break;
		} else if (ext->start < c->start) {
			ext->len = c->start - ext->start;
			part->nr_sectors -= end - c->start;
			removed += end - c->start;
		} else if (end > c->end) {
			u32 cut = c->end - ext->start;

			ext->seg_off = seg_off_at(ext->seg_off, ext->start,
						  c->end);
			ext->start = c->end;
			ext->len -= cut;
			part->nr_sectors -= cut;
			removed += cut;
		} else {
			rb_erase(&ext->node, &part->root);
			part->nr_extents--;
			part->nr_sectors -= ext->len;
			removed += ext->len;
			pcache_extent_pool_put(pool, ext);
		}
	}
	return removed;
}

/* @ext holds the key's data from @sector on. */
static void take_key(struct pcache_extent *ext, const struct pcache_key *key,
		     u64 sector)
{
	ext->seg = key->seg;
	ext->seg_off = seg_off_at(key->seg_off, key->start, sector);
	ext->flags = key->flags;
	ext->seq = key->seq;
}

/* A piece of the key from the pool, for [start, end) of @c. */
static struct pcache_extent *key_piece(const struct index_change *c,
				       struct pcache_extent_pool *pool,
				       u64 start, u64 end)
{
	struct pcache_extent *piece = pcache_extent_pool_get(pool);

	piece->start = start;
	piece->len = end - start;
	take_key(piece, c->key, start);
	return piece;
}

/* Second pass of an insertion, second half: fill the holes with the key. */
static void fill(struct pcache_index_part *part,
		 const struct index_change *c, struct pcache_extent_pool *pool)
{
	struct pcache_extent *ext;
	u64 pos = c->start;

	ext = first_from(part, c->start);
	while (pos < c->end) {
		/* After carve(), every extent left in the range is newer. */
		u64 hole_end = ext && ext->start < c->end ? ext->start : c->end;

		/* The hole ends at @ext, or before it: nothing lies between. */
		if (hole_end > pos)
			link_before(part, ext,
				    key_piece(c, pool, pos, hole_end));
		if (hole_end == c->end)
			break;
		pos = ext_end(ext);
		ext = ext_next(ext);
	}
}

/*
 * The insertions that most writes are, done with one descent and no
 * second pass: a key over nothing is linked where it belongs; a key over
 * one older extent takes its place when it covers it exactly, and
 * otherwise cuts it back (at its front or its back) or splits it, the
 * key's piece linked beside it.  Anything else (several extents, a newer
 * one, a pool too short) takes the general path, which counts first.
 *
 * Return: true if @c was applied, false if it needs the general path.
 */
static bool change_part_fast(struct pcache_index_part *part,
			     const struct index_change *c,
			     struct pcache_extent_pool *pool, u64 *removed)
{
	struct pcache_extent *ext = first_from(part, c->start);
	u64 end, cut;

	if (!ext || ext->start >= c->end) {
		if (!pool->nr)
			return false;
		link_before(part, ext, key_piece(c, pool, c->start, c->end));
		return true;
	}
	if (!gives_way(c, ext))
		return false;
	end = ext_end(ext);
	if (ext->start == c->start && end == c->end) {
		take_key(ext, c->key, c->start);
		cut = ext->len;
	} else if (ext->start == c->start && end > c->end && pool->nr) {
		cut = c->end - c->start;
		ext->seg_off = seg_off_at(ext->seg_off, ext->start, c->end);
		ext->start = c->end;
		ext->len -= cut;
		part->nr_sectors -= cut;
		link_before(part, ext, key_piece(c, pool, c->start, c->end));
	} else if (ext->start < c->start &&
		   ((end == c->end && pool->nr) ||
		    (end > c->end && pool->nr >= 2))) {
		/* A split is a cut at the end, then a trim of the back. */
		if (end > c->end)
			split_at(part, ext, c->end, pool);
		cut = c->end - c->start;
		ext->len -= cut;
		part->nr_sectors -= cut;
		link_after(part, ext, key_piece(c, pool, c->start, c->end));
	} else {
		return false;
	}
	if (removed)
		*removed += cut;
	return true;
}

/*
 * Apply @c to the one partition it lies in, if the pool can cover it.
 *
 * Return: 0 when done, -ESTALE when the key went stale, else the number of
 * extents the pool lacks.
 */
static int change_part(struct pcache_index *idx, const struct index_change *c,
		       struct pcache_extent_pool *pool, u64 *removed)
{
	struct pcache_index_part *part;
	unsigned int need, dropped, have;
	bool fills = c->key;
	u64 sectors;

	part = &idx->parts[c->start >> idx->part_shift];
	spin_lock(&part->lock);
	if (c->stale && c->stale(c->stale_ctx)) {
		if (!c->stale_cuts) {
			spin_unlock(&part->lock);
			return -ESTALE;
		}
		fills = false;
	}
	if (fills && change_part_fast(part, c, pool, removed)) {
		spin_unlock(&part->lock);
		return 0;
	}
	carve_count(part, c, &need, &dropped);
	have = pool->nr + dropped;
	if (have < need) {
		spin_unlock(&part->lock);
		return need - have;
	}
	sectors = carve(part, c, pool);
	if (fills)
		fill(part, c, pool);
	spin_unlock(&part->lock);

	if (removed)
		*removed += sectors;
	return 0;
}

static bool range_ok(const struct pcache_index *idx, u64 start, u32 len)
{
	return len && start < idx->nr_sectors &&
	       len <= idx->nr_sectors - start;
}

static bool key_ok(const struct pcache_index *idx, const struct pcache_key *key)
{
	/* Every piece's seg_off must fit its u32: no wrap-around. */
	return range_ok(idx, key->start, key->len) &&
	       key->seg_off + ((u64)key->len << PCACHE_INDEX_SECTOR_SHIFT) <=
	       (u64)U32_MAX + 1;
}

/* End of the piece of [start, end) in the partition holding @start. */
static u64 part_end(const struct pcache_index *idx, u64 start, u64 end)
{
	u64 boundary = ((start >> idx->part_shift) + 1) << idx->part_shift;

	return min_t(u64, boundary, end);
}

/*
 * Apply @c, whose start and end span the whole range, partition by
 * partition.  With @alloc, refill the pool with no lock held whenever a
 * partition needs it and try that partition again; without, stop there.
 *
 * Return: 0, -ENOMEM if @alloc failed, -ESTALE if the key went stale, or
 * without @alloc the number of extents the pool lacks for the partition it
 * stopped at.
 */
static int apply_change(struct pcache_index *idx, struct index_change *c,
			struct pcache_extent_pool *pool,
			pcache_extent_alloc_t alloc, void *alloc_ctx,
			u64 *removed)
{
	u64 end = c->end;
	int lack;

	while (c->start < end) {
		c->end = part_end(idx, c->start, end);
		lack = change_part(idx, c, pool, removed);
		if (lack < 0)
			return lack;
		if (!lack) {
			c->start = c->end;
			continue;
		}
		if (!alloc)
			return lack;
		/* No lock is held here: alloc() may sleep. */
		while (lack--) {
			struct pcache_extent *ext = alloc(alloc_ctx);

			if (!ext)
				return -ENOMEM;
			pcache_extent_pool_put(pool, ext);
		}
	}
	return 0;
}

static int index_insert(struct pcache_index *idx,
			const struct pcache_key *key,
			struct pcache_extent_pool *pool,
			pcache_extent_alloc_t alloc, void *ctx, u64 *replaced,
			pcache_index_stale_t stale, void *stale_ctx,
			bool stale_cuts)
{
	struct index_change c = {
		.start = key->start,
		.end = key->start + key->len,
		.key = key,
		.stale = stale,
		.stale_ctx = stale_ctx,
		.stale_cuts = stale_cuts,
	};

	if (!key_ok(idx, key))
		return -EINVAL;
	return apply_change(idx, &c, pool, alloc, ctx, replaced);
}

int pcache_index_insert(struct pcache_index *idx, const struct pcache_key *key,
			struct pcache_extent_pool *pool)
{
	return index_insert(idx, key, pool, NULL, NULL, NULL, NULL, NULL,
			    false);
}

int pcache_index_insert_alloc(struct pcache_index *idx,
			      const struct pcache_key *key,
			      struct pcache_extent_pool *pool,
			      pcache_extent_alloc_t alloc, void *ctx,
			      u64 *replaced)
{
	return index_insert(idx, key, pool, alloc, ctx, replaced, NULL, NULL,
			    false);
}

int pcache_index_insert_unless(struct pcache_index *idx,
			       const struct pcache_key *key,
			       struct pcache_extent_pool *pool,
			       pcache_extent_alloc_t alloc, void *alloc_ctx,
			       pcache_index_stale_t stale, void *stale_ctx)
{
	return index_insert(idx, key, pool, alloc, alloc_ctx, NULL, stale,
			    stale_ctx, false);
}

int pcache_index_insert_or_cut(struct pcache_index *idx,
			       const struct pcache_key *key,
			       struct pcache_extent_pool *pool,
			       pcache_extent_alloc_t alloc, void *alloc_ctx,
			       u64 *replaced, pcache_index_stale_t stale,
			       void *stale_ctx)
{
	return index_insert(idx, key, pool, alloc, alloc_ctx, replaced, stale,
			    stale_ctx, true);
}

static int index_remove(struct pcache_index *idx, u64 start, u32 len,
			pcache_extent_match_t match, void *match_ctx,
			struct pcache_extent_pool *pool,
			pcache_extent_alloc_t alloc, void *alloc_ctx,
			u64 *removed)
{
	struct index_change c = {
		.start = start,
		.end = start + len,
		.match = match,
		.match_ctx = match_ctx,
	};

	if (!range_ok(idx, start, len))
		return -EINVAL;
	return apply_change(idx, &c, pool, alloc, alloc_ctx, removed);
}

int pcache_index_remove(struct pcache_index *idx, u64 start, u32 len,
			pcache_extent_match_t match, void *match_ctx,
			struct pcache_extent_pool *pool, u64 *removed)
{
	return index_remove(idx, start, len, match, match_ctx, pool, NULL, NULL,
		      removed);
}

int pcache_index_remove_alloc(struct pcache_index *idx, u64 start, u32 len,
			      pcache_extent_match_t match, void *match_ctx,
			      struct pcache_extent_pool *pool,
			      pcache_extent_alloc_t alloc, void *alloc_ctx,
			      u64 *removed)
{
	return index_remove(idx, start, len, match, match_ctx, pool, alloc,
		      alloc_ctx, removed);
}

int pcache_index_drop(struct pcache_index *idx, u64 start, u32 len,
		      pcache_extent_match_t match, void *match_ctx,
		      struct pcache_extent_pool *pool, u64 *removed)
{
	struct index_change c = {
		.start = start,
		.end = start + len,
		.match = match,
		.match_ctx = match_ctx,
		.whole = true,
	};

	if (!range_ok(idx, start, len))
		return -EINVAL;
	/* Whole extents only: nothing is split, nothing taken from @pool. */
	return apply_change(idx, &c, pool, NULL, NULL, removed);
}

/*
 * Gaps are held back until the next hit or the end of the range, so that a
 * gap running over partition boundaries is reported once: the caller reads
 * it from the backing device with one I/O.
 */
struct lookup_walk {
	pcache_index_lookup_t cb;
	void *ctx;
	u64 gap_start;
	u64 gap_len;
};

static int flush_gap(struct lookup_walk *w)
{
	int ret;

	if (!w->gap_len)
		return 0;
	ret = w->cb(w->ctx, w->gap_start, w->gap_len, NULL, 0);
	w->gap_len = 0;
	return ret;
}

static void add_gap(struct lookup_walk *w, u64 start, u64 end)
{
	if (!w->gap_len)
		w->gap_start = start;
	w->gap_len += end - start;
}

/* Walk [start, end) of one partition, under its lock. */
static int lookup_part(struct pcache_index_part *part, u64 start, u64 end,
		       struct lookup_walk *w, bool last)
{
	struct pcache_extent *ext;
	u64 pos = start;
	int ret = 0;

	spin_lock(&part->lock);
	for (ext = first_from(part, start); ext && ext->start < end;
	     ext = ext_next(ext)) {
		u64 hit = max_t(u64, pos, ext->start);
		u64 hit_end = min_t(u64, end, ext_end(ext));

		if (hit > pos)
			add_gap(w, pos, hit);
		ret = flush_gap(w);
		if (ret)
			goto out;
		ret = w->cb(w->ctx, hit, hit_end - hit, ext,
			    seg_off_at(ext->seg_off, ext->start, hit));
		if (ret)
			goto out;
		pos = hit_end;
	}
	if (pos < end)
		add_gap(w, pos, end);
	if (last)
		ret = flush_gap(w);
out:
	spin_unlock(&part->lock);
	return ret;
}

int pcache_index_lookup(struct pcache_index *idx, u64 start, u32 len,
			pcache_index_lookup_t cb, void *ctx)
{
	struct lookup_walk w = { .cb = cb, .ctx = ctx };
	u64 pos = start, end = start + len;
	int ret = 0;

	if (!range_ok(idx, start, len))
		return -EINVAL;
	while (!ret && pos < end) {
		u64 next = part_end(idx, pos, end);

		ret = lookup_part(&idx->parts[pos >> idx->part_shift], pos,
				  next, &w, next == end);
		pos = next;
	}
	return ret;
}

void pcache_index_stats(struct pcache_index *idx, u64 *extents, u64 *sectors)
{
	u32 i;

	*extents = 0;
	*sectors = 0;
	for (i = 0; i < idx->nr_parts; i++) {
		struct pcache_index_part *part = &idx->parts[i];

		spin_lock(&part->lock);
		*extents += part->nr_extents;
		*sectors += part->nr_sectors;
		spin_unlock(&part->lock);
	}
}

int pcache_index_init(struct pcache_index *idx, u64 nr_sectors,
		      u32 part_shift)
{
	u64 nr_parts;
	u32 i;

	if (!nr_sectors)
		return -EINVAL;
	if (!part_shift) {
		part_shift = PCACHE_INDEX_PART_SHIFT;
		while ((nr_sectors - 1) >> part_shift >> PCACHE_INDEX_PARTS_BITS)
			part_shift++;
	}
	if (part_shift > PCACHE_INDEX_PART_SHIFT_MAX)
		return -EINVAL;
	nr_parts = ((nr_sectors - 1) >> part_shift) + 1;
	if (nr_parts > U32_MAX)
		return -EINVAL;

	/* 32 bytes per partition: at most 2 MiB with the default shift. */
	idx->parts = kvcalloc(nr_parts, sizeof(*idx->parts), GFP_KERNEL);
	if (!idx->parts)
		return -ENOMEM;
	for (i = 0; i < nr_parts; i++) {
		spin_lock_init(&idx->parts[i].lock);
		idx->parts[i].root = RB_ROOT;
	}
	idx->nr_parts = nr_parts;
	idx->part_shift = part_shift;
	idx->nr_sectors = nr_sectors;
	return 0;
}

void pcache_index_exit(struct pcache_index *idx,
		       pcache_extent_free_t free_extent, void *ctx)
{
	struct pcache_extent *ext, *tmp;
	u32 i;

	for (i = 0; i < idx->nr_parts; i++) {
		struct pcache_index_part *part = &idx->parts[i];

		rbtree_postorder_for_each_entry_safe(ext, tmp, &part->root,
						     node)
			free_extent(ext, ctx);
		part->root = RB_ROOT;
	}
	kvfree(idx->parts);
	idx->parts = NULL;
	idx->nr_parts = 0;
}
