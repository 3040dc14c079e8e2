// SPDX-License-Identifier: GPL-2.0
/*
 * Write the fuzz seed corpus: every seed image of seeds.c as built, and
 * once more with all re-seal bits set so that mutations of it get past the
 * CRCs.
 *
 *   gen_corpus DIR
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include <linux/kernel.h>
#include <linux/string.h>

#include "meta_image.h"

static int write_image(const char *dir, const char *name, const char *suffix,
		       const struct meta_image *img)
{
	static u8 buf[META_IMG_SIZE];
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s%s", dir, name, suffix);
	meta_image_store(img, buf);
	f = fopen(path, "wb");
	if (!f || fwrite(buf, sizeof(buf), 1, f) != 1 || fclose(f)) {
		fprintf(stderr, "gen_corpus: %s: %s\n", path, strerror(errno));
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static struct meta_image img;
	unsigned int i;

	if (argc != 2) {
		fprintf(stderr, "usage: gen_corpus DIR\n");
		return 2;
	}
	for (i = 0; i < meta_nr_seeds; i++) {
		meta_seeds[i].build(&img);
		if (write_image(argv[1], meta_seeds[i].name, "", &img))
			return 1;
		img.ctl |= META_IMG_RESEAL_SB | META_IMG_RESEAL_SLOT0 |
			   META_IMG_RESEAL_SLOT1;
		if (write_image(argv[1], meta_seeds[i].name, "-resealed", &img))
			return 1;
	}
	printf("gen_corpus: %u seed images in %s\n", 2 * meta_nr_seeds, argv[1]);
	return 0;
}
