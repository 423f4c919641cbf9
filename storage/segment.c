/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Segment files and the synchronous work done on them when a log is opened.
 *
 * A segment is named by the offset of its first batch, zero-padded to 20
 * digits: 00000000000000000000.log, .index, .timeindex. The .log file holds
 * RecordBatch v2 batches back to back, exactly as on the wire, from position
 * 0; the active segment's file is longer than its data (fallocate reserves it
 * in steps, and O_DIRECT writes pad the last block with zeros), so its end is
 * what recovery proves, not the file size. A sealed segment was trimmed to its
 * exact size and synced before the log moved past it.
 *
 * Recovery scan: from a trusted batch boundary, read the file in large
 * sequential blocks and check every batch's framing, CRC-32C and that its base
 * offset continues the previous batch. The scan stops at the first batch that
 * fails, at a run of zeros where a batch should start (the preallocated tail),
 * or at the file's end; the caller decides, knowing the flushed point, whether
 * a failure is a torn tail (truncate) or corruption (keep and report).
 */
#include "storage/segment.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/assert.h"
#include "common/bytes.h"
#include "common/log.h"

/* Read size of the recovery scan: large enough to stream at disk speed. */
#define SCAN_BLOCK_BYTES (1u << 20)
/* Largest batch a scan accepts: far above max.message.bytes, below 2^31. */
#define SCAN_BATCH_BYTES_MAX (1u << 30)

void segment_name(char *out, int64_t base_offset, const char *ext)
{
    snprintf(out, SEGMENT_NAME_BYTES, "%020" PRId64 ".%s", base_offset, ext);
}

int segment_parse_name(const char *name, int64_t *base_offset)
{
    size_t len = strlen(name);
    if (len != 24 || strcmp(name + 20, ".log") != 0) {
        return -EINVAL;
    }
    int64_t v = 0;
    for (int i = 0; i < 20; i++) {
        if (name[i] < '0' || name[i] > '9' || v > (INT64_MAX - 9) / 10) {
            return -EINVAL;
        }
        v = v * 10 + (name[i] - '0');
    }
    *base_offset = v;
    return 0;
}

struct segment *segment_alloc(int64_t base_offset, uint32_t index_max_entries)
{
    struct segment *seg = calloc(1, sizeof(*seg));
    if (seg == NULL) {
        return NULL;
    }
    seg->base_offset = base_offset;
    seg->next_offset = base_offset;
    seg->written_next_offset = base_offset;
    seg->max_timestamp = -1;
    seg->written_max_timestamp = -1;
    seg->max_timestamp_offset = -1;
    seg->write_fd = -1;
    seg->read_fd = -1;
    seg->index_fd = -1;
    seg->timeindex_fd = -1;
    offset_index_init(&seg->oidx, index_max_entries);
    /* Up to two time entries per index interval (one at the index point, one
     * when the largest timestamp grows), plus the seal's closing entry. */
    time_index_init(&seg->tidx, index_max_entries * 2 + 1);
    return seg;
}

void segment_free(struct segment *seg)
{
    if (seg == NULL) {
        return;
    }
    SL_ASSERT(seg->chunks_head == NULL); /* the log returned the memory first */
    int fds[] = {seg->write_fd, seg->read_fd, seg->index_fd, seg->timeindex_fd};
    for (size_t i = 0; i < SL_ARRAY_LEN(fds); i++) {
        if (fds[i] >= 0) {
            close(fds[i]);
        }
    }
    offset_index_deinit(&seg->oidx);
    time_index_deinit(&seg->tidx);
    free(seg->tail_block);
    free(seg);
}

static int open_at(int dirfd, int64_t base, const char *ext, int flags)
{
    char name[SEGMENT_NAME_BYTES];
    segment_name(name, base, ext);
    int fd = openat(dirfd, name, flags | O_CLOEXEC, 0644);
    return fd < 0 ? -errno : fd;
}

int segment_open_active(struct segment *seg, int dirfd, bool direct)
{
    int flags = O_RDWR | O_CREAT | (direct ? O_DIRECT : 0);
    seg->write_fd = open_at(dirfd, seg->base_offset, "log", flags);
    if (seg->write_fd < 0 && direct && seg->write_fd == -EINVAL) {
        LOG_ERROR("storage", "O_DIRECT refused by the filesystem; set storage.io=buffered");
    }
    if (seg->write_fd < 0) {
        return seg->write_fd;
    }
    seg->index_fd = open_at(dirfd, seg->base_offset, "index", O_RDWR | O_CREAT);
    if (seg->index_fd < 0) {
        return seg->index_fd;
    }
    seg->timeindex_fd = open_at(dirfd, seg->base_offset, "timeindex", O_RDWR | O_CREAT);
    return seg->timeindex_fd < 0 ? seg->timeindex_fd : 0;
}

int segment_read_fd(struct segment *seg, int dirfd)
{
    if (seg->read_fd < 0) {
        seg->read_fd = open_at(dirfd, seg->base_offset, "log", O_RDONLY);
    }
    return seg->read_fd;
}

