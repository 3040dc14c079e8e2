// SPDX-License-Identifier: GPL-2.0
/*
 * Unit tests of pcache/space.c, the module's segment allocator and quota
 * accounting, compiled on the host from the very same file (with meta.c,
 * whose segment header check the rebuild at registration relies on).
 *
 * The directed tests pin the exact boundaries of quota reservation and
 * allocation.  The randomized test drives the functions the way the module
 * does (attach and detach with quotas, segment allocation and reclaim,
 * writeback, power cuts and the rebuild at registration, damaged segment
 * headers) and compares every step with a reference model that tracks, per
 * segment, which attach of which backing wrote its header.
 *
 *   PCACHE_TEST_SEED=N   replay the randomized test with seed N (printed)
 *   SPACE_OPS=N          operations of the randomized test (default 200000)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <cmocka.h>

#include <linux/errno.h>
#include <linux/kernel.h>
#include <linux/string.h>

#include "meta.h"
#include "space.h"

#define SEG_SIZE	PCACHE_SEGMENT_SIZE_DEFAULT
#define SEG_COUNT	255u
#define MIN_QUOTA	PCACHE_BACKING_SEGMENTS_MIN
/* Largest segment count of the randomized test: small, to hit the limits. */
#define MODEL_SEGS_MAX	96u

static const u8 cache_uuid[PCACHE_UUID_SIZE] = {
	0x3a, 0x91, 0x0c, 0x57, 0xe2, 0x48, 0x4f, 0x1d,
	0xb6, 0x05, 0x7e, 0x2c, 0xd3, 0x69, 0x80, 0x14,
};

static struct pcache_backing_table table;

/* A recorded backing device as attach writes it, valid for the loader. */
static void entry_fill(struct pcache_backing_table *t, u32 id, u32 quota,
		       u64 uuid_seed, u64 epoch)
{
	struct pcache_backing_entry *e = &t->entries[id];
	u32 i;

	memset(e, 0, sizeof(*e));
	e->flags = cpu_to_le32(PCACHE_BACKING_F_USED);
	e->mode = cpu_to_le32(PCACHE_MODE_WRITEBACK);
	for (i = 0; i < PCACHE_UUID_SIZE; i++)
		e->uuid[i] = (u8)(uuid_seed >> (8 * (i % 8))) ^ (u8)(i * 37 + 1);
	e->size = cpu_to_le64((u64)quota * SEG_SIZE);
	e->logical_block_size = cpu_to_le32(512);
	e->quota_segments = cpu_to_le32(quota);
	e->epoch = cpu_to_le64(epoch);
	snprintf(e->path, sizeof(e->path), "/dev/disk/by-id/virtio-b%u", id);
}

static void entry_clear(struct pcache_backing_table *t, u32 id)
{
	memset(&t->entries[id], 0, sizeof(t->entries[id]));
}

static int quota_of(u64 size, u32 count, u64 *quota, u32 *unreserved)
{
	return pcache_space_quota(&table, count, SEG_SIZE, size, quota,
				  unreserved);
}

static int table_setup(void **state)
{
	(void)state;
	pcache_table_init(&table);
	return 0;
}

/* Quota reservation */

static void test_quota_minimum(void **state)
{
	u64 quota;
	u32 unres;

	(void)state;
	assert_int_equal(quota_of(0, SEG_COUNT, &quota, &unres), -EINVAL);
	assert_int_equal(quota, 0);
	assert_int_equal(unres, SEG_COUNT);
	assert_int_equal(quota_of(SEG_SIZE - 1, SEG_COUNT, &quota, &unres),
			 -EINVAL);
	assert_int_equal(quota_of((u64)MIN_QUOTA * SEG_SIZE - 1, SEG_COUNT,
				  &quota, &unres), -EINVAL);
	assert_int_equal(quota, MIN_QUOTA - 1);
	assert_int_equal(quota_of((u64)MIN_QUOTA * SEG_SIZE, SEG_COUNT,
				  &quota, &unres), 0);
	assert_int_equal(quota, MIN_QUOTA);
	/* Whole segments only: a partial one is not reserved. */
	assert_int_equal(quota_of((u64)(MIN_QUOTA + 1) * SEG_SIZE - 1,
				  SEG_COUNT, &quota, &unres), 0);
	assert_int_equal(quota, MIN_QUOTA);
}

static void test_quota_whole_cache(void **state)
{
	u64 quota;
	u32 unres;

	(void)state;
	assert_int_equal(quota_of((u64)SEG_COUNT * SEG_SIZE, SEG_COUNT,
				  &quota, &unres), 0);
	assert_int_equal(quota, SEG_COUNT);
	assert_int_equal(quota_of((u64)(SEG_COUNT + 1) * SEG_SIZE, SEG_COUNT,
				  &quota, &unres), -ENOSPC);
	assert_int_equal(quota, SEG_COUNT + 1);
	assert_int_equal(unres, SEG_COUNT);
	/* A quota past 32 bits must not wrap around to a small one. */
	assert_int_equal(quota_of(((1ULL << 32) + MIN_QUOTA) * SEG_SIZE,
				  SEG_COUNT, &quota, &unres), -ENOSPC);
	assert_true(quota == (1ULL << 32) + MIN_QUOTA);
	assert_int_equal(quota_of(U64_MAX, SEG_COUNT, &quota, &unres),
			 -ENOSPC);
}

