/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The record-batch decoders (proto/compress.c): each codec's output for
 * known input (gzip and zstd from their libraries, LZ4 frames and snappy
 * streams written by hand, with overlapping matches, linked blocks, stored
 * blocks and the Java client's framing), every truncation refused, output
 * bounded by max_out, and random damage never read out of bounds.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <zlib.h>

#include <cmocka.h>

#include "proto/batch.h"
#include "proto/compress.h"
#include "tests/lib/testutil.h"

static const uint8_t lz4_frame[] = {
    0x04, 0x22, 0x4d, 0x18, 0x60, 0x40, 0x82,           /* magic, FLG, BD, header checksum */
    0x08, 0x00, 0x00, 0x00,                             /* block 1: 8 bytes */
    0x35, 'a',  'b',  'c',  0x03, 0x00, 0x10, 'X',      /* "abc", a 9-byte run back 3, "X" */
    0x05, 0x00, 0x00, 0x80, 'h',  'e',  'l',  'l', 'o', /* block 2: stored "hello" */
    0x06, 0x00, 0x00, 0x00,                             /* block 3: linked, reaches into block 1 */
    0x14, '!',  0x13, 0x00, 0x10, '.',                  /* "!", 8 bytes back 19, "." */
    0x00, 0x00, 0x00, 0x00,                             /* end mark */
};
static const char lz4_text[] = "abcabcabcabcXhello!abcabcab.";

static const uint8_t snappy_raw[] = {
    0x11,                       /* 17 bytes */
    0x0c, 'a',  'b',  'c', 'd', /* literal "abcd" */
    0x11, 0x04,                 /* copy-1: 8 bytes back 4 */
    0x12, 0x04, 0x00,           /* copy-2: 5 bytes back 4 */
};
static const char snappy_text[] = "abcdabcdabcdabcda";

static void expect(int rc, const struct buf *out, const char *text)
{
    assert_int_equal(rc, 0);
    assert_int_equal(out->len, strlen(text));
    assert_memory_equal(out->data, text, out->len);
}

static void test_compress_lz4_frame(void **state)
{
    (void)state;
    struct buf out;
    buf_init(&out, 1 << 16);
    expect(decompress_records(BATCH_COMPRESSION_LZ4, lz4_frame, sizeof(lz4_frame), 1 << 16, &out),
           &out, lz4_text);
    /* Every cut is refused and leaves out as it was. */
    for (size_t len = 0; len < sizeof(lz4_frame); len++) {
        buf_reset(&out);
        assert_int_equal(decompress_lz4(lz4_frame, len, 1 << 16, &out), -EBADMSG);
        assert_int_equal(out.len, 0);
    }
    /* A bound below the content. */
    buf_reset(&out);
    assert_int_equal(decompress_lz4(lz4_frame, sizeof(lz4_frame), 10, &out), -EMSGSIZE);
    /* A match reaching before the output starts. */
    uint8_t bad[sizeof(lz4_frame)];
    memcpy(bad, lz4_frame, sizeof(bad));
    bad[15] = 0x40; /* block 1's offset 64 > the 3 bytes written */
    buf_reset(&out);
    assert_int_equal(decompress_lz4(bad, sizeof(bad), 1 << 16, &out), -EBADMSG);
    buf_deinit(&out);
}

static void test_compress_snappy_raw_and_framed(void **state)
{
    (void)state;
    struct buf out;
    buf_init(&out, 1 << 16);
    expect(
        decompress_records(BATCH_COMPRESSION_SNAPPY, snappy_raw, sizeof(snappy_raw), 1 << 16, &out),
        &out, snappy_text);
    /* The Java client's framing: two chunks of the same stream. */
    uint8_t framed[16 + 2 * (4 + sizeof(snappy_raw))];
    static const uint8_t head[16] = {0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0, 0, 0, 0, 1, 0, 0, 0, 1};
    memcpy(framed, head, sizeof(head));
    size_t pos = sizeof(head);
    for (int i = 0; i < 2; i++) {
        framed[pos] = framed[pos + 1] = framed[pos + 2] = 0;
        framed[pos + 3] = (uint8_t)sizeof(snappy_raw);
        memcpy(framed + pos + 4, snappy_raw, sizeof(snappy_raw));
        pos += 4 + sizeof(snappy_raw);
    }
    buf_reset(&out);
    expect(decompress_snappy(framed, sizeof(framed), 1 << 16, &out), &out,
           "abcdabcdabcdabcdaabcdabcdabcdabcda");
    for (size_t len = 1; len < sizeof(snappy_raw); len++) {
        buf_reset(&out);
        assert_int_equal(decompress_snappy(snappy_raw, len, 1 << 16, &out), -EBADMSG);
    }
    buf_reset(&out);
    assert_int_equal(decompress_snappy(snappy_raw, sizeof(snappy_raw), 16, &out), -EMSGSIZE);
    buf_deinit(&out);
}

static void test_compress_gzip_and_zstd(void **state)
{
    (void)state;
    static uint8_t text[100000];
    for (size_t i = 0; i < sizeof(text); i++) {
        text[i] = (uint8_t)("sluice"[i % 6] + (i / 997) % 3);
    }
    /* gzip, as a Kafka producer writes it: a gzip wrapper around deflate. */
    uint8_t gz[sizeof(text)];
    z_stream zs = {0};
    assert_int_equal(deflateInit2(&zs, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
    zs.next_in = text;
    zs.avail_in = sizeof(text);
    zs.next_out = gz;
    zs.avail_out = sizeof(gz);
    assert_int_equal(deflate(&zs, Z_FINISH), Z_STREAM_END);
    size_t gz_len = sizeof(gz) - zs.avail_out;
    deflateEnd(&zs);
    struct buf out;
    buf_init(&out, 1 << 20);
    assert_int_equal(decompress_records(BATCH_COMPRESSION_GZIP, gz, gz_len, 1 << 20, &out), 0);
    assert_int_equal(out.len, sizeof(text));
    assert_memory_equal(out.data, text, sizeof(text));
    buf_reset(&out);
    assert_int_equal(decompress_gzip(gz, gz_len / 2, 1 << 20, &out), -EBADMSG);
    buf_reset(&out);
    assert_int_equal(decompress_gzip(gz, gz_len, 1000, &out), -EMSGSIZE);
    /* zstd both ways, with a context of the call's own and with one kept
     * across calls (the second frame must not depend on the first). */
    struct buf z;
    buf_init(&z, 1 << 20);
    assert_int_equal(compress_zstd(NULL, text, sizeof(text), 3, &z), 0);
    buf_reset(&out);
    assert_int_equal(decompress_records(BATCH_COMPRESSION_ZSTD, z.data, z.len, 1 << 20, &out), 0);
    assert_memory_equal(out.data, text, sizeof(text));
    struct ZSTD_CCtx_s *ctx = zstd_ctx_new();
    assert_non_null(ctx);
    for (int level = 1; level <= 3; level += 2) {
        buf_reset(&z);
        assert_int_equal(compress_zstd(ctx, text, sizeof(text), level, &z), 0);
        buf_reset(&out);
        assert_int_equal(decompress_records(BATCH_COMPRESSION_ZSTD, z.data, z.len, 1 << 20, &out),
                         0);
        assert_int_equal(out.len, sizeof(text));
        assert_memory_equal(out.data, text, sizeof(text));
    }
    zstd_ctx_free(ctx);
    zstd_ctx_free(NULL);
    assert_int_equal(decompress_records(BATCH_COMPRESSION_NONE, z.data, z.len, 1 << 20, &out),
                     -ENOTSUP);
    buf_deinit(&z);
    buf_deinit(&out);
}

/* Random damage: every decoder ends with 0 or an error, within its bound
 * (ASan and UBSan builds check that nothing is read or written outside). */
static void test_compress_damage_is_bounded(void **state)
{
    (void)state;
    uint64_t seed = tu_seed("compress_damage");
    struct buf out;
    buf_init(&out, 1 << 16);
    const struct {
        int codec;
        const uint8_t *p;
        size_t len;
    } inputs[] = {
        {BATCH_COMPRESSION_LZ4, lz4_frame, sizeof(lz4_frame)},
        {BATCH_COMPRESSION_SNAPPY, snappy_raw, sizeof(snappy_raw)},
    };
    uint8_t copy[64];
    for (int round = 0; round < 20000; round++) {
        int k = round % 2;
        memcpy(copy, inputs[k].p, inputs[k].len);
        for (int flips = 1 + (int)(tu_rand(&seed) % 3); flips > 0; flips--) {
            copy[tu_rand(&seed) % inputs[k].len] = (uint8_t)tu_rand(&seed);
        }
        buf_reset(&out);
        int rc = decompress_records(inputs[k].codec, copy, inputs[k].len, 4096, &out);
        assert_true(rc == 0 || rc == -EBADMSG || rc == -EMSGSIZE);
        assert_true(out.len <= 4096);
        assert_true(rc == 0 || out.len == 0);
    }
    buf_deinit(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_compress_lz4_frame),
        cmocka_unit_test(test_compress_snappy_raw_and_framed),
        cmocka_unit_test(test_compress_gzip_and_zstd),
        cmocka_unit_test(test_compress_damage_is_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
