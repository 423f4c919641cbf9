/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sluice-bench's latency histogram (client/bench/hist.c): percentiles p50,
 * p90, p99, p99.9, p99.99 and max read back from the histogram against the
 * same ranks of a sorted array, within 1%, for uniform random values over
 * several decades, a skewed (long-tailed) distribution, small exact values,
 * values past the ceiling; and a merge of parts equals the whole.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "client/bench/hist.h"
#include "tests/lib/testutil.h"

#define N_VALUES 200000

static const double percentiles[] = {50.0, 90.0, 99.0, 99.9, 99.99, 100.0};

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a;
    uint64_t y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The value of rank ceil(p / 100 * n) of the sorted array. */
static uint64_t sorted_percentile(const uint64_t *sorted, size_t n, double p)
{
    double exact = p / 100.0 * (double)n;
    size_t rank = (size_t)exact;
    if ((double)rank < exact) {
        rank++;
    }
    if (rank == 0) {
        rank = 1;
    }
    return sorted[rank - 1];
}

static void check_against_sorted(uint64_t *values, size_t n)
{
    struct hist *h = malloc(sizeof(*h));
    assert_non_null(h);
    hist_init(h);
    for (size_t i = 0; i < n; i++) {
        hist_record(h, values[i]);
    }
    qsort(values, n, sizeof(values[0]), cmp_u64);
    assert_int_equal(h->count, n);
    assert_int_equal(h->min, values[0]);
    assert_int_equal(h->max, values[n - 1]);
    uint64_t previous = 0;
    for (size_t i = 0; i < sizeof(percentiles) / sizeof(percentiles[0]); i++) {
        uint64_t want = sorted_percentile(values, n, percentiles[i]);
        uint64_t got = hist_percentile(h, percentiles[i]);
        uint64_t diff = got > want ? got - want : want - got;
        /* within 1% (values below 256 are exact) */
        if (diff * 100 > want) {
            fail_msg("p%g: histogram %llu, sorted %llu", percentiles[i], (unsigned long long)got,
                     (unsigned long long)want);
        }
        assert_true(got >= previous); /* percentiles are ordered */
        previous = got;
    }
    free(h);
}

static void test_client_hist_uniform_random(void **state)
{
    (void)state;
    uint64_t rng = tu_seed("test_client_hist_uniform_random") | 1;
    uint64_t *values = malloc(N_VALUES * sizeof(*values));
    assert_non_null(values);
    /* Uniform in each of several ranges: exact, microseconds to seconds. */
    const uint64_t ranges[] = {200, 5000, 1000000, 30000000000ull};
    for (size_t r = 0; r < sizeof(ranges) / sizeof(ranges[0]); r++) {
        for (size_t i = 0; i < N_VALUES; i++) {
            values[i] = tu_rand(&rng) % ranges[r];
        }
        check_against_sorted(values, N_VALUES);
    }
    free(values);
}

static void test_client_hist_skewed(void **state)
{
    (void)state;
    uint64_t rng = tu_seed("test_client_hist_skewed") | 1;
    uint64_t *values = malloc(N_VALUES * sizeof(*values));
    assert_non_null(values);
    /* Log-uniform over 1 us .. 2^34 us: most values small, a long tail; plus
     * a latency-shaped mix: 99% around 300 us, 1% of outliers to 2 s. */
    for (size_t i = 0; i < N_VALUES; i++) {
        unsigned bits = (unsigned)(tu_rand(&rng) % 34);
        values[i] = ((uint64_t)1 << bits) + tu_rand(&rng) % ((uint64_t)1 << bits);
    }
    check_against_sorted(values, N_VALUES);
    for (size_t i = 0; i < N_VALUES; i++) {
        if (tu_rand(&rng) % 100 == 0) {
            values[i] = 1000 + tu_rand(&rng) % 2000000;
        } else {
            values[i] = 250 + tu_rand(&rng) % 100;
        }
    }
    check_against_sorted(values, N_VALUES);
    free(values);
}

static void test_client_hist_small_exact_and_clamped(void **state)
{
    (void)state;
    struct hist *h = malloc(sizeof(*h));
    assert_non_null(h);
    hist_init(h);
    assert_int_equal(hist_percentile(h, 50.0), 0); /* empty */
    for (uint64_t v = 1; v <= 100; v++) {
        hist_record(h, v);
    }
    assert_int_equal(hist_percentile(h, 50.0), 50);
    assert_int_equal(hist_percentile(h, 99.0), 99);
    assert_int_equal(hist_percentile(h, 100.0), 100);
    assert_int_equal(hist_percentile(h, 0.001), 1);
    hist_record(h, UINT64_MAX);
    assert_int_equal(h->clamped, 1);
    assert_int_equal(hist_percentile(h, 100.0), HIST_VALUE_MAX - 1);
    free(h);
}

static void test_client_hist_merge_equals_whole(void **state)
{
    (void)state;
    uint64_t rng = tu_seed("test_client_hist_merge_equals_whole") | 1;
    struct hist *whole = malloc(sizeof(*whole));
    struct hist *parts = malloc(4 * sizeof(*parts));
    struct hist *merged = malloc(sizeof(*merged));
    assert_true(whole != NULL && parts != NULL && merged != NULL);
    hist_init(whole);
    hist_init(merged);
    for (int p = 0; p < 4; p++) {
        hist_init(&parts[p]);
    }
    for (int i = 0; i < 100000; i++) {
        uint64_t v = tu_rand(&rng) % (1000u << (i % 4 * 4));
        hist_record(whole, v);
        hist_record(&parts[i % 4], v);
    }
    for (int p = 0; p < 4; p++) {
        hist_merge(merged, &parts[p]);
    }
    /* Merging into a histogram that has values adds to them. */
    hist_merge(merged, &parts[0]);
    hist_merge(whole, &parts[0]);
    assert_memory_equal(whole, merged, sizeof(*whole));
    for (size_t i = 0; i < sizeof(percentiles) / sizeof(percentiles[0]); i++) {
        assert_int_equal(hist_percentile(whole, percentiles[i]),
                         hist_percentile(merged, percentiles[i]));
    }
    free(whole);
    free(parts);
    free(merged);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_client_hist_uniform_random),
        cmocka_unit_test(test_client_hist_skewed),
        cmocka_unit_test(test_client_hist_small_exact_and_clamped),
        cmocka_unit_test(test_client_hist_merge_equals_whole),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
