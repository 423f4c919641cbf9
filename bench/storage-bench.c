/* SPDX-License-Identifier: Apache-2.0 */
/*
 * storage-bench: measures the partition log through its public API
 * (storage/log.h), one scenario per subcommand, so that bench/storage-bench.sh
 * can set the numbers beside fio's on the same disk.
 *
 *   append     throughput and ack latency with exactly N appends in flight
 *   read       sequential reads by offset: from the batch cache right after
 *              appending, then after a reopen from the disk and the page cache
 *   recover    time of log_open after a writer was killed with SIGKILL
 *   open-many  time and memory of opening a log made of many segments
 *
 * Each subcommand prints one line for people and one line starting with
 * "JSON " for the script. Sizes take k, m, g suffixes (powers of 1024); rates
 * are decimal (MB/s = 10^6 bytes/s, GB/s = 10^9) because fio reports them so.
 *
 * Everything runs on one libev loop with an io_uring ring, as one shard of
 * the broker would, turning the loop with EVRUN_ONCE until the callbacks being
 * waited for have fired. Scenarios that need a process to die, or a heap that
 * never held the log, do their setup in a forked child.
 */
#include <errno.h>
#include <ev.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench/driver.h"
#include "common/assert.h"
#include "common/buf.h"
#include "common/clock.h"
#include "common/log.h"
#include "proto/batch.h"
#include "storage/log.h"
#include "storage/ring.h"

/* storage.buffer.bytes for every scenario but open-many. */
#define BUFFER_BYTES (256u << 10)
/* The smallest pool we run with: a tail buffer, the next one and slack. */
#define POOL_BYTES_MIN (16 * BUFFER_BYTES) /* stages a 1 MiB batch, the default largest */
/* Pool of a reopened log: reads go through the ring, so it only holds a tail. */
#define REOPEN_POOL_BYTES (64u << 20)
/* read: batches of the log under test, and the fetch size (Kafka's default
 * max.partition.fetch.bytes). */
#define READ_BATCH_BYTES    (1u << 20)
#define READ_MAX_BYTES      (1u << 20)
#define READ_SETUP_INFLIGHT 8
/* recover: the writer that gets killed. */
#define RECOVER_BATCH_BYTES (64u << 10)
#define RECOVER_INFLIGHT    32
/* open-many: a segment.bytes of one block and batches of three quarters of
 * one, so that every append rolls; one-block pool buffers, since each
 * segment's tail takes a buffer of its own until it is sealed. */
#define MANY_SEGMENT_BYTES 4096u
#define MANY_BATCH_BYTES   3072u
#define MANY_BUFFER_BYTES  4096u
#define MANY_POOL_BYTES    (4u << 20)
#define MANY_INFLIGHT      64

/* ============================================================== options */

struct opts {
    const char *dir;
    uint64_t batch_bytes;
    uint64_t record_bytes;
    uint64_t total_bytes;
    uint64_t segment_bytes; /* 0: the log's default */
    uint64_t memory_bytes;  /* 0: chosen by the scenario */
    unsigned inflight;
    unsigned passes;
    unsigned segments;
    enum storage_io io;
    enum flush_policy flush;
};

static void usage(void)
{
    fprintf(stderr,
            "usage: storage-bench append --dir D --batch-bytes B --record-bytes R --inflight N\n"
            "                            --total-bytes T [--io direct|buffered]\n"
            "                            [--flush always|interval|never] [--segment-bytes S]\n"
            "       storage-bench read --dir D --total-bytes T [--passes 2] [--memory-bytes M]\n"
            "       storage-bench recover --dir D --total-bytes T\n"
            "       storage-bench open-many --dir D --segments K\n"
            "D must not hold a log yet. R >= B makes one record per batch, sized so that the\n"
            "batch is exactly B bytes; else each batch holds as many R-byte values as fit.\n");
}

static int parse_count(const char *s, unsigned *out)
{
    uint64_t v;
    if (bench_parse_size(s, &v) != 0 || v == 0 || v > 1000000) {
        return -EINVAL;
    }
    *out = (unsigned)v;
    return 0;
}

