/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Host shim: the system's <linux/types.h> (linux-libc-dev: __u32, __le32...)
 * plus the kernel-internal names the kernel's own header adds (u32, bool,
 * size_t), as tools/include/linux/types.h does for the kernel's host tools.
 */
#ifndef _PCACHE_SHIM_LINUX_TYPES_H
#define _PCACHE_SHIM_LINUX_TYPES_H

#include_next <linux/types.h>

#include <stdbool.h>
#include <stddef.h>

typedef __u8 u8;
typedef __u16 u16;
typedef __u32 u32;
typedef __u64 u64;
typedef __s8 s8;
typedef __s16 s16;
typedef __s32 s32;
typedef __s64 s64;

#endif /* _PCACHE_SHIM_LINUX_TYPES_H */
