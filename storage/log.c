/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The partition log: the asynchronous write path (group commit through the
 * ring), the batch cache, reads, lookups by time, retention, open and close.
 *
 * Directory of one partition:
 *   <base>.log, <base>.index, <base>.timeindex   segments (segment.c, index.c)
 *   recovery-checkpoint                          what recovery may trust (below)
 *   clean-shutdown                               present only after log_close
 *
 * recovery-checkpoint, 32 bytes, rewritten in place (one sector, so the write
 * is atomic on the devices we target; a torn one fails its CRC and recovery
 * then trusts nothing and scans every segment):
 *    0  u32  magic "SLCP"
 *    4  u32  version (1)
 *    8  i64  segment base B: every segment below B is sealed and on disk
 *   16  u64  position P: segment B is on disk up to P, and so are its index
 *            entries for positions below P
 *   24  u32  zero
 *   28  u32  CRC-32C of bytes 0..27
 * It is written when a segment is sealed, every log.checkpoint.interval.ms
 * while the flushed point moves, and at close.
 *
 * Recovery at open. With clean-shutdown present, B is the last segment and P
 * its size. Otherwise segments below B are trusted as they are; segment B is
 * scanned from its last index entry below P, later segments from their start.
 * A batch that fails below P is corruption: the log keeps every byte, serves
 * reads up to the corruption, refuses appends and reports that it needs
 * repair. A batch that fails at or past P is a torn tail: the file is cut
 * there and later segments are removed.
 *
 * Write path. Appends are copied into pool buffers ("chunks", 4 KiB aligned,
 * each covering a fixed range of one segment's file) with offsets assigned at
 * once. An ev_prepare watcher, run after every other watcher of the loop
 * iteration, starts the flush: one writev of every unwritten chunk of the
 * segment, from the 4 KiB block holding the first unwritten byte (so a partial
 * block is rewritten as it fills) to the end padded with zeros, linked to one
 * fdatasync under flush.policy=always. That is group commit: every append of
 * the iteration shares one write and one sync. A backlog larger than
 * storage.write.max.bytes is cut at batch ends into a few writes instead (see
 * write_extent), so its first appends are answered before its last are on
 * disk. One flush step runs at a time
 * per log; appends that arrive meanwhile wait for the next. A written chunk
 * stays in memory as the batch cache, on the shard's eviction list, until an
 * append needs its buffer.
 *
 * Syncs overlap the next write. Under flush.policy=always the step of a write
 * ends when the write completes; its fdatasync, still running, is tracked in
 * one of SYNCS_IN_FLIGHT_MAX slots, and the next write of the same segment
 * may start at once. The device then writes while it flushes, so a producer
 * with few requests in flight (Kafka's 5 per partition) is not held to one
 * write, then one flush, then the next write. Safe because a write starts only
 * after the previous one completed (the partial last block it rewrites is
 * never written twice at once), and an fdatasync covers every write of its
 * file completed before it began: each slot's sync covers its own write and
 * all earlier ones, so the durable offset is the highest end among the syncs
 * that completed, whatever their order. Every other step (fallocate aside)
 * waits until no sync is in flight, and so does a write to another segment.
 *
 * Invariants: start_offset <= flushed_offset <= durable_offset <= end offset;
 * per segment flushed <= written <= size, and memory chunks cover
 * [chunks_head->pos, size) without gaps.
 */
#include "storage/log.h"

#include <dirent.h>
#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/assert.h"
#include "common/bytes.h"
#include "common/clock.h"
#include "common/crc32c.h"
#include "common/log.h"
#include "proto/batch.h"
#include "storage/pool.h"
#include "storage/ring.h"
#include "storage/segment.h"

#define BLOCK_BYTES 4096u
/* Chunks one flush writes at most (its iovec array). */
#define FLUSH_IOV_MAX 128
/* fdatasyncs in flight per log while later writes go on: enough to keep the
 * device busy under Kafka's 5 requests in flight per partition. */
#define SYNCS_IN_FLIGHT_MAX 4
/* Offsets within a segment are u32 relative to its base, positions u32. */
#define SEGMENT_BYTES_MAX ((uint64_t)INT32_MAX)
#define CHECKPOINT_NAME   "recovery-checkpoint"
#define CLEAN_NAME        "clean-shutdown"
#define CHECKPOINT_BYTES  32
#define CHECKPOINT_MAGIC  0x534c4350u /* "SLCP" */

struct chunk {
    uint8_t *data;
    struct segment *seg;
    uint64_t pos;              /* file position of data[0]; multiple of BLOCK_BYTES */
    uint32_t len;              /* valid bytes */
    struct chunk *prev, *next; /* the segment's chunks, by position */
    struct chunk *lru_prev, *lru_next;
    bool cached; /* written and full (or sealed): on the shard's eviction list */
};

/* An fdatasync in flight after its write completed (see "Syncs overlap"). */
struct sync_slot {
    struct log *log;
    bool used;
    bool write_failed; /* its write failed: the sync was cancelled, it proves nothing */
    uint64_t size;     /* the segment is on disk up to here once the sync completes */
    int64_t next_offset;
};

struct pending_append {
    int64_t base_offset;
    int64_t last_offset;
    uint64_t end_pos;      /* the segment's size once this batch is in it */
    int64_t max_timestamp; /* the segment's max timestamp once this batch is in it */
    log_append_cb *cb;
    void *opaque;
};

struct log_shard {
    struct ev_loop *loop;
    struct ring *ring;
    struct pool *pool;
    struct chunk *chunks; /* one per pool buffer, same order */
    uint8_t *pool_base;
    struct chunk *lru_head; /* oldest cached chunk */
    struct chunk *lru_tail;
    size_t cached_bytes;
    unsigned logs;
};

enum flush_step {
    STEP_IDLE = 0,
    STEP_FALLOCATE,
    STEP_WRITE,
    STEP_SYNC,
    STEP_SEAL_TRUNCATE,
    STEP_SEAL_SYNC,
    STEP_CHECKPOINT_INDEX,
    STEP_CHECKPOINT_WRITE,
};

struct log {
    struct log_shard *shard;
    struct log_config config;
    char *dir;
    int dirfd;
    int checkpoint_fd;
    struct segment **segs;
    unsigned nsegs;
    unsigned segs_cap;
    int64_t start_offset;
    int64_t durable_offset;
    int64_t flushed_offset;
    int error;
    bool needs_repair;

    struct pending_append *pending; /* ring of config.pending_appends_max */
    uint32_t pending_head;
    uint32_t pending_count;

    enum flush_step step;
    unsigned step_ops; /* ring operations of the step still in flight */
    int step_err;
    struct segment *flush_seg;
    uint64_t flush_size;
    int64_t flush_next;
    int64_t flush_max_ts;
    uint64_t flush_write_bytes;
    bool flush_synced;                 /* the write in flight is linked to an fdatasync */
    struct sync_slot *flush_sync_slot; /* that fdatasync's slot, until the write completes */
    struct sync_slot syncs[SYNCS_IN_FLIGHT_MAX];
    unsigned syncs_count;      /* slots in use */
    struct segment *syncs_seg; /* the segment of every sync in flight */
    int rollback_err;          /* a write's ENOSPC, rolled back once the syncs drain */
    struct iovec iov[FLUSH_IOV_MAX];
    uint8_t *cut_block; /* a cut write's last block, zeros past the cut; made at the first cut */
    uint8_t *index_buf; /* encoded index entries in flight (checkpoint, seal) */
    uint8_t *checkpoint_buf; /* CHECKPOINT_BYTES, aligned for any fd */
    int64_t checkpoint_base;
    uint64_t checkpoint_pos;
    int64_t pending_checkpoint_base;
    uint64_t pending_checkpoint_pos;

    bool sync_wanted;
    bool checkpoint_wanted;
    int64_t last_sync_ms;
    int64_t last_checkpoint_ms;
    int64_t last_retention_ms;
    ev_prepare prepare;
    ev_timer timer;
    unsigned reads;   /* reads in flight */
    unsigned unlinks; /* retention's unlinks in flight: their callbacks use the log */
};

static void flush_kick(struct log *log);
static void log_fail(struct log *log, int err, const char *what);

/* ================================================================ config */

void log_config_default(struct log_config *config)
{
    *config = (struct log_config){
        .segment_bytes = 1u << 30,
        .segment_ms = 7LL * 24 * 3600 * 1000,
        .index_interval_bytes = 4096,
        .retention_bytes = -1,
        .retention_ms = 7LL * 24 * 3600 * 1000,
        .flush_policy = FLUSH_ALWAYS,
        .flush_interval_ms = 1000,
        .io = STORAGE_IO_DIRECT,
        .preallocate_bytes = 16u << 20,
        .max_message_bytes = 1048588,
        .pending_appends_max = 4096,
        .write_max_bytes = 1u << 20,
        .checkpoint_interval_ms = 10000,
        .checkpoint_bytes = 128u << 20,
        .retention_check_interval_ms = 300000,
    };
}

static const char *const flush_policy_names[] = {"always", "interval", "never"};

const char *flush_policy_name(enum flush_policy policy)
{
    return flush_policy_names[policy];
}

int flush_policy_parse(const char *name, enum flush_policy *out)
{
    for (size_t i = 0; i < SL_ARRAY_LEN(flush_policy_names); i++) {
        if (strcmp(name, flush_policy_names[i]) == 0) {
            *out = (enum flush_policy)i;
            return 0;
        }
    }
    return -EINVAL;
}

int storage_io_parse(const char *name, enum storage_io *out)
{
    if (strcmp(name, "direct") == 0) {
        *out = STORAGE_IO_DIRECT;
    } else if (strcmp(name, "buffered") == 0) {
        *out = STORAGE_IO_BUFFERED;
    } else {
        return -EINVAL;
    }
    return 0;
}

/* ================================================================= shard */

void log_shard_config_default(struct log_shard_config *config)
{
    *config = (struct log_shard_config){
        .buffer_bytes = 128u << 10,
        .memory_bytes = 256u << 20,
    };
}

struct log_shard *log_shard_new(struct ev_loop *loop, struct ring *ring,
                                const struct log_shard_config *config, int *err)
{
    struct log_shard *shard = calloc(1, sizeof(*shard));
    unsigned count = (unsigned)(config->memory_bytes / SL_MAX(config->buffer_bytes, 1));
    if (shard == NULL) {
        *err = -ENOMEM;
        goto err;
    }
    if (count < 2 || ring_space(ring) < 8) {
        /* At least a tail buffer and a next one; a ring with room for a whole
         * seal or checkpoint step (six operations) beside other work. */
        *err = -EINVAL;
        goto err;
    }
    shard->loop = loop;
    shard->ring = ring;
    shard->pool = pool_new(config->buffer_bytes, count, err);
    if (shard->pool == NULL) {
        goto err;
    }
    shard->chunks = calloc(count, sizeof(*shard->chunks));
    if (shard->chunks == NULL) {
        *err = -ENOMEM;
        goto err;
    }
    /* The pool hands out its lowest buffer first: that is the region's base. */
    shard->pool_base = pool_get(shard->pool);
    pool_put(shard->pool, shard->pool_base);
    return shard;
err:
    log_shard_free(shard);
    return NULL;
}

void log_shard_free(struct log_shard *shard)
{
    if (shard == NULL) {
        return;
    }
    SL_ASSERT(shard->logs == 0); /* logs borrow the shard's buffers */
    pool_free(shard->pool);
    free(shard->chunks);
    free(shard);
}

struct ring *log_shard_ring(const struct log_shard *shard)
{
    return shard->ring;
}

size_t log_shard_cached_bytes(const struct log_shard *shard)
{
    return shard->cached_bytes;
}

static void lru_remove(struct log_shard *shard, struct chunk *c)
{
    SL_ASSERT(c->cached);
    if (c->lru_prev != NULL) {
        c->lru_prev->lru_next = c->lru_next;
    } else {
        shard->lru_head = c->lru_next;
    }
    if (c->lru_next != NULL) {
        c->lru_next->lru_prev = c->lru_prev;
    } else {
        shard->lru_tail = c->lru_prev;
    }
    c->lru_prev = c->lru_next = NULL;
    c->cached = false;
    shard->cached_bytes -= pool_buffer_bytes(shard->pool);
}

static void lru_push(struct log_shard *shard, struct chunk *c)
{
    SL_ASSERT(!c->cached);
    c->cached = true;
    c->lru_prev = shard->lru_tail;
    c->lru_next = NULL;
    if (shard->lru_tail != NULL) {
        shard->lru_tail->lru_next = c;
    } else {
        shard->lru_head = c;
    }
    shard->lru_tail = c;
    shard->cached_bytes += pool_buffer_bytes(shard->pool);
}

/* Unlinks a chunk from its segment and returns its buffer to the pool. */
static void chunk_release(struct log_shard *shard, struct chunk *c)
{
    struct segment *seg = c->seg;
    if (c->cached) {
        lru_remove(shard, c);
    }
    if (c->prev != NULL) {
        c->prev->next = c->next;
    } else {
        seg->chunks_head = c->next;
    }
    if (c->next != NULL) {
        c->next->prev = c->prev;
    } else {
        seg->chunks_tail = c->prev;
    }
    pool_put(shard->pool, c->data);
    *c = (struct chunk){0};
}

static void segment_release_chunks(struct log_shard *shard, struct segment *seg)
{
    while (seg->chunks_head != NULL) {
        chunk_release(shard, seg->chunks_head);
    }
}

/* Buffers an append could get: free ones plus cached ones it may evict. */
static unsigned chunks_obtainable(const struct log_shard *shard)
{
    return pool_available(shard->pool) +
           (unsigned)(shard->cached_bytes / pool_buffer_bytes(shard->pool));
}

/*
 * Evicts the oldest cached chunk. An active segment's partly filled last
 * buffer is evictable too (idle partitions must not pin a whole buffer each):
 * its partial last block is kept aside, 4 KiB, for the next append to extend.
 */
static bool evict_one(struct log_shard *shard)
{
    struct chunk *victim = shard->lru_head;
    if (victim == NULL) {
        return false;
    }
    struct segment *seg = victim->seg;
    /* Eviction is oldest first, so a segment loses its lowest chunk and what
     * remains in memory stays a contiguous suffix. */
    SL_ASSERT(seg->chunks_head == victim);
    uint32_t partial = (victim->pos + victim->len) % BLOCK_BYTES;
    if (victim->next == NULL && !seg->sealed && partial != 0) {
        SL_ASSERT(seg->tail_block == NULL); /* a segment has one tail */
        seg->tail_block = aligned_alloc(BLOCK_BYTES, BLOCK_BYTES);
        if (seg->tail_block == NULL) {
            return false;
        }
        memcpy(seg->tail_block, victim->data + victim->len - partial, partial);
    }
    chunk_release(shard, victim);
    return true;
}

/* A new chunk at the end of seg, evicting the oldest cached one if needed. */
static struct chunk *chunk_add(struct log_shard *shard, struct segment *seg, uint64_t pos)
{
    SL_ASSERT(pos % BLOCK_BYTES == 0);
    uint8_t *data = pool_get(shard->pool);
    if (data == NULL && evict_one(shard)) {
        data = pool_get(shard->pool);
    }
    if (data == NULL) {
        return NULL;
    }
    size_t index = (size_t)(data - shard->pool_base) / pool_buffer_bytes(shard->pool);
    struct chunk *c = &shard->chunks[index];
    *c = (struct chunk){.data = data, .seg = seg, .pos = pos, .prev = seg->chunks_tail};
    if (seg->chunks_tail != NULL) {
        seg->chunks_tail->next = c;
    } else {
        seg->chunks_head = c;
    }
    seg->chunks_tail = c;
    return c;
}

/* Start of the segment's bytes that are in memory. */
static uint64_t segment_mem_start(const struct segment *seg)
{
    return seg->chunks_head != NULL ? seg->chunks_head->pos : seg->size;
}

/* Moves chunks whose bytes are all written to the eviction list. Uncached
 * chunks form a suffix of the segment's list; they are cached in position
 * order, which keeps eviction taking each segment's lowest chunk. */
static void chunks_settle(struct log_shard *shard, struct segment *seg)
{
    struct chunk *c = seg->chunks_tail;
    while (c != NULL && c->prev != NULL && !c->prev->cached) {
        c = c->prev;
    }
    for (; c != NULL && !c->cached && c->pos + c->len <= seg->written; c = c->next) {
        lru_push(shard, c);
    }
}

/* ============================================================== segments */

static struct segment *active_segment(const struct log *log)
{
    return log->segs[log->nsegs - 1];
}

/* Index of the last segment whose base offset is <= offset. */
static unsigned segment_find(const struct log *log, int64_t offset)
{
    unsigned lo = 0;
    unsigned hi = log->nsegs;
    while (lo < hi) {
        unsigned mid = lo + (hi - lo) / 2;
        if (log->segs[mid]->base_offset <= offset) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo == 0 ? 0 : lo - 1;
}

static int segments_push(struct log *log, struct segment *seg)
{
    if (log->nsegs == log->segs_cap) {
        unsigned cap = log->segs_cap == 0 ? 16 : log->segs_cap * 2;
        struct segment **segs = realloc(log->segs, cap * sizeof(*segs));
        if (segs == NULL) {
            return -ENOMEM;
        }
        log->segs = segs;
        log->segs_cap = cap;
    }
    log->segs[log->nsegs++] = seg;
    return 0;
}

static uint32_t index_max_entries(const struct log_config *config, uint64_t size)
{
    uint64_t bytes = SL_MAX(size, config->segment_bytes);
    return (uint32_t)SL_MIN(bytes / config->index_interval_bytes + 2, (uint64_t)UINT32_MAX);
}

static void on_unlinked(void *opaque, int res)
{
    struct log *log = opaque;
    log->unlinks--;
    if (res < 0 && res != -ENOENT) {
        LOG_WARN("storage", "segment file not removed dir=%s err=%s", log->dir, strerror(-res));
    }
}

/*
 * Drops a segment that left the log: memory now, the structure once no read
 * uses it, the files through the ring, or at once when `now` (a rollback: the
 * next roll reuses the same base offset, and a late unlink would delete the
 * new segment's files).
 */
static void segment_retire(struct log *log, struct segment *seg, bool now)
{
    static const char *const exts[] = {"log", "index", "timeindex"};
    segment_release_chunks(log->shard, seg);
    for (size_t i = 0; i < SL_ARRAY_LEN(exts); i++) {
        char name[SEGMENT_NAME_BYTES];
        segment_name(name, seg->base_offset, exts[i]);
        if (!now &&
            ring_unlinkat(log->shard->ring, log->dirfd, name, 0, 0, on_unlinked, log) == 0) {
            log->unlinks++;
        } else {
            unlinkat(log->dirfd, name, 0); /* rare paths: rollback, or the ring is full */
        }
    }
    seg->doomed = true;
    if (seg->reads == 0) {
        segment_free(seg);
    }
}

/* ============================================================ acks, errors */

static void pending_push(struct log *log, const struct segment *seg, int64_t base, int64_t last,
                         log_append_cb *cb, void *opaque)
{
    SL_ASSERT(log->pending_count < log->config.pending_appends_max); /* checked by the caller */
    uint32_t at = (log->pending_head + log->pending_count) % log->config.pending_appends_max;
    log->pending[at] = (struct pending_append){
        .base_offset = base,
        .last_offset = last,
        .end_pos = seg->size,
        .max_timestamp = seg->max_timestamp,
        .cb = cb,
        .opaque = opaque,
    };
    log->pending_count++;
}

static const struct pending_append *pending_at(const struct log *log, uint32_t i)
{
    return &log->pending[(log->pending_head + i) % log->config.pending_appends_max];
}

static bool pending_pop(struct log *log, struct pending_append *out)
{
    if (log->pending_count == 0) {
        return false;
    }
    *out = log->pending[log->pending_head];
    log->pending_head = (log->pending_head + 1) % log->config.pending_appends_max;
    log->pending_count--;
    return true;
}

/* Acknowledges every append below the durable offset. Callbacks may append. */
static void pending_ack(struct log *log)
{
    while (log->pending_count > 0 && pending_at(log, 0)->last_offset < log->durable_offset) {
        struct pending_append p;
        pending_pop(log, &p);
        p.cb(p.opaque, 0, p.base_offset);
    }
}

/* Fails the appends pending now (not those their callbacks add). */
static void pending_fail(struct log *log, int err)
{
    uint32_t n = log->pending_count;
    struct pending_append p;
    while (n-- > 0 && pending_pop(log, &p)) {
        p.cb(p.opaque, err, p.base_offset);
    }
}

static void log_fail(struct log *log, int err, const char *what)
{
    if (log->error != 0) {
        return;
    }
    log->error = err;
    LOG_ERROR("storage", "log offline: %s failed dir=%s err=%s pending=%u", what, log->dir,
              strerror(-err), log->pending_count);
    pending_fail(log, err);
}

/*
 * Disk full: nothing past the oldest unsealed segment's written end reached
 * the disk. Forget it (later segments, chunks, index entries), fail the
 * appends that were waiting, and let later appends try again.
 */
static void log_rollback(struct log *log, int err)
{
    unsigned keep = log->nsegs;
    while (keep > 1 && !log->segs[keep - 2]->sealed) {
        keep--;
    }
    struct segment *seg = log->segs[keep - 1];
    while (log->nsegs > keep) {
        segment_retire(log, log->segs[--log->nsegs], true);
    }
    seg->size = seg->written;
    seg->next_offset = seg->written_next_offset;
    seg->max_timestamp = seg->written_max_timestamp;
    seg->max_timestamp_offset = SL_MIN(seg->max_timestamp_offset, seg->next_offset - 1);
    offset_index_truncate(&seg->oidx, (uint32_t)seg->size);
    time_index_truncate(&seg->tidx, (uint32_t)(seg->next_offset - seg->base_offset));
    seg->index_mark = seg->oidx.count ? seg->oidx.entries[seg->oidx.count - 1].position : 0;
    seg->time_mark = seg->index_mark;
    if (seg->index_persisted > seg->oidx.count || seg->timeindex_persisted > seg->tidx.count) {
        /* Entries past the new end must not survive in the files (rare path). */
        seg->index_persisted = SL_MIN(seg->index_persisted, seg->oidx.count);
        seg->timeindex_persisted = SL_MIN(seg->timeindex_persisted, seg->tidx.count);
        (void)!ftruncate(seg->index_fd, (off_t)seg->index_persisted * OFFSET_INDEX_ENTRY_BYTES);
        (void)!ftruncate(seg->timeindex_fd,
                         (off_t)seg->timeindex_persisted * TIME_INDEX_ENTRY_BYTES);
    }
    while (seg->chunks_tail != NULL && seg->chunks_tail->pos >= seg->size) {
        chunk_release(log->shard, seg->chunks_tail);
    }
    if (seg->chunks_tail != NULL) {
        seg->chunks_tail->len = (uint32_t)(seg->size - seg->chunks_tail->pos);
    }
    LOG_WARN("storage", "appends rolled back dir=%s err=%s end_offset=%" PRId64 " failed=%u",
             log->dir, strerror(-err), seg->next_offset, log->pending_count);
    pending_fail(log, err);
}

/* ================================================================ append */

static void arm(struct log *log)
{
    if (!ev_is_active(&log->prepare)) {
        ev_prepare_start(log->shard->loop, &log->prepare);
    }
}

static bool should_roll(const struct log *log, const struct segment *seg,
                        const struct batch_header *h)
{
    if (seg->size == 0) {
        return false;
    }
    int64_t now_ms = (int64_t)(ev_now(log->shard->loop) * 1000);
    uint64_t rel_last = (uint64_t)(seg->next_offset - seg->base_offset) + h->last_offset_delta;
    return seg->size + batch_total_bytes(h) > log->config.segment_bytes ||
           now_ms - seg->created_ms >= log->config.segment_ms || rel_last > UINT32_MAX;
}

static int log_roll(struct log *log)
{
    struct segment *old = active_segment(log);
    struct segment *seg = segment_alloc(old->next_offset, index_max_entries(&log->config, 0));
    if (seg == NULL) {
        return -ENOMEM;
    }
    seg->created_ms = (int64_t)(ev_now(log->shard->loop) * 1000);
    /* Creating the files is synchronous: once per segment, a few metadata
     * operations, cheaper than the state machine to do them in the ring. */
    int err = segment_open_active(seg, log->dirfd, log->config.io == STORAGE_IO_DIRECT);
    if (err == 0 && fsync(log->dirfd) != 0) {
        err = -errno; /* the new files' names must survive a power loss */
    }
    if (err == 0) {
        err = segments_push(log, seg);
    }
    if (err != 0) {
        LOG_ERROR("storage", "segment roll failed dir=%s base=%" PRId64 " err=%s", log->dir,
                  seg->base_offset, strerror(-err));
        segment_free(seg);
        return err;
    }
    LOG_INFO("storage", "segment rolled dir=%s base=%" PRId64 " previous_bytes=%" PRIu64, log->dir,
             seg->base_offset, old->size);
    return 0;
}

/* The chunk the next appended byte goes into (at seg->size), taken off the
 * eviction list since it is about to hold unwritten bytes. */
static struct chunk *tail_for_append(struct log *log, struct segment *seg)
{
    size_t cap = pool_buffer_bytes(log->shard->pool);
    struct chunk *c = seg->chunks_tail;
    if (c != NULL && c->pos + cap > seg->size) {
        if (c->cached) {
            lru_remove(log->shard, c);
        }
        return c;
    }
    c = chunk_add(log->shard, seg, SL_ALIGN_DOWN(seg->size, BLOCK_BYTES));
    SL_ASSERT(c != NULL); /* log_append reserved the chunks it needs */
    if (seg->tail_block != NULL) {
        c->len = (uint32_t)(seg->size - c->pos);
        memcpy(c->data, seg->tail_block, c->len);
        free(seg->tail_block);
        seg->tail_block = NULL;
    }
    SL_ASSERT(c->pos + c->len == seg->size); /* memory reaches the end of the log */
    return c;
}

/* Copies n bytes into the segment's chunks at its end. */
static void copy_in(struct log *log, struct segment *seg, const uint8_t *p, size_t n)
{
    size_t cap = pool_buffer_bytes(log->shard->pool);
    while (n > 0) {
        struct chunk *c = tail_for_append(log, seg);
        size_t take = SL_MIN(n, cap - c->len);
        memcpy(c->data + c->len, p, take);
        c->len += (uint32_t)take;
        seg->size += take; /* segment_note_batch sets the final size */
        p += take;
        n -= take;
    }
}

static int append_checked(struct log *log, const uint8_t *batch, size_t len, int32_t leader_epoch,
                          log_append_cb *cb, void *opaque, int64_t *base_offset,
                          enum batch_check check, bool validated);

int log_append(struct log *log, const uint8_t *batch, size_t len, int32_t leader_epoch,
               log_append_cb *cb, void *opaque, int64_t *base_offset)
{
    return append_checked(log, batch, len, leader_epoch, cb, opaque, base_offset, BATCH_CHECK_FULL,
                          false);
}

int log_append_validated(struct log *log, const uint8_t *batch, size_t len, int32_t leader_epoch,
                         log_append_cb *cb, void *opaque, int64_t *base_offset)
{
    return append_checked(log, batch, len, leader_epoch, cb, opaque, base_offset, BATCH_CHECK_FULL,
                          true);
}

int log_append_rewritten(struct log *log, const uint8_t *batch, size_t len, int32_t leader_epoch,
                         log_append_cb *cb, void *opaque, int64_t *base_offset)
{
    return append_checked(log, batch, len, leader_epoch, cb, opaque, base_offset,
                          BATCH_CHECK_FRAMING, false);
}

/* Whether len more bytes fit the shard's buffers and this log's write
 * backlog now: 0 or -ENOBUFS. */
static int room_for(struct log *log, struct segment *seg, size_t len)
{
    size_t cap = pool_buffer_bytes(log->shard->pool);
    struct chunk *tail = seg->chunks_tail;
    bool tail_usable = tail != NULL && tail->pos + cap > seg->size;
    size_t room = tail_usable ? (size_t)(tail->pos + cap - seg->size) : 0;
    size_t carried = tail_usable ? 0 : (size_t)(seg->size % BLOCK_BYTES);
    size_t need = len > room ? (len + carried - room + cap - 1) / cap : 0;
    unsigned obtainable = chunks_obtainable(log->shard) - (tail_usable && tail->cached);
    uint64_t unwritten = seg->size + len - SL_ALIGN_DOWN(seg->written, BLOCK_BYTES);
    return need > obtainable || unwritten / cap + 2 > FLUSH_IOV_MAX ? -ENOBUFS : 0;
}

static int append_checked(struct log *log, const uint8_t *batch, size_t len, int32_t leader_epoch,
                          log_append_cb *cb, void *opaque, int64_t *base_offset,
                          enum batch_check check, bool validated)
{
    if (log->error != 0) {
        return log->error;
    }
    if (log->needs_repair) {
        return -EUCLEAN;
    }
    /* Room first: a batch refused for room (retried by its caller until
     * there is) is not CRC-checked each time it is tried. */
    if (log->pending_count == log->config.pending_appends_max ||
        room_for(log, active_segment(log), len) != 0) {
        return -ENOBUFS;
    }
    struct batch_header h;
    const char *why = NULL;
    int err = 0;
    if (validated) {
        /* The caller checked these bytes in full against max.message.bytes. */
        err = batch_header_decode(batch, len, &h);
        SL_ASSERT(err == 0 && batch_total_bytes(&h) <= log->config.max_message_bytes);
    } else {
        err = batch_validate(batch, len, check, log->config.max_message_bytes, &h, &why);
    }
    if (err == 0 && batch_total_bytes(&h) != len) {
        err = -EBADMSG;
        why = "bytes after the batch";
    }
    if (err != 0) {
        LOG_WARN("storage", "batch refused dir=%s err=%s why=%s bytes=%zu", log->dir,
                 strerror(err == -EAGAIN ? EBADMSG : -err), why ? why : "-", len);
        return err == -EAGAIN ? -EBADMSG : err;
    }
    if (log->pending_count == log->config.pending_appends_max) {
        return -ENOBUFS;
    }
    struct segment *seg = active_segment(log);
    if (should_roll(log, seg, &h)) {
        err = log_roll(log);
        if (err != 0) {
            return err;
        }
        seg = active_segment(log);
    }
    if (room_for(log, seg, len) != 0) {
        return -ENOBUFS; /* the shard's buffers, or this log's write backlog, are full */
    }
    /* A partial last block is always in memory: in the tail chunk or aside. */
    struct chunk *tail = seg->chunks_tail;
    SL_ASSERT((tail != NULL && tail->pos + pool_buffer_bytes(log->shard->pool) > seg->size) ||
              seg->size % BLOCK_BYTES == 0 || seg->tail_block != NULL);

    uint8_t head[BATCH_HEADER_BYTES];
    memcpy(head, batch, sizeof(head));
    h.base_offset = seg->next_offset;
    batch_set_base_offset(head, h.base_offset);
    batch_set_leader_epoch(head, leader_epoch);
    uint64_t pos = seg->size;
    copy_in(log, seg, head, sizeof(head));
    copy_in(log, seg, batch + sizeof(head), len - sizeof(head));
    seg->size = pos;
    segment_note_batch(seg, &h, pos, log->config.index_interval_bytes);
    pending_push(log, seg, h.base_offset, batch_last_offset(&h), cb, opaque);
    if (base_offset != NULL) {
        *base_offset = h.base_offset;
    }
    arm(log);
    return 0;
}

/* ============================================================ flush steps
 *
 * One step at a time per log, chosen by flush_kick in this order: write the
 * oldest unsealed segment's unwritten bytes (reserving file space first when
 * needed), seal a segment the log has rolled past, sync (flush.policy
 * interval), write the checkpoint. Each step's ring operations count down
 * step_ops; the last completion finishes the step and re-arms the kick.
 */

static struct segment *oldest_unsealed(const struct log *log)
{
    unsigned i = log->nsegs - 1;
    while (i > 0 && !log->segs[i - 1]->sealed) {
        i--;
    }
    return log->segs[i];
}

static void step_begin(struct log *log, enum flush_step step, struct segment *seg)
{
    SL_ASSERT(log->step == STEP_IDLE && log->step_ops == 0);
    log->step = step;
    log->step_err = 0;
    log->flush_seg = seg;
}

/* Counts a completion; returns true when it was the step's last. */
static bool step_complete(struct log *log, int res)
{
    SL_ASSERT(log->step_ops > 0);
    if (res < 0 && (log->step_err == 0 || log->step_err == -ECANCELED)) {
        log->step_err = res;
    }
    return --log->step_ops == 0;
}

static int step_end(struct log *log)
{
    int err = log->step_err;
    log->step = STEP_IDLE;
    log->step_err = 0;
    arm(log);
    return err;
}

/* Disk full (a write's or a fallocate's ENOSPC): rolls back what was not
 * written, but only once the syncs in flight have completed, so the appends
 * they cover are acknowledged and not failed. */
static void rollback_after_syncs(struct log *log, int err)
{
    if (log->syncs_count > 0) {
        log->rollback_err = err; /* on_write_synced rolls back after the last */
        return;
    }
    log_rollback(log, err);
}

static void on_fallocated(void *opaque, int res)
{
    struct log *log = opaque;
    if (!step_complete(log, res)) {
        return;
    }
    struct segment *seg = log->flush_seg;
    int err = step_end(log);
    if (err == -EOPNOTSUPP) {
        LOG_WARN("storage", "fallocate unsupported here, writing without it dir=%s", log->dir);
        seg->preallocated = UINT64_MAX;
    } else if (err == -ENOSPC) {
        rollback_after_syncs(log, err);
    } else if (err != 0) {
        log_fail(log, err, "fallocate");
    } else {
        seg->preallocated = log->flush_size;
    }
}

static void start_fallocate(struct log *log, struct segment *seg, uint64_t needed)
{
    uint64_t step = SL_MAX(log->config.preallocate_bytes, (uint64_t)BLOCK_BYTES);
    /* Never past the segment's size (plus what its last batch needs): a
     * log of small segments must not hold a full step of disk each. */
    uint64_t cap = SL_MAX(SL_ALIGN_UP(log->config.segment_bytes, (uint64_t)BLOCK_BYTES),
                          SL_ALIGN_UP(needed, (uint64_t)BLOCK_BYTES));
    uint64_t target = SL_MIN(SL_ALIGN_UP(needed, step), cap);
    step_begin(log, STEP_FALLOCATE, seg);
    log->flush_size = target;
    int err = ring_fallocate(log->shard->ring, seg->write_fd, 0, (off_t)seg->preallocated,
                             (off_t)(target - seg->preallocated), 0, on_fallocated, log);
    if (err != 0) {
        log->step = STEP_IDLE; /* ring full: try again next iteration */
        return;
    }
    log->step_ops = 1;
}

/* Recovery scans what was flushed since the last checkpoint: bound that by
 * bytes too, or a burst between two timer ticks leaves gigabytes to scan. */
static void checkpoint_by_bytes(struct log *log, const struct segment *seg)
{
    uint64_t since = seg->flushed;
    if (seg->base_offset == log->checkpoint_base) {
        since -= SL_MIN(seg->flushed, log->checkpoint_pos);
    }
    if (since >= log->config.checkpoint_bytes) {
        log->checkpoint_wanted = true;
    }
}

static void on_written(void *opaque, int res)
{
    struct log *log = opaque;
    if (!step_complete(log, res)) {
        return;
    }
    struct segment *seg = log->flush_seg;
    int err = step_end(log);
    if (err == -ENOSPC) {
        rollback_after_syncs(log, err);
        return;
    }
    if (err != 0) {
        log_fail(log, err, "write");
        return;
    }
    SL_ASSERT(log->flush_next >= log->durable_offset); /* acknowledged offsets only grow */
    seg->written = log->flush_size;
    seg->written_next_offset = log->flush_next;
    seg->written_max_timestamp = log->flush_max_ts;
    chunks_settle(log->shard, seg);
    if (log->flush_synced) {
        return; /* durable once its fdatasync completes (on_write_synced) */
    }
    log->durable_offset = log->flush_next;
    checkpoint_by_bytes(log, seg);
    pending_ack(log);
}

/* The fdatasync linked to a write: everything written before it began is on
 * disk, up to the end of the write it follows. */
static void on_write_synced(void *opaque, int res)
{
    struct sync_slot *slot = opaque;
    struct log *log = slot->log;
    SL_ASSERT(slot->used && log->syncs_count > 0);
    struct segment *seg = log->syncs_seg;
    bool cancelled = slot->write_failed || (res == -ECANCELED && log->error != 0);
    slot->used = false;
    if (--log->syncs_count == 0) {
        log->syncs_seg = NULL;
    }
    arm(log); /* steps that wait for the syncs to drain */
    if (res < 0 && !cancelled) {
        log_fail(log, res, "fdatasync");
    }
    if (!cancelled && res >= 0 && log->error == 0) {
        seg->flushed = SL_MAX(seg->flushed, slot->size);
        log->flushed_offset = SL_MAX(log->flushed_offset, slot->next_offset);
        log->durable_offset = SL_MAX(log->durable_offset, slot->next_offset);
        checkpoint_by_bytes(log, seg);
        pending_ack(log);
    }
    if (log->syncs_count == 0 && log->rollback_err != 0) {
        int err = log->rollback_err;
        log->rollback_err = 0;
        if (log->error == 0) {
            log_rollback(log, err);
        }
    }
}

/* Checks the write's byte count, then hands over to on_written. */
static void on_writev(void *opaque, int res)
{
    struct log *log = opaque;
    if (res >= 0 && (uint64_t)res != log->flush_write_bytes) {
        res = -EIO; /* short write on a preallocated file: the device failed */
    }
    if (res < 0 && log->flush_sync_slot != NULL) {
        log->flush_sync_slot->write_failed = true;
    }
    log->flush_sync_slot = NULL;
    on_written(log, res);
}

/* What one write covers: the segment up to size, offsets below next_offset.
 * With cut_block its last block goes from log->cut_block (see write_extent). */
struct write_extent {
    uint64_t size;
    int64_t next_offset;
    int64_t max_timestamp;
    bool cut_block;
};

/* The last pending append of seg that ends within limit, or when none does,
 * the first not yet written: the appends are in offset order, those written
 * come first, and seg's unwritten ones end at growing positions. */
static const struct pending_append *pending_cut(const struct log *log, const struct segment *seg,
                                                uint64_t limit)
{
    uint32_t lo = 0;
    uint32_t hi = log->pending_count;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        const struct pending_append *p = pending_at(log, mid);
        if (p->base_offset < seg->written_next_offset ||
            (p->base_offset < seg->next_offset && p->end_pos <= limit)) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    if (lo > 0 && pending_at(log, lo - 1)->base_offset >= seg->written_next_offset) {
        return pending_at(log, lo - 1);
    }
    SL_ASSERT(lo < log->pending_count); /* unwritten bytes are pending appends */
    return pending_at(log, lo);
}

/* Copies the block of seg at pos into log->cut_block, zeros from size on.
 * Returns false when the buffer cannot be had (out of memory). */
static bool cut_block_fill(struct log *log, const struct segment *seg, uint64_t pos, uint64_t size)
{
    SL_ASSERT(pos % BLOCK_BYTES == 0 && pos < size && size - pos < BLOCK_BYTES);
    if (log->cut_block == NULL &&
        (log->cut_block = aligned_alloc(BLOCK_BYTES, BLOCK_BYTES)) == NULL) {
        return false;
    }
    const struct chunk *c = seg->chunks_tail;
    while (c->pos > pos) {
        c = c->prev;
    }
    /* Chunks are block-aligned, so the block lies in this one. */
    size_t at = (size_t)(pos - c->pos);
    size_t keep = (size_t)(size - pos);
    SL_ASSERT(at + keep <= c->len);
    memcpy(log->cut_block, c->data + at, keep);
    memset(log->cut_block + keep, 0, BLOCK_BYTES - keep);
    return true;
}

/*
 * Where a write from `from` ends. A backlog of at most write_max_bytes goes
 * whole. A larger one is cut at the end of a batch (at least one): the write
 * takes the batches that end within write_max_bytes, or within a quarter of
 * the backlog when that is more, one quarter per sync slot. Cut, the backlog a
 * producer with a few large requests in flight sends at once (Kafka's 5 per
 * partition) becomes writes whose syncs overlap the next write, and its first
 * request is answered after its own bytes are on disk, not after all of them:
 * measured with 5 requests of 1 MB in flight, whole 5 MB writes answered all
 * five together and the producer waited. A deep backlog still goes in large
 * writes, which the device serves better than many small ones. Whole too: a
 * segment the log has rolled past (its writes cannot overlap syncs, see
 * flush_kick), and a cut in the backlog's last block, which would save nothing.
 *
 * A cut write puts nothing past its cut on disk: its last block, which also
 * holds the start of the next batches, goes from log->cut_block with zeros
 * past the cut. Written as it is in memory, whole batches past the cut would
 * be on disk and synced, and after a rollback (ENOSPC) that failed them to
 * their producers, a crash would bring them back. Without memory for that
 * block, the backlog goes whole.
 */
static struct write_extent write_extent(struct log *log, const struct segment *seg, uint64_t from)
{
    struct write_extent whole = {seg->size, seg->next_offset, seg->max_timestamp, false};
    uint64_t limit =
        from + SL_MAX(log->config.write_max_bytes, (seg->size - from) / SYNCS_IN_FLIGHT_MAX);
    if (seg != active_segment(log) || seg->size <= limit) {
        return whole;
    }
    const struct pending_append *cut = pending_cut(log, seg, limit);
    SL_ASSERT(cut->base_offset >= seg->written_next_offset && cut->end_pos <= seg->size);
    if (SL_ALIGN_UP(cut->end_pos, (uint64_t)BLOCK_BYTES) > seg->size) {
        return whole;
    }
    bool partial = cut->end_pos % BLOCK_BYTES != 0;
    if (partial &&
        !cut_block_fill(log, seg, SL_ALIGN_DOWN(cut->end_pos, BLOCK_BYTES), cut->end_pos)) {
        return whole;
    }
    return (struct write_extent){cut->end_pos, cut->last_offset + 1, cut->max_timestamp, partial};
}

static struct sync_slot *sync_slot_take(struct log *log, struct segment *seg,
                                        const struct write_extent *ext)
{
    SL_ASSERT(log->syncs_count < SYNCS_IN_FLIGHT_MAX);
    SL_ASSERT(log->syncs_seg == NULL || log->syncs_seg == seg); /* one segment at a time */
    for (unsigned i = 0; i < SYNCS_IN_FLIGHT_MAX; i++) {
        struct sync_slot *slot = &log->syncs[i];
        if (!slot->used) {
            *slot = (struct sync_slot){
                .log = log, .used = true, .size = ext->size, .next_offset = ext->next_offset};
            log->syncs_count++;
            log->syncs_seg = seg;
            return slot;
        }
    }
    SL_ASSERT(false); /* syncs_count said a slot was free */
    return NULL;
}

static void start_write(struct log *log, struct segment *seg)
{
    size_t cap = pool_buffer_bytes(log->shard->pool);
    uint64_t from = SL_ALIGN_DOWN(seg->written, BLOCK_BYTES);
    uint64_t tail_end = SL_ALIGN_UP(seg->size, BLOCK_BYTES);
    if (seg->preallocated < tail_end) {
        start_fallocate(log, seg, tail_end);
        return;
    }
    bool sync = log->config.flush_policy == FLUSH_ALWAYS;
    if (ring_space(log->shard->ring) < 2u) {
        return; /* a completion will wake the loop and re-run the kick */
    }
    struct write_extent ext = write_extent(log, seg, from);
    uint64_t end = SL_ALIGN_UP(ext.size, BLOCK_BYTES);
    SL_ASSERT(ext.size > seg->written && end <= tail_end);
    /* The chunks give every block but a cut one (from log->cut_block). */
    uint64_t chunks_end = ext.cut_block ? end - BLOCK_BYTES : end;
    struct chunk *c = seg->chunks_tail;
    while (c != NULL && c->pos > from) {
        c = c->prev;
    }
    SL_ASSERT(c != NULL && c->pos <= from); /* unwritten bytes are in memory */
    int n = 0;
    for (; c != NULL && SL_MAX(from, c->pos) < chunks_end; c = c->next) {
        uint64_t start = SL_MAX(from, c->pos);
        size_t len = c->len;
        if (c->next == NULL) {
            size_t padded = SL_ALIGN_UP(len, BLOCK_BYTES);
            memset(c->data + len, 0, padded - len);
            len = padded;
        } else {
            SL_ASSERT(len == cap); /* only the tail chunk is partly filled */
        }
        len = (size_t)SL_MIN((uint64_t)len, chunks_end - c->pos); /* a cut write ends inside */
        SL_ASSERT(n < FLUSH_IOV_MAX); /* log_append bounds the backlog */
        log->iov[n].iov_base = c->data + (start - c->pos);
        log->iov[n].iov_len = len - (size_t)(start - c->pos);
        n++;
    }
    if (ext.cut_block) {
        SL_ASSERT(n < FLUSH_IOV_MAX);
        log->iov[n] = (struct iovec){log->cut_block, BLOCK_BYTES};
        n++;
    }
    step_begin(log, STEP_WRITE, seg);
    log->flush_size = ext.size;
    log->flush_next = ext.next_offset;
    log->flush_max_ts = ext.max_timestamp;
    log->flush_write_bytes = end - from;
    log->flush_synced = sync;
    log->flush_sync_slot = sync ? sync_slot_take(log, seg, &ext) : NULL;
    int err = ring_writev(log->shard->ring, seg->write_fd, log->iov, n, (off_t)from,
                          sync ? RING_F_LINK | RING_F_PROMPT : 0, on_writev, log);
    SL_ASSERT(err == 0); /* space was checked above */
    log->step_ops = 1;
    if (sync) {
        /* Not part of the step: the next write may start while it runs. */
        err = ring_fdatasync(log->shard->ring, seg->write_fd, 0, on_write_synced,
                             log->flush_sync_slot);
        SL_ASSERT(err == 0);
    }
}

static void on_synced(void *opaque, int res)
{
    struct log *log = opaque;
    if (!step_complete(log, res)) {
        return;
    }
    struct segment *seg = log->flush_seg;
    int err = step_end(log);
    if (err != 0) {
        log_fail(log, err, "fdatasync");
        return;
    }
    seg->flushed = log->flush_size;
    log->flushed_offset = log->flush_next;
    checkpoint_by_bytes(log, seg);
}

static void start_sync(struct log *log, struct segment *seg)
{
    step_begin(log, STEP_SYNC, seg);
    log->flush_size = seg->written;
    log->flush_next = seg->written_next_offset;
    if (ring_fdatasync(log->shard->ring, seg->write_fd, 0, on_synced, log) != 0) {
        log->step = STEP_IDLE;
        return;
    }
    log->sync_wanted = false;
    log->step_ops = 1;
}

/*
 * Queues writes of the index entries not yet in the files, each linked to an
 * fdatasync of its file. Returns the number of operations queued.
 */
static unsigned queue_index_writes(struct log *log, struct segment *seg, ring_cb *cb)
{
    uint32_t on = seg->oidx.count - seg->index_persisted;
    uint32_t tn = seg->tidx.count - seg->timeindex_persisted;
    free(log->index_buf);
    log->index_buf =
        malloc((size_t)on * OFFSET_INDEX_ENTRY_BYTES + (size_t)tn * TIME_INDEX_ENTRY_BYTES + 1);
    if (log->index_buf == NULL) {
        return 0;
    }
    SL_ASSERT(ring_space(log->shard->ring) >= 4); /* callers reserve the slots */
    unsigned ops = 0;
    uint8_t *p = log->index_buf;
    size_t olen = offset_index_encode(&seg->oidx, seg->index_persisted, p);
    size_t tlen = time_index_encode(&seg->tidx, seg->timeindex_persisted, p + olen);
    log->iov[FLUSH_IOV_MAX - 2] = (struct iovec){p, olen};
    log->iov[FLUSH_IOV_MAX - 1] = (struct iovec){p + olen, tlen};
    if (olen > 0) {
        ring_writev(log->shard->ring, seg->index_fd, &log->iov[FLUSH_IOV_MAX - 2], 1,
                    (off_t)seg->index_persisted * OFFSET_INDEX_ENTRY_BYTES, RING_F_LINK, cb, log);
        ops++;
    }
    ring_fdatasync(log->shard->ring, seg->index_fd, 0, cb, log);
    ops++;
    if (tlen > 0) {
        ring_writev(log->shard->ring, seg->timeindex_fd, &log->iov[FLUSH_IOV_MAX - 1], 1,
                    (off_t)seg->timeindex_persisted * TIME_INDEX_ENTRY_BYTES, RING_F_LINK, cb, log);
        ops++;
    }
    ring_fdatasync(log->shard->ring, seg->timeindex_fd, 0, cb, log);
    ops++;
    log->pending_checkpoint_pos = seg->flushed; /* what these entries are durable for */
    seg->index_persisted = seg->oidx.count;
    seg->timeindex_persisted = seg->tidx.count;
    return ops;
}

static void on_sealed(void *opaque, int res)
{
    struct log *log = opaque;
    if (!step_complete(log, res)) {
        return;
    }
    struct segment *seg = log->flush_seg;
    int err = step_end(log);
    free(log->index_buf);
    log->index_buf = NULL;
    if (err != 0) {
        log_fail(log, err, "segment seal");
        return;
    }
    seg->flushed = seg->size;
    seg->sealed = true;
    free(seg->tail_block); /* a sealed segment is never extended */
    seg->tail_block = NULL;
    int *fds[] = {&seg->write_fd, &seg->index_fd, &seg->timeindex_fd};
    for (size_t i = 0; i < SL_ARRAY_LEN(fds); i++) {
        close(*fds[i]); /* synced above: close has nothing left to write */
        *fds[i] = -1;
    }
    chunks_settle(log->shard, seg);
    SL_ASSERT(seg->next_offset <= log->durable_offset); /* sealed only once fully written */
    log->flushed_offset = SL_MAX(log->flushed_offset, seg->next_offset);
    log->checkpoint_wanted = true; /* move the recovery point past this segment */
}

static void on_seal_truncated(void *opaque, int res)
{
    struct log *log = opaque;
    if (!step_complete(log, res)) {
        return;
    }
    struct segment *seg = log->flush_seg;
    int err = log->step_err;
    log->step = STEP_IDLE;
    if (err != 0) {
        arm(log);
        log_fail(log, err, "segment trim");
        return;
    }
    /* Four index operations and the segment's sync: all the slots, or none
     * (a step must never be left with operations in flight). */
    if (ring_space(log->shard->ring) < 5) {
        arm(log); /* the kick starts the seal over; ftruncate again is harmless */
        return;
    }
    step_begin(log, STEP_SEAL_SYNC, seg);
    unsigned ops = queue_index_writes(log, seg, on_sealed);
    if (ops == 0) {
        log->step = STEP_IDLE;
        arm(log);
        return;
    }
    int err_sync = ring_fdatasync(log->shard->ring, seg->write_fd, 0, on_sealed, log);
    SL_ASSERT(err_sync == 0); /* space was checked above */
    log->step_ops = ops + 1;
}

/* Trims a segment the log rolled past to its size, syncs it and its indexes. */
static void start_seal(struct log *log, struct segment *seg)
{
    if (ring_space(log->shard->ring) < 6) {
        return;
    }
    segment_seal_time_index(seg);
    step_begin(log, STEP_SEAL_TRUNCATE, seg);
    int err = ring_ftruncate(log->shard->ring, seg->write_fd, (off_t)seg->size, 0,
                             on_seal_truncated, log);
    SL_ASSERT(err == 0);
    log->step_ops = 1;
}

static void checkpoint_encode(uint8_t *p, int64_t base, uint64_t pos)
{
    memset(p, 0, CHECKPOINT_BYTES);
    be32_put(p, CHECKPOINT_MAGIC);
    be32_put(p + 4, 1);
    be64_put(p + 8, (uint64_t)base);
    be64_put(p + 16, pos);
    be32_put(p + 28, crc32c(0, p, 28));
}

static int checkpoint_decode(const uint8_t *p, int64_t *base, uint64_t *pos)
{
    if (be32_get(p) != CHECKPOINT_MAGIC || be32_get(p + 4) != 1 ||
        be32_get(p + 28) != crc32c(0, p, 28)) {
        return -EBADMSG;
    }
    *base = (int64_t)be64_get(p + 8);
    *pos = be64_get(p + 16);
    return 0;
}

static void on_checkpoint_written(void *opaque, int res)
{
    struct log *log = opaque;
    if (!step_complete(log, res)) {
        return;
    }
    int err = step_end(log);
    if (err != 0) {
        log_fail(log, err, "checkpoint");
        return;
    }
    log->checkpoint_base = log->pending_checkpoint_base;
    log->checkpoint_pos = log->pending_checkpoint_pos;
}

static void on_checkpoint_indexed(void *opaque, int res)
{
    struct log *log = opaque;
    if (!step_complete(log, res)) {
        return;
    }
    int err = log->step_err;
    log->step = STEP_IDLE;
    free(log->index_buf);
    log->index_buf = NULL;
    if (err != 0) {
        arm(log);
        log_fail(log, err, "index write");
        return;
    }
    step_begin(log, STEP_CHECKPOINT_WRITE, log->flush_seg);
    checkpoint_encode(log->checkpoint_buf, log->pending_checkpoint_base,
                      log->pending_checkpoint_pos);
    log->iov[0] = (struct iovec){log->checkpoint_buf, CHECKPOINT_BYTES};
    if (ring_space(log->shard->ring) < 2) {
        log->step = STEP_IDLE;
        log->checkpoint_wanted = true;
        arm(log);
        return;
    }
    ring_writev(log->shard->ring, log->checkpoint_fd, log->iov, 1, 0, RING_F_LINK,
                on_checkpoint_written, log);
    ring_fdatasync(log->shard->ring, log->checkpoint_fd, 0, on_checkpoint_written, log);
    log->step_ops = 2;
}

static void start_checkpoint(struct log *log)
{
    struct segment *seg = oldest_unsealed(log);
    if (seg->base_offset == log->checkpoint_base && seg->flushed == log->checkpoint_pos) {
        log->checkpoint_wanted = false;
        return;
    }
    if (ring_space(log->shard->ring) < 6) {
        return;
    }
    step_begin(log, STEP_CHECKPOINT_INDEX, seg);
    log->pending_checkpoint_base = seg->base_offset;
    unsigned ops = queue_index_writes(log, seg, on_checkpoint_indexed);
    if (ops == 0) {
        log->step = STEP_IDLE;
        return;
    }
    log->checkpoint_wanted = false;
    log->step_ops = ops;
}

static bool flush_work_left(const struct log *log)
{
    const struct segment *seg = oldest_unsealed(log);
    return seg->written < seg->size || seg != active_segment(log) || log->checkpoint_wanted ||
           (log->sync_wanted && seg->flushed < seg->written);
}

/*
 * Chooses the next step. Housekeeping (seal, interval sync, checkpoint) goes
 * before new writes: under a steady stream of appends the active segment
 * always has unwritten bytes, and writes first would starve them.
 */
static void flush_kick(struct log *log)
{
    if (log->step != STEP_IDLE || log->error != 0 || log->needs_repair || log->rollback_err != 0) {
        return;
    }
    struct segment *seg = oldest_unsealed(log);
    bool active = seg == active_segment(log);
    if (log->syncs_count > 0) {
        /* Only the next write of the same segment overlaps the syncs; the
         * rest waits until they have drained (their completions re-arm). */
        if (active && seg == log->syncs_seg && !log->sync_wanted && !log->checkpoint_wanted &&
            seg->written < seg->size && log->syncs_count < SYNCS_IN_FLIGHT_MAX) {
            start_write(log, seg);
        }
        return;
    }
    if (!active) {
        if (seg->written < seg->size) {
            start_write(log, seg);
        } else {
            start_seal(log, seg);
        }
        return;
    }
    if (log->sync_wanted) {
        if (seg->flushed < seg->written) {
            start_sync(log, seg);
            return;
        }
        log->sync_wanted = false;
    }
    if (log->checkpoint_wanted) {
        start_checkpoint(log);
        if (log->step != STEP_IDLE) {
            return;
        }
    }
    if (seg->written < seg->size) {
        start_write(log, seg);
    }
}

static void on_prepare(struct ev_loop *loop, ev_prepare *w, int revents)
{
    (void)revents;
    struct log *log = SL_CONTAINER_OF(w, struct log, prepare);
    ev_prepare_stop(loop, w);
    flush_kick(log);
    /* A step that could not start (ring full) is tried again on the next
     * iteration, which the ring's own completions will cause. */
    if (log->step == STEP_IDLE && log->error == 0 && !log->needs_repair &&
        ring_in_flight(log->shard->ring) > 0 && flush_work_left(log)) {
        arm(log);
    }
}

static void on_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)revents;
    struct log *log = SL_CONTAINER_OF(w, struct log, timer);
    int64_t now_ms = (int64_t)(ev_now(loop) * 1000);
    if (log->config.flush_policy == FLUSH_INTERVAL &&
        now_ms - log->last_sync_ms >= log->config.flush_interval_ms) {
        log->sync_wanted = true;
        log->last_sync_ms = now_ms;
    }
    if (now_ms - log->last_checkpoint_ms >= log->config.checkpoint_interval_ms) {
        log->checkpoint_wanted = true;
        log->last_checkpoint_ms = now_ms;
    }
    if (now_ms - log->last_retention_ms >= log->config.retention_check_interval_ms) {
        log->last_retention_ms = now_ms;
        log_enforce_retention(log, time_wall_ms());
    }
    if (log->sync_wanted || log->checkpoint_wanted) {
        arm(log);
    }
}

static void timer_start(struct log *log)
{
    int64_t period_ms =
        SL_MIN(log->config.checkpoint_interval_ms, log->config.retention_check_interval_ms);
    if (log->config.flush_policy == FLUSH_INTERVAL) {
        period_ms = SL_MIN(period_ms, log->config.flush_interval_ms);
    }
    double period = (double)SL_MAX(period_ms, 10) / 1000.0;
    ev_timer_init(&log->timer, on_timer, period, period);
    ev_timer_start(log->shard->loop, &log->timer);
    ev_unref(log->shard->loop); /* housekeeping alone does not keep a loop running */
}

static void timer_stop(struct log *log)
{
    if (ev_is_active(&log->timer)) {
        ev_ref(log->shard->loop);
        ev_timer_stop(log->shard->loop, &log->timer);
    }
}

/* ================================================================= reads */

/* Copies n bytes at file position pos from the segment's memory chunks. */
static void copy_out(const struct segment *seg, uint64_t pos, uint8_t *dst, size_t n)
{
    const struct chunk *c = seg->chunks_tail;
    while (c != NULL && c->pos > pos) {
        c = c->prev;
    }
    while (n > 0) {
        SL_ASSERT(c != NULL && pos >= c->pos && pos < c->pos + c->len); /* memory is contiguous */
        size_t take = SL_MIN(n, (size_t)(c->pos + c->len - pos));
        memcpy(dst, c->data + (pos - c->pos), take);
        dst += take;
        pos += take;
        n -= take;
        c = c->next;
    }
}

static void segment_unref(struct segment *seg)
{
    SL_ASSERT(seg->reads > 0);
    if (--seg->reads > 0) {
        return;
    }
    if (seg->doomed) {
        segment_free(seg);
    } else if (seg->sealed && seg->read_fd >= 0) {
        /* Old segments are read rarely: an open per read beats one fd per
         * segment ever read (a log can have tens of thousands). */
        close(seg->read_fd);
        seg->read_fd = -1;
    }
}

static void on_read(void *opaque, int res);

/* Parses what the read holds; returns true when the read is complete. */
static bool read_parse(struct log_read *req)
{
    uint8_t *w = req->out->data + req->out_start + req->kept;
    while (req->window >= BATCH_HEADER_BYTES) {
        int64_t base = (int64_t)be64_get(w);
        uint32_t length = be32_get(w + BATCH_OFF_LENGTH);
        if (length < BATCH_HEADER_BYTES - BATCH_LOG_OVERHEAD || length > req->seg->size) {
            LOG_ERROR("storage", "bad batch length on read dir=%s pos=%" PRIu64, req->log->dir,
                      req->pos);
            return true; /* the log was validated when written: stop before it */
        }
        size_t total = BATCH_LOG_OVERHEAD + length;
        int64_t last = base + (int32_t)be32_get(w + BATCH_OFF_LAST_OFFSET_DELTA);
        if (!req->found && last < req->offset) {
            size_t drop = SL_MIN(total, req->window);
            memmove(w, w + drop, req->window - drop);
            req->window -= drop;
            req->pos += total;
            req->out->len -= drop;
            continue;
        }
        req->found = true;
        if (base >= req->max_offset || (req->kept > 0 && req->kept + total > req->max_bytes)) {
            return true;
        }
        if (total > req->window) {
            return false;
        }
        req->kept += total;
        req->window -= total;
        req->pos += total;
        w += total;
    }
    return false;
}

/* Drives a read until it completes (returns bytes) or waits for the disk. */
static int read_step(struct log_read *req)
{
    struct segment *seg = req->seg;
    for (;;) {
        if (read_parse(req)) {
            break;
        }
        uint64_t fill = req->pos + req->window;
        if (fill >= seg->size || (req->found && req->kept >= req->max_bytes)) {
            break;
        }
        /* need: what completes the batch (or the header) in hand; want: a
         * larger read that saves round trips, when out has room for it. */
        size_t need = BATCH_HEADER_BYTES - SL_MIN(req->window, (size_t)BATCH_HEADER_BYTES);
        if (req->window >= BATCH_LOG_OVERHEAD) {
            const uint8_t *w = req->out->data + req->out_start + req->kept;
            size_t total = BATCH_LOG_OVERHEAD + be32_get(w + BATCH_OFF_LENGTH);
            need = SL_MAX(need, total - SL_MIN(total, req->window));
        }
        size_t want = SL_MAX(need, (size_t)(64u << 10));
        if (req->found && req->max_bytes > req->kept + req->window) {
            want = SL_MAX(want, req->max_bytes - req->kept - req->window);
        }
        want = (size_t)SL_MIN((uint64_t)want, seg->size - fill);
        need = (size_t)SL_MIN((uint64_t)need, seg->size - fill);
        if (buf_reserve(req->out, want) != 0) {
            want = need;
            if (need == 0 || buf_reserve(req->out, need) != 0) {
                if (req->kept > 0) {
                    break;
                }
                req->out->len = req->out_start;
                return -ENOBUFS;
            }
        }
        uint64_t mem = segment_mem_start(seg);
        if (fill >= mem) {
            copy_out(seg, fill, req->out->data + req->out->len, want);
            req->out->len += want;
            req->window += want;
            continue;
        }
        int fd = segment_read_fd(seg, req->log->dirfd);
        size_t n = (size_t)SL_MIN((uint64_t)want, mem - fill);
        req->iov = (struct iovec){req->out->data + req->out->len, n};
        int err = fd < 0 ? fd
                         : ring_readv(req->log->shard->ring, fd, &req->iov, 1, (off_t)fill, 0,
                                      on_read, req);
        if (err != 0) {
            if (req->kept > 0) {
                break;
            }
            req->out->len = req->out_start;
            return err;
        }
        req->log->reads++;
        return LOG_PENDING;
    }
    req->out->len = req->out_start + req->kept;
    req->done = true;
    return (int)req->kept;
}

static void on_read(void *opaque, int res)
{
    struct log_read *req = opaque;
    req->log->reads--;
    int rc;
    if (res > 0) {
        req->out->len += (size_t)res;
        req->window += (size_t)res;
        rc = read_step(req);
        if (rc == LOG_PENDING) {
            return;
        }
    } else {
        req->out->len = req->out_start + req->kept;
        rc = req->kept > 0 ? (int)req->kept : (res < 0 ? res : -EIO);
        if (res < 0) {
            LOG_ERROR("storage", "read failed dir=%s err=%s", req->log->dir, strerror(-res));
        }
    }
    segment_unref(req->seg);
    req->cb(req->opaque, rc);
}

int log_read(struct log *log, struct log_read *req)
{
    int64_t end = log_end_offset(log);
    if (req->offset < log->start_offset || req->offset > end) {
        return -ERANGE;
    }
    if (req->offset == end || req->offset >= req->max_offset) {
        return 0;
    }
    struct segment *seg = log->segs[segment_find(log, req->offset)];
    int err = segment_load_indexes(seg, log->dirfd, log->config.index_interval_bytes);
    if (err != 0) {
        return err;
    }
    const struct offset_index_entry *e =
        offset_index_lookup(&seg->oidx, (uint32_t)(req->offset - seg->base_offset));
    req->log = log;
    req->seg = seg;
    req->out_start = req->out->len;
    req->kept = 0;
    req->window = 0;
    req->pos = e != NULL ? e->position : 0;
    req->found = false;
    req->done = false;
    seg->reads++;
    int rc = read_step(req);
    if (rc != LOG_PENDING) {
        segment_unref(seg);
    }
    return rc;
}

/* ========================================================= time lookups */

/* Reads n bytes at pos from memory or, below it, with pread. */
static int read_sync(struct log *log, struct segment *seg, uint64_t pos, uint8_t *dst, size_t n)
{
    uint64_t mem = segment_mem_start(seg);
    if (pos < mem) {
        int fd = segment_read_fd(seg, log->dirfd);
        if (fd < 0) {
            return fd;
        }
        size_t part = (size_t)SL_MIN((uint64_t)n, mem - pos);
        ssize_t got = pread(fd, dst, part, (off_t)pos);
        if (got != (ssize_t)part) {
            return got < 0 ? -errno : -EIO;
        }
        pos += part;
        dst += part;
        n -= part;
    }
    if (n > 0) {
        copy_out(seg, pos, dst, n);
    }
    return 0;
}

/* The first record at or after ts in the batch at p, or its base offset. */
static int64_t offset_in_batch(const uint8_t *p, size_t len, const struct batch_header *h,
                               int64_t ts, int64_t *found_ts)
{
    struct batch_record_iter it;
    struct batch_record_header slots[64];
    struct batch_record rec;
    if (batch_record_iter_init(&it, p, len, slots, SL_ARRAY_LEN(slots)) == 0) {
        while (batch_record_iter_next(&it, &rec) == 1) {
            if (rec.timestamp >= ts) {
                *found_ts = rec.timestamp;
                return h->base_offset + rec.offset_delta;
            }
        }
    }
    *found_ts = h->max_timestamp;
    return h->base_offset;
}

int log_offset_for_time(struct log *log, int64_t timestamp, int64_t *offset, int64_t *found_ts)
{
    unsigned i = 0;
    while (i < log->nsegs && log->segs[i]->max_timestamp < timestamp) {
        i++;
    }
    if (i == log->nsegs) {
        return -ENOENT;
    }
    struct segment *seg = log->segs[i];
    int err = segment_load_indexes(seg, log->dirfd, log->config.index_interval_bytes);
    if (err != 0) {
        return err;
    }
    const struct time_index_entry *te = time_index_lookup(&seg->tidx, timestamp);
    const struct offset_index_entry *oe =
        offset_index_lookup(&seg->oidx, te != NULL ? te->relative_offset : 0);
    uint64_t pos = oe != NULL ? oe->position : 0;
    uint8_t head[BATCH_HEADER_BYTES];
    while (pos + BATCH_HEADER_BYTES <= seg->size) {
        struct batch_header h;
        err = read_sync(log, seg, pos, head, sizeof(head));
        if (err != 0) {
            return err;
        }
        batch_header_decode(head, sizeof(head), &h);
        if (h.max_timestamp >= timestamp) {
            size_t total = batch_total_bytes(&h);
            uint8_t *whole = malloc(total);
            if (whole == NULL) {
                return -ENOMEM;
            }
            err = read_sync(log, seg, pos, whole, total);
            if (err == 0) {
                *offset = offset_in_batch(whole, total, &h, timestamp, found_ts);
            }
            free(whole);
            return err;
        }
        pos += batch_total_bytes(&h);
    }
    return -ENOENT;
}

/* ============================================================= retention */

int log_enforce_retention(struct log *log, int64_t now_ms)
{
    int removed = 0;
    uint64_t total = log_size_bytes(log);
    /* Only sealed segments that the recovery checkpoint has moved past go:
     * recovery trusts what lies below the checkpoint's segment, and needs
     * that segment to exist. */
    while (log->nsegs > 1 && log->segs[0]->sealed &&
           log->segs[1]->base_offset <= log->checkpoint_base) {
        struct segment *seg = log->segs[0];
        bool by_bytes = log->config.retention_bytes >= 0 &&
                        total - seg->size >= (uint64_t)log->config.retention_bytes;
        bool by_time = log->config.retention_ms >= 0 && seg->max_timestamp >= 0 &&
                       now_ms - seg->max_timestamp > log->config.retention_ms;
        if (!by_bytes && !by_time) {
            break;
        }
        memmove(log->segs, log->segs + 1, (log->nsegs - 1) * sizeof(*log->segs));
        log->nsegs--;
        log->start_offset = log->segs[0]->base_offset;
        total -= seg->size;
        LOG_INFO("storage",
                 "segment deleted by retention dir=%s base=%" PRId64 " bytes=%" PRIu64 " reason=%s",
                 log->dir, seg->base_offset, seg->size,
                 by_bytes ? "retention.bytes" : "retention.ms");
        segment_retire(log, seg, false);
        removed++;
    }
    return removed;
}

int log_delete_below(struct log *log, int64_t offset)
{
    int removed = 0;
    /* As retention: sealed segments past the checkpoint, never the active one. */
    while (log->nsegs > 1 && log->segs[0]->sealed && log->segs[1]->base_offset <= offset &&
           log->segs[1]->base_offset <= log->checkpoint_base) {
        struct segment *seg = log->segs[0];
        memmove(log->segs, log->segs + 1, (log->nsegs - 1) * sizeof(*log->segs));
        log->nsegs--;
        log->start_offset = log->segs[0]->base_offset;
        LOG_INFO("storage", "segment deleted below offset dir=%s base=%" PRId64 " below=%" PRId64,
                 log->dir, seg->base_offset, offset);
        segment_retire(log, seg, false);
        removed++;
    }
    SL_ASSERT(log->start_offset <= active_segment(log)->next_offset); /* the active one stays */
    return removed;
}

/* ================================================================== scan */

struct scan_wait {
    bool done;
    int status;
};

static void scan_read_done(void *opaque, int status)
{
    struct scan_wait *w = opaque;
    w->status = status;
    w->done = true;
}

int log_scan(struct log *log, int64_t from, log_scan_cb *cb, void *opaque)
{
    struct buf out;
    buf_init(&out, 4 * LOG_SCAN_READ_BYTES);
    int64_t offset = SL_MAX(from, log->start_offset);
    int64_t end = log_end_offset(log);
    int err = 0;
    while (err == 0 && offset < end) {
        buf_reset(&out);
        struct scan_wait w = {0};
        struct log_read rd = {.offset = offset,
                              .max_offset = end,
                              .max_bytes = LOG_SCAN_READ_BYTES,
                              .out = &out,
                              .cb = scan_read_done,
                              .opaque = &w};
        int rc = log_read(log, &rd);
        if (rc == LOG_PENDING) {
            while (!w.done) {
                ev_run(log->shard->loop, EVRUN_ONCE);
            }
            rc = w.status;
        }
        if (rc <= 0) {
            err = rc < 0 ? rc : -EUCLEAN; /* nothing below the end: the log lies */
            break;
        }
        size_t pos = 0;
        while (err == 0 && pos < out.len) {
            struct batch_header h;
            if (batch_header_decode(out.data + pos, out.len - pos, &h) != 0 ||
                batch_total_bytes(&h) > out.len - pos) {
                err = -EUCLEAN; /* reads hand out whole batches only */
                break;
            }
            size_t n = batch_total_bytes(&h);
            if (batch_last_offset(&h) >= offset) {
                err = cb(opaque, out.data + pos, n, &h);
            }
            offset = batch_last_offset(&h) + 1;
            pos += n;
        }
    }
    buf_deinit(&out);
    return err;
}

int64_t log_active_base_offset(const struct log *log)
{
    return active_segment(log)->base_offset;
}

const char *log_dir(const struct log *log)
{
    return log->dir;
}

/* ================================================================= state */

int64_t log_start_offset(const struct log *log)
{
    return log->start_offset;
}

int64_t log_end_offset(const struct log *log)
{
    return active_segment(log)->next_offset;
}

int64_t log_durable_offset(const struct log *log)
{
    return log->durable_offset;
}

int64_t log_flushed_offset(const struct log *log)
{
    return log->flushed_offset;
}

uint64_t log_size_bytes(const struct log *log)
{
    uint64_t total = 0;
    for (unsigned i = 0; i < log->nsegs; i++) {
        total += log->segs[i]->size;
    }
    return total;
}

unsigned log_segment_count(const struct log *log)
{
    return log->nsegs;
}

int log_error(const struct log *log)
{
    return log->error != 0 ? log->error : (log->needs_repair ? -EUCLEAN : 0);
}

bool log_needs_repair(const struct log *log)
{
    return log->needs_repair;
}

const struct log_config *log_config_of(const struct log *log)
{
    return &log->config;
}

/*
 * Refuses settings the log cannot honour: sizes the 32-bit positions cannot
 * address, zero intervals, and a largest batch the shard's buffers could
 * never hold (appends of it would be refused as "retriable" forever).
 */
static int config_check(const struct log_shard *shard, const struct log_config *c)
{
    size_t buffer = pool_buffer_bytes(shard->pool);
    uint64_t batch_room = (uint64_t)SL_MIN(FLUSH_IOV_MAX - 2, pool_count(shard->pool) / 2) * buffer;
    if (c->segment_bytes < 4096 || c->segment_bytes > SEGMENT_BYTES_MAX ||
        c->index_interval_bytes == 0 || c->pending_appends_max == 0 ||
        c->write_max_bytes < BLOCK_BYTES || c->max_message_bytes < BATCH_HEADER_BYTES ||
        c->max_message_bytes > batch_room || c->flush_interval_ms <= 0 ||
        c->checkpoint_interval_ms <= 0 || c->checkpoint_bytes == 0 ||
        c->retention_check_interval_ms <= 0 || c->segment_ms <= 0) {
        return -EINVAL;
    }
    return 0;
}

int log_set_config(struct log *log, const struct log_config *config)
{
    int err = config_check(log->shard, config);
    if (err != 0) {
        return err;
    }
    /* The storage mode and the pending bound are fixed for the log's life. */
    enum storage_io io = log->config.io;
    uint32_t pending_max = log->config.pending_appends_max;
    log->config = *config;
    log->config.io = io;
    log->config.pending_appends_max = pending_max;
    timer_stop(log); /* its period follows flush.interval.ms and the checkpoint */
    timer_start(log);
    return 0;
}

/* ============================================================ open, close */

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a;
    int64_t y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Base offsets of the segments in the directory, sorted. */
static int list_segments(int dirfd, int64_t **out, unsigned *count)
{
    int fd = dup(dirfd);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (d == NULL) {
        int err = -errno;
        if (fd >= 0) {
            close(fd);
        }
        return err;
    }
    int64_t *bases = NULL;
    unsigned n = 0;
    unsigned cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        int64_t base;
        if (segment_parse_name(e->d_name, &base) != 0) {
            continue;
        }
        if (n == cap) {
            cap = cap == 0 ? 64 : cap * 2;
            int64_t *grown = realloc(bases, cap * sizeof(*bases));
            if (grown == NULL) {
                free(bases);
                closedir(d);
                return -ENOMEM;
            }
            bases = grown;
        }
        bases[n++] = base;
    }
    closedir(d);
    if (n > 0) {
        qsort(bases, n, sizeof(*bases), cmp_i64);
    }
    *out = bases;
    *count = n;
    return 0;
}