static int parse_opt(int c, const char *arg, struct opts *o)
{
    switch (c) {
    case 'd':
        o->dir = arg;
        return 0;
    case 'b':
        return bench_parse_size(arg, &o->batch_bytes);
    case 'r':
        return bench_parse_size(arg, &o->record_bytes);
    case 't':
        return bench_parse_size(arg, &o->total_bytes);
    case 's':
        return bench_parse_size(arg, &o->segment_bytes);
    case 'm':
        return bench_parse_size(arg, &o->memory_bytes);
    case 'n':
        return parse_count(arg, &o->inflight);
    case 'p':
        return parse_count(arg, &o->passes);
    case 'k':
        return parse_count(arg, &o->segments);
    case 'i':
        return storage_io_parse(arg, &o->io);
    case 'f':
        return flush_policy_parse(arg, &o->flush);
    default:
        return -EINVAL;
    }
}

/* Parses argv[1..] (argv[0] is the subcommand). */
static int opts_parse(int argc, char **argv, struct opts *o)
{
    static const struct option longopts[] = {
        {"dir", required_argument, NULL, 'd'},
        {"batch-bytes", required_argument, NULL, 'b'},
        {"record-bytes", required_argument, NULL, 'r'},
        {"total-bytes", required_argument, NULL, 't'},
        {"segment-bytes", required_argument, NULL, 's'},
        {"memory-bytes", required_argument, NULL, 'm'},
        {"inflight", required_argument, NULL, 'n'},
        {"passes", required_argument, NULL, 'p'},
        {"segments", required_argument, NULL, 'k'},
        {"io", required_argument, NULL, 'i'},
        {"flush", required_argument, NULL, 'f'},
        {NULL, 0, NULL, 0},
    };
    *o = (struct opts){.passes = 2, .io = STORAGE_IO_DIRECT, .flush = FLUSH_ALWAYS};
    int c;
    int index = 0;
    while ((c = getopt_long(argc, argv, "", longopts, &index)) != -1) {
        if (c == '?') {
            return -EINVAL; /* getopt named the option */
        }
        if (parse_opt(c, optarg, o) != 0) {
            fprintf(stderr, "storage-bench: bad value for --%s: %s\n", longopts[index].name,
                    optarg);
            return -EINVAL;
        }
    }
    if (optind != argc || o->dir == NULL) {
        fprintf(stderr, "storage-bench: --dir is required, and nothing else may follow\n");
        return -EINVAL;
    }
    return 0;
}

/* ===================================================== shard and helpers */

struct bench {
    struct ev_loop *loop;
    struct ring *ring;
    struct log_shard *shard;
};

static void bench_down(struct bench *b)
{
    log_shard_free(b->shard);
    ring_free(b->ring);
    if (b->loop != NULL) {
        ev_loop_destroy(b->loop);
    }
    *b = (struct bench){0};
}

static int bench_up(struct bench *b, size_t memory_bytes, size_t buffer_bytes)
{
    *b = (struct bench){0};
    int err = 0;
    b->loop = ev_loop_new(EVFLAG_AUTO);
    if (b->loop == NULL) {
        fprintf(stderr, "storage-bench: ev_loop_new failed\n");
        return -ENOMEM;
    }
    struct ring_config rc = {
        .backend = RING_URING, .entries = RING_ENTRIES_DEFAULT, .threads = RING_THREADS_DEFAULT};
    b->ring = ring_new(b->loop, &rc, &err);
    if (b->ring != NULL) {
        struct log_shard_config sc;
        log_shard_config_default(&sc);
        sc.buffer_bytes = buffer_bytes;
        sc.memory_bytes = SL_ALIGN_UP(memory_bytes, buffer_bytes);
        b->shard = log_shard_new(b->loop, b->ring, &sc, &err);
    }
    if (b->shard == NULL) {
        fprintf(stderr, "storage-bench: %s failed: %s\n", b->ring ? "log_shard_new" : "ring_new",
                strerror(-err));
        bench_down(b);
        return err;
    }
    return 0;
}

/* Opens the log; with want_empty, refuses a directory that already holds one
 * (numbers measured on top of an old log would mean something else). */
static struct log *bench_open(struct bench *b, const char *dir, const struct log_config *config,
                              bool want_empty)
{
    int err = 0;
    struct log *log = log_open(b->shard, dir, config, &err);
    if (log == NULL) {
        fprintf(stderr, "storage-bench: log_open %s: %s\n", dir, strerror(-err));
        return NULL;
    }
    if (want_empty && log_end_offset(log) != 0) {
        fprintf(stderr, "storage-bench: %s already holds a log; give a fresh directory\n", dir);
        log_close(log);
        return NULL;
    }
    return log;
}

