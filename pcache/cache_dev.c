// SPDX-License-Identifier: GPL-2.0
/*
 * Cache devices: registering a pmem namespace (opening it exclusively,
 * mapping it with DAX, formatting or loading its metadata), unregistering
 * it, and its sysfs directory /sys/bus/pcache/devices/cacheN/.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/capability.h>
#include <linux/dax.h>
#include <linux/idr.h>
#include <linux/libnvdimm.h>
#include <linux/module.h>
#include <linux/random.h>
#include <linux/sizes.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/uaccess.h>

#include "pcache.h"

/* Bytes at the head of a device that must be zero for a format without force. */
#define PCACHE_BLANK_CHECK_SIZE		SZ_1M
#define PCACHE_IO_CHUNK			SZ_64K

static DEFINE_IDA(pcache_cache_ida);

/* Read pmem with a machine-check-safe copy: a media error becomes -EIO. */
static int pcache_pmem_read(struct pcache_cache *cache, u64 off, void *buf,
			    size_t len)
{
	if (pcache_pmem_gone(cache))
		return -EIO;
	if (copy_mc_to_kernel(buf, cache->kaddr + off, len)) {
		pr_err("%s: media error reading %zu bytes at %llu\n",
		       cache->path, len, off);
		return -EIO;
	}
	return 0;
}

/* Write pmem with non-temporal stores; durable after the next pmem_wmb(). */
static void pcache_pmem_write(struct pcache_cache *cache, u64 off,
			      const void *buf, size_t len)
{
	if (!pcache_pmem_gone(cache))
		memcpy_flushcache(cache->kaddr + off, buf, len);
}

static int pcache_pmem_zero(struct pcache_cache *cache, u64 off, u64 len)
{
	void *zero = (void *)get_zeroed_page(GFP_KERNEL);
	u64 done;

	if (!zero)
		return -ENOMEM;
	for (done = 0; done < len; done += PAGE_SIZE)
		pcache_pmem_write(cache, off + done, zero,
				  min_t(u64, PAGE_SIZE, len - done));
	free_page((unsigned long)zero);
	return 0;
}

/*
 * Update the backing table: write the new table (seq + 1) to the slot not
 * holding the newest copy, fence, then to the other slot, fence.  A torn
 * write leaves the other slot whole; afterwards both slots are current.
 * The newest copy is where load found it (table_first is the other slot),
 * until an update completes: then either slot will do.
 *
 * The seq stops at PCACHE_SEQ_MAX, past which load refuses a table: only a
 * forged table gets there (2^62 updates never happen).  Equal seqs are
 * still safe: an update cut short leaves the old and the new table whole,
 * and load takes one of them, as it may after any cut during an update.
 */
void pcache_cache_write_table(struct pcache_cache *cache,
			      struct pcache_backing_table *table)
{
	u64 seq = min(le64_to_cpu(cache->table->seq) + 1, PCACHE_SEQ_MAX);
	unsigned int first = cache->table_first;

	lockdep_assert_held(&cache->lock);
	if (pcache_pmem_gone(cache))
		pr_warn("cache%d: %s is gone: the backing table is changed in memory only\n",
			cache->id, cache->path);
	pcache_table_seal(table, seq);
	pcache_pmem_write(cache, PCACHE_TABLE_OFFSET +
			  first * PCACHE_TABLE_SLOT_SIZE, table, sizeof(*table));
	pmem_wmb();
	pcache_pmem_write(cache, PCACHE_TABLE_OFFSET +
			  !first * PCACHE_TABLE_SLOT_SIZE, table, sizeof(*table));
	pmem_wmb();
	if (table != cache->table)
		memcpy(cache->table, table, sizeof(*table));
}

/*
 * The slow part of pcache_pmem_known_bad(), for a pmem device that knows of
 * bad blocks (media errors found by a scrub or a machine check): are any in
 * [@off, @off + @len) of the cache device?  If so, the first bad range
 * overlapping it, in bytes of the cache device, clipped to start at @off,
 * goes to @bad_off and @bad_len (may be NULL).
 */
