/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * pcache on-media format, shared by the kernel module and userspace tools.
 *
 * Everything here describes bytes on a persistent-memory device: fixed-width
 * little-endian fields, naturally aligned, explicit padding, no __packed.
 */
#ifndef _PCACHE_FORMAT_H
#define _PCACHE_FORMAT_H

/* "pcache\0\1" read as a little-endian u64. */
#define PCACHE_MAGIC		0x0100656863616370ULL

/* Bumped on every incompatible change of the layout below. */
#define PCACHE_FORMAT_VERSION	1

#endif /* _PCACHE_FORMAT_H */