static double seconds_since(int64_t start_ns)
{
    return (double)(time_mono_ns() - start_ns) / 1e9;
}

/* Resident set size in bytes, from /proc/self/statm. */
static long rss_bytes(void)
{
    long size = 0;
    long resident = -1;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f != NULL) {
        if (fscanf(f, "%ld %ld", &size, &resident) != 2) {
            resident = -1;
        }
        fclose(f);
    }
    return resident < 0 ? -1 : resident * sysconf(_SC_PAGESIZE);
}

/* Waits for a child; 0 when it exited with status 0. */
static int child_wait(pid_t pid, const char *what)
{
    int status = 0;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            return -errno;
        }
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "storage-bench: %s child failed (status 0x%x)\n", what, status);
        return -ECHILD;
    }
    return 0;
}

/* ================================================================ batches */

static int encode_records(struct buf *out, const uint8_t *values, size_t value_len, size_t n)
{
    struct batch_record *recs = calloc(n, sizeof(*recs));
    if (recs == NULL) {
        return -ENOMEM;
    }
    int64_t now_ms = time_wall_ms();
    for (size_t i = 0; i < n; i++) {
        recs[i] = (struct batch_record){
            .timestamp = now_ms,
            .key_len = -1,
            .value = values + i * value_len,
            .value_len = (int32_t)value_len,
        };
    }
    struct batch_meta meta = {.producer_id = -1, .producer_epoch = -1, .base_sequence = -1};
    buf_reset(out);
    int err = batch_encode(out, &meta, recs, n);
    free(recs);
    return err;
}

/*
 * Builds one uncompressed batch of about batch_bytes into out. With
 * record_bytes >= batch_bytes it holds one record whose value is sized so
 * that the batch is exactly batch_bytes: a 64 KiB batch is then a 64 KiB
 * write, comparable to fio's bs=64k. Otherwise it holds as many records of
 * record_bytes-byte values as fit. *records receives the count.
 */
static int batch_build(struct buf *out, size_t batch_bytes, size_t record_bytes, size_t *records)
{
    bool single = record_bytes >= batch_bytes;
    size_t value_len = single ? batch_bytes : record_bytes;
    size_t n = single ? 1 : SL_MAX(batch_bytes / (record_bytes + 8), (size_t)1);
    uint8_t *values = malloc(batch_bytes + 8);
    if (values == NULL || record_bytes == 0 || batch_bytes <= BATCH_HEADER_BYTES) {
        free(values);
        return -EINVAL;
    }
    uint64_t state = 42;
    for (size_t i = 0; i < batch_bytes; i += 8) {
        uint64_t r = bench_next_random(&state);
        memcpy(values + i, &r, 8);
    }
    int err = 0;
    for (int tries = 0; tries < 64; tries++) {
        err = encode_records(out, values, value_len, n);
        if (err != 0 || out->len == batch_bytes || (out->len < batch_bytes && !single)) {
            break;
        }
        if (single && out->len - value_len >= batch_bytes) {
            err = -EINVAL; /* the framing alone is larger than the batch */
            break;
        }
        if (single) {
            /* The value's length varint may shrink with it: converges in a step or two. */
            value_len = value_len + batch_bytes - out->len;
        } else if (n > 1) {
            size_t over = out->len - batch_bytes;
            n -= SL_MAX(SL_MIN(over / (out->len / n) + 1, n - 1), (size_t)1);
        } else {
            break; /* one record of record_bytes is all there is */
        }
    }
    free(values);
    *records = n;
    return err;
}

/* ================================================================ appends */

struct append_run;

struct append_slot {
    struct append_run *run;
    int64_t submit_ns;
};

struct append_run {
    struct ev_loop *loop;
    struct log *log;
    const uint8_t *batch;
    size_t batch_len;
    size_t records; /* per batch */
    uint64_t total;
    uint64_t submitted;
    uint64_t acked;
    uint64_t answered; /* callbacks fired, acknowledged or failed */
    int64_t acked_end; /* offset after the last acknowledged batch */
    int64_t *latency_ns;
    struct append_slot *slots;
    int err;
};

static void append_submit(struct append_slot *slot);