void segment_note_batch(struct segment *seg, const struct batch_header *h, uint64_t pos,
                        uint32_t index_interval_bytes)
{
    SL_ASSERT(h->base_offset == seg->next_offset && pos == seg->size); /* appends in order */
    uint32_t rel = (uint32_t)(h->base_offset - seg->base_offset);
    if (seg->oidx.count == 0 || pos - seg->index_mark >= index_interval_bytes) {
        /* Recovery may start scanning here, and needs the largest timestamp
         * of everything before: make sure the time index holds it. */
        const struct time_index *t = &seg->tidx;
        uint32_t max_rel = (uint32_t)(seg->max_timestamp_offset - seg->base_offset);
        if (seg->max_timestamp >= 0 &&
            (t->count == 0 || (t->entries[t->count - 1].timestamp < seg->max_timestamp &&
                               t->entries[t->count - 1].relative_offset < max_rel))) {
            time_index_append(&seg->tidx, seg->max_timestamp, max_rel);
        }
        if (offset_index_append(&seg->oidx, rel, (uint32_t)pos) == 0) {
            seg->index_mark = pos;
        }
    }
    if (h->max_timestamp > seg->max_timestamp) {
        seg->max_timestamp = h->max_timestamp;
        seg->max_timestamp_offset = batch_last_offset(h);
        if (seg->tidx.count == 0 || pos - seg->time_mark >= index_interval_bytes) {
            uint32_t last_rel = (uint32_t)(batch_last_offset(h) - seg->base_offset);
            if (time_index_append(&seg->tidx, h->max_timestamp, last_rel) == 0) {
                seg->time_mark = pos;
            }
        }
    }
    seg->size = pos + batch_total_bytes(h);
    seg->next_offset = batch_last_offset(h) + 1;
}

int segment_seal_time_index(struct segment *seg)
{
    const struct time_index *t = &seg->tidx;
    if (seg->max_timestamp < 0 ||
        (t->count > 0 && t->entries[t->count - 1].timestamp >= seg->max_timestamp)) {
        return 0;
    }
    uint32_t rel = (uint32_t)(seg->max_timestamp_offset - seg->base_offset);
    if (t->count > 0 && t->entries[t->count - 1].relative_offset >= rel) {
        return 0; /* cannot happen: the max was reached after the last entry */
    }
    return time_index_append(&seg->tidx, seg->max_timestamp, rel);
}

static int read_exact(int fd, uint8_t *p, size_t n, uint64_t pos)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(fd, p + got, n - got, (off_t)(pos + got));
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r < 0) {
            return -errno;
        }
        if (r == 0) {
            break;
        }
        got += (size_t)r;
    }
    return (int)got;
}

static bool all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] != 0) {
            return false;
        }
    }
    return true;
}

int segment_scan(struct segment *seg, int dirfd, uint64_t from, int64_t expected_offset,
                 uint32_t index_interval_bytes, struct segment_scan *result)
{
    int fd = segment_read_fd(seg, dirfd);
    if (fd < 0) {
        return fd;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        return -errno;
    }
    uint64_t file_size = (uint64_t)st.st_size;
    size_t cap = SCAN_BLOCK_BYTES;
    uint8_t *block = malloc(cap);
    if (block == NULL) {
        return -ENOMEM;
    }
    offset_index_truncate(&seg->oidx, (uint32_t)from);
    time_index_truncate(&seg->tidx, (uint32_t)(expected_offset - seg->base_offset));
    seg->size = from;
    seg->next_offset = expected_offset;
    *result = (struct segment_scan){.valid_end = from, .next_offset = expected_offset};
    uint64_t block_pos = from;
    size_t block_len = 0;
    uint64_t pos = from;
    int err = 0;
    while (pos < file_size) {
        size_t avail = block_pos + block_len > pos ? (size_t)(block_pos + block_len - pos) : 0;
        const uint8_t *p = block + (pos - block_pos);
        size_t need = BATCH_LOG_OVERHEAD;
        if (avail >= BATCH_LOG_OVERHEAD) {
            if (all_zero(p, BATCH_LOG_OVERHEAD)) {
                break; /* zeros where a batch would start: the preallocated tail */
            }
            uint32_t length = be32_get(p + BATCH_OFF_LENGTH);
            if (length <= SCAN_BATCH_BYTES_MAX) {
                need += length; /* else batch_validate refuses the length */
            }
        }
        if (avail < need && avail < file_size - pos) {
            size_t want = SL_MAX(need, (size_t)SCAN_BLOCK_BYTES);
            if (want > cap) {
                uint8_t *bigger = realloc(block, want);
                if (bigger == NULL) {
                    err = -ENOMEM;
                    break;
                }
                block = bigger;
                cap = want;
            }
            int n = read_exact(fd, block, (size_t)SL_MIN((uint64_t)cap, file_size - pos), pos);
            if (n < 0) {
                err = n;
                break;
            }
            block_pos = pos;
            block_len = (size_t)n;
            if ((uint64_t)n < SL_MIN((uint64_t)need, file_size - pos)) {
                err = -EIO; /* the file shrank under us */
                break;
            }
            continue;
        }
        struct batch_header h;
        const char *why = NULL;
        int rc = batch_validate(p, avail, BATCH_CHECK_FRAMING, 0, &h, &why);
        if (rc == 0 && h.base_offset != seg->next_offset) {
            rc = -EBADMSG;
            why = "base offset does not continue the log";
        }
        if (rc != 0) {
            result->status = rc;
            result->why = rc == -EAGAIN ? "batch runs past the end of the file" : why;
            break;
        }
        segment_note_batch(seg, &h, pos, index_interval_bytes);
        pos = seg->size;
        result->valid_end = seg->size;
        result->next_offset = seg->next_offset;
    }
    result->bad_position = result->valid_end;
    free(block);
    return err;
}

