/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The producer's batching, without a network: a client whose only broker is
 * never reached, topics given partitions by hand (as metadata would), and
 * the producer's timer round driven with chosen times. Checked: batch
 * boundaries at batch.size (exact encoded sizes, records intact and in order),
 * linger.ms, sticky partitions for keyless messages and key mapping for keyed
 * ones, messages waiting for metadata, the queue bounds of sl_produce,
 * delivery.timeout.ms, a zstd round trip of a batch, and sl_close reporting
 * every message held.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "client/internal.h"
#include "proto/batch.h"
#include "proto/compress.h"
#include "tests/lib/client_fake.h"

#define TS          1700000000000LL /* a fixed record timestamp: deltas are 0 */
#define REPORTS_MAX 4096

struct reports {
    size_t n;
    sl_delivery d[REPORTS_MAX];
};

static void on_delivery(void *opaque, const sl_delivery *d)
{
    struct reports *r = opaque;
    assert_true(r->n < REPORTS_MAX);
    r->d[r->n++] = *d;
}

/* A producer that never connects (nothing polls it); pairs are key, value. */
static sl_client *client_new(struct reports *r, const char *const *pairs, size_t n)
{
    sl_conf *conf = sl_conf_new();
    char err[512];
    assert_int_equal(sl_conf_set(conf, "bootstrap.servers", "127.0.0.1:1", err, sizeof(err)), 0);
    assert_int_equal(sl_conf_set(conf, "enable.idempotence", "false", err, sizeof(err)), 0);
    for (size_t i = 0; i < n; i += 2) {
        if (sl_conf_set(conf, pairs[i], pairs[i + 1], err, sizeof(err)) != SL_OK) {
            fail_msg("%s", err);
        }
    }
    sl_conf_set_delivery_cb(conf, on_delivery);
    sl_conf_set_opaque(conf, r);
    sl_client *c = sl_producer_new(conf, err, sizeof(err));
    if (c == NULL) {
        fail_msg("%s", err);
    }
    return c;
}

static struct slc_topic *topic_with(sl_client *c, const char *name, int32_t partitions,
                                    int32_t leader)
{
    struct slc_topic *t = slc_topic_get(c, name, strlen(name), true);
    assert_non_null(t);
    assert_int_equal(slc_topic_set_partitions(c, t, partitions, slc_now_ms()), 0);
    for (int32_t i = 0; i < partitions; i++) {
        t->parts[i]->leader = leader;
    }
    return t;
}

static sl_err produce(sl_client *c, const char *topic, int32_t partition, const char *key,
                      const void *value, size_t value_len, uintptr_t opaque)
{
    sl_msg m = {.topic = topic,
                .partition = partition,
                .key = key,
                .key_len = key != NULL ? strlen(key) : 0,
                .value = value,
                .value_len = value_len,
                .timestamp = TS,
                .opaque = (void *)opaque};
    return sl_produce(c, &m);
}

static size_t queued_batches(const struct slc_part *p)
{
    size_t n = 0;
    for (const struct slc_batch *b = p->q_head; b != NULL; b = b->next) {
        n++;
    }
    return n;
}

/* Checks that a sealed uncompressed batch holds values first..first+count-1
 * (as produced by test_client_batching_boundaries), in order. */
static void assert_batch_values(const struct slc_batch *b, int first)
{
    struct batch_header h;
    assert_int_equal(batch_validate(b->wire, b->wire_len, BATCH_CHECK_FULL, 0, &h, NULL), 0);
    assert_int_equal(h.record_count, (int32_t)b->count);
    assert_int_equal(h.producer_id, -1);
    struct batch_record_iter it;
    assert_int_equal(batch_record_iter_init(&it, b->wire, b->wire_len, NULL, 0), 0);
    struct batch_record rec;
    for (int i = 0; i < (int)b->count; i++) {
        assert_int_equal(batch_record_iter_next(&it, &rec), 1);
        char want[91];
        snprintf(want, sizeof(want), "%090d", first + i);
        assert_int_equal(rec.value_len, 90);
        assert_memory_equal(rec.value, want, 90);
        assert_int_equal(rec.timestamp, TS);
    }
    assert_int_equal(batch_record_iter_next(&it, &rec), 0);
}