static void on_append_ack(void *opaque, int status, int64_t base_offset)
{
    struct append_slot *slot = opaque;
    struct append_run *run = slot->run;
    run->answered++;
    if (status != 0) {
        if (run->err == 0) {
            run->err = status;
        }
        return;
    }
    SL_ASSERT(base_offset >= run->acked_end); /* the log acknowledges in order */
    run->latency_ns[run->acked++] = time_mono_ns() - slot->submit_ns;
    run->acked_end = base_offset + (int64_t)run->records;
    append_submit(slot); /* keeps the slot's append in flight */
}

static void append_submit(struct append_slot *slot)
{
    struct append_run *run = slot->run;
    if (run->err != 0 || run->submitted == run->total) {
        return;
    }
    slot->submit_ns = time_mono_ns();
    int err = log_append(run->log, run->batch, run->batch_len, 0, on_append_ack, slot, NULL);
    if (err != 0) {
        run->err = err;
        return;
    }
    run->submitted++;
}

static int append_run_init(struct append_run *run, struct bench *b, struct log *log,
                           const struct buf *batch, size_t records, uint64_t total_bytes,
                           unsigned inflight)
{
    *run = (struct append_run){
        .loop = b->loop,
        .log = log,
        .batch = batch->data,
        .batch_len = batch->len,
        .records = records,
        .total = SL_MAX((total_bytes + batch->len - 1) / batch->len, 1),
    };
    run->latency_ns = malloc(run->total * sizeof(*run->latency_ns));
    run->slots = calloc(inflight, sizeof(*run->slots));
    if (run->latency_ns == NULL || run->slots == NULL) {
        return -ENOMEM;
    }
    for (unsigned i = 0; i < inflight; i++) {
        run->slots[i].run = run;
    }
    return 0;
}

static void append_run_deinit(struct append_run *run)
{
    free(run->latency_ns);
    free(run->slots);
}

/*
 * Keeps `inflight` appends in flight until every batch is acknowledged. After
 * an error it submits no more but still waits for the answer of every append
 * submitted (the log answers each one, if only with its error), so that no
 * callback can fire into the slots once the run is freed.
 */
static int append_run_go(struct append_run *run, unsigned inflight)
{
    for (unsigned i = 0; i < inflight; i++) {
        append_submit(&run->slots[i]);
    }
    while (run->answered < run->submitted) {
        ev_run(run->loop, EVRUN_ONCE);
    }
    SL_ASSERT(run->err != 0 || run->acked == run->total); /* resubmitted until done */
    if (run->err != 0) {
        fprintf(stderr, "storage-bench: append failed after %" PRIu64 " acks: %s%s\n", run->acked,
                strerror(-run->err),
                run->err == -ENOBUFS ? " (pool or write backlog too small for inflight x batch)"
                                     : "");
    }
    return run->err;
}

/* Appends total_bytes of batch_bytes batches: a helper for the setups. */
static int append_fill(struct bench *b, struct log *log, size_t batch_bytes, uint64_t total_bytes,
                       unsigned inflight, int64_t *acked_end)
{
    struct buf batch;
    struct append_run run = {0};
    size_t records = 0;
    buf_init(&batch, batch_bytes + 4096);
    int err = batch_build(&batch, batch_bytes, batch_bytes, &records);
    if (err == 0) {
        err = append_run_init(&run, b, log, &batch, records, total_bytes, inflight);
        if (err == 0) {
            err = append_run_go(&run, inflight);
            *acked_end = run.acked_end;
        }
    }
    append_run_deinit(&run);
    buf_deinit(&batch);
    return err;
}

