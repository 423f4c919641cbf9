/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The consumer with manual assignment: sl_consumer_new, sl_assign,
 * sl_consume, sl_record_free, sl_position; the Fetch and ListOffsets
 * requests behind them.
 *
 * Each assigned partition (struct cpart) is in one state:
 *   LIST      its position is a spec (beginning, end, a timestamp) that a
 *             ListOffsets request to its leader turns into an offset
 *   LISTING   that request is in flight
 *   FETCH     its position is an offset; the next Fetch to its leader takes it
 *   FETCHING  a Fetch holding it is in flight
 *   STOPPED   a non-retriable error was handed out as an event; only
 *             sl_assign starts it again
 * Per broker, at most one Fetch and one ListOffsets are in flight; a Fetch
 * holds every partition in FETCH led by that broker (sessionless, Kafka's
 * full fetch). Leadership errors ask for metadata and back the partition
 * off; a lost connection backs it off.
 *
 * Records are copied out of each answer while it is decoded (the answer's
 * bytes live only as long as the handler) into one allocation each, queued
 * in arrival order: per partition, offset order. The queue's key + value +
 * header bytes are bounded by queued.max.messages.kbytes: no Fetch is sent
 * while it is above, so it holds at most that plus one answer
 * (fetch.max.bytes). A record handed out by sl_consume leaves the queue and
 * the bound; the caller frees it.
 *
 * sl_assign while a request for the partition is in flight: the new
 * position is kept in reassign and applied when the answer comes back; the
 * answer itself is dropped.
 */
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/internal.h"
#include "common/assert.h"
#include "proto/errors.h"

enum cpart_state { CP_LIST, CP_LISTING, CP_FETCH, CP_FETCHING, CP_STOPPED };

/* reassign when none is waiting. */
#define NO_REASSIGN INT64_MIN

struct cpart {
    struct slc_topic *topic;
    int32_t partition;
    enum cpart_state state;
    int64_t spec;     /* CP_LIST: SL_OFFSET_BEGINNING, _END or a timestamp */
    int64_t position; /* CP_FETCH*: next offset; -1 while a spec */
    int64_t high_watermark;
    int64_t eof_at; /* position of the last EOF event; -1: none yet */
    int32_t node;   /* broker of the request in flight */
    int64_t retry_at_ms;
    uint32_t failures;
    int64_t reassign; /* sl_assign's offset, waiting for an answer */
    /* What a commit of this partition says: the offset after the last
     * record sl_consume handed out, or the position a seek or reset set;
     * -1 while neither is known. */
    int64_t consumed;
};

/* A queued record: this header, then the sl_header array, then the topic
 * name, key, value and header bytes. */
struct cmsg {
    struct cmsg *next;
    struct cpart *cp;
    size_t payload_bytes; /* counted against queued.max.messages.kbytes */
    sl_record rec;
};

struct slc_consumer {
    struct cpart **parts;
    uint32_t count, cap;
    struct cmsg *q_head, *q_tail;
    size_t q_bytes;
    uint32_t handed_since_io;
    struct cpart **to_fetch, **to_list; /* a tick's scratch, cap entries each */
    struct buf decompressed;            /* scratch for compressed batches */
};

static bool offset_is_timestamp(int64_t offset)
{
    return offset >= SL_OFFSET_TIMESTAMP_BASE && offset < SL_OFFSET_TIMESTAMP_BASE / 2;
}

/* ================================================================ the queue */

static void enqueue(struct slc_consumer *cons, struct cmsg *m)
{
    m->next = NULL;
    if (cons->q_tail != NULL) {
        cons->q_tail->next = m;
    } else {
        cons->q_head = m;
    }
    cons->q_tail = m;
    cons->q_bytes += m->payload_bytes;
}

static struct cmsg *dequeue(struct slc_consumer *cons)
{
    struct cmsg *m = cons->q_head;
    if (m == NULL) {
        return NULL;
    }
    cons->q_head = m->next;
    if (cons->q_head == NULL) {
        cons->q_tail = NULL;
    }
    SL_ASSERT(cons->q_bytes >= m->payload_bytes);
    cons->q_bytes -= m->payload_bytes;
    m->next = NULL;
    return m;
}

/* Drops the queued records of cp (it moved). */
static void drop_queued(struct slc_consumer *cons, const struct cpart *cp)
{
    struct cmsg **link = &cons->q_head;
    cons->q_tail = NULL;
    while (*link != NULL) {
        struct cmsg *m = *link;
        if (m->cp == cp) {
            *link = m->next;
            SL_ASSERT(cons->q_bytes >= m->payload_bytes);
            cons->q_bytes -= m->payload_bytes;
            free(m);
            continue;
        }
        cons->q_tail = m;
        link = &m->next;
    }
}

