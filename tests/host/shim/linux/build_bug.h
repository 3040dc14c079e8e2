/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Host shim for <linux/build_bug.h>: static_assert() with the message
 * optional, as the kernel has it (C11's _Static_assert wants one).
 */
#ifndef _PCACHE_SHIM_LINUX_BUILD_BUG_H
#define _PCACHE_SHIM_LINUX_BUILD_BUG_H

#define static_assert(expr, ...) __static_assert(expr, ##__VA_ARGS__, #expr)
#define __static_assert(expr, msg, ...) _Static_assert(expr, msg)

#endif /* _PCACHE_SHIM_LINUX_BUILD_BUG_H */
