/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Tests of the partition log: round trips across segment rolls, group commit,
 * lookups by offset and time, retention, recovery (torn tails, corruption),
 * failure handling through the fault backend. The behaviour tests run once
 * over each real ring backend (io_uring, thread pool).
 */
#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/assert.h"
#include "common/bytes.h"
#include "common/crc32c.h"
#include "proto/batch.h"
#include "storage/log.h"
#include "tests/lib/logfix.h"
#include "tests/lib/testutil.h"

#define MIB (1u << 20)

static enum ring_backend backend = RING_URING;

static int use_uring(void **state)
{
    (void)state;
    backend = RING_URING;
    return 0;
}

static int use_threads(void **state)
{
    (void)state;
    backend = RING_THREADS;
    return 0;
}

static long file_size(const char *dir, const char *name)
{
    char path[1024];
    struct stat st;
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

/* Appends `count` batches (offset-derived), one at a time; returns the end. */
static int64_t append_many(struct logfix *f, struct log *log, int count, int records,
                           uint32_t value_max)
{
    struct buf b;
    buf_init(&b, 4 * MIB);
    for (int i = 0; i < count; i++) {
        int64_t next = log_end_offset(log);
        buf_reset(&b);
        logfix_batch(&b, next, records, 1000000 + next, value_max);
        int64_t offset = -1;
        assert_int_equal(logfix_append(f, log, &b, &offset), 0);
        assert_int_equal(offset, next);
    }
    buf_deinit(&b);
    return log_end_offset(log);
}

/* ----------------------------------------------------------- round trips */

static void test_log_append_read_across_rolls(void **state)
{
    (void)state;
    struct logfix f;
    logfix_init(&f, "roundtrip", backend, 4 * MIB);
    f.config.segment_bytes = 64u << 10;
    struct log *log = logfix_open(&f);
    assert_non_null(log);
    int64_t end = append_many(&f, log, 300, 3, 6000);
    assert_int_equal(end, 900);
    assert_true(log_segment_count(log) > 5);
    assert_int_equal(log_durable_offset(log), 900);
    assert_int_equal(logfix_verify(&f, log, 3, 1000000, 6000), 300);
    /* Offsets inside a batch return the batch holding them. */
    struct buf out;
    buf_init(&out, 4 * MIB);
    assert_true(logfix_read(&f, log, 451, 1, &out) > 0);
    struct batch_header h;
    assert_int_equal(batch_validate(out.data, out.len, BATCH_CHECK_FULL, 0, &h, NULL), 0);
    assert_int_equal(h.base_offset, 450);
    buf_reset(&out);
    assert_int_equal(logfix_read(&f, log, 900, 1, &out), 0);
    assert_int_equal(logfix_read(&f, log, 901, 1, &out), -ERANGE);
    assert_int_equal(log_close(log), 0);

    /* Reopened from a clean shutdown: same content, appends continue. */
    log = logfix_open(&f);
    assert_non_null(log);
    assert_int_equal(log_end_offset(log), 900);
    assert_int_equal(append_many(&f, log, 10, 3, 6000), 930);
    assert_int_equal(logfix_verify(&f, log, 3, 1000000, 6000), 310);
    assert_int_equal(log_close(log), 0);
    buf_deinit(&out);
    logfix_deinit(&f);
}

/* A non-empty segment older than segment.ms rolls at the next append. */
static void test_log_rolls_on_segment_ms(void **state)
{
    (void)state;
    struct logfix f;
    logfix_init(&f, "segment_ms", backend, 4 * MIB);
    f.config.segment_ms = 40;
    struct log *log = logfix_open(&f);
    assert_non_null(log);
    append_many(&f, log, 3, 1, 100); /* well inside 40 ms: one segment */
    assert_int_equal(log_segment_count(log), 1);
    usleep(60 * 1000);
    ev_now_update(f.loop);
    append_many(&f, log, 1, 1, 100);
    assert_int_equal(log_segment_count(log), 2);
    assert_int_equal(logfix_verify(&f, log, 1, 1000000, 100), 4);
    assert_int_equal(log_close(log), 0);
    logfix_deinit(&f);
}

/* Reads of data evicted from the batch cache go to the disk. */
static void test_log_read_from_disk_after_eviction(void **state)
{
    (void)state;
    struct logfix f;
    logfix_init(&f, "evict", backend, 256u << 10); /* four 64 KiB buffers */
    struct log *log = logfix_open(&f);
    assert_non_null(log);
    append_many(&f, log, 200, 2, 3000);
    assert_true(log_shard_cached_bytes(f.shard) <= (256u << 10));
    assert_int_equal(logfix_verify(&f, log, 2, 1000000, 3000), 200);
    assert_int_equal(log_close(log), 0);
    logfix_deinit(&f);
}

struct counter {
    int acked;
    int failed;
    int last_status;
    int64_t offsets[1024];
};

static void count_cb(void *opaque, int status, int64_t offset)
{
    struct counter *c = opaque;
    if (status == 0) {
        c->offsets[c->acked++] = offset;
    } else {
        c->failed++;
        c->last_status = status;
    }
}

/* What pipe_cb checks of each acknowledgement. */
struct pipe {
    struct log *log;
    int64_t next; /* the offset the next acknowledgement must carry */
    int acked;
    int wrong; /* acknowledgements out of order, failed, or above the durable end */
};

static void pipe_cb(void *opaque, int status, int64_t offset)
{
    struct pipe *p = opaque;
    if (status != 0 || offset != p->next || offset >= log_durable_offset(p->log)) {
        p->wrong++;
    }
    p->next = offset + 1;
    p->acked++;
}

/* Appends arriving turn after turn on a real backend, as from producers with
 * requests in flight: one append per loop turn, up to 32 outstanding (whether
 * a write then overlaps an earlier fdatasync depends on the device's timing;
 * test_log_write_overlaps_held_sync forces it). A backlog past 128 KiB, when
 * the device's timing lets one build, goes out in cut writes
 * (test_log_backlog_cut_at_batches forces and shows them). Every
 * append is acknowledged once, in order, only below the durable end; the
 * durable end never moves back; everything is there after a clean close and
 * reopen. */
static void test_log_pipelined_appends(void **state)
{
    (void)state;
    enum { BATCHES = 600, OUTSTANDING = 32 };
    struct logfix f;
    logfix_init(&f, "pipeline", backend, 16 * MIB);
    f.config.write_max_bytes = 128u << 10;
    struct log *log = logfix_open(&f);
    assert_non_null(log);
    struct pipe p = {.log = log};
    struct buf b;
    buf_init(&b, MIB);
    int64_t durable = 0;
    for (int i = 0; i < BATCHES; i++) {
        buf_reset(&b);
        logfix_batch(&b, i, 1, 1000000 + i, 60000); /* up to 60 KB: real writes */
        assert_int_equal(log_append(log, b.data, b.len, 0, pipe_cb, &p, NULL), 0);
        do {
            ev_run(f.loop, EVRUN_NOWAIT);
            assert_true(log_durable_offset(log) >= durable);
            durable = log_durable_offset(log);
        } while (i + 1 - p.acked >= OUTSTANDING);
    }
    while (p.acked < BATCHES) {
        ev_run(f.loop, EVRUN_ONCE);
        assert_true(log_durable_offset(log) >= durable);
        durable = log_durable_offset(log);
    }
    assert_int_equal(p.wrong, 0);
    assert_int_equal(log_durable_offset(log), BATCHES);
    assert_int_equal(log_close(log), 0);
    log = logfix_open(&f);
    assert_non_null(log);
    assert_int_equal(log_end_offset(log), BATCHES);
    assert_int_equal(logfix_verify(&f, log, 1, 1000000, 60000), BATCHES);
    assert_int_equal(log_close(log), 0);
    buf_deinit(&b);
    logfix_deinit(&f);
}

/* Idle partitions do not pin write buffers: many partitions, each with a
 * partial last block, share a shard of a few buffers. */
static void test_log_many_partitions_small_memory(void **state)
{
    (void)state;
    enum { LOGS = 300 };
    struct logfix f;
    logfix_init(&f, "partitions", backend, 512u << 10); /* eight 64 KiB buffers */
    static struct log *logs[LOGS];
    char base[512];
    snprintf(base, sizeof(base), "%s", f.dir);
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < LOGS; i++) {
            snprintf(f.dir, sizeof(f.dir), "%.400s-%d", base, i);
            if (round != 1) {
                logs[i] = logfix_open(&f);
                assert_non_null(logs[i]);
            }
            append_many(&f, logs[i], 2, 1, 700);
        }
        for (int i = 0; i < LOGS && round != 0; i++) {
            snprintf(f.dir, sizeof(f.dir), "%.400s-%d", base, i);
            assert_int_equal(logfix_verify(&f, logs[i], 1, 1000000, 700), 2 * (round + 1));
            if (round == 2) {
                assert_int_equal(log_close(logs[i]), 0);
            }
        }
        for (int i = 0; i < LOGS && round == 1; i++) {
            assert_int_equal(log_close(logs[i]), 0); /* reopened in the next round */
        }
    }
    snprintf(f.dir, sizeof(f.dir), "%s", base);
    logfix_deinit(&f);
}