static void test_client_batching_boundaries(void **state)
{
    (void)state;
    struct reports r = {0};
    const char *conf[] = {"batch.size", "1000", "linger.ms", "1000"};
    sl_client *c = client_new(&r, conf, 4);
    struct slc_topic *t = topic_with(c, "t", 1, -1);
    struct slc_part *p = t->parts[0];
    /* Key "k" and 90-byte values: 100 bytes a record (a 98-byte body and its
     * 2-byte length), so 9 fit in 1000 with the 61-byte header: 961. */
    for (int i = 0; i < 30; i++) {
        char value[91];
        snprintf(value, sizeof(value), "%090d", i);
        assert_int_equal(produce(c, "t", 0, "k", value, 90, (uintptr_t)i), SL_OK);
    }
    assert_int_equal(queued_batches(p), 3);
    int first = 0;
    for (const struct slc_batch *b = p->q_head; b != NULL; b = b->next) {
        assert_int_equal(b->count, 9);
        assert_int_equal(b->wire_len, 961);
        assert_batch_values(b, first);
        first += 9;
    }
    assert_non_null(p->open);
    assert_int_equal(p->open->count, 3);
    assert_int_equal(p->open->encoded_bytes, 61 + 300);
    assert_int_equal(sl_queue_len(c), 30);
    assert_int_equal(sl_close(c, 0), SL_ERR_TIMED_OUT);
    assert_int_equal(r.n, 30);
}

/* A record larger than batch.size gets a batch of its own. */
static void test_client_batching_large_record_alone(void **state)
{
    (void)state;
    struct reports r = {0};
    const char *conf[] = {"batch.size", "200", "linger.ms", "1000"};
    sl_client *c = client_new(&r, conf, 4);
    struct slc_topic *t = topic_with(c, "t", 1, -1);
    static char big[5000];
    memset(big, 'x', sizeof(big));
    assert_int_equal(produce(c, "t", 0, NULL, "a", 1, 0), SL_OK);
    assert_int_equal(produce(c, "t", 0, NULL, big, sizeof(big), 1), SL_OK);
    assert_int_equal(produce(c, "t", 0, NULL, "b", 1, 2), SL_OK);
    struct slc_part *p = t->parts[0];
    assert_int_equal(queued_batches(p), 2);
    assert_int_equal(p->q_head->count, 1);
    assert_int_equal(p->q_head->next->count, 1);
    assert_true(p->q_head->next->wire_len > sizeof(big));
    assert_int_equal(p->open->count, 1);
    sl_close(c, 0);
}

/* Seals the open batch of p by linger at now_ms and expects it sent: p's
 * requests in flight grow by one. */
static void linger_sends(sl_client *c, struct slc_part *p, int64_t now_ms)
{
    uint32_t before = p->inflight;
    int64_t next = INT64_MAX;
    slc_producer_tick(c, now_ms, &next);
    assert_null(p->open);
    assert_int_equal(queued_batches(p), 0);
    assert_int_equal(p->inflight, before + 1);
}

