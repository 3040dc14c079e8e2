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

#include <linux/badblocks.h>
#include <linux/bio.h>
#include <linux/blk-mq.h>
#include <linux/device.h>
#include <linux/mutex.h>
#include <linux/parser.h>
#include <linux/types.h>

#include <pcache/format.h>
#include <linux/percpu_counter.h>
#include <linux/wait.h>
#include <linux/workqueue.h>

#include "compat.h"
#include "index.h"
#include "meta.h"
#include "space.h"
#include "stats.h"

struct dax_device;
struct pcache_backing;
struct pcache_fill;

struct pcache_cache {
	struct device dev;
	int id;
	struct list_head node;		/* pcache_caches, under pcache_lock */

	struct mutex lock;		/* see the locking rules above */
	bool removing;

	char path[PCACHE_PATH_SIZE];
	struct pcache_bdev pmem;
	struct badblocks *pmem_bb;	/* the pmem disk's, lives as long */
	struct dax_device *dax_dev;
	void *kaddr;			/* the whole device, mapped with DAX */
	/* The namespace went away: nothing touches @kaddr any more. */
	bool pmem_gone;
	u64 size;			/* bytes mapped */
	/* First page frame of the mapping, when it has struct pages. */
	unsigned long pfn;
	bool has_pages;

	/* Geometry, from the validated superblock. */
	u8 uuid[PCACHE_UUID_SIZE];
	u32 segment_size;
	u32 segment_count;
	u64 segments_offset;
	bool data_crc;			/* PCACHE_SB_F_DATA_CRC: see cache.c */

	/* Newest valid copy of the backing table (pmem holds two). */
	struct pcache_backing_table *table;
	/* The slot an update writes first: one not holding the only copy. */
	unsigned int table_first;
	struct pcache_backing *backings[PCACHE_MAX_BACKINGS];

	/* Owner of each segment: pcache_space_tag(backing id), 0 when free. */
	spinlock_t seg_lock;
	u8 *seg_owner;
	/* 1 for a segment with known bad blocks: never taken (seg_lock). */
	u8 *seg_bad;
	/*
	 * Counts of the two maps, kept with them under seg_lock so that
	 * reading them (sysfs files anyone may read) walks nothing.
	 */
	u32 seg_owned[PCACHE_MAX_BACKINGS];
	u32 segs_owned;
	u32 segs_bad;
	struct pcache_seg_state *segs;	/* segment_count of them */

	/* What detached backing devices counted (stats.c), under @lock. */
	struct pcache_stats_retired retired;
};

/* Set once, under @lock, by pcache_backing_pmem_gone(). */
static inline bool pcache_pmem_gone(struct pcache_cache *cache)
{
	return READ_ONCE(cache->pmem_gone);
}

/*
 * What DRAM knows of an owned segment's log.  Set when a head opens the
 * segment (or by replay); @keys and @open then change only under that
 * head's lock, the rest only in the backing's writeback work.  Once @open
 * is false it stays so until the segment is reclaimed.
 */
struct pcache_seg_state {
	u64 gen;			/* of its header */
	u32 keys;			/* records in its log */
	bool open;			/* a head appends to it */
	/* Writeback's place: records before it are on the backing device. */
	u32 clean_keys;
	u64 clean_prev_seq;		/* seq of record clean_keys - 1 */
	u32 clean_data_end;		/* end of its data */
	/* Keys appended to it and not in the index yet: not reclaimable. */
	atomic_t inserting;
};

/* Index extents each CPU keeps ready: a split takes the tail and the key. */
#define PCACHE_SPARE_EXTENTS	2

/* A CPU's place in the log of a backing device: its open segment. */
struct pcache_head {
	spinlock_t lock;		/* all fields; held across an append */
	bool open;
	u32 seg;
	u64 gen;
	u32 data_off;			/* next data byte in the segment */
	u32 nr_keys;			/* records written in the segment */
	struct pcache_seg_header *hdr;	/* staging buffer for a new header */
	/*
	 * Index extents kept ready for this CPU's next write, so that
	 * inserting a key needs no allocation and no second pass, even when
	 * it splits an older extent (the tail and the key: two).  Taken and
	 * put back with this_cpu_xchg/cmpxchg, not under @lock.
	 */
	struct pcache_extent *spare[PCACHE_SPARE_EXTENTS];
	/*
	 * The run of sequential reads this CPU last saw (fill.c): where the
	 * next one would start, and its bytes so far.  Not under @lock; a
	 * race only misjudges one read.
	 */
	sector_t stream_next;
	u64 stream_bytes;
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
	/*
	 * Its size when attached (the recorded one), which the disk, the
	 * index and the records are held to: a device that grows or shrinks
	 * underneath changes none of them (past its end, I/O errors).
	 */
	sector_t sectors;

