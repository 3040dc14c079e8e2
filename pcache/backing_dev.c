// SPDX-License-Identifier: GPL-2.0
/*
 * Backing devices: attaching a block device to a cache device (recording it
 * in the cache's backing table and giving it a disk), attaching it again
 * when the cache is registered after a reboot, detaching it, and its sysfs
 * directory /sys/bus/pcache/devices/cacheN/backingM/.
 *
 * A backing device is recognised again by the path it was attached with,
 * which must be a persistent name (/dev/disk/by-id/..., not /dev/sdb), and
 * its size and logical block size must still match: a different disk at the
 * recorded place is refused, never attached in its stead.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/blkdev.h>
#include <linux/parser.h>
#include <linux/random.h>
#include <linux/slab.h>
#include <linux/string.h>

#include "meta.h"
#include "pcache.h"

static const char * const pcache_backing_state_names[] = {
	[PCACHE_BACKING_MISSING]	= "missing",
	[PCACHE_BACKING_ATTACHED]	= "attached",
	[PCACHE_BACKING_DETACHING]	= "detaching",
};

static u32 pcache_backing_quota(struct pcache_backing *backing)
{
	return le32_to_cpu(pcache_backing_entry(backing)->quota_segments);
}

static bool entry_used(const struct pcache_backing_entry *entry)
{
	return le32_to_cpu(entry->flags) & PCACHE_BACKING_F_USED;
}

static void pcache_backing_release(struct device *dev)
{
	struct pcache_backing *backing = to_pcache_backing(dev);

	put_device(&backing->cache->dev);
	percpu_counter_destroy(&backing->dirty_sectors);
	pcache_stats_free(backing);
	kfree(backing);
}

static const struct device_type pcache_backing_type;

static struct pcache_backing *pcache_backing_alloc(struct pcache_cache *cache,
						   u32 id)
{
	struct pcache_backing *backing;

	backing = kzalloc(sizeof(*backing), GFP_KERNEL);
	if (!backing)
		return NULL;
	/* Lives as long as the object: its sysfs file reads it any time. */
	if (percpu_counter_init(&backing->dirty_sectors, 0, GFP_KERNEL))
		goto out_free;
	if (pcache_stats_alloc(backing))
		goto out_destroy_counter;
	backing->cache = cache;
	backing->id = id;
	backing->disk_index = -1;
	backing->wb_delay_ms = PCACHE_WB_DELAY_MS_DEFAULT;
	backing->dirty_high_percent = PCACHE_DIRTY_HIGH_DEFAULT;
	backing->dirty_low_percent = PCACHE_DIRTY_LOW_DEFAULT;
	backing->failing_timeout_ms = PCACHE_FAILING_TIMEOUT_MS_DEFAULT;
	backing->read_cache = true;
	backing->sequential_cutoff = PCACHE_SEQUENTIAL_CUTOFF_DEFAULT;
	mutex_init(&backing->open_lock);
	pcache_mode_backing_init(backing);
	pcache_wb_waitqueues_init(backing);
	device_initialize(&backing->dev);
	backing->dev.parent = &cache->dev;
	backing->dev.type = &pcache_backing_type;
	get_device(&cache->dev);
	if (dev_set_name(&backing->dev, "backing%u", id)) {
		put_device(&backing->dev);
		return NULL;
	}
	return backing;

out_destroy_counter:
	percpu_counter_destroy(&backing->dirty_sectors);
out_free:
	kfree(backing);
	return NULL;
}

/*
 * Open the backing device exclusively; with @expect, it must have the size
 * and logical block size recorded there.
 */
