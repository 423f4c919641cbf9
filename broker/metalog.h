/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The __cluster_metadata log of a single node: the storage log in
 * <log.dirs>/__cluster_metadata-0 that holds the metadata records
 * (replication/metadata.h), replayed into the image at start, appended to by
 * the broker whenever metadata changes. A change is applied to the image only
 * once its batch is durable (flush.policy=always whatever the broker's
 * default), so what the broker says exists survives a crash.
 *
 * The controller quorum will replicate the same records; until then this is
 * the quorum of one that DESIGN.md describes, without the consensus.
 *
 * The log stays bounded: at start, past METALOG_COMPACT_BYTES, the image is
 * appended again and the segments before it deleted (see compact()).
 */
#ifndef SL_BROKER_METALOG_H
#define SL_BROKER_METALOG_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "replication/metadata.h"
#include "storage/log.h"

#define METALOG_TOPIC    "__cluster_metadata"
#define METALOG_DIR_NAME METALOG_TOPIC "-0"
/* Records in one change at most (a topic and its overrides). */
#define METALOG_TXN_RECORDS_MAX 64
/* Bytes of one change at most: well inside any batch the log accepts. */
#define METALOG_TXN_BYTES_MAX (256u << 10)
/* Segments of the log: small, so that compaction can drop old ones. */
#define METALOG_SEGMENT_BYTES (1u << 20)
/* Past this at start, the image is written again and older segments go. */
#define METALOG_COMPACT_BYTES (4u * METALOG_SEGMENT_BYTES)
/* Changes waiting for their sync at most; more are refused with -ENOBUFS. */
#define METALOG_PENDING_MAX 1024

struct metalog;

/* One change being put together: records are md_put_*() into bytes, each
 * followed by metalog_txn_mark(). */
struct metalog_txn {
    struct buf bytes;
    uint32_t ends[METALOG_TXN_RECORDS_MAX];
    unsigned count;
};

void metalog_txn_init(struct metalog_txn *txn);
void metalog_txn_deinit(struct metalog_txn *txn);
/* Ends the record just put. -ENOBUFS past METALOG_TXN_RECORDS_MAX. */
int metalog_txn_mark(struct metalog_txn *txn);

/* Called after each change is applied to the image (including at replay,
 * with replay = 1), before the change's own callback. */
typedef void metalog_applied_cb(void *opaque, int replay);
/* A change's outcome: 0 applied, or -errno (nothing applied). */
typedef void metalog_done_cb(void *opaque, int status);

/*
 * Opens the log under dir, creating it, and replays it into image (borrowed;
 * must outlive the metalog), calling applied for each batch. Runs the loop
 * until the replay's reads end: call it at start-up, before serving. NULL on
 * failure with *err: the storage's error, or -EUCLEAN when a record cannot be
 * applied (a log this version cannot read: the broker must not start on it).
 */
struct metalog *metalog_open(struct ev_loop *loop, struct log_shard *shard, const char *dir,
                             struct md_image *image, metalog_applied_cb *applied, void *opaque,
                             int *err);
/* Bytes the log holds on disk. */
uint64_t metalog_size_bytes(const struct metalog *ml);
/* Closes the log cleanly (pending changes finish first). NULL is a no-op. */
int metalog_close(struct metalog *ml);

/*
 * Appends a change (copied: txn may be reused at once). done (may be NULL)
 * fires once it is durable and applied, or failed. Returns 0, or without
 * calling back -ENOBUFS (too many pending, retriable), -EMSGSIZE or the log's
 * error.
 */
int metalog_commit(struct metalog *ml, const struct metalog_txn *txn, metalog_done_cb *done,
                   void *opaque);

#endif
