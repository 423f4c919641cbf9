/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Topics, partitions and where they lead: the client's copy of cluster
 * metadata, asked of any broker with Metadata requests naming every topic the
 * client uses.
 *
 * A refresh is wanted (md_wanted) when a topic is new, when a partition has
 * no known leader, when a broker answers a Produce with a leadership or
 * topic error, and when metadata.max.age.ms has passed since the last
 * complete answer. One request is in flight at a time; retries after a
 * failed or incomplete answer back off like any retry. A topic that a broker
 * says does not exist is asked about again; its pending messages fail once
 * it has been absent for SLC_TOPIC_ABSENT_GRACE_MS (a topic just created
 * elsewhere may not have reached every broker yet), or at once for a
 * non-retriable error (an invalid name, no authorization).
 *
 * Partitions are allocated one by one and never move or disappear until the
 * client is freed, so batches may point to theirs. Kafka only adds
 * partitions; a smaller count in an answer is ignored.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "client/internal.h"
#include "common/assert.h"
#include "proto/errors.h"

/* Buckets of the topic table: chains stay short up to tens of thousands of
 * topics, and SLC_TOPICS_MAX bounds the count. */
#define TOPIC_BUCKETS 4096u

_Static_assert((TOPIC_BUCKETS & (TOPIC_BUCKETS - 1)) == 0, "a mask picks the bucket");

static uint32_t name_hash(const char *s, size_t len)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < len; i++) {
        h = (h ^ (uint8_t)s[i]) * 16777619u;
    }
    return h;
}

struct slc_topic *slc_topic_get(sl_client *c, const char *name, size_t len, bool create)
{
    if (c->buckets == NULL) {
        c->buckets = calloc(TOPIC_BUCKETS, sizeof(*c->buckets));
        if (c->buckets == NULL) {
            return NULL;
        }
        c->bucket_count = TOPIC_BUCKETS;
    }
    uint32_t h = name_hash(name, len);
    struct slc_topic **bucket = &c->buckets[h & (c->bucket_count - 1)];
    for (struct slc_topic *t = *bucket; t != NULL; t = t->hnext) {
        if (t->hash == h && strncmp(t->name, name, len) == 0 && t->name[len] == '\0') {
            return t;
        }
    }
    if (!create || c->topic_count >= SLC_TOPICS_MAX) {
        return NULL;
    }
    struct slc_topic *t = calloc(1, sizeof(*t));
    if (t == NULL || (t->name = strndup(name, len)) == NULL) {
        free(t);
        return NULL;
    }
    t->hash = h;
    t->partition_count = -1;
    t->absent_since_ms = -1;
    t->sticky = -1;
    t->hnext = *bucket;
    *bucket = t;
    t->list_next = c->topics;
    c->topics = t;
    c->topic_count++;
    c->md_wanted = true; /* its partitions are what a first message needs */
    return t;
}

void slc_topic_free(struct slc_topic *t)
{
    if (t == NULL) {
        return;
    }
    for (int32_t i = 0; i < t->parts_cap; i++) {
        free(t->parts[i]);
    }
    free(t->parts);
    free(t->name);
    free(t);
}

int slc_topic_set_partitions(sl_client *c, struct slc_topic *t, int32_t count, int64_t now_ms)
{
    (void)c;
    (void)now_ms;
    if (count <= 0 || count > SLC_PARTITIONS_MAX) {
        return -EINVAL;
    }
    if (count > t->parts_cap) {
        struct slc_part **parts = realloc(t->parts, (size_t)count * sizeof(*parts));
        if (parts == NULL) {
            return -ENOMEM;
        }
        t->parts = parts;
        for (int32_t i = t->parts_cap; i < count; i++) {
            struct slc_part *p = calloc(1, sizeof(*p));
            if (p == NULL) {
                t->parts_cap = i;
                return -ENOMEM;
            }
            *p = (struct slc_part){
                .topic = t, .id = i, .leader = -1, .leader_epoch = -1, .inflight_node = -1};
            t->parts[i] = p;
        }
        t->parts_cap = count;
    }
    t->partition_count = SL_MAX(t->partition_count, count);
    return 0;
}

/* ================================================================ active list */