/* A log on the fault ring whose first append (batch 0, which reserves the
 * segment's space) is done; b is a 1 MiB buffer for the test's batches.
 * write_max_bytes: storage.write.max.bytes, or 0 for the default. Batch n
 * has timestamp 1000000 + n and values up to 100 bytes (logfix_verify). */
static struct log *fault_log_primed(struct logfix *f, const char *name, struct buf *b,
                                    uint64_t write_max_bytes)
{
    logfix_init(f, name, RING_FAULT, 8 * MIB);
    if (write_max_bytes != 0) {
        f->config.write_max_bytes = write_max_bytes;
    }
    struct log *log = logfix_open(f);
    assert_non_null(log);
    buf_init(b, MIB);
    logfix_batch(b, 0, 1, 1000000, 100);
    assert_int_equal(logfix_append(f, log, b, NULL), 0);
    return log;
}

/* Appends made in one loop iteration share one write and one fdatasync. */
static void test_log_group_commit_one_sync(void **state)
{
    (void)state;
    struct logfix f;
    struct buf b;
    struct log *log = fault_log_primed(&f, "group", &b, 0);
    uint64_t syncs = ring_fault_fsyncs(f.ring);
    uint64_t writes = ring_fault_writes(f.ring);
    struct counter c = {0};
    for (int i = 0; i < 32; i++) {
        buf_reset(&b);
        logfix_batch(&b, 1 + i, 1, 5, 2000);
        assert_int_equal(log_append(log, b.data, b.len, 0, count_cb, &c, NULL), 0);
    }
    while (c.acked < 32) {
        ev_run(f.loop, EVRUN_ONCE);
    }
    assert_int_equal(ring_fault_fsyncs(f.ring) - syncs, 1);
    assert_int_equal(ring_fault_writes(f.ring) - writes, 1);
    for (int i = 0; i < 32; i++) {
        assert_int_equal(c.offsets[i], 1 + i); /* acknowledged in order */
    }
    assert_int_equal(log_close(log), 0);
    buf_deinit(&b);
    logfix_deinit(&f);
}

/* Runs the loop a few turns without blocking: a fault ring's completions
 * come back on the turn after their submission. */
static void turns(struct logfix *f, int n)
{
    for (int i = 0; i < n; i++) {
        ev_run(f->loop, EVRUN_NOWAIT);
    }
}

/* An fdatasync slow to complete (held by the fault ring) does not hold up
 * the next write of the segment: up to 4 writes run ahead of their syncs;
 * nothing is acknowledged before a sync that began after its write
 * completed; once the syncs complete, everything is acknowledged in order. */
static void test_log_write_overlaps_held_sync(void **state)
{
    (void)state;
    struct logfix f;
    struct buf b;
    struct log *log = fault_log_primed(&f, "overlap", &b, 0);
    struct ring_fault_plan plan = {.fsync_hold = true};
    assert_int_equal(ring_fault_set(f.ring, &plan), 0);
    uint64_t writes = ring_fault_writes(f.ring);
    uint64_t syncs = ring_fault_fsyncs(f.ring);
    struct counter c = {0};
    for (int i = 1; i <= 6; i++) {
        buf_reset(&b);
        logfix_batch(&b, i, 1, 5, 2000);
        assert_int_equal(log_append(log, b.data, b.len, 0, count_cb, &c, NULL), 0);
        turns(&f, 4);
        /* Each append got its own write and sync, up to 4 syncs in flight. */
        uint64_t expected = (uint64_t)(i < 4 ? i : 4);
        assert_int_equal(ring_fault_writes(f.ring) - writes, expected);
        assert_int_equal(ring_fault_fsyncs(f.ring) - syncs, expected);
        assert_int_equal(c.acked, 0);
        assert_int_equal(log_durable_offset(log), 1);
        assert_int_equal(log_end_offset(log), 1 + i);
    }
    plan.fsync_hold = false;
    assert_int_equal(ring_fault_set(f.ring, &plan), 0);
    while (c.acked < 6) {
        ev_run(f.loop, EVRUN_ONCE);
    }
    assert_int_equal(c.failed, 0);
    for (int i = 0; i < 6; i++) {
        assert_int_equal(c.offsets[i], 1 + i); /* in order */
    }
    assert_int_equal(log_durable_offset(log), 7);
    /* Appends 5 and 6 waited for a free slot: one more write covered both. */
    assert_int_equal(ring_fault_writes(f.ring) - writes, 5);
    assert_int_equal(log_close(log), 0);
    buf_deinit(&b);
    logfix_deinit(&f);
}

