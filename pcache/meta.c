// SPDX-License-Identifier: GPL-2.0
/*
 * On-media metadata of a cache device: superblock and backing table.
 *
 * pmem content is untrusted input.  A valid CRC only says the bytes are the
 * ones written; every field is still checked against the geometry before
 * anything uses it, so a bad or hostile image is refused with a reason
 * instead of steering the module out of bounds.
 */
#include <linux/errno.h>
#include <linux/kernel.h>
#include <linux/log2.h>
#include <linux/string.h>

#include <linux/crc32c.h>

#include "meta.h"
#ifdef __KERNEL__
#include "compat.h"
#else
/* Host tests: the shim's crc32c(). */
#define pcache_crc32c(crc, buf, len)	crc32c(crc, buf, len)
#endif

/* CRC32C of an object whose first field is its __le32 crc, taken as zero. */
u32 pcache_meta_crc(const void *obj, size_t size)
{
	static const u8 zero_crc[4];
	u32 crc;

	/* Up to 32 KiB (the table): crc32c() and its accelerated driver. */
	crc = crc32c(~0u, zero_crc, sizeof(zero_crc));
	return crc32c(crc, (const u8 *)obj + sizeof(zero_crc),
		      size - sizeof(zero_crc));
}

static bool all_zero(const void *buf, size_t len)
{
	return !memchr_inv(buf, 0, len);
}

int pcache_sb_init(struct pcache_sb *sb, const u8 *uuid, u64 device_size,
		   u32 segment_size, u64 flags, const char **why)
{
	u64 offset = ALIGN(PCACHE_META_END, PCACHE_SEGMENTS_ALIGN);
	u64 count;

	if (!is_power_of_2(segment_size) ||
	    segment_size < PCACHE_SEGMENT_SIZE_MIN ||
	    segment_size > PCACHE_SEGMENT_SIZE_MAX) {
		*why = "segment size must be a power of two from 1M to 256M";
		return -EINVAL;
	}
	count = device_size > offset ? (device_size - offset) / segment_size : 0;
	if (count < PCACHE_SEGMENTS_MIN) {
		*why = "device too small for the minimum number of segments";
		return -ENOSPC;
	}
	count = min_t(u64, count, U32_MAX);
	if (flags & ~PCACHE_SB_F_ALL) {
		*why = "unknown superblock flags";
		return -EINVAL;
	}

	memset(sb, 0, sizeof(*sb));
	sb->magic = cpu_to_le64(PCACHE_MAGIC);
	sb->version = cpu_to_le32(PCACHE_FORMAT_VERSION);
	memcpy(sb->uuid, uuid, PCACHE_UUID_SIZE);
	sb->flags = cpu_to_le64(flags);
	sb->device_size = cpu_to_le64(device_size);
	sb->segments_offset = cpu_to_le64(offset);
	sb->segment_size = cpu_to_le32(segment_size);
	sb->segment_count = cpu_to_le32(count);
	sb->table_offset = cpu_to_le64(PCACHE_TABLE_OFFSET);
	sb->table_slot_size = cpu_to_le32(PCACHE_TABLE_SLOT_SIZE);
	sb->max_backings = cpu_to_le32(PCACHE_MAX_BACKINGS);
	sb->crc = cpu_to_le32(pcache_meta_crc(sb, sizeof(*sb)));
	return 0;
}

static int reject(const char **why, const char *msg)
{
	*why = msg;
	return -EUCLEAN;
}

