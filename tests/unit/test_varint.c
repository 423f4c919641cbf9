/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Tests of common/varint: Kafka's reference encodings, round trips at the
 * boundaries of each type and on seeded random values, and refusal of
 * truncated, over-long and overflowing input.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/varint.h"
#include "tests/lib/testutil.h"

struct varint_vector {
    int64_t value;
    uint8_t bytes[VARINT64_MAX_BYTES];
    size_t len;
};

/* Zig-zag varints as Kafka writes them (the values of its ByteUtils tests,
 * derived from the definition: zig-zag, then 7 bits per byte, low first). */
static const struct varint_vector varint_vectors[] = {
    {0, {0x00}, 1},
    {-1, {0x01}, 1},
    {1, {0x02}, 1},
    {63, {0x7e}, 1},
    {-64, {0x7f}, 1},
    {64, {0x80, 0x01}, 2},
    {-65, {0x81, 0x01}, 2},
    {8191, {0xfe, 0x7f}, 2},
    {-8192, {0xff, 0x7f}, 2},
    {8192, {0x80, 0x80, 0x01}, 3},
    {-8193, {0x81, 0x80, 0x01}, 3},
    {1048575, {0xfe, 0xff, 0x7f}, 3},
    {-1048576, {0xff, 0xff, 0x7f}, 3},
    {1048576, {0x80, 0x80, 0x80, 0x01}, 4},
    {-1048577, {0x81, 0x80, 0x80, 0x01}, 4},
    {134217727, {0xfe, 0xff, 0xff, 0x7f}, 4},
    {-134217728, {0xff, 0xff, 0xff, 0x7f}, 4},
    {134217728, {0x80, 0x80, 0x80, 0x80, 0x01}, 5},
    {-134217729, {0x81, 0x80, 0x80, 0x80, 0x01}, 5},
    {INT32_MAX, {0xfe, 0xff, 0xff, 0xff, 0x0f}, 5},
    {INT32_MIN, {0xff, 0xff, 0xff, 0xff, 0x0f}, 5},
};

