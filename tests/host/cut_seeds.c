// SPDX-License-Identifier: GPL-2.0
/*
 * Cut fuzz seeds out of a real pmem image (scripts/harvest-corpus.sh): the
 * vNVDIMM file of a guest, or a copy of the head of its /dev/pmem0.
 *
 *   cut_seeds IMAGE NAME META_DIR [REPLAY_DIR]
 *
 * The cache device is found by its superblock's magic at a 4 KiB boundary
 * (an fsdax namespace puts its labels and info block in front of it).
 * Writes META_DIR/real-NAME, the metadata image fuzz_meta reads
 * (meta_image.h; control byte 0, the device size the superblock records),
 * and says whether the checks accept it.  With REPLAY_DIR, also inputs of
 * fuzz_replay (its INPUT_SIZE bytes, see fuzz_replay.c) from up to
 * MAX_SEGS written segments (one of each kind, see cut_segments(), then
 * more spread over the cache), each as:
 *   real-NAME-segN-raw   the header and its first 16 records as found
 *   real-NAME-segN-fit   the same, each intact record's data moved into
 *                        the harness's 64 KiB segment (lengths above
 *                        FIT_SECTORS cut) and the record re-sealed, so
 *                        that replay accepts it
 *   real-NAME-segN-tail  fit, of the last records of the log and what
 *                        follows them (torn, stale or never written)
 * Control byte 5 (the harness's cache uuid, header re-sealed), the backing
 * device's size from the backing table.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <linux/kernel.h>
#include <linux/string.h>

#include "meta.h"
#include "meta_image.h"

/* fuzz_replay.c's input. */
#define R_SEG_SIZE	(64u << 10)
#define R_RECORDS	(R_SEG_SIZE / PCACHE_SEG_KEYS_RATIO / PCACHE_KEY_SIZE)
#define R_HALF		(R_RECORDS / 2)
#define R_HEAD		6
#define R_SIZE		(R_HEAD + PCACHE_SEG_HEADER_SIZE + \
			 R_RECORDS * PCACHE_KEY_SIZE)
_Static_assert(R_SIZE == 5126, "follow fuzz_replay.c's INPUT_SIZE");

/* 8 records of 4 KiB fit a half of the harness's data area unchanged. */
#define FIT_SECTORS	14
#define MAX_SEGS	10

static const u8 *img;
static size_t img_size;

static int write_file(const char *dir, const char *name, const void *buf,
		      size_t size)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (!f || fwrite(buf, size, 1, f) != 1 || fclose(f)) {
		fprintf(stderr, "cut_seeds: %s: %s\n", path, strerror(errno));
		exit(1);
	}
	printf("cut_seeds: wrote %s\n", path);
	return 0;
}

/* The offset of the cache device in the image. */
static size_t find_device(void)
{
	size_t off;

	for (off = PCACHE_SB_OFFSET; off + PCACHE_SB_SIZE <= img_size;
	     off += 4096) {
		const struct pcache_sb *sb = (const void *)(img + off);

		if (le64_to_cpu(sb->magic) == PCACHE_MAGIC &&
		    le32_to_cpu(sb->version) == PCACHE_FORMAT_VERSION)
			return off - PCACHE_SB_OFFSET;
	}
	fprintf(stderr, "cut_seeds: no pcache superblock in the image\n");
	exit(1);
}

static const struct pcache_backing_table *cut_meta(size_t dev,
						   const char *name,
						   const char *dir)
{
	static struct meta_image mi;
	static u8 buf[META_IMG_SIZE];
	struct meta_image_result res;
	const char *broken;
	char file[256];
	int slot;

	if (dev + PCACHE_META_END > img_size) {
		fprintf(stderr, "cut_seeds: the image ends in the metadata\n");
		exit(1);
	}
	buf[META_IMG_CTL_OFF] = 0;
	memcpy(buf + META_IMG_SIZE_OFF,
	       &((const struct pcache_sb *)(img + dev + PCACHE_SB_OFFSET))->device_size,
	       8);
	memcpy(buf + META_IMG_SB_OFF, img + dev + PCACHE_SB_OFFSET,
	       sizeof(struct pcache_sb));
	for (slot = 0; slot < 2; slot++)
		memcpy(buf + META_IMG_SLOT0_OFF +
		       slot * sizeof(struct pcache_backing_table),
		       img + dev + PCACHE_TABLE_OFFSET +
		       slot * PCACHE_TABLE_SLOT_SIZE,
		       sizeof(struct pcache_backing_table));
	snprintf(file, sizeof(file), "real-%s", name);
	write_file(dir, file, buf, sizeof(buf));

	meta_image_load(&mi, buf, sizeof(buf));
	broken = meta_image_run(&mi, &res);
	printf("cut_seeds: %s: superblock %s%s, backing table %s%s (slot %d)\n",
	       file, res.sb_ret ? "refused: " : "accepted",
	       res.sb_ret ? res.sb_why : "",
	       res.select_ret < 0 ? "refused: " : "accepted",
	       res.select_ret < 0 ? res.select_why[0] : "", res.select_ret);
	if (broken) {
		fprintf(stderr, "cut_seeds: %s breaks a promise: %s\n", file,
			broken);
		exit(1);
	}
	if (res.sb_ret || res.select_ret < 0)
		return NULL;
	return (const void *)(img + dev + PCACHE_TABLE_OFFSET +
			      res.select_ret * PCACHE_TABLE_SLOT_SIZE);
}

