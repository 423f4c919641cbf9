/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Regression tests for bugs found in a review of the partition log
 * (storage/log.c, storage/segment.c). Each test reproduced its bug before the
 * fix. Tests whose bug ends in an assertion abort, or that need a mount
 * namespace, run their scenario in a forked child and check how it ended.
 */
#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/assert.h"
#include "common/bytes.h"
#include "proto/batch.h"
#include "storage/log.h"
#include "storage/ring.h"
#include "tests/lib/logfix.h"
#include "tests/lib/testutil.h"

#define MIB (1u << 20)

/* One uncompressed batch of `records` records of value_len bytes each, with
 * timestamps ts, ts + 1, ... */
static void make_batch(struct buf *out, int records, int32_t value_len, int64_t ts)
{
    static uint8_t value[1u << 16];
    struct batch_record recs[8];
    assert_true(records > 0 && records <= 8 && value_len <= (int32_t)sizeof(value));
    memset(value, 0x5a, sizeof(value));
    for (int i = 0; i < records; i++) {
        recs[i] = (struct batch_record){
            .timestamp = ts + i, .key_len = -1, .value = value, .value_len = value_len};
    }
    struct batch_meta meta = {.producer_id = -1, .producer_epoch = -1, .base_sequence = -1};
    buf_reset(out);
    assert_int_equal(batch_encode(out, &meta, recs, (size_t)records), 0);
}