bool pcache_pmem_check_bad(struct pcache_cache *cache, u64 off, u64 len,
			   u64 *bad_off, u64 *bad_len)
{
	struct badblocks *bb = cache->pmem_bb;
	sector_t part = get_start_sect(cache->pmem.bdev);
	sector_t first_bad, bad_sectors, start, end;

	start = part + (off >> SECTOR_SHIFT);
	end = part + DIV_ROUND_UP(off + len, SECTOR_SIZE);
	if (!pcache_badblocks_check(bb, start, end - start, &first_bad,
				    &bad_sectors))
		return false;
	if (bad_off) {
		sector_t bad_end = first_bad + bad_sectors;

		first_bad = max(first_bad, start);
		*bad_off = (u64)(first_bad - part) << SECTOR_SHIFT;
		*bad_len = (u64)(bad_end > first_bad ? bad_end - first_bad : 1)
			   << SECTOR_SHIFT;
	}
	return true;
}

/*
 * DAX refuses a range with known bad blocks, so the device is mapped a good
 * range at a time, around them; each piece must continue the mapping of
 * the ones before (pmem maps a namespace in one piece).  The bad pages are
 * never written: the segments holding them are not used (cache.c).
 */
static long pcache_cache_map_pieces(struct pcache_cache *cache,
				    pgoff_t first, long nr_pages, void **kaddr)
{
	unsigned long pfn, base_pfn = 0;
	void *addr, *base = NULL;
	long done = 0, want, avail;
	u64 bad_off, bad_len;
	bool has_pages;

	cache->has_pages = true;
	while (done < nr_pages) {
		want = nr_pages - done;
		if (pcache_pmem_known_bad(cache, (u64)done << PAGE_SHIFT,
					  (u64)want << PAGE_SHIFT, &bad_off,
					  &bad_len)) {
			want = (bad_off >> PAGE_SHIFT) - done;
			if (!want) {
				done = min_t(long, nr_pages,
					     DIV_ROUND_UP(bad_off + bad_len,
							  PAGE_SIZE));
				continue;
			}
		}
		avail = pcache_dax_direct_access(cache->dax_dev, first + done,
						 want, &addr, &pfn, &has_pages);
		if (avail <= 0)
			return avail ?: -EIO;
		avail = min(avail, want);
		if (!base) {
			base = addr - ((u64)done << PAGE_SHIFT);
			base_pfn = pfn - done;
		} else if (addr != base + ((u64)done << PAGE_SHIFT) ||
			   pfn != base_pfn + done) {
			pr_err("%s: DAX maps the device in pieces that do not follow each other\n",
			       cache->path);
			return -EOPNOTSUPP;
		}
		cache->has_pages &= has_pages;
		done += avail;
	}
	if (!base)
		return -EIO;
	*kaddr = base;
	cache->pfn = base_pfn;
	return nr_pages;
}

/*
 * Is the disk below a virtio device?  virtio-pmem is the asynchronous DAX
 * provider, and dax_synchronous() alone does not tell it on every kernel:
 * on 6.1 a dax_device is reallocated from its slab with the flags of its
 * previous life (set at probe, cleared nowhere, the constructor runs only
 * for a new slab object), so a virtio-pmem namespace reconfigured after an
 * ADR one was torn down can claim DAXDEV_SYNC.  Parents outlive children,
 * and the disk is held open: the walk needs no lock.
 */
static bool pcache_disk_on_virtio(struct block_device *bdev)
{
	struct device *dev;

	for (dev = disk_to_dev(bdev->bd_disk)->parent; dev; dev = dev->parent)
		if (dev->bus && !strcmp(dev->bus->name, "virtio"))
			return true;
	return false;
}

/*
 * Orders a removal notice against the cache taking and giving back its
 * mapping.  fs_put_dax() does not wait for a notice under way, which would
 * then work on a freed cache; and a notice arriving while register reads
 * the log must wait until the mapping is in use (then it is shut down like
 * any other) or given back.  Taken before cache->lock.
 */
static DEFINE_MUTEX(pcache_dax_holder_lock);

/*
 * kill_dax() of the namespace going away calls this for the whole device
 * (0, U64_MAX) before it tears the mapping down.  A poisoned range is left
 * to the memory-failure code, as it was without a holder: reads of it fail
 * through copy_mc and the device's bad blocks.
 */
