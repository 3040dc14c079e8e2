/* SPDX-License-Identifier: GPL-2.0 */
/*
 * pcache internals shared between the module's files.
 *
 * Objects and their lifetimes:
 *   struct pcache_cache    a registered cache device (cacheN on the pcache
 *                          bus).  Freed by the release of its struct device.
 *   struct pcache_backing  a backing device recorded on a cache device
 *                          (backingM, a child device of cacheN).  Holds a
 *                          reference on its cache.  Freed by its release.
 *
 * Locking (control plane only; the I/O path takes none of these):
 *   pcache_lock    the list of registered caches.  Taken before cache->lock.
 *   cache->lock    the backing table (DRAM copy and pmem), cache->backings[],
 *                  backing states, cache->removing.
 *   backing->open_lock   open count of the disk, backing->removing.
 * No device is ever deleted (device_del, del_gendisk) with one of them held:
 * sysfs handlers of that device may be waiting for the same lock, and
 * deleting a device waits for its running handlers.
 */
#ifndef _PCACHE_H
#define _PCACHE_H

#include <linux/bio.h>
#include <linux/blk-mq.h>
#include <linux/device.h>
#include <linux/mutex.h>
#include <linux/parser.h>
#include <linux/types.h>

#include <pcache/format.h>
#include "compat.h"
#include "meta.h"

struct dax_device;
struct pcache_backing;

struct pcache_cache {
	struct device dev;
	int id;
	struct list_head node;		/* pcache_caches, under pcache_lock */

	struct mutex lock;		/* see the locking rules above */
	bool removing;

	char path[PCACHE_PATH_SIZE];
	struct pcache_bdev pmem;
	struct dax_device *dax_dev;
	void *kaddr;			/* the whole device, mapped with DAX */
	u64 size;			/* bytes mapped */

	/* Geometry, from the validated superblock. */
	u8 uuid[PCACHE_UUID_SIZE];
	u32 segment_size;
	u32 segment_count;
	u64 segments_offset;

	/* Newest valid copy of the backing table (pmem holds two). */
	struct pcache_backing_table *table;
	struct pcache_backing *backings[PCACHE_MAX_BACKINGS];
};

enum pcache_backing_state {
	PCACHE_BACKING_MISSING,		/* recorded, not found: no disk */
	PCACHE_BACKING_ATTACHED,	/* open, with a disk */
	PCACHE_BACKING_DETACHING,	/* forgotten on pmem, disk going away */
};

struct pcache_backing {
	struct device dev;
	struct pcache_cache *cache;
	u32 id;
	enum pcache_backing_state state;	/* under cache->lock */

	struct pcache_bdev bdev;		/* when attached */

	/* The disk /dev/pcacheN, when attached. */
	struct blk_mq_tag_set tag_set;
	struct gendisk *disk;
	int disk_index;
	struct mutex open_lock;		/* open_count, removing */
	unsigned int open_count;
	bool removing;
};

/* Per-request state of the disk (the blk-mq pdu). */
struct pcache_request {
	struct pcache_backing *backing;
	atomic_t pending;
	blk_status_t status;
};

static inline struct pcache_cache *to_pcache_cache(struct device *dev)
{
	return container_of(dev, struct pcache_cache, dev);
}

static inline struct pcache_backing *to_pcache_backing(struct device *dev)
{
	return container_of(dev, struct pcache_backing, dev);
}

/* main.c */
extern struct bus_type pcache_bus_type;
extern struct device *pcache_root_dev;
extern struct mutex pcache_lock;
extern struct list_head pcache_caches;
extern struct bio_set pcache_bio_set;
int pcache_parse_size(const char *str, u64 *size);
int pcache_match_uint(substring_t *arg, unsigned int *value);

/* cache_dev.c */
int pcache_cache_register(const char *path, bool format, bool force,
			  u32 segment_size);
int pcache_cache_unregister(int id);
bool pcache_is_cache_device(dev_t devt);
void pcache_cache_write_table(struct pcache_cache *cache,
			      struct pcache_backing_table *table);
extern const struct device_type pcache_cache_type;

/* backing_dev.c */
int pcache_backing_attach(struct pcache_cache *cache, char *options);
int pcache_backing_detach(struct pcache_cache *cache, char *options);
void pcache_backing_restore_all(struct pcache_cache *cache);
void pcache_backing_remove_missing(struct pcache_cache *cache);
u32 pcache_backing_quota_total(const struct pcache_backing_table *table);

/* disk.c */
int pcache_disk_init(void);
void pcache_disk_exit(void);
int pcache_disk_create(struct pcache_backing *backing);
void pcache_disk_destroy(struct pcache_backing *backing);
int pcache_disk_claim_removal(struct pcache_backing *backing);
bool pcache_is_pcache_disk(dev_t devt);

#endif /* _PCACHE_H */
