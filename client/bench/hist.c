/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The log-linear histogram of hist.h. Bucket index of a value v:
 *
 *   v < HIST_LINEAR_MAX (256):   index = v (one bucket per value)
 *   else, k = floor(log2 v) >= 8, shift = k - HIST_SUB_BITS:
 *     index = HIST_LINEAR_MAX + (k - 8) * 128 + ((v >> shift) - 128)
 *
 * so the bucket of v spans [ (v >> shift) << shift, that + 2^shift ), a width
 * of 2^shift <= v / 128. Buckets grow with the index, so a walk in index
 * order is a walk in value order.
 */
#include "client/bench/hist.h"

#include <stdlib.h>
#include <string.h>

#define HALF ((uint64_t)HIST_LINEAR_MAX / 2)

static unsigned bucket_of(uint64_t v)
{
    if (v < HIST_LINEAR_MAX) {
        return (unsigned)v;
    }
    unsigned k = 63u - (unsigned)__builtin_clzll(v);
    unsigned shift = k - HIST_SUB_BITS;
    uint64_t index =
        HIST_LINEAR_MAX + (uint64_t)(k - HIST_SUB_BITS - 1) * HALF + ((v >> shift) - HALF);
    /* v < HIST_VALUE_MAX, so k < HIST_TOP_BIT and the index is in range. */
    if (index >= HIST_BUCKETS) {
        abort();
    }
    return (unsigned)index;
}

/* The lowest value of bucket i and its width. */
static void bucket_range(unsigned i, uint64_t *low, uint64_t *width)
{
    if (i < HIST_LINEAR_MAX) {
        *low = i;
        *width = 1;
        return;
    }
    uint64_t group = (i - HIST_LINEAR_MAX) / HALF; /* k - 8 */
    uint64_t sub = (i - HIST_LINEAR_MAX) % HALF;
    unsigned shift = (unsigned)group + 1;
    *low = (HALF + sub) << shift;
    *width = (uint64_t)1 << shift;
}

void hist_init(struct hist *h)
{
    memset(h, 0, sizeof(*h));
    h->min = UINT64_MAX;
}

void hist_record(struct hist *h, uint64_t value_us)
{
    if (value_us >= HIST_VALUE_MAX) {
        value_us = HIST_VALUE_MAX - 1;
        h->clamped++;
    }
    h->counts[bucket_of(value_us)]++;
    h->count++;
    h->sum += value_us;
    if (value_us < h->min) {
        h->min = value_us;
    }
    if (value_us > h->max) {
        h->max = value_us;
    }
}

void hist_merge(struct hist *into, const struct hist *from)
{
    if (from->count == 0) {
        return;
    }
    for (unsigned i = 0; i < HIST_BUCKETS; i++) {
        into->counts[i] += from->counts[i];
    }
    into->count += from->count;
    into->sum += from->sum;
    into->clamped += from->clamped;
    if (from->min < into->min) {
        into->min = from->min;
    }
    if (from->max > into->max) {
        into->max = from->max;
    }
}

uint64_t hist_percentile(const struct hist *h, double percentile)
{
    if (h->count == 0) {
        return 0;
    }
    if (percentile >= 100.0) {
        return h->max;
    }
    /* rank = ceil(percentile / 100 * count), at least 1; the product is
     * computed in double, exact for counts below 2^53. */
    double exact = percentile / 100.0 * (double)h->count;
    uint64_t rank = (uint64_t)exact;
    if ((double)rank < exact) {
        rank++;
    }
    if (rank == 0) {
        rank = 1;
    }
    uint64_t seen = 0;
    for (unsigned i = 0; i < HIST_BUCKETS; i++) {
        seen += h->counts[i];
        if (seen >= rank) {
            uint64_t low, width;
            bucket_range(i, &low, &width);
            uint64_t value = low + (width - 1) / 2;
            if (value < h->min) {
                value = h->min;
            }
            if (value > h->max) {
                value = h->max;
            }
            return value;
        }
    }
    /* The counts add up to count, so the walk has returned. */
    abort();
}

double hist_mean(const struct hist *h)
{
    return h->count == 0 ? 0.0 : (double)h->sum / (double)h->count;
}