static int pcache_backing_open(struct pcache_backing *backing, const char *path,
			       const struct pcache_backing_entry *expect)
{
	struct pcache_cache *cache = backing->cache;
	struct block_device *bdev;
	int ret;

	ret = pcache_bdev_open(&backing->bdev, path, backing);
	if (ret) {
		if (ret == -EBUSY)
			pr_err("cache%d: %s is in use (mounted, or held by another driver)\n",
			       cache->id, path);
		else if (ret == -EACCES)
			pr_err("cache%d: %s is read-only (cannot be opened for writing)\n",
			       cache->id, path);
		else
			pr_err("cache%d: cannot open %s: %d\n", cache->id, path, ret);
		return ret;
	}
	bdev = backing->bdev.bdev;
	/*
	 * By its disk: partitions past a pcache disk's minors have numbers
	 * of the extended major, which pcache_backing_check_path() passed.
	 */
	if (pcache_is_pcache_disk(disk_devt(bdev->bd_disk))) {
		pr_err("cache%d: %s is a partition of a pcache disk, not a backing device\n",
		       cache->id, path);
		pcache_bdev_close(&backing->bdev);
		return -EINVAL;
	}
	if (expect && (bdev_nr_bytes(bdev) != le64_to_cpu(expect->size) ||
		       bdev_logical_block_size(bdev) !=
		       le32_to_cpu(expect->logical_block_size))) {
		pr_err("cache%d: backing%u: %s has %llu bytes in %u-byte blocks, recorded %llu in %u: not the same disk, not attached\n",
		       cache->id, backing->id, path, bdev_nr_bytes(bdev),
		       bdev_logical_block_size(bdev), le64_to_cpu(expect->size),
		       le32_to_cpu(expect->logical_block_size));
		pcache_bdev_close(&backing->bdev);
		return -EINVAL;
	}
	return 0;
}

/*
 * The kernel's name of a disk (/dev/sdb, /dev/vdb) may name another disk
 * after a reboot: a backing device is recorded by a persistent name.
 */
static int pcache_backing_check_persistent(struct pcache_backing *backing,
					   const char *path)
{
	char kernel_name[BDEVNAME_SIZE + 5];

	snprintf(kernel_name, sizeof(kernel_name), "/dev/%pg",
		 backing->bdev.bdev);
	if (strcmp(path, kernel_name))
		return 0;
	pr_err("cache%d: attach: %s is the kernel's name of the disk, which may name another disk after a reboot: use a persistent name such as /dev/disk/by-id/...\n",
	       backing->cache->id, path);
	pcache_bdev_close(&backing->bdev);
	return -EINVAL;
}

/*
 * Is @devt, or @path, recorded as a backing device that is not attached?
 * Attached anew, it would have two logs: the older one, replayed when its
 * entry is attached again, would write its data over the newer one's.
 */
static bool pcache_backing_recorded(struct pcache_cache *other, int i,
				    const char *path, dev_t devt)
{
	const struct pcache_backing_entry *entry = &other->table->entries[i];
	struct pcache_backing *b = other->backings[i];
	dev_t recorded_devt;

	/* A used entry's path is NUL-terminated: the load checked it. */
	if (!entry_used(entry) || (b && b->state == PCACHE_BACKING_ATTACHED))
		return false;
	return !strcmp(entry->path, path) ||
	       (!lookup_bdev(entry->path, &recorded_devt) && recorded_devt == devt);
}

/*
 * Checks that need no cache lock: @path may become a backing device of
 * @cache (in slot @id, or a new one with @id -1): absolute, a block device
 * that is neither a cache device nor a pcache disk, and that no cache has,
 * attached or recorded.
 */
static int pcache_backing_check_path(struct pcache_cache *cache,
				     const char *path, int id)
{
	struct pcache_cache *other;
	dev_t devt;
	int ret, i;

	if (strlen(path) >= PCACHE_PATH_SIZE) {
		pr_err("cache%d: attach: path longer than %d bytes\n", cache->id,
		       PCACHE_PATH_SIZE - 1);
		return -ENAMETOOLONG;
	}
	/* Recorded, it is looked up again at registration, from anywhere. */
	if (path[0] != '/') {
		pr_err("cache%d: attach: %s: not an absolute path\n", cache->id,
		       path);
		return -EINVAL;
	}
	ret = lookup_bdev(path, &devt);
	if (ret) {
		pr_err("cache%d: attach: %s: %s\n", cache->id, path,
		       ret == -ENOTBLK ? "not a block device" :
		       ret == -ENOENT ? "no such device" : "cannot look it up");
		return ret;
	}
	if (pcache_is_cache_device(devt) || pcache_is_pcache_disk(devt)) {
		pr_err("cache%d: attach: %s is a pcache %s, not a backing device\n",
		       cache->id, path,
		       pcache_is_pcache_disk(devt) ? "disk" : "cache device");
		return -EINVAL;
	}

	mutex_lock(&pcache_lock);
	list_for_each_entry(other, &pcache_caches, node) {
		mutex_lock(&other->lock);
		for (i = 0; i < PCACHE_MAX_BACKINGS && !ret; i++) {
			struct pcache_backing *b = other->backings[i];

			if (b && b->state == PCACHE_BACKING_ATTACHED &&
			    b->bdev.bdev->bd_dev == devt) {
				pr_err("cache%d: attach: %s is attached already, as cache%d/backing%u\n",
				       cache->id, path, other->id, b->id);
				ret = -EEXIST;
			} else if ((other != cache || i != id) &&
				   pcache_backing_recorded(other, i, path, devt)) {
				pr_err("cache%d: attach: %s is recorded as cache%d/backing%d, not attached: attach that one (backing=%d), or detach it with force first\n",
				       cache->id, path, other->id, i, i);
				ret = -EEXIST;
			}
		}
		mutex_unlock(&other->lock);
	}
	mutex_unlock(&pcache_lock);
	return ret;
}

