/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Kafka RecordBatch v2 (magic 2): encode, decode, validate.
 *
 * Batches are stored on disk and sent on the wire in exactly this layout, so
 * this module is shared by the broker, the storage engine and the client. The
 * full byte layout and the validation rules are described in batch.c.
 *
 * The leader assigns offsets by rewriting baseOffset and partitionLeaderEpoch,
 * which lie outside the CRC (it covers attributes..end), so neither rewrite
 * needs the CRC recomputed.
 */
#ifndef SL_PROTO_BATCH_H
#define SL_PROTO_BATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

/* The magic byte of RecordBatch v2, the only format served and written. */
#define BATCH_MAGIC 2
/* baseOffset (8) + batchLength (4): the part of a batch not counted by batchLength. */
#define BATCH_LOG_OVERHEAD 12
/* Fixed header through the records count. */
#define BATCH_HEADER_BYTES 61
/* Offsets of header fields (see the layout in batch.c). */
#define BATCH_OFF_BASE_OFFSET       0
#define BATCH_OFF_LENGTH            8
#define BATCH_OFF_LEADER_EPOCH      12
#define BATCH_OFF_MAGIC             16
#define BATCH_OFF_CRC               17
#define BATCH_OFF_ATTRIBUTES        21
#define BATCH_OFF_LAST_OFFSET_DELTA 23
#define BATCH_OFF_FIRST_TIMESTAMP   27
#define BATCH_OFF_MAX_TIMESTAMP     35
#define BATCH_OFF_PRODUCER_ID       43
#define BATCH_OFF_PRODUCER_EPOCH    51
#define BATCH_OFF_BASE_SEQUENCE     53
#define BATCH_OFF_RECORD_COUNT      57

/* attributes bits */
#define BATCH_ATTR_COMPRESSION_MASK 0x07
#define BATCH_ATTR_LOG_APPEND_TIME  0x08
#define BATCH_ATTR_TRANSACTIONAL    0x10
#define BATCH_ATTR_CONTROL          0x20
#define BATCH_ATTR_DELETE_HORIZON   0x40

enum batch_compression {
    BATCH_COMPRESSION_NONE = 0,
    BATCH_COMPRESSION_GZIP = 1,
    BATCH_COMPRESSION_SNAPPY = 2,
    BATCH_COMPRESSION_LZ4 = 3,
    BATCH_COMPRESSION_ZSTD = 4,
};

struct batch_header {
    int64_t base_offset;
    int32_t batch_length; /* bytes after the batchLength field */
    int32_t leader_epoch;
    int8_t magic;
    uint32_t crc;
    int16_t attributes;
    int32_t last_offset_delta;
    int64_t first_timestamp;
    int64_t max_timestamp;
    int64_t producer_id;
    int16_t producer_epoch;
    int32_t base_sequence;
    int32_t record_count;
};

/* Total bytes the batch occupies: BATCH_LOG_OVERHEAD + batch_length. */
static inline size_t batch_total_bytes(const struct batch_header *h)
{
    return (size_t)BATCH_LOG_OVERHEAD + (size_t)h->batch_length;
}

static inline int64_t batch_last_offset(const struct batch_header *h)
{
    return h->base_offset + h->last_offset_delta;
}

/*
 * Decodes the fixed header from p (which must hold BATCH_HEADER_BYTES) without
 * checking anything. Returns 0, or -EAGAIN when len < BATCH_HEADER_BYTES.
 */
int batch_header_decode(const uint8_t *p, size_t len, struct batch_header *h);

/* How deep batch_validate looks. */
enum batch_check {
    /* Framing only: length sane and within len, magic 2, CRC correct.
     * What recovery uses to find the end of a log. */
    BATCH_CHECK_FRAMING,
    /* Everything a producer's batch must satisfy before it is appended:
     * framing, record count >= 1 and == lastOffsetDelta + 1, timestamps
     * consistent, and for uncompressed batches every record parsed with
     * bounded varints, sequential offset deltas and lengths summing exactly
     * to the batch length. Compressed payloads are not opened here. */
    BATCH_CHECK_FULL,
};

/*
 * Validates the batch at the start of p[0..len). On success returns 0 and
 * fills *h (if not NULL). On failure returns
 *   -EAGAIN   fewer bytes than the header or than batchLength says (truncated:
 *             at a log's tail this is a torn write),
 *   -EBADMSG  corrupt: bad magic, bad length, CRC mismatch, malformed records,
 *   -EMSGSIZE the batch is larger than max_bytes (0 = no limit),
 * and points *why (if not NULL) at a static string naming the first failed
 * check, for log lines.
 */
