/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The producer: placing messages in partitions and batches, sending batches
 * to partition leaders, and deciding what each answer means.
 *
 * Partitioning. A message that names a partition goes there. A keyed message
 * goes to murmur2(key) (Java's mapping, the default) or crc32(key)
 * (librdkafka's consistent partitioner) modulo the partition count, over all
 * partitions, available or not, so a key always lands in one place. A
 * keyless message goes to the topic's sticky partition, chosen at random
 * among those with a leader, until that partition's batch is sealed (KIP-480):
 * keyless traffic fills whole batches instead of many small ones.
 *
 * Sending. A batch goes out when it is sealed (full, lingered linger.ms, or
 * flushed), its partition's leader is connected, and the partition allows:
 * at most SLC_INFLIGHT_PER_PARTITION_MAX batches in flight, all to the same
 * broker, and none while a retry is pending (below). One Produce request per
 * broker carries the head batch of each of its ready partitions, up to
 * max.request.size; at most max.in.flight.requests.per.connection such
 * requests are in flight per broker.
 *
 * Answers, per batch:
 *   - NONE, or DUPLICATE_SEQUENCE_NUMBER (an old broker's "already have it"):
 *     delivered.
 *   - A retriable error (Kafka's flag), a lost connection, a timeout, an
 *     undecodable answer: the batch goes back to its partition's queue in
 *     sealing order, and the partition holds: nothing more is sent for it
 *     until every batch in flight has come back and the backoff (exponential
 *     from retry.backoff.ms to retry.backoff.max.ms, 20% jitter) has passed.
 *     Then the queue goes out again from its head, so retries keep order.
 *     Leadership and topic errors also ask for fresh metadata.
 *   - Any other error: the batch fails with it.
 *   Past delivery.timeout.ms (counted from the oldest message's sl_produce)
 *   a batch that comes back, or waits in a queue, fails with MSG_TIMED_OUT.
 *
 * Idempotence (on by default). InitProducerId gives a producer id and epoch;
 * nothing is sent before. Each batch gets its partition's next sequence
 * number on its first send (slc_batch_stamp) and keeps it, and its bytes,
 * through every retry, so the broker's window of 5 batches recognises a
 * retry of a batch it has already written and answers with its offset.
 * OUT_OF_ORDER_SEQUENCE_NUMBER for a batch behind one that is being retried
 * is expected (the broker has not seen the earlier one yet) and retried.
 * When the sequence can no longer continue (a stamped batch failed or timed
 * out and left a gap, the broker lost the producer: UNKNOWN_PRODUCER_ID,
 * OUT_OF_ORDER for the very next batch, INVALID_PRODUCER_EPOCH), the
 * producer bumps its epoch: it stops sending, waits until nothing is in
 * flight, asks InitProducerId for a new epoch of its id (KIP-360; a new id on
 * brokers older than v3), and restarts every partition's sequence at 0,
 * restamping unacknowledged batches in queue order. A batch that was written
 * but whose answer was lost before such a bump can be written twice: Kafka's
 * idempotent producer has the same limit.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "client/internal.h"
#include "common/assert.h"
#include "common/clock.h"
#include "proto/compress.h"
#include "proto/errors.h"

/* ================================================================ placing */

/* Copies a message for its topic's pending list (one allocation). */
static struct slc_pending *pending_new(const sl_msg *m, int64_t timestamp, int64_t enq_ms)
{
    size_t bytes = sizeof(struct slc_pending) + m->header_count * sizeof(sl_header);
    bytes += (m->key != NULL ? m->key_len : 0) + (m->value != NULL ? m->value_len : 0);
    for (size_t i = 0; i < m->header_count; i++) {
        bytes += strlen(m->headers[i].name) + 1;
        bytes += m->headers[i].value != NULL ? m->headers[i].value_len : 0;
    }
    struct slc_pending *pm = malloc(bytes);
    if (pm == NULL) {
        return NULL;
    }
    sl_header *hdrs = (sl_header *)(pm + 1);
    char *w = (char *)(hdrs + m->header_count);
    pm->next = NULL;
    pm->msg = *m;
    pm->msg.topic = NULL;
    pm->msg.timestamp = timestamp;
    pm->msg.headers = m->header_count > 0 ? hdrs : NULL;
    pm->enq_ms = enq_ms;
    pm->payload_bytes = bytes - sizeof(struct slc_pending) - m->header_count * sizeof(sl_header) -
                        m->header_count; /* the NULs of the names are ours */
    pm->err = SL_OK;
    pm->topic = NULL;
    if (m->key != NULL) {
        pm->msg.key = memcpy(w, m->key, m->key_len);
        w += m->key_len;
    }
    if (m->value != NULL) {
        pm->msg.value = memcpy(w, m->value, m->value_len);
        w += m->value_len;
    }
    for (size_t i = 0; i < m->header_count; i++) {
        size_t n = strlen(m->headers[i].name) + 1;
        hdrs[i].name = memcpy(w, m->headers[i].name, n);
        w += n;
        hdrs[i].value = NULL;
        hdrs[i].value_len = m->headers[i].value_len;
        if (m->headers[i].value != NULL) {
            hdrs[i].value = memcpy(w, m->headers[i].value, m->headers[i].value_len);
            w += m->headers[i].value_len;
        }
    }
    return pm;
}

/* The sticky partition of a keyless message (see the top of the file). */
static struct slc_part *sticky_part(sl_client *c, struct slc_topic *t)
{
    int32_t n = t->partition_count;
    if (t->sticky >= 0 && t->sticky < n && t->parts[t->sticky]->seal_gen == t->sticky_gen) {
        return t->parts[t->sticky];
    }
    int32_t start = (int32_t)(slc_rand(&c->rng) % (uint64_t)n);
    int32_t pick = -1;
    /* First choice: a partition with a leader, other than the last one. */
    for (int32_t k = 0; k < n && pick < 0; k++) {
        int32_t i = (start + k) % n;
        if (t->parts[i]->leader >= 0 && (i != t->sticky || n == 1)) {
            pick = i;
        }
    }
    if (pick < 0) {
        pick = (n > 1 && start == t->sticky) ? (start + 1) % n : start;
    }
    t->sticky = pick;
    t->sticky_gen = t->parts[pick]->seal_gen;
    return t->parts[pick];
}

/* A batch that could not be encoded (rc -EIO: compression, else memory). */
static void fail_unencoded(sl_client *c, struct slc_part *p, struct slc_batch *b, int rc)
{
    sl_err err = rc == -EIO ? SL_ERR_COMPRESSION : SL_ERR_NOMEM;
    slc_error(c, err, "%s [%d]: batch of %u messages could not be encoded", p->topic->name, p->id,
              b->count);
    slc_done_batch(c, b, err);
}

void slc_part_seal(sl_client *c, struct slc_part *p)
{
    struct slc_batch *b = p->open;
    if (b == NULL) {
        return;
    }
    p->open = NULL;
    p->seal_gen++;
    /* With the compression thread the batch takes its place in the queue
     * now and becomes sendable once compressed (compressor.c). */
    bool offload = c->compressor != NULL; /* there only with zstd */
    int rc = 0;
    if (offload) {
        slc_batch_seal_plain(b);
    } else {
        rc = slc_batch_seal(b, c->conf->compression_type, c->conf->compression_level, c->zstd,
                            &c->scratch);
    }
    if (rc != 0) {
        fail_unencoded(c, p, b, rc);
        slc_part_deactivate(c, p);
        return;
    }
    b->order = p->next_order++;
    if (p->q_tail != NULL) {
        p->q_tail->next = b;
    } else {
        p->q_head = b;
    }
    p->q_tail = b;
    if (offload) {
        slc_compressor_submit(c, b);
    } else {
        slc_wake_at(c, 0); /* something to send */
    }
}

/* Fails the queue heads the compression thread could not compress: they
 * were never sent, so no sequence number is lost. */
static void fail_uncompressed_heads(sl_client *c, struct slc_part *p)
{
    while (p->q_head != NULL && !p->q_head->compressing && p->q_head->zerr != 0) {
        struct slc_batch *b = p->q_head;
        p->q_head = b->next;
        if (p->q_head == NULL) {
            p->q_tail = NULL;
        }
        b->next = NULL;
        fail_unencoded(c, p, b, b->zerr);
    }
}

/* What sl_produce passes for the monotonic times of a message it has not
 * read the clock for: they are read only when a batch opens or the message
 * waits for metadata. Appended to an open batch, a message's own sl_produce
 * time changes nothing: the batch keeps its oldest (oldest_enq_ms), and its
 * linger counts from its opening. One clock read less per message, which
 * perf showed costs like the copy of a 100 B value. */
#define NOW_UNREAD INT64_MIN

static sl_err part_append(sl_client *c, struct slc_part *p, const sl_msg *m, int64_t timestamp,
                          int64_t enq_ms, int64_t now_ms)
{
    int32_t batch_size = c->conf->batch_size;
    size_t rec_bytes = 0;
    if (p->open != NULL) {
        rec_bytes = slc_record_bytes(p->open, m, timestamp);
        if (!slc_batch_fits(p->open, rec_bytes, batch_size)) {
            slc_part_seal(c, p);
        }
    }
    struct slc_batch *b = p->open;
    if (b == NULL) {
        if (now_ms == NOW_UNREAD) {
            now_ms = slc_now_ms();
            enq_ms = now_ms;
        }
        b = slc_batch_new(now_ms);
        if (b == NULL) {
            return SL_ERR_NOMEM;
        }
        b->part = p;
        p->open = b;
        slc_part_activate(c, p);
        slc_wake_at(c, now_ms + c->conf->linger_ms);
        rec_bytes = slc_record_bytes(b, m, timestamp);
    }
    if (enq_ms == NOW_UNREAD) {
        SL_ASSERT(b->count > 0);   /* a batch opened above got the clock's time */
        enq_ms = b->oldest_enq_ms; /* see NOW_UNREAD */
    }
    int rc = slc_batch_append(b, m, timestamp, enq_ms);
    if (rc != 0) {
        if (b->count == 0) {
            p->open = NULL;
            slc_batch_free(b);
            slc_part_deactivate(c, p);
        }
        /* -EINVAL: a timestamp too far from the batch's first for a delta. */
        return rc == -EINVAL ? SL_ERR_INVALID_ARG : SL_ERR_NOMEM;
    }
    /* Full when another record like this one would not fit: seal now rather
     * than wait for the next message or linger.ms. */
    if (b->encoded_bytes + rec_bytes > (size_t)batch_size) {
        slc_part_seal(c, p);
    }
    return SL_OK;
}

sl_err slc_place(sl_client *c, struct slc_topic *t, const sl_msg *m, int64_t timestamp,
                 int64_t enq_ms, int64_t now_ms)
{
    if (t->partition_count < 0) {
        if (now_ms == NOW_UNREAD) {
            now_ms = slc_now_ms();
            enq_ms = now_ms;
        }
        struct slc_pending *pm = pending_new(m, timestamp, enq_ms);
        if (pm == NULL) {
            return SL_ERR_NOMEM;
        }
        pm->topic = t;
        if (t->pend_tail != NULL) {
            t->pend_tail->next = pm;
        } else {
            t->pend_head = pm;
        }
        t->pend_tail = pm;
        c->pending_count++;
        slc_wake_at(c, 0); /* metadata to ask for */
        return SL_OK;
    }
    struct slc_part *p;
    if (m->partition >= 0) {
        if (m->partition >= t->partition_count) {
            return SL_ERR_UNKNOWN_PARTITION;
        }
        p = t->parts[m->partition];
    } else if (m->key != NULL) {
        p = t->parts[slc_partition_of_key(c->conf->partitioner, m->key, m->key_len,
                                          t->partition_count)];
    } else {
        p = sticky_part(c, t);
    }
    return part_append(c, p, m, timestamp, enq_ms, now_ms);
}

void slc_place_pending(sl_client *c, struct slc_topic *t, int64_t now_ms)
{
    SL_ASSERT(t->partition_count > 0);
    while (t->pend_head != NULL) {
        struct slc_pending *pm = t->pend_head;
        t->pend_head = pm->next;
        c->pending_count--;
        sl_err err = slc_place(c, t, &pm->msg, pm->msg.timestamp, pm->enq_ms, now_ms);
        if (err != SL_OK) {
            pm->next = NULL;
            slc_done_pending(c, pm, err); /* counted in its callback */
            continue;
        }
        /* Its batch reports it now (sl_produce's count still holds it). */
        free(pm);
    }
    t->pend_tail = NULL;
}

/* ================================================================ sending */

/* Whether p's head batch may go to its leader now (see the top of the file). */
static bool sendable(struct slc_part *p, int64_t now_ms, int64_t *next_ms)
{
    if (p->q_head == NULL || p->q_head->compressing) {
        return false; /* a compressed batch coming back wakes the loop */
    }
    if (p->hold) {
        if (p->inflight > 0) {
            return false;
        }
        p->hold = false;
    }
    if (now_ms < p->retry_at_ms) {
        *next_ms = SL_MIN(*next_ms, p->retry_at_ms);
        return false;
    }
    return p->inflight < SLC_INFLIGHT_PER_PARTITION_MAX &&
           (p->inflight == 0 || p->inflight_node == p->leader);
}

/* Takes p's head batch for a request to node: stamped on its first send. */
static struct slc_batch *take_head(sl_client *c, struct slc_part *p, int32_t node)
{
    struct slc_batch *b = p->q_head;
    p->q_head = b->next;
    if (p->q_head == NULL) {
        p->q_tail = NULL;
    }
    b->next = NULL;
    if (c->idempotent && b->base_seq < 0) {
        slc_batch_stamp(b, c->producer_id, c->producer_epoch, p->next_seq);
        p->next_seq = slc_seq_add(p->next_seq, b->count);
    }
    b->attempts++;
    b->request_node = node;
    p->inflight++;
    p->inflight_node = node;
    return b;
}

static int by_topic(const void *x, const void *y)
{
    const struct slc_batch *a = *(const struct slc_batch *const *)x;
    const struct slc_batch *b = *(const struct slc_batch *const *)y;
    uintptr_t ta = (uintptr_t)a->part->topic;
    uintptr_t tb = (uintptr_t)b->part->topic;
    return ta < tb ? -1 : ta > tb;
}

/* Encodes the Produce request of n batches (grouped by topic, which sorts
 * them) and queues it. Links the batches through next, in that order. */
static int send_produce(sl_client *c, struct slc_broker *b, struct slc_batch **batches, size_t n,
                        int64_t now_ms)
{
    qsort(batches, n, sizeof(*batches), by_topic);
    struct kmsg_produce_request_topic_produce_data *topics = calloc(n, sizeof(*topics));
    struct kmsg_produce_request_partition_produce_data *parts = calloc(n, sizeof(*parts));
    if (topics == NULL || parts == NULL) {
        free(topics);
        free(parts);
        return -ENOMEM;
    }
    int32_t nt = 0;
    for (size_t i = 0; i < n; i++) {
        struct slc_topic *t = batches[i]->part->topic;
        if (i == 0 || batches[i - 1]->part->topic != t) {
            topics[nt].name = (struct kstr){t->name, (int32_t)strlen(t->name)};
            topics[nt].partition_data = (struct karray){&parts[i], 0};
            nt++;
        }
        topics[nt - 1].partition_data.count++;
        parts[i].index = batches[i]->part->id;
        parts[i].records = (struct kbytes){batches[i]->wire, (int32_t)batches[i]->wire_len};
        batches[i]->next = i + 1 < n ? batches[i + 1] : NULL;
    }
    struct kmsg_produce_request rq;
    kmsg_init(&kmsg_produce_request_desc, &rq);
    rq.transactional_id = (struct kstr){NULL, -1};
    rq.acks = c->acks;
    rq.timeout_ms = c->conf->request_timeout_ms;
    rq.topic_data = (struct karray){topics, nt};
    struct slc_req req = {.kind = SLC_REQ_PRODUCE,
                          .api_key = KMSG_API_PRODUCE,
                          .version = b->versions[KMSG_API_PRODUCE],
                          .expects_response = c->acks != 0,
                          .batches = batches[0]};
    int rc = slc_broker_send(c, b, &req, &rq, now_ms);
    free(topics);
    free(parts);
    return rc;
}

/* Puts a batch back in its partition's queue, in sealing order. */
static void requeue(struct slc_part *p, struct slc_batch *b)
{
    struct slc_batch **at = &p->q_head;
    while (*at != NULL && (*at)->order < b->order) {
        at = &(*at)->next;
    }
    b->next = *at;
    *at = b;
    if (b->next == NULL) {
        p->q_tail = b;
    }
}

/* Undoes take_head for batches whose request could not be queued. */
static void untake(struct slc_batch **batches, size_t n)
{
    for (size_t i = n; i-- > 0;) {
        struct slc_part *p = batches[i]->part;
        batches[i]->attempts--;
        batches[i]->request_node = -1;
        p->inflight--;
        requeue(p, batches[i]);
    }
}

/* One Produce request to b of what is ready for it. Returns whether one went. */
static bool drain_one(sl_client *c, struct slc_broker *b, int64_t now_ms, int64_t *next_ms)
{
    if (b->versions[KMSG_API_PRODUCE] < 0) {
        return false;
    }
    size_t cap = 64;
    size_t n = 0;
    size_t bytes = 0;
    struct slc_batch **batches = malloc(cap * sizeof(*batches));
    if (batches == NULL) {
        return false;
    }
    for (struct slc_part *p = c->active; p != NULL; p = p->active_next) {
        if (p->leader != b->node_id || !sendable(p, now_ms, next_ms)) {
            continue;
        }
        size_t need = p->q_head->wire_len + strlen(p->topic->name) + 32;
        if (n > 0 && bytes + need > (size_t)c->conf->max_request_size) {
            continue; /* the next request takes it */
        }
        if (n == cap) {
            struct slc_batch **grown = realloc(batches, 2 * cap * sizeof(*batches));
            if (grown == NULL) {
                break;
            }
            batches = grown;
            cap *= 2;
        }
        batches[n++] = take_head(c, p, b->node_id);
        bytes += need;
    }
    bool sent = n > 0 && send_produce(c, b, batches, n, now_ms) == 0;
    if (n > 0 && !sent) {
        untake(batches, n);
    }
    free(batches);
    return sent;
}

static void drain(sl_client *c, int64_t now_ms, int64_t *next_ms)
{
    if (c->fatal || (c->idempotent && (c->pid_state != SLC_PID_ASSIGNED || c->bump_wanted))) {
        return;
    }
    for (uint32_t i = 0; i < c->broker_count; i++) {
        struct slc_broker *b = c->brokers[i];
        while (b->node_id >= 0 && slc_broker_can_send(c, b, SLC_REQ_PRODUCE) &&
               drain_one(c, b, now_ms, next_ms)) {
        }
    }
}

/* ================================================================ answers */

/* A batch that ends without being written, after it may have been stamped:
 * its sequence numbers leave a gap that only a new epoch closes. */
static void fail_batch(sl_client *c, struct slc_batch *b, sl_err err)
{
    if (c->idempotent && b->base_seq >= 0) {
        c->bump_wanted = true;
    }
    slc_done_batch(c, b, err);
}

/* Errors after which the leader may have moved: metadata is refreshed. */
static bool leadership_error(int err)
{
    switch (err) {
    case KAFKA_ERR_NOT_LEADER_OR_FOLLOWER:
    case KAFKA_ERR_LEADER_NOT_AVAILABLE:
    case KAFKA_ERR_UNKNOWN_TOPIC_OR_PARTITION:
    case KAFKA_ERR_FENCED_LEADER_EPOCH:
    case KAFKA_ERR_UNKNOWN_LEADER_EPOCH:
    case KAFKA_ERR_KAFKA_STORAGE_ERROR:
    case KAFKA_ERR_NOT_ENOUGH_REPLICAS:
    case KAFKA_ERR_REPLICA_NOT_AVAILABLE:
    case SL_ERR_TRANSPORT:
    case SL_ERR_BAD_RESPONSE:
        return true;
    default:
        return false;
    }
}

/* Whether a batch that got err is sent again; *bump when only a new epoch
 * lets its sequence continue. */
static bool retry_wanted(const sl_client *c, const struct slc_batch *b, int err, bool *bump)
{
    *bump = false;
    if (err < -1) {
        return true; /* local: the connection or the answer failed */
    }
    if (kafka_error_retriable(err)) {
        return true;
    }
    if (!c->idempotent) {
        return false;
    }
    switch (err) {
    case KAFKA_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER:
        /* Behind a batch being retried: the broker has not seen that one yet.
         * The very next batch refused: the broker lost our sequence. */
        *bump = b->base_seq == b->part->acked_seq;
        return true;
    case KAFKA_ERR_UNKNOWN_PRODUCER_ID:
    case KAFKA_ERR_INVALID_PRODUCER_EPOCH:
        *bump = true;
        return true;
    default:
        return false;
    }
}

static void batch_result(sl_client *c, struct slc_batch *b, int err, int64_t base_offset,
                         int64_t log_append_time, int64_t now_ms)
{
    struct slc_part *p = b->part;
    SL_ASSERT(p->inflight > 0);
    p->inflight--;
    b->request_node = -1;
    b->next = NULL;
    bool bump = false;
    if (err == KAFKA_ERR_NONE || err == KAFKA_ERR_DUPLICATE_SEQUENCE_NUMBER) {
        if (c->idempotent) {
            p->acked_seq = slc_seq_add(b->base_seq, b->count);
        }
        b->base_offset = err == KAFKA_ERR_NONE ? base_offset : -1;
        b->log_append_time = log_append_time;
        slc_done_batch(c, b, SL_OK);
    } else if (c->fatal) {
        slc_done_batch(c, b, SL_ERR_FATAL);
    } else if (retry_wanted(c, b, err, &bump)) {
        c->bump_wanted |= bump;
        if (now_ms >= b->oldest_enq_ms + c->conf->delivery_timeout_ms) {
            fail_batch(c, b, SL_ERR_MSG_TIMED_OUT);
        } else {
            requeue(p, b);
            p->hold = true;
            int64_t backoff = slc_backoff_ms(c->conf->retry_backoff_ms,
                                             c->conf->retry_backoff_max_ms, b->attempts, &c->rng);
            p->retry_at_ms = SL_MAX(p->retry_at_ms, now_ms + backoff);
            slc_wake_at(c, p->retry_at_ms);
        }
    } else {
        fail_batch(c, b, (sl_err)err);
    }
    if (leadership_error(err)) {
        c->md_wanted = true;
    }
    slc_part_deactivate(c, p);
}

/* Takes the batch of (topic, partition) out of the list; NULL if absent. */
static struct slc_batch *unlink_batch(struct slc_batch **list, struct kstr topic, int32_t partition)
{
    for (struct slc_batch **at = list; *at != NULL; at = &(*at)->next) {
        struct slc_batch *b = *at;
        const char *name = b->part->topic->name;
        if (b->part->id == partition && topic.len >= 0 && strlen(name) == (size_t)topic.len &&
            memcmp(name, topic.ptr, (size_t)topic.len) == 0) {
            *at = b->next;
            return b;
        }
    }
    return NULL;
}

void slc_produce_response(sl_client *c, struct slc_broker *b, struct slc_req *req,
                          const void *resp_, sl_err err, int64_t now_ms)
{
    (void)b;
    struct slc_batch *list = req->batches;
    req->batches = NULL;
    const struct kmsg_produce_response *resp = resp_;
    if (resp != NULL) {
        const struct kmsg_produce_response_topic_produce_response *rt = resp->responses.items;
        for (int32_t i = 0; i < resp->responses.count; i++) {
            const struct kmsg_produce_response_partition_produce_response *rp =
                rt[i].partition_responses.items;
            for (int32_t j = 0; j < rt[i].partition_responses.count; j++) {
                struct slc_batch *bt = unlink_batch(&list, rt[i].name, rp[j].index);
                if (bt != NULL) {
                    batch_result(c, bt, rp[j].error_code, rp[j].base_offset,
                                 rp[j].log_append_time_ms, now_ms);
                }
            }
        }
        /* A batch the answer does not mention: as if the answer were lost. */
        err = SL_ERR_BAD_RESPONSE;
    }
    while (list != NULL) {
        struct slc_batch *bt = list;
        list = bt->next;
        /* err SL_OK without an answer: acks=0, delivered once written. */
        batch_result(c, bt, err == SL_OK ? KAFKA_ERR_NONE : err, -1, -1, now_ms);
    }
}

/* ================================================================ idempotence */

static void go_fatal(sl_client *c, sl_err err, const char *why)
{
    if (c->fatal) {
        return;
    }
    c->fatal = true;
    c->fatal_err = err;
    slc_error(c, SL_ERR_FATAL, "producer failed: %s (%s); every message held fails", why,
              sl_err_name(err));
    /* In-flight batches fail as their answers come back. */
    slc_fail_all(c, SL_ERR_FATAL, SL_ERR_FATAL, false);
}

/* After a new producer id or epoch: every partition starts at sequence 0,
 * and batches not yet acknowledged are stamped again when next sent. */
static void reset_sequences(sl_client *c)
{
    SL_ASSERT(c->produce_inflight == 0); /* a bump waits for that */
    for (struct slc_topic *t = c->topics; t != NULL; t = t->list_next) {
        for (int32_t i = 0; i < t->parts_cap; i++) {
            struct slc_part *p = t->parts[i];
            p->next_seq = 0;
            p->acked_seq = 0;
            for (struct slc_batch *b = p->q_head; b != NULL; b = b->next) {
                b->base_seq = -1;
            }
        }
    }
}

static void pid_tick(sl_client *c, int64_t now_ms, int64_t *next_ms)
{
    if (!c->idempotent || c->fatal || c->pid_state == SLC_PID_REQUESTING) {
        return;
    }
    bool bump = c->bump_wanted && c->produce_inflight == 0;
    if (c->pid_state == SLC_PID_ASSIGNED && !bump) {
        return;
    }
    if (now_ms < c->pid_next_ms) {
        *next_ms = SL_MIN(*next_ms, c->pid_next_ms);
        return;
    }
    struct slc_broker *b = slc_control_broker(c, now_ms, next_ms);
    if (b == NULL) {
        return;
    }
    int16_t version = b->versions[KMSG_API_INIT_PRODUCER_ID];
    if (version < 0) {
        go_fatal(c, SL_ERR_UNSUPPORTED_FEATURE,
                 "the broker does not serve InitProducerId: set enable.idempotence=false");
        return;
    }
    struct kmsg_init_producer_id_request rq;
    kmsg_init(&kmsg_init_producer_id_request_desc, &rq);
    rq.transactional_id = (struct kstr){NULL, -1};
    rq.transaction_timeout_ms = -1; /* not transactional */
    if (bump && c->producer_id >= 0 && version >= 3) {
        /* KIP-360: the same id, a new epoch. */
        rq.producer_id = c->producer_id;
        rq.producer_epoch = c->producer_epoch;
    }
    struct slc_req req = {.kind = SLC_REQ_INIT_PID,
                          .api_key = KMSG_API_INIT_PRODUCER_ID,
                          .version = version,
                          .expects_response = true};
    if (slc_broker_send(c, b, &req, &rq, now_ms) == 0) {
        c->pid_state = SLC_PID_REQUESTING;
    }
}

void slc_init_pid_response(sl_client *c, struct slc_broker *b, const void *resp_, sl_err err,
                           int64_t now_ms)
{
    const struct kmsg_init_producer_id_response *resp = resp_;
    c->pid_state = c->producer_id >= 0 ? SLC_PID_ASSIGNED : SLC_PID_NONE;
    int16_t code = resp != NULL ? resp->error_code : KAFKA_ERR_NONE;
    if (resp != NULL && code == KAFKA_ERR_NONE && resp->producer_id >= 0) {
        c->producer_id = resp->producer_id;
        c->producer_epoch = resp->producer_epoch;
        c->pid_state = SLC_PID_ASSIGNED;
        c->pid_failures = 0;
        if (c->bump_wanted) {
            reset_sequences(c);
            c->bump_wanted = false;
        }
        slc_wake_at(c, 0);
        return;
    }
    if (resp != NULL &&
        (code == KAFKA_ERR_INVALID_PRODUCER_ID_MAPPING ||
         code == KAFKA_ERR_INVALID_PRODUCER_EPOCH || code == KAFKA_ERR_PRODUCER_FENCED)) {
        /* Our id is no longer good for a new epoch: ask for a fresh one,
         * after which the sequences restart too. */
        c->producer_id = -1;
        c->producer_epoch = -1;
        c->pid_state = SLC_PID_NONE;
        c->bump_wanted = true;
    } else if (resp != NULL && !kafka_error_retriable(code)) {
        char why[SLC_HOST_BYTES + 64];
        snprintf(why, sizeof(why), "InitProducerId refused by %s", b->addr);
        go_fatal(c, (sl_err)code, why);
        return;
    }
    (void)err;
    c->pid_failures++;
    c->pid_next_ms =
        now_ms + slc_backoff_ms(c->conf->retry_backoff_ms, c->conf->retry_backoff_max_ms,
                                c->pid_failures, &c->rng);
    slc_wake_at(c, c->pid_next_ms);
}

/* ================================================================ timers */

/* Fails what has waited past delivery.timeout.ms in p's queue and open batch. */
static void expire_part(sl_client *c, struct slc_part *p, int64_t now_ms, int64_t *next_ms)
{
    int64_t timeout = c->conf->delivery_timeout_ms;
    struct slc_batch **at = &p->q_head;
    p->q_tail = NULL;
    while (*at != NULL) {
        struct slc_batch *b = *at;
        if (b->compressing) {
            /* The thread's until reaped, which wakes the loop: expired then. */
            p->q_tail = b;
            at = &b->next;
            continue;
        }
        if (now_ms >= b->oldest_enq_ms + timeout) {
            *at = b->next;
            b->next = NULL;
            fail_batch(c, b, SL_ERR_MSG_TIMED_OUT);
            continue;
        }
        *next_ms = SL_MIN(*next_ms, b->oldest_enq_ms + timeout);
        p->q_tail = b;
        at = &b->next;
    }
    if (p->open != NULL) {
        if (now_ms >= p->open->oldest_enq_ms + timeout) {
            struct slc_batch *b = p->open;
            p->open = NULL;
            p->seal_gen++;
            slc_done_batch(c, b, SL_ERR_MSG_TIMED_OUT);
        } else {
            *next_ms = SL_MIN(*next_ms, p->open->oldest_enq_ms + timeout);
        }
    }
}

static void expire_pending(sl_client *c, int64_t now_ms, int64_t *next_ms)
{
    int64_t timeout = c->conf->delivery_timeout_ms;
    for (struct slc_topic *t = c->topics; t != NULL && c->pending_count > 0; t = t->list_next) {
        while (t->pend_head != NULL && now_ms >= t->pend_head->enq_ms + timeout) {
            struct slc_pending *pm = t->pend_head;
            t->pend_head = pm->next;
            pm->next = NULL;
            c->pending_count--;
            slc_done_pending(c, pm, SL_ERR_MSG_TIMED_OUT);
        }
        if (t->pend_head == NULL) {
            t->pend_tail = NULL;
        } else {
            *next_ms = SL_MIN(*next_ms, t->pend_head->enq_ms + timeout);
        }
    }
}

/* Whether a batch sealed now would go out at once: nothing of p waits before
 * it, p has a request slot left, and its leader's connection takes one. */
static bool could_send_now(sl_client *c, const struct slc_part *p, int64_t now_ms)
{
    if (p->q_head != NULL || p->hold || now_ms < p->retry_at_ms || p->leader < 0 ||
        p->inflight >= SLC_INFLIGHT_PER_PARTITION_MAX ||
        (p->inflight > 0 && p->inflight_node != p->leader)) {
        return false;
    }
    const struct slc_broker *b = slc_broker_find(c, p->leader);
    return b != NULL && slc_broker_can_send(c, b, SLC_REQ_PRODUCE);
}

/*
 * Seals each open batch whose linger.ms is over, but only when it could be
 * sent at once. While a partition's requests are all in flight its open batch
 * goes on filling (up to batch.size) and is sealed when an answer frees a
 * slot, as Kafka's accumulator drains a batch only when it can send it: with
 * linger.ms=0 the batches then grow with the load instead of queueing as
 * one-message requests behind the 5 in flight. Also expires old batches and
 * connects to the leaders that have batches waiting.
 */
static void tick_parts(sl_client *c, int64_t now_ms, int64_t *next_ms)
{
    for (struct slc_part *p = c->active, *next; p != NULL; p = next) {
        next = p->active_next;
        if (p->open != NULL) {
            int64_t due = p->open->opened_ms + c->conf->linger_ms;
            if (c->flushing || (now_ms >= due && could_send_now(c, p, now_ms))) {
                slc_part_seal(c, p);
            } else if (now_ms < due) {
                *next_ms = SL_MIN(*next_ms, due);
            } else if (now_ms < p->retry_at_ms) {
                *next_ms = SL_MIN(*next_ms, p->retry_at_ms);
            }
            /* Otherwise an answer or a connection wakes the loop, and the
             * next round seals it. */
        }
        fail_uncompressed_heads(c, p);
        expire_part(c, p, now_ms, next_ms);
        if (p->leader < 0) {
            c->md_wanted = true;
        } else if (p->q_head != NULL || p->open != NULL) {
            struct slc_broker *b = slc_broker_find(c, p->leader);
            if (b == NULL) {
                c->md_wanted = true;
            } else {
                slc_broker_connect(c, b, now_ms, next_ms);
            }
        }
        slc_part_deactivate(c, p);
    }
}

void slc_producer_tick(sl_client *c, int64_t now_ms, int64_t *next_ms)
{
    pid_tick(c, now_ms, next_ms);
    tick_parts(c, now_ms, next_ms);
    if (c->pending_count > 0) {
        expire_pending(c, now_ms, next_ms);
    }
    drain(c, now_ms, next_ms);
}

/* ================================================================ failing all */

static void fail_queue(sl_client *c, struct slc_part *p, sl_err unsent, sl_err inflight)
{
    if (p->open != NULL) {
        struct slc_batch *b = p->open;
        p->open = NULL;
        slc_done_batch(c, b, unsent);
    }
    while (p->q_head != NULL) {
        struct slc_batch *b = p->q_head;
        p->q_head = b->next;
        b->next = NULL;
        /* Sent before and back for a retry: it may have been written. */
        slc_done_batch(c, b, b->attempts > 0 ? inflight : unsent);
    }
    p->q_tail = NULL;
}

void slc_fail_all(sl_client *c, sl_err unsent, sl_err inflight, bool with_inflight)
{
    slc_compressor_wait(c); /* nothing may be freed under the thread */
    for (struct slc_topic *t = c->topics; t != NULL; t = t->list_next) {
        while (t->pend_head != NULL) {
            struct slc_pending *pm = t->pend_head;
            t->pend_head = pm->next;
            pm->next = NULL;
            c->pending_count--;
            slc_done_pending(c, pm, unsent);
        }
        t->pend_tail = NULL;
        for (int32_t i = 0; i < t->parts_cap; i++) {
            fail_queue(c, t->parts[i], unsent, inflight);
        }
    }
    for (uint32_t i = 0; with_inflight && i < c->broker_count; i++) {
        struct slc_broker *b = c->brokers[i];
        for (uint32_t k = 0; k < b->ring_count; k++) {
            struct slc_req *req = &b->ring[(b->ring_head + k) % b->ring_cap];
            while (req->batches != NULL) {
                struct slc_batch *bt = req->batches;
                req->batches = bt->next;
                bt->next = NULL;
                bt->part->inflight--;
                slc_done_batch(c, bt, inflight);
            }
        }
    }
    for (struct slc_part *p = c->active, *next; p != NULL; p = next) {
        next = p->active_next;
        slc_part_deactivate(c, p);
    }
}

/* ================================================================ API */

static int add_bootstrap(sl_client *c, char *errstr, size_t errstr_size)
{
    const char *s = c->conf->bootstrap_servers;
    int32_t id = -1;
    while (*s != '\0') {
        size_t len = strcspn(s, ",");
        char host[SLC_HOST_BYTES];
        uint16_t port;
        /* slc_conf_check parsed every entry already. */
        int rc = slc_hostport_parse(s, len, host, sizeof(host), &port);
        SL_ASSERT(rc == 0);
        if (slc_broker_upsert(c, id--, host, strlen(host), port) == NULL) {
            snprintf(errstr, errstr_size, "bootstrap.servers: too many brokers or no memory");
            return -ENOMEM;
        }
        s += len;
        s += *s == ',';
    }
    return 0;
}

static int open_loop(sl_client *c)
{
    c->epfd = epoll_create1(EPOLL_CLOEXEC);
    c->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (c->epfd < 0 || c->timerfd < 0) {
        return -errno;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    return epoll_ctl(c->epfd, EPOLL_CTL_ADD, c->timerfd, &ev) == 0 ? 0 : -errno;
}

/* Frees a client that never ran (sl_producer_new's failure path). */
static void client_free_new(sl_client *c)
{
    for (uint32_t i = 0; i < c->broker_count; i++) {
        slc_broker_free(c->brokers[i]);
    }
    free(c->brokers);
    if (c->epfd >= 0) {
        close(c->epfd);
    }
    if (c->timerfd >= 0) {
        close(c->timerfd);
    }
    slc_compressor_stop(c);
    buf_deinit(&c->scratch);
    zstd_ctx_free(c->zstd);
    free(c);
}

/* A zstd producer compresses on a thread of its own (compressor.c); if that
 * cannot start, on the caller's thread, with one context kept across
 * batches. Fails only when neither is possible. */
static int start_compression(sl_client *c, char *errstr, size_t errstr_size)
{
    int rc = slc_compressor_start(c);
    if (rc == 0) {
        return 0;
    }
    c->zstd = zstd_ctx_new();
    if (c->zstd == NULL) {
        snprintf(errstr, errstr_size, "zstd context: out of memory");
        return -ENOMEM;
    }
    slc_error(c, SL_ERR_NOMEM, "no compression thread (%s): compressing in sl_poll", strerror(-rc));
    return 0;
}

sl_client *slc_client_new(sl_conf *conf, bool consumer, char *errstr, size_t errstr_size)
{
    char scratch_err[8];
    if (errstr == NULL || errstr_size == 0) {
        errstr = scratch_err; /* so that every path below may write one */
        errstr_size = sizeof(scratch_err);
    }
    if (conf == NULL) {
        snprintf(errstr, errstr_size, "%s: NULL conf",
                 consumer ? "sl_consumer_new" : "sl_producer_new");
        return NULL;
    }
    int checked = consumer ? slc_conf_check_consumer(conf, errstr, errstr_size)
                           : slc_conf_check(conf, errstr, errstr_size);
    if (checked != 0) {
        return NULL;
    }
    sl_client *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    c->epfd = -1;
    c->timerfd = -1;
    c->conf = conf;
    c->acks = slc_conf_acks(conf);
    /* A consumer produces nothing: no producer id to ask for. */
    c->idempotent = !consumer && slc_conf_idempotent(conf);
    c->timer_armed_ms = INT64_MAX;
    c->rng = ((uint64_t)time_mono_ns() ^ ((uint64_t)getpid() << 32) ^ (uintptr_t)c) | 1;
    c->md_wanted = true;
    c->md_ok_ms = INT64_MIN / 4;
    c->producer_id = -1;
    c->producer_epoch = -1;
    /* A compressed batch is at most zstd's bound of a full one. */
    buf_init(&c->scratch, (size_t)conf->batch_size * 2 + (1u << 20));
    int rc = open_loop(c);
    if (rc != 0) {
        snprintf(errstr, errstr_size, "epoll/timerfd: %s", strerror(-rc));
    } else {
        rc = add_bootstrap(c, errstr, errstr_size);
    }
    if (rc == 0 && !consumer && conf->compression_type == SLC_COMPRESSION_ZSTD) {
        rc = start_compression(c, errstr, errstr_size);
    }
    if (rc != 0) {
        c->conf = NULL; /* still the caller's */
        client_free_new(c);
        return NULL;
    }
    return c;
}

sl_client *sl_producer_new(sl_conf *conf, char *errstr, size_t errstr_size)
{
    return slc_client_new(conf, false, errstr, errstr_size);
}

/* key + value + header bytes, as batches and the queue bound count them;
 * SIZE_MAX when the headers are malformed. */
static size_t payload_of(const sl_msg *m)
{
    size_t n = (m->key != NULL ? m->key_len : 0) + (m->value != NULL ? m->value_len : 0);
    if ((m->key != NULL && m->key_len > INT32_MAX) ||
        (m->value != NULL && m->value_len > INT32_MAX) ||
        (m->header_count > 0 && m->headers == NULL) || m->header_count > INT32_MAX) {
        return SIZE_MAX;
    }
    for (size_t i = 0; i < m->header_count; i++) {
        const sl_header *h = &m->headers[i];
        if (h->name == NULL || (h->value != NULL && h->value_len > INT32_MAX)) {
            return SIZE_MAX;
        }
        n += strlen(h->name) + (h->value != NULL ? h->value_len : 0);
    }
    return n;
}

static struct slc_topic *topic_of(sl_client *c, const char *name)
{
    struct slc_topic *t = c->last_topic;
    if (t != NULL && strcmp(t->name, name) == 0) {
        return t;
    }
    size_t len = strlen(name);
    if (!slc_topic_name_valid(name, len)) {
        return NULL;
    }
    t = slc_topic_get(c, name, len, true);
    c->last_topic = t != NULL ? t : c->last_topic;
    return t;
}

sl_err sl_produce(sl_client *c, const sl_msg *m)
{
    if (c == NULL || m == NULL || m->topic == NULL || m->partition < SL_PARTITION_ANY) {
        return SL_ERR_INVALID_ARG;
    }
    if (c->closing) {
        return SL_ERR_STATE;
    }
    if (c->fatal) {
        return SL_ERR_FATAL;
    }
    size_t payload = payload_of(m);
    if (payload == SIZE_MAX) {
        return SL_ERR_INVALID_ARG;
    }
    if (payload > (size_t)c->conf->message_max_bytes) {
        return SL_ERR_MSG_SIZE_TOO_LARGE;
    }
    if (c->msg_count >= (size_t)c->conf->queue_max_messages ||
        c->msg_bytes + payload > (size_t)c->conf->queue_max_kbytes * 1024) {
        return SL_ERR_QUEUE_FULL;
    }
    struct slc_topic *t = topic_of(c, m->topic);
    if (t == NULL) {
        return SL_ERR_INVALID_ARG;
    }
    if (t->partition_count >= 0 && m->partition >= t->partition_count) {
        return SL_ERR_UNKNOWN_PARTITION;
    }
    int64_t timestamp = m->timestamp != 0 ? m->timestamp : time_wall_ms();
    sl_err err = slc_place(c, t, m, timestamp, NOW_UNREAD, NOW_UNREAD);
    if (err == SL_OK) {
        c->msg_count++;
        c->msg_bytes += payload;
    }
    return err;
}

size_t sl_queue_len(const sl_client *c)
{
    return c != NULL ? c->msg_count : 0;
}
