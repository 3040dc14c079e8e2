// SPDX-License-Identifier: GPL-2.0
/*
 * Unit tests of pcache/meta.c, compiled on the host from the very same file
 * as the module (see shim/ for the few kernel helpers it needs).
 *
 * Every rejection test starts from valid metadata, changes one field,
 * re-seals the CRC so that the field check (not the checksum) is what has to
 * catch it, and matches the reason so that it is that check which did.
 *
 * PCACHE_TEST_SEED=N picks the seed of the random mutation tests (printed).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <cmocka.h>

#include <linux/crc32c.h>
#include <linux/errno.h>
#include <linux/kernel.h>
#include <linux/string.h>

#include "meta.h"
#include "meta_image.h"

#define SZ_1M		0x100000ULL
#define SZ_2M		0x200000ULL
#define SZ_1G		0x40000000ULL

/* The cache most tests start from: 1 GiB of 4 MiB segments after 2 MiB. */
#define DEV_SIZE	SZ_1G
#define SEG_SIZE	PCACHE_SEGMENT_SIZE_DEFAULT
#define SEG_COUNT	255u	/* (1 GiB - 2 MiB) / 4 MiB, rounded down */
#define ENTRY		3	/* the table slot entry tests use */

static const u8 test_uuid[PCACHE_UUID_SIZE] = {
	0x5c, 0x1e, 0x0a, 0x93, 0x27, 0x4d, 0x4b, 0x8f,
	0xa1, 0x30, 0x6e, 0xd9, 0x42, 0x7b, 0x15, 0xe8,
};

static struct pcache_sb sb;
static struct pcache_backing_table table, slot[2];
static const char *why;

/* Fail unless ret is err and the reason contains reason. */
#define assert_rejected(ret, err, reason) do {				\
	int __ret = (ret);						\
	if (__ret != (err))						\
		fail_msg("returned %d (%s), expected %d (%s)", __ret,	\
			 __ret && why ? why : "-", (err), (reason));	\
	if (!why || !strstr(why, (reason)))				\
		fail_msg("refused for '%s', expected '%s'",		\
			 why ?: "(no reason)", (reason));		\
} while (0)

static void sb_reseal(struct pcache_sb *s)
{
	s->crc = cpu_to_le32(pcache_meta_crc(s, sizeof(*s)));
}

static void table_reseal(struct pcache_backing_table *t)
{
	pcache_table_seal(t, le64_to_cpu(t->seq));
}

static int sb_check(u64 device_size)
{
	why = NULL;
	return pcache_sb_check(&sb, device_size, &why);
}

/* Re-seal the global superblock, then check it on a DEV_SIZE device. */
static int sb_recheck(void)
{
	sb_reseal(&sb);
	return sb_check(DEV_SIZE);
}

static int table_check(const struct pcache_backing_table *t, u32 count)
{
	why = NULL;
	return pcache_table_check(t, count, &why);
}

static int table_recheck(void)
{
	table_reseal(&table);
	return table_check(&table, SEG_COUNT);
}

/* Each copy's reason for refusal; why is copy 0's, for assert_rejected. */
static const char *slot_why[2];

static int select_slot(u32 count)
{
	int ret = pcache_table_select(&slot[0], &slot[1], count, slot_why);

	why = slot_why[0];
	return ret;
}

static int setup_sb(void **state)
{
	(void)state;
	why = NULL;
	return pcache_sb_init(&sb, test_uuid, DEV_SIZE, SEG_SIZE, 0, &why);
}

/* An empty table, and table.entries[ENTRY] a valid used entry. */
static int setup_entry(void **state)
{
	(void)state;
	pcache_table_init(&table);
	meta_entry_fill(&table.entries[ENTRY], ENTRY, 100 * SZ_1G, 512, 16,
			"/dev/disk/by-id/virtio-backing");
	pcache_table_seal(&table, 1);
	return table_check(&table, SEG_COUNT);
}

/* Refused by pcache_entry_check() and, once sealed, by the table check. */
#define assert_entry_rejected(reason) do {				\
	why = NULL;							\
	assert_rejected(pcache_entry_check(&table.entries[ENTRY],	\
					   SEG_COUNT, &why),		\
			-EUCLEAN, reason);				\
	assert_rejected(table_recheck(), -EUCLEAN, reason);		\
} while (0)

static void entry_reset(void)
{
	assert_int_equal(setup_entry(NULL), 0);
}

/* ---- CRC and layout ---- */

static void test_crc32c_vectors(void **state)
{
	static const u8 check[] = "123456789";
	u8 buf[32];
	int i;

	(void)state;
	/* The usual CRC32C check values, with the final inversion undone. */
	assert_int_equal(crc32c(~0u, check, 9), ~0xe3069283u);
	memset(buf, 0, sizeof(buf));
	assert_int_equal(crc32c(~0u, buf, sizeof(buf)), ~0x8a9136aau);
	memset(buf, 0xff, sizeof(buf));
	assert_int_equal(crc32c(~0u, buf, sizeof(buf)), ~0x62a8ab43u);
	for (i = 0; i < 32; i++)
		buf[i] = i;
	assert_int_equal(crc32c(~0u, buf, sizeof(buf)), ~0x46dd794eu);
	/* Chaining, as pcache_meta_crc() does. */
	assert_int_equal(crc32c(crc32c(~0u, check, 4), check + 4, 5),
			 crc32c(~0u, check, 9));
	assert_int_equal(crc32c(1234, check, 0), 1234);
}

static void test_meta_crc_ignores_crc_field(void **state)
{
	struct pcache_sb copy;
	u32 crc;

	(void)state;
	crc = pcache_meta_crc(&sb, sizeof(sb));
	assert_int_equal(le32_to_cpu(sb.crc), crc);
	copy = sb;
	copy.crc = 0;
	assert_int_equal(crc32c(~0u, &copy, sizeof(copy)), crc);
	copy.crc = cpu_to_le32(0xdeadbeef);
	assert_int_equal(pcache_meta_crc(&copy, sizeof(copy)), crc);
	copy.reserved[100] = 1;
	assert_int_not_equal(pcache_meta_crc(&copy, sizeof(copy)), crc);
}

/* format.h asserts these only under __KERNEL__: userspace tools rely on them too. */
static void test_format_layout(void **state)
{
	(void)state;
	assert_int_equal(sizeof(struct pcache_sb), PCACHE_SB_SIZE);
	assert_int_equal(offsetof(struct pcache_sb, crc), 0);
	assert_int_equal(offsetof(struct pcache_sb, magic), 8);
	assert_int_equal(offsetof(struct pcache_sb, uuid), 16);
	assert_int_equal(offsetof(struct pcache_sb, segments_offset), 48);
	assert_int_equal(offsetof(struct pcache_sb, reserved), 80);
	assert_int_equal(sizeof(struct pcache_backing_entry), 256);
	assert_int_equal(offsetof(struct pcache_backing_entry, path), 128);
	assert_int_equal(offsetof(struct pcache_backing_table, crc), 0);
	assert_int_equal(offsetof(struct pcache_backing_table, entries), 64);
	assert_true(sizeof(struct pcache_backing_table) <=
		    PCACHE_TABLE_SLOT_SIZE);
	assert_true(PCACHE_META_END <= PCACHE_SEGMENTS_ALIGN);
	assert_int_equal(PCACHE_MAGIC, 0x0100656863616370ULL);
	assert_memory_equal(&(u64){ cpu_to_le64(PCACHE_MAGIC) }, "pcache\0\1", 8);
	assert_memory_equal(&(u64){ cpu_to_le64(PCACHE_TABLE_MAGIC) },
			    "pcbktab", 8);
}

/* ---- superblock: init ---- */

