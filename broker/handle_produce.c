/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Produce: the RecordBatch of every partition goes to the partition's log,
 * which validates and copies it and calls back once it is durable under the
 * flush policy. The response goes out when every append of the request has
 * answered (acks=1 and acks=-1 mean the same on one node; acks=0 answers
 * nothing, but the request is kept until its appends finish, since they
 * borrow its memory).
 */
#include <errno.h>
#include <string.h>

#include "broker/broker.h"
#include "broker/msgids.h"
#include "common/assert.h"
#include "common/bytes.h"
#include "common/clock.h"
#include "common/log.h"
#include "proto/batch.h"
#include "proto/errors.h"

/* Rebuilt zstd batches are recompressed at zstd's default level. */
#define DEDUP_ZSTD_LEVEL 3
/* Parked batches are tried again this often (and at once when an append
 * completes); a request without a timeout waits this long at most. */
#define PARKED_RETRY_S            0.005
#define PARKED_TIMEOUT_MS_DEFAULT 30000

struct produce {
    struct handling *h;
    struct kmsg_produce_response resp;
    unsigned pending; /* appends in flight, plus one while the handler runs */
};

struct produce_part {
    struct produce *pr;
    struct kmsg_produce_response_partition_produce_response *out;
    struct topic *topic;
    struct partition *partition;
    const uint8_t *batch; /* in the request's frame */
    size_t len;
    int64_t deadline_ms; /* parked: answered REQUEST_TIMED_OUT past this (monotonic) */
    struct produce_part *next_parked;
    bool checked; /* batch_validate ran: valid says how, hdr is the header */
    bool valid;
    struct batch_header hdr;
    /* An idempotent batch: its producer, to find its window entry again. */
    bool idempotent;
    int16_t epoch;
    int64_t producer_id;
    int32_t first_seq;
    /* Retries of this batch that arrived while it was not yet durable: they
     * are answered with its outcome. */
    struct produce_part *waiters;
    struct produce_part *next_waiter;
    /* A batch of msg-id duplicates only: answered once the log is durable
     * past wait_offset (what the originals may still be waiting for). */
    int64_t wait_offset;
    struct produce_part *next_durable_waiter;
    int64_t base_offset; /* as appended */
    bool remembers_ids;  /* the append's msg-ids are in the table */
};

static void produce_finish(struct produce *pr)
{
    if (--pr->pending > 0) {
        return;
    }
    struct handling *h = pr->h;
    const struct kmsg_produce_request *rq = h->req->handler_data;
    h->req->no_response = rq->acks == 0;
    handling_respond(h, &pr->resp);
}

/* After a durable append: a producer snapshot when the log rolled, so that a
 * restart replays at most the active segment. */
static void snapshot_on_roll(struct partition *partition)
{
    int64_t base = log_active_base_offset(partition->log);
    if (base == partition->snapshot_base) {
        return;
    }
    partition->snapshot_base = base;
    if (producers_count(partition->producers) > 0) {
        producers_snapshot(partition->producers, log_dir(partition->log),
                           log_end_offset(partition->log));
    }
}

/* After an append completes: msg-id duplicates waiting for durability are
 * answered once the log is durable past what they wait for; when an append
 * failed, those waiting on offsets it held fail with it. */
static void durable_waiters_run(struct partition *partition, int status)
{
    int64_t durable = log_durable_offset(partition->log);
    struct produce_part **link = &partition->durable_waiters;
    while (*link != NULL) {
        struct produce_part *w = *link;
        if (durable <= w->wait_offset && status == 0) {
            link = &w->next_durable_waiter;
            continue;
        }
        *link = w->next_durable_waiter;
        if (durable <= w->wait_offset) {
            w->out->error_code = (int16_t)kafka_error_from_errno(status);
            w->out->base_offset = -1;
        }
        produce_finish(w->pr);
    }
}

static void produce_retry_soon(struct broker *b);

