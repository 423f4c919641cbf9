/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Kafka's variable-length integers (the protobuf base-128 encoding).
 *
 * An unsigned value is written 7 bits at a time, least significant group
 * first; every byte but the last has its high bit (0x80) set. Signed values
 * are zig-zag mapped first, so that small magnitudes of either sign are short:
 * 0 -> 0, -1 -> 1, 1 -> 2, -2 -> 3, ..., INT32_MIN -> 0xFFFFFFFF.
 *
 *   type     bytes  last byte may carry
 *   varint   1..5   bits 28..31 -> at most 0x0F
 *   uvarint  1..5   bits 28..31 -> at most 0x0F
 *   varlong  1..10  bit 63      -> at most 0x01
 *
 * Decoders refuse (-EBADMSG) input that ends inside a value, that keeps its
 * continuation bit on the last byte the type allows (over-long), or whose last
 * byte has bits the type cannot hold (overflow). Non-minimal encodings inside
 * the limit (0x80 0x00 for 0) are accepted, as Kafka's own reader does.
 */
#include "common/varint.h"

#include <errno.h>

#include "common/assert.h"

/* ------------------------------------------------------------- zig-zag */

static inline uint32_t zigzag32(int32_t v)
{
    /* The sign mask is built without shifting a negative value. */
    return ((uint32_t)v << 1) ^ (v < 0 ? UINT32_MAX : 0u);
}

static inline int32_t unzigzag32(uint32_t u)
{
    return (int32_t)((u >> 1) ^ (0u - (u & 1u)));
}

static inline uint64_t zigzag64(int64_t v)
{
    return ((uint64_t)v << 1) ^ (v < 0 ? UINT64_MAX : 0u);
}

static inline int64_t unzigzag64(uint64_t u)
{
    return (int64_t)((u >> 1) ^ (0u - (u & 1u)));
}

/* ------------------------------------------------------------- encoders */

static size_t u64_put(uint8_t *p, uint64_t u)
{
    size_t n = 0;
    while (u >= 0x80) {
        p[n++] = (uint8_t)(u | 0x80);
        u >>= 7;
    }
    p[n++] = (uint8_t)u;
    SL_ASSERT(n <= VARINT64_MAX_BYTES);
    return n;
}

size_t varint_put(uint8_t *p, int32_t v)
{
    return u64_put(p, zigzag32(v));
}

size_t varlong_put(uint8_t *p, int64_t v)
{
    return u64_put(p, zigzag64(v));
}

size_t uvarint_put(uint8_t *p, uint32_t v)
{
    return u64_put(p, v);
}

/* ------------------------------------------------------------- decoders */

/*
 * Reads at most max_bytes bytes; the last one allowed may not exceed last_max
 * (which also forbids its continuation bit). Returns the bytes consumed or
 * -EBADMSG.
 */
static inline int u64_get(const uint8_t *p, size_t len, size_t max_bytes, uint8_t last_max,
                          uint64_t *out)
{
    /* Most lengths and deltas in a batch fit one byte. */
    if (len > 0 && p[0] < 0x80) {
        *out = p[0];
        return 1;
    }
    size_t limit = len < max_bytes ? len : max_bytes;
    uint64_t value = 0;
    for (size_t i = 0; i < limit; i++) {
        uint8_t b = p[i];
        if (i == max_bytes - 1 && b > last_max) {
            return -EBADMSG;
        }
        value |= (uint64_t)(b & 0x7f) << (7 * i);
        if (b < 0x80) {
            *out = value;
            return (int)(i + 1);
        }
    }
    /* Ran out of input (truncated); over-long input was refused above. */
    return -EBADMSG;
}

int varint_get(const uint8_t *p, size_t len, int32_t *out)
{
    uint64_t u;
    int n = u64_get(p, len, VARINT32_MAX_BYTES, 0x0f, &u);
    if (n > 0) {
        SL_ASSERT(u <= UINT32_MAX);
        *out = unzigzag32((uint32_t)u);
    }
    return n;
}

int varlong_get(const uint8_t *p, size_t len, int64_t *out)
{
    uint64_t u;
    int n = u64_get(p, len, VARINT64_MAX_BYTES, 0x01, &u);
    if (n > 0) {
        *out = unzigzag64(u);
    }
    return n;
}

int uvarint_get(const uint8_t *p, size_t len, uint32_t *out)
{
    uint64_t u;
    int n = u64_get(p, len, VARINT32_MAX_BYTES, 0x0f, &u);
    if (n > 0) {
        SL_ASSERT(u <= UINT32_MAX);
        *out = (uint32_t)u;
    }
    return n;
}