static int pcache_dax_notify_failure(struct dax_device *dax_dev, u64 off,
				     u64 len, int mf_flags)
{
	struct pcache_cache *cache;

	if (off || len != U64_MAX)
		return -EOPNOTSUPP;
	mutex_lock(&pcache_dax_holder_lock);
	cache = dax_holder(dax_dev);
	if (cache)
		pcache_backing_pmem_gone(cache);
	mutex_unlock(&pcache_dax_holder_lock);
	return cache ? 0 : -EOPNOTSUPP;
}

static const struct dax_holder_operations pcache_dax_holder_ops = {
	.notify_failure = pcache_dax_notify_failure,
};

static int pcache_cache_map(struct pcache_cache *cache)
{
	struct block_device *bdev = cache->pmem.bdev;
	u64 start_off = 0;
	long nr_pages, avail;
	void *kaddr;
	int id;

	cache->dax_dev = fs_dax_get_by_bdev(bdev, &start_off, cache,
					    &pcache_dax_holder_ops);
	if (!cache->dax_dev && blk_queue_dax(bdev_get_queue(bdev))) {
		pr_err("%s: its DAX device is going away or held by another user\n",
		       cache->path);
		return -EBUSY;
	}
	if (!cache->dax_dev) {
		pr_err("%s is not a DAX-capable pmem device (a raw or sector namespace? use 'ndctl create-namespace --mode=fsdax')\n",
		       cache->path);
		return -EOPNOTSUPP;
	}
	/*
	 * A write completes once its stores have left the CPU's caches: only
	 * synchronous DAX (pmem behind ADR) holds them then.  An asynchronous
	 * one (virtio-pmem) needs a flush of the device, which pcache, with
	 * no volatile cache to advertise, never sends.
	 */
	if (!dax_synchronous(cache->dax_dev)) {
		pr_err("%s: its DAX is asynchronous (virtio-pmem?): a write is not durable when it completes, not usable as a cache\n",
		       cache->path);
		return -EOPNOTSUPP;
	}
	if (pcache_disk_on_virtio(bdev)) {
		pr_err("%s: its DAX is asynchronous (a virtio-pmem device, whatever its dax_device claims): a write is not durable when it completes, not usable as a cache\n",
		       cache->path);
		return -EOPNOTSUPP;
	}
	cache->size = bdev_nr_bytes(bdev) & PAGE_MASK;
	nr_pages = cache->size >> PAGE_SHIFT;

	/*
	 * The pfn, and whether it has struct pages: writeback may hand the
	 * pages themselves to the backing device.
	 */
	if (pcache_pmem_known_bad(cache, 0, PCACHE_META_END, NULL, NULL)) {
		pr_err("%s: the device knows of bad blocks in pcache's metadata (the first %u KiB): clear them first (ndctl clear-errors, or rewrite those sectors)\n",
		       cache->path, PCACHE_META_END >> 10);
		return -EIO;
	}
	id = dax_read_lock();
	if (pcache_pmem_known_bad(cache, 0, cache->size, NULL, NULL))
		avail = pcache_cache_map_pieces(cache, start_off >> PAGE_SHIFT,
						nr_pages, &kaddr);
	else
		avail = pcache_dax_direct_access(cache->dax_dev,
						 start_off >> PAGE_SHIFT,
						 nr_pages, &kaddr, &cache->pfn,
						 &cache->has_pages);
	dax_read_unlock(id);
	if (avail < 0) {
		pr_err("%s: cannot map with DAX: %ld\n", cache->path, avail);
		return avail;
	}
	if (avail < nr_pages) {
		pr_err("%s: DAX maps only %ld of %ld pages in one piece\n",
		       cache->path, avail, nr_pages);
		return -EOPNOTSUPP;
	}
	cache->kaddr = kaddr;
	return 0;
}

static void pcache_cache_unmap(struct pcache_cache *cache)
{
	if (cache->dax_dev) {
		mutex_lock(&pcache_dax_holder_lock);
		fs_put_dax(cache->dax_dev, cache);
		mutex_unlock(&pcache_dax_holder_lock);
	}
	cache->dax_dev = NULL;
	cache->kaddr = NULL;
	pcache_bdev_close(&cache->pmem);
}