static void appended(void *opaque, int status, int64_t base_offset)
{
    (void)base_offset;
    struct produce_part *part = opaque;
    struct partition *partition = part->partition;
    int16_t error = status != 0 ? (int16_t)kafka_error_from_errno(status) : KAFKA_ERR_NONE;
    if (error != KAFKA_ERR_NONE && part->out->error_code == KAFKA_ERR_NONE) {
        part->out->error_code = error;
        part->out->base_offset = -1;
    }
    if (part->idempotent) {
        struct producer_batch *entry =
            producers_find(partition->producers, part->producer_id, part->epoch, part->first_seq);
        if (entry != NULL && entry->inflight == part) {
            entry->inflight = NULL;
        }
        if (status != 0) {
            /* Not written: its retry must be appended, not taken for a duplicate. */
            producers_forget(partition->producers, part->producer_id, part->epoch, part->first_seq);
        }
    }
    if (status != 0 && part->remembers_ids) {
        msgids_forget_from(partition->msgids, part->base_offset);
    }
    durable_waiters_run(partition, status);
    for (struct produce_part *w = part->waiters; w != NULL;) {
        struct produce_part *next = w->next_waiter;
        if (error != KAFKA_ERR_NONE) {
            w->out->error_code = error;
            w->out->base_offset = -1;
        }
        produce_finish(w->pr);
        w = next;
    }
    struct broker *b = part->pr->h->broker;
    if (status == 0) {
        /* Readable now, before the producer hears of it: wake its readers. */
        broker_data_arrived(b, partition->log);
        snapshot_on_roll(partition);
    }
    produce_finish(part->pr);
    produce_retry_soon(b);
}

/*
 * The idempotence check of a batch with a producer id (producers.h has the
 * rules). Returns true when the batch is to be appended; otherwise *out is
 * settled (an error, or a duplicate answered with its original offsets,
 * at once or, while the original is not yet durable, with it).
 */
static bool idempotence_check(struct produce_part *part, const struct batch_header *hdr,
                              const char *topic, const char *peer)
{
    struct kmsg_produce_response_partition_produce_response *out = part->out;
    if (hdr->base_sequence < 0) {
        out->error_code = KAFKA_ERR_INVALID_RECORD;
        LOG_INFO("broker",
                 "produce refused: producer id without a sequence topic=%s partition=%d "
                 "producer_id=%lld peer=%s",
                 topic, out->index, (long long)hdr->producer_id, peer);
        return false;
    }
    int32_t last_seq = producers_last_seq(hdr->base_sequence, hdr->last_offset_delta);
    const struct producer_batch *dup = NULL;
    int rc = producers_check(part->partition->producers, hdr->producer_id, hdr->producer_epoch,
                             hdr->base_sequence, last_seq, &dup);
    if (rc < 0) {
        out->error_code = (int16_t)-rc;
        LOG_INFO("broker",
                 "produce refused topic=%s partition=%d producer_id=%lld epoch=%d seq=%d error=%s "
                 "peer=%s",
                 topic, out->index, (long long)hdr->producer_id, hdr->producer_epoch,
                 hdr->base_sequence, kafka_error_name(out->error_code), peer);
        return false;
    }
    if (rc == PRODUCERS_APPEND) {
        part->idempotent = true;
        part->producer_id = hdr->producer_id;
        part->epoch = hdr->producer_epoch;
        part->first_seq = hdr->base_sequence;
        return true;
    }
    out->base_offset = dup->first_offset;
    LOG_DEBUG("broker",
              "duplicate batch answered with its offset topic=%s partition=%d "
              "producer_id=%lld seq=%d offset=%lld",
              topic, out->index, (long long)hdr->producer_id, hdr->base_sequence,
              (long long)dup->first_offset);
    if (dup->inflight != NULL) {
        struct produce_part *original = dup->inflight;
        part->next_waiter = original->waiters;
        original->waiters = part;
        part->pr->pending++;
    }
    return false;
}

/*
 * Kafka's broker sets a CreateTime batch's maxTimestamp to its largest record
 * timestamp before storing it (LogValidator, through setMaxTimestamp), which
 * matters when a producer left it -1 (sarama) or marked the batch
 * LogAppendTime, which a topic of CreateTime turns back into CreateTime. Every
 * other batch already holds that value (batch_validate checks it), so only
 * these two are opened and rewritten, in place in the request's frame, CRC
 * recomputed. The batch is checked before its CRC is renewed; one that fails
 * is left for log_append to refuse, with its reason. Compressed batches are
 * stored as sent: their records are not opened here.
 */
