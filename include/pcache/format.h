/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * pcache on-media format, shared by the kernel module and userspace tools.
 *
 * Everything here describes bytes on a persistent-memory device: fixed-width
 * little-endian fields, naturally aligned, explicit padding, no __packed.
 * Every checksum is CRC32C (Castagnoli) with seed ~0 and no final inversion,
 * as the kernel's crc32c(~0, buf, len), over the object with its crc field
 * taken as zero.
 *
 * Layout of a cache device (byte offsets):
 *
 *   0                     reserved, zeroed by format (4 KiB)
 *   PCACHE_SB_OFFSET      superblock, written once by format (4 KiB)
 *   PCACHE_TABLE_OFFSET   backing table, two slots of PCACHE_TABLE_SLOT_SIZE
 *   sb.segments_offset    sb.segment_count segments of sb.segment_size bytes
 *
 * Layout of a segment (the log; see docs/design.md for the write protocol):
 *
 *   0                     segment header (4 KiB): owner and lap
 *   PCACHE_SEG_KEYS_OFFSET    key records, one cache line each, appended
 *   pcache_seg_data_offset()  data, appended
 *
 * Mutable metadata (the backing table) lives in two slots.  An update writes
 * the whole object with sequence number seq + 1 to the slot not holding the
 * newest copy, fences, then writes the same to the other slot and fences.
 * A reader takes the valid slot with the highest sequence: a torn write
 * leaves the other slot intact, and one damaged slot loses nothing.
 */
#ifndef _PCACHE_FORMAT_H
#define _PCACHE_FORMAT_H

#include <linux/types.h>

/* "pcache\0\1" read as a little-endian u64. */
#define PCACHE_MAGIC			0x0100656863616370ULL
/* "pcbktab\0" */
#define PCACHE_TABLE_MAGIC		0x006261746b626370ULL

/* Bumped on every incompatible change of the layout below. */
#define PCACHE_FORMAT_VERSION		1

#define PCACHE_SB_OFFSET		4096
#define PCACHE_SB_SIZE			4096
#define PCACHE_TABLE_OFFSET		8192
#define PCACHE_TABLE_SLOT_SIZE		16384
#define PCACHE_TABLE_SLOTS		2
#define PCACHE_META_END			(PCACHE_TABLE_OFFSET + \
					 PCACHE_TABLE_SLOTS * PCACHE_TABLE_SLOT_SIZE)

/* Segments start on a 2 MiB boundary, so DAX can map them with huge pages. */
#define PCACHE_SEGMENTS_ALIGN		0x00200000u	/* 2 MiB */
#define PCACHE_SEGMENT_SIZE_MIN		0x00100000u	/* 1 MiB */
#define PCACHE_SEGMENT_SIZE_MAX		0x10000000u	/* 256 MiB */
#define PCACHE_SEGMENT_SIZE_DEFAULT	0x00400000u	/* 4 MiB */
#define PCACHE_SEGMENTS_MIN		8

#define PCACHE_UUID_SIZE		16

struct pcache_sb {
	__le32 crc;
	__le32 version;
	__le64 magic;
	__u8   uuid[PCACHE_UUID_SIZE];
	__le64 flags;			/* PCACHE_SB_F_* */
	__le64 device_size;		/* bytes, at format time */
	__le64 segments_offset;
	__le32 segment_size;		/* bytes, power of two */
	__le32 segment_count;
	__le64 table_offset;		/* PCACHE_TABLE_OFFSET */
	__le32 table_slot_size;		/* PCACHE_TABLE_SLOT_SIZE */
	__le32 max_backings;		/* PCACHE_MAX_BACKINGS */
	__u8   reserved[4016];		/* zero */
};

/*
 * Superblock flags, chosen at format time.  DATA_CRC: every key record
 * with data carries the CRC32C of its data (data_crc), checked on read
 * hits and before writeback; without it, and in records of zeroes,
 * data_crc is zero.
 */
#define PCACHE_SB_F_DATA_CRC		0x0000000000000001ull
#define PCACHE_SB_F_ALL			PCACHE_SB_F_DATA_CRC

/* Cache modes of a backing device. */
enum pcache_cache_mode {
	PCACHE_MODE_WRITEBACK = 0,
	PCACHE_MODE_WRITETHROUGH = 1,
	PCACHE_MODE_WRITEAROUND = 2,
	PCACHE_MODE_NONE = 3,
	PCACHE_MODE_NR,
};

#define PCACHE_BACKING_F_USED		0x00000001u
#define PCACHE_BACKING_F_ALL		PCACHE_BACKING_F_USED

#define PCACHE_MAX_BACKINGS		32
#define PCACHE_PATH_SIZE		128
#define PCACHE_BACKING_SEGMENTS_MIN	4

/*
 * Sequence numbers (of key records, clean_seq, the table's) stay at or
 * below this: at a billion a second it takes 146 years to reach, and a
 * value above it can only be damage, which would wrap a counter.
 */
#define PCACHE_SEQ_MAX			0x4000000000000000ULL	/* 2^62 */

