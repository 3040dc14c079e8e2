/* SPDX-License-Identifier: GPL-2.0 */
/* Host shim for <linux/export.h>: no modules on the host. */
#ifndef _PCACHE_SHIM_LINUX_EXPORT_H
#define _PCACHE_SHIM_LINUX_EXPORT_H

#define EXPORT_SYMBOL(sym)
#define EXPORT_SYMBOL_GPL(sym)

#endif /* _PCACHE_SHIM_LINUX_EXPORT_H */
