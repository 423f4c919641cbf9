/* SPDX-License-Identifier: Apache-2.0 */
/* zstd for record batches: streaming, so that a bomb stops at max_out. */
#include "proto/compress.h"

#include <errno.h>
#include <zstd.h>

#define STEP_BYTES (64u << 10)

int compress_zstd(const uint8_t *in, size_t len, int level, struct buf *out)
{
    size_t bound = ZSTD_compressBound(len);
    int err = buf_reserve(out, bound);
    if (err != 0) {
        return err;
    }
    size_t n = ZSTD_compress(out->data + out->len, bound, in, len, level);
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
