/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Batches of one partition: records accumulate in an open batch, which is
 * sealed into a RecordBatch v2 (the layout of proto/batch.c) when it is full,
 * when it has lingered for linger.ms, or on a flush.
 *
 * An open batch is its own encoding in the making: its arena holds room for
 * the 61-byte header, then each record as the message comes, already in its
 * wire form (length, attributes 0, timestamp delta, offset delta, key, value,
 * headers). msgs keeps each message's opaque and timestamp for its delivery
 * report. Sealing writes the header and its CRC into that room, and the
 * arena's block becomes the wire form without a copy (a zstd batch is
 * compressed from it). Nothing holds a pointer into the arena, which moves
 * as it grows.
 *
 * Size accounting is exact: encoded_bytes is the arena's length once a record
 * is in (header plus each record with its length prefix), so that batch.size
 * bounds the uncompressed batch. The first record's timestamp is the batch's
 * base timestamp; every record stores its delta from it.
 *
 * Compressed batches (zstd, proto/compress.h): the records section of the
 * encoded batch (bytes 61..end) is replaced by its zstd frame, the attributes
 * get codec 4, and batchLength and the CRC are recomputed. Producer id, epoch
 * and base sequence are written -1 at sealing and stamped on the first send
 * (slc_batch_stamp), which recomputes the CRC that covers them.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "client/internal.h"
#include "common/assert.h"
#include "common/bytes.h"
#include "common/varint.h"
#include "proto/batch.h"
#include "proto/compress.h"

/* An arena grows without a limit of its own: batch.size
 * (at most 1 GiB, conf.c) and message.max.bytes bound what goes in. */
#define ARENA_BYTES_MAX ((size_t)2 << 30)
#define ENTRIES_MIN     16u

struct slc_batch *slc_batch_new(int64_t now_ms)
{
    struct slc_batch *b = calloc(1, sizeof(*b));
    if (b == NULL) {
        return NULL;
    }
    buf_init(&b->arena, ARENA_BYTES_MAX);
    b->opened_ms = now_ms;
    b->oldest_enq_ms = INT64_MAX;
    b->encoded_bytes = BATCH_HEADER_BYTES;
    b->base_seq = -1;
    b->request_node = -1;
    b->base_offset = -1;
    b->log_append_time = -1;
    return b;
}

static void free_open_state(struct slc_batch *b)
{
    buf_deinit(&b->arena);
}

void slc_batch_free(struct slc_batch *b)
{
    if (b == NULL) {
        return;
    }
    free_open_state(b);
    free(b->msgs);
    free(b->wire);
    free(b);
}

static size_t bytes_field(int64_t len)
{
    return varint_size((int32_t)len) + (size_t)(len > 0 ? len : 0);
}

/* A record's timestamp delta; wrapped, not undefined, when it overflows
 * (slc_batch_append refuses such a record). */
static int64_t timestamp_delta(const struct slc_batch *b, int64_t timestamp)
{
    return b->count == 0 ? 0 : (int64_t)((uint64_t)timestamp - (uint64_t)b->first_timestamp);
}

/* A record's bytes after its length prefix. */
static size_t record_body_bytes(const struct slc_batch *b, const sl_msg *m, int64_t timestamp)
{
    int64_t delta = timestamp_delta(b, timestamp);
    size_t body = 1 + varlong_size(delta) + varint_size((int32_t)b->count);
    body += bytes_field(m->key != NULL ? (int64_t)m->key_len : -1);
    body += bytes_field(m->value != NULL ? (int64_t)m->value_len : -1);
    body += varint_size((int32_t)m->header_count);
    for (size_t i = 0; i < m->header_count; i++) {
        const sl_header *h = &m->headers[i];
        body += bytes_field((int64_t)strlen(h->name));
        body += bytes_field(h->value != NULL ? (int64_t)h->value_len : -1);
    }
    return body;
}

size_t slc_record_bytes(const struct slc_batch *b, const sl_msg *m, int64_t timestamp)
{
    size_t body = record_body_bytes(b, m, timestamp);
    return varint_size((int32_t)body) + body;
}

bool slc_batch_fits(const struct slc_batch *b, size_t rec_bytes, int32_t batch_size)
{
    return b->count == 0 || b->encoded_bytes + rec_bytes <= (size_t)batch_size;
}

/* Grows an array of entries to hold one more; 0 or -ENOMEM. */
static int grow(void **items, uint32_t *cap, uint32_t used, size_t item_size)
{
    if (used < *cap) {
        return 0;
    }
    uint32_t n = *cap < ENTRIES_MIN ? ENTRIES_MIN : *cap * 2;
    void *p = realloc(*items, (size_t)n * item_size);
    if (p == NULL) {
        return -ENOMEM;
    }
    *items = p;
    *cap = n;
    return 0;
}

