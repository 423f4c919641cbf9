/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Sparse offset and time indexes.
 *
 * File formats (big-endian, no header; a file is its entries back to back):
 *
 *   <base>.index       entry = 8 bytes
 *     0  u32  relative offset  (batch base offset - segment base offset)
 *     4  u32  position         (byte position of that batch in <base>.log)
 *
 *   <base>.timeindex   entry = 12 bytes
 *     0  i64  timestamp        (largest timestamp in the segment so far, ms)
 *     8  u32  relative offset  (last offset of the batch that reached it)
 *
 * Both fields grow strictly from entry to entry. An offset-index entry is added
 * for the first batch of a segment and then whenever index.interval.bytes have
 * been appended since the last entry; a time-index entry whenever the largest
 * timestamp grows and index.interval.bytes have passed since the last one.
 *
 * Lookups: offset -> binary search for the last entry at or below the target,
 * then scan batches forward from its position. Timestamp -> binary search for
 * the last entry strictly below the target; every record up to its offset has a
 * smaller timestamp, so a forward scan from that offset finds the first record
 * at or after the target.
 *
 * The files are written without fsync as entries are made: they are hints.
 * Recovery keeps only a prefix it can verify against the log and rebuilds the
 * rest by scanning, so a stale or torn index never points past valid data.
 */
#include "storage/index.h"

#include <errno.h>
#include <stdlib.h>

#include "common/assert.h"
#include "common/bytes.h"

_Static_assert(sizeof(uint32_t) * 2 == OFFSET_INDEX_ENTRY_BYTES, "offset index entry size");
_Static_assert(sizeof(int64_t) + sizeof(uint32_t) == TIME_INDEX_ENTRY_BYTES, "time entry size");

/* Grows an entry array by doubling, never past max. */
static int grow(void **entries, uint32_t *cap, uint32_t max, size_t entry_size)
{
    if (*cap >= max) {
        return -ENOBUFS;
    }
    uint32_t new_cap = *cap == 0 ? 64 : *cap * 2;
    if (new_cap > max) {
        new_cap = max;
    }
    void *p = realloc(*entries, (size_t)new_cap * entry_size);
    if (p == NULL) {
        return -ENOMEM;
    }
    *entries = p;
    *cap = new_cap;
    return 0;
}

void offset_index_init(struct offset_index *idx, uint32_t max_entries)
{
    *idx = (struct offset_index){.max = max_entries};
}

void offset_index_deinit(struct offset_index *idx)
{
    free(idx->entries);
    *idx = (struct offset_index){.max = idx->max};
}

int offset_index_append(struct offset_index *idx, uint32_t relative_offset, uint32_t position)
{
    if (idx->count > 0) {
        const struct offset_index_entry *last = &idx->entries[idx->count - 1];
        /* Batches are appended in offset order at growing positions. */
        SL_ASSERT(relative_offset > last->relative_offset && position > last->position);
    }
    if (idx->count == idx->cap) {
        int err = grow((void **)&idx->entries, &idx->cap, idx->max, sizeof(*idx->entries));
        if (err != 0) {
            return err;
        }
    }
    idx->entries[idx->count++] = (struct offset_index_entry){relative_offset, position};
    return 0;
}

const struct offset_index_entry *offset_index_lookup(const struct offset_index *idx,
                                                     uint32_t target)
{
    uint32_t lo = 0;
    uint32_t hi = idx->count; /* answer is entries[lo - 1] */
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (idx->entries[mid].relative_offset <= target) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo == 0 ? NULL : &idx->entries[lo - 1];
}

void offset_index_truncate(struct offset_index *idx, uint32_t position)
{
    while (idx->count > 0 && idx->entries[idx->count - 1].position >= position) {
        idx->count--;
    }
}

