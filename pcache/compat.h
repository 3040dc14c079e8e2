/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The one place where kernel API differences are hidden.  Each difference is
 * decided by a feature probe (scripts/compat-probes/NAME.c, compiled against
 * the target kernel, result in pcache_compat_probes.h as PCACHE_HAVE_NAME),
 * never by LINUX_VERSION_CODE: Debian backports APIs into its kernels.
 * pcache is written against the newest API; older kernels get a wrapper.
 */
#ifndef _PCACHE_COMPAT_H
#define _PCACHE_COMPAT_H

#include <linux/device.h>
#include "pcache_compat_probes.h"

/* Bus attribute callbacks: const struct bus_type since 6.4. */
#ifdef PCACHE_HAVE_BUS_ATTR_CONST
#define pcache_bus_type_arg		const struct bus_type
#else
#define pcache_bus_type_arg		struct bus_type
#endif

#endif /* _PCACHE_COMPAT_H */