/* A record without key, value or headers: an event, or the base of one. */
static struct cmsg *cmsg_alloc(const struct cpart *cp, size_t header_count, size_t bytes)
{
    size_t name_len = strlen(cp->topic->name);
    struct cmsg *m = malloc(sizeof(*m) + header_count * sizeof(sl_header) + name_len + 1 + bytes);
    if (m == NULL) {
        return NULL;
    }
    *m = (struct cmsg){.cp = (struct cpart *)cp};
    char *name = (char *)(m + 1) + header_count * sizeof(sl_header);
    memcpy(name, cp->topic->name, name_len + 1);
    m->rec = (sl_record){.topic = name,
                         .partition = cp->partition,
                         .offset = -1,
                         .timestamp = -1,
                         .headers = header_count > 0 ? (sl_header *)(m + 1) : NULL,
                         .header_count = header_count,
                         .high_watermark = cp->high_watermark};
    return m;
}

/* Queues an event of cp; a failed allocation drops it (the error callback
 * says so). */
static void event(sl_client *c, struct cpart *cp, sl_err err, int64_t offset)
{
    struct cmsg *m = cmsg_alloc(cp, 0, 0);
    if (m == NULL) {
        slc_error(c, SL_ERR_NOMEM, "%s [%d]: event %s dropped: out of memory", cp->topic->name,
                  cp->partition, sl_err_name(err));
        return;
    }
    m->rec.err = err;
    m->rec.offset = offset;
    enqueue(c->cons, m);
}

struct copy_ctx {
    sl_client *c;
    struct cpart *cp;
};

static uint8_t *put_bytes(uint8_t *dst, const void *src, int32_t len, const void **out,
                          size_t *out_len)
{
    if (len < 0) {
        *out = NULL;
        *out_len = 0;
        return dst;
    }
    memcpy(dst, src, (size_t)len);
    *out = dst;
    *out_len = (size_t)len;
    return dst + len;
}

/* slc_record_fn: copies one record into the queue. */
static int copy_record(void *arg, const struct batch_record *r, int64_t offset, int timestamp_type)
{
    struct copy_ctx *ctx = arg;
    size_t payload = (size_t)SL_MAX(r->key_len, 0) + (size_t)SL_MAX(r->value_len, 0);
    size_t bytes = payload;
    for (uint32_t i = 0; i < r->header_count; i++) {
        size_t hbytes =
            (size_t)SL_MAX(r->headers[i].key_len, 0) + (size_t)SL_MAX(r->headers[i].value_len, 0);
        payload += hbytes;
        bytes += hbytes + 1; /* the name's NUL */
    }
    struct cmsg *m = cmsg_alloc(ctx->cp, r->header_count, bytes);
    if (m == NULL) {
        return -ENOMEM;
    }
    m->payload_bytes = payload;
    m->rec.offset = offset;
    m->rec.timestamp = r->timestamp;
    m->rec.timestamp_type = timestamp_type;
    uint8_t *dst = (uint8_t *)m->rec.topic + strlen(m->rec.topic) + 1;
    dst = put_bytes(dst, r->key, r->key_len, &m->rec.key, &m->rec.key_len);
    dst = put_bytes(dst, r->value, r->value_len, &m->rec.value, &m->rec.value_len);
    sl_header *hdrs = (sl_header *)(m + 1);
    for (uint32_t i = 0; i < r->header_count; i++) {
        const struct batch_record_header *h = &r->headers[i];
        int32_t name_len = SL_MAX(h->key_len, 0);
        memcpy(dst, h->key, (size_t)name_len);
        dst[name_len] = '\0';
        hdrs[i].name = (const char *)dst;
        dst += name_len + 1;
        dst = put_bytes(dst, h->value, h->value_len, &hdrs[i].value, &hdrs[i].value_len);
    }
    enqueue(ctx->c->cons, m);
    return 0;
}

/* ================================================================ partitions */

static struct cpart *cpart_find(const struct slc_consumer *cons, const struct slc_topic *t,
                                int32_t partition)
{
    for (uint32_t i = 0; i < cons->count; i++) {
        if (cons->parts[i]->topic == t && cons->parts[i]->partition == partition) {
            return cons->parts[i];
        }
    }
    return NULL;
}

/* Sets cp's position from an sl_assign offset. */
static void cpart_seek(struct cpart *cp, int64_t offset)
{
    cp->failures = 0;
    cp->retry_at_ms = 0;
    cp->eof_at = -1;
    cp->reassign = NO_REASSIGN;
    if (offset >= 0) {
        cp->position = offset;
        cp->consumed = offset;
        cp->state = CP_FETCH;
    } else {
        cp->spec = offset;
        cp->position = -1;
        cp->state = CP_LIST;
    }
}