/* A length (-1: null) and its bytes, as records write keys, values and headers. */
static uint8_t *put_field(uint8_t *w, const void *p, int64_t len)
{
    w += varint_put(w, (int32_t)len);
    if (len > 0) {
        memcpy(w, p, (size_t)len);
        w += len;
    }
    return w;
}

int slc_batch_append(struct slc_batch *b, const sl_msg *m, int64_t timestamp, int64_t enq_ms)
{
    SL_ASSERT(b->wire == NULL); /* sealed batches never change */
    int64_t delta = 0;
    if (b->count > 0 && __builtin_sub_overflow(timestamp, b->first_timestamp, &delta)) {
        return -EINVAL; /* no delta can say it */
    }
    size_t body = record_body_bytes(b, m, timestamp);
    size_t rec_bytes = varint_size((int32_t)body) + body;
    /* The header's room comes with the first record; seal writes it. */
    size_t head = b->count == 0 ? BATCH_HEADER_BYTES : 0;
    if (grow((void **)&b->msgs, &b->msgs_cap, b->count, sizeof(*b->msgs)) != 0 ||
        buf_reserve(&b->arena, head + rec_bytes) != 0) {
        return -ENOMEM;
    }
    if (b->count == 0) {
        b->first_timestamp = timestamp;
        b->arena.len = BATCH_HEADER_BYTES;
    }
    uint8_t *w = b->arena.data + b->arena.len;
    const uint8_t *start = w;
    size_t payload = 0;
    w += varint_put(w, (int32_t)body);
    *w++ = 0; /* attributes */
    w += varlong_put(w, delta);
    w += varint_put(w, (int32_t)b->count);
    w = put_field(w, m->key, m->key != NULL ? (int64_t)m->key_len : -1);
    w = put_field(w, m->value, m->value != NULL ? (int64_t)m->value_len : -1);
    payload += (m->key != NULL ? m->key_len : 0) + (m->value != NULL ? m->value_len : 0);
    w += varint_put(w, (int32_t)m->header_count);
    for (size_t i = 0; i < m->header_count; i++) {
        const sl_header *h = &m->headers[i];
        size_t name_len = strlen(h->name);
        w = put_field(w, h->name, (int64_t)name_len);
        w = put_field(w, h->value, h->value != NULL ? (int64_t)h->value_len : -1);
        payload += name_len + (h->value != NULL ? h->value_len : 0);
    }
    /* slc_record_bytes and this writer follow the same format. */
    SL_ASSERT((size_t)(w - start) == rec_bytes);
    b->arena.len += rec_bytes;
    b->msgs[b->count] = (struct slc_msgref){m->opaque, timestamp};
    b->count++;
    b->encoded_bytes += rec_bytes;
    b->payload_bytes += payload;
    b->oldest_enq_ms = SL_MIN(b->oldest_enq_ms, enq_ms);
    return 0;
}

/* Replaces the records of the encoded batch in plain (total bytes) with their
 * zstd frame, into out. */
static int compress_batch(const struct buf *plain, int level, struct ZSTD_CCtx_s *zstd,
                          struct buf *out)
{
    if (buf_put(out, plain->data, BATCH_HEADER_BYTES) != 0) {
        return -ENOMEM;
    }
    /* zstd's level 0 is its default level. */
    int rc = compress_zstd(zstd, plain->data + BATCH_HEADER_BYTES, plain->len - BATCH_HEADER_BYTES,
                           level < 0 ? 0 : level, out);
    if (rc != 0) {
        return rc == -EIO ? -EIO : -ENOMEM;
    }
    uint8_t *p = out->data;
    be32_put(p + BATCH_OFF_LENGTH, (uint32_t)(out->len - BATCH_LOG_OVERHEAD));
    uint16_t attrs = be16_get(p + BATCH_OFF_ATTRIBUTES);
    be16_put(p + BATCH_OFF_ATTRIBUTES,
             (uint16_t)((attrs & ~BATCH_ATTR_COMPRESSION_MASK) | BATCH_COMPRESSION_ZSTD));
    be32_put(p + BATCH_OFF_CRC, batch_compute_crc(p, out->len));
    return 0;
}

/* Gives b the compressed bytes in from. A frame that fills most of from's
 * block (data that does not compress) takes the block itself, and from gets
 * the batch's plain arena block for the next seal: no copy, no fresh pages.
 * A smaller one is copied into a block of exactly its size, so a sealed batch
 * holds little slack while it waits. */
static int take_wire(struct slc_batch *b, struct buf *from)
{
    if (from->len >= from->cap / 2 && b->arena.cap > 0) {
        b->wire = from->data;
        b->wire_len = from->len;
        from->data = b->arena.data;
        from->cap = b->arena.cap;
        from->len = 0;
        b->arena.data = NULL;
        b->arena.len = 0;
        b->arena.cap = 0;
        return 0;
    }
    b->wire = malloc(from->len);
    if (b->wire == NULL) {
        return -ENOMEM;
    }
    memcpy(b->wire, from->data, from->len);
    b->wire_len = from->len;
    return 0;
}

