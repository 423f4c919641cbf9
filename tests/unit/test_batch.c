/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Tests of proto/batch: encode/validate/iterate round trips, every header
 * field corrupted in turn, every byte of the CRC'd range flipped, truncation
 * at every length, malformed records behind a correct CRC (so that the record
 * checks, not the CRC, must catch them), batches written by another client
 * (kafka-python), and a seeded mutation fuzz loop that must never crash.
 *
 * Every batch under test sits in a heap block of exactly its length, so that
 * AddressSanitizer reports any read past the end.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/assert.h"
#include "common/buf.h"
#include "common/bytes.h"
#include "common/crc32c.h"
#include "common/varint.h"
#include "proto/batch.h"
#include "tests/lib/testutil.h"

#define TEST_BUF_MAX (64u << 20)
#define TEST_BASE_TS 1700000000000LL

/* ---------------------------------------------------------------- helpers */

/* A copy in a block of exactly len bytes (at least 1, for malloc). */
static uint8_t *exact_copy(const uint8_t *p, size_t len)
{
    uint8_t *q = malloc(len > 0 ? len : 1);
    assert_non_null(q);
    if (len > 0) {
        memcpy(q, p, len);
    }
    return q;
}

static void recrc(uint8_t *p, size_t total)
{
    be32_put(p + BATCH_OFF_CRC, batch_compute_crc(p, total));
}

static const struct batch_record_header sample_headers[] = {
    {.key = "trace", .key_len = 5, .value = "abc123", .value_len = 6},
    {.key = "null-value", .key_len = 10, .value = NULL, .value_len = -1},
    {.key = "", .key_len = 0, .value = "", .value_len = 0},
};

static const struct batch_record sample_recs[] = {
    {.timestamp = TEST_BASE_TS,
     .key = (const uint8_t *)"key-0",
     .key_len = 5,
     .value = (const uint8_t *)"value-0",
     .value_len = 7},
    /* null key, headers, timestamp after the first */
    {.timestamp = TEST_BASE_TS + 40,
     .key = NULL,
     .key_len = -1,
     .value = (const uint8_t *)"v1",
     .value_len = 2,
     .headers = sample_headers,
     .header_count = 3},
    /* empty key, null value, timestamp before the first */
    {.timestamp = TEST_BASE_TS - 1000,
     .key = (const uint8_t *)"",
     .key_len = 0,
     .value = NULL,
     .value_len = -1},
    /* null key and value, one header */
    {.timestamp = TEST_BASE_TS + 7,
     .key = NULL,
     .key_len = -1,
     .value = NULL,
     .value_len = -1,
     .headers = sample_headers,
     .header_count = 1},
};
#define SAMPLE_COUNT  (sizeof(sample_recs) / sizeof(sample_recs[0]))
#define SAMPLE_MAX_TS (TEST_BASE_TS + 40)

static const struct batch_meta sample_meta = {
    .base_offset = 1000,
    .leader_epoch = 7,
    .attributes = 0,
    .producer_id = 42,
    .producer_epoch = 3,
    .base_sequence = 100,
};

/* Encodes the sample batch into a block of exactly its size. */
static uint8_t *sample_batch(size_t *total)
{
    struct buf b;
    buf_init(&b, TEST_BUF_MAX);
    assert_int_equal(batch_encode(&b, &sample_meta, sample_recs, SAMPLE_COUNT), 0);
    uint8_t *p = exact_copy(b.data, b.len);
    *total = b.len;
    buf_deinit(&b);
    return p;
}

static void assert_bytes_field(const void *got, int32_t got_len, const void *want, int32_t want_len)
{
    assert_int_equal(got_len, want_len);
    if (want_len < 0) {
        assert_null(got);
    } else if (want_len > 0) {
        assert_memory_equal(got, want, (size_t)want_len);
    }
}

/* Iterates p and checks it holds exactly recs[0..n). */
static void assert_records(const uint8_t *p, size_t len, const struct batch_record *recs, size_t n)
{
    struct batch_record_header slots[8];
    struct batch_record_iter it;
    assert_int_equal(batch_record_iter_init(&it, p, len, slots, 8), 0);
    for (size_t i = 0; i < n; i++) {
        struct batch_record rec;
        assert_int_equal(batch_record_iter_next(&it, &rec), 1);
        assert_int_equal(rec.offset_delta, (int32_t)i);
        assert_int_equal(rec.timestamp, recs[i].timestamp);
        assert_bytes_field(rec.key, rec.key_len, recs[i].key, recs[i].key_len);
        assert_bytes_field(rec.value, rec.value_len, recs[i].value, recs[i].value_len);
        assert_int_equal(rec.header_count, recs[i].header_count);
        for (uint32_t h = 0; h < rec.header_count; h++) {
            const struct batch_record_header *got = &rec.headers[h];
            const struct batch_record_header *want = &recs[i].headers[h];
            assert_bytes_field(got->key, got->key_len, want->key, want->key_len);
            assert_bytes_field(got->value, got->value_len, want->value, want->value_len);
        }
    }
    struct batch_record rec;
    assert_int_equal(batch_record_iter_next(&it, &rec), 0);
    assert_int_equal(batch_record_iter_next(&it, &rec), 0);
}

static int validate(const uint8_t *p, size_t len, enum batch_check check)
{
    const char *why = NULL;
    struct batch_header h;
    int rc = batch_validate(p, len, check, 0, &h, &why);
    /* Every refusal names its reason, for the log line. */
    if (rc != 0) {
        assert_non_null(why);
    }
    return rc;
}

/* Writes a batch header for raw records and fixes length and CRC. */
static uint8_t *raw_batch(const uint8_t *records, size_t records_len, int32_t count, size_t *total)
{
    size_t n = BATCH_HEADER_BYTES + records_len;
    uint8_t *p = malloc(n);
    assert_non_null(p);
    memset(p, 0, BATCH_HEADER_BYTES);
    be32_put(p + BATCH_OFF_LENGTH, (uint32_t)(n - BATCH_LOG_OVERHEAD));
    be32_put(p + BATCH_OFF_LEADER_EPOCH, UINT32_MAX);
    p[BATCH_OFF_MAGIC] = 2;
    be32_put(p + BATCH_OFF_LAST_OFFSET_DELTA, (uint32_t)(count - 1));
    be64_put(p + BATCH_OFF_FIRST_TIMESTAMP, (uint64_t)TEST_BASE_TS);
    be64_put(p + BATCH_OFF_MAX_TIMESTAMP, (uint64_t)TEST_BASE_TS);
    be64_put(p + BATCH_OFF_PRODUCER_ID, UINT64_MAX);
    be16_put(p + BATCH_OFF_PRODUCER_EPOCH, UINT16_MAX);
    be32_put(p + BATCH_OFF_BASE_SEQUENCE, UINT32_MAX);
    be32_put(p + BATCH_OFF_RECORD_COUNT, (uint32_t)count);
    memcpy(p + BATCH_HEADER_BYTES, records, records_len);
    recrc(p, n);
    *total = n;
    return p;
}

/* More header slots than any mutated sample batch can have records for. */
#define DRAIN_SLOTS_MAX 128