static const struct varint_vector varlong_vectors[] = {
    {0, {0x00}, 1},
    {-1, {0x01}, 1},
    {1, {0x02}, 1},
    {INT32_MAX, {0xfe, 0xff, 0xff, 0xff, 0x0f}, 5},
    {(int64_t)INT32_MAX + 1, {0x80, 0x80, 0x80, 0x80, 0x10}, 5},
    {INT64_MAX, {0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, 10},
    {INT64_MIN, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, 10},
};

static void test_varint_kafka_reference_vectors(void **state)
{
    (void)state;
    uint8_t out[VARINT64_MAX_BYTES];
    for (size_t i = 0; i < sizeof(varint_vectors) / sizeof(varint_vectors[0]); i++) {
        const struct varint_vector *v = &varint_vectors[i];
        int32_t value = (int32_t)v->value;
        assert_int_equal(varint_put(out, value), v->len);
        assert_memory_equal(out, v->bytes, v->len);
        assert_int_equal(varint_size(value), v->len);
        int32_t got = 0;
        assert_int_equal(varint_get(v->bytes, v->len, &got), (int)v->len);
        assert_int_equal(got, value);
    }
    for (size_t i = 0; i < sizeof(varlong_vectors) / sizeof(varlong_vectors[0]); i++) {
        const struct varint_vector *v = &varlong_vectors[i];
        assert_int_equal(varlong_put(out, v->value), v->len);
        assert_memory_equal(out, v->bytes, v->len);
        assert_int_equal(varlong_size(v->value), v->len);
        int64_t got = 0;
        assert_int_equal(varlong_get(v->bytes, v->len, &got), (int)v->len);
        assert_int_equal(got, v->value);
    }
    /* Unsigned: the protobuf documentation's 300 and 1. */
    static const uint8_t u300[] = {0xac, 0x02};
    assert_int_equal(uvarint_put(out, 300), 2);
    assert_memory_equal(out, u300, 2);
    assert_int_equal(uvarint_put(out, 1), 1);
    assert_int_equal(out[0], 0x01);
    static const uint8_t umax[] = {0xff, 0xff, 0xff, 0xff, 0x0f};
    assert_int_equal(uvarint_put(out, UINT32_MAX), 5);
    assert_memory_equal(out, umax, 5);
}

static void round_trip_varint(int32_t v)
{
    uint8_t buf[VARINT32_MAX_BYTES + 3];
    memset(buf, 0xaa, sizeof(buf)); /* trailing garbage the decoder must not read into */
    size_t n = varint_put(buf, v);
    assert_true(n >= 1 && n <= VARINT32_MAX_BYTES);
    assert_int_equal(n, varint_size(v));
    int32_t got = ~v;
    assert_int_equal(varint_get(buf, sizeof(buf), &got), (int)n);
    assert_int_equal(got, v);
}

static void round_trip_varlong(int64_t v)
{
    uint8_t buf[VARINT64_MAX_BYTES + 3];
    memset(buf, 0xaa, sizeof(buf));
    size_t n = varlong_put(buf, v);
    assert_true(n >= 1 && n <= VARINT64_MAX_BYTES);
    assert_int_equal(n, varlong_size(v));
    int64_t got = ~v;
    assert_int_equal(varlong_get(buf, sizeof(buf), &got), (int)n);
    assert_int_equal(got, v);
}

static void round_trip_uvarint(uint32_t v)
{
    uint8_t buf[VARINT32_MAX_BYTES + 3];
    memset(buf, 0xaa, sizeof(buf));
    size_t n = uvarint_put(buf, v);
    assert_true(n >= 1 && n <= VARINT32_MAX_BYTES);
    assert_int_equal(n, uvarint_size(v));
    uint32_t got = ~v;
    assert_int_equal(uvarint_get(buf, sizeof(buf), &got), (int)n);
    assert_int_equal(got, v);
}

static void test_varint_round_trip_boundaries(void **state)
{
    (void)state;
    static const int32_t v32[] = {
        0, 1, -1, 63, -64, 64, -65, INT32_MAX, INT32_MIN, INT32_MAX - 1, INT32_MIN + 1};
    for (size_t i = 0; i < sizeof(v32) / sizeof(v32[0]); i++) {
        round_trip_varint(v32[i]);
        round_trip_varlong(v32[i]);
    }
    static const int64_t v64[] = {INT64_MAX,
                                  INT64_MIN,
                                  INT64_MAX - 1,
                                  INT64_MIN + 1,
                                  (int64_t)INT32_MAX + 1,
                                  (int64_t)INT32_MIN - 1};
    for (size_t i = 0; i < sizeof(v64) / sizeof(v64[0]); i++) {
        round_trip_varlong(v64[i]);
    }
    static const uint32_t u32[] = {
        0, 1, 127, 128, 16383, 16384, UINT32_MAX, UINT32_MAX - 1, (uint32_t)INT32_MAX + 1};
    for (size_t i = 0; i < sizeof(u32) / sizeof(u32[0]); i++) {
        round_trip_uvarint(u32[i]);
    }
    /* Every power of two and its neighbours: each length boundary. */
    for (int bit = 0; bit < 63; bit++) {
        int64_t p = (int64_t)1 << bit;
        round_trip_varlong(p);
        round_trip_varlong(p - 1);
        round_trip_varlong(-p);
        round_trip_varlong(-p - 1);
        if (bit < 31) {
            round_trip_varint((int32_t)p);
            round_trip_varint((int32_t)(p - 1));
            round_trip_varint((int32_t)-p);
            round_trip_varint((int32_t)(-p - 1));
        }
        if (bit < 32) {
            round_trip_uvarint((uint32_t)p);
            round_trip_uvarint((uint32_t)(p - 1));
        }
    }
}

static void test_varint_round_trip_random(void **state)
{
    (void)state;
    uint64_t rng = tu_seed("test_varint_round_trip_random");
    for (int i = 0; i < 100000; i++) {
        uint64_t r = tu_rand(&rng);
        /* Vary the magnitude so every length is covered. */
        r >>= tu_rand(&rng) % 64;
        round_trip_varlong((int64_t)r);
        round_trip_varint((int32_t)(uint32_t)r);
        round_trip_uvarint((uint32_t)r);
    }
}

static void test_varint_truncated_input_refused(void **state)
{
    (void)state;
    uint8_t buf[VARINT64_MAX_BYTES] = {0};
    int32_t v32;
    int64_t v64;
    uint32_t u32;
    assert_int_equal(varint_get(buf, 0, &v32), -EBADMSG);
    assert_int_equal(varlong_get(buf, 0, &v64), -EBADMSG);
    assert_int_equal(uvarint_get(buf, 0, &u32), -EBADMSG);
    size_t n = varint_put(buf, INT32_MIN);
    for (size_t cut = 0; cut < n; cut++) {
        assert_int_equal(varint_get(buf, cut, &v32), -EBADMSG);
    }
    n = varlong_put(buf, INT64_MIN);
    for (size_t cut = 0; cut < n; cut++) {
        assert_int_equal(varlong_get(buf, cut, &v64), -EBADMSG);
    }
    n = uvarint_put(buf, UINT32_MAX);
    for (size_t cut = 0; cut < n; cut++) {
        assert_int_equal(uvarint_get(buf, cut, &u32), -EBADMSG);
    }
}

static void test_varint_over_long_refused(void **state)
{
    (void)state;
    int32_t v32;
    int64_t v64;
    uint32_t u32;
    /* Zero written in six bytes: one more than an int32 varint may take. */
    static const uint8_t six[] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x00};
    assert_int_equal(varint_get(six, sizeof(six), &v32), -EBADMSG);
    assert_int_equal(uvarint_get(six, sizeof(six), &u32), -EBADMSG);
    /* The same five bytes with no terminator in sight. */
    assert_int_equal(varint_get(six, 5, &v32), -EBADMSG);
    /* Zero written in eleven bytes: one more than a varlong may take. */
    static const uint8_t eleven[] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
                                     0x80, 0x80, 0x80, 0x80, 0x00};
    assert_int_equal(varlong_get(eleven, sizeof(eleven), &v64), -EBADMSG);
    /* An endless run of continuation bytes. */
    uint8_t endless[64];
    memset(endless, 0xff, sizeof(endless));
    assert_int_equal(varint_get(endless, sizeof(endless), &v32), -EBADMSG);
    assert_int_equal(varlong_get(endless, sizeof(endless), &v64), -EBADMSG);
    assert_int_equal(uvarint_get(endless, sizeof(endless), &u32), -EBADMSG);
}

