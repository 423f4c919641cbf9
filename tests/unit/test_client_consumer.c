/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The consumer's reading of fetched records (client/records.c), against
 * byte fixtures built with proto/batch.h: plain batches back to back, a
 * position inside a batch, offset gaps inside and at the end of a batch
 * (compaction, deduplication), empty batches, control batches, every codec
 * (gzip and zstd from their libraries, snappy and LZ4 streams written here
 * with literals and stored blocks), a batch cut off by the answer's byte
 * limit, a bad CRC. Then the public calls that need no broker: sl_assign's
 * refusals, sl_consume and sl_position on a consumer with nothing fetched.
 * Then the fetch path against a broker scripted on a socketpair:
 * auto.offset.reset (earliest: ListOffsets; none: an event, the partition
 * stops), a leadership error refreshing metadata, the prefetch bound of
 * queued.max.messages.kbytes, and sl_assign while a Fetch is in flight.
 */
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zlib.h>

#include <cmocka.h>

#include "client/internal.h"
#include "common/assert.h"
#include "common/bytes.h"
#include "proto/batch.h"
#include "proto/compress.h"
#include "proto/errors.h"
#include "tests/lib/client_fake.h"

/* ================================================================ fixtures */

#define RECS_MAX 64

/* What the decoder handed out, copied. */
struct got {
    size_t count;
    int64_t offsets[RECS_MAX];
    char keys[RECS_MAX][32];   /* "<null>" for a null key */
    char values[RECS_MAX][64]; /* "<null>" for a null value */
    char headers[RECS_MAX][64];
    int64_t timestamps[RECS_MAX];
    int ts_types[RECS_MAX];
};

static void copy_text(char *dst, size_t size, const void *p, int32_t len)
{
    if (len < 0) {
        snprintf(dst, size, "<null>");
        return;
    }
    snprintf(dst, size, "%.*s", (int)len, (const char *)p);
}

static int collect(void *arg, const struct batch_record *r, int64_t offset, int timestamp_type)
{
    struct got *g = arg;
    assert_true(g->count < RECS_MAX);
    size_t i = g->count++;
    g->offsets[i] = offset;
    copy_text(g->keys[i], sizeof(g->keys[i]), r->key, r->key_len);
    copy_text(g->values[i], sizeof(g->values[i]), r->value, r->value_len);
    g->headers[i][0] = '\0';
    for (uint32_t h = 0; h < r->header_count; h++) {
        size_t used = strlen(g->headers[i]);
        snprintf(g->headers[i] + used, sizeof(g->headers[i]) - used, "%s%.*s=%.*s",
                 h > 0 ? "," : "", (int)r->headers[h].key_len, r->headers[h].key,
                 (int)SL_MAX(r->headers[h].value_len, 0), r->headers[h].value);
    }
    g->timestamps[i] = r->timestamp;
    g->ts_types[i] = timestamp_type;
    return 0;
}

/* Appends a plain batch at base_offset of n records "k<i>"/"v<i>" (record
 * 1 with a null key, record 2 with a null value, every record with a
 * header h=<i>), timestamps 1000 + i. */
static void put_batch(struct buf *out, int64_t base_offset, size_t n, int first_index)
{
    struct batch_record recs[RECS_MAX];
    struct batch_record_header hdrs[RECS_MAX];
    static char keys[RECS_MAX][16], values[RECS_MAX][16], hvals[RECS_MAX][16];
    assert_true(n <= RECS_MAX);
    for (size_t i = 0; i < n; i++) {
        int idx = first_index + (int)i;
        snprintf(keys[i], sizeof(keys[i]), "k%d", idx);
        snprintf(values[i], sizeof(values[i]), "v%d", idx);
        snprintf(hvals[i], sizeof(hvals[i]), "%d", idx);
        hdrs[i] = (struct batch_record_header){"h", 1, hvals[i], (int32_t)strlen(hvals[i])};
        recs[i] = (struct batch_record){.timestamp = 1000 + idx,
                                        .key = (const uint8_t *)keys[i],
                                        .key_len = i == 1 ? -1 : (int32_t)strlen(keys[i]),
                                        .value = (const uint8_t *)values[i],
                                        .value_len = i == 2 ? -1 : (int32_t)strlen(values[i]),
                                        .headers = &hdrs[i],
                                        .header_count = 1};
    }
    struct batch_meta meta = {.base_offset = base_offset,
                              .leader_epoch = 0,
                              .producer_id = -1,
                              .producer_epoch = -1,
                              .base_sequence = -1};
    assert_int_equal(batch_encode(out, &meta, recs, n), 0);
}

static void fix_crc(uint8_t *batch)
{
    struct batch_header h;
    assert_int_equal(batch_header_decode(batch, BATCH_HEADER_BYTES, &h), 0);
    be32_put(batch + BATCH_OFF_CRC, batch_compute_crc(batch, batch_total_bytes(&h)));
}

/* The record at the start of p: its total length (length varint
 * included) and where its offsetDelta byte is (small records only: the
 * length varint, attributes and timestampDelta take one byte each). */
static size_t record_span(const uint8_t *p, size_t *delta_at)
{
    assert_true(p[0] < 0x80); /* a one-byte zigzag length */
    *delta_at = 3;
    return 1 + (size_t)(p[0] >> 1);
}

/* Gives the records of a plain batch (at most 63 apart) the offset deltas
 * deltas[] and the batch last_delta, as compaction leaves them. */
