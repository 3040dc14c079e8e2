// SPDX-License-Identifier: GPL-2.0
/*
 * Segment space of a cache device: quota reservation at attach, the owner
 * map's rebuild at registration, allocation within a quota, reclaim and
 * release.  The accounting that ties them together: a backing device never
 * owns more segments than its quota, its count of used segments is the
 * number of segments the map gives it, and the quotas of the recorded
 * backing devices never add up to more than the cache's segments, so that
 * every backing can always reach its whole quota.
 *
 * No locking and no kernel objects here (see space.h): the same file is
 * compiled into the host-side tests.
 */
#include <linux/build_bug.h>
#include <linux/errno.h>
#include <linux/kernel.h>
#include <linux/math64.h>
#include <linux/string.h>

#include "meta.h"
#include "space.h"

/* An owner tag must fit the map's byte, and 0 is taken by "free". */
static_assert(PCACHE_MAX_BACKINGS <= 255);

static bool space_entry_used(const struct pcache_backing_entry *entry)
{
	return le32_to_cpu(entry->flags) & PCACHE_BACKING_F_USED;
}

/*
 * Segments the recorded backing devices have reserved.  A loaded table
 * never exceeds the cache (pcache_table_check()), but the sum is taken wide
 * so that a table that did could not wrap around to look roomy.
 */
u32 pcache_space_reserved(const struct pcache_backing_table *table)
{
	u64 total = 0;
	u32 i;

	for (i = 0; i < PCACHE_MAX_BACKINGS; i++) {
		if (space_entry_used(&table->entries[i]))
			total += le32_to_cpu(table->entries[i].quota_segments);
	}
	return min_t(u64, total, U32_MAX);
}

/*
 * The quota of a new backing device that may cache @size bytes: whole
 * segments, at least PCACHE_BACKING_SEGMENTS_MIN (what pcache_entry_check()
 * accepts at load), and no more than what the other quotas leave, so that
 * each backing can always fill its whole quota.  Returns 0, -EINVAL when
 * @size is too small, or -ENOSPC when the cache cannot reserve that much;
 * *@quota and *@unreserved are set in every case, for the caller's
 * messages.
 */
int pcache_space_quota(const struct pcache_backing_table *table,
		       u32 segment_count, u32 segment_size, u64 size,
		       u64 *quota, u32 *unreserved)
{
	u32 reserved = pcache_space_reserved(table);

	*quota = div_u64(size, segment_size);
	*unreserved = reserved < segment_count ? segment_count - reserved : 0;
	if (*quota < PCACHE_BACKING_SEGMENTS_MIN)
		return -EINVAL;
	if (*quota > *unreserved)
		return -ENOSPC;
	return 0;
}

/*
 * At registration: the owner of a segment from its header.  A segment
 * belongs to a backing device only if its header is intact, written by
 * this cache, and names a recorded backing and that backing's current
 * epoch; anything else (never used, torn, of a forgotten backing or an
 * earlier epoch) is free.  Returns the owner's tag, or 0.
 */
u8 pcache_space_seg_owner(const struct pcache_backing_table *table,
			  const u8 *cache_uuid,
			  const struct pcache_seg_header *hdr)
{
	const char *why;
	u32 id;

	if (pcache_seg_header_check(hdr, cache_uuid, &why))
		return 0;
	for (id = 0; id < PCACHE_MAX_BACKINGS; id++) {
		const struct pcache_backing_entry *e = &table->entries[id];

		if (space_entry_used(e) &&
		    !memcmp(e->uuid, hdr->backing_uuid, PCACHE_UUID_SIZE) &&
		    e->epoch == hdr->epoch)
			return pcache_space_tag(id);
	}
	return 0;
}

/*
 * A free segment for a backing device that uses @used of its @quota, or
 * PCACHE_SPACE_NONE; never one marked in @bad (known bad blocks; NULL:
 * none).  The caller marks it owned and counts it: the store that
 * publishes the owner must come after the segment's state is reset.
 */
u32 pcache_space_find(const u8 *owner, const u8 *bad, u32 segment_count,
		      u32 used, u32 quota)
{
	u32 seg;

	if (used >= quota)
		return PCACHE_SPACE_NONE;
	for (seg = 0; seg < segment_count; seg++) {
		if (!owner[seg] && !(bad && bad[seg]))
			return seg;
	}
	return PCACHE_SPACE_NONE;
}

/*
 * How many segments a backing device that uses @used of its @quota may still
 * take, counted up to @most: the rest of its quota, or fewer when known bad
 * blocks (@bad) leave fewer free segments than the quotas reserve.
 */
u32 pcache_space_room(const u8 *owner, const u8 *bad, u32 segment_count,
		      u32 used, u32 quota, u32 most)
{
	u32 seg, n = 0;

	most = min_t(u32, most, used < quota ? quota - used : 0);
	for (seg = 0; seg < segment_count && n < most; seg++)
		n += !owner[seg] && !(bad && bad[seg]);
	return n;
}

/* @seg, owned by the backing device whose count is @used, becomes free. */
void pcache_space_put(u8 *owner, u32 seg, u32 *used)
{
	owner[seg] = 0;
	(*used)--;
}

/*
 * Every segment of a backing device that is forgotten becomes free; its
 * count of used segments goes with it.  Returns how many were freed.
 */
u32 pcache_space_release(u8 *owner, u32 segment_count, u8 tag)
{
	u32 seg, n = 0;

	for (seg = 0; seg < segment_count; seg++) {
		if (owner[seg] == tag) {
			owner[seg] = 0;
			n++;
		}
	}
	return n;
}

/* Segments the backing device with @tag owns. */
u32 pcache_space_owned(const u8 *owner, u32 segment_count, u8 tag)
{
	u32 seg, n = 0;

	for (seg = 0; seg < segment_count; seg++)
		n += owner[seg] == tag;
	return n;
}

/*
 * After the map's rebuild: the first backing device that owns more segments
 * than its quota (with *@owned set to how many), or -1.  pcache never takes
 * more, and erases a segment's header before it frees the segment, so only
 * damaged or forged segment headers make one; left so, it would keep
 * another backing device from a segment of its own quota.
 */
int pcache_space_over_quota(const struct pcache_backing_table *table,
			    const u8 *owner, u32 segment_count, u32 *owned)
{
	u32 id;

	for (id = 0; id < PCACHE_MAX_BACKINGS; id++) {
		const struct pcache_backing_entry *e = &table->entries[id];

		if (!space_entry_used(e))
			continue;
		*owned = pcache_space_owned(owner, segment_count,
					    pcache_space_tag(id));
		if (*owned > le32_to_cpu(e->quota_segments))
			return id;
	}
	return -1;
}
