/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Host shim for the one <linux/rcupdate.h> helper rbtree uses.  The host
 * tests have no lockless readers, so publishing a pointer is a store after
 * a compiler barrier.
 */
#ifndef _PCACHE_SHIM_LINUX_RCUPDATE_H
#define _PCACHE_SHIM_LINUX_RCUPDATE_H

#include <linux/compiler.h>

#define rcu_assign_pointer(p, v)	do { barrier(); WRITE_ONCE(p, v); } while (0)

#endif /* _PCACHE_SHIM_LINUX_RCUPDATE_H */
