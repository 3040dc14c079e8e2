// SPDX-License-Identifier: GPL-2.0
/*
 * Fuzz images of pcache's metadata, and what meta.c promises about them:
 * see meta_image.h.
 */
#include <linux/errno.h>
#include <linux/kernel.h>
#include <linux/log2.h>
#include <linux/string.h>

#include "meta.h"
#include "meta_image.h"

/* Copy the part of [off, off + len) of the input that exists. */
static void load_part(void *dst, size_t off, size_t len, const u8 *data,
		      size_t size)
{
	if (off < size)
		memcpy(dst, data + off, min_t(size_t, len, size - off));
}

void meta_image_load(struct meta_image *img, const void *data, size_t size)
{
	u8 raw_size[8] = { 0 };
	int i;

	memset(img, 0, sizeof(*img));
	load_part(&img->ctl, META_IMG_CTL_OFF, 1, data, size);
	load_part(raw_size, META_IMG_SIZE_OFF, sizeof(raw_size), data, size);
	for (i = 7; i >= 0; i--)
		img->device_size = img->device_size << 8 | raw_size[i];
	load_part(&img->sb, META_IMG_SB_OFF, sizeof(img->sb), data, size);
	load_part(&img->slot[0], META_IMG_SLOT0_OFF, sizeof(img->slot[0]),
		  data, size);
	load_part(&img->slot[1], META_IMG_SLOT1_OFF, sizeof(img->slot[1]),
		  data, size);
}

void meta_image_store(const struct meta_image *img, u8 *buf)
{
	int i;

	buf[META_IMG_CTL_OFF] = img->ctl;
	for (i = 0; i < 8; i++)
		buf[META_IMG_SIZE_OFF + i] = img->device_size >> (8 * i);
	memcpy(buf + META_IMG_SB_OFF, &img->sb, sizeof(img->sb));
	memcpy(buf + META_IMG_SLOT0_OFF, &img->slot[0], sizeof(img->slot[0]));
	memcpy(buf + META_IMG_SLOT1_OFF, &img->slot[1], sizeof(img->slot[1]));
}

static bool zero(const void *buf, size_t len)
{
	return !memchr_inv(buf, 0, len);
}

const char *meta_ret_broken(int ret, const char *why)
{
	if (!ret)
		return NULL;
	if (ret != -EINVAL && ret != -EUCLEAN)
		return "a check returned an errno other than -EINVAL or -EUCLEAN";
	if (!why || !*why)
		return "a check failed without a reason";
	return NULL;
}

const char *meta_sb_broken(const struct pcache_sb *sb, u64 device_size)
{
	u64 sb_size = le64_to_cpu(sb->device_size);
	u64 offset = le64_to_cpu(sb->segments_offset);
	u64 seg_size = le32_to_cpu(sb->segment_size);
	u64 count = le32_to_cpu(sb->segment_count);

	if (le64_to_cpu(sb->magic) != PCACHE_MAGIC ||
	    le32_to_cpu(sb->version) != PCACHE_FORMAT_VERSION)
		return "accepted superblock: wrong magic or version";
	if (le32_to_cpu(sb->crc) != pcache_meta_crc(sb, sizeof(*sb)))
		return "accepted superblock: wrong crc";
	if (le64_to_cpu(sb->flags) & ~PCACHE_SB_F_ALL ||
	    !zero(sb->reserved, sizeof(sb->reserved)) ||
	    zero(sb->uuid, sizeof(sb->uuid)))
		return "accepted superblock: flags, reserved bytes or uuid";
	if (le64_to_cpu(sb->table_offset) != PCACHE_TABLE_OFFSET ||
	    le32_to_cpu(sb->table_slot_size) != PCACHE_TABLE_SLOT_SIZE ||
	    le32_to_cpu(sb->max_backings) != PCACHE_MAX_BACKINGS)
		return "accepted superblock: table geometry";
	if (!is_power_of_2(seg_size) || seg_size < PCACHE_SEGMENT_SIZE_MIN ||
	    seg_size > PCACHE_SEGMENT_SIZE_MAX)
		return "accepted superblock: segment size";
	if (offset < PCACHE_META_END || offset % PCACHE_SEGMENTS_ALIGN)
		return "accepted superblock: segments overlap the metadata or are unaligned";
	if (count < PCACHE_SEGMENTS_MIN)
		return "accepted superblock: too few segments";
	if (sb_size > device_size || offset > sb_size ||
	    count * seg_size > sb_size - offset)
		return "accepted superblock: segments end past the device";
	return NULL;
}

