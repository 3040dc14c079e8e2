// SPDX-License-Identifier: GPL-2.0
/*
 * Seed images: what format, attach and torn updates leave on a cache
 * device, built with meta.c itself.  The fuzz corpus generator writes them
 * out; the unit tests check that the module's view of each is the expected
 * one.
 */
#include <stdio.h>

#include <linux/errno.h>
#include <linux/kernel.h>
#include <linux/string.h>

#include "meta.h"
#include "meta_image.h"

#define SZ_1M	0x100000ULL
#define SZ_1G	0x40000000ULL

void meta_entry_fill(struct pcache_backing_entry *e, unsigned int id,
		     u64 size, u32 lbs, u32 quota, const char *path)
{
	memset(e, 0, sizeof(*e));
	e->flags = cpu_to_le32(PCACHE_BACKING_F_USED);
	e->mode = cpu_to_le32(id % PCACHE_MODE_NR);
	memset(e->uuid, 0xb0, sizeof(e->uuid));
	e->uuid[0] = id;
	e->uuid[15] = id >> 8;
	e->size = cpu_to_le64(size);
	e->logical_block_size = cpu_to_le32(lbs);
	e->quota_segments = cpu_to_le32(quota);
	strncpy(e->path, path, sizeof(e->path) - 1);
}

/* A freshly formatted cache: superblock and both slots at seq 1. */
static void format_flags(struct meta_image *img, u64 device_size,
			 u32 segment_size, u64 flags)
{
	static const u8 uuid[PCACHE_UUID_SIZE] = {
		0x8e, 0x2f, 0x51, 0x0c, 0x4a, 0x77, 0x4e, 0x3d,
		0x9b, 0x61, 0x05, 0xd2, 0xc8, 0x19, 0xa4, 0xf0,
	};
	const char *why;

	memset(img, 0, sizeof(*img));
	img->device_size = device_size;
	if (pcache_sb_init(&img->sb, uuid, device_size, segment_size, flags,
			   &why))
		return;	/* left blank: the seed's expected result says so */
	pcache_table_init(&img->slot[0]);
	pcache_table_seal(&img->slot[0], 1);
	img->slot[1] = img->slot[0];
}

static void format(struct meta_image *img, u64 device_size, u32 segment_size)
{
	format_flags(img, device_size, segment_size, 0);
}

/* Attach a backing in both slots, as pcache_cache_write_table() does. */
static void attach(struct meta_image *img, unsigned int id, u32 quota)
{
	struct pcache_backing_table *t = &img->slot[0];
	char path[64];

	snprintf(path, sizeof(path), "/dev/disk/by-id/virtio-backing%u", id);
	meta_entry_fill(&t->entries[id], id, (10 + id) * SZ_1G,
			id & 1 ? 4096 : 512, quota, path);
	pcache_table_seal(t, le64_to_cpu(t->seq) + 1);
	img->slot[1] = *t;
}

static void seed_blank(struct meta_image *img)
{
	memset(img, 0, sizeof(*img));
	img->device_size = SZ_1G;
}

static void seed_formatted(struct meta_image *img)
{
	format(img, SZ_1G, PCACHE_SEGMENT_SIZE_DEFAULT);
}

static void seed_smallest(struct meta_image *img)
{
	format(img, 2 * SZ_1M + PCACHE_SEGMENTS_MIN * SZ_1M,
	       PCACHE_SEGMENT_SIZE_MIN);
}

static void seed_too_small(struct meta_image *img)
{
	format(img, 2 * SZ_1M + PCACHE_SEGMENTS_MIN * SZ_1M - 1,
	       PCACHE_SEGMENT_SIZE_MIN);
}

static void seed_huge(struct meta_image *img)
{
	/* 2^53 bytes of 1 MiB segments: the count is capped at U32_MAX. */
	format(img, 1ULL << 53, PCACHE_SEGMENT_SIZE_MIN);
}

static void seed_big_segments(struct meta_image *img)
{
	format(img, 4096 * SZ_1G, PCACHE_SEGMENT_SIZE_MAX);
}

static void seed_one_backing(struct meta_image *img)
{
	format(img, SZ_1G, PCACHE_SEGMENT_SIZE_DEFAULT);
	attach(img, 0, 64);
}

static void seed_full_table(struct meta_image *img)
{
	unsigned int i;

	format(img, 4 * SZ_1G, PCACHE_SEGMENT_SIZE_MIN);
	for (i = 0; i < PCACHE_MAX_BACKINGS; i++)
		attach(img, i, 4 + i);
}

