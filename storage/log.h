/* SPDX-License-Identifier: Apache-2.0 */
/*
 * One partition's segmented log: append with group commit, read by offset,
 * look up by timestamp, retention, crash recovery.
 *
 * A log lives in one directory, <log.dirs>/<topic>-<partition>/, and belongs to
 * one shard: every call is made from that shard's loop thread, and every
 * callback fires there. Files and formats are described in log.c, segment.c
 * and index.c; docs/storage.md is the operator's view.
 *
 * Offsets: log_start_offset <= durable_offset <= end_offset (the LEO). An
 * append is assigned its offsets at once; its callback fires once it is durable
 * under the partition's flush.policy:
 *   always    after the fdatasync that covers it (one per group commit),
 *   interval  after its write; fdatasync every flush.interval.ms,
 *   never     after its write; the OS decides when it reaches the disk.
 *
 * Errors: a failed write or fsync takes the log offline for writes: every
 * pending append fails with the error, later appends fail at once, and the
 * sync is never retried on the same data. ENOSPC (disk full) is different:
 * appends not yet durable fail with -ENOSPC, the log rolls back to its durable
 * end, and later appends are tried again, so writing resumes once space is free.
 */
#ifndef SL_STORAGE_LOG_H
#define SL_STORAGE_LOG_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "common/buf.h"

struct ev_loop;
struct ring;
struct log;
struct log_shard;

enum flush_policy {
    FLUSH_ALWAYS = 0,
    FLUSH_INTERVAL,
    FLUSH_NEVER,
};

enum storage_io {
    STORAGE_IO_DIRECT = 0,
    STORAGE_IO_BUFFERED,
};

struct log_config {
    uint64_t segment_bytes;         /* segment.bytes: roll when the next batch would pass it */
    int64_t segment_ms;             /* segment.ms: roll a non-empty segment this old */
    uint32_t index_interval_bytes;  /* index.interval.bytes */
    int64_t retention_bytes;        /* retention.bytes, -1 = unlimited */
    int64_t retention_ms;           /* retention.ms, -1 = unlimited */
    enum flush_policy flush_policy; /* flush.policy */
    int64_t flush_interval_ms;      /* flush.interval.ms (policy interval) */
    enum storage_io io;             /* storage.io */
    uint64_t preallocate_bytes;     /* log.preallocate.bytes: fallocate step */
    uint32_t max_message_bytes;     /* max.message.bytes: largest batch accepted */
    uint32_t pending_appends_max;   /* appends waiting for durability, per log */
    uint64_t write_max_bytes; /* storage.write.max.bytes: one write's backlog, cut at batches */
    int64_t checkpoint_interval_ms; /* log.checkpoint.interval.ms: flushed-point checkpoint */
    uint64_t
        checkpoint_bytes; /* log.checkpoint.bytes: also checkpoint after this much is flushed */
    int64_t retention_check_interval_ms; /* log.retention.check.interval.ms */
};

/* Kafka's defaults where Kafka has the setting. */
void log_config_default(struct log_config *config);
const char *flush_policy_name(enum flush_policy policy);
int flush_policy_parse(const char *name, enum flush_policy *out);
int storage_io_parse(const char *name, enum storage_io *out);

/* ----------------------------------------------------------- the shard
 *
 * What the logs of one shard share: the loop, the ring, and a pool of aligned
 * buffers that serve first as write buffers and then as the batch cache
 * (evicted oldest first when appends need room). memory_bytes bounds both.
 */
struct log_shard_config {
    size_t buffer_bytes; /* storage.buffer.bytes: one pool buffer, multiple of 4 KiB */
    size_t memory_bytes; /* storage.memory.bytes: the whole pool */
};

void log_shard_config_default(struct log_shard_config *config);
struct log_shard *log_shard_new(struct ev_loop *loop, struct ring *ring,
                                const struct log_shard_config *config, int *err);
/* Every log of the shard must be closed first. */
void log_shard_free(struct log_shard *shard);
struct ring *log_shard_ring(const struct log_shard *shard);
/* Bytes of pool memory now holding cached (written) batches. */
size_t log_shard_cached_bytes(const struct log_shard *shard);

/* --------------------------------------------------------- open, close */

/*
 * Opens (creating if needed) the log in dir and recovers it. -EINVAL refuses
 * a config with zero intervals, segment.bytes outside 4 KiB..2 GiB-1, or a
 * max.message.bytes larger than the shard's buffers can stage. This does
 * synchronous file I/O (directory listing, recovery scans): call it at
 * start-up or from a thread that may block. On failure returns NULL and sets
 * *err. config is copied.
 */
struct log *log_open(struct log_shard *shard, const char *dir, const struct log_config *config,
                     int *err);
/*
 * Finishes pending appends, writes the indexes, trims the active segment to
 * its end, writes the checkpoint and the clean-shutdown marker, and frees the
 * log. Blocks (drains the ring). Returns the first error met; the log is freed
 * either way. log_close(NULL) is a no-op.
 */
int log_close(struct log *log);
/* Frees the log without any I/O, as a crash would leave it (for tests). */
void log_abandon(struct log *log);

/* ------------------------------------------------------------- state */

int64_t log_start_offset(const struct log *log);
/* The next offset to be assigned (LEO). */
int64_t log_end_offset(const struct log *log);
/* Everything below this is durable under the flush policy (acknowledged). */
int64_t log_durable_offset(const struct log *log);
/* Everything below this is known to be on disk (covered by an fdatasync). */
int64_t log_flushed_offset(const struct log *log);
uint64_t log_size_bytes(const struct log *log);
unsigned log_segment_count(const struct log *log);
/* 0 while writable; else the error that took the log offline (-EIO, ...) or
 * -EUCLEAN when recovery found corruption below the flushed point. */
