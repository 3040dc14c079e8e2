// SPDX-License-Identifier: GPL-2.0
/*
 * Request statistics: what the requests of /dev/pcacheN were, how they were
 * served and how long they took.
 *
 * Each backing device counts in per-CPU counters, bumped once per request
 * when it completes, with this_cpu operations: no lock and no shared cache
 * line on the I/O path.  sysfs sums them over the CPUs when read, so a
 * sum read while requests complete may be a request or two behind, never
 * torn (each counter is a u64 on 64-bit).
 *
 * A cache device shows the sums over its backing devices, including those
 * detached since it was registered: a detach folds the backing device's
 * counters into the cache's (under cache->lock, which the sums take too).
 * Nothing survives unregistration or a module reload.
 */
#include <linux/blk-mq.h>
#include <linux/percpu.h>
#include <linux/sysfs.h>
#include <linux/timekeeping.h>

#include "pcache.h"

int pcache_stats_alloc(struct pcache_backing *backing)
{
	backing->stats = alloc_percpu(struct pcache_stats);
	return backing->stats ? 0 : -ENOMEM;
}

void pcache_stats_free(struct pcache_backing *backing)
{
	free_percpu(backing->stats);
	backing->stats = NULL;
}

static unsigned int pcache_lat_bucket(u64 ns)
{
	unsigned int bucket = fls64(ns >> PCACHE_LAT_MIN_SHIFT);

	return min_t(unsigned int, bucket, PCACHE_LAT_BUCKETS - 1);
}

/*
 * A request completes (with @status): count it.  Every request is exactly
 * one of a read, a write, a discard, a write-zeroes or a bypassed request;
 * a read is exactly one of a hit, a partial hit or a miss.
 */
void pcache_stats_account(struct pcache_backing *backing, struct request *rq,
			  blk_status_t status)
{
	struct pcache_request *preq = blk_mq_rq_to_pdu(rq);
	struct pcache_stats __percpu *st = backing->stats;
	u64 bytes = blk_rq_bytes(rq);
	int lat = -1;

	switch (preq->kind) {
	case PCACHE_RQ_BYPASS:
		this_cpu_inc(st->count[PCACHE_STAT_BYPASSED]);
		break;
	case PCACHE_RQ_READ:
		this_cpu_inc(st->count[PCACHE_STAT_READS]);
		this_cpu_add(st->count[PCACHE_STAT_READ_BYTES], bytes);
		this_cpu_add(st->count[PCACHE_STAT_READ_HIT_BYTES],
			     (u64)preq->hit_sectors << SECTOR_SHIFT);
		if (preq->seq_bypass)
			this_cpu_inc(st->count[PCACHE_STAT_SEQUENTIAL_BYPASSED]);
		if (preq->hit_sectors == blk_rq_sectors(rq)) {
			this_cpu_inc(st->count[PCACHE_STAT_READ_HITS]);
			lat = PCACHE_LAT_READ_HIT;
		} else {
			this_cpu_inc(st->count[preq->hit_sectors ?
					       PCACHE_STAT_READ_PARTIAL_HITS :
					       PCACHE_STAT_READ_MISSES]);
			lat = PCACHE_LAT_READ_MISS;
		}
		break;
	case PCACHE_RQ_WRITE:
		this_cpu_inc(st->count[PCACHE_STAT_WRITES]);
		this_cpu_add(st->count[PCACHE_STAT_WRITE_BYTES], bytes);
		if (preq->replaced)
			this_cpu_inc(st->count[PCACHE_STAT_WRITE_HITS]);
		lat = PCACHE_LAT_WRITE;
		break;
	case PCACHE_RQ_DISCARD:
		this_cpu_inc(st->count[PCACHE_STAT_DISCARDS]);
		break;
	case PCACHE_RQ_WRITE_ZEROES:
		this_cpu_inc(st->count[PCACHE_STAT_WRITE_ZEROES]);
		break;
	}
	if (status != BLK_STS_OK)
		this_cpu_inc(st->count[PCACHE_STAT_ERRORS]);
	if (lat >= 0)
		this_cpu_inc(st->lat[lat][pcache_lat_bucket(ktime_get_ns() -
							    preq->start_ns)]);
}

