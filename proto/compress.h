/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Compression of a RecordBatch's records section. Kafka compresses the
 * records of a batch as one blob after the 61-byte header; for zstd that blob
 * is a standard zstd frame. Only the codecs Sluice links are here: none and
 * zstd (the others are stored and served as sent, never opened).
 */
#ifndef SL_PROTO_COMPRESS_H
#define SL_PROTO_COMPRESS_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

/* Appends the zstd frame of in[0..len) to out at level. 0, -ENOBUFS (out's
 * bound), -EIO (the library refused). */
int compress_zstd(const uint8_t *in, size_t len, int level, struct buf *out);

/* Appends the content of the zstd frames in in[0..len) to out, at most
 * max_out bytes. 0, -EMSGSIZE past max_out, -EBADMSG corrupt input,
 * -ENOBUFS (out's bound). */
int decompress_zstd(const uint8_t *in, size_t len, size_t max_out, struct buf *out);

#endif