static int sync_fd(int fd)
{
    return fdatasync(fd) == 0 ? 0 : -errno;
}

/* Trims a segment's file to its proven size and syncs it. */
static int truncate_file(struct log *log, struct segment *seg)
{
    char name[SEGMENT_NAME_BYTES];
    segment_name(name, seg->base_offset, "log");
    int fd = openat(log->dirfd, name, O_WRONLY | O_CLOEXEC);
    if (fd < 0) {
        return -errno;
    }
    int err = ftruncate(fd, (off_t)seg->size) == 0 ? sync_fd(fd) : -errno;
    close(fd);
    return err;
}

/* Rewrites a segment's index files from memory, synchronously. */
static int write_indexes_sync(struct log *log, struct segment *seg)
{
    static const char *const exts[] = {"index", "timeindex"};
    size_t osize = (size_t)seg->oidx.count * OFFSET_INDEX_ENTRY_BYTES;
    size_t tsize = (size_t)seg->tidx.count * TIME_INDEX_ENTRY_BYTES;
    uint8_t *p = malloc(osize + tsize + 1);
    if (p == NULL) {
        return -ENOMEM;
    }
    offset_index_encode(&seg->oidx, 0, p);
    time_index_encode(&seg->tidx, 0, p + osize);
    const uint8_t *data[] = {p, p + osize};
    size_t sizes[] = {osize, tsize};
    int err = 0;
    for (int i = 0; i < 2 && err == 0; i++) {
        char name[SEGMENT_NAME_BYTES];
        segment_name(name, seg->base_offset, exts[i]);
        int fd = openat(log->dirfd, name, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0) {
            err = -errno;
            break;
        }
        if (pwrite(fd, data[i], sizes[i], 0) != (ssize_t)sizes[i] ||
            ftruncate(fd, (off_t)sizes[i]) != 0) {
            err = errno != 0 ? -errno : -EIO;
        } else {
            err = sync_fd(fd);
        }
        close(fd);
    }
    free(p);
    seg->index_persisted = seg->oidx.count;
    seg->timeindex_persisted = seg->tidx.count;
    return err;
}

