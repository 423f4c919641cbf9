/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target: the record-batch decoders (proto/compress.c), which read
 * what producers compressed. The first byte picks the codec; whatever the
 * rest, a decoder must stay inside its input and its output bound, and on
 * an error leave the output as it was.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/assert.h"
#include "proto/batch.h"
#include "proto/compress.h"

#define OUT_MAX (1u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) {
        return 0;
    }
    static const int codecs[] = {BATCH_COMPRESSION_GZIP, BATCH_COMPRESSION_SNAPPY,
                                 BATCH_COMPRESSION_LZ4, BATCH_COMPRESSION_ZSTD};
    int codec = codecs[data[0] % 4];
    /* An exact-size copy, so any read past the end is caught. */
    uint8_t *p = malloc(size - 1 + 1);
    if (p == NULL) {
        return 0;
    }
    memcpy(p, data + 1, size - 1);
    struct buf out;
    buf_init(&out, OUT_MAX);
    int rc = decompress_records(codec, p, size - 1, OUT_MAX, &out);
    SL_ASSERT(rc == 0 || rc == -EBADMSG || rc == -EMSGSIZE || rc == -ENOMEM);
    SL_ASSERT(out.len <= OUT_MAX);
    SL_ASSERT(rc == 0 || out.len == 0);
    buf_deinit(&out);
    free(p);
    return 0;
}