/* ================================================================ append */

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a;
    int64_t y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static void append_report(const struct opts *o, const struct append_run *run, size_t records,
                          double seconds)
{
    int64_t *lat = run->latency_ns;
    uint64_t n = run->acked;
    qsort(lat, n, sizeof(*lat), cmp_i64);
    double p50 = (double)lat[(n - 1) * 50 / 100] / 1e3;
    double p99 = (double)lat[(n - 1) * 99 / 100] / 1e3;
    double max = (double)lat[n - 1] / 1e3;
    double bytes = (double)n * (double)run->batch_len;
    double mb_s = bytes / seconds / 1e6;
    double batches_s = (double)n / seconds;
    double records_s = batches_s * (double)records;
    const char *flush = flush_policy_name(o->flush);
    const char *io = o->io == STORAGE_IO_DIRECT ? "direct" : "buffered";
    printf("append: %zu B batches x %zu records, inflight %u, flush %s, io %s: %.1f MB/s, "
           "%.0f batches/s, %.0f records/s, ack p50 %.0f us p99 %.0f us max %.0f us "
           "(%.0f MB in %.2f s)\n",
           run->batch_len, records, o->inflight, flush, io, mb_s, batches_s, records_s, p50, p99,
           max, bytes / 1e6, seconds);
    printf("JSON {\"cmd\":\"append\",\"batch_bytes\":%zu,\"records_per_batch\":%zu,"
           "\"record_bytes\":%" PRIu64 ",\"inflight\":%u,\"flush\":\"%s\",\"io\":\"%s\","
           "\"bytes\":%.0f,\"seconds\":%.4f,\"mb_per_s\":%.2f,\"batches_per_s\":%.1f,"
           "\"records_per_s\":%.1f,\"lat_p50_us\":%.1f,\"lat_p99_us\":%.1f,\"lat_max_us\":%.1f}\n",
           run->batch_len, records, o->record_bytes, o->inflight, flush, io, bytes, seconds, mb_s,
           batches_s, records_s, p50, p99, max);
}

static int cmd_append(const struct opts *o)
{
    if (o->batch_bytes == 0 || o->record_bytes == 0 || o->inflight == 0 || o->total_bytes == 0) {
        usage();
        return -EINVAL;
    }
    struct log_config config;
    log_config_default(&config);
    config.flush_policy = o->flush;
    config.io = o->io;
    if (o->segment_bytes != 0) {
        config.segment_bytes = o->segment_bytes;
    }
    struct bench b;
    struct buf batch;
    struct append_run run = {0};
    size_t records = 0;
    /* Tiny records cost several bytes of framing each before the count is trimmed. */
    buf_init(&batch, o->batch_bytes * 16 + 4096);
    int err = batch_build(&batch, o->batch_bytes, o->record_bytes, &records);
    if (err != 0) {
        fprintf(stderr, "storage-bench: cannot build the batch: %s\n", strerror(-err));
        buf_deinit(&batch);
        return err;
    }
    err = bench_up(&b, SL_MAX((size_t)o->inflight * batch.len * 2, POOL_BYTES_MIN), BUFFER_BYTES);
    struct log *log = err == 0 ? bench_open(&b, o->dir, &config, true) : NULL;
    if (log != NULL) {
        err = append_run_init(&run, &b, log, &batch, records, o->total_bytes, o->inflight);
        int64_t start_ns = time_mono_ns();
        if (err == 0) {
            err = append_run_go(&run, o->inflight);
        }
        double seconds = seconds_since(start_ns);
        int close_err = log_close(log);
        if (err == 0 && close_err == 0) {
            append_report(o, &run, records, seconds);
        }
        err = err != 0 ? err : close_err;
    } else {
        err = err != 0 ? err : -EIO;
    }
    append_run_deinit(&run);
    if (b.loop != NULL) {
        bench_down(&b);
    }
    buf_deinit(&batch);
    return err;
}

/* ================================================================== read */

struct read_wait {
    int status;
    bool done;
};

static void on_read_done(void *opaque, int status)
{
    struct read_wait *w = opaque;
    w->status = status;
    w->done = true;
}

struct pass_result {
    uint64_t bytes;
    uint64_t disk_reads; /* log_read calls that went to the ring */
    double seconds;
};

/* Checks that out holds whole batches continuing at *offset, and moves it on. */
static int walk_batches(const struct buf *out, int64_t *offset)
{
    size_t at = 0;
    while (at < out->len) {
        struct batch_header h;
        if (batch_header_decode(out->data + at, out->len - at, &h) != 0 ||
            h.base_offset != *offset || h.batch_length <= 0 ||
            batch_total_bytes(&h) > out->len - at) {
            fprintf(stderr, "storage-bench: read returned a bad batch at offset %" PRId64 "\n",
                    *offset);
            return -EBADMSG;
        }
        at += batch_total_bytes(&h);
        *offset = batch_last_offset(&h) + 1;
    }
    return 0;
}