static void test_client_batching_linger(void **state)
{
    (void)state;
    struct reports r = {0};
    const char *conf[] = {"linger.ms", "50"};
    sl_client *c = client_new(&r, conf, 2);
    int fd = tu_client_attach(c, 1, NULL, 0); /* a leader that takes requests */
    struct slc_topic *t = topic_with(c, "t", 1, 1);
    struct slc_part *p = t->parts[0];
    assert_int_equal(produce(c, "t", 0, NULL, "v", 1, 0), SL_OK);
    assert_non_null(p->open);
    int64_t opened = p->open->opened_ms;
    int64_t next = INT64_MAX;
    slc_producer_tick(c, opened + 49, &next);
    assert_non_null(p->open);
    assert_int_equal(next, opened + 50);
    assert_int_equal(produce(c, "t", 0, NULL, "w", 1, 1), SL_OK);
    assert_int_equal(p->open->count, 2);
    linger_sends(c, p, opened + 50);
    /* Up to 5 requests in flight, each lingered batch goes at once. */
    for (uint32_t i = 1; i < SLC_INFLIGHT_PER_PARTITION_MAX; i++) {
        assert_int_equal(produce(c, "t", 0, NULL, "x", 1, 2), SL_OK);
        linger_sends(c, p, p->open->opened_ms + 50);
    }
    /* Then a lingered batch is not sealed to wait in the queue: it goes on
     * filling, and nothing asks to wake for it before an answer comes. */
    assert_int_equal(produce(c, "t", 0, NULL, "y", 1, 3), SL_OK);
    int64_t due = p->open->opened_ms + 50;
    next = INT64_MAX;
    slc_producer_tick(c, due + 10, &next);
    assert_non_null(p->open);
    assert_int_equal(queued_batches(p), 0);
    assert_true(next > due + 10);
    assert_int_equal(produce(c, "t", 0, NULL, "z", 1, 4), SL_OK);
    assert_int_equal(p->open->count, 2);
    /* A flush seals without waiting. */
    c->flushing = true;
    next = INT64_MAX;
    slc_producer_tick(c, due + 10, &next);
    c->flushing = false;
    assert_null(p->open);
    assert_int_equal(queued_batches(p), 1);
    assert_int_equal(p->q_head->count, 2);
    /* Without a leader a lingered batch waits open as well. */
    struct slc_topic *u = topic_with(c, "u", 1, -1);
    assert_int_equal(produce(c, "u", 0, NULL, "a", 1, 5), SL_OK);
    next = INT64_MAX;
    slc_producer_tick(c, u->parts[0]->open->opened_ms + 60, &next);
    assert_non_null(u->parts[0]->open);
    assert_int_equal(queued_batches(u->parts[0]), 0);
    close(fd);
    sl_close(c, 0);
}

static void test_client_batching_sticky_and_keyed(void **state)
{
    (void)state;
    struct reports r = {0};
    const char *conf[] = {"batch.size", "1000", "linger.ms", "1000"};
    sl_client *c = client_new(&r, conf, 4);
    struct slc_topic *t = topic_with(c, "t", 4, 1);
    char value[91];
    memset(value, 'v', 90);
    /* Keyless: 9 records fill one batch in one partition, then it moves. */
    assert_int_equal(produce(c, "t", SL_PARTITION_ANY, NULL, value, 90, 0), SL_OK);
    int32_t first = t->sticky;
    for (int i = 1; i < 9; i++) {
        assert_int_equal(produce(c, "t", SL_PARTITION_ANY, NULL, value, 90, 0), SL_OK);
        assert_int_equal(t->sticky, first);
    }
    assert_int_equal(queued_batches(t->parts[first]), 1);
    assert_int_equal(produce(c, "t", SL_PARTITION_ANY, NULL, value, 90, 0), SL_OK);
    assert_int_not_equal(t->sticky, first);
    /* Keyed: where Java's client would put them, batch or no batch. */
    for (int i = 0; i < 200; i++) {
        char key[16];
        snprintf(key, sizeof(key), "key-%d", i);
        assert_int_equal(produce(c, "t", SL_PARTITION_ANY, key, "v", 1, 1000 + i), SL_OK);
        struct slc_part *want =
            t->parts[slc_partition_of_key(SLC_PARTITIONER_MURMUR2, key, strlen(key), 4)];
        /* Its last record: in the open batch, or in the one it just filled. */
        const struct slc_batch *b = want->open != NULL ? want->open : want->q_tail;
        assert_non_null(b);
        assert_int_equal((uintptr_t)b->msgs[b->count - 1].opaque, 1000 + i);
    }
    sl_close(c, 0);
}