const char *meta_table_broken(const struct pcache_backing_table *table,
			      u32 segment_count)
{
	u64 quota_total = 0;
	int i, j;

	if (le64_to_cpu(table->magic) != PCACHE_TABLE_MAGIC ||
	    le32_to_cpu(table->nr_entries) != PCACHE_MAX_BACKINGS ||
	    !zero(table->reserved, sizeof(table->reserved)))
		return "accepted table: magic, size or reserved bytes";
	if (le32_to_cpu(table->crc) != pcache_meta_crc(table, sizeof(*table)))
		return "accepted table: wrong crc";
	for (i = 0; i < PCACHE_MAX_BACKINGS; i++) {
		const struct pcache_backing_entry *e = &table->entries[i];
		u32 lbs = le32_to_cpu(e->logical_block_size);
		u64 size = le64_to_cpu(e->size);
		u32 quota = le32_to_cpu(e->quota_segments);

		if (le32_to_cpu(e->flags) == 0) {
			if (!zero(e, sizeof(*e)))
				return "accepted table: unused entry not blank";
			continue;
		}
		if (le32_to_cpu(e->flags) != PCACHE_BACKING_F_USED)
			return "accepted table: unknown entry flags";
		if (le32_to_cpu(e->mode) >= PCACHE_MODE_NR)
			return "accepted table: unknown mode";
		if (zero(e->uuid, sizeof(e->uuid)) ||
		    !zero(e->reserved, sizeof(e->reserved)))
			return "accepted table: entry uuid or reserved bytes";
		if (!is_power_of_2(lbs) || lbs < 512 || lbs > 4096 ||
		    !size || size % lbs)
			return "accepted table: entry block size or size";
		if (quota < PCACHE_BACKING_SEGMENTS_MIN || quota > segment_count)
			return "accepted table: entry quota";
		if (e->path[0] != '/' ||
		    !memchr(e->path, 0, sizeof(e->path)) ||
		    !zero(e->path + strlen(e->path),
			  sizeof(e->path) - strlen(e->path)))
			return "accepted table: entry path";
		quota_total += quota;
		for (j = 0; j < i; j++)
			if (le32_to_cpu(table->entries[j].flags) &&
			    !memcmp(table->entries[j].uuid, e->uuid,
				    sizeof(e->uuid)))
				return "accepted table: duplicate uuid";
	}
	if (quota_total > segment_count)
		return "accepted table: quotas exceed the cache";
	return NULL;
}

static void reseal(struct meta_image *img)
{
	int i;

	if (img->ctl & META_IMG_RESEAL_SB)
		img->sb.crc = cpu_to_le32(pcache_meta_crc(&img->sb,
							  sizeof(img->sb)));
	for (i = 0; i < 2; i++)
		if (img->ctl & (META_IMG_RESEAL_SLOT0 << i))
			pcache_table_seal(&img->slot[i],
					  le64_to_cpu(img->slot[i].seq));
}

const char *meta_image_run(struct meta_image *img,
			   struct meta_image_result *res)
{
	const struct pcache_backing_table *chosen, *other;
	u64 device_size = img->device_size;
	const char *broken, *why, *swapped_why[2];
	int ret, i;

	memset(res, 0, sizeof(*res));
	reseal(img);
	if (img->ctl & META_IMG_SIZE_FROM_SB)
		device_size = le64_to_cpu(img->sb.device_size);

	res->sb_ret = pcache_sb_check(&img->sb, device_size, &res->sb_why);
	broken = meta_ret_broken(res->sb_ret, res->sb_why);
	if (!broken && !res->sb_ret)
		broken = meta_sb_broken(&img->sb, device_size);
	if (broken)
		return broken;

	res->segment_count = le32_to_cpu(img->sb.segment_count);
	res->select_ret = pcache_table_select(&img->slot[0], &img->slot[1],
					      res->segment_count,
					      res->select_why);
	for (i = 0; i < 2; i++) {
		/* Each reason is exactly the one the copy's own check gives. */
		why = NULL;
		ret = pcache_table_check(&img->slot[i], res->segment_count,
					 &why);
		broken = meta_ret_broken(ret, why);
		if (broken)
			return broken;
		if (!ret != !res->select_why[i] ||
		    (ret && strcmp(why, res->select_why[i])))
			return "table select's reason differs from the copy's check";
	}
	if (res->select_ret < 0) {
		if (res->select_ret != -EUCLEAN)
			return "table select returned an errno other than -EUCLEAN";
		/* Neither order of the slots may find a valid one. */
		if (pcache_table_select(&img->slot[1], &img->slot[0],
					res->segment_count, swapped_why) >= 0)
			return "table select depends on the order of the slots";
		return NULL;
	}
	if (res->select_ret > 1)
		return "table select returned no slot index";

	chosen = &img->slot[res->select_ret];
	other = &img->slot[!res->select_ret];
	broken = meta_table_broken(chosen, res->segment_count);
	if (broken)
		return broken;
	if (res->select_why[res->select_ret])
		return "table select chose a slot that does not pass the check";
	if (!res->select_why[!res->select_ret] &&
	    le64_to_cpu(other->seq) > le64_to_cpu(chosen->seq))
		return "table select did not choose the newest valid slot";

	ret = pcache_table_select(&img->slot[1], &img->slot[0],
				  res->segment_count, swapped_why);
	if (ret < 0 || ret > 1 ||
	    le64_to_cpu(img->slot[!ret].seq) != le64_to_cpu(chosen->seq))
		return "table select depends on the order of the slots";
	return NULL;
}
