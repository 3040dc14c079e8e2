/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Host shim for <linux/crc32c.h>: CRC32C (Castagnoli, reflected polynomial
 * 0x82F63B78) from seed crc, without final inversion, exactly as the
 * kernel's crc32c(): crc32c(~0, buf, len) is the usual CRC32C of buf with
 * its final inversion left out.  Implemented in lib.c.
 */
#ifndef _PCACHE_SHIM_LINUX_CRC32C_H
#define _PCACHE_SHIM_LINUX_CRC32C_H

#include <linux/types.h>

u32 crc32c(u32 crc, const void *address, unsigned int length);

#endif /* _PCACHE_SHIM_LINUX_CRC32C_H */