static void test_sb_roundtrip(void **state)
{
	(void)state;
	assert_int_equal(le64_to_cpu(sb.magic), PCACHE_MAGIC);
	assert_int_equal(le32_to_cpu(sb.version), PCACHE_FORMAT_VERSION);
	assert_memory_equal(sb.uuid, test_uuid, PCACHE_UUID_SIZE);
	assert_int_equal(sb.flags, 0);
	assert_int_equal(le64_to_cpu(sb.device_size), DEV_SIZE);
	assert_int_equal(le64_to_cpu(sb.segments_offset), SZ_2M);
	assert_int_equal(le32_to_cpu(sb.segment_size), SEG_SIZE);
	assert_int_equal(le32_to_cpu(sb.segment_count), SEG_COUNT);
	assert_int_equal(le64_to_cpu(sb.table_offset), PCACHE_TABLE_OFFSET);
	assert_int_equal(le32_to_cpu(sb.table_slot_size),
			 PCACHE_TABLE_SLOT_SIZE);
	assert_int_equal(le32_to_cpu(sb.max_backings), PCACHE_MAX_BACKINGS);
	assert_null(memchr_inv(sb.reserved, 0, sizeof(sb.reserved)));
	assert_int_equal(sb_check(DEV_SIZE), 0);
	assert_null(meta_sb_broken(&sb, DEV_SIZE));
	/* A device that grew since format is still this cache. */
	assert_int_equal(sb_check(DEV_SIZE + SZ_1G), 0);
	assert_int_equal(sb_check(U64_MAX), 0);
}

static void test_sb_init_segment_sizes(void **state)
{
	u64 dev = 64 * SZ_1G + 12345;
	u32 size;

	(void)state;
	for (size = PCACHE_SEGMENT_SIZE_MIN; size && size <= PCACHE_SEGMENT_SIZE_MAX;
	     size <<= 1) {
		why = NULL;
		assert_int_equal(pcache_sb_init(&sb, test_uuid, dev, size, 0, &why), 0);
		assert_int_equal(le32_to_cpu(sb.segment_count),
				 (dev - SZ_2M) / size);
		assert_int_equal(sb_check(dev), 0);
		assert_null(meta_sb_broken(&sb, dev));
	}
}

static void test_sb_init_smallest(void **state)
{
	u64 dev = SZ_2M + PCACHE_SEGMENTS_MIN * SZ_1M;

	(void)state;
	assert_int_equal(pcache_sb_init(&sb, test_uuid, dev, SZ_1M, 0, &why), 0);
	assert_int_equal(le32_to_cpu(sb.segment_count), PCACHE_SEGMENTS_MIN);
	assert_int_equal(sb_check(dev), 0);
	/* The checks accept what init writes, up to the last byte. */
	assert_rejected(sb_check(dev - 1), -EUCLEAN, "larger than this one");
}

static void test_sb_init_caps_count(void **state)
{
	u64 dev = 1ULL << 53;	/* 2^33 segments of 1 MiB */

	(void)state;
	assert_int_equal(pcache_sb_init(&sb, test_uuid, dev, SZ_1M, 0, &why), 0);
	assert_int_equal(le32_to_cpu(sb.segment_count), U32_MAX);
	assert_int_equal(sb_check(dev), 0);
	assert_null(meta_sb_broken(&sb, dev));
	assert_int_equal(pcache_sb_init(&sb, test_uuid, U64_MAX, SZ_1M, 0, &why),
			 0);
	assert_int_equal(sb_check(U64_MAX), 0);
}

static void test_sb_init_bad_segment_size(void **state)
{
	static const u32 bad[] = {
		0, 1, 4096, SZ_1M / 2, SZ_1M - 1, SZ_1M + 1, 3 * SZ_1M,
		PCACHE_SEGMENT_SIZE_MAX - 1, 2 * PCACHE_SEGMENT_SIZE_MAX,
		0x80000000u, U32_MAX,
	};
	unsigned int i;

	(void)state;
	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		why = NULL;
		assert_rejected(pcache_sb_init(&sb, test_uuid, 1ULL << 40,
					       bad[i], 0, &why),
				-EINVAL, "segment size");
	}
}

static void test_sb_init_too_small(void **state)
{
	static const u64 small[] = {
		0, 4096, PCACHE_META_END, SZ_2M - 1, SZ_2M, SZ_2M + 1,
		SZ_2M + PCACHE_SEGMENTS_MIN * SEG_SIZE - 1,
	};
	unsigned int i;

	(void)state;
	for (i = 0; i < ARRAY_SIZE(small); i++) {
		why = NULL;
		assert_rejected(pcache_sb_init(&sb, test_uuid, small[i],
					       SEG_SIZE, 0, &why),
				-ENOSPC, "too small");
	}
	assert_int_equal(pcache_sb_init(&sb, test_uuid,
					SZ_2M + PCACHE_SEGMENTS_MIN * SEG_SIZE,
					SEG_SIZE, 0, &why), 0);
}

/* ---- superblock: one test per check ---- */

static void test_sb_bad_magic(void **state)
{
	(void)state;
	sb.magic = 0;
	assert_rejected(sb_recheck(), -EINVAL, "no pcache superblock");
	sb.magic = cpu_to_le64(PCACHE_MAGIC ^ (1ULL << 56));
	assert_rejected(sb_recheck(), -EINVAL, "no pcache superblock");
	sb.magic = cpu_to_le64(PCACHE_TABLE_MAGIC);
	assert_rejected(sb_recheck(), -EINVAL, "no pcache superblock");
	/* A blank device: everything zero. */
	memset(&sb, 0, sizeof(sb));
	assert_rejected(sb_check(DEV_SIZE), -EINVAL, "no pcache superblock");
}

static void test_sb_bad_crc(void **state)
{
	(void)state;
	sb.crc ^= cpu_to_le32(1);
	assert_rejected(sb_check(DEV_SIZE), -EUCLEAN, "checksum");
	sb.crc ^= cpu_to_le32(1);
	assert_int_equal(sb_check(DEV_SIZE), 0);
	/* Any field, reserved bytes included, is covered. */
	sb.segment_count = cpu_to_le32(SEG_COUNT - 1);
	assert_rejected(sb_check(DEV_SIZE), -EUCLEAN, "checksum");
	assert_int_equal(sb_recheck(), 0);
	sb.reserved[sizeof(sb.reserved) - 1] = 0x80;
	assert_rejected(sb_check(DEV_SIZE), -EUCLEAN, "checksum");
}

static void test_sb_bad_version(void **state)
{
	static const u32 bad[] = { 0, PCACHE_FORMAT_VERSION + 1, U32_MAX };
	unsigned int i;

	(void)state;
	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		sb.version = cpu_to_le32(bad[i]);
		assert_rejected(sb_recheck(), -EINVAL, "version");
	}
}

static void test_sb_flags(void **state)
{
	(void)state;
	sb.flags = cpu_to_le64(PCACHE_SB_F_ALL + 1);
	assert_rejected(sb_recheck(), -EUCLEAN, "unknown superblock flags");
	sb.flags = cpu_to_le64(1ULL << 63);
	assert_rejected(sb_recheck(), -EUCLEAN, "unknown superblock flags");
	/* Data CRCs: known, chosen at format time. */
	sb.flags = cpu_to_le64(PCACHE_SB_F_DATA_CRC);
	assert_int_equal(sb_recheck(), 0);
	assert_int_equal(pcache_sb_init(&sb, test_uuid, DEV_SIZE, SEG_SIZE,
					PCACHE_SB_F_DATA_CRC, &why), 0);
	assert_int_equal(le64_to_cpu(sb.flags), PCACHE_SB_F_DATA_CRC);
	assert_int_equal(sb_check(DEV_SIZE), 0);
	assert_rejected(pcache_sb_init(&sb, test_uuid, DEV_SIZE, SEG_SIZE,
				       PCACHE_SB_F_ALL + 1, &why),
			-EINVAL, "unknown superblock flags");
}

static void test_sb_reserved(void **state)
{
	(void)state;
	sb.reserved[0] = 1;
	assert_rejected(sb_recheck(), -EUCLEAN, "unknown superblock flags or fields");
	sb.reserved[0] = 0;
	sb.reserved[sizeof(sb.reserved) - 1] = 0xff;
	assert_rejected(sb_recheck(), -EUCLEAN, "unknown superblock flags or fields");
}

static void test_sb_zero_uuid(void **state)
{
	(void)state;
	memset(sb.uuid, 0, sizeof(sb.uuid));
	assert_rejected(sb_recheck(), -EUCLEAN, "no uuid");
	sb.uuid[PCACHE_UUID_SIZE - 1] = 1;
	assert_int_equal(sb_recheck(), 0);
}

static void test_sb_device_larger(void **state)
{
	(void)state;
	assert_rejected(sb_check(DEV_SIZE - 1), -EUCLEAN, "larger than this one");
	assert_rejected(sb_check(0), -EUCLEAN, "larger than this one");
	sb.device_size = cpu_to_le64(DEV_SIZE + 4096);
	assert_rejected(sb_recheck(), -EUCLEAN, "larger than this one");
}

