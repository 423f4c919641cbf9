/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libsluice's partitioners against the clients they imitate:
 *   - murmur2: the Java client's mapping, toPositive(murmur2(key)) % n. The
 *     hashes are Kafka's own (UtilsTest.testMurmur2) and those librdkafka's
 *     test 0048-partitioner took from the Java client (tests/java/Murmur2Cli).
 *   - crc32: librdkafka's "consistent" partitioner, rd_crc32(key) % n with
 *     zlib's CRC-32. The CRCs are librdkafka's 0048 constants and, for the
 *     rest of the table, python3's zlib.crc32, computed independently.
 * The CRC table is also checked against a bitwise computation.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "client/internal.h"
#include "tests/lib/testutil.h"

/* Partition counts each key is mapped over. */
static const int32_t counts[] = {1, 2, 3, 7, 16, 17, 50, 100, 1000};

static void test_client_partitioner_murmur2_matches_java(void **state)
{
    (void)state;
    static const struct {
        const char *key;
        uint32_t positive_hash; /* murmur2(key) & 0x7fffffff */
    } cases[] = {
        /* librdkafka 0048-partitioner, from the Java client */
        {"", 0x106e08d9u},
        {"23456", 0x058d780fu},
        {"this is another string with more length to it perhaps", 0x4f7703dau},
        {"hejsan", 0x5ec19395u},
        /* Kafka's UtilsTest.testMurmur2, made positive */
        {"21", (uint32_t)-973932308 & 0x7fffffffu},
        {"foobar", (uint32_t)-790332482 & 0x7fffffffu},
        {"a-little-bit-long-string", (uint32_t)-985981536 & 0x7fffffffu},
        {"a-little-bit-longer-string", (uint32_t)-1486304829 & 0x7fffffffu},
        {"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", (uint32_t)-58897971 & 0x7fffffffu},
        {"abc", 479470107u},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        for (size_t k = 0; k < sizeof(counts) / sizeof(counts[0]); k++) {
            int32_t got = slc_partition_of_key(SLC_PARTITIONER_MURMUR2, cases[i].key,
                                               strlen(cases[i].key), counts[k]);
            assert_int_equal(got, (int32_t)(cases[i].positive_hash % (uint32_t)counts[k]));
        }
    }
    /* Kafka's DefaultPartitioner example: "foobar" over 50 partitions is 16. */
    assert_int_equal(slc_partition_of_key(SLC_PARTITIONER_MURMUR2, "foobar", 6, 50), 16);
}

static void test_client_partitioner_crc32_matches_librdkafka(void **state)
{
    (void)state;
    static const struct {
        const char *key;
        uint32_t crc;
    } cases[] = {
        /* librdkafka 0048-partitioner ("consistent") */
        {"", 0x00000000u},
        {"23456", 0xb1b451d7u},
        {"this is another string with more length to it perhaps", 0xb0150df7u},
        {"hejsan", 0xd077037eu},
        /* python3 -c 'import zlib; print(hex(zlib.crc32(b"...")))' */
        {"a", 0xe8b7be43u},
        {"abc", 0x352441c2u},
        {"key-0", 0x79eb8fecu},
        {"key-1", 0x0eecbf7au},
        {"key-42", 0xd77c3ed5u},
        {"user:1234", 0xb0b05457u},
        {"\xc3\xa9t\xc3\xa9", 0x44d16cd4u},
        {"0123456789abcdef0123456789abcdef", 0x7759b50eu},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(slc_crc32(cases[i].key, strlen(cases[i].key)), cases[i].crc);
        for (size_t k = 0; k < sizeof(counts) / sizeof(counts[0]); k++) {
            int32_t got = slc_partition_of_key(SLC_PARTITIONER_CRC32, cases[i].key,
                                               strlen(cases[i].key), counts[k]);
            assert_int_equal(got, (int32_t)(cases[i].crc % (uint32_t)counts[k]));
        }
    }
}

/* The CRC-32 definition, one bit at a time. */
static uint32_t crc32_bitwise(const uint8_t *p, size_t len)
{
    uint32_t crc = 0xFFFFFFFFu;
    for (size_t i = 0; i < len; i++) {
        crc ^= p[i];
        for (int k = 0; k < 8; k++) {
            crc = (crc & 1) ? (crc >> 1) ^ 0xEDB88320u : crc >> 1;
        }
    }
    return ~crc;
}

static void test_client_partitioner_crc32_table_is_bitwise(void **state)
{
    (void)state;
    uint64_t seed = tu_seed("test_client_partitioner_crc32_table_is_bitwise");
    uint8_t data[300];
    for (int round = 0; round < 500; round++) {
        size_t len = (size_t)(tu_rand(&seed) % sizeof(data));
        for (size_t i = 0; i < len; i++) {
            data[i] = (uint8_t)tu_rand(&seed);
        }
        assert_int_equal(slc_crc32(data, len), crc32_bitwise(data, len));
    }
}

static void test_client_partitioner_stays_in_range(void **state)
{
    (void)state;
    uint64_t seed = tu_seed("test_client_partitioner_stays_in_range");
    for (int round = 0; round < 2000; round++) {
        char key[32];
        size_t len = (size_t)(tu_rand(&seed) % sizeof(key));
        for (size_t i = 0; i < len; i++) {
            key[i] = (char)tu_rand(&seed);
        }
        int32_t n = (int32_t)(tu_rand(&seed) % 5000) + 1;
        for (int which = SLC_PARTITIONER_MURMUR2; which <= SLC_PARTITIONER_CRC32; which++) {
            int32_t p = slc_partition_of_key(which, key, len, n);
            assert_true(p >= 0 && p < n);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_client_partitioner_murmur2_matches_java),
        cmocka_unit_test(test_client_partitioner_crc32_matches_librdkafka),
        cmocka_unit_test(test_client_partitioner_crc32_table_is_bitwise),
        cmocka_unit_test(test_client_partitioner_stays_in_range),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