int pcache_sb_check(const struct pcache_sb *sb, u64 device_size,
		    const char **why)
{
	u64 sb_size = le64_to_cpu(sb->device_size);
	u64 offset = le64_to_cpu(sb->segments_offset);
	u32 seg_size = le32_to_cpu(sb->segment_size);
	u32 count = le32_to_cpu(sb->segment_count);

	if (le64_to_cpu(sb->magic) != PCACHE_MAGIC) {
		*why = "no pcache superblock";
		return -EINVAL;
	}
	if (le32_to_cpu(sb->crc) != pcache_meta_crc(sb, sizeof(*sb)))
		return reject(why, "superblock checksum mismatch");
	if (le32_to_cpu(sb->version) != PCACHE_FORMAT_VERSION) {
		*why = "unsupported on-media format version";
		return -EINVAL;
	}
	if (le64_to_cpu(sb->flags) & ~PCACHE_SB_F_ALL ||
	    !all_zero(sb->reserved, sizeof(sb->reserved)))
		return reject(why, "unknown superblock flags or fields");
	if (all_zero(sb->uuid, sizeof(sb->uuid)))
		return reject(why, "superblock has no uuid");
	if (sb_size > device_size)
		return reject(why, "superblock describes a device larger than this one");
	if (le64_to_cpu(sb->table_offset) != PCACHE_TABLE_OFFSET ||
	    le32_to_cpu(sb->table_slot_size) != PCACHE_TABLE_SLOT_SIZE ||
	    le32_to_cpu(sb->max_backings) != PCACHE_MAX_BACKINGS)
		return reject(why, "backing table geometry is not this version's");
	if (!is_power_of_2(seg_size) || seg_size < PCACHE_SEGMENT_SIZE_MIN ||
	    seg_size > PCACHE_SEGMENT_SIZE_MAX)
		return reject(why, "segment size out of range");
	if (offset < PCACHE_META_END || !IS_ALIGNED(offset, PCACHE_SEGMENTS_ALIGN) ||
	    offset >= sb_size)
		return reject(why, "segments offset out of range");
	if (count < PCACHE_SEGMENTS_MIN || count > (sb_size - offset) / seg_size)
		return reject(why, "segment count does not fit the device");
	return 0;
}

void pcache_table_init(struct pcache_backing_table *table)
{
	memset(table, 0, sizeof(*table));
	table->magic = cpu_to_le64(PCACHE_TABLE_MAGIC);
	table->nr_entries = cpu_to_le32(PCACHE_MAX_BACKINGS);
}

void pcache_table_seal(struct pcache_backing_table *table, u64 seq)
{
	table->seq = cpu_to_le64(seq);
	table->crc = cpu_to_le32(pcache_meta_crc(table, sizeof(*table)));
}

int pcache_entry_check(const struct pcache_backing_entry *entry,
		       u32 segment_count, const char **why)
{
	u32 flags = le32_to_cpu(entry->flags);
	u32 lbs = le32_to_cpu(entry->logical_block_size);
	u64 size = le64_to_cpu(entry->size);
	u32 quota = le32_to_cpu(entry->quota_segments);
	size_t len;

	if (flags & ~PCACHE_BACKING_F_ALL)
		return reject(why, "backing entry has unknown flags");
	if (!(flags & PCACHE_BACKING_F_USED)) {
		if (!all_zero(entry, sizeof(*entry)))
			return reject(why, "unused backing entry is not blank");
		return 0;
	}
	if (le32_to_cpu(entry->mode) >= PCACHE_MODE_NR)
		return reject(why, "backing entry has an unknown cache mode");
	if (all_zero(entry->uuid, sizeof(entry->uuid)))
		return reject(why, "backing entry has no uuid");
	if (!is_power_of_2(lbs) || lbs < 512 || lbs > 4096)
		return reject(why, "backing entry has a bad logical block size");
	if (!size || size & (lbs - 1))
		return reject(why, "backing entry has a bad size");
	if (quota < PCACHE_BACKING_SEGMENTS_MIN || quota > segment_count)
		return reject(why, "backing entry has a quota out of range");
	if (le64_to_cpu(entry->clean_seq) > PCACHE_SEQ_MAX)
		return reject(why, "backing entry has a clean_seq out of range");
	if (!all_zero(entry->reserved, sizeof(entry->reserved)))
		return reject(why, "backing entry has unknown fields");
	len = strnlen(entry->path, sizeof(entry->path));
	if (len == 0 || len == sizeof(entry->path) || entry->path[0] != '/')
		return reject(why, "backing entry has a bad path");
	if (!all_zero(entry->path + len, sizeof(entry->path) - len))
		return reject(why, "backing entry path is not padded with zeroes");
	return 0;
}

