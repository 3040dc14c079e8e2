// SPDX-License-Identifier: GPL-2.0
/*
 * Seed inputs for fuzz_replay (see its header for the layout): segments
 * whose logs the write path could have left, sealed with meta.c itself.
 *
 * usage: gen_replay_seeds DIR
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <linux/kernel.h>
#include <linux/types.h>

#include "meta.h"

#define SEG_SIZE	(64u << 10)
#define NR_RECORDS	(SEG_SIZE / PCACHE_SEG_KEYS_RATIO / PCACHE_KEY_SIZE)
#define INPUT_HEAD	6

static const u8 cache_uuid[PCACHE_UUID_SIZE] = { 0xca, 0xc4, 0xe0 };
static const u8 backing_uuid[PCACHE_UUID_SIZE] = { 0xba, 0xc4 };

struct input {
	u8 head[INPUT_HEAD];
	struct pcache_seg_header hdr;
	struct pcache_key_record rec[NR_RECORDS];
};

/*
 * Seed @n: @nr records of @sectors each, over a device of 2^20 sectors;
 * every @zeroes-th one (if not 0) a record of zeroes, a discard every
 * other time; every @clean-th one (if not 0, and not zeroes) clean data,
 * as a read cache fill writes it.
 */
static void write_seed(const char *dir, int n, u8 control, unsigned int nr,
		       u32 sectors, u32 stride, unsigned int zeroes,
		       unsigned int clean)
{
	static struct input in;
	u32 off = pcache_seg_data_offset(SEG_SIZE);
	char path[4096];
	unsigned int i;
	FILE *f;

	memset(&in, 0, sizeof(in));
	in.head[0] = control;
	in.head[3] = 0x10;		/* 2^20 sectors */
	in.head[5] = 9;			/* partitions of 2^10 sectors */
	pcache_seg_header_init(&in.hdr, cache_uuid, backing_uuid, 1,
			       0x1234567890abcdefULL);
	for (i = 0; i < nr && off + sectors * 512 <= SEG_SIZE; i++) {
		struct pcache_key_record *r = &in.rec[i];

		r->seq = cpu_to_le64(10 + 2 * i);
		r->gen = in.hdr.gen;
		r->start = cpu_to_le64((u64)i * stride % (1 << 20));
		r->len = cpu_to_le32(sectors);
		if (zeroes && i % zeroes == zeroes - 1) {
			/* Inside its aligned MiB; no data. */
			r->start = cpu_to_le64((u64)i * stride % (1 << 20) & ~2047ULL);
			r->flags = cpu_to_le32(PCACHE_KEY_F_ZEROES |
					       (i / zeroes % 2 ? PCACHE_KEY_F_DISCARD : 0));
			pcache_key_seal(r);
			continue;
		}
		r->data_off = cpu_to_le32(off);
		if (clean && i % clean == clean - 1)
			r->flags = cpu_to_le32(PCACHE_KEY_F_CLEAN);
		pcache_key_seal(r);
		off += sectors * 512;
	}
	snprintf(path, sizeof(path), "%s/seed-%02d", dir, n);
	f = fopen(path, "wb");
	/* The input has no padding: the head, then the segment's bytes. */
	if (!f || fwrite(in.head, sizeof(in.head), 1, f) != 1 ||
	    fwrite(&in.hdr, sizeof(in.hdr), 1, f) != 1 ||
	    fwrite(in.rec, sizeof(in.rec), 1, f) != 1 || fclose(f)) {
		perror(path);
		exit(1);
	}
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: gen_replay_seeds DIR\n");
		return 2;
	}
	write_seed(argv[1], 0, 0, NR_RECORDS, 8, 8, 0, 0);	/* sequential 4 KiB */
	write_seed(argv[1], 1, 0, NR_RECORDS, 8, 4, 0, 0);	/* overlapping */
	write_seed(argv[1], 2, 0, NR_RECORDS, 1, 3, 0, 0);	/* 512 B, overlapping */
	write_seed(argv[1], 3, 0, 3, 32, 5000, 0, 0);		/* a few large */
	write_seed(argv[1], 4, 7, NR_RECORDS, 8, 1000, 0, 0);	/* resealed */
	write_seed(argv[1], 5, 0, NR_RECORDS, 8, 4, 3, 0);	/* zeroes, discards */
	write_seed(argv[1], 6, 0, NR_RECORDS, 8, 4, 5, 2);	/* clean data too */
	printf("gen_replay_seeds: 7 seed inputs in %s\n", argv[1]);
	return 0;
}
