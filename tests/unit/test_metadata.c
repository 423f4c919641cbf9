/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The metadata image and its records (replication/metadata.c), and the
 * single node's metadata log (broker/metalog.c): records apply as their
 * layout says, records that do not fit are skipped deterministically,
 * malformed ones are refused at every truncation, and a log written, closed
 * (or abandoned) and replayed builds the same image.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "broker/metalog.h"
#include "proto/batch.h"
#include "replication/metadata.h"
#include "tests/lib/logfix.h"
#include "tests/lib/testutil.h"

static const uint8_t id_a[16] = {1, 2, 3, 4, 5, 6, 0x47, 8, 0x89, 10, 11, 12, 13, 14, 15, 16};
static const uint8_t id_b[16] = {9, 9, 9, 9, 9, 9, 0x49, 9, 0x99, 9, 9, 9, 9, 9, 9, 9};

/* Applies the one record that put() wrote into b, then resets b. */
static int apply_buf(struct md_image *image, struct buf *b)
{
    int rc = md_apply(image, b->data, b->len);
    buf_reset(b);
    return rc;
}

static void test_metadata_topic_lifecycle(void **state)
{
    (void)state;
    struct md_image image;
    md_image_init(&image);
    struct buf b;
    buf_init(&b, 4096);
    assert_int_equal(md_put_topic(&b, "orders", 6, id_a, 12), 0);
    assert_int_equal(apply_buf(&image, &b), 1);
    struct md_topic *t = md_topic_find(&image, "orders", 6);
    assert_non_null(t);
    assert_string_equal(t->name, "orders");
    assert_int_equal(t->partitions, 12);
    assert_ptr_equal(md_topic_find_id(&image, id_a), t);
    assert_null(md_topic_find(&image, "order", 5));

    /* The same name under another id, or the same id under another name:
     * skipped, the image unchanged. */
    assert_int_equal(md_put_topic(&b, "orders", 6, id_b, 1), 0);
    assert_int_equal(apply_buf(&image, &b), 0);
    assert_int_equal(md_put_topic(&b, "other", 5, id_a, 1), 0);
    assert_int_equal(apply_buf(&image, &b), 0);
    assert_int_equal(image.topic_count, 1);
    assert_int_equal(image.skipped, 2);

    /* Overrides: set, replace, remove; an unknown topic's are skipped. */
    assert_int_equal(md_put_config(&b, "orders", 6, "retention.ms", 12, "1000", 4), 0);
    assert_int_equal(apply_buf(&image, &b), 1);
    assert_int_equal(md_put_config(&b, "orders", 6, "segment.bytes", 13, "8192", 4), 0);
    assert_int_equal(apply_buf(&image, &b), 1);
    assert_int_equal(md_put_config(&b, "orders", 6, "retention.ms", 12, "2000", 4), 0);
    assert_int_equal(apply_buf(&image, &b), 1);
    assert_string_equal(md_topic_config(t, "retention.ms"), "2000");
    assert_string_equal(md_topic_config(t, "segment.bytes"), "8192");
    assert_int_equal(md_put_config(&b, "orders", 6, "segment.bytes", 13, NULL, -1), 0);
    assert_int_equal(apply_buf(&image, &b), 1);
    assert_null(md_topic_config(t, "segment.bytes"));
    assert_int_equal(t->config_count, 1);
    assert_int_equal(md_put_config(&b, "nope", 4, "retention.ms", 12, "1", 1), 0);
    assert_int_equal(apply_buf(&image, &b), 0);

    /* Removal by id; an unknown id is skipped; the name is free again. */
    assert_int_equal(md_put_remove_topic(&b, id_b), 0);
    assert_int_equal(apply_buf(&image, &b), 0);
    assert_int_equal(md_put_remove_topic(&b, id_a), 0);
    assert_int_equal(apply_buf(&image, &b), 1);
    assert_int_equal(image.topic_count, 0);
    assert_int_equal(md_put_topic(&b, "orders", 6, id_b, 3), 0);
    assert_int_equal(apply_buf(&image, &b), 1);
    assert_int_equal(md_topic_find(&image, "orders", 6)->partitions, 3);
    assert_int_equal(md_topic_find(&image, "orders", 6)->config_count, 0);
    buf_deinit(&b);
    md_image_deinit(&image);
}