static void set_deltas(uint8_t *batch, const int32_t *deltas, size_t n, int32_t last_delta)
{
    size_t pos = BATCH_HEADER_BYTES;
    for (size_t i = 0; i < n; i++) {
        size_t delta_at;
        size_t span = record_span(batch + pos, &delta_at);
        assert_true(deltas[i] < 64);
        batch[pos + delta_at] = (uint8_t)(deltas[i] << 1); /* zigzag, one byte */
        pos += span;
    }
    be32_put(batch + BATCH_OFF_LAST_OFFSET_DELTA, (uint32_t)last_delta);
    fix_crc(batch);
}

/* An empty batch: header only, no records, spanning last_delta + 1 offsets. */
static void put_empty_batch(struct buf *out, int64_t base_offset, int32_t last_delta)
{
    size_t start = out->len;
    put_batch(out, base_offset, 1, 0);
    uint8_t *b = out->data + start;
    be32_put(b + BATCH_OFF_LENGTH, BATCH_HEADER_BYTES - BATCH_LOG_OVERHEAD);
    be32_put(b + BATCH_OFF_RECORD_COUNT, 0);
    be32_put(b + BATCH_OFF_LAST_OFFSET_DELTA, (uint32_t)last_delta);
    out->len = start + BATCH_HEADER_BYTES;
    fix_crc(b);
}

static void gzip_into(const uint8_t *in, size_t len, struct buf *out)
{
    z_stream z = {0};
    assert_int_equal(deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), Z_OK);
    uLong bound = deflateBound(&z, len) + 32;
    assert_int_equal(buf_reserve(out, bound), 0);
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)len;
    z.next_out = out->data + out->len;
    z.avail_out = (uInt)bound;
    assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
    out->len += z.total_out;
    deflateEnd(&z);
}

/* A raw snappy stream of literals only: varint length, then literal
 * elements of at most 60 bytes (tag (len - 1) << 2). */
static void snappy_into(const uint8_t *in, size_t len, struct buf *out)
{
    size_t v = len;
    do {
        uint8_t byte = (uint8_t)(v & 0x7f);
        v >>= 7;
        assert_int_equal(buf_put_u8(out, byte | (v != 0 ? 0x80 : 0)), 0);
    } while (v != 0);
    for (size_t off = 0; off < len;) {
        size_t n = SL_MIN(len - off, (size_t)60);
        assert_int_equal(buf_put_u8(out, (uint8_t)((n - 1) << 2)), 0);
        assert_int_equal(buf_put(out, in + off, n), 0);
        off += n;
    }
}

/* An LZ4 frame of one stored block: magic, FLG (version 1, independent
 * blocks), BD (4 MiB blocks), header checksum byte (not checked by the
 * reader; its xxh32 is left out), the block with its stored bit, end mark. */
static void lz4_into(const uint8_t *in, size_t len, struct buf *out)
{
    static const uint8_t head[] = {0x04, 0x22, 0x4d, 0x18, 0x60, 0x70, 0x73};
    assert_int_equal(buf_put(out, head, sizeof(head)), 0);
    uint8_t size[4];
    uint32_t stored = (uint32_t)len | 0x80000000u;
    for (int i = 0; i < 4; i++) {
        size[i] = (uint8_t)(stored >> (8 * i));
    }
    assert_int_equal(buf_put(out, size, 4), 0);
    assert_int_equal(buf_put(out, in, len), 0);
    static const uint8_t end_mark[4] = {0};
    assert_int_equal(buf_put(out, end_mark, 4), 0);
}

/* The plain batch at plain, rebuilt with its records compressed by codec. */
static void put_compressed(struct buf *out, const uint8_t *plain, int codec)
{
    struct batch_header h;
    assert_int_equal(batch_header_decode(plain, BATCH_HEADER_BYTES, &h), 0);
    size_t start = out->len;
    assert_int_equal(buf_put(out, plain, BATCH_HEADER_BYTES), 0);
    const uint8_t *records = plain + BATCH_HEADER_BYTES;
    size_t records_len = batch_total_bytes(&h) - BATCH_HEADER_BYTES;
    switch (codec) {
    case BATCH_COMPRESSION_GZIP:
        gzip_into(records, records_len, out);
        break;
    case BATCH_COMPRESSION_SNAPPY:
        snappy_into(records, records_len, out);
        break;
    case BATCH_COMPRESSION_LZ4:
        lz4_into(records, records_len, out);
        break;
    case BATCH_COMPRESSION_ZSTD:
        assert_int_equal(compress_zstd(NULL, records, records_len, 3, out), 0);
        break;
    default:
        fail();
    }
    uint8_t *b = out->data + start;
    be16_put(b + BATCH_OFF_ATTRIBUTES, (uint16_t)(h.attributes | codec));
    be32_put(b + BATCH_OFF_LENGTH, (uint32_t)(out->len - start - BATCH_LOG_OVERHEAD));
    fix_crc(b);
}

static int decode(const struct buf *in, size_t len, int64_t *position, struct got *g)
{
    struct buf scratch;
    buf_init(&scratch, SLC_DECOMPRESSED_BYTES_MAX);
    const char *why = NULL;
    int rc = slc_records_decode(in->data, len, position, &scratch, collect, g, &why);
    buf_deinit(&scratch);
    return rc;
}

/* ================================================================ decoding */