	/* The disk /dev/pcacheN, when attached. */
	struct blk_mq_tag_set tag_set;
	struct gendisk *disk;
	int disk_index;
	struct mutex open_lock;		/* open_count, removing */
	unsigned int open_count;
	bool removing;

	/* The cache, while attached (cache.c). */
	u8 mode;			/* enum pcache_cache_mode; see mode.c */
	bool mode_switching;		/* under cache->lock */
	/* Writes around the log in flight, and their works (mode.c). */
	spinlock_t around_lock;		/* around_list, around_conflict */
	struct list_head around_list;
	struct mutex around_mutex;	/* their works, one at a time */
	u8 uuid[PCACHE_UUID_SIZE];
	u64 epoch;
	u32 quota;			/* segments */
	u32 segs_used;			/* under cache->seg_lock */
	u32 segs_clean;			/* of those, kept for reads; the work's */
	u32 segs_reserve;		/* free segments to keep for writes */
	atomic64_t seq;
	struct pcache_head __percpu *heads;
	struct pcache_index index;
	/* Read caching (fill.c). */
	bool read_cache;		/* tunable: fill the cache on misses */
	u64 sequential_cutoff;		/* tunable: bytes; 0: no bypass */
	atomic_t fills;			/* prepared and not freed yet */
	atomic_t reclaim_gen;		/* bumped before reclaim drops extents */
	/* Writeback and reclaim (writeback.c). */
	u64 clean_seq;			/* as on pmem; writeback work only */
	struct percpu_counter dirty_sectors;	/* log not written back yet */
	struct delayed_work wb_work;
	struct pcache_wb_batch *wb;	/* the work's buffers */
	wait_queue_head_t space_wait;	/* writes waiting for a segment */
	wait_queue_head_t clean_wait;	/* drains waiting for writeback */
	bool draining;
	bool wb_urgent;			/* above the high mark, until the low */
	bool wb_stopped;
	bool reclaim_asked;		/* the work is to free clean segments */
	bool fill_room_asked;		/* ...up to twice the reserve free */
	unsigned long wb_due;		/* jiffies: when the next round is */
	unsigned long wb_failing_since;	/* jiffies: first failed round in a row, 0: none */
	/* Tunables (sysfs). */
	unsigned int wb_delay_ms;
	unsigned int failing_timeout_ms;	/* writes wait this long for room */
	unsigned int dirty_high_percent;
	unsigned int dirty_low_percent;
	/* Statistics (sysfs). */
	struct pcache_stats __percpu *stats;	/* of requests (stats.c) */
	atomic64_t written_back;	/* bytes */
	atomic64_t wb_errors;
	atomic64_t data_crc_errors;	/* read hits and writeback refused */
	atomic64_t segs_reclaimed;
	atomic64_t waits_for_space;
	u64 clean_bytes;		/* data in the clean segments kept */
};

/* Tunables of writeback: see docs/ABI/sysfs-bus-pcache. */
#define PCACHE_WB_DELAY_MS_DEFAULT	1000
#define PCACHE_DIRTY_HIGH_DEFAULT	50
#define PCACHE_DIRTY_LOW_DEFAULT	25
#define PCACHE_FAILING_TIMEOUT_MS_DEFAULT	30000
/* Read caching: like bcache's sequential_cutoff. */
#define PCACHE_SEQUENTIAL_CUTOFF_DEFAULT	SZ_4M

/* Largest request: what one record of data may hold (1 MiB). */
#define PCACHE_MAX_HW_SECTORS	PCACHE_KEY_DATA_SECTORS_MAX
/* Writeback copies a record's data into one bio of its own pages. */
static_assert(PCACHE_KEY_DATA_SECTORS_MAX <=
	      BIO_MAX_VECS << (PAGE_SHIFT - SECTOR_SHIFT));

