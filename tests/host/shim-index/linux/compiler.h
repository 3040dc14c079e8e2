/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Host shim for the <linux/compiler.h> pieces the kernel's lib/rbtree.c and
 * its headers use.  READ_ONCE/WRITE_ONCE keep their meaning (one access the
 * compiler may not tear nor fuse) through a volatile access, as the kernel
 * does for scalars.
 */
#ifndef _PCACHE_SHIM_LINUX_COMPILER_H
#define _PCACHE_SHIM_LINUX_COMPILER_H

#define likely(x)	__builtin_expect(!!(x), 1)
#define unlikely(x)	__builtin_expect(!!(x), 0)
#ifndef __always_inline
#define __always_inline	inline __attribute__((__always_inline__))
#endif
#define barrier()	__asm__ __volatile__("" : : : "memory")

#define READ_ONCE(x)		(*(const volatile __typeof__(x) *)&(x))
#define WRITE_ONCE(x, val)	do { *(volatile __typeof__(x) *)&(x) = (val); } while (0)

#endif /* _PCACHE_SHIM_LINUX_COMPILER_H */