static void fix_max_timestamp(struct handling *h, const uint8_t *batch, size_t len)
{
    if (len < BATCH_HEADER_BYTES || batch[BATCH_OFF_MAGIC] != 2) {
        return;
    }
    bool log_append_time =
        (be16_get(batch + BATCH_OFF_ATTRIBUTES) & BATCH_ATTR_LOG_APPEND_TIME) != 0;
    if (!log_append_time && (int64_t)be64_get(batch + BATCH_OFF_MAX_TIMESTAMP) != -1) {
        return;
    }
    int64_t max_timestamp;
    if (batch_max_record_timestamp(batch, len, &max_timestamp, NULL) != 0) {
        return;
    }
    /* The decoder is zero-copy: the records lie inside the request's frame,
     * which the request owns and nothing else reads while it is handled. */
    struct request *req = h->req;
    SL_ASSERT(batch >= req->frame && batch + len <= req->frame + req->frame_len);
    uint8_t *mutable_batch = req->frame + (batch - req->frame);
    batch_set_max_timestamp(mutable_batch, len, false, max_timestamp);
}

enum dedup_outcome {
    DEDUP_OFF,       /* the topic does not deduplicate by msg-id */
    DEDUP_AS_SENT,   /* nothing to drop: append the batch as sent */
    DEDUP_REWRITTEN, /* append the filter's rebuilt batch */
    DEDUP_SETTLED,   /* answered (duplicates only, or refused): nothing to append */
};

/*
 * The msg-id window of a dedup topic (msgids.h), for a batch that passed the
 * full check (a rebuilt batch gets a fresh CRC, which must never bless bytes
 * that arrived damaged). A batch of duplicates only is answered with the first
 * record's original offset, once everything appended before it is durable
 * (its originals may still be in flight); an idempotent producer's is stored
 * empty instead, so that its sequence range reaches the log.
 */
static enum dedup_outcome dedup_check(struct produce_part *part, const struct topic *topic,
                                      const uint8_t *batch, size_t len,
                                      struct msgids_filter *filter, const char *peer)
{
    struct partition *partition = part->partition;
    struct kmsg_produce_response_partition_produce_response *out = part->out;
    int err =
        msgids_filter(partition->msgids, batch, len, time_wall_ms(), topic->config.dedup_window_ms,
                      MSGIDS_DECOMPRESSED_MAX, DEDUP_ZSTD_LEVEL, part->idempotent, filter);
    if (err != 0) {
        out->error_code = err == -ENOTSUP    ? KAFKA_ERR_UNSUPPORTED_COMPRESSION_TYPE
                          : err == -ENOMEM   ? KAFKA_ERR_UNKNOWN_SERVER_ERROR
                          : err == -EMSGSIZE ? KAFKA_ERR_MESSAGE_TOO_LARGE
                                             : KAFKA_ERR_INVALID_RECORD;
        LOG_INFO("broker",
                 "produce refused by the msg-id window topic=%s partition=%d err=%s "
                 "error=%s peer=%s",
                 topic->name, out->index, strerror(-err), kafka_error_name(out->error_code), peer);
        return DEDUP_SETTLED;
    }
    if (filter->duplicates > 0) {
        LOG_DEBUG("broker", "msg-id duplicates dropped topic=%s partition=%d duplicates=%d of=%d",
                  topic->name, out->index, filter->duplicates, filter->records);
    }
    if (filter->rewritten) {
        return DEDUP_REWRITTEN;
    }
    if (filter->duplicates < filter->records) {
        return DEDUP_AS_SENT;
    }
    out->base_offset = filter->first_original;
    int64_t last = log_end_offset(partition->log) - 1;
    if (log_durable_offset(partition->log) <= last) {
        part->wait_offset = last;
        part->next_durable_waiter = partition->durable_waiters;
        partition->durable_waiters = part;
        part->pr->pending++;
    }
    return DEDUP_SETTLED;
}

/* Remembers an idempotent batch just given its offsets. */
static void record_producer_batch(struct produce_part *part, const struct batch_header *hdr,
                                  int64_t base)
{
    struct producer_batch entry = {
        .first_seq = hdr->base_sequence,
        .last_seq = producers_last_seq(hdr->base_sequence, hdr->last_offset_delta),
        .first_offset = base,
        .last_offset = base + hdr->last_offset_delta,
        .timestamp_ms = hdr->max_timestamp,
        .inflight = part,
    };
    if (producers_record(part->partition->producers, hdr->producer_id, hdr->producer_epoch, &entry,
                         time_wall_ms()) == NULL) {
        LOG_WARN("broker", "producer state not recorded topic=%s partition=%d producer_id=%lld",
                 part->topic->name, part->out->index, (long long)hdr->producer_id);
    }
}