static void test_sb_table_offset(void **state)
{
	(void)state;
	sb.table_offset = cpu_to_le64(PCACHE_TABLE_OFFSET + 4096);
	assert_rejected(sb_recheck(), -EUCLEAN, "table geometry");
	sb.table_offset = 0;
	assert_rejected(sb_recheck(), -EUCLEAN, "table geometry");
}

static void test_sb_table_slot_size(void **state)
{
	(void)state;
	sb.table_slot_size = cpu_to_le32(PCACHE_TABLE_SLOT_SIZE * 2);
	assert_rejected(sb_recheck(), -EUCLEAN, "table geometry");
	sb.table_slot_size = cpu_to_le32(sizeof(struct pcache_backing_table));
	assert_rejected(sb_recheck(), -EUCLEAN, "table geometry");
}

static void test_sb_max_backings(void **state)
{
	(void)state;
	sb.max_backings = cpu_to_le32(PCACHE_MAX_BACKINGS + 1);
	assert_rejected(sb_recheck(), -EUCLEAN, "table geometry");
	sb.max_backings = 0;
	assert_rejected(sb_recheck(), -EUCLEAN, "table geometry");
}

static void test_sb_segment_size_not_pow2(void **state)
{
	(void)state;
	sb.segment_size = cpu_to_le32(3 * SZ_1M);
	assert_rejected(sb_recheck(), -EUCLEAN, "segment size");
	sb.segment_size = cpu_to_le32(SEG_SIZE + 4096);
	assert_rejected(sb_recheck(), -EUCLEAN, "segment size");
	sb.segment_size = 0;
	assert_rejected(sb_recheck(), -EUCLEAN, "segment size");
}

static void test_sb_segment_size_too_small(void **state)
{
	(void)state;
	sb.segment_size = cpu_to_le32(PCACHE_SEGMENT_SIZE_MIN / 2);
	assert_rejected(sb_recheck(), -EUCLEAN, "segment size");
	sb.segment_size = cpu_to_le32(1);
	assert_rejected(sb_recheck(), -EUCLEAN, "segment size");
}

static void test_sb_segment_size_too_large(void **state)
{
	(void)state;
	sb.segment_size = cpu_to_le32(PCACHE_SEGMENT_SIZE_MAX * 2);
	assert_rejected(sb_recheck(), -EUCLEAN, "segment size");
	sb.segment_size = cpu_to_le32(0x80000000u);
	assert_rejected(sb_recheck(), -EUCLEAN, "segment size");
}

static void test_sb_offset_unaligned(void **state)
{
	(void)state;
	sb.segments_offset = cpu_to_le64(SZ_2M + 4096);
	assert_rejected(sb_recheck(), -EUCLEAN, "segments offset");
	sb.segments_offset = cpu_to_le64(SZ_2M + SZ_1M);
	assert_rejected(sb_recheck(), -EUCLEAN, "segments offset");
}

static void test_sb_offset_below_meta(void **state)
{
	(void)state;
	/* 0 is the one aligned offset inside the metadata. */
	sb.segments_offset = 0;
	assert_rejected(sb_recheck(), -EUCLEAN, "segments offset");
	sb.segments_offset = cpu_to_le64(PCACHE_META_END - 1);
	assert_rejected(sb_recheck(), -EUCLEAN, "segments offset");
}

static void test_sb_offset_beyond_size(void **state)
{
	(void)state;
	sb.segments_offset = cpu_to_le64(DEV_SIZE);
	assert_rejected(sb_recheck(), -EUCLEAN, "segments offset");
	sb.segments_offset = cpu_to_le64(DEV_SIZE + SZ_2M);
	assert_rejected(sb_recheck(), -EUCLEAN, "segments offset");
	sb.segments_offset = cpu_to_le64(1ULL << 63);
	assert_rejected(sb_recheck(), -EUCLEAN, "segments offset");
}

static void test_sb_count_too_small(void **state)
{
	(void)state;
	sb.segment_count = cpu_to_le32(PCACHE_SEGMENTS_MIN - 1);
	assert_rejected(sb_recheck(), -EUCLEAN, "segment count");
	sb.segment_count = 0;
	assert_rejected(sb_recheck(), -EUCLEAN, "segment count");
	sb.segment_count = cpu_to_le32(PCACHE_SEGMENTS_MIN);
	assert_int_equal(sb_recheck(), 0);
}

static void test_sb_count_too_large(void **state)
{
	(void)state;
	sb.segment_count = cpu_to_le32(SEG_COUNT + 1);
	assert_rejected(sb_recheck(), -EUCLEAN, "segment count");
	sb.segment_count = cpu_to_le32(U32_MAX);
	assert_rejected(sb_recheck(), -EUCLEAN, "segment count");
	/* Fewer segments after a later offset: 254 after 6 MiB. */
	sb.segment_count = cpu_to_le32(SEG_COUNT);
	sb.segments_offset = cpu_to_le64(3 * SZ_2M);
	assert_rejected(sb_recheck(), -EUCLEAN, "segment count");
	sb.segment_count = cpu_to_le32(SEG_COUNT - 1);
	assert_int_equal(sb_recheck(), 0);
}

/* ---- backing table ---- */

static void test_table_init_seal(void **state)
{
	(void)state;
	pcache_table_init(&table);
	assert_int_equal(le64_to_cpu(table.magic), PCACHE_TABLE_MAGIC);
	assert_int_equal(le32_to_cpu(table.nr_entries), PCACHE_MAX_BACKINGS);
	assert_null(memchr_inv(table.entries, 0, sizeof(table.entries)));
	pcache_table_seal(&table, 1);
	assert_int_equal(le64_to_cpu(table.seq), 1);
	assert_int_equal(le32_to_cpu(table.crc),
			 pcache_meta_crc(&table, sizeof(table)));
	assert_int_equal(table_check(&table, SEG_COUNT), 0);
	assert_null(meta_table_broken(&table, SEG_COUNT));
	pcache_table_seal(&table, PCACHE_SEQ_MAX);
	assert_int_equal(table_check(&table, PCACHE_SEGMENTS_MIN), 0);
	/* Beyond, only damage: the next update's seq + 1 could wrap. */
	pcache_table_seal(&table, PCACHE_SEQ_MAX + 1);
	assert_rejected(table_check(&table, SEG_COUNT), -EUCLEAN,
			"seq out of range");
	pcache_table_seal(&table, U64_MAX);
	assert_rejected(table_check(&table, SEG_COUNT), -EUCLEAN,
			"seq out of range");
	/* An unsealed table is refused. */
	pcache_table_init(&table);
	assert_rejected(table_check(&table, SEG_COUNT), -EUCLEAN, "checksum");
}

static void test_table_header(void **state)
{
	(void)state;
	pcache_table_init(&table);
	table.magic = cpu_to_le64(PCACHE_MAGIC);
	assert_rejected(table_recheck(), -EUCLEAN, "magic");
	pcache_table_init(&table);
	table.nr_entries = cpu_to_le32(PCACHE_MAX_BACKINGS - 1);
	assert_rejected(table_recheck(), -EUCLEAN, "table size");
	pcache_table_init(&table);
	table.reserved[39] = 1;
	assert_rejected(table_recheck(), -EUCLEAN, "backing table has unknown fields");
	pcache_table_init(&table);
	pcache_table_seal(&table, 7);
	table.seq = cpu_to_le64(8);
	assert_rejected(table_check(&table, SEG_COUNT), -EUCLEAN, "checksum");
}

static void test_entry_valid(void **state)
{
	struct pcache_backing_entry *e = &table.entries[ENTRY];
	char path[PCACHE_PATH_SIZE];
	u32 v;

	(void)state;
	assert_null(meta_table_broken(&table, SEG_COUNT));
	for (v = 0; v < PCACHE_MODE_NR; v++) {
		e->mode = cpu_to_le32(v);
		assert_int_equal(table_recheck(), 0);
	}
	for (v = 512; v <= 4096; v <<= 1) {
		e->logical_block_size = cpu_to_le32(v);
		e->size = cpu_to_le64(v);
		assert_int_equal(table_recheck(), 0);
	}
	e->quota_segments = cpu_to_le32(PCACHE_BACKING_SEGMENTS_MIN);
	assert_int_equal(table_recheck(), 0);
	e->quota_segments = cpu_to_le32(SEG_COUNT);
	assert_int_equal(table_recheck(), 0);
	e->size = cpu_to_le64(U64_MAX & ~4095ULL);
	assert_int_equal(table_recheck(), 0);
	memset(path, 'p', sizeof(path) - 1);
	path[0] = '/';
	memcpy(e->path, path, sizeof(path) - 1);	/* 127 bytes and a NUL */
	assert_int_equal(table_recheck(), 0);
	memcpy(e->path, "/", 2);
	memset(e->path + 1, 0, sizeof(e->path) - 1);
	assert_int_equal(table_recheck(), 0);
	/* What is valid in a table is valid on its own. */
	why = NULL;
	assert_int_equal(pcache_entry_check(e, SEG_COUNT, &why), 0);
	assert_int_equal(pcache_entry_check(&table.entries[0], 0, &why), 0);
}