static void test_metadata_producer_ids_only_grow(void **state)
{
    (void)state;
    struct md_image image;
    md_image_init(&image);
    struct buf b;
    buf_init(&b, 64);
    assert_int_equal(md_put_producer_ids(&b, 1, 1000), 0);
    assert_int_equal(apply_buf(&image, &b), 1);
    assert_int_equal(md_put_producer_ids(&b, 1, 500), 0);
    assert_int_equal(apply_buf(&image, &b), 0);
    assert_int_equal(image.next_producer_id, 1000);
    assert_int_equal(md_put_producer_ids(&b, 1, 2000), 0);
    assert_int_equal(apply_buf(&image, &b), 1);
    assert_int_equal(image.next_producer_id, 2000);
    buf_deinit(&b);
    md_image_deinit(&image);
}

/* Every truncation of every kind of record is refused, never applied. */
static void test_metadata_malformed_refused(void **state)
{
    (void)state;
    struct buf recs[4];
    for (int i = 0; i < 4; i++) {
        buf_init(&recs[i], 4096);
    }
    assert_int_equal(md_put_topic(&recs[0], "t", 1, id_a, 1), 0);
    assert_int_equal(md_put_config(&recs[1], "t", 1, "retention.ms", 12, "5", 1), 0);
    assert_int_equal(md_put_remove_topic(&recs[2], id_a), 0);
    assert_int_equal(md_put_producer_ids(&recs[3], 1, 7), 0);
    for (int i = 0; i < 4; i++) {
        for (size_t len = 0; len < recs[i].len; len++) {
            struct md_image image;
            md_image_init(&image);
            struct buf t;
            buf_init(&t, 64);
            assert_int_equal(md_put_topic(&t, "t", 1, id_a, 1), 0);
            assert_int_equal(md_apply(&image, t.data, t.len), 1);
            buf_deinit(&t);
            assert_int_equal(md_apply(&image, recs[i].data, len), -EBADMSG);
            assert_int_equal(image.applied, 1);
            assert_int_equal(image.topic_count, 1);
            md_image_deinit(&image);
        }
    }
    /* Bad type, bad version, trailing bytes, zero id, zero partitions. */
    struct md_image image;
    md_image_init(&image);
    uint8_t bad_type[] = {99, 0};
    assert_int_equal(md_apply(&image, bad_type, sizeof(bad_type)), -EBADMSG);
    recs[3].data[1] = 1;
    assert_int_equal(md_apply(&image, recs[3].data, recs[3].len), -EBADMSG);
    recs[3].data[1] = 0;
    buf_put_u8(&recs[3], 0);
    assert_int_equal(md_apply(&image, recs[3].data, recs[3].len), -EBADMSG);
    static const uint8_t zero[16];
    struct buf z;
    buf_init(&z, 64);
    assert_int_equal(md_put_topic(&z, "t", 1, zero, 1), 0);
    assert_int_equal(md_apply(&image, z.data, z.len), -EBADMSG);
    buf_reset(&z);
    assert_int_equal(md_put_topic(&z, "t", 1, id_a, 0), 0);
    assert_int_equal(md_apply(&image, z.data, z.len), -EBADMSG);
    assert_int_equal(image.topic_count, 0);
    buf_deinit(&z);
    md_image_deinit(&image);
    for (int i = 0; i < 4; i++) {
        buf_deinit(&recs[i]);
    }
}

static void test_metadata_new_ids_are_v4_and_unique(void **state)
{
    (void)state;
    struct md_image image;
    md_image_init(&image);
    struct buf b;
    buf_init(&b, 4096);
    for (int i = 0; i < 200; i++) {
        uint8_t id[16];
        assert_int_equal(md_new_topic_id(&image, id), 0);
        assert_int_equal(id[6] >> 4, 4);
        assert_int_equal(id[8] >> 6, 2);
        char name[16];
        int n = snprintf(name, sizeof(name), "t%d", i);
        assert_int_equal(md_put_topic(&b, name, (size_t)n, id, 1), 0);
        assert_int_equal(apply_buf(&image, &b), 1); /* a duplicate id would be skipped */
    }
    assert_int_equal(image.topic_count, 200);
    buf_deinit(&b);
    md_image_deinit(&image);
}

/* ----------------------------------------------------------- metalog */

struct done {
    int status;
    bool fired;
};

static void done_cb(void *opaque, int status)
{
    struct done *d = opaque;
    d->status = status;
    d->fired = true;
}

static int applied_calls;

