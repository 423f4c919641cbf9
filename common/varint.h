/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Kafka's variable-length integers: zig-zag encoded signed varint (at most 5
 * bytes) and varlong (at most 10 bytes) as in record fields, and unsigned
 * varint (at most 5 bytes) as in flexible-version lengths and tagged fields.
 *
 * Decoders never read past `len` and refuse encodings longer than the type
 * allows (an attacker's endless continuation bits) or whose value overflows it.
 */
#ifndef SL_COMMON_VARINT_H
#define SL_COMMON_VARINT_H

#include <stddef.h>
#include <stdint.h>

#define VARINT32_MAX_BYTES 5
#define VARINT64_MAX_BYTES 10

/* Encoders write into p (room for the max bytes) and return the bytes written. */
size_t varint_put(uint8_t *p, int32_t v);
size_t varlong_put(uint8_t *p, int64_t v);
size_t uvarint_put(uint8_t *p, uint32_t v);
/* Bytes the encoding of v takes: bits needed, in groups of 7 (u | 1: zero
 * takes one byte). Inline, as a producer sizes every record field with them
 * (as calls they were most of 15% of its CPU with 100 B values). */
static inline size_t varint_u64_size(uint64_t u)
{
    int bits = 64 - __builtin_clzll(u | 1);
    return (size_t)(bits + 6) / 7;
}

static inline size_t varint_size(int32_t v)
{
    /* Zig-zag, the sign mask built without shifting a negative value. */
    return varint_u64_size(((uint32_t)v << 1) ^ (v < 0 ? UINT32_MAX : 0u));
}

static inline size_t varlong_size(int64_t v)
{
    return varint_u64_size(((uint64_t)v << 1) ^ (v < 0 ? UINT64_MAX : 0u));
}

static inline size_t uvarint_size(uint32_t v)
{
    return varint_u64_size(v);
}
/* Decoders return the bytes consumed (> 0), or -EBADMSG when the encoding is
 * truncated, too long or overflows. */
int varint_get(const uint8_t *p, size_t len, int32_t *out);
int varlong_get(const uint8_t *p, size_t len, int64_t *out);
int uvarint_get(const uint8_t *p, size_t len, uint32_t *out);

#endif