/*
 * An opened backing device goes live: its cache is replayed from pmem, then
 * its disk appears.  On failure it is closed again.
 */
static int pcache_backing_go_live(struct pcache_backing *backing)
{
	int ret;

	ret = pcache_cache_backing_start(backing);
	if (ret)
		goto out_close;
	ret = pcache_disk_create(backing);
	if (ret)
		goto out_stop;
	pcache_wb_start(backing);
	return 0;

out_stop:
	pcache_cache_backing_stop(backing);
out_close:
	pr_err("cache%d: backing%u: cannot bring it up: %d\n",
	       backing->cache->id, backing->id, ret);
	pcache_bdev_close(&backing->bdev);
	return ret;
}

/* Its disk is claimed for removal: take it down, close the device. */
static void pcache_backing_go_down(struct pcache_backing *backing)
{
	pcache_disk_destroy(backing);
	pcache_cache_backing_stop(backing);
	pcache_bdev_close(&backing->bdev);
}

/* Open, size-check and give a disk to a recorded backing device. */
static int pcache_backing_bring_up(struct pcache_backing *backing,
				   const char *path)
{
	struct pcache_backing_entry *entry = pcache_backing_entry(backing);
	int ret;

	ret = pcache_backing_open(backing, path, entry) ?:
	      pcache_backing_go_live(backing);
	if (ret)
		return ret;
	backing->state = PCACHE_BACKING_ATTACHED;
	return 0;
}

/* At registration: attach again every backing device the table records. */
void pcache_backing_restore_all(struct pcache_cache *cache)
{
	struct pcache_backing *backing;
	u32 id;

	lockdep_assert_held(&cache->lock);
	for (id = 0; id < PCACHE_MAX_BACKINGS; id++) {
		struct pcache_backing_entry *entry = &cache->table->entries[id];

		if (!entry_used(entry))
			continue;
		/*
		 * Without an object the backing is neither restored nor
		 * listed as missing until the next registration: say so, and
		 * go on with the others.
		 */
		backing = pcache_backing_alloc(cache, id);
		if (!backing) {
			pr_err("cache%d: backing%u: out of memory: not restored\n",
			       cache->id, id);
			continue;
		}
		backing->state = PCACHE_BACKING_MISSING;
		if (device_add(&backing->dev)) {
			pr_err("cache%d: backing%u: cannot add its device: not restored\n",
			       cache->id, id);
			put_device(&backing->dev);
			continue;
		}
		cache->backings[id] = backing;
		if (pcache_backing_bring_up(backing, entry->path)) {
			pr_warn("cache%d: backing%u (%s) is missing: attach it with backing=%u once it is there\n",
				cache->id, id, entry->path, id);
			continue;
		}
		pr_info("cache%d: backing%u: %s attached again as %s\n", cache->id,
			id, entry->path, backing->disk->disk_name);
	}
}

/*
 * The cache's namespace is going away (kill_dax()): once this returns,
 * nothing touches the mapping.  New requests fail at once (queue_rq sees
 * pmem_gone); a freeze waits for those already in the log, writes waiting
 * for room and drains are woken to fail, then the fills and writeback
 * rounds under way end.  Set under @lock, so that no replay or table
 * update is half done.  The queues are frozen outside the lock, which a
 * mode switch takes inside its freeze; a reference keeps each disk.
 */
