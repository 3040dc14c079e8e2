/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Host shim for <linux/stddef.h>: the system's uapi header (which the
 * system's <linux/types.h> also needs) plus NULL, offsetof, bool, true and
 * false, which the kernel's header provides.
 */
#ifndef _PCACHE_SHIM_LINUX_STDDEF_H
#define _PCACHE_SHIM_LINUX_STDDEF_H

#include_next <linux/stddef.h>
#include <stdbool.h>
#include <stddef.h>

#endif /* _PCACHE_SHIM_LINUX_STDDEF_H */