static void test_client_consumer_plain_batches(void **state)
{
    (void)state;
    struct buf in;
    buf_init(&in, 1 << 20);
    put_batch(&in, 0, 4, 0);
    put_batch(&in, 4, 3, 4);
    struct got g = {0};
    int64_t position = 0;
    assert_int_equal(decode(&in, in.len, &position, &g), 0);
    assert_int_equal(g.count, 7);
    assert_int_equal(position, 7);
    for (size_t i = 0; i < 7; i++) {
        assert_int_equal(g.offsets[i], (int64_t)i);
        assert_int_equal(g.timestamps[i], 1000 + (int64_t)i);
        assert_int_equal(g.ts_types[i], 0);
    }
    assert_string_equal(g.keys[0], "k0");
    assert_string_equal(g.keys[1], "<null>");
    assert_string_equal(g.values[2], "<null>");
    assert_string_equal(g.values[3], "v3");
    assert_string_equal(g.headers[3], "h=3");
    assert_string_equal(g.keys[6], "k6");
    buf_deinit(&in);
}

/* A fetch from inside a batch gets the whole batch: records below the
 * position are not handed out again. */
static void test_client_consumer_position_inside_batch(void **state)
{
    (void)state;
    struct buf in;
    buf_init(&in, 1 << 20);
    put_batch(&in, 10, 5, 0);
    struct got g = {0};
    int64_t position = 13;
    assert_int_equal(decode(&in, in.len, &position, &g), 0);
    assert_int_equal(g.count, 2);
    assert_int_equal(g.offsets[0], 13);
    assert_string_equal(g.keys[0], "k3");
    assert_int_equal(g.offsets[1], 14);
    assert_int_equal(position, 15);
    buf_deinit(&in);
}

/* Compaction and deduplication leave gaps: each record's offset is base +
 * its own delta, and the position moves past the batch's last offset even
 * when its last records are gone. */
static void test_client_consumer_offset_gaps(void **state)
{
    (void)state;
    struct buf in;
    buf_init(&in, 1 << 20);
    put_batch(&in, 100, 3, 0);
    static const int32_t deltas[] = {0, 3, 7};
    set_deltas(in.data, deltas, 3, 9); /* 108 and 109 compacted away */
    size_t first_len = in.len;
    put_batch(&in, 110, 2, 3);
    struct got g = {0};
    int64_t position = 0;
    assert_int_equal(decode(&in, in.len, &position, &g), 0);
    assert_int_equal(g.count, 5);
    static const int64_t want[] = {100, 103, 107, 110, 111};
    for (size_t i = 0; i < 5; i++) {
        assert_int_equal(g.offsets[i], want[i]);
    }
    assert_string_equal(g.keys[2], "k2");
    assert_string_equal(g.keys[3], "k3");
    assert_int_equal(position, 112);

    /* From inside a gap: the next record after it. */
    memset(&g, 0, sizeof(g));
    position = 104;
    assert_int_equal(decode(&in, first_len, &position, &g), 0);
    assert_int_equal(g.count, 1);
    assert_int_equal(g.offsets[0], 107);
    assert_int_equal(position, 110);
    buf_deinit(&in);
}

/* An empty batch moves the position past it; control batches are not
 * records. */
static void test_client_consumer_empty_and_control_batches(void **state)
{
    (void)state;
    struct buf in;
    buf_init(&in, 1 << 20);
    put_batch(&in, 0, 2, 0);
    put_empty_batch(&in, 2, 4); /* offsets 2..6, all compacted away */
    size_t control_at = in.len;
    put_batch(&in, 7, 1, 7);
    uint8_t *control = in.data + control_at;
    be16_put(control + BATCH_OFF_ATTRIBUTES,
             (uint16_t)(be16_get(control + BATCH_OFF_ATTRIBUTES) | BATCH_ATTR_CONTROL |
                        BATCH_ATTR_TRANSACTIONAL));
    fix_crc(control);
    put_batch(&in, 8, 2, 8);
    struct got g = {0};
    int64_t position = 0;
    assert_int_equal(decode(&in, in.len, &position, &g), 0);
    assert_int_equal(g.count, 4);
    static const int64_t want[] = {0, 1, 8, 9};
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(g.offsets[i], want[i]);
    }
    assert_string_equal(g.keys[2], "k8");
    assert_int_equal(position, 10);

    /* An answer of nothing but an empty batch still moves on. */
    struct buf only;
    buf_init(&only, 1 << 16);
    put_empty_batch(&only, 40, 2);
    memset(&g, 0, sizeof(g));
    position = 40;
    assert_int_equal(decode(&only, only.len, &position, &g), 0);
    assert_int_equal(g.count, 0);
    assert_int_equal(position, 43);
    buf_deinit(&only);
    buf_deinit(&in);
}

/* Every codec's batches read like the plain ones, offsets from the
 * decompressed records (gaps included). */
