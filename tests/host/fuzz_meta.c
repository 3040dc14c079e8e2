// SPDX-License-Identifier: GPL-2.0
/*
 * libFuzzer target for pcache's on-media metadata checks: an arbitrary
 * input is read as a cache device image (meta_image.h: control byte, device
 * size, superblock, both backing table slots), checked as the module does
 * at register time, and the results held to what meta.c promises.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "meta_image.h"

_Static_assert(META_IMG_SIZE == 20617, "update FUZZ_MAX_LEN in Makefile");

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct meta_image img;
	struct meta_image_result res;
	const char *broken;

	meta_image_load(&img, data, size);
	broken = meta_image_run(&img, &res);
	if (broken) {
		fprintf(stderr,
			"fuzz_meta: %s (sb %d: %s; table %d: %s / %s)\n",
			broken, res.sb_ret, res.sb_why ?: "-", res.select_ret,
			res.select_why[0] ?: "-", res.select_why[1] ?: "-");
		abort();
	}
	return 0;
}