/* Per-request state of the disk (the blk-mq pdu). */
struct pcache_request {
	atomic_t pending;		/* bios in flight, plus the submitter */
	blk_status_t status;
	u8 kind;			/* enum pcache_rq_kind */
	bool replaced;			/* writes: older cached data replaced */
	u32 hit_sectors;		/* reads: served from the cache */
	bool seq_bypass;		/* reads: a stream past the cutoff */
	/* Writes around the log (mode.c). */
	bool around;
	bool around_conflict;		/* overlapped another in flight */
	struct list_head around_node;
	struct work_struct around_work;
	u64 start_ns;
	DECLARE_BITMAP(hit, PCACHE_MAX_HW_SECTORS);	/* reads: sectors served */
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
			  u32 segment_size, u64 sb_flags);
int pcache_cache_unregister(int id);
bool pcache_is_cache_device(dev_t devt);
bool pcache_pmem_check_bad(struct pcache_cache *cache, u64 off, u64 len,
			   u64 *bad_off, u64 *bad_len);

/*
 * Whether [@off, @off + @len) of the cache device holds a known bad block;
 * if so and @bad_off, the first bad range in it.  Inline because every read
 * hit asks, and a device without bad blocks answers with two loads.
 */
static inline bool pcache_pmem_known_bad(struct pcache_cache *cache, u64 off,
					 u64 len, u64 *bad_off, u64 *bad_len)
{
	struct badblocks *bb = cache->pmem_bb;

	if (likely(!bb || !READ_ONCE(bb->count)) || !len)
		return false;
	return pcache_pmem_check_bad(cache, off, len, bad_off, bad_len);
}

void pcache_cache_write_table(struct pcache_cache *cache,
			      struct pcache_backing_table *table);
extern const struct device_type pcache_cache_type;

/* backing_dev.c */
int pcache_backing_attach(struct pcache_cache *cache, char *options);
int pcache_backing_detach(struct pcache_cache *cache, char *options);
void pcache_backing_restore_all(struct pcache_cache *cache);
void pcache_backing_remove_missing(struct pcache_cache *cache);
void pcache_backing_pmem_gone(struct pcache_cache *cache);

/* cache.c */
int pcache_cache_init(void);
void pcache_cache_exit(void);
int pcache_cache_scan_segments(struct pcache_cache *cache);
int pcache_cache_backing_start(struct pcache_backing *backing);
void pcache_cache_backing_stop(struct pcache_backing *backing);
void pcache_cache_release_segments(struct pcache_cache *cache, u32 id);
u32 pcache_cache_segments_owned(struct pcache_cache *cache, u32 id);
u32 pcache_cache_segments_bad(struct pcache_cache *cache);
blk_status_t pcache_cache_write(struct pcache_backing *backing,
				struct request *rq);
void pcache_cache_read(struct pcache_backing *backing, struct request *rq);
void pcache_head_close(struct pcache_backing *backing, struct pcache_head *head);
void pcache_seg_put(struct pcache_backing *backing, u32 seg);
u32 pcache_backing_room(struct pcache_backing *backing, u32 most);
bool pcache_log_append(struct pcache_backing *backing, struct request *rq,
		       struct pcache_fill *fill, u32 rq_off, sector_t pos,
		       u32 *len, u32 key_flags, struct pcache_key *key);
int pcache_data_check(struct pcache_backing *backing, u32 seg, u32 rec_index);
void pcache_log_index(struct pcache_backing *backing,
		      const struct pcache_key *key, u64 *replaced);
void pcache_index_add(struct pcache_backing *backing,
		      const struct pcache_key *key, gfp_t gfp, u64 *replaced,
		      struct pcache_extent_pool *left);
void pcache_spare_refill(struct pcache_backing *backing,
			 struct pcache_extent_pool *pool, gfp_t gfp);

/* mode.c */
extern const char * const pcache_mode_names[PCACHE_MODE_NR];
extern const struct attribute_group pcache_mode_attr_group;
int pcache_mode_init(void);
void pcache_mode_exit(void);
void pcache_mode_backing_init(struct pcache_backing *backing);
void pcache_around_write(struct pcache_backing *backing, struct request *rq);
void pcache_around_done(struct request *rq);

/* fill.c */
int pcache_fill_init(void);
void pcache_fill_exit(void);
struct pcache_fill *pcache_fill_prepare(struct pcache_backing *backing,
					struct request *rq, sector_t start,
					u32 sectors, int gen);