/* Fails the log's next-but-one write with ENOSPC, appends batches 1..count
 * (values up to value_max) in one loop turn, and runs the loop until each is
 * acknowledged or failed. ends[i], when given, is the log's size after batch
 * i + 1. */
static void append_until_enospc(struct logfix *f, struct log *log, struct buf *b, int count,
                                uint32_t value_max, struct counter *c, uint64_t *ends)
{
    struct ring_fault_plan plan = {.write_fail_at = ring_fault_writes(f->ring) + 2,
                                   .write_fail_err = -ENOSPC};
    assert_int_equal(ring_fault_set(f->ring, &plan), 0);
    uint64_t pos = log_size_bytes(log);
    for (int i = 1; i <= count; i++) {
        buf_reset(b);
        logfix_batch(b, i, 1, 1000000 + i, value_max);
        assert_int_equal(log_append(log, b->data, b->len, 0, count_cb, c, NULL), 0);
        pos += b->len;
        if (ends != NULL) {
            ends[i - 1] = pos;
        }
    }
    while (c->acked + c->failed < count) {
        ev_run(f->loop, EVRUN_ONCE);
    }
    assert_int_equal(ring_fault_set(f->ring, &(struct ring_fault_plan){0}), 0);
}

/* A backlog larger than storage.write.max.bytes goes out in several writes,
 * each cut at the end of a batch, so the first write's sync acknowledges whole
 * appends before the rest of the backlog is on disk. Shown exactly by failing
 * the second write with ENOSPC: the batches that fit the first write's 64 KiB
 * are acknowledged by its sync, the ones after them are rolled back, and the
 * log takes appends again. */
static void test_log_backlog_cut_at_batches(void **state)
{
    (void)state;
    enum { BATCHES = 12, VALUE_MAX = 20000 };
    struct logfix f;
    struct buf b;
    struct log *log = fault_log_primed(&f, "cut", &b, 64u << 10);
    /* The backlog stays under 4 x 64 KiB, so the first write ends at the last
     * batch within 64 KiB of the block where it starts. */
    uint64_t limit = SL_ALIGN_DOWN(log_size_bytes(log), 4096) + f.config.write_max_bytes;
    uint64_t ends[BATCHES];
    struct counter c = {0};
    append_until_enospc(&f, log, &b, BATCHES, VALUE_MAX, &c, ends);
    int first_write = 0;
    while (first_write < BATCHES && ends[first_write] <= limit) {
        first_write++;
    }
    assert_true(first_write >= 1 && first_write < BATCHES);
    assert_int_equal(c.acked, first_write);
    for (int i = 0; i < first_write; i++) {
        assert_int_equal(c.offsets[i], 1 + i);
    }
    assert_int_equal(c.last_status, -ENOSPC);
    assert_int_equal(log_end_offset(log), 1 + first_write);
    assert_int_equal(log_durable_offset(log), 1 + first_write);
    buf_reset(&b);
    logfix_batch(&b, 1 + first_write, 1, 1000000 + 1 + first_write, VALUE_MAX);
    assert_int_equal(logfix_append(&f, log, &b, NULL), 0);
    assert_int_equal(log_close(log), 0);
    log = logfix_open(&f);
    assert_non_null(log);
    assert_int_equal(log_end_offset(log), 2 + first_write);
    assert_int_equal(log_close(log), 0);
    buf_deinit(&b);
    logfix_deinit(&f);
}

/* A cut write puts nothing past its cut on disk. Its last block also holds
 * the first batches after the cut; written as they were in memory, they were
 * synced with it, and when the next write failed with ENOSPC and rolled them
 * back (failing them to their producers), a crash brought them back. */
static void test_log_cut_rollback_stays_rolled_back(void **state)
{
    (void)state;
    enum { BATCHES = 200 };
    struct logfix f;
    struct buf b;
    struct log *log = fault_log_primed(&f, "cut_rollback", &b, 4096);
    struct counter c = {0};
    append_until_enospc(&f, log, &b, BATCHES, 100, &c, NULL);
    assert_true(c.acked > 0 && c.failed > 0);
    assert_int_equal(log_end_offset(log), 1 + c.acked);
    assert_int_equal(ring_fault_power_loss(f.ring, 0), 0);
    log_abandon(log);
    logfix_restart(&f, RING_URING, 8 * MIB);
    log = logfix_open(&f);
    assert_non_null(log);
    assert_int_equal(log_end_offset(log), 1 + c.acked);
    assert_int_equal(logfix_verify(&f, log, 1, 1000000, 100), 1 + c.acked);
    assert_int_equal(log_close(log), 0);
    buf_deinit(&b);
    logfix_deinit(&f);
}

/* A fallocate that finds the disk full while an earlier write's fdatasync is
 * in flight: that write's append is acknowledged once its sync completes, and
 * only the append that needed the space fails. */