static void test_entry_unknown_flags(void **state)
{
	struct pcache_backing_entry *e = &table.entries[ENTRY];

	(void)state;
	e->flags = cpu_to_le32(PCACHE_BACKING_F_USED | 2);
	assert_entry_rejected("unknown flags");
	e->flags = cpu_to_le32(PCACHE_BACKING_F_USED | 0x80000000u);
	assert_entry_rejected("unknown flags");
	/* Unknown flags on an unused entry. */
	memset(e, 0, sizeof(*e));
	e->flags = cpu_to_le32(4);
	assert_entry_rejected("unknown flags");
}

static void test_entry_unused_not_blank(void **state)
{
	struct pcache_backing_entry *e = &table.entries[ENTRY];

	(void)state;
	/* Detached, but the rest of the entry left behind. */
	e->flags = 0;
	assert_entry_rejected("not blank");
	memset(e, 0, sizeof(*e));
	e->reserved[10] = 1;
	assert_entry_rejected("not blank");
	memset(e, 0, sizeof(*e));
	e->path[PCACHE_PATH_SIZE - 1] = 1;
	assert_entry_rejected("not blank");
	memset(e, 0, sizeof(*e));
	assert_int_equal(table_recheck(), 0);
}

static void test_entry_bad_mode(void **state)
{
	struct pcache_backing_entry *e = &table.entries[ENTRY];

	(void)state;
	e->mode = cpu_to_le32(PCACHE_MODE_NR);
	assert_entry_rejected("unknown cache mode");
	e->mode = cpu_to_le32(U32_MAX);
	assert_entry_rejected("unknown cache mode");
}

static void test_entry_zero_uuid(void **state)
{
	struct pcache_backing_entry *e = &table.entries[ENTRY];

	(void)state;
	memset(e->uuid, 0, sizeof(e->uuid));
	assert_entry_rejected("no uuid");
}

static void test_entry_lbs_not_pow2(void **state)
{
	struct pcache_backing_entry *e = &table.entries[ENTRY];

	(void)state;
	e->logical_block_size = cpu_to_le32(768);
	assert_entry_rejected("logical block size");
	e->logical_block_size = cpu_to_le32(4095);
	assert_entry_rejected("logical block size");
	e->logical_block_size = 0;
	assert_entry_rejected("logical block size");
}

static void test_entry_lbs_too_small(void **state)
{
	struct pcache_backing_entry *e = &table.entries[ENTRY];

	(void)state;
	e->logical_block_size = cpu_to_le32(256);
	assert_entry_rejected("logical block size");
	e->logical_block_size = cpu_to_le32(1);
	assert_entry_rejected("logical block size");
}

static void test_entry_lbs_too_large(void **state)
{
	struct pcache_backing_entry *e = &table.entries[ENTRY];

	(void)state;
	e->logical_block_size = cpu_to_le32(8192);
	assert_entry_rejected("logical block size");
	e->logical_block_size = cpu_to_le32(0x80000000u);
	assert_entry_rejected("logical block size");
}

static void test_entry_size_zero(void **state)
{
	struct pcache_backing_entry *e = &table.entries[ENTRY];

	(void)state;
	e->size = 0;
	assert_entry_rejected("bad size");
}

static void test_entry_size_not_multiple(void **state)
{
	struct pcache_backing_entry *e = &table.entries[ENTRY];

	(void)state;
	e->size = cpu_to_le64(100 * SZ_1G + 511);
	assert_entry_rejected("bad size");
	e->logical_block_size = cpu_to_le32(4096);
	e->size = cpu_to_le64(10 * 4096 + 512);
	assert_entry_rejected("bad size");
	e->size = cpu_to_le64(512);
	assert_entry_rejected("bad size");
}

static void test_entry_quota_too_small(void **state)
{
	struct pcache_backing_entry *e = &table.entries[ENTRY];

	(void)state;
	e->quota_segments = cpu_to_le32(PCACHE_BACKING_SEGMENTS_MIN - 1);
	assert_entry_rejected("quota out of range");
	e->quota_segments = 0;
	assert_entry_rejected("quota out of range");
}

static void test_entry_quota_too_large(void **state)
{
	struct pcache_backing_entry *e = &table.entries[ENTRY];

	(void)state;
	e->quota_segments = cpu_to_le32(SEG_COUNT + 1);
	assert_entry_rejected("quota out of range");
	e->quota_segments = cpu_to_le32(U32_MAX);
	assert_entry_rejected("quota out of range");
}

/* clean_seq comes from pmem: one near the top would wrap the seq counter. */
static void test_entry_clean_seq(void **state)
{
	struct pcache_backing_entry *e = &table.entries[ENTRY];

	(void)state;
	e->clean_seq = cpu_to_le64(PCACHE_SEQ_MAX);
	assert_int_equal(table_recheck(), 0);
	e->clean_seq = cpu_to_le64(PCACHE_SEQ_MAX + 1);
	assert_entry_rejected("clean_seq out of range");
	e->clean_seq = cpu_to_le64(U64_MAX);
	assert_entry_rejected("clean_seq out of range");
}

static void test_entry_reserved(void **state)
{
	struct pcache_backing_entry *e = &table.entries[ENTRY];

	(void)state;
	e->reserved[0] = 1;
	assert_entry_rejected("unknown fields");
	e->reserved[0] = 0;
	e->reserved[sizeof(e->reserved) - 1] = 0x80;
	assert_entry_rejected("unknown fields");
}

static void test_entry_path_empty(void **state)
{
	struct pcache_backing_entry *e = &table.entries[ENTRY];

	(void)state;
	memset(e->path, 0, sizeof(e->path));
	assert_entry_rejected("bad path");
}

static void test_entry_path_unterminated(void **state)
{
	struct pcache_backing_entry *e = &table.entries[ENTRY];

	(void)state;
	memset(e->path, 'a', sizeof(e->path));
	e->path[0] = '/';
	assert_entry_rejected("bad path");
}

static void test_entry_path_relative(void **state)
{
	struct pcache_backing_entry *e = &table.entries[ENTRY];

	(void)state;
	memset(e->path, 0, sizeof(e->path));
	strcpy(e->path, "dev/disk/by-id/virtio-backing");
	assert_entry_rejected("bad path");
	memset(e->path, 0, sizeof(e->path));
	strcpy(e->path, " /dev/sda");
	assert_entry_rejected("bad path");
}

static void test_entry_path_garbage(void **state)
{
	struct pcache_backing_entry *e = &table.entries[ENTRY];

	(void)state;
	/* "/dev/x\0y": a second string hidden after the first. */
	memset(e->path, 0, sizeof(e->path));
	memcpy(e->path, "/dev/x\0y", 8);
	assert_entry_rejected("padded with zeroes");
	memset(e->path, 0, sizeof(e->path));
	strcpy(e->path, "/dev/x");
	e->path[PCACHE_PATH_SIZE - 1] = 'z';
	assert_entry_rejected("padded with zeroes");
}

static void test_table_duplicate_uuid(void **state)
{
	struct pcache_backing_entry *e = &table.entries[ENTRY];

	(void)state;
	meta_entry_fill(&table.entries[ENTRY + 5], ENTRY + 5, SZ_1G, 4096, 8,
			"/dev/disk/by-id/other");
	assert_int_equal(table_recheck(), 0);
	memcpy(table.entries[ENTRY + 5].uuid, e->uuid, sizeof(e->uuid));
	assert_rejected(table_recheck(), -EUCLEAN, "share a uuid");
	/* First and last entry. */
	entry_reset();
	meta_entry_fill(&table.entries[0], 0, SZ_1G, 512, 8, "/a");
	meta_entry_fill(&table.entries[PCACHE_MAX_BACKINGS - 1], 0, SZ_1G,
			512, 8, "/b");
	assert_rejected(table_recheck(), -EUCLEAN, "share a uuid");
}