static void pcache_stats_add(struct pcache_stats *sum,
			     const struct pcache_stats __percpu *st)
{
	int cpu, i, j;

	for_each_possible_cpu(cpu) {
		const struct pcache_stats *c = per_cpu_ptr(st, cpu);

		for (i = 0; i < PCACHE_STAT_NR; i++)
			sum->count[i] += READ_ONCE(c->count[i]);
		for (i = 0; i < PCACHE_LAT_NR; i++)
			for (j = 0; j < PCACHE_LAT_BUCKETS; j++)
				sum->lat[i][j] += READ_ONCE(c->lat[i][j]);
	}
}

/* The writeback statistics of @backing, added to @sum. */
static void pcache_stats_add_wb(struct pcache_stats_retired *sum,
				struct pcache_backing *backing)
{
	sum->written_back += atomic64_read(&backing->written_back);
	sum->wb_errors += atomic64_read(&backing->wb_errors);
	sum->data_crc_errors += atomic64_read(&backing->data_crc_errors);
	sum->segs_reclaimed += atomic64_read(&backing->segs_reclaimed);
	sum->waits_for_space += atomic64_read(&backing->waits_for_space);
}

/*
 * Called under cache->lock once @backing is out of cache->backings[] and
 * sends no more requests: the cache keeps what it counted.
 */
void pcache_stats_retire(struct pcache_backing *backing)
{
	struct pcache_cache *cache = backing->cache;

	lockdep_assert_held(&cache->lock);
	pcache_stats_add(&cache->retired.req, backing->stats);
	pcache_stats_add_wb(&cache->retired, backing);
}

/* The sums over a cache's backing devices, past and present. */
static void pcache_cache_stats_sum(struct pcache_cache *cache,
				   struct pcache_stats_retired *sum,
				   u64 *dirty, u64 *clean)
{
	struct pcache_backing *backing;
	u32 id;

	mutex_lock(&cache->lock);
	*sum = cache->retired;
	*dirty = 0;
	*clean = 0;
	for (id = 0; id < PCACHE_MAX_BACKINGS; id++) {
		backing = cache->backings[id];
		if (!backing)
			continue;
		pcache_stats_add(&sum->req, backing->stats);
		pcache_stats_add_wb(sum, backing);
		*dirty += pcache_dirty_bytes(backing);
		*clean += READ_ONCE(backing->clean_bytes);
	}
	mutex_unlock(&cache->lock);
}

/*
 * latency_histogram: a header line, then one line per bucket: its upper
 * bound in ns ("inf" for the last) and the count of read hits, read misses
 * (and partial hits) and writes that took less.
 */
static ssize_t pcache_lat_emit(char *buf, const struct pcache_stats *st)
{
	ssize_t len;
	int b;

	len = sysfs_emit(buf, "below_ns read_hits read_misses writes\n");
	for (b = 0; b < PCACHE_LAT_BUCKETS; b++) {
		if (b == PCACHE_LAT_BUCKETS - 1)
			len += sysfs_emit_at(buf, len, "inf");
		else
			len += sysfs_emit_at(buf, len, "%llu",
					     1ULL << (PCACHE_LAT_MIN_SHIFT + b));
		len += sysfs_emit_at(buf, len, " %llu %llu %llu\n",
				     st->lat[PCACHE_LAT_READ_HIT][b],
				     st->lat[PCACHE_LAT_READ_MISS][b],
				     st->lat[PCACHE_LAT_WRITE][b]);
	}
	return len;
}

/* backingM/stats/: one counter per file, and the histograms. */
struct pcache_stat_attr {
	struct device_attribute attr;
	int stat;
};

static ssize_t pcache_backing_stat_show(struct device *dev,
					struct device_attribute *attr, char *buf)
{
	struct pcache_stat_attr *sa = container_of(attr, struct pcache_stat_attr, attr);
	struct pcache_stats sum = {};

	pcache_stats_add(&sum, to_pcache_backing(dev)->stats);
	return sysfs_emit(buf, "%llu\n", sum.count[sa->stat]);
}

static ssize_t pcache_backing_lat_show(struct device *dev,
				       struct device_attribute *attr, char *buf)
{
	struct pcache_stats *sum;
	ssize_t ret;

	/* Too big for the stack. */
	sum = kzalloc(sizeof(*sum), GFP_KERNEL);
	if (!sum)
		return -ENOMEM;
	pcache_stats_add(sum, to_pcache_backing(dev)->stats);
	ret = pcache_lat_emit(buf, sum);
	kfree(sum);
	return ret;
}