static void test_log_fallocate_enospc_waits_for_syncs(void **state)
{
    (void)state;
    struct logfix f;
    logfix_init(&f, "fallocate_enospc", RING_FAULT, 8 * MIB);
    f.config.preallocate_bytes = 4096; /* every write past a block reserves first */
    struct log *log = logfix_open(&f);
    assert_non_null(log);
    struct buf b;
    buf_init(&b, MIB);
    struct ring_fault_plan plan = {.fsync_hold = true};
    assert_int_equal(ring_fault_set(f.ring, &plan), 0);
    struct counter c = {0};
    logfix_batch(&b, 0, 1, 1000000, 3000);
    assert_int_equal(log_append(log, b.data, b.len, 0, count_cb, &c, NULL), 0);
    uint64_t writes = ring_fault_writes(f.ring);
    while (ring_fault_writes(f.ring) == writes) {
        ev_run(f.loop, EVRUN_ONCE); /* written; its sync is held */
    }
    turns(&f, 2);
    plan.enospc = true;
    assert_int_equal(ring_fault_set(f.ring, &plan), 0);
    buf_reset(&b);
    logfix_batch(&b, 1, 1, 1000001, 6000);
    while (b.len < 4096) {
        buf_reset(&b);
        logfix_batch(&b, 1, 2, 1000001, 6000);
    }
    assert_int_equal(log_append(log, b.data, b.len, 0, count_cb, &c, NULL), 0);
    turns(&f, 4);
    assert_int_equal(c.acked + c.failed, 0); /* the rollback waits for the held sync */
    plan = (struct ring_fault_plan){0};
    assert_int_equal(ring_fault_set(f.ring, &plan), 0);
    while (c.acked + c.failed < 2) {
        ev_run(f.loop, EVRUN_ONCE);
    }
    assert_int_equal(c.acked, 1);
    assert_int_equal(c.offsets[0], 0);
    assert_int_equal(c.failed, 1);
    assert_int_equal(c.last_status, -ENOSPC);
    assert_int_equal(log_end_offset(log), 1);
    assert_int_equal(log_close(log), 0);
    buf_deinit(&b);
    logfix_deinit(&f);
}

/* Settings the log cannot honour are refused at open. */
static void test_log_config_refused(void **state)
{
    (void)state;
    struct logfix f;
    logfix_init(&f, "config", backend, 4 * MIB);
    int err = 0;
    f.config.write_max_bytes = 4095; /* below one block */
    assert_null(log_open(f.shard, f.dir, &f.config, &err));
    assert_int_equal(err, -EINVAL);
    log_config_default(&f.config);
    f.config.segment_bytes = 4095;
    assert_null(log_open(f.shard, f.dir, &f.config, &err));
    assert_int_equal(err, -EINVAL);
    log_config_default(&f.config);
    struct log *log = logfix_open(&f);
    assert_non_null(log);
    assert_int_equal(log_close(log), 0);
    logfix_deinit(&f);
}

/* A bad batch is refused and nothing of it is written. */
static void test_log_bad_batch_refused(void **state)
{
    (void)state;
    struct logfix f;
    logfix_init(&f, "bad", backend, 4 * MIB);
    f.config.max_message_bytes = 4096;
    struct log *log = logfix_open(&f);
    assert_non_null(log);
    append_many(&f, log, 3, 1, 100);
    struct buf b;
    buf_init(&b, MIB);
    logfix_batch(&b, 3, 1, 5, 100);
    b.data[b.len - 1] ^= 0x40; /* CRC no longer matches */
    assert_int_equal(log_append(log, b.data, b.len, 0, logfix_ack_cb, NULL, NULL), -EBADMSG);
    assert_int_equal(log_append(log, b.data, 30, 0, logfix_ack_cb, NULL, NULL), -EBADMSG);
    buf_reset(&b);
    logfix_batch(&b, 3, 4, 5, 4000);
    while (b.len <= 4096) {
        buf_reset(&b);
        logfix_batch(&b, 3, 8, 5, 4000);
    }
    assert_int_equal(log_append(log, b.data, b.len, 0, logfix_ack_cb, NULL, NULL), -EMSGSIZE);
    assert_int_equal(log_end_offset(log), 3);
    assert_int_equal(logfix_verify(&f, log, 1, 1000000, 100), 3);
    assert_int_equal(log_close(log), 0);
    buf_deinit(&b);
    logfix_deinit(&f);
}

/* -------------------------------------------------------------- lookups */

struct expect {
    int64_t base;
    int64_t last;
    int64_t ts[8];
};

/* 10k random offset lookups and 10k random timestamp lookups, checked
 * against a brute-force answer, before and after a reopen. */
static void test_log_random_lookups(void **state)
{
    (void)state;
    uint64_t rng = tu_seed("random_lookups");
    struct logfix f;
    logfix_init(&f, "lookups", backend, 2 * MIB);
    f.config.segment_bytes = 32u << 10;
    f.config.index_interval_bytes = 1024;
    struct log *log = logfix_open(&f);
    assert_non_null(log);
    enum { BATCHES = 1500 };
    static struct expect ex[BATCHES];
    struct buf b;
    buf_init(&b, MIB);
    int64_t ts = 1700000000000;
    for (int i = 0; i < BATCHES; i++) {
        int records = 1 + (int)(tu_rand(&rng) % 8);
        struct batch_record recs[8];
        uint8_t value[300];
        memset(value, i & 0xff, sizeof(value));
        for (int r = 0; r < records; r++) {
            ts += (int64_t)(tu_rand(&rng) % 3); /* repeats allowed, never backwards */
            ex[i].ts[r] = ts;
            recs[r] = (struct batch_record){.timestamp = ts,
                                            .key_len = -1,
                                            .value = value,
                                            .value_len = (int32_t)(tu_rand(&rng) % 300)};
        }
        struct batch_meta meta = {.producer_id = -1, .producer_epoch = -1, .base_sequence = -1};
        buf_reset(&b);
        assert_int_equal(batch_encode(&b, &meta, recs, (size_t)records), 0);
        int64_t offset;
        assert_int_equal(logfix_append(&f, log, &b, &offset), 0);
        ex[i].base = offset;
        ex[i].last = offset + records - 1;
    }
    int64_t end = log_end_offset(log);
    struct buf out;
    buf_init(&out, 4 * MIB);
    for (int round = 0; round < 2; round++) {
        for (int q = 0; q < 10000; q++) {
            int64_t target = (int64_t)(tu_rand(&rng) % (uint64_t)end);
            buf_reset(&out);
            assert_true(logfix_read(&f, log, target, 1, &out) > 0);
            struct batch_header h;
            assert_int_equal(batch_header_decode(out.data, out.len, &h), 0);
            assert_true(h.base_offset <= target && target <= batch_last_offset(&h));
        }
        for (int q = 0; q < 10000; q++) {
            int64_t first = ex[0].ts[0];
            int64_t target = first - 5 + (int64_t)(tu_rand(&rng) % (uint64_t)(ts - first + 10));
            int64_t want = -1;
            int64_t want_ts = -1;
            for (int i = 0; i < BATCHES && want < 0; i++) {
                for (int64_t o = ex[i].base; o <= ex[i].last; o++) {
                    if (ex[i].ts[o - ex[i].base] >= target) {
                        want = o;
                        want_ts = ex[i].ts[o - ex[i].base];
                        break;
                    }
                }
            }
            int64_t got = -1;
            int64_t got_ts = -1;
            int rc = log_offset_for_time(log, target, &got, &got_ts);
            if (want < 0) {
                assert_int_equal(rc, -ENOENT);
            } else {
                assert_int_equal(rc, 0);
                assert_int_equal(got, want);
                assert_int_equal(got_ts, want_ts);
            }
        }
        assert_int_equal(log_close(log), 0);
        log = logfix_open(&f); /* the second round uses indexes read from files */
        assert_non_null(log);
    }
    assert_int_equal(log_close(log), 0);
    buf_deinit(&b);
    buf_deinit(&out);
    logfix_deinit(&f);
}

