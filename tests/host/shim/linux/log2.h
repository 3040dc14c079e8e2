/* SPDX-License-Identifier: GPL-2.0 */
/* Host shim for <linux/log2.h>: is_power_of_2() as in the kernel. */
#ifndef _PCACHE_SHIM_LINUX_LOG2_H
#define _PCACHE_SHIM_LINUX_LOG2_H

#include <linux/types.h>

static inline bool is_power_of_2(unsigned long n)
{
	return n != 0 && (n & (n - 1)) == 0;
}

#endif /* _PCACHE_SHIM_LINUX_LOG2_H */