/* Reads the whole log by offset, READ_MAX_BYTES per log_read, one at a time. */
static int read_pass(struct bench *b, struct log *log, struct buf *out, struct pass_result *r)
{
    int64_t offset = log_start_offset(log);
    int64_t end = log_end_offset(log);
    *r = (struct pass_result){0};
    int64_t start_ns = time_mono_ns();
    while (offset < end) {
        struct read_wait w = {0};
        struct log_read req = {.offset = offset,
                               .max_offset = end,
                               .max_bytes = READ_MAX_BYTES,
                               .out = out,
                               .cb = on_read_done,
                               .opaque = &w};
        buf_reset(out);
        int rc = log_read(log, &req);
        if (rc == LOG_PENDING) {
            r->disk_reads++;
            while (!w.done) {
                ev_run(b->loop, EVRUN_ONCE);
            }
            rc = w.status;
        }
        if (rc <= 0) {
            fprintf(stderr, "storage-bench: log_read at %" PRId64 " gave %d (%s)\n", offset, rc,
                    rc < 0 ? strerror(-rc) : "nothing");
            return rc < 0 ? rc : -EIO;
        }
        int err = walk_batches(out, &offset);
        if (err != 0) {
            return err;
        }
        r->bytes += (uint64_t)rc;
    }
    r->seconds = seconds_since(start_ns);
    return 0;
}

static double gb_per_s(const struct pass_result *r)
{
    return (double)r->bytes / r->seconds / 1e9;
}

/* Appends the log with a pool that holds all of it, reads it back from the
 * batch cache, and closes it. */
static int read_setup_and_cache(const struct opts *o, struct pass_result *cache)
{
    struct log_config config;
    log_config_default(&config);
    config.flush_policy = FLUSH_NEVER; /* setup: durability is not what is measured */
    uint64_t memory = o->memory_bytes ? o->memory_bytes : o->total_bytes + o->total_bytes / 2;
    struct bench b;
    struct buf out;
    int64_t end = 0;
    int err = bench_up(&b, SL_MAX(memory, (uint64_t)POOL_BYTES_MIN), BUFFER_BYTES);
    if (err != 0) {
        return err;
    }
    buf_init(&out, 4 * READ_MAX_BYTES);
    struct log *log = bench_open(&b, o->dir, &config, true);
    err = -EIO;
    if (log != NULL) {
        err = append_fill(&b, log, READ_BATCH_BYTES, o->total_bytes, READ_SETUP_INFLIGHT, &end);
    }
    if (err == 0) {
        err = read_pass(&b, log, &out, cache);
    }
    int close_err = log_close(log);
    buf_deinit(&out);
    bench_down(&b);
    return err != 0 ? err : close_err;
}

static void read_report(const struct pass_result *cache, const struct pass_result *passes,
                        unsigned n)
{
    printf("read: %.0f MB by offset, %u KiB per read: cache %.2f GB/s (%" PRIu64 " disk reads)",
           (double)cache->bytes / 1e6, READ_MAX_BYTES >> 10, gb_per_s(cache), cache->disk_reads);
    for (unsigned i = 0; i < n; i++) {
        printf("; pass %u after reopen %.2f GB/s%s", i + 1, gb_per_s(&passes[i]),
               i == 0 ? " (disk)" : " (page cache)");
    }
    printf("\nJSON {\"cmd\":\"read\",\"bytes\":%" PRIu64 ",\"read_max_bytes\":%u,"
           "\"cache_gb_per_s\":%.3f,\"cache_disk_reads\":%" PRIu64 ",\"passes_gb_per_s\":[",
           cache->bytes, READ_MAX_BYTES, gb_per_s(cache), cache->disk_reads);
    for (unsigned i = 0; i < n; i++) {
        printf("%s%.3f", i ? "," : "", gb_per_s(&passes[i]));
    }
    printf("],\"disk_gb_per_s\":%.3f,\"page_cache_gb_per_s\":%.3f}\n", gb_per_s(&passes[0]),
           gb_per_s(&passes[n - 1]));
}

static int cmd_read(const struct opts *o)
{
    if (o->total_bytes < READ_BATCH_BYTES || o->passes < 2 || o->passes > 16) {
        fprintf(stderr, "storage-bench: read needs --total-bytes >= 1m and 2..16 passes\n");
        return -EINVAL;
    }
    struct pass_result cache;
    struct pass_result passes[16];
    int err = read_setup_and_cache(o, &cache);
    if (err != 0) {
        return err;
    }
    /* Reopened with a small pool: the batch cache is empty, and the data,
     * written with O_DIRECT, is not in the page cache for the first pass. */
    struct log_config config;
    log_config_default(&config);
    struct bench b;
    struct buf out;
    err = bench_up(&b, REOPEN_POOL_BYTES, BUFFER_BYTES);
    if (err != 0) {
        return err;
    }
    buf_init(&out, 4 * READ_MAX_BYTES);
    struct log *log = bench_open(&b, o->dir, &config, false);
    err = log == NULL ? -EIO : 0;
    for (unsigned i = 0; i < o->passes && err == 0; i++) {
        err = read_pass(&b, log, &out, &passes[i]);
    }
    int close_err = log_close(log);
    buf_deinit(&out);
    bench_down(&b);
    err = err != 0 ? err : close_err;
    if (err == 0) {
        read_report(&cache, passes, o->passes);
    }
    return err;
}