static void test_table_quota_sum(void **state)
{
	struct pcache_backing_entry *e = &table.entries[ENTRY];

	(void)state;
	e->quota_segments = cpu_to_le32(SEG_COUNT - 100);
	meta_entry_fill(&table.entries[0], 100, SZ_1G, 512, 100, "/a");
	assert_int_equal(table_recheck(), 0);
	table.entries[0].quota_segments = cpu_to_le32(101);
	assert_rejected(table_recheck(), -EUCLEAN, "exceed");
	/* Checked against the cache the table is loaded on. */
	table.entries[0].quota_segments = cpu_to_le32(100);
	assert_int_equal(table_recheck(), 0);
	assert_rejected(table_check(&table, SEG_COUNT - 1), -EUCLEAN, "quota");
}

static void test_table_full(void **state)
{
	char path[32];
	unsigned int i;

	(void)state;
	pcache_table_init(&table);
	for (i = 0; i < PCACHE_MAX_BACKINGS; i++) {
		snprintf(path, sizeof(path), "/dev/disk/by-id/b%u", i);
		meta_entry_fill(&table.entries[i], i, SZ_1G, 512,
				SEG_COUNT / PCACHE_MAX_BACKINGS, path);
	}
	assert_int_equal(table_recheck(), 0);
	assert_null(meta_table_broken(&table, SEG_COUNT));
	/* Quotas of 32 x 7 = 224 segments: a cache of 223 is too small. */
	assert_rejected(table_check(&table, 223), -EUCLEAN, "exceed");
}

/* ---- slot selection ---- */

static void slots_setup(u64 seq0, u64 seq1)
{
	unsigned int i;

	for (i = 0; i < 2; i++) {
		pcache_table_init(&slot[i]);
		meta_entry_fill(&slot[i].entries[i], i, SZ_1G, 512, 8, "/x");
		pcache_table_seal(&slot[i], i ? seq1 : seq0);
	}
}

static void test_select_newest(void **state)
{
	(void)state;
	slots_setup(5, 6);
	assert_int_equal(select_slot(SEG_COUNT), 1);
	slots_setup(7, 6);
	assert_int_equal(select_slot(SEG_COUNT), 0);
	slots_setup(0, PCACHE_SEQ_MAX);
	assert_int_equal(select_slot(SEG_COUNT), 1);
	slots_setup(PCACHE_SEQ_MAX, 0);
	assert_int_equal(select_slot(SEG_COUNT), 0);
	/* A seq out of range makes a slot invalid: the other one wins. */
	slots_setup(U64_MAX, 1);
	assert_int_equal(select_slot(SEG_COUNT), 1);
	/* Both current (the state after every complete update): either. */
	slots_setup(3, 3);
	assert_in_range(select_slot(SEG_COUNT), 0, 1);
}

static void test_select_torn(void **state)
{
	unsigned int newer;

	(void)state;
	for (newer = 0; newer < 2; newer++) {
		slots_setup(newer ? 1 : 2, newer ? 2 : 1);
		/* A torn write: the first half new, the rest not. */
		memset((u8 *)&slot[newer] + sizeof(slot[0]) / 2, 0x5a,
		       sizeof(slot[0]) / 2);
		assert_int_equal(select_slot(SEG_COUNT), !newer);
		assert_non_null(slot_why[newer]);
		assert_null(slot_why[!newer]);
		/* The older one torn instead. */
		slots_setup(newer ? 1 : 2, newer ? 2 : 1);
		slot[!newer].entries[!newer].path[1] ^= 1;
		assert_int_equal(select_slot(SEG_COUNT), newer);
	}
}

static void test_select_newer_invalid(void **state)
{
	(void)state;
	/* Sealed, but refused by a field check: the older one is used. */
	slots_setup(1, 2);
	slot[1].entries[1].mode = cpu_to_le32(PCACHE_MODE_NR);
	table_reseal(&slot[1]);
	assert_int_equal(select_slot(SEG_COUNT), 0);
	/* Each slot is checked against the cache's segment count. */
	slots_setup(1, 2);
	slot[1].entries[1].quota_segments = cpu_to_le32(200);
	table_reseal(&slot[1]);
	assert_int_equal(select_slot(SEG_COUNT), 1);
	assert_int_equal(select_slot(199), 0);
}

static void test_select_both_bad(void **state)
{
	(void)state;
	memset(slot, 0, sizeof(slot));
	assert_rejected(select_slot(SEG_COUNT), -EUCLEAN, "magic");
	slots_setup(1, 2);
	slot[0].seq ^= cpu_to_le64(1);
	slot[1].reserved[0] = 1;
	table_reseal(&slot[1]);
	assert_rejected(select_slot(SEG_COUNT), -EUCLEAN, "checksum");
	/* Each copy's own reason comes back, so that the log names both. */
	assert_non_null(slot_why[1]);
	assert_non_null(strstr(slot_why[1], "unknown fields"));
	slots_setup(1, 2);
	assert_rejected(select_slot(PCACHE_BACKING_SEGMENTS_MIN), -EUCLEAN,
			"quota");
}

/* ---- seed images, as the fuzzer starts from them ---- */

static void test_seed_images(void **state)
{
	static struct meta_image img;
	struct meta_image_result res;
	const char *broken;
	unsigned int i;

	(void)state;
	for (i = 0; i < meta_nr_seeds; i++) {
		meta_seeds[i].build(&img);
		broken = meta_image_run(&img, &res);
		if (broken)
			fail_msg("seed %s: %s", meta_seeds[i].name, broken);
		if (res.sb_ret != meta_seeds[i].sb_ret ||
		    res.select_ret != meta_seeds[i].select_ret)
			fail_msg("seed %s: superblock %d (%s), table %d (%s); expected %d, %d",
				 meta_seeds[i].name, res.sb_ret,
				 res.sb_why ?: "-", res.select_ret,
				 res.select_why[0] ?: "-", meta_seeds[i].sb_ret,
				 meta_seeds[i].select_ret);
	}
}

/*
 * Images the module really wrote (corpus/meta-real/, cut by
 * scripts/harvest-corpus.sh): the checks must accept every one of them, as
 * the module accepted them at register time, with the backings attached
 * by then.  Each image of the list must be there: a harvest that lost one
 * fails here, not silently in the fuzzer's coverage.
 */
static void test_real_images(void **state)
{
	static const struct {
		const char *name;
		unsigned int backings;
	} real[] = {
		{ "real-format", 0 },
		{ "real-attach", 2 },
		{ "real-writes", 2 },
		{ "real-powercut", 2 },
	};
	static struct meta_image img;
	static u8 buf[META_IMG_SIZE + 1];
	struct meta_image_result res;
	const struct pcache_backing_table *t;
	const char *broken;
	unsigned int i, j, used;
	char path[4096];
	size_t n;
	FILE *f;

	(void)state;
	for (i = 0; i < ARRAY_SIZE(real); i++) {
		snprintf(path, sizeof(path), "%s/%s", CORPUS_REAL, real[i].name);
		f = fopen(path, "rb");
		if (!f)
			fail_msg("%s: missing (scripts/harvest-corpus.sh writes it)",
				 path);
		n = fread(buf, 1, sizeof(buf), f);
		fclose(f);
		if (n != META_IMG_SIZE)
			fail_msg("%s: %zu bytes, not an image of %zu", path, n,
				 (size_t)META_IMG_SIZE);
		meta_image_load(&img, buf, n);
		broken = meta_image_run(&img, &res);
		if (broken)
			fail_msg("%s: %s", real[i].name, broken);
		if (res.sb_ret || res.select_ret < 0)
			fail_msg("%s: refused: superblock %d (%s), table %d (%s)",
				 real[i].name, res.sb_ret, res.sb_why ?: "-",
				 res.select_ret, res.select_why[0] ?: "-");
		t = &img.slot[res.select_ret];
		for (j = 0, used = 0; j < PCACHE_MAX_BACKINGS; j++)
			used += !!(le32_to_cpu(t->entries[j].flags) &
				   PCACHE_BACKING_F_USED);
		print_message("%s: accepted, slot %d (seq %llu), %u backings\n",
			      real[i].name, res.select_ret,
			      (unsigned long long)le64_to_cpu(t->seq), used);
		assert_int_equal(used, real[i].backings);
	}
}

