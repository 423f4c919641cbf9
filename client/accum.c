/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Batches of one partition: records accumulate in an open batch, which is
 * sealed into a RecordBatch v2 (proto/batch.h's encoder) when it is full,
 * when it has lingered for linger.ms, or on a flush.
 *
 * An open batch copies each message into its arena (one buffer of key,
 * value and header bytes) and keeps a small fixed-size entry per record
 * giving offsets into it, so that appending never holds a pointer into a
 * buffer that may move. Sealing turns the entries into proto's batch_record
 * array and encodes; the arena is freed then.
 *
 * Size accounting is exact: encoded_bytes is what batch_encode will write
 * (61-byte header plus each record with its length prefix), computed with
 * the same varint rules, so that batch.size bounds the uncompressed batch.
 * The first record's timestamp is the batch's base timestamp, as in
 * batch_encode, so deltas (and their varint sizes) agree.
 *
 * Compressed batches (zstd, proto/compress.h): the records section of the
 * encoded batch (bytes 61..end) is replaced by its zstd frame, the attributes
 * get codec 4, and batchLength and the CRC are recomputed. Producer id, epoch and base
 * sequence are written -1 at sealing and stamped on the first send
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

/* An arena or a record table grows without a limit of its own: batch.size
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
    free(b->recs);
    free(b->hdrs);
    b->recs = NULL;
    b->hdrs = NULL;
    b->recs_cap = 0;
    b->hdrs_cap = 0;
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

size_t slc_record_bytes(const struct slc_batch *b, const sl_msg *m, int64_t timestamp)
{
    int64_t delta = b->count == 0 ? 0 : timestamp - b->first_timestamp;
    size_t body = 1 + varlong_size(delta) + varint_size((int32_t)b->count);
    body += bytes_field(m->key != NULL ? (int64_t)m->key_len : -1);
    body += bytes_field(m->value != NULL ? (int64_t)m->value_len : -1);
    body += varint_size((int32_t)m->header_count);
    for (size_t i = 0; i < m->header_count; i++) {
        const sl_header *h = &m->headers[i];
        body += bytes_field((int64_t)strlen(h->name));
        body += bytes_field(h->value != NULL ? (int64_t)h->value_len : -1);
    }
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

/* Copies len bytes (or marks null) into the arena; *off is where they went. */
static int arena_put(struct slc_batch *b, const void *p, int32_t len, uint32_t *off)
{
    *off = (uint32_t)b->arena.len;
    return len > 0 ? buf_put(&b->arena, p, (size_t)len) : 0;
}

static int append_headers(struct slc_batch *b, const sl_msg *m, struct slc_rec *r)
{
    r->hdr_first = b->hdr_count;
    r->hdr_count = (uint32_t)m->header_count;
    for (size_t i = 0; i < m->header_count; i++) {
        const sl_header *h = &m->headers[i];
        if (grow((void **)&b->hdrs, &b->hdrs_cap, b->hdr_count, sizeof(*b->hdrs)) != 0) {
            return -ENOMEM;
        }
        struct slc_hdr *e = &b->hdrs[b->hdr_count];
        e->name_len = (int32_t)strlen(h->name);
        e->value_len = h->value != NULL ? (int32_t)h->value_len : -1;
        if (arena_put(b, h->name, e->name_len, &e->name_off) != 0 ||
            arena_put(b, h->value, e->value_len, &e->value_off) != 0) {
            return -ENOMEM;
        }
        b->hdr_count++;
    }
    return 0;
}

int slc_batch_append(struct slc_batch *b, const sl_msg *m, int64_t timestamp, int64_t enq_ms)
{
    SL_ASSERT(b->wire == NULL); /* sealed batches never change */
    size_t rec_bytes = slc_record_bytes(b, m, timestamp);
    if (grow((void **)&b->recs, &b->recs_cap, b->count, sizeof(*b->recs)) != 0 ||
        grow((void **)&b->msgs, &b->msgs_cap, b->count, sizeof(*b->msgs)) != 0) {
        return -ENOMEM;
    }
    size_t arena_len = b->arena.len;
    uint32_t hdr_count = b->hdr_count;
    struct slc_rec *r = &b->recs[b->count];
    r->key_len = m->key != NULL ? (int32_t)m->key_len : -1;
    r->value_len = m->value != NULL ? (int32_t)m->value_len : -1;
    if (arena_put(b, m->key, r->key_len, &r->key_off) != 0 ||
        arena_put(b, m->value, r->value_len, &r->value_off) != 0 || append_headers(b, m, r) != 0) {
        /* Undo, so that the batch stays as it was. */
        b->arena.len = arena_len;
        b->hdr_count = hdr_count;
        return -ENOMEM;
    }
    if (b->count == 0) {
        b->first_timestamp = timestamp;
    }
    b->msgs[b->count] = (struct slc_msgref){m->opaque, timestamp};
    b->count++;
    b->encoded_bytes += rec_bytes;
    b->payload_bytes += b->arena.len - arena_len;
    b->oldest_enq_ms = SL_MIN(b->oldest_enq_ms, enq_ms);
    return 0;
}

/* proto's view of the open records: pointers into the arena, which no longer
 * moves. Returns the arrays in *recs and *hdrs (one allocation, *recs). */
static int build_records(const struct slc_batch *b, struct batch_record **recs)
{
    size_t bytes =
        b->count * sizeof(struct batch_record) + b->hdr_count * sizeof(struct batch_record_header);
    struct batch_record *out = malloc(bytes);
    if (out == NULL) {
        return -ENOMEM;
    }
    struct batch_record_header *hdrs = (struct batch_record_header *)(out + b->count);
    const uint8_t *base = b->arena.data;
    for (uint32_t i = 0; i < b->hdr_count; i++) {
        const struct slc_hdr *h = &b->hdrs[i];
        hdrs[i] = (struct batch_record_header){
            (const char *)base + h->name_off, h->name_len,
            h->value_len >= 0 ? (const char *)base + h->value_off : NULL, h->value_len};
    }
    for (uint32_t i = 0; i < b->count; i++) {
        const struct slc_rec *r = &b->recs[i];
        out[i] = (struct batch_record){
            .timestamp = b->msgs[i].timestamp,
            .key = r->key_len >= 0 ? base + r->key_off : NULL,
            .key_len = r->key_len,
            .value = r->value_len >= 0 ? base + r->value_off : NULL,
            .value_len = r->value_len,
            .headers = r->hdr_count > 0 ? &hdrs[r->hdr_first] : NULL,
            .header_count = r->hdr_count,
        };
    }
    *recs = out;
    return 0;
}

/* Replaces the records of the encoded batch in plain (total bytes) with their
 * zstd frame, into out. */
static int compress_batch(const struct buf *plain, int level, struct buf *out)
{
    if (buf_put(out, plain->data, BATCH_HEADER_BYTES) != 0) {
        return -ENOMEM;
    }
    /* zstd's level 0 is its default level. */
    int rc = compress_zstd(plain->data + BATCH_HEADER_BYTES, plain->len - BATCH_HEADER_BYTES,
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

/* Moves the bytes of b into a malloc'd block of exactly their size, so a
 * sealed batch holds no slack while it waits. */
static int take_wire(struct slc_batch *b, const struct buf *from)
{
    b->wire = malloc(from->len);
    if (b->wire == NULL) {
        return -ENOMEM;
    }
    memcpy(b->wire, from->data, from->len);
    b->wire_len = from->len;
    return 0;
}

int slc_batch_seal(struct slc_batch *b, int compression, int level, struct buf *scratch)
{
    SL_ASSERT(b->count > 0 && b->wire == NULL);
    struct batch_record *recs;
    if (build_records(b, &recs) != 0) {
        return -ENOMEM;
    }
    struct batch_meta meta = {.base_offset = 0,
                              .leader_epoch = -1,
                              .attributes = 0,
                              .producer_id = -1,
                              .producer_epoch = -1,
                              .base_sequence = -1};
    struct buf plain;
    buf_init(&plain, SIZE_MAX);
    int rc = batch_encode(&plain, &meta, recs, b->count);
    free(recs);
    if (rc == 0) {
        /* batch_encode and slc_record_bytes follow the same format. */
        SL_ASSERT(plain.len == b->encoded_bytes);
        if (compression == SLC_COMPRESSION_ZSTD) {
            buf_reset(scratch);
            rc = compress_batch(&plain, level, scratch);
            rc = rc == 0 ? take_wire(b, scratch) : rc;
        } else {
            /* The encoding is the wire form: keep its block, no copy. */
            b->wire = plain.data;
            b->wire_len = plain.len;
            plain.data = NULL;
        }
    }
    buf_deinit(&plain);
    if (rc != 0) {
        return rc == -EIO ? -EIO : -ENOMEM;
    }
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