/* Runs the iterator to its end or first error; must never crash. Returns the
 * records read, or the error. */
static int drain(const uint8_t *p, size_t len, uint32_t slot_count)
{
    struct batch_record_header slots[DRAIN_SLOTS_MAX];
    struct batch_record_iter it;
    SL_ASSERT(slot_count <= DRAIN_SLOTS_MAX);
    int rc = batch_record_iter_init(&it, p, len, slot_count > 0 ? slots : NULL, slot_count);
    if (rc < 0) {
        return rc;
    }
    int count = 0;
    struct batch_record rec;
    while ((rc = batch_record_iter_next(&it, &rec)) == 1) {
        count++;
        /* Touch every byte the record points at. */
        volatile uint8_t sink = 0;
        for (int32_t i = 0; i < rec.key_len; i++) {
            sink ^= rec.key[i];
        }
        for (int32_t i = 0; i < rec.value_len; i++) {
            sink ^= rec.value[i];
        }
        for (uint32_t h = 0; h < rec.header_count; h++) {
            for (int32_t i = 0; i < rec.headers[h].key_len; i++) {
                sink ^= (uint8_t)rec.headers[h].key[i];
            }
            for (int32_t i = 0; i < rec.headers[h].value_len; i++) {
                sink ^= (uint8_t)rec.headers[h].value[i];
            }
        }
        (void)sink;
    }
    return rc < 0 ? rc : count;
}

/* ------------------------------------------------------------ round trips */

static void test_batch_encode_validate_round_trip(void **state)
{
    (void)state;
    size_t total;
    uint8_t *p = sample_batch(&total);
    struct batch_header h;
    const char *why = NULL;
    assert_int_equal(batch_validate(p, total, BATCH_CHECK_FULL, 0, &h, &why), 0);
    assert_int_equal(h.base_offset, 1000);
    assert_int_equal(h.batch_length, (int32_t)(total - BATCH_LOG_OVERHEAD));
    assert_int_equal(batch_total_bytes(&h), total);
    assert_int_equal(h.leader_epoch, 7);
    assert_int_equal(h.magic, 2);
    assert_int_equal(h.crc, crc32c(0, p + 21, total - 21));
    assert_int_equal(h.attributes, 0);
    assert_int_equal(h.last_offset_delta, SAMPLE_COUNT - 1);
    assert_int_equal(batch_last_offset(&h), 1000 + SAMPLE_COUNT - 1);
    assert_int_equal(h.first_timestamp, TEST_BASE_TS);
    assert_int_equal(h.max_timestamp, SAMPLE_MAX_TS);
    assert_int_equal(h.producer_id, 42);
    assert_int_equal(h.producer_epoch, 3);
    assert_int_equal(h.base_sequence, 100);
    assert_int_equal(h.record_count, SAMPLE_COUNT);
    /* NULL outputs are allowed. */
    assert_int_equal(batch_validate(p, total, BATCH_CHECK_FRAMING, 0, NULL, NULL), 0);
    assert_int_equal(batch_validate(p, total, BATCH_CHECK_FULL, total, NULL, NULL), 0);
    /* Bytes after the batch (the next one in a log) do not matter. */
    uint8_t *longer = malloc(total + 100);
    assert_non_null(longer);
    memcpy(longer, p, total);
    memset(longer + total, 0xee, 100);
    assert_int_equal(batch_validate(longer, total + 100, BATCH_CHECK_FULL, 0, &h, NULL), 0);
    assert_int_equal(batch_total_bytes(&h), total);
    free(longer);
    free(p);
}

static void test_batch_iterator_returns_exactly_the_records(void **state)
{
    (void)state;
    size_t total;
    uint8_t *p = sample_batch(&total);
    assert_records(p, total, sample_recs, SAMPLE_COUNT);
    free(p);
}

static void test_batch_round_trip_random(void **state)
{
    (void)state;
    uint64_t rng = tu_seed("test_batch_round_trip_random");
    static uint8_t pool[4096];
    for (size_t i = 0; i < sizeof(pool); i++) {
        pool[i] = (uint8_t)tu_rand(&rng);
    }
    struct batch_record recs[200];
    struct batch_record_header hdrs[200][3];
    struct buf b;
    buf_init(&b, TEST_BUF_MAX);
    for (int round = 0; round < 200; round++) {
        size_t n = 1 + (size_t)(tu_rand(&rng) % 200);
        int64_t base = (int64_t)(tu_rand(&rng) % (1ull << 42));
        for (size_t i = 0; i < n; i++) {
            struct batch_record *r = &recs[i];
            memset(r, 0, sizeof(*r));
            r->timestamp = base + (int64_t)(tu_rand(&rng) % 2000001) - 1000000;
            r->key_len = (int32_t)(tu_rand(&rng) % 40) - 1;
            r->key = r->key_len >= 0 ? pool + tu_rand(&rng) % 1024 : NULL;
            r->value_len = (int32_t)(tu_rand(&rng) % 3000) - 1;
            r->value = r->value_len >= 0 ? pool + tu_rand(&rng) % 1024 : NULL;
            r->header_count = (uint32_t)(tu_rand(&rng) % 4);
            r->headers = hdrs[i];
            for (uint32_t h = 0; h < r->header_count; h++) {
                hdrs[i][h].key_len = (int32_t)(tu_rand(&rng) % 20);
                hdrs[i][h].key = (const char *)pool + tu_rand(&rng) % 1024;
                hdrs[i][h].value_len = (int32_t)(tu_rand(&rng) % 50) - 1;
                hdrs[i][h].value =
                    hdrs[i][h].value_len >= 0 ? (const char *)pool + tu_rand(&rng) % 1024 : NULL;
            }
        }
        struct batch_meta meta = sample_meta;
        meta.base_offset = (int64_t)(tu_rand(&rng) >> 2);
        buf_reset(&b);
        assert_int_equal(batch_encode(&b, &meta, recs, n), 0);
        uint8_t *p = exact_copy(b.data, b.len);
        struct batch_header h;
        const char *why = "";
        int rc = batch_validate(p, b.len, BATCH_CHECK_FULL, 0, &h, &why);
        if (rc != 0) {
            fail_msg("round %d: validate %d (%s)", round, rc, why);
        }
        assert_int_equal(h.record_count, (int32_t)n);
        assert_int_equal(h.base_offset, meta.base_offset);
        assert_records(p, b.len, recs, n);
        free(p);
    }
    buf_deinit(&b);
}

static void test_batch_encode_appends_back_to_back(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b, TEST_BUF_MAX);
    assert_int_equal(batch_encode(&b, &sample_meta, sample_recs, SAMPLE_COUNT), 0);
    size_t first = b.len;
    struct batch_meta meta = sample_meta;
    meta.base_offset = 1000 + SAMPLE_COUNT;
    assert_int_equal(batch_encode(&b, &meta, sample_recs + 1, 2), 0);
    struct batch_header h;
    assert_int_equal(batch_validate(b.data, b.len, BATCH_CHECK_FULL, 0, &h, NULL), 0);
    assert_int_equal(batch_total_bytes(&h), first);
    assert_int_equal(batch_validate(b.data + first, b.len - first, BATCH_CHECK_FULL, 0, &h, NULL),
                     0);
    assert_int_equal(h.base_offset, 1000 + SAMPLE_COUNT);
    assert_int_equal(h.record_count, 2);
    assert_int_equal(first + batch_total_bytes(&h), b.len);
    assert_records(b.data + first, b.len - first, sample_recs + 1, 2);
    buf_deinit(&b);
}