/* cacheN/stats/: the same, summed, and the writeback statistics summed. */
enum {
	PCACHE_CSTAT_DIRTY = PCACHE_STAT_NR,
	PCACHE_CSTAT_CLEAN,
	PCACHE_CSTAT_WRITTEN_BACK,
	PCACHE_CSTAT_WB_ERRORS,
	PCACHE_CSTAT_DATA_CRC_ERRORS,
	PCACHE_CSTAT_SEGS_RECLAIMED,
	PCACHE_CSTAT_WAITS_FOR_SPACE,
	PCACHE_CSTAT_LATENCY,
};

static ssize_t pcache_cache_stat_show(struct device *dev,
				      struct device_attribute *attr, char *buf)
{
	struct pcache_stat_attr *sa = container_of(attr, struct pcache_stat_attr, attr);
	struct pcache_stats_retired *sum;
	u64 dirty, clean, value;
	ssize_t ret;

	sum = kzalloc(sizeof(*sum), GFP_KERNEL);
	if (!sum)
		return -ENOMEM;
	pcache_cache_stats_sum(to_pcache_cache(dev), sum, &dirty, &clean);
	switch (sa->stat) {
	case PCACHE_CSTAT_DIRTY:
		value = dirty;
		break;
	case PCACHE_CSTAT_CLEAN:
		value = clean;
		break;
	case PCACHE_CSTAT_WRITTEN_BACK:
		value = sum->written_back;
		break;
	case PCACHE_CSTAT_WB_ERRORS:
		value = sum->wb_errors;
		break;
	case PCACHE_CSTAT_DATA_CRC_ERRORS:
		value = sum->data_crc_errors;
		break;
	case PCACHE_CSTAT_SEGS_RECLAIMED:
		value = sum->segs_reclaimed;
		break;
	case PCACHE_CSTAT_WAITS_FOR_SPACE:
		value = sum->waits_for_space;
		break;
	case PCACHE_CSTAT_LATENCY:
		ret = pcache_lat_emit(buf, &sum->req);
		goto out;
	default:
		value = sum->req.count[sa->stat];
	}
	ret = sysfs_emit(buf, "%llu\n", value);
out:
	kfree(sum);
	return ret;
}

#define PCACHE_STAT_ATTR(prefix, name, idx, show)				\
static struct pcache_stat_attr prefix##_##name = {				\
	.attr = __ATTR(name, 0444, show, NULL),					\
	.stat = idx,								\
}

#define PCACHE_BACKING_STAT(name, idx)						\
	PCACHE_STAT_ATTR(backing, name, idx, pcache_backing_stat_show)
#define PCACHE_CACHE_STAT(name, idx)						\
	PCACHE_STAT_ATTR(cache, name, idx, pcache_cache_stat_show)

PCACHE_BACKING_STAT(reads, PCACHE_STAT_READS);
PCACHE_BACKING_STAT(read_hits, PCACHE_STAT_READ_HITS);
PCACHE_BACKING_STAT(read_partial_hits, PCACHE_STAT_READ_PARTIAL_HITS);
PCACHE_BACKING_STAT(read_misses, PCACHE_STAT_READ_MISSES);
PCACHE_BACKING_STAT(read_bytes, PCACHE_STAT_READ_BYTES);
PCACHE_BACKING_STAT(read_hit_bytes, PCACHE_STAT_READ_HIT_BYTES);
PCACHE_BACKING_STAT(sequential_bypassed, PCACHE_STAT_SEQUENTIAL_BYPASSED);
PCACHE_BACKING_STAT(writes, PCACHE_STAT_WRITES);
PCACHE_BACKING_STAT(write_hits, PCACHE_STAT_WRITE_HITS);
PCACHE_BACKING_STAT(write_bytes, PCACHE_STAT_WRITE_BYTES);
PCACHE_BACKING_STAT(discards, PCACHE_STAT_DISCARDS);
PCACHE_BACKING_STAT(write_zeroes, PCACHE_STAT_WRITE_ZEROES);
PCACHE_BACKING_STAT(bypassed, PCACHE_STAT_BYPASSED);
PCACHE_BACKING_STAT(errors, PCACHE_STAT_ERRORS);
static struct pcache_stat_attr backing_latency_histogram = {
	.attr = __ATTR(latency_histogram, 0444, pcache_backing_lat_show, NULL),
};