void slc_part_activate(sl_client *c, struct slc_part *p)
{
    if (p->active) {
        return;
    }
    p->active = true;
    p->active_prev = NULL;
    p->active_next = c->active;
    if (c->active != NULL) {
        c->active->active_prev = p;
    }
    c->active = p;
}

void slc_part_deactivate(sl_client *c, struct slc_part *p)
{
    if (!p->active || p->open != NULL || p->q_head != NULL || p->inflight > 0) {
        return;
    }
    if (p->active_prev != NULL) {
        p->active_prev->active_next = p->active_next;
    } else {
        c->active = p->active_next;
    }
    if (p->active_next != NULL) {
        p->active_next->active_prev = p->active_prev;
    }
    p->active = false;
    p->active_prev = NULL;
    p->active_next = NULL;
}

/* ================================================================ requests */

static int send_request(sl_client *c, struct slc_broker *b, int64_t now_ms)
{
    int16_t version = b->versions[KMSG_API_METADATA];
    if (version < 0) {
        slc_error(c, SL_ERR_UNSUPPORTED_FEATURE, "%s: no usable Metadata version", b->addr);
        return -EPROTONOSUPPORT;
    }
    struct kmsg_metadata_request_metadata_request_topic *items =
        calloc(c->topic_count > 0 ? c->topic_count : 1, sizeof(*items));
    if (items == NULL) {
        return -ENOMEM;
    }
    int32_t n = 0;
    for (struct slc_topic *t = c->topics; t != NULL; t = t->list_next) {
        kmsg_init(&kmsg_metadata_request_metadata_request_topic_desc, &items[n]);
        items[n].name = (struct kstr){t->name, (int32_t)strlen(t->name)};
        n++;
    }
    struct kmsg_metadata_request rq;
    kmsg_init(&kmsg_metadata_request_desc, &rq);
    rq.topics = (struct karray){n > 0 ? items : NULL, n};
    /* As Java's producer (allow.auto.create.topics): the broker decides. */
    rq.allow_auto_topic_creation = true;
    struct slc_req req = {.kind = SLC_REQ_METADATA,
                          .api_key = KMSG_API_METADATA,
                          .version = version,
                          .expects_response = true};
    int rc = slc_broker_send(c, b, &req, &rq, now_ms);
    free(items);
    return rc;
}

void slc_metadata_tick(sl_client *c, int64_t now_ms, int64_t *next_ms)
{
    int64_t age_due = c->md_ok_ms + c->conf->metadata_max_age_ms;
    if (!c->md_wanted && now_ms < age_due) {
        *next_ms = SL_MIN(*next_ms, age_due);
        return;
    }
    if (c->md_inflight) {
        return;
    }
    if (now_ms < c->md_next_ms) {
        *next_ms = SL_MIN(*next_ms, c->md_next_ms);
        return;
    }
    struct slc_broker *b = slc_control_broker(c, now_ms, next_ms);
    if (b == NULL) {
        return;
    }
    if (send_request(c, b, now_ms) != 0) {
        c->md_failures++;
        c->md_next_ms =
            now_ms + slc_backoff_ms(c->conf->retry_backoff_ms, c->conf->retry_backoff_max_ms,
                                    c->md_failures, &c->rng);
        *next_ms = SL_MIN(*next_ms, c->md_next_ms);
        return;
    }
    c->md_inflight = true;
    c->md_wanted = false;
    /* Requests are spaced by at least retry.backoff.ms, as Java's refresh is. */
    c->md_next_ms = now_ms + c->conf->retry_backoff_ms;
}

/* ================================================================ responses */

static void fail_pending(sl_client *c, struct slc_topic *t, sl_err err)
{
    while (t->pend_head != NULL) {
        struct slc_pending *m = t->pend_head;
        t->pend_head = m->next;
        SL_ASSERT(c->pending_count > 0);
        c->pending_count--;
        slc_done_pending(c, m, err);
    }
    t->pend_tail = NULL;
}

