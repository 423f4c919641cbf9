/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The msg-id window (broker/msgids.c): the table against a reference model
 * through random adds, expiry, rollback and eviction; the filter's three
 * outcomes on plain and zstd batches, duplicates inside one batch, records
 * without an id, and what it refuses.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include <cmocka.h>

#include "broker/msgids.h"
#include "common/bytes.h"
#include "proto/batch.h"
#include "proto/compress.h"
#include "tests/lib/testutil.h"

#define MODEL_MAX 512

struct model_entry {
    char id[16];
    int64_t offset;
    int64_t time;
};

/* Random adds, expiry and rollback, checked against a plain array. */
static void test_msgids_table_matches_model(void **state)
{
    (void)state;
    uint64_t seed = tu_seed("msgids_table");
    struct msgids *m = msgids_new(MODEL_MAX, "t-0");
    static struct model_entry model[200000];
    size_t head = 0, tail = 0;
    int64_t now = 1000, offset = 0;
    for (int step = 0; step < 20000; step++) {
        uint64_t r = tu_rand(&seed) % 100;
        if (r < 70) {
            struct model_entry e = {.offset = offset++, .time = now};
            snprintf(e.id, sizeof(e.id), "id-%llu", (unsigned long long)(tu_rand(&seed) % 3000));
            assert_int_equal(msgids_add(m, (const uint8_t *)e.id, strlen(e.id), e.offset, now), 0);
            model[tail++] = e;
            if (tail - head > MODEL_MAX) {
                head++; /* evicted, oldest first */
            }
        } else if (r < 85) {
            now += (int64_t)(tu_rand(&seed) % 50);
            msgids_expire(m, now, 400);
            while (head < tail && now - model[head].time > 400) {
                head++;
            }
        } else if (r < 90 && tail > head) {
            int64_t from = model[tail - 1].offset - (int64_t)(tu_rand(&seed) % 4);
            msgids_forget_from(m, from);
            while (tail > head && model[tail - 1].offset >= from) {
                tail--;
            }
        } else {
            char id[16];
            snprintf(id, sizeof(id), "id-%llu", (unsigned long long)(tu_rand(&seed) % 3000));
            /* Ids repeat in this model and each add is its own entry: any
             * live entry of the id is a right answer, none means -1. */
            bool live = false;
            for (size_t k = head; k < tail; k++) {
                live = live || (strcmp(model[k].id, id) == 0 && now - model[k].time <= 400);
            }
            int64_t got = msgids_find(m, (const uint8_t *)id, strlen(id), now, 400);
            if (!live) {
                assert_int_equal(got, -1);
            } else {
                bool found = false;
                for (size_t k = head; k < tail; k++) {
                    found = found || (strcmp(model[k].id, id) == 0 && model[k].offset == got &&
                                      now - model[k].time <= 400);
                }
                assert_true(found);
            }
        }
        assert_int_equal(msgids_count(m), tail - head);
    }
    msgids_free(m);
}

/* --------------------------------------------------------------- batches */

/* A batch of records lo..hi-1 (ids "id-N", or none where no_id says so). */
static void make_batch(struct buf *out, int lo, int hi, int no_id_every, bool zstd,
                       int64_t producer_id)
{
    struct batch_record recs[256];
    struct batch_record_header hdrs[256];
    static char ids[256][16];
    static char vals[256][16];
    for (int i = lo; i < hi; i++) {
        int k = i - lo;
        snprintf(ids[k], sizeof(ids[k]), "id-%d", i);
        snprintf(vals[k], sizeof(vals[k]), "v%d", i);
        hdrs[k] = (struct batch_record_header){"msg-id", 6, ids[k], (int32_t)strlen(ids[k])};
        bool no_id = no_id_every > 0 && i % no_id_every == 0;
        recs[k] = (struct batch_record){.timestamp = 1000 + i,
                                        .key_len = -1,
                                        .value = (const uint8_t *)vals[k],
                                        .value_len = (int32_t)strlen(vals[k]),
                                        .headers = no_id ? NULL : &hdrs[k],
                                        .header_count = no_id ? 0 : 1};
    }
    struct batch_meta meta = {.producer_id = producer_id,
                              .producer_epoch = producer_id >= 0 ? 0 : -1,
                              .base_sequence = producer_id >= 0 ? 0 : -1};
    buf_reset(out);
    assert_int_equal(batch_encode(out, &meta, recs, (size_t)(hi - lo)), 0);
    if (!zstd) {
        return;
    }
    struct buf z;
    buf_init(&z, 1 << 20);
    assert_int_equal(buf_put(&z, out->data, BATCH_HEADER_BYTES), 0);
    assert_int_equal(
        compress_zstd(NULL, out->data + BATCH_HEADER_BYTES, out->len - BATCH_HEADER_BYTES, 3, &z),
        0);
    be16_put(z.data + BATCH_OFF_ATTRIBUTES, BATCH_COMPRESSION_ZSTD);
    be32_put(z.data + BATCH_OFF_LENGTH, (uint32_t)(z.len - BATCH_LOG_OVERHEAD));
    be32_put(z.data + BATCH_OFF_CRC, batch_compute_crc(z.data, z.len));
    buf_reset(out);
    assert_int_equal(buf_put(out, z.data, z.len), 0);
    buf_deinit(&z);
}