static void test_client_consumer_compressed_batches(void **state)
{
    (void)state;
    static const int codecs[] = {BATCH_COMPRESSION_GZIP, BATCH_COMPRESSION_SNAPPY,
                                 BATCH_COMPRESSION_LZ4, BATCH_COMPRESSION_ZSTD};
    for (size_t c = 0; c < SL_ARRAY_LEN(codecs); c++) {
        struct buf plain, in;
        buf_init(&plain, 1 << 20);
        buf_init(&in, 1 << 20);
        put_batch(&plain, 20, 5, 0);
        static const int32_t deltas[] = {0, 1, 2, 5, 6};
        set_deltas(plain.data, deltas, 5, 6);
        size_t second = plain.len;
        put_batch(&plain, 27, 3, 5);
        put_compressed(&in, plain.data, codecs[c]);
        put_compressed(&in, plain.data + second, codecs[c]);
        assert_int_equal(in.data[BATCH_OFF_ATTRIBUTES + 1] & BATCH_ATTR_COMPRESSION_MASK,
                         codecs[c]);
        struct got g = {0};
        int64_t position = 21;
        assert_int_equal(decode(&in, in.len, &position, &g), 0);
        static const int64_t want[] = {21, 22, 25, 26, 27, 28, 29};
        assert_int_equal(g.count, SL_ARRAY_LEN(want));
        for (size_t i = 0; i < SL_ARRAY_LEN(want); i++) {
            assert_int_equal(g.offsets[i], want[i]);
        }
        assert_string_equal(g.keys[0], "<null>"); /* record 1 of the first batch */
        assert_string_equal(g.values[1], "<null>");
        assert_string_equal(g.values[2], "v3");
        assert_string_equal(g.headers[4], "h=5");
        assert_int_equal(g.timestamps[6], 1007);
        assert_int_equal(position, 30);
        buf_deinit(&plain);
        buf_deinit(&in);
    }
}

/* A batch cut off by the answer's byte limit waits for the next Fetch; a
 * first batch cut off can never come whole here. */
static void test_client_consumer_truncated_answer(void **state)
{
    (void)state;
    struct buf in;
    buf_init(&in, 1 << 20);
    put_batch(&in, 0, 3, 0);
    size_t first = in.len;
    put_batch(&in, 3, 3, 3);
    for (size_t cut = first; cut < in.len; cut += 7) {
        struct got g = {0};
        int64_t position = 0;
        assert_int_equal(decode(&in, cut, &position, &g), 0);
        assert_int_equal(g.count, 3);
        assert_int_equal(position, 3);
    }
    struct got g = {0};
    int64_t position = 0;
    assert_int_equal(decode(&in, first - 1, &position, &g), -EMSGSIZE);
    assert_int_equal(g.count, 0);
    assert_int_equal(position, 0);
    buf_deinit(&in);
}

/* A bad CRC stops at that batch; what came before was handed out. */
static void test_client_consumer_bad_crc(void **state)
{
    (void)state;
    struct buf in;
    buf_init(&in, 1 << 20);
    put_batch(&in, 0, 2, 0);
    size_t second = in.len;
    put_batch(&in, 2, 2, 2);
    in.data[in.len - 1] ^= 0x01;
    struct got g = {0};
    int64_t position = 0;
    assert_int_equal(decode(&in, in.len, &position, &g), -EBADMSG);
    assert_int_equal(g.count, 2);
    assert_int_equal(position, 2);
    (void)second;
    buf_deinit(&in);
}

/* A compressed batch whose blob does not decompress is refused. */
static void test_client_consumer_bad_compressed(void **state)
{
    (void)state;
    struct buf plain, in;
    buf_init(&plain, 1 << 20);
    buf_init(&in, 1 << 20);
    put_batch(&plain, 0, 2, 0);
    put_compressed(&in, plain.data, BATCH_COMPRESSION_GZIP);
    in.data[BATCH_HEADER_BYTES + 12] ^= 0xff;
    fix_crc(in.data);
    struct got g = {0};
    int64_t position = 0;
    assert_int_equal(decode(&in, in.len, &position, &g), -EBADMSG);
    assert_int_equal(g.count, 0);
    buf_deinit(&plain);
    buf_deinit(&in);
}

/* ================================================================ the API */

static sl_client *consumer(void)
{
    sl_conf *conf = sl_conf_new();
    char err[256];
    /* Port 1: nothing listens; these calls never need a broker. */
    assert_int_equal(sl_conf_set(conf, "bootstrap.servers", "127.0.0.1:1", err, sizeof(err)),
                     SL_OK);
    sl_client *c = sl_consumer_new(conf, err, sizeof(err));
    assert_non_null(c);
    return c;
}

static void test_client_consumer_api_refusals(void **state)
{
    (void)state;
    sl_client *c = consumer();
    assert_null(sl_consume(c, 0)); /* nothing assigned: at once */
    assert_int_equal(sl_assign(c, "t", -1, 0), SL_ERR_INVALID_ARG);
    assert_int_equal(sl_assign(c, "bad name!", 0, 0), SL_ERR_INVALID_ARG);
    assert_int_equal(sl_assign(c, "t", 0, -3), SL_ERR_INVALID_ARG);
    assert_int_equal(sl_assign(c, "t", 0, SL_OFFSET_TIMESTAMP(1700000000000)), SL_OK);
    assert_int_equal(sl_assign(c, "t", 1, SL_OFFSET_BEGINNING), SL_OK);
    assert_int_equal(sl_assign(c, "t", 2, 42), SL_OK);
    int64_t position = 0, high_watermark = 0;
    assert_int_equal(sl_position(c, "t", 2, &position, &high_watermark), SL_OK);
    assert_int_equal(position, 42);
    assert_int_equal(high_watermark, -1);
    assert_int_equal(sl_position(c, "t", 1, &position, NULL), SL_OK);
    assert_int_equal(position, -1); /* not listed yet */
    assert_int_equal(sl_position(c, "t", 9, &position, NULL), SL_ERR_UNKNOWN_PARTITION);
    assert_null(sl_consume(c, 50)); /* no broker: times out */
    assert_int_equal(sl_close(c, 0), SL_OK);

    /* A producer is not a consumer, and the other way round. */
    sl_conf *conf = sl_conf_new();
    char err[256];
    assert_int_equal(sl_conf_set(conf, "bootstrap.servers", "127.0.0.1:1", err, sizeof(err)),
                     SL_OK);
    sl_client *p = sl_producer_new(conf, err, sizeof(err));
    assert_non_null(p);
    assert_int_equal(sl_assign(p, "t", 0, 0), SL_ERR_STATE);
    assert_null(sl_consume(p, 0));
    sl_close(p, 0);
    sl_record_free(NULL);
}