/* One backing device recorded on a cache device; id = index in the table. */
struct pcache_backing_entry {
	__le32 flags;			/* PCACHE_BACKING_F_* */
	__le32 mode;			/* enum pcache_cache_mode */
	__u8   uuid[PCACHE_UUID_SIZE];	/* generated at attach */
	__le64 size;			/* bytes of the backing device */
	__le32 logical_block_size;
	__le32 quota_segments;
	/*
	 * Segments of other epochs hold nothing valid.  Set at attach and
	 * not changed by this version: writeback raises clean_seq instead
	 * (an older one bumped it after emptying the whole cache).
	 */
	__le64 epoch;
	/*
	 * Every key record of this backing with a seq up to here is on the
	 * backing device (written back and flushed): replay skips them.
	 * Raised by writeback, in log order, after a flush of the backing.
	 */
	__le64 clean_seq;
	__u8   reserved[72];		/* zero */
	char   path[PCACHE_PATH_SIZE];	/* NUL-terminated, NUL-padded */
};

struct pcache_backing_table {
	__le32 crc;
	__le32 nr_entries;		/* PCACHE_MAX_BACKINGS */
	__le64 magic;			/* PCACHE_TABLE_MAGIC */
	__le64 seq;
	__u8   reserved[40];		/* zero */
	struct pcache_backing_entry entries[PCACHE_MAX_BACKINGS];
};

/* "pcseg\0\0\1" */
#define PCACHE_SEG_MAGIC		0x0100006765736370ULL
/* "pckey\0" followed by the record type */
#define PCACHE_KEY_MAGIC		0x79656b70u
#define PCACHE_SEG_HEADER_SIZE		4096
#define PCACHE_SEG_KEYS_OFFSET		PCACHE_SEG_HEADER_SIZE
#define PCACHE_KEY_SIZE			64
/* A segment has room for segment_size / PCACHE_SEG_KEYS_RATIO bytes of keys. */
#define PCACHE_SEG_KEYS_RATIO		64

/*
 * Written when a segment is opened for a backing device.  A segment belongs
 * to the backing whose uuid and current epoch it names; gen is random for
 * every opening, so records of earlier laps never match it.
 */
struct pcache_seg_header {
	__le32 crc;
	__le32 reserved0;		/* zero */
	__le64 magic;			/* PCACHE_SEG_MAGIC */
	__u8   cache_uuid[PCACHE_UUID_SIZE];
	__u8   backing_uuid[PCACHE_UUID_SIZE];
	__le64 epoch;			/* the backing's epoch when opened */
	__le64 gen;			/* random, new for every opening */
	__u8   reserved[4032];		/* zero */
};

/*
 * A record holding no data: its sectors read as zeroes (WRITE_ZEROES, and
 * DISCARD, which the cache answers with zeroes too); data_off is 0.
 * DISCARD, only with ZEROES: writeback sends the backing device a discard
 * rather than zeroes.  A module predating these flags ends a segment's log
 * at the first such record.
 */
#define PCACHE_KEY_F_ZEROES		0x00000001u
#define PCACHE_KEY_F_DISCARD		0x00000002u
/*
 * Data read from the backing device on a read miss (read caching): the
 * backing device holds it already, so writeback passes it by, and replay
 * does not index it.  Never with ZEROES.  A module predating this flag ends
 * a segment's log at the first such record, like at the others above.
 */
#define PCACHE_KEY_F_CLEAN		0x00000004u
#define PCACHE_KEY_F_ALL		(PCACHE_KEY_F_ZEROES | PCACHE_KEY_F_DISCARD | \
					 PCACHE_KEY_F_CLEAN)
/*
 * A record of zeroes lies within one aligned window of 1 << this many
 * sectors (1 MiB), so that, like a record of data, it covers a bounded
 * number of index partitions.
 */
#define PCACHE_KEY_ZEROES_SHIFT		11

/*
 * A record of data holds at most 1 MiB: a request is no longer (the disk's
 * max_hw_sectors), and a fill is shorter.
 */
#define PCACHE_KEY_DATA_SECTORS_MAX	2048

/*
 * One write: sectors [start, start + len) of the backing device are at
 * data_off in this segment, or are zeroes (PCACHE_KEY_F_ZEROES).
 * Self-validating: a record is valid only with its magic, its CRC, the gen
 * of its segment's header, and a seq above the previous record of the
 * segment.
 */
struct pcache_key_record {
	__le32 crc;
	__le32 magic;			/* PCACHE_KEY_MAGIC */
	__le64 seq;			/* per backing, increasing */
	__le64 gen;			/* the segment header's */
	__le64 start;			/* backing sector */
	__le32 len;			/* sectors */
	__le32 data_off;		/* bytes from the segment start, or 0 */
	__le32 flags;			/* PCACHE_KEY_F_* */
	__le32 data_crc;		/* CRC32C of the data, or zero */
	__u8   reserved[16];		/* zero */
};

static inline __u32 pcache_seg_keys_size(__u32 segment_size)
{
	return segment_size / PCACHE_SEG_KEYS_RATIO;
}

static inline __u32 pcache_seg_data_offset(__u32 segment_size)
{
	return PCACHE_SEG_KEYS_OFFSET + pcache_seg_keys_size(segment_size);
}

#ifdef __KERNEL__
static_assert(sizeof(struct pcache_seg_header) == PCACHE_SEG_HEADER_SIZE);
static_assert(sizeof(struct pcache_key_record) == PCACHE_KEY_SIZE);
static_assert(sizeof(struct pcache_sb) == PCACHE_SB_SIZE);
static_assert(sizeof(struct pcache_backing_entry) == 256);
static_assert(sizeof(struct pcache_backing_table) <= PCACHE_TABLE_SLOT_SIZE);
#endif

#endif /* _PCACHE_FORMAT_H */