static void test_quota_what_others_leave(void **state)
{
	const char *why = NULL;
	u64 quota;
	u32 unres;

	(void)state;
	entry_fill(&table, 0, 200, 1, 1);
	entry_fill(&table, 7, 40, 2, 1);
	assert_int_equal(pcache_space_reserved(&table), 240);
	assert_int_equal(quota_of((u64)15 * SEG_SIZE, SEG_COUNT, &quota,
				  &unres), 0);
	assert_int_equal(unres, 15);
	assert_int_equal(quota_of((u64)16 * SEG_SIZE, SEG_COUNT, &quota,
				  &unres), -ENOSPC);
	assert_int_equal(quota, 16);
	assert_int_equal(unres, 15);

	/* Exactly full: the loader takes that table, no more fits. */
	entry_fill(&table, 31, 15, 3, 1);
	pcache_table_seal(&table, 1);
	assert_int_equal(pcache_table_check(&table, SEG_COUNT, &why), 0);
	assert_int_equal(quota_of((u64)MIN_QUOTA * SEG_SIZE, SEG_COUNT,
				  &quota, &unres), -ENOSPC);
	assert_int_equal(unres, 0);
	/* Too small is said first, whatever room there is. */
	assert_int_equal(quota_of(SEG_SIZE, SEG_COUNT, &quota, &unres),
			 -EINVAL);

	/* A forgotten backing gives its quota back. */
	entry_clear(&table, 0);
	assert_int_equal(pcache_space_reserved(&table), 55);
	assert_int_equal(quota_of((u64)200 * SEG_SIZE, SEG_COUNT, &quota,
				  &unres), 0);
	assert_int_equal(quota_of((u64)201 * SEG_SIZE, SEG_COUNT, &quota,
				  &unres), -ENOSPC);
}

static void test_quota_unused_entries(void **state)
{
	struct pcache_backing_entry *e = &table.entries[4];
	u64 quota;
	u32 unres;

	(void)state;
	/* Only recorded backings reserve: a stray quota in a free slot not. */
	e->quota_segments = cpu_to_le32(SEG_COUNT);
	assert_int_equal(pcache_space_reserved(&table), 0);
	assert_int_equal(quota_of((u64)SEG_COUNT * SEG_SIZE, SEG_COUNT,
				  &quota, &unres), 0);
	e->flags = cpu_to_le32(PCACHE_BACKING_F_USED);
	assert_int_equal(pcache_space_reserved(&table), SEG_COUNT);
}

static void test_quota_bad_table(void **state)
{
	u64 quota;
	u32 unres, id;

	(void)state;
	/* Tables the loader refuses must still not look roomy. */
	for (id = 0; id < PCACHE_MAX_BACKINGS; id++) {
		entry_fill(&table, id, MIN_QUOTA, id + 1, 1);
		table.entries[id].quota_segments = cpu_to_le32(U32_MAX / 8);
	}
	assert_int_equal(pcache_space_reserved(&table), U32_MAX);
	assert_int_equal(quota_of((u64)MIN_QUOTA * SEG_SIZE, SEG_COUNT,
				  &quota, &unres), -ENOSPC);
	assert_int_equal(unres, 0);

	pcache_table_init(&table);
	entry_fill(&table, 0, 300, 1, 1);
	assert_int_equal(quota_of((u64)MIN_QUOTA * SEG_SIZE, SEG_COUNT,
				  &quota, &unres), -ENOSPC);
	assert_int_equal(unres, 0);
}

/* Allocation, reclaim, release */

static void test_find_within_quota(void **state)
{
	u8 owner[16] = {};

	(void)state;
	assert_int_equal(pcache_space_find(owner, NULL, 16, 0, 4), 0);
	assert_int_equal(pcache_space_find(owner, NULL, 16, 3, 4), 0);
	/* Free segments left, quota used up. */
	assert_int_equal(pcache_space_find(owner, NULL, 16, 4, 4), PCACHE_SPACE_NONE);
	assert_int_equal(pcache_space_find(owner, NULL, 16, 5, 4), PCACHE_SPACE_NONE);
	assert_int_equal(pcache_space_find(owner, NULL, 16, 0, 0), PCACHE_SPACE_NONE);
	assert_int_equal(pcache_space_find(owner, NULL, 0, 0, 4), PCACHE_SPACE_NONE);
}

static void test_find_skips_owned(void **state)
{
	u8 owner[16];
	u32 seg;

	(void)state;
	memset(owner, pcache_space_tag(2), sizeof(owner));
	/* Room in the quota, none in the cache. */
	assert_int_equal(pcache_space_find(owner, NULL, 16, 0, 16), PCACHE_SPACE_NONE);
	for (seg = 16; seg-- > 0;) {
		owner[seg] = 0;
		assert_int_equal(pcache_space_find(owner, NULL, 16, 0, 16), seg);
	}
	/* Only the segments within the count are looked at. */
	memset(owner, pcache_space_tag(0), 8);
	assert_int_equal(pcache_space_find(owner, NULL, 8, 0, 16), PCACHE_SPACE_NONE);
	assert_int_equal(pcache_space_find(owner, NULL, 9, 0, 16), 8);
}