static long file_size(const char *dir, const char *name)
{
    char path[1024];
    struct stat st;
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

/* Exit codes of a forked scenario. */
enum { CHILD_OK = 0, CHILD_FAILED = 1, CHILD_SKIP = 77 };

/* A check inside a forked scenario: cmocka's asserts must not run there. */
#define CHILD_CHECK(expr)                                                                          \
    do {                                                                                           \
        if (!(expr)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #expr);               \
            _exit(CHILD_FAILED);                                                                   \
        }                                                                                          \
    } while (0)

/* Runs fn in a child process; fails the test unless it exits with CHILD_OK. */
static void run_in_child(void (*fn)(void))
{
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        fn();
        _exit(CHILD_OK);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (WIFEXITED(status) && WEXITSTATUS(status) == CHILD_SKIP) {
        skip();
    }
    if (WIFSIGNALED(status)) {
        fail_msg("scenario killed by signal %d", WTERMSIG(status));
    }
    assert_int_equal(WEXITSTATUS(status), CHILD_OK);
}

/* ------------------------------------------------------------------ reads */

/*
 * A read whose first batch is larger than max_bytes and does not fit in the
 * first 64 KiB window must still return that batch whole. read_step computes
 * max_bytes - kept - window, which wraps when window > max_bytes, and asks for
 * the rest of the segment: with an output buffer that has room for the batch
 * but not for the segment, the read fails with -ENOBUFS (a consumer with a
 * small fetch size can then never get past this batch).
 */
static void test_log_read_first_batch_larger_than_max_bytes(void **state)
{
    (void)state;
    struct logfix f;
    logfix_init(&f, "review_bigread", RING_URING, 8 * MIB);
    f.config.segment_bytes = 4 * MIB;
    struct log *log = logfix_open(&f);
    assert_non_null(log);
    struct buf b;
    buf_init(&b, MIB);
    for (int i = 0; i < 4; i++) {
        make_batch(&b, 2, 50000, 1000 + i); /* about 100 KB each */
        assert_int_equal(logfix_append(&f, log, &b, NULL), 0);
    }
    size_t batch_bytes = b.len;
    struct buf out;
    buf_init(&out, batch_bytes + (16u << 10)); /* room for one batch, not for the segment */
    int n = logfix_read(&f, log, 0, 1, &out);
    assert_int_equal(n, (int)batch_bytes);
    buf_deinit(&out);
    buf_deinit(&b);
    assert_int_equal(log_close(log), 0);
    logfix_deinit(&f);
}

/* --------------------------------------------------------------- recovery */

/*
 * Zeros where a batch should start, below the flushed point of the last
 * segment, are corruption, like a bad CRC there. segment_scan stops at them
 * with status 0 ("the preallocated tail") and recover() takes that as a clean
 * end for the last segment: the log is silently cut below the checkpoint and
 * acknowledged batches are lost without a report.
 */
static void test_log_recovery_zeroed_batch_below_flushed_point(void **state)
{
    (void)state;
    struct logfix f;
    logfix_init(&f, "review_zeroed", RING_URING, 4 * MIB);
    struct log *log = logfix_open(&f);
    assert_non_null(log);
    struct buf b;
    buf_init(&b, MIB);
    for (int i = 0; i < 30; i++) {
        make_batch(&b, 1, 300, 1000 + i);
        assert_int_equal(logfix_append(&f, log, &b, NULL), 0);
    }
    assert_int_equal(log_close(log), 0); /* checkpoint: everything is flushed */
    char path[1024];
    snprintf(path, sizeof(path), "%s/clean-shutdown", f.dir);
    assert_int_equal(unlink(path), 0); /* as if it had crashed after the checkpoint */
    long size = file_size(f.dir, "00000000000000000000.log");
    /* Zero the framing (base offset, length) of the last batch: past the
     * last index entry, so inside the tail recovery scans, below P. */
    long pos = size - (long)b.len;
    snprintf(path, sizeof(path), "%s/00000000000000000000.log", f.dir);
    int fd = open(path, O_WRONLY);
    assert_true(fd >= 0);
    uint8_t zeros[BATCH_LOG_OVERHEAD] = {0};
    assert_int_equal(pwrite(fd, zeros, sizeof(zeros), pos), (ssize_t)sizeof(zeros));
    close(fd);

    log = logfix_open(&f);
    assert_non_null(log);
    assert_true(log_needs_repair(log));
    assert_int_equal(file_size(f.dir, "00000000000000000000.log"), size); /* nothing cut */
    assert_int_equal(log_close(log), 0);
    buf_deinit(&b);
    logfix_deinit(&f);
}

/*
 * After a crash the largest timestamp of the active segment must still be
 * known. trust_indexes starts it from the last time-index entry below the
 * scan's start, but the segment's maximum may have been reached after that
 * entry and before the start (entries are made only every
 * index.interval.bytes): with timestamps that go back, the maximum is lost,
 * and a lookup by a time only that batch reaches returns -ENOENT (and
 * retention.ms would judge the segment by a too small timestamp).
 */
static void test_log_recovery_keeps_max_timestamp(void **state)
{
    (void)state;
    struct logfix f;
    logfix_init(&f, "review_maxts", RING_URING, 4 * MIB);
    f.config.checkpoint_interval_ms = 1;
    struct log *log = logfix_open(&f);
    assert_non_null(log);
    struct buf b;
    buf_init(&b, MIB);
    for (int i = 0; i < 16; i++) {
        /* Batch 1 holds the largest timestamp; the others are older. */
        make_batch(&b, 1, 1000, i == 1 ? 5000 : 2000 + i);
        assert_int_equal(logfix_append(&f, log, &b, NULL), 0);
    }
    int64_t off = -1;
    int64_t ts = -1;
    assert_int_equal(log_offset_for_time(log, 4000, &off, &ts), 0);
    assert_int_equal(off, 1);
    /* Wait for a checkpoint that covers every batch, then crash. */
    char path[1024];
    snprintf(path, sizeof(path), "%s/recovery-checkpoint", f.dir);
    for (int spins = 0;; spins++) {
        assert_true(spins < 1000);
        uint8_t *cp = NULL;
        long n = tu_read_file(path, &cp);
        bool covered = n == 32 && be64_get(cp + 16) == log_size_bytes(log);
        free(cp);
        if (covered) {
            break;
        }
        usleep(1000);
        ev_run(f.loop, EVRUN_NOWAIT);
    }
    log_abandon(log);

    log = logfix_open(&f);
    assert_non_null(log);
    assert_false(log_needs_repair(log));
    assert_int_equal(log_end_offset(log), 16);
    off = ts = -1;
    assert_int_equal(log_offset_for_time(log, 4000, &off, &ts), 0);
    assert_int_equal(off, 1);
    assert_int_equal(ts, 5000);
    assert_int_equal(log_close(log), 0);
    buf_deinit(&b);
    logfix_deinit(&f);
}

/* ---------------------------------------------------------- flush, config */

struct hook {
    ev_prepare prepare;
    struct ring *ring;
    bool armed;
    void (*fn)(struct hook *hook);
    /* for fn */
    struct log *log;
    struct log_config config;
    int fd;
    int completed;
    uint8_t bytes[64];
    struct iovec iov[64];
};

/* Runs after the log's own ev_prepare (which has EV_MAXPRI) in the iteration
 * where that one started exactly one ring operation. */
static void hook_prepare(struct ev_loop *loop, ev_prepare *w, int revents)
{
    (void)loop;
    (void)revents;
    struct hook *hook = SL_CONTAINER_OF(w, struct hook, prepare);
    if (hook->armed && ring_in_flight(hook->ring) == 1) {
        hook->armed = false;
        hook->fn(hook);
    }
}

static void hook_start(struct hook *hook, struct logfix *f, void (*fn)(struct hook *hook))
{
    hook->ring = f->ring;
    hook->fn = fn;
    ev_prepare_init(&hook->prepare, hook_prepare);
    ev_set_priority(&hook->prepare, EV_MINPRI);
    ev_prepare_start(f->loop, &hook->prepare);
    ev_unref(f->loop);
}

static void hook_stop(struct hook *hook, struct logfix *f)
{
    ev_ref(f->loop);
    ev_prepare_stop(f->loop, &hook->prepare);
}

static void set_config_now(struct hook *hook)
{
    log_set_config(hook->log, &hook->config);
}

/*
 * log_flushed_offset() promises "covered by an fdatasync". on_written decides
 * whether the write it completes was synced from the flush policy at
 * completion time, not at start: a topic switched to flush.policy=always while
 * a write started under interval is in flight marks that write flushed
 * without any fdatasync (and the next checkpoint records it as on disk).
 */
static void test_log_policy_change_during_write_not_flushed(void **state)
{
    (void)state;
    struct logfix f;
    logfix_init(&f, "review_policy", RING_FAULT, 4 * MIB);
    f.config.flush_policy = FLUSH_INTERVAL;
    f.config.flush_interval_ms = 100000;
    struct log *log = logfix_open(&f);
    assert_non_null(log);
    struct buf b;
    buf_init(&b, MIB);
    make_batch(&b, 1, 100, 1000);
    assert_int_equal(logfix_append(&f, log, &b, NULL), 0); /* the first reserves space */
    uint64_t syncs = ring_fault_fsyncs(f.ring);
    static struct hook hook;
    memset(&hook, 0, sizeof(hook));
    hook_start(&hook, &f, set_config_now);
    hook.log = log;
    hook.config = *log_config_of(log);
    hook.config.flush_policy = FLUSH_ALWAYS;
    hook.armed = true; /* switch to always once the write is in flight */
    assert_int_equal(logfix_append(&f, log, &b, NULL), 0);
    assert_false(hook.armed);
    hook_stop(&hook, &f);
    assert_true(log_flushed_offset(log) == 0 || ring_fault_fsyncs(f.ring) > syncs);
    assert_int_equal(log_close(log), 0);
    buf_deinit(&b);
    logfix_deinit(&f);
}

/*
 * flush.interval.ms set at run time must be honoured. The housekeeping
 * timer's period is chosen once in log_open (from the policy of that time):
 * a log opened with flush.policy=always and switched to interval is synced
 * only every log.checkpoint.interval.ms (10 s by default), not every
 * flush.interval.ms.
 */
static void test_log_set_config_interval_syncs(void **state)
{
    (void)state;
    struct logfix f;
    logfix_init(&f, "review_interval", RING_FAULT, 4 * MIB);
    struct log *log = logfix_open(&f);
    assert_non_null(log);
    struct log_config c = *log_config_of(log);
    c.flush_policy = FLUSH_INTERVAL;
    c.flush_interval_ms = 20;
    log_set_config(log, &c);
    struct buf b;
    buf_init(&b, MIB);
    for (int i = 0; i < 5; i++) {
        make_batch(&b, 1, 100, 1000 + i);
        assert_int_equal(logfix_append(&f, log, &b, NULL), 0);
    }
    assert_int_equal(log_durable_offset(log), 5);
    ev_tstamp until = ev_time() + 0.5;
    while (log_flushed_offset(log) < 5 && ev_time() < until) {
        ev_run(f.loop, EVRUN_ONCE);
    }
    assert_int_equal(log_flushed_offset(log), 5);
    assert_int_equal(log_close(log), 0);
    buf_deinit(&b);
    logfix_deinit(&f);
}

/* ------------------------------------------------------------------ seal */

static void dummy_cb(void *opaque, int res)
{
    (void)res;
    ((struct hook *)opaque)->completed++;
}

/* Fills the ring so that exactly 4 slots remain when the seal's ftruncate
 * completes (the ring has 64 entries, see logfix.c). */
static void squeeze_ring(struct hook *hook)
{
    for (int i = 0; i < 60; i++) {
        hook->iov[i] = (struct iovec){&hook->bytes[i], 1};
        int err = ring_readv(hook->ring, hook->fd, &hook->iov[i], 1, 0, 0, dummy_cb, hook);
        CHILD_CHECK(err == 0);
    }
}

static void seal_with_ring_nearly_full(void)
{
    struct logfix f;
    logfix_init(&f, "review_seal", RING_FAULT, 4 * MIB);
    f.config.segment_bytes = 8u << 10;
    struct log *log = logfix_open(&f);
    CHILD_CHECK(log != NULL);
    static struct hook hook;
    hook_start(&hook, &f, squeeze_ring);
    char path[1100];
    snprintf(path, sizeof(path), "%s/../squeeze", f.dir);
    hook.fd = open(path, O_RDWR | O_CREAT, 0644);
    CHILD_CHECK(hook.fd >= 0 && write(hook.fd, "x", 1) == 1);
    struct buf b;
    buf_init(&b, MIB);
    for (int i = 0; i < 6; i++) {
        make_batch(&b, 1, 2000, 1000 + i);
        /* The append that rolls: the next iteration starts the seal. */
        hook.armed =
            log_size_bytes(log) + b.len > f.config.segment_bytes && log_segment_count(log) == 1;
        CHILD_CHECK(logfix_append(&f, log, &b, NULL) == 0);
    }
    CHILD_CHECK(log_segment_count(log) == 2);
    CHILD_CHECK(!hook.armed); /* the scenario did happen */
    while (hook.completed < 60) {
        ev_run(f.loop, EVRUN_ONCE);
    }
    hook_stop(&hook, &f);
    close(hook.fd);
    CHILD_CHECK(log_error(log) == 0);
    CHILD_CHECK(log_end_offset(log) == 6);
    struct buf out;
    buf_init(&out, 4 * MIB);
    for (int64_t offset = 0; offset < 6; offset++) {
        buf_reset(&out);
        struct batch_header h;
        CHILD_CHECK(logfix_read(&f, log, offset, 1, &out) > 0);
        CHILD_CHECK(batch_validate(out.data, out.len, BATCH_CHECK_FULL, 0, &h, NULL) == 0);
        CHILD_CHECK(h.base_offset == offset);
    }
    buf_deinit(&out);
    CHILD_CHECK(log_close(log) == 0);
    buf_deinit(&b);
    logfix_deinit(&f);
}

/*
 * on_seal_truncated checks for 4 free ring slots, queues up to 4 index
 * operations, then the fdatasync of the log; when that fifth submission finds
 * the ring full it sets the step back to idle while the 4 index operations
 * are still in flight. Their completions are then counted against the next
 * step (the seal is taken as done before its own ftruncate completes) and the
 * process aborts on SL_ASSERT(log->step_ops > 0). The ring is shared by every
 * log of the shard, so a busy shard can leave exactly 4 slots.
 */
static void test_log_seal_with_ring_nearly_full(void **state)
{
    (void)state;
    run_in_child(seal_with_ring_nearly_full);
}

/* -------------------------------------------------------------- retention */

/*
 * Retention unlinks a segment's files through the ring with the log as the
 * callback's opaque, but close and abandon wait only for flush steps and
 * reads: an unlink still in flight calls on_unlinked on a freed log, which
 * reads log->dir when the unlink failed. Caught by AddressSanitizer
 * (make asan); a plain build reads freed memory silently.
 */
static void test_log_unlink_after_free(void **state)
{
    (void)state;
    struct logfix f;
    logfix_init(&f, "review_unlink", RING_FAULT, 4 * MIB);
    f.config.segment_bytes = 8u << 10;
    struct log *log = logfix_open(&f);
    assert_non_null(log);
    struct buf b;
    buf_init(&b, MIB);
    for (int i = 0; i < 12; i++) {
        make_batch(&b, 1, 2000, 1000 + i);
        assert_int_equal(logfix_append(&f, log, &b, NULL), 0);
    }
    assert_true(log_segment_count(log) > 2);
    assert_int_equal(ring_fault_power_loss(f.ring, 0), 0); /* every op now fails */
    struct log_config c = *log_config_of(log);
    c.retention_ms = 1;
    log_set_config(log, &c);
    assert_true(log_enforce_retention(log, 1000000) > 0);
    log_abandon(log);
    logfix_restart(&f, RING_URING, 4 * MIB); /* drains the ring: the unlinks call back */
    buf_deinit(&b);
    logfix_deinit(&f);
}

/* ----------------------------------------------------------------- ENOSPC */

struct retry {
    struct log *log;
    struct buf *batches;
    int nbatches;
    char filler[1100];
    bool retried;
    int acked;
    int failed;
};

static void retry_cb(void *opaque, int status, int64_t offset)
{
    (void)offset;
    struct retry *r = opaque;
    if (status == 0) {
        r->acked++;
        return;
    }
    r->failed++;
    if (status != -ENOSPC || r->retried) {
        return;
    }
    /* A producer retries a retriable error at once; space is free again. */
    r->retried = true;
    CHILD_CHECK(unlink(r->filler) == 0);
    for (int i = 0; i < r->nbatches; i++) {
        CHILD_CHECK(
            log_append(r->log, r->batches[i].data, r->batches[i].len, 0, retry_cb, r, NULL) == 0);
    }
}

/* Fills the small tmpfs holding path (and refuses to fill anything else). */
static void fill_disk(const char *dir, const char *path)
{
    struct statfs sfs;
    CHILD_CHECK(statfs(dir, &sfs) == 0 && sfs.f_type == TMPFS_MAGIC);
    CHILD_CHECK((uint64_t)sfs.f_blocks * (uint64_t)sfs.f_bsize <= 2 * MIB);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    CHILD_CHECK(fd >= 0);
    static uint8_t block[4096];
    memset(block, 1, sizeof(block));
    for (int i = 0; i < 1024 && write(fd, block, sizeof(block)) > 0; i++) {
    }
    CHILD_CHECK(write(fd, block, sizeof(block)) < 0 && errno == ENOSPC);
    close(fd);
}

static void enospc_reroll(void)
{
    char top[512];
    snprintf(top, sizeof(top), "%s", tu_tmpdir("review_enospc")); /* static storage */
    if (unshare(CLONE_NEWNS) != 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
        mount("tmpfs", top, "tmpfs", 0, "size=1m") != 0) {
        _exit(CHILD_SKIP); /* needs CAP_SYS_ADMIN for a small filesystem to fill */
    }
    struct logfix f;
    logfix_init(&f, "review_enospc_ring", RING_THREADS, 4 * MIB);
    char unused[512];
    snprintf(unused, sizeof(unused), "%s", f.dir);
    snprintf(f.dir, sizeof(f.dir), "%.400s/topic-0", top);
    f.config.io = STORAGE_IO_BUFFERED; /* tmpfs has no O_DIRECT */
    f.config.segment_bytes = 16u << 10;
    f.config.preallocate_bytes = 4096; /* every new block needs new space */
    struct log *log = logfix_open(&f);
    CHILD_CHECK(log != NULL);
    static struct buf batches[2];
    struct buf b;
    buf_init(&b, MIB);
    for (int i = 0; i < 4; i++) {
        make_batch(&b, 1, 2900, 1000 + i); /* about 3 KB: the log is at about 12 KB */
        CHILD_CHECK(logfix_append(&f, log, &b, NULL) == 0);
    }
    CHILD_CHECK(log_segment_count(log) == 1);
    /* A: fits the segment but needs a new block; B: rolls a new segment. */
    for (int i = 0; i < 2; i++) {
        buf_init(&batches[i], MIB);
        make_batch(&batches[i], 1, 2900, 2000 + i);
    }
    static struct retry r;
    r.log = log;
    r.batches = batches;
    r.nbatches = 2;
    snprintf(r.filler, sizeof(r.filler), "%s/filler", top);
    fill_disk(top, r.filler);
    for (int i = 0; i < 2; i++) {
        CHILD_CHECK(log_append(log, batches[i].data, batches[i].len, 0, retry_cb, &r, NULL) == 0);
    }
    CHILD_CHECK(log_segment_count(log) == 2);
    while (r.acked < 2 && r.failed < 4) {
        ev_run(f.loop, EVRUN_ONCE);
    }
    CHILD_CHECK(r.retried && r.failed == 2 && r.acked == 2);
    char path[1100];
    snprintf(path, sizeof(path), "%s/00000000000000000005.log", f.dir);
    CHILD_CHECK(access(path, F_OK) == 0); /* the active segment's file is still linked */
    int64_t end = log_end_offset(log);
    CHILD_CHECK(end == 6);
    CHILD_CHECK(log_close(log) == 0);
    log = logfix_open(&f);
    CHILD_CHECK(log != NULL);
    fprintf(stderr, "enospc: end before close %lld, after reopen %lld\n", (long long)end,
            (long long)log_end_offset(log));
    CHILD_CHECK(log_end_offset(log) == end); /* every acknowledged batch is there */
    CHILD_CHECK(log_close(log) == 0);
    buf_deinit(&b);
    for (int i = 0; i < 2; i++) {
        buf_deinit(&batches[i]);
    }
    CHILD_CHECK(umount(top) == 0);
    rmdir(top);
    snprintf(f.dir, sizeof(f.dir), "%s", unused);
    logfix_deinit(&f);
}

/*
 * Disk full at a segment boundary: log_rollback retires the segment the log
 * had just rolled to and queues the unlinks of its files on the ring. An
 * append made before the ring submits them (here the producer's retry from
 * the failure callback; in the broker, any request handled in the same loop
 * iteration) rolls again to a segment of the same base, and log_roll opens
 * the old files, still linked. Then the unlinks run: the new segment's data
 * goes to unlinked inodes, its appends are acknowledged, and after a restart
 * they are gone.
 */
static void test_log_enospc_rollback_then_reroll_keeps_data(void **state)
{
    (void)state;
    run_in_child(enospc_reroll);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_log_read_first_batch_larger_than_max_bytes),
        cmocka_unit_test(test_log_recovery_zeroed_batch_below_flushed_point),
        cmocka_unit_test(test_log_recovery_keeps_max_timestamp),
        cmocka_unit_test(test_log_policy_change_during_write_not_flushed),
        cmocka_unit_test(test_log_set_config_interval_syncs),
        cmocka_unit_test(test_log_seal_with_ring_nearly_full),
        cmocka_unit_test(test_log_unlink_after_free),
        cmocka_unit_test(test_log_enospc_rollback_then_reroll_keeps_data),
    };
    return cmocka_run_group_tests_name("log_review", tests, NULL, NULL);
}