static void test_client_consumer_conf_rules(void **state)
{
    (void)state;
    sl_conf *conf = sl_conf_new();
    char err[256];
    assert_int_equal(sl_conf_set(conf, "bootstrap.servers", "127.0.0.1:1", err, sizeof(err)),
                     SL_OK);
    assert_int_equal(sl_conf_set(conf, "auto.offset.reset", "smallest", err, sizeof(err)),
                     SL_ERR_CONF_INVALID);
    assert_int_equal(sl_conf_set(conf, "fetch.max.wait.ms", "40000", err, sizeof(err)), SL_OK);
    assert_null(sl_consumer_new(conf, err, sizeof(err)));
    assert_non_null(strstr(err, "fetch.max.wait.ms"));
    assert_int_equal(sl_conf_set(conf, "fetch.max.wait.ms", "100", err, sizeof(err)), SL_OK);
    assert_int_equal(sl_conf_set(conf, "fetch.max.bytes", "200000000", err, sizeof(err)), SL_OK);
    assert_null(sl_consumer_new(conf, err, sizeof(err)));
    assert_non_null(strstr(err, "receive.message.max.bytes"));
    assert_int_equal(sl_conf_set(conf, "fetch.max.bytes", "1000000", err, sizeof(err)), SL_OK);
    char value[32];
    assert_int_equal(sl_conf_get(conf, "auto.offset.reset", value, sizeof(value)), SL_OK);
    assert_string_equal(value, "latest");
    assert_int_equal(sl_conf_get(conf, "queued.max.messages.kbytes", value, sizeof(value)), SL_OK);
    assert_string_equal(value, "65536");
    sl_client *c = sl_consumer_new(conf, err, sizeof(err));
    assert_non_null(c);
    sl_close(c, 0);
}

/* ================================================================ a scripted broker */

/* The client's broker NODE is the test's end of a socketpair; the test reads
 * its requests between sl_consume calls and answers them as the script says
 * (answers in request order, as Kafka's). */

#define NODE        1
#define ARENA_BYTES (1u << 20)
#define HELD_MAX    8

struct fake {
    sl_client *c;
    int fd;
    struct buf in;
    int metadata_requests;
    int list_requests;
    int64_t list_asked; /* the timestamp of the last ListOffsets */
    int fetches;
    int64_t fetch_offsets[32]; /* what each Fetch asked for partition 0 */
    int32_t held[HELD_MAX];    /* Fetch correlation ids left unanswered */
    int16_t held_version[HELD_MAX];
    int held_count;
    /* the script: the answer to Fetch number i (from 1), by a function */
    void (*on_fetch)(struct fake *f, int32_t correlation_id, int16_t version, int64_t offset);
    int64_t list_answer;
    sl_record *got[RECS_MAX];
    size_t got_count;
};

static void on_error(void *opaque, sl_err err, const char *reason)
{
    (void)opaque;
    fprintf(stderr, "# client error: %s (%s)\n", reason, sl_err_name(err));
}

static void fake_open(struct fake *f, const char *const *pairs, size_t n)
{
    memset(f, 0, sizeof(*f));
    sl_conf *conf = sl_conf_new();
    char err[512];
    assert_int_equal(sl_conf_set(conf, "bootstrap.servers", "127.0.0.1:1", err, sizeof(err)), 0);
    assert_int_equal(sl_conf_set(conf, "retry.backoff.ms", "1", err, sizeof(err)), 0);
    assert_int_equal(sl_conf_set(conf, "retry.backoff.max.ms", "5", err, sizeof(err)), 0);
    for (size_t i = 0; i < n; i += 2) {
        if (sl_conf_set(conf, pairs[i], pairs[i + 1], err, sizeof(err)) != SL_OK) {
            fail_msg("%s", err);
        }
    }
    sl_conf_set_error_cb(conf, on_error);
    f->c = sl_consumer_new(conf, err, sizeof(err));
    assert_non_null(f->c);
    static const struct tu_api_version versions[] = {
        {KMSG_API_METADATA, 12},
        {KMSG_API_FETCH, 12},
        {KMSG_API_LIST_OFFSETS, 7},
        {KMSG_API_API_VERSIONS, 3},
    };
    f->fd = tu_client_attach(f->c, NODE, versions, sizeof(versions) / sizeof(versions[0]));
    buf_init(&f->in, 64u << 20);
}

static void fake_close(struct fake *f)
{
    for (size_t i = 0; i < f->got_count; i++) {
        sl_record_free(f->got[i]);
    }
    sl_close(f->c, 0);
    close(f->fd);
    buf_deinit(&f->in);
}

static void send_frame(struct fake *f, int32_t correlation_id, int16_t api, int16_t version,
                       const struct kmsg_desc *desc, const void *resp)
{
    struct buf out;
    buf_init(&out, 4u << 20);
    tu_response_put(&out, correlation_id, api, version, desc, resp);
    tu_write_all(f->fd, out.data, out.len);
    buf_deinit(&out);
}

