/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Host shim for <linux/slab.h>: the allocators on calloc/free.  Allocation
 * under a spinlock aborts (the kernel would sleep in atomic context), and
 * pcache_shim_alloc_fail, when positive, makes the allocation that brings
 * it to zero fail, to test the error paths.
 */
#ifndef _PCACHE_SHIM_LINUX_SLAB_H
#define _PCACHE_SHIM_LINUX_SLAB_H

#include <stdlib.h>
#include <linux/spinlock.h>
#include <linux/types.h>

typedef unsigned int gfp_t;
#define GFP_KERNEL	0x1u
#define GFP_NOIO	0x2u

extern int pcache_shim_alloc_fail;

static inline void *kvcalloc(size_t n, size_t size, gfp_t gfp)
{
	(void)gfp;
	if (pcache_shim_locks_held)
		abort();
	if (pcache_shim_alloc_fail > 0 && !--pcache_shim_alloc_fail)
		return NULL;
	return calloc(n, size);
}

static inline void *kmalloc(size_t size, gfp_t gfp)
{
	return kvcalloc(1, size, gfp);
}

static inline void kvfree(const void *p)
{
	if (pcache_shim_locks_held)
		abort();
	free((void *)p);
}

static inline void kfree(const void *p)
{
	kvfree(p);
}

#endif /* _PCACHE_SHIM_LINUX_SLAB_H */