static void test_batch_encode_refusals_leave_buf_unchanged(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b, 64);
    assert_int_equal(batch_encode(&b, &sample_meta, sample_recs, 0), -EINVAL);
    assert_int_equal(b.len, 0);
    /* The sample batch is larger than 64 bytes. */
    assert_int_equal(batch_encode(&b, &sample_meta, sample_recs, SAMPLE_COUNT), -ENOBUFS);
    assert_int_equal(b.len, 0);
    buf_deinit(&b);

    /* A timestamp delta that does not fit an int64. */
    struct batch_record recs[2] = {sample_recs[0], sample_recs[0]};
    recs[0].timestamp = INT64_MIN;
    recs[1].timestamp = INT64_MAX;
    buf_init(&b, TEST_BUF_MAX);
    assert_int_equal(buf_put(&b, "x", 1), 0);
    assert_int_equal(batch_encode(&b, &sample_meta, recs, 2), -EINVAL);
    assert_int_equal(b.len, 1);
    buf_deinit(&b);
}

static void test_batch_rewrites_outside_crc_keep_it_valid(void **state)
{
    (void)state;
    size_t total;
    uint8_t *p = sample_batch(&total);
    uint32_t crc_before = be32_get(p + BATCH_OFF_CRC);
    batch_set_base_offset(p, INT64_C(0x0123456789abcdef));
    batch_set_leader_epoch(p, -5);
    struct batch_header h;
    assert_int_equal(batch_validate(p, total, BATCH_CHECK_FULL, 0, &h, NULL), 0);
    assert_int_equal(h.base_offset, INT64_C(0x0123456789abcdef));
    assert_int_equal(h.leader_epoch, -5);
    assert_int_equal(h.crc, crc_before);
    assert_int_equal(batch_compute_crc(p, total), crc_before);
    free(p);
}

/* A producer's batch whose maxTimestamp is -1 (sarama) or that claims
 * LogAppendTime: the broker reads the largest record timestamp and writes it
 * back as Kafka's setMaxTimestamp does, with a fresh CRC. */
static void test_batch_max_timestamp_rewrite(void **state)
{
    (void)state;
    size_t total;
    uint8_t *p = sample_batch(&total);
    be64_put(p + BATCH_OFF_MAX_TIMESTAMP, UINT64_MAX); /* -1 */
    recrc(p, total);
    struct batch_header h;
    assert_int_equal(batch_validate(p, total, BATCH_CHECK_FULL, 0, &h, NULL), 0);
    int64_t max_ts = 0;
    assert_int_equal(batch_max_record_timestamp(p, total, &max_ts, NULL), 0);
    assert_int_equal(max_ts, SAMPLE_MAX_TS);
    batch_set_max_timestamp(p, total, false, max_ts);
    assert_int_equal(batch_validate(p, total, BATCH_CHECK_FULL, 0, &h, NULL), 0);
    assert_int_equal(h.max_timestamp, SAMPLE_MAX_TS);
    assert_int_equal(h.attributes & BATCH_ATTR_LOG_APPEND_TIME, 0);

    /* LogAppendTime with a made-up maxTimestamp, turned into CreateTime. */
    be16_put(p + BATCH_OFF_ATTRIBUTES, BATCH_ATTR_LOG_APPEND_TIME);
    be64_put(p + BATCH_OFF_MAX_TIMESTAMP, 5);
    recrc(p, total);
    assert_int_equal(batch_max_record_timestamp(p, total, &max_ts, NULL), 0);
    assert_int_equal(max_ts, SAMPLE_MAX_TS);
    batch_set_max_timestamp(p, total, false, max_ts);
    assert_int_equal(batch_validate(p, total, BATCH_CHECK_FULL, 0, &h, NULL), 0);
    assert_int_equal(h.attributes, 0);
    assert_int_equal(h.max_timestamp, SAMPLE_MAX_TS);
    batch_set_max_timestamp(p, total, true, 77);
    assert_int_equal(batch_validate(p, total, BATCH_CHECK_FULL, 0, &h, NULL), 0);
    assert_int_equal(h.attributes, BATCH_ATTR_LOG_APPEND_TIME);
    assert_int_equal(h.max_timestamp, 77);

    /* A corrupt batch is refused before anything is read from it. */
    p[total - 1] ^= 0xff;
    const char *why = NULL;
    assert_int_equal(batch_max_record_timestamp(p, total, &max_ts, &why), -EBADMSG);
    assert_string_equal(why, "CRC mismatch");
    p[total - 1] ^= 0xff;
    /* A compressed batch's records are not opened. */
    be64_put(p + BATCH_OFF_MAX_TIMESTAMP, (uint64_t)SAMPLE_MAX_TS);
    be16_put(p + BATCH_OFF_ATTRIBUTES, BATCH_COMPRESSION_GZIP);
    recrc(p, total);
    assert_int_equal(batch_max_record_timestamp(p, total, &max_ts, NULL), -ENOTSUP);
    free(p);
}

/* In a LogAppendTime batch every record's timestamp is the batch's
 * maxTimestamp (the broker's clock), whatever the record deltas say. */
static void test_batch_iterator_log_append_time(void **state)
{
    (void)state;
    size_t total;
    uint8_t *p = sample_batch(&total);
    uint16_t attrs = be16_get(p + BATCH_OFF_ATTRIBUTES) | BATCH_ATTR_LOG_APPEND_TIME;
    be16_put(p + BATCH_OFF_ATTRIBUTES, attrs);
    be64_put(p + BATCH_OFF_MAX_TIMESTAMP, UINT64_C(1800000000000));
    be32_put(p + BATCH_OFF_CRC, batch_compute_crc(p, total));
    struct batch_record_iter it;
    struct batch_record_header slots[8];
    struct batch_record rec;
    assert_int_equal(batch_record_iter_init(&it, p, total, slots, 8), 0);
    int n = 0;
    while (batch_record_iter_next(&it, &rec) == 1) {
        assert_int_equal(rec.timestamp, INT64_C(1800000000000));
        n++;
    }
    assert_true(n > 0);
    free(p);
}

static void test_batch_header_decode(void **state)
{
    (void)state;
    size_t total;
    uint8_t *p = sample_batch(&total);
    struct batch_header h;
    for (size_t cut = 0; cut < BATCH_HEADER_BYTES; cut++) {
        assert_int_equal(batch_header_decode(p, cut, &h), -EAGAIN);
    }
    assert_int_equal(batch_header_decode(p, BATCH_HEADER_BYTES, &h), 0);
    assert_int_equal(h.record_count, SAMPLE_COUNT);
    assert_int_equal(h.base_sequence, 100);
    /* No checks: a bad magic decodes as it is. */
    p[BATCH_OFF_MAGIC] = 9;
    assert_int_equal(batch_header_decode(p, total, &h), 0);
    assert_int_equal(h.magic, 9);
    free(p);
}

