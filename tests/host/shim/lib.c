// SPDX-License-Identifier: GPL-2.0
/*
 * Host implementations of the kernel library functions meta.c calls that
 * the C library lacks: crc32c() and memchr_inv().
 */
#include <linux/crc32c.h>
#include <linux/string.h>

#define CRC32C_POLY_LE	0x82F63B78u

static u32 crc32c_table[256];

/* Built before main(), so that threaded tests may call crc32c() at once. */
__attribute__((constructor)) static void crc32c_init_table(void)
{
	u32 i, j, crc;

	for (i = 0; i < 256; i++) {
		crc = i;
		for (j = 0; j < 8; j++)
			crc = (crc >> 1) ^ (CRC32C_POLY_LE & -(crc & 1));
		crc32c_table[i] = crc;
	}
}

u32 crc32c(u32 crc, const void *address, unsigned int length)
{
	const u8 *p = address;

	while (length--)
		crc = (crc >> 8) ^ crc32c_table[(crc ^ *p++) & 0xff];
	return crc;
}

void *memchr_inv(const void *s, int c, size_t n)
{
	const u8 *p = s;
	u8 value = c;

	for (; n; n--, p++)
		if (*p != value)
			return (void *)p;
	return NULL;
}