/* Segments with known bad blocks are never taken, free as they may be. */
static void test_find_skips_bad(void **state)
{
	u8 owner[16] = {}, bad[16] = {};

	(void)state;
	bad[0] = bad[1] = 1;
	assert_int_equal(pcache_space_find(owner, bad, 16, 0, 4), 2);
	owner[2] = pcache_space_tag(0);
	bad[3] = 1;
	assert_int_equal(pcache_space_find(owner, bad, 16, 1, 4), 4);
	memset(bad, 1, sizeof(bad));
	assert_int_equal(pcache_space_find(owner, bad, 16, 1, 4),
			 PCACHE_SPACE_NONE);
}

/* Take segments the way pcache_seg_get() does until refused. */
static u32 take_all(u8 *owner, u32 count, u32 id, u32 *used, u32 quota)
{
	u32 seg, n = 0;

	while ((seg = pcache_space_find(owner, NULL, count, *used, quota)) !=
	       PCACHE_SPACE_NONE) {
		assert_true(seg < count);
		assert_int_equal(owner[seg], 0);
		owner[seg] = pcache_space_tag(id);
		(*used)++;
		n++;
		assert_true(n <= quota);
	}
	return n;
}

/* Segments owned by any backing device. */
static u32 segments_in_use(const u8 *owner, u32 segment_count)
{
	u32 seg, n = 0;

	for (seg = 0; seg < segment_count; seg++)
		n += !!owner[seg];
	return n;
}

static void test_alloc_stops_at_quota(void **state)
{
	u8 owner[64] = {};
	u32 used0 = 0, used1 = 0, used2 = 0;

	(void)state;
	assert_int_equal(take_all(owner, 64, 0, &used0, 10), 10);
	assert_int_equal(used0, 10);
	assert_int_equal(take_all(owner, 64, 1, &used1, 50), 50);
	/* Four segments left: a larger quota (an overcommitted cache) gets those. */
	assert_int_equal(take_all(owner, 64, 2, &used2, 20), 4);
	assert_int_equal(pcache_space_owned(owner, 64, pcache_space_tag(0)), 10);
	assert_int_equal(pcache_space_owned(owner, 64, pcache_space_tag(1)), 50);
	assert_int_equal(pcache_space_owned(owner, 64, pcache_space_tag(2)), 4);
	assert_int_equal(segments_in_use(owner, 64), 64);

	/* Reclaim one of backing 1's: only backing 1 is below its quota now. */
	pcache_space_put(owner, 17, &used1);
	assert_int_equal(used1, 49);
	assert_int_equal(owner[17], 0);
	assert_int_equal(pcache_space_find(owner, NULL, 64, used0, 10),
			 PCACHE_SPACE_NONE);
	assert_int_equal(take_all(owner, 64, 1, &used1, 50), 1);
	assert_int_equal(owner[17], pcache_space_tag(1));
}

/* Room is the quota's rest, unless bad segments leave fewer free ones. */
static void test_room(void **state)
{
	u8 owner[16] = {}, bad[16] = {};
	u32 seg;

	(void)state;
	assert_int_equal(pcache_space_room(owner, bad, 16, 0, 8, 100), 8);
	assert_int_equal(pcache_space_room(owner, NULL, 16, 6, 8, 100), 2);
	assert_int_equal(pcache_space_room(owner, bad, 16, 8, 8, 100), 0);
	assert_int_equal(pcache_space_room(owner, bad, 16, 9, 8, 100), 0);
	assert_int_equal(pcache_space_room(owner, bad, 16, 0, 8, 3), 3);
	/* Another backing holds 6, 7 are bad: 3 left for a quota of 8. */
	for (seg = 0; seg < 6; seg++)
		owner[seg] = pcache_space_tag(1);
	for (seg = 6; seg < 13; seg++)
		bad[seg] = 1;
	assert_int_equal(pcache_space_room(owner, bad, 16, 0, 8, 100), 3);
	assert_int_equal(pcache_space_room(owner, bad, 16, 0, 8, 2), 2);
	/* The same as pcache_space_find() would say: none. */
	for (seg = 13; seg < 16; seg++)
		owner[seg] = pcache_space_tag(2);
	assert_int_equal(pcache_space_room(owner, bad, 16, 3, 8, 100), 0);
	assert_int_equal(pcache_space_find(owner, bad, 16, 3, 8),
			 PCACHE_SPACE_NONE);
}