/* ------------------------------------------------------- header corruption */

/* Applies `edit` to a fresh sample batch (CRC recomputed if asked) and
 * returns what validation at `check` says. */
typedef void batch_edit_fn(uint8_t *p, size_t total);

static int validate_edited(batch_edit_fn *edit, bool fix_crc, enum batch_check check)
{
    size_t total;
    uint8_t *p = sample_batch(&total);
    edit(p, total);
    if (fix_crc) {
        recrc(p, total);
    }
    int rc = validate(p, total, check);
    /* Whatever validation says, the iterator must not crash on it. */
    (void)drain(p, total, 4);
    free(p);
    return rc;
}

static void edit_length_plus_one(uint8_t *p, size_t total)
{
    be32_put(p + BATCH_OFF_LENGTH, (uint32_t)(total - BATCH_LOG_OVERHEAD + 1));
}
static void edit_length_minus_one(uint8_t *p, size_t total)
{
    be32_put(p + BATCH_OFF_LENGTH, (uint32_t)(total - BATCH_LOG_OVERHEAD - 1));
}
static void edit_length_header_minus_one(uint8_t *p, size_t total)
{
    (void)total;
    be32_put(p + BATCH_OFF_LENGTH, BATCH_HEADER_BYTES - BATCH_LOG_OVERHEAD - 1);
}
static void edit_length_zero(uint8_t *p, size_t total)
{
    (void)total;
    be32_put(p + BATCH_OFF_LENGTH, 0);
}
static void edit_length_negative(uint8_t *p, size_t total)
{
    (void)total;
    be32_put(p + BATCH_OFF_LENGTH, UINT32_MAX);
}
static void edit_length_int_min(uint8_t *p, size_t total)
{
    (void)total;
    be32_put(p + BATCH_OFF_LENGTH, 0x80000000u);
}
static void edit_length_huge(uint8_t *p, size_t total)
{
    (void)total;
    be32_put(p + BATCH_OFF_LENGTH, 0x7fffffffu);
}
static void edit_magic_0(uint8_t *p, size_t total)
{
    (void)total;
    p[BATCH_OFF_MAGIC] = 0;
}
static void edit_magic_1(uint8_t *p, size_t total)
{
    (void)total;
    p[BATCH_OFF_MAGIC] = 1;
}
static void edit_magic_3(uint8_t *p, size_t total)
{
    (void)total;
    p[BATCH_OFF_MAGIC] = 3;
}
static void edit_magic_ff(uint8_t *p, size_t total)
{
    (void)total;
    p[BATCH_OFF_MAGIC] = 0xff;
}
static void edit_crc(uint8_t *p, size_t total)
{
    (void)total;
    p[BATCH_OFF_CRC + 3] ^= 0x40;
}
static void edit_attr_compression_5(uint8_t *p, size_t total)
{
    (void)total;
    be16_put(p + BATCH_OFF_ATTRIBUTES, 5);
}
static void edit_attr_compression_7(uint8_t *p, size_t total)
{
    (void)total;
    be16_put(p + BATCH_OFF_ATTRIBUTES, 7);
}
static void edit_attr_unused_bit_7(uint8_t *p, size_t total)
{
    (void)total;
    be16_put(p + BATCH_OFF_ATTRIBUTES, 0x80);
}
static void edit_attr_unused_bit_15(uint8_t *p, size_t total)
{
    (void)total;
    be16_put(p + BATCH_OFF_ATTRIBUTES, 0x8000);
}
static void edit_attr_transactional(uint8_t *p, size_t total)
{
    (void)total;
    be16_put(p + BATCH_OFF_ATTRIBUTES, BATCH_ATTR_TRANSACTIONAL);
}
static void edit_attr_transactional_no_pid(uint8_t *p, size_t total)
{
    (void)total;
    be16_put(p + BATCH_OFF_ATTRIBUTES, BATCH_ATTR_TRANSACTIONAL);
    be64_put(p + BATCH_OFF_PRODUCER_ID, UINT64_MAX);
}
static void edit_last_offset_delta_plus_one(uint8_t *p, size_t total)
{
    (void)total;
    be32_put(p + BATCH_OFF_LAST_OFFSET_DELTA, SAMPLE_COUNT);
}
static void edit_last_offset_delta_minus_one(uint8_t *p, size_t total)
{
    (void)total;
    be32_put(p + BATCH_OFF_LAST_OFFSET_DELTA, SAMPLE_COUNT - 2);
}
static void edit_count_zero(uint8_t *p, size_t total)
{
    (void)total;
    be32_put(p + BATCH_OFF_RECORD_COUNT, 0);
    be32_put(p + BATCH_OFF_LAST_OFFSET_DELTA, UINT32_MAX);
}
static void edit_count_negative(uint8_t *p, size_t total)
{
    (void)total;
    be32_put(p + BATCH_OFF_RECORD_COUNT, UINT32_MAX - 1);
    be32_put(p + BATCH_OFF_LAST_OFFSET_DELTA, UINT32_MAX - 2);
}
/* Count and lastOffsetDelta agree with each other but not with the bytes. */
static void edit_count_plus_one(uint8_t *p, size_t total)
{
    (void)total;
    be32_put(p + BATCH_OFF_RECORD_COUNT, SAMPLE_COUNT + 1);
    be32_put(p + BATCH_OFF_LAST_OFFSET_DELTA, SAMPLE_COUNT);
}
static void edit_count_minus_one(uint8_t *p, size_t total)
{
    (void)total;
    be32_put(p + BATCH_OFF_RECORD_COUNT, SAMPLE_COUNT - 1);
    be32_put(p + BATCH_OFF_LAST_OFFSET_DELTA, SAMPLE_COUNT - 2);
}
static void edit_count_huge(uint8_t *p, size_t total)
{
    (void)total;
    be32_put(p + BATCH_OFF_RECORD_COUNT, 0x7fffffff);
    be32_put(p + BATCH_OFF_LAST_OFFSET_DELTA, 0x7ffffffe);
}
static void edit_max_ts_below_first(uint8_t *p, size_t total)
{
    (void)total;
    be64_put(p + BATCH_OFF_MAX_TIMESTAMP, (uint64_t)(TEST_BASE_TS - 1));
}
static void edit_max_ts_plus_one(uint8_t *p, size_t total)
{
    (void)total;
    be64_put(p + BATCH_OFF_MAX_TIMESTAMP, (uint64_t)(SAMPLE_MAX_TS + 1));
}
static void edit_max_ts_unset(uint8_t *p, size_t total)
{
    (void)total;
    be64_put(p + BATCH_OFF_MAX_TIMESTAMP, UINT64_MAX);
}
static void edit_first_ts_shifted(uint8_t *p, size_t total)
{
    (void)total;
    be64_put(p + BATCH_OFF_FIRST_TIMESTAMP, (uint64_t)(TEST_BASE_TS + 1));
}
static void edit_first_ts_overflows(uint8_t *p, size_t total)
{
    (void)total;
    be64_put(p + BATCH_OFF_FIRST_TIMESTAMP, (uint64_t)(INT64_MAX - 10));
    be64_put(p + BATCH_OFF_MAX_TIMESTAMP, (uint64_t)INT64_MAX);
}
static void edit_log_append_time_any_max(uint8_t *p, size_t total)
{
    (void)total;
    be16_put(p + BATCH_OFF_ATTRIBUTES, BATCH_ATTR_LOG_APPEND_TIME);
    be64_put(p + BATCH_OFF_MAX_TIMESTAMP, 12345);
}
static void edit_sequence_negative_with_pid(uint8_t *p, size_t total)
{
    (void)total;
    be32_put(p + BATCH_OFF_BASE_SEQUENCE, UINT32_MAX);
}
static void edit_not_idempotent(uint8_t *p, size_t total)
{
    (void)total;
    be64_put(p + BATCH_OFF_PRODUCER_ID, UINT64_MAX);
    be16_put(p + BATCH_OFF_PRODUCER_EPOCH, UINT16_MAX);
    be32_put(p + BATCH_OFF_BASE_SEQUENCE, UINT32_MAX);
}
static void edit_base_offset(uint8_t *p, size_t total)
{
    (void)total;
    batch_set_base_offset(p, -1);
}