/* The values kept in a (rebuilt) batch, with their offset deltas. */
static int kept_values(const uint8_t *batch, size_t len, char out[][16], int32_t *deltas)
{
    struct batch_header h;
    assert_int_equal(batch_validate(batch, len, BATCH_CHECK_FRAMING, 0, &h, NULL), 0);
    struct buf plain;
    buf_init(&plain, 1 << 20);
    const uint8_t *records = batch + BATCH_HEADER_BYTES;
    size_t records_len = len - BATCH_HEADER_BYTES;
    if ((h.attributes & BATCH_ATTR_COMPRESSION_MASK) == BATCH_COMPRESSION_ZSTD) {
        assert_int_equal(decompress_zstd(records, records_len, 1 << 20, &plain), 0);
        records = plain.data;
        records_len = plain.len;
    }
    struct batch_record_iter it;
    struct batch_record rec;
    struct batch_record_header slots[4];
    batch_record_iter_init_records(&it, records, records_len, &h, slots, 4);
    int n = 0;
    int rc;
    while ((rc = batch_record_iter_next(&it, &rec)) == 1) {
        snprintf(out[n], 16, "%.*s", rec.value_len, (const char *)rec.value);
        deltas[n++] = rec.offset_delta;
    }
    assert_int_equal(rc, 0);
    assert_int_equal(n, h.record_count);
    buf_deinit(&plain);
    return n;
}

static void filter_partial(bool zstd)
{
    struct msgids *m = msgids_new(1000, "t-0");
    struct buf b;
    buf_init(&b, 1 << 20);
    struct msgids_filter f;
    /* 0..9 written at offsets 100..109. */
    make_batch(&b, 0, 10, 0, zstd, -1);
    assert_int_equal(msgids_filter(m, b.data, b.len, 5000, 60000, 1 << 20, 3, false, &f), 0);
    assert_int_equal(f.duplicates, 0);
    assert_false(f.rewritten);
    msgids_commit(m, &f, 100, 5000);
    msgids_filter_deinit(&f);
    /* 5..14: 5..9 dropped, 10..14 kept with their deltas 5..9; the batch's
     * header (offsets, timestamps, codec) is unchanged. */
    make_batch(&b, 5, 15, 0, zstd, -1);
    assert_int_equal(msgids_filter(m, b.data, b.len, 5000, 60000, 1 << 20, 3, false, &f), 0);
    assert_int_equal(f.records, 10);
    assert_int_equal(f.duplicates, 5);
    assert_true(f.rewritten);
    char vals[16][16];
    int32_t deltas[16];
    assert_int_equal(kept_values(f.out.data, f.out.len, vals, deltas), 5);
    for (int i = 0; i < 5; i++) {
        char want[16];
        snprintf(want, sizeof(want), "v%d", 10 + i);
        assert_string_equal(vals[i], want);
        assert_int_equal(deltas[i], 5 + i);
    }
    assert_int_equal(be32_get(f.out.data + BATCH_OFF_LAST_OFFSET_DELTA), 9);
    assert_int_equal(be16_get(f.out.data + BATCH_OFF_ATTRIBUTES) & BATCH_ATTR_COMPRESSION_MASK,
                     zstd ? BATCH_COMPRESSION_ZSTD : BATCH_COMPRESSION_NONE);
    msgids_commit(m, &f, 200, 5000);
    msgids_filter_deinit(&f);
    assert_int_equal(msgids_find(m, (const uint8_t *)"id-12", 5, 5000, 60000), 207);
    assert_int_equal(msgids_find(m, (const uint8_t *)"id-7", 4, 5000, 60000), 107);
    buf_deinit(&b);
    msgids_free(m);
}

static void test_msgids_filter_partial_plain(void **state)
{
    (void)state;
    filter_partial(false);
}

