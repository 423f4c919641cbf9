/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The single node's __cluster_metadata log: replay at open, then changes
 * appended one batch each and applied in log order once durable. Appends on
 * one log complete in order, so the image sees changes in offset order, as a
 * replay would.
 */
#include "broker/metalog.h"

#include <errno.h>
#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/assert.h"
#include "common/clock.h"
#include "common/log.h"
#include "proto/batch.h"

struct pending {
    struct metalog *ml;
    struct pending *next;
    metalog_done_cb *done;
    void *opaque;
    size_t len;
    uint8_t batch[]; /* as appended: applied from here once durable */
};

struct metalog {
    struct log *log;
    struct ev_loop *loop;
    struct md_image *image;
    metalog_applied_cb *applied;
    void *opaque;
    unsigned pending_count;
};

void metalog_txn_init(struct metalog_txn *txn)
{
    buf_init(&txn->bytes, METALOG_TXN_BYTES_MAX);
    txn->count = 0;
}

void metalog_txn_deinit(struct metalog_txn *txn)
{
    buf_deinit(&txn->bytes);
    txn->count = 0;
}

int metalog_txn_mark(struct metalog_txn *txn)
{
    if (txn->count == METALOG_TXN_RECORDS_MAX) {
        return -ENOBUFS;
    }
    txn->ends[txn->count++] = (uint32_t)txn->bytes.len;
    return 0;
}

/* ------------------------------------------------------------ replay */

/* One stored batch of the log, applied to the image. */
static int replay_batch(void *opaque, const uint8_t *batch, size_t len,
                        const struct batch_header *h)
{
    struct metalog *ml = opaque;
    int rc = md_apply_batch(ml->image, batch, len);
    if (rc < 0) {
        LOG_ERROR("metalog", "cannot apply a metadata batch offset=%lld err=%s",
                  (long long)h->base_offset, strerror(-rc));
        return rc == -ENOMEM ? rc : -EUCLEAN;
    }
    if (ml->applied != NULL) {
        ml->applied(ml->opaque, 1);
    }
    return 0;
}

static int replay(struct metalog *ml)
{
    return log_scan(ml->log, log_start_offset(ml->log), replay_batch, ml);
}

/* ------------------------------------------------------------ compact */

static void compact_done(void *opaque, int status)
{
    int *result = opaque;
    *result = status;
}

/* Commits txn and runs the loop until it is applied (start-up only). */
static int commit_wait(struct metalog *ml, struct metalog_txn *txn)
{
    int result = 1;
    int err = metalog_commit(ml, txn, compact_done, &result);
    while (err == 0 && result == 1) {
        ev_run(ml->loop, EVRUN_ONCE);
    }
    buf_reset(&txn->bytes);
    txn->count = 0;
    return err != 0 ? err : result;
}

/* Puts one record into txn, committing txn first when it is full. */
static int put_or_flush(struct metalog *ml, struct metalog_txn *txn, const struct md_topic *t,
                        int k)
{
    for (int attempt = 0;; attempt++) {
        size_t mark = txn->bytes.len;
        int err = k < 0 ? md_put_topic(&txn->bytes, t->name, strlen(t->name), t->id, t->partitions)
                        : md_put_config(&txn->bytes, t->name, strlen(t->name), t->configs[k].name,
                                        strlen(t->configs[k].name), t->configs[k].value,
                                        (int32_t)strlen(t->configs[k].value));
        err = err != 0 ? err : metalog_txn_mark(txn);
        if (err == 0 || attempt > 0 || txn->count == 0) {
            return err;
        }
        txn->bytes.len = mark; /* full: commit what is there, then this record again */
        err = commit_wait(ml, txn);
        if (err != 0) {
            return err;
        }
    }
}

/*
 * Bounds the metadata log: the whole image is appended again (a topic record
 * and its overrides per topic, the producer-id watermark), then the segments
 * wholly below where that began are deleted. A replay then sees the tail of
 * the old history followed by the full state; applying is idempotent (a
 * record that does not fit is skipped), so it builds the same image. A crash
 * before the deletion leaves the full history plus a redundant copy.
 */
static int compact(struct metalog *ml)
{
    int64_t from = log_end_offset(ml->log);
    uint64_t before = log_size_bytes(ml->log);
    struct metalog_txn txn;
    metalog_txn_init(&txn);
    int err = 0;
    const struct md_image *image = ml->image;
    for (unsigned i = 0; err == 0 && i < image->topic_count; i++) {
        const struct md_topic *t = image->topics[i];
        for (int k = -1; err == 0 && k < (int)t->config_count; k++) {
            err = put_or_flush(ml, &txn, t, k);
        }
    }
    if (err == 0 && txn.count > 0) {
        err = commit_wait(ml, &txn);
    }
    if (err == 0 && image->next_producer_id > 0) {
        err = md_put_producer_ids(&txn.bytes, 0, image->next_producer_id);
        err = err != 0 ? err : metalog_txn_mark(&txn);
        err = err != 0 ? err : commit_wait(ml, &txn);
    }
    metalog_txn_deinit(&txn);
    if (err != 0) {
        return err;
    }
    int removed = log_delete_below(ml->log, from);
    LOG_INFO("metalog", "metadata compacted topics=%u bytes_before=%llu segments_deleted=%d",
             image->topic_count, (unsigned long long)before, removed);
    return 0;
}