/* Where recovery starts in the segment trusted up to trust_pos: its last
 * index entry below that position (the index files were synced up to it). */
static void trust_indexes(struct log *log, struct segment *seg, uint64_t trust_pos, uint64_t *from,
                          int64_t *expected)
{
    static const char *const exts[] = {"index", "timeindex"};
    *from = 0;
    *expected = seg->base_offset;
    for (int i = 0; i < 2; i++) {
        char name[SEGMENT_NAME_BYTES];
        segment_name(name, seg->base_offset, exts[i]);
        int fd = openat(log->dirfd, name, O_RDONLY | O_CLOEXEC);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) != 0) {
            if (fd >= 0) {
                close(fd);
            }
            return;
        }
        uint8_t *data = malloc((size_t)st.st_size + 1);
        ssize_t got = data != NULL ? pread(fd, data, (size_t)st.st_size, 0) : -1;
        close(fd);
        if (got > 0 && i == 0) {
            uint32_t limit = (uint32_t)SL_MIN(trust_pos, seg->size);
            if (offset_index_decode(&seg->oidx, data, (size_t)got, limit) > 0) {
                const struct offset_index_entry *e = &seg->oidx.entries[seg->oidx.count - 1];
                *from = e->position;
                *expected = seg->base_offset + e->relative_offset;
                seg->index_mark = e->position;
            }
        } else if (got > 0 && i == 1) {
            uint32_t limit = (uint32_t)(*expected - seg->base_offset);
            if (time_index_decode(&seg->tidx, data, (size_t)got, limit) > 0) {
                const struct time_index_entry *t = &seg->tidx.entries[seg->tidx.count - 1];
                seg->max_timestamp = t->timestamp;
                seg->max_timestamp_offset = seg->base_offset + t->relative_offset;
                seg->time_mark = *from;
            }
        }
        free(data);
    }
}

