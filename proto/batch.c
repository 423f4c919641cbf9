/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Kafka RecordBatch v2 (magic 2): encode, validate, iterate records.
 *
 * BATCH FORMAT
 *
 * All fixed-width integers are big-endian and signed unless noted. A batch is
 * a 61-byte header followed by the records:
 *
 *   offset  size  field
 *        0     8  baseOffset             offset of the first record; set by the leader
 *        8     4  batchLength            bytes that follow this field (total - 12)
 *       12     4  partitionLeaderEpoch   set by the leader
 *       16     1  magic                  2
 *       17     4  crc                    unsigned CRC-32C of bytes 21 .. end of batch
 *       21     2  attributes             bits 0-2 compression (0 none, 1 gzip,
 *                                        2 snappy, 3 lz4, 4 zstd), bit 3 timestamp
 *                                        type (1 = LogAppendTime), bit 4
 *                                        transactional, bit 5 control, bit 6 delete
 *                                        horizon; bits 7-15 unused, zero
 *       23     4  lastOffsetDelta        offset of the last record - baseOffset
 *       27     8  baseTimestamp          the first record's timestamp (ms)
 *       35     8  maxTimestamp           the largest record timestamp (ms)
 *       43     8  producerId             -1 when not idempotent
 *       51     2  producerEpoch
 *       53     4  baseSequence           sequence of the first record, -1 if none
 *       57     4  recordsCount
 *       61     -  records: recordsCount of them, or, when compressed, one
 *                 compressed blob holding them
 *
 * baseOffset and partitionLeaderEpoch lie before the CRC'd range, so a leader
 * stamps them without recomputing the CRC.
 *
 * Each record (Kafka's varints: zig-zag base-128, see common/varint.c):
 *
 *   length          varint   bytes of the record after this field
 *   attributes      int8     unused, written 0
 *   timestampDelta  varlong  timestamp - baseTimestamp
 *   offsetDelta     varint   offset - baseOffset
 *   keyLength       varint   -1 = null key
 *   key             keyLength bytes
 *   valueLength     varint   -1 = null value
 *   value           valueLength bytes
 *   headerCount     varint
 *   headers         headerCount times:
 *       headerKeyLength    varint (>= 0: header keys are never null)
 *       headerKey          bytes
 *       headerValueLength  varint (-1 = null value)
 *       headerValue        bytes
 *
 * The smallest record is 7 bytes: a length of 6 and six one-byte fields.
 *
 * VALIDATION
 *
 * BATCH_CHECK_FRAMING, in this order (the first failure is reported):
 *   1. at least 17 bytes, to see the magic          else -EAGAIN
 *   2. magic == 2                                    else -EBADMSG
 *   3. batchLength >= 49 (the header after offset 12; also refuses negative
 *      lengths)                                      else -EBADMSG
 *   4. 12 + batchLength <= max_bytes (if max_bytes)  else -EMSGSIZE
 *   5. 12 + batchLength <= len                       else -EAGAIN
 *   6. CRC-32C of bytes 21 .. 12 + batchLength == crc else -EBADMSG
 * The checks that need only the first bytes come first, so that a garbage
 * length is reported as corrupt rather than as a long wait for more bytes, and
 * a batch that is too large is refused before the bytes arrive. A valid batch
 * cut short anywhere gives -EAGAIN.
 *
 * BATCH_CHECK_FULL adds, all -EBADMSG:
 *   7. attributes: unused bits 7-15 zero, compression <= 4 (zstd)
 *   8. recordsCount >= 1 and lastOffsetDelta == recordsCount - 1
 *   9. producerId >= 0 implies baseSequence >= 0; a transactional batch has a
 *      producerId >= 0 (Kafka refuses the same)
 *  10. CreateTime batches: maxTimestamp is -1 (not filled in: sarama sends
 *      this, and Kafka accepts it by rewriting the field) or >= baseTimestamp
 * and, for uncompressed batches only (a compressed blob is not opened here):
 *  11. recordsCount <= (batch bytes - 61) / 7, so a lying count is refused
 *      before any record is read
 *  12. every record parses within its own length and the batch: varints
 *      bounded, key and value lengths >= -1, header counts and key lengths
 *      >= 0, every length within what remains, the fields ending exactly at
 *      the record's end
 *  13. offsetDelta of the i-th record == i
 *  14. baseTimestamp + timestampDelta does not overflow; for CreateTime
 *      batches whose maxTimestamp is not -1, it equals the largest record
 *      timestamp
 *  15. the records end exactly at the end of the batch
 * LogAppendTime batches skip the timestamp checks: the broker that stamped
 * them set maxTimestamp, and the records' own timestamps are not used.
 */
#include "proto/batch.h"

#include <errno.h>
#include <limits.h>
#include <string.h>

#include "common/assert.h"
#include "common/bytes.h"
#include "common/crc32c.h"
#include "common/varint.h"

/* The bytes batchLength must cover at least: the header after offset 12. */
#define BATCH_LENGTH_MIN (BATCH_HEADER_BYTES - BATCH_LOG_OVERHEAD)
/* The smallest record body (after its length varint): attributes,
 * timestampDelta, offsetDelta, keyLength, valueLength, headerCount, one byte
 * each. */
#define BATCH_RECORD_BODY_MIN_BYTES 6
/* The smallest record including its one-byte length. */
#define BATCH_RECORD_MIN_BYTES (1 + BATCH_RECORD_BODY_MIN_BYTES)
/* The smallest header: two one-byte lengths (empty key, null value). */
#define BATCH_HEADER_ENTRY_MIN_BYTES 2
/* Attribute bits with a meaning; the others must be zero. */
#define BATCH_ATTR_KNOWN_MASK 0x7f

/* The layout above, checked field by field: each offset is the previous one
 * plus the previous field's size. */
_Static_assert(BATCH_OFF_BASE_OFFSET == 0, "layout");
_Static_assert(BATCH_OFF_LENGTH == BATCH_OFF_BASE_OFFSET + 8, "layout");
_Static_assert(BATCH_LOG_OVERHEAD == BATCH_OFF_LENGTH + 4, "batchLength counts after itself");
_Static_assert(BATCH_OFF_LEADER_EPOCH == BATCH_OFF_LENGTH + 4, "layout");
_Static_assert(BATCH_OFF_MAGIC == BATCH_OFF_LEADER_EPOCH + 4, "layout");
_Static_assert(BATCH_OFF_CRC == BATCH_OFF_MAGIC + 1, "layout");
_Static_assert(BATCH_OFF_ATTRIBUTES == BATCH_OFF_CRC + 4, "layout");
_Static_assert(BATCH_OFF_LAST_OFFSET_DELTA == BATCH_OFF_ATTRIBUTES + 2, "layout");
_Static_assert(BATCH_OFF_FIRST_TIMESTAMP == BATCH_OFF_LAST_OFFSET_DELTA + 4, "layout");
_Static_assert(BATCH_OFF_MAX_TIMESTAMP == BATCH_OFF_FIRST_TIMESTAMP + 8, "layout");
_Static_assert(BATCH_OFF_PRODUCER_ID == BATCH_OFF_MAX_TIMESTAMP + 8, "layout");
_Static_assert(BATCH_OFF_PRODUCER_EPOCH == BATCH_OFF_PRODUCER_ID + 8, "layout");
_Static_assert(BATCH_OFF_BASE_SEQUENCE == BATCH_OFF_PRODUCER_EPOCH + 2, "layout");
_Static_assert(BATCH_OFF_RECORD_COUNT == BATCH_OFF_BASE_SEQUENCE + 4, "layout");
_Static_assert(BATCH_HEADER_BYTES == BATCH_OFF_RECORD_COUNT + 4, "header ends after the count");
_Static_assert(BATCH_HEADER_BYTES == 61, "Kafka's RecordBatch v2 header is 61 bytes");
_Static_assert(BATCH_LENGTH_MIN == 49, "Kafka's RECORD_BATCH_OVERHEAD - LOG_OVERHEAD");
_Static_assert((BATCH_ATTR_COMPRESSION_MASK | BATCH_ATTR_LOG_APPEND_TIME |
                BATCH_ATTR_TRANSACTIONAL | BATCH_ATTR_CONTROL | BATCH_ATTR_DELETE_HORIZON) ==
                   BATCH_ATTR_KNOWN_MASK,
               "known attribute bits");

static int fail(const char **why, int err, const char *reason)
{
    if (why != NULL) {
        *why = reason;
    }
    return err;
}

/* ---------------------------------------------------------------- header */

int batch_header_decode(const uint8_t *p, size_t len, struct batch_header *h)
{
    if (len < BATCH_HEADER_BYTES) {
        return -EAGAIN;
    }
    h->base_offset = (int64_t)be64_get(p + BATCH_OFF_BASE_OFFSET);
    h->batch_length = (int32_t)be32_get(p + BATCH_OFF_LENGTH);
    h->leader_epoch = (int32_t)be32_get(p + BATCH_OFF_LEADER_EPOCH);
    h->magic = (int8_t)p[BATCH_OFF_MAGIC];
    h->crc = be32_get(p + BATCH_OFF_CRC);
    h->attributes = (int16_t)be16_get(p + BATCH_OFF_ATTRIBUTES);
    h->last_offset_delta = (int32_t)be32_get(p + BATCH_OFF_LAST_OFFSET_DELTA);
    h->first_timestamp = (int64_t)be64_get(p + BATCH_OFF_FIRST_TIMESTAMP);
    h->max_timestamp = (int64_t)be64_get(p + BATCH_OFF_MAX_TIMESTAMP);
    h->producer_id = (int64_t)be64_get(p + BATCH_OFF_PRODUCER_ID);
    h->producer_epoch = (int16_t)be16_get(p + BATCH_OFF_PRODUCER_EPOCH);
    h->base_sequence = (int32_t)be32_get(p + BATCH_OFF_BASE_SEQUENCE);
    h->record_count = (int32_t)be32_get(p + BATCH_OFF_RECORD_COUNT);
    return 0;
}

void batch_set_base_offset(uint8_t *p, int64_t base_offset)
{
    be64_put(p + BATCH_OFF_BASE_OFFSET, (uint64_t)base_offset);
}

void batch_set_leader_epoch(uint8_t *p, int32_t leader_epoch)
{
    be32_put(p + BATCH_OFF_LEADER_EPOCH, (uint32_t)leader_epoch);
}

uint32_t batch_compute_crc(const uint8_t *p, size_t total_bytes)
{
    /* Callers pass the size of a batch they framed or built. */
    SL_ASSERT(total_bytes >= BATCH_HEADER_BYTES);
    return crc32c(0, p + BATCH_OFF_ATTRIBUTES, total_bytes - BATCH_OFF_ATTRIBUTES);
}

/* ---------------------------------------------------------------- records */

/* One record as parsed; pointers borrow from the batch. */
struct record_view {
    int64_t timestamp_delta;
    int32_t offset_delta;
    const uint8_t *key;
    int32_t key_len;
    const uint8_t *value;
    int32_t value_len;
    uint32_t header_count;
};

static inline int read_varint(const uint8_t **p, const uint8_t *end, int32_t *out)
{
    /* Inline fast path: most record fields are one-byte varints, and a call
     * per field is a large share of the full check's cost. */
    if (*p < end && **p < 0x80) {
        uint8_t b = **p;
        *out = (int32_t)(b >> 1) ^ -(int32_t)(b & 1);
        (*p)++;
        return 0;
    }
    int n = varint_get(*p, (size_t)(end - *p), out);
    if (n < 0) {
        return n;
    }
    *p += n;
    return 0;
}

/* A length-prefixed byte field: length -1 (if nullable) is null, else the
 * bytes must lie within end. */
static int read_bytes(const uint8_t **p, const uint8_t *end, bool nullable, const uint8_t **data,
                      int32_t *len, const char **why, const char *what)
{
    int32_t n;
    if (read_varint(p, end, &n) < 0) {
        return fail(why, -EBADMSG, what);
    }
    if (n == -1 && nullable) {
        *data = NULL;
        *len = -1;
        return 0;
    }
    if (n < 0 || n > end - *p) {
        return fail(why, -EBADMSG, what);
    }
    *data = *p;
    *len = n;
    *p += n;
    return 0;
}

/*
 * Parses the record at *pos, which must end by `end`. With `store` the headers
 * are written to slots[0..slot_count) (-ENOBUFS if there are more); without,
 * they are only checked. On success advances *pos past the record.
 */
static int record_parse(const uint8_t **pos, const uint8_t *end, struct record_view *rv, bool store,
                        struct batch_record_header *slots, uint32_t slot_count, const char **why)
{
    const uint8_t *p = *pos;
    int32_t rec_len;
    if (read_varint(&p, end, &rec_len) < 0) {
        return fail(why, -EBADMSG, "record length varint malformed");
    }
    if (rec_len < BATCH_RECORD_BODY_MIN_BYTES || rec_len > end - p) {
        return fail(why, -EBADMSG, "record length out of range");
    }
    const uint8_t *rend = p + rec_len;
    p++; /* attributes: unused by Kafka, not checked */
    int n = varlong_get(p, (size_t)(rend - p), &rv->timestamp_delta);
    if (n < 0) {
        return fail(why, -EBADMSG, "record timestampDelta malformed");
    }
    p += n;
    if (read_varint(&p, rend, &rv->offset_delta) < 0) {
        return fail(why, -EBADMSG, "record offsetDelta malformed");
    }
    int rc = read_bytes(&p, rend, true, &rv->key, &rv->key_len, why, "record key length bad");
    if (rc < 0) {
        return rc;
    }
    rc = read_bytes(&p, rend, true, &rv->value, &rv->value_len, why, "record value length bad");
    if (rc < 0) {
        return rc;
    }
    int32_t count;
    if (read_varint(&p, rend, &count) < 0) {
        return fail(why, -EBADMSG, "record header count malformed");
    }
    if (count < 0 || count > (rend - p) / BATCH_HEADER_ENTRY_MIN_BYTES) {
        return fail(why, -EBADMSG, "record header count out of range");
    }
    if (store && (uint32_t)count > slot_count) {
        return fail(why, -ENOBUFS, "more record headers than header slots");
    }
    for (int32_t i = 0; i < count; i++) {
        const uint8_t *key;
        const uint8_t *value;
        int32_t key_len;
        int32_t value_len;
        rc = read_bytes(&p, rend, false, &key, &key_len, why, "header key length bad");
        if (rc < 0) {
            return rc;
        }
        rc = read_bytes(&p, rend, true, &value, &value_len, why, "header value length bad");
        if (rc < 0) {
            return rc;
        }
        if (store) {
            slots[i].key = (const char *)key;
            slots[i].key_len = key_len;
            slots[i].value = (const char *)value;
            slots[i].value_len = value_len;
        }
    }
    if (p != rend) {
        return fail(why, -EBADMSG, "record length disagrees with its fields");
    }
    rv->header_count = (uint32_t)count;
    *pos = rend;
    return 0;
}

/* --------------------------------------------------------------- validate */

/* Checks 11-15 of the layout comment: the records of an uncompressed batch.
 * The largest record timestamp goes to *max_out. */
static int validate_records(const uint8_t *p, size_t total, const struct batch_header *h,
                            bool create_time, int64_t *max_out, const char **why)
{
    if ((size_t)h->record_count > (total - BATCH_HEADER_BYTES) / BATCH_RECORD_MIN_BYTES) {
        return fail(why, -EBADMSG, "record count exceeds what the batch can hold");
    }
    const uint8_t *pos = p + BATCH_HEADER_BYTES;
    const uint8_t *end = p + total;
    int64_t max_timestamp = INT64_MIN;
    for (int32_t i = 0; i < h->record_count; i++) {
        struct record_view rv;
        int rc = record_parse(&pos, end, &rv, false, NULL, 0, why);
        if (rc < 0) {
            return rc;
        }
        if (rv.offset_delta != i) {
            return fail(why, -EBADMSG, "record offsetDelta not sequential");
        }
        int64_t ts;
        if (__builtin_add_overflow(h->first_timestamp, rv.timestamp_delta, &ts)) {
            return fail(why, -EBADMSG, "record timestamp overflows");
        }
        max_timestamp = SL_MAX(max_timestamp, ts);
    }
    if (pos != end) {
        return fail(why, -EBADMSG, "bytes after the last record");
    }
    if (create_time && h->max_timestamp != -1 && h->max_timestamp != max_timestamp) {
        return fail(why, -EBADMSG, "maxTimestamp is not the largest record timestamp");
    }
    *max_out = max_timestamp;
    return 0;
}

/* Checks 7-15 of the layout comment, on a batch that passed the framing; the
 * largest record timestamp of an uncompressed batch goes to *max_out. */
static int validate_full(const uint8_t *p, size_t total, const struct batch_header *h,
                         int64_t *max_out, const char **why)
{
    if ((h->attributes & ~BATCH_ATTR_KNOWN_MASK) != 0) {
        return fail(why, -EBADMSG, "attributes has unused bits set");
    }
    int compression = h->attributes & BATCH_ATTR_COMPRESSION_MASK;
    if (compression > BATCH_COMPRESSION_ZSTD) {
        return fail(why, -EBADMSG, "attributes names an unknown compression");
    }
    if (h->record_count < 1) {
        return fail(why, -EBADMSG, "record count below 1");
    }
    if (h->last_offset_delta != h->record_count - 1) {
        return fail(why, -EBADMSG, "lastOffsetDelta is not record count - 1");
    }
    if (h->producer_id >= 0 && h->base_sequence < 0) {
        return fail(why, -EBADMSG, "negative baseSequence with a producerId");
    }
    if ((h->attributes & BATCH_ATTR_TRANSACTIONAL) != 0 && h->producer_id < 0) {
        return fail(why, -EBADMSG, "transactional batch without a producerId");
    }
    bool create_time = (h->attributes & BATCH_ATTR_LOG_APPEND_TIME) == 0;
    if (create_time && h->max_timestamp != -1 && h->max_timestamp < h->first_timestamp) {
        return fail(why, -EBADMSG, "maxTimestamp below baseTimestamp");
    }
    if (compression != BATCH_COMPRESSION_NONE) {
        return 0;
    }
    return validate_records(p, total, h, create_time, max_out, why);
}

/* batch_validate, and the largest record timestamp of an uncompressed batch
 * in *max_out (BATCH_CHECK_FULL only; else left alone). */
static int validate(const uint8_t *p, size_t len, enum batch_check check, size_t max_bytes,
                    struct batch_header *h, int64_t *max_out, const char **why)
{
    if (len <= BATCH_OFF_MAGIC) {
        return fail(why, -EAGAIN, "truncated before the magic byte");
    }
    if (p[BATCH_OFF_MAGIC] != BATCH_MAGIC) {
        return fail(why, -EBADMSG, "magic is not 2");
    }
    int32_t batch_length = (int32_t)be32_get(p + BATCH_OFF_LENGTH);
    if (batch_length < BATCH_LENGTH_MIN) {
        return fail(why, -EBADMSG, "batchLength smaller than the header");
    }
    size_t total = BATCH_LOG_OVERHEAD + (size_t)batch_length;
    if (max_bytes != 0 && total > max_bytes) {
        return fail(why, -EMSGSIZE, "batch larger than the maximum");
    }
    if (len < total) {
        return fail(why, -EAGAIN, "truncated: fewer bytes than batchLength");
    }
    struct batch_header local;
    int rc = batch_header_decode(p, len, &local);
    /* total >= BATCH_HEADER_BYTES was checked through batch_length. */
    SL_ASSERT(rc == 0);
    if (batch_compute_crc(p, total) != local.crc) {
        return fail(why, -EBADMSG, "CRC mismatch");
    }
    if (check == BATCH_CHECK_FULL) {
        rc = validate_full(p, total, &local, max_out, why);
        if (rc < 0) {
            return rc;
        }
    }
    if (h != NULL) {
        *h = local;
    }
    return 0;
}

int batch_validate(const uint8_t *p, size_t len, enum batch_check check, size_t max_bytes,
                   struct batch_header *h, const char **why)
{
    int64_t max_timestamp;
    return validate(p, len, check, max_bytes, h, &max_timestamp, why);
}

int batch_max_record_timestamp(const uint8_t *p, size_t len, int64_t *max_timestamp,
                               const char **why)
{
    struct batch_header h;
    int64_t max = INT64_MIN;
    int rc = validate(p, len, BATCH_CHECK_FULL, 0, &h, &max, why);
    if (rc < 0) {
        return rc;
    }
    if ((h.attributes & BATCH_ATTR_COMPRESSION_MASK) != BATCH_COMPRESSION_NONE) {
        return fail(why, -ENOTSUP, "compressed: the records are not opened");
    }
    SL_ASSERT(max != INT64_MIN); /* a valid batch has at least one record */
    *max_timestamp = max;
    return 0;
}

void batch_set_max_timestamp(uint8_t *p, size_t total_bytes, bool log_append_time,
                             int64_t max_timestamp)
{
    uint16_t attributes = be16_get(p + BATCH_OFF_ATTRIBUTES);
    attributes = log_append_time ? (uint16_t)(attributes | BATCH_ATTR_LOG_APPEND_TIME)
                                 : (uint16_t)(attributes & ~BATCH_ATTR_LOG_APPEND_TIME);
    be16_put(p + BATCH_OFF_ATTRIBUTES, attributes);
    be64_put(p + BATCH_OFF_MAX_TIMESTAMP, (uint64_t)max_timestamp);
    be32_put(p + BATCH_OFF_CRC, batch_compute_crc(p, total_bytes));
}

/* ----------------------------------------------------------------- encode */

/* Bytes of one record's body (after its length varint), or -EMSGSIZE when it
 * cannot be expressed (a length beyond int32). */
static int64_t record_body_size(const struct batch_record *r, int64_t ts_delta, int32_t index)
{
    /* Lengths come from our own callers: -1 (null) or a real length. */
    SL_ASSERT(r->key_len >= -1 && r->value_len >= -1);
    SL_ASSERT(r->header_count == 0 || r->headers != NULL);
    int64_t n = 1 + (int64_t)varlong_size(ts_delta) + (int64_t)varint_size(index);
    n += (int64_t)varint_size(r->key_len) + SL_MAX(r->key_len, 0);
    n += (int64_t)varint_size(r->value_len) + SL_MAX(r->value_len, 0);
    if (r->header_count > INT32_MAX) {
        return -EMSGSIZE;
    }
    n += (int64_t)varint_size((int32_t)r->header_count);
    for (uint32_t i = 0; i < r->header_count; i++) {
        const struct batch_record_header *hd = &r->headers[i];
        SL_ASSERT(hd->key_len >= 0 && hd->value_len >= -1);
        n += (int64_t)varint_size(hd->key_len) + hd->key_len;
        n += (int64_t)varint_size(hd->value_len) + SL_MAX(hd->value_len, 0);
        if (n > INT32_MAX) {
            return -EMSGSIZE;
        }
    }
    return n > INT32_MAX ? -EMSGSIZE : n;
}

static uint8_t *put_bytes(uint8_t *w, const void *data, int32_t len)
{
    w += varint_put(w, len);
    if (len > 0) {
        memcpy(w, data, (size_t)len);
        w += len;
    }
    return w;
}

static uint8_t *record_write(uint8_t *w, const struct batch_record *r, int64_t ts_delta,
                             int32_t index, int32_t body_len)
{
    w += varint_put(w, body_len);
    const uint8_t *body = w;
    *w++ = 0; /* attributes */
    w += varlong_put(w, ts_delta);
    w += varint_put(w, index);
    w = put_bytes(w, r->key, r->key_len);
    w = put_bytes(w, r->value, r->value_len);
    w += varint_put(w, (int32_t)r->header_count);
    for (uint32_t i = 0; i < r->header_count; i++) {
        w = put_bytes(w, r->headers[i].key, r->headers[i].key_len);
        w = put_bytes(w, r->headers[i].value, r->headers[i].value_len);
    }
    /* record_body_size and this writer must agree byte for byte. */
    SL_ASSERT(w - body == body_len);
    return w;
}

/* Sizes every record; fills the batch total and the timestamps. */
static int encode_plan(const struct batch_record *recs, size_t n, size_t *total, int64_t *first_ts,
                       int64_t *max_ts)
{
    *first_ts = recs[0].timestamp;
    *max_ts = recs[0].timestamp;
    int64_t bytes = BATCH_HEADER_BYTES;
    for (size_t i = 0; i < n; i++) {
        int64_t ts_delta;
        if (__builtin_sub_overflow(recs[i].timestamp, *first_ts, &ts_delta)) {
            return -EINVAL;
        }
        *max_ts = SL_MAX(*max_ts, recs[i].timestamp);
        int64_t body = record_body_size(&recs[i], ts_delta, (int32_t)i);
        if (body < 0) {
            return (int)body;
        }
        bytes += (int64_t)varint_size((int32_t)body) + body;
        if (bytes - BATCH_LOG_OVERHEAD > INT32_MAX) {
            return -EMSGSIZE;
        }
    }
    *total = (size_t)bytes;
    return 0;
}

int batch_encode(struct buf *out, const struct batch_meta *meta, const struct batch_record *recs,
                 size_t n)
{
    if (n == 0) {
        return -EINVAL;
    }
    /* The encoder writes plain records; compressing is the caller's layer. */
    SL_ASSERT((meta->attributes & BATCH_ATTR_COMPRESSION_MASK) == 0);
    if (n > INT32_MAX) {
        return -EMSGSIZE;
    }
    size_t total = 0;
    int64_t first_ts = 0;
    int64_t max_ts = 0;
    int rc = encode_plan(recs, n, &total, &first_ts, &max_ts);
    if (rc < 0) {
        return rc;
    }
    rc = buf_reserve(out, total);
    if (rc < 0) {
        return rc;
    }
    uint8_t *start = out->data + out->len;
    be64_put(start + BATCH_OFF_BASE_OFFSET, (uint64_t)meta->base_offset);
    be32_put(start + BATCH_OFF_LENGTH, (uint32_t)(total - BATCH_LOG_OVERHEAD));
    be32_put(start + BATCH_OFF_LEADER_EPOCH, (uint32_t)meta->leader_epoch);
    start[BATCH_OFF_MAGIC] = BATCH_MAGIC;
    be16_put(start + BATCH_OFF_ATTRIBUTES, (uint16_t)meta->attributes);
    be32_put(start + BATCH_OFF_LAST_OFFSET_DELTA, (uint32_t)(n - 1));
    be64_put(start + BATCH_OFF_FIRST_TIMESTAMP, (uint64_t)first_ts);
    be64_put(start + BATCH_OFF_MAX_TIMESTAMP, (uint64_t)max_ts);
    be64_put(start + BATCH_OFF_PRODUCER_ID, (uint64_t)meta->producer_id);
    be16_put(start + BATCH_OFF_PRODUCER_EPOCH, (uint16_t)meta->producer_epoch);
    be32_put(start + BATCH_OFF_BASE_SEQUENCE, (uint32_t)meta->base_sequence);
    be32_put(start + BATCH_OFF_RECORD_COUNT, (uint32_t)n);
    uint8_t *w = start + BATCH_HEADER_BYTES;
    for (size_t i = 0; i < n; i++) {
        int64_t ts_delta = recs[i].timestamp - first_ts; /* checked in encode_plan */
        int64_t body = record_body_size(&recs[i], ts_delta, (int32_t)i);
        w = record_write(w, &recs[i], ts_delta, (int32_t)i, (int32_t)body);
    }
    SL_ASSERT((size_t)(w - start) == total);
    be32_put(start + BATCH_OFF_CRC, batch_compute_crc(start, total));
    out->len += total;
    return 0;
}

/* --------------------------------------------------------------- iterator */

int batch_record_iter_init(struct batch_record_iter *it, const uint8_t *batch, size_t len,
                           struct batch_record_header *header_slots, uint32_t header_slot_count)
{
    struct batch_header h;
    if (batch_header_decode(batch, len, &h) < 0) {
        return -EBADMSG;
    }
    if (h.magic != BATCH_MAGIC || h.batch_length < BATCH_LENGTH_MIN ||
        batch_total_bytes(&h) > len || h.record_count < 0) {
        return -EBADMSG;
    }
    if ((h.attributes & BATCH_ATTR_COMPRESSION_MASK) != BATCH_COMPRESSION_NONE) {
        return -ENOTSUP;
    }
    it->pos = batch + BATCH_HEADER_BYTES;
    it->end = batch + batch_total_bytes(&h);
    it->first_timestamp = h.first_timestamp;
    /* With LogAppendTime the broker's time, kept as maxTimestamp, is every
     * record's timestamp; the per-record deltas are the producer's. */
    it->log_append_time = (h.attributes & BATCH_ATTR_LOG_APPEND_TIME) ? h.max_timestamp : -1;
    it->remaining = h.record_count;
    it->header_slots = header_slots;
    it->header_slot_count = header_slots != NULL ? header_slot_count : 0;
    return 0;
}

void batch_record_iter_init_records(struct batch_record_iter *it, const uint8_t *records,
                                    size_t len, const struct batch_header *h,
                                    struct batch_record_header *header_slots,
                                    uint32_t header_slot_count)
{
    it->pos = records;
    it->end = records + len;
    it->first_timestamp = h->first_timestamp;
    it->log_append_time = (h->attributes & BATCH_ATTR_LOG_APPEND_TIME) ? h->max_timestamp : -1;
    it->remaining = h->record_count > 0 ? h->record_count : 0;
    it->header_slots = header_slots;
    it->header_slot_count = header_slots != NULL ? header_slot_count : 0;
}

int batch_record_iter_next(struct batch_record_iter *it, struct batch_record *rec)
{
    SL_ASSERT(it->remaining >= 0 && it->pos <= it->end);
    if (it->remaining == 0) {
        /* A count that stops short of the bytes is as corrupt as one that
         * runs past them. */
        return it->pos == it->end ? 0 : -EBADMSG;
    }
    struct record_view rv;
    const uint8_t *pos = it->pos;
    /* header_slot_count is 0 when there are no slots: any header is -ENOBUFS. */
    int rc = record_parse(&pos, it->end, &rv, true, it->header_slots, it->header_slot_count, NULL);
    if (rc < 0) {
        return rc;
    }
    int64_t ts;
    if (__builtin_add_overflow(it->first_timestamp, rv.timestamp_delta, &ts)) {
        return -EBADMSG;
    }
    rec->timestamp = it->log_append_time >= 0 ? it->log_append_time : ts;
    rec->key = rv.key;
    rec->key_len = rv.key_len;
    rec->value = rv.value;
    rec->value_len = rv.value_len;
    rec->headers = rv.header_count > 0 ? it->header_slots : NULL;
    rec->header_count = rv.header_count;
    rec->offset_delta = rv.offset_delta;
    it->pos = pos;
    it->remaining--;
    return 1;
}