/* Power cut after the first write of an attach (seq 2 goes to slot 0). */
static void seed_torn_second_write(struct meta_image *img)
{
	struct pcache_backing_table old;

	format(img, SZ_1G, PCACHE_SEGMENT_SIZE_DEFAULT);
	old = img->slot[1];
	attach(img, 0, 64);
	img->slot[1] = old;
}

/* Power cut during the first write of the next update (seq 3, slot 1). */
static void seed_torn_first_write(struct meta_image *img)
{
	struct pcache_backing_table next;

	format(img, SZ_1G, PCACHE_SEGMENT_SIZE_DEFAULT);
	attach(img, 0, 64);
	next = img->slot[0];
	meta_entry_fill(&next.entries[1], 1, 20 * SZ_1G, 512, 32,
			"/dev/disk/by-id/virtio-backing1");
	pcache_table_seal(&next, 3);
	/* Cut in the new entry's path: the rest of the slot is as before. */
	memcpy(&img->slot[1], &next,
	       offsetof(struct pcache_backing_table, entries[1].path[4]));
}

static void seed_both_torn(struct meta_image *img)
{
	format(img, SZ_1G, PCACHE_SEGMENT_SIZE_DEFAULT);
	attach(img, 0, 64);
	img->slot[0].entries[0].path[5] ^= 0x20;
	img->slot[1].entries[0].quota_segments ^= cpu_to_le32(1);
}

/* A sealed table whose entry is wrong: refused by its field checks. */
static void seed_bad_entry(struct meta_image *img)
{
	format(img, SZ_1G, PCACHE_SEGMENT_SIZE_DEFAULT);
	attach(img, 0, 64);
	img->slot[0].entries[0].logical_block_size = cpu_to_le32(520);
	pcache_table_seal(&img->slot[0], 2);
	img->slot[1] = img->slot[0];
}

/* Each quota fits the cache, together they do not. */
static void seed_quotas_exceed(struct meta_image *img)
{
	format(img, SZ_1G, PCACHE_SEGMENT_SIZE_DEFAULT);
	attach(img, 0, 128);
	attach(img, 1, 128);
}

static void seed_bad_sb(struct meta_image *img)
{
	format(img, SZ_1G, PCACHE_SEGMENT_SIZE_DEFAULT);
	img->sb.segment_count = cpu_to_le32(1000);
	img->ctl = META_IMG_RESEAL_SB;
}

static void seed_data_crc(struct meta_image *img)
{
	format_flags(img, SZ_1G, PCACHE_SEGMENT_SIZE_DEFAULT,
		     PCACHE_SB_F_DATA_CRC);
	attach(img, 1, 128);
}

/* A flag of a later version: a module that does not know it refuses. */
static void seed_unknown_flag(struct meta_image *img)
{
	format_flags(img, SZ_1G, PCACHE_SEGMENT_SIZE_DEFAULT,
		     PCACHE_SB_F_DATA_CRC);
	img->sb.flags = cpu_to_le64(PCACHE_SB_F_ALL + 1);
	img->ctl = META_IMG_RESEAL_SB;
}

const struct meta_seed meta_seeds[] = {
	{ "blank", -EINVAL, -EUCLEAN, seed_blank },
	{ "formatted", 0, 0, seed_formatted },
	{ "smallest", 0, 0, seed_smallest },
	{ "too-small", -EINVAL, -EUCLEAN, seed_too_small },
	{ "huge", 0, 0, seed_huge },
	{ "big-segments", 0, 0, seed_big_segments },
	{ "one-backing", 0, 0, seed_one_backing },
	{ "full-table", 0, 0, seed_full_table },
	{ "torn-second-write", 0, 0, seed_torn_second_write },
	{ "torn-first-write", 0, 0, seed_torn_first_write },
	{ "both-torn", 0, -EUCLEAN, seed_both_torn },
	{ "bad-entry", 0, -EUCLEAN, seed_bad_entry },
	{ "quotas-exceed", 0, -EUCLEAN, seed_quotas_exceed },
	{ "bad-sb", -EUCLEAN, 0, seed_bad_sb },
	{ "data-crc", 0, 0, seed_data_crc },
	{ "unknown-flag", -EUCLEAN, 0, seed_unknown_flag },
};

const unsigned int meta_nr_seeds = ARRAY_SIZE(meta_seeds);