/* A topic the broker could not describe. Returns whether to ask again. */
static bool topic_error(sl_client *c, struct slc_topic *t, int16_t err, int64_t now_ms)
{
    t->err = err;
    if (err == KAFKA_ERR_UNKNOWN_TOPIC_OR_PARTITION) {
        if (t->absent_since_ms < 0) {
            t->absent_since_ms = now_ms;
        }
        if (now_ms - t->absent_since_ms >= SLC_TOPIC_ABSENT_GRACE_MS) {
            fail_pending(c, t, SL_ERR_UNKNOWN_TOPIC_OR_PARTITION);
        }
        return true;
    }
    if (!kafka_error_retriable(err) && err != KAFKA_ERR_LEADER_NOT_AVAILABLE) {
        fail_pending(c, t, (sl_err)err);
    }
    return true;
}

/* The partitions of a described topic. Returns whether to ask again. */
static bool topic_partitions(sl_client *c, struct slc_topic *t,
                             const struct kmsg_metadata_response_metadata_response_topic *rt,
                             int64_t now_ms)
{
    const struct kmsg_metadata_response_metadata_response_partition *rp = rt->partitions.items;
    int32_t count = 0;
    for (int32_t i = 0; i < rt->partitions.count; i++) {
        if (rp[i].partition_index < 0 || rp[i].partition_index >= SLC_PARTITIONS_MAX) {
            return true; /* nonsense: ask again rather than believe it */
        }
        count = SL_MAX(count, rp[i].partition_index + 1);
    }
    if (count == 0 || slc_topic_set_partitions(c, t, count, now_ms) != 0) {
        return true;
    }
    bool again = false;
    for (int32_t i = 0; i < rt->partitions.count; i++) {
        struct slc_part *p = t->parts[rp[i].partition_index];
        p->leader = rp[i].leader_id >= 0 ? rp[i].leader_id : -1;
        p->leader_epoch = rp[i].leader_epoch;
        again = again || p->leader < 0 || slc_broker_find(c, p->leader) == NULL;
    }
    t->err = 0;
    t->absent_since_ms = -1;
    return again;
}

static void add_brokers(sl_client *c, const struct kmsg_metadata_response *resp)
{
    const struct kmsg_metadata_response_metadata_response_broker *rb = resp->brokers.items;
    for (int32_t i = 0; i < resp->brokers.count; i++) {
        if (rb[i].node_id < 0 || rb[i].port <= 0 || rb[i].port > 65535 || rb[i].host.len <= 0) {
            continue;
        }
        if (slc_broker_upsert(c, rb[i].node_id, rb[i].host.ptr, (size_t)rb[i].host.len,
                              (uint16_t)rb[i].port) == NULL) {
            slc_error(c, SL_ERR_NOMEM, "broker %d (%.*s:%d) not added: table full or no memory",
                      rb[i].node_id, rb[i].host.len, rb[i].host.ptr, rb[i].port);
        }
    }
}

void slc_metadata_response(sl_client *c, struct slc_broker *b, const struct slc_req *req,
                           const void *resp_, sl_err err, int64_t now_ms)
{
    (void)b;
    (void)req;
    c->md_inflight = false;
    c->md_answers++;
    if (resp_ == NULL) {
        c->md_failures++;
        c->md_wanted = true;
        c->md_next_ms =
            now_ms + slc_backoff_ms(c->conf->retry_backoff_ms, c->conf->retry_backoff_max_ms,
                                    c->md_failures, &c->rng);
        (void)err;
        return;
    }
    const struct kmsg_metadata_response *resp = resp_;
    add_brokers(c, resp);
    const struct kmsg_metadata_response_metadata_response_topic *rt = resp->topics.items;
    bool again = false;
    uint32_t described = 0;
    for (int32_t i = 0; i < resp->topics.count; i++) {
        if (rt[i].name.len <= 0) {
            continue;
        }
        struct slc_topic *t = slc_topic_get(c, rt[i].name.ptr, (size_t)rt[i].name.len, false);
        if (t == NULL) {
            continue;
        }
        described++;
        bool was_unknown = t->partition_count < 0;
        again |= rt[i].error_code != KAFKA_ERR_NONE ? topic_error(c, t, rt[i].error_code, now_ms)
                                                    : topic_partitions(c, t, &rt[i], now_ms);
        if (was_unknown && t->partition_count >= 0) {
            slc_place_pending(c, t, now_ms);
        }
    }
    c->md_ok_ms = now_ms;
    c->md_failures = 0;
    if (again || described < c->topic_count) {
        /* Ask again soon: md_next_ms already spaces requests. */
        c->md_wanted = true;
    }
}
