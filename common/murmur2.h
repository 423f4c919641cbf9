/* SPDX-License-Identifier: Apache-2.0 */
/*
 * MurmurHash2 as Kafka's Java client computes it (seed 0x9747b28c, bytes
 * read as little-endian words), so that a key maps to the partition the Java
 * default partitioner would pick: (murmur2(key) & 0x7fffffff) % partitions.
 * The group coordinator uses the same hash to place a group on a partition
 * of __consumer_offsets.
 */
#ifndef SL_COMMON_MURMUR2_H
#define SL_COMMON_MURMUR2_H

#include <stddef.h>
#include <stdint.h>

uint32_t murmur2(const void *data, size_t len);

/* The Java client's partition of a key: (murmur2 & 0x7fffffff) % partitions. */
static inline int32_t murmur2_partition(const void *key, size_t len, int32_t partitions)
{
    return (int32_t)((murmur2(key, len) & 0x7fffffffu) % (uint32_t)partitions);
}

#endif