void pcache_backing_pmem_gone(struct pcache_cache *cache)
{
	struct pcache_backing *live[PCACHE_MAX_BACKINGS];
	struct gendisk *disks[PCACHE_MAX_BACKINGS];
	struct pcache_backing *backing;
	unsigned int memflags;
	u32 id, n = 0;

	mutex_lock(&cache->lock);
	WRITE_ONCE(cache->pmem_gone, true);
	for (id = 0; id < PCACHE_MAX_BACKINGS; id++) {
		backing = cache->backings[id];
		if (!backing || backing->state == PCACHE_BACKING_MISSING)
			continue;
		get_device(&backing->dev);
		disks[n] = NULL;
		if (backing->state == PCACHE_BACKING_ATTACHED) {
			disks[n] = backing->disk;
			get_device(disk_to_dev(disks[n]));
		}
		live[n++] = backing;
		wake_up_all(&backing->space_wait);
		wake_up_all(&backing->clean_wait);
	}
	mutex_unlock(&cache->lock);
	if (cache->id < 0)
		pr_err("%s is going away while it is being registered: every request will fail; detach with force, then unregister\n",
		       cache->path);
	else
		pr_err("cache%d: %s is going away under the cache: every request fails from now on; detach with force, then unregister\n",
		       cache->id, cache->path);
	while (n--) {
		if (disks[n]) {
			memflags = pcache_freeze_queue(disks[n]->queue);
			pcache_unfreeze_queue(disks[n]->queue, memflags);
			put_device(disk_to_dev(disks[n]));
		}
		pcache_fill_wait(live[n]);
		pcache_wb_stop(live[n]);
		put_device(&live[n]->dev);
	}
}

/* At unregistration: the cache is removing and no backing is attached. */
void pcache_backing_remove_missing(struct pcache_cache *cache)
{
	struct pcache_backing *gone[PCACHE_MAX_BACKINGS];
	u32 id;

	mutex_lock(&cache->lock);
	for (id = 0; id < PCACHE_MAX_BACKINGS; id++) {
		gone[id] = cache->backings[id];
		cache->backings[id] = NULL;
	}
	mutex_unlock(&cache->lock);
	for (id = 0; id < PCACHE_MAX_BACKINGS; id++) {
		if (gone[id])
			device_unregister(&gone[id]->dev);
	}
}

enum {
	OPT_PATH,
	OPT_SIZE,
	OPT_MODE,
	OPT_BACKING,
	OPT_ERR,
};

static const match_table_t attach_tokens = {
	{ OPT_PATH, "path=%s" },
	{ OPT_SIZE, "size=%s" },
	{ OPT_MODE, "mode=%s" },
	{ OPT_BACKING, "backing=%s" },
	{ OPT_ERR, NULL },
};

struct pcache_attach_args {
	char *path;
	u64 size;
	int mode;
	int backing;
	bool size_given;
};

static int pcache_attach_parse(struct pcache_cache *cache, char *options,
			       struct pcache_attach_args *args)
{
	substring_t match[MAX_OPT_ARGS];
	unsigned int id;
	char *opt;
	int mode;

	args->mode = -1;
	args->backing = -1;
	while ((opt = strsep(&options, ",")) != NULL) {
		if (!*opt)
			continue;
		switch (match_token(opt, attach_tokens, match)) {
		case OPT_PATH:
			args->path = match[0].from;
			*match[0].to = '\0';
			break;
		case OPT_SIZE:
			*match[0].to = '\0';
			if (pcache_parse_size(match[0].from, &args->size)) {
				pr_err("cache%d: attach: bad size '%s'\n",
				       cache->id, match[0].from);
				return -EINVAL;
			}
			args->size_given = true;
			break;
		case OPT_MODE:
			*match[0].to = '\0';
			mode = match_string(pcache_mode_names, PCACHE_MODE_NR,
					    match[0].from);
			if (mode < 0) {
				pr_err("cache%d: attach: unknown mode '%s' (writeback, writethrough, writearound, none)\n",
				       cache->id, match[0].from);
				return -EINVAL;
			}
			args->mode = mode;
			break;
		case OPT_BACKING:
			if (pcache_match_uint(&match[0], &id) ||
			    id >= PCACHE_MAX_BACKINGS) {
				pr_err("cache%d: attach: bad backing id\n", cache->id);
				return -EINVAL;
			}
			args->backing = id;
			break;
		default:
			pr_err("cache%d: attach: unknown option '%s'\n", cache->id, opt);
			return -EINVAL;
		}
	}
	if (args->backing >= 0 && (args->size_given || args->mode >= 0)) {
		pr_err("cache%d: attach: backing= attaches a recorded device again; size and mode are recorded\n",
		       cache->id);
		return -EINVAL;
	}
	if (args->backing < 0 && (!args->path || !*args->path)) {
		pr_err("cache%d: attach: path= is required\n", cache->id);
		return -EINVAL;
	}
	if (args->backing < 0 && !args->size_given) {
		pr_err("cache%d: attach: size= (its share of the cache) is required\n",
		       cache->id);
		return -EINVAL;
	}
	return 0;
}