static void test_varint_overflow_refused(void **state)
{
    (void)state;
    int32_t v32;
    int64_t v64;
    uint32_t u32;
    /* A fifth byte above 0x0f holds bits past 31. */
    static const uint8_t big32[] = {0xff, 0xff, 0xff, 0xff, 0x10};
    assert_int_equal(varint_get(big32, sizeof(big32), &v32), -EBADMSG);
    assert_int_equal(uvarint_get(big32, sizeof(big32), &u32), -EBADMSG);
    static const uint8_t max32[] = {0xff, 0xff, 0xff, 0xff, 0x0f};
    assert_int_equal(uvarint_get(max32, sizeof(max32), &u32), 5);
    assert_int_equal(u32, UINT32_MAX);
    /* A tenth byte above 0x01 holds bits past 63. */
    static const uint8_t big64[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02};
    assert_int_equal(varlong_get(big64, sizeof(big64), &v64), -EBADMSG);
}

/* Kafka's reader accepts redundant continuation groups within the limit. */
static void test_varint_non_minimal_accepted(void **state)
{
    (void)state;
    int32_t v32 = -7;
    int64_t v64 = -7;
    static const uint8_t zero2[] = {0x80, 0x00};
    assert_int_equal(varint_get(zero2, sizeof(zero2), &v32), 2);
    assert_int_equal(v32, 0);
    static const uint8_t one5[] = {0x82, 0x80, 0x80, 0x80, 0x00};
    assert_int_equal(varint_get(one5, sizeof(one5), &v32), 5);
    assert_int_equal(v32, 1);
    static const uint8_t zero10[] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00};
    assert_int_equal(varlong_get(zero10, sizeof(zero10), &v64), 10);
    assert_int_equal(v64, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_varint_kafka_reference_vectors),
        cmocka_unit_test(test_varint_round_trip_boundaries),
        cmocka_unit_test(test_varint_round_trip_random),
        cmocka_unit_test(test_varint_truncated_input_refused),
        cmocka_unit_test(test_varint_over_long_refused),
        cmocka_unit_test(test_varint_overflow_refused),
        cmocka_unit_test(test_varint_non_minimal_accepted),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