/* A retriable failure: try again after a backoff. */
static void cpart_backoff(sl_client *c, struct cpart *cp, enum cpart_state state, int64_t now_ms)
{
    cp->state = state;
    cp->failures++;
    cp->retry_at_ms = now_ms + slc_backoff_ms(c->conf->retry_backoff_ms,
                                              c->conf->retry_backoff_max_ms, cp->failures, &c->rng);
}

/* The answer for cp came back: applies a waiting sl_assign. Returns true
 * when one was applied (the answer is then stale). */
static bool cpart_answered(struct slc_consumer *cons, struct cpart *cp, enum cpart_state state)
{
    cp->state = state;
    if (cp->reassign == NO_REASSIGN) {
        return false;
    }
    drop_queued(cons, cp);
    cpart_seek(cp, cp->reassign);
    return true;
}

/* Errors that mean: the metadata is stale, ask again and retry. */
static bool leadership_error(int err)
{
    switch (err) {
    case KAFKA_ERR_NOT_LEADER_OR_FOLLOWER:
    case KAFKA_ERR_LEADER_NOT_AVAILABLE:
    case KAFKA_ERR_UNKNOWN_TOPIC_OR_PARTITION:
    case KAFKA_ERR_FENCED_LEADER_EPOCH:
    case KAFKA_ERR_UNKNOWN_LEADER_EPOCH:
    case KAFKA_ERR_REPLICA_NOT_AVAILABLE:
    case KAFKA_ERR_KAFKA_STORAGE_ERROR:
    case KAFKA_ERR_OFFSET_NOT_AVAILABLE:
        return true;
    default:
        return false;
    }
}

/* A partition error of an answer: retry, reset, or stop with an event. */
static void cpart_error(sl_client *c, struct cpart *cp, int err, enum cpart_state retry_state,
                        int64_t now_ms)
{
    if (err == KAFKA_ERR_OFFSET_OUT_OF_RANGE && c->conf->auto_offset_reset != SLC_RESET_NONE) {
        int64_t to =
            c->conf->auto_offset_reset == SLC_RESET_EARLIEST ? SL_OFFSET_BEGINNING : SL_OFFSET_END;
        slc_error(c, SL_ERR_OFFSET_OUT_OF_RANGE, "%s [%d]: offset %lld out of range: reset to %s",
                  cp->topic->name, cp->partition, (long long)cp->position,
                  to == SL_OFFSET_BEGINNING ? "earliest" : "latest");
        cpart_seek(cp, to);
        return;
    }
    if (leadership_error(err) || kafka_error_retriable(err)) {
        c->md_wanted = true;
        cpart_backoff(c, cp, retry_state, now_ms);
        return;
    }
    cp->state = CP_STOPPED;
    event(c, cp, (sl_err)err, cp->position);
}

/* ================================================================ requests */

/* Where cp's requests go now: its leader's broker when up, else NULL
 * (asking for metadata or connecting as needed). */
static struct slc_broker *leader_of(sl_client *c, struct cpart *cp, int64_t now_ms,
                                    int64_t *next_ms)
{
    struct slc_topic *t = cp->topic;
    if (t->partition_count < 0 || cp->partition >= t->parts_cap ||
        t->parts[cp->partition]->leader < 0) {
        c->md_wanted = true;
        return NULL;
    }
    struct slc_broker *b = slc_broker_find(c, t->parts[cp->partition]->leader);
    if (b == NULL) {
        c->md_wanted = true;
        return NULL;
    }
    if (b->state == SLC_CONN_DOWN) {
        slc_broker_connect(c, b, now_ms, next_ms);
        return NULL;
    }
    return b->state == SLC_CONN_UP ? b : NULL;
}

static int by_topic(const void *x, const void *y)
{
    const struct cpart *a = *(const struct cpart *const *)x;
    const struct cpart *b = *(const struct cpart *const *)y;
    uintptr_t ta = (uintptr_t)a->topic;
    uintptr_t tb = (uintptr_t)b->topic;
    return ta < tb ? -1 : ta > tb;
}