int batch_validate(const uint8_t *p, size_t len, enum batch_check check, size_t max_bytes,
                   struct batch_header *h, const char **why);

/* Rewrite fields outside the CRC in place. */
void batch_set_base_offset(uint8_t *p, int64_t base_offset);
void batch_set_leader_epoch(uint8_t *p, int32_t leader_epoch);

/* Computes the CRC over attributes..end of the batch at p (total bytes given). */
uint32_t batch_compute_crc(const uint8_t *p, size_t total_bytes);

/*
 * The largest record timestamp of an uncompressed batch (what a CreateTime
 * batch's maxTimestamp must hold), after the checks of batch_validate with
 * BATCH_CHECK_FULL. Returns 0, batch_validate's errors, or -ENOTSUP for a
 * compressed batch (its records are not opened here).
 */
int batch_max_record_timestamp(const uint8_t *p, size_t len, int64_t *max_timestamp,
                               const char **why);

/*
 * Kafka's DefaultRecordBatch.setMaxTimestamp: sets the timestamp type
 * (LogAppendTime or CreateTime) and maxTimestamp of the batch at p and
 * recomputes its CRC, which covers both. Check the batch first: this makes
 * any bytes look intact.
 */
void batch_set_max_timestamp(uint8_t *p, size_t total_bytes, bool log_append_time,
                             int64_t max_timestamp);

/* ---------------------------------------------------------------- records */

struct batch_record_header {
    const char *key; /* not NUL-terminated */
    int32_t key_len; /* -1 = null */
    const char *value;
    int32_t value_len; /* -1 = null */
};

/* A record as given to the encoder, and as produced by the iterator. */
struct batch_record {
    int64_t timestamp; /* absolute, ms */
    const uint8_t *key;
    int32_t key_len; /* -1 = null key */
    const uint8_t *value;
    int32_t value_len; /* -1 = null value */
    const struct batch_record_header *headers;
    uint32_t header_count;
    int32_t offset_delta; /* set by the iterator; ignored by the encoder */
};

/* Batch-level fields for the encoder. */
struct batch_meta {
    int64_t base_offset;
    int32_t leader_epoch;
    int16_t attributes;  /* compression bits must be 0: the encoder writes plain records */
    int64_t producer_id; /* -1 when not idempotent */
    int16_t producer_epoch;
    int32_t base_sequence;
};

/*
 * Appends one uncompressed batch holding recs[0..n) to out, CRC computed.
 * first/max timestamps are taken from the records. Returns 0, -EINVAL for
 * n == 0, or the buf's error (out unchanged on failure).
 */
int batch_encode(struct buf *out, const struct batch_meta *meta, const struct batch_record *recs,
                 size_t n);

/*
 * Iterates the records of an uncompressed batch that passed BATCH_CHECK_FULL
 * (or FRAMING: the iterator still checks every length itself). Header arrays
 * are decoded into the caller's scratch space of header_slots entries; a record
 * with more headers than that fails with -ENOBUFS.
 */
struct batch_record_iter {
    const uint8_t *pos;
    const uint8_t *end;
    int64_t first_timestamp;
    int64_t log_append_time; /* every record's timestamp when the batch says so, else -1 */
    int32_t remaining;
    struct batch_record_header *header_slots;
    uint32_t header_slot_count;
};

/* Returns 0, or -ENOTSUP for a compressed batch, -EBADMSG for a bad header. */
int batch_record_iter_init(struct batch_record_iter *it, const uint8_t *batch, size_t len,
                           struct batch_record_header *header_slots, uint32_t header_slot_count);
/* The same over a records section already taken out of its batch (the
 * decompressed records of a compressed batch): h gives the count and the
 * timestamps. */
void batch_record_iter_init_records(struct batch_record_iter *it, const uint8_t *records,
                                    size_t len, const struct batch_header *h,
                                    struct batch_record_header *header_slots,
                                    uint32_t header_slot_count);
/* Returns 1 and fills *rec, 0 at the end, or -EBADMSG / -ENOBUFS. Pointers in
 * *rec borrow from the batch. */
int batch_record_iter_next(struct batch_record_iter *it, struct batch_record *rec);

#endif