/* =============================================================== recover */

/* The writer: appends with flush=always, tells the parent how far it was
 * acknowledged, then waits to be killed. Never returns. */
static _Noreturn void recover_child(const struct opts *o, int fd)
{
    struct log_config config;
    log_config_default(&config);
    struct bench b;
    int64_t end = 0;
    size_t pool = (size_t)RECOVER_INFLIGHT * RECOVER_BATCH_BYTES * 2;
    int err = bench_up(&b, pool, BUFFER_BYTES);
    struct log *log = err == 0 ? bench_open(&b, o->dir, &config, true) : NULL;
    err = -EIO;
    if (log != NULL) {
        err = append_fill(&b, log, RECOVER_BATCH_BYTES, o->total_bytes, RECOVER_INFLIGHT, &end);
    }
    if (err != 0 || dprintf(fd, "done %" PRId64 "\n", end) < 0) {
        _exit(1);
    }
    for (;;) {
        pause();
    }
}

/* Reads the writer's "done <end offset>" line; -EIO when it died first. */
static int recover_wait_done(int fd, int64_t *end)
{
    char line[64];
    size_t len = 0;
    while (len < sizeof(line) - 1) {
        ssize_t n = read(fd, line + len, sizeof(line) - 1 - len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return -EIO;
        }
        len += (size_t)n;
        line[len] = '\0';
        if (strchr(line, '\n') != NULL) {
            break;
        }
    }
    line[len] = '\0';
    return sscanf(line, "done %" SCNd64, end) == 1 ? 0 : -EIO;
}

static int cmd_recover(const struct opts *o)
{
    if (o->total_bytes == 0) {
        usage();
        return -EINVAL;
    }
    int fds[2];
    int64_t acked_end = 0;
    if (pipe(fds) != 0) {
        return -errno;
    }
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) {
        return -errno;
    }
    if (pid == 0) {
        close(fds[0]);
        recover_child(o, fds[1]);
    }
    close(fds[1]);
    int err = recover_wait_done(fds[0], &acked_end);
    close(fds[0]);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    if (err != 0) {
        fprintf(stderr, "storage-bench: the writer died before it was done\n");
        return err;
    }
    struct log_config config;
    log_config_default(&config);
    struct bench b;
    err = bench_up(&b, REOPEN_POOL_BYTES, BUFFER_BYTES);
    if (err != 0) {
        return err;
    }
    int64_t start_ns = time_mono_ns();
    struct log *log = bench_open(&b, o->dir, &config, false);
    double seconds = seconds_since(start_ns);
    int64_t end = log != NULL ? log_end_offset(log) : -1;
    uint64_t bytes = log != NULL ? log_size_bytes(log) : 0;
    err = log == NULL ? -EIO : log_close(log);
    bench_down(&b);
    if (err == 0 && end != acked_end) {
        fprintf(stderr, "storage-bench: recovered end %" PRId64 " != acknowledged %" PRId64 "\n",
                end, acked_end);
        err = -EUCLEAN;
    }
    if (err == 0) {
        printf("recover: log_open after SIGKILL of a flush=always writer: %.3f s for %.0f MB, "
               "end offset %" PRId64 " (as acknowledged)\n",
               seconds, (double)bytes / 1e6, end);
        printf("JSON {\"cmd\":\"recover\",\"bytes\":%" PRIu64 ",\"seconds\":%.4f,"
               "\"end_offset\":%" PRId64 ",\"acked_end_offset\":%" PRId64 "}\n",
               bytes, seconds, end, acked_end);
    }
    return err;
}

/* ============================================================= open-many */

/* In a child, so the parent's heap never held the log: what open costs is
 * then what its RSS grows by. Prints how long the creation took. */