static void test_batch_validate_length_field(void **state)
{
    (void)state;
    /* One more than the bytes given: the batch looks cut short. */
    assert_int_equal(validate_edited(edit_length_plus_one, false, BATCH_CHECK_FRAMING), -EAGAIN);
    /* One less: the CRC then covers the wrong bytes. */
    assert_int_equal(validate_edited(edit_length_minus_one, false, BATCH_CHECK_FRAMING), -EBADMSG);
    assert_int_equal(validate_edited(edit_length_header_minus_one, false, BATCH_CHECK_FRAMING),
                     -EBADMSG);
    assert_int_equal(validate_edited(edit_length_zero, false, BATCH_CHECK_FRAMING), -EBADMSG);
    assert_int_equal(validate_edited(edit_length_negative, false, BATCH_CHECK_FRAMING), -EBADMSG);
    assert_int_equal(validate_edited(edit_length_int_min, false, BATCH_CHECK_FRAMING), -EBADMSG);
    assert_int_equal(validate_edited(edit_length_huge, false, BATCH_CHECK_FRAMING), -EAGAIN);

    /* With more bytes behind the batch, a longer length is a CRC mismatch. */
    size_t total;
    uint8_t *p = sample_batch(&total);
    uint8_t *longer = malloc(total + 1);
    assert_non_null(longer);
    memcpy(longer, p, total);
    longer[total] = 0;
    edit_length_plus_one(longer, total);
    assert_int_equal(validate(longer, total + 1, BATCH_CHECK_FRAMING), -EBADMSG);
    free(longer);
    free(p);
}

static void test_batch_validate_magic_and_crc(void **state)
{
    (void)state;
    batch_edit_fn *magic_edits[] = {edit_magic_0, edit_magic_1, edit_magic_3, edit_magic_ff};
    for (size_t i = 0; i < sizeof(magic_edits) / sizeof(magic_edits[0]); i++) {
        /* The magic is outside the CRC: refused even with a correct CRC. */
        assert_int_equal(validate_edited(magic_edits[i], true, BATCH_CHECK_FRAMING), -EBADMSG);
        assert_int_equal(validate_edited(magic_edits[i], false, BATCH_CHECK_FULL), -EBADMSG);
    }
    assert_int_equal(validate_edited(edit_crc, false, BATCH_CHECK_FRAMING), -EBADMSG);
    assert_int_equal(validate_edited(edit_crc, false, BATCH_CHECK_FULL), -EBADMSG);
}

/* Fields inside the CRC, edited with the CRC recomputed: framing passes (the
 * bytes are what the sender meant), the full check must refuse. */
static void test_batch_validate_semantic_header_fields(void **state)
{
    (void)state;
    batch_edit_fn *bad[] = {
        edit_attr_compression_5,
        edit_attr_compression_7,
        edit_attr_unused_bit_7,
        edit_attr_unused_bit_15,
        edit_attr_transactional_no_pid,
        edit_last_offset_delta_plus_one,
        edit_last_offset_delta_minus_one,
        edit_count_zero,
        edit_count_negative,
        edit_count_plus_one,
        edit_count_minus_one,
        edit_count_huge,
        edit_max_ts_below_first,
        edit_max_ts_plus_one,
        edit_first_ts_shifted,
        edit_first_ts_overflows,
        edit_sequence_negative_with_pid,
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(validate_edited(bad[i], true, BATCH_CHECK_FRAMING), 0);
        int rc = validate_edited(bad[i], true, BATCH_CHECK_FULL);
        if (rc != -EBADMSG) {
            fail_msg("edit %zu: full check returned %d", i, rc);
        }
        /* Without the CRC fixed, framing already refuses. */
        assert_int_equal(validate_edited(bad[i], false, BATCH_CHECK_FRAMING), -EBADMSG);
    }
    /* Edits that leave a valid batch. */
    batch_edit_fn *good[] = {
        edit_attr_transactional, edit_max_ts_unset, edit_log_append_time_any_max,
        edit_not_idempotent,     edit_base_offset,
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        int rc = validate_edited(good[i], true, BATCH_CHECK_FULL);
        if (rc != 0) {
            fail_msg("good edit %zu: full check returned %d", i, rc);
        }
    }
}

static void test_batch_validate_every_crc_byte_flip_detected(void **state)
{
    (void)state;
    uint64_t rng = tu_seed("test_batch_validate_every_crc_byte_flip_detected");
    size_t total;
    uint8_t *p = sample_batch(&total);
    for (size_t i = 0; i < total; i++) {
        uint8_t flip = (uint8_t)(1 + tu_rand(&rng) % 255);
        p[i] ^= flip;
        int rc = validate(p, total, BATCH_CHECK_FRAMING);
        if (i >= BATCH_OFF_MAGIC) {
            /* magic, the CRC itself, and everything the CRC covers */
            if (rc != -EBADMSG) {
                fail_msg("flip 0x%02x at byte %zu: %d", flip, i, rc);
            }
        } else if (i >= BATCH_OFF_LENGTH && i < BATCH_OFF_LEADER_EPOCH) {
            assert_true(rc == -EBADMSG || rc == -EAGAIN);
        } else {
            /* base offset and leader epoch are outside the CRC by design */
            assert_int_equal(rc, 0);
        }
        p[i] ^= flip;
    }
    assert_int_equal(validate(p, total, BATCH_CHECK_FULL), 0);
    free(p);
}