/* How many records of half @half of input @buf fuzz_replay's replay takes. */
static unsigned int harness_accepts(const u8 *buf, unsigned int half)
{
	struct pcache_seg_header hdr;
	struct pcache_key_record rec;
	struct pcache_replay_cursor cur;
	const char *why = NULL;
	unsigned int i;

	memcpy(&hdr, buf + R_HEAD, sizeof(hdr));
	cur = (struct pcache_replay_cursor){
		.gen = le64_to_cpu(hdr.gen),
		.data_end = pcache_seg_data_offset(R_SEG_SIZE),
		.segment_size = R_SEG_SIZE,
		.backing_sectors = 1 + (buf[1] | buf[2] << 8 | (u32)buf[3] << 16),
	};
	for (i = 0; i < R_HALF; i++) {
		memcpy(&rec, buf + R_HEAD + PCACHE_SEG_HEADER_SIZE +
		       (half * R_HALF + i) * PCACHE_KEY_SIZE, sizeof(rec));
		if (pcache_key_check(&rec, &cur, &why))
			break;
	}
	return i;
}

/*
 * One input: the segment's header, records from @first on; with @fit, the
 * intact ones (the first @nr_ok of the log) moved into the harness's data
 * area and re-sealed.
 */
static void cut_replay(const u8 *seg, u64 backing_sectors, unsigned int first,
		       unsigned int nr_ok, bool fit, const char *dir,
		       const char *file)
{
	u8 buf[R_SIZE] = { 0 };
	struct pcache_key_record rec;
	u32 data_end = 0;
	unsigned int i;

	buf[0] = 5;	/* bit 2: our cache uuid, bit 0: re-seal the header */
	backing_sectors = min_t(u64, backing_sectors - 1, 0xffffff);
	buf[1] = backing_sectors;
	buf[2] = backing_sectors >> 8;
	buf[3] = backing_sectors >> 16;
	buf[5] = 10;	/* 1 MiB partitions, the module's default */
	memcpy(buf + R_HEAD, seg, PCACHE_SEG_HEADER_SIZE);
	for (i = 0; i < R_RECORDS; i++) {
		memcpy(&rec, seg + PCACHE_SEG_KEYS_OFFSET +
		       (first + i) * PCACHE_KEY_SIZE, sizeof(rec));
		if (i % R_HALF == 0)
			data_end = pcache_seg_data_offset(R_SEG_SIZE);
		if (fit && first + i < nr_ok) {
			u32 len = min_t(u32, le32_to_cpu(rec.len), FIT_SECTORS);

			rec.len = cpu_to_le32(len);
			rec.data_off = cpu_to_le32(data_end);
			data_end += len << 9;
			pcache_key_seal(&rec);
		}
		memcpy(buf + R_HEAD + PCACHE_SEG_HEADER_SIZE +
		       i * PCACHE_KEY_SIZE, &rec, sizeof(rec));
	}
	write_file(dir, file, buf, sizeof(buf));
	printf("cut_seeds: %s: fuzz_replay accepts %u + %u of %u records\n",
	       file, harness_accepts(buf, 0), harness_accepts(buf, 1),
	       R_RECORDS);
}

/* A segment with a few records, a partly written log or a full one. */
static int seg_kind(unsigned int nr_ok, unsigned int most)
{
	return nr_ok <= R_RECORDS ? 0 : nr_ok < most ? 1 : 2;
}