static void test_client_batching_crc32_partitioner(void **state)
{
    (void)state;
    struct reports r = {0};
    const char *conf[] = {"partitioner", "crc32", "linger.ms", "1000"};
    sl_client *c = client_new(&r, conf, 4);
    struct slc_topic *t = topic_with(c, "t", 7, 1);
    /* librdkafka 0048: crc32("hejsan") = 0xd077037e. */
    assert_int_equal(produce(c, "t", SL_PARTITION_ANY, "hejsan", "v", 1, 0), SL_OK);
    assert_non_null(t->parts[0xd077037eu % 7]->open);
    sl_close(c, 0);
}

static void test_client_batching_pending_until_metadata(void **state)
{
    (void)state;
    struct reports r = {0};
    const char *conf[] = {"linger.ms", "1000"};
    sl_client *c = client_new(&r, conf, 2);
    for (int i = 0; i < 5; i++) {
        char key[16];
        snprintf(key, sizeof(key), "k%d", i);
        assert_int_equal(produce(c, "later", SL_PARTITION_ANY, key, "v", 1, (uintptr_t)i), SL_OK);
    }
    assert_int_equal(produce(c, "later", 7, NULL, "v", 1, 99), SL_OK); /* no such partition */
    assert_int_equal(c->pending_count, 6);
    assert_int_equal(sl_queue_len(c), 6);
    struct slc_topic *t = slc_topic_get(c, "later", 5, false);
    assert_int_equal(slc_topic_set_partitions(c, t, 4, slc_now_ms()), 0);
    slc_place_pending(c, t, slc_now_ms());
    assert_int_equal(c->pending_count, 0);
    assert_int_equal(slc_dispatch(c), 1);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.d[0].err, SL_ERR_UNKNOWN_PARTITION);
    assert_int_equal((uintptr_t)r.d[0].msg_opaque, 99);
    uint32_t placed = 0;
    for (int32_t i = 0; i < 4; i++) {
        placed += t->parts[i]->open != NULL ? t->parts[i]->open->count : 0;
    }
    assert_int_equal(placed, 5);
    assert_int_equal(sl_queue_len(c), 5);
    /* Now that the count is known, sl_produce refuses a bad partition itself. */
    assert_int_equal(produce(c, "later", 4, NULL, "v", 1, 0), SL_ERR_UNKNOWN_PARTITION);
    sl_close(c, 0);
}

static void test_client_batching_queue_bounds(void **state)
{
    (void)state;
    struct reports r = {0};
    const char *conf[] = {"queue.buffering.max.messages",
                          "5",
                          "queue.buffering.max.kbytes",
                          "1",
                          "message.max.bytes",
                          "1000"};
    sl_client *c = client_new(&r, conf, 6);
    topic_with(c, "t", 1, -1);
    static char v[1001];
    assert_int_equal(produce(c, "bad/name", 0, NULL, v, 1, 0), SL_ERR_INVALID_ARG);
    sl_header bad = {NULL, "x", 1};
    sl_msg m = {.topic = "t", .partition = 0, .headers = &bad, .header_count = 1};
    assert_int_equal(sl_produce(c, &m), SL_ERR_INVALID_ARG);
    m = (sl_msg){.topic = "t", .partition = -2};
    assert_int_equal(sl_produce(c, &m), SL_ERR_INVALID_ARG);
    assert_int_equal(produce(c, "t", 0, NULL, v, 1001, 0), SL_ERR_MSG_SIZE_TOO_LARGE);
    assert_int_equal(produce(c, "t", 0, NULL, v, 1000, 0), SL_OK);
    assert_int_equal(produce(c, "t", 0, NULL, v, 100, 0), SL_ERR_QUEUE_FULL); /* 1100 > 1024 */
    for (int i = 0; i < 4; i++) {
        assert_int_equal(produce(c, "t", 0, NULL, v, 1, 0), SL_OK);
    }
    assert_int_equal(produce(c, "t", 0, NULL, v, 1, 0), SL_ERR_QUEUE_FULL); /* 5 messages */
    assert_int_equal(sl_queue_len(c), 5);
    assert_int_equal(sl_close(c, 0), SL_ERR_TIMED_OUT);
    assert_int_equal(r.n, 5);
}