/* ---- random mutations ---- */

#define MUTATION_ROUNDS	20000

static u64 rng_state;

/* ---- segment headers and the key records of a segment's log ---- */

#define LOG_GEN		0x9e3779b97f4a7c15ULL
#define LOG_BACKING	(1ULL << 21)	/* sectors: a 1 GiB backing device */

static const u8 other_uuid[PCACHE_UUID_SIZE] = { 1, 2, 3 };
static struct pcache_seg_header hdr;

static void hdr_reseal(void)
{
	hdr.crc = cpu_to_le32(pcache_meta_crc(&hdr, sizeof(hdr)));
}

static int hdr_check(void)
{
	why = NULL;
	return pcache_seg_header_check(&hdr, test_uuid, &why);
}

static void test_seg_header(void **state)
{
	(void)state;
	pcache_seg_header_init(&hdr, test_uuid, other_uuid, 7, LOG_GEN);
	assert_int_equal(hdr_check(), 0);
	assert_int_equal(le64_to_cpu(hdr.epoch), 7);
	assert_int_equal(le64_to_cpu(hdr.gen), LOG_GEN);

	hdr.epoch = cpu_to_le64(8);
	assert_rejected(hdr_check(), -EUCLEAN, "checksum mismatch");
	hdr_reseal();
	assert_int_equal(hdr_check(), 0);

	memset(&hdr, 0, sizeof(hdr));
	assert_rejected(hdr_check(), -EINVAL, "no segment header");

	pcache_seg_header_init(&hdr, other_uuid, other_uuid, 7, LOG_GEN);
	assert_rejected(hdr_check(), -EUCLEAN, "of another cache");

	pcache_seg_header_init(&hdr, test_uuid, other_uuid, 7, 0);
	assert_rejected(hdr_check(), -EUCLEAN, "no generation");

	pcache_seg_header_init(&hdr, test_uuid, other_uuid, 7, LOG_GEN);
	hdr.reserved[4031] = 1;
	hdr_reseal();
	assert_rejected(hdr_check(), -EUCLEAN, "unknown fields");
	pcache_seg_header_init(&hdr, test_uuid, other_uuid, 7, LOG_GEN);
	hdr.reserved0 = cpu_to_le32(1);
	hdr_reseal();
	assert_rejected(hdr_check(), -EUCLEAN, "unknown fields");
}

static struct pcache_replay_cursor log_cursor(void)
{
	return (struct pcache_replay_cursor){
		.gen = LOG_GEN,
		.data_end = pcache_seg_data_offset(SEG_SIZE),
		.segment_size = SEG_SIZE,
		.backing_sectors = LOG_BACKING,
	};
}

/* A sealed record, as the write path makes it. */
static struct pcache_key_record log_record(u64 seq, u64 start, u32 len,
					   u32 data_off)
{
	struct pcache_key_record rec;

	memset(&rec, 0, sizeof(rec));
	rec.seq = cpu_to_le64(seq);
	rec.gen = cpu_to_le64(LOG_GEN);
	rec.start = cpu_to_le64(start);
	rec.len = cpu_to_le32(len);
	rec.data_off = cpu_to_le32(data_off);
	pcache_key_seal(&rec);
	return rec;
}

static int key_check(const struct pcache_key_record *rec,
		     struct pcache_replay_cursor *cur)
{
	why = NULL;
	return pcache_key_check(rec, cur, &why);
}

/* The seal is the CRC the checks of every other structure compute. */
static void test_key_seal(void **state)
{
	struct pcache_key_record rec = log_record(1, 0, 8, 69632);

	(void)state;
	assert_int_equal(le32_to_cpu(rec.magic), PCACHE_KEY_MAGIC);
	assert_int_equal(le32_to_cpu(rec.crc), pcache_meta_crc(&rec, sizeof(rec)));
	rec.crc = 0;
	assert_int_equal(pcache_meta_crc(&rec, sizeof(rec)),
			 crc32c(~0u, &rec, sizeof(rec)));
}

/* A log as the write path leaves it replays whole, then ends cleanly. */
static void test_key_log(void **state)
{
	struct pcache_replay_cursor cur = log_cursor();
	u32 off = pcache_seg_data_offset(SEG_SIZE);
	struct pcache_key_record rec;
	u64 seq = 100;
	u32 i;

	(void)state;
	for (i = 0; i < 64; i++) {
		u32 len = 1 + i % 16;

		/* Seqs of one segment rise, with gaps (other CPUs' writes). */
		seq += 1 + i % 3;
		rec = log_record(seq, (i * 977) % (LOG_BACKING - 16), len, off);
		assert_int_equal(key_check(&rec, &cur), 0);
		assert_int_equal(cur.prev_seq, seq);
		off += len << 9;
		assert_int_equal(cur.data_end, off);
	}
	/* Never written: zeroes end the log. */
	memset(&rec, 0, sizeof(rec));
	assert_rejected(key_check(&rec, &cur), -EUCLEAN, "no intact record");

	/* A record of the longest write, and one at the top of the seqs. */
	cur = log_cursor();
	rec = log_record(1, 0, PCACHE_KEY_DATA_SECTORS_MAX,
			 pcache_seg_data_offset(SEG_SIZE));
	assert_int_equal(key_check(&rec, &cur), 0);
	rec = log_record(PCACHE_SEQ_MAX, PCACHE_KEY_DATA_SECTORS_MAX, 8,
			 cur.data_end);
	assert_int_equal(key_check(&rec, &cur), 0);

	/* Data may fill the segment to its last byte, not beyond. */
	cur = log_cursor();
	rec = log_record(1, 0, 8, SEG_SIZE - 4096);
	assert_int_equal(key_check(&rec, &cur), 0);
	cur = log_cursor();
	rec = log_record(1, 0, 9, SEG_SIZE - 4096);
	assert_rejected(key_check(&rec, &cur), -EUCLEAN, "outside its place");
}

/* On a backing device of 4 KiB blocks, records come in whole blocks. */
static void test_key_whole_blocks(void **state)
{
	const u32 data = pcache_seg_data_offset(SEG_SIZE);
	struct pcache_replay_cursor cur = log_cursor();
	struct pcache_key_record rec;

	(void)state;
	cur.block_mask = 7;
	rec = log_record(1, 8, 16, data);
	assert_int_equal(key_check(&rec, &cur), 0);
	rec = log_record(2, 4, 8, cur.data_end);
	assert_rejected(key_check(&rec, &cur), -EUCLEAN, "whole blocks");
	rec = log_record(2, 8, 9, cur.data_end);
	assert_rejected(key_check(&rec, &cur), -EUCLEAN, "whole blocks");
	assert_int_equal(cur.prev_seq, 1);
	/* Zeroes too: writeback sends them as they are. */
	rec = log_record(2, 1, 8, 0);
	rec.flags = cpu_to_le32(PCACHE_KEY_F_ZEROES);
	pcache_key_seal(&rec);
	assert_rejected(key_check(&rec, &cur), -EUCLEAN, "whole blocks");
	/* 512-byte blocks: any sector. */
	cur = log_cursor();
	rec = log_record(1, 3, 5, data);
	assert_int_equal(key_check(&rec, &cur), 0);
}

