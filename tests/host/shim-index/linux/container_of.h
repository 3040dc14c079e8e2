/* SPDX-License-Identifier: GPL-2.0 */
/* Host shim for <linux/container_of.h>. */
#ifndef _PCACHE_SHIM_LINUX_CONTAINER_OF_H
#define _PCACHE_SHIM_LINUX_CONTAINER_OF_H

#include <stddef.h>

#define container_of(ptr, type, member) ({			\
	void *__mptr = (void *)(ptr);				\
	((type *)((char *)__mptr - offsetof(type, member))); })

#endif /* _PCACHE_SHIM_LINUX_CONTAINER_OF_H */