static int try_append(struct produce_part *part);
static void park(struct produce_part *part);

/*
 * Appends one partition's records. From Produce v3 on, Kafka takes exactly
 * one RecordBatch per partition and refuses anything else whole
 * (INVALID_RECORD): appending the batches that look fine and failing the
 * rest would store records the producer was told failed, and its retry
 * would duplicate them.
 */
static void produce_partition(struct produce *pr, struct kstr topic_name, struct topic *topic,
                              const struct kmsg_produce_request_partition_produce_data *in,
                              struct kmsg_produce_response_partition_produce_response *out)
{
    struct handling *h = pr->h;
    const char *peer = conn_peer(h->req->conn);
    int name_len = topic_name.len > 0 ? topic_name.len : 0;
    out->index = in->index;
    out->base_offset = -1;
    if (h->version < 3) {
        out->error_code = KAFKA_ERR_UNSUPPORTED_VERSION; /* no RecordBatch v2 before v3 */
        LOG_INFO("broker", "produce refused: version %d carries no RecordBatch v2 peer=%s",
                 h->version, peer);
        return;
    }
    if (topic == NULL || in->index < 0 || in->index >= topic->partition_count) {
        out->error_code = KAFKA_ERR_UNKNOWN_TOPIC_OR_PARTITION;
        LOG_INFO("broker",
                 "produce refused: unknown topic or partition topic=%.*s partition=%d "
                 "peer=%s",
                 name_len, topic_name.ptr, in->index, peer);
        return;
    }
    struct log *log = topic->partitions[in->index].log;
    out->log_start_offset = log_start_offset(log);
    const uint8_t *p = in->records.ptr;
    size_t left = in->records.len > 0 ? (size_t)in->records.len : 0;
    size_t first = left >= BATCH_LOG_OVERHEAD
                       ? BATCH_LOG_OVERHEAD + (size_t)be32_get(p + BATCH_OFF_LENGTH)
                       : 0;
    /* A complete batch with more bytes after it is more than one batch; a
     * batch whose own length is wrong is left to log_append, which says why. */
    bool several = first >= BATCH_HEADER_BYTES && first < left;
    if (left == 0 || several) {
        out->error_code = left == 0 ? KAFKA_ERR_CORRUPT_MESSAGE : KAFKA_ERR_INVALID_RECORD;
        LOG_INFO("broker",
                 "produce refused: records must be exactly one batch topic=%s "
                 "partition=%d bytes=%zu first_batch_bytes=%zu peer=%s",
                 topic->name, in->index, left, first, peer);
        return;
    }
    struct produce_part *part = handling_alloc(h, sizeof(*part));
    if (part == NULL) {
        out->error_code = KAFKA_ERR_UNKNOWN_SERVER_ERROR;
        return;
    }
    const struct kmsg_produce_request *rq = h->req->handler_data;
    int32_t timeout_ms = rq->timeout_ms > 0 ? rq->timeout_ms : PARKED_TIMEOUT_MS_DEFAULT;
    *part = (struct produce_part){.pr = pr,
                                  .out = out,
                                  .topic = topic,
                                  .partition = &topic->partitions[in->index],
                                  .batch = p,
                                  .len = left,
                                  .deadline_ms = time_mono_ns() / 1000000 + timeout_ms};
    /* Behind batches already waiting for room: order per partition holds. */
    if (part->partition->parked_head != NULL || try_append(part) == -ENOBUFS) {
        park(part);
    }
}

/* --------------------------------------------------------------- parking */

/*
 * A partition whose log has no room for a batch now (its write backlog or
 * the shard's buffers are full: log_append's -ENOBUFS) keeps the batch, and
 * every later one, in arrival order, and tries again as appends complete:
 * backpressure, where answering an error would make the client retry (and,
 * without idempotence, possibly reorder). The connection's in-flight bound
 * stops it from sending more meanwhile. A batch parked longer than its
 * request's timeout_ms is answered REQUEST_TIMED_OUT.
 */
static void park(struct produce_part *part)
{
    struct partition *partition = part->partition;
    struct broker *b = part->pr->h->broker;
    part->pr->pending++;
    part->next_parked = NULL;
    if (partition->parked_head == NULL) {
        partition->parked_head = part;
        partition->next_blocked = b->blocked;
        b->blocked = partition;
    } else {
        partition->parked_tail->next_parked = part;
    }
    partition->parked_tail = part;
    if (!ev_is_active(&b->produce_retry)) {
        ev_timer_set(&b->produce_retry, PARKED_RETRY_S, PARKED_RETRY_S);
        ev_timer_start(b->loop, &b->produce_retry);
    }
}

