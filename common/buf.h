/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Growable byte buffer with a hard ceiling.
 *
 * Every buffer has a maximum size fixed at init; growing past it fails with
 * -ENOBUFS instead of allocating, so a peer cannot make us hold more memory
 * than the configuration allows.
 */
#ifndef SL_COMMON_BUF_H
#define SL_COMMON_BUF_H

#include <stddef.h>
#include <stdint.h>

struct buf {
    uint8_t *data;
    size_t len;
    size_t cap;
    size_t max; /* len never exceeds max */
};

void buf_init(struct buf *b, size_t max);
void buf_deinit(struct buf *b);
void buf_reset(struct buf *b);
/* Ensures room for n more bytes; 0 or -ENOBUFS (over max) or -ENOMEM. */
int buf_reserve(struct buf *b, size_t n);
/* Appends; on failure the buffer is unchanged. */
int buf_put(struct buf *b, const void *p, size_t n);
int buf_put_u8(struct buf *b, uint8_t v);
int buf_put_be16(struct buf *b, uint16_t v);
int buf_put_be32(struct buf *b, uint32_t v);
int buf_put_be64(struct buf *b, uint64_t v);
/* Kafka zig-zag varint / varlong (records) and unsigned varint (flexible versions). */
int buf_put_varint(struct buf *b, int32_t v);
int buf_put_varlong(struct buf *b, int64_t v);
int buf_put_uvarint(struct buf *b, uint32_t v);

#endif