/*
 * Loads the segments and proves the log: see the file comment. Segments after
 * a torn tail are deleted; after corruption they are left alone on disk.
 */
static int recover(struct log *log, const int64_t *bases, unsigned n, bool clean,
                   int64_t trust_base, uint64_t trust_pos)
{
    if (clean) {
        trust_base = bases[n - 1];
        trust_pos = UINT64_MAX;
    }
    for (unsigned i = 0; i < n; i++) {
        struct segment *seg = segment_alloc(bases[i], 2);
        if (seg == NULL || segments_push(log, seg) != 0) {
            segment_free(seg);
            return -ENOMEM;
        }
        int err = segment_stat_sealed(seg, log->dirfd);
        if (err != 0) {
            return err;
        }
        uint64_t file_size = seg->size;
        seg->oidx.max = index_max_entries(&log->config, file_size);
        seg->tidx.max = seg->oidx.max * 2 + 1; /* as segment_alloc */
        bool last = i == n - 1;
        seg->next_offset = last ? seg->base_offset : bases[i + 1];
        if (!last && bases[i] < trust_base) {
            seg->sealed = true; /* indexes load on first use */
            continue;
        }
        seg->max_timestamp = -1;
        uint64_t from = 0;
        int64_t expected = seg->base_offset;
        if (bases[i] == trust_base) {
            trust_indexes(log, seg, trust_pos, &from, &expected);
        }
        struct segment_scan scan;
        err =
            segment_scan(seg, log->dirfd, from, expected, log->config.index_interval_bytes, &scan);
        if (err != 0) {
            return err;
        }
        seg->indexes_loaded = true;
        /* Everything below `known` is on disk for sure: a scan that stops
         * before it found corruption, whatever stopped it (a bad CRC, zeros, a
         * short file), and must not cut acknowledged data away. */
        uint64_t known = bases[i] < trust_base
                             ? file_size
                             : (bases[i] == trust_base ? SL_MIN(trust_pos, file_size) : 0);
        /* A rolled segment is whole when its batches run up to the next one's
         * base; zeros after them are preallocation the crash left unsealed. */
        bool whole = last ? scan.status == 0 : scan.status == 0 && scan.next_offset == bases[i + 1];
        if (whole && scan.valid_end >= known) {
            if (!last) {
                segment_seal_time_index(seg);
                seg->written = seg->flushed = seg->preallocated = seg->size;
                seg->sealed = true;
                err = seg->size != file_size ? truncate_file(log, seg) : 0;
                if (err == 0) {
                    err = write_indexes_sync(log, seg);
                }
                if (err != 0) {
                    return err;
                }
            }
            continue;
        }
        if (scan.valid_end < known) {
            LOG_ERROR("storage",
                      "corruption below the flushed point: log needs repair dir=%s segment=%" PRId64
                      " position=%" PRIu64 " why=%s",
                      log->dir, seg->base_offset, scan.valid_end,
                      scan.why ? scan.why : "no batch where one was expected");
            log->needs_repair = true;
            seg->written = seg->flushed = seg->preallocated = seg->size;
            seg->sealed = true;
            return 0;
        }
        LOG_WARN("storage",
                 "torn tail truncated dir=%s segment=%" PRId64 " position=%" PRIu64
                 " file_bytes=%" PRIu64 " why=%s later_segments_removed=%u",
                 log->dir, seg->base_offset, scan.valid_end, file_size,
                 scan.why ? scan.why : "short", n - 1 - i);
        for (unsigned j = i + 1; j < n; j++) {
            static const char *const exts[] = {"log", "index", "timeindex"};
            for (size_t k = 0; k < SL_ARRAY_LEN(exts); k++) {
                char name[SEGMENT_NAME_BYTES];
                segment_name(name, bases[j], exts[k]);
                unlinkat(log->dirfd, name, 0);
            }
        }
        return fsync(log->dirfd) == 0 ? 0 : -errno;
    }
    return 0;
}