static void answer_metadata(struct fake *f, const struct kmsg_request_header *h,
                            const struct kmsg_metadata_request *rq)
{
    f->metadata_requests++;
    struct kmsg_metadata_response resp;
    kmsg_init(&kmsg_metadata_response_desc, &resp);
    struct kmsg_metadata_response_metadata_response_broker broker;
    kmsg_init(&kmsg_metadata_response_metadata_response_broker_desc, &broker);
    broker.node_id = NODE;
    broker.host = (struct kstr){"127.0.0.1", 9};
    broker.port = 9;
    resp.brokers = (struct karray){&broker, 1};
    struct kmsg_metadata_response_metadata_response_topic topics[4];
    struct kmsg_metadata_response_metadata_response_partition part;
    int32_t replicas[1] = {NODE};
    kmsg_init(&kmsg_metadata_response_metadata_response_partition_desc, &part);
    part.partition_index = 0;
    part.leader_id = NODE;
    part.replica_nodes = (struct karray){replicas, 1};
    part.isr_nodes = (struct karray){replicas, 1};
    assert_true(rq->topics.count <= 4);
    const struct kmsg_metadata_request_metadata_request_topic *asked = rq->topics.items;
    for (int32_t i = 0; i < rq->topics.count; i++) {
        kmsg_init(&kmsg_metadata_response_metadata_response_topic_desc, &topics[i]);
        topics[i].name = asked[i].name;
        topics[i].partitions = (struct karray){&part, 1};
    }
    resp.topics = (struct karray){rq->topics.count > 0 ? topics : NULL, rq->topics.count};
    send_frame(f, h->correlation_id, KMSG_API_METADATA, h->request_api_version,
               &kmsg_metadata_response_desc, &resp);
}

static void answer_list(struct fake *f, const struct kmsg_request_header *h,
                        const struct kmsg_list_offsets_request *rq)
{
    f->list_requests++;
    assert_int_equal(rq->topics.count, 1);
    const struct kmsg_list_offsets_request_list_offsets_topic *t = rq->topics.items;
    assert_int_equal(t->partitions.count, 1);
    const struct kmsg_list_offsets_request_list_offsets_partition *p = t->partitions.items;
    f->list_asked = p->timestamp;
    struct kmsg_list_offsets_response_list_offsets_partition_response pr;
    kmsg_init(&kmsg_list_offsets_response_list_offsets_partition_response_desc, &pr);
    pr.partition_index = 0;
    pr.offset = f->list_answer;
    pr.timestamp = -1;
    struct kmsg_list_offsets_response_list_offsets_topic_response tr;
    kmsg_init(&kmsg_list_offsets_response_list_offsets_topic_response_desc, &tr);
    tr.name = t->name;
    tr.partitions = (struct karray){&pr, 1};
    struct kmsg_list_offsets_response resp;
    kmsg_init(&kmsg_list_offsets_response_desc, &resp);
    resp.topics = (struct karray){&tr, 1};
    send_frame(f, h->correlation_id, KMSG_API_LIST_OFFSETS, h->request_api_version,
               &kmsg_list_offsets_response_desc, &resp);
}

/* A Fetch answer for partition 0 of "t": error, high watermark, records. */
static void answer_fetch(struct fake *f, int32_t correlation_id, int16_t version, int16_t error,
                         int64_t high_watermark, const struct buf *records)
{
    struct kmsg_fetch_response_partition_data pd;
    kmsg_init(&kmsg_fetch_response_partition_data_desc, &pd);
    pd.partition_index = 0;
    pd.error_code = error;
    pd.high_watermark = high_watermark;
    pd.aborted_transactions = (struct karray){NULL, -1};
    pd.records = records != NULL ? (struct kbytes){records->data, (int32_t)records->len}
                                 : (struct kbytes){NULL, -1};
    struct kmsg_fetch_response_fetchable_topic_response tr;
    kmsg_init(&kmsg_fetch_response_fetchable_topic_response_desc, &tr);
    tr.topic = (struct kstr){"t", 1};
    tr.partitions = (struct karray){&pd, 1};
    struct kmsg_fetch_response resp;
    kmsg_init(&kmsg_fetch_response_desc, &resp);
    resp.responses = (struct karray){&tr, 1};
    send_frame(f, correlation_id, KMSG_API_FETCH, version, &kmsg_fetch_response_desc, &resp);
}

static void take_fetch(struct fake *f, const struct kmsg_request_header *h,
                       const struct kmsg_fetch_request *rq)
{
    assert_int_equal(rq->topics.count, 1);
    const struct kmsg_fetch_request_fetch_topic *t = rq->topics.items;
    assert_int_equal(t->partitions.count, 1);
    const struct kmsg_fetch_request_fetch_partition *p = t->partitions.items;
    assert_true(f->fetches < 32);
    f->fetch_offsets[f->fetches++] = p->fetch_offset;
    assert_int_equal(rq->replica_id, -1);
    assert_int_equal(rq->session_id, 0);
    f->on_fetch(f, h->correlation_id, h->request_api_version, p->fetch_offset);
}