/* ------------------------------------------------------------ retention */

static int count_logs(const char *dir)
{
    int n = 0;
    char path[1024];
    for (int64_t base = 0; base < 100000; base++) {
        snprintf(path, sizeof(path), "%s/%020lld.log", dir, (long long)base);
        n += access(path, F_OK) == 0;
    }
    return n;
}

static void test_log_retention(void **state)
{
    (void)state;
    struct logfix f;
    logfix_init(&f, "retention", backend, 4 * MIB);
    f.config.segment_bytes = 8u << 10;
    struct log *log = logfix_open(&f);
    assert_non_null(log);
    append_many(&f, log, 200, 1, 1000);
    unsigned before = log_segment_count(log);
    assert_true(before > 8);
    /* retention.ms judged by each segment's largest timestamp: all of these
     * are in 1970, so every sealed segment goes, never the active one. */
    struct log_config c = *log_config_of(log);
    c.retention_bytes = 64u << 10;
    c.retention_ms = -1;
    log_set_config(log, &c);
    int removed = log_enforce_retention(log, 0);
    assert_true(removed > 0);
    assert_true(log_size_bytes(log) >= (64u << 10));
    assert_true(log_size_bytes(log) - (8u << 10) < (64u << 10));
    int64_t start = log_start_offset(log);
    assert_true(start > 0);
    struct buf out;
    buf_init(&out, MIB);
    assert_int_equal(logfix_read(&f, log, start - 1, 100, &out), -ERANGE);
    assert_true(logfix_read(&f, log, start, 100, &out) > 0);
    c.retention_ms = 1000;
    log_set_config(log, &c);
    log_enforce_retention(log, 1000000 + 200 + 1001 + 1000000);
    assert_int_equal(log_segment_count(log), 1);
    assert_int_equal(log_end_offset(log), 200);
    ev_run(f.loop, EVRUN_NOWAIT);
    while (ring_in_flight(f.ring) > 0) {
        ev_run(f.loop, EVRUN_ONCE);
    }
    assert_int_equal(count_logs(f.dir), 1); /* files unlinked through the ring */
    assert_int_equal(log_close(log), 0);
    log = logfix_open(&f);
    assert_non_null(log);
    assert_true(log_start_offset(log) > start);
    assert_int_equal(log_end_offset(log), 200);
    append_many(&f, log, 2, 1, 1000);
    assert_int_equal(log_close(log), 0);
    buf_deinit(&out);
    logfix_deinit(&f);
}

/* log_delete_below: whole segments below the offset go, never one holding
 * it, never the active one; the start moves and survives a reopen. */
static void test_log_delete_below(void **state)
{
    (void)state;
    struct logfix f;
    logfix_init(&f, "delete_below", backend, 4 * MIB);
    f.config.segment_bytes = 8u << 10;
    struct log *log = logfix_open(&f);
    assert_non_null(log);
    append_many(&f, log, 200, 1, 1000);
    assert_true(log_segment_count(log) > 8);
    assert_int_equal(log_delete_below(log, 0), 0);
    assert_int_equal(log_start_offset(log), 0);
    int removed = log_delete_below(log, 100);
    assert_true(removed > 0);
    int64_t start = log_start_offset(log);
    assert_true(start > 0 && start <= 100); /* the segment holding 100 stays */
    struct buf out;
    buf_init(&out, MIB);
    assert_int_equal(logfix_read(&f, log, start - 1, 100, &out), -ERANGE);
    assert_true(logfix_read(&f, log, 100, 100, &out) > 0);
    assert_true(log_delete_below(log, INT64_MAX) > 0);
    assert_int_equal(log_segment_count(log), 1);
    assert_int_equal(log_end_offset(log), 200);
    int64_t kept = log_start_offset(log);
    assert_int_equal(log_close(log), 0);
    log = logfix_open(&f);
    assert_non_null(log);
    assert_int_equal(log_start_offset(log), kept);
    assert_int_equal(log_end_offset(log), 200);
    buf_deinit(&out);
    assert_int_equal(log_close(log), 0);
    logfix_deinit(&f);
}

/* ------------------------------------------------------------- recovery */

static void copy_file(const char *from, const char *to)
{
    uint8_t *data = NULL;
    long n = tu_read_file(from, &data);
    assert_true(n >= 0);
    int fd = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, (size_t)n), n);
    close(fd);
    free(data);
}

/* A crash after an acknowledged but not yet checkpointed batch, whose bytes
 * are then cut at every position: recovery keeps everything before it, drops
 * the torn batch, and the log takes appends again. */
static void test_log_recovery_truncate_every_byte(void **state)
{
    (void)state;
    struct logfix f;
    logfix_init(&f, "torn", backend, 4 * MIB);
    struct log *log = logfix_open(&f);
    assert_non_null(log);
    append_many(&f, log, 20, 2, 300);
    assert_int_equal(log_close(log), 0);
    log = logfix_open(&f);
    struct buf b;
    buf_init(&b, MIB);
    logfix_batch(&b, 40, 2, 1000040, 300);
    int64_t last_base = 40;
    assert_int_equal(logfix_append(&f, log, &b, NULL), 0);
    uint64_t end = log_size_bytes(log);
    uint64_t batch_start = end - b.len;
    log_abandon(log); /* kill -9: no checkpoint, no marker */

    char seg[1024];
    char saved[1100];
    char cp[1024];
    char cp_saved[1100];
    snprintf(seg, sizeof(seg), "%s/00000000000000000000.log", f.dir);
    snprintf(saved, sizeof(saved), "%s.saved", seg);
    snprintf(cp, sizeof(cp), "%s/recovery-checkpoint", f.dir);
    snprintf(cp_saved, sizeof(cp_saved), "%s.saved", cp);
    copy_file(seg, saved);
    copy_file(cp, cp_saved);
    for (uint64_t cut = batch_start; cut <= end; cut++) {
        copy_file(saved, seg);
        copy_file(cp_saved, cp);
        assert_int_equal(truncate(seg, (off_t)cut), 0);
        log = logfix_open(&f);
        assert_non_null(log);
        assert_false(log_needs_repair(log));
        assert_int_equal(log_end_offset(log), cut == end ? last_base + 2 : last_base);
        if (cut == end || cut % 37 == 0) {
            assert_int_equal(logfix_verify(&f, log, 2, 1000000, 300), cut == end ? 21 : 20);
        }
        log_abandon(log);
    }
    /* After the cut the log continues where the torn batch began. */
    copy_file(saved, seg);
    copy_file(cp_saved, cp);
    assert_int_equal(truncate(seg, (off_t)(end - 1)), 0);
    log = logfix_open(&f);
    assert_int_equal(logfix_append(&f, log, &b, NULL), 0);
    assert_int_equal(logfix_verify(&f, log, 2, 1000000, 300), 21);
    assert_int_equal(log_close(log), 0);
    buf_deinit(&b);
    logfix_deinit(&f);
}

