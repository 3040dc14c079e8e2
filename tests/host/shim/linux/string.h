/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Host shim for <linux/string.h>: the C library's string functions, plus
 * memchr_inv() (lib.c), which the C library does not have.
 */
#ifndef _PCACHE_SHIM_LINUX_STRING_H
#define _PCACHE_SHIM_LINUX_STRING_H

#include <string.h>
#include <linux/types.h>

/* First byte of s[0..n) that is not c, or NULL when all of them are. */
void *memchr_inv(const void *s, int c, size_t n);

#endif /* _PCACHE_SHIM_LINUX_STRING_H */