static void test_batch_validate_truncated_at_every_length(void **state)
{
    (void)state;
    size_t total;
    uint8_t *p = sample_batch(&total);
    for (size_t cut = 0; cut < total; cut++) {
        uint8_t *q = exact_copy(p, cut);
        assert_int_equal(validate(q, cut, BATCH_CHECK_FRAMING), -EAGAIN);
        assert_int_equal(validate(q, cut, BATCH_CHECK_FULL), -EAGAIN);
        struct batch_record_iter it;
        int rc = batch_record_iter_init(&it, q, cut, NULL, 0);
        assert_int_equal(rc, -EBADMSG);
        free(q);
    }
    free(p);
}

static void test_batch_validate_max_bytes(void **state)
{
    (void)state;
    size_t total;
    uint8_t *p = sample_batch(&total);
    const char *why = NULL;
    assert_int_equal(batch_validate(p, total, BATCH_CHECK_FULL, total, NULL, &why), 0);
    assert_int_equal(batch_validate(p, total, BATCH_CHECK_FULL, total + 1, NULL, &why), 0);
    assert_int_equal(batch_validate(p, total, BATCH_CHECK_FULL, total - 1, NULL, &why), -EMSGSIZE);
    assert_non_null(why);
    assert_int_equal(batch_validate(p, total, BATCH_CHECK_FRAMING, 100, NULL, NULL), -EMSGSIZE);
    /* Known from the header alone: no need to wait for the rest. */
    assert_int_equal(batch_validate(p, 20, BATCH_CHECK_FRAMING, total - 1, NULL, NULL), -EMSGSIZE);
    free(p);
}

/* ------------------------------------------------------ malformed records */

struct bad_record_case {
    const char *name;
    uint8_t bytes[32];
    size_t len;
    int32_t count;
};

/*
 * Record sections that are wrong in one way each. A well-formed minimal record
 * is 0c 00 00 DD 01 01 00: length 6, attributes, timestampDelta 0, offsetDelta
 * DD (zig-zag), null key, null value, no headers.
 */
static const struct bad_record_case bad_records[] = {
    {"length varint malformed", {0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0x00}, 7, 1},
    {"length negative", {0x01, 0x00, 0x00, 0x00, 0x01, 0x01, 0x00}, 7, 1},
    {"length below the minimum", {0x0a, 0x00, 0x00, 0x00, 0x01, 0x01, 0x00}, 7, 1},
    {"length beyond the batch", {0x7e, 0x00, 0x00, 0x00, 0x01, 0x01, 0x00}, 7, 1},
    {"length longer than the fields", {0x0e, 0x00, 0x00, 0x00, 0x01, 0x01, 0x00, 0x00}, 8, 1},
    {"length shorter than the fields", {0x0c, 0x00, 0x00, 0x00, 0x02, 0x61, 0x01, 0x00}, 8, 1},
    {"timestampDelta over-long",
     {0x20, 0x00, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00, 0x00, 0x01,
      0x01, 0x00},
     17,
     1},
    {"offsetDelta malformed",
     {0x16, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00, 0x01, 0x01, 0x00},
     12,
     1},
    {"offsetDelta not starting at 0", {0x0c, 0x00, 0x00, 0x02, 0x01, 0x01, 0x00}, 7, 1},
    {"offsetDelta out of order",
     {0x0c, 0x00, 0x00, 0x02, 0x01, 0x01, 0x00, 0x0c, 0x00, 0x00, 0x00, 0x01, 0x01, 0x00},
     14,
     2},
    {"offsetDelta repeated",
     {0x0c, 0x00, 0x00, 0x00, 0x01, 0x01, 0x00, 0x0c, 0x00, 0x00, 0x00, 0x01, 0x01, 0x00},
     14,
     2},
    {"key length beyond the record", {0x0c, 0x00, 0x00, 0x00, 0x14, 0x01, 0x00}, 7, 1},
    {"key length -2", {0x0c, 0x00, 0x00, 0x00, 0x03, 0x01, 0x00}, 7, 1},
    {"key length overflows",
     {0x14, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0x1f, 0x01, 0x00},
     11,
     1},
    {"value length beyond the record", {0x0c, 0x00, 0x00, 0x00, 0x01, 0x0a, 0x00}, 7, 1},
    {"value length -3", {0x0c, 0x00, 0x00, 0x00, 0x01, 0x05, 0x00}, 7, 1},
    {"header count negative", {0x0c, 0x00, 0x00, 0x00, 0x01, 0x01, 0x01}, 7, 1},
    {"header count beyond the bytes", {0x0c, 0x00, 0x00, 0x00, 0x01, 0x01, 0x02}, 7, 1},
    {"header count malformed",
     {0x14, 0x00, 0x00, 0x00, 0x01, 0x01, 0x80, 0x80, 0x80, 0x80, 0x80},
     11,
     1},
    {"header key null", {0x10, 0x00, 0x00, 0x00, 0x01, 0x01, 0x02, 0x01, 0x01}, 9, 1},
    {"header key beyond the record", {0x10, 0x00, 0x00, 0x00, 0x01, 0x01, 0x02, 0x08, 0x01}, 9, 1},
    {"header value length -2", {0x10, 0x00, 0x00, 0x00, 0x01, 0x01, 0x02, 0x00, 0x03}, 9, 1},
    {"header value beyond the record",
     {0x10, 0x00, 0x00, 0x00, 0x01, 0x01, 0x02, 0x00, 0x04},
     9,
     1},
    {"bytes after the last record", {0x0c, 0x00, 0x00, 0x00, 0x01, 0x01, 0x00, 0x00}, 8, 1},
    {"fewer records than counted", {0x0c, 0x00, 0x00, 0x00, 0x01, 0x01, 0x00, 0x00}, 8, 2},
};

static void test_batch_validate_malformed_records(void **state)
{
    (void)state;
    /* The well-formed record of the comment above passes. */
    static const uint8_t good[] = {0x0c, 0x00, 0x00, 0x00, 0x01, 0x01, 0x00};
    size_t total;
    uint8_t *p = raw_batch(good, sizeof(good), 1, &total);
    assert_int_equal(validate(p, total, BATCH_CHECK_FULL), 0);
    assert_int_equal(drain(p, total, 0), 1);
    free(p);

    for (size_t i = 0; i < sizeof(bad_records) / sizeof(bad_records[0]); i++) {
        const struct bad_record_case *c = &bad_records[i];
        p = raw_batch(c->bytes, c->len, c->count, &total);
        /* The CRC is right: only the record checks can tell. */
        assert_int_equal(validate(p, total, BATCH_CHECK_FRAMING), 0);
        const char *why = NULL;
        int rc = batch_validate(p, total, BATCH_CHECK_FULL, 0, NULL, &why);
        if (rc != -EBADMSG) {
            fail_msg("case \"%s\": full check returned %d", c->name, rc);
        }
        assert_non_null(why);
        /* The iterator checks lengths on its own; order is not its business. */
        rc = drain(p, total, 4);
        if (strstr(c->name, "offsetDelta") != NULL && strstr(c->name, "malformed") == NULL) {
            assert_int_equal(rc, c->count);
        } else if (rc != -EBADMSG) {
            fail_msg("case \"%s\": iterator returned %d", c->name, rc);
        }
        free(p);
    }
}