/* Attach again a recorded backing device that was missing. */
static int pcache_backing_reattach(struct pcache_cache *cache,
				   struct pcache_attach_args *args)
{
	struct pcache_backing_table *table = NULL;
	struct pcache_backing_entry *entry;
	char old_path[PCACHE_PATH_SIZE];
	struct pcache_backing *backing;
	const char *path;
	int ret;

	mutex_lock(&cache->lock);
	backing = cache->backings[args->backing];
	ret = -ENOENT;
	if (cache->removing) {
		pr_err("cache%d: being unregistered\n", cache->id);
		ret = -ENODEV;
		goto out;
	}
	if (!backing) {
		pr_err("cache%d: attach: there is no backing%d\n", cache->id,
		       args->backing);
		goto out;
	}
	ret = -EEXIST;
	if (backing->state != PCACHE_BACKING_MISSING) {
		pr_err("cache%d: attach: backing%d is not missing (%s)\n",
		       cache->id, args->backing,
		       pcache_backing_state_names[backing->state]);
		goto out;
	}
	entry = pcache_backing_entry(backing);
	path = args->path && *args->path ? args->path : entry->path;
	ret = pcache_backing_open(backing, path, entry) ?:
	      pcache_backing_check_persistent(backing, path);
	if (ret)
		goto out;
	if (strcmp(path, entry->path)) {
		table = kvmalloc(sizeof(*table), GFP_KERNEL);
		if (!table) {
			pcache_bdev_close(&backing->bdev);
			ret = -ENOMEM;
			goto out;
		}
		/* Recorded before the disk appears: udev names it by it. */
		memcpy(old_path, entry->path, PCACHE_PATH_SIZE);
		memcpy(table, cache->table, sizeof(*table));
		memset(table->entries[backing->id].path, 0, PCACHE_PATH_SIZE);
		strscpy(table->entries[backing->id].path, path, PCACHE_PATH_SIZE);
		pcache_cache_write_table(cache, table);
	}
	ret = pcache_backing_go_live(backing);
	if (ret && table) {
		/* A command that fails changes nothing: the old path again. */
		memcpy(table, cache->table, sizeof(*table));
		memcpy(table->entries[backing->id].path, old_path,
		       PCACHE_PATH_SIZE);
		pcache_cache_write_table(cache, table);
	}
	if (ret)
		goto out;
	backing->state = PCACHE_BACKING_ATTACHED;
	pr_info("cache%d: backing%u: %s attached again as %s\n", cache->id,
		backing->id, path, backing->disk->disk_name);
out:
	mutex_unlock(&cache->lock);
	kvfree(table);
	return ret;
}

static int pcache_backing_attach_new(struct pcache_cache *cache,
				     struct pcache_attach_args *args)
{
	struct pcache_backing_table *table;
	struct pcache_backing_entry *entry;
	struct pcache_backing *backing = NULL;
	struct block_device *bdev;
	u64 quota;
	u32 id, unreserved, mode;
	bool added = false;
	const char *why;
	int ret;

	table = kvmalloc(sizeof(*table), GFP_KERNEL);
	if (!table)
		return -ENOMEM;

	mutex_lock(&cache->lock);
	ret = -ENODEV;
	if (cache->removing) {
		pr_err("cache%d: being unregistered\n", cache->id);
		goto out_unlock;
	}
	for (id = 0; id < PCACHE_MAX_BACKINGS; id++) {
		if (!entry_used(&cache->table->entries[id]) && !cache->backings[id])
			break;
	}
	ret = -EMLINK;
	if (id == PCACHE_MAX_BACKINGS) {
		pr_err("cache%d: attach: all %d backing slots are in use\n",
		       cache->id, PCACHE_MAX_BACKINGS);
		goto out_unlock;
	}
	ret = pcache_space_quota(cache->table, cache->segment_count,
				 cache->segment_size, args->size, &quota,
				 &unreserved);
	if (ret == -EINVAL) {
		pr_err("cache%d: attach: size %llu is less than %d segments of %u bytes\n",
		       cache->id, args->size, PCACHE_BACKING_SEGMENTS_MIN,
		       cache->segment_size);
		goto out_unlock;
	}
	if (ret) {
		pr_err("cache%d: attach: size %llu needs %llu segments, %u are free\n",
		       cache->id, args->size, quota, unreserved);
		goto out_unlock;
	}