/* Handles the whole frames f->in holds. */
static void handle_frames(struct fake *f)
{
    while (f->in.len >= 4 && f->in.len - 4 >= be32_get(f->in.data)) {
        size_t len = be32_get(f->in.data);
        const uint8_t *frame = f->in.data + 4;
        struct kmsg_request_header h;
        size_t consumed;
        assert_int_equal(kmsg_request_header_decode(frame, len, &h, &consumed, NULL), 0);
        const struct kmsg_api *api = kmsg_api_find(h.request_api_key);
        void *mem = malloc(ARENA_BYTES);
        struct karena arena;
        karena_init(&arena, mem, ARENA_BYTES);
        union {
            struct kmsg_metadata_request metadata;
            struct kmsg_list_offsets_request list;
            struct kmsg_fetch_request fetch;
        } rq;
        const char *why = NULL;
        if (kmsg_decode(api->request, h.request_api_version, frame + consumed, len - consumed, &rq,
                        &arena, &why) != 0) {
            fail_msg("%s v%d: %s", api->name, h.request_api_version, why);
        }
        switch (h.request_api_key) {
        case KMSG_API_METADATA:
            answer_metadata(f, &h, &rq.metadata);
            break;
        case KMSG_API_LIST_OFFSETS:
            answer_list(f, &h, &rq.list);
            break;
        case KMSG_API_FETCH:
            take_fetch(f, &h, &rq.fetch);
            break;
        default:
            fail_msg("unexpected request %s", api->name);
        }
        free(mem);
        memmove(f->in.data, f->in.data + 4 + len, f->in.len - 4 - len);
        f->in.len -= 4 + len;
    }
}

static void fake_read(struct fake *f)
{
    assert_int_equal(buf_reserve(&f->in, 1u << 16), 0);
    ssize_t n = read(f->fd, f->in.data + f->in.len, f->in.cap - f->in.len);
    if (n > 0) {
        f->in.len += (size_t)n;
    }
    handle_frames(f);
}

/* Consumes for up to timeout_ms or until want records and events came. */
static void consume_until(struct fake *f, size_t want, int timeout_ms)
{
    int64_t deadline = slc_now_ms() + timeout_ms;
    while (f->got_count < want && slc_now_ms() < deadline) {
        sl_record *r = sl_consume(f->c, 1);
        if (r != NULL) {
            assert_true(f->got_count < RECS_MAX);
            f->got[f->got_count++] = r;
        }
        fake_read(f);
    }
}

/* Polls (consuming nothing) for ms. */
static void poll_for(struct fake *f, int ms)
{
    int64_t deadline = slc_now_ms() + ms;
    while (slc_now_ms() < deadline) {
        sl_poll(f->c, 1);
        fake_read(f);
    }
}

static void hold(struct fake *f, int32_t correlation_id, int16_t version)
{
    assert_true(f->held_count < HELD_MAX);
    f->held[f->held_count] = correlation_id;
    f->held_version[f->held_count++] = version;
}

/* Fetch 1 at 50: out of range; 2 at 10 (listed earliest): not leader; 3
 * at 10: records 10..12 of 13; later ones wait (a broker with nothing new). */
static void script_reset(struct fake *f, int32_t correlation_id, int16_t version, int64_t offset)
{
    (void)offset;
    if (f->fetches == 1) {
        answer_fetch(f, correlation_id, version, KAFKA_ERR_OFFSET_OUT_OF_RANGE, 13, NULL);
    } else if (f->fetches == 2) {
        answer_fetch(f, correlation_id, version, KAFKA_ERR_NOT_LEADER_OR_FOLLOWER, -1, NULL);
    } else if (f->fetches == 3) {
        struct buf records;
        buf_init(&records, 1 << 20);
        put_batch(&records, 10, 3, 0);
        answer_fetch(f, correlation_id, version, 0, 13, &records);
        buf_deinit(&records);
    } else {
        hold(f, correlation_id, version);
    }
}

static void test_client_consumer_reset_and_leader_error(void **state)
{
    (void)state;
    static const char *const conf[] = {"auto.offset.reset", "earliest", "enable.partition.eof",
                                       "true"};
    struct fake f;
    fake_open(&f, conf, SL_ARRAY_LEN(conf));
    f.on_fetch = script_reset;
    f.list_answer = 10;
    assert_int_equal(sl_assign(f.c, "t", 0, 50), SL_OK);
    consume_until(&f, 4, 5000);
    assert_int_equal(f.got_count, 4);
    assert_int_equal(f.fetch_offsets[0], 50);
    assert_int_equal(f.list_requests, 1);
    assert_int_equal(f.list_asked, SL_OFFSET_BEGINNING); /* earliest */
    assert_int_equal(f.fetch_offsets[1], 10);
    assert_int_equal(f.fetch_offsets[2], 10);
    assert_true(f.metadata_requests >= 2); /* the first, then after NOT_LEADER */
    for (int i = 0; i < 3; i++) {
        assert_int_equal(f.got[i]->err, SL_OK);
        assert_int_equal(f.got[i]->offset, 10 + i);
        assert_string_equal(f.got[i]->topic, "t");
        assert_int_equal(f.got[i]->high_watermark, 13);
    }
    assert_memory_equal(f.got[0]->key, "k0", 2);
    assert_null(f.got[1]->key);
    assert_null(f.got[2]->value);
    assert_int_equal(f.got[0]->header_count, 1);
    assert_string_equal(f.got[0]->headers[0].name, "h");
    assert_int_equal(f.got[3]->err, SL_ERR_PARTITION_EOF);
    assert_int_equal(f.got[3]->offset, 13);
    int64_t position = 0, high_watermark = 0;
    assert_int_equal(sl_position(f.c, "t", 0, &position, &high_watermark), SL_OK);
    assert_int_equal(position, 13);
    assert_int_equal(high_watermark, 13);
    fake_close(&f);
}