static void test_batch_iterator_refusals(void **state)
{
    (void)state;
    size_t total;
    uint8_t *p = sample_batch(&total);
    struct batch_record_iter it;
    struct batch_record rec;
    struct batch_record_header slots[3];

    /* Record 1 has three headers: two slots are too few. */
    assert_int_equal(batch_record_iter_init(&it, p, total, slots, 2), 0);
    assert_int_equal(batch_record_iter_next(&it, &rec), 1);
    assert_int_equal(batch_record_iter_next(&it, &rec), -ENOBUFS);
    /* No slots at all: the first record (no headers) still reads. */
    assert_int_equal(batch_record_iter_init(&it, p, total, NULL, 0), 0);
    assert_int_equal(batch_record_iter_next(&it, &rec), 1);
    assert_null(rec.headers);
    assert_int_equal(rec.header_count, 0);
    assert_int_equal(batch_record_iter_next(&it, &rec), -ENOBUFS);
    /* Exactly enough. */
    assert_int_equal(drain(p, total, 3), (int)SAMPLE_COUNT);

    /* A compressed batch is not opened here. */
    be16_put(p + BATCH_OFF_ATTRIBUTES, BATCH_COMPRESSION_ZSTD);
    assert_int_equal(batch_record_iter_init(&it, p, total, slots, 3), -ENOTSUP);
    be16_put(p + BATCH_OFF_ATTRIBUTES, 0);
    /* Bad headers. */
    p[BATCH_OFF_MAGIC] = 1;
    assert_int_equal(batch_record_iter_init(&it, p, total, slots, 3), -EBADMSG);
    p[BATCH_OFF_MAGIC] = 2;
    assert_int_equal(batch_record_iter_init(&it, p, total - 1, slots, 3), -EBADMSG);
    be32_put(p + BATCH_OFF_LENGTH, 3);
    assert_int_equal(batch_record_iter_init(&it, p, total, slots, 3), -EBADMSG);
    free(p);
}

/* ----------------------------------------------- batches from kafka-python */

/*
 * Written by kafka-python 2.0.2's DefaultRecordBatchBuilder (an implementation
 * independent of ours), uncompressed, not idempotent, three records:
 *   0: ts 1700000000000, key "key-0", value "value-0"
 *   1: ts +5, null key, value "v1", headers h1="x", h2=null
 *   2: ts -10, empty key, null value
 */
static const uint8_t kafka_python_plain[] = {
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x5d, 0x00, 0x00, 0x00,
    0x00, 0x02, 0xc1, 0x8e, 0xc5, 0xd3, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x01,
    0x8b, 0xcf, 0xe5, 0x68, 0x00, 0x00, 0x00, 0x01, 0x8b, 0xcf, 0xe5, 0x68, 0x05, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00,
    0x03, 0x24, 0x00, 0x00, 0x00, 0x0a, 0x6b, 0x65, 0x79, 0x2d, 0x30, 0x0e, 0x76, 0x61, 0x6c,
    0x75, 0x65, 0x2d, 0x30, 0x00, 0x22, 0x00, 0x0a, 0x02, 0x01, 0x04, 0x76, 0x31, 0x04, 0x04,
    0x68, 0x31, 0x02, 0x78, 0x04, 0x68, 0x32, 0x01, 0x0c, 0x00, 0x13, 0x04, 0x00, 0x01, 0x00,
};

/* The same builder, gzip, producer id 4242, epoch 3, base sequence 17, four
 * records with keys "k0".."k3". */
static const uint8_t kafka_python_gzip[] = {
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x73, 0x00, 0x00, 0x00, 0x00,
    0x02, 0x5d, 0xae, 0x92, 0x6e, 0x00, 0x01, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x01, 0x8b, 0xcf,
    0xe5, 0x68, 0x00, 0x00, 0x00, 0x01, 0x8b, 0xcf, 0xe5, 0x68, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x10, 0x92, 0x00, 0x03, 0x00, 0x00, 0x00, 0x11, 0x00, 0x00, 0x00, 0x04, 0x1f, 0x8b, 0x08,
    0x00, 0x3d, 0x82, 0x02, 0x6b, 0x02, 0xff, 0x6b, 0x62, 0x62, 0x60, 0x60, 0x60, 0xc9, 0x36, 0xf8,
    0xc0, 0x58, 0x9c, 0x53, 0x9a, 0x99, 0x9c, 0x4a, 0x7f, 0x92, 0xa1, 0x89, 0x89, 0x81, 0x89, 0x89,
    0x25, 0xdb, 0x70, 0x60, 0x9d, 0xc0, 0xc2, 0xc2, 0x92, 0x6d, 0x34, 0xb0, 0x4e, 0x60, 0x63, 0x63,
    0xc9, 0x36, 0x1e, 0x40, 0x27, 0x00, 0x00, 0xf9, 0x10, 0x15, 0xf3, 0x0c, 0x02, 0x00, 0x00,
};

static void test_batch_kafka_python_plain(void **state)
{
    (void)state;
    static const struct batch_record_header hdrs[] = {
        {.key = "h1", .key_len = 2, .value = "x", .value_len = 1},
        {.key = "h2", .key_len = 2, .value = NULL, .value_len = -1},
    };
    static const struct batch_record recs[] = {
        {.timestamp = TEST_BASE_TS,
         .key = (const uint8_t *)"key-0",
         .key_len = 5,
         .value = (const uint8_t *)"value-0",
         .value_len = 7},
        {.timestamp = TEST_BASE_TS + 5,
         .key = NULL,
         .key_len = -1,
         .value = (const uint8_t *)"v1",
         .value_len = 2,
         .headers = hdrs,
         .header_count = 2},
        {.timestamp = TEST_BASE_TS - 10,
         .key = (const uint8_t *)"",
         .key_len = 0,
         .value = NULL,
         .value_len = -1},
    };
    size_t total = sizeof(kafka_python_plain);
    uint8_t *p = exact_copy(kafka_python_plain, total);
    struct batch_header h;
    assert_int_equal(batch_validate(p, total, BATCH_CHECK_FULL, 0, &h, NULL), 0);
    assert_int_equal(h.record_count, 3);
    assert_int_equal(h.producer_id, -1);
    assert_int_equal(h.max_timestamp, TEST_BASE_TS + 5);
    assert_records(p, total, recs, 3);

    /* Our encoder writes the very same bytes. */
    struct batch_meta meta = {
        .base_offset = 0,
        .leader_epoch = 0,
        .attributes = 0,
        .producer_id = -1,
        .producer_epoch = -1,
        .base_sequence = -1,
    };
    struct buf b;
    buf_init(&b, TEST_BUF_MAX);
    assert_int_equal(batch_encode(&b, &meta, recs, 3), 0);
    assert_int_equal(b.len, total);
    assert_memory_equal(b.data, kafka_python_plain, total);
    buf_deinit(&b);
    free(p);
}

