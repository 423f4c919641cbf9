/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the benchmark drivers (kafka-bench, nats-bench and storage-bench)
 * share: option values (sizes and counts with k, m, g suffixes, powers of
 * 1024; non-negative decimals), their random values, and the process's CPU
 * time. Header only: each driver is one program of one file (the Makefile
 * builds every C file of bench/ as its own binary).
 */
#ifndef SL_BENCH_DRIVER_H
#define SL_BENCH_DRIVER_H

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

/* Values are cut from a pool of random bytes larger than any batch (1 MB by
 * default), so that no two neighbours are the same bytes and a compressor
 * finds no repeats inside one batch. */
#define BENCH_PAYLOAD_POOL_BYTES (8u << 20)

_Static_assert(BENCH_PAYLOAD_POOL_BYTES % 8 == 0, "the pool is filled 8 bytes at a time");

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

/* splitmix64: incompressible values. */
static inline uint64_t bench_next_random(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* BENCH_PAYLOAD_POOL_BYTES of random bytes, and room past its end for one
 * value of up to size bytes; NULL when out of memory. The caller frees it. */
static inline uint8_t *bench_payload_pool_new(size_t size)
{
    size_t len = BENCH_PAYLOAD_POOL_BYTES + ((size + 7) & ~(size_t)7);
    uint8_t *pool = malloc(len);
    uint64_t state = 42;
    for (size_t i = 0; pool != NULL && i < len; i += 8) {
        uint64_t r = bench_next_random(&state);
        memcpy(pool + i, &r, 8);
    }
    return pool;
}

/* Failures by kind (an error code of the client library): the first
 * BENCH_ERROR_KINDS_MAX kinds are named in the report, the rest counted as
 * "other". Not thread-safe: a driver whose failures come from several
 * threads holds its own lock around bench_errors_add. */
#define BENCH_ERROR_KINDS_MAX 8

struct bench_errors {
    uint64_t total;
    uint64_t other; /* kinds past BENCH_ERROR_KINDS_MAX */
    int kinds;
    int code[BENCH_ERROR_KINDS_MAX];
    uint64_t count[BENCH_ERROR_KINDS_MAX];
};

static inline void bench_errors_add(struct bench_errors *e, int code, uint64_t n)
{
    e->total += n;
    int i = 0;
    while (i < e->kinds && e->code[i] != code) {
        i++;
    }
    if (i == BENCH_ERROR_KINDS_MAX) {
        e->other += n;
        return;
    }
    if (i == e->kinds) {
        e->code[e->kinds++] = code;
        e->count[i] = 0;
    }
    e->count[i] += n;
}

/* The JSON object {"NAME": count, ...} with name(code) for each kind; the
 * libraries' names are plain words, nothing to escape. */
static inline void bench_errors_json(const struct bench_errors *e, const char *(*name)(int),
                                     FILE *out)
{
    fputc('{', out);
    for (int i = 0; i < e->kinds; i++) {
        fprintf(out, "%s\"%s\":%" PRIu64, i > 0 ? "," : "", name(e->code[i]), e->count[i]);
    }
    if (e->other > 0) {
        fprintf(out, "%s\"other\":%" PRIu64, e->kinds > 0 ? "," : "", e->other);
    }
    fputc('}', out);
}

/* User plus system CPU seconds of the whole process so far. */
static inline double bench_cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

#endif
