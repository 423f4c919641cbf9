/* SPDX-License-Identifier: Apache-2.0 */
/*
 * murmur2 against the values of Kafka's own UtilsTest.testMurmur2, so keys
 * land where the Java client puts them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "common/murmur2.h"

static void test_murmur2_matches_kafka(void **state)
{
    (void)state;
    static const struct {
        const char *key;
        int32_t hash;
    } cases[] = {
        {"21", -973932308},
        {"foobar", -790332482},
        {"a-little-bit-long-string", -985981536},
        {"a-little-bit-longer-string", -1486304829},
        {"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971},
        {"abc", 479470107},
        {"", 275646681},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal((int32_t)murmur2(cases[i].key, strlen(cases[i].key)), cases[i].hash);
    }
}

static void test_murmur2_partition_is_positive_modulo(void **state)
{
    (void)state;
    /* -790332482 & 0x7fffffff = 1357151166; % 50 = 16. */
    assert_int_equal(murmur2_partition("foobar", 6, 50), 16);
    for (int32_t n = 1; n < 100; n++) {
        int32_t p = murmur2_partition("21", 2, n);
        assert_true(p >= 0 && p < n);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_murmur2_matches_kafka),
        cmocka_unit_test(test_murmur2_partition_is_positive_modulo),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