size_t offset_index_encode(const struct offset_index *idx, uint32_t from, uint8_t *out)
{
    SL_ASSERT(from <= idx->count);
    for (uint32_t i = from; i < idx->count; i++) {
        be32_put(out, idx->entries[i].relative_offset);
        be32_put(out + 4, idx->entries[i].position);
        out += OFFSET_INDEX_ENTRY_BYTES;
    }
    return (size_t)(idx->count - from) * OFFSET_INDEX_ENTRY_BYTES;
}

int offset_index_decode(struct offset_index *idx, const uint8_t *data, size_t len,
                        uint32_t limit_position)
{
    idx->count = 0;
    for (size_t at = 0; at + OFFSET_INDEX_ENTRY_BYTES <= len; at += OFFSET_INDEX_ENTRY_BYTES) {
        uint32_t rel = be32_get(data + at);
        uint32_t pos = be32_get(data + at + 4);
        if (pos >= limit_position) {
            break;
        }
        if (idx->count > 0) {
            const struct offset_index_entry *last = &idx->entries[idx->count - 1];
            if (rel <= last->relative_offset || pos <= last->position) {
                break;
            }
        } else if (pos != 0 || rel != 0) {
            break; /* the first entry always names the segment's first batch */
        }
        int err = offset_index_append(idx, rel, pos);
        if (err != 0) {
            return err;
        }
    }
    return (int)idx->count;
}

void time_index_init(struct time_index *idx, uint32_t max_entries)
{
    *idx = (struct time_index){.max = max_entries};
}

void time_index_deinit(struct time_index *idx)
{
    free(idx->entries);
    *idx = (struct time_index){.max = idx->max};
}

int time_index_append(struct time_index *idx, int64_t timestamp, uint32_t relative_offset)
{
    if (idx->count > 0) {
        const struct time_index_entry *last = &idx->entries[idx->count - 1];
        /* Callers add an entry only when the largest timestamp grows. */
        SL_ASSERT(timestamp > last->timestamp && relative_offset > last->relative_offset);
    }
    if (idx->count == idx->cap) {
        int err = grow((void **)&idx->entries, &idx->cap, idx->max, sizeof(*idx->entries));
        if (err != 0) {
            return err;
        }
    }
    idx->entries[idx->count++] = (struct time_index_entry){timestamp, relative_offset};
    return 0;
}

const struct time_index_entry *time_index_lookup(const struct time_index *idx, int64_t target)
{
    uint32_t lo = 0;
    uint32_t hi = idx->count;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (idx->entries[mid].timestamp < target) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo == 0 ? NULL : &idx->entries[lo - 1];
}

void time_index_truncate(struct time_index *idx, uint32_t relative_offset)
{
    while (idx->count > 0 && idx->entries[idx->count - 1].relative_offset >= relative_offset) {
        idx->count--;
    }
}

size_t time_index_encode(const struct time_index *idx, uint32_t from, uint8_t *out)
{
    SL_ASSERT(from <= idx->count);
    for (uint32_t i = from; i < idx->count; i++) {
        be64_put(out, (uint64_t)idx->entries[i].timestamp);
        be32_put(out + 8, idx->entries[i].relative_offset);
        out += TIME_INDEX_ENTRY_BYTES;
    }
    return (size_t)(idx->count - from) * TIME_INDEX_ENTRY_BYTES;
}

int time_index_decode(struct time_index *idx, const uint8_t *data, size_t len,
                      uint32_t limit_relative_offset)
{
    idx->count = 0;
    for (size_t at = 0; at + TIME_INDEX_ENTRY_BYTES <= len; at += TIME_INDEX_ENTRY_BYTES) {
        int64_t ts = (int64_t)be64_get(data + at);
        uint32_t rel = be32_get(data + at + 8);
        if (rel >= limit_relative_offset) {
            break;
        }
        if (idx->count > 0) {
            const struct time_index_entry *last = &idx->entries[idx->count - 1];
            if (ts <= last->timestamp || rel <= last->relative_offset) {
                break;
            }
        }
        int err = time_index_append(idx, ts, rel);
        if (err != 0) {
            return err;
        }
    }
    return (int)idx->count;
}
