/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A storage test fixture: a libev loop, a ring of a chosen backend, a log
 * shard, and helpers to append and read synchronously by running the loop.
 * Batches are made deterministically from their offset, so any reader can
 * tell what a batch at a given offset must contain.
 */
#ifndef SL_TESTS_LOGFIX_H
#define SL_TESTS_LOGFIX_H

#include <stdbool.h>
#include <stdint.h>

#include "common/buf.h"
#include "storage/log.h"
#include "storage/ring.h"

struct logfix {
    struct ev_loop *loop;
    struct ring *ring;
    struct log_shard *shard;
    char dir[512];
    struct log_config config;
};

/* Sets up loop, ring (backend) and shard; dir is a fresh temporary directory. */
void logfix_init(struct logfix *f, const char *name, enum ring_backend backend,
                 size_t shard_memory_bytes);
/* Replaces the ring and shard (after a simulated power loss). */
void logfix_restart(struct logfix *f, enum ring_backend backend, size_t shard_memory_bytes);
void logfix_deinit(struct logfix *f);
struct log *logfix_open(struct logfix *f);

/*
 * The batch stored at `offset`: records records whose bytes derive from the
 * offset (value sizes vary from a few bytes to value_max), timestamps from
 * ts. Leader epoch 0; base offset = offset, as the log would store it.
 */
void logfix_batch(struct buf *out, int64_t offset, int records, int64_t ts, uint32_t value_max);

struct logfix_ack {
    int status;
    int64_t offset;
    bool done;
};

void logfix_ack_cb(void *opaque, int status, int64_t base_offset);
/* Runs the loop until *done. */
void logfix_wait(struct logfix *f, const bool *done);
/* Appends and waits; returns the callback status (or the sync error). */
int logfix_append(struct logfix *f, struct log *log, const struct buf *batch, int64_t *offset);
/* Reads and waits; batches appended to out; returns bytes or -errno. */
int logfix_read(struct logfix *f, struct log *log, int64_t offset, size_t max_bytes,
                struct buf *out);
/* Checks that every batch from the log start to its end is the one
 * logfix_batch makes for its offset (records per batch as given, ts derived
 * by ts_of(offset)); returns the number of batches checked, or -1. */
long logfix_verify(struct logfix *f, struct log *log, int records, int64_t ts_base,
                   uint32_t value_max);

#endif