static void cut_segments(size_t dev, const struct pcache_backing_table *table,
			 const char *name, const char *dir)
{
	const struct pcache_sb *sb = (const void *)(img + dev + PCACHE_SB_OFFSET);
	u64 off = le64_to_cpu(sb->segments_offset);
	u32 size = le32_to_cpu(sb->segment_size);
	u32 count = le32_to_cpu(sb->segment_count);
	u32 nr_keys = pcache_seg_keys_size(size) / PCACHE_KEY_SIZE;
	unsigned int *written, nr_written = 0, i, j, k, b, picked = 0;
	unsigned int *nr_ok, *max_len, most = 0, stride;
	u64 *sectors;
	bool *pick;
	char file[256];

	written = calloc(count, sizeof(*written));
	nr_ok = calloc(count, sizeof(*nr_ok));
	sectors = calloc(count, sizeof(*sectors));
	max_len = calloc(count, sizeof(*max_len));
	pick = calloc(count, sizeof(*pick));
	if (!written || !nr_ok || !sectors || !max_len || !pick)
		exit(1);
	for (i = 0; i < count && dev + off + (u64)(i + 1) * size <= img_size;
	     i++) {
		const u8 *seg = img + dev + off + (u64)i * size;
		const struct pcache_seg_header *hdr = (const void *)seg;
		struct pcache_replay_cursor cur;
		const char *why = NULL;

		if (pcache_seg_header_check(hdr, sb->uuid, &why))
			continue;
		for (b = 0; b < PCACHE_MAX_BACKINGS; b++)
			if (!memcmp(table->entries[b].uuid, hdr->backing_uuid,
				    PCACHE_UUID_SIZE) &&
			    table->entries[b].epoch == hdr->epoch)
				break;
		if (b == PCACHE_MAX_BACKINGS)
			continue;
		cur = (struct pcache_replay_cursor){
			.gen = le64_to_cpu(hdr->gen),
			.data_end = pcache_seg_data_offset(size),
			.segment_size = size,
			.backing_sectors = le64_to_cpu(table->entries[b].size) >> 9,
		};
		max_len[nr_written] = 0;
		for (j = 0; j < nr_keys; j++) {
			const struct pcache_key_record *rec = (const void *)
				(seg + PCACHE_SEG_KEYS_OFFSET + j * PCACHE_KEY_SIZE);

			if (pcache_key_check(rec, &cur, &why))
				break;
			max_len[nr_written] = max_t(u32, max_len[nr_written],
						    le32_to_cpu(rec->len));
		}
		if (!j)
			continue;
		printf("cut_seeds: segment %u: backing %u, %u records of up to %u sectors\n",
		       i, b, j, max_len[nr_written]);
		nr_ok[nr_written] = j;
		most = max_t(unsigned int, most, j);
		sectors[nr_written] = cur.backing_sectors;
		written[nr_written++] = i;
	}
	printf("cut_seeds: %u of %u segments written\n", nr_written, count);
	/*
	 * One segment of each kind (the longest record it holds; a few
	 * records, a partly or a fully written log), then more spread over
	 * the cache up to MAX_SEGS.
	 */
	for (k = 0; k < nr_written && picked < MAX_SEGS; k++) {
		for (j = 0; j < k; j++)
			if (pick[j] && max_len[j] == max_len[k] &&
			    seg_kind(nr_ok[j], most) == seg_kind(nr_ok[k], most))
				break;
		if (j == k) {
			pick[k] = true;
			picked++;
		}
	}
	stride = max_t(unsigned int, 1, nr_written / MAX_SEGS);
	for (k = 0; k < nr_written && picked < MAX_SEGS; k += stride)
		if (!pick[k]) {
			pick[k] = true;
			picked++;
		}
	for (k = 0; k < nr_written; k++) {
		const u8 *seg = img + dev + off + (u64)written[k] * size;
		unsigned int tail;

		if (!pick[k])
			continue;
		snprintf(file, sizeof(file), "real-%s-seg%u-raw", name,
			 written[k]);
		cut_replay(seg, sectors[k], 0, nr_ok[k], false, dir, file);
		snprintf(file, sizeof(file), "real-%s-seg%u-fit", name,
			 written[k]);
		cut_replay(seg, sectors[k], 0, nr_ok[k], true, dir, file);
		/* Half a harness segment of records before the end, half after. */
		if (nr_ok[k] > R_RECORDS && nr_ok[k] + R_HALF <= nr_keys) {
			tail = nr_ok[k] - R_HALF;
			snprintf(file, sizeof(file), "real-%s-seg%u-tail",
				 name, written[k]);
			cut_replay(seg, sectors[k], tail, nr_ok[k], true, dir,
				   file);
		}
	}
	free(written);
	free(max_len);
	free(pick);
	free(nr_ok);
	free(sectors);
	if (!picked) {
		fprintf(stderr, "cut_seeds: no written segment in the image\n");
		exit(1);
	}
}

int main(int argc, char **argv)
{
	const struct pcache_backing_table *table;
	struct stat st;
	size_t dev;
	int fd;

	if (argc != 4 && argc != 5) {
		fprintf(stderr,
			"usage: cut_seeds IMAGE NAME META_DIR [REPLAY_DIR]\n");
		return 2;
	}
	fd = open(argv[1], O_RDONLY);
	if (fd < 0 || fstat(fd, &st)) {
		fprintf(stderr, "cut_seeds: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	img_size = st.st_size;
	img = mmap(NULL, img_size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (img == MAP_FAILED) {
		fprintf(stderr, "cut_seeds: mmap %s: %s\n", argv[1],
			strerror(errno));
		return 1;
	}
	dev = find_device();
	printf("cut_seeds: %s: cache device at byte %zu\n", argv[1], dev);
	table = cut_meta(dev, argv[2], argv[3]);
	if (argc == 5) {
		if (!table) {
			fprintf(stderr, "cut_seeds: no valid backing table to replay with\n");
			return 1;
		}
		cut_segments(dev, table, argv[2], argv[4]);
	}
	return 0;
}
