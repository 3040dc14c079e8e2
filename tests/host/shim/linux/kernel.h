/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Host shim for the few <linux/kernel.h> helpers meta.c uses (and the byte
 * order helpers it gets through it in the kernel).  Same semantics as the
 * kernel's, written for gcc and clang on the host.
 */
#ifndef _PCACHE_SHIM_LINUX_KERNEL_H
#define _PCACHE_SHIM_LINUX_KERNEL_H

#include <linux/types.h>

#define U8_MAX		((u8)~0U)
#define U16_MAX		((u16)~0U)
#define U32_MAX		((u32)~0U)
#define U64_MAX		((u64)~0ULL)

#define __ALIGN_KERNEL_MASK(x, mask)	(((x) + (mask)) & ~(mask))
#define ALIGN(x, a)	__ALIGN_KERNEL_MASK(x, (__typeof__(x))(a) - 1)
#define IS_ALIGNED(x, a)	(((x) & ((__typeof__(x))(a) - 1)) == 0)

#define min_t(type, x, y) ({			\
	type __min1 = (x);			\
	type __min2 = (y);			\
	__min1 < __min2 ? __min1 : __min2; })
#define max_t(type, x, y) ({			\
	type __max1 = (x);			\
	type __max2 = (y);			\
	__max1 > __max2 ? __max1 : __max2; })

#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))

#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define cpu_to_le16(x)	((__le16)(u16)(x))
#define cpu_to_le32(x)	((__le32)(u32)(x))
#define cpu_to_le64(x)	((__le64)(u64)(x))
#define le16_to_cpu(x)	((u16)(__le16)(x))
#define le32_to_cpu(x)	((u32)(__le32)(x))
#define le64_to_cpu(x)	((u64)(__le64)(x))
#else
#define cpu_to_le16(x)	((__le16)__builtin_bswap16(x))
#define cpu_to_le32(x)	((__le32)__builtin_bswap32(x))
#define cpu_to_le64(x)	((__le64)__builtin_bswap64(x))
#define le16_to_cpu(x)	((u16)__builtin_bswap16((__le16)(x)))
#define le32_to_cpu(x)	((u32)__builtin_bswap32((__le32)(x)))
#define le64_to_cpu(x)	((u64)__builtin_bswap64((__le64)(x)))
#endif

#endif /* _PCACHE_SHIM_LINUX_KERNEL_H */
