/* SPDX-License-Identifier: GPL-2.0 */
/*
 * On-media metadata: building, sealing and validating the superblock and the
 * backing table.  Pure functions over buffers in DRAM (the caller copies
 * from pmem with a machine-check-safe copy first), kept free of anything
 * but a few kernel library helpers so that host-side tests can compile the
 * very same file.
 *
 * Every check returns 0, or a negative errno with *why set to a static
 * string saying what is wrong:
 *   -EINVAL   not a pcache device (no magic) or an unsupported version
 *   -EUCLEAN  a pcache structure that fails validation
 *   -ENOSPC   (init) the device is too small
 */
#ifndef _PCACHE_META_H
#define _PCACHE_META_H

#include <linux/types.h>
#include <pcache/format.h>

u32 pcache_meta_crc(const void *obj, size_t size);

int pcache_sb_init(struct pcache_sb *sb, const u8 *uuid, u64 device_size,
		   u32 segment_size, u64 flags, const char **why);
int pcache_sb_check(const struct pcache_sb *sb, u64 device_size,
		    const char **why);

void pcache_table_init(struct pcache_backing_table *table);
void pcache_table_seal(struct pcache_backing_table *table, u64 seq);
int pcache_table_check(const struct pcache_backing_table *table,
		       u32 segment_count, const char **why);
int pcache_table_select(const struct pcache_backing_table *slot0,
			const struct pcache_backing_table *slot1,
			u32 segment_count, const char *why[2]);
int pcache_entry_check(const struct pcache_backing_entry *entry,
		       u32 segment_count, const char **why);

void pcache_seg_header_init(struct pcache_seg_header *hdr, const u8 *cache_uuid,
			    const u8 *backing_uuid, u64 epoch, u64 gen);
int pcache_seg_header_check(const struct pcache_seg_header *hdr,
			    const u8 *cache_uuid, const char **why);

/* What replay knows of a segment while it walks the segment's records. */
struct pcache_replay_cursor {
	u64 gen;		/* the segment header's */
	u64 prev_seq;		/* 0 before the first record */
	u32 data_end;		/* end of the previous record's data */
	u32 segment_size;
	u64 backing_sectors;	/* size of the backing device */
	u32 block_mask;		/* its logical block, in sectors, minus 1 */
	bool data_crc;		/* the cache has PCACHE_SB_F_DATA_CRC */
};

void pcache_key_seal(struct pcache_key_record *rec);
int pcache_key_check(const struct pcache_key_record *rec,
		     struct pcache_replay_cursor *cur, const char **why);

#endif /* _PCACHE_META_H */
