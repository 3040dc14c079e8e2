/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Segment space of a cache device: the quotas backing devices reserve out of
 * the cache's segments, and the owner map (one byte a segment: the owning
 * backing's id + 1, 0 when free) that allocation, reclaim and the rebuild at
 * registration work on.  Pure functions over the backing table, a segment
 * header and the plain owner array, so that host-side tests compile the
 * very same file.  Callers hold cache->seg_lock around anything that
 * changes the map or a backing's count of used segments, and publish a
 * newly taken segment themselves (the release store pairs with readers
 * that look at a segment's state without the lock).
 */
#ifndef _PCACHE_SPACE_H
#define _PCACHE_SPACE_H

#include <linux/types.h>
#include <pcache/format.h>

/* What pcache_space_find() returns when no segment may be taken. */
#define PCACHE_SPACE_NONE	((u32)~0U)

/* The owner map's value for backing @id; 0 stands for a free segment. */
static inline u8 pcache_space_tag(u32 id)
{
	return id + 1;
}

u32 pcache_space_reserved(const struct pcache_backing_table *table);
int pcache_space_quota(const struct pcache_backing_table *table,
		       u32 segment_count, u32 segment_size, u64 size,
		       u64 *quota, u32 *unreserved);

u8 pcache_space_seg_owner(const struct pcache_backing_table *table,
			  const u8 *cache_uuid,
			  const struct pcache_seg_header *hdr);

u32 pcache_space_find(const u8 *owner, const u8 *bad, u32 segment_count,
		      u32 used, u32 quota);
u32 pcache_space_room(const u8 *owner, const u8 *bad, u32 segment_count,
		      u32 used, u32 quota, u32 most);
void pcache_space_put(u8 *owner, u32 seg, u32 *used);
u32 pcache_space_release(u8 *owner, u32 segment_count, u8 tag);
u32 pcache_space_owned(const u8 *owner, u32 segment_count, u8 tag);
int pcache_space_over_quota(const struct pcache_backing_table *table,
			    const u8 *owner, u32 segment_count, u32 *owned);

#endif /* _PCACHE_SPACE_H */
