/* SPDX-License-Identifier: GPL-2.0 */
/* Host shim for <linux/math64.h>: div_u64() as in the kernel on 64-bit. */
#ifndef _PCACHE_SHIM_LINUX_MATH64_H
#define _PCACHE_SHIM_LINUX_MATH64_H

#include <linux/types.h>

static inline u64 div_u64(u64 dividend, u32 divisor)
{
	return dividend / divisor;
}

#endif /* _PCACHE_SHIM_LINUX_MATH64_H */