static void test_release(void **state)
{
	u8 owner[32] = {};
	u32 used[3] = {}, seg;

	(void)state;
	for (seg = 0; seg < 30; seg++) {
		owner[seg] = pcache_space_tag(seg % 3);
		used[seg % 3]++;
	}
	assert_int_equal(segments_in_use(owner, 32), 30);
	assert_int_equal(pcache_space_release(owner, 32, pcache_space_tag(1)),
			 10);
	for (seg = 0; seg < 32; seg++)
		assert_int_not_equal(owner[seg], pcache_space_tag(1));
	assert_int_equal(pcache_space_owned(owner, 32, pcache_space_tag(0)),
			 used[0]);
	assert_int_equal(pcache_space_owned(owner, 32, pcache_space_tag(2)),
			 used[2]);
	assert_int_equal(segments_in_use(owner, 32), 20);
	/* Twice is harmless: nothing is left to free. */
	assert_int_equal(pcache_space_release(owner, 32, pcache_space_tag(1)),
			 0);
	/* The highest id's tag is a byte like any other. */
	owner[31] = pcache_space_tag(PCACHE_MAX_BACKINGS - 1);
	assert_int_equal(pcache_space_owned(owner, 32,
					    pcache_space_tag(PCACHE_MAX_BACKINGS - 1)), 1);
	assert_int_equal(pcache_space_release(owner, 32,
					      pcache_space_tag(PCACHE_MAX_BACKINGS - 1)), 1);
}

/* The rebuild at registration */

static void header_of(struct pcache_seg_header *hdr, const u8 *cuuid,
		      u32 id, u64 gen)
{
	const struct pcache_backing_entry *e = &table.entries[id];

	pcache_seg_header_init(hdr, cuuid, e->uuid, le64_to_cpu(e->epoch), gen);
}

static void test_seg_owner(void **state)
{
	static struct pcache_seg_header hdr;
	u8 other_cache[PCACHE_UUID_SIZE];

	(void)state;
	entry_fill(&table, 0, 8, 100, 1);
	entry_fill(&table, 5, 8, 105, 7);
	entry_fill(&table, PCACHE_MAX_BACKINGS - 1, 8, 131, 2);

	header_of(&hdr, cache_uuid, 5, 42);
	assert_int_equal(pcache_space_seg_owner(&table, cache_uuid, &hdr),
			 pcache_space_tag(5));
	header_of(&hdr, cache_uuid, PCACHE_MAX_BACKINGS - 1, 1);
	assert_int_equal(pcache_space_seg_owner(&table, cache_uuid, &hdr),
			 pcache_space_tag(PCACHE_MAX_BACKINGS - 1));

	/* Never written. */
	memset(&hdr, 0, sizeof(hdr));
	assert_int_equal(pcache_space_seg_owner(&table, cache_uuid, &hdr), 0);

	/* Torn or damaged: one bit anywhere. */
	header_of(&hdr, cache_uuid, 5, 42);
	((u8 *)&hdr)[sizeof(hdr) - 1] ^= 0x10;
	assert_int_equal(pcache_space_seg_owner(&table, cache_uuid, &hdr), 0);

	/* Another cache's segment (a copied image). */
	memcpy(other_cache, cache_uuid, sizeof(other_cache));
	other_cache[0] ^= 1;
	header_of(&hdr, other_cache, 5, 42);
	assert_int_equal(pcache_space_seg_owner(&table, cache_uuid, &hdr), 0);

	/* No generation: not a header an opening writes. */
	header_of(&hdr, cache_uuid, 5, 0);
	assert_int_equal(pcache_space_seg_owner(&table, cache_uuid, &hdr), 0);

	/* An earlier epoch of the backing holds nothing valid. */
	header_of(&hdr, cache_uuid, 5, 42);
	table.entries[5].epoch = cpu_to_le64(8);
	assert_int_equal(pcache_space_seg_owner(&table, cache_uuid, &hdr), 0);

	/* A forgotten backing, and a new one in its slot. */
	header_of(&hdr, cache_uuid, 0, 9);
	entry_clear(&table, 0);
	assert_int_equal(pcache_space_seg_owner(&table, cache_uuid, &hdr), 0);
	entry_fill(&table, 0, 8, 200, 1);
	assert_int_equal(pcache_space_seg_owner(&table, cache_uuid, &hdr), 0);
	/* The same uuid in another slot: the header follows the uuid. */
	entry_fill(&table, 9, 8, 100, 1);
	assert_int_equal(pcache_space_seg_owner(&table, cache_uuid, &hdr),
			 pcache_space_tag(9));
	/* A slot marked unused is not matched, whatever it still holds. */
	table.entries[9].flags = 0;
	assert_int_equal(pcache_space_seg_owner(&table, cache_uuid, &hdr), 0);
}

/*
 * Registration, then each backing coming up: its count is what the map
 * gives it, less what replay finds all written back.
 */
static void rebuild(const struct pcache_seg_header *hdrs, u32 count,
		    const bool *clean, u8 *owner, u32 *used)
{
	u32 seg, id;

	for (seg = 0; seg < count; seg++)
		owner[seg] = pcache_space_seg_owner(&table, cache_uuid,
						    &hdrs[seg]);
	for (id = 0; id < PCACHE_MAX_BACKINGS; id++) {
		used[id] = pcache_space_owned(owner, count, pcache_space_tag(id));
		for (seg = 0; seg < count; seg++) {
			if (owner[seg] == pcache_space_tag(id) && clean[seg])
				pcache_space_put(owner, seg, &used[id]);
		}
	}
}