static long read_whole(int dirfd, int64_t base, const char *ext, uint8_t **out)
{
    int fd = open_at(dirfd, base, ext, O_RDONLY);
    if (fd < 0) {
        return fd;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    uint8_t *data = malloc((size_t)st.st_size + 1);
    int n = data == NULL ? -ENOMEM : read_exact(fd, data, (size_t)st.st_size, 0);
    close(fd);
    if (n < 0) {
        free(data);
        return n;
    }
    *out = data;
    return n;
}

int segment_load_indexes(struct segment *seg, int dirfd, uint32_t index_interval_bytes)
{
    if (seg->indexes_loaded) {
        return 0;
    }
    uint8_t *data = NULL;
    long len = read_whole(dirfd, seg->base_offset, "index", &data);
    int kept = 0;
    bool consistent = len >= 0 && len % OFFSET_INDEX_ENTRY_BYTES == 0;
    if (len >= 0) {
        kept = offset_index_decode(&seg->oidx, data, (size_t)len, (uint32_t)seg->size);
        consistent = consistent && kept == len / OFFSET_INDEX_ENTRY_BYTES;
        consistent = consistent && (seg->size == 0 || kept > 0);
    }
    free(data);
    data = NULL;
    len = read_whole(dirfd, seg->base_offset, "timeindex", &data);
    if (len >= 0 && consistent) {
        uint32_t limit = (uint32_t)(seg->next_offset - seg->base_offset);
        int t = time_index_decode(&seg->tidx, data, (size_t)len, limit);
        consistent = t >= 0 && len % TIME_INDEX_ENTRY_BYTES == 0 && t == len / 12;
    } else {
        consistent = false;
    }
    free(data);
    if (kept < 0) {
        return kept;
    }
    if (!consistent) {
        LOG_WARN("storage", "rebuilding indexes segment=%" PRId64, seg->base_offset);
        uint64_t size = seg->size;
        int64_t next = seg->next_offset;
        struct segment_scan scan;
        seg->oidx.count = 0;
        seg->tidx.count = 0;
        seg->max_timestamp = -1;
        int err = segment_scan(seg, dirfd, 0, seg->base_offset, index_interval_bytes, &scan);
        if (err != 0) {
            return err;
        }
        if (scan.valid_end != size || scan.next_offset != next) {
            LOG_ERROR("storage",
                      "sealed segment does not validate segment=%" PRId64 " size=%" PRIu64
                      " valid=%" PRIu64 " why=%s",
                      seg->base_offset, size, scan.valid_end, scan.why ? scan.why : "short");
            seg->size = size;
            seg->next_offset = next;
            return -EUCLEAN;
        }
        segment_seal_time_index(seg);
    }
    seg->indexes_loaded = true;
    return 0;
}

int segment_stat_sealed(struct segment *seg, int dirfd)
{
    char name[SEGMENT_NAME_BYTES];
    struct stat st;
    segment_name(name, seg->base_offset, "log");
    if (fstatat(dirfd, name, &st, 0) != 0) {
        return -errno;
    }
    seg->size = (uint64_t)st.st_size;
    seg->written = seg->flushed = seg->preallocated = seg->size;
    int fd = open_at(dirfd, seg->base_offset, "timeindex", O_RDONLY);
    if (fd < 0) {
        return 0; /* rebuilt when the indexes are first loaded */
    }
    if (fstat(fd, &st) == 0 && st.st_size >= TIME_INDEX_ENTRY_BYTES) {
        uint8_t entry[TIME_INDEX_ENTRY_BYTES];
        off_t at = st.st_size - st.st_size % TIME_INDEX_ENTRY_BYTES - TIME_INDEX_ENTRY_BYTES;
        if (read_exact(fd, entry, sizeof(entry), (uint64_t)at) == (int)sizeof(entry)) {
            seg->max_timestamp = (int64_t)be64_get(entry);
            seg->max_timestamp_offset = seg->base_offset + be32_get(entry + 8);
        }
    }
    close(fd);
    return 0;
}
