/* SPDX-License-Identifier: Apache-2.0 */
/*
 * One segment of a partition log: <base>.log with its <base>.index and
 * <base>.timeindex, the in-memory state the log keeps for it, and the
 * synchronous file operations used when a log is opened (naming, creating,
 * loading indexes, the recovery scan). Private to storage/: log.c drives the
 * asynchronous write and read paths over these structures.
 */
#ifndef SL_STORAGE_SEGMENT_H
#define SL_STORAGE_SEGMENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/batch.h"
#include "storage/index.h"

/* "<20-digit base offset>.<ext>" */
#define SEGMENT_NAME_BYTES 32

struct chunk;

struct segment {
    int64_t base_offset;
    int64_t next_offset; /* offset after the last batch appended */
    uint64_t size;       /* logical bytes appended (written or not) */
    uint64_t written;    /* bytes whose write completed */
    int64_t written_next_offset;
    int64_t written_max_timestamp;
    uint64_t flushed;             /* bytes covered by a completed fdatasync */
    uint64_t preallocated;        /* file reserved up to here with fallocate */
    int64_t max_timestamp;        /* largest batch max timestamp, -1 when empty */
    int64_t max_timestamp_offset; /* last offset of the batch that reached it */
    int64_t created_ms;           /* wall clock at creation, for segment.ms */
    uint64_t index_mark;          /* size when the last offset-index entry was made */
    uint64_t time_mark;           /* size when the last time-index entry was made */
    int write_fd;                 /* active segment only; O_DIRECT unless storage.io=buffered */
    int read_fd;                  /* buffered, opened on the first read; -1 until then */
    int index_fd;                 /* active segment only */
    int timeindex_fd;
    uint32_t index_persisted; /* entries handed to the index files */
    uint32_t timeindex_persisted;
    struct offset_index oidx;
    struct time_index tidx;
    bool indexes_loaded;       /* oidx/tidx hold the files' content (sealed segments load lazily) */
    bool sealed;               /* trimmed to size, synced, closed for writes */
    struct chunk *chunks_head; /* memory copies covering [chunks_head->pos, size) */
    struct chunk *chunks_tail;
    uint8_t *tail_block; /* the partial last 4 KiB block of an active segment whose
                          * buffer was evicted (or not yet loaded): 4 KiB, aligned */
    unsigned reads;      /* reads in flight that use this segment */
    bool doomed;         /* deleted from the log; freed when reads reaches 0 */
};

void segment_name(char *out, int64_t base_offset, const char *ext);
/* Parses "<digits>.log"; returns 0 and the base offset, or -EINVAL. */
int segment_parse_name(const char *name, int64_t *base_offset);

struct segment *segment_alloc(int64_t base_offset, uint32_t index_max_entries);
/* Closes fds and frees indexes; memory chunks must be gone. */
void segment_free(struct segment *seg);

/* Opens the files of the active segment (creating them), with O_DIRECT for
 * the log unless buffered. Sync. */
int segment_open_active(struct segment *seg, int dirfd, bool direct);
/* The buffered read fd (opened on demand). */
int segment_read_fd(struct segment *seg, int dirfd);
/* Loads both index files into memory if not yet loaded, rebuilding them by a
 * scan when missing or inconsistent with the log's size. Sync. */
int segment_load_indexes(struct segment *seg, int dirfd, uint32_t index_interval_bytes);
/* Reads a sealed segment's size from its file and its largest timestamp from
 * the last time-index entry (-1 when there is none). Sync. */
int segment_stat_sealed(struct segment *seg, int dirfd);
/* Adds the closing time-index entry (largest timestamp of the segment) if
 * the index does not end with it yet. */
int segment_seal_time_index(struct segment *seg);

/* Bookkeeping for one batch appended at position pos: size, next offset,
 * largest timestamp, index entries. The indexes are hints: an entry that does
 * not fit (the index is at its bound) is skipped, and lookups scan further. */
void segment_note_batch(struct segment *seg, const struct batch_header *h, uint64_t pos,
                        uint32_t index_interval_bytes);

/* What a recovery scan found. */
struct segment_scan {
    uint64_t valid_end;    /* position after the last good batch */
    int64_t next_offset;   /* offset after it */
    int status;            /* 0 clean end, -EBADMSG / -EAGAIN where it stopped */
    uint64_t bad_position; /* where the first bad batch starts (status != 0) */
    const char *why;
};

/*
 * Scans the segment's log from position `from` (a batch boundary whose base
 * offset is expected_offset), validating framing, CRC and offset continuity of
 * every batch up to the file's size, and noting each good batch in the
 * indexes. Sync.
 */
int segment_scan(struct segment *seg, int dirfd, uint64_t from, int64_t expected_offset,
                 uint32_t index_interval_bytes, struct segment_scan *result);

#endif
