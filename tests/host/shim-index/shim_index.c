// SPDX-License-Identifier: GPL-2.0
/* State of the host shims for index.c (see linux/spinlock.h, linux/slab.h). */
#include <linux/slab.h>
#include <linux/spinlock.h>

__thread int pcache_shim_locks_held;
int pcache_shim_alloc_fail;