int log_error(const struct log *log);
/* True when recovery found corruption below the flushed point (the log serves
 * reads up to the corruption, refuses appends, and needs repair). */
bool log_needs_repair(const struct log *log);
const struct log_config *log_config_of(const struct log *log);
/* Replaces the topic-level settings (segment, retention, flush) on the fly;
 * storage.io and the pending bound stay as opened. -EINVAL refuses settings
 * the log cannot honour (see log_open), leaving the old ones in force. */
int log_set_config(struct log *log, const struct log_config *config);

/* ------------------------------------------------------------ append */

typedef void log_append_cb(void *opaque, int status, int64_t base_offset);

/*
 * Appends one RecordBatch v2. The batch is validated (BATCH_CHECK_FULL and
 * max.message.bytes), copied, given its offsets and leader_epoch; *base_offset
 * (if not NULL) receives its base offset. The caller's bytes are not kept.
 * Returns 0 (cb fires later with status 0 or -errno), or without calling back:
 *   -EBADMSG corrupt batch, -EMSGSIZE too large, -ENOBUFS no buffer or too
 *   many pending appends (retriable), -ENOSPC disk full (retriable), or the
 *   error that took the log offline.
 */
int log_append(struct log *log, const uint8_t *batch, size_t len, int32_t leader_epoch,
               log_append_cb *cb, void *opaque, int64_t *base_offset);

/*
 * The same for a batch the caller has just checked with batch_validate
 * (BATCH_CHECK_FULL, this log's max.message.bytes) and not changed since:
 * the bytes are not checked again.
 */
int log_append_validated(struct log *log, const uint8_t *batch, size_t len, int32_t leader_epoch,
                         log_append_cb *cb, void *opaque, int64_t *base_offset);

/*
 * The same for a batch its caller rebuilt from one that passed log_append's
 * checks, with records left out and their offset deltas kept (as compaction
 * leaves a batch): only its framing (length, magic, CRC) is checked, since
 * its offset deltas are no longer contiguous.
 */
int log_append_rewritten(struct log *log, const uint8_t *batch, size_t len, int32_t leader_epoch,
                         log_append_cb *cb, void *opaque, int64_t *base_offset);

/* ------------------------------------------------------------- reads */

#define LOG_PENDING (-EINPROGRESS)

typedef void log_read_cb(void *opaque, int status);

/*
 * A read: whole batches from the one holding `offset`, up to max_bytes (but at
 * least the first batch whole, as Kafka does), never a batch whose base offset
 * is >= max_offset (pass the high watermark, or log_end_offset). The batches
 * are appended to *out as stored, byte for byte. Caller-owned; valid until the
 * callback. Fields below "private" are the log's.
 */
struct log_read {
    int64_t offset;
    int64_t max_offset;
    size_t max_bytes;
    struct buf *out;
    log_read_cb *cb;
    void *opaque;
    /* private */
    struct log *log;
    struct segment *seg;
    size_t out_start; /* out->len when the read began */
    size_t kept;      /* bytes of accepted batches at out_start */
    size_t window;    /* bytes read but not yet parsed, after the kept ones */
    uint64_t pos;     /* file position of the first window byte */
    bool found;       /* the batch holding offset was reached */
    bool done;
    struct iovec iov;
};

/*
 * Starts a read. Returns the bytes appended when served at once (from memory),
 * LOG_PENDING when the callback will fire (status = bytes appended or -errno),
 * or -ERANGE (offset below the log start or above the end), -ENOBUFS (out is
 * full) without calling back. 0 means nothing to return (offset at the end).
 */
int log_read(struct log *log, struct log_read *req);

/* ---------------------------------------------------- offset for time */

typedef void log_time_cb(void *opaque, int status, int64_t offset, int64_t timestamp);

/*
 * Finds the first offset whose record timestamp is >= timestamp (Kafka's
 * ListOffsets by time). For compressed batches the answer is the first batch
 * whose largest timestamp is >= timestamp. status -ENOENT: no such record.
 * Runs synchronously and returns 0 with the result, or -errno.
 */
int log_offset_for_time(struct log *log, int64_t timestamp, int64_t *offset, int64_t *found_ts);

/* -------------------------------------------------------------- scan */

#define LOG_SCAN_READ_BYTES (1u << 20)

struct batch_header;
/* One stored batch (whole, as appended) of a scan; non-zero stops it. */
typedef int log_scan_cb(void *opaque, const uint8_t *batch, size_t len,
                        const struct batch_header *header);

/*
 * Calls cb for every batch from the one holding `from` (or the log start) to
 * the end, in offset order, reading LOG_SCAN_READ_BYTES at a time and running
 * the shard's loop until each read ends: for start-up replays only (the
 * loop's other watchers run meanwhile). Returns 0, cb's non-zero value, or a
 * read error.
 */
int log_scan(struct log *log, int64_t from, log_scan_cb *cb, void *opaque);
/* The base offset of the active segment (it changes when the log rolls). */
int64_t log_active_base_offset(const struct log *log);
/* The log's directory, as opened. */
const char *log_dir(const struct log *log);

/* --------------------------------------------------------- retention */

/*
 * Deletes whole segments, oldest first, beyond retention.bytes or older than
 * retention.ms (judged by their largest timestamp); never the active segment.
 * Returns the number of segments removed. Also called by the log's own timer.
 */
int log_enforce_retention(struct log *log, int64_t now_ms);

/*
 * Deletes whole segments whose every offset is below `offset` (sealed ones
 * only, as retention), moving the log start to the first kept segment. This
 * is how an owner that rewrote the live records of its log past `offset`
 * (compaction by rewrite) drops the old ones. Returns the segments removed.
 */
int log_delete_below(struct log *log, int64_t offset);

#endif