int pcache_table_check(const struct pcache_backing_table *table,
		       u32 segment_count, const char **why)
{
	u64 quota_total = 0;
	int i, j, ret;

	if (le64_to_cpu(table->magic) != PCACHE_TABLE_MAGIC)
		return reject(why, "backing table magic mismatch");
	if (le32_to_cpu(table->crc) != pcache_meta_crc(table, sizeof(*table)))
		return reject(why, "backing table checksum mismatch");
	if (le32_to_cpu(table->nr_entries) != PCACHE_MAX_BACKINGS)
		return reject(why, "backing table size is not this version's");
	if (le64_to_cpu(table->seq) > PCACHE_SEQ_MAX)
		return reject(why, "backing table seq out of range");
	if (!all_zero(table->reserved, sizeof(table->reserved)))
		return reject(why, "backing table has unknown fields");

	for (i = 0; i < PCACHE_MAX_BACKINGS; i++) {
		const struct pcache_backing_entry *e = &table->entries[i];

		ret = pcache_entry_check(e, segment_count, why);
		if (ret)
			return ret;
		if (!(le32_to_cpu(e->flags) & PCACHE_BACKING_F_USED))
			continue;
		quota_total += le32_to_cpu(e->quota_segments);
		for (j = 0; j < i; j++) {
			const struct pcache_backing_entry *o = &table->entries[j];

			if ((le32_to_cpu(o->flags) & PCACHE_BACKING_F_USED) &&
			    !memcmp(o->uuid, e->uuid, sizeof(e->uuid)))
				return reject(why, "two backing entries share a uuid");
		}
	}
	if (quota_total > segment_count)
		return reject(why, "backing quotas exceed the cache's segments");
	return 0;
}

/*
 * Pick the slot holding the newest valid table: returns 0 or 1, or -EUCLEAN
 * when neither is valid.  why[i] is copy i's reason for refusal, NULL for a
 * valid copy, so that the caller can say what is wrong with each.
 */
int pcache_table_select(const struct pcache_backing_table *slot0,
			const struct pcache_backing_table *slot1,
			u32 segment_count, const char *why[2])
{
	bool ok0, ok1;

	why[0] = NULL;
	why[1] = NULL;
	ok0 = !pcache_table_check(slot0, segment_count, &why[0]);
	ok1 = !pcache_table_check(slot1, segment_count, &why[1]);
	if (ok0 && ok1)
		return le64_to_cpu(slot1->seq) > le64_to_cpu(slot0->seq) ? 1 : 0;
	if (ok0)
		return 0;
	if (ok1)
		return 1;
	return -EUCLEAN;
}

void pcache_seg_header_init(struct pcache_seg_header *hdr, const u8 *cache_uuid,
			    const u8 *backing_uuid, u64 epoch, u64 gen)
{
	memset(hdr, 0, sizeof(*hdr));
	hdr->magic = cpu_to_le64(PCACHE_SEG_MAGIC);
	memcpy(hdr->cache_uuid, cache_uuid, PCACHE_UUID_SIZE);
	memcpy(hdr->backing_uuid, backing_uuid, PCACHE_UUID_SIZE);
	hdr->epoch = cpu_to_le64(epoch);
	hdr->gen = cpu_to_le64(gen);
	hdr->crc = cpu_to_le32(pcache_meta_crc(hdr, sizeof(*hdr)));
}

/*
 * A segment header is valid if it is intact and written by this cache; the
 * caller matches its backing uuid and epoch.  -EINVAL: not a header (a free
 * segment); -EUCLEAN: a damaged one, treated the same by the caller.
 */