/* Does the device start with PCACHE_BLANK_CHECK_SIZE zero bytes? */
static int pcache_head_is_blank(struct pcache_cache *cache, bool *blank)
{
	u64 len = min_t(u64, cache->size, PCACHE_BLANK_CHECK_SIZE), off;
	void *buf = kmalloc(PCACHE_IO_CHUNK, GFP_KERNEL);
	int ret = 0;

	if (!buf)
		return -ENOMEM;
	*blank = true;
	for (off = 0; off < len && *blank; off += PCACHE_IO_CHUNK) {
		size_t chunk = min_t(u64, PCACHE_IO_CHUNK, len - off);

		ret = pcache_pmem_read(cache, off, buf, chunk);
		if (ret)
			break;
		*blank = !memchr_inv(buf, 0, chunk);
	}
	kfree(buf);
	return ret;
}

static int pcache_cache_load(struct pcache_cache *cache)
{
	struct pcache_backing_table *slots;
	const char *why = NULL, *slot_why[2];
	struct pcache_sb *sb;
	bool blank;
	int ret, newest, i;

	sb = kmalloc(sizeof(*sb), GFP_KERNEL);
	slots = kvmalloc_array(2, sizeof(*slots), GFP_KERNEL);
	if (!sb || !slots) {
		ret = -ENOMEM;
		goto out;
	}
	ret = cache->size >= PCACHE_META_END ?
		pcache_pmem_read(cache, PCACHE_SB_OFFSET, sb, sizeof(*sb)) : -ENOSPC;
	if (ret == -ENOSPC)
		pr_err("%s is too small to hold a pcache cache\n", cache->path);
	if (ret)
		goto out;

	ret = pcache_sb_check(sb, cache->size, &why);
	if (ret == -EINVAL && le64_to_cpu(sb->magic) != PCACHE_MAGIC) {
		ret = pcache_head_is_blank(cache, &blank) ?: -EINVAL;
		if (ret == -EINVAL && blank)
			pr_err("%s has no pcache superblock: add 'format' to create a cache on it\n",
			       cache->path);
		else if (ret == -EINVAL)
			pr_err("%s holds other data, not a pcache cache: 'format,force' overwrites it\n",
			       cache->path);
		goto out;
	}
	if (ret) {
		pr_err("%s: refusing the superblock: %s\n", cache->path, why);
		goto out;
	}
	memcpy(cache->uuid, sb->uuid, PCACHE_UUID_SIZE);
	cache->segment_size = le32_to_cpu(sb->segment_size);
	cache->segment_count = le32_to_cpu(sb->segment_count);
	cache->segments_offset = le64_to_cpu(sb->segments_offset);
	cache->data_crc = le64_to_cpu(sb->flags) & PCACHE_SB_F_DATA_CRC;

	/*
	 * Two copies so that damage to one loses nothing: a copy that cannot
	 * be read (a media error, logged) is zeroed, fails its check, and the
	 * other one is taken.
	 */
	for (i = 0; i < 2; i++)
		if (pcache_pmem_read(cache, PCACHE_TABLE_OFFSET +
				     i * PCACHE_TABLE_SLOT_SIZE, &slots[i],
				     sizeof(slots[i])))
			memset(&slots[i], 0, sizeof(slots[i]));
	newest = pcache_table_select(&slots[0], &slots[1], cache->segment_count,
				     slot_why);
	if (newest < 0) {
		pr_err("%s: refusing the backing table: copy 0: %s; copy 1: %s\n",
		       cache->path, slot_why[0], slot_why[1]);
		ret = newest;
		goto out;
	}
	/* A power cut while a copy was written, or damage: not lost. */
	if (slot_why[!newest])
		pr_warn("%s: backing table copy %d refused (%s): copy %d is used; the next table update rewrites both\n",
			cache->path, !newest, slot_why[!newest], newest);
	memcpy(cache->table, &slots[newest], sizeof(*cache->table));
	cache->table_first = !newest;
out:
	kvfree(slots);
	kfree(sb);
	return ret;
}

/*
 * Write an empty cache: wipe the metadata area (old signatures go too), write
 * both table slots, and the superblock last, so that a power cut part way
 * leaves no valid pcache behind.
 */