	ret = -ENOMEM;
	backing = pcache_backing_alloc(cache, id);
	if (!backing)
		goto out_unlock;
	ret = pcache_backing_open(backing, args->path, NULL) ?:
	      pcache_backing_check_persistent(backing, args->path);
	if (ret)
		goto out_unlock;
	bdev = backing->bdev.bdev;

	/* Recorded before the disk exists: whatever it acknowledges is found again. */
	memcpy(table, cache->table, sizeof(*table));
	entry = &table->entries[id];
	memset(entry, 0, sizeof(*entry));
	entry->flags = cpu_to_le32(PCACHE_BACKING_F_USED);
	mode = args->mode < 0 ? PCACHE_MODE_WRITEBACK : args->mode;
	entry->mode = cpu_to_le32(mode);
	generate_random_uuid(entry->uuid);
	entry->size = cpu_to_le64(bdev_nr_bytes(bdev));
	entry->logical_block_size = cpu_to_le32(bdev_logical_block_size(bdev));
	entry->quota_segments = cpu_to_le32(quota);
	strscpy(entry->path, args->path, sizeof(entry->path));
	/* Never record what the next registration would refuse. */
	if (pcache_entry_check(entry, cache->segment_count, &why)) {
		pr_err("cache%d: attach: %s: %s\n", cache->id, args->path, why);
		pcache_bdev_close(&backing->bdev);
		ret = -EINVAL;
		goto out_unlock;
	}
	pcache_cache_write_table(cache, table);

	backing->state = PCACHE_BACKING_ATTACHED;
	ret = device_add(&backing->dev);
	if (ret)
		goto out_forget;
	added = true;
	ret = pcache_backing_go_live(backing);
	if (ret)
		goto out_forget_closed;
	cache->backings[id] = backing;
	mutex_unlock(&cache->lock);
	kvfree(table);
	pr_info("cache%d: backing%u: attached %s as %s, %llu segments, %s\n",
		cache->id, id, args->path, backing->disk->disk_name, quota,
		pcache_mode_names[mode]);
	return 0;

out_forget:
	pcache_bdev_close(&backing->bdev);
out_forget_closed:
	/*
	 * Its sysfs files stay until device_del(): no disk to show there.
	 * The slot stays taken until then, as detach keeps it: another
	 * attach would add a device of the same name.
	 */
	backing->state = PCACHE_BACKING_DETACHING;
	/* Not added, the put_device() below frees it: no slot to hold. */
	if (added)
		cache->backings[id] = backing;
	memset(&table->entries[id], 0, sizeof(table->entries[id]));
	pcache_cache_write_table(cache, table);
out_unlock:
	mutex_unlock(&cache->lock);
	kvfree(table);
	/* Deleted only now: its sysfs handlers may wait for cache->lock. */
	if (added) {
		device_del(&backing->dev);
		mutex_lock(&cache->lock);
		cache->backings[id] = NULL;
		mutex_unlock(&cache->lock);
	}
	if (backing)
		put_device(&backing->dev);
	return ret;
}

int pcache_backing_attach(struct pcache_cache *cache, char *options)
{
	struct pcache_attach_args args = {};
	int ret;

	ret = pcache_attach_parse(cache, options, &args);
	if (ret)
		return ret;
	if (args.path && *args.path) {
		ret = pcache_backing_check_path(cache, args.path,
						args.backing);
		if (ret)
			return ret;
	}
	if (args.backing >= 0)
		return pcache_backing_reattach(cache, &args);
	return pcache_backing_attach_new(cache, &args);
}

enum {
	DETACH_BACKING,
	DETACH_FORCE,
	DETACH_ERR,
};

static const match_table_t detach_tokens = {
	{ DETACH_BACKING, "backing=%s" },
	{ DETACH_FORCE, "force" },
	{ DETACH_ERR, NULL },
};

