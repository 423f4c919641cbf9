/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A fixed pool of equally sized, 4 KiB-aligned buffers, reserved once at
 * start-up. The storage engine stages appends in them, writes them with
 * O_DIRECT, then keeps them as the batch cache until the pool runs short. The
 * whole region is one anonymous mapping: pages cost memory only once touched,
 * and the pool never grows.
 */
#ifndef SL_STORAGE_POOL_H
#define SL_STORAGE_POOL_H

#include <stddef.h>
#include <stdint.h>

#define POOL_ALIGN 4096

struct pool;

/* buffer_bytes must be a non-zero multiple of POOL_ALIGN. NULL and *err on failure. */
struct pool *pool_new(size_t buffer_bytes, unsigned count, int *err);
void pool_free(struct pool *pool);
/* A free buffer, or NULL when every buffer is taken. */
uint8_t *pool_get(struct pool *pool);
void pool_put(struct pool *pool, uint8_t *buffer);
unsigned pool_available(const struct pool *pool);
unsigned pool_count(const struct pool *pool);
size_t pool_buffer_bytes(const struct pool *pool);

#endif