/* Makes the last segment the active one: files open, exact size on disk, its
 * partial last block in memory for the next write to extend. */
static int activate(struct log *log)
{
    struct segment *seg = active_segment(log);
    int err = segment_open_active(seg, log->dirfd, log->config.io == STORAGE_IO_DIRECT);
    if (err != 0) {
        return err;
    }
    struct stat st;
    if (fstat(seg->write_fd, &st) != 0) {
        return -errno;
    }
    /* Cut what follows the proven end (a torn tail, preallocated zeros), so
     * that no stale batch past it can ever be read back as valid; and sync
     * even when nothing was cut: bytes past the checkpoint may have been
     * written but never synced, and from here on they count as flushed. */
    if ((uint64_t)st.st_size != seg->size && ftruncate(seg->write_fd, (off_t)seg->size) != 0) {
        return -errno;
    }
    err = sync_fd(seg->write_fd);
    if (err != 0) {
        return err;
    }
    if (ftruncate(seg->index_fd, 0) != 0 || ftruncate(seg->timeindex_fd, 0) != 0) {
        return -errno; /* rewritten from memory at the next checkpoint */
    }
    seg->index_persisted = seg->timeindex_persisted = 0;
    seg->written = seg->flushed = seg->preallocated = seg->size;
    seg->written_next_offset = seg->next_offset;
    seg->written_max_timestamp = seg->max_timestamp;
    seg->indexes_loaded = true;
    seg->created_ms = time_wall_ms();
    uint32_t partial = (uint32_t)(seg->size % BLOCK_BYTES);
    if (partial != 0) {
        /* The next write rewrites this block whole: keep its bytes aside. */
        seg->tail_block = aligned_alloc(BLOCK_BYTES, BLOCK_BYTES);
        if (seg->tail_block == NULL) {
            return -ENOMEM;
        }
        int fd = segment_read_fd(seg, log->dirfd);
        if (fd < 0 ||
            pread(fd, seg->tail_block, partial, (off_t)(seg->size - partial)) != (ssize_t)partial) {
            return fd < 0 ? fd : -EIO;
        }
    }
    return 0;
}

