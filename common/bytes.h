/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Big-endian load and store helpers for fixed-width integers on disk and on
 * the wire. They never assume alignment.
 */
#ifndef SL_COMMON_BYTES_H
#define SL_COMMON_BYTES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline void be16_put(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static inline void be32_put(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static inline void be64_put(uint8_t *p, uint64_t v)
{
    be32_put(p, (uint32_t)(v >> 32));
    be32_put(p + 4, (uint32_t)v);
}

static inline uint16_t be16_get(const uint8_t *p)
{
    return (uint16_t)((uint16_t)p[0] << 8 | p[1]);
}

static inline uint32_t be32_get(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline uint64_t be64_get(const uint8_t *p)
{
    return (uint64_t)be32_get(p) << 32 | be32_get(p + 4);
}

/*
 * A bounded big-endian reader: each take checks the bytes left, and a short
 * read marks the reader bad (and yields zeros) instead of reading past the
 * end, so a decoder checks `bad` once at the end rather than after each
 * field.
 */
struct reader {
    const uint8_t *p;
    size_t left;
    bool bad;
};

static inline const uint8_t *reader_take(struct reader *r, size_t n)
{
    if (r->bad || r->left < n) {
        r->bad = true;
        return NULL;
    }
    const uint8_t *p = r->p;
    r->p += n;
    r->left -= n;
    return p;
}

static inline uint8_t reader_u8(struct reader *r)
{
    const uint8_t *p = reader_take(r, 1);
    return p != NULL ? p[0] : 0;
}

static inline int16_t reader_i16(struct reader *r)
{
    const uint8_t *p = reader_take(r, 2);
    return p != NULL ? (int16_t)be16_get(p) : 0;
}

static inline int32_t reader_i32(struct reader *r)
{
    const uint8_t *p = reader_take(r, 4);
    return p != NULL ? (int32_t)be32_get(p) : 0;
}

static inline int64_t reader_i64(struct reader *r)
{
    const uint8_t *p = reader_take(r, 8);
    return p != NULL ? (int64_t)be64_get(p) : 0;
}

#endif