/* A bad CRC below the flushed point is corruption: reported, not cut away. */
static void test_log_corruption_below_flushed_point(void **state)
{
    (void)state;
    struct logfix f;
    logfix_init(&f, "corrupt", backend, 4 * MIB);
    struct log *log = logfix_open(&f);
    assert_non_null(log);
    append_many(&f, log, 30, 1, 500);
    assert_int_equal(log_close(log), 0);
    char path[1024];
    snprintf(path, sizeof(path), "%s/clean-shutdown", f.dir);
    assert_int_equal(unlink(path), 0); /* as if it had crashed after the checkpoint */
    long size = file_size(f.dir, "00000000000000000000.log");
    /* Flip a byte inside the last batch's CRC-covered part: past the last
     * index entry, so inside the tail recovery scans, yet below the flushed
     * point the checkpoint recorded. The torn-tail test cuts the same place
     * when it is not yet covered by the checkpoint, and expects a truncation. */
    snprintf(path, sizeof(path), "%s/00000000000000000000.log", f.dir);
    uint8_t *data = NULL;
    assert_int_equal(tu_read_file(path, &data), size);
    long pos = 0;
    for (int i = 0; i < 29; i++) {
        pos += BATCH_LOG_OVERHEAD + (long)be32_get(data + pos + BATCH_OFF_LENGTH);
    }
    int fd = open(path, O_WRONLY);
    uint8_t flipped = data[pos + 40] ^ 0x01;
    assert_int_equal(pwrite(fd, &flipped, 1, pos + 40), 1);
    close(fd);
    free(data);

    log = logfix_open(&f);
    assert_non_null(log);
    assert_true(log_needs_repair(log));
    assert_int_equal(log_error(log), -EUCLEAN);
    assert_int_equal(log_end_offset(log), 29); /* nothing after the corruption is served */
    assert_int_equal(file_size(f.dir, "00000000000000000000.log"), size); /* nothing cut */
    struct buf b;
    buf_init(&b, MIB);
    logfix_batch(&b, 29, 1, 5, 10);
    assert_int_equal(log_append(log, b.data, b.len, 0, logfix_ack_cb, NULL, NULL), -EUCLEAN);
    assert_int_equal(logfix_verify(&f, log, 1, 1000000, 500), 29);
    assert_int_equal(log_close(log), 0);
    assert_int_equal(file_size(f.dir, "00000000000000000000.log"), size);
    buf_deinit(&b);
    logfix_deinit(&f);
}

/* A crash between a roll and the seal of the older segment leaves its
 * preallocated zeros in place and the checkpoint inside it: the segment is
 * whole, and the newer one must survive. */
static void test_log_recovery_unsealed_rolled_segment(void **state)
{
    (void)state;
    struct logfix f;
    logfix_init(&f, "unsealed", backend, 4 * MIB);
    f.config.segment_bytes = 16u << 10;
    struct log *log = logfix_open(&f);
    assert_non_null(log);
    append_many(&f, log, 40, 1, 1000);
    int64_t end = log_end_offset(log);
    assert_true(log_segment_count(log) >= 2);
    assert_int_equal(log_close(log), 0);
    char path[1024];
    snprintf(path, sizeof(path), "%s/clean-shutdown", f.dir);
    assert_int_equal(unlink(path), 0);
    snprintf(path, sizeof(path), "%s/00000000000000000000.log", f.dir);
    long size = file_size(f.dir, "00000000000000000000.log");
    assert_int_equal(truncate(path, size + 64 * 1024), 0); /* the unsealed zeros */
    uint8_t cp[32] = {0};
    be32_put(cp, 0x534c4350u);
    be32_put(cp + 4, 1);
    be64_put(cp + 8, 0);
    be64_put(cp + 16, (uint64_t)size / 2);
    be32_put(cp + 28, crc32c(0, cp, 28));
    snprintf(path, sizeof(path), "%s/recovery-checkpoint", f.dir);
    int fd = open(path, O_WRONLY);
    assert_int_equal(pwrite(fd, cp, sizeof(cp), 0), 32);
    close(fd);
    log = logfix_open(&f);
    assert_non_null(log);
    assert_false(log_needs_repair(log));
    assert_int_equal(log_end_offset(log), end);
    assert_int_equal(file_size(f.dir, "00000000000000000000.log"), size);
    assert_int_equal(logfix_verify(&f, log, 1, 1000000, 1000), 40);
    assert_int_equal(log_close(log), 0);
    logfix_deinit(&f);
}

/* A burst of appends moves the recovery checkpoint by bytes, long before its
 * timer would, so a crash leaves little to scan. */
static void test_log_checkpoint_by_bytes(void **state)
{
    (void)state;
    struct logfix f;
    logfix_init(&f, "cp_bytes", backend, 4 * MIB);
    f.config.checkpoint_interval_ms = 3600 * 1000;
    f.config.checkpoint_bytes = 64u << 10;
    struct log *log = logfix_open(&f);
    assert_non_null(log);
    append_many(&f, log, 100, 1, 4000); /* about 200 KiB */
    log_abandon(log);
    char path[1024];
    snprintf(path, sizeof(path), "%s/recovery-checkpoint", f.dir);
    uint8_t *cp = NULL;
    assert_int_equal(tu_read_file(path, &cp), 32);
    assert_int_equal(be32_get(cp + 28), crc32c(0, cp, 28));
    assert_true(be64_get(cp + 16) >= (64u << 10)); /* flushed position recorded */
    free(cp);
    logfix_deinit(&f);
}

