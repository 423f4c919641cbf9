/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Compression of record batches. Every decoder streams into a bounded
 * output, so a bomb stops at max_out, and checks every length against the
 * bytes left: what comes in is a producer's, not ours.
 */
#include "proto/compress.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

#include "common/assert.h"
#include "common/bytes.h"
#include "proto/batch.h"

#define STEP_BYTES (64u << 10)

struct ZSTD_CCtx_s *zstd_ctx_new(void)
{
    return ZSTD_createCCtx();
}

void zstd_ctx_free(struct ZSTD_CCtx_s *ctx)
{
    ZSTD_freeCCtx(ctx); /* NULL is a no-op for zstd too */
}

int compress_zstd(struct ZSTD_CCtx_s *ctx, const uint8_t *in, size_t len, int level,
                  struct buf *out)
{
    size_t bound = ZSTD_compressBound(len);
    int err = buf_reserve(out, bound);
    if (err != 0) {
        return err;
    }
    size_t n = ctx != NULL ? ZSTD_compressCCtx(ctx, out->data + out->len, bound, in, len, level)
                           : ZSTD_compress(out->data + out->len, bound, in, len, level);
    if (ZSTD_isError(n)) {
        return -EIO;
    }
    out->len += n;
    return 0;
}

int decompress_zstd(const uint8_t *in, size_t len, size_t max_out, struct buf *out)
{
    ZSTD_DStream *ds = ZSTD_createDStream();
    if (ds == NULL) {
        return -ENOMEM;
    }
    ZSTD_inBuffer src = {in, len, 0};
    size_t start = out->len;
    int err = 0;
    size_t last = 1;
    while (err == 0 && (src.pos < src.size || last != 0)) {
        if (out->len - start >= max_out) {
            err = -EMSGSIZE;
            break;
        }
        size_t room = max_out - (out->len - start);
        room = room < STEP_BYTES ? room : STEP_BYTES;
        err = buf_reserve(out, room);
        if (err != 0) {
            break;
        }
        ZSTD_outBuffer dst = {out->data + out->len, room, 0};
        last = ZSTD_decompressStream(ds, &dst, &src);
        if (ZSTD_isError(last)) {
            err = -EBADMSG;
            break;
        }
        out->len += dst.pos;
        if (dst.pos == 0 && src.pos == src.size && last != 0) {
            err = -EBADMSG; /* a frame cut short */
        }
    }
    ZSTD_freeDStream(ds);
    if (err != 0) {
        out->len = start;
    }
    return err;
}

/* ----------------------------------------------------------------- gzip */

int decompress_gzip(const uint8_t *in, size_t len, size_t max_out, struct buf *out)
{
    z_stream zs = {0};
    /* 16 + MAX_WBITS: a gzip wrapper, as Kafka's producers write it. */
    if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) {
        return -ENOMEM;
    }
    size_t start = out->len;
    zs.next_in = (Bytef *)(uintptr_t)in;
    zs.avail_in = (uInt)len;
    int err = 0;
    int rc = Z_OK;
    while (err == 0 && rc != Z_STREAM_END) {
        if (out->len - start >= max_out) {
            err = -EMSGSIZE;
            break;
        }
        size_t room = SL_MIN(max_out - (out->len - start), (size_t)STEP_BYTES);
        err = buf_reserve(out, room);
        if (err != 0) {
            break;
        }
        zs.next_out = out->data + out->len;
        zs.avail_out = (uInt)room;
        rc = inflate(&zs, Z_NO_FLUSH);
        out->len += room - zs.avail_out;
        if (rc != Z_OK && rc != Z_STREAM_END) {
            err = -EBADMSG; /* corrupt, or cut short (Z_BUF_ERROR with no input left) */
        }
    }
    inflateEnd(&zs);
    if (err != 0) {
        out->len = start;
    }
    return err;
}

/* ----------------------------------------------------------------- lz4 */

/*
 * LZ4 frames (the format Kafka's producers write): magic, a descriptor,
 * then blocks (u32 LE size, the top bit set for a stored block) up to an
 * empty one, each maybe followed by a checksum, then maybe a content
 * checksum. Blocks may refer back into earlier ones (linked blocks), so the
 * whole output stays one window. Checksums are not verified: the batch's
 * CRC-32C already covers these bytes.
 */