/* Tries a partition's parked batches in order; true when none is left. */
static bool unpark(struct partition *partition, int64_t now_ms)
{
    while (partition->parked_head != NULL) {
        struct produce_part *part = partition->parked_head;
        if (now_ms >= part->deadline_ms) {
            part->out->error_code = KAFKA_ERR_REQUEST_TIMED_OUT;
            LOG_WARN("broker", "produce timed out waiting for room topic=%s partition=%d",
                     part->topic->name, part->out->index);
        } else if (try_append(part) == -ENOBUFS) {
            return false;
        }
        partition->parked_head = part->next_parked;
        produce_finish(part->pr); /* the hold park() took */
    }
    partition->parked_tail = NULL;
    return true;
}

static void on_produce_retry(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)revents;
    struct broker *b = SL_CONTAINER_OF(w, struct broker, produce_retry);
    int64_t now_ms = time_mono_ns() / 1000000;
    struct partition **link = &b->blocked;
    while (*link != NULL) {
        struct partition *partition = *link;
        if (unpark(partition, now_ms)) {
            *link = partition->next_blocked;
            partition->next_blocked = NULL;
        } else {
            link = &partition->next_blocked;
        }
    }
    if (b->blocked == NULL) {
        ev_timer_stop(loop, w);
    } else {
        w->repeat = PARKED_RETRY_S;
        ev_timer_again(loop, w);
    }
}

void broker_produce_init(struct broker *b)
{
    ev_init(&b->produce_retry, on_produce_retry);
}

/* An append completed somewhere: room may have come back. The retry runs
 * from the loop, never inside the log's completion. */
static void produce_retry_soon(struct broker *b)
{
    if (b->blocked != NULL) {
        ev_timer_stop(b->loop, &b->produce_retry);
        ev_timer_set(&b->produce_retry, 0, PARKED_RETRY_S);
        ev_timer_start(b->loop, &b->produce_retry);
    }
}

void broker_produce_closing(struct broker *b, const struct topic *topic)
{
    struct partition **link = &b->blocked;
    while (*link != NULL) {
        struct partition *partition = *link;
        if (partition < topic->partitions ||
            partition >= topic->partitions + topic->partition_count) {
            link = &partition->next_blocked;
            continue;
        }
        *link = partition->next_blocked;
        partition->next_blocked = NULL;
        for (struct produce_part *part = partition->parked_head; part != NULL;) {
            struct produce_part *next = part->next_parked;
            part->out->error_code = KAFKA_ERR_UNKNOWN_TOPIC_OR_PARTITION;
            produce_finish(part->pr);
            part = next;
        }
        partition->parked_head = partition->parked_tail = NULL;
    }
}

/* ---------------------------------------------------------------- append */

/*
 * One batch's way into its log: the idempotence check, the msg-id window,
 * then the append. Returns -ENOBUFS, having changed nothing, when the log
 * has no room now (the caller parks the batch); 0 otherwise, the batch
 * appended or answered.
 */
