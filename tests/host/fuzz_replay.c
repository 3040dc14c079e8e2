// SPDX-License-Identifier: GPL-2.0
/*
 * libFuzzer target for replay: an arbitrary input is read as two segments
 * of a small cache (one header, then the key records of both) and the size
 * of a backing device, and replayed the way pcache_replay_segment() does
 * it: the header checked, then pcache_key_check() record by record up to
 * the first that fails in each segment, each record it accepts inserted
 * into an index (pcache/index.c, with the kernel's rbtree), except clean
 * ones (read cache fills), which replay checks but does not index.  Then
 * the index is held to what replay
 * promises: every cached sector lies in the backing device, its data inside
 * the segment's data area, at the place of an accepted record that covers
 * it (or it reads as zeroes, when that record is one of zeroes), and that is
 * the newest accepted record covering it.
 *
 * Input: byte 0 controls what the harness repairs, so that the fuzzer gets
 * past the CRCs to the field checks (bit 0: seal the header; bit 1: seal
 * every record; bit 2: the header names this cache); bytes 1-3 the backing
 * device's size in sectors; byte 5 the index's partition shift
 * (raised until there are at most 4096 partitions); then the
 * header and the records, zero-filled when the input is shorter.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <linux/kernel.h>
#include <linux/types.h>

#include "index.h"
#include "meta.h"

#define SEG_SIZE	(64u << 10)	/* 1 KiB of records: 16 of them */
#define NR_RECORDS	(SEG_SIZE / PCACHE_SEG_KEYS_RATIO / PCACHE_KEY_SIZE)
#define NR_SEGMENTS	2
#define SEG_RECORDS	(NR_RECORDS / NR_SEGMENTS)
#define INPUT_HEAD	6
#define INPUT_SIZE	(INPUT_HEAD + PCACHE_SEG_HEADER_SIZE + \
			 NR_RECORDS * PCACHE_KEY_SIZE)

_Static_assert(INPUT_SIZE == 5126, "update FUZZ_REPLAY_MAX_LEN in Makefile");

static const u8 cache_uuid[PCACHE_UUID_SIZE] = { 0xca, 0xc4, 0xe0 };

struct accepted {
	u64 start;
	u32 len;
	u32 seg;
	u32 data_off;
	u32 flags;		/* the index's */
	u64 seq;
};

struct replay {
	u64 backing_sectors;
	struct accepted rec[NR_RECORDS];
	unsigned int nr;
};

static struct pcache_extent *alloc_extent(void *ctx)
{
	(void)ctx;
	return malloc(sizeof(struct pcache_extent));
}

static void free_extent(struct pcache_extent *ext, void *ctx)
{
	(void)ctx;
	free(ext);
}

