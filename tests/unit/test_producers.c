/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The idempotent producers' state machine (broker/producers.c): duplicates
 * inside the window, partial overlaps, gaps, epoch bumps and fencing, expiry,
 * eviction, and the snapshot + replay that carry the table over a restart,
 * including a snapshot taken past the end a crash left.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "broker/producers.h"
#include "proto/batch.h"
#include "proto/errors.h"
#include "tests/lib/logfix.h"
#include "tests/lib/testutil.h"

static const struct producers_config config = {.window = 5, .expiration_ms = 1000, .max = 3};

/* Records a batch of `count` records at `offset`; returns the next offset. */
static int64_t record(struct producers *ps, int64_t pid, int16_t epoch, int32_t seq, int32_t count,
                      int64_t offset, int64_t now)
{
    const struct producer_batch *dup = NULL;
    int32_t last = producers_last_seq(seq, count - 1);
    assert_int_equal(producers_check(ps, pid, epoch, seq, last, &dup), PRODUCERS_APPEND);
    struct producer_batch b = {seq, last, offset, offset + count - 1, now, NULL};
    assert_non_null(producers_record(ps, pid, epoch, &b, now));
    return offset + count;
}

static int check(const struct producers *ps, int64_t pid, int16_t epoch, int32_t seq, int32_t count,
                 const struct producer_batch **dup)
{
    const struct producer_batch *ignored;
    return producers_check(ps, pid, epoch, seq, producers_last_seq(seq, count - 1),
                           dup != NULL ? dup : &ignored);
}

static void test_producers_duplicates_in_window(void **state)
{
    (void)state;
    struct producers *ps = producers_new(&config, "t-0");
    int64_t off = 0;
    for (int32_t i = 0; i < 8; i++) {
        off = record(ps, 7, 0, i * 10, 10, off, 0);
    }
    /* The last five batches (seq 30..79) are answered with their offsets. */
    for (int32_t i = 3; i < 8; i++) {
        const struct producer_batch *dup = NULL;
        assert_int_equal(check(ps, 7, 0, i * 10, 10, &dup), PRODUCERS_DUPLICATE);
        assert_int_equal(dup->first_offset, i * 10);
        assert_int_equal(dup->last_offset, i * 10 + 9);
    }
    /* Older than the window: out of order, as Kafka says. */
    assert_int_equal(check(ps, 7, 0, 20, 10, NULL), -KAFKA_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER);
    /* A partial overlap (same start, other length) is not a duplicate. */
    assert_int_equal(check(ps, 7, 0, 70, 5, NULL), -KAFKA_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER);
    assert_int_equal(check(ps, 7, 0, 75, 10, NULL), -KAFKA_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER);
    /* A gap. */
    assert_int_equal(check(ps, 7, 0, 81, 1, NULL), -KAFKA_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER);
    /* The next one in sequence. */
    assert_int_equal(check(ps, 7, 0, 80, 3, NULL), PRODUCERS_APPEND);
    producers_free(ps);
}

static void test_producers_epochs(void **state)
{
    (void)state;
    struct producers *ps = producers_new(&config, "t-0");
    int64_t off = record(ps, 7, 3, 0, 5, 0, 0);
    off = record(ps, 7, 3, 5, 5, off, 0);
    /* Older epoch: fenced. */
    assert_int_equal(check(ps, 7, 2, 10, 1, NULL), -KAFKA_ERR_INVALID_PRODUCER_EPOCH);
    /* Newer epoch: must start at 0. */
    assert_int_equal(check(ps, 7, 4, 10, 1, NULL), -KAFKA_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER);
    off = record(ps, 7, 4, 0, 2, off, 0);
    /* The bump forgot the old epoch's batches; the old epoch is now fenced. */
    assert_int_equal(check(ps, 7, 3, 5, 5, NULL), -KAFKA_ERR_INVALID_PRODUCER_EPOCH);
    assert_int_equal(check(ps, 7, 4, 0, 2, NULL), PRODUCERS_DUPLICATE);
    assert_int_equal(check(ps, 7, 4, 2, 1, NULL), PRODUCERS_APPEND);
    /* An unknown producer is accepted at any sequence (Kafka 2.5+). */
    assert_int_equal(check(ps, 8, 0, 1234, 1, NULL), PRODUCERS_APPEND);
    /* Sequences wrap at INT32_MAX. */
    off = record(ps, 9, 0, INT32_MAX - 1, 3, off, 0);
    assert_int_equal(producers_last_seq(INT32_MAX - 1, 2), 0);
    assert_int_equal(check(ps, 9, 0, 1, 1, NULL), PRODUCERS_APPEND);
    (void)off;
    producers_free(ps);
}