/* Indexes deleted or garbled are rebuilt; lookups stay right. */
static void test_log_rebuilds_indexes(void **state)
{
    (void)state;
    struct logfix f;
    logfix_init(&f, "reindex", backend, 4 * MIB);
    f.config.segment_bytes = 16u << 10;
    struct log *log = logfix_open(&f);
    assert_non_null(log);
    append_many(&f, log, 60, 1, 1000);
    assert_int_equal(log_close(log), 0);
    char path[1024];
    snprintf(path, sizeof(path), "%s/00000000000000000000.index", f.dir);
    assert_int_equal(unlink(path), 0);
    snprintf(path, sizeof(path), "%s/00000000000000000000.timeindex", f.dir);
    int fd = open(path, O_WRONLY);
    assert_int_equal(write(fd, "garbage!garbage!", 16), 16);
    close(fd);
    log = logfix_open(&f);
    assert_non_null(log);
    assert_int_equal(logfix_verify(&f, log, 1, 1000000, 1000), 60);
    int64_t off;
    int64_t ts;
    assert_int_equal(log_offset_for_time(log, 1000000 + 3, &off, &ts), 0);
    assert_int_equal(off, 3);
    assert_int_equal(log_close(log), 0);
    logfix_deinit(&f);
}

/* Flush policies interval and never acknowledge after the write. */
static void test_log_flush_policies(void **state)
{
    (void)state;
    enum flush_policy policies[] = {FLUSH_INTERVAL, FLUSH_NEVER};
    for (size_t i = 0; i < 2; i++) {
        struct logfix f;
        logfix_init(&f, "policy", RING_FAULT, 4 * MIB);
        f.config.flush_policy = policies[i];
        f.config.flush_interval_ms = 20;
        struct log *log = logfix_open(&f);
        assert_non_null(log);
        uint64_t syncs = ring_fault_fsyncs(f.ring);
        append_many(&f, log, 5, 1, 100);
        assert_int_equal(ring_fault_fsyncs(f.ring), syncs); /* acked without a sync */
        assert_int_equal(log_durable_offset(log), 5);
        assert_int_equal(log_flushed_offset(log), 0);
        if (policies[i] == FLUSH_INTERVAL) {
            ev_tstamp until = ev_now(f.loop) + 0.2;
            while (log_flushed_offset(log) < 5 && ev_now(f.loop) < until) {
                ev_run(f.loop, EVRUN_ONCE);
            }
            assert_int_equal(log_flushed_offset(log), 5);
        }
        assert_int_equal(log_close(log), 0);
        logfix_deinit(&f);
    }
}

/* ---------------------------------------------------------------- faults */

/* After a simulated power loss no acknowledged append is missing, whether a
 * loop turn's appends went out in one write or in cut ones. */
static void test_log_power_loss_keeps_acknowledged(void **state)
{
    (void)state;
    uint64_t rng = tu_seed("power_loss");
    for (int round = 0; round < 12; round++) {
        struct logfix f;
        logfix_init(&f, "power", RING_FAULT, 4 * MIB);
        f.config.segment_bytes = 32u << 10;
        if (round % 2 == 1) {
            /* Cut writes of a few batches each, cut inside a block (the
             * limit is not block-aligned): batches past a cut share its
             * last block. */
            f.config.write_max_bytes = 5000;
        }
        struct log *log = logfix_open(&f);
        assert_non_null(log);
        struct buf b;
        buf_init(&b, MIB);
        static struct counter c;
        memset(&c, 0, sizeof(c));
        int total = 40 + (int)(tu_rand(&rng) % 200);
        int sent = 0;
        int64_t next = 0;
        while (sent < total) {
            int burst = 1 + (int)(tu_rand(&rng) % 6);
            for (int i = 0; i < burst && sent < total; i++, sent++) {
                buf_reset(&b);
                logfix_batch(&b, next, 1, 1000000 + next, 1500);
                assert_int_equal(log_append(log, b.data, b.len, 0, count_cb, &c, NULL), 0);
                next++;
            }
            ev_run(f.loop, EVRUN_ONCE);
        }
        int acked = c.acked;
        assert_int_equal(ring_fault_power_loss(f.ring, tu_rand(&rng) | 1), 0);
        log_abandon(log);
        logfix_restart(&f, RING_URING, 4 * MIB);
        log = logfix_open(&f);
        assert_non_null(log);
        assert_false(log_needs_repair(log));
        assert_true(log_end_offset(log) >= acked);
        assert_int_equal(logfix_verify(&f, log, 1, 1000000, 1500), log_end_offset(log));
        assert_int_equal(log_close(log), 0);
        buf_deinit(&b);
        logfix_deinit(&f);
    }
}

/* An fsync that fails takes the log offline: nothing more is acknowledged,
 * pending appends fail, and the sync is never retried. */
static void test_log_fsync_eio_fails_everything(void **state)
{
    (void)state;
    struct logfix f;
    logfix_init(&f, "fsync_eio", RING_FAULT, 4 * MIB);
    struct log *log = logfix_open(&f);
    assert_non_null(log);
    append_many(&f, log, 3, 1, 100);
    struct ring_fault_plan plan = {.fsync_fail_at = ring_fault_fsyncs(f.ring) + 1,
                                   .fsync_fail_err = -EIO};
    assert_int_equal(ring_fault_set(f.ring, &plan), 0);
    static struct counter c;
    memset(&c, 0, sizeof(c));
    struct buf b;
    buf_init(&b, MIB);
    for (int i = 0; i < 5; i++) {
        buf_reset(&b);
        logfix_batch(&b, 3 + i, 1, 5, 100);
        assert_int_equal(log_append(log, b.data, b.len, 0, count_cb, &c, NULL), 0);
    }
    while (c.acked + c.failed < 5) {
        ev_run(f.loop, EVRUN_ONCE);
    }
    assert_int_equal(c.acked, 0);
    assert_int_equal(c.failed, 5);
    assert_int_equal(c.last_status, -EIO);
    assert_int_equal(log_error(log), -EIO);
    assert_int_equal(log_durable_offset(log), 3);
    uint64_t syncs = ring_fault_fsyncs(f.ring);
    assert_int_equal(log_append(log, b.data, b.len, 0, count_cb, &c, NULL), -EIO);
    for (int i = 0; i < 5; i++) {
        ev_run(f.loop, EVRUN_NOWAIT);
    }
    assert_int_equal(ring_fault_fsyncs(f.ring), syncs); /* never retried */
    assert_int_equal(log_close(log), -EIO);
    buf_deinit(&b);
    logfix_deinit(&f);
}