static int many_create(const struct opts *o)
{
    fflush(stdout);
    int64_t start_ns = time_mono_ns();
    pid_t pid = fork();
    if (pid < 0) {
        return -errno;
    }
    if (pid == 0) {
        struct log_config config;
        log_config_default(&config);
        config.segment_bytes = MANY_SEGMENT_BYTES;
        config.preallocate_bytes = MANY_SEGMENT_BYTES;
        config.max_message_bytes = MANY_SEGMENT_BYTES; /* what 4 KiB buffers can stage */
        config.flush_policy = FLUSH_NEVER;             /* sealing a segment still syncs it */
        struct bench b;
        int64_t end = 0;
        int err = bench_up(&b, MANY_POOL_BYTES, MANY_BUFFER_BYTES);
        struct log *log = err == 0 ? bench_open(&b, o->dir, &config, true) : NULL;
        uint64_t total_bytes = (uint64_t)o->segments * MANY_BATCH_BYTES;
        err = -EIO;
        if (log != NULL) {
            err = append_fill(&b, log, MANY_BATCH_BYTES, total_bytes, MANY_INFLIGHT, &end);
        }
        if (err == 0 && log_segment_count(log) != o->segments) {
            fprintf(stderr, "storage-bench: made %u segments, not %u\n", log_segment_count(log),
                    o->segments);
            err = -EIO;
        }
        err = err != 0 ? err : log_close(log);
        _exit(err == 0 ? 0 : 1);
    }
    int err = child_wait(pid, "open-many setup");
    if (err == 0) {
        fprintf(stderr, "storage-bench: created %u segments in %.1f s\n", o->segments,
                seconds_since(start_ns));
    }
    return err;
}

static int cmd_open_many(const struct opts *o)
{
    if (o->segments == 0) {
        usage();
        return -EINVAL;
    }
    int err = many_create(o);
    if (err != 0) {
        return err;
    }
    struct log_config config;
    log_config_default(&config);
    config.segment_bytes = MANY_SEGMENT_BYTES;
    config.max_message_bytes = MANY_SEGMENT_BYTES;
    struct bench b;
    err = bench_up(&b, MANY_POOL_BYTES, MANY_BUFFER_BYTES);
    if (err != 0) {
        return err;
    }
    long rss_before = rss_bytes();
    int64_t start_ns = time_mono_ns();
    struct log *log = bench_open(&b, o->dir, &config, false);
    double seconds = seconds_since(start_ns);
    long rss_after = rss_bytes();
    unsigned segments = log != NULL ? log_segment_count(log) : 0;
    err = log == NULL ? -EIO : log_close(log);
    bench_down(&b);
    if (err == 0 && segments != o->segments) {
        fprintf(stderr, "storage-bench: opened %u segments, not %u\n", segments, o->segments);
        err = -EIO;
    }
    if (err == 0) {
        double per_segment = (double)(rss_after - rss_before) / segments;
        printf("open-many: log_open of %u segments (clean shutdown): %.3f s, RSS +%.1f MB "
               "(%.0f B per segment)\n",
               segments, seconds, (double)(rss_after - rss_before) / 1e6, per_segment);
        printf("JSON {\"cmd\":\"open-many\",\"segments\":%u,\"seconds\":%.4f,"
               "\"rss_growth_bytes\":%ld,\"rss_bytes_per_segment\":%.1f}\n",
               segments, seconds, rss_after - rss_before, per_segment);
    }
    return err;
}

/* ================================================================== main */

int main(int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*run)(const struct opts *o);
    } cmds[] = {
        {"append", cmd_append},
        {"read", cmd_read},
        {"recover", cmd_recover},
        {"open-many", cmd_open_many},
    };
    struct opts o;
    if (argc < 2) {
        usage();
        return 2;
    }
    /* Segment rolls log at INFO; open-many would print thousands of lines. */
    slog_set_level(SLOG_WARN);
    for (size_t i = 0; i < SL_ARRAY_LEN(cmds); i++) {
        if (strcmp(argv[1], cmds[i].name) != 0) {
            continue;
        }
        if (opts_parse(argc - 1, argv + 1, &o) != 0) {
            usage();
            return 2;
        }
        int err = cmds[i].run(&o);
        if (err != 0) {
            fprintf(stderr, "storage-bench %s: failed: %s\n", argv[1], strerror(-err));
            return 1;
        }
        return 0;
    }
    usage();
    return 2;
}