/* With auto.offset.reset = none, out of range is an event and the
 * partition stops: no more Fetches. */
static void script_out_of_range(struct fake *f, int32_t correlation_id, int16_t version,
                                int64_t offset)
{
    (void)offset;
    answer_fetch(f, correlation_id, version, KAFKA_ERR_OFFSET_OUT_OF_RANGE, 13, NULL);
}

static void test_client_consumer_reset_none_stops(void **state)
{
    (void)state;
    static const char *const conf[] = {"auto.offset.reset", "none"};
    struct fake f;
    fake_open(&f, conf, SL_ARRAY_LEN(conf));
    f.on_fetch = script_out_of_range;
    assert_int_equal(sl_assign(f.c, "t", 0, 50), SL_OK);
    consume_until(&f, 1, 5000);
    assert_int_equal(f.got_count, 1);
    assert_int_equal(f.got[0]->err, SL_ERR_OFFSET_OUT_OF_RANGE);
    assert_int_equal(f.got[0]->offset, 50);
    poll_for(&f, 100);
    assert_int_equal(f.fetches, 1);
    assert_int_equal(f.list_requests, 0);
    fake_close(&f);
}

/* queued.max.messages.kbytes: no Fetch while the queue is above it; one as
 * soon as it is consumed below. */
static void script_big(struct fake *f, int32_t correlation_id, int16_t version, int64_t offset)
{
    if (f->fetches > 2) {
        hold(f, correlation_id, version);
        return;
    }
    struct buf records;
    buf_init(&records, 1 << 20);
    struct batch_record recs[4];
    static uint8_t value[600];
    memset(value, 'x', sizeof(value));
    for (int i = 0; i < 4; i++) {
        recs[i] = (struct batch_record){
            .timestamp = 1, .key = NULL, .key_len = -1, .value = value, .value_len = 600};
    }
    struct batch_meta meta = {
        .base_offset = offset, .producer_id = -1, .producer_epoch = -1, .base_sequence = -1};
    assert_int_equal(batch_encode(&records, &meta, recs, 4), 0);
    answer_fetch(f, correlation_id, version, 0, 100, &records);
    buf_deinit(&records);
}

static void test_client_consumer_queue_bound(void **state)
{
    (void)state;
    static const char *const conf[] = {"queued.max.messages.kbytes", "1"};
    struct fake f;
    fake_open(&f, conf, SL_ARRAY_LEN(conf));
    f.on_fetch = script_big;
    assert_int_equal(sl_assign(f.c, "t", 0, 0), SL_OK);
    poll_for(&f, 200);
    assert_int_equal(f.fetches, 1); /* 2400 bytes queued: above 1 KiB */
    consume_until(&f, 4, 2000);
    assert_int_equal(f.got_count, 4);
    poll_for(&f, 200);
    assert_int_equal(f.fetches, 2);
    assert_int_equal(f.fetch_offsets[1], 4);
    fake_close(&f);
}

/* sl_assign while a Fetch is in flight: its answer is dropped, the next
 * Fetch starts at the new offset. */
static void script_hold_first(struct fake *f, int32_t correlation_id, int16_t version,
                              int64_t offset)
{
    (void)offset;
    if (f->fetches == 1) {
        hold(f, correlation_id, version);
        return;
    }
    if (f->fetches == 2) {
        struct buf records;
        buf_init(&records, 1 << 20);
        put_batch(&records, 5, 1, 5);
        answer_fetch(f, correlation_id, version, 0, 6, &records);
        buf_deinit(&records);
        return;
    }
    hold(f, correlation_id, version);
}

static void test_client_consumer_reassign_in_flight(void **state)
{
    (void)state;
    struct fake f;
    fake_open(&f, NULL, 0);
    f.on_fetch = script_hold_first;
    assert_int_equal(sl_assign(f.c, "t", 0, 0), SL_OK);
    poll_for(&f, 100);
    assert_int_equal(f.fetches, 1);
    assert_int_equal(sl_assign(f.c, "t", 0, 5), SL_OK);
    struct buf records;
    buf_init(&records, 1 << 20);
    put_batch(&records, 0, 3, 0);
    answer_fetch(&f, f.held[0], f.held_version[0], 0, 6, &records); /* stale */
    buf_deinit(&records);
    f.held_count = 0;
    consume_until(&f, 1, 2000);
    assert_int_equal(f.got_count, 1);
    assert_int_equal(f.got[0]->offset, 5);
    assert_memory_equal(f.got[0]->key, "k5", 2);
    assert_int_equal(f.fetch_offsets[1], 5);
    fake_close(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_client_consumer_plain_batches),
        cmocka_unit_test(test_client_consumer_position_inside_batch),
        cmocka_unit_test(test_client_consumer_offset_gaps),
        cmocka_unit_test(test_client_consumer_empty_and_control_batches),
        cmocka_unit_test(test_client_consumer_compressed_batches),
        cmocka_unit_test(test_client_consumer_truncated_answer),
        cmocka_unit_test(test_client_consumer_bad_crc),
        cmocka_unit_test(test_client_consumer_bad_compressed),
        cmocka_unit_test(test_client_consumer_api_refusals),
        cmocka_unit_test(test_client_consumer_conf_rules),
        cmocka_unit_test(test_client_consumer_reset_and_leader_error),
        cmocka_unit_test(test_client_consumer_reset_none_stops),
        cmocka_unit_test(test_client_consumer_queue_bound),
        cmocka_unit_test(test_client_consumer_reassign_in_flight),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