static int send_fetch(sl_client *c, struct slc_broker *b, struct cpart **cps, size_t n,
                      int64_t now_ms)
{
    qsort(cps, n, sizeof(*cps), by_topic);
    struct kmsg_fetch_request_fetch_topic *topics = calloc(n, sizeof(*topics));
    struct kmsg_fetch_request_fetch_partition *parts = calloc(n, sizeof(*parts));
    if (topics == NULL || parts == NULL) {
        free(topics);
        free(parts);
        return -ENOMEM;
    }
    int32_t nt = 0;
    for (size_t i = 0; i < n; i++) {
        struct slc_topic *t = cps[i]->topic;
        if (i == 0 || cps[i - 1]->topic != t) {
            kmsg_init(&kmsg_fetch_request_fetch_topic_desc, &topics[nt]);
            topics[nt].topic = (struct kstr){t->name, (int32_t)strlen(t->name)};
            topics[nt].partitions = (struct karray){&parts[i], 0};
            nt++;
        }
        topics[nt - 1].partitions.count++;
        kmsg_init(&kmsg_fetch_request_fetch_partition_desc, &parts[i]);
        parts[i].partition = cps[i]->partition;
        parts[i].fetch_offset = cps[i]->position;
        parts[i].partition_max_bytes = c->conf->max_partition_fetch_bytes;
    }
    struct kmsg_fetch_request rq;
    kmsg_init(&kmsg_fetch_request_desc, &rq);
    rq.replica_id = -1;
    rq.max_wait_ms = c->conf->fetch_max_wait_ms;
    rq.min_bytes = c->conf->fetch_min_bytes;
    rq.max_bytes = c->conf->fetch_max_bytes;
    rq.isolation_level = 0; /* read uncommitted */
    rq.session_id = 0;      /* sessionless: every Fetch names every partition */
    rq.session_epoch = -1;
    rq.topics = (struct karray){topics, nt};
    rq.rack_id = (struct kstr){"", 0};
    struct slc_req req = {.kind = SLC_REQ_FETCH,
                          .api_key = KMSG_API_FETCH,
                          .version = b->versions[KMSG_API_FETCH],
                          .expects_response = true};
    int rc = slc_broker_send(c, b, &req, &rq, now_ms);
    free(topics);
    free(parts);
    return rc;
}

static int send_list(sl_client *c, struct slc_broker *b, struct cpart **cps, size_t n,
                     int64_t now_ms)
{
    qsort(cps, n, sizeof(*cps), by_topic);
    struct kmsg_list_offsets_request_list_offsets_topic *topics = calloc(n, sizeof(*topics));
    struct kmsg_list_offsets_request_list_offsets_partition *parts = calloc(n, sizeof(*parts));
    if (topics == NULL || parts == NULL) {
        free(topics);
        free(parts);
        return -ENOMEM;
    }
    int32_t nt = 0;
    for (size_t i = 0; i < n; i++) {
        struct slc_topic *t = cps[i]->topic;
        if (i == 0 || cps[i - 1]->topic != t) {
            kmsg_init(&kmsg_list_offsets_request_list_offsets_topic_desc, &topics[nt]);
            topics[nt].name = (struct kstr){t->name, (int32_t)strlen(t->name)};
            topics[nt].partitions = (struct karray){&parts[i], 0};
            nt++;
        }
        topics[nt - 1].partitions.count++;
        kmsg_init(&kmsg_list_offsets_request_list_offsets_partition_desc, &parts[i]);
        parts[i].partition_index = cps[i]->partition;
        int64_t spec = cps[i]->spec;
        parts[i].timestamp = offset_is_timestamp(spec) ? spec - SL_OFFSET_TIMESTAMP_BASE : spec;
    }
    struct kmsg_list_offsets_request rq;
    kmsg_init(&kmsg_list_offsets_request_desc, &rq);
    rq.replica_id = -1;
    rq.isolation_level = 0;
    rq.topics = (struct karray){topics, nt};
    rq.timeout_ms = c->conf->request_timeout_ms;
    struct slc_req req = {.kind = SLC_REQ_LIST_OFFSETS,
                          .api_key = KMSG_API_LIST_OFFSETS,
                          .version = b->versions[KMSG_API_LIST_OFFSETS],
                          .expects_response = true};
    int rc = slc_broker_send(c, b, &req, &rq, now_ms);
    free(topics);
    free(parts);
    return rc;
}

/* Sends b's Fetch or ListOffsets for the partitions in state `ready` that it
 * leads, moving them to `busy`. */
static void send_for(sl_client *c, struct slc_broker *b, enum cpart_state ready,
                     enum cpart_state busy, struct cpart **cps, size_t n, int64_t now_ms)
{
    if (n == 0) {
        return;
    }
    bool fetch = ready == CP_FETCH;
    int16_t version = b->versions[fetch ? KMSG_API_FETCH : KMSG_API_LIST_OFFSETS];
    int rc = version < 0 ? -EPROTONOSUPPORT
             : fetch     ? send_fetch(c, b, cps, n, now_ms)
                         : send_list(c, b, cps, n, now_ms);
    if (rc != 0) {
        slc_error(c, version < 0 ? SL_ERR_UNSUPPORTED_FEATURE : SL_ERR_NOMEM, "%s: %s not sent: %s",
                  b->addr, fetch ? "Fetch" : "ListOffsets",
                  version < 0 ? "no usable version" : strerror(-rc));
        for (size_t i = 0; i < n; i++) {
            cpart_backoff(c, cps[i], ready, now_ms);
        }
        return;
    }
    for (size_t i = 0; i < n; i++) {
        cps[i]->state = busy;
        cps[i]->node = b->node_id;
    }
    if (fetch) {
        b->fetch_inflight = true;
    } else {
        b->list_inflight = true;
    }
}

