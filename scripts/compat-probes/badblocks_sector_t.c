// SPDX-License-Identifier: GPL-2.0
/*
 * badblocks_check() gives the length of the bad range as a sector_t, not
 * an int: Linux 6.15, in the badblocks clean-up series.
 */
#include <linux/badblocks.h>

int probe(struct badblocks *bb);
int probe(struct badblocks *bb)
{
	sector_t first_bad, bad_sectors;

	return badblocks_check(bb, 0, 8, &first_bad, &bad_sectors);
}