static void applied_cb(void *opaque, int replay)
{
    (void)opaque;
    (void)replay;
    applied_calls++;
}

/* A change of one topic with one override, committed and waited for. */
static void commit_topic(struct logfix *f, struct metalog *ml, const char *name, const uint8_t *id,
                         int32_t partitions, const char *retention)
{
    struct metalog_txn txn;
    metalog_txn_init(&txn);
    assert_int_equal(md_put_topic(&txn.bytes, name, strlen(name), id, partitions), 0);
    assert_int_equal(metalog_txn_mark(&txn), 0);
    assert_int_equal(md_put_config(&txn.bytes, name, strlen(name), "retention.ms", 12, retention,
                                   (int32_t)strlen(retention)),
                     0);
    assert_int_equal(metalog_txn_mark(&txn), 0);
    struct done d = {0};
    assert_int_equal(metalog_commit(ml, &txn, done_cb, &d), 0);
    metalog_txn_deinit(&txn);
    logfix_wait(f, &d.fired);
    assert_int_equal(d.status, 0);
}

static void commit_and_wait(struct logfix *f, struct metalog *ml, struct metalog_txn *txn)
{
    struct done d = {0};
    assert_int_equal(metalog_commit(ml, txn, done_cb, &d), 0);
    logfix_wait(f, &d.fired);
    assert_int_equal(d.status, 0);
    buf_reset(&txn->bytes);
    txn->count = 0;
}

static void test_metadata_log_replays_to_the_same_image(void **state)
{
    (void)state;
    struct logfix f;
    logfix_init(&f, "metadata_replay", RING_URING, 8u << 20);
    struct md_image image;
    md_image_init(&image);
    int err = 0;
    applied_calls = 0;
    struct metalog *ml = metalog_open(f.loop, f.shard, f.dir, &image, applied_cb, NULL, &err);
    assert_non_null(ml);
    assert_int_equal(image.topic_count, 0);
    commit_topic(&f, ml, "a", id_a, 4, "1000");
    commit_topic(&f, ml, "b", id_b, 2, "2000");
    assert_int_equal(applied_calls, 2);
    assert_int_equal(image.topic_count, 2);
    /* Several changes in one loop iteration: applied in commit order. */
    struct metalog_txn txn;
    metalog_txn_init(&txn);
    struct done d1 = {0}, d2 = {0};
    assert_int_equal(md_put_remove_topic(&txn.bytes, id_a), 0);
    assert_int_equal(metalog_txn_mark(&txn), 0);
    assert_int_equal(metalog_commit(ml, &txn, done_cb, &d1), 0);
    buf_reset(&txn.bytes);
    txn.count = 0;
    assert_int_equal(md_put_topic(&txn.bytes, "a", 1, id_b, 9), 0); /* id of b: skipped */
    assert_int_equal(metalog_txn_mark(&txn), 0);
    assert_int_equal(metalog_commit(ml, &txn, done_cb, &d2), 0);
    metalog_txn_deinit(&txn);
    logfix_wait(&f, &d2.fired);
    assert_true(d1.fired);
    assert_int_equal(image.topic_count, 1);
    assert_int_equal(image.skipped, 1);
    assert_int_equal(metalog_close(ml), 0);

    /* Replayed: the same image, and the replay calls the hook per batch. */
    struct md_image again;
    md_image_init(&again);
    applied_calls = 0;
    ml = metalog_open(f.loop, f.shard, f.dir, &again, applied_cb, NULL, &err);
    assert_non_null(ml);
    assert_int_equal(applied_calls, 4);
    assert_int_equal(again.topic_count, 1);
    struct md_topic *b = md_topic_find(&again, "b", 1);
    assert_non_null(b);
    assert_memory_equal(b->id, id_b, 16);
    assert_int_equal(b->partitions, 2);
    assert_string_equal(md_topic_config(b, "retention.ms"), "2000");
    assert_int_equal(again.skipped, 1);
    assert_int_equal(metalog_close(ml), 0);
    md_image_deinit(&again);
    md_image_deinit(&image);
    logfix_deinit(&f);
}

