/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Deduplication by message id (topic setting dedup.window.ms), as NATS
 * JetStream does: a record whose `msg-id` header this partition already took
 * within the window is dropped. This is what lets a producer that crashed and
 * came back under a new producer id resend its last messages without
 * duplicating them, which the producer-id window cannot see.
 *
 * One table per partition: msg-id -> the offset it was written at and when
 * (the broker's clock), in append order, expired from the oldest end and
 * bounded by `max` (past it the oldest go early, with a log line). At start
 * the table is rebuilt from the log's tail within the window (times from the
 * batches' timestamps, clamped to now).
 *
 * A batch is filtered as a whole: all new -> appended as sent; all
 * duplicates -> not written, answered with the first record's original
 * offset; some -> rebuilt without the duplicates, keeping every other
 * record's bytes, offset delta and the batch's header (so its offsets and,
 * for idempotent producers, its sequence range stay what the producer
 * counted, with gaps where the duplicates were, as a compacted batch has).
 * Batches in every codec Kafka has are filtered; a rebuilt zstd batch
 * stays zstd, one in another codec (which Sluice reads but does not write)
 * is stored uncompressed.
 */
#ifndef SL_BROKER_MSGIDS_H
#define SL_BROKER_MSGIDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

#define MSGIDS_HEADER      "msg-id"
#define MSGIDS_ID_MAX      256 /* bytes of one id; a longer one refuses its batch */
#define MSGIDS_RECORDS_MAX 1000000
/* Records of one compressed batch are read back into at most this much. */
#define MSGIDS_DECOMPRESSED_MAX (64u << 20)

struct log;
struct msgids;

struct msgids *msgids_new(uint32_t max, const char *name);
void msgids_free(struct msgids *m);
uint32_t msgids_count(const struct msgids *m);

/* The offset an id was written at within the window, or -1. */
int64_t msgids_find(struct msgids *m, const uint8_t *id, size_t len, int64_t now_ms,
                    int64_t window_ms);
/* Remembers an id (the newest entry). 0 or -ENOMEM. */
int msgids_add(struct msgids *m, const uint8_t *id, size_t len, int64_t offset, int64_t time_ms);
/* Drops entries older than the window. */
void msgids_expire(struct msgids *m, int64_t now_ms, int64_t window_ms);
/* Forgets entries at or past offset (an append that failed rolled them back). */
void msgids_forget_from(struct msgids *m, int64_t offset);

/* The outcome of filtering one batch. */
struct msgids_filter {
    int32_t records;
    int32_t duplicates;
    int64_t first_original; /* all duplicates: the first record's original offset */
    bool rewritten;         /* some duplicates: the batch to append is in out */
    struct buf out;
    struct buf plain; /* decompressed records, when the batch was compressed */
    /* The ids of the records kept, with their offset deltas, for msgids_commit. */
    const uint8_t **ids;
    uint16_t *id_lens;
    int32_t *deltas;
    int32_t kept_ids;
};

/*
 * Filters one batch (whole, validated) against the table. 0 on success;
 * -ENOTSUP for an unknown codec, -EINVAL for an id longer
 * than MSGIDS_ID_MAX, -EMSGSIZE when decompressed records pass
 * decompressed_max, -EBADMSG for records that do not parse, -ENOMEM.
 * keep_empty rebuilds a batch of only duplicates as an empty batch (no
 * records, same header): an idempotent producer's sequence range must reach
 * the log even when none of its records do, or a replay would see a gap.
 * f must be released with msgids_filter_deinit whatever the result.
 */
int msgids_filter(struct msgids *m, const uint8_t *batch, size_t len, int64_t now_ms,
                  int64_t window_ms, size_t decompressed_max, int zstd_level, bool keep_empty,
                  struct msgids_filter *f);
/* Remembers the kept ids once the batch has its base offset. */
void msgids_commit(struct msgids *m, const struct msgids_filter *f, int64_t base_offset,
                   int64_t now_ms);
void msgids_filter_deinit(struct msgids_filter *f);

/* Rebuilds the table from the batches of the last window_ms of the log. */
int msgids_load(struct msgids *m, struct log *log, int64_t now_ms, int64_t window_ms,
                size_t decompressed_max);

#endif