static int open_dir(const char *dir)
{
    char path[4096];
    if (snprintf(path, sizeof(path), "%s", dir) >= (int)sizeof(path)) {
        return -ENAMETOOLONG;
    }
    for (char *p = path + 1; *p != '\0'; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(path, 0755) != 0 && errno != EEXIST) {
                return -errno;
            }
            *p = '/';
        }
    }
    if (mkdir(path, 0755) != 0 && errno != EEXIST) {
        return -errno;
    }
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

static int load(struct log *log)
{
    int64_t *bases = NULL;
    unsigned n = 0;
    int err = list_segments(log->dirfd, &bases, &n);
    if (err != 0) {
        return err;
    }
    bool clean = faccessat(log->dirfd, CLEAN_NAME, F_OK, 0) == 0;
    int64_t trust_base = n > 0 ? bases[0] : 0;
    uint64_t trust_pos = 0;
    uint8_t cp[CHECKPOINT_BYTES];
    if (pread(log->checkpoint_fd, cp, sizeof(cp), 0) == (ssize_t)sizeof(cp) &&
        checkpoint_decode(cp, &trust_base, &trust_pos) == 0) {
        log->checkpoint_base = trust_base;
        log->checkpoint_pos = trust_pos;
    } else if (n > 0 && !clean) {
        LOG_WARN("storage", "no valid recovery checkpoint: scanning every segment dir=%s",
                 log->dir);
        trust_base = bases[0];
    }
    if (n == 0) {
        struct segment *seg = segment_alloc(0, index_max_entries(&log->config, 0));
        err = seg == NULL ? -ENOMEM : segments_push(log, seg);
        if (err != 0) {
            segment_free(seg);
        }
    } else {
        err = recover(log, bases, n, clean, trust_base, trust_pos);
    }
    free(bases);
    if (err == 0 && !log->needs_repair) {
        err = activate(log);
    }
    if (err == 0 && clean) {
        /* From here on a crash must not find the marker. */
        if (unlinkat(log->dirfd, CLEAN_NAME, 0) != 0 || fsync(log->dirfd) != 0) {
            err = -errno;
        }
    }
    return err;
}