/* Writes the batch header in front of the records, as batch_encode would for
 * the same records: base offset 0, no leader epoch, no producer (stamped on
 * the first send), plain records; the CRC covers attributes..end. */
static void write_header(struct slc_batch *b)
{
    int64_t max_timestamp = b->msgs[0].timestamp;
    for (uint32_t i = 1; i < b->count; i++) {
        max_timestamp = SL_MAX(max_timestamp, b->msgs[i].timestamp);
    }
    uint8_t *p = b->arena.data;
    be64_put(p + BATCH_OFF_BASE_OFFSET, 0);
    be32_put(p + BATCH_OFF_LENGTH, (uint32_t)(b->arena.len - BATCH_LOG_OVERHEAD));
    be32_put(p + BATCH_OFF_LEADER_EPOCH, UINT32_MAX); /* -1 */
    p[BATCH_OFF_MAGIC] = BATCH_MAGIC;
    be16_put(p + BATCH_OFF_ATTRIBUTES, 0);
    be32_put(p + BATCH_OFF_LAST_OFFSET_DELTA, b->count - 1);
    be64_put(p + BATCH_OFF_FIRST_TIMESTAMP, (uint64_t)b->first_timestamp);
    be64_put(p + BATCH_OFF_MAX_TIMESTAMP, (uint64_t)max_timestamp);
    be64_put(p + BATCH_OFF_PRODUCER_ID, UINT64_MAX);    /* -1 */
    be16_put(p + BATCH_OFF_PRODUCER_EPOCH, UINT16_MAX); /* -1 */
    be32_put(p + BATCH_OFF_BASE_SEQUENCE, UINT32_MAX);  /* -1 */
    be32_put(p + BATCH_OFF_RECORD_COUNT, b->count);
    be32_put(p + BATCH_OFF_CRC, batch_compute_crc(p, b->arena.len));
}

void slc_batch_seal_plain(struct slc_batch *b)
{
    SL_ASSERT(b->count > 0 && b->wire == NULL);
    /* The arena holds the header's room and every record, nothing else. */
    SL_ASSERT(b->arena.len == b->encoded_bytes);
    write_header(b);
}

int slc_batch_compress(struct slc_batch *b, int level, struct ZSTD_CCtx_s *zstd,
                       struct buf *scratch)
{
    SL_ASSERT(b->wire == NULL && b->arena.len == b->encoded_bytes);
    buf_reset(scratch);
    int rc = compress_batch(&b->arena, level, zstd, scratch);
    rc = rc == 0 ? take_wire(b, scratch) : rc;
    if (rc != 0) {
        return rc == -EIO ? -EIO : -ENOMEM;
    }
    free_open_state(b);
    return 0;
}

int slc_batch_seal(struct slc_batch *b, int compression, int level, struct ZSTD_CCtx_s *zstd,
                   struct buf *scratch)
{
    slc_batch_seal_plain(b);
    if (compression == SLC_COMPRESSION_ZSTD) {
        return slc_batch_compress(b, level, zstd, scratch);
    }
    /* The arena is the wire form: keep its block, no copy. */
    b->wire = b->arena.data;
    b->wire_len = b->arena.len;
    b->arena.data = NULL;
    b->arena.len = 0;
    b->arena.cap = 0;
    free_open_state(b);
    return 0;
}

void slc_batch_stamp(struct slc_batch *b, int64_t producer_id, int16_t epoch, int32_t base_seq)
{
    SL_ASSERT(b->wire != NULL && b->wire_len >= BATCH_HEADER_BYTES);
    be64_put(b->wire + BATCH_OFF_PRODUCER_ID, (uint64_t)producer_id);
    be16_put(b->wire + BATCH_OFF_PRODUCER_EPOCH, (uint16_t)epoch);
    be32_put(b->wire + BATCH_OFF_BASE_SEQUENCE, (uint32_t)base_seq);
    be32_put(b->wire + BATCH_OFF_CRC, batch_compute_crc(b->wire, b->wire_len));
    b->base_seq = base_seq;
}

int32_t slc_seq_add(int32_t seq, uint32_t n)
{
    /* Kafka's DefaultRecordBatch.incrementSequence: wraps past INT32_MAX to 0. */
    SL_ASSERT(seq >= 0 && n <= (uint32_t)INT32_MAX);
    if ((int64_t)seq + n > INT32_MAX) {
        return (int32_t)((int64_t)seq + n - INT32_MAX - 1);
    }
    return (int32_t)(seq + (int32_t)n);
}