int pcache_seg_header_check(const struct pcache_seg_header *hdr,
			    const u8 *cache_uuid, const char **why)
{
	if (le64_to_cpu(hdr->magic) != PCACHE_SEG_MAGIC) {
		*why = "no segment header";
		return -EINVAL;
	}
	if (le32_to_cpu(hdr->crc) != pcache_meta_crc(hdr, sizeof(*hdr)))
		return reject(why, "segment header checksum mismatch");
	if (hdr->reserved0 || !all_zero(hdr->reserved, sizeof(hdr->reserved)))
		return reject(why, "segment header has unknown fields");
	if (memcmp(hdr->cache_uuid, cache_uuid, PCACHE_UUID_SIZE))
		return reject(why, "segment header of another cache");
	if (!hdr->gen)
		return reject(why, "segment header has no generation");
	return 0;
}

void pcache_key_seal(struct pcache_key_record *rec)
{
	rec->magic = cpu_to_le32(PCACHE_KEY_MAGIC);
	/* pcache_meta_crc()'s value, in one pass: this is on every write. */
	rec->crc = 0;
	rec->crc = cpu_to_le32(pcache_crc32c(~0u, rec, sizeof(*rec)));
}

/*
 * The next record of a segment in replay.  Anything but 0 ends the
 * segment's log: a torn or never written record, one of an earlier lap
 * (another gen), one out of sequence, or one whose fields do not fit the
 * segment and the backing device.  On success the cursor moves past it.
 */
int pcache_key_check(const struct pcache_key_record *rec,
		     struct pcache_replay_cursor *cur, const char **why)
{
	u64 seq = le64_to_cpu(rec->seq);
	u64 start = le64_to_cpu(rec->start);
	u32 len = le32_to_cpu(rec->len);
	u32 data_off = le32_to_cpu(rec->data_off);
	u32 flags = le32_to_cpu(rec->flags);
	u64 data_end = (u64)data_off + ((u64)len << 9);

	if (le32_to_cpu(rec->magic) != PCACHE_KEY_MAGIC ||
	    le32_to_cpu(rec->crc) != pcache_meta_crc(rec, sizeof(*rec)))
		return reject(why, "end of log (no intact record)");
	if (le64_to_cpu(rec->gen) != cur->gen)
		return reject(why, "end of log (record of an earlier lap)");
	if (seq <= cur->prev_seq)
		return reject(why, "end of log (record out of sequence)");
	if (seq > PCACHE_SEQ_MAX)
		return reject(why, "record seq out of range");
	if (flags & ~PCACHE_KEY_F_ALL ||
	    !all_zero(rec->reserved, sizeof(rec->reserved)))
		return reject(why, "record has unknown fields");
	/* Any value is a CRC, but only of data, and only if the cache has them. */
	if (rec->data_crc && (!cur->data_crc || flags & PCACHE_KEY_F_ZEROES))
		return reject(why, "record has a data CRC it cannot have");
	if (!len || start >= cur->backing_sectors ||
	    len > cur->backing_sectors - start)
		return reject(why, "record outside the backing device");
	/* Requests come in whole blocks: I/O built from this would not. */
	if ((start | len) & cur->block_mask)
		return reject(why, "record not in whole blocks of the backing device");
	if (flags & PCACHE_KEY_F_ZEROES) {
		/* No data: nothing in the segment to check or to move past. */
		if (flags & PCACHE_KEY_F_CLEAN)
			return reject(why, "record of zeroes marked clean");
		if (data_off)
			return reject(why, "record of zeroes with a data offset");
		if (start >> PCACHE_KEY_ZEROES_SHIFT !=
		    (start + len - 1) >> PCACHE_KEY_ZEROES_SHIFT)
			return reject(why, "record of zeroes across a 1 MiB boundary");
		cur->prev_seq = seq;
		return 0;
	}
	if (flags & PCACHE_KEY_F_DISCARD)
		return reject(why, "record of a discard with data");
	if (len > PCACHE_KEY_DATA_SECTORS_MAX)
		return reject(why, "record of data longer than any write");
	if (data_off < cur->data_end || data_off & 511 ||
	    data_off < pcache_seg_data_offset(cur->segment_size) ||
	    data_end > cur->segment_size)
		return reject(why, "record data outside its place in the segment");
	cur->prev_seq = seq;
	cur->data_end = data_end;
	return 0;
}