void pcache_fill_read(struct pcache_backing *backing, struct pcache_fill *fill);
void pcache_fill_to_pmem(struct pcache_fill *fill, u32 off, void *dst, u32 len,
			 u32 *crc);
void pcache_fill_wait(struct pcache_backing *backing);
bool pcache_fill_has_room(struct pcache_backing *backing);
bool pcache_fill_stream_bypass(struct pcache_backing *backing,
			       struct request *rq);
extern const struct attribute_group pcache_fill_attr_group;

/* The index's flags for the key of a record with @key_flags. */
static inline u32 pcache_extent_flags(u32 key_flags)
{
	u32 flags = key_flags & PCACHE_KEY_F_CLEAN ? 0 : PCACHE_EXTENT_DIRTY;

	if (key_flags & PCACHE_KEY_F_ZEROES)
		flags |= PCACHE_EXTENT_ZEROES;
	if (key_flags & PCACHE_KEY_F_DISCARD)
		flags |= PCACHE_EXTENT_DISCARD;
	return flags;
}

/* The index's flags for record @index of its segment. */
static inline u32 pcache_extent_rec(u32 index)
{
	return index << PCACHE_EXTENT_REC_SHIFT;
}

static inline u32 pcache_extent_rec_index(u32 flags)
{
	return flags >> PCACHE_EXTENT_REC_SHIFT;
}

struct pcache_extent *pcache_extent_alloc(void *gfp);
struct pcache_extent *pcache_extent_alloc_noreserve(void *ctx);
void pcache_extent_free(struct pcache_extent *ext, void *ctx);

static inline struct pcache_backing_entry *
pcache_backing_entry(struct pcache_backing *backing)
{
	return &backing->cache->table->entries[backing->id];
}

/* The recorded logical block size (the device's, checked at open), as a mask. */
static inline u32 pcache_backing_block_mask(struct pcache_backing *backing)
{
	return (le32_to_cpu(pcache_backing_entry(backing)->logical_block_size) >>
		SECTOR_SHIFT) - 1;
}

/* Byte offset of segment @seg in the cache device. */
static inline u64 pcache_seg_offset(struct pcache_cache *cache, u32 seg)
{
	return cache->segments_offset + (u64)seg * cache->segment_size;
}

static inline void *pcache_seg_addr(struct pcache_cache *cache, u32 seg,
				    u32 off)
{
	return cache->kaddr + cache->segments_offset +
		(u64)seg * cache->segment_size + off;
}

/* writeback.c */
static inline u64 pcache_dirty_bytes(struct pcache_backing *backing)
{
	return (u64)percpu_counter_sum_positive(&backing->dirty_sectors) <<
		SECTOR_SHIFT;
}

int pcache_wb_init(void);
void pcache_wb_exit(void);
void pcache_wb_waitqueues_init(struct pcache_backing *backing);
int pcache_wb_backing_init(struct pcache_backing *backing);
void pcache_wb_backing_exit(struct pcache_backing *backing);
void pcache_wb_kick(struct pcache_backing *backing, bool now);
void pcache_wb_seg_opened(struct pcache_backing *backing);
void pcache_wb_fill_wants_room(struct pcache_backing *backing);
int pcache_wb_wait_for_room(struct pcache_backing *backing);
int pcache_wb_drain(struct pcache_backing *backing, u64 most);
void pcache_wb_stop(struct pcache_backing *backing);
void pcache_wb_start(struct pcache_backing *backing);
extern const struct attribute_group pcache_wb_attr_group;

/* disk.c */
struct bio *pcache_backing_bio(struct pcache_backing *backing,
			       struct request *rq, blk_opf_t opf,
			       unsigned short nr_vecs, sector_t sector);
void pcache_request_put(struct request *rq);
void pcache_request_end(struct request *rq, blk_status_t status);
void pcache_passthrough(struct pcache_backing *backing, struct request *rq);
void pcache_disk_mode_limits(struct pcache_backing *backing, u32 mode,
			     struct pcache_disk_limits *lim);
int pcache_disk_init(void);
void pcache_disk_exit(void);
int pcache_disk_create(struct pcache_backing *backing);
void pcache_disk_destroy(struct pcache_backing *backing);
int pcache_disk_claim_removal(struct pcache_backing *backing);
void pcache_disk_unclaim_removal(struct pcache_backing *backing);
bool pcache_is_pcache_disk(dev_t devt);

#endif /* _PCACHE_H */
