/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The buffer pool: one mapping cut into buffers, a stack of free indexes.
 * Invariant: every buffer is either on the free stack or owned by exactly one
 * user; pool_put of a buffer not from this pool, or twice, is a bug.
 */
#include "storage/pool.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "common/assert.h"

struct pool {
    uint8_t *region;
    size_t buffer_bytes;
    unsigned count;
    unsigned free_count;
    unsigned *free_stack;
    bool *taken; /* catches double puts */
};

struct pool *pool_new(size_t buffer_bytes, unsigned count, int *err)
{
    struct pool *pool = calloc(1, sizeof(*pool));
    if (pool == NULL || buffer_bytes == 0 || buffer_bytes % POOL_ALIGN != 0 || count == 0) {
        *err = pool == NULL ? -ENOMEM : -EINVAL;
        goto err;
    }
    pool->buffer_bytes = buffer_bytes;
    pool->count = count;
    pool->region = mmap(NULL, buffer_bytes * count, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (pool->region == MAP_FAILED) {
        pool->region = NULL;
        *err = -errno;
        goto err;
    }
    pool->free_stack = calloc(count, sizeof(*pool->free_stack));
    pool->taken = calloc(count, sizeof(*pool->taken));
    if (pool->free_stack == NULL || pool->taken == NULL) {
        *err = -ENOMEM;
        goto err;
    }
    for (unsigned i = 0; i < count; i++) {
        pool->free_stack[i] = count - 1 - i; /* hand out low addresses first */
    }
    pool->free_count = count;
    return pool;
err:
    pool_free(pool);
    return NULL;
}

void pool_free(struct pool *pool)
{
    if (pool == NULL) {
        return;
    }
    if (pool->region != NULL) {
        munmap(pool->region, pool->buffer_bytes * pool->count);
    }
    free(pool->free_stack);
    free(pool->taken);
    free(pool);
}

uint8_t *pool_get(struct pool *pool)
{
    if (pool->free_count == 0) {
        return NULL;
    }
    unsigned i = pool->free_stack[--pool->free_count];
    SL_ASSERT(!pool->taken[i]); /* the free stack holds only free buffers */
    pool->taken[i] = true;
    return pool->region + (size_t)i * pool->buffer_bytes;
}

void pool_put(struct pool *pool, uint8_t *buffer)
{
    size_t delta = (size_t)(buffer - pool->region);
    SL_ASSERT(buffer >= pool->region && delta % pool->buffer_bytes == 0);
    unsigned i = (unsigned)(delta / pool->buffer_bytes);
    SL_ASSERT(i < pool->count && pool->taken[i]); /* returned once, by its owner */
    pool->taken[i] = false;
    pool->free_stack[pool->free_count++] = i;
}

unsigned pool_available(const struct pool *pool)
{
    return pool->free_count;
}

unsigned pool_count(const struct pool *pool)
{
    return pool->count;
}

size_t pool_buffer_bytes(const struct pool *pool)
{
    return pool->buffer_bytes;
}