void slc_consumer_tick(sl_client *c, int64_t now_ms, int64_t *next_ms)
{
    struct slc_consumer *cons = c->cons;
    if (cons->count == 0) {
        return;
    }
    bool room = cons->q_bytes < (size_t)c->conf->queued_max_kbytes * 1024;
    struct cpart **fetch = cons->to_fetch;
    struct cpart **list = cons->to_list;
    for (uint32_t i = 0; i < c->broker_count; i++) {
        struct slc_broker *b = c->brokers[i];
        bool can_fetch = room && !b->fetch_inflight && slc_broker_can_send(c, b, SLC_REQ_FETCH);
        bool can_list = !b->list_inflight && slc_broker_can_send(c, b, SLC_REQ_LIST_OFFSETS);
        size_t nf = 0, nl = 0;
        for (uint32_t k = 0; k < cons->count; k++) {
            struct cpart *cp = cons->parts[k];
            if (cp->state != CP_FETCH && cp->state != CP_LIST) {
                continue;
            }
            if (now_ms < cp->retry_at_ms) {
                *next_ms = SL_MIN(*next_ms, cp->retry_at_ms);
                continue;
            }
            if (leader_of(c, cp, now_ms, next_ms) != b) {
                continue;
            }
            if (cp->state == CP_FETCH && can_fetch) {
                fetch[nf++] = cp;
            } else if (cp->state == CP_LIST && can_list) {
                list[nl++] = cp;
            }
        }
        send_for(c, b, CP_LIST, CP_LISTING, list, nl, now_ms);
        send_for(c, b, CP_FETCH, CP_FETCHING, fetch, nf, now_ms);
    }
}

/* ================================================================ answers */

/* Every partition still waiting on b's request of that kind: back to ready
 * (lost: with a backoff). */
static void release_waiting(sl_client *c, struct slc_broker *b, enum cpart_state busy,
                            enum cpart_state ready, bool lost, int64_t now_ms)
{
    struct slc_consumer *cons = c->cons;
    for (uint32_t i = 0; i < cons->count; i++) {
        struct cpart *cp = cons->parts[i];
        if (cp->state != busy || cp->node != b->node_id) {
            continue;
        }
        if (cpart_answered(cons, cp, ready)) {
            continue;
        }
        if (lost) {
            cpart_backoff(c, cp, ready, now_ms);
        }
    }
}

static void fetched(sl_client *c, struct cpart *cp,
                    const struct kmsg_fetch_response_partition_data *pd, int64_t now_ms)
{
    if (pd->error_code != KAFKA_ERR_NONE) {
        cpart_error(c, cp, pd->error_code, CP_FETCH, now_ms);
        return;
    }
    cp->failures = 0;
    cp->high_watermark = pd->high_watermark;
    if (pd->records.len > 0) {
        struct copy_ctx ctx = {c, cp};
        const char *why = NULL;
        int rc = slc_records_decode(pd->records.ptr, (size_t)pd->records.len, &cp->position,
                                    &c->cons->decompressed, copy_record, &ctx, &why);
        if (rc == -ENOMEM) {
            slc_error(c, SL_ERR_NOMEM, "%s [%d]: out of memory for fetched records",
                      cp->topic->name, cp->partition);
            cpart_backoff(c, cp, CP_FETCH, now_ms);
            return;
        }
        if (rc != 0) {
            slc_error(c, rc == -EMSGSIZE ? SL_ERR_MESSAGE_TOO_LARGE : SL_ERR_BAD_MSG,
                      "%s [%d] at offset %lld: %s", cp->topic->name, cp->partition,
                      (long long)cp->position, why != NULL ? why : "?");
            cp->state = CP_STOPPED;
            event(c, cp, rc == -EMSGSIZE ? SL_ERR_MESSAGE_TOO_LARGE : SL_ERR_BAD_MSG, cp->position);
            return;
        }
    }
    if (c->conf->enable_partition_eof && cp->position >= cp->high_watermark &&
        cp->eof_at != cp->position) {
        cp->eof_at = cp->position;
        event(c, cp, SL_ERR_PARTITION_EOF, cp->position);
    }
}