static void test_producers_forget_failed_append(void **state)
{
    (void)state;
    struct producers *ps = producers_new(&config, "t-0");
    int64_t off = record(ps, 7, 0, 0, 5, 0, 0);
    off = record(ps, 7, 0, 5, 5, off, 0);
    /* Not the newest: kept. */
    producers_forget(ps, 7, 0, 0);
    assert_int_equal(check(ps, 7, 0, 0, 5, NULL), PRODUCERS_DUPLICATE);
    /* The newest failed: its retry is appended, not a duplicate. */
    producers_forget(ps, 7, 0, 5);
    assert_int_equal(check(ps, 7, 0, 5, 5, NULL), PRODUCERS_APPEND);
    assert_null(producers_find(ps, 7, 0, 5));
    assert_non_null(producers_find(ps, 7, 0, 0));
    producers_free(ps);
}

static void test_producers_expiry_and_eviction(void **state)
{
    (void)state;
    struct producers *ps = producers_new(&config, "t-0");
    record(ps, 1, 0, 0, 1, 0, 100);
    record(ps, 2, 0, 0, 1, 1, 200);
    record(ps, 3, 0, 0, 1, 2, 300);
    assert_int_equal(producers_count(ps), 3);
    /* At max (3): the idlest (1) is evicted for a new one. */
    record(ps, 4, 0, 0, 1, 3, 400);
    assert_int_equal(producers_count(ps), 3);
    assert_int_equal(check(ps, 1, 0, 5, 1, NULL), PRODUCERS_APPEND); /* unknown again */
    assert_int_equal(check(ps, 2, 0, 0, 1, NULL), PRODUCERS_DUPLICATE);
    /* One with an append in flight is never evicted. */
    producers_find(ps, 2, 0, 0)->inflight = ps;
    record(ps, 5, 0, 0, 1, 4, 500);
    assert_int_equal(check(ps, 2, 0, 0, 1, NULL), PRODUCERS_DUPLICATE);
    assert_int_equal(check(ps, 3, 0, 0, 1, NULL), PRODUCERS_APPEND); /* 3 went instead */
    producers_find(ps, 2, 0, 0)->inflight = NULL;
    /* Expiry: idle longer than 1000 ms. */
    producers_expire(ps, 1350);
    assert_int_equal(producers_count(ps), 2); /* 2 (200) gone; 4 (400) and 5 (500) stay */
    producers_expire(ps, 1600);
    assert_int_equal(producers_count(ps), 0);
    producers_free(ps);
}

/* ----------------------------------------------------- snapshot, replay */

/* Appends an idempotent batch of `count` records to the log. */
static void append_idempotent(struct logfix *f, struct log *log, int64_t pid, int16_t epoch,
                              int32_t seq, int count)
{
    struct batch_record recs[16];
    for (int i = 0; i < count; i++) {
        recs[i] = (struct batch_record){
            .timestamp = 1000 + i, .key_len = -1, .value = NULL, .value_len = -1};
    }
    struct batch_meta meta = {.producer_id = pid, .producer_epoch = epoch, .base_sequence = seq};
    struct buf b;
    buf_init(&b, 1 << 16);
    assert_int_equal(batch_encode(&b, &meta, recs, (size_t)count), 0);
    int64_t offset = -1;
    assert_int_equal(logfix_append(f, log, &b, &offset), 0);
    buf_deinit(&b);
}

