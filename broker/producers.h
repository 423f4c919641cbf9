/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Idempotent producers: one partition's table of producer ids, each with its
 * epoch and the last `window` batches it wrote (first and last sequence,
 * first and last offset), so that a retried batch is answered with its
 * original offsets instead of being written twice, a gap in sequence is
 * refused, and an older epoch is fenced. Kafka's rules (ProducerStateManager):
 *
 *   epoch older than the producer's              INVALID_PRODUCER_EPOCH
 *   epoch newer: the first sequence must be 0    else OUT_OF_ORDER_SEQUENCE_NUMBER
 *   same epoch: a batch of the window again      DUPLICATE (its original offsets)
 *               first sequence = last + 1        appended (wrapping at INT32_MAX)
 *               anything else                    OUT_OF_ORDER_SEQUENCE_NUMBER
 *   unknown producer (new, expired or evicted)   appended, whatever its sequence:
 *                                                Kafka 2.5+ accepts it, since its
 *                                                state may have expired legitimately
 *
 * The table survives restarts through snapshots, <offset:020>.snapshot in the
 * partition's directory (state of every batch below that offset), written at
 * clean shutdown and when the log rolls, plus a replay of the batches stored
 * after the newest snapshot that is not past the log's end. Idle producers
 * expire after expiration_ms; past max producers the longest idle one is
 * evicted, with a log line.
 */
#ifndef SL_BROKER_PRODUCERS_H
#define SL_BROKER_PRODUCERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PRODUCERS_WINDOW_MAX 64

struct log;

struct producers_config {
    uint32_t window;       /* producer.dedup.window: batches kept per producer */
    int64_t expiration_ms; /* producer.id.expiration.ms */
    uint32_t max;          /* producer.id.max.per.partition */
};

/* A batch a producer wrote. */
struct producer_batch {
    int32_t first_seq;
    int32_t last_seq;
    int64_t first_offset;
    int64_t last_offset;
    int64_t timestamp_ms;
    void *inflight; /* the caller's: set while the append is not yet durable */
};

struct producers;

struct producers *producers_new(const struct producers_config *config, const char *name);
void producers_free(struct producers *ps);
uint32_t producers_count(const struct producers *ps);

enum {
    PRODUCERS_APPEND = 0,
    PRODUCERS_DUPLICATE = 1,
};

/* The sequence of a batch's last record, as Kafka counts it (wrapping). */
int32_t producers_last_seq(int32_t base_seq, int32_t last_offset_delta);

/*
 * Checks one idempotent batch (producer_id >= 0) against the table. Returns
 * PRODUCERS_APPEND, PRODUCERS_DUPLICATE with *dup the original batch (valid
 * until the next call that changes the table), or a Kafka error code
 * negated (-KAFKA_ERR_...). Changes nothing.
 */
int producers_check(const struct producers *ps, int64_t producer_id, int16_t epoch,
                    int32_t first_seq, int32_t last_seq, const struct producer_batch **dup);

/*
 * Records a batch just given its offsets (after producers_check said
 * APPEND). Returns the window entry (for its inflight field) or NULL when
 * out of memory (the batch is still written; only its retry would not be
 * recognised). now_ms is the wall clock, for expiry.
 */
struct producer_batch *producers_record(struct producers *ps, int64_t producer_id, int16_t epoch,
                                        const struct producer_batch *batch, int64_t now_ms);
/* The entry of a batch, or NULL once it left the window. */
struct producer_batch *producers_find(struct producers *ps, int64_t producer_id, int16_t epoch,
                                      int32_t first_seq);
/* Forgets a batch whose append failed (it must be its producer's newest). */
void producers_forget(struct producers *ps, int64_t producer_id, int16_t epoch, int32_t first_seq);
/* Drops producers idle for longer than expiration_ms. */
void producers_expire(struct producers *ps, int64_t now_ms);

/*
 * Writes the table as of `offset` (every batch below it recorded) into dir,
 * synced, and removes older snapshots but the previous one. 0 or -errno.
 * Synchronous file I/O: a few bytes per producer, at roll and shutdown.
 */
int producers_snapshot(const struct producers *ps, const char *dir, int64_t offset);

/*
 * Rebuilds the table of the log in dir: the newest snapshot at or below the
 * log's end, then every stored batch after it. 0 or -errno (a snapshot that
 * fails its CRC is skipped, with a log line).
 */
int producers_load(struct producers *ps, struct log *log, int64_t now_ms);

#endif