void slc_fetch_response(sl_client *c, struct slc_broker *b, const void *resp_, sl_err err,
                        int64_t now_ms)
{
    (void)err;
    b->fetch_inflight = false;
    const struct kmsg_fetch_response *resp = resp_;
    if (resp != NULL && resp->error_code != KAFKA_ERR_NONE) {
        slc_error(c, (sl_err)resp->error_code, "%s: Fetch: %s", b->addr,
                  kafka_error_name(resp->error_code));
        resp = NULL;
    }
    if (resp == NULL) {
        release_waiting(c, b, CP_FETCHING, CP_FETCH, true, now_ms);
        return;
    }
    const struct kmsg_fetch_response_fetchable_topic_response *rt = resp->responses.items;
    for (int32_t i = 0; i < resp->responses.count; i++) {
        struct slc_topic *t =
            slc_topic_get(c, rt[i].topic.ptr, (size_t)SL_MAX(rt[i].topic.len, 0), false);
        const struct kmsg_fetch_response_partition_data *pd = rt[i].partitions.items;
        for (int32_t k = 0; t != NULL && k < rt[i].partitions.count; k++) {
            struct cpart *cp = cpart_find(c->cons, t, pd[k].partition_index);
            if (cp == NULL || cp->state != CP_FETCHING || cp->node != b->node_id) {
                continue;
            }
            if (!cpart_answered(c->cons, cp, CP_FETCH)) {
                fetched(c, cp, &pd[k], now_ms);
            }
        }
    }
    /* Partitions the answer left out: asked again next time. */
    release_waiting(c, b, CP_FETCHING, CP_FETCH, false, now_ms);
}

static void listed(sl_client *c, struct cpart *cp,
                   const struct kmsg_list_offsets_response_list_offsets_partition_response *pr,
                   int64_t now_ms)
{
    if (pr->error_code != KAFKA_ERR_NONE) {
        cpart_error(c, cp, pr->error_code, CP_LIST, now_ms);
        return;
    }
    if (pr->offset < 0) {
        /* No record at or after the timestamp: start at the end. */
        cp->spec = SL_OFFSET_END;
        cp->state = CP_LIST;
        return;
    }
    cp->failures = 0;
    cp->position = pr->offset;
    cp->consumed = pr->offset;
    cp->state = CP_FETCH;
}

void slc_list_offsets_response(sl_client *c, struct slc_broker *b, const void *resp_, sl_err err,
                               int64_t now_ms)
{
    (void)err;
    b->list_inflight = false;
    const struct kmsg_list_offsets_response *resp = resp_;
    if (resp == NULL) {
        release_waiting(c, b, CP_LISTING, CP_LIST, true, now_ms);
        return;
    }
    const struct kmsg_list_offsets_response_list_offsets_topic_response *rt = resp->topics.items;
    for (int32_t i = 0; i < resp->topics.count; i++) {
        struct slc_topic *t =
            slc_topic_get(c, rt[i].name.ptr, (size_t)SL_MAX(rt[i].name.len, 0), false);
        const struct kmsg_list_offsets_response_list_offsets_partition_response *pr =
            rt[i].partitions.items;
        for (int32_t k = 0; t != NULL && k < rt[i].partitions.count; k++) {
            struct cpart *cp = cpart_find(c->cons, t, pr[k].partition_index);
            if (cp == NULL || cp->state != CP_LISTING || cp->node != b->node_id) {
                continue;
            }
            if (!cpart_answered(c->cons, cp, CP_LIST)) {
                listed(c, cp, &pr[k], now_ms);
            }
        }
    }
    release_waiting(c, b, CP_LISTING, CP_LIST, false, now_ms);
}

/* ================================================================ API */

void slc_consumer_free(struct slc_consumer *cons)
{
    if (cons == NULL) {
        return;
    }
    struct cmsg *m;
    while ((m = dequeue(cons)) != NULL) {
        free(m);
    }
    for (uint32_t i = 0; i < cons->count; i++) {
        free(cons->parts[i]);
    }
    free(cons->parts);
    free(cons->to_fetch);
    free(cons->to_list);
    buf_deinit(&cons->decompressed);
    free(cons);
}

bool slc_consumer_ready(const sl_client *c)
{
    return c->cons != NULL && c->cons->q_head != NULL;
}

sl_client *sl_consumer_new(sl_conf *conf, char *errstr, size_t errstr_size)
{
    sl_client *c = slc_client_new(conf, true, errstr, errstr_size);
    if (c == NULL) {
        return NULL;
    }
    c->cons = calloc(1, sizeof(*c->cons));
    if (c->cons == NULL) {
        if (errstr_size > 0) {
            snprintf(errstr, errstr_size, "out of memory");
        }
        c->conf = NULL; /* still the caller's */
        sl_close(c, 0);
        return NULL;
    }
    buf_init(&c->cons->decompressed, SLC_DECOMPRESSED_BYTES_MAX);
    if (slc_group_new(c, errstr, errstr_size) != 0) {
        c->conf = NULL; /* still the caller's */
        sl_close(c, 0);
        return NULL;
    }
    return c;
}

