/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The fuzz input format of pcache's metadata ("image") and the checks run
 * on it, shared by the fuzz target, the seed corpus generator and the unit
 * tests (which replay the corpus).
 *
 * An image is what the module reads from pmem at register time, plus the
 * device size and one control byte, packed without padding:
 *
 *   0       u8     control: META_IMG_* bits below
 *   1       le64   device size in bytes
 *   9       struct pcache_sb               (4096 bytes)
 *   4105    struct pcache_backing_table    slot 0 (as much as the module reads)
 *   12361   struct pcache_backing_table    slot 1
 *   20617   end; a shorter input is padded with zeroes, a longer one cut
 */
#ifndef _PCACHE_META_IMAGE_H
#define _PCACHE_META_IMAGE_H

#include <linux/types.h>
#include <pcache/format.h>

/* Re-seal the CRC before checking, so that field checks are reached. */
#define META_IMG_RESEAL_SB	0x01
#define META_IMG_RESEAL_SLOT0	0x02
#define META_IMG_RESEAL_SLOT1	0x04
/* Ignore the input's device size: take the one the superblock records. */
#define META_IMG_SIZE_FROM_SB	0x08

#define META_IMG_CTL_OFF	0
#define META_IMG_SIZE_OFF	1
#define META_IMG_SB_OFF		9
#define META_IMG_SLOT0_OFF	(META_IMG_SB_OFF + sizeof(struct pcache_sb))
#define META_IMG_SLOT1_OFF	(META_IMG_SLOT0_OFF + \
				 sizeof(struct pcache_backing_table))
#define META_IMG_SIZE		(META_IMG_SLOT1_OFF + \
				 sizeof(struct pcache_backing_table))

struct meta_image {
	u8 ctl;
	u64 device_size;
	struct pcache_sb sb;
	struct pcache_backing_table slot[2];
};

/* What meta_image_run() saw. */
struct meta_image_result {
	int sb_ret;
	const char *sb_why;
	u32 segment_count;	/* the table was checked against this */
	int select_ret;		/* slot index or -errno */
	const char *select_why[2];	/* each copy's refusal, NULL if valid */
};

void meta_image_load(struct meta_image *img, const void *data, size_t size);
void meta_image_store(const struct meta_image *img, u8 *buf);

/*
 * Check an image as the module does at register time (pcache_sb_check,
 * then pcache_table_select with the superblock's segment count), after the
 * re-sealing the control byte asks for.  The table is selected even when the
 * superblock is refused (against its raw segment count): the functions are
 * pure and must be safe on anything.  Returns NULL, or which promise of
 * meta.c the result breaks.
 */
const char *meta_image_run(struct meta_image *img,
			   struct meta_image_result *res);

/*
 * What the module relies on once a check has passed; NULL if it holds.
 * Restates the guarantees, not the checks: the segments fit the device,
 * every used entry can be opened and sized, the quotas fit the cache.
 */
const char *meta_sb_broken(const struct pcache_sb *sb, u64 device_size);
const char *meta_table_broken(const struct pcache_backing_table *table,
			      u32 segment_count);

/* Is ret an errno the checks may return, with a reason? */
const char *meta_ret_broken(int ret, const char *why);

/* A used backing entry that passes the checks; id picks its uuid. */
void meta_entry_fill(struct pcache_backing_entry *e, unsigned int id,
		     u64 size, u32 lbs, u32 quota, const char *path);

/* Seed images (seeds.c), with what the module must make of them. */
struct meta_seed {
	const char *name;
	int sb_ret;
	int select_ret;
	void (*build)(struct meta_image *img);
};

extern const struct meta_seed meta_seeds[];
extern const unsigned int meta_nr_seeds;

#endif /* _PCACHE_META_IMAGE_H */