static int pcache_cache_format(struct pcache_cache *cache, bool force,
			       u32 segment_size, u64 sb_flags)
{
	struct pcache_sb *sb;
	const char *why = NULL;
	u8 uuid[PCACHE_UUID_SIZE];
	bool blank;
	int ret;

	if (!force) {
		ret = pcache_head_is_blank(cache, &blank);
		if (ret)
			return ret;
		if (!blank) {
			pr_err("%s is not blank (a filesystem, or a cache already?): add 'force' to overwrite it\n",
			       cache->path);
			return -EINVAL;
		}
	}
	sb = kmalloc(sizeof(*sb), GFP_KERNEL);
	if (!sb)
		return -ENOMEM;
	generate_random_uuid(uuid);
	ret = pcache_sb_init(sb, uuid, cache->size, segment_size, sb_flags, &why);
	if (ret) {
		pr_err("%s: cannot format: %s\n", cache->path, why);
		goto out;
	}
	ret = pcache_pmem_zero(cache, 0, le64_to_cpu(sb->segments_offset));
	if (ret)
		goto out;
	pmem_wmb();

	mutex_lock(&cache->lock);
	pcache_table_init(cache->table);
	pcache_cache_write_table(cache, cache->table);
	mutex_unlock(&cache->lock);

	pcache_pmem_write(cache, PCACHE_SB_OFFSET, sb, sizeof(*sb));
	pmem_wmb();
out:
	kfree(sb);
	return ret;
}

bool pcache_is_cache_device(dev_t devt)
{
	struct pcache_cache *cache;
	bool found = false;

	mutex_lock(&pcache_lock);
	list_for_each_entry(cache, &pcache_caches, node)
		found |= cache->pmem.bdev->bd_dev == devt;
	mutex_unlock(&pcache_lock);
	return found;
}

static void pcache_cache_release(struct device *dev)
{
	struct pcache_cache *cache = to_pcache_cache(dev);

	kvfree(cache->seg_owner);
	kvfree(cache->seg_bad);
	kvfree(cache->segs);
	kvfree(cache->table);
	kfree(cache);
}

static void pcache_explain_open_error(const char *path, int err)
{
	switch (err) {
	case -ENOENT:
		pr_err("%s: no such device\n", path);
		break;
	case -ENOTBLK:
		pr_err("%s: not a block device\n", path);
		break;
	case -EBUSY:
		pr_err("%s: in use (registered already, mounted, or held by another driver)\n",
		       path);
		break;
	case -EACCES:
		pr_err("%s: read-only (cannot be opened for writing)\n", path);
		break;
	default:
		pr_err("%s: cannot open: %d\n", path, err);
	}
}

int pcache_cache_register(const char *path, bool format, bool force,
			  u32 segment_size, u64 sb_flags)
{
	struct pcache_cache *cache, *other;
	int ret;

	if (strlen(path) >= PCACHE_PATH_SIZE) {
		pr_err("register: path longer than %d bytes\n", PCACHE_PATH_SIZE - 1);
		return -ENAMETOOLONG;
	}
	cache = kzalloc(sizeof(*cache), GFP_KERNEL);
	if (!cache)
		return -ENOMEM;
	mutex_init(&cache->lock);
	spin_lock_init(&cache->seg_lock);
	strscpy(cache->path, path, sizeof(cache->path));
	cache->id = -1;
	device_initialize(&cache->dev);
	cache->dev.type = &pcache_cache_type;
	cache->dev.bus = &pcache_bus_type;
	cache->dev.parent = pcache_root_dev;
	cache->table = kvzalloc(sizeof(*cache->table), GFP_KERNEL);
	if (!cache->table) {
		ret = -ENOMEM;
		goto out_put;
	}

	ret = pcache_bdev_open(&cache->pmem, path, cache);
	if (ret) {
		pcache_explain_open_error(path, ret);
		goto out_put;
	}
	cache->pmem_bb = cache->pmem.bdev->bd_disk->bb;
	mutex_lock(&pcache_dax_holder_lock);
	ret = pcache_cache_map(cache);
	if (!ret && format)
		ret = pcache_cache_format(cache, force, segment_size, sb_flags);
	if (!ret)
		ret = pcache_cache_load(cache);
	if (!ret)
		ret = pcache_cache_scan_segments(cache);
	mutex_unlock(&pcache_dax_holder_lock);
	if (ret)
		goto out_unmap;

	mutex_lock(&pcache_lock);
	list_for_each_entry(other, &pcache_caches, node) {
		if (!memcmp(other->uuid, cache->uuid, PCACHE_UUID_SIZE)) {
			pr_err("%s: cache %pUb is registered already as cache%d (a copy?)\n",
			       path, cache->uuid, other->id);
			ret = -EEXIST;
			goto out_unlock;
		}
	}
	ret = ida_alloc(&pcache_cache_ida, GFP_KERNEL);
	if (ret < 0)
		goto out_unlock;
	cache->id = ret;
	ret = dev_set_name(&cache->dev, "cache%d", cache->id) ?:
	      device_add(&cache->dev);
	if (ret)
		goto out_unlock;
	list_add_tail(&cache->node, &pcache_caches);
	__module_get(THIS_MODULE);
	/*
	 * Taken before the cache can be found: an unregister must not slip in
	 * before its backing devices are restored, or they would be restored
	 * onto a cache that is unmapped and freed under them.
	 */
	mutex_lock(&cache->lock);
	mutex_unlock(&pcache_lock);

	pr_info("cache%d: %s %s: uuid %pUb, %u segments of %u KiB%s\n",
		cache->id, format ? "formatted" : "loaded", path, cache->uuid,
		cache->segment_count, cache->segment_size >> 10,
		cache->data_crc ? ", data CRC" : "");
	pcache_backing_restore_all(cache);
	mutex_unlock(&cache->lock);
	return 0;

out_unlock:
	mutex_unlock(&pcache_lock);
out_unmap:
	pcache_cache_unmap(cache);
out_put:
	if (cache->id >= 0)
		ida_free(&pcache_cache_ida, cache->id);
	put_device(&cache->dev);
	return ret;
}