static void test_metadata_log_refuses_empty_and_oversized(void **state)
{
    (void)state;
    struct logfix f;
    logfix_init(&f, "metadata_refuse", RING_URING, 8u << 20);
    struct md_image image;
    md_image_init(&image);
    int err = 0;
    struct metalog *ml = metalog_open(f.loop, f.shard, f.dir, &image, NULL, NULL, &err);
    assert_non_null(ml);
    struct metalog_txn txn;
    metalog_txn_init(&txn);
    assert_int_equal(metalog_commit(ml, &txn, NULL, NULL), -EINVAL);
    for (int i = 0; i < METALOG_TXN_RECORDS_MAX; i++) {
        assert_int_equal(md_put_remove_topic(&txn.bytes, id_a), 0);
        assert_int_equal(metalog_txn_mark(&txn), 0);
    }
    assert_int_equal(metalog_txn_mark(&txn), -ENOBUFS);
    metalog_txn_deinit(&txn);
    assert_int_equal(metalog_close(ml), 0);
    md_image_deinit(&image);
    logfix_deinit(&f);
}

/* Past METALOG_COMPACT_BYTES at open, the image is written again and older
 * segments go: the log shrinks, and replays build the same image. */
static void test_metadata_log_compacts_at_open(void **state)
{
    (void)state;
    struct logfix f;
    logfix_init(&f, "metadata_compact", RING_URING, 16u << 20);
    struct md_image image;
    md_image_init(&image);
    int err = 0;
    struct metalog *ml = metalog_open(f.loop, f.shard, f.dir, &image, NULL, NULL, &err);
    assert_non_null(ml);
    char name[250];
    memset(name, 'n', sizeof(name) - 1);
    name[sizeof(name) - 1] = '\0';
    struct metalog_txn txn;
    metalog_txn_init(&txn);
    /* Churn: 32 topics created and removed per change, 8 kept for good. */
    int kept = 0;
    for (int round = 0; metalog_size_bytes(ml) <= METALOG_COMPACT_BYTES + (1u << 20); round++) {
        uint8_t ids[32][16];
        for (int i = 0; i < 32; i++) {
            snprintf(name, sizeof(name), "churn-%d-%d-%0200d", round, i, 0);
            assert_int_equal(md_new_topic_id(&image, ids[i]), 0);
            assert_int_equal(md_put_topic(&txn.bytes, name, strlen(name), ids[i], 1), 0);
            assert_int_equal(metalog_txn_mark(&txn), 0);
        }
        commit_and_wait(&f, ml, &txn);
        for (int i = 0; i < 32; i++) {
            if (round < 8 && i == 0) {
                kept++;
                continue;
            }
            assert_int_equal(md_put_remove_topic(&txn.bytes, ids[i]), 0);
            assert_int_equal(metalog_txn_mark(&txn), 0);
        }
        commit_and_wait(&f, ml, &txn);
    }
    metalog_txn_deinit(&txn);
    assert_int_equal((int)image.topic_count, kept);
    assert_int_equal(metalog_close(ml), 0);
    /* Reopened: compacted. */
    struct md_image again;
    md_image_init(&again);
    ml = metalog_open(f.loop, f.shard, f.dir, &again, NULL, NULL, &err);
    assert_non_null(ml);
    assert_true(metalog_size_bytes(ml) < 2 * METALOG_SEGMENT_BYTES);
    assert_int_equal(again.topic_count, image.topic_count);
    for (unsigned i = 0; i < image.topic_count; i++) {
        const struct md_topic *t = image.topics[i];
        const struct md_topic *u = md_topic_find(&again, t->name, strlen(t->name));
        assert_non_null(u);
        assert_memory_equal(u->id, t->id, 16);
    }
    assert_int_equal(metalog_close(ml), 0);
    /* And once more: the compacted log replays to the same image. */
    struct md_image third;
    md_image_init(&third);
    ml = metalog_open(f.loop, f.shard, f.dir, &third, NULL, NULL, &err);
    assert_non_null(ml);
    assert_int_equal(third.topic_count, image.topic_count);
    assert_int_equal(metalog_close(ml), 0);
    md_image_deinit(&third);
    md_image_deinit(&again);
    md_image_deinit(&image);
    logfix_deinit(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_metadata_topic_lifecycle),
        cmocka_unit_test(test_metadata_producer_ids_only_grow),
        cmocka_unit_test(test_metadata_malformed_refused),
        cmocka_unit_test(test_metadata_new_ids_are_v4_and_unique),
        cmocka_unit_test(test_metadata_log_replays_to_the_same_image),
        cmocka_unit_test(test_metadata_log_refuses_empty_and_oversized),
        cmocka_unit_test(test_metadata_log_compacts_at_open),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