static void test_log_write_eio_fails_everything(void **state)
{
    (void)state;
    struct logfix f;
    logfix_init(&f, "write_eio", RING_FAULT, 4 * MIB);
    struct log *log = logfix_open(&f);
    assert_non_null(log);
    append_many(&f, log, 3, 1, 100);
    struct ring_fault_plan plan = {.write_fail_at = ring_fault_writes(f.ring) + 1,
                                   .write_fail_err = -EIO};
    assert_int_equal(ring_fault_set(f.ring, &plan), 0);
    struct buf b;
    buf_init(&b, MIB);
    logfix_batch(&b, 3, 1, 5, 100);
    assert_int_equal(logfix_append(&f, log, &b, NULL), -EIO);
    assert_int_equal(log_append(log, b.data, b.len, 0, logfix_ack_cb, NULL, NULL), -EIO);
    assert_int_equal(log_close(log), -EIO);
    /* Reopened on a healthy disk, the acknowledged batches are all there. */
    logfix_restart(&f, backend, 4 * MIB);
    log = logfix_open(&f);
    assert_non_null(log);
    assert_int_equal(log_end_offset(log), 3);
    assert_int_equal(logfix_verify(&f, log, 1, 1000000, 100), 3);
    assert_int_equal(log_close(log), 0);
    buf_deinit(&b);
    logfix_deinit(&f);
}

/* Disk full fails appends with a retriable error; writing resumes after. */
static void test_log_enospc_then_resume(void **state)
{
    (void)state;
    struct logfix f;
    logfix_init(&f, "enospc", RING_FAULT, 4 * MIB);
    f.config.preallocate_bytes = 4096; /* every block needs new space */
    struct log *log = logfix_open(&f);
    assert_non_null(log);
    append_many(&f, log, 3, 1, 3000);
    struct ring_fault_plan plan = {.enospc = true};
    assert_int_equal(ring_fault_set(f.ring, &plan), 0);
    static struct counter c;
    memset(&c, 0, sizeof(c));
    struct buf b;
    buf_init(&b, MIB);
    for (int i = 0; i < 4; i++) {
        buf_reset(&b);
        logfix_batch(&b, 3 + i, 1, 1000000 + 3 + i, 3000);
        assert_int_equal(log_append(log, b.data, b.len, 0, count_cb, &c, NULL), 0);
    }
    while (c.acked + c.failed < 4) {
        ev_run(f.loop, EVRUN_ONCE);
    }
    assert_int_equal(c.failed, 4);
    assert_int_equal(c.last_status, -ENOSPC);
    assert_int_equal(log_error(log), 0); /* still online */
    assert_int_equal(log_end_offset(log), 3);
    plan.enospc = false;
    assert_int_equal(ring_fault_set(f.ring, &plan), 0);
    assert_int_equal(append_many(&f, log, 4, 1, 3000), 7);
    assert_int_equal(logfix_verify(&f, log, 1, 1000000, 3000), 7);
    assert_int_equal(log_close(log), 0);
    log = logfix_open(&f);
    assert_int_equal(logfix_verify(&f, log, 1, 1000000, 3000), 7);
    assert_int_equal(log_close(log), 0);
    buf_deinit(&b);
    logfix_deinit(&f);
}

static int count_fds(void)
{
    int n = 0;
    for (int fd = 0; fd < 4096; fd++) {
        n += fcntl(fd, F_GETFD) != -1;
    }
    return n;
}

/* Opening a log of many segments reads little per segment. */
static void test_log_open_many_segments(void **state)
{
    (void)state;
    struct logfix f;
    logfix_init(&f, "many", backend, 8 * MIB);
    f.config.segment_bytes = 4096;
    struct log *log = logfix_open(&f);
    assert_non_null(log);
    append_many(&f, log, 600, 1, 4000);
    assert_true(log_segment_count(log) >= 250);
    assert_int_equal(log_close(log), 0);
    log = logfix_open(&f);
    assert_non_null(log);
    assert_int_equal(log_end_offset(log), 600);
    int fds_before = count_fds();
    assert_int_equal(logfix_verify(&f, log, 1, 1000000, 4000), 600);
    /* Reading every old segment leaves no file descriptor behind. */
    assert_true(count_fds() <= fds_before + 2);
    assert_int_equal(log_close(log), 0);
    logfix_deinit(&f);
}

#define BOTH(t) cmocka_unit_test(t)

int main(void)
{
    const struct CMUnitTest backend_tests[] = {
        BOTH(test_log_append_read_across_rolls),
        BOTH(test_log_rolls_on_segment_ms),
        BOTH(test_log_read_from_disk_after_eviction),
        BOTH(test_log_many_partitions_small_memory),
        BOTH(test_log_bad_batch_refused),
        BOTH(test_log_config_refused),
        BOTH(test_log_random_lookups),
        BOTH(test_log_retention),
        BOTH(test_log_delete_below),
        BOTH(test_log_recovery_truncate_every_byte),
        BOTH(test_log_corruption_below_flushed_point),
        BOTH(test_log_rebuilds_indexes),
        BOTH(test_log_checkpoint_by_bytes),
        BOTH(test_log_recovery_unsealed_rolled_segment),
        BOTH(test_log_open_many_segments),
        BOTH(test_log_pipelined_appends),
    };
    const struct CMUnitTest fault_tests[] = {
        cmocka_unit_test(test_log_group_commit_one_sync),
        cmocka_unit_test(test_log_write_overlaps_held_sync),
        cmocka_unit_test(test_log_backlog_cut_at_batches),
        cmocka_unit_test(test_log_cut_rollback_stays_rolled_back),
        cmocka_unit_test(test_log_fallocate_enospc_waits_for_syncs),
        cmocka_unit_test(test_log_flush_policies),
        cmocka_unit_test(test_log_power_loss_keeps_acknowledged),
        cmocka_unit_test(test_log_fsync_eio_fails_everything),
        cmocka_unit_test(test_log_write_eio_fails_everything),
        cmocka_unit_test(test_log_enospc_then_resume),
    };
    int failed = 0;
    failed += cmocka_run_group_tests_name("log/uring", backend_tests, use_uring, NULL);
    failed += cmocka_run_group_tests_name("log/threads", backend_tests, use_threads, NULL);
    failed += cmocka_run_group_tests_name("log/fault", fault_tests, use_uring, NULL);
    return failed;
}
