/* SPDX-License-Identifier: Apache-2.0 */
/* The storage test fixture (see logfix.h). */
#include "tests/lib/logfix.h"

#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/assert.h"
#include "proto/batch.h"
#include "tests/lib/testutil.h"

static void shard_up(struct logfix *f, enum ring_backend backend, size_t memory)
{
    int err = 0;
    struct ring_config rc = {.backend = backend, .entries = 64, .threads = 2};
    f->ring = ring_new(f->loop, &rc, &err);
    SL_ASSERT(f->ring != NULL);
    struct log_shard_config sc;
    log_shard_config_default(&sc);
    sc.buffer_bytes = 64u << 10;
    sc.memory_bytes = memory;
    f->shard = log_shard_new(f->loop, f->ring, &sc, &err);
    SL_ASSERT(f->shard != NULL);
}

void logfix_init(struct logfix *f, const char *name, enum ring_backend backend,
                 size_t shard_memory_bytes)
{
    memset(f, 0, sizeof(*f));
    f->loop = ev_loop_new(EVFLAG_AUTO);
    SL_ASSERT(f->loop != NULL);
    snprintf(f->dir, sizeof(f->dir), "%s/topic-0", tu_tmpdir(name));
    log_config_default(&f->config);
    f->config.segment_bytes = 256u << 10;
    f->config.preallocate_bytes = 64u << 10;
    /* The largest batch a shard accepts is bounded by half its buffers. */
    if (f->config.max_message_bytes > shard_memory_bytes / 2) {
        f->config.max_message_bytes = (uint32_t)(shard_memory_bytes / 2);
    }
    shard_up(f, backend, shard_memory_bytes);
}

void logfix_restart(struct logfix *f, enum ring_backend backend, size_t shard_memory_bytes)
{
    log_shard_free(f->shard);
    ring_free(f->ring);
    shard_up(f, backend, shard_memory_bytes);
}

void logfix_deinit(struct logfix *f)
{
    log_shard_free(f->shard);
    ring_free(f->ring);
    ev_loop_destroy(f->loop);
    char *slash = strrchr(f->dir, '/');
    *slash = '\0';
    tu_rmtree(f->dir);
}

struct log *logfix_open(struct logfix *f)
{
    int err = 0;
    struct log *log = log_open(f->shard, f->dir, &f->config, &err);
    if (log == NULL) {
        fprintf(stderr, "log_open: %s\n", strerror(-err));
    }
    return log;
}

void logfix_batch(struct buf *out, int64_t offset, int records, int64_t ts, uint32_t value_max)
{
    enum { MAX_RECORDS = 64 };
    static uint8_t values[MAX_RECORDS][1 << 16];
    struct batch_record recs[MAX_RECORDS];
    uint64_t state = (uint64_t)offset * 7919 + 17;
    SL_ASSERT(records > 0 && records <= MAX_RECORDS && value_max <= sizeof(values[0]));
    for (int i = 0; i < records; i++) {
        uint32_t len = (uint32_t)(tu_rand(&state) % (value_max + 1));
        for (uint32_t j = 0; j < len; j++) {
            values[i][j] = (uint8_t)(tu_rand(&state) >> 56);
        }
        recs[i] = (struct batch_record){
            .timestamp = ts + i,
            .key = (const uint8_t *)"key",
            .key_len = (i % 3 == 0) ? -1 : 3,
            .value = values[i],
            .value_len = (int32_t)len,
        };
    }
    struct batch_meta meta = {
        .base_offset = offset, .producer_id = -1, .producer_epoch = -1, .base_sequence = -1};
    int err = batch_encode(out, &meta, recs, (size_t)records);
    SL_ASSERT(err == 0);
}

void logfix_ack_cb(void *opaque, int status, int64_t base_offset)
{
    struct logfix_ack *ack = opaque;
    ack->status = status;
    ack->offset = base_offset;
    ack->done = true;
}

void logfix_wait(struct logfix *f, const bool *done)
{
    while (!*done) {
        ev_run(f->loop, EVRUN_ONCE);
    }
}

int logfix_append(struct logfix *f, struct log *log, const struct buf *batch, int64_t *offset)
{
    struct logfix_ack ack = {0};
    int err = log_append(log, batch->data, batch->len, 0, logfix_ack_cb, &ack, offset);
    if (err != 0) {
        return err;
    }
    logfix_wait(f, &ack.done);
    return ack.status;
}

struct read_wait {
    int status;
    bool done;
};

static void read_cb(void *opaque, int status)
{
    struct read_wait *w = opaque;
    w->status = status;
    w->done = true;
}

int logfix_read(struct logfix *f, struct log *log, int64_t offset, size_t max_bytes,
                struct buf *out)
{
    struct read_wait w = {0};
    struct log_read req = {
        .offset = offset,
        .max_offset = log_end_offset(log),
        .max_bytes = max_bytes,
        .out = out,
        .cb = read_cb,
        .opaque = &w,
    };
    int rc = log_read(log, &req);
    if (rc != LOG_PENDING) {
        return rc;
    }
    logfix_wait(f, &w.done);
    return w.status;
}

long logfix_verify(struct logfix *f, struct log *log, int records, int64_t ts_base,
                   uint32_t value_max)
{
    struct buf got;
    struct buf want;
    buf_init(&got, 64u << 20);
    buf_init(&want, 1u << 20);
    long batches = 0;
    int64_t offset = log_start_offset(log);
    while (offset < log_end_offset(log)) {
        buf_reset(&got);
        int n = logfix_read(f, log, offset, 1u << 20, &got);
        if (n <= 0) {
            fprintf(stderr, "verify: read at %lld gave %d\n", (long long)offset, n);
            batches = -1;
            break;
        }
        size_t at = 0;
        while (at < got.len) {
            struct batch_header h;
            if (batch_validate(got.data + at, got.len - at, BATCH_CHECK_FULL, 0, &h, NULL) != 0 ||
                h.base_offset != offset) {
                fprintf(stderr, "verify: bad batch at offset %lld\n", (long long)offset);
                batches = -1;
                goto out;
            }
            buf_reset(&want);
            logfix_batch(&want, offset, records, ts_base + offset, value_max);
            if (want.len != batch_total_bytes(&h) || memcmp(want.data, got.data + at, want.len)) {
                fprintf(stderr, "verify: batch at offset %lld differs\n", (long long)offset);
                batches = -1;
                goto out;
            }
            at += want.len;
            offset = batch_last_offset(&h) + 1;
            batches++;
        }
    }
out:
    buf_deinit(&got);
    buf_deinit(&want);
    return batches;
}