#define LZ4_MAGIC 0x184d2204u

static uint32_t le32_get(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static int lz4_block(const uint8_t *p, const uint8_t *end, struct buf *out, size_t start,
                     size_t max_out)
{
    while (p < end) {
        uint8_t token = *p++;
        size_t lit = token >> 4;
        if (lit == 15) {
            uint8_t b;
            do {
                if (p >= end) {
                    return -EBADMSG;
                }
                b = *p++;
                lit += b;
            } while (b == 255);
        }
        if ((size_t)(end - p) < lit || out->len - start + lit > max_out) {
            return (size_t)(end - p) < lit ? -EBADMSG : -EMSGSIZE;
        }
        int err = buf_put(out, p, lit);
        if (err != 0) {
            return err;
        }
        p += lit;
        if (p == end) {
            return 0; /* the last sequence has literals only */
        }
        if (end - p < 2) {
            return -EBADMSG;
        }
        size_t offset = (size_t)p[0] | (size_t)p[1] << 8;
        p += 2;
        size_t match = (token & 15u) + 4;
        if ((token & 15u) == 15) {
            uint8_t b;
            do {
                if (p >= end) {
                    return -EBADMSG;
                }
                b = *p++;
                match += b;
            } while (b == 255);
        }
        if (offset == 0 || offset > out->len - start) {
            return -EBADMSG;
        }
        if (out->len - start + match > max_out) {
            return -EMSGSIZE;
        }
        err = buf_reserve(out, match);
        if (err != 0) {
            return err;
        }
        /* Byte by byte: a match may overlap what it writes (a run). */
        uint8_t *dst = out->data + out->len;
        const uint8_t *src = dst - offset;
        for (size_t i = 0; i < match; i++) {
            dst[i] = src[i];
        }
        out->len += match;
    }
    return 0;
}

int decompress_lz4(const uint8_t *in, size_t len, size_t max_out, struct buf *out)
{
    const uint8_t *p = in;
    const uint8_t *end = in + len;
    size_t start = out->len;
    if (len < 7 || le32_get(p) != LZ4_MAGIC) {
        return -EBADMSG;
    }
    uint8_t flg = p[4];
    p += 6; /* magic, FLG, BD */
    if ((flg >> 6) != 1) {
        return -EBADMSG; /* version 01 only */
    }
    bool block_checksum = (flg & 0x10) != 0;
    bool content_size = (flg & 0x08) != 0;
    bool content_checksum = (flg & 0x04) != 0;
    bool dict_id = (flg & 0x01) != 0;
    size_t skip = (content_size ? 8u : 0u) + (dict_id ? 4u : 0u) + 1u; /* + header checksum */
    if ((size_t)(end - p) < skip) {
        return -EBADMSG;
    }
    p += skip;
    int err = 0;
    for (;;) {
        if (end - p < 4) {
            err = -EBADMSG;
            break;
        }
        uint32_t size = le32_get(p);
        p += 4;
        if (size == 0) {
            break; /* the end mark */
        }
        bool stored = (size & 0x80000000u) != 0;
        size &= 0x7fffffffu;
        if ((size_t)(end - p) < size + (block_checksum ? 4u : 0u)) {
            err = -EBADMSG;
            break;
        }
        if (stored) {
            err = out->len - start + size > max_out ? -EMSGSIZE : buf_put(out, p, size);
        } else {
            err = lz4_block(p, p + size, out, start, max_out);
        }
        if (err != 0) {
            break;
        }
        p += size + (block_checksum ? 4u : 0u);
    }
    if (err == 0 && content_checksum && end - p < 4) {
        err = -EBADMSG;
    }
    if (err != 0) {
        out->len = start;
    }
    return err;
}

/* -------------------------------------------------------------- snappy */

/*
 * Snappy, raw or in the Java client's (xerial) framing: a 16-byte header
 * ("\x82SNAPPY\0", two u32) then chunks of u32 BE length + raw snappy. A raw
 * stream is a varint of the uncompressed length, then literals and copies.
 */
static const uint8_t xerial_magic[8] = {0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0};

static int snappy_raw(const uint8_t *p, const uint8_t *end, struct buf *out, size_t max_out,
                      size_t start)
{
    uint64_t want = 0;
    for (int shift = 0;; shift += 7) {
        if (p >= end || shift > 28) {
            return -EBADMSG;
        }
        uint8_t b = *p++;
        want |= (uint64_t)(b & 0x7f) << shift;
        if ((b & 0x80) == 0) {
            break;
        }
    }
    size_t chunk_start = out->len;
    if (out->len - start + want > max_out) {
        return -EMSGSIZE;
    }
    int err = buf_reserve(out, (size_t)want);
    if (err != 0) {
        return err;
    }
    while (p < end) {
        uint8_t tag = *p++;
        size_t n, offset = 0;
        if ((tag & 3) == 0) {
            n = (tag >> 2) + 1u;
            if ((tag >> 2) >= 60) {
                size_t bytes = (tag >> 2) - 59u;
                if ((size_t)(end - p) < bytes) {
                    return -EBADMSG;
                }
                n = 0;
                for (size_t i = 0; i < bytes; i++) {
                    n |= (size_t)p[i] << (8 * i);
                }
                n += 1;
                p += bytes;
            }
            if ((size_t)(end - p) < n || out->len - chunk_start + n > want) {
                return -EBADMSG;
            }
            memcpy(out->data + out->len, p, n);
            out->len += n;
            p += n;
            continue;
        }
        if ((tag & 3) == 1) {
            if (p >= end) {
                return -EBADMSG;
            }
            n = ((tag >> 2) & 7u) + 4u;
            offset = (size_t)(tag >> 5) << 8 | *p++;
        } else {
            size_t bytes = (tag & 3) == 2 ? 2u : 4u;
            if ((size_t)(end - p) < bytes) {
                return -EBADMSG;
            }
            n = (tag >> 2) + 1u;
            for (size_t i = 0; i < bytes; i++) {
                offset |= (size_t)p[i] << (8 * i);
            }
            p += bytes;
        }
        if (offset == 0 || offset > out->len - chunk_start || out->len - chunk_start + n > want) {
            return -EBADMSG;
        }
        uint8_t *dst = out->data + out->len;
        const uint8_t *src = dst - offset;
        for (size_t i = 0; i < n; i++) {
            dst[i] = src[i]; /* may overlap: a run */
        }
        out->len += n;
    }
    return out->len - chunk_start == want ? 0 : -EBADMSG;
}

int decompress_snappy(const uint8_t *in, size_t len, size_t max_out, struct buf *out)
{
    size_t start = out->len;
    int err = 0;
    if (len >= 16 && memcmp(in, xerial_magic, sizeof(xerial_magic)) == 0) {
        const uint8_t *p = in + 16;
        const uint8_t *end = in + len;
        while (err == 0 && p < end) {
            if (end - p < 4) {
                err = -EBADMSG;
                break;
            }
            uint32_t n = be32_get(p);
            p += 4;
            if ((size_t)(end - p) < n) {
                err = -EBADMSG;
                break;
            }
            err = snappy_raw(p, p + n, out, max_out, start);
            p += n;
        }
    } else {
        err = snappy_raw(in, in + len, out, max_out, start);
    }
    if (err != 0) {
        out->len = start;
    }
    return err;
}

int decompress_records(int codec, const uint8_t *in, size_t len, size_t max_out, struct buf *out)
{
    switch (codec) {
    case BATCH_COMPRESSION_GZIP:
        return decompress_gzip(in, len, max_out, out);
    case BATCH_COMPRESSION_SNAPPY:
        return decompress_snappy(in, len, max_out, out);
    case BATCH_COMPRESSION_LZ4:
        return decompress_lz4(in, len, max_out, out);
    case BATCH_COMPRESSION_ZSTD:
        return decompress_zstd(in, len, max_out, out);
    default:
        return -ENOTSUP;
    }
}