static int count_snapshots(const char *dir)
{
    char cmd[1200];
    snprintf(cmd, sizeof(cmd), "ls %s | grep -c '\\.snapshot$'", dir);
    FILE *p = popen(cmd, "r");
    int n = 0;
    if (p != NULL && fscanf(p, "%d", &n) != 1) {
        n = 0;
    }
    if (p != NULL) {
        pclose(p);
    }
    return n;
}

static void test_producers_snapshot_and_replay(void **state)
{
    (void)state;
    struct logfix f;
    logfix_init(&f, "producers_snapshot", RING_URING, 8u << 20);
    struct log *log = logfix_open(&f);
    struct producers_config big = {.window = 5, .expiration_ms = 1000000, .max = 100};
    /* Batches 0..3 of producer 7, then a snapshot at offset 12, then more. */
    for (int32_t i = 0; i < 4; i++) {
        append_idempotent(&f, log, 7, 0, i * 3, 3);
    }
    struct producers *ps = producers_new(&big, "t-0");
    assert_int_equal(producers_load(ps, log, 0), 0); /* no snapshot: the whole log */
    assert_int_equal(check(ps, 7, 0, 9, 3, NULL), PRODUCERS_DUPLICATE);
    assert_int_equal(producers_snapshot(ps, f.dir, log_end_offset(log)), 0);
    producers_free(ps);
    append_idempotent(&f, log, 7, 0, 12, 3);
    append_idempotent(&f, log, 8, 2, 0, 2);
    /* Reloaded: the snapshot, then the two batches after it. */
    ps = producers_new(&big, "t-0");
    assert_int_equal(producers_load(ps, log, 0), 0);
    const struct producer_batch *dup = NULL;
    assert_int_equal(check(ps, 7, 0, 12, 3, &dup), PRODUCERS_DUPLICATE);
    assert_int_equal(dup->first_offset, 12);
    assert_int_equal(check(ps, 7, 0, 0, 3, &dup), PRODUCERS_DUPLICATE);
    assert_int_equal(dup->first_offset, 0);
    assert_int_equal(check(ps, 8, 2, 0, 2, NULL), PRODUCERS_DUPLICATE);
    assert_int_equal(check(ps, 8, 1, 2, 1, NULL), -KAFKA_ERR_INVALID_PRODUCER_EPOCH);
    assert_int_equal(check(ps, 7, 0, 15, 1, NULL), PRODUCERS_APPEND);
    /* A snapshot past the log's end (taken before a crash cut the tail)
     * is never used: it would claim batches the log does not hold. */
    assert_int_equal(producers_snapshot(ps, f.dir, 1000), 0);
    producers_free(ps);
    assert_int_equal(count_snapshots(f.dir), 2);
    ps = producers_new(&big, "t-0");
    assert_int_equal(producers_load(ps, log, 0), 0);
    assert_int_equal(check(ps, 7, 0, 12, 3, NULL), PRODUCERS_DUPLICATE);
    producers_free(ps);
    /* A corrupt snapshot is skipped: the log alone rebuilds the table. */
    char path[1200];
    snprintf(path, sizeof(path), "%s/%020d.snapshot", f.dir, 12);
    FILE *fp = fopen(path, "r+");
    assert_non_null(fp);
    fseek(fp, 20, SEEK_SET);
    fputc(0x5a, fp);
    fclose(fp);
    ps = producers_new(&big, "t-0");
    assert_int_equal(producers_load(ps, log, 0), 0);
    assert_int_equal(check(ps, 7, 0, 12, 3, NULL), PRODUCERS_DUPLICATE);
    assert_int_equal(check(ps, 7, 0, 0, 3, NULL), PRODUCERS_DUPLICATE);
    producers_free(ps);
    assert_int_equal(log_close(log), 0);
    logfix_deinit(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_producers_duplicates_in_window),
        cmocka_unit_test(test_producers_epochs),
        cmocka_unit_test(test_producers_forget_failed_append),
        cmocka_unit_test(test_producers_expiry_and_eviction),
        cmocka_unit_test(test_producers_snapshot_and_replay),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