static void test_msgids_filter_partial_zstd(void **state)
{
    (void)state;
    filter_partial(true);
}

/* A gzip batch with duplicates: read through zlib, rebuilt plain. */
static void test_msgids_filter_partial_gzip(void **state)
{
    (void)state;
    struct msgids *m = msgids_new(1000, "t-0");
    struct buf b;
    buf_init(&b, 1 << 20);
    struct msgids_filter f;
    make_batch(&b, 0, 10, 0, false, -1);
    assert_int_equal(msgids_filter(m, b.data, b.len, 0, 60000, 1 << 20, 3, false, &f), 0);
    msgids_commit(m, &f, 0, 0);
    msgids_filter_deinit(&f);
    make_batch(&b, 5, 15, 0, false, -1);
    uint8_t gz[1 << 16];
    z_stream zs = {0};
    assert_int_equal(deflateInit2(&zs, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
    zs.next_in = b.data + BATCH_HEADER_BYTES;
    zs.avail_in = (uInt)(b.len - BATCH_HEADER_BYTES);
    zs.next_out = gz;
    zs.avail_out = sizeof(gz);
    assert_int_equal(deflate(&zs, Z_FINISH), Z_STREAM_END);
    size_t gz_len = sizeof(gz) - zs.avail_out;
    deflateEnd(&zs);
    b.len = BATCH_HEADER_BYTES;
    assert_int_equal(buf_put(&b, gz, gz_len), 0);
    be16_put(b.data + BATCH_OFF_ATTRIBUTES, BATCH_COMPRESSION_GZIP);
    be32_put(b.data + BATCH_OFF_LENGTH, (uint32_t)(b.len - BATCH_LOG_OVERHEAD));
    be32_put(b.data + BATCH_OFF_CRC, batch_compute_crc(b.data, b.len));
    assert_int_equal(msgids_filter(m, b.data, b.len, 0, 60000, 1 << 20, 3, false, &f), 0);
    assert_int_equal(f.duplicates, 5);
    assert_true(f.rewritten);
    assert_int_equal(be16_get(f.out.data + BATCH_OFF_ATTRIBUTES) & BATCH_ATTR_COMPRESSION_MASK,
                     BATCH_COMPRESSION_NONE);
    char vals[16][16];
    int32_t deltas[16];
    assert_int_equal(kept_values(f.out.data, f.out.len, vals, deltas), 5);
    assert_string_equal(vals[0], "v10");
    assert_int_equal(deltas[0], 5);
    msgids_filter_deinit(&f);
    buf_deinit(&b);
    msgids_free(m);
}

static void test_msgids_filter_all_duplicates(void **state)
{
    (void)state;
    struct msgids *m = msgids_new(1000, "t-0");
    struct buf b;
    buf_init(&b, 1 << 20);
    struct msgids_filter f;
    make_batch(&b, 0, 4, 0, true, -1);
    assert_int_equal(msgids_filter(m, b.data, b.len, 0, 60000, 1 << 20, 3, false, &f), 0);
    msgids_commit(m, &f, 40, 0);
    msgids_filter_deinit(&f);
    /* All duplicates: nothing to append, answered with the first original. */
    assert_int_equal(msgids_filter(m, b.data, b.len, 10, 60000, 1 << 20, 3, false, &f), 0);
    assert_int_equal(f.duplicates, 4);
    assert_false(f.rewritten);
    assert_int_equal(f.first_original, 40);
    msgids_filter_deinit(&f);
    /* An idempotent producer's: an empty, uncompressed batch with the same
     * header (its sequence range still reaches the log). */
    make_batch(&b, 0, 4, 0, true, 77);
    assert_int_equal(msgids_filter(m, b.data, b.len, 10, 60000, 1 << 20, 3, true, &f), 0);
    assert_true(f.rewritten);
    assert_int_equal(f.out.len, BATCH_HEADER_BYTES);
    struct batch_header h;
    assert_int_equal(batch_validate(f.out.data, f.out.len, BATCH_CHECK_FRAMING, 0, &h, NULL), 0);
    assert_int_equal(h.record_count, 0);
    assert_int_equal(h.last_offset_delta, 3);
    assert_int_equal(h.producer_id, 77);
    assert_int_equal(h.attributes & BATCH_ATTR_COMPRESSION_MASK, BATCH_COMPRESSION_NONE);
    msgids_filter_deinit(&f);
    /* Past the window the ids are new again. */
    assert_int_equal(msgids_filter(m, b.data, b.len, 60001, 60000, 1 << 20, 3, false, &f), 0);
    assert_int_equal(f.duplicates, 0);
    msgids_filter_deinit(&f);
    buf_deinit(&b);
    msgids_free(m);
}

static void test_msgids_filter_within_batch_and_without_ids(void **state)
{
    (void)state;
    struct msgids *m = msgids_new(1000, "t-0");
    struct buf b;
    buf_init(&b, 1 << 20);
    struct msgids_filter f;
    /* Records without an id (every third) are always kept. */
    make_batch(&b, 0, 9, 3, false, -1);
    assert_int_equal(msgids_filter(m, b.data, b.len, 0, 60000, 1 << 20, 3, false, &f), 0);
    assert_int_equal(f.kept_ids, 6);
    msgids_commit(m, &f, 0, 0);
    msgids_filter_deinit(&f);
    assert_int_equal(msgids_filter(m, b.data, b.len, 0, 60000, 1 << 20, 3, false, &f), 0);
    assert_int_equal(f.duplicates, 6);
    assert_true(f.rewritten);
    char vals[16][16];
    int32_t deltas[16];
    assert_int_equal(kept_values(f.out.data, f.out.len, vals, deltas), 3);
    assert_string_equal(vals[0], "v0");
    assert_string_equal(vals[1], "v3");
    assert_string_equal(vals[2], "v6");
    msgids_filter_deinit(&f);
    /* The same id twice in one new batch: the second is dropped. */
    struct batch_record_header hdr = {"msg-id", 6, "same", 4};
    struct batch_record recs[2] = {
        {.timestamp = 1, .key_len = -1, .value_len = -1, .headers = &hdr, .header_count = 1},
        {.timestamp = 2, .key_len = -1, .value_len = -1, .headers = &hdr, .header_count = 1},
    };
    struct batch_meta meta = {.producer_id = -1, .producer_epoch = -1, .base_sequence = -1};
    buf_reset(&b);
    assert_int_equal(batch_encode(&b, &meta, recs, 2), 0);
    assert_int_equal(msgids_filter(m, b.data, b.len, 0, 60000, 1 << 20, 3, false, &f), 0);
    assert_int_equal(f.duplicates, 1);
    assert_int_equal(f.kept_ids, 1);
    assert_true(f.rewritten);
    msgids_filter_deinit(&f);
    buf_deinit(&b);
    msgids_free(m);
}

static void test_msgids_filter_refusals(void **state)
{
    (void)state;
    struct msgids *m = msgids_new(1000, "t-0");
    struct buf b;
    buf_init(&b, 1 << 20);
    struct msgids_filter f;
    /* A batch that claims gzip but does not hold it. */
    make_batch(&b, 0, 2, 0, false, -1);
    be16_put(b.data + BATCH_OFF_ATTRIBUTES, BATCH_COMPRESSION_GZIP);
    assert_int_equal(msgids_filter(m, b.data, b.len, 0, 60000, 1 << 20, 3, false, &f), -EBADMSG);
    msgids_filter_deinit(&f);
    /* An id longer than MSGIDS_ID_MAX. */
    static char long_id[MSGIDS_ID_MAX + 1];
    memset(long_id, 'x', sizeof(long_id));
    struct batch_record_header hdr = {"msg-id", 6, long_id, (int32_t)sizeof(long_id)};
    struct batch_record rec = {
        .timestamp = 1, .key_len = -1, .value_len = -1, .headers = &hdr, .header_count = 1};
    struct batch_meta meta = {.producer_id = -1, .producer_epoch = -1, .base_sequence = -1};
    buf_reset(&b);
    assert_int_equal(batch_encode(&b, &meta, &rec, 1), 0);
    assert_int_equal(msgids_filter(m, b.data, b.len, 0, 60000, 1 << 20, 3, false, &f), -EINVAL);
    msgids_filter_deinit(&f);
    /* Decompressed records past the bound. */
    make_batch(&b, 0, 200, 0, true, -1);
    assert_int_equal(msgids_filter(m, b.data, b.len, 0, 60000, 64, 3, false, &f), -EMSGSIZE);
    msgids_filter_deinit(&f);
    buf_deinit(&b);
    msgids_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_msgids_table_matches_model),
        cmocka_unit_test(test_msgids_filter_partial_plain),
        cmocka_unit_test(test_msgids_filter_partial_zstd),
        cmocka_unit_test(test_msgids_filter_partial_gzip),
        cmocka_unit_test(test_msgids_filter_all_duplicates),
        cmocka_unit_test(test_msgids_filter_within_batch_and_without_ids),
        cmocka_unit_test(test_msgids_filter_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