/*
 * A map in which a backing device owns more than its quota can only come
 * from damaged or forged headers: it is found, with the count.
 */
static void test_over_quota(void **state)
{
	u8 owner[16] = {};
	u32 owned = 0, seg;

	(void)state;
	entry_fill(&table, 1, 4, 11, 1);
	entry_fill(&table, 5, 6, 15, 1);
	assert_int_equal(pcache_space_over_quota(&table, owner, 16, &owned), -1);
	/* Exactly the quotas: fine. */
	for (seg = 0; seg < 4; seg++)
		owner[seg] = pcache_space_tag(1);
	for (seg = 4; seg < 10; seg++)
		owner[seg] = pcache_space_tag(5);
	assert_int_equal(pcache_space_over_quota(&table, owner, 16, &owned), -1);
	/* One more for backing 5. */
	owner[15] = pcache_space_tag(5);
	assert_int_equal(pcache_space_over_quota(&table, owner, 16, &owned), 5);
	assert_int_equal(owned, 7);
	/* Backing 1 is the first found. */
	owner[14] = pcache_space_tag(1);
	assert_int_equal(pcache_space_over_quota(&table, owner, 16, &owned), 1);
	assert_int_equal(owned, 5);
	/* Segments of an id with no entry are not counted against anyone. */
	owner[14] = owner[15] = pcache_space_tag(7);
	assert_int_equal(pcache_space_over_quota(&table, owner, 16, &owned), -1);
}

static void test_rebuild_counts(void **state)
{
	static struct pcache_seg_header hdrs[16];
	bool clean[16] = {};
	u8 owner[16];
	u32 used[PCACHE_MAX_BACKINGS];
	u32 seg;

	(void)state;
	entry_fill(&table, 1, 6, 11, 1);
	entry_fill(&table, 2, 6, 12, 1);
	/* 0-5: backing 1, 6-9: backing 2, 10-11: a forgotten backing. */
	for (seg = 0; seg < 6; seg++)
		header_of(&hdrs[seg], cache_uuid, 1, seg + 1);
	for (seg = 6; seg < 10; seg++)
		header_of(&hdrs[seg], cache_uuid, 2, seg + 1);
	entry_fill(&table, 3, 4, 13, 1);
	header_of(&hdrs[10], cache_uuid, 3, 1);
	header_of(&hdrs[11], cache_uuid, 3, 2);
	entry_clear(&table, 3);
	/* 12: torn header of backing 1; 13-15: never used. */
	header_of(&hdrs[12], cache_uuid, 1, 99);
	hdrs[12].gen ^= cpu_to_le64(1);
	/* Written back already: 0 and 1 (backing 1), all of backing 2's. */
	clean[0] = clean[1] = true;
	for (seg = 6; seg < 10; seg++)
		clean[seg] = true;

	rebuild(hdrs, 16, clean, owner, used);
	assert_int_equal(used[1], 4);
	assert_int_equal(used[2], 0);
	assert_int_equal(used[3], 0);
	assert_int_equal(pcache_space_owned(owner, 16, pcache_space_tag(1)), 4);
	assert_int_equal(segments_in_use(owner, 16), 4);
	for (seg = 0; seg < 16; seg++)
		assert_int_equal(owner[seg],
				 seg >= 2 && seg < 6 ? pcache_space_tag(1) : 0);
	/* Backing 1 may take two more; the freed ones come first. */
	assert_int_equal(pcache_space_find(owner, NULL, 16, used[1], 6), 0);
}

/* The randomized test against a reference model */

static u64 rng;

static u64 rnd(void)
{
	/* xorshift64*: reproducible from the printed seed. */
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return rng * 0x2545f4914f6cdd1dULL;
}

static u32 rnd_below(u32 n)
{
	return n ? rnd() % n : 0;
}

static u64 seed_get(void)
{
	static bool printed;
	static u64 seed;
	const char *env;

	if (printed)
		return seed;
	env = getenv("PCACHE_TEST_SEED");
	seed = env ? strtoull(env, NULL, 0) :
		     (u64)time(NULL) * 2654435761ULL ^ (u64)clock();
	printf("test_space: PCACHE_TEST_SEED=%llu\n", (unsigned long long)seed);
	printed = true;
	return seed;
}

static unsigned long ops_get(void)
{
	const char *env = getenv("SPACE_OPS");

	return env ? strtoul(env, NULL, 0) : 200000;
}

/*
 * The model: what should be.  An "instance" is one attach of a backing
 * (or one epoch of it); a segment header names the instance that wrote it,
 * and names nobody once it is damaged or written by another cache.
 */
struct model {
	u32 count;				/* segments */
	bool attached[PCACHE_MAX_BACKINGS];
	u32 quota[PCACHE_MAX_BACKINGS];
	u64 inst[PCACHE_MAX_BACKINGS];		/* current instance of the slot */
	u64 epoch[PCACHE_MAX_BACKINGS];
	u8 owner[MODEL_SEGS_MAX];		/* as a tag: 0 is free */
	u64 hdr_inst[MODEL_SEGS_MAX];		/* 0: names no instance */
	bool clean[MODEL_SEGS_MAX];		/* its header's lap written back */
	u64 next_inst;
};

