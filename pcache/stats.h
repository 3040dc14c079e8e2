/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Request statistics of a backing device and of a cache device: per-CPU
 * counters and latency histograms, summed when sysfs reads them (stats.c).
 */
#ifndef _PCACHE_STATS_H
#define _PCACHE_STATS_H

#include <linux/blk-mq.h>
#include <linux/types.h>

struct pcache_backing;
struct pcache_cache;

/* What a request of /dev/pcacheN turned out to be, for the statistics. */
enum pcache_rq_kind {
	PCACHE_RQ_BYPASS,		/* sent to the backing device as it is */
	PCACHE_RQ_READ,			/* looked up in the cache */
	PCACHE_RQ_WRITE,		/* appended to the log */
	PCACHE_RQ_DISCARD,
	PCACHE_RQ_WRITE_ZEROES,
};

/* The counters; their sysfs names are in stats.c. */
enum pcache_stat {
	PCACHE_STAT_READS,
	PCACHE_STAT_READ_HITS,
	PCACHE_STAT_READ_PARTIAL_HITS,
	PCACHE_STAT_READ_MISSES,
	PCACHE_STAT_READ_BYTES,
	PCACHE_STAT_READ_HIT_BYTES,
	PCACHE_STAT_SEQUENTIAL_BYPASSED,
	PCACHE_STAT_WRITES,
	PCACHE_STAT_WRITE_HITS,
	PCACHE_STAT_WRITE_BYTES,
	PCACHE_STAT_DISCARDS,
	PCACHE_STAT_WRITE_ZEROES,
	PCACHE_STAT_BYPASSED,
	PCACHE_STAT_ERRORS,
	PCACHE_STAT_NR
};

/* Latency histograms: request kinds, and power-of-two buckets of ns. */
enum pcache_lat {
	PCACHE_LAT_READ_HIT,
	PCACHE_LAT_READ_MISS,		/* partial hits too */
	PCACHE_LAT_WRITE,
	PCACHE_LAT_NR
};

/* Bucket 0: below 1024 ns; bucket i: below 1024 << i ns; the last: more. */
#define PCACHE_LAT_BUCKETS	24
#define PCACHE_LAT_MIN_SHIFT	10

struct pcache_stats {
	u64 count[PCACHE_STAT_NR];
	u64 lat[PCACHE_LAT_NR][PCACHE_LAT_BUCKETS];
};

/* Statistics a cache keeps of its detached backing devices, and their writeback's. */
struct pcache_stats_retired {
	struct pcache_stats req;
	u64 written_back;
	u64 wb_errors;
	u64 data_crc_errors;
	u64 segs_reclaimed;
	u64 waits_for_space;
};

int pcache_stats_alloc(struct pcache_backing *backing);
void pcache_stats_free(struct pcache_backing *backing);
void pcache_stats_account(struct pcache_backing *backing, struct request *rq,
			  blk_status_t status);
void pcache_stats_retire(struct pcache_backing *backing);

extern const struct attribute_group pcache_backing_stats_group;
extern const struct attribute_group pcache_cache_stats_group;

#endif /* _PCACHE_STATS_H */