static int pcache_detach_parse(struct pcache_cache *cache, char *options,
			       unsigned int *id, bool *force)
{
	substring_t match[MAX_OPT_ARGS];
	bool have_id = false;
	char *opt;

	*force = false;
	while ((opt = strsep(&options, ",")) != NULL) {
		if (!*opt)
			continue;
		switch (match_token(opt, detach_tokens, match)) {
		case DETACH_BACKING:
			if (pcache_match_uint(&match[0], id) ||
			    *id >= PCACHE_MAX_BACKINGS)
				goto bad;
			have_id = true;
			break;
		case DETACH_FORCE:
			*force = true;
			break;
		default:
			goto bad;
		}
	}
	if (have_id)
		return 0;
bad:
	pr_err("cache%d: detach: expected backing=ID[,force]\n", cache->id);
	return -EINVAL;
}

/*
 * Detach: the disk must be closed; everything cached for the backing device
 * is written back to it first, so that afterwards it alone holds the data.
 * A missing backing device cannot be written back: forgetting it drops its
 * cached data, and takes 'force'.
 */
int pcache_backing_detach(struct pcache_cache *cache, char *options)
{
	struct pcache_backing_table *table;
	struct pcache_backing *backing;
	unsigned int id;
	u64 dropped = 0;
	u32 owned;
	bool attached, force;
	int ret;

	ret = pcache_detach_parse(cache, options, &id, &force);
	if (ret)
		return ret;
	table = kvmalloc(sizeof(*table), GFP_KERNEL);
	if (!table)
		return -ENOMEM;

	mutex_lock(&cache->lock);
	backing = cache->backings[id];
	ret = -ENODEV;
	if (cache->removing) {
		pr_err("cache%d: being unregistered\n", cache->id);
		goto out_unlock;
	}
	ret = -ENOENT;
	if (!backing) {
		pr_err("cache%d: detach: there is no backing%u\n", cache->id, id);
		goto out_unlock;
	}
	if (backing->state == PCACHE_BACKING_DETACHING) {
		pr_err("cache%d: detach: backing%u is being detached already\n",
		       cache->id, id);
		goto out_unlock;
	}
	ret = -EBUSY;
	if (backing->mode_switching) {
		pr_err("cache%d: detach: backing%u is switching modes; try again when it is done\n",
		       cache->id, id);
		goto out_unlock;
	}
	attached = backing->state == PCACHE_BACKING_ATTACHED;
	owned = pcache_cache_segments_owned(cache, id);
	ret = -EIO;
	if (attached && !force && pcache_pmem_gone(cache) &&
	    pcache_dirty_bytes(backing)) {
		pr_err("cache%d: detach: %s is gone with %llu bytes of backing%u not written back: they cannot be now; detach with force (they stay in the namespace's log, replayed if it comes back and the cache is registered again)\n",
		       cache->id, cache->path, pcache_dirty_bytes(backing), id);
		goto out_unlock;
	}
	ret = -EBUSY;
	if (!attached && owned && !force) {
		pr_err("cache%d: detach: backing%u is missing and holds %u segments, whose data may not all be written back: attach it again, or detach with force to drop them\n",
		       cache->id, id, owned);
		goto out_unlock;
	}
	if (attached) {
		ret = pcache_disk_claim_removal(backing);
		if (ret) {
			pr_err("cache%d: detach: %s is open (mounted or in use): close it first\n",
			       cache->id, backing->disk->disk_name);
			goto out_unlock;
		}
	}
	/* The slot stays taken until the device is deleted: its name is reused. */
	backing->state = PCACHE_BACKING_DETACHING;
	mutex_unlock(&cache->lock);
	/*
	 * The disk is closed, so no read makes a fill any more; the fills
	 * still queued append to the log, which must be there for them.
	 */
	if (attached)
		pcache_fill_wait(backing);

	if (attached && !force) {
		pr_info("cache%d: backing%u: writing back %llu bytes before detaching\n",
			cache->id, id,
			pcache_dirty_bytes(backing));
		ret = pcache_wb_drain(backing, 0);
		if (ret) {
			/*
			 * Both under the lock: another detach may claim the
			 * disk, and free @backing, as soon as it is dropped.
			 */
			mutex_lock(&cache->lock);
			backing->state = PCACHE_BACKING_ATTACHED;
			pcache_disk_unclaim_removal(backing);
			pr_err("cache%d: detach: interrupted; backing%u stays attached with %llu bytes not written back\n",
			       cache->id, id,
			       pcache_dirty_bytes(backing));
			mutex_unlock(&cache->lock);
			kvfree(table);
			return ret;
		}
	}
	if (attached) {
		/* No round may touch the table entry once it is cleared. */
		pcache_wb_stop(backing);
		dropped = pcache_dirty_bytes(backing);
	}

	mutex_lock(&cache->lock);
	memcpy(table, cache->table, sizeof(*table));
	memset(&table->entries[id], 0, sizeof(table->entries[id]));
	pcache_cache_write_table(cache, table);
	mutex_unlock(&cache->lock);
	kvfree(table);
	pcache_cache_release_segments(cache, id);

	if (attached)
		pcache_backing_go_down(backing);
	if (pcache_pmem_gone(cache) && (dropped || owned))
		pr_warn("cache%d: backing%u detached, in memory only: its log and its entry stay on %s, replayed if the namespace comes back and the cache is registered again\n",
			cache->id, id, cache->path);
	else if (!attached && owned)
		pr_warn("cache%d: backing%u forgotten: dropped %u segments of cached data\n",
			cache->id, id, owned);
	else if (dropped)
		pr_warn("cache%d: backing%u detached with force: dropped %llu bytes never written back\n",
			cache->id, id, dropped);
	else
		pr_info("cache%d: backing%u detached\n", cache->id, id);
	/*
	 * The slot is freed only once the sysfs directory is gone (a new
	 * attach reuses the name), and the last reference is dropped only
	 * once the slot is freed: whoever looks at the slot under the lock
	 * must never find a freed backing there.
	 */
	device_del(&backing->dev);
	mutex_lock(&cache->lock);
	cache->backings[id] = NULL;
	pcache_stats_retire(backing);
	mutex_unlock(&cache->lock);
	put_device(&backing->dev);
	return 0;

out_unlock:
	mutex_unlock(&cache->lock);
	kvfree(table);
	return ret;
}