static void test_batch_kafka_python_gzip(void **state)
{
    (void)state;
    size_t total = sizeof(kafka_python_gzip);
    uint8_t *p = exact_copy(kafka_python_gzip, total);
    struct batch_header h;
    assert_int_equal(batch_validate(p, total, BATCH_CHECK_FULL, 0, &h, NULL), 0);
    assert_int_equal(h.attributes & BATCH_ATTR_COMPRESSION_MASK, BATCH_COMPRESSION_GZIP);
    assert_int_equal(h.record_count, 4);
    assert_int_equal(h.last_offset_delta, 3);
    assert_int_equal(h.producer_id, 4242);
    assert_int_equal(h.producer_epoch, 3);
    assert_int_equal(h.base_sequence, 17);
    assert_int_equal(h.first_timestamp, TEST_BASE_TS);
    assert_int_equal(h.max_timestamp, TEST_BASE_TS + 3);
    struct batch_record_iter it;
    assert_int_equal(batch_record_iter_init(&it, p, total, NULL, 0), -ENOTSUP);
    /* A flipped bit in the compressed payload is caught by the CRC. */
    p[total - 10] ^= 0x10;
    assert_int_equal(validate(p, total, BATCH_CHECK_FRAMING), -EBADMSG);
    free(p);
}

/* ------------------------------------------------------------------- fuzz */

static size_t mutate(uint8_t *p, size_t len, size_t cap, uint64_t *rng)
{
    switch (tu_rand(rng) % 6) {
    case 0: /* flip a bit */
        if (len > 0) {
            p[tu_rand(rng) % len] ^= (uint8_t)(1u << (tu_rand(rng) % 8));
        }
        return len;
    case 1: /* set a byte to an interesting value */
        if (len > 0) {
            static const uint8_t vals[] = {0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff};
            p[tu_rand(rng) % len] = vals[tu_rand(rng) % sizeof(vals)];
        }
        return len;
    case 2: /* truncate */
        return len > 0 ? (size_t)(tu_rand(rng) % len) : 0;
    case 3: /* append garbage */
    {
        size_t add = (size_t)(tu_rand(rng) % 16);
        add = add < cap - len ? add : cap - len;
        for (size_t i = 0; i < add; i++) {
            p[len + i] = (uint8_t)tu_rand(rng);
        }
        return len + add;
    }
    case 4: /* delete a byte */
        if (len > 0) {
            size_t at = (size_t)(tu_rand(rng) % len);
            memmove(p + at, p + at + 1, len - at - 1);
            return len - 1;
        }
        return len;
    default: /* insert a byte */
        if (len < cap) {
            size_t at = (size_t)(tu_rand(rng) % (len + 1));
            memmove(p + at + 1, p + at, len - at);
            p[at] = (uint8_t)tu_rand(rng);
            return len + 1;
        }
        return len;
    }
}

static void test_batch_fuzz_mutations_never_crash(void **state)
{
    (void)state;
    uint64_t rng = tu_seed("test_batch_fuzz_mutations_never_crash");
    size_t sample_total;
    uint8_t *sample = sample_batch(&sample_total);
    size_t cap = sample_total + 64;
    uint8_t *work = malloc(cap);
    assert_non_null(work);
    int accepted = 0;
    int refused_past_crc = 0;
    for (int round = 0; round < 20000; round++) {
        const uint8_t *src = sample;
        size_t len = sample_total;
        if (round % 3 == 1) {
            src = kafka_python_plain;
            len = sizeof(kafka_python_plain);
        }
        memcpy(work, src, len);
        int mutations = 1 + (int)(tu_rand(&rng) % 4);
        for (int m = 0; m < mutations; m++) {
            len = mutate(work, len, cap, &rng);
        }
        /* Half the time, make the CRC right so the deeper checks run. */
        if (tu_rand(&rng) % 2 == 0 && len >= BATCH_HEADER_BYTES) {
            int32_t blen = (int32_t)be32_get(work + BATCH_OFF_LENGTH);
            if (tu_rand(&rng) % 2 == 0) {
                blen = (int32_t)(len - BATCH_LOG_OVERHEAD);
                be32_put(work + BATCH_OFF_LENGTH, (uint32_t)blen);
            }
            if (blen >= BATCH_HEADER_BYTES - BATCH_LOG_OVERHEAD &&
                (size_t)blen + BATCH_LOG_OVERHEAD <= len) {
                recrc(work, (size_t)blen + BATCH_LOG_OVERHEAD);
            }
        }
        uint8_t *q = exact_copy(work, len);
        size_t max_bytes = tu_rand(&rng) % 4 == 0 ? (size_t)(tu_rand(&rng) % 200) : 0;
        struct batch_header h;
        int framing = batch_validate(q, len, BATCH_CHECK_FRAMING, max_bytes, &h, NULL);
        assert_true(framing == 0 || framing == -EAGAIN || framing == -EBADMSG ||
                    framing == -EMSGSIZE);
        int full = batch_validate(q, len, BATCH_CHECK_FULL, max_bytes, &h, NULL);
        assert_true(full == 0 || full == -EAGAIN || full == -EBADMSG || full == -EMSGSIZE);
        /* The full check only adds refusals. */
        if (framing != 0) {
            assert_int_equal(full, framing);
        } else if (full != 0) {
            refused_past_crc++;
        }
        int records = drain(q, len, DRAIN_SLOTS_MAX);
        if (full == 0) {
            /* What the full check accepts, the iterator reads to the end
             * (or declines to open, if a mutation turned compression on). */
            accepted++;
            if ((h.attributes & BATCH_ATTR_COMPRESSION_MASK) != 0) {
                assert_int_equal(records, -ENOTSUP);
            } else {
                assert_int_equal(records, h.record_count);
            }
        }
        free(q);
    }
    /* The loop must have reached past the CRC now and then, both ways. */
    print_message("# accepted %d, refused after a good CRC %d\n", accepted, refused_past_crc);
    assert_true(accepted > 0);
    assert_true(refused_past_crc > 0);
    free(work);
    free(sample);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batch_encode_validate_round_trip),
        cmocka_unit_test(test_batch_iterator_returns_exactly_the_records),
        cmocka_unit_test(test_batch_round_trip_random),
        cmocka_unit_test(test_batch_iterator_log_append_time),
        cmocka_unit_test(test_batch_encode_appends_back_to_back),
        cmocka_unit_test(test_batch_encode_refusals_leave_buf_unchanged),
        cmocka_unit_test(test_batch_rewrites_outside_crc_keep_it_valid),
        cmocka_unit_test(test_batch_max_timestamp_rewrite),
        cmocka_unit_test(test_batch_header_decode),
        cmocka_unit_test(test_batch_validate_length_field),
        cmocka_unit_test(test_batch_validate_magic_and_crc),
        cmocka_unit_test(test_batch_validate_semantic_header_fields),
        cmocka_unit_test(test_batch_validate_every_crc_byte_flip_detected),
        cmocka_unit_test(test_batch_validate_truncated_at_every_length),
        cmocka_unit_test(test_batch_validate_max_bytes),
        cmocka_unit_test(test_batch_validate_malformed_records),
        cmocka_unit_test(test_batch_iterator_refusals),
        cmocka_unit_test(test_batch_kafka_python_plain),
        cmocka_unit_test(test_batch_kafka_python_gzip),
        cmocka_unit_test(test_batch_fuzz_mutations_never_crash),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