/* Every way a record ends replay, and the cursor stays where it was. */
static void test_key_rejects(void **state)
{
	const u32 data = pcache_seg_data_offset(SEG_SIZE);
	struct pcache_replay_cursor cur, before;
	struct pcache_key_record rec, prev;
	unsigned int byte, bit;

	(void)state;
	cur = log_cursor();
	prev = log_record(10, 100, 8, data);
	assert_int_equal(key_check(&prev, &cur), 0);
	before = cur;

#define EXPECT_END(r, reason) do {					\
		cur = before;						\
		assert_rejected(key_check(&(r), &cur), -EUCLEAN, reason); \
		assert_memory_equal(&cur, &before, sizeof(cur));	\
	} while (0)

	/* Any flipped bit of a record breaks its CRC. */
	for (byte = 0; byte < sizeof(rec); byte++) {
		for (bit = 0; bit < 8; bit++) {
			rec = log_record(11, 200, 8, data + 4096);
			((u8 *)&rec)[byte] ^= 1u << bit;
			EXPECT_END(rec, "no intact record");
		}
	}
	/* Torn: the first half of a new record over an older one. */
	rec = log_record(11, 200, 8, data + 4096);
	memcpy((u8 *)&rec + 32, (u8 *)&prev + 32, 32);
	EXPECT_END(rec, "no intact record");

	/* A record of an earlier lap of the segment: intact, another gen. */
	rec = log_record(11, 200, 8, data + 4096);
	rec.gen = cpu_to_le64(LOG_GEN + 1);
	pcache_key_seal(&rec);
	EXPECT_END(rec, "earlier lap");

	/* Out of sequence: the same seq again, or an older one. */
	rec = log_record(10, 200, 8, data + 4096);
	EXPECT_END(rec, "out of sequence");
	rec = log_record(9, 200, 8, data + 4096);
	EXPECT_END(rec, "out of sequence");

	/* Fields this version does not know. */
	rec = log_record(11, 200, 8, data + 4096);
	rec.flags = cpu_to_le32(PCACHE_KEY_F_ALL + 1);
	pcache_key_seal(&rec);
	EXPECT_END(rec, "unknown fields");
	rec = log_record(11, 200, 8, 0);
	rec.flags = cpu_to_le32(PCACHE_KEY_F_ZEROES | 0x80000000u);
	pcache_key_seal(&rec);
	EXPECT_END(rec, "unknown fields");
	/* A data CRC where the cache has none, or on a record without data. */
	rec = log_record(11, 200, 8, data + 4096);
	rec.data_crc = cpu_to_le32(1);
	pcache_key_seal(&rec);
	EXPECT_END(rec, "data CRC it cannot have");
	cur.data_crc = true;
	before = cur;
	assert_int_equal(key_check(&rec, &cur), 0);
	cur = before;
	rec = log_record(11, 200, 8, 0);
	rec.flags = cpu_to_le32(PCACHE_KEY_F_ZEROES);
	rec.data_crc = cpu_to_le32(1);
	pcache_key_seal(&rec);
	EXPECT_END(rec, "data CRC it cannot have");
	cur.data_crc = false;
	before = cur;
	rec = log_record(11, 200, 8, data + 4096);
	rec.reserved[15] = 0x80;
	pcache_key_seal(&rec);
	EXPECT_END(rec, "unknown fields");

	/* Ranges the backing device does not have, or none at all. */
	rec = log_record(11, 200, 0, data + 4096);
	EXPECT_END(rec, "outside the backing device");
	rec = log_record(11, LOG_BACKING, 8, data + 4096);
	EXPECT_END(rec, "outside the backing device");
	rec = log_record(11, LOG_BACKING - 7, 8, data + 4096);
	EXPECT_END(rec, "outside the backing device");
	rec = log_record(11, ~0ULL - 3, 8, data + 4096);
	EXPECT_END(rec, "outside the backing device");
	rec = log_record(11, 0, 0xffffffffu, data + 4096);
	EXPECT_END(rec, "outside the backing device");

	/* A seq no cache reaches: the counter taken from it would wrap. */
	rec = log_record(PCACHE_SEQ_MAX + 1, 200, 8, data + 4096);
	EXPECT_END(rec, "seq out of range");
	rec = log_record(U64_MAX, 200, 8, data + 4096);
	EXPECT_END(rec, "seq out of range");

	/* More data than one write holds: writeback takes it in one bio. */
	rec = log_record(11, 200, PCACHE_KEY_DATA_SECTORS_MAX + 1, data + 4096);
	EXPECT_END(rec, "longer than any write");

	/* Data that is not after the previous record's, inside the segment. */
	rec = log_record(11, 200, 8, data + 4095);
	EXPECT_END(rec, "outside its place");		/* previous data */
	rec = log_record(11, 200, 8, data + 4096 + 1);
	EXPECT_END(rec, "outside its place");		/* not a sector */
	rec = log_record(11, 200, 8, 4096);
	EXPECT_END(rec, "outside its place");		/* in the key area */
	rec = log_record(11, 200, 8, SEG_SIZE);
	EXPECT_END(rec, "outside its place");
	rec = log_record(11, 200, 8, 0xfffffe00u);
	EXPECT_END(rec, "outside its place");		/* no u32 wrap */
#undef EXPECT_END

	/* After all that, the next good record is still taken. */
	cur = before;
	rec = log_record(11, 200, 8, data + 4096);
	assert_int_equal(key_check(&rec, &cur), 0);
}

/* A record without data, as WRITE_ZEROES and DISCARD make it. */
static struct pcache_key_record zeroes_record(u64 seq, u64 start, u32 len,
					      u32 data_off, u32 flags)
{
	struct pcache_key_record rec = log_record(seq, start, len, data_off);

	rec.flags = cpu_to_le32(flags);
	pcache_key_seal(&rec);
	return rec;
}

/*
 * Records of zeroes take no data: they leave the data cursor alone, and
 * the data records after them are checked as if they were not there.  A
 * data offset, a discard with data, or a range across an aligned MiB ends
 * the log.
 */
static void test_key_zeroes(void **state)
{
	const u32 data = pcache_seg_data_offset(SEG_SIZE);
	const u32 zf = PCACHE_KEY_F_ZEROES, df = zf | PCACHE_KEY_F_DISCARD;
	struct pcache_replay_cursor cur, before;
	struct pcache_key_record rec;

	(void)state;
	cur = log_cursor();
	rec = log_record(1, 0, 8, data);
	assert_int_equal(key_check(&rec, &cur), 0);
	rec = zeroes_record(2, 2048, 2048, 0, zf);
	assert_int_equal(key_check(&rec, &cur), 0);
	assert_int_equal(cur.prev_seq, 2);
	assert_int_equal(cur.data_end, data + 4096);
	rec = zeroes_record(3, 4095, 1, 0, df);
	assert_int_equal(key_check(&rec, &cur), 0);
	assert_int_equal(cur.data_end, data + 4096);
	/* The next data goes on after the last data, not after the zeroes. */
	rec = log_record(4, 0, 8, data + 4096);
	assert_int_equal(key_check(&rec, &cur), 0);
	assert_int_equal(cur.data_end, data + 8192);
	before = cur;

#define EXPECT_END(r, reason) do {							cur = before;								assert_rejected(key_check(&(r), &cur), -EUCLEAN, reason); 		assert_memory_equal(&cur, &before, sizeof(cur));		} while (0)

	rec = zeroes_record(5, 0, 8, data + 8192, zf);
	EXPECT_END(rec, "zeroes with a data offset");
	rec = log_record(5, 0, 8, data + 8192);
	rec.flags = cpu_to_le32(PCACHE_KEY_F_DISCARD);
	pcache_key_seal(&rec);
	EXPECT_END(rec, "discard with data");
	rec = zeroes_record(5, 2047, 2, 0, zf);
	EXPECT_END(rec, "across a 1 MiB boundary");
	rec = zeroes_record(5, 0, 2049, 0, df);
	EXPECT_END(rec, "across a 1 MiB boundary");
	rec = zeroes_record(5, LOG_BACKING - 1, 2, 0, zf);
	EXPECT_END(rec, "outside the backing device");
	rec = zeroes_record(5, 0, 0, 0, zf);
	EXPECT_END(rec, "outside the backing device");
	rec = zeroes_record(4, 0, 8, 0, zf);
	EXPECT_END(rec, "out of sequence");
	rec = zeroes_record(5, 0, 8, 0, zf | PCACHE_KEY_F_CLEAN);
	EXPECT_END(rec, "zeroes marked clean");
	rec = zeroes_record(5, 0, 8, 0, df | PCACHE_KEY_F_CLEAN);
	EXPECT_END(rec, "zeroes marked clean");
	/* Clean data (a read cache fill) is data: checked and placed as such. */
	rec = zeroes_record(5, 0, 8, data + 8191, PCACHE_KEY_F_CLEAN);
	EXPECT_END(rec, "outside its place");
	cur = before;
	rec = zeroes_record(5, 0, 8, data + 8192, PCACHE_KEY_F_CLEAN);
	assert_int_equal(key_check(&rec, &cur), 0);
	assert_int_equal(cur.data_end, data + 12288);
	rec = log_record(6, 0, 8, data + 12288);
	assert_int_equal(key_check(&rec, &cur), 0);
#undef EXPECT_END
}

static u64 rng(void)
{
	/* xorshift64* */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dULL;
}

