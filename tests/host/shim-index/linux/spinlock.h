/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Host shim for <linux/spinlock.h>: a spinlock is an error-checking pthread
 * mutex, so that threaded tests really exclude each other and taking a lock
 * twice aborts.  pcache_shim_locks_held counts the locks the calling thread
 * holds, so that tests can check that nothing allocates or frees under one.
 */
#ifndef _PCACHE_SHIM_LINUX_SPINLOCK_H
#define _PCACHE_SHIM_LINUX_SPINLOCK_H

#include <pthread.h>
#include <stdlib.h>

typedef struct {
	pthread_mutex_t mutex;
} spinlock_t;

extern __thread int pcache_shim_locks_held;

static inline void spin_lock_init(spinlock_t *lock)
{
	pthread_mutexattr_t attr;

	if (pthread_mutexattr_init(&attr) ||
	    pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_ERRORCHECK) ||
	    pthread_mutex_init(&lock->mutex, &attr))
		abort();
	pthread_mutexattr_destroy(&attr);
}

static inline void spin_lock(spinlock_t *lock)
{
	if (pthread_mutex_lock(&lock->mutex))
		abort();
	pcache_shim_locks_held++;
}

static inline void spin_unlock(spinlock_t *lock)
{
	if (pthread_mutex_unlock(&lock->mutex))
		abort();
	pcache_shim_locks_held--;
}

#endif /* _PCACHE_SHIM_LINUX_SPINLOCK_H */
