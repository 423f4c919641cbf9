/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Option values the benchmark drivers (kafka-bench, nats-bench and
 * storage-bench) share: sizes and counts with k, m, g suffixes (powers of
 * 1024), and non-negative decimals. Header only: each driver is one program
 * of one file (the Makefile builds every C file of bench/ as its own binary).
 */
#ifndef SL_BENCH_ARGS_H
#define SL_BENCH_ARGS_H

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

/* "64k", "1m", "2g" or a plain number into *out: 0, -EINVAL (not such a
 * number) or -ERANGE (above 2^64 - 1). */
static inline int bench_parse_size(const char *s, uint64_t *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || end == s || s[0] == '-') {
        return -EINVAL;
    }
    unsigned shift = *end == 'k' || *end == 'K'   ? 10
                     : *end == 'm' || *end == 'M' ? 20
                     : *end == 'g' || *end == 'G' ? 30
                                                  : 0;
    if ((shift == 0 && *end != '\0') || (shift != 0 && end[1] != '\0')) {
        return -EINVAL;
    }
    if (v > (UINT64_MAX >> shift)) {
        return -ERANGE;
    }
    *out = (uint64_t)v << shift;
    return 0;
}

/* A decimal >= 0 into *out: 0 or -EINVAL. */
static inline int bench_parse_double(const char *s, double *out)
{
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (errno != 0 || end == s || *end != '\0' || !(v >= 0)) {
        return -EINVAL;
    }
    *out = v;
    return 0;
}

#endif