struct log *log_open(struct log_shard *shard, const char *dir, const struct log_config *config,
                     int *err)
{
    struct log *log = calloc(1, sizeof(*log));
    if (log == NULL) {
        *err = -ENOMEM;
        return NULL;
    }
    log->shard = shard;
    log->config = *config;
    log->dirfd = -1;
    log->checkpoint_fd = -1;
    log->checkpoint_base = -1;
    log->dir = strdup(dir);
    log->pending = calloc(SL_MAX(config->pending_appends_max, 1), sizeof(*log->pending));
    log->checkpoint_buf = aligned_alloc(BLOCK_BYTES, BLOCK_BYTES);
    ev_prepare_init(&log->prepare, on_prepare);
    ev_set_priority(&log->prepare, EV_MAXPRI); /* before the ring submits, same iteration */
    shard->logs++;
    if (log->dir == NULL || log->pending == NULL || log->checkpoint_buf == NULL) {
        *err = -ENOMEM;
        goto err;
    }
    *err = config_check(shard, config);
    if (*err != 0) {
        goto err;
    }
    log->dirfd = open_dir(dir);
    if (log->dirfd < 0) {
        *err = log->dirfd;
        goto err;
    }
    log->checkpoint_fd = openat(log->dirfd, CHECKPOINT_NAME, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (log->checkpoint_fd < 0) {
        *err = -errno;
        goto err;
    }
    *err = load(log);
    if (*err != 0) {
        goto err;
    }
    log->start_offset = log->segs[0]->base_offset;
    log->durable_offset = log->flushed_offset = log_end_offset(log);
    log->last_sync_ms = log->last_checkpoint_ms = log->last_retention_ms =
        (int64_t)(ev_now(shard->loop) * 1000);
    timer_start(log);
    LOG_INFO("storage",
             "log opened dir=%s segments=%u start=%" PRId64 " end=%" PRId64 " bytes=%" PRIu64 "%s",
             dir, log->nsegs, log->start_offset, log_end_offset(log), log_size_bytes(log),
             log->needs_repair ? " needs_repair=1" : "");
    return log;
err:
    LOG_ERROR("storage", "log open failed dir=%s err=%s", dir, strerror(-*err));
    log_abandon(log);
    return NULL;
}

static void log_free(struct log *log)
{
    timer_stop(log);
    if (ev_is_active(&log->prepare)) {
        ev_prepare_stop(log->shard->loop, &log->prepare);
    }
    for (unsigned i = 0; i < log->nsegs; i++) {
        segment_release_chunks(log->shard, log->segs[i]);
        segment_free(log->segs[i]);
    }
    if (log->dirfd >= 0) {
        close(log->dirfd);
    }
    if (log->checkpoint_fd >= 0) {
        close(log->checkpoint_fd);
    }
    log->shard->logs--;
    free(log->segs);
    free(log->pending);
    free(log->index_buf);
    free(log->checkpoint_buf);
    free(log->cut_block);
    free(log->dir);
    free(log);
}

void log_abandon(struct log *log)
{
    if (log == NULL) {
        return;
    }
    /* Operations in flight point at this log: let them land first. */
    while (log->step != STEP_IDLE || log->syncs_count > 0 || log->reads > 0 || log->unlinks > 0) {
        ring_drain(log->shard->ring);
    }
    log_free(log);
}

/* The final, blocking part of a clean close: exact size, indexes, checkpoint
 * and marker, each synced before the next. */
static int close_files(struct log *log)
{
    struct segment *seg = active_segment(log);
    segment_seal_time_index(seg);
    int err = ftruncate(seg->write_fd, (off_t)seg->size) == 0 ? sync_fd(seg->write_fd) : -errno;
    if (err == 0) {
        err = write_indexes_sync(log, seg);
    }
    if (err == 0) {
        checkpoint_encode(log->checkpoint_buf, seg->base_offset, seg->size);
        err =
            pwrite(log->checkpoint_fd, log->checkpoint_buf, CHECKPOINT_BYTES, 0) == CHECKPOINT_BYTES
                ? sync_fd(log->checkpoint_fd)
                : -EIO;
    }
    if (err == 0) {
        int fd = openat(log->dirfd, CLEAN_NAME, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        err = fd < 0 ? -errno : 0;
        if (fd >= 0) {
            close(fd);
        }
        if (err == 0 && fsync(log->dirfd) != 0) {
            err = -errno;
        }
    }
    return err;
}

int log_close(struct log *log)
{
    if (log == NULL) {
        return 0;
    }
    timer_stop(log);
    log->sync_wanted = log->config.flush_policy != FLUSH_ALWAYS;
    for (;;) {
        if (ev_is_active(&log->prepare)) {
            ev_prepare_stop(log->shard->loop, &log->prepare);
        }
        if (log->step == STEP_IDLE && log->syncs_count == 0 && log->reads == 0 &&
            log->unlinks == 0 && (log->error != 0 || log->needs_repair || !flush_work_left(log))) {
            break;
        }
        flush_kick(log);
        if (log->step == STEP_IDLE && log->reads == 0 && ring_in_flight(log->shard->ring) == 0 &&
            log->error == 0 && flush_work_left(log)) {
            log_fail(log, -ENOMEM, "close"); /* a step cannot start: give up cleanly */
            break;
        }
        ring_drain(log->shard->ring);
    }
    int err = log->error;
    if (err == 0 && !log->needs_repair) {
        err = close_files(log);
        if (err != 0) {
            LOG_ERROR("storage", "clean close failed dir=%s err=%s", log->dir, strerror(-err));
        }
    }
    SL_ASSERT(log->pending_count == 0 || err != 0); /* every append was answered */
    pending_fail(log, err != 0 ? err : -ESHUTDOWN);
    log_free(log);
    return err;
}