/* What the module holds: the functions under test work on these. */
static struct {
	u8 owner[MODEL_SEGS_MAX];
	u32 used[PCACHE_MAX_BACKINGS];
	struct pcache_seg_header hdrs[MODEL_SEGS_MAX];
} dev;

static struct model m;
static unsigned long op_nr;
static const char *op_name;
static bool table_changed;

/*
 * What the run did, printed at the end: a model that drifts into doing
 * nothing would otherwise pass.
 */
static struct {
	unsigned long attached, too_small, no_room, detached, taken, refused,
		      reclaimed, rebuilt, kept;
} did;

#define model_fail(fmt, ...)						\
	fail_msg("seed %llu op %lu (%s): " fmt,				\
		 (unsigned long long)seed_get(), op_nr, op_name,	\
		 ##__VA_ARGS__)

static u32 model_reserved(void)
{
	u32 id, n = 0;

	for (id = 0; id < PCACHE_MAX_BACKINGS; id++)
		n += m.attached[id] ? m.quota[id] : 0;
	return n;
}

static u32 model_owned(u32 id)
{
	u32 seg, n = 0;

	for (seg = 0; seg < m.count; seg++)
		n += m.owner[seg] == pcache_space_tag(id);
	return n;
}

/* Segments a tag has in @owner, for every tag at once. */
static void count_tags(const u8 *owner, u32 *n)
{
	u32 seg;

	memset(n, 0, (PCACHE_MAX_BACKINGS + 1) * sizeof(*n));
	for (seg = 0; seg < m.count; seg++) {
		if (owner[seg] > PCACHE_MAX_BACKINGS)
			model_fail("segment %u has owner tag %u", seg, owner[seg]);
		n[owner[seg]]++;
	}
}

static void model_format(void)
{
	u32 seg;

	memset(&m, 0, sizeof(m));
	memset(&dev, 0, sizeof(dev));
	pcache_table_init(&table);
	m.count = PCACHE_SEGMENTS_MIN + rnd_below(MODEL_SEGS_MAX -
						  PCACHE_SEGMENTS_MIN + 1);
	m.next_inst = 1;
	/* Leftovers of an earlier use of the device name nobody. */
	for (seg = 0; seg < m.count; seg++) {
		if (rnd_below(4))
			continue;
		pcache_seg_header_init(&dev.hdrs[seg], cache_uuid,
				       (const u8 *)"\x01leftover-uuid\x02",
				       rnd(), rnd() | 1);
		m.clean[seg] = rnd_below(2);
	}
}

/*
 * The invariants: the map is the model's; a backing's count of used
 * segments is what it owns, within its quota; only recorded backings own
 * segments; the quotas fit the cache, in a table the loader takes.
 */
static void model_check(void)
{
	u32 have[PCACHE_MAX_BACKINGS + 1], want[PCACHE_MAX_BACKINGS + 1];
	u32 seg, id, used_total = 0;
	const char *why = NULL;

	for (seg = 0; seg < m.count; seg++) {
		if (dev.owner[seg] != m.owner[seg])
			model_fail("segment %u owned by tag %u, expected %u",
				   seg, dev.owner[seg], m.owner[seg]);
	}
	count_tags(dev.owner, have);
	count_tags(m.owner, want);
	for (id = 0; id < PCACHE_MAX_BACKINGS; id++) {
		u8 tag = pcache_space_tag(id);

		if (!m.attached[id]) {
			if (have[tag])
				model_fail("backing %u is not recorded and owns %u segments",
					   id, have[tag]);
			continue;
		}
		if (dev.used[id] != have[tag] || have[tag] != want[tag])
			model_fail("backing %u counts %u used, owns %u, expected %u",
				   id, dev.used[id], have[tag], want[tag]);
		if (dev.used[id] > m.quota[id])
			model_fail("backing %u uses %u of a quota of %u", id,
				   dev.used[id], m.quota[id]);
		used_total += dev.used[id];
	}
	id = rnd_below(PCACHE_MAX_BACKINGS);
	if (pcache_space_owned(dev.owner, m.count, pcache_space_tag(id)) !=
	    have[pcache_space_tag(id)])
		model_fail("pcache_space_owned(%u) is not the count", id);
	if (segments_in_use(dev.owner, m.count) != used_total)
		model_fail("%u segments owned, the backings count %u",
			   segments_in_use(dev.owner, m.count), used_total);
	if (pcache_space_reserved(&table) != model_reserved() ||
	    model_reserved() > m.count)
		model_fail("%u segments reserved, expected %u of %u",
			   pcache_space_reserved(&table), model_reserved(),
			   m.count);
	if (!table_changed)
		return;
	/* Every table attach writes is one the loader takes. */
	table_changed = false;
	pcache_table_seal(&table, op_nr + 1);
	if (pcache_table_check(&table, m.count, &why))
		model_fail("the loader refuses the table: %s", why);
}

static void op_attach(void)
{
	u32 id, want, reserved = model_reserved(), unres;
	u64 size, quota;
	int ret, expect;

	for (id = 0; id < PCACHE_MAX_BACKINGS && m.attached[id]; id++)
		;
	if (id == PCACHE_MAX_BACKINGS)
		return;
	/* Around the limits: below the minimum, up to past what is left. */
	switch (rnd_below(4)) {
	case 0:
		want = rnd_below(MIN_QUOTA + 2);
		break;
	case 1:
		want = m.count - reserved + rnd_below(3);
		want = want >= 1 ? want - 1 : 0;
		break;
	default:
		want = rnd_below(m.count / 3 + 1);
		break;
	}
	size = (u64)want * SEG_SIZE + (rnd_below(2) ? rnd_below(SEG_SIZE) : 0);
	if (!rnd_below(500))
		size = rnd();

	expect = 0;
	if (size / SEG_SIZE < MIN_QUOTA)
		expect = -EINVAL;
	else if (size / SEG_SIZE > m.count - reserved)
		expect = -ENOSPC;
	ret = pcache_space_quota(&table, m.count, SEG_SIZE, size, &quota,
				 &unres);
	if (ret != expect || quota != size / SEG_SIZE ||
	    unres != m.count - reserved)
		model_fail("size %llu: %d, quota %llu, %u unreserved; expected %d, %llu, %u",
			   (unsigned long long)size, ret,
			   (unsigned long long)quota, unres, expect,
			   (unsigned long long)(size / SEG_SIZE),
			   m.count - reserved);
	if (ret) {
		did.too_small += ret == -EINVAL;
		did.no_room += ret == -ENOSPC;
		return;
	}
	did.attached++;
	m.attached[id] = true;
	m.quota[id] = quota;
	m.inst[id] = m.next_inst++;
	m.epoch[id] = rnd_below(3);
	entry_fill(&table, id, quota, m.inst[id], m.epoch[id]);
	dev.used[id] = 0;
	table_changed = true;
}

static bool pick_attached(u32 *id)
{
	u32 start = rnd_below(PCACHE_MAX_BACKINGS), i;

	for (i = 0; i < PCACHE_MAX_BACKINGS; i++) {
		*id = (start + i) % PCACHE_MAX_BACKINGS;
		if (m.attached[*id])
			return true;
	}
	return false;
}

/* A random segment whose owner tag is @tag, or false. */
static bool pick_seg(u8 tag, u32 *seg)
{
	u32 start = rnd_below(m.count), i;

	for (i = 0; i < m.count; i++) {
		*seg = (start + i) % m.count;
		if (m.owner[*seg] == tag)
			return true;
	}
	return false;
}

static void op_detach(void)
{
	u32 id, seg, freed, expect;

	if (!pick_attached(&id))
		return;
	expect = model_owned(id);
	entry_clear(&table, id);
	table_changed = true;
	freed = pcache_space_release(dev.owner, m.count, pcache_space_tag(id));
	if (freed != expect)
		model_fail("detach of %u freed %u segments, expected %u", id,
			   freed, expect);
	did.detached++;
	m.attached[id] = false;
	for (seg = 0; seg < m.count; seg++) {
		if (m.owner[seg] == pcache_space_tag(id))
			m.owner[seg] = 0;
	}
}

/* @header: the header reaches pmem (else a power cut comes first). */
static void op_alloc(bool header)
{
	u32 id, seg, expect = PCACHE_SPACE_NONE;

	if (!pick_attached(&id))
		return;
	if (dev.used[id] < m.quota[id]) {
		for (seg = 0; seg < m.count; seg++) {
			if (!m.owner[seg]) {
				expect = seg;
				break;
			}
		}
	}
	seg = pcache_space_find(dev.owner, NULL, m.count, dev.used[id], m.quota[id]);
	if (seg != expect)
		model_fail("backing %u (%u of %u used) got segment %d, expected %d",
			   id, dev.used[id], m.quota[id], (int)seg, (int)expect);
	if (seg == PCACHE_SPACE_NONE) {
		did.refused++;
		return;
	}
	did.taken++;
	if (dev.owner[seg])
		model_fail("segment %u handed out, owned by tag %u", seg,
			   dev.owner[seg]);
	dev.owner[seg] = pcache_space_tag(id);
	dev.used[id]++;
	m.owner[seg] = pcache_space_tag(id);
	if (!header)
		return;
	header_of(&dev.hdrs[seg], cache_uuid, id, rnd() | 1);
	m.hdr_inst[seg] = m.inst[id];
	m.clean[seg] = false;
}

/* Writeback reaches the end of a segment's log; reclaim may free it. */
static void op_writeback(bool reclaim)
{
	u32 id, seg;

	if (!pick_attached(&id) || !pick_seg(pcache_space_tag(id), &seg))
		return;
	/* Taken by a power cut before its header: nothing of it to write. */
	if (m.hdr_inst[seg] == m.inst[id])
		m.clean[seg] = true;
	if (!reclaim)
		return;
	pcache_space_put(dev.owner, seg, &dev.used[id]);
	m.owner[seg] = 0;
	did.reclaimed++;
}

/* A new epoch: segments of the earlier ones hold nothing valid. */
static void op_new_epoch(void)
{
	u32 id;

	if (!pick_attached(&id) || model_owned(id))
		return;
	m.epoch[id]++;
	m.inst[id] = m.next_inst++;
	table.entries[id].epoch = cpu_to_le64(m.epoch[id]);
	table_changed = true;
}

/*
 * pmem damage, or a header written by another cache.  Only an intact
 * header is damaged: a second flip of the same byte could repair it.
 */
static void op_damage(void)
{
	u32 seg = rnd_below(m.count);
	u8 *p = (u8 *)&dev.hdrs[seg];

	if (m.hdr_inst[seg] && rnd_below(2)) {
		p[rnd_below(sizeof(dev.hdrs[seg]))] ^= 1 + rnd_below(255);
	} else {
		u8 other[PCACHE_UUID_SIZE], backing[PCACHE_UUID_SIZE];

		memcpy(other, cache_uuid, sizeof(other));
		other[rnd_below(sizeof(other))] ^= 0x80;
		memcpy(backing, dev.hdrs[seg].backing_uuid, sizeof(backing));
		pcache_seg_header_init(&dev.hdrs[seg], other, backing,
				       le64_to_cpu(dev.hdrs[seg].epoch), 1);
	}
	m.hdr_inst[seg] = 0;
}

/* Power cut or unregister, then registration and every backing's replay. */
static void op_rebuild(void)
{
	u32 seg, id;

	rebuild(dev.hdrs, m.count, m.clean, dev.owner, dev.used);
	did.rebuilt++;
	for (seg = 0; seg < m.count; seg++) {
		m.owner[seg] = 0;
		if (!m.hdr_inst[seg] || m.clean[seg])
			continue;
		for (id = 0; id < PCACHE_MAX_BACKINGS; id++) {
			if (m.attached[id] && m.inst[id] == m.hdr_inst[seg])
				m.owner[seg] = pcache_space_tag(id);
		}
		did.kept += !!m.owner[seg];
	}
}

static void op_take(void)
{
	op_alloc(true);
}

/* The cut comes before the new header: registration follows at once. */
static void op_take_cut(void)
{
	op_alloc(false);
	op_rebuild();
}

static void op_reclaim(void)
{
	op_writeback(true);
}

static void op_write_back(void)
{
	op_writeback(false);
}

/* The mix of steps, in parts of 100. */
static const struct {
	u32 weight;
	const char *name;
	void (*run)(void);
} steps[] = {
	{ 8, "attach", op_attach },
	{ 3, "detach", op_detach },
	{ 48, "alloc", op_take },
	{ 1, "alloc, power cut", op_take_cut },
	{ 24, "writeback and reclaim", op_reclaim },
	{ 10, "writeback", op_write_back },
	{ 1, "new epoch", op_new_epoch },
	{ 2, "damage", op_damage },
	{ 3, "rebuild", op_rebuild },
};

static void test_random_model(void **state)
{
	unsigned long ops = ops_get();
	u32 i, pick;

	(void)state;
	rng = seed_get() | 1;
	for (op_nr = 0; op_nr < ops; op_nr++) {
		if (op_nr % 25000 == 0) {
			op_name = "format";
			model_format();
		}
		pick = rnd_below(100);
		for (i = 0; pick >= steps[i].weight; i++)
			pick -= steps[i].weight;
		op_name = steps[i].name;
		steps[i].run();
		model_check();
	}
	printf("test_space: %lu operations: %lu attaches (%lu too small, %lu without room), %lu detaches, %lu segments taken (%lu refused), %lu reclaimed, %lu rebuilds keeping %lu segments\n",
	       ops, did.attached, did.too_small, did.no_room, did.detached,
	       did.taken, did.refused, did.reclaimed, did.rebuilt, did.kept);
	/* Each kind of step must have happened, or the test tested little. */
	assert_true(did.attached && did.too_small && did.no_room &&
		    did.detached && did.taken && did.refused && did.reclaimed &&
		    did.kept);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_quota_minimum, table_setup),
		cmocka_unit_test_setup(test_quota_whole_cache, table_setup),
		cmocka_unit_test_setup(test_quota_what_others_leave, table_setup),
		cmocka_unit_test_setup(test_quota_unused_entries, table_setup),
		cmocka_unit_test_setup(test_quota_bad_table, table_setup),
		cmocka_unit_test(test_find_within_quota),
		cmocka_unit_test(test_find_skips_owned),
		cmocka_unit_test(test_find_skips_bad),
		cmocka_unit_test(test_alloc_stops_at_quota),
		cmocka_unit_test(test_room),
		cmocka_unit_test(test_release),
		cmocka_unit_test_setup(test_seg_owner, table_setup),
		cmocka_unit_test_setup(test_over_quota, table_setup),
		cmocka_unit_test_setup(test_rebuild_counts, table_setup),
		cmocka_unit_test(test_random_model),
	};

	seed_get();
	return cmocka_run_group_tests_name("space", tests, NULL, NULL);
}