static void test_client_batching_delivery_timeout(void **state)
{
    (void)state;
    struct reports r = {0};
    const char *conf[] = {"delivery.timeout.ms", "1000", "request.timeout.ms", "500",
                          "linger.ms",           "5"};
    sl_client *c = client_new(&r, conf, 6);
    struct slc_topic *t = topic_with(c, "t", 2, -1);
    assert_int_equal(produce(c, "t", 0, NULL, "a", 1, 1), SL_OK);
    int64_t enq = t->parts[0]->open->oldest_enq_ms;
    int64_t next = INT64_MAX;
    c->flushing = true; /* sealed, queued: no leader to take it */
    slc_producer_tick(c, enq + 10, &next);
    c->flushing = false;
    assert_int_equal(queued_batches(t->parts[0]), 1);
    assert_int_equal(produce(c, "t", 1, NULL, "b", 1, 2), SL_OK);
    next = INT64_MAX;
    slc_producer_tick(c, enq + 999, &next);
    assert_int_equal(slc_dispatch(c), 0);
    assert_true(next <= enq + 1000);
    /* Both the queued batch and the open one (b was produced within a few
     * ms of a, lingered, and without a leader stayed open) have waited
     * their 1000 ms. */
    slc_producer_tick(c, enq + 1000 + 100, &next);
    assert_int_equal(slc_dispatch(c), 2);
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(r.d[i].err, SL_ERR_MSG_TIMED_OUT);
        assert_int_equal(r.d[i].offset, -1);
        assert_int_equal((uintptr_t)r.d[i].msg_opaque, (uintptr_t)r.d[i].partition + 1);
    }
    assert_int_equal(sl_queue_len(c), 0);
    assert_int_equal(sl_close(c, 0), SL_OK);
    assert_int_equal(r.n, 2);
}