static int try_append(struct produce_part *part)
{
    struct topic *topic = part->topic;
    struct partition *partition = part->partition;
    struct kmsg_produce_response_partition_produce_response *out = part->out;
    struct log *log = partition->log;
    const uint8_t *p = part->batch;
    size_t left = part->len;
    const char *peer = conn_peer(part->pr->h->req->conn);
    fix_max_timestamp(part->pr->h, p, left);
    /* Checked whole once (CRC included), before its header decides anything:
     * a batch damaged in transit is refused by log_append with its reason,
     * never taken for a duplicate of the one it was meant to be. A batch
     * that waits for room is not checked again. */
    if (!part->checked) {
        part->valid = batch_validate(p, left, BATCH_CHECK_FULL, topic->config.log.max_message_bytes,
                                     &part->hdr, NULL) == 0;
        part->checked = true;
    }
    if (!part->valid) {
        int err = log_append(log, p, left, partition->leader_epoch, appended, part, NULL);
        SL_ASSERT(err != 0); /* log_append refuses what batch_validate refused */
        if (err == -ENOBUFS) {
            return -ENOBUFS; /* its turn comes: then it is refused with its reason */
        }
        out->error_code = (int16_t)kafka_error_from_errno(err);
        LOG_INFO("broker", "produce refused topic=%s partition=%d error=%s peer=%s", topic->name,
                 out->index, kafka_error_name(out->error_code), peer);
        return 0;
    }
    const struct batch_header *hdr = &part->hdr;
    part->idempotent = false;
    if (hdr->producer_id >= 0 && !idempotence_check(part, hdr, topic->name, peer)) {
        return 0;
    }
    struct msgids_filter filter = {.first_original = -1};
    enum dedup_outcome outcome = DEDUP_OFF;
    if (partition->msgids != NULL && topic->config.dedup_window_ms > 0) {
        outcome = dedup_check(part, topic, p, left, &filter, peer);
        if (outcome == DEDUP_SETTLED) {
            msgids_filter_deinit(&filter);
            return 0;
        }
    }
    int64_t base = -1;
    int err =
        outcome == DEDUP_REWRITTEN
            ? log_append_rewritten(log, filter.out.data, filter.out.len, partition->leader_epoch,
                                   appended, part, &base)
            : log_append_validated(log, p, left, partition->leader_epoch, appended, part, &base);
    if (err == -ENOBUFS) {
        msgids_filter_deinit(&filter);
        return -ENOBUFS;
    }
    if (err != 0) {
        msgids_filter_deinit(&filter);
        out->error_code = (int16_t)kafka_error_from_errno(err);
        LOG_INFO("broker", "produce refused topic=%s partition=%d error=%s peer=%s", topic->name,
                 out->index, kafka_error_name(out->error_code), peer);
        return 0;
    }
    out->base_offset = base;
    part->base_offset = base;
    part->pr->pending++;
    if (outcome != DEDUP_OFF) {
        msgids_commit(partition->msgids, &filter, base, time_wall_ms());
        part->remembers_ids = filter.kept_ids > 0;
        if (filter.duplicates == filter.records) {
            /* An idempotent producer's batch of duplicates only: stored empty
             * for its sequence range, answered with the original offsets. */
            out->base_offset = filter.first_original;
        }
    }
    msgids_filter_deinit(&filter);
    if (part->idempotent) {
        record_producer_batch(part, hdr, base);
    }
    return 0;
}

void handle_produce(struct handling *h)
{
    struct broker *b = h->broker;
    const struct kmsg_produce_request *rq = h->req->handler_data;
    struct produce *pr = handling_alloc(h, sizeof(*pr));
    int32_t nt = rq->topic_data.count > 0 ? rq->topic_data.count : 0;
    struct kmsg_produce_response_topic_produce_response *topics =
        pr != NULL ? handling_alloc(h, (size_t)(nt > 0 ? nt : 1) * sizeof(*topics)) : NULL;
    if (pr == NULL || topics == NULL) {
        LOG_ERROR("broker", "produce response does not fit its arena peer=%s",
                  conn_peer(h->req->conn));
        handling_close(h);
        return;
    }
    pr->h = h;
    pr->pending = 1;
    kmsg_init(&kmsg_produce_response_desc, &pr->resp);
    pr->resp.responses = (struct karray){topics, nt};
    const struct kmsg_produce_request_topic_produce_data *in = rq->topic_data.items;
    for (int32_t t = 0; t < nt; t++) {
        kmsg_init(&kmsg_produce_response_topic_produce_response_desc, &topics[t]);
        topics[t].name = in[t].name;
        /* Never created here, as in Kafka: only Metadata auto-creates. */
        struct topic *topic = in[t].name.len > 0
                                  ? topics_find(&b->topics, in[t].name.ptr, (size_t)in[t].name.len)
                                  : NULL;
        int32_t np = in[t].partition_data.count > 0 ? in[t].partition_data.count : 0;
        struct kmsg_produce_response_partition_produce_response *parts =
            handling_alloc(h, (size_t)(np > 0 ? np : 1) * sizeof(*parts));
        if (parts == NULL) {
            np = 0;
        }
        topics[t].partition_responses = (struct karray){parts, np};
        const struct kmsg_produce_request_partition_produce_data *pin = in[t].partition_data.items;
        for (int32_t p = 0; p < np; p++) {
            kmsg_init(&kmsg_produce_response_partition_produce_response_desc, &parts[p]);
            parts[p].record_errors = (struct karray){NULL, 0};
            produce_partition(pr, in[t].name, topic, &pin[p], &parts[p]);
        }
    }
    produce_finish(pr);
}