sl_err sl_assign(sl_client *c, const char *topic, int32_t partition, int64_t offset)
{
    if (c == NULL || c->cons == NULL || c->closing || slc_group_subscribed(c)) {
        return SL_ERR_STATE;
    }
    return slc_consumer_assign(c, topic, partition, offset);
}

sl_err slc_consumer_assign(sl_client *c, const char *topic, int32_t partition, int64_t offset)
{
    size_t len = topic != NULL ? strlen(topic) : 0;
    bool offset_ok = offset >= 0 || offset == SL_OFFSET_BEGINNING || offset == SL_OFFSET_END ||
                     offset_is_timestamp(offset);
    if (topic == NULL || !slc_topic_name_valid(topic, len) || partition < 0 || !offset_ok) {
        return SL_ERR_INVALID_ARG;
    }
    struct slc_consumer *cons = c->cons;
    struct slc_topic *t = slc_topic_get(c, topic, len, true);
    if (t == NULL) {
        return SL_ERR_NOMEM;
    }
    if (t->partition_count >= 0 && partition >= t->partition_count) {
        return SL_ERR_UNKNOWN_PARTITION;
    }
    struct cpart *cp = cpart_find(cons, t, partition);
    if (cp != NULL) {
        if (cp->state == CP_FETCHING || cp->state == CP_LISTING) {
            cp->reassign = offset; /* applied when the answer comes */
        } else {
            drop_queued(cons, cp);
            cpart_seek(cp, offset);
        }
        slc_wake_at(c, 0);
        return SL_OK;
    }
    if (cons->count >= SLC_ASSIGNED_MAX) {
        return SL_ERR_QUEUE_FULL;
    }
    if (cons->count == cons->cap) {
        uint32_t cap = cons->cap > 0 ? cons->cap * 2 : 16;
        struct cpart **parts = realloc(cons->parts, cap * sizeof(*parts));
        if (parts == NULL) {
            return SL_ERR_NOMEM;
        }
        cons->parts = parts;
        struct cpart **to_fetch = realloc(cons->to_fetch, cap * sizeof(*to_fetch));
        if (to_fetch == NULL) {
            return SL_ERR_NOMEM;
        }
        cons->to_fetch = to_fetch;
        struct cpart **to_list = realloc(cons->to_list, cap * sizeof(*to_list));
        if (to_list == NULL) {
            return SL_ERR_NOMEM;
        }
        cons->to_list = to_list;
        cons->cap = cap;
    }
    cp = calloc(1, sizeof(*cp));
    if (cp == NULL) {
        return SL_ERR_NOMEM;
    }
    cp->topic = t;
    cp->partition = partition;
    cp->high_watermark = -1;
    cp->node = -1;
    cp->consumed = -1;
    cpart_seek(cp, offset);
    cons->parts[cons->count++] = cp;
    slc_wake_at(c, 0);
    return SL_OK;
}

sl_record *sl_consume(sl_client *c, int timeout_ms)
{
    if (c == NULL || c->cons == NULL || c->in_callback || c->closing) {
        return NULL;
    }
    struct slc_consumer *cons = c->cons;
    slc_group_polled(c);
    if (cons->q_head == NULL && cons->count == 0 && !slc_group_subscribed(c)) {
        return NULL;
    }
    if (cons->q_head != NULL && ++cons->handed_since_io >= SLC_CONSUME_IO_EVERY) {
        /* Keep the next Fetch under way while the queue drains. */
        cons->handed_since_io = 0;
        sl_poll(c, 0);
    }
    int64_t deadline = timeout_ms < 0 ? INT64_MAX : slc_now_ms() + timeout_ms;
    while (cons->q_head == NULL) {
        int64_t left = deadline == INT64_MAX ? -1 : deadline - slc_now_ms();
        sl_poll(c, left < 0 && deadline != INT64_MAX ? 0 : (int)SL_MIN(left, (int64_t)INT_MAX));
        if (cons->q_head == NULL && deadline != INT64_MAX && slc_now_ms() >= deadline) {
            return NULL;
        }
    }
    struct cmsg *m = dequeue(cons);
    if (m->rec.err == SL_OK) {
        m->cp->consumed = m->rec.offset + 1;
    }
    return &m->rec;
}

/* ================================================================ groups */

uint32_t slc_consumer_assigned(const sl_client *c)
{
    return c->cons->count;
}

