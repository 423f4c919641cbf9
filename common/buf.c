/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Growable byte buffer with a hard ceiling.
 *
 * Invariants: len <= cap, len <= max, cap <= max (we never allocate more than
 * the ceiling), data == NULL exactly when cap == 0. Growth doubles the
 * capacity (clipped to max) so that appending n bytes one at a time costs
 * O(n) copies. A failed call leaves the buffer as it was.
 */
#include "common/buf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/assert.h"
#include "common/bytes.h"
#include "common/varint.h"

/* First allocation: small enough not to matter, large enough that a typical
 * request header or record does not reallocate. */
#define BUF_MIN_CAP 64

static void buf_check(const struct buf *b)
{
    SL_ASSERT(b->len <= b->cap);
    SL_ASSERT(b->cap <= b->max);
    SL_ASSERT((b->data == NULL) == (b->cap == 0));
}

void buf_init(struct buf *b, size_t max)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
}

void buf_deinit(struct buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void buf_reset(struct buf *b)
{
    /* Keep the allocation: a reset buffer is usually refilled soon. */
    b->len = 0;
}

int buf_reserve(struct buf *b, size_t n)
{
    buf_check(b);
    if (n > b->max - b->len) {
        return -ENOBUFS;
    }
    size_t need = b->len + n;
    if (need <= b->cap) {
        return 0;
    }
    size_t cap = b->cap < BUF_MIN_CAP ? BUF_MIN_CAP : b->cap;
    while (cap < need && cap <= SIZE_MAX / 2) {
        cap *= 2;
    }
    if (cap < need) {
        cap = need;
    }
    if (cap > b->max) {
        cap = b->max;
    }
    uint8_t *data = realloc(b->data, cap);
    if (data == NULL) {
        return -ENOMEM;
    }
    b->data = data;
    b->cap = cap;
    buf_check(b);
    return 0;
}

int buf_put(struct buf *b, const void *p, size_t n)
{
    int rc = buf_reserve(b, n);
    if (rc < 0) {
        return rc;
    }
    /* n == 0 may come with p == NULL, which memcpy must not see. */
    if (n > 0) {
        memcpy(b->data + b->len, p, n);
        b->len += n;
    }
    return 0;
}

int buf_put_u8(struct buf *b, uint8_t v)
{
    return buf_put(b, &v, 1);
}

int buf_put_be16(struct buf *b, uint16_t v)
{
    uint8_t tmp[2];
    be16_put(tmp, v);
    return buf_put(b, tmp, sizeof(tmp));
}

int buf_put_be32(struct buf *b, uint32_t v)
{
    uint8_t tmp[4];
    be32_put(tmp, v);
    return buf_put(b, tmp, sizeof(tmp));
}

int buf_put_be64(struct buf *b, uint64_t v)
{
    uint8_t tmp[8];
    be64_put(tmp, v);
    return buf_put(b, tmp, sizeof(tmp));
}

int buf_put_varint(struct buf *b, int32_t v)
{
    uint8_t tmp[VARINT32_MAX_BYTES];
    return buf_put(b, tmp, varint_put(tmp, v));
}

int buf_put_varlong(struct buf *b, int64_t v)
{
    uint8_t tmp[VARINT64_MAX_BYTES];
    return buf_put(b, tmp, varlong_put(tmp, v));
}

int buf_put_uvarint(struct buf *b, uint32_t v)
{
    uint8_t tmp[VARINT32_MAX_BYTES];
    return buf_put(b, tmp, uvarint_put(tmp, v));
}