/* Read-only attributes, shown under cache->lock; entry(b): its table entry. */
#define BACKING_ENTRY_ATTR(name, fmt, expr)					\
static ssize_t name##_show(struct device *dev, struct device_attribute *attr,	\
			   char *buf)						\
{										\
	struct pcache_backing *backing = to_pcache_backing(dev);		\
	struct pcache_cache *cache = backing->cache;				\
	ssize_t ret;								\
										\
	mutex_lock(&cache->lock);						\
	ret = sysfs_emit(buf, fmt "\n", expr);					\
	mutex_unlock(&cache->lock);						\
	return ret;								\
}										\
static DEVICE_ATTR_RO(name)

BACKING_ENTRY_ATTR(id, "%u", backing->id);
BACKING_ENTRY_ATTR(path, "%s", pcache_backing_entry(backing)->path);
BACKING_ENTRY_ATTR(uuid, "%pUb", pcache_backing_entry(backing)->uuid);
BACKING_ENTRY_ATTR(size, "%llu", le64_to_cpu(pcache_backing_entry(backing)->size));
BACKING_ENTRY_ATTR(cache_size, "%llu",
		   (u64)pcache_backing_quota(backing) * cache->segment_size);
BACKING_ENTRY_ATTR(segments_total, "%u", pcache_backing_quota(backing));
BACKING_ENTRY_ATTR(segments_used, "%u", pcache_cache_segments_owned(cache, backing->id));
BACKING_ENTRY_ATTR(state, "%s", pcache_backing_state_names[backing->state]);
BACKING_ENTRY_ATTR(disk, "%s", backing->state == PCACHE_BACKING_ATTACHED ?
		   backing->disk->disk_name : "");

static struct attribute *pcache_backing_attrs[] = {
	&dev_attr_id.attr,
	&dev_attr_path.attr,
	&dev_attr_uuid.attr,
	&dev_attr_size.attr,
	&dev_attr_cache_size.attr,
	&dev_attr_segments_total.attr,
	&dev_attr_segments_used.attr,
	&dev_attr_state.attr,
	&dev_attr_disk.attr,
	NULL,
};

static const struct attribute_group pcache_backing_group = {
	.attrs = pcache_backing_attrs,
};

static const struct attribute_group *pcache_backing_groups[] = {
	&pcache_backing_group,
	&pcache_mode_attr_group,
	&pcache_wb_attr_group,
	&pcache_fill_attr_group,
	&pcache_backing_stats_group,
	NULL,
};

static const struct device_type pcache_backing_type = {
	.name		= "pcache_backing",
	.groups		= pcache_backing_groups,
	.release	= pcache_backing_release,
};