static void test_client_batching_zstd_round_trip(void **state)
{
    (void)state;
    struct reports r = {0};
    const char *conf[] = {"compression.type", "zstd", "compression.level", "5",
                          "linger.ms",        "1000"};
    sl_client *c = client_new(&r, conf, 6);
    struct slc_topic *t = topic_with(c, "t", 1, -1);
    enum { N = 300 };
    for (int i = 0; i < N; i++) {
        char key[16];
        char value[200];
        int vlen = snprintf(value, sizeof(value), "value %d, repeated: %0120d", i, i % 7);
        snprintf(key, sizeof(key), "key-%d", i);
        sl_header h[2] = {{"origin", "unit", 4}, {"nothing", NULL, 0}};
        sl_msg m = {.topic = "t",
                    .partition = 0,
                    .key = i % 5 == 0 ? NULL : key,
                    .key_len = strlen(key),
                    .value = i % 11 == 0 ? NULL : value,
                    .value_len = (size_t)vlen,
                    .headers = h,
                    .header_count = i % 2 == 0 ? 2 : 0,
                    .timestamp = TS + i};
        assert_int_equal(sl_produce(c, &m), SL_OK);
    }
    slc_part_seal(c, t->parts[0]);
    const struct slc_batch *b = t->parts[0]->q_head;
    assert_non_null(b);
    assert_null(b->next);
    /* Compressed on the producer's compression thread: in the queue at once,
     * sendable once handed back. */
    assert_non_null(c->compressor);
    slc_compressor_wait(c);
    assert_false(b->compressing);
    assert_int_equal(b->zerr, 0);
    struct batch_header h;
    assert_int_equal(batch_validate(b->wire, b->wire_len, BATCH_CHECK_FULL, 0, &h, NULL), 0);
    assert_int_equal(h.attributes & BATCH_ATTR_COMPRESSION_MASK, BATCH_COMPRESSION_ZSTD);
    assert_int_equal(h.record_count, N);
    assert_int_equal(h.first_timestamp, TS);
    assert_int_equal(h.max_timestamp, TS + N - 1);
    assert_true(b->wire_len < b->encoded_bytes / 4); /* it did compress */
    struct buf plain;
    buf_init(&plain, 1u << 20);
    assert_int_equal(decompress_zstd(b->wire + BATCH_HEADER_BYTES, b->wire_len - BATCH_HEADER_BYTES,
                                     1u << 20, &plain),
                     0);
    assert_int_equal(plain.len, b->encoded_bytes - BATCH_HEADER_BYTES);
    struct batch_record_header slots[4];
    struct batch_record_iter it;
    batch_record_iter_init_records(&it, plain.data, plain.len, &h, slots, 4);
    for (int i = 0; i < N; i++) {
        struct batch_record rec;
        assert_int_equal(batch_record_iter_next(&it, &rec), 1);
        char key[16];
        char value[200];
        int vlen = snprintf(value, sizeof(value), "value %d, repeated: %0120d", i, i % 7);
        snprintf(key, sizeof(key), "key-%d", i);
        assert_int_equal(rec.offset_delta, i);
        assert_int_equal(rec.timestamp, TS + i);
        if (i % 5 == 0) {
            assert_int_equal(rec.key_len, -1);
        } else {
            assert_int_equal(rec.key_len, (int32_t)strlen(key));
            assert_memory_equal(rec.key, key, strlen(key));
        }
        if (i % 11 == 0) {
            assert_int_equal(rec.value_len, -1);
        } else {
            assert_int_equal(rec.value_len, vlen);
            assert_memory_equal(rec.value, value, (size_t)vlen);
        }
        assert_int_equal(rec.header_count, i % 2 == 0 ? 2 : 0);
        if (i % 2 == 0) {
            assert_int_equal(rec.headers[0].key_len, 6);
            assert_memory_equal(rec.headers[0].key, "origin", 6);
            assert_memory_equal(rec.headers[0].value, "unit", 4);
            assert_int_equal(rec.headers[1].value_len, -1);
        }
    }
    buf_deinit(&plain);
    sl_close(c, 0);
}

/* Without and with the compression thread holding batches at close. */
static void close_reports_all(const char *compression)
{
    struct reports r = {0};
    const char *conf[] = {"batch.size",       "200",      "linger.ms", "1000",
                          "compression.type", compression};
    sl_client *c = client_new(&r, conf, 6);
    topic_with(c, "t", 3, -1);
    for (uintptr_t i = 0; i < 50; i++) {
        assert_int_equal(produce(c, "t", (int32_t)(i % 3), NULL, "0123456789", 10, i), SL_OK);
    }
    assert_int_equal(produce(c, "unknown-yet", SL_PARTITION_ANY, NULL, "x", 1, 50), SL_OK);
    assert_int_equal(sl_close(c, 0), SL_ERR_TIMED_OUT);
    assert_int_equal(r.n, 51);
    bool seen[51] = {false};
    for (size_t i = 0; i < r.n; i++) {
        assert_int_equal(r.d[i].err, SL_ERR_CLOSED_UNSENT);
        uintptr_t id = (uintptr_t)r.d[i].msg_opaque;
        assert_true(id <= 50 && !seen[id]);
        seen[id] = true;
    }
}

static void test_client_batching_close_reports_all(void **state)
{
    (void)state;
    close_reports_all("none");
    close_reports_all("zstd");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_client_batching_boundaries),
        cmocka_unit_test(test_client_batching_large_record_alone),
        cmocka_unit_test(test_client_batching_linger),
        cmocka_unit_test(test_client_batching_sticky_and_keyed),
        cmocka_unit_test(test_client_batching_crc32_partitioner),
        cmocka_unit_test(test_client_batching_pending_until_metadata),
        cmocka_unit_test(test_client_batching_queue_bounds),
        cmocka_unit_test(test_client_batching_delivery_timeout),
        cmocka_unit_test(test_client_batching_zstd_round_trip),
        cmocka_unit_test(test_client_batching_close_reports_all),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
