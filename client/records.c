/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The records of a Fetch answer: RecordBatch v2 batches back to back (the
 * layout is proto/batch.c's), read for one partition from its position.
 *
 * What a consumer must expect in them, and what is done:
 *   - The batch holding the position starts below it: its records below the
 *     position are skipped.
 *   - Offsets are not contiguous: a compacted log drops records from inside
 *     batches, a deduplicating broker drops whole records, so each record's
 *     offset is its batch's base offset plus its own offset delta, never a
 *     count.
 *   - A batch may hold no record at all (compaction emptied it; Kafka keeps
 *     it for its producer state): the position moves past its last offset.
 *   - Control batches (transaction markers) are not records: skipped.
 *   - Compressed batches (gzip, snappy, lz4, zstd) hold their records as one
 *     blob after the 61-byte header: decompressed into scratch, bounded by
 *     SLC_DECOMPRESSED_BYTES_MAX.
 *   - The answer is cut at a byte limit, so its last batch may be partial:
 *     left for the next Fetch, which starts at it.
 * Every batch's framing and CRC is checked before anything in it is read.
 */
#include <errno.h>

#include "client/internal.h"
#include "common/assert.h"
#include "proto/compress.h"

/* The records of one whole, checked batch h at p. */
static int batch_records(const uint8_t *p, const struct batch_header *h, int64_t *position,
                         struct buf *scratch, slc_record_fn *fn, void *arg, const char **why)
{
    struct batch_record_header slots[SLC_RECORD_HEADERS_MAX];
    struct batch_record_iter it;
    int codec = h->attributes & BATCH_ATTR_COMPRESSION_MASK;
    if (codec == BATCH_COMPRESSION_NONE) {
        if (batch_record_iter_init(&it, p, batch_total_bytes(h), slots, SL_ARRAY_LEN(slots)) != 0) {
            *why = "bad batch header";
            return -EBADMSG;
        }
    } else {
        buf_reset(scratch);
        const uint8_t *blob = p + BATCH_HEADER_BYTES;
        size_t blob_len = batch_total_bytes(h) - BATCH_HEADER_BYTES;
        int rc = decompress_records(codec, blob, blob_len, SLC_DECOMPRESSED_BYTES_MAX, scratch);
        if (rc != 0) {
            *why = rc == -ENOTSUP ? "unknown compression codec" : "records do not decompress";
            return -EBADMSG;
        }
        batch_record_iter_init_records(&it, scratch->data, scratch->len, h, slots,
                                       SL_ARRAY_LEN(slots));
    }
    int timestamp_type = (h->attributes & BATCH_ATTR_LOG_APPEND_TIME) ? 1 : 0;
    int64_t last = batch_last_offset(h);
    struct batch_record rec;
    int rc;
    while ((rc = batch_record_iter_next(&it, &rec)) == 1) {
        int64_t offset = h->base_offset + rec.offset_delta;
        if (rec.offset_delta < 0 || offset > last) {
            *why = "record offset outside its batch";
            return -EBADMSG;
        }
        if (offset < *position) {
            continue; /* before the position, or not increasing: not ours */
        }
        int frc = fn(arg, &rec, offset, timestamp_type);
        if (frc != 0) {
            return frc;
        }
        *position = offset + 1;
    }
    if (rc < 0) {
        *why = rc == -ENOBUFS ? "a record has too many headers" : "malformed record";
        return -EBADMSG;
    }
    return 0;
}

int slc_records_decode(const uint8_t *data, size_t len, int64_t *position, struct buf *scratch,
                       slc_record_fn *fn, void *arg, const char **why)
{
    size_t off = 0;
    bool whole_seen = false;
    while (len - off >= BATCH_LOG_OVERHEAD) {
        struct batch_header h;
        const char *vwhy = NULL;
        int rc = batch_validate(data + off, len - off, BATCH_CHECK_FRAMING, 0, &h, &vwhy);
        if (rc == -EAGAIN) {
            break; /* cut off by the answer's byte limit */
        }
        if (rc != 0) {
            *why = vwhy != NULL ? vwhy : "bad batch";
            return -EBADMSG;
        }
        whole_seen = true;
        int64_t last = batch_last_offset(&h);
        if (last >= *position && !(h.attributes & BATCH_ATTR_CONTROL)) {
            rc = batch_records(data + off, &h, position, scratch, fn, arg, why);
            if (rc != 0) {
                return rc;
            }
        }
        /* Past the batch's last offset even when its last records are gone. */
        if (last >= *position) {
            *position = last + 1;
        }
        off += batch_total_bytes(&h);
    }
    if (!whole_seen && len > 0) {
        *why = "the first batch is cut off";
        return -EMSGSIZE;
    }
    return 0;
}
