/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Compression of a RecordBatch's records section. Kafka compresses the
 * records of a batch as one blob after the 61-byte header: a gzip stream, a
 * snappy stream (raw, or in the Java client's xerial framing), an LZ4 frame,
 * or a zstd frame. Every codec can be read (to filter a batch's records);
 * Sluice writes zstd only (a batch it rebuilds from another codec is stored
 * uncompressed).
 */
#ifndef SL_PROTO_COMPRESS_H
#define SL_PROTO_COMPRESS_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

/* zstd's compression context (ZSTD_CCtx). */
struct ZSTD_CCtx_s;

/* A context to keep between compressions: its tables, a few MiB at the
 * default level for a 1 MiB input, are allocated once, not per call. NULL
 * when out of memory; zstd_ctx_free(NULL) is a no-op. */
struct ZSTD_CCtx_s *zstd_ctx_new(void);
void zstd_ctx_free(struct ZSTD_CCtx_s *ctx);

/* Appends the zstd frame of in[0..len) to out at level, with ctx (borrowed;
 * NULL: a context for this call only). 0, -ENOBUFS (out's bound), -EIO (the
 * library refused). */
int compress_zstd(struct ZSTD_CCtx_s *ctx, const uint8_t *in, size_t len, int level,
                  struct buf *out);

/* Appends the content of the zstd frames in in[0..len) to out, at most
 * max_out bytes. 0, -EMSGSIZE past max_out, -EBADMSG corrupt input,
 * -ENOBUFS (out's bound). */
int decompress_zstd(const uint8_t *in, size_t len, size_t max_out, struct buf *out);

/* The same for the other codecs, and one entry for all: codec is the
 * batch's compression attribute (BATCH_COMPRESSION_*); -ENOTSUP for none or
 * an unknown one. */
int decompress_gzip(const uint8_t *in, size_t len, size_t max_out, struct buf *out);
int decompress_snappy(const uint8_t *in, size_t len, size_t max_out, struct buf *out);
int decompress_lz4(const uint8_t *in, size_t len, size_t max_out, struct buf *out);
int decompress_records(int codec, const uint8_t *in, size_t len, size_t max_out, struct buf *out);

#endif