int pcache_cache_unregister(int id)
{
	struct pcache_cache *cache = NULL, *iter;
	unsigned int i, attached = 0;

	mutex_lock(&pcache_lock);
	list_for_each_entry(iter, &pcache_caches, node) {
		if (iter->id == id)
			cache = iter;
	}
	if (!cache) {
		mutex_unlock(&pcache_lock);
		pr_err("unregister: there is no cache%d\n", id);
		return -ENOENT;
	}
	mutex_lock(&cache->lock);
	/* A backing being detached counts: its device is still a child. */
	for (i = 0; i < PCACHE_MAX_BACKINGS; i++)
		attached += cache->backings[i] &&
			    cache->backings[i]->state != PCACHE_BACKING_MISSING;
	if (attached) {
		mutex_unlock(&cache->lock);
		mutex_unlock(&pcache_lock);
		pr_err("cache%d: %u backing device(s) attached: detach them first\n",
		       id, attached);
		return -EBUSY;
	}
	cache->removing = true;
	mutex_unlock(&cache->lock);
	list_del(&cache->node);
	mutex_unlock(&pcache_lock);

	pcache_backing_remove_missing(cache);
	device_del(&cache->dev);
	pcache_cache_unmap(cache);
	ida_free(&pcache_cache_ida, cache->id);
	pr_info("cache%d: unregistered %s\n", id, cache->path);
	put_device(&cache->dev);
	module_put(THIS_MODULE);
	return 0;
}

/* A control command to a cache device: a trimmed, NUL-terminated copy. */
static ssize_t pcache_cache_command(struct device *dev, const char *buf,
				    size_t count,
				    int (*command)(struct pcache_cache *, char *))
{
	char *options;
	int ret;

	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	options = kstrndup(buf, count, GFP_KERNEL);
	if (!options)
		return -ENOMEM;
	ret = command(to_pcache_cache(dev), strim(options));
	kfree(options);
	return ret ? ret : count;
}

static ssize_t attach_store(struct device *dev, struct device_attribute *attr,
			    const char *buf, size_t count)
{
	return pcache_cache_command(dev, buf, count, pcache_backing_attach);
}
static DEVICE_ATTR_WO(attach);

static ssize_t detach_store(struct device *dev, struct device_attribute *attr,
			    const char *buf, size_t count)
{
	return pcache_cache_command(dev, buf, count, pcache_backing_detach);
}
static DEVICE_ATTR_WO(detach);

static ssize_t path_show(struct device *dev, struct device_attribute *attr,
			 char *buf)
{
	return sysfs_emit(buf, "%s\n", to_pcache_cache(dev)->path);
}
static DEVICE_ATTR_RO(path);