void slc_consumer_clear(sl_client *c)
{
    struct slc_consumer *cons = c->cons;
    for (uint32_t i = 0; i < cons->count; i++) {
        drop_queued(cons, cons->parts[i]);
        free(cons->parts[i]);
    }
    cons->count = 0;
}

sl_err slc_consumer_stop(sl_client *c, const char *topic, int32_t partition, sl_err err)
{
    sl_err rc = slc_consumer_assign(c, topic, partition, SL_OFFSET_END);
    if (rc != SL_OK) {
        return rc;
    }
    struct cpart *cp =
        cpart_find(c->cons, slc_topic_get(c, topic, strlen(topic), false), partition);
    SL_ASSERT(cp != NULL); /* just assigned */
    cp->state = CP_STOPPED;
    event(c, cp, err, -1);
    return SL_OK;
}

static int by_name_partition(const void *x, const void *y)
{
    const sl_topic_partition *a = x;
    const sl_topic_partition *b = y;
    int rc = strcmp(a->topic, b->topic);
    if (rc != 0) {
        return rc;
    }
    return a->partition < b->partition ? -1 : a->partition > b->partition;
}

sl_topic_partition *slc_consumer_offsets(sl_client *c, bool consumed_only, size_t *count)
{
    struct slc_consumer *cons = c->cons;
    sl_topic_partition *out = calloc(cons->count > 0 ? cons->count : 1, sizeof(*out));
    if (out == NULL) {
        return NULL;
    }
    size_t n = 0;
    for (uint32_t i = 0; i < cons->count; i++) {
        const struct cpart *cp = cons->parts[i];
        if (consumed_only && cp->consumed < 0) {
            continue;
        }
        out[n++] = (sl_topic_partition){.topic = cp->topic->name,
                                        .partition = cp->partition,
                                        .offset = consumed_only ? cp->consumed : cp->position};
    }
    qsort(out, n, sizeof(*out), by_name_partition);
    *count = n;
    return out;
}

sl_err sl_seek(sl_client *c, const char *topic, int32_t partition, int64_t offset)
{
    if (c == NULL || c->cons == NULL || c->closing) {
        return SL_ERR_STATE;
    }
    if (topic == NULL) {
        return SL_ERR_INVALID_ARG;
    }
    struct slc_topic *t = slc_topic_get(c, topic, strlen(topic), false);
    if (t == NULL || cpart_find(c->cons, t, partition) == NULL) {
        return SL_ERR_UNKNOWN_PARTITION;
    }
    return slc_consumer_assign(c, topic, partition, offset);
}

sl_err sl_assignment(sl_client *c, sl_topic_partition **parts, size_t *count)
{
    if (c == NULL || c->cons == NULL || parts == NULL || count == NULL) {
        return SL_ERR_STATE;
    }
    size_t n;
    sl_topic_partition *list = slc_consumer_offsets(c, false, &n);
    if (list == NULL) {
        return SL_ERR_NOMEM;
    }
    /* One allocation: the entries, then their names. */
    size_t bytes = n * sizeof(*list);
    for (size_t i = 0; i < n; i++) {
        bytes += strlen(list[i].topic) + 1;
    }
    sl_topic_partition *out = malloc(bytes > 0 ? bytes : 1);
    if (out == NULL) {
        free(list);
        return SL_ERR_NOMEM;
    }
    char *names = (char *)(out + n);
    for (size_t i = 0; i < n; i++) {
        out[i] = list[i];
        size_t len = strlen(list[i].topic) + 1;
        memcpy(names, list[i].topic, len);
        out[i].topic = names;
        names += len;
    }
    free(list);
    *parts = out;
    *count = n;
    return SL_OK;
}

void sl_record_free(sl_record *record)
{
    if (record != NULL) {
        free((char *)record - offsetof(struct cmsg, rec));
    }
}

sl_err sl_position(sl_client *c, const char *topic, int32_t partition, int64_t *offset,
                   int64_t *high_watermark)
{
    if (c == NULL || c->cons == NULL || topic == NULL) {
        return SL_ERR_STATE;
    }
    struct slc_topic *t = slc_topic_get(c, topic, strlen(topic), false);
    struct cpart *cp = t != NULL ? cpart_find(c->cons, t, partition) : NULL;
    if (cp == NULL) {
        return SL_ERR_UNKNOWN_PARTITION;
    }
    if (offset != NULL) {
        /* The next record sl_consume hands out is the first queued one. */
        *offset = cp->position;
        for (const struct cmsg *m = c->cons->q_head; m != NULL; m = m->next) {
            if (m->cp == cp && m->rec.err == SL_OK) {
                *offset = m->rec.offset;
                break;
            }
        }
    }
    if (high_watermark != NULL) {
        *high_watermark = cp->high_watermark;
    }
    return SL_OK;
}