static int setup_rng(void **state)
{
	const char *env = getenv("PCACHE_TEST_SEED");
	u64 seed = env ? strtoull(env, NULL, 0) : 0x70636163686521ULL;

	(void)state;
	rng_state = seed ?: 1;
	print_message("random mutation tests: PCACHE_TEST_SEED=%#llx\n",
		      (unsigned long long)seed);
	return 0;
}

/*
 * Change 1 to 8 bytes of buf, mostly in its first hot bytes (the fields),
 * to random values or to boundary values of the field around them.
 * Returns how many bytes differ from before.
 */
static size_t mutate(u8 *buf, size_t len, size_t hot)
{
	static const u32 edges[] = {
		0, 1, 2, 3, 4, 7, 8, 255, 256, 511, 512, 4096, 0x100000,
		0x200000, 0x10000000, 0x7fffffff, 0x80000000u, U32_MAX,
	};
	static u8 before[sizeof(struct meta_image)];
	size_t n = 1 + rng() % 8, off, i, changed = 0;
	u32 v;

	memcpy(before, buf, len);
	while (n--) {
		off = rng() % (rng() & 1 ? hot : len);
		switch (rng() % 4) {
		case 0:
		case 1:
			buf[off] ^= 1 + rng() % 255;
			break;
		case 2:
			buf[off] = 1u << (rng() % 8);
			break;
		default:
			off &= ~(size_t)3;
			if (off + 4 > len)
				break;
			v = cpu_to_le32(edges[rng() % ARRAY_SIZE(edges)]);
			memcpy(buf + off, &v, 4);
			break;
		}
	}
	for (i = 0; i < len; i++)
		changed += buf[i] != before[i];
	return changed;
}

static void test_sb_mutations(void **state)
{
	/* Each large enough for 8 segments of 256 MiB. */
	static const u64 sizes[] = { 4 * SZ_1G, 5 * SZ_1G + 4096, 1ULL << 50 };
	struct pcache_sb valid;
	const char *broken;
	unsigned int round;
	u64 dev, actual;
	size_t changed;
	bool reseal;
	int ret;

	(void)state;
	for (round = 0; round < MUTATION_ROUNDS; round++) {
		dev = sizes[rng() % ARRAY_SIZE(sizes)];
		assert_int_equal(pcache_sb_init(&valid, test_uuid, dev,
						SZ_1M << rng() % 9, 0, &why), 0);
		sb = valid;
		changed = mutate((u8 *)&sb, sizeof(sb),
				 offsetof(struct pcache_sb, reserved));
		reseal = rng() & 1;
		if (reseal)
			sb_reseal(&sb);
		actual = rng() % 4 ? dev : rng();
		ret = sb_check(actual);
		broken = meta_ret_broken(ret, why);
		if (!broken && !ret)
			broken = meta_sb_broken(&sb, actual);
		if (!broken && !reseal && changed && !ret)
			broken = "a changed superblock passed without a new crc";
		if (broken)
			fail_msg("round %u: %s", round, broken);
	}
}

static void test_table_mutations(void **state)
{
	struct pcache_backing_table valid;
	const char *broken;
	unsigned int round, i, nr;
	u32 count;
	int ret;

	(void)state;
	for (round = 0; round < MUTATION_ROUNDS / 4; round++) {
		pcache_table_init(&valid);
		nr = rng() % 4;
		for (i = 0; i < nr; i++)
			meta_entry_fill(&valid.entries[i], i, (i + 1) * SZ_1G,
					512 << (rng() % 4), 4 + i, "/dev/b");
		pcache_table_seal(&valid, 10);
		count = rng() % 4 ? SEG_COUNT : rng() % 64;
		for (i = 0; i < 2; i++) {
			slot[i] = valid;
			pcache_table_seal(&slot[i], 10 + rng() % 3);
			if (!(rng() % 4))
				continue;	/* leave this one intact */
			mutate((u8 *)&slot[i], sizeof(slot[i]),
			       offsetof(struct pcache_backing_table, entries) +
			       (nr + 1) * sizeof(struct pcache_backing_entry));
			if (rng() & 1)
				table_reseal(&slot[i]);
		}
		ret = select_slot(count);
		broken = ret < 0 ? meta_ret_broken(ret, why) : NULL;
		if (ret < 0 && ret != -EUCLEAN)
			broken = "table select returned an errno other than -EUCLEAN";
		if (ret >= 0)
			broken = ret > 1 ? "no slot index" :
				 meta_table_broken(&slot[ret], count);
		if (broken)
			fail_msg("round %u: %s", round, broken);
	}
}

static void test_image_mutations(void **state)
{
	static struct meta_image img;
	struct meta_image_result res;
	const char *broken;
	unsigned int round;

	(void)state;
	for (round = 0; round < MUTATION_ROUNDS / 4; round++) {
		meta_seeds[rng() % meta_nr_seeds].build(&img);
		mutate((u8 *)&img.sb, sizeof(img.sb), 80);
		mutate((u8 *)img.slot, sizeof(img.slot), 64 + 2 * 256);
		img.ctl = rng() % 16;
		broken = meta_image_run(&img, &res);
		if (broken)
			fail_msg("round %u: %s", round, broken);
	}
}

#define sb_test(f)	cmocka_unit_test_setup(f, setup_sb)
#define entry_test(f)	cmocka_unit_test_setup(f, setup_entry)

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crc32c_vectors),
		sb_test(test_meta_crc_ignores_crc_field),
		cmocka_unit_test(test_format_layout),

		sb_test(test_sb_roundtrip),
		cmocka_unit_test(test_sb_init_segment_sizes),
		cmocka_unit_test(test_sb_init_smallest),
		cmocka_unit_test(test_sb_init_caps_count),
		cmocka_unit_test(test_sb_init_bad_segment_size),
		cmocka_unit_test(test_sb_init_too_small),
		sb_test(test_sb_bad_magic),
		sb_test(test_sb_bad_crc),
		sb_test(test_sb_bad_version),
		sb_test(test_sb_flags),
		sb_test(test_sb_reserved),
		sb_test(test_sb_zero_uuid),
		sb_test(test_sb_device_larger),
		sb_test(test_sb_table_offset),
		sb_test(test_sb_table_slot_size),
		sb_test(test_sb_max_backings),
		sb_test(test_sb_segment_size_not_pow2),
		sb_test(test_sb_segment_size_too_small),
		sb_test(test_sb_segment_size_too_large),
		sb_test(test_sb_offset_unaligned),
		sb_test(test_sb_offset_below_meta),
		sb_test(test_sb_offset_beyond_size),
		sb_test(test_sb_count_too_small),
		sb_test(test_sb_count_too_large),

		cmocka_unit_test(test_table_init_seal),
		cmocka_unit_test(test_table_header),
		entry_test(test_entry_valid),
		entry_test(test_entry_unknown_flags),
		entry_test(test_entry_unused_not_blank),
		entry_test(test_entry_bad_mode),
		entry_test(test_entry_zero_uuid),
		entry_test(test_entry_lbs_not_pow2),
		entry_test(test_entry_lbs_too_small),
		entry_test(test_entry_lbs_too_large),
		entry_test(test_entry_size_zero),
		entry_test(test_entry_size_not_multiple),
		entry_test(test_entry_quota_too_small),
		entry_test(test_entry_quota_too_large),
		entry_test(test_entry_clean_seq),
		entry_test(test_entry_reserved),
		entry_test(test_entry_path_empty),
		entry_test(test_entry_path_unterminated),
		entry_test(test_entry_path_relative),
		entry_test(test_entry_path_garbage),
		entry_test(test_table_duplicate_uuid),
		entry_test(test_table_quota_sum),
		cmocka_unit_test(test_table_full),

		cmocka_unit_test(test_select_newest),
		cmocka_unit_test(test_select_torn),
		cmocka_unit_test(test_select_newer_invalid),
		cmocka_unit_test(test_select_both_bad),

		cmocka_unit_test(test_seg_header),
		cmocka_unit_test(test_key_seal),
		cmocka_unit_test(test_key_log),
		cmocka_unit_test(test_key_whole_blocks),
		cmocka_unit_test(test_key_rejects),
		cmocka_unit_test(test_key_zeroes),

		cmocka_unit_test(test_seed_images),
		cmocka_unit_test(test_real_images),
		cmocka_unit_test(test_sb_mutations),
		cmocka_unit_test(test_table_mutations),
		cmocka_unit_test(test_image_mutations),
	};

	return cmocka_run_group_tests_name("pcache meta", tests, setup_rng,
					   NULL);
}
