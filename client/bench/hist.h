/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A log-linear latency histogram in the manner of HdrHistogram, for
 * sluice-bench: values (microseconds) below HIST_LINEAR_MAX are counted
 * exactly; above, each power of two [2^k, 2^(k+1)) is cut into
 * HIST_LINEAR_MAX / 2 equal buckets, so a bucket is at most 1/128 of its
 * lowest value wide and a percentile read back is within 1/256 (0.4%) of the
 * true one. Memory is fixed (HIST_BUCKETS counters, about 34 KiB); values at
 * or above HIST_VALUE_MAX are counted as HIST_VALUE_MAX - 1 (and flagged in
 * `clamped`). The caller provides the memory (hist_init); not thread-safe.
 */
#ifndef SLUICE_BENCH_HIST_H
#define SLUICE_BENCH_HIST_H

#include <stdint.h>

/* Bits of linear resolution per power of two: 2^7 sub-buckets of the top
 * half, i.e. 128 per doubling, for ~1% precision with room to spare. */
#define HIST_SUB_BITS   7
#define HIST_LINEAR_MAX ((uint64_t)1 << (HIST_SUB_BITS + 1))
/* 2^40 us is 12.7 days: no end-to-end latency a benchmark sees is longer. */
#define HIST_TOP_BIT   40
#define HIST_VALUE_MAX ((uint64_t)1 << HIST_TOP_BIT)
#define HIST_BUCKETS   (HIST_LINEAR_MAX + (HIST_TOP_BIT - HIST_SUB_BITS - 1) * (HIST_LINEAR_MAX / 2))

_Static_assert(HIST_TOP_BIT < 63, "values and sums must fit in uint64_t");

struct hist {
    uint64_t count;   /* values recorded */
    uint64_t min;     /* exact; UINT64_MAX while empty */
    uint64_t max;     /* exact (after clamping); 0 while empty */
    uint64_t sum;     /* for the mean */
    uint64_t clamped; /* values at or above HIST_VALUE_MAX */
    uint64_t counts[HIST_BUCKETS];
};

/* Empties h (also to reuse it). */
void hist_init(struct hist *h);
void hist_record(struct hist *h, uint64_t value_us);
/* Adds every value of from into into. */
void hist_merge(struct hist *into, const struct hist *from);
/*
 * The value at percentile (0 < percentile <= 100): the one of rank
 * ceil(percentile / 100 * count) in sorted order, as the midpoint of its
 * bucket clamped to [min, max]; 100 gives the exact max. 0 when empty.
 */
uint64_t hist_percentile(const struct hist *h, double percentile);
/* The mean, 0 when empty. */
double hist_mean(const struct hist *h);

#endif