static int by_start(const void *a, const void *b)
{
	const struct accepted *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

static void broken(const char *what, u64 sector)
{
	fprintf(stderr, "fuzz_replay: %s (sector %llu)\n", what,
		(unsigned long long)sector);
	abort();
}

/* Sector @s of a hit piece at @start: from the newest record covering it. */
static void check_sector(const struct replay *r,
			 const struct pcache_extent *hit, u64 start,
			 u32 seg_off, u64 s)
{
	bool covered = false, found = false;
	u64 newest = 0;
	unsigned int i;

	for (i = 0; i < r->nr; i++) {
		const struct accepted *a = &r->rec[i];

		if (s >= a->start && s < a->start + a->len) {
			newest = covered && newest > a->seq ? newest : a->seq;
			covered = true;
		}
	}
	if (!covered)
		broken("cached, but no accepted record covers it", s);
	if (hit->seq != newest)
		broken("not the newest record covering it", s);
	/*
	 * A damaged image may repeat a seq in two segments; the index then
	 * keeps either.  The data must be where one of them put it.
	 */
	for (i = 0; i < r->nr; i++) {
		const struct accepted *a = &r->rec[i];

		if (!(s >= a->start && s < a->start + a->len &&
		      a->seq == newest && a->seg == hit->seg &&
		      a->flags == hit->flags))
			continue;
		if (hit->flags & PCACHE_EXTENT_ZEROES ||
		    seg_off + ((s - start) << 9) ==
		    a->data_off + ((s - a->start) << 9))
			found = true;
	}
	if (!found)
		broken("data not where its record put it", s);
}

/* Every hit: inside the device and the data area, where its record put it. */
static int check_piece(void *ctx, u64 start, u32 len,
		       const struct pcache_extent *hit, u32 seg_off)
{
	const struct replay *r = ctx;
	unsigned int i;
	u64 s;

	if (!hit)
		return 0;
	if (start + len > r->backing_sectors)
		broken("cached beyond the backing device", start);
	if (!(hit->flags & PCACHE_EXTENT_ZEROES) &&
	    (seg_off < pcache_seg_data_offset(SEG_SIZE) ||
	     seg_off + ((u64)len << 9) > SEG_SIZE))
		broken("cached data outside the data area", start);
	/*
	 * Which record is newest can only change at a record's first or last
	 * sector: checking the piece's first sector and those is checking all.
	 */
	check_sector(r, hit, start, seg_off, start);
	for (i = 0; i < r->nr; i++) {
		const struct accepted *a = &r->rec[i];

		for (s = a->start; s <= a->start + a->len; s += a->len) {
			if (s > start && s < start + len)
				check_sector(r, hit, start, seg_off, s);
			if (!a->len)
				break;
		}
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* Aligned copies, as the module's buffers are. */
	static struct pcache_key_record recs[NR_RECORDS];
	static struct pcache_seg_header seg_hdr;
	struct pcache_seg_header *hdr = &seg_hdr;
	static u8 in[INPUT_SIZE];
	struct pcache_replay_cursor cur;
	struct pcache_extent_pool pool;
	struct pcache_index idx;
	struct replay r = { 0 };
	const char *why;
	u64 cached = 0, end, extents, sectors;
	unsigned int i, seg, shift;

	memset(in, 0, sizeof(in));
	memcpy(in, data, size < sizeof(in) ? size : sizeof(in));
	memcpy(hdr, in + INPUT_HEAD, sizeof(*hdr));
	memcpy(recs, in + INPUT_HEAD + sizeof(*hdr), sizeof(recs));
	r.backing_sectors = 1 + (in[1] | in[2] << 8 | (u32)in[3] << 16);
	/* At most 4096 partitions: a run must stay fast to be useful. */
	shift = 1 + in[5] % 20;
	while (r.backing_sectors >> shift > 4096)
		shift++;
	if (in[0] & 4)
		memcpy(hdr->cache_uuid, cache_uuid, PCACHE_UUID_SIZE);
	if (in[0] & 1)
		hdr->crc = cpu_to_le32(pcache_meta_crc(hdr, sizeof(*hdr)));
	if (in[0] & 2)
		for (i = 0; i < NR_RECORDS; i++)
			pcache_key_seal(&recs[i]);

	why = NULL;
	if (pcache_seg_header_check(hdr, cache_uuid, &why)) {
		if (!why)
			broken("header refused without a reason", 0);
		return 0;
	}
	if (pcache_index_init(&idx, r.backing_sectors, shift))
		broken("index refused a valid size", r.backing_sectors);
	pcache_extent_pool_init(&pool);
	/*
	 * Two segments under the same header, the second replayed first:
	 * replay visits segments in no particular order, and across segments
	 * only seq says which write is newer.
	 */
	for (seg = NR_SEGMENTS; seg-- > 0;) {
		cur = (struct pcache_replay_cursor){
			.gen = le64_to_cpu(hdr->gen),
			.data_end = pcache_seg_data_offset(SEG_SIZE),
			.segment_size = SEG_SIZE,
			.backing_sectors = r.backing_sectors,
		};
		for (i = seg * SEG_RECORDS; i < (seg + 1) * SEG_RECORDS; i++) {
			const struct pcache_key_record *rec = &recs[i];
			struct pcache_key key;

			why = NULL;
			if (pcache_key_check(rec, &cur, &why)) {
				if (!why)
					broken("record refused without a reason", i);
				break;
			}
			/* Clean data: checked and passed, not indexed. */
			if (le32_to_cpu(rec->flags) & PCACHE_KEY_F_CLEAN)
				continue;
			key = (struct pcache_key){
				.start = le64_to_cpu(rec->start),
				.len = le32_to_cpu(rec->len),
				.seg = seg,
				.seg_off = le32_to_cpu(rec->data_off),
				.flags = PCACHE_EXTENT_DIRTY,
				.seq = le64_to_cpu(rec->seq),
			};
			/* As pcache_extent_flags() maps them. */
			if (le32_to_cpu(rec->flags) & PCACHE_KEY_F_ZEROES)
				key.flags |= PCACHE_EXTENT_ZEROES;
			if (le32_to_cpu(rec->flags) & PCACHE_KEY_F_DISCARD)
				key.flags |= PCACHE_EXTENT_DISCARD;
			if (pcache_index_insert_alloc(&idx, &key, &pool,
						      alloc_extent, NULL, NULL))
				broken("index refused an accepted record",
				       key.start);
			r.rec[r.nr++] = (struct accepted){
				.start = key.start, .len = key.len, .seg = seg,
				.data_off = key.seg_off, .flags = key.flags,
				.seq = key.seq,
			};
		}
	}
	if (pcache_index_lookup(&idx, 0, r.backing_sectors > U32_MAX ?
				U32_MAX : r.backing_sectors, check_piece, &r))
		broken("lookup failed", 0);
	/* Every sector an accepted record covers is cached, no other. */
	qsort(r.rec, r.nr, sizeof(r.rec[0]), by_start);
	for (i = 0, end = 0; i < r.nr; i++) {
		u64 from = r.rec[i].start > end ? r.rec[i].start : end;
		u64 to = r.rec[i].start + r.rec[i].len;

		if (to > from)
			cached += to - from;
		if (to > end)
			end = to;
	}
	pcache_index_stats(&idx, &extents, &sectors);
	if (sectors != cached)
		broken("cached sectors do not add up", sectors);
	pcache_extent_pool_trim(&pool, 0, free_extent, NULL);
	pcache_index_exit(&idx, free_extent, NULL);
	return 0;
}