/* ------------------------------------------------------- open, close */

struct metalog *metalog_open(struct ev_loop *loop, struct log_shard *shard, const char *dir,
                             struct md_image *image, metalog_applied_cb *applied, void *opaque,
                             int *err)
{
    struct metalog *ml = calloc(1, sizeof(*ml));
    if (ml == NULL) {
        *err = -ENOMEM;
        return NULL;
    }
    *ml = (struct metalog){.loop = loop, .image = image, .applied = applied, .opaque = opaque};
    /* The metadata is never dropped by retention, and every change is
     * durable before it is applied, whatever the data partitions do. */
    struct log_config lc;
    log_config_default(&lc);
    lc.retention_bytes = -1;
    lc.retention_ms = -1;
    lc.flush_policy = FLUSH_ALWAYS;
    lc.segment_bytes = METALOG_SEGMENT_BYTES;
    lc.max_message_bytes = METALOG_TXN_BYTES_MAX + 4096;
    char path[1400];
    snprintf(path, sizeof(path), "%s/%s", dir, METALOG_DIR_NAME);
    ml->log = log_open(shard, path, &lc, err);
    if (ml->log == NULL) {
        free(ml);
        return NULL;
    }
    uint64_t t0 = time_mono_ns();
    *err = log_needs_repair(ml->log) ? -EUCLEAN : replay(ml);
    if (*err != 0) {
        LOG_ERROR("metalog", "cannot replay the metadata log dir=%s err=%s", path, strerror(-*err));
        log_close(ml->log);
        free(ml);
        return NULL;
    }
    LOG_INFO("metalog", "metadata replayed dir=%s records=%llu skipped=%llu topics=%u ms=%.1f",
             path, (unsigned long long)image->applied, (unsigned long long)image->skipped,
             image->topic_count, (double)(time_mono_ns() - t0) / 1e6);
    if (log_size_bytes(ml->log) > METALOG_COMPACT_BYTES) {
        *err = compact(ml);
        if (*err != 0) {
            LOG_WARN("metalog", "metadata not compacted: the full history stays err=%s",
                     strerror(-*err));
            *err = 0;
        }
    }
    return ml;
}

uint64_t metalog_size_bytes(const struct metalog *ml)
{
    return log_size_bytes(ml->log);
}

int metalog_close(struct metalog *ml)
{
    if (ml == NULL) {
        return 0;
    }
    int err = log_close(ml->log);      /* pending changes complete (and apply) first */
    SL_ASSERT(ml->pending_count == 0); /* closing drains every append */
    free(ml);
    return err;
}

/* ------------------------------------------------------------ commit */

static void commit_done(void *opaque, int status, int64_t base_offset)
{
    struct pending *p = opaque;
    struct metalog *ml = p->ml;
    (void)base_offset;
    ml->pending_count--;
    if (status == 0) {
        int rc = md_apply_batch(ml->image, p->batch, p->len);
        /* The batch was built by metalog_commit from md_put_*() records. */
        SL_ASSERT(rc >= 0 || rc == -ENOMEM);
        status = rc < 0 ? rc : 0;
        if (rc < 0) {
            LOG_ERROR("metalog", "a durable change could not be applied err=%s: restart to apply",
                      strerror(-rc));
        } else if (ml->applied != NULL) {
            ml->applied(ml->opaque, 0);
        }
    } else {
        LOG_ERROR("metalog", "metadata change failed err=%s", strerror(-status));
    }
    if (p->done != NULL) {
        p->done(p->opaque, status);
    }
    free(p);
}

int metalog_commit(struct metalog *ml, const struct metalog_txn *txn, metalog_done_cb *done,
                   void *opaque)
{
    if (txn->count == 0) {
        return -EINVAL;
    }
    if (ml->pending_count >= METALOG_PENDING_MAX) {
        return -ENOBUFS;
    }
    struct batch_record recs[METALOG_TXN_RECORDS_MAX];
    int64_t now = time_wall_ms();
    uint32_t start = 0;
    for (unsigned i = 0; i < txn->count; i++) {
        recs[i] = (struct batch_record){.timestamp = now,
                                        .key_len = -1,
                                        .value = txn->bytes.data + start,
                                        .value_len = (int32_t)(txn->ends[i] - start)};
        start = txn->ends[i];
    }
    struct buf out;
    buf_init(&out, METALOG_TXN_BYTES_MAX + 4096);
    struct batch_meta meta = {.producer_id = -1, .producer_epoch = -1, .base_sequence = -1};
    int err = batch_encode(&out, &meta, recs, txn->count);
    struct pending *p = err == 0 ? malloc(sizeof(*p) + out.len) : NULL;
    if (p == NULL) {
        buf_deinit(&out);
        return err != 0 ? -EMSGSIZE : -ENOMEM;
    }
    *p = (struct pending){.ml = ml, .done = done, .opaque = opaque, .len = out.len};
    memcpy(p->batch, out.data, out.len);
    buf_deinit(&out);
    err = log_append(ml->log, p->batch, p->len, 0, commit_done, p, NULL);
    if (err != 0) {
        free(p);
        return err;
    }
    ml->pending_count++;
    return 0;
}