static struct attribute *pcache_backing_stats_attrs[] = {
	&backing_reads.attr.attr,
	&backing_read_hits.attr.attr,
	&backing_read_partial_hits.attr.attr,
	&backing_read_misses.attr.attr,
	&backing_read_bytes.attr.attr,
	&backing_read_hit_bytes.attr.attr,
	&backing_sequential_bypassed.attr.attr,
	&backing_writes.attr.attr,
	&backing_write_hits.attr.attr,
	&backing_write_bytes.attr.attr,
	&backing_discards.attr.attr,
	&backing_write_zeroes.attr.attr,
	&backing_bypassed.attr.attr,
	&backing_errors.attr.attr,
	&backing_latency_histogram.attr.attr,
	NULL,
};

const struct attribute_group pcache_backing_stats_group = {
	.name = "stats",
	.attrs = pcache_backing_stats_attrs,
};

/* The same names in both directories: the cache's sum its backings'. */
PCACHE_CACHE_STAT(reads, PCACHE_STAT_READS);
PCACHE_CACHE_STAT(read_hits, PCACHE_STAT_READ_HITS);
PCACHE_CACHE_STAT(read_partial_hits, PCACHE_STAT_READ_PARTIAL_HITS);
PCACHE_CACHE_STAT(read_misses, PCACHE_STAT_READ_MISSES);
PCACHE_CACHE_STAT(read_bytes, PCACHE_STAT_READ_BYTES);
PCACHE_CACHE_STAT(read_hit_bytes, PCACHE_STAT_READ_HIT_BYTES);
PCACHE_CACHE_STAT(sequential_bypassed, PCACHE_STAT_SEQUENTIAL_BYPASSED);
PCACHE_CACHE_STAT(writes, PCACHE_STAT_WRITES);
PCACHE_CACHE_STAT(write_hits, PCACHE_STAT_WRITE_HITS);
PCACHE_CACHE_STAT(write_bytes, PCACHE_STAT_WRITE_BYTES);
PCACHE_CACHE_STAT(discards, PCACHE_STAT_DISCARDS);
PCACHE_CACHE_STAT(write_zeroes, PCACHE_STAT_WRITE_ZEROES);
PCACHE_CACHE_STAT(bypassed, PCACHE_STAT_BYPASSED);
PCACHE_CACHE_STAT(errors, PCACHE_STAT_ERRORS);
PCACHE_CACHE_STAT(dirty_bytes, PCACHE_CSTAT_DIRTY);
PCACHE_CACHE_STAT(clean_bytes, PCACHE_CSTAT_CLEAN);
PCACHE_CACHE_STAT(written_back_bytes, PCACHE_CSTAT_WRITTEN_BACK);
PCACHE_CACHE_STAT(writeback_errors, PCACHE_CSTAT_WB_ERRORS);
PCACHE_CACHE_STAT(data_crc_errors, PCACHE_CSTAT_DATA_CRC_ERRORS);
PCACHE_CACHE_STAT(segments_reclaimed, PCACHE_CSTAT_SEGS_RECLAIMED);
PCACHE_CACHE_STAT(waits_for_space, PCACHE_CSTAT_WAITS_FOR_SPACE);
PCACHE_CACHE_STAT(latency_histogram, PCACHE_CSTAT_LATENCY);

static struct attribute *pcache_cache_stats_attrs[] = {
	&cache_reads.attr.attr,
	&cache_read_hits.attr.attr,
	&cache_read_partial_hits.attr.attr,
	&cache_read_misses.attr.attr,
	&cache_read_bytes.attr.attr,
	&cache_read_hit_bytes.attr.attr,
	&cache_sequential_bypassed.attr.attr,
	&cache_writes.attr.attr,
	&cache_write_hits.attr.attr,
	&cache_write_bytes.attr.attr,
	&cache_discards.attr.attr,
	&cache_write_zeroes.attr.attr,
	&cache_bypassed.attr.attr,
	&cache_errors.attr.attr,
	&cache_dirty_bytes.attr.attr,
	&cache_clean_bytes.attr.attr,
	&cache_written_back_bytes.attr.attr,
	&cache_writeback_errors.attr.attr,
	&cache_data_crc_errors.attr.attr,
	&cache_segments_reclaimed.attr.attr,
	&cache_waits_for_space.attr.attr,
	&cache_latency_histogram.attr.attr,
	NULL,
};

const struct attribute_group pcache_cache_stats_group = {
	.name = "stats",
	.attrs = pcache_cache_stats_attrs,
};
