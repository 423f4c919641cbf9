/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Retry backoff: base * 2^(attempt-1), capped, with 20% jitter either way,
 * never above retry.backoff.max.ms and never 0; and the jitter really varies.
 * Also Kafka's sequence arithmetic, which wraps past INT32_MAX to 0.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "client/internal.h"
#include "tests/lib/testutil.h"

static void check_bounds(int32_t base, int32_t max, uint64_t *rng)
{
    for (uint32_t attempt = 1; attempt <= 40; attempt++) {
        int64_t exp = (int64_t)base << (attempt - 1 < 31 ? attempt - 1 : 31);
        exp = exp < max ? exp : max;
        int64_t lo = (exp * 800) / 1000;
        int64_t hi = (exp * 1200 + 999) / 1000;
        hi = hi < max ? hi : max;
        lo = lo < 1 ? 1 : lo;
        int64_t seen_min = INT64_MAX;
        int64_t seen_max = 0;
        for (int i = 0; i < 200; i++) {
            int64_t b = slc_backoff_ms(base, max, attempt, rng);
            assert_true(b >= lo && b <= hi);
            assert_true(b >= 1 && b <= max);
            seen_min = b < seen_min ? b : seen_min;
            seen_max = b > seen_max ? b : seen_max;
        }
        /* Jitter spreads retries: with room for it, 200 draws are not all equal. */
        if (hi - lo >= 10) {
            assert_true(seen_max - seen_min >= 2);
        }
    }
}

static void test_client_backoff_bounds(void **state)
{
    (void)state;
    uint64_t rng = tu_seed("test_client_backoff_bounds") | 1;
    check_bounds(100, 1000, &rng); /* the defaults */
    check_bounds(1, 1, &rng);
    check_bounds(10, 300000, &rng);
    check_bounds(250, 250, &rng);
    check_bounds(1000, 300000, &rng);
}

static void test_client_backoff_doubles_then_caps(void **state)
{
    (void)state;
    uint64_t rng = 12345;
    /* Averages over many draws sit at the unjittered value within 3%. */
    const int64_t want[] = {100, 200, 400, 800, 1000, 1000, 1000};
    for (uint32_t attempt = 1; attempt <= 7; attempt++) {
        int64_t sum = 0;
        for (int i = 0; i < 4000; i++) {
            sum += slc_backoff_ms(100, 1000, attempt, &rng);
        }
        double mean = (double)sum / 4000.0;
        double target = (double)want[attempt - 1];
        if (want[attempt - 1] == 1000) {
            /* The clamp folds the upper half of the jitter onto the cap: half
             * the draws average 900, the other half are 1000. */
            target = 950;
        }
        assert_true(mean > target * 0.97 && mean < target * 1.03);
    }
}

static void test_client_backoff_sequence_wraps(void **state)
{
    (void)state;
    assert_int_equal(slc_seq_add(0, 5), 5);
    assert_int_equal(slc_seq_add(INT32_MAX - 4, 5), 0);
    assert_int_equal(slc_seq_add(INT32_MAX, 1), 0);
    assert_int_equal(slc_seq_add(INT32_MAX - 1, 10), 8);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_client_backoff_bounds),
        cmocka_unit_test(test_client_backoff_doubles_then_caps),
        cmocka_unit_test(test_client_backoff_sequence_wraps),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