static ssize_t uuid_show(struct device *dev, struct device_attribute *attr,
			 char *buf)
{
	return sysfs_emit(buf, "%pUb\n", to_pcache_cache(dev)->uuid);
}
static DEVICE_ATTR_RO(uuid);

static ssize_t size_show(struct device *dev, struct device_attribute *attr,
			 char *buf)
{
	return sysfs_emit(buf, "%llu\n", to_pcache_cache(dev)->size);
}
static DEVICE_ATTR_RO(size);

static ssize_t segment_size_show(struct device *dev,
				 struct device_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%u\n", to_pcache_cache(dev)->segment_size);
}
static DEVICE_ATTR_RO(segment_size);

static ssize_t data_crc_show(struct device *dev, struct device_attribute *attr,
			     char *buf)
{
	return sysfs_emit(buf, "%d\n", to_pcache_cache(dev)->data_crc);
}
static DEVICE_ATTR_RO(data_crc);

static ssize_t segments_total_show(struct device *dev,
				   struct device_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%u\n", to_pcache_cache(dev)->segment_count);
}
static DEVICE_ATTR_RO(segments_total);

static ssize_t segments_reserved_show(struct device *dev,
				      struct device_attribute *attr, char *buf)
{
	struct pcache_cache *cache = to_pcache_cache(dev);
	u32 reserved;

	mutex_lock(&cache->lock);
	reserved = pcache_space_reserved(cache->table);
	mutex_unlock(&cache->lock);
	return sysfs_emit(buf, "%u\n", reserved);
}
static DEVICE_ATTR_RO(segments_reserved);

static ssize_t segments_bad_show(struct device *dev,
				 struct device_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%u\n",
			  pcache_cache_segments_bad(to_pcache_cache(dev)));
}
static DEVICE_ATTR_RO(segments_bad);

static ssize_t segments_used_show(struct device *dev,
				  struct device_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%u\n",
			  pcache_cache_segments_owned(to_pcache_cache(dev), U32_MAX));
}
static DEVICE_ATTR_RO(segments_used);

static ssize_t state_show(struct device *dev, struct device_attribute *attr,
			  char *buf)
{
	struct pcache_cache *cache = to_pcache_cache(dev);

	return sysfs_emit(buf, "%s\n", READ_ONCE(cache->removing) ? "removing" :
			  pcache_pmem_gone(cache) ? "gone" : "running");
}
static DEVICE_ATTR_RO(state);

/*
 * The recorded backing devices that are not there, for boot-time assembly
 * and status tools to tell "assembled" from "waiting": their IDs, in order,
 * separated by spaces (an empty line when none is missing).
 */
static ssize_t missing_backings_show(struct device *dev,
				     struct device_attribute *attr, char *buf)
{
	struct pcache_cache *cache = to_pcache_cache(dev);
	struct pcache_backing *backing;
	ssize_t len = 0;
	u32 id;

	mutex_lock(&cache->lock);
	for (id = 0; id < PCACHE_MAX_BACKINGS; id++) {
		backing = cache->backings[id];
		if (!backing || backing->state != PCACHE_BACKING_MISSING)
			continue;
		len += sysfs_emit_at(buf, len, "%s%u", len ? " " : "", id);
	}
	mutex_unlock(&cache->lock);
	return len + sysfs_emit_at(buf, len, "\n");
}
static DEVICE_ATTR_RO(missing_backings);

static struct attribute *pcache_cache_attrs[] = {
	&dev_attr_attach.attr,
	&dev_attr_detach.attr,
	&dev_attr_path.attr,
	&dev_attr_uuid.attr,
	&dev_attr_size.attr,
	&dev_attr_segment_size.attr,
	&dev_attr_data_crc.attr,
	&dev_attr_segments_total.attr,
	&dev_attr_segments_reserved.attr,
	&dev_attr_segments_used.attr,
	&dev_attr_segments_bad.attr,
	&dev_attr_state.attr,
	&dev_attr_missing_backings.attr,
	NULL,
};

static const struct attribute_group pcache_cache_group = {
	.attrs = pcache_cache_attrs,
};

static const struct attribute_group *pcache_cache_groups[] = {
	&pcache_cache_group,
	&pcache_cache_stats_group,
	NULL,
};

const struct device_type pcache_cache_type = {
	.name		= "pcache_cache",
	.groups		= pcache_cache_groups,
	.release	= pcache_cache_release,
};
