/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A segment's two sparse indexes, held in memory and mirrored to files.
 *
 * Offset index (<base>.index): maps an offset to the file position of the batch
 * that holds it, or of an earlier one from which a forward scan finds it. Time
 * index (<base>.timeindex): maps a timestamp to an offset from which a forward
 * scan finds the first record at or after it. The byte layout is in index.c.
 */
#ifndef SL_STORAGE_INDEX_H
#define SL_STORAGE_INDEX_H

#include <stddef.h>
#include <stdint.h>

#define OFFSET_INDEX_ENTRY_BYTES 8
#define TIME_INDEX_ENTRY_BYTES   12

struct offset_index_entry {
    uint32_t relative_offset; /* base offset of the batch, minus the segment's base */
    uint32_t position;        /* file position of that batch */
};

struct time_index_entry {
    int64_t timestamp;        /* largest timestamp in the segment up to relative_offset */
    uint32_t relative_offset; /* last offset of the batch that reached it */
};

struct offset_index {
    struct offset_index_entry *entries;
    uint32_t count;
    uint32_t cap;
    uint32_t max; /* entries never exceed this (from segment size / interval) */
};

struct time_index {
    struct time_index_entry *entries;
    uint32_t count;
    uint32_t cap;
    uint32_t max;
};

void offset_index_init(struct offset_index *idx, uint32_t max_entries);
void offset_index_deinit(struct offset_index *idx);
/* Entries must grow strictly in both fields: asserted. 0, -ENOBUFS at max, -ENOMEM. */
int offset_index_append(struct offset_index *idx, uint32_t relative_offset, uint32_t position);
/* The last entry with relative_offset <= target, or NULL if none. */
const struct offset_index_entry *offset_index_lookup(const struct offset_index *idx,
                                                     uint32_t target);
/* Drops entries at or past position. */
void offset_index_truncate(struct offset_index *idx, uint32_t position);
/* Serialises entries [from, count) to out (room for (count - from) * 8 bytes). */
size_t offset_index_encode(const struct offset_index *idx, uint32_t from, uint8_t *out);
/*
 * Loads entries from file bytes, keeping the longest prefix that is strictly
 * increasing and whose positions are below limit_position. Returns the number
 * of entries kept or -ENOMEM / -ENOBUFS.
 */
int offset_index_decode(struct offset_index *idx, const uint8_t *data, size_t len,
                        uint32_t limit_position);

void time_index_init(struct time_index *idx, uint32_t max_entries);
void time_index_deinit(struct time_index *idx);
/* Timestamps and offsets must strictly grow: asserted. */
int time_index_append(struct time_index *idx, int64_t timestamp, uint32_t relative_offset);
/* The last entry whose timestamp < target, or NULL. */
const struct time_index_entry *time_index_lookup(const struct time_index *idx, int64_t target);
/* Drops entries whose relative offset >= relative_offset. */
void time_index_truncate(struct time_index *idx, uint32_t relative_offset);
size_t time_index_encode(const struct time_index *idx, uint32_t from, uint8_t *out);
/* Keeps the strictly increasing prefix with offsets below limit_relative_offset. */
int time_index_decode(struct time_index *idx, const uint8_t *data, size_t len,
                      uint32_t limit_relative_offset);

#endif
